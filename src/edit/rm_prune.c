/* Structured channel pruning and BatchNorm folding on the ONNX graph.
 *
 * Channel groups: every activation tensor has a channel axis (1). Tensors whose channels
 * are the same channels are joined (union-find): through BatchNorm, InstanceNorm,
 * activations, pools, spatial reductions, depthwise convs and ConvTransposes (channel c in
 * is channel c out), Resize/Upsample with scale 1 on axes 0 and 1, LayerNormalization over
 * axes >= 2, elementwise ops whose inputs must agree (residual Add, squeeze-excite Mul). A
 * group-1 Conv or ConvTranspose starts a new group with its output; its input axis is a
 * consumer of the group it reads. Removing channel c of a group removes output channel c of
 * every producer (a Conv's weight row c, a ConvTranspose's weight column c on axis 1, and
 * their bias), channel c of every member with per-channel parameters (BatchNorm,
 * InstanceNorm, depthwise convs, per-channel constants of elementwise ops such as PRelu's
 * slope, the channel entry of a Resize's constant sizes), and input channel c of every
 * consumer (weight axis 1 of a Conv, axis 0 of a ConvTranspose; features c*S.. of a Linear
 * after Flatten). Concat outputs are groups of their own whose channels are the inputs'
 * channels at offsets; a Split on channels is the same seen backwards: each part is a group
 * of its own, and the split's input group is derived from the parts (YOLOv8's C2f prunes
 * cv1's rows through the parts that read them, its Split sizes following). Slices that
 * together take every channel of one tensor once are a Split by another name (torch 1.13's
 * chunk, bounds computed from Shape; x[:, :a] and x[:, a:]): they get constant bounds of
 * the new ranges, and the Shape arithmetic goes. A Split or a Concat on another axis
 * passes the channels through. Whatever the analysis cannot follow
 * (reshapes, transposes, grouped convs, graph inputs/outputs, unknown ops) makes the group
 * unprunable, with the reason kept for the report. */
#include "rm_edit.h"
#include "rm_edit_int.h"
#include "rm_prune_int.h"
#include "rm_info.h"
#include "rm_fs.h"
#include "rm_ops_int.h"
#include "rm_shape.h"
#include "rm_tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CONCAT_INPUTS 64
#define MAX_CHANNELS ((int64_t)1 << 24) /* more is a hostile declared shape */

int rm_prune_root(struct analysis *a, int v)
{
    while (a->parent[v] != v) {
        a->parent[v] = a->parent[a->parent[v]];
        v = a->parent[v];
    }
    return v;
}

static void join(struct analysis *a, int x, int y)
{
    if (x < 0 || y < 0)
        return;
    x = rm_prune_root(a, x);
    y = rm_prune_root(a, y);
    if (x != y)
        a->parent[y] = x;
}

static const struct rm_value *val(const struct analysis *a, int v)
{
    return &a->e->g->values[v];
}

bool rm_prune_is_channel(const struct analysis *a, int v)
{
    return v >= 0 && val(a, v)->init < 0 && val(a, v)->rank >= 2;
}

/* Node n reads a computed tensor whose shape inference could not tell. */
static bool unknown_operand(const struct analysis *a, const struct rm_node *n)
{
    for (size_t k = 0; k < n->proto->n_input; k++) {
        int v = n->inputs[k];
        if (v >= 0 && val(a, v)->init < 0 && val(a, v)->rank < 0)
            return true;
    }
    return false;
}

static bool passes_channels(const struct analysis *a, const struct rm_node *n)
{
    return rm_edit_passes_channels(a->e->g, (int)(n - a->e->g->nodes));
}

static bool is_depthwise(const struct edit *e, int node)
{
    const struct rm_node *n = &e->g->nodes[node];
    int64_t group = rm_node_attr_int(n->proto, "group", 1);
    if (n->proto->n_input < 2 || n->inputs[1] < 0 || n->inputs[0] < 0)
        return false;
    const struct rm_value *w = &e->g->values[n->inputs[1]], *x = &e->g->values[n->inputs[0]];
    /* Conv1d/2d/3d: weight [C, 1, k...] of rank 3..5, input of the same rank */
    return group > 1 && w->rank >= 3 && w->rank <= 5 && w->dims[1] == 1 && w->dims[0] == group &&
           x->rank == w->rank && x->dims[1] == group;
}

/* A depthwise ConvTranspose: weight [C, 1, k...], group = C = its input's channels (and
 * so its output's). */
static bool is_depthwise_t(const struct edit *e, int node)
{
    const struct rm_node *n = &e->g->nodes[node];
    int64_t group = rm_node_attr_int(n->proto, "group", 1);
    if (n->proto->n_input < 2 || n->inputs[1] < 0 || n->inputs[0] < 0)
        return false;
    const struct rm_value *w = &e->g->values[n->inputs[1]], *x = &e->g->values[n->inputs[0]];
    return group > 1 && w->rank >= 3 && w->rank == x->rank && w->dims[0] == group && w->dims[1] == 1 &&
           x->dims[1] == group;
}

/* Value v is a constant: an initializer (through Identity nodes) or a Constant node's. */
static bool is_const(const struct analysis *a, int v)
{
    return v >= 0 && (val(a, v)->init >= 0 || rm_graph_const_tensor(a->e->g, v));
}

int rm_prune_const_channel_axis(const struct rm_graph *g, int node, size_t slot, bool last)
{
    const struct rm_node *n = &g->nodes[node];
    if (slot >= n->proto->n_input || n->inputs[slot] < 0 || !n->proto->n_output || n->outputs[0] < 0)
        return -1;
    const struct rm_value *c = &g->values[n->inputs[slot]], *y = &g->values[n->outputs[0]];
    /* numpy broadcasting aligns trailing axes: the constant's axis facing output axis 1,
     * or its last axis facing the output's last */
    int ax = last ? c->rank - 1 : c->rank - y->rank + 1;
    if (c->rank < 0 || y->rank < 2 || ax < 0 || ax >= c->rank || c->dims[ax] == 1)
        return -1;
    return ax;
}

/* Why constant input `slot` of broadcasting node `node` cannot follow a change of its
 * output's channels (a per-channel constant that is not a float initializer of C
 * entries on that axis), or NULL when it can or has nothing per channel. */
