/* Shape rules and plain C kernels of the engine: every supported op has a shape rule;
 * shape/index ops, broadcasting arithmetic on int64, and the rare cases oneDNN does
 * not cover run here on plain row-major buffers. Errors go to p->err. */
#include "rm_engine_int.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR(code, ...) rm_eng_node_err(p, node, code, __VA_ARGS__)

struct val *rm_eng_in(struct rm_plan *p, int node, size_t k)
{
    const struct rm_node *n = &p->g->nodes[node];
    if (k >= n->proto->n_input || n->inputs[k] < 0)
        return NULL;
    return &p->vals[n->inputs[k]];
}

struct val *rm_eng_out(struct rm_plan *p, int node, size_t k)
{
    const struct rm_node *n = &p->g->nodes[node];
    if (k >= n->proto->n_output || n->outputs[k] < 0)
        return NULL;
    return &p->vals[n->outputs[k]];
}

static const Onnx__NodeProto *NP(struct rm_plan *p, int node)
{
    return p->g->nodes[node].proto;
}

static int set_shape(struct rm_plan *p, int node, struct val *o, int32_t dt, int rank,
                     const int64_t *dims)
{
    if (rank < 0 || rank > RM_MAX_RANK)
        return ERR(RM_EUNSUPPORTED, "output rank %d is above %d", rank, RM_MAX_RANK);
    o->dtype = dt;
    o->rank = rank;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return ERR(RM_EFORMAT, "output dimension %d is negative (%lld)", i, (long long)dims[i]);
        o->dims[i] = dims[i];
    }
    if (rm_dims_numel(o->dims, (size_t)rank, &o->numel) || o->numel > ((int64_t)1 << 36))
        return ERR(RM_EFORMAT, "output is too large");
    return 0;
}

/* Constant int64 contents of input k; NULL unless known at plan time. */
static const int64_t *const_ints(struct rm_plan *p, int node, size_t k, int64_t *n)
{
    struct val *v = rm_eng_in(p, node, k);
    if (!v || v->kind != V_CONST || v->dtype != RM_I64)
        return NULL;
    *n = v->numel;
    return v->plain;
}

static int norm_axis(int64_t *a, int rank)
{
    if (*a < 0)
        *a += rank;
    return *a < 0 || *a >= rank ? -1 : 0;
}

static int attr_string(const Onnx__NodeProto *np, const char *name, char *buf, size_t n,
                       const char *def)
{
    const Onnx__AttributeProto *a = rm_node_attr(np, name);
    if (!a || !a->has_s) {
        snprintf(buf, n, "%s", def);
        return 0;
    }
    size_t l = a->s.len < n - 1 ? a->s.len : n - 1;
    memcpy(buf, a->s.data, l);
    buf[l] = '\0';
    return 1;
}

/* ---- windows ----------------------------------------------------------------- */

int rm_eng_window(struct rm_plan *p, int node, const struct val *x, const int64_t *kernel,
                  struct rm_window *w)
{
    const Onnx__NodeProto *np = NP(p, node);
    int sp = x->rank - 2;
    size_t ns, nd, npd;
    const int64_t *st = rm_node_attr_ints(np, "strides", &ns);
    const int64_t *di = rm_node_attr_ints(np, "dilations", &nd);
    const int64_t *pa = rm_node_attr_ints(np, "pads", &npd);
    char ap[32];
    attr_string(np, "auto_pad", ap, sizeof ap, "NOTSET");
    if (sp < 1)
        return ERR(RM_EFORMAT, "input has rank %d, needs at least 3", x->rank);
    if ((st && ns != (size_t)sp) || (di && nd != (size_t)sp) || (pa && npd != 2 * (size_t)sp))
        return ERR(RM_EFORMAT, "strides, dilations or pads do not match %d spatial axes", sp);
    w->sp = sp;
    w->ceil_mode = (int)rm_node_attr_int(np, "ceil_mode", 0);
    for (int i = 0; i < sp; i++) {
        int64_t in = x->dims[2 + i];
        w->k[i] = kernel[i];
        w->s[i] = st ? st[i] : 1;
        w->d[i] = di ? di[i] : 1;
        if (w->k[i] <= 0 || w->s[i] <= 0 || w->d[i] <= 0)
            return ERR(RM_EFORMAT, "kernel, strides and dilations must be positive");
        if (w->k[i] > INT32_MAX || w->s[i] > INT32_MAX || w->d[i] > INT32_MAX ||
            (pa && (pa[i] > INT32_MAX || pa[i + sp] > INT32_MAX)))
            return ERR(RM_EFORMAT, "kernel, strides, dilations or pads out of range");
        int64_t eff = (w->k[i] - 1) * w->d[i] + 1;
        if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
            w->out[i] = (in + w->s[i] - 1) / w->s[i];
            int64_t total = (w->out[i] - 1) * w->s[i] + eff - in;
            if (total < 0)
                total = 0;
            w->pl[i] = !strcmp(ap, "SAME_UPPER") ? total / 2 : (total + 1) / 2;
            w->pr[i] = total - w->pl[i];
            continue;
        }
        if (!strcmp(ap, "VALID")) {
            w->pl[i] = w->pr[i] = 0;
        } else if (!strcmp(ap, "NOTSET")) {
            w->pl[i] = pa ? pa[i] : 0;
            w->pr[i] = pa ? pa[i + sp] : 0;
            if (w->pl[i] < 0 || w->pr[i] < 0)
                return ERR(RM_EFORMAT, "negative pads");
            /* a pooling window wholly inside padding pools nothing (onnxruntime refuses
             * it too); fuzzing found pads of 2097151 asking for a 3.4 GB output */
            if (!rm_eng_is(p, node, RM_OP_CONV) && (w->pl[i] >= eff || w->pr[i] >= eff))
                return ERR(RM_EFORMAT, "pads (%lld, %lld) must be smaller than the pooling window (%lld)",
                           (long long)w->pl[i], (long long)w->pr[i], (long long)eff);
        } else {
            return ERR(RM_EFORMAT, "unknown auto_pad '%s'", ap);
        }
        int64_t num = in + w->pl[i] + w->pr[i] - eff;
        if (num < 0)
            return ERR(RM_EFORMAT, "window (%lld) larger than its padded input (%lld)", (long long)eff,
                       (long long)(in + w->pl[i] + w->pr[i]));
        int64_t o = (w->ceil_mode ? (num + w->s[i] - 1) / w->s[i] : num / w->s[i]) + 1;
        if (w->ceil_mode && (o - 1) * w->s[i] >= in + w->pl[i])
            o--;
        w->out[i] = o;
    }
    return 0;
}

/* ---- shape rules ------------------------------------------------------------- */

static int bcast(struct rm_plan *p, int node, const struct val *a, const struct val *b, int *rank,
                 int64_t *dims)
{
    int r = a->rank > b->rank ? a->rank : b->rank;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        int64_t x = ia >= 0 ? a->dims[ia] : 1, y = ib >= 0 ? b->dims[ib] : 1;
        if (x == y || y == 1)
            dims[i] = x;
        else if (x == 1)
            dims[i] = y;
        else
            return ERR(RM_EFORMAT, "inputs cannot be broadcast: %lld vs %lld on axis %d",
                       (long long)x, (long long)y, i);
    }
    *rank = r;
    return 0;
}

