/* The mutation API (rm_model.h): every change library code makes to a model, so that
 * the protobuf-c arrays are touched in one place and the derived state knows when it
 * is stale. New strings and arrays are allocated in the model's arena, tensor bytes in
 * buffers of their own (freed when a later edit replaces them); bytes already there are
 * never written (a clone may share them). */
#include "rm_model.h"

#include "rm_graph.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void changed(struct rm_model *m)
{
    m->gen++;
}

static int oom(struct rm_error *err)
{
    return rm_error_set(err, RM_ENOMEM, "out of memory editing the model");
}

static Onnx__NodeProto *node_at(struct rm_model *m, int node, struct rm_error *err)
{
    Onnx__GraphProto *gp = m->proto->graph;
    if (node < 0 || (size_t)node >= gp->n_node) {
        rm_error_set(err, RM_EEDIT, "no node %d", node);
        return NULL;
    }
    return gp->node[node];
}

/* The index as last built: still right about the names it knows (names are only
 * added between index builds), so a lookup there, verified against the proto, avoids a
 * scan of the whole graph on every edit. */
static const struct rm_value *indexed(const struct rm_model *m, const char *name)
{
    int v = m->graph ? rm_graph_find(m->graph, name) : -1;
    return v >= 0 ? &m->graph->values[v] : NULL;
}

static Onnx__TensorProto *find_initializer(struct rm_model *m, const char *name)
{
    Onnx__GraphProto *gp = m->proto->graph;
    const struct rm_value *v = indexed(m, name);
    if (v && v->init >= 0 && (size_t)v->init < gp->n_initializer && gp->initializer[v->init]->name &&
        !strcmp(gp->initializer[v->init]->name, name))
        return gp->initializer[v->init];
    for (size_t i = gp->n_initializer; i-- > 0;) /* the newest first: edits' own */
        if (gp->initializer[i]->name && !strcmp(gp->initializer[i]->name, name))
            return gp->initializer[i];
    return NULL;
}

const Onnx__TensorProto *rm_model_initializer(struct rm_model *m, const char *name)
{
    return find_initializer(m, name);
}

bool rm_model_name_taken(struct rm_model *m, const char *name)
{
    if (indexed(m, name) || rm_strmap_get(&m->added, name) >= 0)
        return true;
    if (m->graph && m->names_known)
        return false; /* names are only added through note_added since the index was built
                         (one that went since is still called taken: harmless) */
    const Onnx__GraphProto *gp = m->proto->graph;
    for (size_t i = 0; i < gp->n_initializer; i++)
        if (gp->initializer[i]->name && !strcmp(gp->initializer[i]->name, name))
            return true;
    for (size_t i = 0; i < gp->n_node; i++)
        for (size_t k = 0; k < gp->node[i]->n_output; k++)
            if (!strcmp(gp->node[i]->output[k], name))
                return true;
    for (size_t i = 0; i < gp->n_input; i++)
        if (gp->input[i]->name && !strcmp(gp->input[i]->name, name))
            return true;
    return false;
}

static int note_added(struct rm_model *m, const char *name)
{
    return rm_strmap_put(&m->added, name, 0, NULL);
}

/* ---- tensors ------------------------------------------------------------------------ */

/* The set of tensor buffers the model owns: open addressing on the pointer's bits. */
static const char buf_gone;
#define BUF_GONE ((void *)&buf_gone)

static size_t buf_slot(const struct rm_model *m, const void *p)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (m->bufs_cap - 1);
}

static int bufs_grow(struct rm_model *m)
{
    size_t cap = m->bufs_cap ? m->bufs_cap * 2 : 64, old_cap = m->bufs_cap;
    struct rm_model_buf *old = m->bufs, *nb = calloc(cap, sizeof *nb);
    if (!nb)
        return -1;
    m->bufs = nb;
    m->bufs_cap = cap;
    m->bufs_used = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].p && old[i].p != BUF_GONE) {
            size_t k = buf_slot(m, old[i].p);
            while (nb[k].p)
                k = (k + 1) & (cap - 1);
            nb[k] = old[i];
            m->bufs_used++;
        }
    free(old);
    return 0;
}

