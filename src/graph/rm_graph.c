#include "rm_graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rm_graph_find(const struct rm_graph *g, const char *name)
{
    return name ? rm_strmap_get(&g->names, name) : -1;
}

/* Find or add name; returns its index. Capacity was sized up front. */
static int intern(struct rm_graph *g, const char *name)
{
    int v;
    if (rm_strmap_put(&g->names, name, (int)g->n_values, &v))
        return -1; /* cannot happen: the map was reserved for every name */
    if ((size_t)v < g->n_values)
        return v;
    struct rm_value *val = &g->values[g->n_values++];
    memset(val, 0, sizeof *val);
    val->name = name;
    val->producer = val->producer_slot = val->init = val->input = val->output = -1;
    val->rank = val->decl_rank = -1;
    return v;
}

static void set_type_from_vi(struct rm_value *v, const Onnx__ValueInfoProto *vi)
{
    v->vi = vi;
    if (!vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        return;
    const Onnx__TypeProto__Tensor *tt = vi->type->tensor_type;
    if (tt->has_elem_type)
        v->decl_type = tt->elem_type;
    if (!tt->shape || tt->shape->n_dim > RM_MAX_RANK)
        return;
    v->decl_rank = (int)tt->shape->n_dim;
    for (size_t i = 0; i < tt->shape->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        v->decl_dims[i] = d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
                                  d->dim_value >= 0 ? d->dim_value : -1;
    }
}

void rm_graph_free(struct rm_graph *g)
{
    if (!g)
        return;
    free(g->nodes);
    free(g->values);
    rm_strmap_free(&g->names);
    free(g->pool);
    free(g->known);
    free(g->issues);
    rm_arena_free(&g->shape_arena);
    memset(g, 0, sizeof *g);
}

int rm_graph_init(struct rm_graph *g, struct rm_model *m, struct rm_error *err)
{
    memset(g, 0, sizeof *g);
    g->model = m;
    g->proto = m->proto->graph;
    const Onnx__GraphProto *gp = g->proto;
    for (size_t i = 0; i < m->proto->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->proto->opset_import[i];
        if (!o->domain || !o->domain[0] || strcmp(o->domain, "ai.onnx") == 0)
            g->opset = o->version;
    }

    /* upper bound on distinct names, checked for overflow (counts come from the file) */
    uint64_t names = (uint64_t)gp->n_initializer + gp->n_input + gp->n_output + gp->n_value_info;
    uint64_t refs = 0;
    for (size_t i = 0; i < gp->n_node; i++) {
        names += gp->node[i]->n_output + gp->node[i]->n_input;
        refs += gp->node[i]->n_output + 2 * (uint64_t)gp->node[i]->n_input;
    }
    if (names > (1u << 28) || refs > (1u << 29))
        return rm_error_set(err, RM_ENOMEM, "graph too large: %llu names",
                            (unsigned long long)names);
    g->n_nodes = gp->n_node;
    g->nodes = calloc(gp->n_node ? gp->n_node : 1, sizeof *g->nodes);
    g->values = calloc(names ? names : 1, sizeof *g->values);
    g->pool = malloc((refs ? refs : 1) * sizeof *g->pool);
    if (!g->nodes || !g->values || !g->pool || rm_strmap_reserve(&g->names, (size_t)names)) {
        rm_graph_free(g);
        return rm_error_set(err, RM_ENOMEM, "out of memory indexing the graph");
    }

    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *t = gp->initializer[i];
        if (!t->name)
            continue;
        struct rm_value *v = &g->values[intern(g, t->name)];
        if (v->init < 0) {
            v->init = (int)i;
            v->decl_type = t->has_data_type ? t->data_type : 0;
            if (t->n_dims <= RM_MAX_RANK) {
                v->decl_rank = (int)t->n_dims;
                for (size_t d = 0; d < t->n_dims; d++)
                    v->decl_dims[d] = t->dims[d];
            }
        }
    }
    for (size_t i = 0; i < gp->n_value_info; i++)
        if (gp->value_info[i]->name) {
            struct rm_value *v = &g->values[intern(g, gp->value_info[i]->name)];
            if (!v->vi && v->init < 0)
                set_type_from_vi(v, gp->value_info[i]);
        }
    for (size_t i = 0; i < gp->n_input; i++)
        if (gp->input[i]->name) {
            struct rm_value *v = &g->values[intern(g, gp->input[i]->name)];
            if (v->input < 0)
                v->input = (int)i;
            if (v->init < 0)
                set_type_from_vi(v, gp->input[i]);
        }
    for (size_t i = 0; i < gp->n_output; i++)
        if (gp->output[i]->name) {
            struct rm_value *v = &g->values[intern(g, gp->output[i]->name)];
            if (v->output < 0)
                v->output = (int)i;
            set_type_from_vi(v, gp->output[i]);
        }

    /* node inputs/outputs; consumers counted first, then filled */
    int *pool = g->pool;
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *n = gp->node[i];
        g->nodes[i].proto = gp->node[i];
        g->nodes[i].op = rm_op_lookup(n->domain, n->op_type);
        g->nodes[i].inputs = pool;
        pool += n->n_input;
        g->nodes[i].outputs = pool;
        pool += n->n_output;
        g->nodes[i].n_inputs = n->n_input;
        g->nodes[i].n_outputs = n->n_output;
        for (size_t k = 0; k < n->n_input; k++) {
            const char *s = n->input[k];
            int v = s && s[0] ? intern(g, s) : -1;
            g->nodes[i].inputs[k] = v;
            if (v >= 0)
                g->values[v].n_consumers++;
        }
        for (size_t k = 0; k < n->n_output; k++) {
            const char *s = n->output[k];
            int v = s && s[0] ? intern(g, s) : -1;
            g->nodes[i].outputs[k] = v;
            if (v >= 0 && g->values[v].producer < 0) {
                g->values[v].producer = (int)i;
                g->values[v].producer_slot = (int)k;
            }
        }
    }
    for (size_t v = 0; v < g->n_values; v++) {
        struct rm_value *val = &g->values[v];
        val->elem_type = val->decl_type;
        val->rank = val->decl_rank;
        memcpy(val->dims, val->decl_dims, sizeof val->dims);
        g->values[v].consumers = pool;
        pool += g->values[v].n_consumers;
        g->values[v].n_consumers = 0;
    }
    for (size_t i = 0; i < gp->n_node; i++)
        for (size_t k = 0; k < gp->node[i]->n_input; k++) {
            int v = g->nodes[i].inputs[k];
            if (v >= 0)
                g->values[v].consumers[g->values[v].n_consumers++] = (int)i;
        }
    return 0;
}

