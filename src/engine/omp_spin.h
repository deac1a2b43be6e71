/* The choice omp_wait.c makes, apart from reading the machine (so that tests can give it
 * readings): whether the machine is quiet (OpenMP's idle workers then spin
 * RM_OMP_SPIN_QUIET times, else RM_OMP_SPIN_BUSY), from a few readings of how many other
 * tasks were runnable (-1: unreadable). A neighbour that wants the CPU is runnable
 * at every reading; the process that started remodel often still is at the first one
 * (the shell or script on its way to wait for it: 6 first readings in 20 said so here),
 * and a kernel thread now and then. So the machine is quiet when any reading finds
 * nobody else runnable. */
#ifndef RM_OMP_SPIN_H
#define RM_OMP_SPIN_H

#define RM_OMP_SPIN_QUIET "4000" /* about 0.14 ms: bridges the gap between two steps */
#define RM_OMP_SPIN_BUSY "1000"  /* a descheduled thread must not be waited for long */
#define RM_OMP_SPIN_READINGS 10  /* at most, 0.1 ms apart: 1 ms on a busy machine */

static inline int rm_omp_quiet(const int *others, int n)
{
    for (int i = 0; i < n; i++)
        if (others[i] == 0)
            return 1;
    return 0;
}

#endif
