/* The graph index: a read-mostly view over a model's main GraphProto that maps every
 * tensor name to its producer, consumers, initializer, graph input/output and known
 * type/shape. It owns only the index arrays (malloc'd); the ModelProto stays the
 * single source of truth. After an edit changes the ModelProto, rebuild the index
 * with rm_graph_free + rm_graph_init. */
#ifndef RM_GRAPH_H
#define RM_GRAPH_H

#include "rm_model.h"
#include "rm_op.h"
#include "rm_strmap.h"
#include "rm_tensor.h"
#include "rm_tensorio.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One tensor name. Indices are -1 when absent. */
struct rm_value {
    const char *name;             /* points into the ModelProto */
    int producer;                 /* node producing it */
    int producer_slot;            /* which output of that node */
    int init;                     /* index into graph->initializer */
    int input;                    /* index into graph->input */
    int output;                   /* index into graph->output */
    int n_consumers;              /* uses as a node input (a node using it twice counts twice) */
    int *consumers;               /* node indices, graph order */
    const Onnx__ValueInfoProto *vi; /* declared type (input, output or value_info) */
    /* type and shape: from the initializer or declared type, then what shape inference
     * (rm_shape.h) derived. rank < 0: unknown. dims[i] < 0: unknown (symbolic) dimension. */
    int32_t elem_type;
    int rank;
    int64_t dims[RM_MAX_RANK];
    /* the same as declared in the file (initializer dims or value info), which each
     * shape inference starts from */
    int32_t decl_type;
    int decl_rank;
    int64_t decl_dims[RM_MAX_RANK];
};

/* A problem shape inference found at one node (the first per node). */
struct rm_shape_issue {
    int node;
    int code;            /* RM_EFORMAT: shapes disagree; RM_EUNSUPPORTED: cannot be followed */
    const char *msg;     /* "node 'X' (Op): why" */
    const char *why;     /* the "why" part of msg */
};

/* One node's inputs/outputs as value indices (-1 for an omitted optional input ""). */
struct rm_node {
    Onnx__NodeProto *proto;
    enum rm_op op;                /* resolved from domain and op_type */
    int *inputs;
    int *outputs;
    size_t n_inputs, n_outputs;   /* as indexed (an edit may have changed proto's since) */
};

struct rm_graph {
    int refs;             /* 0: caller-owned (rm_graph_init); else freed by the last rm_graph_drop */
    struct rm_model *model;
    Onnx__GraphProto *proto;
    size_t n_nodes;
    struct rm_node *nodes;
    size_t n_values;
    struct rm_value *values;
    struct rm_strmap names; /* value name -> index */
    int *pool;            /* backing store for nodes[].inputs/outputs and consumers */
    int64_t opset;        /* version of the default ("" / ai.onnx) opset, 0 if missing */
    /* results of the last rm_shape_infer (rm_shape.h), which owns them */
    bool shaped;                          /* shapes inferred since the index was built */
    struct rm_arena shape_arena;          /* known contents and issue messages */
    const struct rm_host_tensor **known;  /* per value: contents known while inferring, or NULL */
    struct rm_shape_issue *issues;        /* graph order */
    size_t n_issues;
    /* the first thing remodel refuses to interpret at all (a node rm_node_malformed
     * judges malformed, a graph input declared with a negative size), as "node 'X' (Op):
     * why" or "graph input 'x': why"; NULL when there is none. Info, the module tree, the
     * edits and the engine refuse the model with it; check reports it as a finding. */
    const char *malformed;
};

/* Build the index of m's main graph into g (caller-owned struct). Duplicate or
 * dangling names are recorded, not refused (rm_check reports them); only memory
 * exhaustion and absurd sizes fail. Returns 0, RM_ENOMEM or RM_EFORMAT. */
int rm_graph_init(struct rm_graph *g, struct rm_model *m, struct rm_error *err);

/* Release the index (not the model). Accepts a zeroed or already freed graph. */
void rm_graph_free(struct rm_graph *g);

/* The same on the heap, reference-counted (1 reference, the caller's): how a model
 * keeps its index (rm_model_graph). rm_graph_hold adds a reference, rm_graph_drop
 * removes one and frees the index with the last. Both accept NULL. */
int rm_graph_new(struct rm_graph **out, struct rm_model *m, struct rm_error *err);
void rm_graph_hold(struct rm_graph *g);
void rm_graph_drop(struct rm_graph *g);

/* Value index of name, or -1. */
int rm_graph_find(const struct rm_graph *g, const char *name);

/* Node index by node name, or -1 (linear; names are not required to be unique). */
int rm_graph_find_node(const struct rm_graph *g, const char *name);

/* Value index of the initializer v is, or that a chain of Identity nodes passes on
 * to v (torch's exporter shares equal tensors that way); -1 when there is none. */
int rm_graph_initializer_of(const struct rm_graph *g, int v);

/* The constant tensor behind v: an initializer (through Identity nodes) or the value
 * of the Constant node producing it; NULL when v is computed. Points into the model. */
const Onnx__TensorProto *rm_graph_const_tensor(const struct rm_graph *g, int v);

/* Attribute of node by name, or NULL. */
const Onnx__AttributeProto *rm_node_attr(const Onnx__NodeProto *n, const char *name);

/* Integer attribute, or def when absent. An attribute typed INT whose field is not on the
 * wire is 0 (a proto3 writer leaves zeros out). */
int64_t rm_node_attr_int(const Onnx__NodeProto *n, const char *name, int64_t def);

/* Float attribute, or def when absent (typed FLOAT without its field: 0). */
float rm_node_attr_float(const Onnx__NodeProto *n, const char *name, float def);

/* Ints attribute: sets *count and returns the array, or NULL (count 0) when absent. */
const int64_t *rm_node_attr_ints(const Onnx__NodeProto *n, const char *name, size_t *count);

/* Display name of node i: its name, or "<op_type> #i" when unnamed (static buffer). */
const char *rm_graph_node_label(const struct rm_graph *g, size_t i);

#endif
