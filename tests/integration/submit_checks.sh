#!/bin/bash
# submit_checks — what sweepd reads at submission (issue 20): a job that no
# trial could run is refused whole when it is submitted, with ok:false, a
# message naming the key, the file and the mismatch, and nothing stored:
#  - model.arch resnet50 with resnet18 weights (read from the safetensors
#    header's tensor names, not the tensors);
#  - a PyTorch file as model.weights (torch.save's zip archive, a legacy
#    pickle): the message names etc/export-weights.py;
#  - a file that is no ResNet, malformed preprocessing metadata;
#  - data.val / data.test with class folders data.train does not have.
# And what it takes from the weights: without model.arch the file's
# architecture, without model.input_size the file's input size, both said in
# the reply and stored with the job, so the trial spec carries them; a job
# without input_size on 32-px checkpoint weights (a real trial's
# best.safetensors) trains at 32 with the real worker.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.bash"
MKW=$BUILD/tests/mkweights
MK=$BUILD/tests/train_mkdata
if [ ! -x "$MKW" ] || [ ! -x "$MK" ] || [ ! -x "$BUILD/sweep-worker" ]; then
    not_ok "tests/mkweights, tests/train_mkdata and sweep-worker are built in $BUILD"
    done_testing
fi

# ---- files ----
W=$T/w
mkdir -p "$W"
"$MKW" "$W/r18.safetensors" resnet18 4 3 input_size=32 'mean=[0.5,0.4,0.3]' 'std=[0.2,0.2,0.2]'
"$MKW" "$W/r18plain.safetensors" resnet18 4 3
"$MKW" "$W/r50.safetensors" resnet50 4 3
"$MKW" "$W/badsize.safetensors" resnet18 4 3 input_size=big
"$MKW" "$W/badstd.safetensors" resnet18 4 3 'std=[0.2,0,0.2]'
check "weights files written" [ -s "$W/r18.safetensors" ] && [ -s "$W/r50.safetensors" ]
"$PY" - "$W" <<'PY'
import json, pickle, struct, sys, zipfile
d = sys.argv[1]
# torch.save's format since PyTorch 1.6: a zip archive holding archive/data.pkl
with zipfile.ZipFile(d + "/model.pth", "w") as z:
    z.writestr("archive/data.pkl", pickle.dumps({"conv1.weight": [0.0]}, protocol=2))
# the legacy format: pickles one after the other, the first the magic number
with open(d + "/legacy.pth", "wb") as f:
    pickle.dump(0x1950a86a20f9469cfc6c, f, protocol=2)
    pickle.dump({"conv1.weight": [0.0]}, f, protocol=2)
