/* LayerNormalization and InstanceNormalization on oneDNN.
 *   LayerNormalization: oneDNN's layer normalisation normalises the last axis, so a
 *     plain input is seen as [outer, D] (D the product of the normalised axes) with
 *     Scale and B of D values each (a blocked input is reordered to plain first, as
 *     the C kernel would need). Broadcast Scale/B and the Mean/InvStdDev outputs run
 *     the C kernel.
 *   InstanceNormalization: a batch normalisation that computes its statistics (not
 *     the global ones) over a batch of one: the input as it is when N = 1 (in any
 *     layout: it follows a conv without a reorder), or plain [1, N*C, spatial] with
 *     scale and B repeated N times (torch exports GroupNorm as one over [N, G, -1]). */
#include "rm_engine_int.h"
#include "rm_ops_int.h"

#include <string.h>

/* Memory over v's buffer (plain, not blocked) seen with dims d[0..r), registered so
 * that buffer sharing moves it along. */
static int reshaped_mem(struct rm_plan *p, struct val *v, int r, const int64_t *d, dnnl_memory_desc_t *md,
                        dnnl_memory_t *m, struct rm_error *err)
{
    int rc;
    if (rm_eng_plain_md(md, r, d))
        return rm_error_set(err, RM_EUNSUPPORTED, "cannot describe a tensor of rank %d", r);
    if ((rc = rm_eng_make_mem(p, m, md, v->buf, err)))
        return rc;
    return rm_eng_reg_mem(p, *m, v, 0, err);
}

/* A plan-owned copy of n floats repeated `times` times, as a 1-D memory. */
static int repeated_mem(struct rm_plan *p, const float *src, int64_t n, int64_t times, dnnl_memory_t *m,
                        struct rm_error *err)
{
    dnnl_memory_desc_t md;
    int64_t total = n * times;
    float *b = rm_eng_buf(p, (size_t)total * sizeof(float));
    if (!b)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    for (int64_t t = 0; t < times; t++)
        memcpy(b + t * n, src, (size_t)n * sizeof(float));
    if (rm_eng_plain_md(&md, 1, &total))
        return rm_error_set(err, RM_EUNSUPPORTED, "cannot describe a vector of %lld", (long long)total);
    return rm_eng_make_mem(p, m, &md, b, err);
}

/* Whether v is a float32 constant of n values. */
static bool const_vec(const struct val *v, int64_t n)
{
    return v && v->kind == V_CONST && v->dtype == RM_F32 && v->numel == n;
}

int rm_plan_layer_norm(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    int rc = 0;
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    struct val *x = rm_eng_in(p, node, 0), *sc = rm_eng_in(p, node, 1), *bi = rm_eng_in(p, node, 2);
    struct val *o = rm_eng_out(p, node, 0);
    dnnl_primitive_desc_t pd = NULL;
    int64_t axis = rm_node_attr_int(np, "axis", -1), outer = 1, D = 1;
    *fallback = 1;
    if (!x->has_md || x->numel == 0 || rm_eng_out(p, node, 1) || rm_eng_out(p, node, 2) || x->rank < 1 ||
        rm_norm_axis(&axis, x->rank))
        return 0;
    for (int i = 0; i < x->rank; i++)
        *(i < axis ? &outer : &D) *= x->dims[i];
    if (!const_vec(sc, D) || (bi && !const_vec(bi, D)))
        return 0;
    int64_t d2[2] = {outer, D};
    dnnl_memory_desc_t md, pmd;
    dnnl_memory_t xm, om, sm, bm = NULL;
    dnnl_primitive_attr_t attr = NULL;
    struct step *s;
    dnnl_primitive_t prim;
    if (rm_eng_plain_md(&md, 2, d2) || rm_eng_plain_md(&pmd, 1, &D))
        return 0;
    unsigned flags = dnnl_use_scale | (bi ? dnnl_use_shift : 0);
    dnnl_layer_normalization_desc_t ld;
    if (dnnl_layer_normalization_forward_desc_init(&ld, dnnl_forward_inference, &md, NULL,
                                                   rm_node_attr_float(np, "epsilon", 1e-5f), flags) != dnnl_success ||
        dnnl_primitive_attr_create(&attr) != dnnl_success)
        return 0;
    if (dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) != dnnl_success ||
        dnnl_primitive_desc_create(&pd, &ld, attr, p->eng, NULL) != dnnl_success)
        pd = NULL;
    dnnl_primitive_attr_destroy(attr);
    if (!pd)
        return 0; /* the C kernel */
    *fallback = 0;
    if (!(s = rm_eng_new_step(p, node))) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    if (x->blocked) {
        /* a conv's blocked output: one reorder to plain inside the step (the C kernel
         * would need the same) */
        dnnl_memory_desc_t xp;
        dnnl_memory_t tmp;
        if (rm_eng_plain_md(&xp, x->rank, x->dims)) {
            rc = rm_error_set(err, RM_EUNSUPPORTED, "cannot describe the input");
            goto done;
        }
        /* xm: the reordered input seen as [N, C*HW...] (its buffer is placed later) */
        if ((rc = rm_eng_add_reorder_in(p, s, x, &xp, &tmp, err)) || (rc = rm_eng_make_mem(p, &xm, &md, NULL, err)) ||
            (rc = rm_eng_add_reorder_view(p, tmp, xm, err)))
            goto done;
    } else if ((rc = reshaped_mem(p, x, 2, d2, &md, &xm, err))) {
        goto done;
    }
    if ((rc = rm_eng_make_prim(p, &prim, pd, err)) || (rc = rm_eng_alloc_plain(p, o, err)) ||
        (rc = reshaped_mem(p, o, 2, d2, &md, &om, err)) ||
        (rc = rm_eng_make_mem(p, &sm, &pmd, sc->plain, err)) ||
        (bi && (rc = rm_eng_make_mem(p, &bm, &pmd, bi->plain, err))))
        goto done;
    o->kind = V_ACT;
    dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, xm}, {DNNL_ARG_DST, om}, {DNNL_ARG_SCALE, sm}, {DNNL_ARG_SHIFT, bm}};
    if ((rc = rm_eng_add_ex(p, s, prim, bm ? 4 : 3, a)))
        goto done;
    s->written[s->n_written++] = p->g->nodes[node].outputs[0];
done:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}

int rm_plan_instance_norm(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    int rc = 0;
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    struct val *x = rm_eng_in(p, node, 0), *sc = rm_eng_in(p, node, 1), *bi = rm_eng_in(p, node, 2);
    struct val *o = rm_eng_out(p, node, 0);
    dnnl_primitive_desc_t pd = NULL;
    *fallback = 1;
    if (!x->has_md || x->rank < 3 || x->rank > 5 || x->numel == 0)
        return 0;
    int64_t N = x->dims[0], C = x->dims[1];
    if (!const_vec(sc, C) || !const_vec(bi, C) || (N > 1 && x->blocked))
        return 0;
    *fallback = 0;
    dnnl_memory_desc_t md;
    dnnl_memory_t xm = x->mem, sm, bm;
    int64_t d[RM_MAX_RANK];
    int r = x->rank;
    memcpy(d, x->dims, sizeof(int64_t) * (size_t)x->rank);
    if (N > 1 || (r == 3 && !x->blocked)) {
        /* plain: [1, N*C, spatial], 1-D as 2-D (oneDNN has only a reference 1-D kernel) */
        d[0] = 1;
        d[1] = N * C;
        if (r == 3)
            d[r++] = 1;
        if ((rc = reshaped_mem(p, x, r, d, &md, &xm, err)))
            return rc;
    } else {
        md = x->md;
    }
    if ((rc = repeated_mem(p, sc->plain, C, N, &sm, err)) || (rc = repeated_mem(p, bi->plain, C, N, &bm, err)))
        return rc;
    dnnl_batch_normalization_desc_t bd;
    CHECK(dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_inference, &md,
                                                     rm_node_attr_float(np, "epsilon", 1e-5f),
                                                     dnnl_use_scale | dnnl_use_shift));
    if (dnnl_primitive_desc_create(&pd, &bd, rm_eng_sp_attr(p), p->eng, NULL) != dnnl_success) {
        pd = NULL;
        *fallback = 1;
        goto done;
    }
    struct step *s = rm_eng_new_step(p, node);
    dnnl_primitive_t prim;
    dnnl_memory_t om;
    if (!s) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = rm_eng_make_prim(p, &prim, pd, err)))
        goto done;
    if (xm != x->mem) {
        if ((rc = rm_eng_alloc_plain(p, o, err)) || (rc = reshaped_mem(p, o, r, d, &md, &om, err)))
            goto done;
    } else {
        if ((rc = rm_eng_alloc_md(p, o, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), err)))
            goto done;
        om = o->mem;
    }
    o->kind = V_ACT;
    dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, xm}, {DNNL_ARG_DST, om}, {DNNL_ARG_SCALE, sm}, {DNNL_ARG_SHIFT, bm}};
    if ((rc = rm_eng_add_ex(p, s, prim, 4, a)))
        goto done;
    s->written[s->n_written++] = p->g->nodes[node].outputs[0];
done:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}
