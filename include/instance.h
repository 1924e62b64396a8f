/* instance — one sweepd per database and per state directory, and a state
 * directory that belongs to its database (daemon/instance.c).
 *
 * Locks (flock, held for the daemon's life, released by the kernel when it
 * dies):
 *   - "<db>.lock", where <db> is the database's resolved path (symlinks
 *     followed), holding the daemon's pid for the message a second daemon
 *     prints;
 *   - the database file itself, so that another path to the same file (a
 *     hard link) is refused too: device and inode decide, not the name;
 *   - "<state_dir>/sweepd.lock" (resolved), holding the pid and the database,
 *     so that two daemons with different databases cannot share a state
 *     directory (they would overwrite each other's trial folders and pid
 *     file).
 *
 * Identity: the database (table daemon_meta, key "state_id") and the state
 * directory (file "database-id") hold the same random id. At start:
 *   both the same          -> go on
 *   both, different        -> refuse: the state directory is another database's
 *   only the state dir's   -> refuse: the database is new or was replaced, and
 *                             must not read the old trial folders
 *   only the database's    -> write it to the state directory when that has no
 *                             trial folders yet; otherwise refuse
 *   neither                -> new id in both, unless the database has no jobs
 *                             while the state directory has trial folders
 *                             (refuse: they are an earlier database's); a
 *                             database from before version 3 with its state
 *                             directory is adopted this way. */
#ifndef SWEEP_INSTANCE_H
#define SWEEP_INSTANCE_H

#include <limits.h>
#include <stddef.h>

#include "store.h"

typedef struct {
    int pid_fd;              // "<db_real>.lock", locked; -1 = not taken
    int db_fd;               // the database file, locked; -1 = not taken
    int dir_fd;              // "<dir_real>/sweepd.lock", locked; -1 = not taken
    char db_real[PATH_MAX];  // the database's resolved path
    char dir_real[PATH_MAX]; // the state directory's resolved path
} instance;

/* Takes the three locks for database DB_PATH and the existing directory
 * STATE_DIR (creating the database file empty when it does not exist, which
 * SQLite opens as a new database). Returns 0, or ERR_BUSY with MSG naming the
 * other daemon's pid and what it holds, or ERR_IO; what was taken is released
 * by instance_release either way. */
int instance_lock(instance *in, const char *db_path, const char *state_dir, char *msg,
                  size_t msglen);
/* Writes this process's pid into the lock files (after daemonizing). */
void instance_write_pid(instance *in);
/* Checks, and on first use records, that the state directory belongs to
 * database ST (the table in the header comment). Returns 0 or a negative code
 * with MSG saying what does not match and what to do. */
int instance_check_state(instance *in, store *st, char *msg, size_t msglen);
/* Releases the locks (fds closed); safe on a zeroed or failed instance once
 * instance_lock has run. */
void instance_release(instance *in);

#endif
