/* store — the daemon's SQLite connection, write queue and read queries.
 *
 * Design notes. The loop must never block on the database for long and must
 * never lose an event, so event writes are queued (store_enqueue) and
 * committed by store_flush() in one BEGIN IMMEDIATE transaction per loop
 * iteration (cheap with WAL + synchronous=NORMAL: no fsync per commit). A
 * busy database keeps the queue for the next timer tick. Readers in other
 * processes never block us in WAL mode; they only keep checkpoints from
 * completing, which is harmless. Statements are prepared once and cached by
 * their SQL text.
 *
 * Who owns what: this file holds every SQL statement of the daemon. The
 * scheduler (sched.c) decides and calls the store_trial_* / store_job_*
 * writes below for each state change it makes (checked against its
 * transition table first) and the store_active_jobs / store_job_trial_*
 * reads on restart; recovery (recover.c) uses store_trial_procs and the
 * recovery writes; the runner (runner.c) never touches the database. The
 * state names stored are the scheduler's (trial_state_name). The trial
 * states and their allowed changes (sched.c):
 *
 *   queued -> running -> completed | failed | cancelled | pruned
 *   queued -> cancelled | failed;  running -> queued (retry, shutdown,
 *   recovery) */
#include "store.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "errors.h"
#include "grow.h"
#include "jsonx.h"
#include "log.h"
#include "migrate.h"
#include "timeutil.h"

#define MAX_ARGS 12
#define MAX_STMTS 96
#define SUMMARY_CACHE 1024

typedef struct {
    char type; // 'i', 'd', 's', 'n'
    union {
        int64_t i; // for 'i'
        double d;  // for 'd'
        char *s;   // for 's' (owned)
    };
} wval;

typedef struct {
    const char *sql;  // statement text (static storage, from the caller)
    int n;            // parameters used
    wval v[MAX_ARGS]; // parameters, bound 1..n
} wreq;

typedef struct {
    char *sql;          // owned copy of the text
    sqlite3_stmt *stmt; // prepared statement
} cached;

struct store {
    sqlite3 *db;             // the connection
    cached cache[MAX_STMTS]; // prepared statements
    int n_cache;             // entries used
    wreq *q;                 // pending writes; [head, len) are live (owned)
    size_t head, len, cap;   // queue bounds
    bool busy_logged;        // a "writes kept for retry" warning was logged for this episode
    char *path;              // database file, for messages (owned)
    int last_rc;             // extended SQLite code of the last failed write, 0 = none
    int last_errno;          // its system errno (sqlite3_system_errno), 0 = none
    char last_err[256];      // its message
    store_live_fn live;      // live figures of active jobs (may be NULL)
    void *live_ud;           // its argument
    json_t *done_cache[SUMMARY_CACHE]; // summaries of ended jobs (owned references)
    int64_t done_ids[SUMMARY_CACHE];   // their job ids
    size_t done_next;                  // next slot to replace (round robin)
};

void store_set_live(store *s, store_live_fn fn, void *ud)
{
    s->live = fn;
    s->live_ud = ud;
}

sqlite3 *store_db(store *s)
{
    return s->db;
}

void store_set_busy(store *s, int busy_ms)
{
    sqlite3_busy_timeout(s->db, busy_ms);
}

sqlite3_stmt *store_stmt(store *s, const char *sql)
{
    for (int i = 0; i < s->n_cache; i++)
        if (!strcmp(s->cache[i].sql, sql)) return s->cache[i].stmt;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        log_error("sqlite prepare failed: %s: %s", sqlite3_errmsg(s->db), sql);
        return NULL;
    }
    if (s->n_cache < MAX_STMTS) {
        s->cache[s->n_cache].sql = strdup(sql);
        if (s->cache[s->n_cache].sql) {
            s->cache[s->n_cache++].stmt = st;
            return st;
        }
    }
    /* Cache full: evict the oldest entry. */
    sqlite3_finalize(s->cache[0].stmt);
    free(s->cache[0].sql);
    memmove(&s->cache[0], &s->cache[1], sizeof(cached) * (size_t)(s->n_cache - 1));
    s->cache[s->n_cache - 1].sql = strdup(sql);
    s->cache[s->n_cache - 1].stmt = st;
    if (!s->cache[s->n_cache - 1].sql) {
        sqlite3_finalize(st);
        s->n_cache--;
        return NULL;
    }
    return st;
}

/* Our error code for a failed write with extended SQLite code RC: ERR_BUSY
 * (locked by another process), ERR_IO (the database or its disk is full or
 * cannot be written: space may come back), ERR_DB (anything else). */
static int code_of(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return ERR_BUSY;
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_NOMEM:
    case SQLITE_CANTOPEN:
        return ERR_IO;
    default:
        return ERR_DB;
    }
}

/* Remembers why the last write failed (before a ROLLBACK can replace the
 * connection's error): extended code RC and TEXT, plus the system errno. */
static void note_failure(store *s, int rc, const char *text)
{
    s->last_rc = rc;
    s->last_errno = sqlite3_system_errno(s->db);
    snprintf(s->last_err, sizeof s->last_err, "%s", text ? text : sqlite3_errstr(rc));
}

static int exec_simple(store *s, const char *sql, char *msg, size_t msglen)
{
    char *err = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        rc = sqlite3_extended_errcode(s->db);
        int code = code_of(rc);
        err_set(msg, msglen, code, "%s: %s", sql, err ? err : sqlite3_errstr(rc));
        note_failure(s, rc, err ? err : NULL);
        sqlite3_free(err);
        return code;
    }
    return 0;
}

/* Ends an open transaction after a failure, keeping the failure's message
 * (the ROLLBACK's own outcome is only logged at debug level). */
static void rollback(store *s)
{
    if (sqlite3_get_autocommit(s->db)) return; // SQLite already rolled it back
    int rc = sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc != SQLITE_OK) log_debug("ROLLBACK failed: %s", sqlite3_errmsg(s->db));
}

/* True when the file system holding PATH has (almost) no free space left. */
static bool fs_full(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = 0;
    else
        snprintf(dir, sizeof dir, ".");
    struct statvfs v;
    if (statvfs(dir, &v) != 0) return false;
    return (unsigned long long)v.f_bavail * v.f_frsize < 65536;
}

