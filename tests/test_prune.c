/* Tests for the pruning pipeline's library parts: the least-squares solver of
 * reconstruction (rm_lsq), input sets. Expected values are planted: a system built from a
 * known solution must give that solution back; the CLI-level pipeline is tested against
 * onnxruntime and onnx's own counts in tests/test_prune.py. */
#include "rm_lsq.h"
#include "rm_prng.h"
#include "test_util.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double normal(uint64_t *st)
{
    double u1 = (double)((rm_splitmix64(st) >> 11) + 1) / 9007199254740992.0;
    double u2 = rm_uniform01(st);
    return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

/* Rows x (d values, a constant 1 last) and y = x W (o outputs), W planted: the solver with
 * a negligible ridge finds W again, and the residual it reports is zero; w0 = 0 has
 * residual 1 (all of |y|^2). d is not a multiple of the 4x4 tiles, rows not a multiple of
 * the block, so every edge of the kernels runs. */
START_TEST(lsq_recovers_planted_solution)
{
    const int64_t d = 23 + _i * 70, o = 5 + _i * 30, rows = 3 * d + 17;
    uint64_t st = 42 + (uint64_t)_i;
    double *wt = malloc((size_t)(d * o) * sizeof *wt), *w = malloc((size_t)(d * o) * sizeof *w);
    double *w0 = calloc((size_t)(d * o), sizeof *w0), *reg = malloc((size_t)d * sizeof *reg);
    float *x = malloc((size_t)d * sizeof *x), *y = malloc((size_t)o * sizeof *y);
    for (int64_t i = 0; i < d * o; i++)
        wt[i] = normal(&st);
    struct rm_lsq l;
    ck_assert_int_eq(rm_lsq_init(&l, d, o), 0);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < d; i++)
            x[i] = i == d - 1 ? 1.0f : (float)normal(&st);
        for (int64_t j = 0; j < o; j++) {
            double s = 0;
            for (int64_t i = 0; i < d; i++)
                s += (double)x[i] * wt[i * o + j];
            y[j] = (float)s;
        }
        rm_lsq_add(&l, x, y);
    }
    ck_assert_int_eq(l.rows, rows);
    for (int64_t i = 0; i < d; i++)
        reg[i] = 1e-9;
    double e0, e1;
    ck_assert_int_eq(rm_lsq_solve(&l, reg, w0, w, &e0, &e1), 0);
    ck_assert_msg(fabs(e0 - 1.0) < 1e-9, "residual of w0 = 0: %g", e0);
    ck_assert_msg(e1 < 1e-10, "residual of the solution: %g", e1);
    double worst = 0;
    for (int64_t i = 0; i < d * o; i++)
        worst = fmax(worst, fabs(w[i] - wt[i]));
    /* y was rounded to float: the solution is exact to float precision */
    ck_assert_msg(worst < 1e-4, "max |w - planted| = %g", worst);
    rm_lsq_free(&l);
    free(wt);
    free(w);
    free(w0);
    free(reg);
    free(x);
    free(y);
}
END_TEST

/* Fewer rows than unknowns: the ridge makes it solvable, and a heavy ridge keeps the
 * solution at w0; the planted rows are still fitted better than by w0. */
START_TEST(lsq_ridge_pulls_towards_w0)
{
    const int64_t d = 40, o = 3, rows = 12;
    uint64_t st = 7;
    double *w0 = malloc((size_t)(d * o) * sizeof *w0), *w = malloc((size_t)(d * o) * sizeof *w);
    double reg[40];
    float x[40], y[3];
    for (int64_t i = 0; i < d * o; i++)
        w0[i] = normal(&st);
    for (int heavy = 0; heavy < 2; heavy++) {
        struct rm_lsq l;
        uint64_t s2 = 99;
        ck_assert_int_eq(rm_lsq_init(&l, d, o), 0);
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t i = 0; i < d; i++)
                x[i] = (float)normal(&s2);
            for (int64_t j = 0; j < o; j++)
                y[j] = (float)normal(&s2);
            rm_lsq_add(&l, x, y);
        }
        rm_lsq_flush(&l);
        for (int64_t i = 0; i < d; i++)
            reg[i] = (heavy ? 1e9 : 1e-3) * l.g[i * d + i];
        double e0, e1;
        ck_assert_int_eq(rm_lsq_solve(&l, reg, w0, w, &e0, &e1), 0);
        double moved = 0;
        for (int64_t i = 0; i < d * o; i++)
            moved = fmax(moved, fabs(w[i] - w0[i]));
        if (heavy) {
            ck_assert_msg(moved < 1e-6, "a heavy ridge moved w by %g", moved);
        } else {
            /* 12 rows, 40 unknowns: the rows can be fitted (almost) exactly */
            ck_assert_msg(e1 < 1e-3 && e1 < e0, "residual %g (w0: %g)", e1, e0);
        }
        rm_lsq_free(&l);
    }
    free(w0);
    free(w);
}
END_TEST

/* A matrix that is not positive definite is reported, never solved into NaNs. */
START_TEST(lsq_not_positive_definite)
{
    struct rm_lsq l;
    ck_assert_int_eq(rm_lsq_init(&l, 2, 1), 0);
    float x[2] = {1, 1}, y[1] = {1};
    rm_lsq_add(&l, x, y);
    double reg[2] = {0, 0}, w0[2] = {0, 0}, w[2];
    ck_assert_int_eq(rm_lsq_solve(&l, reg, w0, w, NULL, NULL), -2);
    rm_lsq_free(&l);
    ck_assert_int_eq(rm_lsq_init(&l, 0, 1), -1);
    ck_assert_int_eq(rm_lsq_init(&l, (int64_t)1 << 40, 1), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("prune");
    TCase *t = tcase_create("lsq");
    tcase_set_timeout(t, 120);
    tcase_add_loop_test(t, lsq_recovers_planted_solution, 0, 3);
    tcase_add_test(t, lsq_ridge_pulls_towards_w0);
    tcase_add_test(t, lsq_not_positive_definite);
    suite_add_tcase(s, t);
    return rm_test_run(s);
}