/* Buffers of BUF_PAGES bytes and more are mappings of their own, populated at once:
 * they are written whole right away, and a page fault per 4 KB made resnet18's prune 27%
 * slower than the huge-page arena they used to come from (15,273 faults against 1,948).
 * Not on huge pages: their compaction stalls made VGG16's prune 2x slower. Under
 * AddressSanitizer all are heap blocks, which it checks. */
#ifdef RM_ASAN
#define BUF_PAGES SIZE_MAX
#else
#define BUF_PAGES ((size_t)64 << 10)
#endif

static void buf_free(const struct rm_model_buf *b)
{
    if (b->n >= BUF_PAGES)
        rm_pages_free(b->p, b->n);
    else
        free(b->p);
}

/* Record p (n bytes) as the model's; the caller made room (bufs_grow). */
static void buf_put(struct rm_model *m, void *p, size_t n)
{
    size_t k = buf_slot(m, p);
    while (m->bufs[k].p && m->bufs[k].p != BUF_GONE)
        k = (k + 1) & (m->bufs_cap - 1);
    if (!m->bufs[k].p)
        m->bufs_used++;
    m->bufs[k] = (struct rm_model_buf){p, n};
    m->stats.tensor_bytes += n;
}

/* A new buffer of n bytes (at least 1) the model owns, or NULL. */
static void *buf_new(struct rm_model *m, size_t n)
{
    /* at most half the slots in use, deleted ones included */
    if ((m->bufs_used + 1) * 2 > m->bufs_cap && bufs_grow(m))
        return NULL;
    void *p = n >= BUF_PAGES ? rm_pages_alloc(n, RM_PAGES_POPULATE) : malloc(n ? n : 1);
    if (p)
        buf_put(m, p, n);
    return p;
}

/* The entry of buffer p in the model's set, or NULL when the model does not own p. */
static struct rm_model_buf *buf_find(struct rm_model *m, const void *p)
{
    if (!p || !m->bufs_cap)
        return NULL;
    for (size_t k = buf_slot(m, p); m->bufs[k].p; k = (k + 1) & (m->bufs_cap - 1))
        if (m->bufs[k].p == p)
            return &m->bufs[k];
    return NULL;
}

/* The model's buffer p, which holds at least n bytes, cut to n (n <= its size, n >= 1):
 * a mapping gives back its tail pages; a heap block, or a mapping that becomes smaller
 * than BUF_PAGES, moves to a heap block of n. Returns where the bytes are now (p when
 * they cannot move: out of memory keeps the larger buffer). */
static void *buf_fit(struct rm_model *m, void *p, size_t n)
{
    struct rm_model_buf *b = buf_find(m, p);
    if (!b || n >= b->n || !n)
        return p;
    if (b->n >= BUF_PAGES && n >= BUF_PAGES) {
        rm_pages_trim(p, b->n, n);
        m->stats.tensor_bytes -= b->n - n;
        b->n = n;
        return p;
    }
    void *q = b->n >= BUF_PAGES ? malloc(n) : realloc(p, n);
    if (!q)
        return p;
    if (b->n >= BUF_PAGES) {
        memcpy(q, p, n);
        rm_pages_free(p, b->n);
    }
    m->stats.tensor_bytes -= b->n;
    *b = (struct rm_model_buf){BUF_GONE, 0};
    buf_put(m, q, n); /* the slot just freed is room enough */
    return q;
}

/* Free p if the model owns it and no clone shares the model's bytes. */
static void buf_release(struct rm_model *m, const void *p)
{
    struct rm_model_buf *b = m->refs > 0 ? NULL : buf_find(m, p);
    if (!b)
        return;
    buf_free(b);
    m->stats.tensor_bytes -= b->n;
    *b = (struct rm_model_buf){BUF_GONE, 0};
}

