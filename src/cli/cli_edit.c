/* remodel replace, prune, fold-bn, and what every command that writes an edited model
 * shares: outputs checked before any work, the edit made on a clone, verified against the
 * original on the same seeded input, saved atomically, reported as text or one JSON
 * document (what changed, parameters and MACs before and after, the verdict, the files). */
#include "cli_edit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Check the outputs (before any work: the folder exists, nothing there that cannot be
 * replaced), then load the model and make sure no output is a file it is read from; e->m
 * is a clone to edit, e->orig the model as loaded. Prints and returns CLI_BAD on failure. */
int cli_edit_begin(struct cli_edit *e, struct cli_args *a, const char *command)
{
    struct rm_error err;
    rm_error_clear(&err);
    memset(e, 0, sizeof *e);
    e->a = a;
    e->command = command;
    if (cli_model_outputs(&e->outs, a->out, a->external_data))
        return CLI_BAD;
    if (rm_model_load(&e->orig, a->pos[0], NULL, &err))
        return cli_fail(&err);
    if (cli_outputs_guard(&e->outs, e->orig) || cli_input_shapes(e->orig, &a->input_shapes, false))
        return CLI_BAD;
    if (rm_model_clone(&e->m, e->orig, &err)) /* the clone keeps the input shapes */
        return cli_fail(&err);
    /* the original's runs come first, before the edit's tensors take memory beside its
     * plan (efficientnet_b0's verified prune peaked in the original's phase at 67.6 MiB,
     * now in the edited model's at 61.8) */
    if (!a->no_verify) {
        if (cli_verdict_options(a, a->verify_samples, a->verify_inputs, e->orig, &e->vo, &e->sets))
            return CLI_BAD;
        if (rm_diff_begin(e->orig, &e->vo, &e->pending, &err))
            return cli_fail_in(&err, "verification failed, nothing written");
    }
    return CLI_OK;
}

void cli_edit_end(struct cli_edit *e)
{
    rm_diff_cancel(e->pending);
    rm_input_sets_free(e->sets);
    rm_findings_free(&e->log);
    rm_diff_result_free(&e->verdict);
    rm_model_free(e->m);
    rm_model_free(e->orig);
}

/* What an edit changed, one line per layer. */
static void print_notes(const rm_findings *log)
{
    for (size_t i = 0; i < log->n; i++)
        if (log->v[i].kind == RM_FINDING_NOTE)
            printf("%s\n", log->v[i].text);
}

/* What verification fed both models: "4 samples (seeded 0..3), input [1, 3, 224, 224]". */
static void verified_on(const struct cli_edit *e, char *buf, size_t n)
{
    const struct rm_diff_result *r = &e->verdict;
    size_t off;
    size_t n_sets = rm_input_sets_count(e->sets);
    if (n_sets)
        off = (size_t)snprintf(buf, n, "%d sample%s (%zu from %s%s)", r->samples, r->samples == 1 ? "" : "s",
                               n_sets, e->a->verify_inputs, (size_t)r->samples > n_sets ? ", the rest seeded" : "");
    else if (r->samples == 1)
        off = (size_t)snprintf(buf, n, "1 sample (seed %llu)", (unsigned long long)r->seed);
    else
        off = (size_t)snprintf(buf, n, "%d samples (seeds %llu..%llu)", r->samples, (unsigned long long)r->seed,
                               (unsigned long long)(r->seed + (uint64_t)r->samples - 1));
    /* the dims both models were fed, as the diff recorded them (a session built here
     * only to ask would cost a third plan build) */
    for (size_t k = 0; k < r->n_inputs && off < n; k++) {
        const rm_diff_input *t = &r->inputs[k];
        off += (size_t)snprintf(buf + off, n - off, ", %s [", t->name);
        for (int d = 0; d < t->rank && off < n; d++)
            off += (size_t)snprintf(buf + off, n - off, "%s%lld", d ? ", " : "", (long long)t->dims[d]);
        if (off < n)
            off += (size_t)snprintf(buf + off, n - off, "]");
    }
}

