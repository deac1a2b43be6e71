/* Normalisation: BatchNormalization (inference form), Softmax, LogSoftmax. Shape rules
 * and C kernels. */
#include "rm_ops_int.h"

#include <math.h>

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
