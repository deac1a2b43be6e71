/* Concat without a copy: each input is placed in a channel slice of the output's
 * buffer, so its producer (a conv, a pool, a C kernel, ...) writes straight there and
 * the Concat's step does nothing. A slice is one contiguous run of the output's buffer
 * when everything before the axis has size 1: batch 1 and the channel axis on a plain
 * (nchw) layout, or on a channel-blocked one (nChw16c, nChw8c) when every slice starts
 * on a block boundary. An input that is itself a Concat's output placed this way (or
 * holds other values so) is placed whole, with what it holds: DenseNet's concat chains
 * (each layer concatenates all earlier features) become one buffer per dense block,
 * each layer writing its slice once (densenet121 copied 26% of its run).
 *
 * A Slice keeping one contiguous run of a plain input is placed the same way, in its
 * input's buffer; ShuffleNet's Concat + channel shuffle is one step of reorders.
 *
 * Placement is decided while planning; the memory planner (memory.c) gives each group of
 * placed values one buffer that lives from the first write of any of them to the last
 * read of any of them. */
#include "rm_engine_int.h"
#include "rm_ops_int.h"

#include <stdlib.h>
#include <string.h>

/* The value whose buffer holds vi's (vi itself when it is placed nowhere), and vi's
 * byte offset in it. Shortens the chain it walks (DenseNet's chains grow one link per
 * layer). */
int rm_eng_place_top(struct rm_plan *p, int vi, size_t *off)
{
    size_t o = 0;
    int t = vi;
    while (p->vals[t].place_in) {
        o += p->vals[t].place_off;
        t = p->vals[t].place_in - 1;
    }
    size_t rest = o;
    for (int c = vi; p->vals[c].place_in;) {
        int up = p->vals[c].place_in - 1;
        size_t step = p->vals[c].place_off;
        p->vals[c].place_in = t + 1;
        p->vals[c].place_off = rest;
        rest -= step;
        c = up;
    }
    *off = o;
    return t;
}

/* Whether value vi may live in a slice of another buffer laid out as md (its own
 * dims, the Concat's layout): an activation that a step writes whole, that no step
 * writes in place of another value or accumulates into, and that is no graph output
 * (an output keeps its own buffer past the run; the slice is shared after its last
 * read). */
static int placeable(struct rm_plan *p, int vi, dnnl_format_tag_t tag)
{
    struct val *v = &p->vals[vi];
    const struct rm_value *gv = &p->g->values[vi];
    if (v->kind != V_ACT || v->dtype != RM_F32 || !v->has_md || v->numel == 0 || gv->output >= 0 ||
        v->clobber_step >= 0 || v->aliased || gv->producer < 0)
        return 0;
    dnnl_memory_desc_t md;
    dnnl_dims_t d;
    for (int i = 0; i < v->rank; i++)
        d[i] = v->dims[i];
    if (dnnl_memory_desc_init_by_tag(&md, v->rank, d, dnnl_f32, tag) != dnnl_success ||
        !dnnl_memory_desc_equal(&md, &v->md) || dnnl_memory_desc_get_size(&md) != v->bytes)
        return 0;
    int st = p->node_state[gv->producer];
    if (st < 0 || st >= p->n_steps)
        return 0;
    for (int k = 0; k < p->steps[st].n_written; k++)
        if (p->steps[st].written[k] == vi)
            return 1;
    return 0;
}

