/* Comparisons and logic: Equal, Less, Greater, LessOrEqual, GreaterOrEqual, Not, And,
 * Or, Xor, Where. Bool tensors are carried as int64 0/1 (see rm_engine.h); the shape
 * rules still give them the type BOOL. Shape rules and C kernels. */
#include "rm_ops_int.h"

#include <string.h>

#define BOOL_T ONNX__TENSOR_PROTO__DATA_TYPE__BOOL

/* ---- shape rules ------------------------------------------------------------------ */

/* two inputs of one type, broadcast; a bool output */
int rm_shape_compare(struct rm_snode *s)
{
    int rank;
    int64_t dims[RM_MAX_RANK];
    int32_t et;
    if (s->np->n_input != 2)
        return rm_s_bad(s, "needs 2 inputs, has %zu", s->np->n_input);
    if (!rm_s_broadcast(s, 0, 2, true, &et, &rank, dims))
        rm_s_out(s, 0, BOOL_T, rank, dims);
    return 0;
}

/* And, Or, Xor: two bool inputs */
int rm_shape_logic(struct rm_snode *s)
{
    for (size_t k = 0; k < 2; k++) {
        const struct rm_value *v = rm_s_in(s, k);
        if (v && v->elem_type && v->elem_type != BOOL_T)
            return rm_s_bad(s, "input %zu is %s, not bool", k, rm_dtype_name(v->elem_type));
    }
    return rm_shape_compare(s);
}

int rm_shape_not(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    if (!x)
        return 0;
    if (x->elem_type && x->elem_type != BOOL_T)
        return rm_s_bad(s, "input is %s, not bool", rm_dtype_name(x->elem_type));
    rm_s_out(s, 0, BOOL_T, x->rank, x->dims);
    return 0;
}

/* Where(condition, X, Y): the three broadcast; X's type */
int rm_shape_where(struct rm_snode *s)
{
    int rank;
    int64_t dims[RM_MAX_RANK];
    int32_t et;
    if (s->np->n_input != 3)
        return rm_s_bad(s, "needs 3 inputs, has %zu", s->np->n_input);
    const struct rm_value *c = rm_s_in(s, 0), *x = rm_s_in(s, 1), *y = rm_s_in(s, 2);
    if (c && c->elem_type && c->elem_type != BOOL_T)
        return rm_s_bad(s, "condition is %s, not bool", rm_dtype_name(c->elem_type));
    if (x && y && x->elem_type && y->elem_type && x->elem_type != y->elem_type)
        return rm_s_bad(s, "X and Y differ in type (%s and %s)", rm_dtype_name(x->elem_type),
                        rm_dtype_name(y->elem_type));
    if (!rm_s_broadcast(s, 0, 3, false, &et, &rank, dims))
        rm_s_out(s, 0, x->elem_type, rank, dims);
    return 0;
}

/* ---- kernels ------------------------------------------------------------------------ */

/* o = EXPR(a, b) over the rows of bc, o int64 (bool) */
#define CMP_LOOP(T, EXPR)                                                                    \
    do {                                                                                     \
        const T *pa_ = (const T *)a_t->data, *pb_ = (const T *)b_t->data;                    \
        int64_t *o_ = (int64_t *)o->data;                                                    \
        int64_t sa_ = bc.st[0][bc.rank - 1], sb_ = bc.st[1][bc.rank - 1];                    \
        for (int64_t r_ = 0; r_ < bc.rows; r_++, rm_bcast_next(&bc)) {                       \
            const T *xa_ = pa_ + bc.off[0], *xb_ = pb_ + bc.off[1];                          \
            int64_t *y_ = o_ + r_ * bc.inner;                                                \
            for (int64_t j_ = 0; j_ < bc.inner; j_++) {                                      \
                T a = xa_[j_ * sa_], b = xb_[j_ * sb_];                                      \
                y_[j_] = (EXPR) ? 1 : 0;                                                     \
            }                                                                                \
        }                                                                                    \
    } while (0)

