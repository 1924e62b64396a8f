/* sched — trial and job state machines, slot scheduling, worker outcomes and
 * the one periodic timer of the daemon.
 *
 * Design notes
 * - Memory is the authority for scheduling; the database is written through
 *   the store's queue (see store.h) in the same order as the changes here.
 * - trial_set_state() is the only place a trial's state changes; it logs the
 *   transition, writes the row and tells watchers. job_set_state() likewise.
 * - Outcome by worker exit status (README.md "Contract"): 0 completed;
 *   2/3/4 failed at once with the worker's error message; 5 failed
 *   (diverged); 6 failed (out of memory); 7, any other status or a signal:
 *   retried (back to queued, attempt + 1, resuming from the checkpoint in the
 *   same out_dir) while attempt <= max_retries, else failed. A stop that the
 *   daemon caused is judged by its reason: timeout -> failed, cancel ->
 *   cancelled, shutdown -> queued with the attempt not counted. A trial whose
 *   files (out_dir, trial.json, log, events file) cannot be written for lack
 *   of space (ENOSPC, EDQUOT, EFBIG, EIO) goes back to queued without using
 *   an attempt, and no trial starts for IO_RETRY_SECONDS (one warning per
 *   trial, the retries logged at debug level); the test-set evaluation
 *   likewise waits. Database writes that meet a full disk stay queued in the
 *   store and are retried by the timer (store.h).
 * - sched_tick() is the single periodic callback: timeouts and kill grace,
 *   retrying a busy database, noticing finished jobs, starting trials,
 *   closing idle client connections (d->on_tick, server.c) and completing a
 *   shutdown. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "jsonx.h"
#include "log.h"
#include "scheduler.h"
#include "timeutil.h"

static const char *const trial_names[] = {"queued",    "running",   "completed",
                                          "failed",    "cancelled", "pruned"};
static const char *const job_names[] = {"queued", "running", "done", "cancelled", "failed"};

const char *trial_state_name(trial_state s) { return (unsigned)s < TS_COUNT ? trial_names[s] : "?"; }
const char *job_state_name(job_state s) { return (unsigned)s <= JS_FAILED ? job_names[s] : "?"; }
bool trial_state_terminal(trial_state s) { return s >= TS_COMPLETED; }

/* Drops a UTF-8 sequence cut off at the end of S (after a "%.1000s"), so
 * the text stays valid for JSON replies and the database. Returns S. */
static char *utf8_trim_tail(char *s)
{
    err_trim_utf8(s, strlen(s));
    return s;
}

/* The text stored for a worker's error event EV: "code: message", the
 * message cut to 1000 bytes at a character boundary. */
static void error_event_text(const json_t *ev, char *buf, size_t n)
{
    const char *m = json_string_value(json_object_get(ev, "message"));
    const char *c = json_string_value(json_object_get(ev, "code"));
    snprintf(buf, n, "%s%s%.1000s", c ? c : "", c ? ": " : "", m ? m : "(no message)");
    utf8_trim_tail(buf);
}

static void emit(sweepd *d, sjob *j, json_t *ev)
{
    if (d->emit && ev) d->emit(d, j->id, ev);
    json_decref(ev);
}

static bool watched(sweepd *d, sjob *j) { return d->watched && d->watched(d, j->id); }

/* Extra facts recorded with a transition. */
typedef struct {
    bool has_exit;        // exit_code is meaningful
    int64_t exit_code;    // exit status, or -signal
    const char *error;    // error text to store (NULL keeps the old one)
    const char *why;      // reason for the log line
    bool quiet;           // log at debug level (repeated retries of the same trial)
} tinfo;

/* Seconds between attempts to write the files of trials that met a full disk. */
#define IO_RETRY_SECONDS 1.0

