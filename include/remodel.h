/* remodel — edit ONNX CNNs the way you edit a PyTorch nn.Module.
 *
 * Load a model, find a layer by its module path ("layer4.0.conv1"), replace it or prune
 * channels with every dependent layer following, run the model before and after on
 * oneDNN and compare, save. This header is the whole public interface of libremodel:
 * opaque handles for models and inference sessions, plain structs for options and
 * results, and one error convention.
 *
 * Conventions
 *   - Functions that can fail return 0 or a negative RM_E* code and, when err is not
 *     NULL, leave one line in err->msg saying what, where and why. The library never
 *     prints and never exits.
 *   - Handles start NULL and every *_free accepts NULL. Strings returned as `const char *`
 *     belong to the model (valid until it changes or is freed); strings returned as
 *     `char *` are malloc'd and released with rm_free.
 *   - A model is not thread-safe; different models may be used from different threads.
 *
 * A worked example: replace a convolution of resnet18 with a narrower one, carry the
 * channel change to the layers that read it, check the edit against the original, save.
 *
 *     #include <remodel.h>
 *     #include <stdio.h>
 *
 *     int main(void)
 *     {
 *         rm_error err;
 *         rm_model *orig = NULL, *m = NULL;
 *         if (rm_model_load(&orig, "resnet18.onnx", NULL, &err) ||
 *             rm_model_clone(&m, orig, &err))       // edit a copy, keep the original
 *             goto fail;
 *         rm_replace_options ro = {.init = RM_INIT_KEEP, .propagate = true};
 *         rm_findings log = {0};
 *         if (rm_replace(m, "layer4.0.conv1", "Conv2d(256, 256, 3, 2, 1, bias=False)", &ro, &log, &err))
 *             goto fail;
 *         for (size_t i = 0; i < log.n; i++)
 *             printf("%s\n", log.v[i].text);       // what changed, one line per layer
 *         rm_findings_free(&log);
 *
 *         rm_diff_options o;
 *         rm_diff_result r;
 *         rm_diff_options_default(&o);             // the same seeded input for both
 *         if (rm_diff(orig, m, &o, &r, &err))
 *             goto fail;
 *         printf("cosine %f\n", r.outputs[0].s.cosine);
 *         rm_diff_result_free(&r);
 *
 *         if (rm_model_save(m, "resnet18-narrow.onnx", NULL, &err))
 *             goto fail;
 *         rm_model_free(m);
 *         rm_model_free(orig);
 *         return 0;
 *     fail:
 *         fprintf(stderr, "%s\n", err.msg);
 *         rm_model_free(m);
 *         rm_model_free(orig);
 *         return 1;
 *     }
 *
 * Build with `cc prog.c $(pkg-config --cflags --libs remodel)`.
 *
 * Sections: errors · tensors · models · info and check · modules · edits · inference
 * sessions · diff · output files · JSON · misc. */
#ifndef REMODEL_H
#define REMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define RM_API __attribute__((visibility("default")))
#define RM_FORMAT(a, b) __attribute__((format(printf, a, b)))
#else
#define RM_API
#define RM_FORMAT(a, b)
#endif

#define REMODEL_VERSION_MAJOR 0
#define REMODEL_VERSION_MINOR 2
#define REMODEL_VERSION_PATCH 0

/* "0.2.0": the version of the library linked in. */
RM_API const char *rm_version(void);

/* ==== errors ===========================================================================
 * Every code, its name and its meaning, from one list. */
#define RM_ERRNO_MAP(XX)                                                                     \
    XX(EIO, -1, "input/output error", "a file cannot be opened, read or written")            \
    XX(EFORMAT, -2, "malformed input", "a malformed or inconsistent model or tensor file")   \
    XX(EUSAGE, -3, "usage error", "a bad argument or option")                                 \
    XX(ENOMEM, -4, "out of memory", "an allocation failed, or the input needs absurd memory") \
    XX(EUNSUPPORTED, -5, "unsupported", "valid ONNX that remodel does not handle")           \
    XX(ENOTFOUND, -6, "not found", "an unknown module path, tensor or node name")           \
    XX(EEDIT, -7, "incompatible edit", "an edit that does not fit the model")

enum {
    RM_OK = 0,
#define RM_ERRNO_ENUM_(name, value, text, about) RM_##name = value,
    RM_ERRNO_MAP(RM_ERRNO_ENUM_)
#undef RM_ERRNO_ENUM_
};

/* What a caller can do about an error, for tools that offer their own option for it
 * (the CLI adds its flag to the message). */
enum rm_fix {
    RM_FIX_NONE = 0,
    RM_FIX_PROPAGATE,     /* carry channel changes to dependent layers (rm_replace_options) */
    RM_FIX_GLOBAL,        /* prune every prunable group together (rm_prune_options.global) */
    RM_FIX_EXTERNAL_DATA, /* save tensors as external data (rm_save_options.external_data) */
    RM_FIX_INPUT_SHAPE,   /* give the input's dims (rm_model_set_input_shape) */
};

#define RM_ERROR_MSG_MAX 1024

typedef struct rm_error {
    int code;                    /* the last RM_E* code, RM_OK when none */
    int fix;                     /* enum rm_fix: what would help, RM_FIX_NONE when nothing */
    char msg[RM_ERROR_MSG_MAX];  /* one line, no trailing newline */
} rm_error;

/* "RM_EFORMAT" for RM_EFORMAT, "RM_E?" for unknown codes. Never NULL. */
RM_API const char *rm_err_name(int code);
/* "malformed input" for RM_EFORMAT, "ok" for RM_OK, "error" for unknown codes. */
RM_API const char *rm_strerror(int code);
/* Reset err to "no error". Accepts NULL. */
RM_API void rm_error_clear(rm_error *err);

