/* Convolution: shape rule and MAC count (the engine runs it on oneDNN). */
#include "rm_ops_int.h"

#include <string.h>

int rm_shape_conv(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0), *w = rm_s_in(s, 1), *b = rm_s_in(s, 2);
    if (!x || !w)
        return 0;
    if (w->rank != x->rank || x->rank < 3)
        return rm_s_bad(s, "weight rank does not match the input rank");
    if (x->rank > 5)
        return rm_s_unsupported(s, "needs a weight of the input's rank (3..5)");
    int64_t group = rm_node_attr_int(s->np, "group", 1);
    if (group <= 0)
        return rm_s_bad(s, "group must be positive");
    if (w->dims[0] >= 0 && w->dims[0] % group)
        return rm_s_bad(s, "%lld output channels do not divide into %lld groups", (long long)w->dims[0],
                        (long long)group);
    if (x->dims[1] >= 0 && w->dims[1] >= 0 && (w->dims[1] > INT64_MAX / group || x->dims[1] != w->dims[1] * group)) {
        /* reported, then the output is still derived from the weight, so that an edit
         * finds every layer that disagrees in one pass */
        rm_s_bad(s, "input has %lld channels, weight expects %lld (%lld x group %lld)", (long long)x->dims[1],
                 (long long)(w->dims[1] <= INT64_MAX / group ? w->dims[1] * group : -1), (long long)w->dims[1],
                 (long long)group);
    }
    if (b && (b->rank != 1 || (b->dims[0] >= 0 && w->dims[0] >= 0 && b->dims[0] != w->dims[0])))
        rm_s_bad(s, "bias must have %lld values", (long long)w->dims[0]);
    size_t nk;
    const int64_t *ks = rm_node_attr_ints(s->np, "kernel_shape", &nk);
    if (ks && (nk != (size_t)x->rank - 2 || memcmp(ks, w->dims + 2, nk * sizeof *ks)))
        return rm_s_bad(s, "kernel_shape does not match the weight");
    for (int i = 2; i < w->rank; i++)
        if (w->dims[i] < 0)
            return 0; /* unknown kernel size */
    struct rm_window win;
    char why[200];
    int rc = rm_window_of(s->np, x->rank, x->dims, w->dims + 2, false, &win, why, sizeof why);
    if (rc)
        return rc == RM_EFORMAT ? rm_s_bad(s, "%s", why) : rm_s_unsupported(s, "%s", why);
    int64_t dims[RM_MAX_RANK];
    dims[0] = x->dims[0];
    dims[1] = w->dims[0];
    for (int i = 0; i < win.sp; i++)
        dims[2 + i] = win.out[i];
    rm_s_out(s, 0, x->elem_type, x->rank, dims);
    return 0;
}

/* Each output element: in_channels/group * kernel volume multiply-accumulates. */
int64_t rm_macs_conv(const struct rm_graph *g, int node)
{
    const struct rm_node *n = &g->nodes[node];
    if (n->proto->n_input < 2 || n->proto->n_output < 1 || n->inputs[1] < 0 || n->outputs[0] < 0)
        return -1;
    const struct rm_value *w = &g->values[n->inputs[1]], *y = &g->values[n->outputs[0]];
    int64_t ny, per;
    if (w->rank < 2 || y->rank < 0 || rm_dims_numel(y->dims, (size_t)y->rank, &ny) ||
        rm_dims_numel(w->dims + 1, (size_t)w->rank - 1, &per))
        return -1;
    if (per < 0 || (per && ny > INT64_MAX / per))
        return -1;
    return ny * per;
}
