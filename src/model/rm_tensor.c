#include "rm_tensor.h"

#include "rm_fs.h"

#include <stdio.h>
#include <string.h>

size_t rm_dtype_size(int32_t dtype)
{
    switch (dtype) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: return 4;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: return 1;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: return 1;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: return 2;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: return 2;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: return 4;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return 8;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return 1;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: return 2;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return 8;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: return 4;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: return 8;
    case ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX64: return 8;
    case ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX128: return 16;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: return 2;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT8E4M3FN:
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT8E4M3FNUZ:
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT8E5M2:
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT8E5M2FNUZ:
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT8E8M0: return 1;
    default: return 0;
    }
}

const char *rm_dtype_name(int32_t dtype)
{
    static const char *names[] = {
        "undefined", "float32", "uint8", "int8", "uint16", "int16", "int32", "int64",
        "string", "bool", "float16", "float64", "uint32", "uint64", "complex64",
        "complex128", "bfloat16", "float8e4m3fn", "float8e4m3fnuz", "float8e5m2",
        "float8e5m2fnuz", "uint4", "int4", "float4e2m1", "float8e8m0",
    };
    if (dtype >= 0 && (size_t)dtype < sizeof names / sizeof names[0])
        return names[dtype];
    return "unknown-type";
}

int32_t rm_dtype_host(int32_t dtype)
{
    switch (dtype) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
        return ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
        return ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    default:
        return 0;
    }
}

int rm_dims_numel(const int64_t *dims, size_t n, int64_t *out)
{
    int64_t p = 1;
    for (size_t i = 0; i < n; i++) {
        if (dims[i] < 0)
            return RM_EFORMAT;
        if (dims[i] != 0 && p > INT64_MAX / dims[i])
            return RM_EFORMAT;
        p *= dims[i];
    }
    *out = p;
    return 0;
}

static const char *tname(const Onnx__TensorProto *t)
{
    return t->name && t->name[0] ? t->name : "(unnamed)";
}

int rm_tensor_numel(const Onnx__TensorProto *t, int64_t *out, struct rm_error *err)
{
    if (rm_dims_numel(t->dims, t->n_dims, out) != 0)
        return rm_error_set(err, RM_EFORMAT, "tensor '%s': dims are negative or their product overflows",
                            tname(t));
    return 0;
}

bool rm_tensor_is_external(const Onnx__TensorProto *t)
{
    return t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
}

/* Number of entries t holds in the typed field its data_type uses, or -1 when the
 * type has none we know. */
static int64_t typed_count(const Onnx__TensorProto *t)
{
    switch (t->data_type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: return (int64_t)t->n_float_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX64: return (int64_t)t->n_float_data / 2;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return (int64_t)t->n_double_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX128: return (int64_t)t->n_double_data / 2;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return (int64_t)t->n_int64_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: return (int64_t)t->n_uint64_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__STRING: return (int64_t)t->n_string_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16:
        return (int64_t)t->n_int32_data;
    default: return -1;
    }
}

int rm_tensor_check(const Onnx__TensorProto *t, struct rm_error *err)
{
    int64_t n = 0;
    if (rm_tensor_numel(t, &n, err))
        return RM_EFORMAT;
    if (rm_tensor_is_external(t))
        return 0;
    size_t es = rm_dtype_size(t->data_type);
    if (t->has_raw_data) {
        if (es == 0)
            return rm_error_set(err, RM_EFORMAT, "tensor '%s': raw_data with data type %s (%d)",
                                tname(t), rm_dtype_name(t->data_type), (int)t->data_type);
        if ((uint64_t)n > UINT64_MAX / es || (uint64_t)n * es != (uint64_t)t->raw_data.len)
            return rm_error_set(err, RM_EFORMAT,
                                "tensor '%s': raw_data has %zu bytes, dims %s need %lld elements of %zu bytes",
                                tname(t), t->raw_data.len, "", (long long)n, es);
        return 0;
    }
    int64_t c = typed_count(t);
    if (c < 0)
        return rm_error_set(err, RM_EFORMAT, "tensor '%s': unknown data type %d", tname(t),
                            (int)t->data_type);
    if (c != n)
        return rm_error_set(err, RM_EFORMAT, "tensor '%s': holds %lld values, dims need %lld",
                            tname(t), (long long)c, (long long)n);
    return 0;
}

