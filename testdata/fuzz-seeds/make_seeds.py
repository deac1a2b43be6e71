#!/usr/bin/python3
"""Write the small models that seed the structure-aware fuzzer with the patterns prune
follows beyond plain conv chains: a C2f divided by Split and by chunk's Shape-bounded
Slices, a grouped Conv and ConvTranspose, a classifier with a hidden Linear (Gemm and
MatMul + Add), a dynamo-style head (ReduceMean with an axes input, Reshape [0, -1]) and
x.view(x.size(0), -1) with a dynamic batch. Each is a few KB; fuzz/run.sh copies them
into the corpus.

usage: testdata/fuzz-seeds/make_seeds.py    (Debian's python3-torch and python3-onnx)
"""
import os
import warnings

import numpy as np
import onnx
from onnx import helper, numpy_helper

warnings.filterwarnings("ignore")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


class C2f(nn.Module):
    def __init__(self, chunk):
        super().__init__()
        self.chunk = chunk
        self.cv1 = nn.Conv2d(3, 8, 1)
        self.m = nn.Conv2d(4, 4, 3, padding=1)
        self.cv2 = nn.Conv2d(12, 4, 1)

    def forward(self, x):
        h = torch.relu(self.cv1(x))
        y = list(h.chunk(2, 1) if self.chunk else h.split([4, 4], 1))
        y.append(self.m(y[-1]))
        return self.cv2(torch.cat(y, 1))


class Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 1)
        self.b = nn.Conv2d(8, 8, 3, padding=1, groups=4)
        self.up = nn.ConvTranspose2d(8, 8, 2, stride=2, groups=2)
        self.c = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        return self.c(self.up(torch.relu(self.b(torch.relu(self.a(x))))))


class Mlp(nn.Module):
    def __init__(self, view=False):
        super().__init__()
        self.view = view
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm1d(8)
        self.fc1 = nn.Linear(4 * 4 * 4, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        y = y.view(y.size(0), -1) if self.view else torch.flatten(y, 1)
        return self.fc2(torch.relu(self.bn(self.fc1(y))))


class CNBlock(nn.Module):
    """ConvNeXt's block: a channels-last MLP (Linear on the last axis, GELU) between permutes."""

    def __init__(self, c=4, hidden=8):
        super().__init__()
        self.stem = nn.Conv2d(3, c, 2, stride=2)
        self.dw = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.norm = nn.LayerNorm(c)
        self.fc1 = nn.Linear(c, hidden)
        self.fc2 = nn.Linear(hidden, c)

    def forward(self, x):
        x = self.stem(x)
        y = self.fc2(nn.functional.gelu(self.fc1(self.norm(self.dw(x).permute(0, 2, 3, 1)))))
        return x + y.permute(0, 3, 1, 2)


def export(m, name, opset, dynamic=False):
    path = os.path.join(HERE, name + ".onnx")
    with torch.no_grad():
        torch.onnx.export(m.eval(), torch.zeros(1, 3, 4, 4), path, opset_version=opset, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "b"}} if dynamic else None)
    return path


def gemm_to_matmul(path):
    """Every Gemm (transB=1) as MatMul by the [in, out] weight and Add of the bias."""
    mp = onnx.load(path)
    g = mp.graph
    inits = {t.name: t for t in g.initializer}
    for gemm in [n for n in g.node if n.op_type == "Gemm"]:
        wt = numpy_helper.from_array(np.ascontiguousarray(numpy_helper.to_array(inits[gemm.input[1]]).T),
                                     gemm.input[1] + "_t")
        g.initializer.append(wt)
        k = list(g.node).index(gemm)
        scope = gemm.name.rsplit("/", 1)[0]
        g.node.remove(gemm)
        g.node.insert(k, helper.make_node("Add", [scope + "/mm", gemm.input[2]], list(gemm.output),
                                          name=scope + "/Add"))
        g.node.insert(k, helper.make_node("MatMul", [gemm.input[0], wt.name], [scope + "/mm"], name=scope + "/MatMul"))
        g.initializer.remove(inits[gemm.input[1]])
    onnx.save(mp, path)


def dynamo_head(path):
    """Opset 18: the global pool a ReduceMean with an axes input, the flatten a Reshape."""
    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.fc = nn.Linear(8, 3)

        def forward(self, x):
            return self.fc(torch.flatten(torch.relu(self.conv(x)).mean((2, 3), keepdim=True), 1))
    export(Head(), "dynamo_head", 17)
    mp = onnx.load(path)
    g = mp.graph
    mp.opset_import[0].version = 18
    g.initializer.extend([numpy_helper.from_array(np.array([-1, -2], np.int64), "mean_axes"),
                          numpy_helper.from_array(np.array([0, -1], np.int64), "flat_shape")])
    for n in g.node:
        if n.op_type == "ReduceMean":
            del n.attribute[:]
            n.attribute.append(helper.make_attribute("keepdims", 1))
            n.input.append("mean_axes")
        if n.op_type == "Flatten":
            n.op_type = "Reshape"
            del n.attribute[:]
            n.input.append("flat_shape")
    onnx.save(mp, path)


def seeded(make):
    """make() with PyTorch's generator seeded: the same weights, the same bytes, every run."""
    torch.manual_seed(0)
    return make()


def main():
    export(seeded(lambda: C2f(False)), "c2f_split", 13)
    export(seeded(lambda: C2f(True)), "c2f_chunk", 13)
    export(seeded(Grouped), "grouped", 13)
    export(seeded(Mlp), "mlp_gemm", 13)
    gemm_to_matmul(export(seeded(Mlp), "mlp_matmul", 13))
    export(seeded(lambda: Mlp(view=True)), "view_dynamic", 13, dynamic=True)
    export(seeded(CNBlock), "convnext_mlp", 13)
    torch.manual_seed(0)
    dynamo_head(os.path.join(HERE, "dynamo_head.onnx"))
    for f in sorted(os.listdir(HERE)):
        if f.endswith(".onnx"):
            print(f, os.path.getsize(os.path.join(HERE, f)))


if __name__ == "__main__":
    main()
