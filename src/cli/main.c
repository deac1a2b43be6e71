/* remodel: see, edit, verify and save ONNX CNNs the way PyTorch users think of them.
 * This file dispatches to the commands in cli_*.c. */
#include "cli.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const struct cli_cmd *const cli_commands[] = {
    &cli_cmd_info, &cli_cmd_check, &cli_cmd_save,    &cli_cmd_show,    &cli_cmd_run,
    &cli_cmd_diff, &cli_cmd_replace, &cli_cmd_prune, &cli_cmd_fold_bn, &cli_cmd_apply,
};
const size_t cli_n_commands = sizeof cli_commands / sizeof cli_commands[0];

/* The options of `remodel` itself, given instead of a command (not stored in cli_args). */
const struct cli_opt cli_top_opts[] = {
    {.name = "help", .short_name = 'h', .kind = CLI_FLAG, .help = "list the commands; with a COMMAND after it, show its help"},
    {.name = "version", .short_name = 'V', .kind = CLI_FLAG, .help = "print the version and exit"},
    /* what meson runs at build time to write the man page and the bash completion */
    {.name = "man", .kind = CLI_FLAG, .help = "print the man page (roff)", .flags = CLI_HIDDEN},
    {.name = "bash-completion", .kind = CLI_FLAG, .help = "print the bash completion script", .flags = CLI_HIDDEN},
    {0},
};

/* A save killed by a signal must not leave its temporary file (hundreds of MB for a big
 * model) beside the target: remove it, then die of the signal as if it were not caught. */
static void on_fatal_signal(int sig)
{
    rm_output_cleanup(); /* async-signal-safe: unlink(2) of registered paths */
    raise(sig);           /* SA_RESETHAND restored the default; delivered on return */
}

/* Model files and their external data are mapped, not copied: another process truncating
 * one while remodel reads it makes the read fault (SIGBUS). That is bad input, not a crash:
 * say so, remove the temporary files of saves in progress, exit 2. */
static void on_bus_error(int sig)
{
    (void)sig;
    static const char msg[] = "remodel: a model or external-data file was truncated or changed while remodel "
                              "read it (it is read in place, not copied); nothing was written: run again once "
                              "the file is complete\n";
    rm_output_cleanup();
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(2);
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
    struct sigaction bus;
    memset(&bus, 0, sizeof bus);
    bus.sa_handler = on_bus_error;
    sigemptyset(&bus.sa_mask);
    sigaction(SIGBUS, &bus, NULL);
    /* Past a file-size limit (ulimit -f) write(2) then fails with EFBIG: the save reports
     * it and removes its temporary file like any other write error, exit 2. */
    signal(SIGXFSZ, SIG_IGN);
}

static const struct cli_cmd *find_command(const char *name)
{
    for (size_t i = 0; i < cli_n_commands; i++)
        if (!strcmp(cli_commands[i]->name, name))
            return cli_commands[i];
    return NULL;
}

/* Which top-level option arg is (-V, --version, ...), or NULL. */
static const struct cli_opt *top_option(const char *arg)
{
    for (const struct cli_opt *o = cli_top_opts; o->name; o++)
        if ((arg[1] == '-' && !strcmp(arg + 2, o->name)) || (o->short_name && arg[1] == o->short_name && !arg[2]))
            return o;
    return NULL;
}

/* "unknown command 'prun'; did you mean prune?" */
static int unknown(const char *what, const char *name, const char *nearest)
{
    char shown[256];
    snprintf(shown, sizeof shown, "%s", name);
    for (char *c = shown; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    if (nearest)
        fprintf(stderr, "remodel: unknown %s '%s'; did you mean %s? (see 'remodel --help')\n", what, shown, nearest);
    else
        fprintf(stderr, "remodel: unknown %s '%s' (see 'remodel --help')\n", what, shown);
    return CLI_BAD;
}

int main(int argc, char **argv)
{
    install_signal_handlers();
    if (argc < 2) {
        cli_print_top_help(stderr);
        return CLI_BAD;
    }
    const char *name = argv[1];
    if (!strcmp(name, "help")) {
        const struct cli_cmd *cmd = argc > 2 ? find_command(argv[2]) : NULL;
        if (cmd)
            cli_print_help(cmd, stdout);
        else
            cli_print_top_help(stdout);
        return CLI_OK;
    }
    if (name[0] == '-' && name[1]) {
        const struct cli_opt *o = top_option(name);
        if (!o) {
            const struct cli_opt *best = NULL;
            int best_d = 3;
            for (const struct cli_opt *c = cli_top_opts; c->name; c++) {
                int d = cli_edit_distance(name + strspn(name, "-"), c->name);
                if (!(c->flags & CLI_HIDDEN) && d < best_d)
                    best = c, best_d = d;
            }
            char near[64];
            snprintf(near, sizeof near, "--%s", best ? best->name : "");
            return unknown("option", name, best ? near : NULL);
        }
        if (!strcmp(o->name, "help")) {
            const struct cli_cmd *cmd = argc > 2 ? find_command(argv[2]) : NULL;
            if (cmd)
                cli_print_help(cmd, stdout);
            else
                cli_print_top_help(stdout);
        } else if (!strcmp(o->name, "version")) {
            printf("remodel %s\n", rm_version());
        } else if (!strcmp(o->name, "man")) {
            cli_write_man(stdout);
        } else {
            cli_write_bash_completion(stdout);
        }
        if (fflush(stdout) != 0) {
            fprintf(stderr, "remodel: cannot write to standard output\n");
            return CLI_BAD;
        }
        return CLI_OK;
    }
    const struct cli_cmd *cmd = find_command(name);
    if (!cmd) {
        const char *best = NULL;
        int best_d = 1 + (int)strlen(name) / 3;
        for (size_t i = 0; i < cli_n_commands; i++) {
            int d = cli_edit_distance(name, cli_commands[i]->name);
            /* "prun", "fold": a prefix of a command is near too */
            if (strlen(name) >= 3 && !strncmp(cli_commands[i]->name, name, strlen(name)))
                d = 0;
            if (d <= best_d && (!best || d < best_d))
                best = cli_commands[i]->name, best_d = d;
        }
        return unknown("command", name, best);
    }
    static struct cli_args args; /* large: every positional of a long prune */
    int rc = cli_parse(cmd, argc - 1, argv + 1, &args);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    rc = cmd->run(&args);
    if (fflush(stdout) != 0 && rc == CLI_OK) {
        fprintf(stderr, "remodel: cannot write to standard output\n");
        return CLI_BAD;
    }
    return rc;
}
