/* Tests for the inference engine (rm_engine) and tensor files (rm_tensorio).
 * Expected outputs are PyTorch's (testdata/<model>/test_data_set_0/output_0.pb);
 * small models and hostile tensor files are built here byte by byte. */
#include "remodel.h"
#include "rm_engine.h"
#include "rm_engine_int.h"
#include "rm_model.h"
#include "rm_tensorio.h"
#include "omp_spin.h"
#include "test_util.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define F32 ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
#define I64 ONNX__TENSOR_PROTO__DATA_TYPE__INT64

static const char *const models[] = {"tiny_resnet", "mobilenet_tiny", "concat_net",
                                     "se_net",      "shared_init",    "resnet18"};
#define N_MODELS (int)(sizeof models / sizeof models[0])

struct loaded {
    struct rm_model *m;
    struct rm_graph g;
    struct rm_plan *p;
};

static void load_opts(struct loaded *l, const char *name, int fuse, int direct_conv, int few_runs)
{
    char path[1024];
    struct rm_error err;
    struct rm_session_options o;
    rm_error_clear(&err);
    memset(l, 0, sizeof *l);
    snprintf(path, sizeof path, "%s/%s.onnx", rm_test_testdata(), name);
    ck_assert_msg(rm_model_load(&l->m, path, NULL, &err) == 0, "%s", err.msg);
    ck_assert_msg(rm_graph_init(&l->g, l->m, &err) == 0, "%s", err.msg);
    rm_session_options_default(&o);
    o.fuse = fuse;
    o.direct_conv = direct_conv;
    o.few_runs = few_runs;
    ck_assert_msg(rm_session_create(&l->p, l->m, &o, &err) == 0, "%s: %s", name, err.msg);
}

static void load_with(struct loaded *l, const char *name, int fuse, int direct_conv)
{
    load_opts(l, name, fuse, direct_conv, 0);
}

static void load(struct loaded *l, const char *name, int fuse)
{
    load_with(l, name, fuse, 0);
}

static void unload(struct loaded *l)
{
    rm_session_free(l->p);
    rm_graph_free(&l->g);
    rm_model_free(l->m);
}

static void read_ref(const char *name, const char *file, struct rm_host_tensor *t)
{
    char path[1024];
    struct rm_error err;
    snprintf(path, sizeof path, "%s/%s/test_data_set_0/%s", rm_test_testdata(), name, file);
    ck_assert_msg(rm_tensor_read(path, t, NULL, 0, &err) == 0, "%s", err.msg);
}

/* max |a - b| / max |b| */
static double rel_err(const struct rm_host_tensor *a, const struct rm_host_tensor *b)
{
    ck_assert_int_eq(a->numel, b->numel);
    double scale = 0, diff = 0;
    for (int64_t i = 0; i < a->numel; i++) {
        double x = ((float *)a->data)[i], y = ((float *)b->data)[i];
        scale = fmax(scale, fabs(y));
        diff = fmax(diff, fabs(x - y));
    }
    return scale > 0 ? diff / scale : diff;
}

/* ---- PyTorch reference outputs ------------------------------------------------ */

