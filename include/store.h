/* store — sweepd's single SQLite connection: setup, migrations, the queue of
 * pending writes, job insertion, the read queries behind the socket ops, and
 * every statement of the scheduler and of recovery (no other file of sweepd
 * holds SQL; sweepctl's read-only report queries are daemon/ctl/report_db.c,
 * which opens the database read-only and never migrates it).
 *
 * Only the event loop uses the connection. Writes that record events (trial
 * state changes, metrics, checkpoints) go through store_enqueue(): they are
 * appended to an in-memory queue and committed in order by store_flush(),
 * batched in one transaction per loop iteration. When the database is busy
 * (another process holds a write lock) the flush leaves the queue intact and
 * the periodic timer retries it, so nothing is ever dropped. The daemon keeps
 * its authoritative scheduling state in memory; the database is the durable
 * record and what readers see.
 *
 * Connection settings: journal_mode=WAL, synchronous=NORMAL, foreign_keys=ON,
 * a short busy timeout (the loop must not stall), prepared statements cached
 * per SQL text. */
#ifndef SWEEP_STORE_H
#define SWEEP_STORE_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "jobspec.h"

typedef struct store store;

/* Opens (creating) the database at PATH, sets WAL and the other pragmas and
 * applies the migrations in SQL_DIR. *OUT is owned by the caller (store_close). */
int store_open(store **out, const char *path, const char *sql_dir, int busy_ms, char *msg,
               size_t msglen);
/* Flushes pending writes (waiting up to a few seconds for locks) and closes. */
void store_close(store *s);
sqlite3 *store_db(store *s);
/* Sets the busy timeout in milliseconds. */
void store_set_busy(store *s, int busy_ms);

/* A cached prepared statement for SQL (reset and unbound; call sqlite3_reset
 * when done). NULL on a prepare error (logged). Borrowed. */
sqlite3_stmt *store_stmt(store *s, const char *sql);

/* Queues one write: SQL with parameters described by FMT, one char each:
 *   'i' int64_t, 'j' int64_t stored as NULL when INT64_MIN, 'd' double (NaN
 *   stored as NULL), 's' const char * (copied; NULL stored as NULL),
 *   'n' NULL (takes no argument).
 * Returns 0 or ERR_NOMEM. The write happens at the next store_flush(). */
int store_enqueue(store *s, const char *sql, const char *fmt, ...);
/* Commits queued writes in order, in one transaction. Returns 0 when the
 * queue is empty afterwards; ERR_BUSY when the database was locked or ERR_IO
 * when it or its disk was full or could not be written (SQLITE_FULL,
 * SQLITE_IOERR*, e.g. ENOSPC or EFBIG): then the transaction is rolled back
 * and every queued write is kept for the next try (logged once per episode,
 * with the original error). A write that fails for another reason
 * (constraint, misuse) is logged and dropped so it cannot block the rest. */
int store_flush(store *s);
/* Describes the last failed write for a user: "WHAT: the database or disk is
 * full (PATH: No space left on device); ..." and the like, naming the
 * database file. Returns its code (ERR_IO, ERR_BUSY or ERR_DB). */
int store_describe_failure(store *s, const char *what, char *msg, size_t msglen);
/* Number of queued writes. */
size_t store_pending(const store *s);

/* Inserts job JS and all of its trials in one transaction; fills *JOB_ID and
 * TRIAL_IDS[i] (JS->n_trials entries, caller-allocated). SPEC_TEXT is the
 * job as submitted. Flushes the queue first. ERR_BUSY when the database is
 * locked, ERR_IO when the database or disk is full (nothing stored either
 * way), ERR_DB otherwise, with the reason (naming the database) in msg. */
int store_job_insert(store *s, const jobspec *js, const char *spec_text, uid_t uid,
                     int max_parallel, double trial_timeout, int max_retries, int64_t *job_id,
                     int64_t *trial_ids, char *msg, size_t msglen);

/* Inserts trial T (a proposal of strategy tpe) of job JOB_ID in its own
 * transaction, committed before it returns (the queue is flushed first),
 * its row id into *ID. Errors as store_job_insert's (ERR_BUSY, ERR_IO: try
 * again later; nothing stored). */
int store_trial_add(store *s, int64_t job_id, const jobspec_trial *t, int64_t *id, char *msg,
                    size_t msglen);
/* The spec of job JOB_ID as submitted into *SPEC_TEXT (caller frees): 0,
 * ERR_NOTFOUND (no such job), ERR_NOMEM or ERR_DB. */
int store_job_spec(store *s, int64_t job_id, char **spec_text);

/* Live figures of a job the daemon is running, which it knows better (and
 * faster) than a query: trial counts per state and the best completed trial. */
