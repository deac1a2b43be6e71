/* Tensor files: ONNX TensorProto (.pb) and NumPy (.npy) readers, TensorProto writer. */
#include "rm_tensorio.h"
#include "rm_fs.h"
#include "rm_model.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FLOAT_T ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
#define INT64_T ONNX__TENSOR_PROTO__DATA_TYPE__INT64

int rm_tensor_alloc(struct rm_host_tensor *t, int32_t dtype, int rank, const int64_t *dims,
                         struct rm_error *err)
{
    memset(t, 0, sizeof *t);
    if (dtype != FLOAT_T && dtype != INT64_T)
        return rm_error_set(err, RM_EUNSUPPORTED, "tensor type %s is not supported (float32, int64)",
                            rm_dtype_name(dtype));
    if (rank < 0 || rank > RM_MAX_RANK)
        return rm_error_set(err, RM_EFORMAT, "tensor rank %d is out of range (0..%d)", rank,
                            RM_MAX_RANK);
    int64_t n;
    if (rm_dims_numel(dims, (size_t)rank, &n))
        return rm_error_set(err, RM_EFORMAT, "tensor dims are negative or too large");
    /* bytes = n * 8 at most; refuse anything past 2^40 bytes before calling calloc */
    if ((uint64_t)n > ((uint64_t)1 << 37))
        return rm_error_set(err, RM_ENOMEM, "tensor of %lld elements is too large", (long long)n);
    void *d = calloc((size_t)(n ? n : 1), dtype == FLOAT_T ? 4 : 8);
    if (!d)
        return rm_error_set(err, RM_ENOMEM, "out of memory for a tensor of %lld elements",
                            (long long)n);
    t->dtype = dtype;
    t->rank = rank;
    for (int i = 0; i < rank; i++)
        t->dims[i] = dims[i];
    t->numel = n;
    t->data = d;
    t->owned = 1;
    return 0;
}

void rm_tensor_free(struct rm_host_tensor *t)
{
    if (!t)
        return;
    if (t->owned)
        free(t->data);
    memset(t, 0, sizeof *t);
}

static void set_name(char *name, size_t name_size, const char *s)
{
    if (!name || !name_size)
        return;
    snprintf(name, name_size, "%s", s ? s : "");
}

/* ---- TensorProto ----------------------------------------------------------- */

static int read_pb(const uint8_t *data, size_t size, const char *label, struct rm_host_tensor *out,
                   char *name, size_t name_size, struct rm_error *err)
{
    Onnx__TensorProto *tp = NULL;
    int rc = rm_wire_check(data, size, &onnx__tensor_proto__descriptor, label, NULL, err);
    if (rc)
        goto done;
    tp = onnx__tensor_proto__unpack(NULL, size, data);
    if (!tp) {
        rc = rm_error_set(err, RM_EFORMAT, "%s: not a valid ONNX TensorProto", label);
        goto done;
    }
    if (tp->n_dims > RM_MAX_RANK) {
        rc = rm_error_set(err, RM_EUNSUPPORTED, "%s: rank %zu is above the maximum %d", label,
                          tp->n_dims, RM_MAX_RANK);
        goto done;
    }
    if (rm_tensor_is_external(tp)) {
        rc = rm_error_set(err, RM_EUNSUPPORTED, "%s: tensor data stored externally", label);
        goto done;
    }
    int32_t dt = tp->data_type;
    int32_t want;
    if (dt == FLOAT_T || dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE)
        want = FLOAT_T;
    else if (dt == INT64_T || dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT32)
        want = INT64_T;
    else {
        rc = rm_error_set(err, RM_EUNSUPPORTED, "%s: tensor type %s is not supported (float32, int64)",
                          label, rm_dtype_name(dt));
        goto done;
    }
    if ((rc = rm_tensor_check(tp, err)))
        goto prefix;
    if ((rc = rm_tensor_alloc(out, want, (int)tp->n_dims, tp->dims, err)))
        goto prefix;
    if (out->numel == 0)
        rc = 0;
    else
        rc = want == FLOAT_T ? rm_tensor_to_f32(tp, out->data, out->numel, err)
                             : rm_tensor_to_i64(tp, out->data, out->numel, err);
    if (rc) {
        rm_tensor_free(out);
        goto prefix;
    }
    set_name(name, name_size, tp->name);
    goto done;
prefix:
    rm_error_prefix(err, "%s", label);
done:
    if (tp)
        onnx__tensor_proto__free_unpacked(tp, NULL);
    return rc;
}

