#!/bin/bash
# meson install into a DESTDIR gives what a user of the library needs: the remodel
# executable, libremodel.so.N, remodel.h and remodel.pc; a program built with nothing but
# `pkg-config --cflags --libs remodel` loads resnet18, replaces a conv, prunes, runs a
# session, diffs and saves; the library exports the public API only; the Python package
# installed beside it finds that library on its own and runs the README's example
# verbatim (load resnet18, replace, prune 30%, run, diff, save).
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

# the Python package: found through PYTHONPATH alone, it loads the library installed
# with it (no LD_LIBRARY_PATH, no REMODEL_LIBRARY) and runs the README's example verbatim
pkg=$(find "$d/root" -path '*/remodel/__init__.py' -type f) || true
[ -n "$pkg" ] || [ ! -f "$build/python/_config.py" ] || fail "the build has the Python binding, but it was not installed"
if [ -n "$pkg" ]; then
    site=$(dirname "$(dirname "$pkg")")
    [ -f "$site/remodel/_capi.py" ] && [ -f "$site/remodel/_config.py" ] || fail "python package incomplete in $site"
    pyenv=(env -u REMODEL_LIBRARY -u LD_LIBRARY_PATH PYTHONPATH="$site" PYTHONDONTWRITEBYTECODE=1)
    # a sanitizer build's library needs its runtime loaded before the interpreter's libraries
    [ ${#san[@]} -gt 0 ] && pyenv+=(LD_PRELOAD="$(cc -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0)
    mkdir "$d/py" && ln -s "$td" "$d/py/testdata"
    awk '/^## Python/ {p = 1} p && /^```python/ {f = 1; next} f && /^```/ {exit} f' "$src/README.md" > "$d/example.py"
    awk '/^## Python/ {p = 1} p && /^It prints/ {q = 1} q && /^```$/ {n++; next} n == 1' "$src/README.md" > "$d/expected"
    grep -q '^m.save(' "$d/example.py" || fail "no Python example in README.md's Python section"
    [ -s "$d/expected" ] || fail "no output of the Python example in README.md"
    (cd "$d/py" && "${pyenv[@]}" /usr/bin/python3 "$d/example.py") > "$d/pylog" 2>&1 || { cat "$d/pylog"; fail "README's Python example"; }
    # every line as the README shows it, the last one's figures aside
    num='[0-9][0-9.e+-]*'
    diff <(sed "\$s/$num/N/g" "$d/expected") <(sed "\$s/$num/N/g" "$d/pylog") || fail "README's Python example prints otherwise"
    [ -s "$d/py/resnet18-small.onnx" ] || fail "README's Python example saved nothing"
    LD_LIBRARY_PATH="$libdir" "$bin" check "$d/py/resnet18-small.onnx" >/dev/null || fail "remodel check of the Python-saved model"
    (cd "$d/py" && "${pyenv[@]}" /usr/bin/python3 -c "
import os, sys, remodel
root = os.path.realpath(sys.argv[1])
assert os.path.realpath(remodel.__file__).startswith(root), remodel.__file__
assert os.path.realpath(remodel.LIBRARY_PATH).startswith(root), 'library from ' + remodel.LIBRARY_PATH
with remodel.load('resnet18-small.onnx') as m:
    assert m.info()['params'] < 0.6 * 11684712, m.info()['params']
    assert m.module('layer4.0.conv1').args['out_channels'] < 256
print('python ok', remodel.LIBRARY_PATH)
" "$d/root") > "$d/pylog" 2>&1 || { cat "$d/pylog"; fail "installed Python package"; }
    grep -q '^python ok' "$d/pylog" || fail "python check did not finish"
fi
echo "installed: $(cd "$d/root" && find . -type f | sort | tr '\n' ' ')"
echo "ok"
