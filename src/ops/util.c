/* Geometry and small helpers the op implementations share (see rm_ops_int.h). */
#include "rm_ops_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int rm_k_err(const struct rm_kcall *k, int code, const char *fmt, ...)
{
    char msg[RM_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return rm_error_set(k->err, code, "node '%s' (%s): %s", k->label, k->np->op_type ? k->np->op_type : "?",
                        msg);
}

int rm_norm_axis(int64_t *a, int rank)
{
    if (*a < 0)
        *a += rank;
    return *a < 0 || *a >= rank ? -1 : 0;
}

void rm_strides(int rank, const int64_t *dims, int64_t *st)
{
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        st[i] = s;
        s *= dims[i];
    }
}

void rm_next_index(int rank, const int64_t *dims, int64_t *idx)
{
    for (int i = rank - 1; i >= 0; i--) {
        if (++idx[i] < dims[i])
            return;
        idx[i] = 0;
    }
}

int rm_attr_string(const Onnx__NodeProto *np, const char *name, char *buf, size_t n, const char *def)
{
    const Onnx__AttributeProto *a = rm_node_attr(np, name);
    if (!a || !a->has_s) {
        snprintf(buf, n, "%s", def);
        return 0;
    }
    size_t l = a->s.len < n - 1 ? a->s.len : n - 1;
    if (l) /* an empty string may come as NULL data (fuzzing: memcpy(buf, NULL, 0) is undefined) */
        memcpy(buf, a->s.data, l);
    buf[l] = '\0';
    return 1;
}

#define WHY(code, ...) (snprintf(why, why_size, __VA_ARGS__), (code))

int rm_window_of(const Onnx__NodeProto *np, int rank, const int64_t *dims, const int64_t *kernel, bool pool,
                 struct rm_window *w, char *why, size_t why_size)
{
    int sp = rank - 2;
    size_t ns, nd, npd;
    const int64_t *st = rm_node_attr_ints(np, "strides", &ns);
    const int64_t *di = rm_node_attr_ints(np, "dilations", &nd);
    const int64_t *pa = rm_node_attr_ints(np, "pads", &npd);
    char ap[32];
    rm_attr_string(np, "auto_pad", ap, sizeof ap, "NOTSET");
    if (sp < 1)
        return WHY(RM_EFORMAT, "input has rank %d, needs at least 3", rank);
    if ((st && ns != (size_t)sp) || (di && nd != (size_t)sp) || (pa && npd != 2 * (size_t)sp))
        return WHY(RM_EFORMAT, "strides, dilations or pads do not match %d spatial axes", sp);
    int same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER");
    if (!same && strcmp(ap, "VALID") && strcmp(ap, "NOTSET"))
        return WHY(RM_EFORMAT, "unknown auto_pad '%s'", ap);
    w->sp = sp;
    w->ceil_mode = (int)rm_node_attr_int(np, "ceil_mode", 0);
    for (int i = 0; i < sp; i++) {
        int64_t in = dims[2 + i];
        w->k[i] = kernel[i];
        w->s[i] = st ? st[i] : 1;
        w->d[i] = di ? di[i] : 1;
        if (w->k[i] <= 0 || w->s[i] <= 0 || w->d[i] <= 0)
            return WHY(RM_EFORMAT, "kernel, strides and dilations must be positive");
        if (w->k[i] > INT32_MAX || w->s[i] > INT32_MAX || w->d[i] > INT32_MAX ||
            (pa && (pa[i] > INT32_MAX || pa[i + sp] > INT32_MAX)))
            return WHY(RM_EFORMAT, "kernel, strides, dilations or pads out of range");
        int64_t eff = (w->k[i] - 1) * w->d[i] + 1;
        if (same) {
            if (in < 0) {
                w->out[i] = -1;
                w->pl[i] = w->pr[i] = 0;
                continue;
            }
            w->out[i] = in / w->s[i] + (in % w->s[i] != 0); /* ceil(in / s), without in + s - 1 */
            int64_t total; /* (out - 1) * s + eff - in: in may be near INT64_MAX */
            if (rm_add_ovf((w->out[i] - 1) * w->s[i] - in, eff, &total))
                return WHY(RM_EFORMAT, "input size %lld out of range", (long long)in);
            if (total < 0)
                total = 0;
            w->pl[i] = !strcmp(ap, "SAME_UPPER") ? total / 2 : (total + 1) / 2;
            w->pr[i] = total - w->pl[i];
            continue;
        }
        if (!strcmp(ap, "VALID")) {
            w->pl[i] = w->pr[i] = 0;
        } else {
            w->pl[i] = pa ? pa[i] : 0;
            w->pr[i] = pa ? pa[i + sp] : 0;
            if (w->pl[i] < 0 || w->pr[i] < 0)
                return WHY(RM_EFORMAT, "negative pads");
            /* a pooling window wholly inside padding pools nothing (onnxruntime refuses
             * it too); fuzzing found pads of 2097151 asking for a 3.4 GB output */
            if (pool && (w->pl[i] >= eff || w->pr[i] >= eff))
                return WHY(RM_EFORMAT, "pads (%lld, %lld) must be smaller than the pooling window (%lld)",
                           (long long)w->pl[i], (long long)w->pr[i], (long long)eff);
        }
        if (in < 0) {
            w->out[i] = -1;
            continue;
        }
        int64_t padded, num; /* in + pads - eff, checked: in comes from the file */
        if (rm_add_ovf(in, w->pl[i] + w->pr[i], &padded))
            return WHY(RM_EFORMAT, "input size %lld plus pads out of range", (long long)in);
        num = padded - eff;
        if (num < 0)
            return WHY(RM_EFORMAT, "window (%lld) larger than its padded input (%lld)", (long long)eff,
                       (long long)padded);
        int64_t o = num / w->s[i] + (w->ceil_mode && num % w->s[i] != 0) + 1;
        /* ceil mode: the last window must start inside the input or left padding (a start
         * past int64 is past it too) */
        int64_t last;
        if (w->ceil_mode && (rm_mul_ovf(o - 1, w->s[i], &last) || last >= in + w->pl[i]))
            o--;
        w->out[i] = o;
    }
    return 0;
}

