/* The fuzzing pipeline as a plain function, shared by the libFuzzer harness and the
 * regression test that replays every input fuzzing ever crashed on. */
#ifndef RM_FUZZ_PIPELINE_H
#define RM_FUZZ_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

/* Load data as a model and do with it everything remodel does before running it,
 * then run it once. Returns 0; crashing is the only failure. */
int rm_fuzz_one(const uint8_t *data, size_t size);

#endif
