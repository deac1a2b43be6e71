/* Internals of the operator implementations (the files in src/ops/): what a shape
 * rule sees of its node, what a C kernel is called with, and the geometry that rules,
 * kernels and the engine's planners share (windows, slices, axes, pads). One file per op family
 * holds its rules and kernels; the op table (rm_op.c) points at them. */
#ifndef RM_OPS_INT_H
#define RM_OPS_INT_H

#include "rm_graph.h"
#include "rm_op.h"
#include "rm_tensorio.h"

#include <stdbool.h>
#include <stdint.h>

#if defined(__GNUC__)
#define RM_OPS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define RM_OPS_PRINTF(a, b)
#endif

#ifndef RM_F32
#define RM_F32 ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
#define RM_I64 ONNX__TENSOR_PROTO__DATA_TYPE__INT64
#endif

/* ---- shape rules ---------------------------------------------------------------
 * A rule reads its inputs' types and shapes (dims may be -1: unknown) and known
 * constant contents, and sets its outputs'. It never fails on bad input: it reports
 * the problem with rm_s_bad (a model that cannot be right: shapes disagree) or
 * rm_s_unsupported (remodel cannot follow it: an input that is not a constant) and
 * leaves the outputs it cannot derive unknown. Only running out of memory is an error
 * (returned as RM_ENOMEM). */

struct rm_shape_run; /* the pass over the whole graph (rm_shape.c) */

struct rm_snode {
    struct rm_graph *g;
    int node;
    const Onnx__NodeProto *np;
    int64_t opset;             /* of the default domain */
    struct rm_shape_run *run;
    bool wrote;                /* the rule set an output (rm_s_out): only then is the node
                                  folded, since an output it left keeps its declared shape */
};

/* Shape of input k when its rank is known, else NULL (also for an absent input). */
const struct rm_value *rm_s_in(const struct rm_snode *s, size_t k);
/* Whether input k is given (a non-empty name). */
bool rm_s_present(const struct rm_snode *s, size_t k);
/* Contents of input k when known while inferring (an initializer, a Constant, a folded
 * shape computation, a given int64 input), as float32 or int64; else NULL. */
const struct rm_host_tensor *rm_s_const(struct rm_snode *s, size_t k);
/* Set output k (absent outputs are ignored). */
void rm_s_out(struct rm_snode *s, size_t k, int32_t dtype, int rank, const int64_t *dims);
/* Report a problem with this node (the first one per node is kept). Return 0. */
int rm_s_bad(struct rm_snode *s, const char *fmt, ...) RM_OPS_PRINTF(2, 3);
int rm_s_unsupported(struct rm_snode *s, const char *fmt, ...) RM_OPS_PRINTF(2, 3);

/* Output = input 0's type and shape (element-wise unary ops, Identity, ...). */
int rm_shape_same(struct rm_snode *s);

/* ---- kernels -------------------------------------------------------------------
 * A C kernel computes a node's outputs (already allocated, shapes set) from plain
 * row-major float32/int64 inputs. The engine runs them for steps oneDNN does not cover
 * and at plan time on constants; shape inference runs them on small constants to
 * follow shape arithmetic (Shape -> Gather -> Concat -> Reshape). */
struct rm_kcall {
    enum rm_op op;
    const Onnx__NodeProto *np;
    int64_t opset;
    const char *label;                       /* node label for messages */
    size_t n_in;
    const struct rm_host_tensor *const *in;  /* NULL: absent input */
    size_t n_out;
    struct rm_host_tensor *const *out;       /* NULL: absent output */
    struct rm_error *err;
};

/* Set err to "node 'label' (Op): message" and return code. */
int rm_k_err(const struct rm_kcall *k, int code, const char *fmt, ...) RM_OPS_PRINTF(3, 4);

/* ---- shared geometry ------------------------------------------------------------- */

/* Checked arithmetic for sizes that come from the file: *r = a + b (a * b); true when
 * the exact result does not fit in int64 (*r is then meaningless). */
static inline bool rm_add_ovf(int64_t a, int64_t b, int64_t *r)
{
    return __builtin_add_overflow(a, b, r);
}
static inline bool rm_mul_ovf(int64_t a, int64_t b, int64_t *r)
{
    return __builtin_mul_overflow(a, b, r);
}

/* a += rank for a negative axis; -1 when it stays outside [0, rank). */
int rm_norm_axis(int64_t *a, int rank);

/* Row-major strides of dims; advance a multi-index over dims. */
void rm_strides(int rank, const int64_t *dims, int64_t *st);
void rm_next_index(int rank, const int64_t *dims, int64_t *idx);

/* Window geometry of Conv/ConvTranspose/MaxPool/AveragePool along each spatial axis. */
struct rm_window {
    int sp;
    int64_t k[RM_MAX_RANK], s[RM_MAX_RANK], d[RM_MAX_RANK];
    int64_t pl[RM_MAX_RANK], pr[RM_MAX_RANK], out[RM_MAX_RANK];
    int ceil_mode;
};

