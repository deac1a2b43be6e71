#!/usr/bin/env python3
"""Large models (issue 17, "scale with size"): tensor bytes are not copied on load (they
stay in the file's read-only mapping), the mapping survives a save over the file it
maps, saving stays byte-faithful for raw_data of every length wherever a TensorProto
sits, hostile raw_data lengths are still refused, and the Linear weight slicing after
Flatten matches numpy. Expected values come from onnx / numpy, never from remodel.

usage: test_size.py REMODEL TESTDATA_DIR
"""

import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from rmtest import varint

REMODEL, TESTDATA = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
passed = failed = 0


def run(*args, timeout=120):
    # the edit history's time is fixed: two runs of one edit a second apart (a loaded
    # machine) wrote different bytes, and the save-over-input case compares them
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
    p = subprocess.run([REMODEL, *args], capture_output=True, timeout=timeout, env=env)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def peak_rss_kb(*args):
    """Peak resident set (KB, the kernel's ru_maxrss) of one remodel run, stdout and
    stderr to /dev/null. It is at least this process's own size at the spawn (the kernel
    counts the memory exec replaced): keep this process small."""
    acts = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]
    pid = os.posix_spawn(REMODEL, [REMODEL, *args], os.environ, file_actions=acts)
    _, status, usage = os.wait4(pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    assert rc == 0, f"remodel {' '.join(args)}: exit {rc}"
    return usage.ru_maxrss


def case(name):
    def wrap(fn):
        global passed, failed
        try:
            fn()
            passed += 1
            print(f"ok   {name}")
        except Exception as e:  # noqa: BLE001 - any exception fails this case, not the run
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}")
        return fn
    return wrap


def one_error_line(rc, err, *needles):
    assert rc == 2, f"exit {rc}, expected 2 (stderr: {err!r})"
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"


def model(name):
    return os.path.join(TESTDATA, name + ".onnx")


def big_linear(path, n):
    """Input [1, n] -> Gemm with an n x n float32 weight (4 n^2 bytes in raw_data)."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((n, n), dtype=np.float32), "fc.weight")
    b = numpy_helper.from_array(np.zeros(n, dtype=np.float32), "fc.bias")
    g = helper.make_graph([helper.make_node("Gemm", ["x", "fc.weight", "fc.bias"], ["y"], name="fc", transB=1)],
                          "big", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])], [w, b])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)


def made_apart(fn, *args):
    """fn(*args) run by another Python process: a child's ru_maxrss starts from the size
    of the process that spawned it, so this one never holds large arrays."""
    code = f"exec(open({__file__!r}).read().split('@' + 'case')[0]); {fn}(*{args!r})"
    here = os.path.dirname(os.path.abspath(__file__))  # where rmtest is, for the child's imports
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])))
    subprocess.run([sys.executable, "-c", code, REMODEL, TESTDATA], check=True, env=env)


def big_conv(path, misalign):
    """A 1x1 Conv with a 4096 x 4096 float32 weight (64 MB) whose raw_data starts at a
    file offset that is a multiple of 16 (misalign False) or not (True)."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4096, 4096, 1, 1), dtype=np.float32)
    key = bytes([0x4A]) + varint(w.nbytes)  # raw_data: field 9, length-delimited
    for name in ("w" + "x" * k for k in range(32)):
        g = helper.make_graph([helper.make_node("Conv", ["x", name], ["y"], name="conv")], "c",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4096, 2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4096, 2, 2])],
                              [numpy_helper.from_array(w, name)])
        data = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
        if ((data.find(key) + len(key)) % 16 != 0) == misalign:
            with open(path, "wb") as f:
                f.write(data)
            return
    raise AssertionError("no tensor name gave the alignment wanted")


@case("info on a model of 64 MB of embedded weights stays far below the file size in memory (no copy)")
def _():
    with tempfile.TemporaryDirectory() as d:
        big, small = os.path.join(d, "big.onnx"), os.path.join(d, "small.onnx")
        made_apart("big_linear", big, 4096)  # 64 MB
        made_apart("big_linear", small, 64)  # 16 KB: what the process costs without the weights
        size_kb = os.path.getsize(big) >> 10
        base = peak_rss_kb("info", small)
        peak = peak_rss_kb("info", big)
        # copying the weights (as protobuf-c's unpack does) costs the whole file at least
        assert peak < base + size_kb // 4, f"info peaked at {peak} KB ({base} KB for a tiny model; file {size_kb} KB)"


