/* Which channels prune removes (see rm_prune_int.h): importance criteria, the named
 * modules' ratios, per-module ratios, ignored modules, and the global ranking by ratio
 * or down to a MAC/parameter target, with kept counts rounded to a multiple.
 *
 * Global ranking: each candidate group's channel scores are divided by the group's
 * mean, and channels are removed lowest first across all groups, never a group's
 * last (or, with round_to N, below N channels). With a target, removal stops as soon as
 * an estimate of the pruned model's MACs and parameters meets it. The estimate is exact
 * for what the prune changes: a group-1 conv's MACs and weights scale with kept output
 * channels times kept input channels, a depthwise conv's, a BatchNorm's and a Linear's
 * with their group's; an initializer several nodes share is counted once until an edit
 * gives its users copies. */
#include "rm_calib.h"
#include "rm_prune_int.h"
#include "rm_info.h"
#include "rm_shape.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- criteria ------------------------------------------------------------------ */

static const char *const criterion_names[] = {"", "l1", "l2", "bn-scale", "activation"};

int rm_criterion_parse(const char *s)
{
    for (int i = 1; i < (int)(sizeof criterion_names / sizeof *criterion_names); i++)
        if (s && !strcmp(s, criterion_names[i]))
            return i;
    return 0;
}

const char *rm_criterion_name(int c)
{
    if (c == 0)
        c = RM_CRITERION_L1;
    return c > 0 && c < (int)(sizeof criterion_names / sizeof *criterion_names) ? criterion_names[c] : "?";
}

struct bn_ctx {
    int64_t count;
    double *score;
    int *found;
    int depth;
};
static int add_part_bn(struct analysis *a, const struct group *gx, int64_t at, void *ctx);

/* Add |gamma| / sqrt(var + eps) of channels off .. off + count of gr's BatchNorms to
 * score[0 .. count), and where gr is a part of a Split, its input's at the part's offset. */
static int add_bn(struct analysis *a, const struct group *gr, int64_t off, int64_t count, double *score, int *found,
                  int depth)
{
    struct edit *e = a->e;
    for (int k = 0; k < gr->n_members; k++) {
        int node = gr->members[k];
        if (e->g->nodes[node].op != RM_OP_BATCH_NORM)
            continue;
        float *gamma = NULL, *var = NULL;
        int64_t ng, nv;
        const Onnx__TensorProto *tg, *tv;
        int rc = rm_edit_param(e, node, 1, &gamma, &ng, &tg);
        if (!rc)
            rc = rm_edit_param(e, node, 4, &var, &nv, &tv);
        if (!rc && gamma && var && ng == gr->channels && nv == gr->channels) {
            double eps = rm_node_attr_float(e->g->nodes[node].proto, "epsilon", 1e-5f);
            for (int64_t c = 0; c < count; c++)
                score[c] += fabs((double)gamma[off + c]) / sqrt(fmax((double)var[off + c] + eps, 1e-30));
            *found = 1;
        }
        free(gamma);
        free(var);
        if (rc)
            return rc;
    }
    struct bn_ctx c = {count, score, found, depth + 1};
    return depth < 16 ? rm_prune_part_ranges(a, gr, off, count, add_part_bn, &c) : 0;
}

static int add_part_bn(struct analysis *a, const struct group *gx, int64_t at, void *ctx)
{
    const struct bn_ctx *c = ctx;
    return add_bn(a, gx, at, c->count, c->score, c->found, c->depth);
}

/* gr->score = |gamma| / sqrt(var + eps) summed over the group's BatchNorms (network
 * slimming); *found = 0 when it has none (the score is left zero). */
static int score_bn(struct analysis *a, struct group *gr, int *found)
{
    *found = 0;
    gr->score = calloc((size_t)gr->channels, sizeof *gr->score);
    if (!gr->score)
        return rm_error_set(a->e->err, RM_ENOMEM, "out of memory");
    return add_bn(a, gr, 0, gr->channels, gr->score, found, 0);
}

/* The tensors whose activations score a group: those its consumers read (convs, a
 * Linear after Flatten, a Concat); a group read by nothing of those, all of its own. */
static bool is_read_by_consumer(const struct analysis *a, int v)
{
    const struct rm_value *val = &a->e->g->values[v];
    for (int k = 0; k < val->n_consumers; k++) {
        const struct rm_node *n = &a->e->g->nodes[val->consumers[k]];
        if (n->proto->n_input < 1 || n->inputs[0] != v)
            continue;
        enum rm_chan role = rm_op_def(n->op)->chan;
        if (role == RM_CHAN_FLATTEN || role == RM_CHAN_GEMM || role == RM_CHAN_CONCAT ||
            rm_edit_flattens(a->e->g, val->consumers[k]) || rm_prune_last_linear(a->e->g, val->consumers[k]))
            return true;
        if ((role == RM_CHAN_CONV || role == RM_CHAN_CONV_TRANSPOSE) && rm_node_attr_int(n->proto, "group", 1) == 1)
            return true;
    }
    return false;
}

struct act_stats {
    size_t n;
    int *value;          /* per tensor: value index */
    int64_t *channels;
    bool *last;          /* per tensor: its channels are on the last axis, not axis 1 */
    double **sum;        /* per tensor, per channel: sum of |x| */
    double *count;       /* per tensor: elements per channel summed */
};

