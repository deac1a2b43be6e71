#!/usr/bin/python3
"""Input sizes and verification at the command line: dynamic dimensions never taken as 1
silently, --input-shape on every command that infers sizes, diff's scale-aware verdict,
samples saved and replayed, input sets read from folders. Expected figures come from
onnxruntime (tests/ort/ort_run.js) and numpy, never from remodel.

usage: test_verify.py REMODEL TESTDATA_DIR
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

REMODEL, TESTDATA = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])

from rmtest import Suite  # noqa: E402

T = Suite()
case = T.case


def run(*args):
    return T.run(REMODEL, *args, timeout=600)
ORT_RUN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ort", "ort_run.js")
CORPUS = os.path.join(TESTDATA, "corpus", "models")
WORK = tempfile.mkdtemp(prefix="rm_verify_")

def work(name):
    d = os.path.join(WORK, name)
    os.makedirs(d, exist_ok=True)
    return d


def ort(path, inputs):
    """onnxruntime's outputs of path on inputs (name -> array), as a list."""
    d = tempfile.mkdtemp(dir=WORK)
    feeds = []
    for name, x in inputs.items():
        f = os.path.join(d, f"in_{len(feeds)}.npy")
        np.save(f, x)
        feeds.append(f"{name}={f}")
    p = subprocess.run(["node", ORT_RUN, path, d, *feeds], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"onnxruntime: {p.stderr.strip()}"
    outs = sorted(f for f in os.listdir(d) if f.startswith("output_"))
    return [np.load(os.path.join(d, f)) for f in sorted(outs, key=lambda f: int(f[7:-4]))]


def run_outputs(path, *args):
    """remodel run's outputs (written with -o) as arrays."""
    d = tempfile.mkdtemp(dir=WORK)
    rc, out, err = run("run", path, "-o", d, *args)
    assert rc == 0, err
    files = sorted((f for f in os.listdir(d) if f.startswith("output_")), key=lambda f: int(f[7:-3]))
    return [numpy_helper.to_array(onnx.load_tensor(os.path.join(d, f))) for f in files]


def close(a, b, what):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, f"{what}: shapes {a.shape} and {b.shape}"
    scale = max(float(np.abs(b).max()), 1e-30)
    e = float(np.abs(a - b).max()) / scale
    assert e <= 1e-4, f"{what}: differ by {e:.3g} of the output scale"


def one_error(rc, err, *needles):
    assert rc == 2, f"exit {rc}: {err}"
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"


UNET = os.path.join(CORPUS, "unet-op13-dynbhw.onnx")       # input [batch, 3, height, width]
UNET_STATIC = os.path.join(CORPUS, "unet-op13-folded.onnx")  # the same net at [1, 3, 64, 64]
FPN = os.path.join(CORPUS, "fpn-op13-dynbhw.onnx")


@case("run: dynamic height and width are never taken as 1; -i files and --input-shape give them")
def _():
    rc, out, err = run("run", UNET)
    one_error(rc, err, "input 'input'", "height, width are not known", "--input-shape")
    x = np.random.default_rng(0).standard_normal((1, 3, 48, 80)).astype(np.float32)
    f = os.path.join(work("run"), "x.npy")
    np.save(f, x)
    for args in (["-i", f"input={f}"], ["--input-shape", "input=1,3,48,80", "-i", f"input={f}"]):
        got = run_outputs(UNET, *args)
        close(got[0], ort(UNET, {"input": x})[0], f"run {' '.join(args[:2])}")
    # a dynamic batch alone is 1, said on stderr
    rc, out, err = run("run", os.path.join(CORPUS, "unet-op13-dynb.onnx"))
    assert rc == 0 and "dynamic batch dimension is taken as 1" in err, (rc, err)
    # sizes the model declares must agree
    one_error(*run("run", UNET_STATIC, "--input-shape", "input=1,3,32,32")[::2], "dimension 2 is declared 64")
    one_error(*run("run", UNET, "--input-shape", "input=1,3,0,4")[::2], "bad --input-shape")
    one_error(*run("run", UNET, "--input-shape", "nosuch=1,3,4,4")[::2], "no input named 'nosuch'")


@case("info: MACs unknown (null) for dynamic sizes, the static model's figure with --input-shape")
def _():
    rc, out, err = run("info", UNET, "--json")
    assert rc == 0 and json.loads(out)["macs"] is None, out
    rc, out, _ = run("info", UNET, "--input-shape", "input=1,3,64,64", "--json")
    rc2, out2, _ = run("info", UNET_STATIC, "--json")
    assert json.loads(out)["macs"] == json.loads(out2)["macs"] > 0, (out, out2)


@case("diff: -i files give the dynamic sizes (it used to refuse what run takes)")
def _():
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 96)).astype(np.float32)
    f = os.path.join(work("diffi"), "x.npy")
    np.save(f, x)
    rc, out, err = run("diff", UNET, UNET, "-i", f"input={f}", "--json")
    assert rc == 0 and json.loads(out)["outputs"][0]["shape"] == [2, 3, 64, 96], (rc, err, out[:200])
    rc, out, err = run("diff", UNET, UNET)
    one_error(rc, err, "height, width are not known")