/* Unless --no-verify, run the edited model on the inputs the original ran on in
 * cli_edit_begin and compare (the verdict is kept for --json; text prints what was fed
 * and a one-line summary of each output), then save the edited model. Returns a CLI exit
 * code. */
int cli_edit_finish(struct cli_edit *e)
{
    struct rm_error err;
    rm_error_clear(&err);
    if (e->pending) {
        rm_diff_pending *d = e->pending;
        e->pending = NULL; /* rm_diff_end frees it */
        if (rm_diff_end(d, e->m, &e->verdict, &err))
            return cli_fail_in(&err, "verification failed, nothing written");
        e->verified = true;
        cli_note_batch(e->orig);
        const struct rm_diff_result *r = &e->verdict;
        if (!e->a->json) {
            char on[512];
            verified_on(e, on, sizeof on);
            printf("verify: %s\n", on);
        }
        for (size_t k = 0; !e->a->json && k < r->n_outputs; k++) {
            const struct rm_diff_output *out = &r->outputs[k];
            if (out->note) {
                printf("verify: output '%s': %s\n", out->name, out->note);
                continue;
            }
            printf("verify: output '%s' vs original: max_abs %.3g, max_rel %.3g, cosine %.6f", out->name,
                   out->s.max_abs, out->s.max_rel, out->s.cosine);
            if (!isnan(out->top1))
                printf(", top-1 agreement %.0f%%", 100.0 * out->top1);
            printf("%s\n", out->s.pass ? " (identical within tolerance)" : "");
        }
    }
    struct rm_save_options so = {.external_data = e->a->external_data};
    if (rm_model_save(e->m, e->a->out, &so, &err))
        return cli_fail(&err);
    if (!e->a->json)
        printf("wrote %s\n", e->a->out);
    return CLI_OK;
}

/* ---- --json ------------------------------------------------------------------------------ */

/* Module k of m's path and one-line repr (containers: their type). */
static void module_repr(rm_model *m, size_t k, char *buf, size_t n)
{
    rm_module_info mi;
    rm_model_module(m, k, &mi);
    if (mi.leaf)
        rm_module_repr(m, k, buf, n);
    else
        snprintf(buf, n, "%s", mi.type);
}

/* Modules of `from` that `to` lacks (removed: after null) or, with both, whose repr differs;
 * with swap, the ones `to` has and `from` lacks (added: before null). */
static void json_module_changes(rm_json *j, rm_model *from, rm_model *to, bool swap)
{
    size_t n = 0, k;
    struct rm_error err;
    if (rm_model_modules(from, &n, &err))
        return;
    for (size_t i = 1; i < n; i++) {
        rm_module_info mi;
        char a[512], b[512];
        rm_model_module(from, i, &mi);
        bool there = rm_model_find_module(to, mi.path, &k, &err) == 0;
        if (there && swap)
            continue; /* compared from the other side */
        module_repr(from, i, a, sizeof a);
        if (there) {
            module_repr(to, k, b, sizeof b);
            if (!strcmp(a, b))
                continue;
        }
        rm_json_obj_begin(j);
        cli_kv_str(j, "path", mi.path);
        cli_kv_str(j, "before", swap ? NULL : a);
        cli_kv_str(j, "after", swap ? a : there ? b : NULL);
        rm_json_obj_end(j);
    }
}

static void json_before_after(rm_json *j, const char *key, int64_t before, int64_t after)
{
    rm_json_key(j, key);
    rm_json_obj_begin(j);
    rm_json_key(j, "before");
    if (before >= 0)
        rm_json_int(j, before);
    else
        rm_json_null(j);
    rm_json_key(j, "after");
    if (after >= 0)
        rm_json_int(j, after);
    else
        rm_json_null(j);
    rm_json_obj_end(j);
}

/* An unsigned 64-bit integer (a --seed), exactly: rm_json_int takes int64. Written as
 * rm_json_int writes a value after a key. */
static void json_u64(rm_json *j, const char *key, uint64_t v)
{
    rm_json_key(j, key);
    fprintf(j->f, "%llu", (unsigned long long)v);
    j->after_key = false;
}

