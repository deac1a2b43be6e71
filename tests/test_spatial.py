#!/usr/bin/env python3
"""Spatial operators: Resize (opsets 10-19), Upsample (7, 9), ConvTranspose (1-D to 3-D),
DepthToSpace, SpaceToDepth, LayerNormalization, InstanceNormalization,
GroupNormalization, and 1-D / 3-D Conv and pools.

usage: test_spatial.py REMODEL SPATIAL_PLAN

Every model is built here, with the onnx package or exported by Debian's torch, and
run by `remodel run`. Expected outputs come from onnxruntime (tests/ort/ort_run.js) on
the same model and input, and for exports also from the PyTorch module itself; an
output matches when max |a - b| <= 1e-4 max |b|. SPATIAL_PLAN (tests/spatial_plan.c)
prints the plan's steps: the cases that must run on oneDNN (deconvolution,
resampling, normalisations) are checked to, and a UNet-like model must plan no
reorder around its ConvTranspose, Resize, Concat and Add steps in either activation
layout. Nothing is timed.
"""

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REMODEL, SPATIAL_PLAN = sys.argv[1], sys.argv[2]

from rmtest import Skip, Suite  # noqa: E402

T = Suite("RM_SPATIAL_ONLY")  # RM_SPATIAL_ONLY=text: only the cases whose name contains it
case = T.case
ORT_RUN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ort", "ort_run.js")
TOL = 1e-4

WORK = tempfile.mkdtemp(prefix="rm_spatial_")


# RM_SPATIAL_KEEP=1 keeps the models and outputs (in a temporary folder it names)


def make(nodes, inputs, outputs, inits, opset):
    """A one-graph model: inputs [(name, shape)], float outputs, initializers {name: array}."""
    g = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(v, n) for n, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def save(m, name):
    d = os.path.join(WORK, name.replace(" ", "_").replace("/", "_"))
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.onnx")
    if isinstance(m, bytes):
        with open(path, "wb") as f:
            f.write(m)
    else:
        onnx.save(m, path)
    return d, path


def feeds_of(d, feeds):
    args = []
    for n, v in feeds.items():
        f = os.path.join(d, n + ".npy")
        np.save(f, v)
        args.append(f"{n}={f}")
    return args


def remodel(*args, env=None):
    p = subprocess.run([REMODEL, *args], capture_output=True, text=True, timeout=300, env=env)
    return p.returncode, p.stdout, p.stderr


def run_remodel(path, d, args):
    out = os.path.join(d, "remodel")
    rc, _, err = remodel("run", path, *[a for x in args for a in ("-i", x)], "-o", out)
    assert rc == 0, f"remodel run: exit {rc}: {err.strip()}"
    k, res = 0, []
    while os.path.exists(os.path.join(out, f"output_{k}.pb")):
        res.append(numpy_helper.to_array(onnx.load_tensor(os.path.join(out, f"output_{k}.pb"))))
        k += 1
    return res


