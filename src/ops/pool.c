/* Pooling: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool. Shape rules and the
 * C kernel of the windowed pools (the engine runs pools on oneDNN where it can). */
#include "rm_ops_int.h"

#include <math.h>
#include <string.h>

int rm_shape_pool(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    if (!x)
        return 0;
    size_t nk;
    const int64_t *k = rm_node_attr_ints(s->np, "kernel_shape", &nk);
    if (!k || nk + 2 != (size_t)x->rank)
        return rm_s_bad(s, "kernel_shape missing or of the wrong length");
    struct rm_window win;
    char why[200];
    int rc = rm_window_of(s->np, x->rank, x->dims, k, true, &win, why, sizeof why);
    if (rc)
        return rc == RM_EFORMAT ? rm_s_bad(s, "%s", why) : rm_s_unsupported(s, "%s", why);
    int64_t dims[RM_MAX_RANK];
    memcpy(dims, x->dims, sizeof(int64_t) * (size_t)x->rank);
    for (int i = 0; i < win.sp; i++)
        dims[2 + i] = win.out[i];
    rm_s_out(s, 0, x->elem_type, x->rank, dims);
    rm_s_out(s, 1, RM_I64, x->rank, dims); /* MaxPool's indices */
    return 0;
}

int rm_shape_global_pool(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    if (!x)
        return 0;
    if (x->rank < 3)
        return rm_s_bad(s, "input rank %d < 3", x->rank);
    int64_t dims[RM_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        dims[i] = i < 2 ? x->dims[i] : 1;
    rm_s_out(s, 0, x->elem_type, x->rank, dims);
    return 0;
}

int rm_kernel_pool(const struct rm_kcall *k)
{
    const struct rm_host_tensor *x = k->in[0];
    struct rm_host_tensor *o = k->out[0], *ixv = k->n_out > 1 ? k->out[1] : NULL;
    const Onnx__NodeProto *np = k->np;
    int is_max = k->op == RM_OP_MAX_POOL;
    int64_t *ix = ixv ? ixv->data : NULL;
    int colmajor = (int)rm_node_attr_int(np, "storage_order", 0);
    int incl = (int)rm_node_attr_int(np, "count_include_pad", 0);
    size_t nk;
    const int64_t *ks = rm_node_attr_ints(np, "kernel_shape", &nk);
    struct rm_window w;
    char why[200];
    int rc = rm_window_of(np, x->rank, x->dims, ks, true, &w, why, sizeof why);
    if (rc)
        return rm_k_err(k, rc, "%s", why);
    int sp = w.sp;
    int64_t xs[RM_MAX_RANK], idx[RM_MAX_RANK] = {0}, kidx[RM_MAX_RANK], klo[RM_MAX_RANK], khi[RM_MAX_RANK];
    rm_strides(x->rank, x->dims, xs);
    const float *s = x->data;
    float *d = o->data;
    for (int64_t n = 0; n < o->numel; n++) {
        /* idx: output multi-index (N, C, spatial...) */
        int64_t base = idx[0] * xs[0] + idx[1] * xs[1];
        double acc = is_max ? -INFINITY : 0;
        int64_t cnt = 0, cnt_pad = 1, arg = -1;
        bool empty = false;
        for (int i = 0; i < sp; i++) {
            /* the padded extent counted by count_include_pad stops at the explicit pads */
            int64_t st = idx[2 + i] * w.s[i] - w.pl[i];
            int64_t en = st + (w.k[i] - 1) * w.d[i] + 1;
            int64_t lim = x->dims[2 + i] + w.pr[i];
            if (en > lim)
                en = lim;
            cnt_pad *= (en - st + w.d[i] - 1) / w.d[i];
            /* the taps that land inside the input, in kernel order: a window of 10^6
             * taps over a padded input of 4 once took hours, for 4 taps' worth of work */
            klo[i] = st < 0 ? (-st + w.d[i] - 1) / w.d[i] : 0;
            khi[i] = x->dims[2 + i] - 1 - st < 0 ? -1 : (x->dims[2 + i] - 1 - st) / w.d[i];
            if (khi[i] > w.k[i] - 1)
                khi[i] = w.k[i] - 1;
            empty = empty || klo[i] > khi[i];
            kidx[i] = klo[i];
        }
        for (; !empty;) {
            int inside = 1;
            int64_t off = base, col = 0, cs = 1;
            for (int i = 0; i < sp; i++) {
                int64_t c = idx[2 + i] * w.s[i] - w.pl[i] + kidx[i] * w.d[i];
                if (c < 0 || c >= x->dims[2 + i])
                    inside = 0;
                else
                    off += c * xs[2 + i];
                col += c * cs; /* storage_order 1: first spatial axis fastest */
                cs *= x->dims[2 + i];
            }
            if (inside) {
                float v = s[off];
                if (is_max) {
                    if (v > acc || arg < 0)
                        acc = v, arg = colmajor ? base + col : off;
                } else
                    acc += v;
                cnt++;
            }
            int i = sp - 1;
            for (; i >= 0; i--) {
                if (++kidx[i] <= khi[i])
                    break;
                kidx[i] = klo[i];
            }
            if (i < 0)
                break;
        }
        if (ix)
            ix[n] = arg;
        if (is_max)
            d[n] = (float)acc;
        else
            d[n] = (float)(acc / (double)(incl ? cnt_pad : (cnt ? cnt : 1)));
        rm_next_index(o->rank, o->dims, idx);
    }
    return 0;
}
