/* remodel replace (and the shared tail of every command that writes an edited model:
 * verify against the original on the same seeded input, then save atomically). */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* What an edit changed, one line per layer. */
static void print_notes(const rm_findings *log)
{
    for (size_t i = 0; i < log->n; i++)
        if (log->v[i].kind == RM_FINDING_NOTE)
            printf("%s\n", log->v[i].text);
}

/* Run the original and the edited model on the same seeded input; v receives the
 * comparison of output 0. Returns CLI_OK, or CLI_BAD (printed) when either model cannot
 * run. */
int cli_verify(struct rm_model *orig, struct rm_model *edited, uint64_t seed, struct cli_verdict *v)
{
    struct rm_error err;
    rm_error_clear(&err);
    memset(v, 0, sizeof *v);
    v->seed = seed;
    v->top1 = NAN;
    struct rm_diff_result r = {0};
    struct rm_diff_options o;
    rm_diff_options_default(&o);
    o.seed = seed;
    int rc = rm_diff(orig, edited, &o, &r, &err);
    if (rc) {
        rc = cli_fail_in(&err, "verification failed, nothing written");
    } else if (r.n_outputs > 0) {
        const struct rm_diff_output *out = &r.outputs[0];
        v->ran = true;
        snprintf(v->output, sizeof v->output, "%s", out->name);
        v->max_abs = out->s.max_abs;
        v->max_rel = out->s.max_rel;
        v->cosine = out->s.cosine;
        v->top1 = out->top1;
        v->pass = r.pass;
    }
    rm_diff_result_free(&r);
    return rc ? CLI_BAD : CLI_OK;
}

void cli_verdict_print(const struct cli_verdict *v)
{
    if (!v->ran)
        return;
    printf("verify: output '%s' vs original (seed %llu): max_abs %.3g, max_rel %.3g, cosine %.6f", v->output,
           (unsigned long long)v->seed, v->max_abs, v->max_rel, v->cosine);
    if (!isnan(v->top1))
        printf(", top-1 agreement %.0f%%", 100.0 * v->top1);
    printf("%s\n", v->pass ? " (identical within tolerance)" : "");
}

void cli_verdict_json(rm_json *j, const struct cli_verdict *v)
{
    if (!v->ran) {
        rm_json_null(j);
        return;
    }
    rm_json_obj_begin(j);
    rm_json_key(j, "output");
    rm_json_str(j, v->output);
    rm_json_key(j, "seed");
    rm_json_int(j, (int64_t)v->seed);
    rm_json_key(j, "max_abs");
    rm_json_num(j, v->max_abs);
    rm_json_key(j, "max_rel");
    rm_json_num(j, v->max_rel);
    rm_json_key(j, "cosine");
    rm_json_num(j, v->cosine);
    rm_json_key(j, "top1_agreement");
    rm_json_num(j, v->top1);
    rm_json_key(j, "pass");
    rm_json_bool(j, v->pass);
    rm_json_obj_end(j);
}

int cli_save_edit(struct rm_model *edited, const char *out, const char *external_data)
{
    struct rm_error err;
    rm_error_clear(&err);
    struct rm_save_options so = {.external_data = external_data};
    if (rm_model_save(edited, out, &so, &err))
        return cli_fail(&err);
    return CLI_OK;
}

int cli_finish_edit(struct rm_model *orig, struct rm_model *edited, const char *out, bool do_verify,
                    uint64_t seed, const char *external_data)
{
    if (do_verify) {
        struct cli_verdict v;
        int rc = cli_verify(orig, edited, seed, &v);
        if (rc)
            return rc;
        cli_verdict_print(&v);
    }
    if (cli_save_edit(edited, out, external_data))
        return CLI_BAD;
    printf("wrote %s\n", out);
    return CLI_OK;
}

#define EDIT_COMMON_OPTIONS                                                                                  \
    {"output", required_argument, NULL, 'o'}, {"seed", required_argument, NULL, 's'},                        \
        {"no-verify", no_argument, NULL, 'n'}, {"external-data", required_argument, NULL, 'x'}

/* Handle getopt result c if it is a common option: 1 handled, 0 not common, -1 bad value
 * (message printed, return CLI_BAD). */
