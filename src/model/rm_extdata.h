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

/* Refuse to write the file t (named by the option opt in messages: "-o",
 * "--external-data", "--report") when m is read from it: one of m's external data files
 * always (m's file on disk would then point at other bytes), m's own file unless
 * allow_model (an edited model may replace the file it came from, which is read whole).
 * Files are compared by identity, not by name. Returns 0 or RM_EUSAGE. */
int rm_model_guard_output(const struct rm_model *m, const struct rm_fs_target *t, const char *opt,
                          int allow_model, struct rm_error *err);

/* The path of the external data file `name` written beside the model file out (what
 * --external-data names): out's folder and name, into buf. name must be a plain file name
 * (no '/', not "." or ".."). Returns 0 or RM_EUSAGE. */
int rm_extdata_path(const char *out, const char *name, char *buf, size_t size, struct rm_error *err);

/* Bytes the inline serialization of m would take. */
uint64_t rm_model_packed_size(const struct rm_model *m);

/* Stream msg (may be NULL) then raw bytes (may be NULL) to fd through the buffered
 * writer; path is for messages. Returns 0, RM_EIO or RM_ENOMEM. */
int rm_write_stream(int fd, const char *path, const ProtobufCMessage *msg, const void *raw,
                    size_t raw_len, struct rm_error *err);

#endif
