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
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small growable string (malloc'd) ------------------------------------------ */

struct sbuf {
    char *s;
    size_t len, cap;
    bool oom;
};

static void sb_reserve(struct sbuf *b, size_t extra)
{
    if (b->oom)
        return;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->oom = true;
        return;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->oom = true;
        return;
    }
    b->s = s;
    b->cap = cap;
}

static void sb_putn(struct sbuf *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    if (b->oom)
        return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

static void sb_printf(struct sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    sb_putn(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void sb_clear(struct sbuf *b)
{
    b->len = 0;
    if (b->s)
        b->s[0] = '\0';
}

/* ---- string -> int map (keys owned by the caller, open addressing) -------------- */

struct smap {
    const char **keys;
    int *vals;
    size_t cap, n; /* cap is a power of two */
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int smap_get(const struct smap *m, const char *key)
{
    if (!m->cap)
        return -1;
    for (size_t i = hash_str(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i])
            return -1;
        if (!strcmp(m->keys[i], key))
            return m->vals[i];
    }
}

/* Insert key (must stay alive); returns 0 or -1 on OOM. Existing keys are kept. */
static int smap_put(struct smap *m, const char *key, int val)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        const char **keys = calloc(cap, sizeof *keys);
        int *vals = calloc(cap, sizeof *vals);
        if (!keys || !vals) {
            free(keys);
            free(vals);
            return -1;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->keys[i])
                continue;
            size_t j = hash_str(m->keys[i]) & (cap - 1);
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
    }
    size_t i = hash_str(key) & (m->cap - 1);
    while (m->keys[i]) {
        if (!strcmp(m->keys[i], key))
            return 0;
        i = (i + 1) & (m->cap - 1);
    }
    m->keys[i] = key;
    m->vals[i] = val;
    m->n++;
    return 0;
}

static void smap_free(struct smap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- graph helpers -------------------------------------------------------------- */

static int node_input(const struct rm_graph *g, int node, size_t slot)
{
    if (slot >= g->nodes[node].proto->n_input)
        return -1;
    return g->nodes[node].inputs[slot];
}

/* Initializer behind value v, following Identity helpers; -1 if none. */
static int follow_init(const struct rm_graph *g, int v)
{
    int src = rm_graph_initializer_of(g, v);
    return src >= 0 ? g->values[src].init : -1;
}

/* Dims of value v (following Identity to an initializer); returns rank or -1. */
static int value_dims(const struct rm_graph *g, int v, int64_t dims[RM_MAX_RANK])
{
    if (v < 0)
        return -1;
    int init = follow_init(g, v);
    if (init >= 0) {
        const Onnx__TensorProto *t = g->proto->initializer[init];
        if (t->n_dims > RM_MAX_RANK)
            return -1;
        for (size_t i = 0; i < t->n_dims; i++)
            dims[i] = t->dims[i];
        return (int)t->n_dims;
    }
    if (g->values[v].rank < 0 || g->values[v].rank > RM_MAX_RANK)
        return -1;
    for (int i = 0; i < g->values[v].rank; i++)
        dims[i] = g->values[v].dims[i];
    return g->values[v].rank;
}

/* Scalar float held by v: an initializer or a Constant node's value. */
static bool value_scalar(const struct rm_graph *g, int v, double *out)
{
    const Onnx__TensorProto *t = rm_graph_const_tensor(g, v);
    int64_t n;
    float f;
    if (!t || rm_tensor_numel(t, &n, NULL) || n != 1 || rm_tensor_check(t, NULL) ||
        rm_tensor_to_f32(t, &f, 1, NULL))
        return false;
    *out = f;
    return true;
}

/* int64 vector held by a Constant node or initializer behind v; returns count or -1. */
static int value_ints(const struct rm_graph *g, int v, int64_t *out, int max)
{
    const Onnx__TensorProto *t = rm_graph_const_tensor(g, v);
    int64_t n;
    if (!t || rm_tensor_numel(t, &n, NULL) || n > max || rm_tensor_check(t, NULL) ||
        rm_tensor_to_i64(t, out, n, NULL))
        return -1;
    return (int)n;
}

/* ---- builder -------------------------------------------------------------------- */

struct builder {
    struct rm_tree *t;
    const struct rm_graph *g;
    struct rm_module **mods; /* creation order */
    size_t n_mods, cap_mods;
    struct smap paths;       /* path -> creation index */
    struct smap raw;         /* raw (unsuffix-stripped) scope paths seen, value unused */
    struct sbuf cur, tmp;
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
    int idx = smap_get(&b->paths, path);
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
    m->depth = path_depth(p);
    m->parent = parent >= 0 ? b->mods[parent] : NULL;
    m->main_node = -1;
    idx = (int)b->n_mods;
    b->mods[b->n_mods++] = m;
    if (smap_put(&b->paths, p, idx))
        return -1;
    return idx;
}

/* Append scope component c (length n) to the path in cur, the way export names it. */
static void scope_step(struct sbuf *cur, const char *c, size_t n)
{
    const char *last = NULL;
    for (size_t i = 0; i < n; i++)
        if (c[i] == '.')
            last = c + i;
    if (last) {
        /* "conv.0.0" under "...conv.0": the component repeats the parent's tail */
        size_t pn = (size_t)(last - c);
        bool tail = (cur->len == pn && !memcmp(cur->s, c, pn)) ||
                    (cur->len > pn && cur->s[cur->len - pn - 1] == '.' &&
                     !memcmp(cur->s + cur->len - pn, c, pn));
        if (tail) {
            sb_putn(cur, ".", 1);
            sb_putn(cur, last + 1, n - pn - 1);
            return;
        }
    }
    if (cur->len)
        sb_putn(cur, ".", 1);
    sb_putn(cur, c, n);
}

/* Strip a call-count suffix ("relu_1" -> "relu") from cur's last component when the
 * un-suffixed module exists in the raw scope set. */
static void strip_suffix(struct builder *b)
{
    struct sbuf *cur = &b->cur;
    if (cur->oom || !cur->len)
        return;
    size_t i = cur->len;
    while (i > 0 && isdigit((unsigned char)cur->s[i - 1]))
        i--;
    if (i == cur->len || i < 2 || cur->s[i - 1] != '_' || cur->s[i - 2] == '.')
        return;
    char save = cur->s[i - 1];
    cur->s[i - 1] = '\0';
    bool exists = smap_get(&b->raw, cur->s) >= 0;
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
    sb_clear(&b->cur);
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
            if (raw_insert && smap_get(&b->raw, b->cur.s) < 0) {
                char *k = rm_arena_strdup(&b->t->arena, b->cur.s);
                if (!k || smap_put(&b->raw, k, 0))
                    return -1;
            }
        }
        p = slash + 1;
    }
    if (!b->cur.s)
        sb_puts(&b->cur, "");
    return b->cur.oom ? -1 : 0;
}

