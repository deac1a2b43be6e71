/* The checks of `remodel check` that follow onnx's own checker
 * (onnx.checker.check_model(m, full_check=True)): operators against the ONNX operator
 * schemas of the opset the model imports (rm_onnx_schemas.c, generated from the spec),
 * attributes, input/output counts, the form of every tensor, subgraph scoping, the
 * element types onnx's type check propagates, and graph inputs that disagree with the
 * initializer of the same name. The graph index and the model are only read. */
#include "rm_check.h"
#include "rm_onnx_schemas.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reporting -------------------------------------------------------------- */

struct sc {
    const struct rm_graph *g;
    const Onnx__ModelProto *m;
    void (*report)(void *ctx, int warning, const char *msg);
    void *ctx;
    int64_t ir;              /* the model's ir_version */
    size_t n_imports;
    const char **imp_domain; /* opset imports, the last entry of a domain wins (as in onnx) */
    int64_t *imp_version;
    /* problems reported once per domain or op type, with a count */
    struct tally *tallies;
    size_t n_tallies, cap_tallies;
    int64_t tally_overflow[4]; /* nodes of further keys, past MAX_TALLIES, per kind */
    const Onnx__FunctionProto **functions; /* model-local functions by (domain, name) */
    int oom;
};

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void say(struct sc *c, int warning, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    c->report(c->ctx, warning, buf);
}

#define error(c, ...) say(c, 0, __VA_ARGS__)
#define warn(c, ...) say(c, 1, __VA_ARGS__)

/* Problems that many nodes share (a domain not imported, a custom domain) are said
 * once, naming the first node and the count. */
enum tally_kind { T_NOT_IMPORTED, T_CUSTOM_DOMAIN, T_NEWER_OPSET, T_EXPERIMENTAL };

struct tally {
    enum tally_kind kind;
    const char *key;   /* domain or op type (points into the model) */
    char first[200];   /* label of the first node */
    const char *op;    /* its op type */
    int64_t version;
    int limit;         /* newest opset the table knows (T_NEWER_OPSET) */
    int count;
};

/* Distinct domains/op types tallied one by one; more (a hostile file) are only counted,
 * so that the linear search below stays bounded. */
#define MAX_TALLIES 64

static void tally(struct sc *c, enum tally_kind kind, const char *key, const char *label,
                  const char *op, int64_t version, int limit)
{
    for (size_t i = 0; i < c->n_tallies; i++)
        if (c->tallies[i].kind == kind && strcmp(c->tallies[i].key, key) == 0) {
            c->tallies[i].count++;
            return;
        }
    if (c->n_tallies >= MAX_TALLIES) {
        c->tally_overflow[kind]++;
        return;
    }
    if (c->n_tallies == c->cap_tallies) {
        size_t cap = c->cap_tallies ? 2 * c->cap_tallies : 8;
        struct tally *t = realloc(c->tallies, cap * sizeof *t);
        if (!t) {
            c->oom = 1;
            return;
        }
        c->tallies = t;
        c->cap_tallies = cap;
    }
    struct tally *t = &c->tallies[c->n_tallies++];
    t->kind = kind;
    t->key = key;
    snprintf(t->first, sizeof t->first, "%s", label);
    t->op = op;
    t->version = version;
    t->limit = limit;
    t->count = 1;
}

static const char *domain_name(const char *d)
{
    return d && d[0] ? d : "ai.onnx";
}

static void flush_tallies(struct sc *c)
{
    for (size_t i = 0; i < c->n_tallies; i++) {
        const struct tally *t = &c->tallies[i];
        char more[64] = "";
        if (t->count > 1)
            snprintf(more, sizeof more, " and %d more node%s", t->count - 1, t->count > 2 ? "s" : "");
        switch (t->kind) {
        case T_NOT_IMPORTED:
            if (c->m->n_opset_import == 0 && !(c->ir > 0 && c->ir < 3))
                break; /* "no opset_import" is reported once by rm_check.c */
            error(c, "node '%s' (%s)%s: domain '%s' is not in the model's opset_import (add an entry for it)",
                  t->first, t->op, more, t->key);
            break;
        case T_CUSTOM_DOMAIN:
            warn(c, "node '%s' (%s)%s: custom domain '%s' (opset %lld) is not an ONNX domain; its operators are not checked",
                 t->first, t->op, more, t->key, (long long)t->version);
            break;
        case T_NEWER_OPSET:
            warn(c, "node '%s' (%s)%s: %s opset %lld is newer than the operator schemas remodel knows (%s, up to opset %d); its operators are not checked",
                 t->first, t->op, more, domain_name(t->key), (long long)t->version,
                 rm_onnx_schemas_source, t->limit);
            break;
        case T_EXPERIMENTAL:
            warn(c, "node '%s' (%s)%s: %s is a removed experimental ONNX operator; onnx's checker skips it, so does remodel",
                 t->first, t->op, more, t->key);
            break;
        }
    }
    static const char *const what[4] = {"in further domains that are not imported", "in further custom domains",
                                        "in further domains with newer opsets", "of further experimental op types"};
    for (int k = 0; k < 4; k++)
        if (c->tally_overflow[k])
            say(c, k != T_NOT_IMPORTED, "%lld more nodes %s", (long long)c->tally_overflow[k], what[k]);
}

/* ---- small helpers -------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_attr(const void *a, const void *b)
{
    return strcmp((*(const Onnx__AttributeProto *const *)a)->name,
                  (*(const Onnx__AttributeProto *const *)b)->name);
}

static int cmp_function(const void *a, const void *b)
{
    const Onnx__FunctionProto *x = *(const Onnx__FunctionProto *const *)a;
    const Onnx__FunctionProto *y = *(const Onnx__FunctionProto *const *)b;
    int r = strcmp(x->domain ? x->domain : "", y->domain ? y->domain : "");
    return r ? r : strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

/* bsearch: key is {domain, name} */
static int cmp_function_key(const void *key, const void *b)
{
    const char *const *k = key;
    const Onnx__FunctionProto *y = *(const Onnx__FunctionProto *const *)b;
    int r = strcmp(k[0], y->domain ? y->domain : "");
    return r ? r : strcmp(k[1], y->name ? y->name : "");
}

static const char *str_or(const char *s, const char *dflt)
{
    return s && s[0] ? s : dflt;
}

/* A set of strings (pointers into the model), open addressing. */
struct strset {
    const char **slot;
    size_t cap, n;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int strset_has(const struct strset *s, const char *k)
{
    if (!s->cap)
        return 0;
    for (size_t i = hash_str(k) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->slot[i])
            return 0;
        if (strcmp(s->slot[i], k) == 0)
            return 1;
    }
}

/* Add k; returns 1 when it was new, 0 when present, -1 out of memory. */
static int strset_add(struct strset *s, const char *k)
{
    if (2 * (s->n + 1) > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        const char **slot = calloc(cap, sizeof *slot);
        if (!slot)
            return -1;
        for (size_t i = 0; i < s->cap; i++)
            if (s->slot[i]) {
                size_t j = hash_str(s->slot[i]) & (cap - 1);
                while (slot[j])
                    j = (j + 1) & (cap - 1);
                slot[j] = s->slot[i];
            }
        free(s->slot);
        s->slot = slot;
        s->cap = cap;
    }
    size_t i = hash_str(k) & (s->cap - 1);
    for (; s->slot[i]; i = (i + 1) & (s->cap - 1))
        if (strcmp(s->slot[i], k) == 0)
            return 0;
    s->slot[i] = k;
    s->n++;
    return 1;
}

static void strset_free(struct strset *s)
{
    free(s->slot);
    memset(s, 0, sizeof *s);
}

