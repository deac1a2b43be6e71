/* Element-wise ops: unary activations and math (Relu, LeakyRelu, Clip, Sigmoid,
 * HardSigmoid, HardSwish, Tanh, Elu, Selu, Softplus, Softsign, Mish, Gelu, Erf, Exp, Log,
 * Sqrt, Reciprocal, Abs, Neg, Floor, Ceil) and broadcasting arithmetic (Add, Sub, Mul, Div,
 * Pow, PRelu and the variadic Min, Max, Sum, Mean). Shape rules and C kernels. */
#include "rm_ops_int.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* ---- shape rules ------------------------------------------------------------------ */

int rm_shape_unary_float(struct rm_snode *s)
{
    char ap[16];
    if (s->g->nodes[s->node].op == RM_OP_GELU && rm_attr_string(s->np, "approximate", ap, sizeof ap, "none") &&
        strcmp(ap, "none") && strcmp(ap, "tanh"))
        return rm_s_bad(s, "approximate '%s' is neither 'none' nor 'tanh'", ap);
    return rm_shape_same(s);
}

int rm_s_broadcast(struct rm_snode *s, size_t first, size_t n, bool same_type, int32_t *et, int *rank,
                   int64_t *dims)
{
    int ranks[RM_MAX_INPUTS_BCAST];
    const int64_t *dv[RM_MAX_INPUTS_BCAST];
    *et = 0;
    if (n == 0)
        return rm_s_bad(s, "needs at least one input"), -1;
    if (n > RM_MAX_INPUTS_BCAST)
        return rm_s_unsupported(s, "more than %d inputs", RM_MAX_INPUTS_BCAST), -1;
    for (size_t k = 0; k < n; k++) {
        const struct rm_value *v = rm_s_in(s, first + k);
        if (!v)
            return -1; /* unknown shape (or a missing input): the output stays unknown */
        if (!*et)
            *et = v->elem_type;
        else if (same_type && v->elem_type && v->elem_type != *et)
            return rm_s_bad(s, "inputs differ in type (%s and %s)", rm_dtype_name(*et), rm_dtype_name(v->elem_type)),
                   -1;
        ranks[k] = v->rank;
        dv[k] = v->dims;
    }
    int bad;
    if (rm_broadcast_dims((int)n, ranks, dv, rank, dims, &bad))
        return rm_s_bad(s, "inputs cannot be broadcast: their dimension %d differs", bad), -1;
    return 0;
}

/* numpy-style broadcasting of every input, all of one type */
int rm_shape_broadcast(struct rm_snode *s)
{
    int rank;
    int64_t dims[RM_MAX_RANK];
    int32_t et;
    enum rm_op op = s->g->nodes[s->node].op;
    if (op != RM_OP_MIN && op != RM_OP_MAX && op != RM_OP_SUM && op != RM_OP_MEAN && s->np->n_input != 2)
        return rm_s_bad(s, "has %zu inputs; it takes 2", s->np->n_input); /* the kernels and planners read two */
    if (!rm_s_broadcast(s, 0, s->np->n_input, true, &et, &rank, dims))
        rm_s_out(s, 0, et, rank, dims);
    return 0;
}

/* Pow: the base's type (the exponent may be of another numeric type) */
int rm_shape_pow(struct rm_snode *s)
{
    int rank;
    int64_t dims[RM_MAX_RANK];
    int32_t et;
    if (s->np->n_input != 2)
        return rm_s_bad(s, "needs 2 inputs, has %zu", s->np->n_input);
    if (!rm_s_broadcast(s, 0, 2, false, &et, &rank, dims))
        rm_s_out(s, 0, et, rank, dims);
    return 0;
}

void rm_prelu_slope_dims(int64_t opset, int xrank, const int64_t *xdims, int srank, const int64_t *sdims,
                         int64_t *out)
{
    for (int i = 0; i < xrank; i++)
        out[i] = 1;
    if (opset < 7 && srank == 1 && xrank >= 2 && sdims[0] == xdims[1] && sdims[0] != 1) {
        out[1] = sdims[0]; /* PRelu-1 and -6: one slope per channel */
        return;
    }
    for (int i = 0; i < srank && i < xrank; i++)
        out[xrank - srank + i] = sdims[i];
}

