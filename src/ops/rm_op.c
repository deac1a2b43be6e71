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
#define ENG RM_OPF_ENGINE
#define FOLD RM_OPF_FOLD
#define HELPER RM_OPF_HELPER
#define F32 RM_OPF_F32
#define ONE RM_OPF_ONE_OUTPUT

/* Channel role, flags, then what implements the op: shape rule, MAC count, C kernel,
 * engine planner, module-tree kind. */
const struct rm_op_def rm_op_defs[RM_OP_COUNT] = {
    [RM_OP_UNKNOWN] = {RM_CHAN_BLOCK, 0, .shape = NULL},
    [RM_OP_ABS] = {RM_CHAN_BLOCK, 0, .shape = rm_shape_unary_float},
    [RM_OP_ADD] = {RM_CHAN_ELTWISE, ENG | FOLD, .shape = rm_shape_broadcast, .kernel = rm_kernel_binary,
                   .plan = rm_plan_binary},
    [RM_OP_AVERAGE_POOL] = {PASS, ENG | F32, .shape = rm_shape_pool, .kernel = rm_kernel_pool, .plan = rm_plan_pool,
                            .leaf = rm_leaf_pool},
    [RM_OP_BATCH_NORM] = {RM_CHAN_PARAM, ENG | F32 | ONE, .shape = rm_shape_batch_norm, .kernel = rm_kernel_batch_norm,
                          .plan = rm_plan_batch_norm, .leaf = rm_leaf_batch_norm},
    [RM_OP_CLIP] = {PASS, ENG | F32 | ONE, .shape = rm_shape_unary_float, .kernel = rm_kernel_unary, .plan = rm_plan_unary,
                    .leaf = rm_leaf_clip},
    [RM_OP_CONCAT] = {RM_CHAN_CONCAT, ENG | FOLD, .shape = rm_shape_concat, .kernel = rm_kernel_concat,
                      .plan = rm_plan_concat},
    [RM_OP_CONSTANT] = {RM_CHAN_BLOCK, HELPER | ENG | FOLD, .shape = rm_shape_constant},
    [RM_OP_CONV] = {RM_CHAN_CONV, ENG | F32, .shape = rm_shape_conv, .macs = rm_macs_conv, .plan = rm_plan_conv,
                    .leaf = rm_leaf_conv},
    [RM_OP_CONV_TRANSPOSE] = {RM_CHAN_CONV_TRANSPOSE, ENG | F32, .shape = rm_shape_conv_transpose,
                              .macs = rm_macs_conv_transpose, .kernel = rm_kernel_conv_transpose,
                              .plan = rm_plan_conv_transpose, .leaf = rm_leaf_conv_transpose},
    /* channels regroup with space (c -> c / b^2 and back): the edits cannot follow them */
    [RM_OP_DEPTH_TO_SPACE] = {RM_CHAN_BLOCK, ENG | FOLD, .shape = rm_shape_depth_to_space,
                              .kernel = rm_kernel_space_depth},
    [RM_OP_DIV] = {RM_CHAN_ELTWISE, ENG | FOLD, .shape = rm_shape_broadcast, .kernel = rm_kernel_binary,
                   .plan = rm_plan_binary},
    [RM_OP_DROPOUT] = {PASS, ENG | FOLD | ONE, .shape = rm_shape_dropout, .kernel = rm_kernel_copy,
                       .plan = rm_plan_copy, .leaf = rm_leaf_dropout},
    [RM_OP_ELU] = {PASS, 0, .shape = rm_shape_unary_float, .leaf = rm_leaf_activation},
    [RM_OP_ERF] = {RM_CHAN_BLOCK, 0, .shape = rm_shape_unary_float},
    [RM_OP_EXP] = {RM_CHAN_BLOCK, 0, .shape = rm_shape_unary_float},
    [RM_OP_FLATTEN] = {RM_CHAN_FLATTEN, ENG | FOLD, .shape = rm_shape_flatten, .kernel = rm_kernel_copy,
                       .leaf = rm_leaf_flatten},
    [RM_OP_GATHER] = {RM_CHAN_BLOCK, ENG | FOLD, .shape = rm_shape_gather, .kernel = rm_kernel_gather},
    [RM_OP_GEMM] = {RM_CHAN_GEMM, ENG | F32, .shape = rm_shape_gemm, .macs = rm_macs_gemm, .kernel = rm_kernel_gemm,
                    .leaf = rm_leaf_linear},
    [RM_OP_GLOBAL_AVERAGE_POOL] = {PASS, ENG | F32, .shape = rm_shape_global_pool, .plan = rm_plan_pool,
                                   .leaf = rm_leaf_global_pool},
    [RM_OP_GLOBAL_MAX_POOL] = {PASS, ENG | F32, .shape = rm_shape_global_pool, .plan = rm_plan_pool,
                               .leaf = rm_leaf_global_pool},
    /* statistics over groups of channels: pruning one changes its group's */
    [RM_OP_GROUP_NORM] = {RM_CHAN_BLOCK, ENG | F32 | FOLD, .shape = rm_shape_group_norm,
                          .kernel = rm_kernel_group_norm},
    [RM_OP_HARD_SIGMOID] = {PASS, ENG | F32 | ONE, .shape = rm_shape_unary_float, .kernel = rm_kernel_unary,
                            .plan = rm_plan_unary, .leaf = rm_leaf_activation},
    [RM_OP_HARD_SWISH] = {PASS, ENG | F32 | ONE, .shape = rm_shape_unary_float, .kernel = rm_kernel_unary,
                          .plan = rm_plan_unary, .leaf = rm_leaf_activation},
    [RM_OP_IDENTITY] = {PASS, HELPER | ENG | FOLD | ONE, .shape = rm_shape_same, .kernel = rm_kernel_copy,
                        .plan = rm_plan_copy},
    /* per-channel scale and B, like BatchNormalization's */
    [RM_OP_INSTANCE_NORM] = {RM_CHAN_PARAM, ENG | F32 | FOLD, .shape = rm_shape_instance_norm,
                             .kernel = rm_kernel_instance_norm, .plan = rm_plan_instance_norm},
    [RM_OP_LAYER_NORM] = {RM_CHAN_LAYER_NORM, ENG | F32 | FOLD, .shape = rm_shape_layer_norm,
                          .kernel = rm_kernel_layer_norm, .plan = rm_plan_layer_norm},
    [RM_OP_LEAKY_RELU] = {PASS, ENG | F32 | ONE, .shape = rm_shape_unary_float, .kernel = rm_kernel_unary,
                          .plan = rm_plan_unary, .leaf = rm_leaf_activation},
    [RM_OP_LOG_SOFTMAX] = {RM_CHAN_BLOCK, 0, .shape = rm_shape_softmax, .leaf = rm_leaf_softmax},
    [RM_OP_MATMUL] = {RM_CHAN_BLOCK, ENG | F32, .shape = rm_shape_matmul, .macs = rm_macs_matmul,
                      .kernel = rm_kernel_matmul, .leaf = rm_leaf_linear},
    [RM_OP_MAX_POOL] = {PASS, ENG | F32, .shape = rm_shape_pool, .kernel = rm_kernel_pool, .plan = rm_plan_pool,
                        .leaf = rm_leaf_pool},
    [RM_OP_MUL] = {RM_CHAN_ELTWISE, ENG | FOLD, .shape = rm_shape_broadcast, .kernel = rm_kernel_binary,
                   .plan = rm_plan_binary},
    [RM_OP_NEG] = {RM_CHAN_BLOCK, 0, .shape = rm_shape_unary_float},
    [RM_OP_PAD] = {RM_CHAN_BLOCK, ENG | FOLD, .shape = rm_shape_pad, .kernel = rm_kernel_pad, .plan = rm_plan_pad},
    [RM_OP_POW] = {RM_CHAN_BLOCK, 0, .shape = rm_shape_broadcast},
    [RM_OP_PRELU] = {RM_CHAN_BLOCK, 0, .shape = rm_shape_unary_float, .leaf = rm_leaf_prelu},
    [RM_OP_REDUCE_MAX] = {RM_CHAN_REDUCE, 0, .shape = rm_shape_reduce},
    [RM_OP_REDUCE_MEAN] = {RM_CHAN_REDUCE, ENG | FOLD | F32, .shape = rm_shape_reduce, .kernel = rm_kernel_reduce},
    [RM_OP_RELU] = {PASS, ENG | F32 | ONE, .shape = rm_shape_unary_float, .kernel = rm_kernel_unary, .plan = rm_plan_unary,
                    .leaf = rm_leaf_activation},
    [RM_OP_RESHAPE] = {RM_CHAN_BLOCK, ENG | FOLD, .shape = rm_shape_reshape, .kernel = rm_kernel_copy},
    [RM_OP_RESIZE] = {RM_CHAN_RESAMPLE, ENG | F32 | FOLD, .shape = rm_shape_resize, .kernel = rm_kernel_resize,
                      .plan = rm_plan_resize},
    [RM_OP_SELU] = {PASS, 0, .shape = rm_shape_unary_float},
    [RM_OP_SHAPE] = {RM_CHAN_BLOCK, ENG | FOLD, .shape = rm_shape_shape, .kernel = rm_kernel_shape},
    [RM_OP_SIGMOID] = {PASS, ENG | F32 | ONE, .shape = rm_shape_unary_float, .kernel = rm_kernel_unary, .plan = rm_plan_unary,
                       .leaf = rm_leaf_activation},
    [RM_OP_SLICE] = {RM_CHAN_BLOCK, ENG | FOLD, .shape = rm_shape_slice, .kernel = rm_kernel_slice},
    [RM_OP_SOFTMAX] = {RM_CHAN_BLOCK, ENG | F32 | ONE, .shape = rm_shape_softmax, .kernel = rm_kernel_softmax,
                       .leaf = rm_leaf_softmax},
    [RM_OP_SOFTPLUS] = {PASS, 0, .shape = rm_shape_unary_float},
    [RM_OP_SPACE_TO_DEPTH] = {RM_CHAN_BLOCK, ENG | FOLD, .shape = rm_shape_space_to_depth,
                              .kernel = rm_kernel_space_depth},
    [RM_OP_SQRT] = {RM_CHAN_BLOCK, 0, .shape = rm_shape_unary_float},
    [RM_OP_SQUEEZE] = {RM_CHAN_BLOCK, ENG | FOLD, .shape = rm_shape_squeeze, .kernel = rm_kernel_copy},
    [RM_OP_SUB] = {RM_CHAN_ELTWISE, ENG | FOLD, .shape = rm_shape_broadcast, .kernel = rm_kernel_binary,
                   .plan = rm_plan_binary},
    [RM_OP_TANH] = {PASS, 0, .shape = rm_shape_unary_float, .leaf = rm_leaf_activation},
    [RM_OP_TRANSPOSE] = {RM_CHAN_BLOCK, ENG | FOLD, .shape = rm_shape_transpose, .kernel = rm_kernel_transpose},
    [RM_OP_UNSQUEEZE] = {RM_CHAN_BLOCK, ENG | FOLD, .shape = rm_shape_unsqueeze, .kernel = rm_kernel_copy},
    [RM_OP_UPSAMPLE] = {RM_CHAN_RESAMPLE, ENG | F32 | FOLD, .shape = rm_shape_resize, .kernel = rm_kernel_resize,
                        .plan = rm_plan_resize},
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