/* Module path from a parameter name like "layer1.0.conv1.weight"; false if none. */
static bool param_path(const char *name, struct sbuf *out)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name || strstr(name, "::") || strchr(name, '/') || strchr(name, ' '))
        return false;
    sb_clear(out);
    sb_putn(out, name, (size_t)(dot - name));
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
    return smap_get(&b->paths, x->path);
}

/* ---- leaf kinds and arguments ----------------------------------------------------- */

static struct rm_arg *add_arg(struct rm_module *m, const char *key, int type)
{
    if (m->n_args >= RM_TREE_MAX_ARGS)
        return NULL;
    struct rm_arg *a = &m->args[m->n_args++];
    memset(a, 0, sizeof *a);
    a->key = key;
    a->type = type;
    a->in_repr = true;
    return a;
}

static void arg_int(struct rm_module *m, const char *key, int64_t v, bool positional, bool in_repr)
{
    struct rm_arg *a = add_arg(m, key, RM_ARG_INT);
    if (a) {
        a->i[0] = v;
        a->positional = positional;
        a->in_repr = in_repr;
    }
}

static void arg_ints(struct rm_module *m, const char *key, const int64_t *v, int n, bool scalar,
                     bool in_repr)
{
    struct rm_arg *a = add_arg(m, key, RM_ARG_INTS);
    if (a) {
        int cap = (int)(sizeof a->i / sizeof a->i[0]); /* 2-D modules: pairs */
        a->n = n > cap ? cap : n;
        for (int i = 0; i < a->n; i++)
            a->i[i] = v[i];
        a->scalar_repr = scalar;
        a->in_repr = in_repr;
    }
}

static void arg_float(struct rm_module *m, const char *key, double v)
{
    struct rm_arg *a = add_arg(m, key, RM_ARG_FLOAT);
    if (a)
        a->f = v;
}

static void arg_bool(struct rm_module *m, const char *key, bool v, bool in_repr)
{
    struct rm_arg *a = add_arg(m, key, RM_ARG_BOOL);
    if (a) {
        a->i[0] = v;
        a->in_repr = in_repr;
    }
}

/* PyTorch's BatchNorm momentum from ONNX's (the weight of the old running value):
 * the shortest decimal d with float(1 - d) == m, so 0.9f gives 0.1. */
static double momentum_from_onnx(float m)
{
    char e[64];
    double x = 1.0 - (double)m, y = x;
    for (int prec = 0; prec < 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec, x);
        y = strtod(e, NULL);
        if ((float)(1.0 - y) == m)
            break;
    }
    return y;
}

