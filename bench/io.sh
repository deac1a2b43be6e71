#!/bin/bash
# Whole-process time of `remodel save` on resnet18.onnx beside `cp` of the same file and
# beside Python onnx load+save (Debian's python3-onnx), as ratios measured in one run.
# Goal (issue 2): at least 8x faster than Python onnx, within 3x of cp.
#
# usage: bench/io.sh [RUNS]      (builds a release binary in build-release/ first)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-15}
MODEL=testdata/resnet18.onnx
meson setup build-release --buildtype=release -Dtests=false >/dev/null 2>&1 || true
ninja -C build-release src/remodel >/dev/null
REMODEL=build-release/src/remodel
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# median wall time in ms of RUNS runs of "$@"
median_ms() {
    local times=()
    for ((i = 0; i < RUNS; i++)); do
        local t0 t1
        t0=$(date +%s%N)
        "$@" >/dev/null
        t1=$(date +%s%N)
        times+=($(( (t1 - t0) / 1000 )))
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]/1000}'
}

cat "$MODEL" >/dev/null # page cache warm for everyone
t_cp=$(median_ms cp "$MODEL" "$OUT/cp.onnx")
t_rm=$(median_ms "$REMODEL" save "$MODEL" -o "$OUT/rm.onnx")
t_py=$(median_ms /usr/bin/python3 -c "import onnx,sys; onnx.save(onnx.load(sys.argv[1]), sys.argv[2])" "$MODEL" "$OUT/py.onnx")
cmp "$MODEL" "$OUT/rm.onnx"

size=$(stat -c %s "$MODEL")
echo "resnet18.onnx ($size bytes), median of $RUNS runs, whole process:"
printf '  %-28s %8s ms\n' "cp" "$t_cp" "remodel save" "$t_rm" "python onnx load+save" "$t_py"
awk -v rm="$t_rm" -v cp="$t_cp" -v py="$t_py" 'BEGIN {
    printf "  remodel save / cp          %6.2fx  (goal <= 3x)\n", rm / cp
    printf "  python onnx / remodel save %6.2fx  (goal >= 8x)\n", py / rm }'
