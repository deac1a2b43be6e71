/* Structural edits on a loaded model: replace a Conv2d module's node and weights with
 * a new spec, carrying channel changes to dependent layers. Edits change the
 * ModelProto in place (new tensors live in buffers of the model); on failure the model
 * may be half-edited and must be discarded, never saved: callers load, edit, save.
 * Initializers shared with other nodes are copied before they change. */
#ifndef RM_EDIT_H
#define RM_EDIT_H

#include "remodel.h"
#include "rm_chmap.h"
#include "rm_findings.h"
#include "rm_model.h"
#include "rm_spec.h"

#include <stdbool.h>
#include <stdint.h>

/* The edits, their options and reports are public (remodel.h: rm_replace, rm_prune,
 * rm_fold_bn); what is here takes a parsed spec. What an edit changed goes to `log` as
 * notes, one line per layer. */

/* Edits record channel maps in the edited model's metadata (rm_chmap.h). */

/* Replace the Conv2d module at path (dotted or `a[0].b`) with spec. Rewrites the
 * node's attributes and its weight/bias initializers (names kept, or "<path>.weight"
 * for copies of shared ones), re-infers shapes through the graph and updates graph
 * output shapes and value_info. Returns 0; RM_ENOTFOUND (unknown path, with the
 * nearest paths); RM_EEDIT when the module is not a Conv2d or when the result does
 * not fit: the message names every module that disagrees and the two sizes;
 * RM_EUNSUPPORTED for weights it cannot read. log may be NULL. */
int rm_replace_conv(struct rm_model *m, const char *path, const struct rm_conv_spec *spec,
                    const struct rm_replace_options *opts, rm_findings *log, struct rm_error *err);

#endif
