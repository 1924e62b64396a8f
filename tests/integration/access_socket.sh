#!/bin/bash
# Who may talk to sweepd: the socket file's mode (0660 by default, as set by
# socket_mode), a peer outside the owner and group refused by the file mode,
# a peer not on allow_uids refused with an error naming its uid (root and the
# daemon's own uid always allowed), a listed peer served and recorded as
# submitted_uid, and — when the daemon has a data_roots setting — job paths
# outside the roots (also through ".." and symlinks) refused. Other users are
# simulated with setpriv (needs root; skipped otherwise).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/reliability_lib.bash"

rel_setup_data
chmod 755 "$T"
NOBODY=65534

rel_start_daemon --workers 1 || { not_ok "sweepd starts"; done_testing; }
is "socket mode is 0660 by default" "$(stat -c %a "$SOCK")" 660
is "socket owned by the daemon's uid" "$(stat -c %u "$SOCK")" "$(id -u)"
check "owner can ping" rel_ping

as_nobody() { setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups -- "$@"; }
can_setpriv=0
if [ "$(id -u)" -eq 0 ] && as_nobody true 2>/dev/null; then can_setpriv=1; fi

if [ $can_setpriv = 1 ]; then
    out=$(as_nobody "$REL_PY" "$REL_CLIENT" "$SOCK" '{"op":"ping"}' 2>&1)
    rc=$?
    check "uid $NOBODY (not owner, not in group) cannot connect to a 0660 socket" test $rc -ne 0
    like "... refused by the file mode" "$out" '[Pp]ermission denied|EACCES|Errno 13'
else
    ok "# SKIP not root or no setpriv: other-user checks not run"
fi
rel_stop_daemon

# socket_mode and allow_uids from a config file.
cat >"$T/sweepd.conf" <<EOF
socket_mode = 0666
allow_uids = 4242
EOF
rel_start_daemon --workers 1 --config "$T/sweepd.conf" || { not_ok "sweepd starts with config"; done_testing; }
is "socket_mode = 0666 from the config file" "$(stat -c %a "$SOCK")" 666
check "root is always allowed" rel_ping
if [ $can_setpriv = 1 ]; then
    out=$(as_nobody "$REL_PY" "$REL_CLIENT" "$SOCK" '{"op":"ping"}' 2>&1)
    like "uid $NOBODY not on allow_uids gets an error reply" "$out" '"ok": *false'
    like "... naming its uid and the allow-list" "$out" "$NOBODY.*allow|allow.*$NOBODY"
    out=$(as_nobody "$REL_PY" "$REL_CLIENT" "$SOCK" '{"op":"submit","job":{"data":{"train":"'$T'/data/train"},"model":{"weights":null},"space":{"lr":[0.1]}}}' 2>&1)
    like "a refused peer cannot submit" "$out" '"ok": *false'
    is "nothing stored for the refused peer" "$(rel_sql 'SELECT count(*) FROM jobs')" 0
    check "ping still answered for root" rel_ping
fi
rel_stop_daemon

printf 'socket_mode = 0666\nallow_uids = 4242, %s\n' $NOBODY >"$T/sweepd.conf"
rel_start_daemon --workers 1 --config "$T/sweepd.conf" || { not_ok "sweepd starts with config"; done_testing; }
if [ $can_setpriv = 1 ]; then
    like "uid $NOBODY on allow_uids is served" \
        "$(as_nobody "$REL_PY" "$REL_CLIENT" "$SOCK" '{"op":"ping"}' 2>&1)" '"ok": *true'
    out=$(as_nobody "$REL_PY" "$REL_CLIENT" "$SOCK" '{"op":"submit","job":{"name":"by-nobody","data":{"train":"'$T'/data/train"},"model":{"arch":"resnet18","weights":null,"input_size":32,"width":8},"space":{"lr":[0.1]},"fixed":{"epochs":1}}}' 2>&1)
    like "... and may submit" "$out" '"ok": *true'
    is "submitted_uid records the peer's uid" \
        "$(rel_sql "SELECT submitted_uid FROM jobs WHERE name='by-nobody'")" $NOBODY
fi
rel_stop_daemon

# data_roots (issue 8): only when the daemon knows the key.
mkdir -p "$T/outside/train/a" "$T/outside/train/b"
ln -s "$T/outside/train" "$T/data/escape"
printf 'data_roots = %s\n' "$T/data" >"$T/roots.conf"
if REL_QUIET_START=1 rel_start_daemon --workers 1 --config "$T/roots.conf"; then
    sub() { rel_rpc '{"op":"submit","job":{"name":"roots","data":{"train":"'"$1"'"},"model":{"arch":"resnet18","weights":null,"input_size":32,"width":8},"space":{"lr":[0.1]},"fixed":{"epochs":1}}}'; }
    like "data_roots: a path inside the root is accepted" "$(sub "$T/data/train")" '"ok": *true'
    like "data_roots: a path outside is refused, naming data.train" "$(sub "$T/outside/train")" '"ok": *false.*data\.train'
    like "data_roots: '..' out of the root is refused" "$(sub "$T/data/../outside/train")" '"ok": *false.*data\.train'
    like "data_roots: a symlink out of the root is refused" "$(sub "$T/data/escape")" '"ok": *false.*data\.train'
    rel_stop_daemon
else
    [ -n "$DPID" ] && rel_kill9
    msg=$(grep -m1 -i 'data_roots' "$T/sweepd.out")
    ok "# SKIP data_roots is not a sweepd setting yet (${msg:-no message}); reported as a gap"
fi
done_testing