static int infer_reshape(struct rm_plan *p, int node, struct val *x, struct val *o)
{
    int64_t n;
    const int64_t *sh = const_ints(p, node, 1, &n);
    if (!sh)
        return ERR(RM_EUNSUPPORTED, "shape input is not a plan-time constant");
    if (n > RM_MAX_RANK)
        return ERR(RM_EUNSUPPORTED, "target rank %lld is above %d", (long long)n, RM_MAX_RANK);
    int allowzero = (int)rm_node_attr_int(NP(p, node), "allowzero", 0);
    int64_t dims[RM_MAX_RANK], known = 1;
    int at = -1;
    for (int64_t i = 0; i < n; i++) {
        dims[i] = sh[i];
        if (sh[i] == 0 && !allowzero) {
            if (i >= x->rank)
                return ERR(RM_EFORMAT, "shape copies dimension %lld of a rank-%d input", (long long)i,
                           x->rank);
            dims[i] = x->dims[i];
        }
        if (dims[i] == -1) {
            if (at >= 0)
                return ERR(RM_EFORMAT, "shape has two -1 entries");
            at = (int)i;
        } else if (dims[i] < 0) {
            return ERR(RM_EFORMAT, "invalid shape entry %lld", (long long)dims[i]);
        } else if (dims[i] && known > INT64_MAX / dims[i]) {
            return ERR(RM_EFORMAT, "shape entries multiply past int64");
        } else {
            known *= dims[i];
        }
    }
    if (at >= 0)
        dims[at] = known ? x->numel / known : 0;
    int64_t total;
    if (rm_dims_numel(dims, (size_t)n, &total) || total != x->numel)
        return ERR(RM_EFORMAT, "cannot reshape %lld elements to the requested shape",
                   (long long)x->numel);
    return set_shape(p, node, o, x->dtype, (int)n, dims);
}

/* Resolved Slice parameters per axis of the input. */
struct slice_par {
    int64_t start[RM_MAX_RANK], step[RM_MAX_RANK], count[RM_MAX_RANK];
};

static int slice_params(struct rm_plan *p, int node, const struct val *x, struct slice_par *sp)
{
    const Onnx__NodeProto *np = NP(p, node);
    int64_t ns = 0, ne = 0, na = 0, nst = 0;
    const int64_t *st, *en, *ax = NULL, *stp = NULL;
    if (p->g->opset < 10 && np->n_input == 1) {
        size_t a, b, c = 0;
        st = rm_node_attr_ints(np, "starts", &a);
        en = rm_node_attr_ints(np, "ends", &b);
        ax = rm_node_attr_ints(np, "axes", &c);
        ns = (int64_t)a, ne = (int64_t)b, na = (int64_t)c;
    } else {
        st = const_ints(p, node, 1, &ns);
        en = const_ints(p, node, 2, &ne);
        if (rm_eng_in(p, node, 3) && !(ax = const_ints(p, node, 3, &na)))
            return ERR(RM_EUNSUPPORTED, "axes input is not a plan-time constant");
        if (rm_eng_in(p, node, 4) && !(stp = const_ints(p, node, 4, &nst)))
            return ERR(RM_EUNSUPPORTED, "steps input is not a plan-time constant");
    }
    if (!st || !en)
        return ERR(RM_EUNSUPPORTED, "starts/ends are not plan-time constants");
    if (ns != ne || (ax && na != ns) || (stp && nst != ns))
        return ERR(RM_EFORMAT, "starts, ends, axes and steps differ in length");
    for (int i = 0; i < x->rank; i++) {
        sp->start[i] = 0;
        sp->step[i] = 1;
        sp->count[i] = x->dims[i];
    }
    for (int64_t j = 0; j < ns; j++) {
        int64_t a = ax ? ax[j] : j;
        if (norm_axis(&a, x->rank))
            return ERR(RM_EFORMAT, "axis %lld out of range", (long long)(ax ? ax[j] : j));
        int64_t d = x->dims[a], s = st[j], e = en[j], k = stp ? stp[j] : 1;
        if (k == 0)
            return ERR(RM_EFORMAT, "step is 0");
        if (s < 0)
            s += d;
        if (e < 0)
            e += d;
        if (k > 0) {
            s = s < 0 ? 0 : s > d ? d : s;
            e = e < 0 ? 0 : e > d ? d : e;
            sp->count[a] = e > s ? (e - s + k - 1) / k : 0;
        } else {
            s = s < 0 ? 0 : s > d - 1 ? d - 1 : s;
            e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
            sp->count[a] = s > e ? (s - e + (-k) - 1) / (-k) : 0;
        }
        sp->start[a] = s;
        sp->step[a] = k;
    }
    return 0;
}

/* Axes of Squeeze/Unsqueeze/ReduceMean from the attribute or input 1. */
static int axes_of(struct rm_plan *p, int node, int64_t *axes, int64_t *n, int *given)
{
    size_t c;
    const int64_t *a = rm_node_attr_ints(NP(p, node), "axes", &c);
    *given = 0;
    *n = 0;
    if (a) {
        *n = (int64_t)c;
    } else if (rm_eng_in(p, node, 1)) {
        a = const_ints(p, node, 1, n);
        if (!a)
            return ERR(RM_EUNSUPPORTED, "axes input is not a plan-time constant");
    } else {
        return 0;
    }
    if (*n > RM_MAX_RANK)
        return ERR(RM_EFORMAT, "too many axes");
    memcpy(axes, a, sizeof(int64_t) * (size_t)*n);
    *given = 1;
    return 0;
}

/* Pads (begin..., end...) of Pad for every input axis. */
static int pad_params(struct rm_plan *p, int node, const struct val *x, int64_t *pads)
{
    const Onnx__NodeProto *np = NP(p, node);
    int64_t n, na = 0;
    const int64_t *pv, *ax = NULL;
    size_t c;
    if ((pv = rm_node_attr_ints(np, "pads", &c)) != NULL && np->n_input < 2) {
        n = (int64_t)c;
    } else if (!(pv = const_ints(p, node, 1, &n))) {
        return ERR(RM_EUNSUPPORTED, "pads input is not a plan-time constant");
    }
    if (rm_eng_in(p, node, 3) && !(ax = const_ints(p, node, 3, &na)))
        return ERR(RM_EUNSUPPORTED, "axes input is not a plan-time constant");
    int64_t nax = ax ? na : x->rank;
    if (n != 2 * nax)
        return ERR(RM_EFORMAT, "pads has %lld entries, expected %lld", (long long)n,
                   (long long)(2 * nax));
    for (int i = 0; i < 2 * x->rank; i++)
        pads[i] = 0;
    for (int64_t j = 0; j < nax; j++) {
        int64_t a = ax ? ax[j] : j;
        if (norm_axis(&a, x->rank))
            return ERR(RM_EFORMAT, "axis out of range");
        pads[a] = pv[j];
        pads[a + x->rank] = pv[j + nax];
    }
    return 0;
}

