/* remodel info / check / save: look at a model and write it back. */
#include "cli.h"

#include <sys/stat.h>
#include <inttypes.h>
#include <string.h>

/* ---- info ------------------------------------------------------------------ */

/* "[1, 3, 224, 224]", symbolic dims by name, "?" without a shape. */
static void dims_text(const rm_value_info *vi, char *buf, size_t n)
{
    if (vi->rank < 0) {
        snprintf(buf, n, "?");
        return;
    }
    size_t off = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < vi->rank && off < n; i++) {
        if (vi->dims[i] >= 0)
            off += (size_t)snprintf(buf + off, n - off, "%s%" PRId64, i ? ", " : "", vi->dims[i]);
        else
            off += (size_t)snprintf(buf + off, n - off, "%s%s", i ? ", " : "", vi->dim_names[i] ? vi->dim_names[i] : "?");
    }
    if (off < n)
        snprintf(buf + off, n - off, "]");
}

static void json_io(rm_json *j, const rm_value_info *vis, size_t n)
{
    rm_json_arr_begin(j);
    for (size_t i = 0; i < n; i++) {
        const rm_value_info *vi = &vis[i];
        rm_json_obj_begin(j);
        cli_kv_str(j, "name", vi->name);
        cli_kv_str(j, "type", rm_dtype_name(vi->dtype));
        rm_json_key(j, "shape");
        if (vi->rank >= 0) {
            rm_json_arr_begin(j);
            for (int d = 0; d < vi->rank; d++) {
                if (vi->dims[d] >= 0)
                    rm_json_int(j, vi->dims[d]);
                else if (vi->dim_names[d])
                    rm_json_str(j, vi->dim_names[d]);
                else
                    rm_json_null(j);
            }
            rm_json_arr_end(j);
        } else {
            rm_json_null(j);
        }
        rm_json_obj_end(j);
    }
    rm_json_arr_end(j);
}

static void text_io(const char *label, const rm_value_info *vis, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char dims[256];
        dims_text(&vis[i], dims, sizeof dims);
        printf("%-12s %s %s %s\n", i ? "" : label, vis[i].name, rm_dtype_name(vis[i].dtype), dims);
    }
    if (!n)
        printf("%-12s (none)\n", label);
}

static void human(double v, char *buf, size_t n)
{
    const char *units[] = {"", "K", "M", "G", "T"};
    int u = 0;
    while (v >= 1000 && u < 4) {
        v /= 1000;
        u++;
    }
    snprintf(buf, n, u ? "%.2f %s" : "%.0f%s", v, units[u]);
}

