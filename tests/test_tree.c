/* Tests for the module tree (rm_tree): module paths, kinds, arguments and repr compared
 * with what PyTorch itself reports for the exported module (testdata/expected/ and
 * testdata/torchvision/, both written by PyTorch scripts), path syntax and suggestions,
 * the initializer-name fallback for scope-less exports, and hostile node names. */
#include "rm_graph.h"
#include "rm_model.h"
#include "rm_tree.h"
#include "test_util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- fixtures --------------------------------------------------------------------- */

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
    ck_assert_msg(rm_tree_build(&f->t, &f->g, &err) == 0, "%s", err.msg);
}

static void close_fixture(struct fixture *f)
{
    rm_tree_free(f->t);
    rm_graph_free(&f->g);
    rm_model_free(f->m);
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
                                 "shufflenet_v2_x1_0", "squeezenet1_0", "mnasnet1_0"};
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

    /* every leaf the tree shows is a PyTorch leaf of that type and repr */
    size_t leaves_in_tree = 0;
    for (size_t i = 0; i < f.t->n_modules; i++) {
        const struct rm_module *m = f.t->modules[i];
        if (!is_leaf(m))
            continue;
        leaves_in_tree++;
        const struct jv *r = jfind(leaves, m->path);
        ck_assert_msg(r != NULL, "%s: tree leaf '%s' (%s) is not a PyTorch leaf", name, m->path,
                      m->type);
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
        if (!strcmp(m->type, "Sequential"))
            ck_assert_msg(c->items[1]->num != 0, "%s: %s is a %s, not a Sequential", name,
                          m->path, type);
        else if (strcmp(m->type, "Module"))
            ck_assert_msg(!strcmp(m->type, type), "%s: %s is %s, tree says %s", name, m->path,
                          type, m->type);
        named += strcmp(m->type, "Module") != 0;
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
    ck_assert_uint_eq(f.t->n_unplaced, gp->n_node - with_param);
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
    ck_assert_int_eq(f.t->node_module[0], -1); /* deeper than RM_TREE_MAX_DEPTH */
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
    tcase_add_test(t, cli_show);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return rm_test_run(suite());
}
