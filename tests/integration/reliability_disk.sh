#!/bin/bash
# A full disk during training pauses, it does not fail (issue #21 item 6: on a
# 2 MB state directory a checkpoint write failed the trial for good, exit 3
# "data error ... No space left on device", and a 4-trial job failed within
# 70 ms). With the real sweep-worker on a tiny generated data set and a small
# tmpfs (root with CAP_SYS_ADMIN for mount(2), else skipped):
# Part 1, the worker alone: a checkpoint write that meets a full disk exits 8
#   with an "error" event of code "no_space" naming the file and leaves the
#   previous checkpoint intact (no temporary file behind); an events file on
#   the full disk also gives exit 8, and so does the file-size limit (EFBIG);
#   a line cut short by an earlier run is ended before the next one; once
#   space returns the run resumes from the kept checkpoint and completes.
# Part 2, sweepd: a 4-trial job (max_retries 0, so any counted attempt would
#   fail a trial) whose state directory fills up mid-training: no trial fails,
#   no attempt is counted, sweepd says once "waiting for space on <dir>" and
#   starts nothing while the disk stays full; once the filler is removed the
#   job completes, every trial resuming from its last checkpoint, with every
#   epoch row exactly once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.bash"
MK=$BUILD/tests/train_mkdata
W=$BUILD/sweep-worker
if [ ! -x "$W" ] || [ ! -x "$MK" ]; then
    not_ok "sweep-worker and tests/train_mkdata are built in $BUILD"
    done_testing
fi
M=$T/small
mkdir -p "$M"
if ! mount -t tmpfs -o size=16m,mode=0755 tmpfs "$M" 2>/dev/null; then
    ok "# SKIP cannot mount a tmpfs here (not root or no CAP_SYS_ADMIN)"
    done_testing
fi
at_exit "umount -l '$M' 2>/dev/null"
# 2 classes x 12 images of 16 px: with val_fraction 0.25 and batch_size 6,
# 3 steps per epoch; a checkpoint of the width-8 ResNet-18 is about 1.4 MB.
"$MK" "$T/train" 2 12 16 1 >/dev/null
check "tiny data set generated" test -d "$T/train/class1"

avail() { df --output=avail -B1 "$M" | tail -1 | tr -d ' '; }
# fill NAME [LEAVE]: a filler file taking every free byte but about LEAVE.
fill() {
    local n=$((($(avail) - ${2:-0}) / 4096))
    if [ "${2:-0}" = 0 ]; then
        dd if=/dev/zero of="$M/$1" bs=4k 2>/dev/null
    elif [ $n -gt 0 ]; then
        dd if=/dev/zero of="$M/$1" bs=4k count=$n 2>/dev/null
    fi
    return 0
}
# jget FILE EXPR: EXPR on the last event (r) of the events file FILE.
jget() { "$PY" -c 'import json,sys; r=json.loads([l for l in open(sys.argv[1]) if l.strip()][-1]); print(eval(sys.argv[2]))' "$1" "$2"; }
ls_tmp() { ls -A "$M/w" | grep -c '\.tmp\.' || true; }

# ---- Part 1: the worker alone -------------------------------------------
cat >"$T/spec.json" <<EOF
{"trial":1,"job":1,"seed":3,"data":{"train":"$T/train","val_fraction":0.25},
 "model":{"arch":"resnet18","weights":null,"input_size":16,"width":8},
 "params":{"lr":0.05,"epochs":3,"batch_size":6},
 "objective":{"metric":"val_accuracy","goal":"maximize"},
 "out_dir":"$M/w","cache_dir":"$T/cache","threads":1}
EOF
CK=$M/w/checkpoint.safetensors
SWEEP_TEST_SIGNAL_AT_STEP=5 "$W" run "$T/spec.json" >"$T/ev1" 2>"$T/log1"
is "a run stopped at step 5 (epoch 2, step 2) exits 7" "$?" 7
check "... leaving a checkpoint" test -s "$CK"
sum0=$(sha256sum <"$CK")

fill f1
check "the tmpfs is full" test "$(avail)" -lt 8192
"$W" run "$T/spec.json" >"$T/ev2" 2>"$T/log2"
is "a checkpoint write on a full disk exits 8 (no space), not 3" "$?" 8
is "the last event is an error of code no_space, exit_code 8" \
    "$(jget "$T/ev2" 'r["event"]+" "+r.get("code","")+" "+str(r.get("exit_code"))')" "error no_space 8"
like "its message names the checkpoint and the lack of space" \
    "$(jget "$T/ev2" 'r.get("message")')" "$CK.*No space left on device"
like "the epoch it finished was reported before the checkpoint failed" \
    "$(grep -c '"event":"epoch","t":[0-9.]*,"epoch":2,' "$T/ev2")" '^1$'
is "the previous checkpoint is intact" "$(sha256sum <"$CK")" "$sum0"
is "no temporary file is left behind" "$(ls_tmp)" 0

"$W" run "$T/spec.json" >"$M/w/events.ndjson" 2>"$T/log3"
is "an events file on the full disk also exits 8" "$?" 8
like "the log names the events file and the lack of space" "$(cat "$T/log3")" \
    "cannot write the start event to $M/w/events.ndjson: No space left on device"
is "the checkpoint is still intact" "$(sha256sum <"$CK")" "$sum0"
rm -f "$M/f1" "$M/w/events.ndjson"

