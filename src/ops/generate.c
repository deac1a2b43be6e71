/* Ops that make or reshape data from shape tensors: Cast, ConstantOfShape, Range,
 * Expand, Tile, Split. Their output shapes depend on input contents (a shape, repeats,
 * split sizes, Range's bounds), which must be known when shapes are inferred: constants,
 * or computed from constants (Shape -> Gather -> Concat -> Expand). Every size read from
 * the file is checked for overflow. Shape rules and C kernels. */
#include "rm_ops_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHY(code, ...) (snprintf(why, why_size, __VA_ARGS__), (code))

/* ---- Cast ---------------------------------------------------------------------------- */

int rm_shape_cast(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    const Onnx__AttributeProto *to = rm_node_attr(s->np, "to");
    if (!to || !to->has_i)
        return rm_s_bad(s, "attribute 'to' is missing");
    if (to->i <= 0 || to->i > INT32_MAX || !strcmp(rm_dtype_name((int32_t)to->i), "unknown-type"))
        return rm_s_bad(s, "'to' is %lld, not an ONNX element type", (long long)to->i);
    if (x)
        rm_s_out(s, 0, (int32_t)to->i, x->rank, x->dims);
    return 0;
}

/* v wrapped to the integer type t, as a C cast to it does (two's complement) */
static int64_t wrap_int(int64_t v, int32_t t)
{
    uint64_t u = (uint64_t)v;
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: u &= 0xffffffffu; return u >= 0x80000000u ? (int64_t)u - 0x100000000 : (int64_t)u;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: u &= 0xffffu; return u >= 0x8000u ? (int64_t)u - 0x10000 : (int64_t)u;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: u &= 0xffu; return u >= 0x80u ? (int64_t)u - 0x100 : (int64_t)u;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: return (int64_t)(u & 0xffu);
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return v != 0;
    default: return v;
    }
}

int rm_kernel_cast(const struct rm_kcall *k)
{
    const struct rm_host_tensor *x = k->in[0];
    struct rm_host_tensor *o = k->out[0];
    int32_t to = (int32_t)rm_node_attr_int(k->np, "to", 0);
    int64_t n = x->numel;
    if (rm_dtype_host(to) != o->dtype)
        return rm_k_err(k, RM_EUNSUPPORTED, "cast to %s is not supported", rm_dtype_name(to));
    if (o->dtype == RM_F32) {
        float *d = o->data;
        if (x->dtype == RM_F32)
            memcpy(d, x->data, (size_t)n * 4);
        else
            for (int64_t i = 0; i < n; i++)
                d[i] = (float)((const int64_t *)x->data)[i];
        return 0;
    }
    int64_t *d = o->data;
    if (x->dtype == RM_F32) {
        const float *s = x->data;
        for (int64_t i = 0; i < n; i++)
            /* to bool: any non-zero value, NaN included, is true */
            d[i] = to == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL ? s[i] != 0 : wrap_int(rm_f2i(s[i]), to);
    } else {
        const int64_t *s = x->data;
        for (int64_t i = 0; i < n; i++)
            d[i] = wrap_int(s[i], to);
    }
    return 0;
}

/* ---- ConstantOfShape -------------------------------------------------------------------- */

/* The shape a 1-D int64 shape tensor gives: 0, or an RM_E code with the reason in why. */
static int shape_from(const struct rm_host_tensor *t, int *rank, int64_t *dims, char *why, size_t why_size)
{
    if (t->dtype != RM_I64 || t->rank != 1)
        return WHY(RM_EFORMAT, "shape must be a 1-D int64 tensor");
    if (t->numel > RM_MAX_RANK)
        return WHY(RM_EUNSUPPORTED, "rank %lld is above %d", (long long)t->numel, RM_MAX_RANK);
    int64_t n;
    for (int64_t i = 0; i < t->numel; i++) {
        dims[i] = ((const int64_t *)t->data)[i];
        if (dims[i] < 0)
            return WHY(RM_EFORMAT, "shape entry %lld is negative (%lld)", (long long)i, (long long)dims[i]);
    }
    if (rm_dims_numel(dims, (size_t)t->numel, &n))
        return WHY(RM_EFORMAT, "shape entries multiply past int64");
    *rank = (int)t->numel;
    return 0;
}

