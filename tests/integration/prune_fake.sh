#!/bin/bash
# The pruners (README.md "Pruners") with the fake worker on synthetic learning
# curves (its "curve" rule key: val_accuracy per epoch). One trial runs at a
# time, so "the other trials" at each decision are the earlier ones and every
# verdict below is computed by hand from the curves (all values are exact in
# binary, so medians are too):
#   1. median, warmup 1, min_trials 2, 4 epochs: trial 2 ties the median at
#      epoch 2 (continues) and is pruned at 3; trial 4 is pruned at 2; trial 3
#      (0.9375 at epoch 1, then low) continues on its best so far.
#   2. asha, min_epochs 1, reduction 2, 5 epochs (rungs 1, 2, 4): trial 1
#      ties at rung 2 (continues) and is pruned at 4; trial 2 pruned at 1.
#   3. asha again, the daemon SIGKILLed twice: once after a stop decision,
#      before the stopped trial's end was recorded (the restarted daemon stops
#      it again with the recorded decision, not a new one), once while a trial
#      is between rungs 2 and 4 (it resumes and is decided at rung 4 only).
#      The decisions equal those of the same job run without crashes.
# Also: pruned_epoch and the reason stored; sweepctl status, best and watch
# show them; the job ends done; sql/queries.sql's pruning query.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.bash"
CTL=$BUILD/sweepctl
ctl() { "$CTL" --socket "$SOCK" "$@"; }
printf 'kill_grace = 2\ntick = 0.05\n' >"$T/sweepd.conf"
start_daemon --config "$T/sweepd.conf" --workers 1

# rules LR=CURVE ...: the "rules" of a fake.json giving trial lr=LR its curve
# (extra rule keys may follow the curve: LR=CURVE,"key":value).
rules() {
    local sep="" r out=""
    for r in "$@"; do
        out="$out$sep{\"match\":{\"lr\":${r%%=*}},\"curve\":${r#*=}}"
        sep=","
    done
    printf '[%s]' "$out"
}
# job NAME DATA EPOCHS PRUNER: a grid over lr 0.1 .. 0.5 (trials 0..4), one at a time.
job() {
    printf '{"name":"%s","data":{"train":"%s"},"model":{"weights":null},"max_parallel":1,"space":{"lr":[0.1,0.2,0.3,0.4,0.5],"epochs":[%s]},"pruner":%s}' \
        "$1" "$2" "$3" "$4"
}
# decisions JOB: "number:epoch:decision" of every recorded decision, in order.
decisions() {
    sq "SELECT group_concat(d, ' ') FROM (SELECT t.number || ':' || r.rung_epoch || ':' || r.decision AS d
        FROM trial_rungs r JOIN trials t ON t.id = r.trial_id WHERE t.job_id = $1 ORDER BY t.number, r.rung_epoch)"
}
# reasons JOB: "value reason" of every recorded decision, in order.
reasons() {
    sq "SELECT group_concat(d, '|') FROM (SELECT r.value || ' ' || r.reason AS d
        FROM trial_rungs r JOIN trials t ON t.id = r.trial_id WHERE t.job_id = $1 ORDER BY t.number, r.rung_epoch)"
}
# outcome JOB: "number:state:pruned_epoch" for every trial.
outcome() {
    sq "SELECT group_concat(o, ' ') FROM (SELECT number || ':' || state || ':' || coalesce(pruned_epoch, '-') AS o
        FROM trials WHERE job_id = $1 ORDER BY number)"
}

# ---- 1. median ----------------------------------------------------------------
R=$(rules '0.1=[0.5,0.625,0.75,0.875]' '0.2=[0.25,0.375,0.5,0.625]' '0.3=[0.125,0.5,0.5,0.5]' \
    '0.4=[0.9375,0.0625,0.0625,0.0625]' '0.5=[0.125,0.25,0.375,0.5]')
mkdata "$T/d1" "{\"default\":{\"sleep\":0.15},\"rules\":$R}"
submit "$(job median "$T/d1" 4 '{"median":{"warmup_epochs":1,"min_trials":2}}')" >/dev/null
ctl watch 1 >"$T/watch1.out" 2>&1 &
WPID=$!
wait_for 60 job_ended 1
wait "$WPID" 2>/dev/null
is "median: job done" "$(job_state 1)" "done"
is "median: trials 2 (at 3) and 4 (at 2) pruned, the others completed" "$(outcome 1)" \
    "0:completed:- 1:completed:- 2:pruned:3 3:completed:- 4:pruned:2"
is "median: a decision at every epoch after the warm-up, none twice" "$(decisions 1)" \
    "0:2:continue 0:3:continue 0:4:continue 1:2:continue 1:3:continue 1:4:continue 2:2:continue 2:3:stop 3:2:continue 3:3:continue 3:4:continue 4:2:stop"
