/* Model diff: runs two graphs on the same inputs and measures where their outputs part
 * ways, per graph output and, on request, per module (matched by module path, streamed
 * step by step so only the pair of tensors under comparison is held), aligning channels
 * that pruning removed through the channel maps edits record in the edited model's
 * metadata. A struct rm_diff_result owns every string and array it holds (free with
 * rm_diff_result_free); the graphs are borrowed and never modified. */
#ifndef RM_DIFF_H
#define RM_DIFF_H

#include "rm_error.h"
#include "rm_graph.h"
#include "rm_tensorio.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define RM_DIFF_ATOL 1e-5
#define RM_DIFF_RTOL 1e-4

/* Metadata key prefix of a channel map: "remodel.channel_map/<tensor name>" in the edited
 * model's ModelProto.metadata_props. The value has one comma-separated entry per channel
 * (axis 1) of that tensor in the edited model: the index of the corresponding channel of
 * the same-named tensor in the original model, or "-" for a channel with no counterpart,
 * e.g. "0,1,2,5,7,-". */
#define RM_CHANNEL_MAP_KEY "remodel.channel_map/"

struct rm_diff_opts {
    double atol, rtol;  /* an element fails when abs > atol and rel > rtol */
    uint64_t seed;      /* seed for the inputs not given below (rm_plan_random_inputs of A) */
    int threads;        /* engine threads, 0 = library default */
    bool layers;        /* also compare every module's output (plans run unfused) */
    /* Given input values by name (borrowed for the call); the rest are seeded random. */
    int n_inputs;
    const char *const *input_names;
    const struct rm_host_tensor *input_values;
};

/* Statistics of one compared tensor pair. abs = |b - a|; rel = abs / max(|a|, |b|)
 * (0 when both are 0, so rel <= 2); NaN against a number counts as abs = rel = inf,
 * NaN against NaN and equal infinities as equal. cosine is over the whole tensor in
 * double (1 when both are all zero, 0 when only one is). */
struct rm_diff_stats {
    double max_abs, max_rel, mean_abs, cosine;
    int64_t n;          /* elements compared (channels without counterpart skipped) */
    int64_t n_fail;     /* elements outside tolerance */
    bool pass;          /* n_fail == 0 and the tensors could be compared */
};

struct rm_diff_output {
    char *name;         /* A's graph output name */
    int rank;
    int64_t dims[RM_MAX_RANK]; /* A's shape */
    struct rm_diff_stats s;
    int64_t classes;    /* [N, classes] output with classes >= 2: classes, else 0 */
    double top1;        /* fraction of rows whose argmax agrees; NAN when classes == 0 */
    double top5;        /* mean |top-5 of A ∩ top-5 of B| / 5 per row; NAN unless classes > 5 */
    bool aligned;       /* compared through a channel map */
    char *note;         /* why it failed without numbers (shape mismatch...), or NULL */
};

struct rm_diff_layer {
    char *path;         /* module path */
    char *type;         /* module type in A ("Conv2d", "BasicBlock", ...) */
    char *tensor;       /* A's tensor compared (output of the module's last node) */
    struct rm_diff_stats s;
    bool comparable;    /* false: shapes differ and no channel map, module missing in B... */
    bool aligned;       /* compared through a channel map */
    char *note;         /* reason when not comparable, or NULL */
};

struct rm_diff_result {
    bool pass;                     /* every output passes */
    double atol, rtol;
    size_t n_outputs;
    struct rm_diff_output *outputs;
    size_t n_layers;               /* 0 unless opts->layers */
    struct rm_diff_layer *layers;  /* modules in topological order (of their output in A) */
    int first_divergent;           /* index into layers of the first failing comparable
                                      module, or -1 */
};

/* Defaults: atol RM_DIFF_ATOL, rtol RM_DIFF_RTOL, seed 0, no layers, no given inputs. */
void rm_diff_opts_default(struct rm_diff_opts *o);

/* Run models a (the reference) and b on the same inputs and compare them into *r (caller
 * frees with rm_diff_result_free, also after a failure). Inputs must agree in names,
 * types and shapes; outputs are matched by position and must agree in number. With
 * o->layers every module of A (root excluded) with nodes is matched by path in B; its
 * output is the first output of its last node in graph order; the two plans are stepped
 * in lockstep and each pair of tensors is freed once compared. A tensor whose shape
 * differs between the models is compared through b's (or else a's) channel map when one
 * exists; without one the module is "not comparable" and a graph output fails. The
 * verdict is r->pass (not the return value). Returns 0, or RM_EUSAGE (inputs or outputs
 * differ), RM_EUNSUPPORTED/RM_EFORMAT (the engine refuses a model), RM_ENOMEM; err names
 * the model ("A: ..." or "B: ..."). This is what edit commands call to verify their
 * result: r->outputs[0].s.max_abs / max_rel / cosine and top1 summarise it. */
int rm_diff_models(struct rm_model *a, struct rm_model *b, const struct rm_diff_opts *o,
                   struct rm_diff_result *r, struct rm_error *err);

/* Free everything r owns and zero it. Accepts NULL and a zeroed result. */
void rm_diff_result_free(struct rm_diff_result *r);

/* Compare two host tensors (float32 or int64, same dtype not required) of equal shape,
 * or through a channel map (map may be NULL): when map_on_b, b's channel i (axis 1) is
 * compared with a's channel map[i]; otherwise a's channel i with b's map[i]; map entries
 * < 0 are skipped. Returns 0, or RM_EFORMAT when shapes and map do not line up (err says
 * how; s->pass is false). */
int rm_diff_tensors(const struct rm_host_tensor *a, const struct rm_host_tensor *b,
                    const int64_t *map, int64_t map_len, bool map_on_b, double atol, double rtol,
                    struct rm_diff_stats *s, struct rm_error *err);

/* Parse a channel map value ("0,1,2,5,-") into a malloc'd array (caller frees) of *len
 * entries, -1 for "-". Returns 0, RM_EFORMAT (bad entry; err quotes it) or RM_ENOMEM. */
int rm_channel_map_parse(const char *text, int64_t **map, int64_t *len, struct rm_error *err);

/* The channel map value recorded in m's metadata for tensor name, or NULL. */
const char *rm_channel_map_find(const struct rm_model *m, const char *tensor);

/* Write r as the one JSON document of `remodel diff --json` to f:
 * {"pass", "atol", "rtol", "outputs": [...], "layers": [...], "first_divergent"}. */
void rm_diff_write_json(const struct rm_diff_result *r, FILE *f);

/* Labels shown in the HTML report; any may be NULL. */
struct rm_report_info {
    const char *model_a, *model_b; /* file names */
    const char *inputs;            /* "seeded random normal (seed 0)", "input=x.pb" ... */
};

/* Write a self-contained HTML report of r (inline CSS and SVG, no script, no external
 * resource) to path atomically. Returns 0, RM_EIO or RM_ENOMEM. */
int rm_diff_write_report(const struct rm_diff_result *r, const struct rm_report_info *info,
                         const char *path, struct rm_error *err);

#endif
