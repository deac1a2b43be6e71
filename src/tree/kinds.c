/* Module kinds: a leaf's PyTorch type, constructor arguments and parameters from its
 * nodes (one function per op that can define a leaf, named by the op table), and the
 * class of a container recognised from its children's names (torchvision's blocks). */
#include "rm_tree.h"
#include "rm_tree_int.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- graph helpers -------------------------------------------------------------- */

/* Dims of value v (following Identity to an initializer); returns rank or -1. */
static int value_dims(const struct rm_graph *g, int v, int64_t dims[RM_MAX_RANK])
{
    if (v < 0)
        return -1;
    int init = rm_tree_follow_init(g, v);
    if (init >= 0) {
        const Onnx__TensorProto *t = g->proto->initializer[init];
        if (t->n_dims > RM_MAX_RANK)
            return -1;
        for (size_t i = 0; i < t->n_dims; i++)
            dims[i] = t->dims[i];
        return (int)t->n_dims;
    }
    if (g->values[v].rank < 0 || g->values[v].rank > RM_MAX_RANK)
        return -1;
    for (int i = 0; i < g->values[v].rank; i++)
        dims[i] = g->values[v].dims[i];
    return g->values[v].rank;
}

/* Scalar float held by v: an initializer or a Constant node's value. */
static bool value_scalar(const struct rm_graph *g, int v, double *out)
{
    const Onnx__TensorProto *t = rm_graph_const_tensor(g, v);
    int64_t n;
    float f;
    if (!t || rm_tensor_numel(t, &n, NULL) || n != 1 || rm_tensor_check(t, NULL) ||
        rm_tensor_to_f32(t, &f, 1, NULL))
        return false;
    *out = f;
    return true;
}

/* int64 vector held by a Constant node or initializer behind v; returns count or -1. */
static int value_ints(const struct rm_graph *g, int v, int64_t *out, int max)
{
    const Onnx__TensorProto *t = rm_graph_const_tensor(g, v);
    int64_t n;
    if (!t || rm_tensor_numel(t, &n, NULL) || n > max || rm_tensor_check(t, NULL) ||
        rm_tensor_to_i64(t, out, n, NULL))
        return -1;
    return (int)n;
}

/* ---- leaf kinds and arguments ----------------------------------------------------- */

static struct rm_arg *add_arg(struct rm_module *m, const char *key, int type)
{
    if (m->n_args >= RM_TREE_MAX_ARGS)
        return NULL;
    struct rm_arg *a = &m->args[m->n_args++];
    memset(a, 0, sizeof *a);
    a->key = key;
    a->type = type;
    a->in_repr = true;
    return a;
}

static void arg_int(struct rm_module *m, const char *key, int64_t v, bool positional, bool in_repr)
{
    struct rm_arg *a = add_arg(m, key, RM_ARG_INT);
    if (a) {
        a->i[0] = v;
        a->positional = positional;
        a->in_repr = in_repr;
    }
}

static void arg_ints(struct rm_module *m, const char *key, const int64_t *v, int n, bool scalar,
                     bool in_repr)
{
    struct rm_arg *a = add_arg(m, key, RM_ARG_INTS);
    if (a) {
        int cap = (int)(sizeof a->i / sizeof a->i[0]); /* 2-D modules: pairs */
        a->n = n > cap ? cap : n;
        for (int i = 0; i < a->n; i++)
            a->i[i] = v[i];
        a->scalar_repr = scalar;
        a->in_repr = in_repr;
    }
}

static void arg_float(struct rm_module *m, const char *key, double v)
{
    struct rm_arg *a = add_arg(m, key, RM_ARG_FLOAT);
    if (a)
        a->f = v;
}

static void arg_bool(struct rm_module *m, const char *key, bool v, bool in_repr)
{
    struct rm_arg *a = add_arg(m, key, RM_ARG_BOOL);
    if (a) {
        a->i[0] = v;
        a->in_repr = in_repr;
    }
}

/* PyTorch's BatchNorm momentum from ONNX's (the weight of the old running value):
 * the shortest decimal d with float(1 - d) == m, so 0.9f gives 0.1. */
static double momentum_from_onnx(float m)
{
    char e[64];
    double x = 1.0 - (double)m, y = x;
    for (int prec = 0; prec < 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec, x);
        y = strtod(e, NULL);
        if ((float)(1.0 - y) == m)
            break;
    }
    return y;
}

