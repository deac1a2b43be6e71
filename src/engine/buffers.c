/* The plan's memory and oneDNN objects: buffers it owns (plain heap or huge pages),
 * memory objects, primitives and reorders, the layout of a value, the steps that run
 * them, and errors naming a node. */
#include "rm_engine_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- ownership lists --------------------------------------------------------- */

int rm_eng_grow(void **arr, int *cap, int n, size_t es)
{
    if (n < *cap)
        return 0;
    int nc = *cap ? *cap * 2 : 64;
    void *q = realloc(*arr, (size_t)nc * es);
    if (!q)
        return -1;
    *arr = q;
    *cap = nc;
    return 0;
}

/* Count bytes against the plan's memory budget: false (and the request noted) when
 * they do not fit. */
static bool budget(struct rm_plan *p, size_t bytes)
{
    if (bytes > p->mem_limit || p->mem_used > p->mem_limit - bytes) {
        if (!p->mem_refused)
            p->mem_refused = bytes;
        return false;
    }
    p->mem_used += bytes;
    return true;
}

int rm_eng_oom(struct rm_plan *p, struct rm_error *err, const char *what)
{
    if (p->mem_refused && !p->mem_what[0])
        snprintf(p->mem_what, sizeof p->mem_what, "%s", what);
    if (p->mem_refused)
        return rm_error_set(err, RM_ENOMEM, "%s (%llu MB) would take running past its memory limit of %llu MB",
                            what, (unsigned long long)(p->mem_refused >> 20),
                            (unsigned long long)(p->mem_limit >> 20));
    return rm_error_set(err, RM_ENOMEM, "out of memory (%s)", what);
}

#define HEADER 64

/* Buffers of BUF_MAP bytes and more are mappings of their own: zero pages from the
 * kernel (under AddressSanitizer all are heap blocks, which keep its overflow checks).
 * Heap blocks are not cleared: everything in a plan writes a buffer before it is read
 * (activation buffers are shared and reused without clearing anyway), and clearing
 * touched every page of the small buffers values have until the memory planner moves
 * them to shared ones (densenet121's verified prune: 4 MB of its peak). */
#ifdef RM_ASAN
#define BUF_MAP SIZE_MAX
#else
#define BUF_MAP ((size_t)256 << 10)
#endif

/* HEADER + sz bytes, 64-byte aligned (a mapping: zero; a heap block: not cleared); NULL
 * when out of memory.
 * *mapped: a mapping of its own (sz >= BUF_MAP, or map asked for outside ASan). */