void rm_model_bufs_free(struct rm_model *m)
{
    for (size_t i = 0; i < m->bufs_cap; i++)
        if (m->bufs[i].p && m->bufs[i].p != BUF_GONE)
            buf_free(&m->bufs[i]);
    free(m->bufs);
    m->bufs = NULL;
    m->bufs_cap = m->bufs_used = 0;
    m->stats.tensor_bytes = 0;
}

void *rm_model_tensor_buffer(struct rm_model *m, size_t bytes)
{
    void *p = buf_new(m, bytes);
    m->adopt = p;
    m->adopt_size = p ? bytes : 0;
    return p;
}

void *rm_model_tensor_reuse(struct rm_model *m, const void *p, size_t bytes)
{
    struct rm_model_buf *b = m->refs > 0 ? NULL : buf_find(m, p);
    if (!b || b->n < bytes)
        return NULL;
    m->adopt = b->p;
    m->adopt_size = b->n;
    return m->adopt;
}

/* Point t at a copy of data (float32, or int64 when i64) with the given dims. */
static int fill_tensor(struct rm_model *m, Onnx__TensorProto *t, int rank, const int64_t *dims, const void *data,
                       bool i64, struct rm_error *err)
{
    int64_t n;
    size_t elem = i64 ? sizeof(int64_t) : sizeof(float);
    if (rank < 0 || rm_dims_numel(dims, (size_t)rank, &n) || (uint64_t)n > SIZE_MAX / elem)
        return rm_error_set(err, RM_EEDIT, "tensor '%s': size overflows", t->name ? t->name : "?");
    int64_t *d = rank ? rm_arena_memdup(&m->arena, dims, (size_t)rank * sizeof *dims) : NULL;
    uint8_t *raw = NULL;
    if (n && data && data == m->adopt && (size_t)n * elem <= m->adopt_size)
        raw = buf_fit(m, m->adopt, (size_t)n * elem); /* filled in place (rm_model_tensor_buffer, _reuse): no
                                                         second copy, and no room held past its end */
    else if (n && (raw = buf_new(m, (size_t)n * elem)))
        memcpy(raw, data, (size_t)n * elem); /* little-endian host */
    if (data && data == m->adopt)
        m->adopt = NULL, m->adopt_size = 0;
    if ((rank && !d) || (n && !raw))
        return oom(err);
    /* the bytes this tensor had are no one's now (data, if they were, is copied) */
    if (t->has_raw_data && t->raw_data.data != raw)
        buf_release(m, t->raw_data.data);
    t->dims = d;
    t->n_dims = (size_t)rank;
    t->has_data_type = 1;
    t->data_type = i64 ? ONNX__TENSOR_PROTO__DATA_TYPE__INT64 : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->has_raw_data = 1;
    t->raw_data.data = raw;
    t->raw_data.len = (size_t)n * elem;
    t->n_float_data = t->n_int32_data = t->n_int64_data = t->n_double_data = t->n_uint64_data = 0;
    t->n_string_data = 0;
    t->has_data_location = 0;
    t->n_external_data = 0;
    return 0;
}

/* A graph input that declares initializer `name` (keep_initializers_as_inputs) takes
 * its new type and shape. */