is "median: the tie with the median continues, with its numbers" \
    "$(sq "SELECT r.reason FROM trial_rungs r JOIN trials t ON t.id=r.trial_id WHERE t.job_id=1 AND t.number=2 AND r.rung_epoch=2")" \
    "median: best val_accuracy 0.5 is not worse than the median 0.5 of 2 other trials at epoch 2"
is "median: the reason stored as the error" "$(sq "SELECT error FROM trials WHERE job_id=1 AND number=2")" \
    "pruned at epoch 3: median: best val_accuracy 0.5 is worse than the median 0.625 of 2 other trials at epoch 3"
is "median: trial 4 against the median of 4" "$(sq "SELECT error FROM trials WHERE job_id=1 AND number=4")" \
    "pruned at epoch 2: median: best val_accuracy 0.25 is worse than the median 0.5625 of 4 other trials at epoch 2"
is "median: a pruned trial stopped after its decision epoch (no later epoch stored)" \
    "$(sq "SELECT group_concat(e) FROM (SELECT last_epoch AS e FROM trials WHERE job_id=1 AND state='pruned' ORDER BY number)")" "3,2"
is "median: pruned trials are not retried" "$(sq "SELECT group_concat(a) FROM (SELECT attempt || '/' || exit_code AS a FROM trials WHERE job_id=1 AND state='pruned' ORDER BY number)")" "0/7,0/7"
like "watch: the pruned trial's line with its reason" "$(cat "$T/watch1.out")" \
    "pruned: pruned at epoch 3: median: best val_accuracy 0.5 is worse than the median 0.625"
like "watch: the summary counts them" "$(cat "$T/watch1.out")" "3 completed, 0 failed, 2 cancelled or pruned, of 5 trials"
out=$(ctl status 1)
like "status: pruned trials with the reason" "$out" "pruned at epoch 2: median: best val_accuracy 0.25"
like "status: progress counts pruned as finished" "$out" "progress         5/5"
out=$(ctl best 1)
like "best: lists the pruned trials and why" "$out" "2 pruned:"
like "best: one line per pruned trial" "$out" "pruned at epoch 3: median"

# ---- 2. asha ------------------------------------------------------------------
R=$(rules '0.1=[0.5,0.625,0.75,0.875,0.875]' '0.2=[0.625,0.625,0.625,0.625,0.625]' \
    '0.3=[0.25,0.25,0.25,0.25,0.25]' '0.4=[0.5625,0.75,0.75,0.75,0.75]' '0.5=[0.0625,0.9375,0.9375,0.9375,0.9375]')
mkdata "$T/d2" "{\"default\":{\"sleep\":0.15},\"rules\":$R}"
submit "$(job asha "$T/d2" 5 '{"asha":{"min_epochs":1,"reduction":2}}')" >/dev/null
wait_for 60 job_ended 2
is "asha: job done" "$(job_state 2)" "done"
# rung 1: 0 alone; 1 .625 vs {.5}: keep 1 of 2, first; 2 .25: keep 2 of 3, third -> stop;
# 3 .5625: keep 2 of 4, second; 4 .0625: keep 3 of 5 (ceil), fifth -> stop.
# rung 2: 1 ties .625 with 0 (continues); 3 .75 first of 3. rung 4: 1 .625 vs {.875}: stop;
# 3 .75 vs {.875, .625}: keep 2 of 3, second.
is "asha: trials 1 (at 4), 2 and 4 (at 1) pruned" "$(outcome 2)" \
    "0:completed:- 1:pruned:4 2:pruned:1 3:completed:- 4:pruned:1"
is "asha: one decision per trial and rung reached" "$(decisions 2)" \
    "0:1:continue 0:2:continue 0:4:continue 1:1:continue 1:2:continue 1:4:stop 2:1:stop 3:1:continue 3:2:continue 3:4:continue 4:1:stop"
is "asha: the tie at rung 2 continues" \
    "$(sq "SELECT r.reason FROM trial_rungs r JOIN trials t ON t.id=r.trial_id WHERE t.job_id=2 AND t.number=1 AND r.rung_epoch=2")" \
    "asha: rung 2: best val_accuracy 0.625 ranks 1 of 2, the top 1 (1/2) continue"
is "asha: the reason of the stop at rung 4" "$(sq "SELECT error FROM trials WHERE job_id=2 AND number=1")" \
    "pruned at epoch 4: asha: rung 4: best val_accuracy 0.625 ranks 2 of 2, the top 1 (1/2) continue"

