/* Reconstruction after a prune (rm_prune_int.h: rm_prune_reconstruct): each layer whose
 * input channels were removed (a group-1 Conv or a Linear) is refitted by ridge least
 * squares so that its output computed from the pruned model's actual input matches the
 * original model's output at that layer on the calibration data (ThiNet; He et al. 2017,
 * "Channel Pruning for Accelerating Very Deep Neural Networks").
 *
 * Memory stays bounded: the original's outputs are sampled once, at up to max_rows
 * positions per layer (spread over the samples, positions drawn without replacement);
 * the pruned model's inputs are streamed sample by sample into each layer's Gram matrix
 * (rm_lsq.h), at the same positions. Layers are refitted in waves, in graph order: a
 * wave holds the layers whose inputs depend on no layer still to be refitted, and its
 * inputs are read from the model with every earlier wave already refitted, so errors do
 * not pile up. Each wave runs the samples through the graph only as far as its inputs.
 *
 * The unknowns of a conv output channel are its weights over the kept input channels and
 * kernel window, plus its bias: a row is the im2col patch of the input at one output
 * position. The ridge pulls each weight towards its value after the prune (the original
 * weight), scaled by its Gram diagonal, so a layer with few rows stays close to what it
 * was. A conv without a bias that feeds a BatchNorm gets its fitted bias folded into that
 * BatchNorm's running mean; any other gets a bias input. */
#include "rm_calib.h"
#include "rm_lsq.h"
#include "rm_ops_int.h"
#include "rm_prng.h"
#include "rm_prune_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct layer {
    const char *tensor;       /* output tensor (the same name in both models) */
    const int64_t *out_keep;  /* kept output channels of the original's, or NULL */
    const char *x;            /* input tensor in the pruned model */
    char path[256];
    bool gemm, skip;
    bool last;                /* a Linear on the last axis: every position is a row */
    /* geometry in the pruned model */
    int64_t nb, cin, h, w, oh, ow, kh, kw, o_full;
    struct rm_window win;
    int64_t o;                /* outputs fitted */
    int64_t d;                /* unknowns: kept inputs x kernel (+ 1 for the bias) */
    bool bias_col;
    int transb;
    double alpha, beta;
    int64_t positions;        /* per sample */
    int64_t per_sample;       /* sampled per sample */
    float *y;                 /* the original's outputs at the sampled positions */
    int wave;
    struct rm_lsq lsq;
    float *row;
};

struct recon {
    struct layer *layers;
    size_t n;
    int samples;
    uint64_t seed;
    int *idx;                 /* wave run: item -> layer */
    int64_t *pos;             /* scratch: sampled positions */
    int64_t *perm;            /* scratch: positions permutation */
    int64_t perm_n;
};

/* The positions layer i samples in sample s (the same in both passes). */
static int64_t *positions(struct recon *r, size_t i, int s)
{
    struct layer *l = &r->layers[i];
    if (l->per_sample == l->positions) {
        for (int64_t p = 0; p < l->positions; p++)
            r->pos[p] = p;
        return r->pos;
    }
    uint64_t st = r->seed ^ ((uint64_t)(i + 1) << 32) ^ (uint64_t)(s + 1) * 0x9e3779b97f4a7c15ULL;
    for (int64_t p = 0; p < l->positions; p++)
        r->perm[p] = p;
    /* partial Fisher-Yates: the first per_sample of a random permutation, in order */
    for (int64_t p = 0; p < l->per_sample; p++) {
        int64_t q = p + (int64_t)(rm_splitmix64(&st) % (uint64_t)(l->positions - p));
        int64_t t = r->perm[p];
        r->perm[p] = r->perm[q];
        r->perm[q] = t;
    }
    memcpy(r->pos, r->perm, (size_t)l->per_sample * sizeof *r->pos);
    return r->pos;
}

