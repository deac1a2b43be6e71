/* remodel apply: an edit script, one edit per line in the CLI's own syntax, applied in
 * order to one model in memory, verified once, written only if every line succeeds.
 *
 * Lines are parsed with the edit commands' own option parsers (cli_replace_parse,
 * cli_prune_parse), so a script line means what the same command typed in a shell means,
 * less MODEL and the options of the written file (-o, --no-verify, --external-data,
 * --json), which belong to apply. Every line is parsed before the model is loaded: a
 * syntax error anywhere costs no work. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SCRIPT_BYTES (1 << 20)
#define MAX_TOKENS 256

enum step_kind { STEP_REPLACE, STEP_PRUNE, STEP_FOLD_BN, STEP_INPUT_SHAPE };

struct step {
    int line;
    enum step_kind kind;
    char *text;                /* the line as written, trimmed (for reports) */
    char **argv;               /* tokens, argv[0] the edit's name (owned) */
    int argc;
    struct cli_replace_args ra;
    struct cli_prune_args pa;
    char *input;               /* input-shape: the input's name, dims */
    int rank;
    int64_t dims[RM_MAX_RANK];
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
        cli_prune_args_free(&st->pa);
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

/* "input=1,3,224,224" into st. */
static int parse_input_shape(struct step *st, const char *arg, char *msg, size_t n)
{
    const char *eq = strrchr(arg, '=');
    if (!eq || eq == arg || !eq[1]) {
        snprintf(msg, n, "input-shape takes NAME=D0,D1,... (input=1,3,224,224), not '%s'", arg);
        return -1;
    }
    st->input = st->argv[1];
    st->input[eq - arg] = '\0';
    const char *p = eq + 1;
    st->rank = 0;
    while (*p) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || errno == ERANGE || st->rank == RM_MAX_RANK) {
            snprintf(msg, n, "input-shape: dims must be up to %d non-negative integers separated by commas, not '%s'",
                     RM_MAX_RANK, eq + 1);
            return -1;
        }
        st->dims[st->rank++] = v;
        p = end;
        if (*p == ',' && p[1])
            p++;
        else if (*p) {
            snprintf(msg, n, "input-shape: dims must be integers separated by commas, not '%s'", eq + 1);
            return -1;
        }
    }
    return 0;
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
        char msg[RM_ERROR_MSG_MAX + 64] = "";
        const char *prefix = "";
        int prc = 0;
        if (!strcmp(st->argv[0], "replace")) {
            st->kind = STEP_REPLACE;
            prefix = "replace: ";
            prc = cli_replace_parse(st->argc, st->argv, NULL, &st->ra, msg, sizeof msg);
            if (!prc) {
                struct rm_error err;
                rm_error_clear(&err);
                if (rm_spec_check(st->ra.spec, &err)) {
                    snprintf(msg, sizeof msg, "%s", err.msg);
                    prc = -1;
                }
            }
        } else if (!strcmp(st->argv[0], "prune")) {
            st->kind = STEP_PRUNE;
            prefix = "prune: ";
            prc = cli_prune_parse(st->argc, st->argv, NULL, &st->pa, msg, sizeof msg);
        } else if (!strcmp(st->argv[0], "fold-bn")) {
            st->kind = STEP_FOLD_BN;
            if (st->argc > 1)
                prc = -1, snprintf(msg, sizeof msg, "fold-bn takes no arguments here, got '%s'", st->argv[1]);
        } else if (!strcmp(st->argv[0], "input-shape")) {
            st->kind = STEP_INPUT_SHAPE;
            if (st->argc != 2)
                prc = -1, snprintf(msg, sizeof msg, "input-shape takes one NAME=D0,D1,... (input=1,3,224,224)");
            else
                prc = parse_input_shape(st, st->argv[1], msg, sizeof msg);
        } else {
            prc = -1;
            snprintf(msg, sizeof msg, "unknown edit '%s' (a line is one of: replace PATH SPEC [options], prune "
                     "[PATH...] options, fold-bn, input-shape NAME=DIMS)", st->argv[0]);
        }
        if (prc)
            rc = line_error(s, line, "%s%s", prefix, msg);
    }
    free(text);
    if (rc == CLI_OK && s->n == 0) {
        fprintf(stderr, "remodel: %s: no edits (one per line: replace, prune, fold-bn, input-shape; # comments)\n",
                path);
        rc = CLI_BAD;
    }
    return rc;
}

