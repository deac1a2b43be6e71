/* The inference engine: plan compilation (shapes, constant folding, fusion, oneDNN
 * primitive creation, weight reorders) and execution. C kernels for the shape/index
 * ops and rare cases live in rm_engine_ops.c. */
#include "rm_engine.h"
#include "rm_engine_int.h"
#include "rm_ops_int.h"
#include "rm_shape.h"

#include <dlfcn.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every dnnl_* call: on failure set err and jump to the function's cleanup label. */
#define CHECK(call)                                                                          \
    do {                                                                                     \
        dnnl_status_t s_ = (call);                                                           \
        if (s_ != dnnl_success) {                                                            \
            rc = rm_error_set(err, RM_EUNSUPPORTED, "oneDNN: %s failed (%s)", #call,         \
                              dnnl_status2str(s_));                                          \
            goto done;                                                                       \
        }                                                                                    \
    } while (0)

void rm_plan_opts_default(struct rm_plan_opts *o)
{
    o->threads = 0;
    o->fuse = 1;
    o->direct_conv = 0;
    o->n_given = 0;
    o->given_names = NULL;
    o->given_values = NULL;
}

/* ---- ownership lists --------------------------------------------------------- */

static int grow(void **arr, int *cap, int n, size_t es)
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

void *rm_eng_buf(struct rm_plan *p, size_t bytes)
{
    size_t sz = (bytes + 63) / 64 * 64;
    if (!sz)
        sz = 64;
    if (grow((void **)&p->bufs, &p->cap_bufs, p->n_bufs, sizeof(void *)))
        return NULL;
    void *b = aligned_alloc(64, sz);
    if (!b)
        return NULL;
    memset(b, 0, sz);
    p->bufs[p->n_bufs++] = b;
    return b;
}

#if defined(__SANITIZE_ADDRESS__)
#define RM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RM_ASAN 1
#endif
#endif

void *rm_eng_hp_buf(struct rm_plan *p, size_t bytes)
{
#ifdef RM_ASAN
    /* heap blocks keep AddressSanitizer's overflow checks on weights and activations */
    return rm_eng_buf(p, bytes);
#else
    /* the arena aligns to 16: over-allocate to place the buffer on a cache line */
    if (bytes > SIZE_MAX - 128)
        return NULL;
    char *b = rm_arena_alloc(&p->hp, bytes + 48);
    if (!b)
        return NULL;
    b += (64 - (uintptr_t)b % 64) % 64;
    memset(b, 0, bytes);
    return b;
#endif
}

static int own_prim(struct rm_plan *p, dnnl_primitive_t prim)
{
    if (grow((void **)&p->prims, &p->cap_prims, p->n_prims, sizeof prim)) {
        dnnl_primitive_destroy(prim);
        return -1;
    }
    p->prims[p->n_prims++] = prim;
    return 0;
}

static int own_mem(struct rm_plan *p, dnnl_memory_t m)
{
    if (grow((void **)&p->mems, &p->cap_mems, p->n_mems, sizeof m)) {
        dnnl_memory_destroy(m);
        return -1;
    }
    p->mems[p->n_mems++] = m;
    return 0;
}

