/* The inference engine: compiles a model into a plan of oneDNN primitives and small
 * C kernels once, then runs it many times. Its interface is public (remodel.h:
 * "inference sessions", rm_session_* over struct rm_plan); the internals are in
 * rm_engine_int.h.
 *
 * The plan owns every buffer, primitive and reordered weight and holds the model's
 * graph index; the model must outlive the plan and must not change while it exists (the
 * plan never changes it, except that given inputs set its input shapes, as
 * rm_model_set_inputs does). Everything computed from constants only (the shape
 * arithmetic of dynamic-shape exports: Shape -> Cast -> Div -> Concat -> Reshape,
 * ConstantOfShape, Range, Where/Equal chains, ...) is evaluated once at plan time. With fuse=0 every node's output is
 * readable with rm_session_get right after its step (activation buffers are still
 * shared between values whose lifetimes do not overlap), so two plans stepped in
 * lockstep (diff --layers) never hold every activation at once. 3x3 stride-1 convs with
 * >= 16 channels use oneDNN's Winograd kernels unless direct_conv (about 15% faster on
 * resnet18, error ~1e-6 relative). A plan is not thread-safe.
 *
 * Element types. Values are carried as float32 or int64 (rm_dtype_host): float64 as
 * float32 (computed in float32), bool as int64 0/1, int32/int16/int8/uint8 as int64
 * (wrapped to their width where Cast converts to them). Shape inference still gives
 * every value its ONNX type. Inputs, rm_session_get and rm_session_output take and give
 * the carried type; rm_session_output_type names an output's ONNX type, to write it as
 * such. */
#ifndef RM_ENGINE_H
#define RM_ENGINE_H

#include "remodel.h"
#include "rm_graph.h"
#include "rm_model.h"
#include "rm_tensorio.h"

#include <stdint.h>

struct rm_plan;

/* Empty oneDNN's primitive cache (its capacity kept): the compiled kernels of plans
 * already freed stay there until evicted; plans alive keep theirs. */
void rm_eng_cache_drop(void);

#endif
