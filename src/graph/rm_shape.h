/* Shape inference: one pass over the graph index, in graph order, that gives every
 * value its element type and dims from its producer's shape rule (the op table's), and
 * follows shape arithmetic (Shape -> Gather -> Concat -> Reshape) by running the ops'
 * own C kernels on small constants. Info, check, the edits and the engine all use it.
 * It never fails on a bad model: what disagrees or cannot be followed is recorded per
 * node in g->issues (the first per node), and what cannot be derived stays unknown.
 * Results live in the graph (rm_value.elem_type/rank/dims, g->known, g->issues) until
 * the next inference or rm_graph_free. */
#ifndef RM_SHAPE_H
#define RM_SHAPE_H

#include "rm_graph.h"

/* One graph input given a shape (and, for an int64 input, contents that become a
 * constant while inferring: shapes, axes or pads fed as inputs). */
struct rm_input_spec {
    const char *name;
    int rank;
    int64_t dims[RM_MAX_RANK];
    const struct rm_host_tensor *value; /* int64 contents, or NULL */
};

struct rm_shape_opts {
    int64_t dynamic_dim;                 /* unknown graph-input dims not given below take this
                                            value; 0 leaves them unknown */
    size_t n_inputs;                     /* given input shapes */
    const struct rm_input_spec *inputs;
};

/* Infer every value's type and shape into g (replacing the last inference). opts may be
 * NULL (dynamic dims unknown, no given inputs). Returns 0 or RM_ENOMEM. */
int rm_shape_infer(struct rm_graph *g, const struct rm_shape_opts *opts, struct rm_error *err);

/* For callers that need every shape (the engine): what the last inference found
 * malformed (g->malformed), else its first issue, as an error (RM_EFORMAT or the issue's
 * code, "node 'X' (Op): why"); 0 when there is none. */
int rm_shape_check(const struct rm_graph *g, struct rm_error *err);

/* Multiply-accumulates of node i from the inferred shapes (the op table's count; 0 for
 * ops without one), -1 when a needed shape is unknown. */
int64_t rm_node_macs(const struct rm_graph *g, size_t i);

#endif
