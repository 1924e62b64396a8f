-- sweepd — example queries for the sqlite3 shell, each about one job, :job.
--
-- Run the whole file for job 1 (each result comes after a line naming it):
--   sqlite3 -header -column var/sweepd.db -cmd ".parameter set :job 1" < sql/queries.sql
-- or inside the sqlite3 shell:
--   .parameter set :job 1
--   .read sql/queries.sql
-- or copy one query and put the job id in for :job. Without :job set, every
-- query returns nothing. Reading is always safe while sweepd runs: the
-- database is in WAL mode and sweepd is its only writer. Tables and views:
-- sql/schema.sql.
--
-- Every query is scoped to the job (WHERE job_id = :job) and ranks by the
-- job's own objective (jobs.objective_metric and objective_goal; the view
-- best_trials holds it as objective_value, rank 1 best, ties to the lower
-- trial number). Parameters that have no column of their own (freeze,
-- optimizer, augment, momentum, lr_schedule, ...) are in trials.params_json;
-- read them with json_extract(params_json, '$.freeze').

SELECT '== 1. Best trials of job ' || id || ', ranked by ' || objective_metric || ' ('
       || objective_goal || ')' AS title
  FROM jobs WHERE id = :job;
SELECT rank, number, id AS trial, lr, batch_size, epochs, round(dropout, 3) AS dropout,
       printf('%.2e', weight_decay) AS weight_decay,
       json_extract(params_json, '$.freeze') AS freeze,
       round(objective_value, 4) AS objective, round(val_accuracy, 4) AS val_accuracy,
       round(val_loss, 4) AS val_loss, best_epoch, round(test_accuracy, 4) AS test_accuracy
  FROM best_trials
 WHERE job_id = :job AND rank <= 10
 ORDER BY rank;

