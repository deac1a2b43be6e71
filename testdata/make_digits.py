#!/usr/bin/python3
"""Train and export the digits model: a small trained CNN for pruning-accuracy benchmarks.

Run with Debian's Python (python3-torch, python3-torchvision, python3-onnx, python3-sklearn):

    /usr/bin/python3 testdata/make_digits.py

The data are scikit-learn's bundled `load_digits` (1797 greyscale 8x8 images, values 0..16,
ten classes). Every image is scaled to [0, 1], upsampled to 32x32 (bilinear,
align_corners=False) and normalised by the mean and standard deviation of the training
pixels. One channel: the images are greyscale, and three equal channels would only triple
the stem conv's weights without adding information.

A fixed stratified split keeps 30 images of each class (300) out of training; the rest (1497)
train the model. Written to testdata/digits/:

    digits.onnx                          the trained model (opset 13, BatchNormalization kept)
    digits.json                          split, normalisation, training recipe, accuracies
    heldout_x.npy, heldout_y.npy         the held-out split: float32 [300,1,32,32] normalised
                                         as the model expects, int64 [300] labels
    test_data_set_0/input_0.pb           the first held-out batch (16 images) and PyTorch's
    test_data_set_0/output_0.pb          output on it (onnx.TensorProto, ONNX test-data layout)
    calib/test_data_set_<k>/input_0.pb   calibration inputs, k = 0..63: 64 training images
                                         (not held out), one per set (batch 1)

Every number comes from PyTorch. The script is deterministic (fixed seeds, one thread,
deterministic algorithms): two runs on one machine give byte-identical files. The held-out
split is kept small because the folder is checked in: 300 images at 32x32 float32 are 1.2 MB.
"""

import collections
import hashlib
import io
import json
import os
import re
import shutil
import sys
import time
import warnings

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torchvision.models.resnet import BasicBlock

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "digits")
OPSET = 13
SEED = 20240116
SIZE = 32                 # side of the upsampled images
HELDOUT_PER_CLASS = 30    # 300 held-out images
CALIB = 64                # calibration images from the training split, one per set
REF_BATCH = 16            # the first held-out batch, stored with PyTorch's output
EPOCHS = 30
BATCH = 32
LR = 0.05
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
SHIFT = 2                 # training augmentation: random translation by up to 2 pixels
MAX_BYTES = 2_000_000     # the whole digits/ folder
SHARED_BIASES = [(f"layer{i}.0.bn2.bias", f"layer{i}.0.downsample.1.bias") for i in (2, 3)]

# Exporting in eval mode with TrainingMode.PRESERVE makes torch warn that the model is
# exported in inference mode; that is what we want (BatchNormalization with one output).
warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")

torch.set_num_threads(1)  # float sums in the same order on every run
torch.use_deterministic_algorithms(True)


class DigitsResNet(nn.Module):
    """A CIFAR-style ResNet-8: stem conv, three stages of one torchvision BasicBlock each
    (16, 32, 64 channels; stride 2 with a 1x1 conv + BN downsample between stages), global
    average pool, Linear. Module names follow torchvision's resnet (conv1, layer2.0.downsample.0).
    """

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(BasicBlock(16, 16))
        self.layer2 = nn.Sequential(BasicBlock(16, 32, stride=2, downsample=self.downsample(16, 32)))
        self.layer3 = nn.Sequential(BasicBlock(32, 64, stride=2, downsample=self.downsample(32, 64)))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)

    @staticmethod
    def downsample(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, kernel_size=1, stride=2, bias=False),
                             nn.BatchNorm2d(cout))

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def write_bytes(rel, data):
    """Write a file atomically under testdata/digits/, creating its folder."""
    full = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    tmp = full + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, full)


def npy_bytes(array):
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def tensor_pb(array, name):
    return onnx.numpy_helper.from_array(np.ascontiguousarray(array), name).SerializeToString()


