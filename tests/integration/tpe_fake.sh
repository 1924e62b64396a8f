#!/bin/bash
# Strategies tpe and sobol (README.md "Strategies") with the fake worker, whose
# val_accuracy is a fixed function of lr and the epoch (best at lr = 0.01):
#   1. a tpe job runs its N trials (startup ones first, then one proposal
#      per free slot), numbers 0..N-1, no two with the same parameters;
#   2. the same spec and seed, one trial at a time, give the same proposals;
#   3. two parallel slots never propose the same point;
#   4. a daemon SIGKILLed between proposals continues the sequence on
#      restart: numbers 0..N-1 exactly once, no repeated parameters;
#   5. warm_start: refused for a job that does not exist or searched another
#      space (naming the key), accepted for the same space, and its trials
#      change the first TPE proposal;
#   6. a sobol job's parameters are the Sobol points of suggest.h;
#   7. tpe with the median pruner: pruned trials are fed to TPE (counted as
#      pruned, not failed) and the job ends with N trials;
#   8. sweepctl shows the planned count before the proposals exist;
#   9. a proposal that runs out of memory (test hook SWEEPD_TEST_TPE_NOMEM)
#      is made again a second later: the job keeps its plan and runs all N;
#  10. a tpe job as large as its finite space (4 x 3 x 2 x 5 = 120 points)
#      runs every point exactly once; a second one warm-started from it (TPE
#      then sees every point tried) runs all 120 again, each proposal from the
#      Sobol scan past the job's own points.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.bash"
CTL=$BUILD/sweepctl
ctl() { "$CTL" --socket "$SOCK" "$@"; }
printf 'kill_grace = 2\ntick = 0.05\n' >"$T/sweepd.conf"
start_daemon --config "$T/sweepd.conf" --workers 2

SPACE='"space":{"lr":{"log_uniform":[0.0001,1]},"batch_size":[8,16,32],"dropout":{"uniform":[0,0.5]},"optimizer":["sgd","adam"]}'
# tpe NAME DATA TRIALS STARTUP PARALLEL SEED [MORE]: a tpe job over $SPACE, 2 epochs.
tpe() {
    printf '{"name":"%s","data":{"train":"%s"},"model":{"weights":null},"strategy":"tpe","trials":%s,"startup_trials":%s,"max_parallel":%s,"seed":%s,%s,"fixed":{"epochs":2}%s}' \
        "$1" "$2" "$3" "$4" "$5" "$6" "$SPACE" "${7:-}"
}
jid() { jf "$1" 'r["job"]'; }
# params JOB: every trial's params_json, by number.
params() { sq "SELECT group_concat(p, '|') FROM (SELECT params_json AS p FROM trials WHERE job_id = $1 ORDER BY number)"; }
numbers() { sq "SELECT group_concat(number) FROM (SELECT number FROM trials WHERE job_id = $1 ORDER BY number)"; }
distinct() { sq "SELECT count(DISTINCT params_json) || '/' || count(*) FROM trials WHERE job_id = $1"; }
proposals() { grep -c "job $1: trial [0-9]* (id [0-9]*) proposed by tpe" "$DLOG"; }

# ---- 1. a tpe job ------------------------------------------------------------
mkdata "$T/d" '{"default":{"sleep":0.02}}'
r=$(submit "$(tpe one "$T/d" 12 4 1 11)")
J1=$(jid "$r")
is "tpe: the reply counts the planned trials" "$(jf "$r" 'r["trials"]')" "12"
wait_for 120 job_ended "$J1"
is "tpe: job done" "$(job_state "$J1")" "done"
is "tpe: trials_total is N" "$(sq "SELECT trials_total FROM jobs WHERE id = $J1")" "12"
is "tpe: numbers 0..N-1" "$(numbers "$J1")" "0,1,2,3,4,5,6,7,8,9,10,11"
is "tpe: every trial completed" "$(sq "SELECT count(*) FROM trials WHERE job_id = $J1 AND state = 'completed'")" "12"
is "tpe: no two trials with the same parameters" "$(distinct "$J1")" "12/12"
is "tpe: N-K trials proposed" "$(proposals "$J1")" "8"
is "tpe: trial seeds as for every strategy (distinct)" "$(sq "SELECT count(DISTINCT seed) FROM trials WHERE job_id = $J1")" "12"
like "tpe: the first proposal learns from the 4 startup trials" "$(grep "job $J1: trial 4 " "$DLOG")" \
    "from 4 completed, 0 pruned and 0 pending trials"

