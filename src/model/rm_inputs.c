/* Input sets on disk (remodel.h: the folder layout): read one set at a time for a model
 * (files mapped to its inputs by tensor name, file name or number; checked when opened)
 * and written in ONNX's test-data layout, so that any diff, verification or calibration
 * can be replayed bit for bit. */
#include "rm_inputs.h"

#include "rm_fs.h"
#include "rm_graph.h"
#include "rm_model.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SET_PREFIX "test_data_set_"

/* ---- input sets ------------------------------------------------------------------ */

struct rm_input_sets {
    char *dir;
    size_t n_sets;
    char **labels;            /* folder names ("." for DIR itself) */
    size_t n_inputs;
    char **names;             /* graph inputs fed, graph order */
    char **files;             /* n_sets * n_inputs paths */
    struct rm_host_tensor *shape; /* per input: dtype, rank, dims of set 0 (no data) */
};

/* Natural order: digit runs compare as numbers (set_2 before set_10). */
static int natural_cmp(const char *a, const char *b)
{
    while (*a && *b) {
        if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
            while (*a == '0' && isdigit((unsigned char)a[1]))
                a++;
            while (*b == '0' && isdigit((unsigned char)b[1]))
                b++;
            size_t la = 0, lb = 0;
            while (isdigit((unsigned char)a[la]))
                la++;
            while (isdigit((unsigned char)b[lb]))
                lb++;
            if (la != lb)
                return la < lb ? -1 : 1;
            int c = strncmp(a, b, la);
            if (c)
                return c;
            a += la;
            b += lb;
            continue;
        }
        if (*a != *b)
            return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
        a++;
        b++;
    }
    return *a ? 1 : *b ? -1 : 0;
}

static int cmp_names(const void *x, const void *y)
{
    return natural_cmp(*(char *const *)x, *(char *const *)y);
}

static char *join_path(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + lb + 2);
    if (p) {
        memcpy(p, a, la);
        p[la] = '/';
        memcpy(p + la + 1, b, lb + 1);
    }
    return p;
}

static bool has_ext(const char *name, const char *ext)
{
    size_t n = strlen(name), e = strlen(ext);
    return n > e && !strcmp(name + n - e, ext);
}

static bool is_tensor_file(const char *name)
{
    return has_ext(name, ".pb") || has_ext(name, ".npy");
}

/* Names in dir (hidden ones skipped), sorted naturally; *n entries. */
static int list_dir(const char *dir, char ***out, size_t *n, struct rm_error *err)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return rm_error_set(err, RM_EIO, "%s: cannot open: %s", dir, strerror(errno));
    size_t cap = 0;
    char **v = NULL;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                rc = rm_error_set(err, RM_ENOMEM, "out of memory");
                break;
            }
            v = nv;
        }
        if (!(v[*n] = strdup(de->d_name))) {
            rc = rm_error_set(err, RM_ENOMEM, "out of memory");
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (rc) {
        for (size_t i = 0; i < *n; i++)
            free(v[i]);
        free(v);
        *n = 0;
        return rc;
    }
    if (*n)
        qsort(v, *n, sizeof *v, cmp_names);
    *out = v;
    return 0;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void rm_input_sets_free(struct rm_input_sets *s)
{
    if (!s)
        return;
    free(s->dir);
    free_list(s->labels, s->n_sets);
    free_list(s->names, s->n_inputs);
    if (s->files)
        free_list(s->files, s->n_sets * s->n_inputs);
    free(s->shape);
    free(s);
}

static void dims_str(char *buf, size_t n, const struct rm_host_tensor *t)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < t->rank && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)t->dims[i]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
}

/* Which input file `name` (tensor named tname) feeds: its index, -1 for a file to
 * ignore (output_<k>), -2 for none. */
static int input_of(const struct rm_input_sets *s, const char *fname, const char *tname)
{
    for (size_t j = 0; j < s->n_inputs; j++)
        if (tname[0] && !strcmp(tname, s->names[j]))
            return (int)j;
    size_t stem = strlen(fname) - (has_ext(fname, ".pb") ? 3 : 4);
    for (size_t j = 0; j < s->n_inputs; j++)
        if (strlen(s->names[j]) == stem && !strncmp(fname, s->names[j], stem))
            return (int)j;
    if (stem > 6 && !strncmp(fname, "input_", 6)) {
        char *end;
        long k = strtol(fname + 6, &end, 10);
        if (end == fname + stem && k >= 0 && (size_t)k < s->n_inputs && isdigit((unsigned char)fname[6]))
            return (int)k;
    }
    if (!strncmp(fname, "output_", 7) || !strncmp(fname, "output.", 7))
        return -1;
    return -2;
}

