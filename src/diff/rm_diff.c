/* Model diff: two plans on the same inputs, outputs compared element by element, and
 * with layers the two plans stepped in lockstep so each module's output is read,
 * compared and freed right after both models have produced it. */
#include "rm_diff.h"
#include "rm_engine.h"
#include "rm_fs.h"
#include "rm_strmap.h"
#include "rm_tree.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define F32 ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
#define I64 ONNX__TENSOR_PROTO__DATA_TYPE__INT64

/* Without --layers A runs alone first and its outputs are kept while B's plan is built
 * and run, so that the two plans (their reordered weights, activations, scratchpads)
 * are never held at once, when what is kept (every sample's inputs and outputs) is
 * below this; else the plans run side by side, one sample at a time. */
#define RM_DIFF_KEEP_MAX ((double)(64 << 20))

void rm_diff_options_default(struct rm_diff_options *o)
{
    memset(o, 0, sizeof *o);
    o->atol = -1;
    o->atol_scale = RM_DIFF_ATOL_SCALE;
    o->rtol = RM_DIFF_RTOL;
    o->min_cosine = RM_DIFF_MIN_COSINE;
    o->min_top1 = 1;
    o->samples = 1;
}

void rm_diff_result_free(struct rm_diff_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_outputs; i++) {
        free(r->outputs[i].name);
        free(r->outputs[i].note);
    }
    for (size_t i = 0; i < r->n_layers; i++) {
        free(r->layers[i].path);
        free(r->layers[i].type);
        free(r->layers[i].tensor);
        free(r->layers[i].note);
    }
    free(r->outputs);
    free(r->layers);
    free(r->channels.max_abs);
    free(r->channels.scale);
    free(r->history_a);
    free(r->history_b);
    for (size_t i = 0; i < r->n_inputs; i++)
        free(r->inputs[i].name);
    free(r->inputs);
    memset(r, 0, sizeof *r);
    r->first_divergent = -1;
    r->channels.layer = -1;
}

/* ---- element statistics ---------------------------------------------------------------- */

struct acc {
    double max_abs, max_rel, sum_abs, dot, na, nb;
    int64_t n, n_fail;
    int nonfinite;
};

static double elem(const struct rm_host_tensor *t, int64_t i)
{
    return t->dtype == I64 ? (double)((const int64_t *)t->data)[i] : (double)((const float *)t->data)[i];
}

static void acc_pair(struct acc *c, double x, double y, double atol, double rtol)
{
    double d, r;
    if (isnan(x) || isnan(y)) {
        d = r = isnan(x) && isnan(y) ? 0 : INFINITY;
    } else if (x == y) {
        d = r = 0; /* equal infinities included */
    } else {
        d = fabs(y - x);
        r = isinf(d) ? INFINITY : d / fmax(fabs(x), fabs(y));
    }
    if (d > c->max_abs)
        c->max_abs = d;
    if (r > c->max_rel)
        c->max_rel = r;
    c->sum_abs += d;
    if (isfinite(x) && isfinite(y)) {
        c->dot += x * y;
        c->na += x * x;
        c->nb += y * y;
    } else {
        c->nonfinite = 1;
    }
    c->n++;
    /* numpy's allclose, x the reference; a NaN difference fails, equal values never do */
    c->n_fail += d != 0 && !(d <= atol + rtol * fabs(x));
}

static void acc_finish(const struct acc *c, struct rm_diff_stats *s)
{
    /* pass: every element within tolerance; the caller adds the cosine floor */
    s->max_abs = c->max_abs;
    s->max_rel = c->max_rel;
    s->mean_abs = c->n ? c->sum_abs / (double)c->n : 0;
    if (c->max_abs == 0 && !(c->nonfinite && c->na == 0 && c->nb == 0))
        s->cosine = 1; /* equal tensors, whatever rounding says (NaN pairs count as equal) */
    else if (c->na == 0 && c->nb == 0)
        s->cosine = NAN;
    else if (c->na == 0 || c->nb == 0)
        s->cosine = 0;
    else
        s->cosine = fmax(-1.0, fmin(1.0, c->dot / (sqrt(c->na) * sqrt(c->nb))));
    s->cosine_mean = s->cosine;
    s->n = c->n;
    s->n_fail = c->n_fail;
    s->pass = c->n_fail == 0;
}

double rm_tensor_absmax(const struct rm_host_tensor *t)
{
    double m = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        double v = fabs(elem(t, i));
        if (v > m) /* NaN never counts */
            m = v;
    }
    return m;
}

/* Fold one sample's statistics s into agg, which holds k samples already. */
static void stats_merge(struct rm_diff_stats *agg, const struct rm_diff_stats *s, int k)
{
    if (k == 0) {
        *agg = *s;
        return;
    }
    int64_t n = agg->n + s->n;
    agg->mean_abs = n ? (agg->mean_abs * (double)agg->n + s->mean_abs * (double)s->n) / (double)n : 0;
    agg->max_abs = fmax(agg->max_abs, s->max_abs);
    agg->max_rel = fmax(agg->max_rel, s->max_rel);
    if (isnan(s->cosine) || s->cosine < agg->cosine)
        agg->cosine = s->cosine; /* the worst sample; NaN sticks */
    agg->cosine_mean = (agg->cosine_mean * k + s->cosine) / (k + 1);
    agg->n = n;
    agg->n_fail += s->n_fail;
    agg->pass = agg->pass && s->pass;
}

static void shape_str(char *buf, size_t n, const struct rm_host_tensor *t)
{
    size_t off = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < t->rank && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%" PRId64, i ? "," : "", t->dims[i]);
    if (off < n)
        snprintf(buf + off, n - off, "]");
}

static int same_shape(const struct rm_host_tensor *a, const struct rm_host_tensor *b)
{
    return a->rank == b->rank && !memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)a->rank);
}

