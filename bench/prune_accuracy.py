#!/usr/bin/python3
"""Accuracy of pruning without retraining: held-out accuracy and output cosine after global
pruning to a MAC target, per importance criterion, beside the unpruned model.

    /usr/bin/python3 bench/prune_accuracy.py [REMODEL] [--ratio-info] [--workdir DIR]

REMODEL defaults to build/src/remodel. For each MAC reduction of 30%, 50% and 70% it runs

    remodel prune testdata/digits/digits.onnx --global --target-macs 0.7|0.5|0.3 -o X --no-verify
        l1:                       (nothing more; l1 is the default criterion)
        bn-scale:                 --criterion bn-scale
        activation:               --criterion activation --calib-inputs testdata/digits/calib
        l1 + reconstruct:         --calib-inputs testdata/digits/calib --reconstruct
        activation + reconstruct: --criterion activation --calib-inputs ... --reconstruct

and evaluates every model in onnxruntime (tests/ort/ort_run.js) on the 300 held-out digits
(testdata/digits/heldout_x.npy, never seen in training or calibration): accuracy against
heldout_y.npy, and output cosine against the unpruned model's outputs (the cosine of each
sample's 10 logits, averaged over the samples). Then on testdata/resnet18.onnx (untrained,
trained-like BatchNorms) at 30% of MACs removed, l1 and activation, each alone and with --reconstruct: output cosine
on 16 seeded random held-out inputs, the activation run calibrated on 32 other seeded random
inputs written in the ONNX test-data layout.

A flag this remodel does not have (it exits 2 and its `prune --help` does not list the flag or
the criterion) gives the cell "n/a (flag not supported)"; no other flag stands in for it.
Any other failure gives "failed (exit N)" with remodel's message below the table, and exit 1.

--ratio-info adds, for information only and labelled so, l1 at `--global --ratio R` (a
fraction of every group's channels, not a MAC target) with the MACs it happens to keep.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnx.numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DIGITS = os.path.join(ROOT, "testdata", "digits")
RESNET18 = os.path.join(ROOT, "testdata", "resnet18.onnx")
ORT_RUN = os.path.join(ROOT, "tests", "ort", "ort_run.js")
NA = "n/a (flag not supported)"
REDUCTIONS = (0.3, 0.5, 0.7)  # fraction of MACs removed; --target-macs is 1 minus it
CRITERIA = [
    ("l1", []),
    ("bn-scale", ["--criterion", "bn-scale"]),
    ("activation", ["--criterion", "activation", "--calib-inputs", "{calib}"]),
    ("l1 + reconstruct", ["--calib-inputs", "{calib}", "--reconstruct"]),
    ("activation + reconstruct", ["--criterion", "activation", "--calib-inputs", "{calib}",
                                  "--reconstruct"]),
]
# resnet18's BatchNorms are folded into its convs: no bn-scale there
RESNET_CRITERIA = [CRITERIA[0], CRITERIA[2], CRITERIA[3], CRITERIA[4]]
RATIOS = (0.1, 0.2, 0.3)
RESNET_CALIB, RESNET_HELDOUT = 32, 16  # random inputs, seeds 1 and 2


class Bench:
    def __init__(self, remodel, work):
        self.remodel = remodel
        self.work = work
        self.notes = []  # footnotes: failures with remodel's message
        self.failed = False
        p = subprocess.run([remodel, "prune", "--help"], capture_output=True, text=True)
        self.help = p.stdout + p.stderr
        m = re.search(r"--criterion\s+([\w|-]+)", self.help)
        self.criteria = m.group(1).split("|") if m else []

    def supported(self, flag):
        if flag.startswith("--"):
            return re.search(re.escape(flag) + r"\b", self.help) is not None
        return flag in self.criteria  # a --criterion value

    def prune(self, model, extra, out):
        """Run remodel prune; return None on success, else the text of the cell."""
        cmd = [self.remodel, "prune", model, "--global", *extra, "-o", out, "--no-verify"]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode == 0:
            return None
        if p.returncode == 2:
            flags = [a for a in extra if a.startswith("--")]
            if "--criterion" in extra:
                flags.append(extra[extra.index("--criterion") + 1])
            if any(not self.supported(f) for f in flags):
                return NA
        self.failed = True
        shown = " ".join(a.replace(self.work, "WORKDIR").replace(ROOT + os.sep, "") for a in cmd[1:])
        self.notes.append(f"[{len(self.notes) + 1}] remodel {shown}: exit {p.returncode}: "
                          f"{p.stderr.strip().splitlines()[-1] if p.stderr.strip() else '(no message)'}")
        return f"failed (exit {p.returncode}) [{len(self.notes)}]"

    def ort(self, model, x_npy, chunk=0):
        """Outputs of model in onnxruntime on the rows of x_npy, or a failure cell text."""
        out = os.path.join(self.work, "ort_out")
        shutil.rmtree(out, ignore_errors=True)
        cmd = ["node", ORT_RUN, model, out] + (["--chunk", str(chunk)] if chunk else []) + [f"input={x_npy}"]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            self.failed = True
            self.notes.append(f"[{len(self.notes) + 1}] onnxruntime on {os.path.basename(model)}: "
                              f"{p.stderr.strip()}")
            return f"ort failed [{len(self.notes)}]"
        return np.load(os.path.join(out, "output_0.npy"))

    def macs(self, model):
        p = subprocess.run([self.remodel, "info", model], capture_output=True, text=True)
        m = re.search(r"^MACs\s+(\d+)", p.stdout, re.M)
        return int(m.group(1)) if m else None


def cosine(a, b):
    """Mean over samples of the cosine between each sample's outputs, and the minimum."""
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    c = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-300)
    return float(c.mean()), float(c.min())


