#!/bin/bash
# sweepd with the fake worker: protocol ops, grid/random expansion against
# hand-written expectations, determinism, error replies, single-instance
# checks, the test-set evaluation and a clean `shutdown`.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.bash"

"$BUILD/sweepd" --help >"$T/help" 2>&1
check "--help exits 0" [ $? -eq 0 ]
like "--help lists the flags" "$(cat "$T/help")" "--threads-per-worker"
"$BUILD/sweepd" --bogus >/dev/null 2>&1
is "unknown flag exits 2" "$?" "2"

# Trials wait for $T/go (opened once `watch` is attached, so it sees every event).
mkdata "$T/data" '{"default":{"sleep":0.02,"wait_file":"'"$T/go"'"},"test_accuracy":0.66}'
mkdir -p "$T/test"; echo '{"test_accuracy":0.66}' >"$T/test/fake.json"
start_daemon --workers 2
check "daemon answers ping" ping_ok
is "socket mode is 0660" "$(stat -c %a "$SOCK")" "660"

# Second daemon on the same socket, or on the same database, refuses.
SWEEPD_WORKER=$FAKE "$BUILD/sweepd" --foreground --socket "$SOCK" --db "$T/other.db" \
    --state-dir "$T/var2" >"$T/second.out" 2>&1
is "second daemon on a live socket exits 1" "$?" "1"
like "it says why" "$(cat "$T/second.out")" "already listening"
SWEEPD_WORKER=$FAKE "$BUILD/sweepd" --foreground --socket "$T/other.sock" --db "$DB" \
    --state-dir "$T/var2" >"$T/third.out" 2>&1
is "second daemon on the same database exits 1" "$?" "1"
like "it names the database and pid" "$(cat "$T/third.out")" "another sweepd \(pid $DPID\) is using database"

# Grid expansion: canonical key order (lr before batch_size), last key fastest.
JOB="{\"name\":\"grid\",\"data\":{\"train\":\"$T/data\",\"test\":\"$T/test\"},\"model\":{\"weights\":null,\"arch\":\"resnet18\"},
 \"strategy\":\"grid\",\"space\":{\"batch_size\":[16,32],\"lr\":[0.1,0.01,0.001],\"epochs\":[2]},
 \"fixed\":{\"optimizer\":\"adam\"},\"max_parallel\":2,\"seed\":7}"
r=$(submit "$JOB")
like "grid submit replies with job and trial count" "$r" '^\{"ok":true,"job":1,"trials":6,"seed":7'
got=$(sq "SELECT group_concat(number||':'||lr||'/'||batch_size, ' ') FROM (SELECT * FROM trials WHERE job_id=1 ORDER BY number)")
is "grid order" "$got" "0:0.1/16 1:0.1/32 2:0.01/16 3:0.01/32 4:0.001/16 5:0.001/32"
is "fixed keys reach every trial" "$(sq "SELECT count(*) FROM trials WHERE job_id=1 AND json_extract(params_json,'$.optimizer')='adam'")" "6"
is "defaults fill the rest" "$(sq "SELECT DISTINCT json_extract(params_json,'$.momentum') FROM trials WHERE job_id=1")" "0.9"
is "submitted_uid stored" "$(sq "SELECT submitted_uid FROM jobs WHERE id=1")" "$(id -u)"

# watch streams events until the job ends. The job's trials are held at the
# gate until the daemon has taken the watch request.
dc watch 1 >"$T/watch.out" &
WPID=$!
wait_for 20 grep -q "op watch" "$DLOG"
touch "$T/go"
wait_for 30 job_ended 1
wait $WPID
like "watch: first line acknowledges" "$(head -1 "$T/watch.out")" '"ok":true,"job":1'
like "watch: epoch events carry job/trial/number" "$(grep '"event":"epoch"' "$T/watch.out" | head -1)" '"job":1,"trial":[0-9]+,"number":[0-9]'
like "watch: trial state changes" "$(cat "$T/watch.out")" '"event":"trial_state".*"state":"completed"'
like "watch: final line is the end event" "$(tail -1 "$T/watch.out")" '^\{"event":"end","job":1,"state":"done","best":\{"trial":[0-9]+,"number":2,'
is "job done" "$(job_state 1)" "done"
is "all 6 trials completed" "$(sq "SELECT count(*) FROM trials WHERE job_id=1 AND state='completed'")" "6"
is "2 epochs of metrics per trial" "$(sq "SELECT count(*) FROM trial_metrics m JOIN trials t ON t.id=m.trial_id WHERE t.job_id=1")" "12"
is "test_accuracy stored on the best trial only" "$(sq "SELECT number||'='||test_accuracy FROM trials WHERE job_id=1 AND test_accuracy IS NOT NULL")" "2=0.66"
is "best_trials view ranks lr=0.01 first" "$(sq "SELECT lr FROM best_trials WHERE job_id=1 AND rank=1 ORDER BY number LIMIT 1")" "0.01"
is "worker stderr logged per trial" "$(grep -c 'fake_worker: trial' "$VAR/logs/trial-1.log")" "1"
check "trial spec written in out_dir" grep -q '"out_dir":"'"$VAR"'/trials/1"' "$VAR/trials/1/trial.json"
like "trial spec: job, seed, threads per worker, shared cache" "$(cat "$VAR/trials/1/trial.json")" '^\{"trial":1,"job":1,"seed":[0-9]+,.*"cache_dir":"'"$VAR"'/cache","threads":1\}$'
check "worker events kept in out_dir/events.ndjson" grep -q '"event":"done"' "$VAR/trials/1/events.ndjson"

