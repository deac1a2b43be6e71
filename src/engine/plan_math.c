/* oneDNN planners of the math ops: the eltwise algorithm of each unary op (for blocked
 * inputs and as convolution post-ops), PRelu, Sum/Mean, reductions, and a Cast that does
 * not change the carried type. Each falls back to the op's C kernel where oneDNN does
 * not cover the case. */
#include "rm_engine_int.h"
#include "rm_ops_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- eltwise equivalents ----------------------------------------------------------- */

int rm_eng_math_eltwise_of(struct rm_plan *p, int node, struct postop *po, int *npo)
{
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    struct postop e = {0, dnnl_eltwise_linear, 0, 0};
    struct val *x = rm_eng_in(p, node, 0);
    if (!x || x->dtype != RM_F32)
        return 0;
    switch (p->g->nodes[node].op) {
    case RM_OP_TANH: e.alg = dnnl_eltwise_tanh; break;
    case RM_OP_ELU: e.alg = dnnl_eltwise_elu, e.a = rm_node_attr_float(np, "alpha", 1.0f); break;
    case RM_OP_ABS: e.alg = dnnl_eltwise_abs; break;
    case RM_OP_SQRT: e.alg = dnnl_eltwise_sqrt; break;
    case RM_OP_EXP: e.alg = dnnl_eltwise_exp; break;
    case RM_OP_LOG: e.alg = dnnl_eltwise_log; break;
    case RM_OP_SOFTPLUS: e.alg = dnnl_eltwise_soft_relu; break; /* log(1 + e^x) in oneDNN 2.x */
    case RM_OP_MISH: e.alg = dnnl_eltwise_mish; break;
    case RM_OP_NEG: e.a = -1; break; /* linear: a x + b */
    case RM_OP_RECIPROCAL: e.alg = dnnl_eltwise_pow, e.a = 1, e.b = -1; break; /* a x^b */
    case RM_OP_GELU: {
        char ap[16];
        rm_attr_string(np, "approximate", ap, sizeof ap, "none");
        if (!strcmp(ap, "none"))
            e.alg = dnnl_eltwise_gelu_erf;
        else if (!strcmp(ap, "tanh"))
            e.alg = dnnl_eltwise_gelu_tanh;
        else
            return 0; /* the C kernel reports it */
        break;
    }
    case RM_OP_POW: {
        /* x to a constant scalar power */
        struct val *y = rm_eng_in(p, node, 1);
        if (!y || y->kind != V_CONST || y->numel != 1)
            return 0;
        e.alg = dnnl_eltwise_pow;
        e.a = 1;
        e.b = y->dtype == RM_F32 ? ((float *)y->plain)[0] : (float)((int64_t *)y->plain)[0];
        break;
    }
    default:
        return 0;
    }
    po[(*npo)++] = e;
    return 1;
}

/* One step running primitive pd from x to o (o allocated in pd's dst layout). */
static int src_dst_step(struct rm_plan *p, int node, const_dnnl_primitive_desc_t pd, int n_extra,
                        const dnnl_exec_arg_t *extra, struct val *x, struct val *o, struct rm_error *err)
{
    int rc;
    struct step *s = rm_eng_new_step(p, node);
    dnnl_primitive_t prim;
    dnnl_exec_arg_t a[4];
    if (!s)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    if ((rc = rm_eng_make_prim(p, &prim, pd, err)) ||
        (rc = rm_eng_alloc_md(p, o, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), err)))
        return rc;
    o->kind = V_ACT;
    a[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, x->mem};
    a[1] = (dnnl_exec_arg_t){DNNL_ARG_DST, o->mem};
    for (int i = 0; i < n_extra && i < 2; i++)
        a[2 + i] = extra[i];
    if ((rc = rm_eng_add_ex(p, s, prim, 2 + (n_extra < 2 ? n_extra : 2), a)))
        return rc;
    s->written[s->n_written++] = p->g->nodes[node].outputs[0];
    return 0;
}

/* ---- PRelu ----------------------------------------------------------------------------- */

/* PRelu of a blocked float input with a constant slope: oneDNN's prelu, keeping the
 * input's layout. */
