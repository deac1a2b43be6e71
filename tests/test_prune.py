#!/usr/bin/python3
"""The pruning pipeline from the command line: criteria, calibration data, MAC/parameter
targets, ignored modules, round-to, per-module ratios, dry runs, JSON, reconstruction,
edit scripts (apply) and the seed's edit.

usage: test_prune.py REMODEL TESTDATA_DIR

Expected figures come from elsewhere than remodel: MACs and parameters are counted by the
onnx Python package with ONNX's shape inference; which channels a criterion keeps is
computed with numpy from the model's weights, or from activations onnxruntime computes;
accuracy is onnxruntime's on the digits model's held-out images against their labels; the
seed's edit is compared with PyTorch's output for the same edit (testdata/edits/).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnx.numpy_helper
import onnx.shape_inference

REMODEL, TESTDATA = sys.argv[1], sys.argv[2]

from rmtest import Suite, one_error_line  # noqa: E402

T = Suite()
case = T.case
DIGITS = os.path.join(TESTDATA, "digits", "digits.onnx")
CALIB = os.path.join(TESTDATA, "digits", "calib")
ORT_RUN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ort", "ort_run.js")


def run(*args, timeout=600):
    # the edit history's time is fixed, so that two runs of one edit write the same bytes
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
    p = subprocess.run([REMODEL, *args], capture_output=True, text=True, timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


def prune_json(*args):
    rc, out, err = run("prune", *args, "--json")
    assert rc == 0, f"exit {rc}: {err}"
    return json.loads(out)


def counts(path):
    """(MACs, parameters) of the model, by onnx: dynamic dims taken as 1, Conv = numel(Y)
    * (C_in/group) * kernel, Gemm = numel(Y) * K; parameters = initializer elements."""
    m = onnx.load(path)
    for vi in m.graph.input:
        for d in vi.type.tensor_type.shape.dim:
            if not d.dim_value:
                d.dim_value = 1
    g = onnx.shape_inference.infer_shapes(m, strict_mode=True).graph
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
              for vi in list(g.input) + list(g.output) + list(g.value_info)}
    for t in g.initializer:
        shapes[t.name] = list(t.dims)
    macs = 0
    for n in g.node:
        if n.op_type == "Conv":
            macs += int(np.prod(shapes[n.output[0]])) * int(np.prod(shapes[n.input[1]][1:]))
        elif n.op_type == "Gemm":
            tb = next((a.i for a in n.attribute if a.name == "transB"), 0)
            w = shapes[n.input[1]]
            macs += int(np.prod(shapes[n.output[0]])) * (w[1] if tb else w[0])
    params = int(sum(int(np.prod(t.dims)) for t in g.initializer))
    return macs, params


def weights(path):
    m = onnx.load(path)
    return {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}


def conv_out_channels(path):
    """{node name: output channels} of every Conv, from its weight."""
    m = onnx.load(path)
    w = {t.name: list(t.dims) for t in m.graph.initializer}
    ident = {n.output[0]: n.input[0] for n in m.graph.node if n.op_type == "Identity"}
    out = {}
    for n in m.graph.node:
        if n.op_type == "Conv":
            name = n.input[1]
            while name in ident:
                name = ident[name]
            out[n.name] = w[name][0]
    return out


def ort(path, x_npy, work, extra_outputs=()):
    """Outputs of onnxruntime on x (a .npy of a batch), with extra tensors as outputs."""
    assert os.path.isdir(os.path.join(os.path.dirname(ORT_RUN), "node_modules", "onnxruntime-node")), \
        "onnxruntime is not installed: run scripts/setup.sh"
    if extra_outputs:
        m = onnx.load(path)
        for name in extra_outputs:
            m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        path = os.path.join(work, "with_outputs.onnx")
        onnx.save(m, path)
    out = os.path.join(work, "ort_out")
    shutil.rmtree(out, ignore_errors=True)
    p = subprocess.run(["node", ORT_RUN, path, out, f"input={x_npy}"], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, f"onnxruntime: {p.stderr.strip()}"
    k = 0
    res = []
    while os.path.exists(os.path.join(out, f"output_{k}.npy")):
        res.append(np.load(os.path.join(out, f"output_{k}.npy")))
        k += 1
    return res


def calib_batch(work):
    """The digits calibration images as one batch, in the sets' natural order."""
    sets = sorted(os.listdir(CALIB), key=lambda s: int(s.rsplit("_", 1)[1]))
    x = np.concatenate([onnx.numpy_helper.to_array(onnx.load_tensor(os.path.join(CALIB, s, "input_0.pb")))
                        for s in sets])
    f = os.path.join(work, "calib.npy")
    np.save(f, x.astype(np.float32))
    return f