/* Spatial attribute of n values (default def), e.g. strides. */
static void spatial(const Onnx__NodeProto *n, const char *attr, int nsp, int64_t def, int64_t *out)
{
    size_t cnt;
    const int64_t *v = rm_node_attr_ints(n, attr, &cnt);
    for (int i = 0; i < nsp; i++)
        out[i] = v && (size_t)i < cnt ? v[i] : def;
}

bool rm_tree_all_eq(const int64_t *v, int n, int64_t x)
{
    for (int i = 0; i < n; i++)
        if (v[i] != x)
            return false;
    return true;
}

static void add_param(struct rm_tree *t, struct rm_module *m, const char *role, int node, int slot)
{
    const struct rm_graph *g = t->g;
    int v = rm_tree_node_input(g, node, (size_t)slot);
    if (v < 0)
        return;
    struct rm_param *p = rm_arena_alloc(&t->arena, (m->n_params + 1) * sizeof *p);
    if (!p)
        return; /* params are an index; a failed copy leaves the previous list */
    if (m->n_params)
        memcpy(p, m->params, m->n_params * sizeof *p);
    p[m->n_params] = (struct rm_param){role, node, slot, v, rm_tree_follow_init(g, v)};
    m->params = p;
    m->n_params++;
}

static int first_op(const struct rm_tree *t, const struct rm_module *m, enum rm_op op)
{
    for (size_t i = 0; i < m->n_nodes; i++)
        if (t->g->nodes[m->nodes[i]].op == op)
            return m->nodes[i];
    return -1;
}

/* ---- leaf kinds: one function per op that can define a leaf (rm_op_def.leaf) ----
 * Each gets the leaf, its first node of that op, and the other (non-helper) ops of the
 * leaf; it returns false when those companions do not make a module it knows. */

/* Whether the companions are exactly `allowed` (RM_OP_UNKNOWN: none) or none. */
static bool companions(const enum rm_op *others, int n, enum rm_op allowed)
{
    return n == 0 || (n == 1 && others[0] == allowed && allowed != RM_OP_UNKNOWN);
}

static bool leaf_conv_any(struct rm_tree *t, struct rm_module *m, int node, bool transpose)
{
    const struct rm_graph *g = t->g;
    const Onnx__NodeProto *n = g->nodes[node].proto;
    int64_t w[RM_MAX_RANK];
    int rank = value_dims(g, rm_tree_node_input(g, node, 1), w);
    size_t kcnt;
    const int64_t *ks = rm_node_attr_ints(n, "kernel_shape", &kcnt);
    int nsp = rank >= 3 ? rank - 2 : ks ? (int)kcnt : 2;
    if (nsp < 1 || nsp > 3)
        nsp = 2;
    static const char *const names[2][3] = {
        {"Conv1d", "Conv2d", "Conv3d"},
        {"ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"},
    };
    m->type = names[transpose][nsp - 1];
    int64_t group = rm_node_attr_int(n, "group", 1);
    int64_t cin = -1, cout = -1;
    if (rank >= 3) {
        if (transpose) {
            cin = w[0];
            cout = w[1] > 0 && group > 0 && w[1] <= INT64_MAX / group ? w[1] * group : -1;
        } else {
            cout = w[0];
            cin = w[1] > 0 && group > 0 && w[1] <= INT64_MAX / group ? w[1] * group : -1;
        }
    }
    int64_t k[3], s[3], d[3], p[6], op[3];
    for (int i = 0; i < nsp; i++)
        k[i] = ks && (size_t)i < kcnt ? ks[i] : rank >= 3 ? w[2 + i] : -1;
    spatial(n, "strides", nsp, 1, s);
    spatial(n, "dilations", nsp, 1, d);
    spatial(n, "pads", 2 * nsp, 0, p);
    spatial(n, "output_padding", nsp, 0, op);
    arg_int(m, "in_channels", cin, true, true);
    arg_int(m, "out_channels", cout, true, true);
    arg_ints(m, "kernel_size", k, nsp, false, true);
    arg_ints(m, "stride", s, nsp, false, true);
    arg_ints(m, "padding", p, nsp, false, !rm_tree_all_eq(p, nsp, 0));
    if (transpose)
        arg_ints(m, "output_padding", op, nsp, false, !rm_tree_all_eq(op, nsp, 0));
    arg_ints(m, "dilation", d, nsp, false, !rm_tree_all_eq(d, nsp, 1));
    arg_int(m, "groups", group, false, group != 1);
    bool bias = rm_tree_node_input(g, node, 2) >= 0;
    int wv = rm_tree_node_input(g, node, 1);
    struct rm_strbuf tmp = {0};
    if (wv >= 0 && !rm_tree_param_path(g->values[wv].name, &tmp) && rm_tree_follow_init(g, wv) >= 0) {
        m->bn_folded = true; /* the bias comes from the folded BatchNorm */
        arg_bool(m, "bias", false, true);
    } else {
        arg_bool(m, "bias", bias, !bias);
    }
    free(tmp.s);
    add_param(t, m, "weight", node, 1);
    if (bias)
        add_param(t, m, "bias", node, 2);
    return true;
}

