#!/usr/bin/python3
"""Pruning through Split on channels (YOLOv8's C2f: cv1's output split in two, one half read
by a chain of residual bottlenecks, both halves and every bottleneck's output concatenated),
through Slices that divide channels the same way (torch 1.13 exports chunk(2, 1) as Slices
bounded by Shape arithmetic; x[:, :a], x[:, a:] as Slices with constant bounds), through
Split on a spatial axis, and past a constant concatenated on channels.

usage: test_prune_split.py REMODEL

Every model is a small PyTorch module exported by Debian's torch (opsets 11, 13 and 17: the
split sizes as an attribute, and as a Constant input); one is then rewritten with the onnx
package to opset 18's `num_outputs`. `remodel prune` removes channels (a global ratio, a
ratio for cv1, a MAC target); which ones it kept is read from the written model's
channel-map metadata. The expected output is the PyTorch module pruned the same way (its
weights sliced in PyTorch on those channels, its split sizes set to the parts' kept
counts), computed by PyTorch; the pruned ONNX model runs in onnxruntime
(tests/ort/ort_run.js) and must match it to 1e-4 of the output's scale, and pass onnx's
checker with full shape inference (opset 18 is past onnx 1.12's checker: onnxruntime alone
judges it). Where the criterion ranks a part of cv1's output, the channels kept are checked
against an L1 norm (and a BatchNorm scale) computed here with numpy from the exported
weights; a MAC target is checked against MACs counted here from the pruned file's shapes.
For Slices the pruned file's bounds are read back and must be the parts' new ranges, with
no Shape arithmetic left; Slices that overlap must leave the group whole and say so. The
corpus' YOLOv8 exports (testdata/corpus) are pruned with --global: no group outside the
Detect head may be left whole, every C2f part is pruned, and `remodel run` on the pruned
file agrees with onnxruntime.
"""

import copy
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import onnx
from onnx import helper, numpy_helper

warnings.filterwarnings("ignore")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from prune_ref import ORT_RUN, Harness, close, kept, randomise, sl, sl_in, sl_out  # noqa: E402

H = Harness(sys.argv[1], "rm_prune_split_", only=os.environ.get("RM_SPLIT_ONLY"))
case, remodel, ort, WORK = H.case, H.remodel, H.ort, H.work
SHAPE = (1, 3, 8, 8)


class Conv(nn.Module):
    """Conv + BatchNorm + SiLU, as ultralytics' Conv."""

    def __init__(self, c1, c2, k=1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.cv1 = Conv(c, c, 3)
        self.cv2 = Conv(c, c, 3)

    def forward(self, x):
        return x + self.cv2(self.cv1(x))


class C2f(nn.Module):
    def __init__(self, c1, c2, n):
        super().__init__()
        c = c2 // 2
        self.sizes = [c, c]  # the split sizes, which a prune changes
        self.cv1 = Conv(c1, 2 * c)
        self.cv2 = Conv((2 + n) * c, c2)
        self.m = nn.ModuleList(Bottleneck(c) for _ in range(n))
        self.chunk = False

    def forward(self, x):
        # chunk(2, 1): torch 1.13 exports it as two Slices bounded by Shape arithmetic; a
        # pruned reference has parts of different sizes, which only split() can say
        h = self.cv1(x)
        y = list(h.chunk(2, 1) if self.chunk else h.split(self.sizes, 1))
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1)), y[0]


class Net(nn.Module):
    def __init__(self, n=2, part0_out=False):
        super().__init__()
        self.stem = Conv(3, 16, 3)
        self.c2f = C2f(16, 16, n)
        self.head = nn.Conv2d(16, 4, 1)
        self.part0_out = part0_out

    def forward(self, x):
        y, part0 = self.c2f(self.stem(x))
        # the first part may also leave the model: then it cannot be pruned
        return (self.head(y), part0) if self.part0_out else self.head(y)


