/* remodel diff: run two models on the same inputs and say whether, and where, their
 * outputs part ways. */
#include "cli.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INPUTS 64

/* "1.2e-06", "0" or "inf" into buf. */
static const char *fmt_num(char *buf, size_t n, double v)
{
    if (!isfinite(v))
        snprintf(buf, n, "%s", isnan(v) ? "-" : "inf");
    else if (v == 0)
        snprintf(buf, n, "0");
    else
        snprintf(buf, n, "%.3g", v);
    return buf;
}


static void print_text(const struct rm_diff_result *r, const char *pa, const char *pb, const char *inputs)
{
    char c1[32], c2[32], c3[32];
    size_t n_fail = 0, w = 6, n_na = 0;
    printf("A (reference)  %s\nB              %s\ninputs         %s\n", pa, pb, inputs);
    if (r->atol >= 0)
        printf("tolerance      atol %g, rtol %g (an element fails when |B-A| > atol + rtol*|A|)\n", r->atol, r->rtol);
    else
        printf("tolerance      atol %g*max|A| per output, rtol %g (an element fails when |B-A| > atol + rtol*|A|)\n",
               r->atol_scale, r->rtol);
    printf("               cosine >= %g%s\n\n", r->min_cosine, r->min_top1 > 0 ? ", top-1 agreement on every row" : "");
    for (size_t k = 0; k < r->n_outputs; k++)
        if (strlen(r->outputs[k].name) > w)
            w = strlen(r->outputs[k].name);
    printf("%-*s  %-10s %-10s %-10s %-10s %-7s %-7s %s\n", (int)w, "output", "max_abs", "max_rel", "mean_abs",
           "cosine", "top-1", "top-5", "result");
    for (size_t k = 0; k < r->n_outputs; k++) {
        const struct rm_diff_output *o = &r->outputs[k];
        n_fail += !o->s.pass;
        if (o->note) {
            printf("%-*s  %s  FAIL\n", (int)w, o->name, o->note);
            continue;
        }
        char t1[16] = "-", t5[16] = "-";
        if (!isnan(o->top1))
            snprintf(t1, sizeof t1, "%.1f%%", 100 * o->top1);
        if (!isnan(o->top5))
            snprintf(t5, sizeof t5, "%.1f%%", 100 * o->top5);
        printf("%-*s  %-10s %-10s %-10s %-10.6f %-7s %-7s %s", (int)w, o->name,
               fmt_num(c1, sizeof c1, o->s.max_abs), fmt_num(c2, sizeof c2, o->s.max_rel),
               fmt_num(c3, sizeof c3, o->s.mean_abs), o->s.cosine, t1, t5, o->s.pass ? "pass" : "FAIL");
        if (!o->s.pass)
            printf(" (%lld of %lld elements)", (long long)o->s.n_fail, (long long)o->s.n);
        printf("%s\n", o->aligned ? " (channel-aligned)" : "");
    }
    if (r->n_layers) {
        size_t pw = 6;
        for (size_t i = 0; i < r->n_layers; i++) {
            size_t len = strlen(r->layers[i].path);
            pw = len > pw ? len : pw;
        }
        pw = pw > 48 ? 48 : pw;
        printf("\nmodules, topological order (unfused plans):\n");
        printf("  %-*s  %-18s %-10s %-10s %-10s %-8s %s\n", (int)pw, "module", "type", "max_abs", "max_rel",
               "cosine", "growth", "result");
        double prev = 0;
        for (size_t i = 0; i < r->n_layers; i++) {
            const struct rm_diff_layer *l = &r->layers[i];
            if (!l->comparable) {
                n_na++;
                printf("  %-*s  %-18s not comparable: %s\n", (int)pw, l->path, l->type, l->note ? l->note : "");
                continue;
            }
            char g[16] = "";
            if (prev > 0 && l->s.max_abs > 0 && isfinite(l->s.max_abs))
                snprintf(g, sizeof g, "x%.2g", l->s.max_abs / prev);
            printf("  %-*s  %-18s %-10s %-10s %-10.6f %-8s %s%s%s\n", (int)pw, l->path, l->type,
                   fmt_num(c1, sizeof c1, l->s.max_abs), fmt_num(c2, sizeof c2, l->s.max_rel), l->s.cosine, g,
                   l->s.pass ? "pass" : "FAIL", l->aligned ? " (channel-aligned)" : "",
                   (int)i == r->first_divergent ? "  <- first divergent" : "");
            if (isfinite(l->s.max_abs))
                prev = l->s.max_abs;
        }
        if (r->first_divergent >= 0) {
            const struct rm_diff_layer *l = &r->layers[r->first_divergent];
            printf("\nfirst divergent module: %s (%s), max abs %s\n", l->path, l->type,
                   fmt_num(c1, sizeof c1, l->s.max_abs));
        } else {
            printf("\nno module diverges%s\n", n_na ? "" : " (every module compared)");
        }
        if (n_na)
            printf("%zu module%s not comparable (shapes differ without a channel map, or missing in B)\n",
                   n_na, n_na == 1 ? "" : "s");
    }
    if (r->pass)
        printf("\nPASS: %s within tolerance\n", r->n_outputs == 1 ? "the output is" : "all outputs are");
    else
        printf("\nFAIL: %zu of %zu output%s outside tolerance\n", n_fail, r->n_outputs,
               r->n_outputs == 1 ? "" : "s");
}

