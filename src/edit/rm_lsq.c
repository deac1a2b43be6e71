/* Regularised least squares by Gram matrix and Cholesky (see rm_lsq.h).
 *
 * The work is in one kernel: C[i][j] += sign * dot(a_i, a_j) over the lower triangle,
 * where a_i are contiguous rows. It accumulates the Gram matrix from a block of pending
 * rows (stored transposed, so that each unknown's values over the block are a
 * contiguous row) and does the trailing update of the blocked Cholesky factorisation.
 * It works on 4x4 tiles of C with 16 accumulators, so each loaded value serves four
 * multiply-adds. The triangular solves run on column chunks of the right-hand side
 * small enough to stay in cache. */
#include "rm_lsq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NB 64     /* Cholesky block */
#define CHUNK 32  /* right-hand-side columns solved together */

int rm_lsq_init(struct rm_lsq *l, int64_t d, int64_t o)
{
    memset(l, 0, sizeof *l);
    if (d <= 0 || o <= 0 || d > ((int64_t)1 << 20) || o > ((int64_t)1 << 24) ||
        (uint64_t)d * (uint64_t)d > ((uint64_t)1 << 31) || (uint64_t)d * (uint64_t)o > ((uint64_t)1 << 31))
        return -1;
    l->d = d;
    l->o = o;
    l->g = calloc((size_t)(d * d), sizeof *l->g);
    l->b = calloc((size_t)(d * o), sizeof *l->b);
    l->pt = malloc((size_t)(d * RM_LSQ_BLOCK) * sizeof *l->pt);
    l->py = malloc((size_t)(o * RM_LSQ_BLOCK) * sizeof *l->py);
    if (!l->g || !l->b || !l->pt || !l->py) {
        rm_lsq_free(l);
        return -1;
    }
    return 0;
}

void rm_lsq_free(struct rm_lsq *l)
{
    free(l->g);
    free(l->b);
    free(l->pt);
    free(l->py);
    memset(l, 0, sizeof *l);
}

/* C[i][j] += sign * sum_k a[i][k] * a[j][k] for 0 <= j <= i < n (C and a row-major with
 * leading dimensions ldc and lda). Entries above the diagonal inside the diagonal tiles
 * are written too (they are never read). */
static void syrk_lower(double *c, int64_t ldc, const double *a, int64_t lda, int64_t n, int64_t kdim, double sign)
{
    int64_t i0 = 0;
    for (; i0 + 4 <= n; i0 += 4) {
        const double *a0 = a + i0 * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
        int64_t j0 = 0;
        for (; j0 + 4 <= i0 + 4; j0 += 4) {
            const double *b0 = a + j0 * lda, *b1 = b0 + lda, *b2 = b1 + lda, *b3 = b2 + lda;
            double s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
            double s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
            for (int64_t k = 0; k < kdim; k++) {
                double x0 = a0[k], x1 = a1[k], x2 = a2[k], x3 = a3[k];
                double y0 = b0[k], y1 = b1[k], y2 = b2[k], y3 = b3[k];
                s00 += x0 * y0, s01 += x0 * y1, s02 += x0 * y2, s03 += x0 * y3;
                s10 += x1 * y0, s11 += x1 * y1, s12 += x1 * y2, s13 += x1 * y3;
                s20 += x2 * y0, s21 += x2 * y1, s22 += x2 * y2, s23 += x2 * y3;
                s30 += x3 * y0, s31 += x3 * y1, s32 += x3 * y2, s33 += x3 * y3;
            }
            double *c0 = c + i0 * ldc + j0, *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
            c0[0] += sign * s00, c0[1] += sign * s01, c0[2] += sign * s02, c0[3] += sign * s03;
            c1[0] += sign * s10, c1[1] += sign * s11, c1[2] += sign * s12, c1[3] += sign * s13;
            c2[0] += sign * s20, c2[1] += sign * s21, c2[2] += sign * s22, c2[3] += sign * s23;
            c3[0] += sign * s30, c3[1] += sign * s31, c3[2] += sign * s32, c3[3] += sign * s33;
        }
    }
    /* the rows left over (n not a multiple of 4): plain dot products */
    for (int64_t i = i0; i < n; i++)
        for (int64_t j = 0; j <= i; j++) {
            const double *ai = a + i * lda, *aj = a + j * lda;
            double s = 0;
            for (int64_t k = 0; k < kdim; k++)
                s += ai[k] * aj[k];
            c[i * ldc + j] += sign * s;
        }
}

