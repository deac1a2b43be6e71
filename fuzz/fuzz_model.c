/* libFuzzer harness: arbitrary bytes through everything remodel does with a model
 * file before running it: load (wire check, unpack, external data refusal), graph
 * index, structural check, shape inference, the info summary,
 * the module tree and its repr (show), and compiling an inference plan.
 * Built by fuzz/run.sh with clang, -fsanitize=fuzzer,address,undefined. */
#include "rm_check.h"
#include "rm_graph.h"
#include "rm_info.h"
#include "rm_model.h"
#include "rm_engine.h"
#include "rm_shape.h"
#include "rm_tree.h"

#include <stdlib.h>

#include <stddef.h>
#include <stdint.h>

#include "fuzz_pipeline.h"

int rm_fuzz_one(const uint8_t *data, size_t size)
{
    struct rm_error err;
    struct rm_model *m = NULL;
    struct rm_load_options lim = {.max_memory = (uint64_t)256 << 20};
    if (rm_model_load_buffer(&m, data, size, "fuzz.onnx", &lim, &err) != 0)
        return 0;
    struct rm_graph g;
    if (rm_graph_init(&g, m, &err) == 0) {
        rm_check_model(&g, NULL);
        struct rm_shape_opts so = {.dynamic_dim = 1};
        if (rm_shape_infer(&g, &so, &err) == 0)
            rm_shape_check(&g, &err);
        struct rm_info info;
        if (rm_info_compute(&g, &info, &err) == 0)
            rm_info_free(&info);
        rm_graph_free(&g);
        if (rm_graph_init(&g, m, &err) == 0) {
            struct rm_tree *t = NULL;
            if (rm_tree_build(&t, &g, &err) == 0) {
                free(rm_tree_repr(t, t->root, -1));
                rm_tree_free(t);
            }
            struct rm_plan *p = NULL;
            struct rm_session_options po;
            rm_session_options_default(&po);
            po.threads = 1;
            if (rm_session_create(&p, m, &po, &err) == 0) {
                rm_session_random_inputs(p, 1);
                rm_session_run(p, &err);
            }
            rm_session_free(p);
            rm_graph_free(&g);
        }
    }
    rm_model_free(m);
    return 0;
}

#ifndef RM_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return rm_fuzz_one(data, size);
}
#endif
