#!/bin/bash
# meson install into a DESTDIR gives what a user of the library needs: the remodel
# executable, libremodel.so.N, remodel.h and remodel.pc; a program built with nothing but
# `pkg-config --cflags --libs remodel` loads resnet18, replaces a conv, prunes, runs a
# session, diffs and saves; the library exports the public API only.
#   tests/test_install.sh BUILD_DIR SOURCE_DIR TESTDATA
set -euo pipefail
build=$1 src=$2 td=$3
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

DESTDIR="$d/root" meson install -C "$build" --no-rebuild --quiet >/dev/null
bin=$(find "$d/root" -path '*/bin/remodel' -type f) || true
lib=$(find "$d/root" -name 'libremodel.so.*' -type f | head -1) || true
hdr=$(find "$d/root" -path '*/include/remodel.h' -type f) || true
pc=$(find "$d/root" -name remodel.pc -type f) || true
[ -n "$bin" ] || fail "no bin/remodel installed"
[ -n "$lib" ] || fail "no libremodel.so.N installed"
[ -n "$hdr" ] || fail "no include/remodel.h installed"
[ -n "$pc" ] || fail "no remodel.pc installed"
libdir=$(dirname "$lib")
[ -L "$libdir/libremodel.so" ] || fail "no libremodel.so development link"
soname=$(readelf -d "$lib" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = libremodel.so.0 ] || fail "soname is '$soname'"

# only the public API is exported, and all of it is
exported=$(nm -D --defined-only "$lib" | awk '$2 == "T" {print $3}' | sort)
declared=$(sed -n 's/^RM_API [^(]*[ *]\(rm_[a-z0-9_]*\)(.*/\1/p' "$src/include/remodel.h" | sort)
stray=$(comm -23 <(echo "$exported") <(echo "$declared"))
missing=$(comm -13 <(echo "$exported") <(echo "$declared"))
[ -z "$stray" ] || fail "exported but not in remodel.h: $(echo $stray)"
[ -z "$missing" ] || fail "in remodel.h but not exported: $(echo $missing)"

export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR="$d/root"
# a sanitizer build's library wants its runtime loaded first: build the program so too
san=()
readelf -d "$lib" | grep -q 'NEEDED.*libasan' && san=(-fsanitize=address,undefined)
cc -std=c11 -Wall -Wextra -Wpedantic -Werror "${san[@]}" -o "$d/example" "$src/tests/install/example.c" \
    $(pkg-config --cflags --libs remodel) -lm
LD_LIBRARY_PATH="$libdir" "$d/example" "$td/resnet18.onnx" "$d/edited.onnx" > "$d/log" || { cat "$d/log"; fail "example"; }
grep -q '^ok$' "$d/log" || fail "example did not finish"
[ -s "$d/edited.onnx" ] || fail "example saved nothing"
# the installed executable runs on the installed library and reads what the program wrote
LD_LIBRARY_PATH="$libdir" "$bin" --version | grep -q "^remodel " || fail "installed remodel --version"
LD_LIBRARY_PATH="$libdir" "$bin" check "$d/edited.onnx" >/dev/null || fail "remodel check of the saved model"
echo "installed: $(cd "$d/root" && find . -type f | sort | tr '\n' ' ')"
echo "ok"