static void json_verdict(rm_json *j, const struct cli_edit *e)
{
    const struct rm_diff_result *r = &e->verdict;
    rm_json_key(j, "verify");
    if (!e->verified) {
        rm_json_null(j);
        return;
    }
    rm_json_obj_begin(j);
    json_u64(j, "seed", e->a->seed);
    cli_kv_int(j, "samples", r->samples);
    cli_kv_str(j, "inputs", e->a->verify_inputs);
    rm_json_key(j, "atol"); /* null: scaled per output */
    r->atol >= 0 ? rm_json_num(j, r->atol) : rm_json_null(j);
    cli_kv_num(j, "atol_scale", r->atol_scale);
    cli_kv_num(j, "rtol", r->rtol);
    cli_kv_num(j, "min_cosine", r->min_cosine);
    cli_kv_bool(j, "pass", r->pass);
    rm_json_key(j, "outputs");
    rm_json_arr_begin(j);
    for (size_t i = 0; i < r->n_outputs; i++) {
        const struct rm_diff_output *o = &r->outputs[i];
        rm_json_obj_begin(j);
        cli_kv_str(j, "name", o->name);
        cli_kv_num(j, "max_abs", o->s.max_abs);
        cli_kv_num(j, "max_rel", o->s.max_rel);
        cli_kv_num(j, "mean_abs", o->s.mean_abs);
        cli_kv_num(j, "cosine", o->s.cosine);
        cli_kv_num(j, "cosine_mean", o->s.cosine_mean);
        cli_kv_num(j, "atol", o->atol);
        rm_json_key(j, "top1");
        rm_json_num(j, o->top1); /* NAN (not a classifier output) writes null */
        cli_kv_num(j, "top5", o->top5);
        cli_kv_bool(j, "pass", o->s.pass);
        if (o->note)
            cli_kv_str(j, "note", o->note);
        rm_json_obj_end(j);
    }
    rm_json_arr_end(j);
    rm_json_obj_end(j);
}

/* The JSON document of an edit that was written: the fields every edit has, with the
 * command's own (extra, may be NULL) after file. */
void cli_edit_json(struct cli_edit *e, void (*extra)(rm_json *j, const void *ctx), const void *ctx)
{
    rm_json j;
    rm_info before, after;
    struct rm_error err;
    bool have_before = rm_model_info(e->orig, &before, &err) == 0;
    bool have_after = rm_model_info(e->m, &after, &err) == 0;
    rm_json_init(&j, stdout);
    rm_json_obj_begin(&j);
    rm_json_key(&j, "command");
    rm_json_str(&j, e->command);
    rm_json_key(&j, "file");
    rm_json_str(&j, e->a->pos[0]);
    if (extra)
        extra(&j, ctx);
    rm_json_key(&j, "notes");
    rm_json_arr_begin(&j);
    for (size_t i = 0; i < e->log.n; i++)
        if (e->log.v[i].kind == RM_FINDING_NOTE)
            rm_json_str(&j, e->log.v[i].text);
    rm_json_arr_end(&j);
    rm_json_key(&j, "modules");
    rm_json_arr_begin(&j);
    json_module_changes(&j, e->orig, e->m, false);
    json_module_changes(&j, e->m, e->orig, true);
    rm_json_arr_end(&j);
    json_before_after(&j, "params", have_before ? before.params : -1, have_after ? after.params : -1);
    json_before_after(&j, "macs", have_before ? before.macs : -1, have_after ? after.macs : -1);
    json_verdict(&j, e);
    cli_json_written(&j, &e->outs);
    rm_json_obj_end(&j);
    rm_json_end(&j);
    if (have_before)
        rm_info_free(&before);
    if (have_after)
        rm_info_free(&after);
}

/* ---- replace ---------------------------------------------------------------------------- */

const char *const cli_init_choices[] = {"keep", "kaiming", "zeros", NULL};
static const int init_values[] = {RM_INIT_KEEP, RM_INIT_KAIMING, RM_INIT_ZEROS};

