#include "rm_edit.h"
#include "rm_edit_int.h"

#include "rm_graph.h"
#include "rm_shape.h"
#include "rm_tree.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>



#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void rm_edit_note(struct edit *e, const char *fmt, ...)
{
    if (!e->log || e->log->n >= RM_EDIT_LOG_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->log->line[e->log->n++], sizeof e->log->line[0], fmt, ap);
    va_end(ap);
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void rm_edit_problem(struct edit *e, const char *fmt, ...)
{
    if (e->n_problems >= MAX_PROBLEMS)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->problems[e->n_problems++], sizeof e->problems[0], fmt, ap);
    va_end(ap);
}

/* Module path of node i for messages: "layer1.0.conv2", or the node's name. */
const char *rm_edit_where(const struct edit *e, int node)
{
    int mi = e->t->node_module[node];
    if (mi >= 0 && e->t->modules[mi]->path[0])
        return e->t->modules[mi]->path;
    return rm_graph_node_label(&e->g, (size_t)node);
}

const char *rm_edit_op(const struct edit *e, int node)
{
    const char *op = e->g.nodes[node].proto->op_type;
    return op ? op : "?";
}

/* ---- random numbers for kaiming init (splitmix64) ---------------------------- */

static double uniform01(struct edit *e)
{
    uint64_t z = (e->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* PyTorch's Conv2d default: kaiming_uniform_(a=sqrt(5)) gives bound 1/sqrt(fan_in),
 * and the bias is uniform in the same bound. */
static float kaiming(struct edit *e, int64_t fan_in)
{
    double bound = fan_in > 0 ? 1.0 / sqrt((double)fan_in) : 0.0;
    return (float)((2.0 * uniform01(e) - 1.0) * bound);
}

/* ---- tensors and initializers ----------------------------------------------- */

int rm_edit_read_f32(struct edit *e, const Onnx__TensorProto *t, float **out, int64_t *n)
{
    *out = NULL;
    if (rm_tensor_numel(t, n, e->err))
        return RM_EFORMAT;
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

/* Uses of value v as a node input, counted through Identity nodes. */
static int uses(const struct edit *e, int v, int depth)
{
    int n = 0;
    const struct rm_value *val = &e->g.values[v];
    if (val->output >= 0)
        n++;
    for (int k = 0; k < val->n_consumers; k++) {
        const struct rm_node *c = &e->g.nodes[val->consumers[k]];
        if (c->op == RM_OP_IDENTITY && depth < 64 &&
            c->proto->n_output >= 1 && c->outputs[0] >= 0)
            n += uses(e, c->outputs[0], depth + 1);
        else
            n++;
    }
    return n;
}

static bool name_taken(const struct edit *e, const char *name)
{
    if (rm_graph_find(&e->g, name) >= 0)
        return true;
    for (size_t i = 0; i < e->n_added; i++)
        if (!strcmp(e->added[i], name))
            return true;
    return false;
}

/* A name based on base that no tensor uses yet, in the arena. */
static const char *unique_name(struct edit *e, const char *base)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", base);
    for (int i = 1; name_taken(e, buf) && i < 100000; i++)
        snprintf(buf, sizeof buf, "%s_%d", base, i);
    char *s = rm_arena_strdup(e->a, buf);
    if (s && e->n_added == e->cap_added) {
        size_t cap = e->cap_added ? 2 * e->cap_added : 16;
        const char **p = rm_arena_alloc(e->a, cap * sizeof *p);
        if (!p)
            return NULL;
        if (e->n_added)
            memcpy(p, e->added, e->n_added * sizeof *p);
        e->added = p;
        e->cap_added = cap;
    }
    if (s)
        e->added[e->n_added++] = s;
    return s;
}

/* Point t at new float data with the given dims (arena copies). */
static int fill_tensor(struct edit *e, Onnx__TensorProto *t, const int64_t *dims, int rank, const float *data)
{
    int64_t n;
    if (rm_dims_numel(dims, (size_t)rank, &n))
        return rm_error_set(e->err, RM_EEDIT, "tensor size overflows");
    int64_t *d = rm_arena_memdup(e->a, dims, (size_t)rank * sizeof *dims);
    uint8_t *raw = rm_arena_memdup(e->a, data, (size_t)n * sizeof(float)); /* little-endian host */
    if (!d || !raw)
        return rm_error_set(e->err, RM_ENOMEM, "out of memory");
    t->dims = d;
    t->n_dims = (size_t)rank;
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->has_raw_data = 1;
    t->raw_data.data = raw;
    t->raw_data.len = (size_t)n * sizeof(float);
    t->n_float_data = t->n_int32_data = t->n_int64_data = t->n_double_data = t->n_uint64_data = 0;
    t->n_string_data = 0;
    t->has_data_location = 0;
    t->n_external_data = 0;
    return 0;
}

static int append_initializer(struct edit *e, Onnx__TensorProto *t)
{
    Onnx__GraphProto *g = e->m->proto->graph;
    Onnx__TensorProto **arr = rm_arena_alloc(e->a, (g->n_initializer + 1) * sizeof *arr);
    if (!arr)
        return rm_error_set(e->err, RM_ENOMEM, "out of memory");
    if (g->n_initializer)
        memcpy(arr, g->initializer, g->n_initializer * sizeof *arr);
    arr[g->n_initializer] = t;
    g->initializer = arr;
    g->n_initializer++;
    return 0;
}

static int set_input(struct edit *e, Onnx__NodeProto *n, size_t slot, const char *name)
{
    if (slot >= n->n_input) {
        char **arr = rm_arena_alloc(e->a, (slot + 1) * sizeof *arr);
        if (!arr)
            return rm_error_set(e->err, RM_ENOMEM, "out of memory");
        for (size_t i = 0; i <= slot; i++)
            arr[i] = i < n->n_input ? n->input[i] : (char *)"";
        n->input = arr;
        n->n_input = slot + 1;
    }
    n->input[slot] = (char *)name;
    return 0;
}

/* Give input `slot` of node the float tensor (dims, data). An initializer used only
 * by this node is rewritten in place (its name kept); one shared with other nodes
 * is left alone and the node gets a copy named after `fallback`. */
int rm_edit_write_param(struct edit *e, int node, size_t slot, const int64_t *dims, int rank,
                       const float *data, const char *fallback)
{
    Onnx__NodeProto *n = e->g.nodes[node].proto;
    int v = slot < n->n_input ? e->g.nodes[node].inputs[slot] : -1;
    int src = v >= 0 ? rm_graph_initializer_of(&e->g, v) : -1;
    if (src >= 0 && uses(e, src, 0) == 1) {
        Onnx__TensorProto *t = e->m->proto->graph->initializer[e->g.values[src].init];
        return fill_tensor(e, t, dims, rank, data);
    }
    Onnx__TensorProto *t = rm_arena_alloc(e->a, sizeof *t);
    if (!t)
        return rm_error_set(e->err, RM_ENOMEM, "out of memory");
    onnx__tensor_proto__init(t);
    const char *name = unique_name(e, fallback);
    if (!name)
        return rm_error_set(e->err, RM_ENOMEM, "out of memory");
    t->name = (char *)name;
    int rc = fill_tensor(e, t, dims, rank, data);
    if (!rc)
        rc = append_initializer(e, t);
    if (!rc)
        rc = set_input(e, n, slot, name);
    if (!rc && src >= 0)
        rm_edit_note(e, "%s: %s is shared with other nodes; copied to '%s'", rm_edit_where(e, node),
              e->g.values[src].name, name);
    return rc;
}

/* Float contents of input `slot` of node (malloc'd), or NULL with *n 0 when absent. */
int rm_edit_param(struct edit *e, int node, size_t slot, float **data, int64_t *n,
                      const Onnx__TensorProto **tp)
{
    *data = NULL;
    *n = 0;
    *tp = NULL;
    const struct rm_node *nd = &e->g.nodes[node];
    if (slot >= nd->proto->n_input || nd->inputs[slot] < 0)
        return 0;
    int src = rm_graph_initializer_of(&e->g, nd->inputs[slot]);
    if (src < 0)
        return rm_error_set(e->err, RM_EUNSUPPORTED,
                            "%s: input %zu of its %s node is computed, not an initializer; cannot edit it",
                            rm_edit_where(e, node), slot, rm_edit_op(e, node));
    *tp = e->m->proto->graph->initializer[e->g.values[src].init];
    return rm_edit_read_f32(e, *tp, data, n);
}

/* ---- attributes ------------------------------------------------------------- */

static Onnx__AttributeProto *attr_slot(struct edit *e, Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name))
            return n->attribute[i];
    Onnx__AttributeProto **arr = rm_arena_alloc(e->a, (n->n_attribute + 1) * sizeof *arr);
    Onnx__AttributeProto *a = rm_arena_alloc(e->a, sizeof *a);
    if (!arr || !a)
        return NULL;
    onnx__attribute_proto__init(a);
    a->name = rm_arena_strdup(e->a, name);
    if (!a->name)
        return NULL;
    /* keep attributes sorted by name, as torch writes them */
    size_t k = 0, j = 0;
    while (k < n->n_attribute && n->attribute[k]->name && strcmp(n->attribute[k]->name, name) < 0)
        arr[j++] = n->attribute[k++];
    arr[j++] = a;
    while (k < n->n_attribute)
        arr[j++] = n->attribute[k++];
    n->attribute = arr;
    n->n_attribute++;
    return a;
}

