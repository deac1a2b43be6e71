/* The option tables at work: parsing a command's arguments, its usage line and --help,
 * and the one-line errors of the command line (unknown options name the nearest one). */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define WIDTH 80   /* help text is wrapped to this many columns */
#define OPT_COL 26 /* where an option's help starts */

/* -h, --help: every command has it, found before anything else is parsed (never stored). */
static const struct cli_opt help_opt = {.name = "help", .short_name = 'h', .kind = CLI_FLAG, .help = "show this help"};

void cli_args_init(struct cli_args *a)
{
    memset(a, 0, sizeof *a);
    a->depth = -1;
    a->samples = 1;
    a->verify_samples = 4;
    a->calib_seed = 1;
    a->ratio = a->atol = a->rtol = a->min_cosine = a->min_top1 = a->target_macs = a->target_params = NAN;
}

/* ---- errors ---------------------------------------------------------------------------- */

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

static char *capture;
static size_t capture_size;

void cli_usage_capture(char *buf, size_t n)
{
    capture = buf;
    capture_size = n;
    if (buf && n)
        buf[0] = '\0';
}

int cli_usage(const struct cli_cmd *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *c = msg; *c; c++) /* arguments echoed back stay on the one line */
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    if (capture)
        snprintf(capture, capture_size, "%s", msg);
    else
        fprintf(stderr, "remodel %s: %s (see 'remodel %s --help')\n", cmd->name, msg, cmd->name);
    return CLI_BAD;
}

/* Optimal string alignment distance (Levenshtein with adjacent transpositions). */
int cli_edit_distance(const char *a, const char *b)
{
    enum { N = 64 };
    int la = (int)strnlen(a, N), lb = (int)strnlen(b, N);
    static int d[N + 1][N + 1];
    for (int i = 0; i <= la; i++)
        d[i][0] = i;
    for (int j = 0; j <= lb; j++)
        d[0][j] = j;
    for (int i = 1; i <= la; i++)
        for (int j = 1; j <= lb; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[la][lb];
}

/* ---- tables ----------------------------------------------------------------------------- */

const char *cli_opt_metavar(const struct cli_opt *o, char *buf, size_t n)
{
    if (o->kind != CLI_CHOICE)
        return o->metavar;
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; o->choices[i] && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%s", i ? "|" : "", o->choices[i]);
    return buf;
}

/* "-o OUT" / "--seed N" / "--json": how usage lines name an option. */
static void opt_usage(const struct cli_opt *o, char *buf, size_t n)
{
    char mv[128];
    const char *m = cli_opt_metavar(o, mv, sizeof mv);
    if (o->short_name)
        snprintf(buf, n, "-%c%s%s", o->short_name, m ? " " : "", m ? m : "");
    else
        snprintf(buf, n, "--%s%s%s", o->name, m ? " " : "", m ? m : "");
}

/* Append printf output to buf[n] at *off, never past its end. */
static void cat(char *buf, size_t n, size_t *off, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static void cat(char *buf, size_t n, size_t *off, const char *fmt, ...)
{
    if (*off >= n)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *off, n - *off, fmt, ap);
    va_end(ap);
    if (k > 0)
        *off += (size_t)k;
}

/* The members of o's group, as "--ratio R | --channels LIST". */
static void group_text(const struct cli_opt *opts, char g, const char *sep, char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = '\0';
    int k = 0;
    for (const struct cli_opt *o = opts; o->name; o++)
        if (o->group == g && !(o->flags & CLI_HIDDEN)) {
            char u[160];
            opt_usage(o, u, sizeof u);
            cat(buf, n, &off, "%s%s", k++ ? sep : "", u);
        }
}

static void pos_synopsis(const struct cli_cmd *cmd, char *buf, size_t n, size_t *off)
{
    for (const struct cli_pos *p = cmd->pos; p && p->name; p++)
        cat(buf, n, off, "%s%s%s%s", *off ? " " : "", p->count == CLI_ONE ? "" : "[", p->name,
            p->count == CLI_ONE ? "" : p->count == CLI_MANY ? "...]" : "]");
}

void cli_synopsis(const struct cli_cmd *cmd, char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = '\0';
    pos_synopsis(cmd, buf, n, &off);
    for (const struct cli_opt *o = cmd->opts; o && o->name; o++) {
        if (o->flags & CLI_HIDDEN)
            continue;
        char u[512];
        bool required = o->flags & CLI_REQUIRED;
        if (o->group) {
            const struct cli_opt *first = cmd->opts;
            while (first->group != o->group || (first->flags & CLI_HIDDEN))
                first++;
            if (first != o)
                continue; /* a group is shown once, where its first member is */
            group_text(cmd->opts, o->group, " | ", u, sizeof u);
            cat(buf, n, &off, " %s%s%s", required ? "(" : "[", u, required ? ")" : "]");
            continue;
        }
        opt_usage(o, u, sizeof u);
        cat(buf, n, &off, " %s%s%s%s", required ? "" : "[", u, required ? "" : "]",
            o->kind == CLI_LIST ? "..." : "");
    }
}

/* ---- help --------------------------------------------------------------------------------- */

/* Words of text[0..len) to f, lines of at most width columns, the first starting at column
 * *col (already printed), the others indented by indent. */
static void wrap_words(FILE *f, const char *text, size_t len, int indent, int width, int col)
{
    const char *p = text, *end = text + len;
    bool first_word = true;
    while (p < end) {
        while (p < end && *p == ' ')
            p++;
        const char *w = p;
        while (p < end && *p != ' ')
            p++;
        int wl = (int)(p - w);
        if (!wl)
            break;
        if (!first_word && col + 1 + wl > width) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        } else if (!first_word) {
            fputc(' ', f);
            col++;
        }
        for (int i = 0; i < wl; i++) /* '\1' is a space no line breaks at */
            fputc(w[i] == '\1' ? ' ' : w[i], f);
        col += wl;
        first_word = false;
    }
    fputc('\n', f);
}