static int sync_input(struct rm_model *m, const char *name, int rank, const int64_t *dims, bool i64,
                      struct rm_error *err)
{
    Onnx__GraphProto *gp = m->proto->graph;
    for (size_t i = 0; i < gp->n_input; i++) {
        Onnx__ValueInfoProto *vi = gp->input[i];
        if (!vi->name || strcmp(vi->name, name))
            continue;
        if (!vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
            continue;
        Onnx__TypeProto__Tensor *tt = vi->type->tensor_type;
        Onnx__TensorShapeProto *sh = rm_arena_alloc(&m->arena, sizeof *sh);
        Onnx__TensorShapeProto__Dimension **dv = rm_arena_alloc(&m->arena, ((size_t)rank + 1) * sizeof *dv);
        if (!sh || !dv)
            return oom(err);
        onnx__tensor_shape_proto__init(sh);
        for (int d = 0; d < rank; d++) {
            if (!(dv[d] = rm_arena_alloc(&m->arena, sizeof **dv)))
                return oom(err);
            onnx__tensor_shape_proto__dimension__init(dv[d]);
            dv[d]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dv[d]->dim_value = dims[d];
        }
        sh->dim = dv;
        sh->n_dim = (size_t)rank;
        tt->shape = sh;
        tt->has_elem_type = 1;
        tt->elem_type = i64 ? ONNX__TENSOR_PROTO__DATA_TYPE__INT64 : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    }
    return 0;
}

static int set_initializer(struct rm_model *m, const char *name, int rank, const int64_t *dims, const void *data,
                           bool i64, struct rm_error *err)
{
    Onnx__TensorProto *t = find_initializer(m, name);
    if (!t)
        return rm_error_set(err, RM_EEDIT, "no initializer '%s'", name);
    int rc = fill_tensor(m, t, rank, dims, data, i64, err);
    if (!rc)
        rc = sync_input(m, name, rank, dims, i64, err);
    changed(m);
    return rc;
}

int rm_model_set_initializer(struct rm_model *m, const char *name, int rank, const int64_t *dims,
                             const float *data, struct rm_error *err)
{
    return set_initializer(m, name, rank, dims, data, false, err);
}

int rm_model_set_initializer_i64(struct rm_model *m, const char *name, int rank, const int64_t *dims,
                                 const int64_t *data, struct rm_error *err)
{
    return set_initializer(m, name, rank, dims, data, true, err);
}

/* Append p to a protobuf-c array of pointers, reallocating in the arena with room to
 * grow when it is full (*cap tracks the room of the array the model allocated). */
static int append_ptr(struct rm_model *m, void ***arr, size_t *n, void *p, void **owned, size_t *cap)
{
    if (*arr != *owned || *n >= *cap) {
        size_t nc = *n < 8 ? 16 : 2 * *n;
        void **na = rm_arena_alloc(&m->arena, nc * sizeof *na);
        if (!na)
            return -1;
        if (*n)
            memcpy(na, *arr, *n * sizeof *na);
        *arr = na;
        *owned = na;
        *cap = nc;
    }
    (*arr)[(*n)++] = p;
    return 0;
}

static int add_initializer(struct rm_model *m, const char *base, int rank, const int64_t *dims, const void *data,
                           bool i64, const char **name, struct rm_error *err)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", base);
    for (int i = 1; rm_model_name_taken(m, buf); i++) {
        if (i > 1000000)
            return rm_error_set(err, RM_EEDIT, "no free name for a copy of '%s'", base);
        snprintf(buf, sizeof buf, "%s_%d", base, i);
    }
    Onnx__TensorProto *t = rm_arena_alloc(&m->arena, sizeof *t);
    char *nm = rm_arena_strdup(&m->arena, buf);
    if (!t || !nm || note_added(m, nm))
        return oom(err);
    onnx__tensor_proto__init(t);
    t->name = nm;
    int rc = fill_tensor(m, t, rank, dims, data, i64, err);
    if (rc)
        return rc;
    Onnx__GraphProto *gp = m->proto->graph;
    if (append_ptr(m, (void ***)&gp->initializer, &gp->n_initializer, t, &m->init_arr, &m->init_cap))
        return oom(err);
    changed(m);
    *name = nm;
    return 0;
}

int rm_model_add_initializer(struct rm_model *m, const char *base, int rank, const int64_t *dims,
                             const float *data, const char **name, struct rm_error *err)
{
    return add_initializer(m, base, rank, dims, data, false, name, err);
}

int rm_model_add_initializer_i64(struct rm_model *m, const char *base, int rank, const int64_t *dims,
                                 const int64_t *data, const char **name, struct rm_error *err)
{
    return add_initializer(m, base, rank, dims, data, true, name, err);
}

