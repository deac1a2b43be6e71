/* Shared pieces of the remodel command line. Every command is one `struct cli_cmd`: its
 * positional arguments and its option table, from which cli_args.c derives the parser,
 * the usage line and --help, and cli_doc.c the man page and the bash completion, so that
 * none of them can drift from another. Exit codes as the README promises: 0 ok, 1 a check
 * or diff found a problem, 2 usage error or bad input. The CLI uses the library through
 * its public header only; only the cli_*.c files print or exit.
 *
 * Adding an option is one entry in the command's table (CLI_F/I/U/D/S/C/L bind it to a
 * field of struct cli_args, added here with its default in cli_args_init when not zero);
 * an option several commands share is one CLI_OPT_* macro below. A new command is one
 * struct cli_cmd, listed in cli_commands (main.c). */
#ifndef RM_CLI_H
#define RM_CLI_H

#include "remodel.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { CLI_OK = 0, CLI_FINDINGS = 1, CLI_BAD = 2 };

/* ---- parsed arguments ---------------------------------------------------------------
 * One struct holds the value of every option of every command (a field serves every
 * command whose table binds it); cli_args_init gives the values an option has when it
 * is not given. */
#define CLI_MAX_LIST 64 /* values of a repeatable option */
#define CLI_MAX_POS 4096

struct cli_list {
    int n;
    const char *v[CLI_MAX_LIST];
};

struct cli_args {
    /* positional arguments, in order */
    int n_pos;
    const char *pos[CLI_MAX_POS];
    /* flags */
    bool json, paths, layers, propagate, global, no_verify, no_fuse, direct_conv, dry_run, reconstruct, allow_noop;
    /* strings (NULL when not given) */
    const char *out, *external_data, *report, *channels, *inputs_dir, *save_inputs, *verify_inputs, *calib_inputs;
    /* numbers: seed 0, depth -1, threads 0, bench 0, samples 1, verify_samples 4,
     * round_to 0, calib_samples 0, calib_seed 1; ratio, atol, rtol, min_cosine, min_top1,
     * target_macs, target_params NAN when not given */
    uint64_t seed, calib_seed;
    long long depth, threads, bench, samples, verify_samples, round_to, calib_samples;
    double ratio, atol, rtol, min_cosine, min_top1, target_macs, target_params;
    /* choices: the index into the option's choices (init 0 = keep, criterion 0 = l1) */
    int init, criterion;
    /* repeatable */
    struct cli_list inputs, input_shapes, ignore, ratio_for;
};

void cli_args_init(struct cli_args *a);

/* ---- option tables ------------------------------------------------------------------ */
enum cli_kind {
    CLI_FLAG,   /* bool, no value */
    CLI_INT,    /* long long in [min, max] */
    CLI_U64,    /* uint64_t, decimal 0 .. 2^64-1, never clamped */
    CLI_FLOAT,  /* double in [fmin, fmax] (or exclusive bounds), finite */
    CLI_STRING, /* const char *, not empty */
    CLI_CHOICE, /* int: index into choices */
    CLI_LIST,   /* struct cli_list: the option may be given up to CLI_MAX_LIST times */
};

/* What the bash completion offers for a value (or a positional argument). */
enum cli_complete { CLI_C_NONE, CLI_C_FILE, CLI_C_DIR, CLI_C_MODULE };

/* option flags */
#define CLI_REQUIRED 1u   /* must be given (or, in a group, one of the group) */
#define CLI_EXCL_MIN 2u   /* CLI_FLOAT: min itself is refused */
#define CLI_EXCL_MAX 4u   /* CLI_FLOAT: max itself is refused */
#define CLI_HIDDEN 8u     /* parsed, but not in usage, help, man page or completion */

