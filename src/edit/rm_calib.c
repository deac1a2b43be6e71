/* Calibration data and input sets (see rm_calib.h and remodel.h: rm_input_sets_*). */
#include "rm_calib.h"

#include "rm_graph.h"
#include "rm_model.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- calibration samples ----------------------------------------------------------- */

int rm_calib_open(struct rm_calib *c, struct rm_model *m, const rm_calib_options *o, struct rm_error *err)
{
    memset(c, 0, sizeof *c);
    c->seed = o->seed;
    c->threads = o->threads;
    if (o->samples < 0)
        return rm_error_set(err, RM_EUSAGE, "calibration samples must be a positive number, not %d", o->samples);
    if (o->inputs) {
        int rc = rm_input_sets_open(&c->sets, m, o->inputs, err);
        if (rc)
            return rc;
        size_t n = rm_input_sets_count(c->sets);
        c->n = o->samples > 0 && (size_t)o->samples < n ? o->samples : (int)(n < 1000000 ? n : 1000000);
        return 0;
    }
    if (o->samples <= 0)
        return rm_error_set(err, RM_EUSAGE,
                            "no calibration data: give input sets (a folder) or a number of random samples");
    c->n = o->samples;
    return 0;
}

void rm_calib_close(struct rm_calib *c)
{
    rm_input_sets_free(c->sets);
    memset(c, 0, sizeof *c);
}

/* Tensors to hand over, ordered by the node that produces them. */
struct pending {
    size_t item;
    int producer;     /* -1: a graph input */
};

static int cmp_pending(const void *x, const void *y)
{
    const struct pending *a = x, *b = y;
    if (a->producer != b->producer)
        return a->producer < b->producer ? -1 : 1;
    return a->item < b->item ? -1 : a->item > b->item;
}

int rm_calib_run(struct rm_calib *c, struct rm_model *m, const char *const *names, size_t n_names, rm_calib_fn fn,
                 void *ctx, struct rm_error *err)
{
    struct rm_model *copy = NULL;
    rm_session *s = NULL;
    struct pending *pend = NULL;
    struct rm_host_tensor *set = NULL;
    size_t n_in = c->sets ? rm_input_sets_n_inputs(c->sets) : 0;
    int rc = rm_model_clone(&copy, m, err);
    if (rc)
        return rc;
    const struct rm_graph *g = rm_model_index(copy, err);
    if (!g) {
        rc = err->code;
        goto done;
    }
    pend = calloc(n_names + 1, sizeof *pend);
    set = calloc(n_in + 1, sizeof *set);
    if (!pend || !set) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_names; i++) {
        int v = rm_graph_find(g, names[i]);
        if (v < 0 || (g->values[v].producer < 0 && g->values[v].input < 0)) {
            rc = rm_error_set(err, RM_ENOTFOUND, "no tensor '%s' is computed by the model", names[i]);
            goto done;
        }
        pend[i].item = i;
        pend[i].producer = g->values[v].producer;
    }
    qsort(pend, n_names, sizeof *pend, cmp_pending);
    /* one session for every sample: set 0 gives the dims of dynamic inputs */
    rm_session_options so;
    rm_session_options_default(&so);
    so.fuse = 0;
    so.threads = c->threads;
    const char **given = NULL;
    if (c->sets) {
        if ((rc = rm_input_sets_read(c->sets, 0, set, err)))
            goto done;
        given = calloc(n_in, sizeof *given);
        if (!given) {
            rc = rm_error_set(err, RM_ENOMEM, "out of memory");
            goto done;
        }
        for (size_t j = 0; j < n_in; j++)
            given[j] = rm_input_sets_input_name(c->sets, j);
        so.n_given = (int)n_in;
        so.given_names = given;
        so.given_values = set;
    }
    rc = rm_session_create(&s, copy, &so, err);
    free(given);
    if (rc) {
        rm_error_prefix(err, "calibration");
        goto done;
    }
    for (int k = 0; k < c->n && !rc; k++) {
        if (c->sets) {
            if (k > 0) {
                for (size_t j = 0; j < n_in; j++)
                    rm_tensor_free(&set[j]);
                if ((rc = rm_input_sets_read(c->sets, (size_t)k, set, err)))
                    break;
            }
            for (size_t j = 0; j < n_in && !rc; j++)
                rc = rm_session_set_input(s, rm_input_sets_input_name(c->sets, j), &set[j], err);
            if (rc) {
                rm_error_prefix(err, "input set '%s'", rm_input_sets_label(c->sets, (size_t)k));
                break;
            }
        } else {
            rm_session_random_inputs(s, c->seed + (uint64_t)k);
        }
        rm_session_begin(s);
        size_t next = 0;
        int done_node = -1;
        for (;;) {
            /* hand over what is computed by now */
            while (next < n_names && pend[next].producer <= done_node) {
                struct rm_host_tensor t;
                rc = rm_session_get(s, names[pend[next].item], &t, err);
                if (rc)
                    break;
                rc = fn(ctx, k, pend[next].item, &t, err);
                rm_tensor_free(&t);
                if (rc)
                    break;
                next++;
            }
            if (rc || next == n_names)
                break;
            int st = rm_session_step(s, &done_node, err);
            if (st < 0) {
                rc = st;
                break;
            }
            if (st == 0) {
                rc = rm_error_set(err, RM_ENOTFOUND, "tensor '%s' was not computed by the run",
                                  names[pend[next].item]);
                break;
            }
        }
    }
done:
    if (set)
        for (size_t j = 0; j < n_in; j++)
            rm_tensor_free(&set[j]);
    free(set);
    free(pend);
    rm_session_free(s);
    rm_model_free(copy);
    return rc;
}
