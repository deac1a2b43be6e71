/* Structural validation of a model: the checks a user needs before trusting a file.
 * Findings are reported one line each through a callback; nothing is modified. */
#ifndef RM_CHECK_H
#define RM_CHECK_H

#include "rm_graph.h"

/* Called once per finding with a one-line message (no newline). */
typedef void (*rm_check_fn)(void *ctx, const char *finding);

/* Run every check on g: opset and IR version present; every node input produced by
 * an earlier node, an initializer or a graph input (a later producer means the
 * nodes are not topologically sorted); graph outputs produced; tensor names
 * produced once; initializer, input and node names unique; initializer and
 * Constant tensor data sizes matching their dims and type. Returns the number of
 * findings (0 = clean). */
int rm_check_model(const struct rm_graph *g, rm_check_fn fn, void *ctx);

#endif