int rm_graph_new(struct rm_graph **out, struct rm_model *m, struct rm_error *err)
{
    *out = NULL;
    struct rm_graph *g = malloc(sizeof *g);
    if (!g)
        return rm_error_set(err, RM_ENOMEM, "out of memory indexing the graph");
    int rc = rm_graph_init(g, m, err);
    if (rc) {
        free(g);
        return rc;
    }
    g->refs = 1;
    *out = g;
    return 0;
}

void rm_graph_hold(struct rm_graph *g)
{
    if (g && g->refs > 0)
        g->refs++;
}

void rm_graph_drop(struct rm_graph *g)
{
    if (!g || g->refs <= 0 || --g->refs > 0)
        return;
    rm_graph_free(g);
    free(g);
}

int rm_graph_find_node(const struct rm_graph *g, const char *name)
{
    for (size_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].proto->name && strcmp(g->nodes[i].proto->name, name) == 0)
            return (int)i;
    return -1;
}

int rm_graph_initializer_of(const struct rm_graph *g, int v)
{
    for (int hops = 0; v >= 0 && (size_t)v < g->n_values && hops < 64; hops++) {
        const struct rm_value *val = &g->values[v];
        if (val->init >= 0)
            return v;
        if (val->producer < 0)
            return -1;
        const struct rm_node *p = &g->nodes[val->producer];
        if (p->op != RM_OP_IDENTITY || p->proto->n_input < 1)
            return -1;
        v = p->inputs[0];
    }
    return -1;
}

const Onnx__TensorProto *rm_graph_const_tensor(const struct rm_graph *g, int v)
{
    if (v < 0 || (size_t)v >= g->n_values)
        return NULL;
    int src = rm_graph_initializer_of(g, v);
    if (src >= 0)
        return g->proto->initializer[g->values[src].init];
    int p = g->values[v].producer;
    if (p < 0 || g->nodes[p].op != RM_OP_CONSTANT)
        return NULL;
    const Onnx__AttributeProto *a = rm_node_attr(g->nodes[p].proto, "value");
    return a ? a->t : NULL;
}

const Onnx__AttributeProto *rm_node_attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && strcmp(n->attribute[i]->name, name) == 0)
            return n->attribute[i];
    return NULL;
}

int64_t rm_node_attr_int(const Onnx__NodeProto *n, const char *name, int64_t def)
{
    const Onnx__AttributeProto *a = rm_node_attr(n, name);
    /* typed INT without the field: a zero a proto3 writer left out (i is 0 then) */
    return a && (a->has_i || (a->has_type && a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT)) ? a->i : def;
}

float rm_node_attr_float(const Onnx__NodeProto *n, const char *name, float def)
{
    const Onnx__AttributeProto *a = rm_node_attr(n, name);
    return a && (a->has_f || (a->has_type && a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT)) ? a->f : def;
}

const int64_t *rm_node_attr_ints(const Onnx__NodeProto *n, const char *name, size_t *count)
{
    const Onnx__AttributeProto *a = rm_node_attr(n, name);
    *count = a ? a->n_ints : 0;
    return a && a->n_ints ? a->ints : NULL;
}

const char *rm_graph_node_label(const struct rm_graph *g, size_t i)
{
    static char buf[256];
    const Onnx__NodeProto *n = g->nodes[i].proto;
    if (n->name && n->name[0])
        return n->name;
    snprintf(buf, sizeof buf, "%s #%zu", n->op_type ? n->op_type : "node", i);
    return buf;
}
