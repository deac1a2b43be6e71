/* remodel replace (and the shared tail of every command that writes an edited model:
 * verify against the original on the same seeded input, then save atomically). */
#include "cli.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* What an edit changed, one line per layer. */
static void print_notes(const rm_findings *log)
{
    for (size_t i = 0; i < log->n; i++)
        if (log->v[i].kind == RM_FINDING_NOTE)
            printf("%s\n", log->v[i].text);
}

/* Run the original and the edited model on the same seeded input and print a one-line
 * summary of output 0. Returns CLI_OK, or CLI_BAD when either model cannot run. */
static int verify(struct rm_model *orig, struct rm_model *edited, uint64_t seed)
{
    struct rm_error err;
    rm_error_clear(&err);
    struct rm_diff_result r = {0};
    struct rm_diff_options o;
    rm_diff_options_default(&o);
    o.seed = seed;
    int rc = rm_diff(orig, edited, &o, &r, &err);
    if (rc) {
        rc = cli_fail_in(&err, "verification failed, nothing written");
    } else if (r.n_outputs > 0) {
        const struct rm_diff_output *out = &r.outputs[0];
        printf("verify: output '%s' vs original (seed %llu): max_abs %.3g, max_rel %.3g, cosine %.6f",
               out->name, (unsigned long long)seed, out->s.max_abs, out->s.max_rel, out->s.cosine);
        if (!isnan(out->top1))
            printf(", top-1 agreement %.0f%%", 100.0 * out->top1);
        printf("%s\n", r.pass ? " (identical within tolerance)" : "");
    }
    rm_diff_result_free(&r);
    return rc ? CLI_BAD : CLI_OK;
}

int cli_finish_edit(struct rm_model *orig, struct rm_model *edited, const char *out, bool do_verify,
                    uint64_t seed, const char *external_data)
{
    if (do_verify) {
        int rc = verify(orig, edited, seed);
        if (rc)
            return rc;
    }
    struct rm_error err;
    rm_error_clear(&err);
    struct rm_save_options so = {.external_data = external_data};
    if (rm_model_save(edited, out, &so, &err))
        return cli_fail(&err);
    printf("wrote %s\n", out);
    return CLI_OK;
}

/* Options every model-writing command takes: -o, --seed, --no-verify, --external-data. */
struct edit_common {
    const char *out, *ext;
    bool verify;
    uint64_t seed;
};

#define EDIT_COMMON_OPTIONS                                                                                  \
    {"output", required_argument, NULL, 'o'}, {"seed", required_argument, NULL, 's'},                        \
        {"no-verify", no_argument, NULL, 'n'}, {"external-data", required_argument, NULL, 'x'}

/* Handle getopt result c if it is a common option: 1 handled, 0 not common, -1 bad value
 * (message printed, return CLI_BAD). */
static int edit_common_opt(const struct cli_cmd *cmd, int c, struct edit_common *ec)
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

/* Check the outputs (before any work: the folder exists, nothing there that cannot be
 * replaced), then load model and make sure no output is a file it is read from; *m is a
 * clone to edit, *orig the model as loaded, to verify the edit against (the clone shares
 * its weights until the edit changes them). Prints and returns CLI_BAD on failure. */
