-- Version 2: the OpenBLAS kernel each trial's worker ran (the "blas_core" of its
-- "start" event; NULL until the worker has started). sql/schema.sql has the same
-- column, written where ALTER TABLE puts it (after last_epoch) so that a new and
-- an upgraded database have the same schema text.
ALTER TABLE trials ADD COLUMN blas_core TEXT;
