/* Constants and inputs of a plan: initializers and Constant nodes materialized at
 * plan time, and the graph inputs the caller feeds (given values fix dynamic dims, an
 * int64 one becomes a constant). */
#include "rm_engine_int.h"
#include "rm_shape.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ONNX stores raw_data little-endian: read in place only on a little-endian host */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define RM_HOST_LE 1
#else
#define RM_HOST_LE 0
#endif

/* ---- constants and inputs -------------------------------------------------- */

/* Materialize a TensorProto as a plan-time constant in v. */
int rm_eng_load_const(struct rm_plan *p, struct val *v, const Onnx__TensorProto *t, const char *what,
                      struct rm_error *err)
{
    int32_t dt = t->data_type, want = rm_dtype_host(dt);
    if (!want)
        return rm_error_set(err, RM_EUNSUPPORTED, "%s: tensor type %s is not supported", what,
                            rm_dtype_name(dt));
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
    /* float32 bytes as the model holds them are read in place: the plan never writes a
     * constant, and the model outlives the plan (rm_engine.h); a copy would cost a pass
     * over every weight and as much memory as the model (resnet18: 47 MB per plan) */
    if (RM_HOST_LE && dt == RM_F32 && t->has_raw_data && v->numel > 0 && (uintptr_t)t->raw_data.data % 16 == 0 &&
        t->raw_data.len == (size_t)v->numel * 4) {
        if ((rc = rm_eng_view_plain(p, v, t->raw_data.data, err)))
            return rc;
        v->kind = V_CONST;
        v->computed = 1;
        return 0;
    }
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
int rm_eng_load_constant_node(struct rm_plan *p, int node, struct rm_error *err)
{
    const Onnx__NodeProto *np = p->g->nodes[node].proto;
    struct val *o = rm_eng_out(p, node, 0);
    const Onnx__AttributeProto *a;
    if ((a = rm_node_attr(np, "value")) && a->t)
        return rm_eng_load_const(p, o, a->t, rm_graph_node_label(p->g, (size_t)node), err);
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
int rm_eng_early_const(struct rm_plan *p, int vi, struct rm_error *err)
{
    struct val *v = &p->vals[vi];
    const struct rm_value *gv = &p->g->values[vi];
    if (v->kind != V_UNSET)
        return 0;
    if (gv->init >= 0)
        return rm_eng_load_const(p, v, p->g->proto->initializer[gv->init], gv->name, err);
    if (gv->producer >= 0 && p->node_state[gv->producer] == -2 && rm_eng_is(p, gv->producer, RM_OP_CONSTANT)) {
        p->node_state[gv->producer] = -1;
        return rm_eng_load_constant_node(p, gv->producer, err);
    }
    return 0;
}

void rm_eng_dims_str(char *buf, size_t n, int rank, const int64_t *dims)
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
    if (!rm_dtype_host(tt->elem_type))
        return rm_error_set(err, RM_EUNSUPPORTED,
                            "input '%s': type %s is not supported (float32/64, int8/16/32/64, uint8, bool)",
                            gv->name, rm_dtype_name(tt->elem_type));
    if (!tt->shape)
        return rm_error_set(err, RM_EUNSUPPORTED, "input '%s': shape is not declared", gv->name);
    if (tt->shape->n_dim > RM_MAX_RANK)
        return rm_error_set(err, RM_EUNSUPPORTED, "input '%s': rank above %d", gv->name, RM_MAX_RANK);
    *out = tt;
    return 0;
}

/* The value given for graph input `name`, or NULL. */
static const struct rm_host_tensor *given_value(const struct rm_session_options *o, const char *name)
{
    for (int i = 0; i < o->n_given; i++)
        if (!strcmp(o->given_names[i], name))
            return &o->given_values[i];
    return NULL;
}

/* Shapes of the given inputs for shape inference (their declared type and static dims
 * must agree); int64 ones also give their contents. The model's input shapes
 * (rm_model_set_input_shape) hold for the inputs not given. *specs is malloc'd. */
int rm_eng_given_specs(const struct rm_model *m, const struct rm_graph *g, const struct rm_session_options *o,
                       struct rm_input_spec **specs, size_t *n, struct rm_error *err)
{
    *n = 0;
    *specs = calloc((size_t)o->n_given + m->n_inputs + 1, sizeof **specs);
    if (!*specs)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    for (size_t i = 0; i < m->n_inputs; i++)
        if (!given_value(o, m->inputs[i].name))
            (*specs)[(*n)++] = m->inputs[i];
    for (size_t i = 0; i < g->proto->n_input; i++) {
        int vi = g->proto->input[i]->name ? rm_graph_find(g, g->proto->input[i]->name) : -1;
        if (vi < 0 || g->values[vi].init >= 0)
            continue;
        const struct rm_host_tensor *fx = given_value(o, g->values[vi].name);
        const Onnx__TypeProto__Tensor *tt = NULL;
        if (!fx)
            continue;
        int rc = input_type(g, vi, &tt, err);
        if (rc)
            return rc;
        int ok = fx->dtype == rm_dtype_host(tt->elem_type) && (size_t)fx->rank == tt->shape->n_dim;
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
            rm_eng_dims_str(a, sizeof a, fx->rank, fx->dims);
            rm_eng_dims_str(b, sizeof b, (int)tt->shape->n_dim, decl);
            return rm_error_set(err, RM_EFORMAT, "input '%s': got %s %s, the model expects %s %s", g->values[vi].name,
                                rm_dtype_name(fx->dtype), a, rm_dtype_name(rm_dtype_host(tt->elem_type)), b);
        }
        struct rm_input_spec *sp = &(*specs)[(*n)++];
        sp->name = g->values[vi].name;
        sp->rank = fx->rank;
        memcpy(sp->dims, fx->dims, sizeof sp->dims);
        sp->value = fx->dtype == RM_I64 ? fx : NULL;
    }
    return 0;
}

int rm_eng_setup_input(struct rm_plan *p, int vi, struct rm_error *err)
{
    struct val *v = &p->vals[vi];
    const struct rm_value *gv = &p->g->values[vi];
    const Onnx__TypeProto__Tensor *tt = NULL;
    int rc = input_type(p->g, vi, &tt, err);
    if (rc)
        return rc;
    v->dtype = rm_dtype_host(tt->elem_type); /* carried as float32 or int64 (rm_engine.h) */
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
    memcpy(v->buf, fx->data, (size_t)v->numel * rm_eng_dtype_bytes(v->dtype));
    v->stamp = ++p->stamp;
    if (v->dtype == RM_F32) {
        v->set_by_user = 1;
        return 0;
    }
    v->kind = V_CONST;
    return 1;
}