int rm_kernel_compare(const struct rm_kcall *k)
{
    const struct rm_host_tensor *a_t = k->in[0], *b_t = k->n_in > 1 ? k->in[1] : NULL;
    struct rm_host_tensor *o = k->out[0];
    struct rm_bcast bc;
    if (!b_t)
        return rm_k_err(k, RM_EFORMAT, "needs 2 inputs");
    if (a_t->dtype != b_t->dtype)
        return rm_k_err(k, RM_EFORMAT, "inputs differ in type");
    const struct rm_host_tensor *in[2] = {a_t, b_t};
    rm_bcast_init(&bc, o, 2, in);
    if (o->numel == 0)
        return 0;
    if (a_t->dtype == RM_F32) {
        switch (k->op) {
        case RM_OP_EQUAL: CMP_LOOP(float, a == b); break;
        case RM_OP_LESS: CMP_LOOP(float, a < b); break;
        case RM_OP_GREATER: CMP_LOOP(float, a > b); break;
        case RM_OP_LESS_OR_EQUAL: CMP_LOOP(float, a <= b); break;
        case RM_OP_GREATER_OR_EQUAL: CMP_LOOP(float, a >= b); break;
        default: return rm_k_err(k, RM_EUNSUPPORTED, "float inputs are not supported");
        }
        return 0;
    }
    switch (k->op) {
    case RM_OP_EQUAL: CMP_LOOP(int64_t, a == b); break;
    case RM_OP_LESS: CMP_LOOP(int64_t, a < b); break;
    case RM_OP_GREATER: CMP_LOOP(int64_t, a > b); break;
    case RM_OP_LESS_OR_EQUAL: CMP_LOOP(int64_t, a <= b); break;
    case RM_OP_GREATER_OR_EQUAL: CMP_LOOP(int64_t, a >= b); break;
    case RM_OP_AND: CMP_LOOP(int64_t, a && b); break;
    case RM_OP_OR: CMP_LOOP(int64_t, a || b); break;
    case RM_OP_XOR: CMP_LOOP(int64_t, !a != !b); break;
    default: return rm_k_err(k, RM_EUNSUPPORTED, "no C kernel");
    }
    return 0;
}

int rm_kernel_not(const struct rm_kcall *k)
{
    const struct rm_host_tensor *x = k->in[0];
    if (x->dtype != RM_I64)
        return rm_k_err(k, RM_EFORMAT, "input is not bool");
    const int64_t *s = x->data;
    int64_t *d = k->out[0]->data;
    for (int64_t i = 0; i < x->numel; i++)
        d[i] = !s[i];
    return 0;
}

int rm_kernel_where(const struct rm_kcall *k)
{
    struct rm_host_tensor *o = k->out[0];
    struct rm_bcast bc;
    if (k->n_in != 3 || !k->in[0] || !k->in[1] || !k->in[2])
        return rm_k_err(k, RM_EFORMAT, "needs 3 inputs");
    const struct rm_host_tensor *c = k->in[0], *x = k->in[1], *y = k->in[2];
    if (c->dtype != RM_I64 || x->dtype != o->dtype || y->dtype != o->dtype)
        return rm_k_err(k, RM_EFORMAT, "input types do not fit (a bool condition, X and Y of one type)");
    rm_bcast_init(&bc, o, 3, k->in);
    if (o->numel == 0)
        return 0;
    size_t es = o->dtype == RM_I64 ? 8 : 4;
    const int64_t *cd = c->data;
    const char *xd = x->data, *yd = y->data;
    char *od = o->data;
    int last = bc.rank - 1;
    for (int64_t r = 0; r < bc.rows; r++, rm_bcast_next(&bc))
        for (int64_t j = 0; j < bc.inner; j++) {
            int64_t t = bc.off[0] + j * bc.st[0][last];
            const char *src = cd[t] ? xd + (size_t)(bc.off[1] + j * bc.st[1][last]) * es
                                    : yd + (size_t)(bc.off[2] + j * bc.st[2][last]) * es;
            memcpy(od + (size_t)(r * bc.inner + j) * es, src, es);
        }
    return 0;
}
