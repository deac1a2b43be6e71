#include "rm_spec.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* One parsed argument value. */
struct value {
    enum { V_INT, V_TUPLE, V_BOOL, V_STR } kind;
    int n;              /* tuple length */
    int64_t v[4];
    char s[32];
};

struct parser {
    const char *p;
    const char *text;
    struct rm_error *err;
};

static void ws(struct parser *ps)
{
    while (isspace((unsigned char)*ps->p))
        ps->p++;
}

static int fail(struct parser *ps, const char *what)
{
    return rm_error_set(ps->err, RM_EUSAGE, "SPEC '%s': %s at column %d", ps->text, what,
                        (int)(ps->p - ps->text) + 1);
}

static int parse_int(struct parser *ps, int64_t *out)
{
    ws(ps);
    int neg = 0;
    if (*ps->p == '-' || *ps->p == '+')
        neg = *ps->p++ == '-';
    if (!isdigit((unsigned char)*ps->p))
        return fail(ps, "expected an integer");
    int64_t v = 0;
    while (isdigit((unsigned char)*ps->p)) {
        int d = *ps->p++ - '0';
        if (v > (INT64_MAX - d) / 10)
            return fail(ps, "integer too large");
        v = v * 10 + d;
    }
    *out = neg ? -v : v;
    return 0;
}

/* A bare word where a value belongs: Python's booleans in another case ('false', 'TRUE')
 * get the spelling Python wants; anything else the values SPECs take. */
static int bare_word(struct parser *ps, const char *arg)
{
    const char *w = ps->p;
    size_t n = 0;
    while (isalnum((unsigned char)w[n]) || w[n] == '_')
        n++;
    if (!strcmp(arg, "bias") && ((n == 4 && !strncasecmp(w, "true", 4)) || (n == 5 && !strncasecmp(w, "false", 5))))
        return rm_error_set(ps->err, RM_EUSAGE, "SPEC '%s': %s=%.*s: use True or False, as Python writes them (%s=%s)",
                            ps->text, arg, (int)n, w, arg, n == 4 ? "True" : "False");
    return rm_error_set(ps->err, RM_EUSAGE,
                        "SPEC '%s': %s=%.*s: expected an int, a tuple of ints, True or False, or a quoted string",
                        ps->text, arg, (int)n, w);
}

/* arg names the argument whose value this is, for messages. */
static int parse_value(struct parser *ps, struct value *v, const char *arg)
{
    ws(ps);
    if (isalpha((unsigned char)*ps->p) && strncmp(ps->p, "True", 4) && strncmp(ps->p, "False", 5))
        return bare_word(ps, arg);
    if (*ps->p == '(') {
        ps->p++;
        v->kind = V_TUPLE;
        v->n = 0;
        for (;;) {
            ws(ps);
            if (*ps->p == ')') {
                ps->p++;
                break;
            }
            if (v->n == 4)
                return fail(ps, "tuple too long");
            int rc = parse_int(ps, &v->v[v->n++]);
            if (rc)
                return rc;
            ws(ps);
            if (*ps->p == ',')
                ps->p++;
            else if (*ps->p != ')')
                return fail(ps, "expected ',' or ')' in tuple");
        }
        if (v->n == 0)
            return fail(ps, "empty tuple");
        return 0;
    }
    if (*ps->p == '\'' || *ps->p == '"') {
        char q = *ps->p++;
        size_t n = 0;
        while (*ps->p && *ps->p != q) {
            if (n + 1 >= sizeof v->s)
                return fail(ps, "string too long");
            v->s[n++] = *ps->p++;
        }
        if (*ps->p != q)
            return fail(ps, "unterminated string");
        ps->p++;
        v->s[n] = '\0';
        v->kind = V_STR;
        return 0;
    }
    if (!strncmp(ps->p, "True", 4) && !isalnum((unsigned char)ps->p[4])) {
        ps->p += 4;
        v->kind = V_BOOL;
        v->v[0] = 1;
        return 0;
    }
    if (!strncmp(ps->p, "False", 5) && !isalnum((unsigned char)ps->p[5])) {
        ps->p += 5;
        v->kind = V_BOOL;
        v->v[0] = 0;
        return 0;
    }
    v->kind = V_INT;
    v->n = 1;
    return parse_int(ps, &v->v[0]);
}