static const char *const_operand_blocks(const struct analysis *a, int node, size_t slot, int64_t channels,
                                        bool last)
{
    const struct rm_graph *g = a->e->g;
    int ax = rm_prune_const_channel_axis(g, node, slot, last);
    if (ax < 0)
        return NULL;
    int v = g->nodes[node].inputs[slot];
    int src = rm_graph_initializer_of(g, v);
    const Onnx__TensorProto *t = src >= 0 ? g->proto->initializer[g->values[src].init] : NULL;
    if (!t)
        return "a per-channel constant held by a Constant node cannot follow the channels";
    if (!t->has_data_type || t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return "a per-channel constant that is not float32 cannot follow the channels";
    if (val(a, v)->dims[ax] != channels)
        return "a per-channel constant's size does not match the channels";
    return NULL;
}

/* Resize / Upsample: the input slots of scales and sizes (-1 when the op has none). */
static void resample_slots(const struct edit *e, const struct rm_node *n, int *scales, int *sizes)
{
    bool old = n->op == RM_OP_UPSAMPLE || (e->g->opset > 0 && e->g->opset < 11);
    *scales = old ? (n->op == RM_OP_UPSAMPLE && e->g->opset > 0 && e->g->opset < 9 ? -1 : 1) : 2;
    *sizes = old ? -1 : 3;
    if (*scales >= (int)n->proto->n_input || (*scales >= 0 && !n->proto->input[*scales][0]))
        *scales = -1;
    if (*sizes >= (int)n->proto->n_input || (*sizes >= 0 && !n->proto->input[*sizes][0]))
        *sizes = -1;
}

/* Position of axis 1 among the axes a Resize's scales/sizes list (opset 18's `axes`),
 * -1 when they leave it out. */
static int resample_channel_pos(const struct rm_node *n, int rank)
{
    size_t na;
    const int64_t *axes = rm_node_attr_ints(n->proto, "axes", &na);
    if (!axes)
        return 1;
    for (size_t i = 0; i < na; i++)
        if (axes[i] == 1 || axes[i] == 1 - rank)
            return (int)i;
    return -1;
}

/* Why channels do not pass through Resize/Upsample node i (output dims 0 and 1 the
 * input's, scales 1 on them), or NULL when they do. */
static const char *resample_blocks(const struct analysis *a, int i)
{
    const struct edit *e = a->e;
    const struct rm_node *n = &e->g->nodes[i];
    int x = n->proto->n_input ? n->inputs[0] : -1, y = n->proto->n_output ? n->outputs[0] : -1;
    if (x < 0 || y < 0)
        return "a resize without input or output";
    const struct rm_value *xv = val(a, x), *yv = val(a, y);
    if (xv->rank < 2 || yv->rank != xv->rank || xv->dims[0] < 0 || xv->dims[1] <= 0 ||
        yv->dims[0] != xv->dims[0] || yv->dims[1] != xv->dims[1])
        return "a resize changes (or may change) its batch or channel axis";
    char ctm[32];
    rm_attr_string(n->proto, "coordinate_transformation_mode", ctm, sizeof ctm, "half_pixel");
    if (!strcmp(ctm, "tf_crop_and_resize") && n->op == RM_OP_RESIZE && e->g->opset >= 11)
        return "a tf_crop_and_resize resize may crop its channel axis";
    int scales, sizes;
    resample_slots(e, n, &scales, &sizes);
    int pos = resample_channel_pos(n, xv->rank);
    if (pos < 0)
        return NULL;
    const Onnx__TensorProto *st = scales >= 0 ? rm_graph_const_tensor(e->g, n->inputs[scales]) : NULL;
    if (n->op == RM_OP_UPSAMPLE && scales < 0) {
        const Onnx__AttributeProto *at = rm_node_attr(n->proto, "scales");
        if (at && at->n_floats > 1 && (at->floats[0] != 1.0f || at->floats[1] != 1.0f))
            return "a resize scales its batch or channel axis";
    }
    if (st) {
        int64_t ns = 0;
        struct rm_error err = {0};
        if (rm_tensor_numel(st, &ns, &err))
            return "a resize's scales cannot be read";
        if (ns > pos) {
            float sv[RM_MAX_RANK];
            if (ns > RM_MAX_RANK || rm_tensor_to_f32(st, sv, ns, &err))
                return "a resize's scales cannot be read";
            if (sv[pos] != 1.0f || (pos == 1 && sv[0] != 1.0f))
                return "a resize scales its batch or channel axis";
        }
    }
    if (sizes >= 0 && !is_const(a, n->inputs[sizes])) {
        /* computed sizes (torch: Concat(Shape(x)[0:2], [H, W])) follow the tensors they
         * are computed from: the output dims checked above are what they say now */
    } else if (sizes >= 0 && rm_graph_initializer_of(e->g, n->inputs[sizes]) < 0) {
        return "a resize's sizes are held by a Constant node, which cannot follow the channels";
    }
    return NULL;
}

/* Whether Slice node i is one of a slice set dividing a tensor of the group with root r
 * (its bounds are rewritten when that group's channels change). */
static bool slice_divides(struct analysis *a, int i, int r)
{
    const struct rm_node *n = &a->e->g->nodes[i];
    return n->op == RM_OP_SLICE && a->set_of[i] != -1 && rm_prune_root(a, n->inputs[0]) == r;
}

/* Whether Gather node c takes of shape vector v (a Shape's output whose entry 0 is dim
 * `first` of the tensor) constant entries that leave the channel axis (1) out: the batch
 * of x.view(x.size(0), -1). */
static bool gather_skips_channels(const struct analysis *a, const struct rm_node *c, int v, int64_t first)
{
    const struct rm_graph *g = a->e->g;
    int64_t len = val(a, v)->rank == 1 ? val(a, v)->dims[0] : -1, n;
    const struct rm_host_tensor *ix = c->n_inputs == 2 && c->inputs[0] == v && c->inputs[1] >= 0 && g->known
                                          ? g->known[c->inputs[1]] : NULL;
    int64_t axis = rm_node_attr_int(c->proto, "axis", 0);
    if (!ix || ix->dtype != RM_I64 || len < 1 || (axis != 0 && axis != -1) ||
        rm_dims_numel(ix->dims, (size_t)ix->rank, &n))
        return false;
    for (int64_t k = 0; k < n; k++) {
        int64_t j = rm_const_int(ix, k);
        if (j < -len || j >= len || first + (j < 0 ? j + len : j) == 1)
            return false;
    }
    return true;
}

/* Whether every use of value v (a shape vector) ends in the scales or sizes of a Resize or
 * Upsample, or in the starts or ends of a Slice dividing a tensor of the group with root
 * r, through ops on shape vectors only, or (first >= 0: v is the Shape itself, its entry 0
 * the tensor's dim `first`) in a Gather of other dims than the channels. */
static bool feeds_followed_only(struct analysis *a, int v, int r, int64_t first, int depth)
{
    const struct rm_value *vv = val(a, v);
    if (depth > 32 || vv->output >= 0)
        return false;
    for (int k = 0; k < vv->n_consumers; k++) {
        const struct rm_node *c = &a->e->g->nodes[vv->consumers[k]];
        if (first >= 0 && c->op == RM_OP_GATHER && gather_skips_channels(a, c, v, first))
            continue;
        if (rm_op_def(c->op)->chan == RM_CHAN_RESAMPLE) {
            if (c->inputs[0] == v)
                return false;
            continue;
        }
        if (slice_divides(a, vv->consumers[k], r)) {
            for (size_t slot = 0; slot < c->n_inputs; slot++)
                if (c->inputs[slot] == v && slot != 1 && slot != 2)
                    return false;
            continue;
        }
        for (size_t o = 0; o < c->proto->n_output; o++) {
            int w = c->outputs[o];
            if (w < 0)
                continue;
            if (val(a, w)->rank < 0 || val(a, w)->rank > 1 || !feeds_followed_only(a, w, r, -1, depth + 1))
                return false;
        }
    }
    return true;
}

/* Why a Shape node reading channel tensor x blocks its group, or NULL: it does not when it
 * leaves the channel axis out (start >= 2, or end <= 1) or its value only sizes Resizes (which the
 * shape check then sees), bounds the Slices of a chunk of the group (rewritten), or gives
 * other dims than the channels (x.view(x.size(0), -1)). */
static const char *shape_blocks(struct analysis *a, int i, int x)
{
    const struct rm_node *n = &a->e->g->nodes[i];
    int64_t rank = val(a, x)->rank, start = rm_node_attr_int(n->proto, "start", 0),
            end = rm_node_attr_int(n->proto, "end", rank);
    if (start < 0)
        start += rank;
    if (end < 0)
        end += rank;
    if (start >= 2 || end <= 1) /* opset 15's range leaves the channels out: Shape(x, end=1) */
        return NULL;
    if (n->proto->n_output >= 1 && n->outputs[0] >= 0 &&
        feeds_followed_only(a, n->outputs[0], rm_prune_root(a, x), start < 0 ? 0 : start, 0))
        return NULL;
    return "its shape is read and used other than as a resize's sizes, a chunk's bounds or its batch size";
}

/* LayerNormalization: the normalised axis (axis, negative from the end), -1 when unknown. */
static int64_t layer_norm_axis(const struct analysis *a, const struct rm_node *n)
{
    int x = n->proto->n_input ? n->inputs[0] : -1;
    if (x < 0 || val(a, x)->rank < 0)
        return -1;
    int64_t axis = rm_node_attr_int(n->proto, "axis", -1);
    return axis < 0 ? axis + val(a, x)->rank : axis;
}

/* Node n's `axis` (default 0) counted from the front of tensor v's axes; -1 when v has no
 * such axis (a Concat's axis is its output's, a Split's its input's). */
static int64_t axis_of(const struct analysis *a, const struct rm_node *n, int v)
{
    int64_t rank = v >= 0 ? val(a, v)->rank : -1, axis = rm_node_attr_int(n->proto, "axis", 0);
    if (rank <= 0 || axis < -rank || axis >= rank) /* the attribute is the file's: any int64 */
        return -1;
    return axis < 0 ? axis + rank : axis;
}

static int64_t concat_axis(const struct analysis *a, const struct rm_node *n)
{
    return axis_of(a, n, n->n_outputs ? n->outputs[0] : -1);
}

static int64_t split_axis(const struct analysis *a, const struct rm_node *n)
{
    return axis_of(a, n, n->n_inputs ? n->inputs[0] : -1);
}

/* The sizes a Split on channels lists (its `split` input from opset 13, its attribute
 * before): 1 when it lists them (copied to v, n_v of them), 0 when it lists none, -1 when
 * they cannot be read or are not constant. */
static int split_listed(const struct analysis *a, const struct rm_node *n, int64_t *v, size_t *n_v)
{
    const struct rm_graph *g = a->e->g;
    *n_v = 0;
    if (g->opset >= 13) {
        if (n->proto->n_input < 2 || !n->proto->input[1][0])
            return 0;
        const Onnx__TensorProto *t = n->inputs[1] >= 0 ? rm_graph_const_tensor(g, n->inputs[1]) : NULL;
        int64_t nz;
        struct rm_error err = {0};
        if (!t || rm_tensor_numel(t, &nz, &err) || nz < 1 || nz > MAX_CONCAT_INPUTS ||
            rm_tensor_to_i64(t, v, nz, &err))
            return -1;
        *n_v = (size_t)nz;
        return 1;
    }
    if (n->proto->n_input > 1)
        return -1; /* opset 1's `split` input: not followed */
    size_t na;
    const int64_t *at = rm_node_attr_ints(n->proto, "split", &na);
    if (!at)
        return 0;
    if (na < 1 || na > MAX_CONCAT_INPUTS)
        return -1;
    memcpy(v, at, na * sizeof *v);
    *n_v = na;
    return 1;
}

/* Why the parts of Split node i on channels cannot follow its input's channels, or NULL:
 * each part must be a channel tensor of known size, the parts add up to the input, and
 * the sizes the node lists (if any) are constants saying the same. */
static const char *split_blocks(const struct analysis *a, int i)
{
    const struct rm_node *n = &a->e->g->nodes[i];
    const struct rm_value *xv = val(a, n->inputs[0]);
    size_t no = n->proto->n_output;
    if (no < 1 || no > MAX_CONCAT_INPUTS)
        return "a Split into more parts than the analysis follows";
    if (xv->dims[1] <= 0 || xv->dims[1] > MAX_CHANNELS)
        return "a Split of a channel count that is unknown";
    int64_t sum = 0, listed[MAX_CONCAT_INPUTS];
    for (size_t k = 0; k < no; k++) {
        int y = n->outputs[k];
        if (y < 0 || !rm_prune_is_channel(a, y) || val(a, y)->rank != xv->rank || val(a, y)->dims[1] <= 0 ||
            val(a, y)->dims[1] > xv->dims[1])
            return "a Split part's channel count is unknown";
        sum += val(a, y)->dims[1];
    }
    if (sum != xv->dims[1])
        return "a Split's parts do not add up to its input's channels";
    size_t n_listed;
    int r = split_listed(a, n, listed, &n_listed);
    if (r < 0)
        return "a Split's sizes are computed or cannot be read";
    if (r > 0 && n_listed != no)
        return "a Split lists a size for each of a different number of parts";
    for (size_t k = 0; r > 0 && k < no; k++)
        if (listed[k] != val(a, n->outputs[k])->dims[1])
            return "a Split's sizes do not match its parts";
    return NULL;
}

bool rm_prune_divider(const struct analysis *a, int i, int *x, const int **parts, size_t *n_parts)
{
    const struct rm_node *n = &a->e->g->nodes[i];
    if (n->op == RM_OP_SPLIT && n->n_inputs) {
        *x = n->inputs[0];
        *parts = n->outputs;
        *n_parts = n->n_outputs;
        return true;
    }
    if (a->set_of && a->set_of[i] >= 0) {
        const struct slice_set *s = &a->sets[a->set_of[i]];
        *x = s->x;
        *parts = s->outs;
        *n_parts = s->n;
        return true;
    }
    return false;
}

int64_t rm_prune_split_offset(const struct analysis *a, int node, size_t slot)
{
    int x;
    const int *parts;
    size_t n_parts;
    int64_t off = 0;
    if (!rm_prune_divider(a, node, &x, &parts, &n_parts))
        return 0;
    for (size_t k = 0; k < slot && k < n_parts; k++)
        off += val(a, parts[k])->dims[1];
    return off;
}

/* Append node v to a list once. Nodes are pushed in graph order, so a repeat can only be
 * the last entry (a node reading one tensor twice); the room doubles at powers of two. */
static int push(int **arr, int *n, int v)
{
    if (*n && (*arr)[*n - 1] == v)
        return 0;
    if ((*n & (*n - 1)) == 0) {
        int *p = realloc(*arr, (size_t)(*n ? 2 * *n : 1) * sizeof *p);
        if (!p)
            return -1;
        *arr = p;
    }
    (*arr)[(*n)++] = v;
    return 0;
}

/* List Linear node `node` as reading group gr's channels, each spread over `spatial`
 * features (1: the channels are its features). -1 when out of memory. */
static int push_gemm(struct group *gr, int node, int64_t spatial)
{
    if (push(&gr->gemms, &gr->n_gemms, node))
        return -1;
    int64_t *sp = realloc(gr->gemm_spatial, (size_t)gr->n_gemms * sizeof *sp);
    if (!sp)
        return -1;
    gr->gemm_spatial = sp;
    sp[gr->n_gemms - 1] = spatial; /* a node pushed twice in a row keeps one entry */
    return 0;
}

struct group *rm_prune_group_of(struct analysis *a, int v)
{
    int r = rm_prune_root(a, v);
    return a->group_of[r] >= 0 ? &a->groups[a->group_of[r]] : NULL;
}

static void block(struct analysis *a, int v, const char *why, int node)
{
    struct group *gr = v >= 0 ? rm_prune_group_of(a, v) : NULL;
    if (!gr || gr->unprunable)
        return;
    gr->unprunable = true;
    if (node >= 0)
        snprintf(gr->reason, sizeof gr->reason, "%s (%s, %s)", why, rm_edit_where(a->e, node),
                 rm_edit_op(a->e, node));
    else
        snprintf(gr->reason, sizeof gr->reason, "%s", why);
}

/* ---- Slices that divide channels (torch's chunk) ----------------------------------- */

/* The channel range [*lo, *hi) Slice node i takes of its input, which it must keep whole,
 * with step 1, on every other axis; NULL, or why it is not a part. The bounds are what
 * shape inference knew (torch 1.13 computes a chunk's from Shape). */
static const char *slice_range(const struct analysis *a, int i, int64_t *lo, int64_t *hi)
{
    const struct rm_graph *g = a->e->g;
    const struct rm_node *n = &g->nodes[i];
    const struct rm_value *xv = val(a, n->inputs[0]);
    const struct rm_host_tensor *c[5] = {NULL};
    if (n->n_inputs > 5 || !g->known || xv->rank < 2 || xv->rank > RM_MAX_RANK || xv->dims[1] <= 0)
        return "a Slice of its channels cannot be read";
    for (size_t k = 1; k < n->n_inputs; k++)
        if (n->inputs[k] >= 0 && !(c[k] = g->known[n->inputs[k]]))
            return "a Slice of it has bounds that are not known";
    /* twice, an unknown size taken as two different sizes: a range that is the whole
     * axis in both is the whole axis whatever its size */
    struct rm_slice sl[2];
    char why[200];
    for (int t = 0; t < 2; t++) {
        int64_t dims[RM_MAX_RANK];
        for (int d = 0; d < xv->rank; d++)
            dims[d] = xv->dims[d] >= 0 ? xv->dims[d] : (int64_t)1 << (40 + t);
        if (rm_slice_of(n->proto, g->opset, xv->rank, dims, c[1], c[2], c[3], c[4], &sl[t], why, sizeof why))
            return "a Slice of it cannot be read";
        for (int d = 0; d < xv->rank; d++)
            if (d != 1 && (sl[t].start[d] != 0 || sl[t].step[d] != 1 || sl[t].count[d] != dims[d]))
                return "a Slice cuts it on an axis other than its channels";
    }
    if (sl[0].step[1] != 1 || sl[0].count[1] < 1)
        return "a Slice takes its channels with a step, or none of them";
    *lo = sl[0].start[1];
    *hi = sl[0].start[1] + sl[0].count[1];
    return NULL;
}

/* The Slices reading channel tensor x on its channels: when together they take every
 * channel once (torch's chunk and split with static sizes), they are a divider of x like
 * a Split (its first node stands for the set); else they block x and their parts. */
static int slice_set(struct analysis *a, int x)
{
    const struct rm_value *xv = val(a, x);
    struct part {
        int64_t lo, hi;
        int node, out;
    } p[MAX_CONCAT_INPUTS];
    size_t n = 0;
    const char *why = NULL;
    int at = -1;
    for (int k = 0; k < xv->n_consumers && !why; k++) {
        int c = xv->consumers[k];
        const struct rm_node *nd = &a->e->g->nodes[c];
        if (nd->op != RM_OP_SLICE || nd->inputs[0] != x || (n && p[n - 1].node == c))
            continue;
        at = c;
        if (n == MAX_CONCAT_INPUTS) {
            why = "more Slices of its channels than the analysis follows";
            break;
        }
        int y = nd->n_outputs ? nd->outputs[0] : -1;
        int64_t lo = 0, hi = 0;
        why = slice_range(a, c, &lo, &hi);
        if (!why && (y < 0 || !rm_prune_is_channel(a, y) || val(a, y)->rank != xv->rank ||
                     val(a, y)->dims[1] != hi - lo))
            why = "a Slice of its channels gives a part of unknown size";
        p[n++] = (struct part){lo, hi, c, y};
    }
    if (!n)
        return 0;
    for (size_t k = 1; k < n && !why; k++) /* by range: insertion sort, a handful of parts */
        for (size_t j = k; j > 0 && p[j - 1].lo > p[j].lo; j--) {
            struct part t = p[j];
            p[j] = p[j - 1];
            p[j - 1] = t;
        }
    for (size_t k = 0; k < n && !why; k++)
        if (p[k].lo != (k ? p[k - 1].hi : 0) || (k == n - 1 && p[k].hi != xv->dims[1]))
            why = "its channels are sliced in ranges that overlap or leave some out";
    if (why) {
        block(a, x, why, at);
        for (size_t k = 0; k < n; k++)
            block(a, p[k].out, "it is a Slice of channels that cannot be followed", p[k].node);
        return 0;
    }
    struct slice_set *s = &a->sets[a->n_sets];
    s->x = x;
    s->n = n;
    s->nodes = malloc(n * sizeof *s->nodes);
    s->outs = malloc(n * sizeof *s->outs);
    if (!s->nodes || !s->outs) {
        free(s->nodes);
        free(s->outs);
        return -1;
    }
    a->n_sets++;
    for (size_t k = 0; k < n; k++) {
        s->nodes[k] = p[k].node;
        s->outs[k] = p[k].out;
        a->set_of[p[k].node] = k ? -2 : a->n_sets - 1;
    }
    int fail = push(&rm_prune_group_of(a, x)->splits, &rm_prune_group_of(a, x)->n_splits, p[0].node);
    for (size_t k = 0; k < n; k++) {
        struct group *gk = rm_prune_group_of(a, p[k].out);
        fail |= push(&gk->parts, &gk->n_parts, p[0].node);
    }
    return fail;
}

void rm_prune_analysis_free(struct analysis *a)
{
    for (int i = 0; i < a->n_groups; i++) {
        struct group *g = &a->groups[i];
        free(g->producers);
        free(g->members);
        free(g->consumers);
        free(g->gemms);
        free(g->gemm_spatial);
        free(g->concats);
        free(g->splits);
        free(g->parts);
        free(g->keep);
        free(g->score);
    }
    for (int i = 0; i < a->n_sets; i++) {
        free(a->sets[i].nodes);
        free(a->sets[i].outs);
    }
    free(a->sets);
    free(a->set_of);
    free(a->groups);
    free(a->parent);
    free(a->group_of);
    free(a->vstart);
    free(a->vlist);
    memset(a, 0, sizeof *a);
}

struct group *rm_prune_derived(struct analysis *a, int i, const int **src, size_t *n_src)
{
    const struct rm_node *n = &a->e->g->nodes[i];
    /* the counts as indexed: an edit may have added a Split's sizes input since */
    if (n->op == RM_OP_CONCAT && n->n_outputs && rm_prune_is_channel(a, n->outputs[0]) && concat_axis(a, n) == 1 &&
        n->n_inputs <= MAX_CONCAT_INPUTS) {
        *src = n->inputs;
        *n_src = n->n_inputs;
        return rm_prune_group_of(a, n->outputs[0]);
    }
    int x;
    if (rm_prune_divider(a, i, &x, src, n_src) && rm_prune_is_channel(a, x)) {
        struct group *gx = rm_prune_group_of(a, x);
        for (int k = 0; gx && k < gx->n_splits; k++)
            if (gx->splits[k] == i)
                return gx;
    }
    return NULL;
}

int rm_prune_linear_out_axis(const struct rm_graph *g, int i, int64_t out)
{
    const struct rm_node *n = &g->nodes[i];
    if (!(rm_edit_is_linear(g, i) || rm_prune_last_linear(g, i)) || n->n_inputs < 2 || n->inputs[1] < 0 ||
        (n->op == RM_OP_GEMM && rm_node_attr_int(n->proto, "transA", 0)))
        return -1;
    int wnode;
    size_t wslot;
    bool transposed; /* MatMul(x, Transpose(W)): W is [out, in] */
    if (!rm_edit_linear_weight(g, i, &wnode, &wslot, &transposed))
        return -1;
    int wi = rm_graph_initializer_of(g, g->nodes[wnode].inputs[wslot]);
    const struct rm_value *w = wi >= 0 ? &g->values[wi] : NULL;
    int axis = (n->op == RM_OP_GEMM && rm_node_attr_int(n->proto, "transB", 0)) || transposed ? 0 : 1;
    if (!w || w->rank != 2 || w->dims[axis] != out || out < 1)
        return -1;
    if (n->op == RM_OP_GEMM && n->n_inputs > 2 && n->inputs[2] >= 0) {
        /* C: a vector of the features ([out] or [1, out]), or one value for all */
        int bi = rm_graph_initializer_of(g, n->inputs[2]);
        const struct rm_value *b = bi >= 0 ? &g->values[bi] : NULL;
        bool vector = b && ((b->rank == 1 && b->dims[0] == out) ||
                            (b->rank == 2 && b->dims[0] == 1 && b->dims[1] == out));
        bool one = b && ((b->rank == 1 && b->dims[0] == 1) || b->rank == 0 ||
                         (b->rank == 2 && b->dims[0] == 1 && b->dims[1] == 1));
        if (!vector && !one)
            return -1;
    }
    return axis;
}

bool rm_prune_last_linear(const struct rm_graph *g, int i)
{
    const struct rm_node *n = &g->nodes[i];
    if (n->op != RM_OP_MATMUL || n->n_inputs != 2 || n->inputs[0] < 0 || n->inputs[1] < 0 || n->n_outputs != 1 ||
        n->outputs[0] < 0)
        return false;
    const struct rm_value *x = &g->values[n->inputs[0]], *y = &g->values[n->outputs[0]];
    int wnode;
    size_t wslot;
    bool t; /* read through a Transpose: W is [out, in] */
    if (!rm_edit_linear_weight(g, i, &wnode, &wslot, &t))
        return false;
    int wi = rm_graph_initializer_of(g, g->nodes[wnode].inputs[wslot]);
    const Onnx__TensorProto *w = wi >= 0 ? g->proto->initializer[g->values[wi].init] : NULL;
    return w && w->n_dims == 2 && w->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && x->rank >= 3 &&
           x->rank <= RM_MAX_RANK && y->rank == x->rank && x->dims[x->rank - 1] == w->dims[t ? 1 : 0] &&
           y->dims[y->rank - 1] == w->dims[t ? 0 : 1];
}

int64_t rm_prune_channel_dim(const struct analysis *a, const struct group *gr, int v)
{
    const struct rm_value *x = val(a, v);
    if (x->rank < 2)
        return -1;
    return gr && gr->last ? x->dims[x->rank - 1] : x->dims[1];
}

/* Node i touches a group whose channels are on the last axis. */
static bool touches_last(struct analysis *a, const struct rm_node *n)
{
    for (size_t k = 0; k < n->n_inputs; k++)
        if (rm_prune_is_channel(a, n->inputs[k]) && rm_prune_group_of(a, n->inputs[k])->last)
            return true;
    for (size_t k = 0; k < n->n_outputs; k++)
        if (rm_prune_is_channel(a, n->outputs[k]) && rm_prune_group_of(a, n->outputs[k])->last)
            return true;
    return false;
}

/* Pass 2 for node i when it touches a group with its channels on the last axis: what
 * follows them there is a Linear on the last axis (producing, or reading them as its
 * input features), an elementwise op whose constants are scalars or vectors on the last
 * axis, and a pointwise op (GELU, ReLU, ...); anything else blocks every group it
 * touches. Returns nonzero when out of memory. */
static int last_axis_node(struct analysis *a, int i)
{
    const struct rm_graph *g = a->e->g;
    const struct rm_node *n = &g->nodes[i];
    enum rm_chan role = rm_op_def(n->op)->chan;
    int x = n->n_inputs ? n->inputs[0] : -1, y = n->n_outputs ? n->outputs[0] : -1;
    struct group *gx = rm_prune_is_channel(a, x) ? rm_prune_group_of(a, x) : NULL;
    struct group *gy = rm_prune_is_channel(a, y) ? rm_prune_group_of(a, y) : NULL;
    int fail = 0;
    if (rm_prune_last_linear(g, i)) {
        if (gx && gx->last) {
            if (push_gemm(gx, i, 1))
                return 1;
        } else if (gx) {
            block(a, x, "a Linear reads its last axis, and its channels are on axis 1", i);
        }
        if (gy && gy->last && rm_prune_linear_out_axis(g, i, gy->channels) >= 0)
            fail |= push(&gy->producers, &gy->n_producers, i);
        else if (gy)
            block(a, y, "a Linear produces it whose weight cannot follow its features", i);
        return fail;
    }
    if (role == RM_CHAN_ELTWISE && gy && gy->last) {
        bool member = false;
        for (size_t k = 0; k < n->n_inputs; k++) {
            int v = n->inputs[k];
            if (v < 0)
                continue;
            if (is_const(a, v)) {
                const char *why = const_operand_blocks(a, i, k, gy->channels, true);
                if (why)
                    block(a, y, why, i);
                else if (rm_prune_const_channel_axis(g, i, k, true) >= 0)
                    member = true;
            } else if (rm_prune_is_channel(a, v)) {
                if (rm_prune_group_of(a, v) != gy) {
                    block(a, v, "an elementwise op meets it with channels on the last axis", i);
                    block(a, y, "an elementwise op meets channels on the last axis with others", i);
                }
            } else if (rm_prune_const_channel_axis(g, i, k, true) >= 0) {
                block(a, y, "an elementwise op applies a computed per-channel vector", i);
            }
        }
        return member ? push(&gy->members, &gy->n_members, i) : 0;
    }
    bool pool = n->op == RM_OP_AVERAGE_POOL || n->op == RM_OP_MAX_POOL || n->op == RM_OP_GLOBAL_AVERAGE_POOL ||
                n->op == RM_OP_GLOBAL_MAX_POOL;
    if (role == RM_CHAN_PASS && !pool && gx && gx == gy) {
        for (size_t k = 1; k < n->n_inputs; k++) /* Clip's bounds: scalars */
            if (rm_prune_is_channel(a, n->inputs[k]))
                block(a, n->inputs[k], "a pointwise op reads it as a parameter", i);
        return 0; /* joined in pass 1 */
    }
    for (size_t k = 0; k < n->n_inputs; k++)
        if (rm_prune_is_channel(a, n->inputs[k]))
            block(a, n->inputs[k], "its channels are on the last axis, and this op does not keep them there", i);
    for (size_t k = 0; k < n->n_outputs; k++)
        if (rm_prune_is_channel(a, n->outputs[k]))
            block(a, n->outputs[k], "its channels are on the last axis, and this op does not keep them there", i);
    return 0;
}

/* Grouped Conv node i (1 < group, not depthwise) whose channels the analysis can follow:
 * weight [C_out, C_in / group, k...] with both counts multiples of group. */
static bool grouped_ok(const struct edit *e, int i, int64_t group)
{
    const struct rm_node *n = &e->g->nodes[i];
    if (group < 2 || n->n_inputs < 2 || n->inputs[0] < 0 || n->inputs[1] < 0 || !n->n_outputs || n->outputs[0] < 0)
        return false;
    const struct rm_value *x = &e->g->values[n->inputs[0]], *w = &e->g->values[n->inputs[1]];
    return w->rank >= 3 && w->rank <= 5 && x->rank == w->rank && x->dims[1] > 0 && x->dims[1] % group == 0 &&
           w->dims[1] == x->dims[1] / group && w->dims[0] > 0 && w->dims[0] % group == 0;
}

/* Grouped ConvTranspose node i (1 < group, not depthwise): weight [C_in, C_out / group,
 * k...], C_in a multiple of group. */
static bool grouped_t_ok(const struct edit *e, int i, int64_t group)
{
    const struct rm_node *n = &e->g->nodes[i];
    if (group < 2 || n->n_inputs < 2 || n->inputs[0] < 0 || n->inputs[1] < 0 || !n->n_outputs || n->outputs[0] < 0)
        return false;
    const struct rm_value *x = &e->g->values[n->inputs[0]], *w = &e->g->values[n->inputs[1]];
    const struct rm_value *y = &e->g->values[n->outputs[0]];
    return w->rank >= 3 && w->rank <= 5 && x->rank == w->rank && x->dims[1] > 0 && x->dims[1] % group == 0 &&
           w->dims[0] == x->dims[1] && w->dims[1] > 0 && y->rank == w->rank && y->dims[1] % group == 0 &&
           y->dims[1] / group == w->dims[1]; /* no product: the dims are the file's */
}

/* The group of value v is cut into `blocks` equal blocks by node i (a grouped conv). Two
 * cuts agree when one refines the other (8 blocks are 4 blocks cut again). */
static void set_blocks(struct analysis *a, int v, int64_t blocks, int i)
{
    struct group *gr = rm_prune_group_of(a, v);
    if (!gr)
        return;
    if (blocks % gr->blocks == 0)
        gr->blocks = blocks;
    else if (gr->blocks % blocks != 0)
        block(a, v, "grouped convolutions cut it into blocks that do not agree", i);
}

/* Join tensors that carry the same channels; then make one group per class. */
int rm_prune_analyse(struct analysis *a, struct edit *e)
{
    struct rm_graph *g = e->g;
    a->e = e;
    a->parent = malloc((g->n_values + 1) * sizeof *a->parent);
    a->group_of = malloc((g->n_values + 1) * sizeof *a->group_of);
    if (!a->parent || !a->group_of)
        return rm_error_set(e->err, RM_ENOMEM, "out of memory");
    for (size_t v = 0; v < g->n_values; v++) {
        a->parent[v] = (int)v;
        a->group_of[v] = -1;
    }
    /* pass 1: joins */
    for (size_t i = 0; i < g->n_nodes; i++) {
        const struct rm_node *n = &g->nodes[i];
        enum rm_chan role = rm_op_def(n->op)->chan;
        int x = n->proto->n_input ? n->inputs[0] : -1, y = n->proto->n_output ? n->outputs[0] : -1;
        if (passes_channels(a, n) && rm_prune_is_channel(a, x)) {
            join(a, x, y);
        } else if (role == RM_CHAN_CONV && is_depthwise(e, (int)i)) {
            join(a, x, y);
        } else if (role == RM_CHAN_CONV_TRANSPOSE && is_depthwise_t(e, (int)i)) {
            join(a, x, y);
        } else if (role == RM_CHAN_RESAMPLE && rm_prune_is_channel(a, x) && !resample_blocks(a, (int)i)) {
            join(a, x, y);
        } else if (role == RM_CHAN_CONCAT && rm_prune_is_channel(a, y) && concat_axis(a, n) >= 0 &&
                   concat_axis(a, n) != 1) {
            /* concatenated on the batch or a spatial axis: every input has the output's channels */
            for (size_t k = 0; k < n->proto->n_input; k++)
                if (rm_prune_is_channel(a, n->inputs[k]) && val(a, n->inputs[k])->rank == val(a, y)->rank)
                    join(a, n->inputs[k], y);
        } else if (role == RM_CHAN_SPLIT && rm_prune_is_channel(a, x) && split_axis(a, n) >= 0 &&
                   split_axis(a, n) != 1) {
            /* split on the batch or a spatial axis: every part has the input's channels */
            for (size_t k = 0; k < n->proto->n_output; k++)
                if (rm_prune_is_channel(a, n->outputs[k]) && val(a, n->outputs[k])->rank == val(a, x)->rank)
                    join(a, x, n->outputs[k]);
        } else if (role == RM_CHAN_LAYER_NORM && rm_prune_is_channel(a, x) && layer_norm_axis(a, n) >= 2) {
            /* statistics per (n, c): Y, and Mean and InvStdDev when asked for, keep the channels */
            for (size_t k = 0; k < n->proto->n_output; k++)
                if (rm_prune_is_channel(a, n->outputs[k]))
                    join(a, x, n->outputs[k]);
        } else if (role == RM_CHAN_ELTWISE) {
            /* inputs that carry the output's channels are one group with it; an input with
             * one channel broadcasts over them (a spatial gate), and constants (biases,
             * scales, PRelu's slope) follow the group as its parameters (pass 2) */
            int64_t cy = y >= 0 && val(a, y)->rank >= 2 ? val(a, y)->dims[1] : -1;
            for (size_t k = 0; k < n->proto->n_input; k++) {
                int v = n->inputs[k];
                if (!rm_prune_is_channel(a, v) || is_const(a, v))
                    continue;
                if (val(a, v)->dims[1] == 1 && cy != 1)
                    continue;
                join(a, v, y);
            }
        }
    }
    /* groups: one per class that contains a channel tensor */
    a->groups = calloc(g->n_values + 1, sizeof *a->groups);
    if (!a->groups)
        return rm_error_set(e->err, RM_ENOMEM, "out of memory");
    for (size_t v = 0; v < g->n_values; v++) {
        if (!rm_prune_is_channel(a, (int)v))
            continue;
        int r = rm_prune_root(a, (int)v);
        if (a->group_of[r] < 0) {
            a->group_of[r] = a->n_groups;
            a->groups[a->n_groups].root = r;
            a->groups[a->n_groups].channels = -1;
            a->groups[a->n_groups].blocks = 1;
            a->n_groups++;
        }
        struct group *gr = &a->groups[a->group_of[r]];
        const struct rm_value *vv = val(a, (int)v);
        if (vv->rank >= 2 && vv->dims[1] > 1 && gr->channels < 0)
            gr->channels = vv->dims[1];
        if (vv->input >= 0)
            block(a, (int)v, "it contains a graph input", -1);
        if (vv->output >= 0)
            block(a, (int)v, "it reaches a graph output", -1);
    }
    /* Linear layers on the last axis make groups with their channels there; every tensor
     * of such a group must have the Linear output's rank and last axis */
    for (size_t i = 0; i < g->n_nodes; i++) {
        int y = g->nodes[i].n_outputs ? g->nodes[i].outputs[0] : -1;
        if (!rm_prune_last_linear(g, (int)i) || !rm_prune_is_channel(a, y))
            continue;
        struct group *gr = rm_prune_group_of(a, y);
        if (!gr->last) {
            gr->last = true;
            gr->last_rank = val(a, y)->rank;
            gr->channels = val(a, y)->dims[val(a, y)->rank - 1];
        }
    }
    for (size_t v = 0; v < g->n_values; v++) {
        struct group *gr = rm_prune_is_channel(a, (int)v) ? rm_prune_group_of(a, (int)v) : NULL;
        if (gr && gr->last && (val(a, (int)v)->rank != gr->last_rank || rm_prune_channel_dim(a, gr, (int)v) != gr->channels)) {
            char why[160];
            snprintf(why, sizeof why, "its channels are on the last axis, and '%.60s' has another rank or last axis",
                     val(a, (int)v)->name);
            block(a, (int)v, why, val(a, (int)v)->producer);
        }
    }
    /* Slices dividing channels, before the Shapes that bound them are judged in pass 2 */
    a->set_of = malloc((g->n_nodes + 1) * sizeof *a->set_of);
    a->sets = calloc(g->n_nodes + 1, sizeof *a->sets);
    if (!a->set_of || !a->sets)
        return rm_error_set(e->err, RM_ENOMEM, "out of memory");
    for (size_t i = 0; i < g->n_nodes; i++)
        a->set_of[i] = -1;
    for (size_t v = 0; v < g->n_values; v++)
        if (rm_prune_is_channel(a, (int)v) && !rm_prune_group_of(a, (int)v)->last && slice_set(a, (int)v))
            return rm_error_set(e->err, RM_ENOMEM, "out of memory");
    /* pass 2: roles */
    for (size_t i = 0; i < g->n_nodes; i++) {
        const struct rm_node *n = &g->nodes[i];
        enum rm_chan role = rm_op_def(n->op)->chan;
        int x = n->proto->n_input ? n->inputs[0] : -1, y = n->proto->n_output ? n->outputs[0] : -1;
        struct group *gx = rm_prune_is_channel(a, x) ? rm_prune_group_of(a, x) : NULL;
        int fail = 0;
        if (touches_last(a, n)) { /* channels on the last axis: their own rules */
            if (unknown_operand(a, n)) {
                for (size_t k = 0; k < n->proto->n_input; k++)
                    block(a, n->inputs[k], "it meets a tensor of unknown shape", (int)i);
                block(a, y, "it meets a tensor of unknown shape", (int)i);
            } else if (last_axis_node(a, (int)i)) {
                return rm_error_set(e->err, RM_ENOMEM, "out of memory");
            }
            continue;
        }
        if ((role == RM_CHAN_ELTWISE || role == RM_CHAN_CONCAT) && unknown_operand(a, n)) {
            /* an operand whose shape is unknown (made by an op without a shape rule) may
             * carry these channels too: nothing here can be followed */
            for (size_t k = 0; k < n->proto->n_input; k++)
                block(a, n->inputs[k], "it meets a tensor of unknown shape", (int)i);
            block(a, y, "it meets a tensor of unknown shape", (int)i);
            continue;
        }
        if (role == RM_CHAN_CONV) {
            int64_t group = rm_node_attr_int(n->proto, "group", 1);
            if (is_depthwise(e, (int)i)) {
                if (gx)
                    fail |= push(&gx->members, &gx->n_members, (int)i);
            } else if (group == 1) {
                if (gx)
                    fail |= push(&gx->consumers, &gx->n_consumers, (int)i);
                struct group *gy = y >= 0 && rm_prune_is_channel(a, y) ? rm_prune_group_of(a, y) : NULL;
                if (gy)
                    fail |= push(&gy->producers, &gy->n_producers, (int)i);
            } else if (grouped_ok(e, (int)i, group)) {
                /* ResNeXt, RegNet: channels in `group` equal blocks, each block pruned alike */
                struct group *gy = y >= 0 && rm_prune_is_channel(a, y) ? rm_prune_group_of(a, y) : NULL;
                if (gx) {
                    fail |= push(&gx->consumers, &gx->n_consumers, (int)i);
                    set_blocks(a, x, group, (int)i);
                }
                if (gy) {
                    fail |= push(&gy->producers, &gy->n_producers, (int)i);
                    set_blocks(a, y, group, (int)i);
                }
            } else {
                block(a, x, "a grouped convolution reads it", (int)i);
                block(a, y, "a grouped convolution produces it", (int)i);
            }
            for (size_t k = 1; k < n->proto->n_input; k++)
                if (rm_prune_is_channel(a, n->inputs[k]))
                    block(a, n->inputs[k], "a convolution reads it as a weight", (int)i);
        } else if (role == RM_CHAN_CONV_TRANSPOSE) {
            /* weight [C_in, C_out / group, k...] */
            int64_t group = rm_node_attr_int(n->proto, "group", 1);
            int wv = n->proto->n_input > 1 ? n->inputs[1] : -1;
            size_t n_os = 0;
            const int64_t *os = rm_node_attr_ints(n->proto, "output_shape", &n_os);
            struct group *gy = y >= 0 && rm_prune_is_channel(a, y) ? rm_prune_group_of(a, y) : NULL;
            if (is_depthwise_t(e, (int)i)) {
                if (gx)
                    fail |= push(&gx->members, &gx->n_members, (int)i);
            } else if ((group == 1 && wv >= 0 && val(a, wv)->rank >= 3 &&
                        (!gx || val(a, wv)->dims[0] == gx->channels)) ||
                       grouped_t_ok(e, (int)i, group)) {
                /* grouped (UNet decoders): channels in `group` equal blocks, pruned alike */
                if (gx)
                    fail |= push(&gx->consumers, &gx->n_consumers, (int)i);
                if (gx && group > 1)
                    set_blocks(a, x, group, (int)i);
                if (gy && os && x >= 0 && n_os == (size_t)val(a, x)->rank)
                    block(a, y, "a transposed convolution's output_shape names its channel count", (int)i);
                else if (gy)
                    fail |= push(&gy->producers, &gy->n_producers, (int)i);
                if (gy && group > 1)
                    set_blocks(a, y, group, (int)i);
            } else {
                block(a, x, "a grouped transposed convolution reads it", (int)i);
                block(a, y, "a grouped transposed convolution produces it", (int)i);
            }
            for (size_t k = 1; k < n->proto->n_input; k++)
                if (rm_prune_is_channel(a, n->inputs[k]))
                    block(a, n->inputs[k], "a transposed convolution reads it as a weight", (int)i);
        } else if (role == RM_CHAN_PARAM) {
            if (gx)
                fail |= push(&gx->members, &gx->n_members, (int)i);
        } else if (passes_channels(a, n)) {
            /* joined in pass 1 */
        } else if (role == RM_CHAN_RESAMPLE && gx) {
            const char *why = resample_blocks(a, (int)i);
            int scales, sizes;
            resample_slots(e, n, &scales, &sizes);
            if (why) {
                block(a, x, why, (int)i);
                block(a, y, why, (int)i);
            } else if (sizes >= 0 && is_const(a, n->inputs[sizes]) && resample_channel_pos(n, val(a, x)->rank) >= 0) {
                fail |= push(&gx->members, &gx->n_members, (int)i); /* its sizes name the channel count */
            }
            for (size_t k = 1; k < n->proto->n_input; k++)
                if (rm_prune_is_channel(a, n->inputs[k]))
                    block(a, n->inputs[k], "a resize reads it as its roi, scales or sizes", (int)i);
        } else if (role == RM_CHAN_LAYER_NORM && gx) {
            if (layer_norm_axis(a, n) < 2) {
                const char *why = "a LayerNormalization normalises over its channel axis";
                for (size_t k = 0; k < n->proto->n_output; k++)
                    block(a, n->outputs[k], why, (int)i);
                block(a, x, why, (int)i);
            }
            for (size_t k = 1; k < n->proto->n_input; k++)
                if (rm_prune_is_channel(a, n->inputs[k]))
                    block(a, n->inputs[k], "a LayerNormalization reads it as its scale or bias", (int)i);
        } else if (n->op == RM_OP_SHAPE && gx) {
            const char *why = shape_blocks(a, (int)i, x);
            if (why)
                block(a, x, why, (int)i);
        } else if (role == RM_CHAN_ELTWISE) {
            /* constant operands with a channel axis are the group's parameters (a bias, a
             * scale, PRelu's slope): members that slice them; anything else per channel
             * that cannot follow blocks */
            struct group *gy = y >= 0 && rm_prune_is_channel(a, y) ? rm_prune_group_of(a, y) : NULL;
            if (!gy) {
                for (size_t k = 0; k < n->proto->n_input; k++)
                    block(a, n->inputs[k], "an elementwise op gives it an output of unknown shape", (int)i);
                continue;
            }
            int ry = val(a, y)->rank;
            bool member = false;
            for (size_t k = 0; k < n->proto->n_input; k++) {
                int v = n->inputs[k];
                if (v < 0)
                    continue;
                if (is_const(a, v)) {
                    const char *why = const_operand_blocks(a, (int)i, k, gy->channels, false);
                    if (why)
                        block(a, y, why, (int)i);
                    else if (rm_prune_const_channel_axis(e->g, (int)i, k, false) >= 0)
                        member = true;
                } else if (rm_prune_is_channel(a, v)) {
                    if (val(a, v)->rank != ry) {
                        block(a, v, "an elementwise op broadcasts it against a tensor of another rank", (int)i);
                        block(a, y, "an elementwise op broadcasts tensors of different ranks", (int)i);
                    }
                } else if (rm_prune_const_channel_axis(e->g, (int)i, k, false) >= 0) {
                    block(a, y, "an elementwise op applies a computed per-channel vector", (int)i);
                }
            }
            if (member)
                fail |= push(&gy->members, &gy->n_members, (int)i);
        } else if (role == RM_CHAN_CONCAT) {
            int64_t axis = concat_axis(a, n);
            bool joined = axis >= 0 && axis != 1 && rm_prune_is_channel(a, y);
            for (size_t k = 0; k < n->proto->n_input; k++) {
                struct group *gk = rm_prune_is_channel(a, n->inputs[k]) ? rm_prune_group_of(a, n->inputs[k]) : NULL;
                if (!gk)
                    continue;
                if (joined && rm_prune_root(a, n->inputs[k]) == rm_prune_root(a, y))
                    continue; /* joined in pass 1 */
                if (axis != 1 || n->proto->n_input > MAX_CONCAT_INPUTS) {
                    block(a, n->inputs[k], "a Concat joins it on an axis it cannot follow", (int)i);
                    block(a, y, "a Concat joins tensors on an axis it cannot follow", (int)i);
                } else {
                    fail |= push(&gk->concats, &gk->n_concats, (int)i);
                }
            }
        } else if (role == RM_CHAN_SPLIT && gx) {
            int64_t axis = split_axis(a, n);
            const char *why = axis < 0 ? "a Split on an axis its input does not have"
                              : axis == 1 ? split_blocks(a, (int)i)
                                          : NULL;
            for (size_t k = 0; !why && axis != 1 && k < n->proto->n_output; k++)
                if (n->outputs[k] < 0 || !rm_prune_is_channel(a, n->outputs[k]) ||
                    rm_prune_root(a, n->outputs[k]) != rm_prune_root(a, x))
                    why = "a Split part of unknown shape";
            if (why) {
                block(a, x, why, (int)i);
                for (size_t k = 0; k < n->proto->n_output; k++)
                    block(a, n->outputs[k], why, (int)i);
            } else if (axis == 1) {
                fail |= push(&gx->splits, &gx->n_splits, (int)i);
                for (size_t k = 0; k < n->proto->n_output; k++) {
                    struct group *gk = rm_prune_group_of(a, n->outputs[k]);
                    fail |= push(&gk->parts, &gk->n_parts, (int)i);
                }
            }
            for (size_t k = 1; k < n->proto->n_input; k++)
                if (rm_prune_is_channel(a, n->inputs[k]))
                    block(a, n->inputs[k], "a Split reads it as its sizes", (int)i);
        } else if (n->op == RM_OP_SLICE && a->set_of[i] != -1) {
            /* a part of a slice set (above) */
        } else if (role == RM_CHAN_FLATTEN || rm_edit_flattens(g, (int)i)) {
            if (!gx)
                continue;
            const struct rm_value *xv = val(a, x);
            int64_t spatial; /* -1: unknown, or past int64 (the dims come from the file) */
            if (rm_dims_numel(xv->dims + 2, (size_t)(xv->rank - 2), &spatial))
                spatial = -1;
            if (rm_node_attr_int(n->proto, "axis", 1) != 1 || spatial <= 0 || y < 0) {
                block(a, x, "a Flatten with axis != 1 reads it", (int)i);
                continue;
            }
            const struct rm_value *yv = val(a, y);
            if (yv->output >= 0)
                block(a, x, "it reaches a graph output (flattened)", -1);
            for (int k = 0; k < yv->n_consumers; k++) {
                int c = yv->consumers[k];
                if (!rm_edit_is_linear(e->g, c) || e->g->nodes[c].inputs[0] != y) {
                    block(a, x, "its flattened features feed something other than a Linear", c);
                    continue;
                }
                if (push_gemm(gx, c, spatial)) {
                    fail = 1;
                    break;
                }
            }
        } else if (role == RM_CHAN_GEMM || (n->op == RM_OP_MATMUL && rm_edit_is_linear(e->g, (int)i))) {
            /* a Linear (VGG's and MobileNetV3's classifier): its output features are a group
             * it produces (weight rows or columns, the bias) */
            struct group *gy = y >= 0 && rm_prune_is_channel(a, y) ? rm_prune_group_of(a, y) : NULL;
            if (gy && val(a, y)->rank == 2 && rm_prune_linear_out_axis(e->g, (int)i, val(a, y)->dims[1]) >= 0)
                fail |= push(&gy->producers, &gy->n_producers, (int)i);
            else if (gy)
                block(a, y, "a Linear produces it whose weight or bias cannot follow its features", (int)i);
            if (gx && push_gemm(gx, (int)i, 1))
                fail = 1;
        } else {
            /* anything else reading a channel tensor: Reshape, Transpose (channel
             * shuffles), Shape, Slice, MatMul, ... is not followed */
            for (size_t k = 0; k < n->proto->n_input; k++)
                if (rm_prune_is_channel(a, n->inputs[k]))
                    block(a, n->inputs[k], "the analysis cannot follow channels through this op", (int)i);
            for (size_t k = 0; k < n->proto->n_output; k++)
                if (rm_prune_is_channel(a, n->outputs[k]))
                    block(a, n->outputs[k], "its channels come from an op the analysis cannot follow", (int)i);
        }
        if (fail)
            return rm_error_set(e->err, RM_ENOMEM, "out of memory");
    }
    for (int i = 0; i < a->n_groups; i++) {
        struct group *gr = &a->groups[i];
        if (gr->channels <= 0 || gr->channels > MAX_CHANNELS) /* a declared size, not a tensor's */
            block(a, gr->root, "its channel count is unknown", -1);
    }
    /* each group's channel tensors in value order, listed once (apply_group walked every
     * value for every group: quadratic in a long chain) */
    a->vstart = calloc((size_t)a->n_groups + 2, sizeof *a->vstart);
    a->vlist = malloc((g->n_values + 1) * sizeof *a->vlist);
    if (!a->vstart || !a->vlist)
        return rm_error_set(e->err, RM_ENOMEM, "out of memory");
    for (size_t v = 0; v < g->n_values; v++)
        if (rm_prune_is_channel(a, (int)v))
            a->vstart[a->group_of[rm_prune_root(a, (int)v)] + 2]++;
    for (int i = 0; i < a->n_groups; i++)
        a->vstart[i + 2] += a->vstart[i + 1];
    for (size_t v = 0; v < g->n_values; v++)
        if (rm_prune_is_channel(a, (int)v))
            a->vlist[a->vstart[a->group_of[rm_prune_root(a, (int)v)] + 1]++] = (int)v;
    /* a group derived twice (by two Concats, or a Concat and a Split) or from itself
     * cannot follow both */
    int *derivs = calloc((size_t)a->n_groups + 1, sizeof *derivs);
    if (!derivs)
        return rm_error_set(e->err, RM_ENOMEM, "out of memory");
    for (size_t i = 0; i < g->n_nodes; i++) {
        const int *src;
        size_t n_src;
        struct group *t = rm_prune_derived(a, (int)i, &src, &n_src);
        if (!t)
            continue;
        derivs[t - a->groups]++;
        for (size_t k = 0; k < n_src; k++)
            if (rm_prune_is_channel(a, src[k]) && rm_prune_group_of(a, src[k]) == t)
                block(a, t->root, "its channels are concatenated or split into themselves", (int)i);
    }
    for (int i = 0; i < a->n_groups; i++) {
        if (derivs[i] > 1)
            block(a, a->groups[i].root, "its channels are put together by more than one Concat or Split", -1);
        if (derivs[i] && a->groups[i].blocks > 1)
            block(a, a->groups[i].root, "a grouped convolution reads channels a Concat or Split puts together", -1);
        if (a->groups[i].channels > 0 && a->groups[i].channels % a->groups[i].blocks)
            block(a, a->groups[i].root, "a grouped convolution's groups do not divide its channels", -1);
    }
    free(derivs);
    /* a derived group's channels are its sources': when it cannot be followed
     * (ShuffleNet's channel shuffle after a concat), neither can they */
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t i = 0; i < g->n_nodes; i++) {
            const int *src;
            size_t n_src;
            struct group *t = rm_prune_derived(a, (int)i, &src, &n_src);
            if (!t || !t->unprunable)
                continue;
            for (size_t k = 0; k < n_src; k++) {
                struct group *gk = rm_prune_is_channel(a, src[k]) ? rm_prune_group_of(a, src[k]) : NULL;
                if (gk && !gk->unprunable) {
                    block(a, src[k],
                          g->nodes[i].op == RM_OP_CONCAT ? "it feeds a Concat whose output channels cannot be followed"
                          : g->nodes[i].op == RM_OP_SPLIT
                              ? "it is a part of a Split whose input channels cannot be followed"
                              : "it is a Slice of channels that cannot be followed",
                          (int)i);
                    changed = true;
                }
            }
        }
    }
    /* which groups a weight scores: their producers', or the rows of a split input's */
    for (int i = 0; i < a->n_groups; i++)
        a->groups[i].sourced = a->groups[i].n_producers > 0;
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t i = 0; i < g->n_nodes; i++) {
            const int *src;
            size_t n_src;
            struct group *t = g->nodes[i].op != RM_OP_CONCAT ? rm_prune_derived(a, (int)i, &src, &n_src) : NULL;
            if (!t || !t->sourced || t->unprunable)
                continue;
            for (size_t k = 0; k < n_src; k++) {
                struct group *gk = rm_prune_group_of(a, src[k]);
                if (!gk->sourced) {
                    gk->sourced = true;
                    changed = true;
                }
            }
        }
    }
    return 0;
}

