-- Version 3: facts about the database itself, as key/value rows. "state_id" is
-- the identity shared with the state directory (its file database-id): a state
-- directory belongs to exactly one database, and sweepd refuses to start when
-- the two do not match (daemon/instance.c).
CREATE TABLE daemon_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