@case("prune on dynamic-size exports with --input-shape: the output stays dynamic; onnxruntime runs it")
def _():
    d = work("edit")
    for model in (UNET, FPN):
        out = os.path.join(d, os.path.basename(model))
        rc, _, err = run("prune", model, "--global", "--ratio", "0.3", "-o", out)
        one_error(rc, err, "are not known")
        assert not os.path.exists(out)
        rc, text, err = run("prune", model, "--global", "--ratio", "0.3", "--input-shape", "input=1,3,64,64",
                            "-o", out)
        assert rc == 0, err
        assert "verify: 4 samples (seeds 0..3), input [1, 3, 64, 64]" in text, text
        w = onnx.load(out)
        dims = [x.dim_param or x.dim_value for x in w.graph.input[0].type.tensor_type.shape.dim]
        assert dims == ["batch", 3, "height", "width"], dims  # the written model stays dynamic
        x = np.random.default_rng(2).standard_normal((1, 3, 80, 48)).astype(np.float32)
        f = os.path.join(d, "x.npy")
        np.save(f, x)
        close(run_outputs(out, "-i", f"input={f}")[0], ort(out, {"input": x})[0], f"pruned {model}")


@case("save --input-shape rewrites the declaration; onnx's checker and onnxruntime take the result")
def _():
    out = os.path.join(work("save"), "fixed.onnx")
    rc, _, err = run("save", UNET, "--input-shape", "input=2,3,32,48", "-o", out)
    assert rc == 0, err
    m = onnx.load(out)
    onnx.checker.check_model(m, full_check=True)
    assert [x.dim_value for x in m.graph.input[0].type.tensor_type.shape.dim] == [2, 3, 32, 48]
    x = np.random.default_rng(3).standard_normal((2, 3, 32, 48)).astype(np.float32)
    f = os.path.join(work("save"), "x.npy")
    np.save(f, x)
    rc, _, err = run("run", out)  # no sizes to give any more
    assert rc == 0 and "dynamic" not in err, err
    close(run_outputs(out, "-i", f"input={f}")[0], ort(out, {"input": x})[0], "saved with fixed sizes")


def small_output_pair():
    """tiny_resnet with its output scaled to about 1e-9, and a copy computing something
    else (its first conv negated)."""
    d = work("small")
    m = onnx.load(os.path.join(TESTDATA, "tiny_resnet.onnx"))
    for t in m.graph.initializer:
        if t.name in ("fc.weight", "fc.bias"):
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) * np.float32(1e-9), t.name))
    a = os.path.join(d, "a.onnx")
    onnx.save(m, a)
    for t in m.graph.initializer:
        if t.name == "layer1.0.conv1.weight":
            t.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(t), t.name))
    b = os.path.join(d, "b.onnx")
    onnx.save(m, b)
    return a, b


@case("diff: outputs about 1e-9 that disagree FAIL by default; only an explicit loose tolerance passes them")
def _():
    a, b = small_output_pair()
    x = np.random.default_rng(4).standard_normal((1, 3, 32, 32)).astype(np.float32)
    f = os.path.join(WORK, "small.npy")
    np.save(f, x)
    ya, yb = ort(a, {"input": x})[0].astype(np.float64), ort(b, {"input": x})[0].astype(np.float64)
    cos = float((ya * yb).sum() / np.linalg.norm(ya) / np.linalg.norm(yb))
    # the old rule (abs > 1e-5 and rel > 1e-4) passes this pair; the cosine says it differs
    assert np.abs(ya - yb).max() < 1e-5 and cos < 0.9999, (np.abs(ya - yb).max(), cos)
    rc, out, err = run("diff", a, b, "-i", f"input={f}", "--json")
    doc = json.loads(out)
    assert rc == 1 and not doc["pass"] and doc["atol"] is None, (rc, out[:300])
    o = doc["outputs"][0]
    assert abs(o["cosine"] - cos) < 1e-4 and abs(o["scale"] - np.abs(ya).max()) <= 1e-5 * o["scale"], (o, cos)
    rc, out, _ = run("diff", a, b, "-i", f"input={f}", "--atol", "1e-5", "--min-cosine", "-1", "--min-top1", "0")
    assert rc == 0 and "PASS" in out, out
    rc, out, _ = run("diff", a, a, "-i", f"input={f}")
    assert rc == 0, out