/* Window of node np over an input of `rank` dims (spatial ones may be -1: their output
 * is -1 too) with kernel sizes `kernel`. pool: pads must be smaller than the window.
 * Returns 0, or RM_EFORMAT / RM_EUNSUPPORTED with the reason in why. */
int rm_window_of(const Onnx__NodeProto *np, int rank, const int64_t *dims, const int64_t *kernel, bool pool,
                 struct rm_window *w, char *why, size_t why_size);

/* Slice parameters per input axis, from attributes (opset < 10) or the constant inputs
 * starts/ends/axes/steps (NULL when absent). Returns 0, or RM_EFORMAT / RM_EUNSUPPORTED
 * with the reason in why. Unknown input dims give count -1. */
struct rm_slice {
    int64_t start[RM_MAX_RANK], step[RM_MAX_RANK], count[RM_MAX_RANK];
};
int rm_slice_of(const Onnx__NodeProto *np, int64_t opset, int rank, const int64_t *dims,
                const struct rm_host_tensor *starts, const struct rm_host_tensor *ends,
                const struct rm_host_tensor *axes, const struct rm_host_tensor *steps, struct rm_slice *sl,
                char *why, size_t why_size);

/* Axes of Squeeze/Unsqueeze/Reduce*: the `axes` attribute, or the constant input
 * `in` (NULL when absent). *given is 0 when neither is there. Returns 0 or RM_EFORMAT
 * (too many axes). */
int rm_axes_of(const Onnx__NodeProto *np, const struct rm_host_tensor *in, int64_t *axes, int64_t *n,
               int *given);

/* Pads (begin..., end...) of Pad for every axis of a rank-`rank` input, from the
 * attribute (opset < 11) or the constant inputs pads/axes. Returns 0, or RM_EFORMAT /
 * RM_EUNSUPPORTED with the reason in why. */
int rm_pads_of(const Onnx__NodeProto *np, int rank, const struct rm_host_tensor *pads,
               const struct rm_host_tensor *axes, bool pads_given, int64_t *out, char *why, size_t why_size);

/* A string attribute into buf (truncated), or def; 1 when the attribute is there. */
int rm_attr_string(const Onnx__NodeProto *np, const char *name, char *buf, size_t n, const char *def);

/* ---- the rules, MAC counts and kernels of each op family ------------------------- */

/* ops/tensor.c: Constant, Identity, Dropout, Shape, Gather, Slice, Concat, Reshape,
 * Flatten, Squeeze, Unsqueeze, Transpose, Pad */
int rm_shape_constant(struct rm_snode *s);
int rm_shape_dropout(struct rm_snode *s);
int rm_shape_shape(struct rm_snode *s);
int rm_shape_gather(struct rm_snode *s);
int rm_shape_slice(struct rm_snode *s);
int rm_shape_concat(struct rm_snode *s);
int rm_shape_reshape(struct rm_snode *s);
int rm_shape_flatten(struct rm_snode *s);
int rm_shape_squeeze(struct rm_snode *s);
int rm_shape_unsqueeze(struct rm_snode *s);
int rm_shape_transpose(struct rm_snode *s);
int rm_shape_pad(struct rm_snode *s);
int rm_kernel_copy(const struct rm_kcall *k);
int rm_kernel_shape(const struct rm_kcall *k);
int rm_kernel_gather(const struct rm_kcall *k);
int rm_kernel_slice(const struct rm_kcall *k);
int rm_kernel_concat(const struct rm_kcall *k);
int rm_kernel_transpose(const struct rm_kcall *k);
int rm_kernel_pad(const struct rm_kcall *k);

/* ops/eltwise.c: unary activations and math, broadcasting binary ops */
int rm_shape_unary_float(struct rm_snode *s);
int rm_shape_broadcast(struct rm_snode *s);
int rm_kernel_unary(const struct rm_kcall *k);
int rm_kernel_binary(const struct rm_kcall *k);

/* ops/conv.c */
int rm_shape_conv(struct rm_snode *s);
int64_t rm_macs_conv(const struct rm_graph *g, int node);

/* ops/pool.c */
int rm_shape_pool(struct rm_snode *s);
int rm_shape_global_pool(struct rm_snode *s);
int rm_kernel_pool(const struct rm_kcall *k);

/* ops/norm.c: BatchNormalization, Softmax, LogSoftmax */
int rm_shape_batch_norm(struct rm_snode *s);
int rm_shape_softmax(struct rm_snode *s);
int rm_kernel_batch_norm(const struct rm_kcall *k);
int rm_kernel_softmax(const struct rm_kcall *k);

/* ops/linear.c: Gemm, MatMul */
int rm_shape_gemm(struct rm_snode *s);
int rm_shape_matmul(struct rm_snode *s);
int64_t rm_macs_gemm(const struct rm_graph *g, int node);
int64_t rm_macs_matmul(const struct rm_graph *g, int node);
int rm_kernel_gemm(const struct rm_kcall *k);
int rm_kernel_matmul(const struct rm_kcall *k);

/* ops/reduce.c: ReduceMean, ReduceMax */
int rm_shape_reduce(struct rm_snode *s);
int rm_kernel_reduce(const struct rm_kcall *k);

#endif
