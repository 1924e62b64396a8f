/* Tests for daemon/store.c: connection settings and migrations, a job and its
 * trials inserted in one transaction, the write queue (order, NULLs, batching,
 * surviving a database locked by another connection), the read queries
 * behind status / best / trial, and the statements of the scheduler and
 * recovery (a trial's life, cancelling, what a restart loads). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "errors.h"
#include "jobspec.h"
#include "jsonx.h"
#include "log.h"
#include "store.h"
#include "util_jpeg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char dir[128]; // scratch directory
    char db[192];  // database path
    store *st;     // open store
    jobspec js;    // a 3-trial grid job
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (tju_mkdtemp(f->dir, sizeof f->dir, "store") < 0) return -1;
    snprintf(f->db, sizeof f->db, "%s/t.db", f->dir);
    char msg[512];
    log_set_level(LOGL_OFF);
    if (store_open(&f->st, f->db, SWEEP_SRCDIR "/sql", 20, msg, sizeof msg) != 0) {
        fprintf(stderr, "store_open: %s\n", msg);
        return -1;
    }
    char text[512];
    snprintf(
        text, sizeof text,
        "{\"name\":\"t\",\"data\":{\"train\":\"%s\"},\"model\":{\"weights\":null},"
        "\"space\":{\"lr\":[0.1,0.01,0.001]},\"objective\":{\"metric\":\"val_loss\"},\"seed\":3}",
        f->dir);
    json_t *j = jx_parse(text, strlen(text), msg, sizeof msg);
    if (!j || jobspec_parse(&f->js, j, JOBSPEC_EXPAND | JOBSPEC_CHECK_PATHS, 0, msg, sizeof msg))
        return -1;
    json_decref(j);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_close(f->st);
    jobspec_free(&f->js);
    tju_rmrf(f->dir);
    free(f);
    return 0;
}

static const char *one_text(store *s, const char *sql)
{
    static char buf[512];
    sqlite3_stmt *st = store_stmt(s, sql);
    assert_non_null(st);
    buf[0] = 0;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(buf, sizeof buf, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    return buf;
}

static void test_pragmas(void **state)
{
    fixture *f = *state;
    assert_string_equal(one_text(f->st, "PRAGMA journal_mode"), "wal");
    assert_string_equal(one_text(f->st, "PRAGMA synchronous"), "1"); // NORMAL
    assert_string_equal(one_text(f->st, "PRAGMA foreign_keys"), "1");
    assert_string_equal(one_text(f->st, "PRAGMA user_version"), "6"); // 0006_one_ranking
    /* Statements are cached: same pointer for the same SQL. */
    assert_ptr_equal(store_stmt(f->st, "SELECT 1"), store_stmt(f->st, "SELECT 1"));
}