START_TEST(matches_pytorch)
{
    /* four plans per model: fused, unfused, fused with direct convolution only, fused
     * for a few runs (what verification builds) */
    const char *name = models[_i / 4];
    int fuse = _i % 4 != 1, direct = _i % 4 == 2, few = _i % 4 == 3;
    struct loaded l;
    struct rm_host_tensor in, ref, out;
    struct rm_error err;
    load_opts(&l, name, fuse, direct, few);
    read_ref(name, "input_0.pb", &in);
    read_ref(name, "output_0.pb", &ref);
    ck_assert_int_eq(rm_session_n_inputs(l.p), 1);
    ck_assert_msg(rm_session_set_input(l.p, rm_session_input_name(l.p, 0), &in, &err) == 0, "%s", err.msg);
    ck_assert_msg(rm_session_run(l.p, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(rm_session_output(l.p, 0, &out, &err), 0);
    ck_assert_int_eq(out.rank, ref.rank);
    double e = rel_err(&out, &ref);
    printf("%-15s fuse=%d direct=%d few_runs=%d  max|err|/max|ref| = %.3g\n", name, fuse, direct, few, e);
    ck_assert_msg(e <= 1e-4, "%s fuse=%d: relative error %g", name, fuse, e);
    /* a second run gives the same result (no state leaks between runs) */
    ck_assert_int_eq(rm_session_run(l.p, &err), 0);
    ck_assert_int_eq(rm_session_output(l.p, 0, &out, &err), 0);
    ck_assert(rel_err(&out, &ref) == e);
    rm_tensor_free(&in);
    rm_tensor_free(&ref);
    unload(&l);
}
END_TEST

/* ---- layouts ----------------------------------------------------------------------- */

/* Activations share buffers: on every testdata model, fused or not, planned for many
 * runs or for one, the buffers add up to at most 1.6x the most bytes alive at one step
 * (which any plan needs). Sizing a buffer at its first value (concat_net: 2.1-2.3x) and
 * keeping small long-lived values in large buffers (densenet121's channels-last plan:
 * 3.89x) went past it. */
START_TEST(activation_buffers_near_live_peak)
{
    struct loaded l;
    const char *name = models[_i / 4];
    load_opts(&l, name, _i % 2, 0, _i / 2 % 2);
    ck_assert_msg(l.p->act_live > 0, "%s: no activations", name);
    ck_assert_msg((double)l.p->act_bytes <= 1.6 * (double)l.p->act_live,
                  "%s (fuse %d, few runs %d): %zu bytes of activation buffers for %zu alive at most", name, _i % 2,
                  _i / 2 % 2, l.p->act_bytes, l.p->act_live);
    unload(&l);
}
END_TEST

/* No primitive a step runs keeps memory of its own: every scratchpad is the plan's shared
 * one (weight preparations, run once outside the steps, keep theirs). A Concat, Sum or pooling made without attributes got one from oneDNN on its first
 * run and kept it: a pruned DenseNet's 18 reference Concats held 21 MB that way, in a
 * verification that peaked at 111 MB (concat_net's misaligned Concat is such a one). */
START_TEST(primitives_share_the_scratchpad)
{
    struct loaded l;
    const char *name = models[_i / 4];
    load_opts(&l, name, _i % 2, 0, _i / 2 % 2);
    for (int s = 0; s < l.p->n_steps; s++)
        for (int e = 0; e < l.p->steps[s].n_ex; e++) {
            const_dnnl_primitive_desc_t pd;
            int64_t own = -1;
            const char *impl = NULL;
            ck_assert_int_eq(dnnl_primitive_get_primitive_desc(l.p->steps[s].ex[e].prim, &pd), dnnl_success);
            ck_assert_int_eq(dnnl_primitive_desc_query(pd, dnnl_query_memory_consumption_s64, 0, &own),
                             dnnl_success);
            ck_assert_int_eq(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl), dnnl_success);
            ck_assert_msg(own == 0, "%s (fuse %d, few runs %d): step %d (%s) keeps %lld bytes of its own", name,
                          _i % 2, _i / 2 % 2, s, impl ? impl : "?", (long long)own);
        }
    unload(&l);
}
END_TEST

/* Winograd convs only take nChw16c: a model with them runs every conv blocked, so no
 * step of resnet18 reorders its input (there were 20 reorders before); a model without
 * them (mobilenet_tiny) keeps oneDNN's channels-last choice. */
START_TEST(winograd_model_runs_blocked_without_reorders)
{
    struct loaded l;
    load(&l, "resnet18", 1);
    ck_assert(l.p->blocked_convs);
    for (int i = 0; i < l.p->n_steps; i++)
        ck_assert_msg(l.p->steps[i].n_ex <= 1, "step %d (%s) reorders its input", i,
                      rm_graph_node_label(&l.g, (size_t)l.p->steps[i].first_node));
    unload(&l);
    load(&l, "mobilenet_tiny", 1);
    ck_assert(!l.p->blocked_convs);
    unload(&l);
    load_with(&l, "resnet18", 1, 1);
    ck_assert(!l.p->blocked_convs);
    unload(&l);
}
END_TEST

/* How many of the plan's primitives are of kind k with an implementation name that
 * starts with impl. */
static int count_prims(const struct rm_plan *p, dnnl_primitive_kind_t k, const char *impl)
{
    int n = 0;
    for (int i = 0; i < p->n_prims; i++) {
        const_dnnl_primitive_desc_t pd;
        dnnl_primitive_kind_t kind;
        const char *name = NULL;
        ck_assert_int_eq(dnnl_primitive_get_primitive_desc(p->prims[i], &pd), dnnl_success);
        ck_assert_int_eq(dnnl_primitive_desc_query(pd, dnnl_query_primitive_kind, 0, &kind), dnnl_success);
        ck_assert_int_eq(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name), dnnl_success);
        n += kind == k && name && !strncmp(name, impl, strlen(impl));
    }
    return n;
}

/* A plan for a few runs (a verification) builds no Winograd convolution: their weight
 * transforms cost more than they save on one run. */
START_TEST(few_run_plans_skip_winograd)
{
    struct loaded l;
    load(&l, "resnet18", 1);
    ck_assert_int_gt(count_prims(l.p, dnnl_convolution, "jit_fp32_wino"), 0);
    unload(&l);
    load_opts(&l, "resnet18", 1, 0, 1);
    ck_assert_int_eq(count_prims(l.p, dnnl_convolution, "jit_fp32_wino"), 0);
    ck_assert_int_gt(count_prims(l.p, dnnl_convolution, ""), 0);
    ck_assert_int_eq(count_prims(l.p, dnnl_convolution, "ref"), 0);
    /* and runs its convs blocked (jit kernels, generated faster than brgemm's), where a
     * plan for many runs without Winograd keeps channels-last (brgconv) */
    ck_assert_int_eq(count_prims(l.p, dnnl_convolution, "brg"), 0);
    unload(&l);
    load_opts(&l, "resnet18", 1, 1, 0);
    ck_assert_int_gt(count_prims(l.p, dnnl_convolution, "brg"), 0);
    unload(&l);
}
END_TEST

/* Conv weights that the plan copied (their bytes in the file are not aligned) and holds
 * still, in bytes. */
static size_t conv_weight_copies(const struct loaded *l)
{
    size_t n = 0;
    for (size_t i = 0; i < l->g.n_nodes; i++) {
        if (!rm_eng_is(l->p, (int)i, RM_OP_CONV))
            continue;
        int w = l->p->g->nodes[i].inputs[1];
        if (w >= 0 && l->p->vals[w].kind == V_CONST && l->p->vals[w].heap_buf)
            n += l->p->vals[w].bytes;
    }
    return n;
}

/* A plan for a few runs prepares each conv weight as it plans it, so the copy of an
 * unaligned weight goes before the next is read: a verification's plan of the original
 * held all of them beside their reordered versions until its first run (densenet121:
 * 29 MB). A plan for many runs still prepares on its first run, and then lets go. */
