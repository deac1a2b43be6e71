/* Running a plan: inputs, whole and step-wise runs, reading values and outputs. */
#include "rm_engine_int.h"
#include "rm_prng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- inputs ---------------------------------------------------------------------- */

int rm_session_n_inputs(const struct rm_plan *p)
{
    return p->n_in;
}

const char *rm_session_input_name(const struct rm_plan *p, int k)
{
    return k >= 0 && k < p->n_in ? p->g->values[p->in_vals[k]].name : NULL;
}

void rm_session_input_info(const struct rm_plan *p, int k, struct rm_host_tensor *t)
{
    memset(t, 0, sizeof *t);
    if (k < 0 || k >= p->n_in)
        return;
    const struct val *v = &p->vals[p->in_vals[k]];
    t->dtype = v->dtype;
    t->rank = v->rank;
    memcpy(t->dims, v->dims, sizeof t->dims);
    t->numel = v->numel;
}


int rm_session_set_input(struct rm_plan *p, const char *name, const struct rm_host_tensor *t,
                      struct rm_error *err)
{
    for (int k = 0; k < p->n_in; k++) {
        struct val *v = &p->vals[p->in_vals[k]];
        if (strcmp(p->g->values[p->in_vals[k]].name, name))
            continue;
        if (t->dtype != v->dtype || t->rank != v->rank ||
            memcmp(t->dims, v->dims, sizeof(int64_t) * (size_t)v->rank)) {
            char a[160], b[160];
            rm_eng_dims_str(a, sizeof a, t->rank, t->dims);
            rm_eng_dims_str(b, sizeof b, v->rank, v->dims);
            return rm_error_set(err, RM_EFORMAT, "input '%s': got %s %s, the model expects %s %s", name,
                                rm_dtype_name(t->dtype), a, rm_dtype_name(v->dtype), b);
        }
        memcpy(v->buf, t->data, (size_t)v->numel * rm_eng_dtype_bytes(v->dtype));
        v->set_by_user = 1;
        v->stamp = ++p->stamp;
        return 0;
    }
    return rm_error_set(err, RM_ENOTFOUND, "the model has no input named '%s'", name);
}

void rm_session_reset_inputs(struct rm_plan *p)
{
    for (int k = 0; k < p->n_in; k++)
        p->vals[p->in_vals[k]].set_by_user = 0;
}

void rm_session_random_inputs(struct rm_plan *p, uint64_t seed)
{
    uint64_t st = seed;
    for (int k = 0; k < p->n_in; k++) {
        struct val *v = &p->vals[p->in_vals[k]];
        if (v->set_by_user)
            continue;
        if (v->dtype == RM_I64) {
            memset(v->buf, 0, (size_t)v->numel * 8);
            continue;
        }
        float *d = v->buf;
        for (int64_t i = 0; i < v->numel; i += 2) {
            /* Box-Muller: two normals from two uniforms in (0, 1] */
            double u1 = ((double)(rm_splitmix64(&st) >> 11) + 1.0) / 9007199254740992.0;
            double u2 = (double)(rm_splitmix64(&st) >> 11) / 9007199254740992.0;
            double r = sqrt(-2.0 * log(u1));
            d[i] = (float)(r * cos(2 * M_PI * u2));
            if (i + 1 < v->numel)
                d[i + 1] = (float)(r * sin(2 * M_PI * u2));
        }
        v->stamp = ++p->stamp;
    }
}

/* ---- running ----------------------------------------------------------------------- */

void rm_session_begin(struct rm_plan *p)
{
    p->cursor = 0;
    for (size_t i = 0; i < p->g->n_values; i++)
        if (p->vals[i].kind == V_ACT)
            p->vals[i].computed = 0;
}

int rm_session_n_steps(const struct rm_plan *p)
{
    return p->n_steps;
}

