/* Resize (opsets 10-19) and Upsample (7-9): the parameters per axis, the shape rule,
 * interpolation taps and the C kernel. The engine runs the cases oneDNN's resampling
 * computes the same way on oneDNN (engine/plan_resample.c compares the taps below with
 * oneDNN's); everything else (cubic, align_corners, antialias, tf_crop_and_resize, the
 * other nearest modes) runs here, separably: one axis at a time, each output row a
 * weighted sum of a few input rows.
 *
 * Semantics follow the ONNX spec and its reference implementation: the coordinate of
 * output index y along an axis is computed in double from the scale (the given one, or
 * out/in when sizes are given), taps past the edges read the edge (or are dropped and
 * the rest renormalised with exclude_outside). Opsets below 11 have no
 * coordinate_transformation_mode: they are "asymmetric", and nearest rounds down when
 * upsampling an axis and up when downsampling it, as onnxruntime reads them. An axis
 * with scale 1 and its size kept is copied, whatever the mode (onnxruntime does the
 * same; tf_half_pixel_for_nn with round_prefer_ceil would otherwise shift the channels
 * of every image by one), except by tf_crop_and_resize, whose roi may crop it. */
#include "rm_ops_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHY(code, ...) (snprintf(why, why_size, __VA_ARGS__), (code))

/* Output sizes past this per axis are refused: no real model comes near, and hostile
 * scales or sizes must not overflow the arithmetic that follows. */
#define AXIS_MAX ((int64_t)1 << 40)