static int set_ints(struct edit *e, Onnx__NodeProto *n, const char *name, const int64_t *v, size_t count)
{
    Onnx__AttributeProto *a = attr_slot(e, n, name);
    int64_t *copy = rm_arena_memdup(e->a, v, count * sizeof *v);
    if (!a || !copy)
        return rm_error_set(e->err, RM_ENOMEM, "out of memory");
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    a->ints = copy;
    a->n_ints = count;
    a->has_i = 0;
    return 0;
}

int rm_edit_set_int(struct edit *e, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = attr_slot(e, n, name);
    if (!a)
        return rm_error_set(e->err, RM_ENOMEM, "out of memory");
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1;
    a->i = v;
    a->n_ints = 0;
    return 0;
}

static void del_attr(Onnx__NodeProto *n, const char *name)
{
    size_t j = 0;
    for (size_t i = 0; i < n->n_attribute; i++)
        if (!n->attribute[i]->name || strcmp(n->attribute[i]->name, name) != 0)
            n->attribute[j++] = n->attribute[i];
    n->n_attribute = j;
}

/* ---- weights ---------------------------------------------------------------- */

/* New conv weight [O2, I2, kh2, kw2] from old [O, I, kh, kw] by the init rule:
 * keep copies the overlap, kernels cropped or zero-padded about their centre
 * (offset floor((old - new) / 2)); kaiming draws everything; zeros is zero. */