static void test_job_insert_and_queries(void **state)
{
    fixture *f = *state;
    int64_t job = 0, ids[3];
    char msg[512];
    int rc =
        store_job_insert(f->st, &f->js, "{\"spec\":1}", 1000, 2, 60, 1, &job, ids, msg, sizeof msg);
    assert_int_equal(rc, 0);
    assert_true(job > 0);
    assert_true(ids[1] == ids[0] + 1 && ids[2] == ids[1] + 1);
    assert_string_equal(one_text(f->st, "SELECT group_concat(lr) FROM trials"), "0.1,0.01,0.001");
    assert_string_equal(one_text(f->st,
                                 "SELECT submitted_uid||'/'||trials_total||'/'||max_parallel"
                                 "||'/'||trial_timeout||'/'||seed||'/'||objective_goal FROM jobs"),
                        "1000/3/2/60.0/3/minimize");
    assert_string_equal(one_text(f->st, "SELECT params_json FROM trials WHERE number=1"),
                        "{\"lr\":0.01,\"batch_size\":32,\"epochs\":5,\"dropout\":0.0,"
                        "\"weight_decay\":0.0,\"l1\":0.0,\"momentum\":0.9,\"optimizer\":\"sgd\","
                        "\"freeze\":\"none\",\"augment\":false,\"lr_schedule\":\"constant\","
                        "\"warmup_epochs\":0,\"nesterov\":false,\"label_smoothing\":0.0}");
    /* Results through the queue: val_loss is minimized, so trial 2 (0.2) ranks first. */
    const double loss[3] = {0.5, NAN, 0.2};
    for (int i = 0; i < 3; i++) {
        store_enqueue(f->st,
                      "UPDATE trials SET state = 'completed', val_loss = ?, best_epoch = ?"
                      " WHERE id = ?",
                      "dji", loss[i], i == 1 ? INT64_MIN : (int64_t)2, ids[i]);
        store_enqueue(f->st,
                      "INSERT OR REPLACE INTO trial_metrics (trial_id, epoch, val_loss)"
                      " VALUES (?, ?, ?)",
                      "iid", ids[i], (int64_t)1, 0.9);
    }
    /* An epoch reported again (resumed attempt) replaces, never duplicates. */
    store_enqueue(f->st,
                  "INSERT OR REPLACE INTO trial_metrics (trial_id, epoch, val_loss)"
                  " VALUES (?, ?, ?)",
                  "iid", ids[0], (int64_t)1, 0.7);
    assert_int_equal(store_pending(f->st), 7);
    assert_string_equal(one_text(f->st, "SELECT count(*) FROM trial_metrics"), "0"); // not yet
    assert_int_equal(store_flush(f->st), 0);
    assert_int_equal(store_pending(f->st), 0);
    assert_string_equal(one_text(f->st, "SELECT count(*)||'/'||sum(val_loss) FROM trial_metrics"),
                        "3/2.5");
    assert_string_equal(one_text(f->st, "SELECT count(*) FROM trials WHERE val_loss IS NULL AND"
                                        " best_epoch IS NULL"),
                        "1");
    int err = 0;
    json_t *best = store_best(f->st, job, 5, &err, msg, sizeof msg);
    assert_non_null(best);
    assert_int_equal(json_array_size(best), 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(best, 0), "number")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(best, 1), "number")), 0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(best, 2), "number")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(best, 0), "rank")), 1);
    assert_true(json_real_value(json_object_get(json_array_get(best, 0), "value")) == 0.2);
    json_decref(best);
    best = store_best(f->st, job, 1, &err, msg, sizeof msg);
    assert_int_equal(json_array_size(best), 1);
    json_decref(best);
    json_t *sum = store_job_summary(f->st, job, &err, msg, sizeof msg);
    assert_non_null(sum);
    json_t *counts = json_object_get(sum, "counts");
    assert_int_equal(json_integer_value(json_object_get(counts, "completed")), 3);
    assert_int_equal(json_integer_value(json_object_get(counts, "queued")), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(sum, "best"), "number")),
                     2);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(sum, "objective"), "goal")), "minimize");
    json_decref(sum);
    json_t *t = store_trial(f->st, ids[0], &err, msg, sizeof msg);
    assert_non_null(t);
    assert_true(json_real_value(json_object_get(json_object_get(t, "params"), "lr")) == 0.1);
    json_t *m = json_object_get(t, "metrics");
    assert_int_equal(json_array_size(m), 1);
    assert_true(json_real_value(json_object_get(json_array_get(m, 0), "val_loss")) == 0.7);
    json_decref(t);
    json_t *trials = store_job_trials(f->st, job, &err, msg, sizeof msg);
    assert_int_equal(json_array_size(trials), 3);
    json_decref(trials);
    json_t *jobs = store_jobs(f->st, &err, msg, sizeof msg);
    assert_int_equal(json_array_size(jobs), 1);
    json_decref(jobs);
    /* Not found. */
    assert_null(store_trial(f->st, 999, &err, msg, sizeof msg));
    assert_int_equal(err, ERR_NOTFOUND);
    assert_string_equal(msg, "no trial 999");
    assert_null(store_job_summary(f->st, 999, &err, msg, sizeof msg));
    assert_int_equal(err, ERR_NOTFOUND);
    assert_string_equal(msg, "no job 999");
}