int rm_eng_concat_in_place(struct rm_plan *p, int node, int *planned, struct rm_error *err)
{
    int rc = 0;
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    struct val *o = rm_eng_out(p, node, 0);
    int n = (int)np->n_input, ov = p->g->nodes[node].outputs[0];
    int *top = NULL;
    size_t *at = NULL, *disp = NULL;
    *planned = 0;
    if (o->dtype != RM_F32 || o->rank < 1 || o->rank > 6 || n < 1 || o->numel == 0)
        return 0;
    int64_t axis = rm_node_attr_int(np, "axis", 0);
    if (axis < 0)
        axis += o->rank;
    if (axis < 0 || axis >= o->rank)
        return 0;
    /* the layout every input shares: plain, or channel-blocked by 8 or 16 */
    struct val *x0 = rm_eng_in(p, node, 0);
    if (!x0 || !x0->has_md)
        return 0;
    int block = 0;
    dnnl_format_tag_t tag = x0->blocked ? rm_eng_layout_tag(x0, &block) : rm_eng_plain_tags[o->rank];
    if (x0->blocked && (tag == dnnl_format_tag_any || block == 0 || axis != 1))
        return 0; /* channels-last: a channel slice is strided, not contiguous */
    int64_t cb = x0->blocked ? (block == 1 ? 16 : 8) : 1, outer = 1, unit = 4;
    for (int i = 0; i < axis; i++)
        outer *= o->dims[i];
    for (int i = (int)axis + 1; i < o->rank; i++)
        unit *= o->dims[i];
    if (outer != 1)
        return 0;
    dnnl_memory_desc_t omd;
    dnnl_dims_t od;
    for (int i = 0; i < o->rank; i++)
        od[i] = o->dims[i];
    if (dnnl_memory_desc_init_by_tag(&omd, o->rank, od, dnnl_f32, tag) != dnnl_success)
        return 0;
    size_t obytes = dnnl_memory_desc_get_size(&omd);

    top = malloc(sizeof *top * (size_t)n);
    at = malloc(sizeof *at * (size_t)n);
    disp = malloc(sizeof *disp * (size_t)n);
    if (!top || !at || !disp) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    /* each input's slice, and where it lives now: every value holding inputs must be
     * placeable itself, at one displacement, and be covered exactly by the inputs it
     * holds (nothing else of it may land under another input's slice) */
    int64_t c = 0;
    for (int k = 0; k < n; k++) {
        int vi = p->g->nodes[node].inputs[k];
        struct val *v = vi >= 0 ? &p->vals[vi] : NULL;
        if (!v || !v->has_md || v->rank != o->rank || (c % cb))
            goto done;
        for (int i = 0; i < o->rank; i++)
            if (i != axis && v->dims[i] != o->dims[i])
                goto done;
        size_t slot = (size_t)(c * unit);
        top[k] = rm_eng_place_top(p, vi, &at[k]);
        if (at[k] > slot || (slot - at[k]) % (size_t)(cb * unit))
            goto done;
        disp[k] = slot - at[k];
        c += v->dims[axis];
    }
    if (c != o->dims[axis])
        goto done;
    for (int k = 0; k < n; k++) {
        int first = 1;
        int64_t covered = 0;
        for (int j = 0; j < n; j++) {
            if (top[j] != top[k])
                continue;
            if (j < k)
                first = 0;
            if (disp[j] != disp[k])
                goto done;
            covered += rm_eng_in(p, node, (size_t)j)->dims[axis];
        }
        struct val *t = &p->vals[top[k]];
        if (!first)
            continue;
        if (!placeable(p, top[k], tag) || t->rank != o->rank || covered != t->dims[axis] ||
            disp[k] + t->bytes > obytes || top[k] == ov)
            goto done;
        for (int i = 0; i < o->rank; i++)
            if (i != axis && t->dims[i] != o->dims[i])
                goto done;
    }

    /* place them and make the step that writes nothing */
    struct step *s = rm_eng_new_step(p, node);
    if (!s) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = rm_eng_alloc_md(p, o, &omd, err)))
        goto done;
    o->kind = V_ACT;
    s->written[s->n_written++] = ov;
    for (int k = 0; k < n; k++) {
        struct val *t = &p->vals[top[k]];
        if (t->place_in)
            continue; /* placed for an earlier input */
        t->place_in = ov + 1;
        t->place_off = disp[k];
        o->place_host = 1;
    }
    *planned = 1;
done:
    free(top);
    free(at);
    free(disp);
    return rc;
}

/* ---- slices as views -------------------------------------------------------------- */

/* A Slice of a plain activation that keeps one contiguous run of it (everything
 * before the sliced axis of size 1, everything after it whole, step 1: ShuffleNet's
 * channel halves at batch 1) is a view: its output is placed in the input's buffer
 * and its step copies nothing. *planned 0 otherwise. */