/* Names visible in a graph: its own, then its enclosing graphs' (lexical scope). */
struct scope {
    struct strset names;
    const struct scope *parent;
    const struct rm_graph *g; /* the main graph's index (outermost scope), else NULL */
    size_t main_node;         /* main graph: names produced before this node are visible */
};

static int scope_has(const struct scope *s, const char *name)
{
    for (; s; s = s->parent) {
        if (strset_has(&s->names, name))
            return 1;
        if (s->g) {
            int v = rm_graph_find(s->g, name);
            if (v >= 0) {
                const struct rm_value *val = &s->g->values[v];
                if (val->init >= 0 || val->input >= 0 ||
                    (val->producer >= 0 && (size_t)val->producer < s->main_node))
                    return 1;
            }
        }
    }
    return 0;
}

/* ---- element types ------------------------------------------------------------ */

static const char *onnx_type_name(int32_t t)
{
    switch (t) {
    case 1: return "float";
    case 10: return "float16";
    case 11: return "double";
    default: return rm_dtype_name(t);
    }
}

/* "float, double, int64" for a type mask. */
static void mask_names(uint32_t mask, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int t = 1; t <= RM_ONNX_MAX_ELEM_TYPE && k < n; t++)
        if (mask >> t & 1)
            k += (size_t)snprintf(buf + k, n - k, "%s%s", k ? ", " : "", onnx_type_name(t));
    if ((mask & RM_TYPES_NON_TENSOR) && k < n)
        snprintf(buf + k, n - k, "%snon-tensor types", k ? ", " : "");
}

/* ---- tensors (onnx checker's check_tensor) ----------------------------------- */

/* The typed field values of dtype go in: 'f' float_data, 'd' double_data, 'i'
 * int32_data, 'l' int64_data, 'u' uint64_data, 's' string_data; 0 unknown. */
static char dtype_field(int32_t dt, int64_t ir)
{
    switch (dt) {
    case 1: case 14: return 'f';
    case 11: case 15: return 'd';
    case 2: case 3: case 4: case 5: case 6: case 9: case 10: case 16: return 'i';
    case 7: return 'l';
    case 12: case 13: return 'u';
    case 8: return 's';
    default:
        /* float8 (IR 9), 4-bit types (IR 10), float4/float8e8m0 (IR 11) */
        if (dt >= 17 && dt <= 24 && ir >= (dt <= 20 ? 9 : dt <= 22 ? 10 : 11))
            return 'i';
        return 0;
    }
}

static const char *field_name(char f)
{
    switch (f) {
    case 'f': return "float_data";
    case 'd': return "double_data";
    case 'i': return "int32_data";
    case 'l': return "int64_data";
    case 'u': return "uint64_data";
    case 's': return "string_data";
    case 'r': return "raw_data";
    default: return "?";
    }
}

/* onnx's form rules for a tensor: a defined, known data type; exactly one value field
 * (none for 0 elements, none but a location for external data); the field its type
 * uses. with_size: also the size check of rm_tensor_check (done by rm_check.c for
 * main-graph initializers and Constant values). where: "initializer 'w'", ... */
static void check_tensor(struct sc *c, const Onnx__TensorProto *t, const char *where, int with_size,
                         int with_type)
{
    if (with_type && (!t->has_data_type || t->data_type == 0)) {
        error(c, "%s: data_type missing (UNDEFINED is not allowed)", where);
        return;
    }
    if (!t->has_data_type || t->data_type == 0)
        return; /* reported by rm_check.c */
    char fields[8];
    int nf = 0;
    if (t->n_float_data) fields[nf++] = 'f';
    if (t->n_int32_data) fields[nf++] = 'i';
    if (t->n_string_data) fields[nf++] = 's';
    if (t->n_int64_data) fields[nf++] = 'l';
    if (t->has_raw_data && t->raw_data.len) fields[nf++] = 'r';
    if (t->n_double_data) fields[nf++] = 'd';
    if (t->n_uint64_data) fields[nf++] = 'u';
    if (rm_tensor_is_external(t)) {
        if (nf)
            error(c, "%s: stored externally but also holds %s", where, field_name(fields[0]));
        int loc = 0;
        for (size_t i = 0; i < t->n_external_data; i++)
            if (t->external_data[i]->key && strcmp(t->external_data[i]->key, "location") == 0 &&
                t->external_data[i]->value)
                loc = 1;
        if (!loc)
            error(c, "%s: stored externally but external_data has no 'location'", where);
        return;
    }
    int64_t nelem;
    if (rm_dims_numel(t->dims, t->n_dims, &nelem) != 0) {
        struct rm_error err; /* negative dims or an overflowing product */
        if (with_size && rm_tensor_check(t, &err))
            error(c, "%s: %s", where, err.msg);
        return; /* without with_size, rm_check.c reports it */
    }
    char want = dtype_field(t->data_type, c->ir);
    if (nelem == 0 && nf) {
        error(c, "%s: has no elements (dims contain 0) but holds data in %s", where, field_name(fields[0]));
        return;
    }
    if (nelem != 0 && nf > 1) {
        error(c, "%s: holds data in both %s and %s; a tensor has exactly one value field", where,
              field_name(fields[0]), field_name(fields[1]));
        return;
    }
    if (nf == 1 && fields[0] == 'r') {
        if (t->data_type == 8)
            error(c, "%s: string data in raw_data; strings go in string_data", where);
    } else if (!want) {
        if (!with_size)
            return; /* main-graph initializer: rm_check.c reports the unknown type */
        if (t->data_type >= 17 && t->data_type <= 24)
            error(c, "%s: data type %s (%d) needs a newer IR version than %lld (or raw_data)", where,
                  rm_dtype_name(t->data_type), (int)t->data_type, (long long)c->ir);
        else
            error(c, "%s: unknown data type %d", where, (int)t->data_type);
        return;
    } else if (nf == 1 && fields[0] != want) {
        error(c, "%s: %s values stored in %s; this type goes in %s (or raw_data)", where,
              rm_dtype_name(t->data_type), field_name(fields[0]), field_name(want));
        return;
    } else if (nf == 0 && nelem != 0 && !with_size) {
        return; /* the size check reports "holds 0 values" */
    }
    if (with_size) {
        struct rm_error err;
        if (rm_tensor_check(t, &err))
            error(c, "%s: %s", where, err.msg);
    }
}

static void check_sparse(struct sc *c, const Onnx__SparseTensorProto *s, const char *where)
{
    char w[512];
    if (!s->values) {
        error(c, "%s: sparse tensor without values", where);
        return;
    }
    snprintf(w, sizeof w, "%s (values)", where);
    check_tensor(c, s->values, w, 1, 1);
    if (s->indices) {
        snprintf(w, sizeof w, "%s (indices)", where);
        check_tensor(c, s->indices, w, 1, 1);
    }
    if (s->values->n_dims != 1)
        error(c, "%s: sparse tensor values must have rank 1, not %zu", where, s->values->n_dims);
    if (s->n_dims == 0)
        error(c, "%s: sparse tensor has no dims", where);
}

/* ---- graphs, nodes, attributes ---------------------------------------------------- */

static void check_graph(struct sc *c, const Onnx__GraphProto *gp, const struct scope *parent,
                        const char *where, int depth);

/* Which value field an attribute holds, as an AttributeType. */
static int attr_fields(const Onnx__AttributeProto *a, int *types, int max)
{
    int n = 0;
#define FIELD(cond, t) do { if ((cond) && n < max) types[n++] = (t); } while (0)
    FIELD(a->has_f, 1);
    FIELD(a->has_i, 2);
    FIELD(a->has_s, 3);
    FIELD(a->t != NULL, 4);
    FIELD(a->g != NULL, 5);
    FIELD(a->sparse_tensor != NULL, 11);
    FIELD(a->tp != NULL, 13);
    FIELD(a->n_floats > 0, 6);
    FIELD(a->n_ints > 0, 7);
    FIELD(a->n_strings > 0, 8);
    FIELD(a->n_tensors > 0, 9);
    FIELD(a->n_graphs > 0, 10);
    FIELD(a->n_sparse_tensors > 0, 12);
    FIELD(a->n_type_protos > 0, 14);
#undef FIELD
    return n;
}

