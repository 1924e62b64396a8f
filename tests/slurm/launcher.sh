#!/bin/bash
# The Slurm launcher (README.md "Slurm") against a real one-node cluster that
# this test starts and stops (tests/slurm/cluster.bash), with the scripted fake
# worker behind a wrapper that records the Slurm job it ran in:
#   1. start-up refusals without a cluster: an unknown launcher, srun missing
#      from PATH, a state directory the "compute node" does not see (an srun
#      stand-in whose task cannot read the check file);
#   2. a grid job through srun ends with the same trials and metrics as with
#      the local launcher, each trial a step named sweepd-<job>-<trial>;
#   3. cancel and trial_timeout reach the worker as SIGTERM through scancel:
#      exit 7 recorded, its checkpoint written;
#   4. sweepd SIGKILLed with steps in flight and restarted: the steps are
#      stopped gracefully and every trial completes exactly once;
#   5. a trial pruned by the median rule is stopped through Slurm;
#   6. a node failure in the middle of a trial is retried without using an
#      attempt (max_retries 0) and the trial completes.
# Skipped, with the reason, only where this machine cannot run slurmd.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../integration/daemon_lib.bash"
. "$(dirname "$0")/cluster.bash"
CTL=$BUILD/sweepctl
ctl() { "$CTL" --socket "$SOCK" "$@"; }

why=$(slurm_unusable)
if [ -n "$why" ]; then
    echo "ok 1 # SKIP the Slurm launcher: this machine cannot run slurmd: $why"
    echo "1..1"
    exit 0
fi

# The worker: records which Slurm job runs it, then is the fake worker.
REAL_FAKE=$FAKE
FAKE=$T/wrap
cat >"$FAKE" <<EOF
#!/bin/sh
printf '%s %s\n' "\${SLURM_JOB_NAME:-none}" "\${SLURM_JOB_ID:-none}" >>"slurm_env.\$1"
exec "$REAL_FAKE" "\$@"
EOF
chmod +x "$FAKE"
printf 'kill_grace = 5\ntick = 0.05\n' >"$T/local.conf"
printf 'kill_grace = 5\ntick = 0.05\nlauncher = slurm\n' >"$T/slurm.conf"

# ---- 1. refusals at start ---------------------------------------------------
out=$("$BUILD/sweepd" --foreground --launcher bogus --socket "$SOCK" --db "$DB" --state-dir "$VAR" 2>&1)
rc=$?
isnt "an unknown launcher is refused" "$rc" 0
like "  and the message names the flag and the choices" "$out" '--launcher: expected local or slurm, got "bogus"'
mkdir -p "$T/empty"
out=$(PATH=$T/empty "$BUILD/sweepd" --foreground --launcher slurm --socket "$SOCK" --db "$DB" --state-dir "$VAR" 2>&1)
rc=$?
isnt "launcher slurm without srun in PATH is refused" "$rc" 0
like "  and the message says srun is not in PATH" "$out" 'cannot run srun \(not in PATH'
mkdir -p "$T/fakeslurm"
# squeue and scancel: nothing to report; srun: a task that cannot read the file.
for c in srun squeue scancel; do
    cat >"$T/fakeslurm/$c" <<EOF
#!/bin/sh
[ "\$1" = --version ] && { echo "slurm 22.05.8"; exit 0; }
[ $c = srun ] || exit 0
for a; do last=\$a; done
echo "cat: \$last: No such file or directory" >&2
echo "srun: error: node1: task 0: Exited with exit code 1" >&2
exit 1
EOF
    chmod +x "$T/fakeslurm/$c"
done
out=$(PATH=$T/fakeslurm:$PATH "$BUILD/sweepd" --foreground --launcher slurm --socket "$SOCK" --db "$DB" --state-dir "$VAR" 2>&1)
rc=$?
isnt "a state directory the nodes do not see is refused" "$rc" 0
like "  and the message names it and says it is not shared" "$out" "state_dir $VAR is not shared with the compute nodes"
ls "$VAR"/slurm-check-* >/dev/null 2>&1
isnt "  the check file is removed" "$?" 0

if ! slurm_up; then
    not_ok "a one-node Slurm cluster starts (munged, slurmctld, slurmd)"
    done_testing
fi
at_exit slurm_down
ok "a one-node Slurm cluster starts (munged, slurmctld, slurmd)"

