-- Version 5: pruners (README.md "Pruners"). trials.pruned_epoch is the last
-- epoch a pruned trial finished (NULL for every other trial); sql/schema.sql
-- has the column where ALTER TABLE puts it (after blas_core). trial_rungs
-- holds every decision a pruner made, written before the daemon acts on it,
-- so a restarted daemon reuses the decisions instead of making them again:
-- one row per trial and decision epoch (median: each epoch after the warm-up;
-- asha: each rung), with the trial's value there (its best objective so far),
-- the decision and the reason with its numbers.
ALTER TABLE trials ADD COLUMN pruned_epoch INTEGER;
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