/* ---- importance --------------------------------------------------------------- */

int rm_prune_part_ranges(struct analysis *a, const struct group *gr, int64_t off, int64_t count,
                         int (*fn)(struct analysis *a, const struct group *gx, int64_t at, void *ctx), void *ctx)
{
    for (int k = 0; k < gr->n_parts; k++) {
        int x;
        const int *parts;
        size_t n_parts;
        if (!rm_prune_divider(a, gr->parts[k], &x, &parts, &n_parts))
            continue;
        const struct group *gx = rm_prune_group_of(a, x);
        for (size_t slot = 0; gx && slot < n_parts; slot++) {
            int64_t at = rm_prune_split_offset(a, gr->parts[k], slot) + off;
            if (rm_prune_group_of(a, parts[slot]) != gr || at < 0 || at + count > gx->channels)
                continue;
            int rc = fn(a, gx, at, ctx);
            if (rc)
                return rc;
        }
    }
    return 0;
}

struct norms_ctx {
    int64_t count;
    double *score;
    int criterion, depth;
};
static int add_part_norms(struct analysis *a, const struct group *gx, int64_t at, void *ctx);

/* Sum of |x| (or of x * x) over n floats at p, any alignment, in double. Eight
 * accumulators, so the compiler vectorises it: one running sum was a chain of
 * dependent adds, and scoring VGG16's 553 MB took 0.6 s. */