int rm_plan_prelu(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    int rc = 0;
    struct val *x = rm_eng_in(p, node, 0), *sl = rm_eng_in(p, node, 1), *o = rm_eng_out(p, node, 0);
    dnnl_primitive_desc_t pd = NULL;
    *fallback = 1;
    if (!x->blocked || !x->has_md || !sl || sl->kind != V_CONST || sl->dtype != RM_F32 || sl->rank > x->rank ||
        sl->numel == 0)
        return 0;
    int64_t wd[RM_MAX_RANK];
    rm_prelu_slope_dims(p->g->opset, x->rank, x->dims, sl->rank, sl->dims, wd);
    dnnl_memory_desc_t w_md;
    dnnl_memory_t wmem;
    if (rm_eng_plain_md(&w_md, x->rank, wd))
        return 0;
    dnnl_prelu_desc_t d;
    if (dnnl_prelu_forward_desc_init(&d, dnnl_forward_inference, &x->md, &w_md) != dnnl_success ||
        dnnl_primitive_desc_create(&pd, &d, rm_eng_sp_attr(p), p->eng, NULL) != dnnl_success)
        return 0; /* a broadcast oneDNN does not take: the C kernel */
    *fallback = 0;
    if ((rc = rm_eng_make_mem(p, &wmem, &w_md, sl->plain, err)) || (rc = rm_eng_reg_mem(p, wmem, sl, 1, err)))
        goto done;
    dnnl_exec_arg_t w = {DNNL_ARG_WEIGHTS, wmem};
    rc = src_dst_step(p, node, pd, 1, &w, x, o, err);
done:
    dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* ---- Sum, Mean -------------------------------------------------------------------------- */

/* Sum or Mean of float inputs of the output's shape, one of them blocked: oneDNN's sum
 * (with scales 1/n for Mean) in that input's layout. */
int rm_plan_sum(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    int rc = 0;
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    struct val *o = rm_eng_out(p, node, 0), *lead = NULL;
    int n = (int)np->n_input;
    dnnl_primitive_desc_t pd = NULL;
    *fallback = 1;
    if (n < 2 || n > 64 || o->dtype != RM_F32)
        return 0;
    for (int k = 0; k < n; k++) {
        struct val *v = rm_eng_in(p, node, (size_t)k);
        if (!v || !v->has_md || v->dtype != RM_F32 || v->rank != o->rank ||
            memcmp(v->dims, o->dims, sizeof(int64_t) * (size_t)o->rank))
            return 0;
        if (v->blocked && !lead)
            lead = v;
    }
    if (!lead)
        return 0;
    *fallback = 0;
    float scales[64];
    dnnl_memory_desc_t mds[64];
    dnnl_exec_arg_t args[65];
    for (int k = 0; k < n; k++) {
        struct val *v = rm_eng_in(p, node, (size_t)k);
        scales[k] = rm_eng_is(p, node, RM_OP_MEAN) ? 1.0f / (float)n : 1.0f;
        mds[k] = v->md;
        args[k] = (dnnl_exec_arg_t){DNNL_ARG_MULTIPLE_SRC + k, v->mem};
    }
    CHECK(dnnl_sum_primitive_desc_create(&pd, &lead->md, n, scales, mds, rm_eng_sp_attr(p), p->eng));
    struct step *s = rm_eng_new_step(p, node);
    dnnl_primitive_t prim;
    if (!s) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = rm_eng_make_prim(p, &prim, pd, err)) || (rc = rm_eng_alloc_md(p, o, &lead->md, err)))
        goto done;
    o->kind = V_ACT;
    args[n] = (dnnl_exec_arg_t){DNNL_ARG_DST, o->mem};
    if ((rc = rm_eng_add_ex(p, s, prim, n + 1, args)))
        goto done;
    s->written[s->n_written++] = p->g->nodes[node].outputs[0];
done:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* ---- reductions --------------------------------------------------------------------------- */

/* ReduceMean/Max/Min/Sum/Prod/L2 of a float input: oneDNN's reduction (multi-threaded,
 * any layout). With keepdims=0 the output is plain, its buffer seen by oneDNN with the
 * reduced axes kept as 1. */