void cli_replace_request(const struct cli_args *a, rm_replace_options *ro)
{
    memset(ro, 0, sizeof *ro);
    ro->init = init_values[a->init];
    ro->seed = a->seed;
    ro->propagate = a->propagate;
}

struct replace_ctx {
    const char *path, *spec;
};

static void replace_json(rm_json *j, const void *ctx)
{
    const struct replace_ctx *c = ctx;
    cli_kv_str(j, "path", c->path);
    cli_kv_str(j, "spec", c->spec);
}

static int run_replace(struct cli_args *a)
{
    const char *model = a->pos[0], *path = a->pos[1], *spec_text = a->pos[2];
    rm_replace_options ro;
    cli_replace_request(a, &ro);
    struct rm_error err;
    rm_error_clear(&err);
    if (rm_spec_check(spec_text, &err))
        return cli_fail(&err);
    struct cli_edit e;
    int rc = cli_edit_begin(&e, a, "replace");
    if (!rc && rm_replace(e.m, path, spec_text, &ro, &e.log, &err))
        rc = cli_fail_in(&err, "%s: replace %s", model, path);
    if (!rc && !a->json)
        print_notes(&e.log);
    if (!rc)
        rc = cli_edit_finish(&e);
    if (!rc && a->json)
        cli_edit_json(&e, replace_json, &(struct replace_ctx){path, spec_text});
    cli_edit_end(&e);
    return rc;
}

static const struct cli_pos replace_pos[] = {
    CLI_POS_MODEL,
    {"PATH", CLI_ONE, CLI_C_MODULE, "the Conv1d/2d/3d module to replace: layer4.0.conv1 or layer4[0].conv1"},
    {"SPEC", CLI_ONE, CLI_C_NONE,
     "the new module in PyTorch syntax, positional or keyword, ints or tuples: 'Conv2d(256, 512, kernel_size=3, "
     "stride=2, padding=1, bias=False)'"},
    {0},
};

static const struct cli_opt replace_opts[] = {
    CLI_OPT_OUT_MODEL,
    CLI_OPTS_REPLACE,
    {.name = "seed", .metavar = "N", CLI_U(seed),
     .help = "seed for kaiming weights and for the verification input (default 0)"},
    EDIT_OPTS_TAIL,
    {0},
};

const struct cli_cmd cli_cmd_replace = {
    .name = "replace",
    .summary = "replace a Conv1d/2d/3d module with a new spec, verified",
    .about = "The Conv node keeps its name, place and module path; its attributes and weight/bias initializers "
             "are rewritten (an initializer shared with other nodes is copied first). Shapes are re-inferred "
             "through the whole graph: if a consumer no longer fits, nothing is written and every disagreeing "
             "module is named.",
    .pos = replace_pos,
    .opts = replace_opts,
    .notes = EDIT_VERIFY_NOTE "A conv the exporter folded a BatchNorm into keeps that BatchNorm's shift as its ONNX bias whatever "
             "the spec's bias says. Channel changes are recorded in OUT's metadata (remodel.channel_map/<tensor>) "
             "so 'remodel diff --layers' can align the channels.\n"
             "--json adds path and spec.",
    .run = run_replace,
};

/* ---- prune ------------------------------------------------------------------ */

const char *const cli_criterion_choices[] = {"l1", "l2", "bn-scale", "activation", NULL};

/* "3,5,7" into a malloc'd array; returns the count or -1. */
static int parse_channels(const char *s, int64_t **out)
{
    int n = 0, cap = 0;
    *out = NULL;
    while (*s) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 0 || n == 1 << 20)
            return -1;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            int64_t *p = realloc(*out, (size_t)cap * sizeof *p);
            if (!p)
                return -1;
            *out = p;
        }
        (*out)[n++] = v;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return n;
}

void cli_prune_req_free(struct cli_prune_req *r)
{
    free(r->chans);
    free(r->ignore);
    for (size_t i = 0; i < r->n_ratios; i++)
        free((char *)r->ratios[i].path);
    free(r->ratios);
    memset(r, 0, sizeof *r);
}

