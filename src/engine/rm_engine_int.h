/* Internals of the engine (src/engine/): the plan and its values and steps, and what
 * its files share. Not a public header: the plan owns everything declared here.
 *   buffers.c    memory it owns, oneDNN memory objects, primitives, reorders, steps
 *   consts.c     initializers and Constant nodes at plan time, graph inputs
 *   plan.c       rm_session_create/free: every node to a step, a constant or a fusion
 *   plan_conv.c  Conv with fused post-ops, Winograd and layout choice
 *   plan_ops.c   pooling, eltwise, binary, BatchNorm, Concat, copies on oneDNN
 *   plan_concat.c  Concats in place, Slices as views, the channel shuffle
 *   memory.c     buffer sharing between values and the shared scratchpad
 *   run.c        inputs, runs, reading values and outputs
 *   kernel_call.c  values as plain tensors for the ops' C kernels
 *   profile.c    per-step timers (REMODEL_PROFILE) */
#ifndef RM_ENGINE_INT_H
#define RM_ENGINE_INT_H

#include "rm_arena.h"
#include "rm_engine.h"
#include "rm_planners.h"
#include "rm_shape.h"

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
    int computed;                  /* written since rm_session_begin (or const/input) */
    int set_by_user;
    int clobber_step;              /* >= 0: buffer reused in place by that step */
    int overwrite_step;            /* >= 0: buffer handed to a value that step writes */
    int aliased;                   /* buf belongs to another value (in-place sum) */
    int heap_buf;                  /* buf came from rm_eng_buf (released when pooled) */
    /* plan_concat.c: buf is a slice of another value's buffer (a Concat's output) */
    int place_in;                  /* 1 + that value's index, 0 when not placed */
    size_t place_off;              /* bytes into its buffer */
    int place_host;                /* values are placed in this one's buffer */
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

/* A channel Concat of channel-blocked inputs at offsets that are no multiple of the
 * block (a pruned DenseNet's), copied by the engine's own kernel: oneDNN's reference
 * concat took 35% of such a run. */
struct bcat {
    int n, block, out;          /* inputs, channels per block, the output value */
    int64_t batch, spatial, channels;
    const int *in;              /* input values */
    const int64_t *c, *off;     /* each input's channels and first output channel */
};

struct step {
    int first_node, last_node;
    int n_plain, plain_vals[8]; /* shadows refreshed before the step */
    int n_ex;
    struct exec ex[4];          /* reorders then the main primitive */
    int c_node;                 /* >= 0: run this node's C kernel instead */
    const struct bcat *bcat;    /* non-NULL: run rm_eng_bcat_run instead */
    int n_written, written[4];  /* values this step produces */
    int threads;                /* OpenMP threads it runs on (1 for tiny steps; 0: as set) */
};

/* A buffer from rm_eng_buf: 64 bytes of header (its index in plan->bufs, so that it is
 * released in O(1)) precede the 64-byte aligned memory handed out. */
struct heapbuf {
    char *mem;  /* as handed out */
    size_t n;   /* bytes, counted in mem_used */
    int mapped; /* a mapping of its own (else a heap block) */
};

/* An input a step reorders into the layout its primitive wants: read within that step
 * only, so the k-th of every step shares one buffer (rm_eng_place_reorders). */
struct reorder_in {
    dnnl_memory_t mem;
    int step, slot;
    size_t bytes;
};

/* Work on a constant weight done when the plan first runs (a plan that never runs, or
 * fails before, never pays for it): fold a BatchNorm's scale into a copy of the plain
 * weight, then reorder it into the layout its primitive wants. */
struct rm_prep {
    dnnl_primitive_t reorder;
    dnnl_memory_t from, to;     /* from: over fold, or over the constant w */
    float *fold;                /* plan buffer for w scaled per output channel, or NULL */
    const float *w, *sc, *va;   /* weight [n_oc, per_oc]; BN scale and variance */
    int64_t n_oc, per_oc;
    float eps;
    int threads;                /* OpenMP threads the reorder was made for (0: as set) */
    struct val *wv;             /* w's value when w is the plan's own copy of bytes that lie
                                   in the model file's mapping and nothing else reads the
                                   value: once reordered, the copy is released and wv points
                                   at those bytes (raw) again; else NULL */
    const void *raw;
};

