/* remodel info / check / save: look at a model and write it back. */
#include "cli.h"
#include "rm_check.h"
#include "rm_info.h"
#include "rm_json.h"
#include "rm_extdata.h"
#include "rm_shape.h"

#include <getopt.h>
#include <inttypes.h>
#include <string.h>

/* Collect positional arguments after getopt; returns their count. */
static int positionals(int argc, char **argv, char **pos, int max)
{
    int n = 0;
    for (int i = optind; i < argc; i++) {
        if (n < max)
            pos[n] = argv[i];
        n++;
    }
    return n;
}

static int bad_option(const struct cli_cmd *cmd, char **argv)
{
    return cli_usage(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
}

/* Load path and index its graph (with shapes when `shapes`); on failure print and
 * return CLI_BAD. */
static int open_model(const char *path, struct rm_model **m, const struct rm_graph **g, bool shapes)
{
    struct rm_error err;
    rm_error_clear(&err);
    if (rm_model_load(m, path, NULL, &err))
        return cli_fail(&err);
    if (!(*g = shapes ? rm_model_graph(*m, &err) : rm_model_index(*m, &err))) {
        rm_model_free(*m);
        *m = NULL;
        return cli_fail(&err);
    }
    return CLI_OK;
}

/* ---- info ------------------------------------------------------------------ */

static void dims_text(const Onnx__ValueInfoProto *vi, char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = '\0';
    if (!vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
        !vi->type->tensor_type->shape) {
        snprintf(buf, n, "?");
        return;
    }
    const Onnx__TensorShapeProto *s = vi->type->tensor_type->shape;
    off += (size_t)snprintf(buf + off, n - off, "[");
    for (size_t i = 0; i < s->n_dim && off < n; i++) {
        const Onnx__TensorShapeProto__Dimension *d = s->dim[i];
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
            off += (size_t)snprintf(buf + off, n - off, "%s%" PRId64, i ? ", " : "", d->dim_value);
        else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM)
            off += (size_t)snprintf(buf + off, n - off, "%s%s", i ? ", " : "", d->dim_param);
        else
            off += (size_t)snprintf(buf + off, n - off, "%s?", i ? ", " : "");
    }
    if (off < n)
        snprintf(buf + off, n - off, "]");
}

static int32_t vi_elem(const Onnx__ValueInfoProto *vi)
{
    if (vi->type && vi->type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE &&
        vi->type->tensor_type->has_elem_type)
        return vi->type->tensor_type->elem_type;
    return 0;
}

