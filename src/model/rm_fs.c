/* File-system safety: input opening, output checks, atomic writes (see rm_fs.h). */
#include "rm_fs.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
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

/* ---- output checks ------------------------------------------------------------ */

/* Split path into folder and final component. Returns 0, or -1 when there is no final
 * component (empty, trailing '/', "." or ".."). */
static int split_path(const char *path, char *dir, size_t dn, char *name, size_t nn)
{
    size_t len = strlen(path);
    if (len == 0 || path[len - 1] == '/')
        return -1;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!strcmp(base, ".") || !strcmp(base, ".."))
        return -1;
    if (!slash)
        snprintf(dir, dn, ".");
    else if (slash == path)
        snprintf(dir, dn, "/");
    else
        snprintf(dir, dn, "%.*s", (int)(slash - path), path);
    snprintf(name, nn, "%s", base);
    return 0;
}

/* The folder must exist, be a folder and let us create files. */
static int check_folder(const char *path, const char *dir, struct stat *st, struct rm_error *err)
{
    if (stat(dir, st) != 0) {
        if (errno == ENOENT)
            return rm_error_set(err, RM_EIO, "%s: the folder '%s' does not exist (create it first: mkdir -p %s)",
                                path, dir, dir);
        if (errno == ENOTDIR)
            return rm_error_set(err, RM_EIO, "%s: '%s' is not a folder", path, dir);
        return rm_error_set(err, RM_EIO, "%s: cannot reach the folder '%s': %s", path, dir, strerror(errno));
    }
    if (!S_ISDIR(st->st_mode))
        return rm_error_set(err, RM_EIO, "%s: '%s' is not a folder", path, dir);
    if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) != 0)
        return rm_error_set(err, RM_EIO, "%s: cannot create a file in the folder '%s': %s", path, dir,
                            strerror(errno));
    return 0;
}

int rm_output_check(const char *path, struct rm_output *t, struct rm_error *err)
{
    memset(t, 0, sizeof *t);
    if (strlen(path) >= sizeof t->path)
        return rm_error_set(err, RM_EIO, "%.200s...: path too long", path);
    snprintf(t->path, sizeof t->path, "%s", path);
    if (!path[0])
        return rm_error_set(err, RM_EIO, "empty output file name");
    const char *slash = strrchr(path, '/');
    if (strlen(slash ? slash + 1 : path) > NAME_MAX)
        return rm_error_set(err, RM_EIO, "%s: file name too long (%zu bytes, at most %d)", path,
                            strlen(slash ? slash + 1 : path), NAME_MAX);
    if (split_path(path, t->dir, sizeof t->dir, t->name, sizeof t->name))
        return rm_error_set(err, RM_EIO, "%s: names a folder, not a file; give a file name", path);
    struct stat st;
    int rc = check_folder(path, t->dir, &st, err);
    if (rc)
        return rc;
    t->dir_id = rm_file_id_of(&st);
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        return rm_error_set(err, RM_EIO, "%s: cannot check: %s", path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode))
        return rm_error_set(err, RM_EIO, "%s: is a directory; give a file name", path);
    if (S_ISLNK(st.st_mode)) {
        if (stat(path, &st) != 0)
            return rm_error_set(err, RM_EIO, "%s: is a symbolic link to a missing file; remodel writes only "
                                "regular files", path);
        if (!S_ISREG(st.st_mode))
            return rm_error_set(err, RM_EIO, "%s: is a symbolic link to %s, not to a regular file; remodel "
                                "writes only regular files", path, rm_fs_kind(st.st_mode));
    } else if (!S_ISREG(st.st_mode)) {
        return rm_error_set(err, RM_EIO, "%s: is %s, not a regular file; remodel writes only regular files",
                            path, rm_fs_kind(st.st_mode));
    }
    t->exists = 1;
    t->id = rm_file_id_of(&st);
    return 0;
}