int cli_prune_request(const struct cli_cmd *cmd, const struct cli_args *a, size_t n_paths, struct cli_prune_req *r)
{
    memset(r, 0, sizeof *r);
    rm_prune_options *po = &r->po;
    po->criterion = rm_criterion_parse(cli_criterion_choices[a->criterion]);
    po->global = a->global;
    bool have_ratio = !isnan(a->ratio), target = !isnan(a->target_macs) || !isnan(a->target_params);
    if (have_ratio)
        po->ratio = a->ratio;
    if (!isnan(a->target_macs))
        po->target_macs = a->target_macs;
    if (!isnan(a->target_params))
        po->target_params = a->target_params;
    if (a->channels) {
        int n = parse_channels(a->channels, &r->chans);
        if (n <= 0)
            return cli_usage(cmd, "--channels needs a comma-separated list of channel indices, got '%s'", a->channels);
        po->channels = r->chans;
        po->n_channels = (size_t)n;
    }
    if (a->ignore.n) {
        if (!(r->ignore = calloc((size_t)a->ignore.n, sizeof *r->ignore)))
            return cli_usage(cmd, "out of memory");
        for (int i = 0; i < a->ignore.n; i++)
            r->ignore[i] = a->ignore.v[i];
        po->ignore = r->ignore;
        po->n_ignore = (size_t)a->ignore.n;
    }
    if (a->ratio_for.n) {
        if (!(r->ratios = calloc((size_t)a->ratio_for.n, sizeof *r->ratios)))
            return cli_usage(cmd, "out of memory");
        r->n_ratios = (size_t)a->ratio_for.n;
        for (int i = 0; i < a->ratio_for.n; i++) {
            const char *v = a->ratio_for.v[i], *eq = strrchr(v, '=');
            char *end = NULL;
            double x = eq && eq != v ? strtod(eq + 1, &end) : NAN;
            if (!eq || eq == v || !end || end == eq + 1 || *end || !(x >= 0 && x < 1))
                return cli_usage(cmd, "--ratio-for takes PATH=R with 0 <= R < 1 (layer2.0.conv1=0.5), got '%s'", v);
            /* the path is a prefix of the argument: a copy ends it */
            r->ratios[i].path = strndup(v, (size_t)(eq - v));
            r->ratios[i].ratio = x;
            if (!r->ratios[i].path)
                return cli_usage(cmd, "out of memory");
        }
        po->ratio_for = r->ratios;
        po->n_ratio_for = (size_t)a->ratio_for.n;
    }
    po->round_to = a->round_to;
    po->dry_run = a->dry_run;
    po->reconstruct = a->reconstruct;
    po->calib.inputs = a->calib_inputs;
    po->calib.samples = (int)a->calib_samples;
    po->calib.seed = a->calib_seed;
    po->calib.threads = (int)a->threads;
    if (have_ratio + (po->n_channels > 0) + target > 1)
        return cli_usage(cmd, "give one of --ratio R, --channels LIST and a target (--target-macs F, --target-params F "
                         "or both)");
    if (!have_ratio && !po->n_channels && !target && !po->n_ratio_for)
        return cli_usage(cmd, "give --ratio R, --channels LIST, --target-macs F or --target-params F");
    if ((po->global || target) && po->n_channels)
        return cli_usage(cmd, "--global ranks channels itself; use --ratio or a target with it");
    if ((po->global || target) && n_paths)
        return cli_usage(cmd, "%s prunes every group; do not name modules with it (--ratio-for PATH=R gives one its own "
                         "ratio)", target ? "a target" : "--global");
    if (!po->global && !target && !n_paths && !po->n_ratio_for)
        return cli_usage(cmd, "name the Conv2d, ConvTranspose2d or Linear modules to prune, or prune every group "
                              "with --global");
    if (po->criterion == RM_CRITERION_ACTIVATION && !po->calib.inputs && !po->calib.samples)
        return cli_usage(cmd, "--criterion activation needs calibration data: --calib-inputs DIR or --calib-samples N");
    if (po->reconstruct && !po->calib.inputs && !po->calib.samples)
        return cli_usage(cmd, "--reconstruct needs calibration data: --calib-inputs DIR or --calib-samples N");
    return CLI_OK;
}