/* PRelu: X's shape; the slope broadcasts to X (unidirectionally) */
int rm_shape_prelu(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0), *sl = rm_s_in(s, 1);
    if (!x)
        return 0;
    if (!rm_s_present(s, 1))
        return rm_s_bad(s, "slope input is missing");
    if (sl) {
        int64_t sd[RM_MAX_RANK];
        if (sl->rank > x->rank)
            return rm_s_bad(s, "slope has rank %d, above X's %d", sl->rank, x->rank);
        rm_prelu_slope_dims(s->opset, x->rank, x->dims, sl->rank, sl->dims, sd);
        for (int i = 0; i < x->rank; i++) {
            int64_t e = sd[i], d = x->dims[i];
            if (e >= 0 && e != 1 && d >= 0 && e != d)
                return rm_s_bad(s, "slope dimension %d is %lld, X's is %lld", i - x->rank, (long long)e,
                                (long long)d);
        }
    }
    rm_s_out(s, 0, x->elem_type, x->rank, x->dims);
    return 0;
}

/* ---- unary kernels ------------------------------------------------------------------ */

static float clip_bound(const struct rm_kcall *k, size_t slot, const char *attr, float def)
{
    const struct rm_host_tensor *v = slot < k->n_in ? k->in[slot] : NULL;
    if (v && v->numel >= 1 && v->dtype == RM_F32)
        return ((float *)v->data)[0];
    return rm_node_attr_float(k->np, attr, def);
}

/* log(1 + e^x) without overflow */
static float softplus(float x)
{
    return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x));
}

/* Abs, Neg, Floor, Ceil, Clip on int64 (other unary ops take float only) */
static int unary_int(const struct rm_kcall *k)
{
    const int64_t *s = k->in[0]->data;
    int64_t *d = k->out[0]->data, n = k->in[0]->numel;
    switch (k->op) {
    case RM_OP_CLIP: {
        const struct rm_host_tensor *lo = k->n_in > 1 ? k->in[1] : NULL, *hi = k->n_in > 2 ? k->in[2] : NULL;
        int64_t a = lo && lo->numel == 1 ? rm_const_int(lo, 0) : INT64_MIN;
        int64_t b = hi && hi->numel == 1 ? rm_const_int(hi, 0) : INT64_MAX;
        for (int64_t i = 0; i < n; i++)
            d[i] = s[i] < a ? a : s[i] > b ? b : s[i];
        break;
    }
    case RM_OP_ABS:
        for (int64_t i = 0; i < n; i++)
            d[i] = s[i] < 0 ? (int64_t)(0 - (uint64_t)s[i]) : s[i];
        break;
    case RM_OP_NEG:
        for (int64_t i = 0; i < n; i++)
            d[i] = (int64_t)(0 - (uint64_t)s[i]);
        break;
    case RM_OP_FLOOR:
    case RM_OP_CEIL:
        for (int64_t i = 0; i < n; i++)
            d[i] = s[i];
        break;
    default:
        return rm_k_err(k, RM_EUNSUPPORTED, "int64 input is not supported");
    }
    return 0;
}