# ---- 2. the same spec, seed and finishing order: the same proposals ----------
J2=$(jid "$(submit "$(tpe two "$T/d" 12 4 1 11)")")
wait_for 120 job_ended "$J2"
is "tpe: the same spec and seed give the same trials" "$(params "$J2")" "$(params "$J1")"
J2b=$(jid "$(submit "$(tpe other "$T/d" 12 4 1 12)")")
wait_for 120 job_ended "$J2b"
isnt "tpe: another seed gives other trials" "$(params "$J2b")" "$(params "$J1")"

# ---- 3. two parallel slots ----------------------------------------------------
J3=$(jid "$(submit "$(tpe par "$T/d" 14 2 2 13)")")
wait_for 120 job_ended "$J3"
is "parallel: job done with N trials" "$(job_state "$J3"):$(numbers "$J3")" "done:0,1,2,3,4,5,6,7,8,9,10,11,12,13"
is "parallel: no two trials with the same parameters" "$(distinct "$J3")" "14/14"
check "parallel: proposals were made while another trial ran (the constant liar)" \
    grep -q "job $J3: trial [0-9]* (id [0-9]*) proposed by tpe from [0-9]* completed, [0-9]* pruned and [1-9][0-9]* pending" "$DLOG"

# ---- 4. a daemon SIGKILL between proposals -------------------------------------
mkdata "$T/dk" '{"default":{"sleep":0.25}}'
J4=$(jid "$(submit "$(tpe kill "$T/dk" 12 2 1 14)")")
rows() { [ "$(sq "SELECT count(*) FROM trials WHERE job_id = $J4")" -ge "$1" ]; }
wait_for 60 rows 5
kill -KILL "$DPID"; wait "$DPID" 2>/dev/null; DPID=
pkill_tree
before=$(sq "SELECT count(*) FROM trials WHERE job_id = $J4")
start_daemon --config "$T/sweepd.conf" --workers 2
wait_for 120 job_ended "$J4"
is "kill: job done" "$(job_state "$J4")" "done"
is "kill: numbers 0..N-1 exactly once" "$(numbers "$J4")" "0,1,2,3,4,5,6,7,8,9,10,11"
is "kill: no two trials with the same parameters" "$(distinct "$J4")" "12/12"
check "kill: the daemon was killed between proposals ($before trials stored)" [ "$before" -ge 5 -a "$before" -lt 12 ]
is "kill: each trial after the startup ones proposed once, before or after the restart" \
    "$(grep -c "job $J4: trial [0-9]* (id [0-9]*) proposed by tpe" "$DLOG")" "10"

# ---- 5. warm start -------------------------------------------------------------
e() { jf "$(submit "$1")" 'r["error"]["code"] + ": " + r["error"]["message"]'; }
OTHER='"space":{"lr":{"log_uniform":[0.0001,0.1]}}'
is "warm_start: a job that does not exist is refused, naming the key" \
    "$(e "$(tpe w0 "$T/d" 4 2 1 21 ',"warm_start":{"jobs":[999]}')")" "invalid_job: warm_start.jobs[0]: no job 999"
wrong=$(printf '{"name":"w1","data":{"train":"%s"},"model":{"weights":null},"strategy":"tpe","trials":4,"startup_trials":2,"seed":21,%s,"warm_start":{"jobs":[%s]}}' "$T/d" "$OTHER" "$J1")
is "warm_start: a job of another space is refused, naming the key" "$(e "$wrong")" \
    "invalid_job: warm_start.jobs[0]: job $J1 searched another space (warm start needs the same \"space\")"