/* The original's output of layer `item` in sample s: keep the sampled rows. */
static int take_targets(void *ctx, int s, size_t item, struct rm_host_tensor *t, struct rm_error *err)
{
    struct recon *r = ctx;
    struct layer *l = &r->layers[r->idx[item]];
    /* the original's channels (the pruned model may have fewer) */
    int64_t o_full = t->rank >= 2 ? t->dims[l->last ? t->rank - 1 : 1] : -1;
    int64_t expect = l->gemm ? l->nb * o_full : l->nb * o_full * l->oh * l->ow;
    bool fits = o_full >= l->o;
    for (int64_t j = 0; fits && l->out_keep && j < l->o; j++)
        fits = l->out_keep[j] >= 0 && l->out_keep[j] < o_full;
    if (t->dtype != RM_DTYPE_FLOAT || t->numel != expect || !fits)
        return rm_error_set(err, RM_EFORMAT, "reconstruct: %s: the original's output does not have the pruned "
                            "one's shape", l->path);
    l->o_full = o_full;
    const float *y = t->data;
    int64_t *pos = positions(r, (size_t)r->idx[item], s), hw = l->oh * l->ow;
    for (int64_t k = 0; k < l->per_sample; k++) {
        float *dst = l->y + ((int64_t)s * l->per_sample + k) * l->o;
        int64_t p = pos[k];
        for (int64_t j = 0; j < l->o; j++) {
            int64_t c = l->out_keep ? l->out_keep[j] : j;
            /* conv: y[n][c][oy][ox] with p = n * hw + oy * ow + ox; Linear: y[n][c] */
            dst[j] = l->gemm ? y[p * l->o_full + c] : y[((p / hw) * l->o_full + c) * hw + p % hw];
        }
    }
    return 0;
}

/* The pruned model's input of a layer of the wave in sample s: rows into its Gram. */
static int take_inputs(void *ctx, int s, size_t item, struct rm_host_tensor *t, struct rm_error *err)
{
    struct recon *r = ctx;
    struct layer *l = &r->layers[r->idx[item]];
    int64_t expect = l->gemm ? l->nb * l->cin : l->nb * l->cin * l->h * l->w;
    if (t->dtype != RM_DTYPE_FLOAT || t->numel != expect)
        return rm_error_set(err, RM_EFORMAT, "reconstruct: %s: its input has %lld values, %lld expected", l->path,
                            (long long)t->numel, (long long)expect);
    const float *x = t->data;
    int64_t *pos = positions(r, (size_t)r->idx[item], s);
    int64_t hw = l->oh * l->ow, kk = l->kh * l->kw;
    for (int64_t k = 0; k < l->per_sample; k++) {
        int64_t p = pos[k];
        float *row = l->row;
        if (l->gemm) {
            memcpy(row, x + p * l->cin, (size_t)l->cin * sizeof *row);
        } else {
            int64_t n = p / hw, oy = (p % hw) / l->ow, ox = p % l->ow;
            /* row[(c * kh + ky) * kw + kx] = x[n][c][iy][ix], 0 in the padding */
            for (int64_t c = 0; c < l->cin; c++) {
                const float *xc = x + (n * l->cin + c) * l->h * l->w;
                for (int64_t ky = 0; ky < l->kh; ky++) {
                    int64_t iy = oy * l->win.s[0] - l->win.pl[0] + ky * l->win.d[0];
                    for (int64_t kx = 0; kx < l->kw; kx++) {
                        int64_t ix = ox * l->win.s[1] - l->win.pl[1] + kx * l->win.d[1];
                        row[c * kk + ky * l->kw + kx] =
                            iy >= 0 && iy < l->h && ix >= 0 && ix < l->w ? xc[iy * l->w + ix] : 0.0f;
                    }
                }
            }
        }
        if (l->bias_col)
            row[l->d - 1] = 1.0f;
        rm_lsq_add(&l->lsq, row, l->y + ((int64_t)s * l->per_sample + k) * l->o);
    }
    return 0;
}

