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

/* numpy-style broadcast of n shapes (dims may be -1: unknown; an unknown dimension
 * against a known one larger than 1 is that one). Sets *rank and out; -1 when two known
 * sizes disagree (*bad_axis: the axis, counted from the end, negative). */
int rm_broadcast_dims(int n, const int *ranks, const int64_t *const *dims, int *rank, int64_t *out,
                      int *bad_axis);

/* Walking the output of a broadcasting kernel row by row (a row: the last axis). For
 * each input k, off[k] is the element offset of the current row's first element and
 * st[k][rank - 1] the step along the row (0 where the input broadcasts):
 *     rm_bcast_init(&b, out, n, in);
 *     for (int64_t r = 0; r < b.rows; r++, rm_bcast_next(&b))
 *         for (int64_t j = 0; j < b.inner; j++)
 *             o[r * b.inner + j] = f(x[b.off[0] + j * b.st[0][b.rank - 1]], ...); */
#define RM_BCAST_MAX 3
struct rm_bcast {
    int n, rank;                              /* inputs; output rank (a scalar is [1]) */
    int64_t dims[RM_MAX_RANK];                /* output dims */
    int64_t st[RM_BCAST_MAX][RM_MAX_RANK];    /* input strides along output axes, 0: broadcast */
    int64_t inner, rows;                      /* row length, number of rows */
    int64_t idx[RM_MAX_RANK];
    int64_t off[RM_BCAST_MAX];
};
void rm_bcast_init(struct rm_bcast *b, const struct rm_host_tensor *out, int n,
                   const struct rm_host_tensor *const *in);
void rm_bcast_next(struct rm_bcast *b);
/* o = x broadcast to o's shape (same type) */
void rm_broadcast_copy(const struct rm_host_tensor *x, struct rm_host_tensor *o);

/* Element i of a constant float32 or int64 tensor as an integer (a float is truncated,
 * NaN is 0 and values past int64 saturate) or as a double. */
int64_t rm_const_int(const struct rm_host_tensor *t, int64_t i);
double rm_const_num(const struct rm_host_tensor *t, int64_t i);

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

/* ops/eltwise.c: unary activations and math, broadcasting arithmetic */
/* Broadcast of inputs first .. first+n-1 (same_type: they must agree in type; else *et is
 * the first's). 0, or -1 when the output cannot be derived (reported when it is wrong). */
#define RM_MAX_INPUTS_BCAST 64
int rm_s_broadcast(struct rm_snode *s, size_t first, size_t n, bool same_type, int32_t *et, int *rank,
                   int64_t *dims);
int rm_shape_unary_float(struct rm_snode *s);
int rm_shape_broadcast(struct rm_snode *s);
int rm_shape_pow(struct rm_snode *s);
int rm_shape_prelu(struct rm_snode *s);
/* PRelu's slope dims (srank <= xrank) aligned to X's: from the right, or, before opset 7,
 * a 1-D slope of X's channel count along axis 1. */
void rm_prelu_slope_dims(int64_t opset, int xrank, const int64_t *xdims, int srank, const int64_t *sdims,
                         int64_t *out);
int rm_kernel_unary(const struct rm_kcall *k);
int rm_kernel_binary(const struct rm_kcall *k);

/* ops/logic.c: comparisons (Equal, Less, Greater, LessOrEqual, GreaterOrEqual), Not,
 * And, Or, Xor, Where. Bool values are carried as int64 0/1. */
int rm_shape_compare(struct rm_snode *s);
int rm_shape_logic(struct rm_snode *s);
int rm_shape_not(struct rm_snode *s);
int rm_shape_where(struct rm_snode *s);
int rm_kernel_compare(const struct rm_kcall *k);
int rm_kernel_not(const struct rm_kcall *k);
int rm_kernel_where(const struct rm_kcall *k);

