/* ConvTranspose on oneDNN's deconvolution: constant weights reordered once (a following
 * BatchNormalization folded into them), Relu/Clip/Sigmoid/... fused as post-ops, and
 * the activation layout kept: the deconvolution reads its input in the layout the
 * producer left it in (channel-blocked or channels-last) and writes the same, so a
 * decoder (conv -> deconv -> concat -> conv) plans no reorder around it. What oneDNN
 * cannot express (an output_padding or output_shape oneDNN's padding cannot reach,
 * weights computed at run time) runs the C kernel. */
#include "rm_engine_int.h"
#include "rm_ops_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The same layout family (channels-last, 16- or 8-blocked) for dims of rank r. */
static dnnl_format_tag_t family_tag(int block, int r)
{
    static const dnnl_format_tag_t t[3][3] = {{dnnl_acb, dnnl_acdb, dnnl_acdeb},
                                              {dnnl_aBc16b, dnnl_aBcd16b, dnnl_aBcde16b},
                                              {dnnl_aBc8b, dnnl_aBcd8b, dnnl_aBcde8b}};
    return t[block][r - 3];
}

/* A pd for dd with src and dst in the given layout, kept only when oneDNN has an
 * optimised (jit or brgemm) kernel for it; NULL otherwise. */
static dnnl_primitive_desc_t try_layout(struct rm_plan *p, const dnnl_deconvolution_desc_t *dd, dnnl_format_tag_t st,
                                        dnnl_format_tag_t dt, const_dnnl_primitive_attr_t attr)
{
    dnnl_deconvolution_desc_t b = *dd;
    dnnl_primitive_desc_t pd = NULL;
    const char *impl = NULL;
    if (dnnl_memory_desc_init_by_tag(&b.src_desc, dd->src_desc.ndims, dd->src_desc.dims, dnnl_f32, st) !=
            dnnl_success ||
        dnnl_memory_desc_init_by_tag(&b.dst_desc, dd->dst_desc.ndims, dd->dst_desc.dims, dnnl_f32, dt) !=
            dnnl_success ||
        dnnl_primitive_desc_create(&pd, &b, attr, p->eng, NULL) != dnnl_success)
        return NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl ||
        !strncmp(impl, "ref", 3)) {
        dnnl_primitive_desc_destroy(pd);
        return NULL;
    }
    return pd;
}

/* Plain tag of ONNX's weight [C_in, C_out/g, k...] seen as oneDNN's ([g,] OC/g, IC/g, k...). */
static dnnl_format_tag_t weight_tag(int sp, int grouped)
{
    static const dnnl_format_tag_t plain[3] = {dnnl_bac, dnnl_bacd, dnnl_bacde};
    static const dnnl_format_tag_t groups[3] = {dnnl_acbd, dnnl_acbde, dnnl_acbdef};
    return grouped ? groups[sp - 1] : plain[sp - 1];
}