static int slice_view(struct rm_plan *p, int node, int *planned, struct rm_error *err)
{
    int rc = 0;
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    int xi = p->g->nodes[node].inputs[0], ov = p->g->nodes[node].outputs[0];
    struct val *x = xi >= 0 ? &p->vals[xi] : NULL, *o = &p->vals[ov];
    struct rm_host_tensor c[5];
    const struct rm_host_tensor *cp[5] = {NULL};
    struct rm_slice sl;
    char why[200];
    *planned = 0;
    /* (an output that is a graph output keeps a buffer of its own past the run) */
    if (!x || x->kind != V_ACT || x->blocked || !x->has_md || x->clobber_step >= 0 || x->aliased ||
        o->dtype != x->dtype || o->rank != x->rank || o->numel == 0 || np->n_output != 1 ||
        p->g->values[ov].output >= 0)
        return 0;
    for (size_t k = 1; k < 5 && k < np->n_input; k++) {
        struct val *v = rm_eng_in(p, node, k);
        if (!v)
            continue;
        if (v->kind != V_CONST)
            return 0;
        memset(&c[k], 0, sizeof c[k]);
        c[k].dtype = v->dtype;
        c[k].rank = v->rank;
        memcpy(c[k].dims, v->dims, sizeof v->dims);
        c[k].numel = v->numel;
        c[k].data = v->plain;
        cp[k] = &c[k];
    }
    if (rm_slice_of(np, p->g->opset, x->rank, x->dims, cp[1], cp[2], cp[3], cp[4], &sl, why, sizeof why))
        return 0; /* the C kernel says why */
    int a = 0;
    while (a < x->rank && sl.count[a] == x->dims[a])
        a++;
    int64_t inner = 1;
    for (int i = 0; i < x->rank; i++) {
        if (i < a && x->dims[i] != 1)
            return 0;
        if (i > a && (sl.count[i] != x->dims[i] || sl.start[i] != 0 || sl.step[i] != 1))
            return 0;
        if (i > a)
            inner *= x->dims[i];
        if (sl.count[i] != o->dims[i])
            return 0;
    }
    if (a < x->rank && (sl.step[a] != 1 || sl.start[a] < 0 || sl.start[a] + sl.count[a] > x->dims[a]))
        return 0;
    size_t off = a < x->rank ? (size_t)(sl.start[a] * inner) * rm_eng_dtype_bytes(x->dtype) : 0;
    struct step *s = rm_eng_new_step(p, node);
    if (!s)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    if ((rc = rm_eng_alloc_plain(p, o, err)))
        return rc;
    o->kind = V_ACT;
    s->written[s->n_written++] = ov;
    o->place_in = xi + 1;
    o->place_off = off;
    x->place_host = 1;
    *planned = 1;
    return 0;
}

int rm_plan_slice(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    int planned = 0, rc = slice_view(p, node, &planned, err);
    *fallback = !planned;
    return rc;
}

/* ---- channel shuffle ------------------------------------------------------------- */

/* The consumer of value vi if it is the only one and runs op, else -1. */
static int only_consumer(struct rm_plan *p, int vi, enum rm_op op)
{
    int c = rm_eng_sole_consumer(p, vi);
    return c >= 0 && rm_eng_is(p, c, op) && p->g->nodes[c].inputs[0] == vi ? c : -1;
}

/* ShuffleNet's Concat -> Reshape [N, g, C/g, H, W] -> Transpose (0, 2, 1, 3, 4) ->
 * Reshape [N, C, H, W] as one step: each input, lying in one of the g groups, is
 * reordered straight to its strided place in the shuffled (plain) output, one copy
 * instead of five (the concat, a plain shadow of it, the reshapes and the transpose).
 * fuse=1 only (the intermediates are not kept). *planned 0 when the pattern differs. */