def table(title, header, rows, width=26):
    print(title)
    print(f"{header[0]:<14}" + "".join(f"{h:<{width}}" for h in header[1:]).rstrip())
    for r in rows:
        print(f"{r[0]:<14}" + "".join(f"{c:<{width}}" for c in r[1:]).rstrip())
    print()


def digits(b, ratio_info):
    model = os.path.join(DIGITS, "digits.onnx")
    calib = os.path.join(DIGITS, "calib")
    x_npy = os.path.join(DIGITS, "heldout_x.npy")
    y = np.load(os.path.join(DIGITS, "heldout_y.npy"))
    base = b.ort(model, x_npy)
    if isinstance(base, str):
        print(f"digits: the unpruned model does not run in onnxruntime: {b.notes[-1]}")
        return
    # onnxruntime must reproduce PyTorch's own output on the first held-out batch
    ref = onnx.numpy_helper.to_array(onnx.load_tensor(os.path.join(DIGITS, "test_data_set_0", "output_0.pb")))
    err = float(np.abs(base[:len(ref)] - ref).max())
    if err > 1e-4 * float(np.abs(ref).max()):
        b.failed = True
        print(f"digits: onnxruntime differs from PyTorch's reference output by {err:g}")
    base_acc = float((base.argmax(1) == y).mean())
    base_macs = b.macs(model)
    cell0 = f"{100 * base_acc:.2f}% / 1.0000"

    acc_rows, mac_rows = [], []
    for red in REDUCTIONS:
        keep = round(1 - red, 2)
        acc_row, mac_row = [f"{round(100 * red)}%", cell0], [f"{round(100 * red)}%"]
        for name, extra in CRITERIA:
            out = os.path.join(b.work, f"digits_{name.replace(' ', '')}_{keep}.onnx")
            extra = [a.format(calib=calib) for a in extra]
            cell = b.prune(model, ["--target-macs", str(keep), *extra], out)
            if cell is None:
                got = b.ort(out, x_npy)
                if isinstance(got, str):
                    cell = got
                else:
                    cell = f"{100 * float((got.argmax(1) == y).mean()):.2f}% / {cosine(got, base)[0]:.4f}"
                macs = b.macs(out)
                mac_row.append(f"{100 * macs / base_macs:.1f}%" if macs and base_macs else "?")
            else:
                mac_row.append("-")
            acc_row.append(cell)
        acc_rows.append(acc_row)
        mac_rows.append(mac_row)
    names = [n for n, _ in CRITERIA]
    table(f"digits (testdata/digits/digits.onnx, {base_macs} MACs), onnxruntime on {len(y)} held-out "
          "images: accuracy / output cosine vs unpruned (per image, mean)",
          ["MACs removed", "unpruned", *names], acc_rows)
    table("MACs kept (remodel info, fraction of the unpruned model's)", ["MACs removed", *names], mac_rows)

    if ratio_info:
        rows = []
        for r in RATIOS:
            out = os.path.join(b.work, f"digits_l1_ratio{r}.onnx")
            cell = b.prune(model, ["--ratio", str(r)], out)
            if cell is None:
                got = b.ort(out, x_npy)
                macs = b.macs(out)
                cell = got if isinstance(got, str) else (
                    f"{100 * float((got.argmax(1) == y).mean()):.2f}% / {cosine(got, base)[0]:.4f}")
                rows.append([f"{r}", f"{100 * macs / base_macs:.1f}%" if macs else "?", cell])
            else:
                rows.append([f"{r}", "-", cell])
        table("for information only, not a MAC target: l1 with --global --ratio R (fraction of every "
              "group's channels removed)", ["ratio", "MACs kept", "accuracy / cosine"], rows)


