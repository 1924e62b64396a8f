# Shared helpers for integration tests (sourced, not run). Tests print TAP
# lines that tests/run-tests counts: "ok N - what" / "not ok N - what".
# Each test gets a private scratch directory $T, removed at exit unless
# KEEP=1. Binaries: $BUILD/sweepd, $BUILD/sweepctl, $BUILD/sweep-worker.
set -u
ROOT=${SWEEP_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${SWEEP_BUILD:-$ROOT/build}

# The same results whatever the caller's environment holds (for this test's
# own process tree only):
# - one locale: the suites' awk, printf and sort read and print numbers with
#   a decimal point, and bash's case conversions are not Turkish;
export LC_ALL=C.UTF-8
# - none of the variables that steer sweepd, sweepctl or the workers (socket,
#   worker, thread counts, engine switches, test hooks); a test that wants one
#   sets it itself. (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE stay: the machine
#   sets them where an older OpenBLAS needs them.)
unset SWEEPD_SOCKET SWEEPD_WORKER OMP_NUM_THREADS OPENBLAS_NUM_THREADS GOTO_NUM_THREADS \
    SWEEP_PROGRESS_INTERVAL SWEEP_TEST_SIGNAL_AT_STEP SWEEP_FEATURE_CACHE_MB SWEEP_PROFILE \
    SWEEP_WINOGRAD SWEEP_DENSE SWEEP_DENSE_TAPS SWEEP_POOL SWEEP_POOL_SPIN SWEEP_GEMM_SPLIT \
    SWEEP_POOL_FIRST SWEEP_MERGE_1X1 SWEEP_BLAS_PRETEND_CORE SWEEP_BLAS_REEXEC FAKE_NOOP \
    SWEEPD_TEST_TPE_NOMEM SWEEP_BLAS_BAD_KERNEL SWEEP_TEST_FEATURE_HOLD

# $T: under $TMPDIR (else /tmp), as a physical path (sweepd resolves paths,
# and the suites compare what it stored with $T). Unix socket paths hold at
# most 107 bytes and the suites bind sockets up to 24 bytes below $T; they
# also write $T into JSON, config lists and sanitizer options. A TMPDIR that
# is too deep for that, or has characters outside [A-Za-z0-9._/+-], is
# replaced by /tmp (with a note on stderr).
_mkscratch() { # DIR: prints a new scratch directory's physical path
    local d
    d=$(mktemp -d "$1/sweeptest.XXXXXX" 2>/dev/null) || return 1
    (cd "$d" && pwd -P) || { rmdir "$d"; return 1; }
}
_usable() { [ $((${#1} + 24)) -le 107 ] && [[ $1 != *[!A-Za-z0-9._/+-]* ]]; }
T=$(_mkscratch "${TMPDIR:-/tmp}")
if [ -n "$T" ] && ! _usable "$T"; then
    echo "# scratch directory $T is unusable for these suites (length or characters); using /tmp" >&2
    rmdir "$T"
    T=$(_mkscratch /tmp)
fi
if [ -z "$T" ]; then
    echo "not ok 1 - cannot create a scratch directory under ${TMPDIR:-/tmp}"
    echo "1..1"
    exit 1
fi
unset -f _mkscratch _usable
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
# cpu_best_kernel: the OpenBLAS kernel blas_core = auto must pick on this CPU,
# from /proc/cpuinfo (independently of the product's cpuid code): Cooperlake
# with AVX512_BF16, SkylakeX with AVX-512, Haswell with AVX2, else nothing.
cpu_best_kernel() {
    if grep -qw avx512f /proc/cpuinfo; then
        if grep -qw avx512_bf16 /proc/cpuinfo; then echo Cooperlake; else echo SkylakeX; fi
    elif grep -qw avx2 /proc/cpuinfo; then
        echo Haswell
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