/* int64 contents of a constant input, or NULL. */
static const int64_t *ints(const struct rm_host_tensor *t, int64_t *n)
{
    if (!t || t->dtype != RM_I64)
        return NULL;
    *n = t->numel;
    return t->data;
}

int rm_slice_of(const Onnx__NodeProto *np, int64_t opset, int rank, const int64_t *dims,
                const struct rm_host_tensor *starts, const struct rm_host_tensor *ends,
                const struct rm_host_tensor *axes, const struct rm_host_tensor *steps, struct rm_slice *sl,
                char *why, size_t why_size)
{
    int64_t ns = 0, ne = 0, na = 0, nst = 0;
    const int64_t *st, *en, *ax = NULL, *stp = NULL;
    if (opset < 10 && np->n_input == 1) {
        size_t a, b, c = 0;
        st = rm_node_attr_ints(np, "starts", &a);
        en = rm_node_attr_ints(np, "ends", &b);
        ax = rm_node_attr_ints(np, "axes", &c);
        ns = (int64_t)a, ne = (int64_t)b, na = (int64_t)c;
    } else {
        st = ints(starts, &ns);
        en = ints(ends, &ne);
        if (axes && !(ax = ints(axes, &na)))
            return WHY(RM_EUNSUPPORTED, "axes input is not an int64 constant");
        if (steps && !(stp = ints(steps, &nst)))
            return WHY(RM_EUNSUPPORTED, "steps input is not an int64 constant");
    }
    if (!st || !en)
        return WHY(RM_EUNSUPPORTED, "starts/ends are not plan-time constants");
    if (ns != ne || (ax && na != ns) || (stp && nst != ns))
        return WHY(RM_EFORMAT, "starts, ends, axes and steps differ in length");
    for (int i = 0; i < rank; i++) {
        sl->start[i] = 0;
        sl->step[i] = 1;
        sl->count[i] = dims[i];
    }
    for (int64_t j = 0; j < ns; j++) {
        int64_t a = ax ? ax[j] : j;
        if (rm_norm_axis(&a, rank))
            return WHY(RM_EFORMAT, "axis %lld out of range", (long long)(ax ? ax[j] : j));
        int64_t d = dims[a], s = st[j], e = en[j], k = stp ? stp[j] : 1;
        if (k == 0)
            return WHY(RM_EFORMAT, "step is 0");
        sl->step[a] = k;
        if (d < 0) {
            sl->start[a] = 0;
            sl->count[a] = -1;
            continue;
        }
        if (s < 0)
            s += d;
        if (e < 0)
            e += d;
        /* counts as (span - 1) / |step| + 1: span + |step| - 1 and -step overflow for
         * steps near the int64 limits */
        if (k > 0) {
            s = s < 0 ? 0 : s > d ? d : s;
            e = e < 0 ? 0 : e > d ? d : e;
            sl->count[a] = e > s ? (e - s - 1) / k + 1 : 0;
        } else {
            s = s < 0 ? 0 : s > d - 1 ? d - 1 : s;
            e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
            sl->count[a] = s > e ? (int64_t)((uint64_t)(s - e - 1) / (0 - (uint64_t)k)) + 1 : 0;
        }
        sl->start[a] = s;
    }
    return 0;
}

