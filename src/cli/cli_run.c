/* remodel run: execute a model on given or seeded random inputs, write and summarise
 * its outputs, optionally benchmark it against the machine's measured FP32 peak. */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_INPUTS 64

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct stats {
    double min, max, mean;
};

static double elem(const struct rm_host_tensor *t, int64_t i)
{
    return t->dtype == RM_DTYPE_INT64 ? (double)((int64_t *)t->data)[i]
                                                            : (double)((float *)t->data)[i];
}

static struct stats stats_of(const struct rm_host_tensor *t)
{
    struct stats s = {0, 0, 0};
    double sum = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        double v = elem(t, i);
        if (i == 0 || v < s.min)
            s.min = v;
        if (i == 0 || v > s.max)
            s.max = v;
        sum += v;
    }
    s.mean = t->numel ? sum / (double)t->numel : 0;
    return s;
}

static void shape_text(const struct rm_host_tensor *t, char *buf, size_t n)
{
    size_t off = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < t->rank && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%" PRId64, i ? ", " : "", t->dims[i]);
    if (off < n)
        snprintf(buf + off, n - off, "]");
}

/* -o DIR, which rm_output_check_dir accepted before loading (exists: it is there already):
 * none of the DIR/output_<k>.pb to be written may be anything but a regular file or a
 * file m is read from. Prints and returns CLI_BAD otherwise. */
static int check_outputs(const char *outdir, int exists, size_t n_outputs, const struct rm_model *m)
{
    for (size_t k = 0; exists && k < n_outputs; k++) {
        char file[PATH_MAX];
        struct cli_outputs outs = {.quiet = k > 0}; /* one folder: stale files noted once */
        if (snprintf(file, sizeof file, "%s/output_%zu.pb", outdir, k) >= (int)sizeof file) {
            fprintf(stderr, "remodel: %s: path too long\n", outdir);
            return CLI_BAD;
        }
        if (cli_output_add(&outs, "-o", file, false) || cli_outputs_guard(&outs, m))
            return CLI_BAD;
    }
    return CLI_OK;
}

