/* Error reporting for the remodel library.
 * Library functions that can fail return 0 or a negative RM_E* code and leave one
 * human-readable line (what, where, why) in a caller-owned struct rm_error.
 * Only main() prints it; library code never prints and never exits. */
#ifndef RM_ERROR_H
#define RM_ERROR_H

#include "remodel.h"

#include <stddef.h>

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

/* Record what would help with the error in err (enum rm_fix) and return err's code. */
int rm_error_fix(struct rm_error *err, int fix);

#endif