int store_describe_failure(store *s, const char *what, char *msg, size_t msglen)
{
    int code = code_of(s->last_rc);
    int e = s->last_errno;
    /* SQLite does not always keep the errno of a failed write (an EFBIG
     * surfaces as a bare "disk I/O error"), so the likely causes are checked
     * directly: free space, then the file-size limit. */
    struct rlimit rl;
    bool limited = getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;
    if ((s->last_rc & 0xff) == SQLITE_FULL || e == ENOSPC || e == EDQUOT ||
        (code == ERR_IO && e != EFBIG && fs_full(s->path)))
        return err_set(msg, msglen, ERR_IO,
                       "%s: the database or disk is full (%s: %s); free some space and try again",
                       what, s->path, strerror(e == EDQUOT ? EDQUOT : ENOSPC));
    if (e == EFBIG || (code == ERR_IO && limited))
        return err_set(msg, msglen, ERR_IO,
                       "%s: the database reached sweepd's file-size limit of %llu bytes (%s: %s);"
                       " raise the limit (ulimit -f, LimitFSIZE=) and try again",
                       what, limited ? (unsigned long long)rl.rlim_cur : 0ULL, s->path,
                       strerror(EFBIG));
    if (code == ERR_IO)
        return err_set(msg, msglen, ERR_IO, "%s: cannot write the database %s (%s%s%s)", what,
                       s->path, s->last_err, e ? ": " : "", e ? strerror(e) : "");
    if (code == ERR_BUSY)
        return err_set(msg, msglen, ERR_BUSY,
                       "%s: the database %s is locked by another process; try again", what,
                       s->path);
    return err_set(msg, msglen, ERR_DB, "%s: database error on %s: %s", what, s->path, s->last_err);
}

