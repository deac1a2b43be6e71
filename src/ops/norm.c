/* Normalisation: BatchNormalization (inference form), Softmax, LogSoftmax,
 * LayerNormalization, InstanceNormalization, GroupNormalization. Shape rules and C
 * kernels (engine/plan_norm.c runs Layer and Instance normalisation on oneDNN where it
 * can). */
#include "rm_ops_int.h"

#include <math.h>
#include <stdlib.h>

int rm_shape_batch_norm(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    if (!x)
        return 0;
    if (x->rank < 2)
        return rm_s_bad(s, "input rank %d < 2", x->rank);
    /* scale, B, mean, var: one value per channel */
    for (size_t k = 1; k < 5; k++) {
        const struct rm_value *p = rm_s_in(s, k);
        if (!rm_s_present(s, k))
            return rm_s_bad(s, "input %zu must have %lld values", k, (long long)x->dims[1]);
        if (p && x->dims[1] >= 0 && p->rank == 1 && p->dims[0] >= 0 && p->dims[0] != x->dims[1]) {
            rm_s_bad(s, "input has %lld channels, parameter %zu has %lld", (long long)x->dims[1], k,
                     (long long)p->dims[0]);
            break;
        }
    }
    rm_s_out(s, 0, x->elem_type, x->rank, x->dims);
    return 0;
}

int rm_shape_softmax(struct rm_snode *s)
{
    return rm_shape_same(s);
}

int rm_kernel_batch_norm(const struct rm_kcall *k)
{
    const struct rm_host_tensor *x = k->in[0];
    struct rm_host_tensor *o = k->out[0];
    const float *sc = k->in[1]->data, *bi = k->in[2]->data, *mu = k->in[3]->data, *va = k->in[4]->data;
    float eps = rm_node_attr_float(k->np, "epsilon", 1e-5f);
    int64_t C = x->dims[1], inner = 1;
    for (int i = 2; i < x->rank; i++)
        inner *= x->dims[i];
    const float *s = x->data;
    float *d = o->data;
    for (int64_t n = 0; n < x->dims[0]; n++)
        for (int64_t c = 0; c < C; c++) {
            float a = sc[c] / sqrtf(va[c] + eps), b = bi[c] - mu[c] * a;
            int64_t off = (n * C + c) * inner;
            for (int64_t i = 0; i < inner; i++)
                d[off + i] = s[off + i] * a + b;
        }
    return 0;
}

int rm_kernel_softmax(const struct rm_kcall *k)
{
    const struct rm_host_tensor *x = k->in[0];
    struct rm_host_tensor *o = k->out[0];
    int old = k->opset < 13;
    int64_t axis = rm_node_attr_int(k->np, "axis", old ? 1 : -1);
    if (x->rank == 0) {
        ((float *)o->data)[0] = 1.0f;
        return 0;
    }
    if (rm_norm_axis(&axis, x->rank))
        return rm_k_err(k, RM_EFORMAT, "axis out of range");
    int64_t outer = 1, D = 1, inner = 1;
    for (int i = 0; i < x->rank; i++) {
        if (i < axis)
            outer *= x->dims[i];
        else if (i == axis || old)
            D *= x->dims[i];
        else
            inner *= x->dims[i];
    }
    const float *s = x->data;
    float *d = o->data;
    for (int64_t a = 0; a < outer; a++)
        for (int64_t c = 0; c < inner; c++) {
            const float *sp = s + a * D * inner + c;
            float *dp = d + a * D * inner + c;
            float mx = -INFINITY;
            for (int64_t j = 0; j < D; j++)
                mx = sp[j * inner] > mx ? sp[j * inner] : mx;
            double sum = 0;
            for (int64_t j = 0; j < D; j++) {
                float e = expf(sp[j * inner] - mx);
                dp[j * inner] = e;
                sum += e;
            }
            for (int64_t j = 0; j < D; j++)
                dp[j * inner] = (float)(dp[j * inner] / sum);
        }
    return 0;
}

/* ---- LayerNormalization, InstanceNormalization, GroupNormalization -------------------
 * Statistics in double over each normalised block, the biased variance, then
 * y = (x - mean) / sqrt(var + epsilon) * scale + bias. */

/* Mean and 1 / sqrt(var + eps) of n values of x (stride 1). */
static void block_stats(const float *x, int64_t n, double eps, double *mean, double *inv)
{
    double s = 0, q = 0;
    for (int64_t i = 0; i < n; i++)
        s += x[i];
    double m = n ? s / (double)n : 0;
    for (int64_t i = 0; i < n; i++) {
        double d = x[i] - m;
        q += d * d;
    }
    *mean = m;
    *inv = 1.0 / sqrt((n ? q / (double)n : 0) + eps);
}

/* How LayerNormalization's scale or bias (shape p) lines up with the normalised shape
 * dims[axis..rank): 0 when it broadcasts to it (leading axes of size 1 allowed), else -1. */
