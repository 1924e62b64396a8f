#!/bin/bash
# Worker events are checked against the contract before they are stored or
# forwarded (issue #21 item 10: a worker's epoch 99999 of 3 with val_accuracy
# 2.5 was stored, `watch` printed "val_accuracy abc", and an early "done"
# made a trial completed that had not finished). The fake worker's "hostile"
# action writes, after epoch 1, a line that is not JSON (with terminal
# escapes), an epoch 99999 of 3, epoch 1 again with val_accuracy "abc", with
# its fields missing and with val_accuracy 2.5, an unknown event "pwned" of
# 600 bytes and a progress step 9 of 4 (tests/aux/fake_worker.c). Each must
# be logged with its reason (cut and escaped), stored nowhere and never reach
# `watch`; a worker that sends a bad "done", or 10 bad events, is stopped and
# its trial fails with "worker sent invalid events: REASON", not retried.
# Recovery's replay of an events file applies the same check: a lying "done"
# in the file does not complete the trial.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.bash"

CTL=$BUILD/sweepctl
# tid JOB LR: the id of the job's trial with that lr.
tid() { sq "SELECT id FROM trials WHERE job_id=$1 AND json_extract(params_json, '\$.lr') = $2"; }
# bad_rows JOB: metric rows of the job's trials that break the contract.
bad_rows() {
    sq "SELECT count(*) FROM trial_metrics m JOIN trials t ON t.id = m.trial_id WHERE t.job_id = $1
        AND (m.epoch NOT BETWEEN 1 AND 3 OR typeof(m.val_accuracy) <> 'real'
             OR m.val_accuracy NOT BETWEEN 0 AND 1 OR m.train_loss IS NULL OR m.lr IS NULL)"
}

# 1. Four trials of 3 epochs, watched from the start (they wait at a gate):
#   lr 0.1     the hostile lines once, then the rest of a normal run
#   lr 0.01    the hostile lines and a "done" after epoch 1, then runs on
#   lr 0.001   the hostile lines and a "done" after epoch 1, then exits 0 at once
#   lr 0.0001  the hostile lines twice (12 invalid events), then runs on
mkdata "$T/d1" '{"default": {"action": "hostile", "sleep": 0.3, "wait_file": "'"$T/go"'"},
  "rules": [{"match": {"lr": 0.01}, "hostile_done": true},
            {"match": {"lr": 0.001}, "hostile_done": true, "hostile_exit": true},
            {"match": {"lr": 0.0001}, "hostile_repeat": 2}]}'
start_daemon --workers 4
check "daemon answers ping" ping_ok
like "hostile job submitted" "$(submit '{"name": "hostile", "data": {"train": "'"$T/d1"'"},
  "model": {"weights": null}, "strategy": "grid", "space": {"lr": [0.1, 0.01, 0.001, 0.0001]},
  "fixed": {"epochs": 3}, "max_parallel": 4, "max_retries": 2, "seed": 1}')" \
    '"ok":true,"job":1,"trials":4'
"$CTL" --socket "$SOCK" watch 1 >"$T/watch.out" 2>"$T/watch.err" &
W=$!
dc watch 1 >"$T/stream.out" 2>&1 &
S=$!
two_watches() { [ "$(grep -c 'op watch' "$DLOG")" -ge 2 ]; }
wait_for 20 two_watches
touch "$T/go"
wait $W
wait $S
wait_for 30 job_ended 1
A=$(tid 1 0.1) B=$(tid 1 0.01) C=$(tid 1 0.001) D=$(tid 1 0.0001)
echo "# trials: A=$A (hostile once) B=$B (early done) C=$C (early done, exit 0) D=$D (12 bad)"

# The database: no row from the hostile lines, no result from a lying done.
is "no metric row breaks the contract (epoch 1..3, val_accuracy a number in [0, 1])" \
    "$(bad_rows 1)" 0
is "no trial's last_epoch beyond its 3 epochs" "$(sq "SELECT max(last_epoch) FROM trials WHERE job_id = 1")" 3
is "trial A keeps its 3 good epoch rows" \
    "$(sq "SELECT group_concat(epoch) FROM trial_metrics WHERE trial_id = $A")" "1,2,3"