static int edit_common_opt(const struct cli_cmd *cmd, int c, struct cli_edit_common *ec)
{
    switch (c) {
    case 'o': ec->out = optarg; return 1;
    case 'n': ec->verify = false; return 1;
    case 'x': ec->ext = optarg; return 1;
    case 's':
        if (cli_parse_u64(optarg, &ec->seed)) {
            cli_usage(cmd, "--seed must be an integer from 0 to 18446744073709551615, not '%s'", optarg);
            return -1;
        }
        return 1;
    default: return 0;
    }
}

int cli_load_for_edit(const char *model, const struct cli_edit_common *ec, struct rm_model **orig,
                      struct rm_model **m)
{
    struct cli_outputs outs = {0};
    struct rm_error err;
    rm_error_clear(&err);
    *orig = *m = NULL;
    if (ec->out && cli_model_outputs(&outs, ec->out, ec->ext))
        return CLI_BAD;
    if (rm_model_load(orig, model, NULL, &err))
        return cli_fail(&err);
    if (cli_outputs_guard(&outs, *orig)) {
        rm_model_free(*orig);
        *orig = NULL;
        return CLI_BAD;
    }
    if (rm_model_clone(m, *orig, &err)) {
        rm_model_free(*orig);
        *orig = NULL;
        return cli_fail(&err);
    }
    return CLI_OK;
}

/* Check the outputs (before any work: the folder exists, nothing there that cannot be
 * replaced), then load model and make sure no output is a file it is read from; *m is a
 * clone to edit, *orig the model as loaded, to verify the edit against (the clone shares
 * its weights until the edit changes them). Prints and returns CLI_BAD on failure. */
static int load_for_edit(const char *model, const struct cli_edit_common *ec, struct rm_model **orig,
                         struct rm_model **m)
{
    return cli_load_for_edit(model, ec, orig, m);
}

static int parse_init(const char *s, int *init)
{
    if (!strcmp(s, "keep"))
        *init = RM_INIT_KEEP;
    else if (!strcmp(s, "kaiming"))
        *init = RM_INIT_KAIMING;
    else if (!strcmp(s, "zeros"))
        *init = RM_INIT_ZEROS;
    else
        return -1;
    return 0;
}

#define MSG(...) (snprintf(msg, msg_size, __VA_ARGS__), -1)

/* The name of a common option by its getopt code. */
static const char *common_name(int c)
{
    return c == 'o' ? "-o" : c == 'n' ? "--no-verify" : c == 'x' ? "--external-data" : "--seed";
}

