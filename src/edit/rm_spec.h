/* Module specs in PyTorch's own syntax, as users type them on the command line:
 * `Conv2d(256, 512, kernel_size=3, stride=2, padding=1, bias=False)`, `Conv1d(...)`,
 * `Conv3d(...)`. Positional and keyword arguments, ints or tuples, True/False, quoted
 * strings, as nn.Conv1d/2d/3d take them. Parsing allocates nothing. */
#ifndef RM_SPEC_H
#define RM_SPEC_H

#include "rm_error.h"

#include <stdbool.h>
#include <stdint.h>

/* Spatial dimensions a spec may have: Conv1d, Conv2d, Conv3d. */
#define RM_SPEC_MAX_ND 3

/* nn.Conv1d/2d/3d's constructor arguments, with PyTorch's defaults filled in. */
struct rm_conv_spec {
    int nd;              /* spatial dimensions: 1, 2 or 3 (Conv1d, Conv2d, Conv3d) */
    int64_t in_channels, out_channels;
    int64_t kernel[RM_SPEC_MAX_ND];   /* first nd used: (kh, kw) for a Conv2d */
    int64_t stride[RM_SPEC_MAX_ND];
    int64_t pads[2 * RM_SPEC_MAX_ND]; /* ONNX order: nd begins, then nd ends */
    int64_t dilation[RM_SPEC_MAX_ND];
    int64_t groups;
    bool bias;
    bool pad_same;       /* padding='same' (pads computed from kernel and dilation) */
};

/* Parse text as an nn.Conv1d, nn.Conv2d or nn.Conv3d spec into *spec. Returns 0 or
 * RM_EUSAGE with a message naming the argument and the problem (unknown keyword, missing
 * argument, a tuple of another length than the spec's dimensions, non-positive size,
 * channels not divisible by groups, padding_mode other than 'zeros', padding='same' with
 * stride > 1 as PyTorch refuses it). */
int rm_conv_spec_parse(const char *text, struct rm_conv_spec *spec, struct rm_error *err);

/* Format spec back as PyTorch's repr would print it: "Conv2d(8, 16, kernel_size=(3, 3),
 * stride=(2, 2), padding=(1, 1), bias=False)", "Conv1d(8, 16, kernel_size=(3,),
 * stride=(1,))". Returns the length snprintf would. */
int rm_conv_spec_repr(const struct rm_conv_spec *spec, char *buf, size_t n);

#endif