/* Spatial attribute of n values (default def), e.g. strides. */
static void spatial(const Onnx__NodeProto *n, const char *attr, int nsp, int64_t def, int64_t *out)
{
    size_t cnt;
    const int64_t *v = rm_node_attr_ints(n, attr, &cnt);
    for (int i = 0; i < nsp; i++)
        out[i] = v && (size_t)i < cnt ? v[i] : def;
}

static bool all_eq(const int64_t *v, int n, int64_t x)
{
    for (int i = 0; i < n; i++)
        if (v[i] != x)
            return false;
    return true;
}

static void add_param(struct rm_tree *t, struct rm_module *m, const char *role, int node, int slot)
{
    const struct rm_graph *g = t->g;
    int v = node_input(g, node, (size_t)slot);
    if (v < 0)
        return;
    struct rm_param *p = rm_arena_alloc(&t->arena, (m->n_params + 1) * sizeof *p);
    if (!p)
        return; /* params are an index; a failed copy leaves the previous list */
    if (m->n_params)
        memcpy(p, m->params, m->n_params * sizeof *p);
    p[m->n_params] = (struct rm_param){role, node, slot, v, follow_init(g, v)};
    m->params = p;
    m->n_params++;
}

static int first_op(const struct rm_tree *t, const struct rm_module *m, enum rm_op op)
{
    for (size_t i = 0; i < m->n_nodes; i++)
        if (t->g->nodes[m->nodes[i]].op == op)
            return m->nodes[i];
    return -1;
}

/* ---- leaf kinds: one function per op that can define a leaf (rm_op_def.leaf) ----
 * Each gets the leaf, its first node of that op, and the other (non-helper) ops of the
 * leaf; it returns false when those companions do not make a module it knows. */

/* Whether the companions are exactly `allowed` (RM_OP_UNKNOWN: none) or none. */
static bool companions(const enum rm_op *others, int n, enum rm_op allowed)
{
    return n == 0 || (n == 1 && others[0] == allowed && allowed != RM_OP_UNKNOWN);
}

static bool leaf_conv_any(struct rm_tree *t, struct rm_module *m, int node, bool transpose)
{
    const struct rm_graph *g = t->g;
    const Onnx__NodeProto *n = g->nodes[node].proto;
    int64_t w[RM_MAX_RANK];
    int rank = value_dims(g, node_input(g, node, 1), w);
    size_t kcnt;
    const int64_t *ks = rm_node_attr_ints(n, "kernel_shape", &kcnt);
    int nsp = rank >= 3 ? rank - 2 : ks ? (int)kcnt : 2;
    if (nsp < 1 || nsp > 3)
        nsp = 2;
    static const char *const names[2][3] = {
        {"Conv1d", "Conv2d", "Conv3d"},
        {"ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"},
    };
    m->type = names[transpose][nsp - 1];
    int64_t group = rm_node_attr_int(n, "group", 1);
    int64_t cin = -1, cout = -1;
    if (rank >= 3) {
        if (transpose) {
            cin = w[0];
            cout = w[1] > 0 && group > 0 && w[1] <= INT64_MAX / group ? w[1] * group : -1;
        } else {
            cout = w[0];
            cin = w[1] > 0 && group > 0 && w[1] <= INT64_MAX / group ? w[1] * group : -1;
        }
    }
    int64_t k[3], s[3], d[3], p[6], op[3];
    for (int i = 0; i < nsp; i++)
        k[i] = ks && (size_t)i < kcnt ? ks[i] : rank >= 3 ? w[2 + i] : -1;
    spatial(n, "strides", nsp, 1, s);
    spatial(n, "dilations", nsp, 1, d);
    spatial(n, "pads", 2 * nsp, 0, p);
    spatial(n, "output_padding", nsp, 0, op);
    arg_int(m, "in_channels", cin, true, true);
    arg_int(m, "out_channels", cout, true, true);
    arg_ints(m, "kernel_size", k, nsp, false, true);
    arg_ints(m, "stride", s, nsp, false, true);
    arg_ints(m, "padding", p, nsp, false, !all_eq(p, nsp, 0));
    if (transpose)
        arg_ints(m, "output_padding", op, nsp, false, !all_eq(op, nsp, 0));
    arg_ints(m, "dilation", d, nsp, false, !all_eq(d, nsp, 1));
    arg_int(m, "groups", group, false, group != 1);
    bool bias = node_input(g, node, 2) >= 0;
    int wv = node_input(g, node, 1);
    struct sbuf tmp = {0};
    if (wv >= 0 && !param_path(g->values[wv].name, &tmp) && follow_init(g, wv) >= 0) {
        m->bn_folded = true; /* the bias comes from the folded BatchNorm */
        arg_bool(m, "bias", false, true);
    } else {
        arg_bool(m, "bias", bias, !bias);
    }
    free(tmp.s);
    add_param(t, m, "weight", node, 1);
    if (bias)
        add_param(t, m, "bias", node, 2);
    return true;
}

