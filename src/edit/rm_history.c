/* The edit history a model carries: one line per edit in its metadata under
 * "remodel.history" (when, which remodel, what: the edit and its arguments), so that a
 * diff report and any later reader can say what was done to a model. */
#include "rm_edit_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* "2026-11-30T01:23:45Z": now, or SOURCE_DATE_EPOCH when set (reproducible outputs). */
static void timestamp(char *buf, size_t n)
{
    time_t t = time(NULL);
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (sde && *sde) {
        char *end;
        long long v = strtoll(sde, &end, 10);
        if (!*end && v >= 0)
            t = (time_t)v;
    }
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, n, "?");
}

int rm_edit_record(struct rm_model *m, struct rm_error *err, const char *fmt, ...)
{
    char what[1024], when[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    for (char *c = what; *c; c++) /* one line per edit, whatever the names hold */
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    timestamp(when, sizeof when);
    const char *old = rm_model_metadata(m, RM_HISTORY_KEY);
    size_t n = (old ? strlen(old) + 1 : 0) + strlen(when) + strlen(rm_version()) + strlen(what) + 32;
    char *line = malloc(n);
    if (!line)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    snprintf(line, n, "%s%s%s remodel %s: %s", old ? old : "", old ? "\n" : "", when, rm_version(), what);
    int rc = rm_model_set_metadata(m, RM_HISTORY_KEY, line, err);
    free(line);
    return rc;
}
