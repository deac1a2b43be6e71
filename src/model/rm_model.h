/* An ONNX model in memory: the protobuf-c ModelProto (the single source of truth)
 * and the arena that owns all of it. rm_model_load reads a file with mmap,
 * validates the wire format (lengths, nesting, memory budget) before protobuf-c
 * sees it, and unpacks into the arena all but the tensors' raw_data, which stays in
 * the read-only mapping (edits give a tensor new bytes of its own, freed when a later
 * edit replaces them); rm_model_save streams the ModelProto to a temporary file in the
 * target folder and renames it into place. */
#ifndef RM_MODEL_H
#define RM_MODEL_H

#include "onnx.pb-c.h"
#include "rm_arena.h"
#include "remodel.h"
#include "rm_error.h"
#include "rm_fs.h"
#include "rm_strmap.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest message nesting accepted (graphs inside attributes inside nodes ...). */
#define RM_MAX_NESTING 64

struct rm_extfile;
struct rm_graph;
struct rm_tree;
struct rm_input_spec;
struct rm_host_tensor;

/* How often a model's derived state was computed, and the bytes of tensor buffers
 * edits gave it that it holds (for tests and benchmarks). */
struct rm_model_stats {
    unsigned index_builds, shape_runs, tree_builds;
    size_t tensor_bytes;
};

/* A tensor buffer an edit gave the model (malloc'd). */
struct rm_model_buf {
    void *p;
    size_t n;
};

struct rm_model {
    Onnx__ModelProto *proto; /* owned by arena */
    struct rm_arena arena;   /* owns proto and what edits add but tensor bytes (bufs) */
    char *path;              /* file it was loaded from (malloc'd), or NULL */
    char *dir;               /* folder of path, for external data (malloc'd) */
    size_t file_size;        /* bytes of the file as loaded */
    uint64_t max_memory;     /* the load's memory limit, which its sessions keep to too */
    struct rm_file_id file_id; /* identity of that file (when path is set) */
    struct rm_extfile *ext;  /* mapped external data files (rm_extdata.c), or NULL */
    void *map;               /* the file, mapped read-only and shared when tensors' raw_data
                                point into it (rm_model_load), or NULL; never written */
    size_t map_size;

    /* derived state, computed on demand and kept until the model changes
     * (rm_model_state.c); every change goes through the mutation API (rm_model_edit.c),
     * which bumps gen */
    uint64_t gen;                    /* generation of proto */
    struct rm_graph *graph;          /* index and shapes of proto at graph_gen, or NULL */
    uint64_t graph_gen;
    uint64_t shapes_key;             /* inputs_gen the graph's shapes were inferred for */
    struct rm_tree *tree;            /* module tree of graph, or NULL */
    struct rm_input_spec *inputs;    /* given input shapes (malloc'd, values owned) */
    size_t n_inputs;
    uint64_t inputs_gen;
    int64_t dynamic_dim;             /* unknown input dims not given take this (1) */
    struct rm_strmap added;          /* names created since graph was built (keys in the arena) */
    bool names_known;                /* graph's names and added are every name (no direct
                                        change through rm_model_touch since graph was built) */
    void *init_arr;                  /* the initializer array edits allocated, and its room */
    size_t init_cap;
    void *meta_arr;                  /* the same for metadata_props */
    size_t meta_cap;
    struct rm_strmap meta_keys;      /* metadata key -> index into metadata_props, valid while */
    const void *meta_keys_arr;       /* metadata_props and its count are these */
    size_t meta_keys_n;
    struct rm_model_stats stats;
    int refs;                        /* clones sharing this model's tensor bytes */
    bool freed;                      /* rm_model_free was called; storage stays for clones */
    struct rm_model *base;           /* a clone: the model whose tensor bytes it shares */
    void *adopt;                     /* the last rm_model_tensor_buffer, until a tensor takes it */
    size_t adopt_size;
    struct rm_model_buf *bufs;       /* tensor bytes edits gave this model: a hash set (p NULL
                                        empty, or a deleted mark), so that bytes a later edit
                                        replaces are given back at once */
    size_t bufs_cap, bufs_used;      /* slots (0 or a power of two), slots not NULL */
};

