#!/usr/bin/python3
"""Pruning through the ops of decoder and segmentation nets: Resize and Upsample (nearest and
bilinear, scales and sizes, constant and Shape-derived sizes), ConvTranspose (as a consumer,
as a producer, depthwise), LayerNormalization over spatial axes (and its opset-13
decomposition), InstanceNorm, PRelu with a per-channel slope, Mul/Add by per-channel
constants (one shared by two groups), reductions whose axes are an input (ReduceSum from
opset 13, ReduceMean from 18), a dynamo-style classifier head (ReduceMean, a Reshape to
[0, -1], Gemm), grouped convolutions (ResNeXt, RegNet: each group pruned alike) and hidden
Linear layers (Gemm, Gemm with transB=0, MatMul + Add; with BatchNorm1d), the hidden features
of a Linear on the last axis (ConvNeXt's channels-last MLP, a transformer's MLP on tokens); and
the cases that must still block.

usage: test_prune_roles.py REMODEL

Every model is a small PyTorch module exported by Debian's torch (a few then edited with the
onnx package: constant sizes, a [1,C,1,1] slope). `remodel prune` removes half the channels
of one conv; which ones it kept is read from the written model's channel-map metadata. The
expected output is the PyTorch module pruned the same way (its weights sliced in PyTorch on
those channels), computed by PyTorch; the pruned ONNX model runs in onnxruntime
(tests/ort/ort_run.js) and must match it to 1e-4 of the output's scale, and pass onnx's
checker with full shape inference. Resize with opset 18's `axes` (past torch 1.13's
exporter and onnx 1.12's checker) is built with onnx.helper, and its expected model is the
same graph built from weights sliced with numpy, both run by onnxruntime. Where the
importance criterion reads a ConvTranspose's
weight, the channels kept are checked against an L1 norm computed here with numpy. A case
that must block exits 2 with one line naming the op and writes nothing.
"""

import copy
import json
import os
import sys
import warnings

import numpy as np
import onnx
from onnx import numpy_helper

warnings.filterwarnings("ignore")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from prune_ref import Harness, close, conv_output, kept, randomise, run_ref, sl  # noqa: E402

H = Harness(sys.argv[1], "rm_prune_roles_", only=os.environ.get("RM_ROLES_ONLY"))
case, remodel, ort, WORK = H.case, H.remodel, H.ort, H.work
# RM_ROLES_KEEP=1 keeps the models (in the temporary folder WORK names)


def export(m, name, opset, shape=(1, 3, 8, 8)):
    path = os.path.join(WORK, name + ".onnx")
    with torch.no_grad():
        torch.onnx.export(m, torch.zeros(shape), path, opset_version=opset, input_names=["x"], output_names=["y"])
    return path


def prune_and_compare(path, m, module, slice_fn, shape=(1, 3, 8, 8), ratio="0.5", expect_kept=None, extra=()):
    return H.prune_and_compare(path, m, module, slice_fn, shape, ratio=ratio, expect_kept=expect_kept, extra=extra)


def blocks(path, module, *needles):
    out = path[:-5] + "-pruned.onnx"
    rc, so, err = remodel("prune", path, module, "--ratio", "0.5", "-o", out)
    assert rc == 2, f"exit {rc}, expected 2 (stdout {so!r}, stderr {err!r})"
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    for nd in needles:
        assert nd in lines[0], f"{nd!r} not in {lines[0]!r}"
    assert not os.path.exists(out), "a refused prune wrote a file"


# ---- models ------------------------------------------------------------------------------


class ResizeNet(nn.Module):
    """conv1 -> BN -> ReLU -> interpolate -> conv2: conv1's channels pass the resize."""

    def __init__(self, mode, size):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1)
        self.mode, self.size = mode, size

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        kw = {"size": (16, 16)} if self.size else {"scale_factor": 2.0}
        if self.mode == "bilinear":
            kw["align_corners"] = False
        return self.conv2(F.interpolate(y, mode=self.mode, **kw))


def slice_resize(m, k):
    m.conv1.weight = sl(m.conv1.weight, k, 0)
    m.conv1.bias = sl(m.conv1.bias, k, 0)
    for a in ("weight", "bias"):
        setattr(m.bn1, a, sl(getattr(m.bn1, a), k, 0))
    m.bn1.running_mean = sl(m.bn1.running_mean, k, 0)
    m.bn1.running_var = sl(m.bn1.running_var, k, 0)
    m.conv2.weight = sl(m.conv2.weight, k, 1)


