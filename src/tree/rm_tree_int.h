/* Internals of the module tree (src/tree/), and the leaf-kind functions the op table
 * names (rm_op_def.leaf):
 *   scope.c   module paths from each source (dynamo metadata, node scopes, parameter
 *             and tensor names, '/'-separated names, derived); rm_tree_build
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

/* Index of the Constant node whose output v is, following Identity helpers; -1 if none. */
int rm_tree_follow_const(const struct rm_graph *g, int v);

/* Whether v holds a constant tensor: an initializer or a Constant node's output (through
 * Identity helpers). */
static inline bool rm_tree_is_const(const struct rm_graph *g, int v)
{
    return v >= 0 && (rm_tree_follow_init(g, v) >= 0 || rm_tree_follow_const(g, v) >= 0);
}

/* Parse s, the repr() of a Python list of str (`['', 'layer1', "it's"]`, as PyTorch's
 * exporter writes pkg.torch.onnx.name_scopes), into at most max items of at most
 * max_item bytes each: item k is the NUL-terminated string at buf + off[k], decoded
 * (escapes \\ \' \" \n \r \t \xHH \uHHHH \UHHHHHHHH to UTF-8). *buf is malloc'd
 * (caller frees, also on failure). Returns the number of items, -1 when s is not such a
 * list (bad syntax or escape, a NUL or surrogate, too many or too long items), -2 when
 * out of memory. */
int rm_tree_pylist_parse(const char *s, int max, size_t max_item, char **buf, size_t *off);

/* The module path a parameter name gives ("layer1.0.conv1.weight" -> "layer1.0.conv1")
 * into out; false when the name is not a parameter path. */
bool rm_tree_param_path(const char *name, struct rm_strbuf *out);

/* Whether all n values equal x. */
bool rm_tree_all_eq(const int64_t *v, int n, int64_t x);

/* Give a leaf its kind (the op table's leaf function of its defining op), a container
 * its class (from its children's names). */
void rm_tree_classify_leaf(struct rm_tree *t, struct rm_module *m);
/* called: the container's own forward ran as a scope (TorchScript or dynamo), so numbered
 * children that run as a chain make it a Sequential (a ModuleList never runs). Needs
 * t->modules, t->node_module and the module indices in place. */
void rm_tree_classify_container(struct rm_tree *t, struct rm_module *m, bool called);

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
bool rm_leaf_reduce_mean(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n);
bool rm_leaf_prelu(struct rm_tree *t, struct rm_module *m, int node, const enum rm_op *others, int n);

#endif
