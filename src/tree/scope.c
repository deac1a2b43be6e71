/* Module tree: scope names -> module paths -> PyTorch kinds, arguments and repr.
 *
 * torch.onnx.export (1.13) names a node after the chain of module calls it sits in, one
 * slash-separated component per call: "/features/features.1/conv/conv.0/conv.0.0/Conv".
 * A component is the module's path from its last non-numeric part on ("conv.0.0" for
 * module features.1.conv.0.0), so a component either names a direct attribute child
 * ("conv") or repeats the tail of its parent's path plus one more index ("conv.0" under
 * "...conv"). A module called a second time gets "_1" on its component ("relu_1"). */
#include "rm_tree.h"
#include "rm_tree_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ---- builder -------------------------------------------------------------------- */

struct builder {
    struct rm_tree *t;
    const struct rm_graph *g;
    struct rm_module **mods; /* creation order */
    size_t n_mods, cap_mods;
    struct rm_strmap paths;       /* path -> creation index */
    struct rm_strmap raw;         /* raw (unsuffix-stripped) scope paths seen, value unused */
    struct rm_strbuf cur, tmp;
};

static int path_depth(const char *p)
{
    if (!*p)
        return 0;
    int d = 1;
    for (; *p; p++)
        d += *p == '.';
    return d;
}

/* Module with this path, created (with its ancestors) if new. -1 on OOM. */
static int get_module(struct builder *b, const char *path)
{
    int idx = rm_strmap_get(&b->paths, path);
    if (idx >= 0)
        return idx;
    int parent = -1;
    const char *dot = strrchr(path, '.');
    if (*path) {
        if (dot) {
            size_t n = (size_t)(dot - path);
            char *pp = malloc(n + 1);
            if (!pp)
                return -1;
            memcpy(pp, path, n);
            pp[n] = '\0';
            parent = get_module(b, pp);
            free(pp);
        } else {
            parent = get_module(b, "");
        }
        if (parent < 0)
            return -1;
    }
    if (b->n_mods == b->cap_mods) {
        size_t cap = b->cap_mods ? b->cap_mods * 2 : 64;
        struct rm_module **m = realloc(b->mods, cap * sizeof *m);
        if (!m)
            return -1;
        b->mods = m;
        b->cap_mods = cap;
    }
    struct rm_module *m = rm_arena_calloc(&b->t->arena, 1, sizeof *m);
    char *p = rm_arena_strdup(&b->t->arena, path);
    if (!m || !p)
        return -1;
    m->path = p;
    m->name = dot ? p + (dot - path) + 1 : p;
    m->type = "Module";
    m->parent = parent >= 0 ? b->mods[parent] : NULL;
    /* from the parent, not the dots: a path such as '.' (a node named '/./Conv') has two
     * components and one ancestor, and common_ancestor walks the parents by depth */
    m->depth = m->parent ? m->parent->depth + 1 : 0;
    m->main_node = -1;
    idx = (int)b->n_mods;
    b->mods[b->n_mods++] = m;
    if (rm_strmap_put(&b->paths, p, idx, NULL))
        return -1;
    return idx;
}

/* Append scope component c (length n) to the path in cur, the way export names it. */
static void scope_step(struct rm_strbuf *cur, const char *c, size_t n)
{
    const char *last = NULL;
    for (size_t i = 0; i < n; i++)
        if (c[i] == '.')
            last = c + i;
    if (last) {
        /* "conv.0.0" under "...conv.0": the component repeats the parent's tail */
        size_t pn = (size_t)(last - c);
        bool tail = (cur->len == pn && (!pn || !memcmp(cur->s, c, pn))) || /* cur->s NULL when empty */
                    (cur->len > pn && cur->s[cur->len - pn - 1] == '.' &&
                     !memcmp(cur->s + cur->len - pn, c, pn));
        if (tail) {
            rm_sb_putn(cur, ".", 1);
            rm_sb_putn(cur, last + 1, n - pn - 1);
            return;
        }
    }
    if (cur->len)
        rm_sb_putn(cur, ".", 1);
    rm_sb_putn(cur, c, n);
}

/* Strip a call-count suffix ("relu_1" -> "relu") from cur's last component when the
 * un-suffixed module exists in the raw scope set. */
static void strip_suffix(struct builder *b)
{
    struct rm_strbuf *cur = &b->cur;
    if (cur->oom || !cur->len)
        return;
    size_t i = cur->len;
    while (i > 0 && isdigit((unsigned char)cur->s[i - 1]))
        i--;
    if (i == cur->len || i < 2 || cur->s[i - 1] != '_' || cur->s[i - 2] == '.')
        return;
    char save = cur->s[i - 1];
    cur->s[i - 1] = '\0';
    bool exists = rm_strmap_get(&b->raw, cur->s) >= 0;
    cur->s[i - 1] = save;
    if (exists) {
        cur->len = i - 1;
        cur->s[cur->len] = '\0';
    }
}

