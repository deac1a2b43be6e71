#!/usr/bin/python3
"""Expected `remodel info` figures for the testdata models, computed independently of
remodel by the onnx Python package (Debian's python3-onnx):

- nodes, op histogram, initializer count: read with onnx.load;
- params: sum of the element counts of all initializers (onnx.numpy_helper);
- param_bytes: bytes of initializer data (raw_data lengths);
- macs: Conv / Gemm / MatMul multiply-accumulates from ONNX's own shape inference
  (onnx.shape_inference.infer_shapes): Conv = numel(Y) * (C_in/group) * prod(kernel),
  Gemm = M * N * K, MatMul = numel(Y) * K.

Writes expected/info.json. Run: /usr/bin/python3 testdata/make_expected_info.py
"""

import collections
import glob
import json
import os

import numpy as np
import onnx
import onnx.numpy_helper
import onnx.shape_inference

HERE = os.path.dirname(os.path.abspath(__file__))


def shape_of(vi):
    return [d.dim_value for d in vi.type.tensor_type.shape.dim]


def summarise(path):
    model = onnx.load(path)
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    shapes = {}
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        shapes[vi.name] = shape_of(vi)
    inits = {t.name: t for t in g.initializer}
    for t in g.initializer:
        shapes[t.name] = list(t.dims)
    macs = 0
    for n in g.node:
        if n.op_type == "Conv":
            w = shapes[n.input[1]]
            y = shapes[n.output[0]]
            macs += int(np.prod(y)) * int(np.prod(w[1:]))
        elif n.op_type == "Gemm":
            trans_b = next((a.i for a in n.attribute if a.name == "transB"), 0)
            w = shapes[n.input[1]]
            y = shapes[n.output[0]]
            macs += int(np.prod(y)) * (w[1] if trans_b else w[0])
        elif n.op_type == "MatMul":
            w = shapes[n.input[1]]
            y = shapes[n.output[0]]
            macs += int(np.prod(y)) * w[-2]
    ops = collections.Counter(n.op_type for n in g.node)
    return {
        "nodes": len(g.node),
        "ops": dict(sorted(ops.items())),
        "initializers": len(g.initializer),
        "params": int(sum(int(np.prod(t.dims)) for t in g.initializer)),
        "param_bytes": int(sum(len(t.raw_data) for t in g.initializer)),
        "macs": macs,
        "ir_version": model.ir_version,
        "opset": [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")][0],
    }


def main():
    out = {}
    for path in sorted(glob.glob(os.path.join(HERE, "*.onnx"))):
        out[os.path.basename(path)[:-5]] = summarise(path)
    os.makedirs(os.path.join(HERE, "expected"), exist_ok=True)
    with open(os.path.join(HERE, "expected", "info.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    for k, v in out.items():
        print(f"{k:16s} nodes {v['nodes']:3d} params {v['params']:9d} macs {v['macs']}")


if __name__ == "__main__":
    main()
