#!/bin/bash
# sweepd with the fake worker: no event lost while a sqlite3 reader holds a
# read transaction for 10 s or another process holds the write lock; SIGTERM
# and restart mid-job (every trial completed exactly once, resuming from
# checkpoints); SIGKILL of the daemon and recovery on restart (orphaned
# workers found by pid + start time and stopped, trials requeued; a test-set
# evaluation left running is stopped too).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.bash"
printf 'kill_grace = 2\ntick = 0.05\n' >"$T/sweepd.conf"
start_daemon --config "$T/sweepd.conf" --workers 2

# 1. A reader holds a transaction for 10 s while 4 trials x 10 epochs stream.
mkdata "$T/d1" '{"default":{"sleep":0.15,"progress":3}}'
submit "{\"name\":\"reader\",\"data\":{\"train\":\"$T/d1\"},\"model\":{\"weights\":null},\"space\":{\"lr\":[0.1,0.01,0.001,0.0001],\"epochs\":[10]}}" >/dev/null
"$PY" - "$DB" >"$T/reader.out" <<'PYEOF' &
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=1)
con.execute("BEGIN")
a = con.execute("SELECT count(*) FROM trial_metrics").fetchone()[0]
time.sleep(10)
b = con.execute("SELECT count(*) FROM trial_metrics").fetchone()[0]
con.execute("COMMIT")
print(a, b)
PYEOF
RPID=$!
sleep 1
check "daemon answers while the reader holds its snapshot" ping_ok
wait_for 20 job_ended 1
wait $RPID
read a b <"$T/reader.out"
is "reader saw one consistent snapshot" "$a" "$b"
is "job done despite the reader" "$(job_state 1)" "done"
is "every epoch event stored (4 x 10)" "$(sq "SELECT count(*) FROM trial_metrics m JOIN trials t ON t.id=m.trial_id WHERE t.job_id=1")" "40"

# 2. Another process holds the WRITE lock for 2 s: writes are queued, none lost.
mkdata "$T/d2" '{"default":{"sleep":0.1}}'
submit "{\"name\":\"locked\",\"data\":{\"train\":\"$T/d2\"},\"model\":{\"weights\":null},\"space\":{\"lr\":[0.1,0.01],\"epochs\":[6]}}" >/dev/null
"$PY" - "$DB" <<'PYEOF'
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)
con.execute("BEGIN IMMEDIATE")
time.sleep(2)
con.execute("COMMIT")
PYEOF
wait_for 20 job_ended 2
is "job done after the lock was released" "$(job_state 2)" "done"
is "every epoch stored (2 x 6)" "$(sq "SELECT count(*) FROM trial_metrics m JOIN trials t ON t.id=m.trial_id WHERE t.job_id=2")" "12"
like "busy database logged and recovered" "$(cat "$DLOG")" "database writable again"

# 3. SIGTERM mid-job, restart: the job completes, every trial exactly once.
mkdata "$T/d3" '{"default":{"sleep":0.2}}'
submit "{\"name\":\"restart\",\"data\":{\"train\":\"$T/d3\"},\"model\":{\"weights\":null},\"space\":{\"lr\":[0.1,0.01,0.001,0.0001,0.00001],\"epochs\":[5]}}" >/dev/null
midway() { [ "$(sq "SELECT count(*) FROM trials WHERE job_id=3 AND state='running' AND last_epoch>=1")" = 2 ]; }
wait_for 20 midway
stop_daemon
is "SIGTERM with running workers exits 0" "$?" "0"
is "no trial left running" "$(sq "SELECT count(*) FROM trials WHERE state='running'")" "0"
is "stopped trials queued again, attempt not counted" "$(sq "SELECT count(*) FROM trials WHERE job_id=3 AND state='queued' AND attempt=0 AND exit_code=7")" "2"
start_daemon --config "$T/sweepd.conf" --workers 2
wait_for 30 job_ended 3
is "job done after restart" "$(job_state 3)" "done"
is "all 5 trials completed" "$(sq "SELECT count(*) FROM trials WHERE job_id=3 AND state='completed'")" "5"
n=0; bad=0
for id in $(sq "SELECT id FROM trials WHERE job_id=3"); do
    c=$(wc -l <"$VAR/trials/$id/completions")
    n=$((n + 1)); [ "$c" = 1 ] || bad=$((bad + 1))
