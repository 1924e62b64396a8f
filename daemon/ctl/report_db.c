/* report_db — what `sweepctl report` shows, read from the database and from
 * the chosen trial's test-set evaluation file. This is the one file of
 * sweepctl that holds SQL (sweepd's own statements are all in
 * daemon/store.c; store.c opens its database read-write and migrates it, so
 * the report, which must never change the database, has this read-only
 * module instead).
 *
 * The database is opened with SQLITE_OPEN_READONLY (and query_only), so it
 * works beside a running sweepd (WAL: a reader never blocks the writer) and
 * on a database no daemon has open. Every query runs in one read
 * transaction, which pins one consistent snapshot for the few tens of
 * milliseconds the reads take and ends before anything is drawn; the
 * eval.ndjson file is read after it. What is aggregated in SQL: the objective
 * per trial (the job's metric column), and for pruned trials their best
 * value over the epochs they ran (trial_metrics, by the primary key);
 * learning curves are fetched for the shown trials only, thinned in the
 * query to every stride-th epoch and the last. */
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errors.h"
#include "fileio.h"
#include "report.h"

#define EVAL_MAX_BYTES (64u << 20) // a larger eval.ndjson is not read
#define MIN_SCHEMA 6               // trials.pruned_epoch, trial_rungs, jobs.test_error

/* The objective's column of a table aliased A ("t" or "m"), by the job's
 * metric ?2. */
#define OBJECTIVE(A)                                                                               \
    "CASE ?2 WHEN 'val_accuracy' THEN " A ".val_accuracy WHEN 'val_loss' THEN " A ".val_loss"      \
    " WHEN 'val_precision' THEN " A ".val_precision WHEN 'val_recall' THEN " A ".val_recall"       \
    " WHEN 'val_f1' THEN " A ".val_f1 END"

static const char SQL_VERSION[] = "PRAGMA user_version";
static const char SQL_JOB[] =
    "SELECT name, state, strategy, objective_metric, objective_goal, spec_json, submitted_at,"
    " started_at, finished_at, error, trials_total, test_error FROM jobs WHERE id = ?1";
/* ?1 job, ?2 metric, ?3 1 when maximizing. */
#define PRUNED_BEST                                                                                \
    "(SELECT CASE WHEN ?3 THEN MAX(v) ELSE MIN(v) END FROM (SELECT " OBJECTIVE(                    \
        "m") " AS v FROM trial_metrics m WHERE m.trial_id = t.id))"
#define COMPLETED_VALUE                                                                            \
    "CASE ?2 WHEN 'test_accuracy' THEN t.test_accuracy ELSE " OBJECTIVE("t") " END"
static const char SQL_TRIALS[] =
    "SELECT t.id, t.number, t.state, t.params_json,"
    " CASE t.state WHEN 'pruned' THEN " PRUNED_BEST " WHEN 'completed' THEN " COMPLETED_VALUE
    " END, t.test_accuracy, t.finished_at, t.error, t.exit_code, t.pruned_epoch, t.last_epoch,"
    " t.attempt, t.out_dir FROM trials t WHERE t.job_id = ?1"
    " ORDER BY t.finished_at IS NULL, t.finished_at, t.number";
/* ?1 trial, ?2 stride, ?3 the last epoch. */
static const char SQL_CURVE[] =
    "SELECT epoch, train_loss, train_accuracy, val_loss, val_accuracy FROM trial_metrics"
    " WHERE trial_id = ?1 AND (?2 <= 1 OR epoch % ?2 = 0 OR epoch >= ?3) ORDER BY epoch";

static const char *const STATES[6] = {"queued", "running",   "completed",
                                      "failed", "cancelled", "pruned"};

static char *dup_col(sqlite3_stmt *st, int col)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    return s ? strdup((const char *)s) : NULL;
}

static double real_col(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? NAN : sqlite3_column_double(st, col);
}

static void param_free(report_param *p)
{
    free(p->name);
    for (size_t i = 0; i < p->n_labels; i++) {
        free(p->labels[i]);
        json_decref(p->choices[i]);
    }
    free(p->labels);
    free(p->choices);
}

