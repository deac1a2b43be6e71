/* Tensor-shaping ops: Constant, Identity, Dropout, Shape, Gather, Slice, Concat,
 * Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Pad. Shape rules and C kernels. */
#include "rm_ops_int.h"

#include <stdio.h>
#include <string.h>

/* ---- shape rules ------------------------------------------------------------------ */

int rm_shape_constant(struct rm_snode *s)
{
    const Onnx__AttributeProto *a;
    int64_t dims[1];
    if ((a = rm_node_attr(s->np, "value")) && a->t) {
        if (a->t->n_dims <= RM_MAX_RANK)
            rm_s_out(s, 0, a->t->data_type, (int)a->t->n_dims, a->t->dims);
    } else if ((a = rm_node_attr(s->np, "value_float")) && a->has_f) {
        rm_s_out(s, 0, RM_F32, 0, dims);
    } else if ((a = rm_node_attr(s->np, "value_int")) && a->has_i) {
        rm_s_out(s, 0, RM_I64, 0, dims);
    } else if ((a = rm_node_attr(s->np, "value_floats"))) {
        dims[0] = (int64_t)a->n_floats;
        rm_s_out(s, 0, RM_F32, 1, dims);
    } else if ((a = rm_node_attr(s->np, "value_ints"))) {
        dims[0] = (int64_t)a->n_ints;
        rm_s_out(s, 0, RM_I64, 1, dims);
    } else {
        return rm_s_unsupported(s, "only value, value_float(s), value_int(s) are supported");
    }
    return 0;
}

/* Dropout: the output, and a bool mask of the same shape. */
int rm_shape_dropout(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    if (!x)
        return 0;
    rm_s_out(s, 0, x->elem_type, x->rank, x->dims);
    rm_s_out(s, 1, ONNX__TENSOR_PROTO__DATA_TYPE__BOOL, x->rank, x->dims);
    return 0;
}

int rm_shape_shape(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    if (!x)
        return 0;
    int64_t st = rm_node_attr_int(s->np, "start", 0), en = rm_node_attr_int(s->np, "end", x->rank);
    st = st < 0 ? st + x->rank : st;
    en = en < 0 ? en + x->rank : en;
    st = st < 0 ? 0 : st > x->rank ? x->rank : st;
    en = en < 0 ? 0 : en > x->rank ? x->rank : en;
    int64_t n = en > st ? en - st : 0;
    rm_s_out(s, 0, RM_I64, 1, &n);
    return 0;
}

int rm_shape_gather(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0), *ix = rm_s_in(s, 1);
    int64_t axis = rm_node_attr_int(s->np, "axis", 0), dims[RM_MAX_RANK];
    if (!x || !ix)
        return 0;
    if (ix->elem_type && ix->elem_type != RM_I64 && ix->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__INT32)
        return rm_s_bad(s, "indices must be int64 or int32");
    if (rm_norm_axis(&axis, x->rank))
        return rm_s_bad(s, "axis out of range");
    if (x->rank - 1 + ix->rank > RM_MAX_RANK)
        return rm_s_unsupported(s, "output rank above %d", RM_MAX_RANK);
    int r = 0;
    for (int i = 0; i < axis; i++)
        dims[r++] = x->dims[i];
    for (int i = 0; i < ix->rank; i++)
        dims[r++] = ix->dims[i];
    for (int i = (int)axis + 1; i < x->rank; i++)
        dims[r++] = x->dims[i];
    rm_s_out(s, 0, x->elem_type, r, dims);
    return 0;
}