void rm_lsq_add(struct rm_lsq *l, const float *x, const float *y)
{
    int64_t r = l->np;
    for (int64_t i = 0; i < l->d; i++)
        l->pt[i * RM_LSQ_BLOCK + r] = x[i];
    for (int64_t j = 0; j < l->o; j++) {
        l->py[r * l->o + j] = y[j];
        l->yy += (double)y[j] * y[j];
    }
    l->rows++;
    if (++l->np == RM_LSQ_BLOCK)
        rm_lsq_flush(l);
}

void rm_lsq_flush(struct rm_lsq *l)
{
    int64_t n = l->np, d = l->d, o = l->o;
    if (!n)
        return;
    syrk_lower(l->g, d, l->pt, RM_LSQ_BLOCK, d, n, 1.0);
    /* B[i][:] += sum_r x_r[i] y_r[:] */
    for (int64_t i = 0; i < d; i++) {
        double *bi = l->b + i * o;
        const double *xi = l->pt + i * RM_LSQ_BLOCK;
        for (int64_t r = 0; r < n; r++) {
            double x = xi[r];
            if (x == 0)
                continue; /* ReLU outputs and padding: many zeros */
            const double *yr = l->py + r * o;
            for (int64_t j = 0; j < o; j++)
                bi[j] += x * yr[j];
        }
    }
    l->np = 0;
}

/* In-place Cholesky A = L L^T of the lower triangle of a (d x d row-major), blocked:
 * factor a diagonal block, solve the panel below it, update the trailing matrix.
 * Returns 0, or -2 at a pivot that is not positive. */
static int cholesky(double *a, int64_t d)
{
    for (int64_t k0 = 0; k0 < d; k0 += NB) {
        int64_t k1 = k0 + NB < d ? k0 + NB : d;
        /* diagonal block and the panel below it, column by column (the updates from
         * columns before k0 are already applied) */
        for (int64_t j = k0; j < k1; j++) {
            const double *aj = a + j * d;
            double s = aj[j];
            for (int64_t k = k0; k < j; k++)
                s -= aj[k] * aj[k];
            if (!(s > 0) || !isfinite(s))
                return -2;
            double piv = sqrt(s);
            a[j * d + j] = piv;
            for (int64_t i = j + 1; i < d; i++) {
                double *ai = a + i * d;
                double t = ai[j];
                for (int64_t k = k0; k < j; k++)
                    t -= ai[k] * aj[k];
                ai[j] = t / piv;
            }
        }
        /* trailing matrix: A[i][j] -= sum_{k0 <= k < k1} L[i][k] L[j][k] */
        if (k1 < d)
            syrk_lower(a + k1 * d + k1, d, a + k1 * d + k0, d, d - k1, k1 - k0, -1.0);
    }
    return 0;
}