static void eval_free(report_eval *e)
{
    free(e->path);
    free(e->note);
    for (int i = 0; i < e->n; i++)
        free(e->classes[i]);
    free(e->classes);
    free(e->cm);
    memset(e, 0, sizeof *e);
}

void report_data_free(report_data *d)
{
    if (!d) return;
    free(d->name);
    free(d->state);
    free(d->strategy);
    free(d->metric);
    free(d->submitted_at);
    free(d->started_at);
    free(d->finished_at);
    free(d->error);
    free(d->test_error);
    for (size_t i = 0; i < d->n_params; i++)
        param_free(&d->params[i]);
    free(d->params);
    for (size_t i = 0; i < d->n_trials; i++) {
        report_trial *t = &d->trials[i];
        free(t->x);
        free(t->finished_at);
        free(t->error);
        free(t->out_dir);
    }
    free(d->trials);
    for (size_t i = 0; i < d->n_curves; i++)
        free(d->curves[i].pts);
    free(d->curves);
    eval_free(&d->eval);
    free(d->db_path);
    free(d);
}

/* ---- the searched parameters: the job's "space" ------------------------ */

/* A list value as a label: strings as they are, numbers in %.6g. */
static char *label_of(const json_t *v)
{
    char buf[64];
    if (json_is_string(v)) return strdup(json_string_value(v));
    if (json_is_number(v))
        snprintf(buf, sizeof buf, "%.6g", json_number_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, sizeof buf, "%s", json_is_true(v) ? "true" : "false");
    else
        snprintf(buf, sizeof buf, "%s", json_is_null(v) ? "null" : "?");
    return strdup(buf);
}

static int cmp_json_number(const void *a, const void *b)
{
    double u = json_number_value(*(json_t *const *)a), v = json_number_value(*(json_t *const *)b);
    return (u > v) - (u < v);
}

static int cmp_param_name(const void *a, const void *b)
{
    return strcmp(((const report_param *)a)->name, ((const report_param *)b)->name);
}

/* Fills P from the space entry NAME = V. 0, 1 for an entry that is not a
 * search (skipped), ERR_NOMEM. */
static int param_from_space(report_param *p, const char *name, json_t *v)
{
    memset(p, 0, sizeof *p);
    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        p->kind = REPORT_LIST;
        p->choices = calloc(n ? n : 1, sizeof *p->choices);
        p->labels = calloc(n ? n : 1, sizeof *p->labels);
        if (!p->choices || !p->labels) goto nomem;
        bool numeric = n > 0;
        for (size_t i = 0; i < n; i++) {
            p->choices[i] = json_incref(json_array_get(v, i));
            numeric = numeric && json_is_number(p->choices[i]);
        }
        p->n_labels = n;
        if (numeric) qsort(p->choices, n, sizeof *p->choices, cmp_json_number);
        for (size_t i = 0; i < n; i++)
            if (!(p->labels[i] = label_of(p->choices[i]))) goto nomem;
    } else if (json_is_object(v) && json_object_size(v) == 1) {
        const char *k = json_object_iter_key(json_object_iter(v));
        json_t *b = json_object_iter_value(json_object_iter(v));
        if (!strcmp(k, "uniform"))
            p->kind = REPORT_UNIFORM;
        else if (!strcmp(k, "log_uniform"))
            p->kind = REPORT_LOG;
        else if (!strcmp(k, "int_uniform"))
            p->kind = REPORT_INT;
        else
            return 1;
        if (!json_is_array(b) || json_array_size(b) != 2) return 1;
        p->lo = json_number_value(json_array_get(b, 0));
        p->hi = json_number_value(json_array_get(b, 1));
    } else {
        return 1;
    }
    if (!(p->name = strdup(name))) goto nomem;
    return 0;
nomem:
    param_free(p);
    return ERR_NOMEM;
}

