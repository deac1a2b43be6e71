#!/bin/sh
# Engine benchmark: builds remodel in release mode and prints, for resnet18 at batch 1
# with 2 threads, the median latency, GFLOP/s and the fraction of the FP32 FMA peak
# measured in the same process. The machine may be shared: the script runs several
# rounds and reports the median round (and the best one). With no MODEL argument and
# Debian's python3-torchvision installed, MobileNetV2 and ResNet-50 (untrained,
# exported once into build-release/bench-models/) are measured too. With onnxruntime
# installed (scripts/setup.sh puts it in tests/ort/), each model also runs there in
# alternating rounds, and the script prints remodel's time as a multiple of its time.
#
#   bench/engine.sh [MODEL] [THREADS] [ITERS] [ROUNDS]     (MODEL "" = the default set)
#   bench/engine.sh --tables [--iters N] [--rounds R] [--only latency,load,verify,cold,size]
#       every table of issue 17 in one run (bench/tables.py): the twelve exports at 1 and 2
#       threads against onnxruntime, two loads, edit+verify vs --no-verify, cold start, size
#       scaling and peak RSS; exports made by bench/make_bench_models.py into
#       build-release/bench-models (VGG16, 553 MB, for the size table)
#
# To see which kernels run (oneDNN prints on stdout, so not through this script):
#   ONEDNN_VERBOSE=1 build-release/src/remodel run testdata/resnet18.onnx --threads 2
# expect brgconv/jit avx512_core convolutions on nhwc or blocked layouts, weight
# reorders only at plan time, and no reorders between layers.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = --tables ]; then
    shift
    [ -d "$here/build-release" ] || meson setup "$here/build-release" "$here" --buildtype=release -Dtests=false >/dev/null
    ninja -C "$here/build-release" src/remodel >/dev/null
    RM_BENCH_REMODEL=$here/build-release/src/remodel exec /usr/bin/python3 "$here/bench/tables.py" "$@"
fi
models=${1:-$here/testdata/resnet18.onnx}
threads=${2:-2}
iters=${3:-50}
rounds=${4:-5}
build=$here/build-release

if [ ! -d "$build" ]; then
    meson setup "$build" "$here" --buildtype=release -Dtests=false >/dev/null
fi
ninja -C "$build" src/remodel >/dev/null

ort=$here/tests/ort/ort_run.js
have_ort=0
if command -v node >/dev/null && [ -d "$here/tests/ort/node_modules/onnxruntime-node" ]; then
    have_ort=1
else
    echo "onnxruntime not installed (scripts/setup.sh installs it): no baseline"
fi

bench_one() {
    model=$1
    echo "model $(basename "$model"), batch 1, $threads threads, $iters timed runs x $rounds rounds"
    out=$(mktemp)
    ortout=$(mktemp)
    i=0
    # rounds alternate remodel and onnxruntime, so both see the same machine
    while [ $i -lt "$rounds" ]; do
        "$build/src/remodel" run "$model" --threads "$threads" --bench "$iters" --json >>"$out"
        if [ $have_ort = 1 ]; then
            node "$ort" "$model" --bench "$iters" --threads "$threads" >>"$ortout"
        fi
        i=$((i + 1))
    done
    /usr/bin/python3 - "$out" "$ortout" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows.sort(key=lambda r: r["latency_ms"]["median"])
med = rows[len(rows) // 2]
best = rows[0]
for r in rows:
    print("  round: median %.3f ms, min %.3f ms, %.1f GFLOP/s, peak %.1f GFLOP/s, %.1f%% of peak" % (
        r["latency_ms"]["median"], r["latency_ms"]["min"], r["gflops"], r["peak_gflops"],
        100 * r["peak_fraction"]))
print("median round: latency %.3f ms (min %.3f ms), %.1f GFLOP/s = %.1f%% of measured FP32 peak %.1f GFLOP/s"
      % (med["latency_ms"]["median"], med["latency_ms"]["min"], med["gflops"], 100 * med["peak_fraction"],
         med["peak_gflops"]))
print("best round:   latency %.3f ms, %.1f GFLOP/s = %.1f%% of peak"
      % (best["latency_ms"]["median"], best["gflops"], 100 * best["peak_fraction"]))
print("MACs %.3f G" % (med["macs"] / 1e9))
ort = [json.loads(l)["latency_ms"]["median"] for l in open(sys.argv[2]) if l.strip()]
if ort:
    o = statistics.median(ort)
    m = statistics.median(r["latency_ms"]["median"] for r in rows)
    print("onnxruntime (CPU provider, same threads, alternating rounds): median %.3f ms; "
          "remodel takes %.2fx its time" % (o, m / o))
PY
    rm -f "$out" "$ortout"
}

if [ -z "${1:-}" ]; then
    zoo=$build/bench-models
    if [ ! -f "$zoo/resnet50.onnx" ] && /usr/bin/python3 -c 'import torchvision' 2>/dev/null; then
        mkdir -p "$zoo"
        /usr/bin/python3 - "$zoo" <<'PY' 2>/dev/null || true
import sys, torch, torchvision
torch.manual_seed(0)
for name in ("mobilenet_v2", "resnet50"):
    m = getattr(torchvision.models, name)(weights=None).eval()
    torch.onnx.export(m, torch.randn(1, 3, 224, 224), f"{sys.argv[1]}/{name}.onnx", opset_version=13,
                      input_names=["input"], output_names=["output"])
PY
    fi
    for m in "$zoo/mobilenet_v2.onnx" "$zoo/resnet50.onnx"; do
        if [ -f "$m" ]; then models="$models $m"; fi
    done
fi
for m in $models; do
    bench_one "$m"
done