/* ---- .npy ------------------------------------------------------------------ */

/* Find `'key':` in the header dict and return a pointer just after the colon. */
static const char *npy_key(const char *h, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(h, pat);
    if (!p) {
        snprintf(pat, sizeof pat, "\"%s\"", key);
        p = strstr(h, pat);
    }
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    if (*p != ':')
        return NULL;
    p++;
    while (*p == ' ')
        p++;
    return p;
}

static int read_npy(const uint8_t *data, size_t size, const char *label, struct rm_host_tensor *out,
                    char *name, size_t name_size, struct rm_error *err)
{
    char *h = NULL;
    int rc = 0;
    if (size < 10)
        return rm_error_set(err, RM_EFORMAT, "%s: truncated .npy header", label);
    int major = data[6];
    size_t hlen, off;
    if (major == 1) {
        hlen = (size_t)data[8] | (size_t)data[9] << 8;
        off = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12)
            return rm_error_set(err, RM_EFORMAT, "%s: truncated .npy header", label);
        hlen = (size_t)data[8] | (size_t)data[9] << 8 | (size_t)data[10] << 16 |
               (size_t)data[11] << 24;
        off = 12;
    } else {
        return rm_error_set(err, RM_EUNSUPPORTED, "%s: .npy format version %d is not supported",
                            label, major);
    }
    if (hlen > size - off)
        return rm_error_set(err, RM_EFORMAT, "%s: .npy header length %zu runs past the end of the file",
                            label, hlen);
    h = malloc(hlen + 1);
    if (!h)
        return rm_error_set(err, RM_ENOMEM, "%s: out of memory", label);
    memcpy(h, data + off, hlen);
    h[hlen] = '\0';
    const char *d = npy_key(h, "descr"), *f = npy_key(h, "fortran_order"), *s = npy_key(h, "shape");
    if (!d || !f || !s || (*d != '\'' && *d != '"') || *s != '(') {
        rc = rm_error_set(err, RM_EFORMAT, "%s: .npy header lacks descr, fortran_order or shape", label);
        goto done;
    }
    if (strncmp(f, "False", 5) != 0) {
        rc = rm_error_set(err, RM_EUNSUPPORTED, "%s: Fortran-order .npy arrays are not supported", label);
        goto done;
    }
    int32_t want;
    size_t es;
    int src_kind; /* 0 f4, 1 f8, 2 i8, 3 i4 */
    if (!strncmp(d + 1, "<f4", 3)) {
        want = FLOAT_T, es = 4, src_kind = 0;
    } else if (!strncmp(d + 1, "<f8", 3)) {
        want = FLOAT_T, es = 8, src_kind = 1;
    } else if (!strncmp(d + 1, "<i8", 3)) {
        want = INT64_T, es = 8, src_kind = 2;
    } else if (!strncmp(d + 1, "<i4", 3)) {
        want = INT64_T, es = 4, src_kind = 3;
    } else {
        rc = rm_error_set(err, RM_EUNSUPPORTED,
                          "%s: .npy dtype %.8s is not supported (<f4, <f8, <i8, <i4)", label, d);
        goto done;
    }
    int64_t dims[RM_MAX_RANK];
    int rank = 0;
    const char *p = s + 1;
    for (;;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == ')')
            break;
        if (*p < '0' || *p > '9') {
            rc = rm_error_set(err, RM_EFORMAT, "%s: bad .npy shape", label);
            goto done;
        }
        if (rank == RM_MAX_RANK) {
            rc = rm_error_set(err, RM_EUNSUPPORTED, "%s: rank above %d", label, RM_MAX_RANK);
            goto done;
        }
        errno = 0;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (errno || v < 0) {
            rc = rm_error_set(err, RM_EFORMAT, "%s: bad .npy dimension", label);
            goto done;
        }
        dims[rank++] = v;
        p = end;
    }
    int64_t n;
    if (rm_dims_numel(dims, (size_t)rank, &n) || (uint64_t)n > (uint64_t)SIZE_MAX / es) {
        rc = rm_error_set(err, RM_EFORMAT, "%s: .npy shape overflows", label);
        goto done;
    }
    size_t body = size - off - hlen;
    if ((uint64_t)n * es != body) {
        rc = rm_error_set(err, RM_EFORMAT, "%s: .npy data has %zu bytes, shape needs %llu", label, body,
                          (unsigned long long)((uint64_t)n * es));
        goto done;
    }
    if ((rc = rm_tensor_alloc(out, want, rank, dims, err))) {
        rm_error_prefix(err, "%s", label);
        goto done;
    }
    const uint8_t *src = data + off + hlen;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *q = src + (size_t)i * es;
        if (src_kind == 0) {
            memcpy((float *)out->data + i, q, 4);
        } else if (src_kind == 1) {
            double v;
            memcpy(&v, q, 8);
            ((float *)out->data)[i] = (float)v;
        } else if (src_kind == 2) {
            memcpy((int64_t *)out->data + i, q, 8);
        } else {
            int32_t v;
            memcpy(&v, q, 4);
            ((int64_t *)out->data)[i] = v;
        }
    }
    set_name(name, name_size, "");
