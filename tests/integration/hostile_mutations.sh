#!/bin/bash
# Structured fuzzing of the live request path: 3000 requests made by mutating
# valid ones (reliability_mutate.py, fixed seed, so a failure reproduces) are
# sent to a real sweepd; each must be answered with exactly one well-formed
# reply (ok true, or ok false with an error code and message), accepted jobs
# are cancelled at once, ping keeps working, and afterwards the daemon exits 0
# on shutdown with an intact database. sanitized_daemon.sh runs the same
# corpus against the ASan/UBSan build.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/reliability_lib.bash"

rel_setup_data
export REL_EPOCH_SECONDS=0.01
rel_start_daemon --workers 1 || { not_ok "sweepd starts"; done_testing; }
ok "sweepd starts"
"$REL_PY" "$REL_DIR/reliability_mutate.py" "$SOCK" "$T/data/train" "${REL_MUTATIONS:-3000}" \
    "${REL_MUTATION_SEED:-20261128}" >"$T/mut.out" 2>&1
while IFS= read -r line; do
    case $line in
        PASS\ *) ok "${line#PASS }" ;;
        FAIL\ *) not_ok "${line#FAIL }" ;;
        *) echo "# $line" ;;
    esac
done <"$T/mut.out"
grep -qE '^(PASS|FAIL) ' "$T/mut.out" || not_ok "the mutation run reported nothing"
check "sweepd still running" kill -0 "$DPID"
check "sweepd exits 0 on shutdown" rel_stop_daemon
is "integrity_check" "$(rel_sql 'PRAGMA integrity_check')" ok
done_testing
