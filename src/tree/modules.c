/* The module tree through the public API (remodel.h, "modules"): modules by index in
 * preorder, their children, nodes, arguments and parameters, repr. */
#include "rm_model.h"
#include "rm_tree.h"
#include "rm_tree_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The model's tree when it is built and i is one of its modules, else NULL. */
static const struct rm_module *module_at(rm_model *m, size_t i)
{
    const struct rm_tree *t = m->tree;
    return t && m->graph && m->graph_gen == m->gen && i < t->n_modules ? t->modules[i] : NULL;
}

/* Preorder index of module mod of t. */
static size_t index_of(const struct rm_tree *t, const struct rm_module *mod)
{
    for (size_t i = 0; i < t->n_modules; i++)
        if (t->modules[i] == mod)
            return i;
    return SIZE_MAX;
}

int rm_model_modules(rm_model *m, size_t *n, rm_error *err)
{
    const struct rm_tree *t = rm_model_tree(m, err);
    *n = t ? t->n_modules : 0;
    if (!t && err && err->code == RM_EFORMAT && m->path) /* a malformed node: say in which file */
        rm_error_prefix(err, "%s", m->path);
    return t ? 0 : err ? err->code : RM_ENOMEM;
}

int rm_model_module(rm_model *m, size_t i, rm_module_info *out)
{
    const struct rm_module *mod = module_at(m, i);
    memset(out, 0, sizeof *out);
    if (!mod)
        return RM_ENOTFOUND;
    out->path = mod->path;
    out->name = mod->name;
    out->type = mod->type;
    out->type_known = mod->type_known;
    out->leaf = rm_module_is_leaf(mod);
    out->bn_folded = mod->bn_folded;
    out->depth = mod->depth;
    out->parent = mod->parent ? index_of(m->tree, mod->parent) : SIZE_MAX;
    out->n_children = mod->n_children;
    out->n_nodes = mod->n_nodes;
    out->n_args = out->leaf ? (size_t)mod->n_args : 0;
    out->n_params = out->leaf ? mod->n_params : 0;
    out->source = rm_tree_source_name(mod->source);
    out->qualname = mod->qualname;
    return 0;
}

int rm_model_find_module(rm_model *m, const char *path, size_t *i, rm_error *err)
{
    const struct rm_tree *t = rm_model_tree(m, err);
    const struct rm_module *mod;
    if (!t)
        return err ? err->code : RM_ENOMEM;
    int rc = rm_tree_lookup(t, path, &mod, err);
    if (rc)
        return rc;
    *i = index_of(t, mod);
    return 0;
}

size_t rm_module_child(rm_model *m, size_t i, size_t k)
{
    const struct rm_module *mod = module_at(m, i);
    return mod && k < mod->n_children ? index_of(m->tree, mod->children[k]) : SIZE_MAX;
}

const char *rm_module_node(rm_model *m, size_t i, size_t k)
{
    const struct rm_module *mod = module_at(m, i);
    return mod && k < mod->n_nodes ? rm_graph_node_label(m->tree->g, (size_t)mod->nodes[k]) : NULL;
}

const rm_arg *rm_module_arg(rm_model *m, size_t i, size_t k)
{
    const struct rm_module *mod = module_at(m, i);
    return mod && k < (size_t)mod->n_args ? &mod->args[k] : NULL;
}

int rm_module_param(rm_model *m, size_t i, size_t k, const char **role, const char **tensor)
{
    const struct rm_module *mod = module_at(m, i);
    if (!mod || k >= mod->n_params)
        return -1;
    const struct rm_param *p = &mod->params[k];
    const struct rm_graph *g = m->tree->g;
    *role = p->role;
    *tensor = p->init >= 0 ? g->proto->initializer[p->init]->name : g->values[p->value].name;
    return 0;
}

size_t rm_module_repr(rm_model *m, size_t i, char *buf, size_t n)
{
    const struct rm_module *mod = module_at(m, i);
    if (!mod) {
        if (n)
            buf[0] = '\0';
        return 0;
    }
    return rm_module_repr_line(mod, buf, n);
}

char *rm_model_repr(rm_model *m, size_t i, int max_depth, rm_error *err)
{
    const struct rm_module *mod = module_at(m, i);
    if (!mod) {
        rm_error_set(err, RM_ENOTFOUND, "no module %zu (build the tree with rm_model_modules)", i);
        return NULL;
    }
    char *text = rm_tree_repr(m->tree, mod, max_depth);
    if (!text)
        rm_error_set(err, RM_ENOMEM, "out of memory printing the module tree");
    return text;
}

size_t rm_model_n_unplaced(rm_model *m)
{
    return module_at(m, 0) ? m->tree->n_unplaced : 0;
}

int rm_model_unplaced(rm_model *m, size_t k, const char **name, const char **op)
{
    if (!module_at(m, 0) || k >= m->tree->n_unplaced)
        return -1;
    const struct rm_graph *g = m->tree->g;
    int node = m->tree->unplaced[k];
    *name = rm_graph_node_label(g, (size_t)node);
    *op = g->nodes[node].proto->op_type ? g->nodes[node].proto->op_type : "";
    return 0;
}

bool rm_model_scoped(rm_model *m)
{
    return module_at(m, 0) && m->tree->scoped;
}
