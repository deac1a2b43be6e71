/* Every operator the engine runs, against onnxruntime (ggml's test-backend-ops idea):
 * tests/ops_cases.py writes one-node models of each op (plus a few torch exports of shape
 * arithmetic and decompositions) with seeded random inputs and onnxruntime's outputs;
 * each runs in remodel with fusion on and off and must match within
 * |a - b| <= 1e-5 + 1e-4 |b|, with the same ONNX output types. The op table drives the
 * coverage: an op marked RM_OPF_ENGINE without a case fails the test, so a new op
 * cannot go untested. Expected values come from onnxruntime, never from remodel.
 *
 * The README's operator list is the op table's too: `test_ops --readme` prints it, and
 * the test checks README.md holds it. */
#include "onnx_case.h"
#include "rm_op.h"
#include "test_util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rm_engine.h"

#define ATOL 1e-5
#define RTOL 1e-4

/* The folder the cases are written to, by main (removed afterwards unless RM_OPS_KEEP
 * is set). */
static char casedir[] = "/tmp/remodel-ops-XXXXXX";

/* Steps some cases must plan to: fusion of element-wise ops into a conv, and folding. */
static const struct {
    const char *name;
    int fuse, steps;
} expect_steps[] = {
    {"Tanh_x4_conv", 1, 1},        /* conv + tanh post-op */
    {"Tanh_x4_conv", 0, 2},        /* conv, eltwise on its blocked output */
    {"Gelu_erf_x4_conv3", 1, 1},   {"Mish_x4_conv", 1, 1}, {"Pow_scalar_x4_conv", 1, 1},
    {"Reciprocal_x4_conv", 1, 1},  {"Neg_x4_conv", 1, 1},  {"Elu_x4_conv", 1, 1},
    {"Erf_x4_conv", 1, 2},         /* no eltwise equivalent: conv, then the C kernel */
    {"Abs_x4_const", 1, 0},        /* folded */
    {"Range_int_in", 1, 0},        /* bounds given at plan time: folded */
    {"ConstantOfShape_float_in", 1, 0},
    {"Expand_input_in", 1, 1},     /* shape given: only the expansion runs */
    {"export_ShapeMath_opset11", 0, -1}, /* (runs; the shape subgraph folds: see below) */
};

START_TEST(every_engine_op_against_onnxruntime)
{
    char path[8192], line[1024];
    int covered[RM_OP_COUNT] = {0}, ran = 0, passed = 0;
    const char *only = getenv("RM_OPS_ONLY");
    snprintf(path, sizeof path, "%s/cases.txt", casedir);
    FILE *f = fopen(path, "r");
    ck_assert(f != NULL);
    while (fgets(line, sizeof line, f)) {
        char name[512], op[128];
        if (sscanf(line, "%511s %127s", name, op) != 2)
            continue;
        if (only && !strstr(name, only))
            continue;
        snprintf(path, sizeof path, "%s/%s", casedir, name);
        for (int fuse = 1; fuse >= 0; fuse--) {
            char why[1024] = "";
            struct rm_case_opts o = {ATOL, RTOL, fuse, NULL, NULL, 0};
            int r = rm_case_run(path, name, &o, why, sizeof why);
            for (size_t e = 0; r == 1 && e < sizeof expect_steps / sizeof *expect_steps; e++)
                if (!strcmp(expect_steps[e].name, name) && expect_steps[e].fuse == fuse && expect_steps[e].steps >= 0 &&
                    expect_steps[e].steps != o.n_steps) {
                    snprintf(why, sizeof why, "%d steps, expected %d", o.n_steps, expect_steps[e].steps);
                    r = 0;
                }
            ran++;
            if (r == 1) {
                passed++;
                covered[rm_op_lookup(NULL, op)] = 1;
            } else {
                printf("FAIL %s (fuse %d): %s\n", name, fuse, why);
            }
        }
    }
    fclose(f);
    int missing = 0;
    for (int op = 1; op < RM_OP_COUNT && !only; op++)
        if ((rm_op_def((enum rm_op)op)->flags & RM_OPF_ENGINE) && !covered[op]) {
            printf("no passing case for %s, which the engine runs: add one to tests/ops_cases.py\n",
                   rm_op_name((enum rm_op)op));
            missing++;
        }
    printf("ops: %d runs, %d passed, %d failed; %d engine ops without a passing case\n", ran, passed, ran - passed,
           missing);
    fflush(stdout);
    ck_assert_int_gt(ran, 0);
    ck_assert_int_eq(passed, ran);
    ck_assert_int_eq(missing, 0);
}
END_TEST

