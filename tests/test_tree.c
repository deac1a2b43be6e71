/* Tests for the module tree (rm_tree): module paths, kinds, arguments and repr compared
 * with what PyTorch itself reports for the exported module (testdata/expected/,
 * testdata/torchvision/ and testdata/trees/, all written by PyTorch scripts), for every
 * exporter style (TorchScript scopes, dynamo metadata, paddle2onnx's parameter and tensor
 * names with Constant-node weights, tf2onnx's '/' names, derived paths), path syntax and
 * suggestions, and hostile names and metadata. */
#include "rm_graph.h"
#include "rm_model.h"
#include "rm_shape.h"
#include "rm_tree.h"
#include "rm_tree_int.h"
#include "test_util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- fixtures --------------------------------------------------------------------- */

/* Shape inference options as rm_model_graph uses them by default. */
static const struct rm_shape_opts SHAPES = {1, 0, NULL};

struct fixture {
    struct rm_model *m;
    struct rm_graph g;
    struct rm_tree *t;
};

static void open_path(struct fixture *f, const char *path)
{
    struct rm_error err;
    rm_error_clear(&err);
    memset(f, 0, sizeof *f);
    ck_assert_msg(rm_model_load(&f->m, path, NULL, &err) == 0, "%s", err.msg);
    ck_assert_msg(rm_graph_init(&f->g, f->m, &err) == 0, "%s", err.msg);
    /* as rm_model_tree does: leaf kinds follow the inferred input ranks */
    ck_assert_msg(rm_shape_infer(&f->g, &SHAPES, &err) == 0, "%s", err.msg);
    ck_assert_msg(rm_tree_build(&f->t, &f->g, &err) == 0, "%s", err.msg);
}

static void open_testdata(struct fixture *f, const char *file)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", rm_test_testdata(), file);
    open_path(f, path);
}

/* Rebuild graph and tree after node names were changed in f->m. */
static void reindex(struct fixture *f)
{
    struct rm_error err;
    rm_tree_free(f->t);
    rm_graph_free(&f->g);
    ck_assert_msg(rm_graph_init(&f->g, f->m, &err) == 0, "%s", err.msg);
    ck_assert_msg(rm_shape_infer(&f->g, &SHAPES, &err) == 0, "%s", err.msg);
    ck_assert_msg(rm_tree_build(&f->t, &f->g, &err) == 0, "%s", err.msg);
}

static void close_fixture(struct fixture *f)
{
    rm_tree_free(f->t);
    rm_graph_free(&f->g);
    rm_model_free(f->m);
}

/* Module of the tree that holds node i, or NULL. */
static const struct rm_module *module_of(const struct fixture *f, int node)
{
    int mi = f->t->node_module[node];
    return mi >= 0 ? f->t->modules[mi] : NULL;
}

static bool is_leaf(const struct rm_module *m)
{
    return rm_module_is_leaf(m);
}

static size_t count_op(const struct rm_graph *g, const char *op)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n_nodes; i++)
        n += !strcmp(g->nodes[i].proto->op_type, op);
    return n;
}

/* What ONNX cannot record, normalised away on both sides before comparing reprs:
 * the inplace flag of activations and the spelling of AdaptiveAvgPool2d's output size
 * (1 and (1, 1) export to the same GlobalAveragePool). Returns a malloc'd string. */