def run_ort(path, d, args):
    out = os.path.join(d, "ort")
    p = subprocess.run(["node", ORT_RUN, path, out, *args], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"onnxruntime: {p.stderr.strip()}"
    k, res = 0, []
    while os.path.exists(os.path.join(out, f"output_{k}.npy")):
        res.append(np.load(os.path.join(out, f"output_{k}.npy")))
        k += 1
    return res


def close(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape}, expected {b.shape}"
    scale = max(float(np.abs(b).max()) if b.size else 0.0, 1e-30)
    e = float(np.abs(a - b).max()) / scale if b.size else 0.0
    assert e <= TOL, f"{what}: differs by {e:.3g} of the output's scale"


def plan_steps(path, args, *flags):
    p = subprocess.run([SPATIAL_PLAN, path, *flags, *args], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"spatial_plan: {p.stderr.strip()}"
    return json.loads(p.stdout)["steps"]


def check(name, m, feeds, onednn=None, torch_out=None):
    """remodel's outputs equal onnxruntime's (and torch_out, when given). onednn: the op
    whose step must run on oneDNN (True) or on the C kernel (False), e.g. ("Resize", True)."""
    d, path = save(m, name)
    args = feeds_of(d, feeds)
    ours, theirs = run_remodel(path, d, args), run_ort(path, d, args)
    assert len(ours) == len(theirs), f"{len(ours)} outputs, onnxruntime has {len(theirs)}"
    for k, (a, b) in enumerate(zip(ours, theirs)):
        close(a, b, f"output {k} vs onnxruntime")
    if torch_out is not None:
        close(ours[0], torch_out, "output 0 vs PyTorch")
    if onednn is not None:
        op, want = onednn
        steps = [s for s in plan_steps(path, args) if s["op"] == op]
        assert steps, f"no step runs {op}"
        for s in steps:
            assert s["onednn"] == want, f"{op} runs on {'the C kernel' if want else 'oneDNN'}, expected the other"


rng = np.random.default_rng(20240101)


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------------------------------
# Resize and Upsample, built with the onnx package
# ---------------------------------------------------------------------------------------

def resize(x_shape, opset=13, scales=None, sizes=None, roi=None, **attrs):
    inits, names = {}, ["X"]
    if opset >= 11:
        inits["roi"] = np.array(roi if roi is not None else [], np.float32)
        names.append("roi")
        if scales is not None or opset == 11:  # opset 11 needs scales, empty with sizes
            inits["scales"] = np.array(scales if scales is not None else [], np.float32)
        names.append("scales" if scales is not None or opset == 11 else "")
        if sizes is not None:
            inits["sizes"] = np.array(sizes, np.int64)
            names.append("sizes")
    else:
        inits["scales"] = np.array(scales, np.float32)
        names.append("scales")
    node = helper.make_node("Resize", names, ["Y"], **attrs)
    return make([node], [("X", x_shape)], ["Y"], inits, opset), {"X": randn(*x_shape)}


def upsample(x_shape, opset, scales, mode="nearest"):
    if opset < 9:
        node = helper.make_node("Upsample", ["X"], ["Y"], mode=mode, scales=[float(s) for s in scales])
        inits = {}
    else:
        node = helper.make_node("Upsample", ["X", "scales"], ["Y"], mode=mode)
        inits = {"scales": np.array(scales, np.float32)}
    return make([node], [("X", x_shape)], ["Y"], inits, opset), {"X": randn(*x_shape)}


NEAREST_MODES = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]
CTMS = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn"]

RESIZE_CASES = [
    # (name, (model, feeds), runs on oneDNN: True / False / None for either)
    ("opset 10 nearest x2,x3", resize((1, 3, 4, 5), 10, scales=[1, 1, 2, 3], mode="nearest"), True),
    ("opset 10 nearest down 0.6,0.45", resize((1, 3, 10, 9), 10, scales=[1, 1, 0.6, 0.45], mode="nearest"), False),
    ("opset 10 linear x2", resize((1, 3, 4, 5), 10, scales=[1, 1, 2, 2], mode="linear"), False),
    ("opset 10 linear down", resize((1, 3, 10, 9), 10, scales=[1, 1, 0.6, 0.45], mode="linear"), False),
    ("nearest x2 asymmetric floor (torch)", resize((1, 3, 5, 6), scales=[1, 1, 2, 2], mode="nearest",
                                                   coordinate_transformation_mode="asymmetric",
                                                   nearest_mode="floor"), True),
    ("nearest x2 half_pixel default", resize((1, 3, 5, 6), scales=[1, 1, 2, 2], mode="nearest"), True),
    ("nearest sizes 7x9 round_prefer_ceil", resize((1, 3, 5, 6), sizes=[1, 3, 7, 9], mode="nearest",
                                                   nearest_mode="round_prefer_ceil"), True),
    ("nearest sizes down round_prefer_ceil", resize((1, 3, 10, 9), sizes=[1, 3, 5, 4], mode="nearest",
                                                    nearest_mode="round_prefer_ceil"), True),
    ("nearest x1.5 asymmetric floor", resize((1, 3, 5, 6), scales=[1, 1, 1.5, 1.5], mode="nearest",
                                             coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
     False),
    ("linear x2 half_pixel", resize((1, 3, 5, 6), scales=[1, 1, 2, 2], mode="linear"), True),
    ("linear x2 pytorch_half_pixel", resize((1, 3, 5, 6), scales=[1, 1, 2, 2], mode="linear",
                                            coordinate_transformation_mode="pytorch_half_pixel"), True),
    ("linear sizes 7x9", resize((1, 3, 5, 6), sizes=[1, 3, 7, 9], mode="linear"), True),
    ("linear sizes down", resize((1, 3, 10, 9), sizes=[1, 3, 5, 4], mode="linear"), True),
    ("linear x1.7,x1.3", resize((1, 3, 5, 6), scales=[1, 1, 1.7, 1.3], mode="linear"), False),
    ("linear align_corners", resize((2, 3, 5, 6), scales=[1, 1, 2, 2], mode="linear",
                                    coordinate_transformation_mode="align_corners"), False),
    ("linear asymmetric", resize((1, 3, 5, 6), scales=[1, 1, 2, 2], mode="linear",
                                 coordinate_transformation_mode="asymmetric"), False),
    ("cubic", resize((1, 3, 5, 6), scales=[1, 1, 2, 2], mode="cubic"), False),
    ("cubic A=-0.5 exclude_outside", resize((1, 3, 5, 6), scales=[1, 1, 0.6, 1.5], mode="cubic",
                                            exclude_outside=1, cubic_coeff_a=-0.5), False),
    ("cubic align_corners sizes", resize((1, 2, 6, 5), sizes=[1, 2, 4, 9], mode="cubic",
                                         coordinate_transformation_mode="align_corners"), False),
    ("tf_crop_and_resize extrapolation", resize((1, 3, 5, 6), sizes=[1, 3, 4, 4],
                                                roi=[0, 0, 0.2, 0.1, 1, 1, 1.3, 0.9], mode="linear",
                                                coordinate_transformation_mode="tf_crop_and_resize",
                                                extrapolation_value=7.0), False),
    ("tf_crop_and_resize nearest", resize((1, 3, 5, 6), sizes=[1, 3, 7, 3],
                                          roi=[0, 0, -0.25, 0.25, 1, 1, 0.75, 1.125], mode="nearest",
                                          coordinate_transformation_mode="tf_crop_and_resize"), False),
    ("1-D linear", resize((1, 3, 7), scales=[1, 1, 2], mode="linear"), True),
    ("3-D linear", resize((1, 3, 4, 5, 6), scales=[1, 1, 2, 2, 2], mode="linear"), True),
    ("3-D nearest sizes", resize((1, 3, 4, 5, 6), sizes=[1, 3, 3, 10, 7], mode="nearest",
                                 nearest_mode="round_prefer_ceil"), None),
    ("channel axis scaled", resize((1, 3, 4, 5), scales=[1, 2, 2, 2], mode="nearest"), False),
    ("opset 18 antialias linear down", resize((1, 3, 16, 13), 18, scales=[1, 1, 0.5, 0.35], mode="linear",
                                              antialias=1), False),
    ("opset 18 antialias linear up", resize((1, 3, 6, 5), 18, scales=[1, 1, 2, 1.5], mode="linear",
                                            antialias=1), None),
    ("opset 18 antialias cubic", resize((1, 3, 16, 13), 18, sizes=[1, 3, 5, 4], mode="cubic", antialias=1),
     False),
    ("opset 18 antialias cubic exclude_outside", resize((1, 3, 16, 13), 18, sizes=[1, 3, 5, 4], mode="cubic",
                                                        antialias=1, exclude_outside=1), False),
    ("opset 18 antialias align_corners", resize((1, 3, 16, 13), 18, scales=[1, 1, 0.5, 0.35], mode="linear",
                                                antialias=1, coordinate_transformation_mode="align_corners"),
     False),
    ("opset 18 axes scales", resize((1, 3, 6, 5), 18, scales=[2, 1.5], axes=[2, 3], mode="linear"), None),
    ("opset 18 negative axes sizes", resize((1, 3, 6, 5), 18, sizes=[9, 7], axes=[-1, -2], mode="nearest"),
     None),
    ("opset 18 not_larger", resize((1, 3, 6, 5), 18, sizes=[9, 100], axes=[2, 3], mode="linear",
                                   keep_aspect_ratio_policy="not_larger"), None),
    ("opset 18 not_smaller", resize((1, 3, 6, 5), 18, sizes=[9, 1], axes=[2, 3], mode="nearest",
                                    keep_aspect_ratio_policy="not_smaller"), None),
    ("opset 18 not_larger rounds half up", resize((1, 3, 2, 3), 18, sizes=[3, 100], axes=[2, 3],
                                                  mode="nearest", keep_aspect_ratio_policy="not_larger"), None),
    ("opset 19 half_pixel_symmetric", resize((1, 3, 5, 6), 19, scales=[1, 1, 1.7, 0.8], mode="linear",
                                             coordinate_transformation_mode="half_pixel_symmetric"), None),
    ("Upsample-7 attribute", upsample((1, 3, 4, 5), 7, [1, 1, 2, 3]), True),
    ("Upsample-9 nearest", upsample((1, 3, 4, 5), 9, [1, 1, 2, 3]), True),
    ("Upsample-9 nearest x1.5,x2.5", upsample((1, 3, 4, 5), 9, [1, 1, 1.5, 2.5]), False),
    ("Upsample-9 linear", upsample((1, 3, 4, 5), 9, [1, 1, 2, 1.5], "linear"), False),
]
# every nearest_mode with every coordinate mode, up and down (opset 11 still has
# tf_half_pixel_for_nn)
for ctm in CTMS:
    for nm in NEAREST_MODES:
        for shape, sizes in (((1, 2, 5, 6), [1, 2, 8, 13]), ((1, 2, 9, 8), [1, 2, 4, 5])):
            RESIZE_CASES.append((f"opset 11 nearest {ctm} {nm} {sizes[2:]}",
                                 resize(shape, 11, sizes=sizes, mode="nearest", coordinate_transformation_mode=ctm,
                                        nearest_mode=nm), None))
for ctm in CTMS[:4]:
    RESIZE_CASES.append((f"linear {ctm} sizes down/up", resize((2, 2, 9, 4), sizes=[2, 2, 5, 7], mode="linear",
                                                               coordinate_transformation_mode=ctm), None))
    RESIZE_CASES.append((f"cubic {ctm} sizes down/up", resize((1, 2, 9, 4), sizes=[1, 2, 5, 7], mode="cubic",
                                                              coordinate_transformation_mode=ctm), False))

for name, (m, f), dnn in RESIZE_CASES:
    op = m.graph.node[0].op_type

    @case(f"{op}: {name}")
    def _(m=m, f=f, dnn=dnn, op=op):
        check(name, m, f, onednn=None if dnn is None else (op, dnn))


# ---------------------------------------------------------------------------------------
# ConvTranspose
# ---------------------------------------------------------------------------------------

def conv_t(x_shape, cin, cout, k, g=1, bias=True, then=(), **attrs):
    sp = len(x_shape) - 2
    inits = {"W": randn(cin, cout // g, *((k,) * sp))}
    ins = ["X", "W"]
    if bias:
        inits["B"] = randn(cout)
        ins.append("B")
    nodes = [helper.make_node("ConvTranspose", ins, ["T0"], group=g, **attrs)]
    cur = "T0"
    for i, op in enumerate(then):
        nxt = f"T{i + 1}"
        if op == "BatchNormalization":
            for p, v in (("s", rng.uniform(0.5, 1.5, cout)), ("b", rng.uniform(-0.3, 0.3, cout)),
                         ("m", rng.uniform(-0.5, 0.5, cout)), ("v", rng.uniform(0.5, 2, cout))):
                inits[f"bn{i}_{p}"] = v.astype(np.float32)
            nodes.append(helper.make_node(op, [cur] + [f"bn{i}_{p}" for p in "sbmv"], [nxt]))
        else:
            nodes.append(helper.make_node(op, [cur], [nxt]))
        cur = nxt
    nodes[-1].output[0] = "Y"
    return make(nodes, [("X", x_shape)], ["Y"], inits, 13), {"X": randn(*x_shape)}


CONV_T_CASES = [
    ("2-D", conv_t((1, 8, 5, 5), 8, 4, 3)),
    ("2-D no bias", conv_t((1, 8, 5, 5), 8, 4, 3, bias=False)),
    ("stride 2 pads 1 output_padding 1", conv_t((1, 16, 6, 7), 16, 32, 3, strides=[2, 2], pads=[1, 1, 1, 1],
                                                output_padding=[1, 1])),
    ("output_padding past the end padding", conv_t((1, 4, 5, 5), 4, 4, 3, strides=[2, 2], output_padding=[1, 1])),
    ("groups", conv_t((2, 8, 5, 6), 8, 12, 3, g=4, strides=[2, 1], pads=[0, 1, 1, 0])),
    ("depthwise", conv_t((1, 16, 5, 5), 16, 16, 4, g=16, strides=[2, 2], pads=[1, 1, 1, 1])),
    ("dilations", conv_t((1, 3, 5, 5), 3, 5, 3, dilations=[2, 3])),
    ("output_shape past the full size", conv_t((1, 3, 3, 3), 3, 2, 3, strides=[3, 2], output_shape=[10, 8])),
    ("output_shape odd padding", conv_t((1, 3, 4, 4), 3, 2, 3, strides=[2, 2], output_shape=[8, 8])),
    ("output_shape SAME_UPPER", conv_t((1, 3, 4, 4), 3, 2, 3, strides=[2, 2], output_shape=[8, 8],
                                       auto_pad="SAME_UPPER")),
    ("SAME_LOWER", conv_t((1, 3, 4, 4), 3, 2, 3, strides=[2, 2], auto_pad="SAME_LOWER")),
    ("SAME_UPPER", conv_t((1, 3, 4, 4), 3, 2, 3, strides=[2, 2], auto_pad="SAME_UPPER")),
    ("SAME_UPPER kernel 1 stride 2", conv_t((1, 3, 4, 4), 3, 2, 1, strides=[2, 2], auto_pad="SAME_UPPER")),
    ("VALID", conv_t((1, 3, 4, 4), 3, 2, 3, strides=[2, 2], auto_pad="VALID")),
    ("then BatchNormalization and Relu (fused)", conv_t((1, 8, 5, 5), 8, 16, 2, strides=[2, 2],
                                                        then=("BatchNormalization", "Relu"))),
    ("grouped, then BatchNormalization", conv_t((1, 8, 5, 5), 8, 8, 3, g=2, then=("BatchNormalization",))),
    ("then Sigmoid", conv_t((1, 4, 5, 5), 4, 4, 3, then=("Sigmoid",))),
    ("1-D", conv_t((1, 4, 7), 4, 6, 3, strides=[2], pads=[1, 0])),
    ("1-D groups output_padding 2", conv_t((1, 4, 7), 4, 6, 3, g=2, strides=[3], output_padding=[2])),
    ("3-D", conv_t((1, 4, 3, 4, 5), 4, 8, 3, strides=[2, 2, 1], pads=[1, 0, 1, 0, 1, 1])),
    ("3-D groups", conv_t((1, 4, 3, 4, 5), 4, 8, 2, g=2, strides=[2, 2, 2])),
]
for name, (m, f) in CONV_T_CASES:
    @case(f"ConvTranspose: {name}")
    def _(name=name, m=m, f=f):
        check(name, m, f, onednn=("ConvTranspose", True))


# ---------------------------------------------------------------------------------------
# DepthToSpace, SpaceToDepth, normalisations
# ---------------------------------------------------------------------------------------

def one(op, x_shape, inits=None, opset=13, outputs=("Y",), **attrs):
    inits = inits or {}
    node = helper.make_node(op, ["X", *inits], list(outputs), **attrs)
    return make([node], [("X", x_shape)], list(outputs), inits, opset), {"X": (3 * randn(*x_shape) + 1)}


def ln(x_shape, axis=-1, bias=True, outs=1, pshape=None):
    ns = pshape or list(x_shape[axis:])
    inits = {"S": randn(*ns)}
    if bias:
        inits["B"] = randn(*ns)
    return one("LayerNormalization", x_shape, inits, 17, ("Y", "Mean", "InvStd")[:outs], axis=axis, epsilon=1e-3)


OTHER_CASES = [
    ("DepthToSpace DCR", one("DepthToSpace", (2, 8, 3, 4), blocksize=2), False),
    ("DepthToSpace CRD", one("DepthToSpace", (1, 18, 2, 3), blocksize=3, mode="CRD"), False),
    ("SpaceToDepth", one("SpaceToDepth", (2, 3, 6, 4), blocksize=2), False),
    ("LayerNormalization last axis", ln((2, 5, 16)), True),
    ("LayerNormalization axis 1", ln((2, 5, 4, 3), axis=1), True),
    ("LayerNormalization axis -2", ln((2, 5, 4, 3), axis=-2), True),
    ("LayerNormalization no bias", ln((2, 7, 8), bias=False), True),
    ("LayerNormalization Mean and InvStdDev", ln((2, 5, 6), outs=3), False),
    ("LayerNormalization broadcast scale", ln((2, 5, 6), axis=-2, pshape=[1, 6]), False),
    ("InstanceNormalization", one("InstanceNormalization", (1, 8, 5, 6), {"S": randn(8), "B": randn(8)},
                                  epsilon=1e-4), True),
    ("InstanceNormalization N=2", one("InstanceNormalization", (2, 8, 5, 6), {"S": randn(8), "B": randn(8)}),
     True),
    ("InstanceNormalization 1-D", one("InstanceNormalization", (3, 4, 10), {"S": randn(4), "B": randn(4)}), True),
    ("InstanceNormalization 3-D", one("InstanceNormalization", (1, 4, 3, 4, 5), {"S": randn(4), "B": randn(4)}),
     True),
    ("GroupNormalization-18 (per group)", one("GroupNormalization", (2, 8, 5, 6), {"S": randn(4), "B": randn(4)},
                                              18, num_groups=4, epsilon=1e-4), False),
    ("GroupNormalization-21 (per channel)", one("GroupNormalization", (2, 8, 5, 6),
                                                {"S": randn(8), "B": randn(8)}, 21, num_groups=4), False),
]
for name, (m, f), dnn in OTHER_CASES:
    @case(name)
    def _(name=name, m=m, f=f, dnn=dnn):
        check(name, m, f, onednn=(m.graph.node[0].op_type, dnn))


# ---------------------------------------------------------------------------------------
# PyTorch exports: outputs against the module's own and onnxruntime's
# ---------------------------------------------------------------------------------------

import torch  # noqa: E402 - after the onnx-only cases, which need no torch
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

warnings.filterwarnings("ignore")
torch.manual_seed(0)
torch.set_num_threads(1)


def export(module, xs, opset, names=("input",), dynamic=None):
    module.eval()
    b = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module, tuple(xs), b, opset_version=opset, input_names=list(names),
                          output_names=["output"], dynamic_axes=dynamic)
        y = module(*xs)
    return b.getvalue(), y.numpy()


def check_torch(name, module, xs, opset, onednn=None, names=("input",), dynamic=None):
    data, y = export(module, xs, opset, names, dynamic)
    check(name, data, {n: x.numpy() for n, x in zip(names, xs)}, onednn=onednn, torch_out=y)


def randomize_bn(module):
    g = torch.Generator().manual_seed(1)
    for mod in module.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            mod.running_mean.uniform_(-0.5, 0.5, generator=g)
            mod.running_var.uniform_(0.5, 2, generator=g)
            mod.weight.data.uniform_(0.5, 1.5, generator=g)
            mod.bias.data.uniform_(-0.2, 0.2, generator=g)
    return module


class Interp(nn.Module):
    def __init__(self, mode, align_corners=None, factor=2.0, size=None):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.mode, self.ac, self.factor, self.size = mode, align_corners, factor, size

    def forward(self, x):
        x = self.conv(x)
        if self.size:
            return F.interpolate(x, size=self.size, mode=self.mode, align_corners=self.ac)
        return F.interpolate(x, scale_factor=self.factor, mode=self.mode, align_corners=self.ac)


class InterpLike(nn.Module):
    """FPN-style: upsample to another tensor's size, read from its shape at run time."""

    def __init__(self, mode):
        super().__init__()
        self.mode = mode
        self.lat = nn.Conv2d(3, 8, 1)

    def forward(self, x, y):
        return F.interpolate(self.lat(x), size=y.shape[-2:], mode=self.mode) + y


for opset in (9, 11, 13, 17):
    for mode, ac in (("nearest", None), ("bilinear", False), ("bilinear", True)):
        if opset == 9 and ac:
            continue  # torch does not export align_corners=True before opset 11
        # torch's bilinear is half-pixel; opset 9's Upsample cannot say so (torch warns)
        if opset == 9 and mode == "bilinear":
            continue
        dnn = ("Resize" if opset > 9 else "Upsample", not ac)

        @case(f"torch interpolate {mode} align_corners={ac} x2 opset {opset}")
        def _(mode=mode, ac=ac, opset=opset, dnn=dnn):
            check_torch("interp", Interp(mode, ac), [torch.randn(1, 3, 5, 6)], opset, onednn=dnn)

    for mode, ac in (("nearest", None), ("bilinear", False), ("bilinear", True), ("bicubic", False)):
        if opset < 11:
            continue

        @case(f"torch interpolate {mode} align_corners={ac} to 9x13 opset {opset}")
        def _(mode=mode, ac=ac, opset=opset):
            check_torch("interp", Interp(mode, ac, size=(9, 13)), [torch.randn(2, 3, 5, 6)], opset)


def without_casts(data):
    """The model with its int64 -> int64 Casts bypassed (remodel of this branch has no
    Cast; the ops-math branch adds it)."""
    m = onnx.load_from_string(data)
    casts = {n.output[0]: n.input[0] for n in m.graph.node if n.op_type == "Cast"}
    keep = [n for n in m.graph.node if n.op_type != "Cast"]
    for n in keep:
        for i, name in enumerate(n.input):
            n.input[i] = casts.get(name, name)
    del m.graph.node[:]
    m.graph.node.extend(keep)
    return m.SerializeToString()


for mode in ("nearest", "bilinear"):
    for strip in (True, False):
        @case(f"torch interpolate {mode} to another input's shape, dynamic H and W, run at other sizes "
              f"(opset 13{', Casts bypassed' if strip else ''})")
        def _(mode=mode, strip=strip):
            dyn = {"x": {2: "h", 3: "w"}, "y": {2: "h2", 3: "w2"}}
            module = InterpLike(mode)
            data, _ = export(module, [torch.randn(1, 3, 4, 5), torch.randn(1, 8, 8, 10)], 13, ("x", "y"), dyn)
            # sizes come from y's shape through Shape -> Gather -> Concat, folded at plan time
            x, y = torch.randn(1, 3, 6, 7), torch.randn(1, 8, 12, 21)
            with torch.no_grad():
                want = module(x, y).numpy()
            if not strip:
                d, path = save(data, "interp_like_cast")
                rc, _, err = remodel("run", path, *[a for v in feeds_of(d, {"x": x.numpy(), "y": y.numpy()})
                                                    for a in ("-i", v)])
                if rc == 2 and "op Cast is not supported" in err:
                    raise Skip("needs Cast, which the ops-math branch adds")
            check("interp_like", without_casts(data) if strip else data, {"x": x.numpy(), "y": y.numpy()},
                  torch_out=want)


class Decoder(nn.Module):
    def __init__(self, groups, output_padding, bn):
        super().__init__()
        self.up = nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=output_padding, groups=groups)
        self.bn = nn.BatchNorm2d(8) if bn else nn.Identity()

    def forward(self, x):
        return F.relu(self.bn(self.up(x)))


for groups, op, bn in ((1, 1, True), (4, 1, False), (8, 0, True)):
    @case(f"torch ConvTranspose2d groups={groups} output_padding={op} bn={bn}")
    def _(groups=groups, op=op, bn=bn):
        check_torch("convt", randomize_bn(Decoder(groups, op, bn)), [torch.randn(1, 16, 7, 6)], 13,
                    onednn=("ConvTranspose", True))


class Net1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(
            nn.Conv1d(4, 16, 3, padding=1), nn.BatchNorm1d(16), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(16, 32, 5, stride=2, padding=2), nn.ReLU(), nn.MaxPool1d(3, stride=2, padding=1),
            nn.Conv1d(32, 32, 3, padding=2, dilation=2, groups=4), nn.ConvTranspose1d(32, 16, 4, stride=2, padding=1),
            nn.ReLU(), nn.AvgPool1d(2), nn.AdaptiveAvgPool1d(1))
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        return self.fc(torch.flatten(self.f(x), 1))


class Net3d(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(
            nn.Conv3d(3, 16, 3, padding=1), nn.BatchNorm3d(16), nn.ReLU(), nn.MaxPool3d(2),
            nn.Conv3d(16, 16, 3, padding=1, stride=(1, 2, 1)), nn.ReLU(),
            nn.AvgPool3d(2, stride=1, padding=1, count_include_pad=False),
            nn.ConvTranspose3d(16, 8, 2, stride=2), nn.ReLU(), nn.Conv3d(8, 8, 3, groups=8, padding=1),
            nn.AdaptiveMaxPool3d(1))

    def forward(self, x):
        return self.f(x)


for opset in (11, 13, 17):
    @case(f"torch Conv1d/MaxPool1d/AvgPool1d/ConvTranspose1d net opset {opset}")
    def _(opset=opset):
        check_torch("net1d", randomize_bn(Net1d()), [torch.randn(2, 4, 64)], opset, onednn=("Conv", True))

    @case(f"torch Conv3d/MaxPool3d/AvgPool3d/ConvTranspose3d net opset {opset}")
    def _(opset=opset):
        check_torch("net3d", randomize_bn(Net3d()), [torch.randn(1, 3, 8, 10, 12)], opset, onednn=("Conv", True))


class Shuffle(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 3, padding=1)
        self.ps = nn.PixelShuffle(2)

    def forward(self, x):
        return self.ps(self.conv(x))


class Norms(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.norm = {"layer": lambda: nn.LayerNorm([7, 6]), "group": lambda: nn.GroupNorm(4, 16),
                     "instance": lambda: nn.InstanceNorm2d(16, affine=True)}[kind]()
        g = torch.Generator().manual_seed(2)
        for p in self.norm.parameters():
            p.data.uniform_(-1, 1, generator=g)

    def forward(self, x):
        return self.norm(self.conv(x))


for opset in (11, 13, 17):
    @case(f"torch PixelShuffle opset {opset}")
    def _(opset=opset):
        check_torch("shuffle", Shuffle(), [torch.randn(2, 3, 5, 4)], opset)

    # GroupNorm exports as InstanceNormalization over [N, G, -1]; InstanceNorm2d on a
    # batch of one reads the conv's (blocked) output as it is
    for kind, n in (("group", 2), ("instance", 1)):
        @case(f"torch {kind} norm opset {opset}")
        def _(kind=kind, n=n, opset=opset):
            check_torch("norm", Norms(kind), [torch.randn(n, 3, 7, 6)], opset,
                        onednn=("InstanceNormalization", True))


@case("torch LayerNorm opset 17 (LayerNormalization)")
def _():
    check_torch("layernorm", Norms("layer"), [torch.randn(2, 3, 7, 6)], 17, onednn=("LayerNormalization", True))


# ---------------------------------------------------------------------------------------
# A UNet-like decoder plans no reorder around its upsampling, concat and add steps
# ---------------------------------------------------------------------------------------

def cbr(i, o):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True))


class UNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc1, self.enc2 = nn.Sequential(cbr(3, 16), cbr(16, 16)), nn.Sequential(cbr(16, 32), cbr(32, 32))
        self.pool, self.bott = nn.MaxPool2d(2), cbr(32, 64)
        self.up2, self.dec2 = nn.ConvTranspose2d(64, 32, 2, stride=2), cbr(64, 32)
        self.up1, self.dec1 = nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), cbr(32, 16)
        self.lat, self.head = nn.Conv2d(64, 16, 1), nn.Conv2d(16, 2, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        b = self.bott(self.pool(e2))
        d2 = self.dec2(torch.cat([self.up2(b), e2], 1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], 1))
        side = F.interpolate(self.lat(b), scale_factor=4.0, mode="bilinear", align_corners=False)
        top = F.interpolate(self.lat(b), size=e1.shape[-2:], mode="nearest")
        return self.head(d1 + side + top)


@case("UNet: outputs match PyTorch and onnxruntime; no reorder around ConvTranspose/Resize/Concat/Add")
def _():
    x = torch.randn(1, 3, 32, 32)
    data, y = export(randomize_bn(UNet()), [x], 13)
    check("unet", data, {"input": x.numpy()}, torch_out=y)
    d, path = save(data, "unet")
    args = feeds_of(d, {"input": x.numpy()})
    # Winograd convs make every conv channel-blocked; --direct-conv keeps channels-last
    for flags in ((), ("--direct-conv",)):
        steps = plan_steps(path, args, *flags)
        for op in ("ConvTranspose", "Resize", "Concat", "Add"):
            mine = [s for s in steps if s["op"] == op]
            assert mine, f"no {op} step"
            for s in mine:
                assert s["onednn"], f"{flags}: {s['node']} runs on the C kernel"
                assert s["execs"] == 1, f"{flags}: {s['node']} reorders its input ({s['execs']} primitives)"


# ---------------------------------------------------------------------------------------
# Shapes, MACs and bad input
# ---------------------------------------------------------------------------------------

@case("info: ConvTranspose MACs are input elements x C_out/group x kernel volume")
def _():
    m, _ = conv_t((2, 8, 5, 6), 8, 12, 3, g=4, strides=[2, 1], pads=[0, 1, 1, 0])
    d, path = save(m, "macs")
    rc, out, err = remodel("info", path, "--json")
    assert rc == 0, err
    assert json.loads(out)["macs"] == 2 * 8 * 5 * 6 * (12 // 4) * 3 * 3, out


@case("Resize whose scales are computed at run time: exit 2, says they are not a plan-time constant")
def _():
    node = helper.make_node("Resize", ["X", "", "scales"], ["Y"], mode="nearest")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 1, 2, 2]),
                                        helper.make_tensor_value_info("scales", TensorProto.FLOAT, [4])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    d, path = save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "runtime_scales")
    rc, _, err = remodel("run", path)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "not a plan-time constant" in lines[0], (rc, err)


