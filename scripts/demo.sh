#!/bin/bash
# The main job on the bundled resnet18: show its tree, make an edit, verify it, save it.
#   scripts/demo.sh [OUT_DIR]        (default out/, created)
# Installs only what building remodel needs (no Node.js, no onnxruntime: only the tests use
# them; scripts/setup.sh installs those), builds it, then runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."

# what the build needs (meson.build: protobuf-c, oneDNN, Check for the unit tests it
# configures; python3 is meson's own)
PACKAGES=(meson ninja-build pkg-config gcc libprotobuf-c-dev protobuf-c-compiler libdnnl-dev check)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    SUDO=
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "demo: installing ${missing[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
[ -d build ] || meson setup build --buildtype=debugoptimized >/dev/null
ninja -C build >/dev/null

OUT=${1:-out}
mkdir -p "$OUT"
R=build/src/remodel
M=testdata/resnet18.onnx
set -x
$R info "$M"
$R show "$M" --depth 2
$R show "$M" 'layer4[0]'
# shrink layer4.0.conv1 from 512 to 256 output channels; BatchNorm and conv2 follow
$R replace "$M" layer4.0.conv1 'Conv2d(256, 256, kernel_size=3, stride=2, padding=1, bias=False)' \
    --propagate -o "$OUT/resnet18_replaced.onnx"
$R check "$OUT/resnet18_replaced.onnx"
# where do the outputs part ways? (exit 1: they differ, as an edited layer should)
$R diff "$M" "$OUT/resnet18_replaced.onnx" --layers --report "$OUT/replace_report.html" | tail -n 4 || true
# prune 30% of the channels of every prunable group, coupled layers following
$R prune "$M" --global --ratio 0.3 -o "$OUT/resnet18_pruned.onnx"
$R run "$OUT/resnet18_pruned.onnx" --bench 5 --threads 2
