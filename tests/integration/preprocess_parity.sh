#!/bin/bash
# preprocess_parity — one preprocessing (issue 20): the input size and the
# normalisation (mean/std) a weights file carries are used by training,
# validation, `eval` and `predict` alike, through one code path, so
#  - predict and eval give bit-identical logits and probabilities for the
#    same 20 images (non-square, odd margins) with non-ImageNet mean/std
#    weights, batched alike (20 at once, and one by one);
#  - the mean/std are really applied (ImageNet's give other logits) and a
#    trial on such weights trains and validates with them: its start event
#    says so, its checkpoint records them, and eval of its best weights on
#    the validation folder gives the trial's own validation accuracy;
#  - a trial spec without model.input_size on 32-px weights trains at 32
#    and says where the size came from; with one, the spec's wins.
. "$(dirname "$0")/lib.sh"
W=$BUILD/sweep-worker
MKW=$BUILD/tests/mkweights
PY=/usr/bin/python3
if [ ! -x "$W" ] || [ ! -x "$MKW" ]; then
    not_ok "sweep-worker and tests/mkweights are built in $BUILD"
    done_testing
fi
if ! "$PY" -c 'import PIL' 2>/dev/null; then
    not_ok "Pillow importable by $PY to write the test images (etc/install-deps --check installs it)"
    done_testing
fi

# 20 JPEGs, 4 classes, every one a different non-square size (odd and even
# margins around the crops).
"$PY" - "$T/data" <<'PY'
import os, random, sys
from PIL import Image, ImageDraw
root = sys.argv[1]
rnd = random.Random(20)
for i in range(20):
    c = "abcd"[i % 4]
    os.makedirs(os.path.join(root, c), exist_ok=True)
    w, h = 41 + 5 * i, 37 + 3 * (19 - i)
    im = Image.new("RGB", (w, h), tuple(rnd.randrange(256) for _ in range(3)))
    d = ImageDraw.Draw(im)
    for _ in range(6):
        x0, y0 = rnd.randrange(w), rnd.randrange(h)
        d.ellipse([x0, y0, x0 + rnd.randrange(4, 30), y0 + rnd.randrange(4, 30)],
                  fill=tuple(rnd.randrange(256) for _ in range(3)))
    im.save(os.path.join(root, c, "%02d.jpg" % i), quality=90)
PY
check "20 test images" [ "$(ls "$T"/data/*/*.jpg | wc -l)" = 20 ]
META=(format=sweepd-checkpoint-1 arch=resnet18 'classes=["a","b","c","d"]' input_size=32)
"$MKW" "$T/w.safetensors" resnet18 8 4 "${META[@]}" 'mean=[0.6,0.3,0.45]' 'std=[0.15,0.35,0.2]'
"$MKW" "$T/inet.safetensors" resnet18 8 4 "${META[@]}"
check "weights written" [ -s "$T/w.safetensors" ] && [ -s "$T/inet.safetensors" ]

# cmp EVAL PREDICT: compares eval's "predictions" with predict's lines, image
# by image (same files in the same order): prints "same N" or what differs.
cat >"$T/cmp.py" <<'PY'
import json, sys
ev = json.load(open(sys.argv[1]))["predictions"]
pr = [json.loads(l) for l in open(sys.argv[2])]
assert [e["file"] for e in ev] == [p["file"] for p in pr], "files differ"
bad = [e["file"] for e, p in zip(ev, pr) if e["logits"] != p["logits"] or e["top"] != p["top"]]
print("same %d" % len(ev) if not bad else "%d differ: %s" % (len(bad), " ".join(bad)))
PY
# files EVAL: the image paths in eval's order
files() { "$PY" -c 'import json,sys; print("\n".join(p["file"] for p in json.load(open(sys.argv[1]))["predictions"]))' "$1"; }

for b in 20 1; do
    "$W" eval --weights "$T/w.safetensors" --data "$T/data" --predictions --batch $b >"$T/ev$b.json" 2>"$T/ev$b.err"
    is "eval --predictions --batch $b: exit 0" "$?" 0
    mapfile -t imgs < <(files "$T/ev$b.json")
    "$W" predict --weights "$T/w.safetensors" --batch $b --top 4 "${imgs[@]}" >"$T/pr$b" 2>"$T/pr$b.err"
    is "predict --batch $b: exit 0" "$?" 0
    is "predict and eval: bit-identical logits and probabilities, batch $b" \
        "$("$PY" "$T/cmp.py" "$T/ev$b.json" "$T/pr$b")" "same 20"
