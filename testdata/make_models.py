#!/usr/bin/python3
"""Regenerate remodel's test models and their PyTorch reference data.

Run with Debian's Python (python3-torch, python3-torchvision, python3-onnx):

    cd testdata && /usr/bin/python3 make_models.py
    /usr/bin/python3 testdata/make_models.py        # same result

Everything is written next to this script:

    <name>.onnx                                 the model, exported by torch.onnx.export (opset 13)
    <name>/test_data_set_0/input_0.pb           seeded random input (onnx.TensorProto)
    <name>/test_data_set_0/output_0.pb          output of the PyTorch module on that input
    expected/<name>.modules.json                PyTorch's module tree: modules called in forward
    expected/resnet18.print.txt                 repr(model) of resnet18

Every number here comes from PyTorch itself, never from an ONNX runtime or from remodel,
so tests can use it as an independent reference. The script is deterministic: fixed seeds,
one thread, deterministic algorithms; two runs give byte-identical files.
"""

import collections
import hashlib
import io
import json
import os
import re
import sys
import warnings

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torch.nn as nn
from torchvision.models import resnet18
from torchvision.models.mobilenetv2 import InvertedResidual
from torchvision.models.resnet import BasicBlock
from torchvision.ops.misc import Conv2dNormActivation, SqueezeExcitation

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
from rmtest import varint  # noqa: E402  (protobuf wire bytes, as the tests write them)

OPSET = 13
SEED = 20240101

# Exporting in eval mode with TrainingMode.PRESERVE makes torch warn that the model is
# exported in inference mode; the warnings say nothing we do not already check below.
warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")

torch.set_num_threads(1)  # float sums in the same order on every machine
torch.use_deterministic_algorithms(True)


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------

def randomize_bn(model, gen):
    """Give every BatchNorm statistics and affine parameters like a trained network's.

    Freshly initialised BatchNorms are all weight=1, bias=0, mean=0, var=1: folding them is
    a no-op and torch would deduplicate the equal tensors, so nothing would be tested.
    """
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            c = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.1)


def write_bytes(path, data):
    """Write a file atomically, creating its folder; the path is relative to HERE."""
    full = os.path.join(HERE, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    tmp = full + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, full)


def tensor_pb(array, name):
    """Serialize a numpy array as an onnx.TensorProto named after a graph input/output."""
    return onnx.numpy_helper.from_array(np.ascontiguousarray(array), name).SerializeToString()


def called_module_ids(model, x):
    """ids of the modules whose forward runs during one no-grad forward pass of model."""
    called = set()
    handles = [m.register_forward_hook(lambda mod, inp, out: called.add(id(mod)))
               for m in model.modules()]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return called


def called_modules(model, x):
    """PyTorch's module tree as tests of `remodel show` expect it.

    Returns the modules, in named_modules() order, whose forward ran during one eval
    forward pass (the root, path "", excluded). Leaves carry their repr.
    """
    called = called_module_ids(model, x)
    modules = []
    for path, m in model.named_modules():
        if path == "" or id(m) not in called:
            continue
        leaf = next(m.children(), None) is None
        modules.append({"path": path,
                        "type": type(m).__name__,
                        "repr": repr(m) if leaf else None})
    return modules


def scope_path(names, node_name):
    """Module path of a TorchScript-exported node ('/layer1/layer1.0/relu_1/Relu' ->
    'layer1.0.relu'): each scope component resolved against the module names."""
    comps = [c for c in node_name.strip("/").split("/")[:-1] if c]
    path = ""
    for c in comps:
        found = None
        for cand in (c, re.sub(r"_\d+$", "", c)):
            base = path
            while True:
                full = f"{base}.{cand}" if base else cand
                if full in names:
                    found = full
                    break
                if not base:
                    break
                base = base.rsplit(".", 1)[0] if "." in base else ""
            if found:
                break
        if found is None:
            raise ValueError(f"scope {node_name}: cannot resolve {c!r} under {path!r}")
        path = found
    return path


def pb_string(field, s):
    """String s as length-delimited field `field` (wire bytes)."""
    b = s.encode()
    return varint((field << 3) | 2) + varint(len(b)) + b


def entry_bytes(field, key, value):
    """A StringStringEntryProto as field `field` of its parent message (wire bytes)."""
    body = pb_string(1, key) + pb_string(2, value)
    return varint((field << 3) | 2) + varint(len(body)) + body


