#!/bin/bash
# How long `sweepctl report` takes on a large job: generates a database with
# one random-search job of BENCH_REPORT_TRIALS trials (default 10,000; 70%
# completed, 20% pruned, 10% failed, BENCH_REPORT_EPOCHS epochs each, default
# 10, five searched parameters: lr and weight_decay log_uniform, dropout
# uniform, freeze and batch_size lists) and the evaluated trial's
# eval.ndjson (10 classes), all in SQL through the sqlite3 shell, then times
# the report (best of BENCH_REPORT_RUNS runs, default 3) and prints the
# page's size. A figure, not a test: it never fails on time (the goal is
# under a second for 10,000 trials). Needs build/sweepctl and sqlite3.
# BENCH_REPORT_OUT=FILE keeps a copy of the page.
#   BENCH_REPORT_TRIALS=500 tests/bench/bench_report.sh   # a quick run
set -euo pipefail
ROOT=${SWEEP_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${SWEEP_BUILD:-$ROOT/build}
N=${BENCH_REPORT_TRIALS:-10000}
EPOCHS=${BENCH_REPORT_EPOCHS:-10}
RUNS=${BENCH_REPORT_RUNS:-3}
[ -x "$BUILD/sweepctl" ] || { echo "bench_report: $BUILD/sweepctl missing; run make" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "bench_report: sqlite3 missing (etc/install-deps)" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/bench_report.XXXXXX")
trap 'rm -rf "$W"' EXIT
DB=$W/sweepd.db
mkdir -p "$W/best"

# u(i, k): a fixed pseudo-random number in [0, 1) for trial i and stream k.
gen_start=$SECONDS
sqlite3 "$DB" <"$ROOT/sql/schema.sql"
sqlite3 "$DB" >/dev/null <<EOF
PRAGMA journal_mode = WAL;
BEGIN;
INSERT INTO jobs (id, name, spec_json, strategy, state, submitted_at, started_at, finished_at,
                  trials_total, seed)
VALUES (1, 'bench-report', '{"name":"bench-report","strategy":"random","trials":$N,
  "space":{"lr":{"log_uniform":[0.0001,0.1]},"weight_decay":{"log_uniform":[1e-06,0.01]},
           "dropout":{"uniform":[0,0.5]},"freeze":["none","layer1","layer2","layer3","all"],
           "batch_size":[16,32,64]},
  "objective":{"metric":"val_accuracy","goal":"maximize"}}', 'random', 'done',
  '2026-12-01T00:00:00.000Z', '2026-12-01T00:00:01.000Z', '2026-12-02T00:00:00.000Z', $N, 1);
CREATE TEMP TABLE g AS
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $N - 1)
SELECT i,
       ((i * 2654435761) % 1000003) / 1000003.0 AS u1,
       ((i * 40503 + 7919) % 1000033) / 1000033.0 AS u2,
       ((i * 69069 + 12345) % 999983) / 999983.0 AS u3,
       ((i * 1103515245 + 12345) % 1000039) / 1000039.0 AS u4,
       ((i * 134775813 + 1) % 999979) / 999979.0 AS u5
  FROM n;
INSERT INTO trials (id, job_id, number, state, lr, batch_size, epochs, dropout, weight_decay,
                    params_json, seed, attempt, started_at, finished_at, best_epoch, val_accuracy,
                    val_loss, exit_code, error, out_dir, last_epoch, pruned_epoch)
