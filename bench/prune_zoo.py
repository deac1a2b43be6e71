#!/usr/bin/python3
"""Global pruning at ratio 0.3 on the torchvision classification families (and ConvNeXt-Tiny,
ViT-B/16, whose MLPs prune on the last axis).

For each model exported by bench/zoo_check.py (untrained, BatchNorm statistics randomised;
BN folded = folded.onnx and BN kept = bn.onnx, cached in WORKDIR), runs

    remodel prune MODEL --global --ratio 0.3 -o pruned.onnx

then `remodel run` on the result and onnx's checker (full_check) on it, and prints the
groups pruned, parameters and MACs before -> after. A model of which nothing can be pruned
(exit 1, nothing written) is listed with remodel's reason and is not a failure. Exports missing from WORKDIR are made by
running bench/zoo_check.py first (which also checks the engine against PyTorch).

    /usr/bin/python3 bench/prune_zoo.py [REMODEL] [WORKDIR] [MODEL...]
"""
import os
import re
import subprocess
import sys

import onnx

here = os.path.dirname(os.path.abspath(__file__))
remodel = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "build", "src", "remodel")
work = sys.argv[2] if len(sys.argv) > 2 else "/tmp/remodel-zoo"
names = sys.argv[3:] or ["resnet18", "resnet50", "mobilenet_v2", "densenet121", "googlenet",
                         "efficientnet_b0", "regnet_y_400mf", "shufflenet_v2_x1_0", "squeezenet1_0",
                         "mnasnet1_0", "convnext_tiny", "vit_b_16"]
failed = False
print(f"{'model':20s} {'file':7s} {'groups':>11s} {'params before -> after':>28s} {'MACs before -> after':>34s}  result")
for name in names:
    d = os.path.join(work, name)
    if not os.path.exists(os.path.join(d, "folded.onnx")):
        subprocess.run([sys.executable, os.path.join(here, "zoo_check.py"), remodel, work, name],
                       stdout=subprocess.DEVNULL)
    for kind in ("folded", "bn"):
        src = os.path.join(d, kind + ".onnx")
        out = os.path.join(d, kind + ".pruned.onnx")
        p = subprocess.run([remodel, "prune", src, "--global", "--ratio", "0.3", "-o", out],
                           capture_output=True, text=True)
        if p.returncode == 1:  # a refusal, not a failure: nothing in the model could be followed
            print(f"{name:20s} {kind:7s} nothing pruned: {p.stderr.strip()}")
            continue
        if p.returncode != 0:
            print(f"{name:20s} {kind:7s} prune failed: {p.stderr.strip()}")
            failed = True
            continue
        pruned = len(re.findall(r"^\S+\s+\d+ -> \d+", p.stdout, re.M))
        groups = len(re.findall(r"^\S+\s+\d+ (->|   unprunable)", p.stdout, re.M))
        m = re.search(r"params (\d+) -> (\d+) \(([\d.]+)%\), MACs (\d+) -> (\d+) \(([\d.]+)%\)", p.stdout)
        r = subprocess.run([remodel, "run", out], capture_output=True, text=True)
        try:
            onnx.checker.check_model(out, full_check=True)
            checker = "checker ok"
        except Exception as e:  # noqa: BLE001 - print why and go on
            checker = f"checker FAILED: {e}"
            failed = True
        ran = "runs" if r.returncode == 0 else f"run FAILED: {r.stderr.strip()}"
        failed |= r.returncode != 0
        print(f"{name:20s} {kind:7s} {pruned:>4d} of {groups:<4d} "
              f"{m.group(1):>11s} -> {m.group(2):>9s} ({m.group(3):>5s}%) "
              f"{m.group(4):>13s} -> {m.group(5):>11s} ({m.group(6):>5s}%)  {ran}, {checker}")
sys.exit(1 if failed else 0)
