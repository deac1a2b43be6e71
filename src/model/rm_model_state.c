/* What a model derives from its ModelProto, kept with it: the graph index with shapes
 * and the module tree, rebuilt only after the model changed (rm_model.h); the input
 * shapes they are inferred for; and clones that share a model's tensor bytes. */
#include "rm_model.h"

#include "rm_graph.h"
#include "rm_shape.h"
#include "rm_tree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void drop_tree(struct rm_model *m)
{
    rm_tree_free(m->tree);
    m->tree = NULL;
}

static void drop_graph(struct rm_model *m)
{
    drop_tree(m);
    rm_graph_drop(m->graph);
    m->graph = NULL;
}

static void free_inputs(struct rm_model *m)
{
    for (size_t i = 0; i < m->n_inputs; i++) {
        free((char *)m->inputs[i].name);
        if (m->inputs[i].value) {
            rm_tensor_free((struct rm_host_tensor *)m->inputs[i].value);
            free((struct rm_host_tensor *)m->inputs[i].value);
        }
    }
    free(m->inputs);
    m->inputs = NULL;
    m->n_inputs = 0;
}

void rm_model_drop_state(struct rm_model *m)
{
    drop_graph(m);
    free_inputs(m);
    rm_strmap_free(&m->added);
    rm_strmap_free(&m->meta_keys);
    m->meta_keys_arr = NULL;
}

void rm_model_touch(struct rm_model *m)
{
    m->gen++;
    m->names_known = false; /* anything may have been renamed */
}

/* The index of the current proto, without shapes (they may be stale). */
struct rm_graph *rm_model_index(struct rm_model *m, struct rm_error *err)
{
    if (m->graph && m->graph_gen != m->gen)
        drop_graph(m);
    if (!m->graph) {
        if (rm_graph_new(&m->graph, m, err))
            return NULL;
        m->graph_gen = m->gen;
        m->stats.index_builds++;
        rm_strmap_free(&m->added); /* the index knows them now */
        m->names_known = true;
    }
    return m->graph;
}

struct rm_graph *rm_model_graph(struct rm_model *m, struct rm_error *err)
{
    struct rm_graph *g = rm_model_index(m, err);
    if (!g)
        return NULL;
    if (g->shaped && m->shapes_key == m->inputs_gen)
        return g;
    if (g->refs > 1) {
        /* someone still reads the shapes of this index: infer on a fresh one */
        drop_graph(m);
        m->gen++;
        if (!(g = rm_model_index(m, err)))
            return NULL;
    }
    drop_tree(m); /* leaves' arguments come from shapes */
    struct rm_shape_opts so = {m->dynamic_dim > 0 ? m->dynamic_dim : 1, m->n_inputs, m->inputs};
    if (rm_shape_infer(g, &so, err))
        return NULL;
    m->shapes_key = m->inputs_gen;
    m->stats.shape_runs++;
    return g;
}

struct rm_tree *rm_model_tree(struct rm_model *m, struct rm_error *err)
{
    struct rm_graph *g = rm_model_graph(m, err);
    if (!g)
        return NULL;
    if (g->malformed) { /* its modules' arguments would be made of defaults */
        rm_error_set(err, RM_EFORMAT, "%s", g->malformed);
        return NULL;
    }
    if (!m->tree) {
        if (rm_tree_build(&m->tree, g, err))
            return NULL;
        m->stats.tree_builds++;
    }
    return m->tree;
}

static bool same_inputs(const struct rm_model *m, const struct rm_input_spec *s, size_t n)
{
    if (n != m->n_inputs)
        return false;
    for (size_t i = 0; i < n; i++) {
        const struct rm_input_spec *a = &m->inputs[i], *b = &s[i];
        if (strcmp(a->name, b->name) || a->rank != b->rank ||
            memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)a->rank) || !a->value != !b->value)
            return false;
        if (a->value && (a->value->numel != b->value->numel || a->value->dtype != b->value->dtype ||
                         memcmp(a->value->data, b->value->data, (size_t)a->value->numel * 8)))
            return false;
    }
    return true;
}

