/* What the CPU can do, measured: the FP32 fused multiply-add peak that benchmarks
 * quote their engine figures against. */
#ifndef RM_CPU_H
#define RM_CPU_H

/* Measured FP32 FMA peak of this machine in GFLOP/s with `threads` threads (short
 * register-only probe, about 0.2 s; AVX-512 or AVX2 chosen at run time, 0 when neither
 * is available or on other architectures). */
double rm_fma_peak_gflops(int threads);

#endif