int rm_shape_slice(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    if (!x)
        return 0;
    struct rm_slice sl;
    char why[200];
    const struct rm_host_tensor *c[5] = {NULL};
    for (size_t k = 1; k < 5; k++) {
        c[k] = rm_s_const(s, k);
        if (rm_s_present(s, k) && !c[k] && (s->opset >= 10 || s->np->n_input > 1))
            return rm_s_unsupported(s, "%s input is not a plan-time constant",
                                    k == 1 ? "starts" : k == 2 ? "ends" : k == 3 ? "axes" : "steps");
    }
    int rc = rm_slice_of(s->np, s->opset, x->rank, x->dims, c[1], c[2], rm_s_present(s, 3) ? c[3] : NULL,
                         rm_s_present(s, 4) ? c[4] : NULL, &sl, why, sizeof why);
    if (rc)
        return rc == RM_EFORMAT ? rm_s_bad(s, "%s", why) : rm_s_unsupported(s, "%s", why);
    rm_s_out(s, 0, x->elem_type, x->rank, sl.count);
    return 0;
}

int rm_shape_concat(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    int64_t dims[RM_MAX_RANK], axis = rm_node_attr_int(s->np, "axis", 0);
    if (!x)
        return 0;
    if (rm_norm_axis(&axis, x->rank))
        return rm_s_bad(s, "axis out of range");
    memcpy(dims, x->dims, sizeof(int64_t) * (size_t)x->rank);
    for (size_t k = 1; k < s->np->n_input; k++) {
        const struct rm_value *v = rm_s_in(s, k);
        if (!v)
            return 0;
        if (v->rank != x->rank)
            return rm_s_bad(s, "input %zu differs in rank", k);
        if (v->elem_type && x->elem_type && v->elem_type != x->elem_type)
            return rm_s_bad(s, "input %zu differs in type", k);
        for (int i = 0; i < x->rank; i++) {
            if (i == axis) {
                if (dims[i] < 0 || v->dims[i] < 0)
                    dims[i] = -1;
                else if (rm_add_ovf(dims[i], v->dims[i], &dims[i]))
                    return rm_s_bad(s, "the inputs' sizes on axis %d add up past int64", i);
            } else if (dims[i] >= 0 && v->dims[i] >= 0 && dims[i] != v->dims[i])
                return rm_s_bad(s, "input %zu has size %lld on axis %d, input 0 has %lld", k,
                                (long long)v->dims[i], i, (long long)dims[i]);
        }
    }
    rm_s_out(s, 0, x->elem_type, x->rank, dims);
    return 0;
}

int rm_shape_reshape(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    if (!x)
        return 0;
    const struct rm_host_tensor *sh = rm_s_const(s, 1);
    if (!sh || sh->dtype != RM_I64)
        return rm_s_unsupported(s, "shape input is not a plan-time constant");
    if (sh->numel > RM_MAX_RANK)
        return rm_s_unsupported(s, "target rank %lld is above %d", (long long)sh->numel, RM_MAX_RANK);
    const int64_t *v = sh->data;
    int allowzero = (int)rm_node_attr_int(s->np, "allowzero", 0);
    int64_t dims[RM_MAX_RANK], known = 1, total = -1;
    int at = -1;
    bool unknown_in = false, unknown_copy = false;
    for (int i = 0; i < x->rank; i++)
        unknown_in |= x->dims[i] < 0;
    if (!unknown_in && rm_dims_numel(x->dims, (size_t)x->rank, &total))
        return rm_s_bad(s, "input size overflows");
    for (int64_t i = 0; i < sh->numel; i++) {
        dims[i] = v[i];
        if (v[i] == 0 && !allowzero) {
            if (i >= x->rank)
                return rm_s_bad(s, "shape copies dimension %lld of a rank-%d input", (long long)i, x->rank);
            dims[i] = x->dims[i];
            if (dims[i] < 0) { /* copies an unknown dimension: stays unknown */
                unknown_copy = true;
                continue;
            }
        }
        if (dims[i] == -1) {
            if (at >= 0)
                return rm_s_bad(s, "shape has two -1 entries");
            at = (int)i;
        } else if (dims[i] < 0) {
            return rm_s_bad(s, "invalid shape entry %lld", (long long)dims[i]);
        } else if (dims[i] && known > INT64_MAX / dims[i]) {
            return rm_s_bad(s, "shape entries multiply past int64");
        } else {
            known *= dims[i];
        }
    }
    if (at >= 0)
        dims[at] = total < 0 || unknown_copy ? -1 : known ? total / known : 0;
    int64_t n;
    if (total >= 0 && !unknown_copy && (rm_dims_numel(dims, (size_t)sh->numel, &n) || n != total))
        return rm_s_bad(s, "cannot reshape %lld elements to the requested shape", (long long)total);
    rm_s_out(s, 0, x->elem_type, (int)sh->numel, dims);
    return 0;
}