/* Memory object over buf with layout md, owned by the plan. */
static int make_mem(struct rm_plan *p, dnnl_memory_t *out, const dnnl_memory_desc_t *md, void *buf,
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
static int reg_mem(struct rm_plan *p, dnnl_memory_t m, struct val *v, int plain, struct rm_error *err)
{
    if (grow((void **)&p->refs, &p->cap_refs, p->n_refs, sizeof *p->refs))
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    p->refs[p->n_refs].mem = m;
    p->refs[p->n_refs].val = (int)(v - p->vals);
    p->refs[p->n_refs].plain = plain;
    p->n_refs++;
    return 0;
}

/* Primitive from a primitive descriptor (pd is not consumed). */
static int make_prim(struct rm_plan *p, dnnl_primitive_t *out, const_dnnl_primitive_desc_t pd,
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

static int make_reorder(struct rm_plan *p, dnnl_primitive_t *out, const dnnl_memory_desc_t *from,
                        const dnnl_memory_desc_t *to, struct rm_error *err)
{
    int rc = 0;
    dnnl_primitive_desc_t pd = NULL;
    CHECK(dnnl_reorder_primitive_desc_create(&pd, from, p->eng, to, p->eng, NULL));
    rc = make_prim(p, out, pd, err);
done:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* ---- values ------------------------------------------------------------------ */

static const dnnl_format_tag_t plain_tags[7] = {dnnl_a,    dnnl_a,     dnnl_ab,    dnnl_abc,
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
    return dnnl_memory_desc_init_by_tag(md, rank, d, dnnl_f32, plain_tags[rank]) == dnnl_success
               ? 0 : -1;
}

static size_t dtype_bytes(int32_t dt)
{
    return dt == RM_I64 ? 8 : 4;
}

/* Allocate v's buffer as a plain row-major array (dtype, rank, dims, numel set). */
int rm_eng_alloc_plain(struct rm_plan *p, struct val *v, struct rm_error *err)
{
    v->bytes = (size_t)v->numel * dtype_bytes(v->dtype);
    v->buf = rm_eng_buf(p, v->bytes);
    if (!v->buf)
        return rm_error_set(err, RM_ENOMEM, "out of memory for a tensor of %lld elements",
                            (long long)v->numel);
    v->plain = v->buf;
    v->blocked = 0;
    v->has_md = 0;
    if (v->dtype == RM_F32 && v->numel > 0 && v->rank <= 6) {
        if (rm_eng_plain_md(&v->md, v->rank, v->dims))
            return rm_error_set(err, RM_EFORMAT, "cannot describe tensor of rank %d", v->rank);
        v->has_md = 1;
        int rc = make_mem(p, &v->mem, &v->md, v->buf, err);
        return rc ? rc : reg_mem(p, v->mem, v, 0, err);
    }
    return 0;
}

/* Allocate v (f32, dims set) in layout md; a plain shadow and its reorder are made
 * when md is not plain. */
static int alloc_md(struct rm_plan *p, struct val *v, const dnnl_memory_desc_t *md,
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
    v->plain = rm_eng_buf(p, (size_t)v->numel * 4);
    if (!v->buf || !v->plain)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    if ((rc = make_mem(p, &v->mem, md, v->buf, err)) || (rc = reg_mem(p, v->mem, v, 0, err)) ||
        (rc = make_mem(p, &v->plain_mem, &pm, v->plain, err)) ||
        (rc = reg_mem(p, v->plain_mem, v, 1, err)) ||
        (rc = make_reorder(p, &v->to_plain, md, &pm, err)))
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

/* ---- supported ops ----------------------------------------------------------- */

static int op_supported(const struct rm_node *n)
{
    return (rm_op_def(n->op)->flags & RM_OPF_ENGINE) != 0;
}

int rm_eng_is(const struct rm_plan *p, int node, enum rm_op op)
{
    return p->g->nodes[node].op == op;
}

/* ---- constants and inputs -------------------------------------------------- */

/* Materialize a TensorProto as a plan-time constant in v. */
static int load_const(struct rm_plan *p, struct val *v, const Onnx__TensorProto *t, const char *what,
                      struct rm_error *err)
{
    int32_t dt = t->data_type, want;
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
        want = RM_F32;
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
        want = RM_I64;
        break;
    default:
        return rm_error_set(err, RM_EUNSUPPORTED, "%s: tensor type %s is not supported", what,
                            rm_dtype_name(dt));
    }
    if (t->n_dims > RM_MAX_RANK)
        return rm_error_set(err, RM_EUNSUPPORTED, "%s: rank %zu is above %d", what, t->n_dims,
                            RM_MAX_RANK);
    if (rm_tensor_is_external(t))
        return rm_error_set(err, RM_EUNSUPPORTED, "%s: external tensor data is not supported", what);
    int rc = rm_tensor_check(t, err);
    if (rc)
        return rm_error_prefix(err, "%s", what);
    v->dtype = want;
    v->rank = (int)t->n_dims;
    for (size_t i = 0; i < t->n_dims; i++)
        v->dims[i] = t->dims[i];
    if (rm_dims_numel(v->dims, (size_t)v->rank, &v->numel) || v->numel > ((int64_t)1 << 36))
        return rm_error_set(err, RM_EFORMAT, "%s: bad dims", what);
    if ((rc = rm_eng_alloc_plain(p, v, err)))
        return rc;
    if (v->numel == 0)
        rc = 0;
    else
        rc = want == RM_F32 ? rm_tensor_to_f32(t, v->plain, v->numel, err)
                            : rm_tensor_to_i64(t, v->plain, v->numel, err);
    if (rc)
        return rm_error_prefix(err, "%s", what);
    v->kind = V_CONST;
    v->computed = 1;
    return 0;
}

/* Constant node: value / value_float(s) / value_int(s). */
static int load_constant_node(struct rm_plan *p, int node, struct rm_error *err)
{
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    struct val *o = rm_eng_out(p, node, 0);
    const Onnx__AttributeProto *a;
    if ((a = rm_node_attr(np, "value")) && a->t)
        return load_const(p, o, a->t, rm_graph_node_label(p->g, (size_t)node), err);
    int rc;
    o->kind = V_CONST;
    o->computed = 1;
    if ((a = rm_node_attr(np, "value_float")) && a->has_f) {
        o->dtype = RM_F32, o->rank = 0, o->numel = 1;
        if ((rc = rm_eng_alloc_plain(p, o, err)))
            return rc;
        ((float *)o->plain)[0] = a->f;
    } else if ((a = rm_node_attr(np, "value_int")) && a->has_i) {
        o->dtype = RM_I64, o->rank = 0, o->numel = 1;
        if ((rc = rm_eng_alloc_plain(p, o, err)))
            return rc;
        ((int64_t *)o->plain)[0] = a->i;
    } else if ((a = rm_node_attr(np, "value_floats"))) {
        o->dtype = RM_F32, o->rank = 1, o->numel = o->dims[0] = (int64_t)a->n_floats;
        if ((rc = rm_eng_alloc_plain(p, o, err)))
            return rc;
        if (a->n_floats)
            memcpy(o->plain, a->floats, a->n_floats * 4);
    } else if ((a = rm_node_attr(np, "value_ints"))) {
        o->dtype = RM_I64, o->rank = 1, o->numel = o->dims[0] = (int64_t)a->n_ints;
        if ((rc = rm_eng_alloc_plain(p, o, err)))
            return rc;
        if (a->n_ints)
            memcpy(o->plain, a->ints, a->n_ints * 8);
    } else {
        return rm_eng_node_err(p, node, RM_EUNSUPPORTED, "only value, value_float(s), value_int(s) are supported");
    }
    return 0;
}

/* Make value vi available at plan time if it is an initializer or the output of a
 * Constant node that comes later in graph order (exporters put Clip bounds right
 * before the Clip); other values are left alone. */
static int early_const(struct rm_plan *p, int vi, struct rm_error *err)
{
    struct val *v = &p->vals[vi];
    const struct rm_value *gv = &p->g->values[vi];
    if (v->kind != V_UNSET)
        return 0;
    if (gv->init >= 0)
        return load_const(p, v, p->g->proto->initializer[gv->init], gv->name, err);
    if (gv->producer >= 0 && p->node_state[gv->producer] == -2 && rm_eng_is(p, gv->producer, RM_OP_CONSTANT)) {
        p->node_state[gv->producer] = -1;
        return load_constant_node(p, gv->producer, err);
    }
    return 0;
}

static void dims_str(char *buf, size_t n, int rank, const int64_t *dims)
{
    size_t off = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < rank && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%lld", i ? "," : "", (long long)dims[i]);
    if (off < n)
        snprintf(buf + off, n - off, "]");
}

/* The declared type of graph input vi, or an error for what the engine cannot feed. */
static int input_type(const struct rm_graph *g, int vi, const Onnx__TypeProto__Tensor **out,
                      struct rm_error *err)
{
    const struct rm_value *gv = &g->values[vi];
    const Onnx__ValueInfoProto *info = gv->vi;
    if (!info || !info->type || info->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        return rm_error_set(err, RM_EUNSUPPORTED, "input '%s': not a tensor", gv->name);
    const Onnx__TypeProto__Tensor *tt = info->type->tensor_type;
    if (tt->elem_type != RM_F32 && tt->elem_type != RM_I64)
        return rm_error_set(err, RM_EUNSUPPORTED, "input '%s': type %s is not supported (float32, int64)",
                            gv->name, rm_dtype_name(tt->elem_type));
    if (!tt->shape)
        return rm_error_set(err, RM_EUNSUPPORTED, "input '%s': shape is not declared", gv->name);
    if (tt->shape->n_dim > RM_MAX_RANK)
        return rm_error_set(err, RM_EUNSUPPORTED, "input '%s': rank above %d", gv->name, RM_MAX_RANK);
    *out = tt;
    return 0;
}

/* The value given for graph input `name`, or NULL. */
static const struct rm_host_tensor *given_value(const struct rm_plan_opts *o, const char *name)
{
    for (int i = 0; i < o->n_given; i++)
        if (!strcmp(o->given_names[i], name))
            return &o->given_values[i];
    return NULL;
}

/* Shapes of the given inputs for shape inference (their declared type and static dims
 * must agree); int64 ones also give their contents. *specs is malloc'd. */
static int given_specs(const struct rm_graph *g, const struct rm_plan_opts *o, struct rm_input_spec **specs,
                       size_t *n, struct rm_error *err)
{
    *n = 0;
    *specs = calloc((size_t)o->n_given + 1, sizeof **specs);
    if (!*specs)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    for (size_t i = 0; i < g->proto->n_input; i++) {
        int vi = g->proto->input[i]->name ? rm_graph_find(g, g->proto->input[i]->name) : -1;
        if (vi < 0 || g->values[vi].init >= 0)
            continue;
        const struct rm_host_tensor *fx = given_value(o, g->values[vi].name);
        const Onnx__TypeProto__Tensor *tt;
        if (!fx)
            continue;
        int rc = input_type(g, vi, &tt, err);
        if (rc)
            return rc;
        int ok = fx->dtype == tt->elem_type && (size_t)fx->rank == tt->shape->n_dim;
        for (int d = 0; ok && d < fx->rank; d++) {
            const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
            ok = dim->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE || dim->dim_value == fx->dims[d];
        }
        if (!ok) {
            char a[160], b[160];
            int64_t decl[RM_MAX_RANK];
            for (size_t d = 0; d < tt->shape->n_dim; d++)
                decl[d] = tt->shape->dim[d]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                              ? tt->shape->dim[d]->dim_value : 1;
            dims_str(a, sizeof a, fx->rank, fx->dims);
            dims_str(b, sizeof b, (int)tt->shape->n_dim, decl);
            return rm_error_set(err, RM_EFORMAT, "input '%s': got %s %s, the model expects %s %s", g->values[vi].name,
                                rm_dtype_name(fx->dtype), a, rm_dtype_name(tt->elem_type), b);
        }
        struct rm_input_spec *sp = &(*specs)[(*n)++];
        sp->name = g->values[vi].name;
        sp->rank = fx->rank;
        memcpy(sp->dims, fx->dims, sizeof sp->dims);
        sp->value = fx->dtype == RM_I64 ? fx : NULL;
    }
    return 0;
}

static int setup_input(struct rm_plan *p, int vi, struct rm_error *err)
{
    struct val *v = &p->vals[vi];
    const struct rm_value *gv = &p->g->values[vi];
    const Onnx__TypeProto__Tensor *tt;
    int rc = input_type(p->g, vi, &tt, err);
    if (rc)
        return rc;
    v->dtype = tt->elem_type;
    v->rank = gv->rank;
    memcpy(v->dims, gv->dims, sizeof v->dims);
    if (gv->rank != (int)tt->shape->n_dim || rm_dims_numel(v->dims, (size_t)v->rank, &v->numel) ||
        v->numel > ((int64_t)1 << 34))
        return rm_error_set(err, RM_EFORMAT, "input '%s': bad dims", gv->name);
    const struct rm_host_tensor *fx = given_value(&p->opts, gv->name);
    v->kind = V_INPUT;
    v->computed = 1;
    if (!fx)
        return rm_eng_alloc_plain(p, v, err);
    if ((rc = rm_eng_alloc_plain(p, v, err)))
        return rc;
    memcpy(v->buf, fx->data, (size_t)v->numel * dtype_bytes(v->dtype));
    v->stamp = ++p->stamp;
    if (v->dtype == RM_F32) {
        v->set_by_user = 1;
        return 0;
    }
    v->kind = V_CONST;
    return 1;
}

/* ---- steps ------------------------------------------------------------------- */

static struct step *new_step(struct rm_plan *p, int node)
{
    if (grow((void **)&p->steps, &p->cap_steps, p->n_steps, sizeof(struct step)))
        return NULL;
    struct step *s = &p->steps[p->n_steps];
    memset(s, 0, sizeof *s);
    s->first_node = s->last_node = node;
    s->c_node = -1;
    p->node_state[node] = p->n_steps;
    p->n_steps++;
    return s;
}

static int add_ex(struct rm_plan *p, struct step *s, dnnl_primitive_t prim, int nargs,
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
    if (!e->args || (sbytes && grow((void **)&p->scratch, &p->cap_scratch, p->n_scratch, sizeof *p->scratch)))
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    s->n_ex++;
    e->prim = prim;
    e->nargs = nargs;
    memcpy(e->args, args, sizeof(dnnl_exec_arg_t) * (size_t)nargs);
    if (sbytes) {
        dnnl_memory_t m;
        if ((rc = make_mem(p, &m, smd, DNNL_MEMORY_NONE, err)))
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

/* Reorder step entry: v's buffer into a new scratch buffer of layout md; *mem is
 * the scratch memory. */
static int add_reorder_in(struct rm_plan *p, struct step *s, struct val *v, const dnnl_memory_desc_t *md,
                          dnnl_memory_t *mem, struct rm_error *err)
{
    dnnl_primitive_t r;
    int rc;
    void *b = rm_eng_buf(p, dnnl_memory_desc_get_size(md));
    if (!b)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    if ((rc = make_mem(p, mem, md, b, err)) || (rc = make_reorder(p, &r, &v->md, md, err)))
        return rc;
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, v->mem}, {DNNL_ARG_TO, *mem}};
    return add_ex(p, s, r, 2, a);
}

/* ---- fusion ------------------------------------------------------------------ */

struct postop {
    int sum;                /* 1: sum with value sum_val */
    dnnl_alg_kind_t alg;
    float a, b;
};

/* Eltwise equivalent of node (const parameters), or 0 when it has none. */
static int eltwise_of(struct rm_plan *p, int node, struct postop *po, int *npo)
{
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    struct postop e = {0, dnnl_eltwise_relu, 0, 0};
    if (rm_eng_is(p, node, RM_OP_RELU)) {
    } else if (rm_eng_is(p, node, RM_OP_LEAKY_RELU)) {
        e.a = rm_node_attr_float(np, "alpha", 0.01f);
    } else if (rm_eng_is(p, node, RM_OP_SIGMOID)) {
        e.alg = dnnl_eltwise_logistic;
    } else if (rm_eng_is(p, node, RM_OP_HARD_SWISH)) {
        e.alg = dnnl_eltwise_hardswish;
    } else if (rm_eng_is(p, node, RM_OP_CLIP)) {
        struct val *lo = rm_eng_in(p, node, 1), *hi = rm_eng_in(p, node, 2);
        if ((lo && (lo->kind != V_CONST || lo->dtype != RM_F32 || lo->numel != 1)) ||
            (hi && (hi->kind != V_CONST || hi->dtype != RM_F32 || hi->numel != 1)))
            return 0;
        e.alg = dnnl_eltwise_clip_v2;
        e.a = lo ? ((float *)lo->plain)[0] : rm_node_attr_float(np, "min", -FLT_MAX);
        e.b = hi ? ((float *)hi->plain)[0] : rm_node_attr_float(np, "max", FLT_MAX);
    } else if (rm_eng_is(p, node, RM_OP_HARD_SIGMOID)) {
        e.alg = dnnl_eltwise_linear;
        e.a = rm_node_attr_float(np, "alpha", 0.2f);
        e.b = rm_node_attr_float(np, "beta", 0.5f);
        po[(*npo)++] = e;
        e.alg = dnnl_eltwise_clip_v2;
        e.a = 0;
        e.b = 1;
    } else {
        return 0;
    }
    po[(*npo)++] = e;
    return 1;
}

/* The single consumer of value vi if it may be fused into its producer, else -1. */
static int sole_consumer(struct rm_plan *p, int vi)
{
    const struct rm_value *gv = &p->g->values[vi];
    if (gv->output >= 0 || gv->n_consumers != 1)
        return -1;
    int c = gv->consumers[0];
    if (p->node_state[c] != -2)
        return -1;
    return c;
}

/* ---- Conv ---------------------------------------------------------------------- */

/* Whether the buffer of activation vi may be overwritten by the step being built:
 * every other consumer ran in an earlier step, it is no graph output, and its layout
 * is md. Only with fuse=1 (rm_plan_get then reports it as overwritten). */
static int can_clobber(struct rm_plan *p, int vi, const dnnl_memory_desc_t *md)
{
    const struct rm_value *gv = &p->g->values[vi];
    struct val *v = &p->vals[vi];
    if (!p->opts.fuse || v->kind != V_ACT || gv->output >= 0 || !v->has_md ||
        !dnnl_memory_desc_equal(&v->md, md) || v->clobber_step >= 0)
        return 0;
    int me = p->n_steps - 1, uses_here = 0;
    for (int k = 0; k < gv->n_consumers; k++) {
        int st = p->node_state[gv->consumers[k]];
        if (st == me)
            uses_here++;
        else if (st < 0 || st > me)
            return 0;
    }
    return uses_here == 1;
}

/* Whether a 2-D conv with weights [OC, ICg, kh, kw] runs on oneDNN's Winograd kernels:
 * 3x3, stride 1, no dilation, no groups, at least 16 channels each way (resnet18:
 * 11.5 -> 8.4 ms on 2 cores); oneDNN has no Winograd kernel for other shapes. */
static bool conv_is_wino(const struct rm_plan *p, int node, const int64_t *wdims, int wrank)
{
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    size_t ns, nd;
    const int64_t *st = rm_node_attr_ints(np, "strides", &ns);
    const int64_t *di = rm_node_attr_ints(np, "dilations", &nd);
    if (p->opts.direct_conv || wrank != 4 || rm_node_attr_int(np, "group", 1) != 1 || wdims[2] != 3 ||
        wdims[3] != 3 || wdims[0] < 16 || wdims[1] < 16)
        return false;
    for (size_t i = 0; st && i < ns; i++)
        if (st[i] != 1)
            return false;
    for (size_t i = 0; di && i < nd; i++)
        if (di[i] != 1)
            return false;
    return true;
}

/* Winograd kernels take only the channel-blocked layout (nChw16c) while oneDNN's own
 * pick for a direct conv is channels-last, so a model that mixes them pays a reorder on
 * each side of every direct conv (resnet18: 20 reorders, ~0.05 ms each). A model with
 * any Winograd conv therefore runs its other convs blocked too; a model without keeps
 * channels-last, where the brgemm kernels are faster (mobilenet_v2: 3.6 vs 3.8 ms). */
static void choose_conv_layout(struct rm_plan *p)
{
    for (size_t i = 0; i < p->g->n_nodes && !p->blocked_convs; i++) {
        const Onnx__NodeProto *np = p->g->nodes[i].proto;
        if (!rm_eng_is(p, (int)i, RM_OP_CONV) || np->n_input < 2)
            continue;
        const Onnx__TensorProto *w = rm_graph_const_tensor(p->g, p->g->nodes[i].inputs[1]);
        if (w && w->n_dims == 4)
            p->blocked_convs = conv_is_wino(p, (int)i, w->dims, 4);
    }
}

/* Descriptor for a conv that should run blocked (see choose_conv_layout): dst nChw16c,
 * src too unless it arrives plain with under 16 channels (a first conv on RGB reads it
 * as it is). The pd is kept only when oneDNN has a jit kernel for it; otherwise *pd
 * stays NULL and the caller lets oneDNN choose. */
static void try_blocked_conv(struct rm_plan *p, const dnnl_convolution_desc_t *cd, const struct val *x,
                             const_dnnl_primitive_attr_t attr, dnnl_primitive_desc_t *pd)
{
    dnnl_convolution_desc_t b = *cd;
    const char *impl = NULL;
    *pd = NULL;
    if (b.src_desc.ndims != 4 ||
        dnnl_memory_desc_init_by_tag(&b.src_desc, 4, cd->src_desc.dims, dnnl_f32,
                                     cd->src_desc.dims[1] < 16 && !x->blocked ? dnnl_abcd : dnnl_aBcd16b) !=
            dnnl_success ||
        dnnl_memory_desc_init_by_tag(&b.dst_desc, 4, cd->dst_desc.dims, dnnl_f32, dnnl_aBcd16b) != dnnl_success ||
        dnnl_primitive_desc_create(pd, &b, attr, p->eng, NULL) != dnnl_success) {
        *pd = NULL;
        return;
    }
    if (dnnl_primitive_desc_query(*pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl ||
        strncmp(impl, "jit", 3)) {
        dnnl_primitive_desc_destroy(*pd);
        *pd = NULL;
    }
}

int rm_plan_conv(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    int rc = 0;
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    struct val *x = rm_eng_in(p, node, 0), *w = rm_eng_in(p, node, 1), *b = rm_eng_in(p, node, 2);
    struct val *o = rm_eng_out(p, node, 0);
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t pops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    float *wtmp = NULL, *btmp = NULL;
    struct postop po[8];
    int npo = 0, sum_val = -1, bn = -1, last = node;
    int fused_vals[8], nfused = 0;
    int wconst = w->kind == V_CONST && (!b || b->kind == V_CONST);
    int rank = x->rank, sp = rank - 2;
    int64_t g = rm_node_attr_int(np, "group", 1);
    int64_t OC = w->dims[0], ICg = w->dims[1], ksz = 1;
    for (int i = 2; i < rank; i++)
        ksz *= w->dims[i];
    struct rm_window win;
    char why[200];
    *fallback = 0;
    if ((rc = rm_window_of(np, x->rank, x->dims, w->dims + 2, false, &win, why, sizeof why)))
        return rm_eng_node_err(p, node, rc, "%s", why);

    /* fusion chain: [BN] then eltwise / residual Add in graph order */
    int cur = p->g->nodes[node].outputs[0];
    while (p->opts.fuse && npo < 6) {
        int c = sole_consumer(p, cur);
        if (c < 0 || p->g->nodes[c].inputs[0] < 0)
            break;
        const Onnx__NodeProto *cp = p->g->nodes[c].proto;
        int nout = p->g->nodes[c].outputs[0];
        for (size_t k = 1; k < cp->n_input; k++)
            if (p->g->nodes[c].inputs[k] >= 0 && (rc = early_const(p, p->g->nodes[c].inputs[k], err)))
                goto done;
        if (rm_eng_is(p, c, RM_OP_BATCH_NORM) && npo == 0 && bn < 0 && wconst &&
            p->g->nodes[c].inputs[0] == cur && (cp->n_output == 1 || !cp->output[1][0]) &&
            !rm_node_attr_int(cp, "training_mode", 0)) {
            int ok = 1;
            for (size_t k = 1; k < 5; k++) {
                struct val *v = rm_eng_in(p, c, k);
                ok &= v && v->kind == V_CONST && v->dtype == RM_F32 && v->numel == OC;
            }
            if (!ok)
                break;
            bn = c;
        } else if ((rm_eng_is(p, c, RM_OP_RELU) || rm_eng_is(p, c, RM_OP_LEAKY_RELU) ||
                    rm_eng_is(p, c, RM_OP_SIGMOID) || rm_eng_is(p, c, RM_OP_HARD_SWISH) ||
                    rm_eng_is(p, c, RM_OP_CLIP) || rm_eng_is(p, c, RM_OP_HARD_SIGMOID)) &&
                   p->g->nodes[c].inputs[0] == cur) {
            if (!eltwise_of(p, c, po, &npo))
                break;
        } else if (rm_eng_is(p, c, RM_OP_ADD) && sum_val < 0 && cp->n_input == 2) {
            int other = p->g->nodes[c].inputs[0] == cur ? p->g->nodes[c].inputs[1]
                                                        : p->g->nodes[c].inputs[0];
            if (other < 0 || other == cur)
                break;
            struct val *ov = &p->vals[other];
            /* the addend must exist before this step runs and match the output exactly */
            if (ov->kind == V_UNSET || ov->kind == V_FUSED || ov->dtype != RM_F32 ||
                ov->rank != o->rank || memcmp(ov->dims, o->dims, sizeof(int64_t) * (size_t)o->rank) ||
                !ov->has_md)
                break;
            po[npo].sum = 1;
            npo++;
            sum_val = other;
        } else {
            break;
        }
        fused_vals[nfused++] = cur;
        p->node_state[c] = p->n_steps; /* claimed by the step made below */
        last = c;
        cur = nout;
        if (cur < 0)
            break;
    }
    struct val *fin = &p->vals[cur];
    if (fin != o) {
        fin->dtype = RM_F32;
        fin->rank = o->rank;
        memcpy(fin->dims, o->dims, sizeof o->dims);
        fin->numel = o->numel;
    }

    /* weights: plain, BN folded */
    if (wconst) {
        size_t wn = (size_t)(OC * ICg * ksz);
        wtmp = malloc(wn * 4);
        btmp = calloc((size_t)OC, 4);
        if (!wtmp || !btmp) {
            rc = rm_error_set(err, RM_ENOMEM, "out of memory");
            goto done;
        }
        memcpy(wtmp, w->plain, wn * 4);
        if (b)
            memcpy(btmp, b->plain, (size_t)OC * 4);
        if (bn >= 0) {
            const float *sc = rm_eng_in(p, bn, 1)->plain, *be = rm_eng_in(p, bn, 2)->plain;
            const float *mu = rm_eng_in(p, bn, 3)->plain, *va = rm_eng_in(p, bn, 4)->plain;
            float eps = rm_node_attr_float(p->g->nodes[bn].proto, "epsilon", 1e-5f);
            for (int64_t oc = 0; oc < OC; oc++) {
                float s = sc[oc] / sqrtf(va[oc] + eps);
                for (int64_t i = 0; i < ICg * ksz; i++)
                    wtmp[oc * ICg * ksz + i] *= s;
                btmp[oc] = (btmp[oc] - mu[oc]) * s + be[oc];
            }
        }
    }

    dnnl_memory_desc_t src_md, w_md, b_md, dst_md;
    dnnl_dims_t d, wd, bd, strides, dil, pl, pr;
    for (int i = 0; i < rank; i++)
        d[i] = x->dims[i];
    CHECK(dnnl_memory_desc_init_by_tag(&src_md, rank, d, dnnl_f32, dnnl_format_tag_any));
    for (int i = 0; i < rank; i++)
        d[i] = o->dims[i];
    CHECK(dnnl_memory_desc_init_by_tag(&dst_md, rank, d, dnnl_f32, dnnl_format_tag_any));
    int wr = 0;
    if (g > 1)
        wd[wr++] = g;
    wd[wr++] = OC / g;
    wd[wr++] = ICg;
    for (int i = 2; i < rank; i++)
        wd[wr++] = w->dims[i];
    CHECK(dnnl_memory_desc_init_by_tag(&w_md, wr, wd, dnnl_f32,
                                       wconst ? dnnl_format_tag_any : plain_tags[wr]));
    bd[0] = OC;
    int has_bias = wconst || b;
    CHECK(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_a));
    for (int i = 0; i < sp; i++) {
        strides[i] = win.s[i];
        dil[i] = win.d[i] - 1;
        pl[i] = win.pl[i];
        pr[i] = win.pr[i];
    }
    bool wino = conv_is_wino(p, node, w->dims, w->rank);
    dnnl_convolution_desc_t cd;
    CHECK(dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                                     wino ? dnnl_convolution_winograd : dnnl_convolution_direct,
                                                     &src_md, &w_md, has_bias ? &b_md : NULL, &dst_md,
                                                     strides, dil, pl, pr));
    CHECK(dnnl_primitive_attr_create(&attr));
    /* Winograd's transform buffers are the plan's shared scratchpad (on huge pages) */
    CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    if (npo) {
        CHECK(dnnl_post_ops_create(&pops));
        for (int i = 0; i < npo; i++) {
            if (po[i].sum)
                CHECK(dnnl_post_ops_append_sum(pops, 1.0f));
            else
                CHECK(dnnl_post_ops_append_eltwise(pops, 1.0f, po[i].alg, po[i].a, po[i].b));
        }
        CHECK(dnnl_primitive_attr_set_post_ops(attr, pops));
    }
    if (wino && dnnl_primitive_desc_create(&pd, &cd, attr, p->eng, NULL) != dnnl_success) {
        pd = NULL;
        cd.alg_kind = dnnl_convolution_direct;
    }
    if (!pd && p->blocked_convs)
        try_blocked_conv(p, &cd, x, attr, &pd);
    if (!pd)
        CHECK(dnnl_primitive_desc_create(&pd, &cd, attr, p->eng, NULL));
    const dnnl_memory_desc_t *src_q = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *w_q = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *dst_q = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);

    struct step *s = new_step(p, node);
    if (!s) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    s->last_node = last;
    dnnl_primitive_t prim;
    if ((rc = make_prim(p, &prim, pd, err)))
        goto done;

    /* weights and bias: reordered once now, or read from the runtime tensor */
    dnnl_memory_t wmem, bmem = NULL;
    if (wconst) {
        dnnl_memory_desc_t wp;
        dnnl_memory_t wsrc;
        dnnl_primitive_t r;
        CHECK(dnnl_memory_desc_init_by_tag(&wp, wr, wd, dnnl_f32, plain_tags[wr]));
        void *wb = rm_eng_hp_buf(p, dnnl_memory_desc_get_size(w_q));
        void *bb = rm_eng_hp_buf(p, (size_t)OC * 4);
        if (!wb || !bb) {
            rc = rm_error_set(err, RM_ENOMEM, "out of memory");
            goto done;
        }
        memcpy(bb, btmp, (size_t)OC * 4);
        if ((rc = make_mem(p, &wsrc, &wp, wtmp, err)) || (rc = make_mem(p, &wmem, w_q, wb, err)) ||
            (rc = make_mem(p, &bmem, &b_md, bb, err)) || (rc = make_reorder(p, &r, &wp, w_q, err)))
            goto done;
        dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, wsrc}, {DNNL_ARG_TO, wmem}};
        CHECK(dnnl_primitive_execute(r, p->strm, 2, a));
        CHECK(dnnl_stream_wait(p->strm));
    } else {
        if ((rc = make_mem(p, &wmem, w_q, w->plain, err)) || (rc = reg_mem(p, wmem, w, 1, err)))
            goto done;
        s->plain_vals[s->n_plain++] = (int)(w - p->vals);
        if (b) {
            if ((rc = make_mem(p, &bmem, &b_md, b->plain, err)) || (rc = reg_mem(p, bmem, b, 1, err)))
                goto done;
            s->plain_vals[s->n_plain++] = (int)(b - p->vals);
        }
    }

    /* source: the producer's layout, reordered only when the conv wants another */
    dnnl_memory_t smem = x->mem;
    if (!dnnl_memory_desc_equal(src_q, &x->md))
        if ((rc = add_reorder_in(p, s, x, src_q, &smem, err)))
            goto done;

    if ((rc = alloc_md(p, fin, dst_q, err)))
        goto done;
    fin->kind = V_ACT;
    if (sum_val >= 0 && can_clobber(p, sum_val, dst_q)) {
        /* the addend is dead after this step and already in dst's layout: accumulate
         * into its buffer instead of copying it */
        struct val *sv = &p->vals[sum_val];
        fin->buf = sv->buf;
        fin->aliased = 1;
        if ((rc = make_mem(p, &fin->mem, dst_q, fin->buf, err)))
            goto done;
        sv->clobber_step = p->n_steps - 1;
    } else if (sum_val >= 0) {
        /* the sum post-op adds what dst holds: copy the addend in first */
        struct val *sv = &p->vals[sum_val];
        dnnl_primitive_t r;
        if ((rc = make_reorder(p, &r, &sv->md, dst_q, err)))
            goto done;
        dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, sv->mem}, {DNNL_ARG_TO, fin->mem}};
        if ((rc = add_ex(p, s, r, 2, a)))
            goto done;
    }
    dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, smem}, {DNNL_ARG_WEIGHTS, wmem}, {DNNL_ARG_DST, fin->mem},
                            {DNNL_ARG_BIAS, bmem}};
    if ((rc = add_ex(p, s, prim, bmem ? 4 : 3, a)))
        goto done;
    s->written[s->n_written++] = cur;
    for (int i = 0; i < nfused; i++)
        p->vals[fused_vals[i]].kind = V_FUSED;
