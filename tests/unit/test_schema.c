/* Tests for sql/schema.sql and common/migrate.c: the contract's tables,
 * columns and constraints, the best_trials ranking (maximize and minimize,
 * completed trials only, per job, NULLs last, ties to the lower number), and
 * the migration rule (numeric
 * order, exactly once, rollback on failure naming the file). Tests of the same
 * shape are rows of a table, each its own cmocka test: schema_cases (rows
 * inserted, statements and the code each must return, queries and the text
 * each must give) and migration_cases (a scratch sql dir, the call, its code
 * and message, the database after). */
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

/* The contract's columns, per table or view. */
static const struct {
    const char *table;    // table or view
    const char *cols[26]; // its columns, NULL-terminated
} contract_columns[] = {
    {"jobs",
     {"id", "name", "spec_json", "strategy", "state", "objective_metric", "objective_goal",
      "submitted_at", "started_at", "finished_at", "submitted_uid", "trials_total", NULL}},
    {"trials", {"id",         "job_id",        "number",    "state",         "lr",
                "batch_size", "epochs",        "dropout",   "weight_decay",  "params_json",
                "seed",       "attempt",       "pid",       "started_at",    "finished_at",
                "best_epoch", "val_accuracy",  "val_loss",  "val_precision", "val_recall",
                "val_f1",     "test_accuracy", "exit_code", "error",         "checkpoint_path",
                NULL}},
    {"trial_metrics",
     {"trial_id", "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
      "val_precision", "val_recall", "val_f1", "lr", "seconds", NULL}},
    {"best_trials", {"rank", "job_id", "number", NULL}},
};

static void test_contract_columns_exist(void **state)
{
    (void)state;
    sqlite3 *db = open_schema_db();
    for (size_t t = 0; t < sizeof contract_columns / sizeof contract_columns[0]; t++)
        for (int i = 0; contract_columns[t].cols[i]; i++)
            if (has_column(db, contract_columns[t].table, contract_columns[t].cols[i]) != 1)
                fail_msg("%s.%s missing", contract_columns[t].table, contract_columns[t].cols[i]);
    assert_int_equal(has_column(db, "jobs", "no_such_column"), 0);
    sqlite3_close(db);
}

/* ---- table-driven cases: rows, statements, queries ---- */

/* One statement and the sqlite3_exec() code it must return. */
typedef struct {
    const char *sql; // the statement
    int rc;          // SQLITE_OK or SQLITE_CONSTRAINT
} stmt_case;

/* One query and the text query_list() must give for it. */
typedef struct {
    const char *sql;  // the query
    const char *want; // its rows' column 0, comma-separated
} query_case;

#define N_OF(a) (sizeof(a) / sizeof(a)[0])

/* Checks the first N queries of QS (up to one with sql NULL) on DB; NAME
 * names the failing case. */
static void check_queries(sqlite3 *db, const char *name, const query_case *qs, size_t n)
{
    char buf[256];
    for (size_t i = 0; i < n && qs[i].sql; i++)
        if (strcmp(query_list(db, qs[i].sql, buf, sizeof buf), qs[i].want) != 0)
            fail_msg("%s: got \"%s\", want \"%s\" from: %s", name, buf, qs[i].want, qs[i].sql);
}

/* A job row for add_job(). */
typedef struct {
    int id;             // jobs.id; 0 ends a list
    const char *metric; // objective_metric
    const char *goal;   // objective_goal
} job_row;

/* A trial row for add_trial(); metric values as SQL literals ("NULL"). */
typedef struct {
    int job;           // job_id; 0 ends a list
    int number;        // number within the job
    const char *state; // trials.state
    const char *acc;   // val_accuracy
    const char *loss;  // val_loss
    const char *f1;    // val_f1
} trial_row;

/* A case on the real schema: rows inserted, then each statement must return
 * its code, then each query must give its text. */
