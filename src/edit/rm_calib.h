/* Calibration data: the samples edits run a model on to measure it (prune's activation
 * criterion, reconstruction), from a folder of input sets (the public rm_input_sets_*
 * functions, remodel.h) or seeded random inputs; and a runner that steps a model over
 * every sample and hands the tensors asked for to a callback as soon as they are
 * computed, stopping each run when it has them all (only the prefix of the graph that
 * produces them runs). The model given is never changed: sessions run on a clone. */
#ifndef RM_CALIB_H
#define RM_CALIB_H

#include "remodel.h"
#include "rm_error.h"

#include <stddef.h>
#include <stdint.h>

struct rm_calib {
    rm_input_sets *sets;      /* NULL: random samples */
    int n;                    /* samples */
    uint64_t seed;
    int threads;
};

/* Set up the samples of o for model m. RM_EUSAGE when o gives none. */
int rm_calib_open(struct rm_calib *c, struct rm_model *m, const rm_calib_options *o, struct rm_error *err);
void rm_calib_close(struct rm_calib *c);

/* Called for tensor `item` (an index into the names given to rm_calib_run) of sample
 * `sample`; t is a copy the callee may keep (set t->owned = 0 after taking data) or
 * leave to the runner to free. Returns 0 or an RM_E* code, which stops the run. */
typedef int (*rm_calib_fn)(void *ctx, int sample, size_t item, struct rm_host_tensor *t, struct rm_error *err);

/* Run every sample through a clone of m (unfused, so every tensor is readable), calling
 * fn for each tensor of names (graph inputs or node outputs) once per sample. */
int rm_calib_run(struct rm_calib *c, struct rm_model *m, const char *const *names, size_t n_names, rm_calib_fn fn,
                 void *ctx, struct rm_error *err);

#endif
