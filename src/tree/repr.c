/* print(module) as PyTorch prints it: leaf arguments in repr order, floats as Python
 * writes them, containers indented, collapsed below a depth. */
#include "rm_tree.h"
#include "rm_tree_int.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- repr ----------------------------------------------------------------------- */

/* Python's repr() of a float written with the digits of e (a "%.*e" string). */
static void py_float_from_e(const char *e, struct rm_strbuf *b)
{
    const char *p = e;
    if (*p == '-') {
        rm_sb_puts(b, "-");
        p++;
    }
    if (!isdigit((unsigned char)*p)) { /* inf, nan */
        rm_sb_puts(b, p);
        return;
    }
    char digits[32];
    size_t nd = 0;
    for (; *p && *p != 'e' && nd < sizeof digits - 1; p++)
        if (isdigit((unsigned char)*p))
            digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    long ex = *p == 'e' ? strtol(p + 1, NULL, 10) : 0;
    if (nd == 1 && digits[0] == '0')
        ex = 0;
    if (ex >= -4 && ex < 16) {
        if (ex < 0) {
            rm_sb_puts(b, "0.");
            for (long i = 0; i < -ex - 1; i++)
                rm_sb_puts(b, "0");
            rm_sb_puts(b, digits);
        } else {
            for (long i = 0; i <= ex; i++)
                rm_sb_putn(b, (size_t)i < nd ? &digits[i] : "0", 1);
            rm_sb_puts(b, ".");
            rm_sb_puts(b, (size_t)ex + 1 < nd ? &digits[ex + 1] : "0");
        }
    } else {
        rm_sb_putn(b, digits, 1);
        if (nd > 1) {
            rm_sb_puts(b, ".");
            rm_sb_puts(b, digits + 1);
        }
        rm_sb_printf(b, "e%c%02ld", ex < 0 ? '-' : '+', ex < 0 ? -ex : ex);
    }
}

/* Shortest decimal that reads back as the same float32, Python style ("1e-05", "0.1"):
 * ONNX stores float32, PyTorch printed the Python float the model was built with. */
static void py_float(double v, struct rm_strbuf *b)
{
    char e[64];
    float target = (float)v;
    if (!isfinite(v)) {
        rm_sb_puts(b, isnan(v) ? "nan" : v < 0 ? "-inf" : "inf");
        return;
    }
    for (int prec = 0; prec < 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec, v);
        if ((float)strtod(e, NULL) == target)
            break;
    }
    py_float_from_e(e, b);
}

static void arg_value(const struct rm_arg *a, struct rm_strbuf *b)
{
    switch (a->type) {
    case RM_ARG_INT:
        rm_sb_printf(b, "%" PRId64, a->i[0]);
        break;
    case RM_ARG_INTS:
        if (a->scalar_repr && rm_tree_all_eq(a->i, a->n, a->i[0])) {
            rm_sb_printf(b, "%" PRId64, a->i[0]);
            break;
        }
        rm_sb_puts(b, "(");
        for (int i = 0; i < a->n; i++)
            rm_sb_printf(b, "%s%" PRId64, i ? ", " : "", a->i[i]);
        rm_sb_puts(b, a->n == 1 ? ",)" : ")");
        break;
    case RM_ARG_FLOAT:
        py_float(a->f, b);
        break;
    case RM_ARG_BOOL:
        rm_sb_puts(b, a->i[0] ? "True" : "False");
        break;
    case RM_ARG_STR:
        rm_sb_printf(b, "'%s'", a->s ? a->s : "");
        break;
    default:
        break;
    }
}

static void repr_args(const struct rm_module *m, struct rm_strbuf *b)
{
    bool first = true;
    for (int i = 0; i < m->n_args; i++) {
        const struct rm_arg *a = &m->args[i];
        if (!a->in_repr)
            continue;
        if (!first)
            rm_sb_puts(b, ", ");
        first = false;
        if (!a->positional) {
            rm_sb_puts(b, a->key);
            rm_sb_puts(b, "=");
        }
        arg_value(a, b);
    }
}

size_t rm_module_repr_line(const struct rm_module *m, char *buf, size_t n)
{
    struct rm_strbuf b = {0};
    rm_sb_puts(&b, m->type);
    rm_sb_puts(&b, "(");
    if (m->n_children)
        rm_sb_puts(&b, "...");
    else
        repr_args(m, &b);
    rm_sb_puts(&b, ")");
    size_t len = b.oom ? 0 : b.len;
    if (n) {
        size_t c = len < n - 1 ? len : n - 1;
        if (c)
            memcpy(buf, b.s, c);
        buf[c] = '\0';
    }
    free(b.s);
    return len;
}

static void indent(struct rm_strbuf *b, int level)
{
    for (int i = 0; i < level; i++)
        rm_sb_puts(b, "  ");
}

static void repr_rec(const struct rm_tree *t, const struct rm_module *m, int level, int max_depth,
                     bool show_unplaced, struct rm_strbuf *b)
{
    rm_sb_puts(b, m->type);
    rm_sb_puts(b, "(");
    bool unplaced = show_unplaced && t->n_unplaced;
    if (!m->n_children && !unplaced) {
        repr_args(m, b);
        rm_sb_puts(b, ")");
        return;
    }
    if (max_depth >= 0 && level >= max_depth) {
        rm_sb_puts(b, "...)");
        return;
    }
    rm_sb_puts(b, "\n");
    for (size_t i = 0; i < m->n_children; i++) {
        indent(b, level + 1);
        rm_sb_printf(b, "(%s): ", m->children[i]->name);
        repr_rec(t, m->children[i], level + 1, max_depth, false, b);
        rm_sb_puts(b, "\n");
    }
    if (unplaced) {
        indent(b, level + 1);
        rm_sb_printf(b, "(unplaced): %zu ONNX node%s in no module (\n", t->n_unplaced,
                  t->n_unplaced == 1 ? "" : "s");
        for (size_t i = 0; i < t->n_unplaced; i++) {
            indent(b, level + 2);
            rm_sb_puts(b, rm_graph_node_label(t->g, (size_t)t->unplaced[i]));
            rm_sb_printf(b, " (%s)\n", t->g->nodes[t->unplaced[i]].proto->op_type ? t->g->nodes[t->unplaced[i]].proto->op_type : "");
        }
        indent(b, level + 1);
        rm_sb_puts(b, ")\n");
    }
    indent(b, level);
    rm_sb_puts(b, ")");
}

char *rm_tree_repr(const struct rm_tree *t, const struct rm_module *m, int max_depth)
{
    struct rm_strbuf b = {0};
    repr_rec(t, m, 0, max_depth, m == t->root, &b);
    if (b.oom || !b.s) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