static char *normalize_repr(const char *r)
{
    char *s = malloc(strlen(r) + 16), *o = s;
    for (const char *p = r; *p;) {
        if (!strncmp(p, ", inplace=True", 14)) {
            p += 14;
        } else if (!strncmp(p, "inplace=True", 12)) {
            p += 12;
        } else if (!strncmp(p, "output_size=(1, 1)", 18)) {
            strcpy(o, "output_size=1");
            o += 13;
            p += 18;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return s;
}

/* Leaf types that leave no node in an eval export, whatever the model. */
static bool never_exported(const char *type)
{
    return !strcmp(type, "Dropout") || !strcmp(type, "Identity") ||
           !strcmp(type, "StochasticDepth");
}

/* ---- testdata models against PyTorch's module list --------------------------------- */

static const char *const MODELS[] = {"resnet18", "tiny_resnet", "mobilenet_tiny",
                                     "concat_net", "se_net", "shared_init"};
#define N_MODELS (sizeof MODELS / sizeof MODELS[0])

/* Compare the tree's leaves (modules with nodes and no children) with PyTorch's called
 * leaf modules: the same paths and types, and the same repr (modulo normalize_repr),
 * for every PyTorch leaf that leaves a node (not Dropout/Identity/StochasticDepth, not
 * BatchNorm2d when the export has no BatchNormalization node: folded into the Conv).
 * expect_leaves maps path -> repr (J_OBJ) or is a module list (J_ARR, modules.json). */
static void compare_leaves(const char *name, const struct fixture *f, const struct jv *mods)
{
    bool bn_kept = count_op(&f->g, "BatchNormalization") > 0;
    size_t expected = 0, convs_expected = 0, convs = 0;
    for (size_t i = 0; i < mods->n; i++) {
        const struct jv *e = mods->items[i];
        const char *path = jfind(e, "path")->str, *type = jfind(e, "type")->str;
        const struct jv *repr = jfind(e, "repr");
        const struct rm_module *m = rm_tree_find(f->t, path);
        if (!repr || repr->type != J_STR) {
            /* a container: if the tree has it, a named type must be PyTorch's */
            if (m && m->n_children && m->type_known)
                ck_assert_msg(!strcmp(m->type, type) ||
                                  (!strcmp(m->type, "Sequential") &&
                                   !strcmp(type, "Conv2dNormActivation")),
                              "%s: %s is %s in PyTorch, tree says %s", name, path, type, m->type);
            continue;
        }
        if (never_exported(type) || (!strcmp(type, "BatchNorm2d") && !bn_kept)) {
            ck_assert_msg(!m, "%s: %s (%s) leaves no node but the tree has it", name, path, type);
            continue;
        }
        expected++;
        convs_expected += !strcmp(type, "Conv2d");
        ck_assert_msg(m != NULL, "%s: PyTorch module %s (%s) missing from the tree", name, path,
                      type);
        ck_assert_msg(is_leaf(m), "%s: %s is not a leaf in the tree", name, path);
        ck_assert_msg(!strcmp(m->type, type), "%s: %s is %s, tree says %s", name, path, type,
                      m->type);
        char line[512];
        rm_module_repr_line(m, line, sizeof line);
        char *a = normalize_repr(line), *b = normalize_repr(repr->str);
        ck_assert_msg(!strcmp(a, b), "%s: %s repr\n  tree:    %s\n  PyTorch: %s", name, path,
                      line, repr->str);
        free(a);
        free(b);
    }
    size_t leaves = 0;
    for (size_t i = 0; i < f->t->n_modules; i++) {
        const struct rm_module *m = f->t->modules[i];
        leaves += is_leaf(m);
        convs += !strcmp(m->type, "Conv2d");
    }
    ck_assert_msg(leaves == expected, "%s: tree has %zu leaves, PyTorch %zu that leave nodes",
                  name, leaves, expected);
    ck_assert_msg(convs == convs_expected, "%s: %zu Conv2d in the tree, PyTorch calls %zu", name,
                  convs, convs_expected);
    ck_assert_msg(f->t->n_unplaced == 0, "%s: %zu unplaced nodes", name, f->t->n_unplaced);
}

START_TEST(testdata_modules)
{
    const char *name = MODELS[_i];
    char path[1024];
    struct fixture f;
    snprintf(path, sizeof path, "%s.onnx", name);
    open_testdata(&f, path);
    snprintf(path, sizeof path, "%s/expected/%s.modules.json", rm_test_testdata(), name);
    struct jv *exp = load_json(path);
    const struct jv *mods = jfind(exp, "modules");
    ck_assert(mods && mods->type == J_ARR);
    compare_leaves(name, &f, mods);
    /* every module of the tree is one PyTorch called */
    for (size_t i = 1; i < f.t->n_modules; i++) {
        bool found = false;
        for (size_t k = 0; k < mods->n && !found; k++)
            found = !strcmp(jfind(mods->items[k], "path")->str, f.t->modules[i]->path);
        ck_assert_msg(found, "%s: tree module '%s' is not a PyTorch module", name,
                      f.t->modules[i]->path);
    }
    jfree(exp);
    close_fixture(&f);
}
END_TEST

/* ---- torchvision skeletons ------------------------------------------------------- */

static const char *const TV[] = {"resnet18", "resnet50", "mobilenet_v2", "densenet121",
                                 "googlenet", "efficientnet_b0", "regnet_y_400mf",
                                 "shufflenet_v2_x1_0", "squeezenet1_0", "mnasnet1_0",
                                 "mobilenet_v3_small", "mobilenet_v3_large", "convnext_tiny",
                                 "regnet_x_400mf"};
#define N_TV (sizeof TV / sizeof TV[0])

START_TEST(torchvision_conv_paths)
{
    const char *name = TV[_i];
    char path[1024];
    struct fixture f;
    snprintf(path, sizeof path, "torchvision/%s.skeleton.onnx", name);
    open_testdata(&f, path);
    snprintf(path, sizeof path, "%s/torchvision/%s.conv_paths.json", rm_test_testdata(), name);
    struct jv *exp = load_json(path);
    const struct jv *convs = jfind(exp, "conv2d"), *leaves = jfind(exp, "leaves");
    ck_assert(convs && convs->type == J_ARR && leaves && leaves->type == J_OBJ);

    /* the Conv2d path set equals PyTorch's, both ways */
    size_t n = 0;
    for (size_t i = 0; i < f.t->n_modules; i++) {
        const struct rm_module *m = f.t->modules[i];
        if (strcmp(m->type, "Conv2d"))
            continue;
        n++;
        bool found = false;
        for (size_t k = 0; k < convs->n && !found; k++)
            found = !strcmp(convs->items[k]->str, m->path);
        ck_assert_msg(found, "%s: tree Conv2d '%s' is not a Conv2d PyTorch calls", name, m->path);
    }
    ck_assert_msg(n == convs->n, "%s: %zu Conv2d in the tree, PyTorch calls %zu", name, n,
                  convs->n);
    for (size_t k = 0; k < convs->n; k++) {
        const struct rm_module *m = rm_tree_find(f.t, convs->items[k]->str);
        ck_assert_msg(m && !strcmp(m->type, "Conv2d"), "%s: %s", name, convs->items[k]->str);
    }

    /* every leaf the tree shows is a PyTorch leaf; of that type and repr when it has a
     * type, "Module" when not (ConvNeXt's LayerNorm2d: a dozen ops no kind describes) */
    size_t leaves_in_tree = 0;
    for (size_t i = 0; i < f.t->n_modules; i++) {
        const struct rm_module *m = f.t->modules[i];
        if (!is_leaf(m))
            continue;
        leaves_in_tree++;
        const struct jv *r = jfind(leaves, m->path);
        ck_assert_msg(r != NULL, "%s: tree leaf '%s' (%s) is not a PyTorch leaf", name, m->path,
                      m->type);
        ck_assert_int_eq(m->source, RM_TREE_SRC_SCOPE);
        if (!m->type_known) {
            ck_assert_str_eq(m->type, "Module");
            ck_assert_msg(strncmp(r->str, "Conv", 4), "%s: %s (%s) has no kind", name, m->path,
                          r->str);
            continue;
        }
        char line[512];
        rm_module_repr_line(m, line, sizeof line);
        char *a = normalize_repr(line), *b = normalize_repr(r->str);
        ck_assert_msg(!strcmp(a, b), "%s: %s repr\n  tree:    %s\n  PyTorch: %s", name, m->path,
                      line, r->str);
        free(a);
        free(b);
    }
    /* and every PyTorch leaf is in the tree unless it leaves no node */
    for (size_t k = 0; k < leaves->n; k++) {
        const char *p = leaves->keys[k], *r = leaves->items[k]->str;
        if (rm_tree_find(f.t, p))
            continue;
        ck_assert_msg(!strncmp(r, "BatchNorm2d(", 12) || !strncmp(r, "Dropout(", 8) ||
                          !strncmp(r, "StochasticDepth(", 16) || !strncmp(r, "Identity(", 9),
                      "%s: PyTorch leaf %s = %s missing from the tree", name, p, r);
    }
    /* a container's class, when the tree names one, is PyTorch's; "Sequential" only for
     * nn.Sequential and its subclasses (Conv2dNormActivation, ...) */
    const struct jv *cont = jfind(exp, "containers");
    ck_assert(cont && cont->type == J_OBJ);
    size_t named = 0;
    for (size_t i = 0; i < f.t->n_modules; i++) {
        const struct rm_module *m = f.t->modules[i];
        if (!m->n_children)
            continue;
        const struct jv *c = jfind(cont, m->path);
        ck_assert_msg(c && c->n == 2, "%s: tree container '%s' is not a PyTorch container", name,
                      m->path);
        const char *type = c->items[0]->str;
        if (!m->type_known)
            ck_assert_msg(!strcmp(m->type, "Module"), "%s: %s unknown but typed %s", name,
                          m->path, m->type);
        else if (!strcmp(m->type, "Sequential"))
            ck_assert_msg(c->items[1]->num != 0, "%s: %s is a %s, not a Sequential", name,
                          m->path, type);
        else
            ck_assert_msg(!strcmp(m->type, type), "%s: %s is %s, tree says %s", name, m->path,
                          type, m->type);
        named += m->type_known;
    }
    ck_assert_uint_gt(named, 0);
    ck_assert_msg(f.t->n_unplaced == 0, "%s: %zu unplaced nodes", name, f.t->n_unplaced);
    jfree(exp);
    close_fixture(&f);
}
END_TEST

/* ---- resnet18 print -------------------------------------------------------------- */

/* print(resnet18) without its BatchNorm2d lines: BN is folded into the convs by the
 * export, so those modules leave no node. Every other line, containers and closing
 * parentheses included, must be identical. */
START_TEST(resnet18_print)
{
    struct fixture f;
    char path[1024];
    open_testdata(&f, "resnet18.onnx");
    snprintf(path, sizeof path, "%s/expected/resnet18.print.txt", rm_test_testdata());
    char *print = rm_test_read_file(path, NULL);
    size_t n = strlen(print);
    char *want = malloc(n + 1), *o = want;
    for (char *line = print; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line + 1) : strlen(line);
        if (!memmem(line, len, "BatchNorm2d(", 12)) {
            memcpy(o, line, len);
            o += len;
        }
        line += len;
    }
    *o = '\0';
    if (o > want && o[-1] == '\n')
        o[-1] = '\0';
    char *got = rm_tree_repr(f.t, f.t->root, -1);
    ck_assert(got != NULL);
    ck_assert_msg(!strcmp(got, want), "show differs from print(resnet18):\n%s", got);
    free(got);

    /* --depth 1: print(resnet18) with every container below the root collapsed */
    o = want;
    for (char *line = print; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line + 1) : strlen(line);
        size_t ind = strspn(line, " ");
        if (!memmem(line, len, "BatchNorm2d(", 12) && ind <= 2 && !(ind == 2 && line[2] == ')')) {
            size_t body = len - (line[len - 1] == '\n');
            memcpy(o, line, body);
            o += body;
            if (ind == 2 && line[body - 1] == '(') {
                memcpy(o, "...)", 4);
                o += 4;
            }
            *o++ = '\n';
        }
        line += len;
    }
    o[-1] = '\0';
    got = rm_tree_repr(f.t, f.t->root, 1);
    ck_assert_msg(!strcmp(got, want), "--depth 1:\n%s\nwant:\n%s", got, want);
    free(got);

    /* a subtree prints as print(resnet18.layer2[0].downsample) would */
    const struct rm_module *m = rm_tree_find(f.t, "layer2[0].downsample");
    ck_assert(m != NULL);
    got = rm_tree_repr(f.t, m, -1);
    ck_assert_str_eq(got, "Sequential(\n  (0): Conv2d(64, 128, kernel_size=(1, 1), stride=(2, 2), "
                          "bias=False)\n)");
    free(got);
    free(want);
    free(print);
    close_fixture(&f);
}
END_TEST

