/* Running one case in ONNX's backend-test layout (model.onnx, test_data_set_<k>/
 * input_<i>.pb and output_<i>.pb) in remodel's engine and comparing its outputs, values
 * and ONNX types, with the expected ones: shared by test_conformance (ONNX's own data)
 * and test_ops (onnxruntime's outputs on the cases tests/ops_cases.py writes). */
#ifndef RM_ONNX_CASE_H
#define RM_ONNX_CASE_H

#include "rm_model.h"

#include <stddef.h>

struct rm_case_opts {
    double atol, rtol;  /* an element passes when |got - want| <= atol + rtol |want| */
    int fuse;           /* rm_session_options.fuse */
    /* which cases to run (NULL: all); the case's folder name and model */
    int (*select)(const char *name, const Onnx__ModelProto *mp);
    /* called before each data set is fed (NULL: nothing): may change the model (set is
     * the data set's number); 0, or nonzero with why set */
    int (*prepare)(struct rm_model *m, const char *dir, int set, char *why, size_t wn);
    int n_steps;        /* set: the steps of the (last) plan, rm_session_n_steps */
};

/* Run the case in folder dir (named name). Graph inputs are given before planning
 * (float ones fix dynamic dims and are set again after planning); with a given.txt in
 * dir, only the int64/bool inputs it lists are, the others are set after planning (run
 * time), else all are (ONNX's data feeds shapes and axes as inputs). Returns 1 pass,
 * 0 fail (why says what), -1 not selected. */
int rm_case_run(const char *dir, const char *name, struct rm_case_opts *o, char *why, size_t wn);

#endif