static int act_visit(void *ctx, int sample, size_t item, struct rm_host_tensor *t, struct rm_error *err)
{
    (void)sample;
    struct act_stats *st = ctx;
    int ax = st->last[item] ? t->rank - 1 : 1;
    if (t->dtype != RM_DTYPE_FLOAT || t->rank < 2 || t->dims[ax] != st->channels[item])
        return rm_error_set(err, RM_EFORMAT, "calibration: a tensor has %lld channels where %lld were expected",
                            t->rank >= 2 ? (long long)t->dims[ax] : -1LL, (long long)st->channels[item]);
    int64_t c = t->dims[ax], outer = 1, spatial = 1;
    for (int d = 0; d < ax; d++)
        outer *= t->dims[d];
    for (int d = ax + 1; d < t->rank; d++)
        spatial *= t->dims[d];
    const float *x = t->data;
    double *s = st->sum[item];
    /* x[n][c][s]: mean |x| per channel over what comes before the channel axis (the batch,
     * or with channels last every position) and what comes after */
    for (int64_t n = 0; n < outer; n++)
        for (int64_t ch = 0; ch < c; ch++) {
            const float *p = x + (n * c + ch) * spatial;
            double acc = 0;
            for (int64_t i = 0; i < spatial; i++)
                acc += fabs((double)p[i]);
            s[ch] += acc;
        }
    st->count[item] += (double)(outer * spatial);
    return 0;
}

/* Mean |activation| scores for the groups in list (score arrays allocated here). */
static int score_activation(struct analysis *a, struct group **list, int n, const rm_prune_options *o, int *samples)
{
    struct edit *e = a->e;
    struct act_stats st = {0};
    const char **names = NULL;
    int *owner = NULL; /* per tensor: index into list */
    struct rm_calib cal;
    int rc = rm_calib_open(&cal, e->m, &o->calib, e->err);
    if (rc)
        return rc;
    size_t cap = e->g->n_values + 1;
    st.value = calloc(cap, sizeof *st.value);
    st.channels = calloc(cap, sizeof *st.channels);
    st.last = calloc(cap, sizeof *st.last);
    st.sum = calloc(cap, sizeof *st.sum);
    st.count = calloc(cap, sizeof *st.count);
    names = calloc(cap, sizeof *names);
    owner = calloc(cap, sizeof *owner);
    if (!st.value || !st.channels || !st.last || !st.sum || !st.count || !names || !owner) {
        rc = rm_error_set(e->err, RM_ENOMEM, "out of memory");
        goto done;
    }
    for (int gi = 0; gi < n; gi++) {
        struct group *gr = list[gi];
        size_t first = st.n;
        for (int pass = 0; pass < 2 && st.n == first; pass++)
            for (size_t v = 0; v < e->g->n_values; v++) {
                if (!rm_prune_is_channel(a, (int)v) || rm_prune_root(a, (int)v) != gr->root ||
                    e->g->values[v].producer < 0 || rm_prune_channel_dim(a, gr, (int)v) != gr->channels)
                    continue;
                if (pass == 0 && !is_read_by_consumer(a, (int)v))
                    continue;
                st.value[st.n] = (int)v;
                st.channels[st.n] = gr->channels;
                st.last[st.n] = gr->last;
                names[st.n] = e->g->values[v].name;
                owner[st.n] = gi;
                if (!(st.sum[st.n] = calloc((size_t)gr->channels, sizeof **st.sum))) {
                    rc = rm_error_set(e->err, RM_ENOMEM, "out of memory");
                    goto done;
                }
                st.n++;
            }
    }
    rc = rm_calib_run(&cal, e->m, names, st.n, act_visit, &st, e->err);
    if (rc)
        goto done;
    *samples = cal.n;
    for (int gi = 0; gi < n; gi++) {
        struct group *gr = list[gi];
        if (!(gr->score = calloc((size_t)gr->channels, sizeof *gr->score))) {
            rc = rm_error_set(e->err, RM_ENOMEM, "out of memory");
            goto done;
        }
    }
    /* per tensor: channel means, divided by their average so that every tensor a group
     * is read through counts alike */
    for (size_t t = 0; t < st.n; t++) {
        struct group *gr = list[owner[t]];
        double avg = 0;
        for (int64_t c = 0; c < gr->channels; c++)
            avg += st.sum[t][c];
        avg /= (double)gr->channels;
        for (int64_t c = 0; c < gr->channels; c++)
            gr->score[c] += avg > 0 ? st.sum[t][c] / avg : 0;
    }
done:
    for (size_t t = 0; t < st.n; t++)
        free(st.sum[t]);
    free(st.value);
    free(st.channels);
    free(st.last);
    free(st.sum);
    free(st.count);
    free(names);
    free(owner);
    rm_calib_close(&cal);
    return rc;
}

