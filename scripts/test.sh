#!/bin/bash
# The whole test suite: install what is missing, build with -Werror, run every test
# normally and under AddressSanitizer + UndefinedBehaviorSanitizer (gcc), then build
# everything with clang -Werror and run its quick suites.
#   scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

# meson's summary ("Ok: N", "Fail: N") of the run whose output is in $1
count() { awk -v k="$2" '$1 == k":" {v = $2} END {print v + 0}' "$1"; }

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# The corpus suite (tests/corpus_check.py over the shipped exports of testdata/corpus: every
# command on every model, each written model checked in onnxruntime) runs in the normal
# build only: under the sanitizers it would double the run and finds nothing more there.
# A warning is an error, on gcc (build, build-asan) and clang (build-clang), at the
# project's warning_level=3.
meson configure build -Dwerror=true
meson test -C build --print-errorlogs | tee "$log" || status=1
ok=$(count "$log" Ok) fail=$(count "$log" Fail)

[ -d build-asan ] || meson setup build-asan -Db_sanitize=address,undefined -Dbuildtype=debug
meson configure build-asan -Dwerror=true
ninja -C build-asan
ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
    meson test -C build-asan --print-errorlogs --no-suite corpus | tee "$log" || status=1
ok=$((ok + $(count "$log" Ok))) fail=$((fail + $(count "$log" Fail)))

# clang: the whole tree builds without a warning; the quick suites run on it
[ -d build-clang ] || CC=clang meson setup build-clang --buildtype=debugoptimized
meson configure build-clang -Dwerror=true -Dwarning_level=3
ninja -C build-clang || status=1
meson test -C build-clang --print-errorlogs model check_schema conformance regressions readme | tee "$log" || status=1
ok=$((ok + $(count "$log" Ok))) fail=$((fail + $(count "$log" Fail)))

echo "test suites (normal and ASan+UBSan builds with gcc, quick suites with clang; all -Werror):"
echo "suites: $ok passed, $fail failed"
exit $status
