#!/usr/bin/python3
"""Module-tree test models in the styles of every exporter, with the tree PyTorch says each has.

Run with Debian's Python (python3-torch 1.13, python3-torchvision 0.14, python3-onnx):

    /usr/bin/python3 testdata/trees/make_trees.py [--corpus DIR]

It writes, into testdata/trees/, structure-only models ("skeletons": every tensor of more
than SMALL elements has its data removed, dims and type kept, so trees and leaf arguments
can be derived but nothing runs) and next to each <name>.tree.json, the expected tree:

    dynamo-<model>.skeleton.onnx   torchvision resnet18, mobilenet_v3_small, convnext_tiny and
                                   efficientnet_b0 (64x64, opset 17, BatchNorm kept) as PyTorch's
                                   dynamo exporter marks nodes: every node named node_<op>[_<k>],
                                   its module stack only in metadata_props
                                   pkg.torch.onnx.name_scopes / class_hierarchy (see below)
    dynamo-tiny_resnet.skeleton.onnx   the corpus' dynamo-style TinyResNet (make_corpus.py's
                                   restyle_dynamo: node names, ops and metadata as the dynamo
                                   exporter writes them)
    paddle2onnx-lcnet.skeleton.onnx    the corpus' paddle2onnx-style PP-LCNet (weights in
                                   Constant nodes named conv2d_3.w_0, p2o.* node names)
    tf2onnx-cnn.skeleton.onnx      the corpus' tf2onnx-style Keras CNN (model/conv2d/Conv2D)
    conv1d.skeleton.onnx           the corpus' Conv1dNet, TorchScript export (opset 13,
                                   BatchNorm kept): Conv1d, BatchNorm1d, MaxPool1d, AvgPool1d,
                                   AdaptiveAvgPool1d
    getter.skeleton.onnx           GetterNet (below), TorchScript export: containers with
                                   numbered children that are no nn.Sequential

The three corpus styles come from testdata/corpus/make_corpus.py (or --corpus DIR holding
it): its own restyling functions, called here, so the files are the corpus' files (minus
the data of large tensors).

<name>.tree.json holds what PyTorch (or, for restyled models, the restyler's naming) says:

    "modules": {path: {"class": qualified class, "called": bool, "leaf": bool, "repr":
               repr(module) for a leaf, "sequential": isinstance(module, nn.Sequential)}} for
               every module of named_modules(), the root "" included, "called" when its
               forward ran in one eval forward pass (forward hooks): for torch-made models
               (dynamo-*, conv1d, getter)
    "layers":  {path in the restyled model: {"torch_path", "class", "repr", "fused"}}: for
               paddle2onnx-lcnet, the Paddle layer a torch module became, found by its
               weight's values (the Constant whose tensor equals module.weight); for
               tf2onnx-cnn, the Keras layer "model.<attribute>" (the restyler names Keras
               layers after KerasCNN's attributes), "fused" when tf2onnx folded that
               BatchNorm into the conv before it (no FusedBatchNormV3 node of that name)

The dynamo restyle of torchvision models: a TorchScript export whose node scopes are
resolved against the module (the scope "/features/features.1/block/block.0/Conv" is module
features.1.block.0), its name_scopes the called modules on that path, root first, then
the node's own FX-style name; class_hierarchy their classes (module.__module__ + "." +
__name__, as the exporter's _get_qualified_module_name writes them), then
"aten.<op>.default" (the exporter's "namespace" and "fx_node" entries, which say the
same again, are left out to keep the files small). Constant nodes become initializers (the dynamo exporter writes
constants that way), so every node carries metadata. Debian's onnx 1.12 predates
NodeProto.metadata_props (field 9, IR 10): it is appended as raw protobuf bytes, which
protobuf keeps. Every parameter and buffer is randomised first, so torch's exporter has no
equal tensors to share through Identity nodes.

Deterministic: fixed seeds, one thread; two runs give byte-identical files.
"""

import argparse
import importlib.util
import io
import json
import os
import sys
import warnings

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torch.nn as nn
import torchvision.models as tvm

HERE = os.path.dirname(os.path.abspath(__file__))
TESTDATA = os.path.dirname(HERE)
sys.path.insert(0, TESTDATA)
import make_models as mm  # noqa: E402  (called_module_ids, scope_path)

SEED = 20240601
SMALL = 64               # tensors with at most this many elements keep their data
MAX_BYTES = 512 * 1024   # per skeleton

warnings.filterwarnings("ignore")
torch.set_num_threads(1)

TORCHVISION = [
    ("resnet18", lambda: tvm.resnet18()),
    ("mobilenet_v3_small", lambda: tvm.mobilenet_v3_small()),
    ("convnext_tiny", lambda: tvm.convnext_tiny()),
    ("efficientnet_b0", lambda: tvm.efficientnet_b0()),
]


