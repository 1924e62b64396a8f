#!/bin/bash
# reliability_data — what `sweep-worker run` and `eval` make of hostile data
# folders (issue 21, items 7, 9 and 11), on tiny generated JPEG sets
# (tests/aux/train_mkdata), and sweepd passing its data_roots to them:
#  - with data_roots (trial spec key, `eval --data-root`), a class folder or
#    an image that is a symlink out of every root is skipped with a warning
#    naming it and counted, not trained on; a data folder outside the roots
#    stops the run with exit 3; a bad data_roots entry is exit 2;
#  - without data_roots, a class folder linked to a pool outside the data
#    folder is used (links are followed wherever they point);
#  - a class folder linking back to the data folder ("Self -> .", "Up -> ..")
#    is not a class, with or without data_roots: training runs on the others,
#    with a warning;
#  - a class folder whose name is not valid UTF-8 stops the run with exit 3
#    and an error event whose message names it (escaped);
#  - a training folder with one class stops with exit 3 (classification
#    needs two);
#  - a huge progressive JPEG is skipped with a reason before the decoder
#    allocates its coefficients (peak RSS of `eval` measured);
#  - sweepd with data_roots: trial.json carries them, the real worker trains
#    without the class linked outside, and the test-set evaluation gets them
#    (--data-root) and skips it too.
source "$(dirname "$0")/lib.sh"

W=$BUILD/sweep-worker
MK=$BUILD/tests/train_mkdata
PY=/usr/bin/python3
export SWEEP_PROGRESS_INTERVAL=0

