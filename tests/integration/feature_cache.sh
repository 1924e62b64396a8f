#!/bin/bash
# feature_cache — the shared frozen-prefix feature cache (README.md "Feature
# cache") end to end with `sweep-worker run` on tiny generated JPEG sets: a
# reused entry gives the metrics of the trial that built it bit for bit (and
# of "feature_cache": false); two workers started together on one key build
# it once (one "built", one "waited"); a SIGKILL during a build leaves no
# readable entry and the next trial rebuilds; the frozen prefix's tensors as
# loaded (not the weights' path or mtime, nor tensors outside the prefix; after
# a resume the checkpoint's, even when the file changed since), the image list and the dynamically linked OpenBLAS and
# libjpeg-turbo are in the key; a corrupt entry is discarded and rebuilt;
# layer3 features continued from cached layer2 ones give the metrics of
# building layer3 directly; eviction keeps the folder under cache_max_mb,
# least recently used first. Through sweepd (2 workers):
# when the next queued trial needs an entry a running trial is building, the
# daemon starts a trial of another key instead, so each entry is built once
# and no slot waits; trial specs carry cache_max_mb.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.bash"

W=$BUILD/sweep-worker
MK=$BUILD/tests/train_mkdata
TOOL="/usr/bin/python3 $ROOT/tests/integration/train_tool.py"
export SWEEP_PROGRESS_INTERVAL=0
unset SWEEP_TEST_FEATURE_HOLD

"$MK" "$T/data" 4 12 24 5 >/dev/null || { not_ok "generate data"; done_testing; }
"$MK" "$T/big" 4 40 32 6 >/dev/null || { not_ok "generate data"; done_testing; }

