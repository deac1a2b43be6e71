/* Internals shared by rm_engine.c (planning, oneDNN) and rm_engine_ops.c (shape
 * rules and C kernels). Not a public header: the plan owns everything declared here. */
#ifndef RM_ENGINE_INT_H
#define RM_ENGINE_INT_H

#include "rm_arena.h"
#include "rm_engine.h"
#include "rm_planners.h"

#include <dnnl.h>
#include <dnnl_debug.h>
#include <stdint.h>

#ifndef RM_F32
#define RM_F32 ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
#define RM_I64 ONNX__TENSOR_PROTO__DATA_TYPE__INT64
#endif

enum { V_UNSET = 0, V_CONST, V_INPUT, V_ACT, V_FUSED };

struct val {
    int kind;
    int32_t dtype;                 /* RM_F32 or RM_I64 */
    int rank;
    int64_t dims[RM_MAX_RANK];
    int64_t numel;
    void *buf;                     /* data in layout md (blocked) or plain */
    size_t bytes;
    int blocked;                   /* buf is not plain row-major */
    int has_md;                    /* md/mem valid (f32, numel > 0, rank <= 6) */
    dnnl_memory_desc_t md;
    dnnl_memory_t mem;             /* over buf */
    void *plain;                   /* == buf when not blocked, else a shadow */
    dnnl_memory_t plain_mem;
    dnnl_primitive_t to_plain;
    uint64_t stamp, plain_stamp;   /* shadow is fresh when equal */
    int computed;                  /* written since rm_plan_begin (or const/input) */
    int set_by_user;
    int clobber_step;              /* >= 0: buffer reused in place by that step */
    int overwrite_step;            /* >= 0: buffer handed to a value that step writes */
    int aliased;                   /* buf belongs to another value (in-place sum) */
};

/* A memory object over a value's buffer (plain 0) or plain shadow (plain 1). */
struct memref {
    dnnl_memory_t mem;
    int val, plain;
};

struct exec {
    dnnl_primitive_t prim;
    int nargs;
    dnnl_exec_arg_t *args;      /* plan-owned */
};

struct step {
    int first_node, last_node;
    int n_plain, plain_vals[8]; /* shadows refreshed before the step */
    int n_ex;
    struct exec ex[4];          /* reorders then the main primitive */
    int c_node;                 /* >= 0: run this node's C kernel instead */
    int n_written, written[4];  /* values this step produces */
};

struct rm_plan {
    struct rm_graph *g;
    struct rm_plan_opts opts;
    struct rm_error *err;       /* current error sink while compiling/running */
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    struct val *vals;           /* parallel to g->values */
    struct step *steps;
    int n_steps, cap_steps;
    int cursor;
    int *node_state;            /* per node: step index, -1 folded at plan time, -2 pending */
    int n_in, *in_vals;
    int n_out, *out_vals;
    int64_t macs;
    bool blocked_convs;         /* direct convs forced to nChw16c (choose_conv_layout) */
    uint64_t stamp;
    void **bufs;
    int n_bufs, cap_bufs;
    struct rm_arena hp;         /* huge-page memory for rm_eng_hp_buf */
    dnnl_memory_t *scratch;     /* user scratchpads, all on one buffer set after planning */
    int n_scratch, cap_scratch;
    size_t scratch_bytes;       /* the largest scratchpad any primitive asked for */
    dnnl_primitive_t *prims;
    int n_prims, cap_prims;
    dnnl_memory_t *mems;
    int n_mems, cap_mems;
    struct memref *refs;
    int n_refs, cap_refs;
};

/* Zeroed 64-byte aligned buffer owned by the plan; NULL when out of memory. */
void *rm_eng_buf(struct rm_plan *p, size_t bytes);
/* The same on transparent huge pages, for memory every run streams through (weights,
 * shared activations, the scratchpad): with 4 KB pages each page of a 17 MB Winograd
 * weight costs a TLB miss. Lives as long as the plan; never released early. */
void *rm_eng_hp_buf(struct rm_plan *p, size_t bytes);
/* Plain f32 descriptor for rank <= 6 (rank 0 as [1]); 0 or -1. */
int rm_eng_plain_md(dnnl_memory_desc_t *md, int rank, const int64_t *dims);
int rm_eng_alloc_plain(struct rm_plan *p, struct val *v, struct rm_error *err);
int rm_eng_ensure_plain(struct rm_plan *p, struct val *v, struct rm_error *err);
int rm_eng_node_err(struct rm_plan *p, int node, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
int rm_eng_is(const struct rm_plan *p, int node, enum rm_op op);

/* Value of node input k, or NULL when absent. */
struct val *rm_eng_in(struct rm_plan *p, int node, size_t k);
struct val *rm_eng_out(struct rm_plan *p, int node, size_t k);

/* Run node's C kernel (the op table's) on its values' plain buffers. */
int rm_eng_kernel(struct rm_plan *p, int node);

#endif