done:
    free(h);
    return rc;
}

int rm_tensor_buffer_read(const uint8_t *data, size_t size, const char *label,
                          struct rm_host_tensor *out, char *name, size_t name_size,
                          struct rm_error *err)
{
    memset(out, 0, sizeof *out);
    if (size >= 6 && !memcmp(data, "\x93NUMPY", 6))
        return read_npy(data, size, label, out, name, name_size, err);
    return read_pb(data, size, label, out, name, name_size, err);
}

int rm_tensor_read(const char *path, struct rm_host_tensor *out, char *name, size_t name_size,
                        struct rm_error *err)
{
    uint8_t *buf = NULL;
    int rc = 0;
    memset(out, 0, sizeof *out);
    int fd;
    struct stat st;
    if ((rc = rm_fs_open_input(path, &fd, &st, err))) /* a FIFO is refused, never waited on */
        return rc;
    if ((uint64_t)st.st_size > ((uint64_t)1 << 36)) {
        rc = rm_error_set(err, RM_ENOMEM, "%s: tensor file too large", path);
        goto done;
    }
    size_t size = (size_t)st.st_size;
    buf = malloc(size ? size : 1);
    if (!buf) {
        rc = rm_error_set(err, RM_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = rm_error_set(err, RM_EIO, "%s: read failed", path);
            goto done;
        }
        got += (size_t)r;
    }
    rc = rm_tensor_buffer_read(buf, size, path, out, name, name_size, err);
done:
    free(buf);
    close(fd);
    return rc;
}

/* t's elements (float32 or int64) as raw little-endian data of ONNX type dtype, malloc'd
 * (*bytes long); NULL when dtype is not one a float32/int64 tensor converts to. */
