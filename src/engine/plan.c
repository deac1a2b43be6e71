/* Plan compilation: every node, in graph order, to a oneDNN step, a C-kernel step, a
 * plan-time constant, or into an earlier step (fusion), after shape inference has
 * given every value its shape. */
#include "rm_engine_int.h"
#include "rm_machine.h"
#include "rm_shape.h"
#include "rm_strbuf.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

void rm_session_options_default(struct rm_session_options *o)
{
    memset(o, 0, sizeof *o); /* every field a later version adds starts at 0 */
    o->fuse = 1;
}


/* ---- supported ops ----------------------------------------------------------- */

int rm_eng_op_supported(const struct rm_node *n)
{
    return (rm_op_def(n->op)->flags & RM_OPF_ENGINE) != 0;
}

int rm_eng_is(const struct rm_plan *p, int node, enum rm_op op)
{
    return p->g->nodes[node].op == op;
}


/* ---- planning -------------------------------------------------------------------- */

static int plan_c_node(struct rm_plan *p, int node, struct rm_error *err)
{
    const struct rm_node *n = &p->g->nodes[node];
    int rc, all_const = 1;
    for (size_t k = 0; k < n->proto->n_output; k++) {
        struct val *o = rm_eng_out(p, node, k);
        if (o && o->dtype && (rc = rm_eng_alloc_plain(p, o, err)))
            return rc;
    }
    for (size_t k = 0; k < n->proto->n_input; k++) {
        struct val *v = rm_eng_in(p, node, k);
        if (v && v->kind != V_CONST)
            all_const = 0;
    }
    if (rm_eng_is(p, node, RM_OP_SHAPE))
        all_const = 1; /* shapes are static */
    /* whatever is computed from constants only is computed once, here */
    if (all_const) {
        if ((rc = rm_eng_kernel(p, node)))
            return rc;
        p->node_state[node] = -1;
        for (size_t k = 0; k < n->proto->n_output; k++) {
            struct val *o = rm_eng_out(p, node, k);
            if (o && o->dtype) {
                o->kind = V_CONST;
                o->computed = 1;
            }
        }
        return 0;
    }
    struct step *s = rm_eng_new_step(p, node);
    if (!s)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    s->c_node = node;
    /* outputs past the fourth (a Split) keep buffers of their own: the memory planner
     * shares only what a step lists as written */
    for (size_t k = 0; k < n->proto->n_output; k++) {
        struct val *o = rm_eng_out(p, node, k);
        if (o && o->dtype) {
            o->kind = V_ACT;
            if (s->n_written < 4)
                s->written[s->n_written++] = n->outputs[k];
        }
    }
    return 0;
}

/* What the engine cannot run of an op it supports: types other than float32 where the
 * kernels need them, training outputs and modes. */
static int check_node(struct rm_plan *p, int node)
{
    const struct rm_node *n = &p->g->nodes[node];
    unsigned flags = rm_op_def(n->op)->flags;
    struct val *x = rm_eng_in(p, node, 0);
    if ((flags & RM_OPF_F32) && x && x->dtype != RM_F32)
        return rm_eng_node_err(p, node, RM_EUNSUPPORTED, "input type %s is not supported", rm_dtype_name(x->dtype));
    if (flags & RM_OPF_ONE_OUTPUT)
        for (size_t k = 1; k < n->proto->n_output; k++)
            if (n->outputs[k] >= 0)
                return rm_eng_node_err(p, node, RM_EUNSUPPORTED,
                                       "output %zu (training outputs / mask) is not supported", k);
    if (n->op == RM_OP_BATCH_NORM && rm_node_attr_int(n->proto, "training_mode", 0))
        return rm_eng_node_err(p, node, RM_EUNSUPPORTED, "training mode is not supported");
    return 0;
}