/* ops/generate.c: Cast, ConstantOfShape, Range, Expand, Tile, Split */
int rm_shape_cast(struct rm_snode *s);
int rm_shape_constant_of_shape(struct rm_snode *s);
int rm_shape_range(struct rm_snode *s);
int rm_shape_expand(struct rm_snode *s);
int rm_shape_tile(struct rm_snode *s);
int rm_shape_split(struct rm_snode *s);
int rm_kernel_cast(const struct rm_kcall *k);
int rm_kernel_constant_of_shape(const struct rm_kcall *k);
int rm_kernel_range(const struct rm_kcall *k);
int rm_kernel_expand(const struct rm_kcall *k);
int rm_kernel_tile(const struct rm_kcall *k);
int rm_kernel_split(const struct rm_kcall *k);
/* Sizes of Split's outputs along axis (dim: the input's size there, -1 unknown), from
 * the split input (NULL: absent), the split attribute or num_outputs / the number of
 * outputs. 0, or RM_EFORMAT / RM_EUNSUPPORTED with the reason in why. */
int rm_split_sizes(const Onnx__NodeProto *np, int64_t opset, const struct rm_host_tensor *split, int64_t dim,
                   int64_t *sizes, size_t n_out, char *why, size_t why_size);

/* ops/conv.c */
int rm_shape_conv(struct rm_snode *s);
int64_t rm_macs_conv(const struct rm_graph *g, int node);

/* ops/pool.c */
int rm_shape_pool(struct rm_snode *s);
int rm_shape_global_pool(struct rm_snode *s);
int rm_kernel_pool(const struct rm_kcall *k);

/* ops/norm.c: BatchNormalization, Softmax, LogSoftmax, LayerNormalization,
 * InstanceNormalization, GroupNormalization */
int rm_shape_batch_norm(struct rm_snode *s);
int rm_shape_softmax(struct rm_snode *s);
int rm_shape_layer_norm(struct rm_snode *s);
int rm_shape_instance_norm(struct rm_snode *s);
int rm_shape_group_norm(struct rm_snode *s);
int rm_kernel_batch_norm(const struct rm_kcall *k);
int rm_kernel_softmax(const struct rm_kcall *k);
int rm_kernel_layer_norm(const struct rm_kcall *k);
int rm_kernel_instance_norm(const struct rm_kcall *k);
int rm_kernel_group_norm(const struct rm_kcall *k);

/* ops/linear.c: Gemm, MatMul */
int rm_shape_gemm(struct rm_snode *s);
int rm_shape_matmul(struct rm_snode *s);
int64_t rm_macs_gemm(const struct rm_graph *g, int node);
int64_t rm_macs_matmul(const struct rm_graph *g, int node);
int rm_kernel_gemm(const struct rm_kcall *k);
int rm_kernel_matmul(const struct rm_kcall *k);

/* ops/reduce.c: ReduceMean/Max/Min/Sum/Prod/L2, ArgMax/ArgMin, TopK */
int rm_shape_reduce(struct rm_snode *s);
int rm_shape_arg(struct rm_snode *s);
int rm_shape_topk(struct rm_snode *s);
int rm_kernel_reduce(const struct rm_kcall *k);
int rm_kernel_arg(const struct rm_kcall *k);
int rm_kernel_topk(const struct rm_kcall *k);
/* Which axes of a rank-`rank` input a Reduce* node reduces (axes: its constant axes
 * input, or NULL): red[i] = 1. 0, or an RM_E code with the reason in *why. */
int rm_reduced_axes(const Onnx__NodeProto *np, const struct rm_host_tensor *axes, int rank, int *red,
                    const char **why);

/* ops/conv_transpose.c: ConvTranspose. Geometry along each spatial axis: the output
 * size, and the pads that crop the full transposed convolution to it (pr may be
 * negative: output_padding or an output_shape past the full size adds elements that
 * only the bias reaches). */
struct rm_deconv {
    int sp;
    int64_t group;
    int64_t k[RM_MAX_RANK], s[RM_MAX_RANK], d[RM_MAX_RANK];
    int64_t pl[RM_MAX_RANK], pr[RM_MAX_RANK], out[RM_MAX_RANK];
};
/* Geometry of ConvTranspose node np over input dims (rank >= 3; unknown spatial dims
 * give unknown outputs) and weight dims [C_in, C_out/group, k...]. Returns 0, or
 * RM_EFORMAT / RM_EUNSUPPORTED with the reason in why. */
