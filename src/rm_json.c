#include "rm_json.h"

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

static void write_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
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