int rm_eng_foldable(const struct rm_plan *p, int node)
{
    return (rm_op_def(p->g->nodes[node].op)->flags & RM_OPF_FOLD) != 0;
}

int rm_eng_infer(struct rm_plan *p, int node)
{
    const Onnx__NodeProto *np = NP(p, node);
    const char *op = np->op_type;
    struct val *x = rm_eng_in(p, node, 0), *o = rm_eng_out(p, node, 0);
    int64_t dims[RM_MAX_RANK];
    int rank = 0;

    if (!strcmp(op, "Constant")) {
        return 0; /* materialized by the planner */
    }
    if (!x)
        return ERR(RM_EFORMAT, "input 0 is missing");
    if (!strcmp(op, "Shape")) {
        int64_t s = rm_node_attr_int(np, "start", 0), e = rm_node_attr_int(np, "end", x->rank);
        if (s < 0)
            s += x->rank;
        if (e < 0)
            e += x->rank;
        s = s < 0 ? 0 : s > x->rank ? x->rank : s;
        e = e < 0 ? 0 : e > x->rank ? x->rank : e;
        dims[0] = e > s ? e - s : 0;
        return set_shape(p, node, o, RM_I64, 1, dims);
    }
    if (!strcmp(op, "Relu") || !strcmp(op, "LeakyRelu") || !strcmp(op, "Clip") ||
        !strcmp(op, "Sigmoid") || !strcmp(op, "HardSigmoid") || !strcmp(op, "HardSwish") ||
        !strcmp(op, "Identity") || !strcmp(op, "Dropout") || !strcmp(op, "Softmax") ||
        !strcmp(op, "BatchNormalization")) {
        if (np->n_output > 1)
            for (size_t k = 1; k < np->n_output; k++)
                if (np->output[k] && np->output[k][0])
                    return ERR(RM_EUNSUPPORTED, "output %zu (training outputs / mask) is not supported", k);
        if (!strcmp(op, "BatchNormalization") && rm_node_attr_int(np, "training_mode", 0))
            return ERR(RM_EUNSUPPORTED, "training mode is not supported");
        if (x->dtype != RM_F32 && strcmp(op, "Identity") && strcmp(op, "Dropout"))
            return ERR(RM_EUNSUPPORTED, "input type %s is not supported", rm_dtype_name(x->dtype));
        if (!strcmp(op, "BatchNormalization")) {
            if (x->rank < 2)
                return ERR(RM_EFORMAT, "input rank %d < 2", x->rank);
            for (size_t k = 1; k < 5; k++) {
                struct val *v = rm_eng_in(p, node, k);
                if (!v || v->numel != x->dims[1])
                    return ERR(RM_EFORMAT, "input %zu must have %lld values", k, (long long)x->dims[1]);
            }
        }
        return set_shape(p, node, o, x->dtype, x->rank, x->dims);
    }
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div")) {
        struct val *b = rm_eng_in(p, node, 1);
        if (!b)
            return ERR(RM_EFORMAT, "input 1 is missing");
        if (b->dtype != x->dtype)
            return ERR(RM_EFORMAT, "inputs differ in type");
        int rc = bcast(p, node, x, b, &rank, dims);
        return rc ? rc : set_shape(p, node, o, x->dtype, rank, dims);
    }
    if (x->dtype != RM_F32 && (!strcmp(op, "Conv") || !strcmp(op, "MaxPool") ||
                               !strcmp(op, "AveragePool") || !strcmp(op, "GlobalAveragePool") ||
                               !strcmp(op, "GlobalMaxPool") || !strcmp(op, "Gemm") ||
                               !strcmp(op, "MatMul") || !strcmp(op, "ReduceMean")))
        return ERR(RM_EUNSUPPORTED, "input type %s is not supported", rm_dtype_name(x->dtype));
    if (!strcmp(op, "Conv")) {
        struct val *w = rm_eng_in(p, node, 1), *b = rm_eng_in(p, node, 2);
        struct rm_window win;
        if (!w || w->rank != x->rank || x->rank < 3 || x->rank > 5)
            return ERR(RM_EUNSUPPORTED, "needs a weight of the input's rank (3..5)");
        int64_t g = rm_node_attr_int(np, "group", 1);
        if (g <= 0 || w->dims[0] % g || x->dims[1] != w->dims[1] * g)
            return ERR(RM_EFORMAT, "input has %lld channels, weight %lld x group %lld",
                       (long long)x->dims[1], (long long)w->dims[1], (long long)g);
        if (b && (b->rank != 1 || b->dims[0] != w->dims[0]))
            return ERR(RM_EFORMAT, "bias must have %lld values", (long long)w->dims[0]);
        size_t nk;
        const int64_t *ks = rm_node_attr_ints(np, "kernel_shape", &nk);
        if (ks && (nk != (size_t)x->rank - 2 || memcmp(ks, w->dims + 2, nk * sizeof *ks)))
            return ERR(RM_EFORMAT, "kernel_shape does not match the weight");
        int rc = rm_eng_window(p, node, x, w->dims + 2, &win);
        if (rc)
            return rc;
        dims[0] = x->dims[0];
        dims[1] = w->dims[0];
        for (int i = 0; i < win.sp; i++)
            dims[2 + i] = win.out[i];
        return set_shape(p, node, o, RM_F32, x->rank, dims);
    }
    if (!strcmp(op, "MaxPool") || !strcmp(op, "AveragePool")) {
        size_t nk;
        struct rm_window win;
        const int64_t *k = rm_node_attr_ints(np, "kernel_shape", &nk);
        if (!k || nk + 2 != (size_t)x->rank)
            return ERR(RM_EFORMAT, "kernel_shape missing or of the wrong length");
        int rc = rm_eng_window(p, node, x, k, &win);
        if (rc)
            return rc;
        memcpy(dims, x->dims, sizeof dims);
        for (int i = 0; i < win.sp; i++)
            dims[2 + i] = win.out[i];
        struct val *ix = rm_eng_out(p, node, 1);
        if (ix && (rc = set_shape(p, node, ix, RM_I64, x->rank, dims)))
            return rc;
        return set_shape(p, node, o, RM_F32, x->rank, dims);
    }
    if (!strcmp(op, "GlobalAveragePool") || !strcmp(op, "GlobalMaxPool")) {
        if (x->rank < 3)
            return ERR(RM_EFORMAT, "input rank %d < 3", x->rank);
        for (int i = 0; i < x->rank; i++)
            dims[i] = i < 2 ? x->dims[i] : 1;
        return set_shape(p, node, o, RM_F32, x->rank, dims);
    }
    if (!strcmp(op, "Gemm")) {
        struct val *b = rm_eng_in(p, node, 1), *c = rm_eng_in(p, node, 2);
        if (!b || x->rank != 2 || b->rank != 2)
            return ERR(RM_EFORMAT, "needs 2-D A and B");
        int ta = (int)rm_node_attr_int(np, "transA", 0), tb = (int)rm_node_attr_int(np, "transB", 0);
        if (x->dims[ta ? 0 : 1] != b->dims[tb ? 1 : 0])
            return ERR(RM_EFORMAT, "inner dimensions differ (%lld vs %lld)",
                       (long long)x->dims[ta ? 0 : 1], (long long)b->dims[tb ? 1 : 0]);
        dims[0] = x->dims[ta ? 1 : 0];
        dims[1] = b->dims[tb ? 0 : 1];
        if (c) {
            if (c->rank > 2)
                return ERR(RM_EFORMAT, "C has rank %d", c->rank);
            for (int i = 0; i < c->rank; i++) {
                int64_t cd = c->dims[i], od = dims[2 - c->rank + i];
                if (cd != 1 && cd != od)
                    return ERR(RM_EFORMAT, "C cannot be broadcast to the output");
            }
        }
        return set_shape(p, node, o, RM_F32, 2, dims);
    }
    if (!strcmp(op, "MatMul")) {
        struct val *b = rm_eng_in(p, node, 1);
        if (!b || x->rank < 1 || b->rank < 1)
            return ERR(RM_EFORMAT, "needs two inputs of rank >= 1");
        int64_t K1 = x->dims[x->rank - 1], K2 = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
        if (K1 != K2)
            return ERR(RM_EFORMAT, "inner dimensions differ (%lld vs %lld)", (long long)K1,
                       (long long)K2);
        int ra = x->rank < 2 ? 0 : x->rank - 2, rb = b->rank < 2 ? 0 : b->rank - 2;
        int r = ra > rb ? ra : rb;
        for (int i = 0; i < r; i++) {
            int ia = i - (r - ra), ib = i - (r - rb);
            int64_t u = ia >= 0 ? x->dims[ia] : 1, v = ib >= 0 ? b->dims[ib] : 1;
            if (u != v && u != 1 && v != 1)
                return ERR(RM_EFORMAT, "batch dimensions cannot be broadcast");
            dims[i] = u == 1 ? v : u;
        }
        rank = r;
        if (x->rank >= 2)
            dims[rank++] = x->dims[x->rank - 2];
        if (b->rank >= 2)
            dims[rank++] = b->dims[b->rank - 1];
        return set_shape(p, node, o, RM_F32, rank, dims);
    }
    if (!strcmp(op, "Flatten")) {
        int64_t axis = rm_node_attr_int(np, "axis", 1);
        if (axis < 0)
            axis += x->rank;
        if (axis < 0 || axis > x->rank)
            return ERR(RM_EFORMAT, "axis out of range");
        int64_t a = 1;
        for (int i = 0; i < axis; i++)
            a *= x->dims[i];
        dims[0] = a;
        dims[1] = a ? x->numel / a : 0;
        if (!a) {
            dims[1] = 1;
            for (int i = (int)axis; i < x->rank; i++)
                dims[1] *= x->dims[i];
        }
        return set_shape(p, node, o, x->dtype, 2, dims);
    }
    if (!strcmp(op, "Reshape"))
        return infer_reshape(p, node, x, o);
    if (!strcmp(op, "Transpose")) {
        size_t n;
        const int64_t *perm = rm_node_attr_ints(np, "perm", &n);
        int seen[RM_MAX_RANK] = {0};
        if (perm && n != (size_t)x->rank)
            return ERR(RM_EFORMAT, "perm has %zu entries for rank %d", n, x->rank);
        for (int i = 0; i < x->rank; i++) {
            int64_t q = perm ? perm[i] : x->rank - 1 - i;
            if (q < 0 || q >= x->rank || seen[q]++)
                return ERR(RM_EFORMAT, "perm is not a permutation");
            dims[i] = x->dims[q];
        }
        return set_shape(p, node, o, x->dtype, x->rank, dims);
    }
    if (!strcmp(op, "Concat")) {
        int64_t axis = rm_node_attr_int(np, "axis", 0);
        if (norm_axis(&axis, x->rank))
            return ERR(RM_EFORMAT, "axis out of range");
        memcpy(dims, x->dims, sizeof dims);
        for (size_t k = 1; k < np->n_input; k++) {
            struct val *v = rm_eng_in(p, node, k);
            if (!v || v->rank != x->rank || v->dtype != x->dtype)
                return ERR(RM_EFORMAT, "input %zu differs in rank or type", k);
            for (int i = 0; i < x->rank; i++)
                if (i != axis && v->dims[i] != x->dims[i])
                    return ERR(RM_EFORMAT, "input %zu has size %lld on axis %d, input 0 has %lld", k,
                               (long long)v->dims[i], i, (long long)x->dims[i]);
            dims[axis] += v->dims[axis];
        }
        return set_shape(p, node, o, x->dtype, x->rank, dims);
    }
    if (!strcmp(op, "Gather")) {
        struct val *ix = rm_eng_in(p, node, 1);
        int64_t axis = rm_node_attr_int(np, "axis", 0);
        if (!ix || ix->dtype != RM_I64)
            return ERR(RM_EUNSUPPORTED, "indices must be int64");
        if (norm_axis(&axis, x->rank))
            return ERR(RM_EFORMAT, "axis out of range");
        rank = 0;
        if (x->rank - 1 + ix->rank > RM_MAX_RANK)
            return ERR(RM_EUNSUPPORTED, "output rank above %d", RM_MAX_RANK);
        for (int i = 0; i < axis; i++)
            dims[rank++] = x->dims[i];
        for (int i = 0; i < ix->rank; i++)
            dims[rank++] = ix->dims[i];
        for (int i = (int)axis + 1; i < x->rank; i++)
            dims[rank++] = x->dims[i];
        return set_shape(p, node, o, x->dtype, rank, dims);
    }
    if (!strcmp(op, "Slice")) {
        struct slice_par sp;
        int rc = slice_params(p, node, x, &sp);
        return rc ? rc : set_shape(p, node, o, x->dtype, x->rank, sp.count);
    }
    if (!strcmp(op, "Squeeze")) {
        int64_t axes[RM_MAX_RANK], n;
        int given, drop[RM_MAX_RANK] = {0};
        int rc = axes_of(p, node, axes, &n, &given);
        if (rc)
            return rc;
        for (int64_t j = 0; j < n; j++) {
            if (norm_axis(&axes[j], x->rank) || x->dims[axes[j]] != 1)
                return ERR(RM_EFORMAT, "cannot squeeze axis %lld", (long long)axes[j]);
            drop[axes[j]] = 1;
        }
        rank = 0;
        for (int i = 0; i < x->rank; i++)
            if (!(given ? drop[i] : x->dims[i] == 1))
                dims[rank++] = x->dims[i];
        return set_shape(p, node, o, x->dtype, rank, dims);
    }
    if (!strcmp(op, "Unsqueeze")) {
        int64_t axes[RM_MAX_RANK], n;
        int given, ins[RM_MAX_RANK] = {0};
        int rc = axes_of(p, node, axes, &n, &given);
        if (rc)
            return rc;
        rank = x->rank + (int)n;
        if (!given || rank > RM_MAX_RANK)
            return ERR(RM_EFORMAT, "axes missing or output rank above %d", RM_MAX_RANK);
        for (int64_t j = 0; j < n; j++) {
            if (norm_axis(&axes[j], rank) || ins[axes[j]])
                return ERR(RM_EFORMAT, "bad axis %lld", (long long)axes[j]);
            ins[axes[j]] = 1;
        }
        for (int i = 0, k = 0; i < rank; i++)
            dims[i] = ins[i] ? 1 : x->dims[k++];
        return set_shape(p, node, o, x->dtype, rank, dims);
    }
    if (!strcmp(op, "ReduceMean")) {
        int64_t axes[RM_MAX_RANK], n;
        int given, red[RM_MAX_RANK] = {0};
        int keep = (int)rm_node_attr_int(np, "keepdims", 1);
        int noop = (int)rm_node_attr_int(np, "noop_with_empty_axes", 0);
        int rc = axes_of(p, node, axes, &n, &given);
        if (rc)
            return rc;
        for (int64_t j = 0; j < n; j++) {
            if (norm_axis(&axes[j], x->rank))
                return ERR(RM_EFORMAT, "axis out of range");
            red[axes[j]] = 1;
        }
        if (n == 0 && !noop)
            for (int i = 0; i < x->rank; i++)
                red[i] = 1;
        rank = 0;
        for (int i = 0; i < x->rank; i++) {
            if (!red[i])
                dims[rank++] = x->dims[i];
            else if (keep)
                dims[rank++] = 1;
        }
        return set_shape(p, node, o, x->dtype, rank, dims);
    }
    if (!strcmp(op, "Pad")) {
        int64_t pads[2 * RM_MAX_RANK];
        char mode[16];
        attr_string(np, "mode", mode, sizeof mode, "constant");
        if (strcmp(mode, "constant") && strcmp(mode, "reflect") && strcmp(mode, "edge"))
            return ERR(RM_EUNSUPPORTED, "mode '%s' is not supported", mode);
        int rc = pad_params(p, node, x, pads);
        if (rc)
            return rc;
        for (int i = 0; i < x->rank; i++) {
            dims[i] = x->dims[i] + pads[i] + pads[i + x->rank];
            if (dims[i] < 0)
                return ERR(RM_EFORMAT, "negative output size");
            if (dims[i] > 0 && x->dims[i] == 0 && strcmp(mode, "constant"))
                return ERR(RM_EFORMAT, "cannot %s-pad an empty axis", mode);
        }
        return set_shape(p, node, o, x->dtype, x->rank, dims);
    }
    return ERR(RM_EUNSUPPORTED, "op %s is not supported", op);
}

