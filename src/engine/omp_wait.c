/* Linked into the remodel executable only (not the library): how long OpenMP's idle
 * worker threads spin before they sleep.
 *
 * oneDNN runs on libgomp, whose workers spin after every parallel region for
 * GOMP_SPINCOUNT iterations (300,000 unless set: about 10 ms on this project's
 * machine, where a pause costs 35 ns) before they sleep. On a quiet machine that keeps
 * them hot between a plan's steps; on a shared one a worker that spins holds a core a
 * neighbour wants, and the run stalls whenever the thread it waits for has been
 * descheduled: resnet18 at 2 threads took 400 ms a run instead of 40 beside a
 * test suite. So the spin is short, and how short depends on the machine when remodel
 * starts: with nothing else runnable (/proc/loadavg's count of runnable tasks is us
 * alone), 4,000 spins (about 0.14 ms) bridge the gap between two steps of a run
 * (efficientnet_b0 at 2 threads: 7.7 ms a run at 1,000, 6.0 at 4,000; shufflenet_v2:
 * 4.2 and 2.5 ms); with another task runnable, 1,000 (two copies of that run at once:
 * 14 ms each at 1,000, 19.5 at 4,000; the libgomp default is the 400 ms collapse). It
 * reads up to RM_OMP_SPIN_READINGS times, 0.1 ms apart, and the machine is quiet when
 * one reading finds nobody else (omp_spin.h): a single reading often counted the
 * process that had just started remodel, and a quiet machine ran at 1,000.
 *
 * libgomp reads its settings once, in its constructor, before any code of ours runs
 * (and a preinit function cannot add to the environment the C library then installs),
 * so the default is given through getenv itself: the executable defines getenv, which
 * every library's getenv calls resolve to (ELF symbol interposition), and answers
 * GOMP_SPINCOUNT with that default when neither GOMP_SPINCOUNT nor OMP_WAIT_POLICY is
 * set. Every other name, and those two when the user set either, read the environment
 * as the C library's getenv does. */
#include "omp_spin.h"

#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Runnable tasks on the machine besides this one, from the fourth field of
 * /proc/loadavg ("0.41 0.77 1.03 2/345 678": 2 runnable, this process among them); -1
 * when it cannot be read. System calls only: libgomp asks from its constructor. */
static int others_runnable(void)
{
    char b[160];
    int fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    if (n <= 0)
        return -1;
    b[n] = '\0';
    const char *p = b;
    for (int field = 0; field < 3; field++) {
        p = strchr(p, ' ');
        if (!p)
            return -1;
        p++;
    }
    long r = 0;
    for (; *p >= '0' && *p <= '9' && r < 1000000; p++)
        r = r * 10 + (*p - '0');
    return *p == '/' && r >= 1 ? (int)(r - 1) : -1;
}

extern char **environ;

static char *lookup(const char *name)
{
    size_t n = strlen(name);
    for (char **e = environ; e && *e; e++)
        if (!strncmp(*e, name, n) && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

char *getenv(const char *name)
{
    char *v;
    if (!name || strchr(name, '='))
        return NULL;
    if ((v = lookup(name)))
        return v;
    if (!strcmp(name, "GOMP_SPINCOUNT") && !lookup("OMP_WAIT_POLICY")) {
        static char quiet[] = RM_OMP_SPIN_QUIET, busy[] = RM_OMP_SPIN_BUSY;
        int others[RM_OMP_SPIN_READINGS], n = 0;
        while (n < RM_OMP_SPIN_READINGS && (others[n] = others_runnable()) != 0) {
            struct timespec t = {0, 100000};
            if (++n < RM_OMP_SPIN_READINGS)
                nanosleep(&t, NULL);
        }
        if (n < RM_OMP_SPIN_READINGS)
            n++; /* the reading that found nobody */
        return rm_omp_quiet(others, n) ? quiet : busy;
    }
    return NULL;
}