int store_open(store **out, const char *path, const char *sql_dir, int busy_ms, char *msg,
               size_t msglen)
{
    *out = NULL;
    store *s = calloc(1, sizeof *s);
    if (!s) return ERR_NOMEM;
    int rc = sqlite3_open_v2(
        path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = err_set(msg, msglen, ERR_DB, "cannot open database %s: %s", path,
                     s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 5000);
    char tmp[512];
    if ((rc = exec_simple(s, "PRAGMA journal_mode=WAL", tmp, sizeof tmp)) ||
        (rc = exec_simple(s, "PRAGMA synchronous=NORMAL", tmp, sizeof tmp)) ||
        (rc = exec_simple(s, "PRAGMA foreign_keys=ON", tmp, sizeof tmp))) {
        err_set(msg, msglen, rc, "database %s: %s", path, tmp);
        goto fail;
    }
    if ((rc = migrate_apply(s->db, sql_dir, tmp, sizeof tmp))) {
        err_set(msg, msglen, rc, "database %s: %s", path, tmp);
        goto fail;
    }
    sqlite3_busy_timeout(s->db, busy_ms);
    s->path = strdup(path);
    if (!s->path) {
        rc = ERR_NOMEM;
        goto fail;
    }
    *out = s;
    return 0;
fail:
    if (s->db) sqlite3_close(s->db);
    free(s->path);
    free(s);
    return rc < 0 ? rc : ERR_DB;
}

static void wreq_free(wreq *w)
{
    for (int i = 0; i < w->n; i++)
        if (w->v[i].type == 's') free(w->v[i].s);
}

void store_close(store *s)
{
    if (!s) return;
    sqlite3_busy_timeout(s->db, 5000);
    if (store_flush(s) != 0)
        log_error("database stayed locked or full: %zu queued writes could not be saved (%s)",
                  s->len - s->head, s->last_err);
    for (size_t i = s->head; i < s->len; i++)
        wreq_free(&s->q[i]);
    free(s->q);
    for (int i = 0; i < s->n_cache; i++) {
        sqlite3_finalize(s->cache[i].stmt);
        free(s->cache[i].sql);
    }
    for (size_t i = 0; i < SUMMARY_CACHE; i++)
        json_decref(s->done_cache[i]);
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

size_t store_pending(const store *s)
{
    return s->len - s->head;
}

int store_enqueue(store *s, const char *sql, const char *fmt, ...)
{
    if (s->len == s->cap) {
        if (s->head > 0) {
            memmove(s->q, s->q + s->head, (s->len - s->head) * sizeof *s->q);
            s->len -= s->head;
            s->head = 0;
        }
        wreq *nq = grow_array(s->q, s->len + 1, &s->cap, sizeof *nq, 64);
        if (!nq) return ERR_NOMEM;
        s->q = nq;
    }
    wreq *w = &s->q[s->len];
    memset(w, 0, sizeof *w);
    w->sql = sql;
    va_list ap;
    va_start(ap, fmt);
    for (const char *f = fmt; *f && w->n < MAX_ARGS; f++) {
        wval *v = &w->v[w->n++];
        v->type = *f;
        switch (*f) {
        case 'i':
            v->i = va_arg(ap, int64_t);
            break;
        case 'j':
            v->i = va_arg(ap, int64_t);
            v->type = v->i == INT64_MIN ? 'n' : 'i';
            break;
        case 'd':
            v->d = va_arg(ap, double);
            if (isnan(v->d)) v->type = 'n';
            break;
        case 's': {
            const char *str = va_arg(ap, const char *);
            if (!str) {
                v->type = 'n';
            } else if (!(v->s = strdup(str))) {
                w->n--;
                va_end(ap);
                wreq_free(w);
                return ERR_NOMEM;
            }
            break;
        }
        default:
            v->type = 'n';
            break;
        }
    }
    va_end(ap);
    s->len++;
    return 0;
}

static int bind_all(sqlite3_stmt *st, const wreq *w)
{
    int rc = SQLITE_OK;
    for (int i = 0; i < w->n && rc == SQLITE_OK; i++) {
        const wval *v = &w->v[i];
        switch (v->type) {
        case 'i':
            rc = sqlite3_bind_int64(st, i + 1, v->i);
            break;
        case 'd':
            rc = sqlite3_bind_double(st, i + 1, v->d);
            break;
        case 's':
            rc = sqlite3_bind_text(st, i + 1, v->s, -1, SQLITE_STATIC);
            break;
        default:
            rc = sqlite3_bind_null(st, i + 1);
            break;
        }
    }
    return rc;
}

/* Logs, once per episode, that writes are kept for retry, and why. */
static void note_retry(store *s, int code)
{
    if (s->busy_logged) return;
    s->busy_logged = true;
    if (code == ERR_BUSY) {
        log_warn("database busy, %zu writes kept for retry: %s", s->len - s->head, s->last_err);
    } else {
        char why[512];
        store_describe_failure(s, "database write failed", why, sizeof why);
        log_error("%s; %zu writes kept and retried until it succeeds", why, s->len - s->head);
    }
}

int store_flush(store *s)
{
    if (s->head == s->len) return 0;
    char tmp[256];
    int rc = exec_simple(s, "BEGIN IMMEDIATE", tmp, sizeof tmp);
    if (rc) {
        note_retry(s, rc);
        return rc;
    }
    size_t done = s->head;
    int fail = 0;
    for (; done < s->len; done++) {
        wreq *w = &s->q[done];
        sqlite3_stmt *st = store_stmt(s, w->sql);
        if (!st) continue; // logged; dropped
        int brc = bind_all(st, w);
        int src = brc == SQLITE_OK ? sqlite3_step(st) : brc;
        if (src != SQLITE_DONE && src != SQLITE_ROW) {
            int xrc = sqlite3_extended_errcode(s->db);
            if (code_of(xrc) != ERR_DB) {
                /* Locked, full or unwritable: keep this write and every later
                 * one; what this transaction did is rolled back below. */
                note_failure(s, xrc, sqlite3_errmsg(s->db));
                fail = code_of(xrc);
                sqlite3_reset(st);
                sqlite3_clear_bindings(st);
                break;
            }
            log_error("database write failed (%s), dropped: %s", sqlite3_errmsg(s->db), w->sql);
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    if (!fail) fail = exec_simple(s, "COMMIT", tmp, sizeof tmp);
    if (fail) {
        /* Nothing of this attempt counts: everything from head is retried. */
        rollback(s);
        note_retry(s, fail);
        return fail;
    }
    for (size_t i = s->head; i < done; i++)
        wreq_free(&s->q[i]);
    s->head = done;
    if (s->head == s->len) s->head = s->len = 0;
    if (s->busy_logged && s->head == s->len) {
        log_info("database writable again, queued writes saved");
        s->busy_logged = false;
    }
    s->last_rc = 0;
    return 0;
}

static const char *const SQL_JOB_INSERT =
    "INSERT INTO jobs (name, spec_json, strategy, state, objective_metric, objective_goal,"
    " submitted_at, submitted_uid, trials_total, max_parallel, trial_timeout, max_retries, seed)"
    " VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char *const SQL_TRIAL_INSERT =
    "INSERT INTO trials (job_id, number, state, lr, batch_size, epochs, dropout, weight_decay,"
    " params_json, seed, attempt) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, 0)";

/* Inserts trial T of job JOB_ID with the cached statement, its row id into
 * *ID. SQLITE_DONE, another SQLite code, or ERR_NOMEM. */
static int insert_trial(store *s, int64_t job_id, const jobspec_trial *t, int64_t *id)
{
    sqlite3_stmt *st = store_stmt(s, SQL_TRIAL_INSERT);
    if (!st) return SQLITE_ERROR;
    json_t *pj = params_to_json(&t->params);
    char *ptext = pj ? jx_dump_line(pj) : NULL;
    json_decref(pj);
    if (!ptext) return ERR_NOMEM;
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int(st, 2, t->number);
    sqlite3_bind_double(st, 3, t->params.lr);
    sqlite3_bind_int(st, 4, t->params.batch_size);
    sqlite3_bind_int(st, 5, t->params.epochs);
    sqlite3_bind_double(st, 6, t->params.dropout);
    sqlite3_bind_double(st, 7, t->params.weight_decay);
    sqlite3_bind_text(st, 8, ptext, -1, free);
    sqlite3_bind_int64(st, 9, (int64_t)t->seed);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_DONE) *id = sqlite3_last_insert_rowid(s->db);
    return rc;
}

/* Flushes the queue and opens a write transaction; WHAT names the write
 * in the message. */
static int begin_write(store *s, const char *what, char *msg, size_t msglen)
{
    char tmp[256];
    if (store_flush(s) || exec_simple(s, "BEGIN IMMEDIATE", tmp, sizeof tmp))
        return store_describe_failure(s, what, msg, msglen);
    return 0;
}

/* Ends the transaction begun by begin_write: commits when RC is
 * SQLITE_DONE, else rolls back (ERR_NOMEM, or the statement's error). */
static int end_write(store *s, int rc, const char *what, char *msg, size_t msglen)
{
    char tmp[256];
    if (rc == ERR_NOMEM) {
        rollback(s);
        return err_set(msg, msglen, ERR_NOMEM, "%s: out of memory", what);
    }
    if (rc != SQLITE_DONE) {
        /* The statement's error, taken before the ROLLBACK can replace it. */
        note_failure(s, sqlite3_extended_errcode(s->db), sqlite3_errmsg(s->db));
        rollback(s);
        return store_describe_failure(s, what, msg, msglen);
    }
    if (exec_simple(s, "COMMIT", tmp, sizeof tmp)) {
        rollback(s);
        return store_describe_failure(s, what, msg, msglen);
    }
    s->last_rc = 0;
    return 0;
}

int store_job_insert(store *s, const jobspec *js, const char *spec_text, uid_t uid,
                     int max_parallel, double trial_timeout, int max_retries, int64_t *job_id,
                     int64_t *trial_ids, char *msg, size_t msglen)
{
    static const char what[] = "cannot store the job";
    int rc = begin_write(s, what, msg, msglen);
    if (rc) return rc;
    char now[40];
    time_now_iso(now, sizeof now);
    sqlite3_stmt *st = store_stmt(s, SQL_JOB_INSERT);
    if (!st) return end_write(s, SQLITE_ERROR, what, msg, msglen);
    sqlite3_bind_text(st, 1, js->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, spec_text, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, js->strategy, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, js->metric, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, js->maximize ? "maximize" : "minimize", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, now, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, (int64_t)uid);
    sqlite3_bind_int64(st, 8, (int64_t)js->trials_total);
    sqlite3_bind_int(st, 9, max_parallel);
    if (trial_timeout > 0)
        sqlite3_bind_double(st, 10, trial_timeout);
    else
        sqlite3_bind_null(st, 10);
    sqlite3_bind_int(st, 11, max_retries);
    sqlite3_bind_int64(st, 12, (int64_t)js->seed);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_DONE) *job_id = sqlite3_last_insert_rowid(s->db);
    for (size_t i = 0; rc == SQLITE_DONE && i < js->n_trials; i++)
        rc = insert_trial(s, *job_id, &js->trials[i], &trial_ids[i]);
    return end_write(s, rc, what, msg, msglen);
}

int store_trial_add(store *s, int64_t job_id, const jobspec_trial *t, int64_t *id, char *msg,
                    size_t msglen)
{
    static const char what[] = "cannot store the proposed trial";
    int rc = begin_write(s, what, msg, msglen);
    if (rc) return rc;
    return end_write(s, insert_trial(s, job_id, t, id), what, msg, msglen);
}

/* ---- read queries ---------------------------------------------------- */

static json_t *col_json(sqlite3_stmt *st, int i)
{
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        return json_integer(sqlite3_column_int64(st, i));
    case SQLITE_FLOAT:
        return json_real(sqlite3_column_double(st, i));
    case SQLITE_TEXT:
        return json_string((const char *)sqlite3_column_text(st, i));
    default:
        return json_null();
    }
}

/* Every column of the current row, by name; params_json parsed into "params",
 * job_id named "job". */
json_t *store_trial_row(sqlite3_stmt *st)
{
    json_t *o = json_object();
    if (!o) return NULL;
    int n = sqlite3_column_count(st);
    for (int i = 0; i < n; i++) {
        const char *name = sqlite3_column_name(st, i);
        if (!strcmp(name, "params_json")) {
            const char *txt = (const char *)sqlite3_column_text(st, i);
            json_t *p = txt ? json_loads(txt, 0, NULL) : NULL;
            json_object_set_new(o, "params", p ? p : json_null());
        } else if (!strcmp(name, "job_id")) {
            json_object_set_new(o, "job", col_json(st, i));
        } else {
            json_object_set_new(o, name, col_json(st, i));
        }
    }
    return o;
}

static bool metric_ok(const char *m)
{
    static const char *const ok[] = {
        "val_accuracy", "val_loss", "val_precision", "val_recall", "val_f1", "test_accuracy", NULL};
    for (int i = 0; ok[i]; i++)
        if (!strcmp(ok[i], m)) return true;
    return false;
}

json_t *store_job_summary(store *s, int64_t job_id, int *err, char *msg, size_t msglen)
{
    for (size_t i = 0; i < SUMMARY_CACHE; i++)
        if (s->done_cache[i] && s->done_ids[i] == job_id) return json_incref(s->done_cache[i]);
    sqlite3_stmt *st = store_stmt(
        s, "SELECT id, name, strategy, state, objective_metric, objective_goal, submitted_at,"
           " started_at, finished_at, submitted_uid, trials_total, max_parallel, trial_timeout,"
           " max_retries, seed, error, test_error FROM jobs WHERE id = ?");
    if (!st) goto dberr;
    sqlite3_bind_int64(st, 1, job_id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        if (rc == SQLITE_DONE) {
            *err = err_set(msg, msglen, ERR_NOTFOUND, "no job %lld", (long long)job_id);
            return NULL;
        }
        goto dberr;
    }
    json_t *o = json_object();
    int n = sqlite3_column_count(st);
    for (int i = 0; i < n; i++)
        json_object_set_new(o, sqlite3_column_name(st, i), col_json(st, i));
    char metric[32], state[16];
    snprintf(metric, sizeof metric, "%s", (const char *)sqlite3_column_text(st, 4));
    snprintf(state, sizeof state, "%s", (const char *)sqlite3_column_text(st, 3));
    bool maximize = !strcmp((const char *)sqlite3_column_text(st, 5), "maximize");
    sqlite3_reset(st);
    json_object_set_new(
        o, "objective",
        json_pack("{s:s, s:s}", "metric", metric, "goal", maximize ? "maximize" : "minimize"));
    json_object_del(o, "objective_metric");
    json_object_del(o, "objective_goal");
    static const char *const names[6] = {"queued", "running",   "completed",
                                         "failed", "cancelled", "pruned"};
    json_t *counts = json_object();
    for (int i = 0; i < 6; i++)
        json_object_set_new(counts, names[i], json_integer(0));
    json_t *best = NULL;
    store_live live;
    if (s->live && s->live(s->live_ud, job_id, &live)) {
        for (int i = 0; i < 6; i++)
            json_object_set_new(counts, names[i], json_integer(live.counts[i]));
        best = live.has_best ? json_pack("{s:I, s:i, s:f}", "trial", (json_int_t)live.best_id,
                                         "number", live.best_number, "value", live.best_value)
                             : json_null();
    } else {
        st = store_stmt(s, "SELECT state, count(*) FROM trials WHERE job_id = ? GROUP BY state");
        if (st) {
            sqlite3_bind_int64(st, 1, job_id);
            while (sqlite3_step(st) == SQLITE_ROW)
                json_object_set_new(counts, (const char *)sqlite3_column_text(st, 0),
                                    json_integer(sqlite3_column_int64(st, 1)));
            sqlite3_reset(st);
        }
        store_best_row b;
        if (store_job_best_trial(s, job_id, &b) == 0)
            best = json_pack("{s:I, s:i, s:o}", "trial", (json_int_t)b.id, "number", b.number,
                             "value", b.has_value ? json_real(b.value) : json_null());
    }
    json_object_set_new(o, "counts", counts);
    json_object_set_new(o, "best", best ? best : json_null());
    if (!strcmp(state, "done") || !strcmp(state, "failed") || !strcmp(state, "cancelled")) {
        size_t k = s->done_next++ % SUMMARY_CACHE;
        json_decref(s->done_cache[k]);
        s->done_cache[k] = json_incref(o);
        s->done_ids[k] = job_id;
    }
    return o;
dberr:
    *err = err_set(msg, msglen, ERR_DB, "database error: %s", sqlite3_errmsg(s->db));
    return NULL;
}

json_t *store_jobs(store *s, int *err, char *msg, size_t msglen)
{
    sqlite3_stmt *st = store_stmt(s, "SELECT id FROM jobs ORDER BY id");
    if (!st) {
        *err = err_set(msg, msglen, ERR_DB, "database error: %s", sqlite3_errmsg(s->db));
        return NULL;
    }
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t *ni = grow_array(ids, n + 1, &cap, sizeof *ids, 16);
        if (!ni) break;
        ids = ni;
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *j = store_job_summary(s, ids[i], err, msg, msglen);
        if (j) json_array_append_new(arr, j);
    }
    free(ids);
    return arr;
}