int rm_diff_tensors(const struct rm_host_tensor *a, const struct rm_host_tensor *b,
                    const int64_t *map, int64_t map_len, bool map_on_b, double atol, double rtol,
                    struct rm_diff_stats *s, struct rm_error *err)
{
    struct acc c;
    char sa[160], sb[160];
    memset(&c, 0, sizeof c);
    memset(s, 0, sizeof *s);
    shape_str(sa, sizeof sa, a);
    shape_str(sb, sizeof sb, b);
    if (!map) {
        if (!same_shape(a, b))
            return rm_error_set(err, RM_EFORMAT, "shapes differ: %s in A, %s in B", sa, sb);
        for (int64_t i = 0; i < a->numel; i++)
            acc_pair(&c, elem(a, i), elem(b, i), atol, rtol);
        acc_finish(&c, s);
        return 0;
    }
    /* m: the tensor the map is written for (channel i), o: the other (channel map[i]); the
     * channel axis is 1, or the one axis whose size differs (a Linear's features on the
     * last axis of a channels-last tensor) */
    const struct rm_host_tensor *m = map_on_b ? b : a, *o = map_on_b ? a : b;
    int ax = 1, differ = 0;
    bool ok = a->rank >= 2 && a->rank == b->rank;
    for (int i = 0; ok && i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            ax = i, differ++;
    ok = ok && differ <= 1 && ax >= 1 && map_len == m->dims[ax];
    for (int64_t i = 0; ok && i < map_len; i++)
        ok = map[i] < o->dims[ax];
    if (!ok)
        return rm_error_set(err, RM_EFORMAT, "channel map of %" PRId64 " entries does not fit "
                            "shapes %s in A and %s in B", map_len, sa, sb);
    int64_t inner = 1, outer = 1; /* elements per channel in a run, and runs */
    for (int i = ax + 1; i < a->rank; i++)
        inner *= a->dims[i];
    for (int i = 0; i < ax; i++)
        outer *= a->dims[i];
    for (int64_t n = 0; n < outer; n++)
        for (int64_t i = 0; i < map_len; i++) {
            if (map[i] < 0)
                continue;
            /* [n, i, :] of m against [n, map[i], :] of o */
            int64_t mo = (n * m->dims[ax] + i) * inner, oo = (n * o->dims[ax] + map[i]) * inner;
            for (int64_t k = 0; k < inner; k++) {
                double x = elem(o, oo + k), y = elem(m, mo + k);
                if (map_on_b)
                    acc_pair(&c, x, y, atol, rtol);
                else
                    acc_pair(&c, y, x, atol, rtol);
            }
        }
    acc_finish(&c, s);
    return 0;
}

/* Try the channel map `text` (recorded on b's side when on_b) for a pair of different
 * shapes. Returns 0 when compared, 1 when the map does not parse or fit (e2 says why),
 * RM_ENOMEM. */
static int compare_mapped(const char *text, bool on_b, const struct rm_host_tensor *xa,
                          const struct rm_host_tensor *xb, double atol, double rtol,
                          struct rm_diff_stats *s, struct rm_error *e2, struct rm_error *err)
{
    int64_t *map = NULL, len = 0;
    int rc = rm_channel_map_parse(text, &map, &len, e2);
    if (rc == RM_ENOMEM)
        return rm_error_set(err, rc, "%s", e2->msg);
    if (!rc)
        rc = rm_diff_tensors(xa, xb, map, len, on_b, atol, rtol, s, e2);
    free(map);
    if (rc)
        rm_error_prefix(e2, "%s's metadata", on_b ? "B" : "A");
    return rc ? 1 : 0;
}

/* How to compare: the tolerances and the cosine floor. */
struct tol {
    double atol, atol_scale, rtol, min_cosine;
};

/* Compare a pair of tensors: directly when their shapes agree, else through the channel
 * map b records for its tensor (or else the one a records for its own), with atol
 * scaled by max|a| unless given (*atol_used, *scale say what). s->pass includes the
 * cosine floor. Returns 0 when compared, 1 when not comparable (*note set, malloc'd),
 * negative on memory exhaustion. */
static int compare_pair(const struct rm_graph *ga, const struct rm_graph *gb, const char *name_a,
                        const char *name_b, const struct rm_host_tensor *xa,
                        const struct rm_host_tensor *xb, const struct tol *t, double *scale,
                        double *atol_used, struct rm_diff_stats *s, bool *aligned, char **note,
                        struct rm_error *err)
{
    struct rm_error e2;
    const char *map_b = rm_channel_map_find(gb->model, name_b);
    const char *map_a = rm_channel_map_find(ga->model, name_a);
    int rc = 1;
    rm_error_clear(&e2);
    *aligned = false;
    *note = NULL;
    *scale = rm_tensor_absmax(xa);
    double atol = *atol_used = t->atol >= 0 ? t->atol : t->atol_scale * *scale;
    if (same_shape(xa, xb)) {
        rc = rm_diff_tensors(xa, xb, NULL, 0, false, atol, t->rtol, s, err);
    } else {
        if (map_b)
            rc = compare_mapped(map_b, true, xa, xb, atol, t->rtol, s, &e2, err);
        if (rc == 1 && map_a)
            rc = compare_mapped(map_a, false, xa, xb, atol, t->rtol, s, &e2, err);
        *aligned = rc == 0;
    }
    if (rc == 0)
        s->pass = s->pass && s->cosine >= t->min_cosine; /* NaN fails */
    if (rc <= 0)
        return rc;
    if (!map_a && !map_b) {
        char sa[160], sb[160];
        shape_str(sa, sizeof sa, xa);
        shape_str(sb, sizeof sb, xb);
        rm_error_set(&e2, RM_EFORMAT, "shape %s in A, %s in B, and no channel map", sa, sb);
    }
    memset(s, 0, sizeof *s);
    *note = strdup(e2.msg);
    return *note ? 1 : rm_error_set(err, RM_ENOMEM, "out of memory");
}

/* ---- classifier agreement -------------------------------------------------------------- */

/* Indices of the k largest values of row (k <= 5), NaN never chosen over a number. */
static void topk(const struct rm_host_tensor *t, int64_t row, int64_t classes, int k, int64_t *idx)
{
    for (int j = 0; j < k; j++) {
        int64_t best = -1;
        double bv = 0;
        for (int64_t c = 0; c < classes; c++) {
            int taken = 0;
            for (int q = 0; q < j; q++)
                taken |= idx[q] == c;
            double v = elem(t, row * classes + c);
            if (taken || isnan(v))
                continue;
            if (best < 0 || v > bv) {
                best = c;
                bv = v;
            }
        }
        idx[j] = best < 0 ? 0 : best;
    }
}

/* Classifier agreement of one output, summed over the samples. */
struct agree {
    double top1, top5; /* rows agreeing on the top class; summed top-5 overlap */
    int64_t rows;
    int64_t classes;   /* 0: not a classifier output (on some sample) */
};

static void classifier(struct agree *g, const struct rm_host_tensor *a, const struct rm_host_tensor *b,
                       int sample)
{
    if (a->rank != 2 || !same_shape(a, b) || a->dims[1] < 2 || a->dims[0] < 1 ||
        (sample > 0 && g->classes != a->dims[1])) {
        g->classes = 0;
        return;
    }
    if (sample > 0 && g->classes == 0)
        return;
    int64_t rows = a->dims[0], classes = a->dims[1];
    int k = classes > 5 ? 5 : 1;
    g->classes = classes;
    for (int64_t r = 0; r < rows; r++) {
        int64_t ia[5], ib[5];
        topk(a, r, classes, k, ia);
        topk(b, r, classes, k, ib);
        g->top1 += ia[0] == ib[0];
        int common = 0;
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
                common += ia[i] == ib[j];
        g->top5 += common / 5.0;
    }
    g->rows += rows;
}

/* ---- running both models ---------------------------------------------------------------- */

/* Both models, their sessions and what is compared. */
struct run {
    struct rm_model *ma, *mb;
    struct rm_graph *a, *b;
    struct rm_plan *pa, *pb;
    const struct rm_diff_options *o;
    struct tol tol;
    struct rm_tree *ta, *tb;
    struct job *jobs;
    size_t n_jobs;
    struct agree *agree;          /* per output */
    bool sample_failed;           /* a module failed on the sample being run */
    const struct rm_diff_input *in_info; /* A's inputs (r->inputs) */
    char **out_names;             /* A's output names */
    int n_out;
    /* run one after the other (outputs only): A's outputs per sample, kept while B's
     * plan is built and run; a_done samples of A ran, then a_rc (a_err) ended A's runs */
    struct rm_host_tensor *a_outs; /* [sample * n_out + k] */
    int a_done, a_rc;
    struct rm_error a_err;
};


static const char *model_label(const struct rm_graph *g, const char *which)
{
    return g->model && g->model->path ? g->model->path : which;
}

/* A's inputs (as its plan takes them) into r->inputs, its output names into x. */
static int record_a(struct run *x, struct rm_diff_result *r, struct rm_error *err)
{
    int n = rm_session_n_inputs(x->pa), no = rm_session_n_outputs(x->pa);
    r->inputs = calloc(n > 0 ? (size_t)n : 1, sizeof *r->inputs);
    x->out_names = calloc(no > 0 ? (size_t)no : 1, sizeof *x->out_names);
    if (!r->inputs || !x->out_names)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    for (int k = 0; k < n; k++) {
        struct rm_host_tensor t;
        struct rm_diff_input *in = &r->inputs[k];
        rm_session_input_info(x->pa, k, &t);
        if (!(in->name = strdup(rm_session_input_name(x->pa, k))))
            return rm_error_set(err, RM_ENOMEM, "out of memory");
        r->n_inputs++;
        in->dtype = t.dtype;
        in->rank = t.rank;
        memcpy(in->dims, t.dims, sizeof in->dims);
    }
    for (int k = 0; k < no; k++) {
        const char *na = rm_session_output_name(x->pa, k);
        if (!(x->out_names[k] = strdup(na ? na : "")))
            return rm_error_set(err, RM_ENOMEM, "out of memory");
        x->n_out = k + 1;
    }
    x->in_info = r->inputs;
    return 0;
}

/* B takes the inputs A takes (r->inputs) and gives as many outputs (x->n_out). */
static int check_io(const struct run *x, const struct rm_diff_result *r, struct rm_plan *pb, struct rm_error *err)
{
    int na = (int)r->n_inputs, nb = rm_session_n_inputs(pb);
    if (na != nb)
        return rm_error_set(err, RM_EUSAGE, "A has %d inputs and B %d: the models take different inputs",
                            na, nb);
    for (int k = 0; k < na; k++) {
        const char *name = r->inputs[k].name;
        int kb = -1;
        for (int j = 0; j < nb && kb < 0; j++)
            if (!strcmp(rm_session_input_name(pb, j), name))
                kb = j;
        if (kb < 0)
            return rm_error_set(err, RM_EUSAGE, "A has input '%s', B has none by that name", name);
        struct rm_host_tensor ta, tb;
        memset(&ta, 0, sizeof ta);
        ta.dtype = r->inputs[k].dtype;
        ta.rank = r->inputs[k].rank;
        memcpy(ta.dims, r->inputs[k].dims, sizeof ta.dims);
        rm_session_input_info(pb, kb, &tb);
        if (ta.dtype != tb.dtype || !same_shape(&ta, &tb)) {
            char sa[160], sb[160];
            shape_str(sa, sizeof sa, &ta);
            shape_str(sb, sizeof sb, &tb);
            return rm_error_set(err, RM_EUSAGE, "input '%s' is %s %s in A but %s %s in B", name,
                                rm_dtype_name(ta.dtype), sa, rm_dtype_name(tb.dtype), sb);
        }
    }
    if (x->n_out != rm_session_n_outputs(pb))
        return rm_error_set(err, RM_EUSAGE, "A has %d outputs and B %d: the models cannot be compared",
                            x->n_out, rm_session_n_outputs(pb));
    return 0;
}

/* Step p until node `node` has run (or the plan is finished). */
static int advance(struct rm_plan *p, int *done, int *finished, int node, struct rm_error *err)
{
    while (!*finished && *done < node) {
        int nd = -1, rc = rm_session_step(p, &nd, err);
        if (rc < 0)
            return rc;
        if (rc == 0)
            *finished = 1;
        else
            *done = nd;
    }
    return 0;
}

/* One module to compare: where its output is produced in each model. */
struct job {
    const struct rm_module *ma, *mb;
    int last_a, last_b;   /* last node of the module's subtree, -1 if none */
    int order;            /* preorder index in A, for a stable sort */
    const char *na, *nb;  /* the tensors compared (last node's first output) */
    bool same_as_prev;    /* ends where the module before it ends: same tensors */
};

static int job_cmp(const void *x, const void *y)
{
    const struct job *a = x, *b = y;
    if (a->last_a != b->last_a)
        return a->last_a < b->last_a ? -1 : 1;
    if (a->ma->depth != b->ma->depth) /* the innermost module that ends there first */
        return a->ma->depth > b->ma->depth ? -1 : 1;
    return (a->order > b->order) - (a->order < b->order);
}

/* parent[k]: index in t->modules of module k's parent (t->modules is the tree in
 * preorder, children in order, which this walk follows). -1 when the order differs. */
static int index_parents(const struct rm_tree *t, const struct rm_module *m, int self, size_t *next, int *parent)
{
    for (size_t c = 0; c < m->n_children; c++) {
        size_t ci = (*next)++;
        if (ci >= t->n_modules || t->modules[ci] != m->children[c])
            return -1;
        parent[ci] = self;
        if (index_parents(t, m->children[c], (int)ci, next, parent))
            return -1;
    }
    return 0;
}

/* last[k]: the last node (graph order) of module k's subtree, -1 for none; malloc'd. In
 * one pass over the nodes and their ancestors: listing each module's nodes apart made
 * diff --layers quadratic (a 50k-node chain took 82 s). */
static int *subtree_last(const struct rm_tree *t, struct rm_error *err)
{
    size_t nm = t->n_modules ? t->n_modules : 1, next = 1;
    int *last = malloc(nm * sizeof *last), *parent = malloc(nm * sizeof *parent);
    if (!last || !parent) {
        free(last);
        free(parent);
        rm_error_set(err, RM_ENOMEM, "out of memory for %zu modules", t->n_modules);
        return NULL;
    }
    for (size_t k = 0; k < nm; k++)
        last[k] = parent[k] = -1;
    if (t->n_modules && (t->modules[0] != t->root || index_parents(t, t->root, 0, &next, parent))) {
        for (size_t k = 0; k < t->n_modules; k++) { /* (not preorder: the slow way) */
            int *nodes = NULL;
            size_t n = 0;
            if (rm_module_nodes(t, t->modules[k], &nodes, &n, err)) {
                free(last);
                free(parent);
                return NULL;
            }
            last[k] = n ? nodes[n - 1] : -1;
            free(nodes);
        }
    } else {
        for (size_t i = 0; i < t->g->n_nodes; i++) /* i grows: every ancestor's last is i */
            for (int k = t->node_module[i]; k >= 0 && (size_t)k < t->n_modules; k = parent[k])
                last[k] = (int)i;
    }
    free(parent);
    return last;
}

static const char *first_output(const struct rm_graph *g, int node)
{
    if (node < 0 || (size_t)node >= g->n_nodes || g->nodes[node].proto->n_output == 0)
        return NULL;
    int v = g->nodes[node].outputs[0];
    return v >= 0 ? g->values[v].name : NULL;
}


/* Plans stepped in lockstep: how far each has run. */
struct cursor {
    struct rm_plan *p;
    const char *label;
    int done, finished;
};

/* Per-channel error of a and b (same shape, rank >= 2) into c. */
static int channel_errors(const struct rm_host_tensor *a, const struct rm_host_tensor *b, int layer, int sample,
                          struct rm_diff_channels *c, struct rm_error *err)
{
    int64_t n = a->dims[0], ch = a->dims[1], inner = 1;
    for (int i = 2; i < a->rank; i++)
        inner *= a->dims[i];
    double *mx = calloc((size_t)ch + 1, sizeof *mx), *sc = calloc((size_t)ch + 1, sizeof *sc);
    if (!mx || !sc) {
        free(mx);
        free(sc);
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    }
    for (int64_t q = 0; q < n; q++)
        for (int64_t k = 0; k < ch; k++)
            for (int64_t i = 0; i < inner; i++) {
                int64_t at = (q * ch + k) * inner + i;
                double x = elem(a, at), y = elem(b, at), d;
                if (isnan(x) || isnan(y))
                    d = isnan(x) && isnan(y) ? 0 : INFINITY; /* as acc_pair counts them */
                else
                    d = x == y ? 0 : fabs(y - x);
                if (d > mx[k])
                    mx[k] = d;
                if (fabs(x) > sc[k])
                    sc[k] = fabs(x);
            }
    free(c->max_abs);
    free(c->scale);
    c->layer = layer;
    c->sample = sample;
    c->n = ch;
    c->max_abs = mx;
    c->scale = sc;
    return 0;
}

/* The modules to compare, in the order their outputs appear, with r->layers set up. */
static int layers_prepare(struct run *x, struct rm_diff_result *r, struct rm_error *err)
{
    if (!(x->ta = rm_model_tree(x->ma, err)))
        return err->code;
    rm_tree_hold(x->ta);
    if (!(x->tb = rm_model_tree(x->mb, err)))
        return err->code;
    rm_tree_hold(x->tb);
    const struct rm_tree *ta = x->ta, *tb = x->tb;
    int *last_a = NULL, *last_b = NULL, rc = 0;
    struct rm_strmap b_paths = {0}; /* B's module paths -> index (rm_tree_find is a scan) */
    x->jobs = calloc(ta->n_modules ? ta->n_modules : 1, sizeof *x->jobs);
    if (!x->jobs)
        return rm_error_set(err, RM_ENOMEM, "out of memory for %zu modules", ta->n_modules);
    if (!(last_a = subtree_last(ta, err)) || !(last_b = subtree_last(tb, err))) {
        rc = err->code;
        goto done;
    }
    if (rm_strmap_reserve(&b_paths, tb->n_modules)) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory for %zu modules", tb->n_modules);
        goto done;
    }
    for (size_t i = 0; i < tb->n_modules; i++)
        rm_strmap_put(&b_paths, tb->modules[i]->path, (int)i, NULL); /* reserved: cannot fail */
    for (size_t i = 0; i < ta->n_modules; i++) {
        struct job *j = &x->jobs[x->n_jobs];
        if (ta->modules[i] == ta->root)
            continue;
        j->ma = ta->modules[i];
        j->order = (int)i;
        int kb = rm_strmap_get(&b_paths, j->ma->path); /* paths are canonical in both trees */
        j->mb = kb >= 0 ? tb->modules[kb] : NULL;
        j->last_a = last_a[i];
        j->last_b = kb >= 0 ? last_b[kb] : -1;
        x->n_jobs += j->last_a >= 0; /* modules without nodes (folded BatchNorm) produce nothing */
    }
done:
    free(last_a);
    free(last_b);
    rm_strmap_free(&b_paths);
    if (rc)
        return rc;
    qsort(x->jobs, x->n_jobs, sizeof *x->jobs, job_cmp);
    r->layers = calloc(x->n_jobs ? x->n_jobs : 1, sizeof *r->layers);
    if (!r->layers)
        return rm_error_set(err, RM_ENOMEM, "out of memory for %zu modules", x->n_jobs);
    for (size_t i = 0; i < x->n_jobs; i++) {
        struct job *j = &x->jobs[i];
        struct rm_diff_layer *l = &r->layers[r->n_layers++];
        j->na = first_output(x->a, j->last_a);
        j->nb = first_output(x->b, j->last_b);
        j->same_as_prev = i > 0 && j->na && j->nb && x->jobs[i - 1].na && x->jobs[i - 1].nb &&
                          !strcmp(x->jobs[i - 1].na, j->na) && !strcmp(x->jobs[i - 1].nb, j->nb);
        l->path = strdup(j->ma->path);
        l->type = strdup(j->ma->type ? j->ma->type : "Module");
        l->tensor = strdup(j->na ? j->na : "");
        l->comparable = true; /* until a sample says otherwise */
        l->rank_a = l->rank_b = -1;
        if (!l->path || !l->type || !l->tensor)
            return rm_error_set(err, RM_ENOMEM, "out of memory");
    }
    return 0;
}

