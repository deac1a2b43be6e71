/* Model summary (rm_model_info in remodel.h): versions, inputs and outputs, op
 * histogram, parameters, MACs. */
#ifndef RM_INFO_H
#define RM_INFO_H

#include "rm_graph.h"

/* The parts of a summary that come from the graph index g (whose shapes should be
 * inferred): ops, params, param_bytes, macs, n_nodes, n_initializers. info is zeroed
 * first. Returns 0 or RM_ENOMEM. */
int rm_info_compute(const struct rm_graph *g, struct rm_info *info, struct rm_error *err);

#endif