/* The trial rows SQL selects (STORE_TRIAL_COLS, bound to JOB_ID) as an array. */
static json_t *job_trial_rows(store *s, const char *sql, int64_t job_id, int *err, char *msg,
                              size_t msglen)
{
    sqlite3_stmt *st = store_stmt(s, sql);
    if (!st) {
        *err = err_set(msg, msglen, ERR_DB, "database error: %s", sqlite3_errmsg(s->db));
        return NULL;
    }
    sqlite3_bind_int64(st, 1, job_id);
    json_t *arr = json_array();
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(arr, store_trial_row(st));
    sqlite3_reset(st);
    return arr;
}

json_t *store_job_trials(store *s, int64_t job_id, int *err, char *msg, size_t msglen)
{
    return job_trial_rows(
        s, "SELECT " STORE_TRIAL_COLS " FROM trials WHERE job_id = ? ORDER BY number", job_id, err,
        msg, msglen);
}

json_t *store_job_pruned(store *s, int64_t job_id, int *err, char *msg, size_t msglen)
{
    return job_trial_rows(s,
                          "SELECT " STORE_TRIAL_COLS " FROM trials WHERE job_id = ? AND"
                          " state = 'pruned' ORDER BY pruned_epoch, number",
                          job_id, err, msg, msglen);
}

