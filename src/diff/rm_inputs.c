/* Input sets on disk: the folders ONNX's test data uses (test_data_set_<k>/input_<j>.pb),
 * NumPy files named by input, read for a model (names resolved against its inputs) and
 * written so that any diff or verify can be replayed bit for bit. */
#include "rm_diff.h"
#include "rm_fs.h"
#include "rm_model.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SET_PREFIX "test_data_set_"
#define MAX_SETS 100000     /* more sets than anyone feeds a diff: a hostile folder */
#define MAX_PER_SET 1024

/* ---- names ------------------------------------------------------------------------ */

/* s is "<prefix><digits><suffix>": the number into *k (0..INT_MAX), else -1. */
static int numbered(const char *s, const char *prefix, const char *suffix, long *k)
{
    size_t lp = strlen(prefix), ls = strlen(suffix), n = strlen(s);
    if (n <= lp + ls || strncmp(s, prefix, lp) || strcmp(s + n - ls, suffix))
        return -1;
    long v = 0;
    for (size_t i = lp; i < n - ls; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (INT_MAX - 9) / 10)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *k = v;
    return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && strcmp(s + n - k, suffix) == 0;
}

/* The graph inputs of m that are not initializers, in order (borrowed names). */
static int model_inputs(rm_model *m, const char ***names, int *n, struct rm_error *err)
{
    const struct rm_graph *g = rm_model_index(m, err);
    if (!g)
        return err->code;
    const Onnx__GraphProto *gp = m->proto->graph;
    *n = 0;
    *names = calloc(gp->n_input + 1, sizeof **names);
    if (!*names)
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    for (size_t i = 0; i < gp->n_input; i++) {
        const char *name = gp->input[i]->name;
        int v = name ? rm_graph_find(g, name) : -1;
        if (v >= 0 && g->values[v].init < 0)
            (*names)[(*n)++] = name;
    }
    return 0;
}

/* ---- reading ---------------------------------------------------------------------- */

struct entry {
    char *name;
    long k;     /* its number, or -1 */
};

static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->k != y->k)
        return x->k < y->k ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void entries_free(struct entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].name);
    free(e);
}

/* The entries of dir that want() keeps (returns 1, setting *k), sorted by number then
 * name. At most max of them. */
static int list_dir(const char *dir, int (*want)(const char *dir, const char *name, long *k), size_t max,
                    struct entry **out, size_t *n, struct rm_error *err)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return rm_error_set(err, RM_EIO, "%s: cannot open the folder: %s", dir, strerror(errno));
    size_t cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
        long k = -1;
        if (de->d_name[0] == '.' || !want(dir, de->d_name, &k))
            continue;
        if (*n == max) {
            rc = rm_error_set(err, RM_EUSAGE, "%s: more than %zu entries; not an input-set folder", dir, max);
            break;
        }
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct entry *ne = realloc(*out, nc * sizeof *ne);
            if (!ne) {
                rc = rm_error_set(err, RM_ENOMEM, "out of memory");
                break;
            }
            *out = ne;
            cap = nc;
        }
        if (!((*out)[*n].name = strdup(de->d_name))) {
            rc = rm_error_set(err, RM_ENOMEM, "out of memory");
            break;
        }
        (*out)[(*n)++].k = k;
    }
    closedir(d);
    if (rc) {
        entries_free(*out, *n);
        *out = NULL;
        *n = 0;
        return rc;
    }
    if (*n)
        qsort(*out, *n, sizeof **out, entry_cmp);
    return 0;
}

static int want_set(const char *dir, const char *name, long *k)
{
    (void)dir;
    return numbered(name, SET_PREFIX, "", k) == 0;
}

static int want_tensor(const char *dir, const char *name, long *k)
{
    (void)dir;
    if (numbered(name, "input_", ".pb", k) == 0)
        return 1;
    *k = LONG_MAX; /* .npy files after numbered ones, by name */
    return ends_with(name, ".npy");
}

/* A set under construction. */
struct set_build {
    char **names;
    rm_tensor *values;
    int n;
};

static int join(char *buf, size_t n, const char *dir, const char *name, struct rm_error *err)
{
    if ((size_t)snprintf(buf, n, "%s/%s", dir, name) >= n)
        return rm_error_set(err, RM_EUSAGE, "%s/%s: path too long", dir, name);
    return 0;
}

