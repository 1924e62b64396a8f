#!/bin/bash
# reliability_data — what `sweep-worker run` and `eval` make of hostile data
# folders (issue 21, items 7, 9 and 11), on tiny generated JPEG sets
# (tests/aux/train_mkdata):
#  - a class folder or an image that is a symlink out of the data folder is
#    skipped with a warning naming it, not trained on;
#  - a class folder linking back to the data folder ("Self -> .") is not a
#    class: training runs on the others, with a warning;
#  - a class folder whose name is not valid UTF-8 stops the run with exit 3
#    and an error event whose message names it (escaped);
#  - a training folder with one class stops with exit 3 (classification
#    needs two);
#  - a huge progressive JPEG is skipped with a reason before the decoder
#    allocates its coefficients (peak RSS of `eval` measured).
source "$(dirname "$0")/lib.sh"

W=$BUILD/sweep-worker
MK=$BUILD/tests/train_mkdata
PY=/usr/bin/python3
export SWEEP_PROGRESS_INTERVAL=0

# spec NAME TRAIN: a one-epoch trial at 16 px with out_dir $T/out/NAME
spec() {
    cat >"$T/$1.json" <<JSON
{"trial": 1, "job": 1, "seed": 5,
 "data": {"train": "$2", "val": null, "val_fraction": 0.25, "test": null},
 "model": {"arch": "resnet18", "weights": null, "input_size": 16, "width": 8},
 "params": {"lr": 0.01, "batch_size": 8, "epochs": 1, "freeze": "none", "optimizer": "sgd"},
 "objective": {"metric": "val_accuracy", "goal": "maximize"},
 "out_dir": "$T/out/$1", "cache_dir": null, "threads": 1}
JSON
}
# run NAME: runs the spec (stdout $T/NAME.out, stderr $T/NAME.err); prints the exit code
run() {
    "$W" run "$T/$1.json" >"$T/$1.out" 2>"$T/$1.err"
    echo $?
}
# ev NAME EVENT FIELD: FIELD of the first EVENT line of NAME's output (JSON)
ev() {
    "$PY" -c '
import json, sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get("event") == sys.argv[2]:
        print(json.dumps(e.get(sys.argv[3]))); break' "$T/$1.out" "$2" "$3"
}

"$MK" "$T/outside" 1 6 16 3 --prefix evil || { not_ok "generate outside data"; done_testing; }

# ---- symlinks out of the data folder ---------------------------------------
"$MK" "$T/links" 2 6 16 1 || { not_ok "generate data"; done_testing; }
ln -s "$T/outside/evil0" "$T/links/evil"
ln -s "$T/outside/evil0/0000.jpg" "$T/links/class0/zz_out.jpg"
spec links "$T/links"
is "links: exit 0" "$(run links)" 0
is "links: the class linked out of the data folder is not a class" "$(ev links start classes)" 2
is "links: the image linked out is not used" \
    "$(( $(ev links start train_images) + $(ev links start val_images) ))" 12
like "links: a warning names the class folder linked out" "$(cat "$T/links.err")" \
    "skipping evil: it links outside the data folder"
like "links: ... and the image" "$(cat "$T/links.err")" \
    "skipping class0/zz_out.jpg: it links outside the data folder"

# ---- a class folder linking back to the data folder ------------------------
"$MK" "$T/self" 2 6 16 2 || { not_ok "generate data"; done_testing; }
ln -s . "$T/self/Self"
spec self "$T/self"
is "Self -> .: exit 0 (not a class, not an error)" "$(run self)" 0
is "Self -> .: two classes" "$(ev self start classes)" 2
like "Self -> .: one warning says why" "$(cat "$T/self.err")" "Self links back to the data folder; not a class"
unlike "Self -> .: no 'no usable image' for it" "$(cat "$T/self.err")" "Self.*no usable image"

# ---- a class folder name that is not UTF-8 ---------------------------------
"$MK" "$T/bytes" 2 6 16 4 || { not_ok "generate data"; done_testing; }
mkdir "$T/bytes/caf"$'\xe9'
cp "$T/bytes/class0/"*.jpg "$T/bytes/caf"$'\xe9'/
spec bytes "$T/bytes"
is "non-UTF-8 class folder: exit 3" "$(run bytes)" 3
like "... error event with a message naming it, escaped" "$(ev bytes error message)" \
    'class folder \\"caf\\\\xe9\\" has a name that is not valid UTF-8'
check "... and no best weights" test ! -e "$T/out/bytes/best.safetensors"
# An empty class folder with such a name: today's message would name it raw.
"$MK" "$T/bytes2" 2 6 16 4 || { not_ok "generate data"; done_testing; }
mkdir "$T/bytes2/x"$'\xff'
spec bytes2 "$T/bytes2"
is "empty non-UTF-8 class folder: exit 3" "$(run bytes2)" 3
like "... its error event has a message" "$(ev bytes2 error message)" '^".+"$'
# Every error event of every run here carries a non-empty message.
is "every error event carries a message" "$(cat "$T"/*.out | "$PY" -c '
import json, sys
n = 0
for l in sys.stdin:
    e = json.loads(l)
    if e.get("event") == "error" and not e.get("message"): n += 1
print(n)')" 0

# ---- one class ---------------------------------------------------------------
"$MK" "$T/one" 1 8 16 5 || { not_ok "generate data"; done_testing; }
spec one "$T/one"
is "one class: exit 3" "$(run one)" 3
like "... classification needs two" "$(ev one error message)" \
    "has one class folder \\(class0\\); classification needs two or more"

# ---- a huge progressive JPEG -------------------------------------------------
# A small progressive 4:4:4 JPEG whose frame header says 16384x16384: libjpeg
# sizes its coefficient buffer (1.5 GiB) from that header.
"$PY" - "$T/big.jpg" <<'PYEOF'
import io, sys
from PIL import Image
b = io.BytesIO()
Image.new("RGB", (64, 64), (200, 30, 30)).save(b, "JPEG", progressive=True, subsampling=0, quality=90)
d = bytearray(b.getvalue())
i = d.index(b"\xff\xc2")
d[i + 5:i + 9] = (16384).to_bytes(2, "big") * 2
open(sys.argv[1], "wb").write(bytes(d))
PYEOF
"$MK" "$T/evalset" 2 4 16 6 || { not_ok "generate data"; done_testing; }
cp "$T/big.jpg" "$T/evalset/class0/big.jpg"
rss_kb() { # CMD...: runs CMD (output to $T/rss.out/.err) and prints its peak RSS in KiB
    /usr/bin/time -f '%M' -o "$T/rss.time" "$@" >"$T/rss.out" 2>"$T/rss.err"
    tail -1 "$T/rss.time"
}
spec base "$T/links"
is "base model for eval: exit 0" "$(run base)" 0
R=$(rss_kb "$W" eval --weights "$T/out/base/best.safetensors" --data "$T/evalset")
echo "# eval peak RSS with a progressive 16384x16384 JPEG: $R KiB"
check "eval with the progressive 16384x16384 JPEG peaks under 256 MiB ($R KiB)" test "$R" -lt 262144
like "... the image is skipped with the reason" "$(cat "$T/rss.err")" \
    "big.jpg.*progressive JPEG of 16384x16384 pixels would need 1536 MiB of decoder memory"
like "... and the others are evaluated" "$(cat "$T/rss.out")" '"accuracy":'
done_testing