static int load_for_edit(const char *model, const struct edit_common *ec, struct rm_model **orig,
                         struct rm_model **m)
{
    struct cli_outputs outs = {0};
    struct rm_error err;
    rm_error_clear(&err);
    *orig = *m = NULL;
    if (cli_model_outputs(&outs, ec->out, ec->ext))
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

static int run_replace(int argc, char **argv)
{
    static const struct option opts[] = {EDIT_COMMON_OPTIONS,
                                         {"init", required_argument, NULL, 'i'},
                                         {"propagate", no_argument, NULL, 'p'},
                                         {0, 0, 0, 0}};
    struct edit_common ec = {.verify = true};
    struct rm_replace_options ro = {.init = RM_INIT_KEEP, .seed = 0, .propagate = false};
    int c, k, rc;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        if ((k = edit_common_opt(&cli_cmd_replace, c, &ec)) != 0) {
            if (k < 0)
                return CLI_BAD;
        } else if (c == 'i') {
            if (parse_init(optarg, &ro.init))
                return cli_usage(&cli_cmd_replace, "--init must be keep, kaiming or zeros, not '%s'", optarg);
        } else if (c == 'p') {
            ro.propagate = true;
        } else {
            return cli_usage(&cli_cmd_replace, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    ro.seed = ec.seed;
    if (argc - optind != 3)
        return cli_usage(&cli_cmd_replace, "expected MODEL PATH SPEC, got %d arguments", argc - optind);
    const char *model = argv[optind], *path = argv[optind + 1], *spec_text = argv[optind + 2];
    if (!ec.out)
        return cli_usage(&cli_cmd_replace, "missing -o OUT");

    struct rm_error err;
    rm_error_clear(&err);
    if (rm_spec_check(spec_text, &err))
        return cli_fail(&err);
    struct rm_model *orig, *m;
    rc = load_for_edit(model, &ec, &orig, &m);
    if (rc)
        return rc;
    rm_findings log = {0};
    rc = rm_replace(m, path, spec_text, &ro, &log, &err);
    if (rc) {
        rc = cli_fail_in(&err, "%s: replace %s", model, path);
    } else {
        print_notes(&log);
        rc = cli_finish_edit(orig, m, ec.out, ec.verify, ro.seed, ec.ext);
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
    "                       Linear's input features follow (new weights zero, or kaiming)\n"
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

/* "3,5,7" into chans (max entries); returns the count or -1. */
static int parse_channels(const char *s, int64_t *chans, int max)
{
    int n = 0;
    while (*s) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 0 || n >= max)
            return -1;
        chans[n++] = v;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return n;
}

static void print_prune_report(const struct rm_prune_report *rep)
{
    printf("%-36s %9s    %s\n", "group (first producer)", "channels", "");
    for (size_t i = 0; i < rep->n_groups; i++) {
        const struct rm_prune_group *g = &rep->groups[i];
        char coupled[32] = "";
        if (g->producers > 1)
            snprintf(coupled, sizeof coupled, " (+%d coupled)", g->producers - 1);
        if (g->prunable)
            printf("%-36s %4lld -> %-4lld%s\n", g->name, (long long)g->before, (long long)g->after, coupled);
        else
            printf("%-36s %4lld    unprunable: %s\n", g->name, (long long)g->before, g->reason);
    }
    printf("params %lld -> %lld (%.1f%%), MACs %lld -> %lld (%.1f%%)\n", (long long)rep->params_before,
           (long long)rep->params_after,
           rep->params_before ? 100.0 * (double)rep->params_after / (double)rep->params_before : 0.0,
           (long long)rep->macs_before, (long long)rep->macs_after,
           rep->macs_before > 0 ? 100.0 * (double)rep->macs_after / (double)rep->macs_before : 0.0);
}

static int run_prune(int argc, char **argv)
{
    static const struct option opts[] = {EDIT_COMMON_OPTIONS,
                                         {"ratio", required_argument, NULL, 'r'},
                                         {"channels", required_argument, NULL, 'c'},
                                         {"criterion", required_argument, NULL, 'k'},
                                         {"global", no_argument, NULL, 'g'},
                                         {"allow-noop", no_argument, NULL, 'a'},
                                         {0, 0, 0, 0}};
    struct edit_common ec = {.verify = true};
    struct rm_prune_options po = {.criterion = 1};
    static int64_t chans[4096];
    bool have_ratio = false, allow_noop = false;
    int c, k;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        if ((k = edit_common_opt(&cli_cmd_prune, c, &ec)) != 0) {
            if (k < 0)
                return CLI_BAD;
            continue;
        }
        switch (c) {
        case 'r': {
            char *end;
            po.ratio = strtod(optarg, &end);
            if (*end || !(po.ratio > 0 && po.ratio < 1))
                return cli_usage(&cli_cmd_prune, "--ratio must be a number between 0 and 1 (exclusive), not '%s'",
                                 optarg);
            have_ratio = true;
            break;
        }
        case 'c': {
            int n = parse_channels(optarg, chans, (int)(sizeof chans / sizeof chans[0]));
            if (n <= 0)
                return cli_usage(&cli_cmd_prune, "--channels must be a comma-separated list of channel indices, not '%s'",
                                 optarg);
            po.channels = chans;
            po.n_channels = (size_t)n;
            break;
        }
        case 'k':
            if (!strcmp(optarg, "l1"))
                po.criterion = 1;
            else if (!strcmp(optarg, "l2"))
                po.criterion = 2;
            else
                return cli_usage(&cli_cmd_prune, "--criterion must be l1 or l2, not '%s'", optarg);
            break;
        case 'g': po.global = true; break;
        case 'a': allow_noop = true; break;
        default:
            return cli_usage(&cli_cmd_prune, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind < 1)
        return cli_usage(&cli_cmd_prune, "missing MODEL");
    if (!ec.out)
        return cli_usage(&cli_cmd_prune, "missing -o OUT");
    if (have_ratio == (po.n_channels > 0))
        return cli_usage(&cli_cmd_prune, "give exactly one of --ratio R and --channels LIST");
    if (po.global && po.n_channels)
        return cli_usage(&cli_cmd_prune, "--global ranks channels itself; use --ratio with it");
    const char *model = argv[optind];
    const char *const *paths = (const char *const *)argv + optind + 1;
    size_t n_paths = (size_t)(argc - optind - 1);
    if (po.global && n_paths)
        return cli_usage(&cli_cmd_prune, "--global prunes every group; do not name modules with it");

    struct rm_error err;
    rm_error_clear(&err);
    struct rm_model *orig, *m;
    int rc = load_for_edit(model, &ec, &orig, &m);
    if (rc)
        return rc;
    struct rm_prune_report rep;
    rc = rm_prune(m, paths, n_paths, &po, &rep, NULL, &err);
    if (rc) {
        rc = cli_fail_in(&err, "%s: prune", model);
    } else {
        print_prune_report(&rep);
        char why[512];
        if (rm_prune_nothing(&rep, &po, why, sizeof why) && !allow_noop) {
            fprintf(stderr, "remodel: %s: prune: nothing was pruned: %s; nothing written (--allow-noop writes the "
                    "unchanged model)\n", model, why);
            rc = CLI_FINDINGS;
        } else {
            if (rm_prune_nothing(&rep, &po, why, sizeof why))
                printf("nothing was pruned: %s\n", why);
            rc = cli_finish_edit(orig, m, ec.out, ec.verify, (uint64_t)ec.seed, ec.ext);
        }
    }
    rm_prune_report_free(&rep);
    rm_model_free(m);
    rm_model_free(orig);
    return rc;
}

const struct cli_cmd cli_cmd_prune = {
    "prune", "MODEL [PATH...] (--ratio R | --channels LIST) [--criterion l1|l2] [--global] [--allow-noop] -o OUT",
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
    "  --criterion l1|l2   channel importance: L1 (default) or L2 norm of the weights of\n"
    "                      the group's producing and depthwise convs, summed over them\n"
    "  --global            rank the channels of every prunable group together, each\n"
    "                      group's norms divided by its largest, and remove the lowest R\n"
    "  --allow-noop        write the model even when nothing was pruned (a ratio too small\n"
    "                      for every group): otherwise that exits 1, saying why, and\n"
    "                      writes nothing\n"
    "  --seed N            seed for the verification input (0)\n"
    "  --no-verify         skip running both models\n"
    "  --external-data FILE write weights to FILE beside OUT (see 'remodel save --help')\n"
    "\n"
    "Prints a table of groups (channels before -> after, or why a group is unprunable)\n"
    "and parameters and MACs before -> after. The kept channels of every changed tensor\n"
    "are recorded in OUT's metadata so 'remodel diff --layers' can align them.\n",
    run_prune,
};

/* ---- fold-bn ---------------------------------------------------------------- */

static int run_fold_bn(int argc, char **argv)
{
    static const struct option opts[] = {EDIT_COMMON_OPTIONS, {0, 0, 0, 0}};
    struct edit_common ec = {.verify = true};
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