def constant_sizes(path, sizes, shared_with=None):
    """The model with its Resize's sizes an int64 initializer instead of Shape arithmetic."""
    mp = onnx.load(path)
    g = mp.graph
    rs = [n for n in g.node if n.op_type == "Resize"]
    init = numpy_helper.from_array(np.array(sizes, dtype=np.int64), "resize_sizes")
    g.initializer.append(init)
    for n in rs:
        n.input[3] = "resize_sizes"
    while True:  # drop the Shape arithmetic nothing reads any more
        used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
        dead = [n for n in g.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            g.node.remove(n)
    assert "Shape" not in [n.op_type for n in g.node]
    onnx.save(mp, path)
    return path


# (torch's opset-9 bilinear export is not PyTorch's interpolation: asymmetric coordinates)
for opset, mode, size in [(9, "nearest", False), (10, "nearest", False),
                          (11, "nearest", False), (11, "bilinear", True), (13, "nearest", True),
                          (13, "bilinear", False), (17, "nearest", True), (17, "bilinear", True)]:
    form = "sizes from Shape" if size else "scales"
    op = "Upsample" if opset < 10 else "Resize"

    @case(f"{op} opset {opset} {mode}, {form}: conv1 pruned through it")
    def _(opset=opset, mode=mode, size=size):
        m = randomise(ResizeNet(mode, size), opset)
        path = export(m, f"resize{opset}{mode}{size}", opset)
        assert op in [n.op_type for n in onnx.load(path).graph.node]
        prune_and_compare(path, m, "conv1", slice_resize)


for opset, mode in [(11, "nearest"), (13, "bilinear"), (17, "nearest")]:
    @case(f"Resize opset {opset} {mode}, constant sizes: entry 1 follows the prune")
    def _(opset=opset, mode=mode):
        m = randomise(ResizeNet(mode, True), 100 + opset)
        path = constant_sizes(export(m, f"resizec{opset}{mode}", opset), [1, 8, 16, 16])
        prune_and_compare(path, m, "conv1", slice_resize)
        pm = onnx.load(path[:-5] + "-pruned.onnx")
        sizes = [numpy_helper.to_array(t).tolist() for t in pm.graph.initializer if t.data_type == onnx.TensorProto.INT64
                 and list(t.dims) == [4]]
        assert [1, 4, 16, 16] in sizes, f"sizes initializers after the prune: {sizes}"


class TwoResize(nn.Module):
    """Two branches resized with one shared constant sizes tensor; only one is pruned."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv1b = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1)
        self.conv2b = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x):
        a = F.interpolate(torch.relu(self.conv1(x)), size=(16, 16), mode="nearest")
        b = F.interpolate(torch.relu(self.conv1b(x)), size=(16, 16), mode="nearest")
        return self.conv2(a) + self.conv2b(b)


@case("Resize: constant sizes shared by two groups: the pruned one gets its own copy")
def _():
    m = randomise(TwoResize(), 5)
    path = constant_sizes(export(m, "resize_shared", 13), [1, 8, 16, 16])

    def f(r, k):
        r.conv1.weight = sl(r.conv1.weight, k, 0)
        r.conv1.bias = sl(r.conv1.bias, k, 0)
        r.conv2.weight = sl(r.conv2.weight, k, 1)
    prune_and_compare(path, m, "conv1", f)
    pm = onnx.load(path[:-5] + "-pruned.onnx")
    rs = [n.input[3] for n in pm.graph.node if n.op_type == "Resize"]
    assert len(set(rs)) == 2, f"both Resizes read {rs}"


def resize18(w1, b1, w2, axes, sizes):
    """conv1 -> Resize (opset 18, `axes`, constant sizes) -> conv2, built with onnx.helper."""
    from onnx import TensorProto, helper
    nodes = [helper.make_node("Conv", ["x", "conv1.weight", "conv1.bias"], ["c1"], name="/conv1/Conv", pads=[1] * 4),
             helper.make_node("Relu", ["c1"], ["r1"], name="/relu/Relu"),
             helper.make_node("Resize", ["r1", "", "", "sizes"], ["up"], name="/Resize", axes=axes, mode="nearest"),
             helper.make_node("Conv", ["up", "conv2.weight"], ["y"], name="/conv2/Conv", pads=[1] * 4)]
    inits = [numpy_helper.from_array(w1, "conv1.weight"), numpy_helper.from_array(b1, "conv1.bias"),
             numpy_helper.from_array(w2, "conv2.weight"),
             numpy_helper.from_array(np.array(sizes, np.int64), "sizes")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)


for axes, sizes in [([2, 3], [16, 16]), ([1, 2, 3], [8, 16, 16]), ([-1, -3, -2], [16, 8, 16])]:
    @case(f"Resize opset 18, axes {axes}, constant sizes {sizes}: the channel entry (if listed) follows")
    def _(axes=axes, sizes=sizes):
        # expected: the same graph built here from weights sliced with numpy (onnx 1.12's
        # checker stops at opset 17, so onnxruntime is the judge)
        rng = np.random.default_rng(18)
        w1 = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
        b1 = rng.standard_normal(8).astype(np.float32)
        w2 = rng.standard_normal((4, 8, 3, 3)).astype(np.float32)
        path = os.path.join(WORK, f"resize18_{len(axes)}_{axes[0]}.onnx")
        onnx.save(resize18(w1, b1, w2, axes, sizes), path)
        out = path[:-5] + "-pruned.onnx"
        rc, _, err = remodel("prune", path, "conv1", "--ratio", "0.5", "-o", out)
        assert rc == 0, f"prune: exit {rc}: {err.strip()}"
        keep = kept(out, "c1")
        s2 = [len(keep) if a in (1, -3) else v for a, v in zip(axes, sizes)]
        want_path = path[:-5] + "-expected.onnx"
        onnx.save(resize18(w1[keep], b1[keep], w2[:, keep], axes, s2), want_path)
        x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
        close(ort(out, x), ort(want_path, x), "onnxruntime: remodel's prune vs the model pruned here")
        got = [numpy_helper.to_array(t).tolist() for t in onnx.load(out).graph.initializer if t.name == "sizes"]
        assert got == [s2], f"sizes after the prune: {got}, expected {s2}"


class DeconvNet(nn.Module):
    """conv1 -> ConvTranspose (group 1 or depthwise) -> conv2."""

    def __init__(self, depthwise, bias=True):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        if depthwise:
            self.up = nn.ConvTranspose2d(8, 8, 2, stride=2, groups=8, bias=bias)
            c = 8
        else:
            self.up = nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1, bias=bias)
            c = 6
        self.bn2 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, 4, 3, padding=1)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return self.conv2(torch.relu(self.bn2(self.up(y))))


def slice_bn(bn, k):
    for a in ("weight", "bias"):
        setattr(bn, a, sl(getattr(bn, a), k, 0))
    bn.running_mean = sl(bn.running_mean, k, 0)
    bn.running_var = sl(bn.running_var, k, 0)


for opset in (11, 17):
    @case(f"ConvTranspose opset {opset}: a consumer (weight axis 0 follows conv1)")
    def _(opset=opset):
        m = randomise(DeconvNet(False), 20 + opset)
        path = export(m, f"deconv_in{opset}", opset)

        def f(r, k):
            r.conv1.weight = sl(r.conv1.weight, k, 0)
            r.conv1.bias = sl(r.conv1.bias, k, 0)
            slice_bn(r.bn1, k)
            r.up.weight = sl(r.up.weight, k, 0)
        prune_and_compare(path, m, "conv1", f)

    @case(f"ConvTranspose opset {opset}: a producer (weight axis 1 and bias; L1 over axis 1)")
    def _(opset=opset):
        m = randomise(DeconvNet(False), 30 + opset)
        path = export(m, f"deconv_out{opset}", opset)
        w = m.up.weight.detach().numpy()  # [C_in, C_out, kh, kw]
        l1 = np.abs(w).sum(axis=(0, 2, 3))
        expect = sorted(np.argsort(-l1, kind="stable")[:3].tolist())

        def f(r, k):
            r.up.weight = sl(r.up.weight, k, 1)
            r.up.bias = sl(r.up.bias, k, 0)
            slice_bn(r.bn2, k)
            r.conv2.weight = sl(r.conv2.weight, k, 1)
        prune_and_compare(path, m, "up", f, expect_kept=expect)

    @case(f"ConvTranspose opset {opset}: depthwise (weight axis 0, bias and groups follow)")
    def _(opset=opset):
        m = randomise(DeconvNet(True), 40 + opset)
        path = export(m, f"deconv_dw{opset}", opset)

        def f(r, k):
            r.conv1.weight = sl(r.conv1.weight, k, 0)
            r.conv1.bias = sl(r.conv1.bias, k, 0)
            slice_bn(r.bn1, k)
            r.up.weight = sl(r.up.weight, k, 0)
            r.up.bias = sl(r.up.bias, k, 0)
            r.up.groups = len(k)
            slice_bn(r.bn2, k)
            r.conv2.weight = sl(r.conv2.weight, k, 1)
        prune_and_compare(path, m, "conv1", f)


@case("ConvTranspose: --reconstruct leaves a ConvTranspose consumer alone and says so")
def _():
    m = randomise(DeconvNet(False), 50)
    path = export(m, "deconv_recon", 13)
    out = path[:-5] + "-pruned.onnx"
    rc, so, err = remodel("prune", path, "conv1", "--ratio", "0.5", "--reconstruct", "--calib-samples", "4",
                          "-o", out)
    assert rc == 0, f"exit {rc}: {err.strip()}"
    assert "not refitted" in so + err and "up" in so + err, f"no note: {so!r} {err!r}"

    # the written weights are the plain prune's: what the model without --reconstruct computes
    def f(r, k):
        r.conv1.weight = sl(r.conv1.weight, k, 0)
        r.conv1.bias = sl(r.conv1.bias, k, 0)
        slice_bn(r.bn1, k)
        r.up.weight = sl(r.up.weight, k, 0)
    keep = kept(out, conv_output(onnx.load(path), "conv1"))
    ref = copy.deepcopy(m)
    with torch.no_grad():
        f(ref, keep)
        x = np.random.default_rng(3).standard_normal((1, 3, 8, 8)).astype(np.float32)
        want = ref(torch.from_numpy(x)).numpy()
    close(ort(out, x), want, "onnxruntime vs PyTorch")


class LNNet(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.ln = nn.LayerNorm(shape)
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x):
        return self.conv2(torch.relu(self.ln(self.conv1(x))))


def slice_ln_spatial(m, k):
    m.conv1.weight = sl(m.conv1.weight, k, 0)
    m.conv1.bias = sl(m.conv1.bias, k, 0)
    m.conv2.weight = sl(m.conv2.weight, k, 1)


for opset in (13, 17):
    form = "LayerNormalization" if opset >= 17 else "ReduceMean/Sub/Pow/Sqrt/Div"

    @case(f"LayerNorm over H, W (opset {opset}, {form}): channels pass")
    def _(opset=opset):
        m = randomise(LNNet([8, 8]), 60 + opset)
        path = export(m, f"ln_hw{opset}", opset)
        if opset >= 17:
            assert "LayerNormalization" in [n.op_type for n in onnx.load(path).graph.node]
        prune_and_compare(path, m, "conv1", slice_ln_spatial)


@case("LayerNorm over C, H, W (opset 17): blocks, exit 2, nothing written")
def _():
    m = randomise(LNNet([8, 8, 8]), 70)
    blocks(export(m, "ln_chw17", 17), "conv1", "LayerNormalization", "channel axis")


@case("LayerNorm over C, H, W (opset 13, decomposed): blocks, exit 2, nothing written")
def _():
    m = randomise(LNNet([8, 8, 8]), 71)
    blocks(export(m, "ln_chw13", 13), "conv1", "cannot be pruned")


class INNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.inorm = nn.InstanceNorm2d(8, affine=True)
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x):
        return self.conv2(torch.relu(self.inorm(self.conv1(x))))


@case("InstanceNorm: its scale and B follow (they used to fail as a conv's 'weight is not 4-D')")
def _():
    m = randomise(INNet(), 75)
    path = export(m, "inorm", 13)
    assert "InstanceNormalization" in [n.op_type for n in onnx.load(path).graph.node]

    def f(r, k):
        r.conv1.weight = sl(r.conv1.weight, k, 0)
        r.conv1.bias = sl(r.conv1.bias, k, 0)
        r.inorm.weight = sl(r.inorm.weight, k, 0)
        r.inorm.bias = sl(r.inorm.bias, k, 0)
        r.conv2.weight = sl(r.conv2.weight, k, 1)
    prune_and_compare(path, m, "conv1", f)


class PReluNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.PReLU(8)
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x):
        return self.conv2(self.act(self.conv1(x)))


def slice_prelu(m, k):
    m.conv1.weight = sl(m.conv1.weight, k, 0)
    m.conv1.bias = sl(m.conv1.bias, k, 0)
    m.act.weight = sl(m.act.weight, k, 0)
    m.conv2.weight = sl(m.conv2.weight, k, 1)


@case("PRelu, slope [C,1,1] as torch exports it: the slope follows")
def _():
    m = randomise(PReluNet(), 80)
    path = export(m, "prelu", 13)
    slope = [t for t in onnx.load(path).graph.initializer if len(t.dims) == 3]
    assert slope and list(slope[0].dims) == [8, 1, 1], [list(t.dims) for t in onnx.load(path).graph.initializer]
    prune_and_compare(path, m, "conv1", slice_prelu)


@case("PRelu, slope [1,C,1,1]: the slope follows")
def _():
    m = randomise(PReluNet(), 81)
    path = export(m, "prelu4", 13)
    mp = onnx.load(path)
    for t in mp.graph.initializer:
        if list(t.dims) == [8, 1, 1]:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).reshape(1, 8, 1, 1), t.name))
    onnx.save(mp, path)
    prune_and_compare(path, m, "conv1", slice_prelu)


class ScaleNet(nn.Module):
    """Per-channel constants: x * s + b, s [1,C,1,1] and b [C,1,1]; the second branch shares s."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv1b = nn.Conv2d(3, 8, 3, padding=1)
        self.s = nn.Parameter(torch.zeros(1, 8, 1, 1))
        self.b = nn.Parameter(torch.zeros(8, 1, 1))
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1)
        self.conv2b = nn.Conv2d(8, 4, 3, padding=1)
        self.sa = self.sb = self.ba = None

    def forward(self, x):
        sa = self.s if self.sa is None else self.sa
        ba = self.b if self.ba is None else self.ba
        a = torch.relu(self.conv1(x) * sa + ba)
        b = torch.relu(self.conv1b(x) * self.s)
        return self.conv2(a) + self.conv2b(b)