/* ---- C kernels --------------------------------------------------------------- */

/* Row-major strides of dims. */
static void strides_of(int rank, const int64_t *dims, int64_t *st)
{
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        st[i] = s;
        s *= dims[i];
    }
}

/* Advance a multi-index over dims; returns the axis that changed or -1 at the end. */
static void next_index(int rank, const int64_t *dims, int64_t *idx)
{
    for (int i = rank - 1; i >= 0; i--) {
        if (++idx[i] < dims[i])
            return;
        idx[i] = 0;
    }
}

static int k_binary(struct rm_plan *p, int node, const char *op)
{
    struct val *a = rm_eng_in(p, node, 0), *b = rm_eng_in(p, node, 1), *o = rm_eng_out(p, node, 0);
    int r = o->rank;
    int64_t sa[RM_MAX_RANK], sb[RM_MAX_RANK], ta[RM_MAX_RANK], tb[RM_MAX_RANK], idx[RM_MAX_RANK] = {0};
    strides_of(a->rank, a->dims, ta);
    strides_of(b->rank, b->dims, tb);
    /* broadcast strides: 0 where the input has size 1 */
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        sa[i] = ia >= 0 && a->dims[ia] != 1 ? ta[ia] : 0;
        sb[i] = ib >= 0 && b->dims[ib] != 1 ? tb[ib] : 0;
    }
    int kind = op[0] == 'A' ? 0 : op[0] == 'S' ? 1 : op[0] == 'M' ? 2 : 3;
    for (int64_t n = 0; n < o->numel; n++) {
        int64_t oa = 0, ob = 0;
        for (int i = 0; i < r; i++) {
            oa += idx[i] * sa[i];
            ob += idx[i] * sb[i];
        }
        if (o->dtype == RM_F32) {
            float x = ((float *)a->plain)[oa], y = ((float *)b->plain)[ob];
            ((float *)o->plain)[n] = kind == 0 ? x + y : kind == 1 ? x - y : kind == 2 ? x * y : x / y;
        } else {
            int64_t x = ((int64_t *)a->plain)[oa], y = ((int64_t *)b->plain)[ob], z;
            if (kind == 3 && y == 0)
                return ERR(RM_EFORMAT, "integer division by zero");
            if (kind == 0)
                z = (int64_t)((uint64_t)x + (uint64_t)y);
            else if (kind == 1)
                z = (int64_t)((uint64_t)x - (uint64_t)y);
            else if (kind == 2)
                z = (int64_t)((uint64_t)x * (uint64_t)y);
            else
                z = (x == INT64_MIN && y == -1) ? x : x / y;
            ((int64_t *)o->plain)[n] = z;
        }
        next_index(r, o->dims, idx);
    }
    return 0;
}

