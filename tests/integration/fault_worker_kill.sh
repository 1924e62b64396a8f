#!/bin/bash
# SIGKILL of workers: a trial whose worker is killed mid-epoch is retried
# (attempt 1) and resumes from its checkpoint instead of starting over, and
# ends completed with exactly one trial_metrics row per epoch; a trial whose
# worker is killed more often than max_retries allows ends failed with an
# error naming the signal, while the job's other trials complete; the daemon
# keeps answering throughout. Uses the scripted worker (reliability_worker.py),
# then the real sweep-worker: killed after its first checkpoint, it is retried
# and resumes from checkpoint.safetensors ("resuming from" in its log), and
# the trial ends with one metrics row per epoch.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/reliability_lib.bash"

rel_setup_data
export REL_MARKS=$T/marks REL_LEDGER=$T/ledger REL_EPOCH_SECONDS=0.4
mkdir -p "$REL_MARKS"
rel_start_daemon --workers 2 || { not_ok "sweepd starts"; done_testing; }
ok "sweepd starts"

# wait_mark NAME SECS: waits for marker file NAME; prints the worker pid in it.
wait_mark() {
    local end=$((SECONDS + $2))
    while [ $SECONDS -lt $end ]; do
        if [ -s "$REL_MARKS/$1" ]; then cat "$REL_MARKS/$1"; return 0; fi
        sleep 0.02
    done
    return 1
}

# ---- one kill, then resume --------------------------------------------------
reply=$(rel_rpc '{"op":"submit","job":{"name":"wkill","data":{"train":"'$T'/data/train"},"model":{"arch":"resnet18","weights":null,"input_size":32,"width":8},"strategy":"grid","space":{"lr":[0.1,0.01]},"fixed":{"epochs":3},"max_parallel":2,"max_retries":1,"seed":9}}')
like "job accepted" "$reply" '"ok": *true'
J=$(echo "$reply" | sed -n 's/.*"job": *\([0-9]*\).*/\1/p')
T0=$(rel_sql "SELECT id FROM trials WHERE job_id=$J AND number=0")
pid=$(wait_mark "$T0.epoch2" 30)
check "trial $T0 reaches epoch 2 (worker pid ${pid:-?})" test -n "$pid"
kill -9 "$pid"
check "daemon answers ping right after the worker's death" rel_ping
check "job $J completes" rel_wait_job "$J" 60
is "trial $T0 completed on its second attempt" \
    "$(rel_sql "SELECT state, attempt FROM trials WHERE id=$T0")" "completed|1"
is "trial $T0 resumed at epoch 1 (ledger: starts at 0 then 1)" \
    "$(grep "^$T0 start" "$REL_LEDGER" | awk '{print $3}' | tr '\n' ' ')" "0 1 "
is "trial $T0 trained epoch 1 once (no restart from scratch)" \
    "$(grep -c "^$T0 epoch 1$" "$REL_LEDGER")" 1
is "trial $T0 has trial_metrics rows 1,2,3" \
    "$(rel_sql "SELECT group_concat(epoch) FROM (SELECT epoch FROM trial_metrics WHERE trial_id=$T0 ORDER BY epoch)")" "1,2,3"
is "the other trial completed on its first attempt" \
    "$(rel_sql "SELECT state, attempt FROM trials WHERE job_id=$J AND number=1")" "completed|0"

# ---- more kills than max_retries allows ----------------------------------------
rm -f "$REL_MARKS"/*
reply=$(rel_rpc '{"op":"submit","job":{"name":"wkill2","data":{"train":"'$T'/data/train"},"model":{"arch":"resnet18","weights":null,"input_size":32,"width":8},"strategy":"grid","space":{"lr":[0.2,0.02]},"fixed":{"epochs":2},"max_parallel":2,"max_retries":1,"seed":10}}')
like "second job accepted" "$reply" '"ok": *true'
J2=$(echo "$reply" | sed -n 's/.*"job": *\([0-9]*\).*/\1/p')
T1=$(rel_sql "SELECT id FROM trials WHERE job_id=$J2 AND number=0")
pid=$(wait_mark "$T1.epoch1" 30)
kill -9 "$pid" 2>/dev/null
# The retry resumes at epoch 1 again (nothing was checkpointed): kill it too.
pid2=""
end=$((SECONDS + 30))
while [ $SECONDS -lt $end ]; do
    p2=$(cat "$REL_MARKS/$T1.epoch1" 2>/dev/null)
    if [ -n "$p2" ] && [ "$p2" != "$pid" ]; then pid2=$p2; break; fi
    sleep 0.02