def load_corpus(path):
    spec = importlib.util.spec_from_file_location("make_corpus", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def qualname(cls):
    return f"{cls.__module__}.{cls.__name__}"


def randomize(model, seed):
    """Every parameter and buffer seeded random (BatchNorm variances positive)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)


def module_table(model, x):
    """{path: {class, called, leaf, repr, sequential}} of every module of named_modules():
    whether its forward ran in one eval forward pass (forward hooks), ..."""
    called = mm.called_module_ids(model, x)
    out = {}
    for p, m in model.named_modules():
        leaf = next(m.children(), None) is None
        out[p] = {"class": qualname(type(m)), "called": id(m) in called, "leaf": leaf,
                  "repr": repr(m) if leaf else None, "sequential": isinstance(m, nn.Sequential)}
    return out


class GetterNet(nn.Module):
    """Containers an export shows with numbered children: a real nn.Sequential (head), a
    ModuleList its parent runs (branches: never called itself), and torchvision's
    IntermediateLayerGetter (a ModuleDict that runs its numbered children in turn and also
    returns an intermediate output, so it is no Sequential); AdaptiveAvgPool2d at its
    input's size (an identity AveragePool in the export)."""

    def __init__(self):
        super().__init__()
        from torchvision.models._utils import IntermediateLayerGetter
        body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                             nn.ReLU())
        self.body = IntermediateLayerGetter(body, {"1": "low", "3": "high"})
        self.branches = nn.ModuleList([nn.Conv2d(16, 8, 1), nn.Conv2d(16, 8, 3, padding=1)])
        self.head = nn.Sequential(nn.Conv2d(8, 4, 1), nn.ReLU(), nn.Conv2d(4, 4, 1))
        self.pool = nn.AdaptiveAvgPool2d(8)

    def forward(self, x):
        f = self.body(x)
        y = torch.cat([f["low"], f["high"]], 1)
        y = self.branches[0](y) + self.branches[1](y)
        return self.pool(self.head(y))


def add_node_metadata(node, pairs):
    """Append NodeProto.metadata_props (field 9) entries as raw bytes (onnx 1.12 has no
    such field; protobuf keeps unknown fields through re-serialisation)."""
    extra = b""
    for k, v in pairs:
        extra += mm.entry_bytes(9, k, v)
    data = node.SerializeToString() + extra
    node.Clear()
    node.ParseFromString(data)


def strip(proto):
    """Remove the data of every tensor (initializers, Constant node values) of more than
    SMALL elements, keeping name, dims and data_type."""
    def clear(t):
        if int(np.prod(list(t.dims), dtype=np.int64)) > SMALL:
            for field in ("raw_data", "float_data", "int32_data", "int64_data", "double_data",
                          "uint64_data", "string_data"):
                t.ClearField(field)
    for t in proto.graph.initializer:
        clear(t)
    for n in proto.graph.node:
        for a in n.attribute:
            if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
                clear(a.t)


