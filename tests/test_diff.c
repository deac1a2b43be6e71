/* Tests for the model diff (rm_diff, rm_report, `remodel diff`): a model against itself,
 * a copy with one conv's weights perturbed (the first divergent module is that conv, by
 * construction), a prune of channels that carry nothing compared layer by layer through
 * the channel map, the statistics on hand-computed pairs, the JSON document, the HTML
 * report's self-containment, and the command's exit codes. */
#include "rm_diff.h"
#include "rm_engine.h"
#include "rm_graph.h"
#include "rm_model.h"
#include "rm_tree.h"
#include "test_util.h"

#include <check.h>
#include <dnnl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- models ------------------------------------------------------------------------------ */

struct fixture {
    struct rm_model *m;
    struct rm_graph g;
};

static void open_model(struct fixture *f, const char *file)
{
    struct rm_error err;
    char path[1024];
    rm_error_clear(&err);
    memset(f, 0, sizeof *f);
    snprintf(path, sizeof path, "%s/%s", rm_test_testdata(), file);
    ck_assert_msg(rm_model_load(&f->m, path, NULL, &err) == 0, "%s", err.msg);
    ck_assert_msg(rm_graph_init(&f->g, f->m, &err) == 0, "%s", err.msg);
}

static void reindex(struct fixture *f)
{
    struct rm_error err;
    rm_graph_free(&f->g);
    rm_model_touch(f->m);
    ck_assert_msg(rm_graph_init(&f->g, f->m, &err) == 0, "%s", err.msg);
}

static void close_model(struct fixture *f)
{
    rm_graph_free(&f->g);
    rm_model_free(f->m);
}

/* The initializer named name, its bytes made the model's own to write (a loaded
 * model's tensor bytes are the file's read-only mapping). */
static Onnx__TensorProto *init_named(struct rm_model *m, const char *name)
{
    Onnx__GraphProto *g = m->proto->graph;
    for (size_t i = 0; i < g->n_initializer; i++)
        if (!strcmp(g->initializer[i]->name, name)) {
            Onnx__TensorProto *t = g->initializer[i];
            if (t->has_raw_data && t->raw_data.len) {
                t->raw_data.data = rm_arena_memdup(&m->arena, t->raw_data.data, t->raw_data.len);
                ck_assert_ptr_nonnull(t->raw_data.data);
            }
            return t;
        }
    ck_abort_msg("no initializer '%s'", name);
    return NULL;
}

static float get_f(const Onnx__TensorProto *t, size_t i)
{
    float v;
    ck_assert_uint_ge(t->raw_data.len, (i + 1) * 4);
    memcpy(&v, t->raw_data.data + i * 4, 4);
    return v;
}

static void set_f(Onnx__TensorProto *t, size_t i, float v)
{
    ck_assert_uint_ge(t->raw_data.len, (i + 1) * 4);
    memcpy(t->raw_data.data + i * 4, &v, 4);
}

/* Keep only channels keep[0..nkeep) of t along axis (float raw_data, row-major). */
static void keep_channels(Onnx__TensorProto *t, int axis, const int *keep, int nkeep)
{
    ck_assert_int_lt(axis, (int)t->n_dims);
    size_t outer = 1, inner = 1, c = (size_t)t->dims[axis];
    for (int i = 0; i < axis; i++)
        outer *= (size_t)t->dims[i];
    for (size_t i = (size_t)axis + 1; i < t->n_dims; i++)
        inner *= (size_t)t->dims[i];
    ck_assert_uint_eq(t->raw_data.len, outer * c * inner * 4);
    float *src = malloc(t->raw_data.len), *dst = malloc(t->raw_data.len);
    memcpy(src, t->raw_data.data, t->raw_data.len);
    size_t o = 0;
    for (size_t a = 0; a < outer; a++)
        for (int k = 0; k < nkeep; k++)
            for (size_t i = 0; i < inner; i++) /* [a, keep[k], i] */
                dst[o++] = src[(a * c + (size_t)keep[k]) * inner + i];
    memcpy(t->raw_data.data, dst, o * 4);
    t->raw_data.len = o * 4;
    t->dims[axis] = nkeep;
    free(src);
    free(dst);
}

static void add_metadata(struct rm_model *m, const char *key, const char *value)
{
    Onnx__ModelProto *p = m->proto;
    Onnx__StringStringEntryProto **arr = rm_arena_alloc(&m->arena, (p->n_metadata_props + 1) * sizeof *arr);
    Onnx__StringStringEntryProto *e = rm_arena_alloc(&m->arena, sizeof *e);
    ck_assert(arr && e);
    onnx__string_string_entry_proto__init(e);
    e->key = rm_arena_strdup(&m->arena, key);
    e->value = rm_arena_strdup(&m->arena, value);
    if (p->n_metadata_props)
        memcpy(arr, p->metadata_props, p->n_metadata_props * sizeof *arr);
    arr[p->n_metadata_props++] = e;
    p->metadata_props = arr;
}

/* Output tensor name of module path's node: its main node (leaf), or its first node. */
static const char *module_first_output(const struct rm_graph *g, const char *path, bool first_node)
{
    struct rm_tree *t = NULL;
    struct rm_error err;
    ck_assert_msg(rm_tree_build(&t, g, &err) == 0, "%s", err.msg);
    const struct rm_module *m = rm_tree_find(t, path);
    ck_assert_msg(m != NULL, "no module %s", path);
    int node = first_node ? m->nodes[0] : m->main_node;
    ck_assert_int_ge(node, 0);
    const char *name = g->values[g->nodes[node].outputs[0]].name;
    rm_tree_free(t);
    return name;
}

static int layer_index(const struct rm_diff_result *r, const char *path)
{
    for (size_t i = 0; i < r->n_layers; i++)
        if (!strcmp(r->layers[i].path, path))
            return (int)i;
    ck_abort_msg("no layer %s in the result", path);
    return -1;
}

static void diff(struct fixture *a, struct fixture *b, bool layers, struct rm_diff_result *r)
{
    struct rm_diff_options o;
    struct rm_error err;
    rm_error_clear(&err);
    rm_diff_options_default(&o);
    o.layers = layers;
    ck_assert_msg(rm_diff(a->m, b->m, &o, r, &err) == 0, "%s", err.msg);
}

/* ---- a model against itself --------------------------------------------------------------- */

static const char *const SELF[] = {"tiny_resnet.onnx", "mobilenet_tiny.onnx", "concat_net.onnx",
                                   "se_net.onnx", "shared_init.onnx"};