static float clip_bound(struct rm_plan *p, int node, size_t k, const char *attr, float def)
{
    struct val *v = rm_eng_in(p, node, k);
    if (v && v->numel >= 1 && v->dtype == RM_F32)
        return ((float *)v->plain)[0];
    return rm_node_attr_float(NP(p, node), attr, def);
}

static int k_unary(struct rm_plan *p, int node, const char *op)
{
    struct val *x = rm_eng_in(p, node, 0), *o = rm_eng_out(p, node, 0);
    const float *s = x->plain;
    float *d = o->plain;
    int64_t n = x->numel;
    const Onnx__NodeProto *np = NP(p, node);
    if (!strcmp(op, "Relu")) {
        for (int64_t i = 0; i < n; i++)
            d[i] = s[i] > 0 ? s[i] : 0;
    } else if (!strcmp(op, "LeakyRelu")) {
        float al = rm_node_attr_float(np, "alpha", 0.01f);
        for (int64_t i = 0; i < n; i++)
            d[i] = s[i] >= 0 ? s[i] : al * s[i];
    } else if (!strcmp(op, "Clip")) {
        float lo = clip_bound(p, node, 1, "min", -FLT_MAX), hi = clip_bound(p, node, 2, "max", FLT_MAX);
        for (int64_t i = 0; i < n; i++)
            d[i] = s[i] < lo ? lo : s[i] > hi ? hi : s[i];
    } else if (!strcmp(op, "Sigmoid")) {
        for (int64_t i = 0; i < n; i++)
            d[i] = 1.0f / (1.0f + expf(-s[i]));
    } else if (!strcmp(op, "HardSigmoid")) {
        float al = rm_node_attr_float(np, "alpha", 0.2f), be = rm_node_attr_float(np, "beta", 0.5f);
        for (int64_t i = 0; i < n; i++) {
            float v = al * s[i] + be;
            d[i] = v < 0 ? 0 : v > 1 ? 1 : v;
        }
    } else if (!strcmp(op, "HardSwish")) {
        for (int64_t i = 0; i < n; i++) {
            float v = s[i] / 6.0f + 0.5f;
            d[i] = s[i] * (v < 0 ? 0 : v > 1 ? 1 : v);
        }
    }
    return 0;
}