def export(model, x, opset, bn_kept=True):
    buf = io.BytesIO()
    kw = dict(opset_version=opset, input_names=["input"], output_names=["output"])
    if bn_kept:
        kw.update(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    torch.onnx.export(model, (x,), buf, **kw)
    assert not model.training
    return onnx.load_from_string(buf.getvalue())


def dynamo_restyle(model, proto, table):
    """Node names and metadata as the dynamo exporter writes them (module docstring)."""
    g = proto.graph
    names = dict(model.named_modules())
    consts = []
    nodes = []
    counts = {}
    for n in g.node:
        if n.op_type == "Constant":
            t = onnx.AttributeProto()
            t.CopyFrom(next(a for a in n.attribute if a.name == "value"))
            t.t.name = n.output[0]
            consts.append(t.t)
            continue
        if n.op_type == "Identity":
            raise ValueError(f"{n.name}: Identity node (equal tensors shared)")
        path = mm.scope_path(names, n.name)
        parts = path.split(".") if path else []
        prefixes = [""] + [".".join(parts[:i + 1]) for i in range(len(parts))]
        prefixes = [p for p in prefixes if table.get(p, {}).get("called")]
        base = n.op_type.lower()
        k = counts.get(base, 0)
        counts[base] = k + 1
        fx = base if k == 0 else f"{base}_{k}"
        classes = [table[p]["class"] for p in prefixes] + [f"aten.{base}.default"]
        scopes = prefixes + [fx]
        node = onnx.NodeProto()
        node.CopyFrom(n)
        node.name = "node_" + fx
        add_node_metadata(node, [
            ("pkg.torch.onnx.class_hierarchy", repr(classes)),
            ("pkg.torch.onnx.name_scopes", repr(scopes)),
            ("pkg.torch.onnx.stack_trace", ""),
        ])
        nodes.append(node)
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(consts)
    g.name = "main_graph"
    proto.producer_version = "2.9.0"
    return proto


def write(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def save(name, proto, expected):
    strip(proto)
    data = proto.SerializeToString()
    if len(data) > MAX_BYTES:
        raise SystemExit(f"{name}: skeleton is {len(data)} bytes, over {MAX_BYTES}")
    write(os.path.join(HERE, f"{name}.skeleton.onnx"), data)
    write(os.path.join(HERE, f"{name}.tree.json"),
          (json.dumps(dict(model=name, **expected), indent=1, sort_keys=True) + "\n").encode())
    print(f"{name:<32} {len(data):>8} bytes {len(proto.graph.node):>5} nodes")


def make_dynamo_torchvision(index, name, make):
    torch.manual_seed(SEED + index)
    model = make().eval()
    randomize(model, SEED + 100 + index)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(SEED))
    table = module_table(model, x)
    proto = dynamo_restyle(model, export(model, x, 17), table)
    save(f"dynamo-{name}", proto, {"style": "dynamo", "modules": table})


def tensors_of(proto):
    """{name: array} of the Constant node values and initializers of a restyled model."""
    out = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    for n in proto.graph.node:
        if n.op_type == "Constant":
            out[n.output[0]] = onnx.numpy_helper.to_array(n.attribute[0].t)
    return out


def make_styled(mc):
    # dynamo-tiny_resnet: rebuilt the way make_corpus.make_dynamo builds it
    b = mc.make_styled("dynamo-tiny_resnet")
    model = mc.build("dynamo-tiny_resnet", mm.TinyResNet)
    x = torch.from_numpy(b.x)
    save("dynamo-tiny_resnet", onnx.load_from_string(b.data),
         {"style": "dynamo", "modules": module_table(model, x)})

    # paddle2onnx-lcnet: each Conv2d/BatchNorm2d/Linear is the Paddle layer whose weight
    # Constant holds the module's weight (Linear's transposed)
    b = mc.make_styled("paddle2onnx-lcnet")
    model = mc.build("paddle2onnx-lcnet", mc.LCNetTiny)
    proto = onnx.load_from_string(b.data)
    tensors = tensors_of(proto)
    layers = {}
    for p, m in model.named_modules():
        if not isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)):
            continue
        w = m.weight.detach().numpy()
        if isinstance(m, nn.Linear):
            w = w.T
        hits = [k for k, v in tensors.items()
                if k.endswith(".w_0") and v.shape == w.shape and np.array_equal(v, w)]
        if len(hits) != 1:
            raise SystemExit(f"paddle2onnx-lcnet: {p}: {len(hits)} Constants hold its weight")
        layers[hits[0][:-len(".w_0")]] = {"torch_path": p, "class": qualname(type(m)),
                                          "repr": repr(m), "fused": False}
    save("paddle2onnx-lcnet", proto, {"style": "paddle2onnx", "layers": layers})

    # tf2onnx-cnn: Keras layer model/<attribute>, BatchNorms fused unless their
    # FusedBatchNormV3 node is there
    b = mc.make_styled("tf2onnx-cnn")
    model = mc.NHWC(mc.build("tf2onnx-cnn", mc.KerasCNN)).eval()
    proto = onnx.load_from_string(b.data)
    node_names = {n.name for n in proto.graph.node}
    layers = {}
    for p, m in model.named_modules():
        if not isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)):
            continue
        attr = p.split(".")[-1]
        fused = isinstance(m, nn.BatchNorm2d) and \
            f"model/{attr}/FusedBatchNormV3" not in node_names
        layers[f"model.{attr}"] = {"torch_path": p, "class": qualname(type(m)),
                                   "repr": repr(m), "fused": fused}
    save("tf2onnx-cnn", proto, {"style": "tf2onnx", "layers": layers})

    # conv1d: TorchScript export with BatchNorm kept
    model = mc.build("conv1d")
    x = torch.randn(1, 4, 64, generator=torch.Generator().manual_seed(SEED))
    save("conv1d", export(model, x, 13), {"style": "torchscript",
                                          "modules": module_table(model, x)})


def make_getter():
    torch.manual_seed(SEED + 50)
    model = GetterNet().eval()
    randomize(model, SEED + 51)
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(SEED))
    save("getter", export(model, x, 13, bn_kept=False),
         {"style": "torchscript", "modules": module_table(model, x)})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default=os.path.join(TESTDATA, "corpus"),
                    help="folder holding make_corpus.py (default: testdata/corpus)")
    args = ap.parse_args()
    script = os.path.join(args.corpus, "make_corpus.py")
    if not os.path.exists(script):
        raise SystemExit(f"{script}: not found (give --corpus DIR)")
    mc = load_corpus(script)
    torch.set_num_threads(1)
    for index, (name, make) in enumerate(TORCHVISION):
        make_dynamo_torchvision(index, name, make)
    make_styled(mc)
    make_getter()
    return 0


if __name__ == "__main__":
    sys.exit(main())
