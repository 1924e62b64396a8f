#!/bin/bash
# A locked database never freezes the loop, and stopping during a lock loses
# no epoch (issue: a job with data.test ending while a user's sqlite3 held
# BEGIN IMMEDIATE made `ping` wait 26 s and SIGTERM 22 s; 4 trials x 100
# epochs, lock held, SIGTERM: "1002 queued writes could not be saved" and
# after the restart trials had 5 and 12 of their 100 epoch rows). Also: a
# trial that completes after a restart keeps no stale "interrupted" error.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.bash"

# hold_lock SECONDS READY: holds BEGIN IMMEDIATE on $DB for SECONDS; READY is
# created once the lock is held.
hold_lock() {
    "$PY" - "$DB" "$1" "$2" <<'PYEOF'
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
con.execute("BEGIN IMMEDIATE")
open(sys.argv[3], "w").close()
time.sleep(float(sys.argv[2]))
con.execute("ROLLBACK")
PYEOF
}
# pinger SECONDS OUT: pings every 0.1 s for SECONDS on fresh connections;
# writes "answered worst_seconds" to OUT.
cat >"$T/pinger.py" <<'PYEOF'
import socket, sys, time
path, secs, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
n, worst, end = 0, 0.0, time.monotonic() + secs
while time.monotonic() < end:
    t0 = time.monotonic()
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(path)
        s.sendall(b'{"op":"ping"}\n')
        if b'"ok":true' in s.recv(4096): n += 1
        s.close()
    except OSError:
        pass
    worst = max(worst, time.monotonic() - t0)
    time.sleep(0.1)
open(out, "w").write("%d %.3f\n" % (n, worst))
PYEOF

# 1. The end of a job with a test set, under a 6 s lock: the evaluation waits
# for the database from the timer; the loop keeps answering.
mkdata "$T/d1" '{"default":{"sleep":0.01,"wait_file":"'"$T/go1"'"},"test_accuracy":0.71}'
mkdir -p "$T/t1"; echo '{"test_accuracy":0.71}' >"$T/t1/fake.json"
start_daemon --workers 1
r=$(submit '{"name":"evallock","data":{"train":"'"$T/d1"'","test":"'"$T/t1"'"},
  "model":{"weights":null},"strategy":"grid","space":{"lr":[0.1]},"fixed":{"epochs":2},"seed":1}')
like "job with a test set accepted" "$r" '"ok":true,"job":1'
running1() { [ "$(sq "SELECT state FROM trials WHERE job_id=1")" = running ]; }
wait_for 20 running1
hold_lock 6 "$T/locked1" &
LP=$!
wait_for 10 test -e "$T/locked1"
touch "$T/go1" # the trial finishes, and the job wants its evaluation, under the lock
"$PY" "$T/pinger.py" "$SOCK" 5 "$T/ping1" &
PP=$!
wait $PP
read -r answered worst <"$T/ping1"
echo "# pings answered during the lock: $answered, slowest ${worst} s"
check "pings are answered throughout the lock ($answered of about 50)" [ "$answered" -ge 20 ]
wait $LP
wait_for 30 job_ended 1
is "the job ends done once the lock is gone" "$(job_state 1)" "done"
is "its test accuracy is stored" "$(sq "SELECT test_accuracy FROM trials WHERE job_id=1")" "0.71"

# 2. SIGTERM during a lock, then restart: every epoch row is there exactly
# once. Trials start (and some finish) while the lock is held, so none of
# their rows or state changes can be written before the daemon stops.
mkdata "$T/d2" '{"default":{"sleep":0.02}}'
r=$(submit '{"name":"termlock","data":{"train":"'"$T/d2"'"},"model":{"weights":null},
  "strategy":"grid","space":{"lr":[0.1,0.01,0.001,0.0001]},"fixed":{"epochs":100},
  "max_parallel":2,"seed":2}')
hold_lock 12 "$T/locked2" &
LP=$!
wait_for 10 test -e "$T/locked2"
like "a 4 x 100-epoch job accepted" "$r" '"ok":true,"job":2'
sleep 3
stop_daemon
like "the daemon says writes were kept back" "$(cat "$DLOG")" "queued writes could not be saved"
wait $LP
start_daemon --workers 1
wait_for 120 job_ended 2
is "the job ends done after the restart" "$(job_state 2)" "done"
is "every trial has its 100 epoch rows, each once" \
    "$(sq "SELECT group_concat(n, ' ') FROM (SELECT count(DISTINCT m.epoch) AS n FROM trials t
           LEFT JOIN trial_metrics m ON m.trial_id = t.id WHERE t.job_id = 2 GROUP BY t.id
           ORDER BY t.number)")" "100 100 100 100"
is "no trial has a row twice" \
    "$(sq "SELECT count(*) FROM (SELECT trial_id, epoch FROM trial_metrics GROUP BY 1, 2 HAVING count(*) > 1)")" "0"
like "recovery rebuilt rows from the events files" "$(cat "$DLOG")" "replayed [0-9]+ events"

# 3. A completed trial carries no stale error from an interrupted attempt:
# sweepd killed while a trial runs, restarted; recovery requeues the trial
# with "interrupted: the daemon stopped unexpectedly", and its completion
# clears that.
is "no completed trial keeps an error" \
    "$(sq "SELECT count(*) FROM trials WHERE state = 'completed' AND error IS NOT NULL")" "0"
mkdata "$T/d3" '{"default":{"sleep":0.2}}'
r=$(submit '{"name":"stale","data":{"train":"'"$T/d3"'"},"model":{"weights":null},
  "strategy":"grid","space":{"lr":[0.1]},"fixed":{"epochs":5},"seed":3}')
like "a 5-epoch job accepted" "$r" '"ok":true,"job":3'
midway3() { [ "$(sq "SELECT count(*) FROM trials WHERE job_id=3 AND state='running' AND last_epoch>=1")" = 1 ]; }
wait_for 30 midway3
kill -KILL "$DPID"
wait "$DPID" 2>/dev/null
DPID=
start_daemon --workers 1
is "recovery marked the interrupted attempt" \
    "$(sq "SELECT attempt FROM trials WHERE job_id=3")" "1"
wait_for 30 job_ended 3
is "the resumed trial completes" "$(sq "SELECT state FROM trials WHERE job_id=3")" "completed"
is "and keeps no stale 'interrupted' error" \
    "$(sq "SELECT coalesce(error, 'none') FROM trials WHERE job_id=3")" "none"
stop_daemon
done_testing
