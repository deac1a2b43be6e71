/* Shape inference (see rm_shape.h): the pass over the graph, and what shape rules see
 * of their node (rm_ops_int.h). The rules themselves are in src/ops/. */
#include "rm_shape.h"
#include "rm_check.h"
#include "rm_ops_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Constants larger than this are not loaded or computed while inferring: shape
 * arithmetic works on a few dozen numbers, weights are not needed. */
#define KNOWN_MAX 4096

struct rm_shape_run {
    struct rm_graph *g;
    struct rm_error *err;
    int oom;
};

/* ---- what a rule sees ------------------------------------------------------------- */

static int input_value(const struct rm_snode *s, size_t k)
{
    const struct rm_node *n = &s->g->nodes[s->node];
    return k < n->proto->n_input ? n->inputs[k] : -1;
}

bool rm_s_present(const struct rm_snode *s, size_t k)
{
    return input_value(s, k) >= 0;
}

const struct rm_value *rm_s_in(const struct rm_snode *s, size_t k)
{
    int v = input_value(s, k);
    return v >= 0 && s->g->values[v].rank >= 0 ? &s->g->values[v] : NULL;
}

void rm_s_out(struct rm_snode *s, size_t k, int32_t dtype, int rank, const int64_t *dims)
{
    const struct rm_node *n = &s->g->nodes[s->node];
    if (k >= n->proto->n_output || n->outputs[k] < 0 || rank < 0 || rank > RM_MAX_RANK)
        return;
    struct rm_value *o = &s->g->values[n->outputs[k]];
    s->wrote = true;
    s->g->known[n->outputs[k]] = NULL; /* a second producer of the name: what was known is stale */
    o->elem_type = dtype;
    o->rank = rank;
    for (int i = 0; i < rank; i++)
        o->dims[i] = dims[i] < 0 ? -1 : dims[i];
}

static void issue(struct rm_snode *s, int code, const char *fmt, va_list ap)
{
    struct rm_graph *g = s->g;
    if (g->n_issues && g->issues[g->n_issues - 1].node == s->node)
        return; /* the first problem of a node is the one that matters */
    char why[RM_ERROR_MSG_MAX];
    vsnprintf(why, sizeof why, fmt, ap);
    char msg[RM_ERROR_MSG_MAX + 600];
    int prefix = snprintf(msg, sizeof msg, "node '%s' (%s): ", rm_graph_node_label(g, (size_t)s->node),
                          s->np->op_type ? s->np->op_type : "?");
    snprintf(msg + prefix, sizeof msg - (size_t)prefix, "%s", why);
    char *copy = rm_arena_strdup(&g->shape_arena, msg);
    if (!copy) {
        s->run->oom = 1;
        return;
    }
    g->issues[g->n_issues++] = (struct rm_shape_issue){s->node, code, copy, copy + prefix};
}

int rm_s_bad(struct rm_snode *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    issue(s, RM_EFORMAT, fmt, ap);
    va_end(ap);
    return 0;
}

int rm_s_unsupported(struct rm_snode *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    issue(s, RM_EUNSUPPORTED, fmt, ap);
    va_end(ap);
    return 0;
}

/* A host tensor of the given type and shape in the shape arena; NULL when too large or
 * out of memory. */
static struct rm_host_tensor *new_tensor(struct rm_shape_run *r, int32_t dtype, int rank, const int64_t *dims)
{
    int64_t n;
    if (rank < 0 || rank > RM_MAX_RANK || rm_dims_numel(dims, (size_t)rank, &n) || n > KNOWN_MAX)
        return NULL;
    struct rm_host_tensor *t = rm_arena_calloc(&r->g->shape_arena, 1, sizeof *t);
    void *data = rm_arena_alloc(&r->g->shape_arena, (size_t)(n ? n : 1) * 8);
    if (!t || !data) {
        r->oom = 1;
        return NULL;
    }
    t->dtype = dtype;
    t->rank = rank;
    if (rank) /* a scalar's dims may be NULL (a TensorProto without dims) */
        memcpy(t->dims, dims, sizeof(int64_t) * (size_t)rank);
    t->numel = n;
    t->data = data;
    return t;
}

/* Contents of a TensorProto as float32 (float types) or int64 (integer and bool types). */
static const struct rm_host_tensor *from_proto(struct rm_shape_run *r, const Onnx__TensorProto *t)
{
    int32_t want = rm_dtype_host(t->data_type);
    if (!want || t->n_dims > RM_MAX_RANK || rm_tensor_is_external(t) || rm_tensor_check(t, NULL))
        return NULL;
    struct rm_host_tensor *h = new_tensor(r, want, (int)t->n_dims, t->dims);
    if (!h)
        return NULL;
    int rc = h->numel == 0 ? 0
             : want == RM_F32 ? rm_tensor_to_f32(t, h->data, h->numel, NULL)
                              : rm_tensor_to_i64(t, h->data, h->numel, NULL);
    return rc ? NULL : h;
}