bool rm_leaf_conv(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n)
{
    return companions(others, n, RM_OP_UNKNOWN) && leaf_conv_any(t, m, node, false);
}

bool rm_leaf_conv_transpose(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n)
{
    return companions(others, n, RM_OP_UNKNOWN) && leaf_conv_any(t, m, node, true);
}

/* MaxPool/AveragePool, alone or after the Pad that avg_pool2d with padding exports. */
bool rm_leaf_pool(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n_others)
{
    if (!companions(others, n_others, RM_OP_PAD))
        return false;
    const struct rm_graph *g = t->g;
    const Onnx__NodeProto *n = g->nodes[node].proto;
    bool max = g->nodes[node].op == RM_OP_MAX_POOL;
    size_t kcnt;
    const int64_t *ks = rm_node_attr_ints(n, "kernel_shape", &kcnt);
    int nsp = ks && kcnt >= 1 && kcnt <= 3 ? (int)kcnt : 2;
    static const char *const names[2][3] = {{"AvgPool1d", "AvgPool2d", "AvgPool3d"},
                                            {"MaxPool1d", "MaxPool2d", "MaxPool3d"}};
    m->type = names[max][nsp - 1];
    int64_t k[3], s[3], p[6], d[3];
    spatial(n, "kernel_shape", nsp, 1, k);
    spatial(n, "strides", nsp, 1, s);
    spatial(n, "pads", 2 * nsp, 0, p);
    spatial(n, "dilations", nsp, 1, d);
    int pad = first_op(t, m, RM_OP_PAD);
    if (pad >= 0) {
        int64_t pads[2 * (3 + 2)];
        int np = value_ints(g, node_input(g, pad, 1), pads, 2 * (3 + 2));
        if (np == 2 * (nsp + 2))
            for (int i = 0; i < nsp; i++)
                p[i] += pads[2 + i];
    }
    arg_ints(m, "kernel_size", k, nsp, true, true);
    arg_ints(m, "stride", s, nsp, true, true);
    arg_ints(m, "padding", p, nsp, true, true);
    if (max) {
        arg_ints(m, "dilation", d, nsp, true, true);
        arg_bool(m, "ceil_mode", rm_node_attr_int(n, "ceil_mode", 0) != 0, true);
    }
    return true;
}

/* Gemm, or MatMul with an optional Add for the bias. */
bool rm_leaf_linear(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n)
{
    const struct rm_graph *g = t->g;
    bool gemm = g->nodes[node].op == RM_OP_GEMM;
    if (!companions(others, n, gemm ? RM_OP_UNKNOWN : RM_OP_ADD))
        return false;
    int64_t w[RM_MAX_RANK];
    int rank = value_dims(g, node_input(g, node, 1), w);
    bool tb = gemm && rm_node_attr_int(g->nodes[node].proto, "transB", 0);
    int64_t in = -1, out = -1;
    if (rank == 2) {
        in = tb ? w[1] : w[0];
        out = tb ? w[0] : w[1];
    }
    m->type = "Linear";
    arg_int(m, "in_features", in, false, true);
    arg_int(m, "out_features", out, false, true);
    int add = first_op(t, m, RM_OP_ADD);
    bool bias = gemm ? node_input(g, node, 2) >= 0 : add >= 0;
    arg_bool(m, "bias", bias, true);
    add_param(t, m, "weight", node, 1);
    if (gemm && bias)
        add_param(t, m, "bias", node, 2);
    else if (bias) /* MatMul + Add: the bias is the Add input that is an initializer */
        add_param(t, m, "bias", add, follow_init(g, node_input(g, add, 1)) >= 0 ? 1 : 0);
    return true;
}

bool rm_leaf_batch_norm(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n_others)
{
    if (!companions(others, n_others, RM_OP_UNKNOWN))
        return false;
    const struct rm_graph *g = t->g;
    const Onnx__NodeProto *n = g->nodes[node].proto;
    int64_t w[RM_MAX_RANK], x[RM_MAX_RANK];
    int xr = value_dims(g, node_input(g, node, 0), x);
    m->type = xr == 2 || xr == 3 ? "BatchNorm1d" : xr == 5 ? "BatchNorm3d" : "BatchNorm2d";
    arg_int(m, "num_features", value_dims(g, node_input(g, node, 1), w) == 1 ? w[0] : -1, true, true);
    arg_float(m, "eps", rm_node_attr_float(n, "epsilon", 1e-5f));
    arg_float(m, "momentum", momentum_from_onnx(rm_node_attr_float(n, "momentum", 0.9f)));
    arg_bool(m, "affine", true, true);
    arg_bool(m, "track_running_stats", true, true);
    add_param(t, m, "weight", node, 1);
    add_param(t, m, "bias", node, 2);
    add_param(t, m, "running_mean", node, 3);
    add_param(t, m, "running_var", node, 4);
    return true;
}