struct cli_opt {
    const char *name;     /* long name without "--"; NULL ends a table */
    char short_name;      /* 'o' for -o, or 0 */
    const char *metavar;  /* "OUT", "N"; NULL for flags and choices (then "a|b|c") */
    enum cli_kind kind;
    size_t offset;        /* of the value in struct cli_args (CLI_BIND checks its type) */
    const char *help;     /* one paragraph, wrapped when printed */
    unsigned flags;
    char group;           /* options sharing a letter exclude each other; 0: none */
    enum cli_complete complete;
    long long min, max;   /* CLI_INT */
    double fmin, fmax;    /* CLI_FLOAT */
    const char *const *choices; /* CLI_CHOICE: NULL-terminated */
};

/* offsetof(struct cli_args, field), refused at compile time unless the field has the C
 * type the option's kind stores. */
#define CLI_BIND(kind_type, field) \
    _Generic(((struct cli_args *)0)->field, kind_type: offsetof(struct cli_args, field))
#define CLI_F(field) .kind = CLI_FLAG, .offset = CLI_BIND(bool, field)
#define CLI_I(field) .kind = CLI_INT, .offset = CLI_BIND(long long, field)
#define CLI_U(field) .kind = CLI_U64, .offset = CLI_BIND(uint64_t, field)
#define CLI_D(field) .kind = CLI_FLOAT, .offset = CLI_BIND(double, field)
#define CLI_S(field) .kind = CLI_STRING, .offset = CLI_BIND(const char *, field)
#define CLI_C(field) .kind = CLI_CHOICE, .offset = CLI_BIND(int, field)
#define CLI_L(field) .kind = CLI_LIST, .offset = CLI_BIND(struct cli_list, field)

/* A positional argument. */
enum cli_pos_count { CLI_ONE, CLI_OPTIONAL, CLI_MANY /* zero or more, last only */ };
struct cli_pos {
    const char *name;     /* "MODEL"; NULL ends a list */
    enum cli_pos_count count;
    enum cli_complete complete;
    const char *help;
};

struct cli_cmd {
    const char *name;
    const char *summary;  /* one line, for `remodel --help` and the man page */
    const char *about;    /* paragraphs ('\n' between them; "- " starts a bullet) */
    const struct cli_pos *pos;
    const struct cli_opt *opts;
    const char *notes;    /* after the options, same markup as about; may be NULL */
    int (*run)(struct cli_args *a);
};

/* Every command, in the order `remodel --help` lists them. */
extern const struct cli_cmd *const cli_commands[];
extern const size_t cli_n_commands;
extern const struct cli_cmd cli_cmd_info, cli_cmd_check, cli_cmd_save, cli_cmd_show, cli_cmd_run,
    cli_cmd_diff, cli_cmd_replace, cli_cmd_prune, cli_cmd_fold_bn, cli_cmd_apply;
/* The options of `remodel` itself (--help, --version, and the hidden generators). */
extern const struct cli_opt cli_top_opts[];

/* Options several commands share, each defined once: --json with the command's schema
 * (the text after "print one JSON document on stdout"), and the options of the commands
 * that write an edited model (cli_edit.c). */
#define CLI_JSON_FIELDS(schema) .name = "json", CLI_F(json), .help = "print one JSON document on stdout" schema
#define CLI_OPT_JSON(schema) {CLI_JSON_FIELDS(schema)}
#define CLI_OPT_OUT_MODEL                                                                            \
    {.name = "output", .short_name = 'o', .metavar = "OUT", CLI_S(out), .flags = CLI_REQUIRED,          \
     .complete = CLI_C_FILE,                                                                           \
     .help = "file to write; written atomically (temporary file in OUT's folder, fsync, rename), so a " \
             "failure leaves no partial file and OUT may name MODEL itself. Its folder must exist; it " \
             "is checked before any work"}
#define CLI_OPT_EXTERNAL_DATA                                                                          \
    {.name = "external-data", .metavar = "FILE", CLI_S(external_data), .complete = CLI_C_FILE,          \
     .help = "write every initializer of 1 KB or more to FILE (a plain file name, created beside OUT) " \
             "at 4096-aligned offsets, referred to from OUT as ONNX external data; needed for models "  \
             "over protobuf's 2 GB limit. FILE may be neither OUT nor a file MODEL reads its weights "  \
             "from"}