/* The ranking is the best_trials view's (sql/schema.sql): the job's objective,
 * ties to the lower trial number, NULL values last. Its "rank" and
 * "objective_value" (as "value") come with every row. */
json_t *store_best(store *s, int64_t job_id, int limit, int *err, char *msg, size_t msglen)
{
    json_t *job = store_job_summary(s, job_id, err, msg, msglen); // NOTFOUND for no such job
    if (!job) return NULL;
    json_decref(job);
    sqlite3_stmt *st = store_stmt(s, "SELECT " STORE_TRIAL_COLS ", objective_value AS value, rank"
                                     " FROM best_trials WHERE job_id = ? ORDER BY rank LIMIT ?");
    if (!st) {
        *err = err_set(msg, msglen, ERR_DB, "database error: %s", sqlite3_errmsg(s->db));
        return NULL;
    }
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int(st, 2, limit);
    json_t *arr = json_array();
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(arr, store_trial_row(st));
    sqlite3_reset(st);
    return arr;
}

json_t *store_trial(store *s, int64_t trial_id, int *err, char *msg, size_t msglen)
{
    sqlite3_stmt *st = store_stmt(s, "SELECT " STORE_TRIAL_COLS " FROM trials WHERE id = ?");
    if (!st) {
        *err = err_set(msg, msglen, ERR_DB, "database error: %s", sqlite3_errmsg(s->db));
        return NULL;
    }
    sqlite3_bind_int64(st, 1, trial_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        *err = err_set(msg, msglen, ERR_NOTFOUND, "no trial %lld", (long long)trial_id);
        return NULL;
    }
    json_t *o = store_trial_row(st);
    sqlite3_reset(st);
    st = store_stmt(s, "SELECT epoch, train_loss, train_accuracy, val_loss, val_accuracy,"
                       " val_precision, val_recall, val_f1, lr, seconds FROM trial_metrics"
                       " WHERE trial_id = ? ORDER BY epoch");
    json_t *m = json_array();
    if (st) {
        sqlite3_bind_int64(st, 1, trial_id);
        while (sqlite3_step(st) == SQLITE_ROW) {
            json_t *row = json_object();
            for (int i = 0; i < sqlite3_column_count(st); i++)
                json_object_set_new(row, sqlite3_column_name(st, i), col_json(st, i));
            json_array_append_new(m, row);
        }
        sqlite3_reset(st);
    }
    json_object_set_new(o, "metrics", m);
    return o;
}

/* ---- facts about the database (daemon_meta) ---------------------------- */

int store_meta_get(store *s, const char *key, char *out, size_t outlen, char *msg, size_t msglen)
{
    sqlite3_stmt *st = store_stmt(s, "SELECT value FROM daemon_meta WHERE key = ?");
    if (!st) return err_set(msg, msglen, ERR_DB, "database error: %s", sqlite3_errmsg(s->db));
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    int ret = 1;
    if (rc == SQLITE_ROW) {
        snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 0));
        ret = 0;
    } else if (rc != SQLITE_DONE) {
        ret = err_set(msg, msglen, ERR_DB, "database error reading %s: %s", key,
                      sqlite3_errmsg(s->db));
    }
    sqlite3_reset(st);
    return ret;
}