int rm_output_check_dir(const char *dir, int *exists, struct rm_error *err)
{
    struct stat st;
    *exists = 0;
    if (!dir[0])
        return rm_error_set(err, RM_EIO, "empty output folder name");
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return rm_error_set(err, RM_EIO, "%s: is %s, not a folder", dir, rm_fs_kind(st.st_mode));
        if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) != 0)
            return rm_error_set(err, RM_EIO, "%s: cannot create a file in the folder '%s': %s", dir, dir,
                                strerror(errno));
        *exists = 1;
        return 0;
    }
    if (errno != ENOENT)
        return rm_error_set(err, RM_EIO, "%s: cannot check: %s", dir, strerror(errno));
    if (lstat(dir, &st) == 0) /* a dangling symbolic link */
        return rm_error_set(err, RM_EIO, "%s: is a symbolic link to a missing folder", dir);
    char copy[PATH_MAX], parent[PATH_MAX], name[NAME_MAX + 1];
    size_t len = strlen(dir);
    if (len >= sizeof copy)
        return rm_error_set(err, RM_EIO, "%.200s...: path too long", dir);
    memcpy(copy, dir, len + 1);
    while (len > 1 && copy[len - 1] == '/')
        copy[--len] = '\0';
    if (split_path(copy, parent, sizeof parent, name, sizeof name))
        return rm_error_set(err, RM_EIO, "%s: cannot create this folder", dir);
    return check_folder(dir, parent, &st, err);
}

bool rm_output_same(const struct rm_output *a, const struct rm_output *b)
{
    if (rm_file_id_eq(&a->dir_id, &b->dir_id) && !strcmp(a->name, b->name))
        return 1;
    return a->exists && b->exists && rm_file_id_eq(&a->id, &b->id);
}

/* ---- atomic writes ------------------------------------------------------------- */

/* Temporary files are ".rm-XXXXXX.tmp" in the target's folder: short, so that any name
 * up to NAME_MAX can be written, and recognisable as remodel's. */
#define TEMP_PREFIX ".rm-"
#define TEMP_SUFFIX ".tmp"
#define TEMP_RAND 6
#define TEMP_SLOTS 16

/* Temporary files being written, for rm_output_cleanup. A slot is 0 free, 1 being
 * filled, 2 armed (the handler unlinks its path). The path is written before the slot is
 * armed and the slot armed before the file is created, so a signal at any moment leaves
 * no temporary file behind; atomics because the signal may land on any thread. */
static char temp_path[TEMP_SLOTS][PATH_MAX];
static atomic_int temp_state[TEMP_SLOTS];

static int slot_arm(const char *path)
{
    for (int i = 0; i < TEMP_SLOTS; i++) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&temp_state[i], &expected, 1)) {
            snprintf(temp_path[i], sizeof temp_path[i], "%s", path);
            atomic_store(&temp_state[i], 2);
            return i;
        }
    }
    return -1; /* more writes at once than slots: no cleanup on a signal, still correct */
}

static void slot_release(const char *path)
{
    for (int i = 0; i < TEMP_SLOTS; i++)
        if (atomic_load(&temp_state[i]) == 2 && !strcmp(temp_path[i], path)) {
            atomic_store(&temp_state[i], 0);
            return;
        }
}

void rm_output_cleanup(void)
{
    for (int i = 0; i < TEMP_SLOTS; i++)
        if (atomic_load(&temp_state[i]) == 2)
            unlink(temp_path[i]);
}

static void random_suffix(char *out)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    static atomic_uint counter;
    uint64_t r;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 40) ^
            (uint64_t)atomic_fetch_add(&counter, 1) * 0x9e3779b97f4a7c15ull;
    }
    for (int i = 0; i < TEMP_RAND; i++) {
        out[i] = alphabet[r % 62];
        r /= 62;
    }
    out[TEMP_RAND] = '\0';
}

static int is_temp_name(const char *name)
{
    size_t lp = strlen(TEMP_PREFIX), ls = strlen(TEMP_SUFFIX);
    if (strlen(name) != lp + TEMP_RAND + ls || strncmp(name, TEMP_PREFIX, lp) ||
        strcmp(name + lp + TEMP_RAND, TEMP_SUFFIX))
        return 0;
    for (size_t i = lp; i < lp + TEMP_RAND; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
              (name[i] >= '0' && name[i] <= '9')))
            return 0;
    return 1;
}

