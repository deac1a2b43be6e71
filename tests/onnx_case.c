#include "onnx_case.h"
#include "rm_engine.h"
#include "test_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* snprintf whose truncation (of absurdly long paths) is harmless here */
static void fmt(char *buf, size_t n, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, n, f, ap);
    va_end(ap);
}

/* A TensorProto file as a host tensor of the type the engine carries it in (bool and
 * int32 as int64, float64 as float32); *onnx_type is its own type. */
static int read_tensor(const char *path, struct rm_host_tensor *out, int32_t *onnx_type, struct rm_error *err)
{
    size_t size;
    uint8_t *buf = (uint8_t *)rm_test_read_file(path, &size);
    memset(out, 0, sizeof *out);
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, size, buf);
    free(buf);
    if (!tp)
        return rm_error_set(err, RM_EFORMAT, "%s: not a TensorProto", path);
    int rc;
    int32_t host = rm_dtype_host(tp->data_type);
    *onnx_type = tp->data_type;
    if (!host || tp->n_dims > RM_MAX_RANK)
        rc = rm_error_set(err, RM_EUNSUPPORTED, "%s: type %s", path, rm_dtype_name(tp->data_type));
    else if (!(rc = rm_tensor_alloc(out, host, (int)tp->n_dims, tp->dims, err)) && out->numel)
        rc = host == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? rm_tensor_to_f32(tp, out->data, out->numel, err)
                                                          : rm_tensor_to_i64(tp, out->data, out->numel, err);
    onnx__tensor_proto__free_unpacked(tp, NULL);
    if (rc)
        rm_tensor_free(out);
    return rc;
}

static int close_enough(const struct rm_host_tensor *got, const struct rm_host_tensor *want, double atol, double rtol,
                        char *why, size_t n)
{
    if (got->dtype != want->dtype || got->rank != want->rank ||
        memcmp(got->dims, want->dims, sizeof(int64_t) * (size_t)got->rank)) {
        snprintf(why, n, "type/shape differ (%s rank %d numel %lld vs %s rank %d numel %lld)", rm_dtype_name(got->dtype),
                 got->rank, (long long)got->numel, rm_dtype_name(want->dtype), want->rank, (long long)want->numel);
        return 0;
    }
    for (int64_t i = 0; i < got->numel; i++) {
        double a, b;
        if (got->dtype == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
            a = ((float *)got->data)[i];
            b = ((float *)want->data)[i];
        } else {
            a = (double)((int64_t *)got->data)[i];
            b = (double)((int64_t *)want->data)[i];
        }
        if ((isnan(a) && isnan(b)) || a == b)
            continue;
        if (!(fabs(a - b) <= atol + rtol * fabs(b))) {
            snprintf(why, n, "element %lld: got %.8g, expected %.8g", (long long)i, a, b);
            return 0;
        }
    }
    return 1;
}

/* Whether name is a line of the given.txt in dir (*has: the file exists). */
static int listed_given(const char *dir, const char *name, int *has)
{
    char path[8192], line[512];
    fmt(path, sizeof path, "%s/given.txt", dir);
    FILE *f = fopen(path, "r");
    *has = f != NULL;
    int found = 0;
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        found |= !strcmp(line, name);
    }
    if (f)
        fclose(f);
    return found;
}

