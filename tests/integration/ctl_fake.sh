#!/bin/bash
# sweepctl against a scripted stand-in for sweepd (a small Python socket
# server written below): exit codes, request shapes, table output, --json,
# JSON syntax errors caught before contacting the daemon, the "not running"
# hint, and `watch` both on a pipe and on a terminal (through script(1)).
# The real daemon is exercised by ctl_daemon.sh; this one pins the client's
# behaviour to exact replies, including malformed and failing ones. Like
# sweepd, the fake keeps answering requests on a watch connection, each reply
# in order with the events (a status reply there describes exactly the events
# sent before it: the fake changes a job's state and sends the events telling
# it under one lock).
source "$(dirname "$0")/lib.sh"

CTL=$BUILD/sweepctl
SOCK=$T/fake.sock
REQLOG=$T/requests.log

cat >"$T/fake.py" <<'EOF'
import json, os, socket, sys, threading, time
sock_path, log_path = sys.argv[1], sys.argv[2]
state = {"job1": "running", "job2": "running", "job3": "running"}
lock = threading.RLock()  # held while sending a line, and across a state change and its events

def trials(job):
    done = state["job%d" % job] in ("done", "failed")
    rows = [
        {"id": 11, "number": 0, "state": "completed", "lr": 0.1, "batch_size": 32, "epochs": 2,
         "params": {"lr": 0.1, "batch_size": 32, "freeze": "layer3"},
         "val_accuracy": 0.8, "started_at": "2026-11-28T10:00:00.000Z",
         "finished_at": "2026-11-28T10:01:00.000Z"},
        {"id": 12, "number": 1, "state": "completed" if done else "running", "lr": 0.01,
         "batch_size": 32, "epochs": 2, "params": {"lr": 0.01, "batch_size": 32, "freeze": "layer2"},
         "val_accuracy": 0.9 if done else None, "started_at": "2026-11-28T10:01:00.000Z",
         "finished_at": "2026-11-28T10:02:00.000Z" if done else None},
    ]
    if job == 3:  # the status a late watcher sees: trial 12 already finished
        rows[1].update(state="completed", val_accuracy=0.9, finished_at="2026-11-28T10:02:00.000Z")
    if job == 2 and done:
        rows[1]["state"] = "failed"
        rows[1]["val_accuracy"] = None
        rows[1]["error"] = "diverged"
    return rows

def reply(req):
    op = req.get("op")
    if op == "ping":
        return {"ok": True, "pong": True, "version": "0.1", "pid": os.getpid(), "uptime": 75.2}
    if op == "submit":
        if "lr" in json.dumps(req["job"].get("space", {})) and req["job"]["space"].get("lr") == "bad":
            return {"ok": False, "error": {"code": "invalid_job",
                                            "message": "space.lr: expected a list, got \"bad\""}}
        return {"ok": True, "job": 1, "trials": 2, "seed": 42, "name": "demo"}
    if op == "status" and "job" not in req:
        return {"ok": True, "jobs": [
            {"id": 1, "name": "demo", "state": state["job1"], "trials_total": 2,
             "objective": {"metric": "val_accuracy", "goal": "maximize"},
             "best": {"trial": 11, "number": 0, "value": 0.8},
             "counts": {"queued": 0, "running": 1, "completed": 1, "failed": 0, "cancelled": 0,
                        "pruned": 0},
             "submitted_at": "2026-11-28T10:00:00.000Z"}]}
    if op in ("status", "best", "cancel", "watch") and req.get("job") not in (1, 2, 3):
        return {"ok": False, "error": {"code": "not_found", "message": "no job %s" % req.get("job")}}
    if op == "status":
        j = req["job"]
        return {"ok": True, "job": {"id": j, "name": "demo%d" % j, "state": state["job%d" % j],
                                    "trials_total": 2, "started_at": "2026-11-28T10:00:00.000Z",
                                    "max_parallel": 1,
                                    "objective": {"metric": "val_accuracy", "goal": "maximize"}},
                "trials": trials(j)}
    if op == "best":
        rows = [dict(t, rank=i + 1) for i, t in enumerate(
            sorted([t for t in trials(1)], key=lambda t: -(t["val_accuracy"] or 0)))]
        return {"ok": True, "job": 1, "trials": rows[:req.get("limit", 5)]}
    if op == "trial":
        if req.get("id") != 11:
            return {"ok": False, "error": {"code": "not_found", "message": "no trial %s" % req.get("id")}}
        return {"ok": True, "trial": dict(trials(1)[0], metrics=[
            {"epoch": 1, "train_loss": 1.2, "val_accuracy": 0.7, "seconds": 30},
            {"epoch": 2, "train_loss": 0.6, "val_accuracy": 0.8, "seconds": 30}])}
    if op == "cancel":
        return {"ok": True, "job": req["job"], "state": "cancelled", "dequeued": 0, "stopping": 1}
    if op == "shutdown":
        return {"ok": True, "shutting_down": True}
    return {"ok": False, "error": {"code": "bad_request", "message": "unknown op %r" % op}}

