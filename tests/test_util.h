/* Helpers shared by the Check suites under tests/ (linked into test binaries only): the test
 * data folder and its models, whole-file reads, a strict minimal JSON reader, running the remodel
 * binary, the suite runner. Failures are Check assertions; what is returned is the caller's. */
#ifndef RM_TEST_UTIL_H
#define RM_TEST_UTIL_H

#include "rm_model.h"

#include <check.h>
#include <stddef.h>

/* The test data folder: $RM_TESTDATA, else "testdata". */
const char *rm_test_testdata(void);

/* Whole file at path, malloc'd and NUL-terminated; its byte count into *size unless NULL. */
char *rm_test_read_file(const char *path, size_t *size);

/* <testdata>/<name>.onnx, loaded (or the test fails); the caller frees it with rm_model_free. */
struct rm_model *rm_test_load_model(const char *name);

/* Run $RM_REMODEL args (NULL-ended); its exit status; malloc'd stdout, stderr to *out, *err. */
int rm_test_run_remodel(const char *const *args, char **out, char **err);

/* Run every test of s (takes s); returns EXIT_SUCCESS when none failed, else EXIT_FAILURE. */
int rm_test_run(Suite *s);

/* ---- a strict minimal JSON reader: bad JSON fails the test --------------------------- */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
    int type;
    char *str;          /* J_STR */
    double num;         /* J_NUM, J_BOOL */
    size_t n;           /* J_ARR / J_OBJ entries */
    char **keys;        /* J_OBJ */
    struct jv **items;  /* J_ARR / J_OBJ values */
};

/* Skip white space at *p. */
void jws(const char **p);

/* Parse one value at *p (after leading white space) and advance past it; free with jfree. */
struct jv *jparse(const char **p);

/* Parse text as a whole document: one value and nothing but white space after it. */
struct jv *jparse_doc(const char *text);

/* Parse the file at path as a whole document (jparse_doc). */
struct jv *load_json(const char *path);

/* Free v and everything below it; NULL is fine. */
void jfree(struct jv *v);

/* Member key of object o, or NULL when o is not an object or has no such key. */
const struct jv *jfind(const struct jv *o, const char *key);

/* Member key of object o; fails the test when it is missing. */
const struct jv *jget(const struct jv *o, const char *key);

#endif