static void trial_set_state(sweepd *d, sjob *j, strial *t, trial_state ns, const tinfo *info)
{
    trial_state os = (trial_state)t->state;
#define TRANSITION_ARGS                                                                 \
    "trial %lld (job %lld #%d) %s -> %s, attempt %u%s%s", (long long)t->id, (long long)j->id, \
        t->number, trial_state_name(os), trial_state_name(ns), (unsigned)t->attempt,          \
        info->why ? ": " : "", info->why ? info->why : ""
    if (info->quiet) log_debug(TRANSITION_ARGS);
    else log_info(TRANSITION_ARGS);
#undef TRANSITION_ARGS
    j->counts[os]--;
    j->counts[ns]++;
    t->state = (uint8_t)ns;
    d->urgent = true; // state changes are committed at the end of this loop iteration
    char now[40];
    time_now_iso(now, sizeof now);
    if (ns == TS_RUNNING) {
        char out_dir[PATH_MAX];
        snprintf(out_dir, sizeof out_dir, "%s/trials/%lld", d->cfg->state_dir, (long long)t->id);
        store_enqueue(d->st,
                      "UPDATE trials SET state = 'running', attempt = ?, pid = NULL,"
                      " pid_start_time = NULL, started_at = ?, finished_at = NULL, exit_code = NULL,"
                      " out_dir = ? WHERE id = ?",
                      "issi", (int64_t)t->attempt, now, out_dir, t->id);
    } else if (ns == TS_QUEUED) {
        store_enqueue(d->st,
                      "UPDATE trials SET state = 'queued', attempt = ?, pid = NULL,"
                      " pid_start_time = NULL, exit_code = ?, error = COALESCE(?, error)"
                      " WHERE id = ?",
                      "ijsi", (int64_t)t->attempt, info->has_exit ? info->exit_code : INT64_MIN,
                      info->error, t->id);
        if (t->number >= 0 && (size_t)t->number < j->cursor) j->cursor = (size_t)t->number;
    } else {
        store_enqueue(d->st,
                      "UPDATE trials SET state = ?, pid = NULL, pid_start_time = NULL,"
                      " finished_at = ?, exit_code = ?, error = COALESCE(?, error) WHERE id = ?",
                      "ssjsi", trial_state_name(ns), now,
                      info->has_exit ? info->exit_code : INT64_MIN, info->error, t->id);
        d->trials_finished++;
    }
    /* Watchers get a trial's lines in causal order: sched_on_line forwards
     * its worker's events in the order of its events file, and the end of a
     * run (this event, from sched_on_finished) is sent only after runner.c's
     * exit_cb has read that file to its end, lines written just before the
     * exit (read together with it) included. Each connection's lines go out
     * in the order emitted, so a status reply on a watch connection never
     * shows a trial whose lines are still to come (server.c op_watch). */
    if (watched(d, j)) {
        json_t *ev = json_pack("{s:s, s:I, s:I, s:i, s:s, s:i}", "event", "trial_state", "job",
                               (json_int_t)j->id, "trial", (json_int_t)t->id, "number", t->number,
                               "state", trial_state_name(ns), "attempt", (int)t->attempt);
        if (ev) {
            json_object_set_new(ev, "exit_code",
                                info->has_exit ? json_integer(info->exit_code) : json_null());
            json_object_set_new(ev, "error", info->error ? json_string(info->error) : json_null());
        }
        emit(d, j, ev);
    }
}

/* The bulk form of trial_set_state for cancelling a job: every queued trial
 * of J becomes cancelled, with one log line, one database statement and one
 * watch event (a 100,000-trial job must not cost 100,000 of each). Returns
 * how many trials changed. */
static int cancel_queued(sweepd *d, sjob *j)
{
    int n = 0;
    for (size_t i = 0; i < j->n; i++)
        if (j->trials[i].state == TS_QUEUED) {
            j->trials[i].state = TS_CANCELLED;
            n++;
        }
    if (!n) return 0;
    j->counts[TS_QUEUED] -= (size_t)n;
    j->counts[TS_CANCELLED] += (size_t)n;
    d->trials_finished += (uint64_t)n;
    log_info("job %lld: %d trials queued -> cancelled: job cancelled", (long long)j->id, n);
    char now[40];
    time_now_iso(now, sizeof now);
    store_enqueue(d->st,
                  "UPDATE trials SET state = 'cancelled', finished_at = ?, error = 'cancelled'"
                  " WHERE job_id = ? AND state = 'queued'",
                  "si", now, j->id);
    if (watched(d, j))
        emit(d, j, json_pack("{s:s, s:I, s:s, s:s, s:i}", "event", "trials_state", "job",
                             (json_int_t)j->id, "from", "queued", "state", "cancelled", "count", n));
    return n;
}

static void job_set_state(sweepd *d, sjob *j, job_state ns, const char *why)
{
    if (j->state == ns) return;
    log_info("job %lld (%s) %s -> %s%s%s", (long long)j->id, j->name, job_state_name(j->state),
             job_state_name(ns), why ? ": " : "", why ? why : "");
    j->state = ns;
    d->urgent = true;
    char now[40];
    time_now_iso(now, sizeof now);
    if (ns == JS_RUNNING)
        store_enqueue(d->st,
                      "UPDATE jobs SET state = 'running', started_at = COALESCE(started_at, ?)"
                      " WHERE id = ?",
                      "si", now, j->id);
    else if (ns == JS_QUEUED)
        store_enqueue(d->st, "UPDATE jobs SET state = 'queued' WHERE id = ?", "i", j->id);
    else
        store_enqueue(d->st,
                      "UPDATE jobs SET state = ?, finished_at = ?, error = COALESCE(?, error)"
                      " WHERE id = ?",
                      "sssi", job_state_name(ns), now, j->error, j->id);
}

static void job_free(sjob *j)
{
    free(j->name);
    free(j->test);
    free(j->error);
    json_decref(j->tmpl);
    free(j->trials);
    free(j);
}

sjob *sched_find_job(sweepd *d, int64_t job_id)
{
    for (sjob *j = d->jobs; j; j = j->next)
        if (j->id == job_id) return j;
    return NULL;
}

static void append_job(sweepd *d, sjob *j)
{
    sjob **pp = &d->jobs;
    while (*pp) pp = &(*pp)->next;
    *pp = j;
}