@case("Mul/Add by per-channel constants ([1,C,1,1], [C,1,1], one shared with another group)")
def _():
    m = randomise(ScaleNet(), 90)
    path = export(m, "scale", 13)

    def f(r, k):
        r.conv1.weight = sl(r.conv1.weight, k, 0)
        r.conv1.bias = sl(r.conv1.bias, k, 0)
        r.sa = sl(r.s, k, 1)
        r.ba = sl(r.b, k, 0)
        r.conv2.weight = sl(r.conv2.weight, k, 1)
    prune_and_compare(path, m, "conv1", f)


@case("Mul/Add by per-channel constants: --global prunes both branches, the shared scale copied")
def _():
    m = randomise(ScaleNet(), 91)
    path = export(m, "scale_g", 13)
    out = path[:-5] + "-pruned.onnx"
    rc, _, err = remodel("prune", path, "--global", "--ratio", "0.5", "-o", out)
    assert rc == 0, f"exit {rc}: {err.strip()}"
    onnx.checker.check_model(onnx.load(out), full_check=True)
    o = onnx.load(path)
    ka, kb = kept(out, conv_output(o, "conv1")), kept(out, conv_output(o, "conv1b"))
    ref = copy.deepcopy(m)
    with torch.no_grad():
        ref.conv1.weight, ref.conv1.bias = sl(ref.conv1.weight, ka, 0), sl(ref.conv1.bias, ka, 0)
        ref.sa, ref.ba = sl(ref.s, ka, 1), sl(ref.b, ka, 0)
        ref.conv2.weight = sl(ref.conv2.weight, ka, 1)
        ref.conv1b.weight, ref.conv1b.bias = sl(ref.conv1b.weight, kb, 0), sl(ref.conv1b.bias, kb, 0)
        ref.s = sl(ref.s, kb, 1)
        ref.conv2b.weight = sl(ref.conv2b.weight, kb, 1)
        x = np.random.default_rng(9).standard_normal((1, 3, 8, 8)).astype(np.float32)
        want = ref(torch.from_numpy(x)).numpy()
    close(ort(out, x), want, "onnxruntime vs PyTorch")


class GroupedDeconv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.up = nn.ConvTranspose2d(8, 8, 2, stride=2, groups=2)
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x):
        return self.conv2(self.up(torch.relu(self.conv1(x))))


