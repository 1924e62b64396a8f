#!/bin/bash
# Who may talk to sweepd: the socket file's mode (0660 by default, as set by
# socket_mode) and group (socket_group), a peer outside the owner and group
# refused by the file mode and a member of the group let in,
# a peer not on allow_uids refused with an error naming its uid (root and the
# daemon's own uid always allowed), a listed peer served and recorded as
# submitted_uid, and — when the daemon has a data_roots setting — data and
# weight paths outside the roots (also through ".." and symlinks) refused. Other users are
# simulated with setpriv (needs root; skipped otherwise).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/reliability_lib.bash"

rel_setup_data
# Other users must reach $T and read the data whatever the caller's umask
# (with 077 the data would be unreadable to uid $NOBODY for the wrong reason).
chmod 755 "$T"
chmod -R go+rX "$T/data"
NOBODY=65534

rel_start_daemon --workers 1 || { not_ok "sweepd starts"; done_testing; }
is "socket mode is 0660 by default" "$(stat -c %a "$SOCK")" 660
is "socket owned by the daemon's uid" "$(stat -c %u "$SOCK")" "$(id -u)"
check "owner can ping" rel_ping

as_nobody() { setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups -- "$@"; }
# The other-user checks also need uid $NOBODY to reach $T (every folder
# above it searchable: a TMPDIR of mode 0700 is not) and to read the client;
# otherwise a refusal would come from the path, not from the socket's mode.
can_setpriv=0 why="not root or no setpriv"
if [ "$(id -u)" -eq 0 ] && as_nobody true 2>/dev/null; then
    if as_nobody test -x "$T" -a -r "$REL_CLIENT" 2>/dev/null; then
        can_setpriv=1
    else
        why="uid $NOBODY cannot reach $T or read $REL_CLIENT"
    fi
fi

if [ $can_setpriv = 1 ]; then
    out=$(as_nobody "$REL_PY" "$REL_CLIENT" "$SOCK" '{"op":"ping"}' 2>&1)
    rc=$?
    check "uid $NOBODY (not owner, not in group) cannot connect to a 0660 socket" test $rc -ne 0
    like "... refused by the file mode" "$out" '[Pp]ermission denied|EACCES|Errno 13'
else
    ok "# SKIP $why: other-user checks not run"
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

# socket_group: the group named in the config may connect through a 0660
# socket, other users may not.
if [ $can_setpriv = 1 ]; then
    printf 'socket_group = %s\n' "$(getent group $NOBODY | cut -d: -f1 || echo $NOBODY)" >"$T/group.conf"
    if REL_QUIET_START=1 rel_start_daemon --workers 1 --config "$T/group.conf"; then
        is "socket_group: the socket belongs to gid $NOBODY" "$(stat -c %g "$SOCK")" $NOBODY
        is "socket_group: mode stays 0660" "$(stat -c %a "$SOCK")" 660
        like "socket_group: a member of the group (uid $NOBODY, gid $NOBODY) is served" \
            "$(as_nobody "$REL_PY" "$REL_CLIENT" "$SOCK" '{"op":"ping"}' 2>&1)" '"ok": *true'
        out=$(setpriv --reuid=4242 --regid=4242 --clear-groups -- "$REL_PY" "$REL_CLIENT" "$SOCK" '{"op":"ping"}' 2>&1)
        like "socket_group: a user outside the group (uid 4242, gid 4242) is refused by the file mode" \
            "$out" '[Pp]ermission denied|EACCES|Errno 13'
        rel_stop_daemon
    else
        [ -n "$DPID" ] && rel_kill9
        ok "# SKIP socket_group is not a sweepd setting ($(grep -m1 -i 'socket_group' "$T/sweepd.out"))"
    fi
fi

# A daemon running as an ordinary user (uid $NOBODY) refuses data and
# weights it cannot read, naming the key and the reason (as root everything
# is readable, so this needs the switch of user).
if [ $can_setpriv = 1 ] && as_nobody test -x "$BUILD/sweepd"; then
    NB=$T/nb
    mkdir -p "$NB/state" && chown -R $NOBODY:$NOBODY "$NB"
    mkdir -p "$T/locked/train/a" "$T/locked/train/b" "$T/lockedtest"
    chmod 000 "$T/locked" "$T/lockedtest"
    printf 'x' >"$T/locked.safetensors" && chmod 000 "$T/locked.safetensors"
    SOCK0=$SOCK DB0=$DB STATE0=$STATE
    SOCK=$NB/sweepd.sock DB=$NB/sweepd.db STATE=$NB/state
    REL_WRAP=(setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups --)
    if rel_start_daemon --workers 1; then
        sub() { rel_rpc '{"op":"submit","job":{"data":{"train":"'"$1"'"'"$2"'},"model":{"arch":"resnet18","weights":'"$3"',"input_size":32},"space":{"lr":[0.1]},"fixed":{"epochs":1}}}'; }
        like "sweepd as uid $NOBODY: an unreadable data.train is refused, naming it and the reason" \
            "$(sub "$T/locked/train" "" null)" '"ok": *false.*data\.train.*([Pp]ermission|readable|access)'
        like "sweepd as uid $NOBODY: an unreadable data.test is refused, naming it" \
            "$(sub "$T/data/train" ',"test":"'$T'/lockedtest"' null)" '"ok": *false.*data\.test.*([Pp]ermission|readable|access)'
        like "sweepd as uid $NOBODY: an unreadable model.weights is refused, naming it" \
            "$(sub "$T/data/train" "" '"'$T'/locked.safetensors"')" '"ok": *false.*model\.weights.*([Pp]ermission|readable|access)'
        like "sweepd as uid $NOBODY: readable data is accepted" \
            "$(sub "$T/data/train" "" null)" '"ok": *true'
        rel_stop_daemon
    else
        not_ok "sweepd starts as uid $NOBODY"
    fi
    REL_WRAP=()
    SOCK=$SOCK0 DB=$DB0 STATE=$STATE0
    chmod 755 "$T/locked" "$T/lockedtest"
fi

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
    printf 'x' >"$T/outside/w.safetensors"
    like "data_roots: model.weights outside the roots is refused, naming it" \
        "$(rel_rpc '{"op":"submit","job":{"data":{"train":"'$T'/data/train"},"model":{"arch":"resnet18","weights":"'$T'/outside/w.safetensors","input_size":32},"space":{"lr":[0.1]},"fixed":{"epochs":1}}}')" \
        '"ok": *false.*model\.weights'
    rel_stop_daemon
else
    [ -n "$DPID" ] && rel_kill9
    msg=$(grep -m1 -i 'data_roots' "$T/sweepd.out")
    ok "# SKIP data_roots is not a sweepd setting yet (${msg:-no message}); reported as a gap"
fi
done_testing