int rm_model_set_inputs(struct rm_model *m, const struct rm_input_spec *specs, size_t n, struct rm_error *err)
{
    if (same_inputs(m, specs, n))
        return 0;
    /* copied before the old ones go: specs may point into them */
    struct rm_model fresh = {0};
    if (n && !(fresh.inputs = calloc(n, sizeof *fresh.inputs)))
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    fresh.n_inputs = n; /* zeroed: free_inputs frees what was made */
    for (size_t i = 0; i < n; i++) {
        struct rm_input_spec *d = &fresh.inputs[i];
        const struct rm_host_tensor *v = specs[i].value;
        *d = specs[i];
        d->name = strdup(specs[i].name);
        d->value = NULL;
        struct rm_host_tensor *c = v ? calloc(1, sizeof *c) : NULL;
        if (!d->name || (v && (!c || rm_tensor_alloc(c, v->dtype, v->rank, v->dims, err)))) {
            free(c);
            free_inputs(&fresh);
            return rm_error_set(err, RM_ENOMEM, "out of memory");
        }
        if (v && v->numel)
            memcpy(c->data, v->data, (size_t)v->numel * (v->dtype == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? 8 : 4));
        d->value = c;
    }
    free_inputs(m);
    m->inputs = fresh.inputs;
    m->n_inputs = fresh.n_inputs;
    m->inputs_gen++;
    return 0;
}

const char *rm_model_path(const struct rm_model *m)
{
    return m->path;
}

/* The declared tensor type of graph input proto index i, or NULL. */
static const Onnx__TypeProto__Tensor *input_tensor_type(const struct rm_model *m, size_t i)
{
    const Onnx__ValueInfoProto *vi = m->proto->graph->input[i];
    if (!vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        return NULL;
    return vi->type->tensor_type;
}

/* The graph input called name that is not an initializer: its index in the proto's
 * input list, or -1. */
static long find_input(struct rm_model *m, const char *name, struct rm_error *err, int *failed)
{
    const struct rm_graph *g = rm_model_index(m, err);
    *failed = !g;
    if (!g)
        return -1;
    int v = rm_graph_find(g, name);
    if (v < 0 || g->values[v].input < 0 || g->values[v].init >= 0)
        return -1;
    return g->values[v].input;
}

int rm_model_set_input_shape(struct rm_model *m, const char *input, int rank, const int64_t *dims,
                             struct rm_error *err)
{
    int rc = rm_input_dims_check(input, rank, dims, err);
    if (rc)
        return rc;
    int failed;
    long in = find_input(m, input, err, &failed);
    if (failed)
        return err ? err->code : RM_ENOMEM;
    if (in < 0)
        return rm_error_set(err, RM_ENOTFOUND, "the model has no input named '%s'", input);
    /* the declared rank and sizes hold: a run with other sizes would disagree with the
     * model's own declaration (rewriting it is rm_model_rewrite_input_shape's job) */
    const Onnx__TypeProto__Tensor *tt = input_tensor_type(m, (size_t)in);
    if (tt && tt->shape) {
        if (tt->shape->n_dim != (size_t)rank)
            return rm_error_set(err, RM_EUSAGE, "input '%s' has %zu dimensions; %d were given", input,
                                tt->shape->n_dim, rank);
        for (int i = 0; i < rank; i++) {
            const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
            if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && d->dim_value != dims[i])
                return rm_error_set(err, RM_EUSAGE,
                                    "input '%s': dimension %d is declared %lld; %lld was given (only dynamic "
                                    "dimensions can be set without rewriting the model's input)",
                                    input, i, (long long)d->dim_value, (long long)dims[i]);
        }
    }
    /* the settings so far, with this input's replaced */
    struct rm_input_spec *specs = calloc(m->n_inputs + 1, sizeof *specs);
    if (!specs)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < m->n_inputs; i++)
        if (strcmp(m->inputs[i].name, input))
            specs[n++] = m->inputs[i];
    specs[n].name = input;
    specs[n].rank = rank;
    memcpy(specs[n].dims, dims, sizeof(int64_t) * (size_t)rank);
    rc = rm_model_set_inputs(m, specs, n + 1, err);
    free(specs);
    return rc;
}

