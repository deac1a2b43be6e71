/* The fuzzing pipelines as plain functions, shared by the libFuzzer harnesses and the
 * regression test that replays every input fuzzing ever crashed on. */
#ifndef RM_FUZZ_PIPELINE_H
#define RM_FUZZ_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

/* Load data as a model and do with it everything remodel does before running it,
 * then run it once. Returns 0; crashing is the only failure. */
int rm_fuzz_one(const uint8_t *data, size_t size);

/* The structure-aware pipeline (fuzz_edit.c): data as a model through what the command
 * line does with one - load (beside an external-data folder when it names external data),
 * info, check, show, a small run, and each edit (replace, prune by ratio, by channels and
 * globally, fold-bn) on a clone, with the verification and serialization that follow.
 * Returns 0; crashing is the only failure. */
int rm_fuzz_edit_one(const uint8_t *data, size_t size);

#endif
