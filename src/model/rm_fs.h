/* Every file remodel reads or writes goes through here. Inputs are opened without
 * blocking and refused unless they are regular files (a FIFO or device never hangs a
 * command). Outputs are checked before anything is written (the folder exists and is
 * writable, the target is absent or a regular file) and written atomically: a temporary
 * file in the target folder, fsync, rename, fsync of the folder, keeping the mode (and,
 * as root, the owner) of the file replaced. Temporary files in flight are registered so
 * a signal handler can remove them; nothing here prints or installs handlers. */
#ifndef RM_FS_H
#define RM_FS_H

#include "remodel.h"
#include "rm_error.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* A file's identity (struct rm_file_id, remodel.h): two paths name one file when these
 * are equal. */
static inline int rm_file_id_eq(const struct rm_file_id *a, const struct rm_file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino;
}

static inline struct rm_file_id rm_file_id_of(const struct stat *st)
{
    struct rm_file_id id = {(uint64_t)st->st_dev, (uint64_t)st->st_ino};
    return id;
}

/* "a folder", "a FIFO", "a character device", ... for messages. Never NULL. */
const char *rm_fs_kind(mode_t mode);

/* Open path for reading. Anything but a regular file is refused before it is opened
 * when stat can tell, and in any case without blocking (O_NONBLOCK, cleared again once
 * fstat shows a regular file). On success *fd is open (O_CLOEXEC) and *st describes it.
 * Returns 0 or RM_EIO ("PATH: cannot open: ..." / "PATH: not a regular file (a FIFO)"). */
int rm_fs_open_input(const char *path, int *fd, struct stat *st, struct rm_error *err);

/* An output path as checked by rm_output_check: struct rm_output (remodel.h). Its
 * path buffers hold PATH_MAX bytes, its name NAME_MAX + 1. */
_Static_assert(sizeof(((struct rm_output *)0)->path) >= PATH_MAX, "rm_output.path too small");
_Static_assert(sizeof(((struct rm_output *)0)->name) >= NAME_MAX + 1, "rm_output.name too small");

/* Checking outputs (rm_output_check, rm_output_check_dir, rm_output_same,
 * rm_output_stale_temps, rm_output_cleanup) is public: remodel.h. */

/* Start an atomic write of path: check it (rm_output_check), then create a temporary
 * file ".rm-XXXXXX.tmp" in its folder. On success *fd is open for writing and tmp (tmp_size bytes,
 * PATH_MAX is enough) holds the temporary name. Returns 0 or RM_EIO. */
int rm_atomic_open(const char *path, char *tmp, size_t tmp_size, int *fd, struct rm_error *err);

/* Finish an atomic write started by rm_atomic_open: give the file the mode (and, as
 * root, the owner; otherwise the group when we belong to it) of the regular file it
 * replaces, or 0666 less the umask for a new file; fsync, rename over path, fsync the
 * folder. If ok is 0 (the caller failed) or
 * anything fails, the temporary file is removed. Closes fd. Returns 0, RM_EIO, or
 * err->code when !ok. */
int rm_atomic_commit(const char *path, const char *tmp, int fd, int ok, struct rm_error *err);

/* Read-only file mappings tensors point into (the model file, external data): the
 * bytes of a tensor that was copied out whole (rm_tensor_to_f32 / _i64: a plan's
 * constants, an edit's reads) need not stay resident; its whole pages inside a
 * registered mapping are dropped from the process (MADV_DONTNEED: a later read faults
 * them back from the page cache, unchanged). Anything else is left alone. Register
 * with rm_fs_map_add before tensors point in (fd: the mapped file, duplicated and kept
 * open; -1 for none), remove before munmap. Thread-safe. */
void rm_fs_map_add(const void *map, size_t size, int fd);
void rm_fs_map_remove(const void *map);
void rm_fs_map_read(const void *p, size_t n);
/* Map the pages of [p, p + n) that lie in a registered mapping before a pass reads them
 * all (MADV_POPULATE_READ: one call instead of a fault per few pages); else nothing. */
void rm_fs_map_populate(const void *p, size_t n);
/* Drop every resident page of every registered mapping (what an edit read in place, the
 * pages a load's checks touched): a step that will read what it needs once, such as a
 * verification's plan builds, need not carry the rest. */
void rm_fs_maps_drop(void);
/* Where bytes [p, p + n) of a registered mapping are in its file: a descriptor to read
 * them with (open until rm_fs_map_remove; a save copies them file to file with
 * copy_file_range) and their offset. Returns 0, or -1 when not in a mapping. */
int rm_fs_map_source(const void *p, size_t n, int *fd, uint64_t *off);

#endif