typedef struct {
    const char *name;      // the cmocka test name
    job_row jobs[3];       // inserted first
    trial_row trials[9];   // then these
    stmt_case stmts[16];   // run in order
    query_case queries[3]; // checked last
} schema_case;

#define RANK_BY_NUMBER(job)                                                                        \
    "SELECT number || ':' || rank FROM best_trials WHERE job_id = " #job " ORDER BY rank"
#define NUMBERS_BY_RANK(job) "SELECT number FROM best_trials WHERE job_id = " #job " ORDER BY rank"

static const schema_case schema_cases[] = {
    {"test_state_checks",
     {{1, "val_accuracy", "maximize"}},
     {{1, 0, "queued", "NULL", "NULL", "NULL"}},
     {{"UPDATE jobs SET state = 'paused' WHERE id = 1", SQLITE_CONSTRAINT},
      {"UPDATE jobs SET state = 'queued' WHERE id = 1", SQLITE_OK},
      {"UPDATE jobs SET state = 'running' WHERE id = 1", SQLITE_OK},
      {"UPDATE jobs SET state = 'done' WHERE id = 1", SQLITE_OK},
      {"UPDATE jobs SET state = 'cancelled' WHERE id = 1", SQLITE_OK},
      {"UPDATE jobs SET state = 'failed' WHERE id = 1", SQLITE_OK},
      {"UPDATE trials SET state = 'done' WHERE number = 0", SQLITE_CONSTRAINT},
      {"UPDATE trials SET state = 'queued' WHERE number = 0", SQLITE_OK},
      {"UPDATE trials SET state = 'running' WHERE number = 0", SQLITE_OK},
      {"UPDATE trials SET state = 'completed' WHERE number = 0", SQLITE_OK},
      {"UPDATE trials SET state = 'failed' WHERE number = 0", SQLITE_OK},
      {"UPDATE trials SET state = 'cancelled' WHERE number = 0", SQLITE_OK},
      {"UPDATE trials SET state = 'pruned' WHERE number = 0", SQLITE_OK},
      {"UPDATE jobs SET objective_goal = 'maximise'", SQLITE_CONSTRAINT},
      {"UPDATE jobs SET objective_metric = 'train_loss'", SQLITE_CONSTRAINT}},
     {{NULL, NULL}}},
    {"test_unique_job_number",
     {{1, "val_accuracy", "maximize"}, {2, "val_accuracy", "maximize"}},
     /* the same number in another job is fine */
     {{1, 0, "queued", "NULL", "NULL", "NULL"}, {2, 0, "queued", "NULL", "NULL", "NULL"}},
     {{"INSERT INTO trials(job_id, number, params_json, seed) VALUES (1, 0, '{}', 1)",
       SQLITE_CONSTRAINT}},
     {{NULL, NULL}}},
    {"test_foreign_keys_and_cascade",
     {{1, "val_accuracy", "maximize"}},
     {{1, 0, "completed", "0.5", "1.0", "0.4"}},
     {{"INSERT INTO trials(job_id, number, params_json, seed) VALUES (99, 0, '{}', 1)",
       SQLITE_CONSTRAINT},
      {"INSERT INTO trial_metrics(trial_id, epoch, val_loss) SELECT id, 1, 0.7 FROM trials",
       SQLITE_OK},
      {"INSERT INTO trial_metrics(trial_id, epoch) VALUES (12345, 1)", SQLITE_CONSTRAINT},
      {"DELETE FROM jobs WHERE id = 1", SQLITE_OK}},
     {{"SELECT count(*) FROM trials", "0"}, {"SELECT count(*) FROM trial_metrics", "0"}}},
    {"test_metrics_primary_key",
     {{1, "val_accuracy", "maximize"}},
     {{1, 0, "running", "NULL", "NULL", "NULL"}},
     {{"INSERT INTO trial_metrics(trial_id, epoch, val_accuracy) VALUES (1, 1, 0.5)", SQLITE_OK},
      {"INSERT INTO trial_metrics(trial_id, epoch, val_accuracy) VALUES (1, 2, 0.6)", SQLITE_OK},
      {"INSERT INTO trial_metrics(trial_id, epoch) VALUES (1, 2)", SQLITE_CONSTRAINT}},
     {{NULL, NULL}}},
    {"test_indexes_exist",
     {{0, NULL, NULL}},
     {{0, 0, NULL, NULL, NULL, NULL}},
     {{NULL, 0}},
     {{"SELECT name FROM pragma_index_info('trials_job_state') ORDER BY seqno", "job_id,state"},
      {"SELECT name FROM pragma_index_info('trials_state')", "state"}}},
    /* best_trials: rank 1 is the best completed trial of each job by the
     * job's own objective. */
    {"test_best_trials_maximize",
     {{1, "val_accuracy", "maximize"}},
     {{1, 0, "completed", "0.70", "0.9", "0.1"},
      {1, 1, "completed", "0.90", "0.5", "0.2"},
      {1, 2, "completed", "0.80", "0.1", "0.3"}},
     {{NULL, 0}},
     {{RANK_BY_NUMBER(1), "1:1,2:2,0:3"}}},
    {"test_best_trials_minimize",
     {{1, "val_loss", "minimize"}},
     {{1, 0, "completed", "0.70", "0.9", "0.1"},
      {1, 1, "completed", "0.90", "0.5", "0.2"},
      {1, 2, "completed", "0.80", "0.1", "0.3"}},
     {{NULL, 0}},
     {{RANK_BY_NUMBER(1), "2:1,1:2,0:3"}}},
    /* Negation must not break for negative metrics (a log-likelihood loss, say). */
    {"test_best_trials_minimize_negative_values",
     {{1, "val_loss", "minimize"}, {2, "val_loss", "maximize"}},
     {{1, 0, "completed", "NULL", "-0.5", "NULL"},
      {1, 1, "completed", "NULL", "-2.0", "NULL"},
      {1, 2, "completed", "NULL", "1.0", "NULL"},
      {2, 0, "completed", "NULL", "-0.5", "NULL"},
      {2, 1, "completed", "NULL", "-2.0", "NULL"},
      {2, 2, "completed", "NULL", "1.0", "NULL"}},
     {{NULL, 0}},
     {{NUMBERS_BY_RANK(1), "1,0,2"}, {NUMBERS_BY_RANK(2), "2,0,1"}}},
    /* The job ranks by val_f1, which orders the trials unlike val_accuracy. */
    {"test_best_trials_metric_follows_job",
     {{1, "val_f1", "maximize"}},
     {{1, 0, "completed", "0.95", "0.1", "0.10"},
      {1, 1, "completed", "0.50", "0.9", "0.60"},
      {1, 2, "completed", "0.70", "0.5", "0.30"}},
     {{NULL, 0}},
     {{NUMBERS_BY_RANK(1), "1,2,0"},
      {"SELECT objective_value FROM best_trials WHERE job_id = 1 AND rank = 1", "0.6"}}},
    {"test_best_trials_only_completed",
     {{1, "val_accuracy", "maximize"}},
     {{1, 0, "completed", "0.60", "NULL", "NULL"},
      {1, 1, "running", "0.99", "NULL", "NULL"},
      {1, 2, "failed", "0.98", "NULL", "NULL"},
      {1, 3, "pruned", "0.97", "NULL", "NULL"},
      {1, 4, "cancelled", "0.96", "NULL", "NULL"},
      {1, 5, "queued", "0.95", "NULL", "NULL"},
      {1, 6, "completed", "0.50", "NULL", "NULL"}},
     {{NULL, 0}},
     {{RANK_BY_NUMBER(1), "0:1,6:2"}}},
    {"test_best_trials_per_job",
     {{1, "val_accuracy", "maximize"}, {2, "val_loss", "minimize"}},
     {{1, 0, "completed", "0.5", "0.2", "NULL"},
      {1, 1, "completed", "0.6", "0.9", "NULL"},
      {2, 0, "completed", "0.9", "0.3", "NULL"},
      {2, 1, "completed", "0.1", "0.1", "NULL"}},
     {{NULL, 0}},
     {{"SELECT job_id || '/' || number || ':' || rank FROM best_trials ORDER BY job_id, rank",
       "1/1:1,1/0:2,2/1:1,2/0:2"},
      {"SELECT count(*) FROM best_trials WHERE rank = 1", "2"}}},
    {"test_best_trials_nulls_last_and_ties",
     {{1, "val_accuracy", "maximize"}, {2, "val_loss", "minimize"}},
     {{1, 0, "completed", "NULL", "NULL", "NULL"},
      {1, 1, "completed", "0.8", "NULL", "NULL"},
      {1, 2, "completed", "0.8", "NULL", "NULL"},
      {1, 3, "completed", "0.1", "NULL", "NULL"},
      {2, 0, "completed", "NULL", "NULL", "NULL"},
      {2, 1, "completed", "NULL", "5.0", "NULL"}},
     {{NULL, 0}},
     {{"SELECT number || ':' || rank FROM best_trials WHERE job_id = 1 ORDER BY rank, number",
       "1:1,2:2,3:3,0:4"},
      {RANK_BY_NUMBER(2), "1:1,0:2"}}},
    /* One ranking (README.md "Objective"): ties go to the lower trial
     * number, whatever order the rows were written in, so exactly one trial
     * of a job is rank 1 and no rank is shared. */
    {"test_best_trials_ties_by_number",
     {{1, "val_accuracy", "maximize"}, {2, "val_loss", "minimize"}},
     {{1, 5, "completed", "0.864", "NULL", "NULL"},
      {1, 2, "completed", "0.864", "NULL", "NULL"},
      {1, 0, "completed", "0.5", "NULL", "NULL"},
      {1, 7, "completed", "0.864", "NULL", "NULL"},
      {2, 4, "completed", "NULL", "0.3", "NULL"},
      {2, 1, "completed", "NULL", "0.3", "NULL"}},
     {{NULL, 0}},
     {{RANK_BY_NUMBER(1), "2:1,5:2,7:3,0:4"},
      {RANK_BY_NUMBER(2), "1:1,4:2"},
      {"SELECT count(*) FROM best_trials WHERE rank = 1", "2"}}},
    /* The contract's example query: the five best trials of a job. */
    {"test_contract_example_query",
     {{1, "val_accuracy", "maximize"}},
     {{1, 0, "completed", "0.1", "NULL", "NULL"},
      {1, 1, "completed", "0.2", "NULL", "NULL"},
      {1, 2, "completed", "0.3", "NULL", "NULL"},
      {1, 3, "completed", "0.4", "NULL", "NULL"},
      {1, 4, "completed", "0.5", "NULL", "NULL"},
      {1, 5, "completed", "0.6", "NULL", "NULL"},
      {1, 6, "completed", "0.7", "NULL", "NULL"},
      {1, 7, "completed", "0.8", "NULL", "NULL"}},
     {{NULL, 0}},
     {{"SELECT number FROM best_trials WHERE job_id=1 AND rank<=5", "7,6,5,4,3"},
      {"SELECT batch_size FROM best_trials WHERE job_id=1 AND rank=1", "32"}}},
    {"test_job_progress_counts",
     {{1, "val_accuracy", "maximize"}, {2, "val_accuracy", "maximize"}},
     {{1, 0, "completed", "0.5", "NULL", "NULL"},
      {1, 1, "completed", "0.5", "NULL", "NULL"},
      {1, 2, "running", "NULL", "NULL", "NULL"},
      {1, 3, "pruned", "NULL", "NULL", "NULL"}},
     {{NULL, 0}},
     {{"SELECT queued || running || completed || failed || cancelled || pruned "
       "FROM job_progress ORDER BY job_id",
       "012001,000000"}}},
};

