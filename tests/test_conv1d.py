#!/usr/bin/python3
"""Pruning Conv1d (and Conv3d) nets: plain, depthwise, dilated, BatchNorm1d kept and folded,
MaxPool1d/AvgPool1d, a Linear after Flatten, --global, --reconstruct (a 1-D consumer is
left alone with a note), and replace refusing a Conv1d.

usage: test_conv1d.py REMODEL

Every model is a small PyTorch module exported by Debian's torch. `remodel prune` removes
channels of one conv (or, with --global, of every group); which ones it kept is read from the
written model's remodel.channel_map metadata. The expected output is the PyTorch module
pruned the same way (its weights sliced in PyTorch on those channels), computed by PyTorch;
the pruned ONNX model runs in onnxruntime (tests/ort/ort_run.js) and must match it to 1e-4 of
the output's scale, and pass onnx's checker with full shape inference.
"""

import copy
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import onnx

warnings.filterwarnings("ignore")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

REMODEL = sys.argv[1]
ORT_RUN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ort", "ort_run.js")
TOL = 1e-4
WORK = tempfile.mkdtemp(prefix="rm_conv1d_")
ONLY = os.environ.get("RM_CONV1D_ONLY")  # run only the cases whose name contains it

passed = failed = 0


def case(name):
    def wrap(fn):
        global passed, failed
        if ONLY and ONLY not in name:
            return fn
        try:
            fn()
            passed += 1
            print(f"ok   {name}", flush=True)
        except Exception as e:  # noqa: BLE001 - any exception fails this case, not the run
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
        return fn
    return wrap


def remodel(*args):
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
    p = subprocess.run([REMODEL, *args], capture_output=True, text=True, timeout=300, env=env)
    return p.returncode, p.stdout, p.stderr


def randomise(m, seed):
    """Seeded weights, and BatchNorm statistics far from the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        for b in m.modules():
            if isinstance(b, (nn.BatchNorm1d, nn.BatchNorm3d)):
                b.running_mean.copy_(torch.randn(b.running_mean.shape, generator=g) * 0.2)
                b.running_var.copy_(torch.rand(b.running_var.shape, generator=g) + 0.5)
    return m.eval()


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


def conv_output(model, module):
    """The output tensor of the Conv node of module path `module`."""
    for n in model.graph.node:
        if n.op_type == "Conv" and n.name.split("/")[1:2] == [module]:
            return n.output[0]
    raise AssertionError(f"no conv node for {module}")


def kept(pruned_path, tensor, whole=None):
    """The channels of tensor the prune kept; a tensor left whole has no map (whole: its count)."""
    md = {p.key: p.value for p in onnx.load(pruned_path).metadata_props}
    key = "remodel.channel_map/" + tensor
    if whole is not None and key not in md:
        return list(range(whole))
    assert key in md, f"no {key} in the pruned model's metadata ({sorted(md)})"
    return [int(c) for c in md[key].split(",")]


def ort(path, x):
    d = tempfile.mkdtemp(dir=WORK)
    np.save(os.path.join(d, "x.npy"), x)
    p = subprocess.run(["node", ORT_RUN, path, d, "x=" + os.path.join(d, "x.npy")], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, f"onnxruntime: {p.stderr.strip()}"
    return np.load(os.path.join(d, "output_0.npy"))


def close(a, b, what):
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape}"
    scale = float(np.max(np.abs(b))) or 1.0
    err = float(np.max(np.abs(a - b)))
    assert err <= TOL * scale, f"{what}: max |diff| {err:.3g} > {TOL} x {scale:.3g}"


def sl(t, keep, axis):
    """t's entries `keep` along axis, as a new Parameter or tensor like t."""
    idx = torch.tensor(keep, dtype=torch.long)
    v = t.detach().index_select(axis, idx).clone()
    return nn.Parameter(v) if isinstance(t, nn.Parameter) else v


def sl_out(conv, k):
    conv.weight = sl(conv.weight, k, 0)
    if conv.bias is not None:
        conv.bias = sl(conv.bias, k, 0)
    conv.out_channels = len(k)


def sl_in(conv, k):
    conv.weight = sl(conv.weight, k, 1)
    conv.in_channels = len(k)


def sl_bn(bn, k):
    bn.weight = sl(bn.weight, k, 0)
    bn.bias = sl(bn.bias, k, 0)
    bn.running_mean = sl(bn.running_mean, k, 0)
    bn.running_var = sl(bn.running_var, k, 0)


def sl_dw(conv, k):
    sl_out(conv, k)
    conv.in_channels = conv.groups = len(k)


def run_ref(m, slice_fn, keep, shape):
    ref = copy.deepcopy(m)
    with torch.no_grad():
        slice_fn(ref, keep)
        x = np.random.default_rng(7).standard_normal(shape).astype(np.float32)
        return x, ref(torch.from_numpy(x)).numpy()


def pruned(path, args):
    out = path[:-5] + "-pruned.onnx"
    rc, so, err = remodel("prune", path, *args, "-o", out)
    assert rc == 0, f"prune: exit {rc}: {err.strip()}"
    onnx.checker.check_model(onnx.load(out), full_check=True)
    return out, so


def prune_and_compare(path, m, module, slice_fn, shape=SHAPE1, ratio="0.5", extra=()):
    """Prune `module` by ratio; compare onnxruntime on the result with PyTorch's m pruned by
    slice_fn(copy, keep). Returns the kept channels and remodel's stdout."""
    out, so = pruned(path, [module, "--ratio", ratio, *extra])
    keep = kept(out, conv_output(onnx.load(path), module))
    assert 0 < len(keep) < m.get_submodule(module).out_channels and keep == sorted(set(keep)), f"kept {keep}"
    x, want = run_ref(m, slice_fn, keep, shape)
    close(ort(out, x), want, "onnxruntime on the pruned model vs the PyTorch module pruned alike")
    return keep, so


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


class WithBN(nn.Module):
    """conv1 -> BatchNorm1d -> ReLU -> MaxPool1d -> conv2 -> BatchNorm1d -> conv3 -> AvgPool1d
    (torch exports AvgPool1d as Pad + AveragePool, and prune does not follow Pad yet)."""

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


@case("replace of a Conv1d module refuses: exit 2, one line, no file")
def _():
    m = randomise(Plain(), 10)
    path = export(m, "repl")
    out = path[:-5] + "-replaced.onnx"
    for spec, needle in (("Conv1d(3, 8, 3, padding=1)", "Conv1d specs are not supported yet"),
                         ("Conv2d(3, 8, 3, padding=1)", "conv1: a 1d convolution (weight of rank 3)")):
        rc, so, err = remodel("replace", path, "conv1", spec, "-o", out)
        assert rc == 2, f"{spec}: exit {rc}, expected 2 (stdout {so!r}, stderr {err!r})"
        lines = err.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], f"{spec}: stderr {lines!r}"
        assert not os.path.exists(out), "a refused replace wrote a file"


print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