typedef struct {
    int64_t counts[6]; // queued, running, completed, failed, cancelled, pruned
    bool has_best;     // a completed trial with a value exists
    int64_t best_id;   // its trials.id
    int best_number;   // its number
    double best_value; // its objective value
} store_live;
/* Returns true and fills OUT when JOB_ID is active; set by the scheduler. */
typedef bool (*store_live_fn)(void *ud, int64_t job_id, store_live *out);
void store_set_live(store *s, store_live_fn fn, void *ud);

/* Read queries: each returns a new JSON object (caller owns) or NULL with
 * ERR_NOTFOUND/ERR_DB in *ERR and the reason in msg. */
/* One job's summary: id, name, state, strategy, objective, times, trials_total,
 * counts per trial state, best {trial, number, value} or null. Summaries of
 * ended jobs never change and are cached (the most recent 1024); active jobs
 * take counts and best from the live callback. */
json_t *store_job_summary(store *s, int64_t job_id, int *err, char *msg, size_t msglen);
/* Every job's summary, oldest first, as an array. */
json_t *store_jobs(store *s, int *err, char *msg, size_t msglen);
/* The trial columns every trial reply carries, in this order. */
#define STORE_TRIAL_COLS                                                                           \
    "id, job_id, number, state, attempt, params_json, seed, pid, started_at, finished_at,"         \
    " best_epoch, val_accuracy, val_loss, val_precision, val_recall, val_f1, test_accuracy,"       \
    " exit_code, error, checkpoint_path, out_dir, last_epoch, blas_core, pruned_epoch,"            \
    " skipped_files, bad_images"

/* Trial rows of a job (array of objects, by number). */
json_t *store_job_trials(store *s, int64_t job_id, int *err, char *msg, size_t msglen);
/* The pruned trials of a job (array of trial rows, by pruned_epoch then
 * number); their "error" says why, "pruned_epoch" when. */
json_t *store_job_pruned(store *s, int64_t job_id, int *err, char *msg, size_t msglen);
/* The best LIMIT completed trials of a job, rows of the best_trials view in
 * rank order, each with "rank" and "value" (its objective value) (array). */
json_t *store_best(store *s, int64_t job_id, int limit, int *err, char *msg, size_t msglen);
/* One trial row with "params" and its "metrics" per epoch. */
json_t *store_trial(store *s, int64_t trial_id, int *err, char *msg, size_t msglen);
/* One trial row as an object (the columns the protocol shows). */
json_t *store_trial_row(sqlite3_stmt *st);

/* Facts about the database itself (table daemon_meta). store_meta_get copies
 * KEY's value into OUT and returns 0, returns 1 when KEY has none, or a
 * negative code with MSG. store_meta_set writes it at once (not queued: used
 * at start-up, before the loop). */
int store_meta_get(store *s, const char *key, char *out, size_t outlen, char *msg, size_t msglen);
int store_meta_set(store *s, const char *key, const char *value, char *msg, size_t msglen);
/* Number of jobs in the database, -1 on a database error. */
int64_t store_job_count(store *s);

/* A job's trial rows (those of store_job_trials, same order and keys) read
 * in chunks from one snapshot: the cursor has its own read-only connection
 * and read transaction, so a long reply is built a piece at a time without
 * holding the event loop, and every piece is of the moment the cursor was
 * opened. daemon/store_cursor.c */
typedef struct store_cursor store_cursor;
/* Opens a cursor on job JOB_ID's trials (the job is not checked: an unknown
 * job has no rows). NULL with *ERR and MSG on a database error. Owned by the
 * caller: store_cursor_close. */
store_cursor *store_trials_cursor_open(store *s, int64_t job_id, int *err, char *msg,
                                       size_t msglen);
/* Appends up to MAX next rows to ARR. Returns how many (0 = no more rows) or
 * a negative code with MSG. */
int store_cursor_next(store_cursor *cur, json_t *arr, int max, char *msg, size_t msglen);
/* Rows returned so far. */
size_t store_cursor_rows(const store_cursor *cur);
/* Ends the read transaction and frees CUR (NULL is a no-op). */
void store_cursor_close(store_cursor *cur);

/* ---- The statements of the scheduler, the runner and recovery ----------
 * Every SQL statement daemon/sched.c and daemon/recover.c need lives here,
 * so the store is the one module that knows the schema. Writes are queued
 * (store_enqueue) and return 0 or ERR_NOMEM; reads run at once on the loop's
 * connection. NOW is an ISO time (time_now_iso); EXIT_CODE INT64_MIN and a
 * NULL ERROR store NULL / keep the old error, as 'j' and COALESCE do. */