/* ---- paths, suggestions, parameters ----------------------------------------------- */

START_TEST(path_syntax)
{
    struct fixture f;
    open_testdata(&f, "resnet18.onnx");
    const struct rm_module *a = rm_tree_find(f.t, "layer4.0.conv1");
    ck_assert(a != NULL);
    ck_assert_ptr_eq(rm_tree_find(f.t, "layer4[0].conv1"), a);
    ck_assert_str_eq(a->path, "layer4.0.conv1");
    ck_assert_str_eq(a->name, "conv1");
    ck_assert_str_eq(a->type, "Conv2d");
    ck_assert_ptr_eq(rm_tree_find(f.t, ""), f.t->root);
    ck_assert_ptr_null(rm_tree_find(f.t, "layer9.0"));
    ck_assert_ptr_null(rm_tree_find(f.t, "layer4.0.conv"));

    struct rm_error err;
    rm_error_clear(&err);
    const struct rm_module *m;
    ck_assert_int_eq(rm_tree_lookup(f.t, "layer9.0", &m, &err), RM_ENOTFOUND);
    ck_assert_ptr_null(m);
    ck_assert_msg(!strncmp(err.msg, "no module 'layer9.0' (nearest: layer", 36), "%s", err.msg);
    const struct rm_module *near[3];
    size_t n = rm_tree_nearest(f.t, "layer9.0", near, 3);
    ck_assert_uint_eq(n, 3);
    for (size_t i = 0; i < n; i++) /* one edit away: layer1.0 ... layer4.0 */
        ck_assert_msg(strlen(near[i]->path) == 8 && !strncmp(near[i]->path, "layer", 5) &&
                          !strcmp(near[i]->path + 6, ".0"), "%s", near[i]->path);
    n = rm_tree_nearest(f.t, "layer4.0.conv", near, 2);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(near[0]->path, "layer4.0.conv1");
    ck_assert_str_eq(near[1]->path, "layer4.0.conv2");
    ck_assert_int_eq(rm_tree_lookup(f.t, "layer4[1].conv2", &m, &err), 0);
    ck_assert_str_eq(m->path, "layer4.1.conv2");

    /* the second call of layer1.0.relu ("relu_1" scope) belongs to layer1.0.relu */
    m = rm_tree_find(f.t, "layer1.0.relu");
    ck_assert_uint_eq(m->n_nodes, 2);
    ck_assert_ptr_null(rm_tree_find(f.t, "layer1.0.relu_1"));
    /* the residual Add sits in the block's own forward, not in a child */
    m = rm_tree_find(f.t, "layer1.0");
    ck_assert_uint_eq(m->n_nodes, 1);
    ck_assert_str_eq(f.g.nodes[m->nodes[0]].proto->op_type, "Add");
    /* a leaf's parameters: folded BN gives the conv a weight and a bias initializer */
    m = rm_tree_find(f.t, "conv1");
    ck_assert(m->bn_folded);
    const struct rm_param *w = rm_module_role_param(m, "weight"), *b = rm_module_role_param(m, "bias");
    ck_assert(w && b && w->init >= 0 && b->init >= 0);
    ck_assert_int_eq(f.g.proto->initializer[w->init]->dims[0], 64);
    m = rm_tree_find(f.t, "fc");
    ck_assert_str_eq(f.g.proto->initializer[rm_module_role_param(m, "weight")->init]->name, "fc.weight");
    ck_assert_str_eq(f.g.proto->initializer[rm_module_role_param(m, "bias")->init]->name, "fc.bias");
    ck_assert(!m->bn_folded);
    /* all nodes of a subtree */
    int *nodes;
    size_t nn;
    ck_assert_int_eq(rm_module_nodes(f.t, rm_tree_find(f.t, "layer2.0"), &nodes, &nn, &err), 0);
    ck_assert_uint_eq(nn, 6); /* conv1 relu conv2 downsample.0 Add relu_1 */
    free(nodes);
    close_fixture(&f);
}
END_TEST

/* shared_init: torch feeds equal parameters through scope-less Identity nodes
 * (README: bn1.weight -> bn2.weight, branch_a.weight -> branch_b.weight, ...). */
START_TEST(identity_helpers)
{
    struct fixture f;
    open_testdata(&f, "shared_init.onnx");
    const struct rm_module *bb = rm_tree_find(f.t, "branch_b");
    ck_assert(bb && !strcmp(bb->type, "Conv2d"));
    const struct rm_param *w = rm_module_role_param(bb, "weight");
    ck_assert_str_eq(f.g.values[w->value].name, "branch_b.weight");
    ck_assert_str_eq(f.g.proto->initializer[w->init]->name, "branch_a.weight");
    ck_assert(!bb->bn_folded);
    /* the Identity producing branch_b.weight is one of branch_b's own nodes */
    bool has_identity = false;
    for (size_t i = 0; i < bb->n_nodes; i++)
        has_identity |= !strcmp(f.g.nodes[bb->nodes[i]].proto->op_type, "Identity");
    ck_assert(has_identity);
    const struct rm_module *bn2 = rm_tree_find(f.t, "bn2");
    ck_assert_str_eq(f.g.proto->initializer[rm_module_role_param(bn2, "weight")->init]->name,
                     "bn1.weight");
    ck_assert_str_eq(f.g.proto->initializer[rm_module_role_param(bn2, "running_mean")->init]->name,
                     "bn1.bias");
    ck_assert_uint_eq(bn2->n_nodes, 5); /* 4 Identity + BatchNormalization */
    ck_assert_uint_eq(f.t->n_unplaced, 0);
    close_fixture(&f);
}
END_TEST

/* Older exporters write no scopes ("Conv_0"): parameter names place the nodes that read
 * one, helpers follow their consumers, and everything else is reported as unplaced. */
START_TEST(scopeless_fallback)
{
    struct fixture f;
    open_testdata(&f, "tiny_resnet.onnx");
    Onnx__GraphProto *gp = f.m->proto->graph;
    size_t with_param = 0;
    for (size_t i = 0; i < gp->n_node; i++) {
        Onnx__NodeProto *n = gp->node[i];
        char buf[64];
        snprintf(buf, sizeof buf, "%s_%zu", n->op_type, i);
        n->name = rm_arena_strdup(&f.m->arena, buf);
        with_param += !strcmp(n->op_type, "Conv") || !strcmp(n->op_type, "BatchNormalization") ||
                      !strcmp(n->op_type, "Gemm");
    }
    reindex(&f);
    ck_assert(!f.t->scoped);
    ck_assert_uint_eq(f.t->sources, 1u << RM_TREE_SRC_PARAM);
    ck_assert_uint_eq(f.t->n_unplaced, gp->n_node - with_param);
    /* nothing ran as a scope: "layer1" could be a Sequential or a ModuleList */
    const struct rm_module *l1 = rm_tree_find(f.t, "layer1");
    ck_assert(l1 && !l1->type_known && !strcmp(l1->type, "Module"));
    ck_assert_int_eq(l1->source, RM_TREE_SRC_PARAM);
    char path[1024];
    snprintf(path, sizeof path, "%s/expected/tiny_resnet.modules.json", rm_test_testdata());
    struct jv *exp = load_json(path);
    const struct jv *mods = jfind(exp, "modules");
    size_t n = 0;
    for (size_t k = 0; k < mods->n; k++) {
        const char *p = jfind(mods->items[k], "path")->str;
        const char *type = jfind(mods->items[k], "type")->str;
        if (strcmp(type, "Conv2d") && strcmp(type, "BatchNorm2d") && strcmp(type, "Linear"))
            continue;
        const struct rm_module *m = rm_tree_find(f.t, p);
        ck_assert_msg(m && !strcmp(m->type, type), "%s", p);
        char line[512];
        rm_module_repr_line(m, line, sizeof line);
        ck_assert_str_eq(line, jfind(mods->items[k], "repr")->str);
        n++;
    }
    ck_assert_uint_eq(n, with_param);
    char *text = rm_tree_repr(f.t, f.t->root, -1);
    ck_assert_msg(strstr(text, "(unplaced): ") && strstr(text, "Relu_2 (Relu)"), "%s", text);
    free(text);
    jfree(exp);
    close_fixture(&f);
}
END_TEST

