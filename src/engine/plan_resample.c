/* Resize and Upsample on oneDNN's resampling, in the input's own layout, where oneDNN
 * computes exactly what the node asks for. oneDNN samples output index y of an axis at
 * (y + 0.5) * in / out - 0.5 (in float): nearest rounds it half away from zero, linear
 * interpolates between its floor and ceiling clamped to the edges. That is ONNX's
 * half_pixel for sizes, and for other modes often the same map (asymmetric + floor
 * upsampling by an integer factor is half_pixel's map too). Rather than reasoning per
 * mode, the planner builds the node's taps (ops/resize.c) and oneDNN's for every output
 * index of every axis and uses oneDNN only when they agree: the same input index for
 * nearest, the same weights within 1e-6 for linear. Everything else (cubic,
 * align_corners, antialias, tf_crop_and_resize, a scale on the batch or channel axis)
 * runs the C kernel. */
#include "rm_engine_int.h"
#include "rm_ops_int.h"

#include <math.h>
#include <string.h>

/* oneDNN's source coordinate of output y (resampling_utils.hpp, in float). */
static float dnnl_coord(int64_t y, int64_t out, int64_t in)
{
    return ((float)y + 0.5f) * (float)in / (float)out - 0.5f;
}

/* Weight of input index i in output y's sample, as taps t give it. */
static double tap_weight(const struct rm_resize_taps *t, int64_t y, int64_t i)
{
    double w = 0;
    for (int64_t k = 0; k < t->n; k++)
        if (t->idx[y * t->n + k] == i)
            w += t->w[y * t->n + k];
    return w;
}

/* Whether oneDNN's resampling of this axis (alg) is the same map as taps t. */
static bool axis_matches(const struct rm_resize_taps *t, int64_t in, int64_t out, dnnl_alg_kind_t alg)
{
    if (t->any_outside || in <= 0 || out <= 0)
        return false;
    for (int64_t y = 0; y < out; y++) {
        float s = dnnl_coord(y, out, in);
        if (alg == dnnl_resampling_nearest) {
            int64_t i = (int64_t)roundf(s);
            if (i < 0 || i >= in || t->n != 1 || t->idx[y] != i)
                return false;
            continue;
        }
        /* linear: left = trunc(s) clamped at 0, right = ceil(s) clamped at in - 1 */
        int64_t left = s < 0 ? 0 : (int64_t)s;
        int64_t right = s < 0 ? 0 : (float)(int64_t)s == s ? (int64_t)s : (int64_t)s + 1;
        if (right > in - 1)
            right = in - 1;
        if (left > in - 1)
            left = in - 1;
        float wr = fabsf(s - (float)left), wl = 1.0f - wr;
        /* every input index either side reads, with its total weight */
        for (int64_t k = -1; k < t->n; k++) {
            int64_t i = k < 0 ? left : t->idx[y * t->n + k];
            double mine = tap_weight(t, y, i);
            double theirs = (i == left ? wl : 0) + (i == right ? wr : 0);
            if (fabs(mine - theirs) > 1e-6)
                return false;
        }
        if (fabs(tap_weight(t, y, right) - ((right == left ? wl : 0) + wr)) > 1e-6)
            return false;
    }
    return true;
}

/* A plain view of a constant value (NULL when v is). */
static const struct rm_host_tensor *view_of(const struct val *v, struct rm_host_tensor *t)
{
    if (!v)
        return NULL;
    memset(t, 0, sizeof *t);
    t->dtype = v->dtype;
    t->rank = v->rank;
    memcpy(t->dims, v->dims, sizeof t->dims);
    t->numel = v->numel;
    t->data = v->plain;
    return t;
}

int rm_plan_resize(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    int rc = 0;
    enum rm_op op = p->g->nodes[node].op;
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    struct val *x = rm_eng_in(p, node, 0), *o = rm_eng_out(p, node, 0);
    dnnl_primitive_desc_t pd = NULL;
    struct rm_resize r;
    struct rm_resize_in in;
    struct rm_host_tensor views[3];
    char why[240];
    *fallback = 1;
    if (!x->has_md || x->rank < 3 || x->rank > 5 || o->numel == 0)
        return 0;
    int idx[3];
    rm_resize_inputs(op, p->g->opset, &idx[0], &idx[1], &idx[2]);
    const struct rm_host_tensor *c[3] = {NULL, NULL, NULL};
    for (int k = 0; k < 3; k++) {
        struct val *v = idx[k] >= 0 ? rm_eng_in(p, node, (size_t)idx[k]) : NULL;
        if (v && v->kind != V_CONST)
            return 0;
        c[k] = view_of(v, &views[k]);
    }
    memset(&in, 0, sizeof in);
    in.roi = c[0], in.scales = c[1], in.sizes = c[2];
    in.roi_given = c[0] != NULL, in.scales_given = c[1] != NULL, in.sizes_given = c[2] != NULL;
    if ((rc = rm_resize_of(np, op, p->g->opset, x->rank, x->dims, &in, &r, why, sizeof why)))
        return rm_eng_node_err(p, node, rc, "%s", why);
    if (r.mode == RM_RS_CUBIC || r.in[0] != r.out[0] || r.in[1] != r.out[1] || r.scale[0] != 1 || r.scale[1] != 1)
        return 0;
    dnnl_alg_kind_t alg = r.mode == RM_RS_NEAREST ? dnnl_resampling_nearest : dnnl_resampling_linear;
    bool same = true;
    for (int a = 2; a < x->rank && same; a++) {
        struct rm_resize_taps t;
        if ((rc = rm_resize_taps_of(&r, a, &t, why, sizeof why)))
            return rm_eng_node_err(p, node, rc, "%s", why);
        same = axis_matches(&t, r.in[a], r.out[a], alg);
        rm_resize_taps_free(&t);
    }
    /* the batch and channel axes are copied: their taps are the identity unless a
     * scale of 1 meets a coordinate mode that moves it (tf_crop_and_resize) */
    if (!same || r.ctm == RM_CT_TF_CROP_AND_RESIZE)
        return 0;
    *fallback = 0;
    dnnl_memory_desc_t dst_md;
    dnnl_dims_t od;
    for (int i = 0; i < o->rank; i++)
        od[i] = o->dims[i];
    CHECK(dnnl_memory_desc_init_by_tag(&dst_md, o->rank, od, dnnl_f32, dnnl_format_tag_any));
    dnnl_resampling_desc_t rd;
    CHECK(dnnl_resampling_forward_desc_init(&rd, dnnl_forward_inference, alg, NULL, &x->md, &dst_md));
    if (dnnl_primitive_desc_create(&pd, &rd, rm_eng_sp_attr(p), p->eng, NULL) != dnnl_success) {
        pd = NULL;
        *fallback = 1;
        goto done;
    }
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
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_SRC, x->mem}, {DNNL_ARG_DST, o->mem}};
    if ((rc = rm_eng_add_ex(p, s, prim, 2, a)))
        goto done;
    s->written[s->n_written++] = p->g->nodes[node].outputs[0];
done:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}
