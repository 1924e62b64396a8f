#!/bin/bash
# The fault campaign: sweepd is SIGKILLed at 27 chosen points of a job's life
# (submit, trial start, epochs, checkpoints, done, end-of-job evaluation,
# shutdown, a locked database, restart recovery, watch, cancel; at two of
# them the restarted daemon is killed again) and a worker at 2 more, one job
# per point; sweepd is restarted on the same socket, database and state
# directory. After each kill the job runs to its
# end and one TAP check, named after the point, holds when: the job ended in
# the expected state; it has exactly its trials (count, numbers 0..N-1 once
# each), all completed; each trial has exactly the epoch rows 1..E; each
# trial ran to its end once (its `completions` file) where no worker was
# killed; the test accuracy is stored on exactly one trial, and evaluations
# ran no more often than the point allows; no trial row keeps a pid; no
# worker process is left; PRAGMA integrity_check says ok.
#
# Every kill is synchronised on an observed state, never on a sleep: a line
# of the daemon's log, a row of the database (read-only), the database's
# write lock, a line in a trial's events file, a reply, or a kill point of
# the fake worker (tests/aux/fake_worker.c "pause_at": the worker stops at
# the point, writes GATE.at.<pid>, and waits for the file GATE, which the
# test creates after the restart). trigger.py below waits for the condition
# and sends the signal itself, so the kill lands within a millisecond of it.
#
# The first three points submit a 20,000-trial job (killed while it is
# validated, inside its insert transaction, right after its commit): stored
# whole or not at all; it is cancelled after the restart, and the check is
# on its trials instead (all 20,000 once, none left queued or running).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/reliability_lib.bash"

if [ ! -x "$BUILD/tests/fake_worker" ]; then
    not_ok "fake worker missing in $BUILD/tests (make test-bins)"
    done_testing
fi
# bash reports each SIGKILLed daemon ("line N: PID Killed sweepd ..."): those
# notices are the campaign's intent, not errors, and are left out of stderr.
exec 2> >(grep --line-buffered -vE ': line [0-9]+: +[0-9]+ Killed +' >&2)
export SWEEPD_WORKER=$BUILD/tests/fake_worker
REL_LOG_LEVEL=debug
LOG=$T/sweepd.out
printf 'kill_grace = 2\ntick = 0.05\n' >"$T/sweepd.conf"
DARGS=(--workers 2 --config "$T/sweepd.conf")
mkdir -p "$T/g" "$T/p"

# ---- trigger.py: waits for a condition, then signals a process ------------
cat >"$T/trigger.py" <<'EOF'
"""trigger.py SIGNAL PID KIND ARGS... [--timeout S]
Waits until the condition KIND holds, then sends SIGNAL (kill, stop, term,
none) to PID ("log:FILE:OFFSET" = the pid of the last sweepd started in FILE
after byte OFFSET). Exit 0 when it fired, 1 on timeout (nothing sent).
  log FILE OFFSET RE...   lines matching each RE, in this order, after OFFSET
  file PATH [RE [N]]      PATH exists (with RE: has N lines matching, default 1)
  glob PATTERN N          N files match PATTERN
  sql DB QUERY            QUERY's first value is true (read-only connection)
  locked DB               another connection holds the database's write lock
  rpc SOCK LINE           the reply to LINE has arrived (printed)
  now                     at once
Helpers, not triggers:
  trigger.py watch SOCK JOB OUT   `watch` JOB, every line to OUT until EOF
  trigger.py locker DB GATE       BEGIN IMMEDIATE, GATE.locked, hold until GATE
  trigger.py send SOCK FILE       sends FILE's line, waits for a reply or EOF"""
import glob, os, re, signal, sqlite3, socket, sys, time

SIGS = {"kill": signal.SIGKILL, "stop": signal.SIGSTOP, "term": signal.SIGTERM, "none": None}


def last_daemon_pid(path, offset):
    pid = None
    with open(path, "rb") as f:
        f.seek(offset)
        for ln in f:
            m = re.search(rb"sweepd \S+ starting: pid (\d+)", ln)
            if m:
                pid = int(m.group(1))
    return pid


