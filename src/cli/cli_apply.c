/* remodel apply: an edit script, one edit per line in the CLI's own syntax, applied in
 * order to one model in memory, verified once, written only if every line succeeds.
 *
 * Lines are parsed with the edit commands' own option tables (cli_edit.h), so a script line
 * means what the same command typed in a shell means, less MODEL and the options of the
 * written file (-o, --no-verify, --external-data, --json and the verification's), which
 * belong to apply. Every line is parsed before the model is loaded: a syntax error anywhere
 * costs no work. */
#include "cli_edit.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SCRIPT_BYTES (1 << 20)
#define MAX_TOKENS 256

/* ---- the line commands: an edit's own options, no MODEL, no output ---------------------- */

static const struct cli_pos replace_line_pos[] = {
    {"PATH", CLI_ONE, CLI_C_MODULE, "the Conv1d/2d/3d module to replace"},
    {"SPEC", CLI_ONE, CLI_C_NONE, "the new module in PyTorch syntax"},
    {0},
};
static const struct cli_opt replace_line_opts[] = {
    CLI_OPTS_REPLACE,
    {.name = "seed", .metavar = "N", CLI_U(seed), .help = "seed for kaiming weights (default 0)"},
    {0},
};
static const struct cli_cmd replace_line = {.name = "replace", .pos = replace_line_pos, .opts = replace_line_opts};

static const struct cli_pos prune_line_pos[] = {
    {"PATH", CLI_MANY, CLI_C_MODULE, "Conv2d modules whose groups are pruned"},
    {0},
};
static const struct cli_opt prune_line_opts[] = {CLI_OPTS_PRUNE, CLI_OPT_THREADS, {0}};
static const struct cli_cmd prune_line = {.name = "prune", .pos = prune_line_pos, .opts = prune_line_opts};

static const struct cli_opt no_opts[] = {{0}};
static const struct cli_cmd fold_line = {.name = "fold-bn", .pos = (const struct cli_pos[]){{0}}, .opts = no_opts};

static const struct cli_pos shape_line_pos[] = {{"NAME=D0,D1,...", CLI_ONE, CLI_C_NONE, "a graph input's dims"},
                                                {0}};
static const struct cli_cmd shape_line = {.name = "input-shape", .pos = shape_line_pos, .opts = no_opts};

static const struct cli_cmd *const line_cmds[] = {&replace_line, &prune_line, &fold_line, &shape_line};

/* ---- the script ----------------------------------------------------------------------- */

struct step {
    int line;
    const struct cli_cmd *cmd;
    char *text;                /* the line as written, trimmed (for reports) */
    char **argv;               /* tokens, argv[0] the edit's name (owned) */
    int argc;
    struct cli_args args;      /* parsed with cmd's table */
    struct cli_prune_req prune;
    rm_replace_options replace;
};

struct script {
    const char *path;
    struct step *steps;
    int n;
};

static void script_free(struct script *s)
{
    for (int i = 0; i < s->n; i++) {
        struct step *st = &s->steps[i];
        for (int k = 0; k < st->argc; k++)
            free(st->argv[k]);
        free(st->argv);
        free(st->text);
        cli_prune_req_free(&st->prune);
    }
    free(s->steps);
    memset(s, 0, sizeof *s);
}

