/* DepthToSpace and SpaceToDepth: shape rules and the C kernel (a fixed permutation of
 * [N, C, H, W] with blocks of b x b pixels; the engine runs it here, on float32 or
 * int64). */
#include "rm_ops_int.h"

#include <string.h>

/* blocksize of node np, or 0 when missing or out of range. */
static int64_t block_of(const Onnx__NodeProto *np)
{
    int64_t b = rm_node_attr_int(np, "blocksize", 0);
    return b > 0 && b <= 65536 ? b : 0;
}

/* DCR (default since opset 11) or CRD; -1 for anything else. */
static int crd_of(const Onnx__NodeProto *np)
{
    char m[16];
    rm_attr_string(np, "mode", m, sizeof m, "DCR");
    return !strcmp(m, "DCR") ? 0 : !strcmp(m, "CRD") ? 1 : -1;
}

int rm_shape_depth_to_space(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    if (!x)
        return 0;
    int64_t b = block_of(s->np);
    if (x->rank != 4)
        return rm_s_bad(s, "input must be 4-D [N, C, H, W], it has rank %d", x->rank);
    if (!b)
        return rm_s_bad(s, "blocksize must be given, from 1 to 65536");
    if (crd_of(s->np) < 0)
        return rm_s_bad(s, "mode must be DCR or CRD");
    if (x->dims[1] >= 0 && x->dims[1] % (b * b))
        return rm_s_bad(s, "%lld channels do not divide into blocks of %lld x %lld", (long long)x->dims[1],
                        (long long)b, (long long)b);
    int64_t d[4] = {x->dims[0], x->dims[1] < 0 ? -1 : x->dims[1] / (b * b), -1, -1};
    for (int i = 2; i < 4; i++) {
        if (x->dims[i] > INT64_MAX / b)
            return rm_s_bad(s, "output too large");
        d[i] = x->dims[i] < 0 ? -1 : x->dims[i] * b;
    }
    rm_s_out(s, 0, x->elem_type, 4, d);
    return 0;
}

int rm_shape_space_to_depth(struct rm_snode *s)
{
    const struct rm_value *x = rm_s_in(s, 0);
    if (!x)
        return 0;
    int64_t b = block_of(s->np);
    if (x->rank != 4)
        return rm_s_bad(s, "input must be 4-D [N, C, H, W], it has rank %d", x->rank);
    if (!b)
        return rm_s_bad(s, "blocksize must be given, from 1 to 65536");
    int64_t d[4] = {x->dims[0], -1, -1, -1};
    if (x->dims[1] >= 0) {
        if (x->dims[1] > INT64_MAX / (b * b))
            return rm_s_bad(s, "output too large");
        d[1] = x->dims[1] * b * b;
    }
    for (int i = 2; i < 4; i++) {
        if (x->dims[i] >= 0 && x->dims[i] % b)
            return rm_s_bad(s, "spatial size %lld does not divide into blocks of %lld", (long long)x->dims[i],
                            (long long)b);
        d[i] = x->dims[i] < 0 ? -1 : x->dims[i] / b;
    }
    rm_s_out(s, 0, x->elem_type, 4, d);
    return 0;
}

/* Element copy of the permutation: y at (n, c, h, i, w, j) of the space side, x at its
 * channel on the depth side (cd: channel of depth tensor for space channel c, block
 * row i, column j). */
#define SPACE_LOOP(T)                                                                            \
    do {                                                                                         \
        T *sp = (T *)(d2s ? o->data : x->data), *dp = (T *)(d2s ? x->data : o->data);            \
        for (int64_t n = 0; n < N; n++)                                                          \
            for (int64_t c = 0; c < C; c++)                                                      \
                for (int64_t h = 0; h < H; h++)                                                  \
                    for (int64_t i = 0; i < b; i++)                                              \
                        for (int64_t w = 0; w < W; w++)                                          \
                            for (int64_t j = 0; j < b; j++) {                                    \
                                int64_t cd = crd ? c * b * b + i * b + j : (i * b + j) * C + c;  \
                                int64_t si = (((n * C + c) * H + h) * b + i) * W * b + w * b + j; \
                                int64_t di = ((n * C * b * b + cd) * H + h) * W + w;             \
                                if (d2s)                                                         \
                                    sp[si] = dp[di];                                             \
                                else                                                             \
                                    dp[di] = sp[si];                                             \
                            }                                                                    \
    } while (0)

int rm_kernel_space_depth(const struct rm_kcall *k)
{
    const struct rm_host_tensor *x = k->in[0];
    struct rm_host_tensor *o = k->out[0];
    int d2s = k->op == RM_OP_DEPTH_TO_SPACE;
    int64_t b = block_of(k->np);
    int crd = d2s ? crd_of(k->np) : 0;
    if (x->rank != 4 || o->rank != 4 || !b || crd < 0 || x->dtype != o->dtype)
        return rm_k_err(k, RM_EFORMAT, "bad input rank, blocksize or mode");
    /* C, H, W: the space side's channels and block rows/columns */
    const struct rm_host_tensor *space = d2s ? o : x, *depth = d2s ? x : o;
    int64_t N = space->dims[0], C = space->dims[1], H = depth->dims[2], W = depth->dims[3];
    if (depth->dims[1] % (b * b) || depth->dims[1] / (b * b) != C || space->dims[2] % b || space->dims[2] / b != H ||
        space->dims[3] % b || space->dims[3] / b != W)
        return rm_k_err(k, RM_EFORMAT, "shapes do not fit blocksize %lld", (long long)b);
    if (x->dtype == RM_I64)
        SPACE_LOOP(int64_t);
    else
        SPACE_LOOP(float);
    return 0;
}
