#include "test_util.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

const char *rm_test_testdata(void)
{
    const char *d = getenv("RM_TESTDATA");
    return d ? d : "testdata";
}

char *rm_test_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert(buf != NULL);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (size)
        *size = (size_t)n;
    return buf;
}

struct rm_model *rm_test_load_model(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.onnx", rm_test_testdata(), name);
    struct rm_error err;
    struct rm_model *m;
    ck_assert_msg(rm_model_load(&m, path, NULL, &err) == 0, "%s", err.msg);
    return m;
}

int rm_test_run_remodel(const char *const *args, char **out, char **err)
{
    const char *bin = getenv("RM_REMODEL");
    char po[] = "/tmp/rm_test_out_XXXXXX", pe[] = "/tmp/rm_test_err_XXXXXX";
    int fo = mkstemp(po), fe = mkstemp(pe);
    ck_assert(fo >= 0 && fe >= 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
            _exit(127);
        char *argv[32];
        int n = 0;
        argv[n++] = (char *)bin;
        for (; args[n - 1] && n < 31; n++)
            argv[n] = (char *)args[n - 1];
        argv[n] = NULL;
        execv(bin, argv);
        _exit(127);
    }
    close(fo);
    close(fe);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status), "remodel died from a signal");
    *out = rm_test_read_file(po, NULL);
    *err = rm_test_read_file(pe, NULL);
    unlink(po);
    unlink(pe);
    return WEXITSTATUS(status);
}

int rm_test_run(Suite *s)
{
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ---- JSON ------------------------------------------------------------------------------- */

void jws(const char **p)
{
    while (isspace((unsigned char)**p))
        (*p)++;
}

static char *jstr(const char **p)
{
    ck_assert_int_eq(**p, '"');
    (*p)++;
    size_t cap = 64, n = 0;
    char *s = malloc(cap);
    while (**p != '"') {
        ck_assert_msg(**p, "unterminated JSON string");
        ck_assert_msg((unsigned char)**p >= 0x20, "raw control character in a JSON string");
        char c = *(*p)++;
        if (c == '\\') {
            char e = *(*p)++;
            ck_assert_msg(strchr("\"\\/bfnrtu", e) && e, "bad escape \\%c", e);
            if (e == 'u') {
                for (int i = 0; i < 4; i++)
                    ck_assert_msg(isxdigit((unsigned char)(*p)[i]), "bad \\u escape");
                *p += 4;
                c = '?';
            } else {
                c = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r'
                  : e == 'b' ? '\b' : e == 'f' ? '\f' : e;
            }
        }
        if (n + 2 > cap)
            s = realloc(s, cap *= 2);
        s[n++] = c;
    }
    (*p)++;
    s[n] = '\0';
    return s;
}

struct jv *jparse(const char **p)
{
    struct jv *v = calloc(1, sizeof *v);
    jws(p);
    if (**p == '{' || **p == '[') {
        bool obj = **p == '{';
        char close = obj ? '}' : ']';
        v->type = obj ? J_OBJ : J_ARR;
        (*p)++;
        jws(p);
        if (**p == close) {
            (*p)++;
            return v;
        }
        for (;;) {
            v->keys = realloc(v->keys, (v->n + 1) * sizeof *v->keys);
            v->items = realloc(v->items, (v->n + 1) * sizeof *v->items);
            v->keys[v->n] = NULL;
            if (obj) {
                jws(p);
                v->keys[v->n] = jstr(p);
                jws(p);
                ck_assert_msg(**p == ':', "expected ':' near '%.20s'", *p);
                (*p)++;
            }
            v->items[v->n++] = jparse(p);
            jws(p);
            if (**p == ',') {
                (*p)++;
                continue;
            }
            ck_assert_msg(**p == close, "expected ',' or '%c' near '%.20s'", close, *p);
            (*p)++;
            break;
        }
    } else if (**p == '"') {
        v->type = J_STR;
        v->str = jstr(p);
    } else if (!strncmp(*p, "null", 4)) {
        *p += 4;
    } else if (!strncmp(*p, "true", 4) || !strncmp(*p, "false", 5)) {
        v->type = J_BOOL;
        v->num = **p == 't';
        *p += v->num ? 4 : 5;
    } else {
        char *end;
        ck_assert_msg(**p == '-' || isdigit((unsigned char)**p), "bad JSON near '%.20s'", *p);
        v->type = J_NUM;
        v->num = strtod(*p, &end);
        ck_assert_msg(end != *p, "bad JSON near '%.20s'", *p);
        *p = end;
    }
    return v;
}

struct jv *jparse_doc(const char *text)
{
    const char *p = text;
    struct jv *v = jparse(&p);
    jws(&p);
    ck_assert_msg(*p == '\0', "trailing text after the JSON document: '%.20s'", p);
    return v;
}

struct jv *load_json(const char *path)
{
    char *text = rm_test_read_file(path, NULL);
    struct jv *v = jparse_doc(text);
    free(text);
    return v;
}

void jfree(struct jv *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        free(v->keys[i]);
        jfree(v->items[i]);
    }
    free(v->keys);
    free(v->items);
    free(v->str);
    free(v);
}

const struct jv *jfind(const struct jv *o, const char *key)
{
    for (size_t i = 0; o && o->type == J_OBJ && i < o->n; i++)
        if (!strcmp(o->keys[i], key))
            return o->items[i];
    return NULL;
}

const struct jv *jget(const struct jv *o, const char *key)
{
    const struct jv *v = jfind(o, key);
    if (!v)
        ck_abort_msg("JSON key '%s' missing", key);
    return v;
}
