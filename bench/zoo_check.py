#!/usr/bin/python3
"""Check the engine against PyTorch on the torchvision classification CNNs the issue names.

Needs Debian's python3-torch, python3-torchvision, python3-onnx (use /usr/bin/python3):

    /usr/bin/python3 bench/zoo_check.py [REMODEL] [WORKDIR] [MODEL...]

For each model (untrained, weights=None, BatchNorm statistics randomised like a trained
net, seed 0) it exports two ONNX files, BN folded (default export) and BN kept
(do_constant_folding=False), computes PyTorch's output on one seeded 1x3x224x224 input,
then runs `remodel run` on both files with and without fusion and prints
max|remodel - torch| / max|torch|. Exit 1 if any is above 1e-4 or fails to run.
Expected numbers come from PyTorch only. Exports are cached in WORKDIR
(default /tmp/remodel-zoo).
"""
import os
import subprocess
import sys

import numpy as np
import onnx
import torch
import torchvision
from onnx import numpy_helper

here = os.path.dirname(os.path.abspath(__file__))
remodel = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "build", "src", "remodel")
work = sys.argv[2] if len(sys.argv) > 2 else "/tmp/remodel-zoo"
names = sys.argv[3:] or ["resnet18", "resnet50", "mobilenet_v2", "densenet121", "googlenet",
                         "efficientnet_b0", "regnet_y_400mf", "shufflenet_v2_x1_0", "squeezenet1_0",
                         "mnasnet1_0", "mobilenet_v3_small", "convnext_tiny", "vit_b_16"]
os.makedirs(work, exist_ok=True)
torch.set_num_threads(1)
worst, failed = 0.0, False
for name in names:
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    ref_path = os.path.join(d, "output_0.pb")
    if not os.path.exists(ref_path):
        torch.manual_seed(0)
        kw = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
        m = getattr(torchvision.models, name)(weights=None, **kw).eval()
        if name.startswith("vit"):  # torchvision zeroes the head: every output would be 0
            torch.nn.init.normal_(m.heads.head.weight, std=0.02)
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.data.uniform_(0.5, 1.5)
                mod.bias.data.uniform_(-0.2, 0.2)
        x = torch.randn(1, 3, 224, 224)
        with torch.no_grad():
            y = m(x)
        for fold in (True, False):
            torch.onnx.export(m, x, os.path.join(d, "folded.onnx" if fold else "bn.onnx"), opset_version=13,
                              input_names=["input"], output_names=["output"], do_constant_folding=fold,
                              training=torch.onnx.TrainingMode.EVAL if fold else torch.onnx.TrainingMode.PRESERVE)
        onnx.save_tensor(numpy_helper.from_array(x.numpy(), "input"), os.path.join(d, "input_0.pb"))
        onnx.save_tensor(numpy_helper.from_array(y.numpy(), "output"), ref_path)
    ref = numpy_helper.to_array(onnx.load_tensor(ref_path))
    for variant in ("folded", "bn"):
        for fuse in ([], ["--no-fuse"]):
            out = os.path.join(d, "out")
            r = subprocess.run([remodel, "run", os.path.join(d, variant + ".onnx"), "-i",
                                "input=" + os.path.join(d, "input_0.pb"), "-o", out] + fuse,
                               capture_output=True, text=True)
            label = "%-20s %-6s %-9s" % (name, variant, "no-fuse" if fuse else "fuse")
            if r.returncode != 0:
                print(label, "FAILED:", r.stderr.strip())
                failed = True
                continue
            got = numpy_helper.to_array(onnx.load_tensor(os.path.join(out, "output_0.pb")))
            err = float(np.abs(got - ref).max() / np.abs(ref).max())
            worst = max(worst, err)
            print(label, "max|err|/max|ref| = %.3g" % err)
            failed |= not err <= 1e-4
print("worst %.3g: %s" % (worst, "FAIL" if failed else "ok (<= 1e-4)"))
sys.exit(1 if failed else 0)