/* Path of a scoped node name into b->cur. strip: apply suffix stripping. Returns false
 * when the scope is too deep. raw_insert: record every prefix in b->raw. */
static int scope_path(struct builder *b, const char *name, bool strip, bool raw_insert, bool *ok)
{
    rm_sb_clear(&b->cur);
    *ok = true;
    const char *p = name + 1;
    for (;;) {
        const char *slash = strchr(p, '/');
        if (!slash)
            break; /* the last element is the op label */
        size_t n = (size_t)(slash - p);
        if (n) {
            scope_step(&b->cur, p, n);
            if (strip)
                strip_suffix(b);
            if (b->cur.oom)
                return -1;
            if (path_depth(b->cur.s) > RM_TREE_MAX_DEPTH) {
                *ok = false;
                return 0;
            }
            if (raw_insert && rm_strmap_get(&b->raw, b->cur.s) < 0) {
                char *k = rm_arena_strdup(&b->t->arena, b->cur.s);
                if (!k || rm_strmap_put(&b->raw, k, 0, NULL))
                    return -1;
            }
        }
        p = slash + 1;
    }
    if (!b->cur.s)
        rm_sb_puts(&b->cur, "");
    return b->cur.oom ? -1 : 0;
}

/* Module path from a parameter name like "layer1.0.conv1.weight"; false if none. */
bool rm_tree_param_path(const char *name, struct rm_strbuf *out)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name || strstr(name, "::") || strchr(name, '/') || strchr(name, ' '))
        return false;
    rm_sb_clear(out);
    rm_sb_putn(out, name, (size_t)(dot - name));
    return !out->oom && path_depth(out->s) <= RM_TREE_MAX_DEPTH;
}

/* Deepest common ancestor of modules a and b (creation indices). */
static int common_ancestor(struct builder *b, int a, int c)
{
    const struct rm_module *x = b->mods[a], *y = b->mods[c];
    while (x->depth > y->depth)
        x = x->parent;
    while (y->depth > x->depth)
        y = y->parent;
    while (x != y) {
        x = x->parent;
        y = y->parent;
    }
    return rm_strmap_get(&b->paths, x->path);
}

/* ---- build ---------------------------------------------------------------------- */

static void preorder(struct rm_tree *t, struct rm_module *m, size_t *k)
{
    t->modules[(*k)++] = m;
    for (size_t i = 0; i < m->n_children; i++)
        preorder(t, m->children[i], k);
}

static bool is_helper(const struct rm_graph *g, int node)
{
    return rm_op_def(g->nodes[node].op)->flags & RM_OPF_HELPER;
}

