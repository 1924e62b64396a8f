-- Version 4: when a cancel of the job was requested (NULL = never). The cancel
-- is stored before sweepd answers it, so a daemon killed while the cancelled
-- trials stop finishes the cancel on restart instead of running them again.
-- sql/schema.sql has the column where ALTER TABLE puts it (after error).
ALTER TABLE jobs ADD COLUMN cancel_requested_at TEXT;