int rm_model_constant_to_initializer(struct rm_model *m, int node, struct rm_error *err)
{
    Onnx__NodeProto *n = node_at(m, node, err);
    if (!n)
        return RM_EEDIT;
    const Onnx__AttributeProto *a = n->n_output == 1 && n->output[0] && n->output[0][0] ? rm_node_attr(n, "value")
                                                                                       : NULL;
    if (!a || !a->t || n->n_attribute != 1)
        return rm_error_set(err, RM_EEDIT, "node '%s' is not a Constant holding one tensor",
                            n->name ? n->name : "?");
    /* the same tensor under the value's name: its bytes are shared, never written */
    Onnx__TensorProto *t = rm_arena_alloc(&m->arena, sizeof *t);
    char *nm = rm_arena_strdup(&m->arena, n->output[0]);
    if (!t || !nm)
        return oom(err);
    *t = *a->t;
    t->name = nm;
    Onnx__GraphProto *gp = m->proto->graph;
    if (append_ptr(m, (void ***)&gp->initializer, &gp->n_initializer, t, &m->init_arr, &m->init_cap))
        return oom(err);
    for (size_t i = (size_t)node; i + 1 < gp->n_node; i++)
        gp->node[i] = gp->node[i + 1];
    gp->n_node--;
    changed(m);
    return 0;
}

/* ---- nodes ---------------------------------------------------------------------------- */

int rm_model_set_node_input(struct rm_model *m, int node, size_t slot, const char *name, struct rm_error *err)
{
    Onnx__NodeProto *n = node_at(m, node, err);
    if (!n)
        return RM_EEDIT;
    char *nm = rm_arena_strdup(&m->arena, name);
    if (!nm)
        return oom(err);
    if (slot >= n->n_input) {
        char **arr = rm_arena_alloc(&m->arena, (slot + 1) * sizeof *arr);
        if (!arr)
            return oom(err);
        for (size_t i = 0; i <= slot; i++)
            arr[i] = i < n->n_input ? n->input[i] : (char *)"";
        n->input = arr;
        n->n_input = slot + 1;
    }
    n->input[slot] = nm;
    changed(m);
    return 0;
}

int rm_model_trim_inputs(struct rm_model *m, int node, size_t count, struct rm_error *err)
{
    Onnx__NodeProto *n = node_at(m, node, err);
    if (!n)
        return RM_EEDIT;
    if (count < n->n_input) {
        n->n_input = count;
        changed(m);
    }
    return 0;
}

int rm_model_set_node_output(struct rm_model *m, int node, size_t slot, const char *name, struct rm_error *err)
{
    Onnx__NodeProto *n = node_at(m, node, err);
    if (!n)
        return RM_EEDIT;
    if (slot >= n->n_output)
        return rm_error_set(err, RM_EEDIT, "node %d has no output %zu", node, slot);
    char *nm = rm_arena_strdup(&m->arena, name);
    if (!nm || note_added(m, nm))
        return oom(err);
    n->output[slot] = nm;
    changed(m);
    return 0;
}

/* The attribute called name, added (in name order, as torch writes them) when missing. */
static Onnx__AttributeProto *attr_slot(struct rm_model *m, Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name))
            return n->attribute[i];
    Onnx__AttributeProto **arr = rm_arena_alloc(&m->arena, (n->n_attribute + 1) * sizeof *arr);
    Onnx__AttributeProto *a = rm_arena_alloc(&m->arena, sizeof *a);
    if (!arr || !a)
        return NULL;
    onnx__attribute_proto__init(a);
    a->name = rm_arena_strdup(&m->arena, name);
    if (!a->name)
        return NULL;
    size_t k = 0, j = 0;
    while (k < n->n_attribute && n->attribute[k]->name && strcmp(n->attribute[k]->name, name) < 0)
        arr[j++] = n->attribute[k++];
    arr[j++] = a;
    while (k < n->n_attribute)
        arr[j++] = n->attribute[k++];
    n->attribute = arr;
    n->n_attribute++;
    return a;
}

int rm_model_set_attr_ints(struct rm_model *m, int node, const char *name, const int64_t *v, size_t count,
                           struct rm_error *err)
{
    Onnx__NodeProto *n = node_at(m, node, err);
    if (!n)
        return RM_EEDIT;
    Onnx__AttributeProto *a = attr_slot(m, n, name);
    int64_t *copy = count ? rm_arena_memdup(&m->arena, v, count * sizeof *v) : NULL;
    if (!a || (count && !copy))
        return oom(err);
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    a->ints = copy;
    a->n_ints = count;
    a->has_i = 0;
    changed(m);
    return 0;
}