static int run_run(struct cli_args *a)
{
    const char **inputs = a->inputs.v, *outdir = a->out;
    int n_inputs = a->inputs.n, json = a->json, fuse = !a->no_fuse, direct = a->direct_conv;
    long long threads = a->threads, bench = a->bench;
    uint64_t seed = a->seed;
    const char *path = a->pos[0];
    for (int k = 0; k < n_inputs; k++)
        if (!strchr(inputs[k], '=') || inputs[k][0] == '=' || !strchr(inputs[k], '=')[1])
            return cli_usage(&cli_cmd_run, "bad -i '%s': expected NAME=FILE", inputs[k]);

    struct rm_error err;
    rm_error_clear(&err);
    int outdir_exists = 0;
    if (outdir && rm_output_check_dir(outdir, &outdir_exists, &err))
        return cli_fail(&err);
    rm_model *m = NULL;
    rm_info info = {0};
    rm_session *plan = NULL;
    struct rm_host_tensor given[MAX_INPUTS];
    char names[MAX_INPUTS][256];
    const char *name_ptrs[MAX_INPUTS];
    int n_read = 0;
    double *lat = NULL;
    int rc = CLI_OK;
    if (rm_model_load(&m, path, NULL, &err)) {
        rc = cli_fail(&err);
        goto done;
    }
    if ((rc = cli_input_shapes(m, &a->input_shapes, false)))
        goto done;
    if (rm_model_info(m, &info, &err)) {
        rc = cli_fail(&err);
        goto done;
    }
    if (outdir && (rc = check_outputs(outdir, outdir_exists, info.n_outputs, m)))
        goto done;
    /* read every -i first: int64 tensors are fixed at plan time, float ones give
     * the dims of dynamic input dimensions */
    for (int k = 0; k < n_inputs; k++) {
        const char *eq = strchr(inputs[k], '=');
        snprintf(names[k], sizeof names[k], "%.*s", (int)(eq - inputs[k]), inputs[k]);
        size_t i = 0;
        while (i < info.n_inputs && strcmp(info.inputs[i].name, names[k]))
            i++;
        if (i == info.n_inputs) {
            fprintf(stderr, "remodel: %s: the model has no input named '%s'\n", path, names[k]);
            rc = CLI_BAD;
            goto done;
        }
        name_ptrs[k] = names[k];
        if (rm_tensor_read(eq + 1, &given[n_read], NULL, 0, &err)) {
            rc = cli_fail(&err);
            goto done;
        }
        n_read++;
    }
    rm_session_options po;
    rm_session_options_default(&po);
    po.threads = (int)threads;
    po.fuse = fuse;
    po.direct_conv = direct;
    /* one run unless --bench: Winograd's weight transforms cost more than they save in a
     * single run (resnet18, whole process: 0.96 s and 214 MB peak with them, 0.29 s and
     * 118 MB without) */
    po.few_runs = !bench;
    po.n_given = n_inputs;
    po.given_names = name_ptrs;
    po.given_values = given;
    if (rm_session_create(&plan, m, &po, &err)) {
        rc = cli_fail_in(&err, "%s", path);
        goto done;
    }
    cli_note_batch(m);
    rm_session_random_inputs(plan, seed);
    if (rm_session_run(plan, &err) < 0) {
        rc = cli_fail(&err);
        goto done;
    }
    double median = 0, best = 0, gflops = 0, peak = 0;
    if (bench) {
        lat = malloc((size_t)bench * sizeof *lat);
        if (!lat) {
            fprintf(stderr, "remodel: out of memory\n");
            rc = CLI_BAD;
            goto done;
        }
        for (int w = 0; w < 3; w++)
            if (rm_session_run(plan, &err) < 0) {
                rc = cli_fail(&err);
                goto done;
            }
        for (long long i = 0; i < bench; i++) {
            double t0 = now_ms();
            if (rm_session_run(plan, &err) < 0) {
                rc = cli_fail(&err);
                goto done;
            }
            lat[i] = now_ms() - t0;
        }
        qsort(lat, (size_t)bench, sizeof *lat, cmp_double);
        median = bench % 2 ? lat[bench / 2] : (lat[bench / 2 - 1] + lat[bench / 2]) / 2;
        best = lat[0];
        gflops = 2.0 * (double)rm_session_macs(plan) / (median * 1e6);
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        peak = rm_fma_peak_gflops(threads ? (int)threads : (int)(ncpu > 0 ? ncpu : 1));
    }
    if (outdir) {
        if (mkdir(outdir, 0777) && errno != EEXIST) {
            fprintf(stderr, "remodel: %s: cannot create folder: %s\n", outdir, strerror(errno));
            rc = CLI_BAD;
            goto done;
        }
        for (int k = 0; k < rm_session_n_outputs(plan); k++) {
            char file[PATH_MAX];
            struct rm_host_tensor o;
            snprintf(file, sizeof file, "%s/output_%d.pb", outdir, k);
            if (rm_session_output(plan, k, &o, &err) ||
                rm_tensor_write_pb_as(file, &o, rm_session_output_type(plan, k), rm_session_output_name(plan, k),
                                      &err)) {
                rc = cli_fail(&err);
                goto done;
            }
        }
    }
    rm_json j;
    if (json) {
        rm_json_init(&j, stdout);
        rm_json_obj_begin(&j);
        rm_json_key(&j, "outputs");
        rm_json_arr_begin(&j);
    }
    for (int k = 0; k < rm_session_n_outputs(plan); k++) {
        struct rm_host_tensor o;
        char shp[256];
        if (rm_session_output(plan, k, &o, &err)) {
            rc = cli_fail(&err);
            goto done;
        }
        struct stats s = stats_of(&o);
        shape_text(&o, shp, sizeof shp);
        int64_t nfirst = o.numel < 5 ? o.numel : 5;
        if (json) {
            rm_json_obj_begin(&j);
            rm_json_key(&j, "name");
            rm_json_str(&j, rm_session_output_name(plan, k));
            rm_json_key(&j, "type");
            rm_json_str(&j, rm_dtype_name(rm_session_output_type(plan, k)));
            rm_json_key(&j, "shape");
            rm_json_arr_begin(&j);
            for (int i = 0; i < o.rank; i++)
                rm_json_int(&j, o.dims[i]);
            rm_json_arr_end(&j);
            rm_json_key(&j, "min");
            rm_json_num(&j, s.min);
            rm_json_key(&j, "max");
            rm_json_num(&j, s.max);
            rm_json_key(&j, "mean");
            rm_json_num(&j, s.mean);
            rm_json_key(&j, "first");
            rm_json_arr_begin(&j);
            for (int64_t i = 0; i < nfirst; i++)
                rm_json_num(&j, elem(&o, i));
            rm_json_arr_end(&j);
            if (outdir) {
                char file[PATH_MAX];
                snprintf(file, sizeof file, "%s/output_%d.pb", outdir, k);
                rm_json_key(&j, "file");
                rm_json_str(&j, file);
            }
            rm_json_obj_end(&j);
        } else {
            printf("output %d  %s %s %s  min %.6g max %.6g mean %.6g  first", k,
                   rm_session_output_name(plan, k), rm_dtype_name(rm_session_output_type(plan, k)), shp, s.min, s.max,
                   s.mean);
            for (int64_t i = 0; i < nfirst; i++)
                printf(" %.6g", elem(&o, i));
            printf("%s\n", o.numel > nfirst ? " ..." : "");
            if (outdir)
                printf("          written to %s/output_%d.pb\n", outdir, k);
        }
    }
    if (json) {
        rm_json_arr_end(&j);
        if (bench) {
            rm_json_key(&j, "latency_ms");
            rm_json_obj_begin(&j);
            rm_json_key(&j, "median");
            rm_json_num(&j, median);
            rm_json_key(&j, "min");
            rm_json_num(&j, best);
            rm_json_obj_end(&j);
            rm_json_key(&j, "iterations");
            rm_json_int(&j, bench);
            rm_json_key(&j, "macs");
            rm_json_int(&j, rm_session_macs(plan));
            rm_json_key(&j, "gflops");
            rm_json_num(&j, gflops);
            rm_json_key(&j, "peak_gflops");
            rm_json_num(&j, peak);
            rm_json_key(&j, "peak_fraction");
            rm_json_num(&j, peak > 0 ? gflops / peak : NAN);
        }
        rm_json_obj_end(&j);
        rm_json_end(&j);
    } else if (bench) {
        printf("latency   median %.3f ms, min %.3f ms over %lld runs\n", median, best, bench);
        printf("compute   %.2f GMAC, %.1f GFLOP/s; FP32 FMA peak %.1f GFLOP/s measured, %.1f%% of peak\n",
               (double)rm_session_macs(plan) * 1e-9, gflops, peak, peak > 0 ? 100 * gflops / peak : 0.0);
    }
done:
    free(lat);
    for (int k = 0; k < n_read; k++)
        rm_tensor_free(&given[k]);
    rm_session_free(plan);
    rm_info_free(&info);
    rm_model_free(m);
    return rc;
}

