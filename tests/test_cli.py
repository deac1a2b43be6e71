#!/usr/bin/env python3
"""Command-line contract tests for remodel (exit codes, one-line errors, --json,
atomic writes). Standard library only.

usage: test_cli.py REMODEL TESTDATA_DIR

Expected figures for `info` come from testdata/expected/info.json, which
testdata/make_expected_info.py computes with the onnx Python package and ONNX's
own shape inference, independently of remodel.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REMODEL, TESTDATA = sys.argv[1], sys.argv[2]
MODELS = ["resnet18", "tiny_resnet", "mobilenet_tiny", "concat_net", "se_net", "shared_init"]
COMMANDS = ["info", "check", "save", "show", "run", "diff", "replace", "prune", "fold-bn"]

from rmtest import Suite, one_error_line  # noqa: E402

T = Suite()
case = T.case


def run(*args):
    return T.run(REMODEL, *args, timeout=120)


def model(name):
    return os.path.join(TESTDATA, name + ".onnx")


@case("help for the tool and every command")
def _():
    rc, top, _ = run("--help")
    assert rc == 0 and "usage: remodel" in top
    for c in COMMANDS:
        assert f"\n  {c} " in top, f"{c} missing from --help"
        rc, out, _ = run(c, "--help")
        assert rc == 0 and out.startswith(f"usage: remodel {c}"), (c, rc, out[:80])
        rc2, out2, _ = run("help", c)
        assert rc2 == 0 and out2 == out


@case("unknown command and bad options exit 2")
def _():
    one_error_line(*run("frobnicate"), "frobnicate")
    one_error_line(*run("info", "--bogus", model("se_net")), "--bogus")
    one_error_line(*run("info"), "missing MODEL")
    one_error_line(*run("save", model("se_net")), "-o")


@case("info --json matches ONNX's own figures")
def _():
    with open(os.path.join(TESTDATA, "expected", "info.json")) as f:
        expected = json.load(f)
    for m in MODELS:
        rc, out, err = run("info", "--json", model(m))
        assert rc == 0, err
        got = json.loads(out)  # exactly one document on stdout
        exp = expected[m]
        for k in ("nodes", "initializers", "params", "param_bytes", "macs", "ir_version"):
            assert got[k] == exp[k], f"{m}: {k} {got[k]} != {exp[k]}"
        assert got["ops"] == exp["ops"], f"{m}: ops {got['ops']} != {exp['ops']}"
        assert [o["version"] for o in got["opsets"] if o["domain"] in ("", "ai.onnx")] == [exp["opset"]]
        assert got["inputs"][0]["name"] == "input" and got["outputs"][0]["name"] == "output"


@case("info text names shapes and MACs")
def _():
    rc, out, _ = run("info", model("resnet18"))
    assert rc == 0
    assert "input float32 [1, 3, 224, 224]" in out, out
    assert "output float32 [1, 1000]" in out, out
    assert "MACs" in out and "1814073344" in out, out


@case("check is clean on every testdata model")
def _():
    for m in MODELS:
        rc, out, err = run("check", model(m))
        assert rc == 0, f"{m}: {out}{err}"
        assert "ok" in out


@case("bad files: exit 2, one line naming the file")
def _():
    with tempfile.TemporaryDirectory() as d:
        data = open(model("tiny_resnet"), "rb").read()
        cases = {
            "empty.onnx": b"",
            "garbage.onnx": bytes((i * 131 + 7) % 256 for i in range(5000)),
            "truncated.onnx": data[: len(data) // 2],
            "text.onnx": b"this is not a model\n" * 10,
        }
        for name, content in cases.items():
            p = os.path.join(d, name)
            with open(p, "wb") as f:
                f.write(content)
            for cmd in ("info", "check"):
                one_error_line(*run(cmd, p), p)
        one_error_line(*run("info", os.path.join(d, "missing.onnx")), "missing.onnx", "cannot open")
        one_error_line(*run("info", d), "not a regular file")


@case("save: byte-identical, atomic, never touches the input")
def _():
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "m.onnx")
        shutil.copy(model("mobilenet_tiny"), src)
        original = open(src, "rb").read()
        out = os.path.join(d, "out.onnx")
        rc, _, err = run("save", src, "-o", out)
        assert rc == 0, err
        assert open(out, "rb").read() == original
        # -o naming the input itself
        rc, _, err = run("save", src, "-o", src)
        assert rc == 0, err
        assert open(src, "rb").read() == original
        assert sorted(os.listdir(d)) == ["m.onnx", "out.onnx"], os.listdir(d)
        # unwritable target: exit 2, nothing written, input intact
        one_error_line(*run("save", src, "-o", os.path.join(d, "nope", "x.onnx")), "nope")
        one_error_line(*run("save", src, "-o", d), "directory")
        assert sorted(os.listdir(d)) == ["m.onnx", "out.onnx"], os.listdir(d)
        # a bad input never produces an output file
        bad = os.path.join(d, "bad.onnx")
        with open(bad, "wb") as f:
            f.write(original[:1000])
        one_error_line(*run("save", bad, "-o", os.path.join(d, "never.onnx")), "bad.onnx")
        assert not os.path.exists(os.path.join(d, "never.onnx"))
        assert open(src, "rb").read() == original


@case("external data: ONNX's own external files load; ours pass onnx's checker")
def _():
    try:
        import onnx
    except ImportError:
        raise AssertionError("python3-onnx is not installed (scripts/setup.sh installs it)")
    with tempfile.TemporaryDirectory() as d:
        ref = onnx.load(model("tiny_resnet"))
        ext = os.path.join(d, "py.onnx")
        onnx.save_model(onnx.load(model("tiny_resnet")), ext, save_as_external_data=True,
                        all_tensors_to_one_file=True, location="py.data", size_threshold=0)
        rc, out, err = run("check", ext)
        assert rc == 0, out + err
        back = os.path.join(d, "back.onnx")
        rc, _, err = run("save", ext, "-o", back)
        assert rc == 0, err
        assert onnx.load(back).SerializeToString() == ref.SerializeToString()
        ours = os.path.join(d, "ours.onnx")
        rc, _, err = run("save", model("tiny_resnet"), "-o", ours, "--external-data", "ours.data")
        assert rc == 0, err
        got = onnx.load(ours)
        onnx.checker.check_model(got, full_check=True)  # in memory: a path would be rewritten  # python onnx marks data_location explicitly: compare values
        assert got.graph.node == ref.graph.node
        import onnx.numpy_helper as nh
        for a, b in zip(got.graph.initializer, ref.graph.initializer):
            assert a.name == b.name and (nh.to_array(a) == nh.to_array(b)).all(), a.name
        one_error_line(*run("save", ext, "-o", back, "--external-data", "../x.data"), "plain file name")
        # hostile location: exit 2, nothing read
        m = onnx.load(ext, load_external_data=False)
        for e in m.graph.initializer[0].external_data:
            if e.key == "location":
                e.value = "../../etc/passwd"
        bad = os.path.join(d, "bad.onnx")
        onnx.save(m, bad)
        one_error_line(*run("info", bad), "bad.onnx", "'..'")


@case("run builds a single run's plan without Winograd; --bench (many runs) keeps it")
def _():
    def impls(*args):
        p = subprocess.run([REMODEL, "run", model("resnet18"), *args], capture_output=True, text=True,
                           timeout=120, env=dict(os.environ, REMODEL_PROFILE="all"))
        assert p.returncode == 0, p.stderr
        return p.stderr
    # the profile names each step's oneDNN kernel: resnet18's 3x3 convs are Winograd's only
    # when the plan is built for many runs
    if "wino" not in impls("--bench", "1"):
        return  # oneDNN has no Winograd kernel for this CPU: nothing to tell apart
    assert "wino" not in impls(), "a single run transformed Winograd weights"


@case("run refuses a pooling window wholly inside its padding: exit 2, one line")
def _():
    import onnx
    from onnx import TensorProto, helper

    def pool_model(path, op, pads):
        node = helper.make_node(op, ["x"], ["y"], kernel_shape=[3, 3], pads=pads)
        g = helper.make_graph([node], "pool",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)

    with tempfile.TemporaryDirectory() as d:
        # onnxruntime refuses pads >= kernel for pooling too; fuzzing found pads of
        # 2097151 that asked remodel for a 3.4 GB output
        for op, pads in (("AveragePool", [1, 1, 1, 3]), ("MaxPool", [3, 0, 0, 0])):
            p = os.path.join(d, op + ".onnx")
            pool_model(p, op, pads)
            one_error_line(*run("run", p), op, "pads", "smaller than the pooling window (3)")
            pool_model(p, op, [min(x, 2) for x in pads])  # one less than the window is fine
            rc, _, err = run("run", p)
            assert rc == 0, err


def onnx_accepts(path):
    """onnx's checker with full shape inference, and strict shape inference. The model
    goes in memory: given a path, check_model(full_check=True) writes the shape-inferred
    model back over the file, and the later checks would no longer see remodel's bytes."""
    import onnx
    import onnx.shape_inference
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True)


