/* Output paths of a command, checked before any work: each must be writable, no two
 * may name one file, and none may be a file a loaded model is read from. */
#include "cli.h"

#include <limits.h>
#include <sys/stat.h>
#include <string.h>

static void note_stale(void *ctx, const char *path, uint64_t bytes)
{
    (void)ctx;
    fprintf(stderr, "remodel: note: %s (%.1f MB) looks left behind by an interrupted remodel; delete it if no "
            "remodel is writing there\n", path, (double)bytes / 1e6);
}

int cli_output_add(struct cli_outputs *os, const char *opt, const char *path, bool may_replace_model)
{
    struct rm_error err;
    rm_error_clear(&err);
    if (os->n == CLI_MAX_OUTPUTS) {
        fprintf(stderr, "remodel: too many outputs\n");
        return CLI_BAD;
    }
    struct cli_output *o = &os->o[os->n];
    if (rm_output_check(path, &o->t, &err))
        return cli_fail(&err);
    for (int i = 0; i < os->n; i++)
        if (rm_output_same(&o->t, &os->o[i].t)) {
            fprintf(stderr, "remodel: %s: %s names the same file as %s (%s); choose another name\n", path, opt,
                    os->o[i].opt, os->o[i].t.path);
            return CLI_BAD;
        }
    o->opt = opt;
    o->may_replace_model = may_replace_model;
    os->n++;
    /* once per folder: temporary files no running remodel holds are mentioned, never deleted */
    for (int i = 0; i < os->n - 1; i++)
        if (os->o[i].t.dir_id.dev == o->t.dir_id.dev && os->o[i].t.dir_id.ino == o->t.dir_id.ino)
            return CLI_OK;
    if (!os->quiet)
        rm_output_stale_temps(path, note_stale, NULL);
    return CLI_OK;
}

int cli_outputs_guard(const struct cli_outputs *os, const struct rm_model *m)
{
    struct rm_error err;
    rm_error_clear(&err);
    for (int i = 0; i < os->n; i++)
        if (rm_output_guard(m, &os->o[i].t, os->o[i].opt, os->o[i].may_replace_model, &err))
            return cli_fail(&err);
    return CLI_OK;
}

int cli_model_outputs(struct cli_outputs *os, const char *out, const char *external_data)
{
    if (!out) /* nothing to write (prune --dry-run) */
        return CLI_OK;
    if (cli_output_add(os, "-o", out, true))
        return CLI_BAD;
    if (!external_data)
        return CLI_OK;
    struct rm_error err;
    char path[PATH_MAX];
    rm_error_clear(&err);
    if (rm_external_data_path(out, external_data, path, sizeof path, &err))
        return cli_fail(&err);
    return cli_output_add(os, "--external-data", path, false);
}

void cli_json_written(rm_json *j, const struct cli_outputs *os)
{
    rm_json_key(j, "written");
    rm_json_arr_begin(j);
    for (int i = 0; i < os->n; i++) {
        const struct cli_output *o = &os->o[i];
        struct stat st;
        rm_json_obj_begin(j);
        cli_kv_str(j, "path", o->t.path);
        rm_json_key(j, "bytes");
        if (stat(o->t.path, &st) == 0)
            rm_json_int(j, (int64_t)st.st_size);
        else
            rm_json_null(j);
        rm_json_key(j, "role");
        rm_json_str(j, !strcmp(o->opt, "--external-data") ? "external_data"
                       : !strcmp(o->opt, "--report")      ? "report"
                       : o->may_replace_model             ? "model"
                                                          : "output");
        rm_json_obj_end(j);
    }
    rm_json_arr_end(j);
}
