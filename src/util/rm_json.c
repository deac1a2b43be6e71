#include "remodel.h"

#include <math.h>

void rm_json_init(struct rm_json *j, FILE *f)
{
    j->f = f;
    j->depth = 0;
    j->first[0] = true;
    j->after_key = false;
}

static void sep(struct rm_json *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (!j->first[j->depth])
        fputc(',', j->f);
    j->first[j->depth] = false;
}

static void open_(struct rm_json *j, char c)
{
    sep(j);
    fputc(c, j->f);
    if (j->depth + 1 < RM_JSON_MAX_DEPTH)
        j->depth++;
    j->first[j->depth] = true;
}

static void close_(struct rm_json *j, char c)
{
    fputc(c, j->f);
    if (j->depth > 0)
        j->depth--;
}

void rm_json_obj_begin(struct rm_json *j) { open_(j, '{'); }
void rm_json_obj_end(struct rm_json *j) { close_(j, '}'); }
void rm_json_arr_begin(struct rm_json *j) { open_(j, '['); }
void rm_json_arr_end(struct rm_json *j) { close_(j, ']'); }

/* Length of the well-formed UTF-8 sequence at p (2..4 bytes, lead byte >= 0x80), or 0
 * when it is ill-formed; then *bad is the length of its maximal subpart (the bytes that
 * start a sequence and continue it correctly, at least 1), which becomes one U+FFFD, as
 * Unicode (chapter 3, "U+FFFD Substitution of Maximal Subparts") and Python's
 * bytes.decode(errors="replace") do. Overlongs, surrogates and code points past U+10FFFF
 * are ill-formed. Stops at the terminating NUL, which is never a continuation byte. */
static int utf8_sequence(const unsigned char *p, int *bad)
{
    unsigned c = p[0], lo = 0x80, hi = 0xbf;
    int n;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else {
        *bad = 1;
        return 0;
    }
    for (int i = 1; i < n; i++) {
        if (p[i] < lo || p[i] > hi) {
            *bad = i;
            return 0;
        }
        lo = 0x80, hi = 0xbf;
    }
    return n;
}

/* A JSON string: valid UTF-8 whatever bytes s holds (names come from the model file).
 * Ill-formed sequences become U+FFFD, control characters \u00XX escapes. */
static void write_str(FILE *f, const char *s)
{
    fputc('"', f);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p >= 0x80) {
            int bad = 0, n = utf8_sequence(p, &bad);
            if (n) {
                fwrite(p, 1, (size_t)n, f);
                p += n;
            } else {
                fputs("\xef\xbf\xbd", f); /* U+FFFD REPLACEMENT CHARACTER */
                p += bad;
            }
            continue;
        }
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
        p++;
    }
    fputc('"', f);
}

void rm_json_key(struct rm_json *j, const char *key)
{
    sep(j);
    write_str(j->f, key);
    fputc(':', j->f);
    j->after_key = true;
}

void rm_json_str(struct rm_json *j, const char *s)
{
    sep(j);
    if (s)
        write_str(j->f, s);
    else
        fputs("null", j->f);
}

void rm_json_int(struct rm_json *j, int64_t v)
{
    sep(j);
    fprintf(j->f, "%lld", (long long)v);
}

void rm_json_num(struct rm_json *j, double v)
{
    sep(j);
    if (isfinite(v))
        fprintf(j->f, "%.9g", v);
    else
        fputs("null", j->f);
}

void rm_json_bool(struct rm_json *j, bool v)
{
    sep(j);
    fputs(v ? "true" : "false", j->f);
}

void rm_json_null(struct rm_json *j)
{
    sep(j);
    fputs("null", j->f);
}

void rm_json_end(struct rm_json *j)
{
    fputc('\n', j->f);
}