/* Contents of a Constant node's value_float(s)/value_int(s). */
static const struct rm_host_tensor *from_constant_attr(struct rm_shape_run *r, const Onnx__NodeProto *np)
{
    const Onnx__AttributeProto *a;
    int64_t n;
    struct rm_host_tensor *h;
    if ((a = rm_node_attr(np, "value_float")) && a->has_f) {
        if ((h = new_tensor(r, RM_F32, 0, &n)))
            ((float *)h->data)[0] = a->f;
    } else if ((a = rm_node_attr(np, "value_int")) && a->has_i) {
        if ((h = new_tensor(r, RM_I64, 0, &n)))
            ((int64_t *)h->data)[0] = a->i;
    } else if ((a = rm_node_attr(np, "value_floats"))) {
        n = (int64_t)a->n_floats;
        if ((h = new_tensor(r, RM_F32, 1, &n)) && n)
            memcpy(h->data, a->floats, (size_t)n * sizeof(float));
    } else if ((a = rm_node_attr(np, "value_ints"))) {
        n = (int64_t)a->n_ints;
        if ((h = new_tensor(r, RM_I64, 1, &n)) && n)
            memcpy(h->data, a->ints, (size_t)n * sizeof(int64_t));
    } else {
        return NULL;
    }
    return h;
}

/* Known contents of value v, loading an initializer or Constant on first use. */
static const struct rm_host_tensor *known_of(struct rm_shape_run *r, int v)
{
    struct rm_graph *g = r->g;
    if (v < 0)
        return NULL;
    if (g->known[v])
        return g->known[v];
    const Onnx__TensorProto *t = rm_graph_const_tensor(g, v);
    int p = g->values[v].producer;
    if (t)
        g->known[v] = from_proto(r, t);
    else if (p >= 0 && g->nodes[p].op == RM_OP_CONSTANT)
        g->known[v] = from_constant_attr(r, g->nodes[p].proto);
    return g->known[v];
}

const struct rm_host_tensor *rm_s_const(struct rm_snode *s, size_t k)
{
    return known_of(s->run, input_value(s, k));
}

/* ---- folding small constant computations --------------------------------------- */

/* Run node's kernel when all it reads is known (Shape reads only its input's shape),
 * so that shape arithmetic downstream sees numbers: every op with a kernel, as exports
 * compute shapes with Cast, Div, Floor, Where, Equal, ConstantOfShape, Range, ... */
static void fold(struct rm_shape_run *r, int node)
{
    struct rm_graph *g = r->g;
    const struct rm_node *n = &g->nodes[node];
    const struct rm_op_def *def = rm_op_def(n->op);
    enum { MAX_IO = 64 };
    if (!def->kernel || n->proto->n_input > MAX_IO || n->proto->n_output > MAX_IO ||
        n->proto->n_output < 1 || n->outputs[0] < 0)
        return; /* (kernels write output 0: an Identity whose output 0 is '' has none) */
    if (g->n_issues && g->issues[g->n_issues - 1].node == node)
        return; /* its rule found a problem: the outputs may keep declared shapes that do not
                 * fit the inputs, and the kernel would read past them (fuzzing: a Reshape) */
    const struct rm_host_tensor *in[MAX_IO] = {NULL};
    struct rm_host_tensor shape_of, *out[MAX_IO];
    for (size_t k = 0; k < n->proto->n_input; k++) {
        int v = n->inputs[k];
        in[k] = NULL;
        if (v < 0)
            continue;
        if (n->op == RM_OP_SHAPE) {
            const struct rm_value *x = &g->values[v];
            if (x->rank < 0)
                return;
            for (int i = 0; i < x->rank; i++)
                if (x->dims[i] < 0)
                    return;
            memset(&shape_of, 0, sizeof shape_of);
            shape_of.rank = x->rank;
            memcpy(shape_of.dims, x->dims, sizeof shape_of.dims);
            in[k] = &shape_of;
            continue;
        }
        if (!(in[k] = known_of(r, v)))
            return;
        /* a float-only kernel never sees int64 data (the engine refuses the node) */
        if ((def->flags & RM_OPF_F32) && in[k]->dtype != RM_F32)
            return;
        /* the kernel reads the tensor by the shape the rule saw (fuzzing: a name written by
         * two nodes, an initializer of another shape than its declared graph output) */
        const struct rm_value *iv = &g->values[v];
        if (in[k]->rank != iv->rank || memcmp(in[k]->dims, iv->dims, sizeof(int64_t) * (size_t)in[k]->rank))
            return;
    }
    for (size_t k = 0; k < n->proto->n_output; k++) {
        int v = n->outputs[k];
        out[k] = NULL;
        if (v < 0)
            continue;
        const struct rm_value *o = &g->values[v];
        /* contents are carried as float32 or int64, like the engine's (bool as 0/1) */
        if (o->rank < 0 || !rm_dtype_host(o->elem_type))
            return;
        if (!(out[k] = new_tensor(r, rm_dtype_host(o->elem_type), o->rank, o->dims)))
            return;
    }
    struct rm_kcall kc = {n->op, n->proto, g->opset, rm_graph_node_label(g, (size_t)node), n->proto->n_input,
                          in, n->proto->n_output, out, NULL};
    if (def->kernel(&kc))
        return; /* what the kernel refuses, the engine reports when it runs the node */
    for (size_t k = 0; k < n->proto->n_output; k++)
        if (n->outputs[k] >= 0)
            g->known[n->outputs[k]] = out[k];
}