/* ==== tensors ========================================================================== */

/* Element types, as ONNX numbers them (TensorProto.DataType). */
enum rm_dtype {
    RM_DTYPE_FLOAT = 1,
    RM_DTYPE_UINT8 = 2,
    RM_DTYPE_INT8 = 3,
    RM_DTYPE_INT32 = 6,
    RM_DTYPE_INT64 = 7,
    RM_DTYPE_BOOL = 9,
    RM_DTYPE_DOUBLE = 11,
};

#define RM_MAX_RANK 8

/* A plain row-major tensor in memory: what sessions take and give back. */
typedef struct rm_host_tensor {
    int32_t dtype;              /* enum rm_dtype: FLOAT or INT64 for what sessions take */
    int rank;                   /* 0 (scalar) .. RM_MAX_RANK */
    int64_t dims[RM_MAX_RANK];
    int64_t numel;              /* product of dims */
    void *data;                 /* numel elements, row-major */
    int owned;                  /* 1: data is malloc'd and freed by rm_tensor_free */
} rm_tensor;

/* Allocate t (data zeroed) for dtype FLOAT or INT64 and the given dims. Returns 0,
 * RM_EUNSUPPORTED (dtype), RM_EFORMAT (negative dim, rank) or RM_ENOMEM. */
RM_API int rm_tensor_alloc(rm_tensor *t, int32_t dtype, int rank, const int64_t *dims, rm_error *err);
/* Free owned data and zero t. Accepts NULL. */
RM_API void rm_tensor_free(rm_tensor *t);
/* Read a tensor file: NumPy .npy (little-endian <f4/<i8 in C order; f8/i4 converted) or
 * a serialized ONNX TensorProto (.pb, as ONNX's test data stores them), by content.
 * name (may be NULL) receives the TensorProto's name ("" for .npy). */
RM_API int rm_tensor_read(const char *path, rm_tensor *out, char *name, size_t name_size, rm_error *err);
/* Write t as a TensorProto named name, atomically. */
RM_API int rm_tensor_write_pb(const char *path, const rm_tensor *t, const char *name, rm_error *err);
/* The same as ONNX element type dtype: float32 data as FLOAT, DOUBLE or BOOL, int64 data
 * as INT64, INT32, INT16, INT8, UINT8 or BOOL (a session output as the type
 * rm_session_output_type names). */
RM_API int rm_tensor_write_pb_as(const char *path, const rm_tensor *t, int32_t dtype, const char *name,
                                 rm_error *err);
/* "float32", "int64", ... */
RM_API const char *rm_dtype_name(int32_t dtype);

/* ==== models ============================================================================ */

typedef struct rm_model rm_model;

typedef struct rm_load_options {
    uint64_t max_memory;  /* bytes unpacking may take, and a session of the model may
                             allocate (a small file can declare a 16 GB input); 0: half
                             the machine's RAM */
} rm_load_options;

/* Load an ONNX file: the wire format is checked (lengths, nesting, memory needed)
 * before it is unpacked; tensors stored as external data are mapped read-only from the
 * model's folder (never outside it). A file that is not a model is named for what it
 * is (a PyTorch checkpoint, a text file, a SavedModel, ...). opts may be NULL. */
RM_API int rm_model_load(rm_model **out, const char *path, const rm_load_options *opts, rm_error *err);
/* The same from bytes in memory (copied; name is used in messages). */
RM_API int rm_model_load_buffer(rm_model **out, const void *data, size_t size, const char *name,
                                const rm_load_options *opts, rm_error *err);
/* A copy to edit: the structure is copied, tensor bytes are shared until an edit gives
 * a tensor new ones, so a clone of a 45 MB model costs kilobytes. */
RM_API int rm_model_clone(rm_model **out, rm_model *m, rm_error *err);
/* Free m. A model stays in memory as long as clones share its tensor bytes. */
RM_API void rm_model_free(rm_model *m);

typedef struct rm_save_options {
    /* Write initializers of external_threshold bytes or more (default 1024) to this file
     * beside the output (a bare file name), 4096-aligned, referenced as ONNX external
     * data. NULL: all inline (a model over protobuf's 2 GB limit then fails). */
    const char *external_data;
    uint64_t external_threshold;
} rm_save_options;

/* Write m to path atomically (temporary file in its folder, fsync, rename): a failure
 * leaves nothing behind and never damages an existing file, the model's own included.
 * A model saved without edits is byte-identical to what was loaded. Refuses to write a
 * file any loaded model reads its weights from. opts may be NULL. */
RM_API int rm_model_save(rm_model *m, const char *path, const rm_save_options *opts, rm_error *err);

/* The file m was loaded from, or NULL. */
RM_API const char *rm_model_path(const rm_model *m);

/* Input shapes. A graph input may declare dynamic dims (a name or nothing instead of a
 * size). Shape inference, sessions and the edits that change shapes need every size:
 * a dynamic batch (dimension 0) alone counts as 1; other dynamic dims must be given. */

/* Give graph input `input` the dims it will be fed with (all of them; the declared
 * sizes must agree), for shape inference and sessions. */
RM_API int rm_model_set_input_shape(rm_model *m, const char *input, int rank, const int64_t *dims, rm_error *err);

/* 0 when every graph input's dims are known (declared or given), a dynamic batch
 * alone counting as 1 (*batch_defaulted, may be NULL, then says so); else RM_EUSAGE
 * with RM_FIX_INPUT_SHAPE naming the input and its unknown dims. rm_session_create,
 * rm_replace and rm_prune call it first. */
RM_API int rm_model_check_inputs(rm_model *m, int *batch_defaulted, rm_error *err);