def export(m, name, opset, keep_bn=False, outputs=("y",), divider="Split", dynamic=False):
    path = os.path.join(WORK, name + ".onnx")
    kw = {"training": torch.onnx.TrainingMode.PRESERVE, "do_constant_folding": False} if keep_bn else {}
    if dynamic:
        kw["dynamic_axes"] = {"x": {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(m, torch.zeros(SHAPE), path, opset_version=opset, input_names=["x"],
                          output_names=list(outputs), **kw)
    model = onnx.load(path)
    ops = [n.op_type for n in model.graph.node]
    assert divider in ops and ("BatchNormalization" in ops) == keep_bn, f"{name}: exported ops {ops}"
    return path


def node_out(model, op, scope):
    """Output 0 of the `op` node named /<scope>/..."""
    parts = []
    for p in scope.split("."):
        if p.isdigit() and parts:  # a ModuleList index stays with its list: /c2f/m.0/cv1
            parts[-1] += "." + p
        else:
            parts.append(p)
    want = "/" + "/".join(parts) + "/"
    for n in model.graph.node:
        if n.op_type == op and n.name.startswith(want) and n.name.count("/") == want.count("/"):
            return n.output
    raise AssertionError(f"no {op} node in {scope}")


def split_outputs(model):
    """The parts of C2f's cv1 output: a Split's outputs, or those of the Slices of a chunk
    (torch writes chunk k's Slice k-th)."""
    splits = [n for n in model.graph.node if n.op_type == "Split"]
    return splits[0].output if splits else [n.output[0] for n in model.graph.node if n.op_type == "Slice"]


def sl_conv(m, out_keep=None, in_keep=None):
    """Slice module m (a Conv above, or an nn.Conv2d) on its output and input channels."""
    conv = m.conv if isinstance(m, Conv) else m
    if out_keep is not None:
        conv.weight = sl(conv.weight, out_keep, 0)
        if conv.bias is not None:
            conv.bias = sl(conv.bias, out_keep, 0)
        if isinstance(m, Conv):
            bn = m.bn
            for name in ("weight", "bias", "running_mean", "running_var"):
                setattr(bn, name, sl(getattr(bn, name), out_keep, 0))
    if in_keep is not None:
        conv.weight = sl(conv.weight, in_keep, 1)


def pruned_like(m, path, out):
    """m (a Net) pruned as remodel pruned path into out: every channel map read from out."""
    model = onnx.load(path)
    c = m.c2f.sizes[0]

    def k(tensor, whole):
        return kept(out, tensor, whole)
    stem = k(node_out(model, "Conv", "stem.conv")[0], 16)
    cv1 = k(node_out(model, "Conv", "c2f.cv1.conv")[0], 2 * c)
    parts = split_outputs(model)
    y0, y1 = k(parts[0], c), k(parts[1], c)
    # the split input's map is its parts' maps at their offsets: a PyTorch fact of Split
    assert cv1 == y0 + [c + i for i in y1], f"cv1 kept {cv1}, parts {y0} and {y1}"
    r = copy.deepcopy(m)
    with torch.no_grad():
        sl_conv(r.stem, stem)
        sl_conv(r.c2f.cv1, cv1, stem)
        r.c2f.sizes = [len(y0), len(y1)]
        r.c2f.chunk = False
        for i, b in enumerate(r.c2f.m):
            mid = k(node_out(model, "Conv", f"c2f.m.{i}.cv1.conv")[0], c)
            sl_conv(b.cv1, mid, y1)
            sl_conv(b.cv2, y1, mid)  # its output is added to the part: the same channels
        cat = y0 + [c + i for i in y1]
        for i in range(len(r.c2f.m)):
            cat += [(2 + i) * c + j for j in y1]
        cv2 = k(node_out(model, "Conv", "c2f.cv2.conv")[0], 16)
        sl_conv(r.c2f.cv2, cv2, cat)
        sl_conv(r.head, None, cv2)
    return r, y0, y1


def compare(m, path, out, shape=SHAPE):
    r, y0, y1 = pruned_like(m, path, out)
    x = np.random.default_rng(7).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        want = r(torch.from_numpy(x))
    want = want[0] if isinstance(want, tuple) else want
    close(ort(out, x), want.numpy(), "onnxruntime on the pruned model vs the PyTorch module pruned alike")
    return y0, y1


def sizes_of(out):
    """The sizes the pruned model's Split lists (attribute or constant input)."""
    model = onnx.load(out)
    n = [n for n in model.graph.node if n.op_type == "Split"][0]
    for a in n.attribute:
        if a.name == "split":
            return list(a.ints)
    inits = {t.name: t for t in model.graph.initializer}
    return numpy_helper.to_array(inits[n.input[1]]).tolist()


for opset in (11, 13, 17):
    @case(f"C2f opset {opset}: --global 0.3 prunes cv1 through both parts, its split sizes follow")
    def _(opset=opset):
        m = randomise(Net(), opset)
        path = export(m, f"c2f{opset}", opset)
        out, so = H.pruned(path, ["--global", "--ratio", "0.3"])
        y0, y1 = compare(m, path, out)
        assert len(y0) < 8 and len(y1) < 8, f"parts kept {len(y0)} and {len(y1)} of 8: {so}"
        assert sizes_of(out) == [len(y0), len(y1)], f"split sizes {sizes_of(out)}, parts {len(y0)}, {len(y1)}"
        assert "c2f.cv1.conv[0:8]" in so, f"the first part is not in the report:\n{so}"


def slices_of(out):
    """The channel ranges the pruned model's Slices take, from their constant bounds."""
    model = onnx.load(out)
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return [(int(consts[n.input[1]][0]), int(consts[n.input[2]][0])) for n in model.graph.node
            if n.op_type == "Slice"]


for opset in (11, 13, 17):
    @case(f"C2f with chunk(2, 1), opset {opset}: the Slices of Shape arithmetic follow cv1's parts")
    def _(opset=opset):
        m = randomise(Net(), 20 + opset)
        m.c2f.chunk = True
        path = export(m, f"chunk{opset}", opset, divider="Slice")
        out, so = H.pruned(path, ["--global", "--ratio", "0.3"])
        y0, y1 = compare(m, path, out)
        assert len(y0) + len(y1) < 16, f"parts kept {len(y0)} and {len(y1)} of 8: {so}"
        assert slices_of(out) == [(0, len(y0)), (len(y0), len(y0) + len(y1))], f"slices {slices_of(out)}"
        assert "c2f.cv1.conv[0:8]" in so, f"the first part is not in the report:\n{so}"
        ops = [n.op_type for n in onnx.load(out).graph.node]
        assert "Shape" not in ops and "Div" not in ops, f"the bounds' arithmetic is left over: {ops}"


@case("C2f with chunk(2, 1), batch dynamic: the pruned model runs at batch 3")
def _():
    m = randomise(Net(n=1), 31)
    m.c2f.chunk = True
    path = export(m, "chunk_dyn", 13, divider="Slice", dynamic=True)
    out, so = H.pruned(path, ["c2f.cv1.conv", "--ratio", "0.5"])
    y0, y1 = compare(m, path, out, shape=(3,) + SHAPE[1:])
    assert len(y0) == 4 and len(y1) == 4, f"parts kept {y0} and {y1}"


class Halves(nn.Module):
    """conv0's output sliced by constant indices, x[:, :a] and x[:, a:b] (and x[:, b:])."""

    def __init__(self, bounds):
        super().__init__()
        self.bounds = bounds  # (lo, hi) per part; a prune changes them
        self.conv0 = nn.Conv2d(3, 12, 3, padding=1)
        self.convs = nn.ModuleList(nn.Conv2d(hi - lo, 6, 1) for lo, hi in bounds)
        self.head = nn.Conv2d(6, 4, 1)

    def forward(self, x):
        h = torch.relu(self.conv0(x))
        return self.head(sum(c(h[:, lo:hi]) for c, (lo, hi) in zip(self.convs, self.bounds)))


for opset, bounds in ((9, ((0, 5), (5, 12))), (13, ((0, 3), (3, 9), (9, 12)))):
    @case(f"constant Slices that take every channel once, opset {opset}: conv0 prunes through them")
    def _(opset=opset, bounds=bounds):
        m = randomise(Halves(bounds), 40 + opset)
        path = export(m, f"halves{opset}", opset, divider="Slice")
        out, so = H.pruned(path, ["conv0", "--ratio", "0.4"])
        model = onnx.load(path)
        parts = [n.output[0] for n in model.graph.node if n.op_type == "Slice"]
        ks = [kept(out, p, hi - lo) for p, (lo, hi) in zip(parts, bounds)]
        k0 = kept(out, node_out(model, "Conv", "conv0")[0], 12)
        assert k0 == [lo + i for k, (lo, _) in zip(ks, bounds) for i in k], f"conv0 kept {k0}, parts {ks}"
        assert len(k0) < 12, f"nothing pruned:\n{so}"
        r = copy.deepcopy(m)
        with torch.no_grad():
            sl_out(r.conv0, k0)
            at = 0
            r.bounds = []
            for c, k in zip(r.convs, ks):
                sl_in(c, k)
                r.bounds.append((at, at + len(k)))
                at += len(k)
            x = np.random.default_rng(7).standard_normal(SHAPE).astype(np.float32)
            want = r(torch.from_numpy(x)).numpy()
        close(ort(out, x), want, "onnxruntime on the pruned model vs the PyTorch module pruned alike")


class Whole(nn.Module):
    """conv0 -> ReLU -> conv1; the test puts a Slice of everything before conv1."""

    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv1 = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        return self.conv1(torch.relu(self.conv0(x)))


@case("a Slice without axes (the batch axis) that takes every channel: its new bounds name axis 1")
def _():
    m = randomise(Whole(), 55)
    shape = (3,) + SHAPE[1:]
    path = os.path.join(WORK, "whole.onnx")
    with torch.no_grad():
        torch.onnx.export(m, torch.zeros(shape), path, opset_version=13, input_names=["x"], output_names=["y"])
    model = onnx.load(path)
    conv1 = [n for n in model.graph.node if n.op_type == "Conv"][1]
    g = model.graph
    g.initializer.extend([numpy_helper.from_array(np.array([0], np.int64), "lo"),
                          numpy_helper.from_array(np.array([2 ** 62], np.int64), "hi")])
    # Slice(h, [0], [2^62]): axes left to the default, [0]; it takes every channel
    g.node.insert(list(g.node).index(conv1), helper.make_node("Slice", [conv1.input[0], "lo", "hi"], ["h0"]))
    conv1.input[0] = "h0"
    onnx.save(model, path)
    out, so = H.pruned(path, ["conv0", "--ratio", "0.5"])
    k = kept(out, node_out(model, "Conv", "conv0")[0], 4)
    assert len(k) == 2, f"conv0 kept {k}:\n{so}"
    r = copy.deepcopy(m)
    x = np.random.default_rng(7).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        sl_out(r.conv0, k)
        sl_in(r.conv1, k)
        want = r(torch.from_numpy(x)).numpy()
    close(ort(out, x), want, "onnxruntime on the pruned model (batch 3, 2 channels) vs PyTorch")


@case("Slices that overlap (x[:, :8], x[:, 4:]): conv0 cannot be pruned, and the error says why")
def _():
    m = randomise(Halves(((0, 8), (4, 12))), 50)
    path = export(m, "overlap", 13, divider="Slice")
    out = path[:-5] + "-pruned.onnx"
    rc, so, err = remodel("prune", path, "conv0", "--ratio", "0.4", "-o", out)
    assert rc == 2 and "ranges that overlap" in err and len(err.strip().splitlines()) == 1, f"exit {rc}: {so} {err}"
    assert not os.path.exists(out)
    rc, so, err = remodel("prune", path, "--global", "--ratio", "0.4", "-o", out)
    row = [r for r in so.splitlines() if r.startswith("conv0 ")]
    assert rc == 0 and row and "unprunable" in row[0] and "ranges that overlap" in row[0], f"exit {rc}: {so} {err}"


@case("C2f: a ratio for cv1 prunes each part by it; the parts rank cv1's rows at their offsets (L1)")
def _():
    m = randomise(Net(n=1), 5)
    path = export(m, "c2f_cv1", 13)
    out, so = H.pruned(path, ["c2f.cv1.conv", "--ratio", "0.5"])
    y0, y1 = compare(m, path, out)
    assert len(y0) == 4 and len(y1) == 4, f"parts kept {y0} and {y1}"
    # the first part is read by nothing else with weights: cv1's rows 0..7 rank it; the
    # second also by the bottleneck's cv2, whose output is added to it
    model = onnx.load(path)
    w = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    names = {n.output[0]: n.input[1] for n in model.graph.node if n.op_type == "Conv"}
    ident = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "Identity"}

    def weight(scope):
        name = names[node_out(model, "Conv", scope)[0]]
        return w[ident.get(name, name)]
    l1_cv1 = np.abs(weight("c2f.cv1.conv")).sum(axis=(1, 2, 3))
    l1_part1 = l1_cv1[8:] + np.abs(weight("c2f.m.0.cv2.conv")).sum(axis=(1, 2, 3))
    for got, l1, what in ((y0, l1_cv1[:8], "part 0"), (y1, l1_part1, "part 1")):
        want = sorted(np.argsort(-l1, kind="stable")[:4].tolist())
        assert got == want, f"{what} kept {got}, the L1 norm keeps {want}"


@case("C2f with BatchNorms kept: bn-scale ranks each part by cv1's BatchNorm at its offset")
def _():
    m = randomise(Net(n=1), 6)
    path = export(m, "c2f_bn", 13, keep_bn=True)
    out, _ = H.pruned(path, ["c2f.cv1.conv", "--ratio", "0.5", "--criterion", "bn-scale"])
    y0, y1 = compare(m, path, out)

    def scale(bn):
        return (bn.weight.abs() / torch.sqrt(bn.running_var + bn.eps)).detach().numpy()
    s_cv1 = scale(m.c2f.cv1.bn)
    s_part1 = s_cv1[8:] + scale(m.c2f.m[0].cv2.bn)
    for got, s, what in ((y0, s_cv1[:8], "part 0"), (y1, s_part1, "part 1")):
        want = sorted(np.argsort(-s, kind="stable")[:4].tolist())
        assert got == want, f"{what} kept {got}, the BatchNorm scale keeps {want}"


def macs(path):
    """Conv MACs of the model at path, from onnx's shape inference."""
    model = onnx.shape_inference.infer_shapes(onnx.load(path))
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(model.graph.value_info) + list(model.graph.output) + list(model.graph.input)}
    inits = {t.name: list(t.dims) for t in model.graph.initializer}
    ident = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "Identity"}
    total = 0
    for n in model.graph.node:
        if n.op_type == "Conv":
            wd = inits[ident.get(n.input[1], n.input[1])]
            total += int(np.prod(shapes[n.output[0]])) * int(np.prod(wd[1:]))
    return total