#define CLI_POS_MODEL {"MODEL", CLI_ONE, CLI_C_FILE, "the ONNX model file"}
/* The inputs of the commands that run models (run, diff). */
#define CLI_OPT_INPUT_FIELDS                                                                               \
    .name = "input", .short_name = 'i', .metavar = "NAME=FILE", CLI_L(inputs), .complete = CLI_C_FILE,     \
    .help = "value of graph input NAME: a TensorProto .pb (as in ONNX test data) or a .npy (float32/int64, "  \
            "C order), whose dims also give the input's dynamic ones; inputs not given are seeded "         \
            "standard-normal values"
#define CLI_OPT_INPUT {CLI_OPT_INPUT_FIELDS}
#define CLI_OPT_SEED_INPUTS {.name = "seed", .metavar = "N", CLI_U(seed), .help = "seed for random inputs (default 0)"}
/* --input-shape, for every command that infers sizes */
#define CLI_OPT_INPUT_SHAPE                                                                                \
    {.name = "input-shape", .metavar = "NAME=D0,D1,...", CLI_L(input_shapes),                              \
     .help = "the dims graph input NAME is fed with (all of them; the sizes the model declares must agree): " \
             "needed where an input has dynamic dimensions other than the batch, which counts as 1"}
/* The verdict's tolerances, which diff and the edits' verification share */
#define CLI_OPTS_TOLERANCE                                                                                 \
    {.name = "atol", .metavar = "X", CLI_D(atol), .fmin = 0, .fmax = INFINITY,                              \
     .help = "absolute tolerance (default: 1e-05 times the largest |A| of each output on each sample)"},      \
        {.name = "rtol", .metavar = "Y", CLI_D(rtol), .fmin = 0, .fmax = INFINITY,                          \
         .help = "relative tolerance, of |A| (default 0.0001)"},                                             \
        {.name = "min-cosine", .metavar = "C", CLI_D(min_cosine), .fmin = -1, .fmax = 1,                    \
         .help = "the lowest cosine similarity of an output on any sample that passes (default 0.9999)"},     \
        {.name = "min-top1", .metavar = "F", CLI_D(min_top1), .fmin = 0, .fmax = 1,                          \
         .help = "for [N, classes] outputs: the fraction of rows whose top class must agree (default 1)"}
#define CLI_INPUT_SETS_HELP                                                                                \
    "input sets from a folder: one folder per sample (natural order), each with a .pb (TensorProto) or .npy " \
    "file per graph input, named by the tensor's name, the file's name or input_<k> (ONNX test data, "       \
    "DIR/test_data_set_0/input_0.pb, reads as it is); a folder of tensor files alone is one set"
#define CLI_OPT_THREADS                                                                                    \
    {.name = "threads", .metavar = "N", CLI_I(threads), .min = 0, .max = 1024,                             \
     .help = "oneDNN/OpenMP threads (default 0: all)"}

/* Parse argv[1..] (argv[0] is the command name) against cmd's tables into a. Returns
 * CLI_OK; or, having printed one line, CLI_BAD; or -1 after printing --help (exit 0). */
int cli_parse(const struct cli_cmd *cmd, int argc, char **argv, struct cli_args *a);

/* The usage line after "remodel NAME " ("MODEL [PATH] [--depth N] [--json]"), from the
 * tables: positionals, then options in table order. */
void cli_synopsis(const struct cli_cmd *cmd, char *buf, size_t n);
/* Mark the spaces of a synopsis no line may break at (inside [...] and (...), and between
 * an option and its value) as '\1'. */
void cli_protect_items(char *s);
/* The text shown for an option's value: its metavar, or "a|b|c" for a choice. */
const char *cli_opt_metavar(const struct cli_opt *o, char *buf, size_t n);
/* Levenshtein distance of a and b (at most 64 bytes each are compared). */
int cli_edit_distance(const char *a, const char *b);

