/* remodel show: the module tree of a model, printed the way print(model) prints it. */
#include "cli.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Deepest --depth accepted: one more than any tree remodel builds. */
#define MAX_DEPTH (RM_MAX_MODULE_DEPTH + 1)

static void json_arg(rm_json *j, const rm_arg *a)
{
    rm_json_key(j, a->key);
    switch (a->type) {
    case RM_ARG_INT:
        rm_json_int(j, a->i[0]);
        break;
    case RM_ARG_INTS:
        rm_json_arr_begin(j);
        for (int k = 0; k < a->n; k++)
            rm_json_int(j, a->i[k]);
        rm_json_arr_end(j);
        break;
    case RM_ARG_FLOAT:
        rm_json_num(j, a->f);
        break;
    case RM_ARG_BOOL:
        rm_json_bool(j, a->i[0] != 0);
        break;
    default:
        rm_json_str(j, a->s);
        break;
    }
}

static void json_module(rm_json *j, rm_model *m, size_t i, int level, int max_depth)
{
    rm_module_info mi;
    rm_model_module(m, i, &mi);
    rm_json_obj_begin(j);
    cli_kv_str(j, "path", mi.path);
    cli_kv_str(j, "name", mi.name);
    cli_kv_str(j, "type", mi.type);
    cli_kv_bool(j, "type_known", mi.type_known);
    cli_kv_str(j, "source", mi.source);
    if (mi.qualname)
        cli_kv_str(j, "qualname", mi.qualname);
    rm_json_key(j, "nodes");
    rm_json_arr_begin(j);
    for (size_t k = 0; k < mi.n_nodes; k++)
        rm_json_str(j, rm_module_node(m, i, k));
    rm_json_arr_end(j);
    if (mi.leaf) {
        char line[512];
        rm_module_repr(m, i, line, sizeof line);
        cli_kv_str(j, "repr", line);
        rm_json_key(j, "args");
        rm_json_obj_begin(j);
        for (size_t k = 0; k < mi.n_args; k++)
            json_arg(j, rm_module_arg(m, i, k));
        rm_json_obj_end(j);
        if (mi.bn_folded)
            cli_kv_bool(j, "bn_folded", true);
        rm_json_key(j, "params");
        rm_json_obj_begin(j);
        for (size_t k = 0; k < mi.n_params; k++) {
            const char *role, *tensor;
            if (rm_module_param(m, i, k, &role, &tensor) == 0) {
                rm_json_key(j, role);
                rm_json_str(j, tensor);
            }
        }
        rm_json_obj_end(j);
    }
    rm_json_key(j, "children");
    rm_json_arr_begin(j);
    bool collapsed = max_depth >= 0 && level >= max_depth && mi.n_children;
    if (!collapsed)
        for (size_t k = 0; k < mi.n_children; k++)
            json_module(j, m, rm_module_child(m, i, k), level + 1, max_depth);
    rm_json_arr_end(j);
    if (collapsed)
        cli_kv_bool(j, "collapsed", true);
    rm_json_obj_end(j);
}

/* Module k's path, then those of its subtree (down to max_depth levels below it, < 0: all),
 * one per line; control characters become '?' so that every path is one line. */
static void print_paths(rm_model *m, size_t k, int level, int max_depth)
{
    rm_module_info mi;
    rm_model_module(m, k, &mi);
    if (mi.path[0]) {
        for (const char *c = mi.path; *c; c++)
            putchar((unsigned char)*c < 0x20 || *c == 0x7f ? '?' : *c);
        putchar('\n');
    }
    if (max_depth >= 0 && level >= max_depth)
        return;
    for (size_t c = 0; c < mi.n_children; c++)
        print_paths(m, rm_module_child(m, k, c), level + 1, max_depth);
}