static void remove_job(sweepd *d, sjob *j)
{
    for (sjob **pp = &d->jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    if (d->rr == j) d->rr = NULL;
}

/* Fills the job-wide fields of J from a parsed spec. */
static int job_from_spec(sjob *j, const jobspec *js)
{
    j->name = strdup(js->name);
    j->test = js->test ? strdup(js->test) : NULL;
    snprintf(j->metric, sizeof j->metric, "%s", js->metric);
    j->maximize = js->maximize;
    j->tmpl = jobspec_trial_template(js);
    if (!j->name || (js->test && !j->test) || !j->tmpl) return ERR_NOMEM;
    j->eval_done = j->test == NULL;
    return 0;
}

int sched_add_job(sweepd *d, const jobspec *js, int64_t job_id, const int64_t *trial_ids,
                  uid_t uid, int max_parallel, double trial_timeout, int max_retries)
{
    sjob *j = calloc(1, sizeof *j);
    if (!j) return ERR_NOMEM;
    j->id = job_id;
    j->uid = uid;
    j->max_parallel = max_parallel;
    j->trial_timeout = trial_timeout;
    j->max_retries = max_retries;
    j->state = JS_QUEUED;
    j->n = js->n_trials;
    j->trials = calloc(j->n ? j->n : 1, sizeof *j->trials);
    if (!j->trials || job_from_spec(j, js)) {
        job_free(j);
        return ERR_NOMEM;
    }
    for (size_t i = 0; i < j->n; i++) {
        j->trials[i].id = trial_ids[i];
        j->trials[i].number = js->trials[i].number;
        j->trials[i].state = TS_QUEUED;
    }
    j->counts[TS_QUEUED] = j->n;
    log_info("job %lld (%s) submitted by uid %u: %zu %s trials, max_parallel %d", (long long)job_id,
             j->name, (unsigned)uid, j->n, js->strategy, max_parallel);
    append_job(d, j);
    sched_run(d);
    return 0;
}

/* The best completed trial of J from the database (after a restart). */
static void load_best(sweepd *d, sjob *j)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT id, number, %s FROM trials WHERE job_id = ? AND state = 'completed'"
             " AND %s IS NOT NULL ORDER BY %s %s, number LIMIT 1",
             j->metric, j->metric, j->metric, j->maximize ? "DESC" : "ASC");
    sqlite3_stmt *st = store_stmt(d->st, sql);
    if (!st) return;
    sqlite3_bind_int64(st, 1, j->id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        j->has_best = true;
        j->best_id = sqlite3_column_int64(st, 0);
        j->best_number = sqlite3_column_int(st, 1);
        j->best_value = sqlite3_column_double(st, 2);
    }
    sqlite3_reset(st);
}

/* store_live_fn: counts and best of an active job from memory. */
static bool live_figures(void *ud, int64_t job_id, store_live *out)
{
    sjob *j = sched_find_job(ud, job_id);
    if (!j) return false;
    for (int i = 0; i < TS_COUNT && i < 6; i++) out->counts[i] = (int64_t)j->counts[i];
    out->has_best = j->has_best;
    out->best_id = j->best_id;
    out->best_number = j->best_number;
    out->best_value = j->best_value;
    return true;
}

int sched_load(sweepd *d, char *msg, size_t msglen)
{
    sqlite3_stmt *st = store_stmt(
        d->st, "SELECT id, spec_json, state, submitted_uid, max_parallel, trial_timeout,"
               " max_retries, seed, objective_metric, objective_goal FROM jobs"
               " WHERE state IN ('queued', 'running') ORDER BY id");
    if (!st) return err_set(msg, msglen, ERR_DB, "cannot read jobs");
    int rc = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        const char *text = (const char *)sqlite3_column_text(st, 1);
        char tmp[512];
        json_t *spec = text ? jx_parse(text, strlen(text), tmp, sizeof tmp) : NULL;
        jobspec js;
        int prc = spec ? jobspec_parse(&js, spec, 0, (uint64_t)sqlite3_column_int64(st, 7), tmp,
                                       sizeof tmp)
                       : ERR_PARSE;
        json_decref(spec);
        sjob *j = calloc(1, sizeof *j);
        if (!j) {
            jobspec_free(&js);
            rc = ERR_NOMEM;
            break;
        }
        j->id = id;
        j->state = strcmp((const char *)sqlite3_column_text(st, 2), "running") ? JS_QUEUED : JS_RUNNING;
        j->uid = (uid_t)sqlite3_column_int64(st, 3);
        j->max_parallel = sqlite3_column_int(st, 4);
        j->trial_timeout = sqlite3_column_type(st, 5) == SQLITE_NULL ? 0 : sqlite3_column_double(st, 5);
        j->max_retries = sqlite3_column_int(st, 6);
        if (prc == 0) prc = job_from_spec(j, &js);
        jobspec_free(&js);
        if (prc != 0) {
            /* A stored spec that no longer parses: the job cannot run. */
            log_error("job %lld: stored spec unusable (%s); marking it failed", (long long)id, tmp);
            j->name = strdup("?");
            j->error = strdup("stored job spec could not be read on restart");
            append_job(d, j);
            continue;
        }
        snprintf(j->metric, sizeof j->metric, "%s", (const char *)sqlite3_column_text(st, 8));
        j->maximize = !strcmp((const char *)sqlite3_column_text(st, 9), "maximize");
        append_job(d, j);
    }
    sqlite3_reset(st);
    if (rc) return err_set(msg, msglen, rc, "out of memory loading jobs");
    /* Their trials. */
    st = store_stmt(d->st, "SELECT id, number, state, attempt FROM trials WHERE job_id = ?"
                           " ORDER BY number");
    sqlite3_stmt *cnt = store_stmt(d->st, "SELECT count(*) FROM trials WHERE job_id = ?");
    if (!st || !cnt) return err_set(msg, msglen, ERR_DB, "cannot read trials");
    for (sjob *j = d->jobs; j; j = j->next) {
        sqlite3_bind_int64(cnt, 1, j->id);
        size_t n = sqlite3_step(cnt) == SQLITE_ROW ? (size_t)sqlite3_column_int64(cnt, 0) : 0;
        sqlite3_reset(cnt);
        j->trials = calloc(n ? n : 1, sizeof *j->trials);
        if (!j->trials) return ERR_NOMEM;
        sqlite3_bind_int64(st, 1, j->id);
        size_t i = 0;
        while (i < n && sqlite3_step(st) == SQLITE_ROW) {
            strial *t = &j->trials[i++];
            t->id = sqlite3_column_int64(st, 0);
            t->number = sqlite3_column_int(st, 1);
            const char *s = (const char *)sqlite3_column_text(st, 2);
            t->state = TS_QUEUED;
            for (int k = 0; k < TS_COUNT; k++)
                if (s && !strcmp(s, trial_names[k])) t->state = (uint8_t)k;
            if (t->state == TS_RUNNING) t->state = TS_QUEUED; // recovery already requeued them
            t->attempt = (uint16_t)sqlite3_column_int(st, 3);
            j->counts[t->state]++;
        }
        sqlite3_reset(st);
        j->n = i;
        load_best(d, j);
        log_info("job %lld (%s) resumed: %zu queued, %zu completed, %zu failed of %zu",
                 (long long)j->id, j->name, j->counts[TS_QUEUED], j->counts[TS_COMPLETED],
                 j->counts[TS_FAILED], j->n);
        if (j->error) {
            /* Unusable spec: fail what is left. */
            for (size_t k = 0; k < j->n; k++)
                if (j->trials[k].state == TS_QUEUED)
                    trial_set_state(d, j, &j->trials[k], TS_FAILED,
                                    &(tinfo){.error = j->error, .why = j->error});
        }
    }
    return 0;
}