/* Rewrite the declared dims of graph input `input` (any sizes, as onnx-simplifier's
 * --overwrite-input-shape does); the outputs' and value_info's fixed sizes follow. */
RM_API int rm_model_rewrite_input_shape(rm_model *m, const char *input, int rank, const int64_t *dims,
                                        rm_error *err);

/* ==== info and check ====================================================================== */

/* A graph input or output as declared. */
typedef struct rm_value_info {
    const char *name;
    int32_t dtype;                          /* enum rm_dtype, 0 when not declared */
    int rank;                               /* -1 when no shape is declared */
    int64_t dims[RM_MAX_RANK];              /* -1 for a symbolic or unknown dim */
    const char *dim_names[RM_MAX_RANK];     /* a symbolic dim's name, else NULL */
} rm_value_info;

typedef struct rm_opset {
    const char *domain;                     /* "" for the default ONNX domain */
    int64_t version;
} rm_opset;

typedef struct rm_op_count {
    const char *op;
    int count;
} rm_op_count;

/* A summary of a model (strings point into the model; arrays owned by the struct). */
typedef struct rm_info {
    uint64_t file_bytes;                    /* size of the file loaded, 0 for a buffer */
    int64_t ir_version;
    const char *producer_name, *producer_version;   /* "" when absent */
    size_t n_opsets;
    rm_opset *opsets;
    size_t n_inputs;                        /* graph inputs that are not initializers */
    rm_value_info *inputs;
    size_t n_outputs;
    rm_value_info *outputs;
    size_t n_nodes;
    size_t n_ops;
    rm_op_count *ops;                       /* most frequent first, then by name */
    size_t n_initializers;
    int64_t params;                         /* elements over all initializers and the
                                             * parameters Constant nodes hold */
    uint64_t param_bytes;
    int64_t macs;                           /* multiply-accumulates, -1 when a size is unknown
                                             * (a dynamic input dim not given, an op without a
                                             * rule) or the total would pass int64 */
} rm_info;

/* Fill info (free it with rm_info_free). RM_EFORMAT for a model with a node remodel
 * refuses to interpret (an attribute given twice or of the wrong type, inputs beyond
 * its schema) or a graph input declared with a negative size: err names it. */
RM_API int rm_model_info(rm_model *m, rm_info *info, rm_error *err);
RM_API void rm_info_free(rm_info *info);

/* Findings: what a check found, what an edit did. One list type for every report. */
enum rm_finding_kind {
    RM_FINDING_PROBLEM = 0,                 /* something wrong (counted by check) */
    RM_FINDING_WARNING,                     /* worth knowing, not wrong */
    RM_FINDING_NOTE,                        /* what an edit changed */
};

typedef struct rm_finding {
    int kind;                               /* enum rm_finding_kind */
    int node;                               /* node index it is about, or -1 */
    char *text;                             /* one line */
} rm_finding;

typedef struct rm_findings {
    size_t n, cap;
    rm_finding *v;
    int oom;                                /* some were lost: out of memory */
} rm_findings;

/* How many findings of kind there are. */
RM_API size_t rm_findings_count(const rm_findings *f, int kind);
/* Free the texts and the array; zero f. Accepts NULL. */
RM_API void rm_findings_free(rm_findings *f);

/* Check m at least as strictly as onnx's checker with full_check: structure (inputs
 * produced before use, unique names, sorted nodes, tensor sizes), operators against the
 * ONNX schemas (exists in the imported opset, attributes, input/output counts, element
 * types), graph inputs that name initializers agree with them. Findings are appended to
 * out. Returns the number of problems (>= 0), or a negative RM_E* code. */
RM_API int rm_model_check(rm_model *m, rm_findings *out, rm_error *err);

/* ==== modules ===============================================================================
 * The nn.Module hierarchy rebuilt from the export (scope names, parameter names, the
 * dynamo exporter's metadata), in preorder: index 0 is the root. Indexes are valid until
 * the model changes. */

/* Deepest module nesting kept; nodes scoped deeper belong to no module. */
#define RM_MAX_MODULE_DEPTH 24

enum rm_arg_type { RM_ARG_INT, RM_ARG_INTS, RM_ARG_FLOAT, RM_ARG_BOOL, RM_ARG_STR };
/* Most values of one RM_ARG_INTS argument (3-D modules: triples). */
#define RM_MAX_ARG_INTS 3

/* One constructor argument of a leaf, as nn.<Type>(...) takes it. */
typedef struct rm_arg {
    const char *key;        /* "in_channels", "kernel_size", ... */
    int type;               /* enum rm_arg_type */
    int n;                  /* RM_ARG_INTS: number of values (<= RM_MAX_ARG_INTS) */
    int64_t i[RM_MAX_ARG_INTS]; /* RM_ARG_INT / RM_ARG_INTS / RM_ARG_BOOL (0 or 1) */
    double f;               /* RM_ARG_FLOAT */
    const char *s;          /* RM_ARG_STR */
    bool positional;        /* PyTorch's repr prints the value without "key=" */
    bool in_repr;           /* PyTorch's repr prints it (it omits some defaults) */
    bool scalar_repr;       /* RM_ARG_INTS printed as one int when all values are equal */
} rm_arg;

typedef struct rm_module_info {
    const char *path;       /* dotted, "" for the root */
    const char *name;       /* last path component */
    const char *type;       /* "Conv2d", "BasicBlock", "Sequential", "Module" (unknown) */
    bool type_known;        /* false: the class could not be determined (never guessed) */
    bool leaf;              /* no children, has nodes */
    bool bn_folded;         /* a Conv2d whose BatchNorm the exporter folded into it */
    int depth;              /* 0 for the root */
    size_t parent;          /* index of the parent; SIZE_MAX for the root */
    size_t n_children, n_nodes, n_args, n_params;
    const char *source;     /* what gave the path: "dynamo" (the exporter's metadata), "scope"
                             * (node scopes), "param" (parameter names), "tensor" (output
                             * names), "slash" ('/'-separated names), "derived" (made up for
                             * a Conv nothing names), "none" (the root) */
    const char *qualname;   /* the exporter's full class name ("torchvision.models.resnet.
                             * BasicBlock"), or NULL */
} rm_module_info;