/* Constant nodes belong to the module they feed, whatever scope they were written in; a
 * module left with nothing is not shown. */
START_TEST(helpers_follow_consumers)
{
    struct fixture f;
    open_testdata(&f, "mobilenet_tiny.onnx");
    Onnx__GraphProto *gp = f.m->proto->graph;
    ck_assert_str_eq(gp->node[1]->op_type, "Constant");
    ck_assert_str_eq(gp->node[3]->op_type, "Clip");
    gp->node[1]->name = "/features/ghost/Constant";
    gp->node[2]->name = "Constant_7";
    reindex(&f);
    ck_assert_ptr_null(rm_tree_find(f.t, "features.ghost"));
    const struct rm_module *clip = module_of(&f, 3);
    ck_assert_str_eq(clip->path, "features.0.2");
    ck_assert_str_eq(clip->type, "ReLU6"); /* its min and max read from the Constants */
    ck_assert_ptr_eq(module_of(&f, 1), clip);
    ck_assert_ptr_eq(module_of(&f, 2), clip);
    for (size_t i = 0; i < f.t->n_modules; i++) {
        const struct rm_module *m = f.t->modules[i];
        ck_assert_int_eq(m->index, (int)i);
        ck_assert(m == f.t->root || m->n_nodes || m->n_children);
    }
    close_fixture(&f);

    /* a tree built on an index shape inference has not run on still knows BatchNorm2d */
    struct rm_error err;
    memset(&f, 0, sizeof f);
    f.m = rm_test_load_model("tiny_resnet");
    ck_assert_msg(rm_graph_init(&f.g, f.m, &err) == 0, "%s", err.msg);
    ck_assert_msg(rm_tree_build(&f.t, &f.g, &err) == 0, "%s", err.msg);
    const struct rm_module *bn = rm_tree_find(f.t, "layer1.0.bn1");
    ck_assert(bn && bn->type_known && !strcmp(bn->type, "BatchNorm2d"));
    close_fixture(&f);
}
END_TEST

/* Odd names: no crash, no silent loss; every node is in a module or unplaced. */
START_TEST(hostile_names)
{
    struct fixture f;
    open_testdata(&f, "se_net.onnx");
    Onnx__GraphProto *gp = f.m->proto->graph;
    char deep[4096] = "";
    for (int i = 0; i < 40; i++)
        strcat(deep, "/x");
    strcat(deep, "/Conv");
    const char *names[] = {deep, "/", "//", "/a..b/Relu", "/.x/./Relu", NULL, "",
                           "/stem/relu_1/Relu", "/0/0.0/0.0.0/Conv", "/p_/p_1_/Relu"};
    size_t nn = sizeof names / sizeof names[0];
    ck_assert(gp->n_node >= nn);
    for (size_t i = 0; i < nn; i++)
        gp->node[i]->name = (char *)names[i];
    reindex(&f);
    size_t placed = 0;
    for (size_t i = 0; i < f.t->n_modules; i++)
        placed += f.t->modules[i]->n_nodes;
    ck_assert_uint_eq(placed + f.t->n_unplaced, gp->n_node);
    /* a Conv scoped deeper than RM_TREE_MAX_DEPTH gets a path of its own, at the root,
     * named after its node's label */
    ck_assert_str_eq(gp->node[0]->op_type, "Conv");
    ck_assert_int_ge(f.t->node_module[0], 0);
    const struct rm_module *deep_conv = f.t->modules[f.t->node_module[0]];
    ck_assert_str_eq(deep_conv->path, "Conv");
    ck_assert_int_eq(deep_conv->source, RM_TREE_SRC_DERIVED);
    ck_assert_str_eq(deep_conv->type, "Conv2d");
    for (size_t i = 0; i < f.t->n_modules; i++)
        ck_assert_int_le(f.t->modules[i]->depth, RM_TREE_MAX_DEPTH);
    /* relu_1 with no un-suffixed module stays relu_1 */
    ck_assert_ptr_nonnull(rm_tree_find(f.t, "stem.relu_1"));
    ck_assert_ptr_nonnull(rm_tree_find(f.t, "0.0.0"));
    char *text = rm_tree_repr(f.t, f.t->root, -1);
    ck_assert_ptr_nonnull(text);
    free(text);
    const struct rm_module *m;
    struct rm_error err;
    ck_assert_int_eq(rm_tree_lookup(f.t, "[[[]]].", &m, &err), RM_ENOTFOUND);
    close_fixture(&f);
}
END_TEST

/* ---- other exporters: testdata/trees/ ------------------------------------------------ */

/* "BasicBlock" of "torchvision.models.resnet.BasicBlock". */
static const char *short_class(const char *q)
{
    const char *dot = strrchr(q, '.');
    return dot ? dot + 1 : q;
}

static bool normalized_repr_eq(const struct rm_module *m, const char *want)
{
    char line[512];
    rm_module_repr_line(m, line, sizeof line);
    char *a = normalize_repr(line), *b = normalize_repr(want);
    bool eq = !strcmp(a, b);
    if (!eq)
        fprintf(stderr, "%s repr\n  tree:    %s\n  PyTorch: %s\n", m->path, line, want);
    free(a);
    free(b);
    return eq;
}

static struct jv *open_tree_model(struct fixture *f, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "trees/%s.skeleton.onnx", name);
    open_testdata(f, path);
    snprintf(path, sizeof path, "%s/trees/%s.tree.json", rm_test_testdata(), name);
    return load_json(path);
}

/* A torch-made model's tree against PyTorch's called modules (tree.json "modules"):
 * every tree module is one PyTorch called; with exact classes (dynamo: the recorded
 * class, type_known, qualname) or, for a TorchScript export, PyTorch's class where the
 * tree claims one; leaves with a kind print PyTorch's repr; every module PyTorch calls
 * that leaves nodes is in the tree; every conv is its own leaf. */