def log_cond(path, offset, regexes):
    pats = [re.compile(r.encode()) for r in regexes]
    state = {"pos": offset, "i": 0, "rest": b""}

    def cond():
        with open(path, "rb") as f:
            f.seek(state["pos"])
            data = f.read()
        state["pos"] += len(data)
        lines = (state["rest"] + data).split(b"\n")
        state["rest"] = lines.pop()
        for ln in lines:
            if state["i"] < len(pats) and pats[state["i"]].search(ln):
                state["i"] += 1
        return state["i"] == len(pats)
    return cond


def file_cond(path, regex=None, n=1):
    pat = re.compile(regex.encode()) if regex else None

    def cond():
        if not os.path.exists(path):
            return False
        if pat is None:
            return True
        with open(path, "rb") as f:
            return sum(1 for ln in f if pat.search(ln)) >= n
    return cond


def sql_cond(db, query):
    con = [None]

    def cond():
        try:
            if con[0] is None:
                con[0] = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=1)
            row = con[0].execute(query).fetchone()
            return bool(row and row[0])
        except sqlite3.Error:
            con[0] = None
            return False
    return cond


def locked_cond(db):
    con = sqlite3.connect(db, timeout=0, isolation_level=None)

    def cond():
        try:
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            return "locked" in str(e) or "busy" in str(e)
        con.execute("ROLLBACK")
        return False
    return cond


def watch(sock, job, out):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    s.sendall(b'{"op":"watch","job":%d}\n' % int(job))
    with open(out, "ab", buffering=0) as f:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                f.write(b"EOF\n")
                return 0
            f.write(chunk)