/* Build (or reuse) the module tree; *n receives the number of modules. RM_EFORMAT for
 * a malformed model, as rm_model_info. */
RM_API int rm_model_modules(rm_model *m, size_t *n, rm_error *err);
/* Module i (after rm_model_modules). Returns 0 or RM_ENOTFOUND. */
RM_API int rm_model_module(rm_model *m, size_t i, rm_module_info *out);
/* Index of the module at path ("layer4.0.conv1" or "layer4[0].conv1"; "" is the root).
 * An unknown path is RM_ENOTFOUND naming the nearest paths. */
RM_API int rm_model_find_module(rm_model *m, const char *path, size_t *i, rm_error *err);
/* Child k, node k (its name or "<op> #<index>"), argument k, parameter k of module i;
 * SIZE_MAX / NULL / -1 when out of range. A parameter is its role ("weight", "bias",
 * "running_mean", ...) and the tensor that holds it. */
RM_API size_t rm_module_child(rm_model *m, size_t i, size_t k);
RM_API const char *rm_module_node(rm_model *m, size_t i, size_t k);
RM_API const rm_arg *rm_module_arg(rm_model *m, size_t i, size_t k);
RM_API int rm_module_param(rm_model *m, size_t i, size_t k, const char **role, const char **tensor);
/* PyTorch's repr of module i on one line ("Conv2d(3, 64, kernel_size=(7, 7), ...)"),
 * truncated to fit buf; returns the full length. */
RM_API size_t rm_module_repr(rm_model *m, size_t i, char *buf, size_t n);
/* print(module) of module i and its subtree as PyTorch prints it, containers nested
 * deeper than max_depth levels (< 0: no limit) collapsed; for the root, nodes that
 * belong to no module are listed last. malloc'd (rm_free), NULL on failure. */
RM_API char *rm_model_repr(rm_model *m, size_t i, int max_depth, rm_error *err);
/* Nodes that belong to no module: count, and node k's name and op. */
RM_API size_t rm_model_n_unplaced(rm_model *m);
RM_API int rm_model_unplaced(rm_model *m, size_t k, const char **name, const char **op);
/* Whether node names carried the exporter's module scopes. */
RM_API bool rm_model_scoped(rm_model *m);

/* ==== input sets ================================================================================
 * The values fed to a model for one sample, in memory (rm_input_set) or in a folder
 * (rm_input_sets), which calibration, diff and verification read one set at a time.
 *
 * Folder layout (every tool that reads or writes input sets uses it): DIR holds one folder per
 * sample, taken in natural order of their names (test_data_set_2 before
 * test_data_set_10); each holds one tensor file per graph input, a serialized ONNX
 * TensorProto (.pb) or a NumPy array (.npy). A file feeds the input named by the
 * TensorProto's name, else by its file name (input.pb, input.npy feed `input`), else,
 * when named input_<k>.pb or input_<k>.npy, graph input k (ONNX's test-data layout:
 * DIR/test_data_set_0/input_0.pb); output_<k> files are skipped, any other .pb or .npy
 * file is an error, files of other kinds are not read. Every set gives every input, with
 * the same dims in every set. A DIR without folders that holds tensor files is one set. */

/* One sample's values by input name; inputs it does not give are seeded random. */
typedef struct rm_input_set {
    int n;
    const char *const *names;
    const rm_tensor *values;
} rm_input_set;

typedef struct rm_input_sets rm_input_sets;

/* List and check the input sets in dir for model m: every file maps to a graph input,
 * every set gives every input, dims agree between sets and with the model's fixed dims.
 * Tensors are read again by rm_input_sets_read (memory stays bounded by one set). */
RM_API int rm_input_sets_open(rm_input_sets **out, rm_model *m, const char *dir, rm_error *err);
RM_API void rm_input_sets_free(rm_input_sets *s);
/* Number of sets; the folder name of set k; number of inputs each set gives and the
 * name of input j (graph order). */
RM_API size_t rm_input_sets_count(const rm_input_sets *s);
RM_API const char *rm_input_sets_label(const rm_input_sets *s, size_t k);
RM_API size_t rm_input_sets_n_inputs(const rm_input_sets *s);
RM_API const char *rm_input_sets_input_name(const rm_input_sets *s, size_t j);
/* Read set k: values[j] (n_inputs entries, caller frees each with rm_tensor_free)
 * receives input j. */
RM_API int rm_input_sets_read(rm_input_sets *s, size_t k, rm_tensor *values, rm_error *err);
/* Write sets as dir/test_data_set_<k>/input_<j>.pb (tensors named by input), creating
 * dir when missing; refuses a dir that already holds a test_data_set_* folder, and
 * writes nothing then. */
RM_API int rm_input_sets_write(const char *dir, const rm_input_set *sets, size_t n, rm_error *err);

/* ==== edits ==================================================================================
 * Edits change the model in place; on failure it may be half-edited and must not be
 * saved (edit a clone). Each appends what it changed to log (may be NULL) as notes. */

enum rm_init {
    RM_INIT_KEEP,    /* copy old weights where shapes overlap, centred; exact if unchanged */
    RM_INIT_KAIMING, /* PyTorch's Conv2d default: kaiming-uniform a=sqrt(5), bias uniform */
    RM_INIT_ZEROS,
};