def slice_deconv_out(up, keep):
    """A grouped ConvTranspose (weight [C_in, C_out / group, k...]) producing only `keep`:
    the rows of input group b keep the columns of output group b's kept channels."""
    g, bo = up.groups, up.weight.shape[1]
    rows = up.weight.shape[0] // g
    w = up.weight.detach()
    cols = [[k - b * bo for k in keep if k // bo == b] for b in range(g)]
    assert len({len(c) for c in cols}) == 1, f"kept {keep} is not as many per group"
    up.weight = nn.Parameter(torch.cat([w[b * rows:(b + 1) * rows][:, cols[b]] for b in range(g)]))
    up.bias = sl(up.bias, keep, 0)


@case("grouped ConvTranspose (groups=2) reads conv1: 2 of each group of 4 go, its rows follow")
def _():
    m = randomise(GroupedDeconv(), 95)
    path = export(m, "deconv_grouped_in", 13)

    def f(r, k):
        r.conv1.weight = sl(r.conv1.weight, k, 0)
        r.conv1.bias = sl(r.conv1.bias, k, 0)
        r.up.weight = sl(r.up.weight, k, 0)
    keep, _ = prune_and_compare(path, m, "conv1", f)
    assert sum(c < 4 for c in keep) == 2, f"kept {keep}"


@case("grouped ConvTranspose (groups=2) as a producer: its columns go per group, conv2 follows")
def _():
    m = randomise(GroupedDeconv(), 97)
    path = export(m, "deconv_grouped_out", 13)

    def f(r, k):
        slice_deconv_out(r.up, k)
        r.conv2.weight = sl(r.conv2.weight, k, 1)
    keep, _ = prune_and_compare(path, m, "up", f)
    assert sum(c < 4 for c in keep) == 2, f"kept {keep}"


@case("Resize that scales the channel axis: blocks, exit 2, nothing written")
def _():
    m = randomise(ResizeNet("nearest", False), 96)
    path = export(m, "resize_c", 13)
    mp = onnx.load(path)
    # scales [1, 2, 2, 2] (a Constant node): 16 channels out of 8
    for n in mp.graph.node:
        if n.op_type == "Constant" and n.output[0] in [r.input[2] for r in mp.graph.node if r.op_type == "Resize"]:
            n.attribute[0].t.CopyFrom(numpy_helper.from_array(np.array([1, 2, 2, 2], np.float32)))
    w = [t for t in mp.graph.initializer if t.name == "conv2.weight"][0]
    w.CopyFrom(numpy_helper.from_array(np.zeros((4, 16, 3, 3), np.float32), "conv2.weight"))
    onnx.save(mp, path)
    blocks(path, "conv1", "batch or channel axis", "Resize")


class PadNet(nn.Module):
    """conv1 -> ReLU -> a spatial Pad (zeros, reflect, or AvgPool2d's count_include_pad
    padding) -> conv2: conv1's channels pass the Pad. channel_pad pads axis 1 instead."""

    def __init__(self, kind):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 4, 3)
        self.kind = kind

    def forward(self, x):
        y = torch.relu(self.conv1(x))
        if self.kind == "avgpool":
            y = F.avg_pool2d(y, 3, stride=1, padding=1, count_include_pad=True)
        elif self.kind == "channel":
            y = F.pad(y, (0, 0, 0, 0, 1, 1))
        else:
            y = F.pad(y, (1, 2, 0, 1), mode=self.kind)
        return self.conv2(y if self.kind != "channel" else y[:, 1:9])


def slice_pad(m, k):
    m.conv1.weight = sl(m.conv1.weight, k, 0)
    m.conv1.bias = sl(m.conv1.bias, k, 0)
    m.conv2.weight = sl(m.conv2.weight, k, 1)


for opset, kind in [(9, "constant"), (11, "reflect"), (13, "constant"), (13, "avgpool"), (17, "replicate")]:
    @case(f"Pad opset {opset} ({kind}) on spatial axes only: conv1 pruned through it")
    def _(opset=opset, kind=kind):
        m = randomise(PadNet(kind), 120 + opset)
        path = export(m, f"pad{opset}{kind}", opset)
        assert "Pad" in [n.op_type for n in onnx.load(path).graph.node]
        prune_and_compare(path, m, "conv1", slice_pad)


@case("Pad of the channel axis: blocks, exit 2, nothing written")
def _():
    path = export(randomise(PadNet("channel"), 130), "pad_channel", 13)
    blocks(path, "conv1", "Pad")


class LinearHead(nn.Module):
    """conv1 -> ReLU -> (global pool) -> flatten -> Linear, the Linear then rewritten as
    paddle2onnx and tf2onnx write it: MatMul by the [in, out] weight, then Add of the bias."""

    def __init__(self, pool):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = pool
        self.fc = nn.Linear(8 if pool else 8 * 4 * 4, 5)

    def forward(self, x):
        y = torch.relu(self.conv1(x))
        if self.pool:
            y = F.adaptive_avg_pool2d(y, 1)
        return self.fc(torch.flatten(y, 1))


def gemm_to_matmul(path, computed=False):
    """The model with its Gemm (transB=1) as MatMul(x, W^T) + Add(b); computed: W^T made by a
    Transpose node at run time instead of held as a constant."""
    mp = onnx.load(path)
    g = mp.graph
    gemm = [n for n in g.node if n.op_type == "Gemm"][0]
    inits = {t.name: t for t in g.initializer}
    w = numpy_helper.to_array(inits[gemm.input[1]])
    b = numpy_helper.to_array(inits[gemm.input[2]])
    k = list(g.node).index(gemm)
    nodes = []
    if computed:
        g.initializer.append(numpy_helper.from_array(w, "fc_w"))
        nodes.append(onnx.helper.make_node("Transpose", ["fc_w"], ["fc_wt"], perm=[1, 0], name="/fc/Transpose"))
    else:
        g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w.T), "fc_wt"))
    g.initializer.append(numpy_helper.from_array(b, "fc_b"))
    nodes += [onnx.helper.make_node("MatMul", [gemm.input[0], "fc_wt"], ["fc_mm"], name="/fc/MatMul"),
              onnx.helper.make_node("Add", ["fc_mm", "fc_b"], [gemm.output[0]], name="/fc/Add")]
    g.node.remove(gemm)
    for j, nd in enumerate(nodes):
        g.node.insert(k + j, nd)
    for name in (gemm.input[1], gemm.input[2]):
        g.initializer.remove(inits[name])
    onnx.save(mp, path)
    return path


def slice_linear_head(spatial):
    def f(m, k):
        m.conv1.weight = sl(m.conv1.weight, k, 0)
        m.conv1.bias = sl(m.conv1.bias, k, 0)
        cols = [c * spatial + s for c in k for s in range(spatial)]
        m.fc.weight = sl(m.fc.weight, cols, 1)
    return f


for pool, spatial in [(True, 1), (False, 16)]:
    @case(f"Flatten -> MatMul by a constant weight (a Linear as paddle2onnx writes it, {spatial} positions per "
          "channel): its rows follow the prune")
    def _(pool=pool, spatial=spatial):
        m = randomise(LinearHead(pool), 140 + spatial)
        path = gemm_to_matmul(export(m, f"matmul_head{spatial}", 13, shape=(1, 3, 4, 4)))
        assert "Gemm" not in [n.op_type for n in onnx.load(path).graph.node]
        prune_and_compare(path, m, "conv1", slice_linear_head(spatial), shape=(1, 3, 4, 4))


@case("Flatten -> MatMul by a computed weight: blocks, exit 2, nothing written")
def _():
    path = gemm_to_matmul(export(randomise(LinearHead(True), 150), "matmul_computed", 13, shape=(1, 3, 4, 4)),
                          computed=True)
    blocks(path, "conv1", "flattened features feed something other than a Linear")


