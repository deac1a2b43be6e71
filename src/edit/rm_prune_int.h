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
    int *producers;       /* group-1 Conv / ConvTranspose nodes whose output is in the group */
    int n_producers;
    int *members;         /* nodes inside the group with per-channel parameters: BatchNorm,
                             InstanceNorm, depthwise Conv / ConvTranspose, eltwise ops with a
                             per-channel constant (PRelu's slope), Resize with constant sizes */
    int n_members;
    int *consumers;       /* group-1 Conv / ConvTranspose nodes reading a group tensor as input */
    int n_consumers;
    int *gemms;           /* Gemm nodes reading the group's channels flattened */
    int64_t *gemm_spatial;
    int n_gemms;
    int *concats;         /* Concat nodes with a group tensor as input */
    int n_concats;
    int *splits;          /* dividers of a group tensor's channels (rm_prune_divider: a Split,
                             or the Slices of torch's chunk): the group's channels are then
                             their parts' channels in order (derived) */
    int n_splits;
    int *parts;           /* dividers with a group tensor among their parts: the group's
                             channels are a range of the divided tensor's (YOLOv8's C2f) */
    int n_parts;
    int64_t blocks;       /* > 1: grouped convolutions read or produce the channels in this
                             many equal blocks (their `group`): every block keeps as many */
    bool last;            /* its channels are on the last axis, not on axis 1: the hidden
                             features of a Linear applied to [..., C] (ConvNeXt's channels-last
                             MLP, a transformer's); every tensor has rank last_rank */
    int last_rank;
    bool sourced;         /* a weight scores its channels: it has producers, or it is a part
                             of a split whose input is sourced */
    int64_t *keep;        /* chosen kept channels (sorted), NULL = untouched */
    int64_t n_keep;
    double *score;        /* per-channel importance */
    bool ignored;         /* a module given to ignore touches it: left whole */
    char ignored_by[200]; /* that module's path */
};

/* The Slices that together divide one tensor's channels into ranges (torch 1.13 exports
 * chunk(n, 1) as a Slice per chunk, bounds computed from Shape): a divider like a Split. */
struct slice_set {
    int x;                /* the divided value */
    size_t n;
    int *nodes;           /* the Slice nodes, in channel order */
    int *outs;            /* their outputs (the parts), in channel order */
};

struct analysis {
    struct edit *e;
    struct slice_set *sets;
    int n_sets;
    int *set_of;          /* per node: the slice set it is the first (divider) node of, -1;
                             -2 for another Slice of a set */
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
/* The axis of constant input `slot` of broadcasting node `node` that lines up with its
 * output's channel axis (1, or the last with `last`) and has more than one entry, or -1. */
int rm_prune_const_channel_axis(const struct rm_graph *g, int node, size_t slot, bool last);
/* Whether node i is a Linear applied to the last axis of a tensor of rank 3 or more: a
 * MatMul by a constant float [in, out] weight (ConvNeXt's MLP, a transformer's). */
bool rm_prune_last_linear(const struct rm_graph *g, int i);
/* The size of value v's channel axis in group gr (axis 1, or the last for gr->last). */
int64_t rm_prune_channel_dim(const struct analysis *a, const struct group *gr, int v);
/* Union-find root of value v (its group is a->group_of[root]). */
int rm_prune_root(struct analysis *a, int v);
/* gr->score = per-channel L1 (criterion 1) or L2 (2) norm of the weights of the group's
 * producing and depthwise Conv / ConvTranspose nodes (a producing ConvTranspose's channels
 * are its weight's axis 1), summed over them; a part of a Split adds the rows of the
 * split input's weights at its offset. */
int rm_prune_score_norm(struct analysis *a, struct group *gr, int criterion);
/* gr->keep = every channel but the n_remove lowest-scored (ties: lower index goes); with
 * blocks, n_remove / blocks of each block (RM_EEDIT unless n_remove is a multiple). */
int rm_prune_choose_lowest(struct edit *e, struct group *gr, int64_t n_remove);
/* The axis of Linear node i's weight (a Gemm, a MatMul by a constant, on a matrix or on the
 * last axis: rm_prune_last_linear) holding its `out`
 * output features: a Gemm's 0 with transB, else 1; -1 when they cannot be pruned (a
 * transposed input, a weight or a Gemm bias that is not an initializer of their count). */
int rm_prune_linear_out_axis(const struct rm_graph *g, int i, int64_t out);
/* Whether node i divides a tensor's channels into parts: a Split (on channels when the
 * analysis follows it), or the divider node of a slice set. Sets *x to the divided value
 * and *parts to the part values in channel order. */
bool rm_prune_divider(const struct analysis *a, int i, int *x, const int **parts, size_t *n_parts);
/* The group node i derives, with the values it derives it from (in channel order): a
 * Concat on channels makes its output's from its inputs, a followed Split on channels its
 * input's from its parts. NULL for any other node. */
struct group *rm_prune_derived(struct analysis *a, int i, const int **src, size_t *n_src);
/* The channels source v of a derivation adds: its group's (*gr), or for a tensor outside
 * every group that stays whole (a constant concatenated on channels) its own; -1 when
 * unknown. */
int64_t rm_prune_source_channels(struct analysis *a, int v, struct group **gr);
/* The offset of part `slot` of divider `node` among its input's channels (the analysis
 * checked that the parts' channel counts are known and add up). */
int64_t rm_prune_split_offset(const struct analysis *a, int node, size_t slot);
/* Calls fn(a, gx, at, ctx) for every place channels off .. off + count of group gr (a part
 * of dividers) sit in a divided tensor's group gx, at channel `at` of it; stops at the
 * first nonzero return, which it returns. */
int rm_prune_part_ranges(struct analysis *a, const struct group *gr, int64_t off, int64_t count,
                         int (*fn)(struct analysis *a, const struct group *gx, int64_t at, void *ctx), void *ctx);
/* Module path of the group's first producer (or its root tensor's name) into buf. */
const char *rm_prune_group_name(struct analysis *a, const struct group *gr, char *buf, size_t n);

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
