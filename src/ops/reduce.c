/* Reductions: ReduceMean, ReduceMax. Shape rule and the ReduceMean kernel. */
#include "rm_ops_int.h"

#include <math.h>
#include <stdlib.h>

/* Which axes of a rank-`rank` input are reduced; 0, or an RM_E code with the reason. */
static int reduced_axes(const Onnx__NodeProto *np, const struct rm_host_tensor *axes_in, int rank, int *red,
                        const char **why)
{
    int64_t axes[RM_MAX_RANK], n;
    int given;
    int noop = (int)rm_node_attr_int(np, "noop_with_empty_axes", 0);
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
    if (reduced_axes(s->np, ax, x->rank, red, &why))
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

int rm_kernel_reduce(const struct rm_kcall *k)
{
    const struct rm_host_tensor *x = k->in[0];
    struct rm_host_tensor *o = k->out[0];
    int red[RM_MAX_RANK];
    const char *why;
    int rc = reduced_axes(k->np, k->n_in > 1 ? k->in[1] : NULL, x->rank, red, &why);
    if (rc)
        return rm_k_err(k, rc, "%s", why);
    if (k->op != RM_OP_REDUCE_MEAN)
        return rm_k_err(k, RM_EUNSUPPORTED, "no C kernel");
    int64_t kd[RM_MAX_RANK], ks[RM_MAX_RANK], os[RM_MAX_RANK], idx[RM_MAX_RANK] = {0};
    for (int i = 0; i < x->rank; i++)
        kd[i] = red[i] ? 1 : x->dims[i];
    rm_strides(x->rank, kd, ks);
    for (int i = 0; i < x->rank; i++)
        os[i] = red[i] ? 0 : ks[i];
    double *acc = calloc((size_t)(o->numel ? o->numel : 1), sizeof *acc);
    if (!acc)
        return rm_k_err(k, RM_ENOMEM, "out of memory");
    const float *s = x->data;
    for (int64_t t = 0; t < x->numel; t++) {
        int64_t off = 0;
        for (int i = 0; i < x->rank; i++)
            off += idx[i] * os[i];
        acc[off] += s[t];
        rm_next_index(x->rank, x->dims, idx);
    }
    int64_t cnt = o->numel ? x->numel / o->numel : 1;
    for (int64_t t = 0; t < o->numel; t++)
        ((float *)o->data)[t] = cnt ? (float)(acc[t] / (double)cnt) : NAN;
    free(acc);
    return 0;
}
