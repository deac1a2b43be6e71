/* TensorProto helpers: element types, checked sizes, and typed access to the data
 * of initializers and tensor files. Nothing here allocates except the file readers,
 * which allocate in a caller-supplied arena. Sizes from files are hostile: every
 * product and byte count is overflow-checked. */
#ifndef RM_TENSOR_H
#define RM_TENSOR_H

#include "onnx.pb-c.h"
#include "rm_arena.h"
#include "rm_error.h"

#include <stdbool.h>
#include <stdint.h>

/* Bytes per element of an ONNX data type; 0 for STRING, UNDEFINED, 4-bit types
 * and unknown values. */
size_t rm_dtype_size(int32_t dtype);

/* The type remodel computes a tensor of dtype in: FLOAT for float types, INT64 for
 * integer and bool types (rm_tensor_to_f32 / rm_tensor_to_i64 convert), 0 for the rest. */
int32_t rm_dtype_host(int32_t dtype);

/* Product of n dims into *out. Returns 0, or RM_EFORMAT for a negative dim or an
 * overflow past INT64_MAX. */
int rm_dims_numel(const int64_t *dims, size_t n, int64_t *out);

/* Element count of t, checked. Returns 0 or RM_EFORMAT (message names the tensor). */
int rm_tensor_numel(const Onnx__TensorProto *t, int64_t *out, struct rm_error *err);

/* Whether t stores its bytes outside the model (data_location EXTERNAL). */
bool rm_tensor_is_external(const Onnx__TensorProto *t);

/* Check that the data stored in t matches its dims and data_type: raw_data length
 * equals numel * element size, or the typed field has numel entries. External
 * tensors are not checked here. Returns 0 or RM_EFORMAT naming the tensor. */
int rm_tensor_check(const Onnx__TensorProto *t, struct rm_error *err);

/* Bytes of data t holds (raw or typed), for statistics. */
uint64_t rm_tensor_nbytes(const Onnx__TensorProto *t);

/* Copy t's values, converted to float, into dst (n elements, n == numel).
 * Supports FLOAT, DOUBLE, INT32/16/8, UINT8, INT64, BOOL; raw or typed storage.
 * Returns 0, RM_EFORMAT (size mismatch) or RM_EUNSUPPORTED (type). */
int rm_tensor_to_f32(const Onnx__TensorProto *t, float *dst, int64_t n, struct rm_error *err);

/* Same, converted to int64 (for shape and index tensors). */
int rm_tensor_to_i64(const Onnx__TensorProto *t, int64_t *dst, int64_t n, struct rm_error *err);
/* f truncated to int64, without the undefined behaviour of a plain cast: NaN is 0, values
 * past int64 saturate (rm_tensor_to_i64 reads floats so: fuzzing found 3.4e38 there). */
int64_t rm_f2i(double f);

#endif