void cli_wrap(FILE *f, const char *text, int indent, int width)
{
    bool prev_bullet = false, first = true;
    for (const char *p = text; p && *p;) {
        size_t len = strcspn(p, "\n");
        bool bullet = len > 2 && p[0] == '-' && p[1] == ' ';
        if (!first && !bullet && !(prev_bullet && bullet))
            fputc('\n', f);
        if (bullet) {
            fprintf(f, "%*s- ", indent + 2, "");
            wrap_words(f, p + 2, len - 2, indent + 4, width, indent + 4);
        } else {
            fprintf(f, "%*s", indent, "");
            wrap_words(f, p, len, indent, width, indent);
        }
        prev_bullet = bullet;
        first = false;
        p += len;
        if (*p)
            p++;
    }
}

static void print_opt_help(FILE *f, const struct cli_opt *o)
{
    char left[256], mv[128];
    const char *m = cli_opt_metavar(o, mv, sizeof mv);
    snprintf(left, sizeof left, "  %s%c%s--%s%s%s", o->short_name ? "-" : "", o->short_name ? o->short_name : ' ',
             o->short_name ? ", " : "  ", o->name, m ? " " : "", m ? m : "");
    if (!o->short_name) /* align long-only options with the long names of the others */
        snprintf(left, sizeof left, "      --%s%s%s", o->name, m ? " " : "", m ? m : "");
    int col = (int)strlen(left);
    fputs(left, f);
    if (col + 2 > OPT_COL) {
        fprintf(f, "\n%*s", OPT_COL, "");
    } else {
        fprintf(f, "%*s", OPT_COL - col, "");
    }
    wrap_words(f, o->help, strlen(o->help), OPT_COL, WIDTH, OPT_COL);
}

void cli_protect_items(char *s)
{
    int depth = 0;
    bool opt = false; /* in an option token, at depth 0 */
    for (char *c = s; *c; c++) {
        if (*c == '[' || *c == '(')
            depth++;
        else if ((*c == ']' || *c == ')') && depth > 0)
            depth--;
        else if (*c == '-' && depth == 0 && (c == s || c[-1] == ' '))
            opt = true;
        else if (*c == ' ' && (depth > 0 || opt)) {
            if (depth == 0)
                opt = false;
            *c = '\1';
        }
    }
}

