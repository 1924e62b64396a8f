/* Tests for sql/schema.sql and common/migrate.c: the contract's tables,
 * columns and constraints, the best_trials ranking (maximize and minimize,
 * completed trials only, per job, NULLs last), and the migration rule (numeric
 * order, exactly once, rollback on failure naming the file). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "errors.h"
#include "log.h"
#include "migrate.h"
#include "util_jpeg.h"

#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SQL_DIR SWEEP_SRCDIR "/sql"

/* ---- helpers ---- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b) b[n] = '\0';
    fclose(f);
    return b;
}

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) fail_msg("SQL failed: %s\n  in: %s", err ? err : "?", sql);
    sqlite3_free(err);
}

static int exec_rc(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static sqlite3 *open_schema_db(void)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    char *sql = slurp(SQL_DIR "/schema.sql");
    assert_non_null(sql);
    exec_ok(db, sql);
    free(sql);
    exec_ok(db, "PRAGMA foreign_keys = ON");
    return db;
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("prepare failed: %s\n  in: %s", sqlite3_errmsg(db), sql);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) fail_msg("no row from: %s", sql);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The concatenation of column 0 of every row, comma-separated, into BUF. */
static const char *query_list(sqlite3 *db, const char *sql, char *buf, size_t n)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("prepare failed: %s\n  in: %s", sqlite3_errmsg(db), sql);
    size_t used = 0;
    buf[0] = '\0';
    while (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        int w =
            snprintf(buf + used, n - used, "%s%s", used ? "," : "", t ? (const char *)t : "NULL");
        if (w > 0) used += (size_t)w;
        if (used >= n) break;
    }
    sqlite3_finalize(st);
    return buf;
}

static int has_column(sqlite3 *db, const char *table, const char *col)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pragma_table_info('%s') WHERE name = '%s'",
             table, col);
    return (int)query_int(db, sql);
}

static void add_job(sqlite3 *db, int id, const char *metric, const char *goal)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO jobs(id, name, spec_json, strategy, state, objective_metric, "
             "objective_goal, submitted_at, trials_total) VALUES (%d, 'job%d', '{}', 'grid', "
             "'running', '%s', '%s', '2026-11-28T15:00:00.000Z', 0)",
             id, id, metric, goal);
    exec_ok(db, sql);
}

/* Adds trial NUMBER of JOB in STATE with the given metric values (NULL as "NULL"). */
static void add_trial(sqlite3 *db, int job, int number, const char *state, const char *acc,
                      const char *loss, const char *f1)
{
    char sql[768];
    snprintf(sql, sizeof sql,
             "INSERT INTO trials(job_id, number, state, lr, batch_size, epochs, params_json, "
             "seed, val_accuracy, val_loss, val_f1) VALUES (%d, %d, '%s', 0.01, 32, 3, '{}', %d, "
             "%s, %s, %s)",
             job, number, state, number, acc, loss, f1);
    exec_ok(db, sql);
}

/* ---- schema contents ---- */

static void test_schema_loads_and_sets_version(void **state)
{
    (void)state;
    sqlite3 *db = open_schema_db();
    int latest = -1;
    char msg[256];
    assert_int_equal(migrate_latest_version(SQL_DIR, &latest, msg, sizeof msg), 0);
    assert_true(latest >= 1);
    assert_int_equal(query_int(db, "PRAGMA user_version"), latest);
    sqlite3_close(db);
}

static void test_contract_columns_exist(void **state)
{
    (void)state;
    sqlite3 *db = open_schema_db();
    const char *jobs[] = {"id",
                          "name",
                          "spec_json",
                          "strategy",
                          "state",
                          "objective_metric",
                          "objective_goal",
                          "submitted_at",
                          "started_at",
                          "finished_at",
                          "submitted_uid",
                          "trials_total",
                          NULL};
    const char *trials[] = {
        "id",         "job_id",        "number",    "state",         "lr",
        "batch_size", "epochs",        "dropout",   "weight_decay",  "params_json",
        "seed",       "attempt",       "pid",       "started_at",    "finished_at",
        "best_epoch", "val_accuracy",  "val_loss",  "val_precision", "val_recall",
        "val_f1",     "test_accuracy", "exit_code", "error",         "checkpoint_path",
        NULL};
    const char *metrics[] = {"trial_id", "epoch",        "train_loss",    "train_accuracy",
                             "val_loss", "val_accuracy", "val_precision", "val_recall",
                             "val_f1",   "lr",           "seconds",       NULL};
    for (int i = 0; jobs[i]; i++)
        if (!has_column(db, "jobs", jobs[i])) fail_msg("jobs.%s missing", jobs[i]);
    for (int i = 0; trials[i]; i++)
        if (!has_column(db, "trials", trials[i])) fail_msg("trials.%s missing", trials[i]);
    for (int i = 0; metrics[i]; i++)
        if (!has_column(db, "trial_metrics", metrics[i]))
            fail_msg("trial_metrics.%s missing", metrics[i]);
    assert_int_equal(has_column(db, "best_trials", "rank"), 1);
    assert_int_equal(has_column(db, "best_trials", "job_id"), 1);
    assert_int_equal(has_column(db, "best_trials", "number"), 1);
    assert_int_equal(has_column(db, "jobs", "no_such_column"), 0);
    sqlite3_close(db);
}