/* Print the command's full help to f. */
void cli_print_help(const struct cli_cmd *cmd, FILE *f);
/* Print `remodel --help` to f. */
void cli_print_top_help(FILE *f);
/* Write text (markup as cli_cmd.about) wrapped to width columns, indented by indent. */
void cli_wrap(FILE *f, const char *text, int indent, int width);

/* The man page (roff) and the bash completion script (cli_doc.c). */
void cli_write_man(FILE *f);
void cli_write_bash_completion(FILE *f);

/* ---- input shapes (cli_shapes.c) ------------------------------------------------------ */

/* Give m the dims of every --input-shape (rewrite: change the model's declaration, as
 * save does). Prints one line and returns CLI_BAD on a bad value or a mismatch. */
int cli_input_shapes(rm_model *m, const struct cli_list *shapes, bool rewrite);

/* "NAME=D0,D1,..." into name (n bytes), rank and dims (positive): 0, or -1 when malformed. */
int cli_parse_shape(const char *s, char *name, size_t n, int *rank, int64_t *dims);

/* Say once on stderr when m runs with a dynamic batch taken as 1. */
void cli_note_batch(rm_model *m);

/* The verdict's options from a (tolerances; samples and the input-set folder given by
 * the caller) into o, the folder opened for m into *sets (NULL without one; free with
 * rm_input_sets_free). Prints and returns CLI_BAD on a bad folder. */
int cli_verdict_options(const struct cli_args *a, long long samples, const char *inputs_dir, rm_model *m,
                        rm_diff_options *o, rm_input_sets **sets);

/* ---- errors -------------------------------------------------------------------------- */

/* Print "remodel: <err->msg>" on stderr, with the option that would help when the
 * library says what would (err->fix); return CLI_BAD. */
int cli_fail(const struct rm_error *err);

/* The same with a prefix: "remodel: <prefix>: <err->msg>". */
int cli_fail_in(const struct rm_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Print "remodel CMD: <message> (see 'remodel CMD --help')" on stderr; return CLI_BAD.
 * While a capture buffer is set (cli_usage_capture), the message goes there instead. */
int cli_usage(const struct cli_cmd *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Send cli_usage's messages to buf (n bytes; the last one is kept) instead of stderr;
 * NULL prints them again. */
void cli_usage_capture(char *buf, size_t n);

/* ---- outputs (cli_out.c) --------------------------------------------------------------- */

/* The files one command writes, checked before any work starts. */
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

/* The outputs of save and the edit commands: -o OUT (which may replace the model read; none when NULL)
 * and, when external_data is not NULL, the data file beside it. */
int cli_model_outputs(struct cli_outputs *os, const char *out, const char *external_data);

/* Refuse (print, CLI_BAD) when an output of os is a file m is read from: its external
 * data always, its model file unless the entry may replace it. */
int cli_outputs_guard(const struct cli_outputs *os, const struct rm_model *m);

/* In a --json document: "written": [{"path", "bytes", "role"}] for the files of os
 * (after they were written; role is "model", "external_data", "report", "output"). */
void cli_json_written(rm_json *j, const struct cli_outputs *os);

/* A member of the --json object being written: "key": value. */
static inline void cli_kv_str(rm_json *j, const char *key, const char *v) /* NULL: null */
{
    rm_json_key(j, key);
    rm_json_str(j, v);
}
static inline void cli_kv_int(rm_json *j, const char *key, int64_t v)
{
    rm_json_key(j, key);
    rm_json_int(j, v);
}
static inline void cli_kv_num(rm_json *j, const char *key, double v) /* non-finite: null */
{
    rm_json_key(j, key);
    rm_json_num(j, v);
}
static inline void cli_kv_bool(rm_json *j, const char *key, bool v)
{
    rm_json_key(j, key);
    rm_json_bool(j, v);
}

#endif