static const char *attr_type_name(int t)
{
    static const char *names[] = {"UNDEFINED", "FLOAT", "INT", "STRING", "TENSOR", "GRAPH",
                                  "FLOATS", "INTS", "STRINGS", "TENSORS", "GRAPHS",
                                  "SPARSE_TENSOR", "SPARSE_TENSORS", "TYPE_PROTO", "TYPE_PROTOS"};
    return t >= 0 && t <= 14 ? names[t] : "unknown";
}

/* onnx's check_attribute: a name, a type (IR >= 2) that matches the one value field
 * set; then the tensors and graphs inside. */
static void check_attribute(struct sc *c, const Onnx__AttributeProto *a, const char *node,
                            const struct scope *scope, int main_graph, int depth)
{
    const char *name = str_or(a->name, NULL);
    if (!name) {
        error(c, "node '%s': an attribute has no name", node);
        return;
    }
    int types[16];
    int nf = attr_fields(a, types, 16);
    int mismatch = 0;
    if (c->ir >= 2 && !a->has_type)
        error(c, "node '%s': attribute '%s' has no type", node, name);
    else if (a->has_type)
        for (int i = 0; i < nf && !mismatch; i++)
            if (types[i] != (int)a->type) {
                error(c, "node '%s': attribute '%s' has type %s, but its value is set as %s", node, name,
                      attr_type_name((int)a->type), attr_type_name(types[i]));
                mismatch = 1;
            }
    if (nf > 1 && !mismatch)
        error(c, "node '%s': attribute '%s' holds more than one value (%s and %s)", node, name,
              attr_type_name(types[0]), attr_type_name(types[1]));
    if (!main_graph && a->ref_attr_name && a->ref_attr_name[0] && nf)
        error(c, "node '%s': attribute '%s' refers to '%s' of its parent and must hold no value",
              node, name, a->ref_attr_name);

    char where[512];
    if (a->t) {
        snprintf(where, sizeof where, "node '%s': attribute '%s'", node, name);
        /* a Constant's main-graph value is size-checked by rm_check.c */
        check_tensor(c, a->t, where, !(main_graph && strcmp(name, "value") == 0), 1);
    }
    for (size_t i = 0; i < a->n_tensors; i++) {
        snprintf(where, sizeof where, "node '%s': attribute '%s'[%zu]", node, name, i);
        check_tensor(c, a->tensors[i], where, 1, 1);
    }
    if (a->sparse_tensor) {
        snprintf(where, sizeof where, "node '%s': attribute '%s'", node, name);
        check_sparse(c, a->sparse_tensor, where);
    }
    for (size_t i = 0; i < a->n_sparse_tensors; i++) {
        snprintf(where, sizeof where, "node '%s': attribute '%s'[%zu]", node, name, i);
        check_sparse(c, a->sparse_tensors[i], where);
    }
    if (a->g) {
        snprintf(where, sizeof where, "%s/%s", node, name);
        check_graph(c, a->g, scope, where, depth + 1);
    }
    for (size_t i = 0; i < a->n_graphs; i++) {
        snprintf(where, sizeof where, "%s/%s[%zu]", node, name, i);
        check_graph(c, a->graphs[i], scope, where, depth + 1);
    }
}

static int is_experimental(const char *op)
{
    for (size_t i = 0; i < RM_ONNX_N_EXPERIMENTAL; i++)
        if (strcmp(op, rm_onnx_experimental[i]) == 0)
            return 1;
    return 0;
}

/* Domains of other runtimes and converters, neither ONNX's nor unknown: not checked,
 * not warned about. */
static const char *const known_domains[] = {
    "com.microsoft", "com.microsoft.experimental", "com.microsoft.nchwc",
    "com.microsoft.mlfeaturizers", "com.microsoft.dml", "com.ms.internal.nhwc",
    "ai.onnx.contrib", "org.pytorch.aten", "com.intel.ai", "com.xilinx", "org.openvinotoolkit",
};

static int is_known_domain(const char *d)
{
    for (size_t i = 0; i < sizeof known_domains / sizeof *known_domains; i++)
        if (strcmp(d, known_domains[i]) == 0)
            return 1;
    return 0;
}

static int domain_index(const char *d)
{
    for (int i = 0; i < RM_ONNX_N_DOMAINS; i++)
        if (strcmp(d, rm_onnx_domains[i]) == 0)
            return i;
    return -1;
}

/* Import entry of domain d (exact name, as onnx's checker looks it up), or -1. */
static int import_of(const struct sc *c, const char *d)
{
    for (size_t i = 0; i < c->n_imports; i++)
        if (strcmp(c->imp_domain[i], d) == 0)
            return (int)i;
    return -1;
}

static int schema_cmp(int dom, const char *name, const struct rm_onnx_schema *s)
{
    if (dom != s->domain)
        return dom < s->domain ? -1 : 1;
    return strcmp(name, s->name);
}

/* The schema of op in domain dom at opset version: the newest since_version <= it.
 * *first_since: the op's oldest version (0 when the table has no such op). */
