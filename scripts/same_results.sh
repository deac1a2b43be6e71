#!/bin/bash
# Do two remodel binaries give the same results? Runs the same commands with each on the
# testdata models (run, info, show, check, save, fold-bn, every replace and prune case of
# testdata/edits, a global prune, diff --layers) and compares what they print and every
# file they write, byte for byte. For refactors, whose behaviour must not change.
#   scripts/same_results.sh OLD_BINARY NEW_BINARY
# Prints one line per difference and "N commands, M files: identical" or exits 1.
set -uo pipefail
[ $# -eq 2 ] || { echo "usage: $0 OLD_BINARY NEW_BINARY" >&2; exit 2; }
old=$(realpath "$1") new=$(realpath "$2")
cd "$(dirname "$0")/.."
td=testdata
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

models=(resnet18 tiny_resnet mobilenet_tiny concat_net se_net shared_init edits/zeroed_resnet)
cmds=()
for m in "${models[@]}"; do
    f=$td/$m.onnx n=${m//\//_}
    cmds+=("info $f --json" "info $f" "show $f" "show $f --json" "check $f"
           "run $f -o @/run_$n --seed 3" "run $f -o @/runu_$n --seed 3 --no-fuse"
           "run $f -o @/rund_$n --seed 3 --direct-conv --json"
           "save $f -o @/save_$n.onnx" "fold-bn $f -o @/fold_$n.onnx"
           "prune $f --global --ratio 0.3 -o @/gprune_$n.onnx"
           "diff $f $f --layers --json")
done
while IFS=$'\t' read -r name model path prop spec; do
    p=(); [ "$prop" = 1 ] && p=(--propagate)
    cmds+=("replace $td/$model.onnx $path ${spec// /} ${p[*]} -o @/rep_$name.onnx")
done < $td/edits/cases.tsv
while IFS=$'\t' read -r name model path chans; do
    cmds+=("prune $td/$model.onnx $path --channels $chans -o @/prune_$name.onnx")
done < $td/edits/prune_cases.tsv
cmds+=("prune $td/tiny_resnet.onnx layer1.0.conv1 --ratio 0.5 --criterion l2 -o @/prune_l2.onnx"
       "replace $td/resnet18.onnx layer4.0.conv1 Conv2d(256,256,3,2,1,bias=False) --propagate --init kaiming --seed 7 -o @/rep_kaiming.onnx"
       "replace $td/resnet18.onnx layer4.0.conv1 Conv2d(111,111,3,2,1) -o @/refused.onnx"
       "replace $td/tiny_resnet.onnx layer1.0.conv1 Conv2d(8,5,3,padding=1,bias=False) -o @/refused.onnx"
       "prune $td/resnet18.onnx fc --ratio 0.5 -o @/refused.onnx"
       "prune $td/mobilenet_tiny.onnx classifier.1 --ratio 0.5 -o @/refused.onnx"
       "show $td/resnet18.onnx layer9.0"
       "diff $td/tiny_resnet.onnx @/../../a/prune_bn_kept.onnx --layers")

ndiff=0 nfiles=0
run_one() { # BINARY OUTDIR CMD
    local bin=$1 dir=$2 cmd=$3
    mkdir -p "$dir"
    # split on spaces; the one SPEC argument carries no spaces in the list above
    local args=(${cmd//@/$dir})
    "$bin" "${args[@]}" >"$dir/stdout" 2>"$dir/stderr"
    echo $? >"$dir/status"
    # stored figures that are timings are not results
    sed -i -E 's/[0-9.]+ ms/X ms/g' "$dir/stdout" "$dir/stderr"
}
i=0
for c in "${cmds[@]}"; do
    i=$((i + 1))
    run_one "$old" "$work/a/$i" "$c"
    run_one "$new" "$work/b/$i" "$c"
    # outputs mention their own folder: compare with it replaced
    for f in stdout stderr; do
        sed -i "s#$work/a/$i#@#g" "$work/a/$i/$f"; sed -i "s#$work/b/$i#@#g" "$work/b/$i/$f"
    done
    while IFS= read -r -d '' fa; do
        rel=${fa#"$work/a/$i/"}
        nfiles=$((nfiles + 1))
        if ! cmp -s "$fa" "$work/b/$i/$rel"; then
            echo "differs: $c: $rel"; ndiff=$((ndiff + 1))
        fi
    done < <(find "$work/a/$i" -type f -print0)
    if [ "$(cd "$work/a/$i" && find . -type f | sort)" != "$(cd "$work/b/$i" && find . -type f | sort)" ]; then
        echo "differs: $c: the two wrote different sets of files"; ndiff=$((ndiff + 1))
    fi
    [ -n "${KEEP:-}" ] && { echo "== $c"; cat "$work/a/$i/status" "$work/a/$i/stderr"; head -3 "$work/a/$i/stdout"; }
    rm -rf "$work/a/$i" "$work/b/$i"
done
if [ $ndiff -ne 0 ]; then
    echo "$ndiff differences in ${#cmds[@]} commands"
    exit 1
fi
echo "${#cmds[@]} commands, $nfiles files compared: identical"