int store_meta_set(store *s, const char *key, const char *value, char *msg, size_t msglen)
{
    sqlite3_stmt *st = store_stmt(s, "INSERT INTO daemon_meta (key, value) VALUES (?, ?)"
                                     " ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    if (!st) return err_set(msg, msglen, ERR_DB, "database error: %s", sqlite3_errmsg(s->db));
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return err_set(msg, msglen, ERR_DB, "cannot store %s in %s: %s", key, s->path,
                       sqlite3_errmsg(s->db));
    return 0;
}

int64_t store_job_count(store *s)
{
    sqlite3_stmt *st = store_stmt(s, "SELECT count(*) FROM jobs");
    if (!st) return -1;
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_reset(st);
    return n;
}

/* ---- the statements of the scheduler, the runner and recovery ---------- */

int store_trial_state(store *s, int64_t id, const store_trial_change *c)
{
    if (!strcmp(c->state, "running"))
        return store_enqueue(s,
                             "UPDATE trials SET state = 'running', attempt = ?, pid = NULL,"
                             " pid_start_time = NULL, started_at = ?, finished_at = NULL,"
                             " exit_code = NULL, out_dir = ? WHERE id = ?",
                             "issi", (int64_t)c->attempt, c->now, c->out_dir, id);
    if (!strcmp(c->state, "queued"))
        return store_enqueue(s,
                             "UPDATE trials SET state = 'queued', attempt = ?, pid = NULL,"
                             " pid_start_time = NULL, exit_code = ?, error = COALESCE(?, error)"
                             " WHERE id = ?",
                             "ijsi", (int64_t)c->attempt, c->exit_code, c->error, id);
    /* A final state. A completed trial has no error: one an earlier attempt
     * left (such as "interrupted: the daemon stopped unexpectedly") is
     * cleared; the other final states keep the last error when the change
     * brings none. */
    return store_enqueue(s,
                         "UPDATE trials SET state = ?1, pid = NULL, pid_start_time = NULL,"
                         " finished_at = ?2, exit_code = ?3, error = CASE WHEN ?1 = 'completed'"
                         " THEN ?4 ELSE COALESCE(?4, error) END, pruned_epoch = ?5 WHERE id = ?6",
                         "ssjsji", c->state, c->now, c->exit_code, c->error,
                         c->pruned_epoch > 0 ? c->pruned_epoch : INT64_MIN, id);
}

int store_job_cancel_queued(store *s, int64_t job_id, const char *now)
{
    return store_enqueue(
        s,
        "UPDATE trials SET state = 'cancelled', finished_at = ?, error = 'cancelled'"
        " WHERE job_id = ? AND state = 'queued'",
        "si", now, job_id);
}

int store_trial_pid(store *s, int64_t id, int pid, uint64_t start_time)
{
    return store_enqueue(s, "UPDATE trials SET pid = ?, pid_start_time = ? WHERE id = ?", "iii",
                         (int64_t)pid, (int64_t)start_time, id);
}

int store_trial_clear_pid(store *s, int64_t id)
{
    return store_enqueue(s, "UPDATE trials SET pid = NULL, pid_start_time = NULL WHERE id = ?", "i",
                         id);
}

int store_trial_test_accuracy(store *s, int64_t id, double accuracy)
{
    return store_enqueue(s, "UPDATE trials SET test_accuracy = ? WHERE id = ?", "di", accuracy, id);
}

int store_job_test_error(store *s, int64_t id, const char *why)
{
    return store_enqueue(s, "UPDATE jobs SET test_error = ? WHERE id = ?", "si", why, id);
}

int store_job_state(store *s, int64_t id, const char *state, const char *now, const char *error)
{
    if (!strcmp(state, "running"))
        return store_enqueue(s,
                             "UPDATE jobs SET state = 'running',"
                             " started_at = COALESCE(started_at, ?) WHERE id = ?",
                             "si", now, id);
    if (!strcmp(state, "queued"))
        return store_enqueue(s, "UPDATE jobs SET state = 'queued' WHERE id = ?", "i", id);
    return store_enqueue(s,
                         "UPDATE jobs SET state = ?, finished_at = ?, error = COALESCE(?, error)"
                         " WHERE id = ?",
                         "sssi", state, now, error, id);
}

void store_error_text(const json_t *ev, char *buf, size_t n)
{
    const char *m = json_string_value(json_object_get(ev, "message"));
    const char *c = json_string_value(json_object_get(ev, "code"));
    snprintf(buf, n, "%s%s%.1000s", c ? c : "", c ? ": " : "", m ? m : "(no message)");
    err_trim_utf8(buf, strlen(buf));
}

/* Member K of EV as a number, NaN (stored as NULL) when absent or not one. */
static double ev_num(const json_t *ev, const char *k)
{
    json_t *v = json_object_get(ev, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

void store_trial_event(store *s, int64_t trial_id, const json_t *ev)
{
    const char *kind = json_string_value(json_object_get(ev, "event"));
    if (!kind) return;
    if (!strcmp(kind, "epoch")) {
        json_t *ej = json_object_get(ev, "epoch");
        if (!json_is_integer(ej) || json_integer_value(ej) < 0) return;
        int64_t e = (int64_t)json_integer_value(ej);
        store_enqueue(s,
                      "INSERT OR REPLACE INTO trial_metrics (trial_id, epoch, train_loss,"
                      " train_accuracy, val_loss, val_accuracy, val_precision, val_recall,"
                      " val_f1, lr, seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      "iiddddddddd", trial_id, e, ev_num(ev, "train_loss"),
                      ev_num(ev, "train_accuracy"), ev_num(ev, "val_loss"),
                      ev_num(ev, "val_accuracy"), ev_num(ev, "val_precision"),
                      ev_num(ev, "val_recall"), ev_num(ev, "val_f1"), ev_num(ev, "lr"),
                      ev_num(ev, "seconds"));
        store_enqueue(s, "UPDATE trials SET last_epoch = ? WHERE id = ?", "ii", e, trial_id);
    } else if (!strcmp(kind, "start")) {
        const char *core = json_string_value(json_object_get(ev, "blas_core"));
        if (core)
            store_enqueue(s, "UPDATE trials SET blas_core = ? WHERE id = ?", "si", core, trial_id);
        /* The data files the worker left out and could not decode (NULL when
         * the event lacks them). */
        json_t *sk = json_object_get(ev, "skipped_files"), *bad = json_object_get(ev, "bad_images");
        store_enqueue(s, "UPDATE trials SET skipped_files = ?, bad_images = ? WHERE id = ?", "jji",
                      json_is_integer(sk) ? (int64_t)json_integer_value(sk) : INT64_MIN,
                      json_is_integer(bad) ? (int64_t)json_integer_value(bad) : INT64_MIN,
                      trial_id);
    } else if (!strcmp(kind, "checkpoint")) {
        const char *path = json_string_value(json_object_get(ev, "path"));
        if (path)
            store_enqueue(s, "UPDATE trials SET checkpoint_path = ? WHERE id = ?", "si", path,
                          trial_id);
    } else if (!strcmp(kind, "done")) {
        json_t *be = json_object_get(ev, "best_epoch");
        store_enqueue(s,
                      "UPDATE trials SET best_epoch = ?, val_accuracy = ?, val_loss = ?,"
                      " val_precision = ?, val_recall = ?, val_f1 = ? WHERE id = ?",
                      "jdddddi", json_is_integer(be) ? (int64_t)json_integer_value(be) : INT64_MIN,
                      ev_num(ev, "val_accuracy"), ev_num(ev, "val_loss"),
                      ev_num(ev, "val_precision"), ev_num(ev, "val_recall"), ev_num(ev, "val_f1"),
                      trial_id);
    } else if (!strcmp(kind, "error")) {
        char e[1100];
        store_error_text(ev, e, sizeof e);
        store_enqueue(s, "UPDATE trials SET error = ? WHERE id = ?", "si", e, trial_id);
    }
}

int store_trial_params(store *s, int64_t id, json_t **params, int64_t *seed, char *msg,
                       size_t msglen)
{
    *params = NULL;
    *seed = 0;
    sqlite3_stmt *st = store_stmt(s, "SELECT params_json, seed FROM trials WHERE id = ?");
    if (!st) return err_set(msg, msglen, ERR_DB, "cannot read trial %lld", (long long)id);
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *txt = (const char *)sqlite3_column_text(st, 0);
        *params = txt ? json_loads(txt, 0, NULL) : NULL;
        *seed = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (!*params)
        return err_set(msg, msglen, ERR_DB, "trial %lld has no parameters", (long long)id);
    return 0;
}

int store_job_best_trial(store *s, int64_t job_id, store_best_row *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(s, "SELECT id, number, objective_value, out_dir FROM best_trials"
                                     " WHERE job_id = ? AND rank = 1");
    if (!st) return ERR_DB;
    sqlite3_bind_int64(st, 1, job_id);
    int rc = ERR_NOTFOUND;
    if (sqlite3_step(st) == SQLITE_ROW) {
        out->id = sqlite3_column_int64(st, 0);
        out->number = sqlite3_column_int(st, 1);
        out->has_value = sqlite3_column_type(st, 2) != SQLITE_NULL;
        out->value = sqlite3_column_double(st, 2);
        const char *o = (const char *)sqlite3_column_text(st, 3);
        snprintf(out->out_dir, sizeof out->out_dir, "%s", o ? o : "");
        rc = 0;
    }
    sqlite3_reset(st);
    return rc;
}

/* Column I of ST as text, "" when NULL. */
static const char *col_text(sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    return t ? t : "";
}

int store_active_jobs(store *s, int (*fn)(void *ud, const store_job_row *row), void *ud)
{
    sqlite3_stmt *st =
        store_stmt(s, "SELECT id, spec_json, state, submitted_uid, max_parallel, trial_timeout,"
                      " max_retries, seed, objective_metric, objective_goal,"
                      " cancel_requested_at IS NOT NULL, trials_total FROM jobs"
                      " WHERE state IN ('queued', 'running') ORDER BY id");
    if (!st) return ERR_DB;
    int rc = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        store_job_row r = {
            .id = sqlite3_column_int64(st, 0),
            .spec_json = (const char *)sqlite3_column_text(st, 1),
            .running = !strcmp(col_text(st, 2), "running"),
            .uid = (uid_t)sqlite3_column_int64(st, 3),
            .max_parallel = sqlite3_column_int(st, 4),
            .trial_timeout =
                sqlite3_column_type(st, 5) == SQLITE_NULL ? 0 : sqlite3_column_double(st, 5),
            .max_retries = sqlite3_column_int(st, 6),
            .seed = (uint64_t)sqlite3_column_int64(st, 7),
            .metric = col_text(st, 8),
            .maximize = !strcmp(col_text(st, 9), "maximize"),
            .cancel_requested = sqlite3_column_int(st, 10) != 0,
            .trials_total = (size_t)sqlite3_column_int64(st, 11),
        };
        rc = fn(ud, &r);
    }
    sqlite3_reset(st);
    return rc;
}

int store_job_cancel_requested(store *s, int64_t job_id, const char *now)
{
    return store_enqueue(s, "UPDATE jobs SET cancel_requested_at = ? WHERE id = ?", "si", now,
                         job_id);
}

int store_job_trial_count(store *s, int64_t job_id, size_t *n)
{
    *n = 0;
    sqlite3_stmt *st = store_stmt(s, "SELECT count(*) FROM trials WHERE job_id = ?");
    if (!st) return ERR_DB;
    sqlite3_bind_int64(st, 1, job_id);
    if (sqlite3_step(st) == SQLITE_ROW) *n = (size_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return 0;
}

int store_job_trial_briefs(store *s, int64_t job_id, size_t max,
                           int (*fn)(void *ud, const store_trial_brief *t), void *ud)
{
    sqlite3_stmt *st = store_stmt(s, "SELECT id, number, state, attempt FROM trials"
                                     " WHERE job_id = ? ORDER BY number");
    if (!st) return ERR_DB;
    sqlite3_bind_int64(st, 1, job_id);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < max && sqlite3_step(st) == SQLITE_ROW; i++) {
        store_trial_brief t = {.id = sqlite3_column_int64(st, 0),
                               .number = sqlite3_column_int(st, 1),
                               .state = (const char *)sqlite3_column_text(st, 2),
                               .attempt = (unsigned)sqlite3_column_int(st, 3)};
        rc = fn(ud, &t);
    }
    sqlite3_reset(st);
    return rc;
}

int store_trial_procs(store *s, bool running, int (*fn)(void *ud, const store_proc_row *row),
                      void *ud)
{
    sqlite3_stmt *st =
        store_stmt(s, running ? "SELECT id, job_id, pid, pid_start_time, attempt, out_dir"
                                " FROM trials WHERE state = 'running'"
                              : "SELECT id, job_id, pid, pid_start_time, attempt, out_dir"
                                " FROM trials WHERE state != 'running' AND pid IS NOT NULL");
    if (!st) return ERR_DB;
    int rc = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        store_proc_row r = {.id = sqlite3_column_int64(st, 0),
                            .job_id = sqlite3_column_int64(st, 1),
                            .pid = sqlite3_column_int(st, 2),
                            .pid_start = (uint64_t)sqlite3_column_int64(st, 3),
                            .attempt = (unsigned)sqlite3_column_int(st, 4),
                            .out_dir = (const char *)sqlite3_column_text(st, 5)};
        rc = fn(ud, &r);
    }
    sqlite3_reset(st);
    return rc;
}

int store_clear_eval_pids(store *s)
{
    return store_enqueue(s,
                         "UPDATE trials SET pid = NULL, pid_start_time = NULL"
                         " WHERE state != 'running' AND pid IS NOT NULL",
                         "");
}

int store_trial_recovered_done(store *s, int64_t id, const char *now)
{
    return store_enqueue(s,
                         "UPDATE trials SET state = 'completed', pid = NULL, pid_start_time = NULL,"
                         " finished_at = ?, error = NULL WHERE id = ?",
                         "si", now, id);
}

int store_trials_queued(store *s, int (*fn)(void *ud, int64_t id, int64_t job_id), void *ud)
{
    sqlite3_stmt *st = store_stmt(s, "SELECT id, job_id FROM trials WHERE state = 'queued'");
    if (!st) return ERR_DB;
    int rc = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW)
        rc = fn(ud, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1));
    sqlite3_reset(st);
    return rc;
}