static void print_step_notes(const rm_findings *log)
{
    for (size_t i = 0; i < log->n; i++)
        if (log->v[i].kind == RM_FINDING_NOTE)
            printf("  %s\n", log->v[i].text);
}

/* Apply step st to m; report it (text, or into the JSON steps array). */
static int run_step(const struct script *s, struct step *st, struct rm_model *m, bool json, rm_json *j)
{
    struct rm_error err;
    rm_error_clear(&err);
    rm_findings log = {0};
    struct rm_prune_report rep;
    memset(&rep, 0, sizeof rep);
    int folded = 0, rc = 0;
    switch (st->kind) {
    case STEP_REPLACE: rc = rm_replace(m, st->ra.path, st->ra.spec, &st->ra.ro, &log, &err); break;
    case STEP_PRUNE: rc = rm_prune(m, st->pa.paths, st->pa.n_paths, &st->pa.po, &rep, &log, &err); break;
    case STEP_FOLD_BN: rc = rm_fold_bn(m, &folded, &log, &err); break;
    case STEP_INPUT_SHAPE: rc = rm_model_set_input_shape(m, st->input, st->rank, st->dims, &err); break;
    }
    if (rc) {
        /* the library's message, and the option that would help */
        const char *hint = err.fix == RM_FIX_PROPAGATE ? " (--propagate carries channel changes to dependents)"
                           : err.fix == RM_FIX_GLOBAL  ? " (--global)"
                                                       : "";
        line_error(s, st->line, "%s: %s%s; nothing written", st->argv[0], err.msg[0] ? err.msg : rm_strerror(err.code),
                   hint);
        rm_findings_free(&log);
        rm_prune_report_free(&rep);
        return CLI_BAD;
    }
    if (json) {
        rm_json_obj_begin(j);
        rm_json_key(j, "line");
        rm_json_int(j, st->line);
        rm_json_key(j, "edit");
        rm_json_str(j, st->argv[0]);
        rm_json_key(j, "text");
        rm_json_str(j, st->text);
        if (st->kind == STEP_PRUNE) {
            rm_json_key(j, "criterion");
            rm_json_str(j, rm_criterion_name(st->pa.po.criterion));
            cli_prune_report_json(j, &rep);
        } else if (st->kind == STEP_FOLD_BN) {
            rm_json_key(j, "folded");
            rm_json_int(j, folded);
        }
        rm_json_key(j, "notes");
        cli_json_notes(j, &log);
        rm_json_obj_end(j);
    } else {
        printf("%s:%d: %s\n", s->path, st->line, st->text);
        if (st->kind == STEP_PRUNE) {
            cli_prune_report_print(&rep);
        } else {
            print_step_notes(&log);
            if (st->kind == STEP_FOLD_BN)
                printf("  folded %d BatchNorm%s\n", folded, folded == 1 ? "" : "s");
        }
    }
    rm_findings_free(&log);
    rm_prune_report_free(&rep);
    return CLI_OK;
}