int rm_kernel_unary(const struct rm_kcall *k)
{
    const struct rm_host_tensor *x = k->in[0];
    struct rm_host_tensor *o = k->out[0];
    if (x->dtype != RM_F32)
        return unary_int(k);
    const float *s = x->data;
    float *d = o->data;
    int64_t n = x->numel;
    const Onnx__NodeProto *np = k->np;
    switch (k->op) {
    case RM_OP_RELU:
        for (int64_t i = 0; i < n; i++)
            d[i] = s[i] > 0 ? s[i] : 0;
        break;
    case RM_OP_LEAKY_RELU: {
        float al = rm_node_attr_float(np, "alpha", 0.01f);
        for (int64_t i = 0; i < n; i++)
            d[i] = s[i] >= 0 ? s[i] : al * s[i];
        break;
    }
    case RM_OP_CLIP: {
        float lo = clip_bound(k, 1, "min", -FLT_MAX), hi = clip_bound(k, 2, "max", FLT_MAX);
        for (int64_t i = 0; i < n; i++)
            d[i] = s[i] < lo ? lo : s[i] > hi ? hi : s[i];
        break;
    }
    case RM_OP_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            d[i] = 1.0f / (1.0f + expf(-s[i]));
        break;
    case RM_OP_HARD_SIGMOID: {
        float al = rm_node_attr_float(np, "alpha", 0.2f), be = rm_node_attr_float(np, "beta", 0.5f);
        for (int64_t i = 0; i < n; i++) {
            float v = al * s[i] + be;
            d[i] = v < 0 ? 0 : v > 1 ? 1 : v;
        }
        break;
    }
    case RM_OP_HARD_SWISH:
        for (int64_t i = 0; i < n; i++) {
            float v = s[i] / 6.0f + 0.5f;
            d[i] = s[i] * (v < 0 ? 0 : v > 1 ? 1 : v);
        }
        break;
    case RM_OP_TANH:
        for (int64_t i = 0; i < n; i++)
            d[i] = tanhf(s[i]);
        break;
    case RM_OP_ELU: {
        float al = rm_node_attr_float(np, "alpha", 1.0f);
        for (int64_t i = 0; i < n; i++)
            d[i] = s[i] < 0 ? al * expm1f(s[i]) : s[i];
        break;
    }
    case RM_OP_SELU: {
        float al = rm_node_attr_float(np, "alpha", 1.67326319217681884765625f);
        float ga = rm_node_attr_float(np, "gamma", 1.05070102214813232421875f);
        for (int64_t i = 0; i < n; i++)
            d[i] = s[i] > 0 ? ga * s[i] : ga * al * expm1f(s[i]);
        break;
    }
    case RM_OP_SOFTPLUS:
        for (int64_t i = 0; i < n; i++)
            d[i] = softplus(s[i]);
        break;
    case RM_OP_SOFTSIGN:
        for (int64_t i = 0; i < n; i++)
            d[i] = s[i] / (1.0f + fabsf(s[i]));
        break;
    case RM_OP_MISH:
        for (int64_t i = 0; i < n; i++)
            d[i] = s[i] * tanhf(softplus(s[i]));
        break;
    case RM_OP_GELU: {
        char ap[16];
        rm_attr_string(np, "approximate", ap, sizeof ap, "none");
        if (!strcmp(ap, "tanh")) {
            const float c = 0.7978845608028654f; /* sqrt(2 / pi) */
            for (int64_t i = 0; i < n; i++)
                d[i] = 0.5f * s[i] * (1.0f + tanhf(c * (s[i] + 0.044715f * s[i] * s[i] * s[i])));
        } else if (!strcmp(ap, "none")) {
            for (int64_t i = 0; i < n; i++)
                d[i] = 0.5f * s[i] * (1.0f + erff(s[i] * 0.70710678118654752f));
        } else {
            return rm_k_err(k, RM_EFORMAT, "approximate '%s' is neither 'none' nor 'tanh'", ap);
        }
        break;
    }
    case RM_OP_ERF:
        for (int64_t i = 0; i < n; i++)
            d[i] = erff(s[i]);
        break;
    case RM_OP_EXP:
        for (int64_t i = 0; i < n; i++)
            d[i] = expf(s[i]);
        break;
    case RM_OP_LOG:
        for (int64_t i = 0; i < n; i++)
            d[i] = logf(s[i]);
        break;
    case RM_OP_SQRT:
        for (int64_t i = 0; i < n; i++)
            d[i] = sqrtf(s[i]);
        break;
    case RM_OP_RECIPROCAL:
        for (int64_t i = 0; i < n; i++)
            d[i] = 1.0f / s[i];
        break;
    case RM_OP_ABS:
        for (int64_t i = 0; i < n; i++)
            d[i] = fabsf(s[i]);
        break;
    case RM_OP_NEG:
        for (int64_t i = 0; i < n; i++)
            d[i] = -s[i];
        break;
    case RM_OP_FLOOR:
        for (int64_t i = 0; i < n; i++)
            d[i] = floorf(s[i]);
        break;
    case RM_OP_CEIL:
        for (int64_t i = 0; i < n; i++)
            d[i] = ceilf(s[i]);
        break;
    default:
        return rm_k_err(k, RM_EUNSUPPORTED, "no C kernel");
    }
    return 0;
}

