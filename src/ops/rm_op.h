/* The op table: everything remodel knows about an ONNX operator, in one entry.
 * Every node is resolved to an enum rm_op once, when the graph is indexed; the rest of
 * the library asks the table (rm_op_def) instead of comparing op names. Adding an
 * operator means adding it to RM_OPS below, filling its entry in rm_op.c, and writing
 * its shape rule, kernel and tests (tests/test_ops fails for an op the engine runs that
 * has no case in tests/ops_cases.py). The table is static and read-only. */
#ifndef RM_OP_H
#define RM_OP_H

#include <stdbool.h>
#include <stdint.h>

/* Every operator remodel knows, as X(ENUM_SUFFIX, "OpType"), all in the default ONNX
 * domain (ai.onnx). */
#define RM_OPS(X)                                                                            \
    X(ABS, "Abs")                                                                            \
    X(ADD, "Add")                                                                            \
    X(AND, "And")                                                                            \
    X(ARG_MAX, "ArgMax")                                                                     \
    X(ARG_MIN, "ArgMin")                                                                     \
    X(AVERAGE_POOL, "AveragePool")                                                           \
    X(BATCH_NORM, "BatchNormalization")                                                      \
    X(CAST, "Cast")                                                                          \
    X(CEIL, "Ceil")                                                                          \
    X(CLIP, "Clip")                                                                          \
    X(CONCAT, "Concat")                                                                      \
    X(CONSTANT, "Constant")                                                                  \
    X(CONSTANT_OF_SHAPE, "ConstantOfShape")                                                  \
    X(CONV, "Conv")                                                                          \
    X(CONV_TRANSPOSE, "ConvTranspose")                                                       \
    X(DEPTH_TO_SPACE, "DepthToSpace")                                                        \
    X(DIV, "Div")                                                                            \
    X(DROPOUT, "Dropout")                                                                    \
    X(ELU, "Elu")                                                                            \
    X(EQUAL, "Equal")                                                                        \
    X(ERF, "Erf")                                                                            \
    X(EXP, "Exp")                                                                            \
    X(EXPAND, "Expand")                                                                      \
    X(FLATTEN, "Flatten")                                                                    \
    X(FLOOR, "Floor")                                                                        \
    X(GATHER, "Gather")                                                                      \
    X(GELU, "Gelu")                                                                          \
    X(GEMM, "Gemm")                                                                          \
    X(GLOBAL_AVERAGE_POOL, "GlobalAveragePool")                                              \
    X(GLOBAL_MAX_POOL, "GlobalMaxPool")                                                      \
    X(GREATER, "Greater")                                                                    \
    X(GREATER_OR_EQUAL, "GreaterOrEqual")                                                    \
    X(GROUP_NORM, "GroupNormalization")                                                      \
    X(HARD_SIGMOID, "HardSigmoid")                                                           \
    X(HARD_SWISH, "HardSwish")                                                               \
    X(IDENTITY, "Identity")                                                                  \
    X(INSTANCE_NORM, "InstanceNormalization")                                                \
    X(LAYER_NORM, "LayerNormalization")                                                      \
    X(LEAKY_RELU, "LeakyRelu")                                                               \
    X(LESS, "Less")                                                                          \
    X(LESS_OR_EQUAL, "LessOrEqual")                                                          \
    X(LOG, "Log")                                                                            \
    X(LOG_SOFTMAX, "LogSoftmax")                                                             \
    X(MATMUL, "MatMul")                                                                      \
    X(MAX, "Max")                                                                            \
    X(MAX_POOL, "MaxPool")                                                                   \
    X(MEAN, "Mean")                                                                          \
    X(MIN, "Min")                                                                            \
    X(MISH, "Mish")                                                                          \
    X(MUL, "Mul")                                                                            \
    X(NEG, "Neg")                                                                            \
    X(NOT, "Not")                                                                            \
    X(OR, "Or")                                                                              \
    X(PRELU, "PRelu")                                                                        \
    X(PAD, "Pad")                                                                            \
    X(POW, "Pow")                                                                            \
    X(RANGE, "Range")                                                                        \
    X(RECIPROCAL, "Reciprocal")                                                              \
    X(REDUCE_L2, "ReduceL2")                                                                 \
    X(REDUCE_MAX, "ReduceMax")                                                               \
    X(REDUCE_MEAN, "ReduceMean")                                                             \
    X(REDUCE_MIN, "ReduceMin")                                                               \
    X(REDUCE_PROD, "ReduceProd")                                                             \
    X(REDUCE_SUM, "ReduceSum")                                                               \
    X(RELU, "Relu")                                                                          \
    X(RESHAPE, "Reshape")                                                                    \
    X(RESIZE, "Resize")                                                                      \
    X(SELU, "Selu")                                                                          \
    X(SHAPE, "Shape")                                                                        \
    X(SIGMOID, "Sigmoid")                                                                    \
    X(SLICE, "Slice")                                                                        \
    X(SOFTMAX, "Softmax")                                                                    \
    X(SOFTPLUS, "Softplus")                                                                  \
    X(SOFTSIGN, "Softsign")                                                                  \
    X(SPACE_TO_DEPTH, "SpaceToDepth")                                                        \
    X(SPLIT, "Split")                                                                        \
    X(SQRT, "Sqrt")                                                                          \
    X(SQUEEZE, "Squeeze")                                                                    \
    X(SUB, "Sub")                                                                            \
    X(SUM, "Sum")                                                                            \
    X(TANH, "Tanh")                                                                          \
    X(TILE, "Tile")                                                                          \
    X(TOPK, "TopK")                                                                          \
    X(TRANSPOSE, "Transpose")                                                                \
    X(UNSQUEEZE, "Unsqueeze")                                                                \
    X(UPSAMPLE, "Upsample")                                                                  \
    X(WHERE, "Where")                                                                        \
    X(XOR, "Xor")

