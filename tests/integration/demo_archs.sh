#!/bin/bash
# `make demo-archs` in miniature (issue 18): etc/demo with DEMO_ARCHS on a
# tiny slice of Fashion-MNIST pretrains a narrow base of resnet18, vgg11_bn
# and inception_v3 from scratch, then one grid job searches the architecture
# (space.arch) with the learning rate: every trial runs the architecture its
# params name, from that architecture's base, and the database ranks them.
source "$(dirname "$0")/lib.sh"

VAR=$T/var
DB=$VAR/sweepd.db
q() { sqlite3 "$DB" "$1"; }
out=$(SWEEP_BUILD=$BUILD DEMO_VAR=$VAR DEMO_PER_CLASS=6 DEMO_EVAL_PER_CLASS=6 \
    DEMO_PRETRAIN_PER_CLASS=12 DEMO_PRETRAIN_EPOCHS=1 DEMO_EPOCHS=1 DEMO_TRIALS=2 \
    DEMO_SCRATCH_LR=0.01 DEMO_WIDTH=4 DEMO_WORKERS=2 DEMO_ARCH_INPUT=75 \
    DEMO_ARCHS="resnet18 vgg11_bn inception_v3" "$ROOT/etc/demo" </dev/null 2>&1)
rc=$?
is "demo with DEMO_ARCHS exits 0" "$rc" 0
[ "$rc" = 0 ] || printf '%s\n' "$out" | tail -n 30 | sed 's/^/# /'

for a in resnet18 vgg11_bn inception_v3; do
    check "base of $a written" test -s "$VAR/models/base-$a-75.safetensors"
done
job=$(printf '%s\n' "$out" | sed -n 's/^job \([0-9]*\): fine-tune each base.*/\1/p')
is "the architecture job is the third" "$job" 3
is "it is done" "$(q "SELECT state FROM jobs WHERE id = ${job:-0}")" done
is "3 architectures x 2 learning rates, all completed" \
    "$(q "SELECT group_concat(a || ':' || n, ' ') FROM (SELECT json_extract(params_json, '\$.arch') AS a,
          COUNT(*) AS n FROM trials WHERE job_id = ${job:-0} AND state = 'completed' GROUP BY a ORDER BY a)")" \
    "inception_v3:2 resnet18:2 vgg11_bn:2"
# Each trial ran its own architecture from its own base (the spec it was given).
bad=0
for id in $(q "SELECT id FROM trials WHERE job_id = ${job:-0}"); do
    a=$(q "SELECT json_extract(params_json, '\$.arch') FROM trials WHERE id = $id")
    spec=$VAR/trials/$id/trial.json
    grep -q "\"arch\":\"$a\"" "$spec" && grep -q "base-$a-75.safetensors" "$spec" || {
        bad=$((bad + 1))
        echo "# trial $id ($a): $(head -c 400 "$spec")"
    }
done
is "every trial's spec names its arch and that arch's base" "$bad" 0
ranked=$(printf '%s\n' "$out" | sed -n '/Architectures ranked/,/^demo: architecture search/p' |
    grep -cE '^(resnet18|vgg11_bn|inception_v3) +2 +0\.[0-9]{4} ')
is "the ranking lists the three architectures" "$ranked" 3
top=$(q "SELECT json_extract(params_json, '\$.arch') FROM best_trials WHERE job_id = ${job:-0} AND rank = 1")
like "the summary names the best trial" "$out" "demo: architecture search \\(job $job\\): best trial [0-9]+ val_accuracy"
is "the best trial has a test accuracy" \
    "$(q "SELECT test_accuracy IS NOT NULL FROM best_trials WHERE job_id = ${job:-0} AND rank = 1")" 1
check "the best trial is one of the three" test -n "$top"
done_testing
