#!/usr/bin/env python3
"""Activations written as x * gate(x) fused into the convolution before them: SiLU as
exporters write it (Sigmoid, then Mul of its input by it; EfficientNet, YOLO) and hardswish
before opset 14 (HardSigmoid with alpha 1/6 and beta 1/2, then Mul; MobileNetV3) become one
oneDNN post-op of the conv (swish, hardswish).

usage: test_fusion.py REMODEL SPATIAL_PLAN

Every model is built here with the onnx package (tests/ortcheck.py) and run by `remodel run`
fused, with --no-fuse and with --direct-conv; outputs must match onnxruntime's on the same
model and input to 1e-4 of their scale. Where the gate must fuse, the fused plan
(tests/spatial_plan) has no Sigmoid, HardSigmoid or Mul step; where it must not (the conv's
output or the gate's read by something else, a HardSigmoid of other constants), it has.
Nothing is timed.
"""

import shutil
import sys
import tempfile

REMODEL, SPATIAL_PLAN = sys.argv[1], sys.argv[2]

import ortcheck  # noqa: E402
from rmtest import Suite  # noqa: E402

T = Suite("RM_FUSION_ONLY")  # RM_FUSION_ONLY=text: only the cases whose name contains it
WORK = tempfile.mkdtemp(prefix="rm_fusion_")
randn, Net = ortcheck.randn, ortcheck.Net
check = ortcheck.Checker(T, REMODEL, SPATIAL_PLAN, WORK).check
X = {"x": randn(1, 16, 8, 8)}
GATES = ("Sigmoid", "HardSigmoid", "Mul")


def fused(steps):
    left = [s["node"] for s in steps if s["op"] in GATES]
    assert not left, f"gate steps left in the plan: {left}"


def not_fused(steps):
    assert any(s["op"] == "Mul" for s in steps), "the Mul was fused, it must not be"


def gated(net, x, gate="Sigmoid", mul_first=False, **attrs):
    g = net.node(gate, [x], **attrs)
    return net.node("Mul", [g, x] if mul_first else [x, g])


for mul_first in (False, True):
    net = Net()
    y = gated(net, net.conv("x", 16, 32, relu=False), mul_first=mul_first)
    check(f"Conv, SiLU ({'Mul(sigmoid, x)' if mul_first else 'Mul(x, sigmoid)'}), Conv", net, X,
          [net.conv(y, 32, 16, relu=False)], fused)

net = Net()
y = gated(net, net.bn(net.conv("x", 16, 32, relu=False), 32))
check("Conv, BatchNorm, SiLU", net, X, [y], fused)

net = Net()
a = net.conv("x", 16, 16, relu=False)
y = gated(net, net.conv(a, 16, 16, k=1, relu=False))
check("SiLU, then a residual Add", net, X, [net.node("Add", [net.conv(y, 16, 16, relu=False), a])], fused)

net = Net()
w = net.name("w")
net.inits[w] = randn(16, 1, 3, 3)
y = gated(net, net.node("Conv", ["x", w], group=16, pads=[1, 1, 1, 1]))
check("depthwise Conv, SiLU", net, X, [y], fused)

net = Net()
y = gated(net, net.conv("x", 16, 16, relu=False), gate="HardSigmoid", alpha=1.0 / 6, beta=0.5)
check("Conv, hardswish as HardSigmoid(1/6, 1/2) and Mul", net, X, [y], fused)

net = Net()
y = gated(net, net.conv("x", 16, 16, relu=False), gate="HardSigmoid")
check("Conv, HardSigmoid of the default constants (0.2, 0.5) and Mul: not a hardswish", net, X, [y], not_fused)

net = Net()
c = net.conv("x", 16, 16, relu=False)
check("the conv's output read by a third node: not fused", net, X,
      [gated(net, c), net.node("Exp", [c])], not_fused)

net = Net()
c = net.conv("x", 16, 16, relu=False)
s = net.node("Sigmoid", [c])
check("the sigmoid read by another node: not fused", net, X,
      [net.node("Mul", [c, s]), net.node("Neg", [s])], not_fused)

net = Net()
c = net.conv("x", 16, 16, relu=False)
check("the conv's output a graph output: not fused", net, X, [gated(net, c), c], not_fused)

shutil.rmtree(WORK, ignore_errors=True)
T.finish()