/* Hostile sizes, wrong types and unsupported ops: refused by rm_session_create with the
 * expected code and message, never a crash or an allocation of the hostile size. */
START_TEST(bad_models_are_refused)
{
    char path[8192], line[1024];
    int n = 0, bad = 0;
    snprintf(path, sizeof path, "%s/refusals.txt", casedir);
    FILE *f = fopen(path, "r");
    ck_assert(f != NULL);
    while (fgets(line, sizeof line, f)) {
        char name[256], code[32];
        int at;
        line[strcspn(line, "\n")] = '\0';
        ck_assert_int_eq(sscanf(line, "%255s %31s %n", name, code, &at), 2);
        const char *want = line + at;
        struct rm_model *m;
        struct rm_plan *p = NULL;
        struct rm_error err;
        rm_error_clear(&err);
        snprintf(path, sizeof path, "%s/refuse/%s.onnx", casedir, name);
        ck_assert_int_eq(rm_model_load(&m, path, NULL, &err), 0);
        int rc = rm_session_create(&p, m, NULL, &err);
        if (rc != (!strcmp(code, "unsupported") ? RM_EUNSUPPORTED : RM_EFORMAT) || !strstr(err.msg, want)) {
            printf("FAIL refusal %s: got %d '%s', expected %s '%s'\n", name, rc, rc ? err.msg : "", code, want);
            fflush(stdout);
            bad++;
        }
        rm_session_free(p);
        rm_model_free(m);
        n++;
    }
    fclose(f);
    ck_assert_int_gt(n, 20);
    ck_assert_int_eq(bad, 0);
}
END_TEST

/* run -o writes every output in its ONNX type: the shape-arithmetic export's outputs are
 * float32, float32, int64 (Range), bool (x > 0.5) and float32, as onnxruntime's are. */
START_TEST(run_writes_outputs_in_their_type)
{
    char model[8192], x[8192], out[8192], ref[8192], *so = NULL, *se = NULL;
    snprintf(model, sizeof model, "%s/export_ShapeMath_opset11/model.onnx", casedir);
    snprintf(x, sizeof x, "x=%s/export_ShapeMath_opset11/test_data_set_0/input_0.pb", casedir);
    snprintf(out, sizeof out, "%s/run_out", casedir);
    const char *args[] = {"run", model, "-i", x, "-o", out, NULL};
    ck_assert_msg(rm_test_run_remodel(args, &so, &se) == 0, "remodel run failed: %s", se);
    for (int k = 0; k < 5; k++) {
        char file[8300];
        size_t na, nb;
        snprintf(file, sizeof file, "%s/output_%d.pb", out, k);
        snprintf(ref, sizeof ref, "%s/export_ShapeMath_opset11/test_data_set_0/output_%d.pb", casedir, k);
        char *a = rm_test_read_file(file, &na), *b = rm_test_read_file(ref, &nb);
        Onnx__TensorProto *ta = onnx__tensor_proto__unpack(NULL, na, (uint8_t *)a);
        Onnx__TensorProto *tb = onnx__tensor_proto__unpack(NULL, nb, (uint8_t *)b);
        ck_assert(ta && tb);
        ck_assert_msg(ta->data_type == tb->data_type, "output %d: %s, onnxruntime's is %s", k,
                      rm_dtype_name(ta->data_type), rm_dtype_name(tb->data_type));
        if (tb->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) /* ints and bools exactly */
            ck_assert_msg(ta->raw_data.len == tb->raw_data.len &&
                              !memcmp(ta->raw_data.data, tb->raw_data.data, ta->raw_data.len),
                          "output %d differs from onnxruntime's", k);
        onnx__tensor_proto__free_unpacked(ta, NULL);
        onnx__tensor_proto__free_unpacked(tb, NULL);
        free(a);
        free(b);
    }
    ck_assert_ptr_nonnull(strstr(so, " bool "));
    free(so);
    free(se);
}
END_TEST

