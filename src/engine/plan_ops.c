/* The other oneDNN planners: pooling, element-wise and binary ops, BatchNorm and
 * Concat on blocked tensors, and layout-preserving copies. Each falls back to the op's
 * C kernel where oneDNN does not cover the case. */
#include "rm_engine_int.h"
#include "rm_ops_int.h"

#include <stdlib.h>
#include <string.h>

static int add_src_dst_step(struct rm_plan *p, int node, const_dnnl_primitive_desc_t pd, struct val *x,
                            struct val *o, struct rm_error *err)
{
    int rc;
    struct step *s = rm_eng_new_step(p, node);
    dnnl_primitive_t prim;
    if (!s)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    if ((rc = rm_eng_make_prim(p, &prim, pd, err)) ||
        (rc = rm_eng_alloc_md(p, o, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), err)))
        return rc;
    o->kind = V_ACT;
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_SRC, x->mem}, {DNNL_ARG_DST, o->mem}};
    if ((rc = rm_eng_add_ex(p, s, prim, 2, a)))
        return rc;
    s->written[s->n_written++] = p->g->nodes[node].outputs[0];
    return 0;
}

/* ---- pooling ----------------------------------------------------------------- */

/* oneDNN pooling; *fallback set when oneDNN cannot express the ONNX semantics. */
int rm_plan_pool(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    int rc = 0;
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    struct val *x = rm_eng_in(p, node, 0), *o = rm_eng_out(p, node, 0);
    dnnl_primitive_desc_t pd = NULL;
    int global = rm_eng_is(p, node, RM_OP_GLOBAL_AVERAGE_POOL) || rm_eng_is(p, node, RM_OP_GLOBAL_MAX_POOL);
    int is_max = rm_eng_is(p, node, RM_OP_MAX_POOL) || rm_eng_is(p, node, RM_OP_GLOBAL_MAX_POOL);
    int incl = (int)rm_node_attr_int(np, "count_include_pad", 0);
    int sp = x->rank - 2;
    dnnl_dims_t st, k, dl, pl, pr, od;
    *fallback = 0;
    if (!x->has_md || o->numel == 0 || x->rank > 5 || rm_eng_out(p, node, 1)) {
        *fallback = 1;
        return 0;
    }
    if (global) {
        for (int i = 0; i < sp; i++) {
            st[i] = 1;
            k[i] = x->dims[2 + i];
            dl[i] = pl[i] = pr[i] = 0;
        }
    } else {
        struct rm_window w;
        size_t nk;
        char why[200];
        if ((rc = rm_window_of(np, x->rank, x->dims, rm_node_attr_ints(np, "kernel_shape", &nk), true, &w, why,
                               sizeof why)))
            return rm_eng_node_err(p, node, rc, "%s", why);
        /* a window with more taps than the input plane has elements: oneDNN steps through
         * every tap (10^12 for a 10^6 x 10^6 window, hostile), the C kernel only through
         * those inside the input */
        double taps = 1, plane = 1;
        for (int i = 0; i < sp; i++)
            taps *= (double)w.k[i], plane *= (double)x->dims[2 + i];
        if (taps > plane) {
            *fallback = 1;
            return 0;
        }
        for (int i = 0; i < sp; i++) {
            int64_t eff = (w.k[i] - 1) * w.d[i] + 1;
            st[i] = w.s[i];
            k[i] = w.k[i];
            dl[i] = w.d[i] - 1;
            pl[i] = w.pl[i];
            /* right padding that makes oneDNN's floor formula give the ONNX size */
            pr[i] = (w.out[i] - 1) * w.s[i] + eff - x->dims[2 + i] - w.pl[i];
            if (pr[i] < 0 || (!is_max && incl && pr[i] > w.pr[i]) || pl[i] >= eff || pr[i] >= eff) {
                *fallback = 1;
                return 0;
            }
        }
    }
    for (int i = 0; i < o->rank; i++)
        od[i] = o->dims[i];
    dnnl_memory_desc_t dst_md;
    CHECK(dnnl_memory_desc_init_by_tag(&dst_md, o->rank, od, dnnl_f32, dnnl_format_tag_any));
    dnnl_pooling_v2_desc_t pdsc;
    dnnl_alg_kind_t alg = is_max ? dnnl_pooling_max
                                 : incl ? dnnl_pooling_avg_include_padding : dnnl_pooling_avg_exclude_padding;
    CHECK(dnnl_pooling_v2_forward_desc_init(&pdsc, dnnl_forward_inference, alg, &x->md, &dst_md, st, k,
                                            dl, pl, pr));
    if (dnnl_primitive_desc_create(&pd, &pdsc, rm_eng_sp_attr(p), p->eng, NULL) != dnnl_success) {
        pd = NULL;
        *fallback = 1;
        goto done;
    }
    rc = add_src_dst_step(p, node, pd, x, o, err);
done:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* ---- eltwise on blocked tensors ------------------------------------------------ */

static int plan_eltwise(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    int rc = 0;
    struct val *x = rm_eng_in(p, node, 0), *o = rm_eng_out(p, node, 0);
    dnnl_primitive_desc_t pd = NULL;
    struct postop po[2];
    int npo = 0;
    *fallback = 1;
    if (!x->blocked || rm_eng_is(p, node, RM_OP_HARD_SIGMOID) || !rm_eng_eltwise_of(p, node, po, &npo))
        return 0;
    *fallback = 0;
    dnnl_eltwise_desc_t ed;
    CHECK(dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_inference, po[0].alg, &x->md, po[0].a, po[0].b));
    CHECK(dnnl_primitive_desc_create(&pd, &ed, rm_eng_sp_attr(p), p->eng, NULL));
    rc = add_src_dst_step(p, node, pd, x, o, err);
done:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* ---- binary on blocked tensors ------------------------------------------------- */

/* The operand b of a broadcast binary op with a, as oneDNN's jit kernels take it: in
 * a's layout (a squeeze-excite scale [1, C, 1, 1] in nChw16c beside a blocked a; a
 * plain one there sends oneDNN to its reference kernel, regnet_y_400mf's Muls took 78%
 * of its run). A b in another layout is reordered as part of step s, a constant b once
 * now; b_md and *bmem are what the binary reads. */
static int broadcast_operand(struct rm_plan *p, struct step *s, struct val *a, struct val *b, dnnl_memory_desc_t *b_md,
                             dnnl_memory_t *bmem, struct rm_error *err)
{
    int rc = 0;
    int64_t bd[RM_MAX_RANK];
    dnnl_dims_t dd;
    for (int i = 0; i < a->rank; i++) {
        int ib = i - (a->rank - b->rank);
        bd[i] = ib >= 0 ? b->dims[ib] : 1;
        dd[i] = bd[i];
    }
    /* what b is now: its own layout, or a plain view with a's rank */
    dnnl_memory_desc_t src_md;
    dnnl_memory_t src_mem;
    if (b->rank == a->rank && b->has_md) {
        src_md = b->md;
        src_mem = b->mem;
    } else {
        if (rm_eng_plain_md(&src_md, a->rank, bd))
            return rm_error_set(err, RM_EUNSUPPORTED, "cannot describe broadcast operand");
        if ((rc = rm_eng_make_mem(p, &src_mem, &src_md, b->plain, err)) || (rc = rm_eng_reg_mem(p, src_mem, b, 1, err)))
            return rc;
        s->plain_vals[s->n_plain++] = (int)(b - p->vals);
    }
    *b_md = src_md;
    *bmem = src_mem;
    dnnl_format_tag_t tag = rm_eng_layout_tag(a, NULL);
    dnnl_memory_desc_t want;
    if (tag == dnnl_format_tag_any || dnnl_memory_desc_init_by_tag(&want, a->rank, dd, dnnl_f32, tag) != dnnl_success ||
        dnnl_memory_desc_equal(&want, &src_md))
        return 0;
    /* into a's layout: a reorder of C values */
    dnnl_primitive_t r;
    void *buf = rm_eng_buf(p, dnnl_memory_desc_get_size(&want));
    if (!buf)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    if ((rc = rm_eng_make_mem(p, bmem, &want, buf, err)) || (rc = rm_eng_make_reorder(p, &r, &src_md, &want, err)))
        return rc;
    *b_md = want;
    dnnl_exec_arg_t ar[2] = {{DNNL_ARG_FROM, src_mem}, {DNNL_ARG_TO, *bmem}};
    if (b->kind != V_CONST)
        return rm_eng_add_ex(p, s, r, 2, ar);
    CHECK(dnnl_primitive_execute(r, p->strm, 2, ar));
    CHECK(dnnl_stream_wait(p->strm));
done:
    return rc;
}

int rm_plan_binary(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    int rc = 0;
    struct val *a = rm_eng_in(p, node, 0), *b = rm_eng_in(p, node, 1), *o = rm_eng_out(p, node, 0);
    dnnl_primitive_desc_t pd = NULL;
    int commut = rm_eng_is(p, node, RM_OP_ADD) || rm_eng_is(p, node, RM_OP_MUL) || rm_eng_is(p, node, RM_OP_MIN) ||
                 rm_eng_is(p, node, RM_OP_MAX);
    *fallback = 1;
    if (p->g->nodes[node].proto->n_input != 2 || !a || !b || o->dtype != RM_F32 || !(a->blocked || b->blocked) ||
        !a->has_md || !b->has_md)
        return 0;
    if (a->rank != o->rank || memcmp(a->dims, o->dims, sizeof(int64_t) * (size_t)o->rank)) {
        if (!commut || b->rank != o->rank || memcmp(b->dims, o->dims, sizeof(int64_t) * (size_t)o->rank))
            return 0;
        struct val *t = a;
        a = b;
        b = t;
    }
    *fallback = 0;
    dnnl_alg_kind_t alg = rm_eng_is(p, node, RM_OP_ADD)   ? dnnl_binary_add
                          : rm_eng_is(p, node, RM_OP_SUB) ? dnnl_binary_sub
                          : rm_eng_is(p, node, RM_OP_MUL) ? dnnl_binary_mul
                          : rm_eng_is(p, node, RM_OP_MIN) ? dnnl_binary_min
                          : rm_eng_is(p, node, RM_OP_MAX) ? dnnl_binary_max
                                                          : dnnl_binary_div;
    struct step *s = rm_eng_new_step(p, node);
    if (!s)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    int same = b->rank == a->rank && !memcmp(b->dims, a->dims, sizeof(int64_t) * (size_t)a->rank);
    dnnl_memory_desc_t b_md;
    dnnl_memory_t bmem;
    if (same) {
        b_md = a->md;
        bmem = b->mem;
        if (!dnnl_memory_desc_equal(&b->md, &a->md))
            if ((rc = rm_eng_add_reorder_in(p, s, b, &a->md, &bmem, err)))
                goto done;
    } else if ((rc = broadcast_operand(p, s, a, b, &b_md, &bmem, err))) {
        goto done;
    }
    dnnl_binary_desc_t bdsc;
    CHECK(dnnl_binary_desc_init(&bdsc, alg, &a->md, &b_md, &a->md));
    CHECK(dnnl_primitive_desc_create(&pd, &bdsc, rm_eng_sp_attr(p), p->eng, NULL));
    dnnl_primitive_t prim;
    if ((rc = rm_eng_make_prim(p, &prim, pd, err)) || (rc = rm_eng_alloc_md(p, o, &a->md, err)))
        goto done;
    o->kind = V_ACT;
    dnnl_exec_arg_t ar[3] = {{DNNL_ARG_SRC_0, a->mem}, {DNNL_ARG_SRC_1, bmem}, {DNNL_ARG_DST, o->mem}};
    if ((rc = rm_eng_add_ex(p, s, prim, 3, ar)))
        goto done;
    s->written[s->n_written++] = p->g->nodes[node].outputs[0];
done:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* ---- BatchNormalization on blocked tensors ------------------------------------- */

/* Inference BatchNormalization with constant statistics that could not be folded
 * into a convolution (a BN after a Concat, as in DenseNet), keeping the input's
 * layout; a following Relu joins it. fuse=1 only. */
int rm_plan_batch_norm(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    int rc = 0;
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    struct val *x = rm_eng_in(p, node, 0), *o = rm_eng_out(p, node, 0), *par[5];
    dnnl_primitive_desc_t pd = NULL;
    *fallback = 1;
    /* fuse=0 keeps the C kernel: its per-element arithmetic does not depend on the
     * channel count, so a pruned model's kept channels match bit for bit in diffs */
    if (!p->opts.fuse || !x->has_md || x->rank < 2 || x->rank > 5 || x->numel == 0)
        return 0;
    for (size_t k = 1; k < 5; k++) {
        par[k] = rm_eng_in(p, node, k);
        if (!par[k] || par[k]->kind != V_CONST || par[k]->dtype != RM_F32 || !par[k]->has_md)
            return 0;
    }
    *fallback = 0;
    unsigned flags = dnnl_use_global_stats | dnnl_use_scale | dnnl_use_shift;
    int last = node, ov = p->g->nodes[node].outputs[0];
    int c = p->opts.fuse ? rm_eng_sole_consumer(p, ov) : -1;
    if (c >= 0 && rm_eng_is(p, c, RM_OP_RELU) && p->g->nodes[c].inputs[0] == ov) {
        flags |= dnnl_fuse_norm_relu;
        last = c;
    }
    dnnl_batch_normalization_desc_t bd;
    CHECK(dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_inference, &x->md,
                                                     rm_node_attr_float(np, "epsilon", 1e-5f), flags));
    CHECK(dnnl_primitive_desc_create(&pd, &bd, rm_eng_sp_attr(p), p->eng, NULL));
    struct step *s = rm_eng_new_step(p, node);
    dnnl_primitive_t prim;
    if (!s) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    struct val *fin = o;
    if (last != node) {
        p->node_state[last] = p->n_steps - 1;
        s->last_node = last;
        o->kind = V_FUSED;
        fin = rm_eng_out(p, last, 0);
        fin->dtype = RM_F32;
        fin->rank = o->rank;
        memcpy(fin->dims, o->dims, sizeof o->dims);
        fin->numel = o->numel;
    }
    if ((rc = rm_eng_make_prim(p, &prim, pd, err)) ||
        (rc = rm_eng_alloc_md(p, fin, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), err)))
        goto done;
    fin->kind = V_ACT;
    dnnl_exec_arg_t a[6] = {{DNNL_ARG_SRC, x->mem},        {DNNL_ARG_DST, fin->mem},
                            {DNNL_ARG_SCALE, par[1]->mem}, {DNNL_ARG_SHIFT, par[2]->mem},
                            {DNNL_ARG_MEAN, par[3]->mem},  {DNNL_ARG_VARIANCE, par[4]->mem}};
    if ((rc = rm_eng_add_ex(p, s, prim, 6, a)))
        goto done;
    s->written[s->n_written++] = (int)(fin - p->vals);
done:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* ---- concat on blocked tensors ------------------------------------------------- */

int rm_plan_concat(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    int rc = 0;
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    struct val *o = rm_eng_out(p, node, 0);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_desc_t *mds = NULL;
    dnnl_exec_arg_t *args = NULL;
    int n = (int)np->n_input, blocked = 0, in_place = 0;
    *fallback = 1;
    /* inputs written straight into slices of the output: no copy (plan_concat.c) */
    if ((rc = rm_eng_concat_shuffle(p, node, &in_place, err)) || in_place ||
        (rc = rm_eng_concat_in_place(p, node, &in_place, err)) || in_place) {
        *fallback = 0;
        return rc;
    }
    if (o->dtype != RM_F32 || o->rank > 6 || n < 1)
        return 0;
    for (int k = 0; k < n; k++) {
        struct val *v = rm_eng_in(p, node, (size_t)k);
        if (!v || !v->has_md || v->numel == 0)
            return 0;
        blocked |= v->blocked;
    }
    if (!blocked)
        return 0;
    *fallback = 0;
    /* at offsets that split blocks: the engine's own copy, not oneDNN's reference one */
    int planned = 0;
    if ((rc = rm_eng_concat_blocked(p, node, &planned, err)) || planned)
        return rc;
    int64_t axis = rm_node_attr_int(np, "axis", 0);
    if (axis < 0)
        axis += o->rank;
    mds = malloc(sizeof *mds * (size_t)n);
    args = malloc(sizeof *args * (size_t)(n + 1));
    if (!mds || !args) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    for (int k = 0; k < n; k++)
        mds[k] = rm_eng_in(p, node, (size_t)k)->md;
    dnnl_memory_desc_t dst_md;
    dnnl_dims_t od;
    for (int i = 0; i < o->rank; i++)
        od[i] = o->dims[i];
    /* keep the inputs' layout: oneDNN's own choice for "any" is plain here */
    dnnl_format_tag_t tag = dnnl_format_tag_any;
    for (int k = 0; k < n && tag == dnnl_format_tag_any; k++)
        tag = rm_eng_layout_tag(rm_eng_in(p, node, (size_t)k), NULL);
    CHECK(dnnl_memory_desc_init_by_tag(&dst_md, o->rank, od, dnnl_f32, tag));
    CHECK(dnnl_concat_primitive_desc_create(&pd, &dst_md, n, (int)axis, mds, rm_eng_sp_attr(p), p->eng));
    struct step *s = rm_eng_new_step(p, node);
    dnnl_primitive_t prim;
    if (!s) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = rm_eng_make_prim(p, &prim, pd, err)) ||
        (rc = rm_eng_alloc_md(p, o, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), err)))
        goto done;
    o->kind = V_ACT;
    for (int k = 0; k < n; k++) {
        args[k].arg = DNNL_ARG_MULTIPLE_SRC + k;
        args[k].memory = rm_eng_in(p, node, (size_t)k)->mem;
    }
    args[n].arg = DNNL_ARG_DST;
    args[n].memory = o->mem;
    if ((rc = rm_eng_add_ex(p, s, prim, n + 1, args)))
        goto done;
    s->written[s->n_written++] = p->g->nodes[node].outputs[0];