static char *buf_alloc(size_t sz, bool map, int *mapped)
{
#ifdef RM_ASAN
    map = false;
#endif
    *mapped = map || sz >= BUF_MAP;
    if (!*mapped) {
        return aligned_alloc(64, sz + HEADER);
    }
    void *b = mmap(NULL, sz + HEADER, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return b == MAP_FAILED ? NULL : b;
}

static void buf_free(char *base, const struct heapbuf *h)
{
    if (!h->mapped)
        free(base);
    else
        munmap(base, h->n + HEADER);
}

static void *buf_new(struct rm_plan *p, size_t bytes, bool map)
{
    if (bytes > SIZE_MAX - 64)
        return NULL;
    size_t sz = (bytes + 63) / 64 * 64;
    if (!sz)
        sz = 64;
    if (sz < bytes || sz > SIZE_MAX - HEADER || !budget(p, sz))
        return NULL;
    char *base = NULL;
    int mapped = 0;
    if (rm_eng_grow((void **)&p->bufs, &p->cap_bufs, p->n_bufs, sizeof *p->bufs) ||
        !(base = buf_alloc(sz, map, &mapped))) {
        p->mem_used -= sz;
        return NULL;
    }
    *(size_t *)base = (size_t)p->n_bufs; /* its slot, for rm_eng_buf_release */
    p->bufs[p->n_bufs++] = (struct heapbuf){base + HEADER, sz, mapped};
    return base + HEADER;
}

void *rm_eng_buf(struct rm_plan *p, size_t bytes)
{
    return buf_new(p, bytes, false);
}

void *rm_eng_buf_mapped(struct rm_plan *p, size_t bytes)
{
    return buf_new(p, bytes, true);
}

void rm_eng_buf_release(struct rm_plan *p, void *b)
{
    if (!b)
        return;
    char *base = (char *)b - HEADER;
    size_t slot = *(size_t *)base;
    if (slot >= (size_t)p->n_bufs || p->bufs[slot].mem != b)
        return; /* (cannot happen: callers release only what rm_eng_buf gave) */
    p->mem_used -= p->bufs[slot].n;
    buf_free(base, &p->bufs[slot]);
    p->bufs[slot] = p->bufs[--p->n_bufs];
    if (slot < (size_t)p->n_bufs)
        *(size_t *)(p->bufs[slot].mem - HEADER) = slot;
}

void rm_eng_bufs_free(struct rm_plan *p)
{
    for (int i = 0; i < p->n_bufs; i++)
        buf_free(p->bufs[i].mem - HEADER, &p->bufs[i]);
    free(p->bufs);
    p->bufs = NULL;
    p->n_bufs = p->cap_bufs = 0;
}

void *rm_eng_hp_buf(struct rm_plan *p, size_t bytes)
{
#ifdef RM_ASAN
    /* heap blocks keep AddressSanitizer's overflow checks on weights and activations */
    return rm_eng_buf(p, bytes);
#else
    /* the arena aligns to 16: over-allocate to place the buffer on a cache line */
    if (bytes > SIZE_MAX - 128 || !budget(p, bytes + 48))
        return NULL;
    char *b = rm_arena_alloc(&p->hp, bytes + 48);
    if (!b)
        return NULL;
    /* zero already: the arena hands out fresh anonymous mappings and never reuses them
     * (clearing it again cost a third of resnet18's plan build) */
    b += (64 - (uintptr_t)b % 64) % 64;
    return b;
#endif
}

static int own_prim(struct rm_plan *p, dnnl_primitive_t prim)
{
    if (rm_eng_grow((void **)&p->prims, &p->cap_prims, p->n_prims, sizeof prim)) {
        dnnl_primitive_destroy(prim);
        return -1;
    }
    p->prims[p->n_prims++] = prim;
    return 0;
}

static int own_mem(struct rm_plan *p, dnnl_memory_t m)
{
    if (rm_eng_grow((void **)&p->mems, &p->cap_mems, p->n_mems, sizeof m)) {
        dnnl_memory_destroy(m);
        return -1;
    }
    p->mems[p->n_mems++] = m;
    return 0;
}

/* Memory object over buf with layout md, owned by the plan. */
int rm_eng_make_mem(struct rm_plan *p, dnnl_memory_t *out, const dnnl_memory_desc_t *md, void *buf,
                    struct rm_error *err)
{
    int rc = 0;
    dnnl_memory_t m = NULL;
    CHECK(dnnl_memory_create(&m, md, p->eng, buf));
    if (own_mem(p, m))
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    *out = m;
done:
    return rc;
}

/* Remember that memory m wraps value vi's buffer (plain 0) or plain shadow (plain 1),
 * so the memory planner can move the value to a shared buffer later. */
int rm_eng_reg_mem(struct rm_plan *p, dnnl_memory_t m, struct val *v, int plain, struct rm_error *err)
{
    if (rm_eng_grow((void **)&p->refs, &p->cap_refs, p->n_refs, sizeof *p->refs))
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    p->refs[p->n_refs].mem = m;
    p->refs[p->n_refs].val = (int)(v - p->vals);
    p->refs[p->n_refs].plain = plain;
    p->n_refs++;
    return 0;
}

/* Primitive from a primitive descriptor (pd is not consumed). */
int rm_eng_make_prim(struct rm_plan *p, dnnl_primitive_t *out, const_dnnl_primitive_desc_t pd,
                     struct rm_error *err)
{
    int rc = 0;
    dnnl_primitive_t prim = NULL;
    CHECK(dnnl_primitive_create(&prim, pd));
    if (own_prim(p, prim))
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    *out = prim;
done:
    return rc;
}

const_dnnl_primitive_attr_t rm_eng_sp_attr(struct rm_plan *p)
{
    if (!p->sp_attr) {
        dnnl_primitive_attr_t a;
        if (dnnl_primitive_attr_create(&a) != dnnl_success)
            return NULL;
        if (dnnl_primitive_attr_set_scratchpad_mode(a, dnnl_scratchpad_mode_user) != dnnl_success) {
            dnnl_primitive_attr_destroy(a);
            return NULL;
        }
        p->sp_attr = a;
    }
    return p->sp_attr;
}

int rm_eng_make_reorder(struct rm_plan *p, dnnl_primitive_t *out, const dnnl_memory_desc_t *from,
                        const dnnl_memory_desc_t *to, struct rm_error *err)
{
    int rc = 0;
    dnnl_primitive_desc_t pd = NULL;
    CHECK(dnnl_reorder_primitive_desc_create(&pd, from, p->eng, to, p->eng, NULL));
    rc = rm_eng_make_prim(p, out, pd, err);
done:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* ---- values ------------------------------------------------------------------ */

const dnnl_format_tag_t rm_eng_plain_tags[7] = {dnnl_a,    dnnl_a,     dnnl_ab,    dnnl_abc,
                                                dnnl_abcd, dnnl_abcde, dnnl_abcdef};

/* Plain row-major f32 descriptor of dims (rank 0 is treated as [1]). */
int rm_eng_plain_md(dnnl_memory_desc_t *md, int rank, const int64_t *dims)
{
    dnnl_dims_t d;
    if (rank > 6)
        return -1;
    if (rank == 0) {
        d[0] = 1;
        rank = 1;
    } else {
        for (int i = 0; i < rank; i++)
            d[i] = dims[i];
    }
    return dnnl_memory_desc_init_by_tag(md, rank, d, dnnl_f32, rm_eng_plain_tags[rank]) == dnnl_success
               ? 0 : -1;
}

size_t rm_eng_dtype_bytes(int32_t dt)
{
    return dt == RM_I64 ? 8 : 4;
}

/* Allocate v's buffer as a plain row-major array (dtype, rank, dims, numel set). */
int rm_eng_alloc_plain(struct rm_plan *p, struct val *v, struct rm_error *err)
{
    v->bytes = (size_t)v->numel * rm_eng_dtype_bytes(v->dtype);
    void *b = rm_eng_buf(p, v->bytes);
    if (!b) {
        char what[96];
        snprintf(what, sizeof what, "a tensor of %lld elements", (long long)v->numel);
        return rm_eng_oom(p, err, what);
    }
    int rc = rm_eng_view_plain(p, v, b, err);
    v->heap_buf = 1;
    return rc;
}

/* v (dtype, rank, dims, numel set) as a plain row-major array over buf, which the plan
 * does not own when it is a constant's bytes in the model. */
int rm_eng_view_plain(struct rm_plan *p, struct val *v, void *buf, struct rm_error *err)
{
    v->bytes = (size_t)v->numel * rm_eng_dtype_bytes(v->dtype);
    v->buf = buf;
    v->heap_buf = 0;
    v->plain = v->buf;
    v->blocked = 0;
    v->has_md = 0;
    if (v->dtype == RM_F32 && v->numel > 0 && v->rank <= 6) {
        if (rm_eng_plain_md(&v->md, v->rank, v->dims))
            return rm_error_set(err, RM_EFORMAT, "cannot describe tensor of rank %d", v->rank);
        v->has_md = 1;
        int rc = rm_eng_make_mem(p, &v->mem, &v->md, v->buf, err);
        return rc ? rc : rm_eng_reg_mem(p, v->mem, v, 0, err);
    }
    return 0;
}

/* Allocate v (f32, dims set) in layout md; a plain shadow and its reorder are made
 * when md is not plain. */
int rm_eng_alloc_md(struct rm_plan *p, struct val *v, const dnnl_memory_desc_t *md,
                    struct rm_error *err)
{
    dnnl_memory_desc_t pm;
    int rc;
    if (rm_eng_plain_md(&pm, v->rank, v->dims))
        return rm_error_set(err, RM_EFORMAT, "cannot describe tensor of rank %d", v->rank);
    if (dnnl_memory_desc_equal(md, &pm)) {
        return rm_eng_alloc_plain(p, v, err);
    }
    v->md = *md;
    v->has_md = 1;
    v->blocked = 1;
    v->bytes = dnnl_memory_desc_get_size(md);
    v->buf = rm_eng_buf(p, v->bytes);
    /* a mapping of its own: touched only when something reads the value in plain
     * layout (an output, a C kernel, rm_session_get), and given back after a copy-out */
    v->plain = rm_eng_buf_mapped(p, (size_t)v->numel * 4);
    if (!v->buf || !v->plain)
        return rm_eng_oom(p, err, "a blocked tensor");
    v->heap_buf = 1;
    if ((rc = rm_eng_make_mem(p, &v->mem, md, v->buf, err)) || (rc = rm_eng_reg_mem(p, v->mem, v, 0, err)) ||
        (rc = rm_eng_make_mem(p, &v->plain_mem, &pm, v->plain, err)) ||
        (rc = rm_eng_reg_mem(p, v->plain_mem, v, 1, err)) ||
        (rc = rm_eng_make_reorder(p, &v->to_plain, md, &pm, err)))
        return rc;
    return 0;
}

/* Bring v's plain shadow up to date (no-op for plain values). */
int rm_eng_ensure_plain(struct rm_plan *p, struct val *v, struct rm_error *err)
{
    int rc = 0;
    if (!v->blocked || v->plain_stamp == v->stamp)
        return 0;
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, v->mem}, {DNNL_ARG_TO, v->plain_mem}};
    CHECK(dnnl_primitive_execute(v->to_plain, p->strm, 2, a));
    CHECK(dnnl_stream_wait(p->strm));
    v->plain_stamp = v->stamp;
done:
    return rc;
}

