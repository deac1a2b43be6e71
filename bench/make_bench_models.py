#!/usr/bin/python3
"""Export the benchmark models into a cache folder (Debian's python3-torch, python3-torchvision,
python3-onnx; run with /usr/bin/python3). Nothing is downloaded: untrained torchvision models
(weights=None, seed 0) with BatchNorm statistics randomised like a trained network's.

    /usr/bin/python3 bench/make_bench_models.py CACHE [--vgg]

Writes, for each of the twelve exports bench/engine.sh measures, CACHE/<name>.onnx (opset 13,
1x3x224x224, batch 1) together with CACHE/<name>.input.npy (one seeded input) and
CACHE/<name>.torch.npy (PyTorch's output on it, for checking):

    resnet18 resnet50 mobilenet_v2 squeezenet1_0 densenet121 googlenet efficientnet_b0
    shufflenet_v2_x1_0 mnasnet0_5 regnet_y_400mf   default export (BatchNorm folded)
    resnet18-bn mobilenet_v2-bn                     BatchNormalization kept
                                                    (do_constant_folding=False, PRESERVE)

With --vgg also CACHE/vgg16.onnx, torchvision's VGG16 (553 MB, the size-scaling table's
model). A file already in CACHE is kept, so a second run costs nothing.
"""
import os
import sys
import warnings

import numpy as np
import torch
import torchvision

warnings.filterwarnings("ignore")
FOLDED = ["resnet18", "resnet50", "mobilenet_v2", "squeezenet1_0", "densenet121", "googlenet",
          "efficientnet_b0", "shufflenet_v2_x1_0", "mnasnet0_5", "regnet_y_400mf"]
BN_KEPT = ["resnet18", "mobilenet_v2"]


def build(name):
    torch.manual_seed(0)
    kw = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    m = getattr(torchvision.models, name)(weights=None, **kw).eval()
    g = torch.Generator().manual_seed(1)
    for mod in m.modules():
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
            c = mod.num_features
            with torch.no_grad():
                mod.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                mod.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                mod.weight.copy_(torch.rand(c, generator=g) + 0.5)
                mod.bias.copy_(torch.randn(c, generator=g) * 0.1)
    return m


def export(name, out, keep_bn):
    m = build(name)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y = m(x)
    base = out[:-len(".onnx")]
    torch.onnx.export(m, x, out + ".tmp", opset_version=13, input_names=["input"], output_names=["output"],
                      do_constant_folding=not keep_bn,
                      training=torch.onnx.TrainingMode.PRESERVE if keep_bn else torch.onnx.TrainingMode.EVAL)
    np.save(base + ".input.npy", x.numpy())
    np.save(base + ".torch.npy", y.numpy())
    os.replace(out + ".tmp", out)


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: make_bench_models.py CACHE [--vgg]")
    cache = sys.argv[1]
    os.makedirs(cache, exist_ok=True)
    torch.set_num_threads(1)
    jobs = [(n, False) for n in FOLDED] + [(n, True) for n in BN_KEPT]
    if "--vgg" in sys.argv[2:]:
        jobs.append(("vgg16", False))
    for name, keep_bn in jobs:
        out = os.path.join(cache, name + ("-bn" if keep_bn else "") + ".onnx")
        if os.path.exists(out):
            continue
        print("exporting", os.path.basename(out), file=sys.stderr)
        export(name, out, keep_bn)


if __name__ == "__main__":
    main()
