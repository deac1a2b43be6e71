#include "rm_shape.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Small int64 tensors whose contents are known while inferring (shape arithmetic
 * such as Shape -> Gather -> Div -> Concat -> Reshape); n < 0: unknown. */
#define KNOWN_MAX 16
struct known {
    int n;
    int64_t v[KNOWN_MAX];
};

struct ctx {
    struct rm_graph *g;
    const struct rm_shape_opts *o;
    struct rm_error *err;
    size_t node;
    struct known *known; /* per value, NULL when out of memory */
};

static const struct rm_value *in(struct ctx *c, size_t k)
{
    const struct rm_node *n = &c->g->nodes[c->node];
    if (k >= n->proto->n_input || n->inputs[k] < 0)
        return NULL;
    const struct rm_value *v = &c->g->values[n->inputs[k]];
    return v->rank >= 0 ? v : NULL;
}

static struct rm_value *out(struct ctx *c, size_t k)
{
    const struct rm_node *n = &c->g->nodes[c->node];
    if (k >= n->proto->n_output || n->outputs[k] < 0)
        return NULL;
    return &c->g->values[n->outputs[k]];
}

static int bad(struct ctx *c, const char *why)
{
    if (c->o && c->o->on_error) {
        c->o->on_error(c->o->ctx, (int)c->node, why);
        return 0;
    }
    if (!c->o || !c->o->strict)
        return 0;
    const Onnx__NodeProto *np = c->g->nodes[c->node].proto;
    return rm_error_set(c->err, RM_EFORMAT, "node '%s' (%s): %s",
                        rm_graph_node_label(c->g, c->node), np->op_type ? np->op_type : "?", why);
}

static void set(struct rm_value *o, int32_t et, int rank, const int64_t *dims)
{
    if (!o || rank > RM_MAX_RANK)
        return;
    o->elem_type = et;
    o->rank = rank;
    for (int i = 0; i < rank; i++)
        o->dims[i] = dims[i];
}

/* The constant tensor behind input k (initializer, through Identity, or Constant). */
static const Onnx__TensorProto *const_tensor(struct ctx *c, size_t k)
{
    const struct rm_node *n = &c->g->nodes[c->node];
    if (k >= n->proto->n_input)
        return NULL;
    return rm_graph_const_tensor(c->g, n->inputs[k]);
}

static int const_ints(struct ctx *c, size_t k, int64_t *dst, size_t cap, size_t *n)
{
    const struct rm_node *nd = &c->g->nodes[c->node];
    if (c->known && k < nd->proto->n_input && nd->inputs[k] >= 0 && c->known[nd->inputs[k]].n >= 0) {
        const struct known *kv = &c->known[nd->inputs[k]];
        if ((size_t)kv->n > cap)
            return -1;
        memcpy(dst, kv->v, sizeof(int64_t) * (size_t)kv->n);
        *n = (size_t)kv->n;
        return 0;
    }
    const Onnx__TensorProto *t = const_tensor(c, k);
    int64_t numel;
    if (!t || rm_tensor_numel(t, &numel, NULL) || numel < 0 || (uint64_t)numel > cap)
        return -1;
    if (rm_tensor_to_i64(t, dst, numel, NULL))
        return -1;
    *n = (size_t)numel;
    return 0;
}

/* int64 contents of a Constant node's value attribute (small tensors only). */
static int const_ints_constant(const Onnx__NodeProto *np, int64_t *dst, size_t *n)
{
    const Onnx__AttributeProto *a = rm_node_attr(np, "value");
    int64_t numel;
    if (!a || !a->t || a->t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ||
        rm_tensor_numel(a->t, &numel, NULL) || numel > KNOWN_MAX || rm_tensor_to_i64(a->t, dst, numel, NULL))
        return -1;
    *n = (size_t)numel;
    return 0;
}

/* Spatial output size of a window op along one axis (ONNX Conv/Pool formula). */
static int64_t window_out(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe,
                          int ceil_mode)
{
    int64_t eff = (k - 1) * d + 1;
    int64_t num = in + pb + pe - eff;
    if (num < 0 || s <= 0)
        return -1;
    int64_t o = (ceil_mode ? (num + s - 1) / s : num / s) + 1;
    /* ceil mode: the last window must start inside the input or left padding */
    if (ceil_mode && (o - 1) * s >= in + pb)
        o--;
    return o;
}