START_TEST(self_diff)
{
    struct fixture a, b;
    struct rm_diff_result r;
    open_model(&a, SELF[_i]);
    open_model(&b, SELF[_i]);
    for (int layers = 0; layers < 2; layers++) {
        diff(&a, &b, layers, &r);
        ck_assert_msg(r.pass, "%s", SELF[_i]);
        ck_assert_uint_eq(r.n_outputs, a.g.proto->n_output);
        for (size_t k = 0; k < r.n_outputs; k++) {
            const struct rm_diff_output *o = &r.outputs[k];
            ck_assert(o->s.pass && o->note == NULL);
            ck_assert(o->s.max_abs == 0 && o->s.max_rel == 0 && o->s.mean_abs == 0);
            ck_assert(o->s.cosine == 1.0);
            ck_assert(o->s.n > 0 && o->s.n_fail == 0);
            if (o->classes)
                ck_assert(o->top1 == 1.0);
            if (o->classes > 5)
                ck_assert(o->top5 == 1.0);
        }
        ck_assert_int_eq(r.first_divergent, -1);
        if (layers) {
            ck_assert_uint_gt(r.n_layers, 5);
            for (size_t i = 0; i < r.n_layers; i++) {
                const struct rm_diff_layer *l = &r.layers[i];
                ck_assert_msg(l->comparable, "%s: %s", l->path, l->note ? l->note : "");
                ck_assert_msg(l->s.max_abs == 0 && l->s.cosine == 1.0 && l->s.pass, "%s", l->path);
                ck_assert(!l->aligned);
            }
        } else {
            ck_assert_uint_eq(r.n_layers, 0);
        }
        rm_diff_result_free(&r);
    }
    close_model(&a);
    close_model(&b);
}
END_TEST

/* ---- one conv perturbed ----------------------------------------------------------------- */

START_TEST(perturbed_conv)
{
    struct fixture a, b;
    struct rm_diff_result r;
    open_model(&a, "tiny_resnet.onnx");
    open_model(&b, "tiny_resnet.onnx");
    /* the test's own edit: layer1.1.conv2's weights (parameter name kept by this export) */
    Onnx__TensorProto *w = init_named(b.m, "layer1.1.conv2.weight");
    for (size_t i = 0; i < 9; i++)
        set_f(w, i, get_f(w, i) + 0.25f);
    diff(&a, &b, false, &r);
    ck_assert(!r.pass);
    ck_assert(!r.outputs[0].s.pass && r.outputs[0].s.max_abs > 1e-3);
    ck_assert(r.outputs[0].s.cosine < 1.0 && r.outputs[0].s.cosine > 0.5);
    ck_assert_int_eq(r.outputs[0].classes, 10);
    ck_assert(r.outputs[0].top1 >= 0 && r.outputs[0].top1 <= 1);
    rm_diff_result_free(&r);

    diff(&a, &b, true, &r);
    ck_assert(!r.pass);
    ck_assert_int_ge(r.first_divergent, 0);
    ck_assert_str_eq(r.layers[r.first_divergent].path, "layer1.1.conv2");
    ck_assert_str_eq(r.layers[r.first_divergent].type, "Conv2d");
    /* everything computed before it is untouched, everything after it that sees it differs */
    for (int i = 0; i < r.first_divergent; i++)
        ck_assert_msg(r.layers[i].s.max_abs == 0, "%s", r.layers[i].path);
    ck_assert(!r.layers[layer_index(&r, "layer1.1.bn2")].s.pass);
    ck_assert(!r.layers[layer_index(&r, "fc")].s.pass);
    /* modules are in topological order: the stem before layer1 before layer2 before fc */
    ck_assert_int_lt(layer_index(&r, "conv1"), layer_index(&r, "layer1.0.conv1"));
    ck_assert_int_lt(layer_index(&r, "layer1.1.conv2"), layer_index(&r, "layer1.1"));
    ck_assert_int_lt(layer_index(&r, "layer1"), layer_index(&r, "layer2.0.conv1"));
    ck_assert_int_lt(layer_index(&r, "avgpool"), layer_index(&r, "fc"));
    rm_diff_result_free(&r);
    close_model(&a);
    close_model(&b);
}
END_TEST

/* ---- channel alignment after a prune -------------------------------------------------------- */

static const int KEEP[] = {0, 1, 3, 4, 6, 7}; /* channels 2 and 5 of layer1.0.conv1 go */
#define N_KEEP 6

/* Make layer1.0.conv1's channels 2 and 5 carry nothing: zero filters, and bn1 mapping 0
 * to 0 there (bias and running mean 0), so relu passes 0 and conv2 reads 0. */
static void zero_channels(struct rm_model *m)
{
    Onnx__TensorProto *w = init_named(m, "layer1.0.conv1.weight");
    static const int gone[] = {2, 5};
    for (int g = 0; g < 2; g++) {
        for (size_t i = 0; i < 8 * 9; i++) /* weight [8, 8, 3, 3]: filter gone[g] */
            set_f(w, (size_t)gone[g] * 72 + i, 0.0f);
        set_f(init_named(m, "layer1.0.bn1.bias"), (size_t)gone[g], 0.0f);
        set_f(init_named(m, "layer1.0.bn1.running_mean"), (size_t)gone[g], 0.0f);
    }
}

/* a: zero_channels applied; b: the same model with those channels removed from conv1's
 * outputs, bn1 and conv2's inputs, and (when map is not NULL) the channel maps of the
 * three tensors that shrank. */
static void make_pruned_pair(struct fixture *a, struct fixture *b, const char *map)
{
    static const char *const bn[] = {"weight", "bias", "running_mean", "running_var"};
    char name[128];
    open_model(a, "tiny_resnet.onnx");
    open_model(b, "tiny_resnet.onnx");
    zero_channels(a->m);
    zero_channels(b->m);
    keep_channels(init_named(b->m, "layer1.0.conv1.weight"), 0, KEEP, N_KEEP);
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "layer1.0.bn1.%s", bn[i]);
        keep_channels(init_named(b->m, name), 0, KEEP, N_KEEP);
    }
    keep_channels(init_named(b->m, "layer1.0.conv2.weight"), 1, KEEP, N_KEEP);
    if (map) {
        const char *tensors[3] = {module_first_output(&b->g, "layer1.0.conv1", false),
                                  module_first_output(&b->g, "layer1.0.bn1", false),
                                  module_first_output(&b->g, "layer1.0.relu", true)};
        for (int i = 0; i < 3; i++) {
            char key[512];
            snprintf(key, sizeof key, "%s%s", RM_CHANNEL_MAP_KEY, tensors[i]);
            add_metadata(b->m, key, map);
        }
    }
    reindex(a);
    reindex(b);
}

START_TEST(pruned_aligned)
{
    struct fixture a, b;
    struct rm_diff_result r;
    make_pruned_pair(&a, &b, "0,1,3,4,6,7");
    diff(&a, &b, true, &r);
    ck_assert(r.pass);
    ck_assert_int_eq(r.first_divergent, -1);
    for (size_t i = 0; i < r.n_layers; i++)
        ck_assert_msg(r.layers[i].comparable && r.layers[i].s.pass, "%s: %s", r.layers[i].path,
                      r.layers[i].note ? r.layers[i].note : "fails");
    const char *aligned[] = {"layer1.0.conv1", "layer1.0.bn1"};
    for (int k = 0; k < 2; k++) {
        const struct rm_diff_layer *l = &r.layers[layer_index(&r, aligned[k])];
        ck_assert_msg(l->aligned, "%s", aligned[k]);
        ck_assert_int_eq(l->s.n, 6 * 32 * 32 / 4); /* [1, 6, 16, 16] compared of [1, 8, 16, 16] */
        ck_assert(l->s.max_abs == 0); /* same weights, same arithmetic on kept channels */
    }
    /* layer1.0.relu's output is its second call (after the residual Add): 8 channels again */
    ck_assert(!r.layers[layer_index(&r, "layer1.0.relu")].aligned);
    ck_assert(r.outputs[0].s.pass && r.outputs[0].s.max_abs < 1e-5);
    rm_diff_result_free(&r);
    /* the other way round: the map is on A's side now */
    diff(&b, &a, true, &r);
    ck_assert(r.pass && r.first_divergent == -1);
    ck_assert(r.layers[layer_index(&r, "layer1.0.conv1")].aligned);
    ck_assert(r.layers[layer_index(&r, "layer1.0.conv1")].s.n == 6 * 16 * 16);
    rm_diff_result_free(&r);
    /* the edited model against itself: equal shapes are compared directly, maps unused */
    diff(&b, &b, true, &r);
    ck_assert(r.pass && r.first_divergent == -1);
    for (size_t i = 0; i < r.n_layers; i++)
        ck_assert_msg(r.layers[i].comparable && !r.layers[i].aligned && r.layers[i].s.max_abs == 0, "%s",
                      r.layers[i].path);
    rm_diff_result_free(&r);
    close_model(&a);
    close_model(&b);
}
END_TEST

