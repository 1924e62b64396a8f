#!/bin/bash
# tfevents — the TensorBoard event files of real trials (sweep-worker run on
# tiny generated JPEG sets, then sweepd with the real worker), read back by an
# independent decoder: tests/integration/tfevents_read.py checks every
# record's CRC-32C in Python and decodes the protos with Debian's
# python3-protobuf from the .proto files in tests/integration/tfevents/
# (compiled here with protoc). Checked: every scalar equals the worker's epoch
# event (or the database's trial_metrics row) for that trial and epoch, the
# objective is the best so far, the hparams session start holds the trial's
# params, the session end says success; a resumed trial (stopped by SIGTERM,
# resumed from a checkpoint older than the event files, or with the event
# files lost) has every epoch exactly once; a fresh start in the same out_dir
# removes the old files; a flipped byte is reported as a CRC mismatch.
source "$(dirname "$0")/lib.sh"

W=$BUILD/sweep-worker
MK=$BUILD/tests/train_mkdata
PY=/usr/bin/python3
READ="$PY $ROOT/tests/integration/tfevents_read.py"
PB=$T/pb
export SWEEP_PROGRESS_INTERVAL=0
if ! command -v protoc >/dev/null || ! $PY -c 'import google.protobuf' 2>/dev/null; then
    not_ok "protoc and python3-protobuf are installed (etc/install-deps --check)"
    done_testing
fi
check "protoc compiles the test's event.proto, summary.proto, hparams.proto" $READ compile "$PB"
"$MK" "$T/data" 4 12 16 5 >/dev/null || { not_ok "generate data"; done_testing; }

# spec NAME PARAMS: writes $T/NAME.json (trial 5, job 2) with out_dir $T/out/NAME
spec() {
    cat >"$T/$1.json" <<EOF
{"trial": 5, "job": 2, "seed": 17,
 "data": {"train": "$T/data", "val": null, "val_fraction": 0.25, "test": null},
 "model": {"arch": "resnet18", "weights": null, "input_size": 16, "width": 8},
 "params": {$2},
 "objective": {"metric": "val_accuracy", "goal": "maximize"},
 "out_dir": "$T/out/$1", "cache_dir": null, "threads": 1}
EOF
}
# run NAME OUT: runs the spec, events to $T/OUT.out; prints the exit code
run() {
    "$W" run "$T/$1.json" >"$T/$2.out" 2>"$T/$2.err"
    echo $?
}
# tb DIR EVENTS...: the decoder's verdict on DIR against the runs' events
tb() {
    local d=$1
    shift
    $READ check "$PB" "$d" --metric val_accuracy --goal maximize --events "$@"
}
nfiles() { find "$1" -maxdepth 1 -name 'events.out.tfevents.*' | wc -l; }
scalars() { $READ dump "$PB" "$1" | grep '"scalars"' | sed 's/"file": "[^"]*", "index": [0-9]*, //; s/"wall_time": [0-9.e+]*//'; }

P='"lr": 0.02, "batch_size": 8, "epochs": 3, "freeze": "none", "optimizer": "sgd", "dropout": 0.1'

# ---- one trial ----------------------------------------------------------------
spec plain "$P"
is "plain: exit 0" "$(run plain plain)" 0
is "plain: one event file" "$(nfiles "$T/out/plain")" 1
like "plain: named as TensorBoard names them" "$(ls "$T/out/plain")" \
    "events\.out\.tfevents\.[0-9]{10}\.[A-Za-z0-9._-]+\.[0-9]+"
is "plain: every record decodes, CRCs hold, scalars equal the epoch events, hparams and end present" \
    "$(tb "$T/out/plain" "$T/plain.out")" ok
is "plain: 6 records (file_version, session start, 3 epochs, session end)" \
    "$($READ dump "$PB" "$T/out/plain" | wc -l)" 6
like "plain: the session start carries the params" "$($READ dump "$PB" "$T/out/plain" | grep session_start)" \
    '"batch_size": 8.0.*"dropout": 0.1.*"freeze": "none".*"job": 2.0.*"lr": 0.02.*"optimizer": "sgd"'
