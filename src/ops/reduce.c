/* Reductions: ReduceMean, ReduceMax, ReduceMin, ReduceSum, ReduceProd, ReduceL2 (axes as
 * an attribute or, ReduceSum from opset 13 and all from opset 18, as an input), ArgMax,
 * ArgMin and TopK. Shape rules and C kernels. */
#include "rm_ops_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int rm_reduced_axes(const Onnx__NodeProto *np, const struct rm_host_tensor *axes_in, int rank, int *red,
                    const char **why)
{
    int64_t axes[RM_MAX_RANK], n;
    int given;
    int noop = (int)rm_node_attr_int(np, "noop_with_empty_axes", 0);
    if (axes_in && (axes_in->dtype != RM_I64 || axes_in->rank > 1)) {
        *why = "axes must be a 1-D int64 tensor";
        return RM_EFORMAT;
    }
    if (rm_axes_of(np, axes_in, axes, &n, &given)) {
        *why = "too many axes";
        return RM_EFORMAT;
    }
    for (int i = 0; i < rank; i++)
        red[i] = 0;
    for (int64_t j = 0; j < n; j++) {
        if (rm_norm_axis(&axes[j], rank)) {
            *why = "axis out of range";
            return RM_EFORMAT;
        }
        red[axes[j]] = 1;
    }
    if (n == 0 && !noop)
        for (int i = 0; i < rank; i++)
            red[i] = 1;
    return 0;
}

int rm_shape_reduce(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    if (!x)
        return 0;
    const struct rm_host_tensor *ax = rm_s_const(s, 1);
    if (rm_s_present(s, 1) && !ax && !rm_node_attr(s->np, "axes"))
        return rm_s_unsupported(s, "axes input is not a plan-time constant");
    int red[RM_MAX_RANK], rank = 0;
    int64_t dims[RM_MAX_RANK];
    const char *why;
    if (rm_reduced_axes(s->np, ax, x->rank, red, &why))
        return rm_s_bad(s, "%s", why);
    int keep = (int)rm_node_attr_int(s->np, "keepdims", 1);
    for (int i = 0; i < x->rank; i++) {
        if (!red[i])
            dims[rank++] = x->dims[i];
        else if (keep)
            dims[rank++] = 1;
    }
    rm_s_out(s, 0, x->elem_type, rank, dims);
    return 0;
}

/* Offsets into the reduced output: os[i] is the output stride of input axis i (0 where
 * reduced). */
