/* ConvTranspose (1-D to 3-D, groups, dilations, output_padding, output_shape,
 * auto_pad): geometry, shape rule, MAC count and the C kernel (the engine runs it on
 * oneDNN's deconvolution, engine/plan_deconv.c; the kernel is the fallback).
 *
 * Along each spatial axis the full transposed convolution has
 *   full = stride * (in - 1) + output_padding + (kernel - 1) * dilation + 1
 * elements; pads crop pl from its start and pr from its end. output_shape fixes the
 * output size and derives the pads from it (the extra element of an odd total at the
 * end for SAME_UPPER, at the start otherwise, as the ONNX spec says); an output_shape
 * past the full size adds elements only the bias reaches, at the end (onnxruntime's
 * reading: pr is then negative). SAME_UPPER / SAME_LOWER without output_shape aim at
 * in * stride. */
#include "rm_ops_int.h"

#include <stdio.h>
#include <string.h>

#define WHY(code, ...) (snprintf(why, why_size, __VA_ARGS__), (code))
#define ATTR_MAX ((int64_t)1 << 31)

int rm_deconv_of(const Onnx__NodeProto *np, int rank, const int64_t *dims, const int64_t *wdims,
                 struct rm_deconv *dc, char *why, size_t why_size)
{
    int sp = rank - 2;
    size_t ns, nd, npd, nop, nos, nk;
    const int64_t *st = rm_node_attr_ints(np, "strides", &ns);
    const int64_t *di = rm_node_attr_ints(np, "dilations", &nd);
    const int64_t *pa = rm_node_attr_ints(np, "pads", &npd);
    const int64_t *op = rm_node_attr_ints(np, "output_padding", &nop);
    const int64_t *os = rm_node_attr_ints(np, "output_shape", &nos);
    const int64_t *ks = rm_node_attr_ints(np, "kernel_shape", &nk);
    char ap[32];
    rm_attr_string(np, "auto_pad", ap, sizeof ap, "NOTSET");
    memset(dc, 0, sizeof *dc);
    if (sp < 1 || sp > 3)
        return WHY(sp < 1 ? RM_EFORMAT : RM_EUNSUPPORTED, "input rank %d: 1-D to 3-D transposed convolutions only",
                   rank);
    if ((st && ns != (size_t)sp) || (di && nd != (size_t)sp) || (pa && npd != 2 * (size_t)sp) ||
        (op && nop != (size_t)sp) || (ks && nk != (size_t)sp) || (os && nos != (size_t)sp && nos != (size_t)rank))
        return WHY(RM_EFORMAT, "strides, dilations, pads, output_padding, kernel_shape or output_shape do not match "
                               "%d spatial axes", sp);
    int upper = !strcmp(ap, "SAME_UPPER"), same = upper || !strcmp(ap, "SAME_LOWER"), valid = !strcmp(ap, "VALID");
    if (!same && !valid && strcmp(ap, "NOTSET"))
        return WHY(RM_EFORMAT, "unknown auto_pad '%s'", ap);
    dc->sp = sp;
    dc->group = rm_node_attr_int(np, "group", 1);
    if (dc->group <= 0 || dc->group > ATTR_MAX)
        return WHY(RM_EFORMAT, "group must be positive");
    if (os && nos == (size_t)rank)
        os += 2; /* the full output shape: its spatial part */
    for (int i = 0; i < sp; i++) {
        int64_t in = dims[2 + i], k = ks ? ks[i] : wdims[2 + i];
        if (ks && wdims[2 + i] >= 0 && ks[i] != wdims[2 + i])
            return WHY(RM_EFORMAT, "kernel_shape does not match the weight");
        dc->k[i] = k;
        dc->s[i] = st ? st[i] : 1;
        dc->d[i] = di ? di[i] : 1;
        int64_t adj = op ? op[i] : 0;
        if (dc->s[i] <= 0 || dc->d[i] <= 0 || dc->s[i] > ATTR_MAX || dc->d[i] > ATTR_MAX || (k >= 0 && (k == 0 || k > ATTR_MAX)))
            return WHY(RM_EFORMAT, "kernel, strides and dilations must be positive and below 2^31");
        if (adj < 0 || adj > ATTR_MAX || (pa && (pa[i] < 0 || pa[i + sp] < 0 || pa[i] > ATTR_MAX || pa[i + sp] > ATTR_MAX)))
            return WHY(RM_EFORMAT, "pads and output_padding must be from 0 to 2^31");
        if (adj >= dc->s[i] && adj >= dc->d[i])
            return WHY(RM_EFORMAT, "output_padding %lld must be smaller than the stride or the dilation",
                       (long long)adj);
        if (os && (os[i] < 0 || os[i] > ATTR_MAX * ATTR_MAX))
            return WHY(RM_EFORMAT, "output_shape %lld is out of range", (long long)os[i]);
        if (in < 0 || k < 0) {
            dc->out[i] = os ? os[i] : -1;
            continue;
        }
        if (in == 0)
            return WHY(RM_EFORMAT, "spatial axis %d is empty", i);
        if (in > ATTR_MAX * ATTR_MAX / dc->s[i])
            return WHY(RM_EFORMAT, "output too large");
        /* every term below 2^62 */
        int64_t full = dc->s[i] * (in - 1) + adj + (k - 1) * dc->d[i] + 1;
        int64_t want = os ? os[i] : same ? in * dc->s[i] : -1;
        if (want >= 0) {
            int64_t total = full - want;
            if (total < 0 && !os)
                total = 0; /* SAME that cannot reach in * stride keeps the full size */
            if (total < 0) {
                dc->pl[i] = 0;
                dc->pr[i] = total;
            } else if (upper) {
                dc->pl[i] = total / 2;
                dc->pr[i] = total - total / 2;
            } else {
                dc->pl[i] = total - total / 2;
                dc->pr[i] = total / 2;
            }
        } else if (!valid && pa) {
            dc->pl[i] = pa[i];
            dc->pr[i] = pa[i + sp];
        }
        dc->out[i] = full - dc->pl[i] - dc->pr[i];
        if (dc->out[i] <= 0)
            return WHY(RM_EFORMAT, "pads (%lld, %lld) leave no output of the %lld the transposed convolution makes",
                       (long long)dc->pl[i], (long long)dc->pr[i], (long long)full);
    }
    return 0;
}