uint64_t rm_tensor_nbytes(const Onnx__TensorProto *t)
{
    if (t->has_raw_data)
        return t->raw_data.len;
    return (uint64_t)t->n_float_data * 4 + (uint64_t)t->n_int32_data * 4 +
           (uint64_t)t->n_int64_data * 8 + (uint64_t)t->n_double_data * 8 +
           (uint64_t)t->n_uint64_data * 8;
}

/* Element i of raw little-endian data of type dtype, as double (exact for every
 * type here except int64 beyond 2^53, which callers needing ints read separately). */
static double raw_elem(const uint8_t *p, int32_t dtype, int64_t i)
{
    switch (dtype) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: { float v; memcpy(&v, p + 4 * i, 4); return v; }
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: { double v; memcpy(&v, p + 8 * i, 8); return v; }
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: { int32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: { int16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: return (int8_t)p[i];
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: return p[i];
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return p[i] != 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: { int64_t v; memcpy(&v, p + 8 * i, 8); return (double)v; }
    default: return 0;
    }
}

static int convertible(int32_t dtype)
{
    switch (dtype) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
        return 1;
    default:
        return 0;
    }
}

static int prepare(const Onnx__TensorProto *t, int64_t n, struct rm_error *err)
{
    if (!convertible(t->data_type))
        return rm_error_set(err, RM_EUNSUPPORTED, "tensor '%s': data type %s is not supported",
                            tname(t), rm_dtype_name(t->data_type));
    if (rm_tensor_is_external(t))
        return rm_error_set(err, RM_EUNSUPPORTED, "tensor '%s': external data not loaded", tname(t));
    int rc = rm_tensor_check(t, err);
    if (rc)
        return rc;
    int64_t numel = 0;
    rm_tensor_numel(t, &numel, NULL);
    if (numel != n)
        return rm_error_set(err, RM_EFORMAT, "tensor '%s': has %lld elements, expected %lld",
                            tname(t), (long long)numel, (long long)n);
    return 0;
}

int rm_tensor_to_f32(const Onnx__TensorProto *t, float *dst, int64_t n, struct rm_error *err)
{
    int rc = prepare(t, n, err);
    if (rc)
        return rc;
    if (t->has_raw_data) {
        if (t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
            if (n) /* an empty raw_data may come as NULL */
                memcpy(dst, t->raw_data.data, (size_t)n * 4);
        } else {
            for (int64_t i = 0; i < n; i++)
                dst[i] = (float)raw_elem(t->raw_data.data, t->data_type, i);
        }
        rm_fs_map_read(t->raw_data.data, t->raw_data.len); /* copied out: the file's pages may go */
        return 0;
    }
    for (int64_t i = 0; i < n; i++) {
        switch (t->data_type) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: dst[i] = t->float_data[i]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: dst[i] = (float)t->double_data[i]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: dst[i] = (float)t->int64_data[i]; break;
        default: dst[i] = (float)t->int32_data[i]; break;
        }
    }
    return 0;
}

int64_t rm_f2i(double f)
{
    /* C leaves the conversion of NaN and of values outside int64 undefined */
    if (f != f)
        return 0;
    if (f >= 9223372036854775807.0)
        return INT64_MAX;
    if (f <= -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)f;
}

int rm_tensor_to_i64(const Onnx__TensorProto *t, int64_t *dst, int64_t n, struct rm_error *err)
{
    int rc = prepare(t, n, err);
    if (rc)
        return rc;
    if (t->has_raw_data) {
        if (t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64) {
            if (n)
                memcpy(dst, t->raw_data.data, (size_t)n * 8);
        } else {
            for (int64_t i = 0; i < n; i++)
                dst[i] = rm_f2i(raw_elem(t->raw_data.data, t->data_type, i));
        }
        rm_fs_map_read(t->raw_data.data, t->raw_data.len);
        return 0;
    }
    for (int64_t i = 0; i < n; i++) {
        switch (t->data_type) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: dst[i] = t->int64_data[i]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: dst[i] = rm_f2i(t->float_data[i]); break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: dst[i] = rm_f2i(t->double_data[i]); break;
        default: dst[i] = t->int32_data[i]; break;
        }
    }
    return 0;
}