done
check "trial $T1 retried after the first kill (new pid ${pid2:-?})" test -n "$pid2" -a "${pid2:-x}" != "$pid"
kill -9 "$pid2" 2>/dev/null
check "job $J2 ends" rel_wait_job "$J2" 60
is "trial $T1 failed after max_retries + 1 attempts" \
    "$(rel_sql "SELECT state, attempt FROM trials WHERE id=$T1")" "failed|1"
like "trial $T1's error names the signal" \
    "$(rel_sql "SELECT coalesce(error,'') || ' exit=' || coalesce(exit_code,'') FROM trials WHERE id=$T1")" '[Ss]ignal|SIGKILL|[Kk]illed|-9'
is "the job's other trial completed" \
    "$(rel_sql "SELECT state FROM trials WHERE job_id=$J2 AND number=1")" completed
check "daemon still answers ping" rel_ping
check "sweepd exits 0 on shutdown" rel_stop_daemon
is "integrity_check" "$(rel_sql 'PRAGMA integrity_check')" ok

# ---- the real worker: SIGKILL after the first checkpoint, then resume ------------
if [ ! -x "$BUILD/sweep-worker" ] || [ ! -x "$BUILD/tests/train_mkdata" ]; then
    not_ok "real worker or train_mkdata missing in $BUILD (make test-bins)"
    done_testing
fi
mkdir -p "$T/real"
"$BUILD/tests/train_mkdata" "$T/real/train" 2 200 40 3 >/dev/null
SWEEPD_WORKER=$BUILD/sweep-worker rel_start_daemon --workers 1 ||
    { not_ok "sweepd restarts with the real worker"; done_testing; }
reply=$(rel_rpc '{"op":"submit","job":{"name":"realkill","data":{"train":"'$T'/real/train","val_fraction":0.2},"model":{"arch":"resnet18","weights":null,"input_size":32,"width":8},"strategy":"grid","space":{"lr":[0.02]},"fixed":{"epochs":4,"batch_size":4},"max_retries":1,"seed":15}}')
like "real-worker job accepted" "$reply" '"ok": *true'
J3=$(echo "$reply" | sed -n 's/.*"job": *\([0-9]*\).*/\1/p')
T3=$(rel_sql "SELECT id FROM trials WHERE job_id=${J3:-0}")
ck=$STATE/trials/$T3/checkpoint.safetensors
check "the real worker writes its first checkpoint" wait_for 60 test -s "$ck"
wpid=$(rel_sql "SELECT pid FROM trials WHERE id=$T3 AND state='running'")
check "worker pid known while it runs (${wpid:-none})" test -n "$wpid"
[ -n "$wpid" ] && kill -9 "$wpid"
check "real-worker job completes" rel_wait_job "${J3:-0}" 120
is "real trial completed on its second attempt" \
    "$(rel_sql "SELECT state, attempt FROM trials WHERE id=$T3")" "completed|1"
like "the retry resumed from the checkpoint" "$(cat "$STATE"/logs/trial-$T3.log 2>/dev/null)" 'resuming from'
is "real trial has trial_metrics rows 1..4" \
    "$(rel_sql "SELECT group_concat(epoch) FROM (SELECT epoch FROM trial_metrics WHERE trial_id=$T3 ORDER BY epoch)")" "1,2,3,4"
check "sweepd exits 0 on shutdown" rel_stop_daemon
done_testing