/* Activations that print as `Name(inplace=True)` or `Name()`. */
bool rm_leaf_activation(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n)
{
    const struct rm_graph *g = t->g;
    switch (g->nodes[node].op) {
    case RM_OP_RELU:
        if (!companions(others, n, RM_OP_UNKNOWN))
            return false;
        m->type = "ReLU";
        arg_bool(m, "inplace", true, true);
        return true;
    case RM_OP_SIGMOID: /* x * sigmoid(x) is SiLU */
        if (!companions(others, n, RM_OP_MUL))
            return false;
        m->type = n ? "SiLU" : "Sigmoid";
        if (n)
            arg_bool(m, "inplace", true, true);
        return true;
    case RM_OP_HARD_SIGMOID: /* x * hardsigmoid(x) is Hardswish */
        if (!companions(others, n, RM_OP_MUL))
            return false;
        m->type = n ? "Hardswish" : "Hardsigmoid";
        return true;
    case RM_OP_HARD_SWISH:
        m->type = "Hardswish";
        return companions(others, n, RM_OP_UNKNOWN);
    case RM_OP_TANH:
        m->type = "Tanh";
        return companions(others, n, RM_OP_UNKNOWN);
    case RM_OP_LEAKY_RELU:
        if (!companions(others, n, RM_OP_UNKNOWN))
            return false;
        m->type = "LeakyReLU";
        arg_float(m, "negative_slope", rm_node_attr_float(g->nodes[node].proto, "alpha", 0.01f));
        return true;
    case RM_OP_ELU:
        if (!companions(others, n, RM_OP_UNKNOWN))
            return false;
        m->type = "ELU";
        arg_float(m, "alpha", rm_node_attr_float(g->nodes[node].proto, "alpha", 1.0f));
        return true;
    default:
        return false;
    }
}

/* Clip: ReLU6 for [0, 6], else Hardtanh. */
bool rm_leaf_clip(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n_others)
{
    if (!companions(others, n_others, RM_OP_UNKNOWN))
        return false;
    const struct rm_graph *g = t->g;
    const Onnx__NodeProto *n = g->nodes[node].proto;
    double lo = -INFINITY, hi = INFINITY;
    if (g->opset && g->opset < 11) {
        lo = rm_node_attr_float(n, "min", -INFINITY);
        hi = rm_node_attr_float(n, "max", INFINITY);
    } else {
        value_scalar(g, node_input(g, node, 1), &lo);
        value_scalar(g, node_input(g, node, 2), &hi);
    }
    if (lo == 0 && hi == 6) {
        m->type = "ReLU6";
        arg_bool(m, "inplace", true, true);
    } else {
        m->type = "Hardtanh";
        arg_float(m, "min_val", lo);
        arg_float(m, "max_val", hi);
    }
    return true;
}

bool rm_leaf_softmax(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n)
{
    if (!companions(others, n, RM_OP_UNKNOWN))
        return false;
    const struct rm_graph *g = t->g;
    m->type = g->nodes[node].op == RM_OP_SOFTMAX ? "Softmax" : "LogSoftmax";
    arg_int(m, "dim", rm_node_attr_int(g->nodes[node].proto, "axis", g->opset >= 13 ? -1 : 1), false, true);
    return true;
}

bool rm_leaf_global_pool(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n)
{
    if (!companions(others, n, RM_OP_UNKNOWN))
        return false;
    m->type = t->g->nodes[node].op == RM_OP_GLOBAL_AVERAGE_POOL ? "AdaptiveAvgPool2d" : "AdaptiveMaxPool2d";
    static const int64_t one[2] = {1, 1};
    arg_ints(m, "output_size", one, 2, false, true);
    return true;
}

bool rm_leaf_flatten(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n)
{
    if (!companions(others, n, RM_OP_UNKNOWN))
        return false;
    m->type = "Flatten";
    arg_int(m, "start_dim", rm_node_attr_int(t->g->nodes[node].proto, "axis", 1), false, true);
    arg_int(m, "end_dim", -1, false, true);
    return true;
}

bool rm_leaf_dropout(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n)
{
    if (!companions(others, n, RM_OP_UNKNOWN))
        return false;
    m->type = "Dropout";
    double p = 0.5;
    value_scalar(t->g, node_input(t->g, node, 1), &p);
    arg_float(m, "p", p);
    arg_bool(m, "inplace", false, true);
    return true;
}