static int run_info(struct cli_args *a)
{
    const char *file = a->pos[0];
    rm_model *m = NULL;
    rm_error err;
    rm_info info;
    rm_error_clear(&err);
    if (rm_model_load(&m, file, NULL, &err)) {
        rm_model_free(m);
        return cli_fail(&err);
    }
    if (cli_input_shapes(m, &a->input_shapes, false)) {
        rm_model_free(m);
        return CLI_BAD;
    }
    if (rm_model_info(m, &info, &err)) {
        rm_model_free(m);
        return cli_fail(&err);
    }
    rm_error dyn;
    bool sizes_known = rm_model_check_inputs(m, NULL, &dyn) == 0;
    if (sizes_known)
        cli_note_batch(m);
    if (a->json) {
        rm_json j;
        rm_json_init(&j, stdout);
        rm_json_obj_begin(&j);
        rm_json_key(&j, "file");
        rm_json_str(&j, file);
        rm_json_key(&j, "file_bytes");
        rm_json_int(&j, (int64_t)info.file_bytes);
        rm_json_key(&j, "ir_version");
        rm_json_int(&j, info.ir_version);
        rm_json_key(&j, "producer_name");
        rm_json_str(&j, info.producer_name);
        rm_json_key(&j, "producer_version");
        rm_json_str(&j, info.producer_version);
        rm_json_key(&j, "opsets");
        rm_json_arr_begin(&j);
        for (size_t i = 0; i < info.n_opsets; i++) {
            rm_json_obj_begin(&j);
            rm_json_key(&j, "domain");
            rm_json_str(&j, info.opsets[i].domain);
            rm_json_key(&j, "version");
            rm_json_int(&j, info.opsets[i].version);
            rm_json_obj_end(&j);
        }
        rm_json_arr_end(&j);
        rm_json_key(&j, "inputs");
        json_io(&j, info.inputs, info.n_inputs);
        rm_json_key(&j, "outputs");
        json_io(&j, info.outputs, info.n_outputs);
        rm_json_key(&j, "nodes");
        rm_json_int(&j, (int64_t)info.n_nodes);
        rm_json_key(&j, "ops");
        rm_json_obj_begin(&j);
        for (size_t i = 0; i < info.n_ops; i++) {
            rm_json_key(&j, info.ops[i].op);
            rm_json_int(&j, info.ops[i].count);
        }
        rm_json_obj_end(&j);
        rm_json_key(&j, "initializers");
        rm_json_int(&j, (int64_t)info.n_initializers);
        rm_json_key(&j, "params");
        rm_json_int(&j, info.params);
        rm_json_key(&j, "param_bytes");
        rm_json_int(&j, (int64_t)info.param_bytes);
        rm_json_key(&j, "macs");
        if (info.macs >= 0)
            rm_json_int(&j, info.macs);
        else
            rm_json_null(&j);
        rm_json_obj_end(&j);
        rm_json_end(&j);
    } else {
        char a[64], b[64];
        printf("%-12s %s (%" PRIu64 " bytes)\n", "model", file, info.file_bytes);
        printf("%-12s %" PRId64 "\n", "ir_version", info.ir_version);
        printf("%-12s %s %s\n", "producer", info.producer_name, info.producer_version);
        for (size_t i = 0; i < info.n_opsets; i++)
            printf("%-12s %s %" PRId64 "\n", i ? "" : "opsets",
                   info.opsets[i].domain[0] ? info.opsets[i].domain : "ai.onnx", info.opsets[i].version);
        text_io("inputs", info.inputs, info.n_inputs);
        text_io("outputs", info.outputs, info.n_outputs);
        printf("%-12s %zu:", "nodes", info.n_nodes);
        for (size_t i = 0; i < info.n_ops; i++)
            printf(" %s %d%s", info.ops[i].op, info.ops[i].count, i + 1 < info.n_ops ? "," : "");
        printf("\n");
        human((double)info.params, a, sizeof a);
        human((double)info.param_bytes, b, sizeof b);
        printf("%-12s %" PRId64 " (%s) in %zu initializers, %sB\n", "params", info.params, a,
               info.n_initializers, b);
        if (info.macs >= 0) {
            human((double)info.macs, a, sizeof a);
            printf("%-12s %" PRId64 " (%s)\n", "MACs", info.macs, a);
        } else if (!sizes_known) {
            printf("%-12s unknown: dynamic input sizes (give them with --input-shape NAME=D0,D1,...)\n", "MACs");
        } else {
            printf("%-12s unknown (some shapes could not be inferred)\n", "MACs");
        }
    }
    rm_info_free(&info);
    rm_model_free(m);
    return CLI_OK;
}

static const struct cli_pos model_pos[] = {CLI_POS_MODEL, {0}};

static const struct cli_opt info_opts[] = {
    CLI_OPT_INPUT_SHAPE,
    CLI_OPT_JSON(": file, file_bytes, ir_version, producer_name, producer_version, opsets, inputs, "
                 "outputs (name, type, shape), nodes, ops, initializers, params (with those Constant nodes "
                 "hold), param_bytes, macs (null when a size is unknown: a dynamic input dimension other than "
                 "the batch without --input-shape, or an op without a shape rule; a dynamic batch counts as 1)"),
    {0},
};

const struct cli_cmd cli_cmd_info = {
    .name = "info",
    .summary = "summary: opset, inputs/outputs, ops, params, MACs",
    .about = "Shows IR version, opsets, producer, graph inputs and outputs with shapes, node count and op "
             "histogram, parameter count and bytes, and the multiply-accumulates of Conv/Gemm/MatMul.",
    .pos = model_pos,
    .opts = info_opts,
    .run = run_info,
};

/* ---- check ----------------------------------------------------------------- */

static int run_check(struct cli_args *a)
{
    const char *file = a->pos[0];
    rm_model *m = NULL;
    rm_error err;
    rm_findings found = {0};
    rm_info info;
    rm_error_clear(&err);
    if (rm_model_load(&m, file, NULL, &err)) {
        rm_model_free(m);
        return cli_fail(&err);
    }
    int n = rm_model_check(m, &found, &err);
    if (n < 0) {
        rm_findings_free(&found);
        rm_model_free(m);
        return cli_fail(&err);
    }
    /* summarised only for a clean model: info trusts what check verifies */
    bool have_info = n == 0 && rm_model_info(m, &info, &err) == 0;
    if (a->json) {
        rm_json j;
        rm_json_init(&j, stdout);
        rm_json_obj_begin(&j);
        rm_json_key(&j, "file");
        rm_json_str(&j, file);
        rm_json_key(&j, "ok");
        rm_json_bool(&j, n == 0);
        rm_json_key(&j, "problems");
        rm_json_int(&j, n);
        rm_json_key(&j, "warnings");
        rm_json_int(&j, (int64_t)rm_findings_count(&found, RM_FINDING_WARNING));
        rm_json_key(&j, "findings");
        rm_json_arr_begin(&j);
        for (size_t i = 0; i < found.n; i++) {
            rm_json_obj_begin(&j);
            rm_json_key(&j, "kind");
            rm_json_str(&j, found.v[i].kind == RM_FINDING_WARNING ? "warning" : "problem");
            rm_json_key(&j, "text");
            rm_json_str(&j, found.v[i].text);
            rm_json_obj_end(&j);
        }
        rm_json_arr_end(&j);
        rm_json_key(&j, "nodes");
        if (have_info)
            rm_json_int(&j, (int64_t)info.n_nodes);
        else
            rm_json_null(&j);
        rm_json_key(&j, "initializers");
        if (have_info)
            rm_json_int(&j, (int64_t)info.n_initializers);
        else
            rm_json_null(&j);
        rm_json_obj_end(&j);
        rm_json_end(&j);
    } else {
        for (size_t i = 0; i < found.n; i++)
            printf("%s: %s%s\n", file, found.v[i].kind == RM_FINDING_WARNING ? "warning: " : "", found.v[i].text);
        if (n == 0 && have_info)
            printf("%s: ok (%zu nodes, %zu initializers)\n", file, info.n_nodes, info.n_initializers);
        else if (n)
            printf("%s: %d finding%s\n", file, n, n == 1 ? "" : "s");
    }
    if (have_info)
        rm_info_free(&info);
    rm_findings_free(&found);
    rm_model_free(m);
    return n ? CLI_FINDINGS : CLI_OK;
}