/* A trial's state change, as its row records it. */
typedef struct {
    const char *state;    // the new state: "running", "queued" or an end state
    unsigned attempt;     // running, queued: trials.attempt
    const char *now;      // running: started_at; an end state: finished_at
    const char *out_dir;  // running: trials.out_dir
    int64_t exit_code;    // queued, an end state: exit_code (INT64_MIN stores NULL)
    const char *error;    // queued, an end state: error (NULL keeps the old one)
    int64_t pruned_epoch; // an end state: pruned_epoch (INT64_MIN, or 0 when unset, stores NULL)
} store_trial_change;
/* Records trial ID's change C; the pid is cleared in every case. running
 * also clears finished_at and exit_code. */
int store_trial_state(store *s, int64_t id, const store_trial_change *c);
/* Every queued trial of JOB_ID becomes cancelled at NOW (one statement). */
int store_job_cancel_queued(store *s, int64_t job_id, const char *now);
/* The process running for trial ID (its worker, or the test-set evaluation
 * of that trial): PID and its start time (runner_proc_start_time). */
int store_trial_pid(store *s, int64_t id, int pid, uint64_t start_time);
/* Clears trial ID's pid and pid start time. */
int store_trial_clear_pid(store *s, int64_t id);
/* Records trial ID's test-set accuracy. */
int store_trial_test_accuracy(store *s, int64_t id, double accuracy);
/* Records why job ID's test-set evaluation failed or did not run
 * (jobs.test_error; WHY NULL clears it). */
int store_job_test_error(store *s, int64_t id, const char *why);
/* Job ID's state becomes STATE ("queued", "running", "done", ...): running
 * sets started_at (first time only, NOW); an end state sets finished_at = NOW
 * and ERROR (NULL keeps the old one). */
int store_job_state(store *s, int64_t id, const char *state, const char *now, const char *error);

/* Records worker event EV of trial TRIAL_ID (queued writes): epoch ->
 * trial_metrics row (INSERT OR REPLACE, so a replayed or resumed epoch never
 * duplicates) and last_epoch; start -> blas_core; checkpoint ->
 * checkpoint_path; done -> best_epoch and best val metrics; error -> error
 * (store_error_text). Other events are not stored. Used for live events and
 * by recovery's replay. */
void store_trial_event(store *s, int64_t trial_id, const json_t *ev);
/* The text stored for a worker's error event EV: "code: message", the
 * message cut to 1000 bytes at a character boundary; into BUF of N bytes. */
void store_error_text(const json_t *ev, char *buf, size_t n);

/* Reads trial ID's parameters and seed for its trial spec: *PARAMS is a new
 * object (caller owns). ERR_DB / ERR_NOTFOUND with the reason in msg. */
int store_trial_params(store *s, int64_t id, json_t **params, int64_t *seed, char *msg,
                       size_t msglen);

/* The best completed trial of a job: rank 1 of the best_trials view
 * (sql/schema.sql), so by the job's own objective, ties to the lower trial
 * number, trials without a value last. The one ranking every reader uses. */
typedef struct {
    int64_t id;         // trials.id
    int number;         // trials.number
    bool has_value;     // its objective value is not NULL
    double value;       // its objective value
    char out_dir[4096]; // trials.out_dir, "" when NULL
} store_best_row;
/* Fills OUT; returns 0, ERR_NOTFOUND (no completed trial) or ERR_DB. */
int store_job_best_trial(store *s, int64_t job_id, store_best_row *out);

/* A job the daemon should resume (state queued or running). The strings are
 * borrowed for the callback only. */
typedef struct {
    int64_t id;            // jobs.id
    const char *spec_json; // the job as submitted (may be NULL)
    bool running;          // state is 'running' (else 'queued')
    uid_t uid;             // submitted_uid
    int max_parallel;      // max_parallel
    double trial_timeout;  // seconds, 0 when NULL
    int max_retries;       // max_retries
    uint64_t seed;         // jobs.seed
    const char *metric;    // objective_metric
    bool maximize;         // objective_goal is 'maximize'
    bool cancel_requested; // cancel_requested_at is set: a cancel the last daemon did not finish
    size_t trials_total;   // trials_total: the trials the job runs
} store_job_row;
/* Calls FN for each active job, by id; stops at FN's first nonzero return,
 * which it returns. ERR_DB when the query fails. */
int store_active_jobs(store *s, int (*fn)(void *ud, const store_job_row *row), void *ud);

/* Records that a cancel of JOB_ID was requested at NOW (queued write). */
int store_job_cancel_requested(store *s, int64_t job_id, const char *now);