static int concat_shuffle(struct rm_plan *p, int node, int *planned, struct rm_error *err)
{
    int rc = 0;
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    struct val *o = rm_eng_out(p, node, 0);
    int n = (int)np->n_input, ov = p->g->nodes[node].outputs[0];
    *planned = 0;
    if (!p->opts.fuse || o->dtype != RM_F32 || o->rank != 4 || n < 1 || n > 4 || o->numel == 0)
        return 0;
    int64_t axis = rm_node_attr_int(np, "axis", 0);
    if (axis != 1 && axis != -3)
        return 0;
    int r1 = only_consumer(p, ov, RM_OP_RESHAPE);
    int r1o = r1 >= 0 ? p->g->nodes[r1].outputs[0] : -1;
    int t = r1o >= 0 ? only_consumer(p, r1o, RM_OP_TRANSPOSE) : -1;
    int to = t >= 0 ? p->g->nodes[t].outputs[0] : -1;
    int r2 = to >= 0 ? only_consumer(p, to, RM_OP_RESHAPE) : -1;
    int fo = r2 >= 0 ? p->g->nodes[r2].outputs[0] : -1;
    if (fo < 0)
        return 0;
    const struct rm_value *g1 = &p->g->values[r1o], *gt = &p->g->values[to], *gf = &p->g->values[fo];
    size_t nperm;
    const int64_t *perm = rm_node_attr_ints(p->g->nodes[t].proto, "perm", &nperm);
    static const int64_t want[5] = {0, 2, 1, 3, 4};
    int64_t N = o->dims[0], C = o->dims[1], H = o->dims[2], W = o->dims[3];
    if (g1->rank != 5 || gt->rank != 5 || gf->rank != 4 || !perm || nperm != 5 || memcmp(perm, want, sizeof want) ||
        g1->dims[0] != N || g1->dims[1] < 1 || g1->dims[1] * g1->dims[2] != C || g1->dims[3] != H ||
        g1->dims[4] != W || gf->dims[0] != N || gf->dims[1] != C || gf->dims[2] != H || gf->dims[3] != W ||
        rm_dtype_host(gf->elem_type) != RM_F32)
        return 0;
    int64_t grp = g1->dims[1], per = g1->dims[2], c0 = 0;
    for (int k = 0; k < n; k++) {
        struct val *v = rm_eng_in(p, node, (size_t)k);
        if (!v || !v->has_md || v->rank != 4 || v->dims[0] != N || v->dims[2] != H || v->dims[3] != W ||
            v->dims[1] < 1 || c0 / per != (c0 + v->dims[1] - 1) / per)
            return 0;
        c0 += v->dims[1];
    }
    /* the shuffled output, plain */
    struct val *f = &p->vals[fo];
    f->dtype = RM_F32;
    f->rank = 4;
    memcpy(f->dims, o->dims, sizeof f->dims);
    f->numel = o->numel;
    struct step *s = rm_eng_new_step(p, node);
    if (!s)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    if ((rc = rm_eng_alloc_plain(p, f, err)))
        return rc;
    /* input k's channel c of group gi lands on channel (c mod per) * grp + gi */
    c0 = 0;
    for (int k = 0; k < n; k++) {
        struct val *v = rm_eng_in(p, node, (size_t)k);
        dnnl_memory_desc_t md;
        dnnl_dims_t d = {N, v->dims[1], H, W}, st = {C * H * W, grp * H * W, W, 1};
        dnnl_memory_t m;
        dnnl_primitive_t r;
        CHECK(dnnl_memory_desc_init_by_strides(&md, 4, d, dnnl_f32, st));
        md.offset0 = ((c0 % per) * grp + c0 / per) * H * W;
        if ((rc = rm_eng_make_mem(p, &m, &md, f->buf, err)) || (rc = rm_eng_reg_mem(p, m, f, 0, err)) ||
            (rc = rm_eng_make_reorder(p, &r, &v->md, &md, err)))
            return rc;
        dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, v->mem}, {DNNL_ARG_TO, m}};
        if ((rc = rm_eng_add_ex(p, s, r, 2, a)))
            return rc;
        c0 += v->dims[1];
    }
    f->kind = V_ACT;
    s->written[s->n_written++] = fo;
    s->last_node = r2;
    p->node_state[r1] = p->node_state[t] = p->node_state[r2] = p->n_steps - 1;
    o->kind = V_FUSED;
    p->vals[r1o].kind = V_FUSED;
    p->vals[to].kind = V_FUSED;
    *planned = 1;
done:
    return rc;
}

int rm_eng_concat_shuffle(struct rm_plan *p, int node, int *planned, struct rm_error *err)
{
    return concat_shuffle(p, node, planned, err);
}

/* ---- a blocked Concat at misaligned offsets -------------------------------------- */

