/* Host tensors and tensor files: a plain row-major float32/int64 array with its
 * shape (what the engine takes and hands back), and readers/writers for ONNX
 * TensorProto .pb files and NumPy .npy files. A host tensor owns its data when
 * `owned` is set (free with rm_host_tensor_free); sizes read from files are hostile
 * and overflow-checked before any allocation. */
#ifndef RM_TENSORIO_H
#define RM_TENSORIO_H

#include "rm_error.h"
#include "rm_tensor.h"

#include <stddef.h>
#include <stdint.h>

/* dtype is an ONNX element type: ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT or __INT64. */
struct rm_host_tensor {
    int32_t dtype;
    int rank;                   /* 0 (scalar) .. RM_MAX_RANK */
    int64_t dims[RM_MAX_RANK];
    int64_t numel;              /* product of dims */
    void *data;                 /* numel elements, row-major */
    int owned;                  /* 1: data is malloc'd and freed by rm_host_tensor_free */
};

/* Allocate t (zeroed data) for dtype FLOAT or INT64 and the given dims. Returns 0,
 * RM_EUNSUPPORTED (dtype), RM_EFORMAT (negative dim, rank) or RM_ENOMEM. */
int rm_host_tensor_alloc(struct rm_host_tensor *t, int32_t dtype, int rank, const int64_t *dims,
                         struct rm_error *err);

/* Free owned data and zero t. Accepts NULL and zeroed tensors. */
void rm_host_tensor_free(struct rm_host_tensor *t);

/* Read a tensor file into *out (owned). Format by content: NumPy magic "\x93NUMPY" is
 * .npy (v1/v2/v3, little-endian <f4/<i8, C order), anything else is a TensorProto.
 * name (may be NULL) receives the TensorProto name ("" for .npy), truncated to
 * name_size. float64/int32 data is converted to float32/int64. Returns 0, RM_EIO,
 * RM_EFORMAT, RM_EUNSUPPORTED or RM_ENOMEM; err names the file. */
int rm_tensor_file_read(const char *path, struct rm_host_tensor *out, char *name, size_t name_size,
                        struct rm_error *err);

/* Same for bytes in memory (label is used in messages). */
int rm_tensor_buffer_read(const uint8_t *data, size_t size, const char *label,
                          struct rm_host_tensor *out, char *name, size_t name_size,
                          struct rm_error *err);

/* Write t as a TensorProto (raw_data, name `name`) to path atomically.
 * Returns 0, RM_EIO or RM_ENOMEM. */
int rm_tensor_file_write_pb(const char *path, const struct rm_host_tensor *t, const char *name,
                            struct rm_error *err);

#endif
