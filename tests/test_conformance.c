/* ONNX conformance: every case in Debian's libonnx-testdata (data/node and
 * data/pytorch-converted) whose nodes all use ops the engine runs (the op table's
 * RM_OPF_ENGINE), whose inputs and outputs are of types the engine carries (float32/64,
 * int8/16/32/64, uint8, bool) runs and matches ONNX's expected outputs with
 * |a - b| <= 1e-5 + 1e-3 |b|, and each output has the expected ONNX type. Expected
 * values come from ONNX's test data, never from remodel. */
#include "onnx_case.h"
#include "rm_graph.h"
#include "rm_op.h"
#include "test_util.h"

#include <check.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ATOL 1e-5
#define RTOL 1e-3

static const char *root(void)
{
    const char *d = getenv("RM_ONNX_TESTDATA");
    return d ? d : "/usr/share/libonnx-testdata/data";
}

/* Cases that match the selection but cannot be supported, with the reason. */
static const char *const excluded[] = {
    /* Dropout's mask is a training output */
    "test_dropout_default_mask", "test_dropout_default_mask_ratio",
    /* pooling runs on float only */
    "test_maxpool_2d_uint8",
    /* Range's bounds are float graph inputs: its output shape depends on their values,
     * and only int64 inputs are fixed at plan time */
    "test_range_float_type_positive_delta",
    /* onnx 1.12's reference computed align_corners from the unrounded output size
     * (in * scale = 2.4 and 2.25): x * (in - 1) / (2.4 - 1). The spec maps onto the
     * actual output size, as onnxruntime does and later onnx releases regenerated these
     * cases with; remodel gives onnxruntime's 4 and 2.5 where the data has 3.14 and 2.40. */
    "test_resize_downsample_scales_linear_align_corners",
    "test_resize_downsample_scales_cubic_align_corners",
    NULL,
};

/* An op the engine runs, by the op table. */
static int known_op(const Onnx__NodeProto *n)
{
    return rm_op_def(rm_op_lookup(n->domain, n->op_type))->flags & RM_OPF_ENGINE;
}

static int io_ok(Onnx__ValueInfoProto **vis, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const Onnx__TypeProto *t = vis[i]->type;
        if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !rm_dtype_host(t->tensor_type->elem_type))
            return 0;
    }
    return 1;
}

/* Whether the case belongs to the selection (see the header comment). */
static int selected(const char *name, const Onnx__ModelProto *mp)
{
    /* 1-D and 3-D cases are not required but pass, so they stay in */
    if (strstr(name, "_training"))
        return 0;
    for (size_t i = 0; excluded[i]; i++)
        if (!strcmp(excluded[i], name))
            return 0;
    const Onnx__GraphProto *g = mp->graph;
    if (!g || !io_ok(g->input, g->n_input) || !io_ok(g->output, g->n_output))
        return 0;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        if (!n->op_type || !known_op(n))
            return 0;
        if (!strcmp(n->op_type, "BatchNormalization") && rm_node_attr_int(n, "training_mode", 0))
            return 0;
    }
    return 1;
}

/* snprintf whose truncation (of absurdly long paths) is harmless here */
static void fmt(char *buf, size_t n, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, n, f, ap);
    va_end(ap);
}

/* Whether graph input `name` of gp is not also an initializer; its position among those
 * (the k of input_k.pb) into *k. */
static int data_input(const Onnx__GraphProto *gp, const char *name, int *k)
{
    int pos = 0;
    for (size_t i = 0; i < gp->n_input; i++) {
        int init = 0;
        for (size_t j = 0; j < gp->n_initializer && !init; j++)
            init = !strcmp(gp->initializer[j]->name, gp->input[i]->name);
        if (init)
            continue;
        if (!strcmp(gp->input[i]->name, name)) {
            *k = pos;
            return 1;
        }
        pos++;
    }
    return 0;
}