enum rm_op {
    RM_OP_UNKNOWN = 0, /* not in the table, or not in the default domain */
#define RM_OP_ENUM_(id, name) RM_OP_##id,
    RM_OPS(RM_OP_ENUM_)
#undef RM_OP_ENUM_
        RM_OP_COUNT
};

/* How channels (axis 1 of an activation) flow through an op, for replace and prune. */
enum rm_chan {
    RM_CHAN_BLOCK = 0, /* cannot be followed: a group that reaches it is not prunable */
    RM_CHAN_PASS,      /* output channel c is input channel c (activations, pools, Identity) */
    RM_CHAN_PARAM,     /* the same, with per-channel parameters that follow (BatchNormalization) */
    RM_CHAN_REDUCE,    /* passes when it reduces spatial axes only (a global pool as a reduction) */
    RM_CHAN_CONV,      /* group 1: consumes its input's channels, produces new ones; depthwise:
                          passes them (with per-channel weights); other groups: blocks */
    RM_CHAN_ELTWISE,   /* broadcasting binary op: inputs with the same channels are one group */
    RM_CHAN_CONCAT,    /* output channels are its inputs' channels at offsets (axis 1 only) */
    RM_CHAN_SPLIT,     /* the inverse of CONCAT: output k's channels are a contiguous range of
                          its input's, at the sum of the earlier outputs' sizes (Split on axis
                          1 only; on another axis channels pass to every output) */
    RM_CHAN_FLATTEN,   /* channels become the features of a following Linear */
    RM_CHAN_GEMM,      /* consumes features: a Linear's input columns */
    RM_CHAN_CONV_TRANSPOSE, /* ConvTranspose, weight [C_in, C_out/group, k...]: group 1 consumes its
                          input's channels on weight axis 0 and produces new ones on weight axis 1
                          (and the bias); depthwise (group = C_in = C_out) passes them with
                          per-channel weights (axis 0); other groups block */
    RM_CHAN_RESAMPLE,  /* Resize, Upsample: channels pass when the scale on axes 0 and 1 is 1 (output
                          dims 0 and 1 equal the input's); a `sizes` input that is a constant names
                          the channel count and must follow the edit (Shape-derived sizes follow by
                          themselves); otherwise blocks */
    RM_CHAN_PAD,       /* Pad: channels pass when its pads on axes 0 and 1 are known zeros (torch
                          exports AvgPool2d with count_include_pad as Pad + AveragePool, and
                          ZeroPad2d/ReflectionPad2d as Pad); otherwise blocks */
    RM_CHAN_LAYER_NORM, /* LayerNormalization: passes when `axis` (normalised) is >= 2, the
                          channels then lie outside the normalised axes and Scale/B do not span
                          them; blocks when the statistics mix channels (axis 0 or 1) */
};