@case("diff --samples, --save-inputs then --inputs: the same verdict, bit for bit; onnxruntime agrees per sample")
def _():
    a, b = small_output_pair()
    d = work("replay")
    sets = os.path.join(d, "sets")
    rc, out1, err = run("diff", a, b, "--samples", "3", "--seed", "11", "--save-inputs", sets, "--json")
    assert rc == 1, err
    assert sorted(os.listdir(sets)) == ["test_data_set_0", "test_data_set_1", "test_data_set_2"]
    rc, out2, err = run("diff", a, b, "--inputs", sets, "--seed", "999", "--json")
    d1, d2 = json.loads(out1), json.loads(out2)
    assert d2["samples"] == 3 and d1["outputs"] == d2["outputs"], (d1["outputs"], d2["outputs"])
    # the worst sample: onnxruntime's figures on the saved inputs
    worst = 0.0
    for k in range(3):
        x = numpy_helper.to_array(onnx.load_tensor(os.path.join(sets, f"test_data_set_{k}", "input_0.pb")))
        ya, yb = ort(a, {"input": x})[0], ort(b, {"input": x})[0]
        worst = max(worst, float(np.abs(ya.astype(np.float64) - yb).max()))
    assert abs(d1["outputs"][0]["max_abs"] - worst) <= 1e-4 * worst, (d1["outputs"][0]["max_abs"], worst)
    # a folder that already holds sets is refused before anything runs
    one_error(*run("diff", a, b, "--save-inputs", sets)[::2], "not empty")
    # .npy sets, named by input
    npy = os.path.join(d, "npy")
    for k in range(2):
        os.makedirs(os.path.join(npy, f"test_data_set_{k}"))
        np.save(os.path.join(npy, f"test_data_set_{k}", "input.npy"),
                np.random.default_rng(k).standard_normal((1, 3, 32, 32)).astype(np.float32))
    rc, out, err = run("diff", a, a, "--inputs", npy, "--json")
    assert rc == 0 and json.loads(out)["samples"] == 2, (rc, err)
    one_error(*run("diff", a, b, "--inputs", os.path.join(d, "nosuch"))[::2], "nosuch")


@case("diff --inputs on ONNX's own test data: the verdict on the sets libonnx-testdata ships")
def _():
    case_dir = "/usr/share/libonnx-testdata/data/node/test_conv_with_strides_padding"
    m = os.path.join(case_dir, "model.onnx")
    rc, out, err = run("diff", m, m, "--inputs", case_dir, "--json")
    assert rc == 0 and json.loads(out)["samples"] == 1, (rc, err, out[:200])


@case("edits verify on 4 samples by default, or on --verify-samples / --verify-inputs, and say so")
def _():
    d = work("verify")
    model = os.path.join(TESTDATA, "tiny_resnet.onnx")
    out = os.path.join(d, "f.onnx")
    rc, text, err = run("fold-bn", model, "-o", out)
    assert rc == 0 and "verify: 4 samples (seeds 0..3), input [1, 3, 32, 32]" in text, (text, err)
    assert "(identical within tolerance)" in text, text
    rc, text, err = run("fold-bn", model, "-o", out, "--verify-samples", "2", "--seed", "5", "--json")
    v = json.loads(text)["verify"]
    assert rc == 0 and v["samples"] == 2 and v["seed"] == 5 and v["pass"], v
    sets = os.path.join(d, "sets")
    assert run("diff", model, model, "--samples", "3", "--save-inputs", sets)[0] == 0
    rc, text, err = run("fold-bn", model, "-o", out, "--verify-inputs", sets, "--json")
    v = json.loads(text)["verify"]
    assert rc == 0 and v["samples"] == 4 and v["inputs"] == sets, v  # 3 sets, then 1 seeded
    assert json.loads(run("info", out, "--json")[1])["params"] > 0
    hist = [p.value for p in onnx.load(out).metadata_props if p.key == "remodel.history"]
    assert len(hist) == 1 and "fold-bn (" in hist[0], hist


shutil.rmtree(WORK, ignore_errors=True)
T.finish()
