#include "rm_model.h"
#include "rm_machine.h"

#include "rm_extdata.h"
#include "rm_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- wire-format validation ------------------------------------------------ */

struct wire_ctx {
    const uint8_t *base;        /* start of the whole buffer, for offsets */
    const uint8_t *end;         /* its end */
    const char *name;           /* file name for messages */
    const char *stack[RM_MAX_NESTING + 1]; /* field names from the root */
    int depth;
    uint64_t mem;               /* running allocation estimate */
    uint64_t raw;               /* of which TensorProto.raw_data of PLACEHOLDER bytes or more */
    struct rm_error *err;
};

/* Decode a varint at *p (< end). Returns 0 or -1 when truncated or over 10 bytes. */
static int wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int i = 0; i < 10; i++) {
        if (*p >= end)
            return -1;
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (i == 9 && b > 1)
                return -1;
            *v = r;
            return 0;
        }
    }
    return -1;
}

static void wire_where(const struct wire_ctx *c, char *buf, size_t n, const char *leaf)
{
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; i <= c->depth && i <= RM_MAX_NESTING; i++) {
        const char *s = c->stack[i];
        if (!s)
            continue;
        int k = snprintf(buf + off, n - off, "%s%s", off ? "." : "", s);
        if (k < 0 || (size_t)k >= n - off)
            return;
        off += (size_t)k;
    }
    if (leaf)
        snprintf(buf + off, n - off, "%s%s", off ? "." : "", leaf);
}

static int wire_fail(struct wire_ctx *c, const uint8_t *at, const char *leaf, const char *why)
{
    char where[512];
    /* a top-level value that runs into the end of a file that starts like a model (field
     * 1, a varint: ir_version) was cut short, not written wrong */
    if (c->depth == 0 && c->base[0] == 0x08 && !strncmp(why, "truncated", 9) && c->end - at <= 16)
        return rm_error_set(c->err, RM_EFORMAT,
                            "%s: truncated file: it ends at byte %zu in the middle of %s%s%s; was the download "
                            "or copy cut short?", c->name, (size_t)(c->end - c->base), leaf ? "field '" : "a field key",
                            leaf ? leaf : "", leaf ? "'" : "");
    wire_where(c, where, sizeof where, leaf);
    return rm_error_set(c->err, RM_EFORMAT, "%s: malformed protobuf at byte %zu (%s): %s",
                        c->name, (size_t)(at - c->base), where[0] ? where : "ModelProto", why);
}

static size_t scalar_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    default:
        return 4;
    }
}