/* The parameters of the job spec text SPEC, by name, into D. */
static int load_params(report_data *d, const char *spec)
{
    json_t *root = spec ? json_loads(spec, 0, NULL) : NULL;
    json_t *space = json_object_get(root, "space");
    size_t n = json_is_object(space) ? json_object_size(space) : 0;
    int rc = 0;
    d->params = calloc(n ? n : 1, sizeof *d->params);
    if (!d->params) {
        rc = ERR_NOMEM;
        goto done;
    }
    const char *k;
    json_t *v;
    json_object_foreach(space, k, v)
    {
        rc = param_from_space(&d->params[d->n_params], k, v);
        if (rc < 0) goto done;
        if (rc == 0) d->n_params++;
        rc = 0;
    }
    qsort(d->params, d->n_params, sizeof *d->params, cmp_param_name);
done:
    json_decref(root);
    return rc;
}

/* The position of V among P's list values, NaN when it is not one. */
static double choice_index(const report_param *p, const json_t *v)
{
    for (size_t i = 0; i < p->n_labels; i++) {
        const json_t *c = p->choices[i];
        if (json_is_number(c) && json_is_number(v)) {
            double a = json_number_value(c), b = json_number_value(v);
            if (a == b || fabs(a - b) <= 1e-12 * fabs(a)) return (double)i;
        } else if (json_equal((json_t *)c, (json_t *)v)) {
            return (double)i;
        }
    }
    return NAN;
}

/* T's coordinate per parameter of D from its params_json text PJ. */
static int trial_coords(const report_data *d, report_trial *t, const char *pj, size_t len)
{
    t->x = malloc((d->n_params ? d->n_params : 1) * sizeof *t->x);
    if (!t->x) return ERR_NOMEM;
    json_t *o = pj ? json_loadb(pj, len, 0, NULL) : NULL;
    for (size_t k = 0; k < d->n_params; k++) {
        const report_param *p = &d->params[k];
        json_t *v = json_object_get(o, p->name);
        if (!v)
            t->x[k] = NAN;
        else if (p->kind == REPORT_LIST)
            t->x[k] = choice_index(p, v);
        else
            t->x[k] = json_is_number(v) ? json_number_value(v) : NAN;
    }
    json_decref(o);
    return 0;
}

/* ---- queries ----------------------------------------------------------- */

static int db_fail(sqlite3 *db, const char *path, const char *what, char *msg, size_t msglen)
{
    return err_set(msg, msglen, ERR_DB, "%s: %s: %s", path, what,
                   db ? sqlite3_errmsg(db) : "out of memory");
}

static int load_job(sqlite3 *db, report_data *d, char *msg, size_t msglen)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(db, SQL_JOB, -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, d->db_path, "reading the job", msg, msglen);
    sqlite3_bind_int64(st, 1, d->job_id);
    int s = sqlite3_step(st);
    if (s == SQLITE_DONE) {
        rc = err_set(msg, msglen, ERR_NOTFOUND, "%s has no job %lld", d->db_path,
                     (long long)d->job_id);
        goto done;
    }
    if (s != SQLITE_ROW) {
        rc = db_fail(db, d->db_path, "reading the job", msg, msglen);
        goto done;
    }
    d->name = dup_col(st, 0);
    d->state = dup_col(st, 1);
    d->strategy = dup_col(st, 2);
    d->metric = dup_col(st, 3);
    const unsigned char *goal = sqlite3_column_text(st, 4);
    d->maximize = !goal || strcmp((const char *)goal, "minimize") != 0;
    d->submitted_at = dup_col(st, 6);
    d->started_at = dup_col(st, 7);
    d->finished_at = dup_col(st, 8);
    d->error = dup_col(st, 9);
    d->trials_total = sqlite3_column_int64(st, 10);
    d->test_error = dup_col(st, 11);
    if (!d->name || !d->state || !d->strategy || !d->metric) {
        rc = err_set(msg, msglen, ERR_NOMEM, "out of memory");
        goto done;
    }
    if (load_params(d, (const char *)sqlite3_column_text(st, 5)) < 0)
        rc = err_set(msg, msglen, ERR_NOMEM, "out of memory");
done:
    sqlite3_finalize(st);
    return rc;
}