static void test_state_checks(void **state)
{
    (void)state;
    sqlite3 *db = open_schema_db();
    add_job(db, 1, "val_accuracy", "maximize");
    assert_int_equal(exec_rc(db, "UPDATE jobs SET state = 'paused' WHERE id = 1"),
                     SQLITE_CONSTRAINT);
    const char *job_states[] = {"queued", "running", "done", "cancelled", "failed"};
    for (int i = 0; i < 5; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "UPDATE jobs SET state = '%s' WHERE id = 1", job_states[i]);
        assert_int_equal(exec_rc(db, sql), SQLITE_OK);
    }
    add_trial(db, 1, 0, "queued", "NULL", "NULL", "NULL");
    assert_int_equal(exec_rc(db, "UPDATE trials SET state = 'done' WHERE number = 0"),
                     SQLITE_CONSTRAINT);
    const char *trial_states[] = {"queued", "running",   "completed",
                                  "failed", "cancelled", "pruned"};
    for (int i = 0; i < 6; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "UPDATE trials SET state = '%s' WHERE number = 0",
                 trial_states[i]);
        assert_int_equal(exec_rc(db, sql), SQLITE_OK);
    }
    assert_int_equal(exec_rc(db, "UPDATE jobs SET objective_goal = 'maximise'"), SQLITE_CONSTRAINT);
    assert_int_equal(exec_rc(db, "UPDATE jobs SET objective_metric = 'train_loss'"),
                     SQLITE_CONSTRAINT);
    sqlite3_close(db);
}

static void test_unique_job_number(void **state)
{
    (void)state;
    sqlite3 *db = open_schema_db();
    add_job(db, 1, "val_accuracy", "maximize");
    add_job(db, 2, "val_accuracy", "maximize");
    add_trial(db, 1, 0, "queued", "NULL", "NULL", "NULL");
    add_trial(db, 2, 0, "queued", "NULL", "NULL", "NULL"); /* same number, other job: fine */
    assert_int_equal(exec_rc(db, "INSERT INTO trials(job_id, number, params_json, seed) "
                                 "VALUES (1, 0, '{}', 1)"),
                     SQLITE_CONSTRAINT);
    sqlite3_close(db);
}

static void test_foreign_keys_and_cascade(void **state)
{
    (void)state;
    sqlite3 *db = open_schema_db();
    assert_int_equal(exec_rc(db, "INSERT INTO trials(job_id, number, params_json, seed) "
                                 "VALUES (99, 0, '{}', 1)"),
                     SQLITE_CONSTRAINT);
    add_job(db, 1, "val_accuracy", "maximize");
    add_trial(db, 1, 0, "completed", "0.5", "1.0", "0.4");
    int64_t tid = query_int(db, "SELECT id FROM trials");
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO trial_metrics(trial_id, epoch, val_loss) VALUES (%lld, 1, 0.7)",
             (long long)tid);
    exec_ok(db, sql);
    assert_int_equal(exec_rc(db, "INSERT INTO trial_metrics(trial_id, epoch) VALUES (12345, 1)"),
                     SQLITE_CONSTRAINT);
    exec_ok(db, "DELETE FROM jobs WHERE id = 1");
    assert_int_equal(query_int(db, "SELECT count(*) FROM trials"), 0);
    assert_int_equal(query_int(db, "SELECT count(*) FROM trial_metrics"), 0);
    sqlite3_close(db);
}

