/* Internals shared by the edit modules (rm_edit.c: tensors, attributes, channel
 * changes, replace; rm_prune.c: channel groups, prune, fold-bn). Not a public API:
 * only rm_edit*.c and rm_prune.c include it. */
#ifndef RM_EDIT_INT_H
#define RM_EDIT_INT_H

#include "rm_edit.h"
#include "rm_graph.h"
#include "rm_tree.h"

#include <stdbool.h>
#include <stdint.h>

/* State of one edit. The graph index and tree describe the model as loaded: edits
 * change initializers, attributes and input names, never which node produces or
 * consumes an activation, so the index stays valid for walking activations. */
struct edit {
    struct rm_model *m;
    struct rm_graph *g;       /* the model before the edit (held) */
    struct rm_tree *t;        /* its module tree (held) */
    struct rm_error *err;
    rm_findings *log;         /* the caller's: notes of what changed (may be NULL) */
    int init;
    uint64_t rng;
    char *visited;            /* per node: already adjusted by propagation */
    int *changed;             /* values whose channel count changed */
    uint32_t *use_mark;       /* per value: the rm_edit_uses walk that last visited it */
    uint32_t use_walk;
    size_t n_changed;
    int64_t old_c, new_c;     /* the channel change being applied */
    int64_t *map;             /* new_c entries: old channel of each new channel, -1 = new */
    bool follow;              /* depthwise convs pass the change on (replace), or the
                                 channel analysis already lists every member (prune) */
    int edited_node;          /* the replaced conv, whose input check is reported once */
    bool input_reported;
    rm_findings problems;     /* every layer the edit does not fit */
};

#if defined(__GNUC__)
#define RM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define RM_PRINTF(a, b)
#endif

/* Set up e for model m: graph index, lenient shapes, tree, per-node/value scratch;
 * shapes: the edit changes sizes, so every input size must be known (rm_model_check_inputs).
 * Returns 0 or an RM_E* code (e is then safe to rm_edit_end). */
int rm_edit_begin(struct edit *e, struct rm_model *m, const struct rm_replace_options *opts, bool shapes,
                  rm_findings *log, struct rm_error *err);
/* Release what rm_edit_begin set up. */
void rm_edit_end(struct edit *e);

/* One line for the user's log / one problem that makes the edit fail. */
void rm_edit_note(struct edit *e, const char *fmt, ...) RM_PRINTF(2, 3);
void rm_edit_problem(struct edit *e, const char *fmt, ...) RM_PRINTF(2, 3);
/* Module path of node i ("layer1.0.conv2"), or the node's name; its op type. */
const char *rm_edit_where(const struct edit *e, int node);

/* The metadata key of a model's edit history (rm_history.c). */
#define RM_HISTORY_KEY "remodel.history"
/* Append one line to m's edit history: the time (SOURCE_DATE_EPOCH when set), remodel's
 * version and what was done (printf-style). Returns 0 or RM_ENOMEM. */
int rm_edit_record(struct rm_model *m, struct rm_error *err, const char *fmt, ...) RM_PRINTF(3, 4);
const char *rm_edit_op(const struct edit *e, int node);

/* Uses of value v as a node input or graph output, counted through Identity nodes: 0, 1,
 * or 2 for "more than one" (an initializer used once may be rewritten in place). */
int rm_edit_uses(struct edit *e, int v);
/* Float contents (malloc'd) of input `slot` of node, following Identity helpers to the
 * initializer; *data NULL and *n 0 when the slot is absent. */
int rm_edit_param(struct edit *e, int node, size_t slot, float **data, int64_t *n,
                  const Onnx__TensorProto **tp);
/* The tensor input `slot` of node reads now (the edit's own copy when an earlier step
 * wrote one), NULL when the slot is absent; RM_EUNSUPPORTED when computed. */
int rm_edit_param_tensor(struct edit *e, int node, size_t slot, const Onnx__TensorProto **tp);
int rm_edit_read_f32(struct edit *e, const Onnx__TensorProto *t, float **out, int64_t *n);
/* The n float32 values of t as bytes to copy runs from (no alignment assumed): its
 * raw_data itself when it holds them as the host does (possibly the file's read-only
 * mapping: never write), else a converted copy in *copy (malloc'd, to free). */
int rm_edit_f32_bytes(struct edit *e, const Onnx__TensorProto *t, const uint8_t **bytes, int64_t *n,
                      float **copy);
