#!/bin/bash
# `sweepctl watch` prints each trial's lines in causal order — "started",
# "epoch 1/N" … "epoch N/N", then "completed" — and its progress counter
# counts a trial once, on that last line, however the events reach the
# daemon: the fake worker's "burst" action writes a whole trial (start, every
# epoch, done) in one write and exits at once, so sweepd reads the epoch lines
# in the same drain as the process exit, and "burst_apart" sends the start
# line first and the rest together with the exit. Two trials run at once, so
# their bursts interleave. The checks are on the order of the printed lines
# only, never on timing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.bash"

CTL=$BUILD/sweepctl
TRIALS=12
EPOCHS=6

# check_order FILE TOTAL FULL: "OK", or what is wrong with the watch output in
# FILE for a job of TOTAL trials of EPOCHS epochs. FULL=1: every trial must
# show all its lines (the watch was attached before any trial ran); FULL=0:
# a trial may lack the lines from before the watch attached (its lines are
# then the tail of the full sequence) or be counted as already finished.
cat >"$T/check_order.py" <<'PYEOF'
import re, sys
path, total, epochs, full = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
want = ["started"] + ["epoch %d/%d" % (e, epochs) for e in range(1, epochs + 1)] + ["completed"]
seen, counters, problems, already = {}, [], [], 0
for line in open(path):
    line = line.rstrip("\n")
    m = re.match(r"job \d+ .*: (\d+)/(\d+) trials already finished", line)
    if m:
        already = int(m.group(1))
        continue
    m = re.match(r"trial (\d+) (started|epoch \d+/\d+|completed|failed|cancelled|pruned"
                 r"|queued again|error|test_accuracy)", line)
    if not m:
        continue
    tid, what = int(m.group(1)), m.group(2)
    if what == "test_accuracy":
        continue  # the job's test evaluation, after the trial's own lines
    seen.setdefault(tid, []).append(what)
    if what == "completed":
        c = re.search(r"\[(\d+)/(\d+) done", line)
        if not c or int(c.group(2)) != total:
            problems.append("no [k/%d done] counter on: %s" % (total, line))
        else:
            counters.append(int(c.group(1)))
for tid, got in sorted(seen.items()):
    ok = got == want if full else (got == want[len(want) - len(got):] and got[-1:] == ["completed"])
    if not ok:
        problems.append("trial %d printed %s" % (tid, got))
if full and (len(seen) != total or already):
    problems.append("%d trials printed, %d already finished; want %d and 0"
                    % (len(seen), already, total))
expect = list(range(already + 1, total + 1))
if counters != expect:
    problems.append("done counters %s, want %s" % (counters, expect))
print("OK" if not problems else "; ".join(problems))
PYEOF
check_order() { "$PY" "$T/check_order.py" "$1" "$2" "$EPOCHS" "$3"; }

job() { # job NAME TRAIN
    cat <<EOF
{"name": "$1", "data": {"train": "$2"}, "model": {"weights": null, "arch": "resnet18"},
 "strategy": "grid", "space": {"lr": [0.1, 0.05, 0.03, 0.01, 0.005, 0.001], "dropout": [0.0, 0.1]},
 "fixed": {"epochs": $EPOCHS}, "max_parallel": 2, "max_retries": 0, "seed": 5}
EOF
}

# 1. Watch attached before any trial runs (the trials wait at a gate until
# the daemon has taken the watch request). Each worker waits a little after
# the gate before its burst, so that `watch` asks for a status snapshot in the
# middle of the stream; dropout 0.1 trials send their start line apart.
mkdata "$T/gated" '{"default": {"action": "burst", "sleep": 0.3, "progress": 2,
  "wait_file": "'"$T/go"'"}, "rules": [{"match": {"dropout": 0.1}, "burst_apart": true}]}'
start_daemon --workers 2
check "daemon answers ping" ping_ok
like "gated job submitted" "$(submit "$(job gated "$T/gated")")" '"ok":true,"job":1,"trials":12'
"$CTL" --socket "$SOCK" watch 1 >"$T/watch1.out" 2>"$T/watch1.err" &
W=$!
wait_for 20 grep -q "op watch" "$DLOG"
touch "$T/go"
wait $W
is "watch of the burst job exits 0" "$?" 0
is "every trial's lines in causal order, counted once on its last line" \
    "$(check_order "$T/watch1.out" $TRIALS 1)" OK
like "the summary counts every trial" "$(cat "$T/watch1.out")" \
    "job 1 done: $TRIALS completed, 0 failed, 0 cancelled or pruned, of $TRIALS trials"
is "nothing on stderr" "$(cat "$T/watch1.err")" ""

# 2. Watch attached while bursts are under way (once two trials have
# finished): lines from before the attach are missing, the rest still in
# order, and the counter goes on from "already finished". (If the machine is
# so slow that the job ends first, this is the ended-job case; the checks
# hold as well.)
mkdata "$T/free" '{"default": {"action": "burst", "sleep": 0.15, "progress": 3},
  "rules": [{"match": {"dropout": 0.1}, "burst_apart": true}]}'
like "free-running job submitted" "$(submit "$(job free "$T/free")")" '"ok":true,"job":2,"trials":12'
two_done() { [ "$(sq "SELECT count(*) FROM trials WHERE job_id=2 AND state='completed'")" -ge 2 ]; }
wait_for 30 two_done
"$CTL" --socket "$SOCK" watch 2 >"$T/watch2.out" 2>"$T/watch2.err"
is "watch of the running job exits 0" "$?" 0
is "late watch: lines in causal order, counter from the already finished" \
    "$(check_order "$T/watch2.out" $TRIALS 0)" OK

# 3. The same job watched after it ended: only the summary, nothing per trial.
"$CTL" --socket "$SOCK" watch 2 >"$T/watch3.out" 2>&1
is "watch of an ended job exits 0" "$?" 0
like "it reports all trials already finished" "$(cat "$T/watch3.out")" \
    "^job 2 free: $TRIALS/$TRIALS trials already finished \($TRIALS completed, 0 failed\)"
is "and prints no trial line" "$(grep -c '^trial ' "$T/watch3.out")" 0

stop_daemon
done_testing