static void test_metrics_primary_key(void **state)
{
    (void)state;
    sqlite3 *db = open_schema_db();
    add_job(db, 1, "val_accuracy", "maximize");
    add_trial(db, 1, 0, "running", "NULL", "NULL", "NULL");
    exec_ok(db, "INSERT INTO trial_metrics(trial_id, epoch, val_accuracy) VALUES (1, 1, 0.5)");
    exec_ok(db, "INSERT INTO trial_metrics(trial_id, epoch, val_accuracy) VALUES (1, 2, 0.6)");
    assert_int_equal(exec_rc(db, "INSERT INTO trial_metrics(trial_id, epoch) VALUES (1, 2)"),
                     SQLITE_CONSTRAINT);
    sqlite3_close(db);
}

static void test_indexes_exist(void **state)
{
    (void)state;
    sqlite3 *db = open_schema_db();
    char buf[256];
    assert_string_equal(query_list(db,
                                   "SELECT name FROM pragma_index_info('trials_job_state') "
                                   "ORDER BY seqno",
                                   buf, sizeof buf),
                        "job_id,state");
    assert_string_equal(
        query_list(db, "SELECT name FROM pragma_index_info('trials_state')", buf, sizeof buf),
        "state");
    sqlite3_close(db);
}

/* ---- best_trials ---- */

static void test_best_trials_maximize(void **state)
{
    (void)state;
    sqlite3 *db = open_schema_db();
    add_job(db, 1, "val_accuracy", "maximize");
    add_trial(db, 1, 0, "completed", "0.70", "0.9", "0.1");
    add_trial(db, 1, 1, "completed", "0.90", "0.5", "0.2");
    add_trial(db, 1, 2, "completed", "0.80", "0.1", "0.3");
    char buf[256];
    assert_string_equal(query_list(db,
                                   "SELECT number || ':' || rank FROM best_trials "
                                   "WHERE job_id = 1 ORDER BY rank",
                                   buf, sizeof buf),
                        "1:1,2:2,0:3");
    sqlite3_close(db);
}

static void test_best_trials_minimize(void **state)
{
    (void)state;
    sqlite3 *db = open_schema_db();
    add_job(db, 1, "val_loss", "minimize");
    add_trial(db, 1, 0, "completed", "0.70", "0.9", "0.1");
    add_trial(db, 1, 1, "completed", "0.90", "0.5", "0.2");
    add_trial(db, 1, 2, "completed", "0.80", "0.1", "0.3");
    char buf[256];
    assert_string_equal(query_list(db,
                                   "SELECT number || ':' || rank FROM best_trials "
                                   "WHERE job_id = 1 ORDER BY rank",
                                   buf, sizeof buf),
                        "2:1,1:2,0:3");
    sqlite3_close(db);
}

static void test_best_trials_minimize_negative_values(void **state)
{
    (void)state;
    /* Negation must not break for negative metrics (a log-likelihood loss, say). */
    sqlite3 *db = open_schema_db();
    add_job(db, 1, "val_loss", "minimize");
    add_job(db, 2, "val_loss", "maximize");
    add_trial(db, 1, 0, "completed", "NULL", "-0.5", "NULL");
    add_trial(db, 1, 1, "completed", "NULL", "-2.0", "NULL");
    add_trial(db, 1, 2, "completed", "NULL", "1.0", "NULL");
    add_trial(db, 2, 0, "completed", "NULL", "-0.5", "NULL");
    add_trial(db, 2, 1, "completed", "NULL", "-2.0", "NULL");
    add_trial(db, 2, 2, "completed", "NULL", "1.0", "NULL");
    char buf[256];
    assert_string_equal(query_list(db,
                                   "SELECT number FROM best_trials WHERE job_id = 1 "
                                   "ORDER BY rank",
                                   buf, sizeof buf),
                        "1,0,2");
    assert_string_equal(query_list(db,
                                   "SELECT number FROM best_trials WHERE job_id = 2 "
                                   "ORDER BY rank",
                                   buf, sizeof buf),
                        "2,0,1");
    sqlite3_close(db);
}

static void test_best_trials_metric_follows_job(void **state)
{
    (void)state;
    /* Job ranks by val_f1, which orders trials differently from val_accuracy. */
    sqlite3 *db = open_schema_db();
    add_job(db, 1, "val_f1", "maximize");
    add_trial(db, 1, 0, "completed", "0.95", "0.1", "0.10");
    add_trial(db, 1, 1, "completed", "0.50", "0.9", "0.60");
    add_trial(db, 1, 2, "completed", "0.70", "0.5", "0.30");
    char buf[256];
    assert_string_equal(query_list(db,
                                   "SELECT number FROM best_trials WHERE job_id = 1 "
                                   "ORDER BY rank",
                                   buf, sizeof buf),
                        "1,2,0");
    assert_string_equal(query_list(db,
                                   "SELECT objective_value FROM best_trials "
                                   "WHERE job_id = 1 AND rank = 1",
                                   buf, sizeof buf),
                        "0.6");
    sqlite3_close(db);
}