# spec NAME FREEZE [EXTRA] [WEIGHTS] [DATA] [INPUT] [CACHE]
spec() {
    cat >"$T/$1.json" <<EOF
{"trial": 1, "job": 1, "seed": 17,
 "data": {"train": "${5:-$T/data}", "val": null, "val_fraction": 0.25},
 "model": {"arch": "resnet18", "weights": ${4:-\"$T/out/base/best.safetensors\"}, "input_size": ${6:-32}},
 "params": {"lr": 0.05, "batch_size": 8, "epochs": 2, "freeze": "$2", "augment": false},
 "out_dir": "$T/out/$1", "cache_dir": "${7:-$T/cache}", "threads": 1 ${3:-}}
EOF
}
run() { # NAME: runs the spec afresh (no checkpoint to resume); prints the exit code
    rm -rf "$T/out/$1"
    "$W" run "$T/$1.json" >"$T/$1.out" 2>"$T/$1.err"
    echo $?
}
features() { $TOOL get "$T/$1.out" start features; }
# metrics NAME: the epoch and done events without timing and paths
metrics() {
    $TOOL norm "$T/$1.out" "$T/out/$1=OUT" | grep -E '"event": "(epoch|done)"'
}
entries() { find "${1:-$T/cache}/features" -name 'feat-*.bin' | wc -l; }
temps() { find "${1:-$T/cache}/features" -name 'feat-*.bin.tmp*' | wc -l; }

# ---- a base model (from scratch, no cache) ----------------------------------
cat >"$T/base.json" <<EOF
{"trial": 1, "seed": 3, "data": {"train": "$T/data", "val_fraction": 0.25},
 "model": {"arch": "resnet18", "weights": null, "input_size": 24, "width": 8},
 "params": {"lr": 0.05, "batch_size": 8, "epochs": 2, "freeze": "none"},
 "out_dir": "$T/out/base", "threads": 1}
EOF
is "base model: exit 0" "$(run base)" 0

# ---- built, reused, off: identical metrics ---------------------------------
spec a layer3
spec b layer3
spec off layer3 ', "feature_cache": false'
is "first trial: exit 0" "$(run a)" 0
is "first trial builds the entry" "$(features a)" '"built"'
is "one entry in cache_dir/features" "$(entries)" 1
# the key text (stored whole in the entry) names the dynamically linked
# libraries: OpenBLAS's configuration and the libjpeg-turbo file's hash
key_text=$(find "$T/cache/features" -name 'feat-*.bin' -exec head -c 4096 {} + | tr -d '\000')
like "the key holds OpenBLAS's configuration" "$key_text" '"openblas":"OpenBLAS [0-9]'
like "the key holds the libjpeg-turbo library's hash" "$key_text" '"jpeg":"[0-9a-f]{32}"'
is "second trial: exit 0" "$(run b)" 0
is "second trial reuses it" "$(features b)" '"reused"'
grep -q 'reusing .*/features/feat-' "$T/b.err" && ok "its log names the entry" ||
    not_ok "its log names the entry"
is "reused entry: bit-identical epoch and done events" "$(metrics b)" "$(metrics a)"
is "feature_cache false: exit 0" "$(run off)" 0
is "feature_cache false: start says off" "$(features off)" '"off"'
is "feature_cache false: the same metrics as through the cache" "$(metrics off)" "$(metrics a)"
is "still one entry" "$(entries)" 1

# ---- the key: weights content, not path or mtime; the image list ------------
cp "$T/out/base/best.safetensors" "$T/copy.safetensors"
spec wcopy layer3 "" "\"$T/copy.safetensors\""
is "same weights at another path: exit 0" "$(run wcopy)" 0
is "same weights content at another path reuses the entry" "$(features wcopy)" '"reused"'
touch -d '2001-01-01' "$T/copy.safetensors"
is "touched weights: exit 0" "$(run wcopy)" 0
is "a new mtime of the same weights reuses the entry" "$(features wcopy)" '"reused"'
# flip FILE TENSOR: changes the first value of one tensor of a safetensors file
flip() {
    /usr/bin/python3 - "$1" "$2" <<'EOF'
import json, struct, sys
p, name = sys.argv[1], sys.argv[2]
b = bytearray(open(p, "rb").read())
n = struct.unpack("<Q", b[:8])[0]
at = 8 + n + json.loads(b[8:8 + n])[name]["data_offsets"][0]
b[at + 1] ^= 0x01
open(p, "wb").write(bytes(b))
EOF
}
flip "$T/copy.safetensors" fc.bias
is "weights changed outside the prefix: exit 0" "$(run wcopy)" 0
is "a change outside the frozen prefix (the head) reuses the entry" "$(features wcopy)" '"reused"'
flip "$T/copy.safetensors" conv1.weight
is "changed weights: exit 0" "$(run wcopy)" 0
is "changed prefix weights are another key" "$(features wcopy)" '"built"'
is "two entries" "$(entries)" 2
cp -a "$T/data" "$T/data2"
spec list layer3 "" "" "$T/data2"
is "copied folder: exit 0" "$(run list)" 0
is "another folder is another image list" "$(features list)" '"built"'
is "copied folder again: exit 0" "$(run list)" 0
is "same folder: reused" "$(features list)" '"reused"'
touch "$(find "$T/data2/class0" -name '*.jpg' | sort | head -1)"
is "touched image: exit 0" "$(run list)" 0
is "an image with a new mtime changes the list" "$(features list)" '"built"'
cp "$(find "$T/data2/class1" -name '*.jpg' | sort | head -1)" "$T/data2/class1/extra.jpg"
is "added image: exit 0" "$(run list)" 0
is "an added image changes the list" "$(features list)" '"built"'

# ---- a weights file rewritten between a checkpoint and its resume ----------
# The resumed trial's prefix is the checkpoint's (the old weights): its key
# must be the old one, so a fresh trial of the new file does not read it.
cp "$T/out/base/best.safetensors" "$T/v.safetensors"
spec rs layer3 "" "\"$T/v.safetensors\"" "" "" "$T/c6"
spec rsnew layer3 "" "\"$T/v.safetensors\"" "" "" "$T/c6"
spec rsoff layer3 ', "feature_cache": false' "\"$T/v.safetensors\"" "" "" "$T/c6"
rm -rf "$T/out/rs"
SWEEP_TEST_SIGNAL_AT_STEP=2 "$W" run "$T/rs.json" >"$T/rs1.out" 2>"$T/rs1.err"
is "stopped at step 2: exit 7" "$?" 7
is "... having built the entry of the old weights" "$($TOOL get "$T/rs1.out" start features)" '"built"'
flip "$T/v.safetensors" conv1.weight
"$W" run "$T/rs.json" >"$T/rs.out" 2>"$T/rs.err"
is "the resume: exit 0" "$?" 0
like "... resumed from its checkpoint" "$(cat "$T/rs.err")" "resuming from .*checkpoint"
is "... reuses the old weights' entry (its prefix is the checkpoint's)" "$(features rs)" '"reused"'
is "... so still one entry" "$(entries "$T/c6")" 1
is "a fresh trial of the rewritten file: exit 0" "$(run rsnew)" 0
is "... builds its own entry" "$(features rsnew)" '"built"'
is "feature_cache false on the rewritten file: exit 0" "$(run rsoff)" 0
is "... the same metrics as the fresh trial" "$(metrics rsoff)" "$(metrics rsnew)"

# ---- two workers at once: one builds, the other waits -----------------------
spec w1 layer2 "" "" "" 40 "$T/c2"
spec w2 layer2 "" "" "" 40 "$T/c2"
HOLD=$T/release
SWEEP_TEST_FEATURE_HOLD=$HOLD "$W" run "$T/w1.json" >"$T/w1.out" 2>"$T/w1.err" &
p1=$!
for _ in $(seq 1 3000); do [ -e "$HOLD.held" ] && break; sleep 0.01; done
check "the first worker is inside its build" test -e "$HOLD.held"
"$W" run "$T/w2.json" >"$T/w2.out" 2>"$T/w2.err" &
p2=$!
for _ in $(seq 1 3000); do grep -q '"event":"start"' "$T/w2.out" 2>/dev/null && break; sleep 0.01; done
is "the second worker waits for it" "$(features w2)" '"waited"'
is "no entry while the build is held" "$(entries "$T/c2")" 0
touch "$HOLD"
wait $p1
r1=$?
wait $p2
r2=$?
is "both exit 0" "$r1 $r2" "0 0"
is "the first built" "$(features w1)" '"built"'
is "one build: one entry" "$(entries "$T/c2")" 1
grep -q 'waited .* s for .*feat-' "$T/w2.err" && ok "the waiter read the builder's entry" ||
    not_ok "the waiter read the builder's entry"
is "waiter and builder: the same metrics" "$(metrics w2)" "$(metrics w1)"

# ---- SIGKILL during a build ---------------------------------------------------
rm -f "$HOLD" "$HOLD.held"
spec k1 layer1 "" "" "" 40 "$T/c3"
spec k2 layer1 "" "" "" 40 "$T/c3"
SWEEP_TEST_FEATURE_HOLD=$HOLD "$W" run "$T/k1.json" >"$T/k1.out" 2>"$T/k1.err" &
p1=$!
for _ in $(seq 1 3000); do [ -e "$HOLD.held" ] && break; sleep 0.01; done
kill -KILL $p1
wait $p1 2>/dev/null
is "killed during the build: no entry" "$(entries "$T/c3")" 0
is "killed during the build: its temporary file stays" "$(temps "$T/c3")" 1
is "next trial: exit 0" "$(run k2)" 0
is "the next trial rebuilds" "$(features k2)" '"built"'
is "the dead build's temporary is gone" "$(temps "$T/c3")" 0
grep -q 'left by a build that did not finish' "$T/k2.err" && ok "its removal is logged" ||
    not_ok "its removal is logged"
spec k3 layer1 ', "feature_cache": false' "" "" 40 "$T/c3"
is "uncached run: exit 0" "$(run k3)" 0
is "the rebuilt entry gives the uncached metrics" "$(metrics k2)" "$(metrics k3)"

# ---- a corrupt entry -------------------------------------------------------------
f=$(find "$T/c3/features" -name 'feat-*.bin' | head -1)
/usr/bin/python3 - "$f" <<'EOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0x10  # one bit of the payload
open(p, "wb").write(bytes(b))
EOF
is "corrupt entry: exit 0" "$(run k2)" 0
is "a corrupt entry is rebuilt" "$(features k2)" '"built"'
grep -q 'discarding .*checksum' "$T/k2.err" && ok "the discard is logged with its reason" ||
    not_ok "the discard is logged with its reason"
is "rebuilt after corruption: the same metrics" "$(metrics k2)" "$(metrics k3)"
is "corrupt entry: reused again afterwards" "$(run k2) $(features k2)" '0 "reused"'

# ---- layer3 from cached layer2 features ---------------------------------------
spec d2 layer2 "" "" "" 32 "$T/c4"
spec d3 layer3 "" "" "" 32 "$T/c4"
is "layer2 trial: exit 0" "$(run d2)" 0
is "layer3 trial: exit 0" "$(run d3)" 0
is "layer3 builds its own entry" "$(features d3)" '"built"'
grep -q 'continuing the cached layer2 features' "$T/d3.err" && ok "from the layer2 entry" ||
    not_ok "from the layer2 entry"
is "layer3 from layer2 features: bit-identical to layer3 built from the images" \
    "$(metrics d3 | sed "s|$T/out/d3|OUT|g")" "$(metrics a | sed "s|$T/out/a|OUT|g")"

# ---- eviction under cache_max_mb ----------------------------------------------
# entries of 120 + 40 images: stem at 64 (8 x 16 x 16 floats: 1.25 MiB),
# layer1 at 64 (the same size), stem at 56 (0.96 MiB); the bound is 3 MiB.
E=', "cache_max_mb": 3'
spec e1 stem "$E" "" "$T/big" 64 "$T/c5"
spec e2 layer1 "$E" "" "$T/big" 64 "$T/c5"
spec e3 stem "$E" "" "$T/big" 56 "$T/c5"
bytes() { find "$T/c5/features" -name 'feat-*' -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }
under() { [ "$(bytes)" -le $((3 * 1048576)) ]; }
is "e1: exit 0" "$(run e1) $(features e1)" '0 "built"'
is "e2: exit 0" "$(run e2) $(features e2)" '0 "built"'
is "two entries fit" "$(entries "$T/c5")" 2
is "e3: exit 0" "$(run e3) $(features e3)" '0 "built"'
check "the folder stays under cache_max_mb" under
is "the third entry evicted one" "$(entries "$T/c5")" 2
grep -q 'evicted feat-' "$T/e3.err" && ok "the eviction is logged" || not_ok "the eviction is logged"
is "e2 (used after e1) was kept" "$(run e2) $(features e2)" '0 "reused"'
is "e1 (least recently used) was evicted" "$(run e1) $(features e1)" '0 "built"'
check "still under cache_max_mb" under
is "then e3 (now least recently used) is the one gone" "$(run e3) $(features e3)" '0 "built"'
spec zero stem ', "cache_max_mb": 0' "" "$T/big" 64 "$T/c5"
is "cache_max_mb 0: exit 0" "$(run zero)" 0
is "cache_max_mb 0 turns the cache off, even for an entry that is there" "$(features zero)" '"off"'
spec huge stem ', "cache_max_mb": 1' "" "$T/big" 64 "$T/c6"
is "an entry larger than cache_max_mb: exit 0" "$(run huge)" 0
is "an entry larger than cache_max_mb is not cached" "$(features huge)" '"off"'
is "the too-large trial's metrics are the cached ones" "$(metrics huge | sed "s|$T/out/huge|OUT|g")" \
    "$(metrics e1 | sed "s|$T/out/e1|OUT|g")"

# ---- sweepd: one builder per key, no slot left waiting ------------------------
# grid order: label_smoothing varies fastest, so trials 0 and 1 share layer3
# and trials 2 and 3 share layer2.
SWEEPD_WORKER=$W "$BUILD/sweepd" --foreground --socket "$SOCK" --db "$DB" --state-dir "$VAR" \
    --workers 2 --log-level debug >>"$DLOG" 2>&1 &
DPID=$!
wait_for 10 ping_ok
JOB="{\"name\":\"fc\",\"data\":{\"train\":\"$T/data\",\"val_fraction\":0.25},
 \"model\":{\"arch\":\"resnet18\",\"weights\":\"$T/out/base/best.safetensors\",\"input_size\":32},
 \"space\":{\"freeze\":[\"layer3\",\"layer2\"],\"label_smoothing\":[0.0,0.1]},
 \"fixed\":{\"epochs\":2,\"batch_size\":8,\"augment\":false},\"max_parallel\":2,\"seed\":4}"
like "daemon: submit" "$(submit "$JOB")" '"ok":true,"job":1,"trials":4'
wait_for 300 job_ended 1
is "daemon: job done" "$(job_state 1)" done
is "daemon: trial 0 is layer3, trial 1 layer3, trial 2 layer2" \
    "$(sq "SELECT group_concat(json_extract(params_json, '\$.freeze'), ' ') FROM (SELECT params_json FROM trials WHERE job_id=1 ORDER BY number)")" \
    "layer3 layer3 layer2 layer2"
is "daemon: the two first trials started are of two keys (0 and 2)" \
    "$(sq "SELECT group_concat(number, ' ') FROM (SELECT number FROM trials WHERE job_id=1 ORDER BY started_at, number LIMIT 2)")" \
    "0 2"
is "daemon: each entry built once, then reused, none waited" \
    "$(cat "$VAR"/trials/*/events.ndjson | grep -o '"features":"[a-z]*"' | sort | uniq -c | awk '{print $1, $2}' | tr '\n' ' ')" \
    '2 "features":"built" 2 "features":"reused" '
grep -q 'starts before trial' "$DLOG" && ok "daemon: the reordering is logged" ||
    not_ok "daemon: the reordering is logged"
like "daemon: trial specs carry cache_max_mb" "$(cat "$VAR/trials/1/trial.json")" '"cache_max_mb":[0-9]+,'
stop_daemon

done_testing
