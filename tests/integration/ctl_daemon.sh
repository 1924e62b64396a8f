#!/bin/bash
# sweepctl against the real sweepd and sweep-worker on a tiny data set:
# every command's human output and exit code with real replies, --json
# passing replies through, a refused job naming the key at fault, watch
# returning 1 for a job whose trials all fail, cancel, relative paths in a
# job resolved against the job file's folder (and the current directory for
# stdin), and shutdown.
source "$(dirname "$0")/lib.sh"

FM=/usr/share/datasets/fashion-mnist
S=$T/state
SOCK=$S/sweepd.sock
ctl() { "$BUILD/sweepctl" --socket "$SOCK" "$@"; }

"$BUILD/sweep-worker" import-idx "$FM/t10k-images-idx3-ubyte.gz" "$FM/t10k-labels-idx1-ubyte.gz" \
    "$T/data" --classes 0,1 --limit 12 >/dev/null 2>&1
check "tiny data set imported" test "$(find "$T/data" -name '*.jpg' | wc -l)" -eq 24

mkdir -p "$S"
# The first job's trials wait at a gate until `watch` is attached (so it sees
# every trial finish however slow the machine); the gate then stays open.
make_gate "$T/gate.sh" "$T/go" "$BUILD/sweep-worker"
SWEEPD_WORKER=$T/gate.sh "$BUILD/sweepd" --foreground --state-dir "$S" --socket "$SOCK" \
    --db "$S/sweepd.db" --workers 2 --threads-per-worker 1 --log-level debug >"$S/log" 2>&1 &
D=$!
at_exit "kill $D 2>/dev/null; wait $D 2>/dev/null"
wait_for 20 ctl ping >/dev/null 2>&1
like "ping" "$(ctl ping)" '^sweepd is running, version [0-9.]+, pid [0-9]+, up [0-9.]+s$'

job() { # job NAME STRATEGY SPACE [TRAIN]
    cat <<EOF
{"name": "$1", "data": {"train": "${4:-$T/data}", "val_fraction": 0.25},
 "model": {"arch": "resnet18", "weights": null, "width": 8, "input_size": 32},
 "strategy": "$2", $3,
 "fixed": {"epochs": 2, "batch_size": 8, "freeze": "none"},
 "max_parallel": 2, "max_retries": 0, "seed": 3}
EOF
}
job tiny grid '"space": {"lr": [0.01, 0.03], "dropout": [0.0, 0.2]}' >"$T/tiny.json"
out=$(ctl submit "$T/tiny.json"); rc=$?
is "submit exits 0" "$rc" 0
like "submit reports id, name, trials, seed" "$out" '^submitted job 1 \(tiny\): 4 trials, seed 3'

ctl watch 1 >"$T/watch1.out" 2>&1 &
W1=$!
wait_for 20 grep -q "op watch" "$S/log"
touch "$T/go"
wait $W1; rc=$?
out=$(cat "$T/watch1.out")
is "watch exits 0 when the job is done" "$rc" 0
is "watch prints one completion per trial" "$(printf '%s\n' "$out" | grep -c ' completed: val_accuracy')" 4
like "watch prints epochs" "$out" 'trial [0-9]+ epoch 2/2: train_loss [0-9.]+ val_loss [0-9.]+ val_accuracy [0-9.]+'
like "watch ends with the job summary" "$out" 'job 1 done: 4 completed, 0 failed, 0 cancelled or pruned, of 4 trials'

best_id=$(sqlite3 "$S/sweepd.db" "SELECT id FROM best_trials WHERE job_id = 1 ORDER BY rank, number LIMIT 1")
best_acc=$(sqlite3 "$S/sweepd.db" "SELECT printf('%.4f', val_accuracy) FROM trials WHERE id = $best_id")
like "watch names the stored best trial" "$out" "best: trial $best_id val_accuracy $best_acc"

