/* Host tensors and tensor files: a plain row-major float32/int64 array with its
 * shape (what the engine takes and hands back), and readers/writers for ONNX
 * TensorProto .pb files and NumPy .npy files. A host tensor owns its data when
 * `owned` is set (free with rm_tensor_free); sizes read from files are hostile
 * and overflow-checked before any allocation. */
#ifndef RM_TENSORIO_H
#define RM_TENSORIO_H

#include "rm_error.h"
#include "rm_tensor.h"

#include <stddef.h>
#include <stdint.h>

/* The public tensor functions are in remodel.h (rm_tensor_alloc, rm_tensor_free,
 * rm_tensor_read, rm_tensor_write_pb). */

/* rm_tensor_read for bytes in memory (label is used in messages). */
int rm_tensor_buffer_read(const uint8_t *data, size_t size, const char *label,
                          struct rm_host_tensor *out, char *name, size_t name_size,
                          struct rm_error *err);

#endif
