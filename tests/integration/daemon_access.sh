#!/bin/bash
# sweepd access control and process management: SO_PEERCRED uids checked
# against allow_uids (forbidden replies), cancel/shutdown limited to the
# submitter / the daemon's user, detaching (pid file, readiness, log file),
# SIGHUP reopening the log, and a refused start reported by the parent.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.bash"

NOBODY=65534
as_nobody() { setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n"); print(s.makefile().readline().strip())' "$SOCK" "$1"; }
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null; then
    # Needs root to act as another uid; everything else is covered elsewhere.
    echo "# skipped: needs root and setpriv"
    done_testing
fi
chmod 755 "$T" "$VAR"
if ! setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups test -x "$VAR" 2>/dev/null; then
    # (a folder above $T not searchable by others, e.g. a TMPDIR of mode 0700:
    # every refusal would then come from the path, not from sweepd)
    echo "# skipped: uid $NOBODY cannot reach $VAR"
    done_testing
fi

# Only root, the daemon's uid and allow_uids may talk to the daemon.
printf 'socket_mode = 0666\nallow_uids = 4242\n' >"$T/deny.conf"
start_daemon --config "$T/deny.conf" --workers 1
is "socket mode from the config" "$(stat -c %a "$SOCK")" "666"
like "uid not in allow_uids: forbidden" "$(as_nobody '{"op":"ping"}')" '"code":"forbidden","message":"uid 65534 is not allowed'
check "root allowed" ping_ok
stop_daemon

# An allowed uid may not cancel another user's job or stop the daemon.
printf 'socket_mode = 0666\nallow_uids = 4242, %d\n' $NOBODY >"$T/allow.conf"
start_daemon --config "$T/allow.conf" --workers 1
like "allowed uid: ping ok" "$(as_nobody '{"op":"ping"}')" '"pong":true'
mkdata "$T/data" '{"default":{"action":"hang"}}'
submit "{\"data\":{\"train\":\"$T/data\"},\"model\":{\"weights\":null}}" >/dev/null
like "cancel of root's job by uid 65534: forbidden" "$(as_nobody '{"op":"cancel","job":1}')" '"code":"forbidden","message":"job 1 was submitted by uid 0'
like "shutdown by uid 65534: forbidden" "$(as_nobody '{"op":"shutdown"}')" '"code":"forbidden"'
like "status by uid 65534: allowed" "$(as_nobody '{"op":"status","job":1}')" '"ok":true'
like "cancel by the submitter works" "$(dc req '{"op":"cancel","job":1}')" '"ok":true'
stop_daemon

# Detached start: the parent returns once the daemon listens; pid file; log file.
SWEEPD_WORKER=$FAKE "$BUILD/sweepd" --socket "$SOCK" --db "$DB" --state-dir "$VAR" >"$T/bg.out" 2>&1
is "detached start returns 0" "$?" "0"
check "daemon answers at once" ping_ok
BGPID=$(cat "$VAR/sweepd.pid" 2>/dev/null)
at_exit "kill -KILL $BGPID 2>/dev/null"
check "pid file names a live sweepd" grep -q sweepd "/proc/$BGPID/cmdline"
like "log file in the state dir" "$(cat "$VAR/sweepd.log")" "listening on $SOCK"
mv "$VAR/sweepd.log" "$VAR/sweepd.log.1"
kill -HUP "$BGPID"
wait_for 5 test -s "$VAR/sweepd.log"
like "SIGHUP reopened the log" "$(cat "$VAR/sweepd.log")" "SIGHUP: log file reopened"
SWEEPD_WORKER=$FAKE "$BUILD/sweepd" --socket "$SOCK" --db "$T/x.db" --state-dir "$T/v2" >"$T/bg2.out" 2>&1
is "second detached start fails with 1" "$?" "1"
like "and the parent prints why" "$(cat "$T/bg2.out")" "already listening on"
kill -TERM "$BGPID"
gone() { ! kill -0 "$BGPID" 2>/dev/null; }
wait_for 10 gone
check "detached daemon stopped by SIGTERM" gone
check "pid file removed" [ ! -e "$VAR/sweepd.pid" ]
done_testing