done
like "eval reports the input size and the weights' normalisation" "$(cat "$T/ev20.json")" \
    '"input_size": *32, *"normalization": *\{"mean": *\[0\.6[0-9]*, *0\.3[0-9]*, *0\.4[0-9]*\], *"std": *\[0\.1[0-9]*'
like "predict says which input size and normalisation it uses" "$(cat "$T/pr20.err")" \
    "input 32 px \\(the weights' metadata\\), mean 0\\.6 0\\.3 0\\.45, std 0\\.15 0\\.35 0\\.2 \\(the weights' metadata\\)"
"$W" predict --weights "$T/inet.safetensors" --batch 20 --top 4 "${imgs[@]}" >"$T/prinet" 2>/dev/null
"$W" eval --weights "$T/inet.safetensors" --data "$T/data" --predictions --batch 20 >"$T/evinet.json" 2>/dev/null
like "the same weights with ImageNet's mean/std give other logits (the metadata is applied)" \
    "$("$PY" "$T/cmp.py" "$T/ev20.json" "$T/prinet")" '^20 differ'
is "... and eval agrees with predict there too" "$("$PY" "$T/cmp.py" "$T/evinet.json" "$T/prinet")" "same 20"

# ---- training and validation with the weights' preprocessing ----
# spec NAME WEIGHTS MODEL_EXTRA: a one-epoch fine-tune, data.val the same folder
spec() {
    cat >"$T/$1.json" <<EOF
{"trial": 1, "job": 1, "seed": 9,
 "data": {"train": "$T/data", "val": "$T/data", "val_fraction": 0.25, "test": null},
 "model": {"weights": "$2"$3},
 "params": {"lr": 0.01, "batch_size": 5, "epochs": 1, "freeze": "layer3"},
 "objective": {"metric": "val_accuracy", "goal": "maximize"},
 "out_dir": "$T/out/$1", "cache_dir": null, "threads": 1}
EOF
}
ev_get() { "$PY" -c 'import json,sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    if o.get("event") == sys.argv[2]: v = o.get(sys.argv[3])
print(json.dumps(v))' "$@"; }
spec ft "$T/w.safetensors" ""
"$W" run "$T/ft.json" >"$T/ft.out" 2>"$T/ft.err"
is "a trial on the non-ImageNet weights: exit 0" "$?" 0
is "... trains at the weights' input size, and says so" \
    "$(ev_get "$T/ft.out" start input_size) $(ev_get "$T/ft.out" start input_size_from)" '32 "weights"'
like "... with the weights' mean/std, and says so" "$(ev_get "$T/ft.out" start normalization)" \
    '^\{"mean": \[0\.6[0-9]*, 0\.3[0-9]*, 0\.4[0-9]*\], "std": \[0\.1[0-9]*, 0\.3[0-9]*, 0\.2[0-9]*\], "from": "weights"\}$'
meta=$("$PY" -c 'import json,struct,sys
b = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", b[:8])[0]
m = json.loads(b[8:8 + n])["__metadata__"]; print(m["input_size"], m["mean"], m["std"])' "$T/out/ft/best.safetensors")
like "... its checkpoint records them" "$meta" '^32 \[0\.6[0-9]*, *0\.3[0-9]*, *0\.4[0-9]*\] \[0\.1[0-9]*, *0\.3[0-9]*, *0\.2[0-9]*\]$'
"$W" eval --weights "$T/out/ft/best.safetensors" --data "$T/data" >"$T/evft.json" 2>/dev/null
is "... eval of its best weights on the validation folder = the trial's validation accuracy" \
    "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["accuracy"])' "$T/evft.json")" \
    "$(ev_get "$T/ft.out" done val_accuracy)"

spec sized "$T/w.safetensors" ', "input_size": 40'
"$W" run "$T/sized.json" >"$T/sized.out" 2>"$T/sized.err"
is "model.input_size given: the spec's wins and the start event says so" \
    "$(ev_get "$T/sized.out" start input_size) $(ev_get "$T/sized.out" start input_size_from)" '40 "spec"'
"$MKW" "$T/plain.safetensors" resnet18 8 4
spec plain "$T/plain.safetensors" ""
"$W" run "$T/plain.json" >"$T/plain.out" 2>"$T/plain.err"
is "weights without metadata: 224 by default, ImageNet's normalisation" \
    "$(ev_get "$T/plain.out" start input_size) $(ev_get "$T/plain.out" start input_size_from) $("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["from"])' "$(ev_get "$T/plain.out" start normalization)")" \
    '224 "default" imagenet'
done_testing
