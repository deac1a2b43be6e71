/* Shape inference over the graph index: fills rm_value.rank/dims/elem_type of node
 * outputs from their inputs, in graph order. Used by info (MACs), the engine
 * (buffer sizes) and edits (re-deriving shapes after a change). */
#ifndef RM_SHAPE_H
#define RM_SHAPE_H

#include "rm_graph.h"

struct rm_shape_opts {
    int strict;          /* 1: an op it cannot infer, or inconsistent shapes, is an error */
    int64_t dynamic_dim; /* value given to unknown graph-input dims (0: leave unknown) */
    /* If set, inconsistent shapes are reported here (node index, one-line message
     * naming the two sizes) and inference goes on, deriving the output from the
     * node's own parameters where it can (a Conv's output channels from its weight),
     * so one edit's every disagreement is found in one pass. Overrides strict for
     * shape errors; unsupported ops still follow strict. */
    void (*on_error)(void *ctx, int node, const char *msg);
    void *ctx;
};

/* Infer shapes of every node output. Lenient mode (strict 0) leaves outputs of
 * unknown ops, or with unknown inputs, at rank -1 and returns 0. Strict mode
 * returns RM_EUNSUPPORTED naming the op and node, or RM_EFORMAT naming the node and
 * the two sizes that disagree. opts may be NULL (lenient, dynamic dims unknown). */
int rm_shape_infer(struct rm_graph *g, const struct rm_shape_opts *opts, struct rm_error *err);

/* Multiply-accumulate count of node i given inferred shapes (Conv, Gemm, MatMul),
 * 0 for other ops, -1 when a needed shape is unknown. */
int64_t rm_node_macs(const struct rm_graph *g, size_t i);

#endif
