/* Module tree: module paths from what each exporter leaves in the file, then kinds.
 *
 * Sources, most trusted first; a node takes its module from the first that names one
 * (enum rm_tree_source):
 *
 * - dynamo: PyTorch's dynamo exporter (torch.onnx.export's default since 2.9) writes on
 *   every node metadata_props "pkg.torch.onnx.name_scopes", the repr() of a list of the
 *   module paths the node was called in, root first (''), the node's own FX name last:
 *   "['', 'layer1', 'layer1.0', 'layer1.0.conv1', 'conv2d_1']", and in
 *   "pkg.torch.onnx.class_hierarchy" the parallel list of their fully qualified classes
 *   (the aten op last). The node belongs to the last module; every listed module ran.
 * - scope: torch.onnx.export's TorchScript exporter (1.13) names a node after the chain
 *   of module calls it sits in, one slash-separated component per call:
 *   "/features/features.1/conv/conv.0/conv.0.0/Conv". A component is the module's path
 *   from its last non-numeric part on ("conv.0.0" for module features.1.conv.0.0), so a
 *   component either names a direct attribute child ("conv") or repeats the tail of its
 *   parent's path plus one more index ("conv.0" under "...conv"). A module called a
 *   second time gets "_1" on its component ("relu_1").
 * - param: a node that reads a parameter named "layer1.0.conv1.weight" (an initializer
 *   or a Constant node's output; paddle's "conv2d_52.w_0") belongs to "layer1.0.conv1".
 * - tensor: paddle2onnx names a layer's outputs "<layer>.tmp_<n>" ("relu_3.tmp_0"); an
 *   op nothing names whose outputs only that layer reads is part of it.
 * - slash: other exporters' '/'-separated node names, one module per component but the
 *   last ("model/conv2d_3/Conv2D" is model.conv2d_3); tf2onnx names the ops it inserts
 *   "<op it serves>__<n>" ("model/conv2d/Conv2D__6"): those belong one scope higher.
 * - derived: a Conv that no source gives a module of its own gets one (rm_tree.h).
 *
 * Helpers (Constant, Identity) belong to the module they feed. */
#include "rm_tree.h"
#include "rm_tree_int.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KEY_SCOPES "pkg.torch.onnx.name_scopes"
#define KEY_CLASSES "pkg.torch.onnx.class_hierarchy"
#define META_MAX (64 * 1024)            /* longest metadata value read */
#define ITEM_MAX 1024                   /* longest module path or class name read */
#define LIST_MAX (RM_TREE_MAX_DEPTH + 2) /* root + modules + the node's own name */
#define LABEL_MAX 64                    /* longest node label a derived path takes */

/* ---- builder -------------------------------------------------------------------- */

/* What the builder knows of a module besides struct rm_module (by creation index). */
struct bmod {
    int parent;      /* creation index of its parent, -1 for the root */
    bool called;     /* its path was a scope of its own: its forward ran */
    bool cls_bad;    /* dynamo: nodes disagree on its class, or the class is malformed */
    const char *cls; /* dynamo: its fully qualified class (arena), or NULL */
};

struct builder {
    struct rm_tree *t;
    const struct rm_graph *g;
    struct rm_module **mods; /* creation order */
    struct bmod *info;       /* parallel to mods */
    size_t n_mods, cap_mods;
    struct rm_strmap paths;  /* path -> creation index */
    struct rm_strmap raw;    /* raw (unsuffix-stripped) scope paths seen, value unused */
    struct rm_strbuf cur, tmp;
    int *place;              /* per node: creation index of its module, or -1 */
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

/* Module with this path, created (with its ancestors, which take the same source) if
 * new. -1 on OOM. */
static int get_module(struct builder *b, const char *path, int source)
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
            parent = get_module(b, pp, source);
            free(pp);
        } else {
            parent = get_module(b, "", source);
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
        struct bmod *info = realloc(b->info, cap * sizeof *info);
        if (!info)
            return -1;
        b->info = info;
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
    m->source = *path ? source : RM_TREE_SRC_NONE;
    idx = (int)b->n_mods;
    b->mods[b->n_mods] = m;
    b->info[b->n_mods] = (struct bmod){parent, false, false, NULL};
    b->n_mods++;
    if (rm_strmap_put(&b->paths, p, idx, NULL))
        return -1;
    return idx;
}