done:
    free(wtmp);
    free(btmp);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (pops)
        dnnl_post_ops_destroy(pops);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return rc;
}

/* One step running the primitive of pd from x to o (o's buffer laid out as pd's dst),
 * for the single-input ops oneDNN runs on blocked tensors (pooling, eltwise). */
static int add_src_dst_step(struct rm_plan *p, int node, const_dnnl_primitive_desc_t pd, struct val *x,
                            struct val *o, struct rm_error *err)
{
    int rc;
    struct step *s = new_step(p, node);
    dnnl_primitive_t prim;
    if (!s)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    if ((rc = make_prim(p, &prim, pd, err)) ||
        (rc = alloc_md(p, o, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), err)))
        return rc;
    o->kind = V_ACT;
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_SRC, x->mem}, {DNNL_ARG_DST, o->mem}};
    if ((rc = add_ex(p, s, prim, 2, a)))
        return rc;
    s->written[s->n_written++] = p->g->nodes[node].outputs[0];
    return 0;
}

/* ---- pooling ----------------------------------------------------------------- */

/* oneDNN pooling; *fallback set when oneDNN cannot express the ONNX semantics. */
int rm_plan_pool(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    int rc = 0;
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    struct val *x = rm_eng_in(p, node, 0), *o = rm_eng_out(p, node, 0);
    dnnl_primitive_desc_t pd = NULL;
    int global = rm_eng_is(p, node, RM_OP_GLOBAL_AVERAGE_POOL) || rm_eng_is(p, node, RM_OP_GLOBAL_MAX_POOL);
    int is_max = rm_eng_is(p, node, RM_OP_MAX_POOL) || rm_eng_is(p, node, RM_OP_GLOBAL_MAX_POOL);
    int incl = (int)rm_node_attr_int(np, "count_include_pad", 0);
    int sp = x->rank - 2;
    dnnl_dims_t st, k, dl, pl, pr, od;
    *fallback = 0;
    if (!x->has_md || o->numel == 0 || x->rank > 5 || rm_eng_out(p, node, 1)) {
        *fallback = 1;
        return 0;
    }
    if (global) {
        for (int i = 0; i < sp; i++) {
            st[i] = 1;
            k[i] = x->dims[2 + i];
            dl[i] = pl[i] = pr[i] = 0;
        }
    } else {
        struct rm_window w;
        size_t nk;
        char why[200];
        if ((rc = rm_window_of(np, x->rank, x->dims, rm_node_attr_ints(np, "kernel_shape", &nk), true, &w, why,
                               sizeof why)))
            return rm_eng_node_err(p, node, rc, "%s", why);
        for (int i = 0; i < sp; i++) {
            int64_t eff = (w.k[i] - 1) * w.d[i] + 1;
            st[i] = w.s[i];
            k[i] = w.k[i];
            dl[i] = w.d[i] - 1;
            pl[i] = w.pl[i];
            /* right padding that makes oneDNN's floor formula give the ONNX size */
            pr[i] = (w.out[i] - 1) * w.s[i] + eff - x->dims[2 + i] - w.pl[i];
            if (pr[i] < 0 || (!is_max && incl && pr[i] > w.pr[i]) || pl[i] >= eff || pr[i] >= eff) {
                *fallback = 1;
                return 0;
            }
        }
    }
    for (int i = 0; i < o->rank; i++)
        od[i] = o->dims[i];
    dnnl_memory_desc_t dst_md;
    CHECK(dnnl_memory_desc_init_by_tag(&dst_md, o->rank, od, dnnl_f32, dnnl_format_tag_any));
    dnnl_pooling_v2_desc_t pdsc;
    dnnl_alg_kind_t alg = is_max ? dnnl_pooling_max
                                 : incl ? dnnl_pooling_avg_include_padding : dnnl_pooling_avg_exclude_padding;
    CHECK(dnnl_pooling_v2_forward_desc_init(&pdsc, dnnl_forward_inference, alg, &x->md, &dst_md, st, k,
                                            dl, pl, pr));
    if (dnnl_primitive_desc_create(&pd, &pdsc, NULL, p->eng, NULL) != dnnl_success) {
        pd = NULL;
        *fallback = 1;
        goto done;
    }
    rc = add_src_dst_step(p, node, pd, x, o, err);
done:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* ---- eltwise on blocked tensors ------------------------------------------------ */

static int plan_eltwise(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    int rc = 0;
    struct val *x = rm_eng_in(p, node, 0), *o = rm_eng_out(p, node, 0);
    dnnl_primitive_desc_t pd = NULL;
    struct postop po[2];
    int npo = 0;
    *fallback = 1;
    if (!x->blocked || rm_eng_is(p, node, RM_OP_HARD_SIGMOID) || !eltwise_of(p, node, po, &npo))
        return 0;
    *fallback = 0;
    dnnl_eltwise_desc_t ed;
    CHECK(dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_inference, po[0].alg, &x->md, po[0].a, po[0].b));
    CHECK(dnnl_primitive_desc_create(&pd, &ed, NULL, p->eng, NULL));
    rc = add_src_dst_step(p, node, pd, x, o, err);
done:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* ---- binary on blocked tensors ------------------------------------------------- */

int rm_plan_binary(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    int rc = 0;
    struct val *a = rm_eng_in(p, node, 0), *b = rm_eng_in(p, node, 1), *o = rm_eng_out(p, node, 0);
    dnnl_primitive_desc_t pd = NULL;
    int commut = rm_eng_is(p, node, RM_OP_ADD) || rm_eng_is(p, node, RM_OP_MUL);
    *fallback = 1;
    if (o->dtype != RM_F32 || !(a->blocked || b->blocked) || !a->has_md || !b->has_md)
        return 0;
    if (a->rank != o->rank || memcmp(a->dims, o->dims, sizeof(int64_t) * (size_t)o->rank)) {
        if (!commut || b->rank != o->rank || memcmp(b->dims, o->dims, sizeof(int64_t) * (size_t)o->rank))
            return 0;
        struct val *t = a;
        a = b;
        b = t;
    }
    *fallback = 0;
    dnnl_alg_kind_t alg = rm_eng_is(p, node, RM_OP_ADD)   ? dnnl_binary_add
                          : rm_eng_is(p, node, RM_OP_SUB) ? dnnl_binary_sub
                          : rm_eng_is(p, node, RM_OP_MUL) ? dnnl_binary_mul
                                                      : dnnl_binary_div;
    struct step *s = new_step(p, node);
    if (!s)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    int same = b->rank == a->rank && !memcmp(b->dims, a->dims, sizeof(int64_t) * (size_t)a->rank);
    dnnl_memory_desc_t b_md;
    dnnl_memory_t bmem;
    if (same) {
        b_md = a->md;
        bmem = b->mem;
        if (!dnnl_memory_desc_equal(&b->md, &a->md))
            if ((rc = add_reorder_in(p, s, b, &a->md, &bmem, err)))
                goto done;
    } else {
        int64_t bd[RM_MAX_RANK];
        for (int i = 0; i < a->rank; i++) {
            int ib = i - (a->rank - b->rank);
            bd[i] = ib >= 0 ? b->dims[ib] : 1;
        }
        if (rm_eng_plain_md(&b_md, a->rank, bd)) {
            rc = rm_error_set(err, RM_EUNSUPPORTED, "cannot describe broadcast operand");
            goto done;
        }
        if ((rc = make_mem(p, &bmem, &b_md, b->plain, err)) || (rc = reg_mem(p, bmem, b, 1, err)))
            goto done;
        s->plain_vals[s->n_plain++] = (int)(b - p->vals);
    }
    dnnl_binary_desc_t bdsc;
    CHECK(dnnl_binary_desc_init(&bdsc, alg, &a->md, &b_md, &a->md));
    CHECK(dnnl_primitive_desc_create(&pd, &bdsc, NULL, p->eng, NULL));
    dnnl_primitive_t prim;
    if ((rc = make_prim(p, &prim, pd, err)) || (rc = alloc_md(p, o, &a->md, err)))
        goto done;
    o->kind = V_ACT;
    dnnl_exec_arg_t ar[3] = {{DNNL_ARG_SRC_0, a->mem}, {DNNL_ARG_SRC_1, bmem}, {DNNL_ARG_DST, o->mem}};
    if ((rc = add_ex(p, s, prim, 3, ar)))
        goto done;
    s->written[s->n_written++] = p->g->nodes[node].outputs[0];
done:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* ---- BatchNormalization on blocked tensors ------------------------------------- */

/* Inference BatchNormalization with constant statistics that could not be folded
 * into a convolution (a BN after a Concat, as in DenseNet), keeping the input's
 * layout; a following Relu joins it. fuse=1 only. */
int rm_plan_batch_norm(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    int rc = 0;
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    struct val *x = rm_eng_in(p, node, 0), *o = rm_eng_out(p, node, 0), *par[5];
    dnnl_primitive_desc_t pd = NULL;
    *fallback = 1;
    /* fuse=0 keeps the C kernel: its per-element arithmetic does not depend on the
     * channel count, so a pruned model's kept channels match bit for bit in diffs */
    if (!p->opts.fuse || !x->has_md || x->rank < 2 || x->rank > 5 || x->numel == 0)
        return 0;
    for (size_t k = 1; k < 5; k++) {
        par[k] = rm_eng_in(p, node, k);
        if (!par[k] || par[k]->kind != V_CONST || par[k]->dtype != RM_F32 || !par[k]->has_md)
            return 0;
    }
    *fallback = 0;
    unsigned flags = dnnl_use_global_stats | dnnl_use_scale | dnnl_use_shift;
    int last = node, ov = p->g->nodes[node].outputs[0];
    int c = p->opts.fuse ? sole_consumer(p, ov) : -1;
    if (c >= 0 && rm_eng_is(p, c, RM_OP_RELU) && p->g->nodes[c].inputs[0] == ov) {
        flags |= dnnl_fuse_norm_relu;
        last = c;
    }
    dnnl_batch_normalization_desc_t bd;
    CHECK(dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_inference, &x->md,
                                                     rm_node_attr_float(np, "epsilon", 1e-5f), flags));
    CHECK(dnnl_primitive_desc_create(&pd, &bd, NULL, p->eng, NULL));
    struct step *s = new_step(p, node);
    dnnl_primitive_t prim;
    if (!s) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    struct val *fin = o;
    if (last != node) {
        p->node_state[last] = p->n_steps - 1;
        s->last_node = last;
        o->kind = V_FUSED;
        fin = rm_eng_out(p, last, 0);
        fin->dtype = RM_F32;
        fin->rank = o->rank;
        memcpy(fin->dims, o->dims, sizeof o->dims);
        fin->numel = o->numel;
    }
    if ((rc = make_prim(p, &prim, pd, err)) ||
        (rc = alloc_md(p, fin, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), err)))
        goto done;
    fin->kind = V_ACT;
    dnnl_exec_arg_t a[6] = {{DNNL_ARG_SRC, x->mem},        {DNNL_ARG_DST, fin->mem},
                            {DNNL_ARG_SCALE, par[1]->mem}, {DNNL_ARG_SHIFT, par[2]->mem},
                            {DNNL_ARG_MEAN, par[3]->mem},  {DNNL_ARG_VARIANCE, par[4]->mem}};
    if ((rc = add_ex(p, s, prim, 6, a)))
        goto done;
    s->written[s->n_written++] = (int)(fin - p->vals);
done:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* ---- concat on blocked tensors ------------------------------------------------- */

/* The channels-last or channel-blocked tag v's layout corresponds to, or any. */
static dnnl_format_tag_t tag_of(const struct val *v)
{
    static const dnnl_format_tag_t t3[] = {dnnl_acb, dnnl_aBc16b, dnnl_aBc8b};
    static const dnnl_format_tag_t t4[] = {dnnl_acdb, dnnl_aBcd16b, dnnl_aBcd8b};
    static const dnnl_format_tag_t t5[] = {dnnl_acdeb, dnnl_aBcde16b, dnnl_aBcde8b};
    const dnnl_format_tag_t *t = v->rank == 3 ? t3 : v->rank == 4 ? t4 : v->rank == 5 ? t5 : NULL;
    dnnl_dims_t d;
    dnnl_memory_desc_t md;
    for (int i = 0; i < v->rank; i++)
        d[i] = v->dims[i];
    for (int k = 0; t && k < 3; k++)
        if (dnnl_memory_desc_init_by_tag(&md, v->rank, d, dnnl_f32, t[k]) == dnnl_success &&
            dnnl_memory_desc_equal(&md, &v->md))
            return t[k];
    return dnnl_format_tag_any;
}

int rm_plan_concat(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    int rc = 0;
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    struct val *o = rm_eng_out(p, node, 0);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_desc_t *mds = NULL;
    dnnl_exec_arg_t *args = NULL;
    int n = (int)np->n_input, blocked = 0;
    *fallback = 1;
    if (o->dtype != RM_F32 || o->rank > 6 || n < 1)
        return 0;
    for (int k = 0; k < n; k++) {
        struct val *v = rm_eng_in(p, node, (size_t)k);
        if (!v || !v->has_md || v->numel == 0)
            return 0;
        blocked |= v->blocked;
    }
    if (!blocked)
        return 0;
    *fallback = 0;
    int64_t axis = rm_node_attr_int(np, "axis", 0);
    if (axis < 0)
        axis += o->rank;
    mds = malloc(sizeof *mds * (size_t)n);
    args = malloc(sizeof *args * (size_t)(n + 1));
    if (!mds || !args) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    for (int k = 0; k < n; k++)
        mds[k] = rm_eng_in(p, node, (size_t)k)->md;
    dnnl_memory_desc_t dst_md;
    dnnl_dims_t od;
    for (int i = 0; i < o->rank; i++)
        od[i] = o->dims[i];
    /* keep the inputs' layout: oneDNN's own choice for "any" is plain here */
    dnnl_format_tag_t tag = dnnl_format_tag_any;
    for (int k = 0; k < n && tag == dnnl_format_tag_any; k++)
        tag = tag_of(rm_eng_in(p, node, (size_t)k));
    CHECK(dnnl_memory_desc_init_by_tag(&dst_md, o->rank, od, dnnl_f32, tag));
    CHECK(dnnl_concat_primitive_desc_create(&pd, &dst_md, n, (int)axis, mds, NULL, p->eng));
    struct step *s = new_step(p, node);
    dnnl_primitive_t prim;
    if (!s) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = make_prim(p, &prim, pd, err)) ||
        (rc = alloc_md(p, o, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), err)))
        goto done;
    o->kind = V_ACT;
    for (int k = 0; k < n; k++) {
        args[k].arg = DNNL_ARG_MULTIPLE_SRC + k;
        args[k].memory = rm_eng_in(p, node, (size_t)k)->mem;
    }
    args[n].arg = DNNL_ARG_DST;
    args[n].memory = o->mem;
    if ((rc = add_ex(p, s, prim, n + 1, args)))
        goto done;
    s->written[s->n_written++] = p->g->nodes[node].outputs[0];