(ulimit -f 1024 && exec "$W" run "$T/spec.json") >"$T/ev4" 2>"$T/log4"
is "at a 1 MiB file-size limit (EFBIG) it exits 8 too" "$?" 8
like "... with an error event naming the checkpoint" "$(jget "$T/ev4" 'r.get("code")+" "+r.get("message")')" \
    "^no_space .*$CK.*File too large"
is "... and the checkpoint is intact" "$(sha256sum <"$CK")" "$sum0"
is "... and no temporary file is left behind" "$(ls_tmp)" 0

# A line cut short (the events file of an earlier run on a full disk) is
# ended before the first line of the next run.
printf '{"event":"progress","t":0.1,"epo' >"$T/ev5"
"$W" run "$T/spec.json" >>"$T/ev5" 2>"$T/log5"
is "with space back the run completes" "$?" 0
is "the cut line stays on its own line" "$(sed -n 1p "$T/ev5")" '{"event":"progress","t":0.1,"epo'
like "the next run's first line is whole" "$(sed -n 2p "$T/ev5")" '^\{"event":"start",'
like "it resumed from the kept checkpoint (epoch 1, step 2)" "$(sed -n 2p "$T/ev5")" \
    '"resumed":\{"epoch":1,"step":2\}'
is "and reported epochs 2 and 3" "$(grep -o '"event":"epoch","t":[0-9.]*,"epoch":[0-9]*' "$T/ev5" | sed 's/.*://' | tr '\n' ' ')" "2 3 "
is "its last event is done" "$(jget "$T/ev5" 'r["event"]')" done
rm -rf "$M/w"

# ---- Part 2: sweepd ------------------------------------------------------
STATE=$M/state
mkdir -p "$STATE"
SWEEPD_WORKER=$W "$BUILD/sweepd" --foreground --socket "$SOCK" --db "$DB" --state-dir "$STATE" \
    --workers 2 --log-level debug >>"$DLOG" 2>&1 &
DPID=$!
wait_for 10 ping_ok
check "sweepd starts with its state directory on the tmpfs (database elsewhere)" ping_ok
# About 2.5 MB stay free: the first checkpoint written fits, the next cannot
# (the first is kept beside it), whatever order the trials run in. One trial
# at a time (max_parallel 1): two first checkpoints written at once could each
# take part of the space and both fail, leaving room for one again (sweepd
# then rightly starts them again), and the other's temporary file could take
# the bytes the error event needs (the warning then says "no space left for
# its files" without naming the file).
fill f2 $((2560 * 1024))
JOB='{"name":"disk","data":{"train":"'$T'/train","val_fraction":0.25},
 "model":{"arch":"resnet18","weights":null,"input_size":16,"width":8},
 "space":{"lr":[0.05,0.02,0.01,0.005]},"fixed":{"epochs":3,"batch_size":6},
 "max_retries":0,"max_parallel":1,"seed":3}'
like "a 4-trial job is accepted" "$(submit "$JOB")" '"ok":true,"job":1,"trials":4'
wait_for 60 grep -q "WARN .*waiting for space on $STATE" "$DLOG"
like "sweepd says it waits for space on the state directory" "$(cat "$DLOG")" \
    "WARN .*waiting for space on $STATE: trial [0-9]+: writing checkpoint: .*No space left"
running() { [ "$(sq "SELECT count(*) FROM trials WHERE state='running'")" = 0 ]; }
wait_for 30 running
check "the running workers end and nothing starts while the disk is full" running
starts=$(grep -c ') queued -> running' "$DLOG")
sleep 3
is "no trial started in 3 s on the full disk" "$(grep -c ') queued -> running' "$DLOG")" "$starts"
is "no trial failed" "$(sq "SELECT count(*) FROM trials WHERE state='failed'")" 0
is "no attempt was counted" "$(sq "SELECT group_concat(attempt) FROM trials")" "0,0,0,0"
is "the job is still running" "$(job_state 1)" running
like "the waiting trials name the lack of space" \
    "$(sq "SELECT group_concat(DISTINCT exit_code || ' ' || error) FROM trials WHERE state='queued' AND exit_code IS NOT NULL")" \
    '^8 no space left for its files'

rm -f "$M/f2"
wait_for 90 job_ended 1
is "once space returns the job is done" "$(job_state 1)" done
is "every trial completed, on its first attempt" \
    "$(sq "SELECT group_concat(state || ':' || attempt || ':' || exit_code) FROM trials ORDER BY number")" \
    "completed:0:0,completed:0:0,completed:0:0,completed:0:0"
is "every epoch row exactly once" \
    "$(sq "SELECT group_concat(e, ' ') FROM (SELECT group_concat(epoch) AS e FROM (SELECT trial_id, epoch FROM trial_metrics ORDER BY trial_id, epoch) GROUP BY trial_id)")" \
    "1,2,3 1,2,3 1,2,3 1,2,3"
is "no stale error on the completed trials" "$(sq "SELECT count(*) FROM trials WHERE error IS NOT NULL")" 0
like "a trial resumed from the checkpoint it kept" \
    "$(cat "$STATE"/trials/*/events.ndjson)" '"resumed":\{"epoch":[12],"step":0\}'
is "the wait was announced once" "$(grep -c "WARN .*waiting for space on $STATE" "$DLOG")" 1
like "and its end" "$(cat "$DLOG")" "space is back on $STATE"
stop_daemon
is "sweepd exits 0" "$?" 0
is "integrity_check" "$(sq 'PRAGMA integrity_check')" ok
done_testing