/* One trial of a job, for the scheduler's memory. STATE is borrowed. */
typedef struct {
    int64_t id;        // trials.id
    int number;        // trials.number
    const char *state; // trials.state
    unsigned attempt;  // trials.attempt
} store_trial_brief;
/* Number of trials of JOB_ID into *N. */
int store_job_trial_count(store *s, int64_t job_id, size_t *n);
/* Calls FN for each trial of JOB_ID by number, at most MAX times; stops at
 * FN's first nonzero return, which it returns. ERR_DB when the query fails. */
int store_job_trial_briefs(store *s, int64_t job_id, size_t max,
                           int (*fn)(void *ud, const store_trial_brief *t), void *ud);

/* A process recorded on a trial row (recovery). OUT_DIR is borrowed. */
typedef struct {
    int64_t id;          // trials.id
    int64_t job_id;      // trials.job_id
    int pid;             // trials.pid (0 when NULL)
    uint64_t pid_start;  // trials.pid_start_time (0 when NULL)
    unsigned attempt;    // trials.attempt
    const char *out_dir; // trials.out_dir (may be NULL)
} store_proc_row;
/* Calls FN for each trial in state running (RUNNING true), or for each trial
 * not running whose pid is set (a test-set evaluation's); stops at FN's first
 * nonzero return, which it returns. ERR_DB when the query fails. */
int store_trial_procs(store *s, bool running, int (*fn)(void *ud, const store_proc_row *row),
                      void *ud);
/* Clears the pid of every trial that is not running (evaluations' pids). */
int store_clear_eval_pids(store *s);
/* Recovery: trial ID, left running, had finished: completed at NOW. */
int store_trial_recovered_done(store *s, int64_t id, const char *now);
/* Calls FN for each queued trial (id, job id); stops at FN's first nonzero
 * return, which it returns. ERR_DB when the query fails. */
int store_trials_queued(store *s, int (*fn)(void *ud, int64_t id, int64_t job_id), void *ud);
/* Recovery: every trial still running goes back to queued with attempt + 1
 * and the error "interrupted: the daemon stopped unexpectedly". */
int store_requeue_running(store *s);

/* ---- Pruners (table trial_rungs; README.md "Pruners") ---------------- */

/* The values of every trial of JOB_ID that has metrics for epoch EPOCH: its
 * best METRIC (by the goal) over epochs 1..EPOCH, read at once (the caller
 * flushes first). *IDS and *VALUES are new arrays of *N entries (caller
 * frees both; NULL when *N is 0). 0, ERR_NOMEM or ERR_DB. */
int store_epoch_values(store *s, int64_t job_id, const char *metric, bool maximize, int epoch,
                       int64_t **ids, double **values, size_t *n);
/* The values recorded at rung RUNG_EPOCH for the trials of JOB_ID other than
 * TRIAL_ID (every decision so far, whichever it was): *VALUES is a new array
 * of *N entries (caller frees; NULL when *N is 0). 0, ERR_NOMEM or ERR_DB. */
int store_rung_values(store *s, int64_t job_id, int64_t trial_id, int rung_epoch, double **values,
                      size_t *n);
/* A decision recorded for trial TRIAL_ID: at RUNG_EPOCH, or with RUNG_EPOCH
 * 0 its first "stop" decision at any epoch. Fills *EPOCH, *STOP and REASON
 * (LEN bytes). Returns 0 when found, 1 when there is none, ERR_DB. */
int store_rung_lookup(store *s, int64_t trial_id, int rung_epoch, int *epoch, bool *stop,
                      char *reason, size_t len);
/* Records one decision (queued write; the caller flushes it before acting):
 * trial TRIAL_ID at RUNG_EPOCH with VALUE, STOP or continue, REASON, at NOW.
 * A decision already recorded there is kept (INSERT OR IGNORE). */
int store_rung_record(store *s, int64_t trial_id, int rung_epoch, double value, bool stop,
                      const char *reason, const char *now);

/* ---- TPE history (README.md "Strategies") ---------------------------- */

/* One trial of a job for the proposals of strategy tpe. Strings are
 * borrowed for the callback only. */
typedef struct {
    int number;              // trials.number
    const char *state;       // trials.state
    const char *params_json; // trials.params_json
    bool has_value;          // VALUE is known
    double value;            // completed: its METRIC; pruned: METRIC at pruned_epoch
    int pruned_epoch;        // pruned: trials.pruned_epoch (0 otherwise)
} store_history_row;
/* Calls FN for the trials of JOB_ID (with FINISHED_ONLY those completed
 * or pruned), finished ones first in finishing order (finished_at, then
 * number), then queued and running ones by number; stops at FN's first
 * nonzero return, which it returns. Read at once (the caller flushes
 * first). ERR_DB when the query fails. */
int store_job_history(store *s, int64_t job_id, const char *metric, bool finished_only,
                      int (*fn)(void *ud, const store_history_row *row), void *ud);

#endif