/* Solve L L^T X = R for a chunk of columns: z is d x cw (row-major), overwritten. */
static void solve_chunk(const double *l, int64_t d, double *z, int64_t cw)
{
    /* forward: z_i = (r_i - sum_{k<i} L[i][k] z_k) / L[i][i] */
    for (int64_t i = 0; i < d; i++) {
        const double *li = l + i * d;
        double *zi = z + i * cw;
        for (int64_t k = 0; k < i; k++) {
            double f = li[k];
            if (f == 0)
                continue;
            const double *zk = z + k * cw;
            for (int64_t c = 0; c < cw; c++)
                zi[c] -= f * zk[c];
        }
        double inv = 1.0 / li[i];
        for (int64_t c = 0; c < cw; c++)
            zi[c] *= inv;
    }
    /* backward: L^T x = z, row i of L giving the i-th unknown's coefficients in the
     * equations k < i */
    for (int64_t i = d - 1; i >= 0; i--) {
        const double *li = l + i * d;
        double *zi = z + i * cw;
        double inv = 1.0 / li[i];
        for (int64_t c = 0; c < cw; c++)
            zi[c] *= inv;
        for (int64_t k = 0; k < i; k++) {
            double f = li[k];
            if (f == 0)
                continue;
            double *zk = z + k * cw;
            for (int64_t c = 0; c < cw; c++)
                zk[c] -= f * zi[c];
        }
    }
}

/* |X W - Y|^2 = tr(W^T G W) - 2 tr(W^T B) + yy, with G's lower triangle. */
static double residual(const struct rm_lsq *l, const double *w)
{
    int64_t d = l->d, o = l->o;
    double quad = 0, lin = 0;
    for (int64_t i = 0; i < d; i++) {
        const double *wi = w + i * o, *gi = l->g + i * d, *bi = l->b + i * o;
        for (int64_t j = 0; j <= i; j++) {
            double gij = gi[j];
            if (gij == 0)
                continue;
            const double *wj = w + j * o;
            double dot = 0;
            for (int64_t c = 0; c < o; c++)
                dot += wi[c] * wj[c];
            quad += (i == j ? 1.0 : 2.0) * gij * dot;
        }
        for (int64_t c = 0; c < o; c++)
            lin += wi[c] * bi[c];
    }
    return quad - 2 * lin + l->yy;
}

int rm_lsq_solve(struct rm_lsq *l, const double *reg, const double *w0, double *w, double *err_w0,
                 double *err_w)
{
    int64_t d = l->d, o = l->o;
    rm_lsq_flush(l);
    double yy = l->yy > 0 ? l->yy : 1.0;
    if (err_w0)
        *err_w0 = fmax(residual(l, w0), 0.0) / yy;
    /* right-hand side R = B + diag(reg) W0, then G + diag(reg) factored in place */
    for (int64_t i = 0; i < d; i++) {
        for (int64_t c = 0; c < o; c++)
            w[i * o + c] = l->b[i * o + c] + reg[i] * w0[i * o + c];
        l->g[i * d + i] += reg[i];
    }
    int rc = cholesky(l->g, d);
    if (rc)
        return rc;
    double *z = malloc((size_t)(d * CHUNK) * sizeof *z);
    if (!z)
        return -1;
    for (int64_t c0 = 0; c0 < o; c0 += CHUNK) {
        int64_t cw = c0 + CHUNK < o ? CHUNK : o - c0;
        for (int64_t i = 0; i < d; i++)
            memcpy(z + i * cw, w + i * o + c0, (size_t)cw * sizeof *z);
        solve_chunk(l->g, d, z, cw);
        for (int64_t i = 0; i < d; i++)
            memcpy(w + i * o + c0, z + i * cw, (size_t)cw * sizeof *z);
    }
    free(z);
    if (err_w) {
        /* A W = R with A = G + diag(reg): tr(W^T G W) = tr(W^T R) - sum_j reg_j |W_j|^2,
         * so the residual needs no second copy of G */
        double quad = 0, lin = 0;
        for (int64_t i = 0; i < d; i++)
            for (int64_t c = 0; c < o; c++) {
                double wi = w[i * o + c];
                quad += wi * (l->b[i * o + c] + reg[i] * w0[i * o + c]) - reg[i] * wi * wi;
                lin += wi * l->b[i * o + c];
            }
        *err_w = fmax(quad - 2 * lin + l->yy, 0.0) / yy;
    }
    return 0;
}