static int wire_message(struct wire_ctx *c, const uint8_t *p, const uint8_t *end,
                        const ProtobufCMessageDescriptor *d)
{
    c->mem += d->sizeof_message + 16;
    while (p < end) {
        const uint8_t *start = p;
        uint64_t key;
        if (wire_varint(&p, end, &key))
            return wire_fail(c, start, NULL, "truncated field key");
        uint64_t num = key >> 3;
        unsigned wt = (unsigned)(key & 7);
        if (num == 0 || num > 536870911u)
            return wire_fail(c, start, NULL, "invalid field number");
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(d, (unsigned)num);
        const char *fname = f ? f->name : "(unknown field)";
        int repeated = f && f->label == PROTOBUF_C_LABEL_REPEATED;
        uint64_t v;
        switch (wt) {
        case 0:
            if (wire_varint(&p, end, &v))
                return wire_fail(c, start, fname, "truncated varint");
            c->mem += f ? (repeated ? 8 : 0) : 48;
            break;
        case 1:
            if (end - p < 8)
                return wire_fail(c, start, fname, "truncated 8-byte value");
            p += 8;
            c->mem += f ? (repeated ? 8 : 0) : 48;
            break;
        case 5:
            if (end - p < 4)
                return wire_fail(c, start, fname, "truncated 4-byte value");
            p += 4;
            c->mem += f ? (repeated ? 8 : 0) : 48;
            break;
        case 2: {
            if (wire_varint(&p, end, &v))
                return wire_fail(c, start, fname, "truncated length");
            if (v > (uint64_t)(end - p)) {
                if (c->depth == 0 && f && c->base[0] == 0x08) /* starts like a model: cut short */
                    return rm_error_set(c->err, RM_EFORMAT,
                                        "%s: truncated file: it ends at byte %zu of %llu expected (field '%s' at "
                                        "byte %zu runs past the end); was the download or copy cut short?",
                                        c->name, (size_t)(end - c->base),
                                        (unsigned long long)((uint64_t)(p - c->base) + v), fname,
                                        (size_t)(start - c->base));
                char why[160];
                snprintf(why, sizeof why, "length %llu runs past the end of its message (%zu bytes left)",
                         (unsigned long long)v, (size_t)(end - p));
                return wire_fail(c, start, fname, why);
            }
            const uint8_t *sub = p;
            p += v;
            if (!f) {
                c->mem += 48 + v;
            } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (c->depth >= RM_MAX_NESTING)
                    return wire_fail(c, start, fname, "messages nested too deeply");
                c->stack[++c->depth] = fname;
                int rc = wire_message(c, sub, p, f->descriptor);
                c->depth--;
                if (rc)
                    return rc;
                c->mem += repeated ? 8 : 0;
            } else if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_BYTES) {
                c->mem += v + 1 + 16 + (repeated ? sizeof(ProtobufCBinaryData) : 0);
                if (d == &onnx__tensor_proto__descriptor && !repeated &&
                    f->offset == offsetof(Onnx__TensorProto, raw_data) && v >= 8)
                    c->raw += v; /* left in the file by a mapped load (see skel below) */
            } else if (repeated) {
                /* packed scalars: at most one element per byte */
                c->mem += v * scalar_size(f->type) + 16;
            } else {
                return wire_fail(c, start, fname, "length-delimited data for a scalar field");
            }
            break;
        }
        default:
            return wire_fail(c, start, fname, "unsupported wire type (groups are not ONNX)");
        }
        if (f && f->type == PROTOBUF_C_TYPE_MESSAGE && wt != 2)
            return wire_fail(c, start, fname, "message field with a scalar wire type");
    }
    return 0;
}

/* rm_wire_check, also giving the bytes of raw_data a mapped load leaves in the file. */
static int wire_check(const uint8_t *data, size_t size, const ProtobufCMessageDescriptor *desc,
                      const char *name, uint64_t *mem_estimate, uint64_t *raw, struct rm_error *err)
{
    struct wire_ctx c = {.base = data, .end = data + size, .name = name, .depth = 0, .mem = 0, .err = err};
    c.stack[0] = NULL;
    int rc = wire_message(&c, data, data + size, desc);
    if (mem_estimate)
        *mem_estimate = c.mem;
    if (raw)
        *raw = c.raw;
    return rc;
}

int rm_wire_check(const uint8_t *data, size_t size, const ProtobufCMessageDescriptor *desc,
                  const char *name, uint64_t *mem_estimate, struct rm_error *err)
{
    return wire_check(data, size, desc, name, mem_estimate, NULL, err);
}

/* ---- tensor bytes without copying them ------------------------------------- */

/* protobuf-c's unpack copies every bytes field. A model's tensors are nearly all of it,
 * so before unpacking, a second walk over the (already validated) wire data builds a
 * skeleton: the same messages with each TensorProto.raw_data of 8 bytes or more
 * replaced by an 8-byte placeholder holding its number, every enclosing length
 * re-encoded. After the skeleton is unpacked, each placeholder is pointed at the bytes
 * it stands for: in the file's mapping (rm_model_load; nothing writes there, edits give
 * a tensor new bytes in the arena) or in a copy in the arena (rm_model_load_buffer).
 * raw_data shorter than 8 bytes stays in the skeleton, so a raw_data of exactly 8
 * bytes after unpacking is always a placeholder. Works on any message type, wherever a
 * TensorProto sits (initializers, Constant values, subgraphs, sparse tensors). */

#define PLACEHOLDER 8

struct raw_span {
    size_t off, len; /* of the bytes in the file */
};