/* Op flags. */
enum {
    RM_OPF_HELPER = 1 << 0, /* carries no computation of its own (Identity, Constant): the
                               module tree gives it to the module it feeds */
    RM_OPF_ENGINE = 1 << 1, /* the engine runs it (every op with a C kernel also runs at
                               plan time when its inputs are constants, and in shape inference
                               on small constants) */
    RM_OPF_F32 = 1 << 3,    /* the engine runs it on float32 input 0 only (float64 is carried
                               as float32, see rm_engine.h) */
    RM_OPF_ONE_OUTPUT = 1 << 4, /* the engine computes output 0 only (not training outputs,
                                   Dropout's mask) */
};

struct rm_tree;
struct rm_module;
struct rm_snode;
struct rm_kcall;
struct rm_graph;
struct rm_plan;
struct rm_error;

/* Shape rule: sets the types and shapes of a node's outputs from its inputs' (see
 * rm_ops_int.h). Returns 0, or RM_ENOMEM. */
typedef int (*rm_shape_fn)(struct rm_snode *s);
/* Multiply-accumulates of a node from inferred shapes; -1 when a shape is unknown. */
typedef int64_t (*rm_macs_fn)(const struct rm_graph *g, int node);
/* C kernel on plain row-major tensors (see rm_ops_int.h). Returns 0 or an RM_E* code. */
typedef int (*rm_kernel_fn)(const struct rm_kcall *k);
/* Engine planner: builds the node's oneDNN step(s), or sets *fallback to run the C
 * kernel instead. Returns 0 or an RM_E* code. */
typedef int (*rm_plan_fn)(struct rm_plan *p, int node, int *fallback, struct rm_error *err);
/* Module-tree kind of a leaf whose defining op this is: sets the leaf's PyTorch type,
 * constructor arguments and parameters from its first node of this op (node); `others`
 * are the leaf's other ops (helpers excluded). Returns false when they do not form a
 * module it knows (the leaf then stays of unknown type). */
typedef bool (*rm_leaf_fn)(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others,
                           int n_others);

struct rm_op_def {
    enum rm_chan chan;    /* channel role */
    unsigned flags;       /* RM_OPF_* */
    rm_shape_fn shape;    /* NULL: outputs keep their declared shapes */
    rm_macs_fn macs;      /* NULL: no multiply-accumulates counted */
    rm_kernel_fn kernel;  /* NULL: no C kernel */
    rm_plan_fn plan;      /* NULL: the engine runs the C kernel */
    rm_leaf_fn leaf;      /* NULL: it never defines a leaf module */
};

/* The table, indexed by enum rm_op. */
extern const struct rm_op_def rm_op_defs[RM_OP_COUNT];

/* Op of a node from its domain (NULL, "" or "ai.onnx" is the default domain) and
 * op_type; RM_OP_UNKNOWN when remodel does not know it. */
enum rm_op rm_op_lookup(const char *domain, const char *op_type);

/* ONNX op_type of op ("?" for RM_OP_UNKNOWN and out-of-range values). */
const char *rm_op_name(enum rm_op op);

/* The entry of op (RM_OP_UNKNOWN's for out-of-range values). */
static inline const struct rm_op_def *rm_op_def(enum rm_op op)
{
    return &rm_op_defs[(unsigned)op < RM_OP_COUNT ? op : RM_OP_UNKNOWN];
}

/* Whether channels pass straight through op (RM_CHAN_PASS or RM_CHAN_PARAM). */
static inline bool rm_op_passes_channels(enum rm_op op)
{
    enum rm_chan c = rm_op_def(op)->chan;
    return c == RM_CHAN_PASS || c == RM_CHAN_PARAM;
}

#endif