typedef struct rm_replace_options {
    int init;        /* enum rm_init */
    uint64_t seed;   /* for RM_INIT_KAIMING */
    bool propagate;  /* carry an out_channels change to BatchNorms, depthwise and next convs;
                        and fewer in_channels upstream: the group producing the conv's
                        input is pruned to that many channels first (L1 criterion), with
                        every member of the group following */
} rm_replace_options;

/* Check a SPEC in PyTorch's syntax (`Conv2d(256, 512, kernel_size=3, stride=2,
 * padding=1, bias=False)`, or a Conv1d/Conv3d one) without a model: RM_EUSAGE naming the
 * argument and problem. */
RM_API int rm_spec_check(const char *spec, rm_error *err);

/* Replace the Conv1d, Conv2d or Conv3d module at path with a spec of the same kind
 * (`Conv1d(...)`, `Conv2d(...)`, `Conv3d(...)`). The node keeps its name and place; its
 * attributes and weight/bias are rewritten (shared initializers are copied first).
 * Shapes are re-inferred through the graph; a layer that no longer fits is RM_EEDIT
 * naming every module that disagrees and the two sizes. */
RM_API int rm_replace(rm_model *m, const char *path, const char *spec, const rm_replace_options *o,
                      rm_findings *log, rm_error *err);

/* Importance criteria: which channels of a group prune removes first (the lowest). */
enum rm_criterion {
    RM_CRITERION_L1 = 1,         /* L1 norm of the weights of the group's producing and
                                    depthwise convs, summed over them (0 means this too) */
    RM_CRITERION_L2 = 2,         /* L2 norm, the same way */
    RM_CRITERION_BN_SCALE = 3,   /* |gamma| / sqrt(running_var + eps) of the group's
                                    BatchNorms, summed (BatchNorms kept as nodes; a group
                                    without one falls back to L1, noted in the log) */
    RM_CRITERION_ACTIVATION = 4, /* mean |activation| of the channel over the calibration
                                    data, on the tensors the group's consumers read */
};

/* Calibration data: what prune runs the model on for the activation criterion and for
 * reconstruction. Either a folder of input sets or seeded random inputs.
 * The folder's layout is the input sets' (above). */
typedef struct rm_calib_options {
    const char *inputs;      /* folder of input sets, or NULL */
    int samples;             /* no folder: this many seeded random standard-normal inputs;
                                with a folder: use at most this many sets (0: all) */
    uint64_t seed;           /* random sample k is rm_session_random_inputs(seed + k) */
    int threads;             /* session threads, 0: the library default */
} rm_calib_options;

/* One module's own pruning ratio (beside the global one). */
typedef struct rm_prune_ratio {
    const char *path;        /* a Conv2d, ConvTranspose2d or Linear module: its output group gets ratio */
    double ratio;            /* 0 <= ratio < 1 */
} rm_prune_ratio;

typedef struct rm_prune_options {
    double ratio;            /* fraction of each group's channels removed (0.25: 64 -> 48) */
    const int64_t *channels; /* or: exactly these channels of the one named module's group */
    size_t n_channels;
    int criterion;           /* enum rm_criterion; 0 and 1: L1, 2: L2 */
    bool global;             /* rank every prunable group's channels together */
    /* The pipeline (all zero: off). A target implies global pruning. */
    double target_macs;      /* 0 < F <= 1: remove the globally least important channels
                                until at most F of the model's MACs remain (one group
                                step at most below F) */
    double target_params;    /* the same for parameters; with both, both are met */
    const char *const *ignore; /* modules (any: a conv, a block, `fc`) whose groups are left
                                  whole: every group one of their nodes reads, produces or
                                  carries */
    size_t n_ignore;
    const rm_prune_ratio *ratio_for; /* per-module ratios; those groups leave the global
                                        ranking and lose exactly their own ratio */
    size_t n_ratio_for;
    int64_t round_to;        /* > 1: every pruned group keeps a multiple of this many
                                channels (counts rounded up: fewer removed) */
    bool dry_run;            /* plan and report only: the model is left unchanged */
    bool reconstruct;        /* refit the layers that lost input channels (below) */
    double ridge;            /* reconstruct: ridge of each weight, relative to its Gram
                                diagonal, pulling it towards its pruned value (0: 1e-2) */
    int64_t max_rows;        /* reconstruct: sampled positions per layer (0: 4096) */
    rm_calib_options calib;  /* for RM_CRITERION_ACTIVATION and reconstruct */
} rm_prune_options;

/* One coupled channel group of a prune. */
typedef struct rm_prune_group {
    char name[256];          /* module path of its first producing conv */
    int producers;           /* convs whose outputs are these channels */
    int64_t before, after;   /* channels */
    bool prunable;
    char reason[200];        /* why not, when !prunable; "ignored (PATH)" when ignored */
    bool ignored;            /* prunable, but left whole: an ignored module touches it */
    bool considered;         /* named (or, with global, ranked) for removal */
} rm_prune_group;

/* One layer reconstruction refitted: its weights w and bias b minimise, over the rows
 * (sampled output positions of the calibration data), |x' w + b - y|^2 + sum over the
 * unknowns of ridge * G_jj * (w_j - w0_j)^2, where x' is its input in the pruned model
 * (earlier layers already refitted), y its output in the original, G = x'^T x' and w0 the
 * pruned weights (the original's, less the removed inputs). */
typedef struct rm_prune_refit {
    char name[256];          /* module path of the conv or Linear */
    int64_t rows;            /* positions it was fitted on */
    int64_t unknowns;        /* per output channel: kept inputs x kernel, + 1 for the bias */
    double error_before;     /* |x' w0 + b0 - y|^2 / |y|^2 on those rows */
    double error_after;      /* the same with the refitted weights */
} rm_prune_refit;

