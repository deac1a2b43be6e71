#!/bin/bash
# Fuzz everything that reads a model, for a fixed budget.
#   fuzz/run.sh [--struct] [SECONDS] [LIBFUZZER-FLAG...]     (default 300 s)
# Builds build-fuzz/ with clang, libFuzzer, ASan and UBSan.
#   default   fuzz_model: byte-level mutations of model files through load, check, show
#             and a run (fuzz_model.c).
#   --struct  fuzz_struct: models parsed and mutated as models - dims, attributes, names,
#             edges, initializers, external-data keys, opsets, channel maps - through load,
#             info, check, show, a small run, replace, prune (by ratio, by channels,
#             global) and fold-bn with their verification (fuzz_struct.c, fuzz_edit.c).
#             Extra flags such as -fork=1 -ignore_crashes=1 keep it going past a crash.
# Seeds the corpus from testdata/ (testdata/fuzz-seeds/: the patterns prune follows beyond
# conv chains), tests/fuzz-regressions/ and ONNX's conformance models
# (libonnx-testdata); a single input may take up to 60 s (running a plan under the
# sanitizers is slow: one AveragePool found by fuzzing takes 22 s here and 0.5 s in a
# release build); any crash or hang is written to
# fuzz/crashes/ — minimise it, add it to tests/fuzz-regressions/ (the test suite
# replays every file there through both pipelines) and fix the bug.
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESS=fuzz_model
EXTRA=()
if [ "${1:-}" = "--struct" ]; then
    HARNESS=fuzz_struct
    # libFuzzer's entropic schedule spent 70% of the time updating feature frequencies
    # once the structure-aware corpus passed 90k features: plain scheduling runs 3x faster
    EXTRA=(-entropic=0)
    shift
fi
SECONDS_BUDGET=${1:-300}
shift || true
command -v clang >/dev/null || { echo "fuzz: needs clang and libclang-rt-14-dev (apt-get install clang libclang-rt-14-dev)"; exit 2; }
if [ ! -d build-fuzz ]; then
    CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false -Dbuildtype=debugoptimized \
        -Db_sanitize=address,undefined -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link >/dev/null
fi
ninja -C build-fuzz "fuzz/$HARNESS"
CORPUS=build-fuzz/corpus-$HARNESS
mkdir -p "$CORPUS" fuzz/crashes
for f in testdata/*.onnx testdata/edits/*.onnx testdata/broken/*.onnx testdata/torchvision/*.onnx \
         testdata/digits/*.onnx testdata/fuzz-seeds/*.onnx tests/fuzz-regressions/*; do
    [ -f "$f" ] || continue
    [ "$(stat -c %s "$f")" -le 262144 ] && cp "$f" "$CORPUS/" 2>/dev/null || true
done
# ONNX's conformance models cover every op the engine knows (and many it refuses)
for f in /usr/share/libonnx-testdata/data/node/*/model.onnx; do
    [ -f "$f" ] && cp "$f" "$CORPUS/$(basename "$(dirname "$f")").onnx"
done
# the harness writes models, external data and saves in a folder of $TMPDIR: a tmpfs,
# where an fsync costs nothing, unless TMPDIR is set
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    export TMPDIR=/dev/shm
fi
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
"build-fuzz/fuzz/$HARNESS" "$CORPUS" -max_total_time="$SECONDS_BUDGET" -max_len=262144 \
    -rss_limit_mb=2048 -timeout=60 -report_slow_units=60 -artifact_prefix=fuzz/crashes/ -print_final_stats=1 "${EXTRA[@]}" "$@" 2>&1 |
    tee "build-fuzz/last-run-$HARNESS.log" | grep -E "^#[0-9]+.*(pulse|DONE)|ERROR|SUMMARY|stat::number_of_executed_units|stat::peak_rss" || true
# (one unmatched pattern made `ls` of all four fail: a crash was once reported clean)
shopt -s nullglob
found=(fuzz/crashes/crash-* fuzz/crashes/leak-* fuzz/crashes/timeout-* fuzz/crashes/oom-*)
if [ ${#found[@]} -gt 0 ]; then
    echo "fuzz: ${#found[@]} finding(s) in fuzz/crashes/: ${found[*]}"
    exit 1
fi
echo "fuzz: clean for ${SECONDS_BUDGET}s"