int rm_eng_concat_blocked(struct rm_plan *p, int node, int *planned, struct rm_error *err)
{
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    struct val *o = rm_eng_out(p, node, 0);
    int n = (int)np->n_input, kind = -1, block = 0, misaligned = 0, rc = 0;
    *planned = 0;
    int64_t axis = rm_node_attr_int(np, "axis", 0);
    if (o->rank >= 3 && o->rank <= 5 && axis < 0)
        axis += o->rank;
    if (o->dtype != RM_F32 || o->rank < 3 || o->rank > 5 || axis != 1 || n < 1 || o->numel == 0)
        return 0;
    /* every input in the same channel-blocked layout, o's dims but for the channels;
     * some input starting inside a block */
    int64_t off = 0;
    for (int k = 0; k < n; k++) {
        struct val *v = rm_eng_in(p, node, (size_t)k);
        int b = -1;
        if (!v || !v->has_md || !v->blocked || v->dtype != RM_F32 || v->rank != o->rank ||
            rm_eng_layout_tag(v, &b) == dnnl_format_tag_any || b == 0 || (kind >= 0 && b != kind))
            return 0;
        kind = b;
        block = kind == 1 ? 16 : 8;
        for (int d = 0; d < o->rank; d++)
            if (d != 1 && v->dims[d] != o->dims[d])
                return 0;
        misaligned |= off % block != 0;
        off += v->dims[1];
    }
    if (!misaligned || off != o->dims[1])
        return 0; /* aligned: oneDNN's concat copies whole blocks */
    static const dnnl_format_tag_t tags[2][3] = {{dnnl_aBc16b, dnnl_aBcd16b, dnnl_aBcde16b},
                                                 {dnnl_aBc8b, dnnl_aBcd8b, dnnl_aBcde8b}};
    dnnl_memory_desc_t md;
    dnnl_dims_t od;
    for (int d = 0; d < o->rank; d++)
        od[d] = o->dims[d];
    if (dnnl_memory_desc_init_by_tag(&md, o->rank, od, dnnl_f32, tags[kind - 1][o->rank - 3]) != dnnl_success)
        return 0;
    struct bcat *b = rm_eng_buf(p, sizeof *b);
    int *in = rm_eng_buf(p, sizeof(int) * (size_t)n);
    int64_t *c = rm_eng_buf(p, sizeof(int64_t) * (size_t)n), *offs = rm_eng_buf(p, sizeof(int64_t) * (size_t)n);
    struct step *s;
    if (!b || !in || !c || !offs || !(s = rm_eng_new_step(p, node)))
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    off = 0;
    for (int k = 0; k < n; k++) {
        struct val *v = rm_eng_in(p, node, (size_t)k);
        in[k] = (int)(v - p->vals);
        c[k] = v->dims[1];
        offs[k] = off;
        off += v->dims[1];
    }
    *b = (struct bcat){.n = n, .block = block, .batch = o->dims[0], .channels = o->dims[1], .in = in, .c = c,
                       .off = offs};
    b->spatial = 1;
    for (int d = 2; d < o->rank; d++)
        b->spatial *= o->dims[d];
    if ((rc = rm_eng_alloc_md(p, o, &md, err)))
        return rc;
    o->kind = V_ACT;
    b->out = p->g->nodes[node].outputs[0];
    s->bcat = b;
    s->written[s->n_written++] = b->out;
    *planned = 1;
    return 0;
}

void rm_eng_bcat_run(const struct rm_plan *p, const struct bcat *b)
{
    const int64_t B = b->block, S = b->spatial, cbo = (b->channels + B - 1) / B;
    float *out = p->vals[b->out].buf;
    for (int k = 0; k < b->n; k++) {
        const float *in = p->vals[b->in[k]].buf;
        const int64_t ck = b->c[k], cbi = (ck + B - 1) / B;
        for (int64_t nb = 0; nb < b->batch; nb++)
            for (int64_t cb = 0; cb < cbi; cb++) {
                /* input block cb: its valid lanes land in one or two output blocks */
                const int64_t valid = ck - cb * B < B ? ck - cb * B : B, oc = b->off[k] + cb * B;
                const int64_t lane = oc % B, first = B - lane < valid ? B - lane : valid, second = valid - first;
                const float *src = in + (nb * cbi + cb) * S * B;
                float *d0 = out + (nb * cbo + oc / B) * S * B + lane;
                float *d1 = second ? out + (nb * cbo + oc / B + 1) * S * B : NULL;
                for (int64_t x = 0; x < S; x++) {
                    memcpy(d0 + x * B, src + x * B, (size_t)first * sizeof(float));
                    if (d1)
                        memcpy(d1 + x * B, src + x * B + first, (size_t)second * sizeof(float));
                }
            }
    }
    /* the last block's lanes past the channels are padding, zero for whatever reads it */
    const int64_t used = b->channels % B;
    if (used)
        for (int64_t nb = 0; nb < b->batch; nb++) {
            float *last = out + (nb * cbo + cbo - 1) * S * B;
            for (int64_t x = 0; x < S; x++)
                memset(last + x * B + used, 0, (size_t)(B - used) * sizeof(float));
        }
}