ORT_RUN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ort", "ort_run.js")


def ort_agrees(path, work):
    """onnxruntime's CPU provider (tests/ort, installed by scripts/setup.sh) loads and
    runs the model, and every output matches remodel's on the same seeded input to 1e-4
    of the output's scale. Returns the worst relative error."""
    import numpy as np
    import onnx
    from onnx import numpy_helper
    assert os.path.isdir(os.path.join(os.path.dirname(ORT_RUN), "node_modules", "onnxruntime-node")), \
        "onnxruntime is not installed: run scripts/setup.sh"
    m = onnx.load(path)
    inits = {i.name for i in m.graph.initializer}
    rng = np.random.default_rng(0)
    feeds = []
    for k, vi in enumerate(v for v in m.graph.input if v.name not in inits):
        shape = [x.dim_value if x.dim_value > 0 else 1 for x in vi.type.tensor_type.shape.dim]
        f = os.path.join(work, f"input_{k}.npy")
        np.save(f, rng.standard_normal(shape).astype(np.float32))
        feeds.append(f"{vi.name}={f}")
    ours, theirs = os.path.join(work, "remodel"), os.path.join(work, "ort")
    os.makedirs(ours, exist_ok=True)
    rc, _, err = run("run", path, *[a for x in feeds for a in ("-i", x)], "-o", ours)
    assert rc == 0, f"remodel run: {err}"
    p = subprocess.run(["node", ORT_RUN, path, theirs, *feeds], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, f"onnxruntime refuses the model: {p.stderr.strip()}"
    worst = 0.0
    for k in range(len(m.graph.output)):
        a = numpy_helper.to_array(onnx.load_tensor(os.path.join(ours, f"output_{k}.pb")))
        b = np.load(os.path.join(theirs, f"output_{k}.npy"))
        assert a.shape == b.shape, f"output {k}: remodel {a.shape}, onnxruntime {b.shape}"
        e = float(np.abs(a - b).max() / max(float(np.abs(b).max()), 1e-30))
        assert e <= 1e-4, f"output {k}: remodel and onnxruntime differ by {e:.3g} of the output scale"
        worst = max(worst, e)
    return worst


def edit_cases():
    with open(os.path.join(TESTDATA, "edits", "cases.tsv")) as f:
        for line in f:
            case, m, path, propagate, spec = line.rstrip("\n").split("\t")
            yield case, ["replace", model(m), path, spec] + (["--propagate"] if propagate == "1" else [])
    with open(os.path.join(TESTDATA, "edits", "prune_cases.tsv")) as f:
        for line in f:
            case, m, path, chans = line.rstrip("\n").split("\t")
            yield case, ["prune", model(m), path, "--channels", chans]
    for m in MODELS:
        yield f"global_{m}", ["prune", model(m), "--global", "--ratio", "0.3"]
    for m in ("tiny_resnet", "shared_init"):
        yield f"fold_{m}", ["fold-bn", model(m)]


@case("every edited testdata model passes onnx's checker and runs in onnxruntime as in remodel")
def _():
    worst = 0.0
    with tempfile.TemporaryDirectory() as d:
        for case, args in edit_cases():
            out = os.path.join(d, case + ".onnx")
            rc, stdout, err = run(*args, "-o", out)
            assert rc == 0, f"{case}: exit {rc}: {err}"
            assert "verify: output" in stdout and f"wrote {out}" in stdout, f"{case}: {stdout}"
            try:
                onnx_accepts(out)
            except Exception as e:  # noqa: BLE001 - report which case failed and why
                raise AssertionError(f"{case}: onnx rejects the edited model: {e}")
            rc, _, err = run("check", out)
            assert rc == 0, f"{case}: remodel check: {err}"
            work = os.path.join(d, case)
            os.makedirs(work)
            try:
                worst = max(worst, ort_agrees(out, work))
            except AssertionError as e:
                raise AssertionError(f"{case}: {e}")
    print(f"     onnxruntime vs remodel on every edited model: worst {worst:.3g} of the output scale")


@case("onnxruntime agrees with remodel on every testdata model")
def _():
    with tempfile.TemporaryDirectory() as d:
        for m in MODELS:
            work = os.path.join(d, m)
            os.makedirs(work)
            ort_agrees(model(m), work)


@case("edits rewrite stale value_info: a model carrying ONNX's inferred shapes stays consistent")
def _():
    import onnx
    import onnx.shape_inference
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "with_shapes.onnx")
        m = onnx.shape_inference.infer_shapes(onnx.load(model("tiny_resnet")))
        assert len(m.graph.value_info) > 10, "onnx did not add value_info"
        onnx.save(m, src)
        for args in (["replace", src, "layer1.0.conv1", "Conv2d(8, 5, 3, padding=1, bias=False)", "--propagate"],
                     ["prune", src, "layer1.0.conv2", "--ratio", "0.5"]):
            out = os.path.join(d, "out.onnx")
            rc, _, err = run(*args, "-o", out)
            assert rc == 0, err
            onnx_accepts(out)  # strict mode: an inferred shape that contradicts value_info fails
            got = {vi.name: [x.dim_value for x in vi.type.tensor_type.shape.dim]
                   for vi in onnx.load(out).graph.value_info}
            want = {vi.name: [x.dim_value for x in vi.type.tensor_type.shape.dim]
                    for vi in onnx.shape_inference.infer_shapes(onnx.load(out)).graph.value_info}
            assert got == want, {k: (got[k], want.get(k)) for k in got if got[k] != want.get(k)}


