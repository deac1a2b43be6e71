#!/usr/bin/python3
"""Run remodel over the "bring your own model" corpus and tell ok / refused / WRONG.

usage: corpus_check.py REMODEL CORPUS_DIR [--json OUT] [--only REGEX] [--regenerate [--quick]]
                       [--keep] [--timeout S]

CORPUS_DIR holds manifest.json and the models it lists: either a folder written by
`testdata/corpus/make_corpus.py --out DIR` (every model runnable) or testdata/corpus itself
(the shipped models; the others have only a weight-free skeleton, on which only `show` runs).
--regenerate first runs make_corpus.py --out CORPUS_DIR (with --quick: its quick subset),
which keeps models already there with the expected bytes.

For every model of the manifest:

  ort      onnxruntime (tests/ort/ort_run.js) on the reference input agrees with the reference
           (PyTorch's output, or onnxruntime's for the few files torch exports lossily): a
           check of the corpus itself, not of remodel
  run      `remodel run -i` the reference input (with `--input-shape` when the model has
           dynamic dims and remodel has that flag) matches the reference to 1e-4 of the
           output's scale (max|reference|)
  show     `remodel show --json`: every Conv node sits in exactly one Conv module, at a path of
           its own
  prune    `remodel prune --global --ratio 0.3 -o X`
  prune-nv the same with --no-verify, for the models `run` refuses (remodel cannot verify
           them): what it writes must still load and run in onnxruntime
  replace  `remodel replace` of the middle Conv1d/2d/3d module (in `show --json` order) by its
           own repr
           (same shape, weights kept), which must leave the output unchanged
  fold-bn  `remodel fold-bn` (models with BatchNormalization), which must leave the output
           unchanged

Every model an edit writes is loaded by onnxruntime and run on the reference input next to
`remodel run`; they must agree to 1e-4 of the output's scale, and for replace and fold-bn
also agree with the reference. A cell is `ok`, `refused: <remodel's one line>` (allowed), or
WRONG (a written model onnxruntime rejects, remodel and onnxruntime disagree, a function-
preserving edit that changes the output, `run` disagreeing with the reference, a crash, a
hang). `show` reports `partial` when some Conv has no module path of its own. Exit 1 when
any cell is WRONG, 0 otherwise; refusals and partial trees are listed, not failures.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ORT_RUN = os.path.join(HERE, "ort", "ort_run.js")
MAKE_CORPUS = os.path.join(os.path.dirname(HERE), "testdata", "corpus", "make_corpus.py")
TOL = 1e-4
COMMANDS = ["ort", "run", "show", "prune", "prune-nv", "replace", "fold-bn"]


class Cell:
    """One model x command result."""

    def __init__(self, status, detail="", err=None):
        self.status, self.detail, self.err = status, detail, err

    def text(self):
        return self.status if not self.detail else f"{self.status}: {self.detail}"

    def json(self):
        d = {"status": self.status, "detail": self.detail}
        if self.err is not None:
            d["err"] = self.err
        return d


def ok(detail="", err=None):
    return Cell("ok", detail, err)


def refused(detail):
    return Cell("refused", detail)


def wrong(detail, err=None):
    return Cell("WRONG", detail, err)


def last_line(text):
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "(no message)"


class Runner:
    def __init__(self, remodel, timeout):
        self.remodel, self.timeout = remodel, timeout
        h = subprocess.run([remodel, "run", "--help"], capture_output=True, text=True)
        self.has_input_shape = "--input-shape" in h.stdout + h.stderr

    def remodel_cmd(self, *args):
        """(returncode, stdout, stderr); returncode None on a timeout."""
        try:
            p = subprocess.run([self.remodel, *args], capture_output=True, text=True,
                               timeout=self.timeout)
            return p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired:
            return None, "", f"timed out after {self.timeout} s"

    def ort(self, model, outdir, feed_name, npy):
        """onnxruntime's outputs as a list of arrays, or an error line."""
        try:
            p = subprocess.run(["node", ORT_RUN, model, outdir, f"{feed_name}={npy}"],
                               capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            return None, f"onnxruntime timed out after {self.timeout} s"
        if p.returncode:
            return None, re.sub(r"^ort_run: (Load model from \S+ failed:)?", "",
                                last_line(p.stderr))
        outs = []
        k = 0
        while os.path.exists(os.path.join(outdir, f"output_{k}.npy")):
            outs.append(np.load(os.path.join(outdir, f"output_{k}.npy")))
            k += 1
        return outs, None


def rel_err(got, want):
    """max|got - want| / max|want| over all outputs; a string when the shapes differ."""
    if len(got) != len(want):
        return f"{len(got)} outputs, expected {len(want)}"
    worst = 0.0
    for k, (a, b) in enumerate(zip(got, want)):
        if tuple(a.shape) != tuple(b.shape):
            return f"output {k}: shape {list(a.shape)}, expected {list(b.shape)}"
        if not np.all(np.isfinite(a)):
            return f"output {k}: non-finite values"
        worst = max(worst, float(np.abs(a.astype(np.float64) - b).max() /
                                 max(float(np.abs(b).max()), 1e-30)))
    return worst


def crashed(rc):
    return rc is None or rc < 0 or rc not in (0, 1, 2)


def crash_cell(rc, err):
    if rc is None:
        return wrong("hang: " + err)
    return wrong(f"exit {rc} (crash): {last_line(err)}")


def conv_labels(path):
    """remodel's labels (name, or '<op> #<index>') of the Conv/ConvTranspose nodes."""
    g = onnx.load(path, load_external_data=False).graph
    return [n.name if n.name else f"{n.op_type} #{i}" for i, n in enumerate(g.node)
            if n.op_type in ("Conv", "ConvTranspose")]


def walk(module):
    yield module
    for c in module.get("children", []):
        yield from walk(c)


def check_tree(tree, convs):
    """(Cell, middle conv module or None) for `show --json` against the model's Conv nodes."""
    modules = list(walk(tree["module"]))
    owners = {c: [] for c in convs}
    for m in modules:
        for n in m.get("nodes", []):
            if n in owners:
                owners[n].append(m)
    placed, problems = 0, []
    per_module = {}
    for c, ms in owners.items():
        conv_mods = [m for m in ms if m.get("type", "").startswith("Conv") and "args" in m]
        if len(conv_mods) == 1 and len(ms) == 1:
            placed += 1
            per_module.setdefault(conv_mods[0]["path"], []).append(c)
        elif not ms:
            problems.append(f"{c} unplaced")
        else:
            problems.append(f"{c} in {', '.join(repr(m['path']) + ':' + m.get('type', '?') for m in ms)}")
    shared = {p: cs for p, cs in per_module.items() if len(cs) > 1}
    unique = placed - sum(len(cs) for cs in shared.values())
    sources = {}
    for m in modules:
        s = m.get("source")
        if s:
            sources[s] = sources.get(s, 0) + 1
    src = (" (sources: " + ", ".join(f"{k} {v}" for k, v in sorted(sources.items())) + ")"
           if sources else "")
    unknown = sum(1 for m in modules if m.get("type_known") is False and m.get("path"))
    convs_nd = [m for m in modules if m.get("type") in ("Conv1d", "Conv2d", "Conv3d") and "repr" in m]
    middle = convs_nd[len(convs_nd) // 2] if convs_nd else None
    n = len(convs)
    if unique == n:
        return ok(f"{n}/{n} convs at their own path, {unknown} modules of unknown type{src}"), middle
    detail = f"{unique}/{n} convs at their own path"
    if shared:
        p, cs = next(iter(shared.items()))
        detail += f"; {len(cs)} convs share {p!r}"
    if problems:
        detail += f"; {len(problems)} not in one Conv module (first: {problems[0]})"
    return Cell("partial", detail + src), middle


def count_params(path):
    g = onnx.load(path, load_external_data=False).graph
    total = sum(int(np.prod(t.dims)) for t in g.initializer)
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    total += int(np.prod(a.t.dims))
    return total


def check_model(r, e, corpus, work):
    """Cells for one manifest entry."""
    cells = {}
    path = os.path.join(corpus, e["file"]) if e.get("file") else None
    if "refused" in e:
        return {c: Cell("n/a", "the exporter refused: " + e["refused"]) for c in COMMANDS}
    if not path or not os.path.exists(path):
        skel = os.path.join(corpus, e["skeleton"]) if e.get("skeleton") else None
        for c in COMMANDS:
            cells[c] = Cell("skip", "not generated (make_corpus.py --out)")
        if skel and os.path.exists(skel):
            rc, out, err = r.remodel_cmd("show", skel, "--json")
            if crashed(rc):
                cells["show"] = crash_cell(rc, err)
            elif rc:
                cells["show"] = refused(last_line(err))
            else:
                cell, _ = check_tree(json.loads(out), conv_labels(skel))
                cell.detail += " [skeleton]"
                cells["show"] = cell
        return cells

    feed = e["input"]["name"]
    x_pb = os.path.join(corpus, e["reference_files"]["input"])
    x = numpy_helper.to_array(onnx.load_tensor(x_pb))
    x_npy = os.path.join(work, "input.npy")
    np.save(x_npy, x)
    refs = [numpy_helper.to_array(onnx.load_tensor(os.path.join(corpus, p)))
            for p in e["reference_files"]["outputs"]]
    dyn = e.get("dynamic", False)
    shape_args = []
    if dyn and r.has_input_shape:
        shape_args = ["--input-shape", f"{feed}=" + ",".join(str(d) for d in x.shape)]
    needs_shape = dyn and not r.has_input_shape

    def refusal(err):
        # a dynamic model on a remodel without --input-shape: the refusal may be for that
        return refused(last_line(err) + (" [needs --input-shape]" if needs_shape else ""))

    # ort: the corpus itself
    outs, err = r.ort(path, os.path.join(work, "ort0"), feed, x_npy)
    if outs is None:
        cells["ort"] = Cell("BADREF", "onnxruntime refuses the original: " + err)
        ort_ok = False
    else:
        d = rel_err(outs, refs)
        ort_ok = not isinstance(d, str) and d <= TOL
        cells["ort"] = (ok(f"{d:.1e}", d) if ort_ok else
                        Cell("BADREF", f"onnxruntime vs reference: {d if isinstance(d, str) else f'{d:.2e}'}"))

    def remodel_run(model, tag):
        """remodel's outputs for model on the reference input: (outputs, None, rc) or
        (None, error, rc)."""
        out_dir = os.path.join(work, "run_" + tag)
        rc, _, err = r.remodel_cmd("run", model, "-i", f"{feed}={x_pb}", "-o", out_dir,
                                   *shape_args)
        if rc != 0:
            return None, err, rc
        got, k = [], 0
        while os.path.exists(os.path.join(out_dir, f"output_{k}.pb")):
            got.append(numpy_helper.to_array(onnx.load_tensor(
                os.path.join(out_dir, f"output_{k}.pb"))))
            k += 1
        return got, None, rc

    # run
    got, err, rc = remodel_run(path, "orig")
    run_ok = False
    if crashed(rc):
        cells["run"] = crash_cell(rc, err)
    elif got is None:
        cells["run"] = refusal(err)
    else:
        d = rel_err(got, refs)
        if isinstance(d, str) or d > TOL:
            cells["run"] = wrong(f"vs reference: {d if isinstance(d, str) else f'{d:.2e}'}",
                                 None if isinstance(d, str) else d)
        else:
            run_ok = True
            cells["run"] = ok(f"{d:.1e}", d)

    # show
    rc, out, err = r.remodel_cmd("show", path, "--json")
    middle = None
    if crashed(rc):
        cells["show"] = crash_cell(rc, err)
    elif rc:
        cells["show"] = refused(last_line(err))
    else:
        try:
            cells["show"], middle = check_tree(json.loads(out), conv_labels(path))
        except (ValueError, KeyError) as ex:
            cells["show"] = wrong(f"show --json is not the documented JSON: {ex}")

    def edited(cmd, args, preserves):
        out_path = os.path.join(work, cmd + ".onnx")
        rc, stdout, err = r.remodel_cmd(cmd, path, *args, "-o", out_path, *shape_args)
        if crashed(rc):
            return crash_cell(rc, err)
        if rc != 0:
            if os.path.exists(out_path):
                return wrong(f"exit {rc} but wrote {os.path.basename(out_path)}")
            return refusal(err)
        if not os.path.exists(out_path):
            return wrong("exit 0 but no file written")
        theirs, oerr = r.ort(out_path, os.path.join(work, "ort_" + cmd), feed, x_npy)
        if theirs is None:
            return wrong("onnxruntime rejects the written model: " + oerr)
        ours, rerr, rrc = remodel_run(out_path, cmd)
        if ours is None:
            if crashed(rrc):
                return crash_cell(rrc, rerr)
            if run_ok:
                return wrong("remodel cannot run the model it wrote: " + last_line(rerr))
            return Cell("unverified", "written; remodel run refuses it as it refuses the "
                        "original: " + last_line(rerr))
        d = rel_err(ours, theirs)
        if isinstance(d, str) or d > TOL:
            return wrong(f"remodel vs onnxruntime on the written model: "
                         f"{d if isinstance(d, str) else f'{d:.2e}'}",
                         None if isinstance(d, str) else d)
        note = f"{d:.1e} vs onnxruntime"
        if preserves and ort_ok:
            p = rel_err(theirs, refs)
            if isinstance(p, str) or p > TOL:
                return wrong(f"the output changed: {p if isinstance(p, str) else f'{p:.2e}'} "
                             f"of scale vs the reference (remodel and onnxruntime agree, {d:.1e})",
                             None if isinstance(p, str) else p)
            note += f", {p:.1e} vs reference"
        if cmd == "prune":
            before, after = count_params(path), count_params(out_path)
            note += f", params {before} -> {after}"
            if after == before:
                note += " (nothing pruned)"
        return ok(note, d)

    cells["prune"] = edited("prune", ["--global", "--ratio", "0.3"], False)
    if cells["run"].status == "refused":
        # remodel cannot run the model, so it cannot verify an edit: what does it write
        # when told not to?
        out_path = os.path.join(work, "prune-nv.onnx")
        rc, _, err = r.remodel_cmd("prune", path, "--global", "--ratio", "0.3", "--no-verify",
                                   "-o", out_path, *shape_args)
        if crashed(rc):
            cells["prune-nv"] = crash_cell(rc, err)
        elif rc:
            cells["prune-nv"] = refusal(err)
        elif not os.path.exists(out_path):
            cells["prune-nv"] = wrong("exit 0 but no file written")
        else:
            theirs, oerr = r.ort(out_path, os.path.join(work, "ort_nv"), feed, x_npy)
            if theirs is None:
                cells["prune-nv"] = wrong("onnxruntime rejects the model written with "
                                          "--no-verify: " + oerr)
            elif [t.shape for t in theirs] != [t.shape for t in refs]:
                cells["prune-nv"] = wrong("the model written with --no-verify has outputs "
                                          f"{[list(t.shape) for t in theirs]}, the original "
                                          f"{[list(t.shape) for t in refs]}")
            else:
                cells["prune-nv"] = ok("onnxruntime runs the model written with --no-verify "
                                       f"(params {count_params(path)} -> "
                                       f"{count_params(out_path)}); unverifiable by remodel")
    else:
        cells["prune-nv"] = Cell("n/a", "remodel runs the model: the verified prune applies")
    if middle is None:
        cells["replace"] = Cell("skip", "no Conv1d/Conv2d/Conv3d module to address")
    else:
        cells["replace"] = edited("replace", [middle["path"], middle["repr"]], True)
        if cells["replace"].status in ("ok", "WRONG"):
            cells["replace"].detail = f"{middle['path']}: {cells['replace'].detail}"
    if e.get("ops", {}).get("BatchNormalization"):
        cells["fold-bn"] = edited("fold-bn", [], True)
    else:
        cells["fold-bn"] = Cell("n/a", "no BatchNormalization")
    return cells


def short(cell):
    """A cell as the table shows it."""
    if cell.status == "ok" and cell.err is not None:
        return "ok"
    if cell.status == "partial":
        m = re.match(r"(\d+/\d+)", cell.detail)
        return "partial " + (m.group(1) if m else "")
    if cell.status == "ok":
        m = re.match(r"(\d+/\d+) convs", cell.detail)
        return "ok " + m.group(1) if m else "ok"
    return cell.status


def table(rows):
    """model x command, one line per model."""
    w = [8, 10, 14, 10, 10, 10, 10]
    head = f"{'model':<42}" + "".join(f" {c:<{k}}" for c, k in zip(COMMANDS, w))
    out = [head, "-" * len(head)]
    for name, cells in rows:
        line = f"{name:<42}" + "".join(f" {short(cells[c]) if c in cells else '':<{k}}"
                                        for c, k in zip(COMMANDS, w))
        out.append(line.rstrip())
    return "\n".join(out)


def reason(text):
    """A refusal's reason without the file and node names, to group refusals."""
    t = re.sub(r"^remodel: ", "", text)
    t = re.sub(r"(verification failed, nothing written: )?\S+\.onnx: ", "", t)
    t = re.sub(r"'[^']*'", "'…'", t)
    t = re.sub(r"^(prune|fold-bn|replace [^:]*): [\w.\[\]/-]+: ", r"\1: ", t)
    t = re.sub(r"\b\d+\b", "N", t)
    return t[:140]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("remodel")
    ap.add_argument("corpus")
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON")
    ap.add_argument("--only", metavar="REGEX", help="only models whose name matches")
    ap.add_argument("--regenerate", action="store_true",
                    help="first run make_corpus.py --out CORPUS (kept models are reused)")
    ap.add_argument("--quick", action="store_true", help="with --regenerate: the quick subset")
    ap.add_argument("--keep", metavar="DIR", help="keep every written model and output in DIR")
    ap.add_argument("--timeout", type=float, default=600, help="per command, seconds (600)")
    ap.add_argument("--full", action="store_true", help="print every cell's full text")
    args = ap.parse_args()

    t0 = time.time()
    if args.regenerate:
        cmd = [sys.executable, MAKE_CORPUS, "--out", args.corpus]
        if args.quick:
            cmd.append("--quick")
        if args.only:
            cmd += ["--only", args.only]
        p = subprocess.run(cmd)
        if p.returncode:
            print(f"corpus_check: make_corpus.py failed (exit {p.returncode})", file=sys.stderr)
            return 2
    if not os.path.isdir(os.path.join(HERE, "ort", "node_modules", "onnxruntime-node")):
        print("corpus_check: onnxruntime is not installed in tests/ort: run scripts/setup.sh",
              file=sys.stderr)
        return 2
    with open(os.path.join(args.corpus, "manifest.json")) as f:
        manifest = json.load(f)
    r = Runner(os.path.abspath(args.remodel), args.timeout)
    t_gen = time.time() - t0
    rows, results = [], []
    todo = [e for e in manifest["models"] if not args.only or re.search(args.only, e["name"])]
    total = len(todo)
    for e in todo:
        t1 = time.time()
        work = tempfile.mkdtemp(prefix="corpus-")
        try:
            cells = check_model(r, e, args.corpus, work)
        finally:
            if args.keep:
                dst = os.path.join(args.keep, e["name"])
                shutil.rmtree(dst, ignore_errors=True)
                shutil.copytree(work, dst)
            shutil.rmtree(work, ignore_errors=True)
        rows.append((e["name"], cells))
        results.append({"name": e["name"], "family": e.get("family"), "opset": e.get("opset"),
                        "variant": e.get("variant"), "style": e.get("style"),
                        "seconds": round(time.time() - t1, 2),
                        "cells": {c: cells[c].json() for c in cells}})
        print(f"[{len(rows)}/{total}] {e['name']} {time.time() - t1:.1f} s: " +
              " ".join(f"{c}={short(cells[c])}" for c in COMMANDS if c in cells),
              file=sys.stderr, flush=True)
        if args.full:
            print(e["name"])
            for c in COMMANDS:
                print(f"  {c:<8} {cells[c].text()}")
        sys.stdout.flush()

    print(table(rows))
    counts = {}
    for _, cells in rows:
        for c in cells.values():
            counts[c.status] = counts.get(c.status, 0) + 1
    by_reason = {}
    for n, cells in rows:
        for c in COMMANDS:
            if c in cells and cells[c].status == "refused":
                by_reason.setdefault(reason(cells[c].detail), []).append(f"{n} {c}")
    print(f"\nrefusals by reason ({sum(len(v) for v in by_reason.values())} cells):")
    for k, v in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(v):4d}  {k}")
    others = [(n, c, cells[c].text()) for n, cells in rows for c in COMMANDS
              if c in cells and cells[c].status in ("partial", "BADREF", "unverified")]
    if others:
        print("\npartial trees, corpus problems, unverifiable edits:")
        for n, c, t in others:
            print(f"  {n} {c}: {t}")
    wrongs = [(n, c, cells[c].text()) for n, cells in rows for c in COMMANDS
              if c in cells and cells[c].status == "WRONG"]
    if wrongs:
        print(f"\n{len(wrongs)} WRONG:")
        for n, c, t in wrongs:
            print(f"  {n} {c}: {t}")
    print()
    print(f"{len(rows)} models; cells: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print(f"remodel {'has' if r.has_input_shape else 'has no'} --input-shape; "
          f"{time.time() - t0:.0f} s ({t_gen:.0f} s regenerating)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"remodel": os.path.abspath(args.remodel),
                       "has_input_shape": r.has_input_shape, "tolerance": TOL,
                       "seconds": round(time.time() - t0, 1), "counts": counts,
                       "models": results}, f, indent=1)
            f.write("\n")
    return 1 if wrongs else 0


if __name__ == "__main__":
    sys.exit(main())
