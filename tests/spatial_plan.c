/* Helper for tests/test_spatial.py: plans MODEL for the given inputs and prints the
 * plan's steps as JSON, so the test can assert how each node runs without timing
 * anything: which node starts a step, its op, whether oneDNN runs it (or the op's C
 * kernel, or the engine's copy of a Concat of blocked inputs at offsets that split
 * blocks: blocked_copy), and how many primitives the step executes (more than one:
 * reorders around the main primitive).
 *
 *   spatial_plan MODEL [--direct-conv] [--no-fuse] [NAME=FILE]...
 *
 * Prints {"steps": [{"node": "...", "op": "...", "onednn": true, "execs": 1,
 * "blocked_copy": false}, ...]}.
 * Exit 0, or 2 with the error on stderr. */
#include "rm_engine.h"
#include "rm_engine_int.h"
#include "rm_model.h"
#include "rm_tensorio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* name as a JSON string (test models have plain ASCII names) */
static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++)
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    putchar('"');
}

int main(int argc, char **argv)
{
    struct rm_error err;
    struct rm_model *m = NULL;
    struct rm_plan *p = NULL;
    struct rm_session_options o;
    const char *names[16];
    struct rm_host_tensor vals[16];
    char namebuf[16][256];
    int n = 0, rc = 2;
    rm_error_clear(&err);
    rm_session_options_default(&o);
    if (argc < 2) {
        fprintf(stderr, "usage: spatial_plan MODEL [--direct-conv] [--no-fuse] [NAME=FILE]...\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (!strcmp(argv[i], "--direct-conv")) {
            o.direct_conv = 1;
        } else if (!strcmp(argv[i], "--no-fuse")) {
            o.fuse = 0;
        } else if (eq && n < 16 && (size_t)(eq - argv[i]) < sizeof namebuf[0]) {
            memcpy(namebuf[n], argv[i], (size_t)(eq - argv[i]));
            namebuf[n][eq - argv[i]] = '\0';
            if (rm_tensor_read(eq + 1, &vals[n], NULL, 0, &err)) {
                fprintf(stderr, "spatial_plan: %s\n", err.msg);
                goto done;
            }
            names[n] = namebuf[n];
            n++;
        } else {
            fprintf(stderr, "spatial_plan: bad argument '%s'\n", argv[i]);
            goto done;
        }
    }
    o.n_given = n;
    o.given_names = names;
    o.given_values = vals;
    if (rm_model_load(&m, argv[1], NULL, &err) || rm_session_create(&p, m, &o, &err)) {
        fprintf(stderr, "spatial_plan: %s\n", err.msg);
        goto done;
    }
    printf("{\"steps\": [");
    for (int s = 0; s < p->n_steps; s++) {
        const struct step *st = &p->steps[s];
        const struct rm_node *nd = &p->g->nodes[st->first_node];
        printf("%s\n  {\"node\": ", s ? "," : "");
        json_str(rm_graph_node_label(p->g, (size_t)st->first_node));
        printf(", \"op\": ");
        json_str(nd->proto->op_type ? nd->proto->op_type : "?");
        printf(", \"onednn\": %s, \"execs\": %d, \"blocked_copy\": %s}", st->c_node < 0 && !st->bcat ? "true" : "false",
               st->n_ex, st->bcat ? "true" : "false");
    }
    printf("\n]}\n");
    rc = 0;
done:
    for (int i = 0; i < n; i++)
        rm_tensor_free(&vals[i]);
    rm_session_free(p);
    rm_model_free(m);
    return rc;
}
