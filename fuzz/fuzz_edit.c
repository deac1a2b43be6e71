/* The structure-aware fuzzing pipeline (fuzz_pipeline.h): a model through everything the
 * command line does with one, as the library's public API offers it - load (from a file
 * beside a small external-data folder when the model names external data), info, check,
 * the module tree and its repr, then each edit on a clone (replace a conv, prune one conv's
 * group by ratio and by channels, prune globally, fold BatchNorms), and for every edit that
 * succeeds what the CLI does next: info and check of the result, a verification diff
 * against the original (for prunes, per module through the channel maps), a save (inline
 * or with external data). Which of these one input gets follows from its hash: two edits
 * per execution. Small models are also run. Crashing (or a sanitizer report) is the only
 * failure. */
#include "fuzz_pipeline.h"

#include "remodel.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Runs (sessions, diffs) only for models this small: under ASan a big plan takes seconds
 * and tells nothing a small one does not. */
#define RUN_MACS_MAX 4000000
#define CONVS_MAX 2

/* ---- the external-data folder: made when an input needs it, removed after it ------------- */

static char folder[96];

static void remove_folder(void)
{
    if (!folder[0] || folder[0] == '-') {
        folder[0] = '\0';
        return;
    }
    static const char *const files[] = {"m.onnx", "out.onnx", "out.bin", "w.bin", "link.bin", "empty.bin", "fifo",
                                        "sub/w.bin", "sub"};
    char path[128];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/%s", folder, files[i]);
        if (unlink(path) != 0)
            rmdir(path);
    }
    rmdir(folder);
    folder[0] = '\0';
}

/* A folder with what external-data keys may name: w.bin (64 KB of floats 0.5, 1.5, ...),
 * a link to it, an empty file, a FIFO (refused, never opened for a blocking read), and
 * sub/w.bin; made on first use by an input. NULL when it cannot be made (the model is
 * then only loaded from memory). */
static const char *ext_folder(void)
{
    if (folder[0])
        return folder[0] == '-' ? NULL : folder;
    /* in $TMPDIR (fuzz/run.sh points it at a tmpfs: the saves' fsyncs and the file
     * system's inode work took a quarter of a run's time on disk) */
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp || strlen(tmp) > 64)
        tmp = "/tmp";
    snprintf(folder, sizeof folder, "%s/rm-fuzz-XXXXXX", tmp);
    if (!mkdtemp(folder)) {
        folder[0] = '-';
        return NULL;
    }
    char path[128];
    float w[16384];
    for (int i = 0; i < 16384; i++)
        w[i] = (float)(i % 97) + 0.5f;
    snprintf(path, sizeof path, "%s/w.bin", folder);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(w, sizeof w, 1, f);
        fclose(f);
    }
    snprintf(path, sizeof path, "%s/empty.bin", folder);
    if ((f = fopen(path, "wb")))
        fclose(f);
    snprintf(path, sizeof path, "%s/link.bin", folder);
    if (symlink("w.bin", path) != 0) { /* the link is one more case; its absence is fine */
    }
    snprintf(path, sizeof path, "%s/fifo", folder);
    mkfifo(path, 0600);
    snprintf(path, sizeof path, "%s/sub", folder);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/sub/w.bin", folder);
    if ((f = fopen(path, "wb"))) {
        fwrite(w, 4096, 1, f);
        fclose(f);
    }
    return folder;
}

/* Whether the serialized model mentions external data (the key "location" or the
 * EXTERNAL data_location tag): then it is loaded from a file in the folder above. */
static bool names_external_data(const uint8_t *data, size_t size)
{
    static const char key[] = "location";
    for (size_t i = 0; i + sizeof key - 1 <= size; i++)
        if (data[i] == 'l' && memcmp(data + i, key, sizeof key - 1) == 0)
            return true;
    return false;
}

static int load(rm_model **m, const uint8_t *data, size_t size)
{
    rm_error err;
    rm_load_options lim = {.max_memory = (uint64_t)256 << 20};
    const char *dir = names_external_data(data, size) ? ext_folder() : NULL;
    if (!dir)
        return rm_model_load_buffer(m, data, size, "fuzz.onnx", &lim, &err);
    char path[128];
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size) {
        if (f)
            fclose(f);
        return rm_model_load_buffer(m, data, size, "fuzz.onnx", &lim, &err);
    }
    fclose(f);
    return rm_model_load(m, path, &lim, &err);
}

