/* Lists of findings (see rm_findings.h). */
#include "rm_findings.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rm_findings_add(rm_findings *f, int kind, int node, const char *fmt, ...)
{
    if (!f)
        return;
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 16;
        rm_finding *v = realloc(f->v, cap * sizeof *v);
        if (!v) {
            f->oom = 1;
            return;
        }
        f->v = v;
        f->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *text = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (!text) {
        f->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(text, (size_t)len + 1, fmt, ap);
    va_end(ap);
    f->v[f->n++] = (rm_finding){kind, node, text};
}

size_t rm_findings_count(const rm_findings *f, int kind)
{
    size_t c = 0;
    for (size_t i = 0; f && i < f->n; i++)
        c += f->v[i].kind == kind;
    return c;
}

void rm_findings_join(const rm_findings *f, int kind, char *buf, size_t n)
{
    size_t off = 0, shown = 0, total = rm_findings_count(f, kind);
    buf[0] = '\0';
    for (size_t i = 0; f && i < f->n; i++) {
        if (f->v[i].kind != kind)
            continue;
        size_t len = strlen(f->v[i].text) + (shown ? 2 : 0);
        /* keep room for the "(and K more)" that follows when this is not the last */
        if (off + len + (shown + 1 < total ? 24 : 0) >= n)
            break;
        off += (size_t)snprintf(buf + off, n - off, "%s%s", shown ? "; " : "", f->v[i].text);
        shown++;
    }
    if (shown < total)
        snprintf(buf + off, n - off, "%s(and %zu more)", shown ? "; " : "", total - shown);
}

void rm_findings_free(rm_findings *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        free(f->v[i].text);
    free(f->v);
    memset(f, 0, sizeof *f);
}