@case("edits refuse what does not fit: exit 2, one line, nothing written")
def _():
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "x.onnx")
        one_error_line(*run("replace", model("resnet18"), "layer4.0.conv1", "Conv2d(111, 111, 3, 2, 1)", "-o", out),
                       "layer4.0.conv1", "layer4.0.conv2", "256", "512")
        one_error_line(*run("replace", model("tiny_resnet"), "layer1.0.conv2", "Conv2d(8, 6, 3, padding=1)",
                            "--propagate", "-o", out), "Add")
        one_error_line(*run("replace", model("tiny_resnet"), "layer9.conv1", "Conv2d(8, 8, 3)", "-o", out),
                       "no module 'layer9.conv1'", "nearest")
        one_error_line(*run("replace", model("tiny_resnet"), "layer1.0.conv1", "Conv2d(8, 8, 3, kernel=2)", "-o", out),
                       "no argument 'kernel'")
        one_error_line(*run("replace", model("tiny_resnet"), "layer1.0.conv1", "Conv2d(8, 8, 3)", "--init", "ones",
                            "-o", out), "--init")
        one_error_line(*run("prune", model("tiny_resnet"), "layer1.0.conv1", "--ratio", "1.5", "-o", out), "--ratio")
        one_error_line(*run("prune", model("tiny_resnet"), "layer1.0.conv1", "--channels", "0,99", "-o", out),
                       "out of range")
        one_error_line(*run("prune", model("tiny_resnet"), "conv1", "--ratio", "0.5", "--channels", "1", "-o", out),
                       "at most one of --ratio R and --channels LIST")
        one_error_line(*run("prune", model("tiny_resnet"), "--ratio", "0.5", "-o", out), "--global")
        assert os.listdir(d) == [], os.listdir(d)