/* Compare one module's output on this sample into *s. Returns 0 (with *note malloc'd
 * when not comparable) or a negative code for errors that end the diff. */
static int layer_one(struct run *x, struct cursor *ca, struct cursor *cb, const struct job *j, int index,
                     int sample, struct rm_diff_result *r, struct rm_diff_stats *s, bool *aligned, char **note,
                     struct rm_error *err)
{
    struct rm_host_tensor xa, xb;
    struct rm_error e2;
    int rc = 0;
    double scale, atol;
    memset(&xa, 0, sizeof xa);
    memset(&xb, 0, sizeof xb);
    rm_error_clear(&e2);
    *note = NULL;
    if (!j->mb || j->last_b < 0 || !j->na || !j->nb) {
        rm_error_set(&e2, RM_ENOTFOUND, "%s", !j->mb ? "no module by this path in B"
                                       : j->last_b < 0 ? "the module has no nodes in B"
                                                       : "the module's last node has no output");
        goto not_comparable;
    }
    if ((rc = advance(ca->p, &ca->done, &ca->finished, j->last_a, err))) {
        rm_error_prefix(err, "%s", ca->label);
        goto done;
    }
    if ((rc = advance(cb->p, &cb->done, &cb->finished, j->last_b, err))) {
        rm_error_prefix(err, "%s", cb->label);
        goto done;
    }
    if (rm_session_get(ca->p, j->na, &xa, &e2) || rm_session_get(cb->p, j->nb, &xb, &e2)) {
        if (e2.code == RM_ENOMEM) {
            rc = rm_error_set(err, RM_ENOMEM, "%s", e2.msg);
            goto done;
        }
        rm_error_prefix(&e2, "not observable");
        goto not_comparable;
    }
    struct rm_diff_layer *l = &r->layers[index];
    if (l->rank_a < 0) {
        l->rank_a = xa.rank;
        l->rank_b = xb.rank;
        memcpy(l->dims_a, xa.dims, sizeof l->dims_a);
        memcpy(l->dims_b, xb.dims, sizeof l->dims_b);
    }
    rc = compare_pair(x->a, x->b, j->na, j->nb, &xa, &xb, &x->tol, &scale, &atol, s, aligned, note, err);
    /* the first module failing on this sample, earlier than any before: its channels */
    if (rc == 0 && !s->pass && !x->sample_failed) {
        x->sample_failed = true;
        if ((r->channels.layer < 0 || index < r->channels.layer) && xa.rank >= 2 && same_shape(&xa, &xb))
            rc = channel_errors(&xa, &xb, index, sample, &r->channels, err);
    }
    rc = rc < 0 ? rc : 0;
    goto done;
not_comparable:
    if (!(*note = strdup(e2.msg)))
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
done:
    rm_tensor_free(&xa);
    rm_tensor_free(&xb);
    return rc;
}