/* ---- what the CLI does with a model ------------------------------------------------------- */

static FILE *null_out(void)
{
    static FILE *f;
    if (!f)
        f = fopen("/dev/null", "w");
    return f;
}

/* info, check and the tree of m; its MACs (-1: unknown or malformed). */
static int64_t look(rm_model *m)
{
    rm_error err;
    rm_info info;
    int64_t macs = -1;
    if (rm_model_info(m, &info, &err) == 0) {
        macs = info.macs;
        rm_info_free(&info);
    }
    rm_findings found = {0};
    rm_model_check(m, &found, &err);
    rm_findings_free(&found);
    size_t n;
    if (rm_model_modules(m, &n, &err) == 0) {
        char *repr = rm_model_repr(m, 0, -1, &err);
        rm_free(repr);
        char line[512];
        for (size_t i = 0; i < n && i < 64; i++)
            rm_module_repr(m, i, line, sizeof line);
    }
    return macs;
}

static void run_small(rm_model *m, int64_t macs)
{
    if (macs < 0 || macs > RUN_MACS_MAX)
        return;
    rm_error err;
    rm_session_options o;
    rm_session_options_default(&o);
    o.threads = 1;
    rm_session *s = NULL;
    if (rm_session_create(&s, m, &o, &err) == 0) {
        rm_session_random_inputs(s, 1);
        rm_session_run(s, &err);
    }
    rm_session_free(s);
}

/* What the CLI does after an edit: look at the result, verify it against the original
 * (when asked: two runs), save it (when asked: 1 inline, 2 with external data), write its
 * names as JSON. */
static void after_edit(rm_model *orig, rm_model *m, int64_t macs_orig, bool verify, bool layers, int save)
{
    int64_t macs = look(m);
    if (verify && macs >= 0 && macs <= RUN_MACS_MAX && macs_orig >= 0 && macs_orig <= RUN_MACS_MAX) {
        rm_error err;
        rm_diff_options o;
        rm_diff_options_default(&o);
        o.threads = 1;
        o.layers = layers;
        rm_diff_result r;
        memset(&r, 0, sizeof r);
        if (rm_diff(orig, m, &o, &r, &err) == 0 && null_out())
            rm_diff_write_json(&r, null_out());
        rm_diff_result_free(&r);
    }
    if (save && ext_folder()) { /* written as the CLI writes it (atomically: fsync, so not always) */
        char path[128];
        snprintf(path, sizeof path, "%s/out.onnx", ext_folder());
        rm_save_options so = {.external_data = save > 1 ? "out.bin" : NULL, .external_threshold = 64};
        rm_error err;
        rm_model_save(m, path, &so, &err);
    }
    rm_json j;
    if (null_out()) { /* the JSON writer over the edited model's names */
        rm_json_init(&j, null_out());
        rm_json_obj_begin(&j);
        size_t n;
        rm_error err;
        if (rm_model_modules(m, &n, &err) == 0)
            for (size_t i = 0; i < n && i < 64; i++) {
                rm_module_info mi;
                if (rm_model_module(m, i, &mi) == 0) {
                    rm_json_key(&j, mi.path);
                    rm_json_str(&j, mi.type);
                }
            }
        rm_json_obj_end(&j);
        rm_json_end(&j);
    }
}

/* Up to CONVS_MAX Conv1d/2d/3d leaves of m: paths (copied: sessions and diffs on m may
 * rebuild its tree), channel counts and spatial dimensions. */
static int convs(rm_model *m, char (*paths)[256], int64_t *in, int64_t *out, int *nd)
{
    rm_error err;
    size_t n;
    int k = 0;
    if (rm_model_modules(m, &n, &err))
        return 0;
    for (size_t i = 0; i < n && k < CONVS_MAX; i++) {
        rm_module_info mi;
        if (rm_model_module(m, i, &mi) || !mi.leaf || strlen(mi.type) != 6 || strncmp(mi.type, "Conv", 4) ||
            mi.type[4] < '1' || mi.type[4] > '3' || mi.type[5] != 'd')
            continue;
        nd[k] = mi.type[4] - '0';
        in[k] = out[k] = -1;
        for (size_t a = 0; a < mi.n_args; a++) {
            const rm_arg *arg = rm_module_arg(m, i, a);
            if (arg && arg->type == RM_ARG_INT && strcmp(arg->key, "in_channels") == 0)
                in[k] = arg->i[0];
            if (arg && arg->type == RM_ARG_INT && strcmp(arg->key, "out_channels") == 0)
                out[k] = arg->i[0];
        }
        snprintf(paths[k++], 256, "%s", mi.path);
    }
    return k;
}