# job JSON of a grid over lr, EPOCHS epochs, on data DIR.
grid() {
    printf '{"name":"g","data":{"train":"%s"},"model":{"weights":null},"seed":7,"space":{"lr":[0.1,0.01,0.001,0.03],"epochs":[%s]}%s}' \
        "$1" "$2" "${3:-}"
}
trials_of() { sq "SELECT number, lr, state, attempt, best_epoch, val_accuracy, val_loss, exit_code FROM trials WHERE job_id=$1 ORDER BY number"; }
metrics_of() { sq "SELECT t.number, m.epoch, m.val_accuracy, m.val_loss, m.train_loss FROM trial_metrics m JOIN trials t ON t.id=m.trial_id WHERE t.job_id=$1 ORDER BY t.number, m.epoch"; }

# ---- 2. the same grid, local and through srun -------------------------------
mkdata "$T/d2" '{"default":{"sleep":0.05}}'
start_daemon --config "$T/local.conf" --workers 2
submit "$(grid "$T/d2" 3)" >/dev/null
wait_for 60 job_ended 1
is "local: the grid job is done" "$(job_state 1)" done
local_trials=$(trials_of 1)
local_metrics=$(metrics_of 1)
stop_daemon
mv "$VAR" "$T/var-local"
mkdir -p "$VAR"
start_daemon --config "$T/slurm.conf" --workers 2
like "slurm: sweepd says it checked the shared state directory" "$(cat "$DLOG")" "launcher = slurm: $VAR is shared with the compute nodes"
submit "$(grid "$T/d2" 3)" >/dev/null
wait_for 120 job_ended 1
is "slurm: the grid job is done" "$(job_state 1)" done
is "slurm: the same trials, states and final metrics as the local launcher" "$(trials_of 1)" "$local_trials"
is "slurm: the same metrics at every epoch" "$(metrics_of 1)" "$local_metrics"
names=""
for id in $(sq "SELECT id FROM trials WHERE job_id=1 ORDER BY number"); do
    names="$names $(cut -d' ' -f1 "$VAR/trials/$id/slurm_env.run" | sort -u | tr '\n' ' ')"
done
want=""
for id in $(sq "SELECT id FROM trials WHERE job_id=1 ORDER BY number"); do want="$want sweepd-1-$id "; done
is "slurm: every trial ran as a Slurm job named sweepd-<job>-<trial>" "$names" "$want"
like "slurm: the local run did not go through Slurm" "$(cat "$T"/var-local/trials/*/slurm_env.run | sort -u)" '^none none$'

# ---- 3. cancel and timeout reach the worker as SIGTERM -----------------------
mkdata "$T/d3" '{"default":{"sleep":0.4}}'
# epochs_seen JOB N: at least N epochs of JOB's trials stored.
epochs_seen() { [ "$(sq "SELECT COUNT(*) FROM trial_metrics m JOIN trials t ON t.id=m.trial_id WHERE t.job_id=$1")" -ge "$2" ]; }
submit "{\"name\":\"c\",\"data\":{\"train\":\"$T/d3\"},\"model\":{\"weights\":null},\"space\":{\"lr\":[0.01]},\"fixed\":{\"epochs\":40}}" >/dev/null
wait_for 60 epochs_seen 2 2
ctl cancel 2 >/dev/null
wait_for 60 job_ended 2
tid=$(sq "SELECT id FROM trials WHERE job_id=2")
is "cancel: the trial is cancelled with the worker's exit 7 (SIGTERM, checkpoint)" \
    "$(sq "SELECT state || ' ' || exit_code FROM trials WHERE id=$tid")" "cancelled 7"
check "cancel: the worker wrote its checkpoint" test -s "$VAR/trials/$tid/ckpt.json"
like "cancel: the signal went through scancel to the step" "$(cat "$DLOG")" "scancel --signal=TERM --name=sweepd-2-$tid"
submit "{\"name\":\"t\",\"data\":{\"train\":\"$T/d3\"},\"model\":{\"weights\":null},\"space\":{\"lr\":[0.01]},\"fixed\":{\"epochs\":40},\"trial_timeout\":2,\"max_retries\":0}" >/dev/null
wait_for 60 job_ended 3
tid=$(sq "SELECT id FROM trials WHERE job_id=3")
is "timeout: the trial failed for its timeout with the worker's exit 7" \
    "$(sq "SELECT state || ' ' || exit_code || ' ' || error FROM trials WHERE id=$tid")" "failed 7 exceeded trial_timeout of 2 s"