struct skel {
    const uint8_t *base;
    struct raw_span *spans; /* in wire order */
    size_t n_spans, cap_spans;
    size_t *lens;           /* new content length of each submessage, in pre-order */
    size_t n_lens, cap_lens, next_len, next_span;
    int oom;
};

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, c * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = c;
    return 0;
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *o, uint64_t v)
{
    while (v >= 0x80) {
        *o++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *o++ = (uint8_t)v;
    return o;
}

static int is_raw_data(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f)
{
    return d == &onnx__tensor_proto__descriptor && f && f->type == PROTOBUF_C_TYPE_BYTES &&
           f->label != PROTOBUF_C_LABEL_REPEATED && f->offset == offsetof(Onnx__TensorProto, raw_data);
}

/* One field of the validated wire data at *p: its key's end, its payload and the field.
 * Returns -1 only on data the wire check would have refused. */
struct wire_field {
    const uint8_t *key_end, *sub, *next;
    const ProtobufCFieldDescriptor *f;
    unsigned wt;
};

static int next_field(const uint8_t *p, const uint8_t *end, const ProtobufCMessageDescriptor *d,
                      struct wire_field *w)
{
    uint64_t key, v;
    if (wire_varint(&p, end, &key))
        return -1;
    w->key_end = p;
    w->wt = (unsigned)(key & 7);
    w->f = key >> 3 <= 536870911u ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3)) : NULL;
    switch (w->wt) {
    case 0:
        if (wire_varint(&p, end, &v))
            return -1;
        break;
    case 1:
    case 5:
        if ((size_t)(end - p) < (w->wt == 1 ? 8u : 4u))
            return -1;
        p += w->wt == 1 ? 8 : 4;
        break;
    case 2:
        if (wire_varint(&p, end, &v) || v > (uint64_t)(end - p))
            return -1;
        w->sub = p;
        p += v;
        break;
    default:
        return -1;
    }
    w->next = p;
    return 0;
}

/* Pass 1: record the spans and every submessage's new length; returns the new length
 * of the message in [p, end), or SIZE_MAX on malformed data or no memory. */
static size_t skel_size(struct skel *s, const uint8_t *p, const uint8_t *end, const ProtobufCMessageDescriptor *d,
                        int depth)
{
    size_t n = 0;
    if (depth > RM_MAX_NESTING)
        return SIZE_MAX;
    while (p < end) {
        struct wire_field w;
        if (next_field(p, end, d, &w))
            return SIZE_MAX;
        size_t keylen = (size_t)(w.key_end - p);
        if (w.wt == 2 && is_raw_data(d, w.f) && (size_t)(w.next - w.sub) >= PLACEHOLDER) {
            if (grow((void **)&s->spans, &s->cap_spans, s->n_spans, sizeof *s->spans)) {
                s->oom = 1;
                return SIZE_MAX;
            }
            s->spans[s->n_spans++] = (struct raw_span){(size_t)(w.sub - s->base), (size_t)(w.next - w.sub)};
            n += keylen + 1 + PLACEHOLDER;
        } else if (w.wt == 2 && w.f && w.f->type == PROTOBUF_C_TYPE_MESSAGE) {
            if (grow((void **)&s->lens, &s->cap_lens, s->n_lens, sizeof *s->lens)) {
                s->oom = 1;
                return SIZE_MAX;
            }
            size_t slot = s->n_lens++;
            size_t k = skel_size(s, w.sub, w.next, w.f->descriptor, depth + 1);
            if (k == SIZE_MAX)
                return SIZE_MAX;
            s->lens[slot] = k;
            n += keylen + varint_size(k) + k;
        } else {
            n += (size_t)(w.next - p);
        }
        p = w.next;
    }
    return n;
}