/* Input `slot` of node (tensor tp, read as [outer, n_old, inner]) sliced on its middle
 * axis by e->map into [outer, new_c, inner] (dims, rank: the new shape) and written with
 * rm_edit_write_param. Built in a tensor buffer of the model, copied in runs of `inner` floats
 * from where the bytes are; a new channel is zero, or kaiming with fan_in when the
 * init is kaiming and fan_in > 0. RM_EEDIT when tp holds fewer values. */
int rm_edit_slice(struct edit *e, int node, size_t slot, const Onnx__TensorProto *tp, int64_t outer,
                  int64_t n_old, int64_t inner, int64_t fan_in, const int64_t *dims, int rank, const char *fallback);
/* Give input `slot` of node new float data: in place when the initializer is the node's
 * alone, else as a copy named after fallback (shared initializers never change). */
int rm_edit_write_param(struct edit *e, int node, size_t slot, const int64_t *dims, int rank,
                        const float *data, const char *fallback);

/* Channel change old_c -> new_c described by e->map: rows of [old_c, row] picked into
 * [new_c, row]; BatchNorm, consuming conv (in-channels, or a depthwise conv's
 * channels) and Gemm over flattened channels follow; rm_edit_mark records a tensor
 * whose channels changed (for channel maps); rm_edit_propagate follows consumers. */
void rm_edit_rows(struct edit *e, const float *old, int64_t n_old, int64_t row, float *out, int64_t fan_in);
int rm_edit_resize_bn(struct edit *e, int node);
int rm_edit_resize_consumer(struct edit *e, int node);
/* Weight axis 1 of a grouped node (a Conv's in-channels, a ConvTranspose's out-channels:
 * [A, B / group, k...]) following e->map, the rows of group b taking the columns of its
 * own kept channels. RM_EEDIT when the map does not keep as many in each group. */
int rm_edit_slice_grouped(struct edit *e, int node, int64_t group);
int rm_edit_resize_gemm(struct edit *e, int node, int64_t spatial);
void rm_edit_mark(struct edit *e, int v);
int rm_edit_propagate(struct edit *e, int v, int depth);

/* Whether node is a Linear layer the edits can resize: a Gemm, or a MatMul of a 2-D input by
 * a constant 2-D weight [in_features, out_features] (paddle2onnx and tf2onnx write Linear
 * and Dense layers so, the bias a separate Add), whose weight is input 1 as a Gemm's is. */
bool rm_edit_is_linear(const struct rm_graph *g, int node);
/* Where the weight of Linear node `node` is stored: its input 1 (*wnode = node, *wslot = 1),
 * or for a MatMul reading Transpose(W), W a 2-D initializer the Transpose alone reads and
 * whose output only this MatMul reads (torch's export without constant folding), input 0 of
 * that Transpose, with *transposed set (W is [out, in]). False when neither, with *wnode,
 * *wslot and *transposed left at node, 1 and false. */
bool rm_edit_linear_weight(const struct rm_graph *g, int node, int *wnode, size_t *wslot, bool *transposed);
/* Whether node flattens its input's axes from 1 on into a Linear's features: Flatten (its
 * axis is the caller's to check), or a Reshape to a constant [0, -1] or [N, -1] with N its
 * input's batch (the dynamo exporter's torch.flatten(x, 1)). */
bool rm_edit_flattens(const struct rm_graph *g, int node);

/* Whether channel c of node's output is channel c of its input 0, for every c: a
 * channel-wise op (rm_op_passes_channels), a Pad whose pads of axes 0 and 1 are known
 * (attribute, or constants shape inference read) and zero, or a reduction over spatial
 * axes only (a global pool written as ReduceMean: ShuffleNetV2 ends so). What prune's
 * groups and replace --propagate both follow channels through. */
bool rm_edit_passes_channels(const struct rm_graph *g, int node);

/* Prune the channel group the Conv2d module at path reads to keep channels (lowest L1
 * norm removed, every member of the group following), when it has more; 0 and nothing
 * done otherwise. RM_EEDIT when the group cannot be pruned. rm_prune.c; replace
 * --propagate calls it for a spec with fewer in_channels. */
int rm_prune_input_to(struct rm_model *m, const char *path, int64_t keep, rm_findings *log, struct rm_error *err);

/* Re-index, re-infer shapes collecting every disagreement, update value_info, and
 * (record_maps) write channel maps of the marked tensors. RM_EEDIT lists problems. */
int rm_edit_finish(struct edit *e, bool record_maps, bool channel_change);

#endif