bool rm_leaf_prelu(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n)
{
    if (!companions(others, n, RM_OP_UNKNOWN))
        return false;
    m->type = "PReLU";
    int64_t w[RM_MAX_RANK];
    int r = value_dims(t->g, node_input(t->g, node, 1), w);
    int64_t num = 1;
    for (int i = 0; i < r; i++)
        if (w[i] > 1)
            num = w[i];
    arg_int(m, "num_parameters", num, false, true);
    add_param(t, m, "weight", node, 1);
    return true;
}

/* Give a leaf its PyTorch kind, arguments and parameters from its nodes: the one op of
 * the leaf that has a leaf function in the op table decides, given the others. */
static void classify_leaf(struct rm_tree *t, struct rm_module *m)
{
    const struct rm_graph *g = t->g;
    /* distinct op types, helpers (Constant, Identity) left out */
    enum rm_op ops[4];
    int nops = 0;
    for (size_t i = 0; i < m->n_nodes; i++) {
        enum rm_op op = g->nodes[m->nodes[i]].op;
        if (rm_op_def(op)->flags & RM_OPF_HELPER)
            continue;
        int k = 0;
        while (k < nops && ops[k] != op)
            k++;
        if (k == nops) {
            if (nops == 4)
                return; /* too many kinds of op for one leaf module */
            ops[nops++] = op;
        }
    }
    int main = -1;
    for (int k = 0; k < nops; k++)
        if (rm_op_def(ops[k])->leaf) {
            if (main >= 0)
                return; /* two ops that each define a module */
            main = k;
        }
    if (main < 0)
        return;
    enum rm_op others[3];
    int n_others = 0;
    for (int k = 0; k < nops; k++)
        if (k != main)
            others[n_others++] = ops[k];
    int node = first_op(t, m, ops[main]);
    m->main_node = node;
    if (rm_op_def(ops[main])->leaf(t, m, node, others, n_others)) {
        m->type_known = true;
        return;
    }
    /* companions it does not know: an unknown leaf, as if never classified */
    m->main_node = -1;
    m->type = "Module";
    m->n_args = 0;
    m->n_params = 0;
    m->bn_folded = false;
}

/* Containers whose class can be recognised from the names of their children (those
 * that leave nodes in an export; folded BatchNorms do not): torchvision's building blocks.
 * Rows are tried in order; '#' in an allowed name stands for digits. */
struct signature {
    const char *type;
    bool root_only;
    const char *required; /* space separated child names that must be present */
    const char *allowed;  /* space separated child names that may be present */
    const char *first_type; /* type the first required child must have, or NULL */
};

static const struct signature signatures[] = {
    {"ResNet", true, "conv1 layer1 layer2 layer3 layer4 fc",
     "conv1 bn1 relu maxpool layer1 layer2 layer3 layer4 avgpool fc", NULL},
    {"Bottleneck", false, "conv1 conv2 conv3",
     "conv1 bn1 conv2 bn2 conv3 bn3 relu downsample", NULL},
    {"BasicBlock", false, "conv1 conv2", "conv1 bn1 relu conv2 bn2 downsample", NULL},
    {"SqueezeExcitation", false, "fc1 fc2", "avgpool fc1 activation fc2 scale_activation", NULL},
    {"Fire", false, "squeeze expand1x1 expand3x3",
     "squeeze squeeze_activation expand1x1 expand1x1_activation expand3x3 "
     "expand3x3_activation", NULL},
    {"Inception", false, "branch1 branch2 branch3 branch4",
     "branch1 branch2 branch3 branch4", NULL},
    {"_DenseLayer", false, "conv1 conv2", "norm1 relu1 conv1 norm2 relu2 conv2", NULL},
    {"_Transition", false, "conv pool", "norm relu conv pool", NULL},
    {"MBConv", false, "block", "block stochastic_depth", NULL},
    {"BottleneckTransform", false, "a b c", "a b se c", NULL},
    {"ResBottleneckBlock", false, "f", "proj f activation", NULL},
    {"InvertedResidual", false, "conv", "conv", "Sequential"},
    {"InvertedResidual", false, "branch2", "branch1 branch2", NULL},
    {"_InvertedResidual", false, "layers", "layers", "Sequential"},
    {"BasicConv2d", false, "conv", "conv bn", "Conv2d"},
    {"_DenseBlock", false, "denselayer1", "denselayer#", NULL},
    {"AnyStage", false, "", "block#-#", NULL},
    {"GoogLeNet", true, "conv1 inception3a inception5b fc",
     "conv1 maxpool1 conv2 conv3 maxpool2 inception3a inception3b maxpool3 inception4a "
     "inception4b inception4c inception4d inception4e maxpool4 inception5a inception5b "
     "avgpool dropout fc", NULL},
    {"ShuffleNetV2", true, "conv1 stage2 stage3 stage4 conv5 fc",
     "conv1 maxpool stage2 stage3 stage4 conv5 fc", NULL},
    {"RegNet", true, "stem trunk_output fc", "stem trunk_output avgpool fc", NULL},
};