is "warm_start: refused jobs are not stored" "$(sq "SELECT count(*) FROM jobs WHERE name IN ('w0', 'w1')")" "0"
JW=$(jid "$(submit "$(tpe warm "$T/d" 3 2 1 21 ",\"warm_start\":{\"jobs\":[$J1,$J3]}")")")
JC=$(jid "$(submit "$(tpe cold "$T/d" 3 2 1 21)")")
wait_for 60 job_ended "$JW"
wait_for 60 job_ended "$JC"
is "warm_start: accepted for the same space, job done" "$(job_state "$JW")" "done"
first2() { sq "SELECT group_concat(p, '|') FROM (SELECT params_json AS p FROM trials WHERE job_id = $1 AND number < 2 ORDER BY number)"; }
third() { sq "SELECT params_json FROM trials WHERE job_id = $1 AND number = 2"; }
is "warm_start: the startup trials are the same" "$(first2 "$JW")" "$(first2 "$JC")"
isnt "warm_start: the first TPE proposal differs from the one without warm start" "$(third "$JW")" "$(third "$JC")"
like "warm_start: the first proposal learned from the warm-start jobs' trials too" \
    "$(grep "job $JW: trial 2 " "$DLOG")" "from 28 completed, 0 pruned and 0 pending trials"

# ---- 6. sobol ------------------------------------------------------------------
sobol='{"name":"sobol","data":{"train":"'$T/d'"},"model":{"weights":null},"strategy":"sobol","trials":8,"seed":5,'$SPACE',"fixed":{"epochs":1}}'
r=$(submit "$sobol")
JS=$(jid "$r")
is "sobol: the reply counts the trials" "$(jf "$r" 'r["trials"]')" "8"
wait_for 60 job_ended "$JS"
sq "SELECT params_json FROM trials WHERE job_id = $JS ORDER BY number" >"$T/sobol.db"
"$BUILD/tests/suggest_points" 5 8 log:0.0001:1 choice:3 uniform:0:0.5 choice:2 >"$T/sobol.want"
is "sobol: trial N is Sobol point N of the job seed, mapped to the space" "$("$PY" - "$T/sobol.db" "$T/sobol.want" <<'PYEOF'
import json, sys
got = [json.loads(l) for l in open(sys.argv[1])]
want = [[float(v) for v in l.split()] for l in open(sys.argv[2])]
bs, opt = [8, 16, 32], ["sgd", "adam"]
bad = [i for i, (g, w) in enumerate(zip(got, want))
       if (g["lr"], g["batch_size"], g["dropout"], g["optimizer"]) != (w[0], bs[int(w[1])], w[2], opt[int(w[3])])]
print("ok" if len(got) == 8 and not bad else "differ at %s" % bad)
PYEOF
)" "ok"
is "sobol: no two trials with the same parameters" "$(distinct "$JS")" "8/8"

# ---- 7. tpe with the median pruner ---------------------------------------------
mkdata "$T/dp" '{"default":{"sleep":0.02}}'
pruned_job=$(printf '{"name":"pruned","data":{"train":"%s"},"model":{"weights":null},"strategy":"tpe","trials":12,"startup_trials":4,"max_parallel":1,"seed":31,%s,"fixed":{"epochs":4},"pruner":{"median":{"warmup_epochs":1,"min_trials":1}}}' "$T/dp" "$SPACE")
JP=$(jid "$(submit "$pruned_job")")
wait_for 120 job_ended "$JP"
is "median: job done with N trials" "$(job_state "$JP"):$(numbers "$JP")" "done:0,1,2,3,4,5,6,7,8,9,10,11"
np=$(sq "SELECT count(*) FROM trials WHERE job_id = $JP AND state = 'pruned' AND number < 11")
check "median: some trials were pruned ($np before the last)" [ "$np" -ge 1 ]
is "median: none failed" "$(sq "SELECT count(*) FROM trials WHERE job_id = $JP AND state = 'failed'")" "0"
nc=$(sq "SELECT count(*) FROM trials WHERE job_id = $JP AND state = 'completed' AND number < 11")
like "median: the last proposal learned from the pruned trials as pruned" \
    "$(grep "job $JP: trial 11 " "$DLOG")" "from $nc completed, $np pruned and 0 pending trials"