/* Per-step timers (profile.c), only with REMODEL_PROFILE set. */
struct rm_prof {
    int all;                    /* REMODEL_PROFILE=all: every step, in order */
    double compile_ms, shapes_ms, memory_ms, prep_ms;
    double *node_plan_ms;       /* per node: time its planner took */
    double *step_run_ms;        /* per step: run time summed over runs */
    int cap, runs;
};

struct rm_plan {
    struct rm_graph *g;
    struct rm_session_options opts;
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
    struct heapbuf *bufs;       /* heap buffers the plan owns (rm_eng_buf) */
    int n_bufs, cap_bufs;
    uint64_t mem_limit;         /* bytes the plan's buffers may take (opts.max_memory) */
    uint64_t mem_used;
    uint64_t mem_refused;       /* the request that went over mem_limit, 0 if none */
    char mem_what[96];          /* what it was for (rm_eng_oom), "" if not said */
    void (*omp_set)(int);       /* OpenMP's omp_set_num_threads / omp_get_max_threads, or NULL */
    int (*omp_get)(void);
    int threads_max;            /* threads of big steps (the session's, or OpenMP's default) */
    struct rm_arena hp;         /* huge-page memory for rm_eng_hp_buf */
    dnnl_primitive_attr_t sp_attr; /* rm_eng_sp_attr's, made on first use */
    dnnl_memory_t *scratch;     /* user scratchpads, all on one buffer set after planning */
    int n_scratch, cap_scratch;
    size_t scratch_bytes;       /* the largest scratchpad any primitive asked for */
    size_t act_bytes;           /* activation buffers the memory planner allocated */
    size_t act_live;            /* the most bytes of activations alive at one step: what
                                   any planner needs at least */
    struct reorder_in *rin;     /* inputs reordered within a step (rm_eng_add_reorder_in) */
    int n_rin, cap_rin;
    dnnl_primitive_t *prims;
    int n_prims, cap_prims;
    dnnl_memory_t *mems;
    int n_mems, cap_mems;
    struct memref *refs;
    int n_refs, cap_refs;
    struct rm_prep *preps;      /* weights to prepare before the first run */
    int n_preps, cap_preps;
    bool prepared;              /* preps done */
    struct rm_prof *prof;       /* NULL unless REMODEL_PROFILE is set */
};

/* Every dnnl_* call: on failure set err (in scope) and rc, and jump to the function's
 * cleanup label `done`. */
#define CHECK(call)                                                                          \
    do {                                                                                     \
        dnnl_status_t s_ = (call);                                                           \
        if (s_ != dnnl_success) {                                                            \
            rc = rm_error_set(err, RM_EUNSUPPORTED, "oneDNN: %s failed (%s)", #call,         \
                              dnnl_status2str(s_));                                          \
            goto done;                                                                       \
        }                                                                                    \
    } while (0)

/* Steps doing less work than this (MACs, or elements of the largest input or output)
 * run on one thread. */
#define RM_ENG_TINY_WORK ((int64_t)1 << 16)
/* Make OpenMP run n threads (n > 0) unless it does already. */
void rm_eng_threads(struct rm_plan *p, int n);

/* ---- buffers.c ---- */

/* Room for one more element in a growing array of *cap elements of es bytes. */
int rm_eng_grow(void **arr, int *cap, int n, size_t es);
/* 64-byte aligned buffer owned by the plan, not cleared (write before reading); NULL
 * when out of memory or past the plan's memory limit (then mem_refused is set: rm_eng_oom
 * says so). */
void *rm_eng_buf(struct rm_plan *p, size_t bytes);
/* The same, always a mapping of its own (zero pages, never cleared; its pages can be
 * given back): for buffers that may never be touched. */
void *rm_eng_buf_mapped(struct rm_plan *p, size_t bytes);
/* Free a buffer rm_eng_buf returned before the plan goes (O(1)). */
void rm_eng_buf_release(struct rm_plan *p, void *b);
/* Free every buffer (the plan's end). */
void rm_eng_bufs_free(struct rm_plan *p);
/* RM_ENOMEM for an allocation that failed: past the plan's memory limit (with the
 * limit and the size asked), or out of memory; what names what was being allocated. */
int rm_eng_oom(struct rm_plan *p, struct rm_error *err, const char *what);
/* The channels-last (block 0) or 16- or 8-channel-blocked (1, 2) tag of v's layout, for
 * rank 3 to 5; dnnl_format_tag_any when it is plain, unknown or another. block may be NULL. */
