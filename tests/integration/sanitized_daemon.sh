#!/bin/bash
# sweepd and sweep-worker under the sanitizers and under valgrind.
#
# Part 1: builds sweepd, sweep-worker and the fake worker with
# AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer at exit)
# into build/san-int (make BUILD=build/san-int SAN=1 WERROR=1 OPT=-O1 ...),
# then runs a short session: a job of the fake worker, a job of the real
# sanitized worker on a tiny generated data set with a test set (training,
# checkpoints, evaluation), status, best, trial, watch, a few bad requests,
# and shutdown. Every process writes sanitizer reports to $T/san.<pid>; none
# may appear, and the daemon must exit 0.
# Part 2: valgrind memcheck of a short session of the regular sweepd build
# (definite/indirect leaks and every memory error count; workers are not
# traced): the daemon must exit 0 with an empty error log.
# SAN_INT_BUILD=DIR overrides build/san-int; REL_SKIP_SAN_BUILD=1 uses what is there.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/reliability_lib.bash"

SANB=${SAN_INT_BUILD:-$ROOT/build/san-int}
REGULAR_BUILD=$BUILD
if [ "${REL_SKIP_SAN_BUILD:-0}" != 1 ]; then
    rel=${SANB#$ROOT/}
    if (cd "$ROOT" && env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS nice make -j2 --no-print-directory \
        BUILD="$rel" SAN=1 WERROR=1 OPT=-O1 "$rel/sweepd" "$rel/sweep-worker" \
        "$rel/tests/fake_worker" "$rel/tests/train_mkdata") >"$T/build.log" 2>&1; then
        ok "sanitized build of sweepd, sweep-worker and the fake worker ($rel)"
    else
        not_ok "sanitized build failed"
        tail -20 "$T/build.log" | sed 's/^/#   /'
        done_testing
    fi
fi

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=23:log_path=$T/san"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$T/san"
export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0"
san_reports() { ls "$T"/san.* 2>/dev/null | wc -l; }

rel_setup_data
mkdir -p "$T/real" && "$SANB/tests/train_mkdata" "$T/real/train" 2 6 40 1 >/dev/null &&
    "$SANB/tests/train_mkdata" "$T/real/test" 2 4 40 2 >/dev/null
check "tiny data set generated (sanitized train_mkdata)" test -d "$T/real/train"

BUILD=$SANB
SWEEPD_WORKER=$SANB/tests/fake_worker rel_start_daemon --workers 2 ||
    { not_ok "sanitized sweepd starts"; done_testing; }
ok "sanitized sweepd starts"
jobid() { sed -n 's/.*"job": *\([0-9]*\).*/\1/p'; }
J1=$(rel_rpc '{"op":"submit","job":{"name":"san-fake","data":{"train":"'$T'/data/train","test":"'$T'/data/test"},"model":{"arch":"resnet18","weights":null,"input_size":32,"width":8},"strategy":"random","trials":6,"space":{"lr":{"log_uniform":[0.001,0.1]},"batch_size":[4,8]},"fixed":{"epochs":2},"max_parallel":2,"seed":12}}' | jobid)
check "fake-worker job accepted" test -n "$J1"
check "fake-worker job completes" rel_wait_job "${J1:-0}" 60
is "fake-worker job done" "$(rel_job_state "${J1:-0}")" done
for req in '{"op":"status"}' '{"op":"status","job":'${J1:-0}'}' '{"op":"best","job":'${J1:-0}',"limit":3}' \
    '{"op":"trial","id":1}' '{"op":"watch","job":'${J1:-0}'}'; do
    like "sanitized sweepd answers $req" "$(rel_rpc "$req")" '"ok": *true|"event"'
done
for req in '{"op":' '{"op":"nope"}' '{"op":"submit","job":{"space":{"lr":[NaN]}}}' \
    '{"op":"best","job":"x"}'; do
    like "sanitized sweepd refuses $req" "$(rel_rpc "$req")" '"ok": *false'
done
"$REL_PY" "$REL_DIR/reliability_mutate.py" "$SOCK" "$T/data/train" 1000 7 >"$T/mut.out" 2>&1
like "1000 mutated requests against the sanitized sweepd" "$(grep -E '^(PASS|FAIL)' "$T/mut.out")" '^PASS'
grep '^INFO' "$T/mut.out" | sed 's/^/# /'
rel_stop_daemon
is "sanitized sweepd (fake worker session) exits 0" "$?" 0

# The real sanitized worker: train, checkpoint, evaluate.
SWEEPD_WORKER=$SANB/sweep-worker rel_start_daemon --workers 1 ||
    { not_ok "sanitized sweepd restarts"; done_testing; }
J2=$(rel_rpc '{"op":"submit","job":{"name":"san-real","data":{"train":"'$T'/real/train","val_fraction":0.34,"test":"'$T'/real/test"},"model":{"arch":"resnet18","weights":null,"input_size":32,"width":8},"strategy":"grid","space":{"lr":[0.01,0.05]},"fixed":{"epochs":2,"batch_size":4},"seed":13}}' | jobid)
check "real-worker job accepted" test -n "$J2"
check "real-worker job completes under the sanitizers" rel_wait_job "${J2:-0}" 240
is "real-worker job done" "$(rel_job_state "${J2:-0}")" done
is "both real trials completed with 2 epochs of metrics each" \
    "$(rel_sql "SELECT count(*) FROM trials t WHERE job_id=${J2:-0} AND state='completed' AND (SELECT count(*) FROM trial_metrics m WHERE m.trial_id=t.id)=2")" 2
is "test_accuracy stored" \
    "$(rel_sql "SELECT count(*) FROM trials WHERE job_id=${J2:-0} AND test_accuracy IS NOT NULL")" 1
rel_stop_daemon
is "sanitized sweepd (real worker session) exits 0" "$?" 0
n=$(san_reports)
is "no ASan/UBSan/LSan report from sweepd or any worker" "$n" 0
if [ "$n" -gt 0 ]; then
    for f in "$T"/san.*; do echo "# --- $f"; head -30 "$f" | sed 's/^/#   /'; done
fi

# ---- part 2: valgrind memcheck of the regular build ----------------------------
BUILD=$REGULAR_BUILD
unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
if ! command -v valgrind >/dev/null; then
    ok "# SKIP valgrind not installed"
    done_testing
fi
[ -x "$BUILD/sweepd" ] || { not_ok "no $BUILD/sweepd for the valgrind run"; done_testing; }
rm -rf "$STATE" "$DB"*
REL_WRAP=(valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite,indirect --track-origins=yes --log-file="$T/vg.%p")
REL_START_WAIT=600 SWEEPD_WORKER=$REL_DIR/reliability_worker.py rel_start_daemon --workers 2 ||
    { not_ok "sweepd starts under valgrind"; done_testing; }
ok "sweepd starts under valgrind"
J3=$(rel_rpc '{"op":"submit","job":{"name":"vg","data":{"train":"'$T'/data/train","test":"'$T'/data/test"},"model":{"arch":"resnet18","weights":null,"input_size":32,"width":8},"strategy":"grid","space":{"lr":[0.1,0.01,0.001]},"fixed":{"epochs":2},"max_parallel":2,"seed":14}}' | jobid)
check "job accepted under valgrind" test -n "$J3"
check "job completes under valgrind" rel_wait_job "${J3:-0}" 120
for req in '{"op":"status"}' '{"op":"best","job":'${J3:-0}'}' '{"op":"trial","id":1}' '{"op":' \
    '{"op":"cancel","job":999}'; do
    rel_rpc "$req" >/dev/null
done
printf '%*s\n' 1100000 '' | tr ' ' x >"$T/long.txt"
"$REL_PY" - "$SOCK" "$T/long.txt" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(open(sys.argv[2], "rb").read()); s.recv(4096); s.close()
EOF
check "sweepd under valgrind still answers ping" rel_ping
rel_stop_daemon
is "sweepd under valgrind exits 0 (99 = memcheck errors)" "$?" 0
errs=$(cat "$T"/vg.* 2>/dev/null)
is "valgrind memcheck reports no errors or leaks" "$errs" ""
[ -n "$errs" ] && echo "$errs" | head -40 | sed 's/^/#   /'
done_testing
