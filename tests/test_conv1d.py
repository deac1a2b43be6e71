#!/usr/bin/python3
"""Pruning Conv1d (and Conv3d) nets: plain, depthwise, dilated, BatchNorm1d kept and folded,
MaxPool1d/AvgPool1d, a Linear after Flatten, --global, --reconstruct (a 1-D consumer is
left alone with a note); and replace of Conv1d and Conv3d modules with Conv1d/Conv3d specs.

usage: test_conv1d.py REMODEL

Every model is a small PyTorch module exported by Debian's torch. `remodel prune` removes
channels of one conv (or, with --global, of every group); which ones it kept is read from the
written model's remodel.channel_map metadata. The expected output is the PyTorch module
pruned the same way (its weights sliced in PyTorch on those channels), computed by PyTorch;
the pruned ONNX model runs in onnxruntime (tests/ort/ort_run.js) and must match it to 1e-4 of
the output's scale, and pass onnx's checker with full shape inference. A replaced model is
compared the same way with the PyTorch module whose conv was swapped by hand for the spec's
nn.Conv1d/nn.Conv3d (holding the old weights centred, as --init keep says).
"""

import copy
import os
import sys
import warnings

import numpy as np
import onnx

warnings.filterwarnings("ignore")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from prune_ref import Harness, close, conv_output, kept, randomise, run_ref, sl, sl_bn, sl_dw, sl_in, sl_out  # noqa: E402

H = Harness(sys.argv[1], "rm_conv1d_", only=os.environ.get("RM_CONV1D_ONLY"))
case, remodel, ort, pruned, WORK = H.case, H.remodel, H.ort, H.pruned, H.work


SHAPE1 = (1, 3, 16)
SHAPE3 = (1, 3, 4, 6, 6)


def export(m, name, shape=SHAPE1, keep_bn=False, opset=13):
    path = os.path.join(WORK, name + ".onnx")
    kw = {}
    if keep_bn:
        kw = {"training": torch.onnx.TrainingMode.PRESERVE, "do_constant_folding": False}
    with torch.no_grad():
        torch.onnx.export(m, torch.zeros(shape), path, opset_version=opset, input_names=["x"], output_names=["y"],
                          **kw)
    ops = [n.op_type for n in onnx.load(path).graph.node]
    assert ("BatchNormalization" in ops) == keep_bn, f"{name}: exported ops {ops}"
    return path


def prune_and_compare(path, m, module, slice_fn, shape=SHAPE1, ratio="0.5", extra=()):
    return H.prune_and_compare(path, m, module, slice_fn, shape, ratio=ratio, extra=extra)


# ---- models ------------------------------------------------------------------------------


