/* Model summaries (see rm_info.h and rm_model_info in remodel.h). */
#include "rm_info.h"

#include "rm_model.h"
#include "rm_tree.h"
#include "rm_shape.h"

#include <stdlib.h>
#include <string.h>

static int cmp_ops(const void *a, const void *b)
{
    const struct rm_op_count *x = a, *y = b;
    if (x->count != y->count)
        return y->count - x->count;
    return strcmp(x->op, y->op);
}

int rm_info_compute(const struct rm_graph *g, struct rm_info *info, struct rm_error *err)
{
    memset(info, 0, sizeof *info);
    info->n_nodes = g->n_nodes;
    info->n_initializers = g->proto->n_initializer;
    info->ops = calloc(g->n_nodes ? g->n_nodes : 1, sizeof *info->ops);
    if (!info->ops)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    for (size_t i = 0; i < g->n_nodes; i++) {
        const char *op = g->nodes[i].proto->op_type ? g->nodes[i].proto->op_type : "";
        size_t k = 0;
        while (k < info->n_ops && strcmp(info->ops[k].op, op) != 0)
            k++;
        if (k == info->n_ops)
            info->ops[info->n_ops++].op = op;
        info->ops[k].count++;
    }
    qsort(info->ops, info->n_ops, sizeof *info->ops, cmp_ops);

    for (size_t i = 0; i < g->proto->n_initializer; i++) {
        const Onnx__TensorProto *t = g->proto->initializer[i];
        int64_t n;
        if (rm_dims_numel(t->dims, t->n_dims, &n) == 0 && info->params <= INT64_MAX - n)
            info->params += n;
        info->param_bytes += rm_tensor_nbytes(t);
    }
    info->macs = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        int64_t m = rm_node_macs(g, i);
        if (m < 0 || __builtin_add_overflow(info->macs, m, &info->macs)) {
            info->macs = -1; /* unknown, or past int64: no count to give */
            break;
        }
    }
    return 0;
}

void rm_info_free(struct rm_info *info)
{
    if (!info)
        return;
    free(info->ops);
    free(info->opsets);
    free(info->inputs);
    free(info->outputs);
    memset(info, 0, sizeof *info);
}

/* A declared graph input or output. */
static void value_info(const Onnx__ValueInfoProto *vi, rm_value_info *out)
{
    memset(out, 0, sizeof *out);
    out->name = vi->name ? vi->name : "";
    out->rank = -1;
    if (!vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        return;
    const Onnx__TypeProto__Tensor *tt = vi->type->tensor_type;
    out->dtype = tt->has_elem_type ? tt->elem_type : 0;
    if (!tt->shape || tt->shape->n_dim > RM_MAX_RANK)
        return;
    out->rank = (int)tt->shape->n_dim;
    for (int d = 0; d < out->rank; d++) {
        const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
        out->dims[d] = -1;
        if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
            out->dims[d] = dim->dim_value;
        else if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM)
            out->dim_names[d] = dim->dim_param;
    }
}

/* Parameters held by Constant nodes (paddle2onnx writes every weight so) count as the
 * initializers do, each Constant once. */
static int constant_params(struct rm_model *m, const struct rm_graph *g, struct rm_info *info,
                           struct rm_error *err)
{
    bool any = false;
    for (size_t i = 0; i < g->n_nodes && !any; i++)
        any = g->nodes[i].op == RM_OP_CONSTANT;
    if (!any)
        return 0;
    const struct rm_tree *t = rm_model_tree(m, err);
    if (!t)
        return err->code;
    bool *seen = calloc(g->n_nodes + 1, sizeof *seen);
    if (!seen)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    for (size_t i = 0; i < t->n_modules; i++)
        for (size_t k = 0; k < t->modules[i]->n_params; k++) {
            const struct rm_param *p = &t->modules[i]->params[k];
            if (p->constant < 0 || seen[p->constant])
                continue;
            seen[p->constant] = true;
            const Onnx__TensorProto *tp = rm_param_tensor(g, p);
            int64_t n;
            if (tp && rm_dims_numel(tp->dims, tp->n_dims, &n) == 0 && info->params <= INT64_MAX - n) {
                info->params += n;
                info->param_bytes += rm_tensor_nbytes(tp);
            }
        }
    free(seen);
    return 0;
}

int rm_model_info(struct rm_model *m, struct rm_info *info, struct rm_error *err)
{
    const struct rm_graph *g = rm_model_graph(m, err);
    if (!g || g->malformed) { /* a summary of a malformed node would be made of defaults */
        memset(info, 0, sizeof *info);
        if (g)
            return rm_error_set(err, RM_EFORMAT, "%s%s%s", m->path ? m->path : "", m->path ? ": " : "",
                                g->malformed);
        return err ? err->code : RM_ENOMEM;
    }
    int rc = rm_info_compute(g, info, err);
    if (rc)
        return rc;
    if ((rc = constant_params(m, g, info, err)))
        return rc;
    /* sizes inferred with unknown input dims standing in as 1 are no MAC count */
    struct rm_error unknown;
    if (rm_model_check_inputs(m, NULL, &unknown))
        info->macs = -1;
    const Onnx__ModelProto *mp = m->proto;
    const Onnx__GraphProto *gp = mp->graph;
    info->file_bytes = m->path ? (uint64_t)m->file_size : 0;
    info->ir_version = mp->ir_version;
    info->producer_name = mp->producer_name ? mp->producer_name : "";
    info->producer_version = mp->producer_version ? mp->producer_version : "";
    info->opsets = calloc(mp->n_opset_import + 1, sizeof *info->opsets);
    info->inputs = calloc(gp->n_input + 1, sizeof *info->inputs);
    info->outputs = calloc(gp->n_output + 1, sizeof *info->outputs);
    if (!info->opsets || !info->inputs || !info->outputs) {
        rm_info_free(info);
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        info->opsets[i].domain = mp->opset_import[i]->domain ? mp->opset_import[i]->domain : "";
        info->opsets[i].version = mp->opset_import[i]->version;
    }
    info->n_opsets = mp->n_opset_import;
    for (size_t i = 0; i < gp->n_input; i++) {
        int v = gp->input[i]->name ? rm_graph_find(g, gp->input[i]->name) : -1;
        if (v >= 0 && g->values[v].init >= 0)
            continue; /* old exporters list initializers as inputs */
        value_info(gp->input[i], &info->inputs[info->n_inputs++]);
    }
    for (size_t i = 0; i < gp->n_output; i++)
        value_info(gp->output[i], &info->outputs[info->n_outputs++]);
    return 0;
}