def bad(name, m, needle):
    @case(f"refused, one line, exit 2: {name}")
    def _():
        d, path = save(m, "bad_" + name)
        rc, _, err = remodel("run", path)
        lines = err.strip().splitlines()
        assert rc == 2, f"exit {rc}: {err.strip()}"
        assert len(lines) == 1 and needle in lines[0], lines


bad("Resize scale NaN", resize((1, 1, 4, 4), scales=[1, 1, float("nan"), 2])[0], "positive finite")
bad("Resize scale negative", resize((1, 1, 4, 4), scales=[1, 1, -2, 2])[0], "positive finite")
bad("Resize scale 1e30", resize((1, 1, 4, 4), scales=[1, 1, 1e30, 2])[0], "too large")
bad("Resize scale 1e9 (a 4e9 x 4e9 output)", resize((1, 1, 4, 4), scales=[1, 1, 1e9, 1e9])[0], "too large")
bad("Resize sizes 2^62", resize((1, 1, 4, 4), sizes=[1, 1, 2 ** 62, 4])[0], "out of range")
bad("Resize sizes negative", resize((1, 1, 4, 4), sizes=[1, 1, -4, 4])[0], "out of range")
bad("Resize scales and sizes", resize((1, 1, 4, 4), scales=[1, 1, 2, 2], sizes=[1, 1, 8, 8])[0], "only one")
bad("Resize roi NaN", resize((1, 1, 4, 4), sizes=[1, 1, 2, 2], roi=[0, 0, 0, float("nan"), 1, 1, 1, 1],
                             coordinate_transformation_mode="tf_crop_and_resize")[0], "finite")
