#!/bin/bash
# Soak test for sweepd (not part of `make check`): does a long-running daemon
# stay flat? Two phases against one daemon, one database, one state dir:
#
#   1. N short trials (default 10,000) with the fake worker in no-op mode
#      (FAKE_NOOP=1: start, one epoch, done, no files), submitted as random
#      jobs of 1,000 trials;
#   2. M minutes (default 60) of mixed trials: real sweep-worker trials on a
#      tiny generated data set (2-3 epochs each) interleaved with no-op jobs,
#      keeping the queue non-empty.
#
# Every INTERVAL completed trials (phase 1) or every minute (phase 2) it
# prints: completed trials, trials/s, the daemon's open file descriptors, RSS,
# database + WAL size and bytes per trial. At the end it compares RSS and fds
# with the values after the first 10% of phase 1 and exits 1 when RSS grew by
# more than 10% (+ 4 MiB slack) or fds by more than 4.
#
# Usage: tests/soak/soak.sh [-n TRIALS] [-m MINUTES] [-i INTERVAL] [-w WORKERS]
#   SWEEP_BUILD=DIR (default build/) must hold sweepd, sweep-worker,
#   tests/fake_worker and tests/train_mkdata (make test-bins). KEEP=1 keeps
#   the scratch directory. Example for a quick look: tests/soak/soak.sh -n 2000 -m 2
set -u
N=10000
MINUTES=60
INTERVAL=1000
WORKERS=2
while getopts "n:m:i:w:h" o; do
    case $o in
        n) N=$OPTARG ;;
        m) MINUTES=$OPTARG ;;
        i) INTERVAL=$OPTARG ;;
        w) WORKERS=$OPTARG ;;
        *) sed -n '2,24p' "$0"; exit 2 ;;
    esac
done
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../integration/lib.sh"
source "$HERE/../integration/reliability_lib.bash"
for b in sweepd sweep-worker tests/fake_worker tests/train_mkdata; do
    [ -x "$BUILD/$b" ] || { echo "soak: missing $BUILD/$b (make test-bins)" >&2; exit 2; }
done

rel_setup_data
mkdir -p "$T/real"
"$BUILD/tests/train_mkdata" "$T/real/train" 3 20 40 1 >/dev/null
"$BUILD/tests/train_mkdata" "$T/real/test" 3 6 40 2 >/dev/null
# One daemon for both phases; the worker is chosen per trial by its data path:
# the no-op fake worker for $T/data/train, the real worker for $T/real/train.
cat >"$T/worker.sh" <<EOF
#!/bin/sh
if [ "\$1" = run ]; then
    case "\$(cat "\$2" 2>/dev/null)" in
        *'"$T/data/train"'*) FAKE_NOOP=1 exec "$BUILD/tests/fake_worker" "\$@" ;;
    esac
fi
exec "$BUILD/sweep-worker" "\$@"
EOF
chmod +x "$T/worker.sh"
SWEEPD_WORKER=$T/worker.sh rel_start_daemon --workers "$WORKERS" --log-level warn ||
    { echo "soak: sweepd does not start" >&2; exit 1; }

completed() { rel_sql "SELECT count(*) FROM trials WHERE state IN ('completed','failed')"; }
dbsize() { cat "$DB" "$DB-wal" 2>/dev/null | wc -c; }
fds() { ls /proc/$DPID/fd 2>/dev/null | wc -l; }
rss() { awk '/^VmRSS:/ {print $2}' /proc/$DPID/status 2>/dev/null; }
T0=$SECONDS
row() { # LABEL DONE
    local done=$2 el=$((SECONDS - T0)) sz
    sz=$(dbsize)
    printf '%-8s %9d %8d %9.1f %6d %10d %12d %10d\n' "$1" "$done" "$el" \
        "$(echo "$done / ($el + 0.001)" | bc -l)" "$(fds)" "$(rss)" "$sz" \
        "$((done > 0 ? sz / done : 0))"
}
header() { printf '%-8s %9s %8s %9s %6s %10s %12s %10s\n' phase trials seconds trials/s fds rss_kib db_bytes bytes/trial; }

