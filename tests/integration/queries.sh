#!/bin/bash
# sql/queries.sql against a database with three jobs (issue 20): run whole
# for :job 2, every query's result equals the one it gives on a copy that
# holds job 2 alone (so no query shows or counts another job's rows), every
# result comes after its title and has rows, the ranking and the summaries
# follow job 2's own objective (val_loss, minimized), continuous parameters
# are bucketed (4 log-scale ranges for log_uniform weight_decay, 4 linear
# ones for uniform dropout), and `.read` with `.parameter set` prints the same.
. "$(dirname "$0")/lib.sh"

Q=$ROOT/sql/queries.sql
DB=$T/three.db
sqlite3 "$DB" <"$ROOT/sql/schema.sql" || { not_ok "schema loads"; done_testing; }

# Three jobs of 12 trials: 8 completed, 1 failed, 1 running, 1 pruned, 1 queued.
# Job 2 minimizes val_loss; jobs 1 and 3 maximize val_accuracy.
{
    echo "BEGIN;"
    for j in 1 2 3; do
        metric=val_accuracy goal=maximize
        [ $j = 2 ] && metric=val_loss goal=minimize
        spec='{"space":{"lr":[0.01,0.1],"dropout":{"uniform":[0.0,0.5]},"weight_decay":{"log_uniform":[0.00001,0.001]},"freeze":["none","layer2"]}}'
        echo "INSERT INTO jobs(id, name, spec_json, strategy, state, objective_metric, objective_goal,"
        echo "  submitted_at, trials_total) VALUES ($j, 'job$j', '$spec', 'random', 'running',"
        echo "  '$metric', '$goal', '2026-12-01T10:00:00.000Z', 12);"
        for n in $(seq 0 11); do
            id=$((j * 100 + n))
            case $n in 8) st=failed ;; 9) st=running ;; 10) st=pruned ;; 11) st=queued ;; *) st=completed ;; esac
            lr=$([ $((n % 2)) = 0 ] && echo 0.01 || echo 0.1)
            dropout=$(awk -v n=$n -v j=$j 'BEGIN { printf "%.4f", (n * 37 + j * 11) % 50 / 100.0 }')
            wd=$(awk -v n=$n -v j=$j 'BEGIN { printf "%.6g", 0.00001 * 10 ^ (((n * 7 + j * 3) % 20) / 10.0) }')
            fr=$([ $((n % 3)) = 0 ] && echo layer2 || echo none)
            acc=$(awk -v n=$n -v j=$j 'BEGIN { printf "%.4f", 0.5 + ((n * 13 + j * 5) % 40) / 100.0 }')
            loss=$(awk -v n=$n -v j=$j 'BEGIN { printf "%.4f", 0.2 + ((n * 17 + j * 3) % 30) / 100.0 }')
            started="'2026-12-01T10:0$((n % 10)):00.000Z'" finished="'2026-12-01T10:1$((n % 10)):0$j.000Z'"
            res="$acc, $loss"
            case $st in
            running) finished=NULL res="NULL, NULL" ;;
            queued) started=NULL finished=NULL res="NULL, NULL" ;;
            failed | pruned) res="NULL, NULL" ;;
            esac
            echo "INSERT INTO trials(id, job_id, number, state, lr, batch_size, epochs, dropout,"
            echo "  weight_decay, params_json, seed, started_at, finished_at, val_accuracy, val_loss,"
            echo "  exit_code, error, pruned_epoch) VALUES ($id, $j, $n, '$st', $lr, 16, 4, $dropout, $wd,"
            echo "  json_object('lr', $lr, 'dropout', $dropout, 'weight_decay', $wd, 'freeze', '$fr',"
            echo "              'epochs', 4, 'augment', json('false')),"
            echo "  $n, $started, $finished, $res,"
            case $st in
            failed) echo "  3, 'data_error: job $j trial $n', NULL);" ;;
            pruned) echo "  7, 'pruned at epoch 2: median: job $j', 2);" ;;
            *) echo "  NULL, NULL, NULL);" ;;
            esac
            if [ $st != queued ]; then
                for e in 1 2; do
                    echo "INSERT INTO trial_metrics(trial_id, epoch, train_loss, val_loss, val_accuracy,"
                    echo "  val_f1, lr, seconds) VALUES ($id, $e, 0.$j$e, $loss, $acc, $acc, $lr, $j.$e);"
                done
            fi
        done
    done
    echo "COMMIT;"
} >"$T/rows.sql"
sqlite3 "$DB" <"$T/rows.sql" || { not_ok "rows load"; done_testing; }
is "three jobs of 12 trials" "$(sqlite3 "$DB" "SELECT count(DISTINCT job_id) || '/' || count(*) FROM trials")" "3/36"