def heldout_accuracy(path, work):
    y = np.load(os.path.join(TESTDATA, "digits", "heldout_y.npy"))
    logits = ort(path, os.path.join(TESTDATA, "digits", "heldout_x.npy"), work)[0]
    return float((logits.argmax(1) == y).mean())


# ---- targets --------------------------------------------------------------------------

# the most MACs one channel of a digits group costs: a conv1-group channel feeds three
# convs at 32x32 and two at 16x16 (under 3.5% of the model); a target lands that close
ONE_STEP = 0.04


@case("--target-macs: at most F of the MACs onnx counts, at most one group step below")
def _():
    macs0, _ = counts(DIGITS)
    with tempfile.TemporaryDirectory() as d:
        for f in (0.7, 0.5, 0.3):
            out = os.path.join(d, f"t{f}.onnx")
            rep = prune_json(DIGITS, "--target-macs", str(f), "-o", out)
            macs, params = counts(out)
            assert macs <= f * macs0, f"{f}: {macs} > {f} * {macs0}"
            assert macs >= (f - ONE_STEP) * macs0, f"{f}: {macs / macs0:.3f} of the MACs, more than a step below"
            assert rep["macs_after"] == macs and rep["params_after"] == params, (rep["macs_after"], macs)
            assert rep["macs_before"] == macs0 and rep["written"][0]["path"] == out


@case("--target-params, and both targets together")
def _():
    macs0, params0 = counts(DIGITS)
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "p.onnx")
        prune_json(DIGITS, "--target-params", "0.5", "-o", out)
        _, params = counts(out)
        assert (0.5 - ONE_STEP) * params0 <= params <= 0.5 * params0, params / params0
        prune_json(DIGITS, "--target-macs", "0.6", "--target-params", "0.4", "-o", out)
        macs, params = counts(out)
        assert macs <= 0.6 * macs0 and params <= 0.4 * params0, (macs / macs0, params / params0)
        # one of the two decides, within a step
        assert macs >= (0.6 - ONE_STEP) * macs0 or params >= (0.4 - ONE_STEP) * params0


@case("a target no pruning reaches, and options that do not go together: exit 2, one line")
def _():
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "x.onnx")
        one_error_line(*run("prune", DIGITS, "--target-macs", "0.001", "-o", out), "cannot be met")
        one_error_line(*run("prune", DIGITS, "--target-macs", "0", "-o", out), "--target-macs")
        one_error_line(*run("prune", DIGITS, "--target-macs", "0.5", "--ratio", "0.2", "-o", out), "give one of")
        one_error_line(*run("prune", DIGITS, "layer1.0.conv1", "--target-macs", "0.5", "-o", out), "target")
        one_error_line(*run("prune", DIGITS, "--target-macs", "0.5", "--round-to", "0", "-o", out), "--round-to")
        one_error_line(*run("prune", DIGITS, "--target-macs", "0.5", "--ignore", "layer9", "-o", out),
                       "layer9", "nearest")
        one_error_line(*run("prune", DIGITS, "--global", "--ratio", "0.2", "--ratio-for", "layer1.0.conv1", "-o",
                            out), "PATH=R")
        one_error_line(*run("prune", DIGITS, "--global", "--ratio", "0.2", "--ratio-for", "bn1=0.5", "-o", out),
                       "not a Conv2d")
        one_error_line(*run("prune", DIGITS, "--target-macs", "0.5", "--criterion", "activation", "-o", out),
                       "calibration")
        one_error_line(*run("prune", DIGITS, "--target-macs", "0.5", "--reconstruct", "-o", out), "calibration")
        one_error_line(*run("prune", DIGITS, "--target-macs", "0.5", "--criterion", "l3", "-o", out), "l1/l2/bn-scale/activation")
        # BatchNorms folded into the convs: nothing for bn-scale to rank by
        one_error_line(*run("prune", os.path.join(TESTDATA, "mobilenet_tiny.onnx"), "--global", "--ratio", "0.3",
                            "--criterion", "bn-scale", "-o", out), "bn-scale", "folded")
        assert os.listdir(d) == [], os.listdir(d)


