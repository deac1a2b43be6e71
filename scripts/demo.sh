#!/bin/bash
# The main job on the bundled resnet18: look at it, check it, save it back.
#   scripts/demo.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
OUT=${1:-out}
mkdir -p "$OUT"
R=build/src/remodel
M=testdata/resnet18.onnx
set -x
$R info "$M"
$R check "$M"
$R save "$M" -o "$OUT/resnet18.onnx"
cmp "$M" "$OUT/resnet18.onnx"