done
is "each trial completed exactly once" "$n/$bad" "5/0"
check "stopped trials resumed from their checkpoint" grep -q "resume after epoch [1-9]" $VAR/logs/trial-*.log
is "5 epochs each, no duplicates" "$(sq "SELECT count(*) FROM trial_metrics m JOIN trials t ON t.id=m.trial_id WHERE t.job_id=3")" "25"

# 4. SIGKILL of the daemon: workers are orphaned; on restart they are
#    found (pid + start time) and stopped, their trials requeued (attempt+1).
mkdata "$T/d4" '{"default":{"sleep":0.05},"rules":[{"match":{"lr":0.1},"action":"hang","fail_attempts":1},{"match":{"lr":0.01},"action":"hang","fail_attempts":1}]}'
submit "{\"name\":\"crash\",\"data\":{\"train\":\"$T/d4\"},\"model\":{\"weights\":null},\"space\":{\"lr\":[0.1,0.01,0.001],\"epochs\":[2]}}" >/dev/null
running2() { [ "$(sq "SELECT count(*) FROM trials WHERE job_id=4 AND state='running' AND pid IS NOT NULL")" = 2 ]; }
wait_for 10 running2
pids=$(sq "SELECT pid FROM trials WHERE job_id=4 AND state='running'")
kill -KILL "$DPID"; wait "$DPID" 2>/dev/null; DPID=
alive=0; for p in $pids; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
is "orphaned workers still running after SIGKILL" "$alive" "2"
start_daemon --config "$T/sweepd.conf" --workers 2
alive=0; for p in $pids; do [ -e /proc/$p ] && [ "$(cut -d' ' -f3 /proc/$p/stat)" != Z ] && alive=$((alive + 1)); done
is "recovery stopped the orphans" "$alive" "0"
like "recovery logged them" "$(cat "$DLOG")" "left by the previous daemon"
wait_for 20 job_ended 4
is "job completes after recovery" "$(job_state 4)" "done"
is "interrupted trials were requeued with attempt 1" "$(sq "SELECT count(*) FROM trials WHERE job_id=4 AND attempt=1")" "2"
is "no trial lost" "$(sq "SELECT count(*) FROM trials WHERE job_id=4 AND state='completed'")" "3"

# 5. Events written while the daemon is frozen, then SIGKILL: nothing lost.
#    Trial A finishes entirely while the daemon is stopped (completed on
#    restart, not run again); trial B writes epochs the daemon never read.
#    (Both run 8 epochs, B three times slower: a worker runs its trial's epochs.)
mkdata "$T/d5" '{"default":{"sleep":0.1},"rules":[{"match":{"lr":0.01},"sleep":0.3}]}'
submit "{\"name\":\"frozen\",\"data\":{\"train\":\"$T/d5\"},\"model\":{\"weights\":null},\"space\":{\"lr\":[0.1,0.01],\"epochs\":[8]}}" >/dev/null
started5() { [ "$(sq "SELECT count(*) FROM trials WHERE job_id=5 AND state='running' AND pid IS NOT NULL")" = 2 ]; }
wait_for 10 started5
A=$(sq "SELECT id FROM trials WHERE job_id=5 AND number=0")
B=$(sq "SELECT id FROM trials WHERE job_id=5 AND number=1")
kill -STOP "$DPID"
wait_for 10 grep -q '"event":"done"' "$VAR/trials/$A/events.ndjson"
kill -KILL "$DPID"; kill -CONT "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; DPID=
is "daemon saw no epoch of B's last 0.5 s (DB has fewer epochs than the events file)" \
    "$([ "$(sq "SELECT count(*) FROM trial_metrics WHERE trial_id=$B")" -lt "$(grep -c '"event":"epoch"' "$VAR/trials/$B/events.ndjson")" ] && echo yes)" "yes"