# ---- controls -----------------------------------------------------------------------------

@case("--ignore fc leaves the classifier's input whole; --ignore a block leaves all its groups")
def _():
    orig = conv_out_channels(DIGITS)
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "i.onnx")
        rep = prune_json(DIGITS, "--target-macs", "0.5", "--ignore", "fc", "-o", out)
        w = weights(out)
        assert w["fc.weight"].shape == (10, 64), w["fc.weight"].shape
        ch = conv_out_channels(out)
        for n in ("/layer3/layer3.0/conv2/Conv", "/layer3/layer3.0/downsample/downsample.0/Conv"):
            assert ch[n] == 64, (n, ch[n])
        ignored = [g for g in rep["groups"] if g["ignored"]]
        assert [g["name"] for g in ignored] == ["layer3.0.conv2"] and ignored[0]["reason"] == "ignored (fc)", ignored
        assert counts(out)[0] <= 0.5 * counts(DIGITS)[0]
        prune_json(DIGITS, "--target-macs", "0.6", "--ignore", "layer2", "-o", out)
        ch = conv_out_channels(out)
        # layer2 reads conv1's group, and produces its own two
        for n in ("/conv1/Conv", "/layer1/layer1.0/conv2/Conv", "/layer2/layer2.0/conv1/Conv",
                  "/layer2/layer2.0/conv2/Conv", "/layer2/layer2.0/downsample/downsample.0/Conv"):
            assert ch[n] == orig[n], (n, ch[n], orig[n])
        assert ch["/layer3/layer3.0/conv1/Conv"] < 64 or ch["/layer1/layer1.0/conv1/Conv"] < 16


@case("--round-to N: every pruned group keeps a multiple of N")
def _():
    orig = conv_out_channels(DIGITS)
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "r.onnx")
        prune_json(DIGITS, "--target-macs", "0.5", "--round-to", "8", "-o", out)
        ch = conv_out_channels(out)
        assert any(ch[n] != orig[n] for n in ch)
        for n, c in ch.items():
            assert c == orig[n] or c % 8 == 0, (n, c)
        assert counts(out)[0] <= 0.5 * counts(DIGITS)[0]
        # a named module, by ratio: 16 * (1 - 0.4) = 9.6 -> 9 kept, rounded up to 12
        prune_json(DIGITS, "layer1.0.conv1", "--ratio", "0.4", "--round-to", "4", "-o", out)
        assert conv_out_channels(out)["/layer1/layer1.0/conv1/Conv"] == 12


@case("--ratio-for PATH=R: that group loses exactly R, beside the global ranking or alone")
def _():
    orig = conv_out_channels(DIGITS)
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "f.onnx")
        prune_json(DIGITS, "--global", "--ratio", "0.2", "--ratio-for", "layer2.0.conv1=0.5", "-o", out)
        assert conv_out_channels(out)["/layer2/layer2.0/conv1/Conv"] == 16
        prune_json(DIGITS, "--ratio-for", "layer1.0.conv1=0.25", "--ratio-for", "layer3.0.conv1=0.5", "-o", out)
        ch = conv_out_channels(out)
        want = dict(orig, **{"/layer1/layer1.0/conv1/Conv": 12, "/layer3/layer3.0/conv1/Conv": 32})
        assert ch == want, {n: (ch[n], want[n]) for n in ch if ch[n] != want[n]}
        # and counted in a target
        prune_json(DIGITS, "--target-macs", "0.5", "--ratio-for", "layer3.0.conv1=0.75", "-o", out)
        assert conv_out_channels(out)["/layer3/layer3.0/conv1/Conv"] == 16
        assert counts(out)[0] <= 0.5 * counts(DIGITS)[0]


