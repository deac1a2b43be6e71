/* Validation of a model (rm_model_check in remodel.h): the checks a user needs before
 * trusting a file, at least as strict as onnx's checker with full shape inference (the
 * schema checks are in rm_check_schema.c). Findings are appended to a list, one line
 * each: problems, and warnings (things that are not errors, such as a custom domain
 * whose operators cannot be checked); nothing is modified. */
#ifndef RM_CHECK_H
#define RM_CHECK_H

#include "rm_findings.h"
#include "rm_graph.h"

/* Run every check on g. Structural: opset and IR version present; every node input
 * produced by an earlier node, an initializer or a graph input (a later producer
 * means the nodes are not topologically sorted); graph outputs produced; tensor
 * names produced once; initializer, input and node names unique; initializer and
 * Constant tensor data sizes matching their dims and type. Against the ONNX
 * specification (rm_check_schema): see rm_check_schema. Returns the number of
 * problems (0 = clean; warnings are not counted). out may be NULL. */
int rm_check_model(const struct rm_graph *g, rm_findings *out);

/* The checks onnx's checker (check_model with full_check) makes, from the operator
 * schemas of the ONNX spec (rm_onnx_schemas.c): every node's domain imported and its
 * operator defined in the imported opset (not deprecated there); attribute names,
 * types, values and required attributes; input/output counts and required ones not
 * ''; tensors in the one value field their type uses; graph inputs/outputs typed;
 * subgraph names in scope; metadata keys unique; element types of node inputs
 * accepted by the schema's type constraints, propagated to outputs and compared with
 * declared types; graph inputs (keep_initializers_as_inputs), value_info and
 * outputs that name an initializer agreeing with its type and shape. Warnings:
 * custom domains, opsets or an IR newer than the schema table, removed experimental
 * ops, negative declared dims. Calls report(ctx, warning, msg) per finding. */
void rm_check_schema(const struct rm_graph *g, void (*report)(void *ctx, int warning, const char *msg),
                     void *ctx);

/* Whether node n is malformed in a way remodel's shape rules, kernels, edits and module
 * tree would otherwise read past silently, judged by the ONNX schema of the default-domain
 * opset the model imports (opset): an attribute given twice (which one counts?), an
 * attribute of another type than the schema's or holding no value (a float `strides` would
 * be ignored and the default used), more or fewer inputs or outputs than the schema takes
 * (a Conv with 5 inputs). For callers that interpret the node; `check` reports the same
 * through rm_check_schema. Writes the reason (without the node's name) into why and returns
 * true; false when the node is well-formed or there is no schema to judge it by (another
 * domain, an opset newer than the table). */
bool rm_node_malformed(const Onnx__NodeProto *n, int64_t opset, char *why, size_t why_size);

#endif