struct loaded {
    struct rm_model *m;
};

static int run_diff(struct cli_args *a)
{
    const char **inputs = a->inputs.v, *report = a->report;
    char names[MAX_INPUTS][256];
    const char *name_ptrs[MAX_INPUTS];
    struct rm_host_tensor values[MAX_INPUTS];
    struct rm_diff_options o;
    int n_inputs = a->inputs.n;
    for (int k = 0; k < n_inputs; k++) {
        const char *eq = strchr(inputs[k], '=');
        if (!eq || eq == inputs[k] || !eq[1])
            return cli_usage(&cli_cmd_diff, "bad -i '%s': expected NAME=FILE", inputs[k]);
        if ((size_t)(eq - inputs[k]) >= sizeof names[k])
            return cli_usage(&cli_cmd_diff, "bad -i '%s': input name too long", inputs[k]);
        snprintf(names[k], sizeof names[k], "%.*s", (int)(eq - inputs[k]), inputs[k]);
        name_ptrs[k] = names[k];
    }
    const char *pa = a->pos[0], *pb = a->pos[1];
    struct rm_error err;
    rm_model *ma = NULL, *mb = NULL;
    struct rm_diff_result r;
    rm_input_sets *sets = NULL;
    char input_desc[1024];
    int rc = CLI_OK, n_read = 0;
    rm_error_clear(&err);
    memset(&r, 0, sizeof r);
    memset(values, 0, sizeof values);
    struct cli_outputs outs = {0};
    if (report && cli_output_add(&outs, "--report", report, false))
        return CLI_BAD;
    for (; n_read < n_inputs; n_read++)
        if (rm_tensor_read(strchr(inputs[n_read], '=') + 1, &values[n_read], NULL, 0, &err)) {
            rc = cli_fail(&err);
            goto done;
        }
    if (rm_model_load(&ma, pa, NULL, &err) || rm_model_load(&mb, pb, NULL, &err)) {
        rc = cli_fail(&err);
        goto done;
    }
    /* the report may not replace either model or a file they read their weights from */
    if (report && (cli_outputs_guard(&outs, ma) || cli_outputs_guard(&outs, mb))) {
        rc = CLI_BAD;
        goto done;
    }
    if ((rc = cli_input_shapes(ma, &a->input_shapes, false)) || (rc = cli_input_shapes(mb, &a->input_shapes, false)) ||
        (rc = cli_verdict_options(a, a->samples, a->inputs_dir, ma, &o, &sets)))
        goto done;
    rm_input_set given = {n_inputs, name_ptrs, values};
    if (n_inputs) {
        o.n_sets = 1;
        o.sets = &given;
    }
    o.layers = a->layers;
    o.save_inputs = a->save_inputs;
    if (rm_diff(ma, mb, &o, &r, &err)) {
        rc = cli_fail(&err);
        goto done;
    }
    cli_note_batch(ma);
    size_t off = 0;
    input_desc[0] = '\0';
    if (a->inputs_dir)
        off += (size_t)snprintf(input_desc, sizeof input_desc, "%zu set%s from %s", rm_input_sets_count(sets),
                                rm_input_sets_count(sets) == 1 ? "" : "s", a->inputs_dir);
    for (int k = 0; k < n_inputs && off < sizeof input_desc; k++)
        off += (size_t)snprintf(input_desc + off, sizeof input_desc - off, "%s%s", k ? ", " : "", inputs[k]);
    if (off < sizeof input_desc)
        snprintf(input_desc + off, sizeof input_desc - off, "%sseeded random normal (sample k: seed %llu + k)",
                 off ? "; the rest " : "", (unsigned long long)a->seed);
    if (report) {
        struct rm_report_info info = {pa, pb, input_desc};
        if (rm_diff_write_report(&r, &info, report, &err)) {
            rc = cli_fail(&err);
            goto done;
        }
    }
    if (a->json)
        rm_diff_write_json(&r, stdout);
    else
        print_text(&r, pa, pb, input_desc);
    if (!a->json && a->save_inputs)
        printf("inputs of the %d sample%s written to %s\n", r.samples, r.samples == 1 ? "" : "s", a->save_inputs);
    rc = r.pass ? CLI_OK : CLI_FINDINGS;
done:
    for (int k = 0; k < n_read; k++)
        rm_tensor_free(&values[k]);
    rm_input_sets_free(sets);
    rm_diff_result_free(&r);
    rm_model_free(ma);
    rm_model_free(mb);
    return rc;
}

