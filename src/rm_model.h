/* An ONNX model in memory: the protobuf-c ModelProto (the single source of truth)
 * and the arena that owns all of it. rm_model_load reads a file with mmap,
 * validates the wire format (lengths, nesting, memory budget) before protobuf-c
 * sees it, and unpacks into the arena; rm_model_save streams the ModelProto to a
 * temporary file in the target folder and renames it into place. */
#ifndef RM_MODEL_H
#define RM_MODEL_H

#include "onnx.pb-c.h"
#include "rm_arena.h"
#include "rm_error.h"
#include "rm_fs.h"

#include <stddef.h>
#include <stdint.h>

/* Deepest message nesting accepted (graphs inside attributes inside nodes ...). */
#define RM_MAX_NESTING 64

struct rm_extfile;

struct rm_model {
    Onnx__ModelProto *proto; /* owned by arena */
    struct rm_arena arena;   /* owns proto and everything edits add */
    char *path;              /* file it was loaded from (malloc'd), or NULL */
    char *dir;               /* folder of path, for external data (malloc'd) */
    size_t file_size;        /* bytes of the file as loaded */
    struct rm_file_id file_id; /* identity of that file (when path is set) */
    struct rm_extfile *ext;  /* mapped external data files (rm_extdata.c), or NULL */
};

/* Limits applied while loading; zero fields mean "use the default". */
struct rm_load_limits {
    uint64_t max_memory; /* bytes the unpacked model may need (default: RAM/2) */
};

/* Load path into *out (caller frees with rm_model_free). On failure *out is NULL,
 * err names the file and what is wrong, and the return is RM_EIO, RM_EFORMAT or
 * RM_ENOMEM. limits may be NULL. */
int rm_model_load(struct rm_model **out, const char *path,
                  const struct rm_load_limits *limits, struct rm_error *err);

/* Same as rm_model_load for bytes already in memory (name is used in messages).
 * The bytes are copied; data need not outlive the call. */
int rm_model_load_buffer(struct rm_model **out, const void *data, size_t size,
                         const char *name, const struct rm_load_limits *limits,
                         struct rm_error *err);

/* Free everything. Accepts NULL. */
void rm_model_free(struct rm_model *m);

/* Options for rm_model_save_ex; zero fields mean "default". */
struct rm_save_opts {
    /* Write initializers of at least external_threshold bytes (default 1024) to this
     * file, beside the output (a bare file name, no folder), at 4096-aligned offsets,
     * and refer to them from the model as ONNX external data. NULL: all inline. */
    const char *external_data;
    uint64_t external_threshold;
};

/* rm_model_save with options. Both files are written atomically; on failure neither
 * is left behind. Models whose inline form would pass protobuf's 2 GB limit are
 * refused unless opts->external_data is set. A file m reads its external data from is
 * never written (RM_EUSAGE, see rm_model_guard_output in rm_extdata.h), nor is the data
 * file allowed to be the output or m's own file. Returns 0, RM_EIO or RM_EUSAGE. */
int rm_model_save_ex(struct rm_model *m, const char *path, const struct rm_save_opts *opts,
                     struct rm_error *err);

/* Serialize m to path atomically: temporary file in path's folder, fsync, rename,
 * fsync of the folder. On failure nothing is left behind and an existing file at
 * path (the input itself included) is untouched. path may be m's own file, never one of
 * its external data files. Returns 0, RM_EIO or RM_EUSAGE. */
int rm_model_save(const struct rm_model *m, const char *path, struct rm_error *err);

/* Check that size bytes are a well-formed serialization of desc (every length
 * inside its parent, nesting below RM_MAX_NESTING, no groups) and estimate the
 * bytes protobuf-c will allocate to unpack it into *mem_estimate (may be NULL).
 * name is used in messages. Returns 0 or RM_EFORMAT. */
int rm_wire_check(const uint8_t *data, size_t size, const ProtobufCMessageDescriptor *desc,
                  const char *name, uint64_t *mem_estimate, struct rm_error *err);

#endif