/* Map the tensor files of one set folder to inputs: s->files[k * n_inputs + j]. */
static int open_set(struct rm_input_sets *s, size_t k, const char *path, const struct rm_graph *g,
                    struct rm_error *err)
{
    char **names = NULL;
    size_t n = 0;
    int rc = list_dir(path, &names, &n, err);
    if (rc)
        return rc;
    char **files = s->files + k * s->n_inputs;
    for (size_t i = 0; i < n && !rc; i++) {
        if (!is_tensor_file(names[i]))
            continue;
        char *fp = join_path(path, names[i]);
        if (!fp) {
            rc = rm_error_set(err, RM_ENOMEM, "out of memory");
            break;
        }
        struct rm_host_tensor t;
        char tname[256] = "";
        rc = rm_tensor_read(fp, &t, tname, sizeof tname, err);
        if (rc) {
            free(fp);
            break;
        }
        int j = input_of(s, names[i], tname);
        if (j == -1) {
            free(fp);
            rm_tensor_free(&t);
            continue;
        }
        if (j < 0) {
            char list[256] = "";
            size_t used = 0;
            for (size_t q = 0; q < s->n_inputs && used < sizeof list; q++)
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", q ? ", " : "", s->names[q]);
            rc = rm_error_set(err, RM_EUSAGE,
                              "%s: feeds no input of the model (%s%s%sthe model's inputs: %s); name the file "
                              "after its input (%s.pb) or input_<k>.pb",
                              fp, tname[0] ? "its tensor is named '" : "", tname, tname[0] ? "'; " : "", list,
                              s->names[0]);
            free(fp);
            rm_tensor_free(&t);
            break;
        }
        if (files[j]) {
            rc = rm_error_set(err, RM_EUSAGE, "%s: input '%s' is given twice in this set (also by %s)", fp,
                              s->names[j], files[j]);
            free(fp);
            rm_tensor_free(&t);
            break;
        }
        /* the model's type and fixed dims; the dims of set 0 for every set */
        int v = rm_graph_find(g, s->names[j]);
        const struct rm_value *val = &g->values[v];
        struct rm_host_tensor *sh = &s->shape[j];
        char a[160], b[160];
        dims_str(a, sizeof a, &t);
        if (k == 0) {
            bool ok = val->decl_rank < 0 || val->decl_rank == t.rank;
            for (int d = 0; ok && val->decl_rank >= 0 && d < t.rank; d++)
                ok = val->decl_dims[d] < 0 || val->decl_dims[d] == t.dims[d];
            int32_t want = val->decl_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? RM_DTYPE_INT64 : RM_DTYPE_FLOAT;
            if (!ok || t.dtype != want) {
                struct rm_host_tensor decl = {.rank = val->decl_rank > 0 ? val->decl_rank : 0};
                for (int d = 0; d < decl.rank; d++)
                    decl.dims[d] = val->decl_dims[d];
                dims_str(b, sizeof b, &decl);
                rc = rm_error_set(err, RM_EUSAGE, "%s: %s %s does not fit input '%s', declared %s %s", fp,
                                  rm_dtype_name(t.dtype), a, s->names[j], rm_dtype_name(want), b);
            }
            sh->dtype = t.dtype;
            sh->rank = t.rank;
            memcpy(sh->dims, t.dims, sizeof sh->dims);
            sh->numel = t.numel;
        } else if (t.dtype != sh->dtype || t.rank != sh->rank ||
                   memcmp(t.dims, sh->dims, sizeof(int64_t) * (size_t)t.rank)) {
            dims_str(b, sizeof b, sh);
            rc = rm_error_set(err, RM_EUSAGE, "%s: %s %s, but the first set gives input '%s' as %s %s", fp,
                              rm_dtype_name(t.dtype), a, s->names[j], rm_dtype_name(sh->dtype), b);
        }
        rm_tensor_free(&t);
        files[j] = fp;
    }
    for (size_t j = 0; j < s->n_inputs && !rc; j++)
        if (!files[j])
            rc = rm_error_set(err, RM_EUSAGE, "%s: no file gives input '%s' (name it %s.pb or input_%zu.pb)", path,
                              s->names[j], s->names[j], j);
    free_list(names, n);
    return rc;
}