/* Output dims of a Conv (pool 0) or pooling window (pool 1) over x. */
static int infer_window(struct ctx *c, const struct rm_value *x, const int64_t *kernel, size_t nk,
                        int64_t out_channels, int pool)
{
    const Onnx__NodeProto *np = c->g->nodes[c->node].proto;
    int sp = x->rank - 2;
    if (sp < 1 || (size_t)sp != nk)
        return bad(c, "kernel rank does not match the input rank");
    size_t ns, nd, npd;
    const int64_t *st = rm_node_attr_ints(np, "strides", &ns);
    const int64_t *di = rm_node_attr_ints(np, "dilations", &nd);
    const int64_t *pa = rm_node_attr_ints(np, "pads", &npd);
    const Onnx__AttributeProto *ap = rm_node_attr(np, "auto_pad");
    int ceil_mode = (int)rm_node_attr_int(np, "ceil_mode", 0);
    char autopad[32] = "NOTSET";
    if (ap && ap->has_s) {
        size_t l = ap->s.len < sizeof autopad - 1 ? ap->s.len : sizeof autopad - 1;
        memcpy(autopad, ap->s.data, l);
        autopad[l] = '\0';
    }
    int64_t dims[RM_MAX_RANK];
    dims[0] = x->dims[0];
    dims[1] = out_channels;
    for (int i = 0; i < sp; i++) {
        int64_t s = st && ns == (size_t)sp ? st[i] : 1;
        int64_t d = di && nd == (size_t)sp ? di[i] : 1;
        int64_t in_sz = x->dims[2 + i];
        if (in_sz < 0) {
            dims[2 + i] = -1;
            continue;
        }
        if (strcmp(autopad, "SAME_UPPER") == 0 || strcmp(autopad, "SAME_LOWER") == 0) {
            dims[2 + i] = s > 0 ? (in_sz + s - 1) / s : -1;
        } else if (strcmp(autopad, "VALID") == 0) {
            dims[2 + i] = window_out(in_sz, kernel[i], s, d, 0, 0, 0);
        } else {
            int64_t pb = pa && npd == 2 * (size_t)sp ? pa[i] : 0;
            int64_t pe = pa && npd == 2 * (size_t)sp ? pa[i + sp] : 0;
            /* a pooling window wholly inside padding pools nothing (onnxruntime refuses it) */
            if (pool && d > 0 && kernel[i] > 0 && kernel[i] <= INT32_MAX && d <= INT32_MAX &&
                (pb >= (kernel[i] - 1) * d + 1 || pe >= (kernel[i] - 1) * d + 1))
                return bad(c, "pads must be smaller than the pooling window");
            dims[2 + i] = window_out(in_sz, kernel[i], s, d, pb, pe, ceil_mode);
        }
        if (dims[2 + i] <= 0)
            return bad(c, "window larger than its padded input");
    }
    set(out(c, 0), x->elem_type, x->rank, dims);
    return 0;
}

static int broadcast(struct ctx *c, int nin)
{
    int rank = 0;
    int64_t dims[RM_MAX_RANK];
    int32_t et = 0;
    for (int k = 0; k < nin; k++) {
        const struct rm_value *v = in(c, (size_t)k);
        if (!v)
            return 0;
        if (v->rank > rank)
            rank = v->rank;
        if (!et)
            et = v->elem_type;
    }
    for (int i = 0; i < rank; i++)
        dims[i] = 1;
    for (int k = 0; k < nin; k++) {
        const struct rm_value *v = in(c, (size_t)k);
        for (int i = 0; i < v->rank; i++) {
            int64_t *d = &dims[rank - v->rank + i];
            int64_t e = v->dims[i];
            if (e == 1)
                continue;
            if (*d == 1 || *d == e)
                *d = e;
            else if (e < 0 || *d < 0)
                *d = -1;
            else {
                char why[160];
                snprintf(why, sizeof why, "inputs cannot be broadcast: dimension %d is %lld and %lld",
                         i - v->rank, (long long)*d, (long long)e);
                return bad(c, why);
            }
        }
    }
    set(out(c, 0), et, rank, dims);
    return 0;
}