static bool is_helper(const struct rm_graph *g, int node)
{
    return rm_op_def(g->nodes[node].op)->flags & RM_OPF_HELPER;
}

static bool is_conv(const struct rm_graph *g, int node)
{
    return g->nodes[node].op == RM_OP_CONV || g->nodes[node].op == RM_OP_CONV_TRANSPOSE;
}

/* ---- dynamo: node metadata --------------------------------------------------------- */

int rm_tree_pylist_parse(const char *s, int max, size_t max_item, char **buf, size_t *off)
{
    size_t len = strlen(s);
    /* decoding never lengthens: an item's bytes come from its own quoted text, and
     * each of its two quotes leaves room for its NUL */
    char *o = *buf = malloc(len + 1);
    if (!o)
        return -2;
    const char *p = s;
    int n = 0;
#define WS()                                                                            \
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')                          \
        p++
    WS();
    if (*p++ != '[')
        return -1;
    WS();
    if (*p == ']') {
        p++;
        goto end;
    }
    for (;;) {
        char q = *p++;
        if ((q != '\'' && q != '"') || n >= max)
            return -1;
        off[n] = (size_t)(o - *buf);
        const char *start = o;
        for (;;) {
            unsigned char c = (unsigned char)*p;
            if (!c || c < 0x20 || c == 0x7f)
                return -1; /* unterminated, or a control byte repr() would have escaped */
            if (c == (unsigned char)q) {
                p++;
                break;
            }
            if (c != '\\') {
                *o++ = *p++;
            } else {
                p++;
                int digits = 0;
                switch (*p) {
                case '\\': case '\'': case '"':
                    *o++ = *p++;
                    break;
                case 'n':
                    *o++ = '\n';
                    p++;
                    break;
                case 'r':
                    *o++ = '\r';
                    p++;
                    break;
                case 't':
                    *o++ = '\t';
                    p++;
                    break;
                case 'x':
                    digits = 2;
                    break;
                case 'u':
                    digits = 4;
                    break;
                case 'U':
                    digits = 8;
                    break;
                default:
                    return -1;
                }
                if (digits) {
                    uint32_t cp = 0;
                    p++;
                    for (int i = 0; i < digits; i++, p++) {
                        int h = isdigit((unsigned char)*p)                 ? *p - '0'
                                : *p >= 'a' && *p <= 'f'                   ? *p - 'a' + 10
                                : *p >= 'A' && *p <= 'F'                   ? *p - 'A' + 10
                                                                            : -1;
                        if (h < 0)
                            return -1;
                        cp = cp << 4 | (uint32_t)h;
                    }
                    if (!cp || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
                        return -1;
                    if (cp < 0x80) {
                        *o++ = (char)cp;
                    } else if (cp < 0x800) {
                        *o++ = (char)(0xc0 | cp >> 6);
                        *o++ = (char)(0x80 | (cp & 0x3f));
                    } else if (cp < 0x10000) {
                        *o++ = (char)(0xe0 | cp >> 12);
                        *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
                        *o++ = (char)(0x80 | (cp & 0x3f));
                    } else {
                        *o++ = (char)(0xf0 | cp >> 18);
                        *o++ = (char)(0x80 | (cp >> 12 & 0x3f));
                        *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
                        *o++ = (char)(0x80 | (cp & 0x3f));
                    }
                }
            }
            if ((size_t)(o - start) > max_item)
                return -1;
        }
        *o++ = '\0';
        n++;
        WS();
        if (*p == ',') {
            p++;
            WS();
            if (*p == ']') {
                p++;
                break;
            }
            continue;
        }
        if (*p++ != ']')
            return -1;
        break;
    }
end:
    WS();
#undef WS
    return *p ? -1 : n;
}

/* The value of metadata key on node n; NULL when absent, given twice, or too long. */
static const char *node_meta(const Onnx__NodeProto *n, const char *key)
{
    const char *found = NULL;
    for (size_t i = 0; i < n->n_metadata_props; i++) {
        const Onnx__StringStringEntryProto *e = n->metadata_props[i];
        if (!e || !e->key || !e->value || strcmp(e->key, key))
            continue;
        if (found)
            return NULL;
        found = e->value;
    }
    return found && strnlen(found, META_MAX + 1) <= META_MAX ? found : NULL;
}

/* A name_scopes entry as a dotted module path into out: written as named_modules() names
 * it ("layer1.0.conv1"); torch.export's older spelling "L['self'].layer1[0]" and a call
 * suffix "@1" are normalised. False when it is no module path: an empty component, a
 * control byte or quote, other brackets, deeper than RM_TREE_MAX_DEPTH. */
static bool dynamo_path(const char *e, struct rm_strbuf *out)
{
    rm_sb_clear(out);
    rm_sb_putn(out, "", 0);
    if (!strncmp(e, "L['self']", 9)) {
        e += 9;
        if (*e == '.')
            e++;
        else if (*e && *e != '[')
            return false;
    }
    size_t n = strlen(e);
    const char *at = strrchr(e, '@');
    if (at && at[1] && strspn(at + 1, "0123456789") == strlen(at + 1))
        n = (size_t)(at - e);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)e[i];
        if (c < 0x20 || c == 0x7f || c == '\'' || c == '"' || c == ']')
            return false;
        if (c == '[') {
            size_t d = strspn(e + i + 1, "0123456789");
            if (!d || i + 1 + d >= n || e[i + 1 + d] != ']')
                return false;
            if (out->len)
                rm_sb_putn(out, ".", 1);
            rm_sb_putn(out, e + i + 1, d);
            i += d + 1;
            continue;
        }
        rm_sb_putn(out, e + i, 1);
    }
    if (out->oom)
        return false;
    const char *s = out->s;
    if (out->len && (s[0] == '.' || s[out->len - 1] == '.' || strstr(s, "..")))
        return false;
    return path_depth(s) <= RM_TREE_MAX_DEPTH;
}

