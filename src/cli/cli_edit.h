/* What the commands that write an edited model share (cli_edit.c), and the edit
 * requests built from their options, which `remodel apply` (cli_apply.c) builds from each
 * line of a script with the same option tables. */
#ifndef RM_CLI_EDIT_H
#define RM_CLI_EDIT_H

#include "cli.h"

/* One edit in progress. */
struct cli_edit {
    struct cli_args *a;
    const char *command;
    struct rm_model *orig, *m; /* as loaded; the clone being edited */
    struct cli_outputs outs;
    rm_findings log;           /* what the edit changed, one note per layer */
    struct rm_diff_result verdict;
    bool verified;
    rm_input_sets *sets;       /* --verify-inputs, or NULL */
    rm_diff_options vo;        /* the verification's options (borrowed by pending) */
    rm_diff_pending *pending;  /* the original's half of the verification, run before the edit */
};

/* What every edit command takes besides its own options, each defined once. */
#define EDIT_OPT_SEED                                                                                      \
    {.name = "seed", .metavar = "N", CLI_U(seed), .help = "seed for the verification input (default 0)"}
#define EDIT_OPTS_TAIL                                                                                     \
    CLI_OPT_INPUT_SHAPE,                                                                                   \
        {.name = "no-verify", CLI_F(no_verify), .help = "skip running both models"},                         \
        {.name = "verify-samples", .metavar = "N", CLI_I(verify_samples), .min = 1, .max = 100000,           \
         .help = "input sets the verification compares (default 4): those of --verify-inputs first, then "   \
                 "seeded random ones (sample k: --seed + k)"},                                               \
        {.name = "verify-inputs", .metavar = "DIR", CLI_S(verify_inputs), .complete = CLI_C_DIR,             \
         .help = CLI_INPUT_SETS_HELP},                                                                       \
        CLI_OPTS_TOLERANCE, CLI_OPT_EXTERNAL_DATA,                                                           \
        CLI_OPT_JSON(": command, file (MODEL), the command's own fields, notes (what the edit logged), "      \
                     "modules [{path, before, after}] (the repr of every module the edit changed, null where "  \
                     "it was added or removed), params and macs {before, after} (macs null when unknown), "     \
                     "verify (null with --no-verify: seed, samples, inputs, atol (null: scaled), atol_scale, "   \
                     "rtol, min_cosine, pass, outputs [{name, max_abs, max_rel, mean_abs, cosine, cosine_mean, "  \
                     "atol, top1, top5, pass}]), written [{path, bytes, role}]")

#define EDIT_VERIFY_NOTE                                                                                 \
    "Verification runs the original and the edited model on the same inputs (4 seeded samples unless told), " \
    "says what it fed them, and prints each output's max abs/rel difference, cosine similarity (the worst "    \
    "sample's) and top-1 agreement ('identical within tolerance' when the output passes diff's verdict). An "  \
    "edit that changes what the model computes is written all the same: the figures say by how much. Nothing " \
    "is written when either model cannot run.\n"

/* Check the outputs (before any work: the folder exists, nothing there that cannot be
 * replaced), then load the model, give it --input-shape and make sure no output is a file
 * it is read from; e->m is a clone to edit, e->orig the model as loaded. Unless
 * --no-verify, the original then runs on the verification's inputs (rm_diff_begin), so
 * that its plan is built before the edit's tensors exist. Prints and returns CLI_BAD on
 * failure. */
int cli_edit_begin(struct cli_edit *e, struct cli_args *a, const char *command);
void cli_edit_end(struct cli_edit *e);
/* Unless --no-verify, verify e->m against e->orig's runs (text: what was fed, each
 * output's figures), then save e->m to -o. Returns a CLI exit code. */
int cli_edit_finish(struct cli_edit *e);
/* The --json document of an edit that was written, the command's own fields (extra, may
 * be NULL) after file. */
void cli_edit_json(struct cli_edit *e, void (*extra)(rm_json *j, const void *ctx), const void *ctx);

/* ---- edit requests: one edit's options, from a command line or a script line ---------- */

extern const char *const cli_init_choices[];
extern const char *const cli_criterion_choices[];

/* replace's own options (also a script line's) */
#define CLI_OPTS_REPLACE                                                                                    \
    {.name = "init", .choices = cli_init_choices, CLI_C(init),                                               \
     .help = "the new weights. keep (default): the old weights where shapes overlap, kernels cropped or "     \
             "zero-padded about their centre, first channels kept, new entries zero; exact when the shape is " \
             "unchanged. kaiming: PyTorch's Conv2d default (kaiming-uniform a=sqrt(5), bias uniform in "       \
             "1/sqrt(fan_in)), from --seed. zeros: all zero"},                                               \
        {.name = "propagate", CLI_F(propagate),                                                             \
         .help = "carry a channel change to the layers that depend on it: fewer out_channels slice (or more " \
                 "extend, new channels identities) the BatchNorms, depthwise convs, the next conv's in-channels " \
                 "and a Linear's input features; fewer in_channels prune the group that produces the conv's "  \
                 "input first (lowest L1 norm removed), every member of it following"}

