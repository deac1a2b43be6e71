/* The module tree: the nn.Module hierarchy of a PyTorch export, rebuilt from the scope
 * names torch.onnx.export writes into node names (`/layer1/layer1.0/conv1/Conv` is module
 * `layer1.0.conv1`), with initializer names (`layer1.0.conv1.weight`) as the fallback.
 * A tree owns its modules, strings and arrays (one arena, freed by rm_tree_free); it
 * points into the rm_graph it was built from, which must outlive it and must not change:
 * rebuild the tree after an edit rebuilds the graph. */
#ifndef RM_TREE_H
#define RM_TREE_H

#include "remodel.h"
#include "rm_arena.h"
#include "rm_error.h"
#include "rm_graph.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest module nesting kept; nodes scoped deeper are reported as unplaced. */
#define RM_TREE_MAX_DEPTH RM_MAX_MODULE_DEPTH
/* Most arguments one leaf carries (Conv2d has the most). */
#define RM_TREE_MAX_ARGS 10

/* struct rm_arg, one constructor argument of a leaf, is public (remodel.h). */

/* One initializer a leaf uses, by its role in the PyTorch module. */
struct rm_param {
    const char *role;    /* "weight", "bias", "running_mean", "running_var" */
    int node;            /* node that reads it */
    int slot;            /* input slot on that node */
    int value;           /* value the node reads (may be the output of an Identity helper) */
    int init;            /* graph->proto->initializer index after following Identity helpers,
                            -1 when the value is not (a copy of) an initializer */
};

struct rm_module {
    const char *path;            /* dotted, "" for the root */
    const char *name;            /* last path component, "" for the root */
    const char *type;            /* "Conv2d", "Sequential", "BasicBlock", "Module", ... */
    bool type_known;             /* type derived from nodes or a known structure, not a guess */
    int depth;                   /* 0 for the root */
    struct rm_module *parent;    /* NULL for the root */
    struct rm_module **children; /* in export order (first call) */
    size_t n_children;
    int *nodes;                  /* node indices of this module's own forward, graph order:
                                    for a leaf all its nodes, for a container its functional
                                    ops (Add, Concat, ...); helpers (Identity, Constant)
                                    included */
    size_t n_nodes;
    int main_node;               /* leaf: the node its type comes from (Conv, Gemm...), else -1 */
    bool bn_folded;              /* Conv whose weight is not a named parameter ("onnx::Conv_12"):
                                    the exporter folded a BatchNorm into it, so its ONNX bias
                                    is the BatchNorm's and args say bias=False (PyTorch's
                                    convention for a conv followed by BatchNorm) */
    struct rm_arg args[RM_TREE_MAX_ARGS]; /* leaf arguments, constructor order */
    int n_args;
    struct rm_param *params;     /* leaf initializers (main node's weight inputs) */
    size_t n_params;
};

struct rm_tree {
    const struct rm_graph *g;    /* held (rm_graph_hold) when reference-counted */
    int refs;                    /* freed by the last rm_tree_free */
    struct rm_module *root;
    struct rm_module **modules;  /* every module, preorder (root first) */
    size_t n_modules;
    int *unplaced;               /* nodes no module could be found for, graph order */
    size_t n_unplaced;
    int *node_module;            /* per node: index into modules, or -1 (unplaced) */
    bool scoped;                 /* node names carried scopes (torch >= 1.13 style) */
    struct rm_arena arena;       /* owns everything above except the graph */
};

/* Build the tree of g into *out (caller frees with rm_tree_free). Never fails on odd
 * names: nodes that cannot be placed go to tree->unplaced. Returns 0 or RM_ENOMEM. */
int rm_tree_build(struct rm_tree **out, const struct rm_graph *g, struct rm_error *err);

/* Drop a reference to the tree, freeing it with the last (a new tree has one).
 * Accepts NULL. rm_tree_hold adds a reference. */
void rm_tree_free(struct rm_tree *t);
void rm_tree_hold(struct rm_tree *t);

/* Module at path, or NULL. Accepts "layer4.0.conv1", "layer4[0].conv1" and "" (root). */
const struct rm_module *rm_tree_find(const struct rm_tree *t, const char *path);

/* Like rm_tree_find, but an unknown path returns RM_ENOTFOUND with the message
 * "no module 'PATH' (nearest: A, B, C)". */
int rm_tree_lookup(const struct rm_tree *t, const char *path, const struct rm_module **out,
                   struct rm_error *err);

/* Write up to max paths nearest to path (edit distance, then longest common prefix, then
 * tree order) into out; returns how many. The root is never suggested. */
size_t rm_tree_nearest(const struct rm_tree *t, const char *path, const struct rm_module **out,
                       size_t max);

/* Whether m is a leaf: no children and at least one node. */
bool rm_module_is_leaf(const struct rm_module *m);

/* Parameter of a leaf by role ("weight", "bias", ...), or NULL. */
const struct rm_param *rm_module_role_param(const struct rm_module *m, const char *role);

/* Every node of m and its descendants, graph order, into a malloc'd array (caller frees)
 * of *n entries. Returns 0 or RM_ENOMEM. */
int rm_module_nodes(const struct rm_tree *t, const struct rm_module *m, int **nodes, size_t *n,
                    struct rm_error *err);

/* PyTorch repr of one leaf on one line, e.g. "Conv2d(3, 64, kernel_size=(7, 7), ...)";
 * for a container "Type(...)". Truncated to fit buf (n > 0); returns the full length. */
size_t rm_module_repr_line(const struct rm_module *m, char *buf, size_t n);

/* print(module) of m and its subtree as PyTorch prints it; containers nested deeper than
 * max_depth levels below m (max_depth < 0: no limit) are shown collapsed as "Type(...)".
 * With m the root and unplaced nodes present, a last "(unplaced): ..." line lists them.
 * Returns a malloc'd NUL-terminated string (caller frees), or NULL when out of memory. */
char *rm_tree_repr(const struct rm_tree *t, const struct rm_module *m, int max_depth);

#endif