void sched_totals(sweepd *d, size_t *queued, size_t *running)
{
    *queued = *running = 0;
    for (sjob *j = d->jobs; j; j = j->next) {
        *queued += j->counts[TS_QUEUED];
        *running += j->counts[TS_RUNNING];
    }
}

/* ---- job completion and the test-set evaluation ---------------------- */

/* The best completed trial of J by its objective, from the database
 * (queued writes are committed first). NULL when there is none. */
static strial *best_trial(sweepd *d, sjob *j, char *out_dir, size_t n)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT id, out_dir FROM trials WHERE job_id = ? AND state = 'completed'"
             " ORDER BY %s IS NULL, %s %s, number LIMIT 1",
             j->metric, j->metric, j->maximize ? "DESC" : "ASC");
    sqlite3_stmt *st = store_stmt(d->st, sql);
    if (!st) return NULL;
    sqlite3_bind_int64(st, 1, j->id);
    int64_t id = -1;
    if (sqlite3_step(st) == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        const char *o = (const char *)sqlite3_column_text(st, 1);
        if (o) snprintf(out_dir, n, "%s", o);
        else snprintf(out_dir, n, "%s/trials/%lld", d->cfg->state_dir, (long long)id);
    }
    sqlite3_reset(st);
    for (size_t i = 0; i < j->n && id >= 0; i++)
        if (j->trials[i].id == id) return &j->trials[i];
    return NULL;
}

static void job_end(sweepd *d, sjob *j, job_state final)
{
    job_set_state(d, j, final, j->error);
    store_flush(d->st);
    if (watched(d, j)) {
        int err = 0;
        char tmp[256];
        json_t *sum = store_job_summary(d->st, j->id, &err, tmp, sizeof tmp);
        json_t *best = sum ? json_object_get(sum, "best") : NULL;
        json_t *ev = json_pack("{s:s, s:I, s:s, s:O}", "event", "end", "job", (json_int_t)j->id,
                               "state", job_state_name(final), "best", best ? best : json_null());
        json_decref(sum);
        emit(d, j, ev);
    }
    remove_job(d, j);
    job_free(j);
}

/* Ends J when nothing of it is queued or running; runs the evaluation first
 * when it has a test set. Returns true when J was freed. */
static bool check_job_end(sweepd *d, sjob *j)
{
    if (j->counts[TS_QUEUED] || j->counts[TS_RUNNING] || j->eval) return false;
    if (d->shutting_down) return false;
    if (j->cancelling) {
        job_end(d, j, JS_CANCELLED);
        return true;
    }
    if (j->counts[TS_COMPLETED] == 0) {
        if (!j->error) {
            char e[128];
            snprintf(e, sizeof e, "every trial failed (%zu failed)", j->counts[TS_FAILED]);
            j->error = strdup(e);
        }
        job_end(d, j, j->n == 0 ? JS_DONE : JS_FAILED);
        return true;
    }
    if (!j->eval_done) {
        j->eval_pending = true;
        return false;
    }
    job_end(d, j, JS_DONE);
    return true;
}