typedef struct rm_prune_report {
    size_t n_groups;
    rm_prune_group *groups;  /* malloc'd */
    int64_t params_before, params_after, macs_before, macs_after;
    bool dry_run;            /* the figures are those of the plan; nothing was changed */
    int samples;             /* calibration samples run, 0 when none */
    size_t n_refits;
    rm_prune_refit *refits;  /* malloc'd, in the order they were fitted */
} rm_prune_report;

/* Remove channels physically from the coupled groups of the named Conv2d, ConvTranspose2d
 * or Linear modules (or, with o->global or a target, of every prunable group by a global
 * ranking), with every dependent layer following (BatchNorms, depthwise and grouped convs,
 * residual Adds, squeeze-excite Muls, Concats, Splits, consuming convs and Linears). With o->reconstruct the layers
 * that lost input channels are then refitted on the calibration data, in graph order
 * (rm_prune_refit). rep (may be NULL) is filled; free it with rm_prune_report_free, also
 * after a failure. RM_EUSAGE for options that do not go together, RM_EEDIT for a target
 * no pruning reaches or a module that cannot be pruned. */
RM_API int rm_prune(rm_model *m, const char *const *paths, size_t n_paths, const rm_prune_options *o,
                    rm_prune_report *rep, rm_findings *log, rm_error *err);
RM_API void rm_prune_report_free(rm_prune_report *rep);
/* Whether the prune that made rep (with options o) removed no channel at all; then why
 * goes to why (a ratio too small for every group considered, one-channel groups, no
 * prunable group), so that a caller does not write an unchanged model unawares. */
RM_API bool rm_prune_nothing(const rm_prune_report *rep, const rm_prune_options *o, char *why, size_t n);

/* The edits made to m (by any remodel, saved with it), one line each: when, which
 * remodel, what; NULL when none. Every successful edit appends its line. */
RM_API const char *rm_model_history(const rm_model *m);

/* The criterion named s ("l1", "l2", "bn-scale", "activation"), or 0. */
RM_API int rm_criterion_parse(const char *s);
/* "l1", ... for an enum rm_criterion, "?" for others. */
RM_API const char *rm_criterion_name(int criterion);


/* Fold every BatchNormalization that follows a Conv (and is its only reader) into the
 * conv's weight and bias. *n_folded counts them. */
RM_API int rm_fold_bn(rm_model *m, int *n_folded, rm_findings *log, rm_error *err);

/* ==== inference sessions =====================================================================
 * A model compiled once into oneDNN primitives and C kernels, then run many times. The
 * model must outlive the session and must not change while it exists. */

typedef struct rm_plan rm_session;

typedef struct rm_session_options {
    int threads;         /* OpenMP threads (a process-wide setting); 0: the library default */
    int fuse;            /* 1: fold BatchNorms into convs, fuse activations and residual Adds;
                            0: every node's output can be read after its step */
    int direct_conv;     /* 1: no Winograd convolutions */
    uint64_t max_memory; /* bytes the session's buffers may take; 0: the load's limit
                            (rm_load_options; by default half the machine's RAM) */
    /* Inputs known before compiling: an int64 one (a shape fed as an input) becomes a
     * constant; a float one gives the dims of its dynamic dimensions. They become the
     * model's input shapes (rm_model_set_input_shape). Borrowed for the call. */
    int n_given;
    const char *const *given_names;
    const rm_tensor *given_values;
    /* 1: the session runs a few times only (a verification, a diff): compile without the
     * work that pays off over many runs (Winograd weight transforms), as direct_conv does */
    int few_runs;
} rm_session_options;

/* Defaults: threads 0, fuse 1, direct_conv 0, max_memory 0, nothing given, few_runs 0. */
RM_API void rm_session_options_default(rm_session_options *o);
/* Compile m. Every op is checked first: unsupported ones are RM_EUNSUPPORTED before
 * anything is allocated, each named with its node count and first node; a node that
 * cannot run as written is RM_EFORMAT naming it. What is computed from constants only
 * is computed here, once. */
RM_API int rm_session_create(rm_session **out, rm_model *m, const rm_session_options *o, rm_error *err);
RM_API void rm_session_free(rm_session *s);

/* The inputs the caller feeds (initializers listed as inputs excluded): count, name k,
 * and its type and dims (t->data NULL). */
RM_API int rm_session_n_inputs(const rm_session *s);
RM_API const char *rm_session_input_name(const rm_session *s, int k);
RM_API void rm_session_input_info(const rm_session *s, int k, rm_tensor *t);
/* Copy t into input `name` (dtype and dims must match). */
RM_API int rm_session_set_input(rm_session *s, const char *name, const rm_tensor *t, rm_error *err);
/* Fill every input not set since creation (or rm_session_reset_inputs) with seeded
 * standard-normal values (float) or zeros (int64): the same seed gives the same values
 * in any session. */
RM_API void rm_session_random_inputs(rm_session *s, uint64_t seed);
/* Forget which inputs were set, for the next sample. */
RM_API void rm_session_reset_inputs(rm_session *s);
/* Run the whole model. */
RM_API int rm_session_run(rm_session *s, rm_error *err);
/* Step-wise: rewind; run the next step (*node_done: the last node it completed);
 * returns 1 when a step ran, 0 at the end, or a negative RM_E* code. */
RM_API void rm_session_begin(rm_session *s);
RM_API int rm_session_step(rm_session *s, int *node_done, rm_error *err);
RM_API int rm_session_n_steps(const rm_session *s);
/* A copy of tensor `name` as it is now (caller frees with rm_tensor_free): inputs,
 * constants, and values of steps that have run and whose buffer no later step reused. */
