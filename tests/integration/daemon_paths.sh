#!/bin/bash
# Where sweepd lets jobs and workers reach, with the fake worker:
#  - socket_group: the socket file is given to the configured group (name or
#    gid); an unknown group stops the start with a message naming it;
#  - data_roots: data and weights must resolve inside a root — a path
#    outside, a ".." out of it and a symlink out of it are refused naming the
#    key and the roots; an accepted job is stored with resolved paths; a
#    missing root stops the start naming it;
#  - relative data paths are made absolute (workers run in their out_dir);
#  - a job cannot choose out_dir, cache_dir, the worker or its arguments:
#    such keys are refused, trial.json's out_dir is <state>/trials/<id>, and
#    the worker runs as `<configured worker> run <out_dir>/trial.json` in
#    its own process group;
#  - --state-dir alone puts the socket and the database in that directory.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.bash"

# ---- socket_group ----
G=$(id -G | tr ' ' '\n' | sed -n 2p)
[ -n "$G" ] || G=$(id -g)
[ "$(id -u)" = 0 ] && G=4321 # root may give the socket to any gid
printf 'socket_group = %s\n' "$G" >"$T/group.conf"
start_daemon --config "$T/group.conf" --workers 1
check "sweepd starts with socket_group = $G" ping_ok
is "the socket belongs to group $G" "$(stat -c %g "$SOCK")" "$G"
is "... and keeps mode 0660" "$(stat -c %a "$SOCK")" 660
like "the log names the group" "$(cat "$DLOG")" "listening on $SOCK \\(mode 0660, group $G\\)"
stop_daemon
printf 'socket_group = no-such-group-%d\n' $$ >"$T/badgroup.conf"
SWEEPD_WORKER=$FAKE timeout 10 "$BUILD/sweepd" --foreground --config "$T/badgroup.conf" \
    --socket "$SOCK" --db "$DB" --state-dir "$VAR" >"$T/bad.out" 2>&1
rc=$?
check "an unknown socket_group stops the start (exit $rc)" test "$rc" -ne 0
like "... with a message naming it" "$(cat "$T/bad.out")" "socket_group: unknown group \"no-such-group-$$\""

# ---- data_roots ----
mkdata "$T/roots/data/train" '{"default":{"action":"hang"}}'
mkdata "$T/outside/train"
mkdir -p "$T/roots/models"
"$BUILD/tests/mkweights" "$T/roots/models/w.safetensors" resnet18 2 2 # read at submission
echo x >"$T/outside/w.safetensors"
ln -s "$T/outside/train" "$T/roots/data/escape"
printf 'data_roots = %s/roots/data, %s/roots/models/\n' "$T" "$T" >"$T/roots.conf"
start_daemon --config "$T/roots.conf" --workers 1
check "sweepd starts with data_roots" ping_ok
job() { printf '{"op":"submit","job":{"name":"r","data":{"train":"%s"},"model":{"weights":%s},"space":{"lr":[0.1]}}}' "$1" "${2:-null}"; }
R="$T/roots/data, $T/roots/models"
r=$(dc req "$(job "$T/outside/train")")
like "a path outside the roots is refused" "$r" '"code":"invalid_job"'
like "... naming data.train and the roots" "$r" "data.train: $T/outside/train is outside data_roots \\($R\\)"
like "'..' out of a root is refused, naming the path it comes to" \
    "$(dc req "$(job "$T/roots/data/../../outside/train")")" \
    "data.train: $T/outside/train is outside data_roots"
like "a symlink out of a root is refused" "$(dc req "$(job "$T/roots/data/escape")")" \
    "data.train: $T/roots/data/escape \\(resolved to $T/outside/train\\) is outside data_roots"
like "weights outside the roots are refused" "$(dc req "$(job "$T/roots/data/train" "\"$T/outside/w.safetensors\"")")" \
    "model.weights: $T/outside/w.safetensors is outside data_roots"
is "nothing stored for refused jobs" "$(sq 'SELECT count(*) FROM jobs')" 0
r=$(dc req "$(job "$T/roots/data/./train" "\"$T/roots/models/../models/w.safetensors\"")")
like "paths inside the roots are accepted" "$r" '"ok":true'
is "the job is stored with the resolved paths" \
    "$(sq "SELECT json_extract(spec_json, '\$.data.train') || ' ' || json_extract(spec_json, '\$.model.weights') FROM jobs")" \
    "$T/roots/data/train $T/roots/models/w.safetensors"