@case("C2f: a MAC target counts the split input's channels from its parts (--target-macs 0.6)")
def _():
    m = randomise(Net(), 8)
    path = export(m, "c2f_macs", 13)
    out, so = H.pruned(path, ["--global", "--target-macs", "0.6"])
    compare(m, path, out)
    before, after = macs(path), macs(out)
    assert after <= 0.6 * before, f"MACs {after} of {before} ({after / before:.3f}), target 0.6:\n{so}"
    assert after >= 0.45 * before, f"MACs {after} of {before}: far below the target 0.6:\n{so}"


@case("C2f opset 18: `num_outputs` becomes a `split` input when the parts differ")
def _():
    m = randomise(Net(), 18)
    path = export(m, "c2f18src", 17)
    model = onnx.load(path)
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            imp.version = 18
    n = [n for n in model.graph.node if n.op_type == "Split"][0]
    del n.input[1:]
    n.attribute.append(helper.make_attribute("num_outputs", 2))
    path = os.path.join(WORK, "c2f18.onnx")
    onnx.save(model, path)
    out = path[:-5] + "-pruned.onnx"
    rc, so, err = remodel("prune", path, "--global", "--ratio", "0.3", "-o", out)
    assert rc == 0, f"prune: exit {rc}: {err.strip()}"
    y0, y1 = compare(m, path, out)
    assert len(y0) + len(y1) < 16, f"nothing pruned in the parts: {so}"
    split = [n for n in onnx.load(out).graph.node if n.op_type == "Split"][0]
    assert not [a for a in split.attribute if a.name == "num_outputs"], "num_outputs kept beside the sizes"
    assert sizes_of(out) == [len(y0), len(y1)], f"split sizes {sizes_of(out)}"