/* True when trial A ranks before B (both with values) under D's goal. */
static bool better(const report_data *d, const report_trial *a, const report_trial *b)
{
    if (a->value != b->value) return d->maximize ? a->value > b->value : a->value < b->value;
    return a->number < b->number;
}

static int load_trials(sqlite3 *db, report_data *d, char *msg, size_t msglen)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    size_t cap = d->trials_total > 0 ? (size_t)d->trials_total : 16;
    if (sqlite3_prepare_v2(db, SQL_TRIALS, -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, d->db_path, "reading the trials", msg, msglen);
    sqlite3_bind_int64(st, 1, d->job_id);
    sqlite3_bind_text(st, 2, d->metric, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, d->maximize);
    d->trials = calloc(cap, sizeof *d->trials);
    if (!d->trials) goto nomem;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (d->n_trials == cap) {
            report_trial *g = realloc(d->trials, 2 * cap * sizeof *g);
            if (!g) goto nomem;
            memset(g + cap, 0, cap * sizeof *g);
            d->trials = g;
            cap *= 2;
        }
        report_trial *t = &d->trials[d->n_trials++];
        t->id = sqlite3_column_int64(st, 0);
        t->number = sqlite3_column_int(st, 1);
        const unsigned char *state = sqlite3_column_text(st, 2);
        /* Only the schema's states reach the page (they are written into it
         * unescaped); anything else, from a forged file, is "?". */
        snprintf(t->state, sizeof t->state, "?");
        for (int k = 0; k < 6; k++)
            if (state && !strcmp((const char *)state, STATES[k])) {
                snprintf(t->state, sizeof t->state, "%s", STATES[k]);
                d->counts[k]++;
            }
        if (trial_coords(d, t, (const char *)sqlite3_column_text(st, 3),
                         (size_t)sqlite3_column_bytes(st, 3)) < 0)
            goto nomem;
        t->value = real_col(st, 4);
        t->has_value = !isnan(t->value);
        t->test_accuracy = real_col(st, 5);
        t->has_test = !isnan(t->test_accuracy);
        t->finished_at = dup_col(st, 6);
        t->error = dup_col(st, 7);
        t->has_exit = sqlite3_column_type(st, 8) != SQLITE_NULL;
        t->exit_code = sqlite3_column_int64(st, 8);
        t->pruned_epoch = sqlite3_column_int(st, 9);
        t->last_epoch = sqlite3_column_int(st, 10);
        t->attempt = sqlite3_column_int(st, 11);
        t->out_dir = dup_col(st, 12);
    }
    if (s != SQLITE_DONE) rc = db_fail(db, d->db_path, "reading the trials", msg, msglen);
    sqlite3_finalize(st);
    return rc;
nomem:
    sqlite3_finalize(st);
    return err_set(msg, msglen, ERR_NOMEM, "out of memory");
}

/* Indexes of D's trials in STATE with a value, best first, at most MAX, into
 * OUT; returns how many. */
static size_t top_of(const report_data *d, const char *state, size_t max, size_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n_trials; i++) {
        const report_trial *t = &d->trials[i];
        if (!t->has_value || strcmp(t->state, state)) continue;
        /* Insertion into the sorted top list. */
        size_t at = n;
        while (at > 0 && better(d, t, &d->trials[out[at - 1]]))
            at--;
        if (at >= max) continue;
        if (n < max) n++;
        memmove(out + at + 1, out + at, (n - 1 - at) * sizeof *out);
        out[at] = i;
    }
    return n;
}

static int load_curve(sqlite3 *db, sqlite3_stmt *st, report_data *d, report_curve *c, char *msg,
                      size_t msglen)
{
    const report_trial *t = &d->trials[c->trial];
    int stride = report_stride(t->last_epoch, REPORT_CURVE_POINTS);
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, t->id);
    sqlite3_bind_int(st, 2, stride);
    sqlite3_bind_int(st, 3, t->last_epoch);
    size_t cap = 0;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (c->n == cap) {
            cap = cap ? 2 * cap : 16;
            report_point *g = realloc(c->pts, cap * sizeof *g);
            if (!g) return err_set(msg, msglen, ERR_NOMEM, "out of memory");
            c->pts = g;
        }
        c->pts[c->n++] = (report_point){sqlite3_column_int(st, 0), real_col(st, 1), real_col(st, 2),
                                        real_col(st, 3), real_col(st, 4)};
    }
    return s == SQLITE_DONE ? 0
                            : db_fail(db, d->db_path, "reading the learning curves", msg, msglen);
}

