/* Model diff: runs two models on the same inputs and measures where their outputs part
 * ways, per graph output and, on request, per module (matched by module path, streamed
 * step by step so only the pair of tensors under comparison is held), aligning channels
 * that pruning removed through the channel maps edits record in the edited model's
 * metadata. A struct rm_diff_result owns every string and array it holds (free with
 * rm_diff_result_free); the models are borrowed and never modified. */
#ifndef RM_DIFF_H
#define RM_DIFF_H

#include "remodel.h"
#include "rm_chmap.h"
#include "rm_error.h"
#include "rm_graph.h"
#include "rm_inputs.h"
#include "rm_tensorio.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The diff itself, its options and results are public (remodel.h: rm_diff,
 * rm_diff_options, rm_diff_result, rm_diff_write_json, rm_diff_write_report). */

#define RM_DIFF_ATOL_SCALE 1e-5
#define RM_DIFF_RTOL 1e-4
#define RM_DIFF_MIN_COSINE 0.9999

/* Compare two host tensors (float32 or int64, same dtype not required) of equal shape,
 * or through a channel map (map may be NULL): when map_on_b, b's channel i (axis 1) is
 * compared with a's channel map[i]; otherwise a's channel i with b's map[i]; map entries
 * < 0 are skipped. An element fails when |b - a| > atol + rtol * |a|. Returns 0, or RM_EFORMAT when shapes and map do not line up (err says
 * how; s->pass is false). */
int rm_diff_tensors(const struct rm_host_tensor *a, const struct rm_host_tensor *b,
                    const int64_t *map, int64_t map_len, bool map_on_b, double atol, double rtol,
                    struct rm_diff_stats *s, struct rm_error *err);

/* max |t| over its elements (NaN ignored). */
double rm_tensor_absmax(const struct rm_host_tensor *t);

#endif