bool rm_leaf_conv(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n)
{
    return companions(others, n, RM_OP_UNKNOWN) && leaf_conv_any(t, m, node, false);
}

bool rm_leaf_conv_transpose(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n)
{
    return companions(others, n, RM_OP_UNKNOWN) && leaf_conv_any(t, m, node, true);
}

/* MaxPool/AveragePool, alone or after the Pad that avg_pool2d with padding exports. */
bool rm_leaf_pool(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n_others)
{
    if (!companions(others, n_others, RM_OP_PAD))
        return false;
    const struct rm_graph *g = t->g;
    const Onnx__NodeProto *n = g->nodes[node].proto;
    bool max = g->nodes[node].op == RM_OP_MAX_POOL;
    size_t kcnt;
    const int64_t *ks = rm_node_attr_ints(n, "kernel_shape", &kcnt);
    int nsp = ks && kcnt >= 1 && kcnt <= 3 ? (int)kcnt : 2;
    static const char *const names[2][3] = {{"AvgPool1d", "AvgPool2d", "AvgPool3d"},
                                            {"MaxPool1d", "MaxPool2d", "MaxPool3d"}};
    m->type = names[max][nsp - 1];
    int64_t k[3], s[3], p[6], d[3];
    spatial(n, "kernel_shape", nsp, 1, k);
    spatial(n, "strides", nsp, 1, s);
    spatial(n, "pads", 2 * nsp, 0, p);
    spatial(n, "dilations", nsp, 1, d);
    int pad = first_op(t, m, RM_OP_PAD);
    if (pad >= 0) {
        int64_t pads[2 * (3 + 2)];
        int np = value_ints(g, rm_tree_node_input(g, pad, 1), pads, 2 * (3 + 2));
        if (np == 2 * (nsp + 2))
            for (int i = 0; i < nsp; i++)
                p[i] += pads[2 + i];
    }
    arg_ints(m, "kernel_size", k, nsp, true, true);
    arg_ints(m, "stride", s, nsp, true, true);
    arg_ints(m, "padding", p, nsp, true, true);
    if (max) {
        arg_ints(m, "dilation", d, nsp, true, true);
        arg_bool(m, "ceil_mode", rm_node_attr_int(n, "ceil_mode", 0) != 0, true);
    }
    return true;
}

/* Gemm, or MatMul with an optional Add for the bias. */
bool rm_leaf_linear(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n)
{
    const struct rm_graph *g = t->g;
    bool gemm = g->nodes[node].op == RM_OP_GEMM;
    if (!companions(others, n, gemm ? RM_OP_UNKNOWN : RM_OP_ADD))
        return false;
    int64_t w[RM_MAX_RANK];
    int rank = value_dims(g, rm_tree_node_input(g, node, 1), w);
    bool tb = gemm && rm_node_attr_int(g->nodes[node].proto, "transB", 0);
    int64_t in = -1, out = -1;
    if (rank == 2) {
        in = tb ? w[1] : w[0];
        out = tb ? w[0] : w[1];
    }
    m->type = "Linear";
    arg_int(m, "in_features", in, false, true);
    arg_int(m, "out_features", out, false, true);
    int add = first_op(t, m, RM_OP_ADD);
    bool bias = gemm ? rm_tree_node_input(g, node, 2) >= 0 : add >= 0;
    arg_bool(m, "bias", bias, true);
    add_param(t, m, "weight", node, 1);
    if (gemm && bias)
        add_param(t, m, "bias", node, 2);
    else if (bias) /* MatMul + Add: the bias is the Add input that is an initializer */
        add_param(t, m, "bias", add, rm_tree_follow_init(g, rm_tree_node_input(g, add, 1)) >= 0 ? 1 : 0);
    return true;
}

