/* Tests for structural edits (rm_spec, rm_edit). Expected outputs come from PyTorch:
 * testdata/make_edit_refs.py performs the same replacement on the nn.Module itself and
 * stores its output in testdata/edits/<case>/output_0.pb; the list of cases is
 * testdata/edits/cases.tsv. */
#include "rm_edit.h"
#include "rm_engine.h"
#include "rm_graph.h"
#include "rm_check.h"
#include "rm_tree.h"
#include "test_util.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void run_input(struct rm_model *m, const char *input, struct rm_host_tensor *out);

/* Run m on its model's reference input; output 0 into *out (owned). */
static void run_model(struct rm_model *m, const char *model_name, struct rm_host_tensor *out)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/test_data_set_0/input_0.pb", rm_test_testdata(), model_name);
    run_input(m, path, out);
}

/* Run m on the tensor file at input; output 0 into *out (owned). */
static void run_input(struct rm_model *m, const char *input, struct rm_host_tensor *out)
{
    struct rm_error err;
    struct rm_graph g;
    ck_assert_int_eq(rm_graph_init(&g, m, &err), 0);
    struct rm_plan *p;
    ck_assert_msg(rm_session_create(&p, m, NULL, &err) == 0, "%s", err.msg);
    struct rm_host_tensor x;
    ck_assert_msg(rm_tensor_read(input, &x, NULL, 0, &err) == 0, "%s", err.msg);
    ck_assert_msg(rm_session_set_input(p, rm_session_input_name(p, 0), &x, &err) == 0, "%s", err.msg);
    ck_assert_msg(rm_session_run(p, &err) == 0, "%s", err.msg);
    struct rm_host_tensor y;
    ck_assert_int_eq(rm_session_output(p, 0, &y, &err), 0);
    ck_assert_int_eq(rm_tensor_alloc(out, y.dtype, y.rank, y.dims, &err), 0);
    memcpy(out->data, y.data, (size_t)y.numel * sizeof(float));
    rm_tensor_free(&x);
    rm_session_free(p);
    rm_graph_free(&g);
}

struct edit_case {
    char name[64], model[64], path[128], spec[256];
    int propagate;
};

/* Read a tab-separated case list: name, model, path, [propagate,] spec-or-channels. */
static int read_cases(const char *file, int nfields, struct edit_case *cases, int max)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/edits/%s", rm_test_testdata(), file);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(EXIT_FAILURE);
    }
    int n = 0;
    char line[1024];
    while (n < max && fgets(line, sizeof line, f)) {
        struct edit_case *c = &cases[n];
        line[strcspn(line, "\n")] = '\0';
        char *fields[5];
        char *s = line;
        for (int i = 0; i < nfields; i++) {
            fields[i] = s;
            s = i < nfields - 1 ? strchr(s, '\t') : NULL;
            if (i < nfields - 1) {
                if (!s) {
                    fprintf(stderr, "%s: malformed line %d\n", path, n + 1);
                    exit(EXIT_FAILURE);
                }
                *s++ = '\0';
            }
        }
        snprintf(c->name, sizeof c->name, "%s", fields[0]);
        snprintf(c->model, sizeof c->model, "%s", fields[1]);
        snprintf(c->path, sizeof c->path, "%s", fields[2]);
        c->propagate = nfields == 5 ? atoi(fields[3]) : 0;
        snprintf(c->spec, sizeof c->spec, "%s", fields[nfields - 1]);
        n++;
    }
    fclose(f);
    return n;
}

