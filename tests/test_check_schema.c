/* Tests for the schema checks of rm_check (rm_check_schema.c, rm_onnx_schemas.c) through
 * the library API: warnings are reported but not counted, a hostile node stays cheap,
 * and the generated table keeps the order its lookups rely on. The verdicts on whole
 * models are tested against onnx's checker in tests/test_check.py. */
#include "rm_check.h"
#include "rm_onnx_schemas.h"
#include "test_util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct calls {
    int n, warnings;
    char text[8192];
};

static void collect(void *ctx, const char *msg)
{
    struct calls *c = ctx;
    c->n++;
    if (strncmp(msg, "warning: ", 9) == 0)
        c->warnings++;
    size_t l = strlen(c->text);
    snprintf(c->text + l, sizeof c->text - l, "%s\n", msg);
}

static int check_model(struct rm_model *m, struct calls *c)
{
    struct rm_graph g;
    struct rm_error err;
    memset(c, 0, sizeof *c);
    ck_assert_int_eq(rm_graph_init(&g, m, &err), 0);
    rm_findings f = {0};
    int n = rm_check_model(&g, &f);
    for (size_t i = 0; i < f.n; i++) {
        char line[1200];
        snprintf(line, sizeof line, "%s%s", f.v[i].kind == RM_FINDING_WARNING ? "warning: " : "", f.v[i].text);
        collect(c, line);
    }
    rm_findings_free(&f);
    rm_graph_free(&g);
    return n;
}

/* A custom domain is a warning line: passed to the callback, not counted. */
START_TEST(warning_not_counted)
{
    struct rm_model *m = rm_test_load_model("broken/ok_custom_domain_imported");
    struct calls c;
    ck_assert_int_eq(check_model(m, &c), 0);
    ck_assert_msg(c.n == 1 && c.warnings == 1 && strstr(c.text, "com.example"), "%s", c.text);
    rm_model_free(m);
}
END_TEST

/* An error is counted and the warning beside it is not. */
START_TEST(error_counted)
{
    struct rm_model *m = rm_test_load_model("broken/relu_alpha");
    struct calls c;
    ck_assert_int_eq(check_model(m, &c), 1);
    ck_assert_msg(c.n == 1 && c.warnings == 0 && strstr(c.text, "alpha"), "%s", c.text);
    rm_model_free(m);
}
END_TEST

/* 200000 copies of one attribute on one node: one line for the duplicate, one for the
 * unknown name, in n log n (the test's timeout catches a quadratic scan). */
START_TEST(many_duplicate_attributes)
{
    struct rm_model *m = rm_test_load_model("se_net");
    Onnx__GraphProto *gp = m->proto->graph;
    Onnx__NodeProto *relu = NULL;
    for (size_t i = 0; i < gp->n_node && !relu; i++)
        if (strcmp(gp->node[i]->op_type, "Relu") == 0)
            relu = gp->node[i];
    ck_assert_ptr_nonnull(relu);
    static Onnx__AttributeProto a = ONNX__ATTRIBUTE_PROTO__INIT;
    a.name = "alpha";
    a.has_type = 1;
    a.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    a.has_f = 1;
    a.f = 0.5f;
    enum { N = 200000 };
    Onnx__AttributeProto **list = malloc(N * sizeof *list);
    ck_assert_ptr_nonnull(list);
    for (size_t i = 0; i < N; i++)
        list[i] = &a;
    size_t n_saved = relu->n_attribute;
    Onnx__AttributeProto **saved = relu->attribute;
    relu->attribute = list;
    relu->n_attribute = N;
    struct calls c;
    int n = check_model(m, &c);
    relu->attribute = saved;
    relu->n_attribute = n_saved;
    free(list);
    ck_assert_msg(n == 2 && strstr(c.text, "appears more than once") && strstr(c.text, "no attribute 'alpha'"),
                  "%d: %s", n, c.text);
    rm_model_free(m);
}
END_TEST

/* 100000 nodes, each in its own domain that is not imported: a bounded number of lines
 * (one per domain up to a cap, then a count), in linear time. */
START_TEST(many_unimported_domains)
{
    struct rm_model *m = rm_test_load_model("se_net");
    Onnx__GraphProto *gp = m->proto->graph;
    enum { N = 100000 };
    Onnx__NodeProto *nodes = malloc(N * sizeof *nodes);
    Onnx__NodeProto **list = malloc(N * sizeof *list);
    char *domains = malloc(N * 16);
    ck_assert(nodes && list && domains);
    static char *inputs[1] = {"input"};
    for (size_t i = 0; i < N; i++) {
        Onnx__NodeProto init = ONNX__NODE_PROTO__INIT;
        nodes[i] = init;
        nodes[i].op_type = "Relu";
        snprintf(domains + 16 * i, 16, "d%zu", i);
        nodes[i].domain = domains + 16 * i;
        nodes[i].n_input = 1;
        nodes[i].input = inputs;
        list[i] = &nodes[i];
    }
    size_t n_saved = gp->n_node;
    Onnx__NodeProto **saved = gp->node;
    gp->node = list;
    gp->n_node = N;
    struct calls c;
    int n = check_model(m, &c);
    gp->node = saved;
    gp->n_node = n_saved;
    free(nodes);
    free(list);
    free(domains);
    ck_assert_msg(n > 64 && n < 70 && strstr(c.text, "more nodes in further domains that are not imported"),
                  "%d: %.300s", n, c.text);
    rm_model_free(m);
}
END_TEST

/* The lookups binary-search the table by (domain, name) and its attributes by name. */
START_TEST(table_sorted)
{
    ck_assert_uint_gt(rm_onnx_n_schemas, 400);
    for (size_t i = 0; i < rm_onnx_n_schemas; i++) {
        const struct rm_onnx_schema *s = &rm_onnx_schemas[i];
        ck_assert_int_lt(s->domain, RM_ONNX_N_DOMAINS);
        ck_assert_int_le(s->since, rm_onnx_domain_max_version[s->domain]);
        if (i > 0) {
            const struct rm_onnx_schema *p = &rm_onnx_schemas[i - 1];
            int r = p->domain != s->domain ? p->domain - s->domain : strcmp(p->name, s->name);
            ck_assert_msg(r < 0 || (r == 0 && p->since < s->since), "%s-%d after %s-%d", s->name, s->since,
                          p->name, p->since);
        }
        for (size_t k = 1; k < s->n_attrs; k++)
            ck_assert_msg(strcmp(s->attrs[k - 1].name, s->attrs[k].name) < 0, "%s: %s", s->name, s->attrs[k].name);
        ck_assert_msg(s->deprecated || (s->in_counts >> (s->min_in < 32 ? s->min_in : 0) & 1) || s->min_in >= 32,
                      "%s-%d refuses its own minimum input count", s->name, s->since);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("check_schema");
    TCase *t = tcase_create("schema");
    tcase_set_timeout(t, 30);
    tcase_add_test(t, warning_not_counted);
    tcase_add_test(t, error_counted);
    tcase_add_test(t, many_duplicate_attributes);
    tcase_add_test(t, many_unimported_domains);
    tcase_add_test(t, table_sorted);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return rm_test_run(suite());
}