def send(c, obj):
    with lock:
        c.sendall((json.dumps(obj) + "\n").encode())

def watch_late(c):
    """Job 3, attached late: trial 12's whole run is on the stream before
    the reply to the watcher's first status request, which therefore already
    shows it completed. Sent right after the acknowledgement, before the
    request is read (as if the daemon took the two lines in separate reads)."""
    ids = {"job": 3, "trial": 12, "number": 1}
    for e in [dict(ids, event="trial_state", state="running", attempt=0),
              dict(ids, event="start", params={"lr": 0.01, "epochs": 2}),
              dict(ids, event="epoch", epoch=2, train_loss=0.5, val_loss=0.4, val_accuracy=0.9,
                   seconds=30.0),
              dict(ids, event="done", val_accuracy=0.9, best_epoch=2),
              dict(ids, event="trial_state", state="completed", attempt=0, exit_code=0,
                   error=None)]:
        send(c, e)
    threading.Thread(target=watch_late_end, args=(c,), daemon=True).start()

def watch_late_end(c):
    time.sleep(0.5)
    with lock:
        state["job3"] = "done"
        send(c, {"event": "end", "job": 3, "state": "done",
                 "best": {"trial": 12, "number": 1, "value": 0.9}})

def watch(c, job):
    """The events of job 1 or 2, sent from a thread of their own while the
    connection goes on answering requests."""
    try:
        watch_events(c, job)
    except OSError:
        pass  # the client went away first: normal for watch

def watch_events(c, job):
    ids = {"job": job, "trial": 12, "number": 1}
    evs = [
        dict(ids, event="progress", t=1.0, epoch=1, step=5, steps=10, loss=0.9, images_per_s=120.0),
        dict(ids, event="epoch", t=2.0, epoch=1, train_loss=0.8, val_loss=0.7, val_accuracy=0.75,
             seconds=31.0),
        dict(ids, event="progress", t=3.0, epoch=2, step=5, steps=10, loss=0.5, images_per_s=130.0),
    ]
    for e in evs:
        time.sleep(0.3)
        send(c, e)
    time.sleep(0.3)
    with lock:
        state["job%d" % job] = "done" if job == 1 else "failed"
        if job == 1:
            send(c, dict(ids, event="done", t=4.0, val_accuracy=0.9, best_epoch=2))
            send(c, dict(ids, event="trial_state", state="completed", attempt=0, exit_code=0,
                         error=None))
            send(c, dict(ids, event="test", test_accuracy=0.88))
        else:
            send(c, dict(ids, event="error", t=4.0, code=5, message="loss is not finite"))
            send(c, dict(ids, event="trial_state", state="failed", attempt=0, exit_code=5,
                         error="diverged"))
        send(c, {"event": "end", "job": job, "state": state["job%d" % job],
                 "best": {"trial": 12, "number": 1, "value": 0.9}})

def serve(c):
    try:
        serve_lines(c)
    except OSError:
        pass  # the client went away first: normal for watch