void cli_print_help(const struct cli_cmd *cmd, FILE *f)
{
    char syn[2048];
    cli_synopsis(cmd, syn, sizeof syn);
    cli_protect_items(syn);
    fprintf(f, "usage: remodel %s ", cmd->name);
    wrap_words(f, syn, strlen(syn), 8, WIDTH, 15 + (int)strlen(cmd->name));
    fprintf(f, "\n%s\n", cmd->summary);
    if (cmd->about) {
        fputc('\n', f);
        cli_wrap(f, cmd->about, 0, WIDTH);
    }
    if (cmd->pos && cmd->pos[0].name) {
        fprintf(f, "\narguments:\n");
        for (const struct cli_pos *p = cmd->pos; p->name; p++) {
            int col = fprintf(f, "  %s", p->name);
            fprintf(f, "%*s", col + 2 > OPT_COL ? 2 : OPT_COL - col, "");
            wrap_words(f, p->help, strlen(p->help), OPT_COL, WIDTH, col + 2 > OPT_COL ? col + 2 : OPT_COL);
        }
    }
    fprintf(f, "\noptions:\n");
    for (const struct cli_opt *o = cmd->opts; o && o->name; o++)
        if (!(o->flags & CLI_HIDDEN))
            print_opt_help(f, o);
    print_opt_help(f, &help_opt);
    if (cmd->notes) {
        fputc('\n', f);
        cli_wrap(f, cmd->notes, 0, WIDTH);
    }
}

/* ---- parsing --------------------------------------------------------------------------- */

/* "--name" as the user would type it. */
static const char *dashed(const struct cli_opt *o, char *buf, size_t n)
{
    snprintf(buf, n, "--%s", o->name);
    return buf;
}

/* The closest long option of cmd to name (without dashes), or NULL when none is close. */
static const struct cli_opt *nearest_opt(const struct cli_opt *opts, const char *name)
{
    const struct cli_opt *best = NULL;
    int best_d = 1 + (int)strlen(name) / 4;
    for (const struct cli_opt *o = opts; o && o->name; o++) {
        if (o->flags & CLI_HIDDEN)
            continue;
        int d = cli_edit_distance(name, o->name);
        if (d <= best_d && (!best || d < best_d))
            best = o, best_d = d;
    }
    return best;
}

static int unknown_option(const struct cli_cmd *cmd, const char *arg, const char *name, size_t len)
{
    char n[128], b[160];
    snprintf(n, sizeof n, "%.*s", (int)(len < sizeof n ? len : sizeof n - 1), name);
    const struct cli_opt *near = nearest_opt(cmd->opts, n);
    if (!near && !strcmp(n, "h"))
        near = &help_opt;
    if (near)
        return cli_usage(cmd, "unknown option '%s'; did you mean %s?", arg, dashed(near, b, sizeof b));
    /* an option of another command, given to this one */
    for (size_t i = 0; i < cli_n_commands; i++)
        for (const struct cli_opt *o = cli_commands[i]->opts; o->name; o++)
            if (!(o->flags & CLI_HIDDEN) && !strcmp(o->name, n))
                return cli_usage(cmd, "unknown option '%s' (an option of 'remodel %s', not of '%s')", arg,
                                 cli_commands[i]->name, cmd->name);
    return cli_usage(cmd, "unknown option '%s'", arg);
}

/* The option --name[=...] names: exactly, or as the one option it abbreviates. Prints
 * the error and returns NULL otherwise. */
static const struct cli_opt *find_long(const struct cli_cmd *cmd, const char *arg, const char *name, size_t len)
{
    const struct cli_opt *prefix = NULL;
    int n_prefix = 0;
    for (const struct cli_opt *o = cmd->opts; o && o->name; o++) {
        if (strlen(o->name) == len && !strncmp(o->name, name, len))
            return o;
        if (len && !(o->flags & CLI_HIDDEN) && !strncmp(o->name, name, len)) {
            prefix = o;
            n_prefix++;
        }
    }
    if (n_prefix == 1)
        return prefix;
    if (n_prefix > 1) {
        char all[512] = "";
        size_t off = 0;
        int k = 0;
        for (const struct cli_opt *o = cmd->opts; o->name; o++)
            if (!(o->flags & CLI_HIDDEN) && !strncmp(o->name, name, len))
                cat(all, sizeof all, &off, "%s--%s", k++ ? ", " : "", o->name);
        cli_usage(cmd, "option '%.*s' is ambiguous: %s", (int)(len + 2), arg, all);
        return NULL;
    }
    unknown_option(cmd, arg, name, len);
    return NULL;
}

