/* Convolution on oneDNN, with what fuses into it as post-ops (a BatchNorm folded into
 * the weights, element-wise activations, a residual Add), weights reordered once,
 * Winograd where it pays. */
#include "rm_engine_int.h"
#include "rm_fs.h"
#include "rm_ops_int.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- fusion ------------------------------------------------------------------ */

/* Eltwise equivalent of node (const parameters), or 0 when it has none. */
int rm_eng_eltwise_of(struct rm_plan *p, int node, struct postop *po, int *npo)
{
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    struct postop e = {0, dnnl_eltwise_relu, 0, 0};
    if (rm_eng_is(p, node, RM_OP_RELU)) {
    } else if (rm_eng_is(p, node, RM_OP_LEAKY_RELU)) {
        e.a = rm_node_attr_float(np, "alpha", 0.01f);
    } else if (rm_eng_is(p, node, RM_OP_SIGMOID)) {
        e.alg = dnnl_eltwise_logistic;
    } else if (rm_eng_is(p, node, RM_OP_HARD_SWISH)) {
        e.alg = dnnl_eltwise_hardswish;
    } else if (rm_eng_is(p, node, RM_OP_CLIP)) {
        struct val *lo = rm_eng_in(p, node, 1), *hi = rm_eng_in(p, node, 2);
        if ((lo && (lo->kind != V_CONST || lo->dtype != RM_F32 || lo->numel != 1)) ||
            (hi && (hi->kind != V_CONST || hi->dtype != RM_F32 || hi->numel != 1)))
            return 0;
        e.alg = dnnl_eltwise_clip_v2;
        e.a = lo ? ((float *)lo->plain)[0] : rm_node_attr_float(np, "min", -FLT_MAX);
        e.b = hi ? ((float *)hi->plain)[0] : rm_node_attr_float(np, "max", FLT_MAX);
    } else if (rm_eng_is(p, node, RM_OP_HARD_SIGMOID)) {
        e.alg = dnnl_eltwise_linear;
        e.a = rm_node_attr_float(np, "alpha", 0.2f);
        e.b = rm_node_attr_float(np, "beta", 0.5f);
        po[(*npo)++] = e;
        e.alg = dnnl_eltwise_clip_v2;
        e.a = 0;
        e.b = 1;
    } else {
        return rm_eng_math_eltwise_of(p, node, po, npo);
    }
    po[(*npo)++] = e;
    return 1;
}

/* x * gate(x), the way exporters write SiLU (Sigmoid, then Mul) and, before opset 14,
 * hardswish (HardSigmoid with alpha 1/6, beta 1/2, then Mul): value vi read by exactly
 * the gate and the Mul, the gate's output by the Mul alone, both not yet planned. Sets
 * the gate and Mul nodes and the one eltwise op they are; 0 when vi is not so read. */
static int gated_of(struct rm_plan *p, int vi, int *gate, int *mul, struct postop *e)
{
    const struct rm_value *gv = &p->g->values[vi];
    if (gv->output >= 0 || gv->n_consumers != 2)
        return 0;
    for (int k = 0; k < 2; k++) {
        int gn = gv->consumers[k], mn = gv->consumers[1 - k];
        const struct rm_node *g = &p->g->nodes[gn], *m = &p->g->nodes[mn];
        if (p->node_state[gn] != -2 || p->node_state[mn] != -2 || g->n_inputs != 1 || g->inputs[0] != vi ||
            g->n_outputs != 1 || g->outputs[0] < 0 || !rm_eng_is(p, mn, RM_OP_MUL) || m->n_inputs != 2)
            continue;
        int gy = g->outputs[0];
        if (!((m->inputs[0] == vi && m->inputs[1] == gy) || (m->inputs[0] == gy && m->inputs[1] == vi)) ||
            p->g->values[gy].output >= 0 || p->g->values[gy].n_consumers != 1 || m->outputs[0] < 0)
            continue;
        if (rm_eng_is(p, gn, RM_OP_SIGMOID)) {
            *e = (struct postop){0, dnnl_eltwise_swish, 1.0f, 0.0f};
        } else if (rm_eng_is(p, gn, RM_OP_HARD_SIGMOID) &&
                   fabsf(rm_node_attr_float(g->proto, "alpha", 0.2f) - 1.0f / 6) < 1e-7f &&
                   rm_node_attr_float(g->proto, "beta", 0.5f) == 0.5f) {
            *e = (struct postop){0, dnnl_eltwise_hardswish, 0.0f, 0.0f};
        } else {
            continue;
        }
        *gate = gn;
        *mul = mn;
        return 1;
    }
    return 0;
}

