#!/usr/bin/python3
"""Every benchmark table of issue 17 in one run (called by `bench/engine.sh --tables`).

    /usr/bin/python3 bench/tables.py [--iters N] [--rounds R] [--cache DIR] [--only T,...]

Builds nothing itself: bench/engine.sh --tables builds build-release/src/remodel and passes
its path in RM_BENCH_REMODEL. The models are exported once by bench/make_bench_models.py
into CACHE (default build-release/bench-models; untrained torchvision models, nothing
downloaded). Every timing alternates remodel and onnxruntime (tests/ort/ort_run.js,
onnxruntime-node's CPU provider) round by round, so both see the same machine; a ratio is
remodel's median over onnxruntime's, taken in the same run. Tables (--only picks some):

  latency  the twelve exports at 1 and 2 threads: median of the rounds' medians, ratio
  load     resnet18 and efficientnet_b0 at 2 threads beside a CPU-bound busy loop, and two
           copies at once (two remodel processes, then two onnxruntime processes)
  verify   prune --global --ratio 0.3 with the default verification vs --no-verify (wall
           time); the floor of a verification: the edit without it plus the 8 forward
           passes it makes (4 samples x 2 models, at `run --bench --direct-conv`'s median
           latency: verification builds its plans without Winograd); peak RSS of prune
           with verify, of run, and of diff --layers against file sizes
  cold     whole-process `remodel run` once vs a node process that creates an onnxruntime
           session and runs once (node's start-up included)
  size     resnet18 (47 MB) and a VGG16 export (553 MB): save vs cp, prune --no-verify vs
           save, ms per MB, peak RSS of info (tensor bytes stay in the file's mapping), of
           run and of prune with verify against the file

The machine's load is printed first (uptime) and again at the end: figures taken on a
shared machine are only comparable within one run. No timing is asserted anywhere.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ORT = os.path.join(ROOT, "tests", "ort", "ort_run.js")
MODELS = ["resnet18", "resnet50", "mobilenet_v2", "squeezenet1_0", "densenet121", "googlenet",
          "efficientnet_b0", "shufflenet_v2_x1_0", "mnasnet0_5", "regnet_y_400mf", "resnet18-bn",
          "mobilenet_v2-bn"]


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def run_out(cmd):
    """Run cmd to completion: its stdout. Fails loudly."""
    p = subprocess.run(cmd, capture_output=True)
    if p.returncode != 0:
        sys.exit("failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), p.stderr.decode(errors="replace")[-2000:]))
    return p.stdout.decode(errors="replace")


def rss(cmd):
    """(wall seconds, peak RSS MB) of cmd, from its own rusage (os.wait4); MB are 10^6 bytes,
    as the file sizes the ratios divide by (ru_maxrss is in KiB: dividing it by 1024 gave
    MiB, which understated every ratio by 4.9%). Dirty pages are
    written out first, so that no command pays for the writeback of the file the one
    before it wrote (VGG16's prune measured 0.54-1.36 s after a save, 0.45-0.67 s so)."""
    os.sync()
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as errf:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errf)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            errf.seek(0)
            sys.exit("failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), errf.read().decode(errors="replace")[-2000:]))
    return wall, ru.ru_maxrss * 1024 / 1e6


def bench_remodel(r, model, threads, iters):
    out = run_out([r, "run", model, "--threads", str(threads), "--bench", str(iters), "--json"])
    return json.loads(out)["latency_ms"]["median"]


def bench_ort(model, threads, iters):
    out = run_out(["node", ORT, model, "--bench", str(iters), "--threads", str(threads)])
    return json.loads(out)["latency_ms"]["median"]


def med(xs):
    return statistics.median(xs)


def table_latency(a, r, cache):
    print("\n## latency: remodel vs onnxruntime, batch 1, %d runs x %d alternating rounds\n" % (a.iters, a.rounds))
    print("| model | 1 thread remodel ms | onnxruntime ms | ratio | 2 threads remodel ms | onnxruntime ms | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name in MODELS:
        m = os.path.join(cache, name + ".onnx")
        cells = []
        for th in (1, 2):
            rm, ort = [], []
            for _ in range(a.rounds):
                rm.append(bench_remodel(r, m, th, a.iters))
                ort.append(bench_ort(m, th, a.iters))
            cells += ["%.2f" % med(rm), "%.2f" % med(ort), "%.2fx" % (med(rm) / med(ort))]
        print("| %s | %s |" % (name, " | ".join(cells)), flush=True)


def table_load(a, r, cache):
    print("\n## under load: 2 threads, %d runs x %d alternating rounds\n" % (a.iters, a.rounds))
    print("| model | load | remodel ms | onnxruntime ms | ratio |")
    print("|---|---|---|---|---|")
    for name in ("resnet18", "efficientnet_b0"):
        m = os.path.join(cache, name + ".onnx")
        # a CPU-bound neighbour at the same priority
        busy = subprocess.Popen(["sh", "-c", "while :; do :; done"])
        try:
            rm, ort = [], []
            for _ in range(a.rounds):
                rm.append(bench_remodel(r, m, 2, a.iters))
                ort.append(bench_ort(m, 2, a.iters))
        finally:
            busy.kill()
            busy.wait()
        print("| %s | busy loop | %.2f | %.2f | %.2fx |" % (name, med(rm), med(ort), med(rm) / med(ort)), flush=True)
        # two copies of the same benchmark at once
        rm, ort = [], []
        for _ in range(a.rounds):
            for cmd, acc in (([r, "run", m, "--threads", "2", "--bench", str(a.iters), "--json"], rm),
                             (["node", ORT, m, "--bench", str(a.iters), "--threads", "2"], ort)):
                ps = [subprocess.Popen(cmd, stdout=subprocess.PIPE) for _ in range(2)]
                for p in ps:
                    out, _ = p.communicate()
                    if p.returncode:
                        sys.exit("failed: " + " ".join(cmd))
                    acc.append(json.loads(out)["latency_ms"]["median"])
        print("| %s | a second copy | %.2f | %.2f | %.2fx |" % (name, med(rm), med(ort), med(rm) / med(ort)),
              flush=True)


def table_verify(a, r, cache, tmp):
    print("\n## edit + verify: prune --global --ratio 0.3, whole process, %d alternating rounds\n" % a.rounds)
    print("| model | file MB | with verify s | --no-verify s | ratio | floor s | with verify / floor |"
          " peak RSS with verify MB | x file | run peak RSS MB | x file | diff --layers peak RSS MB | x both files |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    out = os.path.join(tmp, "pruned.onnx")
    for name in ("resnet18", "densenet121", "efficientnet_b0"):
        m = os.path.join(cache, name + ".onnx")
        mb = os.path.getsize(m) / 1e6
        ver, nov, lat, peak, rpeak = [], [], [], 0.0, 0.0
        for _ in range(a.rounds):
            w, p = rss([r, "prune", m, "--global", "--ratio", "0.3", "-o", out])
            ver.append(w)
            peak = max(peak, p)
            nov.append(rss([r, "prune", m, "--global", "--ratio", "0.3", "--no-verify", "-o", out])[0])
            # one forward pass as verification makes it (the default threads, no Winograd)
            lat.append(json.loads(run_out([r, "run", m, "--direct-conv", "--bench", str(a.iters), "--json"]))
                       ["latency_ms"]["median"] / 1e3)
            rpeak = max(rpeak, rss([r, "run", m])[1])
        # the edit itself plus 4 samples through each of the two models
        floor = med(nov) + 2 * 4 * med(lat)
        # diff --layers between the model and a saved copy of it (every layer compared)
        copy = os.path.join(tmp, "copy.onnx")
        rss([r, "save", m, "-o", copy])
        _, dpeak = rss([r, "diff", m, copy, "--layers"])
        print("| %s | %.1f | %.2f | %.2f | %.2fx | %.2f | %.2fx | %.0f | %.1fx | %.0f | %.1fx | %.0f | %.1fx |" % (
            name, mb, med(ver), med(nov), med(ver) / med(nov), floor, med(ver) / floor, peak, peak / mb,
            rpeak, rpeak / mb, dpeak, dpeak / (2 * mb)), flush=True)


def table_cold(a, r, cache, tmp):
    print("\n## cold start: one whole process, run once on the same input, %d alternating rounds\n" % a.rounds)
    print("| model | remodel run s | node + onnxruntime create + run s | ratio |")
    print("|---|---|---|---|")
    for name in ("resnet18", "resnet50", "mobilenet_v2", "densenet121", "efficientnet_b0"):
        m = os.path.join(cache, name + ".onnx")
        x = os.path.join(cache, name + ".input.npy")
        rm, ort = [], []
        for _ in range(a.rounds):
            rm.append(rss([r, "run", m, "-i", "input=" + x])[0])
            ort.append(rss(["node", ORT, m, tmp, "input=" + x])[0])
        print("| %s | %.3f | %.3f | %.2fx |" % (name, med(rm), med(ort), med(rm) / med(ort)), flush=True)


def table_size(a, r, cache, tmp):
    print("\n## size scaling: whole process, %d rounds (medians)\n" % a.rounds)
    print("| model | file MB | cp s | save s | save / cp | save ms/MB | prune --no-verify s | prune / save |"
          " prune ms/MB | info peak RSS MB | run peak RSS MB | x file | prune+verify peak RSS MB | x file |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    out = os.path.join(tmp, "out.onnx")
    for name in ("resnet18", "vgg16"):
        m = os.path.join(cache, name + ".onnx")
        if not os.path.exists(m):
            print("| %s | (not exported: make_bench_models.py CACHE --vgg) |" % name)
            continue
        mb = os.path.getsize(m) / 1e6
        cp, sv, pr = [], [], []
        for _ in range(a.rounds):
            cp.append(rss(["cp", m, out])[0])
            os.unlink(out)
            sv.append(rss([r, "save", m, "-o", out])[0])
            os.unlink(out)
            pr.append(rss([r, "prune", m, "--global", "--ratio", "0.3", "--no-verify", "-o", out])[0])
            os.unlink(out)
        _, info_peak = rss([r, "info", m])
        _, run_peak = rss([r, "run", m])
        _, pv_peak = rss([r, "prune", m, "--global", "--ratio", "0.3", "-o", out])
        os.unlink(out)
        print("| %s | %.0f | %.3f | %.3f | %.2fx | %.2f | %.3f | %.2fx | %.2f | %.0f | %.0f | %.1fx | %.0f | %.1fx |" % (
            name, mb, med(cp), med(sv), med(sv) / med(cp), 1000 * med(sv) / mb, med(pr), med(pr) / med(sv),
            1000 * med(pr) / mb, info_peak, run_peak, run_peak / mb, pv_peak, pv_peak / mb), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cache", default=os.path.join(ROOT, "build-release", "bench-models"))
    ap.add_argument("--only", default="latency,load,verify,cold,size")
    a = ap.parse_args()
    r = os.environ.get("RM_BENCH_REMODEL", os.path.join(ROOT, "build-release", "src", "remodel"))
    if not os.path.exists(ORT) or not os.path.isdir(os.path.join(ROOT, "tests", "ort", "node_modules")):
        sys.exit("onnxruntime-node is not installed (scripts/setup.sh puts it in tests/ort)")
    only = a.only.split(",")
    subprocess.run(["/usr/bin/python3", os.path.join(HERE, "make_bench_models.py"), a.cache]
                   + (["--vgg"] if "size" in only else []), check=True)
    commit = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True,
                            text=True).stdout.strip()
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    print("remodel %s, %s, %d cores; onnxruntime-node (CPU provider)" % (commit, cpu, os.cpu_count()))
    print("start:", uptime(), flush=True)
    tmp = tempfile.mkdtemp(prefix="rm-bench-")
    try:
        for t, fn in (("latency", table_latency), ("load", table_load)):
            if t in only:
                fn(a, r, a.cache)
        for t, fn in (("verify", table_verify), ("cold", table_cold), ("size", table_size)):
            if t in only:
                fn(a, r, a.cache, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\nend:", uptime())


if __name__ == "__main__":
    main()