@case("save over the file being read (-o the same path): the old file stays mapped, the bytes come out the same")
def _():
    with tempfile.TemporaryDirectory() as d:
        a, b = os.path.join(d, "a.onnx"), os.path.join(d, "b.onnx")
        shutil.copy(model("tiny_resnet"), a)
        original = open(a, "rb").read()
        rc, _, err = run("save", a, "-o", a)
        assert rc == 0, err
        assert open(a, "rb").read() == original, "save over the input changed its bytes"
        # an edit written over its own input equals the same edit written elsewhere
        args = ["layer1.0.conv1", "--ratio", "0.5", "--no-verify"]
        rc, _, err = run("prune", a, *args, "-o", b)
        assert rc == 0, err
        rc, _, err = run("prune", a, *args, "-o", a)
        assert rc == 0, err
        assert open(a, "rb").read() == open(b, "rb").read(), "prune over its input differs from prune elsewhere"
        onnx.checker.check_model(a, full_check=True)


@case("a model with external data saves inline with the same tensors (bytes copied file to file)")
def _():
    with tempfile.TemporaryDirectory() as d:
        a, b = os.path.join(d, "a.onnx"), os.path.join(d, "b.onnx")
        m = onnx.load(model("tiny_resnet"))
        want = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
        onnx.save(m, a, save_as_external_data=True, all_tensors_to_one_file=True, location="w.bin",
                  size_threshold=64)
        rc, _, err = run("save", a, "-o", b)
        assert rc == 0, err
        out = onnx.load(b)
        assert not any(t.data_location == TensorProto.EXTERNAL for t in out.graph.initializer)
        got = {t.name: numpy_helper.to_array(t) for t in out.graph.initializer}
        assert want.keys() == got.keys()
        for k in want:
            assert np.array_equal(want[k], got[k]), k
        assert open(b, "rb").read() == open(model("tiny_resnet"), "rb").read(), "not the inline file again"


def raw_tensor(name, nbytes):
    """A uint8 tensor of nbytes bytes (raw_data of exactly that length)."""
    a = (np.arange(nbytes, dtype=np.uint32) * 37 % 251).astype(np.uint8)
    return numpy_helper.from_array(a, name)


def every_place_model(path):
    """raw_data of 0, 1, 7, 8, 9, 16 and 4099 bytes as initializers, as Constant values in
    the graph and inside an If's branches (with initializers there too)."""
    sizes = (0, 1, 7, 8, 9, 16, 4099)
    inits = [raw_tensor(f"w{n}", n) for n in sizes]
    consts = [helper.make_node("Constant", [], [f"c{n}"], value=raw_tensor(f"cv{n}", n)) for n in sizes]

    def branch(tag):
        t = raw_tensor(f"{tag}_init", 8)
        return helper.make_graph(
            [helper.make_node("Constant", [], [f"{tag}_c"], value=raw_tensor(f"{tag}_v", 12)),
             helper.make_node("Identity", [f"{tag}_init"], [f"{tag}_out"])], tag, [],
            [helper.make_tensor_value_info(f"{tag}_out", TensorProto.UINT8, [8])], [t])

    cond = numpy_helper.from_array(np.array(True), "cond")
    nodes = consts + [helper.make_node("If", ["cond"], ["y"], then_branch=branch("then"),
                                       else_branch=branch("else"))]
    g = helper.make_graph(nodes, "places", [], [helper.make_tensor_value_info("y", TensorProto.UINT8, [8])],
                          inits + [cond])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(m, path)
    return m


def all_tensors(m):
    out = {}

    def graph(g):
        for t in g.initializer:
            out[t.name] = numpy_helper.to_array(t)
        for n in g.node:
            for a in n.attribute:
                if a.HasField("t"):
                    out[a.t.name] = numpy_helper.to_array(a.t)
                if a.HasField("g"):
                    graph(a.g)
    graph(m.graph)
    return out


@case("raw_data of every length, in initializers, Constant values and subgraphs, saves byte-identical")
def _():
    with tempfile.TemporaryDirectory() as d:
        a, b = os.path.join(d, "a.onnx"), os.path.join(d, "b.onnx")
        m = every_place_model(a)
        rc, _, err = run("save", a, "-o", b)
        assert rc == 0, err
        assert open(a, "rb").read() == open(b, "rb").read(), "save changed the bytes"
        want, got = all_tensors(m), all_tensors(onnx.load(b))
        assert want.keys() == got.keys()
        for k in want:
            assert np.array_equal(want[k], got[k]), k