/* The single consumer of value vi if it may be fused into its producer, else -1. */
int rm_eng_sole_consumer(struct rm_plan *p, int vi)
{
    const struct rm_value *gv = &p->g->values[vi];
    if (gv->output >= 0 || gv->n_consumers != 1)
        return -1;
    int c = gv->consumers[0];
    if (p->node_state[c] != -2)
        return -1;
    return c;
}

/* ---- Conv ---------------------------------------------------------------------- */

/* Whether the buffer of activation vi may be overwritten by the step being built:
 * every other consumer ran in an earlier step, it is no graph output, and its layout
 * is md. Only with fuse=1 (rm_session_get then reports it as overwritten). */
static int can_clobber(struct rm_plan *p, int vi, const dnnl_memory_desc_t *md)
{
    const struct rm_value *gv = &p->g->values[vi];
    struct val *v = &p->vals[vi];
    if (!p->opts.fuse || v->kind != V_ACT || gv->output >= 0 || !v->has_md ||
        !dnnl_memory_desc_equal(&v->md, md) || v->clobber_step >= 0)
        return 0;
    if (v->place_in || v->place_host)
        return 0; /* a slice of a Concat's buffer (plan_concat.c), or holds some */
    int me = p->n_steps - 1, uses_here = 0;
    for (int k = 0; k < gv->n_consumers; k++) {
        int st = p->node_state[gv->consumers[k]];
        if (st == me)
            uses_here++;
        else if (st < 0 || st > me)
            return 0;
    }
    return uses_here == 1;
}

/* Whether a 2-D conv with weights [OC, ICg, kh, kw] runs on oneDNN's Winograd kernels:
 * 3x3, stride 1, no dilation, no groups, at least 16 channels each way (resnet18:
 * 11.5 -> 8.4 ms on 2 cores); oneDNN has no Winograd kernel for other shapes. */
static bool conv_is_wino(const struct rm_plan *p, int node, const int64_t *wdims, int wrank)
{
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    size_t ns, nd;
    const int64_t *st = rm_node_attr_ints(np, "strides", &ns);
    const int64_t *di = rm_node_attr_ints(np, "dilations", &nd);
    if (p->opts.direct_conv || p->opts.few_runs || wrank != 4 || rm_node_attr_int(np, "group", 1) != 1 || wdims[2] != 3 ||
        wdims[3] != 3 || wdims[0] < 16 || wdims[1] < 16)
        return false;
    for (size_t i = 0; st && i < ns; i++)
        if (st[i] != 1)
            return false;
    for (size_t i = 0; di && i < nd; i++)
        if (di[i] != 1)
            return false;
    return true;
}

/* Winograd kernels take only the channel-blocked layout (nChw16c) while oneDNN's own
 * pick for a direct conv is channels-last, so a model that mixes them pays a reorder on
 * each side of every direct conv (resnet18: 20 reorders, ~0.05 ms each). A model with
 * any Winograd conv therefore runs its other convs blocked too; a model without keeps
 * channels-last, where the brgemm kernels are faster (mobilenet_v2: 3.6 vs 3.8 ms).
 * A plan made for a few runs (a single `run`, a diff, an edit's verification) is mostly
 * its own build, and runs blocked: the blocked jit kernels are generated faster than the
 * brgemm ones (densenet121: 79 vs 134 ms, resnet50 and mobilenet_v2 alike) and DenseNet's
 * Concats work in place there (a verified prune: 0.87-0.97x the time, 6 models). */
