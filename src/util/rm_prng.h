/* The one pseudo-random generator: splitmix64, small, fast, and the same numbers on
 * every machine for a seed (seeded inputs, kaiming init). The state is the caller's. */
#ifndef RM_PRNG_H
#define RM_PRNG_H

#include <stdint.h>

/* Next 64 random bits; advances *state. */
static inline uint64_t rm_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform double in [0, 1) from the top 53 bits. */
static inline double rm_uniform01(uint64_t *state)
{
    return (double)(rm_splitmix64(state) >> 11) * (1.0 / 9007199254740992.0);
}

#endif
