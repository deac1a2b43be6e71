/* Activation memory of a plan: values whose lifetimes do not overlap share buffers,
 * and every primitive shares one scratchpad. */
#include "rm_engine_int.h"

#include <stdlib.h>

/* A buffer values take turns in: its size (the largest of them), the step after which
 * it is free again, the value holding it. */
struct pool {
    void *buf;
    size_t size;
    int free_after, owner;
};

/* Hand pool pl to value vi (or the group of values placed in vi's buffer), noting that
 * its previous owner (and all placed in it) are overwritten from step s. The pool's
 * buffer is allocated once every value has its pool (at its largest size). */
static void take(struct rm_plan *p, struct pool *pl, int j, int *assign, int vi, int s, int end, const int *head,
                 const int *next)
{
    if (pl->owner >= 0) {
        p->vals[pl->owner].overwrite_step = s;
        for (int m = head[pl->owner]; m >= 0; m = next[m])
            p->vals[m].overwrite_step = s;
    }
    pl->owner = vi;
    pl->free_after = end;
    if (pl->size < p->vals[vi].bytes)
        pl->size = p->vals[vi].bytes;
    assign[vi] = j;
}

/* Activations whose lifetimes do not overlap share buffers, greedy in step order: the
 * smallest free buffer that fits, else the largest free one grown to fit, else a new
 * one. A buffer is allocated once all its values are known, at the largest of them:
 * values that grow step by step (DenseNet's BatchNorm outputs, one more block of 32
 * channels per layer) share one instead of taking a new one each time, and a small
 * value that lives long gets a buffer of its own size. DenseNet121's channels-last plan
 * went from 31.3 to 12.7 MB of buffers (8.0 MB alive at most). A value whose buffer was
 * handed on is reported as overwritten by rm_session_get once the next owner's step has
 * run. Values placed in a Concat's output (plan_concat.c) live in a slice of its buffer,
 * which lives from the first write of any of them to the last read of any of them. */
