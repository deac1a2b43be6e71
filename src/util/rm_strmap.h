/* A string -> int map: open addressing, keys borrowed (they must outlive the map),
 * growing by doubling. The one hash map of the library: tensor names in the graph
 * index, module paths in the tree, op names in the op table. */
#ifndef RM_STRMAP_H
#define RM_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct rm_strmap {
    const char **keys;
    int *vals;
    size_t cap, n; /* cap is 0 or a power of two */
};

/* FNV-1a of s. */
uint64_t rm_strhash(const char *s);

/* Room for n keys without growing. Returns 0 or -1 when out of memory. */
int rm_strmap_reserve(struct rm_strmap *m, size_t n);

/* Value of key, or -1. */
int rm_strmap_get(const struct rm_strmap *m, const char *key);

/* Insert key -> val unless key is there. *found (may be NULL) receives the value
 * already stored, or val when inserted. Returns 0 or -1 when out of memory. */
int rm_strmap_put(struct rm_strmap *m, const char *key, int val, int *found);

void rm_strmap_free(struct rm_strmap *m);

#endif