int rm_input_dims_check(const char *input, int rank, const int64_t *dims, struct rm_error *err)
{
    if (rank < 0 || rank > RM_MAX_RANK)
        return rm_error_set(err, RM_EUSAGE, "input '%s': rank %d is outside 0..%d", input, rank, RM_MAX_RANK);
    for (int i = 0; i < rank; i++)
        if (dims[i] <= 0)
            return rm_error_set(err, RM_EUSAGE, "input '%s': dimension %d is %lld; sizes are positive", input, i,
                                (long long)dims[i]);
    return 0;
}

/* Append dims as "[N, 3, H, W]" (a dim's name where it has one, "?" where it has none). */
static void dims_text(char *buf, size_t n, const Onnx__TensorShapeProto *sh)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (size_t d = 0; d < sh->n_dim && k < n; d++) {
        const Onnx__TensorShapeProto__Dimension *dim = sh->dim[d];
        if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
            k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? ", " : "", (long long)dim->dim_value);
        else if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && dim->dim_param[0])
            k += (size_t)snprintf(buf + k, n - k, "%s%.40s", d ? ", " : "", dim->dim_param);
        else
            k += (size_t)snprintf(buf + k, n - k, "%s?", d ? ", " : "");
    }
    if (k < n)
        snprintf(buf + k, n - k, "]");
}

int rm_model_check_inputs(struct rm_model *m, int *batch_defaulted, struct rm_error *err)
{
    if (batch_defaulted)
        *batch_defaulted = 0;
    const struct rm_graph *g = rm_model_index(m, err);
    if (!g)
        return err ? err->code : RM_ENOMEM;
    const Onnx__GraphProto *gp = m->proto->graph;
    int batch = 0;
    for (size_t i = 0; i < gp->n_input; i++) {
        const char *name = gp->input[i]->name;
        int v = name ? rm_graph_find(g, name) : -1;
        if (v < 0 || g->values[v].init >= 0)
            continue;
        bool given = false;
        for (size_t k = 0; k < m->n_inputs && !given; k++)
            given = strcmp(m->inputs[k].name, name) == 0;
        if (given)
            continue;
        const Onnx__TypeProto__Tensor *tt = input_tensor_type(m, i);
        if (!tt || !tt->shape)
        {
            rm_error_set(err, RM_EUSAGE, "input '%.200s' declares no shape: give the dims it will be fed with",
                         name);
            return rm_error_fix(err, RM_FIX_INPUT_SHAPE);
        }
        /* the dynamic dims after the first, by name: "H, W" */
        char names[256] = "";
        size_t k = 0;
        int unknown = 0;
        for (size_t d = 0; d < tt->shape->n_dim; d++) {
            const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
            if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && dim->dim_value < 0)
                return rm_error_set(err, RM_EFORMAT,
                                    "graph input '%.200s': dimension %zu is declared as %lld; a size is >= 0 (write "
                                    "an unknown size as a name, dim_param)", name, d, (long long)dim->dim_value);
            if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
                continue;
            if (d == 0) {
                batch = 1;
                continue;
            }
            unknown++;
            if (k < sizeof names) {
                if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && dim->dim_param[0])
                    k += (size_t)snprintf(names + k, sizeof names - k, "%s%.40s", k ? ", " : "", dim->dim_param);
                else
                    k += (size_t)snprintf(names + k, sizeof names - k, "%sdimension %zu", k ? ", " : "", d);
            }
        }
        if (unknown) {
            char dims[256];
            dims_text(dims, sizeof dims, tt->shape);
            rm_error_set(err, RM_EUSAGE,
                         "input '%.200s' has dimensions %s; %s %s not known: give the dims it will be fed with",
                         name, dims, names, unknown > 1 ? "are" : "is");
            return rm_error_fix(err, RM_FIX_INPUT_SHAPE);
        }
    }
    if (batch_defaulted)
        *batch_defaulted = batch;
    return 0;
}

