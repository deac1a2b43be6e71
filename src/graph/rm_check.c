#include "rm_check.h"
#include "rm_findings.h"
#include "rm_model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct checker {
    rm_findings *out;
    int count;
};

/* rm_check_schema's findings: problems counted, warnings not */
static void schema_finding(void *ctx, int warning, const char *msg)
{
    struct checker *c = ctx;
    if (!warning)
        c->count++;
    rm_findings_add(c->out, warning ? RM_FINDING_WARNING : RM_FINDING_PROBLEM, -1, "%s", msg);
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void finding(struct checker *c, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    c->count++;
    rm_findings_add(c->out, RM_FINDING_PROBLEM, -1, "%s", buf);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Report every name that occurs more than once in names[0..n). */
static void check_unique(struct checker *c, const char **names, size_t n, const char *what)
{
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 1; i < n; i++)
        if (strcmp(names[i], names[i - 1]) == 0 && (i < 2 || strcmp(names[i], names[i - 2]) != 0))
            finding(c, "duplicate %s name '%s'", what, names[i]);
}

int rm_check_model(const struct rm_graph *g, rm_findings *out)
{
    struct checker c = {out, 0};
    const Onnx__ModelProto *m = g->model->proto;
    const Onnx__GraphProto *gp = g->proto;

    if (!m->has_ir_version || m->ir_version <= 0)
        finding(&c, "model: ir_version missing");
    if (m->n_opset_import == 0 && !(m->ir_version > 0 && m->ir_version < 3))
        finding(&c, "model: no opset_import (the ONNX opset version is required)");
    /* a node of a domain that is not imported is reported by rm_check_schema */

    size_t nmax = gp->n_initializer + gp->n_input + gp->n_node;
    const char **names = malloc((nmax ? nmax : 1) * sizeof *names);
    if (!names) {
        finding(&c, "out of memory while checking");
        return c.count;
    }
    size_t k = 0;
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *t = gp->initializer[i];
        if (!t->name || !t->name[0]) {
            finding(&c, "initializer #%zu has no name", i);
            continue;
        }
        names[k++] = t->name;
        struct rm_error err;
        if (!t->has_data_type || t->data_type == 0)
            finding(&c, "initializer '%s': data_type missing", t->name);
        else if (rm_tensor_check(t, &err))
            finding(&c, "initializer %s", err.msg + strlen("tensor "));
    }
    check_unique(&c, names, k, "initializer");
    k = 0;
    for (size_t i = 0; i < gp->n_input; i++)
        if (gp->input[i]->name)
            names[k++] = gp->input[i]->name;
    check_unique(&c, names, k, "graph input");
    k = 0;
    for (size_t i = 0; i < gp->n_node; i++)
        if (gp->node[i]->name && gp->node[i]->name[0])
            names[k++] = gp->node[i]->name;
    check_unique(&c, names, k, "node");
    free(names);

    /* tensors produced twice, inputs with no producer, producers after consumers */
    char *seen = calloc(g->n_values ? g->n_values : 1, 1); /* 1: available so far */
    if (!seen) {
        finding(&c, "out of memory while checking");
        return c.count;
    }
    for (size_t v = 0; v < g->n_values; v++)
        if (g->values[v].init >= 0 || g->values[v].input >= 0)
            seen[v] = 1;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const struct rm_node *n = &g->nodes[i];
        const Onnx__NodeProto *np = n->proto;
        const char *label = rm_graph_node_label(g, i);
        if (!np->op_type || !np->op_type[0])
            finding(&c, "node '%s': op_type missing", label);
        for (size_t a = 0; a < np->n_input; a++) {
            int v = n->inputs[a];
            if (v < 0 || seen[v])
                continue;
            const struct rm_value *val = &g->values[v];
            if (val->producer < 0)
                finding(&c, "node '%s' (%s): input '%s' is not produced by any node, initializer or graph input",
                        label, np->op_type ? np->op_type : "?", val->name);
            else
                finding(&c, "node '%s' (%s): input '%s' is produced later by node '%s' (nodes not topologically sorted)",
                        label, np->op_type ? np->op_type : "?", val->name,
                        g->nodes[val->producer].proto->name ? g->nodes[val->producer].proto->name : "?");
            seen[v] = 1; /* report each missing name once */
        }
        for (size_t a = 0; a < np->n_output; a++) {
            int v = n->outputs[a];
            if (v < 0)
                continue;
            const struct rm_value *val = &g->values[v];
            if (val->producer != (int)i)
                finding(&c, "node '%s': output '%s' is already produced by node '%s'", label, val->name,
                        rm_graph_node_label(g, (size_t)val->producer));
            else if (val->init >= 0 || val->input >= 0)
                finding(&c, "node '%s': output '%s' has the name of an initializer or graph input",
                        label, val->name);
            seen[v] = 1;
        }
        if (g->nodes[i].op == RM_OP_CONSTANT) {
            const Onnx__AttributeProto *a = rm_node_attr(np, "value");
            struct rm_error err;
            if (a && a->t && rm_tensor_check(a->t, &err))
                finding(&c, "node '%s' (Constant): %s", label, err.msg);
        }
    }
    for (size_t i = 0; i < gp->n_output; i++) {
        const char *name = gp->output[i]->name;
        int v = name ? rm_graph_find(g, name) : -1;
        if (!name || !name[0])
            finding(&c, "graph output #%zu has no name", i);
        else if (v < 0 || (g->values[v].producer < 0 && g->values[v].init < 0 && g->values[v].input < 0))
            finding(&c, "graph output '%s' is not produced by any node", name);
    }
    free(seen);
    rm_check_schema(g, schema_finding, &c);
    return c.count;
}

int rm_model_check(struct rm_model *m, rm_findings *out, struct rm_error *err)
{
    const struct rm_graph *g = rm_model_index(m, err);
    return g ? rm_check_model(g, out) : err ? err->code : RM_ENOMEM;
}
