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

int rm_tree_follow_const(const struct rm_graph *g, int v)
{
    for (int hops = 0; v >= 0 && (size_t)v < g->n_values && hops < 64; hops++) {
        int p = g->values[v].producer;
        if (p < 0 || g->values[v].init >= 0)
            return -1;
        if (g->nodes[p].op == RM_OP_CONSTANT)
            return p;
        if (g->nodes[p].op != RM_OP_IDENTITY || g->nodes[p].proto->n_input < 1)
            return -1;
        v = g->nodes[p].inputs[0];
    }
    return -1;
}

/* The tensor of an initializer or Constant node behind v (through Identity helpers). */
static const Onnx__TensorProto *const_tensor(const struct rm_graph *g, int v)
{
    int init = rm_tree_follow_init(g, v);
    if (init >= 0)
        return g->proto->initializer[init];
    int c = rm_tree_follow_const(g, v);
    const Onnx__AttributeProto *a = c >= 0 ? rm_node_attr(g->nodes[c].proto, "value") : NULL;
    return a ? a->t : NULL;
}

/* Dims of value v (a constant's own dims: an initializer or a Constant's tensor, through
 * Identity helpers; else what shape inference found); returns rank or -1. */
static int value_dims(const struct rm_graph *g, int v, int64_t dims[RM_MAX_RANK])
{
    if (v < 0)
        return -1;
    const Onnx__TensorProto *t = const_tensor(g, v);
    if (t) {
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

/* Rank of activation v: inferred or declared, else followed back through ops that keep
 * their input's rank (channel role pass or param, and elementwise ops through their first
 * computed input) to a conv (its weight's rank) or a value of known rank; -1 when
 * unknown. A tree built on an index shape inference has not run on still tells
 * BatchNorm1d from BatchNorm2d. */
static int value_rank(const struct rm_graph *g, int v)
{
    for (int hops = 0; v >= 0 && (size_t)v < g->n_values && hops < 256; hops++) {
        if (g->values[v].rank >= 0)
            return g->values[v].rank;
        int p = g->values[v].producer;
        if (p < 0)
            return -1;
        enum rm_op op = g->nodes[p].op;
        if (op == RM_OP_CONV || op == RM_OP_CONV_TRANSPOSE) {
            int64_t w[RM_MAX_RANK];
            return value_dims(g, rm_tree_node_input(g, p, 1), w);
        }
        enum rm_chan c = rm_op_def(op)->chan;
        if (c != RM_CHAN_PASS && c != RM_CHAN_PARAM && c != RM_CHAN_ELTWISE)
            return -1;
        int next = rm_tree_node_input(g, p, 0);
        for (size_t k = 0; c == RM_CHAN_ELTWISE && k < g->nodes[p].proto->n_input; k++)
            if (!rm_tree_is_const(g, rm_tree_node_input(g, p, k))) {
                next = rm_tree_node_input(g, p, k);
                break;
            }
        v = next;
    }
    return -1;
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
        int cap = RM_TREE_MAX_ARG_INTS;
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
    int init = rm_tree_follow_init(g, v);
    p[m->n_params] = (struct rm_param){role, node, slot, v, init,
                                       init >= 0 ? -1 : rm_tree_follow_const(g, v)};
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

/* Whether a conv reading weight value wv had a BatchNorm folded into it by PyTorch's
 * exporter: its weight is a constant that is no named parameter ("onnx::Conv_12"), in a
 * tree PyTorch named (other exporters name weights their own way: tf2onnx's
 * "model/conv2d/Conv2D/ReadVariableOp:0" is the layer's own weight). */
static bool bn_folded(const struct rm_tree *t, const struct rm_module *m, int wv)
{
    const struct rm_graph *g = t->g;
    if (wv < 0 || !rm_tree_is_const(g, wv))
        return false;
    const char *name = g->values[wv].name;
    struct rm_strbuf tmp = {0};
    bool param = rm_tree_param_path(name, &tmp);
    free(tmp.s);
    if (param)
        return false;
    if (!strncmp(name, "onnx::", 6))
        return true;
    unsigned torch = (1u << RM_TREE_SRC_DYNAMO) | (1u << RM_TREE_SRC_SCOPE) | (1u << RM_TREE_SRC_PARAM);
    return m->source != RM_TREE_SRC_SLASH && m->source != RM_TREE_SRC_TENSOR && (t->sources & torch);
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
    if (bn_folded(t, m, rm_tree_node_input(g, node, 1))) {
        m->bn_folded = true; /* the bias comes from the folded BatchNorm */
        arg_bool(m, "bias", false, true);
    } else {
        arg_bool(m, "bias", bias, !bias);
    }
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
    if (rm_tree_all_eq(k, nsp, 1) && rm_tree_all_eq(s, nsp, 1) && rm_tree_all_eq(p, 2 * nsp, 0))
        return false; /* an identity: AdaptiveAvgPool2d at its input's size, not a guess */
    bool scalar = max || nsp > 1; /* AvgPool1d keeps its sizes as 1-tuples */
    arg_ints(m, "kernel_size", k, nsp, scalar, true);
    arg_ints(m, "stride", s, nsp, scalar, true);
    arg_ints(m, "padding", p, nsp, scalar, true);
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
    int64_t w[RM_MAX_RANK];
    int wv = rm_tree_node_input(g, node, 1);
    /* MatMul(x, Transpose(W)), W a 2-D constant [out, in] (torch's export without constant
     * folding): the Transpose is the Linear's own */
    int tr = !gemm && wv >= 0 ? g->values[wv].producer : -1;
    if (tr >= 0) {
        size_t np;
        const int64_t *perm = rm_node_attr_ints(g->nodes[tr].proto, "perm", &np);
        if (g->nodes[tr].op != RM_OP_TRANSPOSE || !rm_tree_is_const(g, rm_tree_node_input(g, tr, 0)) ||
            (perm && !(np == 2 && perm[0] == 1 && perm[1] == 0)))
            tr = -1;
    }
    for (int k = 0; k < n; k++)
        if (gemm || !(others[k] == RM_OP_ADD || (others[k] == RM_OP_TRANSPOSE && tr >= 0)))
            return false;
    if (tr >= 0)
        wv = rm_tree_node_input(g, tr, 0);
    int rank = value_dims(g, wv, w);
    if (!gemm && (rank != 2 || !rm_tree_is_const(g, wv)))
        return false; /* a MatMul of two activations is no Linear */
    bool tb = (gemm && rm_node_attr_int(g->nodes[node].proto, "transB", 0)) || tr >= 0;
    int64_t in = -1, out = -1;
    if (rank == 2) {
        in = tb ? w[1] : w[0];
        out = tb ? w[0] : w[1];
    }
    m->type = "Linear";
    arg_int(m, "in_features", in, false, true);
    arg_int(m, "out_features", out, false, true);
    int add = first_op(t, m, RM_OP_ADD);
    if (add >= 0 && !rm_tree_is_const(g, rm_tree_node_input(g, add, 0)) &&
        !rm_tree_is_const(g, rm_tree_node_input(g, add, 1)))
        return false; /* an Add of two activations is no bias */
    bool bias = gemm ? rm_tree_node_input(g, node, 2) >= 0 : add >= 0;
    arg_bool(m, "bias", bias, true);
    if (tr >= 0)
        add_param(t, m, "weight", tr, 0);
    else
        add_param(t, m, "weight", node, 1);
    if (gemm && bias)
        add_param(t, m, "bias", node, 2);
    else if (bias) /* MatMul + Add: the bias is the Add input that is an initializer */
        add_param(t, m, "bias", add, rm_tree_is_const(g, rm_tree_node_input(g, add, 1)) ? 1 : 0);
    return true;
}

bool rm_leaf_batch_norm(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n_others)
{
    if (!companions(others, n_others, RM_OP_UNKNOWN))
        return false;
    const struct rm_graph *g = t->g;
    const Onnx__NodeProto *n = g->nodes[node].proto;
    int64_t w[RM_MAX_RANK];
    int xr = value_rank(g, rm_tree_node_input(g, node, 0));
    if (xr < 2 || xr > 5)
        return false; /* the input's rank says which BatchNorm; unknown, it is not guessed */
    m->type = xr <= 3 ? "BatchNorm1d" : xr == 4 ? "BatchNorm2d" : "BatchNorm3d";
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

/* AdaptiveAvgPool<n>d / AdaptiveMaxPool<n>d(1) for an input of rank n + 2. */
static bool adaptive_pool(struct rm_module *m, int rank, bool max)
{
    static const char *const names[2][3] = {
        {"AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d"},
        {"AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d"},
    };
    if (rank < 3 || rank > 5)
        return false; /* the input's rank says which; unknown, it is not guessed */
    int nsp = rank - 2;
    m->type = names[max][nsp - 1];
    static const int64_t one[3] = {1, 1, 1};
    /* 1 and (1, 1) export alike; torchvision's 2-D pools are mostly written (1, 1) */
    arg_ints(m, "output_size", one, nsp, nsp == 1, true);
    return true;
}

bool rm_leaf_global_pool(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n)
{
    if (!companions(others, n, RM_OP_UNKNOWN))
        return false;
    int rank = value_rank(t->g, rm_tree_node_input(t->g, node, 0));
    return adaptive_pool(m, rank, t->g->nodes[node].op == RM_OP_GLOBAL_MAX_POOL);
}

/* ReduceMean over every spatial axis, dims kept: AdaptiveAvgPool<n>d(1) (the dynamo
 * exporter writes aten.mean.dim that way). */
bool rm_leaf_reduce_mean(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n)
{
    const struct rm_graph *g = t->g;
    const Onnx__NodeProto *p = g->nodes[node].proto;
    if (!companions(others, n, RM_OP_UNKNOWN) || !rm_node_attr_int(p, "keepdims", 1))
        return false;
    int64_t axes[RM_MAX_RANK];
    int rank = value_rank(g, rm_tree_node_input(g, node, 0));
    if (rank < 3 || rank > 5)
        return false;
    int na;
    size_t cnt;
    const int64_t *a = rm_node_attr_ints(p, "axes", &cnt);
    if (a) {
        if (cnt > RM_MAX_RANK)
            return false;
        na = (int)cnt;
        memcpy(axes, a, cnt * sizeof *a);
    } else {
        na = value_ints(g, rm_tree_node_input(g, node, 1), axes, RM_MAX_RANK);
    }
    if (na != rank - 2)
        return false;
    bool seen[RM_MAX_RANK] = {false};
    for (int i = 0; i < na; i++) {
        int64_t ax = axes[i] < 0 ? axes[i] + rank : axes[i];
        if (ax < 2 || ax >= rank || seen[ax])
            return false;
        seen[ax] = true;
    }
    return adaptive_pool(m, rank, false);
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

/* Containers whose class can be recognised from their children: torchvision's blocks.
 * A row matches when every required child is present, every child is required or
 * allowed, each with the type given after ':' (a classified child's type), and the
 * container's own nodes include the op `own` when it is set. Only children that leave
 * nodes in an export count (folded BatchNorms, Dropout and StochasticDepth do not), so a
 * row requires every child its class always calls and that leaves a node; rows that
 * would also match another torchvision class are left out (MBConv, FusedMBConv,
 * mobilenet_v3's InvertedResidual and ConvNeXt's CNBlock all show just "block"), and so
 * are root classes told apart only by their attribute names (MobileNetV2, VGG,
 * EfficientNet, ...). '#' in a name stands for one or more digits. Rows are tried in
 * order. */
struct signature {
    const char *type;
    bool root_only;
    const char *required; /* space separated "name" or "name:Type" */
    const char *allowed;  /* children that may also be present, same syntax */
    enum rm_op own;       /* an op the container's own forward must have, or RM_OP_UNKNOWN */
};

static const struct signature signatures[] = {
    {"ResNet", true,
     "conv1:Conv2d relu:ReLU maxpool:MaxPool2d layer1:Sequential layer2:Sequential "
     "layer3:Sequential layer4:Sequential avgpool:AdaptiveAvgPool2d fc:Linear",
     "bn1:BatchNorm2d", RM_OP_UNKNOWN},
    {"Bottleneck", false, "conv1:Conv2d conv2:Conv2d conv3:Conv2d relu:ReLU",
     "bn1:BatchNorm2d bn2:BatchNorm2d bn3:BatchNorm2d downsample:Sequential", RM_OP_ADD},
    {"BasicBlock", false, "conv1:Conv2d conv2:Conv2d relu:ReLU",
     "bn1:BatchNorm2d bn2:BatchNorm2d downsample:Sequential", RM_OP_ADD},
    {"SqueezeExcitation", false,
     "avgpool:AdaptiveAvgPool2d fc1:Conv2d activation fc2:Conv2d scale_activation", "", RM_OP_MUL},
    {"Fire", false,
     "squeeze:Conv2d squeeze_activation:ReLU expand1x1:Conv2d expand1x1_activation:ReLU "
     "expand3x3:Conv2d expand3x3_activation:ReLU", "", RM_OP_CONCAT},
    {"BasicConv2d", false, "conv:Conv2d", "bn:BatchNorm2d", RM_OP_RELU},
    {"Inception", false, "branch1:BasicConv2d branch2:Sequential branch3:Sequential branch4:Sequential",
     "", RM_OP_CONCAT},
    {"_DenseLayer", false, "norm1:BatchNorm2d relu1:ReLU conv1:Conv2d relu2:ReLU conv2:Conv2d",
     "norm2:BatchNorm2d", RM_OP_UNKNOWN},
    {"_DenseBlock", false, "denselayer1:_DenseLayer", "denselayer#:_DenseLayer", RM_OP_CONCAT},
    {"_Transition", false, "norm:BatchNorm2d relu:ReLU conv:Conv2d pool:AvgPool2d", "",
     RM_OP_UNKNOWN},
    {"BottleneckTransform", false, "a:Sequential b:Sequential c:Sequential",
     "se:SqueezeExcitation", RM_OP_UNKNOWN},
    {"ResBottleneckBlock", false, "f:BottleneckTransform activation:ReLU", "proj:Sequential",
     RM_OP_ADD},
    {"AnyStage", false, "", "block#-#:ResBottleneckBlock", RM_OP_UNKNOWN},
    {"InvertedResidual", false, "conv:Sequential", "", RM_OP_UNKNOWN},      /* MobileNetV2 */
    {"InvertedResidual", false, "branch2:Sequential", "branch1:Sequential", /* ShuffleNetV2 */
     RM_OP_TRANSPOSE},
    {"_InvertedResidual", false, "layers:Sequential", "", RM_OP_UNKNOWN},
    {"GoogLeNet", true,
     "conv1:BasicConv2d conv2:BasicConv2d conv3:BasicConv2d inception3a:Inception "
     "inception5b:Inception fc:Linear",
     "maxpool1 maxpool2 inception3b:Inception maxpool3 inception4a:Inception "
     "inception4b:Inception inception4c:Inception inception4d:Inception inception4e:Inception "
     "maxpool4 inception5a:Inception avgpool dropout",
     RM_OP_UNKNOWN},
    {"ShuffleNetV2", true,
     "conv1:Sequential maxpool:MaxPool2d stage2:Sequential stage3:Sequential stage4:Sequential "
     "conv5:Sequential fc:Linear",
     "", RM_OP_UNKNOWN},
    {"RegNet", true, "stem:Sequential trunk_output:Sequential avgpool:AdaptiveAvgPool2d fc:Linear", "",
     RM_OP_UNKNOWN},
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

/* One "name" or "name:Type" word of a list: its name and type spans. */
struct word {
    const char *name, *type;
    size_t name_len, type_len;
};

/* Next word of *p into w; false at the end of the list. */
static bool next_word(const char **p, struct word *w)
{
    while (**p == ' ')
        (*p)++;
    if (!**p)
        return false;
    size_t len = strcspn(*p, " ");
    const char *colon = memchr(*p, ':', len);
    w->name = *p;
    w->name_len = colon ? (size_t)(colon - *p) : len;
    w->type = colon ? colon + 1 : NULL;
    w->type_len = colon ? len - w->name_len - 1 : 0;
    *p += len;
    return true;
}

/* Whether child c fits word w: its name matches and, when w gives one, its type. */
static bool fits(const struct word *w, const struct rm_module *c)
{
    if (!pattern_match(w->name, w->name_len, c->name))
        return false;
    return !w->type || (c->type_known && strlen(c->type) == w->type_len &&
                        !memcmp(c->type, w->type, w->type_len));
}

static bool fits_list(const char *list, const struct rm_module *c)
{
    struct word w;
    for (const char *p = list; next_word(&p, &w);)
        if (fits(&w, c))
            return true;
    return false;
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

static bool matches(const struct rm_tree *t, const struct rm_module *m, const struct signature *sig)
{
    if (sig->root_only && m->parent)
        return false;
    for (size_t i = 0; i < m->n_children; i++)
        if (!fits_list(sig->required, m->children[i]) && !fits_list(sig->allowed, m->children[i]))
            return false;
    struct word w;
    for (const char *p = sig->required; next_word(&p, &w);) {
        bool found = false;
        for (size_t i = 0; i < m->n_children && !found; i++)
            found = fits(&w, m->children[i]);
        if (!found)
            return false;
    }
    if (sig->own == RM_OP_UNKNOWN)
        return true;
    for (size_t i = 0; i < m->n_nodes; i++)
        if (t->g->nodes[m->nodes[i]].op == sig->own)
            return true;
    return false;
}

/* One past the last module of m's subtree in tree->modules (preorder). */
static int subtree_end(const struct rm_module *m)
{
    while (m->n_children)
        m = m->children[m->n_children - 1];
    return m->index + 1;
}

/* Whether m's numbered children run as nn.Sequential runs them: in increasing order, the
 * values each computes read only by the next (the last's by whatever follows), the
 * container computing nothing of its own. torchvision's IntermediateLayerGetter (a
 * ModuleDict that runs its numbered children in turn but also returns some of their
 * outputs) is not one. */
static bool runs_as_chain(const struct rm_tree *t, const struct rm_module *m)
{
    const struct rm_graph *g = t->g;
    for (size_t i = 0; i < m->n_nodes; i++)
        if (!(rm_op_def(g->nodes[m->nodes[i]].op)->flags & RM_OPF_HELPER))
            return false;
    long prev = -1;
    for (size_t i = 0; i < m->n_children; i++) {
        const char *name = m->children[i]->name;
        if (strlen(name) > 9 || atol(name) <= prev)
            return false;
        prev = atol(name);
    }
    for (size_t i = 0; i + 1 < m->n_children; i++) {
        const struct rm_module *c = m->children[i], *next = m->children[i + 1];
        int c0 = c->index, c1 = subtree_end(c), n0 = next->index, n1 = subtree_end(next);
        for (int mi = c0; mi < c1; mi++) {
            const struct rm_module *x = t->modules[mi];
            for (size_t k = 0; k < x->n_nodes; k++) {
                const struct rm_node *nd = &g->nodes[x->nodes[k]];
                for (size_t o = 0; o < nd->proto->n_output; o++) {
                    int v = nd->outputs[o];
                    if (v < 0)
                        continue;
                    if (g->values[v].output >= 0)
                        return false;
                    for (int q = 0; q < g->values[v].n_consumers; q++) {
                        int qm = t->node_module[g->values[v].consumers[q]];
                        if (!(qm >= c0 && qm < c1) && !(qm >= n0 && qm < n1))
                            return false;
                    }
                }
            }
        }
    }
    return true;
}

void rm_tree_classify_container(struct rm_tree *t, struct rm_module *m, bool called)
{
    bool numbered = true;
    for (size_t i = 0; i < m->n_children; i++)
        numbered &= digits_only(m->children[i]->name);
    if (numbered) {
        /* a Sequential runs its own forward; a ModuleList's children are called by
         * their parent, and a container only implied by parameter names could be either */
        if (called && runs_as_chain(t, m)) {
            m->type = "Sequential";
            m->type_known = true;
        }
        return;
    }
    for (size_t s = 0; s < sizeof signatures / sizeof signatures[0]; s++)
        if (matches(t, m, &signatures[s])) {
            m->type = signatures[s].type;
            m->type_known = true;
            return;
        }
}