static void test_best_trials_other_metrics(void **state)
{
    (void)state;
    sqlite3 *db = open_schema_db();
    const char *metrics[] = {"val_precision", "val_recall", "test_accuracy"};
    for (int m = 0; m < 3; m++) {
        add_job(db, m + 1, metrics[m], "maximize");
        for (int n = 0; n < 3; n++) {
            add_trial(db, m + 1, n, "completed", "0.5", "0.5", "0.5");
            char sql[256];
            /* metric m is best for trial (n == m) */
            snprintf(sql, sizeof sql, "UPDATE trials SET %s = %f WHERE job_id = %d AND number = %d",
                     metrics[m], n == m ? 0.9 : 0.1 * n, m + 1, n);
            exec_ok(db, sql);
        }
    }
    for (int m = 0; m < 3; m++) {
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT number FROM best_trials WHERE job_id = %d AND rank = 1",
                 m + 1);
        assert_int_equal(query_int(db, sql), m);
    }
    sqlite3_close(db);
}

static void test_best_trials_only_completed(void **state)
{
    (void)state;
    sqlite3 *db = open_schema_db();
    add_job(db, 1, "val_accuracy", "maximize");
    add_trial(db, 1, 0, "completed", "0.60", "NULL", "NULL");
    add_trial(db, 1, 1, "running", "0.99", "NULL", "NULL");
    add_trial(db, 1, 2, "failed", "0.98", "NULL", "NULL");
    add_trial(db, 1, 3, "pruned", "0.97", "NULL", "NULL");
    add_trial(db, 1, 4, "cancelled", "0.96", "NULL", "NULL");
    add_trial(db, 1, 5, "queued", "0.95", "NULL", "NULL");
    add_trial(db, 1, 6, "completed", "0.50", "NULL", "NULL");
    char buf[256];
    assert_string_equal(query_list(db,
                                   "SELECT number || ':' || rank FROM best_trials "
                                   "WHERE job_id = 1 ORDER BY rank",
                                   buf, sizeof buf),
                        "0:1,6:2");
    sqlite3_close(db);
}

static void test_best_trials_per_job(void **state)
{
    (void)state;
    sqlite3 *db = open_schema_db();
    add_job(db, 1, "val_accuracy", "maximize");
    add_job(db, 2, "val_loss", "minimize");
    add_trial(db, 1, 0, "completed", "0.5", "0.2", "NULL");
    add_trial(db, 1, 1, "completed", "0.6", "0.9", "NULL");
    add_trial(db, 2, 0, "completed", "0.9", "0.3", "NULL");
    add_trial(db, 2, 1, "completed", "0.1", "0.1", "NULL");
    char buf[256];
    assert_string_equal(query_list(db,
                                   "SELECT job_id || '/' || number || ':' || rank "
                                   "FROM best_trials ORDER BY job_id, rank",
                                   buf, sizeof buf),
                        "1/1:1,1/0:2,2/1:1,2/0:2");
    assert_int_equal(query_int(db, "SELECT count(*) FROM best_trials WHERE rank = 1"), 2);
    sqlite3_close(db);
}

static void test_best_trials_nulls_last_and_ties(void **state)
{
    (void)state;
    sqlite3 *db = open_schema_db();
    add_job(db, 1, "val_accuracy", "maximize");
    add_job(db, 2, "val_loss", "minimize");
    add_trial(db, 1, 0, "completed", "NULL", "NULL", "NULL");
    add_trial(db, 1, 1, "completed", "0.8", "NULL", "NULL");
    add_trial(db, 1, 2, "completed", "0.8", "NULL", "NULL");
    add_trial(db, 1, 3, "completed", "0.1", "NULL", "NULL");
    add_trial(db, 2, 0, "completed", "NULL", "NULL", "NULL");
    add_trial(db, 2, 1, "completed", "NULL", "5.0", "NULL");
    char buf[256];
    assert_string_equal(query_list(db,
                                   "SELECT number || ':' || rank FROM best_trials "
                                   "WHERE job_id = 1 ORDER BY rank, number",
                                   buf, sizeof buf),
                        "1:1,2:1,3:3,0:4");
    assert_string_equal(query_list(db,
                                   "SELECT number || ':' || rank FROM best_trials "
                                   "WHERE job_id = 2 ORDER BY rank",
                                   buf, sizeof buf),
                        "1:1,0:2");
    sqlite3_close(db);
}

