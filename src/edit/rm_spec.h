/* Module specs in PyTorch's own syntax, as users type them on the command line:
 * `Conv2d(256, 512, kernel_size=3, stride=2, padding=1, bias=False)`. Positional and
 * keyword arguments, ints or tuples, True/False, quoted strings, as nn.Conv2d takes
 * them. Parsing allocates nothing. */
#ifndef RM_SPEC_H
#define RM_SPEC_H

#include "rm_error.h"

#include <stdbool.h>
#include <stdint.h>

/* nn.Conv2d's constructor arguments, with PyTorch's defaults filled in. */
struct rm_conv_spec {
    int64_t in_channels, out_channels;
    int64_t kernel[2];   /* kh, kw */
    int64_t stride[2];
    int64_t pads[4];     /* ONNX order: top, left, bottom, right */
    int64_t dilation[2];
    int64_t groups;
    bool bias;
    bool pad_same;       /* padding='same' (pads computed from kernel and dilation) */
};

/* Parse text as an nn.Conv2d spec into *spec. Returns 0 or RM_EUSAGE with a message
 * naming the argument and the problem (unknown keyword, missing argument, wrong
 * tuple length, non-positive size, channels not divisible by groups, padding_mode
 * other than 'zeros', padding='same' with stride > 1 as PyTorch refuses it). */
int rm_conv_spec_parse(const char *text, struct rm_conv_spec *spec, struct rm_error *err);

/* Format spec back as PyTorch's repr would print it: "Conv2d(8, 16, kernel_size=(3, 3),
 * stride=(2, 2), padding=(1, 1), bias=False)". Returns the length snprintf would. */
int rm_conv_spec_repr(const struct rm_conv_spec *spec, char *buf, size_t n);

#endif