start_daemon --config "$T/sweepd.conf" --workers 2
is "trial A completed on restart without running again" "$(sq "SELECT state||'/'||attempt FROM trials WHERE id=$A")/$(wc -l <"$VAR/trials/$A/completions")" "completed/0/1"
is "trial A's 8 epochs recorded from its events file" "$(sq "SELECT group_concat(epoch) FROM trial_metrics WHERE trial_id=$A")" "1,2,3,4,5,6,7,8"
wait_for 30 job_ended 5
is "job 5 done" "$(job_state 5)" "done"
is "trial B: epochs 1..8 each recorded once" "$(sq "SELECT group_concat(epoch) FROM trial_metrics WHERE trial_id=$B")" "1,2,3,4,5,6,7,8"
is "trial B completed exactly once" "$(wc -l <"$VAR/trials/$B/completions")" "1"

# 6. SIGKILL during the end-of-job test-set evaluation: the evaluation's pid
#    is on the evaluated trial's row; recovery stops it, and the job's one
#    evaluation runs to its end once (not twice side by side).
mkdata "$T/d6"
mkdata "$T/t6" '{"eval_sleep":3,"test_accuracy":0.66}'
J6=$(dc get "{\"op\":\"submit\",\"job\":{\"name\":\"evalkill\",\"data\":{\"train\":\"$T/d6\",\"test\":\"$T/t6\"},\"model\":{\"weights\":null},\"space\":{\"lr\":[0.1],\"epochs\":[1]}}}" 'r.get("job")')
evalpid() { sq "SELECT pid FROM trials WHERE job_id=$J6 AND state='completed' AND pid IS NOT NULL"; }
has_evalpid() { [ -n "$(evalpid)" ]; }
wait_for 15 has_evalpid
EP=$(evalpid)
check "the running evaluation's pid is recorded on the trial's row" test -n "$EP"
check "... and is the evaluation" grep -q "eval" "/proc/${EP:-0}/cmdline"
kill -KILL "$DPID"; wait "$DPID" 2>/dev/null; DPID=
start_daemon --config "$T/sweepd.conf" --workers 2
gone() { [ ! -e /proc/$EP ] || [ "$(cut -d' ' -f3 /proc/$EP/stat)" = Z ]; }
check "recovery stopped the evaluation left by the killed daemon" gone
like "and logged it" "$(cat "$DLOG")" "test-set evaluation of trial [0-9]+ \\(pid $EP\\) left by the previous daemon; stopping it"
wait_for 20 job_ended "$J6"
is "job 6 done with its test accuracy" "$(job_state "$J6")/$(sq "SELECT test_accuracy FROM trials WHERE job_id=$J6")" "done/0.66"
is "one evaluation ran to its end" "$(wc -l <"$T/t6/evals")" 1
is "no pid left on the row" "$(sq "SELECT count(*) FROM trials WHERE job_id=$J6 AND pid IS NOT NULL")" 0

# 7. A stored spec that is no longer JSON (a damaged row): on restart the
#    job is marked failed with the reason, the daemon keeps running.
mkdata "$T/d7" '{"default":{"sleep":5}}'
J7=$(dc get "{\"op\":\"submit\",\"job\":{\"name\":\"damaged\",\"data\":{\"train\":\"$T/d7\"},\"model\":{\"weights\":null},\"space\":{\"lr\":[0.1],\"epochs\":[1]}}}" 'r.get("job")')
stop_daemon
sq "UPDATE jobs SET spec_json = '{\"name\": \"damag' WHERE id = $J7"
start_daemon --config "$T/sweepd.conf" --workers 2
check "daemon up after a job whose stored spec is not JSON" ping_ok
wait_for 10 job_ended "$J7"
is "that job failed with the reason" "$(job_state "$J7")|$(sq "SELECT error FROM jobs WHERE id=$J7")" "failed|stored job spec could not be read on restart"
like "the log says what could not be read" "$(cat "$DLOG")" "job $J7: stored spec unusable \\("
stop_daemon
is "final SIGTERM exits 0" "$?" "0"
done_testing