int store_requeue_running(store *s)
{
    return store_enqueue(s,
                         "UPDATE trials SET state = 'queued', attempt = attempt + 1, pid = NULL,"
                         " pid_start_time = NULL, error = 'interrupted: the daemon stopped"
                         " unexpectedly' WHERE state = 'running'",
                         "");
}

/* ---- pruners ----------------------------------------------------------- */

/* Steps ST (bound by the caller) to its end, appending column 1 (a number)
 * to *VALUES and, when IDS is not NULL, column 0 to *IDS; *N rows. Resets
 * ST. On failure (ERR_NOMEM, ERR_DB) nothing is returned. */
static int collect_values(sqlite3_stmt *st, int64_t **ids, double **values, size_t *n)
{
    size_t cap_v = 0, cap_i = 0;
    int rc = 0, step;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        double *v = grow_array(*values, *n + 1, &cap_v, sizeof *v, 16);
        int64_t *id = ids ? grow_array(*ids, *n + 1, &cap_i, sizeof *id, 16) : NULL;
        if (v) *values = v;
        if (id) *ids = id;
        if (!v || (ids && !id)) {
            rc = ERR_NOMEM;
            break;
        }
        if (ids) (*ids)[*n] = sqlite3_column_int64(st, 0);
        (*values)[(*n)++] = sqlite3_column_double(st, 1);
    }
    if (rc == 0 && step != SQLITE_DONE) rc = ERR_DB;
    sqlite3_reset(st);
    if (rc) {
        if (ids) {
            free(*ids);
            *ids = NULL;
        }
        free(*values);
        *values = NULL;
        *n = 0;
    }
    return rc;
}