@case("--dry-run writes nothing, needs no -o, and plans exactly what the run does")
def _():
    with tempfile.TemporaryDirectory() as d:
        args = ["--target-macs", "0.5", "--round-to", "2", "--ignore", "fc"]
        rc, out, err = run("prune", DIGITS, *args, "--dry-run")
        assert rc == 0, err
        assert "dry run: nothing written" in out and "layer2.0.conv1" in out and "MACs" in out, out
        plan = prune_json(DIGITS, *args, "--dry-run", "-o", os.path.join(d, "never.onnx"))
        assert plan["dry_run"] and plan["written"] == [] and plan["verify"] is None, plan
        assert os.listdir(d) == [], os.listdir(d)
        done = prune_json(DIGITS, *args, "-o", os.path.join(d, "real.onnx"))
        for k in ("groups", "params_before", "params_after", "macs_before", "macs_after"):
            assert plan[k] == done[k], (k, plan[k], done[k])
        assert done["verify"]["outputs"][0]["name"] == "output" and done["written"][0]["path"].endswith("real.onnx")


# ---- criteria -------------------------------------------------------------------------------

def kept_by(score, n_keep):
    """The n_keep channels of largest score (ties: the lower index goes first), sorted."""
    order = sorted(range(len(score)), key=lambda c: (score[c], c))
    return sorted(order[len(score) - n_keep:])


@case("bn-scale keeps the channels of largest |gamma| / sqrt(var + eps)")
def _():
    w0 = weights(DIGITS)
    gamma, var = w0["layer1.0.bn1.weight"].astype(np.float64), w0["layer1.0.bn1.running_var"].astype(np.float64)
    keep = kept_by(np.abs(gamma) / np.sqrt(var + 1e-5), 8)
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "b.onnx")
        prune_json(DIGITS, "layer1.0.conv1", "--ratio", "0.5", "--criterion", "bn-scale", "-o", out)
        w = weights(out)
        assert np.array_equal(w["layer1.0.bn1.weight"], w0["layer1.0.bn1.weight"][keep])
        assert np.array_equal(w["layer1.0.conv1.weight"], w0["layer1.0.conv1.weight"][keep])
        assert np.array_equal(w["layer1.0.conv2.weight"], w0["layer1.0.conv2.weight"][:, keep])


@case("activation keeps the channels of largest mean |activation| on the calibration sets (onnxruntime's)")
def _():
    w0 = weights(DIGITS)
    with tempfile.TemporaryDirectory() as d:
        x = calib_batch(d)
        # layer1.0.conv2 reads the ReLU after layer1.0.bn1; its channels are the group's
        act = ort(DIGITS, x, d, ["/layer1/layer1.0/relu/Relu_output_0"])[1]
        keep = kept_by(np.abs(act.astype(np.float64)).mean(axis=(0, 2, 3)), 10)
        out = os.path.join(d, "a.onnx")
        rep = prune_json(DIGITS, "layer1.0.conv1", "--ratio", "0.375", "--criterion", "activation",
                         "--calib-inputs", CALIB, "-o", out)
        assert any("64 calibration samples" in n for n in rep["notes"]), rep["notes"]
        w = weights(out)
        assert np.array_equal(w["layer1.0.conv1.weight"], w0["layer1.0.conv1.weight"][keep]), keep


# ---- calibration data -------------------------------------------------------------------------

