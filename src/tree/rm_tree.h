/* The module tree: the nn.Module hierarchy of an export, rebuilt from what the exporter
 * wrote, in this order of trust (enum rm_tree_source): the dynamo exporter's node
 * metadata (module paths and exact classes), the scope names the TorchScript exporter
 * writes into node names (`/layer1/layer1.0/conv1/Conv` is module `layer1.0.conv1`),
 * parameter names (`layer1.0.conv1.weight`, paddle's `conv2d_52.w_0`, on initializers or
 * Constant nodes), paddle's tensor names (`relu_3.tmp_0`), `/`-separated node names of
 * other exporters (tf2onnx's `model/conv2d_3/Conv2D`); a Conv nothing names gets a path
 * made up for it. A tree owns its modules, strings and arrays (one arena, freed by
 * rm_tree_free); it points into the rm_graph it was built from, which must outlive it
 * and must not change: rebuild the tree after an edit rebuilds the graph. */
#ifndef RM_TREE_H
#define RM_TREE_H

#include "remodel.h"
#include "rm_arena.h"
#include "rm_error.h"
#include "rm_graph.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest module nesting a source may give; a node scoped deeper falls to the next
 * source (a Conv gets a derived path at worst). */
#define RM_TREE_MAX_DEPTH RM_MAX_MODULE_DEPTH
/* Most arguments one leaf carries (Conv2d has the most). */
#define RM_TREE_MAX_ARGS 10
/* Most values of one RM_ARG_INTS argument (3-D modules: triples). */
#define RM_TREE_MAX_ARG_INTS RM_MAX_ARG_INTS

/* struct rm_arg, one constructor argument of a leaf, is public (remodel.h). */

/* One parameter a leaf uses, by its role in the PyTorch module. Its tensor is held
 * either by an initializer (init >= 0) or by the `value` attribute of a Constant node
 * (constant >= 0; paddle2onnx writes every weight that way), never both; both are -1 when
 * the node reads a computed value. rm_param_tensor returns the tensor in either case. An
 * edit that rewrites a Constant-held parameter replaces that Constant's tensor (or turns
 * it into an initializer of the same name: the value keeps its name either way). */
struct rm_param {
    const char *role;    /* "weight", "bias", "running_mean", "running_var" */
    int node;            /* node that reads it */
    int slot;            /* input slot on that node */
    int value;           /* value the node reads (may be the output of an Identity helper) */
    int init;            /* graph->proto->initializer index after following Identity helpers,
                            -1 when the value is not (a copy of) an initializer */
    int constant;        /* index of the Constant node (graph->nodes) whose `value` tensor the
                            node reads, after following Identity helpers; -1 when none */
};

/* Where a module's path came from, most trusted first (rm_tree_source_name gives the
 * word `show --json` prints). Every module records the source of the first node that
 * named it; ancestors a path implies take the source of that path. */
enum rm_tree_source {
    RM_TREE_SRC_NONE = 0, /* "none": the root, whose path "" no source gives */
    RM_TREE_SRC_DYNAMO,   /* "dynamo": node metadata_props pkg.torch.onnx.name_scopes (and
                             pkg.torch.onnx.class_hierarchy), PyTorch >= 2 dynamo exporter */
    RM_TREE_SRC_SCOPE,    /* "scope": TorchScript exporter scopes in node names,
                             `/layer1/layer1.0/conv1/Conv` */
    RM_TREE_SRC_PARAM,    /* "param": the name of a parameter a node reads (initializer or
                             Constant node), `layer1.0.conv1.weight`, `conv2d_52.w_0` */
    RM_TREE_SRC_TENSOR,   /* "tensor": a paddle2onnx output name `<layer>.tmp_<n>` */
    RM_TREE_SRC_SLASH,    /* "slash": `/`-separated node names of other exporters, one module
                             per component but the last (`model/conv2d_3/Conv2D` is
                             `model.conv2d_3`) */
    RM_TREE_SRC_DERIVED,  /* "derived": made up for a Conv no source gives a module of its
                             own: its node name's last `/` component when that is a plain
                             name ([A-Za-z0-9_-], at most 64 bytes) free among its siblings,
                             else `conv_<k>` (k: the node's rank among the Conv and
                             ConvTranspose nodes, graph order), under the module its node
                             was placed in (the root when none) */
    RM_TREE_SRC_COUNT
};

struct rm_module {
    const char *path;            /* dotted, "" for the root */
    const char *name;            /* last path component, "" for the root */
    const char *type;            /* "Conv2d", "Sequential", "BasicBlock"; "Module" when unknown */
    bool type_known;             /* type is the exporter's recorded class (dynamo), a leaf kind
                                    its nodes compute, "Sequential" for a container that ran
                                    its numbered children as a chain, each feeding the next
                                    and nothing else (nn.Sequential or a subclass; also
                                    torchvision's IntermediateLayerGetter when it returns only
                                    its last child's output, which an export cannot tell
                                    apart), or a torchvision block whose children no other
                                    torchvision class shows; false (type "Module") when none
                                    of these says */
    const char *qualname;        /* dynamo: the fully qualified class the exporter recorded
                                    ("torchvision.models.resnet.BasicBlock"), else NULL */
    int source;                  /* enum rm_tree_source: where path came from */
    int depth;                   /* 0 for the root */
    int index;                   /* position in tree->modules (preorder: a subtree is the
                                    run of modules from its root's index on) */
    struct rm_module *parent;    /* NULL for the root */
    struct rm_module **children; /* in call order: by the first node (graph order) of each
                                    child's subtree */
    size_t n_children;
    int *nodes;                  /* node indices of this module's own forward, graph order:
                                    for a leaf all its nodes, for a container its functional
                                    ops (Add, Concat, ...); helpers (Identity, Constant)
                                    included */
    size_t n_nodes;
    int main_node;               /* leaf: the node its type comes from (Conv, Gemm...), else -1 */
    bool bn_folded;              /* Conv whose weight is not a named parameter ("onnx::Conv_12")
                                    in a tree PyTorch's exporters named (not slash or tensor
                                    sources, whose exporters name weights their own way): the
                                    exporter folded a BatchNorm into it, so its ONNX bias is
                                    the BatchNorm's and args say bias=False (PyTorch's
                                    convention for a conv followed by BatchNorm) */
    struct rm_arg args[RM_TREE_MAX_ARGS]; /* leaf arguments, constructor order */
    int n_args;
    struct rm_param *params;     /* leaf parameters (main node's constant inputs) */
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
    unsigned sources;            /* bit (1u << s) for each enum rm_tree_source s some module's
                                    path came from */
    struct rm_arena arena;       /* owns everything above except the graph */
};

/* Build the tree of g into *out (caller frees with rm_tree_free). Never fails on odd
 * names or metadata: nodes that cannot be placed go to tree->unplaced. Leaf kinds use
 * the shapes rm_shape_infer found on g (rm_model_tree runs it first); without them, a
 * rank is followed back to a conv's weight or a declared value where it can be.
 * Returns 0 or RM_ENOMEM. */
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

/* The tensor holding p: its initializer or its Constant node's `value`; NULL when the
 * parameter is computed. Points into the model. */
const Onnx__TensorProto *rm_param_tensor(const struct rm_graph *g, const struct rm_param *p);

/* "dynamo", "scope", "param", "tensor", "slash", "derived", "none" (static storage). */
const char *rm_tree_source_name(int source);

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
