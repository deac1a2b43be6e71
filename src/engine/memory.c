/* Activation memory of a plan: values whose lifetimes do not overlap share buffers,
 * and every primitive shares one scratchpad. */
#include "rm_engine_int.h"

#include <stdlib.h>

/* Activations whose lifetimes do not overlap share buffers (greedy
 * best fit in step order). A value whose buffer was handed on is reported as
 * overwritten by rm_session_get once the next owner's step has run. */
int rm_eng_plan_memory(struct rm_plan *p, struct rm_error *err)
{
    int rc = 0;
    size_t nv = p->g->n_values;
    int *def = malloc((nv ? nv : 1) * sizeof(int)), *last = malloc((nv ? nv : 1) * sizeof(int));
    int np = 0;
    struct pool {
        void *buf;
        size_t size;
        int free_after, owner;
    } *pool = calloc((size_t)p->n_steps * 4 + 1, sizeof *pool);
    if (!def || !last || !pool) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t v = 0; v < nv; v++)
        def[v] = last[v] = -1;
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
    for (int s = 0; s < p->n_steps; s++)
        for (int k = 0; k < p->steps[s].n_written; k++) {
            int vi = p->steps[s].written[k];
            struct val *v = &p->vals[vi];
            if (v->kind != V_ACT || p->g->values[vi].output >= 0 || v->clobber_step >= 0 || v->aliased)
                continue;
            int end = last[vi] > s ? last[vi] : s, best = -1;
            for (int j = 0; j < np; j++)
                if (pool[j].free_after < s && pool[j].size >= v->bytes &&
                    (best < 0 || pool[j].size < pool[best].size))
                    best = j;
            if (best < 0) {
                best = np++;
                pool[best].buf = rm_eng_hp_buf(p, v->bytes);
                pool[best].size = v->bytes;
                pool[best].owner = -1;
                if (!pool[best].buf) {
                    rc = rm_eng_oom(p, err, "activations");
                    goto done;
                }
            }
            if (pool[best].owner >= 0)
                p->vals[pool[best].owner].overwrite_step = s;
            pool[best].owner = vi;
            pool[best].free_after = end;
            void *old = v->buf;
            v->buf = pool[best].buf;
            if (!v->blocked)
                v->plain = v->buf;
            if (v->heap_buf)
                rm_eng_buf_release(p, old);
            v->heap_buf = 0;
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
    free(pool);
    return rc;
}