/* Give back the pages of v's plain shadow when it is a mapping of its own (a blocked
 * value's, rm_eng_alloc_md): the next rm_eng_ensure_plain makes it again. For a reader
 * that copies a value out once (rm_session_get: diff --layers reads every module's
 * output), kept shadows added up to every activation of the model (densenet121: about
 * 150 MB a plan). The first page, which holds the buffer's header, stays. */
void rm_eng_drop_plain(struct rm_plan *p, struct val *v)
{
    if (!v->blocked || !v->plain)
        return;
    char *b = v->plain;
    size_t slot = *(size_t *)(b - HEADER);
    if (slot >= (size_t)p->n_bufs || p->bufs[slot].mem != b || !p->bufs[slot].mapped)
        return; /* not a buffer of its own, or on the heap */
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t from = ((uintptr_t)b + pg - 1) / pg * pg, to = ((uintptr_t)b + p->bufs[slot].n) / pg * pg;
    if (to > from && madvise((void *)from, to - from, MADV_DONTNEED) == 0)
        v->plain_stamp = v->stamp - 1; /* stale: zero pages now */
}

/* ---- errors ------------------------------------------------------------------ */

int rm_eng_node_err(struct rm_plan *p, int node, int code, const char *fmt, ...)
{
    char msg[RM_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    return rm_error_set(p->err, code, "node '%s' (%s): %s", rm_graph_node_label(p->g, (size_t)node),
                        np->op_type ? np->op_type : "?", msg);
}


/* ---- steps ------------------------------------------------------------------- */

struct step *rm_eng_new_step(struct rm_plan *p, int node)
{
    if (rm_eng_grow((void **)&p->steps, &p->cap_steps, p->n_steps, sizeof(struct step)))
        return NULL;
    struct step *s = &p->steps[p->n_steps];
    memset(s, 0, sizeof *s);
    s->first_node = s->last_node = node;
    s->c_node = -1;
    p->node_state[node] = p->n_steps;
    p->n_steps++;
    return s;
}

int rm_eng_add_ex(struct rm_plan *p, struct step *s, dnnl_primitive_t prim, int nargs,
                  const dnnl_exec_arg_t *args)
{
    int rc = 0;
    struct rm_error *err = p->err;
    struct exec *e = &s->ex[s->n_ex];
    const_dnnl_primitive_desc_t pd;
    CHECK(dnnl_primitive_get_primitive_desc(prim, &pd));
    /* a primitive made with a user scratchpad gets the plan's shared one */
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t sbytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    e->args = rm_eng_buf(p, sizeof(dnnl_exec_arg_t) * (size_t)(nargs + 1));
    if (!e->args || (sbytes && rm_eng_grow((void **)&p->scratch, &p->cap_scratch, p->n_scratch, sizeof *p->scratch)))
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    s->n_ex++;
    e->prim = prim;
    e->nargs = nargs;
    memcpy(e->args, args, sizeof(dnnl_exec_arg_t) * (size_t)nargs);
    if (sbytes) {
        dnnl_memory_t m;
        if ((rc = rm_eng_make_mem(p, &m, smd, DNNL_MEMORY_NONE, err)))
            return rc;
        p->scratch[p->n_scratch++] = m;
        e->args[e->nargs].arg = DNNL_ARG_SCRATCHPAD;
        e->args[e->nargs++].memory = m;
        if (sbytes > p->scratch_bytes)
            p->scratch_bytes = sbytes;
    }
done:
    return rc;
}

/* Reorder step entry: v's buffer into scratch memory of layout md (*mem), read by this
 * step only. Its buffer is given by rm_eng_place_reorders: the k-th such scratch of
 * every step shares one (a buffer each added up to a copy of every reordered
 * activation: densenet121 unfused, about 57 MB a plan). */
int rm_eng_add_reorder_in(struct rm_plan *p, struct step *s, struct val *v, const dnnl_memory_desc_t *md,
                          dnnl_memory_t *mem, struct rm_error *err)
{
    dnnl_primitive_t r;
    int rc, step = (int)(s - p->steps), slot = 0;
    if (rm_eng_grow((void **)&p->rin, &p->cap_rin, p->n_rin, sizeof *p->rin))
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    for (int i = p->n_rin - 1; i >= 0 && p->rin[i].step == step; i--)
        slot++;
    if ((rc = rm_eng_make_mem(p, mem, md, NULL, err)) || (rc = rm_eng_make_reorder(p, &r, &v->md, md, err)))
        return rc;
    p->rin[p->n_rin++] = (struct reorder_in){*mem, step, slot, dnnl_memory_desc_get_size(md)};
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, v->mem}, {DNNL_ARG_TO, *mem}};
    return rm_eng_add_ex(p, s, r, 2, a);
}