void cli_prune_report_print(const rm_prune_report *rep)
{
    printf("%-36s %9s    %s\n", "group (first producer)", "channels", "");
    for (size_t i = 0; i < rep->n_groups; i++) {
        const struct rm_prune_group *g = &rep->groups[i];
        char coupled[32] = "";
        if (g->producers > 1)
            snprintf(coupled, sizeof coupled, " (+%d coupled)", g->producers - 1);
        if (g->ignored)
            printf("%-36s %4lld    %s%s\n", g->name, (long long)g->before, g->reason, coupled);
        else if (g->prunable)
            printf("%-36s %4lld -> %-4lld%s\n", g->name, (long long)g->before, (long long)g->after, coupled);
        else
            printf("%-36s %4lld    unprunable: %s\n", g->name, (long long)g->before, g->reason);
    }
    printf("params %lld -> %lld (%.1f%%), ", (long long)rep->params_before, (long long)rep->params_after,
           rep->params_before ? 100.0 * (double)rep->params_after / (double)rep->params_before : 0.0);
    if (rep->macs_before >= 0 && rep->macs_after >= 0)
        printf("MACs %lld -> %lld (%.1f%%)\n", (long long)rep->macs_before, (long long)rep->macs_after,
               rep->macs_before > 0 ? 100.0 * (double)rep->macs_after / (double)rep->macs_before : 0.0);
    else
        printf("MACs unknown (an op has no shape rule)\n");
    if (rep->n_refits) {
        printf("reconstructed %zu layer%s on %d calibration sample%s (relative squared error on the sampled "
               "positions, before -> after):\n",
               rep->n_refits, rep->n_refits == 1 ? "" : "s", rep->samples, rep->samples == 1 ? "" : "s");
        for (size_t i = 0; i < rep->n_refits; i++) {
            const struct rm_prune_refit *r = &rep->refits[i];
            printf("  %-34s %6lld rows %6lld unknowns  %.4g -> %.4g\n", r->name, (long long)r->rows,
                   (long long)r->unknowns, r->error_before, r->error_after);
        }
    }
}

void cli_prune_report_json(rm_json *j, const rm_prune_report *rep)
{
    cli_kv_bool(j, "dry_run", rep->dry_run);
    rm_json_key(j, "groups");
    rm_json_arr_begin(j);
    for (size_t i = 0; i < rep->n_groups; i++) {
        const struct rm_prune_group *g = &rep->groups[i];
        rm_json_obj_begin(j);
        cli_kv_str(j, "name", g->name);
        cli_kv_int(j, "producers", g->producers);
        cli_kv_int(j, "before", g->before);
        cli_kv_int(j, "after", g->after);
        cli_kv_bool(j, "prunable", g->prunable);
        cli_kv_bool(j, "ignored", g->ignored);
        cli_kv_str(j, "reason", g->reason[0] ? g->reason : NULL);
        rm_json_obj_end(j);
    }
    rm_json_arr_end(j);
    /* the report's own figures: for a dry run, the plan's */
    const char *keys[4] = {"params_before", "params_after", "macs_before", "macs_after"};
    int64_t vals[4] = {rep->params_before, rep->params_after, rep->macs_before, rep->macs_after};
    for (int k = 0; k < 4; k++) {
        rm_json_key(j, keys[k]);
        if (vals[k] >= 0)
            rm_json_int(j, vals[k]);
        else
            rm_json_null(j);
    }
    cli_kv_int(j, "calibration_samples", rep->samples);
    rm_json_key(j, "refits");
    rm_json_arr_begin(j);
    for (size_t i = 0; i < rep->n_refits; i++) {
        const struct rm_prune_refit *r = &rep->refits[i];
        rm_json_obj_begin(j);
        cli_kv_str(j, "name", r->name);
        cli_kv_int(j, "rows", r->rows);
        cli_kv_int(j, "unknowns", r->unknowns);
        cli_kv_num(j, "error_before", r->error_before);
        cli_kv_num(j, "error_after", r->error_after);
        rm_json_obj_end(j);
    }
    rm_json_arr_end(j);
}

