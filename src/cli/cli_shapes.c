/* What every command that infers sizes or runs a model shares: --input-shape, the note
 * about a dynamic batch, and the verdict's options (diff and the edits' verification). */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int cli_parse_shape(const char *s, char *name, size_t n, int *rank, int64_t *dims)
{
    const char *eq = strrchr(s, '=');
    if (!eq || eq == s || !eq[1] || (size_t)(eq - s) >= n)
        return -1;
    snprintf(name, n, "%.*s", (int)(eq - s), s);
    *rank = 0;
    for (const char *p = eq + 1;;) {
        char *end;
        if (*p < '0' || *p > '9' || *rank == RM_MAX_RANK)
            return -1;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (errno || v <= 0)
            return -1;
        dims[(*rank)++] = v;
        if (!*end)
            return 0;
        if (*end != ',')
            return -1;
        p = end + 1;
    }
}

int cli_input_shapes(rm_model *m, const struct cli_list *shapes, bool rewrite)
{
    for (int i = 0; i < shapes->n; i++) {
        char name[1024];
        int rank;
        int64_t dims[RM_MAX_RANK];
        rm_error err;
        rm_error_clear(&err);
        if (cli_parse_shape(shapes->v[i], name, sizeof name, &rank, dims)) {
            fprintf(stderr, "remodel: bad --input-shape '%s': expected NAME=D0,D1,... with positive sizes "
                            "(at most %d), as in input=1,3,224,224\n", shapes->v[i], RM_MAX_RANK);
            return CLI_BAD;
        }
        if (rewrite ? rm_model_rewrite_input_shape(m, name, rank, dims, &err)
                    : rm_model_set_input_shape(m, name, rank, dims, &err))
            return cli_fail_in(&err, "%s", rm_model_path(m) ? rm_model_path(m) : "--input-shape");
    }
    return CLI_OK;
}

void cli_note_batch(rm_model *m)
{
    int batch = 0;
    rm_error err;
    if (rm_model_check_inputs(m, &batch, &err) == 0 && batch)
        fprintf(stderr, "remodel: note: %s: a dynamic batch dimension is taken as 1 (--input-shape sets "
                        "another)\n", rm_model_path(m) ? rm_model_path(m) : "the model");
}

int cli_verdict_options(const struct cli_args *a, long long samples, const char *inputs_dir, rm_model *m,
                        rm_diff_options *o, rm_input_sets **sets)
{
    rm_error err;
    rm_error_clear(&err);
    *sets = NULL;
    rm_diff_options_default(o);
    if (!isnan(a->atol))
        o->atol = a->atol;
    if (!isnan(a->rtol))
        o->rtol = a->rtol;
    if (!isnan(a->min_cosine))
        o->min_cosine = a->min_cosine;
    if (!isnan(a->min_top1))
        o->min_top1 = a->min_top1;
    o->samples = (int)samples;
    o->seed = a->seed;
    o->threads = (int)a->threads;
    if (inputs_dir) {
        if (rm_input_sets_open(sets, m, inputs_dir, &err))
            return cli_fail(&err);
        o->folder = *sets;
    }
    return CLI_OK;
}