bool rm_leaf_batch_norm(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n_others)
{
    if (!companions(others, n_others, RM_OP_UNKNOWN))
        return false;
    const struct rm_graph *g = t->g;
    const Onnx__NodeProto *n = g->nodes[node].proto;
    int64_t w[RM_MAX_RANK], x[RM_MAX_RANK];
    int xr = value_dims(g, rm_tree_node_input(g, node, 0), x);
    m->type = xr == 2 || xr == 3 ? "BatchNorm1d" : xr == 5 ? "BatchNorm3d" : "BatchNorm2d";
    arg_int(m, "num_features", value_dims(g, rm_tree_node_input(g, node, 1), w) == 1 ? w[0] : -1, true, true);
    arg_float(m, "eps", rm_node_attr_float(n, "epsilon", 1e-5f));
    arg_float(m, "momentum", momentum_from_onnx(rm_node_attr_float(n, "momentum", 0.9f)));
    arg_bool(m, "affine", true, true);
    arg_bool(m, "track_running_stats", true, true);
    add_param(t, m, "weight", node, 1);
    add_param(t, m, "bias", node, 2);
    add_param(t, m, "running_mean", node, 3);
    add_param(t, m, "running_var", node, 4);
    return true;
}

/* Activations that print as `Name(inplace=True)` or `Name()`. */
bool rm_leaf_activation(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n)
{
    const struct rm_graph *g = t->g;
    switch (g->nodes[node].op) {
    case RM_OP_RELU:
        if (!companions(others, n, RM_OP_UNKNOWN))
            return false;
        m->type = "ReLU";
        arg_bool(m, "inplace", true, true);
        return true;
    case RM_OP_SIGMOID: /* x * sigmoid(x) is SiLU */
        if (!companions(others, n, RM_OP_MUL))
            return false;
        m->type = n ? "SiLU" : "Sigmoid";
        if (n)
            arg_bool(m, "inplace", true, true);
        return true;
    case RM_OP_HARD_SIGMOID: /* x * hardsigmoid(x) is Hardswish */
        if (!companions(others, n, RM_OP_MUL))
            return false;
        m->type = n ? "Hardswish" : "Hardsigmoid";
        return true;
    case RM_OP_HARD_SWISH:
        m->type = "Hardswish";
        return companions(others, n, RM_OP_UNKNOWN);
    case RM_OP_TANH:
        m->type = "Tanh";
        return companions(others, n, RM_OP_UNKNOWN);
    case RM_OP_LEAKY_RELU:
        if (!companions(others, n, RM_OP_UNKNOWN))
            return false;
        m->type = "LeakyReLU";
        arg_float(m, "negative_slope", rm_node_attr_float(g->nodes[node].proto, "alpha", 0.01f));
        return true;
    case RM_OP_ELU:
        if (!companions(others, n, RM_OP_UNKNOWN))
            return false;
        m->type = "ELU";
        arg_float(m, "alpha", rm_node_attr_float(g->nodes[node].proto, "alpha", 1.0f));
        return true;
    default:
        return false;
    }
}

/* Clip: ReLU6 for [0, 6], else Hardtanh. */
bool rm_leaf_clip(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n_others)
{
    if (!companions(others, n_others, RM_OP_UNKNOWN))
        return false;
    const struct rm_graph *g = t->g;
    const Onnx__NodeProto *n = g->nodes[node].proto;
    double lo = -INFINITY, hi = INFINITY;
    if (g->opset && g->opset < 11) {
        lo = rm_node_attr_float(n, "min", -INFINITY);
        hi = rm_node_attr_float(n, "max", INFINITY);
    } else {
        value_scalar(g, rm_tree_node_input(g, node, 1), &lo);
        value_scalar(g, rm_tree_node_input(g, node, 2), &hi);
    }
    if (lo == 0 && hi == 6) {
        m->type = "ReLU6";
        arg_bool(m, "inplace", true, true);
    } else {
        m->type = "Hardtanh";
        arg_float(m, "min_val", lo);
        arg_float(m, "max_val", hi);
    }
    return true;
}