/* The value attribute (one element; float 0 when absent) and its type. */
static const Onnx__TensorProto *cos_value(const Onnx__NodeProto *np)
{
    const Onnx__AttributeProto *a = rm_node_attr(np, "value");
    return a ? a->t : NULL;
}

int rm_shape_constant_of_shape(struct rm_snode *s)
{
    const struct rm_host_tensor *sh = rm_s_const(s, 0);
    const Onnx__TensorProto *v = cos_value(s->np);
    int64_t dims[RM_MAX_RANK], n;
    int rank;
    char why[200];
    if (rm_node_attr(s->np, "value") && !v)
        return rm_s_bad(s, "attribute 'value' is not a tensor");
    if (v && (rm_tensor_numel(v, &n, NULL) || n != 1))
        return rm_s_bad(s, "'value' must hold one element");
    if (!sh)
        return rm_s_unsupported(s, "shape input is not a plan-time constant");
    int rc = shape_from(sh, &rank, dims, why, sizeof why);
    if (rc)
        return rc == RM_EFORMAT ? rm_s_bad(s, "%s", why) : rm_s_unsupported(s, "%s", why);
    rm_s_out(s, 0, v ? v->data_type : RM_F32, rank, dims);
    return 0;
}

int rm_kernel_constant_of_shape(const struct rm_kcall *k)
{
    const Onnx__TensorProto *v = cos_value(k->np);
    struct rm_host_tensor *o = k->out[0];
    float f = 0;
    int64_t i = 0;
    if (v) {
        if (rm_dtype_host(v->data_type) != o->dtype)
            return rm_k_err(k, RM_EUNSUPPORTED, "value of type %s is not supported", rm_dtype_name(v->data_type));
        if (rm_tensor_is_external(v))
            return rm_k_err(k, RM_EUNSUPPORTED, "value stored externally is not supported");
        int rc = o->dtype == RM_F32 ? rm_tensor_to_f32(v, &f, 1, k->err) : rm_tensor_to_i64(v, &i, 1, k->err);
        if (rc)
            return rc;
    }
    for (int64_t t = 0; t < o->numel; t++) {
        if (o->dtype == RM_F32)
            ((float *)o->data)[t] = f;
        else
            ((int64_t *)o->data)[t] = i;
    }
    return 0;
}

/* ---- Range ------------------------------------------------------------------------------ */

/* Number of elements of Range(start, limit, delta): 0, or RM_EFORMAT with the reason. */
static int range_count(const struct rm_host_tensor *const *in, int64_t *n, char *why, size_t why_size)
{
    for (int k = 0; k < 3; k++)
        if (!in[k] || in[k]->numel != 1 || in[k]->dtype != in[0]->dtype)
            return WHY(RM_EFORMAT, "start, limit and delta must be scalars of one type");
    if (in[0]->dtype == RM_F32) {
        float s = ((const float *)in[0]->data)[0], l = ((const float *)in[1]->data)[0];
        float d = ((const float *)in[2]->data)[0];
        /* as onnxruntime counts: the difference in float, the quotient in double */
        double c = ceil((double)(l - s) / (double)d);
        if (d == 0 || c != c)
            return WHY(RM_EFORMAT, "delta is 0 or the bounds are not numbers");
        if (c > (double)((int64_t)1 << 40))
            return WHY(RM_EFORMAT, "%g elements are too many", c);
        *n = c > 0 ? (int64_t)c : 0;
        return 0;
    }
    int64_t s = ((const int64_t *)in[0]->data)[0], l = ((const int64_t *)in[1]->data)[0];
    int64_t d = ((const int64_t *)in[2]->data)[0];
    if (d == 0)
        return WHY(RM_EFORMAT, "delta is 0");
    if ((d > 0 && l <= s) || (d < 0 && l >= s)) {
        *n = 0;
        return 0;
    }
    /* the distance and step as unsigned magnitudes: exact for any int64 bounds */
    uint64_t dist = d > 0 ? (uint64_t)l - (uint64_t)s : (uint64_t)s - (uint64_t)l;
    uint64_t step = d > 0 ? (uint64_t)d : 0 - (uint64_t)d;
    uint64_t c = dist / step + (dist % step != 0);
    if (c > ((uint64_t)1 << 40))
        return WHY(RM_EFORMAT, "%llu elements are too many", (unsigned long long)c);
    *n = (int64_t)c;
    return 0;
}