@case("calibration sets: .pb or .npy, named after the input or input_<k>; what does not fit: exit 2")
def _():
    tiny = os.path.join(TESTDATA, "tiny_resnet.onnx")
    x = onnx.numpy_helper.to_array(onnx.load_tensor(os.path.join(TESTDATA, "tiny_resnet", "test_data_set_0",
                                                                  "input_0.pb")))
    base = ["prune", tiny, "layer1.0.conv1", "--ratio", "0.5", "--criterion", "activation", "--no-verify"]
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "o", "x.onnx")
        os.makedirs(os.path.dirname(out))
        # .npy named after the input, in sets sorted naturally (set_10 after set_9)
        npy = os.path.join(d, "npy")
        for k in range(12):
            os.makedirs(os.path.join(npy, f"set_{k}"))
            np.save(os.path.join(npy, f"set_{k}", "input.npy"), (x * (k + 1)).astype(np.float32))
        rc, o, err = run(*base, "--calib-inputs", npy, "-o", out)
        assert rc == 0 and "12 calibration samples" in o, (rc, o, err)
        rc, o, err = run(*base, "--calib-inputs", npy, "--calib-samples", "3", "-o", out)
        assert rc == 0 and "3 calibration samples" in o, (rc, o, err)
        # the same images as .pb named input_0, with an output file beside (skipped)
        pb = os.path.join(d, "pb")
        for k in range(12):
            os.makedirs(os.path.join(pb, f"test_data_set_{k}"))
            t = onnx.numpy_helper.from_array((x * (k + 1)).astype(np.float32), "something_else")
            with open(os.path.join(pb, f"test_data_set_{k}", "input_0.pb"), "wb") as f:
                f.write(t.SerializeToString())
            np.save(os.path.join(pb, f"test_data_set_{k}", "output_0.npy"), np.zeros(3, np.float32))
        out2 = os.path.join(d, "o", "y.onnx")
        rc, o, err = run(*base, "--calib-inputs", pb, "-o", out2)
        assert rc == 0, err
        with open(out, "rb") as f1, open(out2, "rb") as f2:
            assert f1.read() != b"" and weights(out)["layer1.0.conv1.weight"].shape[0] == 4
        w1, w2 = weights(out), weights(out2)
        for k in w1:
            assert np.array_equal(w1[k], w2[k]), f"{k}: .npy and .pb sets chose differently"
        # refusals: a set without the input, a stray tensor, other dims, a FIFO, no folder
        os.remove(os.path.join(npy, "set_7", "input.npy"))
        one_error_line(*run(*base, "--calib-inputs", npy, "-o", out), "set_7", "input")
        np.save(os.path.join(npy, "set_7", "weights.npy"), x)
        one_error_line(*run(*base, "--calib-inputs", npy, "-o", out), "weights.npy", "feeds no input")
        os.remove(os.path.join(npy, "set_7", "weights.npy"))
        np.save(os.path.join(npy, "set_7", "input.npy"), np.zeros((1, 3, 16, 16), np.float32))
        one_error_line(*run(*base, "--calib-inputs", npy, "-o", out), "set_7", "[1, 3, 16, 16]")
        os.remove(os.path.join(npy, "set_7", "input.npy"))
        os.mkfifo(os.path.join(npy, "set_7", "input.npy"))
        one_error_line(*run(*base, "--calib-inputs", npy, "-o", out, timeout=60), "FIFO")
        one_error_line(*run(*base, "--calib-inputs", os.path.join(d, "none"), "-o", out), "none")
        empty = os.path.join(d, "empty")
        os.makedirs(empty)
        one_error_line(*run(*base, "--calib-inputs", empty, "-o", out), "no input sets")
        # seeded random samples
        rc, o, err = run(*base, "--calib-samples", "4", "-o", out)
        assert rc == 0 and "4 calibration samples" in o, (rc, o, err)


# ---- reconstruction ---------------------------------------------------------------------------

@case("--reconstruct at 50% of MACs removed: held-out accuracy within a point of the unpruned model")
def _():
    with tempfile.TemporaryDirectory() as d:
        base = heldout_accuracy(DIGITS, d)
        plain, rec = os.path.join(d, "plain.onnx"), os.path.join(d, "rec.onnx")
        args = ["--target-macs", "0.5", "--criterion", "activation", "--calib-inputs", CALIB, "--no-verify"]
        prune_json(DIGITS, *args, "-o", plain)
        rep = prune_json(DIGITS, *args, "--reconstruct", "-o", rec)
        acc_plain, acc_rec = heldout_accuracy(plain, d), heldout_accuracy(rec, d)
        assert acc_rec >= base - 0.01, f"reconstructed {acc_rec:.4f}, unpruned {base:.4f}"
        assert acc_plain < 0.5, f"without reconstruction {acc_plain:.4f}: the test would show nothing"
        assert rep["calibration_samples"] == 64 and len(rep["refits"]) >= 5, rep["refits"]
        for r in rep["refits"]:
            assert r["error_after"] <= r["error_before"], r
        assert counts(rec) == counts(plain), "reconstruction changed the model's size"
        rc, _, err = run("check", rec)
        assert rc == 0, err