static void test_contract_example_query(void **state)
{
    (void)state;
    sqlite3 *db = open_schema_db();
    add_job(db, 1, "val_accuracy", "maximize");
    for (int n = 0; n < 8; n++) {
        char acc[16];
        snprintf(acc, sizeof acc, "0.%d", n + 1);
        add_trial(db, 1, n, "completed", acc, "NULL", "NULL");
    }
    char buf[256];
    assert_string_equal(query_list(db,
                                   "SELECT number FROM best_trials WHERE job_id=1 AND "
                                   "rank<=5",
                                   buf, sizeof buf),
                        "7,6,5,4,3");
    assert_int_equal(query_int(db, "SELECT batch_size FROM best_trials WHERE job_id=1 AND rank=1"),
                     32);
    sqlite3_close(db);
}

static void test_job_progress_counts(void **state)
{
    (void)state;
    sqlite3 *db = open_schema_db();
    add_job(db, 1, "val_accuracy", "maximize");
    add_job(db, 2, "val_accuracy", "maximize");
    add_trial(db, 1, 0, "completed", "0.5", "NULL", "NULL");
    add_trial(db, 1, 1, "completed", "0.5", "NULL", "NULL");
    add_trial(db, 1, 2, "running", "NULL", "NULL", "NULL");
    add_trial(db, 1, 3, "pruned", "NULL", "NULL", "NULL");
    char buf[256];
    assert_string_equal(query_list(db,
                                   "SELECT queued || running || completed || failed || "
                                   "cancelled || pruned FROM job_progress ORDER BY job_id",
                                   buf, sizeof buf),
                        "012001,000000");
    sqlite3_close(db);
}

/* ---- migrations ---- */

typedef struct {
    char dir[256]; // scratch sql dir: DIR/schema.sql, DIR/migrations/
} scratch;

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int scratch_setup(void **state)
{
    scratch *s = calloc(1, sizeof *s);
    if (!s) return -1;
    if (tju_mkdtemp(s->dir, sizeof s->dir, "schema") < 0) return -1;
    char m[300];
    snprintf(m, sizeof m, "%s/migrations", s->dir);
    if (mkdir(m, 0755) != 0) return -1;
    *state = s;
    return 0;
}

static int scratch_teardown(void **state)
{
    scratch *s = *state;
    nftw(s->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(s);
    return 0;
}

static void mig(scratch *s, const char *name, const char *text)
{
    char d[300];
    snprintf(d, sizeof d, "%s/migrations", s->dir);
    write_file(d, name, text);
}

static sqlite3 *mem_db(void)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    return db;
}

static void test_migrations_numeric_order_once(void **state)
{
    scratch *s = *state;
    /* 9 must run before 10 although "10_" sorts first as text. */
    mig(s, "1_log.sql", "CREATE TABLE applied(seq INTEGER PRIMARY KEY, name TEXT);");
    mig(s, "10_ten.sql", "INSERT INTO applied(name) VALUES ('ten');");
    mig(s, "9_nine.sql", "INSERT INTO applied(name) VALUES ('nine');");
    mig(s, "README", "not a migration");
    sqlite3 *db = mem_db();
    char msg[512] = "";
    assert_int_equal(migrate_run_pending(db, s->dir, msg, sizeof msg), 0);
    char buf[128];
    assert_string_equal(query_list(db, "SELECT name FROM applied ORDER BY seq", buf, sizeof buf),
                        "nine,ten");
    assert_int_equal(query_int(db, "PRAGMA user_version"), 10);
    /* A second run applies nothing. */
    assert_int_equal(migrate_apply(db, s->dir, msg, sizeof msg), 0);
    assert_int_equal(migrate_run_pending(db, s->dir, msg, sizeof msg), 0);
    assert_int_equal(query_int(db, "SELECT count(*) FROM applied"), 2);
    /* A new migration is applied alone. */
    mig(s, "11_eleven.sql", "INSERT INTO applied(name) VALUES ('eleven');");
    assert_int_equal(migrate_apply(db, s->dir, msg, sizeof msg), 0);
    assert_string_equal(query_list(db, "SELECT name FROM applied ORDER BY seq", buf, sizeof buf),
                        "nine,ten,eleven");
    assert_int_equal(query_int(db, "PRAGMA user_version"), 11);
    int latest = 0;
    assert_int_equal(migrate_latest_version(s->dir, &latest, msg, sizeof msg), 0);
    assert_int_equal(latest, 11);
    sqlite3_close(db);
}

