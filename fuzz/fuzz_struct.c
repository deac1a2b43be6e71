/* Structure-aware libFuzzer harness. Inputs are ONNX models; the custom mutator parses
 * one (protobuf-c, into an arena), changes its structure - dims, attributes, names, edges,
 * initializers, external-data keys, opsets, metadata - and serializes it again, so that
 * mutations reach what byte flips cannot: a well-formed file holding a hostile graph. Each
 * input goes through rm_fuzz_edit_one (fuzz_edit.c): load, info, check, show, a small
 * run, replace, prune and fold-bn with their verification. Inputs the mutator cannot parse
 * get libFuzzer's byte mutations, and the crossover copies nodes (with the initializers
 * they read) from one model into another. Built by fuzz/run.sh --struct. */
#include "fuzz_pipeline.h"

#include "onnx.pb-c.h"
#include "rm_arena.h"
#include "rm_model.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerCustomCrossOver(const uint8_t *d1, size_t s1, const uint8_t *d2, size_t s2, uint8_t *out,
                                 size_t max_out, unsigned int seed);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- randomness (splitmix64) and the arena new parts live in -------------------------- */

struct mut {
    uint64_t s;
    struct rm_arena *a;
    Onnx__ModelProto *m;
};

static uint64_t rnd(struct mut *u)
{
    uint64_t z = (u->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static size_t below(struct mut *u, size_t n)
{
    return n ? (size_t)(rnd(u) % n) : 0;
}

#define PICK(u, arr) ((arr)[below((u), sizeof(arr) / sizeof *(arr))])

static const int64_t interesting[] = {0, 1, 1, 2, 3, 4, 7, 8, 16, 64, -1, -2, -8, 255, 65536,
                                      INT32_MAX, (int64_t)INT32_MAX + 1, (int64_t)1 << 32, (int64_t)1 << 62,
                                      INT64_MAX, INT64_MIN, INT64_MIN + 1};

static int64_t some_int(struct mut *u)
{
    return below(u, 4) ? PICK(u, interesting) : (int64_t)below(u, 40) - 8;
}

static const char *const names[] = {"", "/./Conv", "/", "//", "/a/../b/Conv", "/layer1/layer1.0/conv1/Conv",
                                    "layer1.0.conv1.weight", "conv1.weight", "/x.0.0/Conv", "a.b[0].c", "\xff\xfe",
                                    "\xc0\x80", "fc.weight", "input", "output", "x", "/bn1/BatchNormalization",
                                    "onnx::Conv_1", "Identity_0", "...", "[0]", "a..b", ".", "0"};

static char *str(struct mut *u, const char *s)
{
    return rm_arena_strdup(u->a, s);
}

static char *some_name(struct mut *u)
{
    if (below(u, 8) == 0) {
        size_t n = 1 + below(u, 300);
        char *s = rm_arena_alloc(u->a, n + 1);
        if (!s)
            return NULL;
        for (size_t i = 0; i < n; i++)
            s[i] = (char)(below(u, 4) ? 'a' + below(u, 26) : "./[]_0\x01\xff"[below(u, 8)]);
        s[n] = '\0';
        return s;
    }
    return str(u, PICK(u, names));
}

/* n pointers from src (NULL when n is 0) to dst. */
static void copy(void *dst, const void *src, size_t n)
{
    if (n)
        memcpy(dst, src, n * sizeof(void *));
}

/* A new array of n + 1 pointers holding arr's n: the caller fills the last. */
static void **grow(struct mut *u, void **arr, size_t n)
{
    void **na = rm_arena_alloc(u->a, (n + 1) * sizeof *na);
    if (na)
        copy(na, arr, n);
    return na;
}

static Onnx__GraphProto *G(struct mut *u)
{
    return u->m->graph;
}

/* A tensor name the graph uses (node input or output, initializer, graph input). */
static const char *some_value(struct mut *u)
{
    Onnx__GraphProto *g = G(u);
    size_t k = below(u, 4);
    if (k == 0 && g->n_initializer)
        return g->initializer[below(u, g->n_initializer)]->name;
    if (k == 1 && g->n_input)
        return g->input[below(u, g->n_input)]->name;
    if (g->n_node) {
        Onnx__NodeProto *n = g->node[below(u, g->n_node)];
        if (n->n_output && below(u, 2))
            return n->output[below(u, n->n_output)];
        if (n->n_input)
            return n->input[below(u, n->n_input)];
    }
    return "x";
}

static Onnx__NodeProto *some_node(struct mut *u)
{
    return G(u)->n_node ? G(u)->node[below(u, G(u)->n_node)] : NULL;
}

/* ---- dims ------------------------------------------------------------------------------- */

static bool mutate_shape(struct mut *u, Onnx__TensorShapeProto *sh)
{
    if (!sh)
        return false;
    size_t op = below(u, 6);
    if ((op == 0 || !sh->n_dim) && sh->n_dim < 8) { /* add a dim */
        Onnx__TensorShapeProto__Dimension *d = rm_arena_alloc(u->a, sizeof *d);
        void **na = grow(u, (void **)sh->dim, sh->n_dim);
        if (!d || !na)
            return false;
        onnx__tensor_shape_proto__dimension__init(d);
        d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        d->dim_value = some_int(u);
        size_t at = below(u, sh->n_dim + 1);
        memmove(na + at + 1, na + at, (sh->n_dim - at) * sizeof *na);
        na[at] = d;
        sh->dim = (Onnx__TensorShapeProto__Dimension **)na;
        sh->n_dim++;
        return true;
    }
    if (op == 1) { /* drop one */
        size_t at = below(u, sh->n_dim);
        memmove(sh->dim + at, sh->dim + at + 1, (sh->n_dim - at - 1) * sizeof *sh->dim);
        sh->n_dim--;
        return true;
    }
    Onnx__TensorShapeProto__Dimension *d = sh->dim[below(u, sh->n_dim)];
    if (op == 2) { /* symbolic */
        d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
        d->dim_param = below(u, 2) ? str(u, "N") : some_name(u);
        return d->dim_param != NULL;
    }
    d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    d->dim_value = op == 3 && d->dim_value > 1 ? d->dim_value / 2 : some_int(u);
    return true;
}

static Onnx__TensorShapeProto *shape_of(Onnx__ValueInfoProto *vi)
{
    if (!vi || !vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        return NULL;
    return vi->type->tensor_type->shape;
}

static bool mutate_dims(struct mut *u)
{
    Onnx__GraphProto *g = G(u);
    size_t k = below(u, 4);
    if (k == 0 && g->n_initializer) { /* an initializer's dims, its data left as it is */
        Onnx__TensorProto *t = g->initializer[below(u, g->n_initializer)];
        size_t op = below(u, 4);
        if (op == 0) {
            t->n_dims = 0; /* a scalar: dims=[] */
            return true;
        }
        int64_t *d = rm_arena_alloc(u->a, (t->n_dims + 1) * sizeof *d);
        if (!d)
            return false;
        if (t->n_dims)
            memcpy(d, t->dims, t->n_dims * sizeof *d);
        if (op == 1 && t->n_dims < 8)
            d[t->n_dims++] = some_int(u);
        else if (t->n_dims)
            d[below(u, t->n_dims)] = some_int(u);
        t->dims = d;
        return true;
    }
    Onnx__ValueInfoProto *vi = NULL;
    if (k == 1 && g->n_output)
        vi = g->output[below(u, g->n_output)];
    else if (k == 2 && g->n_value_info)
        vi = g->value_info[below(u, g->n_value_info)];
    else if (g->n_input)
        vi = g->input[below(u, g->n_input)];
    return mutate_shape(u, shape_of(vi));
}

/* ---- attributes ----------------------------------------------------------------------------- */

static const char *const attr_names[] = {"group", "strides", "pads", "dilations", "kernel_shape", "axis", "axes",
                                         "perm", "epsilon", "alpha", "beta", "transA", "transB", "auto_pad",
                                         "ceil_mode", "keepdims", "allowzero", "mode", "value", "min", "max",
                                         "count_include_pad", "storage_order", "noop_with_empty_axes", "start",
                                         "end", "momentum", "training_mode", "value_ints", "value_float"};
static const char *const attr_strings[] = {"SAME_UPPER", "SAME_LOWER", "VALID", "NOTSET", "", "constant",
                                           "reflect", "edge", "wrap", "\xff"};

static bool set_attr_value(struct mut *u, Onnx__AttributeProto *a)
{
    int t = (int)below(u, 9);
    a->has_type = below(u, 16) != 0;
    a->has_i = a->has_f = a->has_s = 0;
    a->n_ints = a->n_floats = 0;
    a->t = NULL;
    switch (t) {
    case 0: case 1: case 2:
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
        a->has_i = below(u, 12) != 0; /* else typed without its field: 0 */
        a->i = some_int(u);
        break;
    case 3: case 4: case 5: {
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
        size_t n = below(u, 9);
        int64_t *v = rm_arena_alloc(u->a, (n + 1) * sizeof *v);
        if (!v)
            return false;
        for (size_t i = 0; i < n; i++)
            v[i] = below(u, 3) ? (int64_t)below(u, 4) : some_int(u);
        a->ints = v;
        a->n_ints = n;
        break;
    }
    case 6: {
        static const float fs[] = {0.0f, 1e-5f, -1.0f, 0.5f, 1e30f, -1e30f, 1.0f / 0.0f, 0.0f / 0.0f, 6.0f};
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
        a->has_f = 1;
        a->f = PICK(u, fs);
        break;
    }
    case 7: {
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS; /* a float `strides` */
        size_t n = 1 + below(u, 4);
        float *v = rm_arena_alloc(u->a, n * sizeof *v);
        if (!v)
            return false;
        for (size_t i = 0; i < n; i++)
            v[i] = (float)below(u, 4);
        a->floats = v;
        a->n_floats = n;
        break;
    }
    default: {
        const char *s = PICK(u, attr_strings);
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
        a->has_s = 1;
        a->s.data = (uint8_t *)str(u, s);
        a->s.len = strlen(s);
        if (!a->s.data)
            return false;
    }
    }
    return true;
}

static bool mutate_attr(struct mut *u)
{
    Onnx__NodeProto *n = some_node(u);
    if (!n)
        return false;
    size_t op = below(u, 6);
    if (op == 0 || !n->n_attribute) { /* add one, maybe under a name it already has */
        Onnx__AttributeProto *a = rm_arena_alloc(u->a, sizeof *a);
        void **na = grow(u, (void **)n->attribute, n->n_attribute);
        if (!a || !na)
            return false;
        onnx__attribute_proto__init(a);
        a->name = n->n_attribute && below(u, 3) == 0 ? n->attribute[below(u, n->n_attribute)]->name
                                                     : str(u, PICK(u, attr_names));
        if (!a->name || !set_attr_value(u, a))
            return false;
        na[n->n_attribute] = a;
        n->attribute = (Onnx__AttributeProto **)na;
        n->n_attribute++;
        return true;
    }
    size_t k = below(u, n->n_attribute);
    Onnx__AttributeProto *a = n->attribute[k];
    if (op == 1) { /* remove it */
        memmove(n->attribute + k, n->attribute + k + 1, (n->n_attribute - k - 1) * sizeof *n->attribute);
        n->n_attribute--;
        return true;
    }
    if (op == 2 && a->n_ints) { /* one value of a list */
        int64_t *v = rm_arena_memdup(u->a, a->ints, a->n_ints * sizeof *v);
        if (!v)
            return false;
        v[below(u, a->n_ints)] = some_int(u);
        a->ints = v;
        return true;
    }
    if (op == 3 && a->has_i) {
        a->i = some_int(u);
        return true;
    }
    if (op == 4) { /* a type that disagrees with the value held */
        a->has_type = 1;
        a->type = (Onnx__AttributeProto__AttributeType)below(u, 15);
        return true;
    }
    return set_attr_value(u, a);
}

/* ---- names and edges ------------------------------------------------------------------------ */

/* Rename tensor `from` to `to` everywhere (a consistent rename) or at one place only. */
static void rename_value(struct mut *u, const char *from, char *to, bool everywhere)
{
    Onnx__GraphProto *g = G(u);
    for (size_t i = 0; i < g->n_node; i++) {
        Onnx__NodeProto *n = g->node[i];
        for (size_t k = 0; k < n->n_input; k++)
            if (n->input[k] && strcmp(n->input[k], from) == 0) {
                n->input[k] = to;
                if (!everywhere)
                    return;
            }
        for (size_t k = 0; k < n->n_output; k++)
            if (n->output[k] && strcmp(n->output[k], from) == 0) {
                n->output[k] = to;
                if (!everywhere)
                    return;
            }
    }
    for (size_t i = 0; i < g->n_initializer; i++)
        if (g->initializer[i]->name && strcmp(g->initializer[i]->name, from) == 0)
            g->initializer[i]->name = to;
    Onnx__ValueInfoProto **lists[3] = {g->input, g->output, g->value_info};
    size_t counts[3] = {g->n_input, g->n_output, g->n_value_info};
    for (int l = 0; l < 3; l++)
        for (size_t i = 0; i < counts[l]; i++)
            if (lists[l][i]->name && strcmp(lists[l][i]->name, from) == 0)
                lists[l][i]->name = to;
}

static bool mutate_name(struct mut *u)
{
    Onnx__NodeProto *n = some_node(u);
    if (!n)
        return false;
    if (below(u, 2)) {
        Onnx__GraphProto *g = G(u);
        n->name = below(u, 3) == 0 && g->n_node > 1 ? g->node[below(u, g->n_node)]->name : some_name(u);
        return true;
    }
    const char *from = some_value(u);
    char *to = below(u, 2) ? some_name(u) : (char *)some_value(u);
    if (!from || !to)
        return false;
    char *copy = str(u, from); /* from may be renamed on the way */
    if (!copy)
        return false;
    rename_value(u, copy, to, below(u, 3) != 0);
    return true;
}

static const char *const ops[] = {"Conv", "Relu", "BatchNormalization", "Add", "Mul", "Sub", "Div", "Concat",
                                  "Gemm", "Flatten", "MaxPool", "AveragePool", "GlobalAveragePool", "Reshape",
                                  "Transpose", "Identity", "Constant", "Pad", "Slice", "Squeeze", "Unsqueeze",
                                  "Gather", "Shape", "Clip", "Sigmoid", "HardSwish", "HardSigmoid", "LeakyRelu",
                                  "Softmax", "LogSoftmax", "ReduceMean", "ReduceMax", "MatMul", "Dropout",
                                  "ConvTranspose", "GlobalMaxPool", "PRelu", "Tanh", "LSTM", "Foo", ""};

static bool mutate_edge(struct mut *u)
{
    Onnx__GraphProto *g = G(u);
    Onnx__NodeProto *n = some_node(u);
    if (!n)
        return false;
    switch (below(u, 10)) {
    case 0: /* an input reads another tensor, or '' */
        if (!n->n_input)
            return false;
        n->input[below(u, n->n_input)] = below(u, 6) ? (char *)some_value(u) : str(u, "");
        return true;
    case 1: case 2: { /* an input more, or one less */
        if (below(u, 2) && n->n_input) {
            n->n_input--;
            return true;
        }
        void **na = grow(u, (void **)n->input, n->n_input);
        if (!na)
            return false;
        na[n->n_input] = below(u, 4) ? (char *)some_value(u) : str(u, "");
        n->input = (char **)na;
        n->n_input++;
        return true;
    }
    case 3: /* an output renamed: two producers, or a dangling consumer */
        if (!n->n_output)
            return false;
        n->output[below(u, n->n_output)] = below(u, 2) ? (char *)some_value(u) : some_name(u);
        return true;
    case 4: /* another op, or another domain */
        if (below(u, 4))
            n->op_type = str(u, PICK(u, ops));
        else
            n->domain = str(u, below(u, 2) ? "com.microsoft" : below(u, 2) ? "ai.onnx" : "x.y");
        return true;
    case 5: { /* a node copied next to itself */
        Onnx__NodeProto *c = rm_arena_alloc(u->a, sizeof *c);
        void **na = grow(u, (void **)g->node, g->n_node);
        if (!c || !na)
            return false;
        *c = *n;
        size_t at = below(u, g->n_node + 1);
        memmove(na + at + 1, na + at, (g->n_node - at) * sizeof *na);
        na[at] = c;
        g->node = (Onnx__NodeProto **)na;
        g->n_node++;
        return true;
    }
    case 6: { /* a node removed */
        size_t k = below(u, g->n_node);
        memmove(g->node + k, g->node + k + 1, (g->n_node - k - 1) * sizeof *g->node);
        g->n_node--;
        return true;
    }
    case 7: { /* two nodes swapped: the graph out of order */
        size_t a = below(u, g->n_node), b = below(u, g->n_node);
        Onnx__NodeProto *t = g->node[a];
        g->node[a] = g->node[b];
        g->node[b] = t;
        return true;
    }
    case 8: { /* a weight shared: this node's input k reads another node's initializer,
               * directly or through a new Identity */
        Onnx__NodeProto *o = some_node(u);
        if (n->n_input < 2 || !o || o->n_input < 2)
            return false;
        size_t k = 1 + below(u, n->n_input - 1);
        char *src = o->input[1 + below(u, o->n_input - 1)];
        if (below(u, 2)) {
            n->input[k] = src;
            return true;
        }
        Onnx__NodeProto *id = rm_arena_alloc(u->a, sizeof *id);
        char **in = rm_arena_alloc(u->a, sizeof *in), **out = rm_arena_alloc(u->a, sizeof *out);
        void **na = grow(u, (void **)g->node, g->n_node);
        char nm[64];
        snprintf(nm, sizeof nm, "Identity_fuzz_%u", (unsigned)below(u, 1000));
        if (!id || !in || !out || !na || !(out[0] = str(u, nm)))
            return false;
        onnx__node_proto__init(id);
        in[0] = src;
        id->input = in;
        id->n_input = 1;
        id->output = out;
        id->n_output = 1;
        id->op_type = str(u, "Identity");
        memmove(na + 1, na, g->n_node * sizeof *na); /* first: Identity nodes come first in torch's exports */
        na[0] = id;
        g->node = (Onnx__NodeProto **)na;
        g->n_node++;
        n->input[k] = out[0];
        return true;
    }
    default: { /* a graph input or output more, or one less */
        bool in = below(u, 2);
        Onnx__ValueInfoProto ***list = in ? &g->input : &g->output;
        size_t *cnt = in ? &g->n_input : &g->n_output;
        if (below(u, 2) && *cnt) {
            size_t k = below(u, *cnt);
            memmove(*list + k, *list + k + 1, (*cnt - k - 1) * sizeof **list);
            (*cnt)--;
            return true;
        }
        if (!*cnt)
            return false;
        Onnx__ValueInfoProto *vi = rm_arena_alloc(u->a, sizeof *vi);
        void **na = grow(u, (void **)*list, *cnt);
        if (!vi || !na)
            return false;
        *vi = *(*list)[below(u, *cnt)];
        vi->name = (char *)some_value(u);
        na[*cnt] = vi;
        *list = (Onnx__ValueInfoProto **)na;
        (*cnt)++;
        return true;
    }
    }
}

/* ---- initializers and external data --------------------------------------------------------- */

static bool mutate_initializer(struct mut *u)
{
    Onnx__GraphProto *g = G(u);
    if (!g->n_initializer)
        return false;
    Onnx__TensorProto *t = g->initializer[below(u, g->n_initializer)];
    switch (below(u, 6)) {
    case 0: {
        static const int32_t types[] = {0, 1, 1, 2, 6, 7, 9, 10, 11, 16, 17, 100, -1};
        t->data_type = PICK(u, types);
        t->has_data_type = 1;
        return true;
    }
    case 1: /* raw_data cut short or longer */
        if (!t->has_raw_data)
            return false;
        if (below(u, 2) && t->raw_data.len) {
            t->raw_data.len = below(u, t->raw_data.len);
        } else {
            size_t n = t->raw_data.len + 1 + below(u, 64);
            uint8_t *d = rm_arena_alloc(u->a, n);
            if (!d)
                return false;
            memset(d, 0x7f, n);
            if (t->raw_data.len)
                memcpy(d, t->raw_data.data, t->raw_data.len);
            t->raw_data.data = d;
            t->raw_data.len = n;
        }
        return true;
    case 2: { /* values a kernel must survive: NaN, inf, huge, denormal */
        if (!t->has_raw_data || t->raw_data.len < 4)
            return false;
        static const uint32_t bits[] = {0x7fc00000u, 0x7f800000u, 0xff800000u, 0x7f7fffffu, 0x00000001u, 0};
        uint8_t *d = rm_arena_memdup(u->a, t->raw_data.data, t->raw_data.len);
        if (!d)
            return false;
        uint32_t b = PICK(u, bits);
        memcpy(d + 4 * below(u, t->raw_data.len / 4), &b, 4);
        t->raw_data.data = d;
        return true;
    }
    case 3: { /* raw_data moved to float_data (or kept too: two fields set) */
        if (!t->has_raw_data || t->raw_data.len < 4)
            return false;
        size_t n = t->raw_data.len / 4;
        float *f = rm_arena_alloc(u->a, n * sizeof *f);
        if (!f)
            return false;
        memcpy(f, t->raw_data.data, n * 4);
        t->float_data = f;
        t->n_float_data = n;
        t->has_raw_data = below(u, 4) == 0;
        return true;
    }
    case 4: { /* duplicated under the same name, or removed */
        if (below(u, 2)) {
            size_t k = 0;
            while (k < g->n_initializer - 1 && g->initializer[k] != t)
                k++;
            memmove(g->initializer + k, g->initializer + k + 1, (g->n_initializer - k - 1) * sizeof *g->initializer);
            g->n_initializer--;
            return true;
        }
        void **na = grow(u, (void **)g->initializer, g->n_initializer);
        if (!na)
            return false;
        na[g->n_initializer] = t;
        g->initializer = (Onnx__TensorProto **)na;
        g->n_initializer++;
        return true;
    }
    default: { /* stored outside: external-data keys, hostile or not */
        static const char *const locations[] = {"w.bin", "w.bin", "link.bin", "sub/w.bin", "empty.bin", "fifo",
                                                "../w.bin", "/etc/passwd", "", ".", "nonexistent.bin", "sub",
                                                "w.bin/..", "./w.bin"};
        static const char *const offsets[] = {"0", "0", "4096", "65532", "65536", "-1", "abc", "",
                                              "18446744073709551615", "18446744073709551616", "9223372036854775807"};
        static const char *const keys[] = {"location", "offset", "length", "checksum", "foo", "location"};
        size_t n = 1 + below(u, 4);
        Onnx__StringStringEntryProto **kv = rm_arena_alloc(u->a, n * sizeof *kv);
        if (!kv)
            return false;
        for (size_t i = 0; i < n; i++) {
            if (!(kv[i] = rm_arena_alloc(u->a, sizeof **kv)))
                return false;
            onnx__string_string_entry_proto__init(kv[i]);
            const char *k = i == 0 ? "location" : PICK(u, keys);
            kv[i]->key = str(u, k);
            kv[i]->value = str(u, strcmp(k, "location") == 0 ? PICK(u, locations) : PICK(u, offsets));
            if (!kv[i]->key || !kv[i]->value)
                return false;
            if (strcmp(k, "length") == 0 && below(u, 2)) { /* the length its dims want */
                char len[32];
                int64_t numel = 1;
                for (size_t d = 0; d < t->n_dims && numel >= 0; d++)
                    numel = t->dims[d] >= 0 && t->dims[d] < 65536 ? numel * t->dims[d] : -1;
                snprintf(len, sizeof len, "%lld", (long long)(numel * 4));
                kv[i]->value = str(u, len);
            }
        }
        t->external_data = kv;
        t->n_external_data = n;
        t->has_data_location = below(u, 8) != 0;
        t->data_location = below(u, 8) ? ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL
                                       : ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT;
        if (below(u, 4))
            t->has_raw_data = 0;
        return true;
    }
    }
}

/* ---- the model: opsets, IR, metadata (channel maps diff reads) --------------------------------- */

static bool mutate_model(struct mut *u)
{
    Onnx__ModelProto *m = u->m;
    switch (below(u, 3)) {
    case 0:
        if (below(u, 2) && m->n_opset_import) {
            static const int64_t versions[] = {1, 7, 9, 10, 11, 12, 13, 17, 18, 99, INT64_MAX, -1, 0};
            m->opset_import[below(u, m->n_opset_import)]->version = PICK(u, versions);
        } else {
            static const int64_t irs[] = {0, 3, 6, 7, 8, 9, 10, 100, -1};
            m->ir_version = PICK(u, irs);
            m->has_ir_version = below(u, 8) != 0;
        }
        return true;
    default: { /* a channel map, well-formed or not, for a tensor the graph has */
        static const char *const maps[] = {"0,1,2", "0", "-", "", "a,b", "99999999999999999999", "1,-,0", ",,,",
                                           "0,0,0,0", "3,2,1,0", "-1", " 1, 2", "0,1,2,3,4,5,6,7,8,9,10,11,12,13"};
        Onnx__StringStringEntryProto *kv = rm_arena_alloc(u->a, sizeof *kv);
        void **na = grow(u, (void **)m->metadata_props, m->n_metadata_props);
        const char *v = some_value(u);
        size_t len = strlen(v) + 32;
        char *key = rm_arena_alloc(u->a, len);
        if (!kv || !na || !key)
            return false;
        snprintf(key, len, "remodel.channel_map/%s", v);
        onnx__string_string_entry_proto__init(kv);
        kv->key = key;
        kv->value = str(u, PICK(u, maps));
        na[m->n_metadata_props] = kv;
        m->metadata_props = (Onnx__StringStringEntryProto **)na;
        m->n_metadata_props++;
        return kv->value != NULL;
    }
    }
}

/* ---- libFuzzer's hooks ------------------------------------------------------------------------ */

static Onnx__ModelProto *parse(struct rm_arena *a, const uint8_t *data, size_t size)
{
    /* the loader's own wire check first: protobuf-c recurses on nesting */
    if (size == 0 || rm_wire_check(data, size, &onnx__model_proto__descriptor, "fuzz", NULL, NULL))
        return NULL;
    Onnx__ModelProto *m = onnx__model_proto__unpack(&a->pbc, size, data);
    return m && m->graph ? m : NULL;
}

static size_t emit(Onnx__ModelProto *m, uint8_t *out, size_t max)
{
    size_t n = onnx__model_proto__get_packed_size(m);
    if (n > max)
        return 0;
    return onnx__model_proto__pack(m, out);
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    struct rm_arena a;
    rm_arena_init(&a, 0);
    Onnx__ModelProto *m = parse(&a, data, size);
    if (!m) {
        rm_arena_free(&a);
        return LLVMFuzzerMutate(data, size, max_size);
    }
    struct mut u = {seed * 0x9E3779B97F4A7C15ull + size, &a, m};
    int n = 1 + (int)below(&u, 3), done = 0;
    for (int tries = 0; done < n && tries < 16; tries++) {
        bool ok;
        switch (below(&u, 16)) {
        case 0: case 1: case 2: ok = mutate_dims(&u); break;
        case 3: case 4: case 5: ok = mutate_attr(&u); break;
        case 6: case 7: ok = mutate_name(&u); break;
        case 8: case 9: case 10: case 11: ok = mutate_edge(&u); break;
        case 12: case 13: ok = mutate_initializer(&u); break;
        default: ok = mutate_model(&u); break;
        }
        done += ok;
    }
    size_t out = emit(m, data, max_size);
    rm_arena_free(&a);
    return out ? out : LLVMFuzzerMutate(data, size, max_size);
}

size_t LLVMFuzzerCustomCrossOver(const uint8_t *d1, size_t s1, const uint8_t *d2, size_t s2, uint8_t *out,
                                 size_t max_out, unsigned int seed)
{
    struct rm_arena a;
    rm_arena_init(&a, 0);
    Onnx__ModelProto *m1 = parse(&a, d1, s1), *m2 = parse(&a, d2, s2);
    size_t n = 0;
    if (m1 && m2 && m2->graph->n_node) {
        /* a run of m2's nodes, and the initializers they read, spliced into m1 */
        struct mut u = {seed, &a, m1};
        Onnx__GraphProto *g1 = m1->graph, *g2 = m2->graph;
        size_t from = below(&u, g2->n_node), cnt = 1 + below(&u, 4);
        if (from + cnt > g2->n_node)
            cnt = g2->n_node - from;
        size_t at = below(&u, g1->n_node + 1);
        Onnx__NodeProto **nodes = rm_arena_alloc(&a, (g1->n_node + cnt) * sizeof *nodes);
        Onnx__TensorProto **inits = rm_arena_alloc(&a, (g1->n_initializer + g2->n_initializer + 1) * sizeof *inits);
        if (nodes && inits) {
            copy(nodes, g1->node, at);
            copy(nodes + at, g2->node + from, cnt);
            copy(nodes + at + cnt, at < g1->n_node ? g1->node + at : NULL, g1->n_node - at);
            size_t ni = g1->n_initializer;
            copy(inits, g1->initializer, ni);
            for (size_t i = 0; i < g2->n_initializer; i++)
                for (size_t k = from; k < from + cnt; k++) {
                    bool reads = false;
                    for (size_t j = 0; j < g2->node[k]->n_input && !reads; j++)
                        reads = g2->initializer[i]->name && g2->node[k]->input[j] &&
                                strcmp(g2->initializer[i]->name, g2->node[k]->input[j]) == 0;
                    if (reads) {
                        inits[ni++] = g2->initializer[i];
                        break;
                    }
                }
            g1->node = nodes;
            g1->n_node += cnt;
            g1->initializer = inits;
            g1->n_initializer = ni;
            n = emit(m1, out, max_out);
        }
    }
    rm_arena_free(&a);
    if (!n) { /* not two models: the first as it is */
        n = s1 < max_out ? s1 : max_out;
        if (n)
            memcpy(out, d1, n);
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return rm_fuzz_edit_one(data, size);
}