static const char *const names[] = {"in_channels", "out_channels", "kernel_size", "stride",
                                     "padding", "dilation", "groups", "bias", "padding_mode"};
enum { A_IN, A_OUT, A_KERNEL, A_STRIDE, A_PADDING, A_DILATION, A_GROUPS, A_BIAS, A_MODE, N_ARGS };

/* The argument of nn.Conv2d a misspelt keyword most likely means: one it begins or is
 * the beginning of ('kernel' -> kernel_size), or one a typo or two away ('strides'). */
static const char *nearest_arg(const char *k, size_t klen)
{
    for (int i = 0; i < N_ARGS; i++) /* the beginning of one: 'kernel', 'padding_mod' */
        if (klen >= 3 && klen < strlen(names[i]) && !strncmp(names[i], k, klen))
            return names[i];
    const char *best = NULL;
    int best_d = klen > 5 ? 2 : 1;
    for (int i = 0; i < N_ARGS; i++) {
        size_t n = strlen(names[i]);
        int d[32][32];
        if (klen >= 31)
            return NULL;
        if (n < klen && !strncmp(names[i], k, n)) { /* begins with one: 'strides' */
            d[klen][n] = 1;
        } else {
            for (size_t a = 0; a <= klen; a++) /* edit distance, a swap counting one */
                d[a][0] = (int)a;
            for (size_t b = 0; b <= n; b++)
                d[0][b] = (int)b;
            for (size_t a = 1; a <= klen; a++)
                for (size_t b = 1; b <= n; b++) {
                    int c = d[a - 1][b - 1] + (k[a - 1] != names[i][b - 1]);
                    if (d[a - 1][b] + 1 < c)
                        c = d[a - 1][b] + 1;
                    if (d[a][b - 1] + 1 < c)
                        c = d[a][b - 1] + 1;
                    if (a > 1 && b > 1 && k[a - 1] == names[i][b - 2] && k[a - 2] == names[i][b - 1] &&
                        d[a - 2][b - 2] + 1 < c) /* two letters swapped: one typo */
                        c = d[a - 2][b - 2] + 1;
                    d[a][b] = c;
                }
        }
        if (d[klen][n] <= best_d && (!best || d[klen][n] < best_d))
            best = names[i], best_d = d[klen][n];
    }
    return best;
}

/* Expand an int or an nd-tuple into out[nd]. */
static int tuple_of(const struct value *v, const char *name, int nd, int64_t *out, struct rm_error *err,
                    const char *text)
{
    if (v->kind == V_INT) {
        for (int i = 0; i < nd; i++)
            out[i] = v->v[0];
        return 0;
    }
    if (v->kind == V_TUPLE && v->n == nd) {
        for (int i = 0; i < nd; i++)
            out[i] = v->v[i];
        return 0;
    }
    static const char *const what[] = {"", "a 1-tuple", "a pair of ints", "a tuple of 3 ints"};
    return rm_error_set(err, RM_EUSAGE, "SPEC '%s': %s must be an int or %s (Conv%dd)", text, name, what[nd], nd);
}