RM_API int rm_session_get(rm_session *s, const char *name, rm_tensor *out, rm_error *err);
/* Outputs after a run: count, name k, and a view of output k (data owned by the session,
 * valid until the next run). */
RM_API int rm_session_n_outputs(const rm_session *s);
RM_API const char *rm_session_output_name(const rm_session *s, int k);
RM_API int rm_session_output(rm_session *s, int k, rm_tensor *out, rm_error *err);
/* The ONNX element type of output k (enum rm_dtype; 0 for no such output). Sessions carry
 * values as float32 or int64: a BOOL output is given as int64 0/1, INT32 as int64,
 * DOUBLE as float32; this says which it is. */
RM_API int32_t rm_session_output_type(const rm_session *s, int k);
/* Multiply-accumulates of one run. */
RM_API int64_t rm_session_macs(const rm_session *s);

/* ==== diff ======================================================================================
 * Two models run on the same inputs and compared, per output and, on request, per
 * module (matched by path, aligned through the channel maps edits record). */

typedef struct rm_diff_options {
    /* The verdict. An element of an output fails when |B - A| > atol + rtol * |A|
     * (numpy's allclose, A the reference); an output fails when an element fails, when
     * its cosine on any sample is below min_cosine, or, for a classifier output
     * ([N, classes]), when fewer than min_top1 of its rows agree on the top class. */
    double atol;        /* negative (the default): atol_scale * max|A| of that output,
                         * per sample, so the verdict holds at any output scale */
    double atol_scale;  /* 1e-5 */
    double rtol;        /* 1e-4 */
    double min_cosine;  /* 0.9999 */
    double min_top1;    /* 1: every row agrees */
    /* The samples: sample k is fed sets[k] while k < n_sets, then the folder's sets in
     * order, and seeded random values (seed + k) for every input its set does not give.
     * The first set's tensors give their inputs' dims to both models
     * (rm_model_set_input_shape): every set has them. */
    int samples;        /* at least 1; raised to the sets given */
    uint64_t seed;
    size_t n_sets;
    const rm_input_set *sets;   /* borrowed */
    rm_input_sets *folder;      /* borrowed, or NULL */
    const char *save_inputs;    /* write every sample's inputs here (rm_input_sets_write), or NULL */
    int threads;        /* session threads, 0: default */
    bool layers;        /* also compare every module's output (sessions run unfused) */
} rm_diff_options;

/* Statistics of one compared tensor pair over the samples: abs = |b - a|, rel = abs /
 * max(|a|, |b|); cosine over the whole tensor, its smallest and mean over samples. */
typedef struct rm_diff_stats {
    double max_abs, max_rel, mean_abs, cosine;
    double cosine_mean;
    int64_t n;          /* elements compared */
    int64_t n_fail;     /* elements outside tolerance */
    bool pass;          /* no element failed and the cosine held */
} rm_diff_stats;

typedef struct rm_diff_output {
    char *name;         /* A's output name */
    int rank;
    int64_t dims[RM_MAX_RANK];
    rm_diff_stats s;
    double scale;       /* max |A| over every sample */
    double atol;        /* the absolute tolerance applied (the largest, when scaled per sample) */
    int64_t classes;    /* [N, classes] output with classes >= 2: classes, else 0 */
    double top1;        /* fraction of rows (over samples) whose argmax agrees; NAN when classes == 0 */
    double top5;        /* mean top-5 overlap per row; NAN unless classes > 5 */
    bool aligned;       /* compared through a channel map */
    char *note;         /* why it failed without numbers, or NULL */
    int n_top;          /* classifier outputs: the top classes of sample 0's first row */
    int64_t top_a[5], top_b[5];   /* class indices, best first, in A and in B */
    double top_va[5], top_vb[5];  /* their values */
} rm_diff_output;

typedef struct rm_diff_layer {
    char *path, *type, *tensor;  /* module path and type in A, the tensor compared */
    rm_diff_stats s;
    bool comparable, aligned;
    char *note;
    int rank_a, rank_b;          /* the shapes compared (rank -1: not observed) */
    int64_t dims_a[RM_MAX_RANK], dims_b[RM_MAX_RANK];
} rm_diff_layer;

/* Per-channel error of one module's output (axis 1), over the batch and spatial axes. */
typedef struct rm_diff_channels {
    int layer;                   /* index into layers, -1 when none was measured */
    int sample;                  /* the sample it was measured on */
    int64_t n;                   /* channels */
    double *max_abs;             /* per channel: max |B - A| */
    double *scale;               /* per channel: max |A| */
} rm_diff_channels;

/* A graph input as both models were fed it (the carried type: FLOAT or INT64). */
typedef struct rm_diff_input {
    char *name;
    int32_t dtype;
    int rank;
    int64_t dims[RM_MAX_RANK];
} rm_diff_input;

typedef struct rm_diff_result {
    bool pass;                   /* every output passes */
    double atol, atol_scale, rtol, min_cosine, min_top1;   /* as given (atol < 0: scaled) */
    int samples;
    uint64_t seed;
    size_t n_outputs;
    rm_diff_output *outputs;
    size_t n_layers;
    rm_diff_layer *layers;       /* modules in topological order */
    int first_divergent;         /* index into layers, or -1 */
    rm_diff_channels channels;   /* of the first divergent module when its shapes agree */
    char *history_a, *history_b; /* the models' edit histories (rm_model_history), or NULL */
    size_t n_inputs;
    rm_diff_input *inputs;       /* A's inputs in its order, with the dims both were fed */
} rm_diff_result;

/* atol scaled (1e-5 * max|A|), rtol 1e-4, min_cosine 0.9999, min_top1 1, one random
 * sample with seed 0, outputs only. */