/* ---- clones ------------------------------------------------------------------------ */

/* Bytes one element of a repeated field of type t takes in its array. */
static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 4;
    }
}

/* Copy of a string in the arena (NULL stays NULL). */
static char *copy_str(struct rm_arena *a, const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *c = rm_arena_strdup(a, s);
    *oom |= !c;
    return c;
}

/* Deep copy of a message into a, except bytes fields (tensor data), which are shared. */
static void *copy_msg(struct rm_arena *a, const ProtobufCMessage *src, bool *oom, int depth)
{
    const ProtobufCMessageDescriptor *d = src->descriptor;
    char *dst = rm_arena_memdup(a, src, d->sizeof_message);
    if (!dst || depth > 100) {
        *oom = true;
        return NULL;
    }
    for (unsigned i = 0; i < d->n_fields && !*oom; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char *member = dst + f->offset;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && *(const uint32_t *)((const char *)src + f->quantifier_offset) != f->id)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)src + f->quantifier_offset);
            void *arr = *(void **)member;
            if (!n || !arr)
                continue;
            void *copy = rm_arena_memdup(a, arr, n * elem_size(f->type));
            if (!copy) {
                *oom = true;
                break;
            }
            *(void **)member = copy;
            if (f->type == PROTOBUF_C_TYPE_MESSAGE)
                for (size_t k = 0; k < n; k++)
                    ((void **)copy)[k] = copy_msg(a, ((ProtobufCMessage **)copy)[k], oom, depth + 1);
            else if (f->type == PROTOBUF_C_TYPE_STRING)
                for (size_t k = 0; k < n; k++)
                    ((char **)copy)[k] = copy_str(a, ((char **)copy)[k], oom);
        } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            const ProtobufCMessage *sub = *(ProtobufCMessage **)member;
            if (sub)
                *(void **)member = copy_msg(a, sub, oom, depth + 1);
        } else if (f->type == PROTOBUF_C_TYPE_STRING) {
            const char *s = *(char **)member;
            if (s && s != f->default_value)
                *(char **)member = copy_str(a, s, oom);
        }
    }
    ProtobufCMessage *m = (ProtobufCMessage *)dst;
    if (!*oom && m->n_unknown_fields) {
        m->unknown_fields = rm_arena_memdup(a, m->unknown_fields, m->n_unknown_fields * sizeof *m->unknown_fields);
        *oom |= !m->unknown_fields;
    }
    return dst;
}

int rm_model_clone(struct rm_model **out, struct rm_model *m, struct rm_error *err)
{
    *out = NULL;
    struct rm_model *c = calloc(1, sizeof *c);
    if (!c)
        return rm_error_set(err, RM_ENOMEM, "out of memory cloning the model");
    rm_arena_init(&c->arena, 0);
    bool oom = false;
    c->proto = copy_msg(&c->arena, &m->proto->base, &oom, 0);
    c->path = m->path ? strdup(m->path) : NULL;
    c->dir = m->dir ? strdup(m->dir) : NULL;
    c->file_size = m->file_size;
    c->max_memory = m->max_memory;
    c->file_id = m->file_id;
    c->dynamic_dim = m->dynamic_dim;
    oom |= (m->path && !c->path) || (m->dir && !c->dir);
    c->base = m;
    m->refs++;
    if (oom || rm_model_set_inputs(c, m->inputs, m->n_inputs, err)) {
        rm_model_free(c);
        return rm_error_set(err, RM_ENOMEM, "out of memory cloning the model");
    }
    *out = c;
    return 0;
}