is "trial A completed (6 invalid events ignored)" "$(sq "SELECT state FROM trials WHERE id = $A")" \
    completed
for x in B C; do
    id=${!x}
    is "trial $x failed, not retried" "$(sq "SELECT state || '/' || attempt FROM trials WHERE id = $id")" \
        failed/0
    is "trial $x's error names the early done" "$(sq "SELECT error FROM trials WHERE id = $id")" \
        "worker sent invalid events: done event before the last epoch (1 of 3 finished)"
    is "trial $x stored none of the lying done's figures" \
        "$(sq "SELECT coalesce(val_accuracy, 'null') || '/' || coalesce(best_epoch, 'null') FROM trials WHERE id = $id")" \
        null/null
done
is "trial D failed at its 10th invalid event, with the first reason" \
    "$(sq "SELECT state || ': ' || error FROM trials WHERE id = $D")" \
    "failed: worker sent invalid events: epoch event: epoch: expected an integer from 1 to 3, got 99999"
is "the job is done, trial A its best" \
    "$(sq "SELECT j.state || '/' || (SELECT id FROM trials WHERE job_id = 1 AND state = 'completed') FROM jobs j WHERE j.id = 1")" \
    "done/$A"
is "trial B's worker did not run to its end (stopped)" "$(cat "$VAR/trials/$B/completions" 2>/dev/null | wc -l)" 0

# `watch`: no bad value, no event from the hostile lines, no false "completed".
cat >"$T/stream_check.py" <<'PYEOF'
import json, sys
problems, dones = [], []
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        problems.append("not JSON: " + line[:80]); continue
    ev = e.get("event")
    if ev in ("ok", None) or "ok" in e:
        continue
    if ev not in ("start", "progress", "epoch", "checkpoint", "done", "error", "stopped",
                  "trial_state", "trials_state", "end", "test"):
        problems.append("event %r forwarded" % ev)
    if ev == "epoch":
        ep, acc = e.get("epoch"), e.get("val_accuracy")
        if not (isinstance(ep, int) and 1 <= ep <= 3):
            problems.append("epoch %r forwarded" % ep)
        if not (isinstance(acc, float) and 0 <= acc <= 1):
            problems.append("val_accuracy %r forwarded" % acc)
    if ev == "progress" and e.get("step", 0) > e.get("steps", 0):
        problems.append("progress step %r of %r forwarded" % (e.get("step"), e.get("steps")))
    if ev == "done":
        dones.append(e.get("trial"))
print("; ".join(problems) if problems else "OK", "dones:", dones)
PYEOF
is "the raw watch stream has only valid events, one done (trial A's)" \
    "$("$PY" "$T/stream_check.py" "$T/stream.out")" "OK dones: [$A]"
is "sweepctl watch printed nothing on stderr" "$(cat "$T/watch.err")" ""
unlike "sweepctl watch prints no bad value" "$(cat "$T/watch.out")" \
    'val_accuracy (abc|2\.5|-)|epoch 99999|pwned'
bad_acc=$(awk '{for (i = 1; i < NF; i++) if ($i == "val_accuracy" && !($(i+1) ~ /^0\.[0-9]+$|^1(\.0+)?$/)) print}' \
    "$T/watch.out")
is "every val_accuracy sweepctl watch printed is a number in [0, 1]" "$bad_acc" ""
for x in B C D; do
    id=${!x}
    unlike "sweepctl watch never printed trial $x completed" "$(cat "$T/watch.out")" "^trial $id completed"
    like "sweepctl watch printed trial $x failed with the reason" "$(cat "$T/watch.out")" \
        "^trial $id failed: worker sent invalid events: "
done
like "sweepctl watch printed trial A completed" "$(cat "$T/watch.out")" "^trial $A completed"
like "its summary: 1 completed, 3 failed" "$(cat "$T/watch.out")" \
    "job 1 done: 1 completed, 3 failed, 0 cancelled or pruned, of 4 trials"

# The daemon log names each reason, with the line cut and escaped.
LOG=$(cat "$DLOG")
for why in 'epoch event: epoch: expected an integer from 1 to 3, got 99999' \
    'epoch event: val_accuracy: expected a number from 0 to 1, got "abc"' \
    'epoch event: val_accuracy: expected a number from 0 to 1, got 2.5' \
    'epoch event: train_loss is missing' \
    'unknown event "pwned"' \
    'progress event: step 9 of 4 steps'; do
    check "the log names trial A's invalid event: $why" grep -qF "trial $A: invalid worker event ($why), not stored: {" "$DLOG"
