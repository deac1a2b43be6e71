/* Every file remodel reads or writes goes through here. Inputs are opened without
 * blocking and refused unless they are regular files (a FIFO or device never hangs a
 * command). Nothing here prints. */
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

#endif