static void check_modules(const char *name, const struct fixture *f, const struct jv *mods, bool dynamo)
{
    const struct rm_tree *t = f->t;
    ck_assert_uint_eq(t->n_unplaced, 0);
    for (size_t i = 0; i < t->n_modules; i++) {
        const struct rm_module *m = t->modules[i];
        const struct jv *e = jfind(mods, m->path);
        ck_assert_msg(e != NULL, "%s: tree module '%s' (%s) is not a PyTorch module", name,
                      m->path, m->type);
        const char *cls = jget(e, "class")->str;
        if (!jget(e, "called")->num) {
            /* only implied by its children's paths (a ModuleList): no class claimed */
            ck_assert_msg(!dynamo && m->n_children && !m->type_known &&
                              !strcmp(m->type, "Module"),
                          "%s: %s never ran but the tree says %s", name, m->path, m->type);
            continue;
        }
        ck_assert_int_eq(m->source, m->parent ? (dynamo ? RM_TREE_SRC_DYNAMO : RM_TREE_SRC_SCOPE)
                                              : RM_TREE_SRC_NONE);
        if (dynamo) {
            ck_assert_msg(m->type_known && m->qualname && !strcmp(m->qualname, cls) &&
                              !strcmp(m->type, short_class(cls)),
                          "%s: %s is %s, tree says %s (%s)", name, m->path, cls, m->type,
                          m->qualname ? m->qualname : "no class");
        } else if (m->type_known) {
            ck_assert_msg(!strcmp(m->type, short_class(cls)) ||
                              (!strcmp(m->type, "Sequential") && jget(e, "sequential")->num),
                          "%s: %s is %s, tree says %s", name, m->path, cls, m->type);
        } else {
            ck_assert_str_eq(m->type, "Module");
        }
        if (is_leaf(m)) {
            ck_assert_msg(jget(e, "leaf")->num, "%s: %s is a leaf in the tree only", name, m->path);
            if (m->main_node >= 0)
                ck_assert_msg(normalized_repr_eq(m, jget(e, "repr")->str), "%s: %s", name, m->path);
        }
    }
    size_t convs = 0;
    for (size_t k = 0; k < mods->n; k++) {
        const char *p = mods->keys[k], *cls = jget(mods->items[k], "class")->str;
        const struct rm_module *m = rm_tree_find(t, p);
        if (!jget(mods->items[k], "called")->num)
            continue;
        if (!strcmp(cls, "torch.nn.modules.conv.Conv2d") || !strcmp(cls, "torch.nn.modules.conv.Conv1d")) {
            convs++;
            ck_assert_msg(m && is_leaf(m) && m->main_node >= 0 &&
                              f->g.nodes[m->main_node].op == RM_OP_CONV,
                          "%s: conv %s is not a Conv leaf of the tree", name, p);
        }
        if (!m) /* only modules that leave no node may be missing */
            ck_assert_msg(!strcmp(cls, "torch.nn.modules.dropout.Dropout") ||
                              !strcmp(cls, "torch.nn.modules.linear.Identity") ||
                              !strcmp(cls, "torchvision.ops.stochastic_depth.StochasticDepth") ||
                              (!dynamo && strstr(cls, "BatchNorm")),
                          "%s: PyTorch module %s (%s) missing from the tree", name, p, cls);
    }
    size_t nodes = 0;
    for (size_t i = 0; i < f->g.n_nodes; i++)
        nodes += f->g.nodes[i].op == RM_OP_CONV;
    ck_assert_uint_eq(convs, nodes);
}

static const char *const DYNAMO[] = {"dynamo-resnet18", "dynamo-mobilenet_v3_small",
                                     "dynamo-convnext_tiny", "dynamo-efficientnet_b0",
                                     "dynamo-tiny_resnet"};
#define N_DYNAMO (sizeof DYNAMO / sizeof DYNAMO[0])

/* The dynamo exporter's metadata gives every path and the exact class. */
START_TEST(dynamo_trees)
{
    struct fixture f;
    struct jv *exp = open_tree_model(&f, DYNAMO[_i]);
    ck_assert(!f.t->scoped);
    ck_assert_uint_eq(f.t->sources, 1u << RM_TREE_SRC_DYNAMO);
    check_modules(DYNAMO[_i], &f, jget(exp, "modules"), true);
    jfree(exp);
    close_fixture(&f);
}
END_TEST

/* Conv1d, BatchNorm1d, MaxPool1d, AvgPool1d and AdaptiveAvgPool1d: leaf kinds follow the
 * input's rank (GlobalAveragePool on a 3-D input is no AdaptiveAvgPool2d). */
START_TEST(conv1d_tree)
{
    struct fixture f;
    struct jv *exp = open_tree_model(&f, "conv1d");
    check_modules("conv1d", &f, jget(exp, "modules"), false);
    const struct rm_module *pool = rm_tree_find(f.t, "pool");
    ck_assert(pool && pool->type_known);
    ck_assert_str_eq(pool->type, "AdaptiveAvgPool1d");
    size_t kinds = 0;
    for (size_t i = 0; i < f.t->n_modules; i++)
        kinds += is_leaf(f.t->modules[i]) && strstr(f.t->modules[i]->type, "1d");
    ck_assert_uint_eq(kinds, 10); /* 4 Conv1d, 3 BatchNorm1d, MaxPool1d, AvgPool1d, pool */
    jfree(exp);
    close_fixture(&f);
}
END_TEST

/* Numbered children make a Sequential only when the container ran them as a chain:
 * torchvision's IntermediateLayerGetter (also returns an inner output) and a ModuleList
 * (never runs) are not; AdaptiveAvgPool2d at its input's size exports as an identity
 * AveragePool, which is no AvgPool2d anyone wrote. */
START_TEST(getter_tree)
{
    struct fixture f;
    struct jv *exp = open_tree_model(&f, "getter");
    check_modules("getter", &f, jget(exp, "modules"), false);
    static const char *const unknown[] = {"body", "branches", "pool"};
    for (size_t i = 0; i < 3; i++) {
        const struct rm_module *m = rm_tree_find(f.t, unknown[i]);
        ck_assert_msg(m && !m->type_known && !strcmp(m->type, "Module"), "%s", unknown[i]);
    }
    ck_assert_str_eq(rm_tree_find(f.t, "head")->type, "Sequential");
    ck_assert_str_eq(rm_tree_find(f.t, "body.2")->type, "Conv2d");
    jfree(exp);
    close_fixture(&f);
}
END_TEST

/* paddle2onnx: every weight a Constant node named after its Paddle layer (conv2d_3.w_0);
 * layers are modules at the root named by their parameters, activations by their output
 * names (hardswish_4.tmp_0); the Constant-held weights are the modules' parameters. */
START_TEST(paddle_tree)
{
    struct fixture f;
    struct jv *exp = open_tree_model(&f, "paddle2onnx-lcnet");
    const struct jv *layers = jget(exp, "layers");
    ck_assert_uint_eq(f.t->sources, (1u << RM_TREE_SRC_PARAM) | (1u << RM_TREE_SRC_TENSOR));
    size_t convs = 0;
    for (size_t k = 0; k < layers->n; k++) {
        const char *path = layers->keys[k];
        const struct jv *e = layers->items[k];
        const struct rm_module *m = rm_tree_find(f.t, path);
        ck_assert_msg(m != NULL, "paddle: no module %s (PyTorch %s)", path, jget(e, "torch_path")->str);
        ck_assert_int_eq(m->source, RM_TREE_SRC_PARAM);
        ck_assert_int_eq(m->depth, 1);
        ck_assert(m->type_known && !strcmp(m->type, short_class(jget(e, "class")->str)));
        ck_assert_msg(normalized_repr_eq(m, jget(e, "repr")->str), "paddle: %s", path);
        ck_assert(!m->bn_folded);
        convs += !strcmp(m->type, "Conv2d");
        for (size_t i = 0; i < m->n_params; i++) {
            const struct rm_param *p = &m->params[i];
            ck_assert_int_eq(p->init, -1);
            ck_assert_int_ge(p->constant, 0);
            ck_assert_int_eq(f.g.nodes[p->constant].op, RM_OP_CONSTANT);
            ck_assert_ptr_eq(module_of(&f, p->constant), m); /* the Constant is the module's */
            const Onnx__TensorProto *tp = rm_param_tensor(&f.g, p);
            ck_assert(tp != NULL);
            ck_assert_str_eq(tp->name, f.g.values[p->value].name);
            ck_assert_msg(!strncmp(tp->name, path, strlen(path)) && tp->name[strlen(path)] == '.',
                          "%s: parameter %s", path, tp->name);
        }
        ck_assert(rm_module_role_param(m, "weight") != NULL);
    }
    ck_assert_uint_eq(convs, 13);
    /* every Constant belongs to the module it feeds; every Conv is its own module's */
    for (size_t i = 0; i < f.g.n_nodes; i++) {
        const struct rm_module *m = module_of(&f, (int)i);
        if (f.g.nodes[i].op == RM_OP_CONSTANT)
            ck_assert(m != NULL);
        if (f.g.nodes[i].op == RM_OP_CONV)
            ck_assert(m && m->main_node == (int)i);
    }
    /* a hardswish is its HardSigmoid and Mul, named by the Mul's output */
    const struct rm_module *hs = rm_tree_find(f.t, "hardswish_4");
    ck_assert(hs && hs->type_known && !strcmp(hs->type, "Hardswish"));
    ck_assert_int_eq(hs->source, RM_TREE_SRC_TENSOR);
    ck_assert_uint_eq(hs->n_nodes, 2);
    /* what no name places: the squeeze-excite products and the saved model's scale */
    ck_assert_uint_eq(f.t->n_unplaced, 3);
    ck_assert(!f.t->root->type_known);
    jfree(exp);
    close_fixture(&f);
}
END_TEST

