/* The op table (see rm_op.h) and name lookup. */
#include "rm_op.h"
#include "rm_strmap.h"
#include "rm_ops_int.h"
#include "rm_planners.h"
#include "rm_tree_int.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define PASS RM_CHAN_PASS
#define ELT RM_CHAN_ELTWISE
#define BLOCK RM_CHAN_BLOCK
#define ENG RM_OPF_ENGINE
#define HELPER RM_OPF_HELPER
#define F32 RM_OPF_F32
#define ONE RM_OPF_ONE_OUTPUT

/* Element-wise unary math on float32 (Abs, Neg, Floor and Ceil take int64 too). */
#define UNARY(flags, leaf_fn)                                                                \
    {PASS, ENG | (flags), .shape = rm_shape_unary_float, .kernel = rm_kernel_unary, .plan = rm_plan_unary, \
     .leaf = (leaf_fn)}
/* Broadcasting arithmetic. */
#define ARITH(plan_fn) {ELT, ENG, .shape = rm_shape_broadcast, .kernel = rm_kernel_binary, .plan = (plan_fn)}
/* Comparisons and logic: bool outputs. */
#define LOGIC(rule) {BLOCK, ENG, .shape = rule, .kernel = rm_kernel_compare}
#define REDUCE(flags) {RM_CHAN_REDUCE, ENG | (flags), .shape = rm_shape_reduce, .kernel = rm_kernel_reduce, .plan = rm_plan_reduce}

/* Channel role, flags, then what implements the op: shape rule, MAC count, C kernel,
 * engine planner, module-tree kind. Every op with a C kernel is also folded at plan
 * time when its inputs are constants, and in shape inference on small constants. */