static void test_migration_failure_rolls_back(void **state)
{
    scratch *s = *state;
    mig(s, "0001_base.sql", "CREATE TABLE a(x INTEGER);");
    mig(s, "0002_good.sql", "INSERT INTO a VALUES (2);");
    mig(s, "0003_bad.sql",
        "CREATE TABLE b(y INTEGER);\nINSERT INTO a VALUES (3);\n\n"
        "INSERT INTO no_such_table VALUES (1);\n");
    mig(s, "0004_later.sql", "INSERT INTO a VALUES (4);");
    sqlite3 *db = mem_db();
    char msg[512] = "";
    int rc = migrate_run_pending(db, s->dir, msg, sizeof msg);
    assert_int_equal(rc, ERR_DB);
    assert_non_null(strstr(msg, "0003_bad.sql"));
    assert_non_null(strstr(msg, "line 4"));
    assert_non_null(strstr(msg, "no_such_table"));
    assert_int_equal(query_int(db, "PRAGMA user_version"), 2);
    /* Nothing of 0003 survived, 0004 did not run. */
    assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'b'"), 0);
    assert_int_equal(query_int(db, "SELECT group_concat(x) FROM a"), 2);
    assert_int_equal(sqlite3_get_autocommit(db), 1);
    /* Once fixed, the rest applies in order. */
    mig(s, "0003_bad.sql", "CREATE TABLE b(y INTEGER);\nINSERT INTO a VALUES (3);\n");
    assert_int_equal(migrate_run_pending(db, s->dir, msg, sizeof msg), 0);
    assert_int_equal(query_int(db, "PRAGMA user_version"), 4);
    char buf[64];
    assert_string_equal(query_list(db, "SELECT x FROM a ORDER BY rowid", buf, sizeof buf), "2,3,4");
    sqlite3_close(db);
}

static void test_migration_with_transaction_statement_refused(void **state)
{
    scratch *s = *state;
    mig(s, "0001_base.sql", "BEGIN;\nCREATE TABLE a(x);\nCOMMIT;\n");
    sqlite3 *db = mem_db();
    char msg[512] = "";
    assert_int_equal(migrate_run_pending(db, s->dir, msg, sizeof msg), ERR_DB);
    assert_non_null(strstr(msg, "0001_base.sql line 1"));
    assert_int_equal(query_int(db, "PRAGMA user_version"), 0);
    assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_master"), 0);
    sqlite3_close(db);
}

static void test_empty_db_runs_schema_not_migrations(void **state)
{
    scratch *s = *state;
    write_file(s->dir, "schema.sql",
               "CREATE TABLE t(x);\nINSERT INTO t VALUES ('schema');\nPRAGMA user_version = 2;\n");
    mig(s, "0001_a.sql", "CREATE TABLE t(x); INSERT INTO t VALUES ('m1');");
    mig(s, "0002_b.sql", "INSERT INTO t VALUES ('m2');");
    sqlite3 *db = mem_db();
    char msg[512] = "";
    assert_int_equal(migrate_apply(db, s->dir, msg, sizeof msg), 0);
    char buf[64];
    assert_string_equal(query_list(db, "SELECT x FROM t", buf, sizeof buf), "schema");
    assert_int_equal(query_int(db, "PRAGMA user_version"), 2);
    sqlite3_close(db);
}

static void test_schema_version_mismatch_refused(void **state)
{
    scratch *s = *state;
    write_file(s->dir, "schema.sql", "CREATE TABLE t(x);\nPRAGMA user_version = 1;\n");
    mig(s, "0001_a.sql", "CREATE TABLE t(x);");
    mig(s, "0002_b.sql", "ALTER TABLE t ADD COLUMN y;");
    sqlite3 *db = mem_db();
    char msg[512] = "";
    assert_int_equal(migrate_apply(db, s->dir, msg, sizeof msg), ERR_INVALID);
    assert_non_null(strstr(msg, "schema.sql"));
    assert_non_null(strstr(msg, "user_version 1"));
    assert_int_equal(query_int(db, "PRAGMA user_version"), 0);
    assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_master"), 0);
    sqlite3_close(db);
}

static void test_schema_error_names_file(void **state)
{
    scratch *s = *state;
    write_file(s->dir, "schema.sql", "CREATE TABLE t(x);\nCREATE TABLE t(y);\n");
    mig(s, "0001_a.sql", "CREATE TABLE t(x);");
    sqlite3 *db = mem_db();
    char msg[512] = "";
    assert_int_equal(migrate_apply(db, s->dir, msg, sizeof msg), ERR_DB);
    assert_non_null(strstr(msg, "schema.sql line 2"));
    assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_master"), 0);
    sqlite3_close(db);
}