static int load_curves(sqlite3 *db, report_data *d, char *msg, size_t msglen)
{
    size_t top[REPORT_TOP_COMPLETED + REPORT_TOP_PRUNED];
    size_t n = top_of(d, "completed", REPORT_TOP_COMPLETED, top);
    n += top_of(d, "pruned", REPORT_TOP_PRUNED, top + n);
    d->best = -1;
    if (n && !strcmp(d->trials[top[0]].state, "completed")) d->best = (long)top[0];
    d->chosen = -1;
    for (size_t i = 0; i < d->n_trials; i++) {
        const report_trial *t = &d->trials[i];
        if (t->has_test && (d->chosen < 0 || (t->has_value && better(d, t, &d->trials[d->chosen]))))
            d->chosen = (long)i;
    }
    if (!n) return 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, SQL_CURVE, -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, d->db_path, "reading the learning curves", msg, msglen);
    int rc = 0;
    d->curves = calloc(n, sizeof *d->curves);
    if (!d->curves) rc = err_set(msg, msglen, ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        d->curves[i].trial = top[i];
        d->n_curves++;
        rc = load_curve(db, st, d, &d->curves[i], msg, msglen);
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---- the test-set evaluation file --------------------------------------- */

/* E's matrix from the result object R: 0, 1 (not there or malformed), ERR_NOMEM. */
static int eval_from_result(const json_t *r, report_eval *e)
{
    const json_t *m = json_object_get(r, "confusion_matrix");
    const json_t *names = json_object_get(r, "classes");
    size_t n = json_array_size(m);
    if (!json_is_array(m) || n == 0 || n > 4096) return 1;
    for (size_t i = 0; i < n; i++) {
        const json_t *row = json_array_get(m, i);
        if (!json_is_array(row) || json_array_size(row) != n) return 1;
        for (size_t j = 0; j < n; j++)
            if (!json_is_integer(json_array_get(row, j))) return 1;
    }
    e->cm = malloc(n * n * sizeof *e->cm);
    e->classes = calloc(n, sizeof *e->classes);
    if (!e->cm || !e->classes) return ERR_NOMEM;
    e->n = (int)n;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++)
            e->cm[i * n + j] = json_integer_value(json_array_get(json_array_get(m, i), j));
        const char *name = json_string_value(json_array_get(names, i));
        char idx[32];
        snprintf(idx, sizeof idx, "class %zu", i);
        if (!(e->classes[i] = strdup(name ? name : idx))) return ERR_NOMEM;
    }
    const json_t *acc = json_object_get(r, "accuracy");
    e->accuracy = json_is_number(acc) ? json_number_value(acc) : NAN;
    e->images = json_integer_value(json_object_get(r, "images"));
    e->present = true;
    return 0;
}

int report_eval_parse(const char *text, size_t len, report_eval *e)
{
    json_t *result = NULL;
    char note[600] = "";
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        json_t *o = json_loadb(p, (size_t)(le - p), 0, NULL);
        const char *ev = json_string_value(json_object_get(o, "event"));
        if (json_is_object(o) && !ev) {
            json_decref(result);
            result = o;
            o = NULL;
        } else if (ev && !strcmp(ev, "error")) {
            const char *m = json_string_value(json_object_get(o, "message"));
            snprintf(note, sizeof note, "the evaluation failed: %s", m ? m : "(no message)");
        }
        json_decref(o);
        p = le + 1;
    }
    bool had_result = result != NULL;
    int rc = had_result ? eval_from_result(result, e) : 1;
    json_decref(result);
    if (rc == 1) {
        free(e->note);
        e->note = strdup(note[0]      ? note
                         : had_result ? "the evaluation wrote no confusion matrix"
                                      : "the evaluation wrote no result");
    }
    return rc;
}

