#!/usr/bin/python3
"""Export torchvision classification CNNs as weightless ONNX skeletons for module-tree tests.

Run with Debian's Python (python3-torch 1.13, python3-torchvision 0.14, python3-onnx):

    /usr/bin/python3 testdata/make_torchvision.py

For each model (untrained, weights=None: nothing is downloaded) it writes, into
testdata/torchvision/:

    <name>.skeleton.onnx     torch.onnx.export (opset 13, eval, default options), then every
                             initializer's data is removed: name, dims and data_type are kept,
                             raw_data (and any typed data) cleared. Node names (the module
                             scopes), attributes and weight shapes are all there; the file is
                             small but is not a runnable model.
    <name>.conv_paths.json   {"model", "conv2d": the nn.Conv2d module paths PyTorch itself
                             calls in one eval forward pass (named_modules() order, found with
                             forward hooks), "leaves": {path: repr(module)} of every leaf
                             module called (including those that leave no ONNX node),
                             "containers": {path: [class name, isinstance nn.Sequential]} of
                             every other module called, the root ("") included}.

The expected paths come from PyTorch, never from remodel. Deterministic: fixed seed, one
thread; two runs give byte-identical files.
"""

import io
import json
import os
import sys
import warnings

import onnx
import torch
import torch.nn as nn
import torchvision.models as tvm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_models as mm  # noqa: E402  (shared PyTorch helpers)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "torchvision")
OPSET = 13
SEED = 20240101
MAX_BYTES = 512 * 1024  # per skeleton

warnings.filterwarnings("ignore", category=UserWarning)
torch.set_num_threads(1)

MODELS = [
    ("resnet18", lambda: tvm.resnet18(weights=None)),
    ("resnet50", lambda: tvm.resnet50(weights=None)),
    ("mobilenet_v2", lambda: tvm.mobilenet_v2(weights=None)),
    ("densenet121", lambda: tvm.densenet121(weights=None)),
    ("googlenet", lambda: tvm.googlenet(weights=None, aux_logits=False, init_weights=False)),
    ("efficientnet_b0", lambda: tvm.efficientnet_b0(weights=None)),
    ("regnet_y_400mf", lambda: tvm.regnet_y_400mf(weights=None)),
    ("shufflenet_v2_x1_0", lambda: tvm.shufflenet_v2_x1_0(weights=None)),
    ("squeezenet1_0", lambda: tvm.squeezenet1_0(weights=None)),
    ("mnasnet1_0", lambda: tvm.mnasnet1_0(weights=None)),
    ("mobilenet_v3_small", lambda: tvm.mobilenet_v3_small(weights=None)),
    ("mobilenet_v3_large", lambda: tvm.mobilenet_v3_large(weights=None)),
    ("convnext_tiny", lambda: tvm.convnext_tiny(weights=None)),
    ("regnet_x_400mf", lambda: tvm.regnet_x_400mf(weights=None)),
]


def called_modules(model, x):
    """Conv2d paths, {leaf path: repr} and {container path: [class name, is a Sequential]}
    of the modules whose forward ran, in named_modules() order."""
    called = mm.called_module_ids(model, x)
    convs = [p for p, m in model.named_modules()
             if isinstance(m, nn.Conv2d) and id(m) in called]
    leaves = {p: repr(m) for p, m in model.named_modules()
              if p and id(m) in called and next(m.children(), None) is None}
    containers = {p: [type(m).__name__, isinstance(m, nn.Sequential)]
                  for p, m in model.named_modules()
                  if id(m) in called and next(m.children(), None) is not None}
    return convs, leaves, containers


def strip(proto):
    """Remove every initializer's data in place, keeping name, dims and data_type."""
    for t in proto.graph.initializer:
        for field in ("raw_data", "float_data", "int32_data", "int64_data", "double_data",
                      "uint64_data", "string_data"):
            t.ClearField(field)


def write(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main():
    os.makedirs(OUT, exist_ok=True)
    failed = False
    total = 0
    for index, (name, make) in enumerate(MODELS):
        torch.manual_seed(SEED + index)
        model = make().eval()
        x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(SEED))
        convs, leaves, containers = called_modules(model, x)
        buf = io.BytesIO()
        torch.onnx.export(model, (x,), buf, opset_version=OPSET,
                          input_names=["input"], output_names=["output"])
        assert not model.training
        proto = onnx.load_from_string(buf.getvalue())
        onnx.checker.check_model(proto)
        strip(proto)
        data = proto.SerializeToString()
        if len(data) > MAX_BYTES:
            print(f"{name}: skeleton is {len(data)} bytes, over {MAX_BYTES}", file=sys.stderr)
            failed = True
        write(os.path.join(OUT, f"{name}.skeleton.onnx"), data)
        write(os.path.join(OUT, f"{name}.conv_paths.json"),
              (json.dumps({"model": name, "conv2d": convs, "leaves": leaves,
                          "containers": containers}, indent=1) + "\n").encode())
        total += len(data)
        print(f"{name:<20} {len(data):>8} bytes {len(proto.graph.node):>5} nodes "
              f"{len(convs):>4} Conv2d")
    print(f"{'total':<20} {total:>8} bytes")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