# best / trial / status replies.
is "best returns limit rows, best first" "$(dc get '{"op":"best","job":1,"limit":2}' '[t["number"] for t in r["trials"]]')" "[2, 3]"
is "best has rank and value" "$(dc get '{"op":"best","job":1,"limit":1}' '[r["trials"][0]["rank"], r["objective"]["metric"]]')" '[1, "val_accuracy"]'
is "trial has metrics per epoch" "$(dc get '{"op":"trial","id":3}' '[m["epoch"] for m in r["trial"]["metrics"]]')" "[1, 2]"
is "status job has per-trial rows" "$(dc get '{"op":"status","job":1}' '[len(r["trials"]), r["job"]["counts"]["completed"], r["job"]["state"]]')" '[6, 6, "done"]'
is "status lists jobs and daemon info" "$(dc get '{"op":"status"}' '[len(r["jobs"]), r["daemon"]["workers"]]')" "[1, 2]"

# Random: same spec + seed -> same trials and seeds; other seed differs.
RJ='"data":{"train":"'$T/data'"},"model":{"weights":null},"strategy":"random","trials":5,
 "space":{"lr":{"log_uniform":[0.0001,0.1]},"batch_size":[16,32,64],"dropout":{"uniform":[0,0.5]},"epochs":{"int_uniform":[1,3]}},"max_parallel":1'
submit "{\"name\":\"r1\",$RJ,\"seed\":99}" >/dev/null
submit "{\"name\":\"r2\",$RJ,\"seed\":99}" >/dev/null
submit "{\"name\":\"r3\",$RJ,\"seed\":100}" >/dev/null
dc req '{"op":"cancel","job":2}' >/dev/null; dc req '{"op":"cancel","job":3}' >/dev/null; dc req '{"op":"cancel","job":4}' >/dev/null
P2=$(sq "SELECT group_concat(params_json||seed,'|') FROM (SELECT * FROM trials WHERE job_id=2 ORDER BY number)")
P3=$(sq "SELECT group_concat(params_json||seed,'|') FROM (SELECT * FROM trials WHERE job_id=3 ORDER BY number)")
P4=$(sq "SELECT group_concat(params_json||seed,'|') FROM (SELECT * FROM trials WHERE job_id=4 ORDER BY number)")
is "random: same spec and seed give the same trials" "$P2" "$P3"
check "random: another seed gives other trials" [ "$P2" != "$P4" ]
is "random: values inside their ranges" "$(sq "SELECT count(*) FROM trials WHERE job_id=2 AND lr>=0.0001 AND lr<0.1 AND dropout>=0 AND dropout<0.5 AND epochs BETWEEN 1 AND 3 AND batch_size IN (16,32,64)")" "5"
is "random: distinct seeds per trial" "$(sq "SELECT count(DISTINCT seed) FROM trials WHERE job_id=2")" "5"