int rm_shape_conv_transpose(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0), *w = rm_s_in(s, 1), *b = rm_s_in(s, 2);
    if (!x || !w)
        return 0;
    if (w->rank != x->rank || x->rank < 3)
        return rm_s_bad(s, "weight rank %d does not match the input rank %d (at least 3)", w->rank, x->rank);
    struct rm_deconv dc;
    char why[200];
    int rc = rm_deconv_of(s->np, x->rank, x->dims, w->dims, &dc, why, sizeof why);
    if (rc)
        return rc == RM_EFORMAT ? rm_s_bad(s, "%s", why) : rm_s_unsupported(s, "%s", why);
    if (x->dims[1] >= 0 && w->dims[0] >= 0 && x->dims[1] != w->dims[0])
        /* reported, then the output is still derived from the weight (as for Conv) */
        rm_s_bad(s, "input has %lld channels, weight expects %lld", (long long)x->dims[1], (long long)w->dims[0]);
    if (w->dims[0] >= 0 && w->dims[0] % dc.group)
        return rm_s_bad(s, "%lld input channels do not divide into %lld groups", (long long)w->dims[0],
                        (long long)dc.group);
    int64_t oc = -1;
    if (w->dims[1] >= 0) {
        if (w->dims[1] > INT64_MAX / dc.group)
            return rm_s_bad(s, "too many output channels");
        oc = w->dims[1] * dc.group;
    }
    if (b && (b->rank != 1 || (b->dims[0] >= 0 && oc >= 0 && b->dims[0] != oc)))
        rm_s_bad(s, "bias must have %lld values", (long long)oc);
    int64_t dims[RM_MAX_RANK];
    dims[0] = x->dims[0];
    dims[1] = oc;
    for (int i = 0; i < dc.sp; i++)
        dims[2 + i] = dc.out[i];
    rm_s_out(s, 0, x->elem_type, x->rank, dims);
    return 0;
}