dnnl_format_tag_t rm_eng_layout_tag(const struct val *v, int *block);
/* The same on transparent huge pages, for memory every run streams through (weights,
 * shared activations, the scratchpad): with 4 KB pages each page of a 17 MB Winograd
 * weight costs a TLB miss. Lives as long as the plan; never released early. */
void *rm_eng_hp_buf(struct rm_plan *p, size_t bytes);
/* Plain f32 descriptor for rank <= 6 (rank 0 as [1]); 0 or -1. */
int rm_eng_plain_md(dnnl_memory_desc_t *md, int rank, const int64_t *dims);
int rm_eng_alloc_plain(struct rm_plan *p, struct val *v, struct rm_error *err);
/* v as a plain array over buf (not owned: a constant's bytes in the model, read only). */
int rm_eng_view_plain(struct rm_plan *p, struct val *v, void *buf, struct rm_error *err);
int rm_eng_ensure_plain(struct rm_plan *p, struct val *v, struct rm_error *err);
void rm_eng_drop_plain(struct rm_plan *p, struct val *v);
/* view: another memory over the buffer of `of` (a memory rm_eng_add_reorder_in made,
 * created without a buffer), given the same buffer. */
int rm_eng_add_reorder_view(struct rm_plan *p, dnnl_memory_t of, dnnl_memory_t view, struct rm_error *err);
/* Give the in-step reorders their shared buffers (after the last step is planned). */
int rm_eng_place_reorders(struct rm_plan *p, struct rm_error *err);
int rm_eng_node_err(struct rm_plan *p, int node, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
int rm_eng_is(const struct rm_plan *p, int node, enum rm_op op);
/* Plain layouts by rank (0..6). */
extern const dnnl_format_tag_t rm_eng_plain_tags[7];
size_t rm_eng_dtype_bytes(int32_t dt);
/* Memory object over buf with layout md, owned by the plan. */
int rm_eng_make_mem(struct rm_plan *p, dnnl_memory_t *out, const dnnl_memory_desc_t *md, void *buf,
                    struct rm_error *err);
/* Register m as a view of v's buffer (plain 1: its plain shadow), re-pointed when
 * buffers are shared after planning. */
int rm_eng_reg_mem(struct rm_plan *p, dnnl_memory_t m, struct val *v, int plain, struct rm_error *err);
int rm_eng_make_prim(struct rm_plan *p, dnnl_primitive_t *out, const_dnnl_primitive_desc_t pd,
                     struct rm_error *err);
int rm_eng_make_reorder(struct rm_plan *p, dnnl_primitive_t *out, const dnnl_memory_desc_t *from,
                        const dnnl_memory_desc_t *to, struct rm_error *err);
/* Give v a buffer in layout md (blocked or plain). */
int rm_eng_alloc_md(struct rm_plan *p, struct val *v, const dnnl_memory_desc_t *md, struct rm_error *err);
/* A new step for node (its state set to the step's index); NULL when out of memory. */
struct step *rm_eng_new_step(struct rm_plan *p, int node);
/* Append a primitive execution to step s (a scratchpad-using one gets the shared one). */
int rm_eng_add_ex(struct rm_plan *p, struct step *s, dnnl_primitive_t prim, int nargs, const dnnl_exec_arg_t *args);
/* Reorder v into a new buffer of layout md as part of step s; *mem is that buffer. */
int rm_eng_add_reorder_in(struct rm_plan *p, struct step *s, struct val *v, const dnnl_memory_desc_t *md,
                          dnnl_memory_t *mem, struct rm_error *err);

/* Attributes that give a primitive the plan's shared scratchpad (rm_eng_add_ex) instead
 * of one oneDNN allocates for it on its first run and keeps: a pruned DenseNet's 18
 * Concats run oneDNN's reference concat, whose scratchpads held 21 MB. NULL when out of
 * memory (the primitive then keeps its own). */
const_dnnl_primitive_attr_t rm_eng_sp_attr(struct rm_plan *p);

/* Queue a weight preparation for the first run (rm_eng_prepare); a few-runs plan runs
 * it at once. */
int rm_eng_add_prep(struct rm_plan *p, const struct rm_prep *pr, struct rm_error *err);
/* Run the queued preparations once; their fold buffers are freed. */
int rm_eng_prepare(struct rm_plan *p, struct rm_error *err);

/* ---- consts.c ---- */

/* Materialize a TensorProto as a plan-time constant in v (what names it in messages). */
int rm_eng_load_const(struct rm_plan *p, struct val *v, const Onnx__TensorProto *t, const char *what,
                      struct rm_error *err);
int rm_eng_load_constant_node(struct rm_plan *p, int node, struct rm_error *err);
/* Make value vi available at plan time if it is an initializer or a later Constant. */
int rm_eng_early_const(struct rm_plan *p, int vi, struct rm_error *err);
/* The given inputs as shapes for inference (*specs malloc'd), after checking them against
 * the declared types and static dims. */
int rm_eng_given_specs(const struct rm_model *m, const struct rm_graph *g, const struct rm_session_options *o,
                       struct rm_input_spec **specs,
                       size_t *n, struct rm_error *err);
/* Graph input vi as a plan value: 0, 1 when it became a constant (a given int64), or an
 * RM_E* code. */
int rm_eng_setup_input(struct rm_plan *p, int vi, struct rm_error *err);

/* "[1,3,224,224]" into buf. */
void rm_eng_dims_str(char *buf, size_t n, int rank, const int64_t *dims);

/* ---- plan_conv.c ---- */

/* A oneDNN post-op: an eltwise algorithm, or a sum with another value. */
struct postop {
    int sum;
    dnnl_alg_kind_t alg;
    float a, b;
};
/* Eltwise equivalent of node (constant parameters) appended to po; 0 when none. */
int rm_eng_eltwise_of(struct rm_plan *p, int node, struct postop *po, int *npo);
/* The single consumer of value vi if it may be fused into its producer, else -1. */
int rm_eng_sole_consumer(struct rm_plan *p, int vi);
/* Decide once whether convs run channel-blocked (any Winograd conv) or channels-last. */
void rm_eng_choose_conv_layout(struct rm_plan *p);

/* ---- plan.c, memory.c ---- */

int rm_eng_op_supported(const struct rm_node *n);
/* Share buffers between values whose lifetimes do not overlap; one scratchpad. */
int rm_eng_plan_memory(struct rm_plan *p, struct rm_error *err);

/* Value of node input k, or NULL when absent. */
struct val *rm_eng_in(struct rm_plan *p, int node, size_t k);
struct val *rm_eng_out(struct rm_plan *p, int node, size_t k);

/* ---- plan_concat.c ---- */

/* Concat node planned as a step that copies nothing (*planned 1), its inputs placed in
 * slices of its output's buffer, when the layout allows; else *planned 0, nothing done. */
int rm_eng_concat_in_place(struct rm_plan *p, int node, int *planned, struct rm_error *err);
/* A Concat followed by ShuffleNet's channel shuffle (Reshape, Transpose, Reshape) as one
 * step writing the shuffled output (*planned 1), or nothing done (*planned 0). */
int rm_eng_concat_shuffle(struct rm_plan *p, int node, int *planned, struct rm_error *err);
/* A channel Concat whose inputs are all channel-blocked alike, at least one at an offset
 * that is no multiple of the block, as one step of the engine's own copy (struct bcat);
 * *planned 0 leaves the node to oneDNN's concat. */
int rm_eng_concat_blocked(struct rm_plan *p, int node, int *planned, struct rm_error *err);
/* Run a struct bcat step. */
void rm_eng_bcat_run(const struct rm_plan *p, const struct bcat *b);
/* The value whose buffer holds vi's (vi when placed nowhere); *off: vi's byte offset. */
int rm_eng_place_top(struct rm_plan *p, int vi, size_t *off);

/* ---- profile.c ---- */

double rm_eng_now_ms(void);
/* p->prof set up when REMODEL_PROFILE asks for it; -1 when out of memory. */
int rm_eng_prof_init(struct rm_plan *p);
void rm_eng_prof_step(struct rm_plan *p, int step, double ms);
/* The table on stderr (REMODEL_PROFILE only), then the timers freed. */
void rm_eng_prof_report(struct rm_plan *p);
void rm_eng_prof_free(struct rm_plan *p);

/* ---- kernel_call.c ---- */

/* Run node's C kernel (the op table's) on its values' plain buffers. */
int rm_eng_kernel(struct rm_plan *p, int node);

#endif
