#!/bin/bash
# Daemon benchmark with the fake worker (no training):
#  1. a 10,000-trial job of no-op trials (start + epoch + done, exit 0) with
#     16 slots: trials/s end to end (submit to job done; target >= 200/s),
#     against a peer: the same 10,000 no-op workers started by xargs -P 16;
#  2. daemon RSS after 1,000 and after 10,000 finished trials (within 10%);
#  3. `status` reply latency (p50/p99; target p99 < 5 ms) while two workers
#     stream ~200 progress events/s each, against `ping` as the peer.
# Prints figures; thresholds are reported, not enforced (shared machine).
set -u
ROOT=${SWEEP_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${SWEEP_BUILD:-$ROOT/build}
T=$(mktemp -d "${TMPDIR:-/tmp}/sweepbench.XXXXXX")
N=${BENCH_TRIALS:-10000}
PY=/usr/bin/python3
FAKE=$BUILD/tests/fake_worker
DPID=
cleanup() { [ -n "$DPID" ] && kill -KILL "$DPID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
for b in "$BUILD/sweepd" "$FAKE"; do
    [ -x "$b" ] || { echo "bench_daemon: $b not built (make $BUILD/sweepd $BUILD/tests/fake_worker)"; exit 1; }
done
mkdir -p "$T/data" "$T/var"
echo '{}' >"$T/data/fake.json"
SOCK=$T/var/sweepd.sock
DB=$T/var/sweepd.db
req() { "$PY" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode()+b"\n"); print(s.makefile().readline().strip())' "$SOCK" "$1"; }
rss() { awk '/VmRSS/{print $2}' /proc/$DPID/status; }
done_count() { sqlite3 "$DB" "SELECT count(*) FROM trials WHERE job_id=$1 AND state IN ('completed','failed')" 2>/dev/null || echo 0; }

FAKE_NOOP=1 SWEEPD_WORKER=$FAKE "$BUILD/sweepd" --foreground --socket "$SOCK" --db "$DB" \
    --state-dir "$T/var" --workers 16 --log-level warn 2>"$T/sweepd.log" &
DPID=$!
for i in $(seq 1 100); do req '{"op":"ping"}' >/dev/null 2>&1 && break; sleep 0.1; done

# 1 + 2: throughput and RSS.
t0=$(date +%s.%N)
req "{\"op\":\"submit\",\"job\":{\"name\":\"bench\",\"data\":{\"train\":\"$T/data\"},\"model\":{\"weights\":null},\"strategy\":\"random\",\"trials\":$N,\"space\":{\"lr\":{\"log_uniform\":[0.0001,0.1]}},\"max_parallel\":16,\"seed\":1}}" >"$T/submit.out"
rss1k=""
while :; do
    c=$(done_count 1)
    if [ -z "$rss1k" ] && [ "$c" -ge $((N / 10)) ]; then rss1k=$(rss); c1k=$c; fi
    [ "$c" -ge "$N" ] && break
    kill -0 "$DPID" 2>/dev/null || { echo "bench_daemon: sweepd died"; tail "$T/sweepd.log"; exit 1; }
    sleep 0.2
done
t1=$(date +%s.%N)
rss10k=$(rss)
state=$(sqlite3 "$DB" "SELECT state FROM jobs WHERE id=1")
completed=$(sqlite3 "$DB" "SELECT count(*) FROM trials WHERE job_id=1 AND state='completed'")
daemon_rate=$(echo "$N / ($t1 - $t0)" | bc -l)
# Peer: the same number of no-op workers started by xargs, 16 at a time.
mkdir -p "$T/peer"
"$PY" -c 'import json,sys; json.dump({"trial":1,"data":{"train":sys.argv[1]},"params":{"lr":0.01,"epochs":1},"out_dir":sys.argv[2]},open(sys.argv[3],"w"))' "$T/data" "$T/peer" "$T/peer/trial.json"
p0=$(date +%s.%N)
seq 1 "$N" | FAKE_NOOP=1 xargs -P 16 -I{} "$FAKE" run "$T/peer/trial.json" >/dev/null
p1=$(date +%s.%N)
peer_rate=$(echo "$N / ($p1 - $p0)" | bc -l)
printf 'bench_daemon: %d no-op trials, 16 slots: %.0f trials/s end to end (job %s, %s completed; target >= 200/s)\n' "$N" "$daemon_rate" "$state" "$completed"
printf 'bench_daemon: peer xargs -P 16 spawning the same workers: %.0f runs/s; daemon/peer ratio %.2f\n' "$peer_rate" "$(echo "$daemon_rate / $peer_rate" | bc -l)"
printf 'bench_daemon: daemon RSS after %d trials %d kB, after %d trials %d kB: ratio %.3f (target within 10%%)\n' "$c1k" "$rss1k" "$N" "$rss10k" "$(echo "$rss10k / $rss1k" | bc -l)"

# 3: status latency while two workers stream progress.
cat >"$T/data2.json" <<'J'
{"default":{"sleep":1.0,"progress":200}}
J
mkdir -p "$T/data2" && cp "$T/data2.json" "$T/data2/fake.json"
kill -TERM "$DPID"; wait "$DPID"
SWEEPD_WORKER=$FAKE "$BUILD/sweepd" --foreground --socket "$SOCK" --db "$DB" \
    --state-dir "$T/var" --workers 2 --log-level warn 2>>"$T/sweepd.log" &
DPID=$!
for i in $(seq 1 100); do req '{"op":"ping"}' >/dev/null 2>&1 && break; sleep 0.1; done
req "{\"op\":\"submit\",\"job\":{\"name\":\"stream\",\"data\":{\"train\":\"$T/data2\"},\"model\":{\"weights\":null},\"space\":{\"lr\":[0.1,0.01],\"epochs\":[8]},\"seed\":1}}" >/dev/null
sleep 0.5
"$PY" - "$SOCK" <<'PYEOF'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rb")
def lat(req, n):
    out = []
    for _ in range(n):
        t = time.perf_counter(); s.sendall(req); f.readline(); out.append((time.perf_counter() - t) * 1000)
        time.sleep(0.002)
    out.sort()
    return out[len(out) // 2], out[int(len(out) * 0.99) - 1]
sp50, sp99 = lat(b'{"op":"status"}\n', 1000)
pp50, pp99 = lat(b'{"op":"ping"}\n', 1000)
jp50, jp99 = lat(b'{"op":"status","job":2}\n', 500)
print("bench_daemon: status (all jobs, one of 10,000 trials) while 2 workers stream progress: p50 %.2f ms, p99 %.2f ms (target p99 < 5 ms)" % (sp50, sp99))
print("bench_daemon: status of the streaming job: p50 %.2f ms, p99 %.2f ms" % (jp50, jp99))
print("bench_daemon: peer ping: p50 %.2f ms, p99 %.2f ms; status/ping p99 ratio %.2f" % (pp50, pp99, sp99 / pp99))
PYEOF
ev=$(sqlite3 "$DB" "SELECT count(*) FROM trial_metrics m JOIN trials t ON t.id=m.trial_id WHERE t.job_id=2")
echo "bench_daemon: epochs recorded for the streaming job so far: $ev"
kill -TERM "$DPID"; wait "$DPID"; DPID=