like "plain: the session start's group is the trial id" "$($READ dump "$PB" "$T/out/plain" | grep session_start)" \
    '"group_name": "5"'
cp -a "$T/out/plain" "$T/plain_files"
is "restart of the finished trial: exit 0" "$(run plain plain_again)" 0
is "restart of the finished trial: no new event file, the old one unchanged" \
    "$(cd "$T/out/plain" && md5sum events.out.tfevents.*)" "$(cd "$T/plain_files" && md5sum events.out.tfevents.*)"

# ---- stopped by SIGTERM in epoch 2, resumed ------------------------------------
steps=$($PY "$ROOT/tests/integration/train_tool.py" get "$T/plain.out" start steps_per_epoch)
spec stop "$P"
is "stop at step $((steps + 2)) (epoch 2): exit 7" "$(SWEEP_TEST_SIGNAL_AT_STEP=$((steps + 2)) run stop stop1)" 7
is "stopped: the files hold epoch 1 and no session end" \
    "$($READ dump "$PB" "$T/out/stop" | grep -c '"scalars"') $($READ dump "$PB" "$T/out/stop" | grep -c session_end)" "1 0"
cp -a "$T/out/stop" "$T/stop_saved" # checkpoint at epoch 1 step 2, event files up to epoch 1
is "resume: exit 0" "$(run stop stop2)" 0
is "resume: a second event file" "$(nfiles "$T/out/stop")" 2
is "resume: each epoch once over both files, values equal the epoch events of both runs" \
    "$(tb "$T/out/stop" "$T/stop1.out" "$T/stop2.out")" ok
is "resume: the same scalars as the uninterrupted run" "$(scalars "$T/out/stop")" "$(scalars "$T/out/plain")"

# ---- a checkpoint older than the event files --------------------------------------
# (as after a power loss: event files are synced every epoch, checkpoints are
# not). The saved checkpoint (epoch 1 step 2) under files that already hold
# epochs 1-3: the rerun trains epochs 2 and 3 again and writes none of them twice.
cp "$T/stop_saved/checkpoint.safetensors" "$T/out/stop/checkpoint.safetensors"
cp -a "$T/out/stop" "$T/stop_before"
is "rerun from the older checkpoint: exit 0" "$(run stop stop3)" 0
is "rerun: epochs 2 and 3 trained again" "$(grep -c '"event":"epoch"' "$T/stop3.out")" 2
is "rerun: no new event file, nothing written twice" \
    "$(cd "$T/out/stop" && md5sum events.out.tfevents.*)" "$(cd "$T/stop_before" && md5sum events.out.tfevents.*)"
is "rerun: the files still decode with each epoch once" \
    "$(tb "$T/out/stop" "$T/stop1.out" "$T/stop2.out" "$T/stop3.out")" ok

# ---- event files lost: the resume writes the checkpoint's epochs again ----------
spec lost "$P"
is "lost: stop in epoch 3: exit 7" "$(SWEEP_TEST_SIGNAL_AT_STEP=$((2 * steps + 1)) run lost lost1)" 7
rm -f "$T/out/lost"/events.out.tfevents.*
is "lost: resume exit 0" "$(run lost lost2)" 0
is "lost: one new file with epochs 1-2 from the checkpoint's records, then 3" \
    "$(nfiles "$T/out/lost") $(tb "$T/out/lost" "$T/lost1.out" "$T/lost2.out")" "1 ok"
is "lost: the same scalars as the uninterrupted run" "$(scalars "$T/out/lost")" "$(scalars "$T/out/plain")"

# ---- another spec in the same out_dir: a fresh start replaces the files ---------
cp "$T/plain.json" "$T/changed.json"
sed -i 's/"lr": 0.02/"lr": 0.03/' "$T/changed.json"
is "changed spec: exit 0" "$(run changed changed)" 0
is "changed spec: the old file removed, one new file" "$(nfiles "$T/out/plain")" 1
is "changed spec: the new file matches the new run" "$(tb "$T/out/plain" "$T/changed.out")" ok
like "changed spec: the removal is logged" "$(cat "$T/changed.err")" "removed 1 old TensorBoard event file"

