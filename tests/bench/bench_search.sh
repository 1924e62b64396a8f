#!/bin/bash
# bench_search — a whole search, not one trial: the same 12-trial random
# search run by sweepd (2 workers x 1 thread, the shared feature cache on, as
# a daemon runs it) and by Optuna + PyTorch as Optuna's documentation
# recommends for parallel runs (tests/bench/optuna_search.py: two processes
# sharing one SQLite storage, RandomSampler with a seed, PyTorch on 1 thread
# each), same recipe: resnet18 weights exported by torch itself, input 64,
# lr log-uniform 1e-3..1e-1, dropout uniform 0..0.5, weight decay log-uniform
# 1e-5..1e-2, freeze layer2 or layer3 (frozen batchnorm in eval mode), SGD
# momentum 0.9, constant lr, batch 64, EPOCHS epochs, no augmentation, on
# Fashion-MNIST (IMAGES_PER_CLASS x 10 training images imported with
# `sweep-worker import-idx`, a fifth of that from the test set as the given
# validation folder). Wall times: sweepd from submit to the job's end (JPEG
# decoding included), Optuna from starting its processes to their end
# (decoding included). Prints each side's wall time and best validation
# accuracy and the ratio; targets (issue 16): >= 3x, best accuracy within 1
# point. A small mode proves it works: TRIALS=4 IMAGES_PER_CLASS=20 EPOCHS=1.
# Environment: TRIALS (12), IMAGES_PER_CLASS (300), EPOCHS (3), KEEP=1 keeps
# the scratch directory.
set -u
ROOT=${SWEEP_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${SWEEP_BUILD:-$ROOT/build}
PY=/usr/bin/python3
TRIALS=${TRIALS:-12}
PER=${IMAGES_PER_CLASS:-300}
EPOCHS=${EPOCHS:-3}
FM=/usr/share/datasets/fashion-mnist
T=$(mktemp -d "${TMPDIR:-/tmp}/bench_search.XXXXXX")
DPID=
cleanup() {
    [ -n "$DPID" ] && kill -KILL "$DPID" 2>/dev/null
    [ "${KEEP:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT

for b in "$BUILD/sweepd" "$BUILD/sweep-worker"; do
    [ -x "$b" ] || { echo "bench_search: $b not built"; exit 1; }
done
if ! $PY -c 'import torch, torchvision, optuna' 2>/dev/null; then
    echo "bench_search: python3-torch/torchvision/optuna not installed; skipping"
    exit 0
fi
if [ ! -r "$FM/train-images-idx3-ubyte.gz" ]; then
    echo "bench_search: $FM missing (Debian package dataset-fashion-mnist); skipping"
    exit 0
fi
W=$BUILD/sweep-worker
"$W" import-idx "$FM/train-images-idx3-ubyte.gz" "$FM/train-labels-idx1-ubyte.gz" "$T/train" \
    --limit "$PER" >/dev/null 2>&1 || exit 1
"$W" import-idx "$FM/t10k-images-idx3-ubyte.gz" "$FM/t10k-labels-idx1-ubyte.gz" "$T/val" \
    --limit $((PER / 5 > 0 ? PER / 5 : 1)) >/dev/null 2>&1 || exit 1
$PY "$ROOT/tests/bench/torch_trial.py" export --out "$T/resnet18.safetensors" --seed 1 || exit 1
ntrain=$(find "$T/train" -name '*.jpg' | wc -l)
nval=$(find "$T/val" -name '*.jpg' | wc -l)
echo "bench_search: $TRIALS random trials, resnet18 @64, $ntrain train / $nval val images," \
    "$EPOCHS epochs, batch 64, 2 workers x 1 thread"

# ---- sweepd ------------------------------------------------------------------
SOCK=$T/var/sweepd.sock
mkdir -p "$T/var"
"$BUILD/sweepd" --foreground --socket "$SOCK" --db "$T/var/sweepd.db" --state-dir "$T/var" \
    --workers 2 --threads-per-worker 1 --log-level warn 2>"$T/sweepd.log" &
DPID=$!
for _ in $(seq 1 100); do "$BUILD/sweepctl" --socket "$SOCK" ping >/dev/null 2>&1 && break; sleep 0.1; done
cat >"$T/job.json" <<EOF
{"name": "bench-search",
 "data": {"train": "$T/train", "val": "$T/val"},
 "model": {"arch": "resnet18", "weights": "$T/resnet18.safetensors", "input_size": 64},
 "strategy": "random", "trials": $TRIALS,
 "space": {"lr": {"log_uniform": [0.001, 0.1]}, "dropout": {"uniform": [0.0, 0.5]},
           "weight_decay": {"log_uniform": [0.00001, 0.01]}, "freeze": ["layer2", "layer3"]},
 "fixed": {"epochs": $EPOCHS, "batch_size": 64, "optimizer": "sgd", "momentum": 0.9,
           "lr_schedule": "constant", "augment": false},
 "objective": {"metric": "val_accuracy", "goal": "maximize"},
 "max_parallel": 2, "max_retries": 0, "seed": 1}
EOF
job_state() {
    $PY -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); r=c.execute("SELECT state FROM jobs WHERE id=1").fetchone(); print(r[0] if r else "")' "$T/var/sweepd.db" 2>/dev/null
}
t0=$(date +%s.%N)
"$BUILD/sweepctl" --socket "$SOCK" submit "$T/job.json" >"$T/submit.out" || {
    echo "bench_search: submit failed"; cat "$T/submit.out"; exit 1; }
while :; do
    case "$(job_state)" in done | failed | cancelled) break ;; esac
    kill -0 "$DPID" 2>/dev/null || { echo "bench_search: sweepd died"; tail "$T/sweepd.log"; exit 1; }
    sleep 0.2
done
t1=$(date +%s.%N)
read -r sw_state sw_done sw_best < <($PY - "$T/var/sweepd.db" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
state = c.execute("SELECT state FROM jobs WHERE id=1").fetchone()[0]
done = c.execute("SELECT count(*) FROM trials WHERE job_id=1 AND state='completed'").fetchone()[0]
best = c.execute("SELECT max(val_accuracy) FROM trials WHERE job_id=1").fetchone()[0] or 0
print(state, done, "%.4f" % best)
EOF
)
kill -TERM "$DPID" 2>/dev/null
wait "$DPID" 2>/dev/null
DPID=
feats=$(cat "$T"/var/trials/*/events.ndjson 2>/dev/null | grep -o '"features":"[a-z]*"' | sort | uniq -c |
    awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2}' | tr -d '"' | sed 's/features://g')
sw=$(echo "$t1 - $t0" | bc -l)
if [ "$sw_state" != done ] || [ "$sw_done" != "$TRIALS" ]; then
    echo "bench_search: sweepd job $sw_state with $sw_done of $TRIALS trials completed"
    tail -5 "$T/sweepd.log"
    exit 1
fi

# ---- Optuna + PyTorch ---------------------------------------------------------
STORAGE=sqlite:///$T/optuna.db
$PY -c 'import optuna,sys; optuna.logging.set_verbosity(optuna.logging.WARNING); optuna.create_study(study_name="bench", storage=sys.argv[1], direction="maximize")' \
    "$STORAGE" || exit 1
half=$((TRIALS / 2))
o0=$(date +%s.%N)
for i in 0 1; do
    n=$half
    [ $i = 1 ] && n=$((TRIALS - half))
    $PY "$ROOT/tests/bench/optuna_search.py" --storage "$STORAGE" --study bench --worker $i \
        --trials $n --train "$T/train" --val "$T/val" --weights "$T/resnet18.safetensors" \
        --epochs "$EPOCHS" --batch 64 --input 64 --seed 1 2>"$T/optuna_$i.log" &
    eval "op$i=\$!"
done
wait "$op0"
r0=$?
wait "$op1"
r1=$?
o1=$(date +%s.%N)
if [ $r0 != 0 ] || [ $r1 != 0 ]; then
    echo "bench_search: an Optuna process failed"
    tail -3 "$T"/optuna_*.log
    exit 1
fi
read -r op_done op_best < <($PY - "$STORAGE" <<'EOF'
import sys, optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
s = optuna.load_study(study_name="bench", storage=sys.argv[1])
done = [t for t in s.trials if t.state == optuna.trial.TrialState.COMPLETE]
print(len(done), "%.4f" % max(t.value for t in done))
EOF
)
op=$(echo "$o1 - $o0" | bc -l)
printf 'bench_search: sweepd         %8.1f s  best val acc %s  (%s trials; features: %s)\n' \
    "$sw" "$sw_best" "$sw_done" "$feats"
printf 'bench_search: optuna+pytorch %8.1f s  best val acc %s  (%s trials)\n' "$op" "$op_best" "$op_done"
printf 'bench_search: ratio %.2fx (target >= 3x), best accuracy difference %+.1f points (target within 1)\n' \
    "$(echo "$op / $sw" | bc -l)" "$(echo "($sw_best - $op_best) * 100" | bc -l)"
