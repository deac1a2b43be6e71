#!/usr/bin/python3
"""One-node (and a few exported) ONNX models for every operator remodel's engine runs,
with seeded random inputs and onnxruntime's outputs as the reference (ggml's
test-backend-ops idea). tests/test_ops.c runs them in remodel and checks that every op
the op table marks RM_OPF_ENGINE has at least one case here.

    ops_cases.py OUTDIR

writes, per case, OUTDIR/<case>/model.onnx, test_data_set_0/input_<k>.pb (graph inputs
in order) and output_<k>.pb (onnxruntime's outputs), and given.txt: the inputs remodel
must know when it plans (shapes, repeats, axes, K: they decide output shapes). OUTDIR/
cases.txt lists "<case> <Op>" per line. OUTDIR/refuse/<name>.onnx are models the engine
must refuse (hostile sizes, wrong types, unsupported ops), listed in OUTDIR/refusals.txt
as "<name> <unsupported|format> <part of the message>". Case names end in the variant:
  _in     the op's inputs are graph inputs (run time: oneDNN or the C kernel)
  _const  the same inputs as initializers (folded at plan time)
  _conv   input 0 comes out of an identity 1x1 Conv (a blocked or channels-last
          layout: the oneDNN planners), _conv3 out of a 3x3 Winograd one (nChw16c)
Needs Debian's python3-onnx, python3-numpy, python3-torch and node with
tests/ort/node_modules.
"""
import json
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ORT = os.path.join(HERE, "ort", "ort_cases.js")
rng = np.random.default_rng(20240613)

F, D, I64, I32, B, U8, I8 = (np.float32, np.float64, np.int64, np.int32, np.bool_, np.uint8, np.int8)


def normal(*shape):
    return rng.standard_normal(shape).astype(F)


def positive(*shape):
    return rng.uniform(0.5, 2.0, shape).astype(F)


def nonzero(*shape):
    return (rng.uniform(0.5, 2.0, shape) * rng.choice([-1, 1], shape)).astype(F)


def ints(lo, hi, *shape, dtype=I64):
    return rng.integers(lo, hi, shape).astype(dtype)


def bools(*shape):
    return rng.integers(0, 2, shape).astype(B)


def arr(values, dtype=I64):
    return np.array(values, dtype=dtype)


X4 = (2, 16, 5, 7)  # 16 channels: oneDNN's blocked layouts apply

cases = []  # (name, op, model, inputs {name: array}, given [names])