/* Step both sessions through one sample, comparing every module on the way, folded
 * into r->layers. */
static int layers_sample(struct run *x, int sample, struct rm_diff_result *r, struct rm_error *err)
{
    struct cursor ca = {x->pa, model_label(x->a, "A"), -1, 0}, cb = {x->pb, model_label(x->b, "B"), -1, 0};
    struct rm_diff_stats s, prev;
    bool aligned = false, prev_aligned = false;
    char *note = NULL, *prev_note = NULL;
    int rc = 0;
    memset(&prev, 0, sizeof prev);
    x->sample_failed = false;
    rm_session_begin(x->pa);
    rm_session_begin(x->pb);
    for (size_t i = 0; i < x->n_jobs && !rc; i++) {
        struct rm_diff_layer *l = &r->layers[i];
        memset(&s, 0, sizeof s);
        if (x->jobs[i].same_as_prev) {
            /* a container that ends where its last child ends: same tensors, same verdict */
            s = prev;
            aligned = prev_aligned;
            if (l->rank_a < 0) {
                l->rank_a = l[-1].rank_a;
                l->rank_b = l[-1].rank_b;
                memcpy(l->dims_a, l[-1].dims_a, sizeof l->dims_a);
                memcpy(l->dims_b, l[-1].dims_b, sizeof l->dims_b);
            }
            note = prev_note ? strdup(prev_note) : NULL;
            if (prev_note && !note)
                rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        } else {
            rc = layer_one(x, &ca, &cb, &x->jobs[i], (int)i, sample, r, &s, &aligned, &note, err);
        }
        if (rc)
            break;
        if (note) { /* not comparable: the first reason stays */
            l->comparable = false;
            if (!l->note)
                l->note = strdup(note);
        } else if (l->comparable) {
            stats_merge(&l->s, &s, sample);
            l->aligned = aligned;
        }
        free(prev_note);
        prev_note = note;
        note = NULL;
        prev = s;
        prev_aligned = aligned;
    }
    free(prev_note);
    if (rc)
        return rc;
    /* finish both runs so the graph outputs are complete */
    if ((rc = advance(x->pa, &ca.done, &ca.finished, INT_MAX, err))) {
        rm_error_prefix(err, "%s", ca.label);
        return rc;
    }
    if ((rc = advance(x->pb, &cb.done, &cb.finished, INT_MAX, err)))
        rm_error_prefix(err, "%s", cb.label);
    return rc;
}

