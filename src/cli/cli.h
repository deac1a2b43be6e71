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

/* Shared tail of the commands that write an edited model: unless do_verify is false,
 * run the original model and `edited` on the same seeded input and print a summary
 * (exit 2 if either cannot run); then save edited to out atomically (external_data as
 * `save --external-data`, may be NULL). Returns a CLI exit code. */
struct rm_model;
int cli_finish_edit(struct rm_model *orig, struct rm_model *edited, const char *out, bool do_verify,
                    uint64_t seed, const char *external_data);

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