/* Type and shape of node's outputs, as shape inference derived them. */
static int take_shapes(struct rm_plan *p, int node)
{
    const struct rm_node *n = &p->g->nodes[node];
    for (size_t k = 0; k < n->proto->n_output; k++) {
        int vi = n->outputs[k];
        if (vi < 0)
            continue;
        const struct rm_value *gv = &p->g->values[vi];
        struct val *o = &p->vals[vi];
        if (gv->rank < 0)
            return rm_eng_node_err(p, node, RM_EUNSUPPORTED, "the shape of output %zu cannot be inferred", k);
        /* carried as float32 or int64 (rm_engine.h) */
        if (!rm_dtype_host(gv->elem_type))
            return rm_eng_node_err(p, node, RM_EUNSUPPORTED, "output type %s is not supported",
                                   rm_dtype_name(gv->elem_type));
        o->dtype = rm_dtype_host(gv->elem_type);
        o->rank = gv->rank;
        memcpy(o->dims, gv->dims, sizeof o->dims);
        if (rm_dims_numel(o->dims, (size_t)o->rank, &o->numel) || o->numel > ((int64_t)1 << 36))
            return rm_eng_node_err(p, node, RM_EFORMAT, "output is too large");
    }
    return 0;
}

static int plan_node(struct rm_plan *p, int node, struct rm_error *err)
{
    int rc, fallback = 1;
    if (p->node_state[node] != -2)
        return 0; /* fused into an earlier step */
    if (rm_eng_is(p, node, RM_OP_CONSTANT)) {
        p->node_state[node] = -1;
        return rm_eng_load_constant_node(p, node, err);
    }
    for (size_t k = 0; k < p->g->nodes[node].proto->n_input; k++) {
        int vi = p->g->nodes[node].inputs[k];
        if (vi < 0)
            continue;
        struct val *v = &p->vals[vi];
        if ((rc = rm_eng_early_const(p, vi, err)))
            return rc;
        if (v->kind == V_UNSET)
            return rm_eng_node_err(p, node, RM_EFORMAT, "input '%s' is not produced before use",
                                   p->g->values[vi].name);
        if (v->kind == V_FUSED)
            return rm_eng_node_err(p, node, RM_EFORMAT, "input '%s' was fused away",
                                   p->g->values[vi].name);
    }
    if ((rc = check_node(p, node)) || (rc = take_shapes(p, node)))
        return rc;
    const struct rm_op_def *def = rm_op_def(p->g->nodes[node].op);
    struct val *o = rm_eng_out(p, node, 0);
    int all_const = 1;
    for (size_t k = 0; k < p->g->nodes[node].proto->n_input; k++) {
        struct val *v = rm_eng_in(p, node, k);
        if (v && v->kind != V_CONST)
            all_const = 0;
    }
    /* constants go to the C kernel, folded; an op without one (Conv, the global pools)
     * on constant inputs runs as a step like any other */
    if ((!all_const || !def->kernel) && o->numel > 0 && def->plan) {
        if ((rc = def->plan(p, node, &fallback, err)))
            return rc;
        if (!fallback)
            return 0;
    }
    if (!def->kernel)
        return rm_eng_node_err(p, node, RM_EUNSUPPORTED, "constant or empty input is not supported");
    return plan_c_node(p, node, err);
}

/* ---- unsupported ops ------------------------------------------------------------- */

/* "domain.Op" (or "Op") of node i into buf. */
static void op_label(const struct rm_graph *g, size_t i, char *buf, size_t n)
{
    const Onnx__NodeProto *np = g->nodes[i].proto;
    int dom = np->domain && np->domain[0];
    snprintf(buf, n, "%s%s%s", dom ? np->domain : "", dom ? "." : "", np->op_type ? np->op_type : "?");
}

/* Every op of g the engine does not run, before anything is allocated for the plan: one
 * node is "node 'X': op Foo is not supported"; more list each op with its node count and
 * first node: "ops not supported: Foo (3 nodes, first 'n1'), Bar (1 node, first 'n7')". */