/* max |y - ref| <= tol * max |ref|, ref read from path. */
static void expect_close(const struct rm_host_tensor *y, const char *path, double tol, const char *what)
{
    struct rm_error err;
    struct rm_host_tensor ref;
    ck_assert_msg(rm_tensor_read(path, &ref, NULL, 0, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(y->numel, ref.numel);
    const float *a = y->data, *b = ref.data;
    double scale = 0, worst = 0;
    for (int64_t i = 0; i < ref.numel; i++) {
        scale = fmax(scale, fabs(b[i]));
        worst = fmax(worst, fabs((double)a[i] - b[i]));
    }
    ck_assert_msg(worst <= tol * scale, "%s: max |remodel - pytorch| = %g, output scale %g", what, worst, scale);
    rm_tensor_free(&ref);
}

/* Save m to a temporary file, load it back, require a clean structural check. */
static struct rm_model *save_reload(struct rm_model *m)
{
    struct rm_error err;
    char tmp[] = "/tmp/rm-edit-XXXXXX";
    ck_assert(mkdtemp(tmp) != NULL);
    char out[1100];
    snprintf(out, sizeof out, "%s/edited.onnx", tmp);
    ck_assert_int_eq(rm_model_save(m, out, NULL, &err), 0);
    rm_model_free(m);
    ck_assert_msg(rm_model_load(&m, out, NULL, &err) == 0, "%s", err.msg);
    unlink(out);
    rmdir(tmp);
    struct rm_graph g;
    ck_assert_int_eq(rm_graph_init(&g, m, &err), 0);
    ck_assert_int_eq(rm_check_model(&g, NULL), 0);
    rm_graph_free(&g);
    return m;
}

#define MAX_CASES 32
static struct edit_case cases[MAX_CASES];
static int n_cases;

/* Save the edited m, load it back (clean check), run it on its model's reference input
 * and compare with PyTorch's output for the case; frees m. */
static void expect_case_output(struct rm_model *m, const struct edit_case *c)
{
    m = save_reload(m);
    struct rm_host_tensor y;
    run_model(m, c->model, &y);
    char path[1024];
    snprintf(path, sizeof path, "%s/edits/%s/output_0.pb", rm_test_testdata(), c->name);
    expect_close(&y, path, 1e-4, c->name);
    rm_tensor_free(&y);
    rm_model_free(m);
}

/* Replace as the case says, save, load back, check, run, compare with PyTorch. */
START_TEST(replace_matches_pytorch)
{
    if (_i >= n_cases)
        return;
    const struct edit_case *c = &cases[_i];
    struct rm_error err;
    struct rm_model *m = rm_test_load_model(c->model);
    struct rm_replace_options o = {.init = RM_INIT_KEEP, .propagate = c->propagate != 0};
    rm_findings log = {0};
    ck_assert_msg(rm_replace(m, c->path, c->spec, &o, &log, &err) == 0, "%s: %s", c->name, err.msg);
    ck_assert_int_gt(log.n, 0);
    rm_findings_free(&log);
    expect_case_output(m, c);
}
END_TEST

/* Same shape with keep: the weights are byte-identical and the output bit-identical. */
START_TEST(same_shape_is_exact)
{
    struct rm_error err;
    struct rm_conv_spec spec;
    ck_assert_int_eq(rm_conv_spec_parse("Conv2d(8, 16, 3, 2, 1, bias=False)", &spec, &err), 0);
    struct rm_model *orig = rm_test_load_model("tiny_resnet");
    struct rm_model *m = rm_test_load_model("tiny_resnet");
    struct rm_replace_options o = {.init = RM_INIT_KEEP};
    ck_assert_msg(rm_replace_conv(m, "layer2.0.conv1", &spec, &o, NULL, &err) == 0, "%s", err.msg);
    Onnx__GraphProto *ga = orig->proto->graph, *gb = m->proto->graph;
    ck_assert_uint_eq(ga->n_initializer, gb->n_initializer);
    for (size_t i = 0; i < ga->n_initializer; i++) {
        ck_assert_str_eq(ga->initializer[i]->name, gb->initializer[i]->name);
        ck_assert_uint_eq(ga->initializer[i]->raw_data.len, gb->initializer[i]->raw_data.len);
        ck_assert(memcmp(ga->initializer[i]->raw_data.data, gb->initializer[i]->raw_data.data,
                         ga->initializer[i]->raw_data.len) == 0);
    }
    struct rm_host_tensor ya, yb;
    run_model(orig, "tiny_resnet", &ya);
    run_model(m, "tiny_resnet", &yb);
    ck_assert(memcmp(ya.data, yb.data, (size_t)ya.numel * sizeof(float)) == 0);
    rm_tensor_free(&ya);
    rm_tensor_free(&yb);
    rm_model_free(orig);
    rm_model_free(m);
}
END_TEST

/* The seed example without --propagate: refused, naming the modules that
 * disagree and the sizes (with it, it is a case of replace_matches_pytorch). */
START_TEST(seed_example_refused)
{
    struct rm_error err;
    struct rm_model *m = rm_test_load_model("resnet18");
    struct rm_replace_options o = {.init = RM_INIT_KEEP, .propagate = false};
    ck_assert_int_eq(rm_replace(m, "layer4[0].conv1", "Conv2d(111, 111, 3, 2, 1)", &o, NULL, &err), RM_EEDIT);
    ck_assert_msg(strstr(err.msg, "layer4.0.conv1") && strstr(err.msg, "256") && strstr(err.msg, "111"), "%s",
                  err.msg);
    ck_assert_msg(strstr(err.msg, "layer4.0.conv2") && strstr(err.msg, "512"), "%s", err.msg);
    ck_assert_int_eq(err.fix, RM_FIX_PROPAGATE);
    rm_model_free(m);
}
END_TEST

/* More input channels than the input has cannot be made by pruning: still refused. */
START_TEST(more_in_channels_refused)
{
    struct rm_error err;
    struct rm_model *m = rm_test_load_model("tiny_resnet");
    struct rm_replace_options o = {.init = RM_INIT_KEEP, .propagate = true};
    ck_assert_int_eq(rm_replace(m, "layer2.0.conv1", "Conv2d(12, 16, 3, 2, 1, bias=False)", &o, NULL, &err),
                     RM_EEDIT);
    ck_assert_msg(strstr(err.msg, "layer2.0.conv1") && strstr(err.msg, "12") && strstr(err.msg, "8"), "%s",
                  err.msg);
    rm_model_free(m);
    /* fewer, where the channels come from the graph input: nothing upstream to prune */
    m = rm_test_load_model("tiny_resnet");
    ck_assert_int_eq(rm_replace(m, "conv1", "Conv2d(2, 8, 3, 1, 1, bias=False)", &o, NULL, &err), RM_EEDIT);
    ck_assert_msg(strstr(err.msg, "cannot be pruned") && strstr(err.msg, "graph input"), "%s", err.msg);
    rm_model_free(m);
}
END_TEST

/* A channel change on a residual stream cannot be propagated by replace. */
START_TEST(residual_refused)
{
    struct rm_error err;
    struct rm_conv_spec spec;
    ck_assert_int_eq(rm_conv_spec_parse("Conv2d(8, 6, 3, padding=1, bias=False)", &spec, &err), 0);
    struct rm_model *m = rm_test_load_model("tiny_resnet");
    struct rm_replace_options o = {.init = RM_INIT_KEEP, .propagate = true};
    ck_assert_int_eq(rm_replace_conv(m, "layer1.0.conv2", &spec, &o, NULL, &err), RM_EEDIT);
    ck_assert_msg(strstr(err.msg, "Add") != NULL, "%s", err.msg);
    rm_model_free(m);
    /* spatial mismatch at the Add: stride 2 in a block without downsample */
    ck_assert_int_eq(rm_conv_spec_parse("Conv2d(8, 8, 3, stride=2, padding=1, bias=False)", &spec, &err), 0);
    m = rm_test_load_model("tiny_resnet");
    ck_assert_int_eq(rm_replace_conv(m, "layer1.0.conv1", &spec, &o, NULL, &err), RM_EEDIT);
    ck_assert_msg(strstr(err.msg, "layer1.0") && strstr(err.msg, "broadcast"), "%s", err.msg);
    rm_model_free(m);
}
END_TEST

/* shared_init: branch_a's weight is shared with branch_b through an Identity node; the
 * edit copies it, and branch_b still reads the original bytes. */
START_TEST(shared_initializer_copied)
{
    struct rm_error err;
    struct rm_conv_spec spec;
    ck_assert_int_eq(rm_conv_spec_parse("Conv2d(8, 8, kernel_size=1, bias=False)", &spec, &err), 0);
    struct rm_model *orig = rm_test_load_model("shared_init");
    struct rm_model *m = rm_test_load_model("shared_init");
    struct rm_replace_options o = {.init = RM_INIT_KEEP};
    ck_assert_msg(rm_replace_conv(m, "branch_a", &spec, &o, NULL, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(m->proto->graph->n_initializer, orig->proto->graph->n_initializer + 1);
    for (size_t i = 0; i < orig->proto->graph->n_initializer; i++) {
        const Onnx__TensorProto *a = orig->proto->graph->initializer[i], *b = m->proto->graph->initializer[i];
        ck_assert_str_eq(a->name, b->name);
        ck_assert_msg(a->raw_data.len == b->raw_data.len &&
                          memcmp(a->raw_data.data, b->raw_data.data, a->raw_data.len) == 0,
                      "initializer %s changed", a->name);
    }
    /* the original "branch_a.weight" still feeds Identity -> branch_b; branch_a reads a copy */
    const char *copy = m->proto->graph->initializer[orig->proto->graph->n_initializer]->name;
    ck_assert_str_eq(copy, "branch_a.weight_1");
    int found = 0;
    for (size_t i = 0; i < m->proto->graph->n_node; i++) {
        const Onnx__NodeProto *n = m->proto->graph->node[i];
        if (!strcmp(n->op_type, "Conv") && !strcmp(n->name, "/branch_a/Conv"))
            found = !strcmp(n->input[1], copy);
        if (!strcmp(n->op_type, "Conv") && !strcmp(n->name, "/branch_b/Conv"))
            ck_assert_str_eq(n->input[1], "branch_b.weight");
    }
    ck_assert(found);
    rm_model_free(orig);
    rm_model_free(m);
}
END_TEST

START_TEST(bad_targets)
{
    struct rm_error err;
    struct rm_conv_spec spec;
    ck_assert_int_eq(rm_conv_spec_parse("Conv2d(8, 8, 3)", &spec, &err), 0);
    struct rm_model *m = rm_test_load_model("tiny_resnet");
    struct rm_replace_options o = {.init = RM_INIT_KEEP};
    ck_assert_int_eq(rm_replace_conv(m, "layer1.0.bn1", &spec, &o, NULL, &err), RM_EEDIT);
    ck_assert_msg(strstr(err.msg, "not a convolution"), "%s", err.msg);
    ck_assert_int_eq(rm_replace_conv(m, "layer1.0.conv9", &spec, &o, NULL, &err), RM_ENOTFOUND);
    ck_assert_msg(strstr(err.msg, "layer1.0.conv1"), "no suggestion: %s", err.msg);
    rm_model_free(m);
}
END_TEST

/* Spec parsing: what nn.Conv2d accepts, and clear refusals. */
START_TEST(spec_parse)
{
    struct rm_error err;
    struct rm_conv_spec s;
    ck_assert_int_eq(rm_conv_spec_parse("Conv2d(256, 512, kernel_size=3, stride=2, padding=1, bias=False)", &s, &err), 0);
    ck_assert(s.in_channels == 256 && s.out_channels == 512 && s.kernel[0] == 3 && s.kernel[1] == 3);
    ck_assert(s.stride[0] == 2 && s.pads[0] == 1 && s.pads[3] == 1 && !s.bias && s.groups == 1);
    ck_assert_int_eq(rm_conv_spec_parse(" nn.Conv2d( 8 , 16, (1, 3), (2, 1), (0, 1), 1, 2, True , 'zeros',) ", &s, &err), 0);
    ck_assert(s.kernel[0] == 1 && s.kernel[1] == 3 && s.stride[0] == 2 && s.stride[1] == 1);
    ck_assert(s.pads[0] == 0 && s.pads[1] == 1 && s.pads[2] == 0 && s.pads[3] == 1 && s.groups == 2 && s.bias);
    ck_assert_int_eq(rm_conv_spec_parse("Conv2d(4, 4, 4, padding='same', dilation=2)", &s, &err), 0);
    ck_assert(s.pads[0] == 3 && s.pads[2] == 3); /* total 2*(4-1) = 6: 3 before, 3 after */
    ck_assert_int_eq(rm_conv_spec_parse("Conv2d(4, 4, 2, padding='same')", &s, &err), 0);
    ck_assert(s.pads[0] == 0 && s.pads[2] == 1); /* PyTorch puts the odd pixel after */
    /* Conv1d and Conv3d: tuples of their own length, pads begins then ends; repr as PyTorch's */
    char repr[256];
    ck_assert_int_eq(rm_conv_spec_parse("nn.Conv1d(8, 16, 5, stride=(2,), padding=2, bias=False)", &s, &err), 0);
    ck_assert(s.nd == 1 && s.kernel[0] == 5 && s.stride[0] == 2 && s.pads[0] == 2 && s.pads[1] == 2 && !s.bias);
    rm_conv_spec_repr(&s, repr, sizeof repr);
    ck_assert_str_eq(repr, "Conv1d(8, 16, kernel_size=(5,), stride=(2,), padding=(2,), bias=False)");
    ck_assert_int_eq(rm_conv_spec_parse("Conv3d(4, 8, (1, 3, 3), padding=(0, 1, 1), dilation=(1, 2, 2), groups=4)", &s, &err), 0);
    ck_assert(s.nd == 3 && s.kernel[0] == 1 && s.kernel[2] == 3 && s.pads[0] == 0 && s.pads[1] == 1 && s.pads[5] == 1);
    ck_assert(s.dilation[0] == 1 && s.dilation[1] == 2 && s.groups == 4);
    rm_conv_spec_repr(&s, repr, sizeof repr);
    ck_assert_str_eq(repr, "Conv3d(4, 8, kernel_size=(1, 3, 3), stride=(1, 1, 1), padding=(0, 1, 1), "
                           "dilation=(1, 2, 2), groups=4)");
    ck_assert_int_eq(rm_conv_spec_parse("Conv3d(4, 4, 2, padding='same')", &s, &err), 0);
    ck_assert(s.pads[0] == 0 && s.pads[2] == 0 && s.pads[3] == 1 && s.pads[5] == 1);
    static const struct { const char *spec, *needle; } bad[] = {
        {"Linear(3, 4)", "only Conv1d(...), Conv2d(...) and Conv3d(...)"},
        {"Conv4d(3, 4, 3)", "only Conv1d"},
        {"Conv1d(3, 4, (3, 3))", "an int or a 1-tuple (Conv1d)"},
        {"Conv3d(3, 4, (3, 3))", "an int or a tuple of 3 ints (Conv3d)"},
        {"Conv1d(3, 4, 3, strides=2)", "Conv1d has no argument 'strides' (did you mean stride?)"},
        {"Conv2d(3, 4)", "missing kernel_size"},
        {"Conv2d(3, 4, 3, kernel=3)", "no argument 'kernel' (did you mean kernel_size?)"},
        {"Conv2d(3, 4, 3, strides=2)", "(did you mean stride?)"},
        {"Conv2d(3, 4, 3, bais=False)", "(did you mean bias?)"},
        {"Conv2d(3, 4, 3, bias=false)", "bias=false: use True or False"},
        {"Conv2d(3, 4, 3, stride=two)", "stride=two: expected an int"},
        {"Conv2d(3, 4, 3, stride=2, 1)", "positional argument after a keyword"},
        {"Conv2d(3, 4, 3, groups=2)", "divisible by groups"},
        {"Conv2d(3, 4, (3, 3, 3))", "pair"},
        {"Conv2d(3, 4, 0)", "positive"},
        {"Conv2d(3, 4, 3, padding_mode='reflect')", "padding_mode"},
        {"Conv2d(3, 4, 3, stride=2, padding='same')", "strided"},
        {"Conv2d(3, 4, 3, bias=1)", "True or False"},
        {"Conv2d(3, 4, 3", "expected"},
        {"Conv2d(3, 4, 3) x", "unexpected text"},
        {"Conv2d(3, 4, 3, stride=2, stride=2)", "twice"},
        {"Conv2d(99999999999999999999, 4, 3)", "too large"},
        {"Conv2d(3, 4, 3, device='cpu')", "not meaningful"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(rm_conv_spec_parse(bad[i].spec, &s, &err), RM_EUSAGE);
        ck_assert_msg(strstr(err.msg, bad[i].needle) != NULL, "%s: %s", bad[i].spec, err.msg);
    }
}
END_TEST

static struct edit_case prunes[MAX_CASES];
static int n_prunes;

/* Remove the case's channels of the named module's group; PyTorch sliced the same
 * layers by hand (testdata/make_edit_refs.py PRUNE_CASES). */
START_TEST(prune_matches_pytorch)
{
    if (_i >= n_prunes)
        return;
    const struct edit_case *c = &prunes[_i];
    int64_t chans[64];
    size_t n = 0;
    for (char *p = (char *)c->spec; *p && n < 64;) {
        chans[n++] = strtoll(p, &p, 10);
        if (*p == ',')
            p++;
    }
    struct rm_model *m = rm_test_load_model(c->model);
    struct rm_error err;
    struct rm_prune_options o = {.channels = chans, .n_channels = n, .criterion = 1};
    struct rm_prune_report rep;
    const char *paths[1] = {c->path};
    ck_assert_msg(rm_prune(m, paths, 1, &o, &rep, NULL, &err) == 0, "%s: %s", c->name, err.msg);
    ck_assert_int_lt(rep.params_after, rep.params_before);
    ck_assert_int_lt(rep.macs_after, rep.macs_before);
    rm_prune_report_free(&rep);
    expect_case_output(m, c);
}
END_TEST

/* Dead channels (zero weights, BatchNorm mapping them to 0) are the least important by
 * L1 norm: --ratio 0.25 removes exactly them, and the output does not move. */
START_TEST(prune_dead_channels)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/edits/zeroed_resnet.onnx", rm_test_testdata());
    struct rm_error err;
    struct rm_model *m;
    ck_assert_int_eq(rm_model_load(&m, path, NULL, &err), 0);
    struct rm_prune_options o = {.ratio = 0.25, .criterion = 1};
    struct rm_prune_report rep;
    const char *paths[1] = {"layer1.0.conv1"};
    ck_assert_msg(rm_prune(m, paths, 1, &o, &rep, NULL, &err) == 0, "%s", err.msg);
    int found = 0;
    for (size_t i = 0; i < rep.n_groups; i++)
        if (!strcmp(rep.groups[i].name, "layer1.0.conv1")) {
            ck_assert_int_eq(rep.groups[i].before, 8);
            ck_assert_int_eq(rep.groups[i].after, 6);
            found = 1;
        }
    ck_assert(found);
    rm_prune_report_free(&rep);
    const char *map = rm_channel_map_find(m, "/layer1/layer1.0/conv1/Conv_output_0");
    ck_assert_ptr_nonnull(map);
    ck_assert_str_eq(map, "0,2,3,4,6,7");
    m = save_reload(m);
    struct rm_host_tensor y;
    snprintf(path, sizeof path, "%s/edits/zeroed_resnet/test_data_set_0/input_0.pb", rm_test_testdata());
    run_input(m, path, &y);
    snprintf(path, sizeof path, "%s/edits/zeroed_resnet/test_data_set_0/output_0.pb", rm_test_testdata());
    expect_close(&y, path, 1e-5, "zeroed_resnet pruned");
    rm_tensor_free(&y);
    rm_model_free(m);
}
END_TEST

static const char *models[] = {"resnet18", "tiny_resnet", "mobilenet_tiny", "concat_net", "se_net", "shared_init"};

/* A second edit composes its channel map with the first one's: the map keeps naming
 * channels of the original model. */
START_TEST(channel_maps_compose)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/edits/zeroed_resnet.onnx", rm_test_testdata());
    struct rm_error err;
    struct rm_model *m;
    ck_assert_int_eq(rm_model_load(&m, path, NULL, &err), 0);
    const char *paths[1] = {"layer1.0.conv1"};
    int64_t first[] = {1, 5}, second[] = {0, 3}; /* second: channels 0 and 4 of the original */
    struct rm_prune_options o = {.channels = first, .n_channels = 2, .criterion = 1};
    struct rm_prune_report rep;
    ck_assert_msg(rm_prune(m, paths, 1, &o, &rep, NULL, &err) == 0, "%s", err.msg);
    rm_prune_report_free(&rep);
    m = save_reload(m);
    o.channels = second;
    ck_assert_msg(rm_prune(m, paths, 1, &o, &rep, NULL, &err) == 0, "%s", err.msg);
    rm_prune_report_free(&rep);
    const char *map = rm_channel_map_find(m, "/layer1/layer1.0/conv1/Conv_output_0");
    ck_assert_ptr_nonnull(map);
    ck_assert_str_eq(map, "2,3,6,7");
    rm_model_free(m);
}
END_TEST

/* Float contents of the initializer node `node_name` reads at slot (malloc'd), with dims. */
static float *node_weight(struct rm_model *m, const char *node_name, size_t slot, int64_t *dims)
{
    struct rm_error err;
    struct rm_graph *g = rm_model_graph(m, &err);
    ck_assert_ptr_nonnull(g);
    int node = rm_graph_find_node(g, node_name);
    ck_assert_int_ge(node, 0);
    int v = rm_graph_initializer_of(g, g->nodes[node].inputs[slot]);
    ck_assert_int_ge(v, 0);
    const Onnx__TensorProto *t = m->proto->graph->initializer[g->values[v].init];
    int64_t n;
    ck_assert_int_eq(rm_tensor_numel(t, &n, &err), 0);
    float *w = malloc((size_t)n * sizeof *w);
    ck_assert_int_eq(rm_tensor_to_f32(t, w, n, &err), 0);
    for (size_t d = 0; d < t->n_dims; d++)
        dims[d] = t->dims[d];
    return w;
}

/* shared_init's branch_a and branch_b share one weight (through an Identity) and both
 * read conv1's channels and produce branch_a's group: pruning both groups in one edit
 * changes that weight twice per node (rows, then input channels). Both changes stay:
 * each branch's weight is the original's kept rows and kept columns. */
START_TEST(prune_shared_weight_both_axes)
{
    struct rm_error err;
    struct rm_model *orig = rm_test_load_model("shared_init"), *m = rm_test_load_model("shared_init");
    const char *paths[] = {"conv1", "branch_a"};
    struct rm_prune_options o = {.ratio = 0.25, .criterion = 1};
    ck_assert_msg(rm_prune(m, paths, 2, &o, NULL, NULL, &err) == 0, "%s", err.msg);
    m = save_reload(m);
    int64_t *in_map, *out_map, n_in, n_out;
    ck_assert_int_eq(rm_channel_map_parse(rm_channel_map_find(m, "/relu/Relu_output_0"), &in_map, &n_in, &err), 0);
    ck_assert_int_eq(rm_channel_map_parse(rm_channel_map_find(m, "/Add_output_0"), &out_map, &n_out, &err), 0);
    ck_assert_int_eq(n_in, 6);
    ck_assert_int_eq(n_out, 6);
    int64_t od[4], nd[4];
    float *w0 = node_weight(orig, "/branch_a/Conv", 1, od);
    for (int b = 0; b < 2; b++) {
        float *w = node_weight(m, b ? "/branch_b/Conv" : "/branch_a/Conv", 1, nd);
        ck_assert(nd[0] == 6 && nd[1] == 6 && nd[2] == 3 && nd[3] == 3);
        for (int64_t i = 0; i < 6; i++)
            for (int64_t j = 0; j < 6; j++)
                for (int64_t k = 0; k < 9; k++)
                    ck_assert(w[(i * 6 + j) * 9 + k] == w0[(out_map[i] * 8 + in_map[j]) * 9 + k]);
        free(w);
    }
    free(w0);
    free(in_map);
    free(out_map);
    rm_model_free(orig);
    rm_model_free(m);
}
END_TEST

/* --global at 0.3 on every testdata model: it prunes, and the result runs and checks. */
START_TEST(prune_global)
{
    struct rm_model *m = rm_test_load_model(models[_i]);
    struct rm_error err;
    struct rm_prune_options o = {.ratio = 0.3, .criterion = 2, .global = true};
    struct rm_prune_report rep;
    ck_assert_msg(rm_prune(m, NULL, 0, &o, &rep, NULL, &err) == 0, "%s: %s", models[_i], err.msg);
    /* MACs, not parameters: shared_init's shared weights are copied for their users */
    ck_assert_msg(rep.macs_after < rep.macs_before, "%s: nothing pruned", models[_i]);
    rm_prune_report_free(&rep);
    m = save_reload(m);
    struct rm_host_tensor y;
    run_model(m, models[_i], &y);
    const float *v = y.data;
    for (int64_t i = 0; i < y.numel; i++)
        ck_assert(isfinite(v[i]));
    rm_tensor_free(&y);
    rm_model_free(m);
}
END_TEST


/* A tensor whose shape is unknown (made by an op without a shape rule) meeting a group
 * at an Add: the group is not pruned (it used to be, and the Add received 16 and 8
 * channels, which no shape check could see). */
START_TEST(prune_stops_at_unknown_shapes)
{
    /* layer2.0's shortcut BatchNorm made an op without a shape rule: the block's Add
     * adds layer2.0.conv2's channels to a tensor of unknown shape */
    struct rm_model *m = rm_test_load_model("tiny_resnet");
    Onnx__NodeProto *bn = NULL;
    for (size_t i = 0; i < m->proto->graph->n_node; i++)
        if (!strcmp(m->proto->graph->node[i]->name, "/layer2/layer2.0/downsample/downsample.1/BatchNormalization"))
            bn = m->proto->graph->node[i];
    ck_assert_ptr_nonnull(bn);
    bn->op_type = "Mystery";
    bn->domain = "com.example";
    bn->n_attribute = 0;
    bn->n_input = 1;
    rm_model_touch(m);
    const char *name = "layer2.0.conv2.weight";
    int64_t before = -1;
    for (size_t i = 0; i < m->proto->graph->n_initializer; i++)
        if (!strcmp(m->proto->graph->initializer[i]->name, name))
            before = m->proto->graph->initializer[i]->dims[0];
    ck_assert_int_eq(before, 16);
    struct rm_error err;
    struct rm_prune_options o = {.ratio = 0.5, .criterion = 2, .global = true};
    struct rm_prune_report rep;
    ck_assert_msg(rm_prune(m, NULL, 0, &o, &rep, NULL, &err) == 0, "%s", err.msg);
    ck_assert(rep.params_after < rep.params_before); /* the other groups are pruned */
    rm_prune_report_free(&rep);
    for (size_t i = 0; i < m->proto->graph->n_initializer; i++)
        if (!strcmp(m->proto->graph->initializer[i]->name, name))
            ck_assert_int_eq(m->proto->graph->initializer[i]->dims[0], before);
    rm_model_free(m);
}
END_TEST

/* A clone of orig with one edit made, as the CLI makes them: 0 replace layer4.0.conv1
 * (resnet18), 1 prune --global 0.3, 2 fold-bn. */
static struct rm_model *edited_clone(struct rm_model *orig, int edit)
{
    struct rm_error err;
    struct rm_model *m;
    ck_assert_msg(rm_model_clone(&m, orig, &err) == 0, "%s", err.msg);
    if (edit == 0) {
        struct rm_conv_spec spec;
        struct rm_replace_options ro = {RM_INIT_KEEP, 0, true};
        ck_assert_int_eq(rm_conv_spec_parse("Conv2d(256, 256, 3, 2, 1, bias=False)", &spec, &err), 0);
        ck_assert_msg(rm_replace_conv(m, "layer4.0.conv1", &spec, &ro, NULL, &err) == 0, "%s", err.msg);
    } else if (edit == 1) {
        struct rm_prune_options po = {.ratio = 0.3, .criterion = 1, .global = true};
        struct rm_prune_report rep;
        ck_assert_msg(rm_prune(m, NULL, 0, &po, &rep, NULL, &err) == 0, "%s", err.msg);
        rm_prune_report_free(&rep);
    } else {
        int n;
        ck_assert_msg(rm_fold_bn(m, &n, NULL, &err) == 0, "%s", err.msg);
    }
    return m;
}

/* The model keeps what it derives: an edit and its verification, as the CLI runs them
 * (the original, a clone edited, both run on one input), index each model at most twice
 * and infer its shapes at most twice. */
START_TEST(derived_state_built_twice_at_most)
{
    struct rm_error err;
    for (int edit = 0; edit < 3; edit++) {
        struct rm_model *orig = rm_test_load_model("resnet18"), *m = edited_clone(orig, edit);
        struct rm_diff_options o;
        struct rm_diff_result r;
        rm_diff_options_default(&o);
        ck_assert_msg(rm_diff(orig, m, &o, &r, &err) == 0, "%s", err.msg);
        rm_diff_result_free(&r);
        const struct rm_model_stats *a = &orig->stats, *b = &m->stats;
        ck_assert_msg(a->index_builds <= 2 && a->shape_runs <= 2 && b->index_builds <= 2 && b->shape_runs <= 2,
                      "edit %d: original indexed %u times, shapes %u; edited %u, %u", edit, a->index_builds,
                      a->shape_runs, b->index_builds, b->shape_runs);
        rm_model_free(m);
        rm_model_free(orig);
    }
}
END_TEST

/* Bytes of m's initializers that are not orig's bytes (new tensors, or tensors an edit
 * gave new contents): what an edited clone must hold, and nothing more. */
static size_t new_bytes(struct rm_model *orig, struct rm_model *m)
{
    size_t sum = 0;
    const Onnx__GraphProto *gp = m->proto->graph;
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *t = gp->initializer[i], *o = rm_model_initializer(orig, t->name);
        if (t->has_raw_data && t->raw_data.len && (!o || o->raw_data.data != t->raw_data.data))
            sum += t->raw_data.len;
    }
    return sum;
}

/* An edit gives back the bytes of every intermediate it made: prune resizes a conv's
 * weight twice (its out-channels, then its in-channels as the next conv's consumer), and
 * only the last one is kept. The edited clone holds exactly the bytes of its new tensors
 * (resnet18 pruned at 0.3 used to hold 50 MB for 12 MB of new tensors). */
START_TEST(edits_hold_only_final_bytes)
{
    /* testdata's resnet18 has its BatchNorms folded by the exporter; tiny_resnet keeps them */
    struct rm_model *orig = rm_test_load_model(_i == 2 ? "tiny_resnet" : "resnet18"), *m = edited_clone(orig, _i);
    size_t want = new_bytes(orig, m);
    ck_assert_msg(want > 0, "edit %d changed no tensor", _i);
    ck_assert_msg(m->stats.tensor_bytes == want, "edit %d: the model holds %zu bytes of tensors, its new tensors "
                  "are %zu bytes", _i, m->stats.tensor_bytes, want);
    rm_model_free(m);
    rm_model_free(orig);
}
END_TEST

/* Bytes a clone shares are never freed under it: a model edited, cloned, and edited
 * again keeps the clone's copy intact (AddressSanitizer sees a use after free). */
START_TEST(clone_keeps_shared_bytes)
{
    struct rm_error err;
    struct rm_model *m = rm_test_load_model("resnet18"), *c;
    const int64_t dims[1] = {4};
    const float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8};
    ck_assert_int_eq(rm_model_set_initializer(m, "fc.bias", 1, dims, a, &err), 0);
    ck_assert_msg(rm_model_clone(&c, m, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(rm_model_set_initializer(m, "fc.bias", 1, dims, b, &err), 0);
    ck_assert_int_eq(rm_model_set_initializer(m, "fc.bias", 1, dims, a, &err), 0);
    const Onnx__TensorProto *t = rm_model_initializer(c, "fc.bias");
    ck_assert_uint_eq(t->raw_data.len, sizeof a);
    ck_assert_int_eq(memcmp(t->raw_data.data, a, sizeof a), 0);
    /* with the clone gone, replaced bytes go at once: one buffer of 16 bytes is left */
    rm_model_free(c);
    ck_assert_int_eq(rm_model_set_initializer(m, "fc.bias", 1, dims, b, &err), 0);
    ck_assert_uint_eq(m->stats.tensor_bytes, 3 * sizeof a); /* two held while shared, the new one */
    rm_model_free(m);
}
END_TEST

/* fold-bn on the BatchNorm-kept exports matches PyTorch's output to 1e-5 of its scale. */
START_TEST(fold_bn_matches_pytorch)
{
    const char *names[] = {"tiny_resnet", "shared_init"};
    struct rm_model *m = rm_test_load_model(names[_i]);
    size_t before = m->proto->graph->n_node;
    struct rm_error err;
    int n = 0;
    ck_assert_msg(rm_fold_bn(m, &n, NULL, &err) == 0, "%s", err.msg);
    ck_assert_int_gt(n, 0);
    ck_assert_uint_eq(m->proto->graph->n_node, before - (size_t)n);
    /* what is left: BatchNorms that do not follow a Conv (shared_init's bn2 follows an Add) */
    struct rm_graph g;
    ck_assert_int_eq(rm_graph_init(&g, m, &err), 0);
    for (size_t i = 0; i < g.n_nodes; i++) {
        if (strcmp(g.nodes[i].proto->op_type, "BatchNormalization") != 0)
            continue;
        int p = g.values[g.nodes[i].inputs[0]].producer;
        ck_assert(p < 0 || strcmp(g.nodes[p].proto->op_type, "Conv") != 0);
    }
    rm_graph_free(&g);
    m = save_reload(m);
    struct rm_host_tensor y;
    run_model(m, names[_i], &y);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/test_data_set_0/output_0.pb", rm_test_testdata(), names[_i]);
    expect_close(&y, path, 1e-5, names[_i]);
    rm_tensor_free(&y);
    rm_model_free(m);
}
END_TEST

int main(void)
{
    n_cases = read_cases("cases.tsv", 5, cases, MAX_CASES);
    n_prunes = read_cases("prune_cases.tsv", 4, prunes, MAX_CASES);
    Suite *s = suite_create("edit");
    TCase *t = tcase_create("replace");
    tcase_set_timeout(t, 300);
    tcase_add_loop_test(t, replace_matches_pytorch, 0, n_cases);
    tcase_add_test(t, same_shape_is_exact);
    tcase_add_test(t, seed_example_refused);
    tcase_add_test(t, more_in_channels_refused);
    tcase_add_test(t, residual_refused);
    tcase_add_test(t, shared_initializer_copied);
    tcase_add_test(t, bad_targets);
    tcase_add_test(t, spec_parse);
    tcase_add_test(t, derived_state_built_twice_at_most);
    tcase_add_loop_test(t, edits_hold_only_final_bytes, 0, 3);
    tcase_add_test(t, clone_keeps_shared_bytes);
    suite_add_tcase(s, t);
    TCase *p = tcase_create("prune");
    tcase_set_timeout(p, 300);
    tcase_add_loop_test(p, prune_matches_pytorch, 0, n_prunes);
    tcase_add_test(p, prune_dead_channels);
    tcase_add_test(p, channel_maps_compose);
    tcase_add_test(p, prune_stops_at_unknown_shapes);
    tcase_add_test(p, prune_shared_weight_both_axes);
    tcase_add_loop_test(p, prune_global, 0, (int)(sizeof models / sizeof models[0]));
    tcase_add_loop_test(p, fold_bn_matches_pytorch, 0, 2);
    suite_add_tcase(s, p);
    return rm_test_run(s);
}