/* ---- broadcasting kernels ----------------------------------------------------------- */

/* o = EXPR(a, b) over the rows of bc (A, B: the inputs; TA, TB their element types) */
#define BIN_LOOP(TO, TA, TB, EXPR)                                                           \
    do {                                                                                     \
        TO *o_ = (TO *)o->data;                                                              \
        const TA *pa_ = (const TA *)A->data;                                                 \
        const TB *pb_ = (const TB *)B->data;                                                 \
        int64_t sa_ = bc.st[0][bc.rank - 1], sb_ = bc.st[1][bc.rank - 1];                    \
        for (int64_t r_ = 0; r_ < bc.rows; r_++, rm_bcast_next(&bc)) {                       \
            const TA *xa_ = pa_ + bc.off[0];                                                 \
            const TB *xb_ = pb_ + bc.off[1];                                                 \
            TO *y_ = o_ + r_ * bc.inner;                                                     \
            for (int64_t j_ = 0; j_ < bc.inner; j_++) {                                      \
                TA a = xa_[j_ * sa_];                                                        \
                TB b = xb_[j_ * sb_];                                                        \
                y_[j_] = (EXPR);                                                             \
            }                                                                                \
        }                                                                                    \
    } while (0)

static int64_t ipow(int64_t x, int64_t y)
{
    /* integer power with wrapping products; a negative exponent truncates like C's 1/x^|y| */
    if (y < 0)
        return x == 1 ? 1 : x == -1 ? (y % 2 ? -1 : 1) : 0;
    uint64_t r = 1, b = (uint64_t)x;
    while (y) {
        if (y & 1)
            r *= b;
        b *= b;
        y >>= 1;
    }
    return (int64_t)r;
}