done:
    free(mds);
    free(args);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* ---- layout-preserving copies ------------------------------------------------------ */

/* Identity, Dropout and a Pad that pads nothing keep a blocked input's layout: one
 * reorder (a plain copy) instead of a round trip through the plain layout. */
int rm_plan_copy(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    int rc = 0;
    struct val *x = rm_eng_in(p, node, 0), *o = rm_eng_out(p, node, 0);
    *fallback = 1;
    if (!x->blocked || o->rank != x->rank || memcmp(o->dims, x->dims, sizeof(int64_t) * (size_t)x->rank))
        return 0;
    *fallback = 0;
    struct step *s = new_step(p, node);
    dnnl_primitive_t r;
    if (!s)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    if ((rc = alloc_md(p, o, &x->md, err)) || (rc = make_reorder(p, &r, &x->md, &x->md, err)))
        return rc;
    o->kind = V_ACT;
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, x->mem}, {DNNL_ARG_TO, o->mem}};
    if ((rc = add_ex(p, s, r, 2, a)))
        return rc;
    s->written[s->n_written++] = p->g->nodes[node].outputs[0];
    return 0;
}

/* Relu, LeakyRelu, Clip, Sigmoid, HardSwish on a blocked float input: oneDNN eltwise. */
int rm_plan_unary(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    struct val *x = rm_eng_in(p, node, 0);
    struct postop tmp[2];
    int n = 0;
    *fallback = 1;
    if (x->dtype != RM_F32 || !eltwise_of(p, node, tmp, &n))
        return 0;
    return plan_eltwise(p, node, fallback, err);
}

