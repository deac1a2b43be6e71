/* Error reporting for the remodel library.
 * Library functions that can fail return 0 or a negative RM_E* code and leave one
 * human-readable line (what, where, why) in a caller-owned struct rm_error.
 * Only main() prints it; library code never prints and never exits. */
#ifndef RM_ERROR_H
#define RM_ERROR_H

#include <stddef.h>

enum {
    RM_OK = 0,
    RM_EIO = -1,          /* file cannot be opened, read or written */
    RM_EFORMAT = -2,      /* malformed or inconsistent model or tensor file */
    RM_EUSAGE = -3,       /* bad command line or argument */
    RM_ENOMEM = -4,       /* allocation failed or the file would need absurd memory */
    RM_EUNSUPPORTED = -5, /* valid ONNX that remodel does not handle (op, dtype, layout) */
    RM_ENOTFOUND = -6,    /* unknown module path, tensor or node name */
    RM_EEDIT = -7,        /* an edit is incompatible with the model */
};

#define RM_ERROR_MSG_MAX 1024

struct rm_error {
    int code;                     /* last RM_E* code, RM_OK when none */
    char msg[RM_ERROR_MSG_MAX];   /* one line, no trailing newline */
};

/* Reset err to "no error". err may be NULL. */
void rm_error_clear(struct rm_error *err);

/* Format a message into err (may be NULL) and return code, so callers can write
 * `return rm_error_set(err, RM_EFORMAT, "...", ...);`. */
int rm_error_set(struct rm_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prefix the message already in err with "prefix: " (for adding file names on the
 * way up). Returns err->code. */
int rm_error_prefix(struct rm_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Short name of an RM_E* code ("malformed input", ...). Never NULL. */
const char *rm_error_name(int code);

#endif