/* Geometry and parameters of layer l (node in the pruned model's graph g). */
static int describe(struct layer *l, const struct rm_graph *g, int node, const struct edit *e, rm_findings *log)
{
    const struct rm_node *n = &g->nodes[node];
    const struct rm_value *x = &g->values[n->inputs[0]], *y = &g->values[n->outputs[0]];
    const struct rm_value *w = n->proto->n_input > 1 && n->inputs[1] >= 0 ? &g->values[n->inputs[1]] : NULL;
    l->x = x->name;
    const char *why = NULL;
    if (!w || w->rank < 2) {
        why = "its weight's shape is unknown";
    } else if (rm_edit_is_linear(g, node)) {
        /* a Gemm, or a MatMul by a constant [in, out] weight: transB 0, alpha 1, and no bias
         * of its own to refit (beta 0: the Add after it keeps its bias) */
        bool gemm = n->op == RM_OP_GEMM;
        l->gemm = true;
        l->transb = gemm ? (int)rm_node_attr_int(n->proto, "transB", 0) : 0;
        l->alpha = gemm ? rm_node_attr_float(n->proto, "alpha", 1.0f) : 1.0f;
        l->beta = gemm ? rm_node_attr_float(n->proto, "beta", 1.0f) : 0.0f;
        if (rm_node_attr_int(n->proto, "transA", 0) || x->rank != 2 || y->rank != 2 || w->rank != 2 ||
            l->alpha == 0) {
            why = "a Gemm other than a Linear";
        } else {
            l->nb = x->dims[0];
            l->cin = x->dims[1];
            l->o_full = y->dims[1];
            l->positions = l->nb;
            const struct rm_value *c = n->proto->n_input > 2 && n->inputs[2] >= 0 ? &g->values[n->inputs[2]] : NULL;
            bool c_vector = c && ((c->rank == 1 && c->dims[0] == l->o_full) ||
                                  (c->rank == 2 && c->dims[0] == 1 && c->dims[1] == l->o_full));
            if (c && !c_vector)
                why = "its bias is not a vector";
            l->bias_col = l->beta != 0;
            l->kh = l->kw = 1;
        }
    } else if (rm_prune_last_linear(g, node)) {
        /* a MatMul by [in, out] on the last axis of [..., in] (ConvNeXt's and a transformer's
         * MLP): the rows are every position before that axis; its bias is the Add after it */
        int64_t rows;
        int wnode;
        size_t wslot;
        bool transposed;
        l->gemm = l->last = true;
        l->transb = 0;
        l->alpha = 1.0;
        l->beta = 0.0;
        if (!rm_edit_linear_weight(g, node, &wnode, &wslot, &transposed) || transposed) {
            why = "its weight is read through a Transpose node";
        } else if (rm_dims_numel(x->dims, (size_t)x->rank - 1, &rows) || rows <= 0 || w->rank != 2) {
            why = "its input's shape is unknown";
        } else {
            l->nb = l->positions = rows;
            l->cin = x->dims[x->rank - 1];
            l->o_full = y->dims[y->rank - 1];
            l->bias_col = false;
            l->kh = l->kw = 1;
        }
    } else if (n->op != RM_OP_CONV) {
        /* a ConvTranspose that lost input channels keeps its pruned weights */
        why = "only Conv and Linear layers are refitted";
    } else {
        if (rm_node_attr_int(n->proto, "group", 1) != 1 || w->rank != 4 || x->rank != 4 || y->rank != 4) {
            why = "only 2-D convolutions without groups are refitted";
        } else {
            int64_t kernel[2] = {w->dims[2], w->dims[3]};
            char buf[160];
            if (rm_window_of(n->proto, 4, x->dims, kernel, false, &l->win, buf, sizeof buf)) {
                why = "its window cannot be followed";
            } else {
                l->nb = x->dims[0];
                l->cin = x->dims[1];
                l->h = x->dims[2];
                l->w = x->dims[3];
                l->kh = w->dims[2];
                l->kw = w->dims[3];
                l->oh = y->dims[2];
                l->ow = y->dims[3];
                l->o_full = y->dims[1];
                l->positions = l->nb * l->oh * l->ow;
                l->bias_col = true;
            }
        }
    }
    for (int d = 0; !why && d < x->rank; d++)
        if (x->dims[d] <= 0)
            why = "its input's shape is unknown";
    if (why) {
        rm_findings_add(log, RM_FINDING_NOTE, -1, "reconstruct: %s: not refitted (%s)", rm_edit_where(e, node), why);
        l->skip = true;
        return 0;
    }
    l->d = l->cin * l->kh * l->kw + (l->bias_col ? 1 : 0);
    return 0;
}