# a safetensors file of other tensors (no ResNet)
h = json.dumps({"encoder.weight": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
h += b" " * (-len(h) % 8)
open(d + "/other.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + b"\0" * 8)
PY
if "$PY" -c 'import torch' 2>/dev/null; then
    "$PY" -c 'import torch, sys; torch.save({"conv1.weight": torch.zeros(2, 3, 7, 7)}, sys.argv[1])' \
        "$W/torch.pth"
else
    cp "$W/model.pth" "$W/torch.pth" # same format; PyTorch itself is not installed here
fi
for c in cat dog; do mkdir -p "$T/train/$c" "$T/test/$c"; done
for c in cat cats; do mkdir -p "$T/val/$c"; done
mkdir -p "$T/test/eel" "$T/fewer/cat"

start_daemon --workers 1
check "sweepd starts" ping_ok
# job TRAIN EXTRA_DATA MODEL: a one-trial grid
job() { printf '{"name":"s","data":{"train":"%s"%s},"model":{%s},"space":{"lr":[0.1]}}' "$1" "$2" "$3"; }
# refused DESC REPLY REGEX: ok false, the message matching REGEX, nothing stored
refused() {
    like "$1: refused" "$2" '"ok": *false'
    like "... the message names the key, the file and the mismatch" "$2" "$3"
    is "... nothing stored" "$(sq 'SELECT (SELECT count(*) FROM jobs) || "/" || (SELECT count(*) FROM trials)')" "0/0"
}
r=$(submit "$(job "$T/train" "" "\"arch\":\"resnet50\",\"weights\":\"$W/r18.safetensors\"")")
refused "arch resnet50 with resnet18 weights" "$r" \
    "model.arch is resnet50 but model.weights $W/r18.safetensors holds a resnet18"
r=$(submit "$(job "$T/train" "" "\"arch\":\"resnet18\",\"weights\":\"$W/r50.safetensors\"")")
refused "arch resnet18 with resnet50 weights" "$r" "model.arch is resnet18 but .*r50.safetensors holds a resnet50"
for f in model torch legacy; do
    r=$(submit "$(job "$T/train" "" "\"weights\":\"$W/$f.pth\"")")
    refused "a PyTorch file ($f.pth)" "$r" \
        "model.weights: $W/$f.pth is a (zip archive|Python pickle).*not a safetensors file; convert it with etc/export-weights.py"
done
unlike "... not the raw header length" "$r" 'header length'
r=$(submit "$(job "$T/train" "" "\"weights\":\"$W/other.safetensors\"")")
refused "a safetensors file that is no ResNet" "$r" \
    'model.weights: .*other.safetensors has no tensor \\"conv1.weight\\".*resnet18, resnet34'
r=$(submit "$(job "$T/train" "" "\"weights\":\"$W/badsize.safetensors\"")")
refused "malformed input_size metadata" "$r" 'model.weights: .*badsize.safetensors: metadata \\"input_size\\" is \\"big\\"'
r=$(submit "$(job "$T/train" "" "\"weights\":\"$W/badstd.safetensors\"")")
refused "a zero std in the metadata" "$r" 'badstd.safetensors: metadata \\"std\\"\[1\] is not a positive number'
r=$(submit "$(job "$T/train" ",\"val\":\"$T/val\"" '"weights":null')")
refused "data.val with other class names" "$r" \
    "data.val: $T/val has 1 class folder that data.train \\($T/train\\) does not have: cats; it lacks data.train's dog"
r=$(submit "$(job "$T/train" ",\"test\":\"$T/test\"" '"weights":null')")
refused "data.test with an extra class" "$r" "data.test: $T/test has 1 class folder that data.train .* does not have: eel"

# ---- accepted: what the daemon takes from the weights ----
r=$(submit "$(job "$T/train" ",\"val\":\"$T/fewer\"" "\"weights\":\"$W/r18.safetensors\"")")
like "no arch, no input_size, 32-px weights: accepted (a val with fewer classes too)" "$r" '"ok": *true'
is "... the reply says the arch and input size and where they came from" \
    "$(jf "$r" 'r["model"]')" '{"arch": "resnet18", "arch_from": "weights", "input_size": 32, "input_size_from": "weights"}'
is "... both stored with the job" \
    "$(sq "SELECT json_extract(spec_json, '\$.model.arch') || ' ' || json_extract(spec_json, '\$.model.input_size') FROM jobs")" \
    "resnet18 32"
wait_for 10 test -s "$VAR/trials/1/trial.json"
is "... the trial spec has them" \
    "$("$PY" -c 'import json,sys; m=json.load(open(sys.argv[1]))["model"]; print(m["arch"], m["input_size"])' "$VAR/trials/1/trial.json")" \
    "resnet18 32"
dc req '{"op":"cancel","job":1}' >/dev/null
r=$(submit "$(job "$T/train" "" "\"weights\":\"$W/r50.safetensors\",\"input_size\":64")")
is "no arch on resnet50 weights: taken from them; input_size given wins" \
    "$(jf "$r" 'r["model"]')" '{"arch": "resnet50", "arch_from": "weights", "input_size": 64, "input_size_from": "job"}'
r=$(submit "$(job "$T/train" "" "\"weights\":\"$W/r18plain.safetensors\"")")
is "weights without input_size metadata: the default 224" "$(jf "$r" 'r["model"]["input_size_from"] + " " + str(r["model"]["input_size"])')" "default 224"
r=$(submit "$(job "$T/train" "" '"weights":null')")
is "from scratch: the default arch and size" "$(jf "$r" 'r["model"]')" \
    '{"arch": "resnet18", "arch_from": "default", "input_size": 224, "input_size_from": "default"}'
like "sweepctl says which size it uses" \
    "$("$BUILD/sweepctl" --socket "$SOCK" submit - <<<"$(job "$T/train" "" "\"weights\":\"$W/r18.safetensors\"")")" \
    "^submitted job [0-9]+ \\(s\\): 1 trials, seed [0-9]+, model resnet18 \\(from the weights\\), input 32 px \\(from the weights' metadata\\)"
for j in $(sq "SELECT id FROM jobs WHERE state IN ('queued','running')"); do dc req '{"op":"cancel","job":'$j'}' >/dev/null; done
stop_daemon

# ---- the real worker: 32-px checkpoint weights, no input_size: trains at 32 ----
"$MK" "$T/img" 2 6 40 3 >/dev/null
cat >"$T/base.json" <<EOF
{"trial": 1, "job": 1, "seed": 5,
 "data": {"train": "$T/img", "val": null, "val_fraction": 0.25, "test": null},
 "model": {"arch": "resnet18", "weights": null, "input_size": 32, "width": 4},
 "params": {"lr": 0.01, "batch_size": 4, "epochs": 1, "freeze": "none"},
 "objective": {"metric": "val_accuracy", "goal": "maximize"},
 "out_dir": "$T/base", "cache_dir": null, "threads": 1}
EOF
"$BUILD/sweep-worker" run "$T/base.json" >"$T/base.out" 2>"$T/base.err"
is "a 32-px base trial: exit 0" "$?" 0
CK=$T/base/best.safetensors
DB=$T/real.db
SWEEPD_WORKER=$BUILD/sweep-worker "$BUILD/sweepd" --foreground --socket "$SOCK" --db "$DB" \
    --state-dir "$T/real" --workers 1 --log-level debug >>"$DLOG" 2>&1 &
DPID=$!
wait_for 10 ping_ok
r=$(submit "{\"name\":\"ft\",\"data\":{\"train\":\"$T/img\",\"val_fraction\":0.25},\"model\":{\"weights\":\"$CK\"},
 \"space\":{\"lr\":[0.01]},\"fixed\":{\"epochs\":1,\"batch_size\":4,\"freeze\":\"layer3\"}}")
like "fine-tune on the checkpoint without input_size: accepted at 32" "$r" '"input_size": *32, *"input_size_from": *"weights"'
wait_for 120 job_ended 1
is "... the trial completed" "$(sq "SELECT state || ' ' || exit_code FROM trials WHERE job_id=1")" "completed 0"
like "... and the worker trained at 32 (its log)" "$(cat "$T/real/logs/trial-1.log")" "input 32 px \\(model.input_size\\)"
stop_daemon
done_testing