out=$(ctl best 1 -n 2); rc=$?
is "best exits 0" "$rc" 0
like "best table header shows the varied params" "$out" '^rank  trial  id +lr +dropout +val_accuracy'
is "best -n 2 prints 2 rows" "$(printf '%s\n' "$out" | tail -n +3 | wc -l)" 2
like "best first row is the stored best" "$(printf '%s\n' "$out" | sed -n 3p)" "^ +1 +[0-9]+ +$best_id .* $best_acc"
out=$(ctl --json best 1 -n 1)
like "--json best is the raw reply" "$out" '^\{"ok":true,"job":1,.*"trials":\[\{.*"rank":1'

out=$(ctl status 1)
like "status shows the job" "$out" 'state +done'
is "status lists 4 trials" "$(printf '%s\n' "$out" | grep -cE '^ +[0-9]+ +[0-9]+ +completed')" 4
out=$(ctl list)
like "list shows the job" "$out" ' 1  tiny  done +4/4 +0 +[0-9.]+ +20[0-9-]+ '
out=$(ctl status)
like "daemon status shows workers" "$out" 'workers +2'
out=$(ctl trial "$best_id"); rc=$?
is "trial exits 0" "$rc" 0
like "trial shows its state" "$out" 'state +completed'
is "trial shows one metrics row per epoch" "$(printf '%s\n' "$out" | grep -cE '^ +[12] +[0-9.]+ +[0-9.]+')" 2

# Refused job: nothing stored, the key named.
job bad grid '"space": {"lr": "fast"}' >"$T/bad.json"
ctl submit "$T/bad.json" 2>"$T/err"; rc=$?
is "invalid job exits 1" "$rc" 1
like "invalid job error names the key" "$(cat "$T/err")" '^sweepctl: invalid_job: space\.lr'
is "refused job not stored" "$(sqlite3 "$S/sweepd.db" 'SELECT COUNT(*) FROM jobs')" 1
ctl trial 9999 2>"$T/err"; is "unknown trial exits 1" $? 1
like "unknown trial explained" "$(cat "$T/err")" 'not_found'

# A job whose every trial fails (the training folder has class folders but no
# images: the worker exits 3): watch exits 1.
mkdir -p "$T/empty/a" "$T/empty/b"
job broken random '"trials": 2, "space": {"lr": [0.01, 0.02]}' "$T/empty" >"$T/broken.json"
out=$(ctl submit "$T/broken.json" 2>&1); rc=$?
is "job over an empty folder is accepted" "$rc" 0
jid=$(printf '%s' "$out" | sed -n 's/^submitted job \([0-9]*\).*/\1/p')
out=$(ctl watch "$jid" 2>&1); rc=$?
is "watch exits 1 when the job failed" "$rc" 1
like "watch ends with the failed job" "$out" "job $jid failed: 0 completed, 2 failed"
tid=$(sqlite3 "$S/sweepd.db" "SELECT id FROM trials WHERE job_id = $jid ORDER BY number LIMIT 1")
out=$(ctl trial "$tid")
like "trial shows the failure's exit code (3: data error)" "$out" 'exit_code +3'
like "trial shows the failure's message" "$out" 'error +.+'

# Cancel: a longer job, cancelled while it runs.
job long grid '"space": {"lr": [0.01, 0.02, 0.03, 0.04, 0.05, 0.06]}' >"$T/long.json"
sed -i 's/"epochs": 2/"epochs": 50/' "$T/long.json"
jid=$(ctl --json submit "$T/long.json" | sed -n 's/.*"job":\([0-9]*\).*/\1/p')
wait_for 30 bash -c "'$BUILD/sweepctl' --socket '$SOCK' --json status $jid | grep -q '\"state\":\"running\"'"
out=$(ctl cancel "$jid"); rc=$?
is "cancel exits 0" "$rc" 0
like "cancel reports what it stopped" "$out" "^job $jid cancelled: [0-9]+ queued trials dropped, [0-9]+ running trials stopping"
wait_for 30 bash -c "[ \"\$(sqlite3 '$S/sweepd.db' \"SELECT state FROM jobs WHERE id = $jid\")\" = cancelled ]"
is "job stored as cancelled" "$(sqlite3 "$S/sweepd.db" "SELECT state FROM jobs WHERE id = $jid")" cancelled
ctl cancel "$jid" 2>"$T/err"; is "cancelling again exits 1" $? 1
like "cancelling again explained" "$(cat "$T/err")" '^sweepctl: invalid_state: '
out=$(timeout 30 "$BUILD/sweepctl" --socket "$SOCK" watch "$jid" 2>&1); rc=$?
is "watch of a cancelled job exits 0" "$rc" 0
like "watch of a cancelled job says so" "$out" "job $jid cancelled: "