struct prune_ctx {
    const struct cli_prune_req *req;
    const rm_prune_report *rep;
};

static void prune_json(rm_json *j, const void *ctx)
{
    const struct prune_ctx *c = ctx;
    cli_kv_str(j, "criterion", rm_criterion_name(c->req->po.criterion ? c->req->po.criterion : RM_CRITERION_L1));
    cli_prune_report_json(j, c->rep);
}

/* The notes worth a line of prune's text output: what the criteria and the targets chose
 * to say (what each layer lost is the table's). */
static void print_prune_notes(const rm_findings *log)
{
    for (size_t i = 0; i < log->n; i++)
        if (log->v[i].kind == RM_FINDING_NOTE &&
            (!strncmp(log->v[i].text, "bn-scale:", 9) || !strncmp(log->v[i].text, "activation:", 11) ||
             (!strncmp(log->v[i].text, "reconstruct:", 12) && strstr(log->v[i].text, "not refitted")) ||
             strstr(log->v[i].text, "kept as pruned")))
            printf("%s\n", log->v[i].text);
}

static int run_prune(struct cli_args *a)
{
    const char *model = a->pos[0];
    const char *const *paths = a->pos + 1;
    size_t n_paths = (size_t)(a->n_pos - 1);
    struct cli_prune_req req;
    int rc = cli_prune_request(&cli_cmd_prune, a, n_paths, &req);
    if (!rc && !a->out && !a->dry_run)
        rc = cli_usage(&cli_cmd_prune, "missing -o OUT (or --dry-run to only print the plan)");
    if (rc) {
        cli_prune_req_free(&req);
        return rc;
    }
    if (a->dry_run) /* nothing is written, nothing verified */
        a->out = a->external_data = NULL, a->no_verify = true;
    struct rm_error err;
    rm_error_clear(&err);
    struct rm_prune_report rep = {0};
    struct cli_edit e;
    rc = cli_edit_begin(&e, a, "prune");
    if (!rc && rm_prune(e.m, paths, n_paths, &req.po, &rep, &e.log, &err))
        rc = cli_fail_in(&err, "%s: prune", model);
    if (!rc && !a->json) {
        print_prune_notes(&e.log);
        cli_prune_report_print(&rep);
        if (a->dry_run)
            printf("dry run: nothing written\n");
    }
    char why[512];
    if (!rc && !a->dry_run && rm_prune_nothing(&rep, &req.po, why, sizeof why)) {
        if (!a->allow_noop) {
            fprintf(stderr, "remodel: %s: prune: nothing was pruned: %s; nothing written (--allow-noop writes the "
                    "unchanged model)\n", model, why);
            rc = CLI_FINDINGS;
        } else if (!a->json) {
            printf("nothing was pruned: %s\n", why);
        }
    }
    if (!rc && !a->dry_run)
        rc = cli_edit_finish(&e);
    if (!rc && a->json)
        cli_edit_json(&e, prune_json, &(struct prune_ctx){&req, &rep});
    rm_prune_report_free(&rep);
    cli_edit_end(&e);
    cli_prune_req_free(&req);
    return rc;
}

static const struct cli_pos prune_pos[] = {
    CLI_POS_MODEL,
    {"PATH", CLI_MANY, CLI_C_MODULE,
     "Conv2d, ConvTranspose2d or Linear modules whose coupled channel groups are pruned (none with --global)"},
    {0},
};

static const struct cli_opt prune_opts[] = {
    CLI_OPTS_PRUNE,
    {.name = "dry-run", CLI_F(dry_run),
     .help = "print the plan (groups, channels kept, params and MACs before and after) and write nothing; no -o "
             "needed"},
    {.name = "output", .short_name = 'o', .metavar = "OUT", CLI_S(out), .complete = CLI_C_FILE,
     .help = "file to write (atomically: temporary file in OUT's folder, fsync, rename; OUT may name MODEL); its "
             "folder must exist and is checked before any work. Needed unless --dry-run"},
    CLI_OPT_THREADS,
    EDIT_OPT_SEED,
    EDIT_OPTS_TAIL,
    {0},
};