static void json_io(struct rm_json *j, Onnx__ValueInfoProto **vis, size_t n, const struct rm_graph *g)
{
    rm_json_arr_begin(j);
    for (size_t i = 0; i < n; i++) {
        const Onnx__ValueInfoProto *vi = vis[i];
        int v = vi->name ? rm_graph_find(g, vi->name) : -1;
        if (v >= 0 && g->values[v].init >= 0)
            continue; /* old exporters list initializers as inputs */
        rm_json_obj_begin(j);
        rm_json_key(j, "name");
        rm_json_str(j, vi->name ? vi->name : "");
        rm_json_key(j, "type");
        rm_json_str(j, rm_dtype_name(vi_elem(vi)));
        rm_json_key(j, "shape");
        if (vi->type && vi->type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE &&
            vi->type->tensor_type->shape) {
            const Onnx__TensorShapeProto *s = vi->type->tensor_type->shape;
            rm_json_arr_begin(j);
            for (size_t d = 0; d < s->n_dim; d++) {
                if (s->dim[d]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
                    rm_json_int(j, s->dim[d]->dim_value);
                else if (s->dim[d]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM)
                    rm_json_str(j, s->dim[d]->dim_param);
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

static void text_io(const char *label, Onnx__ValueInfoProto **vis, size_t n, const struct rm_graph *g)
{
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        const Onnx__ValueInfoProto *vi = vis[i];
        int v = vi->name ? rm_graph_find(g, vi->name) : -1;
        if (v >= 0 && g->values[v].init >= 0)
            continue;
        char dims[256];
        dims_text(vi, dims, sizeof dims);
        printf("%-12s %s %s %s\n", first ? label : "", vi->name ? vi->name : "",
               rm_dtype_name(vi_elem(vi)), dims);
        first = 0;
    }
    if (first)
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

static int run_info(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {0, 0, 0, 0}};
    int json = 0, c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'j')
            json = 1;
        else
            return bad_option(&cli_cmd_info, argv);
    }
    char *pos[1];
    int npos = positionals(argc, argv, pos, 1);
    if (npos != 1)
        return cli_usage(&cli_cmd_info, npos ? "expected one MODEL, got %d arguments" : "missing MODEL%.0d", npos);

    struct rm_model *m;
    const struct rm_graph *g;
    int rc = open_model(pos[0], &m, &g, true);
    if (rc)
        return rc;
    struct rm_error err;
    struct rm_info info;
    if (rm_info_compute(g, &info, &err)) {
        rm_model_free(m);
        return cli_fail(&err);
    }
    const Onnx__ModelProto *mp = m->proto;
    const Onnx__GraphProto *gp = mp->graph;
    if (json) {
        struct rm_json j;
        rm_json_init(&j, stdout);
        rm_json_obj_begin(&j);
        rm_json_key(&j, "file");
        rm_json_str(&j, pos[0]);
        rm_json_key(&j, "file_bytes");
        rm_json_int(&j, (int64_t)m->file_size);
        rm_json_key(&j, "ir_version");
        rm_json_int(&j, mp->ir_version);
        rm_json_key(&j, "producer_name");
        rm_json_str(&j, mp->producer_name ? mp->producer_name : "");
        rm_json_key(&j, "producer_version");
        rm_json_str(&j, mp->producer_version ? mp->producer_version : "");
        rm_json_key(&j, "opsets");
        rm_json_arr_begin(&j);
        for (size_t i = 0; i < mp->n_opset_import; i++) {
            rm_json_obj_begin(&j);
            rm_json_key(&j, "domain");
            rm_json_str(&j, mp->opset_import[i]->domain ? mp->opset_import[i]->domain : "");
            rm_json_key(&j, "version");
            rm_json_int(&j, mp->opset_import[i]->version);
            rm_json_obj_end(&j);
        }
        rm_json_arr_end(&j);
        rm_json_key(&j, "inputs");
        json_io(&j, gp->input, gp->n_input, g);
        rm_json_key(&j, "outputs");
        json_io(&j, gp->output, gp->n_output, g);
        rm_json_key(&j, "nodes");
        rm_json_int(&j, (int64_t)gp->n_node);
        rm_json_key(&j, "ops");
        rm_json_obj_begin(&j);
        for (size_t i = 0; i < info.n_ops; i++) {
            rm_json_key(&j, info.ops[i].op);
            rm_json_int(&j, info.ops[i].count);
        }
        rm_json_obj_end(&j);
        rm_json_key(&j, "initializers");
        rm_json_int(&j, (int64_t)gp->n_initializer);
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
        printf("%-12s %s (%zu bytes)\n", "model", pos[0], m->file_size);
        printf("%-12s %" PRId64 "\n", "ir_version", mp->ir_version);
        printf("%-12s %s %s\n", "producer", mp->producer_name ? mp->producer_name : "",
               mp->producer_version ? mp->producer_version : "");
        for (size_t i = 0; i < mp->n_opset_import; i++)
            printf("%-12s %s %" PRId64 "\n", i ? "" : "opsets",
                   mp->opset_import[i]->domain && mp->opset_import[i]->domain[0]
                       ? mp->opset_import[i]->domain : "ai.onnx",
                   mp->opset_import[i]->version);
        text_io("inputs", gp->input, gp->n_input, g);
        text_io("outputs", gp->output, gp->n_output, g);
        printf("%-12s %zu:", "nodes", gp->n_node);
        for (size_t i = 0; i < info.n_ops; i++)
            printf(" %s %d%s", info.ops[i].op, info.ops[i].count, i + 1 < info.n_ops ? "," : "");
        printf("\n");
        human((double)info.params, a, sizeof a);
        human((double)info.param_bytes, b, sizeof b);
        printf("%-12s %" PRId64 " (%s) in %zu initializers, %sB\n", "params", info.params, a,
               gp->n_initializer, b);
        if (info.macs >= 0) {
            human((double)info.macs, a, sizeof a);
            printf("%-12s %" PRId64 " (%s)\n", "MACs", info.macs, a);
        } else {
            printf("%-12s unknown (some shapes could not be inferred)\n", "MACs");
        }
    }
    rm_info_free(&info);
    rm_model_free(m);
    return CLI_OK;
}

const struct cli_cmd cli_cmd_info = {
    "info", "MODEL [--json]",
    "Summarise a model: versions, inputs/outputs, ops, parameters, MACs.\n"
    "Shows IR version, opsets, producer, graph inputs and outputs with shapes, node\n"
    "count and op histogram, parameter count and bytes, and MACs of Conv/Gemm/MatMul.",
    "options:\n"
    "  --json   print one JSON document on stdout: file, file_bytes, ir_version,\n"
    "           producer_name, producer_version, opsets, inputs, outputs (name, type,\n"
    "           shape), nodes, ops, initializers, params, param_bytes, macs (null when\n"
    "           a shape cannot be inferred; dynamic dimensions count as 1)\n",
    run_info,
};

/* ---- check ----------------------------------------------------------------- */

static void print_finding(void *ctx, const char *msg)
{
    printf("%s: %s\n", (const char *)ctx, msg);
}

static int run_check(int argc, char **argv)
{
    static const struct option opts[] = {{0, 0, 0, 0}};
    if (getopt_long(argc, argv, "", opts, NULL) != -1)
        return bad_option(&cli_cmd_check, argv);
    char *pos[1];
    int npos = positionals(argc, argv, pos, 1);
    if (npos != 1)
        return cli_usage(&cli_cmd_check, "expected one MODEL, got %d arguments", npos);
    struct rm_model *m;
    const struct rm_graph *g;
    int rc = open_model(pos[0], &m, &g, false);
    if (rc)
        return rc;
    int n = rm_check_model(g, print_finding, pos[0]);
    if (n == 0)
        printf("%s: ok (%zu nodes, %zu initializers)\n", pos[0], g->n_nodes, g->proto->n_initializer);
    else
        printf("%s: %d finding%s\n", pos[0], n, n == 1 ? "" : "s");
    rm_model_free(m);
    return n ? CLI_FINDINGS : CLI_OK;
}

const struct cli_cmd cli_cmd_check = {
    "check", "MODEL",
    "Validation at least as strict as onnx's checker; exit 1 with one line per finding.\n"
    "Checks that every node input is produced by an earlier node, an initializer or a\n"
    "graph input; names are unique; nodes are topologically sorted; tensor data\n"
    "matches its dims and type; and, against the ONNX operator schemas, that every\n"
    "op exists in its imported opset with known, well-typed and required attributes,\n"
    "input/output counts and element types the schema accepts, and that graph inputs\n"
    "naming an initializer agree with it.",
    "Prints one line per finding, 'MODEL: FINDING', then a count; warnings\n"
    "('MODEL: warning: ...': custom domains, opsets newer than the schemas) do not\n"
    "count.\n"
    "exit status: 0 clean, 1 findings, 2 the file cannot be read as ONNX at all.\n",
    run_check,
};

/* ---- save ------------------------------------------------------------------ */

static int run_save(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"external-data", required_argument, NULL, 'x'},
                                         {0, 0, 0, 0}};
    const char *out = NULL;
    struct rm_save_opts so = {0};
    int c;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        if (c == 'o')
            out = optarg;
        else if (c == 'x')
            so.external_data = optarg;
        else
            return bad_option(&cli_cmd_save, argv);
    }
    char *pos[1];
    int npos = positionals(argc, argv, pos, 1);
    if (npos != 1)
        return cli_usage(&cli_cmd_save, "expected one MODEL, got %d arguments", npos);
    if (!out)
        return cli_usage(&cli_cmd_save, "missing -o OUT");
    struct cli_outputs outs = {0};
    if (cli_model_outputs(&outs, out, so.external_data))
        return CLI_BAD;
    struct rm_error err;
    rm_error_clear(&err);
    struct rm_model *m;
    if (rm_model_load(&m, pos[0], NULL, &err))
        return cli_fail(&err);
    if (cli_outputs_guard(&outs, m)) {
        rm_model_free(m);
        return CLI_BAD;
    }
    int rc = rm_model_save_ex(m, out, &so, &err);
    rm_model_free(m);
    return rc ? cli_fail(&err) : CLI_OK;
}

const struct cli_cmd cli_cmd_save = {
    "save", "MODEL -o OUT [--external-data FILE]",
    "Re-serialize a model, atomically.\n"
    "Loads MODEL and writes it back to OUT. With no edit the output is byte-identical\n"
    "to the input for models written by torch.onnx.export.",
    "options:\n"
    "  -o, --output OUT   file to write; written atomically (temporary file in OUT's\n"
    "                     folder, fsync, rename), so a failure leaves no partial file\n"
    "                     and OUT may name MODEL itself\n"
    "  --external-data FILE\n"
    "                     write every initializer of 1 KB or more to FILE (a plain\n"
    "                     file name, created beside OUT) at 4096-aligned offsets, and\n"
    "                     refer to it from OUT as ONNX external data; needed for\n"
    "                     models over protobuf's 2 GB limit. FILE may be neither OUT\n"
    "                     nor a file MODEL reads its weights from\n"
    "\n"
    "Models that use external data are read from files beside them (by mmap); a\n"
    "location that is absolute, contains '..' or resolves outside the model's folder\n"
    "is refused. Outputs are checked before anything is read: the folder must exist,\n"
    "and an existing OUT must be a regular file (its mode is kept).\n",
    run_save,
};
