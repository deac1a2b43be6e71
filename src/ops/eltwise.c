/* Element-wise ops: unary activations and math (Relu, LeakyRelu, Clip, Sigmoid,
 * HardSigmoid, HardSwish, Tanh, ...) and broadcasting binary arithmetic (Add, Sub, Mul,
 * Div, Pow). Shape rules and C kernels. */
#include "rm_ops_int.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* ---- shape rules ------------------------------------------------------------------ */

int rm_shape_unary_float(struct rm_snode *s)
{
    return rm_shape_same(s);
}

/* numpy-style broadcasting of every input. An unknown dimension against a known one
 * larger than 1 is that one (anything else would not broadcast). */
int rm_shape_broadcast(struct rm_snode *s)
{
    int rank = 0;
    int64_t dims[RM_MAX_RANK];
    int32_t et = 0;
    size_t nin = s->np->n_input;
    if (nin != 2) /* Add, Sub, Mul, Div, Pow: the kernels and planners read two (an opset past
                   * the schema table is not judged by rm_node_malformed) */
        return rm_s_bad(s, "has %zu inputs; it takes 2", nin);
    for (size_t k = 0; k < nin; k++) {
        const struct rm_value *v = rm_s_in(s, k);
        if (!v)
            return 0;
        if (v->rank > rank)
            rank = v->rank;
        if (!et)
            et = v->elem_type;
        else if (v->elem_type && v->elem_type != et)
            return rm_s_bad(s, "inputs differ in type (%s and %s)", rm_dtype_name(et), rm_dtype_name(v->elem_type));
    }
    for (int i = 0; i < rank; i++)
        dims[i] = 1;
    for (size_t k = 0; k < nin; k++) {
        const struct rm_value *v = rm_s_in(s, k);
        for (int i = 0; i < v->rank; i++) {
            int64_t *d = &dims[rank - v->rank + i];
            int64_t e = v->dims[i];
            if (e == 1 || e == *d)
                continue;
            if (*d == 1)
                *d = e;
            else if (e < 0)
                ; /* unknown against a known size > 1 (or unknown): stays */
            else if (*d < 0)
                *d = e;
            else
                return rm_s_bad(s, "inputs cannot be broadcast: dimension %d is %lld and %lld", i - v->rank,
                                (long long)*d, (long long)e);
        }
    }
    rm_s_out(s, 0, et, rank, dims);
    return 0;
}

/* ---- kernels ------------------------------------------------------------------------ */

static float clip_bound(const struct rm_kcall *k, size_t slot, const char *attr, float def)
{
    const struct rm_host_tensor *v = slot < k->n_in ? k->in[slot] : NULL;
    if (v && v->numel >= 1 && v->dtype == RM_F32)
        return ((float *)v->data)[0];
    return rm_node_attr_float(k->np, attr, def);
}

int rm_kernel_unary(const struct rm_kcall *k)
{
    const struct rm_host_tensor *x = k->in[0];
    struct rm_host_tensor *o = k->out[0];
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
    default:
        return rm_k_err(k, RM_EUNSUPPORTED, "no C kernel");
    }
    return 0;
}

int rm_kernel_binary(const struct rm_kcall *k)
{
    if (k->n_in != 2 || !k->in[0] || !k->in[1])
        return rm_k_err(k, RM_EFORMAT, "takes two inputs");
    const struct rm_host_tensor *a = k->in[0], *b = k->in[1];
    struct rm_host_tensor *o = k->out[0];
    int r = o->rank;
    int64_t sa[RM_MAX_RANK], sb[RM_MAX_RANK], ta[RM_MAX_RANK], tb[RM_MAX_RANK], idx[RM_MAX_RANK] = {0};
    rm_strides(a->rank, a->dims, ta);
    rm_strides(b->rank, b->dims, tb);
    /* broadcast strides: 0 where the input has size 1 */
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        sa[i] = ia >= 0 && a->dims[ia] != 1 ? ta[ia] : 0;
        sb[i] = ib >= 0 && b->dims[ib] != 1 ? tb[ib] : 0;
    }
    enum rm_op op = k->op;
    for (int64_t n = 0; n < o->numel; n++) {
        int64_t oa = 0, ob = 0;
        for (int i = 0; i < r; i++) {
            oa += idx[i] * sa[i];
            ob += idx[i] * sb[i];
        }
        if (o->dtype == RM_F32) {
            float x = ((float *)a->data)[oa], y = ((float *)b->data)[ob];
            ((float *)o->data)[n] = op == RM_OP_ADD ? x + y : op == RM_OP_SUB ? x - y : op == RM_OP_MUL ? x * y : x / y;
        } else {
            int64_t x = ((int64_t *)a->data)[oa], y = ((int64_t *)b->data)[ob], z;
            if (op == RM_OP_DIV && y == 0)
                return rm_k_err(k, RM_EFORMAT, "integer division by zero");
            if (op == RM_OP_ADD)
                z = (int64_t)((uint64_t)x + (uint64_t)y);
            else if (op == RM_OP_SUB)
                z = (int64_t)((uint64_t)x - (uint64_t)y);
            else if (op == RM_OP_MUL)
                z = (int64_t)((uint64_t)x * (uint64_t)y);
            else
                z = (x == INT64_MIN && y == -1) ? x : x / y;
            ((int64_t *)o->data)[n] = z;
        }
        rm_next_index(r, o->dims, idx);
    }
    return 0;
}