SELECT '== 2. Learning curve of job ' || :job || '''s best trial (rank 1)' AS title
 WHERE EXISTS (SELECT 1 FROM jobs WHERE id = :job);
SELECT m.trial_id AS trial, m.epoch,
       round(m.train_loss, 4) AS train_loss, round(m.train_accuracy, 4) AS train_acc,
       round(m.val_loss, 4) AS val_loss, round(m.val_accuracy, 4) AS val_acc,
       round(m.val_f1, 4) AS val_f1, m.lr, round(m.seconds, 1) AS seconds
  FROM trial_metrics m
 WHERE m.trial_id = (SELECT id FROM best_trials WHERE job_id = :job AND rank = 1)
 ORDER BY m.epoch;

-- 3. Every trial's curve side by side: the objective's metric per epoch
--    (test_accuracy has no per-epoch value: val_accuracy is shown for it).
SELECT '== 3. ' || (CASE objective_metric WHEN 'test_accuracy' THEN 'val_accuracy'
                    ELSE objective_metric END) || ' by epoch, every trial of job ' || id AS title
  FROM jobs WHERE id = :job;
SELECT t.number, t.id AS trial, t.state,
       group_concat(printf('%.3f', CASE j.objective_metric
                                       WHEN 'val_loss'      THEN m.val_loss
                                       WHEN 'val_precision' THEN m.val_precision
                                       WHEN 'val_recall'    THEN m.val_recall
                                       WHEN 'val_f1'        THEN m.val_f1
                                       ELSE m.val_accuracy END), ' ') AS by_epoch
  FROM trials t
  JOIN jobs j ON j.id = t.job_id
  JOIN (SELECT * FROM trial_metrics ORDER BY trial_id, epoch) m ON m.trial_id = t.id
 WHERE t.job_id = :job
 GROUP BY t.id
 ORDER BY t.number;

-- 4. The effect of each hyperparameter on the objective: for every parameter
--    that varies in the job, each value (lists, strings, booleans) or range
--    (a parameter drawn from a distribution: its range cut into 4 equal
--    buckets, equal in log scale for log_uniform) with the number of
--    completed trials in it and their mean and best objective, best first
--    for values, in order for ranges. json_each walks params_json, so this
--    covers every parameter, searched or fixed.
SELECT '== 4. Effect of each hyperparameter on ' || objective_metric || ' (' || objective_goal
       || '), completed trials of job ' || id AS title
  FROM jobs WHERE id = :job;
WITH p AS (
    SELECT b.objective_value AS v, j.objective_goal AS goal, e.key AS param, e.value AS value,
           e.type AS type,
           json_extract(j.spec_json, '$.space.' || e.key || '.log_uniform') IS NOT NULL AS logs,
           coalesce(json_extract(j.spec_json, '$.space.' || e.key || '.log_uniform[0]'),
                    json_extract(j.spec_json, '$.space.' || e.key || '.uniform[0]'),
                    json_extract(j.spec_json, '$.space.' || e.key || '.int_uniform[0]')) AS lo,
           coalesce(json_extract(j.spec_json, '$.space.' || e.key || '.log_uniform[1]'),
                    json_extract(j.spec_json, '$.space.' || e.key || '.uniform[1]'),
                    json_extract(j.spec_json, '$.space.' || e.key || '.int_uniform[1]')) AS hi
      FROM best_trials b
      JOIN jobs j ON j.id = b.job_id, json_each(b.params_json) e
     WHERE b.job_id = :job
), bucketed AS (
    SELECT *, CASE WHEN lo IS NULL OR hi <= lo THEN NULL
                   WHEN logs THEN min(3, max(0, CAST(4 * ln(value / lo) / ln(hi / lo) AS INTEGER)))
                   ELSE min(3, max(0, CAST(4 * (value - lo) / (hi - lo) AS INTEGER))) END AS k
      FROM p
), labelled AS (
    SELECT *, CASE WHEN k IS NULL THEN (CASE type WHEN 'true' THEN 'true' WHEN 'false'
                                        THEN 'false' ELSE CAST(value AS TEXT) END)
                   WHEN logs THEN printf('%.2g .. %.2g', lo * exp(k * ln(hi / lo) / 4),
                                         lo * exp((k + 1) * ln(hi / lo) / 4))
                   ELSE printf('%.3g .. %.3g', lo + k * (hi - lo) / 4,
                               lo + (k + 1) * (hi - lo) / 4) END AS label
      FROM bucketed
), varying AS (
    SELECT param FROM labelled GROUP BY param HAVING COUNT(DISTINCT label) > 1
)
SELECT param, label AS value_or_range, COUNT(*) AS trials, round(AVG(v), 4) AS mean,
       round(CASE WHEN goal = 'maximize' THEN MAX(v) ELSE MIN(v) END, 4) AS best
  FROM labelled JOIN varying USING (param)
 GROUP BY param, label
 ORDER BY param, k, CASE WHEN goal = 'maximize' THEN -AVG(v) ELSE AVG(v) END, label;

-- 5. Failed trials and why: the worker's exit code (2 bad spec, 3 data error,
--    4 model error, 5 diverged, 6 out of memory, 7 stopped by signal, 8 no
--    space, negative = killed by that signal), the error message and the
--    attempt count.
SELECT '== 5. Failed trials of job ' || :job || ' and why' AS title
 WHERE EXISTS (SELECT 1 FROM jobs WHERE id = :job);
SELECT t.number, t.id AS trial, t.attempt, t.exit_code,
       CASE WHEN t.exit_code IS NULL THEN 'see error' ELSE CASE t.exit_code
           WHEN 2 THEN 'bad spec' WHEN 3 THEN 'data error' WHEN 4 THEN 'model error'
           WHEN 5 THEN 'diverged' WHEN 6 THEN 'out of memory' WHEN 7 THEN 'stopped'
           WHEN 8 THEN 'no space'
           ELSE CASE WHEN t.exit_code < 0 THEN 'killed by signal ' || -t.exit_code
                     ELSE 'crash' END
       END END AS reason,
       t.error, t.lr, t.batch_size, t.finished_at
  FROM trials t
 WHERE t.job_id = :job AND t.state = 'failed'
 ORDER BY t.finished_at DESC, t.number;

-- 6. Running trials with their latest finished epoch, its objective value and
--    how long they have run.
SELECT '== 6. Running trials of job ' || :job AS title
 WHERE EXISTS (SELECT 1 FROM jobs WHERE id = :job);
SELECT t.number, t.id AS trial, t.pid, t.started_at,
       m.epoch AS last_epoch, t.epochs,
       round(CASE j.objective_metric
                 WHEN 'val_loss'      THEN m.val_loss
                 WHEN 'val_precision' THEN m.val_precision
                 WHEN 'val_recall'    THEN m.val_recall
                 WHEN 'val_f1'        THEN m.val_f1
                 ELSE m.val_accuracy END, 4) AS last_objective,
       round((julianday('now') - julianday(t.started_at)) * 86400) AS running_seconds
  FROM trials t
  JOIN jobs j ON j.id = t.job_id
  LEFT JOIN trial_metrics m
         ON m.trial_id = t.id
        AND m.epoch = (SELECT MAX(epoch) FROM trial_metrics WHERE trial_id = t.id)
 WHERE t.job_id = :job AND t.state = 'running'
 ORDER BY t.number;

-- 7. Progress of the job: trial counts by state (view job_progress).
SELECT '== 7. Progress of job ' || :job AS title
 WHERE EXISTS (SELECT 1 FROM jobs WHERE id = :job);
SELECT * FROM job_progress WHERE job_id = :job;

-- 8. Time spent: trials of the job that ran, by final state, with their mean
--    and total run time in seconds and the epochs they ran.
SELECT '== 8. Time spent by the trials of job ' || :job AS title
 WHERE EXISTS (SELECT 1 FROM jobs WHERE id = :job);
SELECT state, COUNT(*) AS trials,
       round(AVG((julianday(finished_at) - julianday(started_at)) * 86400), 1) AS mean_seconds,
       round(SUM((julianday(finished_at) - julianday(started_at)) * 86400)) AS total_seconds,
       SUM((SELECT COUNT(*) FROM trial_metrics m WHERE m.trial_id = trials.id)) AS epochs_run
  FROM trials
 WHERE job_id = :job AND finished_at IS NOT NULL AND started_at IS NOT NULL
 GROUP BY state
 ORDER BY state;

-- 9. Which trials were pruned when, and what that saved: each pruned trial
--    with the epoch it stopped at (pruned_epoch), the epochs it was to run,
--    the epochs saved, those epochs' cost at its own mean epoch time, and the
--    pruner's reason (README.md "Pruners"). The last row sums them.
SELECT '== 9. Pruned trials of job ' || :job || ' and what pruning saved' AS title
 WHERE EXISTS (SELECT 1 FROM jobs WHERE id = :job);
WITH p AS (
    SELECT t.number, t.id AS trial, t.lr, t.pruned_epoch, t.epochs,
           t.epochs - t.pruned_epoch AS epochs_saved,
           round((t.epochs - t.pruned_epoch) *
                 (SELECT AVG(m.seconds) FROM trial_metrics m WHERE m.trial_id = t.id), 1)
               AS seconds_saved,
           t.error AS reason
      FROM trials t
     WHERE t.job_id = :job AND t.state = 'pruned'
)
SELECT number, trial, lr, pruned_epoch, epochs, epochs_saved, seconds_saved, reason
  FROM (SELECT 0 AS k, * FROM p
        UNION ALL
        SELECT 1, NULL, NULL, NULL, NULL, NULL, SUM(epochs_saved), SUM(seconds_saved),
               COUNT(*) || ' trials pruned'
          FROM p HAVING COUNT(*) > 0)
 ORDER BY k, pruned_epoch, number;