/* prune's own options (also a script line's) */
#define CLI_OPTS_PRUNE                                                                                      \
    {.name = "ratio", .metavar = "R", CLI_D(ratio), .fmin = 0, .fmax = 1, .flags = CLI_EXCL_MIN | CLI_EXCL_MAX, \
     .group = 'r',                                                                                          \
     .help = "fraction of each group's channels removed, 0 < R < 1 (0.25 on a 64-channel group leaves 48); "  \
             "never the last channel"},                                                                       \
        {.name = "channels", .metavar = "LIST", CLI_S(channels), .group = 'r',                                \
         .help = "remove exactly these channels (e.g. 3,17,40) of the one named module's group"},             \
        {.name = "target-macs", .metavar = "F", CLI_D(target_macs), .fmin = 0, .fmax = 1,                     \
         .flags = CLI_EXCL_MIN,                                                                                \
         .help = "prune globally until at most F of the MACs remain (0.5 keeps half; at most one group step "  \
                 "below F)"},                                                                                 \
        {.name = "target-params", .metavar = "F", CLI_D(target_params), .fmin = 0, .fmax = 1,                 \
         .flags = CLI_EXCL_MIN, .help = "the same for parameters (with --target-macs: both met)"},             \
        {.name = "criterion", .choices = cli_criterion_choices, CLI_C(criterion),                             \
         .help = "channel importance, lowest removed first: l1 (default) or l2 norm of the weights of the "   \
                 "group's producing and depthwise convs, summed; bn-scale: |gamma|/sqrt(var+eps) of its "     \
                 "BatchNorms (kept as nodes; groups without one use l1); activation: mean |activation| on the " \
                 "calibration data of the tensors the group's consumers read"},                               \
        {.name = "global", CLI_F(global),                                                                     \
         .help = "rank the channels of every prunable group together, each group's scores divided by their "   \
                 "mean, and remove the lowest R"},                                                            \
        {.name = "ignore", .metavar = "PATH", CLI_L(ignore), .complete = CLI_C_MODULE,                        \
         .help = "leave whole every group the module PATH (a conv, a block, fc) reads, produces or carries"},  \
        {.name = "ratio-for", .metavar = "PATH=R", CLI_L(ratio_for),                                          \
         .help = "the group of Conv2d PATH loses exactly R (0 <= R < 1) of its channels, outside the global "  \
                 "ranking"},                                                                                  \
        {.name = "round-to", .metavar = "N", CLI_I(round_to), .min = 1, .max = 1 << 20,                       \
         .help = "pruned groups keep a multiple of N channels (counts rounded up: fewer removed)"},            \
        {.name = "reconstruct", CLI_F(reconstruct),                                                           \
         .help = "after removing channels, refit each conv or Linear that lost input channels by ridge least " \
                 "squares, in graph order, so that on the calibration data its output from the pruned model's " \
                 "inputs matches the original's (each layer's error before and after is printed)"},             \
        {.name = "calib-inputs", .metavar = "DIR", CLI_S(calib_inputs), .complete = CLI_C_DIR, .group = 'c',  \
         .help = "calibration data for --criterion activation and --reconstruct: " CLI_INPUT_SETS_HELP},      \
        {.name = "calib-samples", .metavar = "N", CLI_I(calib_samples), .min = 1, .max = 1000000,              \
         .help = "N seeded random normal inputs as calibration data (with --calib-inputs: use at most N of its " \
                 "sets)"},                                                                                    \
        {.name = "calib-seed", .metavar = "N", CLI_U(calib_seed),                                            \
         .help = "seed of the random calibration inputs (default 1)"},                                       \
        {.name = "allow-noop", CLI_F(allow_noop),                                                             \
         .help = "write the model even when nothing was pruned (a ratio too small for every group); "          \
                 "otherwise that exits 1, saying why, and writes nothing"}

/* A prune request: the library's options and the arrays they point to. */
struct cli_prune_req {
    rm_prune_options po;
    int64_t *chans;
    const char **ignore;
    rm_prune_ratio *ratios;    /* their paths are copies */
    size_t n_ratios;
};

/* Build r from a (n_paths modules named): usage errors are reported with cli_usage(cmd,
 * ...) and give CLI_BAD. Free r with cli_prune_req_free either way. */
int cli_prune_request(const struct cli_cmd *cmd, const struct cli_args *a, size_t n_paths, struct cli_prune_req *r);
void cli_prune_req_free(struct cli_prune_req *r);
/* The replace options of a. */
void cli_replace_request(const struct cli_args *a, rm_replace_options *ro);

/* A prune report as text (groups, params and MACs, refits) or as JSON fields. */
void cli_prune_report_print(const rm_prune_report *rep);
void cli_prune_report_json(rm_json *j, const rm_prune_report *rep);

#endif