int rm_model_set_attr_int(struct rm_model *m, int node, const char *name, int64_t v, struct rm_error *err)
{
    Onnx__NodeProto *n = node_at(m, node, err);
    if (!n)
        return RM_EEDIT;
    Onnx__AttributeProto *a = attr_slot(m, n, name);
    if (!a)
        return oom(err);
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1;
    a->i = v;
    a->n_ints = 0;
    changed(m);
    return 0;
}

int rm_model_del_attr(struct rm_model *m, int node, const char *name, struct rm_error *err)
{
    Onnx__NodeProto *n = node_at(m, node, err);
    if (!n)
        return RM_EEDIT;
    size_t j = 0;
    for (size_t i = 0; i < n->n_attribute; i++)
        if (!n->attribute[i]->name || strcmp(n->attribute[i]->name, name) != 0)
            n->attribute[j++] = n->attribute[i];
    if (j != n->n_attribute) {
        n->n_attribute = j;
        changed(m);
    }
    return 0;
}

int rm_model_remove_nodes(struct rm_model *m, const bool *dead, struct rm_error *err)
{
    (void)err;
    Onnx__GraphProto *gp = m->proto->graph;
    size_t j = 0;
    for (size_t i = 0; i < gp->n_node; i++)
        if (!dead[i])
            gp->node[j++] = gp->node[i];
    if (j != gp->n_node) {
        gp->n_node = j;
        changed(m);
    }
    return 0;
}

int rm_model_sweep(struct rm_model *m, unsigned what, size_t *removed, struct rm_error *err)
{
    struct rm_graph *g = rm_model_index(m, err);
    if (removed)
        *removed = 0;
    if (!g)
        return err ? err->code : RM_ENOMEM;
    Onnx__GraphProto *gp = m->proto->graph;
    bool *live = calloc(g->n_nodes + 1, sizeof *live), *gone = calloc(g->n_values + 1, sizeof *gone);
    if (!live || !gone) {
        free(live);
        free(gone);
        return oom(err);
    }
    /* from the last node back: a node lives when a graph output or a living node reads
     * one of its outputs (readers come later in a sorted graph), or it has no output */
    for (size_t i = g->n_nodes; i-- > 0;) {
        const struct rm_node *n = &g->nodes[i];
        live[i] = n->proto->n_output == 0 || !(what & RM_SWEEP_NODES);
        for (size_t k = 0; k < n->proto->n_output && !live[i]; k++) {
            int v = n->outputs[k];
            if (v < 0)
                continue;
            live[i] = g->values[v].output >= 0;
            for (int c = 0; c < g->values[v].n_consumers && !live[i]; c++)
                live[i] = g->values[v].consumers[c] > (int)i ? live[g->values[v].consumers[c]] : true;
        }
    }
    size_t nd = 0, ni = 0, nin = 0;
    size_t j = 0;
    for (size_t i = 0; i < gp->n_node; i++)
        if (live[i])
            gp->node[j++] = gp->node[i];
    nd = gp->n_node - j;
    gp->n_node = j;
    j = 0;
    for (size_t i = 0; i < gp->n_initializer; i++) {
        int v = gp->initializer[i]->name ? rm_graph_find(g, gp->initializer[i]->name) : -1;
        bool used = v < 0 || g->values[v].output >= 0;
        for (int c = 0; v >= 0 && c < g->values[v].n_consumers && !used; c++)
            used = live[g->values[v].consumers[c]];
        if (used) {
            gp->initializer[j++] = gp->initializer[i];
            continue;
        }
        if (v >= 0)
            gone[v] = true;
        if (gp->initializer[i]->has_raw_data)
            buf_release(m, gp->initializer[i]->raw_data.data);
    }
    ni = gp->n_initializer - j;
    gp->n_initializer = j;
    /* a graph input that declared a removed initializer would now be a required input */
    j = 0;
    for (size_t i = 0; i < gp->n_input; i++) {
        int v = gp->input[i]->name ? rm_graph_find(g, gp->input[i]->name) : -1;
        if (v < 0 || !gone[v])
            gp->input[j++] = gp->input[i];
    }
    nin = gp->n_input - j;
    gp->n_input = j;
    free(live);
    free(gone);
    if (nd + ni + nin)
        changed(m);
    if (removed)
        *removed = nd + ni + nin;
    return 0;
}

