/* remodel: see, edit, verify and save ONNX CNNs the way PyTorch users think of them.
 * This file dispatches to the commands in cli_*.c. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const struct cli_cmd *const commands[] = {
    &cli_cmd_info,
    &cli_cmd_check,
    &cli_cmd_save,
    &cli_cmd_show,
    &cli_cmd_run,
    &cli_cmd_diff,
    &cli_cmd_replace,
    &cli_cmd_prune,
    &cli_cmd_fold_bn,
    &cli_cmd_apply,
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

/* The option that does what the library says would help with an error. */
static const char *fix_hint(int fix)
{
    switch (fix) {
    case RM_FIX_PROPAGATE: return "--propagate carries channel changes to dependents";
    case RM_FIX_GLOBAL: return "--global";
    case RM_FIX_EXTERNAL_DATA: return "--external-data FILE";
    case RM_FIX_INPUT_SHAPE: return "--input-shape NAME=D0,D1,...";
    default: return NULL;
    }
}

static void fail_line(const char *prefix, const struct rm_error *err)
{
    const char *hint = fix_hint(err->fix);
    fprintf(stderr, "remodel: %s%s%s%s%s%s\n", prefix, prefix[0] ? ": " : "",
            err->msg[0] ? err->msg : rm_strerror(err->code), hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
}

int cli_fail(const struct rm_error *err)
{
    fail_line("", err);
    return CLI_BAD;
}

int cli_fail_in(const struct rm_error *err, const char *fmt, ...)
{
    char prefix[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* one line, whatever the names hold (the library's messages are made so too) */
    for (char *c = prefix; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    fail_line(prefix, err);
    return CLI_BAD;
}

int cli_usage(const struct cli_cmd *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "remodel %s: ", cmd->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'remodel %s --help')\n", cmd->name);
    return CLI_BAD;
}

void cli_print_help(const struct cli_cmd *cmd, FILE *f)
{
    fprintf(f, "usage: remodel %s %s\n\n%s\n\n%s", cmd->name, cmd->synopsis, cmd->summary, cmd->help);
}

int cli_parse_int(const char *s, long long min, long long max, long long *out)
{
    char *end;
    if (!s || !*s)
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno == ERANGE || v < min || v > max) /* strtoll clamps what overflows */
        return -1;
    *out = v;
    return 0;
}

int cli_parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || *s < '0' || *s > '9') /* strtoull would take a sign, and negate */
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno == ERANGE || v > UINT64_MAX) /* refused, not clamped */
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: remodel COMMAND [ARGS]\n\n"
            "See, edit, verify and save ONNX CNNs by PyTorch module path.\n\n"
            "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        /* the first line of a summary stands alone */
        const char *s = commands[i]->summary;
        int len = (int)strcspn(s, "\n");
        fprintf(f, "  %-8s %.*s\n", commands[i]->name, len, s);
    }
    fprintf(f,
            "\n'remodel COMMAND --help' shows a command's options.\n"
            "exit codes: 0 success, 1 a check or diff found a problem,\n"
            "            2 usage error or bad input (one line on stderr says what, where, why)\n");
}

/* A save killed by a signal must not leave its temporary file (hundreds of MB for a big
 * model) beside the target: remove it, then die of the signal as if it were not caught. */
static void on_fatal_signal(int sig)
{
    rm_output_cleanup(); /* async-signal-safe: unlink(2) of registered paths */
    raise(sig);           /* SA_RESETHAND restored the default; delivered on return */
}

static void install_signal_handlers(void)
{
    static const int fatal[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) {
        struct sigaction old, sa;
        if (sigaction(fatal[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
            continue; /* ignored by whoever started us (nohup, a background job): keep it so */
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESETHAND;
        sigaction(fatal[i], &sa, NULL);
    }
    /* Past a file-size limit (ulimit -f) write(2) then fails with EFBIG: the save reports
     * it and removes its temporary file like any other write error, exit 2. */
    signal(SIGXFSZ, SIG_IGN);
}

int main(int argc, char **argv)
{
    install_signal_handlers();
    if (argc < 2) {
        usage(stderr);
        return CLI_BAD;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        if (argc > 2)
            for (size_t i = 0; i < N_COMMANDS; i++)
                if (!strcmp(commands[i]->name, argv[2])) {
                    cli_print_help(commands[i], stdout);
                    return CLI_OK;
                }
        usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(name, "--version") || !strcmp(name, "-V")) {
        printf("remodel %s\n", rm_version());
        return CLI_OK;
    }
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(commands[i]->name, name) != 0)
            continue;
        for (int k = 2; k < argc; k++) {
            if (!strcmp(argv[k], "--"))
                break;
            if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) {
                cli_print_help(commands[i], stdout);
                return CLI_OK;
            }
        }
        optind = 1;
        opterr = 0;
        int rc = commands[i]->run(argc - 1, argv + 1);
        if (fflush(stdout) != 0 && rc == CLI_OK) {
            fprintf(stderr, "remodel: cannot write to standard output\n");
            return CLI_BAD;
        }
        return rc;
    }
    fprintf(stderr, "remodel: unknown command '%s' (see 'remodel --help')\n", name);
    return CLI_BAD;
}
