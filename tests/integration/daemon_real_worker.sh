#!/bin/bash
# sweepd with the REAL sweep-worker on a tiny generated ImageFolder
# (tests/aux/train_mkdata): a 2-trial grid trains narrow ResNets from
# scratch, the daemon records every epoch, picks the best trial and runs
# `sweep-worker eval` on the test set, storing test_accuracy. Trials start
# through a gate script (SWEEPD_WORKER) that holds them until `watch` is
# attached, so the watch output is complete however slow the machine; the
# second daemon below finds the worker next to the sweepd binary (the default).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.bash"
MK=$BUILD/tests/train_mkdata
if [ ! -x "$BUILD/sweep-worker" ] || [ ! -x "$MK" ]; then
    not_ok "sweep-worker and tests/train_mkdata are built in $BUILD"
    done_testing
fi
"$MK" "$T/train" 3 8 16 1 >/dev/null && "$MK" "$T/test" 3 4 16 2 >/dev/null
check "tiny data sets generated" [ -d "$T/train/class0" ] && [ -d "$T/test/class2" ]

make_gate "$T/gate.sh" "$T/go" "$BUILD/sweep-worker"
SWEEPD_WORKER=$T/gate.sh "$BUILD/sweepd" --foreground --socket "$SOCK" --db "$DB" --state-dir "$VAR" \
    --workers 2 --log-level debug >>"$DLOG" 2>&1 &
DPID=$!
wait_for 10 ping_ok
JOB="{\"name\":\"real\",\"data\":{\"train\":\"$T/train\",\"val_fraction\":0.25,\"test\":\"$T/test\"},
 \"model\":{\"arch\":\"resnet18\",\"weights\":null,\"input_size\":16,\"width\":8},
 \"space\":{\"lr\":[0.05,0.01]},\"fixed\":{\"epochs\":2,\"batch_size\":6,\"freeze\":\"none\"},\"max_parallel\":1,\"seed\":3}"
like "submit" "$(submit "$JOB")" '"ok":true,"job":1,"trials":2'
dc watch 1 >"$T/watch.out" &
WPID=$!
wait_for 20 grep -q "op watch" "$DLOG"
touch "$T/go"
wait_for 120 job_ended 1
wait $WPID
is "job done" "$(job_state 1)" "done"
is "both trials completed by the real worker" "$(sq "SELECT count(*) FROM trials WHERE job_id=1 AND state='completed' AND exit_code=0")" "2"
is "2 epochs of metrics each" "$(sq "SELECT count(*) FROM trial_metrics m JOIN trials t ON t.id=m.trial_id WHERE t.job_id=1 AND m.val_accuracy BETWEEN 0 AND 1")" "4"
is "best metrics stored from the done event" "$(sq "SELECT count(*) FROM trials WHERE job_id=1 AND best_epoch BETWEEN 1 AND 2 AND val_accuracy IS NOT NULL AND val_f1 IS NOT NULL")" "2"
is "checkpoint paths recorded" "$(sq "SELECT count(*) FROM trials WHERE job_id=1 AND checkpoint_path IS NOT NULL")" "2"
best=$(sq "SELECT id FROM best_trials WHERE job_id=1 AND rank=1 ORDER BY number LIMIT 1")
check "best trial has best.safetensors" [ -s "$VAR/trials/$best/best.safetensors" ]
is "test_accuracy stored on the best trial only" "$(sq "SELECT group_concat(id) FROM trials WHERE job_id=1 AND test_accuracy BETWEEN 0 AND 1")" "$best"
like "watch saw real epoch events" "$(grep -c '"event":"epoch"' "$T/watch.out")" '^[1-9]'
like "watch ended with the end event" "$(tail -1 "$T/watch.out")" '^\{"event":"end","job":1,"state":"done"'
like "watch saw the test evaluation" "$(cat "$T/watch.out")" '"event":"test","job":1,"trial":'"$best"
like "worker stderr went to the trial log" "$(wc -c <"$VAR/logs/trial-$best.log")" '^[1-9]'
stop_daemon
is "SIGTERM exits 0" "$?" "0"

# Under a 300 MB address-space limit (inherited by the workers) a worker must
# still start: OpenBLAS would start its thread pool at load and retry a failed
# buffer allocation forever, so sweepd starts workers with
# OPENBLAS_NUM_THREADS=1 (the engine threads the products itself). (This suite
# is not among the AddressSanitizer runs, whose shadow memory cannot live
# within such a limit.)
DB=$T/lim.db
(ulimit -v 300000 && exec env -u SWEEPD_WORKER -u OPENBLAS_NUM_THREADS -u GOTO_NUM_THREADS \
    -u OMP_NUM_THREADS "$BUILD/sweepd" \
    --foreground --socket "$SOCK" --db "$DB" --state-dir "$T/lim" --workers 1 >>"$DLOG" 2>&1) &
