#include "rm_info.h"

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
        if (m < 0) {
            info->macs = -1;
            break;
        }
        info->macs += m;
    }
    return 0;
}

void rm_info_free(struct rm_info *info)
{
    if (!info)
        return;
    free(info->ops);
    info->ops = NULL;
    info->n_ops = 0;
}