static int refuse_unsupported(const struct rm_graph *g, struct rm_error *err)
{
    enum { MAX_OPS = 16 };
    struct {
        char label[128];
        size_t count, first;
    } ops[MAX_OPS];
    size_t n_ops = 0, n_bad = 0, other_nodes = 0;
    char a[128];
    for (size_t i = 0; i < g->n_nodes; i++) {
        if (rm_eng_op_supported(&g->nodes[i]))
            continue;
        n_bad++;
        op_label(g, i, a, sizeof a);
        size_t k = 0;
        while (k < n_ops && strcmp(ops[k].label, a))
            k++;
        if (k == n_ops) {
            if (n_ops == MAX_OPS) {
                other_nodes++;
                continue;
            }
            memcpy(ops[k].label, a, sizeof a);
            ops[k].count = 0;
            ops[k].first = i;
            n_ops++;
        }
        ops[k].count++;
    }
    if (!n_bad)
        return 0;
    if (n_bad == 1)
        return rm_error_set(err, RM_EUNSUPPORTED, "node '%s': op %s is not supported",
                            rm_graph_node_label(g, ops[0].first), ops[0].label);
    struct rm_strbuf sb = {0};
    rm_sb_puts(&sb, "ops not supported: ");
    for (size_t k = 0; k < n_ops; k++)
        rm_sb_printf(&sb, "%s%s (%zu node%s, first '%s')", k ? ", " : "", ops[k].label, ops[k].count,
                     ops[k].count == 1 ? "" : "s", rm_graph_node_label(g, ops[k].first));
    if (other_nodes)
        rm_sb_printf(&sb, ", and %zu node%s of other ops", other_nodes, other_nodes == 1 ? "" : "s");
    int rc = rm_error_set(err, RM_EUNSUPPORTED, "%s", sb.oom || !sb.s ? "ops not supported" : sb.s);
    rm_sb_free(&sb);
    return rc;
}

/* Free one plan-owned buffer early (it is being replaced). */

typedef void (*omp_set_fn)(int);
typedef int (*omp_get_fn)(void);

/* OpenMP's thread count, through the runtime oneDNN brings (remodel does not link one
 * itself): the setter and getter, or NULL. */
static void omp_fns(omp_set_fn *set, omp_get_fn *get)
{
    void *s = dlsym(RTLD_DEFAULT, "omp_set_num_threads"), *g = dlsym(RTLD_DEFAULT, "omp_get_max_threads");
    *set = NULL;
    *get = NULL;
    if (s && g) {
        memcpy(set, &s, sizeof *set);
        memcpy(get, &g, sizeof *get);
    }
}

static void set_threads(int n)
{
    omp_set_fn set;
    omp_get_fn get;
    omp_fns(&set, &get);
    if (n > 0 && set)
        set(n);
}

void rm_eng_threads(struct rm_plan *p, int n)
{
    if (n > 0 && p->omp_get && p->omp_get() != n)
        p->omp_set(n);
}

/* Work of node i: its MACs, or the elements of its largest input or output. */
static int64_t node_work(const struct rm_graph *g, size_t i)
{
    int64_t w = rm_node_macs(g, i);
    if (w < 0)
        return INT64_MAX; /* unknown: as big as can be */
    const struct rm_node *n = &g->nodes[i];
    for (size_t k = 0; k < n->proto->n_input + n->proto->n_output; k++) {
        int v = k < n->proto->n_input ? n->inputs[k] : n->outputs[k - n->proto->n_input];
        int64_t e;
        if (v >= 0 && g->values[v].rank >= 0 && !rm_dims_numel(g->values[v].dims, (size_t)g->values[v].rank, &e) &&
            e > w)
            w = e;
    }
    return w;
}

