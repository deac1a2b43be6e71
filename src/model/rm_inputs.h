/* Input sets on disk: the public rm_input_sets_* functions (remodel.h) and what the
 * library checks before it writes some. */
#ifndef RM_INPUTS_H
#define RM_INPUTS_H

#include "remodel.h"
#include "rm_error.h"

#include <stdbool.h>

/* dir can take input sets (rm_input_sets_write): an empty folder or, when missing, one
 * its parent folder can take; make: create it now. */
int rm_input_sets_dir_ok(const char *dir, bool make, struct rm_error *err);

#endif
