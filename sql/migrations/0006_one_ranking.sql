-- Version 6 (issue 20): one ranking, and what a job and its trials report.
--   * best_trials ranks ties by the lower trial number, so every completed
--     trial of a job has its own rank (1, 2, 3 ...) and exactly one is rank 1:
--     the one `sweepctl best` lists first and the daemon evaluates on the test
--     set (README.md "Concepts", Objective). It was RANK(), where ties shared a
--     rank (1, 1, 3).
--   * jobs.test_error: why the test-set evaluation of the job's best trial
--     failed or did not run (NULL when it succeeded or the job has no test
--     set); the job's own state and error are unaffected.
--   * trials.skipped_files and trials.bad_images: the files of the trial's
--     data folders that were left out (not JPEG, or links outside data_roots)
--     and the JPEGs that failed to decode, from its worker's "start" event
--     (NULL before it started).
-- sql/schema.sql has the columns where ALTER TABLE puts them.
ALTER TABLE jobs ADD COLUMN test_error TEXT;
ALTER TABLE trials ADD COLUMN skipped_files INTEGER;
ALTER TABLE trials ADD COLUMN bad_images INTEGER;
DROP VIEW best_trials;
-- Completed trials ranked per job by the job's objective: rank 1 is best
-- (highest value for "maximize", lowest for "minimize"); trials whose
-- objective value is NULL rank last; ties go to the lower trial number, so
-- ranks are 1, 2, 3 ... with no two trials of a job sharing one.
-- objective_value is the ranked metric. Example:
--   SELECT number, lr, batch_size, val_accuracy FROM best_trials
--    WHERE job_id = 1 AND rank <= 5;
CREATE VIEW best_trials AS
WITH scored AS (
    SELECT t.*,
           j.objective_metric AS objective_metric,
           j.objective_goal   AS objective_goal,
           CASE j.objective_metric
               WHEN 'val_accuracy'  THEN t.val_accuracy
               WHEN 'val_loss'      THEN t.val_loss
               WHEN 'val_precision' THEN t.val_precision
               WHEN 'val_recall'    THEN t.val_recall
               WHEN 'val_f1'        THEN t.val_f1
               WHEN 'test_accuracy' THEN t.test_accuracy
           END AS objective_value
      FROM trials t JOIN jobs j ON j.id = t.job_id
     WHERE t.state = 'completed'
)
SELECT ROW_NUMBER() OVER (PARTITION BY job_id
                          ORDER BY objective_value IS NULL,
                                   CASE WHEN objective_goal = 'maximize' THEN -objective_value
                                        ELSE objective_value END,
                                   number) AS rank,
       *
  FROM scored
 ORDER BY job_id, rank;