/* A Pad that pads nothing is a copy. Only all-zero pads count: pads that crop on one
 * side and pad on the other also keep the dims. */
int rm_plan_pad(struct rm_plan *p, int node, int *fallback, struct rm_error *err)
{
    struct val *pv = rm_eng_in(p, node, 1);
    size_t na;
    const int64_t *pa = rm_node_attr_ints(p->g->nodes[node].proto, "pads", &na);
    int nothing = 1;
    *fallback = 1;
    if (pv && pv->kind == V_CONST && pv->dtype == RM_I64) {
        for (int64_t k = 0; k < pv->numel; k++)
            nothing &= ((int64_t *)pv->plain)[k] == 0;
    } else if (pa) {
        for (size_t k = 0; k < na; k++)
            nothing &= pa[k] == 0;
    } else {
        nothing = 0;
    }
    return nothing ? rm_plan_copy(p, node, fallback, err) : 0;
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
    if (all_const && (rm_op_def(n->op)->flags & RM_OPF_FOLD)) {
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
    struct step *s = new_step(p, node);
    if (!s)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    s->c_node = node;
    for (size_t k = 0; k < n->proto->n_output && s->n_written < 4; k++) {
        struct val *o = rm_eng_out(p, node, k);
        if (o && o->dtype) {
            o->kind = V_ACT;
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
        if (gv->elem_type != RM_F32 && gv->elem_type != RM_I64)
            return rm_eng_node_err(p, node, RM_EUNSUPPORTED, "output type %s is not supported",
                                   rm_dtype_name(gv->elem_type));
        o->dtype = gv->elem_type;
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
        return load_constant_node(p, node, err);
    }
    for (size_t k = 0; k < p->g->nodes[node].proto->n_input; k++) {
        int vi = p->g->nodes[node].inputs[k];
        if (vi < 0)
            continue;
        struct val *v = &p->vals[vi];
        if ((rc = early_const(p, vi, err)))
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
    if (!all_const && o->numel > 0 && def->plan) {
        if ((rc = def->plan(p, node, &fallback, err)))
            return rc;
        if (!fallback)
            return 0;
    }
    if (!def->kernel)
        return rm_eng_node_err(p, node, RM_EUNSUPPORTED, "constant or empty input is not supported");
    return plan_c_node(p, node, err);
}

/* Free one plan-owned buffer early (it is being replaced). */
static void release_buf(struct rm_plan *p, void *b)
{
    for (int i = 0; i < p->n_bufs; i++)
        if (p->bufs[i] == b) {
            free(b);
            p->bufs[i] = p->bufs[--p->n_bufs];
            return;
        }
}

/* Activations whose lifetimes do not overlap share buffers (greedy
 * best fit in step order). A value whose buffer was handed on is reported as
 * overwritten by rm_plan_get once the next owner's step has run. */
static int plan_memory(struct rm_plan *p, struct rm_error *err)
{
    int rc = 0;
    size_t nv = p->g->n_values;
    int *def = malloc((nv ? nv : 1) * sizeof(int)), *last = malloc((nv ? nv : 1) * sizeof(int));
    int np = 0;
    struct pool {
        void *buf;
        size_t size;
        int free_after, owner;
    } *pool = calloc((size_t)p->n_steps * 4 + 1, sizeof *pool);
    if (!def || !last || !pool) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t v = 0; v < nv; v++)
        def[v] = last[v] = -1;
    for (int s = 0; s < p->n_steps; s++)
        for (int k = 0; k < p->steps[s].n_written; k++)
            def[p->steps[s].written[k]] = s;
    for (size_t i = 0; i < p->g->n_nodes; i++) {
        int st = p->node_state[i];
        if (st < 0)
            continue;
        for (size_t k = 0; k < p->g->nodes[i].proto->n_input; k++) {
            int vi = p->g->nodes[i].inputs[k];
            if (vi >= 0 && st > last[vi])
                last[vi] = st;
        }
    }
    for (int s = 0; s < p->n_steps; s++)
        for (int k = 0; k < p->steps[s].n_written; k++) {
            int vi = p->steps[s].written[k];
            struct val *v = &p->vals[vi];
            if (v->kind != V_ACT || p->g->values[vi].output >= 0 || v->clobber_step >= 0 || v->aliased)
                continue;
            int end = last[vi] > s ? last[vi] : s, best = -1;
            for (int j = 0; j < np; j++)
                if (pool[j].free_after < s && pool[j].size >= v->bytes &&
                    (best < 0 || pool[j].size < pool[best].size))
                    best = j;
            if (best < 0) {
                best = np++;
                pool[best].buf = rm_eng_hp_buf(p, v->bytes);
                pool[best].size = v->bytes;
                pool[best].owner = -1;
                if (!pool[best].buf) {
                    rc = rm_error_set(err, RM_ENOMEM, "out of memory");
                    goto done;
                }
            }
            if (pool[best].owner >= 0)
                p->vals[pool[best].owner].overwrite_step = s;
            pool[best].owner = vi;
            pool[best].free_after = end;
            void *old = v->buf;
            v->buf = pool[best].buf;
            if (!v->blocked)
                v->plain = v->buf;
            release_buf(p, old);
        }
    for (int i = 0; i < p->n_refs; i++) {
        struct val *v = &p->vals[p->refs[i].val];
        CHECK(dnnl_memory_set_data_handle(p->refs[i].mem, p->refs[i].plain ? v->plain : v->buf));
    }
    /* steps run one at a time, so every primitive can share one scratchpad */
    if (p->scratch_bytes) {
        void *sb = rm_eng_hp_buf(p, p->scratch_bytes);
        if (!sb) {
            rc = rm_error_set(err, RM_ENOMEM, "out of memory for a %zu byte scratchpad", p->scratch_bytes);
            goto done;
        }
        for (int i = 0; i < p->n_scratch; i++)
            CHECK(dnnl_memory_set_data_handle(p->scratch[i], sb));
    }
done:
    free(def);
    free(last);
    free(pool);
    return rc;
}

typedef void (*omp_set_fn)(int);

static void set_threads(int n)
{
    if (n <= 0)
        return;
    void *sym = dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    omp_set_fn f;
    if (!sym)
        return;
    memcpy(&f, &sym, sizeof f);
    f(n);
}

int rm_plan_init(struct rm_plan **out, struct rm_model *model, const struct rm_plan_opts *opts,
                 struct rm_error *err)
{
    int rc = 0;
    struct rm_plan *p = NULL;
    *out = NULL;
    struct rm_graph *g = rm_model_index(model, err);
    if (!g)
        return err->code;
    for (size_t i = 0; i < g->n_nodes; i++)
        if (!op_supported(&g->nodes[i]))
            return rm_error_set(err, RM_EUNSUPPORTED, "node '%s': op %s%s%s is not supported",
                                rm_graph_node_label(g, i),
                                g->nodes[i].proto->domain && g->nodes[i].proto->domain[0]
                                    ? g->nodes[i].proto->domain : "",
                                g->nodes[i].proto->domain && g->nodes[i].proto->domain[0] ? "." : "",
                                g->nodes[i].proto->op_type ? g->nodes[i].proto->op_type : "?");
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
    struct rm_plan_opts o;
    if (opts)
        o = *opts;
    else
        rm_plan_opts_default(&o);
    struct rm_input_spec *specs = NULL;
    size_t n_specs = 0;
    rc = given_specs(g, &o, &specs, &n_specs, err);
    if (!rc)
        rc = rm_model_set_inputs(model, specs, n_specs, err);
    free(specs);
    if (rc)
        return rc;
    if (!(g = rm_model_graph(model, err)))
        return err->code;
    if ((rc = rm_shape_check(g, err)))
        return rc;
    p = calloc(1, sizeof *p);
    if (!p)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    p->g = g;
    rm_graph_hold(g);
    p->err = err;
    rm_arena_init(&p->hp, (size_t)8 << 20);
    p->opts = o;
    set_threads(p->opts.threads);
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
        p->macs += m > 0 ? m : 0;
    }
    CHECK(dnnl_engine_create(&p->eng, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&p->strm, p->eng, dnnl_stream_default_flags));

    choose_conv_layout(p);
    for (size_t i = 0; i < g->proto->n_input; i++) {
        int vi = g->proto->input[i]->name ? rm_graph_find(g, g->proto->input[i]->name) : -1;
        if (vi < 0 || g->values[vi].init >= 0)
            continue;
        if ((rc = setup_input(p, vi, err)) < 0)
            goto done;
        if (rc == 0)
            p->in_vals[p->n_in++] = vi;
        rc = 0;
    }
    for (size_t i = 0; i < g->n_nodes; i++)
        if ((rc = plan_node(p, (int)i, err))) {
            if (!strstr(err->msg, "node '"))
                rm_error_prefix(err, "node '%s' (%s)", rm_graph_node_label(g, i),
                                g->nodes[i].proto->op_type);
            goto done;
        }
    for (size_t i = 0; i < g->proto->n_output; i++) {
        const char *nm = g->proto->output[i]->name;
        int vi = nm ? rm_graph_find(g, nm) : -1;
        if (vi < 0)
            continue;
        if (p->vals[vi].kind == V_UNSET && g->values[vi].init >= 0)
            if ((rc = load_const(p, &p->vals[vi], g->proto->initializer[g->values[vi].init], nm, err)))
                goto done;
        if (p->vals[vi].kind == V_UNSET || p->vals[vi].kind == V_FUSED) {
            rc = rm_error_set(err, RM_EFORMAT, "graph output '%s' is never produced", nm);
            goto done;
        }
        p->out_vals[p->n_out++] = vi;
    }
    if ((rc = plan_memory(p, err)))
        goto done;
    rm_plan_begin(p);
done:
    if (rc) {
        rm_plan_free(p);
        return rc;
    }
    p->err = NULL;
    *out = p;
    return 0;
}

void rm_plan_free(struct rm_plan *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n_prims; i++)
        dnnl_primitive_destroy(p->prims[i]);
    for (int i = 0; i < p->n_mems; i++)
        dnnl_memory_destroy(p->mems[i]);
    for (int i = 0; i < p->n_bufs; i++)
        free(p->bufs[i]);
    if (p->strm)
        dnnl_stream_destroy(p->strm);
    if (p->eng)
        dnnl_engine_destroy(p->eng);
    free(p->prims);
    free(p->mems);
    free(p->refs);
    free(p->bufs);
    free(p->scratch);
    rm_arena_free(&p->hp);
    free(p->steps);
    free(p->vals);
    free(p->node_state);
    free(p->in_vals);
    free(p->out_vals);
    rm_graph_drop(p->g);
    free(p);
}

