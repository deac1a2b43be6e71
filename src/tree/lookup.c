/* Finding modules: by path (dotted or `a[0].b`), the nearest paths to a wrong one, and
 * a module's nodes. */
#include "rm_tree.h"
#include "rm_tree_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- lookup --------------------------------------------------------------------- */

/* "layer4[0].conv1" -> "layer4.0.conv1" (malloc'd), NULL on OOM. */
static char *normalize_path(const char *path)
{
    size_t n = strlen(path);
    char *s = malloc(n + 1), *o = s;
    if (!s)
        return NULL;
    for (const char *p = path; *p; p++) {
        if (*p == '[') {
            if (o != s)
                *o++ = '.';
        } else if (*p != ']') {
            *o++ = *p;
        }
    }
    *o = '\0';
    return s;
}

const struct rm_module *rm_tree_find(const struct rm_tree *t, const char *path)
{
    char *p = normalize_path(path);
    const struct rm_module *found = NULL;
    if (!p)
        return NULL;
    for (size_t i = 0; i < t->n_modules && !found; i++)
        if (!strcmp(t->modules[i]->path, p))
            found = t->modules[i];
    free(p);
    return found;
}

#define DIST_MAX_LEN 256

static size_t edit_distance(const char *a, const char *b)
{
    size_t na = strnlen(a, DIST_MAX_LEN), nb = strnlen(b, DIST_MAX_LEN);
    size_t row[DIST_MAX_LEN + 1];
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

static size_t common_prefix(const char *a, const char *b)
{
    size_t n = 0;
    while (a[n] && a[n] == b[n])
        n++;
    return n;
}

size_t rm_tree_nearest(const struct rm_tree *t, const char *path, const struct rm_module **out,
                       size_t max)
{
    char *p = normalize_path(path);
    size_t n = 0;
    size_t dist[8], pre[8];
    if (!p)
        return 0;
    if (max > 8)
        max = 8;
    for (size_t i = 1; i < t->n_modules && max; i++) {
        const struct rm_module *m = t->modules[i];
        size_t d = edit_distance(p, m->path), c = common_prefix(p, m->path);
        size_t at = n;
        while (at > 0 && (d < dist[at - 1] || (d == dist[at - 1] && c > pre[at - 1])))
            at--;
        if (at >= max)
            continue;
        size_t last = n < max ? n : max - 1;
        for (size_t j = last; j > at; j--) {
            out[j] = out[j - 1];
            dist[j] = dist[j - 1];
            pre[j] = pre[j - 1];
        }
        out[at] = m;
        dist[at] = d;
        pre[at] = c;
        if (n < max)
            n++;
    }
    free(p);
    return n;
}

int rm_tree_lookup(const struct rm_tree *t, const char *path, const struct rm_module **out,
                   struct rm_error *err)
{
    *out = rm_tree_find(t, path);
    if (*out)
        return 0;
    const struct rm_module *near[3];
    size_t n = rm_tree_nearest(t, path, near, 3);
    char list[512];
    size_t off = 0;
    list[0] = '\0';
    for (size_t i = 0; i < n && off < sizeof list; i++)
        off += (size_t)snprintf(list + off, sizeof list - off, "%s%.100s", i ? ", " : "",
                                near[i]->path);
    if (n)
        return rm_error_set(err, RM_ENOTFOUND, "no module '%.200s' (nearest: %s)", path, list);
    return rm_error_set(err, RM_ENOTFOUND, "no module '%.200s' (the model has no modules)", path);
}

bool rm_module_is_leaf(const struct rm_module *m)
{
    return m->n_children == 0 && m->n_nodes > 0;
}

const struct rm_param *rm_module_role_param(const struct rm_module *m, const char *role)
{
    for (size_t i = 0; i < m->n_params; i++)
        if (!strcmp(m->params[i].role, role))
            return &m->params[i];
    return NULL;
}

static bool within(const struct rm_module *m, const struct rm_module *anc)
{
    for (; m; m = m->parent)
        if (m == anc)
            return true;
    return false;
}

int rm_module_nodes(const struct rm_tree *t, const struct rm_module *m, int **nodes, size_t *n,
                    struct rm_error *err)
{
    size_t nn = t->g->n_nodes, k = 0;
    *nodes = malloc((nn ? nn : 1) * sizeof **nodes);
    *n = 0;
    if (!*nodes)
        return rm_error_set(err, RM_ENOMEM, "out of memory listing the nodes of '%s'", m->path);
    for (size_t i = 0; i < nn; i++) {
        int mi = t->node_module[i];
        if (mi >= 0 && within(t->modules[mi], m))
            (*nodes)[k++] = (int)i;
    }
    *n = k;
    return 0;
}

