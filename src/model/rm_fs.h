/* Every file remodel reads or writes goes through here. Inputs are opened without
 * blocking and refused unless they are regular files (a FIFO or device never hangs a
 * command). Outputs are checked before anything is written (the folder exists and is
 * writable, the target is absent or a regular file) and written atomically: a temporary
 * file in the target folder, fsync, rename, fsync of the folder, keeping the mode (and,
 * as root, the owner) of the file replaced. Temporary files in flight are registered so
 * a signal handler can remove them; nothing here prints or installs handlers. */
#ifndef RM_FS_H
#define RM_FS_H

#include "rm_error.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* A file's identity: two paths name one file when these are equal. */
struct rm_file_id {
    uint64_t dev, ino;
};

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

/* An output path as checked by rm_fs_target_check. */
struct rm_fs_target {
    char path[PATH_MAX];     /* as given */
    char dir[PATH_MAX];      /* its folder as given ("." for a bare name) */
    char name[NAME_MAX + 1]; /* the final component */
    struct rm_file_id dir_id;
    int exists;              /* a regular file, or a symbolic link to one, is there */
    struct rm_file_id id;    /* that file's identity (links followed) when it exists */
};

/* Check that path can be written as an output file: its folder exists, is a folder and
 * is writable; the final component is absent, a regular file, or a symbolic link to a
 * regular file (which the write replaces; the file it points to is left alone). Folders,
 * FIFOs, devices, sockets and links to anything else are refused. Fills *t.
 * Returns 0 or RM_EIO with a one-line message naming the path (and the folder). */
int rm_fs_target_check(const char *path, struct rm_fs_target *t, struct rm_error *err);

/* Check that dir can receive output files: it is a folder (or a link to one) and is
 * writable, or it does not exist and its parent folder can take it. *exists says which.
 * Returns 0 or RM_EIO. */
int rm_fs_dir_check(const char *dir, int *exists, struct rm_error *err);

/* Would writing a and b write one file: the same folder and name, or two names of one
 * existing file? */
int rm_fs_same_target(const struct rm_fs_target *a, const struct rm_fs_target *b);

/* Temporary files remodel left beside path (in its folder) that no running remodel is
 * writing: ".rm-XXXXXX.tmp", and the ".NAME.tmp-XXXXXX" of older versions for path's own
 * name. Calls fn for each with its path and size; never deletes anything. Returns the
 * count. */
typedef void (*rm_fs_stale_fn)(void *ctx, const char *path, uint64_t bytes);
int rm_fs_stale_temps(const char *path, rm_fs_stale_fn fn, void *ctx);

/* Start an atomic write of path: check it (rm_fs_target_check), then create a temporary
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

/* Remove every temporary file an unfinished rm_atomic_open created. Async-signal-safe:
 * a fatal-signal handler calls it before re-raising the signal. */
void rm_fs_remove_temps(void);

#endif
