/* A program that knows remodel only through its installed header and pkg-config file
 * (tests/test_install.sh builds it against a DESTDIR install): load resnet18, replace a
 * conv, prune, run a session, diff, save. Exits 0 when every step worked and the
 * numbers make sense, 1 otherwise, saying which. */
#include <remodel.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#define CHECK(call)                                                                           \
    do {                                                                                      \
        if ((call) != 0) {                                                                    \
            fprintf(stderr, "%s failed: %s (%s)\n", #call, err.msg, rm_err_name(err.code));   \
            return 1;                                                                         \
        }                                                                                     \
    } while (0)

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: example MODEL OUT\n");
        return 2;
    }
    rm_error err;
    rm_model *orig = NULL, *m = NULL;
    printf("libremodel %s\n", rm_version());
    CHECK(rm_model_load(&orig, argv[1], NULL, &err));
    CHECK(rm_model_clone(&m, orig, &err));

    /* the module tree, by path */
    size_t n, conv;
    rm_module_info mi;
    char repr[256];
    CHECK(rm_model_modules(m, &n, &err));
    CHECK(rm_model_find_module(m, "layer4[0].conv1", &conv, &err));
    CHECK(rm_model_module(m, conv, &mi));
    rm_module_repr(m, conv, repr, sizeof repr);
    printf("%zu modules; %s is %s\n", n, mi.path, repr);
    if (strcmp(mi.type, "Conv2d") || !mi.leaf)
        return fprintf(stderr, "layer4.0.conv1 is a %s\n", mi.type), 1;

    /* replace, carrying the channel change on */
    rm_replace_options ro = {.init = RM_INIT_KEEP, .propagate = true};
    rm_findings log = {0};
    CHECK(rm_replace(m, "layer4.0.conv1", "Conv2d(256, 256, 3, 2, 1, bias=False)", &ro, &log, &err));
    for (size_t i = 0; i < log.n; i++)
        printf("  %s\n", log.v[i].text);
    if (rm_findings_count(&log, RM_FINDING_NOTE) < 2)
        return fprintf(stderr, "replace logged %zu changes\n", log.n), 1;
    rm_findings_free(&log);

    /* prune a quarter of layer1.0.conv1's group */
    const char *paths[] = {"layer1.0.conv1"};
    rm_prune_options po = {.ratio = 0.25, .criterion = 1};
    rm_prune_report rep;
    CHECK(rm_prune(m, paths, 1, &po, &rep, NULL, &err));
    printf("params %lld -> %lld\n", (long long)rep.params_before, (long long)rep.params_after);
    if (!(rep.params_after < rep.params_before))
        return fprintf(stderr, "prune removed nothing\n"), 1;
    rm_prune_report_free(&rep);

    /* a session on the edited model */
    rm_session *s = NULL;
    rm_tensor out;
    CHECK(rm_session_create(&s, m, NULL, &err));
    rm_session_random_inputs(s, 1);
    CHECK(rm_session_run(s, &err));
    CHECK(rm_session_output(s, 0, &out, &err));
    printf("output %s: [%lld, %lld]\n", rm_session_output_name(s, 0), (long long)out.dims[0], (long long)out.dims[1]);
    if (out.rank != 2 || out.dims[1] != 1000 || !isfinite(((float *)out.data)[0]))
        return fprintf(stderr, "unexpected output\n"), 1;
    rm_session_free(s);

    /* the edit against the original */
    rm_diff_options o;
    rm_diff_result r;
    rm_diff_options_default(&o);
    CHECK(rm_diff(orig, m, &o, &r, &err));
    printf("cosine %.4f\n", r.outputs[0].s.cosine);
    if (!(r.outputs[0].s.cosine > 0.5 && r.outputs[0].s.cosine < 1.0))
        return fprintf(stderr, "cosine %f\n", r.outputs[0].s.cosine), 1;
    rm_diff_result_free(&r);

    CHECK(rm_model_save(m, argv[2], NULL, &err));
    rm_model_free(m);
    rm_model_free(orig);

    /* errors: a code, its name, and a message */
    if (rm_model_load(&m, "/nonexistent.onnx", NULL, &err) != RM_EIO || !strstr(err.msg, "nonexistent"))
        return fprintf(stderr, "a missing file gave %s: %s\n", rm_err_name(err.code), err.msg), 1;
    printf("ok\n");
    return 0;
}
