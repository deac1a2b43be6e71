/* remodel show: the module tree of a model, printed the way print(model) prints it. */
#include "cli.h"
#include "rm_json.h"
#include "rm_tree.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void json_module(struct rm_json *j, const struct rm_tree *t, const struct rm_module *m,
                        int level, int max_depth)
{
    const struct rm_graph *g = t->g;
    rm_json_obj_begin(j);
    rm_json_key(j, "path");
    rm_json_str(j, m->path);
    rm_json_key(j, "name");
    rm_json_str(j, m->name);
    rm_json_key(j, "type");
    rm_json_str(j, m->type);
    rm_json_key(j, "type_known");
    rm_json_bool(j, m->type_known);
    rm_json_key(j, "nodes");
    rm_json_arr_begin(j);
    for (size_t i = 0; i < m->n_nodes; i++)
        rm_json_str(j, rm_graph_node_label(g, (size_t)m->nodes[i]));
    rm_json_arr_end(j);
    if (!m->n_children && m->n_nodes) {
        char line[512];
        rm_module_repr_line(m, line, sizeof line);
        rm_json_key(j, "repr");
        rm_json_str(j, line);
        rm_json_key(j, "args");
        rm_json_obj_begin(j);
        for (int i = 0; i < m->n_args; i++) {
            const struct rm_arg *a = &m->args[i];
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
        rm_json_obj_end(j);
        if (m->bn_folded) {
            rm_json_key(j, "bn_folded");
            rm_json_bool(j, true);
        }
        rm_json_key(j, "params");
        rm_json_obj_begin(j);
        for (size_t i = 0; i < m->n_params; i++) {
            const struct rm_param *p = &m->params[i];
            rm_json_key(j, p->role);
            rm_json_str(j, p->init >= 0 ? g->proto->initializer[p->init]->name
                                        : g->values[p->value].name);
        }
        rm_json_obj_end(j);
    }
    rm_json_key(j, "children");
    rm_json_arr_begin(j);
    bool collapsed = max_depth >= 0 && level >= max_depth && m->n_children;
    if (!collapsed)
        for (size_t i = 0; i < m->n_children; i++)
            json_module(j, t, m->children[i], level + 1, max_depth);
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
            if (cli_parse_int(optarg, 0, RM_TREE_MAX_DEPTH + 1, &depth))
                return cli_usage(&cli_cmd_show, "--depth needs an integer from 0 to %d, got '%s'",
                                 RM_TREE_MAX_DEPTH + 1, optarg);
        } else {
            return cli_usage(&cli_cmd_show, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    int npos = argc - optind;
    if (npos < 1 || npos > 2)
        return cli_usage(&cli_cmd_show, npos ? "expected MODEL [PATH], got %d arguments"
                                             : "missing MODEL%.0d", npos);
    const char *file = argv[optind], *path = npos == 2 ? argv[optind + 1] : "";

    struct rm_error err;
    rm_error_clear(&err);
    struct rm_model *m = NULL;
    const struct rm_tree *t = NULL;
    int rc = CLI_BAD;
    if (rm_model_load(&m, file, NULL, &err) || !(t = rm_model_tree(m, &err))) {
        rc = cli_fail(&err);
        goto done;
    }
    const struct rm_module *mod;
    if (rm_tree_lookup(t, path, &mod, &err)) {
        rm_error_prefix(&err, "%s", file);
        rc = cli_fail(&err);
        goto done;
    }
    if (json) {
        struct rm_json j;
        rm_json_init(&j, stdout);
        rm_json_obj_begin(&j);
        rm_json_key(&j, "file");
        rm_json_str(&j, file);
        rm_json_key(&j, "scoped");
        rm_json_bool(&j, t->scoped);
        rm_json_key(&j, "module");
        json_module(&j, t, mod, 0, (int)depth);
        rm_json_key(&j, "unplaced");
        rm_json_arr_begin(&j);
        for (size_t i = 0; i < t->n_unplaced; i++) {
            rm_json_obj_begin(&j);
            rm_json_key(&j, "name");
            rm_json_str(&j, rm_graph_node_label(t->g, (size_t)t->unplaced[i]));
            rm_json_key(&j, "op");
            rm_json_str(&j, t->g->nodes[t->unplaced[i]].proto->op_type);
            rm_json_obj_end(&j);
        }
        rm_json_arr_end(&j);
        rm_json_obj_end(&j);
        rm_json_end(&j);
    } else {
        char *text = rm_tree_repr(t, mod, (int)depth);
        if (!text) {
            rm_error_set(&err, RM_ENOMEM, "%s: out of memory printing the module tree", file);
            rc = cli_fail(&err);
            goto done;
        }
        fputs(text, stdout);
        fputc('\n', stdout);
        free(text);
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