/* Loading, freeing, cloning and saving are public (remodel.h): rm_model_load,
 * rm_model_load_buffer, rm_model_free, rm_model_clone, rm_model_save. */

/* ---- derived state (rm_model_state.c) ------------------------------------------------
 * The index, the shapes and the module tree of a model are computed when first asked
 * for and kept until the model changes. The pointers returned are borrowed: valid until
 * the next call after a change (rm_graph_hold / rm_tree_hold keep one longer). */

/* The graph index with shapes inferred for the model's input shapes. NULL on failure
 * (err says why: out of memory, a graph too large to index). */
struct rm_graph *rm_model_graph(struct rm_model *m, struct rm_error *err);

/* The graph index alone (shapes as last inferred, possibly stale): for walking names,
 * producers and consumers. NULL on failure. */
struct rm_graph *rm_model_index(struct rm_model *m, struct rm_error *err);

/* For code that changes proto directly (tests building hostile models): mark the
 * derived state stale. Library code uses the mutation API below instead. */
void rm_model_touch(struct rm_model *m);

/* Free the derived state (rm_model_free does it). */
void rm_model_drop_state(struct rm_model *m);

/* The module tree. NULL on failure (also RM_EFORMAT for a model whose graph has a
 * malformed node or input, rm_graph.malformed). */
struct rm_tree *rm_model_tree(struct rm_model *m, struct rm_error *err);

/* Give graph inputs shapes (and int64 inputs contents) for shape inference and the
 * engine; replaces the earlier ones. Dims not given stay as declared, unknown ones
 * taking the dynamic dim (1). The values are copied. Returns 0 or RM_ENOMEM. */
int rm_model_set_inputs(struct rm_model *m, const struct rm_input_spec *specs, size_t n, struct rm_error *err);

/* RM_EUSAGE unless rank is 0..RM_MAX_RANK and every dim is positive (input names it). */
int rm_input_dims_check(const char *input, int rank, const int64_t *dims, struct rm_error *err);



/* ---- mutation (rm_model_edit.c) ---------------------------------------------------------
 * The only way library code changes a model. Nodes are numbered as in the graph index
 * (graph order); numbers stay valid until rm_model_remove_nodes or rm_model_sweep. New
 * strings live in the model's arena, new tensor bytes in buffers of their own; existing
 * tensor bytes are never written (a clone may share them), and bytes an edit gave a
 * tensor are freed when a later edit replaces them, unless a clone shares them. So a
 * pointer to a tensor's bytes is good until the next change to that tensor. Each
 * function returns 0, RM_ENOMEM or RM_EEDIT (no such node or initializer), and marks
 * the derived state stale where it depends on what changed. */

/* Room for new tensor contents of `bytes` bytes (uninitialized), owned by the model.
 * Handed as `data` to the next rm_model_set_initializer or rm_model_add_initializer,
 * the tensor takes the buffer itself instead of a copy (a large weight is built once,
 * in place). NULL when out of memory. */
void *rm_model_tensor_buffer(struct rm_model *m, size_t bytes);
/* The same for bytes a tensor of m holds now, when they can be rewritten where they are:
 * m owns them (an edit made them), no clone shares them, and they have room for `bytes`.
 * Handed back as `data`, the tensor keeps the buffer. NULL otherwise. */
void *rm_model_tensor_reuse(struct rm_model *m, const void *p, size_t bytes);

/* Free the tensor bytes edits gave m (rm_model_free). */
void rm_model_bufs_free(struct rm_model *m);

/* Give initializer `name` new float32 contents and dims. Graph inputs declaring it (as
 * exporters with keep_initializers_as_inputs write) get the new shape too. */
int rm_model_set_initializer(struct rm_model *m, const char *name, int rank, const int64_t *dims,
                             const float *data, struct rm_error *err);
/* The same with int64 contents (a Resize's `sizes`). */
int rm_model_set_initializer_i64(struct rm_model *m, const char *name, int rank, const int64_t *dims,
                                 const int64_t *data, struct rm_error *err);

/* Turn Constant node `node` (one `value` tensor) into an initializer named as its
 * output, and remove the node: the graph computes the same. Node numbers after it
 * shift down by one. */
