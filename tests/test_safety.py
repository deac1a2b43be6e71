#!/usr/bin/env python3
"""Hostile file systems and inputs against the remodel command line (issue 14): FIFOs,
devices and links where files belong, outputs that name the files being read, signals
during a save, memory limits, names that are not UTF-8. Every case states what must
hold: exit 2 and one line on stderr for bad input, never a hang, never a damaged file.
Standard library plus the onnx package (python3-onnx) to build models.

usage: test_safety.py REMODEL TESTDATA_DIR
"""

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile

REMODEL, TESTDATA = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
passed = failed = 0


def run(*args, cwd=None, timeout=60, preexec_fn=None):
    """Run remodel; a hang past timeout fails the case (the child is killed)."""
    try:
        p = subprocess.run([REMODEL, *args], capture_output=True, timeout=timeout, cwd=cwd,
                           preexec_fn=preexec_fn)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"remodel {' '.join(args)} hung for {timeout} s")
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


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


def one_error_line(rc, out, err, *needles):
    assert rc == 2, f"exit {rc}, expected 2 (stderr: {err!r})"
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"


def model(name):
    return os.path.join(TESTDATA, name + ".onnx")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def external_copy(src, dst, location):
    """src saved by the onnx package as dst with every tensor in `location` beside it."""
    import onnx
    onnx.save_model(onnx.load(src), dst, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=location, size_threshold=0)


# ---- inputs that are not regular files: refused at once, never waited on ----------------

@case("a FIFO as the model, as external data (also behind a link out of the folder), as -i: exit 2, no hang")
def _():
    with tempfile.TemporaryDirectory() as d:
        fifo = os.path.join(d, "fifo.onnx")
        os.mkfifo(fifo)
        for cmd in ("info", "check", "show", "run"):
            one_error_line(*run(cmd, fifo, timeout=20), "fifo.onnx", "not a regular file", "FIFO")

        sub = os.path.join(d, "m")
        os.makedirs(sub)
        ext = os.path.join(sub, "m.onnx")
        external_copy(model("tiny_resnet"), ext, "w.bin")
        os.unlink(os.path.join(sub, "w.bin"))
        os.mkfifo(os.path.join(sub, "w.bin"))
        one_error_line(*run("info", ext, timeout=20), "m.onnx", "w.bin", "not a regular file")

        # a link out of the model's folder is refused before it is opened
        os.unlink(os.path.join(sub, "w.bin"))
        os.symlink(fifo, os.path.join(sub, "w.bin"))
        one_error_line(*run("info", ext, timeout=20), "m.onnx", "outside the model's folder")

        one_error_line(*run("run", model("tiny_resnet"), "-i", f"input={fifo}", timeout=20),
                       "fifo.onnx", "not a regular file")
        one_error_line(*run("diff", model("tiny_resnet"), model("tiny_resnet"), "-i", f"input={fifo}",
                            timeout=20), "fifo.onnx", "not a regular file")


print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