/* ONNX's Resize and Upsample cases feed scales and roi as graph inputs. remodel needs
 * them at plan time, as exporters write them (initializers, Constant nodes, or shape
 * arithmetic folded at plan time): the case's float values become an initializer the
 * node reads instead (int64 sizes are plan-time values already). */
static int params_to_initializers(struct rm_model *m, const char *dir, int set, char *why, size_t wn)
{
    const Onnx__GraphProto *gp = m->proto->graph;
    struct rm_error err;
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *n = gp->node[i];
        if (strcmp(n->op_type, "Resize") && strcmp(n->op_type, "Upsample"))
            continue;
        for (size_t slot = 1; slot < n->n_input && slot < 3; slot++) {
            char path[8192];
            struct rm_host_tensor t;
            const char *nm;
            int k;
            if (!n->input[slot][0] || !data_input(gp, n->input[slot], &k))
                continue;
            fmt(path, sizeof path, "%s/test_data_set_%d/input_%d.pb", dir, set, k);
            if (rm_tensor_read(path, &t, NULL, 0, &err)) {
                snprintf(why, wn, "input: %.900s", err.msg);
                return -1;
            }
            int rc = t.dtype != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
                     (!rm_model_add_initializer(m, n->input[slot], t.rank, t.dims, t.data, &nm, &err) &&
                      !rm_model_set_node_input(m, (int)i, slot, nm, &err))
                         ? 0 : -1;
            rm_tensor_free(&t);
            if (rc) {
                snprintf(why, wn, "initializer: %.900s", err.msg);
                return -1;
            }
        }
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

START_TEST(conformance)
{
    static const char *const sub[] = {"node", "pytorch-converted"};
    int ran = 0, passed = 0, skipped = 0, ran13 = 0;
    struct stat st;
    ck_assert_msg(stat(root(), &st) == 0,
                  "ONNX conformance data not found at %s: install Debian's libonnx-testdata "
                  "(or set RM_ONNX_TESTDATA)", root());
    const char *only = getenv("RM_CONFORMANCE_ONLY");
    for (int d = 0; d < 2; d++) {
        char base[4096];
        snprintf(base, sizeof base, "%s/%s", root(), sub[d]);
        DIR *dir = opendir(base);
        ck_assert_msg(dir != NULL, "cannot open %s", base);
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *e;
        while ((e = readdir(dir))) {
            if (strncmp(e->d_name, "test_", 5))
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                names = realloc(names, cap * sizeof *names);
                ck_assert(names != NULL);
            }
            names[n++] = strdup(e->d_name);
        }
        closedir(dir);
        qsort(names, n, sizeof *names, cmp_str);
        for (size_t i = 0; i < n; i++) {
            char path[8192], why[1024] = "";
            snprintf(path, sizeof path, "%.4000s/%.4000s", base, names[i]);
            if (only && !strstr(names[i], only)) {
                free(names[i]);
                continue;
            }
            struct rm_case_opts o = {ATOL, RTOL, 1, selected, params_to_initializers, 0};
            int r = rm_case_run(path, names[i], &o, why, sizeof why);
            if (r < 0) {
                skipped++;
            } else {
                ran++;
                ran13 += strstr(names[i], "1d") || strstr(names[i], "3d") || strstr(names[i], "1D") ||
                         strstr(names[i], "3D");
                if (r)
                    passed++;
                else
                    printf("FAIL %s/%s: %s\n", sub[d], names[i], why);
            }
            free(names[i]);
        }
        free(names);
    }
    printf("conformance: %d ran (%d of them 1-D/3-D), %d passed, %d failed, %d skipped (not selected)\n",
           ran, ran13, passed, ran - passed, skipped);
    fflush(stdout);
    ck_assert_int_gt(ran, 0);
    ck_assert_int_eq(passed, ran);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conformance");
    TCase *tc = tcase_create("onnx");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, conformance);
    suite_add_tcase(s, tc);
    return rm_test_run(s);
}
