#include "rm_extdata.h"

#include "rm_fs.h"
#include "rm_tensor.h"

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

#define EXT_ALIGN 4096

struct rm_extfile {
    struct rm_extfile *next;
    char *resolved; /* canonical path (malloc'd) */
    char *shown;    /* path as the model names it, folder/location (malloc'd), for messages */
    struct rm_file_id id;
    uint8_t *map;   /* read-only shared mapping, NULL for an empty file */
    size_t size;
};

void rm_extdata_release(struct rm_model *m)
{
    struct rm_extfile *f = m->ext;
    while (f) {
        struct rm_extfile *next = f->next;
        if (f->map) {
            rm_fs_map_remove(f->map);
            munmap(f->map, f->size);
        }
        free(f->resolved);
        free(f->shown);
        free(f);
        f = next;
    }
    m->ext = NULL;
}

/* Strict decimal parse of a uint64 ("0".."18446744073709551615"). */
static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return -1;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Is location a relative path that stays inside its folder by its text alone? */
static const char *location_problem(const char *loc)
{
    if (!loc[0])
        return "is empty";
    if (loc[0] == '/')
        return "is an absolute path";
    const char *p = loc;
    while (*p) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return "contains '..'";
        p += n;
        while (*p == '/')
            p++;
    }
    return NULL;
}

/* Check, open and map the file at dir/loc, reusing an earlier mapping of the same file.
 * The location is resolved (symbolic links included) and kept inside the model's folder
 * before anything is opened, and only a regular file is opened: a FIFO or a device,
 * inside the folder or behind a link out of it, is refused without being waited on. */
static int map_file(struct rm_model *m, const char *tname, const char *loc, struct rm_extfile **out,
                    struct rm_error *err)
{
    int rc = 0, fd = -1;
    char full[PATH_MAX], dirreal[PATH_MAX], real[PATH_MAX];
    struct rm_extfile *f = NULL;
    const char *why = location_problem(loc);
    if (why)
        return rm_error_set(err, RM_EUNSUPPORTED,
                            "%s: tensor '%s': external data location '%s' %s; only files inside the model's folder are read",
                            m->path, tname, loc, why);
    if (snprintf(full, sizeof full, "%s/%s", m->dir, loc) >= (int)sizeof full)
        return rm_error_set(err, RM_EFORMAT, "%s: tensor '%s': external data location too long", m->path, tname);
    if (!realpath(full, real))
        return rm_error_set(err, RM_EIO, "%s: tensor '%s': cannot open external data '%s': %s", m->path,
                            tname, full, strerror(errno));
    if (!realpath(m->dir, dirreal))
        return rm_error_set(err, RM_EIO, "%s: tensor '%s': cannot resolve the model's folder '%s': %s", m->path,
                            tname, m->dir, strerror(errno));
    size_t dl = strlen(dirreal);
    if (strncmp(real, dirreal, dl) != 0 || (dl > 1 && real[dl] != '/'))
        return rm_error_set(err, RM_EUNSUPPORTED,
                            "%s: tensor '%s': external data '%s' resolves to '%s', outside the model's folder",
                            m->path, tname, loc, real);
    struct stat st;
    if (rm_fs_open_input(real, &fd, &st, err))
        return rm_error_prefix(err, "%s: tensor '%s': external data '%s'", m->path, tname, loc);
    struct rm_file_id id = rm_file_id_of(&st);
    for (f = m->ext; f; f = f->next)
        if (rm_file_id_eq(&f->id, &id)) {
            *out = f;
            goto done;
        }
    f = calloc(1, sizeof *f);
    if (!f || !(f->resolved = strdup(real)) || !(f->shown = strdup(full))) {
        if (f)
            free(f->resolved);
        free(f);
        rc = rm_error_set(err, RM_ENOMEM, "%s: out of memory", m->path);
        goto done;
    }
    f->id = id;
    f->size = (size_t)st.st_size;
    if (f->size) {
        /* read-only and shared: no commit charge, so data larger than RAM + swap maps
         * (a private writable mapping is refused by the kernel's overcommit check).
         * Nothing writes through it: an edit builds new tensors in the arena. */
        void *p = mmap(NULL, f->size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            free(f->resolved);
            free(f->shown);
            free(f);
            rc = rm_error_set(err, RM_EIO, "%s: cannot map external data '%s': %s", m->path, full,
                              strerror(errno));
            goto done;
        }
        f->map = p;
        rm_fs_map_add(p, f->size, fd);
    }
    f->next = m->ext;
    m->ext = f;
    *out = f;
done:
    close(fd);
    return rc;
}