def serve_lines(c):
    buf = b""
    with c:
        while True:
            data = c.recv(65536)
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                with open(log_path, "a") as f:
                    f.write(line.decode() + "\n")
                try:
                    req = json.loads(line)
                except ValueError:
                    send(c, {"ok": False, "error": {"code": "bad_json", "message": "bad json"}})
                    continue
                if req.get("op") == "watch" and req.get("job") in (1, 2, 3):
                    # The connection stays open after "end", and keeps answering.
                    send(c, {"ok": True, "job": req["job"], "state": "running", "watching": True})
                    if req["job"] == 3:
                        watch_late(c)
                    else:
                        threading.Thread(target=watch, args=(c, req["job"]), daemon=True).start()
                    continue
                if req.get("op") == "trial" and req.get("id") == 99:
                    c.sendall(b"this is not json\n")
                    continue
                with lock:  # the reply describes what was sent before it
                    send(c, reply(req))
                if req.get("op") == "shutdown":
                    os._exit(0)

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sock_path)
s.listen(16)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF

python3 "$T/fake.py" "$SOCK" "$REQLOG" &
FAKE=$!
at_exit "kill $FAKE 2>/dev/null; wait $FAKE 2>/dev/null"
wait_for 10 test -S "$SOCK" || { not_ok "fake daemon started"; done_testing; }

ctl() { "$CTL" --socket "$SOCK" "$@"; }

# --- ping, --json, exit codes
out=$(ctl ping); rc=$?
is "ping exits 0" "$rc" 0
like "ping says the daemon runs" "$out" '^sweepd is running, version 0\.1, pid [0-9]+, up 1m15s$'
out=$(ctl --json ping)
like "--json prints the raw reply" "$out" '^\{"ok": true, "pong": true, "version": "0\.1", "pid": [0-9]+, "uptime": 75\.2\}$'
is "ping request is one JSON line" "$(tail -n1 "$REQLOG")" '{"op":"ping"}'

# --- usage errors: exit 2, nothing sent
n_before=$(wc -l <"$REQLOG")
ctl frobnicate 2>"$T/err"; is "unknown command exits 2" $? 2
like "unknown command named" "$(cat "$T/err")" "unknown command 'frobnicate'"
ctl cancel abc 2>"$T/err"; is "non-numeric job exits 2" $? 2
like "bad job id named" "$(cat "$T/err")" 'JOB: expected an integer >= 1, got "abc"'
ctl list --json 2>"$T/err"; is "global option after command exits 2" $? 2
like "global option placement explained" "$(cat "$T/err")" "put it before the command"
out=$("$CTL" --help); is "--help exits 0" $? 0
like "--help lists watch" "$out" 'watch JOB'

# --- submit: syntax errors caught locally with file:line:column
printf '{\n  "name": "x",\n  "space": {"lr": [0.1,]}\n}\n' >"$T/bad.json"
ctl submit "$T/bad.json" 2>"$T/err"; is "submit of broken JSON exits 2" $? 2
like "syntax error names file:line:column" "$(cat "$T/err")" "bad.json:3:[0-9]+: "
ctl submit "$T/missing.json" 2>"$T/err"; is "submit of a missing file exits 2" $? 2
like "missing file named" "$(cat "$T/err")" "cannot read .*missing.json: No such file"
echo '[1,2]' >"$T/arr.json"
ctl submit "$T/arr.json" 2>"$T/err"; is "submit of a non-object exits 2" $? 2
is "nothing was sent for local errors" "$(wc -l <"$REQLOG")" "$n_before"

printf '{"name":"demo","space":{"lr":[0.1,0.01]}}' >"$T/job.json"
out=$(ctl submit "$T/job.json"); rc=$?
is "submit exits 0" "$rc" 0
is "submit output" "$out" "submitted job 1 (demo): 2 trials, seed 42
follow it with: sweepctl watch 1"
is "submit sends the job as written" "$(tail -n1 "$REQLOG")" '{"op":"submit","job":{"name":"demo","space":{"lr":[0.1,0.01]}}}'
printf '{"name":"demo",\n "space":{"lr":[0.1, 1e-3]}}\n' >"$T/job3.json"
ctl submit "$T/job3.json" >/dev/null
is "submit keeps numbers, joins lines" "$(tail -n1 "$REQLOG")" '{"op":"submit","job":{"name":"demo",  "space":{"lr":[0.1, 1e-3]}} }'
printf '{"name":"demo","space":{"lr":"bad"}}' >"$T/job2.json"
ctl submit "$T/job2.json" 2>"$T/err"; is "refused job exits 1" $? 1
is "refusal printed with code and message" "$(cat "$T/err")" 'sweepctl: invalid_job: space.lr: expected a list, got "bad"'