# Relative paths: resolved by sweepctl against the job file's folder, whatever
# the caller's and the daemon's working directories; stdin ("-") against the
# caller's. The job runs, so the daemon found the data where the user meant.
RT=$(realpath "$T")
mkdir -p "$T/jobs" "$T/elsewhere"
cp -r "$T/data" "$T/jobs/data"
job rel grid '"space": {"lr": [0.01]}' ./data >"$T/jobs/rel.json"
sed -i 's/"val_fraction": 0.25}/"val_fraction": 0.25, "test": "data\/\/"}/; s/"epochs": 2/"epochs": 1/' \
    "$T/jobs/rel.json"
out=$(cd "$T/elsewhere" && "$BUILD/sweepctl" --socket "$SOCK" submit ../jobs/rel.json 2>&1); rc=$?
is "job with relative paths exits 0" "$rc" 0
like "it prints the usual line" "$out" '^submitted job [0-9]+ \(rel\): 1 trials, seed 3'
jid=$(printf '%s' "$out" | sed -n 's/^submitted job \([0-9]*\).*/\1/p')
is "and nothing else" "$(printf '%s\n' "$out" | sed 1d)" "follow it with: sweepctl watch $jid"
spec=$(sqlite3 "$S/sweepd.db" "SELECT spec_json FROM jobs WHERE id = $jid")
like "data.train stored absolute, against the job file's folder" "$spec" "\"train\": *\"$RT/jobs/data\""
like "data.test stored absolute" "$spec" "\"test\": *\"$RT/jobs/data\""
like "other values unchanged" "$spec" '"val_fraction": *0.25[,}].*"lr": *\[0.01\]'
out=$(ctl watch "$jid" 2>&1); rc=$?
is "the job with relative paths runs to the end" "$rc" 0
like "its trial completed" "$out" "job $jid done: 1 completed, 0 failed"
job relw grid '"space": {"lr": [0.01]}' "$T/data" >"$T/jobs/relw.json"
sed -i 's/"weights": null/"weights": "w\/missing.safetensors"/' "$T/jobs/relw.json"
out=$(cd "$T/jobs" && "$BUILD/sweepctl" --socket "$SOCK" submit - <"$T/jobs/relw.json" 2>&1); rc=$?
is "stdin job with a missing relative weights file exits 1" "$rc" 1
like "the daemon names model.weights, resolved against the current directory" "$out" \
    "^sweepctl: [a-z_]+: model\.weights: cannot read $RT/jobs/w/missing\.safetensors"
out=$(cd "$T/elsewhere" && "$BUILD/sweepctl" --socket "$SOCK" submit - <"$T/jobs/relw.json" 2>&1)
like "from another folder stdin resolves there" "$out" "cannot read $RT/elsewhere/w/missing\.safetensors"

out=$(ctl shutdown); rc=$?
is "shutdown exits 0" "$rc" 0
wait_for 30 bash -c "! kill -0 $D 2>/dev/null"
check "daemon exited" bash -c "! kill -0 $D 2>/dev/null"
ctl ping 2>"$T/err"; is "ping after shutdown exits 3" $? 3

done_testing