@case("reconstructed models of every small testdata model pass onnx's checker and run in onnxruntime as in remodel")
def _():
    with tempfile.TemporaryDirectory() as d:
        for m in ("tiny_resnet", "mobilenet_tiny", "concat_net", "se_net", "shared_init"):
            out = os.path.join(d, m + ".onnx")
            # shared_init: conv1's group, read by the two branches (a shared weight)
            how = ["conv1", "--ratio", "0.25"] if m == "shared_init" else ["--target-macs", "0.6"]
            rep = prune_json(os.path.join(TESTDATA, m + ".onnx"), *how, "--criterion", "activation",
                             "--calib-samples", "4", "--reconstruct", "-o", out)
            assert rep["refits"], f"{m}: nothing refitted"
            onnx.checker.check_model(onnx.load(out), full_check=True)
            # a seeded input, through remodel and onnxruntime
            x = np.random.default_rng(5).standard_normal((1, 3, 32, 32)).astype(np.float32)
            np.save(os.path.join(d, "x.npy"), x)
            rc, _, err = run("run", out, "-i", "input=" + os.path.join(d, "x.npy"), "-o", os.path.join(d, "rm"))
            assert rc == 0, err
            ours = onnx.numpy_helper.to_array(onnx.load_tensor(os.path.join(d, "rm", "output_0.pb")))
            theirs = ort(out, os.path.join(d, "x.npy"), d)[0]
            e = float(np.abs(ours - theirs).max() / np.abs(theirs).max())
            assert e < 1e-4, f"{m}: remodel and onnxruntime differ by {e:.3g} of the output scale"
        # shared_init's branches feed an Add, not a BatchNorm: their fitted bias is a new input
        convs = [n for n in onnx.load(os.path.join(d, "shared_init.onnx")).graph.node if n.op_type == "Conv"]
        assert sum(len(n.input) == 3 for n in convs) == 2, [list(n.input) for n in convs]


# ---- edit scripts ---------------------------------------------------------------------------------

@case("apply: a failing line writes nothing and names the line; every line is parsed first")
def _():
    tiny = os.path.join(TESTDATA, "tiny_resnet.onnx")
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "out.onnx")
        with open(out, "w") as f:
            f.write("an earlier file")
        script = os.path.join(d, "s.txt")
        with open(script, "w") as f:
            f.write("# prune, then a module that is not there\nprune --target-macs 0.7\n\n"
                    "replace layer9.conv1 Conv2d(8, 8, 3)\nfold-bn\n")
        one_error_line(*run("apply", tiny, script, "-o", out), f"{script}:4:", "layer9.conv1", "nothing written")
        with open(out) as f:
            assert f.read() == "an earlier file"
        assert sorted(os.listdir(d)) == ["out.onnx", "s.txt"], os.listdir(d)
        for text, line, needle in [("prune --ratio 0.5 --global\nprune --bogus\n", 2, "--bogus"),
                                   ("fold-bn\nreplace conv1 Conv2d(3, 8, 3 --propagate\n", 2, "parenthesis"),
                                   ("prune --global --ratio 0.3 -o x.onnx\n", 1, "-o is an option of apply"),
                                   ("\n\nfrobnicate now\n", 3, "unknown edit 'frobnicate'"),
                                   ("input-shape input\n", 1, "NAME=D0,D1"),
                                   ("replace conv1 'Conv2d(3, 8, kernel=3)'\n", 1, "kernel")]:
            with open(script, "w") as f:
                f.write(text)
            # a model that does not exist: the script's error comes first, before any loading
            one_error_line(*run("apply", os.path.join(d, "missing.onnx"), script, "-o", out), f"{script}:{line}:",
                           needle)
        one_error_line(*run("apply", tiny, d, "-o", out), "not a regular file")
        with open(out) as f:
            assert f.read() == "an earlier file"


@case("apply: a prune line that removes nothing stops the script (exit 1) unless it says --allow-noop")
def _():
    tiny = os.path.join(TESTDATA, "tiny_resnet.onnx")
    with tempfile.TemporaryDirectory() as d:
        out, script = os.path.join(d, "out.onnx"), os.path.join(d, "s.txt")
        with open(script, "w") as f:
            f.write("fold-bn\nprune layer1.0.conv1 --ratio 0.1\n")
        rc, stdout, err = run("apply", tiny, script, "-o", out)
        assert rc == 1 and f"{script}:2:" in err and "nothing was pruned" in err and "--allow-noop" in err, (rc, err)
        assert not os.path.exists(out), "wrote the model"
        with open(script, "w") as f:
            f.write("fold-bn\nprune layer1.0.conv1 --ratio 0.1 --allow-noop\n")
        rc, stdout, err = run("apply", tiny, script, "-o", out)
        assert rc == 0 and os.path.exists(out), (rc, err)