class Plain(nn.Module):
    def __init__(self, dilation=1):
        super().__init__()
        self.conv1 = nn.Conv1d(3, 8, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv1d(8, 4, 3, padding=dilation, dilation=dilation)

    def forward(self, x):
        return self.conv2(torch.relu(self.conv1(x)))


def slice_plain(m, k):
    sl_out(m.conv1, k)
    sl_in(m.conv2, k)


@case("Conv1d -> ReLU -> Conv1d: conv1 pruned, conv2's in-channels follow")
def _():
    m = randomise(Plain(), 1)
    prune_and_compare(export(m, "plain"), m, "conv1", slice_plain)


@case("dilated Conv1d (dilation 2): conv1 pruned")
def _():
    m = randomise(Plain(2), 2)
    prune_and_compare(export(m, "dilated"), m, "conv1", slice_plain)


class Depthwise(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(3, 8, 1)
        self.dw = nn.Conv1d(8, 8, 5, padding=2, groups=8)
        self.conv3 = nn.Conv1d(8, 4, 1)

    def forward(self, x):
        return self.conv3(torch.relu(self.dw(torch.relu(self.conv1(x)))))


def slice_depthwise(m, k):
    sl_out(m.conv1, k)
    sl_dw(m.dw, k)
    sl_in(m.conv3, k)


@case("depthwise Conv1d: its channels and groups follow conv1's prune")
def _():
    m = randomise(Depthwise(), 3)
    path = export(m, "depthwise")
    _, so = prune_and_compare(path, m, "conv1", slice_depthwise)
    g = {n.name: n for n in onnx.load(path[:-5] + "-pruned.onnx").graph.node}
    dw = [n for n in g.values() if n.op_type == "Conv" and n.name.startswith("/dw/")][0]
    assert [a.i for a in dw.attribute if a.name == "group"] == [4], f"dw attributes {dw.attribute}"


class PaddedAvg(nn.Module):
    """conv1 -> ReLU -> AvgPool1d(3, padding=1) -> conv2: torch exports the pool's padding as
    a Pad (count_include_pad) before the AveragePool; conv1's channels pass it."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(3, 8, 3, padding=1)
        self.avg = nn.AvgPool1d(3, stride=1, padding=1)
        self.conv2 = nn.Conv1d(8, 4, 3)

    def forward(self, x):
        return self.conv2(self.avg(torch.relu(self.conv1(x))))


@case("Conv1d -> AvgPool1d with padding (Pad + AveragePool): conv1 pruned through the Pad")
def _():
    m = randomise(PaddedAvg(), 6)
    path = export(m, "padded_avg")
    assert "Pad" in [n.op_type for n in onnx.load(path).graph.node]
    prune_and_compare(path, m, "conv1", slice_plain)


class WithBN(nn.Module):
    """conv1 -> BatchNorm1d -> ReLU -> MaxPool1d -> conv2 -> BatchNorm1d -> conv3 -> AvgPool1d."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm1d(8)
        self.pool = nn.MaxPool1d(2)
        self.conv2 = nn.Conv1d(8, 6, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm1d(6)
        self.avg = nn.AvgPool1d(2)
        self.conv3 = nn.Conv1d(6, 4, 1)

    def forward(self, x):
        y = self.pool(torch.relu(self.bn1(self.conv1(x))))
        return self.avg(self.conv3(torch.relu(self.bn2(self.conv2(y)))))


def slice_bn1(m, k):
    sl_out(m.conv1, k)
    sl_bn(m.bn1, k)
    sl_in(m.conv2, k)


for keep_bn in (True, False):
    @case(f"Conv1d + BatchNorm1d {'kept' if keep_bn else 'folded'}, MaxPool1d, AvgPool1d: conv1 pruned")
    def _(keep_bn=keep_bn):
        m = randomise(WithBN(), 4)
        prune_and_compare(export(m, f"bn{int(keep_bn)}", keep_bn=keep_bn), m, "conv1", slice_bn1)

    @case(f"Conv1d + BatchNorm1d {'kept' if keep_bn else 'folded'}: --global --ratio 0.3 prunes both groups")
    def _(keep_bn=keep_bn):
        m = randomise(WithBN(), 5)
        path = export(m, f"bng{int(keep_bn)}", keep_bn=keep_bn)
        out, _ = pruned(path, ["--global", "--ratio", "0.3"])
        src = onnx.load(path)
        k1 = kept(out, conv_output(src, "conv1"), 8)
        k2 = kept(out, conv_output(src, "conv2"), 6)
        assert len(k1) < 8 and len(k2) < 6, f"kept {k1} and {k2}: expected both groups pruned"

        def slice_both(r, _):
            slice_bn1(r, k1)
            sl_out(r.conv2, k2)
            sl_bn(r.bn2, k2)
            sl_in(r.conv3, k2)
        x, want = run_ref(m, slice_both, None, SHAPE1)
        close(ort(out, x), want, "onnxruntime on the pruned model vs the PyTorch module pruned alike")


class Head(nn.Module):
    """conv1 -> ReLU -> AdaptiveAvgPool1d(4) -> Flatten -> Linear: features c * 4 + s follow."""

    def __init__(self, adaptive):
        super().__init__()
        self.conv1 = nn.Conv1d(3, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool1d(4) if adaptive else nn.MaxPool1d(4)
        self.fc = nn.Linear(32, 5)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(torch.relu(self.conv1(x))), 1))


def slice_head(m, k):
    sl_out(m.conv1, k)
    cols = [c * 4 + s for c in k for s in range(4)]
    m.fc.weight = sl(m.fc.weight, cols, 1)


for adaptive in (False, True):
    @case(f"Conv1d -> {'AdaptiveAvgPool1d' if adaptive else 'MaxPool1d'} -> Flatten -> Linear: the Linear's "
          "features follow")
    def _(adaptive=adaptive):
        m = randomise(Head(adaptive), 6)
        prune_and_compare(export(m, f"head{int(adaptive)}"), m, "conv1", slice_head)


@case("--reconstruct on Conv1d: the 1-D consumer is left alone, with a 'not refitted' note")
def _():
    m = randomise(Plain(), 8)
    path = export(m, "recon")
    _, so = prune_and_compare(path, m, "conv1", slice_plain, extra=("--reconstruct", "--calib-samples", "4"))
    assert "conv2: not refitted" in so, f"no 'not refitted' note for conv2 in {so!r}"


class Plain3d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv3d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm3d(8)
        self.dw = nn.Conv3d(8, 8, 3, padding=1, groups=8)
        self.conv2 = nn.Conv3d(8, 4, 1)

    def forward(self, x):
        return self.conv2(torch.relu(self.dw(torch.relu(self.bn1(self.conv1(x))))))


def slice_3d(m, k):
    sl_out(m.conv1, k)
    sl_bn(m.bn1, k)
    sl_dw(m.dw, k)
    sl_in(m.conv2, k)


@case("Conv3d + BatchNorm3d kept + depthwise Conv3d: conv1 pruned")
def _():
    m = randomise(Plain3d(), 9)
    prune_and_compare(export(m, "conv3d", SHAPE3, keep_bn=True), m, "conv1", slice_3d, shape=SHAPE3)


def replace_and_compare(path, module, spec, ref, shape, extra=()):
    """remodel replace module with spec; onnxruntime on the written model must match the
    PyTorch module ref (built by hand with what the spec and --init keep mean) on one input."""
    out = path[:-5] + "-replaced.onnx"
    rc, so, err = remodel("replace", path, module, spec, "-o", out, *extra)
    assert rc == 0, f"replace {spec}: exit {rc}: {err.strip()}"
    onnx.checker.check_model(onnx.load(out), full_check=True)
    x = np.random.default_rng(11).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy()
    close(ort(out, x), want, "onnxruntime vs PyTorch")
    return so


def with_conv1(m, conv, weight, bias):
    """A copy of m whose conv1 is conv, holding weight and bias."""
    r = copy.deepcopy(m)
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
    r.conv1 = conv
    return r.eval()


@case("replace a Conv1d: kernel 3 -> 5 with padding 2, --init keep centres the old taps (the output stays)")
def _():
    m = randomise(Plain(), 10)
    w = torch.nn.functional.pad(m.conv1.weight.detach(), (1, 1))
    ref = with_conv1(m, nn.Conv1d(3, 8, 5, padding=2), w, m.conv1.bias.detach())
    so = replace_and_compare(export(m, "repl_k5"), "conv1", "Conv1d(3, 8, 5, padding=2)", ref, SHAPE1)
    assert "Conv1d(3, 8, kernel_size=(5,), stride=(1,), padding=(2,))" in so, so


@case("replace a Conv1d: stride 2, dilation 2 (the following conv sees a shorter sequence)")
def _():
    m = randomise(Plain(), 11)
    ref = with_conv1(m, nn.Conv1d(3, 8, 3, stride=2, padding=2, dilation=2), m.conv1.weight.detach(),
                     m.conv1.bias.detach())
    replace_and_compare(export(m, "repl_s2"), "conv1", "Conv1d(3, 8, 3, stride=2, padding=2, dilation=2)", ref, SHAPE1)


@case("replace a Conv1d with fewer out_channels, --propagate: conv2's in-channels follow")
def _():
    m = randomise(Plain(), 12)
    ref = with_conv1(m, nn.Conv1d(3, 6, 3, padding=1), m.conv1.weight.detach()[:6], m.conv1.bias.detach()[:6])
    sl_in(ref.conv2, list(range(6)))
    replace_and_compare(export(m, "repl_prop"), "conv1", "Conv1d(3, 6, 3, padding=1)", ref, SHAPE1,
                        extra=("--propagate",))


class Plain3dPair(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv3d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv3d(8, 4, 3, padding=1)

    def forward(self, x):
        return self.conv2(torch.relu(self.conv1(x)))


@case("replace a Conv3d: kernel (3,3,3) -> (1,3,3), --init keep takes the centre slice in depth")
def _():
    m = randomise(Plain3dPair(), 13)
    w = m.conv1.weight.detach()[:, :, 1:2]
    ref = with_conv1(m, nn.Conv3d(3, 8, (1, 3, 3), padding=(0, 1, 1)), w, m.conv1.bias.detach())
    so = replace_and_compare(export(m, "repl3d", SHAPE3), "conv1", "Conv3d(3, 8, (1, 3, 3), padding=(0, 1, 1))",
                             ref, SHAPE3)
    assert "Conv3d(3, 8, kernel_size=(1, 3, 3), stride=(1, 1, 1), padding=(0, 1, 1))" in so, so


@case("replace with a spec of other dimensions than the module's: exit 2, one line, no file")
def _():
    path = export(randomise(Plain(), 14), "repl_bad")
    out = path[:-5] + "-replaced.onnx"
    for spec, needle in (("Conv2d(3, 8, 3, padding=1)", "conv1 is a 1d convolution (weight of rank 3); the spec is a "
                                                        "Conv2d: write Conv1d(...)"),
                         ("Conv3d(3, 8, 3)", "the spec is a Conv3d"),
                         ("Conv1d(3, 8, (3, 3))", "kernel_size must be an int or a 1-tuple (Conv1d)")):
        rc, so, err = remodel("replace", path, "conv1", spec, "-o", out)
        assert rc == 2, f"{spec}: exit {rc}, expected 2 (stdout {so!r}, stderr {err!r})"
        lines = err.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], f"{spec}: stderr {lines!r}"
        assert not os.path.exists(out), "a refused replace wrote a file"


H.finish()