/* ---- inputs ---------------------------------------------------------------------- */

int rm_plan_n_inputs(const struct rm_plan *p)
{
    return p->n_in;
}

const char *rm_plan_input_name(const struct rm_plan *p, int k)
{
    return k >= 0 && k < p->n_in ? p->g->values[p->in_vals[k]].name : NULL;
}

void rm_plan_input_info(const struct rm_plan *p, int k, struct rm_host_tensor *t)
{
    memset(t, 0, sizeof *t);
    if (k < 0 || k >= p->n_in)
        return;
    const struct val *v = &p->vals[p->in_vals[k]];
    t->dtype = v->dtype;
    t->rank = v->rank;
    memcpy(t->dims, v->dims, sizeof t->dims);
    t->numel = v->numel;
}


int rm_plan_set_input(struct rm_plan *p, const char *name, const struct rm_host_tensor *t,
                      struct rm_error *err)
{
    for (int k = 0; k < p->n_in; k++) {
        struct val *v = &p->vals[p->in_vals[k]];
        if (strcmp(p->g->values[p->in_vals[k]].name, name))
            continue;
        if (t->dtype != v->dtype || t->rank != v->rank ||
            memcmp(t->dims, v->dims, sizeof(int64_t) * (size_t)v->rank)) {
            char a[160], b[160];
            dims_str(a, sizeof a, t->rank, t->dims);
            dims_str(b, sizeof b, v->rank, v->dims);
            return rm_error_set(err, RM_EFORMAT, "input '%s': got %s %s, the model expects %s %s", name,
                                rm_dtype_name(t->dtype), a, rm_dtype_name(v->dtype), b);
        }
        memcpy(v->buf, t->data, (size_t)v->numel * dtype_bytes(v->dtype));
        v->set_by_user = 1;
        v->stamp = ++p->stamp;
        return 0;
    }
    return rm_error_set(err, RM_ENOTFOUND, "the model has no input named '%s'", name);
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void rm_plan_random_inputs(struct rm_plan *p, uint64_t seed)
{
    uint64_t st = seed;
    for (int k = 0; k < p->n_in; k++) {
        struct val *v = &p->vals[p->in_vals[k]];
        if (v->set_by_user)
            continue;
        if (v->dtype == RM_I64) {
            memset(v->buf, 0, (size_t)v->numel * 8);
            continue;
        }
        float *d = v->buf;
        for (int64_t i = 0; i < v->numel; i += 2) {
            /* Box-Muller: two normals from two uniforms in (0, 1] */
            double u1 = ((double)(splitmix(&st) >> 11) + 1.0) / 9007199254740992.0;
            double u2 = (double)(splitmix(&st) >> 11) / 9007199254740992.0;
            double r = sqrt(-2.0 * log(u1));
            d[i] = (float)(r * cos(2 * M_PI * u2));
            if (i + 1 < v->numel)
                d[i + 1] = (float)(r * sin(2 * M_PI * u2));
        }
        v->stamp = ++p->stamp;
    }
}

/* ---- running ----------------------------------------------------------------------- */

void rm_plan_begin(struct rm_plan *p)
{
    p->cursor = 0;
    for (size_t i = 0; i < p->g->n_values; i++)
        if (p->vals[i].kind == V_ACT)
            p->vals[i].computed = 0;
}

int rm_plan_n_steps(const struct rm_plan *p)
{
    return p->n_steps;
}

int rm_plan_step(struct rm_plan *p, int *node_done, struct rm_error *err)
{
    int rc = 0;
    if (p->cursor >= p->n_steps)
        return 0;
    struct step *s = &p->steps[p->cursor++];
    p->err = err;
    for (int i = 0; i < s->n_plain; i++)
        if ((rc = rm_eng_ensure_plain(p, &p->vals[s->plain_vals[i]], err)))
            goto done;
    if (s->c_node >= 0) {
        for (size_t k = 0; k < p->g->nodes[s->c_node].proto->n_input; k++) {
            struct val *v = rm_eng_in(p, s->c_node, k);
            if (v && (rc = rm_eng_ensure_plain(p, v, err)))
                goto done;
        }
        if ((rc = rm_eng_kernel(p, s->c_node)))
            goto done;
    } else {
        for (int i = 0; i < s->n_ex; i++)
            CHECK(dnnl_primitive_execute(s->ex[i].prim, p->strm, s->ex[i].nargs, s->ex[i].args));
        CHECK(dnnl_stream_wait(p->strm));
    }
    for (int i = 0; i < s->n_written; i++) {
        struct val *v = &p->vals[s->written[i]];
        v->stamp = ++p->stamp;
        v->computed = 1;
    }
    if (node_done)
        *node_done = s->last_node;
    rc = 1;
done:
    if (rc < 0 && !strstr(err ? err->msg : "", "node '"))
        rm_error_prefix(err, "node '%s'", rm_graph_node_label(p->g, (size_t)s->first_node));
    p->err = NULL;
    return rc;
}

int rm_plan_run(struct rm_plan *p, struct rm_error *err)
{
    int rc, node;
    rm_plan_begin(p);
    while ((rc = rm_plan_step(p, &node, err)) > 0)
        ;
    return rc;
}

int rm_plan_get(struct rm_plan *p, const char *name, struct rm_host_tensor *out, struct rm_error *err)
{
    memset(out, 0, sizeof *out);
    int vi = rm_graph_find(p->g, name);
    if (vi < 0)
        return rm_error_set(err, RM_ENOTFOUND, "no tensor named '%s'", name);
    struct val *v = &p->vals[vi];
    if (v->kind == V_FUSED)
        return rm_error_set(err, RM_ENOTFOUND, "tensor '%s' was fused into its producer's step", name);
    if (v->kind == V_UNSET || !v->computed)
        return rm_error_set(err, RM_ENOTFOUND, "tensor '%s' has not been computed", name);
    if ((v->clobber_step >= 0 && p->cursor > v->clobber_step) ||
        (v->overwrite_step >= 0 && p->cursor > v->overwrite_step))
        return rm_error_set(err, RM_ENOTFOUND, "tensor '%s' was overwritten in place by a later step",
                            name);
    int rc = rm_eng_ensure_plain(p, v, err);
    if (rc || (rc = rm_host_tensor_alloc(out, v->dtype, v->rank, v->dims, err)))
        return rc;
    memcpy(out->data, v->plain, (size_t)v->numel * dtype_bytes(v->dtype));
    return 0;
}

int rm_plan_n_outputs(const struct rm_plan *p)
{
    return p->n_out;
}

const char *rm_plan_output_name(const struct rm_plan *p, int k)
{
    return k >= 0 && k < p->n_out ? p->g->values[p->out_vals[k]].name : NULL;
}

int rm_plan_output(struct rm_plan *p, int k, struct rm_host_tensor *out, struct rm_error *err)
{
    memset(out, 0, sizeof *out);
    if (k < 0 || k >= p->n_out)
        return rm_error_set(err, RM_ENOTFOUND, "no output %d", k);
    struct val *v = &p->vals[p->out_vals[k]];
    int rc = rm_eng_ensure_plain(p, v, err);
    if (rc)
        return rc;
    out->dtype = v->dtype;
    out->rank = v->rank;
    memcpy(out->dims, v->dims, sizeof out->dims);
    out->numel = v->numel;
    out->data = v->plain;
    out->owned = 0;
    return 0;
}

int64_t rm_plan_macs(const struct rm_plan *p)
{
    return p->macs;
}