static int run_show(struct cli_args *a)
{
    const char *file = a->pos[0], *path = a->n_pos == 2 ? a->pos[1] : "";
    long long depth = a->depth;
    rm_error err;
    rm_error_clear(&err);
    rm_model *m = NULL;
    size_t n_modules, mod;
    int rc = CLI_BAD;
    if (rm_model_load(&m, file, NULL, &err) || rm_model_modules(m, &n_modules, &err)) {
        rc = cli_fail(&err);
        goto done;
    }
    if (rm_model_find_module(m, path, &mod, &err)) {
        rc = cli_fail_in(&err, "%s", file);
        goto done;
    }
    if (a->paths) {
        print_paths(m, mod, 0, (int)depth);
    } else if (a->json) {
        rm_json j;
        rm_json_init(&j, stdout);
        rm_json_obj_begin(&j);
        rm_json_key(&j, "file");
        rm_json_str(&j, file);
        rm_json_key(&j, "scoped");
        rm_json_bool(&j, rm_model_scoped(m));
        rm_json_key(&j, "module");
        json_module(&j, m, mod, 0, (int)depth);
        rm_json_key(&j, "unplaced");
        rm_json_arr_begin(&j);
        for (size_t i = 0; i < rm_model_n_unplaced(m); i++) {
            const char *name, *op;
            rm_model_unplaced(m, i, &name, &op);
            rm_json_obj_begin(&j);
            rm_json_key(&j, "name");
            rm_json_str(&j, name);
            rm_json_key(&j, "op");
            rm_json_str(&j, op);
            rm_json_obj_end(&j);
        }
        rm_json_arr_end(&j);
        rm_json_obj_end(&j);
        rm_json_end(&j);
    } else {
        char *text = rm_model_repr(m, mod, (int)depth, &err);
        if (!text) {
            rc = cli_fail_in(&err, "%s", file);
            goto done;
        }
        fputs(text, stdout);
        fputc('\n', stdout);
        rm_free(text);
    }
    rc = CLI_OK;
done:
    rm_model_free(m);
    return rc;
}

static const struct cli_pos show_pos[] = {
    CLI_POS_MODEL,
    {"PATH", CLI_OPTIONAL, CLI_C_MODULE, "the module to print ('layer4.0.conv1' or 'layer4[0].conv1'); the whole model "
                                        "when not given"},
    {0},
};

static const struct cli_opt show_opts[] = {
    {.name = "depth", .metavar = "N", CLI_I(depth), .min = 0, .max = MAX_DEPTH,
     .help = "show N levels below the printed module; deeper containers are collapsed to 'Type(...)'"},
    {CLI_JSON_FIELDS(": file, scoped, module, unplaced. Every module object has path (dotted, \"\" for the root), "
                 "name, type, type_known, source (what gave its path: dynamo, scope, param, tensor, slash, "
                 "derived, none), qualname (the exporter's class name, when it wrote one), nodes (ONNX node names of its own forward: all its nodes for a leaf, "
                 "functional ops such as Add or Concat for a container) and children; leaves also have repr, "
                 "args and params (initializer names by role, Identity helpers followed). With --depth, "
                 "containers cut off have \"children\": [] and \"collapsed\": true"), .group = 'j'},
    {.name = "paths", CLI_F(paths), .group = 'j',
     .help = "print the path of every module (below PATH, down to --depth), one per line in the order print(model) "
             "shows them; what the bash completion offers"},
    {0},
};

const struct cli_cmd cli_cmd_show = {
    .name = "show",
    .summary = "module tree, as PyTorch prints it",
    .about = "Shows the nn.Module hierarchy rebuilt from the export's scope names, or only the subtree at PATH, "
             "the way PyTorch's print(model) does.",
    .pos = show_pos,
    .opts = show_opts,
    .notes = "Modules come, in this order of trust, from the module hierarchy PyTorch's dynamo exporter writes into "
             "each node's metadata (exact paths and classes), from the scopes the TorchScript exporter writes into "
             "node names ('/layer1/layer1.0/conv1/Conv' is layer1.0.conv1), from parameter names "
             "('layer1.0.conv1.weight', paddle's 'conv2d_3.w_0'), from output names ('relu_3.tmp_0') and from "
             "'/'-separated node names (tf2onnx's 'model/conv2d_3/Conv2D'); a Conv nothing names gets a path made "
             "from its node name or 'conv_<k>'. What ONNX does not record is shown as follows:\n"
             "- modules that leave no node (BatchNorm folded into Conv, Dropout, Identity) are not shown; "
             "children appear in the order they are first called\n"
             "- activations are shown with inplace=True (torchvision's choice), which ONNX does not record; "
             "AdaptiveAvgPool2d is shown as output_size=(1, 1)\n"
             "- a Conv2d into which the export folded a BatchNorm (weights named 'onnx::...') shows bias=False, "
             "as a conv followed by BatchNorm is written in PyTorch; its ONNX bias is the folded one (--json: "
             "bn_folded, params.bias)\n"
             "- container classes are named by the dynamo exporter's metadata, or when their children and ops "
             "identify them (ResNet, BasicBlock, Bottleneck, SqueezeExcitation, ...); numbered containers that "
             "run as a chain show as Sequential, others as Module (unknown, never guessed)\n"
             "- nodes that belong to no module are listed under '(unplaced)'\n"
             "Exit status: 0 ok, 2 unreadable model or unknown PATH (the nearest paths are named).",
    .run = run_show,
};