int rm_model_constant_to_initializer(struct rm_model *m, int node, struct rm_error *err);

/* Add a float32 initializer named base, or base_1, base_2, ... when base is taken;
 * *name receives the name used (arena string). */
int rm_model_add_initializer(struct rm_model *m, const char *base, int rank, const int64_t *dims,
                             const float *data, const char **name, struct rm_error *err);
int rm_model_add_initializer_i64(struct rm_model *m, const char *base, int rank, const int64_t *dims,
                                 const int64_t *data, const char **name, struct rm_error *err);

/* The initializer called name (the newest of that name), or NULL. */
const Onnx__TensorProto *rm_model_initializer(struct rm_model *m, const char *name);

/* Whether a tensor, node output or graph input/output of the model is called name. */
bool rm_model_name_taken(struct rm_model *m, const char *name);

/* Node input `slot` reads `name` ("" for an omitted optional input); the input list
 * grows as needed. rm_model_trim_inputs drops inputs from slot n on. */
int rm_model_set_node_input(struct rm_model *m, int node, size_t slot, const char *name, struct rm_error *err);
int rm_model_trim_inputs(struct rm_model *m, int node, size_t n, struct rm_error *err);

/* Node output `slot` is called name. */
int rm_model_set_node_output(struct rm_model *m, int node, size_t slot, const char *name, struct rm_error *err);

/* Set an ints / int attribute (added in name order when missing), or remove one. */
int rm_model_set_attr_ints(struct rm_model *m, int node, const char *name, const int64_t *v, size_t n,
                           struct rm_error *err);
int rm_model_set_attr_int(struct rm_model *m, int node, const char *name, int64_t v, struct rm_error *err);
int rm_model_del_attr(struct rm_model *m, int node, const char *name, struct rm_error *err);

/* Remove the nodes flagged in dead (one flag per node). Node numbers change. */
int rm_model_remove_nodes(struct rm_model *m, const bool *dead, struct rm_error *err);

/* Remove what nothing uses any more, in one pass from the graph outputs back: with
 * RM_SWEEP_NODES nodes none of whose outputs is read, then initializers no remaining
 * node reads, and graph inputs that declared a removed initializer. *removed (may be
 * NULL) counts what went. */
enum { RM_SWEEP_INITIALIZERS = 0, RM_SWEEP_NODES = 1 };
int rm_model_sweep(struct rm_model *m, unsigned what, size_t *removed, struct rm_error *err);

/* Set a metadata_props entry (added when missing). Derived state stays valid. Keys are
 * found through an index and the array grows by doubling, so that an edit recording
 * one entry per tensor (channel maps) stays linear in the graph's size. */
int rm_model_set_metadata(struct rm_model *m, const char *key, const char *value, struct rm_error *err);

/* Write the inferred shapes into the graph outputs and value_info entries, so a saved
 * file carries no stale shapes: fixed sizes that changed are rewritten, symbolic ones
 * stay, a value_info whose rank changed loses its shape. Derived state stays valid. */
int rm_model_write_shapes(struct rm_model *m, struct rm_error *err);

/* Metadata value of key, or NULL. */
const char *rm_model_metadata(struct rm_model *m, const char *key);

/* Serialize m inline to path atomically (rm_model_save's path without external data):
 * temporary file in path's folder, fsync, rename, fsync of the folder. On failure
 * nothing is left behind and an existing file at path (the input itself included) is
 * untouched. path may be m's own file, never one of its external data files. Returns 0,
 * RM_EIO or RM_EUSAGE. */
int rm_model_save_inline(const struct rm_model *m, const char *path, struct rm_error *err);

/* Check that size bytes are a well-formed serialization of desc (every length
 * inside its parent, nesting below RM_MAX_NESTING, no groups) and estimate the
 * bytes protobuf-c will allocate to unpack it into *mem_estimate (may be NULL).
 * name is used in messages. Returns 0 or RM_EFORMAT. */
int rm_wire_check(const uint8_t *data, size_t size, const ProtobufCMessageDescriptor *desc,
                  const char *name, uint64_t *mem_estimate, struct rm_error *err);

#endif