static int k_batchnorm(struct rm_plan *p, int node)
{
    struct val *x = rm_eng_in(p, node, 0), *o = rm_eng_out(p, node, 0);
    const float *sc = rm_eng_in(p, node, 1)->plain, *bi = rm_eng_in(p, node, 2)->plain;
    const float *mu = rm_eng_in(p, node, 3)->plain, *va = rm_eng_in(p, node, 4)->plain;
    float eps = rm_node_attr_float(NP(p, node), "epsilon", 1e-5f);
    int64_t C = x->dims[1], inner = 1;
    for (int i = 2; i < x->rank; i++)
        inner *= x->dims[i];
    const float *s = x->plain;
    float *d = o->plain;
    for (int64_t n = 0; n < x->dims[0]; n++)
        for (int64_t c = 0; c < C; c++) {
            float a = sc[c] / sqrtf(va[c] + eps), b = bi[c] - mu[c] * a;
            int64_t off = (n * C + c) * inner;
            for (int64_t i = 0; i < inner; i++)
                d[off + i] = s[off + i] * a + b;
        }
    return 0;
}

static int k_pool(struct rm_plan *p, int node)
{
    struct val *x = rm_eng_in(p, node, 0), *o = rm_eng_out(p, node, 0), *ixv = rm_eng_out(p, node, 1);
    const Onnx__NodeProto *np = NP(p, node);
    int is_max = rm_eng_is(p, node, RM_OP_MAX_POOL);
    int64_t *ix = ixv ? ixv->plain : NULL;
    int colmajor = (int)rm_node_attr_int(np, "storage_order", 0);
    int incl = (int)rm_node_attr_int(np, "count_include_pad", 0);
    size_t nk;
    const int64_t *k = rm_node_attr_ints(np, "kernel_shape", &nk);
    struct rm_window w;
    int rc = rm_eng_window(p, node, x, k, &w);
    if (rc)
        return rc;
    int sp = w.sp;
    int64_t xs[RM_MAX_RANK], idx[RM_MAX_RANK] = {0}, kidx[RM_MAX_RANK];
    strides_of(x->rank, x->dims, xs);
    const float *s = x->plain;
    float *d = o->plain;
    for (int64_t n = 0; n < o->numel; n++) {
        /* idx: output multi-index (N, C, spatial...) */
        int64_t base = idx[0] * xs[0] + idx[1] * xs[1];
        double acc = is_max ? -INFINITY : 0;
        int64_t cnt = 0, cnt_pad = 1, arg = -1;
        for (int i = 0; i < sp; i++) {
            /* the padded extent counted by count_include_pad stops at the explicit pads */
            int64_t st = idx[2 + i] * w.s[i] - w.pl[i];
            int64_t en = st + (w.k[i] - 1) * w.d[i] + 1;
            int64_t lim = x->dims[2 + i] + w.pr[i];
            if (en > lim)
                en = lim;
            cnt_pad *= (en - st + w.d[i] - 1) / w.d[i];
            kidx[i] = 0;
        }
        for (;;) {
            int inside = 1;
            int64_t off = base, col = 0, cs = 1;
            for (int i = 0; i < sp; i++) {
                int64_t c = idx[2 + i] * w.s[i] - w.pl[i] + kidx[i] * w.d[i];
                if (c < 0 || c >= x->dims[2 + i])
                    inside = 0;
                else
                    off += c * xs[2 + i];
                col += c * cs; /* storage_order 1: first spatial axis fastest */
                cs *= x->dims[2 + i];
            }
            if (inside) {
                float v = s[off];
                if (is_max) {
                    if (v > acc || arg < 0)
                        acc = v, arg = colmajor ? base + col : off;
                } else
                    acc += v;
                cnt++;
            }
            int i = sp - 1;
            for (; i >= 0; i--) {
                if (++kidx[i] < w.k[i])
                    break;
                kidx[i] = 0;
            }
            if (i < 0)
                break;
        }
        if (ix)
            ix[n] = arg;
        if (is_max)
            d[n] = (float)acc;
        else
            d[n] = (float)(acc / (double)(incl ? cnt_pad : (cnt ? cnt : 1)));
        next_index(o->rank, o->dims, idx);
    }
    return 0;
}

static int k_gemm(struct rm_plan *p, int node)
{
    struct val *a = rm_eng_in(p, node, 0), *b = rm_eng_in(p, node, 1), *c = rm_eng_in(p, node, 2);
    struct val *o = rm_eng_out(p, node, 0);
    const Onnx__NodeProto *np = NP(p, node);
    int ta = (int)rm_node_attr_int(np, "transA", 0), tb = (int)rm_node_attr_int(np, "transB", 0);
    float alpha = rm_node_attr_float(np, "alpha", 1.0f), beta = rm_node_attr_float(np, "beta", 1.0f);
    int64_t M = o->dims[0], N = o->dims[1], K = a->dims[ta ? 0 : 1];
    float *y = o->plain;
    if (c && beta != 0.0f) {
        int64_t cs0 = 0, cs1 = 0;
        if (c->rank == 2) {
            cs0 = c->dims[0] == 1 ? 0 : c->dims[1];
            cs1 = c->dims[1] == 1 ? 0 : 1;
        } else if (c->rank == 1) {
            cs1 = c->dims[0] == 1 ? 0 : 1;
        }
        const float *cv = c->plain;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++)
                y[i * N + j] = beta * cv[i * cs0 + j * cs1];
    } else {
        memset(y, 0, (size_t)o->numel * 4);
    }
    if (!M || !N || !K)
        return 0;
    dnnl_status_t s = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, a->plain, ta ? M : K,
                                 b->plain, tb ? K : N, 1.0f, y, N);
    if (s != dnnl_success)
        return ERR(RM_EUNSUPPORTED, "oneDNN: dnnl_sgemm failed (%s)", dnnl_status2str(s));
    return 0;
}