int rm_tree_build(struct rm_tree **out, const struct rm_graph *g, struct rm_error *err)
{
    int rc = RM_ENOMEM;
    struct builder b;
    memset(&b, 0, sizeof b);
    int *place = NULL, *remap = NULL;
    *out = NULL;
    struct rm_tree *t = calloc(1, sizeof *t);
    if (!t)
        goto done;
    rm_arena_init(&t->arena, 0);
    t->refs = 1;
    t->g = g;
    rm_graph_hold((struct rm_graph *)g);
    b.t = t;
    b.g = g;
    size_t nn = g->n_nodes;
    if (nn > (size_t)INT32_MAX) {
        rc = rm_error_set(err, RM_EFORMAT, "graph has %zu nodes, too many", nn);
        goto done;
    }
    place = malloc((nn ? nn : 1) * sizeof *place); /* creation index per node, -1 unplaced */
    if (!place || get_module(&b, "") != 0)
        goto done;
    for (size_t i = 0; i < nn; i++)
        place[i] = -1;

    /* 1: every scope path as written, to know which un-suffixed modules exist */
    for (size_t i = 0; i < nn; i++) {
        const char *name = g->nodes[i].proto->name;
        bool ok;
        if (name && name[0] == '/') {
            t->scoped = true;
            if (scope_path(&b, name, false, true, &ok))
                goto done;
        }
    }
    /* 2: scoped nodes, in graph order, so modules are created in call order */
    for (size_t i = 0; i < nn; i++) {
        const char *name = g->nodes[i].proto->name;
        bool ok;
        if (!name || name[0] != '/')
            continue;
        if (scope_path(&b, name, true, false, &ok))
            goto done;
        if (!ok)
            continue;
        place[i] = get_module(&b, b.cur.s);
        if (place[i] < 0)
            goto done;
    }
    /* 3: scope-less nodes that read a named parameter ("layer1.0.conv1.weight") */
    for (size_t i = 0; i < nn; i++) {
        const char *name = g->nodes[i].proto->name;
        if ((name && name[0] == '/') || is_helper(g, (int)i))
            continue;
        const Onnx__NodeProto *n = g->nodes[i].proto;
        for (size_t s = 0; s < n->n_input && place[i] < 0; s++) {
            int v = g->nodes[i].inputs[s];
            if (v < 0 || rm_tree_follow_init(g, v) < 0)
                continue;
            if (rm_tree_param_path(g->values[v].name, &b.tmp)) {
                place[i] = get_module(&b, b.tmp.s);
                if (place[i] < 0)
                    goto done;
            } else if (b.tmp.oom) {
                goto done;
            }
        }
    }
    /* 4: scope-less helpers belong to the module that consumes their output */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = nn; k-- > 0;) {
            const char *name = g->nodes[k].proto->name;
            if (place[k] >= 0 || (name && name[0] == '/') || !is_helper(g, (int)k))
                continue;
            int at = -1;
            bool all = true;
            size_t nout = g->nodes[k].proto->n_output;
            for (size_t o = 0; o < nout && all; o++) {
                int v = g->nodes[k].outputs[o];
                if (v < 0)
                    continue;
                if (g->values[v].output >= 0)
                    all = false;
                for (int c = 0; c < g->values[v].n_consumers && all; c++) {
                    int p = place[g->values[v].consumers[c]];
                    if (p < 0)
                        all = false;
                    else
                        at = at < 0 ? p : common_ancestor(&b, at, p);
                }
            }
            if (all && at >= 0)
                place[k] = at;
        }
    }

    /* finalize: own nodes, children, preorder, kinds */
    size_t nm = b.n_mods;
    size_t *cnt = rm_arena_calloc(&t->arena, nm, sizeof *cnt);
    if (!cnt)
        goto done;
    for (size_t i = 0; i < nn; i++) {
        if (place[i] >= 0)
            cnt[place[i]]++;
        else
            t->n_unplaced++;
    }
    t->unplaced = rm_arena_alloc(&t->arena, (t->n_unplaced + 1) * sizeof *t->unplaced);
    if (!t->unplaced)
        goto done;
    for (size_t m = 0; m < nm; m++) {
        b.mods[m]->nodes = rm_arena_alloc(&t->arena, (cnt[m] + 1) * sizeof(int));
        if (!b.mods[m]->nodes)
            goto done;
        if (b.mods[m]->parent)
            b.mods[m]->parent->n_children++;
    }
    t->n_unplaced = 0;
    for (size_t i = 0; i < nn; i++) {
        if (place[i] >= 0) {
            struct rm_module *m = b.mods[place[i]];
            m->nodes[m->n_nodes++] = (int)i;
        } else {
            t->unplaced[t->n_unplaced++] = (int)i;
        }
    }
    for (size_t m = 0; m < nm; m++) {
        struct rm_module *mod = b.mods[m];
        mod->children = rm_arena_alloc(&t->arena, (mod->n_children + 1) * sizeof *mod->children);
        if (!mod->children)
            goto done;
        mod->n_children = 0;
    }
    for (size_t m = 1; m < nm; m++) {
        struct rm_module *p = b.mods[m]->parent;
        p->children[p->n_children++] = b.mods[m];
    }
    t->root = b.mods[0];
    t->n_modules = nm;
    t->modules = rm_arena_alloc(&t->arena, nm * sizeof *t->modules);
    remap = malloc(nm * sizeof *remap);
    t->node_module = rm_arena_alloc(&t->arena, (nn + 1) * sizeof *t->node_module);
    if (!t->modules || !remap || !t->node_module)
        goto done;
    size_t k = 0;
    preorder(t, t->root, &k);
    for (size_t m = 0; m < nm; m++)
        remap[rm_strmap_get(&b.paths, t->modules[m]->path)] = (int)m;
    for (size_t i = 0; i < nn; i++)
        t->node_module[i] = place[i] >= 0 ? remap[place[i]] : -1;
    for (size_t m = 0; m < nm; m++)
        if (!t->modules[m]->n_children && t->modules[m]->n_nodes)
            rm_tree_classify_leaf(t, t->modules[m]);
    for (size_t m = nm; m-- > 0;) /* reverse preorder: children before their parent */
        if (t->modules[m]->n_children)
            rm_tree_classify_container(t->modules[m]);
    rc = 0;
    *out = t;
    t = NULL;
done:
    if (rc == RM_ENOMEM)
        rm_error_set(err, RM_ENOMEM, "out of memory building the module tree");
    rm_tree_free(t);
    free(place);
    free(remap);
    free(b.mods);
    rm_strmap_free(&b.paths);
    rm_strmap_free(&b.raw);
    free(b.cur.s);
    free(b.tmp.s);
    return rc;
}

void rm_tree_hold(struct rm_tree *t)
{
    if (t)
        t->refs++;
}

void rm_tree_free(struct rm_tree *t)
{
    if (!t || --t->refs > 0)
        return;
    rm_graph_drop((struct rm_graph *)t->g);
    rm_arena_free(&t->arena);
    free(t);
}