static double run_norm(const uint8_t *p, int64_t n, bool squares)
{
    double s[8] = {0};
    int64_t j = 0;
    float f[8];
    if (squares)
        for (; j + 8 <= n; j += 8) {
            memcpy(f, p + (size_t)j * sizeof *f, sizeof f);
            for (int k = 0; k < 8; k++)
                s[k] += (double)f[k] * f[k];
        }
    else
        for (; j + 8 <= n; j += 8) {
            memcpy(f, p + (size_t)j * sizeof *f, sizeof f);
            for (int k = 0; k < 8; k++)
                s[k] += fabs((double)f[k]);
        }
    double t = 0; /* the tail: s and f stay in registers (an index into s would not) */
    for (; j < n; j++) {
        float x;
        memcpy(&x, p + (size_t)j * sizeof x, sizeof x);
        t += squares ? (double)x * x : fabs((double)x);
    }
    return (((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))) + t;
}

/* Add to score[0 .. count) the norms of channels off .. off + count of group gr's weights:
 * its producers' and depthwise convs', and where gr is a part of a Split, those of the
 * split input's weights at the part's offset. */
static int add_norms(struct analysis *a, const struct group *gr, int64_t off, int64_t count, double *score,
                     int criterion, int depth)
{
    struct edit *e = a->e;
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? gr->n_members : gr->n_producers;
        int *list = pass ? gr->members : gr->producers;
        for (int k = 0; k < n; k++) {
            int node = list[k];
            enum rm_op op = e->g->nodes[node].op;
            bool linear = pass == 0 && (op == RM_OP_GEMM || op == RM_OP_MATMUL);
            if (op != RM_OP_CONV && op != RM_OP_CONV_TRANSPOSE && !linear)
                continue; /* BatchNorm and the other members: no weight norm of their own */
            /* the channel axis of the weight: 0, but 1 for a producing ConvTranspose
             * ([C_in, C_out, k...]; a depthwise one's [C, 1, k...] has them on 0), and a
             * Linear's output axis */
            int axis = linear ? rm_prune_linear_out_axis(e->g, node, gr->channels)
                       : pass == 0 && op == RM_OP_CONV_TRANSPOSE ? 1 : 0;
            if (axis < 0)
                continue;
            float *copy = NULL;
            const uint8_t *w = NULL;
            int64_t nw;
            const Onnx__TensorProto *tp;
            int wnode = node;
            size_t wslot = 1;
            bool transposed;
            if (linear) /* where it is stored: (node, 1), or a Transpose's input */
                rm_edit_linear_weight(e->g, node, &wnode, &wslot, &transposed);
            int rc = rm_edit_param_tensor(e, wnode, wslot, &tp);
            if (!rc && tp)
                rc = rm_edit_f32_bytes(e, tp, &w, &nw, &copy); /* read where the bytes are */
            if (rc)
                return rc;
            if (!tp || tp->n_dims < 2 || tp->dims[axis] != gr->channels || !tp->dims[0]) {
                free(copy);
                continue;
            }
            int64_t outer = axis ? tp->dims[0] : 1, row = nw / gr->channels / outer;
            double *sum = calloc((size_t)(count ? count : 1), sizeof *sum);
            if (!sum) {
                free(copy);
                return rm_error_set(e->err, RM_ENOMEM, "out of memory");
            }
            if (!copy && count == gr->channels) /* every byte is read: map them in one go */
                rm_fs_map_populate(w, (size_t)nw * sizeof(float));
            /* in file order: w[o][off + c][0 .. row) is one run */
            for (int64_t o = 0; o < outer; o++)
                for (int64_t c = 0; c < count; c++)
                    sum[c] += run_norm(w + (size_t)((o * gr->channels + off + c) * row) * sizeof(float), row,
                                       criterion == 2);
            for (int64_t c = 0; c < count; c++)
                score[c] += criterion == 2 ? sqrt(sum[c]) : sum[c];
            free(sum);
            free(copy);
        }
    }
    /* a part of a Split: the rows of the split input's weights (a part of a part, too) */
    struct norms_ctx c = {count, score, criterion, depth + 1};
    return depth < 16 ? rm_prune_part_ranges(a, gr, off, count, add_part_norms, &c) : 0;
}