/* Read the tensor files of one set folder into b. */
static int read_set(const char *dir, const char *const *inputs, int n_inputs, struct set_build *b,
                    struct rm_error *err)
{
    struct entry *files;
    size_t n;
    int rc = list_dir(dir, want_tensor, MAX_PER_SET, &files, &n, err);
    if (rc)
        return rc;
    if (!n) {
        entries_free(files, n);
        return rm_error_set(err, RM_EUSAGE, "%s: no input_<j>.pb or <input>.npy files", dir);
    }
    b->names = calloc(n, sizeof *b->names);
    b->values = calloc(n, sizeof *b->values);
    if (!b->names || !b->values) {
        entries_free(files, n);
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n && !rc; i++) {
        char path[PATH_MAX], tname[256] = "";
        const char *input = NULL;
        if ((rc = join(path, sizeof path, dir, files[i].name, err)))
            break;
        if ((rc = rm_tensor_read(path, &b->values[b->n], tname, sizeof tname, err)))
            break;
        b->n++;
        if (ends_with(files[i].name, ".npy")) {
            size_t len = strlen(files[i].name) - 4;
            for (int j = 0; j < n_inputs && !input; j++)
                if (strlen(inputs[j]) == len && !strncmp(inputs[j], files[i].name, len))
                    input = inputs[j];
            if (!input)
                rc = rm_error_set(err, RM_EUSAGE, "%s: the model has no input named '%.*s'", path, (int)len,
                                  files[i].name);
        } else {
            for (int j = 0; j < n_inputs && !input && tname[0]; j++)
                if (!strcmp(inputs[j], tname))
                    input = inputs[j];
            if (!input && !tname[0] && files[i].k < n_inputs)
                input = inputs[files[i].k]; /* unnamed: input number j */
            if (!input)
                rc = tname[0] ? rm_error_set(err, RM_EUSAGE, "%s: the tensor is named '%.200s', which is no input "
                                             "of the model", path, tname)
                              : rm_error_set(err, RM_EUSAGE, "%s: the model has %d inputs", path, n_inputs);
        }
        for (int j = 0; !rc && j < b->n - 1; j++)
            if (!strcmp(b->names[j], input))
                rc = rm_error_set(err, RM_EUSAGE, "%s: a second tensor for input '%.200s'", path, input);
        if (!rc && !(b->names[b->n - 1] = strdup(input)))
            rc = rm_error_set(err, RM_ENOMEM, "out of memory");
    }
    entries_free(files, n);
    return rc;
}

void rm_input_sets_free(rm_input_sets *s)
{
    if (!s)
        return;
    for (size_t k = 0; k < s->n; k++) {
        rm_input_set *set = &s->sets[k];
        for (int i = 0; i < set->n; i++) {
            free((char *)set->names[i]);
            rm_tensor_free((rm_tensor *)&set->values[i]);
        }
        free((void *)set->names);
        free((void *)set->values);
    }
    free(s->sets);
    free(s->source);
    memset(s, 0, sizeof *s);
}

int rm_input_sets_read(rm_model *m, const char *dir, rm_input_sets *out, struct rm_error *err)
{
    memset(out, 0, sizeof *out);
    struct stat st;
    if (stat(dir, &st))
        return rm_error_set(err, RM_EIO, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return rm_error_set(err, RM_EUSAGE, "%s: is %s, not a folder of input sets", dir, rm_fs_kind(st.st_mode));
    const char **inputs = NULL;
    int n_inputs = 0;
    struct entry *sets = NULL;
    size_t n_sets = 0;
    int rc = model_inputs(m, &inputs, &n_inputs, err);
    if (!rc)
        rc = list_dir(dir, want_set, MAX_SETS, &sets, &n_sets, err);
    if (rc)
        goto done;
    size_t n = n_sets ? n_sets : 1; /* no set folders: dir itself is one set */
    out->sets = calloc(n, sizeof *out->sets);
    out->source = strdup(dir);
    if (!out->sets || !out->source) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < n && !rc; k++) {
        char path[PATH_MAX];
        struct set_build b = {0};
        if (n_sets && (rc = join(path, sizeof path, dir, sets[k].name, err)))
            break;
        rc = read_set(n_sets ? path : dir, inputs, n_inputs, &b, err);
        out->sets[k].n = b.n;
        out->sets[k].names = (const char *const *)b.names;
        out->sets[k].values = b.values;
        out->n++;
    }
done:
    free(inputs);
    entries_free(sets, n_sets);
    if (rc)
        rm_input_sets_free(out);
    return rc;
}