# --- tables
out=$(ctl best 1 -n 1)
is "best -n sends the limit" "$(tail -n1 "$REQLOG")" '{"op":"best","job":1,"limit":1}'
is "best -n 1 shows all parameters of the one row" "$out" "rank  trial  id      lr  batch  epochs  freeze  val_accuracy
----  -----  --  ------  -----  ------  ------  ------------
   1      0  11  0.1000     32       2  layer3        0.8000"
out=$(ctl list)
is "list sends a daemon-wide status" "$(tail -n1 "$REQLOG")" '{"op":"status"}'
is "list table" "$out" "id  name  state    trials  running    best  submitted
--  ----  -------  ------  -------  ------  -------------------
 1  demo  running     1/2        1  0.8000  2026-11-28 10:00:00"
out=$(ctl status 1)
like "status shows the job" "$out" 'name +demo1'
like "status shows trials with varying params" "$out" 'trial  id  state +lr  freeze  val_accuracy'
like "status shows a running trial" "$out" '1  12  running +0\.0100  layer2 +-'
out=$(ctl trial 11)
like "trial shows params" "$out" 'freeze +layer3'
like "trial shows epochs" "$out" '2 +0\.6000 .*0\.8000 .*30s'
ctl trial 12 2>"$T/err"; is "unknown trial exits 1" $? 1
is "unknown trial message" "$(cat "$T/err")" "sweepctl: not_found: no trial 12"
ctl trial 99 2>"$T/err"; is "non-JSON reply exits 3" $? 3
like "non-JSON reply explained" "$(cat "$T/err")" "not JSON"
out=$(ctl cancel 1); is "cancel exits 0" $? 0
is "cancel output" "$out" "job 1 cancelled: 0 queued trials dropped, 1 running trials stopping"
ctl status 7 2>"$T/err"; is "status of an unknown job exits 1" $? 1

# --- watch on a pipe: one line per event of interest, exit 0 when done
# The fake keeps the connection open 30 s after "end": watch must not wait for it.
out=$(timeout 20 "$CTL" --socket "$SOCK" watch 1); rc=$?
is "watch exits 0 when the job is done, without waiting for the close" "$rc" 0
like "watch prints epoch lines" "$out" '^trial 12 epoch 1/2: train_loss 0\.8000 val_loss 0\.7000 val_accuracy 0\.7500 \(31s\)$'
is "watch prints each trial's end once" "$(printf '%s\n' "$out" | grep -c 'trial 12 completed')" 1
like "watch prints the test accuracy" "$out" 'trial 12 test_accuracy 0\.8800'
like "watch prints trial completion with progress" "$out" 'trial 12 completed: val_accuracy 0\.9000  \[2/2 done, best 0\.9000 \(trial 12\)'
like "watch prints the job's end" "$out" 'job 1 done: 2 completed, 0 failed'
like "watch names the best trial" "$out" 'best: trial 12 val_accuracy 0\.9000 test_accuracy 0\.8800  lr=0\.0100 freeze=layer2'
if printf '%s' "$out" | grep -q $'\033'; then not_ok "no escape codes on a pipe"; else ok "no escape codes on a pipe"; fi
# --- watch attached late: events that come before its first status snapshot
# (which already shows their trial completed) are held until the snapshot is
# in, then printed in order: the trial's completion once, after its lines,
# and not counted among the trials that finished before the watch
out=$(timeout 20 "$CTL" --socket "$SOCK" watch 3); rc=$?
is "late watch exits 0" "$rc" 0
is "late watch prints trial 12's completion once" "$(printf '%s\n' "$out" | grep -c 'trial 12 completed')" 1
is "late watch prints trial 12's lines in order" \
    "$(printf '%s\n' "$out" | grep -oE '^(job 3 demo3: [0-9]+/2 trials already finished|trial 12 (started|epoch 2/2|completed.*\[[0-9]+/2 done))')" \
    "job 3 demo3: 1/2 trials already finished