int rm_plan_reduce(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    int rc = 0;
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    struct val *x = rm_eng_in(p, node, 0), *o = rm_eng_out(p, node, 0), *ax = rm_eng_in(p, node, 1);
    dnnl_primitive_desc_t pd = NULL;
    int red[RM_MAX_RANK], any = 0;
    const char *why;
    *fallback = 1;
    if (x->dtype != RM_F32 || !x->has_md || x->rank < 1 || x->rank > 5 || x->numel == 0 ||
        (ax && ax->kind != V_CONST))
        return 0;
    struct rm_host_tensor axes = {0};
    if (ax) {
        axes.dtype = ax->dtype;
        axes.rank = ax->rank;
        memcpy(axes.dims, ax->dims, sizeof axes.dims);
        axes.numel = ax->numel;
        axes.data = ax->plain;
    }
    if (rm_reduced_axes(np, ax ? &axes : NULL, x->rank, red, &why))
        return 0; /* the C kernel reports it */
    dnnl_dims_t kd;
    for (int i = 0; i < x->rank; i++) {
        kd[i] = red[i] ? 1 : x->dims[i];
        any |= red[i] && x->dims[i] != 1;
    }
    if (!any)
        return 0; /* nothing reduced: a copy */
    dnnl_alg_kind_t alg;
    float pw = 0;
    switch (p->g->nodes[node].op) {
    case RM_OP_REDUCE_MEAN: alg = dnnl_reduction_mean; break;
    case RM_OP_REDUCE_MAX: alg = dnnl_reduction_max; break;
    case RM_OP_REDUCE_MIN: alg = dnnl_reduction_min; break;
    case RM_OP_REDUCE_SUM: alg = dnnl_reduction_sum; break;
    case RM_OP_REDUCE_PROD: alg = dnnl_reduction_mul; break;
    case RM_OP_REDUCE_L2: alg = dnnl_reduction_norm_lp_sum, pw = 2; break;
    default: return 0;
    }
    int keep = o->rank == x->rank;
    dnnl_memory_desc_t dst_md;
    /* a global mean or max of a channels-last or channel-blocked input (ShuffleNet's
     * head): oneDNN's reduction runs it on its reference kernel (14% of shufflenet_v2's
     * run), its global pooling on a jit one; [N, C, 1, 1] in the input's layout is the
     * same bytes as the plain output */
    int blk = -1, spatial = !keep && x->rank >= 3 && x->rank <= 5 &&
                                (alg == dnnl_reduction_mean || alg == dnnl_reduction_max);
    dnnl_format_tag_t xt = rm_eng_layout_tag(x, &blk);
    for (int i = 0; i < x->rank; i++)
        spatial &= i < 2 ? !red[i] : kd[i] == 1;
    if (spatial && xt != dnnl_format_tag_any && x->dims[1] % (blk == 0 ? 1 : blk == 1 ? 16 : 8) == 0) {
        dnnl_dims_t st, k, zero = {0};
        for (int i = 2; i < x->rank; i++) {
            st[i - 2] = 1;
            k[i - 2] = x->dims[i];
        }
        dnnl_pooling_v2_desc_t pdsc;
        CHECK(dnnl_memory_desc_init_by_tag(&dst_md, x->rank, kd, dnnl_f32, xt));
        if (dnnl_pooling_v2_forward_desc_init(&pdsc, dnnl_forward_inference,
                                              alg == dnnl_reduction_mean ? dnnl_pooling_avg_exclude_padding
                                                                         : dnnl_pooling_max,
                                              &x->md, &dst_md, st, k, zero, zero, zero) != dnnl_success ||
            dnnl_primitive_desc_create(&pd, &pdsc, rm_eng_sp_attr(p), p->eng, NULL) != dnnl_success)
            pd = NULL;
    }
    if (!pd) {
        CHECK(dnnl_memory_desc_init_by_tag(&dst_md, x->rank, kd, dnnl_f32,
                                           keep ? dnnl_format_tag_any : rm_eng_plain_tags[x->rank]));
        dnnl_reduction_desc_t d;
        if (dnnl_reduction_desc_init(&d, alg, &x->md, &dst_md, pw, 0) != dnnl_success ||
            dnnl_primitive_desc_create(&pd, &d, rm_eng_sp_attr(p), p->eng, NULL) != dnnl_success) {
            pd = NULL;
            goto done; /* the C kernel */
        }
    }
    *fallback = 0;
    if (keep) {
        rc = src_dst_step(p, node, pd, 0, NULL, x, o, err);
        goto done;
    }
    struct step *s = rm_eng_new_step(p, node);
    dnnl_primitive_t prim;
    dnnl_memory_t omem;
    if (!s) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = rm_eng_make_prim(p, &prim, pd, err)) || (rc = rm_eng_alloc_plain(p, o, err)) ||
        (rc = rm_eng_make_mem(p, &omem, &dst_md, o->buf, err)) || (rc = rm_eng_reg_mem(p, omem, o, 0, err)))
        goto done;
    o->kind = V_ACT;
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_SRC, x->mem}, {DNNL_ARG_DST, omem}};
    if ((rc = rm_eng_add_ex(p, s, prim, 2, a)))
        goto done;
    s->written[s->n_written++] = p->g->nodes[node].outputs[0];
done:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* ---- Cast ---------------------------------------------------------------------------------- */

/* A Cast between types carried alike (float32 to float64 and back) of a blocked input is
 * a copy in its layout; everything else converts in the C kernel. */
int rm_plan_cast(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    struct val *x = rm_eng_in(p, node, 0), *o = rm_eng_out(p, node, 0);
    *fallback = 1;
    if (x->dtype != RM_F32 || o->dtype != RM_F32)
        return 0;
    return rm_plan_copy(p, node, fallback, err);
}