/* Each input element: C_out/group * kernel volume multiply-accumulates. */
int64_t rm_macs_conv_transpose(const struct rm_graph *g, int node)
{
    const struct rm_node *n = &g->nodes[node];
    if (n->proto->n_input < 2 || n->inputs[0] < 0 || n->inputs[1] < 0)
        return -1;
    const struct rm_value *x = &g->values[n->inputs[0]], *w = &g->values[n->inputs[1]];
    int64_t nx, per;
    if (x->rank < 0 || w->rank < 2 || rm_dims_numel(x->dims, (size_t)x->rank, &nx) ||
        rm_dims_numel(w->dims + 1, (size_t)w->rank - 1, &per))
        return -1;
    if (nx < 0 || per < 0 || (per && nx > INT64_MAX / per))
        return -1;
    return nx * per;
}

int rm_kernel_conv_transpose(const struct rm_kcall *k)
{
    const struct rm_host_tensor *x = k->in[0], *w = k->in[1], *b = k->n_in > 2 ? k->in[2] : NULL;
    struct rm_host_tensor *o = k->out[0];
    struct rm_deconv dc;
    char why[200];
    if (x->dtype != RM_F32 || w->dtype != RM_F32 || (b && b->dtype != RM_F32))
        return rm_k_err(k, RM_EUNSUPPORTED, "only float32 is supported");
    if (w->rank != x->rank || x->rank < 3)
        return rm_k_err(k, RM_EFORMAT, "weight rank does not match the input rank");
    int rc = rm_deconv_of(k->np, x->rank, x->dims, w->dims, &dc, why, sizeof why);
    if (rc)
        return rm_k_err(k, rc, "%s", why);
    int sp = dc.sp;
    int64_t N = x->dims[0], IC = x->dims[1], G = dc.group, ICg = IC / G, OCg = w->dims[1], OC = OCg * G;
    if (w->dims[0] != IC || IC % G || o->dims[1] != OC || (b && b->numel != OC))
        return rm_k_err(k, RM_EFORMAT, "channels of input, weight, bias and output disagree");
    for (int i = 0; i < sp; i++)
        if (o->dims[2 + i] != dc.out[i])
            return rm_k_err(k, RM_EFORMAT, "output shape disagrees with the attributes");
    int64_t isz = 1, osz = 1, ksz = 1;
    for (int i = 0; i < sp; i++) {
        isz *= x->dims[2 + i];
        osz *= o->dims[2 + i];
        ksz *= w->dims[2 + i];
    }
    const float *xs = x->data, *ws = w->data, *bs = b ? b->data : NULL;
    float *y = o->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < OC; c++)
            for (int64_t e = 0; e < osz; e++)
                y[(n * OC + c) * osz + e] = bs ? bs[c] : 0;
    /* scatter: input position ip, kernel position kp write output position
     * ip * stride + kp * dilation - pl on each axis */
    int64_t ip[3], kp[3];
    for (int64_t n = 0; n < N; n++)
        for (int64_t ic = 0; ic < IC; ic++) {
            int64_t g = ic / ICg;
            const float *xrow = xs + (n * IC + ic) * isz;
            memset(ip, 0, sizeof ip);
            for (int64_t e = 0; e < isz; e++) {
                float xv = xrow[e];
                if (xv != 0) {
                    memset(kp, 0, sizeof kp);
                    for (int64_t f = 0; f < ksz; f++) {
                        int64_t off = 0;
                        bool inside = true;
                        for (int i = 0; i < sp && inside; i++) {
                            int64_t q = ip[i] * dc.s[i] + kp[i] * dc.d[i] - dc.pl[i];
                            inside = q >= 0 && q < dc.out[i];
                            off = off * dc.out[i] + q;
                        }
                        if (inside) {
                            const float *wr = ws + ic * OCg * ksz + f;
                            float *yr = y + (n * OC + g * OCg) * osz + off;
                            for (int64_t c = 0; c < OCg; c++)
                                yr[c * osz] += xv * wr[c * ksz];
                        }
                        rm_next_index(sp, w->dims + 2, kp);
                    }
                }
                rm_next_index(sp, x->dims + 2, ip);
            }
        }
    return 0;
}