/* The chosen trial's out_dir/eval.ndjson into D->eval (a missing or
 * unreadable file is a note on the page, not an error). */
static int load_eval(report_data *d)
{
    report_eval *e = &d->eval;
    e->accuracy = NAN;
    if (d->chosen < 0) {
        e->note = strdup("no trial has been evaluated on a test set (the job has no data.test, "
                         "or its evaluation has not run yet)");
        return e->note ? 0 : ERR_NOMEM;
    }
    const report_trial *t = &d->trials[d->chosen];
    if (!t->out_dir) {
        e->note = strdup("the evaluated trial has no output directory recorded");
        return e->note ? 0 : ERR_NOMEM;
    }
    size_t n = strlen(t->out_dir) + sizeof "/eval.ndjson";
    if (!(e->path = malloc(n))) return ERR_NOMEM;
    snprintf(e->path, n, "%s/eval.ndjson", t->out_dir);
    fileio_buf b = {0};
    char why[512];
    int rc = fileio_read(e->path, EVAL_MAX_BYTES, &b, why, sizeof why);
    if (rc < 0) {
        free(e->note);
        e->note = strdup(why);
        rc = e->note ? 0 : ERR_NOMEM;
    } else {
        rc = report_eval_parse((const char *)b.data, b.len, e);
        if (rc > 0) rc = 0;
    }
    fileio_buf_free(&b);
    return rc;
}

/* ---- the whole load ------------------------------------------------------ */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int report_db_load(const char *db_path, int64_t job_id, report_data **out, char *msg, size_t msglen)
{
    double t0 = now_seconds();
    *out = NULL;
    report_data *d = calloc(1, sizeof *d);
    if (!d || !(d->db_path = strdup(db_path))) {
        free(d);
        return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    }
    d->job_id = job_id;
    d->best = d->chosen = -1;
    sqlite3 *db = NULL;
    int rc = 0;
    bool in_tx = false;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        rc = db_fail(db, db_path, "cannot open the database", msg, msglen);
        goto done;
    }
    /* Readers of a WAL database wait only while a connection recovers the
     * WAL index; a few seconds cover that, and the daemon never waits on us. */
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, "PRAGMA query_only = 1; BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(db, db_path, "cannot read the database", msg, msglen);
        goto done;
    }
    in_tx = true;
    sqlite3_stmt *st = NULL;
    int version = 0;
    if (sqlite3_prepare_v2(db, SQL_VERSION, -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        /* The first read: where a WAL database whose -shm file is missing
         * cannot be read by a user who may not create it. */
        int code = sqlite3_errcode(db) & 0xff;
        bool cantopen = code == SQLITE_CANTOPEN || code == SQLITE_READONLY;
        rc = err_set(msg, msglen, ERR_DB, "%s: cannot read the database: %s%s", db_path,
                     sqlite3_errmsg(db),
                     cantopen ? " (with no sweepd running, a reader must be allowed to create "
                                "its -shm file beside it; start sweepd, or read it as its owner)"
                              : "");
        sqlite3_finalize(st);
        goto done;
    }
    version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version < MIN_SCHEMA) {
        rc = err_set(msg, msglen, ERR_DB,
                     "%s: schema version %d is not a sweepd database of version %d or later "
                     "(start this sweepd on it once to migrate it)",
                     db_path, version, MIN_SCHEMA);
        goto done;
    }
    if ((rc = load_job(db, d, msg, msglen)) < 0) goto done;
    if ((rc = load_trials(db, d, msg, msglen)) < 0) goto done;
    if ((rc = load_curves(db, d, msg, msglen)) < 0) goto done;
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    in_tx = false;
    sqlite3_close(db);
    db = NULL;
    if (load_eval(d) < 0) rc = err_set(msg, msglen, ERR_NOMEM, "out of memory");
done:
    if (in_tx) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
    if (rc < 0) {
        report_data_free(d);
        return rc;
    }
    d->load_seconds = now_seconds() - t0;
    *out = d;
    return 0;
}