/* Starts the pending evaluation of J in a free slot. */
static void start_eval(sweepd *d, sjob *j)
{
    j->eval_pending = false;
    if (store_flush(d->st) != 0) {
        j->eval_pending = true; // database busy: try again at the next tick
        return;
    }
    char out_dir[PATH_MAX], msg[512];
    strial *best = best_trial(d, j, out_dir, sizeof out_dir);
    int rc = best ? runner_start_eval(d, j, best, out_dir, msg, sizeof msg)
                  : err_set(msg, sizeof msg, ERR_NOTFOUND, "no completed trial to evaluate");
    if (rc == ERR_BUSY) {
        /* No space for its files: try again later, like a trial's. */
        if (!j->eval_io_wait)
            log_warn("job %lld: cannot start the test-set evaluation: %s; retried every %g s",
                     (long long)j->id, msg, IO_RETRY_SECONDS);
        j->eval_io_wait = true;
        j->eval_pending = true;
        d->hold_until = time_mono() + IO_RETRY_SECONDS;
        return;
    }
    j->eval_io_wait = false;
    if (rc) {
        log_warn("job %lld: test set not evaluated: %s", (long long)j->id, msg);
        free(j->error);
        char e[600];
        snprintf(e, sizeof e, "test set not evaluated: %s", msg);
        j->error = strdup(e);
        j->eval_done = true;
        check_job_end(d, j);
        return;
    }
    d->running++;
    log_info("job %lld: evaluating trial %lld on the test set %s (pid %d)", (long long)j->id,
             (long long)best->id, j->test, j->eval->pid);
    /* Recorded on the evaluated (completed) trial's row, so that a daemon
     * restarted after a crash finds and stops it (recover.c) instead of
     * letting it run beside the evaluation it starts itself. */
    store_enqueue(d->st, "UPDATE trials SET pid = ?, pid_start_time = ? WHERE id = ?", "iii",
                  (int64_t)j->eval->pid, (int64_t)runner_proc_start_time(j->eval->pid), best->id);
    d->urgent = true;
}

static void eval_finished(sweepd *d, proc *p)
{
    sjob *j = p->job;
    j->eval = NULL;
    j->eval_done = true;
    store_enqueue(d->st, "UPDATE trials SET pid = NULL, pid_start_time = NULL WHERE id = ?", "i",
                  p->trial->id);
    d->urgent = true;
    json_t *acc = p->eval_result ? json_object_get(p->eval_result, "accuracy") : NULL;
    if (p->stop == STOP_SHUTDOWN) {
        j->eval_done = false; // run it again after the restart
        return;
    }
    if (p->exit_status == 0 && p->term_signal == 0 && json_is_number(acc)) {
        double a = json_number_value(acc);
        store_enqueue(d->st, "UPDATE trials SET test_accuracy = ? WHERE id = ?", "di", a,
                      p->trial->id);
        log_info("job %lld: trial %lld test_accuracy %.4f", (long long)j->id,
                 (long long)p->trial->id, a);
        if (watched(d, j))
            emit(d, j,
                 json_pack("{s:s, s:I, s:I, s:i, s:f}", "event", "test", "job", (json_int_t)j->id,
                           "trial", (json_int_t)p->trial->id, "number", p->trial->number,
                           "test_accuracy", a));
    } else {
        char e[512];
        snprintf(e, sizeof e, "test-set evaluation failed (exit status %lld, signal %d)%s%s",
                 (long long)p->exit_status, p->term_signal, p->last_error ? ": " : "",
                 p->last_error ? p->last_error : "");
        log_warn("job %lld: %s", (long long)j->id, e);
        free(j->error);
        j->error = strdup(e);
    }
    check_job_end(d, j);
}

/* ---- worker outcomes ------------------------------------------------- */

static const char *exit_reason(int64_t status)
{
    switch (status) {
    case 2: return "bad trial spec or arguments";
    case 3: return "data error";
    case 4: return "model error";
    case 5: return "diverged: loss is not finite";
    case 6: return "out of memory";
    case 7: return "stopped by a signal after writing a checkpoint";
    default: return "crashed";
    }
}

/* Called once P's events file has been read to its end (runner.c exit_cb),
 * or for a start that failed before any line: every event of the run has
 * been forwarded before the state change that ends it. */