static int add_part_norms(struct analysis *a, const struct group *gx, int64_t at, void *ctx)
{
    const struct norms_ctx *c = ctx;
    return add_norms(a, gx, at, c->count, c->score, c->criterion, c->depth);
}

int rm_prune_score_norm(struct analysis *a, struct group *gr, int criterion)
{
    gr->score = calloc((size_t)gr->channels, sizeof *gr->score);
    if (!gr->score)
        return rm_error_set(a->e->err, RM_ENOMEM, "out of memory");
    return add_norms(a, gr, 0, gr->channels, gr->score, criterion, 0);
}

/* ---- applying a group's keep list ------------------------------------------- */

static int set_map(struct edit *e, int64_t old_c, const int64_t *keep, int64_t n_keep)
{
    free(e->map);
    e->map = malloc((size_t)(n_keep ? n_keep : 1) * sizeof *e->map);
    if (!e->map)
        return rm_error_set(e->err, RM_ENOMEM, "out of memory");
    memcpy(e->map, keep, (size_t)n_keep * sizeof *keep);
    e->old_c = old_c;
    e->new_c = n_keep;
    return 0;
}

/* Output rows of a producing conv (weight [C, ...], bias [C]) follow the map. */
static int slice_producer(struct edit *e, int node)
{
    const Onnx__TensorProto *tp;
    int64_t n;
    int rc = rm_edit_param_tensor(e, node, 1, &tp);
    if (rc)
        return rc;
    if (!tp || tp->n_dims < 2 || tp->dims[0] != e->old_c || tp->n_dims > RM_MAX_RANK)
        return rm_error_set(e->err, RM_EEDIT, "%s: weight does not have %lld output channels", rm_edit_where(e, node),
                            (long long)e->old_c);
    if ((rc = rm_tensor_numel(tp, &n, e->err)))
        return rc;
    int64_t row = e->old_c ? n / e->old_c : 0;
    int64_t dims[RM_MAX_RANK];
    for (size_t d = 0; d < tp->n_dims; d++)
        dims[d] = tp->dims[d];
    dims[0] = e->new_c;
    char name[512];
    snprintf(name, sizeof name, "%s.weight", rm_edit_where(e, node));
    rc = rm_edit_slice(e, node, 1, tp, 1, e->old_c, row, 0, dims, (int)tp->n_dims, name);
    if (!rc && e->g->nodes[node].proto->n_input > 2 && e->g->nodes[node].proto->input[2][0]) {
        rc = rm_edit_param_tensor(e, node, 2, &tp);
        if (!rc && tp && !(rc = rm_tensor_numel(tp, &n, e->err))) {
            snprintf(name, sizeof name, "%s.bias", rm_edit_where(e, node));
            rc = rm_edit_slice(e, node, 2, tp, 1, n, 1, 0, &e->new_c, 1, name);
        }
    }
    return rc;
}

/* Input `slot` of node (float, an initializer) sliced along `axis` by e->map:
 * [..., old_c, ...] -> [..., new_c, ...]; nothing when the optional input is absent. */
static int slice_param(struct edit *e, int node, size_t slot, int axis, const char *fallback)
{
    const Onnx__TensorProto *tp;
    int rc = rm_edit_param_tensor(e, node, slot, &tp);
    if (rc || !tp)
        return rc;
    if (axis < 0 || (size_t)axis >= tp->n_dims || tp->n_dims > RM_MAX_RANK || tp->dims[axis] != e->old_c)
        return rm_error_set(e->err, RM_EEDIT, "%s: input %zu does not have %lld channels on axis %d",
                            rm_edit_where(e, node), slot, (long long)e->old_c, axis);
    int64_t dims[RM_MAX_RANK], outer = 1, inner = 1;
    for (size_t d = 0; d < tp->n_dims; d++) {
        dims[d] = tp->dims[d];
        if ((int)d < axis)
            outer *= tp->dims[d];
        else if ((int)d > axis)
            inner *= tp->dims[d];
    }
    dims[axis] = e->new_c;
    /* w[o][c][i] -> nw[o][j][i] = w[o][map[j]][i] */
    return rm_edit_slice(e, node, slot, tp, outer, e->old_c, inner, 0, dims, (int)tp->n_dims, fallback);
}

