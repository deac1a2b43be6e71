#!/bin/bash
# Long graphs of tiny steps: a chain of N nodes (1x1 Conv 4->4, BatchNorm, Relu, on a
# 4x4 input; 26 MB at 100k nodes) through prune, fold-bn, run, diff and diff --layers,
# printing wall time, CPU time and peak RSS (/usr/bin/time) of each. Every one of them
# must stay linear in N (issue 14: prune took 1.5 GB at 20k nodes, run 17.5 s and diff
# and fold-bn over 120 s at 100k). One measurement each: on a shared machine compare the
# CPU times, and runs of two binaries made at the same time.
#   bench/chain.sh [REMODEL] [N...]      (default: build/src/remodel, 10000 20000 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
R=${1:-$PWD/build/src/remodel}
shift || true
SIZES=${*:-10000 20000 100000}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
for n in $SIZES; do
    /usr/bin/python3 - "$n" "$DIR/chain$n.onnx" <<'PY'
import sys
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto as T
n, out = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(0)
nodes, inits, cur = [], [], "x"
for i in range(max(1, (n - 3) // 3)):
    w = f"layers.{i}.conv.weight"
    inits.append(numpy_helper.from_array(rng.standard_normal((4, 4, 1, 1)).astype(np.float32), w))
    nodes.append(helper.make_node("Conv", [cur, w], [f"c{i}"], name=f"/layers.{i}/conv/Conv"))
    ps = []
    for k, v in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
        ps.append(f"layers.{i}.bn.{k}")
        inits.append(numpy_helper.from_array((np.full(4, v) + (rng.random(4) * 0.1 if k == "weight" else 0))
                                             .astype(np.float32), ps[-1]))
    nodes.append(helper.make_node("BatchNormalization", [f"c{i}"] + ps, [f"b{i}"], name=f"/layers.{i}/bn/BatchNormalization"))
    nodes.append(helper.make_node("Relu", [f"b{i}"], [f"r{i}"], name=f"/layers.{i}/relu/Relu"))
    cur = f"r{i}"
inits += [numpy_helper.from_array(rng.standard_normal((10, 4)).astype(np.float32), "fc.weight"),
          numpy_helper.from_array(np.zeros(10, np.float32), "fc.bias")]
nodes += [helper.make_node("GlobalAveragePool", [cur], ["p"], name="/pool/GlobalAveragePool"),
          helper.make_node("Flatten", ["p"], ["f"], name="/Flatten"),
          helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["y"], name="/fc/Gemm", transB=1)]
g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", T.FLOAT, [1, 4, 4, 4])],
                      [helper.make_tensor_value_info("y", T.FLOAT, [1, 10])], inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="chain")
m.ir_version = 7
onnx.save(m, out)
PY
    m="$DIR/chain$n.onnx"
    for cmd in "prune $m --global --ratio 0.5 --no-verify -o $DIR/out.onnx" "fold-bn $m -o $DIR/out.onnx" \
               "run $m" "diff $m $m" "diff --layers $m $m"; do
        /usr/bin/time -f "%e %U %S %M" -o "$DIR/time" "$R" $cmd >/dev/null 2>"$DIR/err" ||
            { echo "remodel $cmd failed: $(tail -1 "$DIR/err")"; continue; }
        read -r wall user sys rss < "$DIR/time"
        printf '%6d nodes  %-14s wall %7.2f s  cpu %7.2f s  peak RSS %6d MB\n' "$n" \
            "$(echo "$cmd" | cut -d' ' -f1)$(echo "$cmd" | grep -q -- --layers && echo ' --layers' || true)" \
            "$wall" "$(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}')" "$((rss / 1024))"
    done
done