int rm_conv_spec_parse(const char *text, struct rm_conv_spec *spec, struct rm_error *err)
{
    struct parser ps = {text, text, err};
    struct value vals[N_ARGS];
    bool set[N_ARGS] = {false};
    int rc;

    ws(&ps);
    if (!strncmp(ps.p, "torch.nn.", 9))
        ps.p += 9;
    else if (!strncmp(ps.p, "nn.", 3))
        ps.p += 3;
    const char *id = ps.p;
    while (isalnum((unsigned char)*ps.p) || *ps.p == '_')
        ps.p++;
    size_t idlen = (size_t)(ps.p - id);
    if (idlen != 6 || strncmp(id, "Conv", 4) != 0 || id[4] < '1' || id[4] > '3' || id[5] != 'd')
        return rm_error_set(err, RM_EUSAGE, "SPEC '%s': only Conv1d(...), Conv2d(...) and Conv3d(...) specs are "
                            "supported", text);
    int nd = id[4] - '0';
    ws(&ps);
    if (*ps.p++ != '(')
        return fail(&ps, "expected '(' after the module's name");
    int pos = 0, seen_kw = 0;
    for (;;) {
        ws(&ps);
        if (*ps.p == ')') {
            ps.p++;
            break;
        }
        /* keyword? */
        const char *k = ps.p;
        while (isalnum((unsigned char)*ps.p) || *ps.p == '_')
            ps.p++;
        size_t klen = (size_t)(ps.p - k);
        ws(&ps);
        int slot;
        if (klen && isalpha((unsigned char)k[0]) && *ps.p == '=') {
            ps.p++;
            slot = -1;
            for (int i = 0; i < N_ARGS; i++)
                if (strlen(names[i]) == klen && !strncmp(names[i], k, klen))
                    slot = i;
            if (slot < 0) {
                if ((klen == 6 && !strncmp(k, "device", 6)) || (klen == 5 && !strncmp(k, "dtype", 5)))
                    return rm_error_set(err, RM_EUSAGE, "SPEC '%s': %.*s is not meaningful in an ONNX file",
                                        text, (int)klen, k);
                const char *near = nearest_arg(k, klen);
                return rm_error_set(err, RM_EUSAGE, "SPEC '%s': Conv%dd has no argument '%.*s'%s%s%s", text, nd,
                                    (int)klen, k, near ? " (did you mean " : "", near ? near : "", near ? "?)" : "");
            }
            seen_kw = 1;
        } else {
            ps.p = k; /* not a keyword: re-read it as a value */
            if (seen_kw)
                return fail(&ps, "positional argument after a keyword argument");
            if (pos >= N_ARGS)
                return fail(&ps, "too many positional arguments");
            slot = pos++;
        }
        if (set[slot])
            return rm_error_set(err, RM_EUSAGE, "SPEC '%s': %s given twice", text, names[slot]);
        rc = parse_value(&ps, &vals[slot], names[slot]);
        if (rc)
            return rc;
        set[slot] = true;
        ws(&ps);
        if (*ps.p == ',')
            ps.p++;
        else if (*ps.p != ')')
            return fail(&ps, "expected ',' or ')'");
    }
    ws(&ps);
    if (*ps.p)
        return fail(&ps, "unexpected text after ')'");

    for (int i = A_IN; i <= A_KERNEL; i++)
        if (!set[i])
            return rm_error_set(err, RM_EUSAGE, "SPEC '%s': missing %s (Conv%dd needs in_channels, "
                                "out_channels and kernel_size)", text, names[i], nd);
    memset(spec, 0, sizeof *spec);
    spec->nd = nd;
    if (vals[A_IN].kind != V_INT || vals[A_OUT].kind != V_INT)
        return rm_error_set(err, RM_EUSAGE, "SPEC '%s': in_channels and out_channels must be ints", text);
    spec->in_channels = vals[A_IN].v[0];
    spec->out_channels = vals[A_OUT].v[0];
    if ((rc = tuple_of(&vals[A_KERNEL], "kernel_size", nd, spec->kernel, err, text)))
        return rc;
    for (int i = 0; i < nd; i++)
        spec->stride[i] = spec->dilation[i] = 1;
    spec->groups = 1;
    spec->bias = true;
    if (set[A_STRIDE] && (rc = tuple_of(&vals[A_STRIDE], "stride", nd, spec->stride, err, text)))
        return rc;
    if (set[A_DILATION] && (rc = tuple_of(&vals[A_DILATION], "dilation", nd, spec->dilation, err, text)))
        return rc;
    if (set[A_GROUPS]) {
        if (vals[A_GROUPS].kind != V_INT)
            return rm_error_set(err, RM_EUSAGE, "SPEC '%s': groups must be an int", text);
        spec->groups = vals[A_GROUPS].v[0];
    }
    if (set[A_BIAS]) {
        if (vals[A_BIAS].kind != V_BOOL)
            return rm_error_set(err, RM_EUSAGE, "SPEC '%s': bias must be True or False", text);
        spec->bias = vals[A_BIAS].v[0] != 0;
    }
    if (set[A_MODE] && (vals[A_MODE].kind != V_STR || strcmp(vals[A_MODE].s, "zeros") != 0))
        return rm_error_set(err, RM_EUSAGE,
                            "SPEC '%s': only padding_mode='zeros' can be expressed by an ONNX Conv", text);
    if (spec->in_channels <= 0 || spec->out_channels <= 0 || spec->groups <= 0)
        return rm_error_set(err, RM_EUSAGE, "SPEC '%s': channels and groups must be positive", text);
    for (int i = 0; i < nd; i++)
        if (spec->kernel[i] <= 0 || spec->stride[i] <= 0 || spec->dilation[i] <= 0)
            return rm_error_set(err, RM_EUSAGE, "SPEC '%s': kernel_size, stride and dilation must be positive",
                                text);
    if (spec->in_channels % spec->groups || spec->out_channels % spec->groups)
        return rm_error_set(err, RM_EUSAGE,
                            "SPEC '%s': in_channels and out_channels must be divisible by groups (%lld)",
                            text, (long long)spec->groups);
    bool large = spec->in_channels > (1 << 20) || spec->out_channels > (1 << 20);
    for (int i = 0; i < nd; i++)
        large |= spec->kernel[i] > 1024 || spec->stride[i] > 1024 || spec->dilation[i] > 1024;
    if (large)
        return rm_error_set(err, RM_EUSAGE, "SPEC '%s': sizes are implausibly large", text);
    if (set[A_PADDING]) {
        const struct value *v = &vals[A_PADDING];
        if (v->kind == V_STR) {
            if (!strcmp(v->s, "same")) {
                for (int i = 0; i < nd; i++)
                    if (spec->stride[i] != 1)
                        return rm_error_set(err, RM_EUSAGE,
                                            "SPEC '%s': padding='same' is not supported for strided convolutions",
                                            text);
                spec->pad_same = true;
                for (int i = 0; i < nd; i++) {
                    int64_t total = spec->dilation[i] * (spec->kernel[i] - 1);
                    spec->pads[i] = total / 2;
                    spec->pads[i + nd] = total - total / 2;
                }
            } else if (strcmp(v->s, "valid") != 0) {
                return rm_error_set(err, RM_EUSAGE, "SPEC '%s': padding must be an int, a pair, 'same' or 'valid'",
                                    text);
            }
        } else {
            int64_t pp[RM_SPEC_MAX_ND] = {0};
            if ((rc = tuple_of(v, "padding", nd, pp, err, text)))
                return rc;
            for (int i = 0; i < nd; i++) {
                if (pp[i] < 0 || pp[i] > 4096)
                    return rm_error_set(err, RM_EUSAGE, "SPEC '%s': padding must be between 0 and 4096", text);
                spec->pads[i] = spec->pads[i + nd] = pp[i];
            }
        }
    }
    return 0;
}

