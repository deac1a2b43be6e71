#!/usr/bin/python3
"""Audit the module tree on every torchvision CNN: no class claimed that PyTorch disagrees with.

    /usr/bin/python3 testdata/trees/audit_torchvision.py build/src/remodel [--only REGEX]

For every classification and segmentation model torchvision 0.14 builds (untrained,
weights=None, nothing downloaded) except the transformers (vit, swin, maxvit: not CNNs) and
models of more than MAX_PARAMS parameters, it exports the module with torch.onnx.export
(TorchScript, opset 13, default options: BatchNorms folded), runs `remodel show --json` on
the export (weights stripped: the tree needs only dims) and checks, against the module's
own named_modules():

- every module the tree shows is one PyTorch called in that forward pass (forward hooks),
  or a module of named_modules() only its children's paths imply (a ModuleList) for which
  the tree claims no class;
- a module the tree gives a type (type_known) has PyTorch's class: its exact name, or
  "Sequential" for an nn.Sequential subclass (Conv2dNormActivation prints as its class);
- every Conv2d PyTorch calls is a Conv2d leaf of the tree at its path.

It prints one line per model (containers named / unknown, leaves typed / unknown) and every
disagreement, and exits 1 when there is one. Writes nothing but temporary files. Takes
about ten minutes on two cores.
"""

import argparse
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import warnings

import onnx
import torch
import torch.nn as nn
import torchvision.models as tvm
import torchvision.models.segmentation as tvseg

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import make_models as mm  # noqa: E402  (called_module_ids)

MAX_PARAMS = 100_000_000
SKIP = re.compile(r"^(vit_|swin_|maxvit)")

warnings.filterwarnings("ignore")
torch.set_num_threads(1)


def models():
    for name in tvm.list_models(module=tvm):
        if SKIP.match(name):
            continue
        kw = {}
        if name in ("googlenet", "inception_v3"):
            kw = dict(aux_logits=False, init_weights=False)
        # AdaptiveAvgPool2d((6/7, 6/7)) exports only where the size divides the input
        size = 224 if name.startswith(("alexnet", "vgg")) else 96
        yield name, (lambda n=name, k=kw: tvm.get_model(n, weights=None, **k)), size
    for name in tvm.list_models(module=tvseg):
        kw = dict(weights=None, weights_backbone=None)
        if name != "lraspp_mobilenet_v3_large":
            kw["aux_loss"] = False
        yield name, (lambda n=name, k=kw: getattr(tvseg, n)(**k)), 96


def strip(proto):
    for t in proto.graph.initializer:
        if len(t.dims) and int(torch.tensor(list(t.dims)).prod()) > 64:
            for field in ("raw_data", "float_data", "int64_data"):
                t.ClearField(field)


def walk(m, out):
    out.append(m)
    for c in m["children"]:
        walk(c, out)


def audit(exe, name, make, size):
    torch.manual_seed(0)
    model = make().eval()
    n_params = sum(p.numel() for p in model.parameters())
    if n_params > MAX_PARAMS:
        return None, [f"skipped: {n_params / 1e6:.0f} M parameters"]
    x = torch.randn(1, 3, size, size)
    called = mm.called_module_ids(model, x)
    mods = {p: m for p, m in model.named_modules() if id(m) in called}
    every = dict(model.named_modules())
    buf = io.BytesIO()
    try:
        torch.onnx.export(model, (x,), buf, opset_version=13)
    except Exception as e:  # an exporter refusal is torch's, not the tree's
        return None, [f"export failed: {type(e).__name__}"]
    proto = onnx.load_from_string(buf.getvalue())
    del buf
    strip(proto)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.onnx")
        onnx.save(proto, path)
        r = subprocess.run([exe, "show", path, "--json"], capture_output=True, text=True)
    if r.returncode:
        return None, [f"show failed: {r.stderr.strip()}"]
    tree = []
    walk(json.loads(r.stdout)["module"], tree)
    problems = []
    stats = dict(named=0, unknown=0, typed_leaves=0, unknown_leaves=0)
    for t in tree:
        p = t["path"]
        container = bool(t["children"])
        key = ("named" if t["type_known"] else "unknown") if container else \
            ("typed_leaves" if t["type_known"] else "unknown_leaves")
        stats[key] += 1
        if p not in mods:
            # a container only its children's paths imply (a ModuleList never runs) is
            # fine as long as the tree claims no class for it
            if p not in every or t["type_known"]:
                problems.append(f"{p}: not a module PyTorch called ({t['type']})")
            continue
        m = mods[p]
        cls = type(m).__name__
        if t["type_known"] and t["type"] != cls and \
                not (t["type"] == "Sequential" and isinstance(m, nn.Sequential)):
            problems.append(f"{p}: tree says {t['type']}, PyTorch {cls}")
    by_path = {t["path"]: t for t in tree}
    for p, m in mods.items():
        if type(m) is nn.Conv2d:
            t = by_path.get(p)
            if not t or t["type"] != "Conv2d" or t["children"]:
                problems.append(f"{p}: Conv2d not a Conv2d leaf of the tree")
    return stats, problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("remodel")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    bad = 0
    for name, make, size in models():
        if args.only and not re.search(args.only, name):
            continue
        stats, problems = audit(args.remodel, name, make, size)
        if stats is None:
            print(f"{name:<36} {problems[0]}")
            continue
        print(f"{name:<36} containers {stats['named']:>4} named {stats['unknown']:>4} unknown, "
              f"leaves {stats['typed_leaves']:>4} typed {stats['unknown_leaves']:>3} unknown"
              f"{'' if not problems else f', {len(problems)} PROBLEMS'}", flush=True)
        for p in problems:
            print(f"    {p}")
        bad += bool(problems)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
