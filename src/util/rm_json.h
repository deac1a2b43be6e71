/* A small streaming JSON writer for --json output: one document, commas and
 * escaping handled here, nothing buffered beyond stdio. The output is valid UTF-8
 * whatever bytes the strings hold: ill-formed sequences are written as U+FFFD. */
#ifndef RM_JSON_H
#define RM_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define RM_JSON_MAX_DEPTH 64

struct rm_json {
    FILE *f;
    int depth;
    bool first[RM_JSON_MAX_DEPTH]; /* no element written yet at this level */
    bool after_key;                /* a key was written, the value comes next */
};

void rm_json_init(struct rm_json *j, FILE *f);
void rm_json_obj_begin(struct rm_json *j);
void rm_json_obj_end(struct rm_json *j);
void rm_json_arr_begin(struct rm_json *j);
void rm_json_arr_end(struct rm_json *j);
void rm_json_key(struct rm_json *j, const char *key);
void rm_json_str(struct rm_json *j, const char *s); /* NULL writes null; bad UTF-8 U+FFFD */
void rm_json_int(struct rm_json *j, int64_t v);
void rm_json_num(struct rm_json *j, double v);      /* non-finite writes null */
void rm_json_bool(struct rm_json *j, bool v);
void rm_json_null(struct rm_json *j);
/* Finish the document with a newline. */
void rm_json_end(struct rm_json *j);

#endif