int rm_session_create(struct rm_plan **out, struct rm_model *model, const struct rm_session_options *opts,
                 struct rm_error *err)
{
    int rc = 0;
    struct rm_plan *p = NULL;
    double t_start = rm_eng_now_ms(), t_shapes;
    *out = NULL;
    struct rm_graph *g = rm_model_index(model, err);
    if (!g)
        return err->code;
    if ((rc = refuse_unsupported(g, err)))
        return rc;
    /* the plan assumes one producer per tensor, defined before use (fuzzing found a
     * model with two nodes writing 'y'; buffers were freed under the second one), and
     * a first output on every node: every supported op has one, so from here on
     * rm_eng_out(p, node, 0) is never NULL (fuzzing found a BatchNorm and a Relu that
     * fusion wrote through without one) */
    for (size_t i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].proto->n_output < 1 || g->nodes[i].outputs[0] < 0)
            return rm_error_set(err, RM_EFORMAT, "node '%s' (%s): has no output", rm_graph_node_label(g, i),
                                g->nodes[i].proto->op_type ? g->nodes[i].proto->op_type : "?");
        for (size_t k = 0; k < g->nodes[i].proto->n_output; k++) {
            int v = g->nodes[i].outputs[k];
            if (v >= 0 && g->values[v].producer != (int)i)
                return rm_error_set(err, RM_EFORMAT, "node '%s': output '%s' is already produced by node '%s'",
                                    rm_graph_node_label(g, i), g->values[v].name,
                                    g->values[v].producer >= 0 ? g->nodes[g->values[v].producer].proto->name
                                                                     ? g->nodes[g->values[v].producer].proto->name
                                                                     : "?"
                                                               : "?");
            if (v >= 0 && (g->values[v].init >= 0 || g->values[v].input >= 0))
                return rm_error_set(err, RM_EFORMAT,
                                    "node '%s': output '%s' has the name of an initializer or graph input",
                                    rm_graph_node_label(g, i), g->values[v].name);
        }
    }
    /* every value's type and shape, for the inputs given: the model's shapes when the
     * inputs are those it was inferred for (a model that cannot run as written is
     * refused here, naming the node) */
    struct rm_session_options o;
    if (opts)
        o = *opts;
    else
        rm_session_options_default(&o);
    struct rm_input_spec *specs = NULL;
    size_t n_specs = 0;
    rc = rm_eng_given_specs(model, g, &o, &specs, &n_specs, err);
    if (!rc)
        rc = rm_model_set_inputs(model, specs, n_specs, err);
    free(specs);
    /* every dim known, but for a dynamic batch (taken as 1) */
    if (!rc)
        rc = rm_model_check_inputs(model, NULL, err);
    if (rc)
        return rc;
    if (!(g = rm_model_graph(model, err)))
        return err->code;
    if ((rc = rm_shape_check(g, err)))
        return rc;
    t_shapes = rm_eng_now_ms();
    p = calloc(1, sizeof *p);
    if (!p)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    p->g = g;
    rm_graph_hold(g);
    if (rm_eng_prof_init(p)) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    p->err = err;
    rm_arena_init(&p->hp, (size_t)8 << 20);
    p->opts = o;
    /* the session's own limit, else the load's (0 for a model built in memory) */
    p->mem_limit = o.max_memory ? o.max_memory : model->max_memory ? model->max_memory : rm_machine_memory_budget();
    set_threads(p->opts.threads);
    omp_fns(&p->omp_set, &p->omp_get);
    p->threads_max = p->omp_get ? p->omp_get() : 0;
    p->vals = calloc(g->n_values ? g->n_values : 1, sizeof *p->vals);
    p->node_state = malloc((g->n_nodes ? g->n_nodes : 1) * sizeof(int));
    p->in_vals = malloc((g->proto->n_input + 1) * sizeof(int));
    p->out_vals = malloc((g->proto->n_output + 1) * sizeof(int));
    if (!p->vals || !p->node_state || !p->in_vals || !p->out_vals) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < g->n_nodes; i++)
        p->node_state[i] = -2;
    for (size_t i = 0; i < g->n_values; i++)
        p->vals[i].clobber_step = p->vals[i].overwrite_step = -1;
    for (size_t i = 0; i < g->n_nodes; i++) {
        int64_t m = rm_node_macs(g, i);
        if (m > 0 && __builtin_add_overflow(p->macs, m, &p->macs))
            p->macs = INT64_MAX; /* a hostile model: no run gets that far */
    }
    CHECK(dnnl_engine_create(&p->eng, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&p->strm, p->eng, dnnl_stream_default_flags));

    rm_eng_choose_conv_layout(p);
    for (size_t i = 0; i < g->proto->n_input; i++) {
        int vi = g->proto->input[i]->name ? rm_graph_find(g, g->proto->input[i]->name) : -1;
        if (vi < 0 || g->values[vi].init >= 0)
            continue;
        if ((rc = rm_eng_setup_input(p, vi, err)) < 0)
            goto done;
        if (rc == 0)
            p->in_vals[p->n_in++] = vi;
        rc = 0;
    }
    for (size_t i = 0; i < g->n_nodes; i++) {
        double t0 = p->prof ? rm_eng_now_ms() : 0;
        /* a step too small to share runs on one thread (waking and joining a team costs
         * more than it saves: a 100k-node chain of tiny convs ran 10x slower on two
         * threads); its primitives are made for one thread too, since oneDNN fixes some
         * decompositions when it creates them */
        int first = p->n_steps, want = p->threads_max > 1 && node_work(g, i) < RM_ENG_TINY_WORK ? 1 : p->threads_max;
        rm_eng_threads(p, want);
        if ((rc = plan_node(p, (int)i, err))) {
            if (!strstr(err->msg, "node '"))
                rm_error_prefix(err, "node '%s' (%s)", rm_graph_node_label(g, i),
                                g->nodes[i].proto->op_type);
            goto done;
        }
        if (p->prof)
            p->prof->node_plan_ms[i] += rm_eng_now_ms() - t0;
        for (int k = first; k < p->n_steps; k++)
            p->steps[k].threads = want;
    }
    rm_eng_threads(p, p->threads_max);
    for (size_t i = 0; i < g->proto->n_output; i++) {
        const char *nm = g->proto->output[i]->name;
        int vi = nm ? rm_graph_find(g, nm) : -1;
        if (vi < 0)
            continue;
        if (p->vals[vi].kind == V_UNSET && g->values[vi].init >= 0)
            if ((rc = rm_eng_load_const(p, &p->vals[vi], g->proto->initializer[g->values[vi].init], nm, err)))
                goto done;
        if (p->vals[vi].kind == V_UNSET || p->vals[vi].kind == V_FUSED) {
            rc = rm_error_set(err, RM_EFORMAT, "graph output '%s' is never produced", nm);
            goto done;
        }
        p->out_vals[p->n_out++] = vi;
    }
    double t_mem = rm_eng_now_ms();
    if ((rc = rm_eng_plan_memory(p, err)) || (rc = rm_eng_place_reorders(p, err)))
        goto done;
    rm_session_begin(p);
    if (p->prof) {
        double t_end = rm_eng_now_ms();
        p->prof->memory_ms = t_end - t_mem;
        p->prof->shapes_ms = t_shapes - t_start;
        p->prof->compile_ms = t_end - t_start;
    }