trial 12 started
trial 12 epoch 2/2
trial 12 completed: val_accuracy 0.9000  [2/2 done"
ctl watch 2 >"$T/w2" 2>&1; is "watch exits 1 when the job failed" $? 1
like "worker error reported" "$(cat "$T/w2")" 'trial 12 error: loss is not finite'
like "failed trial reported" "$(cat "$T/w2")" 'trial 12 failed: diverged  \[2/2 done'
like "failed job reported" "$(cat "$T/w2")" 'job 2 failed: 1 completed, 1 failed'

ctl watch 7 2>"$T/err"; is "watch of an unknown job exits 1" $? 1

# --- watch on a terminal: redrawn display with bar, running trial, best
# (job 1 is done on this fake now, so a fresh one serves the live run)
kill $FAKE 2>/dev/null; wait $FAKE 2>/dev/null
rm -f "$SOCK"
python3 "$T/fake.py" "$SOCK" "$REQLOG" &
FAKE=$!
at_exit "kill $FAKE 2>/dev/null"
wait_for 10 test -S "$SOCK"
script -qec "'$CTL' --socket '$SOCK' watch 1" /dev/null >"$T/tty" 2>&1
tty_out=$(cat "$T/tty")
like "tty watch redraws with ANSI" "$tty_out" $'\033\\[[0-9]+A'
like "tty watch shows the bar and counts" "$tty_out" '\[=+>? *\] 1/2 trials'
like "tty watch shows a running trial" "$tty_out" 'trial 12   epoch 2/2  step 5/10  loss 0\.5000  130 img/s'
like "tty watch shows an ETA from finished trials" "$tty_out" 'ETA [0-9]+[smh]'
like "tty watch shows the best" "$tty_out" 'best: trial 11 val_accuracy 0\.8000  failed: 0  lr=0\.1000 freeze=layer3'

# --- watch --json: the stream's lines exactly as sent
out=$(timeout 20 "$CTL" --socket "$SOCK" --json watch 1); rc=$?
is "watch --json exits 0" "$rc" 0
is "watch --json first line is the raw acknowledgement" "$(sed -n 1p <<<"$out")" \
    '{"ok": true, "job": 1, "state": "running", "watching": true}'
is "watch --json prints every line up to end" "$(wc -l <<<"$out")" 8
like "watch --json last line is the end event" "$(tail -n1 <<<"$out")" '^\{"event": "end", "job": 1, "state": "done"'

# --- shutdown, then unreachable: exit 3 with advice
out=$(ctl shutdown); is "shutdown exits 0" $? 0
like "shutdown explains" "$out" "shutting down"
wait $FAKE 2>/dev/null
ctl ping 2>"$T/err"; is "ping without a daemon exits 3" $? 3
like "unreachable message says what to do" "$(cat "$T/err")" "cannot reach sweepd at $SOCK: .*Is it running\? Start it with"
out=$(cd "$T" && SWEEPD_SOCKET= "$CTL" ping 2>&1); is "default socket without daemon exits 3" $? 3
is "default socket message" "$out" "sweepctl: cannot reach sweepd at ./var/sweepd.sock: No such file or directory. Is it running? Start it with: build/sweepd --state-dir var. That is the default socket; use another with --socket PATH or SWEEPD_SOCKET=PATH"
out=$(SWEEPD_SOCKET=$T/env.sock "$CTL" ping 2>&1)
like "SWEEPD_SOCKET is used" "$out" "at $T/env.sock"
like "the message says the socket came from SWEEPD_SOCKET" "$out" 'That socket came from \$SWEEPD_SOCKET; use another with --socket PATH or SWEEPD_SOCKET=PATH$'
like "and from --socket" "$(cat "$T/err")" 'That socket came from --socket; use another with --socket PATH or SWEEPD_SOCKET=PATH$'

done_testing
