#!/bin/bash
# A model past protobuf's 2 GB limit loads and saves through external data.
# Generates (with Python onnx) a 2.3 GB model stored as external data, then times
# remodel info / check / save --external-data on it, shows that an inline save is
# refused, and runs onnx's checker on remodel's output. Needs ~5 GB of free disk.
#   bench/bigmodel.sh [DIR]      (default: a temporary folder, removed afterwards)
set -euo pipefail
cd "$(dirname "$0")/.."
meson setup build-release --buildtype=release -Dtests=false >/dev/null 2>&1 || true
ninja -C build-release src/remodel >/dev/null
R=$PWD/build-release/src/remodel
DIR=${1:-$(mktemp -d)}
[ -n "${1:-}" ] || trap 'rm -rf "$DIR"' EXIT
mkdir -p "$DIR"

/usr/bin/python3 - "$DIR" <<'PY'
import os, sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
d = sys.argv[1]
n = 24576  # 24576 x 24576 float32 = 2.25 GiB
w = numpy_helper.from_array(np.full((n, n), 0.5, dtype=np.float32), "fc.weight")
b = numpy_helper.from_array(np.zeros(n, dtype=np.float32), "fc.bias")
g = helper.make_graph(
    [helper.make_node("Gemm", ["input", "fc.weight", "fc.bias"], ["output"], name="/fc/Gemm", transB=1)],
    "big", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, n])],
    [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, n])], [w, b])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
onnx.save_model(m, os.path.join(d, "big.onnx"), save_as_external_data=True,
                all_tensors_to_one_file=True, location="big.data", size_threshold=1024)
PY
ls -l "$DIR"
t() { local t0 t1; t0=$(date +%s%N); "$@"; t1=$(date +%s%N); echo "  ($(( (t1 - t0) / 1000000 )) ms: ${*##*/})"; }
t "$R" info "$DIR/big.onnx"
t "$R" check "$DIR/big.onnx"
if "$R" save "$DIR/big.onnx" -o "$DIR/inline.onnx"; then
    echo "FAIL: an inline save over 2 GB should be refused"; exit 1
fi
t "$R" save "$DIR/big.onnx" -o "$DIR/out.onnx" --external-data out.data
ls -l "$DIR"
/usr/bin/python3 -c "import onnx,sys; onnx.checker.check_model(sys.argv[1]); print('onnx checker: ok')" "$DIR/out.onnx"
cmp "$DIR/big.data" "$DIR/out.data" && echo "external data written back byte-identical"
