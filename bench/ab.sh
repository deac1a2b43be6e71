#!/bin/sh
# A/B of two remodel binaries on one model: rounds alternate A and B so both see the
# same (shared, noisy) machine; prints each side's median of round medians, its best
# round and the median fraction of the FP32 peak measured in the same processes.
#
#   bench/ab.sh OLD_REMODEL NEW_REMODEL MODEL [ROUNDS] [ITERS] [THREADS]   (8, 40, 2)
#
# e.g. the engine before and after a change:
#   git worktree add /tmp/old HEAD~1 && meson setup /tmp/old/b /tmp/old --buildtype=release \
#     -Dtests=false && ninja -C /tmp/old/b src/remodel
#   bench/ab.sh /tmp/old/b/src/remodel build-release/src/remodel testdata/resnet18.onnx
set -eu
[ $# -ge 3 ] || { echo "usage: bench/ab.sh OLD_REMODEL NEW_REMODEL MODEL [ROUNDS] [ITERS] [THREADS]" >&2; exit 2; }
a=$1 b=$2 model=$3 rounds=${4:-8} iters=${5:-40} threads=${6:-2}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
i=0
while [ $i -lt "$rounds" ]; do
    for side in A B; do
        if [ $side = A ]; then bin=$a; else bin=$b; fi
        printf '%s ' $side >>"$out"
        "$bin" run "$model" --threads "$threads" --bench "$iters" --json >>"$out"
    done
    i=$((i + 1))
done
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    side, doc = line.split(" ", 1)
    rows.setdefault(side, []).append(json.loads(doc))
for side, rs in sorted(rows.items()):
    med = [r["latency_ms"]["median"] for r in rs]
    print("%s: median of %d round medians %.3f ms, best round %.3f ms, %.1f%% of measured FP32 peak"
          % (side, len(rs), statistics.median(med), min(med),
             100 * statistics.median(r["peak_fraction"] for r in rs)))
a, b = (statistics.median(r["latency_ms"]["median"] for r in rows[s]) for s in ("A", "B"))
print("B takes %.3fx A's time" % (b / a))
PY