static int run_apply(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"seed", required_argument, NULL, 's'},
                                         {"no-verify", no_argument, NULL, 'n'},
                                         {"external-data", required_argument, NULL, 'x'},
                                         {"json", no_argument, NULL, 'j'},
                                         {0, 0, 0, 0}};
    struct cli_edit_common ec = {.verify = true};
    bool json = false;
    int c;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case 'o': ec.out = optarg; break;
        case 'n': ec.verify = false; break;
        case 'x': ec.ext = optarg; break;
        case 'j': json = true; break;
        case 's':
            if (cli_parse_u64(optarg, &ec.seed))
                return cli_usage(&cli_cmd_apply, "--seed must be an integer from 0 to 18446744073709551615, not '%s'",
                                 optarg);
            break;
        default: return cli_usage(&cli_cmd_apply, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 2)
        return cli_usage(&cli_cmd_apply, "expected MODEL SCRIPT, got %d arguments", argc - optind);
    if (!ec.out)
        return cli_usage(&cli_cmd_apply, "missing -o OUT");
    const char *model = argv[optind], *script_path = argv[optind + 1];

    /* every line parsed before any work */
    struct script s;
    int rc = script_read(&s, script_path);
    if (rc) {
        script_free(&s);
        return rc;
    }
    struct rm_model *orig, *m;
    if ((rc = cli_load_for_edit(model, &ec, &orig, &m))) {
        script_free(&s);
        return rc;
    }
    /* the report is printed as the steps succeed (text), or once at the end (JSON:
     * nothing on stdout unless every step succeeded) */
    char *buf = NULL;
    size_t buf_len = 0;
    FILE *jf = json ? open_memstream(&buf, &buf_len) : NULL;
    rm_json j;
    if (json) {
        if (!jf) {
            fprintf(stderr, "remodel: out of memory\n");
            rc = CLI_BAD;
            goto done;
        }
        rm_json_init(&j, jf);
        rm_json_obj_begin(&j);
        rm_json_key(&j, "model");
        rm_json_str(&j, model);
        rm_json_key(&j, "script");
        rm_json_str(&j, script_path);
        rm_json_key(&j, "steps");
        rm_json_arr_begin(&j);
    }
    for (int i = 0; i < s.n && !rc; i++)
        rc = run_step(&s, &s.steps[i], m, json, &j);
    if (rc)
        goto done;
    struct cli_verdict v = {0};
    if (ec.verify && (rc = cli_verify(orig, m, ec.seed, &v)))
        goto done;
    if ((rc = cli_save_edit(m, ec.out, ec.ext)))
        goto done;
    if (json) {
        rm_json_arr_end(&j);
        rm_json_key(&j, "verify");
        cli_verdict_json(&j, &v);
        rm_json_key(&j, "written");
        rm_json_str(&j, ec.out);
        rm_json_obj_end(&j);
        rm_json_end(&j);
        fclose(jf);
        jf = NULL;
        fwrite(buf, 1, buf_len, stdout);
    } else {
        cli_verdict_print(&v);
        printf("wrote %s\n", ec.out);
    }
done:
    if (jf)
        fclose(jf);
    free(buf);
    rm_model_free(m);
    rm_model_free(orig);
    script_free(&s);
    return rc;
}

const struct cli_cmd cli_cmd_apply = {
    "apply", "MODEL SCRIPT -o OUT [--seed N] [--no-verify] [--external-data FILE] [--json]",
    "Apply an edit script: many edits, verified once, written only if all succeed.\n"
    "SCRIPT holds one edit per line in the command line's own syntax, without MODEL and -o:\n"
    "  replace PATH SPEC [--init keep|kaiming|zeros] [--seed N] [--propagate]\n"
    "  prune [PATH...] (--ratio R | --channels LIST | --target-macs F | ...) [options]\n"
    "  fold-bn\n"
    "  input-shape NAME=D0,D1,...\n"
    "with # comments and blank lines. The edits apply in order to one model in memory; then\n"
    "the result is verified against MODEL once and written. A line that fails (or does not\n"
    "parse: every line is parsed first) stops everything with SCRIPT:LINE in the message,\n"
    "and nothing is written.",
    "options:\n"
    "  -o, --output OUT     file to write (atomically; may name MODEL)\n"
    "  --seed N             seed for the verification input (0)\n"
    "  --no-verify          skip running both models\n"
    "  --external-data FILE write weights to FILE beside OUT (see 'remodel save --help')\n"
    "  --json               print every step's report, the verdict and the file written as\n"
    "                       one JSON document\n"
    "\n"
    "Words are split as a shell splits them ('...' and \"...\" quote, \\ escapes), and a\n"
    "SPEC's parentheses hold their spaces: replace layer1.0.conv1 Conv2d(64, 32, 3, 1, 1)\n"
    "needs no quotes. Relative paths in a line (--calib-inputs DIR) are from the current\n"
    "folder. input-shape gives a graph input's dims for the steps after it (shape inference,\n"
    "MACs, calibration); the file keeps its declared input shape. On a line, --seed of\n"
    "replace seeds its kaiming weights; -o, --no-verify, --external-data and --json belong\n"
    "to apply.\n",
    run_apply,
};