int cli_replace_parse(int argc, char **argv, struct cli_edit_common *ec, struct cli_replace_args *ra, char *msg,
                      size_t msg_size)
{
    static const struct option opts[] = {EDIT_COMMON_OPTIONS,
                                         {"init", required_argument, NULL, 'i'},
                                         {"propagate", no_argument, NULL, 'p'},
                                         {0, 0, 0, 0}};
    memset(ra, 0, sizeof *ra);
    ra->ro.init = RM_INIT_KEEP;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        if (c == 's' && !ec) {
            /* a script line: --seed seeds kaiming weights (apply has its own for verifying) */
            if (cli_parse_u64(optarg, &ra->ro.seed))
                return MSG("--seed must be an integer from 0 to 18446744073709551615, not '%s'", optarg);
        } else if (c == 'o' || c == 'n' || c == 'x' || c == 's') {
            if (!ec)
                return MSG("%s is an option of apply itself, not of a script line", common_name(c));
            if (edit_common_opt(&cli_cmd_replace, c, ec) < 0)
                return -2; /* printed */
        } else if (c == 'i') {
            if (parse_init(optarg, &ra->ro.init))
                return MSG("--init must be keep, kaiming or zeros, not '%s'", optarg);
        } else if (c == 'p') {
            ra->ro.propagate = true;
        } else {
            return MSG("unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (ec)
        ra->ro.seed = ec->seed;
    int want = ec ? 3 : 2;
    if (argc - optind != want)
        return MSG("expected %sPATH SPEC, got %d arguments", ec ? "MODEL " : "", argc - optind);
    if (ec)
        ra->model = argv[optind++];
    ra->path = argv[optind];
    ra->spec = argv[optind + 1];
    return 0;
}

static int run_replace(int argc, char **argv)
{
    struct cli_edit_common ec = {.verify = true};
    struct cli_replace_args ra;
    char msg[512];
    int rc = cli_replace_parse(argc, argv, &ec, &ra, msg, sizeof msg);
    if (rc == -2)
        return CLI_BAD;
    if (rc)
        return cli_usage(&cli_cmd_replace, "%s", msg);
    if (!ec.out)
        return cli_usage(&cli_cmd_replace, "missing -o OUT");

    struct rm_error err;
    rm_error_clear(&err);
    if (rm_spec_check(ra.spec, &err))
        return cli_fail(&err);
    struct rm_model *orig, *m;
    rc = load_for_edit(ra.model, &ec, &orig, &m);
    if (rc)
        return rc;
    rm_findings log = {0};
    rc = rm_replace(m, ra.path, ra.spec, &ra.ro, &log, &err);
    if (rc) {
        rc = cli_fail_in(&err, "%s: replace %s", ra.model, ra.path);
    } else {
        print_notes(&log);
        rc = cli_finish_edit(orig, m, ec.out, ec.verify, ra.ro.seed, ec.ext);
    }
    rm_findings_free(&log);
    rm_model_free(m);
    rm_model_free(orig);
    return rc;
}

const struct cli_cmd cli_cmd_replace = {
    "replace", "MODEL PATH SPEC -o OUT [--init keep|kaiming|zeros] [--seed N] [--propagate]",
    "Replace a Conv2d module with a new spec, verified.\n"
    "PATH names the module (layer4.0.conv1 or layer4[0].conv1); SPEC is PyTorch syntax,\n"
    "positional or keyword, ints or tuples: 'Conv2d(256, 512, kernel_size=3, stride=2,\n"
    "padding=1, bias=False)'. The Conv node keeps its name, place and module path; its\n"
    "attributes and weight/bias initializers are rewritten (an initializer shared with\n"
    "other nodes is copied first). Shapes are re-inferred through the whole graph: if a\n"
    "consumer no longer fits, nothing is written and every disagreeing module is named.",
    "options:\n"
    "  -o, --output OUT     file to write (atomically; may name MODEL)\n"
    "  --init keep          copy the old weights where shapes overlap: kernels cropped or\n"
    "                       zero-padded about their centre, first channels kept, new\n"
    "                       entries zero; exact when the shape is unchanged (default)\n"
    "  --init kaiming       PyTorch's Conv2d default (kaiming-uniform a=sqrt(5), bias\n"
    "                       uniform in 1/sqrt(fan_in)), from --seed\n"
    "  --init zeros         all zero\n"
    "  --seed N             seed for kaiming weights and for the verification input (0)\n"
    "  --propagate          carry an out_channels change to dependents: BatchNorm\n"
    "                       parameters sliced or extended (new channels are identities),\n"
    "                       depthwise convs follow, the next conv's in-channels and a\n"
    "                       Linear's input features follow (new weights zero, or kaiming);\n"
    "                       and fewer in_channels upstream: the group of channels the conv\n"
    "                       reads is pruned to that many first (lowest L1 norm go), every\n"
    "                       layer of the group following, as 'remodel prune' does\n"
    "  --no-verify          skip running both models\n"
    "  --external-data FILE write weights to FILE beside OUT (see 'remodel save --help')\n"
    "\n"
    "A conv the exporter folded a BatchNorm into keeps that BatchNorm's shift as its ONNX\n"
    "bias whatever the spec's bias says. Channel changes are recorded in OUT's metadata\n"
    "(remodel.channel_map/<tensor>) so 'remodel diff --layers' can align the channels.\n"
    "Verification runs the original and the edited model on the same seeded input and\n"
    "prints max abs/rel difference, cosine similarity and top-1 agreement of output 0.\n",
    run_replace,
};

/* ---- prune ------------------------------------------------------------------ */

/* "3,5,7" into a malloc'd array; returns the count, or -1. */
static int parse_channels(const char *s, int64_t **out)
{
    int n = 0;
    int64_t *v = NULL;
    while (*s) {
        char *end;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (end == s || x < 0 || errno == ERANGE || n >= 1 << 20) {
            free(v);
            return -1;
        }
        int64_t *nv = realloc(v, (size_t)(n + 1) * sizeof *nv);
        if (!nv) {
            free(v);
            return -1;
        }
        v = nv;
        v[n++] = x;
        s = end;
        if (*s == ',' && s[1])
            s++;
        else if (*s) {
            free(v);
            return -1;
        }
    }
    *out = v;
    return n;
}

/* A fraction: 0 < x < 1 (or <= 1 with le_one), or -1. */
static int parse_fraction(const char *s, bool le_one, bool zero_ok, double *out)
{
    char *end;
    if (!s || !*s)
        return -1;
    double v = strtod(s, &end);
    if (*end || !(zero_ok ? v >= 0 : v > 0) || !(le_one ? v <= 1 : v < 1))
        return -1;
    *out = v;
    return 0;
}

void cli_prune_args_free(struct cli_prune_args *pa)
{
    free(pa->chans);
    free(pa->ignore);
    free(pa->ratio_for);
    memset(pa, 0, sizeof *pa);
}

static int push_str(const char ***v, size_t *n, const char *s)
{
    const char **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return -1;
    nv[(*n)++] = s;
    *v = nv;
    return 0;
}

int cli_prune_parse(int argc, char **argv, struct cli_edit_common *ec, struct cli_prune_args *pa, char *msg,
                    size_t msg_size)
{
    static const struct option opts[] = {EDIT_COMMON_OPTIONS,
                                         {"ratio", required_argument, NULL, 'r'},
                                         {"channels", required_argument, NULL, 'c'},
                                         {"criterion", required_argument, NULL, 'k'},
                                         {"global", no_argument, NULL, 'g'},
                                         {"target-macs", required_argument, NULL, 'M'},
                                         {"target-params", required_argument, NULL, 'P'},
                                         {"ignore", required_argument, NULL, 'I'},
                                         {"round-to", required_argument, NULL, 'R'},
                                         {"ratio-for", required_argument, NULL, 'F'},
                                         {"dry-run", no_argument, NULL, 'd'},
                                         {"reconstruct", no_argument, NULL, 'B'},
                                         {"calib-inputs", required_argument, NULL, 'C'},
                                         {"calib-samples", required_argument, NULL, 'S'},
                                         {"calib-seed", required_argument, NULL, 'E'},
                                         {"threads", required_argument, NULL, 't'},
                                         {"json", no_argument, NULL, 'j'},
                                         {0, 0, 0, 0}};
    memset(pa, 0, sizeof *pa);
    pa->po.criterion = RM_CRITERION_L1;
    pa->po.calib.seed = 1;
    bool have_ratio = false;
    long long v;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        if (c == 'o' || c == 'n' || c == 'x' || c == 's') {
            if (!ec)
                return MSG("%s is an option of apply itself, not of a script line", common_name(c));
            if (edit_common_opt(&cli_cmd_prune, c, ec) < 0)
                return -2; /* printed */
            continue;
        }
        switch (c) {
        case 'r':
            if (parse_fraction(optarg, false, false, &pa->po.ratio))
                return MSG("--ratio must be a number between 0 and 1 (exclusive), not '%s'", optarg);
            have_ratio = true;
            break;
        case 'c': {
            free(pa->chans);
            pa->chans = NULL;
            int n = parse_channels(optarg, &pa->chans);
            if (n <= 0)
                return MSG("--channels must be a comma-separated list of channel indices, not '%s'", optarg);
            pa->po.channels = pa->chans;
            pa->po.n_channels = (size_t)n;
            break;
        }
        case 'k':
            if (!(pa->po.criterion = rm_criterion_parse(optarg)))
                return MSG("--criterion must be l1, l2, bn-scale or activation, not '%s'", optarg);
            break;
        case 'g': pa->po.global = true; break;
        case 'M':
            if (parse_fraction(optarg, true, false, &pa->po.target_macs))
                return MSG("--target-macs is the fraction of MACs kept, above 0 and at most 1 (0.5 keeps "
                           "half), not '%s'", optarg);
            break;
        case 'P':
            if (parse_fraction(optarg, true, false, &pa->po.target_params))
                return MSG("--target-params is the fraction of parameters kept, above 0 and at most 1 (0.5 "
                           "keeps half), not '%s'", optarg);
            break;
        case 'I':
            if (push_str(&pa->ignore, &pa->po.n_ignore, optarg))
                return MSG("out of memory");
            pa->po.ignore = pa->ignore;
            break;
        case 'R':
            if (cli_parse_int(optarg, 1, INT32_MAX, &v))
                return MSG("--round-to must be a positive number of channels, not '%s'", optarg);
            pa->po.round_to = v;
            break;
        case 'F': {
            const char *eq = strrchr(optarg, '=');
            double r;
            if (!eq || eq == optarg || parse_fraction(eq + 1, false, true, &r))
                return MSG("--ratio-for takes PATH=R with 0 <= R < 1 (layer2.0.conv1=0.5), not '%s'", optarg);
            rm_prune_ratio *nr = realloc(pa->ratio_for, (pa->po.n_ratio_for + 1) * sizeof *nr);
            if (!nr)
                return MSG("out of memory");
            pa->ratio_for = nr;
            /* the path is the text before '=' (argv strings are ours to cut) */
            *(char *)eq = '\0';
            nr[pa->po.n_ratio_for].path = optarg;
            nr[pa->po.n_ratio_for].ratio = r;
            pa->po.n_ratio_for++;
            pa->po.ratio_for = pa->ratio_for;
            break;
        }
        case 'd': pa->po.dry_run = true; break;
        case 'B': pa->po.reconstruct = true; break;
        case 'C': pa->po.calib.inputs = optarg; break;
        case 'S':
            if (cli_parse_int(optarg, 1, 1000000, &v))
                return MSG("--calib-samples must be a number of samples from 1 to 1000000, not '%s'", optarg);
            pa->po.calib.samples = (int)v;
            break;
        case 'E':
            if (cli_parse_u64(optarg, &pa->po.calib.seed))
                return MSG("--calib-seed must be an integer from 0 to 18446744073709551615, not '%s'", optarg);
            break;
        case 't':
            if (cli_parse_int(optarg, 1, 1024, &v))
                return MSG("--threads must be a number from 1 to 1024, not '%s'", optarg);
            pa->po.calib.threads = (int)v;
            break;
        case 'j':
            if (!ec)
                return MSG("--json is an option of apply itself, not of a script line");
            pa->json = true;
            break;
        default:
            return MSG("unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (ec) {
        if (argc - optind < 1)
            return MSG("missing MODEL");
        pa->model = argv[optind++];
    }
    pa->paths = (const char *const *)argv + optind;
    pa->n_paths = (size_t)(argc - optind);
    bool target = pa->po.target_macs > 0 || pa->po.target_params > 0;
    if (have_ratio + (pa->po.n_channels > 0) + target > 1)
        return MSG("give exactly one of --ratio R, --channels LIST and a target (--target-macs F, "
                   "--target-params F or both)");
    if (!have_ratio && !pa->po.n_channels && !target && !pa->po.n_ratio_for)
        return MSG("give --ratio R, --channels LIST, --target-macs F or --target-params F");
    if ((pa->po.global || target) && pa->po.n_channels)
        return MSG("--global ranks channels itself; use --ratio or a target with it");
    if ((pa->po.global || target) && pa->n_paths)
        return MSG("%s prunes every group; do not name modules with it (--ratio-for PATH=R gives one its own "
                   "ratio)", target ? "a target" : "--global");
    if (!pa->po.global && !target && !pa->n_paths && !pa->po.n_ratio_for)
        return MSG("name the Conv2d modules to prune, or prune every group with --global");
    if (pa->po.criterion == RM_CRITERION_ACTIVATION && !pa->po.calib.inputs && !pa->po.calib.samples)
        return MSG("--criterion activation needs calibration data: --calib-inputs DIR or --calib-samples N");
    if (pa->po.reconstruct && !pa->po.calib.inputs && !pa->po.calib.samples)
        return MSG("--reconstruct needs calibration data: --calib-inputs DIR or --calib-samples N");
    return 0;
}

void cli_prune_report_print(const struct rm_prune_report *rep)
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
    printf("params %lld -> %lld (%.1f%%), MACs %lld -> %lld (%.1f%%)\n", (long long)rep->params_before,
           (long long)rep->params_after,
           rep->params_before ? 100.0 * (double)rep->params_after / (double)rep->params_before : 0.0,
           (long long)rep->macs_before, (long long)rep->macs_after,
           rep->macs_before > 0 ? 100.0 * (double)rep->macs_after / (double)rep->macs_before : 0.0);
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

void cli_prune_report_json(rm_json *j, const struct rm_prune_report *rep)
{
    rm_json_key(j, "dry_run");
    rm_json_bool(j, rep->dry_run);
    rm_json_key(j, "groups");
    rm_json_arr_begin(j);
    for (size_t i = 0; i < rep->n_groups; i++) {
        const struct rm_prune_group *g = &rep->groups[i];
        rm_json_obj_begin(j);
        rm_json_key(j, "name");
        rm_json_str(j, g->name);
        rm_json_key(j, "producers");
        rm_json_int(j, g->producers);
        rm_json_key(j, "before");
        rm_json_int(j, g->before);
        rm_json_key(j, "after");
        rm_json_int(j, g->after);
        rm_json_key(j, "prunable");
        rm_json_bool(j, g->prunable);
        rm_json_key(j, "ignored");
        rm_json_bool(j, g->ignored);
        rm_json_key(j, "reason");
        if (g->reason[0])
            rm_json_str(j, g->reason);
        else
            rm_json_null(j);
        rm_json_obj_end(j);
    }
    rm_json_arr_end(j);
    rm_json_key(j, "params_before");
    rm_json_int(j, rep->params_before);
    rm_json_key(j, "params_after");
    rm_json_int(j, rep->params_after);
    rm_json_key(j, "macs_before");
    rm_json_int(j, rep->macs_before);
    rm_json_key(j, "macs_after");
    rm_json_int(j, rep->macs_after);
    rm_json_key(j, "calibration_samples");
    rm_json_int(j, rep->samples);
    rm_json_key(j, "refits");
    rm_json_arr_begin(j);
    for (size_t i = 0; i < rep->n_refits; i++) {
        const struct rm_prune_refit *r = &rep->refits[i];
        rm_json_obj_begin(j);
        rm_json_key(j, "name");
        rm_json_str(j, r->name);
        rm_json_key(j, "rows");
        rm_json_int(j, r->rows);
        rm_json_key(j, "unknowns");
        rm_json_int(j, r->unknowns);
        rm_json_key(j, "error_before");
        rm_json_num(j, r->error_before);
        rm_json_key(j, "error_after");
        rm_json_num(j, r->error_after);
        rm_json_obj_end(j);
    }
    rm_json_arr_end(j);
}

static void json_notes(rm_json *j, const rm_findings *log)
{
    rm_json_arr_begin(j);
    for (size_t i = 0; i < log->n; i++)
        if (log->v[i].kind == RM_FINDING_NOTE)
            rm_json_str(j, log->v[i].text);
    rm_json_arr_end(j);
}

void cli_json_notes(rm_json *j, const rm_findings *log)
{
    json_notes(j, log);
}

/* The notes worth a line of prune's text output: what the criteria and the targets
 * chose to say (what each layer lost is the table's). */
static void print_prune_notes(const rm_findings *log)
{
    for (size_t i = 0; i < log->n; i++)
        if (log->v[i].kind == RM_FINDING_NOTE &&
            (!strncmp(log->v[i].text, "bn-scale:", 9) || !strncmp(log->v[i].text, "activation:", 11) ||
             (!strncmp(log->v[i].text, "reconstruct:", 12) && strstr(log->v[i].text, "not refitted")) ||
             strstr(log->v[i].text, "kept as pruned")))
            printf("%s\n", log->v[i].text);
}

static int run_prune(int argc, char **argv)
{
    struct cli_edit_common ec = {.verify = true};
    struct cli_prune_args pa;
    char msg[512];
    int rc = cli_prune_parse(argc, argv, &ec, &pa, msg, sizeof msg);
    if (rc) {
        cli_prune_args_free(&pa);
        return rc == -2 ? CLI_BAD : cli_usage(&cli_cmd_prune, "%s", msg);
    }
    if (!ec.out && !pa.po.dry_run) {
        cli_prune_args_free(&pa);
        return cli_usage(&cli_cmd_prune, "missing -o OUT (or --dry-run to only print the plan)");
    }
    if (pa.po.dry_run)
        ec.out = ec.ext = NULL; /* nothing is written */

    struct rm_error err;
    rm_error_clear(&err);
    struct rm_model *orig, *m;
    rc = load_for_edit(pa.model, &ec, &orig, &m);
    if (rc) {
        cli_prune_args_free(&pa);
        return rc;
    }
    struct rm_prune_report rep;
    rm_findings log = {0};
    struct cli_verdict v = {0};
    rc = rm_prune(m, pa.paths, pa.n_paths, &pa.po, &rep, &log, &err);
    if (rc) {
        rc = cli_fail_in(&err, "%s: prune", pa.model);
    } else if (pa.json) {
        if (!pa.po.dry_run && ec.verify)
            rc = cli_verify(orig, m, ec.seed, &v);
        if (!rc && !pa.po.dry_run)
            rc = cli_save_edit(m, ec.out, ec.ext);
        if (!rc) {
            rm_json j;
            rm_json_init(&j, stdout);
            rm_json_obj_begin(&j);
            rm_json_key(&j, "model");
            rm_json_str(&j, pa.model);
            rm_json_key(&j, "criterion");
            rm_json_str(&j, rm_criterion_name(pa.po.criterion));
            cli_prune_report_json(&j, &rep);
            rm_json_key(&j, "notes");
            json_notes(&j, &log);
            rm_json_key(&j, "verify");
            cli_verdict_json(&j, &v);
            rm_json_key(&j, "written");
            rm_json_str(&j, pa.po.dry_run ? NULL : ec.out);
            rm_json_obj_end(&j);
            rm_json_end(&j);
        }
    } else {
        print_prune_notes(&log);
        cli_prune_report_print(&rep);
        if (pa.po.dry_run)
            printf("dry run: nothing written\n");
        else
            rc = cli_finish_edit(orig, m, ec.out, ec.verify, ec.seed, ec.ext);
    }
    rm_findings_free(&log);
    rm_prune_report_free(&rep);
    rm_model_free(m);
    rm_model_free(orig);
    cli_prune_args_free(&pa);
    return rc;
}

const struct cli_cmd cli_cmd_prune = {
    "prune",
    "MODEL [PATH...] (--ratio R | --channels LIST | --target-macs F | --target-params F) [--criterion "
    "l1|l2|bn-scale|activation] [--global] [--reconstruct] [--calib-inputs DIR | --calib-samples N] [--ignore PATH]... "
    "[--ratio-for PATH=R]... [--round-to N] [--dry-run] [--json] -o OUT",
    "Remove channels, with every coupled layer following.\n"
    "Prunes the coupled channel group of each named Conv2d module, or with --global every\n"
    "prunable group by one global ranking. Channels are removed physically: producing\n"
    "convs lose output rows, BatchNorms and depthwise convs lose channels, consuming\n"
    "convs and a Linear after Flatten lose inputs. A residual Add or squeeze-excite Mul\n"
    "couples all producers of its inputs into one group that keeps the same channels;\n"
    "Concat shifts channels by offsets. Groups the analysis cannot follow (reshapes,\n"
    "transposes, grouped convs, graph inputs/outputs) are reported unprunable, never guessed.",
    "options:\n"
    "  -o, --output OUT    file to write (atomically; may name MODEL)\n"
    "  --ratio R           fraction of each group's channels removed, 0 < R < 1\n"
    "                      (0.25 on a 64-channel group leaves 48); never the last channel\n"
    "  --channels LIST     remove exactly these channels (e.g. 3,17,40) of the one named\n"
    "                      module's group\n"
    "  --global            rank the channels of every prunable group together, each\n"
    "                      group's scores divided by their mean, and remove the lowest R\n"
    "  --target-macs F     global pruning until at most F of the MACs remain (0.5 keeps\n"
    "                      half; the result is at most one group step below F)\n"
    "  --target-params F   the same for parameters (with --target-macs: both met)\n"
    "  --criterion l1|l2|bn-scale|activation\n"
    "                      channel importance, lowest removed first: l1 (default) or l2\n"
    "                      norm of the weights of the group's producing and depthwise\n"
    "                      convs, summed; bn-scale: |gamma|/sqrt(var+eps) of its\n"
    "                      BatchNorms (kept as nodes; groups without one use l1);\n"
    "                      activation: mean |activation| on the calibration data of the\n"
    "                      tensors the group's consumers read\n"
    "  --reconstruct       after removing channels, refit each conv or Linear that lost\n"
    "                      input channels by ridge least squares, in graph order, so that\n"
    "                      on the calibration data its output from the pruned model's\n"
    "                      inputs matches the original's (prints each layer's error)\n"
    "  --calib-inputs DIR  calibration data: one folder per sample in DIR, each holding a\n"
    "                      .pb (TensorProto) or .npy file per model input, named after the\n"
    "                      input or input_<k> (DIR/test_data_set_0/input_0.pb)\n"
    "  --calib-samples N   N seeded random normal inputs instead (or: use at most N of\n"
    "                      the sets in DIR)\n"
    "  --calib-seed N      seed of the random calibration inputs (1)\n"
    "  --ignore PATH       leave whole every group the module PATH (a conv, a block, fc)\n"
    "                      reads, produces or carries; repeatable\n"
    "  --ratio-for PATH=R  the group of Conv2d PATH loses exactly R of its channels, outside\n"
    "                      the global ranking; repeatable\n"
    "  --round-to N        pruned groups keep a multiple of N channels (rounded up)\n"
    "  --dry-run           print the plan (groups, channels kept, params and MACs before\n"
    "                      and after) and write nothing; no -o needed\n"
    "  --json              print the report as one JSON document\n"
    "  --threads N         threads of the calibration runs\n"
    "  --seed N            seed for the verification input (0)\n"
    "  --no-verify         skip running both models\n"
    "  --external-data FILE write weights to FILE beside OUT (see 'remodel save --help')\n"
    "\n"
    "Prints a table of groups (channels before -> after, or why a group is unprunable\n"
    "or ignored) and parameters and MACs before -> after. The kept channels of every\n"
    "changed tensor are recorded in OUT's metadata so 'remodel diff --layers' can align\n"
    "them.\n",
    run_prune,
};

/* ---- fold-bn ---------------------------------------------------------------- */

static int run_fold_bn(int argc, char **argv)
{
    static const struct option opts[] = {EDIT_COMMON_OPTIONS, {0, 0, 0, 0}};
    struct cli_edit_common ec = {.verify = true};
    int c, k;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        if ((k = edit_common_opt(&cli_cmd_fold_bn, c, &ec)) <= 0)
            return k < 0 ? CLI_BAD
                         : cli_usage(&cli_cmd_fold_bn, "unknown or incomplete option '%s'", argv[optind - 1]);
    }
    if (argc - optind != 1)
        return cli_usage(&cli_cmd_fold_bn, "expected one MODEL, got %d arguments", argc - optind);
    if (!ec.out)
        return cli_usage(&cli_cmd_fold_bn, "missing -o OUT");
    const char *model = argv[optind];
    struct rm_error err;
    rm_error_clear(&err);
    struct rm_model *orig, *m;
    int rc = load_for_edit(model, &ec, &orig, &m);
    if (rc)
        return rc;
    rm_findings log = {0};
    int n = 0;
    rc = rm_fold_bn(m, &n, &log, &err);
    if (rc) {
        rc = cli_fail_in(&err, "%s: fold-bn", model);
    } else {
        print_notes(&log);
        printf("folded %d BatchNorm%s\n", n, n == 1 ? "" : "s");
        rc = cli_finish_edit(orig, m, ec.out, ec.verify, (uint64_t)ec.seed, ec.ext);
    }
    rm_findings_free(&log);
    rm_model_free(m);
    rm_model_free(orig);
    return rc;
}

const struct cli_cmd cli_cmd_fold_bn = {
    "fold-bn", "MODEL -o OUT",
    "Fold BatchNorms into the convolutions before them.\n"
    "Each BatchNormalization whose input is a Conv output read by nothing else is folded\n"
    "into that Conv's weight and bias (W' = W * s, b' = (b - mean) * s + beta, with\n"
    "s = gamma / sqrt(var + eps)) and removed; the Conv takes over its output tensor.",
    "options:\n"
    "  -o, --output OUT    file to write (atomically; may name MODEL)\n"
    "  --seed N            seed for the verification input (0)\n"
    "  --no-verify         skip running both models\n"
    "  --external-data FILE write weights to FILE beside OUT (see 'remodel save --help')\n",
    run_fold_bn,
};
