/* The engine's side of the C kernels (src/ops/): values as plain tensors, and the call
 * into a node's kernel at plan time (constants) or run time (steps oneDNN does not
 * cover). Errors go to p->err. */
#include "rm_engine_int.h"
#include "rm_ops_int.h"

#include <stdlib.h>
#include <string.h>

struct val *rm_eng_in(struct rm_plan *p, int node, size_t k)
{
    const struct rm_node *n = &p->g->nodes[node];
    if (k >= n->proto->n_input || n->inputs[k] < 0)
        return NULL;
    return &p->vals[n->inputs[k]];
}

struct val *rm_eng_out(struct rm_plan *p, int node, size_t k)
{
    const struct rm_node *n = &p->g->nodes[node];
    if (k >= n->proto->n_output || n->outputs[k] < 0)
        return NULL;
    return &p->vals[n->outputs[k]];
}

/* A plain view of v. */
static void view(const struct val *v, struct rm_host_tensor *t)
{
    t->dtype = v->dtype;
    t->rank = v->rank;
    memcpy(t->dims, v->dims, sizeof t->dims);
    t->numel = v->numel;
    t->data = v->plain;
    t->owned = 0;
}

int rm_eng_kernel(struct rm_plan *p, int node)
{
    const struct rm_node *n = &p->g->nodes[node];
    rm_kernel_fn kernel = rm_op_def(n->op)->kernel;
    size_t ni = n->proto->n_input, no = n->proto->n_output;
    struct rm_host_tensor *views = malloc((ni + no + 1) * sizeof *views);
    const struct rm_host_tensor **in = malloc((ni + 1) * sizeof *in);
    struct rm_host_tensor **out = malloc((no + 1) * sizeof *out);
    int rc;
    if (!views || !in || !out) {
        rc = rm_eng_node_err(p, node, RM_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < ni; k++) {
        struct val *v = rm_eng_in(p, node, k);
        in[k] = NULL;
        if (v) {
            view(v, &views[k]);
            in[k] = &views[k];
        }
    }
    for (size_t k = 0; k < no; k++) {
        struct val *v = rm_eng_out(p, node, k);
        out[k] = NULL;
        if (v && v->dtype) {
            view(v, &views[ni + k]);
            out[k] = &views[ni + k];
        }
    }
    struct rm_kcall kc = {n->op, n->proto, p->g->opset, rm_graph_node_label(p->g, (size_t)node), ni, in, no,
                          out, p->err};
    rc = kernel ? kernel(&kc) : rm_eng_node_err(p, node, RM_EUNSUPPORTED, "op has no C kernel");
    /* every output is computed, also past the four a step lists as written (Split) */
    for (size_t k = 0; !rc && k < no; k++)
        if (out[k]) {
            struct val *v = rm_eng_out(p, node, k);
            v->computed = 1;
            v->stamp = ++p->stamp;
        }
done:
    free(views);
    free(in);
    free(out);
    return rc;
}
