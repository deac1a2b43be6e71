/* Per-step timers of a plan, for finding what makes a model slow: with the environment
 * variable REMODEL_PROFILE set (read when a session is created), a plan times how long
 * compiling took (shape inference, each node's planning, memory planning) and every step
 * of every run, and prints a table on stderr when the session is freed. A debugging aid
 * in the manner of ONEDNN_VERBOSE, off unless asked for: the library prints nothing
 * otherwise. REMODEL_PROFILE=1 lists the 25 costliest steps and the totals per kind of
 * kernel, REMODEL_PROFILE=all every step. */
#include "rm_engine_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double rm_eng_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

int rm_eng_prof_init(struct rm_plan *p)
{
    const char *e = getenv("REMODEL_PROFILE");
    if (!e || !*e || !strcmp(e, "0"))
        return 0;
    size_t n = p->g->n_nodes ? p->g->n_nodes : 1;
    p->prof = calloc(1, sizeof *p->prof);
    if (!p->prof)
        return -1;
    p->prof->all = !strcmp(e, "all");
    p->prof->node_plan_ms = calloc(n, sizeof(double));
    if (!p->prof->node_plan_ms) {
        free(p->prof);
        p->prof = NULL;
        return -1;
    }
    return 0;
}

void rm_eng_prof_step(struct rm_plan *p, int step, double ms)
{
    struct rm_prof *pr = p->prof;
    if (step >= pr->cap) {
        int nc = p->n_steps > step ? p->n_steps : step + 1;
        double *q = realloc(pr->step_run_ms, (size_t)nc * sizeof *q);
        if (!q)
            return;
        memset(q + pr->cap, 0, (size_t)(nc - pr->cap) * sizeof *q);
        pr->step_run_ms = q;
        pr->cap = nc;
    }
    pr->step_run_ms[step] += ms;
}

/* "conv jit:avx512_core + reorder jit:uni" of step s into buf. */
static void step_impl(const struct rm_plan *p, const struct step *s, char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = 0;
    if (s->c_node >= 0 || s->bcat) {
        snprintf(buf, n, s->bcat ? "C kernel (blocked concat)" : "C kernel");
        return;
    }
    if (!s->n_ex) {
        snprintf(buf, n, "none (a view or a Concat in place)");
        return;
    }
    for (int i = 0; i < s->n_ex && off < n; i++) {
        const_dnnl_primitive_desc_t pd;
        const char *impl = "?";
        dnnl_primitive_kind_t kind = dnnl_undefined_primitive;
        if (dnnl_primitive_get_primitive_desc(s->ex[i].prim, &pd) == dnnl_success) {
            dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
            dnnl_primitive_desc_query(pd, dnnl_query_primitive_kind, 0, &kind);
        }
        off += (size_t)snprintf(buf + off, n - off, "%s%s %s", i ? " + " : "", dnnl_prim_kind2str(kind),
                                impl ? impl : "?");
    }
    (void)p;
}

struct kind {
    char impl[96];
    double run;
    int count;
};

struct row {
    int step;
    double plan, run;
};

static int by_run(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    return x->run < y->run ? 1 : x->run > y->run ? -1 : x->step - y->step;
}

void rm_eng_prof_report(struct rm_plan *p)
{
    struct rm_prof *pr = p->prof;
    if (!pr)
        return;
    int ns = p->n_steps, runs = pr->runs ? pr->runs : 1;
    struct row *rows = calloc((size_t)(ns ? ns : 1), sizeof *rows);
    struct kind kinds[64];
    int nk = 0;
    double run_total = 0, plan_nodes = 0;
    if (!rows)
        return;
    for (size_t i = 0; i < p->g->n_nodes; i++)
        plan_nodes += pr->node_plan_ms[i];
    for (int s = 0; s < ns; s++) {
        rows[s].step = s;
        for (int nd = p->steps[s].first_node; nd <= p->steps[s].last_node && nd >= 0; nd++)
            if (p->node_state[nd] == s)
                rows[s].plan += pr->node_plan_ms[nd];
        rows[s].run = s < pr->cap ? pr->step_run_ms[s] / runs : 0;
        run_total += rows[s].run;
        char impl[256];
        step_impl(p, &p->steps[s], impl, sizeof impl);
        int k = 0;
        while (k < nk && strncmp(kinds[k].impl, impl, sizeof kinds[k].impl - 1))
            k++;
        if (k == nk && nk < 64) {
            snprintf(kinds[k].impl, sizeof kinds[k].impl, "%.*s", (int)sizeof kinds[k].impl - 1, impl);
            kinds[k].run = 0;
            kinds[k].count = 0;
            nk++;
        }
        if (k < nk) {
            kinds[k].run += rows[s].run;
            kinds[k].count++;
        }
    }
    fprintf(stderr,
            "remodel profile: %d nodes, %d steps; compile %.1f ms (shapes %.1f, nodes %.1f, memory %.1f); "
            "weights prepared on the first run %.1f ms; %d run%s, %.3f ms per run in steps\n",
            (int)p->g->n_nodes, ns, pr->compile_ms, pr->shapes_ms, plan_nodes, pr->memory_ms, pr->prep_ms, pr->runs,
            pr->runs == 1 ? "" : "s", run_total);
    if (!pr->all) /* else in step order */
        qsort(rows, (size_t)ns, sizeof *rows, by_run);
    int shown = pr->all ? ns : ns < 25 ? ns : 25;
    fprintf(stderr, "  %5s %9s %9s %6s  %-40s %s\n", "step", "plan ms", "run ms", "run %", "node", "kernels");
    for (int i = 0; i < shown; i++) {
        const struct step *s = &p->steps[rows[i].step];
        char impl[256];
        step_impl(p, s, impl, sizeof impl);
        const char *op = p->g->nodes[s->first_node].proto->op_type;
        char label[64];
        snprintf(label, sizeof label, "%s (%s%s)", rm_graph_node_label(p->g, (size_t)s->first_node), op ? op : "?",
                 s->last_node != s->first_node ? "+" : "");
        fprintf(stderr, "  %5d %9.2f %9.3f %5.1f%%  %-40s %s\n", rows[i].step, rows[i].plan, rows[i].run,
                run_total > 0 ? 100 * rows[i].run / run_total : 0, label, impl);
    }
    fprintf(stderr, "  per kind of step (run ms per run, steps):\n");
    for (int a = 0; a < nk; a++)
        for (int b = a + 1; b < nk; b++)
            if (kinds[b].run > kinds[a].run) {
                struct kind t = kinds[a];
                kinds[a] = kinds[b];
                kinds[b] = t;
            }
    for (int k = 0; k < nk; k++)
        fprintf(stderr, "  %9.3f %5.1f%% %4d  %s\n", kinds[k].run, run_total > 0 ? 100 * kinds[k].run / run_total : 0,
                kinds[k].count, kinds[k].impl);
    free(rows);
}

void rm_eng_prof_free(struct rm_plan *p)
{
    if (!p->prof)
        return;
    free(p->prof->node_plan_ms);
    free(p->prof->step_run_ms);
    free(p->prof);
    p->prof = NULL;
}