RM_API void rm_diff_options_default(rm_diff_options *o);
/* Run a (the reference) and b and compare them into *r (free it with
 * rm_diff_result_free, also after a failure). The verdict is r->pass. */
RM_API int rm_diff(rm_model *a, rm_model *b, const rm_diff_options *o, rm_diff_result *r, rm_error *err);
/* rm_diff in two halves, for a caller that has a before b exists: an edit's verification
 * runs the original before the edit is made, so that the original's plan never shares the
 * process with the edited copy's tensors. rm_diff_begin runs a on every sample and keeps
 * its outputs when they fit 64 MB (else, and for o->layers, it keeps a's plan and
 * rm_diff_end runs both in lockstep). a and o are borrowed until rm_diff_end or
 * rm_diff_cancel; b may share a's tensors (a clone). rm_diff_end runs b, compares into *r
 * (free it with rm_diff_result_free, also after a failure) and frees d, whatever it
 * returns; rm_diff_cancel frees a d that will not be ended (NULL: nothing). When a's plan
 * was freed, rm_diff_end empties oneDNN's primitive cache (its capacity kept), which holds
 * a's compiled kernels: before b's plan is built when b changed the shapes of most of its
 * weights, after it (which reuses them) when b kept them. */
typedef struct rm_diff_pending rm_diff_pending;
RM_API int rm_diff_begin(rm_model *a, const rm_diff_options *o, rm_diff_pending **d, rm_error *err);
RM_API int rm_diff_end(rm_diff_pending *d, rm_model *b, rm_diff_result *r, rm_error *err);
RM_API void rm_diff_cancel(rm_diff_pending *d);
RM_API void rm_diff_result_free(rm_diff_result *r);
/* r as one JSON document: {"pass", "atol", "rtol", "outputs", "layers", "first_divergent"}. */
RM_API void rm_diff_write_json(const rm_diff_result *r, FILE *f);

typedef struct rm_report_info {
    const char *model_a, *model_b;  /* file names shown */
    const char *inputs;             /* how the inputs were made */
} rm_report_info;

/* A self-contained HTML page of r (inline CSS and SVG) written to path atomically. */
RM_API int rm_diff_write_report(const rm_diff_result *r, const rm_report_info *info, const char *path,
                                rm_error *err);

/* ==== output files ===============================================================================
 * Checks a tool makes before any work: an output can be written (its folder exists
 * and is writable; it is absent, a regular file, or a link to one), two outputs do not
 * name one file, and no output is a file a loaded model is read from. */

typedef struct rm_file_id {
    uint64_t dev, ino;
} rm_file_id;

typedef struct rm_output {
    char path[4096];        /* as given */
    char dir[4096];         /* its folder ("." for a bare name) */
    char name[256];         /* the final component */
    rm_file_id dir_id;
    int exists;             /* a regular file (or a link to one) is there */
    rm_file_id id;          /* that file, when it exists */
} rm_output;

RM_API int rm_output_check(const char *path, rm_output *o, rm_error *err);
/* dir can receive output files (it is a writable folder, or can be created); *exists. */
RM_API int rm_output_check_dir(const char *dir, int *exists, rm_error *err);
/* Would writing a and b write one file? */
RM_API bool rm_output_same(const rm_output *a, const rm_output *b);
/* RM_EUSAGE when writing o would overwrite a file m reads: its weights' files always,
 * the model file itself unless allow_model (an edit may replace its input). label
 * names the output in the message ("-o"). */
RM_API int rm_output_guard(const rm_model *m, const rm_output *o, const char *label, bool allow_model, rm_error *err);
/* Where rm_model_save puts external data `name` for output out (beside it). */
RM_API int rm_external_data_path(const char *out, const char *name, char *buf, size_t n, rm_error *err);
/* Temporary files remodel left beside path that no running remodel is writing: fn is
 * called for each with its path and size. Nothing is deleted. Returns the count. */
RM_API int rm_output_stale_temps(const char *path, void (*fn)(void *ctx, const char *path, uint64_t bytes),
                                 void *ctx);
/* Remove the temporary files of saves in progress (from a signal handler:
 * async-signal-safe). */
RM_API void rm_output_cleanup(void);

/* ==== JSON ===========================================================================================
 * A small streaming writer: one document, commas and escapes handled, always valid
 * UTF-8 (ill-formed bytes in strings are written as U+FFFD). */

#define RM_JSON_MAX_DEPTH 64

typedef struct rm_json {
    FILE *f;
    int depth;
    bool first[RM_JSON_MAX_DEPTH];
    bool after_key;
} rm_json;

RM_API void rm_json_init(rm_json *j, FILE *f);
RM_API void rm_json_obj_begin(rm_json *j);
RM_API void rm_json_obj_end(rm_json *j);
RM_API void rm_json_arr_begin(rm_json *j);
RM_API void rm_json_arr_end(rm_json *j);
RM_API void rm_json_key(rm_json *j, const char *key);
RM_API void rm_json_str(rm_json *j, const char *s);  /* NULL writes null */
RM_API void rm_json_int(rm_json *j, int64_t v);
RM_API void rm_json_num(rm_json *j, double v);       /* non-finite writes null */
RM_API void rm_json_bool(rm_json *j, bool v);
RM_API void rm_json_null(rm_json *j);
RM_API void rm_json_end(rm_json *j);                 /* ends the document with a newline */

/* ==== misc ============================================================================================ */

/* Free what the library returned as `char *`. */
RM_API void rm_free(void *p);
/* Measured FP32 FMA peak of this machine in GFLOP/s with `threads` threads (about
 * 0.2 s; 0 when unknown), for benchmarks to quote figures against. */
RM_API double rm_fma_peak_gflops(int threads);

#ifdef __cplusplus
}
#endif

#endif