done:
    if (rc && p && p->mem_refused) {
        /* what ran out was the budget, whatever the allocation site said */
        rc = rm_error_set(err, RM_ENOMEM,
                          "the model needs more than its memory limit of %.1f MB at these input sizes: %s would "
                          "take %.1f MB more (%.1f MB taken)",
                          (double)p->mem_limit / 1048576.0, p->mem_what[0] ? p->mem_what : "a buffer",
                          (double)p->mem_refused / 1048576.0, (double)p->mem_used / 1048576.0);
    }
    if (rc) {
        rm_session_free(p);
        return rc;
    }
    p->err = NULL;
#if defined(__GLIBC__)
    /* the small buffers values had before the memory planner moved them to shared ones
     * are free but resident, and glibc keeps them: give them back (about 1 ms;
     * densenet121's verified prune peaked 12 MB lower, resnet18's 10 MB) */
    malloc_trim(0);
#endif
    *out = p;
    return 0;
}

void rm_eng_cache_drop(void)
{
    int cap;
    if (dnnl_get_primitive_cache_capacity(&cap) == dnnl_success && cap > 0 &&
        dnnl_set_primitive_cache_capacity(0) == dnnl_success)
        dnnl_set_primitive_cache_capacity(cap);
}

void rm_session_free(struct rm_plan *p)
{
    if (!p)
        return;
    rm_eng_prof_report(p);
    rm_eng_prof_free(p);
    for (int i = 0; i < p->n_prims; i++)
        dnnl_primitive_destroy(p->prims[i]);
    for (int i = 0; i < p->n_mems; i++)
        dnnl_memory_destroy(p->mems[i]);
    rm_eng_bufs_free(p);
    if (p->sp_attr)
        dnnl_primitive_attr_destroy(p->sp_attr);
    if (p->strm)
        dnnl_stream_destroy(p->strm);
    if (p->eng)
        dnnl_engine_destroy(p->eng);
    free(p->prims);
    free(p->mems);
    free(p->refs);
    free(p->scratch);
    free(p->preps);
    free(p->rin);
    rm_arena_free(&p->hp);
    free(p->steps);
    free(p->vals);
    free(p->node_state);
    free(p->in_vals);
    free(p->out_vals);
    rm_graph_drop(p->g);
    free(p);
#if defined(__GLIBC__)
    /* what the plan freed stays resident until glibc is asked to give it back: a
     * verification frees the original's plan before building the edit's (densenet121:
     * 58 MB resident between the two, 46 MB with this) */
    malloc_trim(0);
#endif
}