static void *raw_as(const struct rm_host_tensor *t, int32_t dtype, size_t *bytes)
{
    size_t es = rm_dtype_size(dtype);
    int f = t->dtype == FLOAT_T;
    switch (dtype) {
    case FLOAT_T: case INT64_T: case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
        break;
    default:
        return NULL;
    }
    uint8_t *d = malloc(t->numel ? (size_t)t->numel * es : 1);
    if (!d)
        return NULL;
    for (int64_t i = 0; i < t->numel; i++) {
        double v = f ? ((const float *)t->data)[i] : 0;
        int64_t q = f ? 0 : ((const int64_t *)t->data)[i];
        uint8_t *p = d + (size_t)i * es;
        switch (dtype) {
        case FLOAT_T: { float x = f ? (float)v : (float)q; memcpy(p, &x, 4); break; }
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: { double x = f ? v : (double)q; memcpy(p, &x, 8); break; }
        case INT64_T: memcpy(p, &q, 8); break; /* from int64 only: see the caller */
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: { int32_t x = (int32_t)q; memcpy(p, &x, 4); break; }
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: { int16_t x = (int16_t)q; memcpy(p, &x, 2); break; }
        default: *p = (uint8_t)(dtype == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL ? (f ? v != 0 : q != 0) : q); break;
        }
    }
    *bytes = (size_t)t->numel * es;
    return d;
}

int rm_tensor_write_pb(const char *path, const struct rm_host_tensor *t, const char *name,
                            struct rm_error *err)
{
    return rm_tensor_write_pb_as(path, t, t->dtype, name, err);
}

int rm_tensor_write_pb_as(const char *path, const struct rm_host_tensor *t, int32_t dtype, const char *name,
                          struct rm_error *err)
{
    Onnx__TensorProto tp;
    onnx__tensor_proto__init(&tp);
    int64_t dims[RM_MAX_RANK];
    uint8_t *buf = NULL;
    void *conv = NULL;
    char tmp[PATH_MAX];
    int fd = -1, rc;
    if (t->dtype != FLOAT_T && t->dtype != INT64_T)
        return rm_error_set(err, RM_EUNSUPPORTED, "%s: a tensor of %s is not written", path, rm_dtype_name(t->dtype));
    /* int64 data stays integral; float data goes to float types and bool only */
    if ((t->dtype == FLOAT_T && dtype != FLOAT_T && dtype != ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE &&
         dtype != ONNX__TENSOR_PROTO__DATA_TYPE__BOOL) ||
        (t->dtype == INT64_T && (dtype == FLOAT_T || dtype == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE)))
        return rm_error_set(err, RM_EUNSUPPORTED, "%s: %s data is not written as %s", path, rm_dtype_name(t->dtype),
                            rm_dtype_name(dtype));
    for (int i = 0; i < t->rank; i++)
        dims[i] = t->dims[i];
    tp.n_dims = (size_t)t->rank;
    tp.dims = dims;
    tp.has_data_type = 1;
    tp.data_type = dtype;
    tp.name = (char *)(name ? name : "");
    tp.has_raw_data = 1;
    if (dtype == t->dtype) {
        tp.raw_data.len = (size_t)t->numel * (t->dtype == INT64_T ? 8 : 4);
        tp.raw_data.data = t->data;
    } else if (!(conv = raw_as(t, dtype, &tp.raw_data.len))) {
        return rm_error_set(err, RM_ENOMEM, "%s: out of memory, or type %s is not written", path, rm_dtype_name(dtype));
    } else {
        tp.raw_data.data = conv;
    }
    size_t n = onnx__tensor_proto__get_packed_size(&tp);
    buf = malloc(n ? n : 1);
    if (!buf) {
        free(conv);
        return rm_error_set(err, RM_ENOMEM, "%s: out of memory", path);
    }
    onnx__tensor_proto__pack(&tp, buf);
    free(conv);
    if ((rc = rm_atomic_open(path, tmp, sizeof tmp, &fd, err)))
        goto done;
    int ok = 1;
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, buf + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            ok = 0;
            break;
        }
        off += (size_t)w;
    }
    rc = rm_atomic_commit(path, tmp, fd, ok, err);
    if (!rc && !ok)
        rc = rm_error_set(err, RM_EIO, "%s: write failed", path);
done:
    free(buf);
    return rc;
}