int rm_shape_range(struct rm_snode *s)
{
    const struct rm_host_tensor *in[3];
    int32_t et = 0;
    for (size_t k = 0; k < 3; k++) {
        const struct rm_value *v = rm_s_in(s, k);
        if (!rm_s_present(s, k))
            return rm_s_bad(s, "needs start, limit and delta");
        if (v && v->rank > 0)
            return rm_s_bad(s, "input %zu is not a scalar", k);
        if (v && !et)
            et = v->elem_type;
        else if (v && v->elem_type && v->elem_type != et)
            return rm_s_bad(s, "inputs differ in type");
        in[k] = rm_s_const(s, k);
    }
    if (!in[0] || !in[1] || !in[2])
        return rm_s_unsupported(s, "start, limit or delta is not a plan-time constant");
    int64_t n;
    char why[200];
    if (range_count(in, &n, why, sizeof why))
        return rm_s_bad(s, "%s", why);
    rm_s_out(s, 0, et, 1, &n);
    return 0;
}

int rm_kernel_range(const struct rm_kcall *k)
{
    struct rm_host_tensor *o = k->out[0];
    int64_t n;
    char why[200];
    if (k->n_in != 3)
        return rm_k_err(k, RM_EFORMAT, "needs start, limit and delta");
    if (range_count(k->in, &n, why, sizeof why))
        return rm_k_err(k, RM_EFORMAT, "%s", why);
    if (n != o->numel || o->dtype != k->in[0]->dtype)
        return rm_k_err(k, RM_EFORMAT, "output does not have the %lld elements it should", (long long)n);
    if (o->dtype == RM_F32) {
        /* accumulated like onnxruntime, not start + i * delta */
        float v = ((const float *)k->in[0]->data)[0], d = ((const float *)k->in[2]->data)[0];
        for (int64_t i = 0; i < n; i++, v += d)
            ((float *)o->data)[i] = v;
    } else {
        uint64_t v = (uint64_t)((const int64_t *)k->in[0]->data)[0], d = (uint64_t)((const int64_t *)k->in[2]->data)[0];
        for (int64_t i = 0; i < n; i++, v += d)
            ((int64_t *)o->data)[i] = (int64_t)v;
    }
    return 0;
}

/* ---- Expand ------------------------------------------------------------------------------ */

int rm_shape_expand(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    const struct rm_host_tensor *sh = rm_s_const(s, 1);
    int64_t dims[RM_MAX_RANK], out[RM_MAX_RANK], n;
    int rank, orank, bad;
    char why[200];
    if (!rm_s_present(s, 1))
        return rm_s_bad(s, "shape input is missing");
    if (!sh)
        return rm_s_unsupported(s, "shape input is not a plan-time constant");
    int rc = shape_from(sh, &rank, dims, why, sizeof why);
    if (rc)
        return rc == RM_EFORMAT ? rm_s_bad(s, "%s", why) : rm_s_unsupported(s, "%s", why);
    if (!x)
        return 0;
    const int ranks[2] = {x->rank, rank};
    const int64_t *dv[2] = {x->dims, dims};
    if (rm_broadcast_dims(2, ranks, dv, &orank, out, &bad))
        return rm_s_bad(s, "input and shape cannot be broadcast: their dimension %d differs", bad);
    int known = 1;
    for (int i = 0; i < orank; i++)
        known &= out[i] >= 0;
    if (known && rm_dims_numel(out, (size_t)orank, &n))
        return rm_s_bad(s, "output size overflows");
    rm_s_out(s, 0, x->elem_type, orank, out);
    return 0;
}

int rm_kernel_expand(const struct rm_kcall *k)
{
    if (k->in[0]->dtype != k->out[0]->dtype)
        return rm_k_err(k, RM_EFORMAT, "output type differs from the input's");
    rm_broadcast_copy(k->in[0], k->out[0]);
    return 0;
}

/* ---- Tile -------------------------------------------------------------------------------- */