/* The current weights of layer l (node of e's graph) as w0[d][o], and the bias. */
static int read_w0(struct edit *e, int node, struct layer *l, double *w0)
{
    float *w = NULL, *b = NULL;
    int64_t nw, nbias;
    const Onnx__TensorProto *tw, *tb;
    int rc = rm_edit_param(e, node, 1, &w, &nw, &tw);
    if (!rc)
        rc = rm_edit_param(e, node, 2, &b, &nbias, &tb);
    if (rc)
        goto done;
    int64_t din = l->d - (l->bias_col ? 1 : 0);
    if (nw != din * l->o) {
        rc = rm_error_set(e->err, RM_EEDIT, "reconstruct: %s: weight has %lld values, %lld expected", l->path,
                          (long long)nw, (long long)(din * l->o));
        goto done;
    }
    for (int64_t i = 0; i < din; i++)
        for (int64_t j = 0; j < l->o; j++) {
            /* conv: weight[j][i]; Linear: alpha * B, B[j][i] (transB) or B[i][j] */
            double v = l->gemm && !l->transb ? w[i * l->o + j] : w[j * din + i];
            w0[i * l->o + j] = l->gemm ? l->alpha * v : v;
        }
    if (l->bias_col)
        for (int64_t j = 0; j < l->o; j++)
            w0[din * l->o + j] = b && nbias == l->o ? (l->gemm ? l->beta : 1.0) * b[j] : 0.0;
done:
    free(w);
    free(b);
    return rc;
}