@case("replace with --init kaiming and zeros; -o naming the input")
def _():
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "m.onnx")
        shutil.copy(model("tiny_resnet"), src)
        for init in ("kaiming", "zeros"):
            rc, out, err = run("replace", src, "layer1[0].conv1", "Conv2d(8, 8, 5, padding=2)", "--init", init,
                               "--seed", "7", "-o", src)
            assert rc == 0, err
            assert "Conv2d(8, 8, kernel_size=(5, 5)" in out, out
        rc, out, _ = run("show", src, "layer1.0.conv1")
        assert rc == 0 and "Conv2d(8, 8, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))" in out, out
        assert os.listdir(d) == ["m.onnx"], os.listdir(d)


@case("OpenMP's idle workers spin briefly unless the environment says otherwise")
def _():
    # libgomp reports its settings (OMP_DISPLAY_ENV) as it read them, before main runs
    def spin(**env):
        e = dict(os.environ, OMP_DISPLAY_ENV="verbose")
        for k in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY"):
            e.pop(k, None)
        e.update(env)
        p = subprocess.run([REMODEL, "run", model("tiny_resnet"), "--threads", "2"], capture_output=True,
                           text=True, timeout=120, env=e)
        assert p.returncode == 0, p.stderr
        if "OPENMP DISPLAY ENVIRONMENT" not in p.stderr:
            return None  # oneDNN built on another threading runtime than libgomp
        return [ln.strip() for ln in p.stderr.splitlines() if ln.strip().startswith("GOMP_SPINCOUNT")]
    if spin() is None:
        return
    # 4,000 on a machine where nothing else is runnable, 1,000 beside anything runnable:
    # two busy loops are always runnable, so beside them it is 1,000
    assert spin() in (["GOMP_SPINCOUNT = '4000'"], ["GOMP_SPINCOUNT = '1000'"]), spin()
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        time.sleep(0.2)
        assert spin() == ["GOMP_SPINCOUNT = '1000'"], spin()
    finally:
        for b in busy:
            b.kill()
            b.wait()
    assert spin(GOMP_SPINCOUNT="7") == ["GOMP_SPINCOUNT = '7'"], spin(GOMP_SPINCOUNT="7")
    assert spin(OMP_WAIT_POLICY="active") not in (["GOMP_SPINCOUNT = '1000'"], ["GOMP_SPINCOUNT = '4000'"]), \
        spin(OMP_WAIT_POLICY="active")


T.finish()
