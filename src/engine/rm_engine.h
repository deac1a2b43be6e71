/* The inference engine: compiles a model into a plan of oneDNN primitives and small
 * C kernels once, then runs it many times. The plan owns every buffer, primitive and
 * reordered weight and holds the model's graph index; the model must outlive the plan
 * and must not change while it exists (the plan never changes it, except that given
 * inputs set its input shapes, as rm_model_set_inputs does). Everything computed from
 * constants only (shape arithmetic: Shape -> Cast -> Div -> Concat -> Reshape,
 * ConstantOfShape, Range, Where/Equal chains, ...) is evaluated once at plan time.
 * A plan is not thread-safe; run different plans from different threads at most.
 *
 * Element types. Values are carried as float32 or int64 (rm_dtype_host): float64 as
 * float32 (computed in float32), bool as int64 0/1, int32/int16/int8/uint8 as int64
 * (wrapped to their width where Cast converts to them). Shape inference still gives
 * every value its ONNX type. Inputs, rm_plan_get and rm_plan_output take and give the
 * carried type; rm_plan_output_type names an output's ONNX type, for writing it as
 * such. */
#ifndef RM_ENGINE_H
#define RM_ENGINE_H

#include "rm_graph.h"
#include "rm_model.h"
#include "rm_tensorio.h"

#include <stdint.h>

struct rm_plan;

struct rm_plan_opts {
    int threads;         /* OpenMP threads for oneDNN (process-wide setting; the C kernels
                            are single-threaded); 0 = library default */
    int fuse;            /* 1: fold BN into Conv, fuse Relu/Clip/residual Add as post-ops;
                            0: every node output is observable with rm_plan_get right
                            after its step (activation buffers are still shared between
                            values whose lifetimes do not overlap) */
    int direct_conv;     /* 1: direct convolution only; 0 (default): 3x3 stride-1 convs
                            with >= 16 channels use oneDNN's Winograd kernels where
                            implemented (about 15% faster on resnet18, error ~1e-6
                            relative), everything else direct */
    /* Input values known before planning (borrowed during rm_plan_init only). An
     * int64 one (shape, axes, pads or index tensor fed as an input, as ONNX's node
     * tests do) is fixed at plan time: it becomes a constant and is no longer an
     * rm_plan_set_input target. A float one gives the dims of the input's dynamic
     * dimensions and its initial value. Declared static dims must match. They become
     * the model's input shapes (rm_model_set_inputs). */
    int n_given;
    const char *const *given_names;
    const struct rm_host_tensor *given_values;
};

/* Default options: threads 0, fuse 1, no given inputs. */
void rm_plan_opts_default(struct rm_plan_opts *o);

/* Compile model m into *out (free with rm_plan_free). opts may be NULL (defaults).
 * Every op is checked first: an unsupported op is RM_EUNSUPPORTED "node 'X': op Foo is
 * not supported" before anything is allocated; bad shapes or attributes are RM_EFORMAT
 * naming the node. Inputs start zeroed. */
int rm_plan_init(struct rm_plan **out, struct rm_model *m, const struct rm_plan_opts *opts,
                 struct rm_error *err);

/* Release everything the plan owns. Accepts NULL. */
void rm_plan_free(struct rm_plan *p);

/* Number of graph inputs the caller feeds (initializers listed as inputs excluded),
 * and their names/shapes: rm_plan_input_info fills t's dtype/rank/dims (data NULL). */
int rm_plan_n_inputs(const struct rm_plan *p);
const char *rm_plan_input_name(const struct rm_plan *p, int k);
void rm_plan_input_info(const struct rm_plan *p, int k, struct rm_host_tensor *t);

/* Copy t into the graph input `name`. dtype and dims must match the planned shape.
 * Returns 0, RM_ENOTFOUND (no such input) or RM_EFORMAT (dtype/shape mismatch). */
int rm_plan_set_input(struct rm_plan *p, const char *name, const struct rm_host_tensor *t,
                      struct rm_error *err);

/* Fill every input not set with rm_plan_set_input since the plan was made with seeded
 * standard-normal values (float) or zeros (int64). Same seed, same values, in input
 * order: two plans of models with the same inputs get the same data. */
void rm_plan_random_inputs(struct rm_plan *p, uint64_t seed);

/* Run the whole plan. Returns 0 or a negative RM_E* code. */
int rm_plan_run(struct rm_plan *p, struct rm_error *err);

/* Step-wise execution: rm_plan_begin rewinds; rm_plan_step runs the next step and
 * sets *node_done to the index of the last graph node it completed (a fused step
 * completes several). Returns 1 when a step ran, 0 when the plan is finished, or a
 * negative RM_E* code. */
void rm_plan_begin(struct rm_plan *p);
int rm_plan_step(struct rm_plan *p, int *node_done, struct rm_error *err);

/* Number of steps in the plan (fused nodes and plan-time constants take none). */
int rm_plan_n_steps(const struct rm_plan *p);

/* Copy the current contents of tensor `name` into *out as a plain row-major tensor
 * (out is allocated, caller frees with rm_host_tensor_free). Valid for inputs,
 * constants, and any value produced by a step that has run. RM_ENOTFOUND for unknown
 * names, values not yet computed, values fused away (fuse=1), and values whose buffer
 * a later step has already reused. A step's own results are always readable right
 * after it: stepping two plans in lockstep and reading each value as it appears
 * (diff --layers) never needs every activation at once. */
int rm_plan_get(struct rm_plan *p, const char *name, struct rm_host_tensor *out,
                struct rm_error *err);

/* Graph outputs: count, name, and a borrowed plain view of output k after a run
 * (data owned by the plan, valid until the next run or rm_plan_free). The view is of
 * the type the value is carried in (see the top of this file); rm_plan_output_type is
 * the output's ONNX element type (BOOL for a bool output carried as int64 0/1). */
int rm_plan_n_outputs(const struct rm_plan *p);
const char *rm_plan_output_name(const struct rm_plan *p, int k);
int rm_plan_output(struct rm_plan *p, int k, struct rm_host_tensor *out, struct rm_error *err);
int32_t rm_plan_output_type(const struct rm_plan *p, int k);

/* Multiply-accumulates of one run, from planned shapes (Conv, Gemm, MatMul). */
int64_t rm_plan_macs(const struct rm_plan *p);

#endif