# ---- 3. a daemon SIGKILL after a stop decision, and one between two rungs -----
# Trial 1 is stopped at rung 1 and pauses on the SIGTERM (pause_at term):
# the decision is recorded, its end is not. Trial 2 pauses after epoch 3,
# between rungs 2 and 4.
C0='[0.5,0.625,0.75,0.875,0.875]' C1='[0.25,0.25,0.25,0.25,0.25]'
C2='[0.625,0.75,0.75,0.75,0.75]' C3='[0.9375,0.9375,0.9375,0.9375,0.9375]' C4='[0.5,0.5,0.5,0.5,0.5]'
mkdata "$T/d3ref" "{\"default\":{\"sleep\":0.15},\"rules\":$(rules "0.1=$C0" "0.2=$C1" "0.3=$C2" "0.4=$C3" "0.5=$C4")}"
submit "$(job ref "$T/d3ref" 5 '{"asha":{"min_epochs":1,"reduction":2}}')" >/dev/null
wait_for 60 job_ended 3
P1="$T/gate1" P2="$T/gate2"
mkdata "$T/d3" "{\"default\":{\"sleep\":0.15},\"rules\":$(rules "0.1=$C0" \
    "0.2=$C1,\"pause_at\":\"term\",\"pause_file\":\"$P1\"" \
    "0.3=$C2,\"pause_at\":\"epoch\",\"pause_epoch\":3,\"pause_file\":\"$P2\"" "0.4=$C3" "0.5=$C4")}"
submit "$(job crash "$T/d3" 5 '{"asha":{"min_epochs":1,"reduction":2}}')" >/dev/null
paused() { compgen -G "$1.at.*" >/dev/null; }
# kill_daemon_at GATE: SIGKILL the daemon and the paused worker, open GATE, restart.
kill_daemon_at() {
    wait_for 30 paused "$1"
    local w
    w=$(ls "$1".at.* | head -1)
    w=${w##*.at.}
    kill -KILL "$DPID"; wait "$DPID" 2>/dev/null; DPID=
    kill -KILL "$w" 2>/dev/null
    rm -f "$1".at.*
    : >"$1"
    start_daemon --config "$T/sweepd.conf" --workers 1
}
kill_daemon_at "$P1"
kill_daemon_at "$P2"
wait_for 60 job_ended 4
is "crash: job done" "$(job_state 4)" "done"
is "crash: the same outcome as without the crashes" "$(outcome 4)" "$(outcome 3)"
is "crash: the same decisions, none made twice" "$(decisions 4)" "$(decisions 3)"
is "crash: (the decisions, by hand)" "$(decisions 3)" \
    "0:1:continue 0:2:continue 0:4:continue 1:1:stop 2:1:continue 2:2:continue 2:4:stop 3:1:continue 3:2:continue 3:4:continue 4:1:continue 4:2:stop"
is "crash: the same reasons and values" \
    "$(reasons 4)" "$(reasons 3)"
t1=$(sq "SELECT id FROM trials WHERE job_id=4 AND number=1")
t2=$(sq "SELECT id FROM trials WHERE job_id=4 AND number=2")
is "crash: trial 1 decided once, stopped again after the restart with that decision" \
    "$(grep -c "trial $t1: pruned at epoch 1 (new decision)" "$DLOG")/$(grep -c "trial $t1: pruned at epoch 1 (decided before the restart)" "$DLOG")" "1/1"
is "crash: trial 1 pruned at epoch 1 on its second attempt" "$(sq "SELECT attempt || ':' || pruned_epoch || ':' || error FROM trials WHERE id=$t1")" \
    "1:1:pruned at epoch 1: asha: rung 1: best val_accuracy 0.25 ranks 2 of 2, the top 1 (1/2) continue"
like "crash: trial 2 resumed after rung 2" "$(cat "$VAR/logs/trial-$t2.log")" "resume after epoch 2"
is "crash: trial 2 pruned at rung 4 on its second attempt" "$(sq "SELECT attempt || ':' || pruned_epoch FROM trials WHERE id=$t2")" "1:4"

# ---- sql/queries.sql's pruning query ------------------------------------------
q=$(awk '/^-- 9\. Which trials were pruned when/{f=1} f&&/^$/{exit} f' "$ROOT/sql/queries.sql" | sed 's/:job/1/g')
out=$(printf "%s\n" "$q" | sq)
t2=$(sq "SELECT id FROM trials WHERE job_id=1 AND number=2")
like "queries.sql: a pruned trial of job 1, when and the epochs it saved" "$out" "2|$t2|0.3|3|4|1|"
like "queries.sql: the total saved" "$out" "|||||3|"
like "queries.sql: the count" "$out" "2 trials pruned"
stop_daemon
done_testing
