-- sweepd — example queries for the sqlite3 shell.
--
-- Run one with the job id filled in, e.g.
--   sqlite3 -header -column var/sweepd.db "SELECT ... WHERE job_id = 1"
-- or the whole file against a job set with a parameter:
--   sqlite3 -header -column var/sweepd.db -cmd ".parameter set :job 1" < sql/queries.sql
-- Reading is always safe while sweepd runs: the database is in WAL mode and
-- sweepd is its only writer. Tables and views: sql/schema.sql.
--
-- Parameters that have no column of their own (freeze, optimizer, augment,
-- momentum, lr_schedule, ...) are in trials.params_json; read them with
-- json_extract(params_json, '$.freeze').

-- 1. Best trials of a job, ranked by the job's objective (rank 1 is best).
SELECT rank, number, id AS trial, lr, batch_size, epochs, dropout, weight_decay,
       json_extract(params_json, '$.freeze') AS freeze,
       round(val_accuracy, 4) AS val_accuracy, round(val_loss, 4) AS val_loss,
       round(val_f1, 4) AS val_f1, best_epoch, round(test_accuracy, 4) AS test_accuracy
  FROM best_trials
 WHERE job_id = :job AND rank <= 10
 ORDER BY rank, number;

-- 2. Learning curves: per-epoch metrics of the job's best trial (change the
--    subquery to `:trial` for any other trial).
SELECT m.trial_id AS trial, m.epoch,
       round(m.train_loss, 4) AS train_loss, round(m.train_accuracy, 4) AS train_acc,
       round(m.val_loss, 4) AS val_loss, round(m.val_accuracy, 4) AS val_acc,
       round(m.val_f1, 4) AS val_f1, m.lr, round(m.seconds, 1) AS seconds
  FROM trial_metrics m
 WHERE m.trial_id = (SELECT id FROM best_trials WHERE job_id = :job AND rank = 1 LIMIT 1)
 ORDER BY m.epoch;

-- 3. Learning curves of every trial of a job side by side: validation
--    accuracy per epoch, one row per trial.
SELECT t.number, t.id AS trial,
       group_concat(printf('%.3f', m.val_accuracy), ' ') AS val_accuracy_by_epoch
  FROM trials t JOIN trial_metrics m ON m.trial_id = t.id
 WHERE t.job_id = :job
 GROUP BY t.id
 ORDER BY t.number;

-- 4. The effect of each hyperparameter: for every parameter and value, how many
--    completed trials used it and their mean and best validation accuracy.
--    json_each walks params_json, so this covers every parameter, searched or
--    fixed; parameters with a single value across the job are left out.
WITH p AS (
    SELECT t.id, t.val_accuracy, e.key AS param, CAST(e.value AS TEXT) AS value
      FROM trials t, json_each(t.params_json) e
     WHERE t.job_id = :job AND t.state = 'completed'
), varying AS (
    SELECT param FROM p GROUP BY param HAVING COUNT(DISTINCT value) > 1
)
SELECT p.param, p.value, COUNT(*) AS trials,
       round(AVG(p.val_accuracy), 4) AS avg_val_accuracy,
       round(MAX(p.val_accuracy), 4) AS max_val_accuracy
  FROM p JOIN varying USING (param)
 GROUP BY p.param, p.value
 ORDER BY p.param, avg_val_accuracy DESC;

-- 4b. The same for one parameter without a column, written out (here freeze):
SELECT json_extract(params_json, '$.freeze') AS freeze, COUNT(*) AS trials,
       round(AVG(val_accuracy), 4) AS avg_val_accuracy,
       round(MAX(val_accuracy), 4) AS max_val_accuracy
  FROM trials
 WHERE job_id = :job AND state = 'completed'
 GROUP BY freeze
 ORDER BY avg_val_accuracy DESC;

-- 4c. And for a column parameter (here lr):
SELECT lr, COUNT(*) AS trials, round(AVG(val_accuracy), 4) AS avg_val_accuracy,
       round(MAX(val_accuracy), 4) AS max_val_accuracy
  FROM trials
 WHERE job_id = :job AND state = 'completed'
 GROUP BY lr
 ORDER BY lr;

-- 5. Failed trials and why: the worker's exit code (2 bad spec, 3 data error,
--    4 model error, 5 diverged, 6 out of memory, 7 stopped by signal, negative
--    = killed by that signal), the error message and the attempt count.
SELECT t.job_id, t.number, t.id AS trial, t.attempt, t.exit_code,
       CASE WHEN t.exit_code IS NULL THEN 'see error' ELSE CASE t.exit_code
           WHEN 2 THEN 'bad spec' WHEN 3 THEN 'data error' WHEN 4 THEN 'model error'
           WHEN 5 THEN 'diverged' WHEN 6 THEN 'out of memory' WHEN 7 THEN 'stopped'
           ELSE CASE WHEN t.exit_code < 0 THEN 'killed by signal ' || -t.exit_code
                     ELSE 'crash' END
       END END AS reason,
       t.error, t.lr, t.batch_size, t.finished_at
  FROM trials t
 WHERE t.state = 'failed'
 ORDER BY t.finished_at DESC;

-- 6. Running trials with their latest finished epoch and how long they have run.
SELECT t.job_id, t.number, t.id AS trial, t.pid, t.started_at,
       m.epoch AS last_epoch, t.epochs,
       round(m.val_accuracy, 4) AS last_val_accuracy,
       round((julianday('now') - julianday(t.started_at)) * 86400) AS running_seconds
  FROM trials t
  LEFT JOIN trial_metrics m
         ON m.trial_id = t.id
        AND m.epoch = (SELECT MAX(epoch) FROM trial_metrics WHERE trial_id = t.id)
 WHERE t.state = 'running'
 ORDER BY t.job_id, t.number;

-- 7. Progress of every job: trial counts by state (view job_progress).
SELECT * FROM job_progress ORDER BY job_id;

-- 8. Time spent: mean and total trial run time per job, in seconds.
SELECT job_id, COUNT(*) AS finished,
       round(AVG((julianday(finished_at) - julianday(started_at)) * 86400), 1) AS mean_seconds,
       round(SUM((julianday(finished_at) - julianday(started_at)) * 86400)) AS total_seconds
  FROM trials
 WHERE finished_at IS NOT NULL AND started_at IS NOT NULL
 GROUP BY job_id;

-- 9. Which trials were pruned when, and what that saved: each pruned trial of
--    job :job with the epoch it stopped at (pruned_epoch), the epochs it was
--    to run, the epochs saved, those epochs' cost at its own mean epoch time,
--    and the pruner's reason (README.md "Pruners"). The last row sums them.
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
          FROM p)
 ORDER BY k, pruned_epoch, number;