START_TEST(few_run_plans_prepare_weights_at_once)
{
    struct loaded l;
    struct rm_error err;
    load_opts(&l, "resnet18", 1, 0, 1);
    ck_assert_int_eq(l.p->n_preps, 0);
    ck_assert_uint_eq(conv_weight_copies(&l), 0);
    unload(&l);
    load_opts(&l, "resnet18", 1, 1, 0);
    ck_assert_uint_gt(conv_weight_copies(&l), 10u << 20);
    ck_assert_msg(rm_session_run(l.p, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(conv_weight_copies(&l), 0);
    unload(&l);
}
END_TEST

/* oneDNN cache hits while building a plan of name (for a few runs), from oneDNN's
 * verbose lines on stdout. */
static int plan_cache_hits(const char *name)
{
    char path[] = "/tmp/rm_verbose_XXXXXX";
    int fd = mkstemp(path), saved = dup(1), hits = 0;
    ck_assert(fd >= 0 && saved >= 0);
    fflush(stdout);
    ck_assert_int_eq(dup2(fd, 1), 1);
    ck_assert_int_eq(dnnl_set_verbose(2), dnnl_success);
    struct loaded l;
    load_opts(&l, name, 1, 0, 1);
    dnnl_set_verbose(0);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    unload(&l);
    size_t n;
    char *text = rm_test_read_file(path, &n);
    for (const char *q = text; (q = strstr(q, "create:cache_hit")); q++)
        hits++;
    free(text);
    close(fd);
    unlink(path);
    return hits;
}

/* A verification empties oneDNN's primitive cache between the original's plan and the
 * edited model's (rm_diff_begin): the original's compiled kernels stayed resident beside
 * the edit's plan (densenet121: 4.5 MB). After rm_eng_cache_drop a plan finds in the
 * cache only what it made itself, as on a cold start, and the capacity is as it was. */
START_TEST(cache_drop_forgets_freed_plans)
{
    int cap = 0, cap_after = 0;
    ck_assert_int_eq(dnnl_get_primitive_cache_capacity(&cap), dnnl_success);
    rm_eng_cache_drop();
    int cold = plan_cache_hits("tiny_resnet");
    int warm = plan_cache_hits("tiny_resnet");
    rm_eng_cache_drop();
    int dropped = plan_cache_hits("tiny_resnet");
    ck_assert_msg(warm > cold, "a second plan found %d of its primitives cached, the first %d", warm, cold);
    ck_assert_int_eq(dropped, cold);
    ck_assert_int_eq(dnnl_get_primitive_cache_capacity(&cap_after), dnnl_success);
    ck_assert_int_eq(cap_after, cap);
}
END_TEST

/* How long OpenMP's workers spin (omp_wait.c): the machine is quiet when any of a few
 * readings finds no other task runnable. One reading often counted the shell or script
 * that had just started remodel, and a quiet machine got the busy setting: shufflenet_v2
 * at 2 threads ran 3.9 ms a pass instead of 2.4. */
START_TEST(spin_setting_reads_past_the_parent)
{
    const int parent_then_nobody[] = {1, 0}, kernel_thread[] = {2, 1, 0}, quiet[] = {0};
    const int neighbour[] = {1, 1, 2, 1, 1, 1, 1, 1, 1, 1}, unreadable[] = {-1, -1};
    ck_assert(rm_omp_quiet(quiet, 1));
    ck_assert(rm_omp_quiet(parent_then_nobody, 2));
    ck_assert(rm_omp_quiet(kernel_thread, 3));
    ck_assert(!rm_omp_quiet(neighbour, RM_OMP_SPIN_READINGS));
    ck_assert(!rm_omp_quiet(unreadable, 2));
    ck_assert(!rm_omp_quiet(neighbour, 0));
    ck_assert_int_ge(RM_OMP_SPIN_READINGS, 5);
    ck_assert_int_lt(atoi(RM_OMP_SPIN_BUSY), atoi(RM_OMP_SPIN_QUIET));
}
END_TEST

/* The squeeze-excite Mul (a [1, C, 1, 1] scale times the activation) runs on a jit kernel
 * and nothing reorders activations around the grouped convs before it: oneDNN's own
 * nChw8c pick for them put a reorder on each side, and the plain scale beside an
 * nChw8c activation sent the Mul to its reference kernel (regnet_y_400mf, weights filled
 * in from its skeleton: 16 `binary ref:any` and 48 activation reorders a run, 78% of
 * it). se_net (no grouped conv) checks the same on the plain path. */
START_TEST(squeeze_excite_mul_runs_on_jit)
{
    for (int fuse = 0; fuse < 2; fuse++) {
        struct loaded l;
        load(&l, "se_net", fuse);
        ck_assert_int_gt(count_prims(l.p, dnnl_binary, ""), 0);
        ck_assert_int_eq(count_prims(l.p, dnnl_binary, "ref"), 0);
        unload(&l);
    }
    char path[1024];
    struct rm_model *m;
    struct rm_error err;
    snprintf(path, sizeof path, "%s/torchvision/regnet_y_400mf.skeleton.onnx", rm_test_testdata());
    ck_assert_msg(rm_model_load(&m, path, NULL, &err) == 0, "%s", err.msg);
    Onnx__GraphProto *g = m->proto->graph;
    for (size_t i = 0; i < g->n_initializer; i++) {
        Onnx__TensorProto *t = g->initializer[i];
        int64_t n = 1;
        for (size_t k = 0; k < t->n_dims; k++)
            n *= t->dims[k];
        float *v = malloc((size_t)n * sizeof *v);
        ck_assert_ptr_nonnull(v);
        for (int64_t k = 0; k < n; k++)
            v[k] = (float)((k % 7) - 3) * 0.01f;
        ck_assert_msg(rm_model_set_initializer(m, t->name, (int)t->n_dims, t->dims, v, &err) == 0, "%s", err.msg);
        free(v);
    }
    rm_session_options o;
    rm_session_options_default(&o);
    rm_session *s;
    ck_assert_msg(rm_session_create(&s, m, &o, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(count_prims(s, dnnl_binary, ""), 16);
    ck_assert_int_eq(count_prims(s, dnnl_binary, "ref"), 0);
    /* step 0, the stem conv, reorders the plain image; no other step reorders */
    for (int i = 1; i < s->n_steps; i++)
        ck_assert_msg(s->steps[i].n_ex <= 1, "step %d reorders an activation", i);
    rm_session_free(s);
    rm_model_free(m);
}
END_TEST

/* ---- step-wise execution ------------------------------------------------------- */

START_TEST(steps_expose_every_node_output)
{
    struct loaded l;
    struct rm_error err;
    struct rm_host_tensor t, out;
    load(&l, "tiny_resnet", 0);
    rm_session_random_inputs(l.p, 7);
    rm_session_begin(l.p);
    int node, rc, steps = 0, last = -1;
    /* before anything ran, a node output is not available */
    const char *first_out = l.g.nodes[0].proto->output[0];
    ck_assert_int_eq(rm_session_get(l.p, first_out, &t, &err), RM_ENOTFOUND);
    while ((rc = rm_session_step(l.p, &node, &err)) > 0) {
        ck_assert_int_gt(node, last);
        last = node;
        steps++;
        const Onnx__NodeProto *np = l.g.nodes[node].proto;
        ck_assert_msg(rm_session_get(l.p, np->output[0], &t, &err) == 0, "%s", err.msg);
        ck_assert_int_gt(t.numel, 0);
        rm_tensor_free(&t);
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(steps, rm_session_n_steps(l.p));
    ck_assert_int_eq(rm_session_get(l.p, rm_session_output_name(l.p, 0), &t, &err), 0);
    ck_assert_int_eq(rm_session_output(l.p, 0, &out, &err), 0);
    ck_assert(memcmp(t.data, out.data, (size_t)t.numel * 4) == 0);
    rm_tensor_free(&t);
    ck_assert_int_eq(rm_session_get(l.p, "no such tensor", &t, &err), RM_ENOTFOUND);
    unload(&l);
}
END_TEST

/* Resident bytes of this process. */
static long resident_bytes(void)
{
    long size = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%ld %ld", &size, &res), 2);
    fclose(f);
    return res * sysconf(_SC_PAGESIZE);
}

/* rm_session_get copies a blocked value out of its plain shadow and gives the shadow's
 * pages back (diff --layers reads every module's output once: kept, the shadows added
 * up to every activation of the model); reading it again makes the shadow again. */
START_TEST(get_gives_back_the_plain_shadow)
{
    struct loaded l;
    struct rm_error err;
    struct rm_host_tensor a, b;
    load(&l, "resnet18", 0);
    rm_session_random_inputs(l.p, 3);
    rm_session_begin(l.p);
    int node = -1;
    ck_assert_int_eq(rm_session_step(l.p, &node, &err), 1);
    const char *name = l.g.nodes[node].proto->output[0];
    const struct val *v = &l.p->vals[rm_graph_find(l.p->g, name)];
    size_t bytes = (size_t)v->numel * 4;
    ck_assert_msg(v->blocked && bytes >= ((size_t)1 << 20), "%s: blocked %d, %zu bytes", name, v->blocked, bytes);
    long before = resident_bytes();
    ck_assert_msg(rm_session_get(l.p, name, &a, &err) == 0, "%s", err.msg);
    long grown = resident_bytes() - before; /* the copy, and without the fix its shadow too */
#if !defined(__SANITIZE_ADDRESS__)
    ck_assert_msg(grown < (long)(bytes * 3 / 2), "%ld bytes resident more for a %zu-byte value", grown, bytes);
#else
    (void)grown; /* under AddressSanitizer the plan's buffers are heap blocks, never given back */
#endif
    ck_assert_msg(rm_session_get(l.p, name, &b, &err) == 0, "%s", err.msg);
    ck_assert(a.numel == b.numel && memcmp(a.data, b.data, bytes) == 0);
    double sum = 0;
    for (int64_t i = 0; i < a.numel; i++)
        sum += fabs(((const float *)a.data)[i]);
    ck_assert(sum > 0); /* real values, not the zero pages given back */
    rm_tensor_free(&a);
    rm_tensor_free(&b);
    unload(&l);
}
END_TEST

/* The inputs steps reorder for their primitives are read within the step only: the
 * k-th of every step shares one buffer (a buffer each added up to a copy of every
 * reordered activation). Outputs still match PyTorch (matches_pytorch, unfused). */
START_TEST(step_reorders_share_buffers)
{
    struct loaded l;
    struct rm_error err;
    load(&l, "shared_init", 0);
    ck_assert_int_gt(l.p->n_rin, 1);
    int steps = 0;
    for (int k = 0; k < l.p->n_rin; k++) {
        void *h = NULL, *h0 = NULL;
        ck_assert_int_eq(dnnl_memory_get_data_handle(l.p->rin[k].mem, &h), dnnl_success);
        ck_assert_ptr_nonnull(h);
        for (int j = 0; j < k; j++)
            if (l.p->rin[j].slot == l.p->rin[k].slot) {
                ck_assert_int_eq(dnnl_memory_get_data_handle(l.p->rin[j].mem, &h0), dnnl_success);
                ck_assert_ptr_eq(h, h0);
                break;
            }
        steps += l.p->rin[k].slot == 0 && (k == 0 || l.p->rin[k - 1].step != l.p->rin[k].step);
    }
    ck_assert_int_gt(steps, 1); /* several steps reorder, into one buffer */
    rm_session_random_inputs(l.p, 1);
    ck_assert_msg(rm_session_run(l.p, &err) == 0, "%s", err.msg);
    unload(&l);
}
END_TEST

START_TEST(fused_steps_hide_intermediates)
{
    struct loaded l, u;
    struct rm_error err;
    struct rm_host_tensor t;
    load(&l, "tiny_resnet", 1);
    load(&u, "tiny_resnet", 0);
    ck_assert_int_lt(rm_session_n_steps(l.p), rm_session_n_steps(u.p));
    rm_session_random_inputs(l.p, 1);
    ck_assert_int_eq(rm_session_run(l.p, &err), 0);
    /* the first conv's output feeds a BatchNormalization that is folded into it */
    int fused = 0;
    for (size_t i = 0; i < l.g.n_nodes; i++)
        if (!strcmp(l.g.nodes[i].proto->op_type, "Conv")) {
            int rc = rm_session_get(l.p, l.g.nodes[i].proto->output[0], &t, &err);
            if (rc == RM_ENOTFOUND)
                fused++;
            else
                rm_tensor_free(&t);
        }
    ck_assert_int_gt(fused, 0);
    /* with fusion and shared buffers, a step's result is still readable right after it */
    int node, rc, gone = 0;
    rm_session_begin(l.p);
    while ((rc = rm_session_step(l.p, &node, &err)) > 0) {
        ck_assert_msg(rm_session_get(l.p, l.g.nodes[node].proto->output[0], &t, &err) == 0, "%s", err.msg);
        rm_tensor_free(&t);
    }
    ck_assert_int_eq(rc, 0);
    /* ... but early activations are gone once their buffer was handed on */
    for (size_t i = 0; i < l.g.n_nodes; i++) {
        rc = rm_session_get(l.p, l.g.nodes[i].proto->output[0], &t, &err);
        if (rc == 0)
            rm_tensor_free(&t);
        else
            gone += strstr(err.msg, "overwritten") != NULL;
    }
    ck_assert_int_gt(gone, 0);
    unload(&l);
    unload(&u);
}
END_TEST

START_TEST(random_inputs_are_seeded)
{
    struct loaded a, b;
    struct rm_error err;
    struct rm_host_tensor x, y, in;
    load(&a, "se_net", 1);
    load(&b, "se_net", 0);
    rm_session_random_inputs(a.p, 42);
    rm_session_random_inputs(b.p, 42);
    ck_assert_int_eq(rm_session_get(a.p, rm_session_input_name(a.p, 0), &x, &err), 0);
    ck_assert_int_eq(rm_session_get(b.p, rm_session_input_name(b.p, 0), &y, &err), 0);
    ck_assert(memcmp(x.data, y.data, (size_t)x.numel * 4) == 0);
    /* roughly standard normal */
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < x.numel; i++) {
        double v = ((float *)x.data)[i];
        s += v;
        s2 += v * v;
    }
    ck_assert(fabs(s / (double)x.numel) < 0.1 && fabs(s2 / (double)x.numel - 1) < 0.1);
    /* a different seed gives different data; an input set by the caller is kept */
    rm_session_random_inputs(a.p, 43);
    ck_assert_int_eq(rm_session_get(a.p, rm_session_input_name(a.p, 0), &in, &err), 0);
    ck_assert(memcmp(x.data, in.data, (size_t)x.numel * 4) != 0);
    ck_assert_int_eq(rm_session_set_input(b.p, rm_session_input_name(b.p, 0), &in, &err), 0);
    rm_session_random_inputs(b.p, 42);
    rm_tensor_free(&y);
    ck_assert_int_eq(rm_session_get(b.p, rm_session_input_name(b.p, 0), &y, &err), 0);
    ck_assert(memcmp(in.data, y.data, (size_t)x.numel * 4) == 0);
    rm_tensor_free(&x);
    rm_tensor_free(&y);
    rm_tensor_free(&in);
    unload(&a);
    unload(&b);
}
END_TEST

START_TEST(set_input_checks_shape)
{
    struct loaded l;
    struct rm_error err;
    struct rm_host_tensor t;
    int64_t dims[4] = {1, 3, 16, 16};
    load(&l, "tiny_resnet", 1);
    ck_assert_int_eq(rm_tensor_alloc(&t, F32, 4, dims, &err), 0);
    ck_assert_int_eq(rm_session_set_input(l.p, "input", &t, &err), RM_EFORMAT);
    ck_assert_msg(strstr(err.msg, "[1,3,16,16]") && strstr(err.msg, "[1,3,32,32]"), "%s", err.msg);
    ck_assert_int_eq(rm_session_set_input(l.p, "nope", &t, &err), RM_ENOTFOUND);
    rm_tensor_free(&t);
    unload(&l);
}
END_TEST

/* ---- models built in code -------------------------------------------------------- */

/* One-node model: float input x [1,2] -> op -> y. Packed bytes, caller frees. */
static uint8_t *one_node_model(const char *op, size_t *size)
{
    Onnx__ModelProto mp;
    Onnx__GraphProto gp;
    Onnx__NodeProto np;
    Onnx__OperatorSetIdProto os;
    Onnx__ValueInfoProto xi, yi;
    Onnx__TypeProto xt, yt;
    Onnx__TypeProto__Tensor xtt, ytt;
    Onnx__TensorShapeProto xs;
    Onnx__TensorShapeProto__Dimension d0, d1;
    onnx__model_proto__init(&mp);
    onnx__graph_proto__init(&gp);
    onnx__node_proto__init(&np);
    onnx__operator_set_id_proto__init(&os);
    onnx__value_info_proto__init(&xi);
    onnx__value_info_proto__init(&yi);
    onnx__type_proto__init(&xt);
    onnx__type_proto__init(&yt);
    onnx__type_proto__tensor__init(&xtt);
    onnx__type_proto__tensor__init(&ytt);
    onnx__tensor_shape_proto__init(&xs);
    onnx__tensor_shape_proto__dimension__init(&d0);
    onnx__tensor_shape_proto__dimension__init(&d1);
    d0.value_case = d1.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    d0.dim_value = 1;
    d1.dim_value = 2;
    Onnx__TensorShapeProto__Dimension *dims[2] = {&d0, &d1};
    xs.n_dim = 2;
    xs.dim = dims;
    xtt.has_elem_type = ytt.has_elem_type = 1;
    xtt.elem_type = ytt.elem_type = F32;
    xtt.shape = &xs;
    xt.value_case = yt.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    xt.tensor_type = &xtt;
    yt.tensor_type = &ytt;
    xi.name = "x";
    xi.type = &xt;
    yi.name = "y";
    yi.type = &yt;
    char *ins[1] = {"x"}, *outs[1] = {"y"};
    np.op_type = (char *)op;
    np.name = "weird";
    np.n_input = 1;
    np.input = ins;
    np.n_output = 1;
    np.output = outs;
    Onnx__NodeProto *nodes[1] = {&np};
    Onnx__ValueInfoProto *gi[1] = {&xi}, *go[1] = {&yi};
    gp.name = "g";
    gp.n_node = 1;
    gp.node = nodes;
    gp.n_input = 1;
    gp.input = gi;
    gp.n_output = 1;
    gp.output = go;
    os.has_version = 1;
    os.version = 13;
    Onnx__OperatorSetIdProto *oss[1] = {&os};
    mp.has_ir_version = 1;
    mp.ir_version = 7;
    mp.n_opset_import = 1;
    mp.opset_import = oss;
    mp.graph = &gp;
    *size = onnx__model_proto__get_packed_size(&mp);
    uint8_t *buf = malloc(*size);
    ck_assert(buf != NULL);
    onnx__model_proto__pack(&mp, buf);
    return buf;
}

START_TEST(unsupported_op_is_refused_before_running)
{
    size_t n;
    uint8_t *b = one_node_model("Foo", &n);
    struct rm_model *m;
    struct rm_graph g;
    struct rm_plan *p = (struct rm_plan *)1;
    struct rm_error err;
    ck_assert_int_eq(rm_model_load_buffer(&m, b, n, "foo.onnx", NULL, &err), 0);
    ck_assert_int_eq(rm_graph_init(&g, m, &err), 0);
    ck_assert_int_eq(rm_session_create(&p, m, NULL, &err), RM_EUNSUPPORTED);
    ck_assert_ptr_null(p);
    ck_assert_str_eq(err.msg, "node 'weird': op Foo is not supported");
    rm_graph_free(&g);
    rm_model_free(m);
    free(b);
}
END_TEST

START_TEST(tiny_model_sigmoid)
{
    size_t n;
    uint8_t *b = one_node_model("Sigmoid", &n);
    struct rm_model *m;
    struct rm_graph g;
    struct rm_plan *p;
    struct rm_error err;
    struct rm_host_tensor t, o;
    int64_t dims[2] = {1, 2};
    ck_assert_int_eq(rm_model_load_buffer(&m, b, n, "sig.onnx", NULL, &err), 0);
    ck_assert_int_eq(rm_graph_init(&g, m, &err), 0);
    ck_assert_msg(rm_session_create(&p, m, NULL, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(rm_tensor_alloc(&t, F32, 2, dims, &err), 0);
    ((float *)t.data)[0] = 0.0f;
    ((float *)t.data)[1] = 2.0f;
    ck_assert_int_eq(rm_session_set_input(p, "x", &t, &err), 0);
    ck_assert_int_eq(rm_session_run(p, &err), 0);
    ck_assert_int_eq(rm_session_output(p, 0, &o, &err), 0);
    ck_assert_float_eq_tol(((float *)o.data)[0], 0.5f, 1e-7f);
    ck_assert_float_eq_tol(((float *)o.data)[1], 0.880797077977882f, 1e-6f);
    rm_tensor_free(&t);
    rm_session_free(p);
    rm_graph_free(&g);
    rm_model_free(m);
    free(b);
}
END_TEST

/* ---- tensor files ----------------------------------------------------------------- */

/* .npy bytes: magic, version, header padded so data starts at a multiple of 64. */
static size_t make_npy(uint8_t *buf, int major, const char *descr, const char *shape,
                       const void *data, size_t nbytes)
{
    char h[256];
    int hl = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    size_t pre = major == 1 ? 10 : 12;
    size_t total = (pre + (size_t)hl + 1 + 63) / 64 * 64;
    size_t hlen = total - pre;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (uint8_t)major;
    buf[7] = 0;
    if (major == 1) {
        buf[8] = (uint8_t)(hlen & 0xff);
        buf[9] = (uint8_t)(hlen >> 8);
    } else {
        buf[8] = (uint8_t)(hlen & 0xff);
        buf[9] = (uint8_t)(hlen >> 8);
        buf[10] = buf[11] = 0;
    }
    memset(buf + pre, ' ', hlen);
    memcpy(buf + pre, h, (size_t)hl);
    buf[total - 1] = '\n';
    memcpy(buf + total, data, nbytes);
    return total + nbytes;
}

START_TEST(npy_reader)
{
    uint8_t buf[1024];
    struct rm_host_tensor t;
    struct rm_error err;
    float f[6] = {1, 2, 3, 4, 5, 6.5f};
    size_t n = make_npy(buf, 1, "<f4", "(2, 3)", f, sizeof f);
    ck_assert_msg(rm_tensor_buffer_read(buf, n, "a.npy", &t, NULL, 0, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(t.dtype, F32);
    ck_assert_int_eq(t.rank, 2);
    ck_assert_int_eq(t.dims[0], 2);
    ck_assert_int_eq(t.dims[1], 3);
    ck_assert(memcmp(t.data, f, sizeof f) == 0);
    rm_tensor_free(&t);

    int64_t v[3] = {-1, 0, 1LL << 40};
    n = make_npy(buf, 2, "<i8", "(3,)", v, sizeof v);
    ck_assert_int_eq(rm_tensor_buffer_read(buf, n, "b.npy", &t, NULL, 0, &err), 0);
    ck_assert_int_eq(t.dtype, I64);
    ck_assert_int_eq(t.rank, 1);
    ck_assert(memcmp(t.data, v, sizeof v) == 0);
    rm_tensor_free(&t);

    double d[2] = {0.25, -3};
    n = make_npy(buf, 3, "<f8", "(1, 2)", d, sizeof d);
    ck_assert_int_eq(rm_tensor_buffer_read(buf, n, "c.npy", &t, NULL, 0, &err), 0);
    ck_assert(((float *)t.data)[0] == 0.25f && ((float *)t.data)[1] == -3.0f);
    rm_tensor_free(&t);

    /* scalar */
    n = make_npy(buf, 1, "<f4", "()", f, 4);
    ck_assert_int_eq(rm_tensor_buffer_read(buf, n, "s.npy", &t, NULL, 0, &err), 0);
    ck_assert_int_eq(t.rank, 0);
    ck_assert_int_eq(t.numel, 1);
    rm_tensor_free(&t);
}
END_TEST

START_TEST(npy_hostile)
{
    uint8_t buf[1024];
    struct rm_host_tensor t;
    struct rm_error err;
    float f[6] = {0};
    size_t n = make_npy(buf, 1, "<f4", "(2, 3)", f, sizeof f);
    /* every truncation is an error, never a crash */
    for (size_t k = 0; k < n; k++)
        ck_assert_int_lt(rm_tensor_buffer_read(buf, k, "t.npy", &t, NULL, 0, &err), 0);
    /* data longer than the shape says */
    ck_assert_int_eq(rm_tensor_buffer_read(buf, n - 4, "t.npy", &t, NULL, 0, &err), RM_EFORMAT);
    /* dims whose product overflows */
    n = make_npy(buf, 1, "<f4", "(4294967296, 4294967296, 4294967296)", f, sizeof f);
    ck_assert_int_eq(rm_tensor_buffer_read(buf, n, "big.npy", &t, NULL, 0, &err), RM_EFORMAT);
    n = make_npy(buf, 1, "<f4", "(99999999999999999999999,)", f, sizeof f);
    ck_assert_int_lt(rm_tensor_buffer_read(buf, n, "big.npy", &t, NULL, 0, &err), 0);
    n = make_npy(buf, 1, ">f4", "(6,)", f, sizeof f);
    ck_assert_int_eq(rm_tensor_buffer_read(buf, n, "be.npy", &t, NULL, 0, &err), RM_EUNSUPPORTED);
    n = make_npy(buf, 1, "<f4", "(2, 3)", f, sizeof f);
    memcpy(strstr((char *)buf + 10, "False"), "True ", 5);
    ck_assert_int_eq(rm_tensor_buffer_read(buf, n, "f.npy", &t, NULL, 0, &err), RM_EUNSUPPORTED);
    /* header length pointing past the end */
    n = make_npy(buf, 1, "<f4", "(2, 3)", f, sizeof f);
    buf[8] = 0xff;
    buf[9] = 0xff;
    ck_assert_int_eq(rm_tensor_buffer_read(buf, n, "h.npy", &t, NULL, 0, &err), RM_EFORMAT);
    n = make_npy(buf, 9, "<f4", "(2, 3)", f, sizeof f);
    ck_assert_int_eq(rm_tensor_buffer_read(buf, n, "v.npy", &t, NULL, 0, &err), RM_EUNSUPPORTED);
}
END_TEST

static uint8_t *pack_tensor(const int64_t *dims, size_t nd, int32_t dt, const void *raw, size_t rawlen,
                            size_t *size)
{
    Onnx__TensorProto tp;
    onnx__tensor_proto__init(&tp);
    tp.n_dims = nd;
    tp.dims = (int64_t *)dims;
    tp.has_data_type = 1;
    tp.data_type = dt;
    tp.name = "t";
    tp.has_raw_data = 1;
    tp.raw_data.len = rawlen;
    tp.raw_data.data = (uint8_t *)raw;
    *size = onnx__tensor_proto__get_packed_size(&tp);
    uint8_t *b = malloc(*size);
    ck_assert(b != NULL);
    onnx__tensor_proto__pack(&tp, b);
    return b;
}

START_TEST(pb_reader_and_writer)
{
    struct rm_host_tensor t, u;
    struct rm_error err;
    char name[64];
    char path[1024];
    snprintf(path, sizeof path, "%s/tiny_resnet/test_data_set_0/input_0.pb", rm_test_testdata());
    ck_assert_int_eq(rm_tensor_read(path, &t, name, sizeof name, &err), 0);
    ck_assert_str_eq(name, "input");
    ck_assert_int_eq(t.rank, 4);
    ck_assert_int_eq(t.numel, 3 * 32 * 32);
    char dir[] = "/tmp/rm-engine-XXXXXX";
    ck_assert(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/x.pb", dir);
    ck_assert_int_eq(rm_tensor_write_pb(path, &t, "again", &err), 0);
    ck_assert_int_eq(rm_tensor_read(path, &u, name, sizeof name, &err), 0);
    ck_assert_str_eq(name, "again");
    ck_assert_int_eq(u.numel, t.numel);
    ck_assert(memcmp(t.data, u.data, (size_t)t.numel * 4) == 0);
    unlink(path);
    rmdir(dir);
    rm_tensor_free(&t);
    rm_tensor_free(&u);
    ck_assert_int_eq(rm_tensor_read("/nonexistent/x.pb", &t, NULL, 0, &err), RM_EIO);
}
END_TEST

START_TEST(pb_hostile)
{
    struct rm_host_tensor t;
    struct rm_error err;
    float f[4] = {1, 2, 3, 4};
    int64_t dims[2] = {2, 2};
    size_t n;
    uint8_t *b = pack_tensor(dims, 2, F32, f, sizeof f, &n);
    ck_assert_int_eq(rm_tensor_buffer_read(b, n, "ok.pb", &t, NULL, 0, &err), 0);
    rm_tensor_free(&t);
    for (size_t k = 0; k < n; k++) {
        int rc = rm_tensor_buffer_read(b, k, "cut.pb", &t, NULL, 0, &err);
        ck_assert_int_le(rc, 0);
        if (rc == 0) /* a prefix can be valid protobuf, but then it has fewer fields */
            rm_tensor_free(&t);
    }
    free(b);
    /* raw data shorter than the dims need */
    b = pack_tensor(dims, 2, F32, f, 12, &n);
    ck_assert_int_eq(rm_tensor_buffer_read(b, n, "short.pb", &t, NULL, 0, &err), RM_EFORMAT);
    free(b);
    /* huge and negative dims */
    int64_t big[3] = {1LL << 40, 1LL << 40, 1LL << 40};
    b = pack_tensor(big, 3, F32, f, sizeof f, &n);
    ck_assert_int_eq(rm_tensor_buffer_read(b, n, "big.pb", &t, NULL, 0, &err), RM_EFORMAT);
    free(b);
    int64_t neg[2] = {-1, -4};
    b = pack_tensor(neg, 2, F32, f, sizeof f, &n);
    ck_assert_int_eq(rm_tensor_buffer_read(b, n, "neg.pb", &t, NULL, 0, &err), RM_EFORMAT);
    free(b);
    /* unsupported element type */
    b = pack_tensor(dims, 2, ONNX__TENSOR_PROTO__DATA_TYPE__STRING, f, sizeof f, &n);
    ck_assert_int_eq(rm_tensor_buffer_read(b, n, "str.pb", &t, NULL, 0, &err), RM_EUNSUPPORTED);
    free(b);
    /* garbage */
    uint8_t junk[64];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 37 + 11);
    ck_assert_int_lt(rm_tensor_buffer_read(junk, sizeof junk, "junk.pb", &t, NULL, 0, &err), 0);
}
END_TEST

START_TEST(fma_peak_is_measured)
{
    double g = rm_fma_peak_gflops(1);
    ck_assert(g > 1.0);
}
END_TEST

/* A session stays within its memory budget: refused with one line saying so, not an
 * allocation that takes the machine down. */
START_TEST(memory_budget)
{
    struct rm_model *m = rm_test_load_model("tiny_resnet");
    rm_session_options o;
    rm_session_options_default(&o);
    o.max_memory = 64 << 10;
    rm_session *s = NULL;
    struct rm_error err;
    ck_assert_int_eq(rm_session_create(&s, m, &o, &err), RM_ENOMEM);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(err.msg, "more than its memory limit of 0.1 MB"), "%s", err.msg);
    o.max_memory = 0; /* the default: half the machine's RAM */
    ck_assert_int_eq(rm_session_create(&s, m, &o, &err), 0);
    rm_session_free(s);
    rm_model_free(m);
}
END_TEST


int main(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("pytorch");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, matches_pytorch, 0, 4 * N_MODELS);
    tcase_add_test(tc, winograd_model_runs_blocked_without_reorders);
    tcase_add_loop_test(tc, activation_buffers_near_live_peak, 0, 4 * N_MODELS);
    tcase_add_test(tc, few_run_plans_skip_winograd);
    tcase_add_loop_test(tc, primitives_share_the_scratchpad, 0, 4 * N_MODELS);
    tcase_add_test(tc, few_run_plans_prepare_weights_at_once);
    tcase_add_test(tc, cache_drop_forgets_freed_plans);
    tcase_add_test(tc, spin_setting_reads_past_the_parent);
    tcase_add_test(tc, squeeze_excite_mul_runs_on_jit);
    tcase_add_test(tc, steps_expose_every_node_output);
    tcase_add_test(tc, fused_steps_hide_intermediates);
    tcase_add_test(tc, get_gives_back_the_plain_shadow);
    tcase_add_test(tc, step_reorders_share_buffers);
    tcase_add_test(tc, random_inputs_are_seeded);
    tcase_add_test(tc, set_input_checks_shape);
    tcase_add_test(tc, memory_budget);
    tcase_add_test(tc, unsupported_op_is_refused_before_running);
    tcase_add_test(tc, tiny_model_sigmoid);
    suite_add_tcase(s, tc);
    TCase *io = tcase_create("tensorio");
    tcase_add_test(io, npy_reader);
    tcase_add_test(io, npy_hostile);
    tcase_add_test(io, pb_reader_and_writer);
    tcase_add_test(io, pb_hostile);
    tcase_add_test(io, fma_peak_is_measured);
    suite_add_tcase(s, io);
    return rm_test_run(s);
}