def split(labels):
    """Stratified split: HELDOUT_PER_CLASS images of each class held out, seeded."""
    rng = np.random.default_rng(SEED)
    held = []
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        held.extend(rng.permutation(idx)[:HELDOUT_PER_CLASS].tolist())
    held = np.array(sorted(held))
    train = np.setdiff1d(np.arange(len(labels)), held)
    # held-out in a seeded order, so the first batch mixes the classes
    return train, held[rng.permutation(len(held))]


def upsample(images):
    """[N,8,8] values 0..16 -> [N,1,32,32] float32 in [0,1], bilinear."""
    x = torch.from_numpy(images.astype(np.float32) / 16.0).unsqueeze(1)
    return F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)


def shift(x, gen, background):
    """Translate each image by a random (dy, dx) in [-SHIFT, SHIFT], filling with background."""
    n = x.shape[0]
    pad = F.pad(x, (SHIFT,) * 4, value=background)
    d = torch.randint(0, 2 * SHIFT + 1, (n, 2), generator=gen)
    return torch.stack([pad[i, :, d[i, 0]:d[i, 0] + SIZE, d[i, 1]:d[i, 1] + SIZE] for i in range(n)])


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def train(model, x, y, gen, background):
    steps = EPOCHS * ((len(x) + BATCH - 1) // BATCH)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True,
                          weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps)
    for epoch in range(EPOCHS):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), BATCH):
            b = order[i:i + BATCH]
            loss = F.cross_entropy(model(shift(x[b], gen, background)), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss) * len(b)
        print(f"epoch {epoch + 1:2d}/{EPOCHS}  loss {total / len(x):.4f}", file=sys.stderr)


def export(model, x):
    buf = io.BytesIO()
    torch.onnx.export(model, (x,), buf, opset_version=OPSET,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "N"}, "output": {0: "N"}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    return buf.getvalue()


def check(proto):
    """What the benchmarks rely on; return a list of problems (empty if none)."""
    g = proto.graph
    ops = collections.Counter(n.op_type for n in g.node)
    problems = []
    if ops["BatchNormalization"] != 9:
        problems.append(f"{ops['BatchNormalization']} BatchNormalization nodes, expected 9")
    for n in g.node:
        if n.op_type == "BatchNormalization" and len(n.output) != 1:
            problems.append(f"{n.name} has training outputs {list(n.output)}")
    # bn2 and downsample.1 of a block feed one Add, so their biases get the same gradient
    # from the same zero init and stay equal: torch keeps one and feeds the other through an
    # Identity node. Any other sharing would be a surprise.
    shared = sorted((n.input[0], n.output[0]) for n in g.node if n.op_type == "Identity")
    if shared != SHARED_BIASES:
        problems.append(f"initializers shared through Identity nodes: {shared}, expected {SHARED_BIASES}")
    digests = collections.Counter(hashlib.sha256(onnx.numpy_helper.to_array(t).tobytes()).hexdigest()
                                  for t in g.initializer)
    if any(c > 1 for c in digests.values()):
        problems.append("two initializers hold equal values")
    dims = [d.dim_param or d.dim_value for d in g.input[0].type.tensor_type.shape.dim]
    if (g.input[0].name, dims) != ("input", ["N", 1, SIZE, SIZE]):
        problems.append(f"input {g.input[0].name} {dims}, expected input [N, 1, {SIZE}, {SIZE}]")
    return problems