static void test_newer_database_refused(void **state)
{
    scratch *s = *state;
    mig(s, "0001_a.sql", "CREATE TABLE t(x);");
    sqlite3 *db = mem_db();
    exec_ok(db, "CREATE TABLE t(x); PRAGMA user_version = 5;");
    char msg[512] = "";
    assert_int_equal(migrate_apply(db, s->dir, msg, sizeof msg), ERR_STATE);
    assert_non_null(strstr(msg, "version 5"));
    assert_int_equal(query_int(db, "PRAGMA user_version"), 5);
    sqlite3_close(db);
}

static void test_foreign_database_refused(void **state)
{
    scratch *s = *state;
    write_file(s->dir, "schema.sql", "CREATE TABLE t(x);\nPRAGMA user_version = 1;\n");
    mig(s, "0001_a.sql", "CREATE TABLE t(x);");
    sqlite3 *db = mem_db();
    exec_ok(db, "CREATE TABLE unrelated(x);");
    char msg[512] = "";
    assert_int_equal(migrate_apply(db, s->dir, msg, sizeof msg), ERR_STATE);
    assert_non_null(strstr(msg, "user_version 0"));
    assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 't'"), 0);
    sqlite3_close(db);
}

static void test_bad_migration_names(void **state)
{
    scratch *s = *state;
    mig(s, "0001_a.sql", "CREATE TABLE t(x);");
    mig(s, "0002-b.sql", "SELECT 1;");
    char msg[512] = "";
    int latest = -1;
    assert_int_equal(migrate_latest_version(s->dir, &latest, msg, sizeof msg), ERR_INVALID);
    assert_non_null(strstr(msg, "0002-b.sql"));
    assert_int_equal(latest, -1);
    char path[512];
    snprintf(path, sizeof path, "%s/migrations/0002-b.sql", s->dir);
    unlink(path);
    mig(s, "0002_b.sql", "SELECT 1;");
    mig(s, "02_again.sql", "SELECT 2;");
    assert_int_equal(migrate_latest_version(s->dir, &latest, msg, sizeof msg), ERR_INVALID);
    assert_non_null(strstr(msg, "0002_b.sql"));
    assert_non_null(strstr(msg, "02_again.sql"));
    snprintf(path, sizeof path, "%s/migrations/02_again.sql", s->dir);
    unlink(path);
    assert_int_equal(migrate_latest_version(s->dir, &latest, msg, sizeof msg), 0);
    assert_int_equal(latest, 2);
}

static void test_missing_dir_reported(void **state)
{
    (void)state;
    char msg[512] = "";
    int latest = 0;
    assert_int_equal(migrate_latest_version("/nonexistent/sweep-sql", &latest, msg, sizeof msg),
                     ERR_IO);
    assert_non_null(strstr(msg, "/nonexistent/sweep-sql/migrations"));
}

static void test_open_transaction_refused(void **state)
{
    (void)state;
    sqlite3 *db = mem_db();
    exec_ok(db, "BEGIN");
    char msg[512] = "";
    assert_int_equal(migrate_apply(db, SQL_DIR, msg, sizeof msg), ERR_STATE);
    exec_ok(db, "ROLLBACK");
    sqlite3_close(db);
}

/* ---- the real sql/ directory ---- */

static void schema_dump(sqlite3 *db, char *buf, size_t n)
{
    query_list(db,
               "SELECT type || ' ' || name || ' ' || tbl_name || ' ' || sql FROM sqlite_master "
               "ORDER BY type, name",
               buf, n);
}

static void test_real_schema_equals_replayed_migrations(void **state)
{
    (void)state;
    char msg[512] = "";
    sqlite3 *a = mem_db(), *b = mem_db();
    assert_int_equal(migrate_apply(a, SQL_DIR, msg, sizeof msg), 0);
    assert_int_equal(migrate_run_pending(b, SQL_DIR, msg, sizeof msg), 0);
    assert_int_equal(query_int(a, "PRAGMA user_version"), query_int(b, "PRAGMA user_version"));
    static char da[65536], dbuf[65536];
    schema_dump(a, da, sizeof da);
    schema_dump(b, dbuf, sizeof dbuf);
    assert_true(strlen(da) > 100);
    assert_string_equal(da, dbuf);
    sqlite3_close(a);
    sqlite3_close(b);
}