static int k_matmul(struct rm_plan *p, int node)
{
    struct val *a = rm_eng_in(p, node, 0), *b = rm_eng_in(p, node, 1), *o = rm_eng_out(p, node, 0);
    int64_t M = a->rank >= 2 ? a->dims[a->rank - 2] : 1, K = a->dims[a->rank - 1];
    int64_t N = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
    int ra = a->rank < 2 ? 0 : a->rank - 2, rb = b->rank < 2 ? 0 : b->rank - 2;
    int r = ra > rb ? ra : rb;
    int64_t bd[RM_MAX_RANK], sa[RM_MAX_RANK], sb[RM_MAX_RANK], idx[RM_MAX_RANK] = {0}, nb = 1;
    int64_t ta[RM_MAX_RANK], tb[RM_MAX_RANK];
    strides_of(ra, a->dims, ta);
    strides_of(rb, b->dims, tb);
    for (int i = 0; i < r; i++) {
        int ia = i - (r - ra), ib = i - (r - rb);
        int64_t u = ia >= 0 ? a->dims[ia] : 1, v = ib >= 0 ? b->dims[ib] : 1;
        bd[i] = u == 1 ? v : u;
        sa[i] = ia >= 0 && u != 1 ? ta[ia] * M * K : 0;
        sb[i] = ib >= 0 && v != 1 ? tb[ib] * K * N : 0;
        nb *= bd[i];
    }
    float *y = o->plain;
    if (!M || !N) {
        return 0;
    }
    for (int64_t t = 0; t < nb; t++) {
        int64_t oa = 0, ob = 0;
        for (int i = 0; i < r; i++) {
            oa += idx[i] * sa[i];
            ob += idx[i] * sb[i];
        }
        float *yy = y + t * M * N;
        if (!K) {
            memset(yy, 0, (size_t)(M * N) * 4);
        } else {
            dnnl_status_t s = dnnl_sgemm('N', 'N', M, N, K, 1.0f, (const float *)a->plain + oa, K,
                                         (const float *)b->plain + ob, N, 0.0f, yy, N);
            if (s != dnnl_success)
                return ERR(RM_EUNSUPPORTED, "oneDNN: dnnl_sgemm failed (%s)", dnnl_status2str(s));
        }
        next_index(r, bd, idx);
    }
    return 0;
}

static int k_softmax(struct rm_plan *p, int node)
{
    struct val *x = rm_eng_in(p, node, 0), *o = rm_eng_out(p, node, 0);
    int old = p->g->opset < 13;
    int64_t axis = rm_node_attr_int(NP(p, node), "axis", old ? 1 : -1);
    if (x->rank == 0) {
        ((float *)o->plain)[0] = 1.0f;
        return 0;
    }
    if (norm_axis(&axis, x->rank))
        return ERR(RM_EFORMAT, "axis out of range");
    int64_t outer = 1, D = 1, inner = 1;
    for (int i = 0; i < x->rank; i++) {
        if (i < axis)
            outer *= x->dims[i];
        else if (i == axis || old)
            D *= x->dims[i];
        else
            inner *= x->dims[i];
    }
    const float *s = x->plain;
    float *d = o->plain;
    for (int64_t a = 0; a < outer; a++)
        for (int64_t c = 0; c < inner; c++) {
            const float *sp = s + a * D * inner + c;
            float *dp = d + a * D * inner + c;
            float mx = -INFINITY;
            for (int64_t k = 0; k < D; k++)
                mx = sp[k * inner] > mx ? sp[k * inner] : mx;
            double sum = 0;
            for (int64_t k = 0; k < D; k++) {
                float e = expf(sp[k * inner] - mx);
                dp[k * inner] = e;
                sum += e;
            }
            for (int64_t k = 0; k < D; k++)
                dp[k * inner] = (float)(dp[k * inner] / sum);
        }
    return 0;
}

static int k_reducemean(struct rm_plan *p, int node)
{
    struct val *x = rm_eng_in(p, node, 0), *o = rm_eng_out(p, node, 0);
    int64_t axes[RM_MAX_RANK], n;
    int given, red[RM_MAX_RANK] = {0};
    int noop = (int)rm_node_attr_int(NP(p, node), "noop_with_empty_axes", 0);
    int rc = axes_of(p, node, axes, &n, &given);
    if (rc)
        return rc;
    for (int64_t j = 0; j < n; j++) {
        norm_axis(&axes[j], x->rank);
        red[axes[j]] = 1;
    }
    if (n == 0 && !noop)
        for (int i = 0; i < x->rank; i++)
            red[i] = 1;
    int64_t kd[RM_MAX_RANK], ks[RM_MAX_RANK], os[RM_MAX_RANK], idx[RM_MAX_RANK] = {0};
    for (int i = 0; i < x->rank; i++)
        kd[i] = red[i] ? 1 : x->dims[i];
    strides_of(x->rank, kd, ks);
    for (int i = 0; i < x->rank; i++)
        os[i] = red[i] ? 0 : ks[i];
    double *acc = calloc((size_t)(o->numel ? o->numel : 1), sizeof *acc);
    if (!acc)
        return ERR(RM_ENOMEM, "out of memory");
    const float *s = x->plain;
    for (int64_t t = 0; t < x->numel; t++) {
        int64_t off = 0;
        for (int i = 0; i < x->rank; i++)
            off += idx[i] * os[i];
        acc[off] += s[t];
        next_index(x->rank, x->dims, idx);
    }
    int64_t cnt = o->numel ? x->numel / o->numel : 1;
    for (int64_t t = 0; t < o->numel; t++)
        ((float *)o->plain)[t] = cnt ? (float)(acc[t] / (double)cnt) : NAN;
    free(acc);
    return 0;
}

static int k_pad(struct rm_plan *p, int node)
{
    struct val *x = rm_eng_in(p, node, 0), *o = rm_eng_out(p, node, 0);
    const Onnx__NodeProto *np = NP(p, node);
    int64_t pads[2 * RM_MAX_RANK], xs[RM_MAX_RANK], idx[RM_MAX_RANK] = {0};
    char mode[16];
    attr_string(np, "mode", mode, sizeof mode, "constant");
    int m = !strcmp(mode, "constant") ? 0 : !strcmp(mode, "reflect") ? 1 : 2;
    int rc = pad_params(p, node, x, pads);
    if (rc)
        return rc;
    double cval = rm_node_attr_float(np, "value", 0.0f);
    struct val *cv = rm_eng_in(p, node, 2);
    if (cv && cv->numel >= 1)
        cval = cv->dtype == RM_F32 ? ((float *)cv->plain)[0] : (double)((int64_t *)cv->plain)[0];
    strides_of(x->rank, x->dims, xs);
    for (int i = 0; i < x->rank; i++)
        if (m == 1 && x->dims[i] == 1 && (pads[i] > 0 || pads[i + x->rank] > 0))
            return ERR(RM_EFORMAT, "cannot reflect-pad an axis of size 1");
    for (int64_t t = 0; t < o->numel; t++) {
        int64_t off = 0;
        int outside = 0;
        for (int i = 0; i < x->rank; i++) {
            int64_t c = idx[i] - pads[i], d = x->dims[i];
            if (c < 0 || c >= d) {
                if (m == 0) {
                    outside = 1;
                    break;
                } else if (m == 2) {
                    c = c < 0 ? 0 : d - 1;
                } else {
                    int64_t period = 2 * (d - 1);
                    c = c < 0 ? -c : c;
                    c %= period;
                    if (c >= d)
                        c = period - c;
                }
            }
            off += c * xs[i];
        }
        if (x->dtype == RM_F32)
            ((float *)o->plain)[t] = outside ? (float)cval : ((float *)x->plain)[off];
        else
            ((int64_t *)o->plain)[t] = outside ? (int64_t)cval : ((int64_t *)x->plain)[off];
        next_index(o->rank, o->dims, idx);
    }
    return 0;
}