/* Write the refitted weights w[d][o] of layer l (node of e's graph). */
static int write_w(struct edit *e, int node, struct layer *l, const double *w)
{
    const struct rm_node *n = &e->g->nodes[node];
    int64_t din = l->d - (l->bias_col ? 1 : 0);
    float *nw = malloc((size_t)(din * l->o) * sizeof *nw);
    float *nb = malloc((size_t)l->o * sizeof *nb);
    int rc = 0;
    if (!nw || !nb) {
        rc = rm_error_set(e->err, RM_ENOMEM, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < din; i++)
        for (int64_t j = 0; j < l->o; j++) {
            double v = w[i * l->o + j] / (l->gemm ? l->alpha : 1.0);
            if (l->gemm && !l->transb)
                nw[i * l->o + j] = (float)v;
            else
                nw[j * din + i] = (float)v;
        }
    const Onnx__TensorProto *tw = NULL;
    {
        int src = rm_graph_initializer_of(e->g, n->inputs[1]);
        tw = src >= 0 ? e->m->proto->graph->initializer[e->g->values[src].init] : NULL;
    }
    if (!tw || tw->n_dims > RM_MAX_RANK) {
        rc = rm_error_set(e->err, RM_EEDIT, "reconstruct: %s: its weight is not an initializer", l->path);
        goto done;
    }
    char name[512];
    snprintf(name, sizeof name, "%s.weight", l->path);
    int64_t dims[RM_MAX_RANK];
    for (size_t k = 0; k < tw->n_dims; k++)
        dims[k] = tw->dims[k];
    if ((rc = rm_edit_write_param(e, node, 1, dims, (int)tw->n_dims, nw, name)))
        goto done;
    if (!l->bias_col)
        goto done;
    for (int64_t j = 0; j < l->o; j++)
        nb[j] = (float)(w[din * l->o + j] / (l->gemm ? l->beta : 1.0));
    bool has_bias = n->proto->n_input > 2 && n->proto->input[2][0];
    snprintf(name, sizeof name, "%s.bias", l->path);
    if (has_bias || l->gemm) {
        const struct rm_value *c = has_bias ? &e->g->values[n->inputs[2]] : NULL;
        int64_t cd[2] = {1, l->o};
        rc = c && c->rank == 2 ? rm_edit_write_param(e, node, 2, cd, 2, nb, name)
                               : rm_edit_write_param(e, node, 2, &l->o, 1, nb, name);
        goto done;
    }
    /* no bias: into the running mean of the BatchNorm that alone reads the output,
     * BN(y + b) = BN'(y) with mean' = mean - b; else a bias input */
    const struct rm_value *y = &e->g->values[n->outputs[0]];
    int bn = y->n_consumers == 1 && y->output < 0 ? y->consumers[0] : -1;
    if (bn >= 0 && e->g->nodes[bn].op == RM_OP_BATCH_NORM && e->g->nodes[bn].inputs[0] == n->outputs[0] &&
        e->g->nodes[bn].proto->n_input >= 5) {
        float *mean = NULL;
        int64_t nm;
        const Onnx__TensorProto *tm;
        rc = rm_edit_param(e, bn, 3, &mean, &nm, &tm);
        if (!rc && (!mean || nm != l->o))
            rc = rm_error_set(e->err, RM_EEDIT, "reconstruct: %s: its BatchNorm has %lld channels, %lld expected",
                              l->path, (long long)nm, (long long)l->o);
        if (!rc) {
            for (int64_t j = 0; j < l->o; j++)
                mean[j] -= nb[j];
            snprintf(name, sizeof name, "%s.running_mean", rm_edit_where(e, bn));
            rc = rm_edit_write_param(e, bn, 3, &l->o, 1, mean, name);
        }
        free(mean);
    } else {
        rc = rm_edit_write_param(e, node, 2, &l->o, 1, nb, name);
    }
done:
    free(nw);
    free(nb);
    return rc;
}

static int producer_of(const struct rm_graph *g, const char *tensor)
{
    int v = rm_graph_find(g, tensor);
    return v >= 0 ? g->values[v].producer : -1;
}

/* Fit and write the layers of one wave. */
static int run_wave(struct recon *r, struct rm_calib *cal, struct rm_model *m, int wave, const rm_prune_options *o,
                    rm_prune_report *rep, rm_findings *log, struct rm_error *err)
{
    const char **names = calloc(r->n + 1, sizeof *names);
    double *w0 = NULL, *w = NULL, *reg = NULL;
    size_t n = 0;
    int rc = 0;
    struct edit e;
    memset(&e, 0, sizeof e);
    if (!names) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < r->n && !rc; i++) {
        struct layer *l = &r->layers[i];
        if (l->skip || l->wave != wave)
            continue;
        if (rm_lsq_init(&l->lsq, l->d, l->o) || !(l->row = malloc((size_t)l->d * sizeof *l->row))) {
            rc = rm_error_set(err, RM_ENOMEM, "reconstruct: %s: out of memory for a %lld x %lld system", l->path,
                              (long long)l->d, (long long)l->d);
            break;
        }
        r->idx[n] = (int)i;
        names[n++] = l->x;
    }
    if (rc || !n)
        goto done;
    if ((rc = rm_calib_run(cal, m, names, n, take_inputs, r, err)))
        goto done;
    if ((rc = rm_edit_begin(&e, m, NULL, false, log, err)))
        goto done;
    for (size_t q = 0; q < n && !rc; q++) {
        struct layer *l = &r->layers[r->idx[q]];
        int node = producer_of(e.g, l->tensor);
        free(w0);
        free(w);
        free(reg);
        w0 = malloc((size_t)(l->d * l->o) * sizeof *w0);
        w = malloc((size_t)(l->d * l->o) * sizeof *w);
        reg = malloc((size_t)l->d * sizeof *reg);
        if (!w0 || !w || !reg) {
            rc = rm_error_set(err, RM_ENOMEM, "out of memory");
            break;
        }
        if (node < 0) {
            rc = rm_error_set(err, RM_EEDIT, "reconstruct: %s: its node is gone", l->path);
            break;
        }
        if ((rc = read_w0(&e, node, l, w0)))
            break;
        /* ridge relative to each unknown's own scale; a dead input keeps its weight */
        rm_lsq_flush(&l->lsq);
        double mean_diag = 0;
        for (int64_t i = 0; i < l->d; i++)
            mean_diag += l->lsq.g[i * l->d + i];
        mean_diag = mean_diag > 0 ? mean_diag / (double)l->d : 1.0;
        double ridge = o->ridge > 0 ? o->ridge : 1e-2;
        for (int64_t i = 0; i < l->d; i++)
            reg[i] = ridge * l->lsq.g[i * l->d + i] + 1e-6 * mean_diag;
        double before = 0, after = 0;
        int64_t rows = l->lsq.rows;
        int st = rm_lsq_solve(&l->lsq, reg, w0, w, &before, &after);
        if (st == -1) {
            rc = rm_error_set(err, RM_ENOMEM, "out of memory");
            break;
        }
        if (st == -2) {
            rm_edit_note(&e, "reconstruct: %s: not refitted (the system is not positive definite)", l->path);
            continue;
        }
        /* never make a layer worse on the data it was fitted on */
        if (!(after <= before)) {
            rm_edit_note(&e, "reconstruct: %s: kept as pruned (the refit would not lower its error)", l->path);
            continue;
        }
        if ((rc = write_w(&e, node, l, w)))
            break;
        rm_edit_note(&e, "reconstruct: %s: %lld rows, %lld unknowns per output, error %.4g -> %.4g", l->path,
                     (long long)rows, (long long)l->d, before, after);
        rm_prune_refit *ref = realloc(rep->refits, (rep->n_refits + 1) * sizeof *ref);
        if (!ref) {
            rc = rm_error_set(err, RM_ENOMEM, "out of memory");
            break;
        }
        rep->refits = ref;
        ref = &rep->refits[rep->n_refits++];
        memset(ref, 0, sizeof *ref);
        snprintf(ref->name, sizeof ref->name, "%s", l->path);
        ref->rows = rows;
        ref->unknowns = l->d;
        ref->error_before = before;
        ref->error_after = after;
    }
done:
    rm_edit_end(&e);
    for (size_t i = 0; i < r->n; i++) {
        rm_lsq_free(&r->layers[i].lsq);
        free(r->layers[i].row);
        r->layers[i].row = NULL;
    }
    free(names);
    free(w0);
    free(w);
    free(reg);
    return rc;
}