/* ".NAME.tmp-XXXXXX", what remodel 0.1 wrote beside NAME. */
static int is_old_temp_name(const char *entry, const char *name)
{
    size_t n = strlen(name);
    return entry[0] == '.' && !strncmp(entry + 1, name, n) && !strncmp(entry + 1 + n, ".tmp-", 5) &&
           strlen(entry + 1 + n + 5) == 6;
}

int rm_output_stale_temps(const char *path, void (*fn)(void *ctx, const char *path, uint64_t bytes), void *ctx)
{
    char dir[PATH_MAX], name[NAME_MAX + 1];
    if (split_path(path, dir, sizeof dir, name, sizeof name))
        return 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_temp_name(e->d_name) && !is_old_temp_name(e->d_name, name))
            continue;
        int f = openat(dirfd(d), e->d_name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
        if (f < 0)
            continue;
        struct stat st;
        /* a writer holds an exclusive lock on its temporary file until it is renamed */
        if (fstat(f, &st) == 0 && S_ISREG(st.st_mode) && flock(f, LOCK_SH | LOCK_NB) == 0) {
            char full[PATH_MAX + NAME_MAX + 2];
            snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
            if (fn)
                fn(ctx, full, (uint64_t)st.st_size);
            n++;
        }
        close(f);
    }
    closedir(d);
    return n;
}

int rm_atomic_open(const char *path, char *tmp, size_t tmp_size, int *fd, struct rm_error *err)
{
    *fd = -1;
    struct rm_output t;
    int rc = rm_output_check(path, &t, err);
    if (rc)
        return rc;
    for (int attempt = 0; attempt < 100; attempt++) {
        char suffix[TEMP_RAND + 1];
        random_suffix(suffix);
        int n = snprintf(tmp, tmp_size, "%s/" TEMP_PREFIX "%s" TEMP_SUFFIX, t.dir, suffix);
        if (n < 0 || (size_t)n >= tmp_size)
            return rm_error_set(err, RM_EIO, "%s: path too long", path);
        int slot = slot_arm(tmp);
        *fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (*fd >= 0) {
            flock(*fd, LOCK_EX | LOCK_NB); /* tells rm_output_stale_temps someone is writing it */
            return 0;
        }
        int e = errno;
        if (slot >= 0)
            atomic_store(&temp_state[slot], 0);
        if (e != EEXIST)
            return rm_error_set(err, RM_EIO, "%s: cannot create a file in the folder '%s': %s", path, t.dir,
                                strerror(e));
    }
    return rm_error_set(err, RM_EIO, "%s: cannot create a temporary file in the folder '%s'", path, t.dir);
}

/* Mode and owner for the new file: those of the regular file it replaces (a symbolic
 * link's target), else a plain create's. */
static void apply_mode(int fd, const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        /* root keeps the owner; anyone else keeps the group if a member of it. Failing
         * that the file keeps ours; the mode below still applies */
        int r = geteuid() == 0            ? fchown(fd, st.st_uid, st.st_gid)
                : st.st_gid != getegid() ? fchown(fd, (uid_t)-1, st.st_gid)
                                          : 0;
        (void)r;
        fchmod(fd, st.st_mode & 07777);
        return;
    }
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
}

static void discard(const char *tmp, int fd)
{
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    slot_release(tmp);
}

int rm_atomic_commit(const char *path, const char *tmp, int fd, int ok, struct rm_error *err)
{
    if (!ok) {
        discard(tmp, fd);
        return err && err->code ? err->code : RM_EIO;
    }
    apply_mode(fd, path);
    if (fsync(fd) != 0) {
        int rc = rm_error_set(err, RM_EIO, "%s: cannot write: %s", path, strerror(errno));
        discard(tmp, fd);
        return rc;
    }
    if (close(fd) != 0) {
        int rc = rm_error_set(err, RM_EIO, "%s: cannot write: %s", path, strerror(errno));
        discard(tmp, -1);
        return rc;
    }
    if (rename(tmp, path) != 0) {
        int rc = rm_error_set(err, RM_EIO, "%s: cannot replace: %s", path, strerror(errno));
        discard(tmp, -1);
        return rc;
    }
    slot_release(tmp);
    char dir[PATH_MAX], name[NAME_MAX + 1];
    if (split_path(path, dir, sizeof dir, name, sizeof name) == 0) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    return 0;
}

