/* remodel diff: run two models on the same inputs and say whether, and where, their
 * outputs part ways. */
#include "cli.h"

#include <getopt.h>
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

static int parse_tol(const char *s, double *out)
{
    char *end;
    if (!s || !*s)
        return -1;
    double v = strtod(s, &end);
    if (*end || !isfinite(v) || v < 0)
        return -1;
    *out = v;
    return 0;
}

struct loaded {
    struct rm_model *m;
};

static int run_diff(int argc, char **argv)
{
    static const struct option opts[] = {{"input", required_argument, NULL, 'i'},
                                         {"seed", required_argument, NULL, 's'},
                                         {"atol", required_argument, NULL, 'a'},
                                         {"rtol", required_argument, NULL, 'r'},
                                         {"threads", required_argument, NULL, 't'},
                                         {"layers", no_argument, NULL, 'l'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"report", required_argument, NULL, 'R'},
                                         {0, 0, 0, 0}};
    const char *inputs[MAX_INPUTS], *report = NULL;
    char names[MAX_INPUTS][256];
    const char *name_ptrs[MAX_INPUTS];
    struct rm_host_tensor values[MAX_INPUTS];
    struct rm_diff_options o;
    int n_inputs = 0, json = 0, c;
    long long threads = 0;
    uint64_t seed = 0;
    rm_diff_options_default(&o);
    while ((c = getopt_long(argc, argv, "i:", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            if (n_inputs == MAX_INPUTS)
                return cli_usage(&cli_cmd_diff, "too many -i options (at most %d)", MAX_INPUTS);
            inputs[n_inputs++] = optarg;
            break;
        case 's':
            if (cli_parse_u64(optarg, &seed))
                return cli_usage(&cli_cmd_diff, "--seed needs an integer from 0 to 18446744073709551615, got '%s'",
                                 optarg);
            break;
        case 'a':
            if (parse_tol(optarg, &o.atol))
                return cli_usage(&cli_cmd_diff, "--atol needs a non-negative number, got '%s'", optarg);
            break;
        case 'r':
            if (parse_tol(optarg, &o.rtol))
                return cli_usage(&cli_cmd_diff, "--rtol needs a non-negative number, got '%s'", optarg);
            break;
        case 't':
            if (cli_parse_int(optarg, 0, 1024, &threads))
                return cli_usage(&cli_cmd_diff, "--threads needs an integer 0..1024, got '%s'", optarg);
            break;
        case 'l':
            o.layers = true;
            break;
        case 'j':
            json = 1;
            break;
        case 'R':
            if (!*optarg)
                return cli_usage(&cli_cmd_diff, "--report needs a file name");
            report = optarg;
            break;
        default:
            return cli_usage(&cli_cmd_diff, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 2)
        return cli_usage(&cli_cmd_diff, "expected two models A and B, got %d argument%s", argc - optind,
                         argc - optind == 1 ? "" : "s");
    for (int k = 0; k < n_inputs; k++) {
        const char *eq = strchr(inputs[k], '=');
        if (!eq || eq == inputs[k] || !eq[1])
            return cli_usage(&cli_cmd_diff, "bad -i '%s': expected NAME=FILE", inputs[k]);
        if ((size_t)(eq - inputs[k]) >= sizeof names[k])
            return cli_usage(&cli_cmd_diff, "bad -i '%s': input name too long", inputs[k]);
        snprintf(names[k], sizeof names[k], "%.*s", (int)(eq - inputs[k]), inputs[k]);
        name_ptrs[k] = names[k];
    }
    const char *pa = argv[optind], *pb = argv[optind + 1];
    struct rm_error err;
    struct loaded a, b;
    struct rm_diff_result r;
    char input_desc[1024];
    int rc = CLI_OK, n_read = 0;
    rm_error_clear(&err);
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
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
    if (rm_model_load(&a.m, pa, NULL, &err) || rm_model_load(&b.m, pb, NULL, &err)) {
        rc = cli_fail(&err);
        goto done;
    }
    /* the report may not replace either model or a file they read their weights from */
    if (report && (cli_outputs_guard(&outs, a.m) || cli_outputs_guard(&outs, b.m))) {
        rc = CLI_BAD;
        goto done;
    }
    o.seed = seed;
    o.threads = (int)threads;
    rm_input_set given = {n_inputs, name_ptrs, values};
    o.n_sets = n_inputs ? 1 : 0;
    o.sets = &given;
    if (rm_diff(a.m, b.m, &o, &r, &err)) {
        rc = cli_fail(&err);
        goto done;
    }
    size_t off = 0;
    input_desc[0] = '\0';
    for (int k = 0; k < n_inputs && off < sizeof input_desc; k++)
        off += (size_t)snprintf(input_desc + off, sizeof input_desc - off, "%s%s", k ? ", " : "", inputs[k]);
    if (off < sizeof input_desc)
        snprintf(input_desc + off, sizeof input_desc - off, "%sseeded random normal (seed %llu)%s",
                 n_inputs ? "; others " : "", (unsigned long long)seed, n_inputs ? "" : " for every input");
    if (report) {
        struct rm_report_info info = {pa, pb, input_desc};
        if (rm_diff_write_report(&r, &info, report, &err)) {
            rc = cli_fail(&err);
            goto done;
        }
    }
    if (json)
        rm_diff_write_json(&r, stdout);
    else
        print_text(&r, pa, pb, input_desc);
    rc = r.pass ? CLI_OK : CLI_FINDINGS;
done:
    for (int k = 0; k < n_read; k++)
        rm_tensor_free(&values[k]);
    rm_diff_result_free(&r);
    rm_model_free(a.m);
    rm_model_free(b.m);
    return rc;
}

const struct cli_cmd cli_cmd_diff = {
    "diff", "A B [-i NAME=FILE]... [--seed N] [--atol X] [--rtol Y] [--layers] [--json] [--report FILE.html]",
    "Run two models on the same inputs and tell whether and where they differ.\n"
    "Compares every graph output and, with --layers, every module's output.",
    "Both models get the same inputs: the files given with -i, the rest seeded random\n"
    "normal values shaped like A's inputs. The models must take the same inputs (names,\n"
    "types, shapes) and have as many outputs; outputs are matched by position. For each\n"
    "output: max abs, max rel (|B-A| / max(|A|,|B|)), mean abs, cosine similarity, and\n"
    "for [N, classes] outputs top-1 and top-5 agreement (argmax equal; top-5 overlap).\n"
    "An element fails when abs > atol and rel > rtol.\n\n"
    "options:\n"
    "  -i, --input NAME=FILE  value of graph input NAME: a TensorProto .pb or a .npy\n"
    "  --seed N               seed for random inputs (default 0)\n"
    "  --atol X               absolute tolerance (default 1e-05)\n"
    "  --rtol Y               relative tolerance (default 0.0001)\n"
    "  --layers               also compare the output of every module, matched by module\n"
    "                         path, in topological order (plans run unfused, streamed:\n"
    "                         each pair of tensors is freed once compared); reports\n"
    "                         the first divergent module and the error growth. Where a\n"
    "                         shape differs, channels are aligned by the channel map an\n"
    "                         edit recorded in B's metadata (remodel.channel_map/<tensor>);\n"
    "                         without one the module is not comparable (not a failure)\n"
    "  --json                 print one JSON document: pass, atol, rtol, outputs [{name,\n"
    "                         shape, max_abs, max_rel, mean_abs, cosine, top1, top5,\n"
    "                         mismatched, pass, ...}], layers [{path, type, tensor,\n"
    "                         max_abs, max_rel, cosine, pass, comparable, aligned,\n"
    "                         note}] (a module that is not comparable has pass true\n"
    "                         and null numbers), first_divergent (module path or null)\n"
    "  --report FILE.html     write a self-contained HTML report: verdict, outputs table,\n"
    "                         chart of the error per module (with --layers)\n"
    "  --threads N            oneDNN/OpenMP threads (default: all)\n"
    "Exit 0 when every output is within tolerance, 1 when one is not, 2 for bad input\n"
    "(unreadable model or tensor file, models with different inputs, unsupported op).\n",
    run_diff,
};
