/* Internals shared by the prune modules: the channel-group analysis (rm_prune.c), the
 * choice of channels to remove (rm_prune_select.c: criteria, global ranking, MAC and
 * parameter targets, ignored modules, round-to, per-module ratios), calibration
 * statistics (rm_calib.c) and reconstruction (rm_reconstruct.c). Not a public API. */
#ifndef RM_PRUNE_INT_H
#define RM_PRUNE_INT_H

#include "rm_edit_int.h"

#include <stdbool.h>
#include <stdint.h>

/* One class of tensors that carry the same channels, and every node that follows them. */
struct group {
    int root;             /* union-find root value */
    int64_t channels;     /* C, or -1 when unknown */
    bool unprunable;
    char reason[200];
    int *producers;       /* group-1 convs whose output is in the group */
    int n_producers;
    int *members;         /* BatchNorm and depthwise Conv nodes inside the group */
    int n_members;
    int *consumers;       /* group-1 convs reading a group tensor as input */
    int n_consumers;
    int *gemms;           /* Gemm nodes reading the group's channels flattened */
    int64_t *gemm_spatial;
    int n_gemms;
    int *concats;         /* Concat nodes with a group tensor as input */
    int n_concats;
    int64_t *keep;        /* chosen kept channels (sorted), NULL = untouched */
    int64_t n_keep;
    double *score;        /* per-channel importance */
    bool ignored;         /* a module given to ignore touches it: left whole */
    char ignored_by[200]; /* that module's path */
};

struct analysis {
    struct edit *e;
    int *parent;          /* union-find over values */
    int *group_of;        /* root value -> group index, -1 */
    struct group *groups;
    int n_groups;
    int samples;          /* calibration samples the criterion ran, 0 when none */
    int *vstart, *vlist;  /* channel tensors of group i: vlist[vstart[i] .. vstart[i + 1]) */
};

/* Build the channel groups of e's model (free with rm_prune_analysis_free, also after a
 * failure). Returns 0 or RM_ENOMEM. */
int rm_prune_analyse(struct analysis *a, struct edit *e);
void rm_prune_analysis_free(struct analysis *a);
/* Whether value v is an activation with a channel axis; the group of v, or NULL. */
bool rm_prune_is_channel(const struct analysis *a, int v);
struct group *rm_prune_group_of(struct analysis *a, int v);
/* Union-find root of value v (its group is a->group_of[root]). */
int rm_prune_root(struct analysis *a, int v);
/* gr->score = per-channel L1 (criterion 1) or L2 (2) norm of the weights of the group's
 * producing and depthwise convs, summed over them. */
int rm_prune_score_norm(struct analysis *a, struct group *gr, int criterion);
/* gr->keep = every channel but the n_remove lowest-scored (ties: lower index goes). */
int rm_prune_choose_lowest(struct edit *e, struct group *gr, int64_t n_remove);
/* Module path of the group's first producer (or its root tensor's name) into buf. */
const char *rm_prune_group_name(const struct analysis *a, const struct group *gr, char *buf, size_t n);

/* Choose the channels every group keeps (gr->keep) from the options: explicit
 * channels or a ratio of the named modules' groups, per-module ratios, or a global
 * ranking by ratio or down to a MAC/parameter target; ignored modules' groups stay whole;
 * kept counts rounded to o->round_to. Calibration statistics are gathered here for the
 * activation criterion (the model is not changed yet). rm_prune_select.c. */
int rm_prune_select(struct analysis *a, const char *const *paths, size_t n_paths, const rm_prune_options *o);
/* RM_EUSAGE for options that do not go together or are out of range (before any work). */
int rm_prune_check_options(const char *const *paths, size_t n_paths, const rm_prune_options *o,
                           struct rm_error *err);

/* Refit the layers of m whose input channels a prune removed, so that on the
 * calibration data each one's output from m's actual inputs matches its output in orig
 * (m before the prune, unchanged). layers[i] names layer i's output tensor (names
 * survive the prune); when its own output channels were pruned too, out_keep[i] lists
 * the n_out_keep[i] channels of orig's output it kept (else NULL). Appends the refits
 * to rep->refits. rm_reconstruct.c. */
int rm_prune_reconstruct(struct rm_model *orig, struct rm_model *m, const char *const *layers,
                         const int64_t *const *out_keep, const int64_t *n_out_keep, size_t n_layers,
                         const rm_prune_options *o, rm_prune_report *rep, rm_findings *log,
                         struct rm_error *err);

#endif
