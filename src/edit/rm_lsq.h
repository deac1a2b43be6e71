/* Regularised linear least squares for layer reconstruction, exact in double precision:
 * rows (x, y) are streamed into the Gram matrix G = sum x x^T and B = sum x y^T (memory
 * d*d + d*o doubles whatever the number of rows), then
 *     (G + diag(reg)) W = B + diag(reg) W0
 * is solved by a Cholesky factorisation, which minimises
 *     |X W - Y|^2 + sum_j reg_j |W_j - W0_j|^2
 * (ridge regression pulled towards W0). Small and self-contained on purpose (see
 * README, "Pruning pipeline": why not LAPACK). The owner frees with rm_lsq_free. */
#ifndef RM_LSQ_H
#define RM_LSQ_H

#include <stdint.h>

struct rm_lsq {
    int64_t d, o;      /* unknowns per output, outputs */
    double *g;         /* d x d, row-major, lower triangle (j <= i) meaningful */
    double *b;         /* d x o */
    double yy;         /* sum of squared targets */
    int64_t rows;      /* rows added */
    double *pt;        /* pending rows, transposed: d x RM_LSQ_BLOCK */
    double *py;        /* their targets: RM_LSQ_BLOCK x o */
    int64_t np;        /* pending rows */
};

#define RM_LSQ_BLOCK 64

/* Set up an empty system of d unknowns and o outputs. Returns 0 or -1 (out of memory;
 * also when d*d does not fit in memory sizes). */
int rm_lsq_init(struct rm_lsq *l, int64_t d, int64_t o);
void rm_lsq_free(struct rm_lsq *l);

/* Add one row: x (d values), y (o values). */
void rm_lsq_add(struct rm_lsq *l, const float *x, const float *y);

/* Fold the pending rows into G and B (rm_lsq_solve does it too). */
void rm_lsq_flush(struct rm_lsq *l);

/* Solve with per-unknown regularisation reg (d values, each > 0) towards w0 (d x o,
 * row-major) into w (d x o). *err_w0 and *err_w (may be NULL) receive the relative
 * residual |X W - Y|^2 / |Y|^2 of w0 and of w over the rows added. G is destroyed (the
 * system can be solved once). Returns 0, -1 when out of memory, -2 when the matrix is
 * not positive definite in floating point (a reg too small for its scale). */
int rm_lsq_solve(struct rm_lsq *l, const double *reg, const double *w0, double *w, double *err_w0,
                 double *err_w);

#endif