const struct rm_op_def rm_op_defs[RM_OP_COUNT] = {
    [RM_OP_UNKNOWN] = {BLOCK, 0, .shape = NULL},
    [RM_OP_ABS] = UNARY(0, NULL),
    [RM_OP_ADD] = ARITH(rm_plan_binary),
    [RM_OP_AND] = LOGIC(rm_shape_logic),
    [RM_OP_ARG_MAX] = {BLOCK, ENG, .shape = rm_shape_arg, .kernel = rm_kernel_arg},
    [RM_OP_ARG_MIN] = {BLOCK, ENG, .shape = rm_shape_arg, .kernel = rm_kernel_arg},
    [RM_OP_AVERAGE_POOL] = {PASS, ENG | F32, .shape = rm_shape_pool, .kernel = rm_kernel_pool, .plan = rm_plan_pool,
                            .leaf = rm_leaf_pool},
    [RM_OP_BATCH_NORM] = {RM_CHAN_PARAM, ENG | F32 | ONE, .shape = rm_shape_batch_norm, .kernel = rm_kernel_batch_norm,
                          .plan = rm_plan_batch_norm, .leaf = rm_leaf_batch_norm},
    [RM_OP_CAST] = {PASS, ENG, .shape = rm_shape_cast, .kernel = rm_kernel_cast, .plan = rm_plan_cast},
    [RM_OP_CEIL] = UNARY(0, NULL),
    [RM_OP_CLIP] = {PASS, ENG | ONE, .shape = rm_shape_unary_float, .kernel = rm_kernel_unary, .plan = rm_plan_unary,
                    .leaf = rm_leaf_clip},
    [RM_OP_CONCAT] = {RM_CHAN_CONCAT, ENG, .shape = rm_shape_concat, .kernel = rm_kernel_concat, .plan = rm_plan_concat},
    [RM_OP_CONSTANT] = {BLOCK, HELPER | ENG, .shape = rm_shape_constant},
    [RM_OP_CONSTANT_OF_SHAPE] = {BLOCK, ENG, .shape = rm_shape_constant_of_shape, .kernel = rm_kernel_constant_of_shape},
    [RM_OP_CONV] = {RM_CHAN_CONV, ENG | F32, .shape = rm_shape_conv, .macs = rm_macs_conv, .plan = rm_plan_conv,
                    .leaf = rm_leaf_conv},
    [RM_OP_CONV_TRANSPOSE] = {RM_CHAN_CONV_TRANSPOSE, ENG | F32, .shape = rm_shape_conv_transpose,
                              .macs = rm_macs_conv_transpose, .kernel = rm_kernel_conv_transpose,
                              .plan = rm_plan_conv_transpose, .leaf = rm_leaf_conv_transpose},
    /* channels regroup with space (c -> c / b^2 and back): the edits cannot follow them */
    [RM_OP_DEPTH_TO_SPACE] = {RM_CHAN_BLOCK, ENG, .shape = rm_shape_depth_to_space,
                              .kernel = rm_kernel_space_depth},
    [RM_OP_DIV] = ARITH(rm_plan_binary),
    [RM_OP_DROPOUT] = {PASS, ENG | ONE, .shape = rm_shape_dropout, .kernel = rm_kernel_copy, .plan = rm_plan_copy,
                       .leaf = rm_leaf_dropout},
    [RM_OP_ELU] = UNARY(F32, rm_leaf_activation),
    [RM_OP_EQUAL] = LOGIC(rm_shape_compare),
    [RM_OP_ERF] = UNARY(F32, NULL),
    [RM_OP_EXP] = UNARY(F32, NULL),
    [RM_OP_EXPAND] = {BLOCK, ENG, .shape = rm_shape_expand, .kernel = rm_kernel_expand},
    [RM_OP_FLATTEN] = {RM_CHAN_FLATTEN, ENG, .shape = rm_shape_flatten, .kernel = rm_kernel_copy,
                       .leaf = rm_leaf_flatten},
    [RM_OP_FLOOR] = UNARY(0, NULL),
    [RM_OP_GATHER] = {BLOCK, ENG, .shape = rm_shape_gather, .kernel = rm_kernel_gather},
    [RM_OP_GELU] = UNARY(F32, NULL),
    [RM_OP_GEMM] = {RM_CHAN_GEMM, ENG | F32, .shape = rm_shape_gemm, .macs = rm_macs_gemm, .kernel = rm_kernel_gemm,
                    .leaf = rm_leaf_linear},
    [RM_OP_GLOBAL_AVERAGE_POOL] = {PASS, ENG | F32, .shape = rm_shape_global_pool, .plan = rm_plan_pool,
                                   .leaf = rm_leaf_global_pool},
    [RM_OP_GLOBAL_MAX_POOL] = {PASS, ENG | F32, .shape = rm_shape_global_pool, .plan = rm_plan_pool,
                               .leaf = rm_leaf_global_pool},
    [RM_OP_GREATER] = LOGIC(rm_shape_compare),
    [RM_OP_GREATER_OR_EQUAL] = LOGIC(rm_shape_compare),
    /* statistics over groups of channels: pruning one changes its group's */
    [RM_OP_GROUP_NORM] = {RM_CHAN_BLOCK, ENG | F32, .shape = rm_shape_group_norm,
                          .kernel = rm_kernel_group_norm},
    [RM_OP_HARD_SIGMOID] = {PASS, ENG | F32 | ONE, .shape = rm_shape_unary_float, .kernel = rm_kernel_unary,
                            .plan = rm_plan_unary, .leaf = rm_leaf_activation},
    [RM_OP_HARD_SWISH] = {PASS, ENG | F32 | ONE, .shape = rm_shape_unary_float, .kernel = rm_kernel_unary,
                          .plan = rm_plan_unary, .leaf = rm_leaf_activation},
    [RM_OP_IDENTITY] = {PASS, HELPER | ENG | ONE, .shape = rm_shape_same, .kernel = rm_kernel_copy, .plan = rm_plan_copy},
    /* per-channel scale and B, like BatchNormalization's */
    [RM_OP_INSTANCE_NORM] = {RM_CHAN_PARAM, ENG | F32, .shape = rm_shape_instance_norm,
                             .kernel = rm_kernel_instance_norm, .plan = rm_plan_instance_norm},
    [RM_OP_LAYER_NORM] = {RM_CHAN_LAYER_NORM, ENG | F32, .shape = rm_shape_layer_norm,
                          .kernel = rm_kernel_layer_norm, .plan = rm_plan_layer_norm},
    [RM_OP_LEAKY_RELU] = {PASS, ENG | F32 | ONE, .shape = rm_shape_unary_float, .kernel = rm_kernel_unary,
                          .plan = rm_plan_unary, .leaf = rm_leaf_activation},
    [RM_OP_LESS] = LOGIC(rm_shape_compare),
    [RM_OP_LESS_OR_EQUAL] = LOGIC(rm_shape_compare),
    [RM_OP_LOG] = UNARY(F32, NULL),
    [RM_OP_LOG_SOFTMAX] = {BLOCK, 0, .shape = rm_shape_softmax, .leaf = rm_leaf_softmax},
    [RM_OP_MATMUL] = {BLOCK, ENG | F32, .shape = rm_shape_matmul, .macs = rm_macs_matmul, .kernel = rm_kernel_matmul,
                      .leaf = rm_leaf_linear},
    [RM_OP_MAX] = ARITH(rm_plan_binary),
    [RM_OP_MAX_POOL] = {PASS, ENG | F32, .shape = rm_shape_pool, .kernel = rm_kernel_pool, .plan = rm_plan_pool,
                        .leaf = rm_leaf_pool},
    [RM_OP_MEAN] = ARITH(rm_plan_sum),
    [RM_OP_MIN] = ARITH(rm_plan_binary),
    [RM_OP_MISH] = UNARY(F32, NULL),
    [RM_OP_MUL] = ARITH(rm_plan_binary),
    [RM_OP_NEG] = UNARY(0, NULL),
    [RM_OP_NOT] = {BLOCK, ENG, .shape = rm_shape_not, .kernel = rm_kernel_not},
    [RM_OP_OR] = LOGIC(rm_shape_logic),
    [RM_OP_PRELU] = {ELT, ENG, .shape = rm_shape_prelu, .kernel = rm_kernel_binary, .plan = rm_plan_prelu,
                     .leaf = rm_leaf_prelu},
    [RM_OP_PAD] = {RM_CHAN_PAD, ENG, .shape = rm_shape_pad, .kernel = rm_kernel_pad, .plan = rm_plan_pad},
    [RM_OP_POW] = {ELT, ENG, .shape = rm_shape_pow, .kernel = rm_kernel_binary, .plan = rm_plan_unary},
    [RM_OP_RANGE] = {BLOCK, ENG, .shape = rm_shape_range, .kernel = rm_kernel_range},
    [RM_OP_RECIPROCAL] = UNARY(F32, NULL),
    [RM_OP_REDUCE_L2] = REDUCE(F32),
    [RM_OP_REDUCE_MAX] = REDUCE(0),
    [RM_OP_REDUCE_MEAN] = {RM_CHAN_REDUCE, ENG | F32, .shape = rm_shape_reduce, .kernel = rm_kernel_reduce,
                           .plan = rm_plan_reduce, .leaf = rm_leaf_reduce_mean},
    [RM_OP_REDUCE_MIN] = REDUCE(0),
    [RM_OP_REDUCE_PROD] = REDUCE(0),
    [RM_OP_REDUCE_SUM] = REDUCE(0),
    [RM_OP_RELU] = {PASS, ENG | F32 | ONE, .shape = rm_shape_unary_float, .kernel = rm_kernel_unary, .plan = rm_plan_unary,
                    .leaf = rm_leaf_activation},
    [RM_OP_RESHAPE] = {BLOCK, ENG, .shape = rm_shape_reshape, .kernel = rm_kernel_copy},
    [RM_OP_RESIZE] = {RM_CHAN_RESAMPLE, ENG | F32, .shape = rm_shape_resize, .kernel = rm_kernel_resize,
                      .plan = rm_plan_resize},
    [RM_OP_SELU] = UNARY(F32, NULL),
    [RM_OP_SHAPE] = {BLOCK, ENG, .shape = rm_shape_shape, .kernel = rm_kernel_shape},
    [RM_OP_SIGMOID] = {PASS, ENG | F32 | ONE, .shape = rm_shape_unary_float, .kernel = rm_kernel_unary, .plan = rm_plan_unary,
                       .leaf = rm_leaf_activation},
    [RM_OP_SLICE] = {BLOCK, ENG, .shape = rm_shape_slice, .kernel = rm_kernel_slice},
    [RM_OP_SOFTMAX] = {BLOCK, ENG | F32 | ONE, .shape = rm_shape_softmax, .kernel = rm_kernel_softmax,
                       .leaf = rm_leaf_softmax},
    [RM_OP_SOFTPLUS] = UNARY(F32, NULL),
    [RM_OP_SOFTSIGN] = UNARY(F32, NULL),
    [RM_OP_SPACE_TO_DEPTH] = {RM_CHAN_BLOCK, ENG, .shape = rm_shape_space_to_depth,
                              .kernel = rm_kernel_space_depth},
    [RM_OP_SPLIT] = {RM_CHAN_SPLIT, ENG, .shape = rm_shape_split, .kernel = rm_kernel_split},
    [RM_OP_SQRT] = UNARY(F32, NULL),
    [RM_OP_SQUEEZE] = {BLOCK, ENG, .shape = rm_shape_squeeze, .kernel = rm_kernel_copy},
    [RM_OP_SUB] = ARITH(rm_plan_binary),
    [RM_OP_SUM] = ARITH(rm_plan_sum),
    [RM_OP_TANH] = UNARY(F32, rm_leaf_activation),
    [RM_OP_TILE] = {BLOCK, ENG, .shape = rm_shape_tile, .kernel = rm_kernel_tile},
    [RM_OP_TOPK] = {BLOCK, ENG, .shape = rm_shape_topk, .kernel = rm_kernel_topk},
    [RM_OP_TRANSPOSE] = {BLOCK, ENG, .shape = rm_shape_transpose, .kernel = rm_kernel_transpose},
    [RM_OP_UNSQUEEZE] = {BLOCK, ENG, .shape = rm_shape_unsqueeze, .kernel = rm_kernel_copy},
    [RM_OP_UPSAMPLE] = {RM_CHAN_RESAMPLE, ENG | F32, .shape = rm_shape_resize, .kernel = rm_kernel_resize,
                        .plan = rm_plan_resize},
    [RM_OP_WHERE] = {BLOCK, ENG, .shape = rm_shape_where, .kernel = rm_kernel_where},
    [RM_OP_XOR] = LOGIC(rm_shape_logic),
};