static const struct cli_opt check_opts[] = {
    CLI_OPT_JSON(": file, ok (no problem found), problems and warnings (counts), findings [{kind: "
                 "\"problem\" or \"warning\", text}], nodes and initializers (null unless ok)"),
    {0},
};

const struct cli_cmd cli_cmd_check = {
    .name = "check",
    .summary = "validation, at least as strict as onnx's checker; exit 1 with findings",
    .about = "Checks that every node input is produced by an earlier node, an initializer or a graph input; "
             "names are unique; nodes are topologically sorted; tensor data matches its dims and type; and, "
             "against the ONNX operator schemas, that every op exists in its imported opset with known, "
             "well-typed and required attributes, input/output counts and element types the schema accepts, "
             "and that graph inputs naming an initializer agree with it.",
    .pos = model_pos,
    .opts = check_opts,
    .notes = "Prints one line per finding, 'MODEL: FINDING', then a count; warnings ('MODEL: warning: ...': "
             "custom domains, opsets newer than the schemas) do not count.\n"
             "Exit status: 0 clean, 1 findings, 2 the file cannot be read as ONNX at all.",
    .run = run_check,
};

/* ---- save ------------------------------------------------------------------ */

static int run_save(struct cli_args *a)
{
    struct rm_save_options so = {.external_data = a->external_data};
    struct cli_outputs outs = {0};
    if (cli_model_outputs(&outs, a->out, so.external_data))
        return CLI_BAD;
    rm_error err;
    rm_error_clear(&err);
    rm_model *m;
    if (rm_model_load(&m, a->pos[0], NULL, &err))
        return cli_fail(&err);
    if (cli_outputs_guard(&outs, m) || cli_input_shapes(m, &a->input_shapes, true)) {
        rm_model_free(m);
        return CLI_BAD;
    }
    int rc = rm_model_save(m, a->out, &so, &err);
    rm_model_free(m);
    if (rc)
        return cli_fail(&err);
    if (a->json) {
        rm_json j;
        rm_json_init(&j, stdout);
        rm_json_obj_begin(&j);
        rm_json_key(&j, "file");
        rm_json_str(&j, a->pos[0]);
        cli_json_written(&j, &outs);
        rm_json_obj_end(&j);
        rm_json_end(&j);
    }
    return CLI_OK;
}

static const struct cli_opt save_opts[] = {
    CLI_OPT_OUT_MODEL,
    CLI_OPT_EXTERNAL_DATA,
    {.name = "input-shape", .metavar = "NAME=D0,D1,...", CLI_L(input_shapes),
     .help = "rewrite the declared dims of graph input NAME (any sizes, as onnx-simplifier's "
              "--overwrite-input-shape does); the fixed sizes of outputs and value_info follow"},
    CLI_OPT_JSON(": file (MODEL), written [{path, bytes, role: \"model\" or \"external_data\"}]"),
    {0},
};

const struct cli_cmd cli_cmd_save = {
    .name = "save",
    .summary = "re-serialize, atomically",
    .about = "Loads MODEL and writes it back to OUT. With no edit the output is byte-identical to the input "
             "for models written by torch.onnx.export.",
    .pos = model_pos,
    .opts = save_opts,
    .notes = "Models that use external data are read from files beside them (by mmap); a location that is "
             "absolute, contains '..' or resolves outside the model's folder is refused. Outputs are checked "
             "before anything is read: the folder must exist, and an existing OUT must be a regular file (its "
             "mode is kept).",
    .run = run_save,
};