# Errors: each names the key path; nothing stored.
n_before=$(sq "SELECT count(*) FROM jobs")
e() { dc get "{\"op\":\"submit\",\"job\":$1}" 'r["error"]["code"]+": "+r["error"]["message"]'; }
like "unknown key named" "$(e "{\"data\":{\"train\":\"$T/data\"},\"model\":{\"weights\":null},\"space\":{\"lr\":[0.1]},\"fixd\":{}}")" '^invalid_job: fixd'
like "bad list value named with index" "$(e "{\"data\":{\"train\":\"$T/data\"},\"model\":{\"weights\":null},\"space\":{\"lr\":[0.1,0.01,\"x\"]}}")" '^invalid_job: space\.lr\[2\]'
like "unknown searched key" "$(e "{\"data\":{\"train\":\"$T/data\"},\"model\":{\"weights\":null},\"space\":{\"lrate\":[0.1]}}")" '^invalid_job: space\.lrate: unknown key'
like "missing data dir" "$(e "{\"data\":{\"train\":\"$T/nope\"},\"model\":{\"weights\":null},\"space\":{\"lr\":[0.1]}}")" '^invalid_job: data\.train: cannot read .*nope'
like "missing weights file" "$(e "{\"data\":{\"train\":\"$T/data\"},\"model\":{\"weights\":\"$T/w.safetensors\"},\"space\":{\"lr\":[0.1]}}")" '^invalid_job: model\.weights: cannot read'
BIG='"lr":[1,2,3,4,5,6,7,8,9,10],"batch_size":[1,2,3,4,5,6,7,8,9,10],"epochs":[1,2,3,4,5,6,7,8,9,10],"dropout":[0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9],"momentum":[0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9],"weight_decay":[0,1]'
like "grid over the limit refused" "$(e "{\"data\":{\"train\":\"$T/data\"},\"model\":{\"weights\":null},\"space\":{$BIG}}")" '^invalid_job: space: grid has 200000 points, more than the limit of 100000; use strategy random$'
like "distribution in a grid refused" "$(e "{\"data\":{\"train\":\"$T/data\"},\"model\":{\"weights\":null},\"space\":{\"lr\":{\"uniform\":[0,1]}}}")" '^invalid_job: space\.lr: strategy grid needs a list'
like "random without trials" "$(e "{\"data\":{\"train\":\"$T/data\"},\"model\":{\"weights\":null},\"strategy\":\"random\",\"space\":{\"lr\":[0.1]}}")" '^invalid_job: trials:'
like "warmup >= epochs refused" "$(e "{\"data\":{\"train\":\"$T/data\"},\"model\":{\"weights\":null},\"space\":{\"epochs\":[1,2]},\"fixed\":{\"warmup_epochs\":1}}")" '^invalid_job: space\.warmup_epochs: must be less than epochs'
like "unknown arch refused, naming the choices" "$(e "{\"data\":{\"train\":\"$T/data\"},\"model\":{\"weights\":null,\"arch\":\"alexnet\"}}")" '^invalid_job: model\.arch: expected one of resnet18'
is "refused jobs store nothing" "$(sq "SELECT count(*) FROM jobs")" "$n_before"

# Protocol errors; the connection survives each.
printf 'not json\n{"op":"nope"}\n[1]\n{"op":"trial"}\n{"op":"trial","id":999}\n{"op":"cancel","job":1}\n{"op":"status","jbo":1}\n{"op":"ping"}\n' >"$T/reqs"
dc raw "$T/reqs" 8 >"$T/replies"
codes=$("$PY" -c 'import json,sys; print(" ".join(json.loads(l)["error"]["code"] if not json.loads(l)["ok"] else "ok" for l in open(sys.argv[1])))' "$T/replies")
is "error codes in order, connection survives" "$codes" "invalid_json unknown_op invalid_request invalid_request not_found invalid_state invalid_request ok"
like "misspelt request key named" "$(sed -n 7p "$T/replies")" '"message":"jbo: unknown key; did you mean job\? \(op status takes: op, job\)"'
like "unknown op named" "$(sed -n 2p "$T/replies")" 'unknown op \\"nope\\"'

"$PY" -c 'import sys; sys.stdout.write("{\"op\":\"ping\",\"pad\":\"" + "x"*(1<<20) + "\"}\n{\"op\":\"ping\"}\n")' >"$T/big"
dc raw "$T/big" 2 >"$T/big.out"
like "1 MiB+ line refused" "$(head -1 "$T/big.out")" '"code":"line_too_long"'
like "next line on the same connection answered" "$(tail -1 "$T/big.out")" '"pong":true'
# A client that never reads: the daemon drops it and stays responsive.
"$PY" - "$SOCK" <<'PYEOF' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.setblocking(False)
req = b'{"op":"status","job":1}\n' * 2000
sent = 0
t = time.time()
while time.time() - t < 5:
    try:
        sent += s.send(req[sent % len(req):])
    except BlockingIOError:
        time.sleep(0.01)
    except OSError:
        break
PYEOF
NRPID=$!
wait $NRPID
check "daemon alive after a non-reading client" ping_ok
like "non-reading client dropped" "$(cat "$DLOG")" "not reading its replies"
rss=$(awk '/VmRSS/{print $2}' /proc/$DPID/status)
# (not measured under ASan, whose quarantine keeps freed memory resident)
if ! grep -q __asan_init "$BUILD/sweepd" 2>/dev/null; then
    check "daemon RSS bounded after the flood ($rss kB; write queue capped at 4 MiB)" [ "$rss" -lt 65536 ]
fi

# shutdown op: reply, then exit 0; stale socket replaced on the next start.
like "shutdown acknowledged" "$(dc req '{"op":"shutdown"}')" '"shutting_down":true'
wait $DPID
is "daemon exits 0 after shutdown" "$?" "0"
DPID=
check "socket removed" [ ! -e "$SOCK" ]
"$PY" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$SOCK"
start_daemon --workers 2
check "stale socket replaced on start" ping_ok
is "finished jobs survive a restart" "$(dc get '{"op":"status","job":1}' 'r["job"]["state"]')" "done"
stop_daemon
is "SIGTERM exits 0" "$?" "0"
done_testing