int rm_shape_flatten(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    if (!x)
        return 0;
    int64_t axis = rm_node_attr_int(s->np, "axis", 1), dims[2];
    if (axis < 0)
        axis += x->rank;
    if (axis < 0 || axis > x->rank)
        return rm_s_bad(s, "axis out of range");
    int64_t a = 1, b = 1;
    for (int i = 0; i < x->rank; i++) {
        int64_t *p = i < axis ? &a : &b;
        if (x->dims[i] < 0 || *p < 0)
            *p = -1;
        else if (x->dims[i] && *p > INT64_MAX / x->dims[i])
            return rm_s_bad(s, "shape size overflows");
        else
            *p *= x->dims[i];
    }
    dims[0] = a;
    dims[1] = b;
    rm_s_out(s, 0, x->elem_type, 2, dims);
    return 0;
}

int rm_shape_squeeze(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    if (!x)
        return 0;
    int64_t axes[RM_MAX_RANK], n, dims[RM_MAX_RANK];
    int given, drop[RM_MAX_RANK] = {0}, rank = 0;
    const struct rm_host_tensor *ax = rm_s_const(s, 1);
    if (rm_s_present(s, 1) && !ax && !rm_node_attr(s->np, "axes"))
        return rm_s_unsupported(s, "axes input is not a plan-time constant");
    if (rm_axes_of(s->np, ax, axes, &n, &given))
        return rm_s_bad(s, "too many axes");
    for (int64_t j = 0; j < n; j++) {
        if (rm_norm_axis(&axes[j], x->rank) || (x->dims[axes[j]] >= 0 && x->dims[axes[j]] != 1))
            return rm_s_bad(s, "cannot squeeze axis %lld", (long long)axes[j]);
        drop[axes[j]] = 1;
    }
    for (int i = 0; i < x->rank; i++) {
        if (!given && x->dims[i] < 0)
            return 0; /* which axes go is unknown */
        if (!(given ? drop[i] : x->dims[i] == 1))
            dims[rank++] = x->dims[i];
    }
    rm_s_out(s, 0, x->elem_type, rank, dims);
    return 0;
}

int rm_shape_unsqueeze(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    if (!x)
        return 0;
    int64_t axes[RM_MAX_RANK], n, dims[RM_MAX_RANK];
    int given, ins[RM_MAX_RANK] = {0};
    const struct rm_host_tensor *ax = rm_s_const(s, 1);
    if (rm_s_present(s, 1) && !ax && !rm_node_attr(s->np, "axes"))
        return rm_s_unsupported(s, "axes input is not a plan-time constant");
    if (rm_axes_of(s->np, ax, axes, &n, &given))
        return rm_s_bad(s, "too many axes");
    int rank = x->rank + (int)n;
    if (!given || rank > RM_MAX_RANK)
        return rm_s_bad(s, "axes missing or output rank above %d", RM_MAX_RANK);
    for (int64_t j = 0; j < n; j++) {
        if (rm_norm_axis(&axes[j], rank) || ins[axes[j]])
            return rm_s_bad(s, "bad axis %lld", (long long)axes[j]);
        ins[axes[j]] = 1;
    }
    for (int i = 0, k = 0; i < rank; i++)
        dims[i] = ins[i] ? 1 : x->dims[k++];
    rm_s_out(s, 0, x->elem_type, rank, dims);
    return 0;
}

