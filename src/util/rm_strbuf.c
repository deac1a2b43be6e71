/* Growable strings (see rm_strbuf.h). */
#include "rm_strbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reserve(struct rm_strbuf *b, size_t extra)
{
    if (b->oom)
        return;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->oom = true;
        return;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->oom = true;
        return;
    }
    b->s = s;
    b->cap = cap;
}

void rm_sb_putn(struct rm_strbuf *b, const char *s, size_t n)
{
    reserve(b, n);
    if (b->oom)
        return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void rm_sb_puts(struct rm_strbuf *b, const char *s)
{
    rm_sb_putn(b, s, strlen(s));
}

void rm_sb_printf(struct rm_strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    reserve(b, (size_t)n);
    if (b->oom)
        return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void rm_sb_clear(struct rm_strbuf *b)
{
    b->len = 0;
    if (b->s)
        b->s[0] = '\0';
}

void rm_sb_free(struct rm_strbuf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}