/* tf2onnx: a module per '/' component (model.conv2d_3); a Keras layer holding a conv and
 * its activation becomes a container whose conv gets a derived child named after the
 * node (model.conv2d.Conv2D); nothing claims a class. */
START_TEST(tf2onnx_tree)
{
    struct fixture f;
    struct jv *exp = open_tree_model(&f, "tf2onnx-cnn");
    const struct jv *layers = jget(exp, "layers");
    ck_assert_uint_eq(f.t->sources, (1u << RM_TREE_SRC_SLASH) | (1u << RM_TREE_SRC_DERIVED));
    size_t convs = 0;
    for (size_t k = 0; k < layers->n; k++) {
        const char *path = layers->keys[k];
        const struct jv *e = layers->items[k];
        const char *type = short_class(jget(e, "class")->str);
        const struct rm_module *m = rm_tree_find(f.t, path);
        if (jget(e, "fused")->num) { /* a BatchNorm folded into its conv */
            ck_assert_msg(m == NULL, "tf2onnx: fused %s has a module", path);
            continue;
        }
        ck_assert_msg(m != NULL, "tf2onnx: no module %s", path);
        ck_assert_int_eq(m->source, RM_TREE_SRC_SLASH);
        if (m->n_children) { /* the conv of a layer with an activation */
            ck_assert(!m->type_known);
            ck_assert_uint_eq(m->n_children, 1);
            m = m->children[0];
            ck_assert_int_eq(m->source, RM_TREE_SRC_DERIVED);
            ck_assert(!strcmp(m->name, "Conv2D") || !strcmp(m->name, "depthwise"));
        }
        ck_assert_msg(m->type_known && !strcmp(m->type, type), "tf2onnx: %s is %s, tree %s", path,
                      type, m->type);
        ck_assert(!m->bn_folded);
        ck_assert_msg(normalized_repr_eq(m, jget(e, "repr")->str), "tf2onnx: %s", path);
        convs += !strcmp(type, "Conv2d");
    }
    ck_assert_uint_eq(convs, 6);
    for (size_t i = 0; i < f.t->n_modules; i++)
        if (f.t->modules[i]->n_children)
            ck_assert(!f.t->modules[i]->type_known);
    /* the Transpose tf2onnx inserted for model/conv2d/Conv2D sits in model's forward */
    int tr = rm_graph_find_node(&f.g, "model/conv2d/Conv2D__6");
    ck_assert_int_ge(tr, 0);
    ck_assert_str_eq(module_of(&f, tr)->path, "model");
    ck_assert_uint_eq(f.t->n_unplaced, 0);
    jfree(exp);
    close_fixture(&f);
}
END_TEST

/* Convs that no source names get stable paths of their own: their node's label when it is
 * a plain free name, else conv_<k> by graph order. */
START_TEST(derived_paths)
{
    struct fixture f;
    open_testdata(&f, "se_net.onnx"); /* BatchNorms folded: weights are onnx::Conv_<n> */
    Onnx__GraphProto *gp = f.m->proto->graph;
    int convs[16], nc = 0;
    for (size_t i = 0; i < gp->n_node; i++) {
        if (!strcmp(gp->node[i]->op_type, "Conv") && nc < 16)
            convs[nc++] = (int)i;
        gp->node[i]->name = "";
    }
    ck_assert_int_eq(nc, 4); /* stem.conv, conv.conv (folded), se.fc1, se.fc2 */
    gp->node[convs[0]]->name = "p2o.Conv.0";       /* not a plain label: conv_0 */
    gp->node[convs[1]]->name = "stem_conv";        /* a plain label: kept */
    reindex(&f);
    ck_assert_uint_eq(f.t->sources, (1u << RM_TREE_SRC_DERIVED) | (1u << RM_TREE_SRC_PARAM));
    static const char *const want[] = {"conv_0", "stem_conv", "se.fc1", "se.fc2"};
    for (int k = 0; k < nc; k++) {
        const struct rm_module *m = module_of(&f, convs[k]);
        ck_assert_str_eq(m->path, want[k]);
        ck_assert_int_eq(m->source, k < 2 ? RM_TREE_SRC_DERIVED : RM_TREE_SRC_PARAM);
        ck_assert(m->type_known && !strcmp(m->type, "Conv2d") && m->main_node == convs[k]);
        ck_assert(m->bn_folded == (k < 2)); /* torch's folded weights: onnx::Conv_<n> */
    }
    ck_assert(!f.t->root->type_known);

    /* a '/' scope holding a conv and its activation: the conv gets a child of its own */
    gp->node[convs[0]]->name = "net/stem/Conv2D";
    int relu = -1;
    for (size_t i = (size_t)convs[0] + 1; i < gp->n_node && relu < 0; i++)
        if (!strcmp(gp->node[i]->op_type, "Relu"))
            relu = (int)i;
    ck_assert_int_ge(relu, 0);
    gp->node[relu]->name = "net/stem/Relu";
    /* a label taken by a module already there falls back to conv_<k> */
    gp->node[convs[1]]->name = "net/Conv2D";
    gp->node[convs[1] + 1]->name = "net/Conv2D/Relu"; /* makes module net.Conv2D */
    reindex(&f);
    const struct rm_module *stem = rm_tree_find(f.t, "net.stem");
    ck_assert(stem && !stem->type_known && stem->n_children == 1);
    ck_assert_int_eq(stem->source, RM_TREE_SRC_SLASH);
    ck_assert_str_eq(module_of(&f, relu)->path, "net.stem");
    ck_assert_str_eq(module_of(&f, convs[0])->path, "net.stem.Conv2D");
    ck_assert_str_eq(module_of(&f, convs[1] + 1)->path, "net.Conv2D");
    ck_assert_str_eq(module_of(&f, convs[1])->path, "net.conv_1");
    /* ops tf2onnx inserts ("<op>__<n>") sit one scope above the op they serve */
    int gap = -1;
    for (size_t i = 0; i < gp->n_node && gap < 0; i++)
        if (!strcmp(gp->node[i]->op_type, "GlobalAveragePool"))
            gap = (int)i;
    ck_assert_int_ge(gap, 0);
    gp->node[gap]->name = "net/stem/Mean__7";
    reindex(&f);
    ck_assert_str_eq(module_of(&f, gap)->path, "net");
    gp->node[gap]->name = "net/stem/Mean__x__7";
    reindex(&f);
    ck_assert_str_eq(module_of(&f, gap)->path, "net");
    gp->node[gap]->name = "net/stem/Mean__7x";
    reindex(&f);
    ck_assert_str_eq(module_of(&f, gap)->path, "net.stem");
    for (int k = 0; k < nc; k++)
        for (int j = 0; j < k; j++)
            ck_assert_ptr_ne(module_of(&f, convs[k]), module_of(&f, convs[j]));
    close_fixture(&f);
}
END_TEST