static void test_real_schema_on_disk_reopen(void **state)
{
    scratch *s = *state;
    char path[512], msg[512] = "";
    snprintf(path, sizeof path, "%s/sweep.db", s->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    exec_ok(db, "PRAGMA journal_mode = WAL");
    assert_int_equal(migrate_apply(db, SQL_DIR, msg, sizeof msg), 0);
    add_job(db, 1, "val_accuracy", "maximize");
    sqlite3_close(db);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(migrate_apply(db, SQL_DIR, msg, sizeof msg), 0);
    assert_int_equal(query_int(db, "SELECT count(*) FROM jobs"), 1);
    int latest = 0;
    assert_int_equal(migrate_latest_version(SQL_DIR, &latest, msg, sizeof msg), 0);
    assert_int_equal(query_int(db, "PRAGMA user_version"), latest);
    sqlite3_close(db);
}

/* Every statement of sql/queries.sql (the documented example queries) runs
 * against the schema with sample rows, :job bound to a job that has data. */
static void test_example_queries_run(void **state)
{
    (void)state;
    char *sql = slurp(SQL_DIR "/queries.sql");
    assert_non_null(sql);
    sqlite3 *db = open_schema_db();
    add_job(db, 1, "val_accuracy", "maximize");
    add_trial(db, 1, 0, "completed", "0.5", "0.9", "0.4");
    add_trial(db, 1, 1, "failed", "NULL", "NULL", "NULL");
    add_trial(db, 1, 2, "running", "NULL", "NULL", "NULL");
    exec_ok(db,
            "UPDATE trials SET params_json = '{\"lr\":0.01,\"freeze\":\"none\"}', "
            "started_at = '2026-11-28T15:00:00.000Z', finished_at = '2026-11-28T15:10:00.000Z'");
    exec_ok(db, "INSERT INTO trial_metrics(trial_id, epoch, val_accuracy) VALUES (1, 1, 0.4), "
                "(1, 2, 0.5), (3, 1, 0.2)");
    const char *p = sql;
    int statements = 0;
    while (*p) {
        sqlite3_stmt *st = NULL;
        const char *tail = NULL;
        if (sqlite3_prepare_v2(db, p, -1, &st, &tail) != SQLITE_OK)
            fail_msg("sql/queries.sql statement %d: %s", statements + 1, sqlite3_errmsg(db));
        if (!st) break;
        int idx = sqlite3_bind_parameter_index(st, ":job");
        if (idx > 0) sqlite3_bind_int(st, idx, 1);
        int rc, rows = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            rows++;
        if (rc != SQLITE_DONE)
            fail_msg("sql/queries.sql statement %d: %s", statements + 1, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        statements++;
        p = tail;
    }
    assert_true(statements >= 1);
    free(sql);
    sqlite3_close(db);
}

int main(void)
{
    log_set_level(LOGL_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_loads_and_sets_version),
        cmocka_unit_test(test_contract_columns_exist),
        cmocka_unit_test(test_state_checks),
        cmocka_unit_test(test_unique_job_number),
        cmocka_unit_test(test_foreign_keys_and_cascade),
        cmocka_unit_test(test_metrics_primary_key),
        cmocka_unit_test(test_indexes_exist),
        cmocka_unit_test(test_best_trials_maximize),
        cmocka_unit_test(test_best_trials_minimize),
        cmocka_unit_test(test_best_trials_minimize_negative_values),
        cmocka_unit_test(test_best_trials_metric_follows_job),
        cmocka_unit_test(test_best_trials_other_metrics),
        cmocka_unit_test(test_best_trials_only_completed),
        cmocka_unit_test(test_best_trials_per_job),
        cmocka_unit_test(test_best_trials_nulls_last_and_ties),
        cmocka_unit_test(test_contract_example_query),
        cmocka_unit_test(test_job_progress_counts),
        cmocka_unit_test(test_example_queries_run),
        cmocka_unit_test_setup_teardown(test_migrations_numeric_order_once, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(test_migration_failure_rolls_back, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(test_migration_with_transaction_statement_refused,
                                        scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_empty_db_runs_schema_not_migrations, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(test_schema_version_mismatch_refused, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(test_schema_error_names_file, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(test_newer_database_refused, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(test_foreign_database_refused, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(test_bad_migration_names, scratch_setup, scratch_teardown),
        cmocka_unit_test(test_missing_dir_reported),
        cmocka_unit_test(test_open_transaction_refused),
        cmocka_unit_test(test_real_schema_equals_replayed_migrations),
        cmocka_unit_test_setup_teardown(test_real_schema_on_disk_reopen, scratch_setup,
                                        scratch_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
