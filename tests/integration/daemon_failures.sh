#!/bin/bash
# sweepd with the fake worker: exit-code outcomes, retries resuming from a
# checkpoint, timeouts (SIGTERM, then SIGKILL after the grace), floods of
# output, cancellation, a job whose every trial fails, and two jobs sharing
# the worker slots.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.bash"

cat >"$T/sweepd.conf" <<'CONF'
# test settings
kill_grace = 0.5
tick = 0.05   # fast timer for timeouts
max_retries = 1
CONF
start_daemon --config "$T/sweepd.conf" --workers 2

# Outcomes by exit code, one job: lr picks the script of each trial.
mkdata "$T/d1" '{"default":{"sleep":0.02},"rules":[
 {"match":{"lr":0.5},"action":"exit","code":3,"message":"no images in class cat"},
 {"match":{"lr":0.4},"action":"exit","code":5,"message":"loss is nan"},
 {"match":{"lr":0.3},"action":"crash","fail_attempts":1},
 {"match":{"lr":0.2},"action":"crash"},
 {"match":{"lr":0.1},"action":"flood"}]}'
submit "{\"name\":\"outcomes\",\"data\":{\"train\":\"$T/d1\"},\"model\":{\"weights\":null},\"space\":{\"lr\":[0.5,0.4,0.3,0.2,0.1,0.01],\"epochs\":[3]},\"max_retries\":1}" >/dev/null
wait_for 30 job_ended 1
row() { sq "SELECT state||'|'||attempt||'|'||coalesce(exit_code,'')||'|'||coalesce(error,'') FROM trials WHERE job_id=1 AND lr=$1"; }
like "exit 3: failed at once, error stored" "$(row 0.5)" '^failed\|0\|3\|data error: no images in class cat$'
like "exit 5: failed as diverged" "$(row 0.4)" '^failed\|0\|5\|diverged'
like "crash once: retried and completed on attempt 1" "$(row 0.3)" '^completed\|1\|0\|'
is "retry resumed from the checkpoint: epochs recorded once each" "$(sq "SELECT group_concat(epoch) FROM trial_metrics WHERE trial_id=(SELECT id FROM trials WHERE job_id=1 AND lr=0.3)")" "1,2,3"
like "always crashing: failed after max_retries" "$(row 0.2)" '^failed\|1\|-6\|attempt 1 killed by signal 6'
is "flood of junk output: still completed" "$(sq "SELECT state FROM trials WHERE job_id=1 AND lr=0.1")" "completed"
like "junk lines logged, not fatal" "$(cat "$DLOG")" "not a JSON event"
like "oversized line logged" "$(cat "$DLOG")" "is too long; ignored"
is "job with some completed trials is done" "$(job_state 1)" "done"
like "transitions logged by the setter" "$(grep -c 'running -> queued' "$DLOG")" '^[1-9]'

# Timeouts: a hanging worker gets SIGTERM; one ignoring it gets SIGKILL.
mkdata "$T/d2" '{"default":{"action":"hang"},"rules":[{"match":{"lr":0.2},"action":"hang","ignore_term":true}]}'
submit "{\"name\":\"timeouts\",\"data\":{\"train\":\"$T/d2\"},\"model\":{\"weights\":null},\"space\":{\"lr\":[0.1,0.2]},\"trial_timeout\":0.5}" >/dev/null
wait_for 20 job_ended 2
like "timeout: failed with the reason" "$(sq "SELECT state||'|'||exit_code||'|'||error FROM trials WHERE job_id=2 AND lr=0.1")" '^failed\|7\|exceeded trial_timeout of 0.5 s'
like "ignoring SIGTERM: killed after the grace" "$(sq "SELECT state||'|'||exit_code FROM trials WHERE job_id=2 AND lr=0.2")" '^failed\|-9$'
like "SIGKILL logged" "$(cat "$DLOG")" "sending SIGKILL"
is "every trial failed: job failed" "$(job_state 2)" "failed"
like "job error says why" "$(sq "SELECT error FROM jobs WHERE id=2")" "every trial failed"

# Cancel: running trials stopped (SIGTERM), queued ones dequeued.
mkdata "$T/d3" '{"default":{"action":"hang"}}'
submit "{\"name\":\"cancel\",\"data\":{\"train\":\"$T/d3\"},\"model\":{\"weights\":null},\"space\":{\"lr\":[0.1,0.2,0.3,0.4,0.5]}}" >/dev/null
running3() { [ "$(sq "SELECT count(*) FROM trials WHERE job_id=3 AND state='running'")" = 2 ]; }
wait_for 10 running3
r=$(dc req '{"op":"cancel","job":3}')
like "cancel reply counts" "$r" '"ok":true,"job":3,"state":"cancelled","dequeued":3,"stopping":2'
wait_for 10 job_ended 3
is "cancelled job state" "$(job_state 3)" "cancelled"
is "all its trials cancelled" "$(sq "SELECT group_concat(state) FROM (SELECT state FROM trials WHERE job_id=3 ORDER BY number)")" "cancelled,cancelled,cancelled,cancelled,cancelled"
like "cancel again: invalid_state" "$(dc req '{"op":"cancel","job":3}')" '"code":"invalid_state"'
like "cancel unknown job: not_found" "$(dc req '{"op":"cancel","job":77}')" '"code":"not_found"'

# Two jobs share 2 slots: max_parallel respected, turns taken round robin.
mkdata "$T/d4" '{"default":{"sleep":0.15}}'
submit "{\"name\":\"A\",\"data\":{\"train\":\"$T/d4\"},\"model\":{\"weights\":null},\"space\":{\"lr\":[0.1,0.2,0.3,0.4,0.5,0.6],\"epochs\":[1]},\"max_parallel\":2}" >/dev/null
submit "{\"name\":\"B\",\"data\":{\"train\":\"$T/d4\"},\"model\":{\"weights\":null},\"space\":{\"lr\":[0.1,0.2,0.3],\"epochs\":[1]},\"max_parallel\":1}" >/dev/null
wait_for 30 job_ended 5
wait_for 30 job_ended 4
is "both jobs done" "$(job_state 4)/$(job_state 5)" "done/done"
# Replay start/finish times: never more than 2 trials at once, B never more than 1.
sq "SELECT job_id, started_at, finished_at FROM trials WHERE job_id IN (4,5)" >"$T/iv"
maxc=$("$PY" - "$T/iv" <<'PYEOF'
import sys
ev = []
for l in open(sys.argv[1]):
    j, s, f = l.strip().split("|")
    ev += [(s, 1, j), (f, -1, j)]
ev.sort(key=lambda e: (e[0], e[1]))
tot = 0; per = {"4": 0, "5": 0}; mt = 0; mb = 0
for t, d, j in ev:
    tot += d; per[j] += d; mt = max(mt, tot); mb = max(mb, per["5"])
print(mt, mb)
PYEOF
)
is "at most 2 trials at once, job B at most 1" "$maxc" "2 1"
firstB=$(sq "SELECT min(started_at) FROM trials WHERE job_id=5")
lastA=$(sq "SELECT max(started_at) FROM trials WHERE job_id=4")
check "B got a slot before A's last trial started (round robin)" [ "$firstB" \< "$lastA" ]

stop_daemon
is "SIGTERM exits 0" "$?" "0"
check "no worker left behind" [ -z "$(pkill_tree; echo)" ]
done_testing