@case("apply: lines mean what the commands mean; --json reports every step")
def _():
    tiny = os.path.join(TESTDATA, "tiny_resnet.onnx")
    with tempfile.TemporaryDirectory() as d:
        one = os.path.join(d, "one.onnx")
        rc, _, err = run("prune", tiny, "--target-macs", "0.6", "--ratio-for", "layer2.0.conv1=0.5", "-o", one)
        assert rc == 0, err
        script = os.path.join(d, "s.txt")
        with open(script, "w") as f:
            f.write("prune --target-macs 0.6 --ratio-for \"layer2.0.conv1=0.5\"   # as on the command line\n")
        two = os.path.join(d, "two.onnx")
        rc, out, err = run("apply", tiny, script, "-o", two)
        assert rc == 0, err
        with open(one, "rb") as f1, open(two, "rb") as f2:
            assert f1.read() == f2.read(), "apply's prune wrote other bytes than prune's"
        with open(script, "w") as f:
            f.write("replace layer1.0.conv1 Conv2d(8, 6, 3, padding=1, bias=False) --propagate\n"
                    "prune layer2.0.conv1 --ratio 0.25\nfold-bn\ninput-shape input=1,3,32,32\n")
        rc, out, err = run("apply", tiny, script, "-o", two, "--json")
        assert rc == 0, err
        doc = json.loads(out)
        assert [s["line"] for s in doc["steps"]] == [1, 2, 3, 4], doc["steps"]
        assert [s["edit"] for s in doc["steps"]] == ["replace", "prune", "fold-bn", "input-shape"]
        assert doc["steps"][1]["macs_after"] < doc["steps"][1]["macs_before"]
        assert doc["steps"][2]["folded"] == 8, doc["steps"][2]
        assert doc["written"][0]["path"] == two and doc["verify"]["outputs"][0]["name"] == "output", doc
        ch = conv_out_channels(two)
        assert ch["/layer1/layer1.0/conv1/Conv"] == 6 and ch["/layer2/layer2.0/conv1/Conv"] == 12, ch
        assert not any(n.op_type == "BatchNormalization" for n in onnx.load(two).graph.node)


# ---- the seed's edit ------------------------------------------------------------------------------

@case("the seed's edit: replace layer4[0].conv1 with Conv2d(111, 111, 3, 2, 1) --propagate, as PyTorch does it")
def _():
    r18 = os.path.join(TESTDATA, "resnet18.onnx")
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "seed.onnx")
        rc, o, err = run("replace", r18, "layer4[0].conv1", "Conv2d(111, 111, 3, 2, 1)", "--propagate", "-o", out)
        assert rc == 0, err
        assert "group layer3.0.conv2 pruned 256 -> 111" in o and "verify: output" in o, o
        rc, o, err = run("show", out, "layer4[0]")
        assert rc == 0, err
        assert "(conv1): Conv2d(111, 111, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1)" in o, o
        assert "(conv2): Conv2d(111, 512" in o and "(0): Conv2d(111, 512, kernel_size=(1, 1)" in o, o
        onnx.checker.check_model(onnx.load(out), full_check=True)
        x = onnx.numpy_helper.to_array(onnx.load_tensor(os.path.join(TESTDATA, "resnet18", "test_data_set_0",
                                                                      "input_0.pb")))
        np.save(os.path.join(d, "x.npy"), x)
        y = ort(out, os.path.join(d, "x.npy"), d)[0]
        ref = onnx.numpy_helper.to_array(onnx.load_tensor(os.path.join(TESTDATA, "edits", "seed_in_propagate",
                                                                        "output_0.pb")))
        err = float(np.abs(y - ref).max() / np.abs(ref).max())
        assert err < 1e-4, f"onnxruntime and PyTorch differ by {err:.3g} of the output scale"


T.finish()
