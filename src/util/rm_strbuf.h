/* A growable NUL-terminated string (malloc'd). Running out of memory sets `oom` and
 * makes every later call a no-op, so builders check once at the end. */
#ifndef RM_STRBUF_H
#define RM_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct rm_strbuf {
    char *s;          /* NULL until something is written */
    size_t len, cap;
    bool oom;
};

void rm_sb_putn(struct rm_strbuf *b, const char *s, size_t n);
void rm_sb_puts(struct rm_strbuf *b, const char *s);
/* printf into the buffer (no length limit). */
void rm_sb_printf(struct rm_strbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Empty the string, keeping its memory. */
void rm_sb_clear(struct rm_strbuf *b);
/* Free the memory and zero b. */
void rm_sb_free(struct rm_strbuf *b);

#endif