bool rm_leaf_softmax(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n)
{
    if (!companions(others, n, RM_OP_UNKNOWN))
        return false;
    const struct rm_graph *g = t->g;
    m->type = g->nodes[node].op == RM_OP_SOFTMAX ? "Softmax" : "LogSoftmax";
    arg_int(m, "dim", rm_node_attr_int(g->nodes[node].proto, "axis", g->opset >= 13 ? -1 : 1), false, true);
    return true;
}

bool rm_leaf_global_pool(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n)
{
    if (!companions(others, n, RM_OP_UNKNOWN))
        return false;
    m->type = t->g->nodes[node].op == RM_OP_GLOBAL_AVERAGE_POOL ? "AdaptiveAvgPool2d" : "AdaptiveMaxPool2d";
    static const int64_t one[2] = {1, 1};
    arg_ints(m, "output_size", one, 2, false, true);
    return true;
}

bool rm_leaf_flatten(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n)
{
    if (!companions(others, n, RM_OP_UNKNOWN))
        return false;
    m->type = "Flatten";
    arg_int(m, "start_dim", rm_node_attr_int(t->g->nodes[node].proto, "axis", 1), false, true);
    arg_int(m, "end_dim", -1, false, true);
    return true;
}

bool rm_leaf_dropout(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n)
{
    if (!companions(others, n, RM_OP_UNKNOWN))
        return false;
    m->type = "Dropout";
    double p = 0.5;
    value_scalar(t->g, rm_tree_node_input(t->g, node, 1), &p);
    arg_float(m, "p", p);
    arg_bool(m, "inplace", false, true);
    return true;
}

bool rm_leaf_prelu(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n)
{
    if (!companions(others, n, RM_OP_UNKNOWN))
        return false;
    m->type = "PReLU";
    int64_t w[RM_MAX_RANK];
    int r = value_dims(t->g, rm_tree_node_input(t->g, node, 1), w);
    int64_t num = 1;
    for (int i = 0; i < r; i++)
        if (w[i] > 1)
            num = w[i];
    arg_int(m, "num_parameters", num, false, true);
    add_param(t, m, "weight", node, 1);
    return true;
}

/* Give a leaf its PyTorch kind, arguments and parameters from its nodes: the one op of
 * the leaf that has a leaf function in the op table decides, given the others. */
void rm_tree_classify_leaf(struct rm_tree *t, struct rm_module *m)
{
    const struct rm_graph *g = t->g;
    /* distinct op types, helpers (Constant, Identity) left out */
    enum rm_op ops[4];
    int nops = 0;
    for (size_t i = 0; i < m->n_nodes; i++) {
        enum rm_op op = g->nodes[m->nodes[i]].op;
        if (rm_op_def(op)->flags & RM_OPF_HELPER)
            continue;
        int k = 0;
        while (k < nops && ops[k] != op)
            k++;
        if (k == nops) {
            if (nops == 4)
                return; /* too many kinds of op for one leaf module */
            ops[nops++] = op;
        }
    }
    int main = -1;
    for (int k = 0; k < nops; k++)
        if (rm_op_def(ops[k])->leaf) {
            if (main >= 0)
                return; /* two ops that each define a module */
            main = k;
        }
    if (main < 0)
        return;
    enum rm_op others[3];
    int n_others = 0;
    for (int k = 0; k < nops; k++)
        if (k != main)
            others[n_others++] = ops[k];
    int node = first_op(t, m, ops[main]);
    m->main_node = node;
    if (rm_op_def(ops[main])->leaf(t, m, node, others, n_others)) {
        m->type_known = true;
        return;
    }
    /* companions it does not know: an unknown leaf, as if never classified */
    m->main_node = -1;
    m->type = "Module";
    m->n_args = 0;
    m->n_params = 0;
    m->bn_folded = false;
}

/* Containers whose class can be recognised from the names of their children (those
 * that leave nodes in an export; folded BatchNorms do not): torchvision's building blocks.
 * Rows are tried in order; '#' in an allowed name stands for digits. */
struct signature {
    const char *type;
    bool root_only;
    const char *required; /* space separated child names that must be present */
    const char *allowed;  /* space separated child names that may be present */
    const char *first_type; /* type the first required child must have, or NULL */
};