START_TEST(pruned_without_map)
{
    struct fixture a, b;
    struct rm_diff_result r;
    make_pruned_pair(&a, &b, NULL);
    diff(&a, &b, true, &r);
    ck_assert(r.pass); /* not comparable is not a failure */
    ck_assert_int_eq(r.first_divergent, -1);
    const struct rm_diff_layer *l = &r.layers[layer_index(&r, "layer1.0.conv1")];
    ck_assert(!l->comparable && l->note && strstr(l->note, "no channel map"));
    ck_assert(!r.layers[layer_index(&r, "layer1.0.bn1")].comparable);
    ck_assert(r.layers[layer_index(&r, "layer1.0.conv2")].comparable);
    rm_diff_result_free(&r);
    close_model(&a);
    close_model(&b);
}
END_TEST

START_TEST(pruned_wrong_map)
{
    struct fixture a, b;
    struct rm_diff_result r;
    /* a map that pairs the wrong channels: the conv output diverges right there */
    make_pruned_pair(&a, &b, "0,1,2,3,4,5");
    diff(&a, &b, true, &r);
    ck_assert_int_ge(r.first_divergent, 0);
    ck_assert_str_eq(r.layers[r.first_divergent].path, "layer1.0.conv1");
    ck_assert(r.pass); /* the graph output itself is still right */
    rm_diff_result_free(&r);
    /* a map of the wrong length makes the module not comparable, not a crash */
    close_model(&a);
    close_model(&b);
    make_pruned_pair(&a, &b, "0,1,3");
    diff(&a, &b, true, &r);
    const struct rm_diff_layer *l = &r.layers[layer_index(&r, "layer1.0.conv1")];
    ck_assert(!l->comparable && l->note && strstr(l->note, "channel map"));
    rm_diff_result_free(&r);
    close_model(&a);
    close_model(&b);
}
END_TEST

/* ---- the pieces, on hand-computed numbers --------------------------------------------------- */

START_TEST(channel_map_parse)
{
    struct rm_error err;
    int64_t *map, len;
    ck_assert_int_eq(rm_channel_map_parse("0,1,2,5,7,-", &map, &len, &err), 0);
    int64_t want[] = {0, 1, 2, 5, 7, -1};
    ck_assert_int_eq(len, 6);
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(map[i], want[i]);
    free(map);
    ck_assert_int_eq(rm_channel_map_parse("3", &map, &len, &err), 0);
    ck_assert_int_eq(len, 1);
    ck_assert_int_eq(map[0], 3);
    free(map);
    const char *bad[] = {"", "1,,2", "a", "1,2,", "-1", "1;2", "0x1", "--", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(rm_channel_map_parse(bad[i], &map, &len, &err) == RM_EFORMAT, "'%s'", bad[i]);
        ck_assert_ptr_null(map);
    }
}
END_TEST

static struct rm_host_tensor host(float *data, int rank, const int64_t *dims)
{
    struct rm_host_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t.rank = rank;
    t.numel = 1;
    for (int i = 0; i < rank; i++) {
        t.dims[i] = dims[i];
        t.numel *= dims[i];
    }
    t.data = data;
    return t;
}

START_TEST(tensor_stats)
{
    struct rm_error err;
    struct rm_diff_stats s;
    int64_t d4[] = {4};
    float x[] = {1, 2, 0, -4}, y[] = {1, 2.5f, 0, -4};
    struct rm_host_tensor a = host(x, 1, d4), b = host(y, 1, d4);
    ck_assert_int_eq(rm_diff_tensors(&a, &b, NULL, 0, false, 1e-5, 1e-4, &s, &err), 0);
    /* by hand: one element off by 0.5 of max(2, 2.5) = 2.5 */
    ck_assert(s.max_abs == 0.5 && fabs(s.max_rel - 0.2) < 1e-12 && s.mean_abs == 0.125);
    ck_assert(fabs(s.cosine - 22.0 / (sqrt(21.0) * sqrt(23.25))) < 1e-12);
    ck_assert(!s.pass && s.n_fail == 1 && s.n == 4);
    /* numpy.allclose(y, x, rtol, atol), x the reference: |y - x| <= atol + rtol * |x|;
     * numpy says True for atol 0.5, False for rtol 0.2 (0.5 > 0.4), True for rtol 0.25
     * and False for atol 0.3 with rtol 0.05 (0.5 > 0.3 + 0.1), True with rtol 0.1 */
    ck_assert_int_eq(rm_diff_tensors(&a, &b, NULL, 0, false, 0.5, 0, &s, &err), 0);
    ck_assert(s.pass);
    ck_assert_int_eq(rm_diff_tensors(&a, &b, NULL, 0, false, 0, 0.2, &s, &err), 0);
    ck_assert(!s.pass);
    ck_assert_int_eq(rm_diff_tensors(&a, &b, NULL, 0, false, 0, 0.25, &s, &err), 0);
    ck_assert(s.pass);
    ck_assert_int_eq(rm_diff_tensors(&a, &b, NULL, 0, false, 0.3, 0.05, &s, &err), 0);
    ck_assert(!s.pass);
    ck_assert_int_eq(rm_diff_tensors(&a, &b, NULL, 0, false, 0.3, 0.1, &s, &err), 0);
    ck_assert(s.pass);
    /* NaN against NaN is equal, NaN against a number fails */
    float n1[] = {NAN, 1, 2, 3}, n2[] = {NAN, 1, 2, NAN};
    a = host(n1, 1, d4);
    b = host(n2, 1, d4);
    ck_assert_int_eq(rm_diff_tensors(&a, &a, NULL, 0, false, 1e-5, 1e-4, &s, &err), 0);
    ck_assert(s.pass && s.max_abs == 0);
    ck_assert_int_eq(rm_diff_tensors(&a, &b, NULL, 0, false, 1e-5, 1e-4, &s, &err), 0);
    ck_assert(!s.pass && isinf(s.max_abs) && s.n_fail == 1);
    /* zero tensors: cosine 1 against itself, 0 against anything else */
    float z[] = {0, 0, 0, 0};
    a = host(z, 1, d4);
    ck_assert_int_eq(rm_diff_tensors(&a, &a, NULL, 0, false, 1e-5, 1e-4, &s, &err), 0);
    ck_assert(s.cosine == 1.0);
    b = host(x, 1, d4);
    ck_assert_int_eq(rm_diff_tensors(&a, &b, NULL, 0, false, 1e-5, 1e-4, &s, &err), 0);
    ck_assert(s.cosine == 0.0 && s.max_rel == 1.0);
    /* shapes differ without a map */
    int64_t d3[] = {3};
    b = host(x, 1, d3);
    ck_assert_int_eq(rm_diff_tensors(&a, &b, NULL, 0, false, 1e-5, 1e-4, &s, &err), RM_EFORMAT);
    ck_assert(strstr(err.msg, "[4] in A, [3] in B"));
}
END_TEST