int rm_plan_conv_transpose(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    int rc = 0;
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    struct val *x = rm_eng_in(p, node, 0), *w = rm_eng_in(p, node, 1), *b = rm_eng_in(p, node, 2);
    struct val *o = rm_eng_out(p, node, 0);
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t pops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    float *wtmp = NULL, *btmp = NULL;
    struct postop po[8];
    int npo = 0, bn = -1, last = node, fused_vals[8], claimed[8], nfused = 0;
    struct rm_deconv dc;
    char why[200];
    *fallback = 1;
    if (!x->has_md || x->rank < 3 || x->rank > 5 || w->kind != V_CONST || w->dtype != RM_F32 || w->rank != x->rank ||
        (b && (b->kind != V_CONST || b->dtype != RM_F32)))
        return 0;
    if ((rc = rm_deconv_of(np, x->rank, x->dims, w->dims, &dc, why, sizeof why)))
        return rm_eng_node_err(p, node, rc, "%s", why);
    int rank = x->rank, sp = rank - 2;
    int64_t G = dc.group, IC = w->dims[0], OCg = w->dims[1], OC = OCg * G, ICg = IC / G, ksz = 1;
    for (int i = 2; i < rank; i++)
        ksz *= w->dims[i];
    if (IC != x->dims[1] || o->dims[1] != OC || (b && b->numel != OC))
        return 0; /* the kernel reports it */

    /* oneDNN's dst size is (in - 1) * s + (k - 1) * d + 1 - pl - pr: output_padding
     * comes off the right padding. Where that leaves it negative (output_padding past
     * the end padding, an output_shape past the full size: outputs only the bias
     * reaches), the kernel grows by zero taps at its end until it is not: they reach
     * those outputs and add nothing. */
    dnnl_dims_t strides, dil, pl, pr;
    int64_t kx[3], kxsz = 1; /* the kernel, grown */
    for (int i = 0; i < sp; i++) {
        int64_t full = dc.s[i] * (x->dims[2 + i] - 1) + (dc.k[i] - 1) * dc.d[i] + 1;
        int64_t short_by = dc.pl[i] + dc.out[i] - full, grow = short_by > 0 ? (short_by + dc.d[i] - 1) / dc.d[i] : 0;
        if (grow > 64 || dc.pl[i] < 0)
            return 0; /* far past the full size: the C kernel */
        kx[i] = dc.k[i] + grow;
        kxsz *= kx[i];
        strides[i] = dc.s[i];
        dil[i] = dc.d[i] - 1;
        pl[i] = dc.pl[i];
        pr[i] = full + grow * dc.d[i] - dc.pl[i] - dc.out[i];
    }
    if (kxsz > 4 * ksz + 64)
        return 0; /* zero taps would outweigh the kernel: the C kernel */
    *fallback = 0;

    /* fusion chain: [BatchNormalization] then eltwise ops, each the sole consumer */
    int cur = p->g->nodes[node].outputs[0];
    while (p->opts.fuse && npo < 6) {
        int c = rm_eng_sole_consumer(p, cur);
        if (c < 0 || p->g->nodes[c].inputs[0] != cur)
            break;
        const Onnx__NodeProto *cp = p->g->nodes[c].proto;
        for (size_t k = 1; k < cp->n_input; k++)
            if (p->g->nodes[c].inputs[k] >= 0 && (rc = rm_eng_early_const(p, p->g->nodes[c].inputs[k], err)))
                goto done;
        if (rm_eng_is(p, c, RM_OP_BATCH_NORM) && npo == 0 && bn < 0 && (cp->n_output == 1 || !cp->output[1][0]) &&
            !rm_node_attr_int(cp, "training_mode", 0)) {
            int ok = 1;
            for (size_t k = 1; k < 5; k++) {
                struct val *v = rm_eng_in(p, c, k);
                ok &= v && v->kind == V_CONST && v->dtype == RM_F32 && v->numel == OC;
            }
            if (!ok)
                break;
            bn = c;
        } else if (!rm_eng_is(p, c, RM_OP_HARD_SIGMOID) && rm_eng_eltwise_of(p, c, po, &npo)) {
            /* Relu, LeakyRelu, Sigmoid, HardSwish, Clip with constant bounds */
        } else {
            break;
        }
        fused_vals[nfused] = cur;
        claimed[nfused++] = c;
        p->node_state[c] = p->n_steps; /* claimed by the step made below */
        last = c;
        cur = p->g->nodes[c].outputs[0];
        if (cur < 0)
            break;
    }
    struct val *fin = &p->vals[cur];
    if (fin != o) {
        fin->dtype = RM_F32;
        fin->rank = o->rank;
        memcpy(fin->dims, o->dims, sizeof o->dims);
        fin->numel = o->numel;
    }

    /* weights in ONNX's layout (the kernel grown), the BatchNorm folded into each
     * output channel */
    size_t wn = (size_t)(IC * OCg * kxsz);
    wtmp = calloc(wn, sizeof *wtmp);
    btmp = calloc((size_t)OC, sizeof *btmp);
    if (!wtmp || !btmp) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    {
        const float *ws = w->plain;
        int64_t kidx[3] = {0, 0, 0};
        for (int64_t e = 0; e < ksz; e++) {
            int64_t off = 0;
            for (int i = 0; i < sp; i++)
                off = off * kx[i] + kidx[i];
            for (int64_t r = 0; r < IC * OCg; r++)
                wtmp[r * kxsz + off] = ws[r * ksz + e];
            rm_next_index(sp, w->dims + 2, kidx);
        }
    }
    if (b)
        memcpy(btmp, b->plain, (size_t)OC * sizeof *btmp);
    if (bn >= 0) {
        const float *sc = rm_eng_in(p, bn, 1)->plain, *be = rm_eng_in(p, bn, 2)->plain;
        const float *mu = rm_eng_in(p, bn, 3)->plain, *va = rm_eng_in(p, bn, 4)->plain;
        float eps = rm_node_attr_float(p->g->nodes[bn].proto, "epsilon", 1e-5f);
        for (int64_t oc = 0; oc < OC; oc++) {
            float s = sc[oc] / sqrtf(va[oc] + eps);
            int64_t g = oc / OCg, j = oc % OCg;
            for (int64_t ic = g * ICg; ic < (g + 1) * ICg; ic++)
                for (int64_t e = 0; e < kxsz; e++)
                    wtmp[(ic * OCg + j) * kxsz + e] *= s;
            btmp[oc] = (btmp[oc] - mu[oc]) * s + be[oc];
        }
    }

    dnnl_memory_desc_t src_md, w_md, b_md, dst_md, wp;
    dnnl_dims_t d, wd, bd;
    for (int i = 0; i < rank; i++)
        d[i] = x->dims[i];
    CHECK(dnnl_memory_desc_init_by_tag(&src_md, rank, d, dnnl_f32, dnnl_format_tag_any));
    for (int i = 0; i < rank; i++)
        d[i] = o->dims[i];
    CHECK(dnnl_memory_desc_init_by_tag(&dst_md, rank, d, dnnl_f32, dnnl_format_tag_any));
    int wr = 0;
    if (G > 1)
        wd[wr++] = G;
    wd[wr++] = OCg;
    wd[wr++] = ICg;
    for (int i = 0; i < sp; i++)
        wd[wr++] = kx[i];
    CHECK(dnnl_memory_desc_init_by_tag(&w_md, wr, wd, dnnl_f32, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&wp, wr, wd, dnnl_f32, weight_tag(sp, G > 1)));
    bd[0] = OC;
    CHECK(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_a));
    dnnl_deconvolution_desc_t dd;
    CHECK(dnnl_dilated_deconvolution_forward_desc_init(&dd, dnnl_forward_inference, dnnl_deconvolution_direct,
                                                       &src_md, &w_md, &b_md, &dst_md, strides, dil, pl, pr));
    CHECK(dnnl_primitive_attr_create(&attr));
    CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    if (npo) {
        CHECK(dnnl_post_ops_create(&pops));
        for (int i = 0; i < npo; i++)
            CHECK(dnnl_post_ops_append_eltwise(pops, 1.0f, po[i].alg, po[i].a, po[i].b));
        CHECK(dnnl_primitive_attr_set_post_ops(attr, pops));
    }
    /* keep the producer's layout when oneDNN has a fast kernel for it */
    int block = 0;
    dnnl_format_tag_t xt = rm_eng_layout_tag(x, &block);
    if (xt != dnnl_format_tag_any)
        pd = try_layout(p, &dd, xt, family_tag(block, rank), attr);
    else if (p->blocked_convs && rank == 4)
        pd = try_layout(p, &dd, OC >= 16 && IC >= 16 ? dnnl_aBcd16b : dnnl_abcd, dnnl_aBcd16b, attr);
    if (!pd && dnnl_primitive_desc_create(&pd, &dd, attr, p->eng, NULL) != dnnl_success) {
        /* a geometry oneDNN does not take: the C kernel, and the claimed consumers are
         * planned on their own */
        pd = NULL;
        for (int i = 0; i < nfused; i++)
            p->node_state[claimed[i]] = -2;
        *fallback = 1;
        goto done;
    }
    const dnnl_memory_desc_t *src_q = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *w_q = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *dst_q = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);

    struct step *s = rm_eng_new_step(p, node);
    dnnl_primitive_t prim, r;
    dnnl_memory_t wsrc, wmem, bmem;
    if (!s) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    s->last_node = last;
    void *wb = rm_eng_hp_buf(p, dnnl_memory_desc_get_size(w_q)), *bb = rm_eng_hp_buf(p, (size_t)OC * sizeof(float));
    if (!wb || !bb) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    memcpy(bb, btmp, (size_t)OC * sizeof(float));
    if ((rc = rm_eng_make_prim(p, &prim, pd, err)) || (rc = rm_eng_make_mem(p, &wsrc, &wp, wtmp, err)) ||
        (rc = rm_eng_make_mem(p, &wmem, w_q, wb, err)) || (rc = rm_eng_make_mem(p, &bmem, &b_md, bb, err)) ||
        (rc = rm_eng_make_reorder(p, &r, &wp, w_q, err)))
        goto done;
    dnnl_exec_arg_t wa[2] = {{DNNL_ARG_FROM, wsrc}, {DNNL_ARG_TO, wmem}};
    CHECK(dnnl_primitive_execute(r, p->strm, 2, wa));
    CHECK(dnnl_stream_wait(p->strm));

    dnnl_memory_t smem = x->mem;
    if (!dnnl_memory_desc_equal(src_q, &x->md) && (rc = rm_eng_add_reorder_in(p, s, x, src_q, &smem, err)))
        goto done;
    if ((rc = rm_eng_alloc_md(p, fin, dst_q, err)))
        goto done;
    fin->kind = V_ACT;
    dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, smem}, {DNNL_ARG_WEIGHTS, wmem}, {DNNL_ARG_BIAS, bmem},
                            {DNNL_ARG_DST, fin->mem}};
    if ((rc = rm_eng_add_ex(p, s, prim, 4, a)))
        goto done;
    s->written[s->n_written++] = cur;
    for (int i = 0; i < nfused; i++)
        p->vals[fused_vals[i]].kind = V_FUSED;
done:
    free(wtmp);
    free(btmp);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (pops)
        dnnl_post_ops_destroy(pops);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return rc;
}