static int pick(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

void rm_resize_inputs(enum rm_op op, int64_t opset, int *roi, int *scales, int *sizes)
{
    *roi = *scales = *sizes = -1;
    if (op == RM_OP_UPSAMPLE) {
        if (opset >= 9)
            *scales = 1; /* Upsample-7/8 take the scales attribute */
    } else if (opset < 11) {
        *scales = 1;
    } else {
        *roi = 1;
        *scales = 2;
        *sizes = 3;
    }
}

/* Whether a constant input holds anything (an empty tensor stands for "absent"). */
static bool nonempty(const struct rm_host_tensor *t)
{
    return t && t->numel > 0;
}

int rm_resize_of(const Onnx__NodeProto *np, enum rm_op op, int64_t opset, int rank, const int64_t *dims,
                 const struct rm_resize_in *in, struct rm_resize *r, char *why, size_t why_size)
{
    static const char *const modes[] = {"nearest", "linear", "cubic"};
    static const char *const ctms[] = {"half_pixel",  "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                                       "asymmetric",  "tf_half_pixel_for_nn", "tf_crop_and_resize"};
    static const char *const nms[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    static const char *const policies[] = {"stretch", "not_larger", "not_smaller"};
    char buf[64];
    memset(r, 0, sizeof *r);
    if (rank < 1 || rank > RM_MAX_RANK)
        return WHY(RM_EFORMAT, "input rank %d cannot be resized", rank);
    r->rank = rank;
    bool old = op == RM_OP_UPSAMPLE || opset < 11;
    rm_attr_string(np, "mode", buf, sizeof buf, "nearest");
    r->mode = pick(buf, modes, old ? 2 : 3);
    if (r->mode < 0 && old && !strcmp(buf, "bilinear"))
        r->mode = RM_RS_LINEAR; /* Upsample's experimental spelling */
    if (r->mode < 0)
        return WHY(RM_EFORMAT, "unknown mode '%s'", buf);
    r->cubic_a = -0.75;
    int policy = 0;
    size_t n_axes = 0;
    const int64_t *axes_attr = NULL;
    if (old) {
        r->ctm = RM_CT_ASYMMETRIC;
        r->nearest = RM_NM_SIMPLE;
    } else {
        rm_attr_string(np, "coordinate_transformation_mode", buf, sizeof buf, "half_pixel");
        if ((r->ctm = pick(buf, ctms, 7)) < 0)
            return WHY(RM_EFORMAT, "unknown coordinate_transformation_mode '%s'", buf);
        rm_attr_string(np, "nearest_mode", buf, sizeof buf, "round_prefer_floor");
        if ((r->nearest = pick(buf, nms, 4)) < 0)
            return WHY(RM_EFORMAT, "unknown nearest_mode '%s'", buf);
        rm_attr_string(np, "keep_aspect_ratio_policy", buf, sizeof buf, "stretch");
        if ((policy = pick(buf, policies, 3)) < 0)
            return WHY(RM_EFORMAT, "unknown keep_aspect_ratio_policy '%s'", buf);
        r->cubic_a = rm_node_attr_float(np, "cubic_coeff_a", -0.75f);
        r->exclude_outside = rm_node_attr_int(np, "exclude_outside", 0) != 0;
        r->extrapolation = rm_node_attr_float(np, "extrapolation_value", 0.0f);
        r->antialias = rm_node_attr_int(np, "antialias", 0) != 0 && r->mode != RM_RS_NEAREST;
        axes_attr = rm_node_attr_ints(np, "axes", &n_axes);
        if (!isfinite(r->cubic_a) || !isfinite(r->extrapolation))
            return WHY(RM_EFORMAT, "cubic_coeff_a and extrapolation_value must be finite");
    }
    /* the axes scales/sizes/roi refer to */
    int axes[RM_MAX_RANK], na = 0;
    bool seen[RM_MAX_RANK] = {false};
    if (axes_attr) {
        if (n_axes > (size_t)rank)
            return WHY(RM_EFORMAT, "%zu axes for an input of rank %d", n_axes, rank);
        for (size_t i = 0; i < n_axes; i++) {
            int64_t a = axes_attr[i];
            if (rm_norm_axis(&a, rank) || seen[a])
                return WHY(RM_EFORMAT, "axis %lld is out of range or repeated", (long long)axes_attr[i]);
            seen[a] = true;
            axes[na++] = (int)a;
        }
    } else {
        for (int a = 0; a < rank; a++)
            axes[na++] = a;
    }
    for (int a = 0; a < rank; a++) {
        r->in[a] = r->out[a] = dims[a] < 0 ? -1 : dims[a];
        r->scale[a] = 1;
        r->roi[a] = 0;
        r->roi[rank + a] = 1;
    }

    /* scales or sizes: exactly one of them, known */
    const struct rm_host_tensor *scales = in->scales, *sizes = in->sizes;
    float attr_scales[RM_MAX_RANK];
    struct rm_host_tensor attr_t;
    if (op == RM_OP_UPSAMPLE && opset < 9) {
        const Onnx__AttributeProto *a = rm_node_attr(np, "scales");
        if (!a || a->n_floats != (size_t)rank)
            return WHY(RM_EFORMAT, "the scales attribute must have one value per input axis (%d)", rank);
        memcpy(attr_scales, a->floats, sizeof(float) * (size_t)rank);
        memset(&attr_t, 0, sizeof attr_t);
        attr_t.dtype = RM_F32;
        attr_t.rank = 1;
        attr_t.dims[0] = attr_t.numel = rank;
        attr_t.data = attr_scales;
        scales = &attr_t;
    } else {
        if (in->scales_given && !scales)
            return WHY(RM_EUNSUPPORTED, "scales are not a plan-time constant (computed at run time, or from a "
                                        "dynamic input dimension: give the input's shape)");
        if (in->sizes_given && !sizes && !nonempty(scales))
            return WHY(RM_EUNSUPPORTED, "sizes are not a plan-time constant (computed at run time, or from a "
                                        "dynamic input dimension: give the input's shape)");
    }
    bool use_scales = nonempty(scales), use_sizes = in->sizes_given && nonempty(sizes);
    if (use_scales && use_sizes)
        return WHY(RM_EFORMAT, "scales and sizes are both given; only one may be");
    if (!use_scales && !use_sizes)
        return WHY(RM_EFORMAT, "needs non-empty scales or sizes");
    const struct rm_host_tensor *t = use_scales ? scales : sizes;
    if (t->dtype != (use_scales ? RM_F32 : RM_I64))
        return WHY(RM_EFORMAT, "%s must be %s", use_scales ? "scales" : "sizes", use_scales ? "float" : "int64");
    if (t->numel != na)
        return WHY(RM_EFORMAT, "%s has %lld values, expected %d", use_scales ? "scales" : "sizes",
                   (long long)t->numel, na);
    if (use_scales) {
        const float *sv = t->data;
        for (int j = 0; j < na; j++) {
            int a = axes[j];
            double sc = sv[j];
            if (!(sc > 0) || !isfinite(sc))
                return WHY(RM_EFORMAT, "scale %g on axis %d is not a positive finite number", sc, a);
            r->scale[a] = sc;
            if (r->in[a] < 0)
                continue;
            double o = floor((double)r->in[a] * sc);
            if (o > (double)AXIS_MAX)
                return WHY(RM_EFORMAT, "scale %g makes axis %d of size %lld too large", sc, a, (long long)r->in[a]);
            r->out[a] = (int64_t)o;
        }
    } else {
        const int64_t *zv = t->data;
        for (int j = 0; j < na; j++)
            if (zv[j] < 0 || zv[j] > AXIS_MAX)
                return WHY(RM_EFORMAT, "size %lld on axis %d is out of range", (long long)zv[j], axes[j]);
        if (policy == 0) {
            for (int j = 0; j < na; j++) {
                int a = axes[j];
                r->out[a] = zv[j];
                if (r->in[a] == 0 && zv[j] > 0)
                    return WHY(RM_EFORMAT, "axis %d is empty and cannot be resized to %lld", a, (long long)zv[j]);
                r->scale[a] = r->in[a] > 0 ? (double)zv[j] / (double)r->in[a] : 1;
            }
        } else {
            /* keep_aspect_ratio_policy: one scale for every axis given, the smallest
             * (not_larger) or largest (not_smaller) of sizes / input size */
            double sc = policy == 1 ? INFINITY : 0;
            bool known = true;
            for (int j = 0; j < na; j++) {
                int a = axes[j];
                if (r->in[a] < 0) {
                    known = false;
                    continue;
                }
                if (r->in[a] == 0)
                    return WHY(RM_EFORMAT, "axis %d is empty: keep_aspect_ratio_policy has no ratio", a);
                double q = (double)zv[j] / (double)r->in[a];
                sc = policy == 1 ? fmin(sc, q) : fmax(sc, q);
            }
            if (!(sc > 0))
                return WHY(RM_EFORMAT, "sizes give a zero scale");
            for (int j = 0; j < na; j++) {
                int a = axes[j];
                r->scale[a] = known ? sc : 0;
                if (!known) {
                    r->out[a] = -1;
                    continue;
                }
                double o = floor(sc * (double)r->in[a] + 0.5); /* round half up */
                if (o > (double)AXIS_MAX)
                    return WHY(RM_EFORMAT, "sizes make axis %d too large", a);
                r->out[a] = (int64_t)o;
            }
        }
    }

    /* roi: only tf_crop_and_resize reads it */
    if (r->ctm == RM_CT_TF_CROP_AND_RESIZE) {
        const struct rm_host_tensor *roi = in->roi;
        if (in->roi_given && !roi)
            return WHY(RM_EUNSUPPORTED, "roi is not a plan-time constant");
        if (!nonempty(roi))
            return WHY(RM_EFORMAT, "tf_crop_and_resize needs roi");
        if (roi->dtype != RM_F32 || roi->numel != 2 * na)
            return WHY(RM_EFORMAT, "roi must hold %d float values (starts, then ends)", 2 * na);
        const float *rv = roi->data;
        for (int j = 0; j < na; j++) {
            if (!isfinite(rv[j]) || !isfinite(rv[na + j]))
                return WHY(RM_EFORMAT, "roi values must be finite");
            r->roi[axes[j]] = rv[j];
            r->roi[rank + axes[j]] = rv[na + j];
        }
    }
    return 0;
}

/* Input coordinate of output index y along axis a. */
static double source_coord(const struct rm_resize *r, int a, int64_t y)
{
    double in = (double)r->in[a], out = (double)r->out[a], s = r->scale[a], yy = (double)y;
    double lo = r->roi[a], hi = r->roi[r->rank + a];
    switch (r->ctm) {
    case RM_CT_HALF_PIXEL_SYMMETRIC: {
        /* the centre of the input maps onto the centre of the output canvas */
        double adj = out / (s * in), centre = in / 2;
        return centre * (1 - adj) + (yy + 0.5) / s - 0.5;
    }
    case RM_CT_PYTORCH_HALF_PIXEL:
        return out > 1 ? (yy + 0.5) / s - 0.5 : 0;
    case RM_CT_ALIGN_CORNERS:
        return out > 1 ? yy * (in - 1) / (out - 1) : 0;
    case RM_CT_ASYMMETRIC:
        return yy / s;
    case RM_CT_TF_HALF_PIXEL_FOR_NN:
        return (yy + 0.5) / s;
    case RM_CT_TF_CROP_AND_RESIZE:
        return out > 1 ? lo * (in - 1) + yy * (hi - lo) * (in - 1) / (out - 1) : 0.5 * (lo + hi) * (in - 1);
    default: /* half_pixel */
        return (yy + 0.5) / s - 0.5;
    }
}

/* Keys's cubic convolution kernel with parameter A. */
static double cubic_kernel(double x, double A)
{
    x = fabs(x);
    if (x <= 1)
        return ((A + 2) * x - (A + 3)) * x * x + 1;
    if (x < 2)
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    return 0;
}

void rm_resize_taps_free(struct rm_resize_taps *t)
{
    free(t->idx);
    free(t->w);
    free(t->outside);
    memset(t, 0, sizeof *t);
}

int rm_resize_taps_of(const struct rm_resize *r, int a, struct rm_resize_taps *t, char *why, size_t why_size)
{
    int64_t in = r->in[a], out = r->out[a];
    double sc = r->scale[a];
    memset(t, 0, sizeof *t);
    if (in < 0 || out < 0)
        return WHY(RM_EFORMAT, "axis %d has an unknown size", a);
    if (in == 0 && out > 0)
        return WHY(RM_EFORMAT, "axis %d is empty and cannot be resized to %lld", a, (long long)out);
    /* taps start..start+n-1 around the input pixel left of the coordinate; antialias
     * stretches the filter by 1/scale when downsampling */
    bool aa = r->antialias && sc < 1;
    bool copy = r->ctm != RM_CT_TF_CROP_AND_RESIZE && sc == 1 && in == out;
    int64_t start = 0, n = 1;
    if (r->mode != RM_RS_NEAREST && !copy) {
        double st = r->mode == RM_RS_LINEAR ? (aa ? floor(-1 / sc) + 1 : 0) : (aa ? floor(-2 / sc) + 1 : -1);
        /* a filter wider than the axis only repeats its edge pixels: hostile scales
         * must not ask for billions of taps */
        if (st < -(double)(4 * in + 8))
            return WHY(RM_EFORMAT, "scale %g is too small for axis %d of size %lld", sc, a, (long long)in);
        start = (int64_t)st;
        n = 2 - 2 * start;
    }
    t->n = n;
    size_t cnt = (size_t)(out ? out : 1);
    if ((uint64_t)out > SIZE_MAX / sizeof(int64_t) / (uint64_t)n)
        return WHY(RM_ENOMEM, "interpolation table too large");
    t->idx = malloc(cnt * (size_t)n * sizeof *t->idx);
    t->w = malloc(cnt * (size_t)n * sizeof *t->w);
    t->outside = calloc(cnt, 1);
    double *c = malloc((size_t)n * sizeof *c);
    if (!t->idx || !t->w || !t->outside || !c) {
        free(c);
        rm_resize_taps_free(t);
        return WHY(RM_ENOMEM, "out of memory");
    }
    for (int64_t y = 0; y < out; y++) {
        double x = source_coord(r, a, y);
        int64_t *ix = t->idx + y * n;
        float *w = t->w + y * n;
        if (copy) {
            ix[0] = y;
            w[0] = 1;
            continue;
        }
        if (r->ctm == RM_CT_TF_CROP_AND_RESIZE && (x < 0 || x > (double)(in - 1))) {
            t->outside[y] = 1;
            t->any_outside = 1;
            for (int64_t k = 0; k < n; k++)
                ix[k] = 0, w[k] = 0;
            continue;
        }
        if (r->mode == RM_RS_NEAREST) {
            double f;
            switch (r->nearest) {
            case RM_NM_ROUND_PREFER_CEIL: f = floor(x + 0.5); break;
            case RM_NM_FLOOR: f = floor(x); break;
            case RM_NM_CEIL: f = ceil(x); break;
            case RM_NM_SIMPLE: f = sc < 1 ? ceil(x) : floor(x); break;
            default: f = ceil(x - 0.5); break; /* round_prefer_floor */
            }
            ix[0] = f < 0 ? 0 : f > (double)(in - 1) ? in - 1 : (int64_t)f;
            w[0] = 1;
            continue;
        }
        /* the pixel left of x, with the ratio in (0, 1] (an integral x is the right
         * neighbour of the tap pair, as the reference implementation takes it) */
        double x0 = floor(x), ratio = x - x0;
        if (ratio == 0) {
            x0 -= 1;
            ratio = 1;
        }
        double sum = 0;
        for (int64_t k = 0; k < n; k++) {
            double d = (double)(start + k) - ratio; /* tap position minus x */
            if (r->mode == RM_RS_LINEAR)
                c[k] = aa ? fmax(0, 1 - fabs(d * sc)) : k == 0 ? 1 - ratio : ratio;
            else
                c[k] = cubic_kernel(aa ? d * sc : d, r->cubic_a);
            double pos = x0 + (double)(start + k);
            if (r->exclude_outside && (pos < 0 || pos > (double)(in - 1)))
                c[k] = 0;
            sum += c[k];
        }
        bool norm = aa || r->exclude_outside;
        for (int64_t k = 0; k < n; k++) {
            double pos = x0 + (double)(start + k);
            ix[k] = pos < 0 ? 0 : pos > (double)(in - 1) ? in - 1 : (int64_t)pos;
            w[k] = (float)(norm && sum != 0 ? c[k] / sum : c[k]);
        }
    }
    free(c);
    return 0;
}

/* ---- shape rule ------------------------------------------------------------------ */

static void inputs_of(const struct rm_snode *s, enum rm_op op, struct rm_resize_in *in)
{
    int ir, is, iz;
    rm_resize_inputs(op, s->opset, &ir, &is, &iz);
    memset(in, 0, sizeof *in);
    in->roi_given = ir >= 0 && rm_s_present(s, (size_t)ir);
    in->scales_given = is >= 0 && rm_s_present(s, (size_t)is);
    in->sizes_given = iz >= 0 && rm_s_present(s, (size_t)iz);
    struct rm_snode *w = (struct rm_snode *)s; /* rm_s_const loads on first use */
    in->roi = in->roi_given ? rm_s_const(w, (size_t)ir) : NULL;
    in->scales = in->scales_given ? rm_s_const(w, (size_t)is) : NULL;
    in->sizes = in->sizes_given ? rm_s_const(w, (size_t)iz) : NULL;
}

int rm_shape_resize(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    if (!x)
        return 0;
    struct rm_resize_in in;
    struct rm_resize r;
    char why[240];
    inputs_of(s, s->g->nodes[s->node].op, &in);
    int rc = rm_resize_of(s->np, s->g->nodes[s->node].op, s->opset, x->rank, x->dims, &in, &r, why, sizeof why);
    if (rc)
        return rc == RM_EFORMAT ? rm_s_bad(s, "%s", why) : rm_s_unsupported(s, "%s", why);
    rm_s_out(s, 0, x->elem_type, x->rank, r.out);
    return 0;
}

/* ---- kernel ---------------------------------------------------------------------- */

/* Whether taps t map output index o to input index o with weight 1 (nothing to do). */
static bool taps_identity(const struct rm_resize_taps *t, int64_t in, int64_t out)
{
    if (in != out || t->any_outside)
        return false;
    for (int64_t y = 0; y < out; y++) {
        float on = 0;
        for (int64_t k = 0; k < t->n; k++) {
            if (t->idx[y * t->n + k] == y)
                on += t->w[y * t->n + k];
            else if (t->w[y * t->n + k] != 0)
                return false;
        }
        if (on != 1)
            return false;
    }
    return true;
}

/* One axis: dst[outer, y, inner] = sum_k w[y, k] * src[outer, idx[y, k], inner]. */
static void apply_axis(const float *src, float *dst, int64_t outer, int64_t in, int64_t out, int64_t inner,
                       const struct rm_resize_taps *t)
{
    int64_t n = t->n;
    for (int64_t ob = 0; ob < outer; ob++) {
        const float *sb = src + ob * in * inner;
        float *db = dst + ob * out * inner;
        for (int64_t y = 0; y < out; y++) {
            const int64_t *ix = t->idx + y * n;
            const float *w = t->w + y * n;
            float *d = db + y * inner;
            if (n == 1) {
                if (inner == 1)
                    d[0] = sb[ix[0]];
                else
                    memcpy(d, sb + ix[0] * inner, sizeof(float) * (size_t)inner);
                continue;
            }
            if (inner == 1) {
                float acc = 0;
                for (int64_t k = 0; k < n; k++)
                    acc += w[k] * sb[ix[k]];
                d[0] = acc;
                continue;
            }
            const float *s0 = sb + ix[0] * inner;
            for (int64_t i = 0; i < inner; i++)
                d[i] = w[0] * s0[i];
            for (int64_t k = 1; k < n; k++) {
                if (w[k] == 0)
                    continue;
                const float *sk = sb + ix[k] * inner;
                float wk = w[k];
                for (int64_t i = 0; i < inner; i++)
                    d[i] += wk * sk[i];
            }
        }
    }
}

int rm_kernel_resize(const struct rm_kcall *k)
{
    const struct rm_host_tensor *x = k->in[0];
    struct rm_host_tensor *o = k->out[0];
    struct rm_resize r;
    struct rm_resize_in in;
    struct rm_resize_taps taps[RM_MAX_RANK];
    char why[240];
    float *buf[2] = {NULL, NULL};
    int rc = 0, na = 0, order[RM_MAX_RANK];
    if (x->dtype != RM_F32)
        return rm_k_err(k, RM_EUNSUPPORTED, "input type is not float32");
    int ir, is, iz;
    rm_resize_inputs(k->op, k->opset, &ir, &is, &iz);
    memset(&in, 0, sizeof in);
    in.roi_given = ir >= 0 && (size_t)ir < k->n_in && k->in[ir];
    in.scales_given = is >= 0 && (size_t)is < k->n_in && k->in[is];
    in.sizes_given = iz >= 0 && (size_t)iz < k->n_in && k->in[iz];
    in.roi = in.roi_given ? k->in[ir] : NULL;
    in.scales = in.scales_given ? k->in[is] : NULL;
    in.sizes = in.sizes_given ? k->in[iz] : NULL;
    if ((rc = rm_resize_of(k->np, k->op, k->opset, x->rank, x->dims, &in, &r, why, sizeof why)))
        return rm_k_err(k, rc, "%s", why);
    if (o->rank != x->rank || memcmp(o->dims, r.out, sizeof(int64_t) * (size_t)x->rank))
        return rm_k_err(k, RM_EFORMAT, "scales or sizes changed since the output shape was inferred");
    if (o->numel == 0)
        return 0;
    memset(taps, 0, sizeof taps);
    /* axes that change something; those that shrink first, so later ones work on less */
    for (int pass = 0; pass < 2; pass++)
        for (int a = 0; a < x->rank; a++) {
            if ((r.out[a] < r.in[a]) != (pass == 0))
                continue;
            if ((rc = rm_resize_taps_of(&r, a, &taps[a], why, sizeof why))) {
                rc = rm_k_err(k, rc, "%s", why);
                goto done;
            }
            if (!taps_identity(&taps[a], r.in[a], r.out[a]))
                order[na++] = a;
        }
    int64_t cur[RM_MAX_RANK], biggest = 0;
    memcpy(cur, x->dims, sizeof cur);
    for (int i = 0; i + 1 < na; i++) {
        int64_t n;
        cur[order[i]] = r.out[order[i]];
        if (rm_dims_numel(cur, (size_t)x->rank, &n) || n > ((int64_t)1 << 36)) {
            rc = rm_k_err(k, RM_EFORMAT, "intermediate result too large");
            goto done;
        }
        biggest = n > biggest ? n : biggest;
    }
    if (biggest > 0) {
        buf[0] = malloc((size_t)biggest * sizeof(float));
        buf[1] = na > 2 ? malloc((size_t)biggest * sizeof(float)) : NULL;
        if (!buf[0] || (na > 2 && !buf[1])) {
            rc = rm_k_err(k, RM_ENOMEM, "out of memory");
            goto done;
        }
    }
    memcpy(cur, x->dims, sizeof cur);
    const float *src = x->data;
    if (na == 0)
        memcpy(o->data, x->data, sizeof(float) * (size_t)x->numel);
    for (int i = 0; i < na; i++) {
        int a = order[i];
        int64_t outer = 1, inner = 1;
        for (int d = 0; d < a; d++)
            outer *= cur[d];
        for (int d = a + 1; d < x->rank; d++)
            inner *= cur[d];
        float *dst = i == na - 1 ? o->data : buf[i % 2];
        apply_axis(src, dst, outer, cur[a], r.out[a], inner, &taps[a]);
        cur[a] = r.out[a];
        src = dst;
    }
    /* tf_crop_and_resize: outputs whose coordinate falls outside the input on any axis */
    bool outside = false;
    for (int a = 0; a < x->rank; a++)
        outside |= taps[a].any_outside != 0;
    if (outside) {
        int64_t idx[RM_MAX_RANK] = {0};
        float *d = o->data;
        for (int64_t e = 0; e < o->numel; e++) {
            for (int a = 0; a < o->rank; a++)
                if (taps[a].outside && taps[a].outside[idx[a]]) {
                    d[e] = r.extrapolation;
                    break;
                }
            rm_next_index(o->rank, o->dims, idx);
        }
    }
done:
    for (int a = 0; a < x->rank; a++)
        rm_resize_taps_free(&taps[a]);
    free(buf[0]);
    free(buf[1]);
    return rc;
}