int rm_shape_tile(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    const struct rm_host_tensor *rp = rm_s_const(s, 1);
    int64_t dims[RM_MAX_RANK];
    if (!x)
        return 0;
    if (!rm_s_present(s, 1))
        return rm_s_bad(s, "repeats input is missing");
    if (!rp)
        return rm_s_unsupported(s, "repeats input is not a plan-time constant");
    if (rp->dtype != RM_I64 || rp->rank != 1 || rp->numel != x->rank)
        return rm_s_bad(s, "repeats must be a 1-D int64 tensor of %d entries", x->rank);
    int known = 1;
    for (int i = 0; i < x->rank; i++) {
        int64_t r = ((const int64_t *)rp->data)[i];
        if (r < 0)
            return rm_s_bad(s, "repeats entry %d is negative (%lld)", i, (long long)r);
        if (x->dims[i] < 0) {
            dims[i] = -1;
            known = 0;
        } else if (r && x->dims[i] > INT64_MAX / r) {
            return rm_s_bad(s, "output size overflows");
        } else {
            dims[i] = x->dims[i] * r;
        }
    }
    int64_t n;
    if (known && rm_dims_numel(dims, (size_t)x->rank, &n))
        return rm_s_bad(s, "output size overflows");
    rm_s_out(s, 0, x->elem_type, x->rank, dims);
    return 0;
}

int rm_kernel_tile(const struct rm_kcall *k)
{
    const struct rm_host_tensor *x = k->in[0];
    struct rm_host_tensor *o = k->out[0];
    size_t es = o->dtype == RM_I64 ? 8 : 4;
    if (o->numel == 0)
        return 0;
    if (o->rank == 0) {
        memcpy(o->data, x->data, es);
        return 0;
    }
    /* each output row (the last axis) is the input row at the output's indices modulo
     * the input's dims, repeated */
    int last = o->rank - 1;
    int64_t xs[RM_MAX_RANK], idx[RM_MAX_RANK] = {0}, w = x->dims[last];
    rm_strides(x->rank, x->dims, xs);
    int64_t rows = o->numel / o->dims[last];
    for (int64_t r = 0; r < rows; r++) {
        int64_t off = 0;
        for (int i = 0; i < last; i++)
            off += idx[i] % x->dims[i] * xs[i];
        char *d = (char *)o->data + (size_t)(r * o->dims[last]) * es;
        for (int64_t j = 0; j < o->dims[last]; j += w)
            memcpy(d + (size_t)j * es, (const char *)x->data + (size_t)off * es, (size_t)w * es);
        rm_next_index(last, o->dims, idx);
    }
    return 0;
}

/* ---- Split ------------------------------------------------------------------------------- */

int rm_split_sizes(const Onnx__NodeProto *np, int64_t opset, const struct rm_host_tensor *split, int64_t dim,
                   int64_t *sizes, size_t n_out, char *why, size_t why_size)
{
    size_t na = 0;
    const int64_t *attr = rm_node_attr_ints(np, "split", &na);
    const Onnx__AttributeProto *num = rm_node_attr(np, "num_outputs");
    if (n_out < 1)
        return WHY(RM_EFORMAT, "has no output");
    if (split || attr) {
        int64_t total = 0, cnt = split ? split->numel : (int64_t)na;
        if (split && (split->dtype != RM_I64 || split->rank != 1))
            return WHY(RM_EFORMAT, "split must be a 1-D int64 tensor");
        if (cnt != (int64_t)n_out)
            return WHY(RM_EFORMAT, "split has %lld entries for %zu outputs", (long long)cnt, n_out);
        for (size_t k = 0; k < n_out; k++) {
            sizes[k] = split ? ((const int64_t *)split->data)[k] : attr[k];
            if (sizes[k] < 0 || sizes[k] > INT64_MAX - total)
                return WHY(RM_EFORMAT, "split entry %zu (%lld) is negative or too large", k, (long long)sizes[k]);
            total += sizes[k];
        }
        if (dim >= 0 && total != dim)
            return WHY(RM_EFORMAT, "split sizes add up to %lld, the axis has %lld", (long long)total, (long long)dim);
        return 0;
    }
    if (dim < 0) {
        for (size_t k = 0; k < n_out; k++)
            sizes[k] = -1;
        return 0;
    }
    if (num && opset >= 18) {
        /* parts of ceil(dim / n), the last one smaller */
        if (!num->has_i || num->i != (int64_t)n_out)
            return WHY(RM_EFORMAT, "num_outputs does not match the %zu outputs", n_out);
        int64_t c = dim / (int64_t)n_out + (dim % (int64_t)n_out != 0), left = dim;
        for (size_t k = 0; k < n_out; k++) {
            sizes[k] = left < c ? left : c;
            left -= sizes[k];
        }
        return 0;
    }
    if (dim % (int64_t)n_out)
        return WHY(RM_EFORMAT, "an axis of %lld cannot be split into %zu equal parts", (long long)dim, n_out);
    for (size_t k = 0; k < n_out; k++)
        sizes[k] = dim / (int64_t)n_out;
    return 0;
}

