/* FP32 FMA peak probe: each thread runs a register-only loop of independent fused
 * multiply-adds (AVX-512 or AVX2, picked at run time) and the rate of all threads
 * together is the machine's practical FP32 peak. On other architectures there is no
 * probe and the peak is reported as unknown (0). */
#include "remodel.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#define PROBE_ITERS 4000000L

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* 12 independent accumulators hide the 4-cycle FMA latency on two pipes. */
__attribute__((target("avx512f"))) static float probe512(long iters)
{
    __m512 a0 = _mm512_set1_ps(1.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
    __m512 a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (long i = 0; i < iters; i++) {
        a0 = _mm512_fmadd_ps(a0, m, c);
        a1 = _mm512_fmadd_ps(a1, m, c);
        a2 = _mm512_fmadd_ps(a2, m, c);
        a3 = _mm512_fmadd_ps(a3, m, c);
        a4 = _mm512_fmadd_ps(a4, m, c);
        a5 = _mm512_fmadd_ps(a5, m, c);
        a6 = _mm512_fmadd_ps(a6, m, c);
        a7 = _mm512_fmadd_ps(a7, m, c);
        a8 = _mm512_fmadd_ps(a8, m, c);
        a9 = _mm512_fmadd_ps(a9, m, c);
        a10 = _mm512_fmadd_ps(a10, m, c);
        a11 = _mm512_fmadd_ps(a11, m, c);
        __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5));
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float probe256(long iters)
{
    __m256 a0 = _mm256_set1_ps(1.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
    __m256 a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (long i = 0; i < iters; i++) {
        a0 = _mm256_fmadd_ps(a0, m, c);
        a1 = _mm256_fmadd_ps(a1, m, c);
        a2 = _mm256_fmadd_ps(a2, m, c);
        a3 = _mm256_fmadd_ps(a3, m, c);
        a4 = _mm256_fmadd_ps(a4, m, c);
        a5 = _mm256_fmadd_ps(a5, m, c);
        a6 = _mm256_fmadd_ps(a6, m, c);
        a7 = _mm256_fmadd_ps(a7, m, c);
        a8 = _mm256_fmadd_ps(a8, m, c);
        a9 = _mm256_fmadd_ps(a9, m, c);
        a10 = _mm256_fmadd_ps(a10, m, c);
        a11 = _mm256_fmadd_ps(a11, m, c);
        __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5));
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    float f[8];
    _mm256_storeu_ps(f, s);
    return f[0] + f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7];
}

struct probe_arg {
    int wide;            /* 16 or 8 floats per vector */
    long iters;
    double seconds;
    volatile float sink;
};

static void *probe_thread(void *ap)
{
    struct probe_arg *a = ap;
    double t0 = now_s();
    a->sink = a->wide == 16 ? probe512(a->iters) : probe256(a->iters);
    a->seconds = now_s() - t0;
    return NULL;
}

double rm_fma_peak_gflops(int threads)
{
    __builtin_cpu_init();
    int wide = __builtin_cpu_supports("avx512f") ? 16
               : (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 8 : 0;
    if (!wide)
        return 0;
    if (threads < 1)
        threads = 1;
    if (threads > 64)
        threads = 64;
    pthread_t th[64];
    struct probe_arg args[64];
    double best = 0;
    /* best of 3 short rounds: the machine is shared, take the least disturbed */
    for (int round = 0; round < 3; round++) {
        int started = 0;
        for (int t = 0; t < threads; t++) {
            args[t].wide = wide;
            args[t].iters = PROBE_ITERS / (wide == 16 ? 2 : 1);
            args[t].seconds = 0;
            if (pthread_create(&th[t], NULL, probe_thread, &args[t]) != 0)
                break;
            started++;
        }
        double total = 0;
        for (int t = 0; t < started; t++) {
            pthread_join(th[t], NULL);
            if (args[t].seconds > 0)
                total += 12.0 * 2.0 * wide * (double)args[t].iters / args[t].seconds;
        }
        if (started == threads && total > best)
            best = total;
    }
    return best * 1e-9;
}

#else

double rm_fma_peak_gflops(int threads)
{
    (void)threads;
    return 0;
}

#endif