/* Pass 2: write the skeleton of [p, end) at o (as pass 1 measured it); returns the end. */
static uint8_t *skel_write(struct skel *s, const uint8_t *p, const uint8_t *end,
                           const ProtobufCMessageDescriptor *d, uint8_t *o)
{
    while (p < end) {
        struct wire_field w;
        if (next_field(p, end, d, &w))
            return NULL; /* cannot happen: pass 1 read the same bytes */
        if (w.wt == 2 && is_raw_data(d, w.f) && (size_t)(w.next - w.sub) >= PLACEHOLDER) {
            memcpy(o, p, (size_t)(w.key_end - p));
            o += w.key_end - p;
            *o++ = PLACEHOLDER;
            uint64_t idx = s->next_span++;
            for (int i = 0; i < PLACEHOLDER; i++)
                *o++ = (uint8_t)(idx >> (8 * i));
        } else if (w.wt == 2 && w.f && w.f->type == PROTOBUF_C_TYPE_MESSAGE) {
            memcpy(o, p, (size_t)(w.key_end - p));
            o += w.key_end - p;
            o = put_varint(o, s->lens[s->next_len++]);
            o = skel_write(s, w.sub, w.next, w.f->descriptor, o);
            if (!o)
                return NULL;
        } else {
            memcpy(o, p, (size_t)(w.next - p));
            o += w.next - p;
        }
        p = w.next;
    }
    return o;
}

/* Point every placeholder in msg at its bytes: inside map, or copied into a when map is
 * NULL (from data). Returns 0, or -1 (no memory, or a placeholder that is not one). */
static int skel_fill(const struct skel *s, ProtobufCMessage *msg, const uint8_t *data, const uint8_t *map,
                     struct rm_arena *a, int depth)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    if (depth > RM_MAX_NESTING + 1)
        return -1;
    if (d == &onnx__tensor_proto__descriptor) {
        Onnx__TensorProto *t = (Onnx__TensorProto *)msg;
        if (t->has_raw_data && t->raw_data.len == PLACEHOLDER) {
            uint64_t idx = 0;
            for (int i = 0; i < PLACEHOLDER; i++)
                idx |= (uint64_t)t->raw_data.data[i] << (8 * i);
            if (idx >= s->n_spans)
                return -1;
            const struct raw_span *sp = &s->spans[idx];
            uint8_t *bytes = map ? (uint8_t *)(uintptr_t)(map + sp->off) : rm_arena_memdup(a, data + sp->off, sp->len);
            if (!bytes)
                return -1;
            t->raw_data.data = bytes;
            t->raw_data.len = sp->len;
        }
    }
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *member = (const char *)msg + f->offset;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)((const char *)msg + f->quantifier_offset) != f->id)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)msg + f->quantifier_offset);
            ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)member;
            for (size_t k = 0; k < n && arr; k++)
                if (arr[k] && skel_fill(s, arr[k], data, map, a, depth + 1))
                    return -1;
        } else {
            ProtobufCMessage *sub = *(ProtobufCMessage *const *)member;
            if (sub && skel_fill(s, sub, data, map, a, depth + 1))
                return -1;
        }
    }
    return 0;
}

static void skel_free(struct skel *s)
{
    free(s->spans);
    free(s->lens);
}

/* ---- load ------------------------------------------------------------------ */

/* The arena seen by protobuf-c, remembering the largest request it could not meet: a
 * failed unpack is then "out of memory", not "not a valid ModelProto". */
struct counting_alloc {
    ProtobufCAllocator base;
    struct rm_arena *arena;
    size_t failed; /* bytes of the largest failed request, 0 if none */
};

static void *counting_alloc_fn(void *ctx, size_t n)
{
    struct counting_alloc *c = ctx;
    void *p = rm_arena_alloc(c->arena, n);
    if (!p && n > c->failed)
        c->failed = n;
    return p;
}

static void counting_free_fn(void *ctx, void *p)
{
    (void)ctx;
    (void)p; /* arena memory is released all at once */
}

/* "out of memory (N MB wanted)", N rounded up. */
static int out_of_memory(struct rm_error *err, const char *name, uint64_t bytes)
{
    return rm_error_set(err, RM_ENOMEM, "%s: out of memory (%llu MB wanted)", name,
                        (unsigned long long)((bytes + ((1u << 20) - 1)) >> 20));
}

/* ---- what a file that is not a model is ------------------------------------ */

#define TORCH_EXPORT "export the model with torch.onnx.export(model, example_input, \"model.onnx\")"

/* Files recognisable before parsing by their first bytes: a zip archive (what torch.save
 * writes). Returns RM_EFORMAT with a message saying what the file is, or 0. */