/* ---- model-level facts that the derived state does not depend on ------------------ */

/* Whether m->meta_keys indexes metadata_props as it is, building it when not (a few
 * entries are scanned instead). */
static bool meta_indexed(struct rm_model *m)
{
    const Onnx__ModelProto *mp = m->proto;
    if (m->meta_keys.cap && m->meta_keys_arr == (const void *)mp->metadata_props &&
        m->meta_keys_n == mp->n_metadata_props)
        return true;
    if (mp->n_metadata_props < 8 || mp->n_metadata_props > INT_MAX / 2)
        return false;
    rm_strmap_free(&m->meta_keys);
    if (rm_strmap_reserve(&m->meta_keys, mp->n_metadata_props))
        return false; /* out of memory: scan */
    for (size_t i = 0; i < mp->n_metadata_props; i++) /* the first of a key counts, as in a scan */
        if (mp->metadata_props[i]->key && rm_strmap_put(&m->meta_keys, mp->metadata_props[i]->key, (int)i, NULL))
            return false;
    m->meta_keys_arr = mp->metadata_props;
    m->meta_keys_n = mp->n_metadata_props;
    return true;
}

/* Index of key in metadata_props, or -1. */
static int meta_find(struct rm_model *m, const char *key)
{
    const Onnx__ModelProto *mp = m->proto;
    if (meta_indexed(m))
        return rm_strmap_get(&m->meta_keys, key);
    for (size_t i = 0; i < mp->n_metadata_props; i++)
        if (mp->metadata_props[i]->key && !strcmp(mp->metadata_props[i]->key, key))
            return (int)i;
    return -1;
}

const char *rm_model_metadata(struct rm_model *m, const char *key)
{
    int i = meta_find(m, key);
    return i >= 0 ? m->proto->metadata_props[i]->value : NULL;
}

int rm_model_set_metadata(struct rm_model *m, const char *key, const char *value, struct rm_error *err)
{
    Onnx__ModelProto *mp = m->proto;
    char *v = rm_arena_strdup(&m->arena, value);
    if (!v)
        return oom(err);
    int i = meta_find(m, key);
    if (i >= 0) {
        mp->metadata_props[i]->value = v;
        return 0;
    }
    if (mp->n_metadata_props >= INT_MAX / 2)
        return rm_error_set(err, RM_EEDIT, "too many metadata entries (%zu)", mp->n_metadata_props);
    Onnx__StringStringEntryProto *kv = rm_arena_alloc(&m->arena, sizeof *kv);
    if (!kv)
        return oom(err);
    onnx__string_string_entry_proto__init(kv);
    kv->key = rm_arena_strdup(&m->arena, key);
    kv->value = v;
    if (!kv->key)
        return oom(err);
    bool was_indexed = meta_indexed(m);
    /* the array grows by doubling: a copy per entry made recording a channel map per
     * tensor quadratic in memory (1.6 GB for 20k nodes) */
    if (append_ptr(m, (void ***)&mp->metadata_props, &mp->n_metadata_props, kv, &m->meta_arr, &m->meta_cap))
        return oom(err);
    if (was_indexed) { /* keep the index in step with the array */
        if (rm_strmap_put(&m->meta_keys, kv->key, (int)(mp->n_metadata_props - 1), NULL))
            rm_strmap_free(&m->meta_keys); /* rebuilt on the next lookup */
        m->meta_keys_arr = mp->metadata_props;
        m->meta_keys_n = mp->n_metadata_props;
    }
    return 0;
}