int rm_shape_transpose(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    if (!x)
        return 0;
    size_t n;
    const int64_t *perm = rm_node_attr_ints(s->np, "perm", &n);
    int seen[RM_MAX_RANK] = {0};
    int64_t dims[RM_MAX_RANK];
    if (perm && n != (size_t)x->rank)
        return rm_s_bad(s, "perm has %zu entries for rank %d", n, x->rank);
    for (int i = 0; i < x->rank; i++) {
        int64_t q = perm ? perm[i] : x->rank - 1 - i;
        if (q < 0 || q >= x->rank || seen[q]++)
            return rm_s_bad(s, "perm is not a permutation");
        dims[i] = x->dims[q];
    }
    rm_s_out(s, 0, x->elem_type, x->rank, dims);
    return 0;
}

int rm_shape_pad(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    if (!x)
        return 0;
    int64_t pads[2 * RM_MAX_RANK], dims[RM_MAX_RANK];
    char mode[16], why[200];
    rm_attr_string(s->np, "mode", mode, sizeof mode, "constant");
    if (strcmp(mode, "constant") && strcmp(mode, "reflect") && strcmp(mode, "edge"))
        return rm_s_unsupported(s, "mode '%s' is not supported", mode);
    int rc = rm_pads_of(s->np, x->rank, rm_s_const(s, 1), rm_s_present(s, 3) ? rm_s_const(s, 3) : NULL,
                        rm_s_present(s, 1), pads, why, sizeof why);
    if (!rc && rm_s_present(s, 3) && !rm_s_const(s, 3))
        rc = RM_EUNSUPPORTED, snprintf(why, sizeof why, "axes input is not a plan-time constant");
    if (rc)
        return rc == RM_EFORMAT ? rm_s_bad(s, "%s", why) : rm_s_unsupported(s, "%s", why);
    for (int i = 0; i < x->rank; i++) {
        if (x->dims[i] < 0) {
            dims[i] = -1;
            continue;
        }
        if (rm_add_ovf(x->dims[i], pads[i], &dims[i]) || rm_add_ovf(dims[i], pads[i + x->rank], &dims[i]))
            return rm_s_bad(s, "axis %d padded is out of range", i);
        if (dims[i] < 0)
            return rm_s_bad(s, "pads remove more than the input has");
        if (dims[i] > 0 && x->dims[i] == 0 && strcmp(mode, "constant"))
            return rm_s_bad(s, "cannot %s-pad an empty axis", mode);
    }
    rm_s_out(s, 0, x->elem_type, x->rank, dims);
    return 0;
}

/* ---- kernels ------------------------------------------------------------------------ */

static size_t esize(const struct rm_host_tensor *t)
{
    return t->dtype == RM_I64 ? 8 : 4;
}

/* Identity, Dropout, Flatten, Reshape, Squeeze, Unsqueeze: the data as it is. */
int rm_kernel_copy(const struct rm_kcall *k)
{
    const struct rm_host_tensor *x = k->in[0];
    struct rm_host_tensor *o = k->out[0];
    if (!x || x->numel != o->numel || esize(x) != esize(o))
        return rm_k_err(k, RM_EFORMAT, "output of %lld elements from an input of %lld", (long long)o->numel,
                        x ? (long long)x->numel : 0LL);
    if (o->numel)
        memcpy(o->data, x->data, (size_t)o->numel * esize(o));
    return 0;
}

int rm_kernel_shape(const struct rm_kcall *k)
{
    const struct rm_host_tensor *x = k->in[0];
    struct rm_host_tensor *o = k->out[0];
    int64_t s = rm_node_attr_int(k->np, "start", 0);
    if (s < 0)
        s += x->rank;
    if (s < 0)
        s = 0;
    for (int64_t i = 0; i < o->numel; i++)
        ((int64_t *)o->data)[i] = x->dims[s + i];
    return 0;
}

/* Copy elements of x at offsets start + i*step per axis into o, output axis i walking
 * input axis perm[i] (Slice, Transpose). The innermost output axis is walked in a tight
 * loop (a memcpy when contiguous). */
