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
 * Placement is decided while planning; the memory planner (memory.c) gives each group of
 * placed values one buffer that lives from the first write of any of them to the last
 * read of any of them. */
#include "rm_engine_int.h"

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