done
check "the log names trial B's lying done" grep -qF \
    "trial $B: invalid worker event (done event before the last epoch (1 of 3 finished)), not stored" "$DLOG"
like "the log says trial B's worker was stopped" "$LOG" \
    "trial $B: worker pid [0-9]+ sent invalid events \(7; done event before the last epoch \(1 of 3 finished\)\); stopping it"
like "the log says trial D's worker was stopped at 10" "$LOG" \
    "trial $D: worker pid [0-9]+ sent invalid events \(10; epoch event: epoch: expected"
like "the log counts trial A's invalid events" "$LOG" "trial $A: worker pid [0-9]+ sent 6 invalid events, none stored"
pwned=$(grep -F "trial $A: invalid worker event (unknown event \"pwned\")" "$DLOG" | head -1)
check "the 600-byte line is logged cut (${#pwned} bytes, ending ...)" \
    test "${#pwned}" -lt 400 -a "${pwned: -3}" = "..."
is "no terminal escape reached the log" "$(grep -c $'\033' "$DLOG")" 0
like "the line that is not JSON is logged escaped" "$LOG" 'not a JSON event: \\x1b\[2J\\x1b\[31mnot an event'

# 2. Recovery: a trial writes the hostile lines and a "done" after epoch 1,
# then exits 0, while the daemon is frozen; the daemon is killed and
# restarted. The replay must store none of them and must not complete the
# trial: it runs again (the fake behaves the second time) and completes with
# its real 3 epochs.
mkdata "$T/d2" '{"default": {"action": "hostile", "hostile_done": true, "hostile_exit": true,
  "fail_attempts": 1, "sleep": 0.05, "wait_file": "'"$T/go2"'"}}'
like "recovery job submitted" "$(submit '{"name": "replay", "data": {"train": "'"$T/d2"'"},
  "model": {"weights": null}, "strategy": "grid", "space": {"lr": [0.1]},
  "fixed": {"epochs": 3}, "max_retries": 2, "seed": 2}')" '"ok":true,"job":2'
started2() { [ "$(sq "SELECT count(*) FROM trials WHERE job_id=2 AND state='running' AND pid IS NOT NULL")" = 1 ]; }
wait_for 10 started2
E=$(tid 2 0.1)
kill -STOP "$DPID"
touch "$T/go2"
wait_for 10 grep -q '"event":"done"' "$VAR/trials/$E/events.ndjson"
sleep 0.2
kill -KILL "$DPID"
kill -CONT "$DPID" 2>/dev/null
wait "$DPID" 2>/dev/null
DPID=
mark=$(wc -l <"$DLOG")
start_daemon --workers 2
wait_for 30 job_ended 2
LOG2=$(tail -n +"$((mark + 1))" "$DLOG")
like "the replay logged the lying done as invalid" "$LOG2" \
    "trial $E: invalid worker event \(done event before the last epoch \(1 of 3 finished\)\), not stored"
like "the replay logged the epoch 99999 as invalid" "$LOG2" \
    "trial $E: invalid worker event \(epoch event: epoch: expected an integer from 1 to 3, got 99999\)"
unlike "the replay did not take the trial as finished" "$LOG2" "trial $E running -> completed"
is "no metric row of the replayed trial breaks the contract" "$(bad_rows 2)" 0
is "the trial ran again and completed, resumed after epoch 1" \
    "$(sq "SELECT state || '/' || attempt || '/' || last_epoch FROM trials WHERE id = $E")/$(cat "$VAR/trials/$E/completions" 2>/dev/null | wc -l)" \
    "completed/1/3/1"
is "its epochs 1, 2, 3 are stored" "$(sq "SELECT group_concat(epoch) FROM trial_metrics WHERE trial_id = $E")" "1,2,3"
isnt "its result is not the lying done's 0.99" "$(sq "SELECT val_accuracy FROM trials WHERE id = $E")" 0.99

stop_daemon
done_testing