/* Clone orig, apply edit number `which` to the clone, and follow up as the CLI does. */
static void edit(rm_model *orig, int64_t macs, int which, const char *path, int64_t cin, int64_t cout, int nd,
                 uint32_t h)
{
    rm_error err;
    rm_model *m = NULL;
    if (rm_model_clone(&m, orig, &err))
        return;
    rm_findings log = {0};
    int rc = -1;
    bool layers = false;
    if (which == 0) { /* replace: out channels changed or not, carried on or not */
        char spec[160];
        int64_t o = (h & 1) ? cout : (cout > 1 ? cout / 2 : cout + 1);
        snprintf(spec, sizeof spec, "Conv%dd(%" PRId64 ", %" PRId64 ", %d, stride=%d, padding=%d%s)",
                 (h & 0x1000) ? 2 : nd, /* now and then a spec of other dimensions than the module's */
                 cin > 0 && cin < 4096 ? cin : 3, o > 0 && o < 4096 ? o : 4, (h & 2) ? 1 : 3, (h & 4) ? 2 : 1,
                 (h & 2) ? 0 : 1, (h & 8) ? ", bias=False" : "");
        rm_replace_options ro = {.init = (int)((h >> 4) % 3), .seed = h, .propagate = (h & 16) != 0};
        rc = rm_replace(m, path, spec, &ro, &log, &err);
    } else if (which == 1 || which == 2) { /* prune one group: by ratio, by channels */
        int64_t ch[2] = {0, (int64_t)(h % 7)};
        rm_prune_options po = {.ratio = 0.5, .criterion = 1 + (int)(h & 1)};
        if (which == 2) {
            po.channels = ch;
            po.n_channels = 2;
        }
        rm_prune_report rep;
        rc = rm_prune(m, &path, 1, &po, &rep, &log, &err);
        rm_prune_report_free(&rep);
        layers = true;
    } else if (which == 3) { /* prune globally */
        rm_prune_options po = {.ratio = (h & 1) ? 0.3 : 0.9, .criterion = 2, .global = true};
        rm_prune_report rep;
        rc = rm_prune(m, NULL, 0, &po, &rep, &log, &err);
        rm_prune_report_free(&rep);
        layers = true;
    } else { /* fold-bn */
        int n;
        rc = rm_fold_bn(m, &n, &log, &err);
    }
    rm_findings_free(&log);
    if (rc == 0)
        after_edit(orig, m, macs, (h & 64) != 0, layers && (h & 32), (h & 0x300) == 0x300 ? 1 + (int)(h >> 10 & 1) : 0);
    rm_model_free(m);
}

static uint64_t hash(const uint8_t *data, size_t size)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

int rm_fuzz_edit_one(const uint8_t *data, size_t size)
{
    rm_model *m = NULL;
    if (load(&m, data, size) != 0) {
        remove_folder();
        return 0;
    }
    int64_t macs = look(m);
    /* which edits, on which conv, and what follows them, from the input's hash: every
     * mutant takes another path, and one execution costs two edits, not eight (a valid
     * CNN takes about 0.1 s per edit with its verification under the sanitizers) */
    uint64_t h = hash(data, size);
    if (h & 1)
        run_small(m, macs);
    char paths[CONVS_MAX][256];
    int64_t cin[CONVS_MAX], cout[CONVS_MAX];
    int nd[CONVS_MAX];
    int n = convs(m, paths, cin, cout, nd);
    int first = (int)((h >> 1) % 5), second = (int)((h >> 4) % 5);
    for (int e = 0; e < 2; e++) {
        int which = e ? second : first, k = n ? (int)((h >> (7 + e)) % (uint64_t)n) : 0;
        if (e && second == first)
            break;
        if (which <= 2 && n == 0)
            continue; /* a conv edit needs a conv */
        edit(m, macs, which, which <= 2 ? paths[k] : NULL, which <= 2 ? cin[k] : 0, which <= 2 ? cout[k] : 0,
             which <= 2 ? nd[k] : 2, (uint32_t)(h >> (9 + 12 * e)));
    }
    rm_model_free(m);
    remove_folder(); /* per input, not at exit: a forked test child exits without atexit */
    return 0;
}