/* The engine's ops as README.md lists them: "  `Abs`, `Add`, ..." indented by 2 (a bullet's
 * text), wrapped at 94 columns. */
static char *op_list(void)
{
    size_t cap = 16384, len = 0, col = 0;
    char *s = malloc(cap);
    if (!s)
        abort();
    s[0] = '\0';
    for (int op = 1; op < RM_OP_COUNT; op++) {
        if (!(rm_op_def((enum rm_op)op)->flags & RM_OPF_ENGINE))
            continue;
        char item[160];
        int last = 1;
        for (int q = op + 1; q < RM_OP_COUNT; q++)
            last &= !(rm_op_def((enum rm_op)q)->flags & RM_OPF_ENGINE);
        int n = snprintf(item, sizeof item, "`%s`%s", rm_op_name((enum rm_op)op), last ? "." : ",");
        if (!col || col + 1 + (size_t)n > 94) {
            len += (size_t)snprintf(s + len, cap - len, "%s  ", col ? "\n" : "");
            col = 2;
        } else {
            len += (size_t)snprintf(s + len, cap - len, " ");
            col++;
        }
        len += (size_t)snprintf(s + len, cap - len, "%s", item);
        col += (size_t)n;
        if (len >= cap - 200)
            abort();
    }
    snprintf(s + len, cap - len, "\n");
    return s;
}

START_TEST(readme_lists_the_op_table)
{
    const char *readme = getenv("RM_README");
    ck_assert_msg(readme != NULL, "RM_README is not set");
    char *text = rm_test_read_file(readme, NULL), *list = op_list();
    ck_assert_msg(strstr(text, list) != NULL,
                  "README.md's operator list is not the op table's; replace it with the output of "
                  "`build/tests/test_ops --readme`:\n%s", list);
    free(text);
    free(list);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--readme")) {
        char *list = op_list();
        fputs(list, stdout);
        free(list);
        return 0;
    }
    const char *script = getenv("RM_OPS_CASES");
    char cmd[8192];
    if (!script || !mkdtemp(casedir)) {
        fprintf(stderr, "test_ops: RM_OPS_CASES (tests/ops_cases.py) is not set, or no temporary folder\n");
        return EXIT_FAILURE;
    }
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' >'%s/log.txt' 2>&1", script, casedir, casedir);
    if (system(cmd)) {
        snprintf(cmd, sizeof cmd, "cat '%s/log.txt'; rm -rf '%s'", casedir, casedir);
        fprintf(stderr, "test_ops: tests/ops_cases.py failed:\n");
        fflush(stderr);
        if (system(cmd))
            fprintf(stderr, "test_ops: cannot show or remove %s\n", casedir);
        return EXIT_FAILURE;
    }
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("onnxruntime");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, every_engine_op_against_onnxruntime);
    tcase_add_test(tc, bad_models_are_refused);
    tcase_add_test(tc, run_writes_outputs_in_their_type);
    tcase_add_test(tc, readme_lists_the_op_table);
    suite_add_tcase(s, tc);
    int rc = rm_test_run(s);
    if (!getenv("RM_OPS_KEEP")) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", casedir);
        if (system(cmd))
            fprintf(stderr, "test_ops: cannot remove %s\n", casedir);
    } else {
        printf("cases kept in %s\n", casedir);
    }
    return rc;
}