/* Compare the outputs of this sample: A's from its plan, or kept (x->a_outs) when A
 * ran before B. */
static int outputs_sample(struct run *x, int sample, struct rm_diff_result *r, struct rm_error *err)
{
    int n = x->n_out, rc = 0;
    if (sample == 0) {
        r->outputs = calloc(n > 0 ? (size_t)n : 1, sizeof *r->outputs);
        x->agree = calloc(n > 0 ? (size_t)n : 1, sizeof *x->agree);
        if (!r->outputs || !x->agree)
            return rm_error_set(err, RM_ENOMEM, "out of memory");
        for (int k = 0; k < n; k++) {
            r->outputs[k].top1 = r->outputs[k].top5 = NAN;
            if (!(r->outputs[k].name = strdup(x->out_names[k])))
                return rm_error_set(err, RM_ENOMEM, "out of memory");
            r->n_outputs++;
        }
    }
    for (int k = 0; k < n; k++) {
        struct rm_diff_output *out = &r->outputs[k];
        struct rm_host_tensor xa, xb;
        struct rm_diff_stats s;
        bool aligned;
        char *note = NULL;
        double scale, atol;
        memset(&xa, 0, sizeof xa);
        memset(&xb, 0, sizeof xb);
        const char *na = x->out_names[k], *nb = rm_session_output_name(x->pb, k);
        if (x->a_outs)
            xa = x->a_outs[(size_t)sample * (size_t)n + (size_t)k]; /* borrowed: owned stays with a_outs */
        if ((!x->a_outs && (rc = rm_session_output(x->pa, k, &xa, err))) ||
            (rc = rm_session_output(x->pb, k, &xb, err)))
            return rc;
        if (x->a_outs)
            xa.owned = 0;
        out->rank = xa.rank;
        memcpy(out->dims, xa.dims, sizeof out->dims);
        rc = compare_pair(x->a, x->b, na, nb, &xa, &xb, &x->tol, &scale, &atol, &s, &aligned, &note, err);
        if (rc == 0) {
            if (!out->note)
                stats_merge(&out->s, &s, sample);
            out->aligned = aligned;
            out->scale = fmax(out->scale, scale);
            out->atol = fmax(out->atol, atol);
            if (!aligned)
                classifier(&x->agree[k], &xa, &xb, sample);
            else
                x->agree[k].classes = 0;
            if (sample == 0 && x->agree[k].classes) {
                /* what each model ranks first on the first row, side by side */
                out->n_top = x->agree[k].classes < 5 ? (int)x->agree[k].classes : 5;
                topk(&xa, 0, x->agree[k].classes, out->n_top, out->top_a);
                topk(&xb, 0, x->agree[k].classes, out->n_top, out->top_b);
                for (int q = 0; q < out->n_top; q++) {
                    out->top_va[q] = elem(&xa, out->top_a[q]);
                    out->top_vb[q] = elem(&xb, out->top_b[q]);
                }
            }
        } else if (rc == 1) {
            if (!out->note)
                out->note = note;
            else
                free(note);
            out->s.pass = false;
            rc = 0;
        }
        rm_tensor_free(&xa);
        rm_tensor_free(&xb);
        if (rc)
            return rc;
    }
    return 0;
}