int rm_prune_reconstruct(struct rm_model *orig, struct rm_model *m, const char *const *tensors,
                         const int64_t *const *out_keep, const int64_t *n_out_keep, size_t n_layers,
                         const rm_prune_options *o, rm_prune_report *rep, rm_findings *log, struct rm_error *err)
{
    struct recon r = {0};
    struct rm_calib cal = {0};
    struct edit e;
    int *level = NULL;
    const char **names = NULL;
    int rc = rm_calib_open(&cal, m, &o->calib, err);
    memset(&e, 0, sizeof e);
    if (!rc)
        rc = rm_edit_begin(&e, m, NULL, false, log, err);
    if (rc)
        goto done;
    const struct rm_graph *g = e.g;
    r.layers = calloc(n_layers + 1, sizeof *r.layers);
    r.idx = calloc(n_layers + 1, sizeof *r.idx);
    names = calloc(n_layers + 1, sizeof *names);
    level = calloc(g->n_nodes + 1, sizeof *level);
    if (!r.layers || !r.idx || !names || !level) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    r.n = n_layers;
    r.samples = cal.n;
    r.seed = o->calib.seed ^ 0x5eed5eed5eedULL;
    int64_t max_rows = o->max_rows > 0 ? o->max_rows : 4096, most = 1;
    int *is_layer = calloc(g->n_nodes + 1, sizeof *is_layer);
    if (!is_layer) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_layers && !rc; i++) {
        struct layer *l = &r.layers[i];
        l->tensor = tensors[i];
        l->out_keep = out_keep[i];
        int node = producer_of(g, tensors[i]);
        if (node < 0) {
            l->skip = true;
            continue;
        }
        snprintf(l->path, sizeof l->path, "%s", rm_edit_where(&e, node));
        describe(l, g, node, &e, log);
        if (l->skip)
            continue;
        l->o = l->out_keep ? n_out_keep[i] : l->o_full;
        if (l->out_keep && (g->values[g->nodes[node].outputs[0]].dims[1] != n_out_keep[i]))
            l->skip = true;
        int64_t cap = (max_rows + cal.n - 1) / cal.n;
        l->per_sample = l->positions < cap ? l->positions : cap;
        if (l->per_sample < 1)
            l->skip = true;
        if (l->skip)
            continue;
        l->y = malloc((size_t)(cal.n * l->per_sample * l->o) * sizeof *l->y);
        if (!l->y) {
            rc = rm_error_set(err, RM_ENOMEM, "reconstruct: out of memory for the targets of %s", l->path);
            break;
        }
        most = l->positions > most ? l->positions : most;
        is_layer[node] = (int)i + 1;
    }
    r.pos = malloc((size_t)most * sizeof *r.pos);
    r.perm = malloc((size_t)most * sizeof *r.perm);
    if (!rc && (!r.pos || !r.perm))
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
    /* waves: the refitted layers on the deepest path into each layer's input */
    for (size_t i = 0; i < g->n_nodes && !rc; i++) {
        const struct rm_node *nd = &g->nodes[i];
        int in = 0;
        for (size_t k = 0; k < nd->proto->n_input; k++) {
            int v = nd->inputs[k];
            if (v >= 0 && g->values[v].producer >= 0 && level[g->values[v].producer] > in)
                in = level[g->values[v].producer];
        }
        if (is_layer[i])
            r.layers[is_layer[i] - 1].wave = in;
        level[i] = in + (is_layer[i] ? 1 : 0);
    }
    free(is_layer);
    if (rc)
        goto done;
    rm_edit_end(&e);
    /* the original's outputs, sampled once (item q is layer idx[q]) */
    size_t n_take = 0;
    for (size_t i = 0; i < n_layers; i++)
        if (!r.layers[i].skip) {
            names[n_take] = r.layers[i].tensor;
            r.idx[n_take++] = (int)i;
        }
    rc = n_take ? rm_calib_run(&cal, orig, names, n_take, take_targets, &r, err) : 0;
    int max_wave = 0;
    for (size_t i = 0; i < n_layers; i++)
        if (!r.layers[i].skip && r.layers[i].wave > max_wave)
            max_wave = r.layers[i].wave;
    for (int wv = 0; wv <= max_wave && !rc && n_take; wv++)
        rc = run_wave(&r, &cal, m, wv, o, rep, log, err);
    if (!rc)
        rep->samples = cal.n;
done:
    rm_edit_end(&e);
    if (r.layers)
        for (size_t i = 0; i < r.n; i++) {
            free(r.layers[i].y);
            rm_lsq_free(&r.layers[i].lsq);
            free(r.layers[i].row);
        }
    free(r.layers);
    free(r.idx);
    free(r.pos);
    free(r.perm);
    free(names);
    free(level);
    rm_calib_close(&cal);
    return rc;
}