void rm_eng_choose_conv_layout(struct rm_plan *p)
{
    if (p->opts.few_runs) {
        p->blocked_convs = 1;
        return;
    }
    for (size_t i = 0; i < p->g->n_nodes && !p->blocked_convs; i++) {
        const Onnx__NodeProto *np = p->g->nodes[i].proto;
        if (!rm_eng_is(p, (int)i, RM_OP_CONV) || np->n_input < 2)
            continue;
        const Onnx__TensorProto *w = rm_graph_const_tensor(p->g, p->g->nodes[i].inputs[1]);
        if (w && w->n_dims == 4)
            p->blocked_convs = conv_is_wino(p, (int)i, w->dims, 4);
    }
}

/* Descriptor for a conv whose src and dst take layout tag: nChw16c for a conv that
 * should run blocked (see choose_conv_layout; src stays plain when it arrives so with
 * under 16 channels: a first conv on RGB reads it as it is), or channels-last. The pd
 * is kept only when oneDNN has a jit kernel for it; otherwise *pd stays NULL and the
 * caller lets oneDNN choose. */
static void try_blocked_conv(struct rm_plan *p, const dnnl_convolution_desc_t *cd, const struct val *x,
                             const_dnnl_primitive_attr_t attr, dnnl_format_tag_t tag, dnnl_primitive_desc_t *pd)
{
    dnnl_convolution_desc_t b = *cd;
    const char *impl = NULL;
    *pd = NULL;
    if (b.src_desc.ndims != 4 ||
        dnnl_memory_desc_init_by_tag(&b.src_desc, 4, cd->src_desc.dims, dnnl_f32,
                                     tag == dnnl_aBcd16b && cd->src_desc.dims[1] < 16 && !x->blocked ? dnnl_abcd
                                                                                                   : tag) !=
            dnnl_success ||
        dnnl_memory_desc_init_by_tag(&b.dst_desc, 4, cd->dst_desc.dims, dnnl_f32, tag) != dnnl_success ||
        dnnl_primitive_desc_create(pd, &b, attr, p->eng, NULL) != dnnl_success) {
        *pd = NULL;
        return;
    }
    if (dnnl_primitive_desc_query(*pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl ||
        strncmp(impl, "jit", 3)) {
        dnnl_primitive_desc_destroy(*pd);
        *pd = NULL;
    }
}

int rm_plan_conv(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    int rc = 0;
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    struct val *x = rm_eng_in(p, node, 0), *w = rm_eng_in(p, node, 1), *b = rm_eng_in(p, node, 2);
    struct val *o = rm_eng_out(p, node, 0);
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t pops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    float *btmp = NULL;
    struct postop po[8];
    int npo = 0, sum_val = -1, bn = -1, last = node;
    int fused_vals[16], nfused = 0; /* two per link at most (a gate's input and output) */
    int wconst = w->kind == V_CONST && (!b || b->kind == V_CONST);
    int rank = x->rank, sp = rank - 2;
    int64_t g = rm_node_attr_int(np, "group", 1);
    int64_t OC = w->dims[0], ICg = w->dims[1], ksz = 1;
    for (int i = 2; i < rank; i++)
        ksz *= w->dims[i];
    struct rm_window win;
    char why[200];
    *fallback = 0;
    if ((rc = rm_window_of(np, x->rank, x->dims, w->dims + 2, false, &win, why, sizeof why)))
        return rm_eng_node_err(p, node, rc, "%s", why);

    /* fusion chain: [BN] then eltwise / residual Add in graph order */
    int cur = p->g->nodes[node].outputs[0];
    while (p->opts.fuse && npo < 6) {
        int gate, mul;
        if (gated_of(p, cur, &gate, &mul, &po[npo])) { /* SiLU, hardswish: one post-op */
            npo++;
            fused_vals[nfused++] = cur;
            fused_vals[nfused++] = p->g->nodes[gate].outputs[0];
            p->node_state[gate] = p->node_state[mul] = p->n_steps;
            last = mul;
            cur = p->g->nodes[mul].outputs[0];
            continue;
        }
        int c = rm_eng_sole_consumer(p, cur);
        if (c < 0 || p->g->nodes[c].inputs[0] < 0)
            break;
        const Onnx__NodeProto *cp = p->g->nodes[c].proto;
        int nout = p->g->nodes[c].outputs[0];
        for (size_t k = 1; k < cp->n_input; k++)
            if (p->g->nodes[c].inputs[k] >= 0 && (rc = rm_eng_early_const(p, p->g->nodes[c].inputs[k], err)))
                goto done;
        if (rm_eng_is(p, c, RM_OP_BATCH_NORM) && npo == 0 && bn < 0 && wconst &&
            p->g->nodes[c].inputs[0] == cur && (cp->n_output == 1 || !cp->output[1][0]) &&
            !rm_node_attr_int(cp, "training_mode", 0)) {
            int ok = 1;
            for (size_t k = 1; k < 5; k++) {
                struct val *v = rm_eng_in(p, c, k);
                ok &= v && v->kind == V_CONST && v->dtype == RM_F32 && v->numel == OC;
            }
            if (!ok)
                break;
            bn = c;
        } else if (rm_op_def(p->g->nodes[c].op)->plan == rm_plan_unary && p->g->nodes[c].inputs[0] == cur) {
            /* an element-wise op with an eltwise equivalent (Relu, Clip, Tanh, Gelu, ...) */
            if (!rm_eng_eltwise_of(p, c, po, &npo))
                break;
        } else if (rm_eng_is(p, c, RM_OP_ADD) && sum_val < 0 && cp->n_input == 2) {
            int other = p->g->nodes[c].inputs[0] == cur ? p->g->nodes[c].inputs[1]
                                                        : p->g->nodes[c].inputs[0];
            if (other < 0 || other == cur)
                break;
            struct val *ov = &p->vals[other];
            /* the addend must exist before this step runs and match the output exactly */
            if (ov->kind == V_UNSET || ov->kind == V_FUSED || ov->dtype != RM_F32 ||
                ov->rank != o->rank || memcmp(ov->dims, o->dims, sizeof(int64_t) * (size_t)o->rank) ||
                !ov->has_md)
                break;
            po[npo].sum = 1;
            npo++;
            sum_val = other;
        } else {
            break;
        }
        fused_vals[nfused++] = cur;
        p->node_state[c] = p->n_steps; /* claimed by the step made below */
        last = c;
        cur = nout;
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

    /* bias, BN folded; the weights are folded when the plan first runs (rm_eng_prep) */
    float bn_eps = bn >= 0 ? rm_node_attr_float(p->g->nodes[bn].proto, "epsilon", 1e-5f) : 0;
    if (wconst) {
        btmp = calloc((size_t)OC, 4);
        if (!btmp) {
            rc = rm_error_set(err, RM_ENOMEM, "out of memory");
            goto done;
        }
        if (b)
            memcpy(btmp, b->plain, (size_t)OC * 4);
        if (bn >= 0) {
            const float *sc = rm_eng_in(p, bn, 1)->plain, *be = rm_eng_in(p, bn, 2)->plain;
            const float *mu = rm_eng_in(p, bn, 3)->plain, *va = rm_eng_in(p, bn, 4)->plain;
            for (int64_t oc = 0; oc < OC; oc++) {
                float s = sc[oc] / sqrtf(va[oc] + bn_eps);
                btmp[oc] = (btmp[oc] - mu[oc]) * s + be[oc];
            }
        }
    }

    dnnl_memory_desc_t src_md, w_md, b_md, dst_md;
    dnnl_dims_t d, wd, bd, strides, dil, pl, pr;
    for (int i = 0; i < rank; i++)
        d[i] = x->dims[i];
    CHECK(dnnl_memory_desc_init_by_tag(&src_md, rank, d, dnnl_f32, dnnl_format_tag_any));
    for (int i = 0; i < rank; i++)
        d[i] = o->dims[i];
    CHECK(dnnl_memory_desc_init_by_tag(&dst_md, rank, d, dnnl_f32, dnnl_format_tag_any));
    int wr = 0;
    if (g > 1)
        wd[wr++] = g;
    wd[wr++] = OC / g;
    wd[wr++] = ICg;
    for (int i = 2; i < rank; i++)
        wd[wr++] = w->dims[i];
    CHECK(dnnl_memory_desc_init_by_tag(&w_md, wr, wd, dnnl_f32,
                                       wconst ? dnnl_format_tag_any : rm_eng_plain_tags[wr]));
    bd[0] = OC;
    int has_bias = wconst || b;
    CHECK(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_a));
    for (int i = 0; i < sp; i++) {
        strides[i] = win.s[i];
        dil[i] = win.d[i] - 1;
        pl[i] = win.pl[i];
        pr[i] = win.pr[i];
    }
    bool wino = conv_is_wino(p, node, w->dims, w->rank);
    dnnl_convolution_desc_t cd;
    CHECK(dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                                     wino ? dnnl_convolution_winograd : dnnl_convolution_direct,
                                                     &src_md, &w_md, has_bias ? &b_md : NULL, &dst_md,
                                                     strides, dil, pl, pr));
    CHECK(dnnl_primitive_attr_create(&attr));
    /* Winograd's transform buffers are the plan's shared scratchpad (on huge pages) */
    CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    if (npo) {
        CHECK(dnnl_post_ops_create(&pops));
        for (int i = 0; i < npo; i++) {
            if (po[i].sum)
                CHECK(dnnl_post_ops_append_sum(pops, 1.0f));
            else
                CHECK(dnnl_post_ops_append_eltwise(pops, 1.0f, po[i].alg, po[i].a, po[i].b));
        }
        CHECK(dnnl_primitive_attr_set_post_ops(attr, pops));
    }
    if (wino && dnnl_primitive_desc_create(&pd, &cd, attr, p->eng, NULL) != dnnl_success) {
        pd = NULL;
        cd.alg_kind = dnnl_convolution_direct;
    }
    if (!pd && p->blocked_convs)
        try_blocked_conv(p, &cd, x, attr, dnnl_aBcd16b, &pd);
    /* grouped convs: oneDNN's own pick is nChw8c, between channels-last 1x1 convs a
     * reorder on each side (regnet_y_400mf: 32 reorders a run); its jit kernel on
     * channels-last is as fast */
    if (!pd && !p->blocked_convs && g > 1 && ICg > 1 && x->blocked)
        try_blocked_conv(p, &cd, x, attr, dnnl_acdb, &pd);
    if (!pd)
        CHECK(dnnl_primitive_desc_create(&pd, &cd, attr, p->eng, NULL));
    const dnnl_memory_desc_t *src_q = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *w_q = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *dst_q = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);

    struct step *s = rm_eng_new_step(p, node);
    if (!s) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    s->last_node = last;
    dnnl_primitive_t prim;
    if ((rc = rm_eng_make_prim(p, &prim, pd, err)))
        goto done;

    /* weights and bias: reordered once, or read from the runtime tensor */
    dnnl_memory_t wmem, bmem = NULL;
    if (wconst) {
        dnnl_memory_desc_t wp;
        CHECK(dnnl_memory_desc_init_by_tag(&wp, wr, wd, dnnl_f32, rm_eng_plain_tags[wr]));
        size_t wn = (size_t)(OC * ICg * ksz);
        /* a weight already in the layout wanted (and no BatchNorm to fold) is read where
         * it is; else it is reordered (BN folded into a copy first) when the plan first
         * runs, so that a plan that never runs never pays for it */
        int in_place = bn < 0 && dnnl_memory_desc_equal(&wp, w_q);
        void *wb = in_place ? w->plain : rm_eng_hp_buf(p, dnnl_memory_desc_get_size(w_q));
        void *bb = rm_eng_hp_buf(p, (size_t)OC * 4);
        float *fold = bn >= 0 ? rm_eng_buf(p, wn * 4) : NULL;
        if (!wb || !bb || (bn >= 0 && !fold)) {
            rc = rm_error_set(err, RM_ENOMEM, "out of memory");
            goto done;
        }
        memcpy(bb, btmp, (size_t)OC * 4);
        if ((rc = rm_eng_make_mem(p, &wmem, w_q, wb, err)) || (rc = rm_eng_make_mem(p, &bmem, &b_md, bb, err)))
            goto done;
        if (!in_place) {
            struct rm_prep pr = {.to = wmem, .fold = fold, .w = w->plain, .n_oc = OC, .per_oc = ICg * ksz,
                                 .eps = bn_eps, .threads = p->omp_get ? p->omp_get() : 0};
            if (bn >= 0) {
                pr.sc = rm_eng_in(p, bn, 1)->plain;
                pr.va = rm_eng_in(p, bn, 4)->plain;
            }
            /* a weight the plan copied only because its bytes in the file are not aligned
             * (most of a torch export): the copy need not outlive the reorder */
            int wi = p->g->nodes[node].inputs[1];
            const Onnx__TensorProto *wt = rm_graph_const_tensor(p->g, wi);
            int wfd;
            uint64_t woff;
            if (w->heap_buf && p->g->values[wi].n_consumers == 1 && p->g->values[wi].output < 0 && wt &&
                wt->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && wt->has_raw_data &&
                wt->raw_data.len == wn * 4 && w->numel == (int64_t)wn &&
                rm_fs_map_source(wt->raw_data.data, wt->raw_data.len, &wfd, &woff) == 0) {
                pr.wv = w;
                pr.raw = wt->raw_data.data;
            }
            if ((rc = rm_eng_make_mem(p, &pr.from, &wp, fold ? (void *)fold : w->plain, err)) ||
                (rc = rm_eng_make_reorder(p, &pr.reorder, &wp, w_q, err)) || (rc = rm_eng_add_prep(p, &pr, err)))
                goto done;
        }
    } else {
        if ((rc = rm_eng_make_mem(p, &wmem, w_q, w->plain, err)) || (rc = rm_eng_reg_mem(p, wmem, w, 1, err)))
            goto done;
        s->plain_vals[s->n_plain++] = (int)(w - p->vals);
        if (b) {
            if ((rc = rm_eng_make_mem(p, &bmem, &b_md, b->plain, err)) || (rc = rm_eng_reg_mem(p, bmem, b, 1, err)))
                goto done;
            s->plain_vals[s->n_plain++] = (int)(b - p->vals);
        }
    }

    /* source: the producer's layout, reordered only when the conv wants another */
    dnnl_memory_t smem = x->mem;
    if (!dnnl_memory_desc_equal(src_q, &x->md))
        if ((rc = rm_eng_add_reorder_in(p, s, x, src_q, &smem, err)))
            goto done;

    if ((rc = rm_eng_alloc_md(p, fin, dst_q, err)))
        goto done;
    fin->kind = V_ACT;
    if (sum_val >= 0 && can_clobber(p, sum_val, dst_q)) {
        /* the addend is dead after this step and already in dst's layout: accumulate
         * into its buffer instead of copying it */
        struct val *sv = &p->vals[sum_val];
        fin->buf = sv->buf;
        fin->aliased = 1;
        if ((rc = rm_eng_make_mem(p, &fin->mem, dst_q, fin->buf, err)))
            goto done;
        sv->clobber_step = p->n_steps - 1;
    } else if (sum_val >= 0) {
        /* the sum post-op adds what dst holds: copy the addend in first */
        struct val *sv = &p->vals[sum_val];
        dnnl_primitive_t r;
        if ((rc = rm_eng_make_reorder(p, &r, &sv->md, dst_q, err)))
            goto done;
        dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, sv->mem}, {DNNL_ARG_TO, fin->mem}};
        if ((rc = rm_eng_add_ex(p, s, r, 2, a)))
            goto done;
    }
    dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, smem}, {DNNL_ARG_WEIGHTS, wmem}, {DNNL_ARG_DST, fin->mem},
                            {DNNL_ARG_BIAS, bmem}};
    if ((rc = rm_eng_add_ex(p, s, prim, bmem ? 4 : 3, a)))
        goto done;
    s->written[s->n_written++] = cur;
    for (int i = 0; i < nfused; i++)
        p->vals[fused_vals[i]].kind = V_FUSED;
done:
    free(btmp);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (pops)
        dnnl_post_ops_destroy(pops);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return rc;
}

/* One step running the primitive of pd from x to o (o's buffer laid out as pd's dst),
 * for the single-input ops oneDNN runs on blocked tensors (pooling, eltwise). */