static int ln_param_fits(const int64_t *pd, int prank, const int64_t *dims, int axis, int rank)
{
    int nr = rank - axis;
    for (int i = 0; i < prank; i++) {
        int j = i - (prank - nr); /* axis of the normalised shape it lines up with */
        if (j < 0) {
            if (pd[i] != 1 && pd[i] >= 0)
                return -1;
        } else if (pd[i] >= 0 && dims[axis + j] >= 0 && pd[i] != 1 && pd[i] != dims[axis + j]) {
            return -1;
        }
    }
    return 0;
}

int rm_shape_layer_norm(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    if (!x)
        return 0;
    int64_t axis = rm_node_attr_int(s->np, "axis", -1);
    if (x->rank < 1 || rm_norm_axis(&axis, x->rank))
        return rm_s_bad(s, "axis %lld is out of range for rank %d", (long long)rm_node_attr_int(s->np, "axis", -1),
                        x->rank);
    if (!rm_s_present(s, 1))
        return rm_s_bad(s, "input 1 (Scale) is missing");
    for (size_t k = 1; k < 3; k++) {
        const struct rm_value *p = rm_s_in(s, k);
        if (p && ln_param_fits(p->dims, p->rank, x->dims, (int)axis, x->rank))
            return rm_s_bad(s, "%s does not broadcast to the normalised shape", k == 1 ? "Scale" : "B");
    }
    int64_t sd[RM_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        sd[i] = i < axis ? x->dims[i] : 1;
    rm_s_out(s, 0, x->elem_type, x->rank, x->dims);
    rm_s_out(s, 1, RM_F32, x->rank, sd); /* Mean, InvStdDev: stash_type float */
    rm_s_out(s, 2, RM_F32, x->rank, sd);
    return 0;
}

/* Per-channel scale and bias of InstanceNormalization / opset-21 GroupNormalization, or
 * per group (opset-18 GroupNormalization): checks input k has n values. */
static void check_count(struct rm_snode *s, size_t k, int64_t n)
{
    const struct rm_value *p = rm_s_in(s, k);
    int64_t m;
    if (!p || n < 0 || rm_dims_numel(p->dims, (size_t)p->rank, &m) || m < 0)
        return;
    if (m != n)
        rm_s_bad(s, "%s has %lld values, expected %lld", k == 1 ? "scale" : "B", (long long)m, (long long)n);
}

int rm_shape_instance_norm(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    if (!x)
        return 0;
    if (x->rank < 3)
        return rm_s_bad(s, "input rank %d < 3", x->rank);
    if (!rm_s_present(s, 1) || !rm_s_present(s, 2))
        return rm_s_bad(s, "scale and B are required");
    check_count(s, 1, x->dims[1]);
    check_count(s, 2, x->dims[1]);
    rm_s_out(s, 0, x->elem_type, x->rank, x->dims);
    return 0;
}

int rm_shape_group_norm(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    if (!x)
        return 0;
    int64_t G = rm_node_attr_int(s->np, "num_groups", 0);
    if (x->rank < 3)
        return rm_s_bad(s, "input rank %d < 3", x->rank);
    if (G <= 0)
        return rm_s_bad(s, "num_groups must be given and positive");
    if (!rm_s_present(s, 1) || !rm_s_present(s, 2))
        return rm_s_bad(s, "scale and bias are required");
    if (x->dims[1] >= 0 && x->dims[1] % G)
        return rm_s_bad(s, "%lld channels do not divide into %lld groups", (long long)x->dims[1], (long long)G);
    for (size_t k = 1; k < 3; k++) {
        const struct rm_value *p = rm_s_in(s, k);
        int64_t m;
        if (p && !rm_dims_numel(p->dims, (size_t)p->rank, &m) && m >= 0 && m != G && x->dims[1] >= 0 &&
            m != x->dims[1])
            return rm_s_bad(s, "%s has %lld values: one per group (%lld) or per channel (%lld) expected",
                            k == 1 ? "scale" : "bias", (long long)m, (long long)G, (long long)x->dims[1]);
    }
    rm_s_out(s, 0, x->elem_type, x->rank, x->dims);
    return 0;
}

/* LayerNormalization's scale or bias (t, NULL: none) expanded to the D values of one
 * normalised block dims[axis..rank); def fills an absent one. Returns malloc'd memory or
 * NULL. */
static float *ln_expand(const struct rm_host_tensor *t, const int64_t *dims, int axis, int rank, int64_t D,
                        float def)
{
    float *e = malloc((size_t)(D ? D : 1) * sizeof *e);
    if (!e)
        return NULL;
    int nr = rank - axis;
    int64_t idx[RM_MAX_RANK] = {0}, pst[RM_MAX_RANK] = {0};
    if (t) {
        /* strides of t over the normalised axes, 0 where it broadcasts */
        int64_t st = 1;
        for (int i = t->rank - 1; i >= 0; i--) {
            int j = i - (t->rank - nr);
            if (j >= 0)
                pst[j] = t->dims[i] == 1 ? 0 : st;
            st *= t->dims[i];
        }
    }
    const float *tv = t ? t->data : NULL;
    for (int64_t i = 0; i < D; i++) {
        int64_t off = 0;
        for (int j = 0; j < nr; j++)
            off += idx[j] * pst[j];
        e[i] = tv ? tv[off] : def;
        rm_next_index(nr, dims + axis, idx);
    }
    return e;
}

int rm_kernel_layer_norm(const struct rm_kcall *k)
{
    const struct rm_host_tensor *x = k->in[0], *sc = k->in[1], *bi = k->n_in > 2 ? k->in[2] : NULL;
    struct rm_host_tensor *o = k->out[0], *mo = k->n_out > 1 ? k->out[1] : NULL, *io = k->n_out > 2 ? k->out[2] : NULL;
    int64_t axis = rm_node_attr_int(k->np, "axis", -1);
    double eps = rm_node_attr_float(k->np, "epsilon", 1e-5f);
    if (x->dtype != RM_F32 || !sc || sc->dtype != RM_F32 || (bi && bi->dtype != RM_F32))
        return rm_k_err(k, RM_EUNSUPPORTED, "only float32 is supported");
    if (x->rank < 1 || rm_norm_axis(&axis, x->rank))
        return rm_k_err(k, RM_EFORMAT, "axis out of range");
    if (ln_param_fits(sc->dims, sc->rank, x->dims, (int)axis, x->rank) ||
        (bi && ln_param_fits(bi->dims, bi->rank, x->dims, (int)axis, x->rank)))
        return rm_k_err(k, RM_EFORMAT, "Scale or B does not broadcast to the normalised shape");
    int64_t outer = 1, D = 1;
    for (int i = 0; i < x->rank; i++)
        *(i < axis ? &outer : &D) *= x->dims[i];
    float *se = ln_expand(sc, x->dims, (int)axis, x->rank, D, 1), *be = ln_expand(bi, x->dims, (int)axis, x->rank, D, 0);
    if (!se || !be) {
        free(se);
        free(be);
        return rm_k_err(k, RM_ENOMEM, "out of memory");
    }
    const float *xs = x->data;
    float *y = o->data;
    for (int64_t a = 0; a < outer; a++) {
        double m, inv;
        block_stats(xs + a * D, D, eps, &m, &inv);
        for (int64_t i = 0; i < D; i++)
            y[a * D + i] = (float)((xs[a * D + i] - m) * inv) * se[i] + be[i];
        if (mo && mo->numel == outer)
            ((float *)mo->data)[a] = (float)m;
        if (io && io->numel == outer)
            ((float *)io->data)[a] = (float)inv;
    }
    free(se);
    free(be);
    return 0;
}

/* x [N, C, spatial]: statistics over each of G groups of C/G channels; scale and bias
 * per channel (n_par == C) or per group (n_par == G). InstanceNormalization is G = C. */
static int group_norm(const struct rm_kcall *k, int64_t G, double eps)
{
    const struct rm_host_tensor *x = k->in[0], *sc = k->in[1], *bi = k->in[2];
    float *y = k->out[0]->data;
    if (x->numel == 0)
        return 0;
    if (x->dtype != RM_F32 || !sc || !bi || sc->dtype != RM_F32 || bi->dtype != RM_F32)
        return rm_k_err(k, RM_EUNSUPPORTED, "only float32 is supported");
    int64_t N = x->dims[0], C = x->dims[1], inner = 1;
    if (x->rank < 3 || G <= 0 || C % G)
        return rm_k_err(k, RM_EFORMAT, "channels do not divide into %lld groups", (long long)G);
    for (int i = 2; i < x->rank; i++)
        inner *= x->dims[i];
    int per_channel = sc->numel == C && bi->numel == C;
    if (!per_channel && (sc->numel != G || bi->numel != G))
        return rm_k_err(k, RM_EFORMAT, "scale and bias must have one value per channel or per group");
    int64_t cg = C / G, blk = cg * inner;
    const float *xs = x->data, *sv = sc->data, *bv = bi->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < G; g++) {
            const float *xb = xs + (n * G + g) * blk;
            float *yb = y + (n * G + g) * blk;
            double m, inv;
            block_stats(xb, blk, eps, &m, &inv);
            for (int64_t c = 0; c < cg; c++) {
                int64_t p = per_channel ? g * cg + c : g;
                float a = sv[p], b = bv[p];
                for (int64_t i = 0; i < inner; i++)
                    yb[c * inner + i] = (float)((xb[c * inner + i] - m) * inv) * a + b;
            }
        }
    return 0;
}

int rm_kernel_instance_norm(const struct rm_kcall *k)
{
    const struct rm_host_tensor *x = k->in[0];
    if (x->rank < 3)
        return rm_k_err(k, RM_EFORMAT, "input rank %d < 3", x->rank);
    return group_norm(k, x->dims[1], rm_node_attr_float(k->np, "epsilon", 1e-5f));
}

int rm_kernel_group_norm(const struct rm_kcall *k)
{
    return group_norm(k, rm_node_attr_int(k->np, "num_groups", 0), rm_node_attr_float(k->np, "epsilon", 1e-5f));
}