@case("a raw_data cut short (truncated file) or longer than its tensor (inside the file) exits 2 in one line")
def _():
    with tempfile.TemporaryDirectory() as d:
        a = os.path.join(d, "a.onnx")
        big_linear(a, 64)
        data = open(a, "rb").read()
        cut = os.path.join(d, "cut.onnx")
        with open(cut, "wb") as f:
            f.write(data[:len(data) * 2 // 3])  # in the middle of fc.weight's raw_data
        for cmd in ("info", "save"):
            extra = ["-o", os.path.join(d, "o.onnx")] if cmd == "save" else []
            rc, _, err = run(cmd, cut, *extra)
            one_error_line(rc, err, "cut.onnx", "truncated")
            assert not os.path.exists(os.path.join(d, "o.onnx"))
        # the weight's raw_data length made larger than its TensorProto (which is inside
        # the graph, which is inside the file): the length runs past its message
        w = numpy_helper.from_array(np.ones((64, 64), np.float32), "fc.weight").SerializeToString()
        key = bytes([0x4A]) + varint(64 * 64 * 4)  # field 9 (raw_data), wire type 2
        at = data.find(key)
        assert at > 0 and w.find(key) > 0
        bad = data[:at] + bytes([0x4A]) + varint(64 * 64 * 4 + 100) + data[at + len(key):]
        over = os.path.join(d, "over.onnx")
        with open(over, "wb") as f:
            f.write(bad + bytes(200))
        rc, _, err = run("info", over)
        one_error_line(rc, err, "over.onnx", "raw_data")


@case("run on a weight the engine copies (unaligned in the file) peaks no higher than on one it reads in place")
def _():
    with tempfile.TemporaryDirectory() as d:
        aligned, unaligned = os.path.join(d, "aligned.onnx"), os.path.join(d, "unaligned.onnx")
        made_apart("big_conv", aligned, False)
        made_apart("big_conv", unaligned, True)
        size_kb = os.path.getsize(aligned) >> 10
        a, u = peak_rss_kb("run", aligned), peak_rss_kb("run", unaligned)
        # the file's pages of a tensor copied out whole are dropped: without that, the copy
        # and the mapped bytes were both resident (64 MB more here)
        assert u < a + size_kb // 2, f"run peaked at {u} KB (unaligned) vs {a} KB (aligned); file {size_kb} KB"


def flatten_linear(path, tb):
    """Conv 3->6 (1x1) on 2x2, Flatten, Linear 24 -> 5 (weight [5, 24] with transB, else
    [24, 5])."""
    rng = np.random.default_rng(1)
    cw = rng.standard_normal((6, 3, 1, 1), dtype=np.float32)
    lw = rng.standard_normal((5, 24), dtype=np.float32)
    inits = [numpy_helper.from_array(cw, "conv.weight"),
             numpy_helper.from_array(lw if tb else lw.T.copy(), "fc.weight"),
             numpy_helper.from_array(np.zeros(5, np.float32), "fc.bias")]
    nodes = [helper.make_node("Conv", ["x", "conv.weight"], ["c"], name="/conv/Conv"),
             helper.make_node("Flatten", ["c"], ["f"], name="/Flatten", axis=1),
             helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["y"], name="/fc/Gemm", transB=tb)]
    g = helper.make_graph(nodes, "fl", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 2, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    return lw


@case("pruning channels before Flatten slices the Linear's features as numpy does ([out, in] and [in, out])")
def _():
    gone = [1, 4]
    keep = [c for c in range(6) if c not in gone]
    feats = [c * 4 + s for c in keep for s in range(4)]  # feature = channel * 4 + position
    for tb in (1, 0):
        with tempfile.TemporaryDirectory() as d:
            a, b = os.path.join(d, "a.onnx"), os.path.join(d, "b.onnx")
            lw = flatten_linear(a, tb)
            rc, _, err = run("prune", a, "conv", "--channels", ",".join(map(str, gone)), "--no-verify", "-o", b)
            assert rc == 0, err
            got = {t.name: numpy_helper.to_array(t) for t in onnx.load(b).graph.initializer}
            want = lw[:, feats]
            assert np.array_equal(got["fc.weight"], want if tb else want.T), f"transB={tb}"
            onnx.checker.check_model(b, full_check=True)


print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