static int resolve_tensor(struct rm_model *m, Onnx__TensorProto *t, struct rm_error *err)
{
    const char *tname = t->name && t->name[0] ? t->name : "(unnamed)";
    const char *loc = NULL, *off_s = NULL, *len_s = NULL;
    for (size_t i = 0; i < t->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = t->external_data[i];
        if (!e->key || !e->value)
            continue;
        if (!strcmp(e->key, "location"))
            loc = e->value;
        else if (!strcmp(e->key, "offset"))
            off_s = e->value;
        else if (!strcmp(e->key, "length"))
            len_s = e->value;
    }
    const char *path = m->path ? m->path : "model";
    if (!loc)
        return rm_error_set(err, RM_EFORMAT, "%s: tensor '%s': external data without a location", path, tname);
    if (!m->dir)
        return rm_error_set(err, RM_EUNSUPPORTED,
                            "%s: tensor '%s': external data needs the model's folder (load from a file)", path,
                            tname);
    uint64_t off = 0, len = 0;
    if (off_s && parse_u64(off_s, &off))
        return rm_error_set(err, RM_EFORMAT, "%s: tensor '%s': external data offset '%s' is not a number",
                            path, tname, off_s);
    if (len_s && parse_u64(len_s, &len))
        return rm_error_set(err, RM_EFORMAT, "%s: tensor '%s': external data length '%s' is not a number",
                            path, tname, len_s);
    struct rm_extfile *f;
    int rc = map_file(m, tname, loc, &f, err);
    if (rc)
        return rc;
    if (off > f->size || (len_s && len > f->size - off))
        return rm_error_set(err, RM_EFORMAT,
                            "%s: tensor '%s': external data offset %llu + length %llu is beyond '%s' (%zu bytes)",
                            path, tname, (unsigned long long)off, (unsigned long long)len, loc, f->size);
    if (!len_s)
        len = f->size - off;
    t->raw_data.data = f->map ? f->map + off : (uint8_t *)"";
    t->raw_data.len = (size_t)len;
    t->has_raw_data = 1;
    t->has_data_location = 0;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT;
    t->n_external_data = 0;
    return 0;
}

int rm_extdata_resolve(struct rm_model *m, struct rm_error *err)
{
    Onnx__GraphProto *g = m->proto->graph;
    for (size_t i = 0; i < g->n_initializer; i++)
        if (rm_tensor_is_external(g->initializer[i])) {
            int rc = resolve_tensor(m, g->initializer[i], err);
            if (rc)
                return rc;
        }
    for (size_t i = 0; i < g->n_node; i++) {
        Onnx__NodeProto *n = g->node[i];
        for (size_t a = 0; a < n->n_attribute; a++) {
            Onnx__TensorProto *t = n->attribute[a]->t;
            if (t && rm_tensor_is_external(t)) {
                int rc = resolve_tensor(m, t, err);
                if (rc)
                    return rc;
            }
        }
    }
    return 0;
}

int rm_output_guard(const struct rm_model *m, const struct rm_output *t, const char *opt, bool allow_model,
                    struct rm_error *err)
{
    if (!t->exists)
        return 0;
    if (m->path && !allow_model && rm_file_id_eq(&t->id, &m->file_id))
        return rm_error_set(err, RM_EUSAGE, "%s: %s would overwrite the model being read (%s); choose another name",
                            t->path, opt, m->path);
    /* a clone reads its weights from the files of the model it was cloned from */
    for (const struct rm_model *b = m; b; b = b->base)
        for (const struct rm_extfile *f = b->ext; f; f = f->next)
            if (rm_file_id_eq(&t->id, &f->id))
                return rm_error_set(err, RM_EUSAGE,
                                    "%s: %s would overwrite the weights of the model being read (%s reads them "
                                    "from '%s'); choose another name",
                                    t->path, opt, m->path ? m->path : "model", f->shown);
    return 0;
}

/* ---- save with external data ------------------------------------------------ */