int rm_eng_plan_memory(struct rm_plan *p, struct rm_error *err)
{
    int rc = 0;
    size_t nv = p->g->n_values, na = nv ? nv : 1;
    int *def = malloc(na * sizeof(int)), *last = malloc(na * sizeof(int));
    int *head = malloc(na * sizeof(int)), *next = malloc(na * sizeof(int)), *gend = malloc(na * sizeof(int));
    int *assign = malloc(na * sizeof(int));
    size_t *live = calloc((size_t)p->n_steps + 2, sizeof *live);
    char *done_grp = calloc(na, 1);
    int np = 0;
    struct pool *pool = calloc((size_t)p->n_steps * 4 + 1, sizeof *pool);
    if (!def || !last || !head || !next || !gend || !assign || !live || !done_grp || !pool) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t v = 0; v < nv; v++)
        def[v] = last[v] = head[v] = next[v] = assign[v] = -1;
    for (int s = 0; s < p->n_steps; s++)
        for (int k = 0; k < p->steps[s].n_written; k++)
            def[p->steps[s].written[k]] = s;
    for (size_t i = 0; i < p->g->n_nodes; i++) {
        int st = p->node_state[i];
        if (st < 0)
            continue;
        for (size_t k = 0; k < p->g->nodes[i].proto->n_input; k++) {
            int vi = p->g->nodes[i].inputs[k];
            if (vi >= 0 && st > last[vi])
                last[vi] = st;
        }
    }
    /* groups of placed values: members listed under the value holding them all, whose
     * buffer lives as long as the longest of them */
    for (size_t v = 0; v < nv; v++)
        gend[v] = last[v] > def[v] ? last[v] : def[v];
    for (size_t v = 0; v < nv; v++) {
        size_t off;
        if (!p->vals[v].place_in)
            continue;
        int t = rm_eng_place_top(p, (int)v, &off);
        next[v] = head[t];
        head[t] = (int)v;
        if (gend[v] > gend[t])
            gend[t] = gend[v];
    }
    for (int s = 0; s < p->n_steps; s++)
        for (int k = 0; k < p->steps[s].n_written; k++) {
            int vi = p->steps[s].written[k];
            if (p->vals[vi].place_in)
                vi = p->vals[vi].place_in - 1; /* the group's buffer, at its first write */
            struct val *v = &p->vals[vi];
            if (v->kind != V_ACT || p->g->values[vi].output >= 0 || v->clobber_step >= 0 || v->aliased ||
                done_grp[vi])
                continue;
            done_grp[vi] = 1;
            int end = gend[vi] > s ? gend[vi] : s, best = -1, largest = -1;
            for (int j = 0; j < np; j++) {
                if (pool[j].free_after >= s)
                    continue;
                if (pool[j].size >= v->bytes && (best < 0 || pool[j].size < pool[best].size))
                    best = j;
                if (largest < 0 || pool[j].size > pool[largest].size)
                    largest = j;
            }
            /* a value living long would hold a buffer far larger than it for all that
             * time (DenseNet's features, in channels-last plans where its Concats copy,
             * live to the end of their dense block): it gets one of its size */
            if (best >= 0 && pool[best].size / 2 > v->bytes && end - s > 8)
                best = -1;
            else if (best < 0 && largest >= 0)
                best = largest;
            if (best < 0) {
                best = np++;
                pool[best].owner = -1;
            }
            take(p, &pool[best], best, assign, vi, s, end, head, next);
            live[s] += v->bytes;
            live[end + 1] -= v->bytes; /* (wraps, and wraps back in the sum) */
        }
    p->act_bytes = p->act_live = 0;
    size_t sum = 0;
    for (int s = 0; s <= p->n_steps; s++) {
        sum += live[s];
        if (sum > p->act_live)
            p->act_live = sum;
    }
    for (int j = 0; j < np; j++)
        p->act_bytes += pool[j].size;
    for (int j = 0; j < np; j++)
        if (!(pool[j].buf = rm_eng_hp_buf(p, pool[j].size))) {
            rc = rm_eng_oom(p, err, "activations");
            goto done;
        }
    for (size_t vi = 0; vi < nv; vi++) {
        struct val *v = &p->vals[vi];
        if (assign[vi] < 0)
            continue;
        void *old = v->buf;
        v->buf = pool[assign[vi]].buf;
        if (!v->blocked)
            v->plain = v->buf;
        if (v->heap_buf)
            rm_eng_buf_release(p, old);
        v->heap_buf = 0;
    }
    /* placed values into their slices (of a pooled buffer, or of a graph output's own) */
    for (size_t v = 0; v < nv; v++) {
        struct val *m = &p->vals[v];
        if (!m->place_in)
            continue;
        void *old = m->buf;
        m->buf = (char *)p->vals[m->place_in - 1].buf + m->place_off;
        if (!m->blocked)
            m->plain = m->buf;
        if (m->heap_buf)
            rm_eng_buf_release(p, old);
        m->heap_buf = 0;
    }
    for (int i = 0; i < p->n_refs; i++) {
        struct val *v = &p->vals[p->refs[i].val];
        CHECK(dnnl_memory_set_data_handle(p->refs[i].mem, p->refs[i].plain ? v->plain : v->buf));
    }
    /* steps run one at a time, so every primitive can share one scratchpad */
    if (p->scratch_bytes) {
        void *sb = rm_eng_hp_buf(p, p->scratch_bytes);
        if (!sb) {
            rc = rm_eng_oom(p, err, "the scratchpad");
            goto done;
        }
        for (int i = 0; i < p->n_scratch; i++)
            CHECK(dnnl_memory_set_data_handle(p->scratch[i], sb));
    }
done:
    free(def);
    free(last);
    free(head);
    free(next);
    free(gend);
    free(assign);
    free(live);
    free(done_grp);
    free(pool);
    return rc;
}