def locker(db, gate):
    con = sqlite3.connect(db, timeout=10, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    open(gate + ".locked", "w").close()
    end = time.monotonic() + 60
    while not os.path.exists(gate) and time.monotonic() < end:
        time.sleep(0.01)
    con.execute("ROLLBACK")
    return 0


def send(sock, path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60)
    s.connect(sock)
    with open(path, "rb") as f:
        s.sendall(f.read())
    try:
        s.recv(4096)
    except OSError:
        pass
    return 0


def main(argv):
    if argv[0] == "watch":
        return watch(*argv[1:4])
    if argv[0] == "locker":
        return locker(*argv[1:3])
    if argv[0] == "send":
        return send(*argv[1:3])
    timeout = 30.0
    if "--timeout" in argv:
        i = argv.index("--timeout")
        timeout = float(argv[i + 1])
        del argv[i:i + 2]
    sig, pid, kind, args = SIGS[argv[0]], argv[1], argv[2], argv[3:]
    end = time.monotonic() + timeout
    conn = None
    if kind == "log":
        cond = log_cond(args[0], int(args[1]), args[2:])
    elif kind == "file":
        cond = file_cond(args[0], *(args[1:2]), *(int(a) for a in args[2:3]))
    elif kind == "glob":
        cond = lambda: len(glob.glob(args[0])) >= int(args[1])
    elif kind == "sql":
        cond = sql_cond(args[0], args[1])
    elif kind == "now":
        cond = lambda: True
    elif kind == "locked":
        cond = locked_cond(args[0])
    elif kind == "rpc":
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(timeout)
        conn.connect(args[0])
        conn.sendall(args[1].encode() + b"\n")
        buf = b""
        while b"\n" not in buf:
            chunk = conn.recv(65536)
            if not chunk:
                break
            buf += chunk
        cond = lambda: b"\n" in buf
    else:
        sys.stderr.write("trigger.py: unknown condition %s\n" % kind)
        return 2
    while not cond():
        if time.monotonic() > end:
            sys.stderr.write("trigger.py: %s %s: not met within %g s\n" % (kind, args, timeout))
            return 1
        time.sleep(0.001)
    if sig is not None:
        if pid.startswith("log:"):
            _, path, off = pid.split(":")
            pid = last_daemon_pid(path, int(off))
        os.kill(int(pid), sig)
    if conn is not None:
        sys.stdout.write(buf.split(b"\n", 1)[0].decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
EOF
trig() { "$REL_PY" "$T/trigger.py" "$@"; }
logpos() { stat -c %s "$LOG" 2>/dev/null || echo 0; }

# ---- a kill point -----------------------------------------------------------
# begin_point NAME RULE [EVAL [BOTH]]: the point's data (train and test
# folders with the fake worker's script) and gate $G. RULE is merged into the
# rule of the trial with lr 0.1 (number 0), or into the default (0.03 s per
# epoch) with "all:" before it; BOTH into the rules of trials 0 and 1 (lr 0.1
# and 0.01); EVAL into the test folder's script. "@G" stands for the gate.
begin_point() {
    P=$1
    G=$T/g/$P
    TR=$T/p/$P/train
    TE=$T/p/$P/test
    FIRED=0
    J=""
    local rule=${2//@G/$G} ev=${3:-} both=${4:-} dflt='"sleep":0.03' r0 r1
    mkdir -p "$TR" "$TE"
    if [[ $rule == all:* ]]; then
        rule=${rule#all:}
        [[ $rule == *'"sleep"'* ]] && dflt=$rule || dflt+=,$rule
        rule=""
    fi
    r0=$rule${rule:+${both:+,}}$both
    r1=$both
    printf '{"default":{%s},"rules":[{"match":{"lr":0.1}%s},{"match":{"lr":0.01}%s}]}\n' \
        "$dflt" "${r0:+,$r0}" "${r1:+,$r1}" >"$TR/fake.json"
    printf '{"test_accuracy":0.7%s}\n' "${ev:+,${ev//@G/$G}}" >"$TE/fake.json"
    POS=$(logpos)
}
# job_json: the point's job: 3 trials (lr 0.1, 0.01, 0.001) x 3 epochs, 2 at a
# time, with a test set.
job_json() {
    printf '{"op":"submit","job":{"name":"%s","data":{"train":"%s","test":"%s"},' "$P" "$TR" "$TE"
    printf '"model":{"weights":null},"strategy":"grid","space":{"lr":[0.1,0.01,0.001]},'
    printf '"fixed":{"epochs":3},"max_parallel":2,"max_retries":5,"seed":7}}'
}
job_id_of() { sed -n 's/.*"job": *\([0-9]*\).*/\1/p' <<<"$1"; }
submit_point() {
    local r
    r=$(rel_rpc "$(job_json)")
    J=$(job_id_of "$r")
    [ -n "$J" ] || echo "# submit of $P failed: $r"
}
# trial_of N: the id of the point's trial number N.
trial_of() { rel_sql "SELECT id FROM trials WHERE job_id=${J:-0} AND number=$1"; }
# running_with_pid N: N trials of the job are running with their pid stored.
running_with_pid() {
    echo "SELECT count(*) >= $1 FROM trials WHERE job_id=${J:-0} AND state='running' AND pid IS NOT NULL"
}
# workers_up: the job's trials 0 and 1 run, their pids committed and their
# start events written (so the worker has its SIGTERM handler).
workers_up() {
    trig none 0 sql "$DB" "$(running_with_pid 2)" || return 1
    local n
    for n in 0 1; do
        trig none 0 file "$STATE/trials/$(trial_of $n)/events.ndjson" '"event":"start"' || return 1
    done
}
# down: SIGKILLs sweepd if it still runs and reaps it (quietly: bash would
# report the kill on stderr).
down() {
    [ -n "$DPID" ] && { kill -9 "$DPID"; wait "$DPID"; } 2>/dev/null
    DPID=""
}
# kill_at KIND ARGS...: SIGKILLs sweepd when the condition holds ($FIRED=1),
# else SIGKILLs it anyway once the trigger gives up (the point then fails).
kill_at() {
    if trig kill "$DPID" "$@"; then FIRED=1; else FIRED=0; fi
    down
}
restart() { rel_start_daemon "${DARGS[@]}"; }

# Worker processes left: any process whose working directory is a trial
# folder of this test (trial workers and evaluations run there).
strays() {
    local p c
    for p in /proc/[0-9]*; do
        c=$(readlink "$p/cwd" 2>/dev/null) || continue
        case $c in "$STATE"/trials/*) printf '%s ' "${p#/proc/}" ;; esac
    done
}

# finish_point WHAT [state=done] [completions=1|any] [evals=1|2|any]: restarts
# sweepd if it is down, opens the gate, waits for the job's end and checks it
# (see the top); one TAP line "SIGKILL WHAT".
finish_point() {
    local what=$1 want_state=done want_comp=1 want_evals=1 kv
    shift
    for kv in "$@"; do
        case $kv in
            state=*) want_state=${kv#state=} ;;
            completions=*) want_comp=${kv#completions=} ;;
            evals=*) want_evals=${kv#evals=} ;;
        esac
    done
    local bad=() restarted=1
    [ "$FIRED" = 1 ] || bad+=("the kill point was not reached")
    [ -n "$J" ] || bad+=("no job id")
    if [ -z "$DPID" ]; then restart || restarted=0; fi
    touch "$G"
    [ "$restarted" = 1 ] || bad+=("sweepd did not restart")
    rel_wait_job "${J:-0}" 60 || bad+=("job did not end within 60 s")
    local st trials epochs test evals comp pids integ left
    st=$(rel_job_state "${J:-0}")
    [ "$st" = "$want_state" ] || bad+=("job state '$st', want $want_state")
    trials=$(rel_sql "SELECT count(*), count(DISTINCT number), min(number), max(number),
        sum(state='completed') FROM trials WHERE job_id=${J:-0}")
    if [ "$want_state" = cancelled ]; then
        # Cancelled: every trial once, each completed or cancelled.
        local fin
        fin=$(rel_sql "SELECT count(*) FROM trials WHERE job_id=${J:-0} AND state IN ('completed','cancelled')")
        [ "${trials%|*}|$fin" = "3|3|0|2|3" ] ||
            bad+=("trials (count|distinct|min|max|final) ${trials%|*}|$fin, want 3|3|0|2|3")
        # Epoch rows: 1..E for completed trials, a gap-free 1..k for the rest.
        epochs=$(rel_sql "SELECT count(*) FROM trials t WHERE job_id=${J:-0} AND
            (SELECT count(*) FROM trial_metrics m WHERE m.trial_id=t.id) =
            coalesce((SELECT max(epoch) FROM trial_metrics m WHERE m.trial_id=t.id), 0) AND
            (t.state != 'completed' OR (SELECT group_concat(epoch) FROM (SELECT epoch FROM
            trial_metrics m WHERE m.trial_id=t.id ORDER BY epoch)) = '1,2,3')")
        [ "$epochs" = 3 ] || bad+=("trials with exactly their epoch rows: $epochs of 3")
        test=$(rel_sql "SELECT count(*) FROM trials WHERE job_id=${J:-0} AND test_accuracy IS NOT NULL")
        [ "$test" = 0 ] || bad+=("$test test accuracies stored for a cancelled job")
    else
        [ "$trials" = "3|3|0|2|3" ] ||
            bad+=("trials (count|distinct|min|max|completed) $trials, want 3|3|0|2|3")
        epochs=$(rel_sql "SELECT count(*) FROM trials t WHERE job_id=${J:-0} AND
            (SELECT group_concat(epoch) FROM (SELECT epoch FROM trial_metrics m
             WHERE m.trial_id=t.id ORDER BY epoch)) = '1,2,3'")
        [ "$epochs" = 3 ] || bad+=("trials with epoch rows exactly 1,2,3: $epochs of 3")
        test=$(rel_sql "SELECT count(*) || '|' || coalesce(max(test_accuracy), '') FROM trials
            WHERE job_id=${J:-0} AND test_accuracy IS NOT NULL")
        [ "$test" = "1|0.7" ] || bad+=("test accuracy (trials|value) '$test', want 1|0.7")
        evals=$(cat "$TE/evals" 2>/dev/null | wc -l)
        case $want_evals in
            any) [ "$evals" -ge 1 ] && [ "$evals" -le 2 ] || bad+=("$evals evaluations ran") ;;
            *) [ "$evals" = "$want_evals" ] || bad+=("$evals evaluations ran, want $want_evals") ;;
        esac
    fi
    if [ "$want_comp" = 1 ]; then
        local id n
        comp=""
        for id in $(rel_sql "SELECT id FROM trials WHERE job_id=${J:-0} AND state='completed'"); do
            n=$(cat "$STATE/trials/$id/completions" 2>/dev/null | wc -l)
            [ "$n" = 1 ] || comp+="trial $id ran to its end $n times; "
        done
        [ -z "$comp" ] || bad+=("$comp")
    fi
    pids=$(rel_sql "SELECT count(*) FROM trials WHERE job_id=${J:-0} AND pid IS NOT NULL")
    [ "$pids" = 0 ] || bad+=("$pids trial rows keep a pid")
    integ=$(rel_sql 'PRAGMA integrity_check')
    [ "$integ" = ok ] || bad+=("integrity_check: $integ")
    left=$(strays)
    [ -z "$left" ] || bad+=("worker processes left: $left")
    if [ ${#bad[@]} -eq 0 ]; then
        ok "SIGKILL $what: job $J $want_state, every trial and epoch row once"
    else
        not_ok "SIGKILL $what (job ${J:-?})"
        local b
        for b in "${bad[@]}"; do echo "#   $b"; done
        rel_sql "SELECT id, number, state, attempt, exit_code, coalesce(error,'') FROM trials
            WHERE job_id=${J:-0}" | sed 's/^/#   trial /'
        [ -z "$left" ] || kill -9 $left 2>/dev/null
    fi
}

restart || { not_ok "sweepd starts"; done_testing; }
ok "sweepd starts"

# ---- 1-3. submission of a 20,000-trial job -----------------------------------
mkdir -p "$T/big"
printf '{"default":{"sleep":0.02}}\n' >"$T/big/fake.json"
big_job() { # NAME: the submit request, in $T/NAME.req
    "$REL_PY" - "$1" "$T/big" >"$T/$1.req" <<'EOF'
import json, sys
print(json.dumps({"op": "submit", "job": {
    "name": sys.argv[1], "data": {"train": sys.argv[2]}, "model": {"weights": None},
    "strategy": "grid", "space": {"lr": [round(0.0001 * (i + 1), 6) for i in range(200)],
                                  "batch_size": list(range(1, 101))},
    "fixed": {"epochs": 1}, "max_parallel": 2, "seed": 3}}))
EOF
}
# big_point NAME WHAT STORED KIND ARGS...: submits the big job NAME, SIGKILLs
# sweepd when the condition holds, restarts, cancels what was stored and
# checks it: STORED (0 or 1) jobs named NAME, each with all 20,000 trials.
big_point() {
    local name=$1 what=$2 want=$3
    shift 3
    big_job "$name"
    POS=$(logpos)
    trig kill "$DPID" "$@" &
    local tp=$!
    "$REL_PY" "$T/trigger.py" send "$SOCK" "$T/$name.req" 2>/dev/null &
    local sp=$!
    if wait "$tp"; then FIRED=1; else FIRED=0; fi
    down
    wait "$sp"
    local bad=()
    [ "$FIRED" = 1 ] || bad+=("the kill point was not reached")
    restart || bad+=("sweepd did not restart")
    local ids id
    ids=$(rel_sql "SELECT id FROM jobs WHERE name='$name'")
    for id in $ids; do rel_rpc "{\"op\":\"cancel\",\"job\":$id}" >/dev/null; done
    for id in $ids; do rel_wait_job "$id" 60 || bad+=("job $id did not end"); done
    local got
    got=$(rel_sql "SELECT count(*), coalesce(sum(trials_total), 0) FROM jobs WHERE name='$name'")
    [ "$got" = "$want|$((want * 20000))" ] || bad+=("jobs|trials_total $got, want $want|$((want * 20000))")
    got=$(rel_sql "SELECT count(*), count(DISTINCT t.number),
        coalesce(sum(t.state IN ('completed','cancelled')), 0) FROM trials t JOIN jobs j
        ON j.id=t.job_id WHERE j.name='$name'")
    [ "$got" = "$((want * 20000))|$((want * 20000))|$((want * 20000))" ] ||
        bad+=("trials (count|distinct numbers|ended) $got, want $((want * 20000)) each")
    got=$(rel_sql 'PRAGMA integrity_check')
    [ "$got" = ok ] || bad+=("integrity_check: $got")
    local left
    left=$(strays)
    [ -z "$left" ] || bad+=("worker processes left: $left")
    if [ ${#bad[@]} -eq 0 ]; then
        ok "SIGKILL $what: $([ "$want" = 1 ] && echo "stored whole, all 20,000 trials once" || echo "not stored")"
    else
        not_ok "SIGKILL $what"
        local b
        for b in "${bad[@]}"; do echo "#   $b"; done
    fi
}
big_point big-validate "submit: while a 20,000-trial job is validated (log: op submit)" 0 \
    log "$LOG" "$(logpos)" 'connection [0-9]+: op submit'
big_point big-insert "submit: inside the job's insert transaction (write lock held)" 0 \
    locked "$DB"
big_point big-commit "submit: right after the job's insert commits (its row visible)" 1 \
    sql "$DB" "SELECT count(*) FROM jobs WHERE name='big-commit'"

# ---- 4-8. submit and start ------------------------------------------------
begin_point reply ''
r=$(trig kill "$DPID" rpc "$SOCK" "$(job_json)") && FIRED=1
J=$(job_id_of "$r")
down
finish_point "submit: right after the reply (the job's first workers starting)"

begin_point startlog ''
trig kill "$DPID" log "$LOG" "$POS" 'trial [0-9]+ \(job [0-9]+ #0\) queued -> running' &
tp=$!
r=$(rel_rpc "$(job_json)" 2>/dev/null)
J=$(job_id_of "$r")
wait "$tp" && FIRED=1
down
[ -n "$J" ] || J=$(rel_sql "SELECT id FROM jobs WHERE name='$P'")
finish_point "start: right after 'queued -> running' of the first trial is logged"

begin_point prestart '"pause_at":"before_start","pause_file":"@G"'
submit_point
trig none 0 glob "$G.at.*" 1
kill_at sql "$DB" "SELECT pid IS NOT NULL FROM trials WHERE id=$(trial_of 0)"
finish_point "start: worker spawned and its pid committed, before its start event"

begin_point started '"pause_at":"start","pause_file":"@G"'
submit_point
trig none 0 glob "$G.at.*" 1
kill_at sql "$DB" "SELECT pid IS NOT NULL FROM trials WHERE id=$(trial_of 0)"
finish_point "start: right after the worker's start event"

begin_point respawn 'all:"pause_at":"start","pause_file":"@G"'
submit_point
trig none 0 glob "$G.at.*" 2
kill_at sql "$DB" "$(running_with_pid 2)"
# The restarted daemon stops both workers (paused at their start event), and
# is killed again as it starts their successors.
POS=$(logpos)
trig kill "log:$LOG:$POS" log "$LOG" "$POS" 'recovery: [0-9]+ interrupted' \
    'trial [0-9]+: worker pid [0-9]+ started' &
tp=$!
REL_QUIET_START=1 restart
wait "$tp" || FIRED=0
down
finish_point "restart: the restarted daemon again, while it starts the requeued trials' workers"

# ---- 9-16. epochs, checkpoints, done --------------------------------------
begin_point burst '"progress":100,"pause_at":"progress","pause_epoch":2,"pause_step":50,"pause_file":"@G"'
submit_point
kill_at glob "$G.at.*" 1
finish_point "epoch: mid-epoch burst (after progress event 50 of 100 of epoch 2)"

begin_point epoch '"pause_at":"epoch","pause_epoch":2,"pause_file":"@G"'
submit_point
kill_at glob "$G.at.*" 1
finish_point "epoch: after epoch 2's event, before its checkpoint (epoch 2 runs again)"

begin_point epochrow '"pause_at":"epoch","pause_epoch":2,"pause_file":"@G"'
submit_point
trig none 0 glob "$G.at.*" 1
kill_at sql "$DB" "SELECT count(*) FROM trial_metrics WHERE trial_id=$(trial_of 0) AND epoch=2"
finish_point "epoch: epoch 2's row committed, its checkpoint not yet written"

begin_point unread '"sleep":0.3,"pause_at":"start","pause_file":"@G"'
submit_point
FIRED=0
if trig stop "$DPID" glob "$G.at.*" 1; then
    touch "$G"
    kill_at file "$STATE/trials/$(trial_of 0)/events.ndjson" '"event":"checkpoint"' 2
fi
down
finish_point "epoch: events of epochs 1-2 unread (sweepd SIGSTOPped while they were written)"

begin_point checkpoint '"pause_at":"checkpoint","pause_epoch":2,"pause_file":"@G"'
submit_point
kill_at glob "$G.at.*" 1
finish_point "checkpoint: right after epoch 2's checkpoint event"

begin_point doneev '"pause_at":"done","pause_file":"@G"'
submit_point
kill_at glob "$G.at.*" 1
finish_point "done: after the trial's done event, before the worker exits"

begin_point donerow '"pause_at":"done","pause_file":"@G"'
submit_point
kill_at sql "$DB" "SELECT best_epoch IS NOT NULL FROM trials WHERE id=$(trial_of 0)"
finish_point "done: its done event committed, before its exit is handled"

begin_point exited ''
submit_point
kill_at log "$LOG" "$POS" "trial [0-9]+ \\(job $J #0\\) running -> completed"
finish_point "done: right after the exit is handled ('running -> completed'; next trial starting)"

# ---- 17-21. the end-of-job test-set evaluation --------------------------------
begin_point evalstart '' '"eval_sleep":0.5'
submit_point
kill_at log "$LOG" "$POS" "job $J: evaluating trial"
finish_point "evaluation: right after 'evaluating trial' is logged"

begin_point evalrun '' '"eval_pause_at":"eval","eval_pause_file":"@G"'
submit_point
kill_at glob "$G.at.*" 1
finish_point "evaluation: while it runs (before it answers)"

begin_point evalresult '' '"eval_pause_at":"result","eval_pause_file":"@G"'
submit_point
kill_at glob "$G.at.*" 1
# (the answered evaluation is not stored: run again, its result stored once)
finish_point "evaluation: its result written, before its exit is handled" evals=2

begin_point evallog ''
submit_point
kill_at log "$LOG" "$POS" "job $J: trial [0-9]+ test_accuracy"
finish_point "evaluation: right after its test_accuracy is logged" evals=any

begin_point jobdone ''
submit_point
kill_at sql "$DB" "SELECT state='done' FROM jobs WHERE id=$J"
finish_point "evaluation: right after the job's end is committed (nothing runs again)"

# ---- 22-23. shutdown ----------------------------------------------------------
# (their workers hang in epoch 2 of their first start until SIGTERM)
HANG='"action":"hang","at_epoch":2,"fail_attempts":1'
begin_point sigterm 'all:"pause_at":"term","pause_file":"@G"' '' "$HANG"
submit_point
FIRED=0
if workers_up; then
    kill -TERM "$DPID"
    kill_at glob "$G.at.*" 2
fi
down
finish_point "shutdown: SIGTERM, then SIGKILL while both workers checkpoint"

begin_point shutop '"pause_at":"term","pause_file":"@G"' '' "$HANG"
submit_point
FIRED=0
if workers_up; then
    rel_rpc '{"op":"shutdown"}' >/dev/null
    kill_at sql "$DB" "SELECT count(*) FROM trials WHERE job_id=$J AND number=1 AND
        state='queued' AND exit_code=7"
fi
down
finish_point "shutdown: op shutdown, one worker stopped and requeued, the other checkpointing"

# ---- 24-25. a locked database, restart recovery -------------------------------------
begin_point locked 'all:"pause_at":"done","pause_file":"@G"'
submit_point
FIRED=0
# Trials 0 and 1 wait after their done event; the lock is taken; then they
# exit and trial 2 starts: none of it can be committed.
if trig none 0 glob "$G.at.*" 2; then
    "$REL_PY" "$T/trigger.py" locker "$DB" "$T/unlock" &
    LP=$!
    if trig none 0 file "$T/unlock.locked"; then
        POS=$(logpos)
        T2=$(trial_of 2)
        touch "$G"
        kill_at log "$LOG" "$POS" "trial $T2: worker pid [0-9]+ started"
    fi
    touch "$T/unlock"
    wait "$LP"
fi
down
finish_point "database lock: trials ended and the next worker started, none of it committed"

begin_point recovery 'all:"pause_at":"term","pause_file":"@G"' '' "$HANG"
submit_point
workers_up && kill_at now
# Both workers pause at the first SIGTERM (before their checkpoint): the
# restarted daemon waits for them in recovery, and is killed there.
POS=$(logpos)
trig kill "log:$LOG:$POS" glob "$G.at.*" 2 &
tp=$!
REL_QUIET_START=1 restart
wait "$tp" || FIRED=0
down
finish_point "restart recovery: the restarted daemon while it stops the previous one's workers"

# ---- 26. watch attached -------------------------------------------------------------
begin_point watch '"pause_at":"start","pause_file":"@G"'
submit_point
W=$T/watch.out
"$REL_PY" "$T/trigger.py" watch "$SOCK" "${J:-0}" "$W" &
WP=$!
FIRED=0
if trig none 0 file "$W" '"watching": *true'; then
    touch "$G"
    kill_at file "$W" '"event": *"epoch"'
fi
down
# (the watcher sees its connection end)
check "watch: the watcher's connection ends with the killed daemon" \
    trig none 0 file "$W" '^EOF$' --timeout 10
wait "$WP"
finish_point "watch: with a watch attached, after it received an epoch event"

# ---- 27. cancel ---------------------------------------------------------------------
begin_point cancel 'all:"pause_at":"term","pause_file":"@G"' '' "$HANG"
submit_point
FIRED=0
if workers_up; then
    rel_rpc "{\"op\":\"cancel\",\"job\":$J}" >/dev/null
    kill_at glob "$G.at.*" 2
fi
down
finish_point "cancel: cancel acknowledged, while the two running workers checkpoint" \
    state=cancelled completions=any

# ---- 28-29. a worker SIGKILLed --------------------------------------------------------
# (the daemon is not killed: the trial is retried, resuming from its
# checkpoint; a worker killed after "done" ran to its end twice)
# kill_paused_worker: submits the point's job, SIGKILLs the worker once it
# has paused at its gate (its pid is in the name of the GATE.at.<pid> file),
# then opens the gate.
kill_paused_worker() {
    submit_point
    if trig none 0 glob "$G.at.*" 1; then
        FIRED=1
        local f
        f=$(compgen -G "$G.at.*")
        kill -9 "${f##*.}"
    fi
    touch "$G"
}
begin_point wdone '"pause_at":"done","pause_file":"@G"'
kill_paused_worker
finish_point "worker (not sweepd): after its done event, before it exits" completions=any

begin_point wepoch '"pause_at":"epoch","pause_epoch":2,"pause_file":"@G"'
kill_paused_worker
finish_point "worker (not sweepd): after epoch 2's event, before its checkpoint"

# ---- the end -------------------------------------------------------------------------
check "sweepd exits 0 on shutdown" rel_stop_daemon
is "integrity_check at the end" "$(rel_sql 'PRAGMA integrity_check')" ok
is "no worker process left at the end" "$(strays)" ""
done_testing