static const struct cli_pos diff_pos[] = {
    {"A", CLI_ONE, CLI_C_FILE, "the reference model"},
    {"B", CLI_ONE, CLI_C_FILE, "the model compared with it"},
    {0},
};

static const struct cli_opt diff_opts[] = {
    {CLI_OPT_INPUT_FIELDS, .group = 'i'},
    {.name = "inputs", .metavar = "DIR", CLI_S(inputs_dir), .complete = CLI_C_DIR, .group = 'i',
     .help = CLI_INPUT_SETS_HELP},
    CLI_OPT_INPUT_SHAPE,
    CLI_OPT_SEED_INPUTS,
    {.name = "samples", .metavar = "N", CLI_I(samples), .min = 1, .max = 100000,
     .help = "input sets compared (default 1): the given ones first, then seeded random ones (sample k: seed + k); "
             "figures are the worst over samples, cosine also as a mean, top-1/top-5 over every row"},
    {.name = "save-inputs", .metavar = "DIR", CLI_S(save_inputs), .complete = CLI_C_DIR,
     .help = "write every sample's inputs to DIR/test_data_set_<k>/input_<j>.pb, so that --inputs DIR replays "
             "the diff bit for bit; DIR must be empty or new"},
    CLI_OPTS_TOLERANCE,
    {.name = "layers", CLI_F(layers),
     .help = "also compare the output of every module, matched by module path, in topological order (plans run "
             "unfused, streamed: each pair of tensors is freed once compared); reports the first divergent module "
             "and the error growth. Where a shape differs, channels are aligned by the channel map an edit "
             "recorded in B's metadata (remodel.channel_map/<tensor>); without one the module is not comparable "
             "(not a failure)"},
    CLI_OPT_JSON(": pass, samples, seed, atol (null: scaled), atol_scale, rtol, min_cosine, min_top1, outputs "
                 "[{name, shape, max_abs, max_rel, mean_abs, cosine (the worst sample's), cosine_mean, scale (max "
                 "|A|), atol (applied), top1, top5, mismatched, compared, aligned, pass, note}], layers [{path, "
                 "type, tensor, max_abs, max_rel, cosine, pass, comparable, aligned, note}] (a module that is not "
                 "comparable has pass true and null numbers), first_divergent (module path or null)"),
    {.name = "report", .metavar = "FILE.html", CLI_S(report), .complete = CLI_C_FILE,
     .help = "write a self-contained HTML report: verdict, the edits each model records, outputs and top classes, "
             "and with --layers charts of max |B-A| and 1 - cosine per module, the first divergent module's "
             "channels and the modules table"},
    CLI_OPT_THREADS,
    {0},
};

const struct cli_cmd cli_cmd_diff = {
    .name = "diff",
    .summary = "run two models on the same inputs and compare every output",
    .about = "Tells whether and where two models differ: every graph output and, with --layers, every module's "
             "output.\n"
             "Both models get the same inputs: the files given with -i, the rest seeded random normal values "
             "shaped like A's inputs. The models must take the same inputs (names, types, shapes) and have as "
             "many outputs; outputs are matched by position. For each output: max abs, max rel (|B-A| / "
             "max(|A|,|B|)), mean abs, cosine similarity, and for [N, classes] outputs top-1 and top-5 agreement "
             "(argmax equal; top-5 overlap). An element fails when |B-A| > atol + rtol*|A| (numpy's allclose, A the "
             "reference), atol being 1e-5 times the largest |A| of that output unless given; an output fails when an "
             "element fails, when its cosine on a sample is below 0.9999, or, for a classifier output, when a row's "
             "top class differs.",
    .pos = diff_pos,
    .opts = diff_opts,
    .notes = "Exit 0 when every output is within tolerance, 1 when one is not, 2 for bad input (unreadable model "
             "or tensor file, models with different inputs, unsupported op).",
    .run = run_diff,
};
