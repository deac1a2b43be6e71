/* Structural edits on a loaded model: replace a Conv2d module's node and weights with
 * a new spec, carrying channel changes to dependent layers. Edits change the
 * ModelProto in place (new tensors live in the model's arena); on failure the model
 * may be half-edited and must be discarded, never saved: callers load, edit, save.
 * Initializers shared with other nodes are copied before they change. */
#ifndef RM_EDIT_H
#define RM_EDIT_H

#include "rm_diff.h"
#include "rm_model.h"
#include "rm_spec.h"

#include <stdbool.h>
#include <stdint.h>

enum rm_init {
    RM_INIT_KEEP,    /* copy old weights where shapes overlap, centred; exact if unchanged */
    RM_INIT_KAIMING, /* PyTorch's Conv2d default: kaiming-uniform a=sqrt(5), bias uniform */
    RM_INIT_ZEROS,
};

struct rm_replace_opts {
    int init;        /* enum rm_init */
    uint64_t seed;   /* for RM_INIT_KAIMING */
    bool propagate;  /* carry an out_channels change to BatchNorm, depthwise and next convs */
};

/* What an edit changed, one line per layer, for the CLI to print. */
#define RM_EDIT_LOG_MAX 64
struct rm_edit_log {
    int n;
    char line[RM_EDIT_LOG_MAX][200];
};

/* Edits record channel maps in the edited model's metadata under RM_CHANNEL_MAP_KEY
 * (defined with the rest of that contract in rm_diff.h, which reads them). */

/* Replace the Conv2d module at path (dotted or `a[0].b`) with spec. Rewrites the
 * node's attributes and its weight/bias initializers (names kept, or "<path>.weight"
 * for copies of shared ones), re-infers shapes through the graph and updates graph
 * output shapes and value_info. Returns 0; RM_ENOTFOUND (unknown path, with the
 * nearest paths); RM_EEDIT when the module is not a Conv2d or when the result does
 * not fit: the message names every module that disagrees and the two sizes;
 * RM_EUNSUPPORTED for weights it cannot read. log may be NULL. */
int rm_replace_conv(struct rm_model *m, const char *path, const struct rm_conv_spec *spec,
                    const struct rm_replace_opts *opts, struct rm_edit_log *log, struct rm_error *err);

struct rm_prune_opts {
    double ratio;            /* fraction of each group's channels removed (0.25: 64 -> 48) */
    const int64_t *channels; /* or: exactly these channels of the one named group */
    size_t n_channels;
    int criterion;           /* 1: L1 norm of weights, 2: L2 */
    bool global;             /* rank every prunable group's channels together */
};

/* One coupled channel group in a prune report. */
struct rm_prune_group {
    char name[256];          /* module path of its first producing conv */
    int producers;           /* convs whose outputs are these channels */
    int64_t before, after;   /* channels */
    bool prunable;
    char reason[200];        /* why not, when !prunable */
};

struct rm_prune_report {
    size_t n_groups;
    struct rm_prune_group *groups; /* malloc'd */
    int64_t params_before, params_after, macs_before, macs_after;
};

/* Prune channels: of the coupled groups of the named Conv2d modules (paths), or with
 * opts->global of every prunable group by a global ranking of per-group normalised
 * weight norms (a group's importance sums over its producing and depthwise convs),
 * never removing a group's last channel. Dependents follow: BatchNorms, depthwise
 * convs, residual Adds and squeeze-excite Muls (all producers of a coupled group lose
 * the same channels), Concats (offsets), the next convs' input channels, a Linear after
 * Flatten. Channel maps are recorded in the model's metadata. Returns 0, RM_ENOTFOUND,
 * RM_EUSAGE, or RM_EEDIT naming why a group cannot be pruned. rep is filled (free with
 * rm_prune_report_free) on success. */
int rm_prune(struct rm_model *m, const char *const *paths, size_t n_paths, const struct rm_prune_opts *opts,
             struct rm_prune_report *rep, struct rm_edit_log *log, struct rm_error *err);
void rm_prune_report_free(struct rm_prune_report *rep);

/* Fold every BatchNormalization whose input is a Conv output read by nothing else into
 * that Conv's weight and bias, and remove it (the Conv takes over the BatchNorm's output
 * tensor name). *n_folded counts them. Returns 0 or an RM_E* code. */
int rm_fold_bn(struct rm_model *m, int *n_folded, struct rm_edit_log *log, struct rm_error *err);

#endif