/* Runs the schema_case *STATE points to. */
static void run_schema_case(void **state)
{
    const schema_case *c = *state;
    sqlite3 *db = open_schema_db();
    for (size_t i = 0; i < N_OF(c->jobs) && c->jobs[i].id; i++)
        add_job(db, c->jobs[i].id, c->jobs[i].metric, c->jobs[i].goal);
    for (size_t i = 0; i < N_OF(c->trials) && c->trials[i].job; i++) {
        const trial_row *t = &c->trials[i];
        add_trial(db, t->job, t->number, t->state, t->acc, t->loss, t->f1);
    }
    for (size_t i = 0; i < N_OF(c->stmts) && c->stmts[i].sql; i++) {
        int rc = exec_rc(db, c->stmts[i].sql);
        if (rc != c->stmts[i].rc)
            fail_msg("%s: got %d, want %d: %s", c->name, rc, c->stmts[i].rc, c->stmts[i].sql);
    }
    check_queries(db, c->name, c->queries, N_OF(c->queries));
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

/* ---- migrations ---- */

typedef struct {
    char dir[256];   // scratch sql dir: DIR/schema.sql, DIR/migrations/
    const void *arg; // the test's initial state (a migration_case), or NULL
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
    s->arg = *state;
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

/* A migration file: its name under DIR/migrations/ and its text. */
typedef struct {
    const char *name; // file name; NULL ends a list
    const char *text; // its contents
} mig_file;

/* A case of migrate_apply() / migrate_run_pending() on a scratch sql dir. */
typedef struct {
    const char *name;       // the cmocka test name
    const char *schema;     // text of DIR/schema.sql, NULL = no such file
    mig_file migrations[3]; // DIR/migrations/
    const char *before;     // SQL run on the empty database first, or NULL
    int apply;              // 1: migrate_apply, 0: migrate_run_pending
    int rc;                 // the code it must return
    const char *msg[3];     // substrings its message must hold (NULL ends)
    query_case after[3];    // then these queries must give these texts
} migration_case;

static const migration_case migration_cases[] = {
    {"test_migration_with_transaction_statement_refused",
     NULL,
     {{"0001_base.sql", "BEGIN;\nCREATE TABLE a(x);\nCOMMIT;\n"}},
     NULL,
     0,
     ERR_DB,
     {"0001_base.sql line 1"},
     {{"PRAGMA user_version", "0"}, {"SELECT count(*) FROM sqlite_master", "0"}}},
    /* An empty database gets schema.sql (and its version), not the migrations. */
    {"test_empty_db_runs_schema_not_migrations",
     "CREATE TABLE t(x);\nINSERT INTO t VALUES ('schema');\nPRAGMA user_version = 2;\n",
     {{"0001_a.sql", "CREATE TABLE t(x); INSERT INTO t VALUES ('m1');"},
      {"0002_b.sql", "INSERT INTO t VALUES ('m2');"}},
     NULL,
     1,
     0,
     {NULL},
     {{"SELECT x FROM t", "schema"}, {"PRAGMA user_version", "2"}}},
    {"test_schema_version_mismatch_refused",
     "CREATE TABLE t(x);\nPRAGMA user_version = 1;\n",
     {{"0001_a.sql", "CREATE TABLE t(x);"}, {"0002_b.sql", "ALTER TABLE t ADD COLUMN y;"}},
     NULL,
     1,
     ERR_INVALID,
     {"schema.sql", "user_version 1"},
     {{"PRAGMA user_version", "0"}, {"SELECT count(*) FROM sqlite_master", "0"}}},
    {"test_schema_error_names_file",
     "CREATE TABLE t(x);\nCREATE TABLE t(y);\n",
     {{"0001_a.sql", "CREATE TABLE t(x);"}},
     NULL,
     1,
     ERR_DB,
     {"schema.sql line 2"},
     {{"SELECT count(*) FROM sqlite_master", "0"}}},
    {"test_newer_database_refused",
     NULL,
     {{"0001_a.sql", "CREATE TABLE t(x);"}},
     "CREATE TABLE t(x); PRAGMA user_version = 5;",
     1,
     ERR_STATE,
     {"version 5"},
     {{"PRAGMA user_version", "5"}}},
    /* Tables but user_version 0: not ours, left alone. */
    {"test_foreign_database_refused",
     "CREATE TABLE t(x);\nPRAGMA user_version = 1;\n",
     {{"0001_a.sql", "CREATE TABLE t(x);"}},
     "CREATE TABLE unrelated(x);",
     1,
     ERR_STATE,
     {"user_version 0"},
     {{"SELECT count(*) FROM sqlite_master WHERE name = 't'", "0"}}},
};

/* Runs the migration_case the scratch in *STATE carries. */
static void run_migration_case(void **state)
{
    scratch *s = *state;
    const migration_case *c = s->arg;
    if (c->schema) write_file(s->dir, "schema.sql", c->schema);
    for (const mig_file *m = c->migrations; m->name; m++)
        mig(s, m->name, m->text);
    sqlite3 *db = mem_db();
    if (c->before) exec_ok(db, c->before);
    char msg[512] = "";
    int rc = c->apply ? migrate_apply(db, s->dir, msg, sizeof msg)
                      : migrate_run_pending(db, s->dir, msg, sizeof msg);
    if (rc != c->rc) fail_msg("%s: got %d, want %d (%s)", c->name, rc, c->rc, msg);
    for (size_t i = 0; i < N_OF(c->msg) && c->msg[i]; i++)
        if (!strstr(msg, c->msg[i])) fail_msg("%s: \"%s\" not in \"%s\"", c->name, c->msg[i], msg);
    check_queries(db, c->name, c->after, N_OF(c->after));
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
    add_trial(db, 1, 3, "pruned", "NULL", "NULL", "NULL");
    exec_ok(db,
            "UPDATE trials SET params_json = '{\"lr\":0.01,\"freeze\":\"none\"}', "
            "started_at = '2026-11-28T15:00:00.000Z', finished_at = '2026-11-28T15:10:00.000Z'");
    exec_ok(db, "INSERT INTO trial_metrics(trial_id, epoch, val_accuracy) VALUES (1, 1, 0.4), "
                "(1, 2, 0.5), (3, 1, 0.2)");
    exec_ok(db, "UPDATE trials SET epochs = 4, pruned_epoch = 1 WHERE number = 3");
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

#define SCRATCH_TEST(f) cmocka_unit_test_setup_teardown(f, scratch_setup, scratch_teardown)

int main(void)
{
    log_set_level(LOGL_WARN);
    struct CMUnitTest tests[64];
    size_t n = 0;
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_schema_loads_and_sets_version);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_contract_columns_exist);
    for (size_t i = 0; i < N_OF(schema_cases); i++)
        tests[n++] = (struct CMUnitTest){schema_cases[i].name, run_schema_case, NULL, NULL,
                                         (void *)&schema_cases[i]};
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_best_trials_other_metrics);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_example_queries_run);
    tests[n++] = (struct CMUnitTest)SCRATCH_TEST(test_migrations_numeric_order_once);
    tests[n++] = (struct CMUnitTest)SCRATCH_TEST(test_migration_failure_rolls_back);
    for (size_t i = 0; i < N_OF(migration_cases); i++)
        tests[n++] = (struct CMUnitTest){migration_cases[i].name, run_migration_case, scratch_setup,
                                         scratch_teardown, (void *)&migration_cases[i]};
    tests[n++] = (struct CMUnitTest)SCRATCH_TEST(test_bad_migration_names);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_missing_dir_reported);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_open_transaction_refused);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_real_schema_equals_replayed_migrations);
    tests[n++] = (struct CMUnitTest)SCRATCH_TEST(test_real_schema_on_disk_reopen);
    assert_true(n <= N_OF(tests));
    return _cmocka_run_group_tests("tests", tests, n, NULL, NULL);
}