cp "$DB" "$T/alone.db"
sqlite3 "$T/alone.db" "DELETE FROM trial_metrics WHERE trial_id NOT IN (SELECT id FROM trials WHERE job_id = 2);
                       DELETE FROM trials WHERE job_id != 2; DELETE FROM jobs WHERE id != 2;"
is "the copy holds job 2 alone" "$(sqlite3 "$T/alone.db" "SELECT group_concat(DISTINCT job_id) FROM trials")" 2

# run DB [sqlite3 flags]: the whole file for :job 2. The seconds a running trial
# has run (since 2026-12-01, 5+ digits) change between two runs: masked.
run() {
    local db=$1
    shift
    sqlite3 "$@" -cmd ".parameter set :job 2" "$db" <"$Q" 2>&1 | sed -E 's/(^|[^0-9.])[0-9]{5,}(\.0)?\b/\1SECONDS/g'
}
three=$(run "$DB" -header -column)
alone=$(run "$T/alone.db" -header -column)
is "the file runs without errors" "$(echo "$three" | grep -cE '^(Parse|Runtime) error|^Error')" 0
is "every query gives the same result with the other two jobs present" "$three" "$alone"
[ "$three" = "$alone" ] || diff <(echo "$three") <(echo "$alone") | sed 's/^/# /' | head -20

plain=$(run "$DB")
is "nine titled results" "$(echo "$plain" | grep -c '^== [1-9]\. ')" 9
# Each title is followed by at least one row before the next title.
empty=$(echo "$plain" | awk '/^== / { if (t && !rows) print t; t = $0; rows = 0; next } { rows++ }
                             END { if (t && !rows) print t }')
is "every query has rows for job 2" "$empty" ""
like "title 1 names the job's objective" "$plain" '^== 1\. Best trials of job 2, ranked by val_loss \(minimize\)$'

# 1. ranks by job 2's val_loss, lowest first.
want=$(sqlite3 "$DB" "SELECT group_concat(number, ' ') FROM (SELECT number FROM trials WHERE job_id = 2
                      AND state = 'completed' ORDER BY val_loss, number)")
got=$(echo "$plain" | awk '/^== 1\./ { on = 1; next } /^== / { on = 0 } on' | cut -d'|' -f2 | tr '\n' ' ')
is "best trials: by val_loss ascending, ties to the lower number" "${got% }" "$want"
# 4. the effect of each parameter.
sect4=$(echo "$plain" | awk '/^== 4\./ { on = 1; next } /^== / { on = 0 } on')
is "effect: 4 or fewer ranges for weight_decay" "$(echo "$sect4" | grep -c '^weight_decay|')" 4
like "effect: weight_decay ranges are log-scale" "$sect4" '^weight_decay\|1e-05 \.\. 3\.2e-05\|'
like "effect: dropout ranges are linear" "$sect4" '^dropout\|0 \.\. 0\.125\|'
check "effect: at most 4 dropout ranges" test "$(echo "$sect4" | grep -c '^dropout|')" -le 4
is "effect: the listed lr values as they are" "$(echo "$sect4" | grep '^lr|' | cut -d'|' -f2 | sort | tr '\n' ' ')" "0.01 0.1 "
is "effect: trials per parameter add up to the completed ones" \
    "$(echo "$sect4" | awk -F'|' '$1 == "weight_decay" { s += $3 } END { print s }')" 8
want=$(sqlite3 "$DB" "SELECT round(MIN(val_loss), 4) FROM trials WHERE job_id = 2 AND state = 'completed' AND lr = 0.1")
is "effect: best is the minimum for a minimized objective" "$(echo "$sect4" | grep '^lr|0.1|' | cut -d'|' -f5)" "$want"
like "failed trials: job 2's only" "$(echo "$plain" | awk '/^== 5\./ { on = 1; next } /^== / { on = 0 } on')" '^8\|208\|0\|3\|data error\|data_error: job 2 trial 8\|'
like "pruned: job 2's, with what it saved" "$(echo "$plain" | awk '/^== 9\./ { on = 1; next } /^== / { on = 0 } on')" \
    '^10\|210\|0\.01\|2\|4\|2\|4\.3\|pruned at epoch 2: median: job 2$'

# .read inside the shell, with .parameter set, prints the same.
printf '.parameter set :job 2\n.read %s\n' "$Q" | sqlite3 "$DB" 2>&1 | sed -E 's/(^|[^0-9.])[0-9]{5,}(\.0)?\b/\1SECONDS/g' >"$T/read.out"
is ".read gives the same" "$(cat "$T/read.out")" "$plain"
done_testing