def add(op, tag, inputs, attrs=None, opset=17, n_out=1, given=(), consts=None, conv=False, node_inputs=None):
    """inputs: [(name, array)] graph inputs in order; consts: [(name, array)] always
    initializers; node_inputs: the node's input names (default: inputs then consts, '' skips)."""
    attrs = attrs or {}
    consts = consts or []
    names = node_inputs if node_inputs is not None else [n for n, _ in inputs] + [n for n, _ in consts]
    variants = ["in", "const"] if inputs else ["const"]
    if conv and inputs and inputs[0][1].dtype == F and inputs[0][1].ndim == 4:
        variants += ["conv", "conv3"]
    for v in variants:
        ins, inits, nodes = list(inputs), list(consts), []
        nin = list(names)
        if v == "const":
            inits = ins + inits
            ins = []
        elif v.startswith("conv"):
            x = ins[0][1]
            c = x.shape[1]
            k = 1 if v == "conv" else 3
            w = np.zeros((c, c, k, k), F)
            for i in range(c):
                w[i, i, k // 2, k // 2] = 1
            ins = [("xin", x)] + ins[1:]
            inits = inits + [("w_id", w)]
            nodes.append(helper.make_node("Conv", ["xin", "w_id"], ["xc"], pads=[k // 2] * 4))
            nin[nin.index(inputs[0][0])] = "xc"
        outs = ["y%d" % k for k in range(n_out)]
        nodes.append(helper.make_node(op, nin, outs, **attrs))
        g = helper.make_graph(
            nodes, "%s_%s" % (op, tag),
            [helper.make_tensor_value_info(n, onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[a.dtype], a.shape) for n, a in ins],
            [helper.make_empty_tensor_value_info(o) for o in outs],
            [numpy_helper.from_array(a, n) for n, a in inits])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="ops_cases")
        m.ir_version = 8
        cases.append(("%s_%s_%s" % (op, tag, v), op, m, ins, [n for n in given if any(n == i for i, _ in ins)]))


# ---- unary math and activations ----
for op, gen, attrs in [
    ("Abs", normal, {}), ("Neg", normal, {}), ("Sqrt", positive, {}), ("Exp", normal, {}), ("Log", positive, {}),
    ("Reciprocal", nonzero, {}), ("Erf", normal, {}), ("Tanh", normal, {}), ("Elu", normal, {"alpha": 0.7}),
    ("Selu", normal, {"alpha": 1.5, "gamma": 1.1}), ("Softplus", normal, {}), ("Softsign", normal, {}),
    ("Floor", normal, {}), ("Ceil", normal, {}), ("Relu", normal, {}), ("LeakyRelu", normal, {"alpha": 0.2}),
    ("Sigmoid", normal, {}), ("HardSigmoid", normal, {"alpha": 0.3, "beta": 0.4}), ("HardSwish", normal, {}),
    ("Identity", normal, {}), ("Dropout", normal, {}),
]:
    add(op, "x4", [("x", gen(*X4) * (3 if gen is normal else 1))], attrs, conv=True)
add("Mish", "x4", [("x", normal(*X4) * 3)], opset=18, conv=True)
add("Gelu", "erf", [("x", normal(*X4) * 3)], opset=20, conv=True)
add("Gelu", "tanh", [("x", normal(*X4) * 3)], {"approximate": "tanh"}, opset=20, conv=True)
add("Elu", "default", [("x", normal(3, 4))])
add("Abs", "int", [("x", ints(-9, 9, 3, 4))])
add("Neg", "int", [("x", ints(-9, 9, 3, 4))])
add("Clip", "bounds", [("x", normal(*X4) * 3)], consts=[("lo", arr(-0.5, F)), ("hi", arr(1.5, F))], conv=True)
add("Clip", "int", [("x", ints(-9, 9, 3, 4))], consts=[("lo", arr(-2)), ("hi", arr(5))])
add("Clip", "attr", [("x", normal(3, 4))], {"min": -0.3, "max": 0.2}, opset=6)

# ---- Cast ----
for src, to in [(F, TensorProto.INT64), (F, TensorProto.INT32), (F, TensorProto.BOOL), (F, TensorProto.DOUBLE),
                (F, TensorProto.UINT8), (F, TensorProto.INT8), (I64, TensorProto.FLOAT), (I64, TensorProto.INT32),
                (B, TensorProto.FLOAT), (I32, TensorProto.INT64), (D, TensorProto.FLOAT), (I64, TensorProto.BOOL)]:
    x = {F: normal(3, 5) * 40, I64: ints(-300, 300, 3, 5), B: bools(3, 5), I32: ints(-9, 9, 3, 5, dtype=I32),
         D: rng.standard_normal((3, 5))}[src]
    if src is F:
        x[0, :3] = [0.0, -0.7, 0.7]
    add("Cast", "%s_to_%s" % (np.dtype(src).name, TensorProto.DataType.Name(to).lower()), [("x", x)], {"to": to})
add("Cast", "float_to_double_x4", [("x", normal(*X4))], {"to": TensorProto.DOUBLE}, conv=True)

# ---- broadcasting arithmetic ----
for op in ["Add", "Sub", "Mul", "Div", "Min", "Max"]:
    b = nonzero(16, 1, 7) if op == "Div" else normal(16, 1, 7)
    add(op, "bcast", [("a", normal(*X4)), ("b", b)], conv=True)
    add(op, "same", [("a", normal(*X4)), ("b", nonzero(*X4) if op == "Div" else normal(*X4))], conv=True)
    add(op, "int", [("a", ints(-50, 50, 3, 4)), ("b", ints(1, 9, 4) * (1 if op == "Div" else -1))])
# a per-channel [1, C, 1, 1] operand (squeeze-excite's scale), computed and constant: beside
# a blocked input (_conv3) the engine reorders it into that layout
for op in ["Add", "Mul"]:
    add(op, "channel", [("a", normal(*X4)), ("b", normal(1, 16, 1, 1))], conv=True)
    add(op, "channel_init", [("a", normal(*X4))], consts=[("b", normal(1, 16, 1, 1))], conv=True)
for op in ["Min", "Max", "Sum", "Mean"]:
    add(op, "three", [("a", normal(3, 1, 5)), ("b", normal(4, 1)), ("c", normal(5))])
    add(op, "one", [("a", normal(3, 4))])
    add(op, "x4", [("a", normal(*X4)), ("b", normal(*X4)), ("c", normal(*X4))], conv=True)
add("Pow", "scalar", [("x", positive(*X4))], consts=[("e", arr(2.5, F))], conv=True)
add("Pow", "square", [("x", normal(*X4))], consts=[("e", arr(2.0, F))], conv=True)
add("Pow", "bcast", [("x", positive(3, 4)), ("e", normal(4))])
add("Pow", "int_exp", [("x", normal(3, 4))], consts=[("e", arr([2, 3, 1, 0]))])
add("Pow", "int", [("x", ints(-5, 5, 3, 4)), ("e", ints(0, 4, 3, 4))])
add("PRelu", "channel", [("x", normal(*X4))], consts=[("s", normal(16, 1, 1))], conv=True)
add("PRelu", "shared", [("x", normal(*X4))], consts=[("s", normal(1))], conv=True)
add("PRelu", "input", [("x", normal(3, 4, 5)), ("s", normal(5))])

# ---- comparisons and logic ----
for op in ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"]:
    a = ints(-2, 3, 3, 4, 5).astype(F)
    add(op, "float", [("a", a), ("b", ints(-2, 3, 4, 1).astype(F))], opset=16)
    add(op, "int", [("a", ints(-2, 3, 3, 4)), ("b", ints(-2, 3, 4))], opset=16)
add("Equal", "bool", [("a", bools(3, 4)), ("b", bools(4))])
for op in ["And", "Or", "Xor"]:
    add(op, "bcast", [("a", bools(3, 4, 5)), ("b", bools(4, 5))])
add("Not", "x", [("x", bools(3, 4))])
add("Where", "float", [("c", bools(3, 1, 5)), ("x", normal(4, 5)), ("y", normal(3, 4, 1))])
add("Where", "int", [("c", bools(3, 4)), ("x", ints(-9, 9, 3, 4)), ("y", ints(-9, 9, 4))])

# ---- shape-generating ops ----
add("Expand", "bcast", [("x", normal(3, 1, 5))], consts=[("shape", arr([2, 1, 4, 1]))])
add("Expand", "input", [("x", normal(1, 4)), ("shape", arr([3, 1]))], given=["shape"])
add("Expand", "int", [("x", ints(0, 9, 4, 1))], consts=[("shape", arr([4, 6]))])
add("Tile", "x", [("x", normal(2, 3, 4))], consts=[("r", arr([2, 1, 3]))])
add("Tile", "input", [("x", ints(0, 9, 2, 3)), ("r", arr([3, 2]))], given=["r"])
add("Split", "attr", [("x", normal(*X4))], {"axis": 1, "split": [4, 12]}, opset=11, n_out=2)
add("Split", "equal", [("x", normal(2, 6, 3))], {"axis": 1}, opset=11, n_out=3)
add("Split", "input", [("x", normal(2, 7, 3)), ("s", arr([2, 5]))], {"axis": 1}, opset=13, n_out=2, given=["s"])
add("Split", "num_outputs", [("x", normal(2, 3, 8))], {"axis": -1, "num_outputs": 3}, opset=18, n_out=3)
add("Split", "six", [("x", ints(0, 9, 12, 2))], {"axis": 0}, opset=13, n_out=6)
add("ConstantOfShape", "float", [("shape", arr([2, 3, 4]))], {"value": helper.make_tensor("v", TensorProto.FLOAT,
                                                                                        [1], [2.5])},
    given=["shape"])
add("ConstantOfShape", "int", [], consts=[("shape", arr([3, 2]))],
    attrs={"value": helper.make_tensor("v", TensorProto.INT64, [1], [7])})
add("ConstantOfShape", "default", [("shape", arr([4]))], given=["shape"])
add("Range", "int", [("s", arr(2)), ("l", arr(17)), ("d", arr(4))], given=["s", "l", "d"])
add("Range", "negative", [], consts=[("s", arr(10)), ("l", arr(-3)), ("d", arr(-3))])
add("Range", "float", [], consts=[("s", arr(0.5, F)), ("l", arr(4.1, F)), ("d", arr(0.3, F))])
add("Range", "int32", [("s", arr(1, I32)), ("l", arr(9, I32)), ("d", arr(3, I32))], given=["s", "l", "d"])

# ---- reductions ----
for op in ["ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd", "ReduceL2"]:
    gen = positive if op == "ReduceProd" else normal
    add(op, "hw", [("x", gen(*X4))], {"axes": [2, 3]}, opset=13 if op != "ReduceSum" else 11, conv=True)
    add(op, "c_nokeep", [("x", gen(*X4))], {"axes": [1], "keepdims": 0}, opset=13 if op != "ReduceSum" else 11,
        conv=True)
    add(op, "all", [("x", gen(3, 4, 5))], opset=13 if op != "ReduceSum" else 11)
    add(op, "axes_input", [("x", gen(3, 4, 5))], {"keepdims": 0}, opset=18, consts=[("axes", arr([0, -1]))])
    add(op, "noop", [("x", gen(3, 4))], {"noop_with_empty_axes": 1}, opset=18)
for op in ["ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd"]:
    add(op, "int", [("x", ints(-3, 4, 3, 4))], {"axes": [1]}, opset=13 if op != "ReduceSum" else 11)
add("ReduceSum", "axes_input13", [("x", normal(3, 4, 5)), ("axes", arr([1]))], opset=13, given=["axes"])
for op in ["ArgMax", "ArgMin"]:
    add(op, "axis1", [("x", normal(3, 4, 5))], {"axis": 1})
    add(op, "nokeep_last", [("x", ints(0, 3, 3, 6).astype(F))], {"axis": -1, "keepdims": 0, "select_last_index": 1})
    add(op, "int", [("x", ints(-9, 9, 4, 5))], {"axis": 0})
add("TopK", "largest", [("x", normal(3, 10)), ("k", arr([4]))], {"axis": 1}, n_out=2, given=["k"])
add("TopK", "smallest", [("x", normal(4, 6, 3))], {"axis": 1, "largest": 0}, consts=[("k", arr([2]))], n_out=2)
add("TopK", "v1", [("x", normal(3, 8))], {"k": 3}, opset=9, n_out=2)

# ---- the ops remodel ran before (one case each, so the table is covered) ----
add("Conv", "3x3", [("x", normal(1, 3, 6, 6))], {"pads": [1, 1, 1, 1]}, consts=[("w", normal(4, 3, 3, 3))])
add("BatchNormalization", "x", [("x", normal(*X4))],
    consts=[("s", normal(16)), ("b", normal(16)), ("m", normal(16)), ("v", positive(16))], conv=True)
add("MaxPool", "3x3", [("x", normal(*X4))], {"kernel_shape": [3, 3], "strides": [2, 2]}, conv=True)
add("AveragePool", "2x2", [("x", normal(*X4))], {"kernel_shape": [2, 2]}, conv=True)
add("GlobalAveragePool", "x", [("x", normal(*X4))], conv=True)
add("GlobalMaxPool", "x", [("x", normal(*X4))], conv=True)
add("Gemm", "x", [("a", normal(3, 5))], {"transB": 1}, consts=[("b", normal(4, 5)), ("c", normal(4))])
add("MatMul", "x", [("a", normal(2, 3, 5)), ("b", normal(5, 4))])
add("Flatten", "x", [("x", normal(*X4))], conv=True)
add("Reshape", "x", [("x", normal(*X4))], consts=[("s", arr([2, -1, 7]))])
add("Transpose", "x", [("x", normal(2, 3, 4))], {"perm": [2, 0, 1]})
add("Concat", "x", [("a", normal(*X4)), ("b", normal(2, 3, 5, 7))], {"axis": 1}, conv=True)
add("Softmax", "x", [("x", normal(3, 5))], {"axis": -1})
add("Pad", "x", [("x", normal(2, 3, 4))], consts=[("p", arr([0, 1, 2, 0, 2, 1]))], opset=13)
add("Constant", "x", [], attrs={"value": numpy_helper.from_array(normal(2, 3))})
add("Shape", "x", [("x", normal(2, 3, 4))])
add("Gather", "x", [("x", normal(5, 3))], consts=[("i", arr([4, 0, -1]))])
add("Slice", "x", [("x", normal(5, 6))], consts=[("s", arr([1, 0])), ("e", arr([4, 6])), ("a", arr([0, 1])),
                                                 ("st", arr([1, 2]))])
add("Squeeze", "x", [("x", normal(3, 1, 4))], consts=[("a", arr([1]))])
add("Unsqueeze", "x", [("x", normal(3, 4))], consts=[("a", arr([0, 3]))])

# ---- the spatial ops (tests/test_spatial.py covers them in depth) ----
add("ConvTranspose", "s2", [("x", normal(1, 4, 5, 5))], {"strides": [2, 2], "pads": [1, 1, 1, 1],
                                                           "output_padding": [1, 1]},
    consts=[("w", normal(4, 3, 3, 3)), ("b", normal(3))])
add("DepthToSpace", "dcr", [("x", normal(1, 8, 2, 3))], {"blocksize": 2})
add("DepthToSpace", "crd", [("x", normal(1, 8, 2, 3))], {"blocksize": 2, "mode": "CRD"})
add("SpaceToDepth", "x", [("x", normal(1, 2, 4, 6))], {"blocksize": 2})
add("InstanceNormalization", "x", [("x", normal(2, 3, 4, 5))], consts=[("s", normal(3)), ("b", normal(3))])
add("LayerNormalization", "last", [("x", normal(2, 3, 4))], {"axis": -1}, consts=[("s", normal(4)), ("b", normal(4))])
add("GroupNormalization", "x", [("x", normal(2, 6, 3, 4))], {"num_groups": 3}, opset=18,
    consts=[("s", normal(3)), ("b", normal(3))])
add("Resize", "nearest", [("x", normal(1, 3, 4, 5))], {"mode": "nearest"}, opset=13,
    consts=[("roi", arr([], F)), ("sc", arr([1, 1, 2, 2], F))])
add("Resize", "linear_sizes", [("x", normal(1, 3, 4, 5))], {"mode": "linear"}, opset=13,
    consts=[("sz", arr([1, 3, 7, 9]))], node_inputs=["x", "", "", "sz"])
add("Upsample", "nearest", [("x", normal(1, 3, 4, 5))], {"mode": "nearest"}, opset=9,
    consts=[("sc", arr([1, 1, 2, 2], F))])


# ---- exported: shape arithmetic, decompositions (torch.onnx.export, dynamic axes) ----
def exports():
    import torch
    import torch.nn.functional as Fn

    class ShapeMath(torch.nn.Module):
        def forward(self, x):
            b, c, h, w = x.shape
            y = x.reshape(b, c // 2, 2, h * w)                  # Shape, Gather, Div, Mul, Concat, Reshape
            m = x.new_zeros(x.shape)                             # ConstantOfShape
            e = x.mean(dim=(2, 3), keepdim=True).expand_as(x)   # ReduceMean, Expand of a Shape
            idx = torch.arange(h)                                # Range
            k = torch.floor(torch.tensor(x.size(2)).float() / 2).long()  # Cast, Div, Floor, Cast
            z = torch.where(x > 0, x, m) + e                     # Greater, Where, Add
            t = x[:, :, :k].repeat(1, 1, 2, 1)                   # Slice by a computed bound, Tile
            return z, y, idx, x > 0.5, t

    class Decomp(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.ln = torch.nn.LayerNorm(7)
            self.pr = torch.nn.PReLU(16)

        def forward(self, x):
            a = self.ln(x)                                       # ReduceMean, Sub, Pow, Sqrt, Div (opset < 17)
            g = Fn.gelu(x)                                       # Erf, Mul, Add, Div
            mi = x * torch.tanh(Fn.softplus(x))                  # Mish as exported
            s = torch.split(self.pr(x), [6, 10], dim=1)          # PRelu, Split on channels
            return a + g, mi, s[0], s[1].max(dim=1)[0], torch.clamp(x, min=-0.5, max=0.5).sum(dim=-1)

    x = normal(2, 16, 6, 7)
    for name, mod, opsets in [("ShapeMath", ShapeMath(), [11, 13]), ("Decomp", Decomp(), [11, 13])]:
        for ops in opsets:
            path = os.path.join(outdir, "_export.onnx")
            names = ["y%d" % k for k in range(5)]
            torch.onnx.export(mod.eval(), torch.from_numpy(x), path, opset_version=ops, input_names=["x"],
                              output_names=names, dynamic_axes={"x": {0: "b", 2: "h", 3: "w"}})
            m = onnx.load(path)
            os.unlink(path)
            cases.append(("export_%s_opset%d" % (name, ops), "export", m, [("x", x)], []))


# ---- models the engine must refuse, with exit-2 style errors (hostile sizes) ----
refusals = []  # (name, model, code, message part)


def refuse(name, nodes, inits, code, msg, opset=17, inputs=()):
    g = helper.make_graph(nodes, name,
                          [helper.make_tensor_value_info(n, onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[a.dtype], a.shape)
                           for n, a in inputs],
                          [helper.make_empty_tensor_value_info(nodes[-1].output[0])],
                          [numpy_helper.from_array(a, n) for n, a in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    refusals.append((name, m, code, msg))


N = helper.make_node
x23 = [("x", normal(2, 3))]
refuse("unsupported_many", [N("Foo", ["x"], ["a"], name="f1"), N("Relu", ["a"], ["b"]), N("Bar", ["b"], ["c"], name="b1"),
                            N("Foo", ["c"], ["y"], name="f2")], [], "unsupported",
       "ops not supported: Foo (2 nodes, first 'f1'), Bar (1 node, first 'b1')", inputs=x23)
refuse("unsupported_domain", [N("Foo", ["x"], ["a"], name="m1", domain="com.microsoft"), N("Foo", ["a"], ["y"], name="f1")],
       [], "unsupported", "ops not supported: com.microsoft.Foo (1 node, first 'm1'), Foo (1 node, first 'f1')",
       inputs=x23)
refuse("cos_overflow", [N("ConstantOfShape", ["s"], ["y"])], [("s", arr([1 << 40, 1 << 40]))], "format",
       "multiply past int64")
refuse("cos_negative", [N("ConstantOfShape", ["s"], ["y"])], [("s", arr([-1, 3]))], "format", "negative")
refuse("cos_too_large", [N("ConstantOfShape", ["s"], ["y"])], [("s", arr([1 << 20, 1 << 20]))], "format", "too large")
refuse("cos_rank", [N("ConstantOfShape", ["s"], ["y"])], [("s", arr([1] * 9))], "unsupported", "rank 9")
refuse("tile_overflow", [N("Tile", ["x", "r"], ["y"])], [("r", arr([1 << 62, 4]))], "format", "overflows",
       inputs=x23)
refuse("tile_negative", [N("Tile", ["x", "r"], ["y"])], [("r", arr([-2, 4]))], "format", "negative", inputs=x23)
refuse("tile_wrong_length", [N("Tile", ["x", "r"], ["y"])], [("r", arr([2]))], "format", "2 entries", inputs=x23)
refuse("expand_mismatch", [N("Expand", ["x", "s"], ["y"])], [("s", arr([4, 4]))], "format", "cannot be broadcast",
       inputs=x23)
refuse("expand_overflow", [N("Expand", ["x", "s"], ["y"])], [("s", arr([1 << 40, 1 << 40, 1]))], "format",
       "multiply past int64", inputs=[("x", normal(1, 1))])
refuse("range_huge", [N("Range", ["a", "b", "c"], ["y"])], [("a", arr(0)), ("b", arr(1 << 62)), ("c", arr(1))],
       "format", "too many")
refuse("range_extreme", [N("Range", ["a", "b", "c"], ["y"])],
       [("a", arr(-(1 << 63))), ("b", arr((1 << 63) - 1)), ("c", arr(3))], "format", "too many")
refuse("range_zero_delta", [N("Range", ["a", "b", "c"], ["y"])], [("a", arr(0)), ("b", arr(5)), ("c", arr(0))],
       "format", "delta is 0")
refuse("range_nan", [N("Range", ["a", "b", "c"], ["y"])],
       [("a", arr(np.nan, F)), ("b", arr(5, F)), ("c", arr(1, F))], "format", "not numbers")
refuse("range_float_huge", [N("Range", ["a", "b", "c"], ["y"])],
       [("a", arr(0, F)), ("b", arr(3e38, F)), ("c", arr(1e-30, F))], "format", "too many")
refuse("split_sum", [N("Split", ["x", "s"], ["y", "z"], axis=1)], [("s", arr([2, 2]))], "format", "add up",
       opset=13, inputs=x23)
refuse("split_negative", [N("Split", ["x", "s"], ["y", "z"], axis=1)], [("s", arr([-1, 4]))], "format",
       "negative", opset=13, inputs=x23)
refuse("split_uneven", [N("Split", ["x"], ["y", "z"], axis=1)], [], "format", "equal parts", opset=13, inputs=x23)
refuse("split_num_outputs", [N("Split", ["x"], ["y", "z"], axis=1, num_outputs=3)], [], "format", "num_outputs",
       opset=18, inputs=x23)
refuse("topk_big", [N("TopK", ["x", "k"], ["y", "i"])], [("k", arr([4]))], "format", "larger than the axis",
       inputs=x23)
refuse("topk_negative", [N("TopK", ["x", "k"], ["y", "i"])], [("k", arr([-1]))], "format", "negative", inputs=x23)
refuse("cast_float16", [N("Cast", ["x"], ["y"], to=TensorProto.FLOAT16)], [], "unsupported", "float16", inputs=x23)
refuse("cast_bad_to", [N("Cast", ["x"], ["y"], to=999)], [], "format", "not an ONNX element type", inputs=x23)
refuse("where_float_cond", [N("Where", ["x", "x", "x"], ["y"])], [], "format", "not bool", inputs=x23)
refuse("reduce_axis", [N("ReduceMax", ["x"], ["y"], axes=[5])], [], "format", "axis out of range", opset=13,
       inputs=x23)
refuse("argmax_empty", [N("ArgMax", ["x"], ["y"], axis=1)], [], "format", "empty", inputs=[("x", normal(3, 0))])
refuse("int_div_zero", [N("Div", ["a", "b"], ["y"])], [("a", arr([4, 5])), ("b", arr([1, 0]))], "format",
       "division by zero")
refuse("not_float", [N("Not", ["x"], ["y"])], [], "format", "not bool", inputs=x23)
refuse("and_float", [N("And", ["x", "x"], ["y"])], [], "format", "not bool", inputs=x23)
refuse("gelu_approx", [N("Gelu", ["x"], ["y"], approximate="exact")], [], "format", "neither", opset=20,
       inputs=x23)
refuse("prelu_slope", [N("PRelu", ["x", "s"], ["y"])], [("s", normal(4))], "format", "slope", inputs=x23)


def main():
    global outdir
    if len(sys.argv) != 2:
        sys.exit("usage: ops_cases.py OUTDIR")
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exports()
    manifest = []
    for name, op, m, ins, given in cases:
        d = os.path.join(outdir, name)
        os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
        onnx.save(m, os.path.join(d, "model.onnx"))
        feeds = {}
        for k, (n, a) in enumerate(ins):
            onnx.save_tensor(numpy_helper.from_array(a, n), os.path.join(d, "test_data_set_0", "input_%d.pb" % k))
            np.save(os.path.join(d, "in_%d.npy" % k), a)
            feeds[n] = os.path.join(d, "in_%d.npy" % k)
        with open(os.path.join(d, "given.txt"), "w") as f:
            f.write("".join(g + "\n" for g in given))
        manifest.append({"model": os.path.join(d, "model.onnx"), "inputs": feeds, "outdir": os.path.join(d, "ort")})
    with open(os.path.join(outdir, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    subprocess.run(["node", ORT, os.path.join(outdir, "manifest.json")], check=True)
    listing = []
    for name, op, m, ins, given in cases:
        d = os.path.join(outdir, name)
        err = os.path.join(d, "ort", "error.txt")
        if os.path.exists(err):
            sys.exit("onnxruntime refused %s: %s" % (name, open(err).read().strip()))
        for k in range(len(m.graph.output)):
            a = np.load(os.path.join(d, "ort", "output_%d.npy" % k))
            onnx.save_tensor(numpy_helper.from_array(a, m.graph.output[k].name),
                             os.path.join(d, "test_data_set_0", "output_%d.pb" % k))
        listing.append("%s %s\n" % (name, op))
    with open(os.path.join(outdir, "cases.txt"), "w") as f:
        f.write("".join(listing))
    os.makedirs(os.path.join(outdir, "refuse"), exist_ok=True)
    with open(os.path.join(outdir, "refusals.txt"), "w") as f:
        for name, m, code, msg in refusals:
            onnx.save(m, os.path.join(outdir, "refuse", name + ".onnx"))
            f.write("%s %s %s\n" % (name, code, msg))


if __name__ == "__main__":
    main()