int rm_axes_of(const Onnx__NodeProto *np, const struct rm_host_tensor *in, int64_t *axes, int64_t *n,
               int *given)
{
    size_t c;
    const int64_t *a = rm_node_attr_ints(np, "axes", &c);
    *given = 0;
    *n = 0;
    if (a)
        *n = (int64_t)c;
    else if (in && (a = ints(in, n)) != NULL)
        ;
    else
        return 0;
    if (*n > RM_MAX_RANK)
        return RM_EFORMAT;
    memcpy(axes, a, sizeof(int64_t) * (size_t)*n);
    *given = 1;
    return 0;
}

#define PAD_MAX ((int64_t)1 << 62)

int rm_pads_of(const Onnx__NodeProto *np, int rank, const struct rm_host_tensor *pads,
               const struct rm_host_tensor *axes, bool pads_given, int64_t *out, char *why, size_t why_size)
{
    int64_t n, na = 0;
    const int64_t *pv, *ax = NULL;
    size_t c;
    if ((pv = rm_node_attr_ints(np, "pads", &c)) != NULL && !pads_given)
        n = (int64_t)c;
    else if (!(pv = ints(pads, &n)))
        return WHY(RM_EUNSUPPORTED, "pads input is not a plan-time constant");
    if (axes && !(ax = ints(axes, &na)))
        return WHY(RM_EUNSUPPORTED, "axes input is not a plan-time constant");
    int64_t nax = ax ? na : rank;
    if (n != 2 * nax)
        return WHY(RM_EFORMAT, "pads has %lld entries, expected %lld", (long long)n, (long long)(2 * nax));
    for (int i = 0; i < 2 * rank; i++)
        out[i] = 0;
    for (int64_t j = 0; j < nax; j++) {
        int64_t a = ax ? ax[j] : j;
        if (rm_norm_axis(&a, rank))
            return WHY(RM_EFORMAT, "axis out of range");
        /* bounded so that index - pad, in the kernel, stays inside int64 */
        int64_t lo = pv[j], hi = pv[j + nax];
        if (lo < -PAD_MAX || lo > PAD_MAX || hi < -PAD_MAX || hi > PAD_MAX)
            return WHY(RM_EFORMAT, "pads (%lld, %lld) out of range", (long long)lo, (long long)hi);
        out[a] = pv[j];
        out[a + rank] = pv[j + nax];
    }
    return 0;
}

int rm_shape_same(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    if (x)
        rm_s_out(s, 0, x->elem_type, x->rank, x->dims);
    return 0;
}

