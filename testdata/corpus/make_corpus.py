#!/usr/bin/python3
"""Build the "bring your own model" corpus: CNN exports remodel did not make, with references.

Run with Debian's Python (python3-torch 1.13, python3-torchvision 0.14, python3-onnx):

    /usr/bin/python3 testdata/corpus/make_corpus.py --ship
        regenerate everything; write the small models (< 2 MB) with their reference data,
        weight-free skeletons of the large ones and manifest.json into testdata/corpus/
    /usr/bin/python3 testdata/corpus/make_corpus.py --out DIR [--quick] [--only REGEX]
        write a self-contained corpus into DIR: every model of the matrix (or of its --quick
        subset, or the names matching REGEX) with its reference data, and DIR/manifest.json;
        models already in DIR with the expected bytes are kept (a cache)

The matrix (see README.md in this folder): 21 torchvision families, a UNet with
ConvTranspose, an FPN with F.interpolate (nearest and bilinear) and a Conv1d net, exported by
torch.onnx.export (TorchScript) at opsets 9, 11, 13 and 17 with the variants

    folded   default export: BatchNorms folded into the convs
    bn       BatchNormalization kept (training=TrainingMode.PRESERVE, do_constant_folding=False)
    kiai     keep_initializers_as_inputs=True
    dynb     dynamic batch dimension
    dynbhw   dynamic batch and spatial dimensions (batch and length for 1-D)

plus models restyled the way other exporters write them: PyTorch 2.9's dynamo exporter
(node metadata_props, node_conv2d names), paddle2onnx (weights as Constant nodes, p2o.* node
names, conv2d_3.w_0 weights, dynamic dims) and tf2onnx (NHWC input, model/conv2d/Conv2D names,
ReadVariableOp:0 / fused_bn initializers).

Every model comes with an input and PyTorch's output for it, in ONNX's test-data layout
(NAME/test_data_set_0/input_0.pb, output_<k>.pb; TensorProtos named after the graph's
input/outputs). Dynamic models are fed a shape other than the one they were traced with
(batch 2; spatial dims +16 and +32). Every expected number comes from PyTorch; --ort also
runs every model in onnxruntime (tests/ort/ort_run.js) and fails unless it agrees.

Deterministic: fixed seeds per model (from its family name, not its position), one thread,
deterministic algorithms. Exporter refusals are recorded in the manifest, not errors.
"""

import argparse
import collections
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
import zlib

import numpy as np
import onnx
import onnx.numpy_helper
import onnx.shape_inference
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.models as tvm
import torchvision.models.segmentation as tvseg

HERE = os.path.dirname(os.path.abspath(__file__))
TESTDATA = os.path.dirname(HERE)
REPO = os.path.dirname(TESTDATA)
sys.path.insert(0, TESTDATA)
import make_models as mm  # noqa: E402  (randomize_bn, tensor_pb, TinyResNet, scope_path)

ORT_RUN = os.path.join(REPO, "tests", "ort", "ort_run.js")
SEED = 20240101
SHIP_MAX = 2 << 20          # a model (with its reference data) is shipped below this size
SKELETON_MAX = 512 << 10    # per skeleton
SHIPPED_TOTAL_MAX = 30 << 20

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


# ---------------------------------------------------------------------------------------
# Small models of our own
# ---------------------------------------------------------------------------------------