/* The same for a node's weight (slot 1) and bias (slot 2), named after its module. */
static int slice_weight_bias(struct edit *e, int node, int w_axis)
{
    char name[512];
    snprintf(name, sizeof name, "%s.weight", rm_edit_where(e, node));
    int rc = slice_param(e, node, 1, w_axis, name);
    snprintf(name, sizeof name, "%s.bias", rm_edit_where(e, node));
    return rc ? rc : slice_param(e, node, 2, 0, name);
}

/* A Linear producing the group: its weight's output axis (rm_prune_linear_out_axis) and a
 * Gemm's bias vector follow the map; a bias of one value for all stays. */
static int slice_linear(struct edit *e, int node)
{
    int axis = rm_prune_linear_out_axis(e->g, node, e->old_c);
    if (axis < 0)
        return rm_error_set(e->err, RM_EEDIT, "%s: its weight does not have %lld output features",
                            rm_edit_where(e, node), (long long)e->old_c);
    char name[512];
    int wnode;
    size_t wslot;
    bool transposed;
    rm_edit_linear_weight(e->g, node, &wnode, &wslot, &transposed); /* else (node, 1) */
    snprintf(name, sizeof name, "%s.weight", rm_edit_where(e, node));
    int rc = slice_param(e, wnode, wslot, axis, name);
    const struct rm_node *n = &e->g->nodes[node];
    if (!rc && n->op == RM_OP_GEMM && n->n_inputs > 2 && n->inputs[2] >= 0) {
        const struct rm_value *b = &e->g->values[n->inputs[2]];
        snprintf(name, sizeof name, "%s.bias", rm_edit_where(e, node));
        if (b->rank >= 1 && b->dims[b->rank - 1] == e->old_c && e->old_c > 1)
            rc = slice_param(e, node, 2, b->rank - 1, name);
    }
    if (!rc)
        rm_edit_note(e, "%s: Linear out_features %lld -> %lld", rm_edit_where(e, node), (long long)e->old_c,
                     (long long)e->new_c);
    return rc;
}

/* A Resize whose constant `sizes` names the channel count: that entry becomes new_c (in
 * place when only this node reads the initializer, else in a copy of its own). */
static int resize_sizes(struct analysis *a, int node)
{
    struct edit *e = a->e;
    const struct rm_node *n = &e->g->nodes[node];
    int scales, sizes;
    resample_slots(e, n, &scales, &sizes);
    int pos = n->inputs[0] >= 0 ? resample_channel_pos(n, e->g->values[n->inputs[0]].rank) : -1;
    int src = sizes >= 0 ? rm_graph_initializer_of(e->g, n->inputs[sizes]) : -1;
    if (src < 0 || pos < 0)
        return rm_error_set(e->err, RM_EEDIT, "%s: its sizes cannot follow the channels", rm_edit_where(e, node));
    const Onnx__TensorProto *t = e->m->proto->graph->initializer[e->g->values[src].init];
    int64_t nz, v[RM_MAX_RANK];
    if (rm_tensor_numel(t, &nz, e->err))
        return e->err->code;
    if (nz <= pos || nz > RM_MAX_RANK || t->n_dims != 1)
        return rm_error_set(e->err, RM_EEDIT, "%s: its sizes do not list the channel axis", rm_edit_where(e, node));
    int rc = rm_tensor_to_i64(t, v, nz, e->err);
    if (rc)
        return rc;
    if (v[pos] != e->old_c)
        return rm_error_set(e->err, RM_EEDIT, "%s: its sizes give %lld channels, the group has %lld",
                            rm_edit_where(e, node), (long long)v[pos], (long long)e->old_c);
    v[pos] = e->new_c;
    if (rm_edit_uses(e, src) == 1)
        return rm_model_set_initializer_i64(e->m, e->g->values[src].name, 1, &nz, v, e->err);
    const char *name;
    rc = rm_model_add_initializer_i64(e->m, e->g->values[src].name, 1, &nz, v, &name, e->err);
    if (!rc)
        rc = rm_model_set_node_input(e->m, node, (size_t)sizes, name, e->err);
    if (!rc)
        rm_edit_note(e, "%s: %s is shared with other nodes; copied to '%s'", rm_edit_where(e, node),
                     e->g->values[src].name, name);
    return rc;
}

/* A member of the group other than a BatchNorm or depthwise Conv follows e->map. */
static int apply_member(struct analysis *a, const struct group *gr, int node)
{
    struct edit *e = a->e;
    const struct rm_node *n = &e->g->nodes[node];
    int rc = 0;
    switch (rm_op_def(n->op)->chan) {
    case RM_CHAN_PARAM: /* InstanceNormalization: scale and B per channel */
        rc = slice_weight_bias(e, node, 0);
        break;
    case RM_CHAN_CONV_TRANSPOSE: /* depthwise: weight [C, 1, k...], bias, groups follow */
        rc = slice_weight_bias(e, node, 0);
        if (!rc)
            rc = rm_model_set_attr_int(e->m, node, "group", e->new_c, e->err);
        if (!rc)
            rm_edit_note(e, "%s: depthwise ConvTranspose %lld -> %lld channels (groups follow)",
                         rm_edit_where(e, node), (long long)e->old_c, (long long)e->new_c);
        break;
    case RM_CHAN_RESAMPLE:
        rc = resize_sizes(a, node);
        break;
    case RM_CHAN_ELTWISE:
        for (size_t k = 0; k < n->proto->n_input && !rc; k++) {
            int ax = rm_prune_const_channel_axis(e->g, node, k, gr->last);
            if (ax >= 0 && is_const(a, n->inputs[k]))
                rc = slice_param(e, node, k, ax, e->g->values[n->inputs[k]].name);
        }
        break;
    default:
        rc = rm_edit_resize_consumer(e, node); /* a depthwise Conv */
        break;
    }
    return rc;
}

/* Apply e->map (set by the caller) to every member of group gr and record maps for
 * its tensors. */
static int apply_group(struct analysis *a, struct group *gr)
{
    struct edit *e = a->e;
    int rc = 0;
    /* a ConvTranspose's weight is [C_in, C_out / group, k...]: it produces on axis 1 and
     * consumes on axis 0 */
    for (int k = 0; k < gr->n_producers && !rc; k++) {
        int node = gr->producers[k];
        int64_t group = rm_node_attr_int(e->g->nodes[node].proto, "group", 1);
        if (e->g->nodes[node].op == RM_OP_GEMM || e->g->nodes[node].op == RM_OP_MATMUL) {
            rc = slice_linear(e, node);
        } else if (e->g->nodes[node].op != RM_OP_CONV_TRANSPOSE) {
            rc = slice_producer(e, node);
        } else if (group > 1) { /* weight [C_in, C_out / group]: the columns of each group */
            char name[512];
            snprintf(name, sizeof name, "%s.bias", rm_edit_where(e, node));
            rc = rm_edit_slice_grouped(e, node, group);
            if (!rc)
                rc = slice_param(e, node, 2, 0, name);
            if (!rc)
                rm_edit_note(e, "%s: grouped ConvTranspose (groups=%lld) out_channels %lld -> %lld",
                             rm_edit_where(e, node), (long long)group, (long long)e->old_c, (long long)e->new_c);
        } else {
            rc = slice_weight_bias(e, node, 1);
        }
    }
    for (int k = 0; k < gr->n_members && !rc; k++) {
        int node = gr->members[k];
        rc = e->g->nodes[node].op == RM_OP_BATCH_NORM ? rm_edit_resize_bn(e, node) : apply_member(a, gr, node);
    }
    for (int k = 0; k < gr->n_consumers && !rc; k++) {
        int node = gr->consumers[k];
        if (e->g->nodes[node].op == RM_OP_CONV_TRANSPOSE) {
            char name[512];
            snprintf(name, sizeof name, "%s.weight", rm_edit_where(e, node));
            rc = slice_param(e, node, 1, 0, name);
            if (!rc)
                rm_edit_note(e, "%s: ConvTranspose in_channels %lld -> %lld", rm_edit_where(e, node),
                             (long long)e->old_c, (long long)e->new_c);
        } else {
            rc = rm_edit_resize_consumer(e, node);
        }
    }
    for (int k = 0; k < gr->n_gemms && !rc; k++)
        rc = rm_edit_resize_gemm(e, gr->gemms[k], gr->gemm_spatial[k]);
    int gi = (int)(gr - a->groups);
    for (int k = a->vstart[gi]; k < a->vstart[gi + 1] && !rc; k++)
        rc = rm_channel_map_record(e->m, e->g->values[a->vlist[k]].name, e->map, e->new_c, e->err);
    return rc;
}

/* A Split whose parts changed lists their new sizes: in place when it reads a constant
 * of its own, else in a new one (from opset 13: its `split` input, which replaces opset
 * 18's `num_outputs`; before: its attribute). */
static int split_sizes(struct analysis *a, int node)
{
    struct edit *e = a->e;
    const struct rm_node *n = &e->g->nodes[node];
    int64_t sizes[MAX_CONCAT_INPUTS], count = (int64_t)n->n_outputs;
    char list[160] = "";
    for (size_t k = 0; k < n->n_outputs; k++) {
        const struct group *gk = rm_prune_group_of(a, n->outputs[k]);
        sizes[k] = gk->keep ? gk->n_keep : gk->channels;
        size_t used = strlen(list);
        if (used + 24 < sizeof list)
            snprintf(list + used, sizeof list - used, "%s%lld", k ? ", " : "", (long long)sizes[k]);
    }
    int rc;
    if (e->g->opset < 13) {
        rc = rm_model_set_attr_ints(e->m, node, "split", sizes, n->n_outputs, e->err);
    } else {
        bool listed = n->n_inputs > 1 && n->inputs[1] >= 0;
        int src = listed ? rm_graph_initializer_of(e->g, n->inputs[1]) : -1;
        if (src >= 0 && rm_edit_uses(e, src) == 1) {
            rc = rm_model_set_initializer_i64(e->m, e->g->values[src].name, 1, &count, sizes, e->err);
        } else {
            const char *name;
            rc = rm_model_add_initializer_i64(e->m, listed ? e->g->values[n->inputs[1]].name : "split_sizes", 1,
                                              &count, sizes, &name, e->err);
            if (!rc)
                rc = rm_model_set_node_input(e->m, node, 1, name, e->err);
        }
        if (!rc && e->g->opset >= 18)
            rc = rm_model_del_attr(e->m, node, "num_outputs", e->err);
    }
    if (!rc)
        rm_edit_note(e, "%s: Split sizes -> %s", rm_edit_where(e, node), list);
    return rc;
}

/* Input `slot` of node reads the int64 vector v: its own initializer rewritten in place
 * when nothing else reads it, else a new one named after base. */
static int set_i64_input(struct edit *e, int node, size_t slot, const char *base, const int64_t *v, int64_t n)
{
    const struct rm_node *nd = &e->g->nodes[node];
    int cur = slot < nd->n_inputs ? nd->inputs[slot] : -1;
    int src = cur >= 0 ? rm_graph_initializer_of(e->g, cur) : -1;
    if (src >= 0 && src == cur && rm_edit_uses(e, src) == 1)
        return rm_model_set_initializer_i64(e->m, e->g->values[src].name, 1, &n, v, e->err);
    const char *name;
    int rc = rm_model_add_initializer_i64(e->m, base, 1, &n, v, &name, e->err);
    return rc ? rc : rm_model_set_node_input(e->m, node, slot, name, e->err);
}

/* The Slices of a set take their parts' new ranges, as Slice(x, [lo], [hi], [1]) (the
 * attributes before opset 10). Bounds computed from Shape are no longer read, and
 * rm_edit_finish sweeps that arithmetic away. */
static int slice_bounds(struct analysis *a, const struct slice_set *s)
{
    struct edit *e = a->e;
    int64_t lo = 0, one = 1;
    char list[160] = "";
    int rc = 0;
    for (size_t k = 0; k < s->n && !rc; k++) {
        const struct group *gk = rm_prune_group_of(a, s->outs[k]);
        int64_t hi = lo + (gk->keep ? gk->n_keep : gk->channels);
        int node = s->nodes[k];
        const char *out = e->g->values[s->outs[k]].name;
        char base[3][96];
        snprintf(base[0], sizeof base[0], "%.80s.starts", out);
        snprintf(base[1], sizeof base[1], "%.80s.ends", out);
        snprintf(base[2], sizeof base[2], "%.80s.axes", out);
        if (e->g->opset < 10 && e->g->nodes[node].n_inputs == 1) {
            rc = rm_model_set_attr_ints(e->m, node, "starts", &lo, 1, e->err);
            if (!rc)
                rc = rm_model_set_attr_ints(e->m, node, "ends", &hi, 1, e->err);
            if (!rc)
                rc = rm_model_set_attr_ints(e->m, node, "axes", &one, 1, e->err);
        } else {
            /* a Slice that names the channel axis alone keeps its axes and steps (the
             * analysis checked that it takes them with step 1); any other (more axes, or
             * axes left to their default) gets axes [1] and no steps */
            const struct rm_node *nd = &e->g->nodes[node];
            const struct rm_host_tensor *st = e->g->known[nd->inputs[1]];
            const struct rm_host_tensor *ax =
                nd->n_inputs > 3 && nd->inputs[3] >= 0 ? e->g->known[nd->inputs[3]] : NULL;
            int64_t axis = ax && ax->rank == 1 && ax->dims[0] == 1 ? rm_const_int(ax, 0) : 0;
            bool alone = st && st->rank == 1 && st->dims[0] == 1 && !rm_norm_axis(&axis, e->g->values[s->x].rank) &&
                         axis == 1;
            rc = set_i64_input(e, node, 1, base[0], &lo, 1);
            if (!rc)
                rc = set_i64_input(e, node, 2, base[1], &hi, 1);
            if (!rc && !alone)
                rc = set_i64_input(e, node, 3, base[2], &one, 1);
            if (!rc && !alone)
                rc = rm_model_trim_inputs(e->m, node, 4, e->err);
        }
        size_t used = strlen(list);
        if (used + 48 < sizeof list)
            snprintf(list + used, sizeof list - used, "%s[%lld:%lld]", k ? ", " : "", (long long)lo, (long long)hi);
        lo = hi;
    }
    if (!rc)
        rm_edit_note(e, "%s: Slices of its channels -> %s", e->g->values[s->x].name, list);
    return rc;
}