void sched_on_finished(proc *p)
{
    sweepd *d = p->d;
    sjob *j = p->job;
    d->running--;
    if (p->bad_lines)
        log_warn("job %lld pid %d: %u output lines were not JSON events or too long",
                 (long long)j->id, p->pid, p->bad_lines);
    if (p->is_eval) {
        eval_finished(d, p);
        runner_release(p);
        sched_run(d);
        return;
    }
    strial *t = p->trial;
    t->proc = NULL;
    int64_t code = p->term_signal ? -(int64_t)p->term_signal : p->exit_status;
    char why[1200];
    tinfo info = {.has_exit = true, .exit_code = code, .why = why};
    if (p->term_signal)
        snprintf(why, sizeof why, "killed by signal %d", p->term_signal);
    else
        snprintf(why, sizeof why, "exit status %lld (%s)", (long long)p->exit_status,
                 p->exit_status == 0 ? "done" : exit_reason(p->exit_status));
    char err[768];
    if (p->spawn_failed && p->prep_retry && !j->cancelling) {
        /* Its files could not be written (disk full, file-size limit): not
         * the trial's fault, so no attempt is used; it waits in the queue and
         * every start is held back IO_RETRY_SECONDS, until space returns. */
        info.has_exit = false;
        info.why = "its files could not be written; retried when space returns";
        info.quiet = t->io_wait != 0;
        if (!t->io_wait)
            log_warn("trial %lld: %s; back to queued without using an attempt, retried every"
                     " %g s until it can be written",
                     (long long)t->id, p->last_error ? p->last_error : "cannot write its files",
                     IO_RETRY_SECONDS);
        t->io_wait = 1;
        d->hold_until = time_mono() + IO_RETRY_SECONDS;
        trial_set_state(d, j, t, TS_QUEUED, &info);
    } else if (p->spawn_failed && j->cancelling) {
        info.has_exit = false;
        info.why = "job cancelled before its worker started";
        info.error = "cancelled";
        trial_set_state(d, j, t, TS_CANCELLED, &info);
    } else if (p->spawn_failed) {
        info.has_exit = false;
        info.error = p->last_error ? p->last_error : "cannot start the worker";
        info.why = info.error;
        log_error("trial %lld: %s", (long long)t->id, info.error);
        trial_set_state(d, j, t, TS_FAILED, &info);
    } else if (p->exit_status == 0 && p->term_signal == 0) {
        trial_set_state(d, j, t, TS_COMPLETED, &info);
        double v = p->done_seen ? p->done_value : NAN;
        if (!isnan(v) &&
            (!j->has_best || (j->maximize ? v > j->best_value : v < j->best_value) ||
             (v == j->best_value && t->number < j->best_number))) {
            j->has_best = true;
            j->best_id = t->id;
            j->best_number = t->number;
            j->best_value = v;
        }
    } else if (p->stop == STOP_SHUTDOWN) {
        info.why = "daemon shutting down; resumes on restart";
        trial_set_state(d, j, t, TS_QUEUED, &info);
    } else if (p->stop == STOP_CANCEL) {
        info.why = "job cancelled";
        info.error = "cancelled";
        trial_set_state(d, j, t, TS_CANCELLED, &info);
    } else if (p->stop == STOP_TIMEOUT) {
        snprintf(err, sizeof err, "exceeded trial_timeout of %g s", j->trial_timeout);
        info.error = err;
        info.why = err;
        trial_set_state(d, j, t, TS_FAILED, &info);
    } else if (p->term_signal == 0 && p->exit_status >= 2 && p->exit_status <= 6) {
        snprintf(err, sizeof err, "%s%s%s", exit_reason(p->exit_status),
                 p->last_error ? ": " : "", p->last_error ? p->last_error : "");
        info.error = utf8_trim_tail(err);
        trial_set_state(d, j, t, TS_FAILED, &info);
    } else {
        /* 7, another status, or a signal: retry while attempts remain. */
        if (p->term_signal)
            snprintf(err, sizeof err, "attempt %u killed by signal %d", (unsigned)t->attempt,
                     p->term_signal);
        else
            snprintf(err, sizeof err, "attempt %u: exit status %lld (%s)%s%s",
                     (unsigned)t->attempt, (long long)p->exit_status, exit_reason(p->exit_status),
                     p->last_error ? ": " : "", p->last_error ? p->last_error : "");
        info.error = utf8_trim_tail(err);
        if ((int)t->attempt + 1 <= j->max_retries) {
            t->attempt++;
            snprintf(why, sizeof why, "%s; retrying (%u of %d retries)", err, (unsigned)t->attempt,
                     j->max_retries);
            trial_set_state(d, j, t, TS_QUEUED, &info);
        } else {
            snprintf(why, sizeof why, "%s; no retries left (max_retries %d)", err, j->max_retries);
            trial_set_state(d, j, t, TS_FAILED, &info);
        }
    }
    runner_release(p);
    check_job_end(d, j);
    sched_run(d);
}

void sched_store_event(store *st, int64_t trial_id, const json_t *ev)
{
    const char *kind = json_string_value(json_object_get(ev, "event"));
    if (!kind) return;
#define NUM(k) (json_is_number(json_object_get(ev, k)) ? json_number_value(json_object_get(ev, k)) : NAN)
    if (!strcmp(kind, "epoch")) {
        json_t *ej = json_object_get(ev, "epoch");
        if (!json_is_integer(ej) || json_integer_value(ej) < 0) return;
        int64_t e = (int64_t)json_integer_value(ej);
        store_enqueue(st,
                      "INSERT OR REPLACE INTO trial_metrics (trial_id, epoch, train_loss,"
                      " train_accuracy, val_loss, val_accuracy, val_precision, val_recall,"
                      " val_f1, lr, seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      "iiddddddddd", trial_id, e, NUM("train_loss"), NUM("train_accuracy"),
                      NUM("val_loss"), NUM("val_accuracy"), NUM("val_precision"),
                      NUM("val_recall"), NUM("val_f1"), NUM("lr"), NUM("seconds"));
        store_enqueue(st, "UPDATE trials SET last_epoch = ? WHERE id = ?", "ii", e, trial_id);
    } else if (!strcmp(kind, "start")) {
        const char *core = json_string_value(json_object_get(ev, "blas_core"));
        if (core)
            store_enqueue(st, "UPDATE trials SET blas_core = ? WHERE id = ?", "si", core,
                          trial_id);
    } else if (!strcmp(kind, "checkpoint")) {
        const char *path = json_string_value(json_object_get(ev, "path"));
        if (path)
            store_enqueue(st, "UPDATE trials SET checkpoint_path = ? WHERE id = ?", "si", path,
                          trial_id);
    } else if (!strcmp(kind, "done")) {
        json_t *be = json_object_get(ev, "best_epoch");
        store_enqueue(st,
                      "UPDATE trials SET best_epoch = ?, val_accuracy = ?, val_loss = ?,"
                      " val_precision = ?, val_recall = ?, val_f1 = ? WHERE id = ?",
                      "jdddddi", json_is_integer(be) ? (int64_t)json_integer_value(be) : INT64_MIN,
                      NUM("val_accuracy"), NUM("val_loss"), NUM("val_precision"),
                      NUM("val_recall"), NUM("val_f1"), trial_id);
    } else if (!strcmp(kind, "error")) {
        char e[1100];
        error_event_text(ev, e, sizeof e);
        store_enqueue(st, "UPDATE trials SET error = ? WHERE id = ?", "si", e, trial_id);
    }
#undef NUM
}