/* Op names, from RM_OPS. */
static const char *const op_names[RM_OP_COUNT] = {
    [RM_OP_UNKNOWN] = "?",
#define RM_OP_NAME_(id, name) [RM_OP_##id] = name,
    RM_OPS(RM_OP_NAME_)
#undef RM_OP_NAME_
};

/* Op names -> enum, built once. */
static struct rm_strmap by_name;
static pthread_once_t by_name_once = PTHREAD_ONCE_INIT;

static void build_by_name(void)
{
    for (int op = 1; op < RM_OP_COUNT; op++)
        if (rm_strmap_put(&by_name, op_names[op], op, NULL))
            return; /* out of memory: lookups find nothing and say so */
}

const char *rm_op_name(enum rm_op op)
{
    return op_names[(unsigned)op < RM_OP_COUNT ? op : RM_OP_UNKNOWN];
}

enum rm_op rm_op_lookup(const char *domain, const char *op_type)
{
    if (!op_type || (domain && domain[0] && strcmp(domain, "ai.onnx") != 0))
        return RM_OP_UNKNOWN;
    pthread_once(&by_name_once, build_by_name);
    int op = rm_strmap_get(&by_name, op_type);
    return op > 0 ? (enum rm_op)op : RM_OP_UNKNOWN;
}