static const struct rm_onnx_schema *find_schema(int dom, const char *op, int64_t version, int *first_since)
{
    size_t lo = 0, hi = rm_onnx_n_schemas;
    while (lo < hi) { /* first entry >= (dom, op) */
        size_t mid = lo + (hi - lo) / 2;
        if (schema_cmp(dom, op, &rm_onnx_schemas[mid]) > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *first_since = 0;
    const struct rm_onnx_schema *best = NULL;
    for (size_t i = lo; i < rm_onnx_n_schemas && schema_cmp(dom, op, &rm_onnx_schemas[i]) == 0; i++) {
        if (!*first_since)
            *first_since = rm_onnx_schemas[i].since;
        if (rm_onnx_schemas[i].since <= version)
            best = &rm_onnx_schemas[i];
    }
    return best;
}

static const struct rm_onnx_attr *find_attr(const struct rm_onnx_schema *s, const char *name)
{
    size_t lo = 0, hi = s->n_attrs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(name, s->attrs[mid].name);
        if (r == 0)
            return &s->attrs[mid];
        if (r > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* "2 to 3", "1 or 5", "at least 1", "exactly 1" for an accepted count. */
static void counts_text(uint32_t mask, int32_t lo, int32_t hi, char *buf, size_t n)
{
    uint32_t range = 0;
    for (int k = 0; k < 32; k++)
        if (k >= lo && k <= hi)
            range |= 1u << k;
    if (mask != range) {
        size_t len = 0;
        int bits[32], nb = 0;
        for (int k = 0; k < 32; k++)
            if (mask >> k & 1)
                bits[nb++] = k;
        buf[0] = '\0';
        for (int i = 0; i < nb && len < n; i++)
            len += (size_t)snprintf(buf + len, n - len, "%s%d", i == 0 ? "" : i == nb - 1 ? " or " : ", ",
                                    bits[i]);
    } else if (lo == hi) {
        snprintf(buf, n, "exactly %d", (int)lo);
    } else if (hi >= 0x7fffffff) {
        snprintf(buf, n, "at least %d", (int)lo);
    } else {
        snprintf(buf, n, "%d to %d", (int)lo, (int)hi);
    }
}

static int count_ok(uint32_t mask, int32_t lo, int32_t hi, size_t k)
{
    if (k < 32)
        return (int)(mask >> k & 1);
    return (int64_t)k >= lo && (int64_t)k <= hi;
}

/* The value field of an attribute of schema type t is set (onnx's "holds no value"). */
static int attr_present(const Onnx__AttributeProto *a, int t)
{
    switch (t) {
    case 1: return a->has_f;
    case 2: return a->has_i;
    case 3: return a->has_s;
    case 4: return a->t != NULL;
    case 5: return a->g != NULL;
    case 11: return a->sparse_tensor != NULL;
    case 13: return a->tp != NULL;
    case 6: return a->n_floats > 0;
    case 7: return a->n_ints > 0;
    case 8: return a->n_strings > 0;
    case 9: return a->n_tensors > 0;
    case 10: return a->n_graphs > 0;
    case 14: return a->n_type_protos > 0;
    default: return 1;
    }
}

/* onnx's OpSchema::Verify: counts, required inputs/outputs, attributes. */
static void verify(struct sc *c, const struct rm_onnx_schema *s, const Onnx__NodeProto *n, const char *node)
{
    const char *op = n->op_type;
    char text[160];
    if (!count_ok(s->in_counts, s->min_in, s->max_in, n->n_input)) {
        counts_text(s->in_counts, s->min_in, s->max_in, text, sizeof text);
        error(c, "node '%s' (%s): has %zu input%s; %s-%d takes %s", node, op, n->n_input,
              n->n_input == 1 ? "" : "s", op, s->since, text);
    }
    if (!count_ok(s->out_counts, s->min_out, s->max_out, n->n_output)) {
        counts_text(s->out_counts, s->min_out, s->max_out, text, sizeof text);
        error(c, "node '%s' (%s): has %zu output%s; %s-%d takes %s", node, op, n->n_output,
              n->n_output == 1 ? "" : "s", op, s->since, text);
    }
    for (size_t k = 0; k < n->n_input && k < s->n_inputs; k++)
        if ((!n->input[k] || !n->input[k][0]) && s->inputs[k].option == RM_PARAM_SINGLE)
            error(c, "node '%s' (%s): input %zu (%s) is required but given as ''", node, op, k,
                  s->inputs[k].name);
    for (size_t k = 0; k < n->n_output && k < s->n_outputs; k++)
        if ((!n->output[k] || !n->output[k][0]) && s->outputs[k].option == RM_PARAM_SINGLE)
            error(c, "node '%s' (%s): output %zu (%s) is required but given as ''", node, op, k,
                  s->outputs[k].name);

    /* attributes sorted by name, so that duplicates are found and each name is judged
     * once without a hostile node making this quadratic */
    const Onnx__AttributeProto **attrs = malloc((n->n_attribute ? n->n_attribute : 1) * sizeof *attrs);
    if (!attrs) {
        c->oom = 1;
        return;
    }
    size_t na = 0;
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && n->attribute[i]->name[0]) /* else reported by check_attribute */
            attrs[na++] = n->attribute[i];
    qsort(attrs, na, sizeof *attrs, cmp_attr);
    for (size_t i = 0; i < na; i++) {
        const Onnx__AttributeProto *a = attrs[i];
        if (i > 0 && strcmp(a->name, attrs[i - 1]->name) == 0) {
            if (i < 2 || strcmp(a->name, attrs[i - 2]->name) != 0)
                error(c, "node '%s' (%s): attribute '%s' appears more than once", node, op, a->name);
            continue;
        }
        const struct rm_onnx_attr *sa = find_attr(s, a->name);
        if (!sa) {
            if (!s->unchecked_attrs && strncmp(a->name, "__", 2) != 0)
                error(c, "node '%s' (%s): %s-%d has no attribute '%s'", node, op, op, s->since, a->name);
            continue;
        }
        if (!a->has_type) {
            if (c->ir < 2) /* else reported by check_attribute */
                error(c, "node '%s' (%s): attribute '%s' has no type; %s-%d wants %s", node, op, a->name,
                      op, s->since, attr_type_name(sa->type));
            continue;
        }
        if ((int)a->type != sa->type) {
            error(c, "node '%s' (%s): attribute '%s' is %s; %s-%d wants %s", node, op, a->name,
                  attr_type_name((int)a->type), op, s->since, attr_type_name(sa->type));
            continue;
        }
        if (a->ref_attr_name && a->ref_attr_name[0])
            continue;
        if (sa->type >= 4 && !attr_present(a, sa->type)) /* scalars: no field set is caught above */
            error(c, "node '%s' (%s): attribute '%s' (%s) holds no value", node, op, a->name,
                  attr_type_name(sa->type));
    }
    free(attrs);
    for (size_t k = 0; k < s->n_attrs; k++)
        if (s->attrs[k].required && !rm_node_attr(n, s->attrs[k].name))
            error(c, "node '%s' (%s): required attribute '%s' (%s) is missing", node, op, s->attrs[k].name,
                  attr_type_name(s->attrs[k].type));
}

bool rm_node_malformed(const Onnx__NodeProto *n, int64_t opset, char *why, size_t why_size)
{
    const char *op = n->op_type;
    if (!op || (n->domain && n->domain[0]) || opset > rm_onnx_domain_max_version[0])
        return false;
    int first;
    const struct rm_onnx_schema *s = find_schema(0, op, opset, &first);
    if (!s || s->deprecated)
        return false;
    char text[160];
    if (!count_ok(s->in_counts, s->min_in, s->max_in, n->n_input) ||
        !count_ok(s->out_counts, s->min_out, s->max_out, n->n_output)) {
        bool in = !count_ok(s->in_counts, s->min_in, s->max_in, n->n_input);
        size_t k = in ? n->n_input : n->n_output;
        if (in)
            counts_text(s->in_counts, s->min_in, s->max_in, text, sizeof text);
        else
            counts_text(s->out_counts, s->min_out, s->max_out, text, sizeof text);
        snprintf(why, why_size, "has %zu %s%s; %s-%d takes %s", k, in ? "input" : "output", k == 1 ? "" : "s",
                 op, s->since, text);
        return true;
    }
    /* a value every kernel reads: a required input, or one of a variadic list (onnx's
     * checker lets an empty name through there; nothing can run it) */
    for (size_t k = 0; k < n->n_input && s->n_inputs; k++) {
        const struct rm_onnx_param *pp = &s->inputs[k < s->n_inputs ? k : (size_t)s->n_inputs - 1];
        if ((!n->input[k] || !n->input[k][0]) && pp->option != RM_PARAM_OPTIONAL) {
            snprintf(why, why_size, "input %zu (%s) is required but given as ''", k, pp->name);
            return true;
        }
    }
    for (size_t i = 0; i < n->n_attribute; i++) {
        const Onnx__AttributeProto *a = n->attribute[i];
        if (!a->name)
            continue;
        /* given twice: pairwise for the few attributes a node has; a hostile node with
         * thousands is judged by its first 64 (the rest are read by no rule either) */
        for (size_t j = 0; j < i && j < 64; j++)
            if (n->attribute[j]->name && strcmp(n->attribute[j]->name, a->name) == 0) {
                snprintf(why, why_size, "attribute '%s' is given more than once", a->name);
                return true;
            }
        const struct rm_onnx_attr *sa = find_attr(s, a->name);
        if (!sa || (a->ref_attr_name && a->ref_attr_name[0]))
            continue; /* an attribute nothing reads (check reports unknown ones) */
        int types[16], nf = attr_fields(a, types, 16);
        int t = a->has_type ? (int)a->type : nf ? types[0] : sa->type;
        for (int k = 0; k < nf && t == sa->type; k++)
            if (types[k] != t)
                t = types[k];
        if (t != sa->type) {
            snprintf(why, why_size, "attribute '%s' is %s; %s-%d wants %s", a->name, attr_type_name(t), op,
                     s->since, attr_type_name(sa->type));
            return true;
        }
        if (sa->type >= 4 && !attr_present(a, sa->type)) { /* a typed scalar without its field is 0 */
            snprintf(why, why_size, "attribute '%s' (%s) holds no value", a->name, attr_type_name(sa->type));
            return true;
        }
    }
    return false;
}

/* onnx's check_node, for a node of any graph. Returns the schema it was verified
 * against, or NULL (no schema: a custom domain, a newer opset, an error). *no_schema
 * is set when onnx's shape inference would find no schema for it either (after such
 * a node it stops reporting inference errors). */
static const struct rm_onnx_schema *check_node(struct sc *c, const Onnx__NodeProto *n, const char *node,
                                                const struct scope *scope, int main_graph, int depth,
                                                int *no_schema)
{
    *no_schema = 0;
    const char *op = n->op_type;
    if (!op || !op[0]) {
        if (!main_graph) /* main graph: reported by rm_check.c */
            error(c, "node '%s': op_type missing", node);
        *no_schema = 1;
        return NULL;
    }
    if (n->n_input == 0 && n->n_output == 0)
        error(c, "node '%s' (%s): has neither inputs nor outputs", node, op);
    if (is_experimental(op)) {
        tally(c, T_EXPERIMENTAL, op, node, op, 0, 0);
        *no_schema = 1;
        return NULL;
    }
    const char *domain = n->domain ? n->domain : "";
    int imp = import_of(c, domain);
    if (imp < 0) {
        tally(c, T_NOT_IMPORTED, domain, node, op, 0, 0);
        *no_schema = 1;
        return NULL;
    }
    int64_t version = c->imp_version[imp];
    for (size_t i = 0; i < n->n_attribute; i++)
        check_attribute(c, n->attribute[i], node, scope, main_graph, depth);

    if (strcmp(domain, "ai.onnx") == 0) {
        error(c, "node '%s' (%s): domain written as 'ai.onnx'; onnx's checker finds ONNX operators only under the empty domain '' (write domain '')",
              node, op);
        *no_schema = 1;
        return NULL;
    }
    int dom = domain_index(domain);
    if (dom < 0) {
        const char *key[2] = {domain, op};
        int local = c->functions && bsearch(key, c->functions, c->m->n_functions, sizeof *c->functions,
                                            cmp_function_key) != NULL;
        if (!local && !is_known_domain(domain))
            tally(c, T_CUSTOM_DOMAIN, domain, node, op, version, 0);
        *no_schema = !local;
        return NULL;
    }
    if (version > rm_onnx_domain_max_version[dom]) {
        tally(c, T_NEWER_OPSET, domain, node, op, version, rm_onnx_domain_max_version[dom]);
        *no_schema = 1;
        return NULL;
    }
    int first = 0;
    const struct rm_onnx_schema *s = find_schema(dom, op, version, &first);
    if (!s) {
        *no_schema = 1;
        if (dom == 2) /* ai.onnx.preview.training: onnx skips ops it has no schema for */
            return NULL;
        if (first)
            error(c, "node '%s' (%s): %s first appears in %s opset %d; the model imports opset %lld",
                  node, op, op, domain_name(domain), first, (long long)version);
        else
            error(c, "node '%s' (%s): no operator %s in %s (opset %lld)", node, op, op,
                  domain_name(domain), (long long)version);
        return NULL;
    }
    if (s->deprecated) {
        error(c, "node '%s' (%s): %s is deprecated from %s opset %d on (the model imports opset %lld)%s%s",
              node, op, op, domain_name(domain), s->since, (long long)version,
              s->replaced_by ? "; use " : "", s->replaced_by ? s->replaced_by : "");
        return NULL;
    }
    verify(c, s, n, node);
    return s;
}

/* Graph inputs and outputs carry a type; in the main graph a tensor type has an
 * element type and a shape (onnx's check_value_info). Negative dims: a warning. */
static void check_value_info(struct sc *c, const Onnx__ValueInfoProto *vi, const char *what, size_t idx,
                             int main_graph, const char *where)
{
    if (!vi->name || !vi->name[0]) {
        error(c, "%s%s%s #%zu has no name", where, where[0] ? ": " : "", what, idx);
        return;
    }
    const Onnx__TypeProto *t = vi->type;
    if (t && t->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE && t->tensor_type->shape) {
        const Onnx__TensorShapeProto *sh = t->tensor_type->shape;
        for (size_t d = 0; d < sh->n_dim; d++)
            if (sh->dim[d]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
                sh->dim[d]->dim_value < 0) {
                warn(c, "%s%s%s '%s': dimension %zu is %lld; a size is >= 0 and an unknown size is written as a name (dim_param)",
                     where, where[0] ? ": " : "", what, vi->name, d, (long long)sh->dim[d]->dim_value);
                break;
            }
    }
    if (!main_graph)
        return;
    if (!t) {
        error(c, "%s '%s' has no type", what, vi->name);
        return;
    }
    switch (t->value_case) {
    case ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE:
        if (!t->tensor_type->has_elem_type)
            error(c, "%s '%s': tensor type without elem_type", what, vi->name);
        if (!t->tensor_type->shape)
            error(c, "%s '%s': tensor type without shape (onnx's checker requires one; use dim_param names for unknown sizes)",
                  what, vi->name);
        break;
    case ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE:
        if (!t->sparse_tensor_type->has_elem_type)
            error(c, "%s '%s': sparse tensor type without elem_type", what, vi->name);
        if (!t->sparse_tensor_type->shape)
            error(c, "%s '%s': sparse tensor type without shape", what, vi->name);
        break;
    case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE:
        if (!t->sequence_type->elem_type)
            error(c, "%s '%s': sequence type without elem_type", what, vi->name);
        break;
    case ONNX__TYPE_PROTO__VALUE_MAP_TYPE:
        if (!t->map_type->has_key_type || !t->map_type->value_type)
            error(c, "%s '%s': map type without key_type or value_type", what, vi->name);
        break;
    case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE:
        break;
    default:
        error(c, "%s '%s' has no type", what, vi->name);
        break;
    }
}

/* A subgraph (attribute of a node): its own inputs, initializers and nodes, which may
 * read names of the enclosing graphs but not redefine them. */
static void check_graph(struct sc *c, const Onnx__GraphProto *gp, const struct scope *parent,
                        const char *where, int depth)
{
    if (depth > RM_MAX_NESTING)
        return; /* the loader refuses deeper nesting; never recurse unboundedly */
    if (!gp->name || !gp->name[0])
        error(c, "subgraph '%s': name missing", where);
    struct scope sc = {{0}, parent, NULL, 0};
    for (size_t i = 0; i < gp->n_input; i++) {
        check_value_info(c, gp->input[i], "input", i, 0, where);
        if (gp->input[i]->name && gp->input[i]->name[0] && strset_add(&sc.names, gp->input[i]->name) == 0)
            error(c, "subgraph '%s': input '%s' is declared twice", where, gp->input[i]->name);
    }
    for (size_t i = 0; i < gp->n_output; i++)
        check_value_info(c, gp->output[i], "output", i, 0, where);
    char w[512];
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *t = gp->initializer[i];
        if (!t->name || !t->name[0]) {
            error(c, "subgraph '%s': initializer #%zu has no name", where, i);
            continue;
        }
        snprintf(w, sizeof w, "subgraph '%s': initializer '%s'", where, t->name);
        check_tensor(c, t, w, 1, 1);
        if (strset_add(&sc.names, t->name) < 0)
            c->oom = 1;
    }
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *n = gp->node[i];
        char label[400];
        if (n->name && n->name[0])
            snprintf(label, sizeof label, "%s/%s", where, n->name);
        else
            snprintf(label, sizeof label, "%s/%s #%zu", where, n->op_type ? n->op_type : "node", i);
        for (size_t k = 0; k < n->n_input; k++)
            if (n->input[k] && n->input[k][0] && !scope_has(&sc, n->input[k]))
                error(c, "node '%s' (%s): input '%s' is not produced by an earlier node, a subgraph input or initializer, or an enclosing graph",
                      label, str_or(n->op_type, "?"), n->input[k]);
        int no_schema;
        check_node(c, n, label, &sc, 0, depth, &no_schema);
        for (size_t k = 0; k < n->n_output; k++) {
            const char *o = n->output[k];
            if (!o || !o[0])
                continue;
            if (scope_has(&sc, o))
                error(c, "node '%s' (%s): output '%s' is already defined in this subgraph or an enclosing graph",
                      label, str_or(n->op_type, "?"), o);
            else if (strset_add(&sc.names, o) < 0)
                c->oom = 1;
        }
    }
    strset_free(&sc.names);
}

/* ---- types along the main graph (onnx's shape inference with check_type) ---------- */

/* Declared type of a name, as onnx's shape inference takes it: graph outputs over
 * graph inputs over value_info, whichever carries a type. */
static void declared_types(const struct rm_graph *g, const Onnx__TypeProto **decl, const char **src)
{
    const Onnx__GraphProto *gp = g->proto;
    for (size_t i = 0; i < gp->n_value_info; i++) {
        int v = gp->value_info[i]->name ? rm_graph_find(g, gp->value_info[i]->name) : -1;
        if (v >= 0 && gp->value_info[i]->type) {
            decl[v] = gp->value_info[i]->type;
            src[v] = "value_info";
        }
    }
    for (size_t i = 0; i < gp->n_input; i++) {
        int v = gp->input[i]->name ? rm_graph_find(g, gp->input[i]->name) : -1;
        if (v >= 0 && gp->input[i]->type) {
            decl[v] = gp->input[i]->type;
            src[v] = "graph input";
        }
    }
    for (size_t i = 0; i < gp->n_output; i++) {
        int v = gp->output[i]->name ? rm_graph_find(g, gp->output[i]->name) : -1;
        if (v >= 0 && gp->output[i]->type) {
            decl[v] = gp->output[i]->type;
            src[v] = "graph output";
        }
    }
}

static const char *type_case_name(const Onnx__TypeProto *t)
{
    switch (t->value_case) {
    case ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE: return "tensor";
    case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE: return "sequence";
    case ONNX__TYPE_PROTO__VALUE_MAP_TYPE: return "map";
    case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE: return "optional";
    case ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE: return "sparse tensor";
    default: return "untyped";
    }
}

static void dims_text(const int64_t *dims, size_t n, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (size_t i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)dims[i]);
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
}

