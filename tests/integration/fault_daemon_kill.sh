#!/bin/bash
# SIGKILL of sweepd at several points of a running job, each followed by a
# restart on the same socket, database and state directory:
#   1. during submission of a 20,000-trial job (five delays spanning the
#      ~0.6 s its validation and insert take, and once right after the
#      commit): stored whole or not at all;
#   2. mid-epoch, 3. right after a trial finished (between trials),
#   4. during the end-of-job test-set evaluation;
#   5. while an "epoch" event sits unread in the worker's pipe (the daemon is
#      SIGSTOPped while the worker finishes the epoch and checkpoints, then
#      SIGKILLed): the finished epoch's metrics row must still be recorded.
# After the restarts every job completes, every trial is completed exactly
# once, each trial has exactly one trial_metrics row per epoch (none lost,
# none duplicated), test_accuracy is stored, no worker is left behind and
# PRAGMA integrity_check says ok. Uses the scripted worker
# (reliability_worker.py) to time the kills; its resume follows the real
# worker's (no epoch is re-run, no epoch event repeated).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/reliability_lib.bash"

rel_setup_data
export REL_MARKS=$T/marks REL_LEDGER=$T/ledger REL_EPOCH_SECONDS=0.3 REL_EVAL_SECONDS=1.5
mkdir -p "$REL_MARKS"
DARGS=(--workers 2)

restart() {
    rel_start_daemon "${DARGS[@]}" || { not_ok "sweepd restarts after SIGKILL ($1)"; done_testing; }
    ok "sweepd restarts after SIGKILL ($1)"
}
integrity() { is "integrity_check after $1" "$(rel_sql 'PRAGMA integrity_check')" ok; }
# wait_mark GLOB SECS: waits for a marker file matching GLOB.
wait_mark() {
    local end=$((SECONDS + $2))
    while [ $SECONDS -lt $end ]; do
        compgen -G "$REL_MARKS/$1" >/dev/null && return 0
        sleep 0.02
    done
    return 1
}

rel_start_daemon "${DARGS[@]}" || { not_ok "sweepd starts"; done_testing; }
ok "sweepd starts"

# ---- 1. during submission ------------------------------------------------
cat >"$T/submit_kill.py" <<'EOF'
import json, os, signal, sys, time
sys.path.insert(0, os.environ["REL_DIR"])
from reliability_client import Conn
sock, pid, delay, train, db = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
job = {"name": "big-" + sys.argv[3], "data": {"train": train},
       "model": {"arch": "resnet18", "weights": None, "input_size": 32, "width": 8},
       "strategy": "grid",
       "space": {"lr": [round(0.0001 * (i + 1), 6) for i in range(200)],
                 "batch_size": list(range(1, 101))},
       "fixed": {"epochs": 1}, "seed": 3}
c = Conn(sock)
c.send(json.dumps({"op": "submit", "job": job}) + "\n")
if delay == "stored":
    # Right after the commit: poll the database (a reader, as sqlite3 would be).
    import sqlite3
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            q = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
            n = q.execute("SELECT count(*) FROM jobs WHERE name = ?", (job["name"],)).fetchone()[0]
            q.close()
            if n:
                break
        except sqlite3.Error:
            pass
        time.sleep(0.005)
else:
    time.sleep(float(delay))
os.kill(pid, signal.SIGKILL)
EOF
for delay in 0.05 0.25 0.4 0.55 0.8 stored; do
    {
        REL_DIR=$REL_DIR "$REL_PY" "$T/submit_kill.py" "$SOCK" "$DPID" "$delay" \
            "$T/data/train" "$DB" 2>>"$T/submit_kill.err"
        wait "$DPID"
    } 2>/dev/null # (bash's "Killed" notice)
    restart "submission + ${delay}$([ "$delay" = stored ] || echo s)"
    # Cancel whatever survived so its 20,000 trials do not run.
    for id in $(rel_sql "SELECT id FROM jobs WHERE state IN ('queued','running')"); do
        rel_rpc "{\"op\":\"cancel\",\"job\":$id}" >/dev/null
    done
done
bad=$(rel_sql "SELECT count(*) FROM jobs j WHERE trials_total != (SELECT count(*) FROM trials t WHERE t.job_id = j.id)")
is "every stored job has all its trials (jobs stored: $(rel_sql 'SELECT count(*) FROM jobs') of 6)" "$bad" 0
is "the submission killed right after its commit is there with all 20,000 trials" \
    "$(rel_sql "SELECT count(*), sum(trials_total) FROM jobs WHERE name='big-stored'")" "1|20000"