/* Scores of every group in list by o's criterion. */
static int score_groups(struct analysis *a, struct group **list, int n, const rm_prune_options *o)
{
    struct edit *e = a->e;
    int crit = o->criterion ? o->criterion : RM_CRITERION_L1;
    if (crit == RM_CRITERION_ACTIVATION) {
        int samples = 0;
        int rc = n ? score_activation(a, list, n, o, &samples) : 0;
        a->samples = samples;
        if (!rc && n)
            rm_edit_note(e, "activation: mean |activation| over %d calibration sample%s", samples,
                         samples == 1 ? "" : "s");
        return rc;
    }
    if (crit == RM_CRITERION_BN_SCALE) {
        int fallback = 0, any = 0;
        for (int i = 0; i < n; i++) {
            int found;
            int rc = score_bn(a, list[i], &found);
            if (!rc && !found) {
                free(list[i]->score);
                list[i]->score = NULL;
                rc = rm_prune_score_norm(a, list[i], RM_CRITERION_L1);
                fallback++;
            }
            if (rc)
                return rc;
            any |= found;
        }
        if (n && !any)
            return rm_error_set(e->err, RM_EUSAGE,
                                "bn-scale ranks channels by their BatchNorms, and this model has none left as nodes "
                                "(the exporter folded them into the convs); use l1, l2 or activation");
        if (fallback)
            rm_edit_note(e, "bn-scale: %d group%s without a BatchNorm ranked by l1 instead", fallback,
                         fallback == 1 ? "" : "s");
        return 0;
    }
    for (int i = 0; i < n; i++) {
        int rc = rm_prune_score_norm(a, list[i], crit == RM_CRITERION_L2 ? 2 : 1);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- options ------------------------------------------------------------------- */

static bool targeted(const rm_prune_options *o)
{
    return o->target_macs > 0 || o->target_params > 0;
}

int rm_prune_check_options(const char *const *paths, size_t n_paths, const rm_prune_options *o,
                           struct rm_error *err)
{
    (void)paths;
    bool global = o->global || targeted(o);
    if (o->criterion < 0 || o->criterion > RM_CRITERION_ACTIVATION)
        return rm_error_set(err, RM_EUSAGE, "unknown criterion %d", o->criterion);
    if (!(o->ratio >= 0 && o->ratio < 1))
        return rm_error_set(err, RM_EUSAGE, "the ratio must be at least 0 and below 1, not %g", o->ratio);
    if (o->target_macs < 0 || o->target_macs > 1 || o->target_params < 0 || o->target_params > 1 ||
        isnan(o->target_macs) || isnan(o->target_params))
        return rm_error_set(err, RM_EUSAGE, "a target is the fraction of MACs or parameters kept, above 0 and at most 1");
    if (targeted(o) && o->ratio > 0)
        return rm_error_set(err, RM_EUSAGE, "give a ratio or a MAC/parameter target, not both");
    if (o->round_to < 0)
        return rm_error_set(err, RM_EUSAGE, "round-to must be a positive number of channels, not %lld",
                            (long long)o->round_to);
    for (size_t i = 0; i < o->n_ratio_for; i++)
        if (!o->ratio_for[i].path || !(o->ratio_for[i].ratio >= 0 && o->ratio_for[i].ratio < 1))
            return rm_error_set(err, RM_EUSAGE, "the ratio for '%s' must be at least 0 and below 1",
                                o->ratio_for[i].path ? o->ratio_for[i].path : "?");
    if (o->n_channels) {
        if (global)
            return rm_error_set(err, RM_EUSAGE, "explicit channels name one module's channels; they do not go with "
                                "global pruning or a target");
        if (n_paths != 1)
            return rm_error_set(err, RM_EUSAGE, "explicit channels apply to one module's group; name exactly one module");
        if (o->ratio > 0)
            return rm_error_set(err, RM_EUSAGE, "give a ratio or explicit channels, not both");
    }
    if (global && n_paths)
        return rm_error_set(err, RM_EUSAGE, "global pruning ranks every group; name no modules with it (give a "
                            "module its own ratio with ratio_for instead)");
    if (!global && n_paths == 0 && o->n_ratio_for == 0) {
        rm_error_set(err, RM_EUSAGE, "name the Conv2d, ConvTranspose2d or Linear modules to prune, or prune globally");
        return rm_error_fix(err, RM_FIX_GLOBAL);
    }
    if (global && !targeted(o) && !(o->ratio > 0) && o->n_ratio_for == 0)
        return rm_error_set(err, RM_EUSAGE, "global pruning needs a ratio or a MAC/parameter target");
    if (!global && n_paths && !o->n_channels && !(o->ratio > 0))
        return rm_error_set(err, RM_EUSAGE, "give a ratio or explicit channels for the named modules");
    bool calib = o->calib.inputs || o->calib.samples > 0;
    if ((o->criterion == RM_CRITERION_ACTIVATION || o->reconstruct) && !calib)
        return rm_error_set(err, RM_EUSAGE, "%s needs calibration data: a folder of input sets or a number of "
                            "random samples", o->reconstruct ? "reconstruction" : "the activation criterion");
    if (o->ridge < 0 || isnan(o->ridge) || o->max_rows < 0)
        return rm_error_set(err, RM_EUSAGE, "the ridge and the rows per layer must not be negative");
    return 0;
}

/* ---- modules to groups --------------------------------------------------------- */

static bool lists(const int *v, int n, int node)
{
    for (int i = 0; i < n; i++)
        if (v[i] == node)
            return true;
    return false;
}

/* Mark every group module path touches as ignored. */
static int ignore_module(struct analysis *a, const char *path)
{
    struct edit *e = a->e;
    const struct rm_module *mod;
    int rc = rm_tree_lookup(e->t, path, &mod, e->err);
    if (rc)
        return rc;
    int *nodes;
    size_t n;
    if ((rc = rm_module_nodes(e->t, mod, &nodes, &n, e->err)))
        return rc;
    for (size_t i = 0; i < n; i++) {
        int node = nodes[i];
        const struct rm_node *nd = &e->g->nodes[node];
        for (int gi = 0; gi < a->n_groups; gi++) {
            struct group *gr = &a->groups[gi];
            bool touches = lists(gr->producers, gr->n_producers, node) || lists(gr->members, gr->n_members, node) ||
                           lists(gr->consumers, gr->n_consumers, node) || lists(gr->gemms, gr->n_gemms, node) ||
                           lists(gr->concats, gr->n_concats, node);
            for (size_t k = 0; !touches && k < nd->proto->n_input; k++)
                touches = rm_prune_is_channel(a, nd->inputs[k]) && rm_prune_root(a, nd->inputs[k]) == gr->root;
            for (size_t k = 0; !touches && k < nd->proto->n_output; k++)
                touches = rm_prune_is_channel(a, nd->outputs[k]) && rm_prune_root(a, nd->outputs[k]) == gr->root;
            if (touches && !gr->ignored) {
                gr->ignored = true;
                snprintf(gr->ignored_by, sizeof gr->ignored_by, "%s", mod->path[0] ? mod->path : path);
            }
        }
    }
    free(nodes);
    return 0;
}

/* The group a Conv2d, ConvTranspose2d or Linear module's output channels belong to, ready
 * to prune. */
static int conv_group(struct analysis *a, const char *path, struct group **out)
{
    struct edit *e = a->e;
    const struct rm_module *mod;
    int rc = rm_tree_lookup(e->t, path, &mod, e->err);
    if (rc)
        return rc;
    enum rm_op op = mod->main_node >= 0 ? e->g->nodes[mod->main_node].op : RM_OP_UNKNOWN;
    bool linear = op == RM_OP_GEMM || (op == RM_OP_MATMUL && (rm_edit_is_linear(e->g, mod->main_node) ||
                                                              rm_prune_last_linear(e->g, mod->main_node)));
    if (op == RM_OP_MATMUL && !linear)
        return rm_error_set(e->err, RM_EEDIT,
                            "module '%s' is a %s whose MatMul does not multiply by a float32 constant [in, out] "
                            "weight: its features cannot be pruned", mod->path, mod->type);
    if (op != RM_OP_CONV && op != RM_OP_CONV_TRANSPOSE && !linear)
        return rm_error_set(e->err, RM_EEDIT, "module '%s' is a %s, not a Conv2d, ConvTranspose2d or Linear",
                            mod->path, mod->type);
    int y = e->g->nodes[mod->main_node].outputs[0];
    struct group *gr = y >= 0 && rm_prune_is_channel(a, y) ? rm_prune_group_of(a, y) : NULL;
    if (!gr || gr->unprunable)
        return rm_error_set(e->err, RM_EEDIT, "the channels of '%s' cannot be pruned: %s", mod->path,
                            gr ? gr->reason : "unknown output shape");
    if (gr->ignored)
        return rm_error_set(e->err, RM_EUSAGE, "'%s' is to be pruned, but its group is ignored (because of %s)",
                            mod->path, gr->ignored_by);
    *out = gr;
    return 0;
}

/* Channels group gr keeps when raw of them are chosen to go, with round_to r: the count is
 * rounded up to a multiple of r, then of its blocks (never above its channels). */
static int64_t kept_count(const struct group *gr, int64_t raw, int64_t r)
{
    int64_t c = gr->channels, k = c - raw;
    if (r > 1)
        k = (k + r - 1) / r * r;
    if (gr->blocks > 1) /* as many in each block of a grouped convolution: up to a multiple */
        k = (k + gr->blocks - 1) / gr->blocks * gr->blocks;
    return k < c ? k : c;
}

/* ---- the estimate -------------------------------------------------------------- */

struct use {
    int ga, gb;          /* groups scaling the tensor's axes, -1: none */
};

struct term {
    double base;         /* MACs or elements as in the model */
    int first, n;        /* its uses: uses[first .. first + n) */
    bool macs;
};

struct estimate {
    struct analysis *a;
    double *k;           /* per group: channels kept now */
    struct term *terms;
    size_t n_terms;
    struct use *uses;
    int **of_group;      /* per group: terms it scales */
    int *n_of_group;
    int **dependents;    /* per group: derived groups (of Concats, Splits) whose channels
                            include its channels, in graph order of their nodes */
    int *n_dependents;
    int *concat_node;    /* per group: the Concat or Split deriving it, or -1 */
    unsigned *stamp;     /* per term: last update that counted it */
    unsigned gen;
    double macs, params; /* what the terms add up to now */
    double macs_full, params_full; /* the same with every group whole */
};

static double factor(const struct estimate *s, int g)
{
    if (g < 0)
        return 1.0;
    const struct group *gr = &s->a->groups[g];
    return gr->channels > 0 ? s->k[g] / (double)gr->channels : 1.0;
}

static double term_value(const struct estimate *s, const struct term *t)
{
    bool changed = false;
    double sum = 0;
    for (int i = 0; i < t->n; i++) {
        const struct use *u = &s->uses[t->first + i];
        double f = factor(s, u->ga) * factor(s, u->gb);
        changed |= f != 1.0;
        sum += t->base * f;
    }
    /* a shared initializer stays one tensor until an edit copies it for its users */
    return changed || t->macs ? sum : t->base;
}

static int group_index(struct analysis *a, int v)
{
    if (v < 0 || !rm_prune_is_channel(a, v))
        return -1;
    int r = rm_prune_root(a, v);
    return a->group_of[r];
}

static int add_to(int **arr, int *n, int v)
{
    for (int i = 0; i < *n; i++)
        if ((*arr)[i] == v)
            return 0;
    int *p = realloc(*arr, (size_t)(*n + 1) * sizeof *p);
    if (!p)
        return -1;
    p[(*n)++] = v;
    *arr = p;
    return 0;
}

/* One use of a tensor (a node's MACs, or an initializer it reads), before grouping. */
struct rec {
    long key;            /* initializer index, or -1 - n for a MAC count (never grouped) */
    double base;
    int ga, gb;
};

static int cmp_rec(const void *x, const void *y)
{
    const struct rec *a = x, *b = y;
    return (a->key > b->key) - (a->key < b->key);
}

/* Sort groups v[0..n) by the graph position of the Concat producing each (insertion
 * sort: a group feeds a handful of Concats). */
static void sort_by_concat(int *v, int n, const int *concat_node)
{
    for (int i = 1; i < n; i++) {
        int t = v[i], j = i;
        while (j > 0 && concat_node[v[j - 1]] > concat_node[t]) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = t;
    }
}

static void estimate_free(struct estimate *s)
{
    if (s->a)
        for (int g = 0; g < s->a->n_groups; g++) {
            free(s->of_group ? s->of_group[g] : NULL);
            free(s->dependents ? s->dependents[g] : NULL);
        }
    free(s->k);
    free(s->terms);
    free(s->uses);
    free(s->of_group);
    free(s->n_of_group);
    free(s->dependents);
    free(s->n_dependents);
    free(s->concat_node);
    free(s->stamp);
    memset(s, 0, sizeof *s);
}

static int estimate_init(struct estimate *s, struct analysis *a)
{
    struct edit *e = a->e;
    const struct rm_graph *g = e->g;
    memset(s, 0, sizeof *s);
    s->a = a;
    size_t ng = (size_t)a->n_groups + 1, cap = 6 * g->n_nodes + 8, n_recs = 0;
    struct rec *recs = malloc(cap * sizeof *recs);
    int *gemm_group = malloc((g->n_nodes + 1) * sizeof *gemm_group);
    int *linear_out = malloc((g->n_nodes + 1) * sizeof *linear_out);
    s->k = calloc(ng, sizeof *s->k);
    s->of_group = calloc(ng, sizeof *s->of_group);
    s->n_of_group = calloc(ng, sizeof *s->n_of_group);
    s->dependents = calloc(ng, sizeof *s->dependents);
    s->n_dependents = calloc(ng, sizeof *s->n_dependents);
    s->concat_node = malloc(ng * sizeof *s->concat_node);
    int rc = 0;
    if (!recs || !gemm_group || !linear_out || !s->k || !s->of_group || !s->n_of_group || !s->dependents ||
        !s->n_dependents || !s->concat_node) {
        rc = -1;
        goto done;
    }
    for (size_t i = 0; i < g->n_nodes; i++)
        gemm_group[i] = linear_out[i] = -1;
    for (int gi = 0; gi < a->n_groups; gi++) {
        const struct group *gr = &a->groups[gi];
        s->k[gi] = (double)gr->channels;
        s->concat_node[gi] = -1;
        /* a Linear after Flatten is listed by the flattened group too (which nothing
         * sources): the channels that can change are the sourced group's */
        for (int k = 0; k < gr->n_gemms; k++)
            if (gr->sourced || gemm_group[gr->gemms[k]] < 0)
                gemm_group[gr->gemms[k]] = gi;
        for (int k = 0; k < gr->n_producers; k++)
            if (g->nodes[gr->producers[k]].op == RM_OP_GEMM || g->nodes[gr->producers[k]].op == RM_OP_MATMUL)
                linear_out[gr->producers[k]] = gi;
    }
    /* MACs and initializers of every node, with the groups that scale them */
    for (size_t i = 0; i < g->n_nodes; i++) {
        const struct rm_node *n = &g->nodes[i];
        int x = n->proto->n_input ? n->inputs[0] : -1, y = n->proto->n_output ? n->outputs[0] : -1;
        int gx = group_index(a, x), gy = group_index(a, y);
        int ga = -1, gb = -1; /* groups scaling weight axes 0 and 1 */
        int slots[4], n_slots = 0;
        int64_t mac = rm_node_macs(g, i);
        if (n->op == RM_OP_CONV) {
            if (gx >= 0 && gx == gy && rm_node_attr_int(n->proto, "group", 1) > 1) {
                ga = gx; /* depthwise: channel c in is channel c out */
            } else {
                ga = gy; /* weight [C_out, C_in / group, k...]: scaled by both groups */
                gb = gx;
            }
            slots[n_slots++] = 1;
            slots[n_slots++] = 2;
        } else if (n->op == RM_OP_CONV_TRANSPOSE) {
            /* weight [C_in, C_out / group, k...]: its size and MACs scale with both groups
             * (group 1) or with the one group (depthwise); the bias with the output's */
            if (gx >= 0 && gx == gy && rm_node_attr_int(n->proto, "group", 1) > 1) {
                ga = gx;
            } else {
                ga = gy;
                gb = gx;
            }
            slots[n_slots++] = 1;
            slots[n_slots++] = 2;
        } else if (n->op == RM_OP_BATCH_NORM) {
            ga = gx;
            for (int k = 1; k <= 4; k++)
                slots[n_slots++] = k;
            mac = 0;
        } else if (n->op == RM_OP_INSTANCE_NORM) {
            ga = gx;
            slots[n_slots++] = 1;
            slots[n_slots++] = 2;
            mac = 0;
        } else if (rm_op_def(n->op)->chan == RM_CHAN_ELTWISE && gy >= 0) {
            /* a per-channel constant (PRelu's slope, a bias or scale) follows the group */
            for (size_t k = 0; k < n->proto->n_input && k < 4; k++)
                if (rm_prune_const_channel_axis(g, (int)i, k, a->groups[gy].last) >= 0)
                    slots[n_slots++] = (int)k;
            if (!n_slots)
                continue;
            ga = gy;
            mac = 0;
        } else if (gemm_group[i] >= 0 || linear_out[i] >= 0) { /* a Linear: Gemm, or MatMul by a constant */
            ga = gemm_group[i]; /* its input features */
            gb = linear_out[i]; /* its output features, when it produces a group */
            slots[n_slots++] = 1;
            if (n->op == RM_OP_GEMM)
                slots[n_slots++] = 2;
        } else {
            const int *src;
            size_t n_src;
            const struct group *t = rm_prune_derived(a, (int)i, &src, &n_src);
            if (t)
                s->concat_node[t - a->groups] = (int)i;
            continue;
        }
        if (ga < 0 && gb < 0)
            continue;
        if (mac > 0)
            recs[n_recs++] = (struct rec){-1 - (long)i, (double)mac, ga, gb};
        for (int k = 0; k < n_slots; k++) {
            int slot = slots[k];
            if ((size_t)slot >= n->proto->n_input || n->inputs[slot] < 0)
                continue;
            int from = n->inputs[slot], wnode;
            size_t wslot;
            bool transposed;
            if (n->op == RM_OP_MATMUL && slot == 1 && rm_edit_linear_weight(g, (int)i, &wnode, &wslot, &transposed))
                from = g->nodes[wnode].inputs[wslot]; /* MatMul(x, Transpose(W)): W's entries */
            int iv = rm_graph_initializer_of(g, from);
            if (iv < 0 || g->values[iv].init < 0)
                continue;
            int64_t numel;
            const Onnx__TensorProto *t = g->proto->initializer[g->values[iv].init];
            if (rm_dims_numel(t->dims, t->n_dims, &numel))
                continue;
            /* a conv weight follows both axes; biases, BatchNorm vectors and a Linear's
             * weight (its input features) follow one group */
            bool linear = n->op == RM_OP_GEMM || n->op == RM_OP_MATMUL;
            if (linear && slot == 2) /* a Gemm's bias: its output features only */
                recs[n_recs++] = (struct rec){g->values[iv].init, (double)numel, gb, -1};
            else
                recs[n_recs++] = (struct rec){g->values[iv].init, (double)numel, ga,
                                              (n->op == RM_OP_CONV || n->op == RM_OP_CONV_TRANSPOSE || linear) &&
                                                      slot == 1 ? gb : -1};
        }
    }
    /* one term per MAC count and per initializer (its uses together) */
    qsort(recs, n_recs, sizeof *recs, cmp_rec);
    s->terms = calloc(n_recs + 1, sizeof *s->terms);
    s->uses = calloc(n_recs + 1, sizeof *s->uses);
    s->stamp = calloc(n_recs + 1, sizeof *s->stamp);
    if (!s->terms || !s->uses || !s->stamp) {
        rc = -1;
        goto done;
    }
    for (size_t i = 0; i < n_recs && !rc; i++) {
        if (i == 0 || recs[i].key < 0 || recs[i].key != recs[i - 1].key)
            s->terms[s->n_terms++] = (struct term){recs[i].base, (int)i, 0, recs[i].key < 0};
        int t = (int)s->n_terms - 1;
        s->terms[t].n++;
        s->uses[i] = (struct use){recs[i].ga, recs[i].gb};
        if (recs[i].ga >= 0)
            rc |= add_to(&s->of_group[recs[i].ga], &s->n_of_group[recs[i].ga], t);
        if (recs[i].gb >= 0)
            rc |= add_to(&s->of_group[recs[i].gb], &s->n_of_group[recs[i].gb], t);
    }
    /* Concat groups: their channels are their inputs'; every group feeding one (through
     * nested Concats too) changes it */
    for (int gi = 0; gi < a->n_groups && !rc; gi++) {
        if (s->concat_node[gi] < 0)
            continue;
        int stack[64], sp = 0;
        stack[sp++] = s->concat_node[gi];
        while (sp && !rc) {
            const int *src;
            size_t n_src;
            rm_prune_derived(a, stack[--sp], &src, &n_src);
            for (size_t k = 0; k < n_src && !rc; k++) {
                int gk = group_index(a, src[k]);
                if (gk < 0 || gk == gi)
                    continue;
                rc = add_to(&s->dependents[gk], &s->n_dependents[gk], gi);
                if (s->concat_node[gk] >= 0 && sp < 64)
                    stack[sp++] = s->concat_node[gk];
            }
        }
    }
    for (int gi = 0; gi < a->n_groups && !rc; gi++)
        sort_by_concat(s->dependents[gi], s->n_dependents[gi], s->concat_node);
    for (size_t t = 0; t < s->n_terms; t++) {
        double v = term_value(s, &s->terms[t]);
        if (s->terms[t].macs)
            s->macs_full += v;
        else
            s->params_full += v;
    }
    s->macs = s->macs_full;
    s->params = s->params_full;
done:
    free(recs);
    free(gemm_group);
    free(linear_out);
    return rc ? rm_error_set(e->err, RM_ENOMEM, "out of memory") : 0;
}

/* Recompute the kept channels of a derived group from its sources; whether they changed. */
static bool concat_update(struct estimate *s, int gi)
{
    const int *src;
    size_t n_src;
    double k = 0;
    rm_prune_derived(s->a, s->concat_node[gi], &src, &n_src);
    for (size_t j = 0; j < n_src; j++) {
        struct group *gj;
        int64_t c = rm_prune_source_channels(s->a, src[j], &gj);
        k += gj ? s->k[gj - s->a->groups] : c > 0 ? (double)c : 0;
    }
    bool changed = s->k[gi] != k;
    s->k[gi] = k;
    return changed;
}

/* Add sign times the value of every term that group gi or its Concat groups scale
 * (each term once). */
static void estimate_sum(struct estimate *s, int gi, double sign)
{
    s->gen++;
    for (int q = -1; q < s->n_dependents[gi]; q++) {
        int gq = q < 0 ? gi : s->dependents[gi][q];
        for (int i = 0; i < s->n_of_group[gq]; i++) {
            int t = s->of_group[gq][i];
            if (s->stamp[t] == s->gen)
                continue;
            s->stamp[t] = s->gen;
            double v = sign * term_value(s, &s->terms[t]);
            if (s->terms[t].macs)
                s->macs += v;
            else
                s->params += v;
        }
    }
}

/* Group gi keeps k channels now: update the estimate. */
static void estimate_set(struct estimate *s, int gi, double k)
{
    estimate_sum(s, gi, -1.0);
    s->k[gi] = k;
    /* in graph order a Concat's inputs come first, but a Split's parts after it: sweep
     * until nested derivations agree */
    for (int sweep = 0, changed = 1; changed && sweep <= s->n_dependents[gi]; sweep++) {
        changed = 0;
        for (int q = 0; q < s->n_dependents[gi]; q++)
            changed |= concat_update(s, s->dependents[gi][q]);
    }
    estimate_sum(s, gi, 1.0);
}

/* ---- selection ------------------------------------------------------------------- */

struct ranked {
    double s;
    int group;
    int64_t ch;
};

static int cmp_ranked(const void *x, const void *y)
{
    const struct ranked *a = x, *b = y;
    if (a->s != b->s)
        return a->s < b->s ? -1 : 1;
    if (a->group != b->group)
        return a->group - b->group;
    return (a->ch > b->ch) - (a->ch < b->ch);
}

/* Remove the n lowest-scored channels of gr, then round the count kept. */
static int prune_ratio(struct analysis *a, struct group *gr, double ratio, int64_t round_to)
{
    int64_t n_remove = (int64_t)floor(ratio * (double)gr->channels + 1e-9);
    if (n_remove >= gr->channels)
        n_remove = gr->channels - 1;
    n_remove = gr->channels - kept_count(gr, n_remove, round_to);
    return rm_prune_choose_lowest(a->e, gr, n_remove);
}

/* Ratio r for group gr (a module's own: `own`, which must not contradict another; else
 * the shared ratio, which a group's own ratio overrides). A group a Split divides (C2f's
 * cv1) is pruned through its parts: each part that can be pruned gets the ratio. */
static int set_ratio(struct analysis *a, double *ratio, struct group *gr, double r, const char *path, bool own)
{
    struct group *targets[64];
    int n_targets = 0;
    const char *why = NULL;
    if (!gr->n_splits) {
        targets[n_targets++] = gr;
    } else {
        int x;
        const int *parts;
        size_t n_parts;
        rm_prune_divider(a, gr->splits[0], &x, &parts, &n_parts);
        for (size_t k = 0; k < n_parts && n_targets < 64; k++) {
            struct group *gk = rm_prune_group_of(a, parts[k]);
            if (gk->unprunable || gk->n_splits || gk->ignored)
                why = gk->unprunable ? gk->reason : gk->ignored ? "it is ignored" : "a Split divides it again";
            else
                targets[n_targets++] = gk;
        }
        if (!n_targets)
            return rm_error_set(a->e->err, RM_EEDIT, "the channels of '%s' cannot be pruned: they are split into "
                                "parts (%s), and no part can be: %s", path, rm_edit_where(a->e, gr->splits[0]), why);
    }
    for (int k = 0; k < n_targets; k++) {
        int gi = (int)(targets[k] - a->groups);
        if (own && ratio[gi] >= 0 && ratio[gi] != r)
            return rm_error_set(a->e->err, RM_EUSAGE, "'%s' is given ratio %g, and its group ratio %g already", path,
                                r, ratio[gi]);
        if (own || ratio[gi] < 0)
            ratio[gi] = r;
    }
    return 0;
}

int rm_prune_select(struct analysis *a, const char *const *paths, size_t n_paths, const rm_prune_options *o)
{
    struct edit *e = a->e;
    struct rm_error *err = e->err;
    bool global = o->global || targeted(o);
    int64_t round_to = o->round_to > 1 ? o->round_to : 1;
    double *ratio = malloc(((size_t)a->n_groups + 1) * sizeof *ratio);
    struct group **list = calloc((size_t)a->n_groups + 1, sizeof *list);
    struct ranked *ranked = NULL;
    int64_t *removed = NULL;
    struct estimate est = {0};
    int rc = 0, n_list = 0;
    if (!ratio || !list) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < a->n_groups; i++)
        ratio[i] = -1;
    for (size_t i = 0; i < o->n_ignore && !rc; i++)
        rc = ignore_module(a, o->ignore[i]);
    /* an ignored group that a Split divides keeps its parts whole too */
    for (int i = 0; i < a->n_groups; i++)
        for (int k = 0; a->groups[i].ignored && k < a->groups[i].n_splits; k++) {
            int x;
            const int *parts;
            size_t n_parts;
            rm_prune_divider(a, a->groups[i].splits[k], &x, &parts, &n_parts);
            for (size_t j = 0; j < n_parts; j++) {
                struct group *gj = rm_prune_group_of(a, parts[j]);
                if (!gj->ignored) {
                    gj->ignored = true;
                    snprintf(gj->ignored_by, sizeof gj->ignored_by, "%s", a->groups[i].ignored_by);
                }
            }
        }
    for (size_t i = 0; i < o->n_ratio_for && !rc; i++) {
        struct group *gr;
        if (!(rc = conv_group(a, o->ratio_for[i].path, &gr)))
            rc = set_ratio(a, ratio, gr, o->ratio_for[i].ratio, o->ratio_for[i].path, true);
    }
    /* the named modules: explicit channels, or the ratio (a module's own ratio wins) */
    for (size_t p = 0; p < n_paths && !rc; p++) {
        struct group *gr;
        if ((rc = conv_group(a, paths[p], &gr)))
            break;
        int gi = (int)(gr - a->groups);
        if (gr->keep)
            continue; /* two paths in the same coupled group */
        if (gr->n_splits && o->n_channels) {
            rc = rm_error_set(err, RM_EUSAGE,
                              "the output channels of '%s' are split into parts that other layers read (%s), and "
                              "are pruned through those parts: name a layer of one part, or give a ratio",
                              paths[p], rm_edit_where(e, gr->splits[0]));
        } else if (gr->n_splits) {
            rc = set_ratio(a, ratio, gr, o->ratio, paths[p], false);
        } else if (o->n_channels) {
            char *drop = calloc((size_t)gr->channels, 1);
            gr->keep = malloc((size_t)gr->channels * sizeof *gr->keep);
            if (!drop || !gr->keep) {
                free(drop);
                rc = rm_error_set(err, RM_ENOMEM, "out of memory");
                break;
            }
            for (size_t i = 0; i < o->n_channels && !rc; i++) {
                if (o->channels[i] < 0 || o->channels[i] >= gr->channels)
                    rc = rm_error_set(err, RM_EUSAGE, "channel %lld is out of range for '%s' (%lld channels)",
                                      (long long)o->channels[i], paths[p], (long long)gr->channels);
                else
                    drop[o->channels[i]] = 1;
            }
            gr->n_keep = 0;
            for (int64_t c = 0; c < gr->channels; c++)
                if (!drop[c])
                    gr->keep[gr->n_keep++] = c;
            free(drop);
            if (!rc && gr->n_keep == 0)
                rc = rm_error_set(err, RM_EUSAGE, "the channels given are every channel of '%s'", paths[p]);
            for (int64_t b = 0, bs = gr->channels / gr->blocks, n0 = -1; !rc && gr->blocks > 1 && b < gr->blocks; b++) {
                int64_t nk = 0;
                for (int64_t q = 0; q < gr->n_keep; q++)
                    nk += gr->keep[q] / bs == b;
                if (n0 >= 0 && nk != n0)
                    rc = rm_error_set(err, RM_EUSAGE, "the channels of '%s' feed grouped convolutions in %lld groups "
                                      "of %lld channels: remove the same number from each group", paths[p],
                                      (long long)gr->blocks, (long long)bs);
                n0 = nk;
            }
        } else if (ratio[gi] < 0) {
            ratio[gi] = o->ratio;
        }
    }
    if (rc)
        goto done;
    /* score what the criterion decides: groups with a ratio, and the global candidates */
    for (int i = 0; i < a->n_groups; i++) {
        struct group *gr = &a->groups[i];
        bool candidate = global && !gr->unprunable && gr->sourced && !gr->n_splits && !gr->ignored && !gr->keep;
        if (ratio[i] >= 0 || candidate)
            list[n_list++] = gr;
    }
    if ((rc = score_groups(a, list, n_list, o)))
        goto done;
    for (int i = 0; i < a->n_groups && !rc; i++)
        if (ratio[i] >= 0 && !a->groups[i].keep)
            rc = prune_ratio(a, &a->groups[i], ratio[i], round_to);
    if (rc || !global)
        goto done;

    /* global: every candidate's channels ranked together */
    size_t total = 0;
    for (int i = 0; i < n_list; i++)
        if (!list[i]->keep)
            total += (size_t)list[i]->channels;
    ranked = malloc((total ? total : 1) * sizeof *ranked);
    removed = calloc((size_t)a->n_groups + 1, sizeof *removed);
    if (!ranked || !removed) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    size_t k = 0;
    for (int i = 0; i < n_list; i++) {
        struct group *gr = list[i];
        if (gr->keep)
            continue;
        /* divided by the group's mean (Torch-Pruning's default normaliser): a group with
         * one outstanding channel does not make all its others look unimportant */
        double mean = 0;
        for (int64_t c = 0; c < gr->channels; c++)
            mean += gr->score[c];
        mean /= (double)gr->channels;
        for (int64_t c = 0; c < gr->channels; c++)
            ranked[k++] = (struct ranked){mean > 0 ? gr->score[c] / mean : 0, (int)(gr - a->groups), c};
    }
    qsort(ranked, k, sizeof *ranked, cmp_ranked);
    if (targeted(o)) {
        struct rm_info info;
        if ((rc = rm_info_compute(e->g, &info, err)))
            goto done;
        int64_t params0 = info.params, macs0 = info.macs;
        rm_info_free(&info);
        if (o->target_macs > 0 && macs0 < 0) {
            rc = rm_error_set(err, RM_EUSAGE, "a MAC target needs the model's MACs, and a shape cannot be inferred");
            goto done;
        }
        if ((rc = estimate_init(&est, a)))
            goto done;
        /* what no group scales stays as it is */
        double fixed_m = (double)macs0 - est.macs_full, fixed_p = (double)params0 - est.params_full;
        /* the groups pruned by their own ratio count from the start */
        for (int i = 0; i < a->n_groups; i++)
            if (a->groups[i].keep && a->groups[i].n_keep < a->groups[i].channels)
                estimate_set(&est, i, (double)a->groups[i].n_keep);
        double goal_m = o->target_macs > 0 ? o->target_macs * (double)macs0 : INFINITY;
        double goal_p = o->target_params > 0 ? o->target_params * (double)params0 : INFINITY;
        bool met = fixed_m + est.macs <= goal_m * (1 + 1e-12) && fixed_p + est.params <= goal_p * (1 + 1e-12);
        for (size_t i = 0; i < k && !met; i++) {
            int gi = ranked[i].group;
            struct group *gr = &a->groups[gi];
            if (removed[gi] + 1 >= gr->channels)
                continue;
            removed[gi]++;
            gr->score[ranked[i].ch] = -2.0 + (double)i / (double)(k + 1); /* marked: earliest ranked lowest */
            int64_t kept = kept_count(gr, removed[gi], round_to);
            if ((double)kept != est.k[gi])
                estimate_set(&est, gi, (double)kept);
            met = fixed_m + est.macs <= goal_m * (1 + 1e-12) && fixed_p + est.params <= goal_p * (1 + 1e-12);
        }
        if (!met) {
            char what[160] = "";
            if (fixed_m + est.macs > goal_m)
                snprintf(what, sizeof what, "%.1f%% of the MACs", 100.0 * (fixed_m + est.macs) / (double)macs0);
            else
                snprintf(what, sizeof what, "%.1f%% of the parameters", 100.0 * (fixed_p + est.params) / (double)params0);
            rc = rm_error_set(err, RM_EEDIT,
                              "the target cannot be met: pruning every prunable group as far as it goes%s keeps %s "
                              "(what cannot be pruned: unprunable or ignored groups, other layers)",
                              round_to > 1 ? " (in multiples of the round-to)" : "", what);
            goto done;
        }
    } else {
        size_t n_remove = (size_t)floor(o->ratio * (double)k + 1e-9);
        /* drop the globally least important channels, never a group's last one */
        for (size_t i = 0, done_n = 0; i < k && done_n < n_remove; i++) {
            struct group *gr = &a->groups[ranked[i].group];
            if (removed[ranked[i].group] + 1 >= gr->channels)
                continue;
            removed[ranked[i].group]++;
            gr->score[ranked[i].ch] = -2.0 + (double)i / (double)(k + 1);
            done_n++;
        }
    }
    for (int i = 0; i < a->n_groups && !rc; i++) {
        struct group *gr = &a->groups[i];
        if (!gr->score || !removed[i] || gr->keep)
            continue;
        int64_t go = gr->channels - kept_count(gr, removed[i], round_to);
        if (go > 0)
            rc = rm_prune_choose_lowest(e, gr, go);
    }
done:
    estimate_free(&est);
    free(ratio);
    free(list);
    free(ranked);
    free(removed);
    return rc;
}