@case("C2f: a part that leaves the model stays whole, the other is pruned")
def _():
    m = randomise(Net(n=1, part0_out=True), 9)
    path = export(m, "c2f_out", 13, outputs=("y", "part0"))
    out, so = H.pruned(path, ["c2f.cv1.conv", "--ratio", "0.5"])
    y0, y1 = compare(m, path, out)
    assert len(y0) == 8 and len(y1) == 4, f"parts kept {y0} and {y1}"


@case("C2f: explicit channels for cv1 are refused (exit 2, one line, nothing written)")
def _():
    m = randomise(Net(n=1), 10)
    path = export(m, "c2f_ch", 13)
    out = path[:-5] + "-pruned.onnx"
    rc, so, err = remodel("prune", path, "c2f.cv1.conv", "--channels", "0,9", "-o", out)
    assert rc == 2, f"exit {rc}: {so} {err}"
    assert len(err.strip().splitlines()) == 1 and "split" in err and "ratio" in err, err
    assert not os.path.exists(out)


@case("C2f: a split whose input leaves the model keeps both parts whole and says why")
def _():
    class Out(Net):
        def forward(self, x):
            s = self.stem(x)
            return super().forward(x), self.c2f.cv1(s)
    m = randomise(Out(n=1), 11)
    path = export(m, "c2f_in_out", 13, outputs=("y", "cv1"))
    out = path[:-5] + "-pruned.onnx"
    rc, so, err = remodel("prune", path, "c2f.m.0.cv2.conv", "--ratio", "0.5", "-o", out)
    assert rc == 2, f"exit {rc}: {so} {err}"
    assert "Split whose input channels cannot be followed" in err, err
    assert not os.path.exists(out)


