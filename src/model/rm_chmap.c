/* Channel maps (see rm_chmap.h): what edits record of the channels they moved, and what
 * diff reads to align a pruned model's tensors with the original's. */
#include "rm_chmap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *rm_channel_map_find(struct rm_model *m, const char *tensor)
{
    if (!m || !m->proto || !tensor)
        return NULL;
    char key[RM_CHANNEL_MAP_KEY_MAX];
    if (snprintf(key, sizeof key, "%s%s", RM_CHANNEL_MAP_KEY, tensor) >= (int)sizeof key)
        return NULL; /* no edit records a map under a key this long */
    return rm_model_metadata(m, key);
}

int rm_channel_map_parse(const char *text, int64_t **map, int64_t *len, struct rm_error *err)
{
    *map = NULL;
    *len = 0;
    size_t n = 1;
    for (const char *p = text; *p; p++)
        n += *p == ',';
    int64_t *m = malloc(n * sizeof *m);
    if (!m)
        return rm_error_set(err, RM_ENOMEM, "out of memory for a channel map of %zu entries", n);
    const char *p = text;
    for (size_t i = 0; i < n; i++) {
        while (*p == ' ')
            p++;
        const char *start = p;
        if (*p == '-') {
            m[i] = -1;
            p++;
        } else {
            char *end;
            errno = 0;
            long long v = (*p >= '0' && *p <= '9') ? strtoll(p, &end, 10) : -1;
            if (v < 0 || errno || end == p) {
                free(m);
                return rm_error_set(err, RM_EFORMAT, "channel map entry %zu '%.*s' is not a channel "
                                    "index or '-'", i, (int)strcspn(start, ","), start);
            }
            m[i] = v;
            p = end;
        }
        while (*p == ' ')
            p++;
        if (*p != (i + 1 < n ? ',' : '\0')) {
            free(m);
            return rm_error_set(err, RM_EFORMAT, "channel map entry %zu '%.*s' is not a channel "
                                "index or '-'", i, (int)strcspn(start, ","), start);
        }
        if (*p)
            p++;
    }
    *map = m;
    *len = (int64_t)n;
    return 0;
}


int rm_channel_map_record(struct rm_model *m, const char *tensor, const int64_t *map, int64_t n,
                          struct rm_error *err)
{
    char key[RM_CHANNEL_MAP_KEY_MAX];
    if (snprintf(key, sizeof key, "%s%s", RM_CHANNEL_MAP_KEY, tensor) >= (int)sizeof key)
        return rm_error_set(err, RM_EEDIT, "tensor name too long for a channel map: '%.60s...'", tensor);
    const char *prev = rm_model_metadata(m, key);
    size_t cap = (size_t)n * 21 + 1;
    char *s = malloc(cap), *p = s;
    if (!s)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    /* an earlier edit's map of the same tensor: compose, so the map keeps pointing at
     * the original model's channels */
    int64_t *earlier = NULL, n_earlier = 0;
    if (prev && rm_channel_map_parse(prev, &earlier, &n_earlier, err)) {
        free(s);
        return rm_error_prefix(err, "metadata %s", key);
    }
    *p = '\0';
    for (int64_t i = 0; i < n; i++) {
        int64_t src = map[i];
        if (src >= 0 && earlier)
            src = src < n_earlier ? earlier[src] : -1;
        if (src >= 0)
            p += snprintf(p, cap - (size_t)(p - s), "%s%lld", i ? "," : "", (long long)src);
        else
            p += snprintf(p, cap - (size_t)(p - s), "%s-", i ? "," : "");
    }
    free(earlier);
    int rc = rm_model_set_metadata(m, key, s, err);
    free(s);
    return rc;
}