check "timeout: the worker wrote its checkpoint" test -s "$VAR/trials/$tid/ckpt.json"

# ---- 4. sweepd SIGKILLed with steps in flight --------------------------------
mkdata "$T/d4" '{"default":{"sleep":1.0}}'
submit "$(grid "$T/d4" 8)" >/dev/null
running2() { [ "$(sq "SELECT COUNT(*) FROM trials WHERE job_id=4 AND state='running' AND last_epoch >= 1")" -ge 2 ]; }
wait_for 60 running2
kill -KILL "$DPID"
wait "$DPID" 2>/dev/null
DPID=
inflight=$(squeue --noheader --format=%j | grep -c '^sweepd-4-')
is "kill: two steps still run on the cluster after sweepd died" "$inflight" 2
start_daemon --config "$T/slurm.conf" --workers 2
like "kill: the restarted sweepd stopped the steps left running" "$(cat "$DLOG")" "recovery: stopped 2 Slurm steps left by the previous daemon"
wait_for 120 job_ended 4
is "kill: the job is done" "$(job_state 4)" done
is "kill: every trial completed" "$(sq "SELECT group_concat(state) FROM trials WHERE job_id=4")" "completed,completed,completed,completed"
once=""
for id in $(sq "SELECT id FROM trials WHERE job_id=4 ORDER BY number"); do
    once="$once$(wc -l <"$VAR/trials/$id/completions" | tr -d ' ')"
done
is "kill: every trial finished its work exactly once" "$once" 1111
is "kill: all 8 epochs of every trial stored" \
    "$(sq "SELECT COUNT(*) FROM trial_metrics m JOIN trials t ON t.id=m.trial_id WHERE t.job_id=4")" 32

# ---- 5. a pruned trial is stopped through Slurm ------------------------------
R='[{"match":{"lr":0.1},"curve":[0.5,0.625,0.75,0.875]},{"match":{"lr":0.2},"curve":[0.5,0.625,0.75,0.875]},{"match":{"lr":0.3},"curve":[0.125,0.125,0.125,0.125]}]'
mkdata "$T/d5" "{\"default\":{\"sleep\":0.4},\"rules\":$R}"
submit "{\"name\":\"p\",\"data\":{\"train\":\"$T/d5\"},\"model\":{\"weights\":null},\"max_parallel\":1,\"space\":{\"lr\":[0.1,0.2,0.3]},\"fixed\":{\"epochs\":4},\"pruner\":{\"median\":{\"warmup_epochs\":1,\"min_trials\":2}}}" >/dev/null
wait_for 120 job_ended 5
tid=$(sq "SELECT id FROM trials WHERE job_id=5 AND number=2")
is "prune: the third trial is pruned at epoch 2 with the worker's exit 7" \
    "$(sq "SELECT state || ' ' || pruned_epoch || ' ' || exit_code FROM trials WHERE id=$tid")" "pruned 2 7"
like "prune: the stop went through scancel" "$(cat "$DLOG")" "scancel --signal=TERM --name=sweepd-5-$tid"

# ---- 6. a node failure is the cluster's fault, not the trial's ----------------
mkdata "$T/d6" '{"default":{"sleep":0.5}}'
submit "{\"name\":\"n\",\"data\":{\"train\":\"$T/d6\"},\"model\":{\"weights\":null},\"space\":{\"lr\":[0.01]},\"fixed\":{\"epochs\":16},\"max_retries\":0}" >/dev/null
wait_for 60 epochs_seen 6 2
scontrol update nodename="$(hostname -s)" state=down reason=sweepd-test >/dev/null 2>&1
node_up() { sinfo --noheader --format=%t | grep -qE '^(idle|mix|alloc)'; }
wait_for 30 node_up || scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1
wait_for 120 job_ended 6
tid=$(sq "SELECT id FROM trials WHERE job_id=6")
is "node failure: the trial completed anyway, max_retries 0 and attempt 0" \
    "$(sq "SELECT state || ' ' || attempt FROM trials WHERE id=$tid")" "completed 0"
like "node failure: sweepd says the cluster ended the step" "$(cat "$DLOG")" "the cluster ended its step \(srun exit status [0-9]+.*\); retried without using an attempt \(1 of 3\)"
is "node failure: two Slurm jobs ran the trial" "$(cut -d' ' -f2 "$VAR/trials/$tid/slurm_env.run" | sort -u | wc -l | tr -d ' ')" 2
stop_daemon
done_testing
