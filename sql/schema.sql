-- sweepd database schema: the full, current schema of a new database.
--
-- Versioning and migrations (implemented by common/migrate.c, see include/migrate.h):
--   * PRAGMA user_version is the schema version. 0 means an empty database.
--   * sql/migrations/ holds files named NNNN_description.sql (NNNN = decimal version,
--     e.g. 0002_add_trial_host.sql). Each moves the schema from the previous version
--     to version NNNN. They are applied in numeric order, each exactly once, each in
--     its own transaction that also sets PRAGMA user_version = NNNN; a database at
--     version V receives every migration numbered above V. A failing migration is
--     rolled back whole and leaves user_version unchanged; the error names the file.
--   * This file creates the complete current schema in one go for a new (empty)
--     database and must end by setting user_version to the number of the newest
--     migration. Adding a migration therefore means: write the migration file AND
--     apply the same change here AND bump the user_version below.
--     0001_initial.sql is the schema as first released.
--   * Neither this file nor a migration may contain BEGIN/COMMIT (the runner wraps
--     each file in a transaction) or PRAGMAs that cannot run inside a transaction
--     (journal_mode, foreign_keys): the daemon sets those on the connection.
--   * `sqlite3 :memory: < sql/schema.sql` works as a quick check.
--
-- Conventions: timestamps are ISO-8601 UTC text ("2026-11-28T15:04:05.123Z");
-- metrics are REAL in [0, 1] for accuracy/precision/recall/F1; ids are INTEGER
-- PRIMARY KEYs (rowids). sweepd is the only writer; everything else reads.

-- One submitted search.
CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY,
    name             TEXT    NOT NULL,
    spec_json        TEXT    NOT NULL,                  -- the job spec as submitted
    strategy         TEXT    NOT NULL,                  -- "grid", "random", ...
    state            TEXT    NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'done', 'cancelled', 'failed')),
    objective_metric TEXT    NOT NULL DEFAULT 'val_accuracy'
                     CHECK (objective_metric IN ('val_accuracy', 'val_loss', 'val_precision',
                                                 'val_recall', 'val_f1', 'test_accuracy')),
    objective_goal   TEXT    NOT NULL DEFAULT 'maximize'
                     CHECK (objective_goal IN ('maximize', 'minimize')),
    submitted_at     TEXT    NOT NULL,
    started_at       TEXT,
    finished_at      TEXT,
    submitted_uid    INTEGER,                           -- peer uid of the submitting client
    trials_total     INTEGER NOT NULL DEFAULT 0 CHECK (trials_total >= 0),
    -- Beyond the contract: the job's run settings and outcome, for the daemon.
    max_parallel     INTEGER NOT NULL DEFAULT 1 CHECK (max_parallel >= 1),
    trial_timeout    REAL CHECK (trial_timeout IS NULL OR trial_timeout > 0), -- seconds
    max_retries      INTEGER NOT NULL DEFAULT 0 CHECK (max_retries >= 0),
    seed             INTEGER NOT NULL DEFAULT 0,
    error            TEXT                               -- why the job failed, if it did
, cancel_requested_at TEXT, test_error TEXT);  -- version 4: when a cancel was requested (NULL =
-- never); version 6: test_error, why the test-set evaluation failed or did not run (NULL if
-- it succeeded or there is no test set).

-- One point of the search space, run by one sweep-worker process.
-- blas_core (version 2, after last_epoch where ALTER TABLE put it): the OpenBLAS
-- kernel the trial's worker ran, from its "start" event; NULL before it started.
-- skipped_files and bad_images (version 6, from the same event): files of its data
-- folders left out (not JPEG, or links outside data_roots) and JPEGs that failed
-- to decode.
CREATE TABLE trials (
    id               INTEGER PRIMARY KEY,
    job_id           INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    number           INTEGER NOT NULL CHECK (number >= 0), -- position within the job
    state            TEXT    NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'completed', 'failed',
                                      'cancelled', 'pruned')),
    lr               REAL,
    batch_size       INTEGER,
    epochs           INTEGER,
    dropout          REAL,
    weight_decay     REAL,
    params_json      TEXT    NOT NULL,                  -- every parameter (params_to_json)
    seed             INTEGER NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0), -- 0 = first run
    pid              INTEGER,                           -- worker pid while running
    started_at       TEXT,
    finished_at      TEXT,
    best_epoch       INTEGER,
    val_accuracy     REAL,
    val_loss         REAL,
    val_precision    REAL,
    val_recall       REAL,
    val_f1           REAL,
    test_accuracy    REAL,
    exit_code        INTEGER,                           -- worker exit status (or -signal)
    error            TEXT,
    checkpoint_path  TEXT,
    -- Beyond the contract, for the daemon's bookkeeping and crash recovery.
    out_dir          TEXT,                              -- the trial's output directory
    pid_start_time   INTEGER,                           -- /proc/PID/stat start time of pid
    last_epoch       INTEGER, blas_core TEXT, pruned_epoch INTEGER, skipped_files INTEGER, bad_images INTEGER,                           -- last epoch with recorded metrics
    UNIQUE (job_id, number)
);
CREATE INDEX trials_job_state ON trials(job_id, state);
CREATE INDEX trials_state ON trials(state);

-- Per-epoch metrics as reported by the worker's "epoch" events.
CREATE TABLE trial_metrics (
    trial_id         INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
    epoch            INTEGER NOT NULL CHECK (epoch >= 0),
    train_loss       REAL,
    train_accuracy   REAL,
    val_loss         REAL,
    val_accuracy     REAL,
    val_precision    REAL,
    val_recall       REAL,
    val_f1           REAL,
    lr               REAL,
    seconds          REAL,                              -- wall time of the epoch
    PRIMARY KEY (trial_id, epoch)
);

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

-- Trial counts per job and state, for status displays.
CREATE VIEW job_progress AS
SELECT j.id AS job_id, j.name, j.state, j.trials_total,
       COALESCE(SUM(t.state = 'queued'), 0)    AS queued,
       COALESCE(SUM(t.state = 'running'), 0)   AS running,
       COALESCE(SUM(t.state = 'completed'), 0) AS completed,
       COALESCE(SUM(t.state = 'failed'), 0)    AS failed,
       COALESCE(SUM(t.state = 'cancelled'), 0) AS cancelled,
       COALESCE(SUM(t.state = 'pruned'), 0)    AS pruned
  FROM jobs j LEFT JOIN trials t ON t.job_id = j.id
 GROUP BY j.id;

-- Facts about the database itself (version 3). "state_id" is the identity it
-- shares with its state directory (file database-id there; daemon/instance.c).
CREATE TABLE daemon_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Every decision of a pruner (version 5; README.md "Pruners"), written
-- before the daemon acts on it: one row per trial and decision epoch.
CREATE TABLE trial_rungs (
    trial_id    INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
    rung_epoch  INTEGER NOT NULL CHECK (rung_epoch >= 1),
    value       REAL,                               -- the trial's best objective so far
    decision    TEXT    NOT NULL CHECK (decision IN ('continue', 'stop')),
    reason      TEXT    NOT NULL,
    decided_at  TEXT    NOT NULL,
    PRIMARY KEY (trial_id, rung_epoch)
);
CREATE INDEX trial_rungs_epoch ON trial_rungs(rung_epoch);

PRAGMA user_version = 6;