static void strided(const struct rm_host_tensor *x, struct rm_host_tensor *o, const int64_t *start,
                    const int64_t *step, const int64_t *perm)
{
    int64_t xs[RM_MAX_RANK], idx[RM_MAX_RANK] = {0}, ss[RM_MAX_RANK];
    size_t es = esize(o);
    rm_strides(x->rank, x->dims, xs);
    /* an axis of one output element never steps (its step may be near the int64 limits);
     * else step * (count - 1) stays inside the axis, and the product inside the tensor */
    for (int i = 0; i < o->rank; i++)
        ss[i] = o->dims[i] > 1 ? xs[perm[i]] * step[perm[i]] : 0;
    int64_t base = 0;
    for (int i = 0; i < x->rank; i++)
        base += start[i] * xs[i];
    if (o->numel == 0)
        return;
    if (o->rank == 0) {
        memcpy(o->data, (const char *)x->data + (size_t)base * es, es);
        return;
    }
    int last = o->rank - 1;
    int64_t inner = o->dims[last], is = ss[last], outer = o->numel / inner;
    const char *src = x->data;
    char *dst = o->data;
    for (int64_t t = 0; t < outer; t++) {
        int64_t off = base;
        for (int i = 0; i < last; i++)
            off += idx[i] * ss[i];
        char *d = dst + (size_t)(t * inner) * es;
        if (is == 1) {
            memcpy(d, src + (size_t)off * es, (size_t)inner * es);
        } else if (es == 4) {
            const float *sp = (const float *)src + off;
            float *dp = (float *)d;
            for (int64_t j = 0; j < inner; j++)
                dp[j] = sp[j * is];
        } else {
            const int64_t *sp = (const int64_t *)src + off;
            int64_t *dp = (int64_t *)d;
            for (int64_t j = 0; j < inner; j++)
                dp[j] = sp[j * is];
        }
        rm_next_index(last, o->dims, idx);
    }
}

int rm_kernel_transpose(const struct rm_kcall *k)
{
    const struct rm_host_tensor *x = k->in[0];
    int64_t zero[RM_MAX_RANK] = {0}, one[RM_MAX_RANK], perm[RM_MAX_RANK];
    size_t n;
    const int64_t *pp = rm_node_attr_ints(k->np, "perm", &n);
    for (int i = 0; i < RM_MAX_RANK; i++)
        one[i] = 1;
    for (int i = 0; i < x->rank; i++)
        perm[i] = pp ? pp[i] : x->rank - 1 - i;
    strided(x, k->out[0], zero, one, perm);
    return 0;
}

int rm_kernel_slice(const struct rm_kcall *k)
{
    const struct rm_host_tensor *x = k->in[0];
    struct rm_slice sl;
    char why[200];
    int64_t perm[RM_MAX_RANK];
    for (int i = 0; i < RM_MAX_RANK; i++)
        perm[i] = i;
    const struct rm_host_tensor *c[5] = {NULL};
    for (size_t i = 1; i < 5 && i < k->n_in; i++)
        c[i] = k->in[i];
    int rc = rm_slice_of(k->np, k->opset, x->rank, x->dims, c[1], c[2], c[3], c[4], &sl, why, sizeof why);
    if (rc)
        return rm_k_err(k, rc, "%s", why);
    strided(x, k->out[0], sl.start, sl.step, perm);
    return 0;
}

int rm_kernel_concat(const struct rm_kcall *k)
{
    struct rm_host_tensor *o = k->out[0];
    for (size_t j = 0; j < k->n_in; j++)
        if (!k->in[j]) /* an input named '' (fuzzing: the rule saw no shape for it) */
            return rm_k_err(k, RM_EFORMAT, "input %zu is missing", j);
    size_t es = esize(o);
    int64_t axis = rm_node_attr_int(k->np, "axis", 0);
    rm_norm_axis(&axis, o->rank);
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++)
        outer *= o->dims[i];
    for (int i = (int)axis + 1; i < o->rank; i++)
        inner *= o->dims[i];
    int64_t ooff = 0;
    for (size_t j = 0; j < k->n_in; j++) {
        const struct rm_host_tensor *v = k->in[j];
        int64_t chunk = v->dims[axis] * inner;
        for (int64_t a = 0; a < outer; a++)
            memcpy((char *)o->data + (size_t)(a * o->dims[axis] * inner + ooff) * es,
                   (const char *)v->data + (size_t)(a * chunk) * es, (size_t)chunk * es);
        ooff += chunk;
    }
    return 0;
}