/* "a number between 0 and 1 (exclusive)", from the bounds. */
static void float_range(const struct cli_opt *o, char *buf, size_t n)
{
    bool emin = o->flags & CLI_EXCL_MIN, emax = o->flags & CLI_EXCL_MAX;
    if (isinf(o->fmax) && o->fmin == 0)
        snprintf(buf, n, "a %s number", emin ? "positive" : "non-negative");
    else if (emin && emax)
        snprintf(buf, n, "a number between %g and %g (exclusive)", o->fmin, o->fmax);
    else
        snprintf(buf, n, "a number from %g%s to %g%s", o->fmin, emin ? " (exclusive)" : "", o->fmax,
                 emax ? " (exclusive)" : "");
}

static int parse_ll(const char *s, long long min, long long max, long long *out)
{
    char *end;
    if (!s || !*s || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno == ERANGE || v < min || v > max) /* strtoll clamps what overflows */
        return -1;
    *out = v;
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
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

static int set_value(const struct cli_cmd *cmd, const struct cli_opt *o, const char *shown, const char *v,
                     struct cli_args *a)
{
    void *field = (char *)a + o->offset;
    char mv[128], range[128];
    switch (o->kind) {
    case CLI_FLAG:
        *(bool *)field = true;
        return CLI_OK;
    case CLI_INT:
        if (parse_ll(v, o->min, o->max, field))
            return cli_usage(cmd, "%s needs an integer from %lld to %lld, got '%s'", shown, o->min, o->max, v);
        return CLI_OK;
    case CLI_U64:
        if (parse_u64(v, field))
            return cli_usage(cmd, "%s needs an integer from 0 to %llu, got '%s'", shown,
                             (unsigned long long)UINT64_MAX, v);
        return CLI_OK;
    case CLI_FLOAT: {
        char *end;
        double d = *v && !isspace((unsigned char)*v) ? strtod(v, &end) : NAN;
        bool ok = *v && !*end && isfinite(d) && ((o->flags & CLI_EXCL_MIN) ? d > o->fmin : d >= o->fmin) &&
                  ((o->flags & CLI_EXCL_MAX) ? d < o->fmax : d <= o->fmax);
        if (!ok) {
            float_range(o, range, sizeof range);
            return cli_usage(cmd, "%s needs %s, got '%s'", shown, range, v);
        }
        *(double *)field = d;
        return CLI_OK;
    }
    case CLI_STRING:
        if (!*v)
            return cli_usage(cmd, "%s needs a non-empty %s", shown, o->metavar);
        *(const char **)field = v;
        return CLI_OK;
    case CLI_CHOICE:
        for (int i = 0; o->choices[i]; i++)
            if (!strcmp(o->choices[i], v)) {
                *(int *)field = i;
                return CLI_OK;
            }
        cli_opt_metavar(o, mv, sizeof mv);
        for (char *c = mv; *c; c++)
            if (*c == '|')
                *c = '/';
        return cli_usage(cmd, "%s needs one of %s, got '%s'", shown, mv, v);
    case CLI_LIST: {
        struct cli_list *l = field;
        if (l->n == CLI_MAX_LIST)
            return cli_usage(cmd, "too many %s options (at most %d)", shown, CLI_MAX_LIST);
        if (!*v)
            return cli_usage(cmd, "%s needs a non-empty %s", shown, o->metavar);
        l->v[l->n++] = v;
        return CLI_OK;
    }
    }
    return CLI_BAD;
}

int cli_parse(const struct cli_cmd *cmd, int argc, char **argv, struct cli_args *a)
{
    enum { MAX_OPTS = 128 };
    bool given[MAX_OPTS] = {false};
    size_t n_opts = 0;
    while (cmd->opts[n_opts].name)
        n_opts++;
    if (n_opts > MAX_OPTS)
        return cli_usage(cmd, "internal error: more than %d options", MAX_OPTS);
    cli_args_init(a);
    for (int k = 1; k < argc; k++) {
        if (!strcmp(argv[k], "--"))
            break;
        if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) {
            cli_print_help(cmd, stdout);
            return -1;
        }
    }
    bool only_pos = false;
    for (int k = 1; k < argc; k++) {
        const char *arg = argv[k], *val = NULL;
        if (only_pos || arg[0] != '-' || arg[1] == '\0') {
            if (a->n_pos == CLI_MAX_POS)
                return cli_usage(cmd, "too many arguments (at most %d)", CLI_MAX_POS);
            a->pos[a->n_pos++] = arg;
            continue;
        }
        if (!strcmp(arg, "--")) {
            only_pos = true;
            continue;
        }
        const struct cli_opt *o = NULL;
        char shown[160];
        if (arg[1] == '-') {
            const char *name = arg + 2;
            size_t len = strcspn(name, "=");
            if (!(o = find_long(cmd, arg, name, len)))
                return CLI_BAD;
            if (name[len] == '=')
                val = name + len + 1;
            dashed(o, shown, sizeof shown);
        } else {
            for (const struct cli_opt *c = cmd->opts; c->name && !o; c++)
                if (c->short_name && c->short_name == arg[1])
                    o = c;
            if (!o && arg[2]) { /* "-json": a long option given one dash */
                const struct cli_opt *near = NULL;
                for (const struct cli_opt *c = cmd->opts; c->name && !near; c++)
                    if (!(c->flags & CLI_HIDDEN) && !strcmp(c->name, arg + 1))
                        near = c;
                if (near)
                    return cli_usage(cmd, "unknown option '%s'; did you mean --%s?", arg, near->name);
            }
            if (!o || (o->kind == CLI_FLAG && arg[2]))
                return unknown_option(cmd, arg, arg + 1, strlen(arg + 1));
            if (arg[2])
                val = arg + 2;
            snprintf(shown, sizeof shown, "-%c", o->short_name);
        }
        if (o->kind == CLI_FLAG) {
            if (val)
                return cli_usage(cmd, "%s takes no value, got '%s'", shown, arg);
        } else if (!val) {
            char mv[128];
            if (k + 1 >= argc)
                return cli_usage(cmd, "%s needs a value (%s)", shown, cli_opt_metavar(o, mv, sizeof mv));
            val = argv[++k];
        }
        if (set_value(cmd, o, shown, val, a))
            return CLI_BAD;
        given[o - cmd->opts] = true;
    }

    /* positional arguments */
    int min = 0, max = 0;
    const struct cli_pos *missing = NULL;
    for (const struct cli_pos *p = cmd->pos; p && p->name; p++) {
        if (p->count == CLI_ONE) {
            if (a->n_pos <= min && !missing)
                missing = p;
            min++;
        }
        max = p->count == CLI_MANY ? CLI_MAX_POS : max + 1;
    }
    if (missing)
        return cli_usage(cmd, "missing %s", missing->name);
    if (a->n_pos > max) {
        char syn[512];
        size_t off = 0;
        syn[0] = '\0';
        pos_synopsis(cmd, syn, sizeof syn, &off);
        return cli_usage(cmd, "expected %s, got %d arguments", syn, a->n_pos);
    }
    /* required options, and groups of options that exclude each other */
    for (const struct cli_opt *o = cmd->opts; o->name; o++) {
        size_t idx = (size_t)(o - cmd->opts);
        char u[512];
        if (!o->group && (o->flags & CLI_REQUIRED) && !given[idx]) {
            opt_usage(o, u, sizeof u);
            return cli_usage(cmd, "missing %s", u);
        }
        if (!o->group)
            continue;
        const struct cli_opt *first = cmd->opts;
        while (first->group != o->group)
            first++;
        if (first != o)
            continue;
        int n = 0;
        bool required = false;
        for (const struct cli_opt *m = o; m->name; m++)
            if (m->group == o->group) {
                n += given[m - cmd->opts];
                required |= (m->flags & CLI_REQUIRED) != 0;
            }
        if (n > 1 || (required && n == 0)) {
            group_text(cmd->opts, o->group, " and ", u, sizeof u);
            return cli_usage(cmd, "give %s of %s", required ? "exactly one" : "at most one", u);
        }
    }
    return CLI_OK;
}

/* ---- `remodel --help` ------------------------------------------------------------------ */

void cli_print_top_help(FILE *f)
{
    fprintf(f,
            "usage: remodel COMMAND [ARGS]\n\n"
            "See, edit, verify and save ONNX CNNs by PyTorch module path.\n\n"
            "commands:\n");
    for (size_t i = 0; i < cli_n_commands; i++)
        fprintf(f, "  %-8s %s\n", cli_commands[i]->name, cli_commands[i]->summary);
    fprintf(f, "\noptions:\n");
    for (const struct cli_opt *o = cli_top_opts; o->name; o++)
        if (!(o->flags & CLI_HIDDEN))
            print_opt_help(f, o);
    fprintf(f,
            "\n'remodel COMMAND --help' shows a command's options.\n"
            "exit codes: 0 success, 1 a check or diff found a problem,\n"
            "            2 usage error or bad input (one line on stderr says what, where, why)\n");
}