/* ---- writing ---------------------------------------------------------------------- */

int rm_input_sets_dir_ok(const char *dir, bool make, struct rm_error *err)
{
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return rm_error_set(err, RM_EUSAGE, "%s: is %s, not a folder", dir, rm_fs_kind(st.st_mode));
    } else if (errno != ENOENT) {
        return rm_error_set(err, RM_EIO, "%s: %s", dir, strerror(errno));
    } else if (!make) {
        /* made later: its parent must take it */
        char parent[PATH_MAX];
        if ((size_t)snprintf(parent, sizeof parent, "%s", dir) >= sizeof parent)
            return rm_error_set(err, RM_EUSAGE, "%s: path too long", dir);
        char *slash = strrchr(parent, '/');
        while (slash && slash > parent && slash[1] == '\0') { /* trailing slashes */
            *slash = '\0';
            slash = strrchr(parent, '/');
        }
        const char *p = !slash ? "." : slash == parent ? "/" : (*slash = '\0', parent);
        if (stat(p, &st) || !S_ISDIR(st.st_mode))
            return rm_error_set(err, RM_EIO, "%s: the folder %s does not exist", dir, p);
        if (access(p, W_OK))
            return rm_error_set(err, RM_EIO, "%s: cannot make a folder in %s: %s", dir, p, strerror(errno));
        return 0;
    } else if (mkdir(dir, 0777)) {
        return rm_error_set(err, RM_EIO, "%s: cannot make the folder: %s", dir, strerror(errno));
    }
    struct entry *sets;
    size_t n;
    int rc = list_dir(dir, want_set, MAX_SETS, &sets, &n, err);
    if (!rc && n)
        rc = rm_error_set(err, RM_EUSAGE, "%s: already holds input sets (%s); choose an empty folder", dir,
                          sets[0].name);
    if (!rc && access(dir, W_OK))
        rc = rm_error_set(err, RM_EIO, "%s: cannot write there: %s", dir, strerror(errno));
    entries_free(sets, n);
    return rc;
}

int rm_input_sets_write(const char *dir, const rm_input_set *sets, size_t n, struct rm_error *err)
{
    int rc = rm_input_sets_dir_ok(dir, true, err);
    size_t made = 0; /* set folders made, removed again on failure */
    char path[PATH_MAX], file[PATH_MAX];
    for (size_t k = 0; !rc && k < n; k++) {
        if ((size_t)snprintf(path, sizeof path, "%s/" SET_PREFIX "%zu", dir, k) >= sizeof path) {
            rc = rm_error_set(err, RM_EUSAGE, "%s: path too long", dir);
            break;
        }
        if (mkdir(path, 0777)) {
            rc = rm_error_set(err, RM_EIO, "%s: cannot make the folder: %s", path, strerror(errno));
            break;
        }
        made++;
        for (int j = 0; !rc && j < sets[k].n; j++) {
            if ((size_t)snprintf(file, sizeof file, "%s/input_%d.pb", path, j) >= sizeof file)
                rc = rm_error_set(err, RM_EUSAGE, "%s: path too long", path);
            else
                rc = rm_tensor_write_pb(file, &sets[k].values[j], sets[k].names[j], err);
        }
    }
    for (size_t k = 0; rc && k < made; k++) {
        /* nothing half-written stays: only what this call made goes */
        if ((size_t)snprintf(path, sizeof path, "%s/" SET_PREFIX "%zu", dir, k) >= sizeof path)
            continue; /* never made: it was checked above */
        for (int j = 0; j < sets[k].n; j++)
            if ((size_t)snprintf(file, sizeof file, "%s/input_%d.pb", path, j) < sizeof file)
                unlink(file);
        rmdir(path);
    }
    return rc;
}