bad("Resize unknown mode", resize((1, 1, 4, 4), scales=[1, 1, 2, 2], mode="area")[0], "unknown mode")
bad("DepthToSpace blocksize 2^40", one("DepthToSpace", (1, 4, 2, 2), blocksize=2 ** 40)[0], "blocksize")
bad("DepthToSpace channels not divisible", one("DepthToSpace", (1, 6, 2, 2), blocksize=2)[0], "divide")
bad("SpaceToDepth blocksize 0", one("SpaceToDepth", (1, 4, 2, 2), blocksize=0)[0], "blocksize")
bad("ConvTranspose output_shape 2^63-1", conv_t((1, 2, 3, 3), 2, 2, 3, output_shape=[2 ** 63 - 1, 3])[0],
    "out of range")
bad("ConvTranspose output_shape 2^40", conv_t((1, 2, 3, 3), 2, 2, 3, output_shape=[2 ** 40, 2 ** 20])[0],
    "too large")
bad("ConvTranspose stride 2^40", conv_t((1, 2, 3, 3), 2, 2, 3, strides=[2 ** 40, 1])[0], "below 2^31")
bad("ConvTranspose output_padding >= stride", conv_t((1, 2, 3, 3), 2, 2, 3, strides=[2, 2],
                                                     output_padding=[2, 0])[0], "output_padding")
bad("ConvTranspose pads crop everything", conv_t((1, 2, 3, 3), 2, 2, 3, pads=[3, 3, 3, 3])[0], "no output")
bad("ConvTranspose group 3 of 4 channels", conv_t((1, 4, 3, 3), 4, 3, 3, g=3)[0], "groups")
bad("GroupNormalization 3 groups of 8 channels", one("GroupNormalization", (1, 8, 2, 2),
                                                     {"S": randn(3), "B": randn(3)}, 18, num_groups=3)[0], "divide")
# 244928 x 244928 floats: 240 GB, under the 2^36-element cap; over any session's memory
# budget (half the machine's RAM), refused before a page is touched
bad("Resize to a 240 GB output", resize((1, 1, 64, 64), scales=[1, 1, 3827, 3827])[0],
    "needs more than its memory limit")
bad("LayerNormalization axis 5", one("LayerNormalization", (2, 3), {"S": randn(3)}, 17, axis=5)[0], "axis")

if os.environ.get("RM_SPATIAL_KEEP"):
    print(f"models and outputs kept in {WORK}")
else:
    shutil.rmtree(WORK, ignore_errors=True)
T.finish()