static int sniff_before(const uint8_t *d, size_t n, const char *name, struct rm_error *err)
{
    if (n >= 4 && d[0] == 'P' && d[1] == 'K' && ((d[2] == 3 && d[3] == 4) || (d[2] == 5 && d[3] == 6))) {
        /* the first member's name, from its local header: torch.save writes <stem>/data.pkl */
        size_t len = n >= 30 && d[2] == 3 ? (size_t)d[26] | (size_t)d[27] << 8 : 0;
        const char *member = len && 30 + len <= n ? (const char *)d + 30 : "";
        len = member[0] ? len : 0;
        if (len >= 5 && !memcmp(member + len - 5, ".onnx", 5))
            return rm_error_set(err, RM_EFORMAT, "%s: a zip archive holding '%.*s', not an ONNX model itself; unzip "
                                "it and give remodel the .onnx file", name, (int)(len > 200 ? 200 : len), member);
        return rm_error_set(err, RM_EFORMAT, "%s: a zip archive, not an ONNX model%s; %s", name,
                            len >= 8 && !memcmp(member + len - 8, "data.pkl", 8)
                                ? ": a PyTorch checkpoint (torch.save) holds weights, not the graph"
                                : " (a PyTorch checkpoint from torch.save?)",
                            TORCH_EXPORT);
    }
    return 0;
}

/* After the wire format check failed: say what the file is when that is clear, a Python
 * pickle (an old torch.save) or a text file. Returns RM_EFORMAT with that message, or 0
 * (the wire check's message stands). */
static int sniff_after(const uint8_t *d, size_t n, const char *name, struct rm_error *err)
{
    if (n >= 2 && d[0] == 0x80 && d[1] >= 2 && d[1] <= 5)
        return rm_error_set(err, RM_EFORMAT, "%s: a Python pickle (a PyTorch checkpoint from torch.save?), not an "
                            "ONNX model; %s", name, TORCH_EXPORT);
    /* text: printable ASCII, white space and well-formed UTF-8 through the first 4 KB */
    size_t i = 0, lim = n < 4096 ? n : 4096;
    while (i < lim) {
        uint8_t c = d[i];
        if (c >= 0x20 && c < 0x7f) {
            i++;
            continue;
        }
        if (c == '\n' || c == '\r' || c == '\t') {
            i++;
            continue;
        }
        int k = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
        if (k < 0)
            return 0;
        for (int j = 1; j <= k; j++)
            if (i + (size_t)j < n && (d[i + (size_t)j] & 0xc0) != 0x80)
                return 0;
        i += (size_t)k + 1;
    }
    return rm_error_set(err, RM_EFORMAT, "%s: a text file, not an ONNX model (ONNX models are binary protobuf "
                        "files)", name);
}

#define TF2ONNX "convert it with tf2onnx: python3 -m tf2onnx.convert --saved-model %s --output model.onnx"

/* When path's final component is saved_model.pb (a TensorFlow SavedModel's graph, which
 * the wire check may even pass), say so; returns RM_EFORMAT, or 0 for any other name. */
