#!/bin/bash
# The whole test suite: install what is missing, build, run every test normally and
# under AddressSanitizer + UndefinedBehaviorSanitizer.
#   scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
meson test -C build --print-errorlogs

[ -d build-asan ] || meson setup build-asan -Db_sanitize=address,undefined -Dbuildtype=debug
ninja -C build-asan
ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
    meson test -C build-asan --print-errorlogs