/* Feed sample k to A: its given set, seeded random values for the rest; then (pb set)
 * the same values to B by name; the inputs used go to *keep when given. */
static int feed_sample(struct run *x, int k, rm_input_set *keep, struct rm_error *err)
{
    const struct rm_diff_options *o = x->o;
    rm_session_reset_inputs(x->pa);
    if (x->pb)
        rm_session_reset_inputs(x->pb);
    if ((size_t)k < o->n_sets) {
        const rm_input_set *set = &o->sets[k];
        for (int i = 0; i < set->n; i++)
            if (rm_session_set_input(x->pa, set->names[i], &set->values[i], err)) {
                if (o->n_sets > 1)
                    rm_error_prefix(err, "input set %d", k);
                return rm_error_prefix(err, "%s", model_label(x->a, "A"));
            }
    } else if (o->folder && (size_t)k - o->n_sets < rm_input_sets_count(o->folder)) {
        /* read now, fed, dropped: memory stays bounded by one set */
        size_t f = (size_t)k - o->n_sets, n = rm_input_sets_n_inputs(o->folder);
        rm_tensor *v = calloc(n + 1, sizeof *v);
        if (!v)
            return rm_error_set(err, RM_ENOMEM, "out of memory");
        int rc = rm_input_sets_read(o->folder, f, v, err);
        for (size_t i = 0; !rc && i < n; i++)
            if ((rc = rm_session_set_input(x->pa, rm_input_sets_input_name(o->folder, i), &v[i], err)))
                rm_error_prefix(err, "input set '%s'", rm_input_sets_label(o->folder, f));
        for (size_t i = 0; i < n; i++)
            rm_tensor_free(&v[i]); /* set_input copied them; a failed read left zeros */
        free(v);
        if (rc)
            return rc;
    }
    rm_session_random_inputs(x->pa, o->seed + (uint64_t)k);
    /* B gets A's input values by name, whatever its input order */
    int n = rm_session_n_inputs(x->pa);
    if (keep) {
        keep->names = calloc((size_t)n + 1, sizeof *keep->names);
        keep->values = calloc((size_t)n + 1, sizeof *keep->values);
        if (!keep->names || !keep->values)
            return rm_error_set(err, RM_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        const char *name = rm_session_input_name(x->pa, i);
        struct rm_host_tensor t;
        if (rm_session_get(x->pa, name, &t, err))
            return err->code;
        if (x->pb && rm_session_set_input(x->pb, name, &t, err)) {
            rm_tensor_free(&t);
            return rm_error_prefix(err, "%s", model_label(x->b, "B"));
        }
        if (keep) {
            ((const char **)keep->names)[i] = x->in_info[i].name; /* outlives A's plan */
            ((rm_tensor *)keep->values)[i] = t;
            keep->n = i + 1;
        } else {
            rm_tensor_free(&t);
        }
    }
    return 0;
}

/* Give both models the dims of the first input set (the given ones, else the folder's). */
static int first_set_dims(struct rm_model *m, const char *label, const struct rm_diff_options *o,
                          struct rm_error *err)
{
    rm_tensor *v = NULL;
    const rm_tensor *vals = NULL;
    const char *const *names = NULL;
    const char **fnames = NULL;
    size_t n = 0;
    int rc = 0;
    if (o->n_sets) {
        n = (size_t)o->sets[0].n;
        vals = o->sets[0].values;
        names = o->sets[0].names;
    } else if (o->folder && rm_input_sets_count(o->folder)) {
        n = rm_input_sets_n_inputs(o->folder);
        v = calloc(n + 1, sizeof *v);
        fnames = calloc(n + 1, sizeof *fnames);
        if (!v || !fnames) {
            free(v);
            free(fnames);
            return rm_error_set(err, RM_ENOMEM, "out of memory");
        }
        if ((rc = rm_input_sets_read(o->folder, 0, v, err))) {
            free(v);
            free(fnames);
            return rc;
        }
        for (size_t i = 0; i < n; i++)
            fnames[i] = rm_input_sets_input_name(o->folder, i);
        vals = v;
        names = fnames;
    }
    for (size_t i = 0; i < n && !rc; i++)
        if ((rc = rm_model_set_input_shape(m, names[i], vals[i].rank, vals[i].dims, err)))
            rm_error_prefix(err, "%s", m->path ? m->path : label);
    if (v) {
        for (size_t i = 0; i < n; i++)
            rm_tensor_free(&v[i]);
        free(v);
        free(fnames);
    }
    return rc;
}

static void free_kept(rm_input_set *kept, int n)
{
    for (int k = 0; kept && k < n; k++) {
        for (int i = 0; i < kept[k].n; i++)
            rm_tensor_free((rm_tensor *)&kept[k].values[i]);
        free((void *)kept[k].names);
        free((void *)kept[k].values);
    }
    free(kept);
}

/* What running A before B keeps (every sample's inputs and A's outputs) fits
 * RM_DIFF_KEEP_MAX bytes. Unknown output dims: no. REMODEL_DIFF_LOCKSTEP=1 (for tests)
 * says no. */
static bool keep_fits(const struct run *x, const struct rm_diff_result *r, const struct rm_graph *ga, int samples)
{
    const char *e = getenv("REMODEL_DIFF_LOCKSTEP");
    if (e && *e && strcmp(e, "0"))
        return false;
    double bytes = 0;
    for (size_t i = 0; i < r->n_inputs; i++) {
        double n = 8;
        for (int d = 0; d < r->inputs[i].rank; d++)
            n *= (double)r->inputs[i].dims[d];
        bytes += n;
    }
    for (int k = 0; k < x->n_out; k++) {
        int vi = rm_graph_find(ga, x->out_names[k]);
        if (vi < 0 || ga->values[vi].rank < 0)
            return false;
        double n = 8;
        for (int d = 0; d < ga->values[vi].rank; d++) {
            if (ga->values[vi].dims[d] < 0)
                return false;
            n *= (double)ga->values[vi].dims[d];
        }
        bytes += n;
    }
    return bytes * samples <= RM_DIFF_KEEP_MAX;
}

/* Run A alone on every sample, keeping its inputs (kept[k]) and outputs (x->a_outs).
 * A failure of A's own ends the runs and is kept (a_rc, a_err) for when B has run the
 * samples before it, so that errors come in the order the two models in lockstep would
 * give them; only running out of memory returns at once. */
static int run_a_alone(struct run *x, int samples, rm_input_set *kept, struct rm_error *err)
{
    size_t n = (size_t)x->n_out;
    x->a_outs = calloc((size_t)samples * n + 1, sizeof *x->a_outs);
    if (!x->a_outs)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    rm_error_clear(&x->a_err);
    for (int k = 0; k < samples; k++) {
        int rc = feed_sample(x, k, &kept[k], &x->a_err);
        if (!rc && (rc = rm_session_run(x->pa, &x->a_err)))
            rm_error_prefix(&x->a_err, "%s", model_label(x->a, "A"));
        for (size_t i = 0; !rc && i < n; i++) {
            struct rm_host_tensor t, *keep = &x->a_outs[(size_t)k * n + i];
            if (!(rc = rm_session_output(x->pa, (int)i, &t, &x->a_err))) {
                size_t bytes = (size_t)t.numel * (t.dtype == I64 ? 8 : 4);
                *keep = t;
                keep->data = malloc(bytes ? bytes : 1);
                keep->owned = 1;
                if (!keep->data) {
                    keep->owned = 0;
                    rc = rm_error_set(&x->a_err, RM_ENOMEM, "out of memory");
                } else if (bytes) {
                    memcpy(keep->data, t.data, bytes);
                }
            }
        }
        if (rc == RM_ENOMEM) {
            *err = x->a_err;
            return rc;
        }
        if (rc) {
            x->a_rc = rc;
            return 0;
        }
        x->a_done = k + 1;
    }
    return 0;
}

/* Free what a run holds (kept: samples input sets, or NULL). */
static void run_free(struct run *x, rm_input_set *kept, int samples)
{
    free_kept(kept, samples);
    for (size_t i = 0; x->a_outs && i < (size_t)samples * (size_t)x->n_out; i++)
        rm_tensor_free(&x->a_outs[i]);
    free(x->a_outs);
    for (int k = 0; k < x->n_out; k++)
        free(x->out_names[k]);
    free(x->out_names);
    free(x->jobs);
    free(x->agree);
    rm_tree_free(x->ta);
    rm_tree_free(x->tb);
    rm_session_free(x->pa);
    rm_session_free(x->pb);
}

/* Whether most of b's weights (initializers of rank 2 and more) have the dims of a's of
 * the same name: the kernels of their layers are then the same (oneDNN caches them by
 * shape, not by values). */
static bool shapes_mostly_kept(struct rm_model *ma, struct rm_model *mb)
{
    struct rm_error e;
    const struct rm_graph *ga = rm_model_graph(ma, &e);
    const Onnx__GraphProto *gb = mb->proto ? mb->proto->graph : NULL;
    size_t weights = 0, kept = 0;
    for (size_t i = 0; ga && gb && i < gb->n_initializer; i++) {
        const Onnx__TensorProto *t = gb->initializer[i];
        if (t->n_dims < 2 || !t->name)
            continue;
        weights++;
        int v = rm_graph_find(ga, t->name);
        const Onnx__TensorProto *u = v >= 0 ? rm_graph_const_tensor(ga, v) : NULL;
        kept += u && u->n_dims == t->n_dims && !memcmp(u->dims, t->dims, t->n_dims * sizeof *t->dims);
    }
    return weights && kept * 4 >= weights * 3;
}

/* A diff between rm_diff_begin and rm_diff_end: A's plan (when the two run in lockstep)
 * or its kept outputs, the result so far, the plan options both models get. */
struct rm_diff_pending {
    struct run x;
    struct rm_diff_result r;
    struct rm_session_options po;
    rm_input_set *kept;
    int samples;
};

static void result_init(struct rm_diff_result *r, const struct rm_diff_options *o)
{
    memset(r, 0, sizeof *r);
    r->first_divergent = -1;
    r->channels.layer = -1;
    r->atol = o->atol;
    r->atol_scale = o->atol_scale;
    r->rtol = o->rtol;
    r->min_cosine = o->min_cosine;
    r->min_top1 = o->min_top1;
    r->seed = o->seed;
}

void rm_diff_cancel(struct rm_diff_pending *d)
{
    if (!d)
        return;
    run_free(&d->x, d->kept, d->samples);
    rm_diff_result_free(&d->r);
    free(d);
}

int rm_diff_begin(struct rm_model *ma, const struct rm_diff_options *o, struct rm_diff_pending **out,
                  struct rm_error *err)
{
    struct rm_diff_pending *d = calloc(1, sizeof *d);
    *out = NULL;
    if (!d)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    struct run *x = &d->x;
    struct rm_diff_result *r = &d->r;
    int rc;
    result_init(r, o);
    int samples = o->samples > 0 ? o->samples : 1;
    size_t given = o->n_sets + (o->folder ? rm_input_sets_count(o->folder) : 0);
    if ((size_t)samples < given)
        samples = given > INT_MAX ? INT_MAX : (int)given;
    r->samples = d->samples = samples;
    x->ma = ma;
    x->o = o;
    x->tol = (struct tol){o->atol, o->atol_scale, o->rtol, o->min_cosine};
    if (o->save_inputs && (rc = rm_input_sets_dir_ok(o->save_inputs, false, err)))
        goto fail;
    /* the first set's dims are the inputs' dims (dynamic ones included), for both models */
    if ((rc = first_set_dims(ma, "A", o, err)))
        goto fail;
    rm_session_options_default(&d->po);
    d->po.threads = o->threads;
    d->po.fuse = o->layers ? 0 : 1;
    /* a diff runs each plan once per sample: Winograd's weight transforms would cost more
     * than they save (resnet18: 0.6 s to build, 1 ms less per run) */
    d->po.few_runs = samples < 256;
    /* pages of the model files that loading and the edit read stay resident until
     * dropped: each plan reads again what it needs, once (densenet121's verified prune
     * carried 27 MB of its file into the original's plan build) */
    rm_fs_maps_drop();
    if ((rc = rm_session_create(&x->pa, ma, &d->po, err))) {
        rm_error_prefix(err, "%s", ma->path ? ma->path : "A");
        goto fail;
    }
    if ((rc = record_a(x, r, err)))
        goto fail;
    if (!o->layers) {
        if (!(x->a = rm_model_graph(ma, err))) {
            rc = err->code;
            goto fail;
        }
        if (keep_fits(x, r, x->a, samples)) {
            /* A first and alone; what B needs of it is kept: the inputs fed (in kept) and
             * its outputs */
            if (!(d->kept = calloc((size_t)samples, sizeof *d->kept))) {
                rc = rm_error_set(err, RM_ENOMEM, "out of memory");
                goto fail;
            }
            if ((rc = run_a_alone(x, samples, d->kept, err)))
                goto fail;
            rm_session_free(x->pa);
            x->pa = NULL;
        }
    }
    *out = d;
    return 0;
fail:
    rm_diff_cancel(d);
    return rc;
}

int rm_diff(struct rm_model *ma, struct rm_model *mb, const struct rm_diff_options *o, struct rm_diff_result *r,
            struct rm_error *err)
{
    struct rm_diff_pending *d;
    int rc = rm_diff_begin(ma, o, &d, err);
    if (rc) {
        result_init(r, o);
        r->samples = o->samples > 0 ? o->samples : 1;
        return rc;
    }
    return rm_diff_end(d, mb, r, err);
}

int rm_diff_end(struct rm_diff_pending *d, struct rm_model *mb, struct rm_diff_result *r, struct rm_error *err)
{
    /* what rm_diff_begin left: d's run, result, plan options and kept inputs move here */
    struct run x = d->x;
    struct rm_session_options po = d->po;
    rm_input_set *kept = d->kept;
    int samples = d->samples, rc;
    bool keep_cache = false;
    const struct rm_diff_options *o = x.o;
    struct rm_model *ma = x.ma;
    *r = d->r;
    x.mb = mb;
    if ((rc = first_set_dims(mb, "B", o, err)))
        goto done;
    /* A's compiled kernels stay cached after its plan is freed. B's plan reuses those of
     * the layers it keeps the shapes of: after a replace, all but one (the cache kept
     * makes its plan 30-50 ms faster, densenet121 and resnet18); they are dropped once
     * B's plan holds what it took. After a global prune B shares few of them, and they
     * go first, so as not to sit beside B's plan (densenet121: 4.5 MB). */
    if (!x.pa && !(keep_cache = shapes_mostly_kept(ma, mb)))
        rm_eng_cache_drop();
    rm_fs_maps_drop();
    if ((rc = rm_session_create(&x.pb, mb, &po, err))) {
        rm_error_prefix(err, "%s", mb->path ? mb->path : "B");
        goto done;
    }
    if (keep_cache)
        rm_eng_cache_drop();
    /* the indexes the plans were made from */
    if (!(x.a = rm_model_graph(ma, err)) || !(x.b = rm_model_graph(mb, err))) {
        rc = err->code;
        goto done;
    }
    if ((rc = check_io(&x, r, x.pb, err)))
        goto done;
    if (o->layers && (rc = layers_prepare(&x, r, err)))
        goto done;
    if (!x.a_outs && o->save_inputs && !(kept = calloc((size_t)samples, sizeof *kept))) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    for (int k = 0; k < samples; k++) {
        if (x.a_outs) {
            /* A's sample k ran (or failed: its error, now that B has run the ones before) */
            if (k == x.a_done) {
                *err = x.a_err;
                rc = x.a_rc;
                goto done;
            }
            rm_session_reset_inputs(x.pb);
            for (int i = 0; i < kept[k].n; i++)
                if ((rc = rm_session_set_input(x.pb, kept[k].names[i], &kept[k].values[i], err))) {
                    rm_error_prefix(err, "%s", model_label(x.b, "B"));
                    goto done;
                }
            if ((rc = rm_session_run(x.pb, err))) {
                rm_error_prefix(err, "%s", model_label(x.b, "B"));
                goto done;
            }
        } else if ((rc = feed_sample(&x, k, kept ? &kept[k] : NULL, err))) {
            goto done;
        } else if (o->layers) {
            if ((rc = layers_sample(&x, k, r, err)))
                goto done;
        } else if ((rc = rm_session_run(x.pa, err))) {
            rm_error_prefix(err, "%s", model_label(x.a, "A"));
            goto done;
        } else if ((rc = rm_session_run(x.pb, err))) {
            rm_error_prefix(err, "%s", model_label(x.b, "B"));
            goto done;
        }
        if ((rc = outputs_sample(&x, k, r, err)))
            goto done;
    }
    /* the verdict: elements and cosine per sample (in s.pass), top-1 over all rows */
    r->pass = true;
    for (size_t k = 0; k < r->n_outputs; k++) {
        struct rm_diff_output *out = &r->outputs[k];
        const struct agree *g = &x.agree[k];
        if (g->classes && g->rows) {
            out->classes = g->classes;
            out->top1 = g->top1 / (double)g->rows;
            if (g->classes > 5)
                out->top5 = g->top5 / (double)g->rows;
            out->s.pass = out->s.pass && out->top1 >= o->min_top1;
        }
        out->s.pass = out->s.pass && !out->note;
        r->pass = r->pass && out->s.pass;
    }
    for (size_t i = 0; i < r->n_layers; i++)
        if (r->layers[i].comparable && !r->layers[i].s.pass) {
            r->first_divergent = (int)i;
            break;
        }
    const char *ha = rm_model_history(ma), *hb = rm_model_history(mb);
    if ((ha && !(r->history_a = strdup(ha))) || (hb && !(r->history_b = strdup(hb)))) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    if (kept && o->save_inputs && (rc = rm_input_sets_write(o->save_inputs, kept, (size_t)samples, err)))
        goto done;
done:
    if (rc)
        r->pass = false;
    run_free(&x, kept, samples);
    free(d);
    return rc;
}