START_TEST(pylist)
{
    char *buf;
    size_t off[8];
    /* what repr() writes: quotes, escapes, non-ASCII as is */
    ck_assert_int_eq(rm_tree_pylist_parse("['', 'layer1', \"it's\", 'a\\\\b\\'c', '\\xe9\\u20ac"
                                          "\\U0001f600\\n', 'é']", 8, 64, &buf, off), 6);
    ck_assert_str_eq(buf + off[0], "");
    ck_assert_str_eq(buf + off[1], "layer1");
    ck_assert_str_eq(buf + off[2], "it's");
    ck_assert_str_eq(buf + off[3], "a\\b'c");
    ck_assert_str_eq(buf + off[4], "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\n");
    ck_assert_str_eq(buf + off[5], "\xc3\xa9");
    free(buf);
    ck_assert_int_eq(rm_tree_pylist_parse(" [ ] ", 8, 64, &buf, off), 0);
    free(buf);
    ck_assert_int_eq(rm_tree_pylist_parse("['a',]", 8, 64, &buf, off), 1);
    free(buf);
    static const char *const bad[] = {
        "", "[", "['a'", "['a']x", "['a' 'b']", "[a]", "['a', ]]", "[['a']]", "[1]",
        "['a\\q']", "['\\x0']", "['\\x00']", "['\\ud800']", "['\\U00110000']", "['a\tb']",
        "['\\", "['a','b','c','d','e','f','g','h','i']", "['aaaaaaaaa']", "(['a'])",
        "[u'a']", "[,]", "['a',,'b']",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(rm_tree_pylist_parse(bad[i], 8, 8, &buf, off) == -1, "%s", bad[i]);
        free(buf);
    }
    ck_assert_str_eq(rm_tree_source_name(RM_TREE_SRC_DYNAMO), "dynamo");
    ck_assert_str_eq(rm_tree_source_name(RM_TREE_SRC_DERIVED), "derived");
    ck_assert_str_eq(rm_tree_source_name(-1), "none");
}
END_TEST

/* Set (or add) metadata key=value on node n, in the model's arena. */
static void set_meta(struct rm_model *m, Onnx__NodeProto *n, const char *key, const char *value)
{
    for (size_t i = 0; i < n->n_metadata_props; i++)
        if (!strcmp(n->metadata_props[i]->key, key)) {
            n->metadata_props[i]->value = rm_arena_strdup(&m->arena, value);
            return;
        }
    Onnx__StringStringEntryProto **a =
        rm_arena_alloc(&m->arena, (n->n_metadata_props + 1) * sizeof *a);
    Onnx__StringStringEntryProto *e = rm_arena_alloc(&m->arena, sizeof *e);
    onnx__string_string_entry_proto__init(e);
    e->key = rm_arena_strdup(&m->arena, key);
    e->value = rm_arena_strdup(&m->arena, value);
    if (n->n_metadata_props)
        memcpy(a, n->metadata_props, n->n_metadata_props * sizeof *a);
    a[n->n_metadata_props++] = e;
    n->metadata_props = a;
}

static Onnx__NodeProto *node_named(struct fixture *f, const char *name)
{
    int i = rm_graph_find_node(&f->g, name);
    ck_assert_msg(i >= 0, "no node %s", name);
    return f->m->proto->graph->node[i];
}

#define SCOPES "pkg.torch.onnx.name_scopes"
#define CLASSES "pkg.torch.onnx.class_hierarchy"

/* Metadata is untrusted: what does not parse is not used (the node falls to the next
 * source), classes that disagree or are no Python names make the class unknown, torch's
 * older spellings are read. Never a crash; every node is in a module or unplaced. */
START_TEST(dynamo_hostile)
{
    struct fixture f;
    struct jv *exp = open_tree_model(&f, "dynamo-tiny_resnet");
    jfree(exp);
    /* layer1.0.conv1's conv: broken metadata, so its weight's name places it */
    Onnx__NodeProto *conv = node_named(&f, "node_conv2d_1");
    set_meta(f.m, conv, SCOPES, "['', 'layer1', 'layer1.0', 'layer1.0.conv1', 'conv2d_1'");
    /* layer1.0.bn1's BatchNorm: a class list of another length pairs with nothing */
    Onnx__NodeProto *bn = node_named(&f, "node__native_batch_norm_legit_no_training_1");
    set_meta(f.m, bn, CLASSES, "['x.A', 'x.B']");
    /* layer2: two classes */
    Onnx__NodeProto *c2 = node_named(&f, "node_conv2d_5");
    set_meta(f.m, c2, CLASSES, "['make_models.TinyResNet', 'foo.Bar', "
                               "'torchvision.models.resnet.BasicBlock', "
                               "'torch.nn.modules.conv.Conv2d', 'aten.conv2d.default']");
    /* torch.export's older spelling of the paths, a call suffix, and a class that is no
     * Python name */
    Onnx__NodeProto *c3 = node_named(&f, "node_conv2d_6");
    set_meta(f.m, c3, SCOPES, "[\"L['self']\", \"L['self'].layer2\", \"L['self'].layer2[0]\", "
                              "\"L['self'].layer2[0].conv2@1\", 'conv2d_6']");
    set_meta(f.m, c3, CLASSES, "['make_models.TinyResNet', 'torch.nn.modules.container.Sequential', "
                               "'torchvision.models.resnet.BasicBlock', '1nn.Conv2d', 'aten.x']");
    /* metadata no source can use: the relu nodes stay unplaced */
    static const char *const junk[] = {
        "['', 'a..b', 'relu']", "['', '.a', 'relu']", "['', 'a\\x01', 'relu']",
        "['', 'a[x]', 'relu']", "['', 'a]', 'relu']", "['', \"a'\", 'relu']", "['relu']",
        "[]", "['', 'x', 'x.x', 'x.x.x', 'x.x.x.x', 'x.x.x.x.x', 'x.x.x.x.x.x', 'x.x.x.x.x.x.x', "
        "'x.x.x.x.x.x.x.x', 'x.x.x.x.x.x.x.x.x', 'x.x.x.x.x.x.x.x.x.x', 'x.x.x.x.x.x.x.x.x.x.x', "
        "'x.x.x.x.x.x.x.x.x.x.x.x', 'x.x.x.x.x.x.x.x.x.x.x.x.x', 'x.x.x.x.x.x.x.x.x.x.x.x.x.x', "
        "'x.x.x.x.x.x.x.x.x.x.x.x.x.x.x', 'x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x', "
        "'x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x', 'x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x', "
        "'x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x', 'x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x', "
        "'x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x', 'x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x', "
        "'x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x', "
        "'x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x', 'relu']",
    };
    static const char *const junk_nodes[] = {"node_relu_1", "node_relu_2", "node_relu_3",
                                             "node_relu_4", "node_relu_5", "node_relu_6",
                                             "node_add", "node_add_1", "node_add_2"};
    const size_t n_junk = sizeof junk / sizeof junk[0];
    ck_assert_uint_eq(n_junk, sizeof junk_nodes / sizeof junk_nodes[0]);
    for (size_t k = 0; k < n_junk; k++)
        set_meta(f.m, node_named(&f, junk_nodes[k]), SCOPES, junk[k]);
    /* a value over the length limit, and a key given twice */
    size_t big = 70 * 1024;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    memcpy(huge, "['', 'fc', 'linear']", 20);
    huge[big] = '\0';
    Onnx__NodeProto *fc = node_named(&f, "node_linear");
    set_meta(f.m, fc, SCOPES, huge);
    free(huge);
    Onnx__NodeProto *mp = node_named(&f, "node_max_pool2d");
    Onnx__StringStringEntryProto *dup = NULL;
    for (size_t i = 0; i < mp->n_metadata_props; i++)
        if (!strcmp(mp->metadata_props[i]->key, SCOPES))
            dup = mp->metadata_props[i];
    ck_assert(dup != NULL);
    mp->n_metadata_props = 0;
    set_meta(f.m, mp, SCOPES, dup->value);
    Onnx__StringStringEntryProto **two = rm_arena_alloc(&f.m->arena, 2 * sizeof *two);
    two[0] = two[1] = mp->metadata_props[0];
    mp->metadata_props = two;
    mp->n_metadata_props = 2;
    reindex(&f);

    const struct rm_module *m = module_of(&f, rm_graph_find_node(&f.g, "node_conv2d_1"));
    ck_assert_str_eq(m->path, "layer1.0.conv1");
    ck_assert_int_eq(m->source, RM_TREE_SRC_PARAM);
    ck_assert(m->type_known && !strcmp(m->type, "Conv2d") && !m->qualname); /* its kind */
    /* bn1's one node has no usable class list: its kind; its parents' from other nodes */
    m = rm_tree_find(f.t, "layer1.0.bn1");
    ck_assert(m && !m->qualname && m->type_known && !strcmp(m->type, "BatchNorm2d"));
    ck_assert_int_eq(m->source, RM_TREE_SRC_DYNAMO);
    ck_assert_str_eq(m->parent->qualname, "torchvision.models.resnet.BasicBlock");
    m = rm_tree_find(f.t, "layer2");
    ck_assert(m && !m->type_known && !strcmp(m->type, "Module") && !m->qualname);
    m = module_of(&f, rm_graph_find_node(&f.g, "node_conv2d_6"));
    ck_assert_str_eq(m->path, "layer2.0.conv2");
    ck_assert_int_eq(m->source, RM_TREE_SRC_DYNAMO);
    ck_assert(m->type_known && !strcmp(m->type, "Conv2d")); /* its kind: the class is bad */
    ck_assert_ptr_null(m->qualname);
    for (size_t k = 0; k < n_junk; k++)
        ck_assert_msg(!module_of(&f, rm_graph_find_node(&f.g, junk_nodes[k])), "%s placed",
                      junk_nodes[k]);
    /* fc's Gemm reads fc.weight; the max pool has nothing else */
    ck_assert_int_eq(module_of(&f, rm_graph_find_node(&f.g, "node_linear"))->source, RM_TREE_SRC_PARAM);
    ck_assert(!module_of(&f, rm_graph_find_node(&f.g, "node_max_pool2d")));
    size_t placed = 0;
    for (size_t i = 0; i < f.t->n_modules; i++)
        placed += f.t->modules[i]->n_nodes;
    ck_assert_uint_eq(placed + f.t->n_unplaced, f.g.n_nodes);
    ck_assert_uint_eq(f.t->n_unplaced, n_junk + 1);
    char *text = rm_tree_repr(f.t, f.t->root, -1);
    ck_assert_ptr_nonnull(text);
    free(text);
    close_fixture(&f);
}
END_TEST

