#include "rm_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void rm_error_clear(struct rm_error *err)
{
    if (!err)
        return;
    err->code = RM_OK;
    err->fix = RM_FIX_NONE;
    err->msg[0] = '\0';
}

/* Messages quote names taken from the file, which may hold newlines or escape codes:
 * '?' for every control character keeps a message on one line and the terminal sane
 * (fuzzing produced an input name with three newlines in it). */
static void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

int rm_error_set(struct rm_error *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    one_line(err->msg);
    err->code = code;
    err->fix = RM_FIX_NONE;
    return code;
}

int rm_error_prefix(struct rm_error *err, const char *fmt, ...)
{
    if (!err)
        return RM_EFORMAT;
    char prefix[RM_ERROR_MSG_MAX];
    char old[RM_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof err->msg - 3)
        n = sizeof err->msg - 3;
    memcpy(err->msg, prefix, n);
    memcpy(err->msg + n, ": ", 2);
    size_t room = sizeof err->msg - n - 3;
    size_t k = strlen(old);
    if (k > room)
        k = room;
    memcpy(err->msg + n + 2, old, k);
    err->msg[n + 2 + k] = '\0';
    one_line(err->msg);
    return err->code;
}

int rm_error_fix(struct rm_error *err, int fix)
{
    if (!err)
        return RM_EFORMAT;
    err->fix = fix;
    return err->code;
}

const char *rm_strerror(int code)
{
    switch (code) {
    case RM_OK:
        return "ok";
#define RM_STRERROR_(name, value, text, about) case RM_##name: return text;
        RM_ERRNO_MAP(RM_STRERROR_)
#undef RM_STRERROR_
    default:
        return "error";
    }
}

const char *rm_err_name(int code)
{
    switch (code) {
    case RM_OK:
        return "RM_OK";
#define RM_ERRNAME_(name, value, text, about) case RM_##name: return "RM_" #name;
        RM_ERRNO_MAP(RM_ERRNAME_)
#undef RM_ERRNAME_
    default:
        return "RM_E?";
    }
}