static int saved_model_pb(const char *path, struct rm_error *err)
{
    const char *slash = strrchr(path, '/');
    if (strcmp(slash ? slash + 1 : path, "saved_model.pb"))
        return 0;
    char folder[PATH_MAX];
    snprintf(folder, sizeof folder, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    return rm_error_set(err, RM_EFORMAT, "%s: the graph of a TensorFlow SavedModel, not an ONNX model; " TF2ONNX,
                        path, folder[0] ? folder : "/");
}

/* Unpack the model in data. When mapped, data is a mapping the model keeps (*kept set
 * when tensors point into it); otherwise tensor bytes are copied into the arena. */
static int model_from_bytes(struct rm_model *m, const uint8_t *data, size_t size,
                            const char *name, const struct rm_load_options *limits,
                            bool mapped, bool *kept, struct rm_error *err)
{
    const size_t file_size = size;
    if (kept)
        *kept = false;
    if (size == 0)
        return rm_error_set(err, RM_EFORMAT, "%s: empty file, not an ONNX model", name);
    int rc = sniff_before(data, size, name, err);
    if (rc)
        return rc;
    uint64_t need = 0, raw = 0;
    rc = wire_check(data, size, &onnx__model_proto__descriptor, name, &need, &raw, err);
    if (rc) {
        if (saved_model_pb(name, err) || sniff_after(data, size, name, err))
            return err->code;
        return rc;
    }
    /* bytes left in the mapping need no memory of their own */
    if (mapped)
        need -= need > raw ? raw : need;
    uint64_t limit = limits && limits->max_memory ? limits->max_memory : rm_machine_memory_budget();
    m->max_memory = limit; /* sessions of the model are held to it too */
    if (need > limit)
        return rm_error_set(err, RM_ENOMEM,
                            "%s: unpacking would need about %llu MB, over the limit of %llu MB",
                            name, (unsigned long long)(need >> 20), (unsigned long long)(limit >> 20));
    /* the skeleton's bookkeeping (8 bytes a message) is within need's 16 and more */
    struct skel s = {.base = data};
    size_t skel_len = skel_size(&s, data, data + size, &onnx__model_proto__descriptor, 0);
    if (skel_len == SIZE_MAX) {
        skel_free(&s);
        return s.oom ? out_of_memory(err, name, need + size)
                     : rm_error_set(err, RM_EFORMAT, "%s: not a valid ONNX ModelProto (protobuf decoding failed)",
                                    name);
    }
    /* the address space wanted, for an out-of-memory message: the mapping counts */
    uint64_t wanted = mapped ? need + size : need;
    const uint8_t *src = data;
    uint8_t *skeleton = NULL;
    if (s.n_spans) {
        skeleton = malloc(skel_len ? skel_len : 1);
        if (!skeleton) {
            skel_free(&s);
            return out_of_memory(err, name, wanted);
        }
        uint8_t *e = skel_write(&s, data, data + size, &onnx__model_proto__descriptor, skeleton);
        if (e != skeleton + skel_len) {
            free(skeleton);
            skel_free(&s);
            return rm_error_set(err, RM_EFORMAT, "%s: not a valid ONNX ModelProto (protobuf decoding failed)", name);
        }
        src = skeleton;
        size = skel_len;
    }
    rm_arena_init(&m->arena, (size_t)need + ((size_t)1 << 16));
    struct counting_alloc ca = {{counting_alloc_fn, counting_free_fn, NULL}, &m->arena, 0};
    ca.base.allocator_data = &ca;
    m->proto = (Onnx__ModelProto *)protobuf_c_message_unpack(&onnx__model_proto__descriptor, &ca.base, size,
                                                             src);
    free(skeleton);
    if (m->proto && s.n_spans && skel_fill(&s, &m->proto->base, data, mapped ? data : NULL, &m->arena, 0)) {
        m->proto = NULL;
        ca.failed = ca.failed ? ca.failed : 1;
    }
    skel_free(&s);
    if (!m->proto && ca.failed)
        return out_of_memory(err, name, wanted > ca.failed ? wanted : ca.failed);
    if (!m->proto)
        return rm_error_set(err, RM_EFORMAT, "%s: not a valid ONNX ModelProto (protobuf decoding failed)", name);
    if (kept)
        *kept = mapped && s.n_spans;
    if (!m->proto->graph && saved_model_pb(name, err))
        return err->code;
    if (!m->proto->graph)
        return rm_error_set(err, RM_EFORMAT, "%s: ModelProto has no graph", name);
    m->file_size = file_size;
    return 0;
}

static char *dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return NULL;
    char *d = strdup(dirname(copy));
    free(copy);
    return d;
}