DPID=$!
wait_for 10 ping_ok
JOB2="{\"name\":\"lim\",\"data\":{\"train\":\"$T/train\",\"val_fraction\":0.25},
 \"model\":{\"arch\":\"resnet18\",\"weights\":null,\"input_size\":16,\"width\":8},
 \"space\":{\"lr\":[0.05]},\"fixed\":{\"epochs\":1,\"batch_size\":6},\"seed\":3}"
like "submit under a 300 MB limit" "$(submit "$JOB2")" '"ok":true'
wait_for 60 job_ended 1
is "the trial completed under the limit (no hang at OpenBLAS start-up)" \
    "$(sq "SELECT state || ':' || exit_code FROM trials")" "completed:0"
like "... run by the worker next to sweepd (no SWEEPD_WORKER)" "$(cat "$T/lim/logs/trial-1.log")" \
    'train\.c'

stop_daemon

# The kernel policy through the daemon: blas_core = inherit (the default) with
# an inherited OPENBLAS_CORETYPE=Haswell keeps it in every worker, and sweepd
# says once at start and in `sweepctl status` what auto would pick instead;
# --blas-core auto is passed to the workers, which then run the best kernel for
# this CPU (the expected name from /proc/cpuinfo). The variable is set for the
# daemon's process only.
best=$(cpu_best_kernel)
if [ -z "$best" ]; then
    ok "no AVX2 on this CPU: the Haswell kernel cannot run here; kernel policy checks skipped"
    done_testing
fi
CTL=("$BUILD/sweepctl" --socket "$SOCK")
DB=$T/blas.db
BLOG=$T/blas-daemon.log
# blas_daemon [FLAGS...]: sweepd on blas.db with OPENBLAS_CORETYPE=Haswell in its
# environment only, log in $BLOG.
blas_daemon() {
    env -u SWEEPD_WORKER OPENBLAS_CORETYPE=Haswell "$BUILD/sweepd" --foreground --socket "$SOCK" \
        --db "$DB" --state-dir "$T/blas" --workers 1 "$@" >"$BLOG" 2>&1 &
    DPID=$!
    wait_for 10 ping_ok
}
blas_daemon
JOB3="{\"name\":\"blas\",\"data\":{\"train\":\"$T/train\",\"val_fraction\":0.25},
 \"model\":{\"arch\":\"resnet18\",\"weights\":null,\"input_size\":16,\"width\":8},
 \"space\":{\"lr\":[0.05]},\"fixed\":{\"epochs\":1,\"batch_size\":6},\"seed\":3}"
like "inherit: submit" "$(submit "$JOB3")" '"ok":true'
wait_for 60 job_ended 1
is "inherit: the worker kept the inherited Haswell (stored from its start event)" \
    "$(sq "SELECT state || ':' || blas_core FROM trials WHERE job_id=1")" "completed:Haswell"
like "inherit: sweepctl trial shows the kernel" "$("${CTL[@]}" trial 1)" 'blas_core +Haswell'
st=$("${CTL[@]}" status)
like "inherit: sweepctl status shows the policy" "$st" 'blas_core +inherit'
like "... and the kernel workers run" "$st" 'blas_kernel +Haswell'
if [ "$best" != Haswell ]; then
    like "... and warns that auto would pick $best" "$st" \
        "warning +OpenBLAS kernel Haswell is inherited.*supports $best \\(blas_core = auto"
    like "... what it costs" "$st" 'slower'
    is "sweepd warned once at start" "$(grep -c 'inherited from OPENBLAS_CORETYPE' "$BLOG")" 1
else
    unlike "an AVX2-only CPU: Haswell is its best, no warning" "$st" 'warning'
fi
stop_daemon
blas_daemon --blas-core auto
like "auto: submit" "$(submit "$JOB3")" '"ok":true'
wait_for 60 job_ended 2
is "auto: the worker ran $best over the inherited Haswell" \
    "$(sq "SELECT state || ':' || blas_core FROM trials WHERE job_id=2")" "completed:$best"
st=$("${CTL[@]}" status)
like "auto: status shows the policy" "$st" "blas_core +auto"
like "... and the kernel" "$st" "blas_kernel +$best"
unlike "... and no warning" "$st" 'warning'
is "... nor at start" "$(grep -c 'inherited from OPENBLAS_CORETYPE' "$BLOG")" 0
stop_daemon
"$BUILD/sweepd" --blas-core fastest --socket "$SOCK" --db "$DB" >/dev/null 2>"$T/bad.err"
is "a bad --blas-core: sweepd refuses to start (exit 2)" "$?" 2
like "... naming the flag and the value" "$(cat "$T/bad.err")" '--blas-core: expected inherit, auto or an OpenBLAS kernel name.*got "fastest"'
done_testing
