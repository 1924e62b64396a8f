# Helpers for the daemon_*.sh integration tests (sourced after lib.sh; named
# .bash so tests/run-tests does not run it as a test). They start sweepd in
# the foreground on a private socket/db/state dir under $T with the scripted
# fake worker (tests/aux/fake_worker.c), and talk to it with a tiny Python
# client over the socket (no dependency on sweepctl).
PY=/usr/bin/python3
FAKE=$BUILD/tests/fake_worker
VAR=$T/var
SOCK=$VAR/sweepd.sock
DB=$VAR/sweepd.db
DLOG=$T/sweepd.log
DPID=
mkdir -p "$VAR"

cat >"$T/client.py" <<'PYEOF'
import json, socket, sys, time
def conn(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60)
    s.connect(path)
    return s
def lines(s):
    buf = b""
    while True:
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield line.decode()
        chunk = s.recv(65536)
        if not chunk:
            if buf:
                yield buf.decode()
            return
        buf += chunk
cmd, path = sys.argv[1], sys.argv[2]
if cmd == "req":            # req SOCK JSON -> reply line
    s = conn(path); s.sendall(sys.argv[3].encode() + b"\n")
    print(next(lines(s)))
elif cmd == "raw":          # raw SOCK FILE -> send file bytes, print N reply lines
    s = conn(path); s.sendall(open(sys.argv[3], "rb").read())
    it = lines(s)
    for _ in range(int(sys.argv[4])): print(next(it))
elif cmd == "get":          # get SOCK JSON EXPR -> eval(EXPR) on reply r
    s = conn(path); s.sendall(sys.argv[3].encode() + b"\n")
    r = json.loads(next(lines(s)))
    v = eval(sys.argv[4])
    print(json.dumps(v) if not isinstance(v, str) else v)
elif cmd == "watch":        # watch SOCK JOB -> every line until the "end" event
    s = conn(path); s.sendall(json.dumps({"op": "watch", "job": int(sys.argv[3])}).encode() + b"\n")
    for l in lines(s):
        print(l, flush=True)
        if json.loads(l).get("event") in ("end", "shutdown"): break
PYEOF

dc() { "$PY" "$T/client.py" "$1" "$SOCK" "${@:2}"; }
# jf JSON EXPR: evaluates EXPR on the parsed JSON r.
jf() { "$PY" -c 'import json,sys; r=json.loads(sys.argv[1]); v=eval(sys.argv[2]); print(json.dumps(v) if not isinstance(v,str) else v)' "$1" "$2"; }
ping_ok() { dc req '{"op":"ping"}' 2>/dev/null | grep -q '"ok":true'; }
# start_daemon [FLAGS...]: foreground sweepd with the fake worker; waits for ping.
start_daemon() {
    SWEEPD_WORKER=$FAKE "$BUILD/sweepd" --foreground --socket "$SOCK" --db "$DB" \
        --state-dir "$VAR" --log-level debug "$@" >>"$DLOG" 2>&1 &
    DPID=$!
    wait_for 10 ping_ok
}
stop_daemon() {
    [ -n "$DPID" ] || return 0
    kill -TERM "$DPID" 2>/dev/null
    local i
    for i in $(seq 1 300); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.05; done
    wait "$DPID" 2>/dev/null
    local rc=$?
    DPID=
    return $rc
}
at_exit 'if [ -n "$DPID" ]; then kill -KILL $DPID 2>/dev/null; fi; pkill_tree'
# pkill_tree: kills leftover fake workers of THIS test (their cwd is under $T).
pkill_tree() {
    local p
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/cwd" 2>/dev/null)" != "${p}" ] || continue
        case "$(readlink "$p/cwd" 2>/dev/null)" in "$VAR"/*) kill -KILL "${p#/proc/}" 2>/dev/null ;; esac
    done
}
sq() { sqlite3 -batch -noheader "$DB" "$@"; }
job_state() { sq "SELECT state FROM jobs WHERE id=$1"; }
job_ended() { case "$(job_state "$1")" in done|failed|cancelled) return 0 ;; esac; return 1; }
# mkdata DIR [FAKE_JSON]: a data dir (with a fake.json script) for jobs.
mkdata() { mkdir -p "$1"; printf '%s\n' "${2:-{\}}" >"$1/fake.json"; }
submit() { dc req "{\"op\":\"submit\",\"job\":$(printf "%s" "$1" | tr "\n" " ")}"; }