static int infer_node(struct ctx *c)
{
    const Onnx__NodeProto *np = c->g->nodes[c->node].proto;
    const char *op = np->op_type ? np->op_type : "";
    const struct rm_value *x = in(c, 0);
    int64_t dims[RM_MAX_RANK];

    if (!strcmp(op, "Constant")) {
        const Onnx__AttributeProto *a = rm_node_attr(np, "value");
        if (a && a->t && a->t->n_dims <= RM_MAX_RANK)
            set(out(c, 0), a->t->data_type, (int)a->t->n_dims, a->t->dims);
        return 0;
    }
    if (!x)
        return 0; /* unknown input: leave unknown */

    if (!strcmp(op, "Relu") || !strcmp(op, "LeakyRelu") || !strcmp(op, "Clip") ||
        !strcmp(op, "Sigmoid") || !strcmp(op, "HardSigmoid") || !strcmp(op, "HardSwish") ||
        !strcmp(op, "Identity") || !strcmp(op, "Dropout") || !strcmp(op, "Softmax") ||
        !strcmp(op, "Tanh") || !strcmp(op, "Exp") ||
        !strcmp(op, "Neg") || !strcmp(op, "Sqrt") || !strcmp(op, "Abs") || !strcmp(op, "Erf")) {
        set(out(c, 0), x->elem_type, x->rank, x->dims);
        return 0;
    }
    if (!strcmp(op, "BatchNormalization")) {
        /* scale, B, mean, var: one value per channel */
        for (size_t k = 1; k < 5 && k < np->n_input && x->rank >= 2 && x->dims[1] >= 0; k++) {
            const struct rm_value *p = in(c, k);
            if (p && p->rank == 1 && p->dims[0] >= 0 && p->dims[0] != x->dims[1]) {
                char why[160];
                snprintf(why, sizeof why, "input has %lld channels, parameter %zu has %lld",
                         (long long)x->dims[1], k, (long long)p->dims[0]);
                int rc = bad(c, why);
                if (rc)
                    return rc;
                break;
            }
        }
        set(out(c, 0), x->elem_type, x->rank, x->dims);
        return 0;
    }
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div") ||
        !strcmp(op, "Pow"))
        return broadcast(c, 2);
    if (!strcmp(op, "Conv")) {
        const struct rm_value *w = in(c, 1);
        if (!w || w->rank != x->rank || x->rank < 3)
            return w ? bad(c, "weight rank does not match the input rank") : 0;
        int64_t group = rm_node_attr_int(np, "group", 1);
        if (group <= 0)
            return bad(c, "group must be positive");
        if (x->dims[1] >= 0 && w->dims[1] >= 0 && x->dims[1] != w->dims[1] * group) {
            char why[200];
            snprintf(why, sizeof why, "input has %lld channels, weight expects %lld (%lld x group %lld)",
                     (long long)x->dims[1], (long long)(w->dims[1] * group), (long long)w->dims[1],
                     (long long)group);
            int rc = bad(c, why);
            if (rc || !c->o || !c->o->on_error)
                return rc;
        }
        return infer_window(c, x, w->dims + 2, (size_t)(w->rank - 2), w->dims[0], 0);
    }
    if (!strcmp(op, "MaxPool") || !strcmp(op, "AveragePool")) {
        size_t nk;
        const int64_t *k = rm_node_attr_ints(np, "kernel_shape", &nk);
        if (!k)
            return bad(c, "kernel_shape missing");
        return infer_window(c, x, k, nk, x->rank > 1 ? x->dims[1] : -1, 1);
    }
    if (!strcmp(op, "GlobalAveragePool") || !strcmp(op, "GlobalMaxPool")) {
        for (int i = 0; i < x->rank; i++)
            dims[i] = i < 2 ? x->dims[i] : 1;
        set(out(c, 0), x->elem_type, x->rank, dims);
        return 0;
    }
    if (!strcmp(op, "Flatten")) {
        int64_t axis = rm_node_attr_int(np, "axis", 1);
        if (axis < 0)
            axis += x->rank;
        if (axis < 0 || axis > x->rank)
            return bad(c, "axis out of range");
        int64_t a = 1, b = 1;
        for (int i = 0; i < x->rank; i++) {
            int64_t *p = i < axis ? &a : &b;
            if (x->dims[i] < 0 || *p < 0)
                *p = -1;
            else if (x->dims[i] && *p > INT64_MAX / x->dims[i])
                return bad(c, "shape size overflows");
            else
                *p *= x->dims[i];
        }
        dims[0] = a;
        dims[1] = b;
        set(out(c, 0), x->elem_type, 2, dims);
        return 0;
    }
    if (!strcmp(op, "Gemm")) {
        const struct rm_value *w = in(c, 1);
        if (!w || x->rank != 2 || w->rank != 2)
            return w ? bad(c, "Gemm needs 2-D inputs") : 0;
        int ta = (int)rm_node_attr_int(np, "transA", 0), tb = (int)rm_node_attr_int(np, "transB", 0);
        int64_t k1 = x->dims[ta ? 0 : 1], k2 = w->dims[tb ? 1 : 0];
        if (k1 >= 0 && k2 >= 0 && k1 != k2) {
            char why[160];
            snprintf(why, sizeof why, "input has %lld features, weight expects %lld", (long long)k1,
                     (long long)k2);
            int rc = bad(c, why);
            if (rc || !c->o || !c->o->on_error)
                return rc;
        }
        dims[0] = x->dims[ta ? 1 : 0];
        dims[1] = w->dims[tb ? 0 : 1];
        set(out(c, 0), x->elem_type, 2, dims);
        return 0;
    }
    if (!strcmp(op, "MatMul")) {
        const struct rm_value *w = in(c, 1);
        if (!w || x->rank < 2 || w->rank < 2)
            return 0;
        if (x->dims[x->rank - 1] >= 0 && w->dims[w->rank - 2] >= 0 &&
            x->dims[x->rank - 1] != w->dims[w->rank - 2])
            return bad(c, "inner dimensions differ");
        int rank = x->rank > w->rank ? x->rank : w->rank;
        for (int i = 0; i < rank - 2; i++) {
            int xi = i - (rank - x->rank), wi = i - (rank - w->rank);
            int64_t a = xi >= 0 ? x->dims[xi] : 1, b = wi >= 0 ? w->dims[wi] : 1;
            dims[i] = a == 1 ? b : a;
        }
        dims[rank - 2] = x->dims[x->rank - 2];
        dims[rank - 1] = w->dims[w->rank - 1];
        set(out(c, 0), x->elem_type, rank, dims);
        return 0;
    }
    if (!strcmp(op, "Concat")) {
        int64_t axis = rm_node_attr_int(np, "axis", 0);
        if (axis < 0)
            axis += x->rank;
        if (axis < 0 || axis >= x->rank)
            return bad(c, "axis out of range");
        memcpy(dims, x->dims, sizeof(int64_t) * (size_t)x->rank);
        for (size_t k = 1; k < np->n_input; k++) {
            const struct rm_value *v = in(c, k);
            if (!v)
                return 0;
            if (v->rank != x->rank)
                return bad(c, "inputs differ in rank");
            for (int i = 0; i < x->rank; i++) {
                if (i == axis)
                    dims[i] = dims[i] < 0 || v->dims[i] < 0 ? -1 : dims[i] + v->dims[i];
                else if (dims[i] >= 0 && v->dims[i] >= 0 && dims[i] != v->dims[i]) {
                    char why[160];
                    snprintf(why, sizeof why, "input %zu has size %lld on axis %d, input 0 has %lld", k,
                             (long long)v->dims[i], i, (long long)dims[i]);
                    return bad(c, why);
                }
            }
        }
        set(out(c, 0), x->elem_type, x->rank, dims);
        return 0;
    }
    if (!strcmp(op, "Reshape")) {
        int64_t shape[RM_MAX_RANK];
        size_t n;
        if (const_ints(c, 1, shape, RM_MAX_RANK, &n))
            return 0;
        int64_t total, known = 1;
        int infer_at = -1;
        if (rm_dims_numel(x->dims, (size_t)x->rank, &total))
            return 0;
        for (size_t i = 0; i < n; i++) {
            if (shape[i] == 0)
                shape[i] = (int)i < x->rank ? x->dims[i] : -1;
            if (shape[i] == -1 && infer_at < 0)
                infer_at = (int)i;
            else if (shape[i] < 0)
                return bad(c, "invalid shape value");
            else if (shape[i] && known > INT64_MAX / shape[i])
                return bad(c, "shape size overflows");
            else
                known *= shape[i];
        }
        if (infer_at >= 0)
            shape[infer_at] = known ? total / known : 0;
        set(out(c, 0), x->elem_type, (int)n, shape);
        return 0;
    }
    if (!strcmp(op, "Transpose")) {
        size_t np_;
        const int64_t *perm = rm_node_attr_ints(np, "perm", &np_);
        for (int i = 0; i < x->rank; i++) {
            int64_t p = perm && np_ == (size_t)x->rank ? perm[i] : x->rank - 1 - i;
            if (p < 0 || p >= x->rank)
                return bad(c, "perm out of range");
            dims[i] = x->dims[p];
        }
        set(out(c, 0), x->elem_type, x->rank, dims);
        return 0;
    }
    if (!strcmp(op, "Shape")) {
        dims[0] = x->rank;
        set(out(c, 0), ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, dims);
        return 0;
    }
    if (!strcmp(op, "Gather")) {
        const struct rm_value *ix = in(c, 1);
        int64_t axis = rm_node_attr_int(np, "axis", 0);
        if (!ix)
            return 0;
        if (axis < 0)
            axis += x->rank;
        if (axis < 0 || axis >= x->rank || x->rank - 1 + ix->rank > RM_MAX_RANK)
            return bad(c, "axis out of range");
        int r = 0;
        for (int i = 0; i < x->rank; i++) {
            if (i != axis)
                dims[r++] = x->dims[i];
            else
                for (int j = 0; j < ix->rank; j++)
                    dims[r++] = ix->dims[j];
        }
        set(out(c, 0), x->elem_type, r, dims);
        return 0;
    }
    if (!strcmp(op, "Squeeze") || !strcmp(op, "Unsqueeze") || !strcmp(op, "ReduceMean")) {
        int64_t axes[RM_MAX_RANK];
        size_t n = 0;
        int given = 1, mark[RM_MAX_RANK] = {0};
        const int64_t *a = rm_node_attr_ints(np, "axes", &n);
        if (a && n <= RM_MAX_RANK)
            memcpy(axes, a, n * sizeof *a);
        else if (a || (np->n_input > 1 && const_ints(c, 1, axes, RM_MAX_RANK, &n)))
            return 0; /* axes unknown at this point */
        else if (!a && np->n_input < 2)
            given = 0, n = 0;
        int sq = op[0] == 'S', red = op[0] == 'R';
        int orank = sq || red ? x->rank : x->rank + (int)n;
        if (orank > RM_MAX_RANK)
            return bad(c, "output rank too large");
        for (size_t j = 0; j < n; j++) {
            int64_t ax = axes[j] < 0 ? axes[j] + orank : axes[j];
            if (ax < 0 || ax >= orank)
                return bad(c, "axis out of range");
            mark[ax] = 1;
        }
        int r = 0;
        if (red) {
            int keep = (int)rm_node_attr_int(np, "keepdims", 1);
            int all = !given || n == 0;
            for (int i = 0; i < x->rank; i++)
                if (!(all || mark[i]))
                    dims[r++] = x->dims[i];
                else if (keep)
                    dims[r++] = 1;
        } else if (sq) {
            for (int i = 0; i < x->rank; i++)
                if (!(given ? mark[i] : x->dims[i] == 1))
                    dims[r++] = x->dims[i];
        } else {
            for (int i = 0, k = 0; i < orank; i++)
                dims[r++] = mark[i] ? 1 : x->dims[k++];
        }
        set(out(c, 0), x->elem_type, r, dims);
        return 0;
    }
    if (!strcmp(op, "Slice") && c->g->opset >= 10) {
        int64_t st[RM_MAX_RANK], en[RM_MAX_RANK], ax[RM_MAX_RANK], sp[RM_MAX_RANK];
        size_t ns, ne, na = 0, nsp = 0;
        if (const_ints(c, 1, st, RM_MAX_RANK, &ns) || const_ints(c, 2, en, RM_MAX_RANK, &ne) || ns != ne)
            return 0;
        if (np->n_input > 3 && np->input[3][0] && (const_ints(c, 3, ax, RM_MAX_RANK, &na) || na != ns))
            return 0;
        if (np->n_input > 4 && np->input[4][0] && (const_ints(c, 4, sp, RM_MAX_RANK, &nsp) || nsp != ns))
            return 0;
        memcpy(dims, x->dims, sizeof(int64_t) * (size_t)x->rank);
        for (size_t j = 0; j < ns; j++) {
            int64_t a = na ? ax[j] : (int64_t)j, k = nsp ? sp[j] : 1;
            if (a < 0)
                a += x->rank;
            if (a < 0 || a >= x->rank || k == 0)
                return bad(c, "bad Slice axis or step");
            int64_t d = x->dims[a], s = st[j], e = en[j];
            if (d < 0) {
                dims[a] = -1;
                continue;
            }
            s = s < 0 ? s + d : s;
            e = e < 0 ? e + d : e;
            if (k > 0) {
                s = s < 0 ? 0 : s > d ? d : s;
                e = e < 0 ? 0 : e > d ? d : e;
                dims[a] = e > s ? (e - s + k - 1) / k : 0;
            } else {
                s = s < 0 ? 0 : s > d - 1 ? d - 1 : s;
                e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
                dims[a] = s > e ? (s - e - k - 1) / -k : 0;
            }
        }
        set(out(c, 0), x->elem_type, x->rank, dims);
        return 0;
    }
    if (!strcmp(op, "Pad")) {
        int64_t pads[2 * RM_MAX_RANK];
        size_t n;
        const int64_t *pa = rm_node_attr_ints(np, "pads", &n);
        if (pa && n == 2 * (size_t)x->rank)
            memcpy(pads, pa, n * sizeof *pa);
        else if (pa || const_ints(c, 1, pads, 2 * RM_MAX_RANK, &n) || n != 2 * (size_t)x->rank)
            return 0;
        for (int i = 0; i < x->rank; i++) {
            dims[i] = x->dims[i] < 0 ? -1 : x->dims[i] + pads[i] + pads[i + x->rank];
            if (x->dims[i] >= 0 && dims[i] < 0)
                return bad(c, "pads remove more than the input has");
        }
        set(out(c, 0), x->elem_type, x->rank, dims);
        return 0;
    }
    if (c->o && c->o->strict)
        return rm_error_set(c->err, RM_EUNSUPPORTED, "node '%s': op %s is not supported",
                            rm_graph_node_label(c->g, c->node), op);
    return 0;
}

