#!/bin/bash
# One daemon per database and per state directory, whatever the path, and a
# state directory that belongs to its database (issue: a symlinked --db
# bypassed the lock and both daemons ran trial 5; a second daemon with its own
# database but the same state directory overwrote trials/1/best.safetensors
# and deleted sweepd.pid; a new database reused old trial folders and their
# events, ending a 150-epoch trial with 300 metric rows).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.bash"

mkdata "$T/data" '{"default":{"sleep":0.01}}'
start_daemon --workers 1
check "the first daemon runs" ping_ok
RDB=$(realpath "$DB") RVAR=$(realpath "$VAR") # messages name resolved paths

# A second daemon through a symbolic link to the database.
ln -s "$DB" "$T/dblink"
mkdir -p "$T/other"
SWEEPD_WORKER=$FAKE "$BUILD/sweepd" --foreground --socket "$T/s2.sock" --db "$T/dblink" \
    --state-dir "$T/other" >"$T/s2.out" 2>&1
is "a second daemon on a symlink to the database exits 1" "$?" "1"
like "it names the first one's pid and the resolved database" "$(cat "$T/s2.out")" \
    "another sweepd \(pid $DPID\) is using database $T/dblink \($RDB\)"

# ... through a hard link (same device and inode, another name).
ln "$DB" "$T/dbhard"
SWEEPD_WORKER=$FAKE "$BUILD/sweepd" --foreground --socket "$T/s3.sock" --db "$T/dbhard" \
    --state-dir "$T/other" >"$T/s3.out" 2>&1
is "a second daemon on a hard link to the database exits 1" "$?" "1"
like "it says it is the same file" "$(cat "$T/s3.out")" "under another name \(a hard link"
rm -f "$T/dbhard"

# ... with its own database but the same state directory.
cp "$VAR/sweepd.pid" "$T/pid.before"
SWEEPD_WORKER=$FAKE "$BUILD/sweepd" --foreground --socket "$T/s4.sock" --db "$T/own.db" \
    --state-dir "$VAR" >"$T/s4.out" 2>&1
is "a second daemon on the same state directory exits 1" "$?" "1"
like "it names the pid, the database and the state directory" "$(cat "$T/s4.out")" \
    "another sweepd \(pid $DPID, database $RDB\) is using state directory $VAR"
is "the first daemon's pid file is intact" "$(cat "$VAR/sweepd.pid")" "$(cat "$T/pid.before")"
check "the first daemon still answers" ping_ok
check "the refused daemon created no socket" [ ! -e "$T/s4.sock" ]

# A job runs to the end: its trial folder is the database's.
r=$(submit '{"name":"one","data":{"train":"'"$T/data"'"},"model":{"weights":null},
  "strategy":"grid","space":{"lr":[0.1]},"fixed":{"epochs":3},"seed":1}')
like "a job is accepted" "$r" '"ok":true,"job":1'
wait_for 30 job_ended 1
is "it ran 3 epochs" "$(sq "SELECT count(*) FROM trial_metrics")" "3"
dbid=$(sq "SELECT value FROM daemon_meta WHERE key='state_id'")
like "the database has an id" "$dbid" '^[0-9a-f]{32}$'
is "the state directory holds the same id" "$(cat "$VAR/database-id")" "$dbid"
stop_daemon

# The database deleted, the old state directory kept: refused, nothing read.
mv "$DB" "$T/old.db"
rm -f "$DB-wal" "$DB-shm"
SWEEPD_WORKER=$FAKE "$BUILD/sweepd" --foreground --socket "$SOCK" --db "$DB" \
    --state-dir "$VAR" >"$T/new.out" 2>&1
is "a new database with the old state directory exits 1" "$?" "1"
like "it says the state directory is another database's" "$(cat "$T/new.out")" \
    "state directory $RVAR belongs to another database \(database-id $dbid\), and database $RDB is new"
check "the refused daemon did not touch the old trial folder" [ -e "$VAR/trials/1/events.ndjson" ]

# An emptied database (the same file, all rows gone) is no better.
cp "$T/old.db" "$DB"
sqlite3 "$DB" "DELETE FROM trial_metrics; DELETE FROM trials; DELETE FROM jobs; DELETE FROM daemon_meta"
SWEEPD_WORKER=$FAKE "$BUILD/sweepd" --foreground --socket "$SOCK" --db "$DB" \
    --state-dir "$VAR" >"$T/empty.out" 2>&1
is "an emptied database with the old state directory exits 1" "$?" "1"
like "it is refused the same way" "$(cat "$T/empty.out")" "belongs to another database"

# Another database's state directory (both have ids, they differ).
rm -f "$DB" "$DB-wal" "$DB-shm"
mkdir -p "$T/fresh"
SWEEPD_WORKER=$FAKE "$BUILD/sweepd" --foreground --socket "$T/f.sock" --db "$DB" \
    --state-dir "$T/fresh" --log-level debug >"$T/fresh.out" 2>&1 &
FP=$!
wait_for 10 test -S "$T/f.sock"
kill -TERM $FP; wait $FP
SWEEPD_WORKER=$FAKE "$BUILD/sweepd" --foreground --socket "$SOCK" --db "$DB" \
    --state-dir "$VAR" >"$T/mix.out" 2>&1
is "a database with another state directory's id exits 1" "$?" "1"
like "it names both ids" "$(cat "$T/mix.out")" \
    "state directory $RVAR belongs to another database \(its database-id is $dbid, database $RDB has [0-9a-f]{32}\)"

# The new database with a new state directory: a new trial 1 starts clean.
start_daemon_at() { # start_daemon with another state directory
    SWEEPD_WORKER=$FAKE "$BUILD/sweepd" --foreground --socket "$SOCK" --db "$DB" \
        --state-dir "$1" --log-level debug >>"$DLOG" 2>&1 &
    DPID=$!
    wait_for 10 ping_ok
}
start_daemon_at "$T/fresh"
r=$(submit '{"name":"two","data":{"train":"'"$T/data"'"},"model":{"weights":null},
  "strategy":"grid","space":{"lr":[0.1]},"fixed":{"epochs":2},"seed":2}')
wait_for 30 job_ended 1
is "the new trial 1 has its own 2 epoch rows, none of the old trial's" \
    "$(sq "SELECT count(*) FROM trial_metrics")" "2"
stop_daemon

# A database from before version 3 (no id) with its state directory is
# adopted: both get the same new id.
cp "$T/old.db" "$T/legacy.db"
sqlite3 "$T/legacy.db" "DELETE FROM daemon_meta"
rm -f "$VAR/database-id"
SWEEPD_WORKER=$FAKE "$BUILD/sweepd" --foreground --socket "$SOCK" --db "$T/legacy.db" \
    --state-dir "$VAR" --log-level debug >>"$DLOG" 2>&1 &
DPID=$!
wait_for 10 ping_ok
check "a legacy database and its state directory start" ping_ok
lid=$(sqlite3 "$T/legacy.db" "SELECT value FROM daemon_meta WHERE key='state_id'")
like "they get an id" "$lid" '^[0-9a-f]{32}$'
is "the same in both" "$(cat "$VAR/database-id" 2>/dev/null)" "$lid"
stop_daemon
done_testing
