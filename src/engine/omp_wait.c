/* Linked into the remodel executable only (not the library): how long OpenMP's idle
 * worker threads spin before they sleep.
 *
 * oneDNN runs on libgomp, whose workers spin after every parallel region for
 * GOMP_SPINCOUNT iterations (300,000 unless set: about 10 ms on this project's
 * machine, where a pause costs 35 ns) before they sleep. On a quiet machine that keeps
 * them hot between a plan's steps; on a shared one a worker that spins holds a core a
 * neighbour wants, and the run stalls whenever the thread it waits for has been
 * descheduled: resnet18 at 2 threads took 400 ms a run instead of 40 beside a
 * test suite. A short spin, long enough to bridge two steps of a run, costs a quiet
 * machine nothing measurable and keeps a busy one proportional.
 *
 * libgomp reads its settings once, in its constructor, before any code of ours runs
 * (and a preinit function cannot add to the environment the C library then installs),
 * so the default is given through getenv itself: the executable defines getenv, which
 * every library's getenv calls resolve to (ELF symbol interposition), and answers
 * GOMP_SPINCOUNT with RM_GOMP_SPINCOUNT when neither GOMP_SPINCOUNT nor
 * OMP_WAIT_POLICY is set. Every other name, and those two when the user set either,
 * read the environment as the C library's getenv does. */
#include <stddef.h>
#include <string.h>

#define RM_GOMP_SPINCOUNT "1000"

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
        static char spin[] = RM_GOMP_SPINCOUNT;
        return spin;
    }
    return NULL;
}
