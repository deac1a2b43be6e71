/* Matrix products: Gemm and MatMul. Shape rules, MAC counts and C kernels (on oneDNN's
 * sgemm). */
#include "rm_ops_int.h"

#include <dnnl.h>
#include <dnnl_debug.h>
#include <string.h>

int rm_shape_gemm(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0), *w = rm_s_in(s, 1), *c = rm_s_in(s, 2);
    if (!x || !w)
        return 0;
    if (x->rank != 2 || w->rank != 2)
        return rm_s_bad(s, "needs 2-D A and B");
    int ta = (int)rm_node_attr_int(s->np, "transA", 0), tb = (int)rm_node_attr_int(s->np, "transB", 0);
    int64_t k1 = x->dims[ta ? 0 : 1], k2 = w->dims[tb ? 1 : 0], dims[2];
    if (k1 >= 0 && k2 >= 0 && k1 != k2)
        rm_s_bad(s, "input has %lld features, weight expects %lld", (long long)k1, (long long)k2);
    dims[0] = x->dims[ta ? 1 : 0];
    dims[1] = w->dims[tb ? 0 : 1];
    if (c) {
        if (c->rank > 2)
            return rm_s_bad(s, "C has rank %d", c->rank);
        for (int i = 0; i < c->rank; i++) {
            int64_t cd = c->dims[i], od = dims[2 - c->rank + i];
            if (cd >= 0 && od >= 0 && cd != 1 && cd != od)
                return rm_s_bad(s, "C cannot be broadcast to the output");
        }
    }
    rm_s_out(s, 0, x->elem_type, 2, dims);
    return 0;
}

int rm_shape_matmul(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0), *b = rm_s_in(s, 1);
    if (!x || !b)
        return 0;
    if (x->rank < 1 || b->rank < 1)
        return rm_s_bad(s, "needs two inputs of rank >= 1");
    int64_t K1 = x->dims[x->rank - 1], K2 = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
    if (K1 >= 0 && K2 >= 0 && K1 != K2)
        return rm_s_bad(s, "inner dimensions differ (%lld vs %lld)", (long long)K1, (long long)K2);
    int ra = x->rank < 2 ? 0 : x->rank - 2, rb = b->rank < 2 ? 0 : b->rank - 2;
    int r = ra > rb ? ra : rb, rank;
    int64_t dims[RM_MAX_RANK + 2];
    for (int i = 0; i < r; i++) {
        int ia = i - (r - ra), ib = i - (r - rb);
        int64_t u = ia >= 0 ? x->dims[ia] : 1, v = ib >= 0 ? b->dims[ib] : 1;
        if (u >= 0 && v >= 0 && u != v && u != 1 && v != 1)
            return rm_s_bad(s, "batch dimensions cannot be broadcast");
        dims[i] = u == 1 ? v : v == 1 ? u : u < 0 ? v : u;
    }
    rank = r;
    if (x->rank >= 2)
        dims[rank++] = x->dims[x->rank - 2];
    if (b->rank >= 2)
        dims[rank++] = b->dims[b->rank - 1];
    if (rank > RM_MAX_RANK)
        return rm_s_unsupported(s, "output rank above %d", RM_MAX_RANK);
    rm_s_out(s, 0, x->elem_type, rank, dims);
    return 0;
}

/* Output elements times the reduced dimension. */
static int64_t macs_out_times(const struct rm_graph *g, int node, int64_t per)
{
    const struct rm_node *n = &g->nodes[node];
    if (n->proto->n_output < 1 || n->outputs[0] < 0 || per < 0)
        return -1;
    const struct rm_value *y = &g->values[n->outputs[0]];
    int64_t ny;
    if (y->rank < 0 || rm_dims_numel(y->dims, (size_t)y->rank, &ny) || (per && ny > INT64_MAX / per))
        return -1;
    return ny * per;
}

int64_t rm_macs_gemm(const struct rm_graph *g, int node)
{
    const struct rm_node *n = &g->nodes[node];
    if (n->proto->n_input < 2 || n->inputs[1] < 0)
        return -1;
    const struct rm_value *w = &g->values[n->inputs[1]];
    if (w->rank != 2)
        return -1;
    return macs_out_times(g, node, w->dims[rm_node_attr_int(n->proto, "transB", 0) ? 1 : 0]);
}