SELECT i + 1, 1, i,
       CASE WHEN u5 < 0.7 THEN 'completed' WHEN u5 < 0.9 THEN 'pruned' ELSE 'failed' END,
       exp(ln(0.0001) + u1 * ln(1000)), 16 << (i % 3), $EPOCHS, u3 * 0.5,
       exp(ln(1e-6) + u2 * ln(1e4)),
       json_object('lr', exp(ln(0.0001) + u1 * ln(1000)), 'batch_size', 16 << (i % 3),
                   'epochs', $EPOCHS, 'dropout', u3 * 0.5,
                   'weight_decay', exp(ln(1e-6) + u2 * ln(1e4)),
                   'freeze', json_extract('["none","layer1","layer2","layer3","all"]',
                                          '\$[' || (i % 5) || ']')),
       i, 0, strftime('%Y-%m-%dT%H:%M:%fZ', 1764547200 + i * 8, 'unixepoch'),
       strftime('%Y-%m-%dT%H:%M:%fZ', 1764547200 + i * 8 + 7 + (i % 13), 'unixepoch'),
       CASE WHEN u5 < 0.7 THEN $EPOCHS END,
       CASE WHEN u5 < 0.7 THEN 0.9 - 0.05 * abs(ln(exp(ln(0.0001) + u1 * ln(1000)) / 0.01))
                               - 0.02 * (i % 5) - 0.1 * u3 + 0.03 * u4 END,
       CASE WHEN u5 < 0.7 THEN 0.3 + 0.1 * u4 END,
       CASE WHEN u5 < 0.7 THEN 0 WHEN u5 < 0.9 THEN 7 ELSE 5 END,
       CASE WHEN u5 >= 0.9 THEN 'diverged: loss is not finite at epoch 2'
            WHEN u5 >= 0.7 THEN 'pruned at epoch ' || (1 + i % 4) ||
                 ': median: best val_accuracy is worse than the median' END,
       '$W/t' || i, CASE WHEN u5 < 0.7 THEN $EPOCHS WHEN u5 < 0.9 THEN 1 + i % 4 ELSE 2 END,
       CASE WHEN u5 >= 0.7 AND u5 < 0.9 THEN 1 + i % 4 END
  FROM g;
WITH RECURSIVE e(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM e WHERE k < $EPOCHS)
INSERT INTO trial_metrics (trial_id, epoch, train_loss, train_accuracy, val_loss, val_accuracy,
                           lr, seconds)
SELECT t.id, e.k, 2.0 / (1 + e.k), 1 - 0.5 / (1 + e.k), 2.2 / (1 + e.k),
       coalesce(t.val_accuracy, 0.5) * (1 - 0.3 / (e.k + 1)), t.lr, 1.5
  FROM trials t JOIN e ON e.k <= t.last_epoch;
UPDATE trials SET test_accuracy = val_accuracy - 0.01, out_dir = '$W/best'
 WHERE id = (SELECT id FROM best_trials WHERE job_id = 1 ORDER BY rank, number LIMIT 1);
COMMIT;
EOF
# The evaluated trial's test-set result, as sweep-worker eval writes it.
/usr/bin/python3 - "$W/best/eval.ndjson" <<'EOF' 2>/dev/null ||
import json, sys
n = 10
cm = [[(90 if i == j else (i + 2 * j) % 4) for j in range(n)] for i in range(n)]
json.dump({"loss": 0.4, "accuracy": 0.87, "classes": ["class %d" % i for i in range(n)],
           "confusion_matrix": cm, "images": sum(map(sum, cm))}, open(sys.argv[1], "w"))
EOF
    echo '{"accuracy":0.87,"classes":["a","b"],"confusion_matrix":[[9,1],[2,8]],"images":20}' \
        >"$W/best/eval.ndjson"
echo "generated $N trials x $EPOCHS epochs in $((SECONDS - gen_start)) s ($(du -h "$DB" | cut -f1) database)"

best=""
for r in $(seq 1 "$RUNS"); do
    s=$(date +%s.%N)
    "$BUILD/sweepctl" report 1 --db "$DB" -o "$W/report.html" >/dev/null
    e=$(date +%s.%N)
    t=$(echo "$e - $s" | awk '{print $1 - $3}')
    echo "run $r: $t s"
    if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN{exit !(a < b)}'; then best=$t; fi
done
size=$(wc -c <"$W/report.html")
read_s=$(sed -n 's/.*(read in \([0-9.]*\) s).*/\1/p' "$W/report.html")
echo "sweepctl report, $N trials: best of $RUNS runs $best s (of which reading the database $read_s s); page $((size / 1024)) KiB"
[ -z "${BENCH_REPORT_OUT:-}" ] || cp "$W/report.html" "$BENCH_REPORT_OUT"