void rm_bcast_init(struct rm_bcast *b, const struct rm_host_tensor *out, int n, const struct rm_host_tensor *const *in)
{
    /* a scalar output is walked as [1] */
    b->n = n;
    b->rank = out->rank ? out->rank : 1;
    for (int i = 0; i < b->rank; i++)
        b->dims[i] = out->rank ? out->dims[i] : 1;
    b->inner = b->dims[b->rank - 1];
    b->rows = b->inner ? out->numel / b->inner : 0;
    for (int k = 0; k < n; k++) {
        const struct rm_host_tensor *x = in[k];
        int64_t xs[RM_MAX_RANK];
        rm_strides(x->rank, x->dims, xs);
        /* input axis i - (rank - x->rank) is output axis i; size 1 broadcasts: stride 0 */
        for (int i = 0; i < b->rank; i++) {
            int ix = i - (b->rank - x->rank);
            b->st[k][i] = ix >= 0 && x->dims[ix] != 1 ? xs[ix] : 0;
        }
        b->off[k] = 0;
    }
    for (int i = 0; i < RM_MAX_RANK; i++)
        b->idx[i] = 0;
}

void rm_bcast_next(struct rm_bcast *b)
{
    /* advance the row index over the axes before the last; the offsets follow */
    for (int i = b->rank - 2; i >= 0; i--) {
        if (++b->idx[i] < b->dims[i]) {
            for (int k = 0; k < b->n; k++)
                b->off[k] += b->st[k][i];
            return;
        }
        for (int k = 0; k < b->n; k++)
            b->off[k] -= b->st[k][i] * (b->dims[i] - 1);
        b->idx[i] = 0;
    }
}

int rm_broadcast_dims(int n, const int *ranks, const int64_t *const *dims, int *rank, int64_t *out, int *bad_axis)
{
    *rank = 0;
    for (int k = 0; k < n; k++)
        if (ranks[k] > *rank)
            *rank = ranks[k];
    for (int i = 0; i < *rank; i++)
        out[i] = 1;
    for (int k = 0; k < n; k++)
        for (int i = 0; i < ranks[k]; i++) {
            int64_t *d = &out[*rank - ranks[k] + i];
            int64_t e = dims[k][i];
            if (e == 1 || e == *d)
                continue;
            if (*d == 1)
                *d = e;
            else if (e < 0)
                ; /* unknown against a known size > 1 (or unknown): stays */
            else if (*d < 0)
                *d = e;
            else {
                *bad_axis = i - ranks[k];
                return -1;
            }
        }
    return 0;
}

int64_t rm_const_int(const struct rm_host_tensor *t, int64_t i)
{
    if (t->dtype != RM_F32)
        return ((const int64_t *)t->data)[i];
    return rm_f2i(((const float *)t->data)[i]);
}

double rm_const_num(const struct rm_host_tensor *t, int64_t i)
{
    return t->dtype == RM_F32 ? (double)((const float *)t->data)[i] : (double)((const int64_t *)t->data)[i];
}

void rm_broadcast_copy(const struct rm_host_tensor *x, struct rm_host_tensor *o)
{
    struct rm_bcast bc;
    const struct rm_host_tensor *in[1] = {x};
    size_t es = o->dtype == RM_I64 ? 8 : 4;
    rm_bcast_init(&bc, o, 1, in);
    int64_t s = bc.st[0][bc.rank - 1];
    for (int64_t r = 0; r < bc.rows; r++, rm_bcast_next(&bc)) {
        char *d = (char *)o->data + (size_t)(r * bc.inner) * es;
        const char *p = (const char *)x->data + (size_t)bc.off[0] * es;
        if (s == 1)
            memcpy(d, p, (size_t)bc.inner * es);
        else if (es == 8)
            for (int64_t j = 0; j < bc.inner; j++)
                ((int64_t *)d)[j] = *(const int64_t *)p;
        else
            for (int64_t j = 0; j < bc.inner; j++)
                ((float *)d)[j] = *(const float *)p;
    }
}
