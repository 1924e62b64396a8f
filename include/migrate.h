/* migrate — creates or upgrades the sweepd database schema from sql/.
 *
 * The rule (also at the top of sql/schema.sql):
 *   - PRAGMA user_version is the schema version; 0 means an empty database.
 *   - SQL_DIR/migrations/ holds files named NNNN_description.sql (decimal version
 *     number, an underscore, a description, ".sql"). Each upgrades the schema from
 *     the previous version to NNNN. Pending migrations (numbers above the
 *     database's user_version) run in numeric order, each exactly once, each in its
 *     own transaction that also sets user_version = NNNN. A failing migration is
 *     rolled back whole, leaves user_version at the last applied one, and the
 *     error names the file (and the line of the failing statement).
 *   - SQL_DIR/schema.sql creates the complete current schema for a new database
 *     and sets user_version to the newest migration's number; it runs (in one
 *     transaction) only on an empty database (user_version 0 and no tables).
 *   - Files contain no BEGIN/COMMIT and no PRAGMAs that are illegal inside a
 *     transaction; connection settings (WAL, foreign_keys, busy timeout) belong
 *     to the caller.
 * Refused: a database newer than the newest migration, a non-empty database with
 * user_version 0 (not a sweepd database), two migrations with the same number,
 * a .sql file in migrations/ that does not follow the naming rule, and a
 * schema.sql whose user_version differs from the newest migration. */
#ifndef SWEEP_MIGRATE_H
#define SWEEP_MIGRATE_H

#include <sqlite3.h>
#include <stddef.h>

/* Brings DB to the newest schema version found in SQL_DIR (schema.sql on an
 * empty database, otherwise the pending migrations). Returns 0, or a negative
 * error code (ERR_IO unreadable file/dir, ERR_DB SQL failure, ERR_STATE
 * database too new or foreign, ERR_INVALID bad file names) with the reason,
 * naming the file, in MSG. */
int migrate_apply(sqlite3 *db, const char *sql_dir, char *msg, size_t msglen);

/* Runs only the pending migrations of SQL_DIR/migrations on DB, even when DB
 * is empty (so the whole history can be replayed from version 0). Same
 * returns as migrate_apply. */
int migrate_run_pending(sqlite3 *db, const char *sql_dir, char *msg, size_t msglen);

/* The number of the newest migration in SQL_DIR/migrations into *OUT (0 when
 * there is none). Returns 0 or a negative code with the reason in MSG. */
int migrate_latest_version(const char *sql_dir, int *out, char *msg, size_t msglen);

/* The database's PRAGMA user_version into *OUT. 0 or ERR_DB. */
int migrate_db_version(sqlite3 *db, int *out, char *msg, size_t msglen);

#endif