static void shape_text(const Onnx__TensorShapeProto *sh, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (size_t i = 0; i < sh->n_dim && k < cap; i++) {
        const Onnx__TensorShapeProto__Dimension *d = sh->dim[i];
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
            k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)d->dim_value);
        else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM)
            k += (size_t)snprintf(buf + k, cap - k, "%s%s", i ? ", " : "", d->dim_param);
        else
            k += (size_t)snprintf(buf + k, cap - k, "%s?", i ? ", " : "");
    }
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
}

/* An initializer against the type declared for its name (a graph input under
 * keep_initializers_as_inputs, a value_info or a graph output): same element type,
 * same rank, equal fixed dims. */
static int check_initializer_decl(struct sc *c, const Onnx__TensorProto *t, const Onnx__TypeProto *d,
                                  const char *src)
{
    if (d->value_case == ONNX__TYPE_PROTO__VALUE__NOT_SET)
        return 0;
    if (d->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) {
        error(c, "%s '%s' is declared a %s, but its initializer is a tensor", src, t->name, type_case_name(d));
        return 1;
    }
    const Onnx__TypeProto__Tensor *tt = d->tensor_type;
    const char *why = strcmp(src, "graph input") == 0
                          ? " (a graph input that names an initializer, as keep_initializers_as_inputs writes it, must match it; onnxruntime refuses the model)"
                          : "";
    char a[256], b[256];
    if (tt->has_elem_type && tt->elem_type != 0 && t->has_data_type && t->data_type != 0 &&
        tt->elem_type != t->data_type) {
        error(c, "%s '%s' is declared %s, but its initializer is %s%s", src, t->name,
              onnx_type_name(tt->elem_type), onnx_type_name(t->data_type), why);
        return 1;
    }
    if (!tt->shape)
        return 0;
    int bad = tt->shape->n_dim != t->n_dims;
    for (size_t i = 0; !bad && i < t->n_dims; i++) {
        const Onnx__TensorShapeProto__Dimension *dm = tt->shape->dim[i];
        bad = dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && dm->dim_value != t->dims[i];
    }
    if (bad) {
        shape_text(tt->shape, a, sizeof a);
        dims_text(t->dims, t->n_dims, b, sizeof b);
        error(c, "%s '%s' is declared with shape %s, but its initializer has shape %s%s", src, t->name, a,
              b, why);
    }
    return bad;
}