int64_t rm_prune_source_channels(struct analysis *a, int v, struct group **gr)
{
    *gr = v >= 0 && rm_prune_is_channel(a, v) ? rm_prune_group_of(a, v) : NULL;
    int64_t c = *gr ? (*gr)->channels : v >= 0 && val(a, v)->rank >= 2 ? val(a, v)->dims[1] : -1;
    return c > 0 && c <= MAX_CHANNELS ? c : -1;
}

/* Derivation node i: group t's channel map is the concatenation of its sources' maps
 * (shifted by their offsets), and its members and consumers follow it; a Split's sizes
 * follow its parts. Nothing when no source changed. */
static int derive(struct analysis *a, int i, struct group *t, const int *src, size_t n_src)
{
    struct edit *e = a->e;
    enum rm_op op = e->g->nodes[i].op;
    const char *what = op == RM_OP_CONCAT ? "Concat output" : op == RM_OP_SPLIT ? "Split input" : "sliced tensor";
    bool changed = false, unknown = false;
    int64_t total_old = 0, total_new = 0;
    for (size_t k = 0; k < n_src; k++) {
        struct group *gk;
        int64_t c = rm_prune_source_channels(a, src[k], &gk);
        unknown |= c < 0;
        changed |= gk && gk->keep;
        total_old += c;
        total_new += gk && gk->keep ? gk->n_keep : c;
    }
    if (!changed)
        return 0;
    if (unknown)
        return rm_error_set(e->err, RM_EEDIT, "%s: a part of the %s has channels of unknown count",
                            rm_edit_where(e, i), what);
    if (t->keep)
        return rm_error_set(e->err, RM_EEDIT, "%s: the %s's group is pruned twice", rm_edit_where(e, i), what);
    if (t->channels != total_old)
        return rm_error_set(e->err, RM_EEDIT, "%s: %s has %lld channels, its parts add up to %lld",
                            rm_edit_where(e, i), what, (long long)t->channels, (long long)total_old);
    t->keep = malloc((size_t)total_new * sizeof *t->keep);
    if (!t->keep)
        return rm_error_set(e->err, RM_ENOMEM, "out of memory");
    int64_t off = 0, j = 0;
    for (size_t k = 0; k < n_src; k++) {
        struct group *gk;
        int64_t c = rm_prune_source_channels(a, src[k], &gk);
        if (gk && gk->keep)
            for (int64_t q = 0; q < gk->n_keep; q++)
                t->keep[j++] = off + gk->keep[q];
        else
            for (int64_t q = 0; q < c; q++)
                t->keep[j++] = off + q;
        off += c;
    }
    t->n_keep = total_new;
    int rc = set_map(e, t->channels, t->keep, t->n_keep);
    if (!rc)
        rc = apply_group(a, t);
    if (!rc && op == RM_OP_SPLIT)
        rc = split_sizes(a, i);
    else if (!rc && op == RM_OP_SLICE)
        rc = slice_bounds(a, &a->sets[a->set_of[i]]);
    if (!rc)
        rm_edit_note(e, "%s: %s %lld -> %lld channels", rm_edit_where(e, i), what, (long long)total_old,
                     (long long)total_new);
    return rc;
}

/* Make every derived group once its sources are final, in dependency order (Kahn's: a
 * Concat of a Split's part of a Concat ... in any nesting, linear in the graph). */
static int apply_derived(struct analysis *a)
{
    struct edit *e = a->e;
    const struct rm_graph *g = e->g;
    size_t ng = (size_t)a->n_groups, nn = g->n_nodes, n_slots = 0, n_deriv = 0;
    int *pending = calloc(ng + 1, sizeof *pending); /* per group: derivations of it not made yet */
    int *start = calloc(ng + 2, sizeof *start);     /* per group: derivation nodes reading it */
    int *need = calloc(nn + 1, sizeof *need);       /* per node: source slots still pending */
    int *deriv = malloc((nn + 1) * sizeof *deriv);  /* the derivation nodes, in graph order */
    int *queue = malloc((nn + 1) * sizeof *queue), *uses = NULL;
    int rc = 0;
    if (!pending || !start || !need || !deriv || !queue)
        goto oom;
    for (size_t i = 0; i < nn; i++) {
        const int *src;
        size_t n_src;
        struct group *t = rm_prune_derived(a, (int)i, &src, &n_src);
        if (!t || t->unprunable)
            continue;
        deriv[n_deriv++] = (int)i;
        pending[t - a->groups]++;
        for (size_t k = 0; k < n_src; k++)
            if (src[k] >= 0 && rm_prune_is_channel(a, src[k])) {
                start[rm_prune_group_of(a, src[k]) - a->groups + 2]++;
                n_slots++;
            }
    }
    for (size_t gi = 0; gi < ng; gi++)
        start[gi + 2] += start[gi + 1];
    if (!(uses = malloc((n_slots + 1) * sizeof *uses)))
        goto oom;
    size_t n_queue = 0, head = 0;
    for (size_t d = 0; d < n_deriv; d++) {
        const int *src;
        size_t n_src;
        int i = deriv[d];
        rm_prune_derived(a, i, &src, &n_src);
        for (size_t k = 0; k < n_src; k++)
            if (src[k] >= 0 && rm_prune_is_channel(a, src[k])) {
                long gk = rm_prune_group_of(a, src[k]) - a->groups;
                uses[start[gk + 1]++] = i;
                need[i] += pending[gk] > 0;
            }
        if (!need[i])
            queue[n_queue++] = i;
    }
    while (head < n_queue && !rc) {
        int i = queue[head++];
        const int *src;
        size_t n_src;
        struct group *t = rm_prune_derived(a, i, &src, &n_src);
        rc = derive(a, i, t, src, n_src);
        long gt = t - a->groups;
        if (--pending[gt] == 0)
            for (int u = start[gt]; u < start[gt + 1]; u++)
                if (--need[uses[u]] == 0)
                    queue[n_queue++] = uses[u];
    }
    /* what is left waits on itself: an error only when a channel it follows was removed */
    for (size_t d = 0; d < n_deriv && !rc && n_queue < n_deriv; d++) {
        const int *src;
        size_t n_src;
        int i = deriv[d];
        struct group *t = need[i] ? rm_prune_derived(a, i, &src, &n_src) : NULL;
        for (size_t k = 0; t && !t->unprunable && k < n_src; k++)
            if (src[k] >= 0 && rm_prune_is_channel(a, src[k]) && rm_prune_group_of(a, src[k])->keep)
                rc = rm_error_set(e->err, RM_EEDIT, "%s: its channels depend on themselves through Concats and Splits",
                                  rm_edit_where(e, i));
    }
    goto done;
oom:
    rc = rm_error_set(e->err, RM_ENOMEM, "out of memory");
done:
    free(pending);
    free(start);
    free(need);
    free(deriv);
    free(queue);
    free(uses);
    return rc;
}

/* ---- selection ---------------------------------------------------------------- */


/* Keep every channel of gr except the n_remove lowest-scored (ties: lower index goes). */
int rm_prune_choose_lowest(struct edit *e, struct group *gr, int64_t n_remove)
{
    int64_t c = gr->channels;
    int64_t *order = malloc((size_t)c * sizeof *order);
    char *drop = calloc((size_t)c, 1);
    gr->keep = malloc((size_t)c * sizeof *gr->keep);
    if (!order || !drop || !gr->keep) {
        free(order);
        free(drop);
        return rm_error_set(e->err, RM_ENOMEM, "out of memory");
    }
    /* each of the group's blocks (one without grouped convolutions) gives up as many */
    int64_t nb = gr->blocks > 1 ? gr->blocks : 1, bs = c / nb, per = n_remove / nb;
    if (n_remove % nb || bs * nb != c) {
        free(order);
        free(drop);
        return rm_error_set(e->err, RM_EEDIT, "the channels of %s feed grouped convolutions in %lld groups of %lld: "
                            "remove a multiple of %lld, the same number from each group (not %lld)",
                            e->g->values[gr->root].name, (long long)nb, (long long)bs, (long long)nb,
                            (long long)n_remove);
    }
    for (int64_t i = 0; i < c; i++)
        order[i] = i;
    /* selection by score: simple insertion sort is fine for channel counts */
    for (int64_t b = 0; b < nb; b++) {
        int64_t *o = order + b * bs;
        for (int64_t i = 1; i < bs; i++) {
            int64_t t = o[i], j = i;
            while (j > 0 && gr->score[o[j - 1]] > gr->score[t]) {
                o[j] = o[j - 1];
                j--;
            }
            o[j] = t;
        }
        for (int64_t i = 0; i < per; i++)
            drop[o[i]] = 1;
    }
    gr->n_keep = 0;
    for (int64_t i = 0; i < c; i++)
        if (!drop[i])
            gr->keep[gr->n_keep++] = i;
    free(order);
    free(drop);
    return 0;
}

static void group_name(struct analysis *a, const struct group *gr, char *buf, size_t n, int depth)
{
    const struct rm_graph *g = a->e->g;
    if (gr->n_producers) {
        snprintf(buf, n, "%s", rm_edit_where(a->e, gr->producers[0]));
        return;
    }
    /* a part of a Split: the channels it is of the split input's, "model.2.cv1.conv[0:32]" */
    int x = -1;
    const int *parts = NULL;
    size_t n_parts = 0;
    if (gr->n_parts && depth < 8)
        rm_prune_divider(a, gr->parts[0], &x, &parts, &n_parts);
    for (size_t k = 0; k < n_parts; k++) {
        if (rm_prune_group_of(a, parts[k]) != gr)
            continue;
        char inner[256];
        int64_t off = rm_prune_split_offset(a, gr->parts[0], k);
        group_name(a, rm_prune_group_of(a, x), inner, sizeof inner, depth + 1);
        snprintf(buf, n, "%.200s[%lld:%lld]", inner, (long long)off, (long long)(off + gr->channels));
        return;
    }
    snprintf(buf, n, "%s", g->values[gr->root].name);
}

const char *rm_prune_group_name(struct analysis *a, const struct group *gr, char *buf, size_t n)
{
    group_name(a, gr, buf, n, 0);
    return buf;
}

/* Parameters and MACs of g, whose shapes are inferred. */
static int graph_totals(const struct rm_graph *g, int64_t *params, int64_t *macs, struct rm_error *err)
{
    struct rm_info info;
    int rc = rm_info_compute(g, &info, err);
    if (!rc) {
        *params = info.params;
        *macs = info.macs;
        rm_info_free(&info);
    }
    return rc;
}

/* The same for model m as it is now (after an edit: the index its finish built). */
static int model_totals(struct rm_model *m, int64_t *params, int64_t *macs, struct rm_error *err)
{
    const struct rm_graph *g = rm_model_graph(m, err);
    return g ? graph_totals(g, params, macs, err) : err->code;
}

/* The prune in the model's edit history: what was pruned, by how much, how chosen. */
static int record_prune(struct rm_model *m, const char *const *paths, size_t n_paths,
                        const struct rm_prune_options *o, struct rm_error *err)
{
    char what[600], how[300];
    size_t k = 0, h = 0;
    for (size_t i = 0; i < n_paths && k < sizeof what; i++)
        k += (size_t)snprintf(what + k, sizeof what - k, "%s%s", i ? ", " : "", paths[i]);
    if ((o->global || o->target_macs > 0 || o->target_params > 0) && k < sizeof what)
        k += (size_t)snprintf(what + k, sizeof what - k, "%severy group, ranked together", k ? " and " : "");
    if (k >= sizeof what)
        snprintf(what + sizeof what - 4, 4, "...");
    if (o->channels)
        return rm_edit_record(m, err, "prune %s (%zu channels named)", what, o->n_channels);
    if (o->target_macs > 0)
        h += (size_t)snprintf(how + h, sizeof how - h, "target_macs=%g, ", o->target_macs);
    if (o->target_params > 0 && h < sizeof how)
        h += (size_t)snprintf(how + h, sizeof how - h, "target_params=%g, ", o->target_params);
    if (o->ratio > 0 && h < sizeof how)
        h += (size_t)snprintf(how + h, sizeof how - h, "ratio=%g, ", o->ratio);
    if (h < sizeof how)
        snprintf(how + h, sizeof how - h, "criterion=%s%s%s%s", rm_criterion_name(o->criterion ? o->criterion : 1),
                 o->n_ratio_for ? ", per-module ratios" : "", o->n_ignore ? ", some modules ignored" : "",
                 o->reconstruct ? ", reconstructed" : "");
    return rm_edit_record(m, err, "prune %s (%s)", what, how);
}

/* A consumer whose input channels the prune changed: what reconstruction refits. */
struct refit_layer {
    const char *tensor;        /* its output (names survive the edit) */
    const int64_t *out_keep;   /* its own kept output channels when it is a producer too */
    int64_t n_out_keep;
};

static int add_layer(struct analysis *a, int node, struct refit_layer *layers, size_t *n)
{
    const struct rm_node *nd = &a->e->g->nodes[node];
    if (nd->proto->n_output < 1 || nd->outputs[0] < 0)
        return 0;
    for (size_t i = 0; i < *n; i++)
        if (layers[i].tensor == a->e->g->values[nd->outputs[0]].name)
            return 0;
    struct refit_layer *l = &layers[(*n)++];
    l->tensor = a->e->g->values[nd->outputs[0]].name;
    l->out_keep = NULL;
    l->n_out_keep = 0;
    struct group *gy = rm_prune_is_channel(a, nd->outputs[0]) ? rm_prune_group_of(a, nd->outputs[0]) : NULL;
    if (gy && gy->keep && gy->n_keep < gy->channels) {
        l->out_keep = gy->keep;
        l->n_out_keep = gy->n_keep;
    }
    return 0;
}