/* ---- the command line ------------------------------------------------------------ */

static void collect_convs(const struct jv *m, size_t *n, char **paths, size_t max)
{
    if (!strcmp(jfind(m, "type")->str, "Conv2d") && *n < max)
        paths[(*n)++] = jfind(m, "path")->str;
    const struct jv *c = jfind(m, "children");
    for (size_t i = 0; c && i < c->n; i++)
        collect_convs(c->items[i], n, paths, max);
}

START_TEST(cli_show)
{
    if (!getenv("RM_REMODEL"))
        return; /* run from meson, which passes the binary */
    char model[1024], *out, *errtext;
    snprintf(model, sizeof model, "%s/resnet18.onnx", rm_test_testdata());
    /* unknown path: exit 2, one line naming the file, the path and the nearest paths */
    ck_assert_int_eq(
        rm_test_run_remodel((const char *[]){"show", model, "layer9.0", NULL}, &out, &errtext), 2);
    ck_assert_str_eq(out, "");
    ck_assert_msg(strstr(errtext, "remodel: ") == errtext && strstr(errtext, "resnet18.onnx: ") &&
                      strstr(errtext, "no module 'layer9.0' (nearest: layer") &&
                      strchr(errtext, '\n') == errtext + strlen(errtext) - 1,
                  "%s", errtext);
    free(out);
    free(errtext);
    /* bracket syntax prints the same subtree */
    ck_assert_int_eq(rm_test_run_remodel((const char *[]){"show", model, "layer4[0].conv1", NULL},
                                         &out, &errtext), 0);
    ck_assert_str_eq(out, "Conv2d(256, 512, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), "
                          "bias=False)\n");
    free(out);
    free(errtext);
    ck_assert_int_eq(
        rm_test_run_remodel((const char *[]){"show", model, "--depth", "x", NULL}, &out, &errtext), 2);
    free(out);
    free(errtext);
    /* --json: the Conv2d paths of every torchvision skeleton equal PyTorch's */
    for (size_t t = 0; t < N_TV; t++) {
        snprintf(model, sizeof model, "%s/torchvision/%s.skeleton.onnx", rm_test_testdata(), TV[t]);
        ck_assert_int_eq(
            rm_test_run_remodel((const char *[]){"show", model, "--json", NULL}, &out, &errtext), 0);
        ck_assert_str_eq(errtext, "");
        const char *p = out;
        struct jv *doc = jparse(&p);
        jws(&p);
        ck_assert_msg(*p == '\0', "%s: trailing output after the JSON document", TV[t]);
        char path[1024];
        snprintf(path, sizeof path, "%s/torchvision/%s.conv_paths.json", rm_test_testdata(), TV[t]);
        struct jv *exp = load_json(path);
        const struct jv *convs = jfind(exp, "conv2d");
        char *got[1024];
        size_t n = 0;
        collect_convs(jfind(doc, "module"), &n, got, 1024);
        ck_assert_uint_eq(n, convs->n);
        for (size_t k = 0; k < convs->n; k++) {
            bool found = false;
            for (size_t i = 0; i < n && !found; i++)
                found = !strcmp(got[i], convs->items[k]->str);
            ck_assert_msg(found, "%s: %s missing from show --json", TV[t], convs->items[k]->str);
        }
        ck_assert_uint_eq(jfind(doc, "unplaced")->n, 0);
        jfree(exp);
        jfree(doc);
        free(out);
        free(errtext);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("tree");
    TCase *t = tcase_create("tree");
    tcase_set_timeout(t, 120);
    tcase_add_loop_test(t, testdata_modules, 0, N_MODELS);
    tcase_add_loop_test(t, torchvision_conv_paths, 0, N_TV);
    tcase_add_test(t, resnet18_print);
    tcase_add_test(t, path_syntax);
    tcase_add_test(t, identity_helpers);
    tcase_add_test(t, scopeless_fallback);
    tcase_add_test(t, hostile_names);
    tcase_add_test(t, helpers_follow_consumers);
    tcase_add_loop_test(t, dynamo_trees, 0, N_DYNAMO);
    tcase_add_test(t, conv1d_tree);
    tcase_add_test(t, getter_tree);
    tcase_add_test(t, paddle_tree);
    tcase_add_test(t, tf2onnx_tree);
    tcase_add_test(t, derived_paths);
    tcase_add_test(t, pylist);
    tcase_add_test(t, dynamo_hostile);
    tcase_add_test(t, cli_show);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return rm_test_run(suite());
}