/* What a tensor looked like before it was pointed at the external file. */
struct saved_tensor {
    Onnx__TensorProto *t;
    ProtobufCBinaryData raw;
    size_t n_ext;
    Onnx__StringStringEntryProto **ext;
};

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t k = write(fd, b, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

static Onnx__StringStringEntryProto *entry(struct rm_arena *a, const char *key, const char *value)
{
    Onnx__StringStringEntryProto *e = rm_arena_alloc(a, sizeof *e);
    if (!e)
        return NULL;
    onnx__string_string_entry_proto__init(e);
    e->key = rm_arena_strdup(a, key);
    e->value = rm_arena_strdup(a, value);
    return e->key && e->value ? e : NULL;
}

int rm_external_data_path(const char *out, const char *name, char *buf, size_t size, struct rm_error *err)
{
    if (!name[0] || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
        return rm_error_set(err, RM_EUSAGE,
                            "external data file '%s': give a plain file name; it is written beside the output",
                            name);
    const char *slash = strrchr(out, '/');
    int n = slash ? snprintf(buf, size, "%.*s/%s", (int)(slash - out), out, name)
                  : snprintf(buf, size, "./%s", name);
    if (n < 0 || (size_t)n >= size)
        return rm_error_set(err, RM_EUSAGE, "%s: path too long", name);
    return 0;
}

int rm_model_save(struct rm_model *m, const char *path, const struct rm_save_options *opts,
                     struct rm_error *err)
{
    if (!opts || !opts->external_data)
        return rm_model_save_inline(m, path, err);
    const char *name = opts->external_data;
    uint64_t threshold = opts->external_threshold ? opts->external_threshold : 1024;
    struct rm_output to, td;
    char data_path[PATH_MAX];
    int rc = rm_external_data_path(path, name, data_path, sizeof data_path, err);
    if (rc || (rc = rm_output_check(path, &to, err)) || (rc = rm_output_check(data_path, &td, err)))
        return rc;
    if (rm_output_same(&td, &to))
        return rm_error_set(err, RM_EUSAGE, "%s: the external data file names the same file as the output (%s); choose another name",
                            data_path, path);
    /* the output may replace the model's own file, never the data it reads (its file on
     * disk would point at the new bytes); the data file may replace neither */
    if ((rc = rm_output_guard(m, &to, "the output", 1, err)) ||
        (rc = rm_output_guard(m, &td, "the external data file", 0, err)))
        return rc;

    Onnx__GraphProto *g = m->proto->graph;
    struct saved_tensor *saved = calloc(g->n_initializer ? g->n_initializer : 1, sizeof *saved);
    if (!saved)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    char dtmp[PATH_MAX], mtmp[PATH_MAX];
    int dfd = -1, mfd = -1, ok = 0;
    size_t ns = 0;
    rc = rm_atomic_open(data_path, dtmp, sizeof dtmp, &dfd, err);
    if (rc)
        goto done;
    rc = rm_atomic_open(path, mtmp, sizeof mtmp, &mfd, err);
    if (rc)
        goto done;

    static const uint8_t zeros[EXT_ALIGN];
    uint64_t off = 0;
    for (size_t i = 0; i < g->n_initializer; i++) {
        Onnx__TensorProto *t = g->initializer[i];
        if (!t->has_raw_data || t->raw_data.len < threshold)
            continue;
        size_t pad = (size_t)((EXT_ALIGN - off % EXT_ALIGN) % EXT_ALIGN);
        if (write_all(dfd, zeros, pad) || write_all(dfd, t->raw_data.data, t->raw_data.len)) {
            rc = rm_error_set(err, RM_EIO, "%s: cannot write: %s", data_path, strerror(errno));
            goto done;
        }
        off += pad;
        char offs[32], lens[32];
        snprintf(offs, sizeof offs, "%llu", (unsigned long long)off);
        snprintf(lens, sizeof lens, "%zu", t->raw_data.len);
        off += t->raw_data.len;
        Onnx__StringStringEntryProto **ext = rm_arena_alloc(&m->arena, 3 * sizeof *ext);
        if (!ext || !(ext[0] = entry(&m->arena, "location", name)) ||
            !(ext[1] = entry(&m->arena, "offset", offs)) || !(ext[2] = entry(&m->arena, "length", lens))) {
            rc = rm_error_set(err, RM_ENOMEM, "out of memory");
            goto done;
        }
        saved[ns++] = (struct saved_tensor){t, t->raw_data, t->n_external_data, t->external_data};
        t->has_raw_data = 0;
        t->raw_data.len = 0;
        t->raw_data.data = NULL;
        t->external_data = ext;
        t->n_external_data = 3;
        t->has_data_location = 1;
        t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    }
    if (rm_model_packed_size(m) > RM_PROTOBUF_LIMIT) {
        rc = rm_error_set(err, RM_EUSAGE, "%s: even with external data the model is over protobuf's 2 GB limit",
                          path);
        goto done;
    }
    rc = rm_write_stream(mfd, path, &m->proto->base, NULL, 0, err);
    if (rc == 0)
        ok = 1;
done:
    /* put every tensor back the way it was: the in-memory model stays inline */
    for (size_t i = 0; i < ns; i++) {
        Onnx__TensorProto *t = saved[i].t;
        t->raw_data = saved[i].raw;
        t->has_raw_data = 1;
        t->n_external_data = saved[i].n_ext;
        t->external_data = saved[i].ext;
        t->has_data_location = 0;
        t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT;
    }
    free(saved);
    if (dfd >= 0 && mfd < 0) {
        rm_atomic_commit(data_path, dtmp, dfd, 0, err);
        return rc;
    }
    if (dfd >= 0) {
        int r1 = rm_atomic_commit(data_path, dtmp, dfd, ok, err);
        if (r1) {
            ok = 0;
            rc = r1;
        }
        int r2 = rm_atomic_commit(path, mtmp, mfd, ok, err);
        if (r2 && !rc)
            rc = r2;
    }
    return rc;
}
