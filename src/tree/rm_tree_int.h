/* Internals of the module tree (src/tree/), and the leaf-kind functions the op table
 * names (rm_op_def.leaf):
 *   scope.c   module paths from node scopes and parameter names; rm_tree_build
 *   kinds.c   leaf kinds, arguments and parameters; container classes
 *   lookup.c  finding modules by path, nearest paths
 *   repr.c    print(module) as PyTorch prints it */
#ifndef RM_TREE_INT_H
#define RM_TREE_INT_H

#include "rm_op.h"
#include "rm_strbuf.h"
#include "rm_strmap.h"
#include "rm_tree.h"

/* Value index of node input slot, or -1. */
static inline int rm_tree_node_input(const struct rm_graph *g, int node, size_t slot)
{
    return slot < g->nodes[node].proto->n_input ? g->nodes[node].inputs[slot] : -1;
}

/* Initializer index behind value v, following Identity helpers; -1 if none. */
static inline int rm_tree_follow_init(const struct rm_graph *g, int v)
{
    int src = rm_graph_initializer_of(g, v);
    return src >= 0 ? g->values[src].init : -1;
}

/* The module path a parameter name gives ("layer1.0.conv1.weight" -> "layer1.0.conv1")
 * into out; false when the name is not a parameter path. */
bool rm_tree_param_path(const char *name, struct rm_strbuf *out);

/* Whether all n values equal x. */
bool rm_tree_all_eq(const int64_t *v, int n, int64_t x);

/* Give a leaf its kind (the op table's leaf function of its defining op), a container
 * its class (from its children's names). */
void rm_tree_classify_leaf(struct rm_tree *t, struct rm_module *m);
void rm_tree_classify_container(struct rm_module *m);

bool rm_leaf_conv(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n);
bool rm_leaf_conv_transpose(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others,
                            int n);
bool rm_leaf_pool(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n);
bool rm_leaf_linear(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n);
bool rm_leaf_batch_norm(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n);
bool rm_leaf_activation(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n);
bool rm_leaf_clip(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n);
bool rm_leaf_softmax(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n);
bool rm_leaf_global_pool(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n);
bool rm_leaf_flatten(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n);
bool rm_leaf_dropout(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n);
bool rm_leaf_prelu(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n);

#endif