int rm_eng_add_reorder_view(struct rm_plan *p, dnnl_memory_t of, dnnl_memory_t view, struct rm_error *err)
{
    for (int i = p->n_rin - 1; i >= 0; i--)
        if (p->rin[i].mem == of) {
            if (rm_eng_grow((void **)&p->rin, &p->cap_rin, p->n_rin, sizeof *p->rin))
                return rm_error_set(err, RM_ENOMEM, "out of memory");
            p->rin[p->n_rin] = p->rin[i];
            p->rin[p->n_rin].mem = view;
            p->rin[p->n_rin].bytes = 0;
            p->n_rin++;
            return 0;
        }
    return rm_error_set(err, RM_EFORMAT, "internal: no reordered input to view"); /* (cannot happen) */
}

int rm_eng_place_reorders(struct rm_plan *p, struct rm_error *err)
{
    int rc = 0, n_slots = 0;
    for (int i = 0; i < p->n_rin; i++)
        if (p->rin[i].slot + 1 > n_slots)
            n_slots = p->rin[i].slot + 1;
    for (int k = 0; k < n_slots; k++) {
        size_t bytes = 0;
        for (int i = 0; i < p->n_rin; i++)
            if (p->rin[i].slot == k && p->rin[i].bytes > bytes)
                bytes = p->rin[i].bytes;
        /* zero pages, touched as far as the steps write */
        void *b = rm_eng_buf_mapped(p, bytes);
        if (!b)
            return rm_eng_oom(p, err, "a reordered input");
        for (int i = 0; i < p->n_rin; i++)
            if (p->rin[i].slot == k)
                CHECK(dnnl_memory_set_data_handle(p->rin[i].mem, b));
    }
done:
    return rc;
}