out=$(ctl best "$JP")
like "median: sweepctl best lists the pruned trials and why" "$out" "pruned at epoch [0-9]: median: "
unlike "median: sweepctl best of an ended job shows no planned count" "$out" "trials done"
out=$(ctl status "$JP")
like "median: sweepctl status counts the planned trials" "$out" "progress         12/12"

# ---- 8. the planned count before the proposals exist ----------------------------
G="$T/gate"
mkdata "$T/dg" "{\"default\":{\"sleep\":0.02,\"wait_file\":\"$G\"}}"
JG=$(jid "$(submit "$(tpe gated "$T/dg" 9 3 1 41)")")
out=$(ctl status "$JG")
like "planned: status shows 0 of the 9 planned trials done" "$out" "progress         0/9"
like "planned: trials_total is 9" "$out" "trials_total +9"
like "planned: best shows 0 of the 9 trials done" "$(ctl best "$JG")" "^0 of 9 trials done"
is "planned: only the startup trials exist yet" "$(sq "SELECT count(*) FROM trials WHERE job_id = $JG")" "3"
: >"$G"
wait_for 60 job_ended "$JG"
is "planned: then all 9 ran" "$(numbers "$JG")" "0,1,2,3,4,5,6,7,8"
stop_daemon

# ---- 9. out of memory in a proposal ----------------------------------------------
SWEEPD_TEST_TPE_NOMEM=2 start_daemon --config "$T/sweepd.conf" --workers 2
JN=$(jid "$(submit "$(tpe nomem "$T/d" 6 2 1 51)")")
wait_for 60 job_ended "$JN"
is "nomem: the job is done with all its trials" "$(job_state "$JN"):$(numbers "$JN")" "done:0,1,2,3,4,5"
is "nomem: trials_total stays 6" "$(sq "SELECT trials_total FROM jobs WHERE id = $JN")" "6"
is "nomem: each failed proposal was announced and retried" \
    "$(grep -c "job $JN: no memory for proposal 2 (SWEEPD_TEST_TPE_NOMEM: out of memory); trying again" "$DLOG")" "2"
unlike "nomem: the job was not cut short" "$(grep "job $JN:" "$DLOG")" "the job ends with"

# ---- 10. a finite space used up ----------------------------------------------------
fin() {
    printf '{"name":"%s","data":{"train":"%s"},"model":{"weights":null},"strategy":"tpe","trials":120,"startup_trials":4,"max_parallel":2,"seed":61,"space":{"lr":[0.001,0.01,0.1,1],"batch_size":[8,16,32],"optimizer":["sgd","adam"],"epochs":{"int_uniform":[1,5]}}%s}' \
        "$1" "$T/d" "${2:-}"
}
JF=$(jid "$(submit "$(fin finite)")")
wait_for 240 job_ended "$JF"
is "finite: the job is done with all 120 points" "$(job_state "$JF"):$(sq "SELECT count(*) FROM trials WHERE job_id = $JF")" "done:120"
is "finite: no point twice" "$(distinct "$JF")" "120/120"
unlike "finite: the job was not cut short" "$(grep "job $JF:" "$DLOG")" "the job ends with"
JW=$(jid "$(submit "$(fin finite-warm ",\"warm_start\":{\"jobs\":[$JF]}")")")
wait_for 240 job_ended "$JW"
is "finite warm: the job is done with all 120 points" "$(job_state "$JW"):$(sq "SELECT count(*) FROM trials WHERE job_id = $JW")" "done:120"
is "finite warm: no point twice" "$(distinct "$JW")" "120/120"
is "finite warm: every TPE proposal came from the Sobol scan" \
    "$(grep -c "job $JW: trial [0-9]* (id [0-9]*) proposed by tpe .*(a Sobol point" "$DLOG")" "116"
stop_daemon
done_testing