class Nested(nn.Module):
    """conv0's output split in two, its second part split again: three parts, each read by a
    conv of its own (the split input is made from a part made from parts)."""

    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(3, 12, 3, padding=1)
        self.outer, self.inner = [4, 8], [3, 5]
        self.conv_a = nn.Conv2d(4, 6, 1)
        self.conv_c = nn.Conv2d(3, 6, 1)
        self.conv_d = nn.Conv2d(5, 6, 1)

    def forward(self, x):
        a, b = torch.relu(self.conv0(x)).split(self.outer, 1)
        c, d = b.split(self.inner, 1)
        return self.conv_a(a) + self.conv_c(c) + self.conv_d(d)


@case("Split of a Split's part: conv0's rows follow all three parts, both sizes follow")
def _():
    m = randomise(Nested(), 14)
    path = export(m, "nested", 13)
    out, so = H.pruned(path, ["--global", "--ratio", "0.4"])
    model = onnx.load(path)
    splits = [n for n in model.graph.node if n.op_type == "Split"]
    a, b = splits[0].output
    c, d = splits[1].output
    ka, kc, kd = kept(out, a, 4), kept(out, c, 3), kept(out, d, 5)
    k0 = kept(out, node_out(model, "Conv", "conv0")[0], 12)
    assert k0 == ka + [4 + i for i in kc] + [7 + i for i in kd], f"conv0 kept {k0}: {ka} {kc} {kd}"
    assert len(k0) < 12, f"nothing pruned:\n{so}"
    r = copy.deepcopy(m)
    with torch.no_grad():
        sl_out(r.conv0, k0)
        r.outer, r.inner = [len(ka), len(kc) + len(kd)], [len(kc), len(kd)]
        sl_in(r.conv_a, ka)
        sl_in(r.conv_c, kc)
        sl_in(r.conv_d, kd)
        x = np.random.default_rng(7).standard_normal(SHAPE).astype(np.float32)
        want = r(torch.from_numpy(x)).numpy()
    close(ort(out, x), want, "onnxruntime on the pruned model vs the PyTorch module pruned alike")


CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata", "corpus", "models")


def yolo_global(path, name, x):
    """prune --global 0.3 of a YOLOv8 export: no group outside the Detect head is left whole,
    every C2f part is pruned, and `remodel run` on the pruned file agrees with onnxruntime."""
    out, so = H.pruned(path, ["--global", "--ratio", "0.3"])
    rows = [r for r in so.splitlines() if r.startswith("model.")]
    blocked = [r for r in rows if "unprunable" in r and not r.startswith("model.17.")]
    assert len(rows) > 50 and not blocked, f"{name}: groups left whole:\n" + "\n".join(blocked)
    parts = [r for r in rows if ".cv1.conv[" in r]
    assert len(parts) == 12 and all("->" in r for r in parts), f"{name}: C2f parts:\n" + "\n".join(parts)
    got = out[:-5] + "-run"
    np.save(got + ".npy", x)
    rc, _, err = remodel("run", out, "-i", "input=" + got + ".npy", "-o", got)
    assert rc == 0, err
    y = numpy_helper.to_array(onnx.load_tensor(os.path.join(got, "output_0.pb")))
    p = subprocess.run(["node", ORT_RUN, out, got + "-ort", "input=" + got + ".npy"], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, f"onnxruntime: {p.stderr.strip()}"
    close(y, np.load(os.path.join(got + "-ort", "output_0.npy")), f"{name}: remodel run vs onnxruntime")
    return out


@case("the corpus' YOLOv8 (opsets 11, 13, 17): every group outside the Detect head is pruned")
def _():
    for name in ("yolov8-op11-folded", "yolov8-op13-folded", "yolov8-op17-folded"):
        src = os.path.join(CORPUS, name + ".onnx")
        path = os.path.join(WORK, name + ".onnx")
        shutil.copyfile(src, path)
        pb = os.path.join(CORPUS, name, "test_data_set_0", "input_0.pb")
        yolo_global(path, name, numpy_helper.to_array(onnx.load_tensor(pb)))


@case("the corpus' YOLOv8 with C2f's own forward (chunk: Slices) prunes like its Split export")
def _():
    # what torch.onnx.export gives for an ultralytics model outside ultralytics' exporter,
    # which swaps forward_split in: chunk(2, 1), exported as Shape arithmetic and Slices
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_corpus", os.path.join(CORPUS, "..", "make_corpus.py"))
    mc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mc)

    def forward(self, x):
        y = list(self.cv1(x).chunk(2, 1))
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))
    mc.C2f.forward = forward
    m = mc.build("yolov8")
    path = os.path.join(WORK, "yolov8-chunk.onnx")
    with torch.no_grad():
        torch.onnx.export(m, torch.zeros(1, 3, 64, 64), path, opset_version=13, input_names=["input"])
    ops = [n.op_type for n in onnx.load(path).graph.node]
    assert ops.count("Slice") >= 16 and "Shape" in ops, f"exported ops {sorted(set(ops))}"
    x = np.random.default_rng(5).standard_normal((1, 3, 64, 64)).astype(np.float32)
    yolo_global(path, "yolov8-chunk", x)