/* Contents of node output 0 when they follow from known inputs (int64 only). */
static void propagate(struct ctx *c)
{
    const struct rm_node *nd = &c->g->nodes[c->node];
    const Onnx__NodeProto *np = nd->proto;
    const char *op = np->op_type ? np->op_type : "";
    if (np->n_output < 1 || nd->outputs[0] < 0)
        return;
    struct known *o = &c->known[nd->outputs[0]];
    const struct rm_value *ov = &c->g->values[nd->outputs[0]];
    int64_t a[KNOWN_MAX], b[KNOWN_MAX];
    size_t na, nb;
    o->n = -1;
    if (ov->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
        return;
    if (!strcmp(op, "Constant") || !strcmp(op, "Identity") || !strcmp(op, "Squeeze") ||
        !strcmp(op, "Unsqueeze") || !strcmp(op, "Flatten") || !strcmp(op, "Reshape")) {
        if (!const_ints(c, 0, a, KNOWN_MAX, &na) || (!strcmp(op, "Constant") && np->n_input == 0 &&
                                                       !const_ints_constant(np, a, &na)))
            goto copy_a;
        return;
    }
    if (!strcmp(op, "Shape")) {
        const struct rm_value *x = in(c, 0);
        if (!x || x->rank > KNOWN_MAX)
            return;
        int64_t st = rm_node_attr_int(np, "start", 0), en = rm_node_attr_int(np, "end", x->rank);
        st = st < 0 ? st + x->rank : st;
        en = en < 0 ? en + x->rank : en;
        st = st < 0 ? 0 : st > x->rank ? x->rank : st;
        en = en < 0 ? 0 : en > x->rank ? x->rank : en;
        na = 0;
        for (int64_t i = st; i < en; i++) {
            if (x->dims[i] < 0)
                return;
            a[na++] = x->dims[i];
        }
        goto copy_a;
    }
    if (!strcmp(op, "Gather")) {
        if (rm_node_attr_int(np, "axis", 0) != 0 || const_ints(c, 0, a, KNOWN_MAX, &na) ||
            const_ints(c, 1, b, KNOWN_MAX, &nb))
            return;
        int64_t r[KNOWN_MAX];
        for (size_t i = 0; i < nb; i++) {
            int64_t q = b[i] < 0 ? b[i] + (int64_t)na : b[i];
            if (q < 0 || q >= (int64_t)na)
                return;
            r[i] = a[q];
        }
        memcpy(a, r, sizeof(int64_t) * nb);
        na = nb;
        goto copy_a;
    }
    if (!strcmp(op, "Concat")) {
        na = 0;
        for (size_t k = 0; k < np->n_input; k++) {
            if (const_ints(c, k, b, KNOWN_MAX, &nb) || na + nb > KNOWN_MAX)
                return;
            memcpy(a + na, b, sizeof(int64_t) * nb);
            na += nb;
        }
        goto copy_a;
    }
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div")) {
        if (const_ints(c, 0, a, KNOWN_MAX, &na) || const_ints(c, 1, b, KNOWN_MAX, &nb) ||
            (na != nb && na != 1 && nb != 1))
            return;
        size_t n = na > nb ? na : nb;
        int64_t r[KNOWN_MAX];
        for (size_t i = 0; i < n; i++) {
            int64_t x = a[na == 1 ? 0 : i], y = b[nb == 1 ? 0 : i];
            if (op[0] == 'D' && (y == 0 || (x == INT64_MIN && y == -1)))
                return;
            r[i] = op[0] == 'A' ? (int64_t)((uint64_t)x + (uint64_t)y)
                   : op[0] == 'S' ? (int64_t)((uint64_t)x - (uint64_t)y)
                   : op[0] == 'M' ? (int64_t)((uint64_t)x * (uint64_t)y) : x / y;
        }
        memcpy(a, r, sizeof(int64_t) * n);
        na = n;
        goto copy_a;
    }
    return;
copy_a:
    /* the inferred output size must agree with what was computed */
    if (ov->rank > 1)
        return;
    o->n = (int)na;
    memcpy(o->v, a, sizeof(int64_t) * na);
}

