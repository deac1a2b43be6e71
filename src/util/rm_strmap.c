/* String -> int map (see rm_strmap.h). */
#include "rm_strmap.h"

#include <stdlib.h>
#include <string.h>

uint64_t rm_strhash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int rehash(struct rm_strmap *m, size_t cap)
{
    const char **keys = calloc(cap, sizeof *keys);
    int *vals = malloc(cap * sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t j = rm_strhash(m->keys[i]) & (cap - 1);
        while (keys[j])
            j = (j + 1) & (cap - 1);
        keys[j] = m->keys[i];
        vals[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return 0;
}

int rm_strmap_reserve(struct rm_strmap *m, size_t n)
{
    if (n > SIZE_MAX / 4)
        return -1;
    size_t cap = m->cap ? m->cap : 64;
    while (cap < 2 * n)
        cap *= 2;
    return cap > m->cap ? rehash(m, cap) : 0;
}

int rm_strmap_get(const struct rm_strmap *m, const char *key)
{
    if (!m->cap)
        return -1;
    for (size_t i = rm_strhash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i])
            return -1;
        if (!strcmp(m->keys[i], key))
            return m->vals[i];
    }
}

int rm_strmap_put(struct rm_strmap *m, const char *key, int val, int *found)
{
    if ((m->n + 1) * 2 > m->cap && rm_strmap_reserve(m, m->n + 1))
        return -1;
    size_t i = rm_strhash(key) & (m->cap - 1);
    for (; m->keys[i]; i = (i + 1) & (m->cap - 1))
        if (!strcmp(m->keys[i], key)) {
            if (found)
                *found = m->vals[i];
            return 0;
        }
    m->keys[i] = key;
    m->vals[i] = val;
    m->n++;
    if (found)
        *found = val;
    return 0;
}

void rm_strmap_free(struct rm_strmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}