/* Element type in a declared type: > 0 known, 0 a tensor with no element type,
 * -1 not a tensor or no type. */
static int32_t decl_elem(const Onnx__TypeProto *d)
{
    if (!d || d->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        return -1;
    return d->tensor_type->has_elem_type ? d->tensor_type->elem_type : 0;
}

/* Integer attribute name of n as an element type; dflt when absent, 0 when invalid. */
static int32_t attr_elem(const Onnx__NodeProto *n, const char *name, int32_t dflt)
{
    const Onnx__AttributeProto *a = rm_node_attr(n, name);
    if (!a)
        return dflt;
    return a->has_i && a->i > 0 && a->i <= RM_ONNX_MAX_ELEM_TYPE ? (int32_t)a->i : 0;
}

/* Output type of a node that onnx's inference functions set from attributes or
 * inputs, for the ops where the type constraints alone do not tell (as the spec
 * describes each: Cast's `to`, the `dtype` of the random and *Like ops, Constant's
 * and ConstantOfShape's value); 0 unknown. in_types: the first three inputs. */
static int32_t op_output_type(const struct rm_onnx_schema *s, const Onnx__NodeProto *n, size_t k,
                              const int32_t *in_types)
{
    if (k != 0)
        return 0;
    switch ((enum rm_onnx_out_rule)s->out_rule) {
    case RM_OUT_NONE:
        return 0;
    case RM_OUT_DTYPE_OR_IN0:
        return attr_elem(n, "dtype", in_types[0] > 0 ? in_types[0] : 0);
    case RM_OUT_WINDOW:
        return attr_elem(n, "output_datatype", 1);
    case RM_OUT_DTYPE_FLOAT:
        return attr_elem(n, "dtype", 1);
    case RM_OUT_DTYPE_INT32:
        return attr_elem(n, "dtype", 6);
    case RM_OUT_CONSTANT_OF_SHAPE: {
        const Onnx__AttributeProto *a = rm_node_attr(n, "value");
        if (!a)
            return 1;
        return a->t && a->t->has_data_type && a->t->data_type <= RM_ONNX_MAX_ELEM_TYPE ? a->t->data_type : 0;
    }
    case RM_OUT_QUANTIZE:
        if (n->n_input < 3 || !n->input[2] || !n->input[2][0])
            return 2; /* uint8 without a zero point */
        return in_types[2] > 0 ? in_types[2] : 0;
    case RM_OUT_CONSTANT:
        for (size_t i = 0; i < n->n_attribute; i++) {
            const Onnx__AttributeProto *a = n->attribute[i];
            if (!a->name)
                continue;
            if (strcmp(a->name, "value") == 0 && a->t)
                return a->t->has_data_type ? a->t->data_type : 0;
            if (strcmp(a->name, "value_float") == 0 || strcmp(a->name, "value_floats") == 0)
                return 1;
            if (strcmp(a->name, "value_int") == 0 || strcmp(a->name, "value_ints") == 0)
                return 7;
            if (strcmp(a->name, "value_string") == 0 || strcmp(a->name, "value_strings") == 0)
                return 8;
        }
        return 0;
    case RM_OUT_CAST:
        return attr_elem(n, "to", 0);
    case RM_OUT_CAST_LIKE:
        return n->n_input >= 2 && in_types[1] > 0 ? in_types[1] : 0;
    }
    return 0;
}

/* Constant (opset 11 on) needs exactly one of its value attributes; onnx's inference
 * function refuses the node otherwise. Returns 1 when that is violated. */
static int constant_bad(const Onnx__NodeProto *n)
{
    static const char *const names[] = {"value", "value_float", "value_floats", "value_int",
                                        "value_ints", "value_string", "value_strings", "sparse_value"};
    int k = 0;
    for (size_t i = 0; i < n->n_attribute; i++)
        for (size_t j = 0; j < sizeof names / sizeof *names; j++)
            if (n->attribute[i]->name && strcmp(n->attribute[i]->name, names[j]) == 0)
                k++;
    return k != 1;
}

/* Walk the main graph in order as onnx's shape inference does with check_type: each
 * input's element type must be one its formal parameter accepts, inputs sharing a
 * type variable must agree, and an output's type follows from them; a declared type
 * (value_info, graph output) that disagrees with it is an error. Only element types
 * are tracked, and only where the schema's type constraints determine them. */
static void check_types(struct sc *c, const struct rm_onnx_schema *const *schemas, const char *no_schema)
{
    const struct rm_graph *g = c->g;
    const Onnx__GraphProto *gp = g->proto;
    size_t nv = g->n_values ? g->n_values : 1;
    const Onnx__TypeProto **decl = calloc(nv, sizeof *decl);
    const char **src = calloc(nv, sizeof *src);
    /* > 0 known element type, 0 unknown, -2 a tensor without one, -3 not a tensor
     * (sequence, map, optional, sparse tensor) */
    int32_t *type = calloc(nv, sizeof *type);
    if (!decl || !src || !type) {
        c->oom = 1;
        goto done;
    }
    declared_types(g, decl, src);
    for (size_t v = 0; v < g->n_values; v++) {
        int32_t e = decl_elem(decl[v]);
        type[v] = e > 0 ? e : e == 0 ? -2 : 0;
        if (decl[v] && decl[v]->value_case != ONNX__TYPE_PROTO__VALUE__NOT_SET &&
            decl[v]->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
            type[v] = -3;
    }
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *t = gp->initializer[i];
        int v = t->name && t->name[0] ? rm_graph_find(g, t->name) : -1;
        if (v < 0 || g->values[v].init != (int)i)
            continue; /* duplicates are reported by rm_check.c */
        if (decl[v] && check_initializer_decl(c, t, decl[v], src[v]))
            type[v] = 0; /* reported; do not let it cascade into its consumers */
        else if (c->ir >= 4)
            type[v] = t->has_data_type && t->data_type > 0 ? t->data_type : 0;
    }

    int suppressed = 0; /* onnx reports no inference errors after an op it has no schema for */
    for (size_t i = 0; i < gp->n_node; i++)
        if (gp->node[i]->op_type && is_experimental(gp->node[i]->op_type))
            suppressed = 1;

    for (size_t i = 0; i < g->n_nodes; i++) {
        const struct rm_node *rn = &g->nodes[i];
        const Onnx__NodeProto *n = rn->proto;
        const struct rm_onnx_schema *s = schemas[i];
        const char *label = rm_graph_node_label(g, i);
        if (no_schema[i])
            suppressed = 1;
        if (!s || !s->type_checked)
            continue;
        const char *op = n->op_type;
        if (s->out_rule == RM_OUT_CONSTANT && s->since >= 11 && constant_bad(n)) {
            if (!suppressed)
                error(c, "node '%s' (Constant): needs exactly one of the attributes value, value_float(s), value_int(s), value_string(s), sparse_value",
                      label);
            continue; /* onnx's inference stops at this node: no type check */
        }
        int32_t bound[64];   /* type variable -> element type (0 unbound) */
        int bound_from[64];  /* the input that bound it */
        memset(bound, 0, sizeof bound);
        int32_t in_types[3] = {0, 0, 0};
        int bad_input = 0;
        for (size_t k = 0; k < n->n_input && k < s->n_inputs; k++) {
            int v = rn->inputs[k];
            if (v < 0)
                continue;
            int32_t t = type[v] > RM_ONNX_MAX_ELEM_TYPE ? 0 : type[v];
            if (k < 3)
                in_types[k] = t;
            if (t == -2) {
                if (!suppressed)
                    error(c, "node '%s' (%s): input '%s' is declared a tensor with no element type",
                          label, op, g->values[v].name);
                bad_input = 1;
                break;
            }
            const struct rm_onnx_param *p = &s->inputs[k];
            if (t == -3 && p->types != RM_TYPES_ANY && !(p->types & RM_TYPES_NON_TENSOR)) {
                error(c, "node '%s' (%s): input %zu '%s' is declared a %s; %s-%d's %s accepts only tensors",
                      label, op, k, g->values[v].name, type_case_name(decl[v]), op, s->since, p->name);
                bad_input = 1;
                break;
            }
            if (t <= 0)
                continue;
            if (p->types != RM_TYPES_ANY && (t > RM_ONNX_MAX_ELEM_TYPE || !(p->types >> t & 1))) {
                char list[300];
                mask_names(p->types, list, sizeof list);
                error(c, "node '%s' (%s): input %zu '%s' is %s; %s-%d's %s accepts %s", label, op, k,
                      g->values[v].name, onnx_type_name(t), op, s->since, p->name, list);
                bad_input = 1;
                break;
            }
            if (p->homogeneous && p->type_var < 64) {
                if (!bound[p->type_var]) {
                    bound[p->type_var] = t;
                    bound_from[p->type_var] = (int)k;
                } else if (bound[p->type_var] != t) {
                    error(c, "node '%s' (%s): input %zu '%s' is %s, but input %d '%s' of the same type variable is %s",
                          label, op, k, g->values[v].name, onnx_type_name(t), bound_from[p->type_var],
                          g->values[rn->inputs[bound_from[p->type_var]]].name, onnx_type_name(bound[p->type_var]));
                    bad_input = 1;
                    break;
                }
            }
        }
        if (bad_input)
            continue; /* onnx stops at the first error; downstream types stay unknown */
        for (size_t k = 0; k < n->n_output && s->n_outputs; k++) {
            /* past the formal outputs only a homogeneous variadic one continues
             * (Split: every output has the input's type) */
            const struct rm_onnx_param *p = &s->outputs[k < s->n_outputs ? k : s->n_outputs - 1u];
            if (k >= s->n_outputs && !(p->option == RM_PARAM_VARIADIC && p->homogeneous))
                break;
            int v = rn->outputs[k];
            if (v < 0 || g->values[v].producer != (int)i)
                continue;
            int32_t t = op_output_type(s, n, k, in_types);
            if (!t) {
                uint32_t tensors = p->types & ~RM_TYPES_NON_TENSOR;
                if (p->types != RM_TYPES_ANY && !(p->types & RM_TYPES_NON_TENSOR) && tensors &&
                    (tensors & (tensors - 1)) == 0) {
                    for (int e = 1; e <= RM_ONNX_MAX_ELEM_TYPE; e++)
                        if (tensors >> e & 1)
                            t = e;
                } else if (p->homogeneous && p->type_var < 64 && bound[p->type_var]) {
                    t = bound[p->type_var];
                }
            } else if (p->types != RM_TYPES_ANY && (t > RM_ONNX_MAX_ELEM_TYPE || t < 1 || !(p->types >> t & 1))) {
                char list[300];
                mask_names(p->types, list, sizeof list);
                error(c, "node '%s' (%s): output '%s' would be %s; %s-%d's %s allows %s", label, op,
                      g->values[v].name, onnx_type_name(t), op, s->since, p->name, list);
                break;
            } else if (p->homogeneous && p->type_var < 64 && bound[p->type_var] && bound[p->type_var] != t) {
                error(c, "node '%s' (%s): output '%s' would be %s, but its type variable is %s from the inputs",
                      label, op, g->values[v].name, onnx_type_name(t), onnx_type_name(bound[p->type_var]));
                break;
            }
            if (t <= 0)
                continue;
            const Onnx__TypeProto *d = decl[v];
            if (d && d->value_case != ONNX__TYPE_PROTO__VALUE__NOT_SET &&
                d->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) {
                error(c, "%s '%s' is declared a %s, but node '%s' (%s) makes a tensor", src[v],
                      g->values[v].name, type_case_name(d), label, op);
                type[v] = 0;
            } else if (decl_elem(d) > 0 && decl_elem(d) != t) {
                error(c, "%s '%s' is declared %s, but node '%s' (%s) makes %s", src[v], g->values[v].name,
                      onnx_type_name(decl_elem(d)), label, op, onnx_type_name(t));
                type[v] = 0; /* reported; do not let it cascade into its consumers */
            } else {
                type[v] = t;
            }
        }
    }
done:
    free(decl);
    free(src);
    free(type);
}

/* ---- the model ---------------------------------------------------------------------- */

void rm_check_schema(const struct rm_graph *g, void (*report)(void *ctx, int warning, const char *msg),
                     void *ctx)
{
    const Onnx__ModelProto *m = g->model->proto;
    const Onnx__GraphProto *gp = g->proto;
    struct sc c;
    memset(&c, 0, sizeof c);
    c.g = g;
    c.m = m;
    c.report = report;
    c.ctx = ctx;
    c.ir = m->has_ir_version ? m->ir_version : 0;
    const struct rm_onnx_schema **schemas = NULL;
    char *no_schema = NULL;

    if (c.ir > rm_onnx_ir_version)
        warn(&c, "model: ir_version %lld is newer than the IR remodel's schemas come from (%d, %s); onnx's checker of that release refuses it",
             (long long)c.ir, rm_onnx_ir_version, rm_onnx_schemas_source);
    if (c.ir > 0 && c.ir < 3 && m->n_opset_import > 0)
        error(&c, "model: ir_version %lld < 3 cannot have opset_import", (long long)c.ir);

    if (m->n_metadata_props > 1) {
        const char **keys = malloc(m->n_metadata_props * sizeof *keys);
        if (!keys) {
            c.oom = 1;
            goto done;
        }
        for (size_t i = 0; i < m->n_metadata_props; i++)
            keys[i] = m->metadata_props[i]->key ? m->metadata_props[i]->key : "";
        qsort(keys, m->n_metadata_props, sizeof *keys, cmp_str);
        for (size_t i = 1; i < m->n_metadata_props; i++)
            if (strcmp(keys[i], keys[i - 1]) == 0 && (i < 2 || strcmp(keys[i], keys[i - 2]) != 0))
                error(&c, "model: metadata_props key '%s' appears more than once", keys[i]);
        free(keys);
    }

    /* opset imports: one entry per domain, the last one wins (onnx keeps a map) */
    size_t ni = m->n_opset_import;
    c.imp_domain = calloc(ni ? ni : 1, sizeof *c.imp_domain);
    c.imp_version = calloc(ni ? ni : 1, sizeof *c.imp_version);
    if (m->n_functions) {
        c.functions = malloc(m->n_functions * sizeof *c.functions);
        if (!c.functions) {
            c.oom = 1;
            goto done;
        }
        memcpy(c.functions, m->functions, m->n_functions * sizeof *c.functions);
        qsort(c.functions, m->n_functions, sizeof *c.functions, cmp_function);
    }
    schemas = calloc(g->n_nodes ? g->n_nodes : 1, sizeof *schemas);
    no_schema = calloc(g->n_nodes ? g->n_nodes : 1, 1);
    if (!c.imp_domain || !c.imp_version || !schemas || !no_schema) {
        c.oom = 1;
        goto done;
    }
    for (size_t i = 0; i < ni; i++) {
        const char *d = m->opset_import[i]->domain ? m->opset_import[i]->domain : "";
        int k = import_of(&c, d);
        if (k < 0) {
            k = (int)c.n_imports++;
            c.imp_domain[k] = d;
        }
        c.imp_version[k] = m->opset_import[i]->version;
    }
    if (c.ir > 0 && c.ir < 3 && ni == 0) { /* IR < 3: the ONNX opset is 1 */
        free(c.imp_domain);
        c.imp_domain = calloc(1, sizeof *c.imp_domain);
        if (!c.imp_domain) {
            c.oom = 1;
            goto done;
        }
        c.imp_domain[0] = "";
        c.imp_version[0] = 1;
        c.n_imports = 1;
    }

    if (!gp->name || !gp->name[0])
        error(&c, "graph: name missing");
    for (size_t i = 0; i < gp->n_input; i++)
        check_value_info(&c, gp->input[i], "graph input", i, 1, "");
    for (size_t i = 0; i < gp->n_output; i++)
        check_value_info(&c, gp->output[i], "graph output", i, 1, "");
    for (size_t i = 0; i < gp->n_value_info; i++) {
        const Onnx__ValueInfoProto *vi = gp->value_info[i];
        if (vi->name && vi->type && vi->type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
            check_value_info(&c, vi, "value_info", i, 0, "");
    }

    char where[400];
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *t = gp->initializer[i];
        if (!t->name || !t->name[0])
            continue; /* reported by rm_check.c */
        snprintf(where, sizeof where, "initializer '%s'", t->name);
        check_tensor(&c, t, where, 0, 0);
        if (c.ir > 0 && c.ir <= 3) {
            int v = rm_graph_find(g, t->name);
            if (v < 0 || g->values[v].input < 0)
                error(&c, "initializer '%s' is not a graph input (IR version %lld needs every initializer listed as an input)",
                      t->name, (long long)c.ir);
        }
    }
    for (size_t i = 0; i < gp->n_sparse_initializer; i++) {
        const Onnx__SparseTensorProto *s = gp->sparse_initializer[i];
        snprintf(where, sizeof where, "sparse initializer '%s'",
                 s->values && s->values->name ? s->values->name : "?");
        if (!s->values || !s->values->name || !s->values->name[0])
            error(&c, "sparse initializer #%zu has no name", i);
        else
            check_sparse(&c, s, where);
    }

    struct scope top = {{0}, NULL, g, 0};
    for (size_t i = 0; i < g->n_nodes; i++) {
        top.main_node = i;
        int ns;
        schemas[i] = check_node(&c, g->nodes[i].proto, rm_graph_node_label(g, i), &top, 1, 0, &ns);
        no_schema[i] = (char)ns;
    }
    check_types(&c, schemas, no_schema);
    flush_tallies(&c);

done:
    if (c.oom)
        error(&c, "out of memory while checking against the operator schemas");
    free(schemas);
    free(no_schema);
    free(c.imp_domain);
    free(c.imp_version);
    free(c.tallies);
    free(c.functions);
}