/* Stores one worker event line and forwards it to watchers. */
void sched_on_line(proc *p, char *line, size_t len)
{
    sweepd *d = p->d;
    sjob *j = p->job;
    if (!line) {
        p->bad_lines++;
        if (p->long_lines++ < 5)
            log_warn("job %lld pid %d: output line of %zu bytes is too long; ignored",
                     (long long)j->id, p->pid, len);
        return;
    }
    char tmp[256];
    json_t *ev = jx_parse(line, len, tmp, sizeof tmp);
    const char *kind = ev ? json_string_value(json_object_get(ev, "event")) : NULL;
    if (p->is_eval) {
        if (json_is_object(ev) && !kind) {
            json_decref(p->eval_result);
            p->eval_result = ev;
            return;
        }
        if (kind && !strcmp(kind, "error")) {
            const char *m = json_string_value(json_object_get(ev, "message"));
            if (m) {
                free(p->last_error);
                p->last_error = strndup(m, 1000);
                if (p->last_error) utf8_trim_tail(p->last_error);
            }
        }
        json_decref(ev);
        return;
    }
    if (!kind) {
        if (p->bad_lines++ < 5)
            log_warn("trial %lld: ignoring output line that is not a JSON event: %.120s",
                     (long long)p->trial->id, line);
        json_decref(ev);
        return;
    }
    strial *t = p->trial;
    sched_store_event(d->st, t->id, ev);
    if (!strcmp(kind, "done")) {
        p->done_seen = true;
        json_t *v = json_object_get(ev, j->metric);
        p->done_value = json_is_number(v) ? json_number_value(v) : NAN;
    } else if (!strcmp(kind, "error")) {
        char e[1100];
        error_event_text(ev, e, sizeof e);
        free(p->last_error);
        p->last_error = strdup(e);
    } else if (!strcmp(kind, "epoch") && !json_is_integer(json_object_get(ev, "epoch"))) {
        if (p->bad_lines++ < 5)
            log_warn("trial %lld: epoch event without a valid epoch: %.120s", (long long)t->id,
                     line);
    }
    if (watched(d, j)) {
        json_object_set_new(ev, "job", json_integer(j->id));
        json_object_set_new(ev, "trial", json_integer(t->id));
        json_object_set_new(ev, "number", json_integer(t->number));
        emit(d, j, ev);
    } else {
        json_decref(ev);
    }
}

/* ---- scheduling ------------------------------------------------------ */

static strial *next_queued(sjob *j)
{
    while (j->cursor < j->n && j->trials[j->cursor].state != TS_QUEUED) j->cursor++;
    return j->cursor < j->n ? &j->trials[j->cursor] : NULL;
}

static bool can_start(const sjob *j)
{
    return !j->cancelling && j->counts[TS_QUEUED] > 0 &&
           (int)j->counts[TS_RUNNING] < j->max_parallel;
}

static void start_trial(sweepd *d, sjob *j, strial *t)
{
    char msg[512];
    int rc = runner_start_trial(d, j, t, msg, sizeof msg);
    if (rc) {
        log_error("trial %lld: %s", (long long)t->id, msg);
        /* Count it as a failed attempt: a broken setup must not loop forever. */
        tinfo info = {.error = msg, .why = msg};
        trial_set_state(d, j, t, TS_RUNNING, &(tinfo){.why = "starting"});
        trial_set_state(d, j, t, TS_FAILED, &info);
        check_job_end(d, j);
        return;
    }
    bool retry = t->io_wait != 0;
    /* The slot is taken now; files are written in the threadpool and the
     * process started in sched_on_spawned (or the start fails there). */
    d->running++;
    if (j->state == JS_QUEUED) job_set_state(d, j, JS_RUNNING, "first trial started");
    trial_set_state(d, j, t, TS_RUNNING,
                    &(tinfo){.why = retry ? "starting again after a write error" : "starting",
                             .quiet = retry});
}

void sched_on_spawned(proc *p)
{
    sweepd *d = p->d;
    log_debug("trial %lld: worker pid %d started", (long long)p->trial->id, p->pid);
    if (p->trial->io_wait) {
        log_info("trial %lld: its files could be written again; worker pid %d started",
                 (long long)p->trial->id, p->pid);
        p->trial->io_wait = 0;
    }
    store_enqueue(d->st, "UPDATE trials SET pid = ?, pid_start_time = ? WHERE id = ?", "iii",
                  (int64_t)p->pid, (int64_t)runner_proc_start_time(p->pid), p->trial->id);
}

void sched_run(sweepd *d)
{
    if (d->shutting_down) return;
    if (d->hold_until > 0) {
        if (time_mono() < d->hold_until) return; // the timer tries again
        d->hold_until = 0;
    }
    while (d->running < d->cfg->workers) {
        /* Evaluations first: they finish a job. */
        sjob *ev = NULL;
        for (sjob *j = d->jobs; j; j = j->next)
            if (j->eval_pending && !j->eval) {
                ev = j;
                break;
            }
        if (ev) {
            start_eval(d, ev);
            continue;
        }
        /* Round robin in submission order, starting after the last served job. */
        sjob *start = d->rr && d->rr->next ? d->rr->next : d->jobs;
        sjob *pick = NULL;
        for (sjob *j = start; j; j = j->next)
            if (can_start(j)) {
                pick = j;
                break;
            }
        if (!pick)
            for (sjob *j = d->jobs; j && j != start; j = j->next)
                if (can_start(j)) {
                    pick = j;
                    break;
                }
        if (!pick) break;
        d->rr = pick;
        strial *t = next_queued(pick);
        SWEEP_ASSERT(t != NULL);
        start_trial(d, pick, t);
    }
}