wait_for 10 test -s "$VAR/trials/1/trial.json"
is "the worker gets the resolved path" \
    "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["data"]["train"])' "$VAR/trials/1/trial.json")" \
    "$T/roots/data/train"
dc req '{"op":"cancel","job":1}' >/dev/null
stop_daemon
printf 'data_roots = %s/nope\n' "$T" >"$T/badroots.conf"
SWEEPD_WORKER=$FAKE timeout 10 "$BUILD/sweepd" --foreground --config "$T/badroots.conf" \
    --socket "$SOCK" --db "$DB" --state-dir "$VAR" >"$T/bad2.out" 2>&1
rc=$?
check "a missing data root stops the start (exit $rc)" test "$rc" -ne 0
like "... naming it" "$(cat "$T/bad2.out")" "data_roots: cannot resolve \"$T/nope\""

# ---- out_dir, worker and argv are the daemon's ----
cd "$T" # the daemon's directory: relative job paths are taken from here
start_daemon --workers 1
check "sweepd starts" ping_ok
for key in out_dir cache_dir worker threads; do
    r=$(dc req '{"op":"submit","job":{"data":{"train":"'$T'/roots/data/train"},"model":{"weights":null},"space":{"lr":[0.1]},"'$key'":"/tmp/x"}}')
    like "a job with its own $key is refused, naming it" "$r" "\"code\":\"invalid_job\",\"message\":\"$key: unknown key"
done
r=$(dc req '{"op":"submit","job":{"name":"rel","data":{"train":"roots/data/train"},"model":{"weights":null},"space":{"lr":[0.1]}}}')
like "a relative data path (from the daemon's directory) is accepted" "$r" '"ok":true'
J=$(jf "$r" 'r["job"]')
TID=$(sq "SELECT id FROM trials WHERE job_id=$J")
wait_for 10 test -s "$VAR/trials/$TID/trial.json"
spec=$(cat "$VAR/trials/$TID/trial.json" 2>/dev/null)
is "trial.json: out_dir is <state>/trials/<id>" \
    "$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["out_dir"])' "$spec")" "$VAR/trials/$TID"
is "trial.json: the relative path made absolute" \
    "$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["data"]["train"])' "$spec")" "$T/roots/data/train"
wait_for 10 test -n "$(sq "SELECT pid FROM trials WHERE id=$TID")"
WPID=$(sq "SELECT pid FROM trials WHERE id=$TID")
is "the worker's argv is <worker> run <out_dir>/trial.json --blas-core <policy>" \
    "$(tr '\0' ' ' </proc/$WPID/cmdline)" "$FAKE run $VAR/trials/$TID/trial.json --blas-core inherit "
is "... its working directory the out_dir" "$(readlink /proc/$WPID/cwd)" "$VAR/trials/$TID"
is "... leading its own process group" "$(ps -o pgid= -p "$WPID" | tr -d ' ')" "$WPID"
dc req "{\"op\":\"cancel\",\"job\":$J}" >/dev/null
check "sweepd exits 0" stop_daemon

# ---- --state-dir alone ----
SD=$T/only-state
mkdir -p "$T/cwd"
(cd "$T/cwd" && SWEEPD_WORKER=$FAKE exec "$BUILD/sweepd" --foreground --state-dir "$SD" \
    --log-level debug >>"$DLOG" 2>&1) &
DPID=$!
wait_for 10 test -S "$SD/sweepd.sock"
check "--state-dir alone: the socket is DIR/sweepd.sock" test -S "$SD/sweepd.sock"
check "... and the database DIR/sweepd.db" test -f "$SD/sweepd.db"
like "... which sweepctl reaches there" "$("$BUILD/sweepctl" --socket "$SD/sweepd.sock" ping)" "^sweepd is running, version [0-9.]+, pid $DPID,"
check "... and nothing is made in the working directory's var/" test ! -e "$T/cwd/var"
check "sweepd exits 0" stop_daemon
done_testing