int store_epoch_values(store *s, int64_t job_id, const char *metric, bool maximize, int epoch,
                       int64_t **ids, double **values, size_t *n)
{
    *ids = NULL;
    *values = NULL;
    *n = 0;
    if (!metric_ok(metric) || !strcmp(metric, "test_accuracy")) return ERR_DB;
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT m.trial_id, %s(m.%s) FROM trial_metrics m JOIN trials t ON t.id = m.trial_id"
             " WHERE t.job_id = ? AND m.epoch <= ? AND m.%s IS NOT NULL GROUP BY m.trial_id"
             " HAVING MAX(m.epoch) = ? ORDER BY m.trial_id",
             maximize ? "MAX" : "MIN", metric, metric);
    sqlite3_stmt *st = store_stmt(s, sql);
    if (!st) return ERR_DB;
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int(st, 2, epoch);
    sqlite3_bind_int(st, 3, epoch);
    return collect_values(st, ids, values, n);
}

int store_rung_values(store *s, int64_t job_id, int64_t trial_id, int rung_epoch, double **values,
                      size_t *n)
{
    *values = NULL;
    *n = 0;
    sqlite3_stmt *st = store_stmt(s, "SELECT r.trial_id, r.value FROM trial_rungs r JOIN trials t"
                                     " ON t.id = r.trial_id WHERE t.job_id = ? AND r.rung_epoch = ?"
                                     " AND r.trial_id <> ? AND r.value IS NOT NULL");
    if (!st) return ERR_DB;
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int(st, 2, rung_epoch);
    sqlite3_bind_int64(st, 3, trial_id);
    return collect_values(st, NULL, values, n);
}
int store_rung_lookup(store *s, int64_t trial_id, int rung_epoch, int *epoch, bool *stop,
                      char *reason, size_t len)
{
    sqlite3_stmt *st = store_stmt(
        s, rung_epoch > 0 ? "SELECT rung_epoch, decision = 'stop', reason FROM trial_rungs"
                            " WHERE trial_id = ? AND rung_epoch = ?"
                          : "SELECT rung_epoch, decision = 'stop', reason FROM trial_rungs"
                            " WHERE trial_id = ? AND decision = 'stop' AND rung_epoch > ?"
                            " ORDER BY rung_epoch LIMIT 1");
    if (!st) return ERR_DB;
    sqlite3_bind_int64(st, 1, trial_id);
    sqlite3_bind_int(st, 2, rung_epoch);
    int step = sqlite3_step(st), rc = 1;
    if (step == SQLITE_ROW) {
        *epoch = sqlite3_column_int(st, 0);
        *stop = sqlite3_column_int(st, 1) != 0;
        snprintf(reason, len, "%s", col_text(st, 2));
        rc = 0;
    } else if (step != SQLITE_DONE) {
        rc = ERR_DB;
    }
    sqlite3_reset(st);
    return rc;
}

int store_rung_record(store *s, int64_t trial_id, int rung_epoch, double value, bool stop,
                      const char *reason, const char *now)
{
    return store_enqueue(s,
                         "INSERT OR IGNORE INTO trial_rungs (trial_id, rung_epoch, value, decision,"
                         " reason, decided_at) VALUES (?, ?, ?, ?, ?, ?)",
                         "iidsss", trial_id, (int64_t)rung_epoch, value, stop ? "stop" : "continue",
                         reason, now);
}

/* ---- TPE history (README.md "Strategies") ------------------------------ */

int store_job_spec(store *s, int64_t job_id, char **spec_text)
{
    *spec_text = NULL;
    sqlite3_stmt *st = store_stmt(s, "SELECT spec_json FROM jobs WHERE id = ?");
    if (!st) return ERR_DB;
    sqlite3_bind_int64(st, 1, job_id);
    int step = sqlite3_step(st), rc = ERR_NOTFOUND;
    if (step == SQLITE_ROW) {
        *spec_text = strdup(col_text(st, 0));
        rc = *spec_text ? 0 : ERR_NOMEM;
    } else if (step != SQLITE_DONE) {
        rc = ERR_DB;
    }
    sqlite3_reset(st);
    return rc;
}

int store_job_history(store *s, int64_t job_id, const char *metric, bool finished_only,
                      int (*fn)(void *ud, const store_history_row *row), void *ud)
{
    if (!metric_ok(metric) || !strcmp(metric, "test_accuracy")) return ERR_DB;
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT t.number, t.state, t.params_json, CASE WHEN t.state = 'pruned' THEN"
             " (SELECT m.%s FROM trial_metrics m WHERE m.trial_id = t.id"
             " AND m.epoch = t.pruned_epoch) ELSE t.%s END, t.pruned_epoch,"
             " t.state IN ('queued', 'running') AS pending FROM trials t WHERE t.job_id = ?%s"
             " ORDER BY pending, CASE WHEN pending THEN NULL ELSE t.finished_at END, t.number",
             metric, metric, finished_only ? " AND t.state IN ('completed', 'pruned')" : "");
    sqlite3_stmt *st = store_stmt(s, sql);
    if (!st) return ERR_DB;
    sqlite3_bind_int64(st, 1, job_id);
    int rc = 0, step;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        store_history_row r = {
            .number = sqlite3_column_int(st, 0),
            .state = col_text(st, 1),
            .params_json = col_text(st, 2),
            .has_value = sqlite3_column_type(st, 3) != SQLITE_NULL,
            .value = sqlite3_column_double(st, 3),
            .pruned_epoch = sqlite3_column_int(st, 4),
        };
        rc = fn(ud, &r);
    }
    if (rc == 0 && step != SQLITE_DONE) rc = ERR_DB;
    sqlite3_reset(st);
    return rc;
}