/* Print "remodel: SCRIPT:LINE: message" and return CLI_BAD. */
static int line_error(const struct script *s, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int line_error(const struct script *s, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *c = msg; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    fprintf(stderr, "remodel: %s:%d: %s\n", s->path, line, msg);
    return CLI_BAD;
}

/* Split a line into tokens as a shell would, with one addition: an unquoted '(' opens a
 * group that runs to its matching ')' whatever spaces it holds, so Conv2d(8, 8, 3) needs
 * no quotes. '...' is literal; "..." takes \" and \\; a backslash outside quotes escapes
 * the next character; '#' where a token starts begins a comment. Returns the number of
 * tokens (malloc'd strings), or -1 with the problem in why. */
static int tokenize(const char *p, char **tok, int max, const char **why)
{
    int n = 0;
    size_t len = strlen(p);
    char *buf = malloc(len + 1);
    if (!buf) {
        *why = "out of memory";
        return -1;
    }
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r')
            p++;
        if (!*p || *p == '#')
            break;
        size_t k = 0;
        int depth = 0;
        while (*p && (depth > 0 || (*p != ' ' && *p != '\t' && *p != '\r'))) {
            if (*p == '\'') {
                const char *end = strchr(p + 1, '\'');
                if (!end) {
                    *why = "a quote (') is not closed";
                    goto fail;
                }
                memcpy(buf + k, p + 1, (size_t)(end - p - 1));
                k += (size_t)(end - p - 1);
                p = end + 1;
            } else if (*p == '"') {
                p++;
                while (*p && *p != '"') {
                    if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                        p++;
                    buf[k++] = *p++;
                }
                if (*p != '"') {
                    *why = "a quote (\") is not closed";
                    goto fail;
                }
                p++;
            } else if (*p == '\\' && p[1]) {
                buf[k++] = p[1];
                p += 2;
            } else {
                if (*p == '(')
                    depth++;
                else if (*p == ')' && depth > 0)
                    depth--;
                buf[k++] = *p++;
            }
        }
        if (depth > 0) {
            *why = "a parenthesis is not closed";
            goto fail;
        }
        if (n == max) {
            *why = "too many words on the line";
            goto fail;
        }
        buf[k] = '\0';
        if (!(tok[n] = strdup(buf))) {
            *why = "out of memory";
            goto fail;
        }
        n++;
    }
    free(buf);
    return n;
fail:
    for (int i = 0; i < n; i++)
        free(tok[i]);
    free(buf);
    return -1;
}

/* Parse step st's tokens with its command's table: 0, or -1 with the problem in msg. */
static int parse_step(struct step *st, char *msg, size_t n)
{
    st->cmd = NULL;
    for (size_t i = 0; i < sizeof line_cmds / sizeof line_cmds[0]; i++)
        if (!strcmp(st->argv[0], line_cmds[i]->name))
            st->cmd = line_cmds[i];
    if (!st->cmd) {
        snprintf(msg, n, "unknown edit '%s' (a line is one of: replace PATH SPEC [options], prune [PATH...] options, "
                 "fold-bn, input-shape NAME=D0,D1,...)", st->argv[0]);
        return -1;
    }
    /* the options of the written file and of the verification are apply's own */
    static const char *const apply_own[] = {"-o", "--output", "--no-verify", "--external-data", "--json",
                                            "--verify-samples", "--verify-inputs", "--atol", "--rtol",
                                            "--min-cosine", "--min-top1", "--input-shape"};
    for (int i = 1; i < st->argc; i++)
        for (size_t k = 0; k < sizeof apply_own / sizeof apply_own[0]; k++) {
            size_t len = strlen(apply_own[k]);
            if (!strncmp(st->argv[i], apply_own[k], len) && (!st->argv[i][len] || st->argv[i][len] == '=')) {
                snprintf(msg, n, "%s: %s is an option of apply itself, not of a script line%s", st->cmd->name,
                         apply_own[k], k == 11 ? " (an input-shape line gives an input's dims)" : "");
                return -1;
            }
        }
    char err[1024] = "";
    cli_usage_capture(err, sizeof err);
    cli_args_init(&st->args);
    int rc = cli_parse(st->cmd, st->argc, st->argv, &st->args);
    if (rc == 0 && st->cmd == &prune_line)
        rc = cli_prune_request(&prune_line, &st->args, (size_t)st->args.n_pos, &st->prune);
    if (rc == 0 && st->cmd == &shape_line) {
        char name[1024];
        int rank;
        int64_t dims[RM_MAX_RANK];
        if (cli_parse_shape(st->args.pos[0], name, sizeof name, &rank, dims)) {
            snprintf(err, sizeof err, "takes NAME=D0,D1,... with positive sizes (input=1,3,224,224), not '%s'",
                     st->args.pos[0]);
            rc = CLI_BAD;
        }
    }
    if (rc == 0 && st->cmd == &replace_line) {
        struct rm_error e;
        cli_replace_request(&st->args, &st->replace);
        if (rm_spec_check(st->args.pos[1], &e)) {
            snprintf(err, sizeof err, "%s", e.msg);
            rc = CLI_BAD;
        }
    }
    cli_usage_capture(NULL, 0);
    if (rc < 0) /* --help on a line */
        snprintf(err, sizeof err, "--help is an option of the commands, not of a script line");
    if (rc)
        snprintf(msg, n, "%s: %s", st->cmd->name, err);
    return rc ? -1 : 0;
}