submit_noop() { # TRIALS SEED
    rel_rpc '{"op":"submit","job":{"name":"soak-noop","data":{"train":"'$T'/data/train"},"model":{"arch":"resnet18","weights":null,"input_size":32,"width":8},"strategy":"random","trials":'$1',"space":{"lr":{"log_uniform":[0.0001,0.1]},"batch_size":[8,16,32]},"fixed":{"epochs":1},"max_parallel":'$WORKERS',"seed":'$2'}}' >/dev/null
}

echo "== phase 1: $N no-op trials, $WORKERS workers (report every $INTERVAL)"
header
left=$N
seed=1
while [ $left -gt 0 ]; do
    k=$((left < 1000 ? left : 1000))
    submit_noop $k $seed
    left=$((left - k))
    seed=$((seed + 1))
done
next=$INTERVAL
base_rss="" base_fds=""
while :; do
    d=$(completed)
    if [ "$d" -ge "$next" ] || [ "$d" -ge "$N" ]; then
        row noop "$d"
        if [ -z "$base_rss" ] && [ "$d" -ge $((N / 10)) ]; then base_rss=$(rss); base_fds=$(fds); fi
        next=$((next + INTERVAL))
    fi
    [ "$d" -ge "$N" ] && break
    kill -0 "$DPID" 2>/dev/null || { echo "soak: sweepd died" >&2; exit 1; }
    sleep 0.5
done
p1_rss=$(rss) p1_fds=$(fds)

echo "== phase 2: $MINUTES minutes of mixed real and no-op trials"
header
end=$((SECONDS + MINUTES * 60))
nextrow=$((SECONDS + 60))
i=0
while [ $SECONDS -lt $end ]; do
    q=$(rel_sql "SELECT count(*) FROM trials WHERE state IN ('queued','running')")
    if [ "${q:-0}" -lt $((2 * WORKERS)) ]; then
        i=$((i + 1))
        rel_rpc '{"op":"submit","job":{"name":"soak-real-'$i'","data":{"train":"'$T'/real/train","val_fraction":0.25,"test":"'$T'/real/test"},"model":{"arch":"resnet18","weights":null,"input_size":32,"width":8},"strategy":"grid","space":{"lr":[0.01,0.03],"batch_size":[8,16]},"fixed":{"epochs":'$((2 + i % 2))'},"max_parallel":'$WORKERS',"seed":'$i'}}' >/dev/null
        submit_noop 200 $((1000 + i))
    fi
    if [ $SECONDS -ge $nextrow ]; then
        row mixed "$(completed)"
        nextrow=$((SECONDS + 60))
    fi
    kill -0 "$DPID" 2>/dev/null || { echo "soak: sweepd died" >&2; exit 1; }
    sleep 1
done
row mixed "$(completed)"
end_rss=$(rss) end_fds=$(fds)
[ -n "$base_rss" ] || base_rss=$p1_rss
failed=$(rel_sql "SELECT count(*) FROM trials WHERE state='failed'")
real=$(rel_sql "SELECT count(*) FROM trials t JOIN jobs j ON j.id=t.job_id WHERE j.name LIKE 'soak-real-%' AND t.state='completed'")
rel_stop_daemon
integrity=$(rel_sql 'PRAGMA integrity_check')

echo "== summary"
echo "rss KiB: after 10% ${base_rss:-?}, end of phase 1 $p1_rss, end $end_rss"
echo "fds:     after 10% ${base_fds:-?}, end of phase 1 $p1_fds, end $end_fds"
echo "real trials completed: $real   failed trials: $failed   integrity_check: $integrity   db: $(dbsize) bytes"
status=0
if [ "$p1_rss" -gt $((base_rss + base_rss / 10 + 4096)) ]; then
    echo "NOT FLAT: phase-1 RSS grew from $base_rss to $p1_rss KiB"; status=1
fi
if [ "$MINUTES" -gt 0 ] && [ "$end_rss" -gt $((p1_rss + p1_rss / 10 + 4096)) ]; then
    echo "NOT FLAT: phase-2 RSS grew from $p1_rss to $end_rss KiB"; status=1
fi
if [ -n "$base_fds" ] && [ "$end_fds" -gt $((base_fds + 4)) ]; then
    echo "NOT FLAT: fds grew from $base_fds to $end_fds"; status=1
fi
[ "$integrity" = ok ] || { echo "database integrity: $integrity"; status=1; }
[ $status = 0 ] && echo "flat: RSS and descriptors stable, database intact"
exit $status