int rm_kernel_gather(const struct rm_kcall *k)
{
    const struct rm_host_tensor *x = k->in[0], *ix = k->in[1];
    struct rm_host_tensor *o = k->out[0];
    size_t es = esize(o);
    int64_t axis = rm_node_attr_int(k->np, "axis", 0);
    if (ix->dtype != RM_I64)
        return rm_k_err(k, RM_EUNSUPPORTED, "indices must be int64");
    rm_norm_axis(&axis, x->rank);
    int64_t outer = 1, inner = 1, D = x->dims[axis];
    for (int i = 0; i < axis; i++)
        outer *= x->dims[i];
    for (int i = (int)axis + 1; i < x->rank; i++)
        inner *= x->dims[i];
    const int64_t *id = ix->data;
    for (int64_t a = 0; a < outer; a++)
        for (int64_t j = 0; j < ix->numel; j++) {
            int64_t q = id[j] < 0 ? id[j] + D : id[j];
            if (q < 0 || q >= D)
                return rm_k_err(k, RM_EFORMAT, "index %lld out of range for size %lld", (long long)id[j],
                                (long long)D);
            memcpy((char *)o->data + (size_t)((a * ix->numel + j) * inner) * es,
                   (const char *)x->data + (size_t)((a * D + q) * inner) * es, (size_t)inner * es);
        }
    return 0;
}

int rm_kernel_pad(const struct rm_kcall *k)
{
    const struct rm_host_tensor *x = k->in[0];
    struct rm_host_tensor *o = k->out[0];
    int64_t pads[2 * RM_MAX_RANK], xs[RM_MAX_RANK], idx[RM_MAX_RANK] = {0};
    char mode[16], why[200];
    rm_attr_string(k->np, "mode", mode, sizeof mode, "constant");
    int m = !strcmp(mode, "constant") ? 0 : !strcmp(mode, "reflect") ? 1 : 2;
    int rc = rm_pads_of(k->np, x->rank, k->n_in > 1 ? k->in[1] : NULL, k->n_in > 3 ? k->in[3] : NULL,
                        k->n_in > 1 && k->in[1], pads, why, sizeof why);
    if (rc)
        return rm_k_err(k, rc, "%s", why);
    double cval = rm_node_attr_float(k->np, "value", 0.0f);
    const struct rm_host_tensor *cv = k->n_in > 2 ? k->in[2] : NULL;
    if (cv && cv->numel >= 1)
        cval = cv->dtype == RM_F32 ? ((float *)cv->data)[0] : (double)((int64_t *)cv->data)[0];
    rm_strides(x->rank, x->dims, xs);
    for (int i = 0; i < x->rank; i++)
        if (m == 1 && x->dims[i] == 1 && (pads[i] > 0 || pads[i + x->rank] > 0))
            return rm_k_err(k, RM_EFORMAT, "cannot reflect-pad an axis of size 1");
    for (int64_t t = 0; t < o->numel; t++) {
        int64_t off = 0;
        int outside = 0;
        for (int i = 0; i < x->rank; i++) {
            int64_t c = idx[i] - pads[i], d = x->dims[i];
            if (c < 0 || c >= d) {
                if (m == 0) {
                    outside = 1;
                    break;
                } else if (m == 2) {
                    c = c < 0 ? 0 : d - 1;
                } else {
                    int64_t period = 2 * (d - 1);
                    c = c < 0 ? -c : c;
                    c %= period;
                    if (c >= d)
                        c = period - c;
                }
            }
            off += c * xs[i];
        }
        if (x->dtype == RM_F32)
            ((float *)o->data)[t] = outside ? (float)cval : ((float *)x->data)[off];
        else
            ((int64_t *)o->data)[t] = outside ? (int64_t)cval : ((int64_t *)x->data)[off];
        rm_next_index(o->rank, o->dims, idx);
    }
    return 0;
}