/* ---- the pass ------------------------------------------------------------------------ */

/* "graph input 'x': ..." when input v is declared with a negative size (the index reads
 * it as unknown, and dynamic dims would make it 1), else NULL. */
static const char *negative_dim(struct rm_shape_run *r, const struct rm_value *v)
{
    const Onnx__ValueInfoProto *vi = v->vi;
    if (!vi || !vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !vi->type->tensor_type->shape)
        return NULL;
    const Onnx__TensorShapeProto *sh = vi->type->tensor_type->shape;
    for (size_t d = 0; d < sh->n_dim; d++)
        if (sh->dim[d]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && sh->dim[d]->dim_value < 0) {
            char msg[RM_ERROR_MSG_MAX];
            snprintf(msg, sizeof msg, "graph input '%s': dimension %zu is declared as %lld; a size is >= 0 "
                     "(write an unknown size as a name, dim_param)", v->name, d, (long long)sh->dim[d]->dim_value);
            char *copy = rm_arena_strdup(&r->g->shape_arena, msg);
            if (!copy)
                r->oom = 1;
            return copy;
        }
    return NULL;
}

static const struct rm_input_spec *given(const struct rm_shape_opts *o, const char *name)
{
    for (size_t i = 0; o && i < o->n_inputs; i++)
        if (!strcmp(o->inputs[i].name, name))
            return &o->inputs[i];
    return NULL;
}

int rm_shape_infer(struct rm_graph *g, const struct rm_shape_opts *opts, struct rm_error *err)
{
    struct rm_shape_run r = {g, err, 0};
    rm_arena_free(&g->shape_arena);
    rm_arena_init(&g->shape_arena, (size_t)64 << 10);
    free(g->known);
    free(g->issues);
    g->n_issues = 0;
    g->malformed = NULL;
    g->shaped = false;
    g->known = calloc(g->n_values ? g->n_values : 1, sizeof *g->known);
    g->issues = malloc((g->n_nodes ? g->n_nodes : 1) * sizeof *g->issues);
    if (!g->known || !g->issues)
        return rm_error_set(err, RM_ENOMEM, "out of memory inferring shapes");
    for (size_t v = 0; v < g->n_values; v++) {
        struct rm_value *val = &g->values[v];
        val->elem_type = val->decl_type;
        val->rank = val->decl_rank;
        memcpy(val->dims, val->decl_dims, sizeof val->dims);
        if (val->input < 0 || val->init >= 0)
            continue;
        const struct rm_input_spec *sp = given(opts, val->name);
        if (sp) {
            val->rank = sp->rank;
            memcpy(val->dims, sp->dims, sizeof(int64_t) * (size_t)sp->rank);
            if (sp->value)
                g->known[v] = sp->value;
        } else if (!g->malformed && (g->malformed = negative_dim(&r, val))) {
            continue;
        } else if (opts && opts->dynamic_dim > 0) {
            for (int i = 0; i < val->rank; i++)
                if (val->dims[i] < 0)
                    val->dims[i] = opts->dynamic_dim;
        }
    }
    for (size_t i = 0; i < g->n_nodes && !r.oom; i++) {
        const struct rm_node *n = &g->nodes[i];
        const struct rm_op_def *def = rm_op_def(n->op);
        struct rm_snode s = {g, (int)i, n->proto, g->opset, &r, false};
        char why[256];
        if (n->op != RM_OP_UNKNOWN && rm_node_malformed(n->proto, g->opset, why, sizeof why)) {
            rm_s_bad(&s, "%s", why); /* no rule reads it: its outputs keep what they declare */
            if (!g->malformed && g->n_issues && g->issues[g->n_issues - 1].node == (int)i)
                g->malformed = g->issues[g->n_issues - 1].msg;
            continue;
        }
        if (!def->shape)
            continue; /* an op without a rule: its outputs keep their declared shapes */
        if (n->op != RM_OP_CONSTANT && !rm_s_present(&s, 0)) {
            rm_s_bad(&s, "input 0 is missing");
            continue;
        }
        if (def->shape(&s))
            r.oom = 1;
        else if (s.wrote) /* (a Concat with an input '' keeps its declared output: no fold) */
            fold(&r, (int)i);
    }
    if (r.oom)
        return rm_error_set(err, RM_ENOMEM, "out of memory inferring shapes");
    g->shaped = true;
    return 0;
}

int rm_shape_check(const struct rm_graph *g, struct rm_error *err)
{
    if (g->malformed)
        return rm_error_set(err, RM_EFORMAT, "%s", g->malformed);
    if (!g->n_issues)
        return 0;
    return rm_error_set(err, g->issues[0].code, "%s", g->issues[0].msg);
}

int64_t rm_node_macs(const struct rm_graph *g, size_t i)
{
    rm_macs_fn f = rm_op_def(g->nodes[i].op)->macs;
    return f ? f(g, (int)i) : 0;
}