static void out_strides(const struct rm_host_tensor *x, const int *red, int64_t *os)
{
    int64_t kd[RM_MAX_RANK], ks[RM_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        kd[i] = red[i] ? 1 : x->dims[i];
    rm_strides(x->rank, kd, ks);
    for (int i = 0; i < x->rank; i++)
        os[i] = red[i] ? 0 : ks[i];
}

static int reduce_int(const struct rm_kcall *k, const int64_t *os)
{
    const struct rm_host_tensor *x = k->in[0];
    struct rm_host_tensor *o = k->out[0];
    int64_t *d = o->data, idx[RM_MAX_RANK] = {0};
    const int64_t *s = x->data;
    enum rm_op op = k->op;
    if (op != RM_OP_REDUCE_SUM && op != RM_OP_REDUCE_PROD && op != RM_OP_REDUCE_MAX && op != RM_OP_REDUCE_MIN)
        return rm_k_err(k, RM_EUNSUPPORTED, "int64 input is not supported");
    for (int64_t t = 0; t < o->numel; t++)
        d[t] = op == RM_OP_REDUCE_SUM ? 0 : op == RM_OP_REDUCE_PROD ? 1 : op == RM_OP_REDUCE_MAX ? INT64_MIN : INT64_MAX;
    for (int64_t t = 0; t < x->numel; t++) {
        int64_t off = 0;
        for (int i = 0; i < x->rank; i++)
            off += idx[i] * os[i];
        int64_t v = s[t], *a = &d[off];
        switch (op) {
        case RM_OP_REDUCE_SUM: *a = (int64_t)((uint64_t)*a + (uint64_t)v); break;
        case RM_OP_REDUCE_PROD: *a = (int64_t)((uint64_t)*a * (uint64_t)v); break;
        case RM_OP_REDUCE_MAX: *a = v > *a ? v : *a; break;
        default: *a = v < *a ? v : *a; break;
        }
        rm_next_index(x->rank, x->dims, idx);
    }
    return 0;
}

int rm_kernel_reduce(const struct rm_kcall *k)
{
    const struct rm_host_tensor *x = k->in[0];
    struct rm_host_tensor *o = k->out[0];
    int red[RM_MAX_RANK];
    const char *why;
    int rc = rm_reduced_axes(k->np, k->n_in > 1 ? k->in[1] : NULL, x->rank, red, &why);
    if (rc)
        return rm_k_err(k, rc, "%s", why);
    int64_t os[RM_MAX_RANK], idx[RM_MAX_RANK] = {0};
    out_strides(x, red, os);
    if (x->dtype != RM_F32)
        return reduce_int(k, os);
    enum rm_op op = k->op;
    /* sums in double; max and min exactly */
    double init = op == RM_OP_REDUCE_PROD ? 1 : op == RM_OP_REDUCE_MAX ? -INFINITY : op == RM_OP_REDUCE_MIN ? INFINITY : 0;
    double *acc = malloc((size_t)(o->numel ? o->numel : 1) * sizeof *acc);
    if (!acc)
        return rm_k_err(k, RM_ENOMEM, "out of memory");
    for (int64_t t = 0; t < o->numel; t++)
        acc[t] = init;
    const float *s = x->data;
    for (int64_t t = 0; t < x->numel; t++) {
        int64_t off = 0;
        for (int i = 0; i < x->rank; i++)
            off += idx[i] * os[i];
        double v = s[t], *a = &acc[off];
        switch (op) {
        case RM_OP_REDUCE_PROD: *a *= v; break;
        /* NaN propagates */
        case RM_OP_REDUCE_MAX: *a = v != v || v > *a ? v : *a; break;
        case RM_OP_REDUCE_MIN: *a = v != v || v < *a ? v : *a; break;
        case RM_OP_REDUCE_L2: *a += v * v; break;
        default: *a += v; break;
        }
        rm_next_index(x->rank, x->dims, idx);
    }
    int64_t cnt = o->numel ? x->numel / o->numel : 1;
    for (int64_t t = 0; t < o->numel; t++) {
        double v = acc[t];
        if (op == RM_OP_REDUCE_MEAN)
            v = cnt ? v / (double)cnt : NAN;
        else if (op == RM_OP_REDUCE_L2)
            v = sqrt(v);
        ((float *)o->data)[t] = (float)v;
    }
    free(acc);
    return 0;
}

/* ---- ArgMax, ArgMin ---------------------------------------------------------------- */

/* Element i of x, exactly (long double holds every int64) */
static long double elem(const struct rm_host_tensor *x, int64_t i)
{
    return x->dtype == RM_F32 ? (long double)((const float *)x->data)[i]
                              : (long double)((const int64_t *)x->data)[i];
}

int rm_shape_arg(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    int64_t axis = rm_node_attr_int(s->np, "axis", 0), dims[RM_MAX_RANK];
    if (!x)
        return 0;
    if (rm_norm_axis(&axis, x->rank))
        return rm_s_bad(s, "axis out of range");
    if (x->dims[axis] == 0)
        return rm_s_bad(s, "the axis is empty");
    int keep = (int)rm_node_attr_int(s->np, "keepdims", 1), rank = 0;
    for (int i = 0; i < x->rank; i++)
        if (i != axis || keep)
            dims[rank++] = i == axis ? 1 : x->dims[i];
    rm_s_out(s, 0, RM_I64, rank, dims);
    return 0;
}

int rm_kernel_arg(const struct rm_kcall *k)
{
    const struct rm_host_tensor *x = k->in[0];
    int64_t axis = rm_node_attr_int(k->np, "axis", 0);
    int last = rm_node_attr_int(k->np, "select_last_index", 0) != 0, mx = k->op == RM_OP_ARG_MAX;
    if (rm_norm_axis(&axis, x->rank) || x->dims[axis] == 0)
        return rm_k_err(k, RM_EFORMAT, "axis out of range or empty");
    int64_t outer = 1, inner = 1, n = x->dims[axis];
    for (int i = 0; i < axis; i++)
        outer *= x->dims[i];
    for (int i = (int)axis + 1; i < x->rank; i++)
        inner *= x->dims[i];
    int64_t *d = k->out[0]->data;
    for (int64_t a = 0; a < outer; a++)
        for (int64_t b = 0; b < inner; b++) {
            int64_t best = 0, base = a * n * inner + b;
            long double bv = elem(x, base);
            for (int64_t j = 1; j < n; j++) {
                long double v = elem(x, base + j * inner);
                int better = mx ? v > bv : v < bv;
                if (better || (last && v == bv)) {
                    best = j;
                    bv = v;
                }
            }
            d[a * inner + b] = best;
        }
    return 0;
}

/* ---- TopK ------------------------------------------------------------------------------- */

/* K of a TopK node: the attribute k (opset 1) or the 1-element input K. */
static int topk_k(const Onnx__NodeProto *np, int64_t opset, const struct rm_host_tensor *kin, int64_t *k)
{
    if (opset < 10) {
        const Onnx__AttributeProto *a = rm_node_attr(np, "k");
        if (!a || !a->has_i)
            return -1;
        *k = a->i;
        return 0;
    }
    if (!kin || kin->dtype != RM_I64 || kin->numel != 1 || kin->rank > 1)
        return -1;
    *k = ((const int64_t *)kin->data)[0];
    return 0;
}

int rm_shape_topk(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    int64_t axis = rm_node_attr_int(s->np, "axis", -1), dims[RM_MAX_RANK], kk;
    if (!x)
        return 0;
    if (rm_norm_axis(&axis, x->rank))
        return rm_s_bad(s, "axis out of range");
    if (s->opset >= 10 && !rm_s_const(s, 1))
        return rm_s_unsupported(s, "K is not a plan-time constant");
    if (topk_k(s->np, s->opset, rm_s_const(s, 1), &kk))
        return rm_s_bad(s, "K must be one int64");
    if (kk < 0 || (x->dims[axis] >= 0 && kk > x->dims[axis]))
        return rm_s_bad(s, "K (%lld) is negative or larger than the axis (%lld)", (long long)kk,
                        (long long)x->dims[axis]);
    memcpy(dims, x->dims, sizeof(int64_t) * (size_t)x->rank);
    dims[axis] = kk;
    rm_s_out(s, 0, x->elem_type, x->rank, dims);
    rm_s_out(s, 1, RM_I64, x->rank, dims);
    return 0;
}

struct ranked {
    long double v; /* exact for every int64 and float */
    int64_t i;
};

/* largest first; NaN counts as the largest value; equal values keep index order */
static int by_largest(const void *pa, const void *pb)
{
    const struct ranked *a = pa, *b = pb;
    int na = a->v != a->v, nb = b->v != b->v;
    if (na != nb)
        return na ? -1 : 1;
    if (!na && a->v != b->v)
        return a->v > b->v ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

static int by_smallest(const void *pa, const void *pb)
{
    const struct ranked *a = pa, *b = pb;
    int na = a->v != a->v, nb = b->v != b->v;
    if (na != nb)
        return na ? 1 : -1;
    if (!na && a->v != b->v)
        return a->v < b->v ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

int rm_kernel_topk(const struct rm_kcall *k)
{
    const struct rm_host_tensor *x = k->in[0];
    struct rm_host_tensor *vo = k->out[0], *io = k->n_out > 1 ? k->out[1] : NULL;
    int64_t axis = rm_node_attr_int(k->np, "axis", -1), kk;
    int largest = rm_node_attr_int(k->np, "largest", 1) != 0;
    if (rm_norm_axis(&axis, x->rank))
        return rm_k_err(k, RM_EFORMAT, "axis out of range");
    if (topk_k(k->np, k->opset, k->n_in > 1 ? k->in[1] : NULL, &kk) || kk < 0 || kk > x->dims[axis] ||
        (vo && vo->dims[axis] != kk) || (io && io->dims[axis] != kk))
        return rm_k_err(k, RM_EFORMAT, "K does not fit the input");
    int64_t outer = 1, inner = 1, n = x->dims[axis];
    for (int i = 0; i < axis; i++)
        outer *= x->dims[i];
    for (int i = (int)axis + 1; i < x->rank; i++)
        inner *= x->dims[i];
    struct ranked *r = malloc((size_t)(n ? n : 1) * sizeof *r);
    if (!r)
        return rm_k_err(k, RM_ENOMEM, "out of memory");
    /* always sorted: sorted=0 leaves the order to the runtime */
    for (int64_t a = 0; a < outer; a++)
        for (int64_t b = 0; b < inner; b++) {
            int64_t base = a * n * inner + b, obase = a * kk * inner + b;
            for (int64_t j = 0; j < n; j++) {
                r[j].v = elem(x, base + j * inner);
                r[j].i = j;
            }
            qsort(r, (size_t)n, sizeof *r, largest ? by_largest : by_smallest);
            for (int64_t j = 0; j < kk; j++) {
                int64_t t = obase + j * inner;
                if (vo && vo->dtype == RM_F32)
                    ((float *)vo->data)[t] = ((const float *)x->data)[base + r[j].i * inner];
                else if (vo)
                    ((int64_t *)vo->data)[t] = ((const int64_t *)x->data)[base + r[j].i * inner];
                if (io)
                    ((int64_t *)io->data)[t] = r[j].i;
            }
        }
    free(r);
    return 0;
}
