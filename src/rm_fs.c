/* File-system safety: input opening, output checks, atomic writes (see rm_fs.h). */
#include "rm_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *rm_fs_kind(mode_t mode)
{
    if (S_ISREG(mode))
        return "a regular file";
    if (S_ISDIR(mode))
        return "a folder";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISLNK(mode))
        return "a symbolic link";
    return "a special file";
}

/* ---- inputs ------------------------------------------------------------------ */

int rm_fs_open_input(const char *path, int *fd, struct stat *st, struct rm_error *err)
{
    *fd = -1;
    /* stat first: a device or FIFO is refused without being opened at all */
    if (stat(path, st) != 0)
        return rm_error_set(err, RM_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st->st_mode))
        return rm_error_set(err, RM_EIO, "%s: not a regular file (%s)", path, rm_fs_kind(st->st_mode));
    /* and opened without blocking, in case it was swapped for a FIFO meanwhile */
    int f = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (f < 0)
        return rm_error_set(err, RM_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(f, st) != 0) {
        int e = errno;
        close(f);
        return rm_error_set(err, RM_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st->st_mode)) {
        close(f);
        return rm_error_set(err, RM_EIO, "%s: not a regular file (%s)", path, rm_fs_kind(st->st_mode));
    }
    int flags = fcntl(f, F_GETFL);
    if (flags >= 0)
        fcntl(f, F_SETFL, flags & ~O_NONBLOCK);
    *fd = f;
    return 0;
}
