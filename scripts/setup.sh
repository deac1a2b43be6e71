#!/bin/bash
# Install what remodel needs on Debian 12 (only the packages that are missing), then
# configure the build folders. Idempotent; run as root or with sudo available.
#   scripts/setup.sh           build dependencies, test data, onnxruntime for the tests
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
    meson ninja-build pkg-config gcc           # build
    libprotobuf-c-dev protobuf-c-compiler      # ONNX schema
    libdnnl-dev                                # inference (oneDNN 2.6)
    check                                      # unit tests
    libonnx-testdata                           # ONNX conformance cases
    python3 python3-onnx python3-numpy         # CLI tests, onnx checker on edited models
    python3-torch python3-torchvision          # test data, the model corpus the tests regenerate
    man-db clang                               # tests: man -l on the man page; the -Werror clang build
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js runs onnxruntime for the tests (below); Debian's only when none is installed,
# since a Node.js from elsewhere may bundle its own npm
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
if ((${#missing[@]})); then
    SUDO=
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "setup: installing ${missing[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# onnxruntime (CPU) from the npm registry, the independent runtime the tests run every
# edited model in (Debian 12 packages none); --ignore-scripts: its install script only
# fetches GPU providers, from outside the registry
if [ ! -f tests/ort/node_modules/.package-lock.json ] ||
    ! cmp -s tests/ort/package-lock.json tests/ort/node_modules/.remodel-lock; then
    echo "setup: installing onnxruntime-node into tests/ort"
    (cd tests/ort && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error &&
        cp package-lock.json node_modules/.remodel-lock)
fi

[ -d build ] || meson setup build --buildtype=debugoptimized
ninja -C build