integrity "the submission kills"
wait_for 20 bash -c "[ -z \"\$(sqlite3 '$DB' \"SELECT 1 FROM trials WHERE state='running' LIMIT 1\")\" ]"
rm -f "$REL_MARKS"/* "$REL_LEDGER"

# ---- 2-4. a job killed mid-epoch, between trials and during evaluation -----
JOB='{"op":"submit","job":{"name":"faults","data":{"train":"'$T'/data/train","test":"'$T'/data/test"},
 "model":{"arch":"resnet18","weights":null,"input_size":32,"width":8},"strategy":"grid",
 "space":{"lr":[0.1,0.05,0.02,0.01]},"fixed":{"epochs":3},"max_parallel":2,"max_retries":5,"seed":5}}'
reply=$(rel_rpc "$(echo "$JOB" | tr -d '\n')")
like "fault job accepted" "$reply" '"ok": *true'
J=$(echo "$reply" | sed -n 's/.*"job": *\([0-9]*\).*/\1/p')

check "a trial reaches its second epoch" wait_mark "*.epoch2" 30
rel_kill9
restart "mid-epoch"
integrity "the mid-epoch kill"

n_done=$(ls "$REL_MARKS" | grep -c '\.done$')
check "a trial finishes after the restart" wait_mark "*.done" 30
# Kill as soon as a new trial finishes (the daemon is recording it and
# starting the next one).
end=$((SECONDS + 30))
while [ "$(ls "$REL_MARKS" | grep -c '\.done$')" -le "$n_done" ] && [ $SECONDS -lt $end ]; do sleep 0.01; done
rel_kill9
restart "between trials"
integrity "the between-trials kill"

check "the test-set evaluation starts" wait_mark "eval.start" 60
rel_kill9
restart "during evaluation"
integrity "the kill during evaluation"

check "job $J completes after three SIGKILLs" rel_wait_job "$J" 60
is "job $J state" "$(rel_job_state "$J")" done
is "job $J: 4 trials, all completed once" \
    "$(rel_sql "SELECT count(*), sum(state='completed'), count(DISTINCT number) FROM trials WHERE job_id=$J")" "4|4|4"
is "job $J: every trial has exactly epochs 1..3 in trial_metrics" \
    "$(rel_sql "SELECT count(*) FROM trials t WHERE job_id=$J AND (SELECT group_concat(epoch) FROM (SELECT epoch FROM trial_metrics m WHERE m.trial_id=t.id ORDER BY epoch)) = '1,2,3'")" 4
is "job $J: test_accuracy stored for one trial" \
    "$(rel_sql "SELECT count(*) FROM trials WHERE job_id=$J AND test_accuracy IS NOT NULL")" 1
is "job $J: every trial's best_epoch and val_accuracy recorded" \
    "$(rel_sql "SELECT count(*) FROM trials WHERE job_id=$J AND best_epoch IS NOT NULL AND val_accuracy IS NOT NULL")" 4
like "job $J: the mid-epoch kill was resumed, not restarted (a 'start' at epoch > 0 in the ledger)" \
    "$(cat "$REL_LEDGER")" ' start [12]$'
# The evaluation running when the daemon was killed is a process left by the
# previous daemon: recovery must stop it (the scripted eval then exits 7
# without finishing), not let it run to its end beside the new evaluation.
is "job $J: the evaluation left by the killed daemon was stopped (evaluations run to the end)" \
    "$(grep -c '^eval$' "$REL_LEDGER")" 1

# ---- 5. SIGKILL while an epoch event is unread ----------------------------
rm -f "$REL_MARKS"/*
export REL_EPOCH_SECONDS=0.6
rel_stop_daemon
restart "clean restart for the unread-epoch case"
reply=$(rel_rpc '{"op":"submit","job":{"name":"unread","data":{"train":"'$T'/data/train"},"model":{"arch":"resnet18","weights":null,"input_size":32,"width":8},"strategy":"grid","space":{"lr":[0.03]},"fixed":{"epochs":3},"max_retries":5,"seed":6}}')
like "unread-epoch job accepted" "$reply" '"ok": *true'
J2=$(echo "$reply" | sed -n 's/.*"job": *\([0-9]*\).*/\1/p')
check "its trial starts epoch 1" wait_mark "*.epoch1" 30
kill -STOP "$DPID"
# The worker finishes epoch 1 (event written to the pipe, checkpoint saved)
# and starts epoch 2 while the daemon cannot read.
check "epoch 1 finishes while sweepd is stopped" wait_mark "*.epoch2" 30
rel_kill9
restart "SIGKILL with an epoch event unread"
check "job $J2 completes" rel_wait_job "$J2" 60
is "job $J2: trial completed" "$(rel_sql "SELECT state FROM trials WHERE job_id=$J2")" completed
is "job $J2: epochs 1..3 all in trial_metrics (epoch 1's event was unread at the kill)" \
    "$(rel_sql "SELECT group_concat(epoch) FROM (SELECT epoch FROM trial_metrics m JOIN trials t ON t.id=m.trial_id WHERE t.job_id=$J2 ORDER BY epoch)")" "1,2,3"

# ---- the end ----------------------------------------------------------------
check "sweepd exits 0 on shutdown" rel_stop_daemon
integrity "all faults"
left=$(pgrep -f "reliability_worker.py (run|eval) .*$(basename "$T")" | wc -l)
is "no worker process left behind" "$left" 0
done_testing