int rm_case_run(const char *dir, const char *name, struct rm_case_opts *o, char *why, size_t wn)
{
    char path[8192];
    struct rm_error err;
    struct rm_model *m = NULL;
    struct rm_graph g;
    struct rm_plan *plan = NULL;
    int result = 0;
    memset(&g, 0, sizeof g);
    rm_error_clear(&err);
    fmt(path, sizeof path, "%s/model.onnx", dir);
    if (rm_model_load(&m, path, NULL, &err)) {
        snprintf(why, wn, "load: %.900s", err.msg);
        return 0;
    }
    if (o->select && !o->select(name, m->proto)) {
        rm_model_free(m);
        return -1;
    }
    if (rm_graph_init(&g, m, &err)) {
        snprintf(why, wn, "graph: %.900s", err.msg);
        goto done;
    }
    int sets = 0;
    const Onnx__GraphProto *gp = m->proto->graph;
    for (int s = 0;; s++) {
        struct stat st;
        fmt(path, sizeof path, "%s/test_data_set_%d", dir, s);
        if (stat(path, &st))
            break;
        sets++;
        /* inputs by position among graph inputs that are not initializers */
        enum { MAX_IN = 16 };
        struct rm_host_tensor in[MAX_IN], fvals[MAX_IN];
        const char *names[MAX_IN], *fnames[MAX_IN];
        int nin = 0, nfix = 0, bad = o->prepare && o->prepare(m, dir, s, why, wn), late[MAX_IN];
        for (size_t i = 0; i < gp->n_input && nin < MAX_IN; i++) {
            int vi = rm_graph_find(&g, gp->input[i]->name);
            if (vi >= 0 && g.values[vi].init >= 0)
                continue;
            int32_t ot, has;
            fmt(path, sizeof path, "%s/test_data_set_%d/input_%d.pb", dir, s, nin);
            if (read_tensor(path, &in[nin], &ot, &err)) {
                snprintf(why, wn, "input: %.900s", err.msg);
                bad = 1;
                break;
            }
            names[nin] = gp->input[i]->name;
            int listed = listed_given(dir, names[nin], &has);
            int is_int = in[nin].dtype == ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
            /* an int64 one given is fixed at plan time; a float one is set again below */
            late[nin] = !is_int || (has && !listed);
            if (!is_int || !has || listed) {
                fnames[nfix] = names[nin];
                fvals[nfix++] = in[nin];
            }
            nin++;
        }
        struct rm_session_options po;
        rm_session_options_default(&po);
        po.fuse = o->fuse;
        po.n_given = nfix;
        po.given_names = fnames;
        po.given_values = fvals;
        if (!bad && rm_session_create(&plan, m, &po, &err)) {
            snprintf(why, wn, "plan: %.900s", err.msg);
            bad = 1;
        }
        for (int k = 0; k < nin; k++) {
            if (!bad && late[k] && rm_session_set_input(plan, names[k], &in[k], &err)) {
                snprintf(why, wn, "input: %.900s", err.msg);
                bad = 1;
            }
            rm_tensor_free(&in[k]);
        }
        if (bad)
            goto done;
        o->n_steps = rm_session_n_steps(plan);
        if (rm_session_run(plan, &err) < 0) {
            snprintf(why, wn, "run: %.900s", err.msg);
            goto done;
        }
        for (int k2 = 0; k2 < rm_session_n_outputs(plan); k2++) {
            struct rm_host_tensor want, got;
            int32_t want_type;
            fmt(path, sizeof path, "%s/test_data_set_%d/output_%d.pb", dir, s, k2);
            if (read_tensor(path, &want, &want_type, &err)) {
                snprintf(why, wn, "reference: %.900s", err.msg);
                goto done;
            }
            char w2[512];
            int ok = !rm_session_output(plan, k2, &got, &err);
            if (!ok)
                snprintf(w2, sizeof w2, "%.500s", err.msg);
            else
                ok = close_enough(&got, &want, o->atol, o->rtol, w2, sizeof w2);
            if (ok && rm_session_output_type(plan, k2) != want_type) {
                snprintf(w2, sizeof w2, "type %s, expected %s", rm_dtype_name(rm_session_output_type(plan, k2)),
                         rm_dtype_name(want_type));
                ok = 0;
            }
            rm_tensor_free(&want);
            if (!ok) {
                snprintf(why, wn, "set %d output %d: %s", s, k2, w2);
                goto done;
            }
        }
        rm_session_free(plan);
        plan = NULL;
    }
    if (!sets) {
        snprintf(why, wn, "no test_data_set_*");
        goto done;
    }
    result = 1;
done:
    rm_session_free(plan);
    rm_graph_free(&g);
    rm_model_free(m);
    return result;
}