def main():
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED + 1)
    digits = load_digits()
    labels = digits.target.astype(np.int64)
    train_idx, held_idx = split(labels)

    x_all = upsample(digits.images)
    mean = float(x_all[train_idx].mean())
    std = float(x_all[train_idx].std())
    x_all = ((x_all - mean) / std).contiguous()
    y_all = torch.from_numpy(labels)
    x_train, y_train = x_all[train_idx], y_all[train_idx]
    x_held, y_held = x_all[held_idx], y_all[held_idx]

    model = DigitsResNet()
    t0 = time.monotonic()
    train(model, x_train, y_train, gen, -mean / std)
    seconds = time.monotonic() - t0
    model.eval()
    train_acc = accuracy(model, x_train, y_train)
    held_acc = accuracy(model, x_held, y_held)

    ref_x = x_held[:REF_BATCH]
    with torch.no_grad():
        ref_y = model(ref_x)
    data = export(model, ref_x)
    assert not model.training, "export must leave the model in eval mode"
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto, full_check=True)
    problems = check(proto)

    calib_idx = train_idx[torch.randperm(len(train_idx), generator=gen)[:CALIB].numpy()]
    if os.path.isdir(os.path.join(OUT, "calib")):
        shutil.rmtree(os.path.join(OUT, "calib"))
    for k, i in enumerate(calib_idx):
        write_bytes(f"calib/test_data_set_{k}/input_0.pb", tensor_pb(x_all[i:i + 1].numpy(), "input"))

    write_bytes("digits.onnx", data)
    write_bytes("heldout_x.npy", npy_bytes(x_held.numpy()))
    write_bytes("heldout_y.npy", npy_bytes(y_held.numpy()))
    write_bytes("test_data_set_0/input_0.pb", tensor_pb(ref_x.numpy(), "input"))
    write_bytes("test_data_set_0/output_0.pb", tensor_pb(ref_y.numpy(), "output"))
    info = {
        "model": "digits.onnx",
        "architecture": "DigitsResNet (testdata/make_digits.py): conv3x3(1->16)+BN+ReLU, "
                        "3 stages of one torchvision BasicBlock (16, 32, 64 channels, stride 1/2/2, "
                        "1x1 conv+BN downsample), global average pool, Linear(64, 10)",
        "data": "sklearn.datasets.load_digits: 8x8 greyscale, values 0..16",
        "preprocess": {"scale": 1 / 16, "resize": [SIZE, SIZE], "resize_mode": "bilinear, align_corners=False",
                       "mean": mean, "std": std, "channels": 1},
        "split": {"train": len(train_idx), "heldout": len(held_idx),
                  "heldout_per_class": HELDOUT_PER_CLASS, "seed": SEED},
        "heldout_indices": held_idx.tolist(),
        "calib": {"dir": "calib", "sets": CALIB, "batch": 1, "from": "training split",
                  "indices": calib_idx.tolist()},
        "training": {"epochs": EPOCHS, "batch": BATCH, "optimizer": "SGD nesterov",
                     "momentum": MOMENTUM, "weight_decay": WEIGHT_DECAY,
                     "lr_schedule": f"OneCycleLR max_lr {LR}",
                     "augmentation": f"random translation up to {SHIFT} pixels at {SIZE}x{SIZE}",
                     "torch": torch.__version__},
        "accuracy": {"train": round(train_acc, 6), "heldout": round(held_acc, 6),
                     "heldout_correct": int(round(held_acc * len(held_idx)))},
        "trainable_params": sum(p.numel() for p in model.parameters()),
    }
    text = json.dumps(info, indent=2)
    text = re.sub(r"\[\s*(\d[\d,\s]*?)\s*\]", lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text)
    write_bytes("digits.json", (text + "\n").encode())

    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    if total >= MAX_BYTES:
        problems.append(f"testdata/digits/ holds {total} bytes, over {MAX_BYTES}")
    if held_acc < 0.97:
        problems.append(f"held-out accuracy {held_acc:.4f} is under 0.97")
    for p in problems:
        print(f"make_digits: {p}", file=sys.stderr)
    print(f"trained {EPOCHS} epochs in {seconds:.0f} s; accuracy train {train_acc:.4f}, "
          f"held-out {held_acc:.4f} ({info['accuracy']['heldout_correct']}/{len(held_idx)}); "
          f"digits.onnx {len(data)} bytes, folder {total} bytes")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