/* "(3, 3)", "(3,)": a tuple as Python prints it. */
static void tuple_repr(char *buf, size_t n, const int64_t *v, int nd)
{
    int k = snprintf(buf, n, "(");
    for (int i = 0; i < nd && k >= 0 && (size_t)k < n; i++)
        k += snprintf(buf + k, n - (size_t)k, "%s%lld", i ? ", " : "", (long long)v[i]);
    if (k >= 0 && (size_t)k < n)
        snprintf(buf + k, n - (size_t)k, nd == 1 ? ",)" : ")");
}

int rm_conv_spec_repr(const struct rm_conv_spec *s, char *buf, size_t n)
{
    int nd = s->nd >= 1 && s->nd <= RM_SPEC_MAX_ND ? s->nd : 2;
    bool padded = false, dilated = false;
    for (int i = 0; i < nd; i++) {
        padded |= s->pads[i] != 0;
        dilated |= s->dilation[i] != 1;
    }
    char kernel[80], stride[80], pad[96] = "", dil[96] = "", grp[32] = "", t[80];
    tuple_repr(kernel, sizeof kernel, s->kernel, nd);
    tuple_repr(stride, sizeof stride, s->stride, nd);
    if (s->pad_same) {
        snprintf(pad, sizeof pad, ", padding=same");
    } else if (padded) {
        tuple_repr(t, sizeof t, s->pads, nd);
        snprintf(pad, sizeof pad, ", padding=%s", t);
    }
    if (dilated) {
        tuple_repr(t, sizeof t, s->dilation, nd);
        snprintf(dil, sizeof dil, ", dilation=%s", t);
    }
    if (s->groups != 1)
        snprintf(grp, sizeof grp, ", groups=%lld", (long long)s->groups);
    return snprintf(buf, n, "Conv%dd(%lld, %lld, kernel_size=%s, stride=%s%s%s%s%s)", nd, (long long)s->in_channels,
                    (long long)s->out_channels, kernel, stride, pad, dil, grp, s->bias ? "" : ", bias=False");
}