/* Read and parse every line of the script; prints and returns CLI_BAD on the first
 * problem. */
static int script_read(struct script *s, const char *path)
{
    memset(s, 0, sizeof *s);
    s->path = path;
    /* a FIFO or a device would block or never end: refused before reading */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "remodel: %s: cannot open: %s\n", path, strerror(errno));
        return CLI_BAD;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fprintf(stderr, "remodel: %s: not a regular file (%s); an edit script is a text file\n", path,
                S_ISDIR(sb.st_mode) ? "a folder" : S_ISFIFO(sb.st_mode) ? "a FIFO" : "a device or socket");
        close(fd);
        return CLI_BAD;
    }
    if (sb.st_size > MAX_SCRIPT_BYTES) {
        fprintf(stderr, "remodel: %s: %lld bytes; an edit script is a text file of at most %d\n", path,
                (long long)sb.st_size, MAX_SCRIPT_BYTES);
        close(fd);
        return CLI_BAD;
    }
    char *text = malloc((size_t)sb.st_size + 1);
    size_t got = 0;
    while (text && got < (size_t)sb.st_size) {
        ssize_t r = read(fd, text + got, (size_t)sb.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!text) {
        fprintf(stderr, "remodel: out of memory\n");
        return CLI_BAD;
    }
    text[got] = '\0';
    if (strlen(text) != got) {
        free(text);
        fprintf(stderr, "remodel: %s: holds NUL bytes; an edit script is a text file\n", path);
        return CLI_BAD;
    }
    int rc = CLI_OK, line = 0;
    for (char *ln = text, *next; ln && rc == CLI_OK; ln = next) {
        next = strchr(ln, '\n');
        if (next)
            *next++ = '\0';
        line++;
        char *tok[MAX_TOKENS];
        const char *why = NULL;
        int n = tokenize(ln, tok, MAX_TOKENS, &why);
        if (n < 0) {
            rc = line_error(s, line, "%s", why);
            break;
        }
        if (n == 0)
            continue;
        struct step *ns = realloc(s->steps, (size_t)(s->n + 1) * sizeof *ns);
        if (!ns) {
            for (int i = 0; i < n; i++)
                free(tok[i]);
            rc = line_error(s, line, "out of memory");
            break;
        }
        s->steps = ns;
        struct step *st = &s->steps[s->n++];
        memset(st, 0, sizeof *st);
        st->line = line;
        st->argc = n;
        st->argv = calloc((size_t)n + 1, sizeof *st->argv);
        while (*ln == ' ' || *ln == '\t')
            ln++;
        st->text = strdup(ln);
        if (!st->argv || !st->text) {
            for (int i = 0; i < n; i++)
                free(tok[i]);
            st->argc = 0;
            rc = line_error(s, line, "out of memory");
            break;
        }
        size_t tl = strlen(st->text);
        while (tl && (st->text[tl - 1] == ' ' || st->text[tl - 1] == '\t' || st->text[tl - 1] == '\r'))
            st->text[--tl] = '\0';
        memcpy(st->argv, tok, (size_t)n * sizeof *tok);
        char msg[RM_ERROR_MSG_MAX + 64];
        if (parse_step(st, msg, sizeof msg))
            rc = line_error(s, line, "%s", msg);
    }
    free(text);
    if (rc == CLI_OK && s->n == 0) {
        fprintf(stderr, "remodel: %s: no edits (one per line: replace, prune, fold-bn, input-shape; # comments)\n",
                path);
        rc = CLI_BAD;
    }
    return rc;
}

