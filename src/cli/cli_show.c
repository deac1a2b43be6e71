/* remodel show: the module tree of a model, printed the way print(model) prints it. */
#include "cli.h"

#include <getopt.h>
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
    rm_json_key(j, "path");
    rm_json_str(j, mi.path);
    rm_json_key(j, "name");
    rm_json_str(j, mi.name);
    rm_json_key(j, "type");
    rm_json_str(j, mi.type);
    rm_json_key(j, "type_known");
    rm_json_bool(j, mi.type_known);
    rm_json_key(j, "nodes");
    rm_json_arr_begin(j);
    for (size_t k = 0; k < mi.n_nodes; k++)
        rm_json_str(j, rm_module_node(m, i, k));
    rm_json_arr_end(j);
    if (mi.leaf) {
        char line[512];
        rm_module_repr(m, i, line, sizeof line);
        rm_json_key(j, "repr");
        rm_json_str(j, line);
        rm_json_key(j, "args");
        rm_json_obj_begin(j);
        for (size_t k = 0; k < mi.n_args; k++)
            json_arg(j, rm_module_arg(m, i, k));
        rm_json_obj_end(j);
        if (mi.bn_folded) {
            rm_json_key(j, "bn_folded");
            rm_json_bool(j, true);
        }
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
    if (collapsed) {
        rm_json_key(j, "collapsed");
        rm_json_bool(j, true);
    }
    rm_json_obj_end(j);
}

static int run_show(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"depth", required_argument, NULL, 'd'}, {0, 0, 0, 0}};
    int json = 0, c;
    long long depth = -1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'j')
            json = 1;
        else if (c == 'd') {
            if (cli_parse_int(optarg, 0, MAX_DEPTH, &depth))
                return cli_usage(&cli_cmd_show, "--depth needs an integer from 0 to %d, got '%s'", MAX_DEPTH,
                                 optarg);
        } else {
            return cli_usage(&cli_cmd_show, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    int npos = argc - optind;
    if (npos < 1 || npos > 2)
        return cli_usage(&cli_cmd_show, npos ? "expected MODEL [PATH], got %d arguments"
                                             : "missing MODEL%.0d", npos);
    const char *file = argv[optind], *path = npos == 2 ? argv[optind + 1] : "";

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
    if (json) {
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

const struct cli_cmd cli_cmd_show = {
    "show", "MODEL [PATH] [--depth N] [--json]",
    "Print the module tree the way PyTorch's print(model) does.\n"
    "Shows the nn.Module hierarchy rebuilt from the export's scope names, or only the\n"
    "subtree at PATH ('layer4.0.conv1' or 'layer4[0].conv1').",
    "options:\n"
    "  --depth N   show N levels below the printed module; deeper containers are\n"
    "              collapsed to 'Type(...)'\n"
    "  --json      print one JSON document on stdout: file, scoped, module, unplaced.\n"
    "              Every module object has path (dotted, \"\" for the root), name, type,\n"
    "              type_known, nodes (ONNX node names of its own forward: all its nodes\n"
    "              for a leaf, functional ops such as Add or Concat for a container) and\n"
    "              children; leaves also have repr, args and params (initializer names\n"
    "              by role, Identity helpers followed). With --depth, containers cut\n"
    "              off have \"children\": [] and \"collapsed\": true\n"
    "\n"
    "Modules come from the scopes torch.onnx.export writes into node names\n"
    "('/layer1/layer1.0/conv1/Conv' is layer1.0.conv1), or from parameter names\n"
    "('layer1.0.conv1.weight') for exporters that write none. What ONNX does not record\n"
    "is shown as follows:\n"
    "  - modules that leave no node (BatchNorm folded into Conv, Dropout, Identity) are\n"
    "    not shown; children appear in the order they are first called\n"
    "  - activations are shown with inplace=True (torchvision's choice), which ONNX\n"
    "    does not record; AdaptiveAvgPool2d is shown as output_size=(1, 1)\n"
    "  - a Conv2d into which the export folded a BatchNorm (weights named 'onnx::...')\n"
    "    shows bias=False, as a conv followed by BatchNorm is written in PyTorch; its\n"
    "    ONNX bias is the folded one (--json: bn_folded, params.bias)\n"
    "  - container classes are named when their children identify them (ResNet,\n"
    "    BasicBlock, Bottleneck, SqueezeExcitation, ...); numbered containers show as\n"
    "    Sequential (also Sequential subclasses such as Conv2dNormActivation), others\n"
    "    as Module\n"
    "  - nodes that belong to no module are listed under '(unplaced)'\n"
    "exit status: 0 ok, 2 unreadable model or unknown PATH (the nearest paths are named).\n",
    run_show,
};