/* o = op(A, B) broadcast; A may be o itself (a running result of a variadic op) */
static int binary(const struct rm_kcall *k, enum rm_op op, const struct rm_host_tensor *A,
                  const struct rm_host_tensor *B, struct rm_host_tensor *o)
{
    struct rm_bcast bc;
    const struct rm_host_tensor *ab[2] = {A, B};
    rm_bcast_init(&bc, o, 2, ab);
    if (op == RM_OP_POW) {
        if (A->dtype == RM_F32 && B->dtype == RM_F32)
            BIN_LOOP(float, float, float, powf(a, b));
        else if (A->dtype == RM_F32)
            BIN_LOOP(float, float, int64_t, (float)pow((double)a, (double)b));
        else if (B->dtype == RM_F32)
            BIN_LOOP(int64_t, int64_t, float, rm_f2i(pow((double)a, (double)b)));
        else
            BIN_LOOP(int64_t, int64_t, int64_t, ipow(a, b));
        return 0;
    }
    if (A->dtype != B->dtype || o->dtype != A->dtype)
        return rm_k_err(k, RM_EFORMAT, "inputs differ in type");
    if (o->dtype == RM_F32) {
        switch (op) {
        case RM_OP_ADD: case RM_OP_SUM: case RM_OP_MEAN: BIN_LOOP(float, float, float, a + b); break;
        case RM_OP_SUB: BIN_LOOP(float, float, float, a - b); break;
        case RM_OP_MUL: BIN_LOOP(float, float, float, a * b); break;
        case RM_OP_DIV: BIN_LOOP(float, float, float, a / b); break;
        /* NaN propagates, as in onnxruntime */
        case RM_OP_MIN: BIN_LOOP(float, float, float, a != a || a < b ? a : b); break;
        case RM_OP_MAX: BIN_LOOP(float, float, float, a != a || a > b ? a : b); break;
        case RM_OP_PRELU: BIN_LOOP(float, float, float, a < 0 ? a * b : a); break;
        default: return rm_k_err(k, RM_EUNSUPPORTED, "no C kernel");
        }
        return 0;
    }
    if (op == RM_OP_DIV) {
        /* the divisor's zeros first: the loop below must not meet one */
        for (int64_t i = 0; i < B->numel; i++)
            if (((const int64_t *)B->data)[i] == 0)
                return rm_k_err(k, RM_EFORMAT, "integer division by zero");
    }
    switch (op) {
    case RM_OP_ADD: case RM_OP_SUM: BIN_LOOP(int64_t, int64_t, int64_t, (int64_t)((uint64_t)a + (uint64_t)b)); break;
    case RM_OP_SUB: BIN_LOOP(int64_t, int64_t, int64_t, (int64_t)((uint64_t)a - (uint64_t)b)); break;
    case RM_OP_MUL: BIN_LOOP(int64_t, int64_t, int64_t, (int64_t)((uint64_t)a * (uint64_t)b)); break;
    /* C's division, truncating toward zero (onnxruntime's too; numpy floors) */
    case RM_OP_DIV: BIN_LOOP(int64_t, int64_t, int64_t, (a == INT64_MIN && b == -1) ? a : a / b); break;
    case RM_OP_MIN: BIN_LOOP(int64_t, int64_t, int64_t, a < b ? a : b); break;
    case RM_OP_MAX: BIN_LOOP(int64_t, int64_t, int64_t, a > b ? a : b); break;
    case RM_OP_PRELU: BIN_LOOP(int64_t, int64_t, int64_t, a < 0 ? (int64_t)((uint64_t)a * (uint64_t)b) : a); break;
    default: return rm_k_err(k, RM_EUNSUPPORTED, "no C kernel for int64 inputs");
    }
    return 0;
}

int rm_kernel_binary(const struct rm_kcall *k)
{
    struct rm_host_tensor *o = k->out[0];
    for (size_t i = 0; i < k->n_in; i++)
        if (!k->in[i])
            return rm_k_err(k, RM_EFORMAT, "input %zu is missing", i);
    if (k->n_in < 1 || (k->n_in != 2 && k->op != RM_OP_MIN && k->op != RM_OP_MAX && k->op != RM_OP_SUM &&
                        k->op != RM_OP_MEAN))
        return rm_k_err(k, RM_EFORMAT, "needs 2 inputs, has %zu", k->n_in);
    if (o->numel == 0)
        return 0;
    int rc = 0;
    if (k->op == RM_OP_PRELU) {
        /* the slope as a tensor of X's rank */
        struct rm_host_tensor sl = *k->in[1];
        if (sl.rank > k->in[0]->rank)
            return rm_k_err(k, RM_EFORMAT, "slope has a higher rank than X");
        rm_prelu_slope_dims(k->opset, k->in[0]->rank, k->in[0]->dims, k->in[1]->rank, k->in[1]->dims, sl.dims);
        sl.rank = k->in[0]->rank;
        rc = binary(k, k->op, k->in[0], &sl, o);
    } else if (k->n_in == 2) {
        rc = binary(k, k->op, k->in[0], k->in[1], o);
    } else {
        /* variadic: fold the inputs into o one by one */
        if (k->in[0]->dtype != o->dtype)
            return rm_k_err(k, RM_EFORMAT, "inputs differ in type");
        rm_broadcast_copy(k->in[0], o);
        for (size_t i = 1; i < k->n_in && !rc; i++)
            rc = binary(k, k->op, o, k->in[i], o);
    }
    if (rc)
        return rc;
    if (k->op == RM_OP_MEAN && k->n_in > 1) {
        if (o->dtype != RM_F32)
            return rm_k_err(k, RM_EUNSUPPORTED, "int64 inputs are not supported");
        for (int64_t i = 0; i < o->numel; i++)
            ((float *)o->data)[i] /= (float)k->n_in;
    }
    return 0;
}