static void conv_weight(struct edit *e, const float *old, const int64_t od[4], float *w, const int64_t nd[4],
                        int64_t fan_in)
{
    int64_t n = nd[0] * nd[1] * nd[2] * nd[3];
    if (e->init == RM_INIT_KAIMING) {
        for (int64_t i = 0; i < n; i++)
            w[i] = kaiming(e, fan_in);
        return;
    }
    memset(w, 0, (size_t)n * sizeof *w);
    if (e->init == RM_INIT_ZEROS || !old)
        return;
    int64_t oy = (od[2] - nd[2]) >= 0 ? (od[2] - nd[2]) / 2 : -((nd[2] - od[2] + 1) / 2);
    int64_t ox = (od[3] - nd[3]) >= 0 ? (od[3] - nd[3]) / 2 : -((nd[3] - od[3] + 1) / 2);
    int64_t mo = od[0] < nd[0] ? od[0] : nd[0], mi = od[1] < nd[1] ? od[1] : nd[1];
    for (int64_t o = 0; o < mo; o++)
        for (int64_t i = 0; i < mi; i++)
            for (int64_t y = 0; y < nd[2]; y++)
                for (int64_t x = 0; x < nd[3]; x++) {
                    int64_t sy = y + oy, sx = x + ox;
                    if (sy < 0 || sy >= od[2] || sx < 0 || sx >= od[3])
                        continue;
                    /* w[o][i][y][x] = old[o][i][sy][sx] */
                    w[((o * nd[1] + i) * nd[2] + y) * nd[3] + x] = old[((o * od[1] + i) * od[2] + sy) * od[3] + sx];
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

/* ---- channel propagation ---------------------------------------------------- */

void rm_edit_mark(struct edit *e, int v)
{
    for (size_t i = 0; i < e->n_changed; i++)
        if (e->changed[i] == v)
            return;
    if (e->n_changed < e->g.n_values)
        e->changed[e->n_changed++] = v;
}

/* BatchNormalization following the change: per-channel parameters resized, new
 * channels an identity (scale 1, shift 0, mean 0, var 1). */
int rm_edit_resize_bn(struct edit *e, int node)
{
    static const float fill[5] = {0, 1, 0, 0, 1};
    static const char *const role[5] = {"", "weight", "bias", "running_mean", "running_var"};
    int64_t c2 = e->new_c;
    for (size_t s = 1; s < 5 && s < e->g.nodes[node].proto->n_input; s++) {
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
    rm_edit_note(e, "%s: BatchNorm2d %lld -> %lld channels", rm_edit_where(e, node), (long long)e->old_c, (long long)c2);
    return 0;
}

/* A conv reading the changed tensor: its in-channel axis follows (group 1), or, for a
 * depthwise conv, its channels and groups follow and the change goes on. */
int rm_edit_resize_consumer(struct edit *e, int node)
{
    Onnx__NodeProto *np = e->g.nodes[node].proto;
    int64_t group = rm_node_attr_int(np, "group", 1);
    float *old = NULL, *w = NULL;
    int64_t n;
    const Onnx__TensorProto *tp;
    int rc = rm_edit_param(e, node, 1, &old, &n, &tp);
    if (rc)
        return rc;
    if (!tp || tp->n_dims != 4) {
        free(old);
        return rm_error_set(e->err, RM_EUNSUPPORTED, "%s: weight is not 4-D", rm_edit_where(e, node));
    }
    int64_t od[4] = {tp->dims[0], tp->dims[1], tp->dims[2], tp->dims[3]};
    char name[512];
    snprintf(name, sizeof name, "%s.weight", rm_edit_where(e, node));
    if (group == 1) {
        int64_t nd[4] = {od[0], e->new_c, od[2], od[3]};
        w = malloc((size_t)(nd[0] * nd[1] * nd[2] * nd[3]) * sizeof *w);
        if (!w) {
            free(old);
            return rm_error_set(e->err, RM_ENOMEM, "out of memory");
        }
        /* in-channels follow the map; new ones are zero (keep, zeros) or drawn (kaiming) */
        int64_t ks = od[2] * od[3];
        for (int64_t o = 0; o < nd[0]; o++)
            for (int64_t i = 0; i < nd[1]; i++)
                for (int64_t k = 0; k < ks; k++) {
                    int64_t src = e->map[i];
                    /* w[o][i][k] = old[o][map[i]][k] */
                    w[(o * nd[1] + i) * ks + k] =
                        src >= 0 && src < od[1] ? old[(o * od[1] + src) * ks + k]
                        : e->init == RM_INIT_KAIMING ? kaiming(e, nd[1] * ks) : 0.0f;
                }
        rc = rm_edit_write_param(e, node, 1, nd, 4, w, name);
        if (!rc)
            rm_edit_note(e, "%s: Conv2d in_channels %lld -> %lld", rm_edit_where(e, node), (long long)e->old_c,
                  (long long)e->new_c);
    } else if (group == od[0] && od[1] == 1 && group == e->old_c) {
        int64_t nd[4] = {e->new_c, 1, od[2], od[3]};
        w = malloc((size_t)(nd[0] * nd[2] * nd[3]) * sizeof *w);
        if (!w) {
            free(old);
            return rm_error_set(e->err, RM_ENOMEM, "out of memory");
        }
        rm_edit_rows(e, old, od[0], od[2] * od[3], w, od[2] * od[3]);
        rc = rm_edit_write_param(e, node, 1, nd, 4, w, name);
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
            rc = rm_edit_set_int(e, np, "group", e->new_c);
        if (!rc) {
            rm_edit_note(e, "%s: depthwise Conv2d %lld -> %lld channels (groups follow)", rm_edit_where(e, node),
                  (long long)e->old_c, (long long)e->new_c);
            if (e->follow && np->n_output >= 1 && e->g.nodes[node].outputs[0] >= 0)
                rc = rm_edit_propagate(e, e->g.nodes[node].outputs[0], 1);
        }
    } else {
        rm_edit_problem(e, "%s: grouped Conv2d (groups=%lld) reads the changed channels; cannot carry %lld -> %lld "
                   "channels into it", rm_edit_where(e, node), (long long)group, (long long)e->old_c,
                (long long)e->new_c);
    }
    free(old);
    free(w);
    return rc;
}

/* Gemm reading flattened channels: features c * spatial + s follow the channels. */
int rm_edit_resize_gemm(struct edit *e, int node, int64_t spatial)
{
    Onnx__NodeProto *np = e->g.nodes[node].proto;
    int tb = (int)rm_node_attr_int(np, "transB", 0);
    float *old = NULL;
    int64_t n;
    const Onnx__TensorProto *tp;
    int rc = rm_edit_param(e, node, 1, &old, &n, &tp);
    if (rc)
        return rc;
    if (!tp || tp->n_dims != 2) {
        free(old);
        return rm_error_set(e->err, RM_EUNSUPPORTED, "%s: Gemm weight is not 2-D", rm_edit_where(e, node));
    }
    int64_t outs = tb ? tp->dims[0] : tp->dims[1];
    int64_t f_old = e->old_c * spatial, f_new = e->new_c * spatial;
    if ((tb ? tp->dims[1] : tp->dims[0]) != f_old) {
        free(old);
        rm_edit_problem(e, "%s: Linear has %lld in_features, expected %lld channels x %lld", rm_edit_where(e, node),
                (long long)(tb ? tp->dims[1] : tp->dims[0]), (long long)e->old_c, (long long)spatial);
        return 0;
    }
    float *w = calloc((size_t)(outs * f_new), sizeof *w);
    if (!w) {
        free(old);
        return rm_error_set(e->err, RM_ENOMEM, "out of memory");
    }
    for (int64_t c = 0; c < e->new_c; c++) {
        if (e->map[c] < 0 || e->map[c] >= e->old_c)
            continue; /* a new channel: its features get zero weights */
        for (int64_t sp = 0; sp < spatial; sp++) {
            int64_t fn = c * spatial + sp, fo = e->map[c] * spatial + sp; /* feature = channel * spatial + s */
            for (int64_t o = 0; o < outs; o++) {
                if (tb)
                    w[o * f_new + fn] = old[o * f_old + fo]; /* [out, features] */
                else
                    w[fn * outs + o] = old[fo * outs + o];   /* [features, out] */
            }
        }
    }
    int64_t nd[2] = {tb ? outs : f_new, tb ? f_new : outs};
    char name[512];
    snprintf(name, sizeof name, "%s.weight", rm_edit_where(e, node));
    rc = rm_edit_write_param(e, node, 1, nd, 2, w, name);
    if (!rc)
        rm_edit_note(e, "%s: Linear in_features %lld -> %lld", rm_edit_where(e, node), (long long)f_old, (long long)f_new);
    free(old);
    free(w);
    return rc;
}

/* Carry the channel change of value v to everything that reads it. */
int rm_edit_propagate(struct edit *e, int v, int depth)
{
    if (depth > 256)
        return rm_error_set(e->err, RM_EEDIT, "channel propagation too deep");
    rm_edit_mark(e, v);
    const struct rm_value *val = &e->g.values[v];
    for (int k = 0; k < val->n_consumers; k++) {
        int node = val->consumers[k];
        if (e->visited[node])
            continue;
        e->visited[node] = 1;
        const struct rm_node *nd = &e->g.nodes[node];
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
        } else if (rm_op_passes_channels(kind)) { /* BatchNormalization was handled above */
            if (nd->proto->n_output >= 1 && nd->outputs[0] >= 0)
                rc = rm_edit_propagate(e, nd->outputs[0], depth + 1);
        } else if (kind == RM_OP_CONV) {
            rc = rm_edit_resize_consumer(e, node);
        } else if (kind == RM_OP_FLATTEN || kind == RM_OP_GEMM) {
            int64_t spatial = 1;
            for (int d = 2; d < val->rank; d++)
                spatial *= val->dims[d] > 0 ? val->dims[d] : 1;
            if (kind == RM_OP_GEMM) {
                rc = rm_edit_resize_gemm(e, node, 1);
            } else if (rm_node_attr_int(nd->proto, "axis", 1) != 1 || val->rank < 2 || nd->outputs[0] < 0) {
                rm_edit_problem(e, "%s: Flatten with axis != 1 reads the changed channels", rm_edit_where(e, node));
            } else {
            rm_edit_mark(e, nd->outputs[0]);
            const struct rm_value *fo = &e->g.values[nd->outputs[0]];
            for (int j = 0; j < fo->n_consumers && !rc; j++) {
                int gn = fo->consumers[j];
                if (e->visited[gn])
                    continue;
                e->visited[gn] = 1;
                if (e->g.nodes[gn].op != RM_OP_GEMM || e->g.nodes[gn].inputs[0] != nd->outputs[0])
                    rm_edit_problem(e, "%s: %s reads flattened channels; cannot propagate", rm_edit_where(e, gn), rm_edit_op(e, gn));
                else
                    rc = rm_edit_resize_gemm(e, gn, spatial);
            }
            }
        } else {
            rm_edit_problem(e, "%s: cannot carry %lld -> %lld channels through %s node '%s'%s", rm_edit_where(e, node),
                    (long long)e->old_c, (long long)e->new_c, op, rm_graph_node_label(&e->g, (size_t)node),
                    kind == RM_OP_ADD || kind == RM_OP_MUL || kind == RM_OP_CONCAT
                        ? " (its other inputs keep their channels; prune the coupled group instead)"
                        : "");
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- channel maps in metadata ------------------------------------------------ */

static Onnx__StringStringEntryProto *find_meta(Onnx__ModelProto *mp, const char *key)
{
    for (size_t i = 0; i < mp->n_metadata_props; i++)
        if (mp->metadata_props[i]->key && !strcmp(mp->metadata_props[i]->key, key))
            return mp->metadata_props[i];
    return NULL;
}

/* Record that channel i of tensor `name` now holds old channel i (i < min), composed
 * with any map an earlier edit left for the same tensor. */
int rm_edit_record_map(struct edit *e, const char *name)
{
    Onnx__ModelProto *mp = e->m->proto;
    char key[600];
    snprintf(key, sizeof key, "%s%s", RM_CHANNEL_MAP_KEY, name);
    Onnx__StringStringEntryProto *prev = find_meta(mp, key);
    size_t cap = (size_t)e->new_c * 21 + 1;
    char *s = rm_arena_alloc(e->a, cap), *p = s;
    if (!s)
        return rm_error_set(e->err, RM_ENOMEM, "out of memory");
    /* an earlier edit's map of the same tensor: compose, so the map keeps pointing at
     * the original model's channels */
    int64_t *earlier = NULL, n_earlier = 0;
    if (prev && prev->value && rm_channel_map_parse(prev->value, &earlier, &n_earlier, e->err))
        return rm_error_prefix(e->err, "metadata %s", key);
    for (int64_t i = 0; i < e->new_c; i++) {
        int64_t src = e->map[i];
        if (src >= 0 && earlier)
            src = src < n_earlier ? earlier[src] : -1;
        if (src >= 0)
            p += snprintf(p, cap - (size_t)(p - s), "%s%lld", i ? "," : "", (long long)src);
        else
            p += snprintf(p, cap - (size_t)(p - s), "%s-", i ? "," : "");
    }
    free(earlier);
    if (prev) {
        prev->value = s;
        return 0;
    }
    Onnx__StringStringEntryProto *kv = rm_arena_alloc(e->a, sizeof *kv);
    Onnx__StringStringEntryProto **arr = rm_arena_alloc(e->a, (mp->n_metadata_props + 1) * sizeof *arr);
    if (!kv || !arr)
        return rm_error_set(e->err, RM_ENOMEM, "out of memory");
    onnx__string_string_entry_proto__init(kv);
    kv->key = rm_arena_strdup(e->a, key);
    kv->value = s;
    if (!kv->key)
        return rm_error_set(e->err, RM_ENOMEM, "out of memory");
    if (mp->n_metadata_props)
        memcpy(arr, mp->metadata_props, mp->n_metadata_props * sizeof *arr);
    arr[mp->n_metadata_props++] = kv;
    mp->metadata_props = arr;
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
    for (size_t i = 0; i < e->g.n_nodes; i++)
        if (e->g.nodes[i].proto == np) {
            node = (int)i;
            break;
        }
    if (node == e->edited_node && e->input_reported)
        return;
    rm_edit_problem(e, "%s (%s): %s", rm_edit_where(e, node), rm_edit_op(e, node), msg);
}

/* Write inferred shapes into graph outputs and value_info entries so the saved file
 * carries no stale shapes. */
static int update_value_info(struct edit *e, const struct rm_graph *g2)
{
    Onnx__GraphProto *gp = e->m->proto->graph;
    Onnx__ValueInfoProto **lists[2] = {gp->output, gp->value_info};
    size_t counts[2] = {gp->n_output, gp->n_value_info};
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; i < counts[l]; i++) {
            Onnx__ValueInfoProto *vi = lists[l][i];
            int v = vi->name ? rm_graph_find(g2, vi->name) : -1;
            if (v < 0 || !vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
                !vi->type->tensor_type->shape)
                continue;
            const struct rm_value *val = &g2->values[v];
            Onnx__TensorShapeProto *sh = vi->type->tensor_type->shape;
            if (val->rank < 0 || (size_t)val->rank != sh->n_dim) {
                if (l == 1 && val->rank >= 0)
                    vi->type->tensor_type->shape = NULL; /* rank changed: drop the stale shape */
                continue;
            }
            for (size_t d = 0; d < sh->n_dim; d++) {
                Onnx__TensorShapeProto__Dimension *dim = sh->dim[d];
                /* only fixed sizes are rewritten: symbolic ones stay symbolic (shapes were
                 * inferred with dynamic dimensions set to 1, which must not leak out) */
                if (val->dims[d] < 0 || dim->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ||
                    dim->dim_value == val->dims[d])
                    continue;
                dim->dim_value = val->dims[d];
            }
        }
    return 0;
}

/* Remove what the edit left unread: nodes none of whose outputs is used (the Identity
 * helpers that routed a shared initializer which every user now reads a copy of), then
 * initializers nothing reads. Repeats until nothing changes. */
static int drop_dead(struct edit *e)
{
    Onnx__GraphProto *gp = e->m->proto->graph;
    for (int round = 0; round < 64; round++) {
        struct rm_graph g2;
        int rc = rm_graph_init(&g2, e->m, e->err);
        if (rc)
            return rc;
        size_t j = 0, removed = 0;
        for (size_t i = 0; i < gp->n_node; i++) {
            const struct rm_node *n = &g2.nodes[i];
            bool used = n->proto->n_output == 0;
            for (size_t k = 0; k < n->proto->n_output && !used; k++) {
                int v = n->outputs[k];
                used = v >= 0 && (g2.values[v].n_consumers > 0 || g2.values[v].output >= 0);
            }
            if (used)
                gp->node[j++] = gp->node[i];
            else
                removed++;
        }
        gp->n_node = j;
        j = 0;
        for (size_t i = 0; i < gp->n_initializer; i++) {
            int v = gp->initializer[i]->name ? rm_graph_find(&g2, gp->initializer[i]->name) : -1;
            if (v < 0 || g2.values[v].n_consumers > 0 || g2.values[v].output >= 0 || g2.values[v].input >= 0)
                gp->initializer[j++] = gp->initializer[i];
            else
                removed++;
        }
        gp->n_initializer = j;
        rm_graph_free(&g2);
        if (!removed)
            return 0;
    }
    return 0;
}

int rm_edit_finish(struct edit *e, bool propagated, bool channel_change)
{
    struct rm_graph g2;
    int rc = drop_dead(e);
    if (rc)
        return rc;
    rc = rm_graph_init(&g2, e->m, e->err);
    if (rc)
        return rc;
    struct shape_problems sp = {e, &g2};
    struct rm_shape_opts so = {.dynamic_dim = 1};
    rc = rm_shape_infer(&g2, &so, e->err);
    for (size_t i = 0; !rc && i < g2.n_issues; i++)
        if (g2.issues[i].code == RM_EFORMAT)
            on_shape_error(&sp, g2.issues[i].node, g2.issues[i].why);
    if (!rc && e->n_problems == 0)
        rc = update_value_info(e, &g2);
    rm_graph_free(&g2);
    if (rc)
        return rc;
    if (e->n_problems) {
        char msg[RM_ERROR_MSG_MAX];
        size_t off = 0;
        for (int i = 0; i < e->n_problems && off < sizeof msg; i++)
            off += (size_t)snprintf(msg + off, sizeof msg - off, "%s%s", i ? "; " : "", e->problems[i]);
        return rm_error_set(e->err, RM_EEDIT, "the edited model does not fit: %s%s", msg,
                            channel_change && !propagated ? " (--propagate carries channel changes to dependents)"
                                                          : "");
    }
    for (size_t i = 0; i < e->n_changed && propagated; i++) {
        rc = rm_edit_record_map(e, e->g.values[e->changed[i]].name);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- set-up ----------------------------------------------------------------- */

int rm_edit_begin(struct edit *e, struct rm_model *m, const struct rm_replace_opts *opts,
                  struct rm_edit_log *log, struct rm_error *err)
{
    memset(e, 0, sizeof *e);
    e->m = m;
    e->a = &m->arena;
    e->err = err;
    e->log = log;
    e->edited_node = -1;
    if (log)
        log->n = 0;
    e->init = opts ? opts->init : RM_INIT_KEEP;
    e->rng = opts ? opts->seed : 0;
    int rc = rm_graph_init(&e->g, m, err);
    if (rc)
        return rc;
    struct rm_shape_opts lenient = {.dynamic_dim = 1};
    rm_shape_infer(&e->g, &lenient, err);
    rc = rm_tree_build(&e->t, &e->g, err);
    if (rc)
        return rc;
    e->visited = calloc(e->g.n_nodes + 1, 1);
    e->changed = calloc(e->g.n_values + 1, sizeof *e->changed);
    if (!e->visited || !e->changed)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    return 0;
}

void rm_edit_end(struct edit *e)
{
    free(e->visited);
    free(e->changed);
    free(e->map);
    rm_tree_free(e->t);
    rm_graph_free(&e->g);
    memset(e, 0, sizeof *e);
}

/* ---- replace ---------------------------------------------------------------- */

int rm_replace_conv(struct rm_model *m, const char *path, const struct rm_conv_spec *spec,
                    const struct rm_replace_opts *opts, struct rm_edit_log *log, struct rm_error *err)
{
    struct edit e;
    float *old_w = NULL, *new_w = NULL, *old_b = NULL, *new_b = NULL;
    int rc = rm_edit_begin(&e, m, opts, log, err);
    if (rc)
        goto done;
    const struct rm_module *mod;
    rc = rm_tree_lookup(e.t, path, &mod, err);
    if (rc)
        goto done;
    if (mod->main_node < 0 || e.g.nodes[mod->main_node].op != RM_OP_CONV) {
        rc = rm_error_set(err, RM_EEDIT, "module '%s' is a %s, not a Conv2d; replace works on Conv2d modules",
                          mod->path, mod->type);
        goto done;
    }
    int node = mod->main_node;
    e.edited_node = node;
    Onnx__NodeProto *np = e.g.nodes[node].proto;
    e.visited[node] = 1;
    const Onnx__TensorProto *wt, *bt;
    int64_t nw, nb;
    rc = rm_edit_param(&e, node, 1, &old_w, &nw, &wt);
    if (!rc && !wt)
        rc = rm_error_set(err, RM_EFORMAT, "%s: Conv node has no weight", mod->path);
    if (!rc && wt->n_dims != 4)
        rc = rm_error_set(err, RM_EUNSUPPORTED, "%s: only 2-D convolutions (4-D weights) can be replaced",
                          mod->path);
    if (!rc)
        rc = rm_edit_param(&e, node, 2, &old_b, &nb, &bt);
    if (rc)
        goto done;
    int64_t od[4] = {wt->dims[0], wt->dims[1], wt->dims[2], wt->dims[3]};

    /* the input side cannot change: the spec must take what the conv is given */
    const struct rm_value *x = &e.g.values[e.g.nodes[node].inputs[0]];
    if (x->rank == 4 && x->dims[1] >= 0 && x->dims[1] != spec->in_channels) {
        const char *from = x->producer >= 0 ? rm_edit_where(&e, x->producer) : x->name;
        rm_edit_problem(&e, "%s: the spec takes %lld input channels, its input '%s' has %lld (from %s)", mod->path,
                (long long)spec->in_channels, x->name, (long long)x->dims[1], from);
        e.input_reported = true;
    }

    /* weight */
    int64_t wd[4] = {spec->out_channels, spec->in_channels / spec->groups, spec->kernel[0], spec->kernel[1]};
    int64_t wn = wd[0] * wd[1] * wd[2] * wd[3];
    new_w = malloc((size_t)wn * sizeof *new_w);
    if (!new_w) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    conv_weight(&e, old_w, od, new_w, wd, wd[1] * wd[2] * wd[3]);
    char name[512];
    snprintf(name, sizeof name, "%s.weight", mod->path);
    rc = rm_edit_write_param(&e, node, 1, wd, 4, new_w, name);
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
                new_b[i] = kaiming(&e, wd[1] * wd[2] * wd[3]);
        else if (e.init == RM_INIT_ZEROS && !mod->bn_folded)
            memset(new_b, 0, (size_t)spec->out_channels * sizeof *new_b);
        else
            resize_vec(old_b, nb, new_b, spec->out_channels, 0.0f);
        snprintf(name, sizeof name, "%s.bias", mod->path);
        rc = rm_edit_write_param(&e, node, 2, &spec->out_channels, 1, new_b, name);
        if (rc)
            goto done;
    } else if (np->n_input > 2) {
        np->n_input = 2; /* bias=False: the node no longer reads one */
    }

    /* attributes */
    int64_t kernel[2] = {spec->kernel[0], spec->kernel[1]};
    if ((rc = set_ints(&e, np, "dilations", spec->dilation, 2)) || (rc = rm_edit_set_int(&e, np, "group", spec->groups)) ||
        (rc = set_ints(&e, np, "kernel_shape", kernel, 2)) || (rc = set_ints(&e, np, "pads", spec->pads, 4)) ||
        (rc = set_ints(&e, np, "strides", spec->stride, 2)))
        goto done;
    del_attr(np, "auto_pad");

    char repr[256];
    rm_conv_spec_repr(spec, repr, sizeof repr);
    rm_edit_note(&e, "%s: %s -> %s", mod->path, mod->type, repr);

    bool channel_change = spec->out_channels != od[0];
    if (channel_change && opts && opts->propagate && np->n_output >= 1 && e.g.nodes[node].outputs[0] >= 0) {
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
        rc = rm_edit_propagate(&e, e.g.nodes[node].outputs[0], 0);
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