class ConstCat(nn.Module):
    """A learned constant concatenated on channels (a position map): it stays whole."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(10, 4, 3, padding=1)
        self.register_buffer("pos", torch.randn(1, 2, 8, 8, generator=torch.Generator().manual_seed(3)))

    def forward(self, x):
        return self.conv2(torch.cat([torch.relu(self.conv1(x)), self.pos], 1))


@case("Concat of a group and a constant: the constant's channels stay, at their offset")
def _():
    m = randomise(ConstCat(), 13)
    path = os.path.join(WORK, "constcat.onnx")  # no Split: export() would refuse it
    with torch.no_grad():
        torch.onnx.export(m, torch.zeros(SHAPE), path, opset_version=13, input_names=["x"], output_names=["y"])

    def f(r, k):
        sl_out(r.conv1, k)
        sl_in(r.conv2, k + [8, 9])
    H.prune_and_compare(path, m, "conv1", f, SHAPE)


class SpatialSplit(nn.Module):
    """A split on the height: each half has conv1's channels."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x):
        a, b = torch.relu(self.conv1(x)).split([3, 5], 2)
        return self.conv2(torch.cat([b, a * 2], 2))


@case("Split on a spatial axis: conv1's channels pass to both halves")
def _():
    m = randomise(SpatialSplit(), 12)
    path = export(m, "spatial", 13)

    def f(r, k):
        sl_out(r.conv1, k)
        sl_in(r.conv2, k)
    H.prune_and_compare(path, m, "conv1", f, SHAPE)


H.finish(keep_work=bool(os.environ.get("RM_SPLIT_KEEP")))