/* ---- weights prepared on the first run ------------------------------------------ */


/* Run one preparation: fold, reorder, then release what only it needed. */
static int prep_one(struct rm_plan *p, struct rm_prep *pr, struct rm_error *err)
{
    int rc = 0;
    if (pr->fold) {
        /* the scale a BatchNorm after the conv applies, per output channel */
        for (int64_t oc = 0; oc < pr->n_oc; oc++) {
            float s = pr->sc[oc] / sqrtf(pr->va[oc] + pr->eps);
            const float *src = pr->w + oc * pr->per_oc;
            float *dst = pr->fold + oc * pr->per_oc;
            for (int64_t k = 0; k < pr->per_oc; k++)
                dst[k] = src[k] * s;
        }
    }
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, pr->from}, {DNNL_ARG_TO, pr->to}};
    rm_eng_threads(p, pr->threads);
    CHECK(dnnl_primitive_execute(pr->reorder, p->strm, 2, a));
    CHECK(dnnl_stream_wait(p->strm));
    if (pr->fold) {
        rm_eng_buf_release(p, pr->fold);
        pr->fold = NULL;
    }
    if (pr->wv && pr->wv->plain == pr->w && pr->wv->heap_buf) {
        /* the step reads its reordered copy: the value's own copy goes, and the value
         * reads the model's bytes again (memcpy'd out by rm_session_get; no kernel
         * reads it: the conv was its only consumer) */
        struct val *v = pr->wv;
        rm_eng_buf_release(p, v->plain);
        v->buf = v->plain = (void *)(uintptr_t)pr->raw;
        v->heap_buf = 0;
        if (v->mem)
            CHECK(dnnl_memory_set_data_handle(v->mem, v->plain));
        pr->w = NULL;
        pr->wv = NULL;
    }
