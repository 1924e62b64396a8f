#!/bin/bash
# bench_trial — one whole fine-tuning trial, `sweep-worker run` against the
# same fine-tune in PyTorch (tests/bench/torch_trial.py), measured in one run:
# resnet18 (random init exported by torch itself as safetensors) at input 64
# on 5,000 Fashion-MNIST training images (500 per class, imported with
# `sweep-worker import-idx`) plus 1,000 validation images, 5 epochs, batch 64,
# SGD momentum 0.9, no augmentation, freeze layer3 and freeze none.
# sweep-worker is timed end to end (process start to exit, JPEG decoding
# included); PyTorch gets the images already decoded into tensors and is timed
# from model set-up to the last validation pass. Prints both times and the
# ratio; targets: >= 2.5x with freeze layer3 (issue 16; issue 5 asked 4x), >= 1.2x with freeze
# none.
# Environment: THREADS (2), IMAGES_PER_CLASS (500), EPOCHS (5), FREEZES
# ("layer3 none"), KEEP=1 keeps the scratch directory.
set -u
ROOT=${SWEEP_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${SWEEP_BUILD:-$ROOT/build}
W=$BUILD/sweep-worker
PY=/usr/bin/python3
THREADS=${THREADS:-2}
PER=${IMAGES_PER_CLASS:-500}
EPOCHS=${EPOCHS:-5}
FREEZES=${FREEZES:-layer3 none}
FM=/usr/share/datasets/fashion-mnist
T=$(mktemp -d "${TMPDIR:-/tmp}/bench_trial.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$T"' EXIT

if [ ! -x "$W" ]; then echo "bench_trial: $W not built" >&2; exit 1; fi
if ! $PY -c 'import torch, torchvision' 2>/dev/null; then
    echo "bench_trial: python3-torch/torchvision not installed; skipping"
    exit 0
fi
if [ ! -r "$FM/train-images-idx3-ubyte.gz" ]; then
    echo "bench_trial: $FM missing (Debian package dataset-fashion-mnist); skipping"
    exit 0
fi
"$W" import-idx "$FM/train-images-idx3-ubyte.gz" "$FM/train-labels-idx1-ubyte.gz" "$T/train" \
    --limit "$PER" >/dev/null || exit 1
"$W" import-idx "$FM/t10k-images-idx3-ubyte.gz" "$FM/t10k-labels-idx1-ubyte.gz" "$T/val" \
    --limit $((PER / 5)) >/dev/null || exit 1
$PY "$ROOT/tests/bench/torch_trial.py" export --out "$T/resnet18.safetensors" --seed 1 || exit 1
ntrain=$(find "$T/train" -name '*.jpg' | wc -l)
echo "resnet18 @64, $ntrain training images, $EPOCHS epochs, batch 64, $THREADS threads"

for fz in $FREEZES; do
    cat >"$T/spec_$fz.json" <<EOF
{"trial": 1, "seed": 1,
 "data": {"train": "$T/train", "val": "$T/val"},
 "model": {"arch": "resnet18", "weights": "$T/resnet18.safetensors", "input_size": 64},
 "params": {"lr": 0.01, "batch_size": 64, "epochs": $EPOCHS, "momentum": 0.9,
            "freeze": "$fz", "augment": false},
 "out_dir": "$T/out_$fz", "threads": $THREADS}
EOF
    t0=$(date +%s.%N)
    "$W" run "$T/spec_$fz.json" >"$T/events_$fz" 2>"$T/log_$fz"
    rc=$?
    t1=$(date +%s.%N)
    if [ $rc != 0 ]; then
        echo "freeze $fz: sweep-worker exit $rc"
        tail -3 "$T/log_$fz"
        exit 1
    fi
    sw=$(echo "$t1 - $t0" | bc -l)
    swacc=$(grep '"event":"done"' "$T/events_$fz" | $PY -c 'import json,sys; print("%.3f" % json.loads(sys.stdin.read())["val_accuracy"])')
    out=$($PY "$ROOT/tests/bench/torch_trial.py" train --train "$T/train" --val "$T/val" \
        --weights "$T/resnet18.safetensors" --freeze "$fz" --epochs "$EPOCHS" --batch 64 \
        --lr 0.01 --input 64 --threads "$THREADS") || exit 1
    th=$(echo "$out" | $PY -c 'import json,sys; print("%.2f" % json.loads(sys.stdin.read())["seconds"])')
    thacc=$(echo "$out" | $PY -c 'import json,sys; print("%.3f" % max(json.loads(sys.stdin.read())["val_accuracy"]))')
    target=1.2
    [ "$fz" = layer3 ] && target="2.5x (issue 16; issue 5 asked 4"
    ratio=$(echo "$th / $sw" | bc -l)
    printf 'freeze %-6s  sweep-worker %7.2f s (best val acc %s)  pytorch %7.2f s (best val acc %s)  ratio %.2fx (target >= %sx)\n' \
        "$fz" "$sw" "$swacc" "$th" "$thacc" "$ratio" "$target"
done