class DoubleConv(nn.Module):
    """(conv 3x3 -> BN -> ReLU) x 2, as in the UNet paper's reference implementations."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.conv(x)


class UNetTiny(nn.Module):
    """Three-level UNet. up1: ConvTranspose2d(k=2, s=2); up2: ConvTranspose2d(k=3, s=2, p=1,
    output_padding=1, groups=2); skip connections by torch.cat on channels."""

    def __init__(self, n_classes=3):
        super().__init__()
        self.inc = DoubleConv(3, 8)
        self.down1 = nn.Sequential(nn.MaxPool2d(2), DoubleConv(8, 16))
        self.down2 = nn.Sequential(nn.MaxPool2d(2), DoubleConv(16, 32))
        self.up1 = nn.ConvTranspose2d(32, 16, kernel_size=2, stride=2)
        self.conv1 = DoubleConv(32, 16)
        self.up2 = nn.ConvTranspose2d(16, 8, kernel_size=3, stride=2, padding=1, output_padding=1,
                                      groups=2)
        self.conv2 = DoubleConv(16, 8)
        self.outc = nn.Conv2d(8, n_classes, kernel_size=1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        y = self.conv1(torch.cat([x2, self.up1(x3)], 1))
        y = self.conv2(torch.cat([x1, self.up2(y)], 1))
        return self.outc(y)


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin, cout, stride=1):
        super().__init__(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class FPNTiny(nn.Module):
    """Three-stage backbone, 1x1 laterals, top-down path with F.interpolate (nearest to the
    lateral's size, bilinear by scale 2), a 3x3 head, bilinear back to the input size."""

    def __init__(self, n_classes=4):
        super().__init__()
        self.stem = ConvBNReLU(3, 8, 2)
        self.layer1 = ConvBNReLU(8, 16, 2)
        self.layer2 = ConvBNReLU(16, 32, 2)
        self.layer3 = ConvBNReLU(32, 64, 2)
        self.lateral1 = nn.Conv2d(16, 24, 1)
        self.lateral2 = nn.Conv2d(32, 24, 1)
        self.lateral3 = nn.Conv2d(64, 24, 1)
        self.smooth = nn.Conv2d(24, 24, 3, padding=1)
        self.head = nn.Conv2d(24, n_classes, 1)

    def forward(self, x):
        c1 = self.layer1(self.stem(x))
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        p3 = self.lateral3(c3)
        p2 = self.lateral2(c2) + F.interpolate(p3, size=c2.shape[-2:], mode="nearest")
        p1 = self.lateral1(c1) + F.interpolate(p2, scale_factor=2.0, mode="bilinear",
                                               align_corners=False)
        y = self.head(F.relu(self.smooth(p1)))
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


# YOLOv8 in miniature, written the way ultralytics writes it (Conv/C2f/SPPF/Detect with DFL):
# what a detector export holds. Widths 8..64 instead of yolov8n's 16..256 (a 1.3 MB file).
class YoloConv(nn.Module):
    def __init__(self, c1, c2, k=1, s=1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=1e-3)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class YoloBottleneck(nn.Module):
    def __init__(self, c, shortcut):
        super().__init__()
        self.cv1 = YoloConv(c, c, 3)
        self.cv2 = YoloConv(c, c, 3)
        self.add = shortcut

    def forward(self, x):
        return x + self.cv2(self.cv1(x)) if self.add else self.cv2(self.cv1(x))


class C2f(nn.Module):
    """cv1's output split in two on channels, the second half through n bottlenecks, every
    part concatenated into cv2. The split is ultralytics' forward_split, which its exporter
    puts in place of forward (its chunk(2, 1) exports as Shape and Slice ops)."""

    def __init__(self, c1, c2, n=1, shortcut=False):
        super().__init__()
        self.c = c2 // 2
        self.cv1 = YoloConv(c1, 2 * self.c)
        self.cv2 = YoloConv((2 + n) * self.c, c2)
        self.m = nn.ModuleList(YoloBottleneck(self.c, shortcut) for _ in range(n))

    def forward(self, x):
        y = list(self.cv1(x).split((self.c, self.c), 1))
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    def __init__(self, c1, c2):
        super().__init__()
        c = c1 // 2
        self.cv1 = YoloConv(c1, c)
        self.cv2 = YoloConv(c * 4, c2)
        self.m = nn.MaxPool2d(5, 1, 2)

    def forward(self, x):
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


class DFL(nn.Module):
    def __init__(self, c1=16):
        super().__init__()
        self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
        self.conv.weight.data[:] = torch.arange(c1, dtype=torch.float).view(1, c1, 1, 1)
        self.c1 = c1

    def forward(self, x):
        b, _, a = x.shape
        return self.conv(x.view(b, 4, self.c1, a).transpose(2, 1).softmax(1)).view(b, 4, a)


class Detect(nn.Module):
    """Box (DFL over reg_max bins) and class branches per level, decoded against anchors."""

    def __init__(self, nc, ch, strides):
        super().__init__()
        self.nc, self.reg_max, self.strides = nc, 16, strides
        self.no = nc + 4 * self.reg_max
        c2, c3 = 32, max(ch[0], nc)
        self.cv2 = nn.ModuleList(nn.Sequential(YoloConv(x, c2, 3), YoloConv(c2, c2, 3),
                                               nn.Conv2d(c2, 4 * self.reg_max, 1)) for x in ch)
        self.cv3 = nn.ModuleList(nn.Sequential(YoloConv(x, c3, 3), YoloConv(c3, c3, 3),
                                               nn.Conv2d(c3, nc, 1)) for x in ch)
        self.dfl = DFL(self.reg_max)

    def forward(self, xs):
        xs = [torch.cat((self.cv2[i](x), self.cv3[i](x)), 1) for i, x in enumerate(xs)]
        points, strides = [], []
        for x, s in zip(xs, self.strides):
            h, w = x.shape[2:]
            sy, sx = torch.meshgrid(torch.arange(h, dtype=torch.float) + 0.5,
                                    torch.arange(w, dtype=torch.float) + 0.5, indexing="ij")
            points.append(torch.stack((sx, sy), -1).view(-1, 2))
            strides.append(torch.full((h * w, 1), float(s)))
        anchors, stride = torch.cat(points).transpose(0, 1), torch.cat(strides).transpose(0, 1)
        x_cat = torch.cat([x.view(xs[0].shape[0], self.no, -1) for x in xs], 2)
        box, cls = x_cat.split((self.reg_max * 4, self.nc), 1)
        lt, rb = self.dfl(box).chunk(2, 1)
        x1y1, x2y2 = anchors.unsqueeze(0) - lt, anchors.unsqueeze(0) + rb
        dbox = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * stride
        return torch.cat((dbox, cls.sigmoid()), 1)


class YoloV8Tiny(nn.Module):
    """Backbone of Conv/C2f (with shortcuts) and SPPF, a PAN neck (nearest upsampling,
    Concat, C2f without shortcuts), a Detect head over strides 8, 16 and 32."""

    def __init__(self, nc=4):
        super().__init__()
        self.model = nn.ModuleList([
            YoloConv(3, 8, 3, 2), YoloConv(8, 16, 3, 2), C2f(16, 16, 1, True),      # 0-2
            YoloConv(16, 32, 3, 2), C2f(32, 32, 2, True),                          # 3-4: P3
            YoloConv(32, 48, 3, 2), C2f(48, 48, 2, True),                          # 5-6: P4
            YoloConv(48, 64, 3, 2), C2f(64, 64, 1, True), SPPF(64, 64),            # 7-9: P5
            nn.Upsample(scale_factor=2, mode="nearest"), C2f(64 + 48, 48),         # 10-11
            C2f(48 + 32, 32),                                                      # 12: out P3
            YoloConv(32, 32, 3, 2), C2f(32 + 48, 48),                              # 13-14: out P4
            YoloConv(48, 48, 3, 2), C2f(48 + 64, 64),                              # 15-16: out P5
            Detect(nc, (32, 48, 64), (8, 16, 32)),                                 # 17
        ])

    def forward(self, x):
        m = self.model
        for i in range(4):
            x = m[i](x)
        p3 = m[4](x)
        p4 = m[6](m[5](p3))
        p5 = m[9](m[8](m[7](p4)))
        h4 = m[11](torch.cat((m[10](p5), p4), 1))
        o3 = m[12](torch.cat((m[10](h4), p3), 1))
        o4 = m[14](torch.cat((m[13](o3), h4), 1))
        o5 = m[16](torch.cat((m[15](o4), p5), 1))
        return m[17]([o3, o4, o5])


class Conv1dNet(nn.Module):
    """1-D signal classifier: Conv1d + BatchNorm1d + ReLU, MaxPool1d, dilated Conv1d,
    AvgPool1d, depthwise Conv1d, AdaptiveAvgPool1d(1), Linear."""

    def __init__(self, n_classes=5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(4, 16, 5, padding=2, bias=False), nn.BatchNorm1d(16), nn.ReLU(inplace=True),
            nn.MaxPool1d(2),
            nn.Conv1d(16, 32, 3, padding=2, dilation=2, bias=False), nn.BatchNorm1d(32),
            nn.ReLU(inplace=True),
            nn.AvgPool1d(2),
            nn.Conv1d(32, 32, 3, padding=1, groups=32, bias=False), nn.BatchNorm1d(32),
            nn.ReLU(inplace=True),
            nn.Conv1d(32, 48, 1), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(48, n_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def classifier_small(model, hidden=256, n_classes=10):
    """VGG/AlexNet with their 4096-wide classifier narrowed (the features, the tree and the
    ops are torchvision's; the two 4096x25088-class Linears would make 500 MB files)."""
    layers = list(model.classifier)
    lin = [i for i, m in enumerate(layers) if isinstance(m, nn.Linear)]
    fin = layers[lin[0]].in_features
    layers[lin[0]] = nn.Linear(fin, hidden)
    layers[lin[1]] = nn.Linear(hidden, hidden)
    layers[lin[2]] = nn.Linear(hidden, n_classes)
    model.classifier = nn.Sequential(*layers)
    return model


# PaddleClas PP-LCNet in miniature: what a paddle2onnx export typically holds.
class HSConvBN(nn.Module):
    def __init__(self, cin, cout, k, stride=1, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.Hardswish()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class SEModule(nn.Module):
    def __init__(self, c, r=4):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv1 = nn.Conv2d(c, c // r, 1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(c // r, c, 1)
        self.hsig = nn.Hardsigmoid()

    def forward(self, x):
        return x * self.hsig(self.conv2(self.relu(self.conv1(self.pool(x)))))


class DepthwiseSeparable(nn.Module):
    def __init__(self, cin, cout, stride, se=False):
        super().__init__()
        self.dw = HSConvBN(cin, cin, 3, stride, groups=cin)
        self.se = SEModule(cin) if se else nn.Identity()
        self.pw = HSConvBN(cin, cout, 1)

    def forward(self, x):
        return self.pw(self.se(self.dw(x)))


class LCNetTiny(nn.Module):
    def __init__(self, n_classes=10):
        super().__init__()
        self.stem = HSConvBN(3, 16, 3, 2)
        self.blocks = nn.Sequential(DepthwiseSeparable(16, 32, 1), DepthwiseSeparable(32, 64, 2),
                                    DepthwiseSeparable(64, 64, 1, se=True),
                                    DepthwiseSeparable(64, 96, 2, se=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(96, n_classes)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(self.blocks(self.stem(x)))))


class KerasCNN(nn.Module):
    """A Keras functional model written in PyTorch, its modules named as Keras names layers
    (conv2d, conv2d_1, batch_normalization, ...). Keras' Conv2D has a bias; its BatchNorm
    epsilon is 1e-3; 'same' padding with stride 2 pads bottom/right only (ZeroPad here)."""

    def __init__(self, n_classes=10):
        super().__init__()
        self.conv2d = nn.Conv2d(3, 16, 3, padding=1)
        self.batch_normalization = nn.BatchNorm2d(16, eps=1e-3)
        self.pad = nn.ZeroPad2d((0, 1, 0, 1))
        self.conv2d_1 = nn.Conv2d(16, 32, 3, stride=2)
        self.batch_normalization_1 = nn.BatchNorm2d(32, eps=1e-3)
        self.conv2d_2 = nn.Conv2d(32, 32, 3, padding=1)
        self.batch_normalization_2 = nn.BatchNorm2d(32, eps=1e-3)
        self.conv2d_3 = nn.Conv2d(32, 32, 3, padding=1)
        self.batch_normalization_3 = nn.BatchNorm2d(32, eps=1e-3)
        self.depthwise_conv2d = nn.Conv2d(32, 32, 3, padding=1, groups=32)
        self.batch_normalization_4 = nn.BatchNorm2d(32, eps=1e-3)
        self.conv2d_4 = nn.Conv2d(32, 64, 1)
        self.batch_normalization_5 = nn.BatchNorm2d(64, eps=1e-3)
        self.dense = nn.Linear(64, n_classes)

    def forward(self, x):
        x = F.relu(self.batch_normalization(self.conv2d(x)))
        x = F.relu(self.batch_normalization_1(self.conv2d_1(self.pad(x))))
        y = F.relu(self.batch_normalization_2(self.conv2d_2(x)))
        y = self.batch_normalization_3(self.conv2d_3(y))
        x = F.relu(x + y)
        x = F.relu(self.batch_normalization_4(self.depthwise_conv2d(x)))
        x = self.batch_normalization_5(F.relu(self.conv2d_4(x)))
        return self.dense(x.mean((2, 3)))


class NHWC(nn.Module):
    """Takes channels-last input, as a TensorFlow model does."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x.permute(0, 3, 1, 2))


# ---------------------------------------------------------------------------------------
# Families: constructor, traced input shape (without batch)
# ---------------------------------------------------------------------------------------

def _seg(fn):
    return lambda: fn(weights=None, weights_backbone=None)


FAMILIES = {
    "resnet18": (lambda: tvm.resnet18(), (3, 64, 64)),
    "resnet50": (lambda: tvm.resnet50(), (3, 64, 64)),
    "resnext50_32x4d": (lambda: tvm.resnext50_32x4d(), (3, 64, 64)),
    "mobilenet_v2": (lambda: tvm.mobilenet_v2(), (3, 64, 64)),
    "mobilenet_v3_small": (lambda: tvm.mobilenet_v3_small(), (3, 64, 64)),
    "mobilenet_v3_large": (lambda: tvm.mobilenet_v3_large(), (3, 64, 64)),
    "convnext_tiny": (lambda: tvm.convnext_tiny(), (3, 64, 64)),
    "inception_v3": (lambda: tvm.inception_v3(aux_logits=False, init_weights=False), (3, 96, 96)),
    "vgg11_bn": (lambda: classifier_small(tvm.vgg11_bn()), (3, 224, 224)),
    "alexnet": (lambda: classifier_small(tvm.alexnet()), (3, 224, 224)),
    "efficientnet_b0": (lambda: tvm.efficientnet_b0(), (3, 64, 64)),
    "regnet_y_400mf": (lambda: tvm.regnet_y_400mf(), (3, 64, 64)),
    "squeezenet1_0": (lambda: tvm.squeezenet1_0(), (3, 64, 64)),
    "densenet121": (lambda: tvm.densenet121(), (3, 64, 64)),
    "googlenet": (lambda: tvm.googlenet(aux_logits=False, init_weights=False), (3, 64, 64)),
    "shufflenet_v2_x1_0": (lambda: tvm.shufflenet_v2_x1_0(), (3, 64, 64)),
    "mnasnet0_5": (lambda: tvm.mnasnet0_5(), (3, 64, 64)),
    "deeplabv3_mobilenet_v3_large": (_seg(tvseg.deeplabv3_mobilenet_v3_large), (3, 96, 96)),
    "fcn_resnet50": (_seg(tvseg.fcn_resnet50), (3, 96, 96)),
    "lraspp_mobilenet_v3_large": (_seg(tvseg.lraspp_mobilenet_v3_large), (3, 96, 96)),
    "regnet_x_400mf": (lambda: tvm.regnet_x_400mf(), (3, 64, 64)),
    "unet": (UNetTiny, (3, 64, 64)),
    "fpn": (FPNTiny, (3, 64, 64)),
    "conv1d": (Conv1dNet, (4, 64)),
    "yolov8": (YoloV8Tiny, (3, 64, 64)),
}
# Families whose classifier's AdaptiveAvgPool2d only exports at the traced size: no dynbhw.
STATIC_HW = {"vgg11_bn", "alexnet"}

OPSETS = (9, 11, 13, 17)
VARIANTS = ("folded", "bn", "kiai", "dynb", "dynbhw")


def matrix():
    """(family, opset, variant) of the TorchScript exports, in a fixed order."""
    rows = []

    def add(fams, opsets, variants):
        for f in fams:
            for o in opsets:
                for v in variants:
                    if (f, o, v) not in rows:
                        rows.append((f, o, v))

    every = list(FAMILIES)
    add(every, [13], ["folded"])                                    # every family once
    add(["resnet18", "mobilenet_v2", "mobilenet_v3_small", "shufflenet_v2_x1_0",
         "convnext_tiny", "efficientnet_b0", "googlenet", "squeezenet1_0",
         "lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large",
         "unet", "fpn", "conv1d"], OPSETS, ["folded"])               # every opset
    add(["resnet18", "mobilenet_v3_large", "efficientnet_b0", "regnet_y_400mf", "densenet121",
         "inception_v3", "fcn_resnet50", "unet", "fpn", "conv1d"], [13], ["bn"])
    add(["resnet18", "unet", "conv1d"], [9, 17], ["bn"])
    add(["resnet18", "mobilenet_v2", "squeezenet1_0", "unet", "fpn", "conv1d"], [13], ["kiai"])
    add(["resnet18", "unet"], [9], ["kiai"])
    add(["resnet18", "mobilenet_v3_small", "efficientnet_b0", "densenet121", "resnext50_32x4d",
         "unet", "conv1d"], [13], ["dynb"])
    add(["resnet18", "googlenet", "mobilenet_v3_large", "regnet_y_400mf", "inception_v3",
         "lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large", "fpn", "unet",
         "conv1d"], [13], ["dynbhw"])
    add(["resnet18", "fpn", "unet", "conv1d"], [11, 17], ["dynbhw"])
    add(["mobilenet_v3_small", "unet"], [17], ["dynb"])
    add(["yolov8"], [11, 17], ["folded"])
    add(["yolov8"], [13], ["bn", "dynb"])
    return rows


# Restyled models: name -> (base, what)
STYLED = ["dynamo-resnet18", "dynamo-tiny_resnet", "paddle2onnx-lcnet", "tf2onnx-cnn"]

# The regenerated models the tests run by default (--quick): every variant, opset and
# exporter style at least once, small or fast families. Shipped models are always in.
QUICK = {
    "resnet18-op13-folded", "resnet18-op13-kiai", "resnet18-op13-dynbhw", "resnet18-op9-bn",
    "mobilenet_v3_small-op13-folded", "mobilenet_v3_small-op17-dynb",
    "efficientnet_b0-op13-bn", "squeezenet1_0-op9-folded", "shufflenet_v2_x1_0-op11-folded",
    "googlenet-op13-dynbhw", "lraspp_mobilenet_v3_large-op13-dynbhw", "mnasnet0_5-op13-folded",
    "convnext_tiny-op17-folded", "regnet_y_400mf-op13-bn", "dynamo-resnet18",
    "yolov8-op13-folded", "yolov8-op13-bn",
}


# torch 1.13 exports bilinear F.interpolate at opset 9 as Upsample(mode='linear'), which
# cannot express align_corners=False (half-pixel) sampling: the file computes something else
# than the module. Their reference is onnxruntime's output for the file.
_UPSAMPLE9 = "opset 9 Upsample(linear) is not PyTorch's align_corners=False bilinear"
ORT_REFERENCE = {
    "fpn-op9-folded": _UPSAMPLE9,
    "lraspp_mobilenet_v3_large-op9-folded": _UPSAMPLE9,
    "deeplabv3_mobilenet_v3_large-op9-folded": _UPSAMPLE9,
}


def model_name(family, opset, variant):
    return f"{family}-op{opset}-{variant}"


def family_seed(name):
    return SEED + zlib.crc32(name.encode()) % 100000


# ---------------------------------------------------------------------------------------
# Building and exporting
# ---------------------------------------------------------------------------------------

def build(family, make=None):
    """The family's module, seeded, BatchNorms randomised like a trained net's, eval mode."""
    seed = family_seed(family)
    torch.manual_seed(seed)
    model = (make or FAMILIES[family][0])()
    mm.randomize_bn(model, torch.Generator().manual_seed(seed + 1))
    return model.eval()


def feed_shape(traced, variant):
    """The input the reference is computed on: the traced shape, or for dynamic exports a
    batch of 2 and (dynbhw) spatial dims 16 and 32 larger (non-square catches H/W swaps)."""
    shape = list(traced)
    if variant in ("dynb", "dynbhw"):
        shape[0] = 2
    if variant == "dynbhw":
        if len(shape) == 4:
            shape[2] += 16
            shape[3] += 32
        else:
            shape[2] += 32
    return tuple(shape)


def flat_outputs(y):
    if isinstance(y, dict):
        return [y[k] for k in y]
    if isinstance(y, (tuple, list)):
        return list(y)
    return [y]


def export_options(opset, variant, rank, out_ranks, out_names):
    kw = dict(opset_version=opset, input_names=["input"], output_names=out_names)
    if variant == "bn":
        kw.update(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    elif variant == "kiai":
        kw.update(keep_initializers_as_inputs=True)
    elif variant in ("dynb", "dynbhw"):
        dims = {0: "batch"}
        if variant == "dynbhw":
            dims.update({2: "height", 3: "width"} if rank == 4 else {2: "length"})
        axes = {"input": dims}
        for name, r in zip(out_names, out_ranks):
            axes[name] = {k: v for k, v in dims.items() if k < r}
        kw.update(dynamic_axes=axes)
    return kw


def torch_export(model, x, **kw):
    buf = io.BytesIO()
    torch.onnx.export(model, (x,), buf, **kw)
    assert not model.training
    return buf.getvalue()


def reference(model, x):
    with torch.no_grad():
        return [t.numpy() for t in flat_outputs(model(x))]


def one_line(e):
    msg = " ".join(str(e).split())
    return f"{type(e).__name__}: {msg[:300]}"


class Built:
    """One corpus model: ONNX bytes, reference input/outputs, manifest fields."""

    def __init__(self, name, data, x, ys, **fields):
        self.name, self.data, self.x, self.ys = name, data, x, ys
        self.fields = fields


def make_torchscript(family, opset, variant):
    traced_chw = FAMILIES[family][1]
    model = build(family)
    traced = (1,) + tuple(traced_chw)
    gen = torch.Generator().manual_seed(family_seed(family) + 2)
    x_trace = torch.randn(traced, generator=gen)
    x = torch.randn(feed_shape(traced, variant), generator=gen)
    ys = reference(model, x)
    with torch.no_grad():
        outs = flat_outputs(model(x_trace))
    out_names = ["output"] if len(outs) == 1 else [f"output_{k}" for k in range(len(outs))]
    kw = export_options(opset, variant, len(traced), [t.dim() for t in outs], out_names)
    data = torch_export(model, x_trace, **kw)
    return Built(model_name(family, opset, variant), data, x.numpy(), ys,
                 family=family, opset=opset, variant=variant, style="torchscript",
                 reference="pytorch")


# ---------------------------------------------------------------------------------------
# Restyling helpers
# ---------------------------------------------------------------------------------------

def add_metadata(msg, field, pairs):
    """Append metadata_props to a NodeProto (field 9), ValueInfoProto (4) or GraphProto (16).

    Debian's onnx 1.12 predates these fields (IR 10); its protobuf keeps unknown fields, so
    the wire bytes are appended and survive re-serialisation."""
    extra = b"".join(mm.entry_bytes(field, k, v) for k, v in pairs)
    data = msg.SerializeToString() + extra
    msg.Clear()
    msg.ParseFromString(data)


def rename_values(graph, mapping):
    for n in graph.node:
        for i, v in enumerate(n.input):
            if v in mapping:
                n.input[i] = mapping[v]
        for i, v in enumerate(n.output):
            if v in mapping:
                n.output[i] = mapping[v]
    for coll in (graph.input, graph.output, graph.value_info, graph.initializer):
        for v in coll:
            if v.name in mapping:
                v.name = mapping[v.name]


def qualname(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def fold_bn(w, b, gamma, beta, mean, var, eps):
    scale = gamma / np.sqrt(var + eps)
    w2 = w * scale.reshape(-1, *([1] * (w.ndim - 1)))
    b2 = (b - mean) * scale + beta
    return w2.astype(np.float32), b2.astype(np.float32)


def attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


# ---------------------------------------------------------------------------------------
# dynamo style (PyTorch >= 2.9's default torch.onnx.export)
# ---------------------------------------------------------------------------------------

# ONNX op of the TorchScript export -> (FX node base name, aten target) in the dynamo export
DYNAMO_OPS = {
    "Conv": ("conv2d", "aten.conv2d.default"),
    "BatchNormalization": ("_native_batch_norm_legit_no_training",
                           "aten._native_batch_norm_legit_no_training.default"),
    "Relu": ("relu", "aten.relu.default"),
    "MaxPool": ("max_pool2d", "aten.max_pool2d.default"),
    "Add": ("add", "aten.add.Tensor"),
    "GlobalAveragePool": ("mean", "aten.mean.dim"),
    "Flatten": ("flatten", "aten.flatten.using_ints"),
    "Gemm": ("linear", "aten.linear.default"),
}


def restyle_dynamo(model, data, dynamic_batch):
    """Rewrite a BN-kept TorchScript export (opset 17) of `model` the way PyTorch 2.9's
    dynamo exporter writes it (see README.md for what was matched)."""
    m = onnx.load_from_string(data)
    m = onnx.shape_inference.infer_shapes(m)
    g = m.graph
    modules = dict(model.named_modules())
    counters = collections.Counter()
    getitems = 0
    values = {g.input[0].name: "x"}
    fx_of = {g.input[0].name: "x"}
    meta = []
    for init in g.initializer:
        fx_of[init.name] = ("p_" if not init.name.endswith(("running_mean", "running_var"))
                            else "b_") + init.name.replace(".", "_")
    val_n = 0
    new_nodes = []
    extra_inits = []
    for n in g.node:
        base, target = DYNAMO_OPS[n.op_type]
        k = counters[base]
        counters[base] += 1
        fx = base if k == 0 else f"{base}_{k}"
        path = mm.scope_path(dict(model.named_modules()), n.name)
        prefixes = [""]
        if path:
            parts = path.split(".")
            prefixes += [".".join(parts[:i + 1]) for i in range(len(parts))]
        # A path component that is not a module on its own (never here) would be skipped.
        prefixes = [p for p in prefixes if p in modules]
        classes = [qualname(type(modules[p])) for p in prefixes]
        out = fx
        if n.op_type == "BatchNormalization":
            out = "getitem" if getitems == 0 else f"getitem_{getitems}"
            getitems += 1
        if n.op_type == "GlobalAveragePool":
            # aten.mean.dim over (-1, -2), keepdim=True: ReduceMean with an axes constant
            axes = f"val_{val_n}"
            val_n += 1
            extra_inits.append(onnx.numpy_helper.from_array(np.array([-1, -2], np.int64), axes))
            node = onnx.helper.make_node("ReduceMean", [n.input[0], axes], [n.output[0]],
                                         keepdims=1, noop_with_empty_axes=0)
        elif n.op_type == "Flatten":
            shape = f"val_{val_n}"
            val_n += 1
            extra_inits.append(onnx.numpy_helper.from_array(np.array([0, -1], np.int64), shape))
            node = onnx.helper.make_node("Reshape", [n.input[0], shape], [n.output[0]],
                                         allowzero=0)
        elif n.op_type == "Gemm":
            node = onnx.helper.make_node("Gemm", list(n.input), list(n.output),
                                         transA=0, transB=1, alpha=1.0, beta=1.0)
        elif n.op_type == "Conv":
            # torchlib's convolution: no kernel_shape (taken from the weight), explicit auto_pad
            node = onnx.helper.make_node("Conv", list(n.input), list(n.output),
                                         group=attr(n, "group", 1), pads=attr(n, "pads"),
                                         auto_pad="NOTSET", strides=attr(n, "strides"),
                                         dilations=attr(n, "dilations"))
        else:
            node = onnx.NodeProto()
            node.CopyFrom(n)
        node.name = "node_" + fx
        values[n.output[0]] = out
        fx_of[n.output[0]] = out
        args = ", ".join("%" + fx_of.get(i, i) for i in n.input)
        namespace = "/".join(f"{p}: {c}" for p, c in zip(prefixes, classes)) + f"/{fx}: {target}"
        pairs = [("namespace", namespace),
                 ("pkg.torch.onnx.class_hierarchy", repr(classes + [target])),
                 ("pkg.torch.onnx.fx_node",
                  f"%{fx} : [num_users=1] = call_function[target=torch.ops.{target}]"
                  f"(args = ({args},), kwargs = {{}})"),
                 ("pkg.torch.onnx.name_scopes", repr(prefixes + [fx])),
                 ("pkg.torch.onnx.stack_trace", "")]
        new_nodes.append(node)
        meta.append(pairs)
    del g.node[:]
    g.node.extend(new_nodes)
    g.initializer.extend(extra_inits)
    # the graph output keeps the FX name of the last node (the exporter's default)
    rename_values(g, values)
    g.name = "main_graph"
    batch = "s77" if dynamic_batch else None
    for v in list(g.input) + list(g.output):
        if batch:
            d = v.type.tensor_type.shape.dim[0]
            d.Clear()
            d.dim_param = batch
    keep_vi = [vi for vi in g.value_info if vi.name in values.values()]
    if batch:
        for vi in keep_vi:
            d = vi.type.tensor_type.shape.dim[0]
            d.Clear()
            d.dim_param = batch
    # value_info for parameters and buffers, with their graph-signature metadata
    param_vi = []
    for init in g.initializer:
        if init.name.startswith("val_"):
            continue
        vi = onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims))
        buf = init.name.endswith(("running_mean", "running_var"))
        add_metadata(vi, 4, [("pkg.torch.export.graph_signature.InputSpec.kind",
                              "BUFFER" if buf else "PARAMETER"),
                             ("pkg.torch.export.graph_signature.InputSpec.persistent",
                              "True" if buf else "None"),
                             ("pkg.torch.onnx.original_node_name", fx_of[init.name])])
        param_vi.append(vi)
    del g.value_info[:]
    g.value_info.extend(param_vi + keep_vi)
    add_metadata(g.input[0], 4, [("pkg.torch.export.graph_signature.InputSpec.kind", "USER_INPUT"),
                                 ("pkg.torch.export.graph_signature.InputSpec.persistent", "None"),
                                 ("pkg.torch.onnx.original_node_name", "x")])
    add_metadata(g.output[0], 4, [("pkg.torch.export.graph_signature.OutputSpec.kind",
                                   "USER_OUTPUT"),
                                  ("pkg.torch.onnx.original_node_name", g.output[0].name)])
    for node, pairs in zip(g.node, meta):
        add_metadata(node, 9, pairs)
    sig = "# inputs\n" + "".join(
        f"{fx_of[i.name]}: {'BUFFER' if fx_of[i.name].startswith('b_') else 'PARAMETER'} "
        f"target='{i.name}'\n" for i in g.initializer if not i.name.startswith("val_"))
    sig += "x: USER_INPUT\n\n# outputs\n" + f"{g.output[0].name}: USER_OUTPUT\n"
    add_metadata(g, 16, [("pkg.torch.export.ExportedProgram.graph_signature", sig),
                         ("pkg.torch.export.ExportedProgram.range_constraints",
                          "{s77: VR[0, int_oo]}" if batch else "{}")])
    m.ir_version = 10
    m.producer_name = "pytorch"
    m.producer_version = "2.9.0+cpu"
    del m.opset_import[:]
    m.opset_import.extend([onnx.helper.make_opsetid("", 18)])
    return m.SerializeToString()


def make_dynamo(base):
    if base == "resnet18":
        family, make, shape, dyn = "resnet18", None, (1, 3, 64, 64), False
    else:
        family, make, shape, dyn = "tiny_resnet", mm.TinyResNet, (1, 3, 32, 32), True
    model = build(family if make is None else "dynamo-" + family, make)
    gen = torch.Generator().manual_seed(family_seed("dynamo-" + family) + 2)
    x_trace = torch.randn(shape, generator=gen)
    x = torch.randn((2,) + shape[1:] if dyn else shape, generator=gen)
    data = torch_export(model, x_trace, opset_version=17, input_names=["input"],
                        output_names=["output"], training=torch.onnx.TrainingMode.PRESERVE,
                        do_constant_folding=False)
    data = restyle_dynamo(model, data, dyn)
    return Built(f"dynamo-{family}", data, x.numpy(), reference(model, x), family=family,
                 opset=18, variant="dynb" if dyn else "bn", style="dynamo", reference="pytorch")


# ---------------------------------------------------------------------------------------
# paddle2onnx style
# ---------------------------------------------------------------------------------------

def restyle_paddle(data):
    """A BN-kept opset-11 TorchScript export rewritten as paddle2onnx (>= 1.0) writes it:
    every weight a Constant node (no node name, output = tensor name = the Paddle parameter
    name, raw_data) ahead of the op nodes, op nodes named p2o.<Op>.<n>, tensors named after
    the Paddle layer that makes them (conv2d_3.tmp_0), Linear as MatMul + Add with a [in, out]
    weight, dynamic dims as dim_param 'p2o.DynamicDimension.<n>', and the saved model's
    final scale op as an Identity to save_infer_model/scale_0.tmp_0."""
    m = onnx.load_from_string(data)
    g = m.graph
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}
    consumers = collections.defaultdict(list)
    for n in g.node:
        for i in n.input:
            consumers[i].append(n)
    layer = collections.Counter()       # Paddle layer counters: conv2d_0, batch_norm_0, ...
    p2o = collections.Counter()         # p2o.<Op>.<n> node-name counters
    names = {g.input[0].name: "x"}
    params = []                         # (name, array) in creation order
    nodes = []

    def new_layer(kind):
        k = layer[kind]
        layer[kind] += 1
        return f"{kind}_{k}"

    def node(op, inputs, outputs, src=None, **attrs):
        # an output paddle2onnx names itself takes the next number of the op's counter
        name = f"p2o.{op}.{p2o[op]}"
        p2o[op] += 1
        if outputs is None:
            outputs = [f"p2o.{op}.{p2o[op]}"]
            p2o[op] += 1
        nd = onnx.helper.make_node(op, inputs, outputs, name=name, **attrs)
        if src is not None:
            for a in src.attribute:
                if a.name not in attrs:
                    nd.attribute.append(a)
        nodes.append(nd)
        return nd

    def param(name, array):
        params.append((name, np.ascontiguousarray(array, np.float32)))
        return name

    def inp(v):
        return names[v]

    for n in g.node:
        op = n.op_type
        if op == "Conv":
            lay = new_layer("conv2d")
            ins = [inp(n.input[0]), param(f"{lay}.w_0", inits[n.input[1]])]
            if len(n.input) > 2:
                ins.append(param(f"{lay}.b_0", inits[n.input[2]]))
            out = f"{lay}.tmp_1" if len(n.input) > 2 else f"{lay}.tmp_0"
            node("Conv", ins, [out], src=n)
        elif op == "BatchNormalization":
            lay = new_layer("batch_norm")
            ins = [inp(n.input[0])] + [param(f"{lay}.{s}", inits[n.input[i + 1]])
                                       for i, s in enumerate(("w_0", "b_0", "w_1", "w_2"))]
            out = f"{lay}.tmp_3"
            node("BatchNormalization", ins, [out], epsilon=attr(n, "epsilon", 1e-5),
                 momentum=0.9)
        elif op == "HardSigmoid":
            users = consumers[n.output[0]]
            swish = (len(users) == 1 and users[0].op_type == "Mul"
                     and n.input[0] in users[0].input)
            node("HardSigmoid", [inp(n.input[0])],
                 None if swish else [f"{new_layer('hardsigmoid')}.tmp_0"], src=n)
        elif op == "Mul":
            prod = [x for x in g.node if x.output[0] in n.input]
            swish = any(p.op_type == "HardSigmoid" and p.input[0] in n.input for p in prod)
            out = f"{new_layer('hardswish')}.tmp_0" if swish else new_layer("elementwise_mul")
            node("Mul", [inp(i) for i in n.input], [out])
        elif op == "Add":
            node("Add", [inp(i) for i in n.input], [new_layer("elementwise_add")])
        elif op == "Relu":
            node("Relu", [inp(n.input[0])], [f"{new_layer('relu')}.tmp_0"])
        elif op in ("GlobalAveragePool", "MaxPool", "AveragePool"):
            node(op, [inp(n.input[0])], [f"{new_layer('pool2d')}.tmp_0"], src=n)
        elif op == "Flatten":
            node("Flatten", [inp(n.input[0])], [f"{new_layer('flatten')}.tmp_0"], src=n)
        elif op == "Gemm":
            lay = new_layer("linear")
            assert attr(n, "transB") == 1
            w = param(f"{lay}.w_0", inits[n.input[1]].T)
            b = param(f"{lay}.b_0", inits[n.input[2]])
            node("MatMul", [inp(n.input[0]), w], [f"{lay}.tmp_0"])
            node("Add", [f"{lay}.tmp_0", b], [f"{lay}.tmp_1"])
            names[n.output[0]] = f"{lay}.tmp_1"
            continue
        else:
            raise ValueError(f"paddle restyle: op {op} not handled")
        names[n.output[0]] = nodes[-1].output[0]
    out_name = "save_infer_model/scale_0.tmp_0"
    node("Identity", [names[g.output[0].name]], [out_name])
    consts = []
    for name, array in params:
        t = onnx.numpy_helper.from_array(array, name)
        consts.append(onnx.helper.make_node("Constant", [], [name], value=t))
    dyn = iter(range(100))

    def vi(name, shape):
        dims = [f"p2o.DynamicDimension.{next(dyn)}" if d is None else d for d in shape]
        return onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, dims)

    graph = onnx.helper.make_graph(consts + nodes, "PaddlePaddle Graph 0",
                                   [vi("x", [None, 3, None, None])],
                                   [vi(out_name, [None, g.output[0].type.tensor_type.shape.dim[1]
                                                  .dim_value])])
    model = onnx.helper.make_model(graph, producer_name="PaddlePaddle",
                                   opset_imports=[onnx.helper.make_opsetid("", 11)])
    model.ir_version = 6
    model.producer_version = ""
    return model.SerializeToString()


def make_paddle():
    model = build("paddle2onnx-lcnet", LCNetTiny)
    gen = torch.Generator().manual_seed(family_seed("paddle2onnx-lcnet") + 2)
    x_trace = torch.randn(1, 3, 64, 64, generator=gen)
    x = torch.randn(2, 3, 80, 96, generator=gen)
    data = torch_export(model, x_trace, opset_version=11, input_names=["input"],
                        output_names=["output"], training=torch.onnx.TrainingMode.PRESERVE,
                        do_constant_folding=False)
    return Built("paddle2onnx-lcnet", restyle_paddle(data), x.numpy(), reference(model, x),
                 family="lcnet", opset=11, variant="dynbhw", style="paddle2onnx",
                 reference="pytorch")


# ---------------------------------------------------------------------------------------
# tf2onnx style
# ---------------------------------------------------------------------------------------

def restyle_tf2onnx(model, data):
    """A BN-kept opset-13 TorchScript export of NHWC(KerasCNN) rewritten as tf2onnx writes
    a Keras model: NHWC input 'input_1' (batch dim 'unk__<n>') and one Transpose to NCHW,
    nodes named after the TF ops (model/conv2d/Conv2D, model/conv2d_1/Relu,
    model/batch_normalization_5/FusedBatchNormV3), tensors '<op>:0', Conv+BatchNorm fused
    (initializers model/conv2d/Conv2D_weights_fused_bn, ..._bias_fused_bn), other weights
    model/<layer>/Conv2D/ReadVariableOp:0, explicit asymmetric pads folded into the Conv,
    Dense as MatMul + Add, global average pooling as ReduceMean."""
    m = onnx.load_from_string(data)
    g = m.graph
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    consumers = collections.defaultdict(list)
    for n in g.node:
        for i in n.input:
            consumers[i].append(n)
    names = {g.input[0].name: "input_1"}
    new_inits = []
    nodes = []
    fused_bn = set()
    relu_count = collections.Counter()
    suffix = iter(range(6, 1000))

    def layer_of(n):
        return mm.scope_path(dict(model.named_modules()), n.name).split(".")[-1]

    def init(name, array):
        new_inits.append(onnx.numpy_helper.from_array(np.ascontiguousarray(array, np.float32),
                                                      name))
        return name

    pending_pads = {}
    for n in g.node:
        op = n.op_type
        if op == "Constant" or n.name.startswith("/model/pad/") and op != "Pad":
            continue    # the ZeroPad2d's pads, computed at run time by the TorchScript export
        elif op == "Transpose":   # the one tf2onnx's transpose optimizer leaves at the input
            tname = f"model/conv2d/Conv2D__{next(suffix)}"
            nd = onnx.helper.make_node("Transpose", [names[n.input[0]]], [tname + ":0"],
                                       name=tname, perm=[0, 3, 1, 2])
        elif op == "Pad":
            left, right, top, bottom = model.model.pad.padding
            pending_pads[n.output[0]] = (names[n.input[0]], [0, 0, top, left, 0, 0, bottom, right])
            continue
        elif op == "Conv":
            lay = layer_of(n)
            x = n.input[0]
            pads = list(attr(n, "pads", [0, 0, 0, 0]))
            if x in pending_pads:
                src, p = pending_pads[x]
                # ONNX Pad pads: [x1_begin.. , x1_end..] over N, C, H, W
                pads = [pads[0] + p[2], pads[1] + p[3], pads[2] + p[6], pads[3] + p[7]]
                xin = src
            else:
                xin = names[x]
            w = inits[n.input[1]]
            b = inits[n.input[2]] if len(n.input) > 2 else np.zeros(w.shape[0], np.float32)
            users = consumers[n.output[0]]
            group = attr(n, "group", 1)
            opname = "depthwise" if group > 1 else "Conv2D"
            if len(users) == 1 and users[0].op_type == "BatchNormalization":
                bn = users[0]
                fused_bn.add(bn.name)
                gamma, beta, mean, var = (inits[i] for i in bn.input[1:5])
                w, b = fold_bn(w, b, gamma, beta, mean, var, attr(bn, "epsilon"))
                ins = [xin, init(f"model/{lay}/{opname}_weights_fused_bn", w),
                       init(f"model/{lay}/{opname}_bias_fused_bn", b)]
                out = f"model/{layer_of(bn)}/FusedBatchNormV3:0"
                names[bn.output[0]] = out
            else:
                ins = [xin, init(f"model/{lay}/{opname}/ReadVariableOp:0", w),
                       init(f"model/{lay}/BiasAdd/ReadVariableOp:0", b)]
                out = f"model/{lay}/BiasAdd:0"
            nd = onnx.helper.make_node("Conv", ins, [out], name=f"model/{lay}/{opname}",
                                       kernel_shape=list(attr(n, "kernel_shape")),
                                       strides=list(attr(n, "strides")),
                                       dilations=list(attr(n, "dilations")),
                                       pads=pads, group=group)
        elif op == "BatchNormalization":
            if n.name in fused_bn:
                continue
            lay = layer_of(n)
            ins = [names[n.input[0]]] + [init(name, inits[i]) for name, i in zip(
                (f"model/{lay}/ReadVariableOp:0", f"model/{lay}/ReadVariableOp_1:0",
                 f"model/{lay}/FusedBatchNormV3/ReadVariableOp:0",
                 f"model/{lay}/FusedBatchNormV3/ReadVariableOp_1:0"), n.input[1:5])]
            nd = onnx.helper.make_node("BatchNormalization", ins,
                                       [f"model/{lay}/FusedBatchNormV3:0"],
                                       name=f"model/{lay}/FusedBatchNormV3",
                                       epsilon=attr(n, "epsilon"))
        elif op == "Relu":
            src = producer[n.input[0]]
            if src.op_type == "Add":
                lay = "re_lu" if relu_count["re_lu"] == 0 else f"re_lu_{relu_count['re_lu']}"
                relu_count["re_lu"] += 1
            else:   # activation='relu' inside the conv layer that produced the input
                conv = src if src.op_type == "Conv" else producer[src.input[0]]
                lay = layer_of(conv)
            nd = onnx.helper.make_node("Relu", [names[n.input[0]]], [f"model/{lay}/Relu:0"],
                                       name=f"model/{lay}/Relu")
        elif op == "Add":
            nd = onnx.helper.make_node("Add", [names[i] for i in n.input], ["model/add/add:0"],
                                       name="model/add/add")
        elif op == "ReduceMean":
            nd = onnx.helper.make_node("ReduceMean", [names[n.input[0]]],
                                       ["model/global_average_pooling2d/Mean:0"],
                                       name="model/global_average_pooling2d/Mean",
                                       axes=list(attr(n, "axes")), keepdims=0)
        elif op == "Gemm":
            w = init("model/dense/MatMul/ReadVariableOp:0", inits[n.input[1]].T)
            b = init("model/dense/BiasAdd/ReadVariableOp:0", inits[n.input[2]])
            nodes.append(onnx.helper.make_node("MatMul", [names[n.input[0]], w],
                                               ["model/dense/MatMul:0"],
                                               name="model/dense/MatMul"))
            nd = onnx.helper.make_node("Add", ["model/dense/MatMul:0", b], ["dense"],
                                       name="model/dense/BiasAdd")
        else:
            raise ValueError(f"tf2onnx restyle: op {op} not handled")
        names[n.output[0]] = nd.output[0]
        nodes.append(nd)
    h, w_, c = (d.dim_value for d in g.input[0].type.tensor_type.shape.dim[1:])
    graph = onnx.helper.make_graph(
        nodes, "tf2onnx",
        [onnx.helper.make_tensor_value_info("input_1", onnx.TensorProto.FLOAT,
                                            ["unk__58", h, w_, c])],
        [onnx.helper.make_tensor_value_info("dense", onnx.TensorProto.FLOAT,
                                            ["unk__59", g.output[0].type.tensor_type.shape
                                             .dim[1].dim_value])],
        new_inits)
    model_proto = onnx.helper.make_model(graph, producer_name="tf2onnx",
                                         producer_version="1.16.1 15c810",
                                         opset_imports=[onnx.helper.make_opsetid("", 13)])
    model_proto.ir_version = 7
    return model_proto.SerializeToString()


def make_tf2onnx():
    inner = build("tf2onnx-cnn", KerasCNN)
    model = NHWC(inner).eval()
    gen = torch.Generator().manual_seed(family_seed("tf2onnx-cnn") + 2)
    x_trace = torch.randn(1, 64, 64, 3, generator=gen)
    x = torch.randn(2, 64, 64, 3, generator=gen)
    data = torch_export(model, x_trace, opset_version=13, input_names=["input"],
                        output_names=["output"], training=torch.onnx.TrainingMode.PRESERVE,
                        do_constant_folding=False)
    return Built("tf2onnx-cnn", restyle_tf2onnx(model, data), x.numpy(), reference(model, x),
                 family="keras_cnn", opset=13, variant="dynb", style="tf2onnx",
                 reference="pytorch")


def make_styled(name):
    if name == "dynamo-resnet18":
        return make_dynamo("resnet18")
    if name == "dynamo-tiny_resnet":
        return make_dynamo("tiny_resnet")
    if name == "paddle2onnx-lcnet":
        return make_paddle()
    if name == "tf2onnx-cnn":
        return make_tf2onnx()
    raise KeyError(name)


# ---------------------------------------------------------------------------------------
# Writing, checking, manifest
# ---------------------------------------------------------------------------------------

def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def dim_list(vi):
    out = []
    for d in vi.type.tensor_type.shape.dim:
        out.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?"))
    return out


def describe(b):
    """Manifest fields of a built model, from the ONNX file itself."""
    proto = onnx.load_from_string(b.data)
    g = proto.graph
    inits = {t.name for t in g.initializer}
    graph_inputs = [v for v in g.input if v.name not in inits]
    inp = graph_inputs[0]
    declared = dim_list(inp)
    ops = collections.Counter(n.op_type for n in g.node)
    return dict(
        name=b.name, **b.fields,
        file=f"models/{b.name}.onnx",
        bytes=len(b.data),
        sha256=hashlib.sha256(b.data).hexdigest(),
        input={"name": inp.name, "declared": declared, "shape": list(b.x.shape)},
        dynamic=any(not isinstance(d, int) for d in declared),
        outputs=[{"name": o.name, "declared": dim_list(o), "shape": list(y.shape)}
                 for o, y in zip(g.output, b.ys)],
        reference_files={"input": f"models/{b.name}/test_data_set_0/input_0.pb",
                         "outputs": [f"models/{b.name}/test_data_set_0/output_{k}.pb"
                                     for k in range(len(b.ys))]},
        ops=dict(sorted(ops.items())),
        convs=ops["Conv"] + ops["ConvTranspose"],
    )


def write_model(dest, b, entry):
    write(os.path.join(dest, entry["file"]), b.data)
    write(os.path.join(dest, entry["reference_files"]["input"]),
          mm.tensor_pb(b.x, entry["input"]["name"]))
    for k, (y, o) in enumerate(zip(b.ys, entry["outputs"])):
        write(os.path.join(dest, entry["reference_files"]["outputs"][k]), mm.tensor_pb(y, o["name"]))


def skeleton(data):
    proto = onnx.load_from_string(data)
    for t in proto.graph.initializer:
        for field in ("raw_data", "float_data", "int32_data", "int64_data", "double_data",
                      "uint64_data", "string_data"):
            t.ClearField(field)
    return proto.SerializeToString()


def ort_outputs(path, entry, dest):
    """onnxruntime's outputs for the model on its reference input: (list of arrays, None) or
    (None, error line)."""
    with tempfile.TemporaryDirectory() as d:
        x = onnx.numpy_helper.to_array(onnx.load_tensor(
            os.path.join(dest, entry["reference_files"]["input"])))
        np.save(os.path.join(d, "x.npy"), x)
        p = subprocess.run(["node", ORT_RUN, path, os.path.join(d, "out"),
                            f"{entry['input']['name']}={os.path.join(d, 'x.npy')}"],
                           capture_output=True, text=True, timeout=600)
        if p.returncode:
            return None, "onnxruntime: " + p.stderr.strip()
        return [np.load(os.path.join(d, "out", f"output_{k}.npy"))
                for k in range(len(entry["outputs"]))], None


def compare(got, want):
    """max|got - want| / max|want| over all outputs (inf on a shape mismatch)."""
    worst = 0.0
    for a, b in zip(got, want):
        if a.shape != b.shape:
            return float("inf")
        worst = max(worst, float(np.abs(a - b).max() / max(float(np.abs(b).max()), 1e-30)))
    return worst


def all_names():
    return [model_name(*r) for r in matrix()] + STYLED


def build_one(name):
    if name in STYLED:
        return make_styled(name)
    fam, op, var = re.fullmatch(r"(.+)-op(\d+)-(\w+)", name).groups()
    return make_torchscript(fam, int(op), var)


def parse_name(name):
    if name in STYLED:
        return {}
    fam, op, var = re.fullmatch(r"(.+)-op(\d+)-(\w+)", name).groups()
    return dict(family=fam, opset=int(op), variant=var, style="torchscript")


def generate(names, dest, ort=False, log=print, cached=None):
    """Build every named model into dest. Returns manifest entries (refusals included)."""
    entries = []
    for name in names:
        t0 = time.time()
        old = (cached or {}).get(name)
        if old and old.get("file") and os.path.exists(os.path.join(dest, old["file"])):
            with open(os.path.join(dest, old["file"]), "rb") as f:
                if hashlib.sha256(f.read()).hexdigest() == old["sha256"] and all(
                        os.path.exists(os.path.join(dest, p)) for p in
                        [old["reference_files"]["input"]] + old["reference_files"]["outputs"]):
                    entries.append(old)
                    log(f"{name:<44} cached")
                    continue
        try:
            b = build_one(name)
        except Exception as e:  # noqa: BLE001 - an exporter refusal is recorded, not fatal
            entry = dict(name=name, **parse_name(name), refused=one_line(e))
            entries.append(entry)
            log(f"{name:<44} exporter refused: {entry['refused'][:100]}")
            continue
        entry = describe(b)
        write_model(dest, b, entry)
        msg = ""
        if ort or name in ORT_REFERENCE:
            outs, err = ort_outputs(os.path.join(dest, entry["file"]), entry, dest)
            if err:
                entry["ort_agrees"], msg = False, err
            else:
                worst = compare(outs, b.ys)
                msg = f"max|ort - torch| / max|torch| = {worst:.2e}"
                entry["ort_agrees"] = worst <= 1e-4
                if name in ORT_REFERENCE:
                    # the file computes something else than the module: onnxruntime's
                    # output for the file is the reference
                    entry["reference"] = "onnxruntime"
                    entry["torch_vs_onnx"] = f"{worst:.3g}: {ORT_REFERENCE[name]}"
                    entry["ort_agrees"] = True
                    for k, (y, o) in enumerate(zip(outs, entry["outputs"])):
                        write(os.path.join(dest, entry["reference_files"]["outputs"][k]),
                              mm.tensor_pb(y, o["name"]))
        entries.append(entry)
        log(f"{name:<44} {entry['bytes'] / 1e6:8.2f} MB  {time.time() - t0:5.1f} s  {msg}")
    return entries


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--ship", action="store_true",
                      help="regenerate all and write the shipped part into testdata/corpus")
    mode.add_argument("--out", metavar="DIR", help="write a self-contained corpus into DIR")
    ap.add_argument("--quick", action="store_true", help="only the --quick subset (with --out)")
    ap.add_argument("--only", metavar="REGEX", help="only models whose name matches")
    ap.add_argument("--ort", action="store_true",
                    help="check every model in onnxruntime against PyTorch (needs node)")
    ap.add_argument("--list", action="store_true", help="print the model names and exit")
    args = ap.parse_args()

    names = all_names()
    if args.list:
        print("\n".join(names))
        return 0
    t0 = time.time()
    if args.ship:
        with tempfile.TemporaryDirectory() as tmp:
            entries = generate(names, tmp, ort=args.ort)
            failed = [e["name"] for e in entries if e.get("ort_agrees") is False]
            shipped_total = 0
            for sub in ("models", "skeletons"):
                shutil.rmtree(os.path.join(HERE, sub), ignore_errors=True)
            for e in entries:
                if "refused" in e:
                    continue
                refs = [e["reference_files"]["input"]] + e["reference_files"]["outputs"]
                size = e["bytes"] + sum(os.path.getsize(os.path.join(tmp, p)) for p in refs)
                e["shipped"] = size < SHIP_MAX
                e["quick"] = e["shipped"] or e["name"] in QUICK
                if e["shipped"]:
                    shipped_total += size
                    for p in [e["file"]] + refs:
                        os.makedirs(os.path.dirname(os.path.join(HERE, p)), exist_ok=True)
                        shutil.copyfile(os.path.join(tmp, p), os.path.join(HERE, p))
                else:
                    with open(os.path.join(tmp, e["file"]), "rb") as f:
                        sk = skeleton(f.read())
                    e["skeleton"] = f"skeletons/{e['name']}.skeleton.onnx"
                    write(os.path.join(HERE, e["skeleton"]), sk)
                    shipped_total += len(sk)
                    if len(sk) > SKELETON_MAX:
                        print(f"{e['name']}: skeleton {len(sk)} bytes", file=sys.stderr)
                        failed.append(e["name"])
            manifest = {"comment": "made by make_corpus.py --ship; see README.md",
                        "torch": torch.__version__, "onnx": onnx.__version__,
                        "models": entries}
            write(os.path.join(HERE, "manifest.json"),
                  (json.dumps(manifest, indent=1) + "\n").encode())
        print(f"shipped {shipped_total / 1e6:.2f} MB in testdata/corpus, "
              f"{time.time() - t0:.0f} s")
        if shipped_total > SHIPPED_TOTAL_MAX:
            print("over the 30 MB budget", file=sys.stderr)
            return 1
        if failed:
            print("onnxruntime disagrees or too large: " + ", ".join(failed), file=sys.stderr)
            return 1
        return 0

    # --out DIR: a self-contained corpus (regenerated models + copies of the shipped ones)
    with open(os.path.join(HERE, "manifest.json")) as f:
        shipped_manifest = json.load(f)
    want = [e for e in shipped_manifest["models"]
            if (not args.quick or e.get("quick")) and
            (not args.only or re.search(args.only, e["name"]))]
    dest = os.path.abspath(args.out)
    os.makedirs(dest, exist_ok=True)
    cached = {}
    mpath = os.path.join(dest, "manifest.json")
    if os.path.exists(mpath):
        with open(mpath) as f:
            cached = {e["name"]: e for e in json.load(f)["models"]}
    out_entries = []
    regen = [e for e in want if "refused" not in e and not e["shipped"]]
    for e in want:
        if "refused" in e:
            out_entries.append(e)
        elif e["shipped"]:
            for p in [e["file"], e["reference_files"]["input"]] + e["reference_files"]["outputs"]:
                os.makedirs(os.path.dirname(os.path.join(dest, p)), exist_ok=True)
                shutil.copyfile(os.path.join(HERE, p), os.path.join(dest, p))
            out_entries.append(e)
    # regenerated entries: reuse cache when the bytes match what the shipped manifest expects
    expect = {e["name"]: e for e in regen}
    cached = {k: v for k, v in cached.items()
              if k in expect and v.get("sha256") == expect[k]["sha256"]}
    got = generate([e["name"] for e in regen], dest, ort=args.ort, cached=cached)
    mismatch = []
    for g_, e in zip(got, regen):
        g_["shipped"], g_["quick"] = False, e.get("quick", False)
        if g_.get("sha256") != e["sha256"]:
            mismatch.append(e["name"])
        out_entries.append(g_)
    order = {e["name"]: k for k, e in enumerate(shipped_manifest["models"])}
    out_entries.sort(key=lambda e: order[e["name"]])
    write(mpath, (json.dumps({"comment": "made by make_corpus.py --out", "models": out_entries},
                             indent=1) + "\n").encode())
    print(f"{len(out_entries)} models in {dest} ({len(regen)} regenerated), "
          f"{time.time() - t0:.0f} s")
    if mismatch:
        print(f"note: {len(mismatch)} regenerated models differ in bytes from the shipped "
              f"manifest (another torch build?): {', '.join(mismatch[:5])}...", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