/* Whether name matches pattern (length len), where '#' stands for one or more digits. */
static bool pattern_match(const char *pat, size_t len, const char *name)
{
    const char *end = pat + len;
    while (pat < end) {
        if (*pat == '#') {
            if (!isdigit((unsigned char)*name))
                return false;
            while (isdigit((unsigned char)*name))
                name++;
            pat++;
        } else if (*pat++ != *name++) {
            return false;
        }
    }
    return *name == '\0';
}

static bool word_in(const char *words, const char *w)
{
    for (const char *p = words; *p;) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (pattern_match(p, len, w))
            return true;
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

static const struct rm_module *child(const struct rm_module *m, const char *name, size_t len)
{
    for (size_t i = 0; i < m->n_children; i++)
        if (strlen(m->children[i]->name) == len && !memcmp(m->children[i]->name, name, len))
            return m->children[i];
    return NULL;
}

static bool digits_only(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

static void classify_container(struct rm_module *m)
{
    bool numbered = true;
    for (size_t i = 0; i < m->n_children; i++)
        numbered &= digits_only(m->children[i]->name);
    if (numbered) {
        m->type = "Sequential";
        m->type_known = true;
        return;
    }
    for (size_t s = 0; s < sizeof signatures / sizeof signatures[0]; s++) {
        const struct signature *sig = &signatures[s];
        if (sig->root_only && m->parent)
            continue;
        bool ok = true;
        for (size_t i = 0; ok && i < m->n_children; i++)
            ok = word_in(sig->allowed, m->children[i]->name);
        for (const char *p = sig->required; ok && *p;) {
            const char *e = strchr(p, ' ');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            const struct rm_module *c = child(m, p, len);
            ok = c && (p != sig->required || !sig->first_type || !strcmp(c->type, sig->first_type));
            p = e ? e + 1 : p + len;
        }
        if (ok) {
            m->type = sig->type;
            m->type_known = true;
            return;
        }
    }
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
            if (v < 0 || follow_init(g, v) < 0)
                continue;
            if (param_path(g->values[v].name, &b.tmp)) {
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
        remap[smap_get(&b.paths, t->modules[m]->path)] = (int)m;
    for (size_t i = 0; i < nn; i++)
        t->node_module[i] = place[i] >= 0 ? remap[place[i]] : -1;
    for (size_t m = 0; m < nm; m++)
        if (!t->modules[m]->n_children && t->modules[m]->n_nodes)
            classify_leaf(t, t->modules[m]);
    for (size_t m = nm; m-- > 0;) /* reverse preorder: children before their parent */
        if (t->modules[m]->n_children)
            classify_container(t->modules[m]);
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
    smap_free(&b.paths);
    smap_free(&b.raw);
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

const struct rm_param *rm_module_param(const struct rm_module *m, const char *role)
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

/* ---- repr ----------------------------------------------------------------------- */

/* Python's repr() of a float written with the digits of e (a "%.*e" string). */
static void py_float_from_e(const char *e, struct sbuf *b)
{
    const char *p = e;
    if (*p == '-') {
        sb_puts(b, "-");
        p++;
    }
    if (!isdigit((unsigned char)*p)) { /* inf, nan */
        sb_puts(b, p);
        return;
    }
    char digits[32];
    size_t nd = 0;
    for (; *p && *p != 'e' && nd < sizeof digits - 1; p++)
        if (isdigit((unsigned char)*p))
            digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    long ex = *p == 'e' ? strtol(p + 1, NULL, 10) : 0;
    if (nd == 1 && digits[0] == '0')
        ex = 0;
    if (ex >= -4 && ex < 16) {
        if (ex < 0) {
            sb_puts(b, "0.");
            for (long i = 0; i < -ex - 1; i++)
                sb_puts(b, "0");
            sb_puts(b, digits);
        } else {
            for (long i = 0; i <= ex; i++)
                sb_putn(b, (size_t)i < nd ? &digits[i] : "0", 1);
            sb_puts(b, ".");
            sb_puts(b, (size_t)ex + 1 < nd ? &digits[ex + 1] : "0");
        }
    } else {
        sb_putn(b, digits, 1);
        if (nd > 1) {
            sb_puts(b, ".");
            sb_puts(b, digits + 1);
        }
        sb_printf(b, "e%c%02ld", ex < 0 ? '-' : '+', ex < 0 ? -ex : ex);
    }
}

/* Shortest decimal that reads back as the same float32, Python style ("1e-05", "0.1"):
 * ONNX stores float32, PyTorch printed the Python float the model was built with. */
static void py_float(double v, struct sbuf *b)
{
    char e[64];
    float target = (float)v;
    if (!isfinite(v)) {
        sb_puts(b, isnan(v) ? "nan" : v < 0 ? "-inf" : "inf");
        return;
    }
    for (int prec = 0; prec < 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec, v);
        if ((float)strtod(e, NULL) == target)
            break;
    }
    py_float_from_e(e, b);
}

static void arg_value(const struct rm_arg *a, struct sbuf *b)
{
    switch (a->type) {
    case RM_ARG_INT:
        sb_printf(b, "%" PRId64, a->i[0]);
        break;
    case RM_ARG_INTS:
        if (a->scalar_repr && all_eq(a->i, a->n, a->i[0])) {
            sb_printf(b, "%" PRId64, a->i[0]);
            break;
        }
        sb_puts(b, "(");
        for (int i = 0; i < a->n; i++)
            sb_printf(b, "%s%" PRId64, i ? ", " : "", a->i[i]);
        sb_puts(b, a->n == 1 ? ",)" : ")");
        break;
    case RM_ARG_FLOAT:
        py_float(a->f, b);
        break;
    case RM_ARG_BOOL:
        sb_puts(b, a->i[0] ? "True" : "False");
        break;
    case RM_ARG_STR:
        sb_printf(b, "'%s'", a->s ? a->s : "");
        break;
    default:
        break;
    }
}

static void repr_args(const struct rm_module *m, struct sbuf *b)
{
    bool first = true;
    for (int i = 0; i < m->n_args; i++) {
        const struct rm_arg *a = &m->args[i];
        if (!a->in_repr)
            continue;
        if (!first)
            sb_puts(b, ", ");
        first = false;
        if (!a->positional) {
            sb_puts(b, a->key);
            sb_puts(b, "=");
        }
        arg_value(a, b);
    }
}

size_t rm_module_repr_line(const struct rm_module *m, char *buf, size_t n)
{
    struct sbuf b = {0};
    sb_puts(&b, m->type);
    sb_puts(&b, "(");
    if (m->n_children)
        sb_puts(&b, "...");
    else
        repr_args(m, &b);
    sb_puts(&b, ")");
    size_t len = b.oom ? 0 : b.len;
    if (n) {
        size_t c = len < n - 1 ? len : n - 1;
        if (c)
            memcpy(buf, b.s, c);
        buf[c] = '\0';
    }
    free(b.s);
    return len;
}

static void indent(struct sbuf *b, int level)
{
    for (int i = 0; i < level; i++)
        sb_puts(b, "  ");
}

static void repr_rec(const struct rm_tree *t, const struct rm_module *m, int level, int max_depth,
                     bool show_unplaced, struct sbuf *b)
{
    sb_puts(b, m->type);
    sb_puts(b, "(");
    bool unplaced = show_unplaced && t->n_unplaced;
    if (!m->n_children && !unplaced) {
        repr_args(m, b);
        sb_puts(b, ")");
        return;
    }
    if (max_depth >= 0 && level >= max_depth) {
        sb_puts(b, "...)");
        return;
    }
    sb_puts(b, "\n");
    for (size_t i = 0; i < m->n_children; i++) {
        indent(b, level + 1);
        sb_printf(b, "(%s): ", m->children[i]->name);
        repr_rec(t, m->children[i], level + 1, max_depth, false, b);
        sb_puts(b, "\n");
    }
    if (unplaced) {
        indent(b, level + 1);
        sb_printf(b, "(unplaced): %zu ONNX node%s in no module (\n", t->n_unplaced,
                  t->n_unplaced == 1 ? "" : "s");
        for (size_t i = 0; i < t->n_unplaced; i++) {
            indent(b, level + 2);
            sb_puts(b, rm_graph_node_label(t->g, (size_t)t->unplaced[i]));
            sb_printf(b, " (%s)\n", t->g->nodes[t->unplaced[i]].proto->op_type ? t->g->nodes[t->unplaced[i]].proto->op_type : "");
        }
        indent(b, level + 1);
        sb_puts(b, ")\n");
    }
    indent(b, level);
    sb_puts(b, ")");
}

char *rm_tree_repr(const struct rm_tree *t, const struct rm_module *m, int max_depth)
{
    struct sbuf b = {0};
    repr_rec(t, m, 0, max_depth, m == t->root, &b);
    if (b.oom || !b.s) {
        free(b.s);
        return NULL;
    }
    return b.s;
}
