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

#endif