START_TEST(tensor_map)
{
    struct rm_error err;
    struct rm_diff_stats s;
    /* A [1, 3, 2]: channels 10 11 | 20 21 | 30 31; B [1, 3, 2] holds A's channels 2, -, 0 */
    float xa[] = {10, 11, 20, 21, 30, 31}, xb[] = {30, 31, 99, 99, 10, 11};
    int64_t da[] = {1, 3, 2}, db[] = {1, 3, 2};
    struct rm_host_tensor a = host(xa, 3, da), b = host(xb, 3, db);
    int64_t map[] = {2, -1, 0};
    ck_assert_int_eq(rm_diff_tensors(&a, &b, map, 3, true, 1e-5, 1e-4, &s, &err), 0);
    ck_assert(s.pass && s.max_abs == 0 && s.n == 4);
    /* the map on A's side: A's channel i is B's map[i] */
    ck_assert_int_eq(rm_diff_tensors(&b, &a, map, 3, false, 1e-5, 1e-4, &s, &err), 0);
    ck_assert(s.pass && s.n == 4);
    /* B pruned to 2 channels [1, 2, 2] = A's channels 0 and 2 */
    float xp[] = {10, 11, 30, 31.5f};
    int64_t dp[] = {1, 2, 2}, mp[] = {0, 2};
    b = host(xp, 3, dp);
    ck_assert_int_eq(rm_diff_tensors(&a, &b, mp, 2, true, 1e-5, 1e-4, &s, &err), 0);
    ck_assert(!s.pass && s.max_abs == 0.5 && s.n == 4 && s.n_fail == 1);
    /* a map entry past A's channels, or of the wrong length, does not fit */
    int64_t bad[] = {0, 3};
    ck_assert_int_eq(rm_diff_tensors(&a, &b, bad, 2, true, 1e-5, 1e-4, &s, &err), RM_EFORMAT);
    ck_assert_int_eq(rm_diff_tensors(&a, &b, mp, 1, true, 1e-5, 1e-4, &s, &err), RM_EFORMAT);
}
END_TEST

START_TEST(inputs_must_agree)
{
    struct fixture a, b;
    struct rm_diff_result r;
    struct rm_diff_options o;
    struct rm_error err;
    rm_diff_options_default(&o);
    open_model(&a, "tiny_resnet.onnx");
    open_model(&b, "resnet18.onnx");
    ck_assert_int_eq(rm_diff(a.m, b.m, &o, &r, &err), RM_EUSAGE);
    ck_assert_msg(strstr(err.msg, "input 'input'") && strstr(err.msg, "[1,3,224,224]"), "%s", err.msg);
    rm_diff_result_free(&r);
    close_model(&b);
    /* a renamed input */
    open_model(&b, "tiny_resnet.onnx");
    b.m->proto->graph->input[0]->name = rm_arena_strdup(&b.m->arena, "x");
    b.m->proto->graph->node[0]->input[0] = b.m->proto->graph->input[0]->name;
    reindex(&b);
    ck_assert_int_eq(rm_diff(a.m, b.m, &o, &r, &err), RM_EUSAGE);
    ck_assert_msg(strstr(err.msg, "'input'"), "%s", err.msg);
    rm_diff_result_free(&r);
    close_model(&a);
    close_model(&b);
}
END_TEST

/* ---- JSON and the HTML report -------------------------------------------------------------- */

START_TEST(json_document)
{
    struct fixture a, b;
    struct rm_diff_result r;
    open_model(&a, "tiny_resnet.onnx");
    open_model(&b, "tiny_resnet.onnx");
    Onnx__TensorProto *w = init_named(b.m, "layer1.1.conv2.weight");
    set_f(w, 0, get_f(w, 0) + 1.0f);
    diff(&a, &b, true, &r);
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    rm_diff_write_json(&r, f);
    fclose(f);
    struct jv *doc = jparse_doc(text);
    ck_assert_int_eq(jget(doc, "pass")->type, J_BOOL);
    ck_assert(jget(doc, "pass")->num == 0);
    /* the default atol is scaled per output: null at the top, the value used per output */
    ck_assert(jget(doc, "atol")->type == J_NULL && jget(doc, "atol_scale")->num == 1e-5);
    ck_assert(jget(doc, "rtol")->num == 1e-4 && jget(doc, "min_cosine")->num == 0.9999);
    ck_assert(jget(doc, "samples")->num == 1);
    ck_assert_str_eq(jget(doc, "first_divergent")->str, "layer1.1.conv2");
    const struct jv *outs = jget(doc, "outputs");
    ck_assert_int_eq(outs->type, J_ARR);
    ck_assert_uint_eq(outs->n, 1);
    const struct jv *o = outs->items[0];
    ck_assert_str_eq(jget(o, "name")->str, "output");
    ck_assert(jget(o, "max_abs")->type == J_NUM && jget(o, "max_abs")->num > 0);
    ck_assert(jget(o, "max_rel")->type == J_NUM && jget(o, "mean_abs")->type == J_NUM);
    ck_assert(jget(o, "cosine")->type == J_NUM && jget(o, "top1")->type == J_NUM);
    ck_assert(jget(o, "top5")->type == J_NUM);
    ck_assert(jget(o, "scale")->num > 0 && fabs(jget(o, "atol")->num - 1e-5 * jget(o, "scale")->num) < 1e-12);
    ck_assert(jget(o, "pass")->type == J_BOOL && jget(o, "pass")->num == 0);
    const struct jv *layers = jget(doc, "layers");
    ck_assert_uint_eq(layers->n, r.n_layers);
    for (size_t i = 0; i < layers->n; i++) {
        const struct jv *l = layers->items[i];
        ck_assert_str_eq(jget(l, "path")->str, r.layers[i].path);
        ck_assert_int_eq(jget(l, "type")->type, J_STR);
        ck_assert_int_eq(jget(l, "max_abs")->type, J_NUM);
        ck_assert_int_eq(jget(l, "max_rel")->type, J_NUM);
        ck_assert_int_eq(jget(l, "cosine")->type, J_NUM);
        ck_assert_int_eq(jget(l, "pass")->type, J_BOOL);
        ck_assert(jget(l, "comparable")->num == 1);
    }
    jfree(doc);
    free(text);
    rm_diff_result_free(&r);
    /* without --layers: an empty layers array and a null first_divergent */
    diff(&a, &a, false, &r);
    f = open_memstream(&text, &size);
    rm_diff_write_json(&r, f);
    fclose(f);
    doc = jparse_doc(text);
    ck_assert(jget(doc, "pass")->num == 1);
    ck_assert_uint_eq(jget(doc, "layers")->n, 0);
    ck_assert_int_eq(jget(doc, "first_divergent")->type, J_NULL);
    jfree(doc);
    free(text);
    rm_diff_result_free(&r);
    close_model(&a);
    close_model(&b);
}
END_TEST