static void test_busy_keeps_queue(void **state)
{
    fixture *f = *state;
    sqlite3 *other;
    assert_int_equal(sqlite3_open(f->db, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    store_enqueue(f->st,
                  "INSERT INTO jobs (name, spec_json, strategy, submitted_at) VALUES (?, ?, ?, ?)",
                  "ssss", "queued-1", "{}", "grid", "2026-01-01T00:00:00.000Z");
    store_enqueue(f->st, "UPDATE jobs SET name = ? WHERE name = ?", "ss", "queued-2", "queued-1");
    assert_int_equal(store_flush(f->st), ERR_BUSY);
    assert_int_equal(store_pending(f->st), 2);
    /* A job insert while locked fails whole with ERR_BUSY, storing nothing. */
    int64_t job, ids[3];
    char msg[256];
    assert_int_equal(store_job_insert(f->st, &f->js, "{}", 0, 1, 0, 0, &job, ids, msg, sizeof msg),
                     ERR_BUSY);
    assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(store_flush(f->st), 0);
    assert_int_equal(store_pending(f->st), 0);
    /* Order kept: the update ran after the insert. */
    assert_string_equal(one_text(f->st, "SELECT group_concat(name) FROM jobs"), "queued-2");
    /* A reader's open transaction does not block writes (WAL). */
    assert_int_equal(sqlite3_exec(other, "BEGIN; SELECT count(*) FROM jobs;", NULL, NULL, NULL),
                     SQLITE_OK);
    store_enqueue(f->st, "UPDATE jobs SET name = 'x'", "");
    assert_int_equal(store_flush(f->st), 0);
    sqlite3_exec(other, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(other);
    /* A failing write is dropped (logged) and does not block later ones. */
    store_enqueue(f->st, "INSERT INTO nosuchtable VALUES (1)", "");
    store_enqueue(f->st, "UPDATE jobs SET name = 'y'", "");
    assert_int_equal(store_flush(f->st), 0);
    assert_string_equal(one_text(f->st, "SELECT name FROM jobs"), "y");
}

/* A full database (SQLITE_FULL; here max_page_count stands in for a full
 * disk): queued writes are kept, not dropped, and saved once space returns;
 * a job insert fails whole with ERR_IO and a message saying the database or
 * disk is full, naming the file (not a ROLLBACK's message). */
static void test_full_keeps_queue(void **state)
{
    fixture *f = *state;
    int pages = atoi(one_text(f->st, "PRAGMA page_count"));
    char sql[64], msg[512];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %d", pages);
    assert_int_equal(sqlite3_exec(store_db(f->st), sql, NULL, NULL, NULL), SQLITE_OK);
    static char big[20000];
    memset(big, 'x', sizeof big - 1);
    for (int i = 0; i < 4; i++) {
        char name[24];
        snprintf(name, sizeof name, "full-%d", i);
        assert_int_equal(store_enqueue(f->st,
                                       "INSERT INTO jobs (name, spec_json, strategy,"
                                       " submitted_at) VALUES (?, ?, ?, ?)",
                                       "ssss", name, big, "grid", "2026-01-01T00:00:00.000Z"),
                         0);
    }
    assert_int_equal(store_flush(f->st), ERR_IO);
    assert_int_equal(store_pending(f->st), 4);
    assert_int_equal(store_flush(f->st), ERR_IO); // again: still kept
    assert_int_equal(store_pending(f->st), 4);
    assert_string_equal(one_text(f->st, "SELECT count(*) FROM jobs"), "0");
    assert_int_equal(store_describe_failure(f->st, "saving", msg, sizeof msg), ERR_IO);
    char want[640];
    snprintf(want, sizeof want, "saving: the database or disk is full (%s: ", f->db);
    if (strncmp(msg, want, strlen(want))) fail_msg("message \"%s\", want prefix \"%s\"", msg, want);
    /* A job insert now: refused whole, naming the full database. */
    int64_t job, ids[3];
    assert_int_equal(store_job_insert(f->st, &f->js, big, 0, 1, 0, 0, &job, ids, msg, sizeof msg),
                     ERR_IO);
    snprintf(want, sizeof want, "cannot store the job: the database or disk is full (%s: ", f->db);
    if (strncmp(msg, want, strlen(want))) fail_msg("message \"%s\", want prefix \"%s\"", msg, want);
    assert_null(strstr(msg, "ROLLBACK"));
    /* The queue flushed first, so empty it to reach the insert's own failure. */
    store *st2 = NULL;
    char path2[256];
    snprintf(path2, sizeof path2, "%s/t2.db", f->dir);
    assert_int_equal(store_open(&st2, path2, SWEEP_SRCDIR "/sql", 20, msg, sizeof msg), 0);
    pages = atoi(one_text(st2, "PRAGMA page_count"));
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %d", pages);
    assert_int_equal(sqlite3_exec(store_db(st2), sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(store_job_insert(st2, &f->js, big, 0, 1, 0, 0, &job, ids, msg, sizeof msg),
                     ERR_IO);
    snprintf(want, sizeof want, "cannot store the job: the database or disk is full (%s: ", path2);
    if (strncmp(msg, want, strlen(want))) fail_msg("message \"%s\", want prefix \"%s\"", msg, want);
    assert_string_equal(one_text(st2, "SELECT count(*) FROM jobs"), "0");
    assert_string_equal(one_text(st2, "SELECT count(*) FROM trials"), "0");
    store_close(st2);
    /* Space returns: everything kept is saved, in order. */
    assert_int_equal(
        sqlite3_exec(store_db(f->st), "PRAGMA max_page_count = 1000000", NULL, NULL, NULL),
        SQLITE_OK);
    assert_int_equal(store_flush(f->st), 0);
    assert_int_equal(store_pending(f->st), 0);
    assert_string_equal(one_text(f->st, "SELECT group_concat(name) FROM (SELECT name FROM jobs"
                                        " ORDER BY id)"),
                        "full-0,full-1,full-2,full-3");
}

/* Callbacks collecting what the iterating store functions hand out. */
static int count_job(void *ud, const store_job_row *r)
{
    int *n = ud;
    assert_int_equal(r->max_parallel, 2);
    assert_true(r->trial_timeout == 60);
    assert_string_equal(r->metric, "val_loss");
    assert_false(r->maximize);
    assert_non_null(r->spec_json);
    (*n)++;
    return 0;
}

static int brief_states(void *ud, const store_trial_brief *t)
{
    char *buf = ud;
    size_t n = strlen(buf);
    snprintf(buf + n, 256 - n, "%s%d:%s:%u", n ? "," : "", t->number, t->state, t->attempt);
    return 0;
}

static int proc_rows(void *ud, const store_proc_row *r)
{
    char *buf = ud;
    size_t n = strlen(buf);
    snprintf(buf + n, 256 - n, "%s%lld:%d:%llu:%s", n ? "," : "", (long long)r->id, r->pid,
             (unsigned long long)r->pid_start, r->out_dir ? r->out_dir : "-");
    return 0;
}

/* The scheduler's and recovery's statements: a trial's life (started,
 * events, ended, requeued), cancelling queued trials, the best completed
 * trial, the rows a restart loads, and recovery's requeue. */
static void test_sched_statements(void **state)
{
    fixture *f = *state;
    int64_t job = 0, ids[3];
    char msg[512];
    assert_int_equal(
        store_job_insert(f->st, &f->js, "{\"spec\":1}", 1000, 2, 60, 1, &job, ids, msg, sizeof msg),
        0);
    json_t *params = NULL;
    int64_t seed = -1;
    assert_int_equal(store_trial_params(f->st, ids[2], &params, &seed, msg, sizeof msg), 0);
    assert_true(json_real_value(json_object_get(params, "lr")) == 0.001);
    assert_true(seed >= 0);
    json_decref(params);
    assert_int_equal(store_trial_params(f->st, 999, &params, &seed, msg, sizeof msg), ERR_DB);
    assert_string_equal(msg, "trial 999 has no parameters");
    const char *now = "2026-01-01T00:00:00.000Z";
    /* Trial 0 runs, reports, completes; trial 1 runs and goes back to the queue. */
    assert_int_equal(store_job_state(f->st, job, "running", now, NULL), 0);
    store_trial_state(f->st, ids[0], &(store_trial_change){"running", 0, now, "/o/0", 0, NULL, 0});
    store_trial_pid(f->st, ids[0], 4242, 77);
    const char *events[] = {
        "{\"event\":\"start\",\"blas_core\":\"Haswell\"}",
        "{\"event\":\"epoch\",\"epoch\":1,\"val_loss\":0.9,\"lr\":0.1}",
        "{\"event\":\"epoch\",\"epoch\":1,\"val_loss\":0.8}",  // replayed: replaces
        "{\"event\":\"epoch\",\"epoch\":-1,\"val_loss\":0.1}", // invalid: ignored
        "{\"event\":\"checkpoint\",\"path\":\"/o/0/ckpt\"}",
        "{\"event\":\"done\",\"best_epoch\":1,\"val_loss\":0.8}",
        "{\"event\":\"error\",\"code\":\"data\",\"message\":\"bad file\"}",
    };
    for (size_t i = 0; i < sizeof events / sizeof *events; i++) {
        json_t *ev = jx_parse(events[i], strlen(events[i]), msg, sizeof msg);
        assert_non_null(ev);
        store_trial_event(f->st, ids[0], ev);
        json_decref(ev);
    }
    store_trial_state(f->st, ids[0], &(store_trial_change){"completed", 0, now, NULL, 0, NULL, 0});
    store_trial_state(f->st, ids[1], &(store_trial_change){"running", 0, now, "/o/1", 0, NULL, 0});
    store_trial_state(f->st, ids[1],
                      &(store_trial_change){"queued", 1, now, NULL, INT64_MIN, "interrupted", 0});
    assert_int_equal(store_flush(f->st), 0);
    assert_string_equal(one_text(f->st, "SELECT state||'/'||attempt||'/'||coalesce(pid,'-')||'/'||"
                                        "exit_code||'/'||last_epoch||'/'||best_epoch||'/'||"
                                        "val_loss||'/'||checkpoint_path||'/'||blas_core||'/'||"
                                        "coalesce(error,'-')||'/'||out_dir FROM trials"
                                        " WHERE number = 0"),
                        // completion clears the error an earlier event or attempt left
                        "completed/0/-/0/1/1/0.8//o/0/ckpt/Haswell/-//o/0");
    assert_string_equal(one_text(f->st, "SELECT count(*)||'/'||val_loss||'/'||coalesce(lr,'-')"
                                        " FROM trial_metrics"),
                        "1/0.8/-");
    assert_string_equal(one_text(f->st, "SELECT state||'/'||attempt||'/'||coalesce(exit_code,'-')"
                                        "||'/'||error FROM trials WHERE number = 1"),
                        "queued/1/-/interrupted");
    /* The best completed trial, with its out_dir. */
    store_best_row b;
    assert_int_equal(store_job_best_trial(f->st, job, &b), 0);
    assert_true(b.id == ids[0] && b.number == 0 && b.has_value && b.value == 0.8);
    assert_string_equal(b.out_dir, "/o/0");
    assert_int_equal(store_job_best_trial(f->st, 999, &b), ERR_NOTFOUND);
    /* What a restart loads. */
    int n_jobs = 0;
    assert_int_equal(store_active_jobs(f->st, count_job, &n_jobs), 0);
    assert_int_equal(n_jobs, 1);
    size_t n = 0;
    assert_int_equal(store_job_trial_count(f->st, job, &n), 0);
    assert_int_equal(n, 3);
    char buf[256] = "";
    assert_int_equal(store_job_trial_briefs(f->st, job, 2, brief_states, buf), 0);
    assert_string_equal(buf, "0:completed:0,1:queued:1"); // at most MAX rows
    /* Recovery: a trial left running by a dead daemon, an evaluation's pid. */
    store_trial_state(f->st, ids[2], &(store_trial_change){"running", 0, now, "/o/2", 0, NULL, 0});
    store_trial_pid(f->st, ids[2], 99, 5);
    assert_int_equal(store_flush(f->st), 0);
    buf[0] = 0;
    assert_int_equal(store_trial_procs(f->st, true, proc_rows, buf), 0);
    char want[64];
    snprintf(want, sizeof want, "%lld:99:5:/o/2", (long long)ids[2]);
    assert_string_equal(buf, want);
    store_trial_pid(f->st, ids[0], 4243, 78); // a test-set evaluation of trial 0
    assert_int_equal(store_flush(f->st), 0);
    buf[0] = 0;
    assert_int_equal(store_trial_procs(f->st, false, proc_rows, buf), 0);
    snprintf(want, sizeof want, "%lld:4243:78:/o/0", (long long)ids[0]);
    assert_string_equal(buf, want);
    store_clear_eval_pids(f->st);
    store_requeue_running(f->st);
    assert_int_equal(store_flush(f->st), 0);
    assert_string_equal(one_text(f->st, "SELECT group_concat(state||':'||attempt||':'||"
                                        "coalesce(pid,'-')) FROM (SELECT * FROM trials"
                                        " ORDER BY number)"),
                        "completed:0:-,queued:1:-,queued:1:-");
    assert_string_equal(one_text(f->st, "SELECT error FROM trials WHERE number = 2"),
                        "interrupted: the daemon stopped unexpectedly");
    /* Cancelling: every queued trial at once; then the job ends. */
    store_job_cancel_queued(f->st, job, now);
    store_job_state(f->st, job, "cancelled", now, "by user");
    store_trial_recovered_done(f->st, ids[2], now); // (any id: the statement only)
    store_trial_test_accuracy(f->st, ids[0], 0.75);
    assert_int_equal(store_flush(f->st), 0);
    assert_string_equal(one_text(f->st, "SELECT group_concat(state) FROM (SELECT * FROM trials"
                                        " ORDER BY number)"),
                        "completed,cancelled,completed");
    assert_string_equal(one_text(f->st, "SELECT state||'/'||error||'/'||(finished_at IS NOT NULL)"
                                        "||'/'||(started_at IS NOT NULL) FROM jobs"),
                        "cancelled/by user/1/1");
    assert_string_equal(one_text(f->st, "SELECT test_accuracy FROM trials WHERE number = 0"),
                        "0.75");
}

/* The pruners' statements: best-so-far values at an epoch (only trials that
 * reached it, by the goal), rung records (kept once, others' values), the
 * lookup of a recorded stop, and pruned_epoch on the final state. */
static void test_prune_statements(void **state)
{
    fixture *f = *state;
    int64_t job, ids[3];
    char msg[512];
    assert_int_equal(
        store_job_insert(f->st, &f->js, "{\"spec\":1}", 1000, 1, 0, 0, &job, ids, msg, sizeof msg),
        0);
    /* val_loss (minimize): trial 0 reaches epoch 2 with 0.5 then 0.75 (best
     * 0.5); trial 1 0.25 at epoch 1 only; trial 2 1.0 then 0.125. */
    char sql[256];
    static const struct {
        int t, e;
        double v;
    } rows[] = {{0, 1, 0.5}, {0, 2, 0.75}, {1, 1, 0.25}, {2, 1, 1.0}, {2, 2, 0.125}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        snprintf(sql, sizeof sql, "{\"event\":\"epoch\",\"epoch\":%d,\"val_loss\":%g}", rows[i].e,
                 rows[i].v);
        json_t *ev = jx_parse(sql, strlen(sql), msg, sizeof msg);
        store_trial_event(f->st, ids[rows[i].t], ev);
        json_decref(ev);
    }
    assert_int_equal(store_flush(f->st), 0);
    int64_t *tid;
    double *val;
    size_t n;
    assert_int_equal(store_epoch_values(f->st, job, "val_loss", false, 2, &tid, &val, &n), 0);
    assert_int_equal(n, 2);
    assert_true(tid[0] == ids[0] && val[0] == 0.5 && tid[1] == ids[2] && val[1] == 0.125);
    free(tid);
    free(val);
    assert_int_equal(store_epoch_values(f->st, job, "val_loss", true, 2, &tid, &val, &n), 0);
    assert_true(n == 2 && val[0] == 0.75 && val[1] == 1.0); // maximize: the highest so far
    free(tid);
    free(val);
    assert_int_equal(store_epoch_values(f->st, job, "x; DROP TABLE t", true, 2, &tid, &val, &n),
                     ERR_DB);
    /* Rung records. */
    const char *now = "2026-01-01T00:00:00.000Z";
    store_rung_record(f->st, ids[0], 1, 0.5, false, "first", now);
    store_rung_record(f->st, ids[1], 1, 0.25, true, "second", now);
    store_rung_record(f->st, ids[1], 1, 0.9, false, "again", now); // kept once: ignored
    assert_int_equal(store_flush(f->st), 0);
    assert_int_equal(store_rung_values(f->st, job, ids[2], 1, &val, &n), 0);
    assert_int_equal(n, 2);
    assert_true(val[0] + val[1] == 0.75);
    free(val);
    assert_int_equal(store_rung_values(f->st, job, ids[0], 1, &val, &n), 0);
    assert_true(n == 1 && val[0] == 0.25);
    free(val);
    int at = 0;
    bool stop = false;
    char why[64];
    assert_int_equal(store_rung_lookup(f->st, ids[1], 1, &at, &stop, why, sizeof why), 0);
    assert_true(at == 1 && stop);
    assert_string_equal(why, "second");
    assert_int_equal(store_rung_lookup(f->st, ids[1], 0, &at, &stop, why, sizeof why), 0);
    assert_int_equal(store_rung_lookup(f->st, ids[0], 0, &at, &stop, why, sizeof why), 1);
    assert_int_equal(store_rung_lookup(f->st, ids[0], 2, &at, &stop, why, sizeof why), 1);
    /* pruned_epoch goes with the pruned state only. */
    store_trial_state(f->st, ids[1],
                      &(store_trial_change){"pruned", 0, now, NULL, 7, "pruned at epoch 1", 1});
    store_trial_state(f->st, ids[0], &(store_trial_change){"completed", 0, now, NULL, 0, NULL, 0});
    assert_int_equal(store_flush(f->st), 0);
    assert_string_equal(one_text(f->st, "SELECT group_concat(s, ' ') FROM (SELECT state || ':' ||"
                                        " coalesce(pruned_epoch, '-') AS s FROM trials"
                                        " WHERE number < 2 ORDER BY number)"),
                        "completed:- pruned:1");
    int err = 0;
    json_t *pr = store_job_pruned(f->st, job, &err, msg, sizeof msg);
    assert_int_equal(json_array_size(pr), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(pr, 0), "error")),
                        "pruned at epoch 1");
    json_decref(pr);
}

/* One ranking: two trials tied on the objective are rank 1 and 2 (the lower
 * number first) in store_best, and the lower number is the job's best. */
static void test_ties_rank_by_number(void **state)
{
    fixture *f = *state;
    int64_t job = 0, ids[3];
    char msg[512];
    assert_int_equal(
        store_job_insert(f->st, &f->js, "{}", 1000, 2, 60, 1, &job, ids, msg, sizeof msg), 0);
    /* val_loss minimized: trials 2 and 1 tie at 0.25 (trial 2 finished first), 0 is worse. */
    const double loss[3] = {0.5, 0.25, 0.25};
    const char *finished[3] = {"2026-11-28T15:00:03.000Z", "2026-11-28T15:00:02.000Z",
                               "2026-11-28T15:00:01.000Z"};
    for (int i = 0; i < 3; i++)
        store_enqueue(f->st,
                      "UPDATE trials SET state = 'completed', val_loss = ?, finished_at = ?"
                      " WHERE id = ?",
                      "dsi", loss[i], finished[i], ids[i]);
    assert_int_equal(store_flush(f->st), 0);
    int err = 0;
    json_t *best = store_best(f->st, job, 5, &err, msg, sizeof msg);
    assert_non_null(best);
    assert_int_equal(json_array_size(best), 3);
    static const int want[3] = {1, 2, 0}; // numbers by rank
    for (int r = 0; r < 3; r++) {
        json_t *row = json_array_get(best, r);
        assert_int_equal(json_integer_value(json_object_get(row, "rank")), r + 1);
        assert_int_equal(json_integer_value(json_object_get(row, "number")), want[r]);
    }
    json_decref(best);
    store_best_row b;
    assert_int_equal(store_job_best_trial(f->st, job, &b), 0);
    assert_true(b.id == ids[1] && b.number == 1 && b.has_value && b.value == 0.25);
    assert_string_equal(one_text(f->st, "SELECT group_concat(number || ':' || rank) FROM"
                                        " best_trials WHERE job_id = 1"),
                        "1:1,2:2,0:3");
}

/* A failed test evaluation is stored in jobs.test_error and shown by the job's
 * summary; the data-file counts of a "start" event land on the trial. */
static void test_test_error_and_data_counts(void **state)
{
    fixture *f = *state;
    int64_t job = 0, ids[3];
    char msg[512];
    assert_int_equal(
        store_job_insert(f->st, &f->js, "{}", 1000, 2, 60, 1, &job, ids, msg, sizeof msg), 0);
    store_job_test_error(f->st, job, "test-set evaluation failed (exit status 3): data error");
    json_t *ev =
        json_pack("{s:s, s:i, s:i}", "event", "start", "skipped_files", 4, "bad_images", 2);
    store_trial_event(f->st, ids[0], ev);
    json_decref(ev);
    ev = json_pack("{s:s}", "event", "start"); // an older worker: counts unknown
    store_trial_event(f->st, ids[1], ev);
    json_decref(ev);
    assert_int_equal(store_flush(f->st), 0);
    assert_string_equal(one_text(f->st, "SELECT group_concat(coalesce(skipped_files, '-') || '/' ||"
                                        " coalesce(bad_images, '-')) FROM trials"),
                        "4/2,-/-,-/-");
    int err = 0;
    json_t *sum = store_job_summary(f->st, job, &err, msg, sizeof msg);
    assert_non_null(sum);
    assert_string_equal(json_string_value(json_object_get(sum, "test_error")),
                        "test-set evaluation failed (exit status 3): data error");
    assert_true(json_is_null(json_object_get(sum, "error")));
    json_decref(sum);
    json_t *t = store_trial(f->st, ids[0], &err, msg, sizeof msg);
    assert_non_null(t);
    assert_int_equal(json_integer_value(json_object_get(t, "bad_images")), 2);
    json_decref(t);
}

static void test_open_errors(void **state)
{
    (void)state;
    store *s = NULL;
    char msg[512];
    int rc = store_open(&s, "/nonexistent/dir/x.db", SWEEP_SRCDIR "/sql", 10, msg, sizeof msg);
    assert_true(rc < 0);
    assert_null(s);
    assert_non_null(strstr(msg, "/nonexistent/dir/x.db"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pragmas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_insert_and_queries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_keeps_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_keeps_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sched_statements, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_statements, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ties_rank_by_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_test_error_and_data_counts, setup, teardown),
        cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
