/* The engine's planners, one per op family, as the op table refers to them: each
 * builds the oneDNN step(s) of a node, or sets *fallback to have the node's C kernel
 * run instead (a layout oneDNN does not cover, a constant input, ...). */
#ifndef RM_PLANNERS_H
#define RM_PLANNERS_H

struct rm_plan;
struct rm_error;

int rm_plan_conv(struct rm_plan *p, int node, int *fallback, struct rm_error *err);
int rm_plan_pool(struct rm_plan *p, int node, int *fallback, struct rm_error *err);
int rm_plan_batch_norm(struct rm_plan *p, int node, int *fallback, struct rm_error *err);
int rm_plan_concat(struct rm_plan *p, int node, int *fallback, struct rm_error *err);
/* plan_concat.c: a Slice that keeps one contiguous run of a plain input, as a view */
int rm_plan_slice(struct rm_plan *p, int node, int *fallback, struct rm_error *err);
int rm_plan_copy(struct rm_plan *p, int node, int *fallback, struct rm_error *err);
int rm_plan_pad(struct rm_plan *p, int node, int *fallback, struct rm_error *err);
int rm_plan_binary(struct rm_plan *p, int node, int *fallback, struct rm_error *err);
int rm_plan_unary(struct rm_plan *p, int node, int *fallback, struct rm_error *err);
/* plan_deconv.c: ConvTranspose on oneDNN's deconvolution */
int rm_plan_conv_transpose(struct rm_plan *p, int node, int *fallback, struct rm_error *err);
/* plan_resample.c: Resize/Upsample on oneDNN's resampling where it computes the same */
int rm_plan_resize(struct rm_plan *p, int node, int *fallback, struct rm_error *err);
/* plan_norm.c: LayerNormalization, InstanceNormalization on oneDNN's normalisations */
int rm_plan_layer_norm(struct rm_plan *p, int node, int *fallback, struct rm_error *err);
int rm_plan_instance_norm(struct rm_plan *p, int node, int *fallback, struct rm_error *err);

/* plan_math.c */
int rm_plan_prelu(struct rm_plan *p, int node, int *fallback, struct rm_error *err);
int rm_plan_sum(struct rm_plan *p, int node, int *fallback, struct rm_error *err);
int rm_plan_reduce(struct rm_plan *p, int node, int *fallback, struct rm_error *err);
int rm_plan_cast(struct rm_plan *p, int node, int *fallback, struct rm_error *err);
/* The eltwise algorithm of a unary math op (Tanh, Elu, Abs, Sqrt, Exp, Log, Softplus,
 * Mish, Gelu, Neg, Reciprocal, Pow by a constant scalar) appended to po, as
 * rm_eng_eltwise_of (plan_conv.c) does for the activations it knows; 0 when none. */
struct postop;
int rm_eng_math_eltwise_of(struct rm_plan *p, int node, struct postop *po, int *npo);

#endif
