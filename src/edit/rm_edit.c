#include "rm_edit.h"
#include "rm_edit_int.h"

#include "rm_graph.h"
#include "rm_ops_int.h"
#include "rm_shape.h"
#include "rm_tree.h"

#include "rm_prng.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>



void rm_edit_note(struct edit *e, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    rm_findings_add(e->log, RM_FINDING_NOTE, -1, "%s", line);
}

void rm_edit_problem(struct edit *e, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    rm_findings_add(&e->problems, RM_FINDING_PROBLEM, -1, "%s", line);
}

/* Module path of node i for messages: "layer1.0.conv2", or the node's name. */
const char *rm_edit_where(const struct edit *e, int node)
{
    int mi = e->t->node_module[node];
    if (mi >= 0 && e->t->modules[mi]->path[0])
        return e->t->modules[mi]->path;
    return rm_graph_node_label(e->g, (size_t)node);
}

const char *rm_edit_op(const struct edit *e, int node)
{
    const char *op = e->g->nodes[node].proto->op_type;
    return op ? op : "?";
}

/* ---- random numbers for kaiming init (splitmix64) ---------------------------- */

/* PyTorch's Conv2d default: kaiming_uniform_(a=sqrt(5)) gives bound 1/sqrt(fan_in),
 * and the bias is uniform in the same bound. */
static float kaiming(struct edit *e, int64_t fan_in)
{
    double bound = fan_in > 0 ? 1.0 / sqrt((double)fan_in) : 0.0;
    return (float)((2.0 * rm_uniform01(&e->rng) - 1.0) * bound);
}

/* ---- tensors and initializers ----------------------------------------------- */