int rm_deconv_of(const Onnx__NodeProto *np, int rank, const int64_t *dims, const int64_t *wdims,
                 struct rm_deconv *dc, char *why, size_t why_size);
int rm_shape_conv_transpose(struct rm_snode *s);
int64_t rm_macs_conv_transpose(const struct rm_graph *g, int node);
int rm_kernel_conv_transpose(const struct rm_kcall *k);

/* ops/resize.c: Resize (opsets 10-19), Upsample (7-9). Parameters per axis, resolved
 * from the attributes and the constant inputs roi/scales/sizes. */
enum { RM_RS_NEAREST, RM_RS_LINEAR, RM_RS_CUBIC };
enum {
    RM_CT_HALF_PIXEL, RM_CT_HALF_PIXEL_SYMMETRIC, RM_CT_PYTORCH_HALF_PIXEL, RM_CT_ALIGN_CORNERS,
    RM_CT_ASYMMETRIC, RM_CT_TF_HALF_PIXEL_FOR_NN, RM_CT_TF_CROP_AND_RESIZE
};
/* nearest_mode; SIMPLE is opsets < 11 as onnxruntime reads them: floor when upsampling
 * an axis, ceil when downsampling it */
enum { RM_NM_ROUND_PREFER_FLOOR, RM_NM_ROUND_PREFER_CEIL, RM_NM_FLOOR, RM_NM_CEIL, RM_NM_SIMPLE };
struct rm_resize {
    int rank, mode, ctm, nearest, exclude_outside, antialias;
    double cubic_a;
    float extrapolation;
    int64_t in[RM_MAX_RANK], out[RM_MAX_RANK]; /* out -1: unknown (unknown input dim) */
    double scale[RM_MAX_RANK];                 /* the scale the coordinates use */
    double roi[2 * RM_MAX_RANK];               /* starts..., ends... (tf_crop_and_resize) */
};
/* Which inputs of a Resize/Upsample node (op, opset) are roi, scales and sizes (-1:
 * none at that opset). */
void rm_resize_inputs(enum rm_op op, int64_t opset, int *roi, int *scales, int *sizes);
/* The constant inputs as a rule or kernel sees them: contents (NULL: absent or not
 * known) and whether the node names them at all. */
struct rm_resize_in {
    const struct rm_host_tensor *roi, *scales, *sizes;
    bool roi_given, scales_given, sizes_given;
};
/* Parameters of Resize/Upsample node np (op, opset) over an input of `rank` dims (-1:
 * unknown). Returns 0, or RM_EFORMAT / RM_EUNSUPPORTED with the reason in why. */
int rm_resize_of(const Onnx__NodeProto *np, enum rm_op op, int64_t opset, int rank, const int64_t *dims,
                 const struct rm_resize_in *in, struct rm_resize *r, char *why, size_t why_size);
/* Interpolation taps of one axis: output index o reads input indices idx[o*n + t] with
 * weights w[o*n + t], t < n; outside[o] set where tf_crop_and_resize extrapolates. */
struct rm_resize_taps {
    int64_t n;
    int64_t *idx;
    float *w;
    unsigned char *outside;
    int any_outside;
};
/* Taps of axis a of r (known dims). Returns 0, RM_ENOMEM or RM_EFORMAT (why). */
int rm_resize_taps_of(const struct rm_resize *r, int a, struct rm_resize_taps *t, char *why, size_t why_size);
void rm_resize_taps_free(struct rm_resize_taps *t);
int rm_shape_resize(struct rm_snode *s);
int rm_kernel_resize(const struct rm_kcall *k);

/* ops/space.c: DepthToSpace, SpaceToDepth (any element type the engine holds) */
int rm_shape_depth_to_space(struct rm_snode *s);
int rm_shape_space_to_depth(struct rm_snode *s);
int rm_kernel_space_depth(const struct rm_kcall *k);

#endif