static const struct signature signatures[] = {
    {"ResNet", true, "conv1 layer1 layer2 layer3 layer4 fc",
     "conv1 bn1 relu maxpool layer1 layer2 layer3 layer4 avgpool fc", NULL},
    {"Bottleneck", false, "conv1 conv2 conv3",
     "conv1 bn1 conv2 bn2 conv3 bn3 relu downsample", NULL},
    {"BasicBlock", false, "conv1 conv2", "conv1 bn1 relu conv2 bn2 downsample", NULL},
    {"SqueezeExcitation", false, "fc1 fc2", "avgpool fc1 activation fc2 scale_activation", NULL},
    {"Fire", false, "squeeze expand1x1 expand3x3",
     "squeeze squeeze_activation expand1x1 expand1x1_activation expand3x3 "
     "expand3x3_activation", NULL},
    {"Inception", false, "branch1 branch2 branch3 branch4",
     "branch1 branch2 branch3 branch4", NULL},
    {"_DenseLayer", false, "conv1 conv2", "norm1 relu1 conv1 norm2 relu2 conv2", NULL},
    {"_Transition", false, "conv pool", "norm relu conv pool", NULL},
    {"MBConv", false, "block", "block stochastic_depth", NULL},
    {"BottleneckTransform", false, "a b c", "a b se c", NULL},
    {"ResBottleneckBlock", false, "f", "proj f activation", NULL},
    {"InvertedResidual", false, "conv", "conv", "Sequential"},
    {"InvertedResidual", false, "branch2", "branch1 branch2", NULL},
    {"_InvertedResidual", false, "layers", "layers", "Sequential"},
    {"BasicConv2d", false, "conv", "conv bn", "Conv2d"},
    {"_DenseBlock", false, "denselayer1", "denselayer#", NULL},
    {"AnyStage", false, "", "block#-#", NULL},
    {"GoogLeNet", true, "conv1 inception3a inception5b fc",
     "conv1 maxpool1 conv2 conv3 maxpool2 inception3a inception3b maxpool3 inception4a "
     "inception4b inception4c inception4d inception4e maxpool4 inception5a inception5b "
     "avgpool dropout fc", NULL},
    {"ShuffleNetV2", true, "conv1 stage2 stage3 stage4 conv5 fc",
     "conv1 maxpool stage2 stage3 stage4 conv5 fc", NULL},
    {"RegNet", true, "stem trunk_output fc", "stem trunk_output avgpool fc", NULL},
};

/* Whether name matches pattern (length len), where '#' stands for one or more digits. */
static bool pattern_match(const char *pat, size_t len, const char *name)
{
    const char *end = pat + len;
    while (pat < end) {
        if (*pat == '#') {
            if (!isdigit((unsigned char)*name))
                return false;
            while (isdigit((unsigned char)*name))
                name++;
            pat++;
        } else if (*pat++ != *name++) {
            return false;
        }
    }
    return *name == '\0';
}

static bool word_in(const char *words, const char *w)
{
    for (const char *p = words; *p;) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (pattern_match(p, len, w))
            return true;
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

static const struct rm_module *child(const struct rm_module *m, const char *name, size_t len)
{
    for (size_t i = 0; i < m->n_children; i++)
        if (strlen(m->children[i]->name) == len && !memcmp(m->children[i]->name, name, len))
            return m->children[i];
    return NULL;
}

static bool digits_only(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

void rm_tree_classify_container(struct rm_module *m)
{
    bool numbered = true;
    for (size_t i = 0; i < m->n_children; i++)
        numbered &= digits_only(m->children[i]->name);
    if (numbered) {
        m->type = "Sequential";
        m->type_known = true;
        return;
    }
    for (size_t s = 0; s < sizeof signatures / sizeof signatures[0]; s++) {
        const struct signature *sig = &signatures[s];
        if (sig->root_only && m->parent)
            continue;
        bool ok = true;
        for (size_t i = 0; ok && i < m->n_children; i++)
            ok = word_in(sig->allowed, m->children[i]->name);
        for (const char *p = sig->required; ok && *p;) {
            const char *e = strchr(p, ' ');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            const struct rm_module *c = child(m, p, len);
            ok = c && (p != sig->required || !sig->first_type || !strcmp(c->type, sig->first_type));
            p = e ? e + 1 : p + len;
        }
        if (ok) {
            m->type = sig->type;
            m->type_known = true;
            return;
        }
    }
}