done:
    free(mds);
    free(args);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* ---- layout-preserving copies ------------------------------------------------------ */

/* Identity, Dropout and a Pad that pads nothing keep a blocked input's layout: one
 * reorder (a plain copy) instead of a round trip through the plain layout. */
int rm_plan_copy(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    int rc = 0;
    struct val *x = rm_eng_in(p, node, 0), *o = rm_eng_out(p, node, 0);
    *fallback = 1;
    if (!x->blocked || o->rank != x->rank || memcmp(o->dims, x->dims, sizeof(int64_t) * (size_t)x->rank))
        return 0;
    *fallback = 0;
    struct step *s = rm_eng_new_step(p, node);
    dnnl_primitive_t r;
    if (!s)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    if ((rc = rm_eng_alloc_md(p, o, &x->md, err)) || (rc = rm_eng_make_reorder(p, &r, &x->md, &x->md, err)))
        return rc;
    o->kind = V_ACT;
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, x->mem}, {DNNL_ARG_TO, o->mem}};
    if ((rc = rm_eng_add_ex(p, s, r, 2, a)))
        return rc;
    s->written[s->n_written++] = p->g->nodes[node].outputs[0];
    return 0;
}

/* Relu, LeakyRelu, Clip, Sigmoid, HardSwish on a blocked float input: oneDNN eltwise. */
int rm_plan_unary(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    struct val *x = rm_eng_in(p, node, 0);
    struct postop tmp[2];
    int n = 0;
    *fallback = 1;
    if (x->dtype != RM_F32 || !rm_eng_eltwise_of(p, node, tmp, &n))
        return 0;
    return plan_eltwise(p, node, fallback, err);
}

/* A Pad that pads nothing is a copy. Only all-zero pads count: pads that crop on one
 * side and pad on the other also keep the dims. */
int rm_plan_pad(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    struct val *pv = rm_eng_in(p, node, 1);
    size_t na;
    const int64_t *pa = rm_node_attr_ints(p->g->nodes[node].proto, "pads", &na);
    int nothing = 1;
    *fallback = 1;
    if (pv && pv->kind == V_CONST && pv->dtype == RM_I64) {
        for (int64_t k = 0; k < pv->numel; k++)
            nothing &= ((int64_t *)pv->plain)[k] == 0;
    } else if (pa) {
        for (size_t k = 0; k < na; k++)
            nothing &= pa[k] == 0;
    } else {
        nothing = 0;
    }
    return nothing ? rm_plan_copy(p, node, fallback, err) : 0;
}