int rm_input_sets_open(struct rm_input_sets **out, struct rm_model *m, const char *dir, struct rm_error *err)
{
    *out = NULL;
    const struct rm_graph *g = rm_model_index(m, err);
    if (!g)
        return err ? err->code : RM_ENOMEM;
    struct rm_input_sets *s = calloc(1, sizeof *s);
    char **entries = NULL;
    size_t n_entries = 0;
    int rc = 0;
    if (!s || !(s->dir = strdup(dir))) {
        free(s);
        return rm_error_set(err, RM_ENOMEM, "out of memory");
    }
    /* the inputs fed: graph inputs that are not initializers */
    s->names = calloc(g->proto->n_input + 1, sizeof *s->names);
    s->shape = calloc(g->proto->n_input + 1, sizeof *s->shape);
    if (!s->names || !s->shape) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < g->proto->n_input; i++) {
        int v = g->proto->input[i]->name ? rm_graph_find(g, g->proto->input[i]->name) : -1;
        if (v < 0 || g->values[v].init >= 0)
            continue;
        if (!(s->names[s->n_inputs] = strdup(g->values[v].name))) {
            rc = rm_error_set(err, RM_ENOMEM, "out of memory");
            goto done;
        }
        s->n_inputs++;
    }
    if (!s->n_inputs) {
        rc = rm_error_set(err, RM_EUSAGE, "the model has no inputs to feed");
        goto done;
    }
    struct stat st;
    if (stat(dir, &st) != 0) {
        rc = rm_error_set(err, RM_EIO, "%s: cannot open: %s", dir, strerror(errno));
        goto done;
    }
    if (!S_ISDIR(st.st_mode)) {
        rc = rm_error_set(err, RM_EUSAGE, "%s: not a folder (input sets are folders of tensor files, one per sample)",
                          dir);
        goto done;
    }
    if ((rc = list_dir(dir, &entries, &n_entries, err)))
        goto done;
    /* the sets: the sub-folders, or dir itself when it holds tensor files only */
    s->labels = calloc(n_entries + 1, sizeof *s->labels);
    if (!s->labels) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    bool files_here = false;
    for (size_t i = 0; i < n_entries; i++) {
        char *p = join_path(dir, entries[i]);
        if (!p) {
            rc = rm_error_set(err, RM_ENOMEM, "out of memory");
            goto done;
        }
        bool is_dir = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
        free(p);
        if (is_dir)
            s->labels[s->n_sets++] = entries[i], entries[i] = NULL;
        else if (is_tensor_file(entries[i]))
            files_here = true;
    }
    if (!s->n_sets && files_here) {
        if (!(s->labels[0] = strdup(".")))
            rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        s->n_sets = 1;
    }
    if (rc)
        goto done;
    if (!s->n_sets) {
        rc = rm_error_set(err, RM_EUSAGE,
                          "%s: no input sets (expected one folder per sample holding a tensor file per input, "
                          "e.g. %s/test_data_set_0/input_0.pb)", dir, dir);
        goto done;
    }
    s->files = calloc(s->n_sets * s->n_inputs, sizeof *s->files);
    if (!s->files) {
        rc = rm_error_set(err, RM_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < s->n_sets && !rc; k++) {
        char *p = strcmp(s->labels[k], ".") ? join_path(dir, s->labels[k]) : strdup(dir);
        if (!p) {
            rc = rm_error_set(err, RM_ENOMEM, "out of memory");
            break;
        }
        rc = open_set(s, k, p, g, err);
        free(p);
    }
done:
    free_list(entries, n_entries);
    if (rc) {
        rm_input_sets_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

size_t rm_input_sets_count(const struct rm_input_sets *s)
{
    return s ? s->n_sets : 0;
}

const char *rm_input_sets_label(const struct rm_input_sets *s, size_t k)
{
    return s && k < s->n_sets ? s->labels[k] : NULL;
}

size_t rm_input_sets_n_inputs(const struct rm_input_sets *s)
{
    return s ? s->n_inputs : 0;
}

const char *rm_input_sets_input_name(const struct rm_input_sets *s, size_t j)
{
    return s && j < s->n_inputs ? s->names[j] : NULL;
}

int rm_input_sets_read(struct rm_input_sets *s, size_t k, struct rm_host_tensor *values, struct rm_error *err)
{
    if (k >= s->n_sets)
        return rm_error_set(err, RM_EUSAGE, "no input set %zu (%zu sets)", k, s->n_sets);
    for (size_t j = 0; j < s->n_inputs; j++)
        memset(&values[j], 0, sizeof values[j]);
    for (size_t j = 0; j < s->n_inputs; j++) {
        const char *fp = s->files[k * s->n_inputs + j];
        int rc = rm_tensor_read(fp, &values[j], NULL, 0, err);
        /* the file may have changed since it was listed */
        if (!rc && (values[j].dtype != s->shape[j].dtype || values[j].rank != s->shape[j].rank ||
                    memcmp(values[j].dims, s->shape[j].dims, sizeof(int64_t) * (size_t)values[j].rank)))
            rc = rm_error_set(err, RM_EFORMAT, "%s: changed while in use", fp);
        if (rc) {
            for (size_t q = 0; q <= j; q++)
                rm_tensor_free(&values[q]);
            return rc;
        }
    }
    return 0;
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
    /* a folder read back as input sets must hold nothing else */
    char **names;
    size_t n;
    int rc = list_dir(dir, &names, &n, err);
    if (rc)
        return rc;
    if (n)
        rc = rm_error_set(err, RM_EUSAGE, "%s: not empty (it holds %s%s); input sets are written to an empty or new "
                          "folder", dir, names[0], n > 1 ? ", ..." : "");
    free_list(names, n);
    if (!rc && access(dir, W_OK))
        rc = rm_error_set(err, RM_EIO, "%s: cannot write there: %s", dir, strerror(errno));
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
