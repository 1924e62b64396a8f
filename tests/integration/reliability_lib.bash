# Shared helpers for the reliability suites (hostile_*.sh, fault_*.sh,
# access_*.sh, sanitized_daemon.sh, tests/soak/soak.sh). Sourced after lib.sh;
# not a test itself (run-tests only runs *.sh).
#
#   rel_setup_data          small ImageFolder under $T/data (train/val/test)
#   rel_start_daemon ARGS   sweepd in the foreground on $SOCK / $DB / $STATE
#                           with the fake worker; sets DPID; waits for ping
#   rel_stop_daemon         {"op":"shutdown"}, waits for exit (SIGKILL after 20 s)
#   rel_kill9               SIGKILL the daemon and wait for it to go
#   rel_rpc 'JSON'          one request on a new connection; prints the reply
#   rel_ping                0 when the daemon answers ping
#   rel_sql 'SQL'           query $DB with the sqlite3 shell (read-only use)
#   rel_wait_job ID SECS    waits until job ID is done/failed/cancelled
REL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The scripted worker's timing and observation knobs and rel_start_daemon's
# per-call ones: a suite sets those it wants, none comes from the caller.
unset REL_MARKS REL_LEDGER REL_EPOCH_SECONDS REL_EVAL_SECONDS \
    REL_LOG_LEVEL REL_START_WAIT REL_QUIET_START
REL_PY=$(command -v /usr/bin/python3 || command -v python3)
REL_CLIENT=$REL_DIR/reliability_client.py
# The suites import reliability_client from the source tree: no __pycache__ there.
export PYTHONDONTWRITEBYTECODE=1
# (set here, never taken from the caller's environment: a DB or SOCK
# exported in a developer's shell must not redirect the suites)
SOCK=$T/sweepd.sock
DB=$T/sweepd.db
STATE=$T/state
# The scripted worker of these suites (see reliability_worker.py).
FAKE_WORKER=$REL_DIR/reliability_worker.py
DPID=""
# Command prefix for sweepd (e.g. valgrind); an array, empty until a suite sets it.
REL_WRAP=()

rel_rpc() { "$REL_PY" "$REL_CLIENT" "$SOCK" "$1"; }
rel_ping() { rel_rpc '{"op":"ping"}' 2>/dev/null | grep -q '"ok": *true'; }
rel_sql() { sqlite3 -cmd '.timeout 5000' "$DB" "$1"; }

# Tiny ImageFolder: 2 classes x 3 JPEG-named files (the fake worker does not
# decode them; real workers are not used by these suites).
rel_setup_data() {
    local split c i
    for split in train val test; do
        for c in cat dog; do
            mkdir -p "$T/data/$split/$c"
            for i in 1 2 3; do printf '\xff\xd8\xff\xd9' >"$T/data/$split/$c/$i.jpg"; done
        done
    done
}

rel_start_daemon() {
    mkdir -p "$STATE"
    # (stderr of the launch itself goes to /dev/null: that is where bash
    # reports the previous daemon's death by SIGKILL, which is intended here)
    {
        SWEEPD_WORKER=${SWEEPD_WORKER:-$FAKE_WORKER} \
            "${REL_WRAP[@]}" "$BUILD/sweepd" --foreground --socket "$SOCK" --db "$DB" \
            --state-dir "$STATE" --log-level "${REL_LOG_LEVEL:-info}" "$@" \
            >>"$T/sweepd.out" 2>&1 &
    } 2>/dev/null
    DPID=$!
    at_exit "kill -9 $DPID 2>/dev/null"
    local i
    for i in $(seq 1 ${REL_START_WAIT:-100}); do
        rel_ping && return 0
        kill -0 "$DPID" 2>/dev/null || break
        sleep 0.1
    done
    if [ "${REL_QUIET_START:-0}" != 1 ]; then
        echo "# sweepd did not answer ping; its output:"
        tail -20 "$T/sweepd.out" | sed 's/^/#   /'
    fi
    return 1
}

# Waits up to $1 seconds (default 20) for the daemon to exit; prints its status.
rel_wait_exit() {
    local limit=${1:-20} end=$((SECONDS + ${1:-20}))
    while kill -0 "$DPID" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.1; done
    if kill -0 "$DPID" 2>/dev/null; then
        echo "# sweepd still running after ${limit}s; killing it"
        kill -9 "$DPID" 2>/dev/null
    fi
    { wait "$DPID"; } 2>/dev/null
}

rel_stop_daemon() {
    rel_rpc '{"op":"shutdown"}' >/dev/null 2>&1
    rel_wait_exit 20
    local rc=$?
    DPID=""
    return $rc
}

rel_kill9() {
    { kill -9 "$DPID" && wait "$DPID"; } 2>/dev/null
    DPID=""
    return 0
}

# Prints the job's state ("" when unknown).
rel_job_state() { rel_sql "SELECT state FROM jobs WHERE id=$1" 2>/dev/null; }

rel_wait_job() {
    local id=$1 limit=${2:-60} end=$((SECONDS + ${2:-60})) s
    while [ $SECONDS -lt $end ]; do
        s=$(rel_job_state "$id")
        case $s in done | failed | cancelled) return 0 ;; esac
        sleep 0.2
    done
    return 1
}