/* ---- read-only file mappings ------------------------------------------------------- */

#define MAP_SLOTS 64 /* models and data files mapped at once; more are never dropped */

static pthread_mutex_t maps_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    uintptr_t start, end;
    int fd; /* the file, open for reading (ours), or -1 */
} maps[MAP_SLOTS];

void rm_fs_map_add(const void *map, size_t size, int fd)
{
    pthread_mutex_lock(&maps_lock);
    for (int i = 0; i < MAP_SLOTS; i++)
        if (!maps[i].start) {
            maps[i].start = (uintptr_t)map;
            maps[i].end = (uintptr_t)map + size;
            maps[i].fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
            break;
        }
    pthread_mutex_unlock(&maps_lock);
}

void rm_fs_map_remove(const void *map)
{
    pthread_mutex_lock(&maps_lock);
    for (int i = 0; i < MAP_SLOTS; i++)
        if (maps[i].start == (uintptr_t)map) {
            if (maps[i].fd >= 0)
                close(maps[i].fd);
            maps[i].start = maps[i].end = 0;
            maps[i].fd = -1;
        }
    pthread_mutex_unlock(&maps_lock);
}

void rm_fs_maps_drop(void)
{
    pthread_mutex_lock(&maps_lock);
    for (int i = 0; i < MAP_SLOTS; i++)
        if (maps[i].start)
            madvise((void *)maps[i].start, maps[i].end - maps[i].start, MADV_DONTNEED);
    pthread_mutex_unlock(&maps_lock);
}

void rm_fs_map_populate(const void *p, size_t n)
{
#ifdef MADV_POPULATE_READ
    long ps = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p, b = a + n, mask = (uintptr_t)(ps > 0 ? ps : 4096) - 1;
    pthread_mutex_lock(&maps_lock); /* held across madvise: the mapping cannot go meanwhile */
    for (int i = 0; i < MAP_SLOTS; i++)
        if (maps[i].start && a >= maps[i].start && a < maps[i].end && n <= maps[i].end - a) {
            uintptr_t lo = a & ~mask, hi = (b + mask) & ~mask;
            if (hi > ((maps[i].end + mask) & ~mask))
                hi = (maps[i].end + mask) & ~mask;
            madvise((void *)lo, hi - lo, MADV_POPULATE_READ); /* (a kernel without it: faults as usual) */
            break;
        }
    pthread_mutex_unlock(&maps_lock);
#else
    (void)p, (void)n;
#endif
}

int rm_fs_map_source(const void *p, size_t n, int *fd, uint64_t *off)
{
    uintptr_t a = (uintptr_t)p;
    int rc = -1;
    pthread_mutex_lock(&maps_lock);
    for (int i = 0; i < MAP_SLOTS; i++)
        if (maps[i].start && maps[i].fd >= 0 && a >= maps[i].start && a < maps[i].end && n <= maps[i].end - a) {
            *fd = maps[i].fd;
            *off = a - maps[i].start;
            rc = 0;
            break;
        }
    pthread_mutex_unlock(&maps_lock);
    return rc;
}

void rm_fs_map_read(const void *p, size_t n)
{
    static long page;
    if (!page)
        page = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p, b = a + n, ps = (uintptr_t)(page > 0 ? page : 4096);
    uintptr_t lo = (a + ps - 1) & ~(ps - 1), hi = b & ~(ps - 1); /* whole pages inside */
    if (n < 2 * ps || lo >= hi)
        return;
    pthread_mutex_lock(&maps_lock); /* held across madvise: the mapping cannot go meanwhile */
    for (int i = 0; i < MAP_SLOTS; i++)
        if (maps[i].start && a >= maps[i].start && b <= maps[i].end) {
            madvise((void *)lo, hi - lo, MADV_DONTNEED);
            break;
        }
    pthread_mutex_unlock(&maps_lock);
}