# spec NAME TRAIN [ROOTS]: a one-epoch trial at 16 px with out_dir $T/out/NAME
# (ROOTS: the JSON value of data_roots, absent when not given)
spec() {
    local roots=
    [ -z "${3:-}" ] || roots=", \"data_roots\": $3"
    cat >"$T/$1.json" <<JSON
{"trial": 1, "job": 1, "seed": 5,
 "data": {"train": "$2", "val": null, "val_fraction": 0.25, "test": null},
 "model": {"arch": "resnet18", "weights": null, "input_size": 16, "width": 8},
 "params": {"lr": 0.01, "batch_size": 8, "epochs": 1, "freeze": "none", "optimizer": "sgd"},
 "objective": {"metric": "val_accuracy", "goal": "maximize"},
 "out_dir": "$T/out/$1", "cache_dir": null, "threads": 1$roots}
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
# images NAME: training + validation images of NAME's start event
images() { echo $(($(ev "$1" start train_images) + $(ev "$1" start val_images))); }

"$MK" "$T/outside" 1 6 16 3 --prefix evil || { not_ok "generate outside data"; done_testing; }

# ---- symlinks out of the data folder ---------------------------------------
# links/ holds two classes of 6, a class folder linked to outside/evil0 (a
# pool of 6) and one image linked to outside/.
mkdir -p "$T/roots"
"$MK" "$T/roots/links" 2 6 16 1 || { not_ok "generate data"; done_testing; }
L=$T/roots/links
ln -s "$T/outside/evil0" "$L/evil"
ln -s "$T/outside/evil0/0000.jpg" "$L/class0/zz_out.jpg"
spec links "$L" "[\"$T/roots\"]"
is "data_roots: exit 0" "$(run links)" 0
is "data_roots: the class linked out of the roots is not a class" "$(ev links start classes)" 2
is "data_roots: the image linked out is not used" "$(images links)" 12
like "data_roots: a warning names the class folder linked out" "$(cat "$T/links.err")" \
    "skipping evil: it links outside data_roots"
like "... and the image" "$(cat "$T/links.err")" \
    "skipping class0/zz_out.jpg: it links outside data_roots"
like "... both counted" "$(cat "$T/links.err")" "2 links outside data_roots skipped"
spec links2 "$L" "[\"$T/roots/\", \"$T/outside/./\"]"
is "data_roots holding the pool too: exit 0" "$(run links2)" 0
is "... the linked class is used" "$(ev links2 start classes)" 3
is "... and the linked image" "$(images links2)" 19
spec open "$L"
is "no data_roots: exit 0" "$(run open)" 0
is "no data_roots: the class folder linked to a pool outside is used" "$(ev open start classes)" 3
is "no data_roots: ... and the image linked outside" "$(images open)" 19
unlike "no data_roots: no 'outside' warning" "$(cat "$T/open.err")" "links outside"
spec away "$T/outside" "[\"$T/roots\"]"
is "a data folder outside data_roots: exit 3" "$(run away)" 3
like "... naming it" "$(ev away error message)" "data folder $T/outside .*is outside data_roots"
spec via "$L/evil/.." "[\"$T/roots\"]"
is "a data folder reached through a link out of the roots: exit 3" "$(run via)" 3
spec badroot "$L" "[\"$T/nope\"]"
is "a data_roots entry that does not exist: exit 2" "$(run badroot)" 2
like "... naming it" "$(ev badroot error message)" "data_roots\\[0\\]: cannot resolve $T/nope"
spec relroot "$L" '["roots"]'
is "a relative data_roots entry: exit 2" "$(run relroot)" 2

# ---- a class folder linking back to the data folder ------------------------
"$MK" "$T/roots/self" 2 6 16 2 || { not_ok "generate data"; done_testing; }
ln -s . "$T/roots/self/Self"
ln -s .. "$T/roots/self/Up"
ln -s ../.. "$T/roots/self/class1/loop"
for r in "" "[\"$T/roots\"]"; do
    n=${r:+data_roots}
    n=${n:-no data_roots}
    spec self "$T/roots/self" "$r"
    is "Self -> . ($n): exit 0 (not a class, not an error)" "$(run self)" 0
    is "Self -> . ($n): two classes" "$(ev self start classes)" 2
    is "Self -> . ($n): every image once" "$(images self)" 12
    like "Self -> . ($n): one warning says why" "$(cat "$T/self.err")" \
        "skipping Self: it links back to the data folder; not a class"
    like "Up -> .. ($n): the same" "$(cat "$T/self.err")" \
        "skipping Up: it links back to the data folder; not a class"
    like "a link above the data folder inside a class ($n): not followed" "$(cat "$T/self.err")" \
        "skipping class1/loop: it links back to the data folder$"
    unlike "Self -> . ($n): no 'no usable image' for it" "$(cat "$T/self.err")" "Self.*no usable image"
done

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
spec base "$L" "[\"$T/roots\"]"
is "base model for eval: exit 0" "$(run base)" 0
R=$(rss_kb "$W" eval --weights "$T/out/base/best.safetensors" --data "$T/evalset")
echo "# eval peak RSS with a progressive 16384x16384 JPEG: $R KiB"
check "eval with the progressive 16384x16384 JPEG peaks under 256 MiB ($R KiB)" test "$R" -lt 262144
like "... the image is skipped with the reason" "$(cat "$T/rss.err")" \
    "big.jpg.*progressive JPEG of 16384x16384 pixels would need 1536 MiB of decoder memory"
like "... and the others are evaluated" "$(cat "$T/rss.out")" '"accuracy":'

# ---- eval --data-root ----------------------------------------------------------
"$MK" "$T/roots/evalset2" 2 4 16 7 || { not_ok "generate data"; done_testing; }
ln -s "$T/outside/evil0" "$T/roots/evalset2/evil"
B=$T/out/base/best.safetensors
evl() { # ARGS...: sweep-worker eval (stdout $T/evl.out, stderr $T/evl.err); prints the exit code
    "$W" eval --weights "$B" "$@" >"$T/evl.out" 2>"$T/evl.err"
    echo $?
}
is "eval without --data-root follows the link: a class the model lacks, exit 3" \
    "$(evl --data "$T/roots/evalset2")" 3
like "... naming it" "$(cat "$T/evl.out")" "class 'evil', which is not one of the 2 training classes"
is "eval --data-root: exit 0" "$(evl --data "$T/roots/evalset2" --data-root "$T/roots")" 0
like "... the class linked out of the root is skipped" "$(cat "$T/evl.err")" \
    "skipping evil: it links outside data_roots"
like "... the others evaluated" "$(cat "$T/evl.out")" '"images":8[,}]'
is "eval --data-root with the data folder outside it: exit 3" \
    "$(evl --data "$T/roots/evalset2" --data-root "$T/outside")" 3
is "eval --data-root that does not exist: exit 2" \
    "$(evl --data "$T/roots/evalset2" --data-root "$T/nope")" 2
like "... naming it" "$(cat "$T/evl.out")" "--data-root: cannot resolve $T/nope"
like "eval --help names --data-root" "$("$W" eval --help)" "--data-root DIR"

# ---- sweepd with data_roots and the real worker --------------------------------
source "$(dirname "$0")/daemon_lib.bash"
"$MK" "$T/roots/dtrain" 2 8 16 8 >/dev/null && "$MK" "$T/roots/dtest" 2 4 16 9 >/dev/null ||
    { not_ok "generate data"; done_testing; }
ln -s "$T/outside/evil0" "$T/roots/dtrain/evil"
ln -s "$T/outside/evil0" "$T/roots/dtest/evil"
printf 'data_roots = %s\n' "$T/roots" >"$T/sweepd.conf"
SWEEPD_WORKER=$W "$BUILD/sweepd" --foreground --config "$T/sweepd.conf" --socket "$SOCK" \
    --db "$DB" --state-dir "$VAR" --workers 1 --log-level debug >>"$DLOG" 2>&1 &
DPID=$!
wait_for 10 ping_ok
JOB="{\"name\":\"roots\",\"data\":{\"train\":\"$T/roots/dtrain\",\"val_fraction\":0.25,
 \"test\":\"$T/roots/dtest\"},
 \"model\":{\"arch\":\"resnet18\",\"weights\":null,\"input_size\":16,\"width\":8},
 \"space\":{\"lr\":[0.05]},\"fixed\":{\"epochs\":1,\"batch_size\":6,\"freeze\":\"none\"},\"seed\":3}"
like "sweepd with data_roots: a job with a class folder linked outside is accepted" \
    "$(submit "$JOB")" '"ok":true,"job":1'
wait_for 120 job_ended 1
is "... the job is done" "$(job_state 1)" done
is "... its trial completed by the real worker" "$(sq "SELECT state || ':' || exit_code FROM trials")" \
    "completed:0"
TID=$(sq "SELECT id FROM trials WHERE job_id=1")
is "trial.json carries data_roots" \
    "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["data_roots"])' \
        "$VAR/trials/$TID/trial.json")" "['$T/roots']"
is "the worker trained without the class linked outside" "$("$PY" -c '
import json, sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get("event") == "start": print(e["classes"], e["train_images"] + e["val_images"]); break' \
    "$VAR/trials/$TID/events.ndjson")" "2 16"
like "... saying so in the trial log" "$(cat "$VAR/logs/trial-$TID.log")" \
    "skipping evil: it links outside data_roots"
is "the test-set evaluation ran" "$(sq "SELECT test_accuracy BETWEEN 0 AND 1 FROM trials WHERE id=$TID")" 1
like "... with the roots (it skipped the class linked outside too)" \
    "$(grep -c 'dtest: skipping evil: it links outside data_roots' "$VAR/logs/trial-$TID.log")" '^1$'
"$MK" "$T/roots/done" 1 4 16 10 >/dev/null
ln -s "$T/outside/evil0" "$T/roots/done/evil"
like "sweepd with data_roots: one class folder plus one linked outside is refused" \
    "$(submit "{\"data\":{\"train\":\"$T/roots/done\"},\"model\":{\"weights\":null},\"space\":{\"lr\":[0.1]}}")" \
    "data\\.train: $T/roots/done has one class folder \\(class0\\) inside data_roots; classification needs two"
check "sweepd exits 0" stop_daemon
done_testing