done:
    return rc;
}

int rm_eng_add_prep(struct rm_plan *p, const struct rm_prep *pr, struct rm_error *err)
{
    if (p->opts.few_runs) {
        /* a plan that runs a few times runs at all: prepared now, the copy and the fold
         * buffer go before the next weight is read, so a plan never holds a weight three
         * times (densenet121's verification held all its unaligned weights copied beside
         * their reordered versions until the first run: 29 MB) */
        struct rm_prep now = *pr;
        double t0 = p->prof ? rm_eng_now_ms() : 0;
        int rc = prep_one(p, &now, err);
        if (p->prof)
            p->prof->prep_ms += rm_eng_now_ms() - t0;
        return rc;
    }
    if (rm_eng_grow((void **)&p->preps, &p->cap_preps, p->n_preps, sizeof *pr))
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    p->preps[p->n_preps++] = *pr;
    return 0;
}

int rm_eng_prepare(struct rm_plan *p, struct rm_error *err)
{
    int rc = 0;
    if (p->prepared)
        return 0;
    double t0 = p->prof ? rm_eng_now_ms() : 0;
    for (int i = 0; i < p->n_preps && !rc; i++)
        rc = prep_one(p, &p->preps[i], err);
    if (rc)
        return rc;
    p->prepared = true;
    if (p->prof)
        p->prof->prep_ms += rm_eng_now_ms() - t0;
    return 0;
}

dnnl_format_tag_t rm_eng_layout_tag(const struct val *v, int *block)
{
    static const dnnl_format_tag_t t3[] = {dnnl_acb, dnnl_aBc16b, dnnl_aBc8b};
    static const dnnl_format_tag_t t4[] = {dnnl_acdb, dnnl_aBcd16b, dnnl_aBcd8b};
    static const dnnl_format_tag_t t5[] = {dnnl_acdeb, dnnl_aBcde16b, dnnl_aBcde8b};
    const dnnl_format_tag_t *t = v->rank == 3 ? t3 : v->rank == 4 ? t4 : v->rank == 5 ? t5 : NULL;
    dnnl_dims_t d;
    dnnl_memory_desc_t md;
    for (int i = 0; i < v->rank; i++)
        d[i] = v->dims[i];
    for (int k = 0; t && v->has_md && k < 3; k++)
        if (dnnl_memory_desc_init_by_tag(&md, v->rank, d, dnnl_f32, t[k]) == dnnl_success &&
            dnnl_memory_desc_equal(&md, &v->md)) {
            if (block)
                *block = k;
            return t[k];
        }
    return dnnl_format_tag_any;
}