static const struct cli_pos model_pos[] = {CLI_POS_MODEL, {0}};

static const struct cli_opt run_opts[] = {
    CLI_OPT_INPUT,
    CLI_OPT_INPUT_SHAPE,
    {.name = "output", .short_name = 'o', .metavar = "DIR", CLI_S(out), .complete = CLI_C_DIR,
     .help = "write output k as DIR/output_<k>.pb (TensorProto); DIR is created when missing"},
    CLI_OPT_SEED_INPUTS,
    CLI_OPT_THREADS,
    {.name = "bench", .metavar = "N", CLI_I(bench), .min = 1, .max = 1000000,
     .help = "time N runs after 3 warm-up runs: latency median/min, GFLOP/s (2 x MACs / median) and the fraction "
             "of the FP32 FMA peak measured in this process"},
    CLI_OPT_JSON(": outputs [{name, type, shape, min, max, mean, first (up to 5 values), file (with -o)}], and "
                 "with --bench latency_ms {median, min}, iterations, macs, gflops, peak_gflops, peak_fraction"),
    {.name = "no-fuse", CLI_F(no_fuse), .help = "keep BatchNorm, activations and Adds as separate steps"},
    {.name = "direct-conv", CLI_F(direct_conv),
     .help = "direct convolution only (default with --bench: Winograd for 3x3 stride-1 convs with >= 16 channels "
             "where oneDNN has it; a single run never uses it)"},
    {0},
};

const struct cli_cmd cli_cmd_run = {
    .name = "run",
    .summary = "run a model with oneDNN, optionally timed",
    .about = "Runs on given inputs (or seeded random normal ones) and summarises each output: name, type, shape, "
             "min/max/mean and the first values.",
    .pos = model_pos,
    .opts = run_opts,
    .notes = "A dynamic batch dimension is 1 (said on stderr); other dynamic dimensions take their sizes from -i "
             "files or --input-shape, and without either the run is refused. Exit 2 for bad input (unreadable or "
             "mismatched tensor file, bad -i, unsupported op).",
    .run = run_run,
};