int rm_edit_read_f32(struct edit *e, const Onnx__TensorProto *t, float **out, int64_t *n)
{
    *out = NULL;
    if (rm_tensor_numel(t, n, e->err) || rm_tensor_check(t, e->err))
        return RM_EFORMAT; /* data that does not fill its dims: found before allocating for them */
    if ((uint64_t)*n > ((uint64_t)1 << 34))
        return rm_error_set(e->err, RM_ENOMEM, "tensor '%s' is too large to edit", t->name ? t->name : "?");
    *out = malloc((size_t)(*n ? *n : 1) * sizeof **out);
    if (!*out)
        return rm_error_set(e->err, RM_ENOMEM, "out of memory");
    int rc = rm_tensor_to_f32(t, *out, *n, e->err);
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* Uses of value v as a node input or graph output, counted through Identity nodes,
 * stopping at 2. Each value is walked once (Identity chains that fan out made the count
 * exponential: fuzzing, a 66 s timeout) and at most 64 Identities deep (past that, a use). */
static int uses_walk(struct edit *e, int v, int depth, int n)
{
    const struct rm_value *val = &e->g->values[v];
    if (e->use_mark[v] == e->use_walk)
        return n;
    e->use_mark[v] = e->use_walk;
    if (val->output >= 0)
        n++;
    for (int k = 0; k < val->n_consumers && n < 2; k++) {
        const struct rm_node *c = &e->g->nodes[val->consumers[k]];
        if (c->op == RM_OP_IDENTITY && depth < 64 && c->proto->n_output >= 1 && c->outputs[0] >= 0)
            n = uses_walk(e, c->outputs[0], depth + 1, n);
        else
            n++;
    }
    return n;
}

int rm_edit_uses(struct edit *e, int v)
{
    /* each walk marks with a number of its own, so the marks need no clearing (an edit
     * asks once per parameter it writes: clearing per call was quadratic on long graphs) */
    if (++e->use_walk == 0) {
        memset(e->use_mark, 0, (e->g->n_values + 1) * sizeof *e->use_mark);
        e->use_walk = 1;
    }
    return uses_walk(e, v, 0, 0);
}

/* The name input `slot` of node reads now, when this edit has given the node a copy of
 * its own there (the index still names what it read before the edit), else NULL. */
static const char *own_copy(const struct edit *e, int node, size_t slot)
{
    const struct rm_node *nd = &e->g->nodes[node];
    const Onnx__NodeProto *n = nd->proto; /* the model's: edits rename inputs in place */
    if (slot >= n->n_input || !n->input[slot] || !n->input[slot][0])
        return NULL;
    int v = slot < nd->n_inputs ? nd->inputs[slot] : -1; /* -1: an input the edit added */
    return v < 0 || strcmp(n->input[slot], e->g->values[v].name) ? n->input[slot] : NULL;
}

/* The initializer rm_edit_write_param rewrites where it is for input `slot` of node: the
 * copy an earlier step made for the node (a conv whose in- and out-channels two pruned
 * groups change), or the initializer the node alone reads; NULL when it would make a copy. */
static const char *written_in_place(struct edit *e, int node, size_t slot)
{
    const char *mine = own_copy(e, node, slot);
    if (mine)
        return mine;
    int v = slot < e->g->nodes[node].n_inputs ? e->g->nodes[node].inputs[slot] : -1;
    int src = v >= 0 ? rm_graph_initializer_of(e->g, v) : -1;
    return src >= 0 && rm_edit_uses(e, src) == 1 ? e->g->values[src].name : NULL;
}

/* Give input `slot` of node the float tensor (dims, data). An initializer used only
 * by this node is rewritten in place (its name kept); one shared with other nodes
 * is left alone and the node gets a copy named after `fallback`. */
int rm_edit_write_param(struct edit *e, int node, size_t slot, const int64_t *dims, int rank,
                       const float *data, const char *fallback)
{
    const char *target = written_in_place(e, node, slot);
    if (target)
        return rm_model_set_initializer(e->m, target, rank, dims, data, e->err);
    int v = slot < e->g->nodes[node].n_inputs ? e->g->nodes[node].inputs[slot] : -1;
    int src = v >= 0 ? rm_graph_initializer_of(e->g, v) : -1;
    const char *name;
    int rc = rm_model_add_initializer(e->m, fallback, rank, dims, data, &name, e->err);
    if (!rc)
        rc = rm_model_set_node_input(e->m, node, slot, name, e->err);
    if (!rc && src >= 0)
        rm_edit_note(e, "%s: %s is shared with other nodes; copied to '%s'", rm_edit_where(e, node),
              e->g->values[src].name, name);
    return rc;
}

/* The tensor input `slot` of node reads (the edit's own copy when an earlier step
 * wrote one), or NULL when absent. */
int rm_edit_param_tensor(struct edit *e, int node, size_t slot, const Onnx__TensorProto **tp)
{
    *tp = NULL;
    const struct rm_node *nd = &e->g->nodes[node];
    const char *mine = own_copy(e, node, slot);
    if (!mine && (slot >= nd->n_inputs || slot >= nd->proto->n_input || nd->inputs[slot] < 0))
        return 0;
    if (mine) { /* what an earlier step of this edit wrote, not what the index saw */
        if (!(*tp = rm_model_initializer(e->m, mine)))
            return rm_error_set(e->err, RM_EEDIT, "%s: no initializer '%s'", rm_edit_where(e, node), mine);
        return 0;
    }
    int src = rm_graph_initializer_of(e->g, nd->inputs[slot]);
    if (src < 0)
        return rm_error_set(e->err, RM_EUNSUPPORTED,
                            "%s: input %zu of its %s node is computed, not an initializer; cannot edit it",
                            rm_edit_where(e, node), slot, rm_edit_op(e, node));
    *tp = e->m->proto->graph->initializer[e->g->values[src].init];
    return 0;
}

/* Float contents of input `slot` of node (malloc'd), or NULL with *n 0 when absent. */
int rm_edit_param(struct edit *e, int node, size_t slot, float **data, int64_t *n,
                      const Onnx__TensorProto **tp)
{
    *data = NULL;
    *n = 0;
    int rc = rm_edit_param_tensor(e, node, slot, tp);
    if (rc || !*tp)
        return rc;
    return rm_edit_read_f32(e, *tp, data, n);
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_LE 1
#else
#define HOST_LE 0
#endif

/* The n float32 values of t as bytes to copy runs from (no alignment assumed): its
 * raw_data itself when it holds them as the host does (the file's mapping, read
 * only), else a converted copy in *copy (malloc'd, to free). */
int rm_edit_f32_bytes(struct edit *e, const Onnx__TensorProto *t, const uint8_t **bytes, int64_t *n,
                      float **copy)
{
    *copy = NULL;
    if (rm_tensor_numel(t, n, e->err) || rm_tensor_check(t, e->err))
        return RM_EFORMAT;
    if (HOST_LE && t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && t->has_raw_data &&
        (uint64_t)t->raw_data.len == (uint64_t)*n * 4 && *n > 0) {
        *bytes = t->raw_data.data;
        return 0;
    }
    int rc = rm_edit_read_f32(e, t, copy, n);
    *bytes = (const uint8_t *)*copy;
    return rc;
}

/* ---- weights ---------------------------------------------------------------- */

/* A conv weight of rank r (3 to 5: [out, in/groups, k...]) resized from od to nd: kaiming,
 * zeros, or (keep) the old weights, each kernel centred (cropped or zero-padded on each
 * spatial axis; the odd tap of a crop goes at the end). */
static void conv_weight(struct edit *e, const float *old, const int64_t *od, float *w, const int64_t *nd, int r,
                        int64_t fan_in)
{
    int64_t n = 1, kn = 1, ko = 1, off[3] = {0, 0, 0};
    for (int d = 0; d < r; d++)
        n *= nd[d];
    if (e->init == RM_INIT_KAIMING) {
        for (int64_t i = 0; i < n; i++)
            w[i] = kaiming(e, fan_in);
        return;
    }
    memset(w, 0, (size_t)n * sizeof *w);
    if (e->init == RM_INIT_ZEROS || !old)
        return;
    for (int d = 2; d < r; d++) {
        kn *= nd[d];
        ko *= od[d];
        off[d - 2] = (od[d] - nd[d]) >= 0 ? (od[d] - nd[d]) / 2 : -((nd[d] - od[d] + 1) / 2);
    }
    int64_t mo = od[0] < nd[0] ? od[0] : nd[0], mi = od[1] < nd[1] ? od[1] : nd[1];
    for (int64_t o = 0; o < mo; o++)
        for (int64_t i = 0; i < mi; i++)
            for (int64_t k = 0; k < kn; k++) {
                /* k: the tap's flat index in the new kernel; src: in the old one */
                int64_t rest = k, src = 0, stride = 1;
                bool inside = true;
                for (int d = r - 1; d >= 2; d--) {
                    int64_t s = rest % nd[d] + off[d - 2];
                    rest /= nd[d];
                    inside &= s >= 0 && s < od[d];
                    src += s * stride;
                    stride *= od[d];
                }
                if (inside) /* w[o][i][k...] = old[o][i][src...] */
                    w[(o * nd[1] + i) * kn + k] = old[(o * od[1] + i) * ko + src];
            }
}

/* Resize a per-channel vector from n_old to n_new: first min kept, new ones = fill. */
static void resize_vec(const float *old, int64_t n_old, float *out, int64_t n_new, float fill)
{
    for (int64_t i = 0; i < n_new; i++)
        out[i] = i < n_old && old ? old[i] : fill;
}

/* Rows of a [old_c, row] array picked by e->map into [new_c, row]: row i is old row
 * map[i], or for a new channel zero (keep, zeros) or kaiming with fan_in (kaiming). */
void rm_edit_rows(struct edit *e, const float *old, int64_t n_old, int64_t row, float *out,
                         int64_t fan_in)
{
    for (int64_t i = 0; i < e->new_c; i++) {
        int64_t src = e->map[i];
        for (int64_t k = 0; k < row; k++)
            out[i * row + k] = src >= 0 && src < n_old && old ? old[src * row + k]
                               : e->init == RM_INIT_KAIMING && fan_in > 0 ? kaiming(e, fan_in) : 0.0f;
    }
}

/* A buffer of the model for a x b x c floats (rm_model_tensor_buffer), or NULL when the
 * count is negative, overflows or does not fit in memory. */
static float *float_buffer(struct edit *e, int64_t a, int64_t b, int64_t c)
{
    int64_t n;
    if (a < 0 || b < 0 || c < 0 || __builtin_mul_overflow(a, b, &n) || __builtin_mul_overflow(n, c, &n) ||
        (uint64_t)n > SIZE_MAX / sizeof(float))
        return NULL;
    return rm_model_tensor_buffer(e->m, (size_t)n * sizeof(float));
}

/* The bytes of tp (float32 as the host keeps them) when a slice may compact them where
 * they are: rm_edit_write_param will rewrite tp itself (this node's own copy, or an
 * initializer no other node reads), the model owns the bytes (an earlier step of the
 * edit wrote them) and e->map only drops channels, keeping their order: every run then
 * moves to where it is or lower. VGG16's first Linear is sliced twice, by the channels
 * before it and by its own outputs; in place, the second needs no 270 MB buffer. */
static float *slice_in_place(struct edit *e, int node, size_t slot, const Onnx__TensorProto *tp, int64_t n_old)
{
    if (e->new_c > n_old || !tp->has_raw_data || tp->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || !HOST_LE)
        return NULL;
    for (int64_t j = 0; j < e->new_c; j++)
        if (e->map[j] < 0 || e->map[j] >= n_old || (j > 0 && e->map[j] <= e->map[j - 1]))
            return NULL;
    const char *name = written_in_place(e, node, slot);
    if (!name || rm_model_initializer(e->m, name) != tp)
        return NULL;
    return rm_model_tensor_reuse(e->m, tp->raw_data.data, tp->raw_data.len);
}

int rm_edit_slice(struct edit *e, int node, size_t slot, const Onnx__TensorProto *tp, int64_t outer,
                  int64_t n_old, int64_t inner, int64_t fan_in, const int64_t *dims, int rank, const char *fallback)
{
    const uint8_t *old;
    float *copy;
    int64_t n, nw;
    int rc = rm_edit_f32_bytes(e, tp, &old, &n, &copy);
    if (rc)
        return rc;
    if (outer < 0 || n_old < 0 || inner < 0 || __builtin_mul_overflow(outer, n_old, &nw) ||
        __builtin_mul_overflow(nw, inner, &nw) || nw > n) {
        free(copy);
        return rm_error_set(e->err, RM_EEDIT, "%s: input %zu is smaller than its channels say", rm_edit_where(e, node),
                            slot);
    }
    float *w = copy ? NULL : slice_in_place(e, node, slot, tp, n_old);
    if (!w)
        w = float_buffer(e, outer, e->new_c, inner);
    if (!w) {
        free(copy);
        return rm_error_set(e->err, RM_ENOMEM, "out of memory");
    }
    size_t run = (size_t)inner * sizeof *w;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < e->new_c; j++) {
            int64_t src = e->map[j];
            float *dst = w + (o * e->new_c + j) * inner;
            if (src >= 0 && src < n_old)
                memmove(dst, old + (size_t)((o * n_old + src) * inner) * sizeof *w, run); /* may be in place */
            else if (e->init == RM_INIT_KAIMING && fan_in > 0)
                for (int64_t k = 0; k < inner; k++)
                    dst[k] = kaiming(e, fan_in);
            else
                memset(dst, 0, run);
        }
    free(copy);
    return rm_edit_write_param(e, node, slot, dims, rank, w, fallback);
}

/* ---- channel propagation ---------------------------------------------------- */

void rm_edit_mark(struct edit *e, int v)
{
    for (size_t i = 0; i < e->n_changed; i++)
        if (e->changed[i] == v)
            return;
    if (e->n_changed < e->g->n_values)
        e->changed[e->n_changed++] = v;
}

/* BatchNormalization following the change: per-channel parameters resized, new
 * channels an identity (scale 1, shift 0, mean 0, var 1). */
int rm_edit_resize_bn(struct edit *e, int node)
{
    static const float fill[5] = {0, 1, 0, 0, 1};
    static const char *const role[5] = {"", "weight", "bias", "running_mean", "running_var"};
    int64_t c2 = e->new_c;
    for (size_t s = 1; s < 5 && s < e->g->nodes[node].proto->n_input; s++) {
        float *old, *nw = malloc((size_t)c2 * sizeof *nw);
        int64_t n;
        const Onnx__TensorProto *tp;
        int rc = nw ? rm_edit_param(e, node, s, &old, &n, &tp) : rm_error_set(e->err, RM_ENOMEM, "out of memory");
        if (rc) {
            free(nw);
            return rc;
        }
        for (int64_t i = 0; i < c2; i++)
            nw[i] = e->map[i] >= 0 && e->map[i] < n ? old[e->map[i]] : fill[s];
        char name[512];
        snprintf(name, sizeof name, "%s.%s", rm_edit_where(e, node), role[s]);
        rc = rm_edit_write_param(e, node, s, &c2, 1, nw, name);
        free(old);
        free(nw);
        if (rc)
            return rc;
    }
    int x = e->g->nodes[node].inputs[0], rank = x >= 0 ? e->g->values[x].rank : -1;
    rm_edit_note(e, "%s: BatchNorm%dd %lld -> %lld channels", rm_edit_where(e, node), rank >= 3 && rank <= 5 ? rank - 2 : 2,
          (long long)e->old_c, (long long)c2);
    return 0;
}

/* A grouped Conv's weight [C_out, C_in / group, ks] following e->map: the rows of group b
 * read its in-channels, b * old_c / group on; every new channel j must come from its own
 * group (j / (new_c / group)). 1 when one does not, else 0 or an RM_E* code. */
static int resize_grouped(struct edit *e, int node, const Onnx__TensorProto *tp, int64_t group, int64_t ks,
                          const int64_t *od, int64_t *nd, int rank, const char *name)
{
    int64_t bo = e->old_c / group, bn = e->new_c / group, rows = od[0] / group, nw;
    for (int64_t j = 0; j < e->new_c; j++)
        if (e->map[j] >= 0 && (e->map[j] >= e->old_c || e->map[j] / bo != j / bn))
            return 1;
    const uint8_t *old;
    float *copy;
    int64_t n;
    int rc = rm_edit_f32_bytes(e, tp, &old, &n, &copy);
    if (rc)
        return rc;
    if (__builtin_mul_overflow(od[0], bo, &nw) || __builtin_mul_overflow(nw, ks, &nw) || nw > n) {
        free(copy);
        return rm_error_set(e->err, RM_EEDIT, "%s: its weight is smaller than its dims say", rm_edit_where(e, node));
    }
    float *w = float_buffer(e, od[0], bn, ks);
    if (!w) {
        free(copy);
        return rm_error_set(e->err, RM_ENOMEM, "out of memory");
    }
    size_t run = (size_t)ks * sizeof *w;
    for (int64_t o = 0; o < od[0]; o++) {
        int64_t b = o / rows;
        for (int64_t q = 0; q < bn; q++) {
            int64_t src = e->map[b * bn + q];
            float *dst = w + (o * bn + q) * ks;
            if (src >= 0)
                memcpy(dst, old + (size_t)((o * bo + src - b * bo) * ks) * sizeof *w, run);
            else
                memset(dst, 0, run); /* a new channel (replace widening): zero */
        }
    }
    free(copy);
    nd[1] = bn;
    return rm_edit_write_param(e, node, 1, nd, rank, w, name);
}

int rm_edit_slice_grouped(struct edit *e, int node, int64_t group)
{
    const Onnx__TensorProto *tp;
    int rc = rm_edit_param_tensor(e, node, 1, &tp);
    if (rc)
        return rc;
    int64_t od[RM_MAX_RANK], nd[RM_MAX_RANK], ks, numel;
    if (!tp || tp->n_dims < 3 || tp->n_dims > RM_MAX_RANK || rm_dims_numel(tp->dims, tp->n_dims, &numel) ||
        rm_dims_numel(tp->dims + 2, tp->n_dims - 2, &ks))
        return rm_error_set(e->err, RM_EFORMAT, "%s: its weight's dims cannot be read", rm_edit_where(e, node));
    for (int d = 0; d < (int)tp->n_dims; d++)
        od[d] = nd[d] = tp->dims[d];
    if (group < 2 || e->old_c % group || e->new_c % group || od[1] != e->old_c / group || od[0] % group)
        return rm_error_set(e->err, RM_EEDIT, "%s: its weight does not fit %lld groups of %lld channels",
                            rm_edit_where(e, node), (long long)group, (long long)(e->old_c / (group > 0 ? group : 1)));
    char name[512];
    snprintf(name, sizeof name, "%s.weight", rm_edit_where(e, node));
    rc = resize_grouped(e, node, tp, group, ks, od, nd, (int)tp->n_dims, name);
    if (rc == 1)
        return rm_error_set(e->err, RM_EEDIT, "%s: the channels kept are not as many in each of its %lld groups",
                            rm_edit_where(e, node), (long long)group);
    return rc;
}

/* A conv reading the changed tensor: its in-channel axis follows (group 1), or, for a
 * depthwise conv, its channels and groups follow and the change goes on; a grouped conv's
 * in-channels follow group by group. */
int rm_edit_resize_consumer(struct edit *e, int node)
{
    Onnx__NodeProto *np = e->g->nodes[node].proto;
    int64_t group = rm_node_attr_int(np, "group", 1);
    const Onnx__TensorProto *tp;
    int rc = rm_edit_param_tensor(e, node, 1, &tp);
    if (rc)
        return rc;
    /* weight [out, in/group, k...]: any kernel rank (Conv1d/2d/3d), the kernel axes
     * flattened into one run of ks floats and the rank kept */
    if (!tp || tp->n_dims < 3 || tp->n_dims > RM_MAX_RANK) {
        return rm_error_set(e->err, RM_EUNSUPPORTED, "%s: weight has %d dims; a Conv weight has 3 to %d",
                            rm_edit_where(e, node), tp ? (int)tp->n_dims : 0, RM_MAX_RANK);
    }
    int nd_rank = (int)tp->n_dims;
    int64_t od[RM_MAX_RANK], nd[RM_MAX_RANK];
    int64_t numel, ks, fan_in; /* the dims come from the file: checked before any product */
    if (rm_dims_numel(tp->dims, tp->n_dims, &numel) || rm_dims_numel(tp->dims + 2, tp->n_dims - 2, &ks) ||
        __builtin_mul_overflow(e->new_c, ks, &fan_in))
        return rm_error_set(e->err, RM_EFORMAT, "%s: its weight's dims are negative or too large",
                            rm_edit_where(e, node));
    for (int d = 0; d < nd_rank; d++)
        od[d] = nd[d] = tp->dims[d];
    char kind[24]; /* "Conv%dd" of any int */
    snprintf(kind, sizeof kind, "Conv%dd", nd_rank - 2);
    char name[512];
    snprintf(name, sizeof name, "%s.weight", rm_edit_where(e, node));
    if (group == 1) {
        nd[1] = e->new_c;
        /* in-channels follow the map; new ones are zero (keep, zeros) or drawn (kaiming) */
        rc = rm_edit_slice(e, node, 1, tp, nd[0], od[1], ks, fan_in, nd, nd_rank, name);
        if (!rc)
            rm_edit_note(e, "%s: %s in_channels %lld -> %lld", rm_edit_where(e, node), kind, (long long)e->old_c,
                  (long long)e->new_c);
    } else if (group == od[0] && od[1] == 1 && group == e->old_c) {
        nd[0] = e->new_c;
        rc = rm_edit_slice(e, node, 1, tp, 1, od[0], ks, ks, nd, nd_rank, name);
        if (!rc && np->n_input > 2 && np->input[2][0]) {
            float *ob, *nb = malloc((size_t)e->new_c * sizeof *nb);
            int64_t nbn;
            const Onnx__TensorProto *bt;
            rc = nb ? rm_edit_param(e, node, 2, &ob, &nbn, &bt) : rm_error_set(e->err, RM_ENOMEM, "out of memory");
            if (!rc) {
                rm_edit_rows(e, ob, nbn, 1, nb, 0);
                snprintf(name, sizeof name, "%s.bias", rm_edit_where(e, node));
                rc = rm_edit_write_param(e, node, 2, &e->new_c, 1, nb, name);
                free(ob);
            }
            free(nb);
        }
        if (!rc)
            rc = rm_model_set_attr_int(e->m, node, "group", e->new_c, e->err);
        if (!rc) {
            rm_edit_note(e, "%s: depthwise %s %lld -> %lld channels (groups follow)", rm_edit_where(e, node), kind,
                  (long long)e->old_c, (long long)e->new_c);
            if (e->follow && np->n_output >= 1 && e->g->nodes[node].outputs[0] >= 0)
                rc = rm_edit_propagate(e, e->g->nodes[node].outputs[0], 1);
        }
    } else if (group > 1 && e->old_c % group == 0 && e->new_c % group == 0 && od[1] == e->old_c / group &&
               od[0] % group == 0) {
        rc = resize_grouped(e, node, tp, group, ks, od, nd, nd_rank, name);
        if (rc == 1) {
            rc = 0;
            rm_edit_problem(e, "%s: grouped %s (groups=%lld) reads the changed channels, and they do not keep as many "
                            "in each of its groups", rm_edit_where(e, node), kind, (long long)group);
        } else if (!rc) {
            rm_edit_note(e, "%s: grouped %s (groups=%lld) in_channels %lld -> %lld", rm_edit_where(e, node), kind,
                         (long long)group, (long long)e->old_c, (long long)e->new_c);
        }
    } else {
        rm_edit_problem(e, "%s: grouped %s (groups=%lld) reads the changed channels; cannot carry %lld -> %lld "
                   "channels into it", rm_edit_where(e, node), kind, (long long)group, (long long)e->old_c,
                (long long)e->new_c);
    }
    return rc;
}

/* Gemm reading flattened channels: features c * spatial + s follow the channels. The
 * new weight is built in a buffer of the model in one pass of contiguous runs, read from
 * the old bytes where they are (a VGG16 classifier weight is 400 MB: no copies of it). */
int rm_edit_resize_gemm(struct edit *e, int node, int64_t spatial)
{
    Onnx__NodeProto *np = e->g->nodes[node].proto;
    int tb = (int)rm_node_attr_int(np, "transB", 0);
    float *copy = NULL;
    const uint8_t *old = NULL;
    int64_t n;
    const Onnx__TensorProto *tp;
    int wnode;
    size_t wslot;
    bool transposed;
    rm_edit_linear_weight(e->g, node, &wnode, &wslot, &transposed); /* else (node, 1): reported below */
    if (transposed)
        tb = 1; /* MatMul(x, Transpose(W)): W is [out, in] */
    int rc = rm_edit_param_tensor(e, wnode, wslot, &tp);
    if (rc)
        return rc;
    if (!tp || tp->n_dims != 2)
        return rm_error_set(e->err, RM_EUNSUPPORTED, "%s: Gemm weight is not 2-D", rm_edit_where(e, node));
    int64_t outs = tb ? tp->dims[0] : tp->dims[1];
    int64_t f_old, f_new; /* features = channels x spatial, checked: spatial comes from the file */
    if (__builtin_mul_overflow(e->old_c, spatial, &f_old) || __builtin_mul_overflow(e->new_c, spatial, &f_new))
        f_old = f_new = -1; /* no weight has that many features: reported below */
    if ((tb ? tp->dims[1] : tp->dims[0]) != f_old || f_old < 0) {
        rm_edit_problem(e, "%s: Linear has %lld in_features, expected %lld channels x %lld", rm_edit_where(e, node),
                (long long)(tb ? tp->dims[1] : tp->dims[0]), (long long)e->old_c, (long long)spatial);
        return 0;
    }
    if ((rc = rm_edit_f32_bytes(e, tp, &old, &n, &copy)))
        return rc;
    /* in place when slice_in_place allows it: every channel's runs only move down */
    float *w = copy ? NULL : slice_in_place(e, wnode, wslot, tp, e->old_c);
    if (!w)
        w = float_buffer(e, outs, f_new, 1);
    if (!w) {
        free(copy);
        return rm_error_set(e->err, RM_ENOMEM, "out of memory");
    }
    /* a run is the `run` floats one channel contributes: spatial per output row in
     * [out, features], spatial whole rows in [features, out]; a new channel's are zero */
    size_t run = (size_t)spatial * (tb ? 1 : (size_t)outs) * sizeof *w;
    for (int64_t o = 0; o < (tb ? outs : 1); o++)
        for (int64_t c = 0; c < e->new_c; c++) {
            int64_t src = e->map[c];
            uint8_t *dst = (uint8_t *)(tb ? w + o * f_new + c * spatial : w + c * spatial * outs);
            if (src < 0 || src >= e->old_c)
                memset(dst, 0, run);
            else if (tb) /* memmove: the source may be w itself */
                memmove(dst, old + (size_t)(o * f_old + src * spatial) * sizeof *w, run); /* [out, features] */
            else
                memmove(dst, old + (size_t)(src * spatial * outs) * sizeof *w, run);    /* [features, out] */
        }
    int64_t nd[2] = {tb ? outs : f_new, tb ? f_new : outs};
    char name[512];
    snprintf(name, sizeof name, "%s.weight", rm_edit_where(e, node));
    rc = rm_edit_write_param(e, wnode, wslot, nd, 2, w, name);
    if (!rc)
        rm_edit_note(e, "%s: Linear in_features %lld -> %lld", rm_edit_where(e, node), (long long)f_old, (long long)f_new);
    free(copy);
    return rc;
}

bool rm_edit_linear_weight(const struct rm_graph *g, int node, int *wnode, size_t *wslot, bool *transposed)
{
    const struct rm_node *n = &g->nodes[node];
    *wnode = node;
    *wslot = 1;
    *transposed = false;
    int b = n->n_inputs > 1 ? n->inputs[1] : -1;
    if (b < 0)
        return false;
    if (rm_graph_initializer_of(g, b) >= 0)
        return true;
    const struct rm_value *bv = &g->values[b];
    if (n->op != RM_OP_MATMUL || bv->producer < 0 || bv->n_consumers != 1 || bv->output >= 0)
        return false;
    const struct rm_node *t = &g->nodes[bv->producer];
    if (t->op != RM_OP_TRANSPOSE || t->n_inputs != 1 || t->inputs[0] < 0)
        return false;
    int w = rm_graph_initializer_of(g, t->inputs[0]);
    if (w < 0 || g->values[w].rank != 2 || g->values[w].n_consumers != 1)
        return false;
    size_t np;
    const int64_t *perm = rm_node_attr_ints(t->proto, "perm", &np);
    if (perm && !(np == 2 && perm[0] == 1 && perm[1] == 0))
        return false;
    *wnode = bv->producer;
    *wslot = 0;
    *transposed = true;
    return true;
}

bool rm_edit_is_linear(const struct rm_graph *g, int node)
{
    const struct rm_node *n = &g->nodes[node];
    if (n->op == RM_OP_GEMM)
        return true;
    if (n->op != RM_OP_MATMUL || n->n_inputs != 2 || n->inputs[0] < 0 || n->inputs[1] < 0)
        return false;
    const Onnx__TensorProto *w = rm_graph_const_tensor(g, n->inputs[1]);
    return w && w->n_dims == 2 && w->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT &&
           g->values[n->inputs[0]].rank == 2;
}

bool rm_edit_flattens(const struct rm_graph *g, int node)
{
    const struct rm_node *n = &g->nodes[node];
    if (n->op == RM_OP_FLATTEN)
        return true;
    if (n->op != RM_OP_RESHAPE || n->n_inputs != 2 || n->inputs[0] < 0 || n->inputs[1] < 0 || n->n_outputs < 1 ||
        n->outputs[0] < 0 || !g->known || rm_node_attr_int(n->proto, "allowzero", 0))
        return false;
    const struct rm_value *x = &g->values[n->inputs[0]];
    const struct rm_host_tensor *sh = g->known[n->inputs[1]];
    if (!sh || sh->dtype != RM_I64 || sh->rank != 1 || sh->dims[0] != 2 || x->rank < 2)
        return false;
    int64_t d0 = rm_const_int(sh, 0), d1 = rm_const_int(sh, 1);
    return d1 == -1 && (d0 == 0 || (d0 > 0 && d0 == x->dims[0]));
}

static bool pad_keeps_channels(const struct rm_graph *g, int node)
{
    const struct rm_node *n = &g->nodes[node];
    int x = n->n_inputs ? n->inputs[0] : -1;
    if (x < 0 || !g->shaped || !g->known)
        return false;
    int rank = g->values[x].rank;
    if (rank < 2 || rank > RM_MAX_RANK)
        return false;
    bool pads_given = n->n_inputs > 1 && n->inputs[1] >= 0;
    const struct rm_host_tensor *pads = pads_given ? g->known[n->inputs[1]] : NULL;
    const struct rm_host_tensor *axes = n->n_inputs > 3 && n->inputs[3] >= 0 ? g->known[n->inputs[3]] : NULL;
    if ((pads_given && !pads) || (n->n_inputs > 3 && n->inputs[3] >= 0 && !axes))
        return false; /* computed pads: nothing says the channel axis is left alone */
    int64_t p[2 * RM_MAX_RANK];
    char why[80];
    if (rm_pads_of(n->proto, rank, pads, axes, pads_given, p, why, sizeof why))
        return false;
    return p[0] == 0 && p[1] == 0 && p[rank] == 0 && p[rank + 1] == 0;
}

/* A reduction over spatial axes only (none of its axes, an attribute or a known input,
 * is 0 or 1). */
static bool spatial_reduce(const struct rm_graph *g, const struct rm_node *n)
{
    int x = n->n_inputs ? n->inputs[0] : -1;
    if (x < 0 || n->n_inputs > 2)
        return false;
    int rank = g->values[x].rank;
    if (n->n_inputs == 2 && n->inputs[1] >= 0) {
        /* the axes input (ReduceSum from opset 13, the others from 18: the dynamo
         * exporter's global average pool): a constant, or what shape inference computed */
        const struct rm_host_tensor *ax = g->known ? g->known[n->inputs[1]] : NULL;
        int red[RM_MAX_RANK];
        const char *why;
        if (!ax || rank < 2 || rank > RM_MAX_RANK || rm_reduced_axes(n->proto, ax, rank, red, &why))
            return false;
        return !red[0] && !red[1];
    }
    size_t na;
    const int64_t *axes = rm_node_attr_ints(n->proto, "axes", &na);
    if (!axes)
        return false;
    for (size_t i = 0; i < na; i++) {
        int64_t ax = axes[i] < 0 && rank > 0 ? axes[i] + rank : axes[i]; /* -1: the last axis */
        if (ax == 0 || ax == 1 || ax < 0)
            return false;
    }
    return true;
}

bool rm_edit_passes_channels(const struct rm_graph *g, int node)
{
    const struct rm_node *n = &g->nodes[node];
    if (rm_op_passes_channels(n->op))
        return true;
    switch (rm_op_def(n->op)->chan) {
    case RM_CHAN_PAD:
        return pad_keeps_channels(g, node);
    case RM_CHAN_REDUCE:
        return spatial_reduce(g, n);
    default:
        return false;
    }
}

/* Carry the channel change of value v to everything that reads it. */
int rm_edit_propagate(struct edit *e, int v, int depth)
{
    if (depth > 256)
        return rm_error_set(e->err, RM_EEDIT, "channel propagation too deep");
    rm_edit_mark(e, v);
    const struct rm_value *val = &e->g->values[v];
    for (int k = 0; k < val->n_consumers; k++) {
        int node = val->consumers[k];
        if (e->visited[node])
            continue;
        e->visited[node] = 1;
        const struct rm_node *nd = &e->g->nodes[node];
        const char *op = rm_edit_op(e, node);
        enum rm_op kind = nd->op;
        int rc = 0;
        if (nd->inputs[0] != v) {
            rm_edit_problem(e, "%s: %s reads the changed tensor '%s' as a parameter; cannot propagate", rm_edit_where(e, node),
                    op, val->name);
        } else if (kind == RM_OP_BATCH_NORM) {
            rc = rm_edit_resize_bn(e, node);
            if (!rc && nd->proto->n_output >= 1 && nd->outputs[0] >= 0)
                rc = rm_edit_propagate(e, nd->outputs[0], depth + 1);
        } else if (rm_edit_passes_channels(e->g, node)) {
            /* BatchNormalization was handled above */
            if (nd->proto->n_output >= 1 && nd->outputs[0] >= 0)
                rc = rm_edit_propagate(e, nd->outputs[0], depth + 1);
        } else if (kind == RM_OP_CONV) {
            rc = rm_edit_resize_consumer(e, node);
        } else if (rm_edit_flattens(e->g, node) || rm_edit_is_linear(e->g, node)) {
            int64_t spatial = 1;
            for (int d = 2; d < val->rank && spatial > 0; d++)
                if (val->dims[d] > 0 && __builtin_mul_overflow(spatial, val->dims[d], &spatial))
                    spatial = -1; /* past int64: no Linear matches it (resize_gemm says so) */
            if (!rm_edit_flattens(e->g, node)) {
                rc = rm_edit_resize_gemm(e, node, 1);
            } else if (rm_node_attr_int(nd->proto, "axis", 1) != 1 || val->rank < 2 || nd->outputs[0] < 0) {
                rm_edit_problem(e, "%s: Flatten with axis != 1 reads the changed channels", rm_edit_where(e, node));
            } else {
                rm_edit_mark(e, nd->outputs[0]);
                const struct rm_value *fo = &e->g->values[nd->outputs[0]];
                for (int j = 0; j < fo->n_consumers && !rc; j++) {
                    int gn = fo->consumers[j];
                    if (e->visited[gn])
                        continue;
                    e->visited[gn] = 1;
                    if (!rm_edit_is_linear(e->g, gn) || e->g->nodes[gn].inputs[0] != nd->outputs[0])
                        rm_edit_problem(e, "%s: %s reads flattened channels; cannot propagate", rm_edit_where(e, gn),
                                        rm_edit_op(e, gn));
                    else
                        rc = rm_edit_resize_gemm(e, gn, spatial);
                }
            }
        } else {
            rm_edit_problem(e, "%s: cannot carry %lld -> %lld channels through %s node '%s'%s", rm_edit_where(e, node),
                    (long long)e->old_c, (long long)e->new_c, op, rm_graph_node_label(e->g, (size_t)node),
                    kind == RM_OP_ADD || kind == RM_OP_MUL || kind == RM_OP_CONCAT
                        ? " (its other inputs keep their channels; prune the coupled group instead)"
                        : "");
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- shapes after the edit --------------------------------------------------- */

struct shape_problems {
    struct edit *e;
    const struct rm_graph *g2;
};

static void on_shape_error(void *ctx, int node, const char *msg)
{
    struct shape_problems *sp = ctx;
    struct edit *e = sp->e;
    /* dead nodes may have been dropped: find the node of the edit's own index by its proto */
    const Onnx__NodeProto *np = sp->g2->nodes[node].proto;
    for (size_t i = 0; i < e->g->n_nodes; i++)
        if (e->g->nodes[i].proto == np) {
            node = (int)i;
            break;
        }
    if (node == e->edited_node && e->input_reported)
        return;
    rm_edit_problem(e, "%s (%s): %s", rm_edit_where(e, node), rm_edit_op(e, node), msg);
}

int rm_edit_finish(struct edit *e, bool propagated, bool channel_change)
{
    /* what the edit left unread goes (the Identity helpers that routed a shared
     * initializer every user now reads a copy of, the initializer itself) */
    int rc = rm_model_sweep(e->m, RM_SWEEP_NODES, NULL, e->err);
    if (rc)
        return rc;
    struct rm_graph *g2 = rm_model_graph(e->m, e->err);
    if (!g2)
        return e->err->code;
    struct shape_problems sp = {e, g2};
    for (size_t i = 0; i < g2->n_issues; i++)
        if (g2->issues[i].code == RM_EFORMAT)
            on_shape_error(&sp, g2->issues[i].node, g2->issues[i].why);
    if (e->problems.n) {
        char msg[RM_ERROR_MSG_MAX];
        rm_findings_join(&e->problems, RM_FINDING_PROBLEM, msg, sizeof msg - 40);
        rm_error_set(e->err, RM_EEDIT, "the edited model does not fit: %s", msg);
        return rm_error_fix(e->err, channel_change && !propagated ? RM_FIX_PROPAGATE : RM_FIX_NONE);
    }
    if ((rc = rm_model_write_shapes(e->m, e->err)))
        return rc;
    for (size_t i = 0; i < e->n_changed && propagated; i++) {
        rc = rm_channel_map_record(e->m, e->g->values[e->changed[i]].name, e->map, e->new_c, e->err);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- set-up ----------------------------------------------------------------- */

static int desc_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x < y) - (x > y);
}

/* Parameters held by Constant nodes (paddle2onnx writes every weight so) become
 * initializers of the same name, which edits rewrite like any other. */
static int constant_params(struct rm_model *m, rm_findings *log, struct rm_error *err)
{
    const struct rm_tree *t = rm_model_tree(m, err);
    if (!t)
        return err->code;
    size_t n = 0, cap = 0;
    int *nodes = NULL;
    for (size_t i = 0; i < t->n_modules; i++)
        for (size_t k = 0; k < t->modules[i]->n_params; k++) {
            int c = t->modules[i]->params[k].constant;
            if (c < 0)
                continue;
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 16;
                int *q = realloc(nodes, nc * sizeof *q);
                if (!q) {
                    free(nodes);
                    return rm_error_set(err, RM_ENOMEM, "out of memory");
                }
                nodes = q;
                cap = nc;
            }
            nodes[n++] = c;
        }
    /* last node first, so the numbers of the others stay put */
    if (n)
        qsort(nodes, n, sizeof *nodes, desc_int);
    int rc = 0;
    size_t done = 0;
    for (size_t i = 0; i < n && !rc; i++)
        if (i == 0 || nodes[i] != nodes[i - 1]) {
            rc = rm_model_constant_to_initializer(m, nodes[i], err);
            done++;
        }
    free(nodes);
    if (!rc && done && log)
        rm_findings_add(log, RM_FINDING_NOTE, -1, "%zu parameter%s held by Constant nodes became initializers",
                         done, done == 1 ? "" : "s");
    return rc;
}

int rm_edit_begin(struct edit *e, struct rm_model *m, const struct rm_replace_options *opts, bool shapes,
                  rm_findings *log, struct rm_error *err)
{
    memset(e, 0, sizeof *e);
    e->m = m;
    e->err = err;
    e->log = log;
    e->edited_node = -1;
    e->init = opts ? opts->init : RM_INIT_KEEP;
    e->rng = opts ? opts->seed : 0;
    /* an edit that changes sizes is shape-checked: every input size must be known */
    if (shapes && rm_model_check_inputs(m, NULL, err))
        return err->code;
    if (constant_params(m, log, err))
        return err->code;
    /* the index and tree of the model as it is now; held, so that they still describe
     * it (for messages) after the edit has changed it */
    if (!(e->g = rm_model_graph(m, err)))
        return err->code;
    rm_graph_hold(e->g);
    if (!(e->t = rm_model_tree(m, err)))
        return err->code;
    rm_tree_hold(e->t);
    e->visited = calloc(e->g->n_nodes + 1, 1);
    e->changed = calloc(e->g->n_values + 1, sizeof *e->changed);
    e->use_mark = calloc(e->g->n_values + 1, sizeof *e->use_mark);
    if (!e->visited || !e->changed || !e->use_mark)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    return 0;
}

void rm_edit_end(struct edit *e)
{
    free(e->visited);
    free(e->changed);
    free(e->use_mark);
    free(e->map);
    rm_findings_free(&e->problems);
    rm_tree_free(e->t);
    rm_graph_drop(e->g);
    memset(e, 0, sizeof *e);
}

/* ---- replace ---------------------------------------------------------------- */

int rm_replace_conv(struct rm_model *m, const char *path, const struct rm_conv_spec *spec,
                    const struct rm_replace_options *opts, rm_findings *log, struct rm_error *err)
{
    struct edit e;
    float *old_w = NULL, *new_w = NULL, *old_b = NULL, *new_b = NULL;
    int rc = rm_edit_begin(&e, m, opts, true, log, err);
    if (rc)
        goto done;
    const struct rm_module *mod;
    rc = rm_tree_lookup(e.t, path, &mod, err);
    if (rc)
        goto done;
    if (mod->main_node < 0 || e.g->nodes[mod->main_node].op != RM_OP_CONV) {
        rc = rm_error_set(err, RM_EEDIT, "module '%s' is a %s, not a convolution; replace works on Conv1d, Conv2d and Conv3d modules",
                          mod->path, mod->type);
        goto done;
    }
    int node = mod->main_node;
    e.edited_node = node;
    Onnx__NodeProto *np = e.g->nodes[node].proto;
    e.visited[node] = 1;
    const Onnx__TensorProto *wt, *bt;
    int64_t nw, nb;
    rc = rm_edit_param(&e, node, 1, &old_w, &nw, &wt);
    if (!rc && !wt)
        rc = rm_error_set(err, RM_EFORMAT, "%s: Conv node has no weight", mod->path);
    if (!rc && (wt->n_dims < 3 || wt->n_dims > 5))
        rc = rm_error_set(err, RM_EFORMAT, "%s: Conv weight has %d dims; a Conv weight has 3 to 5", mod->path,
                          (int)wt->n_dims);
    else if (!rc && (int)wt->n_dims != spec->nd + 2)
        rc = rm_error_set(err, RM_EEDIT, "%s is a %dd convolution (weight of rank %d); the spec is a Conv%dd: "
                          "write Conv%dd(...)", mod->path, (int)wt->n_dims - 2, (int)wt->n_dims, spec->nd,
                          (int)wt->n_dims - 2);
    if (!rc)
        rc = rm_edit_param(&e, node, 2, &old_b, &nb, &bt);
    if (!rc && e.g->nodes[node].inputs[0] < 0)
        rc = rm_error_set(err, RM_EFORMAT, "its Conv node '%s' has no data input (input 0 is named '')",
                          rm_graph_node_label(e.g, (size_t)node));
    if (rc)
        goto done;
    int r = spec->nd + 2;
    int64_t od[RM_SPEC_MAX_ND + 2];
    for (int d = 0; d < r; d++)
        od[d] = wt->dims[d];

    /* the input side cannot change: the spec must take what the conv is given */
    const struct rm_value *x = &e.g->values[e.g->nodes[node].inputs[0]];
    if (x->rank == r && x->dims[1] >= 0 && x->dims[1] != spec->in_channels) {
        const char *from = x->producer >= 0 ? rm_edit_where(&e, x->producer) : x->name;
        rm_edit_problem(&e, "%s: the spec takes %lld input channels, its input '%s' has %lld (from %s)", mod->path,
                (long long)spec->in_channels, x->name, (long long)x->dims[1], from);
        e.input_reported = true;
    }

    /* weight */
    int64_t wd[RM_SPEC_MAX_ND + 2] = {spec->out_channels, spec->in_channels / spec->groups};
    int64_t fan_in = wd[1]; /* the spec's sizes are bounded (rm_spec.c): no overflow */
    for (int d = 0; d < spec->nd; d++) {
        wd[d + 2] = spec->kernel[d];
        fan_in *= spec->kernel[d];
    }
    new_w = malloc((size_t)(wd[0] * fan_in) * sizeof *new_w);
    if (!new_w) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    conv_weight(&e, old_w, od, new_w, wd, r, fan_in);
    char name[512];
    snprintf(name, sizeof name, "%s.weight", mod->path);
    rc = rm_edit_write_param(&e, node, 1, wd, r, new_w, name);
    if (rc)
        goto done;

    /* bias: the spec's, or, for a conv the exporter folded a BatchNorm into, that
     * BatchNorm's shift (kept whatever --init says: it is not the conv's own bias) */
    bool had_bias = old_b != NULL;
    if (spec->bias || (had_bias && mod->bn_folded)) {
        new_b = malloc((size_t)spec->out_channels * sizeof *new_b);
        if (!new_b) {
            rc = rm_error_set(err, RM_ENOMEM, "out of memory");
            goto done;
        }
        if (e.init == RM_INIT_KAIMING && !mod->bn_folded)
            for (int64_t i = 0; i < spec->out_channels; i++)
                new_b[i] = kaiming(&e, fan_in);
        else if (e.init == RM_INIT_ZEROS && !mod->bn_folded)
            memset(new_b, 0, (size_t)spec->out_channels * sizeof *new_b);
        else
            resize_vec(old_b, nb, new_b, spec->out_channels, 0.0f);
        snprintf(name, sizeof name, "%s.bias", mod->path);
        rc = rm_edit_write_param(&e, node, 2, &spec->out_channels, 1, new_b, name);
        if (rc)
            goto done;
    } else if (np->n_input > 2 && (rc = rm_model_trim_inputs(m, node, 2, err))) {
        goto done; /* bias=False: the node no longer reads one */
    }

    /* attributes */
    int nd = spec->nd;
    if ((rc = rm_model_set_attr_ints(m, node, "dilations", spec->dilation, nd, err)) ||
        (rc = rm_model_set_attr_int(m, node, "group", spec->groups, err)) ||
        (rc = rm_model_set_attr_ints(m, node, "kernel_shape", spec->kernel, nd, err)) ||
        (rc = rm_model_set_attr_ints(m, node, "pads", spec->pads, 2 * nd, err)) ||
        (rc = rm_model_set_attr_ints(m, node, "strides", spec->stride, nd, err)) ||
        (rc = rm_model_del_attr(m, node, "auto_pad", err)))
        goto done;

    char repr[256];
    rm_conv_spec_repr(spec, repr, sizeof repr);
    rm_edit_note(&e, "%s: %s -> %s", mod->path, mod->type, repr);

    bool channel_change = spec->out_channels != od[0];
    if (channel_change && opts && opts->propagate && np->n_output >= 1 && e.g->nodes[node].outputs[0] >= 0) {
        e.old_c = od[0];
        e.new_c = spec->out_channels;
        e.follow = true;
        e.map = malloc((size_t)e.new_c * sizeof *e.map);
        if (!e.map) {
            rc = rm_error_set(err, RM_ENOMEM, "out of memory");
            goto done;
        }
        for (int64_t i = 0; i < e.new_c; i++)
            e.map[i] = i < e.old_c ? i : -1; /* keep the first channels, new ones after */
        rc = rm_edit_propagate(&e, e.g->nodes[node].outputs[0], 0);
        if (rc)
            goto done;
    }
    rc = rm_edit_finish(&e, opts && opts->propagate, channel_change);

done:
    free(old_w);
    free(new_w);
    free(old_b);
    free(new_b);
    rm_edit_end(&e);
    return rc;
}

int rm_spec_check(const char *spec, struct rm_error *err)
{
    struct rm_conv_spec s;
    return rm_conv_spec_parse(spec, &s, err);
}

int rm_replace(struct rm_model *m, const char *path, const char *spec, const struct rm_replace_options *opts,
               rm_findings *log, struct rm_error *err)
{
    struct rm_conv_spec s;
    int rc = rm_conv_spec_parse(spec, &s, err);
    /* fewer input channels: with propagate, the group the conv reads is pruned first */
    if (!rc && opts && opts->propagate)
        rc = rm_prune_input_to(m, path, s.in_channels, log, err);
    if (!rc)
        rc = rm_replace_conv(m, path, &s, opts, log, err);
    if (!rc) {
        static const char *const inits[] = {"keep", "kaiming", "zeros"};
        int init = opts && opts->init >= 0 && opts->init <= 2 ? opts->init : RM_INIT_KEEP;
        rc = rm_edit_record(m, err, "replace %s %s (init=%s%s%s)", path, spec, inits[init],
                            init == RM_INIT_KAIMING ? ", seed set" : "", opts && opts->propagate ? ", propagate" : "");
    }
    return rc;
}

const char *rm_model_history(const struct rm_model *m)
{
    /* the metadata key index the lookup may build is a cache: m's contents do not change */
    return rm_model_metadata((struct rm_model *)m, RM_HISTORY_KEY);
}
