/* Model diff: two plans on the same inputs, outputs compared element by element, and
 * with layers the two plans stepped in lockstep so each module's output is read,
 * compared and freed right after both models have produced it. */
#include "rm_diff.h"
#include "rm_engine.h"
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

void rm_diff_options_default(struct rm_diff_options *o)
{
    memset(o, 0, sizeof *o);
    o->atol = RM_DIFF_ATOL;
    o->rtol = RM_DIFF_RTOL;
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
    memset(r, 0, sizeof *r);
    r->first_divergent = -1;
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
    c->n_fail += d > atol && r > rtol;
}

static void acc_finish(const struct acc *c, struct rm_diff_stats *s)
{
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
    s->n = c->n;
    s->n_fail = c->n_fail;
    s->pass = c->n_fail == 0;
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
    /* m: the tensor the map is written for (channel i), o: the other (channel map[i]) */
    const struct rm_host_tensor *m = map_on_b ? b : a, *o = map_on_b ? a : b;
    bool ok = a->rank >= 2 && a->rank == b->rank && a->dims[0] == b->dims[0] && map_len == m->dims[1];
    for (int i = 2; ok && i < a->rank; i++)
        ok = a->dims[i] == b->dims[i];
    for (int64_t i = 0; ok && i < map_len; i++)
        ok = map[i] < o->dims[1];
    if (!ok)
        return rm_error_set(err, RM_EFORMAT, "channel map of %" PRId64 " entries does not fit "
                            "shapes %s in A and %s in B", map_len, sa, sb);
    int64_t inner = 1; /* elements per channel: product of dims[2..] */
    for (int i = 2; i < a->rank; i++)
        inner *= a->dims[i];
    for (int64_t n = 0; n < a->dims[0]; n++)
        for (int64_t i = 0; i < map_len; i++) {
            if (map[i] < 0)
                continue;
            /* [n, i, :] of m against [n, map[i], :] of o */
            int64_t mo = (n * m->dims[1] + i) * inner, oo = (n * o->dims[1] + map[i]) * inner;
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

/* Compare a pair of tensors: directly when their shapes agree, else through the channel
 * map b records for its tensor (or else the one a records for its own). Returns 0 when
 * compared, 1 when not comparable (*note set, malloc'd), negative on memory exhaustion. */
static int compare_pair(const struct rm_graph *ga, const struct rm_graph *gb, const char *name_a,
                        const char *name_b, const struct rm_host_tensor *xa,
                        const struct rm_host_tensor *xb, double atol, double rtol,
                        struct rm_diff_stats *s, bool *aligned, char **note, struct rm_error *err)
{
    struct rm_error e2;
    const char *map_b = rm_channel_map_find(gb->model, name_b);
    const char *map_a = rm_channel_map_find(ga->model, name_a);
    int rc = 1;
    rm_error_clear(&e2);
    *aligned = false;
    *note = NULL;
    if (same_shape(xa, xb))
        return rm_diff_tensors(xa, xb, NULL, 0, false, atol, rtol, s, err);
    if (map_b)
        rc = compare_mapped(map_b, true, xa, xb, atol, rtol, s, &e2, err);
    if (rc == 1 && map_a)
        rc = compare_mapped(map_a, false, xa, xb, atol, rtol, s, &e2, err);
    if (rc <= 0) {
        *aligned = rc == 0;
        return rc;
    }
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

static void classifier(struct rm_diff_output *o, const struct rm_host_tensor *a,
                       const struct rm_host_tensor *b)
{
    o->top1 = o->top5 = NAN;
    if (a->rank != 2 || !same_shape(a, b) || a->dims[1] < 2 || a->dims[0] < 1)
        return;
    int64_t rows = a->dims[0], classes = a->dims[1];
    int k = classes > 5 ? 5 : 1;
    double agree1 = 0, overlap5 = 0;
    o->classes = classes;
    for (int64_t r = 0; r < rows; r++) {
        int64_t ia[5], ib[5];
        topk(a, r, classes, k, ia);
        topk(b, r, classes, k, ib);
        agree1 += ia[0] == ib[0];
        int common = 0;
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
                common += ia[i] == ib[j];
        overlap5 += common / 5.0;
    }
    o->top1 = agree1 / (double)rows;
    if (k == 5)
        o->top5 = overlap5 / (double)rows;
}

/* ---- running both models ---------------------------------------------------------------- */

static const char *model_label(const struct rm_graph *g, const char *which)
{
    return g->model && g->model->path ? g->model->path : which;
}

static int check_io(struct rm_plan *pa, struct rm_plan *pb, struct rm_error *err)
{
    int na = rm_session_n_inputs(pa), nb = rm_session_n_inputs(pb);
    if (na != nb)
        return rm_error_set(err, RM_EUSAGE, "A has %d inputs and B %d: the models take different inputs",
                            na, nb);
    for (int k = 0; k < na; k++) {
        const char *name = rm_session_input_name(pa, k);
        int kb = -1;
        for (int j = 0; j < nb && kb < 0; j++)
            if (!strcmp(rm_session_input_name(pb, j), name))
                kb = j;
        if (kb < 0)
            return rm_error_set(err, RM_EUSAGE, "A has input '%s', B has none by that name", name);
        struct rm_host_tensor ta, tb;
        rm_session_input_info(pa, k, &ta);
        rm_session_input_info(pb, kb, &tb);
        if (ta.dtype != tb.dtype || !same_shape(&ta, &tb)) {
            char sa[160], sb[160];
            shape_str(sa, sizeof sa, &ta);
            shape_str(sb, sizeof sb, &tb);
            return rm_error_set(err, RM_EUSAGE, "input '%s' is %s %s in A but %s %s in B", name,
                                rm_dtype_name(ta.dtype), sa, rm_dtype_name(tb.dtype), sb);
        }
    }
    if (rm_session_n_outputs(pa) != rm_session_n_outputs(pb))
        return rm_error_set(err, RM_EUSAGE, "A has %d outputs and B %d: the models cannot be compared",
                            rm_session_n_outputs(pa), rm_session_n_outputs(pb));
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
    int last_a, last_b; /* last node of the module's subtree, -1 if none */
    int order;          /* preorder index in A, for a stable sort */
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

/* Compare one module's output into l (path/type/tensor already set). Returns 0 (l says
 * whether it was comparable) or a negative code for errors that end the diff. */
static int layer_one(struct rm_graph *a, struct rm_graph *b, struct cursor *ca, struct cursor *cb,
                     const struct rm_diff_options *o, const struct job *j, const char *na,
                     const char *nb, struct rm_diff_layer *l, struct rm_error *err)
{
    struct rm_host_tensor xa, xb;
    struct rm_error e2;
    int rc = 0;
    memset(&xa, 0, sizeof xa);
    memset(&xb, 0, sizeof xb);
    rm_error_clear(&e2);
    if (!j->mb || j->last_b < 0 || !na || !nb) {
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
    if (rm_session_get(ca->p, na, &xa, &e2) || rm_session_get(cb->p, nb, &xb, &e2)) {
        if (e2.code == RM_ENOMEM) {
            rc = rm_error_set(err, RM_ENOMEM, "%s", e2.msg);
            goto done;
        }
        rm_error_prefix(&e2, "not observable");
        goto not_comparable;
    }
    rc = compare_pair(a, b, na, nb, &xa, &xb, o->atol, o->rtol, &l->s, &l->aligned, &l->note, err);
    l->comparable = rc == 0;
    rc = rc < 0 ? rc : 0;
    goto done;
not_comparable:
    l->comparable = false;
    if (!(l->note = strdup(e2.msg)))
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
done:
    rm_tensor_free(&xa);
    rm_tensor_free(&xb);
    return rc;
}

static int layers_run(struct rm_model *ma, struct rm_model *mb, struct rm_graph *a, struct rm_graph *b,
                      struct rm_plan *pa, struct rm_plan *pb, const struct rm_diff_options *o, struct rm_diff_result *r,
                      struct rm_error *err)
{
    struct rm_tree *ta = NULL, *tb = NULL;
    struct job *jobs = NULL;
    int *last_a = NULL, *last_b = NULL;
    struct rm_strmap b_paths = {0}; /* B's module paths -> index (rm_tree_find is a scan) */
    struct cursor ca = {pa, model_label(a, "A"), -1, 0}, cb = {pb, model_label(b, "B"), -1, 0};
    const char *prev_a = NULL, *prev_b = NULL;
    size_t n_jobs = 0;
    int rc;
    if (!(ta = rm_model_tree(ma, err)) || !(tb = rm_model_tree(mb, err))) {
        ta = tb = NULL;
        rc = err->code;
        goto done;
    }
    rm_tree_hold(ta);
    rm_tree_hold(tb);
    jobs = calloc(ta->n_modules ? ta->n_modules : 1, sizeof *jobs);
    if (!jobs) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory for %zu modules", ta->n_modules);
        goto done;
    }
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
        struct job *j = &jobs[n_jobs];
        if (ta->modules[i] == ta->root)
            continue;
        j->ma = ta->modules[i];
        j->order = (int)i;
        int kb = rm_strmap_get(&b_paths, j->ma->path); /* paths are canonical in both trees */
        j->mb = kb >= 0 ? tb->modules[kb] : NULL;
        j->last_a = last_a[i];
        j->last_b = kb >= 0 ? last_b[kb] : -1;
        n_jobs += j->last_a >= 0; /* modules without nodes (folded BatchNorm) produce nothing */
    }
    qsort(jobs, n_jobs, sizeof *jobs, job_cmp);
    r->layers = calloc(n_jobs ? n_jobs : 1, sizeof *r->layers);
    if (!r->layers) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory for %zu modules", n_jobs);
        goto done;
    }
    for (size_t i = 0; i < n_jobs; i++) {
        const struct job *j = &jobs[i];
        struct rm_diff_layer *l = &r->layers[r->n_layers++];
        const char *na = first_output(a, j->last_a), *nb = first_output(b, j->last_b);
        l->path = strdup(j->ma->path);
        l->type = strdup(j->ma->type ? j->ma->type : "Module");
        l->tensor = strdup(na ? na : "");
        if (!l->path || !l->type || !l->tensor) {
            rc = rm_error_set(err, RM_ENOMEM, "out of memory");
            goto done;
        }
        if (prev_a && prev_b && na && nb && !strcmp(prev_a, na) && !strcmp(prev_b, nb)) {
            /* a container that ends where its last child ends: same tensors, same verdict */
            const struct rm_diff_layer *p = l - 1;
            l->s = p->s;
            l->comparable = p->comparable;
            l->aligned = p->aligned;
            if (p->note && !(l->note = strdup(p->note))) {
                rc = rm_error_set(err, RM_ENOMEM, "out of memory");
                goto done;
            }
        } else if ((rc = layer_one(a, b, &ca, &cb, o, j, na, nb, l, err))) {
            goto done;
        }
        prev_a = na;
        prev_b = nb;
        if (l->comparable && !l->s.pass && r->first_divergent < 0)
            r->first_divergent = (int)(r->n_layers - 1);
    }
    /* finish both runs so the graph outputs are complete */
    if ((rc = advance(pa, &ca.done, &ca.finished, INT_MAX, err))) {
        rm_error_prefix(err, "%s", ca.label);
        goto done;
    }
    if ((rc = advance(pb, &cb.done, &cb.finished, INT_MAX, err)))
        rm_error_prefix(err, "%s", cb.label);
done:
    free(jobs);
    free(last_a);
    free(last_b);
    rm_strmap_free(&b_paths);
    rm_tree_free(ta);
    rm_tree_free(tb);
    return rc;
}

static int compare_outputs(struct rm_graph *a, struct rm_graph *b, struct rm_plan *pa,
                           struct rm_plan *pb, const struct rm_diff_options *o,
                           struct rm_diff_result *r, struct rm_error *err)
{
    int n = rm_session_n_outputs(pa), rc = 0;
    r->outputs = calloc(n > 0 ? (size_t)n : 1, sizeof *r->outputs);
    if (!r->outputs)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    for (int k = 0; k < n; k++) {
        struct rm_diff_output *out = &r->outputs[r->n_outputs++];
        struct rm_host_tensor xa, xb;
        const char *na = rm_session_output_name(pa, k), *nb = rm_session_output_name(pb, k);
        out->top1 = out->top5 = NAN;
        if (!(out->name = strdup(na ? na : "")))
            return rm_error_set(err, RM_ENOMEM, "out of memory");
        if ((rc = rm_session_output(pa, k, &xa, err)) || (rc = rm_session_output(pb, k, &xb, err)))
            return rc;
        out->rank = xa.rank;
        memcpy(out->dims, xa.dims, sizeof out->dims);
        rc = compare_pair(a, b, na, nb, &xa, &xb, o->atol, o->rtol, &out->s, &out->aligned, &out->note,
                          err);
        if (rc < 0)
            return rc;
        if (rc == 0 && !out->aligned)
            classifier(out, &xa, &xb);
        out->s.pass = rc == 0 && out->s.pass;
    }
    return 0;
}

int rm_diff(struct rm_model *ma, struct rm_model *mb, const struct rm_diff_options *o,
                   struct rm_diff_result *r, struct rm_error *err)
{
    struct rm_plan *pa = NULL, *pb = NULL;
    struct rm_graph *a = NULL, *b = NULL;
    struct rm_session_options po;
    struct rm_host_tensor t;
    int rc;
    memset(r, 0, sizeof *r);
    memset(&t, 0, sizeof t);
    r->first_divergent = -1;
    r->atol = o->atol;
    r->rtol = o->rtol;
    rm_session_options_default(&po);
    po.threads = o->threads;
    po.fuse = o->layers ? 0 : 1;
    if ((rc = rm_session_create(&pa, ma, &po, err))) {
        rm_error_prefix(err, "%s", ma->path ? ma->path : "A");
        goto done;
    }
    if ((rc = rm_session_create(&pb, mb, &po, err))) {
        rm_error_prefix(err, "%s", mb->path ? mb->path : "B");
        goto done;
    }
    /* the indexes the plans were made from */
    if (!(a = rm_model_graph(ma, err)) || !(b = rm_model_graph(mb, err))) {
        rc = err->code;
        goto done;
    }
    if ((rc = check_io(pa, pb, err)))
        goto done;
    for (int k = 0; k < o->n_inputs; k++)
        if ((rc = rm_session_set_input(pa, o->input_names[k], &o->input_values[k], err))) {
            rm_error_prefix(err, "%s", model_label(a, "A"));
            goto done;
        }
    rm_session_random_inputs(pa, o->seed);
    /* B gets A's input values by name, whatever its input order */
    for (int k = 0; k < rm_session_n_inputs(pa); k++) {
        const char *name = rm_session_input_name(pa, k);
        if ((rc = rm_session_get(pa, name, &t, err)) || (rc = rm_session_set_input(pb, name, &t, err))) {
            rm_error_prefix(err, "%s", model_label(b, "B"));
            goto done;
        }
        rm_tensor_free(&t);
    }
    if (o->layers) {
        rm_session_begin(pa);
        rm_session_begin(pb);
        if ((rc = layers_run(ma, mb, a, b, pa, pb, o, r, err)))
            goto done;
    } else {
        if ((rc = rm_session_run(pa, err))) {
            rm_error_prefix(err, "%s", model_label(a, "A"));
            goto done;
        }
        if ((rc = rm_session_run(pb, err))) {
            rm_error_prefix(err, "%s", model_label(b, "B"));
            goto done;
        }
    }
    if ((rc = compare_outputs(a, b, pa, pb, o, r, err)))
        goto done;
    r->pass = true;
    for (size_t k = 0; k < r->n_outputs; k++)
        r->pass &= r->outputs[k].s.pass;
done:
    if (rc)
        r->pass = false;
    rm_tensor_free(&t);
    rm_session_free(pa);
    rm_session_free(pb);
    return rc;
}