const struct cli_cmd cli_cmd_prune = {
    .name = "prune",
    .summary = "remove channels, with every coupled layer following",
    .about = "Prunes the coupled channel group of each named Conv2d, ConvTranspose2d or Linear module, or with "
             "--global or a target every prunable group by one global ranking. Channels are removed physically: "
             "producing convs and Linears lose output rows, BatchNorms and depthwise convs lose channels, consuming "
             "convs and Linears lose inputs; grouped convs lose as many in each group. A residual Add or "
             "squeeze-excite Mul couples all producers of its inputs into one group "
             "that keeps the same channels; Concat shifts channels by offsets, and a Split on channels is the "
             "reverse: its parts are groups of their own, and the conv before it (YOLOv8's C2f cv1) follows what "
             "they keep, its split sizes too. Slices that take every channel once (torch's chunk) are followed like "
             "a Split, their bounds rewritten. A Linear applied to the last axis (ConvNeXt's and a transformer's "
             "MLP) makes a group of its features there, which pointwise ops and the next such Linear follow. "
             "Groups the analysis cannot follow (other reshapes and transposes, LayerNorm over the channels, "
             "graph inputs/outputs) are reported unprunable, never guessed.",
    .pos = prune_pos,
    .opts = prune_opts,
    .notes = EDIT_VERIFY_NOTE "Prints a table of groups (channels before -> after, or why a group is unprunable or "
             "ignored), parameters and MACs before -> after, and with --reconstruct each refitted layer's error. "
             "The kept channels of every changed tensor are recorded in OUT's metadata so 'remodel diff --layers' "
             "can align them.\n"
             "--json adds criterion, dry_run, groups [{name, producers, before, after, prunable, ignored, reason}], "
             "params_before, params_after, macs_before, macs_after (the plan's with --dry-run), calibration_samples, "
             "refits [{name, rows, unknowns, error_before, error_after}].",
    .run = run_prune,
};

/* ---- fold-bn ---------------------------------------------------------------- */

static void fold_json(rm_json *j, const void *ctx)
{
    cli_kv_int(j, "folded", *(const int *)ctx);
}

static int run_fold_bn(struct cli_args *a)
{
    struct rm_error err;
    rm_error_clear(&err);
    struct cli_edit e;
    int n = 0, rc = cli_edit_begin(&e, a, "fold-bn");
    if (!rc && rm_fold_bn(e.m, &n, &e.log, &err))
        rc = cli_fail_in(&err, "%s: fold-bn", a->pos[0]);
    if (!rc && !a->json) {
        print_notes(&e.log);
        printf("folded %d BatchNorm%s\n", n, n == 1 ? "" : "s");
    }
    if (!rc)
        rc = cli_edit_finish(&e);
    if (!rc && a->json)
        cli_edit_json(&e, fold_json, &n);
    cli_edit_end(&e);
    return rc;
}

static const struct cli_pos fold_pos[] = {CLI_POS_MODEL, {0}};

static const struct cli_opt fold_opts[] = {
    CLI_OPT_OUT_MODEL,
    EDIT_OPT_SEED,
    EDIT_OPTS_TAIL,
    {0},
};

const struct cli_cmd cli_cmd_fold_bn = {
    .name = "fold-bn",
    .summary = "fold BatchNorms into the convolutions before them",
    .about = "Each BatchNormalization whose input is a Conv output read by nothing else is folded into that Conv's "
             "weight and bias (W' = W * s, b' = (b - mean) * s + beta, with s = gamma / sqrt(var + eps)) and "
             "removed; the Conv takes over its output tensor.",
    .pos = fold_pos,
    .opts = fold_opts,
    .notes = EDIT_VERIFY_NOTE "--json adds folded (the count).",
    .run = run_fold_bn,
};
