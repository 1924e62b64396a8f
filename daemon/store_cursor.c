/* store_cursor — a job's trial rows read in chunks from one snapshot of the
 * database, for replies too long to build in one piece (`status JOB` of a job
 * with 10,000 or 100,000 trials).
 *
 * Each cursor has its own read-only connection to the daemon's database and
 * holds a read transaction from its first row to its close: with WAL, every
 * chunk comes from the same moment (the moment the cursor was opened), while
 * the daemon's own connection goes on writing. The rows are those of
 * store_job_trials(), in the same order and with the same keys. A cursor is
 * used only by the event loop, like the store. */
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "store.h"

struct store_cursor {
    sqlite3 *db;      // the cursor's own read-only connection
    sqlite3_stmt *st; // the SELECT, positioned on the next row to return
    int rc;           // result of the last sqlite3_step (SQLITE_ROW, SQLITE_DONE or an error)
    size_t rows;      // rows returned so far
};

store_cursor *store_trials_cursor_open(store *s, int64_t job_id, int *err, char *msg, size_t msglen)
{
    store_cursor *cur = calloc(1, sizeof *cur);
    if (!cur) {
        *err = err_set(msg, msglen, ERR_NOMEM, "out of memory");
        return NULL;
    }
    const char *path = sqlite3_db_filename(store_db(s), "main");
    if (sqlite3_open_v2(path ? path : "", &cur->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        goto dberr;
    sqlite3_busy_timeout(cur->db, 1000);
    if (sqlite3_exec(cur->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) goto dberr;
    if (sqlite3_prepare_v2(
            cur->db, "SELECT " STORE_TRIAL_COLS " FROM trials WHERE job_id = ? ORDER BY number", -1,
            &cur->st, NULL) != SQLITE_OK)
        goto dberr;
    sqlite3_bind_int64(cur->st, 1, job_id);
    /* The first step starts the read transaction's snapshot: from here on
     * the rows are those of this moment. */
    cur->rc = sqlite3_step(cur->st);
    if (cur->rc != SQLITE_ROW && cur->rc != SQLITE_DONE) goto dberr;
    return cur;
dberr:
    *err = err_set(msg, msglen, ERR_DB, "database error reading the trials of job %lld: %s",
                   (long long)job_id, cur->db ? sqlite3_errmsg(cur->db) : "cannot open");
    store_cursor_close(cur);
    return NULL;
}

int store_cursor_next(store_cursor *cur, json_t *arr, int max, char *msg, size_t msglen)
{
    int n = 0;
    while (n < max && cur->rc == SQLITE_ROW) {
        json_t *row = store_trial_row(cur->st);
        if (!row || json_array_append_new(arr, row) != 0)
            return err_set(msg, msglen, ERR_NOMEM, "out of memory");
        n++;
        cur->rows++;
        cur->rc = sqlite3_step(cur->st);
    }
    if (cur->rc != SQLITE_ROW && cur->rc != SQLITE_DONE)
        return err_set(msg, msglen, ERR_DB, "database error after %zu trial rows: %s", cur->rows,
                       sqlite3_errmsg(cur->db));
    return n;
}

size_t store_cursor_rows(const store_cursor *cur)
{
    return cur->rows;
}

void store_cursor_close(store_cursor *cur)
{
    if (!cur) return;
    sqlite3_finalize(cur->st);
    if (cur->db) {
        sqlite3_exec(cur->db, "ROLLBACK", NULL, NULL, NULL); // read-only: nothing to keep
        sqlite3_close(cur->db);
    }
    free(cur);
}
