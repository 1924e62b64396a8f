#!/bin/bash
# One ranking (issue 20): with the fake worker, two trials tied on the
# objective are rank 1 and 2 everywhere — the best_trials view, `sweepctl
# best`, `sweepctl status JOB`, `watch`'s summary — and the one ranked 1
# (the lower trial number) is the model the daemon evaluates on the test
# set. A failed test evaluation shows in the database (jobs.test_error), in
# `status` and as `watch`'s last line with exit 1. The data-file counts of a
# worker's start event show in `sweepctl trial` and `status`.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.bash"

ctl() { "$BUILD/sweepctl" --socket "$SOCK" "$@"; }
# Trials 1 and 2 (lr 0.02, 0.03) tie at 0.864; trial 0 is worse, trial 3 between.
# Trial 2 finishes first: the tie must not go to whichever finished first.
mkdata "$T/data" '{"default":{"sleep":0.01,"curve":[0.5]},
 "rules":[{"match":{"lr":0.02},"curve":[0.864],"sleep":0.3},
          {"match":{"lr":0.03},"curve":[0.864],"skipped_files":3,"bad_images":1},
          {"match":{"lr":0.04},"curve":[0.7]}]}'
mkdir -p "$T/test"
echo '{"test_accuracy":0.81}' >"$T/test/fake.json"
start_daemon --workers 2
job() { # job NAME TEST_DIR
    cat <<EOF
{"name": "$1", "data": {"train": "$T/data", "test": "$2"},
 "model": {"weights": null, "arch": "resnet18"}, "strategy": "grid",
 "space": {"lr": [0.01, 0.02, 0.03, 0.04]}, "fixed": {"epochs": 1},
 "max_parallel": 2, "seed": 1}
EOF
}
job tie "$T/test" >"$T/tie.json"
like "submit" "$(ctl submit "$T/tie.json")" '^submitted job 1 '
out=$(ctl watch 1); rc=$?
is "watch exits 0" "$rc" 0
is "the tied trials finished in the other order" \
    "$(sq "SELECT group_concat(number) FROM (SELECT number FROM trials WHERE job_id=1 AND number IN (1,2) ORDER BY finished_at)")" "2,1"
is "view: ranks 1, 2, 3, 4, ties by number" \
    "$(sq "SELECT group_concat(number || ':' || rank) FROM best_trials WHERE job_id=1")" "1:1,2:2,3:3,0:4"
is "view: exactly one rank 1" "$(sq "SELECT count(*) FROM best_trials WHERE job_id=1 AND rank=1")" 1
best=$(ctl best 1)
like "best: rank 1 is number 1" "$(echo "$best" | sed -n 3p)" '^ +1 +1 +2 +0\.0200 '
like "best: rank 2 is number 2" "$(echo "$best" | sed -n 4p)" '^ +2 +2 +3 +0\.0300 '
is "the test set is evaluated once" "$(wc -l <"$T/test/evals")" 1
is "the evaluated model is rank 1's" "$(cat "$T/test/evals")" "$VAR/trials/2/best.safetensors"
is "test_accuracy is on rank 1 only" \
    "$(sq "SELECT group_concat(rank || '=' || test_accuracy) FROM best_trials WHERE job_id=1 AND test_accuracy IS NOT NULL")" "1=0.81"
like "watch: best is rank 1" "$(echo "$out" | grep '^best:')" '^best: trial 2 val_accuracy 0\.8640 test_accuracy 0\.8100'
st=$(ctl status 1)
like "status: best line names the objective's metric" "$st" '^best +trial 2 \(number 1\) val_accuracy 0\.8640$'
like "status: skipped and undecodable files in the trials table" "$st" 'skipped_files +bad_images'
like "status: trial 3's counts" "$(echo "$st" | grep -E '^ +2 +3 ')" ' 3 +1 '
tr=$(ctl trial 3)
like "trial: skipped files" "$tr" '^skipped_files +3$'
like "trial: undecodable images" "$tr" '^bad_images +1$'

# A job ranked by another metric: status and best show it.
sed -e 's/"seed": 1}/"seed": 1, "objective": {"metric": "val_f1"}}/' -e 's/"tie"/"f1"/' \
    "$T/tie.json" >"$T/f1.json"
ctl submit "$T/f1.json" >/dev/null
ctl watch 2 >/dev/null
st=$(ctl status 2)
like "status: objective" "$st" '^objective +maximize val_f1$'
like "status: val_f1 column" "$(echo "$st" | grep -E '^trial ')" ' val_f1 '
like "best: val_f1 column" "$(ctl best 2 | head -1)" ' val_f1 '

# A test evaluation that fails: the job is done, its test_error says why.
mkdir -p "$T/badtest"
echo '{"eval_exit":3,"eval_message":"class folders differ from training"}' >"$T/badtest/fake.json"
job badtest "$T/badtest" >"$T/bad.json"
ctl submit "$T/bad.json" >/dev/null
out=$(ctl watch 3); rc=$?
is "watch exits 1 when the test evaluation failed" "$rc" 1
like "watch: its last line says so" "$(echo "$out" | tail -1)" \
    '^job 3: test-set evaluation failed \(exit status 3\): class folders differ from training'
is "job state stays done" "$(job_state 3)" done
is "database: jobs.test_error" "$(sq "SELECT coalesce(error, '-') || ' / ' || test_error FROM jobs WHERE id=3")" \
    "- / test-set evaluation failed (exit status 3): class folders differ from training"
like "status: test_error line" "$(ctl status 3)" '^test_error +test-set evaluation failed \(exit status 3\): class folders'
is "no test_error on a job whose evaluation succeeded" "$(sq "SELECT coalesce(test_error, '-') FROM jobs WHERE id=1")" "-"

stop_daemon
done_testing
