#!/bin/bash
# Large replies stream (issue: a `status JOB` reply over max_write_queue got
# the connection dropped and sweepctl said the daemon was not running).
# A 10,000-trial job's status through sweepctl and a raw client, a
# 100,000-trial status read slowly while other clients are served, and a
# reply cut by the daemon side reported as such by sweepctl.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.bash"

CTL=$BUILD/sweepctl
# Trials wait at the gate $T/go (never opened): every trial stays queued or
# running, which is all status needs.
mkdata "$T/data" '{"default":{"sleep":0.01,"wait_file":"'"$T/go"'"}}'
start_daemon --workers 1
job() { # job N TRIALS
    submit '{"name":"large'"$1"'","data":{"train":"'"$T/data"'"},"model":{"weights":null},
      "strategy":"random","trials":'"$2"',"space":{"lr":{"log_uniform":[0.0001,0.1]},
      "batch_size":[8,16,32]},"max_parallel":1,"seed":'"$1"'}'
}
like "a 10,000-trial job is accepted" "$(job 1 10000)" '"ok":true,"job":1,"trials":10000'

# sweepctl --json status: the whole reply, as one JSON line.
"$CTL" --socket "$SOCK" --json status 1 >"$T/s1.json" 2>"$T/s1.err"
is "sweepctl status of a 10,000-trial job exits 0" "$?" "0"
is "its JSON lists all 10,000 trials in order" \
    "$("$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); t=r["trials"]
print(len(t), all(x["number"]==i for i,x in enumerate(t)), r["job"]["trials_total"])' "$T/s1.json")" \
    "10000 True 10000"
check "nothing on stderr" [ ! -s "$T/s1.err" ]
bytes=$(stat -c %s "$T/s1.json")
check "the reply is larger than max_write_queue would allow in one piece ($bytes bytes)" \
    [ "$bytes" -gt 1048576 ]
"$CTL" --socket "$SOCK" status 1 >"$T/s1.txt" 2>&1
is "the table form exits 0" "$?" "0"
is "it has a row per trial" "$(grep -cE '^ *[0-9]+ +[0-9]+ ' "$T/s1.txt")" "10000"

# The raw protocol: one line, the same trials as the database.
dc get '{"op":"status","job":1}' 'len(r["trials"]), r["trials"][9999]["id"]' >"$T/raw" 2>&1
is "a raw client gets one line with 10,000 trials" "$(cat "$T/raw")" \
    "[10000, $(sq "SELECT max(id) FROM trials WHERE job_id=1")]"

# 100,000 trials, read slowly: other clients are answered meanwhile, and the
# slow client still gets every row, from one snapshot.
like "a 100,000-trial job is accepted" "$(job 2 100000)" '"ok":true,"job":2,"trials":100000'
cat >"$T/slow.py" <<'PYEOF'
import json, socket, sys, threading, time
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
s.sendall(b'{"op":"status","job":2}\n')
pings, worst, stop = [0], [0.0], [False]
def pinger():
    while not stop[0]:
        p = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        p.connect(path)
        t0 = time.monotonic()
        p.sendall(b'{"op":"ping"}\n')
        assert b'"ok":true' in p.recv(4096)
        worst[0] = max(worst[0], time.monotonic() - t0)
        pings[0] += 1
        p.close()
        time.sleep(0.02)
th = threading.Thread(target=pinger)
th.start()
buf = b""
while not buf.endswith(b"\n"):
    chunk = s.recv(65536)
    if not chunk: break
    buf += chunk
    time.sleep(0.002)  # a slow reader
stop[0] = True
th.join()
r = json.loads(buf)
print(len(r["trials"]), len({t["id"] for t in r["trials"]}), pings[0] >= 5)
print("worst ping %.3f s over %d pings during the stream" % (worst[0], pings[0]), file=sys.stderr)
PYEOF
out=$("$PY" "$T/slow.py" "$SOCK" 2>"$T/slow.err")
is "a slowly read 100,000-trial status arrives whole, while pings are answered" "$out" \
    "100000 100000 True"
echo "# $(cat "$T/slow.err")"
check "the daemon still answers" ping_ok
unlike "no connection was dropped for its write queue" "$(grep 'not reading' "$DLOG")" .

# Held lines keep their order: status, status, ping, status, ping pipelined on
# one connection are answered in request order, each whole.
printf '%s\n' '{"op":"status","job":1}' '{"op":"status","job":1}' '{"op":"ping"}' \
    '{"op":"status","job":1}' '{"op":"ping"}' >"$T/pipe"
dc raw "$T/pipe" 5 >"$T/pipe.out"
is "pipelined replies come in request order" \
    "$("$PY" -c 'import json,sys
for l in open(sys.argv[1]):
    r=json.loads(l); print(len(r["trials"]) if "trials" in r else "pong" if r.get("ok") else "?")' "$T/pipe.out" | tr '\n' ' ')" \
    "10000 10000 pong 10000 pong "
stop_daemon

# A reply that breaks off: sweepctl says so (exit 1), not "not running".
cat >"$T/cut.py" <<'PYEOF'
import os, socket, sys
path = sys.argv[1]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path); srv.listen(1)
open(sys.argv[2], "w").close()
c, _ = srv.accept()
c.recv(65536)
c.sendall(b'{"ok":true,"job":{"id":1},"trials":[{"id":1},{"id"')
c.close()
PYEOF
"$PY" "$T/cut.py" "$T/cut.sock" "$T/cut.ready" &
wait_for 10 test -e "$T/cut.ready"
"$CTL" --socket "$T/cut.sock" status 1 >"$T/cut.out" 2>&1
is "a cut reply exits 1" "$?" "1"
like "and says the reply was cut" "$(cat "$T/cut.out")" \
    "closed the connection in the middle of its reply \(50 bytes received\)"
unlike "it does not claim the daemon is not running" "$(cat "$T/cut.out")" "Is it running"
wait
done_testing