int rm_model_rewrite_input_shape(struct rm_model *m, const char *input, int rank, const int64_t *dims,
                                 struct rm_error *err)
{
    int rc = rm_input_dims_check(input, rank, dims, err);
    if (rc)
        return rc;
    const struct rm_graph *g = rm_model_index(m, err);
    if (!g)
        return err ? err->code : RM_ENOMEM;
    int v = rm_graph_find(g, input);
    if (v < 0 || g->values[v].input < 0 || g->values[v].init >= 0)
        return rm_error_set(err, RM_ENOTFOUND, "the model has no input named '%s'", input);
    Onnx__ValueInfoProto *vi = m->proto->graph->input[g->values[v].input];
    if (!vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        return rm_error_set(err, RM_EUNSUPPORTED, "input '%s' is not a tensor", input);
    Onnx__TypeProto__Tensor *tt = vi->type->tensor_type;
    if (tt->shape && tt->shape->n_dim != (size_t)rank)
        return rm_error_set(err, RM_EUSAGE, "input '%s' has %zu dimensions; %d were given", input,
                            tt->shape->n_dim, rank);
    if (!tt->shape) {
        Onnx__TensorShapeProto *sh = rm_arena_alloc(&m->arena, sizeof *sh);
        Onnx__TensorShapeProto__Dimension **arr = rm_arena_alloc(&m->arena, ((size_t)rank + 1) * sizeof *arr);
        if (!sh || !arr)
            return oom(err);
        onnx__tensor_shape_proto__init(sh);
        for (int d = 0; d < rank; d++) {
            if (!(arr[d] = rm_arena_alloc(&m->arena, sizeof **arr)))
                return oom(err);
            onnx__tensor_shape_proto__dimension__init(arr[d]);
        }
        sh->n_dim = (size_t)rank;
        sh->dim = arr;
        tt->shape = sh;
    }
    for (int d = 0; d < rank; d++) {
        Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
        dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        dim->dim_value = dims[d];
    }
    changed(m); /* the declared dims are part of the index */
    /* the shapes follow: the input as declared now, outputs and value_info rewritten */
    rc = rm_model_set_input_shape(m, input, rank, dims, err);
    return rc ? rc : rm_model_write_shapes(m, err);
}

int rm_model_write_shapes(struct rm_model *m, struct rm_error *err)
{
    struct rm_graph *g = rm_model_graph(m, err);
    if (!g)
        return err ? err->code : RM_ENOMEM;
    Onnx__GraphProto *gp = m->proto->graph;
    Onnx__ValueInfoProto **lists[2] = {gp->output, gp->value_info};
    size_t counts[2] = {gp->n_output, gp->n_value_info};
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; i < counts[l]; i++) {
            Onnx__ValueInfoProto *vi = lists[l][i];
            int v = vi->name ? rm_graph_find(g, vi->name) : -1;
            if (v < 0 || !vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
                !vi->type->tensor_type->shape)
                continue;
            struct rm_value *val = &g->values[v];
            Onnx__TensorShapeProto *sh = vi->type->tensor_type->shape;
            if (val->rank < 0 || (size_t)val->rank != sh->n_dim) {
                if (l == 1 && val->rank >= 0) {
                    vi->type->tensor_type->shape = NULL; /* rank changed: drop the stale shape */
                    if (val->vi == vi)
                        val->decl_rank = -1;
                }
                continue;
            }
            for (size_t d = 0; d < sh->n_dim; d++) {
                Onnx__TensorShapeProto__Dimension *dim = sh->dim[d];
                /* only fixed sizes are rewritten: symbolic ones stay symbolic (shapes may
                 * have been inferred with dynamic dimensions set to 1, which must not leak) */
                if (val->dims[d] < 0 || dim->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ||
                    dim->dim_value == val->dims[d])
                    continue;
                dim->dim_value = val->dims[d];
                if (val->vi == vi)
                    val->decl_dims[d] = val->dims[d]; /* the index stays in step with the file */
            }
        }
    return 0;
}
