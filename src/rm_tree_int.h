/* Internals of the module tree shared with the op table: the leaf-kind functions
 * (rm_op_def.leaf) that give a leaf module its PyTorch type from its nodes. */
#ifndef RM_TREE_INT_H
#define RM_TREE_INT_H

#include "rm_op.h"
#include "rm_tree.h"

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
