#!/usr/bin/env python3
"""`remodel check` against onnx's own checker: at least as strict, never stricter where
onnx accepts a model (except the deviations testdata/make_broken_models.py declares).

usage: test_check.py REMODEL TESTDATA_DIR

The expected verdicts are onnx.checker.check_model(m, full_check=True)'s (Debian's
python3-onnx), recorded by testdata/make_broken_models.py in
testdata/broken/manifest.json (the broken corpus) and testdata/broken/oracle_verdicts.tsv
(testdata/*.onnx, testdata/edits/, testdata/torchvision/, libonnx-testdata's node and
pytorch-converted models); onnxruntime (tests/ort) is the second witness for the
keep_initializers_as_inputs cases and for the models newer than that oracle. The test
recomputes no verdict with remodel. It prints the agreement counts at the end.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

REMODEL, TESTDATA = sys.argv[1], sys.argv[2]

from rmtest import Suite  # noqa: E402

T = Suite()
case = T.case
BROKEN = os.path.join(TESTDATA, "broken")
CONFORMANCE = "/usr/share/libonnx-testdata/data"
ORT_RUN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ort", "ort_run.js")


def check(path):
    p = subprocess.run([REMODEL, "check", path], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


with open(os.path.join(BROKEN, "manifest.json")) as f:
    MANIFEST = json.load(f)


def findings(out):
    """The finding lines of a check output (not the summary, not warnings)."""
    lines = out.strip().splitlines()[:-1]
    return [ln for ln in lines if ": warning: " not in ln]


@case("the broken corpus is what the brief asks: 40+ models the oracle rejects, valid odd ones too")
def _():
    rejected = [n for n, v in MANIFEST.items() if v["oracle"] == "rejected"]
    assert len(rejected) >= 40, len(rejected)
    cats = {v["category"] for v in MANIFEST.values()}
    for c in ("attribute", "opset", "count", "kiai", "type", "tensor", "structure", "subgraph", "valid"):
        assert c in cats, c
    assert sum(1 for v in MANIFEST.values() if v["category"] == "valid") >= 10


@case("broken corpus: exit 1 with a finding naming the node or tensor wherever the oracle rejects")
def _():
    bad = []
    for name, v in sorted(MANIFEST.items()):
        if v["remodel"] != "findings":
            continue
        rc, out, err = check(os.path.join(BROKEN, name + ".onnx"))
        lines = findings(out)
        if rc != 1 or not lines or err:
            bad.append(f"{name}: exit {rc}, {out.strip()!r} {err.strip()!r}")
        elif v["mention"] and not any(re.search(r"['/]%s['/ ]" % re.escape(v["mention"]), ln) for ln in lines):
            bad.append(f"{name}: no finding names {v['mention']!r}: {lines}")
        elif not all(ln.startswith(os.path.join(BROKEN, name + ".onnx") + ": ") for ln in lines):
            bad.append(f"{name}: a finding does not start with the file name: {lines}")
    assert not bad, "\n  " + "\n  ".join(bad)


@case("broken corpus: exit 0 on every model the oracle accepts (warnings allowed, no finding)")
def _():
    bad = []
    for name, v in sorted(MANIFEST.items()):
        if v["remodel"] != "clean":
            continue
        rc, out, err = check(os.path.join(BROKEN, name + ".onnx"))
        if rc != 0 or findings(out) or err:
            bad.append(f"{name}: exit {rc}: {out.strip()!r} {err.strip()!r}")
    assert not bad, "\n  " + "\n  ".join(bad)


@case("warnings, not errors: custom domain, experimental op, opset and IR newer than the schemas")
def _():
    for name, needle in (("ok_custom_domain_imported", "custom domain 'com.example'"),
                         ("ok_experimental_op", "ATen"),
                         ("ok_opset_far_future", "opset 99"),
                         ("ok_negative_dim_input", "dimension 1 is -3"),
                         ("opset18_reducemean_axes_input", "opset 18"),
                         ("ir9_model", "ir_version 9")):
        rc, out, _ = check(os.path.join(BROKEN, name + ".onnx"))
        warns = [ln for ln in out.splitlines() if ": warning: " in ln]
        assert rc == 0 and len(warns) == 1 and needle in warns[0], (name, out)
    # a known non-ONNX domain (onnxruntime's) is not warned about
    rc, out, _ = check(os.path.join(BROKEN, "ok_microsoft_domain.onnx"))
    assert rc == 0 and "warning" not in out, out


def ort_loads(path, work):
    """(ok, message): does onnxruntime load and run the model on a zero input x?"""
    import numpy as np
    x = os.path.join(work, "x.npy")
    np.save(x, np.zeros((1, 3, 8, 8), np.float32))
    p = subprocess.run(["node", ORT_RUN, path, os.path.join(work, "out"), f"x={x}"],
                       capture_output=True, text=True, timeout=120)
    return p.returncode == 0, p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""


@case("deviations: the 'newer' models onnx 1.12 refuses load and run in onnxruntime 1.30")
def _():
    assert os.path.isdir(os.path.join(os.path.dirname(ORT_RUN), "node_modules", "onnxruntime-node")), \
        "onnxruntime is not installed: run scripts/setup.sh"
    newer = [n for n, v in MANIFEST.items() if v["deviation"] and v["deviation"]["kind"] == "newer"]
    assert newer
    with tempfile.TemporaryDirectory() as d:
        for name in newer:
            ok, msg = ort_loads(os.path.join(BROKEN, name + ".onnx"), d)
            assert ok, f"{name}: onnxruntime refuses it: {msg}"


@case("keep_initializers_as_inputs mismatches: onnxruntime refuses them too")
def _():
    kiai = [n for n in MANIFEST if n.startswith("kiai_")]
    assert len(kiai) >= 4
    with tempfile.TemporaryDirectory() as d:
        for name in kiai:
            ok, msg = ort_loads(os.path.join(BROKEN, name + ".onnx"), d)
            assert not ok and "initializer" in msg, f"{name}: onnxruntime: {ok} {msg}"
        ok, msg = ort_loads(os.path.join(BROKEN, "ok_kiai_consistent.onnx"), d)
        assert ok, msg


@case("src/graph/rm_onnx_schemas.[ch] are what tools/gen_onnx_schemas.py writes (not edited by hand)")
def _():
    top = os.path.dirname(os.path.abspath(TESTDATA))
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.run([sys.executable, os.path.join(top, "tools", "gen_onnx_schemas.py"), d],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        for name in ("rm_onnx_schemas.c", "rm_onnx_schemas.h"):
            with open(os.path.join(d, name), "rb") as a, open(os.path.join(top, "src", "graph", name), "rb") as b:
                assert a.read() == b.read(), f"src/graph/{name} differs from the generator's output"


def verdicts():
    rows = []
    with open(os.path.join(BROKEN, "oracle_verdicts.tsv")) as f:
        for line in f:
            if line.startswith("#"):
                continue
            rel, verdict, _msg = line.rstrip("\n").split("\t", 2)
            if rel.startswith("libonnx-testdata:"):
                path = os.path.join(CONFORMANCE, rel[len("libonnx-testdata:"):])
            else:
                path = os.path.join(TESTDATA, rel)
            rows.append((rel, path, verdict))
    return rows


AGREE = {}


@case("testdata and libonnx-testdata: exit 0 where the oracle accepts, 1 where it rejects")
def _():
    rows = verdicts()
    assert len(rows) > 1000, len(rows)
    bad = []
    n = {"accepted": 0, "rejected": 0}
    for rel, path, verdict in rows:
        if not os.path.exists(path):
            bad.append(f"{rel}: missing (libonnx-testdata not installed?)")
            continue
        rc, out, err = check(path)
        n[verdict] += 1
        want = 0 if verdict == "accepted" else 1
        if rc != want:
            bad.append(f"{rel}: oracle {verdict}, remodel exit {rc}: {(out + err).strip().splitlines()[:2]}")
    AGREE["others"] = (len(rows), n["rejected"], len(rows) - len(bad))
    assert not bad, "\n  " + "\n  ".join(bad[:30])


@case("every testdata model and every conformance model is in the oracle's record")
def _():
    import glob
    recorded = {rel for rel, _, _ in verdicts()}
    for p in glob.glob(os.path.join(TESTDATA, "*.onnx")) + glob.glob(os.path.join(TESTDATA, "edits", "*.onnx")):
        assert os.path.relpath(p, TESTDATA) in recorded, p
    for sub in ("node", "pytorch-converted"):
        for p in glob.glob(os.path.join(CONFORMANCE, sub, "*", "model.onnx")):
            assert "libonnx-testdata:" + os.path.relpath(p, CONFORMANCE) in recorded, p


n_broken = len(MANIFEST)
n_rej = sum(1 for v in MANIFEST.values() if v["oracle"] == "rejected")
n_dev = sum(1 for v in MANIFEST.values() if v["deviation"])
print(f"broken corpus: {n_broken} models, {n_rej} rejected by the oracle, "
      f"{n_broken - n_dev} judged as the oracle does, {n_dev} declared deviations")
if "others" in AGREE:
    t, r, a = AGREE["others"]
    print(f"testdata + libonnx-testdata: {t} models, {r} rejected by the oracle, {a} agree")
T.finish()