/* ---- running it ------------------------------------------------------------------------ */

static void print_step_notes(const rm_findings *log)
{
    for (size_t i = 0; i < log->n; i++)
        if (log->v[i].kind == RM_FINDING_NOTE)
            printf("  %s\n", log->v[i].text);
}

/* Apply step st to e's models (input-shape to both, edits to the copy); report it as
 * text, or into the JSON steps array. */
static int run_step(const struct script *s, struct step *st, struct cli_edit *e, bool json, rm_json *j)
{
    struct rm_error err;
    rm_error_clear(&err);
    rm_findings log = {0};
    struct rm_prune_report rep;
    memset(&rep, 0, sizeof rep);
    int folded = 0, rc = 0;
    if (st->cmd == &replace_line) {
        rc = rm_replace(e->m, st->args.pos[0], st->args.pos[1], &st->replace, &log, &err);
    } else if (st->cmd == &prune_line) {
        rc = rm_prune(e->m, st->args.pos, (size_t)st->args.n_pos, &st->prune.po, &rep, &log, &err);
    } else if (st->cmd == &fold_line) {
        rc = rm_fold_bn(e->m, &folded, &log, &err);
    } else {
        /* the dims the steps after it (and the verification) take, for both models */
        struct cli_list one = {1, {st->args.pos[0]}};
        char msg[1024];
        cli_usage_capture(msg, sizeof msg);
        int r = cli_input_shapes(e->m, &one, false) || cli_input_shapes(e->orig, &one, false);
        cli_usage_capture(NULL, 0);
        if (r)
            return line_error(s, st->line, "input-shape: not applied (see the line above); nothing written");
    }
    char why[512];
    if (!rc && st->cmd == &prune_line && !st->args.allow_noop &&
        rm_prune_nothing(&rep, &st->prune.po, why, sizeof why)) {
        line_error(s, st->line, "prune: nothing was pruned: %s; nothing written (--allow-noop on the line lets it "
                   "pass)", why);
        rm_findings_free(&log);
        rm_prune_report_free(&rep);
        return CLI_FINDINGS;
    }
    if (rc) {
        const char *hint = err.fix == RM_FIX_PROPAGATE      ? " (--propagate carries channel changes to dependents)"
                           : err.fix == RM_FIX_GLOBAL       ? " (--global)"
                           : err.fix == RM_FIX_INPUT_SHAPE  ? " (an input-shape line before it)"
                                                            : "";
        line_error(s, st->line, "%s: %s%s; nothing written", st->argv[0], err.msg[0] ? err.msg : rm_strerror(err.code),
                   hint);
        rm_findings_free(&log);
        rm_prune_report_free(&rep);
        return CLI_BAD;
    }
    if (json) {
        rm_json_obj_begin(j);
        cli_kv_int(j, "line", st->line);
        cli_kv_str(j, "edit", st->argv[0]);
        cli_kv_str(j, "text", st->text);
        if (st->cmd == &prune_line) {
            cli_kv_str(j, "criterion", rm_criterion_name(st->prune.po.criterion ? st->prune.po.criterion : RM_CRITERION_L1));
            cli_prune_report_json(j, &rep);
        } else if (st->cmd == &fold_line) {
            cli_kv_int(j, "folded", folded);
        }
        rm_json_key(j, "notes");
        rm_json_arr_begin(j);
        for (size_t i = 0; i < log.n; i++)
            if (log.v[i].kind == RM_FINDING_NOTE)
                rm_json_str(j, log.v[i].text);
        rm_json_arr_end(j);
        rm_json_obj_end(j);
    } else {
        printf("%s:%d: %s\n", s->path, st->line, st->text);
        if (st->cmd == &prune_line) {
            cli_prune_report_print(&rep);
        } else {
            print_step_notes(&log);
            if (st->cmd == &fold_line)
                printf("  folded %d BatchNorm%s\n", folded, folded == 1 ? "" : "s");
        }
    }
    rm_findings_free(&log);
    rm_prune_report_free(&rep);
    return CLI_OK;
}

