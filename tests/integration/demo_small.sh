#!/bin/bash
# `make demo` in miniature: the same etc/demo script on a tiny slice of
# Fashion-MNIST (a few images per class, one epoch, three trials), checking
# what it prints against what it stored: both jobs done, every trial
# completed with one metrics row per epoch, the printed best figures equal to
# the database's, the daemon stopped afterwards; then a rerun that reuses the
# data and the base model and adds two new jobs.
source "$(dirname "$0")/lib.sh"

VAR=$T/var
DB=$VAR/sweepd.db
run_demo() {
    SWEEP_BUILD=$BUILD DEMO_VAR=$VAR DEMO_PER_CLASS=8 DEMO_EVAL_PER_CLASS=10 \
        DEMO_PRETRAIN_PER_CLASS=30 DEMO_PRETRAIN_EPOCHS=1 DEMO_EPOCHS=2 DEMO_TRIALS=3 \
        DEMO_SCRATCH_LR=0.01 DEMO_WIDTH=8 DEMO_WORKERS=2 "$ROOT/etc/demo" </dev/null
}
q() { sqlite3 "$DB" "$1"; }

out=$(run_demo 2>&1); rc=$?
is "demo exits 0" "$rc" 0
[ "$rc" = 0 ] || printf '%s\n' "$out" | tail -n 30 | sed 's/^/# /'

like "imports the pretraining set" "$out" 'imported .*/fmnist-0-4-train-30: \{"images":150'
like "imports the fine-tuning set" "$out" 'imported .*/fmnist-5-9-train-8: \{"images":40'
like "splits validation and test" "$out" 'into val/ and test/: 50 \+ 50 images'
check "base model written" test -s "$VAR/models/base.safetensors"
like "pretraining prints its epoch" "$out" 'epoch 1/1  train_loss [0-9.]+  val_accuracy [0-9.]+'
like "watch prints trial results" "$out" 'trial [0-9]+ completed: val_accuracy [0-9.]+  \[[0-9]/3 done'

ft=$(printf '%s\n' "$out" | sed -n 's/^job \([0-9]*\): fine-tune .*/\1/p')
sc=$(printf '%s\n' "$out" | sed -n 's/^job \([0-9]*\): the same data from scratch.*/\1/p')
is "two jobs submitted" "$ft/$sc" "1/2"
is "both jobs done" "$(q "SELECT group_concat(state) FROM (SELECT state FROM jobs ORDER BY id)")" "done,done"
is "fine-tuning job has 3 completed trials" \
    "$(q "SELECT COUNT(*) || ' ' || SUM(state = 'completed') FROM trials WHERE job_id = $ft")" "3 3"
is "baseline has 1 completed trial" \
    "$(q "SELECT COUNT(*) || ' ' || SUM(state = 'completed') FROM trials WHERE job_id = $sc")" "1 1"
is "one metrics row per trial and epoch" "$(q "SELECT COUNT(*) FROM trial_metrics")" 8
is "fine-tuning trials load the base model" \
    "$(q "SELECT json_extract(spec_json, '\$.model.weights') FROM jobs WHERE id = $ft")" \
    "$VAR/models/base.safetensors"
is "baseline trains from scratch" \
    "$(q "SELECT json_extract(spec_json, '\$.model.weights') IS NULL FROM jobs WHERE id = $sc")" 1
is "search varied lr and freeze from the job's lists" \
    "$(q "SELECT COUNT(*) FROM trials WHERE job_id = $ft AND lr IN (0.003, 0.01, 0.03)
          AND json_extract(params_json, '\$.freeze') IN ('none', 'layer1', 'layer2', 'layer3', 'all')")" 3

# The printed summary equals the stored best trial.
for pair in "$ft:fine-tuned" "$sc:from scratch"; do
    job=${pair%%:*} label=${pair#*:}
    want=$(q "SELECT id, printf('%.4f', val_accuracy), printf('%.4f', test_accuracy)
                FROM best_trials WHERE job_id = $job AND rank = 1 ORDER BY number LIMIT 1" | tr '|' ' ')
    set -- $want - - - # (placeholders when the job has no best trial)
    like "$label summary matches the database" "$out" \
        "demo: $label \\(job $job\\): best trial $1 val_accuracy $2 test_accuracy $3\$"
    is "$label best trial has a test accuracy" "$(q "SELECT test_accuracy IS NOT NULL FROM trials WHERE id = $1")" 1
done
top=$(printf '%s\n' "$out" | sed -n '/Top fine-tuning trials/,/From-scratch baseline/p' | grep -cE '^[0-9]+ +[0-9]+ +[0-9]+ ')
is "top-trials table lists the 3 trials" "$top" 3
best_row=$(q "SELECT rank || ' +' || id || ' +' || number FROM best_trials WHERE job_id = $ft ORDER BY rank, number LIMIT 1")
like "top-trials table starts with the best" "$(printf '%s\n' "$out" | sed -n '/Top fine-tuning trials/,$p' | sed -n 4p)" "^$best_row "
like "summary names chance level" "$out" 'chance level is 0\.2000'

# The example queries run against what the demo stored.
qout=$(sqlite3 -header -column "$DB" -cmd ".parameter set :job $ft" <"$ROOT/sql/queries.sql" 2>"$T/qerr"); rc=$?
is "sql/queries.sql runs without errors" "$rc:$(cat "$T/qerr")" "0:"
is "hyperparameter effect: dropout (uniform) in ranges holding the 3 trials" \
    "$(grep -E '^dropout +[0-9.e-]+ \.\. [0-9.e-]+ +[0-9]+ ' <<<"$qout" | awk '{ s += $5 } END { print s }')" 3
is "learning curves list both epochs of each trial" \
    "$(grep -cE '^[0-9]+ +[0-9]+ +completed +[01]\.[0-9]{3} [01]\.[0-9]{3} *$' <<<"$qout")" 3

check "daemon stopped at the end" bash -c "! '$BUILD/sweepctl' --socket '$VAR/sweepd.sock' ping >/dev/null 2>&1"
left=""
for p in $(pgrep -x sweepd); do
    tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "--state-dir $VAR " && left="$left $p"
done
is "no sweepd left running on this state dir" "$left" ""

# A rerun reuses the data and the base model and adds two new jobs.
sum_before=$(cksum <"$VAR/models/base.safetensors")
out2=$(run_demo 2>&1); rc=$?
is "rerun exits 0" "$rc" 0
like "rerun reuses the data" "$out2" 'reusing .*/fmnist-5-9-train-8'
like "rerun reuses the base model" "$out2" 'reusing .*/base\.safetensors'
is "base model unchanged" "$(cksum <"$VAR/models/base.safetensors")" "$sum_before"
is "rerun adds jobs 3 and 4" "$(q "SELECT group_concat(id) FROM (SELECT id FROM jobs WHERE state = 'done' ORDER BY id)")" "1,2,3,4"
is "same seed, same trials" \
    "$(q "SELECT group_concat(params_json, ';') FROM (SELECT params_json FROM trials WHERE job_id = 3 ORDER BY number)")" \
    "$(q "SELECT group_concat(params_json, ';') FROM (SELECT params_json FROM trials WHERE job_id = 1 ORDER BY number)")"

done_testing