/* Prune m in place: the body of rm_prune. */
static int prune_model(struct rm_model *m, const char *const *paths, size_t n_paths, const struct rm_prune_options *o,
                       struct rm_prune_report *rep, rm_findings *log, struct rm_error *err)
{
    struct edit e;
    struct analysis a = {0};
    struct rm_model *orig = NULL;
    struct refit_layer *layers = NULL;
    size_t n_layers = 0;
    int rc = 0;
    memset(&e, 0, sizeof e);
    /* reconstruction fits the pruned layers to the model as it is before the prune:
     * keep it (a clone shares its tensor bytes, which edits never overwrite) */
    if (o->reconstruct)
        rc = rm_model_clone(&orig, m, err);
    /* rm_edit_begin indexes the model and infers its shapes as model_totals would */
    if (!rc)
        rc = rm_edit_begin(&e, m, NULL, true, log, err);
    if (!rc)
        rc = graph_totals(e.g, &rep->params_before, &rep->macs_before, err);
    if (!rc)
        rc = rm_prune_analyse(&a, &e);
    if (!rc)
        rc = rm_prune_select(&a, paths, n_paths, o);
    if (rc)
        goto done;
    /* apply, then concat-derived groups */
    e.follow = false;
    for (int i = 0; i < a.n_groups && !rc; i++) {
        struct group *gr = &a.groups[i];
        if (!gr->keep || !gr->sourced || gr->n_splits)
            continue; /* derived groups follow their sources below */
        if (gr->n_keep == gr->channels)
            continue;
        char name[256];
        rm_edit_note(&e, "group %s: %lld -> %lld channels (%d producer%s, %d BatchNorm/depthwise, %d consumer%s)",
                     rm_prune_group_name(&a, gr, name, sizeof name), (long long)gr->channels, (long long)gr->n_keep,
                     gr->n_producers, gr->n_producers == 1 ? "" : "s", gr->n_members,
                     gr->n_consumers + gr->n_gemms, gr->n_consumers + gr->n_gemms == 1 ? "" : "s");
        rc = set_map(&e, gr->channels, gr->keep, gr->n_keep);
        if (!rc)
            rc = apply_group(&a, gr);
    }
    if (!rc)
        rc = apply_derived(&a);
    if (rc)
        goto done;
    /* the layers whose input channels changed, in graph order, for reconstruction */
    if (orig) {
        layers = calloc(e.g->n_nodes + 1, sizeof *layers);
        if (!layers) {
            rc = rm_error_set(err, RM_ENOMEM, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < e.g->n_nodes; i++) {
            const struct rm_node *nd = &e.g->nodes[i];
            int x = nd->proto->n_input ? nd->inputs[0] : -1;
            struct group *gx = x >= 0 && rm_prune_is_channel(&a, x) ? rm_prune_group_of(&a, x) : NULL;
            if (rm_edit_flattens(e.g, (int)i) && gx && gx->keep && gx->n_keep < gx->channels) {
                for (int k = 0; k < gx->n_gemms; k++)
                    add_layer(&a, gx->gemms[k], layers, &n_layers);
                continue;
            }
            if (!gx || !gx->keep || gx->n_keep == gx->channels)
                continue;
            for (int k = 0; k < gx->n_consumers; k++)
                if (gx->consumers[k] == (int)i)
                    add_layer(&a, (int)i, layers, &n_layers);
            for (int k = 0; k < gx->n_gemms; k++)
                if (gx->gemms[k] == (int)i)
                    add_layer(&a, (int)i, layers, &n_layers);
        }
    }
    /* the report: every group with producers or a Split's part, pruned or not, and why not */
    rep->groups = calloc((size_t)a.n_groups + 1, sizeof *rep->groups);
    if (!rep->groups) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    rep->samples = a.samples;
    for (int i = 0; i < a.n_groups; i++) {
        struct group *gr = &a.groups[i];
        if (!gr->n_producers && !gr->n_parts)
            continue;
        struct rm_prune_group *pg = &rep->groups[rep->n_groups++];
        rm_prune_group_name(&a, gr, pg->name, sizeof pg->name);
        pg->producers = gr->n_producers;
        pg->before = gr->channels;
        pg->after = gr->keep ? gr->n_keep : gr->channels;
        pg->prunable = !gr->unprunable;
        pg->ignored = gr->ignored && !gr->unprunable;
        pg->considered = gr->keep || gr->score; /* named, or ranked by --global */
        if (gr->unprunable)
            snprintf(pg->reason, sizeof pg->reason, "%s", gr->reason);
        else if (pg->ignored)
            snprintf(pg->reason, sizeof pg->reason, "ignored (%.180s)", gr->ignored_by);
    }
    rc = rm_edit_finish(&e, false, false); /* no --propagate to suggest: prune carries every change */
    if (!rc)
        rc = model_totals(m, &rep->params_after, &rep->macs_after, err);
    if (!rc && orig && n_layers) {
        const char **names = calloc(n_layers, sizeof *names);
        const int64_t **keeps = calloc(n_layers, sizeof *keeps);
        int64_t *n_keeps = calloc(n_layers, sizeof *n_keeps);
        if (!names || !keeps || !n_keeps) {
            rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        } else {
            for (size_t i = 0; i < n_layers; i++) {
                names[i] = layers[i].tensor;
                keeps[i] = layers[i].out_keep;
                n_keeps[i] = layers[i].n_out_keep;
            }
            rc = rm_prune_reconstruct(orig, m, names, keeps, n_keeps, n_layers, o, rep, log, err);
        }
        free(names);
        free(keeps);
        free(n_keeps);
    }
done:
    free(layers);
    rm_prune_analysis_free(&a);
    rm_edit_end(&e);
    rm_model_free(orig);
    return rc;
}

int rm_prune_input_to(struct rm_model *m, const char *path, int64_t keep, rm_findings *log, struct rm_error *err)
{
    struct edit e;
    struct analysis a = {0};
    int rc = rm_edit_begin(&e, m, NULL, true, log, err);
    if (rc)
        goto done;
    const struct rm_module *mod;
    if ((rc = rm_tree_lookup(e.t, path, &mod, err)))
        goto done;
    if (mod->main_node < 0 || e.g->nodes[mod->main_node].op != RM_OP_CONV)
        goto done; /* replace says what is wrong */
    int x = e.g->nodes[mod->main_node].inputs[0];
    const struct rm_value *xv = x >= 0 ? &e.g->values[x] : NULL;
    if (!xv || xv->rank < 2 || xv->dims[1] <= keep || keep < 1)
        goto done; /* nothing to remove (or more channels asked for: replace refuses it) */
    if ((rc = rm_prune_analyse(&a, &e)))
        goto done;
    struct group *gr = rm_prune_is_channel(&a, x) ? rm_prune_group_of(&a, x) : NULL;
    const char *from = xv->producer >= 0 ? rm_edit_where(&e, xv->producer) : xv->name;
    if (!gr || gr->unprunable || !gr->sourced || gr->n_splits) {
        rc = rm_error_set(err, RM_EEDIT,
                          "%s: the spec takes %lld input channels, its input '%s' has %lld (from %s), and the channels "
                          "it reads cannot be pruned to fit: %s",
                          mod->path, (long long)keep, xv->name, (long long)xv->dims[1], from,
                          !gr                ? "unknown shape"
                          : gr->unprunable   ? gr->reason
                          : gr->n_splits     ? "a Split or Slices divide them among other layers"
                                             : "they come from a Concat");
        goto done;
    }
    if ((rc = rm_prune_score_norm(&a, gr, 1)) || (rc = rm_prune_choose_lowest(&e, gr, gr->channels - keep)))
        goto done;
    char name[256];
    rm_edit_note(&e, "%s reads %lld channels: group %s pruned %lld -> %lld channels (lowest L1 norm removed; %d "
                 "producer%s, %d BatchNorm/depthwise, %d consumer%s)",
                 mod->path, (long long)gr->channels, rm_prune_group_name(&a, gr, name, sizeof name),
                 (long long)gr->channels, (long long)keep, gr->n_producers, gr->n_producers == 1 ? "" : "s",
                 gr->n_members, gr->n_consumers + gr->n_gemms, gr->n_consumers + gr->n_gemms == 1 ? "" : "s");
    e.follow = false;
    if (!(rc = set_map(&e, gr->channels, gr->keep, gr->n_keep)) && !(rc = apply_group(&a, gr)) &&
        !(rc = apply_derived(&a)))
        rc = rm_edit_finish(&e, false, true);
done:
    rm_prune_analysis_free(&a);
    rm_edit_end(&e);
    return rc;
}

int rm_prune(struct rm_model *m, const char *const *paths, size_t n_paths, const struct rm_prune_options *o,
             struct rm_prune_report *rep, rm_findings *log, struct rm_error *err)
{
    struct rm_prune_report own;
    bool keep_report = rep != NULL;
    if (!rep)
        rep = &own;
    memset(rep, 0, sizeof *rep);
    int rc = rm_prune_check_options(paths, n_paths, o, err);
    if (rc)
        goto done;
    rep->dry_run = o->dry_run;
    if (o->dry_run) {
        /* the plan, with exact figures: the prune of a copy, which is then dropped */
        struct rm_prune_options plan = *o;
        plan.reconstruct = false;
        struct rm_model *copy = NULL;
        rc = rm_model_clone(&copy, m, err);
        if (!rc)
            rc = prune_model(copy, paths, n_paths, &plan, rep, log, err);
        rm_model_free(copy);
    } else {
        rc = prune_model(m, paths, n_paths, o, rep, log, err);
        if (!rc && !rm_prune_nothing(rep, o, NULL, 0)) /* an unchanged model stays byte for byte */
            rc = record_prune(m, paths, n_paths, o, err);
    }
done:
    if (!keep_report)
        rm_prune_report_free(rep);
    return rc;
}

void rm_prune_report_free(struct rm_prune_report *r)
{
    if (!r)
        return;
    free(r->groups);
    free(r->refits);
    memset(r, 0, sizeof *r);
}

/* ---- fold-bn ------------------------------------------------------------------ */

int rm_fold_bn(struct rm_model *m, int *n_folded, rm_findings *log, struct rm_error *err)
{
    struct edit e;
    int rc = rm_edit_begin(&e, m, NULL, false, log, err); /* folding needs no sizes */
    bool *remove = NULL;
    *n_folded = 0;
    if (rc)
        goto done;
    remove = calloc(e.g->n_nodes + 1, sizeof *remove);
    if (!remove) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < e.g->n_nodes; i++) {
        const struct rm_node *bn = &e.g->nodes[i];
        if (bn->op != RM_OP_BATCH_NORM || bn->proto->n_input < 5 ||
            bn->proto->n_output != 1 || bn->inputs[0] < 0 || bn->outputs[0] < 0)
            continue;
        const struct rm_value *x = &e.g->values[bn->inputs[0]];
        if (x->producer < 0 || x->n_consumers != 1 || x->output >= 0 ||
            e.g->nodes[x->producer].op != RM_OP_CONV)
            continue;
        int conv = x->producer;
        float *w = NULL, *b = NULL, *p[5] = {NULL};
        int64_t nw, nb, np[5];
        const Onnx__TensorProto *wt, *bt, *pt;
        rc = rm_edit_param(&e, conv, 1, &w, &nw, &wt);
        if (!rc)
            rc = rm_edit_param(&e, conv, 2, &b, &nb, &bt);
        for (int k = 1; k < 5 && !rc; k++)
            rc = rm_edit_param(&e, (int)i, (size_t)k, &p[k], &np[k], &pt);
        int64_t c = wt && wt->n_dims >= 2 ? wt->dims[0] : 0; /* dims=[] has no dims[0] */
        bool ok = !rc && wt && wt->n_dims >= 2 && c > 0 && (!b || nb == c);
        for (int k = 1; k < 5 && ok; k++)
            ok = p[k] && np[k] == c;
        if (ok) {
            /* y = gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta:
             * W'[o] = W[o] * s[o], b'[o] = (b[o] - mean[o]) * s[o] + beta[o],
             * s = gamma / sqrt(var + eps) */
            double eps = rm_node_attr_float(bn->proto, "epsilon", 1e-5f);
            int64_t row = nw / c;
            float *nbias = malloc((size_t)c * sizeof *nbias);
            if (!nbias) {
                rc = rm_error_set(err, RM_ENOMEM, "out of memory");
            } else {
                for (int64_t o = 0; o < c; o++) {
                    double s = p[1][o] / sqrt((double)p[4][o] + eps);
                    for (int64_t j = 0; j < row; j++)
                        w[o * row + j] = (float)(w[o * row + j] * s);
                    nbias[o] = (float)(((b ? b[o] : 0.0) - p[3][o]) * s + p[2][o]);
                }
                char name[512];
                snprintf(name, sizeof name, "%s.weight", rm_edit_where(&e, conv));
                rc = rm_edit_write_param(&e, conv, 1, wt->dims, (int)wt->n_dims, w, name);
                snprintf(name, sizeof name, "%s.bias", rm_edit_where(&e, conv));
                if (!rc)
                    rc = rm_edit_write_param(&e, conv, 2, &c, 1, nbias, name);
                free(nbias);
            }
            if (!rc) {
                /* the conv now produces the BatchNorm's output tensor; the BN goes */
                rc = rm_model_set_node_output(m, conv, 0, bn->proto->output[0], err);
                remove[i] = true;
                (*n_folded)++;
                rm_edit_note(&e, "%s: folded %s into it", rm_edit_where(&e, conv), rm_edit_where(&e, (int)i));
            }
        }
        free(w);
        free(b);
        for (int k = 1; k < 5; k++)
            free(p[k]);
        if (rc)
            goto done;
    }
    /* drop the folded nodes, then initializers nothing reads any more (and graph inputs
     * that declared them, as old exporters write) */
    if (*n_folded && !(rc = rm_model_remove_nodes(m, remove, err)))
        rc = rm_model_sweep(m, RM_SWEEP_INITIALIZERS, NULL, err);
done:
    free(remove);
    rm_edit_end(&e);
    if (!rc && *n_folded) {
        /* shapes are unchanged by folding; re-check the graph as a whole */
        const struct rm_graph *g3 = rm_model_graph(m, err);
        if (!g3)
            return err->code;
        for (size_t i = 0; !rc && i < g3->n_issues; i++)
            if (g3->issues[i].code == RM_EFORMAT)
                rc = rm_error_set(err, RM_EEDIT, "after folding: node %d: %s", g3->issues[i].node,
                                  g3->issues[i].why);
        if (!rc)
            rc = rm_edit_record(m, err, "fold-bn (%d BatchNormalization folded)", *n_folded);
    }
    return rc;
}