int64_t rm_macs_matmul(const struct rm_graph *g, int node)
{
    const struct rm_node *n = &g->nodes[node];
    if (n->proto->n_input < 2 || n->inputs[1] < 0)
        return -1;
    const struct rm_value *w = &g->values[n->inputs[1]];
    if (w->rank < 1)
        return -1;
    return macs_out_times(g, node, w->rank == 1 ? w->dims[0] : w->dims[w->rank - 2]);
}

int rm_kernel_gemm(const struct rm_kcall *k)
{
    const struct rm_host_tensor *a = k->in[0], *b = k->in[1], *c = k->n_in > 2 ? k->in[2] : NULL;
    struct rm_host_tensor *o = k->out[0];
    const Onnx__NodeProto *np = k->np;
    int ta = (int)rm_node_attr_int(np, "transA", 0), tb = (int)rm_node_attr_int(np, "transB", 0);
    float alpha = rm_node_attr_float(np, "alpha", 1.0f), beta = rm_node_attr_float(np, "beta", 1.0f);
    int64_t M = o->dims[0], N = o->dims[1], K = a->dims[ta ? 0 : 1];
    float *y = o->data;
    if (c && beta != 0.0f) {
        int64_t cs0 = 0, cs1 = 0;
        if (c->rank == 2) {
            cs0 = c->dims[0] == 1 ? 0 : c->dims[1];
            cs1 = c->dims[1] == 1 ? 0 : 1;
        } else if (c->rank == 1) {
            cs1 = c->dims[0] == 1 ? 0 : 1;
        }
        const float *cv = c->data;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++)
                y[i * N + j] = beta * cv[i * cs0 + j * cs1];
    } else {
        memset(y, 0, (size_t)o->numel * 4);
    }
    if (!M || !N || !K)
        return 0;
    dnnl_status_t s = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, a->data, ta ? M : K, b->data,
                                 tb ? K : N, 1.0f, y, N);
    if (s != dnnl_success)
        return rm_k_err(k, RM_EUNSUPPORTED, "oneDNN: dnnl_sgemm failed (%s)", dnnl_status2str(s));
    return 0;
}

int rm_kernel_matmul(const struct rm_kcall *k)
{
    const struct rm_host_tensor *a = k->in[0], *b = k->in[1];
    struct rm_host_tensor *o = k->out[0];
    int64_t M = a->rank >= 2 ? a->dims[a->rank - 2] : 1, K = a->dims[a->rank - 1];
    int64_t N = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
    int ra = a->rank < 2 ? 0 : a->rank - 2, rb = b->rank < 2 ? 0 : b->rank - 2;
    int r = ra > rb ? ra : rb;
    int64_t bd[RM_MAX_RANK], sa[RM_MAX_RANK], sb[RM_MAX_RANK], idx[RM_MAX_RANK] = {0}, nb = 1;
    int64_t ta[RM_MAX_RANK], tb[RM_MAX_RANK];
    rm_strides(ra, a->dims, ta);
    rm_strides(rb, b->dims, tb);
    for (int i = 0; i < r; i++) {
        int ia = i - (r - ra), ib = i - (r - rb);
        int64_t u = ia >= 0 ? a->dims[ia] : 1, v = ib >= 0 ? b->dims[ib] : 1;
        bd[i] = u == 1 ? v : u;
        sa[i] = ia >= 0 && u != 1 ? ta[ia] * M * K : 0;
        sb[i] = ib >= 0 && v != 1 ? tb[ib] * K * N : 0;
        nb *= bd[i];
    }
    float *y = o->data;
    if (!M || !N)
        return 0;
    for (int64_t t = 0; t < nb; t++) {
        int64_t oa = 0, ob = 0;
        for (int i = 0; i < r; i++) {
            oa += idx[i] * sa[i];
            ob += idx[i] * sb[i];
        }
        float *yy = y + t * M * N;
        if (!K) {
            memset(yy, 0, (size_t)(M * N) * 4);
        } else {
            dnnl_status_t s = dnnl_sgemm('N', 'N', M, N, K, 1.0f, (const float *)a->data + oa, K,
                                         (const float *)b->data + ob, N, 0.0f, yy, N);
            if (s != dnnl_success)
                return rm_k_err(k, RM_EUNSUPPORTED, "oneDNN: dnnl_sgemm failed (%s)", dnnl_status2str(s));
        }
        rm_next_index(r, bd, idx);
    }
    return 0;
}