/* The class name of a qualified one ("torchvision.models.resnet.BasicBlock" ->
 * "BasicBlock"); NULL when q is not a dotted Python name. */
static const char *class_short(const char *q)
{
    size_t n = strnlen(q, ITEM_MAX + 1);
    if (!n || n > ITEM_MAX)
        return NULL;
    const char *last = q;
    for (const char *p = q; *p; p++) {
        if (*p == '.') {
            if (p == last)
                return NULL;
            last = p + 1;
        } else if (!isalnum((unsigned char)*p) && *p != '_') {
            return NULL;
        } else if (p == last && isdigit((unsigned char)*p)) {
            return NULL; /* a component starts with a digit */
        }
    }
    return *last ? last : NULL;
}

static int note_class(struct builder *b, int idx, const char *q)
{
    struct bmod *i = &b->info[idx];
    if (i->cls_bad)
        return 0;
    if (!class_short(q)) {
        i->cls_bad = true;
    } else if (!i->cls) {
        if (!(i->cls = rm_arena_strdup(&b->t->arena, q)))
            return -1;
    } else if (strcmp(i->cls, q)) {
        i->cls_bad = true;
    }
    return 0;
}

/* Place node by its dynamo metadata when it has usable metadata. -1 on OOM. */
static int place_dynamo(struct builder *b, int node)
{
    const Onnx__NodeProto *n = b->g->nodes[node].proto;
    const char *scopes = node_meta(n, KEY_SCOPES);
    if (!scopes)
        return 0;
    int rc = 0;
    char *nbuf = NULL, *cbuf = NULL;
    size_t noff[LIST_MAX], coff[LIST_MAX];
    int nn = rm_tree_pylist_parse(scopes, LIST_MAX, ITEM_MAX, &nbuf, noff);
    int nc = -1;
    const char *classes = nn >= 2 ? node_meta(n, KEY_CLASSES) : NULL;
    if (classes)
        nc = rm_tree_pylist_parse(classes, LIST_MAX, ITEM_MAX, &cbuf, coff);
    if (nn == -2 || nc == -2) {
        rc = -1;
        goto done;
    }
    if (nn < 2) /* malformed, or only the node's own name (no module stack) */
        goto done;
    for (int k = 0; k < nn - 1; k++)
        if (!dynamo_path(nbuf + noff[k], &b->cur)) {
            rc = b->cur.oom ? -1 : 0;
            goto done; /* not a module path: the metadata says nothing usable */
        }
    int idx = -1;
    for (int k = 0; k < nn - 1; k++) {
        dynamo_path(nbuf + noff[k], &b->cur);
        if ((idx = get_module(b, b->cur.s, RM_TREE_SRC_DYNAMO)) < 0) {
            rc = -1;
            goto done;
        }
        b->info[idx].called = true;
        /* a class list of another length is malformed: its entries pair with nothing */
        if (nc == nn && note_class(b, idx, cbuf + coff[k])) {
            rc = -1;
            goto done;
        }
    }
    b->place[node] = idx;
done:
    free(nbuf);
    free(cbuf);
    return rc;
}