struct apply_ctx {
    const char *script;
    const char *steps; /* the steps array, already written as JSON text */
};

static void apply_json(rm_json *j, const void *ctx)
{
    const struct apply_ctx *c = ctx;
    cli_kv_str(j, "script", c->script);
    rm_json_key(j, "steps");
    fputs(c->steps, j->f);
    j->after_key = false;
}

static int run_apply(struct cli_args *a)
{
    const char *script_path = a->pos[1];
    /* every line parsed before any work */
    struct script s;
    int rc = script_read(&s, script_path);
    if (rc) {
        script_free(&s);
        return rc;
    }
    struct cli_edit e;
    if ((rc = cli_edit_begin(&e, a, "apply"))) {
        cli_edit_end(&e);
        script_free(&s);
        return rc;
    }
    /* the steps' JSON is collected apart, then placed in the edit's document */
    char *buf = NULL;
    size_t buf_len = 0;
    FILE *jf = a->json ? open_memstream(&buf, &buf_len) : NULL;
    rm_json j;
    if (a->json && !jf) {
        fprintf(stderr, "remodel: out of memory\n");
        rc = CLI_BAD;
        goto done;
    }
    if (jf) {
        rm_json_init(&j, jf);
        rm_json_arr_begin(&j);
    }
    for (int i = 0; i < s.n && !rc; i++)
        rc = run_step(&s, &s.steps[i], &e, a->json, &j);
    if (rc)
        goto done;
    if (jf) {
        rm_json_arr_end(&j);
        if (fclose(jf)) {
            jf = NULL;
            fprintf(stderr, "remodel: out of memory\n");
            rc = CLI_BAD;
            goto done;
        }
        jf = NULL;
    }
    if ((rc = cli_edit_finish(&e)))
        goto done;
    if (a->json)
        cli_edit_json(&e, apply_json, &(struct apply_ctx){script_path, buf ? buf : "[]"});
done:
    if (jf)
        fclose(jf);
    free(buf);
    cli_edit_end(&e);
    script_free(&s);
    return rc;
}

static const struct cli_pos apply_pos[] = {
    CLI_POS_MODEL,
    {"SCRIPT", CLI_ONE, CLI_C_FILE, "the edit script: one edit per line"},
    {0},
};

static const struct cli_opt apply_opts[] = {
    CLI_OPT_OUT_MODEL,
    EDIT_OPT_SEED,
    EDIT_OPTS_TAIL,
    {0},
};

const struct cli_cmd cli_cmd_apply = {
    .name = "apply",
    .summary = "apply an edit script: many edits, verified once, written only if all succeed",
    .about = "SCRIPT holds one edit per line in the command line's own syntax, without MODEL and -o:\n"
             "- replace PATH SPEC [--init keep|kaiming|zeros] [--seed N] [--propagate]\n"
             "- prune [PATH...] (--ratio R | --channels LIST | --target-macs F | ...) [options]\n"
             "- fold-bn\n"
             "- input-shape NAME=D0,D1,...\n"
             "with # comments and blank lines. The edits apply in order to one model in memory; then the result "
             "is verified against MODEL once and written. A line that fails (or does not parse: every line is "
             "parsed first) stops everything with SCRIPT:LINE in the message, and nothing is written.",
    .pos = apply_pos,
    .opts = apply_opts,
    .notes = "Words are split as a shell splits them ('...' and \"...\" quote, \\ escapes), and a SPEC's "
             "parentheses hold their spaces: replace layer1.0.conv1 Conv2d(64, 32, 3, 1, 1) needs no quotes. "
             "Relative paths in a line (--calib-inputs DIR) are from the current folder. input-shape gives a graph "
             "input's dims for the steps after it and the verification, as --input-shape does; the file keeps "
             "its declared input shape. On a line, --seed of replace seeds its kaiming weights; the options of the "
             "written file and of the verification belong to apply.\n"
             "--json: the edit commands' document, with script and steps [{line, edit, text, notes, and prune's "
             "criterion, dry_run, groups, calibration_samples, refits or fold-bn's folded}].",
    .run = run_apply,
};