int rm_session_step(struct rm_plan *p, int *node_done, struct rm_error *err)
{
    int rc = 0;
    if (p->cursor >= p->n_steps)
        return 0;
    if (!p->prepared && (rc = rm_eng_prepare(p, err)))
        return rc;
    int me = p->cursor;
    struct step *s = &p->steps[p->cursor++];
    double t0 = p->prof ? rm_eng_now_ms() : 0;
    p->err = err;
    rm_eng_threads(p, s->threads);
    for (int i = 0; i < s->n_plain; i++)
        if ((rc = rm_eng_ensure_plain(p, &p->vals[s->plain_vals[i]], err)))
            goto done;
    if (s->bcat) {
        rm_eng_bcat_run(p, s->bcat);
    } else if (s->c_node >= 0) {
        for (size_t k = 0; k < p->g->nodes[s->c_node].proto->n_input; k++) {
            struct val *v = rm_eng_in(p, s->c_node, k);
            if (v && (rc = rm_eng_ensure_plain(p, v, err)))
                goto done;
        }
        if ((rc = rm_eng_kernel(p, s->c_node)))
            goto done;
    } else {
        for (int i = 0; i < s->n_ex; i++)
            CHECK(dnnl_primitive_execute(s->ex[i].prim, p->strm, s->ex[i].nargs, s->ex[i].args));
        CHECK(dnnl_stream_wait(p->strm));
    }
    for (int i = 0; i < s->n_written; i++) {
        struct val *v = &p->vals[s->written[i]];
        v->stamp = ++p->stamp;
        v->computed = 1;
    }
    if (node_done)
        *node_done = s->last_node;
    if (p->prof) {
        rm_eng_prof_step(p, me, rm_eng_now_ms() - t0);
        if (p->cursor == p->n_steps)
            p->prof->runs++;
    }
    rc = 1;
done:
    if (rc < 0 && !strstr(err ? err->msg : "", "node '"))
        rm_error_prefix(err, "node '%s'", rm_graph_node_label(p->g, (size_t)s->first_node));
    p->err = NULL;
    return rc;
}

int rm_session_run(struct rm_plan *p, struct rm_error *err)
{
    int rc, node;
    rm_session_begin(p);
    while ((rc = rm_session_step(p, &node, err)) > 0)
        ;
    rm_eng_threads(p, p->threads_max); /* as the session was asked to run */
    return rc;
}

int rm_session_get(struct rm_plan *p, const char *name, struct rm_host_tensor *out, struct rm_error *err)
{
    memset(out, 0, sizeof *out);
    int vi = rm_graph_find(p->g, name);
    if (vi < 0)
        return rm_error_set(err, RM_ENOTFOUND, "no tensor named '%s'", name);
    struct val *v = &p->vals[vi];
    if (v->kind == V_FUSED)
        return rm_error_set(err, RM_ENOTFOUND, "tensor '%s' was fused into its producer's step", name);
    if (v->kind == V_UNSET || !v->computed)
        return rm_error_set(err, RM_ENOTFOUND, "tensor '%s' has not been computed", name);
    if ((v->clobber_step >= 0 && p->cursor > v->clobber_step) ||
        (v->overwrite_step >= 0 && p->cursor > v->overwrite_step))
        return rm_error_set(err, RM_ENOTFOUND, "tensor '%s' was overwritten in place by a later step",
                            name);
    int rc = rm_eng_ensure_plain(p, v, err);
    if (rc || (rc = rm_tensor_alloc(out, v->dtype, v->rank, v->dims, err)))
        return rc;
    memcpy(out->data, v->plain, (size_t)v->numel * rm_eng_dtype_bytes(v->dtype));
    rm_eng_drop_plain(p, v); /* copied out: its shadow is made again if read again */
    return 0;
}

int rm_session_n_outputs(const struct rm_plan *p)
{
    return p->n_out;
}

const char *rm_session_output_name(const struct rm_plan *p, int k)
{
    return k >= 0 && k < p->n_out ? p->g->values[p->out_vals[k]].name : NULL;
}

int rm_session_output(struct rm_plan *p, int k, struct rm_host_tensor *out, struct rm_error *err)
{
    memset(out, 0, sizeof *out);
    if (k < 0 || k >= p->n_out)
        return rm_error_set(err, RM_ENOTFOUND, "no output %d", k);
    struct val *v = &p->vals[p->out_vals[k]];
    int rc = rm_eng_ensure_plain(p, v, err);
    if (rc)
        return rc;
    out->dtype = v->dtype;
    out->rank = v->rank;
    memcpy(out->dims, v->dims, sizeof out->dims);
    out->numel = v->numel;
    out->data = v->plain;
    out->owned = 0;
    return 0;
}

int32_t rm_session_output_type(const struct rm_plan *p, int k)
{
    return k >= 0 && k < p->n_out ? p->g->values[p->out_vals[k]].elem_type : 0;
}

int64_t rm_session_macs(const struct rm_plan *p)
{
    return p->macs;
}