/* The split input of a Split node: input 1 from opset 13 on (and in Split-1). */
static bool split_from_input(const Onnx__NodeProto *np, int64_t opset)
{
    return (opset >= 13 || opset < 2) && np->n_input > 1 && np->input[1] && np->input[1][0];
}

int rm_shape_split(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    int64_t axis = rm_node_attr_int(s->np, "axis", 0), dims[RM_MAX_RANK];
    size_t n_out = s->np->n_output;
    char why[200];
    if (!x)
        return 0;
    if (rm_norm_axis(&axis, x->rank))
        return rm_s_bad(s, "axis out of range");
    const struct rm_host_tensor *sp = NULL;
    if (split_from_input(s->np, s->opset) && !(sp = rm_s_const(s, 1)))
        return rm_s_unsupported(s, "split input is not a plan-time constant");
    int64_t *sizes = rm_arena_alloc(&s->g->shape_arena, (n_out ? n_out : 1) * sizeof *sizes);
    if (!sizes)
        return RM_ENOMEM;
    int rc = rm_split_sizes(s->np, s->opset, sp, x->dims[axis], sizes, n_out, why, sizeof why);
    if (rc)
        return rc == RM_EFORMAT ? rm_s_bad(s, "%s", why) : rm_s_unsupported(s, "%s", why);
    memcpy(dims, x->dims, sizeof(int64_t) * (size_t)x->rank);
    for (size_t k = 0; k < n_out; k++) {
        dims[axis] = sizes[k];
        rm_s_out(s, k, x->elem_type, x->rank, dims);
    }
    return 0;
}

int rm_kernel_split(const struct rm_kcall *k)
{
    const struct rm_host_tensor *x = k->in[0];
    int64_t axis = rm_node_attr_int(k->np, "axis", 0);
    size_t es = x->dtype == RM_I64 ? 8 : 4;
    char why[200];
    if (rm_norm_axis(&axis, x->rank))
        return rm_k_err(k, RM_EFORMAT, "axis out of range");
    int64_t *sizes = malloc((k->n_out ? k->n_out : 1) * sizeof *sizes);
    if (!sizes)
        return rm_k_err(k, RM_ENOMEM, "out of memory");
    const struct rm_host_tensor *sp = split_from_input(k->np, k->opset) && k->n_in > 1 ? k->in[1] : NULL;
    int rc = rm_split_sizes(k->np, k->opset, sp, x->dims[axis], sizes, k->n_out, why, sizeof why);
    if (rc) {
        free(sizes);
        return rm_k_err(k, rc, "%s", why);
    }
    int64_t outer = 1, inner = 1, off = 0;
    for (int i = 0; i < axis; i++)
        outer *= x->dims[i];
    for (int i = (int)axis + 1; i < x->rank; i++)
        inner *= x->dims[i];
    for (size_t j = 0; j < k->n_out; j++) {
        struct rm_host_tensor *o = k->out[j];
        int64_t len = sizes[j];
        if (o && (o->dtype != x->dtype || o->rank != x->rank || o->dims[axis] != len)) {
            free(sizes);
            return rm_k_err(k, RM_EFORMAT, "output %zu does not fit the input", j);
        }
        for (int64_t a = 0; o && a < outer; a++)
            memcpy((char *)o->data + (size_t)(a * len * inner) * es,
                   (const char *)x->data + (size_t)((a * x->dims[axis] + off) * inner) * es,
                   (size_t)(len * inner) * es);
        off += len;
    }
    free(sizes);
    return 0;
}