# ---- a corrupted record is reported ----------------------------------------------
f=$(ls "$T/plain_files"/events.out.tfevents.*)
size=$(stat -c %s "$f")
flip() { # FILE OFFSET: xor the byte at OFFSET with 0x01
    $PY -c 'import sys; p, o = sys.argv[1], int(sys.argv[2]); b = bytearray(open(p, "rb").read()); b[o] ^= 1; open(p, "wb").write(b)' "$1" "$2"
}
mkdir -p "$T/bad1" "$T/bad2"
cp "$f" "$T/bad1/" && flip "$T/bad1/$(basename "$f")" $((size - 10)) # in the last record's data
cp "$f" "$T/bad2/" && flip "$T/bad2/$(basename "$f")" 1              # the first length
$READ dump "$PB" "$T/bad1" >/dev/null 2>"$T/bad1.err"
is "flipped data byte: the decoder fails" "$?" 1
like "... naming a data CRC mismatch" "$(cat "$T/bad1.err")" "data CRC mismatch"
$READ dump "$PB" "$T/bad2" >/dev/null 2>"$T/bad2.err"
is "flipped length byte: the decoder fails" "$?" 1
like "... naming a length CRC mismatch" "$(cat "$T/bad2.err")" "length CRC mismatch"
is "the intact copy still decodes" "$($READ dump "$PB" "$T/plain_files" >/dev/null; echo $?)" 0
# The decoder is strict: a record with valid CRCs but a field the protos do
# not define (field 15 of Event) is refused, so the files above hold nothing else.
mkdir -p "$T/bad3"
PYTHONDONTWRITEBYTECODE=1 $PY -c 'import struct, sys
sys.path.insert(0, sys.argv[1])
import tfevents_read as r
ev = b"\x09" + struct.pack("<d", 1.0) + b"\x1a\x0dbrain.Event:2" + b"\x78\x01"
head = struct.pack("<Q", len(ev))
rec = head + struct.pack("<I", r.masked(head)) + ev + struct.pack("<I", r.masked(ev))
open(sys.argv[2] + "/events.out.tfevents.0000000001.h.1", "wb").write(rec)' \
    "$ROOT/tests/integration" "$T/bad3"
$READ dump "$PB" "$T/bad3" >/dev/null 2>"$T/bad3.err"
is "an unknown field: the decoder fails" "$?" 1
like "... saying so" "$(cat "$T/bad3.err")" "fields the proto does not define"

# ---- through sweepd: every trial's files against the database -------------------
source "$(dirname "$0")/daemon_lib.bash"
"$BUILD/sweepd" --foreground --socket "$SOCK" --db "$DB" --state-dir "$VAR" --workers 2 \
    >>"$DLOG" 2>&1 &
DPID=$!
wait_for 10 ping_ok
JOB="{\"name\":\"tb\",\"data\":{\"train\":\"$T/data\",\"val_fraction\":0.25},
 \"model\":{\"arch\":\"resnet18\",\"weights\":null,\"input_size\":16,\"width\":8},
 \"space\":{\"lr\":[0.05,0.01]},\"fixed\":{\"epochs\":2,\"batch_size\":6,\"freeze\":\"none\"},
 \"objective\":{\"metric\":\"val_loss\",\"goal\":\"minimize\"},\"seed\":3}"
like "daemon: submit" "$(submit "$JOB")" '"ok":true,"job":1,"trials":2'
wait_for 120 job_ended 1
is "daemon: both trials completed" "$(sq "SELECT count(*) FROM trials WHERE job_id=1 AND state='completed'")" 2
for id in $(sq "SELECT id FROM trials WHERE job_id=1 ORDER BY id"); do
    is "daemon: trial $id's event files equal its trial_metrics, params_json and objective" \
        "$($READ check "$PB" "$VAR/trials/$id" --db "$DB" --trial "$id")" ok
done
stop_daemon

done_testing