def identity_shared_initializers(graph):
    """Identity nodes that read an initializer, with the nodes that read that initializer.

    Returns {identity node name: (initializer, [consumer node names])}, where the consumers
    are the non-Identity nodes that read the initializer directly or through any Identity.
    """
    inits = {t.name for t in graph.initializer}
    alias = {}  # Identity output -> initializer it forwards
    for n in graph.node:
        if n.op_type == "Identity" and n.input[0] in inits:
            alias[n.output[0]] = n.input[0]
    consumers = collections.defaultdict(list)
    for n in graph.node:
        if n.op_type == "Identity":
            continue
        for name in n.input:
            root = alias.get(name, name if name in inits else None)
            if root is not None:
                consumers[root].append(n.name)
    return {n.name: (n.input[0], list(dict.fromkeys(consumers[n.input[0]])))
            for n in graph.node
            if n.op_type == "Identity" and n.input[0] in inits}


# ---------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------

class TinyResNet(nn.Module):
    """A two-stage ResNet from torchvision's BasicBlock, module names as in resnet18."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 8))
        downsample = nn.Sequential(nn.Conv2d(8, 16, kernel_size=1, stride=2, bias=False),
                                   nn.BatchNorm2d(16))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, stride=2, downsample=downsample))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


class MobileNetTiny(nn.Module):
    """MobileNetV2 in miniature, built from torchvision's own blocks.

    features.1 is an expand_ratio=1 block (depthwise conv straight away) with a residual;
    features.2 expands and strides; features.3 has a residual connection.
    """

    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            Conv2dNormActivation(3, 16, stride=2, activation_layer=nn.ReLU6),
            InvertedResidual(16, 16, stride=1, expand_ratio=1),
            InvertedResidual(16, 24, stride=2, expand_ratio=4),
            InvertedResidual(24, 24, stride=1, expand_ratio=4),
            Conv2dNormActivation(24, 64, kernel_size=1, activation_layer=nn.ReLU6),
        )
        self.classifier = nn.Sequential(nn.Dropout(p=0.2), nn.Linear(64, num_classes))

    def forward(self, x):  # as torchvision's MobileNetV2._forward_impl
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
        x = torch.flatten(x, 1)
        return self.classifier(x)


class ConvBNReLU(nn.Module):
    """conv -> bn -> relu, every step a named submodule."""

    def __init__(self, cin, cout, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class InceptionBlock(nn.Module):
    """Three parallel branches joined by torch.cat on the channel axis (8 + 12 + 4 = 24)."""

    def __init__(self, cin):
        super().__init__()
        self.branch1x1 = ConvBNReLU(cin, 8, kernel_size=1)
        self.branch3x3 = nn.Sequential(ConvBNReLU(cin, 8, kernel_size=1),
                                       ConvBNReLU(8, 12, kernel_size=3, padding=1))
        self.branch_pool = nn.Sequential(nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
                                         ConvBNReLU(cin, 4, kernel_size=1))

    def forward(self, x):
        return torch.cat([self.branch1x1(x), self.branch3x3(x), self.branch_pool(x)], 1)


class ConcatNet(nn.Module):
    """stem -> inception block (concat) -> 1x1 conv over the concat -> pool -> Linear."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = ConvBNReLU(3, 16, kernel_size=3, stride=2, padding=1)
        self.mixed = InceptionBlock(16)
        self.project = ConvBNReLU(24, 32, kernel_size=1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.project(self.mixed(self.stem(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class SENet(nn.Module):
    """Two conv stages, a squeeze-excite block (torchvision's SqueezeExcitation), pool, Linear.

    se: AdaptiveAvgPool2d(1) -> fc1 (1x1 conv) -> ReLU -> fc2 (1x1 conv) -> Sigmoid,
    then multiplied with the block input.
    """

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = ConvBNReLU(3, 16, kernel_size=3, padding=1)
        self.conv = ConvBNReLU(16, 32, kernel_size=3, stride=2, padding=1)
        self.se = SqueezeExcitation(32, 8)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.se(self.conv(self.stem(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class SharedInit(nn.Module):
    """An untrained net whose equal parameters torch's exporter shares behind Identity nodes.

    With BatchNorm kept in the graph, every BN still has its default init (weight=1, bias=0,
    mean=0, var=1), and branch_a/branch_b get identical weights, so torch 1.13's
    initializer deduplication keeps one tensor per value and feeds the other users through
    Identity nodes.
    """

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.branch_a = nn.Conv2d(8, 8, kernel_size=3, padding=1, bias=False)
        self.branch_b = nn.Conv2d(8, 8, kernel_size=3, padding=1, bias=False)
        with torch.no_grad():
            self.branch_b.weight.copy_(self.branch_a.weight)
        self.bn2 = nn.BatchNorm2d(8)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.branch_a(x) + self.branch_b(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# Export options. FOLD_BN is torch's default: constant folding fuses every BatchNorm into
# the Conv before it. BN_KEPT keeps BatchNormalization nodes; with the model in eval mode
# they are exported in inference form (one output, no running-stat updates).
FOLD_BN = {}
BN_KEPT = dict(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)

# name, constructor, input shape, export options
MODELS = [
    ("resnet18", lambda: resnet18(weights=None, num_classes=1000), (1, 3, 224, 224), FOLD_BN),
    ("tiny_resnet", TinyResNet, (1, 3, 32, 32), BN_KEPT),
    ("mobilenet_tiny", MobileNetTiny, (1, 3, 32, 32), FOLD_BN),
    ("concat_net", ConcatNet, (1, 3, 32, 32), FOLD_BN),
    ("se_net", SENet, (1, 3, 32, 32), FOLD_BN),
    ("shared_init", SharedInit, (1, 3, 32, 32), BN_KEPT),
]
# Models left untrained: their default-initialised, equal tensors are the point. All the
# others get trained-like BatchNorms and must have no two equal initializers.
UNTRAINED = {"shared_init"}


# ---------------------------------------------------------------------------------------
# Export and checks
# ---------------------------------------------------------------------------------------

def export(model, x, options):
    buf = io.BytesIO()
    torch.onnx.export(model, (x,), buf, opset_version=OPSET,
                      input_names=["input"], output_names=["output"], **options)
    return buf.getvalue()


def check(name, proto, bn_kept):
    """Check what each model is meant to cover; return a list of problems (empty if none)."""
    g = proto.graph
    ops = collections.Counter(n.op_type for n in g.node)
    problems = []
    if bn_kept:
        if ops["BatchNormalization"] == 0:
            problems.append("BatchNormalization was folded away")
        for n in g.node:
            if n.op_type == "BatchNormalization" and len(n.output) != 1:
                problems.append(f"{n.name} has training outputs {list(n.output)}")
    elif ops["BatchNormalization"]:
        problems.append("BatchNormalization was not folded")
    shared = identity_shared_initializers(g)
    if name in UNTRAINED:
        if not any(len(users) > 1 for _, users in shared.values()):
            problems.append("no initializer is shared through Identity nodes")
    else:
        if shared:
            problems.append(f"unexpected Identity-shared initializers {sorted(shared)}")
        digests = collections.Counter(
            hashlib.sha256(onnx.numpy_helper.to_array(t).tobytes()).hexdigest()
            for t in g.initializer)
        if any(c > 1 for c in digests.values()):
            problems.append("two initializers hold equal values")
    return problems


def main():
    rows = []
    failed = False
    for index, (name, make, shape, options) in enumerate(MODELS):
        # Each model gets its own seeds, so adding or reordering models changes no other.
        torch.manual_seed(SEED + index)
        gen = torch.Generator().manual_seed(SEED + 1000 + index)
        model = make()
        if name not in UNTRAINED:
            randomize_bn(model, gen)
        model.eval()
        x = torch.randn(shape, generator=gen)

        with torch.no_grad():
            y = model(x)
        modules = called_modules(model, x)
        bn_kept = options is BN_KEPT
        data = export(model, x, options)
        assert not model.training, "export must leave the model in eval mode"

        proto = onnx.load_from_string(data)
        onnx.checker.check_model(proto, full_check=True)
        problems = check(name, proto, bn_kept)
        if name != "resnet18" and len(data) >= 1 << 20:
            problems.append(f"{len(data)} bytes, over 1 MB")
        for p in problems:
            print(f"{name}: {p}", file=sys.stderr)
        failed |= bool(problems)

        write_bytes(f"{name}.onnx", data)
        in_name, out_name = proto.graph.input[0].name, proto.graph.output[0].name
        write_bytes(f"{name}/test_data_set_0/input_0.pb", tensor_pb(x.numpy(), in_name))
        write_bytes(f"{name}/test_data_set_0/output_0.pb", tensor_pb(y.numpy(), out_name))
        tree = {"modules": modules, "print": repr(model)}
        write_bytes(f"expected/{name}.modules.json",
                    (json.dumps(tree, indent=2) + "\n").encode())
        if name == "resnet18":
            write_bytes("expected/resnet18.print.txt", (repr(model) + "\n").encode())

        ops = collections.Counter(n.op_type for n in proto.graph.node)
        rows.append((f"{name}.onnx", len(data), len(proto.graph.node),
                     " ".join(f"{op}:{c}" for op, c in sorted(ops.items()))))
        if name in UNTRAINED:
            for ident, (init, users) in identity_shared_initializers(proto.graph).items():
                print(f"  {name}: {ident} shares {init} with {', '.join(users)}")

    width = max(len(r[0]) for r in rows)
    print(f"{'file':<{width}} {'bytes':>9} {'nodes':>5}  ops")
    for f, size, nodes, ops in rows:
        print(f"{f:<{width}} {size:>9} {nodes:>5}  {ops}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
