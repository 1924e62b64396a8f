# Shared helpers for integration tests (sourced, not run). Tests print TAP
# lines that tests/run-tests counts: "ok N - what" / "not ok N - what".
# Each test gets a private scratch directory $T, removed at exit unless
# KEEP=1. Binaries: $BUILD/sweepd, $BUILD/sweepctl, $BUILD/sweep-worker.
set -u
ROOT=${SWEEP_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${SWEEP_BUILD:-$ROOT/build}
T=$(mktemp -d "${TMPDIR:-/tmp}/sweeptest.XXXXXX")
_n=0
_failed=0
_cleanup_hooks=()
_on_exit() {
    local h
    for h in "${_cleanup_hooks[@]}"; do eval "$h" || true; done
    [ "${KEEP:-0}" = 1 ] || rm -rf "$T"
}
trap _on_exit EXIT
# at_exit CMD: run CMD (a string) when the test script exits.
at_exit() { _cleanup_hooks+=("$1"); }

ok() { _n=$((_n + 1)); echo "ok $_n - $*"; }
not_ok() { _n=$((_n + 1)); _failed=$((_failed + 1)); echo "not ok $_n - $*"; }
# check DESC CMD...: passes when CMD exits 0.
check() {
    local d=$1
    shift
    if "$@"; then ok "$d"; else not_ok "$d (command: $*)"; fi
}
# is DESC GOT WANT: passes when the two strings are equal.
is() {
    if [ "$2" = "$3" ]; then ok "$1"; else
        not_ok "$1"
        echo "#   got:  '$2'"
        echo "#   want: '$3'"
    fi
}
# isnt DESC GOT OTHER: passes when the two strings differ.
isnt() {
    if [ "$2" != "$3" ]; then ok "$1"; else
        not_ok "$1"
        echo "#   got:  '$2' (both)"
    fi
}
# like DESC GOT REGEX: passes when GOT matches the extended regex.
like() {
    if printf '%s' "$2" | grep -qE -- "$3"; then ok "$1"; else
        not_ok "$1"
        echo "#   got:  '$2'"
        echo "#   want match: '$3'"
    fi
}
# make_gate SCRIPT GO WORKER: writes SCRIPT, a worker wrapper (for
# SWEEPD_WORKER) that holds `run` until the file GO exists (at most 60 s), then
# execs WORKER; tests open the gate once `watch` is attached.
make_gate() {
    cat >"$1" <<EOF
#!/bin/sh
if [ "\$1" = run ]; then
    i=0
    while [ ! -e "$2" ] && [ \$i -lt 3000 ]; do sleep 0.02; i=\$((i + 1)); done
fi
exec "$3" "\$@"
EOF
    chmod +x "$1"
}
unlike() {
    if printf '%s' "$2" | grep -qE -- "$3"; then
        not_ok "$1"
        echo "#   got:  '$2'"
        echo "#   want no match: '$3'"
    else ok "$1"; fi
}
# wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds.
wait_for() {
    local limit=$1
    shift
    local end=$((SECONDS + limit))
    while [ $SECONDS -lt $end ]; do
        "$@" && return 0
        sleep 0.1
    done
    "$@"
}
# done_testing: prints the plan and exits non-zero if anything failed.
done_testing() {
    echo "1..$_n"
    [ $_failed -eq 0 ]
    exit $?
}