int sched_cancel(sweepd *d, sjob *j, int *dequeued, int *stopping)
{
    *dequeued = *stopping = 0;
    j->cancelling = true;
    log_info("job %lld (%s): cancel requested", (long long)j->id, j->name);
    *dequeued = cancel_queued(d, j);
    for (size_t i = 0; i < j->n; i++) {
        strial *t = &j->trials[i];
        if (t->state == TS_RUNNING && t->proc && t->proc->stop == STOP_NONE) {
            t->proc->stop = STOP_CANCEL;
            t->proc->term_at = time_mono();
            runner_signal(t->proc, SIGTERM);
            (*stopping)++;
        }
    }
    if (j->eval) {
        j->eval->stop = STOP_CANCEL;
        j->eval->term_at = time_mono();
        runner_signal(j->eval, SIGTERM);
    }
    j->eval_pending = false;
    j->eval_done = true;
    check_job_end(d, j);
    sched_run(d);
    return 0;
}

/* ---- the timer and shutdown ----------------------------------------- */

static void on_closed(uv_handle_t *h) { (void)h; }

static void finish_shutdown(sweepd *d)
{
    if (d->stopped) return;
    d->stopped = true;
    store_flush(d->st);
    uv_timer_stop(&d->timer);
    uv_close((uv_handle_t *)&d->timer, on_closed);
    uv_check_stop(&d->flush);
    uv_close((uv_handle_t *)&d->flush, on_closed);
    log_info("all workers stopped");
    if (d->on_stopped) d->on_stopped(d);
}

static void tick(uv_timer_t *h)
{
    sweepd *d = h->data;
    double now = time_mono();
    for (proc *p = d->procs; p; p = p->next) {
        if (p->exited) continue;
        runner_drain(p);
        if (p->preparing) continue;
        if (!p->is_eval && p->stop == STOP_NONE && p->job->trial_timeout > 0 &&
            now - p->started > p->job->trial_timeout) {
            log_warn("trial %lld exceeded trial_timeout of %g s; sending SIGTERM",
                     (long long)p->trial->id, p->job->trial_timeout);
            p->stop = STOP_TIMEOUT;
            p->term_at = now;
            runner_signal(p, SIGTERM);
        } else if (p->term_at > 0 && !p->killed && now - p->term_at > d->cfg->kill_grace) {
            log_warn("pid %d still running %g s after SIGTERM; sending SIGKILL", p->pid,
                     d->cfg->kill_grace);
            p->killed = true;
            runner_signal(p, SIGKILL);
        }
    }
    d->db_busy = store_flush(d->st) != 0;
    if (!d->db_busy) d->urgent = false;
    for (sjob *j = d->jobs, *next; j; j = next) {
        next = j->next;
        check_job_end(d, j);
    }
    sched_run(d);
    if (d->on_tick) d->on_tick(d);
    if (d->shutting_down && d->procs == NULL) finish_shutdown(d);
}

static void on_check(uv_check_t *h)
{
    sweepd *d = h->data;
    /* State changes are committed at once (a crash must not forget that a
     * trial finished); event rows in batches: the timer commits whatever is
     * left every tick, readers (socket ops, job end) flush before they query,
     * and recovery replays the events files. */
    if (d->db_busy || !(d->urgent || store_pending(d->st) >= 256)) return;
    int rc = store_flush(d->st);
    if (rc == 0) d->urgent = false;
    else d->db_busy = true; // locked by someone else: leave retries to the timer
}

int sched_init(sweepd *d, uv_loop_t *loop, sweepd_config *cfg, store *st)
{
    memset(d, 0, sizeof *d);
    d->loop = loop;
    d->cfg = cfg;
    d->st = st;
    d->started = time_mono();
    uv_timer_init(loop, &d->timer);
    d->timer.data = d;
    uv_check_init(loop, &d->flush);
    d->flush.data = d;
    uint64_t ms = (uint64_t)(cfg->tick * 1000);
    if (ms < 10) ms = 10;
    uv_timer_start(&d->timer, tick, ms, ms);
    uv_check_start(&d->flush, on_check);
    store_set_live(st, live_figures, d);
    return 0;
}

void sched_shutdown(sweepd *d)
{
    if (d->shutting_down) return;
    d->shutting_down = true;
    int n = 0;
    double now = time_mono();
    for (proc *p = d->procs; p; p = p->next) {
        if (p->exited) continue;
        if (p->stop == STOP_NONE) p->stop = STOP_SHUTDOWN;
        if (p->term_at == 0) p->term_at = now;
        runner_signal(p, SIGTERM);
        n++;
    }
    log_info("shutting down: %d workers asked to checkpoint and stop", n);
    if (d->procs == NULL) finish_shutdown(d);
}

void sched_free(sweepd *d)
{
    if (d->st) store_set_live(d->st, NULL, NULL);
    while (d->jobs) {
        sjob *j = d->jobs;
        d->jobs = j->next;
        job_free(j);
    }
}