def resnet18(b, ratio_info):
    shape = [d.dim_value for d in onnx.load(RESNET18, load_external_data=False)
             .graph.input[0].type.tensor_type.shape.dim]
    calib = os.path.join(b.work, "resnet18_calib")
    for k, x in enumerate(np.random.default_rng(1).standard_normal((RESNET_CALIB, *shape), dtype=np.float32)):
        os.makedirs(os.path.join(calib, f"test_data_set_{k}"), exist_ok=True)
        t = onnx.numpy_helper.from_array(x, "input")
        with open(os.path.join(calib, f"test_data_set_{k}", "input_0.pb"), "wb") as f:
            f.write(t.SerializeToString())
    x_npy = os.path.join(b.work, "resnet18_heldout.npy")
    np.save(x_npy, np.random.default_rng(2).standard_normal((RESNET_HELDOUT * shape[0], *shape[1:]),
                                                             dtype=np.float32))
    base = b.ort(RESNET18, x_npy, chunk=shape[0])
    if isinstance(base, str):
        print(f"resnet18: the unpruned model does not run in onnxruntime: {b.notes[-1]}")
        return
    row = ["30%"]
    for name, extra in RESNET_CRITERIA:
        out = os.path.join(b.work, f"resnet18_{name.replace(' ', '')}.onnx")
        extra = [a.format(calib=calib) for a in extra]
        cell = b.prune(RESNET18, ["--target-macs", "0.7", *extra], out)
        if cell is None:
            got = b.ort(out, x_npy, chunk=shape[0])
            if isinstance(got, str):
                cell = got
            else:
                mean, low = cosine(got, base)
                cell = f"{mean:.6f} (min {low:.6f})"
        row.append(cell)
    if ratio_info:
        out = os.path.join(b.work, "resnet18_l1_ratio0.3.onnx")
        cell = b.prune(RESNET18, ["--ratio", "0.3"], out)
        if cell is None:
            got = b.ort(out, x_npy, chunk=shape[0])
            cell = got if isinstance(got, str) else "{:.6f} (min {:.6f})".format(*cosine(got, base))
        row.append(cell)
    table(f"resnet18 (testdata/resnet18.onnx), onnxruntime: output cosine vs unpruned, per input, mean "
          f"(and min) over {RESNET_HELDOUT} held-out random inputs (seed 2); calibration: "
          f"{RESNET_CALIB} other random inputs (seed 1)",
          ["MACs removed", *[n for n, _ in RESNET_CRITERIA]]
          + (["info only: l1 --ratio 0.3"] if ratio_info else []), [row])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("remodel", nargs="?", default=os.path.join(ROOT, "build", "src", "remodel"))
    ap.add_argument("--ratio-info", action="store_true",
                    help="also show l1 at --global --ratio R, labelled as not a MAC target")
    ap.add_argument("--workdir", help="keep the pruned models and inputs here (default: a temporary folder)")
    args = ap.parse_args()
    if not os.access(args.remodel, os.X_OK):
        print(f"prune_accuracy: {args.remodel}: not an executable (build remodel first)", file=sys.stderr)
        return 2
    work = args.workdir or tempfile.mkdtemp(prefix="prune_accuracy.")
    os.makedirs(work, exist_ok=True)
    try:
        b = Bench(args.remodel, work)
        digits(b, args.ratio_info)
        resnet18(b, args.ratio_info)
        for n in b.notes:
            print(n)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if b.failed else 0


if __name__ == "__main__":
    sys.exit(main())