int rm_model_load_buffer(struct rm_model **out, const void *data, size_t size, const char *name,
                         const struct rm_load_options *limits, struct rm_error *err)
{
    *out = NULL;
    struct rm_model *m = calloc(1, sizeof *m);
    if (!m)
        return rm_error_set(err, RM_ENOMEM, "%s: out of memory", name);
    rm_arena_init(&m->arena, 0);
    int rc = model_from_bytes(m, data, size, name, limits, false, NULL, err);
    if (rc == 0)
        rc = rm_extdata_resolve(m, err); /* refuses external tensors: no folder */
    if (rc) {
        rm_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int rm_model_load(struct rm_model **out, const char *path, const struct rm_load_options *limits,
                  struct rm_error *err)
{
    int rc = 0, fd = -1;
    void *map = MAP_FAILED;
    size_t size = 0;
    struct rm_model *m = NULL;
    *out = NULL;

    struct stat st;
    char saved[PATH_MAX];
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
        snprintf(saved, sizeof saved, "%s/saved_model.pb", path) < (int)sizeof saved && access(saved, F_OK) == 0) {
        rc = rm_error_set(err, RM_EFORMAT, "%s: a TensorFlow SavedModel folder, not an ONNX model; " TF2ONNX, path,
                          path);
        goto done;
    }
    rc = rm_fs_open_input(path, &fd, &st, err); /* a FIFO or device is refused, never waited on */
    if (rc)
        goto done;
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX / 2) {
        rc = rm_error_set(err, RM_ENOMEM, "%s: file too large", path);
        goto done;
    }
    size = (size_t)st.st_size;
    m = calloc(1, sizeof *m);
    if (!m) {
        rc = rm_error_set(err, RM_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    rm_arena_init(&m->arena, 0);
    m->file_id = rm_file_id_of(&st);
    m->path = strdup(path);
    m->dir = dir_of(path);
    if (!m->path || !m->dir) {
        rc = rm_error_set(err, RM_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    if (size > 0) {
        /* read-only and shared, like external data: tensors point into it (no copy, no
         * commit charge) and nothing writes through it. Saving over the file renames a
         * new one into place; this mapping keeps the old one. */
        map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) {
            rc = errno == ENOMEM ? out_of_memory(err, path, size)
                                 : rm_error_set(err, RM_EIO, "%s: cannot map: %s", path, strerror(errno));
            goto done;
        }
    }
    bool kept = false;
    rc = model_from_bytes(m, map == MAP_FAILED ? (const uint8_t *)"" : map, size, path, limits, map != MAP_FAILED,
                          &kept, err);
    if (kept) {
        m->map = map;
        m->map_size = size;
        rm_fs_map_add(map, size, fd);
        map = MAP_FAILED;
    }
    if (rc == 0)
        rc = rm_extdata_resolve(m, err);

done:
    if (map != MAP_FAILED)
        munmap(map, size);
    if (fd >= 0)
        close(fd);
    if (rc) {
        rm_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void rm_model_free(struct rm_model *m)
{
    if (!m)
        return;
    rm_model_drop_state(m);
    m->freed = true;
    while (m && m->freed && m->refs == 0) {
        struct rm_model *base = m->base;
        rm_extdata_release(m);
        rm_arena_free(&m->arena);
        rm_model_bufs_free(m);
        if (m->map) {
            rm_fs_map_remove(m->map);
            munmap(m->map, m->map_size);
        }
        free(m->path);
        free(m->dir);
        free(m);
        /* the model this clone shared bytes with may now go too */
        if (base)
            base->refs--;
        m = base;
    }
}

/* ---- save ------------------------------------------------------------------ */

#define WBUF_SIZE ((size_t)1 << 18)

struct fd_buffer;
static void write_chunks(struct fd_buffer *b, const uint8_t *p, size_t n);

/* A ProtobufCBuffer that streams to a file descriptor through a fixed buffer;
 * large appends (tensor bytes) bypass the buffer and go straight to write(2). */
struct fd_buffer {
    ProtobufCBuffer base;
    int fd;
    int err;          /* first errno seen, 0 if none */
    size_t len;
    uint8_t *buf;
    uint64_t written; /* bytes written to fd so far */
    uint64_t synced;  /* bytes whose writeback has been started */
    bool no_copy;     /* copy_file_range failed once (another file system): write only */
};

/* Bytes between writeback kicks: the disk works while we keep packing, so the
 * final fsync waits only for the tail instead of the whole file. */
#define WRITEBACK_CHUNK ((uint64_t)2 << 20)

static void kick_writeback(struct fd_buffer *b)
{
    if (!b->err && b->written - b->synced >= WRITEBACK_CHUNK) {
        sync_file_range(b->fd, (off_t)b->synced, (off_t)(b->written - b->synced),
                        SYNC_FILE_RANGE_WRITE);
        b->synced = b->written;
    }
}

static void write_all(struct fd_buffer *b, const uint8_t *p, size_t n)
{
    write_chunks(b, p, n);
    kick_writeback(b);
}

/* Bytes that are in a mapped input file go file to file (copy_file_range: no page
 * faults on the mapping, no copy through user space), in chunks so that writeback
 * keeps pace; whatever it cannot copy is written from memory. */
#define COPY_CHUNK ((size_t)8 << 20)

static void copy_or_write(struct fd_buffer *b, const uint8_t *p, size_t n)
{
    int src;
    uint64_t off;
    if (!b->no_copy && !rm_fs_map_source(p, n, &src, &off)) {
        loff_t in = (loff_t)off;
        while (n > 0 && !b->err) {
            ssize_t k = copy_file_range(src, &in, b->fd, NULL, n < COPY_CHUNK ? n : COPY_CHUNK, 0);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) { /* not supported here, or an error write(2) will report */
                b->no_copy = true;
                break;
            }
            p += k;
            n -= (size_t)k;
            b->written += (uint64_t)k;
            kick_writeback(b);
        }
    }
    write_all(b, p, n);
}

static void write_chunks(struct fd_buffer *b, const uint8_t *p, size_t n)
{
    while (n > 0 && !b->err) {
        ssize_t k = write(b->fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            b->err = errno;
            return;
        }
        p += k;
        n -= (size_t)k;
        b->written += (uint64_t)k;
    }
}

static void fd_flush(struct fd_buffer *b)
{
    write_all(b, b->buf, b->len);
    b->len = 0;
}

static void fd_append(ProtobufCBuffer *base, size_t n, const uint8_t *data)
{
    struct fd_buffer *b = (struct fd_buffer *)base;
    if (b->err || n == 0) /* an empty bytes field (raw_data of 0 bytes) may come as NULL */
        return;
    if (n >= WBUF_SIZE / 2) {
        fd_flush(b);
        copy_or_write(b, data, n);
        return;
    }
    if (b->len + n > WBUF_SIZE)
        fd_flush(b);
    memcpy(b->buf + b->len, data, n);
    b->len += n;
}

int rm_model_save_inline(const struct rm_model *m, const char *path, struct rm_error *err)
{
    if (rm_model_packed_size(m) > RM_PROTOBUF_LIMIT)
    {
        rm_error_set(err, RM_EUSAGE, "%s: the model is over protobuf's 2 GB limit; save its tensors as external data",
                     path);
        return rm_error_fix(err, RM_FIX_EXTERNAL_DATA);
    }
    struct rm_output t;
    int rc = rm_output_check(path, &t, err);
    if (rc == 0)
        rc = rm_output_guard(m, &t, "the output", 1, err);
    if (rc)
        return rc;
    char tmp[PATH_MAX];
    int fd;
    rc = rm_atomic_open(path, tmp, sizeof tmp, &fd, err);
    if (rc)
        return rc;
    rc = rm_write_stream(fd, path, &m->proto->base, NULL, 0, err);
    return rm_atomic_commit(path, tmp, fd, rc == 0, err);
}

uint64_t rm_model_packed_size(const struct rm_model *m)
{
    return protobuf_c_message_get_packed_size(&m->proto->base);
}

int rm_write_stream(int fd, const char *path, const ProtobufCMessage *msg, const void *raw,
                    size_t raw_len, struct rm_error *err)
{
    struct fd_buffer b = {.base = {.append = fd_append}, .fd = fd};
    b.buf = malloc(WBUF_SIZE);
    if (!b.buf)
        return rm_error_set(err, RM_ENOMEM, "%s: out of memory", path);
    if (msg)
        protobuf_c_message_pack_to_buffer(msg, &b.base);
    if (raw)
        fd_append(&b.base, raw_len, raw);
    fd_flush(&b);
    free(b.buf);
    if (b.err)
        return rm_error_set(err, RM_EIO, "%s: cannot write: %s", path, strerror(b.err));
    return 0;
}