/* Gather elements of x at offsets start + i*step per axis (Slice, Transpose). The
 * innermost output axis is walked in a tight loop (a memcpy when contiguous). */
static void k_strided(const struct val *x, struct val *o, const int64_t *start, const int64_t *step,
                      const int64_t *perm)
{
    int64_t xs[RM_MAX_RANK], idx[RM_MAX_RANK] = {0}, ss[RM_MAX_RANK];
    size_t es = o->dtype == RM_I64 ? 8 : 4;
    strides_of(x->rank, x->dims, xs);
    /* output axis i walks input axis perm[i] */
    for (int i = 0; i < o->rank; i++)
        ss[i] = xs[perm[i]] * step[perm[i]];
    int64_t base = 0;
    for (int i = 0; i < x->rank; i++)
        base += start[i] * xs[i];
    if (o->numel == 0)
        return;
    if (o->rank == 0) {
        memcpy(o->plain, (const char *)x->plain + (size_t)base * es, es);
        return;
    }
    int last = o->rank - 1;
    int64_t inner = o->dims[last], is = ss[last], outer = o->numel / inner;
    const char *src = x->plain;
    char *dst = o->plain;
    for (int64_t t = 0; t < outer; t++) {
        int64_t off = base;
        for (int i = 0; i < last; i++)
            off += idx[i] * ss[i];
        char *d = dst + (size_t)(t * inner) * es;
        if (is == 1) {
            memcpy(d, src + (size_t)off * es, (size_t)inner * es);
        } else if (es == 4) {
            const float *sp = (const float *)src + off;
            float *dp = (float *)d;
            for (int64_t j = 0; j < inner; j++)
                dp[j] = sp[j * is];
        } else {
            const int64_t *sp = (const int64_t *)src + off;
            int64_t *dp = (int64_t *)d;
            for (int64_t j = 0; j < inner; j++)
                dp[j] = sp[j * is];
        }
        next_index(last, o->dims, idx);
    }
}

int rm_eng_kernel(struct rm_plan *p, int node)
{
    const Onnx__NodeProto *np = NP(p, node);
    const char *op = np->op_type;
    struct val *x = rm_eng_in(p, node, 0), *o = rm_eng_out(p, node, 0);
    size_t es = o && o->dtype == RM_I64 ? 8 : 4;
    int64_t zero[RM_MAX_RANK] = {0}, one[RM_MAX_RANK], perm[RM_MAX_RANK];
    for (int i = 0; i < RM_MAX_RANK; i++)
        one[i] = 1, perm[i] = i;

    if (!strcmp(op, "Shape")) {
        int64_t s = rm_node_attr_int(np, "start", 0);
        if (s < 0)
            s += x->rank;
        if (s < 0)
            s = 0;
        for (int64_t i = 0; i < o->numel; i++)
            ((int64_t *)o->plain)[i] = x->dims[s + i];
        return 0;
    }
    if (!strcmp(op, "Identity") || !strcmp(op, "Dropout") || !strcmp(op, "Flatten") ||
        !strcmp(op, "Reshape") || !strcmp(op, "Squeeze") || !strcmp(op, "Unsqueeze")) {
        memcpy(o->plain, x->plain, (size_t)o->numel * es);
        return 0;
    }
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div"))
        return k_binary(p, node, op);
    if (!strcmp(op, "Relu") || !strcmp(op, "LeakyRelu") || !strcmp(op, "Clip") ||
        !strcmp(op, "Sigmoid") || !strcmp(op, "HardSigmoid") || !strcmp(op, "HardSwish"))
        return k_unary(p, node, op);
    if (!strcmp(op, "BatchNormalization"))
        return k_batchnorm(p, node);
    if (!strcmp(op, "MaxPool") || !strcmp(op, "AveragePool"))
        return k_pool(p, node);
    if (!strcmp(op, "Gemm"))
        return k_gemm(p, node);
    if (!strcmp(op, "MatMul"))
        return k_matmul(p, node);
    if (!strcmp(op, "Softmax"))
        return k_softmax(p, node);
    if (!strcmp(op, "ReduceMean"))
        return k_reducemean(p, node);
    if (!strcmp(op, "Pad"))
        return k_pad(p, node);
    if (!strcmp(op, "Transpose")) {
        size_t n;
        const int64_t *pp = rm_node_attr_ints(np, "perm", &n);
        for (int i = 0; i < x->rank; i++)
            perm[i] = pp ? pp[i] : x->rank - 1 - i;
        k_strided(x, o, zero, one, perm);
        return 0;
    }
    if (!strcmp(op, "Slice")) {
        struct slice_par sp;
        int rc = slice_params(p, node, x, &sp);
        if (rc)
            return rc;
        k_strided(x, o, sp.start, sp.step, perm);
        return 0;
    }
    if (!strcmp(op, "Concat")) {
        int64_t axis = rm_node_attr_int(np, "axis", 0);
        norm_axis(&axis, x->rank);
        int64_t outer = 1, inner = 1;
        for (int i = 0; i < axis; i++)
            outer *= o->dims[i];
        for (int i = (int)axis + 1; i < o->rank; i++)
            inner *= o->dims[i];
        int64_t ooff = 0;
        for (size_t k = 0; k < np->n_input; k++) {
            struct val *v = rm_eng_in(p, node, k);
            int64_t chunk = v->dims[axis] * inner;
            for (int64_t a = 0; a < outer; a++)
                memcpy((char *)o->plain + (size_t)(a * o->dims[axis] * inner + ooff) * es,
                       (const char *)v->plain + (size_t)(a * chunk) * es, (size_t)chunk * es);
            ooff += chunk;
        }
        return 0;
    }
    if (!strcmp(op, "Gather")) {
        struct val *ix = rm_eng_in(p, node, 1);
        int64_t axis = rm_node_attr_int(np, "axis", 0);
        norm_axis(&axis, x->rank);
        int64_t outer = 1, inner = 1, D = x->dims[axis];
        for (int i = 0; i < axis; i++)
            outer *= x->dims[i];
        for (int i = (int)axis + 1; i < x->rank; i++)
            inner *= x->dims[i];
        const int64_t *id = ix->plain;
        for (int64_t a = 0; a < outer; a++)
            for (int64_t j = 0; j < ix->numel; j++) {
                int64_t q = id[j] < 0 ? id[j] + D : id[j];
                if (q < 0 || q >= D)
                    return ERR(RM_EFORMAT, "index %lld out of range for size %lld", (long long)id[j],
                               (long long)D);
                memcpy((char *)o->plain + (size_t)((a * ix->numel + j) * inner) * es,
                       (const char *)x->plain + (size_t)((a * D + q) * inner) * es, (size_t)inner * es);
            }
        return 0;
    }
    return ERR(RM_EUNSUPPORTED, "op %s has no C kernel", op);
}