int rm_shape_infer(struct rm_graph *g, const struct rm_shape_opts *opts, struct rm_error *err)
{
    struct ctx c = {g, opts, err, 0, NULL};
    c.known = malloc((g->n_values ? g->n_values : 1) * sizeof *c.known);
    for (size_t v = 0; c.known && v < g->n_values; v++)
        c.known[v].n = -1;
    if (opts && opts->dynamic_dim > 0)
        for (size_t v = 0; v < g->n_values; v++) {
            struct rm_value *val = &g->values[v];
            if (val->input >= 0 && val->init < 0)
                for (int i = 0; i < val->rank; i++)
                    if (val->dims[i] < 0)
                        val->dims[i] = opts->dynamic_dim;
        }
    for (size_t i = 0; i < g->n_nodes; i++) {
        c.node = i;
        int rc = infer_node(&c);
        if (rc) {
            free(c.known);
            return rc;
        }
        if (c.known)
            propagate(&c);
    }
    free(c.known);
    return 0;
}

int64_t rm_node_macs(const struct rm_graph *g, size_t i)
{
    const struct rm_node *n = &g->nodes[i];
    const char *op = n->proto->op_type ? n->proto->op_type : "";
    int conv = !strcmp(op, "Conv"), gemm = !strcmp(op, "Gemm"), mm = !strcmp(op, "MatMul");
    if (!conv && !gemm && !mm)
        return 0;
    if (n->proto->n_input < 2 || n->proto->n_output < 1 || n->inputs[1] < 0 || n->outputs[0] < 0)
        return -1;
    const struct rm_value *w = &g->values[n->inputs[1]];
    const struct rm_value *y = &g->values[n->outputs[0]];
    int64_t ny, per;
    if (w->rank < 2 || y->rank < 0 || rm_dims_numel(y->dims, (size_t)y->rank, &ny))
        return -1;
    if (conv) {
        /* each output element: in_channels/group * kernel volume MACs */
        if (rm_dims_numel(w->dims + 1, (size_t)w->rank - 1, &per))
            return -1;
    } else if (gemm) {
        int tb = (int)rm_node_attr_int(n->proto, "transB", 0);
        per = w->dims[tb ? 1 : 0];
    } else {
        per = w->dims[w->rank - 2];
    }
    if (per < 0 || (per && ny > INT64_MAX / per))
        return -1;
    return ny * per;
}