/* ---- scope: TorchScript node names ------------------------------------------------- */

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

/* Path of a scoped node name into b->cur. strip: apply suffix stripping. *ok is false
 * when the scope is too deep. raw_insert: record every prefix in b->raw. steps (when not
 * NULL) receives the length of b->cur after each component, *n_steps their number. */
static int scope_path(struct builder *b, const char *name, bool strip, bool raw_insert, bool *ok,
                      size_t *steps, int *n_steps)
{
    rm_sb_clear(&b->cur);
    *ok = true;
    if (n_steps)
        *n_steps = 0;
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
            if (steps && *n_steps <= RM_TREE_MAX_DEPTH)
                steps[(*n_steps)++] = b->cur.len;
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

/* ---- param, tensor, slash ------------------------------------------------------------ */

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

/* The paddle layer a tensor name gives ("relu_3.tmp_0" -> "relu_3") into out. */
static bool tensor_layer(const char *name, struct rm_strbuf *out)
{
    if (!name || !(isalpha((unsigned char)*name) || *name == '_'))
        return false;
    size_t n = 0;
    while (isalnum((unsigned char)name[n]) || name[n] == '_')
        n++;
    if (strncmp(name + n, ".tmp_", 5))
        return false;
    const char *d = name + n + 5;
    if (!*d || strspn(d, "0123456789") != strlen(d))
        return false;
    rm_sb_clear(out);
    rm_sb_putn(out, name, n);
    return !out->oom;
}

/* Path of another exporter's '/'-separated node name into out: one module per component
 * but the last, '.' in a component written '_'; an op tf2onnx inserted ("...__<n>") sits
 * one scope higher. False when the name has no scope or is too deep. */
static bool slash_path(const char *name, struct rm_strbuf *out)
{
    const char *label = strrchr(name, '/');
    if (!label || name[0] == '/')
        return false;
    size_t end = (size_t)(label - name);
    const char *u = NULL;
    for (const char *p = strstr(label + 1, "__"); p; p = strstr(p + 1, "__"))
        u = p; /* the last "__" */
    if (u && u[2] && strspn(u + 2, "0123456789") == strlen(u + 2)) {
        /* inserted op: drop the scope of the op it serves */
        while (end > 0 && name[end - 1] != '/')
            end--;
        end = end ? end - 1 : 0;
    }
    rm_sb_clear(out);
    rm_sb_putn(out, "", 0);
    for (size_t i = 0; i < end;) {
        size_t n = 0;
        while (i + n < end && name[i + n] != '/')
            n++;
        if (n) {
            if (out->len)
                rm_sb_putn(out, ".", 1);
            for (size_t k = 0; k < n; k++)
                rm_sb_putn(out, name[i + k] == '.' ? "_" : name + i + k, 1);
        }
        i += n + 1;
    }
    return !out->oom && out->len && path_depth(out->s) <= RM_TREE_MAX_DEPTH;
}

/* ---- derived paths for Convs ---------------------------------------------------------- */

/* The constant a conv's weight comes from (value of its initializer or Constant), or
 * the value itself when computed. */
static int weight_source(const struct rm_graph *g, int node)
{
    int v = rm_tree_node_input(g, node, 1);
    int src = rm_graph_initializer_of(g, v);
    if (src >= 0)
        return src;
    int c = rm_tree_follow_const(g, v);
    return c >= 0 ? g->nodes[c].outputs[0] : v;
}

/* Give Conv and ConvTranspose nodes that no module holds as its one defining op a module
 * of their own (RM_TREE_SRC_DERIVED): unplaced ones, ones placed at the root, in a module
 * with children or other (non-helper) ops, or beside a conv with another weight. */
static int derive_convs(struct builder *b)
{
    const struct rm_graph *g = b->g;
    size_t nn = g->n_nodes, nm = b->n_mods;
    int rc = -1;
    /* per module: whether it holds more than one conv could own (children, other ops,
     * convs with different weights); the weight of its first conv */
    bool *busy = calloc(nm ? nm : 1, sizeof *busy);
    int *weight = malloc((nm ? nm : 1) * sizeof *weight);
    if (!busy || !weight)
        goto done;
    for (size_t m = 0; m < nm; m++)
        weight[m] = -1;
    for (size_t m = 1; m < nm; m++)
        busy[b->info[m].parent] = true;
    busy[0] = true; /* a conv is never the root itself */
    for (size_t i = 0; i < nn; i++) {
        int m = b->place[i];
        if (m < 0 || is_helper(g, (int)i))
            continue;
        if (!is_conv(g, (int)i)) {
            busy[m] = true;
        } else {
            int w = weight_source(g, (int)i);
            if (weight[m] == -1)
                weight[m] = w;
            else if (weight[m] != w || w < 0) /* a module called twice reads one weight */
                busy[m] = true;
        }
    }
    int k = -1;
    for (size_t i = 0; i < nn; i++) {
        if (!is_conv(g, (int)i))
            continue;
        k++;
        int m = b->place[i];
        if (m >= 0 && (size_t)m < nm && !busy[m])
            continue;
        int parent = m >= 0 ? m : 0;
        const char *ppath = b->mods[parent]->path;
        const char *name = g->nodes[i].proto->name ? g->nodes[i].proto->name : "";
        const char *label = strrchr(name, '/');
        label = label ? label + 1 : name;
        size_t ln = strlen(label);
        bool plain = ln && ln <= LABEL_MAX && strspn(label, "abcdefghijklmnopqrstuvwxyz"
                                                            "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                            "0123456789_-") == ln;
        for (int attempt = 0;; attempt++) {
            rm_sb_clear(&b->tmp);
            rm_sb_printf(&b->tmp, "%s%s", ppath, *ppath ? "." : "");
            if (attempt == 0 && plain)
                rm_sb_puts(&b->tmp, label);
            else if (attempt <= 1)
                rm_sb_printf(&b->tmp, "conv_%d", k);
            else
                rm_sb_printf(&b->tmp, "conv_%d_%d", k, attempt - 1);
            if (b->tmp.oom)
                goto done;
            if (rm_strmap_get(&b->paths, b->tmp.s) < 0)
                break;
        }
        int idx = get_module(b, b->tmp.s, RM_TREE_SRC_DERIVED);
        if (idx < 0)
            goto done;
        b->place[i] = idx;
    }
    rc = 0;
done:
    free(busy);
    free(weight);
    return rc;
}

/* Deepest common ancestor of modules a and c (creation indices). */
static int common_ancestor(const struct builder *b, int a, int c)
{
    while (b->mods[a]->depth > b->mods[c]->depth)
        a = b->info[a].parent;
    while (b->mods[c]->depth > b->mods[a]->depth)
        c = b->info[c].parent;
    while (a != c) {
        a = b->info[a].parent;
        c = b->info[c].parent;
    }
    return a;
}

/* The one module every consumer of node k's outputs is in (their deepest common
 * ancestor when common is set), or -1 when an output is a graph output, unused, or read
 * by an unplaced node. */
static int consumers_module(struct builder *b, size_t k, bool common)
{
    const struct rm_graph *g = b->g;
    int at = -1;
    size_t nout = g->nodes[k].proto->n_output;
    for (size_t o = 0; o < nout; o++) {
        int v = g->nodes[k].outputs[o];
        if (v < 0)
            continue;
        if (g->values[v].output >= 0)
            return -1;
        for (int c = 0; c < g->values[v].n_consumers; c++) {
            int p = b->place[g->values[v].consumers[c]];
            if (p < 0 || (!common && at >= 0 && p != at))
                return -1;
            at = at < 0 ? p : common_ancestor(b, at, p);
        }
    }
    return at;
}

/* ---- build ---------------------------------------------------------------------- */

/* A module under its parent, in the order children are listed. */
struct child_key {
    int parent;       /* creation index of the parent */
    size_t first;     /* first node of its subtree */
    int index;        /* its creation index */
};

static int child_key_cmp(const void *pa, const void *pb)
{
    const struct child_key *a = pa, *b = pb;
    if (a->parent != b->parent)
        return a->parent < b->parent ? -1 : 1;
    if (a->first != b->first)
        return a->first < b->first ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

/* The first node of each module's subtree into first[] (creation index), graph order,
 * helpers counted after every other node (SIZE_MAX: the subtree holds no node). */
static void first_nodes(const struct builder *b, size_t *first)
{
    const struct rm_graph *g = b->g;
    size_t nn = g->n_nodes;
    for (size_t m = 0; m < b->n_mods; m++)
        first[m] = SIZE_MAX;
    for (size_t i = 0; i < nn; i++) {
        if (b->place[i] < 0)
            continue;
        size_t key = is_helper(g, (int)i) ? nn + i : i;
        for (int c = b->place[i]; c >= 0 && first[c] > key; c = b->info[c].parent)
            first[c] = key;
    }
}

static void preorder(struct rm_tree *t, struct rm_module *m, size_t *k)
{
    m->index = (int)*k;
    t->modules[(*k)++] = m;
    for (size_t i = 0; i < m->n_children; i++)
        preorder(t, m->children[i], k);
}

/* Give module m (creation index c) its class: the exporter's (dynamo), else its leaf
 * kind or, for a container of a PyTorch-named tree, the block its children match. */
static void classify(struct builder *b, struct rm_module *m, int c)
{
    struct rm_tree *t = b->t;
    const struct bmod *info = &b->info[c];
    unsigned torch_named = (1u << RM_TREE_SRC_SCOPE) | (1u << RM_TREE_SRC_PARAM);
    if (!m->n_children) {
        rm_tree_classify_leaf(t, m);
    } else if (!info->cls || info->cls_bad) {
        bool sig = m->parent ? (torch_named >> m->source & 1) : (t->sources & torch_named) != 0;
        if (sig)
            rm_tree_classify_container(t, m, info->called);
    }
    if (info->cls && !info->cls_bad) {
        /* the class the exporter recorded; a leaf keeps the arguments its nodes give */
        m->qualname = info->cls;
        m->type = class_short(info->cls);
        m->type_known = true;
    }
}

int rm_tree_build(struct rm_tree **out, const struct rm_graph *g, struct rm_error *err)
{
    int rc = RM_ENOMEM;
    struct builder b;
    memset(&b, 0, sizeof b);
    int *remap = NULL, *creation = NULL;
    size_t *first = NULL;
    struct child_key *keys = NULL;
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
    b.place = malloc((nn ? nn : 1) * sizeof *b.place);
    if (!b.place || get_module(&b, "", RM_TREE_SRC_NONE) != 0)
        goto done;
    for (size_t i = 0; i < nn; i++)
        b.place[i] = -1;

    /* 1: dynamo metadata, in graph order, so modules are created in call order */
    for (size_t i = 0; i < nn; i++)
        if (place_dynamo(&b, (int)i))
            goto done;

    /* 2: TorchScript scopes. First every scope path as written, to know which
     * un-suffixed modules exist; then the nodes, in graph order. */
    for (size_t i = 0; i < nn; i++) {
        const char *name = g->nodes[i].proto->name;
        bool ok;
        if (b.place[i] < 0 && name && name[0] == '/') {
            t->scoped = true;
            if (scope_path(&b, name, false, true, &ok, NULL, NULL))
                goto done;
        }
    }
    for (size_t i = 0; i < nn; i++) {
        const char *name = g->nodes[i].proto->name;
        bool ok;
        size_t steps[RM_TREE_MAX_DEPTH + 1];
        int n_steps;
        if (b.place[i] >= 0 || !name || name[0] != '/')
            continue;
        if (scope_path(&b, name, true, false, &ok, steps, &n_steps))
            goto done;
        if (!ok)
            continue;
        /* every component is a module whose forward ran */
        for (int s = 0; s < n_steps; s++) {
            char save = b.cur.s[steps[s]];
            b.cur.s[steps[s]] = '\0';
            int idx = get_module(&b, b.cur.s, RM_TREE_SRC_SCOPE);
            b.cur.s[steps[s]] = save;
            if (idx < 0)
                goto done;
            b.info[idx].called = true;
        }
        if ((b.place[i] = get_module(&b, b.cur.s, RM_TREE_SRC_SCOPE)) < 0)
            goto done;
    }
    if (t->scoped)
        b.info[0].called = true; /* the exporter ran the root's forward */

    /* 3: the parameters a node reads ("layer1.0.conv1.weight", "conv2d_3.w_0") */
    for (size_t i = 0; i < nn; i++) {
        if (b.place[i] >= 0 || is_helper(g, (int)i))
            continue;
        const Onnx__NodeProto *n = g->nodes[i].proto;
        for (size_t s = 0; s < n->n_input && b.place[i] < 0; s++) {
            int v = g->nodes[i].inputs[s];
            if (!rm_tree_is_const(g, v))
                continue;
            if (rm_tree_param_path(g->values[v].name, &b.tmp)) {
                if ((b.place[i] = get_module(&b, b.tmp.s, RM_TREE_SRC_PARAM)) < 0)
                    goto done;
            } else if (b.tmp.oom) {
                goto done;
            }
        }
    }
    /* 4: paddle's layer output names ("relu_3.tmp_0") */
    for (size_t i = 0; i < nn; i++) {
        if (b.place[i] >= 0 || is_helper(g, (int)i) || !g->nodes[i].proto->n_output)
            continue;
        int v = g->nodes[i].outputs[0];
        if (v >= 0 && tensor_layer(g->values[v].name, &b.tmp)) {
            if ((b.place[i] = get_module(&b, b.tmp.s, RM_TREE_SRC_TENSOR)) < 0)
                goto done;
        } else if (b.tmp.oom) {
            goto done;
        }
    }
    /* 5: other exporters' '/'-scoped node names */
    for (size_t i = 0; i < nn; i++) {
        const char *name = g->nodes[i].proto->name;
        if (b.place[i] >= 0 || !name)
            continue;
        if (slash_path(name, &b.tmp)) {
            if ((b.place[i] = get_module(&b, b.tmp.s, RM_TREE_SRC_SLASH)) < 0)
                goto done;
        } else if (b.tmp.oom) {
            goto done;
        }
    }
    /* 6: an op nothing names that only feeds one paddle layer named by its outputs is
     * part of it (the HardSigmoid of a hardswish); graph order reversed, so chains follow
     * their ends */
    for (size_t k = nn; k-- > 0;) {
        if (b.place[k] >= 0 || is_helper(g, (int)k) || is_conv(g, (int)k))
            continue;
        int at = consumers_module(&b, k, false);
        if (at >= 0 && b.mods[at]->source == RM_TREE_SRC_TENSOR)
            b.place[k] = at;
    }
    /* 7: a module of its own for every Conv */
    if (derive_convs(&b))
        goto done;
    /* 8: helpers (Constant, Identity) belong to the module that consumes their output */
    for (int pass = 0; pass < 2; pass++)
        for (size_t k = nn; k-- > 0;) {
            if (!is_helper(g, (int)k))
                continue;
            int at = consumers_module(&b, k, true);
            if (at >= 0)
                b.place[k] = at;
        }

    /* finalize. A module whose subtree holds no node (its only nodes were helpers that
     * went to the module they feed) is dropped. Children are listed by the first node of
     * their subtree: sources that name modules out of graph order (parameters before
     * tensor names) still list them as the model calls them. */
    size_t nm = b.n_mods;
    size_t *cnt = rm_arena_calloc(&t->arena, nm, sizeof *cnt);
    first = malloc(nm * sizeof *first);
    keys = malloc(nm * sizeof *keys);
    if (!cnt || !first || !keys)
        goto done;
    first_nodes(&b, first);
    for (size_t i = 0; i < nn; i++) {
        if (b.place[i] >= 0)
            cnt[b.place[i]]++;
        else
            t->n_unplaced++;
    }
    t->unplaced = rm_arena_alloc(&t->arena, (t->n_unplaced + 1) * sizeof *t->unplaced);
    if (!t->unplaced)
        goto done;
    size_t n_alive = 1, n_keys = 0;
    for (size_t m = 0; m < nm; m++) {
        bool alive = m == 0 || first[m] != SIZE_MAX;
        b.mods[m]->nodes = rm_arena_alloc(&t->arena, (cnt[m] + 1) * sizeof(int));
        if (!b.mods[m]->nodes)
            goto done;
        if (m && alive) {
            b.mods[m]->parent->n_children++;
            keys[n_keys++] = (struct child_key){b.info[m].parent, first[m], (int)m};
            n_alive++;
        }
        if (alive)
            t->sources |= 1u << b.mods[m]->source;
    }
    t->sources &= ~(1u << RM_TREE_SRC_NONE);
    t->n_unplaced = 0;
    for (size_t i = 0; i < nn; i++) {
        if (b.place[i] >= 0) {
            struct rm_module *m = b.mods[b.place[i]];
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
    qsort(keys, n_keys, sizeof *keys, child_key_cmp);
    for (size_t k = 0; k < n_keys; k++) {
        struct rm_module *p = b.mods[keys[k].parent];
        p->children[p->n_children++] = b.mods[keys[k].index];
    }
    t->root = b.mods[0];
    t->n_modules = n_alive;
    t->modules = rm_arena_alloc(&t->arena, n_alive * sizeof *t->modules);
    remap = malloc(nm * sizeof *remap);
    creation = malloc(n_alive * sizeof *creation);
    t->node_module = rm_arena_alloc(&t->arena, (nn + 1) * sizeof *t->node_module);
    if (!t->modules || !remap || !creation || !t->node_module)
        goto done;
    size_t k = 0;
    preorder(t, t->root, &k);
    for (size_t m = 0; m < n_alive; m++) {
        int c = rm_strmap_get(&b.paths, t->modules[m]->path);
        remap[c] = (int)m;
        creation[m] = c;
    }
    for (size_t i = 0; i < nn; i++)
        t->node_module[i] = b.place[i] >= 0 ? remap[b.place[i]] : -1;
    /* reverse preorder: children before their parent */
    for (size_t m = n_alive; m-- > 0;)
        if (t->modules[m]->n_children || t->modules[m]->n_nodes)
            classify(&b, t->modules[m], creation[m]);
    rc = 0;
    *out = t;
    t = NULL;
done:
    if (rc == RM_ENOMEM)
        rm_error_set(err, RM_ENOMEM, "out of memory building the module tree");
    rm_tree_free(t);
    free(b.place);
    free(remap);
    free(creation);
    free(first);
    free(keys);
    free(b.mods);
    free(b.info);
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

const char *rm_tree_source_name(int source)
{
    static const char *const names[RM_TREE_SRC_COUNT] = {
        [RM_TREE_SRC_NONE] = "none",     [RM_TREE_SRC_DYNAMO] = "dynamo",
        [RM_TREE_SRC_SCOPE] = "scope",   [RM_TREE_SRC_PARAM] = "param",
        [RM_TREE_SRC_TENSOR] = "tensor", [RM_TREE_SRC_SLASH] = "slash",
        [RM_TREE_SRC_DERIVED] = "derived",
    };
    return source >= 0 && source < RM_TREE_SRC_COUNT ? names[source] : "none";
}
