/* ONNX external data: tensors whose bytes live in another file beside the model
 * (data_location EXTERNAL, keys location/offset/length). On load they are mapped
 * read-only and shared (PROT_READ, MAP_SHARED: no commit charge, so data larger than RAM
 * maps) and the ModelProto is rewritten to the inline form pointing into the mapping (no
 * copy); the model owns the mappings and nothing may write through them (edits build new
 * tensors in the arena). On save they can be written out again to one file with
 * page-aligned offsets. Locations are hostile input: absolute paths, '..' and anything
 * resolving outside the model's folder are refused. */
#ifndef RM_EXTDATA_H
#define RM_EXTDATA_H

#include "rm_model.h"

/* Protobuf's limit for one serialized message, which other ONNX readers enforce. */
#define RM_PROTOBUF_LIMIT ((uint64_t)INT32_MAX)

/* Map every external tensor of m's main graph (initializers, Constant values) and
 * make it inline. Returns 0, RM_EFORMAT (bad keys, offsets or sizes), RM_EIO
 * (missing file) or RM_EUNSUPPORTED (location outside the model's folder). */
int rm_extdata_resolve(struct rm_model *m, struct rm_error *err);

/* Unmap everything rm_extdata_resolve mapped. Safe to call twice. */
void rm_extdata_release(struct rm_model *m);

/* rm_output_guard (refuse to write a file m is read from, compared by identity) and
 * rm_external_data_path (where external data goes beside an output) are public:
 * remodel.h. */

/* Bytes the inline serialization of m would take. */
uint64_t rm_model_packed_size(const struct rm_model *m);

/* Stream msg (may be NULL) then raw bytes (may be NULL) to fd through the buffered
 * writer; path is for messages. Returns 0, RM_EIO or RM_ENOMEM. */
int rm_write_stream(int fd, const char *path, const ProtobufCMessage *msg, const void *raw,
                    size_t raw_len, struct rm_error *err);

#endif
