/* Shared pieces of the remodel command line: the command table and the few helpers
 * every command uses to report errors with the exit codes the README promises (0 ok,
 * 1 a check or diff found a problem, 2 usage error or bad input). The CLI uses the
 * library through its public header only; only the cli_*.c files print or exit. */
#ifndef RM_CLI_H
#define RM_CLI_H

#include "remodel.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum { CLI_OK = 0, CLI_FINDINGS = 1, CLI_BAD = 2 };

struct cli_cmd {
    const char *name;
    const char *synopsis; /* one line: "MODEL [--json]" */
    const char *summary;  /* what it does; the first line stands alone in `remodel --help` */
    const char *help;     /* full help text after the synopsis */
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
};

/* Every command, for dispatch and `remodel --help`. */
extern const struct cli_cmd cli_cmd_info, cli_cmd_check, cli_cmd_save;
extern const struct cli_cmd cli_cmd_show;
extern const struct cli_cmd cli_cmd_run;
extern const struct cli_cmd cli_cmd_diff;

extern const struct cli_cmd cli_cmd_replace, cli_cmd_prune, cli_cmd_fold_bn;
extern const struct cli_cmd cli_cmd_apply;

/* Shared tail of the commands that write an edited model: unless do_verify is false,
 * run the original model and `edited` on the same seeded input and print a summary
 * (exit 2 if either cannot run); then save edited to out atomically (external_data as
 * `save --external-data`, may be NULL). Returns a CLI exit code. */
struct rm_model;
int cli_finish_edit(struct rm_model *orig, struct rm_model *edited, const char *out, bool do_verify,
                    uint64_t seed, const char *external_data);

/* ---- pieces of the edit commands that apply (cli_apply.c) shares (cli_edit.c) ---- */

/* Options every model-writing command takes: -o, --seed, --no-verify, --external-data. */
struct cli_edit_common {
    const char *out, *ext;
    bool verify;
    uint64_t seed;
};

/* Check the outputs ec names (before any work), load model, refuse an output that is a
 * file it is read from; *m is a clone to edit, *orig the model as loaded. Prints and
 * returns CLI_BAD on failure. */
int cli_load_for_edit(const char *model, const struct cli_edit_common *ec, struct rm_model **orig,
                      struct rm_model **m);

/* Verification of an edit: output 0 of the original and the edited model on one seeded
 * input. cli_verify prints the failure (CLI_BAD) when a model cannot run. */
struct cli_verdict {
    bool ran;
    uint64_t seed;
    char output[256];
    double max_abs, max_rel, cosine, top1;
    bool pass;
};
int cli_verify(struct rm_model *orig, struct rm_model *edited, uint64_t seed, struct cli_verdict *v);
void cli_verdict_print(const struct cli_verdict *v);
void cli_verdict_json(rm_json *j, const struct cli_verdict *v); /* the value only (null when not run) */
/* Save atomically (printing the failure); CLI_OK or CLI_BAD. */
int cli_save_edit(struct rm_model *edited, const char *out, const char *external_data);
/* The notes of log as a JSON array (the value only). */
void cli_json_notes(rm_json *j, const rm_findings *log);

/* A replace or prune command line parsed. ec NULL: a line of an apply script (no MODEL;
 * -o, --no-verify, --external-data and --json belong to apply; replace's --seed seeds
 * kaiming weights). Return 0; -1 with the problem in msg; -2 when already printed. The
 * strings point into argv (which may be modified). */
struct cli_replace_args {
    const char *model, *path, *spec;
    rm_replace_options ro;
};
int cli_replace_parse(int argc, char **argv, struct cli_edit_common *ec, struct cli_replace_args *ra, char *msg,
                      size_t msg_size);

struct cli_prune_args {
    const char *model;
    const char *const *paths;
    size_t n_paths;
    rm_prune_options po;
    bool json;
    int64_t *chans;              /* owned arrays behind po */
    const char **ignore;
    rm_prune_ratio *ratio_for;
};
int cli_prune_parse(int argc, char **argv, struct cli_edit_common *ec, struct cli_prune_args *pa, char *msg,
                    size_t msg_size);
void cli_prune_args_free(struct cli_prune_args *pa);
/* prune's report: the table (and refits) as text; its fields into an open JSON object. */
void cli_prune_report_print(const rm_prune_report *rep);
void cli_prune_report_json(rm_json *j, const rm_prune_report *rep);

/* The files one command writes (cli_out.c), checked before any work starts. */
#define CLI_MAX_OUTPUTS 4
struct cli_output {
    const char *opt;        /* the option naming it, for messages: "-o", "--report" */
    struct rm_output t;
    bool may_replace_model; /* an edited model may replace the file it was read from */
};
struct cli_outputs {
    int n;
    bool quiet; /* do not mention stale temporary files (already done for this folder) */
    struct cli_output o[CLI_MAX_OUTPUTS];
};

/* Check path, named by opt, as one more output of os: it can be written (its folder
 * exists and is writable, it is absent or a regular file) and is not a file an earlier
 * entry names. Prints the error and returns CLI_BAD otherwise. Unless os->quiet, notes on
 * stderr the temporary files an interrupted remodel left in a folder new to os. */
int cli_output_add(struct cli_outputs *os, const char *opt, const char *path, bool may_replace_model);

/* The outputs of save and the edit commands: -o OUT (which may replace the model read)
 * and, when external_data is not NULL, the data file beside it. */
int cli_model_outputs(struct cli_outputs *os, const char *out, const char *external_data);

/* Refuse (print, CLI_BAD) when an output of os is a file m is read from: its external
 * data always, its model file unless the entry may replace it. */
struct rm_model;
int cli_outputs_guard(const struct cli_outputs *os, const struct rm_model *m);

/* Print "remodel: <err->msg>" on stderr, with the option that would help when the
 * library says what would (err->fix); return CLI_BAD. */
int cli_fail(const struct rm_error *err);

/* The same with a prefix: "remodel: <prefix>: <err->msg>". */
int cli_fail_in(const struct rm_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Print "remodel CMD: <message>" and a pointer to --help on stderr; return CLI_BAD. */
int cli_usage(const struct cli_cmd *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Print the command's full help to f. */
void cli_print_help(const struct cli_cmd *cmd, FILE *f);

/* Parse an integer option value in [min, max]; returns 0 or -1 (also on overflow). */
int cli_parse_int(const char *s, long long min, long long max, long long *out);

/* Parse a decimal 0 .. 2^64-1 (a --seed); returns 0, or -1 for anything else, a value
 * past 2^64-1 included (refused, never clamped). */
int cli_parse_u64(const char *s, uint64_t *out);

#endif