class MeanNet(nn.Module):
    """conv1 -> ReLU -> mean over H and W (ReduceMean, axes [2, 3]) -> conv2 (1x1): conv1's
    channels pass the reduction, as ShuffleNetV2's global pool and squeeze-excite's."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        return self.conv2(torch.relu(self.conv1(x)).mean(dim=(2, 3), keepdim=True))


@case("ReduceMean over H and W: conv1 pruned through it, and replace --propagate follows it too")
def _():
    m = randomise(MeanNet(), 140)
    path = export(m, "mean", 13)
    assert "ReduceMean" in [n.op_type for n in onnx.load(path).graph.node]
    prune_and_compare(path, m, "conv1", slice_pad)  # the same two convs to slice
    # replace keeps the first 5 channels (--init keep); conv2's in-channels follow them
    out = path[:-5] + "-replaced.onnx"
    rc, so, err = remodel("replace", path, "conv1", "Conv2d(3, 5, 3, padding=1)", "--propagate", "-o", out)
    assert rc == 0, f"replace --propagate: exit {rc}: {err.strip()}"
    onnx.checker.check_model(onnx.load(out), full_check=True)
    x, want = run_ref(m, slice_pad, list(range(5)), (1, 3, 8, 8))
    close(ort(out, x), want, "onnxruntime on the replaced model vs the PyTorch module sliced alike")


class SumNet(MeanNet):
    """MeanNet with a sum over H and W: ReduceSum, whose axes are an input from opset 13."""

    def forward(self, x):
        return self.conv2(torch.relu(self.conv1(x)).sum(dim=(2, 3), keepdim=True))


@case("ReduceSum over H and W, axes as an input (opset 13): conv1 pruned through it")
def _():
    m = randomise(SumNet(), 141)
    path = export(m, "sum13", 13)
    red = [n for n in onnx.load(path).graph.node if n.op_type == "ReduceSum"]
    assert red and len(red[0].input) == 2, f"ReduceSum inputs {[list(n.input) for n in red]}"
    prune_and_compare(path, m, "conv1", slice_pad)


def dynamo_head(path, opset, shape_value):
    """The pooled LinearHead as the dynamo exporter writes it: the global pool a ReduceMean
    (axes an input from opset 18), torch.flatten a Reshape to shape_value."""
    from onnx import helper
    mp = onnx.load(path)
    g = mp.graph
    for imp in mp.opset_import:
        if imp.domain in ("", "ai.onnx"):
            imp.version = opset
    for n in g.node:
        if n.op_type in ("GlobalAveragePool", "ReduceMean"):
            n.op_type = "ReduceMean"
            del n.attribute[:]
            n.attribute.append(helper.make_attribute("keepdims", 1))
            if opset >= 18:
                g.initializer.append(numpy_helper.from_array(np.array([-1, -2], np.int64), "mean_axes"))
                n.input.append("mean_axes")
            else:
                n.attribute.append(helper.make_attribute("axes", [-1, -2]))
        if n.op_type == "Flatten":
            n.op_type = "Reshape"
            del n.attribute[:]
            g.initializer.append(numpy_helper.from_array(np.array(shape_value, np.int64), "flat_shape"))
            n.input.append("flat_shape")
    onnx.save(mp, path)
    ops = [n.op_type for n in g.node]
    assert "ReduceMean" in ops and "Reshape" in ops and "Flatten" not in ops, ops
    return path


for opset, shape_value in [(13, [0, -1]), (18, [0, -1]), (18, [1, -1])]:
    @case(f"a dynamo-style head, opset {opset}: ReduceMean -> Reshape {shape_value} -> Gemm follows conv1")
    def _(opset=opset, shape_value=shape_value):
        m = randomise(LinearHead(True), 160 + opset)
        path = dynamo_head(export(m, f"dynamo_head{opset}_{shape_value[0]}", 13, shape=(1, 3, 4, 4)), opset,
                           shape_value)
        if opset < 18:  # onnx 1.12's checker knows up to opset 17
            prune_and_compare(path, m, "conv1", slice_linear_head(1), shape=(1, 3, 4, 4))
            # replace --propagate carries conv1's new width to the Linear through them too
            out = path[:-5] + "-replaced.onnx"
            rc, so, err = remodel("replace", path, "conv1", "Conv2d(3, 5, 3, padding=1)", "--propagate", "-o", out)
            assert rc == 0, f"replace --propagate: exit {rc}: {err.strip()}"
            onnx.checker.check_model(onnx.load(out), full_check=True)
            x, want = run_ref(m, slice_linear_head(1), list(range(5)), (1, 3, 4, 4))
            close(ort(out, x), want, "onnxruntime on the replaced model vs the PyTorch module sliced alike")
            return
        out = path[:-5] + "-pruned.onnx"
        rc, _, err = remodel("prune", path, "conv1", "--ratio", "0.5", "-o", out)
        assert rc == 0, f"prune: exit {rc}: {err.strip()}"
        keep = kept(out, conv_output(onnx.load(path), "conv1"))
        assert len(keep) == 4, f"conv1 kept {keep}"
        x, want = run_ref(m, slice_linear_head(1), keep, (1, 3, 4, 4))
        close(ort(out, x), want, "onnxruntime on the pruned model vs the PyTorch module sliced alike")


@case("a Reshape to [-1, C] before the Linear names the channel count: blocks, exit 2, nothing written")
def _():
    m = randomise(LinearHead(True), 170)
    path = dynamo_head(export(m, "reshape_c", 13, shape=(1, 3, 4, 4)), 13, [-1, 8])
    blocks(path, "conv1", "Reshape")


class ViewHead(nn.Module):
    """conv1 -> ReLU -> x.view(x.size(0), -1) -> Linear: torch 1.13 writes the view as a
    Reshape to [N, -1], N a constant (static batch) or Shape -> Gather(0) (dynamic)."""

    def __init__(self, channels_read=False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 4 * 4, 5)
        self.channels_read = channels_read

    def forward(self, x):
        y = torch.relu(self.conv1(x))
        if self.channels_read:  # the shape's channel entry itself: it names the count
            return self.fc(y.view(-1, y.size(1) * 16))
        return self.fc(y.view(y.size(0), -1))


for dynamic in (False, True):
    @case(f"x.view(x.size(0), -1) before a Linear ({'dynamic' if dynamic else 'static'} batch): conv1 follows")
    def _(dynamic=dynamic):
        m = randomise(ViewHead(), 175 + dynamic)
        path = os.path.join(WORK, f"view{int(dynamic)}.onnx")
        with torch.no_grad():
            torch.onnx.export(m, torch.zeros(1, 3, 4, 4), path, opset_version=13, input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {0: "b"}} if dynamic else None)
        ops = [n.op_type for n in onnx.load(path).graph.node]
        assert "Reshape" in ops and ("Shape" in ops) == dynamic, ops
        prune_and_compare(path, m, "conv1", slice_linear_head(16), shape=(3 if dynamic else 1, 3, 4, 4))


@case("--global with nothing prunable: exit 1, and the reason is the blocked group's, not the logits'")
def _():
    m = randomise(ViewHead(channels_read=True), 179)
    path = os.path.join(WORK, "nothing.onnx")
    with torch.no_grad():
        torch.onnx.export(m, torch.zeros(1, 3, 4, 4), path, opset_version=13, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "b"}})
    out = path[:-5] + "-pruned.onnx"
    rc, so, err = remodel("prune", path, "--global", "--ratio", "0.5", "-o", out)
    assert rc == 1 and "nothing was pruned" in err, f"exit {rc}: {so} {err}"
    assert "its shape is read" in err and "graph output" not in err, err
    assert not os.path.exists(out)


@case("Shape(x, end=1) (opset 15) sizing the flatten before a Linear: conv1 follows")
def _():
    from onnx import helper
    m = randomise(LinearHead(False), 178)
    path = export(m, "shape_end", 15, shape=(1, 3, 4, 4))
    mp = onnx.load(path)
    g = mp.graph
    flat = [n for n in g.node if n.op_type == "Flatten"][0]
    at = list(g.node).index(flat)
    g.initializer.append(numpy_helper.from_array(np.array([-1], np.int64), "minus_one"))
    new = [helper.make_node("Shape", [flat.input[0]], ["batch"], end=1),
           helper.make_node("Concat", ["batch", "minus_one"], ["flat_shape"], axis=0),
           helper.make_node("Reshape", [flat.input[0], "flat_shape"], list(flat.output))]
    g.node.remove(flat)
    for k, nd in enumerate(new):
        g.node.insert(at + k, nd)
    onnx.save(mp, path)
    prune_and_compare(path, m, "conv1", slice_linear_head(16), shape=(1, 3, 4, 4))


@case("a view that reads the channel count (x.view(-1, x.size(1) * 16)): blocks, exit 2, nothing written")
def _():
    m = randomise(ViewHead(channels_read=True), 177)
    path = os.path.join(WORK, "view_channels.onnx")
    with torch.no_grad():
        torch.onnx.export(m, torch.zeros(1, 3, 4, 4), path, opset_version=13, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "b"}})
    blocks(path, "conv1", "its shape is read")


class MLPHead(nn.Module):
    """conv1 -> ReLU -> flatten -> fc1 (Linear 128 -> 32) -> [BatchNorm1d] -> ReLU -> fc2:
    a classifier with a hidden Linear layer, as VGG's, AlexNet's and MobileNetV3's."""

    def __init__(self, bn=False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.fc1 = nn.Linear(8 * 4 * 4, 32)
        self.bn1 = nn.BatchNorm1d(32) if bn else None
        self.fc2 = nn.Linear(32, 5)

    def forward(self, x):
        h = self.fc1(torch.flatten(torch.relu(self.conv1(x)), 1))
        if self.bn1 is not None:
            h = self.bn1(h)
        return self.fc2(torch.relu(h))


def slice_fc1(r, k):
    r.fc1.weight = sl(r.fc1.weight, k, 0)
    r.fc1.bias = sl(r.fc1.bias, k, 0)
    if r.bn1 is not None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            setattr(r.bn1, name, sl(getattr(r.bn1, name), k, 0))
    r.fc2.weight = sl(r.fc2.weight, k, 1)


def restyle_gemms(path, style):
    """Every Gemm (transB=1) of the model rewritten: "transB0" (weight stored [in, out]), or
    "matmul" (MatMul by [in, out] and Add of the bias, as paddle2onnx writes a Linear)."""
    from onnx import helper
    mp = onnx.load(path)
    g = mp.graph
    inits = {t.name: t for t in g.initializer}
    for gemm in [n for n in g.node if n.op_type == "Gemm"]:
        w = numpy_helper.to_array(inits[gemm.input[1]])
        scope = gemm.name.rsplit("/", 1)[0]
        wt = numpy_helper.from_array(np.ascontiguousarray(w.T), gemm.input[1] + "_t")
        g.initializer.append(wt)
        if style == "transB0":
            gemm.input[1] = wt.name
            for a in gemm.attribute:
                if a.name == "transB":
                    a.i = 0
            continue
        k = list(g.node).index(gemm)
        mm = helper.make_node("MatMul", [gemm.input[0], wt.name], [scope + "/mm"], name=scope + "/MatMul")
        add = helper.make_node("Add", [scope + "/mm", gemm.input[2]], list(gemm.output), name=scope + "/Add")
        g.node.remove(gemm)
        g.node.insert(k, add)
        g.node.insert(k, mm)
    onnx.save(mp, path)
    return path


def linear_output(model, module):
    """Output 0 of the Gemm or MatMul of Linear module path `module`."""
    for n in model.graph.node:
        if n.op_type in ("Gemm", "MatMul") and n.name.split("/")[1:2] == [module]:
            return n.output[0]
    raise AssertionError(f"no Linear node for {module}")


for style in ("gemm", "transB0", "matmul"):
    @case(f"hidden Linear ({style}): fc1's lowest-L1 rows go, its bias and fc2's columns follow")
    def _(style=style):
        m = randomise(MLPHead(), 190)
        path = export(m, f"mlp_{style}", 13, shape=(1, 3, 4, 4))
        if style != "gemm":
            restyle_gemms(path, style)
        out, so = H.pruned(path, ["fc1", "--ratio", "0.5"])
        keep = kept(out, linear_output(onnx.load(path), "fc1"))
        l1 = m.fc1.weight.detach().abs().sum(1).numpy()
        want = sorted(np.argsort(-l1, kind="stable")[:16].tolist())
        assert keep == want, f"kept {keep}, fc1's row L1 norms keep {want}"
        x, ref = run_ref(m, slice_fc1, keep, (1, 3, 4, 4))
        close(ort(out, x), ref, "onnxruntime on the pruned model vs the PyTorch module sliced alike")


@case("hidden Linear with BatchNorm1d: the BatchNorm follows fc1's features")
def _():
    m = randomise(MLPHead(bn=True), 191)
    path = export(m, "mlp_bn", 13, shape=(1, 3, 4, 4))
    out, so = H.pruned(path, ["fc1", "--ratio", "0.25"])
    keep = kept(out, linear_output(onnx.load(path), "fc1"))
    assert len(keep) == 24, f"kept {keep}:\n{so}"
    x, ref = run_ref(m, slice_fc1, keep, (1, 3, 4, 4))
    close(ort(out, x), ref, "onnxruntime on the pruned model vs the PyTorch module sliced alike")


@case("hidden Linear, --global --ratio 0.3: conv1 and fc1 ranked together, both pruned")
def _():
    m = randomise(MLPHead(), 192)
    path = export(m, "mlp_global", 13, shape=(1, 3, 4, 4))
    out, so = H.pruned(path, ["--global", "--ratio", "0.3"])
    mp = onnx.load(path)
    kc, kf = kept(out, conv_output(mp, "conv1"), 8), kept(out, linear_output(mp, "fc1"), 32)
    assert len(kc) < 8 and len(kf) < 32, f"kept {kc} and {kf}:\n{so}"
    r = copy.deepcopy(m)
    x = np.random.default_rng(7).standard_normal((1, 3, 4, 4)).astype(np.float32)
    with torch.no_grad():
        r.conv1.weight = sl(r.conv1.weight, kc, 0)
        r.conv1.bias = sl(r.conv1.bias, kc, 0)
        r.fc1.weight = sl(r.fc1.weight, [c * 16 + p for c in kc for p in range(16)], 1)
        slice_fc1(r, kf)
        want = r(torch.from_numpy(x)).numpy()
    close(ort(out, x), want, "onnxruntime on the pruned model vs the PyTorch module pruned alike")


class GroupedNet(nn.Module):
    """conv_a (1x1) -> BN -> ReLU -> conv_b (3x3, groups=4) -> BN -> ReLU -> conv_c (1x1): a
    ResNeXt / RegNet bottleneck without its residual."""

    def __init__(self, groups=4):
        super().__init__()
        self.conv_a = nn.Conv2d(3, 16, 1)
        self.bn_a = nn.BatchNorm2d(16)
        self.conv_b = nn.Conv2d(16, 16, 3, padding=1, groups=groups)
        self.bn_b = nn.BatchNorm2d(16)
        self.conv_c = nn.Conv2d(16, 8, 1)

    def forward(self, x):
        y = torch.relu(self.bn_a(self.conv_a(x)))
        return self.conv_c(torch.relu(self.bn_b(self.conv_b(y))))


def slice_grouped_in(conv, keep):
    """conv (grouped) reading only the input channels `keep`: the rows of group b keep the
    columns of their group's kept channels (each group keeps as many)."""
    g, bo = conv.groups, conv.weight.shape[1]
    bn = len(keep) // g
    rows = conv.weight.shape[0] // g
    w = conv.weight.detach()
    cols = [[k - b * bo for k in keep if k // bo == b] for b in range(g)]
    assert all(len(c) == bn for c in cols), f"kept {keep} is not {bn} per group"
    conv.weight = nn.Parameter(torch.cat([w[b * rows:(b + 1) * rows][:, cols[b]] for b in range(g)]))


def slice_bn_out(conv, bn, k):
    conv.weight = sl(conv.weight, k, 0)
    conv.bias = sl(conv.bias, k, 0)
    for name in ("weight", "bias", "running_mean", "running_var"):
        setattr(bn, name, sl(getattr(bn, name), k, 0))


@case("grouped conv (groups=4) reads conv_a: 2 of each group of 4 go, the lowest L1 of each")
def _():
    m = randomise(GroupedNet(), 180)
    path = export(m, "grouped_in", 13)

    def f(r, k):
        slice_bn_out(r.conv_a, r.bn_a, k)
        slice_grouped_in(r.conv_b, k)
    keep, _ = prune_and_compare(path, m, "conv_a", f)
    # the weights after BatchNorm folding, as exported: conv_a's rows' L1, lowest 2 per group
    mp = onnx.load(path)
    w = {t.name: numpy_helper.to_array(t) for t in mp.graph.initializer}
    conv_a = [n for n in mp.graph.node if n.op_type == "Conv"][0]
    l1 = np.abs(w[conv_a.input[1]]).sum(axis=(1, 2, 3))
    want = sorted(b * 4 + int(j) for b in range(4) for j in np.argsort(-l1[b * 4:(b + 1) * 4], kind="stable")[:2])
    assert keep == want, f"kept {keep}, the L1 norm per group keeps {want}"


@case("grouped conv (groups=4) as a producer: its rows go 2 per group, groups stay 4, conv_c follows")
def _():
    m = randomise(GroupedNet(), 181)
    path = export(m, "grouped_out", 13)

    def f(r, k):
        slice_bn_out(r.conv_b, r.bn_b, k)
        r.conv_c.weight = sl(r.conv_c.weight, k, 1)
    keep, _ = prune_and_compare(path, m, "conv_b", f)
    assert all(sum(1 for c in keep if c // 4 == b) == 2 for b in range(4)), f"kept {keep}"


@case("grouped conv, --global --ratio 0.3: both groups pruned in whole multiples of 4, as PyTorch computes")
def _():
    m = randomise(GroupedNet(), 182)
    path = export(m, "grouped_global", 13)
    out, so = H.pruned(path, ["--global", "--ratio", "0.3"])
    mp = onnx.load(path)
    ka, kb = kept(out, conv_output(mp, "conv_a"), 16), kept(out, conv_output(mp, "conv_b"), 16)
    assert len(ka) % 4 == 0 and len(kb) % 4 == 0 and len(ka) + len(kb) < 32, f"kept {ka} and {kb}:\n{so}"
    r = copy.deepcopy(m)
    x = np.random.default_rng(7).standard_normal((1, 3, 8, 8)).astype(np.float32)
    with torch.no_grad():
        slice_bn_out(r.conv_a, r.bn_a, ka)
        slice_grouped_in(r.conv_b, ka)
        slice_bn_out(r.conv_b, r.bn_b, kb)
        r.conv_c.weight = sl(r.conv_c.weight, kb, 1)
        want = r(torch.from_numpy(x)).numpy()
    close(ort(out, x), want, "onnxruntime on the pruned model vs the PyTorch module pruned alike")


@case("grouped conv: --channels that leave its groups uneven are refused (exit 2, nothing written)")
def _():
    path = export(randomise(GroupedNet(), 183), "grouped_uneven", 13)
    out = path[:-5] + "-pruned.onnx"
    rc, so, err = remodel("prune", path, "conv_a", "--channels", "0,5", "-o", out)
    assert rc == 2 and "same number from each group" in err and len(err.strip().splitlines()) == 1, \
        f"exit {rc}: {so} {err}"
    assert not os.path.exists(out)


class TwoGrouped(nn.Module):
    """conv0's 12 channels read by convs of groups 4 and 6, blocks that do not nest."""

    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(3, 12, 1)
        self.g4 = nn.Conv2d(12, 4, 3, padding=1, groups=4)
        self.g6 = nn.Conv2d(12, 6, 3, padding=1, groups=6)

    def forward(self, x):
        y = torch.relu(self.conv0(x))
        return torch.cat([self.g4(y), self.g6(y)], 1)


@case("grouped convs of groups 4 and 6 read one tensor: blocks that do not agree block it")
def _():
    path = export(randomise(TwoGrouped(), 184), "grouped_disagree", 13)
    blocks(path, "conv0", "blocks that do not agree")


class CNBlock(nn.Module):
    """ConvNeXt's block: depthwise 7x7 conv, then channels last (permute) through LayerNorm and
    an MLP (Linear C -> 4C, GELU, Linear 4C -> C) on the last axis, a layer scale, back to
    channels first and the residual. torch 1.13 exports each Linear as MatMul + Add and GELU
    as Div, Erf, Add, Mul, Mul."""

    def __init__(self, c=8, hidden=32):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c)
        self.fc1 = nn.Linear(c, hidden)
        self.fc2 = nn.Linear(hidden, c)
        self.gamma = nn.Parameter(torch.ones(c, 1, 1))

    def forward(self, x):
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.fc2(F.gelu(self.fc1(self.norm(y))))
        return x + self.gamma * y.permute(0, 3, 1, 2)


class TinyConvNeXt(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 2, stride=2)
        self.b0 = CNBlock()
        self.b1 = CNBlock()
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        return self.head(self.b1(self.b0(self.stem(x))).mean((2, 3)))


class TokenMLP(nn.Module):
    """A transformer's MLP on tokens [N, T, D]: patches embedded by a conv, then LayerNorm,
    Linear D -> 4D, GELU, Linear 4D -> D and the residual; the head averages the tokens."""

    def __init__(self, d=8, hidden=24):
        super().__init__()
        self.embed = nn.Conv2d(3, d, 2, stride=2)
        self.norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, hidden)
        self.fc2 = nn.Linear(hidden, d)
        self.head = nn.Linear(d, 5)

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)
        t = t + self.fc2(F.gelu(self.fc1(self.norm(t))))
        return self.head(t.mean(1))


def matmul_output(model, module):
    """Output 0 of the MatMul of Linear module path `module` (a.b.c: the node's scope)."""
    scope = "/" + "/".join(module.split(".")) + "/"
    for n in model.graph.node:
        if n.op_type == "MatMul" and n.name.startswith(scope):
            return n.output[0]
    raise AssertionError(f"no MatMul for {module}")


def slice_hidden(mlp, k):
    mlp.fc1.weight = sl(mlp.fc1.weight, k, 0)
    mlp.fc1.bias = sl(mlp.fc1.bias, k, 0)
    mlp.fc2.weight = sl(mlp.fc2.weight, k, 1)


def top_l1(linear, n):
    l1 = linear.weight.detach().abs().sum(1).numpy()
    return sorted(np.argsort(-l1, kind="stable")[:n].tolist())


for opset in (13, 17):
    @case(f"ConvNeXt MLP on the last axis (opset {opset}): fc1's lowest-L1 features go, its bias and fc2's rows follow")
    def _(opset=opset):
        m = randomise(TinyConvNeXt(), 200)
        path = export(m, f"convnext_{opset}", opset, shape=(1, 3, 16, 16))
        out, so = H.pruned(path, ["b0.fc1", "--ratio", "0.5"])
        keep = kept(out, matmul_output(onnx.load(path), "b0.fc1"))
        assert keep == top_l1(m.b0.fc1, 16), f"kept {keep}, fc1's row L1 norms keep {top_l1(m.b0.fc1, 16)}"
        x, ref = run_ref(m, lambda r, k: slice_hidden(r.b0, k), keep, (1, 3, 16, 16))
        close(ort(out, x), ref, "onnxruntime on the pruned model vs the PyTorch module sliced alike")


@case("ConvNeXt exported without constant folding: a Linear is Transpose + MatMul + Add, its weight sliced where stored")
def _():
    m = randomise(TinyConvNeXt(), 207)
    path = os.path.join(WORK, "convnext_unfolded.onnx")
    with torch.no_grad():
        torch.onnx.export(m, torch.zeros(1, 3, 16, 16), path, opset_version=13, input_names=["x"],
                          output_names=["y"], do_constant_folding=False)
    mp = onnx.load(path)
    assert sum(n.op_type == "Transpose" and n.name.startswith("/b0/fc") for n in mp.graph.node) == 2, \
        "the export no longer reads fc1 and fc2 through Transpose nodes: the case would test nothing"
    # the tree names Transpose + MatMul + Add a Linear, with PyTorch's features
    rc, so, err = remodel("show", path)
    assert rc == 0 and "(fc1): Linear(in_features=8, out_features=32, bias=True)" in so, so
    out, so = H.pruned(path, ["b0.fc1", "--ratio", "0.5"])
    keep = kept(out, matmul_output(mp, "b0.fc1"))
    assert keep == top_l1(m.b0.fc1, 16), f"kept {keep}, fc1's row L1 norms keep {top_l1(m.b0.fc1, 16)}"
    x, ref = run_ref(m, lambda r, k: slice_hidden(r.b0, k), keep, (1, 3, 16, 16))
    close(ort(out, x), ref, "onnxruntime on the pruned model vs the PyTorch module sliced alike")
    os.remove(out)
    out, so = H.pruned(path, ["--global", "--ratio", "0.3"])
    k0, k1 = kept(out, matmul_output(mp, "b0.fc1")), kept(out, matmul_output(mp, "b1.fc1"))
    for k, fc in ((k0, m.b0.fc1), (k1, m.b1.fc1)):
        assert 0 < len(k) < 32 and k == top_l1(fc, len(k)), f"kept {k}, the row L1 norms keep {top_l1(fc, len(k))}"

    def f(r, k):
        slice_hidden(r.b0, k0)
        slice_hidden(r.b1, k1)
    x, ref = run_ref(m, f, None, (1, 3, 16, 16))
    close(ort(out, x), ref, "onnxruntime on the pruned model vs the PyTorch module sliced alike")
    # --reconstruct leaves such a layer as pruned, and says why
    rec = path[:-5] + "-rec.onnx"
    rc, so, err = remodel("prune", path, "--global", "--ratio", "0.3", "--reconstruct", "--calib-samples", "2",
                          "-o", rec)
    assert rc == 0 and "read through a Transpose node" in so, f"exit {rc}: {so} {err}"
    close(ort(rec, x), ref, "the --reconstruct model, its fc2 left as pruned")


@case("ConvNeXt, --global --ratio 0.3: both MLPs pruned; the channels-first stream and fc2's outputs stay")
def _():
    m = randomise(TinyConvNeXt(), 201)
    path = export(m, "convnext_global", 13, shape=(1, 3, 16, 16))
    out, so = H.pruned(path, ["--global", "--ratio", "0.3"])
    mp = onnx.load(path)
    k0, k1 = kept(out, matmul_output(mp, "b0.fc1")), kept(out, matmul_output(mp, "b1.fc1"))
    assert len(k0) < 32 and len(k1) < 32, f"kept {k0} and {k1}:\n{so}"
    assert "b0.fc2" in so and "last axis, and this op does not keep them there" in so, so
    assert kept(out, matmul_output(mp, "b0.fc2"), 8) == list(range(8))

    def f(r, k):
        slice_hidden(r.b0, k0)
        slice_hidden(r.b1, k1)
    x, ref = run_ref(m, f, None, (1, 3, 16, 16))
    close(ort(out, x), ref, "onnxruntime on the pruned model vs the PyTorch module pruned alike")
    # the kept features of fc1 are the original's (the first change is after them): diff
    # --layers aligns them on the last axis through the channel map
    rc, so, err = remodel("diff", path, out, "--layers", "--json")
    assert rc == 1, f"diff: exit {rc}: {err}"
    layer = {lay["path"]: lay for lay in json.loads(so)["layers"]}["b0.fc1"]
    assert layer["comparable"] and layer["aligned"] and layer["max_abs"] <= 1e-5 * 8, layer


@case("ConvNeXt MLP, --criterion activation: keeps the features of largest mean |GELU output| (PyTorch's)")
def _():
    m = randomise(TinyConvNeXt(), 202)
    path = export(m, "convnext_act", 13, shape=(1, 3, 16, 16))
    calib = os.path.join(WORK, "convnext_calib")
    xs = np.random.default_rng(11).standard_normal((4, 1, 3, 16, 16)).astype(np.float32)
    acts = []
    hook = m.b0.fc2.register_forward_hook(lambda mod, inp, outp: acts.append(inp[0].detach().abs().numpy()))
    for k, x in enumerate(xs):
        os.makedirs(os.path.join(calib, f"set_{k}"))
        np.save(os.path.join(calib, f"set_{k}", "x.npy"), x)
        with torch.no_grad():
            m(torch.from_numpy(x))
    hook.remove()
    score = np.concatenate([a.reshape(-1, 32) for a in acts]).astype(np.float64).mean(0)
    want = sorted(np.argsort(-score, kind="stable")[:16].tolist())
    out, so = H.pruned(path, ["b0.fc1", "--ratio", "0.5", "--criterion", "activation", "--calib-inputs", calib])
    keep = kept(out, matmul_output(onnx.load(path), "b0.fc1"))
    assert keep == want, f"kept {keep}, mean |activation| keeps {want}"
    x, ref = run_ref(m, lambda r, k: slice_hidden(r.b0, k), keep, (1, 3, 16, 16))
    close(ort(out, x), ref, "onnxruntime on the pruned model vs the PyTorch module sliced alike")


@case("ConvNeXt MLP, --reconstruct: fc2 refitted per position on the last axis; held-out outputs move to the original's")
def _():
    m = randomise(TinyConvNeXt(), 204)
    path = export(m, "convnext_rec", 13, shape=(1, 3, 16, 16))
    plain, _ = H.pruned(path, ["--global", "--ratio", "0.5"])
    rec = path[:-5] + "-rec.onnx"
    rc, so, err = remodel("prune", path, "--global", "--ratio", "0.5", "--reconstruct", "--calib-samples", "8",
                          "-o", rec)
    assert rc == 0, f"exit {rc}: {err}"
    assert "b0.fc2" in so and "not refitted" not in so, so
    onnx.checker.check_model(onnx.load(rec), full_check=True)
    w = {t.name: numpy_helper.to_array(t) for t in onnx.load(rec).graph.initializer}
    wp = {t.name: numpy_helper.to_array(t) for t in onnx.load(plain).graph.initializer}
    assert {k: v.shape for k, v in w.items()} == {k: v.shape for k, v in wp.items()}, "refitting changed a shape"
    errs = {}
    for name, model in (("plain", plain), ("reconstructed", rec)):
        e = []
        for seed in (101, 102, 103):  # held out: the calibration draws seeds from 0
            x = np.random.default_rng(seed).standard_normal((1, 3, 16, 16)).astype(np.float32)
            with torch.no_grad():
                want = m(torch.from_numpy(x)).numpy()
            e.append(float(np.abs(ort(model, x) - want).max()))
        errs[name] = max(e)
    assert errs["reconstructed"] < 0.25 * errs["plain"], f"max |error| vs the original: {errs}"


@case("transformer MLP on tokens [N, T, D]: fc1's features pruned; the token stream, read by LayerNorm, stays")
def _():
    m = randomise(TokenMLP(), 203)
    path = export(m, "token_mlp", 13, shape=(1, 3, 8, 8))
    out, so = H.pruned(path, ["fc1", "--ratio", "0.5"])
    keep = kept(out, matmul_output(onnx.load(path), "fc1"))
    assert keep == top_l1(m.fc1, 12), f"kept {keep}, fc1's row L1 norms keep {top_l1(m.fc1, 12)}"
    x, ref = run_ref(m, slice_hidden, keep, (1, 3, 8, 8))
    close(ort(out, x), ref, "onnxruntime on the pruned model vs the PyTorch module sliced alike")
    os.remove(out)
    blocks(path, "fc2", "'fc2'", "last axis", "ReduceMean")  # LayerNorm's mean over the features


@case("a Linear on the last axis whose weight a Constant node holds: pruned as an initializer would be")
def _():
    from onnx import helper
    m = randomise(TokenMLP(), 205)
    path = export(m, "token_mlp_const", 13, shape=(1, 3, 8, 8))
    mp = onnx.load(path)
    mm = next(n for n in mp.graph.node if n.op_type == "MatMul" and n.name.startswith("/fc1/"))
    w = next(t for t in mp.graph.initializer if t.name == mm.input[1])
    mp.graph.initializer.remove(w)
    mp.graph.node.insert(0, helper.make_node("Constant", [], [w.name], value=w, name="/fc1/Constant"))
    onnx.save(mp, path)
    out, so = H.pruned(path, ["fc1", "--ratio", "0.5"])
    keep = kept(out, matmul_output(onnx.load(path), "fc1"))
    assert keep == top_l1(m.fc1, 12), f"kept {keep}, fc1's row L1 norms keep {top_l1(m.fc1, 12)}"
    x, ref = run_ref(m, slice_hidden, keep, (1, 3, 8, 8))
    close(ort(out, x), ref, "onnxruntime on the pruned model vs the PyTorch module sliced alike")


@case("a Linear on the last axis with an int64 weight: exit 2 naming why, nothing written")
def _():
    path = export(randomise(TokenMLP(), 206), "token_mlp_int", 13, shape=(1, 3, 8, 8))
    mp = onnx.load(path)
    mm = next(n for n in mp.graph.node if n.op_type == "MatMul" and n.name.startswith("/fc1/"))
    w = next(t for t in mp.graph.initializer if t.name == mm.input[1])
    w.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(w).astype(np.int64), w.name))
    onnx.save(mp, path)
    blocks(path, "fc1", "'fc1'", "float32 constant [in, out] weight")


H.finish(keep_work=bool(os.environ.get("RM_ROLES_KEEP")))
