/* Lists of findings (struct rm_findings, remodel.h): the one way the library reports
 * many things at once — what check found, what an edit changed, every layer an edit
 * does not fit. Texts are malloc'd; running out of memory sets `oom` and drops the
 * finding, never the caller's work. */
#ifndef RM_FINDINGS_H
#define RM_FINDINGS_H

#include "remodel.h"

/* Append one finding (f may be NULL: nothing is recorded). */
void rm_findings_add(rm_findings *f, int kind, int node, const char *fmt, ...) RM_FORMAT(4, 5);

/* Join the texts of the findings of kind with "; " into buf (truncated to n, with
 * "(and K more)" when they do not all fit). */
void rm_findings_join(const rm_findings *f, int kind, char *buf, size_t n);

#endif