static char *tmpdir_make(void)
{
    char *d = strdup("/tmp/rm_diff_test.XXXXXX");
    ck_assert(mkdtemp(d) != NULL);
    return d;
}

static void rmtree(const char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void check_self_contained(const char *html)
{
    ck_assert(strncmp(html, "<!DOCTYPE html>", 15) == 0);
    ck_assert(strstr(html, "</html>") != NULL);
    ck_assert_msg(!strstr(html, "http"), "the report refers to something on the network");
    ck_assert(!strstr(html, "<script") && !strstr(html, "<link") && !strstr(html, "<img") &&
              !strstr(html, "<iframe") && !strstr(html, "src=") && !strstr(html, "url(") &&
              !strstr(html, "@import") && !strstr(html, "href="));
    ck_assert(strstr(html, "<style>") && strstr(html, "@media print"));
}

START_TEST(html_report)
{
    struct fixture a, b;
    struct rm_diff_result r;
    struct rm_error err;
    char *dir = tmpdir_make(), path[1200];
    open_model(&a, "tiny_resnet.onnx");
    open_model(&b, "tiny_resnet.onnx");
    Onnx__TensorProto *w = init_named(b.m, "layer1.1.conv2.weight");
    set_f(w, 0, get_f(w, 0) + 1.0f);
    diff(&a, &b, true, &r);
    struct rm_report_info info = {"a <&> model.onnx", "b.onnx", "seeded random normal (seed 0)"};
    snprintf(path, sizeof path, "%s/report.html", dir);
    ck_assert_msg(rm_diff_write_report(&r, &info, path, &err) == 0, "%s", err.msg);
    char *html = rm_test_read_file(path, NULL);
    check_self_contained(html);
    ck_assert(strstr(html, "<svg") && strstr(html, "</svg>"));
    ck_assert(strstr(html, "FAIL"));
    ck_assert(strstr(html, "first divergent: layer1.1.conv2"));
    ck_assert(strstr(html, "a &lt;&amp;&gt; model.onnx")); /* names are escaped */
    /* one point (a <g> with a title) per module in each chart: max abs, 1 - cosine */
    size_t groups = 0;
    for (const char *p = html; (p = strstr(p, "<g><title>")); p++)
        groups++;
    ck_assert_uint_eq(groups, 2 * r.n_layers);
    ck_assert(strstr(html, "cosine floor"));
    /* the first divergent module's channels: weight 0 belongs to output channel 0 alone */
    ck_assert_int_eq(r.channels.layer, r.first_divergent);
    char moved[64];
    snprintf(moved, sizeof moved, "1 of %lld channels differ", (long long)r.channels.n);
    ck_assert_int_eq(r.channels.n, 8); /* layer1.1.conv2 of tiny_resnet */
    ck_assert(strstr(html, "Channels of the first divergent module") && strstr(html, moved));
    ck_assert(r.channels.max_abs[0] > 0);
    for (int64_t k = 1; k < r.channels.n; k++)
        ck_assert(r.channels.max_abs[k] == 0);
    free(html);
    rm_diff_result_free(&r);
    /* a passing diff without layers: verdict and output table, no chart; the edit
     * history of a model is shown */
    int folded = 0;
    ck_assert_int_eq(rm_fold_bn(b.m, &folded, NULL, &err), 0);
    ck_assert_int_gt(folded, 0);
    ck_assert_ptr_nonnull(strstr(rm_model_history(b.m), "fold-bn ("));
    rm_model *c = NULL;
    ck_assert_int_eq(rm_model_clone(&c, a.m, &err), 0);
    ck_assert_int_eq(rm_fold_bn(c, &folded, NULL, &err), 0);
    struct rm_diff_options o;
    rm_diff_options_default(&o);
    ck_assert_int_eq(rm_diff(a.m, c, &o, &r, &err), 0);
    ck_assert(r.pass); /* folding keeps the function */
    ck_assert_msg(rm_diff_write_report(&r, NULL, path, &err) == 0, "%s", err.msg);
    html = rm_test_read_file(path, NULL);
    ck_assert(strstr(html, "<h2>Edits</h2>") && strstr(html, "BatchNormalization folded"));
    free(html);
    rm_diff_result_free(&r);
    rm_model_free(c);
    diff(&a, &a, false, &r);
    ck_assert_msg(rm_diff_write_report(&r, NULL, path, &err) == 0, "%s", err.msg);
    html = rm_test_read_file(path, NULL);
    check_self_contained(html);
    ck_assert(strstr(html, "PASS") && !strstr(html, "<svg"));
    free(html);
    /* atomic: a folder that does not exist fails and leaves nothing */
    char bad[1300];
    snprintf(bad, sizeof bad, "%s/missing/report.html", dir);
    ck_assert_int_eq(rm_diff_write_report(&r, NULL, bad, &err), RM_EIO);
    rm_diff_result_free(&r);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 1", dir);
    ck_assert_int_eq(system(cmd), 0); /* report.html only, no temporary left */
    close_model(&a);
    close_model(&b);
    rmtree(dir);
    free(dir);
}
END_TEST

/* ---- the command ------------------------------------------------------------------------------ */

START_TEST(cli_diff)
{
    if (!getenv("RM_REMODEL"))
        return; /* run from meson, which passes the binary */
    struct rm_error err;
    char *dir = tmpdir_make(), tiny[1200], big[1200], pert[1200], pa[1200], pb[1200], rep[1200], in[1200],
         *out, *e;
    snprintf(tiny, sizeof tiny, "%s/tiny_resnet.onnx", rm_test_testdata());
    snprintf(big, sizeof big, "%s/resnet18.onnx", rm_test_testdata());
    snprintf(in, sizeof in, "input=%s/tiny_resnet/test_data_set_0/input_0.pb", rm_test_testdata());
    snprintf(pert, sizeof pert, "%s/perturbed.onnx", dir);
    snprintf(pa, sizeof pa, "%s/a.onnx", dir);
    snprintf(pb, sizeof pb, "%s/b.onnx", dir);
    snprintf(rep, sizeof rep, "%s/report.html", dir);

    /* the model against itself, on PyTorch's reference input: exit 0 */
    ck_assert_int_eq(rm_test_run_remodel((const char *[]){"diff", tiny, tiny, "-i", in, NULL}, &out, &e), 0);
    ck_assert_msg(strstr(out, "PASS") && !*e, "%s%s", out, e);
    free(out);
    free(e);

    /* perturbed copy: exit 1, JSON names the conv, the report is written */
    struct fixture b;
    open_model(&b, "tiny_resnet.onnx");
    Onnx__TensorProto *w = init_named(b.m, "layer1.1.conv2.weight");
    set_f(w, 4, get_f(w, 4) - 0.5f);
    ck_assert_msg(rm_model_save(b.m, pert, NULL, &err) == 0, "%s", err.msg);
    close_model(&b);
    ck_assert_int_eq(rm_test_run_remodel((const char *[]){"diff", tiny, pert, "--layers", "--json",
                                                          "--report", rep, NULL}, &out, &e), 1);
    ck_assert_str_eq(e, "");
    struct jv *doc = jparse_doc(out);
    ck_assert(jget(doc, "pass")->num == 0);
    ck_assert_str_eq(jget(doc, "first_divergent")->str, "layer1.1.conv2");
    jfree(doc);
    free(out);
    free(e);
    char *html = rm_test_read_file(rep, NULL);
    check_self_contained(html);
    ck_assert(strstr(html, "<svg"));
    free(html);
    /* looser tolerances accept the same pair */
    ck_assert_int_eq(rm_test_run_remodel((const char *[]){"diff", tiny, pert, "--atol", "100", NULL},
                                         &out, &e), 0);
    free(out);
    free(e);

    /* the pruned pair through files: metadata survives a save and aligns the channels */
    struct fixture fa, fb;
    make_pruned_pair(&fa, &fb, "0,1,3,4,6,7");
    ck_assert_msg(rm_model_save(fa.m, pa, NULL, &err) == 0, "%s", err.msg);
    ck_assert_msg(rm_model_save(fb.m, pb, NULL, &err) == 0, "%s", err.msg);
    close_model(&fa);
    close_model(&fb);
    ck_assert_int_eq(rm_test_run_remodel((const char *[]){"diff", pa, pb, "--layers", NULL}, &out, &e), 0);
    ck_assert_msg(strstr(out, "layer1.0.conv1") && strstr(out, "(channel-aligned)"), "%s", out);
    free(out);
    free(e);

    /* bad input: exit 2 with one line on stderr */
    const char *const *bad[] = {
        (const char *[]){"diff", tiny, big, NULL},                       /* inputs differ */
        (const char *[]){"diff", tiny, "/nonexistent/x.onnx", NULL},     /* unreadable */
        (const char *[]){"diff", tiny, NULL},                            /* one model */
        (const char *[]){"diff", tiny, tiny, "-i", "input", NULL},       /* not NAME=FILE */
        (const char *[]){"diff", tiny, tiny, "-i", "input=/nonexistent.pb", NULL},
        (const char *[]){"diff", tiny, tiny, "-i", "nosuch=", NULL},
        (const char *[]){"diff", tiny, tiny, "--atol", "-1", NULL},
        (const char *[]){"diff", tiny, tiny, "--rtol", "x", NULL},
        (const char *[]){"diff", tiny, tiny, "--report", "/nonexistent/r.html", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(rm_test_run_remodel(bad[i], &out, &e) == 2, "case %zu", i);
        ck_assert_msg(strstr(e, "remodel") == e && strchr(e, '\n') == e + strlen(e) - 1, "case %zu: %s", i, e);
        free(out);
        free(e);
    }
    /* a wrong-shaped input file: exit 2 naming the input */
    snprintf(in, sizeof in, "input=%s/mobilenet_tiny/test_data_set_0/output_0.pb", rm_test_testdata());
    ck_assert_int_eq(rm_test_run_remodel((const char *[]){"diff", tiny, tiny, "-i", in, NULL}, &out, &e), 2);
    ck_assert_msg(strstr(e, "input 'input'"), "%s", e);
    free(out);
    free(e);
    rmtree(dir);
    free(dir);
}
END_TEST


/* ---- the verdict at any scale, many samples, replayable inputs ---------------------------- */

static void scale_tensor(Onnx__TensorProto *t, float k)
{
    for (size_t i = 0; i < t->raw_data.len / 4; i++)
        set_f(t, i, get_f(t, i) * k);
}

START_TEST(small_outputs_fail)
{
    /* outputs about 1e-9: an absolute atol of 1e-5 passes whatever B computes; the
     * scaled default and the cosine floor do not */
    struct fixture a, b;
    struct rm_diff_result r;
    struct rm_error err;
    open_model(&a, "tiny_resnet.onnx");
    open_model(&b, "tiny_resnet.onnx");
    struct fixture *both[] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        scale_tensor(init_named(both[i]->m, "fc.weight"), 1e-9f);
        scale_tensor(init_named(both[i]->m, "fc.bias"), 1e-9f);
    }
    scale_tensor(init_named(b.m, "layer1.0.conv1.weight"), -1.0f); /* a different function */
    reindex(&a);
    reindex(&b);
    diff(&a, &b, false, &r);
    ck_assert(!r.pass);
    ck_assert(r.outputs[0].scale < 1e-7 && r.outputs[0].s.max_abs < 1e-5);
    ck_assert(r.outputs[0].atol < 1e-12);
    rm_diff_result_free(&r);
    /* only an explicit loose tolerance passes it: atol, no cosine floor, no top-1 */
    struct rm_diff_options o;
    rm_diff_options_default(&o);
    o.atol = 1e-5;
    ck_assert_int_eq(rm_diff(a.m, b.m, &o, &r, &err), 0);
    ck_assert(!r.pass); /* the cosine floor still holds */
    rm_diff_result_free(&r);
    o.min_cosine = -1;
    o.min_top1 = 0;
    ck_assert_int_eq(rm_diff(a.m, b.m, &o, &r, &err), 0);
    ck_assert(r.pass);
    rm_diff_result_free(&r);
    /* the same model still passes at that scale */
    diff(&a, &a, false, &r);
    ck_assert(r.pass);
    rm_diff_result_free(&r);
    close_model(&a);
    close_model(&b);
}
END_TEST

/* Every output statistic of r and q equal, bit for bit. */
static void same_result(const struct rm_diff_result *r, const struct rm_diff_result *q)
{
    ck_assert_uint_eq(r->n_outputs, q->n_outputs);
    ck_assert_int_eq(r->pass, q->pass);
    for (size_t k = 0; k < r->n_outputs; k++) {
        const struct rm_diff_output *x = &r->outputs[k], *y = &q->outputs[k];
        ck_assert(memcmp(&x->s, &y->s, sizeof x->s) == 0);
        ck_assert(x->scale == y->scale && x->atol == y->atol);
        ck_assert(memcmp(&x->top1, &y->top1, sizeof x->top1) == 0);
    }
}

START_TEST(samples_saved_and_replayed)
{
    struct fixture a, b;
    struct rm_diff_result r, q, one;
    struct rm_error err;
    open_model(&a, "tiny_resnet.onnx");
    open_model(&b, "tiny_resnet.onnx");
    Onnx__TensorProto *w = init_named(b.m, "layer1.1.conv2.weight");
    set_f(w, 0, get_f(w, 0) + 0.5f);
    reindex(&b);
    char dir[] = "/tmp/rm_sets_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char sets[64];
    snprintf(sets, sizeof sets, "%s/inputs", dir);
    struct rm_diff_options o;
    rm_diff_options_default(&o);
    o.samples = 3;
    o.seed = 7;
    o.save_inputs = sets;
    ck_assert_msg(rm_diff(a.m, b.m, &o, &r, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(r.samples, 3);
    /* the worst sample: no better than sample 0 alone (seed 7) */
    rm_diff_options_default(&o);
    o.seed = 7;
    ck_assert_int_eq(rm_diff(a.m, b.m, &o, &one, &err), 0);
    ck_assert(r.outputs[0].s.max_abs >= one.outputs[0].s.max_abs);
    ck_assert(r.outputs[0].s.cosine <= one.outputs[0].s.cosine);
    ck_assert(r.outputs[0].s.n == 3 * one.outputs[0].s.n);
    /* replayed from the folder: the same verdict, bit for bit */
    rm_input_sets *in = NULL;
    ck_assert_msg(rm_input_sets_open(&in, a.m, sets, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(rm_input_sets_count(in), 3);
    ck_assert_uint_eq(rm_input_sets_n_inputs(in), 1);
    ck_assert_str_eq(rm_input_sets_input_name(in, 0), "input");
    rm_diff_options_default(&o);
    o.seed = 12345; /* unused: every input is given */
    o.folder = in;
    ck_assert_msg(rm_diff(a.m, b.m, &o, &q, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(q.samples, 3);
    same_result(&r, &q);
    /* a folder that already holds sets is refused before anything runs */
    rm_diff_options_default(&o);
    o.save_inputs = sets;
    struct rm_diff_result z;
    ck_assert_int_eq(rm_diff(a.m, b.m, &o, &z, &err), RM_EUSAGE);
    ck_assert_msg(strstr(err.msg, "not empty"), "%s", err.msg);
    rm_diff_result_free(&z);
    rm_input_sets_free(in);
    rm_diff_result_free(&r);
    rm_diff_result_free(&q);
    rm_diff_result_free(&one);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    close_model(&a);
    close_model(&b);
}
END_TEST

/* Without --layers A runs alone before B's plan is built (its outputs kept): the very
 * numbers of the two plans side by side (REMODEL_DIFF_LOCKSTEP=1), the same inputs
 * saved, and what both were fed recorded in r.inputs (the file's declared dims). */
START_TEST(one_after_the_other)
{
    struct fixture a, b;
    struct rm_diff_result r, q;
    struct rm_error err;
    open_model(&a, "tiny_resnet.onnx");
    open_model(&b, "tiny_resnet.onnx");
    Onnx__TensorProto *w = init_named(b.m, "layer1.1.conv2.weight");
    set_f(w, 0, get_f(w, 0) + 0.5f);
    reindex(&b);
    char dir[] = "/tmp/rm_seq_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char s1[64], s2[64], cmd[256];
    snprintf(s1, sizeof s1, "%s/one", dir);
    snprintf(s2, sizeof s2, "%s/two", dir);
    struct rm_diff_options o;
    rm_diff_options_default(&o);
    o.samples = 4;
    o.seed = 3;
    o.save_inputs = s1;
    ck_assert_msg(rm_diff(a.m, b.m, &o, &r, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(setenv("REMODEL_DIFF_LOCKSTEP", "1", 1), 0);
    o.save_inputs = s2;
    int rc = rm_diff(a.m, b.m, &o, &q, &err);
    unsetenv("REMODEL_DIFF_LOCKSTEP");
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert(!r.pass && r.outputs[0].s.max_abs > 0);
    same_result(&r, &q);
    ck_assert_int_eq(r.outputs[0].rank, q.outputs[0].rank);
    ck_assert(memcmp(r.outputs[0].dims, q.outputs[0].dims, sizeof r.outputs[0].dims) == 0);
    ck_assert(r.outputs[0].top5 == q.outputs[0].top5 || (isnan(r.outputs[0].top5) && isnan(q.outputs[0].top5)));
    snprintf(cmd, sizeof cmd, "diff -r '%s' '%s' >/dev/null", s1, s2);
    ck_assert_int_eq(system(cmd), 0);
    /* the inputs fed: the graph input as the file declares it */
    const Onnx__ValueInfoProto *in = a.m->proto->graph->input[0];
    const Onnx__TensorShapeProto *sh = in->type->tensor_type->shape;
    ck_assert_uint_eq(r.n_inputs, 1);
    ck_assert_str_eq(r.inputs[0].name, in->name);
    ck_assert_int_eq(r.inputs[0].dtype, RM_DTYPE_FLOAT);
    ck_assert_int_eq(r.inputs[0].rank, (int)sh->n_dim);
    for (size_t d = 0; d < sh->n_dim; d++)
        ck_assert_int_eq(r.inputs[0].dims[d], sh->dim[d]->dim_value);
    ck_assert_uint_eq(q.n_inputs, 1);
    ck_assert(memcmp(r.inputs[0].dims, q.inputs[0].dims, sizeof r.inputs[0].dims) == 0);
    rm_diff_result_free(&r);
    rm_diff_result_free(&q);
    ck_assert(r.inputs == NULL && r.n_inputs == 0);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    close_model(&a);
    close_model(&b);
}
END_TEST

/* rm_diff_begin runs the reference before the other model exists (an edit's
 * verification runs the original before the edit): begun, then ended on a model opened
 * and changed afterwards, it gives what rm_diff gives, with A's outputs kept or with A's
 * plan kept for lockstep, for outputs and per layer; a begun diff can be cancelled, and
 * one that fails in its second half frees what the first kept (ASan checks both). */
START_TEST(begun_before_the_other_model)
{
    struct fixture a, b;
    struct rm_diff_result r, q;
    struct rm_diff_options o;
    struct rm_error err;
    rm_diff_pending *d;
    open_model(&a, "tiny_resnet.onnx");
    rm_diff_options_default(&o);
    o.samples = 3;
    o.seed = 5;
    for (int mode = 0; mode < 3; mode++) {
        if (mode == 1)
            ck_assert_int_eq(setenv("REMODEL_DIFF_LOCKSTEP", "1", 1), 0);
        o.layers = mode == 2;
        ck_assert_msg(rm_diff_begin(a.m, &o, &d, &err) == 0, "%s", err.msg);
        open_model(&b, "tiny_resnet.onnx");
        Onnx__TensorProto *w = init_named(b.m, "layer1.1.conv2.weight");
        set_f(w, 0, get_f(w, 0) + 0.5f);
        reindex(&b);
        ck_assert_msg(rm_diff_end(d, b.m, &r, &err) == 0, "%s", err.msg);
        ck_assert_msg(rm_diff(a.m, b.m, &o, &q, &err) == 0, "%s", err.msg);
        unsetenv("REMODEL_DIFF_LOCKSTEP");
        ck_assert(!r.pass && r.outputs[0].s.max_abs > 0);
        same_result(&r, &q);
        ck_assert_uint_eq(r.n_layers, q.n_layers);
        ck_assert_int_eq(r.first_divergent, q.first_divergent);
        for (size_t i = 0; i < r.n_layers; i++)
            ck_assert(memcmp(&r.layers[i].s, &q.layers[i].s, sizeof r.layers[i].s) == 0);
        if (mode == 2)
            ck_assert_str_eq(r.layers[r.first_divergent].path, "layer1.1.conv2");
        rm_diff_result_free(&r);
        rm_diff_result_free(&q);
        close_model(&b);
    }
    o.layers = false;
    ck_assert_msg(rm_diff_begin(a.m, &o, &d, &err) == 0, "%s", err.msg);
    rm_diff_cancel(d);
    rm_diff_cancel(NULL);
    /* a B whose input differs fails in the second half, as rm_diff does */
    ck_assert_msg(rm_diff_begin(a.m, &o, &d, &err) == 0, "%s", err.msg);
    open_model(&b, "resnet18.onnx");
    ck_assert_int_eq(rm_diff_end(d, b.m, &r, &err), RM_EUSAGE);
    ck_assert_msg(strstr(err.msg, "input 'input'"), "%s", err.msg);
    ck_assert(!r.pass);
    rm_diff_result_free(&r);
    close_model(&b);
    close_model(&a);
}
END_TEST

/* Counting oneDNN's primitive cache hits from its verbose lines on stdout. */
struct hits {
    char path[32];
    int fd, saved;
};

static void hits_start(struct hits *h)
{
    snprintf(h->path, sizeof h->path, "/tmp/rm_verbose_XXXXXX");
    h->fd = mkstemp(h->path);
    h->saved = dup(1);
    ck_assert(h->fd >= 0 && h->saved >= 0);
    fflush(stdout);
    ck_assert_int_eq(dup2(h->fd, 1), 1);
    ck_assert_int_eq(dnnl_set_verbose(2), dnnl_success);
}

static int hits_end(struct hits *h)
{
    int n = 0;
    size_t len;
    dnnl_set_verbose(0);
    fflush(stdout);
    dup2(h->saved, 1);
    close(h->saved);
    char *text = rm_test_read_file(h->path, &len);
    for (const char *q = text; (q = strstr(q, "create:cache_hit")); q++)
        n++;
    free(text);
    close(h->fd);
    unlink(h->path);
    return n;
}

/* Hits while rm_diff_end builds b's plan, after rm_diff_begin ran a. */
static int end_hits(struct rm_model *a, struct rm_model *b, const struct rm_diff_options *o)
{
    struct rm_error err;
    struct rm_diff_result r;
    struct hits h;
    rm_diff_pending *d;
    ck_assert_msg(rm_diff_begin(a, o, &d, &err) == 0, "%s", err.msg);
    hits_start(&h);
    int rc = rm_diff_end(d, b, &r, &err);
    int n = hits_end(&h);
    ck_assert_msg(rc == 0, "%s", err.msg);
    rm_diff_result_free(&r);
    return n;
}

/* Hits a plan of m for a few runs finds in an empty cache: its own repeated primitives. */
static int cold_hits(struct rm_model *m)
{
    struct rm_error err;
    struct rm_session_options so;
    struct rm_plan *p;
    struct hits h;
    rm_session_options_default(&so);
    so.few_runs = 1;
    rm_eng_cache_drop();
    hits_start(&h);
    int rc = rm_session_create(&p, m, &so, &err);
    int n = hits_end(&h);
    ck_assert_msg(rc == 0, "%s", err.msg);
    rm_session_free(p);
    return n;
}

/* Between the two halves the original's compiled kernels are dropped from oneDNN's
 * cache: before B's plan is built when B changed the shapes of most layers (a global
 * prune: they would sit unused beside B's plan), after it when B kept them (a replace:
 * B's plan reuses them, 30-50 ms less to build on resnet18 and densenet121). */
START_TEST(original_kernels_reused_or_dropped)
{
    struct rm_diff_options o;
    struct rm_error err;
    rm_diff_options_default(&o);
    o.samples = 1;
    struct rm_model *a = rm_test_load_model("tiny_resnet"), *same, *pruned;
    ck_assert_msg(rm_model_clone(&same, a, &err) == 0, "%s", err.msg);
    ck_assert_msg(rm_model_clone(&pruned, a, &err) == 0, "%s", err.msg);
    /* every group pruned but the stem's: its conv and pooling keep their kernels, the
     * other convs change shape */
    const char *ignore[] = {"conv1"};
    struct rm_prune_options po = {.ratio = 0.5, .global = true, .criterion = 1, .ignore = ignore, .n_ignore = 1};
    struct rm_prune_report rep;
    ck_assert_msg(rm_prune(pruned, NULL, 0, &po, &rep, NULL, &err) == 0, "%s", err.msg);
    rm_prune_report_free(&rep);
    int own_same = cold_hits(same), own_pruned = cold_hits(pruned);
    rm_eng_cache_drop();
    int kept = end_hits(a, same, &o);
    rm_eng_cache_drop();
    int dropped = end_hits(a, pruned, &o);
    ck_assert_msg(kept > own_same, "B with the original's shapes found %d kernels cached, on its own %d", kept,
                  own_same);
    ck_assert_msg(dropped == own_pruned, "the pruned B found %d kernels cached, on its own %d", dropped, own_pruned);
    rm_model_free(pruned);
    rm_model_free(same);
    rm_model_free(a);
}
END_TEST

START_TEST(input_sets_onnx_test_data)
{
    /* ONNX's own test data: the tensors name the inputs; the model's output matches */
    const char *dir = "/usr/share/libonnx-testdata/data/node/test_conv_with_strides_padding";
    char path[512];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    rm_model *m = NULL;
    struct rm_error err;
    ck_assert_msg(rm_model_load(&m, path, NULL, &err) == 0, "%s", err.msg);
    rm_input_sets *in = NULL;
    ck_assert_msg(rm_input_sets_open(&in, m, dir, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(rm_input_sets_count(in), 1);
    ck_assert_uint_eq(rm_input_sets_n_inputs(in), 2);
    ck_assert_str_eq(rm_input_sets_input_name(in, 0), "x");
    ck_assert_str_eq(rm_input_sets_input_name(in, 1), "W");
    rm_tensor v[2];
    ck_assert_int_eq(rm_input_sets_read(in, 0, v, &err), 0);
    rm_session *s = NULL;
    ck_assert_msg(rm_session_create(&s, m, NULL, &err) == 0, "%s", err.msg);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(rm_session_set_input(s, rm_input_sets_input_name(in, (size_t)i), &v[i], &err), 0);
        rm_tensor_free(&v[i]);
    }
    ck_assert_int_eq(rm_session_run(s, &err), 0);
    rm_tensor got, want;
    ck_assert_int_eq(rm_session_output(s, 0, &got, &err), 0);
    snprintf(path, sizeof path, "%s/test_data_set_0/output_0.pb", dir);
    ck_assert_int_eq(rm_tensor_read(path, &want, NULL, 0, &err), 0);
    ck_assert_int_eq(got.numel, want.numel);
    for (int64_t i = 0; i < got.numel; i++)
        ck_assert(fabsf(((float *)got.data)[i] - ((float *)want.data)[i]) <= 1e-4f);
    rm_tensor_free(&got);
    rm_tensor_free(&want);
    rm_session_free(s);
    /* a folder that is no set of this model's inputs */
    rm_input_sets_free(in);
    snprintf(path, sizeof path, "%s/test_data_set_0/output_0.pb", dir);
    ck_assert_int_eq(rm_input_sets_open(&in, m, path, &err), RM_EUSAGE);
    ck_assert_msg(strstr(err.msg, "not a folder"), "%s", err.msg);
    rm_model_free(m);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("diff");
    TCase *t = tcase_create("diff");
    tcase_set_timeout(t, 300);
    tcase_add_loop_test(t, self_diff, 0, (int)(sizeof SELF / sizeof SELF[0]));
    tcase_add_test(t, perturbed_conv);
    tcase_add_test(t, pruned_aligned);
    tcase_add_test(t, pruned_without_map);
    tcase_add_test(t, pruned_wrong_map);
    tcase_add_test(t, channel_map_parse);
    tcase_add_test(t, tensor_stats);
    tcase_add_test(t, tensor_map);
    tcase_add_test(t, inputs_must_agree);
    tcase_add_test(t, json_document);
    tcase_add_test(t, small_outputs_fail);
    tcase_add_test(t, samples_saved_and_replayed);
    tcase_add_test(t, one_after_the_other);
    tcase_add_test(t, begun_before_the_other_model);
    tcase_add_test(t, original_kernels_reused_or_dropped);
    tcase_add_test(t, input_sets_onnx_test_data);
    tcase_add_test(t, html_report);
    tcase_add_test(t, cli_diff);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return rm_test_run(suite());
}
