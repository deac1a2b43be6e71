/* Model summary for `remodel info`: versions, I/O, op histogram, parameters, MACs.
 * The summary points into the model (names) and owns only its arrays. */
#ifndef RM_INFO_H
#define RM_INFO_H

#include "rm_graph.h"

struct rm_op_count {
    const char *op; /* points into the model */
    int count;
};

struct rm_info {
    size_t n_ops;
    struct rm_op_count *ops; /* most frequent first, then by name (malloc'd) */
    int64_t params;          /* elements over all initializers */
    uint64_t param_bytes;    /* bytes of initializer data */
    int64_t macs;            /* multiply-accumulates of Conv/Gemm/MatMul, -1 if a shape is unknown */
};

/* Summarise g, whose shapes should already be inferred (rm_shape_infer).
 * Returns 0 or RM_ENOMEM. Free with rm_info_free. */
int rm_info_compute(const struct rm_graph *g, struct rm_info *info, struct rm_error *err);

void rm_info_free(struct rm_info *info);

#endif
