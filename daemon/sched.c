/* sched — trial and job state machines, slot scheduling, worker outcomes and
 * the one periodic timer of the daemon.
 *
 * Design notes
 * - Who owns what: the scheduler (this file) owns trials and decisions: it
 *   builds each trial's spec and argv, embeds one runner_proc (runner.h) per
 *   running trial or evaluation and judges how it ended. The runner knows
 *   processes only (files, spawn, lines, signals); the store (store.h) owns
 *   every SQL statement; worker_exit.h holds the exit-code contract.
 * - Memory is the authority for scheduling; the database is written through
 *   the store's queue (see store.h) in the same order as the changes here.
 * - trial_set_state() is the only place a trial's state changes; it checks
 *   the transition against the one table (trial_transition_allowed, with its
 *   diagram below), logs it, writes the row and tells watchers. Bulk
 *   cancellation and recovery (recover.c) check the same table.
 *   job_set_state() likewise for jobs.
 * - Outcome by worker exit status (README.md "Contract", worker_exit.h):
 *   WEXIT_OK completed; WEXIT_SPEC/DATA/MODEL failed at once with the
 *   worker's error message; WEXIT_DIVERGED failed (diverged); WEXIT_NOMEM
 *   failed (out of memory); WEXIT_STOPPED, any other status or a signal:
 *   retried (back to queued, attempt + 1, resuming from the checkpoint in the
 *   same out_dir) while attempt <= max_retries, else failed. A stop that the
 *   daemon caused is judged by its reason: timeout -> failed, cancel ->
 *   cancelled, shutdown -> queued with the attempt not counted, prune ->
 *   pruned (final: never retried) unless it completed first. A worker
 *   whose events break the contract too often or in its "done"
 *   (events_check.h) is stopped, and its trial fails with "worker sent
 *   invalid events: ..." whatever its exit status (unless the job is being
 *   cancelled); every line is checked before it is stored or forwarded, and
 *   an invalid one is never either. A trial whose files (out_dir,
 *   trial.json, log, events file) cannot be written for lack of space
 *   (ENOSPC, EDQUOT, EFBIG, EIO) goes back to queued without using an
 *   attempt, and no trial starts for IO_RETRY_SECONDS (one warning per
 *   trial, the retries logged at debug level); the test-set evaluation
 *   likewise waits. A worker that could not write a checkpoint, its best
 *   weights or its events for lack of space exits WEXIT_NOSPACE: its trial
 *   goes back to queued without using an attempt (it resumes from its last
 *   checkpoint, which a failed write leaves intact) and every start waits
 *   until the state directory has room again (space_wait_begin: one warning
 *   "waiting for space on <dir>"; space_is_back probes it with statvfs and
 *   the file-size limit at each retry, IO_RETRY_SECONDS apart). Database
 *   writes that meet a full disk stay queued in the store and are retried by
 *   the timer (store.h).
 * - A trial runs as `<worker> run <state_dir>/trials/<id>/trial.json` in that
 *   out_dir; its stdout goes to <out_dir>/events.ndjson, which recovery
 *   replays after a crash (recover.c), its stderr to
 *   <state_dir>/logs/trial-<id>.log. An evaluation's stdout goes to
 *   <out_dir>/eval.ndjson.
 * - sched_tick() is the single periodic callback: timeouts and kill grace,
 *   retrying a busy database, noticing finished jobs, starting trials,
 *   closing idle client connections (d->on_tick, server.c) and completing a
 *   shutdown. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "errors.h"
#include "events_check.h"
#include "jsonx.h"
#include "launcher.h"
#include "log.h"
#include "params.h"
#include "rng.h"
#include "scheduler.h"
#include "timeutil.h"
#include "worker_exit.h"

static const char *const trial_names[] = {"queued", "running",   "completed",
                                          "failed", "cancelled", "pruned"};
static const char *const job_names[] = {"queued", "running", "done", "cancelled", "failed"};

const char *trial_state_name(trial_state s)
{
    return (unsigned)s < TS_COUNT ? trial_names[s] : "?";
}
const char *job_state_name(job_state s)
{
    return (unsigned)s <= JS_FAILED ? job_names[s] : "?";
}
bool trial_state_terminal(trial_state s)
{
    return s >= TS_COMPLETED;
}

/* Drops a UTF-8 sequence cut off at the end of S (after a "%.1000s"), so
 * the text stays valid for JSON replies and the database. Returns S. */
static char *utf8_trim_tail(char *s)
{
    err_trim_utf8(s, strlen(s));
    return s;
}

/* ---- the trial state machine ----------------------------------------
 *
 *                 start                  exit 0
 *   queued ------------------> running --------------> completed
 *    |  |  ^                    |  |  |
 *    |  |  +--------------------+  |  +-- exit 2..6, timeout, signal or
 *    |  |  retry, shutdown, no     |      crash with no retries left,
 *    |  |  space for its files     |      start failed --------> failed
 *    |  |  (start or exit 8),      |
 *    |  |  recovery (recover.c)    +-- job cancelled ---------> cancelled
 *    |  |                          +-- stopped by a pruner -----> pruned
 *    |  +-- job cancelled (bulk, cancel_queued) ---------------> cancelled
 *    +----- cannot start (no spec, no memory), stored job spec
 *           unusable at restart ------------------------------> failed
 *
 * completed, failed, cancelled and pruned are final. Anything not in the
 * table is an invariant failure: in a debug build (NDEBUG not defined: the
 * default CFLAGS, which the tests use) the daemon aborts naming the file and
 * line of the caller; built with -DNDEBUG it logs an error and refuses the
 * change, keeping the trial in its state. */
static const bool transitions[TS_COUNT][TS_COUNT] = {
    [TS_QUEUED] = {[TS_RUNNING] = true, [TS_CANCELLED] = true, [TS_FAILED] = true},
    [TS_RUNNING] = {[TS_QUEUED] = true,
                    [TS_COMPLETED] = true,
                    [TS_FAILED] = true,
                    [TS_CANCELLED] = true,
                    [TS_PRUNED] = true},
};

bool trial_transition_allowed(trial_state from, trial_state to)
{
    return (unsigned)from < TS_COUNT && (unsigned)to < TS_COUNT && transitions[from][to];
}

bool trial_transition_check(trial_state from, trial_state to, const char *file, int line)
{
    if (trial_transition_allowed(from, to)) return true;
    char what[128];
    snprintf(what, sizeof what, "illegal trial transition %s -> %s", trial_state_name(from),
             trial_state_name(to));
#ifndef NDEBUG
    sweep_assert_fail(what, file, line);
#else
    log_error("%s:%d: %s refused", file, line, what);
    return false;
#endif
}

static void emit(sweepd *d, sjob *j, json_t *ev)
{
    if (d->emit && ev) d->emit(d, j->id, ev);
    json_decref(ev);
}

static bool watched(sweepd *d, sjob *j)
{
    return d->watched && d->watched(d, j->id);
}

/* Extra facts recorded with a transition. */
typedef struct {
    bool has_exit;     // exit_code is meaningful
    int64_t exit_code; // exit status, or -signal
    const char *error; // error text to store (NULL keeps the old one)
    const char *why;   // reason for the log line
    bool quiet;        // log at debug level (repeated retries of the same trial)
    int pruned_epoch;  // pruned: its last finished epoch (0 otherwise)
} tinfo;

/* Seconds between attempts to write the files of trials that met a full disk. */
#define IO_RETRY_SECONDS 1.0
/* Bytes wanted free on the state directory, besides the checkpoint of the
 * trial that met a full disk (rewritten whole beside the old one), before
 * trials start again: room for events, logs and a first checkpoint. */
#define SPACE_SLACK (256 * 1024)
/* Seconds between two "waiting for space" warnings (a quota that statvfs
 * does not show makes waits end and begin again). */
#define SPACE_WARN_SECONDS 60.0

/* <state_dir>/trials/<id>: trial ID's out_dir. */
static void trial_out_dir(const sweepd *d, int64_t id, char *buf, size_t n)
{
    snprintf(buf, n, "%s/trials/%lld", d->cfg->state_dir, (long long)id);
}

/* Moves T of J to NS with the facts in INFO, checked against the table
 * (FILE:LINE, the caller's, names an illegal transition); false when
 * refused. */
#define trial_set_state(...) trial_set_state_at(__FILE__, __LINE__, __VA_ARGS__)
static bool trial_set_state_at(const char *file, int line, sweepd *d, sjob *j, strial *t,
                               trial_state ns, const tinfo *info)
{
    trial_state os = (trial_state)t->state;
    if (!trial_transition_check(os, ns, file, line)) return false;
#define TRANSITION_ARGS                                                                            \
    "trial %lld (job %lld #%d) %s -> %s, attempt %u%s%s", (long long)t->id, (long long)j->id,      \
        t->number, trial_state_name(os), trial_state_name(ns), (unsigned)t->attempt,               \
        info->why ? ": " : "", info->why ? info->why : ""
    if (info->quiet)
        log_debug(TRANSITION_ARGS);
    else
        log_info(TRANSITION_ARGS);
#undef TRANSITION_ARGS
    j->counts[os]--;
    j->counts[ns]++;
    t->state = (uint8_t)ns;
    d->urgent = true; // state changes are committed at the end of this loop iteration
    char now[40];
    time_now_iso(now, sizeof now);
    char out_dir[PATH_MAX];
    trial_out_dir(d, t->id, out_dir, sizeof out_dir);
    store_trial_state(
        d->st, t->id,
        &(store_trial_change){.state = trial_state_name(ns),
                              .attempt = t->attempt,
                              .now = now,
                              .out_dir = out_dir,
                              .exit_code = info->has_exit ? info->exit_code : INT64_MIN,
                              .error = info->error,
                              .pruned_epoch = info->pruned_epoch});
    if (ns == TS_QUEUED && t->number >= 0 && (size_t)t->number < j->cursor)
        j->cursor = (size_t)t->number;
    if (trial_state_terminal(ns)) d->trials_finished++;
    /* Watchers get a trial's lines in causal order: proc_on_line forwards
     * its worker's events in the order of its events file, and the end of a
     * run (this event, from proc_on_exit) is sent only after runner.c's
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
    return true;
}

/* The bulk form of trial_set_state for cancelling a job: every queued trial
 * of J becomes cancelled, with one log line, one database statement and one
 * watch event (a 100,000-trial job must not cost 100,000 of each). Returns
 * how many trials changed. */
static int cancel_queued(sweepd *d, sjob *j)
{
    if (!j->counts[TS_QUEUED] || !TRIAL_TRANSITION_CHECK(TS_QUEUED, TS_CANCELLED)) return 0;
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
    store_job_cancel_queued(d->st, j->id, now);
    if (watched(d, j))
        emit(d, j,
             json_pack("{s:s, s:I, s:s, s:s, s:i}", "event", "trials_state", "job",
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
    store_job_state(d->st, j->id, job_state_name(ns), now, j->error);
}

/* ---- proposals of strategy tpe (README.md "Strategies") --------------- */

/* What a tpe job needs to propose its trials after the startup ones. */
typedef struct sched_tpe {
    jobspec_space space;            // the searched keys (jobspec.h; values owned)
    uint64_t seed;                  // the job seed (jobs.seed)
    int64_t warm[JOBSPEC_MAX_WARM]; // warm_start jobs, in the order given
    size_t n_warm;                  // their number
    double hold_until;              // time_mono() before which no proposal is tried again
} sched_tpe;

/* Tries after which a proposal that repeats a left-out trial's point (or
 * breaks a relation between keys) gives way to new Sobol points. */
#define TPE_ATTEMPTS 8
#define TPE_FALLBACK_POINTS 100000
#define TPE_STREAM_FALLBACK UINT64_C(0x66616c6c6261636b) // "fallback"

static void tpe_free(sched_tpe *tp)
{
    if (!tp) return;
    jobspec_space_free(&tp->space);
    free(tp);
}

/* J's planned count PLANNED and, for strategy tpe, its proposal state,
 * from JS. (The caller makes room for PLANNED trials in J->trials.) */
static int tpe_attach(sjob *j, const jobspec *js, size_t planned)
{
    j->planned = planned;
    if (strcmp(js->strategy, "tpe") != 0) return 0;
    j->tpe = calloc(1, sizeof *j->tpe);
    if (!j->tpe) return ERR_NOMEM;
    jobspec_space_copy(&j->tpe->space, &js->space);
    j->tpe->seed = js->seed;
    j->tpe->n_warm = js->n_warm;
    memcpy(j->tpe->warm, js->warm_jobs, js->n_warm * sizeof js->warm_jobs[0]);
    return 0;
}

/* J is a tpe job with trials left to propose, and may propose now. */
static bool tpe_wants(const sjob *j)
{
    return j->tpe && j->n < j->planned && !j->error && time_mono() >= j->tpe->hold_until;
}

/* One trial of a proposal's history. */
typedef struct {
    int kind;    // a suggest_obs_kind, or -1 for a trial of the job left out of what TPE
                 // learns (failed, cancelled, no value), whose point is avoided all the same
    double loss; // its loss (DONE, PRUNED): the objective, negated when maximized
    int epoch;   // pruned_epoch (PRUNED)
    bool own;    // a trial of the job itself (else of a warm-start job)
} tpe_obs;

/* The trials a proposal learns from, gathered by tpe_row. */
typedef struct {
    const jobspec_space *sp; // the space (coordinates)
    bool maximize;           // the objective is maximized: losses are negated
    bool own;                // the rows now read are the job's own
    double *pts;             // the points, nd coordinates each (owned)
    tpe_obs *obs;            // per point, what it tells (owned)
    size_t n, cap;           // points held, room
} tpe_history;

/* Coordinates per point in H's arrays (1 for an empty space). */
static size_t history_stride(const tpe_history *h)
{
    return (size_t)(h->sp->nd ? h->sp->nd : 1);
}

static int history_grow(tpe_history *h)
{
    if (h->n < h->cap) return 0;
    size_t cap = h->cap ? 2 * h->cap : 64;
    double *pts = realloc(h->pts, cap * history_stride(h) * sizeof *pts);
    if (pts) h->pts = pts;
    tpe_obs *obs = realloc(h->obs, cap * sizeof *obs);
    if (obs) h->obs = obs;
    if (!pts || !obs) return ERR_NOMEM;
    h->cap = cap;
    return 0;
}

/* store_job_history callback: one trial into the history UD. Completed:
 * its objective; pruned: its objective at pruned_epoch; queued and running:
 * pending (the constant liar); the job's other trials are left out of what
 * TPE learns but still never proposed again. */
static int tpe_row(void *ud, const store_history_row *r)
{
    tpe_history *h = ud;
    if (history_grow(h)) return ERR_NOMEM;
    char tmp[128];
    json_t *params = jx_parse(r->params_json, strlen(r->params_json), tmp, sizeof tmp);
    double *x = h->pts + h->n * history_stride(h);
    int rc = params ? jobspec_space_point(h->sp, params, x) : ERR_PARSE;
    json_decref(params);
    if (rc) return 0; // not a point of this space (cannot happen for the job's own trials)
    int kind = -1;
    bool known = r->has_value && isfinite(r->value);
    if (!strcmp(r->state, "completed") && known)
        kind = SUGGEST_OBS_DONE;
    else if (!strcmp(r->state, "pruned") && known && r->pruned_epoch >= 1)
        kind = SUGGEST_OBS_PRUNED;
    else if (!strcmp(r->state, "queued") || !strcmp(r->state, "running"))
        kind = SUGGEST_OBS_PENDING;
    if (kind < 0 && !h->own) return 0;
    h->obs[h->n++] = (tpe_obs){.kind = kind,
                               .loss = known ? (h->maximize ? -r->value : r->value) : 0,
                               .epoch = r->pruned_epoch,
                               .own = h->own};
    return 0;
}

/* Point X is one of the job's own trials left out of what TPE learns
 * (failed, cancelled, no value): TPE does not know to avoid those. */
static bool history_left_out(const tpe_history *h, const double *x)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->obs[i].own && h->obs[i].kind < 0 &&
            suggest_point_equal(h->pts + i * history_stride(h), x, h->sp->nd))
            return true;
    return false;
}

/* Coordinates per point for cmp_point_ref (qsort and bsearch take no
 * context; the daemon is single-threaded). */
static int sort_nd;

/* Lexicographic order of two points given by reference, equal exactly when
 * suggest_point_equal says so. */
static int cmp_point_ref(const void *pa, const void *pb)
{
    const double *a = *(const double *const *)pa, *b = *(const double *const *)pb;
    for (int d = 0; d < sort_nd; d++)
        if (a[d] != b[d]) return a[d] < b[d] ? -1 : 1;
    return 0;
}

/* The point of proposal SEED from H into X and its parameters into P: the
 * TPE point, another TPE draw when it repeats a left-out trial or its
 * parameters break a relation, at last the first Sobol point (of a stream
 * of SEED) new to the job (*FALLBACK set then). ERR_EXISTS when none is
 * found. */
static int tpe_point(const sched_tpe *tp, const tpe_history *h, uint64_t seed, double *x,
                     trial_params *p, bool *fallback, char *msg, size_t msglen)
{
    *fallback = false;
    const jobspec_space *sp = &tp->space;
    suggest_dim dims[SUGGEST_MAX_DIMS];
    for (int i = 0; i < sp->nd; i++)
        dims[i] = sp->d[i].dim;
    suggest_obs *obs = calloc(h->n ? h->n : 1, sizeof *obs);
    if (!obs) return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    size_t n_obs = 0;
    for (size_t i = 0; i < h->n; i++)
        if (h->obs[i].kind >= 0)
            obs[n_obs++] = (suggest_obs){.x = h->pts + i * history_stride(h),
                                         .kind = (suggest_obs_kind)h->obs[i].kind,
                                         .loss = h->obs[i].loss,
                                         .epoch = h->obs[i].epoch};
    int rc = ERR_EXISTS;
    for (int a = 0; a < TPE_ATTEMPTS; a++) {
        rc = suggest_tpe(dims, sp->nd, obs, n_obs, a ? rng_derive(seed, (uint64_t)a) : seed, x, msg,
                         msglen);
        if (rc) break;
        if (!history_left_out(h, x) && jobspec_space_params(sp, x, p, msg, msglen) == 0) break;
        rc = ERR_EXISTS;
    }
    free(obs);
    if (rc != ERR_EXISTS) return rc;
    /* Every TPE draw was refused (or the space is used up counting the
     * warm-start trials): the first Sobol point the job has not tried. The
     * job's points are sorted once, so that the scan costs a binary search
     * per candidate rather than a pass over thousands of trials. */
    const double **own = malloc((h->n ? h->n : 1) * sizeof *own);
    if (!own) return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    size_t n_own = 0;
    for (size_t i = 0; i < h->n; i++)
        if (h->obs[i].own) own[n_own++] = h->pts + i * history_stride(h);
    sort_nd = sp->nd;
    qsort(own, n_own, sizeof *own, cmp_point_ref);
    uint64_t fs = rng_derive(seed, TPE_STREAM_FALLBACK);
    rc = ERR_EXISTS;
    for (uint64_t k = 0; k < TPE_FALLBACK_POINTS; k++) {
        int src = suggest_sobol(dims, sp->nd, fs, k, x, msg, msglen);
        if (src) {
            rc = src;
            break;
        }
        const double *key = x;
        sort_nd = sp->nd;
        if (!bsearch(&key, own, n_own, sizeof *own, cmp_point_ref) &&
            jobspec_space_params(sp, x, p, msg, msglen) == 0) {
            rc = 0;
            *fallback = true;
            break;
        }
    }
    free(own);
    if (rc == ERR_EXISTS) err_set(msg, msglen, rc, "no new point found in the space");
    return rc;
}

/* Test hook: SWEEPD_TEST_TPE_NOMEM=N in the daemon's environment makes its
 * first N TPE proposals fail as out of memory, so tests can see the job
 * wait and go on rather than end. */
static bool test_nomem(void)
{
    static long left = -1;
    if (left < 0) {
        const char *e = getenv("SWEEPD_TEST_TPE_NOMEM");
        left = e ? strtol(e, NULL, 10) : 0;
        if (left < 0) left = 0;
    }
    if (left == 0) return false;
    left--;
    return true;
}

/* Proposes J's next trial (number J->n) from the history of J and its
 * warm-start jobs, stores it (committed before it returns) and appends it
 * to J's trials, queued. NULL when it could not: the database was busy or
 * memory ran out (tried again a little later) or no point is left (J
 * proposes no more and ends with the trials it has). */
static strial *tpe_propose(sweepd *d, sjob *j)
{
    sched_tpe *tp = j->tpe;
    int number = (int)j->n;
    char msg[512] = "";
    tpe_history h = {.sp = &tp->space, .maximize = j->maximize};
    /* The finished states must be in the table before it is read. */
    int rc = store_flush(d->st);
    for (size_t i = 0; rc == 0 && i < tp->n_warm; i++)
        rc = store_job_history(d->st, tp->warm[i], j->metric, true, tpe_row, &h);
    h.own = true;
    if (rc == 0) rc = store_job_history(d->st, j->id, j->metric, false, tpe_row, &h);
    if (rc) {
        log_warn("job %lld: cannot read the trials for proposal %d (%s); trying again",
                 (long long)j->id, number, err_name(rc));
        tp->hold_until = time_mono() + IO_RETRY_SECONDS;
        free(h.pts);
        free(h.obs);
        return NULL;
    }
    uint64_t seed = rng_derive(rng_derive(tp->seed, JOBSPEC_STREAM_TPE), (uint64_t)number);
    jobspec_trial nt = {.number = number,
                        .seed = rng_derive(tp->seed, (uint64_t)number) & JOBSPEC_SEED_MASK};
    double x[SUGGEST_MAX_DIMS];
    bool fallback;
    rc = tpe_point(tp, &h, seed, x, &nt.params, &fallback, msg, sizeof msg);
    if (rc == 0 && test_nomem())
        rc = err_set(msg, sizeof msg, ERR_NOMEM, "SWEEPD_TEST_TPE_NOMEM: out of memory");
    size_t nk[3] = {0, 0, 0}; // DONE, PRUNED, PENDING
    for (size_t i = 0; i < h.n; i++)
        if (h.obs[i].kind >= 0) nk[h.obs[i].kind]++;
    free(h.pts);
    free(h.obs);
    if (rc == ERR_NOMEM) {
        /* Memory may come back (another trial's worker ends): the job keeps
         * its plan and the proposal is made again a little later. */
        log_warn("job %lld: no memory for proposal %d (%s); trying again in %g s", (long long)j->id,
                 number, msg, IO_RETRY_SECONDS);
        tp->hold_until = time_mono() + IO_RETRY_SECONDS;
        return NULL;
    }
    if (rc) {
        log_error("job %lld: no trial %d proposed (%s); the job ends with the %zu it has",
                  (long long)j->id, number, msg, j->n);
        j->planned = j->n;
        return NULL;
    }
    int64_t id;
    if ((rc = store_trial_add(d->st, j->id, &nt, &id, msg, sizeof msg))) {
        log_warn("job %lld: %s; trying again", (long long)j->id, msg);
        tp->hold_until = time_mono() + IO_RETRY_SECONDS;
        return NULL;
    }
    strial *t = &j->trials[j->n++];
    *t = (strial){.id = id, .number = number, .state = TS_QUEUED};
    j->counts[TS_QUEUED]++;
    log_info("job %lld: trial %d (id %lld) proposed by tpe from %zu completed, %zu pruned and "
             "%zu pending trials%s",
             (long long)j->id, number, (long long)id, nk[0], nk[1], nk[2],
             fallback ? " (a Sobol point: every TPE draw had been tried)" : "");
    return t;
}

int sched_check_warm_start(sweepd *d, const json_t *job, const jobspec *js, char *msg,
                           size_t msglen)
{
    json_t *space = json_object_get(job, "space");
    for (size_t i = 0; i < js->n_warm; i++) {
        char *text = NULL, tmp[128];
        int rc = store_job_spec(d->st, js->warm_jobs[i], &text);
        if (rc == ERR_NOTFOUND)
            return err_set(msg, msglen, ERR_NOTFOUND, "warm_start.jobs[%zu]: no job %lld", i,
                           (long long)js->warm_jobs[i]);
        if (rc)
            return err_set(msg, msglen, rc, "warm_start.jobs[%zu]: cannot read job %lld", i,
                           (long long)js->warm_jobs[i]);
        json_t *other = jx_parse(text, strlen(text), tmp, sizeof tmp);
        free(text);
        json_t *os = other ? json_object_get(other, "space") : NULL;
        bool same = (!space && !os) || (space && os && json_equal(space, os));
        json_decref(other);
        if (!same)
            return err_set(msg, msglen, ERR_INVALID,
                           "warm_start.jobs[%zu]: job %lld searched another space (warm start "
                           "needs the same \"space\")",
                           i, (long long)js->warm_jobs[i]);
    }
    return 0;
}

static void job_free(sjob *j)
{
    free(j->name);
    free(j->test);
    free(j->error);
    json_decref(j->tmpl);
    free(j->trials);
    tpe_free(j->tpe);
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
    while (*pp)
        pp = &(*pp)->next;
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

/* A new job record (no trials yet) with the settings it was submitted with;
 * NULL when out of memory. Freed by job_free. */
static sjob *job_new(int64_t id, job_state state, uid_t uid, int max_parallel, double trial_timeout,
                     int max_retries)
{
    sjob *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->id = id;
    j->state = state;
    j->uid = uid;
    j->max_parallel = max_parallel;
    j->trial_timeout = trial_timeout;
    j->max_retries = max_retries;
    return j;
}

/* Fills the job-wide fields of J from a parsed spec. */
static int job_from_spec(sjob *j, const jobspec *js)
{
    j->name = strdup(js->name);
    j->test = js->test ? strdup(js->test) : NULL;
    snprintf(j->metric, sizeof j->metric, "%s", js->metric);
    j->maximize = js->maximize;
    j->pruner = js->pruner;
    j->tmpl = jobspec_trial_template(js);
    if (!j->name || (js->test && !j->test) || !j->tmpl) return ERR_NOMEM;
    j->eval_done = j->test == NULL;
    return 0;
}

int sched_add_job(sweepd *d, const jobspec *js, int64_t job_id, const int64_t *trial_ids, uid_t uid,
                  int max_parallel, double trial_timeout, int max_retries)
{
    sjob *j = job_new(job_id, JS_QUEUED, uid, max_parallel, trial_timeout, max_retries);
    if (!j) return ERR_NOMEM;
    j->n = js->n_trials;
    size_t room = js->trials_total > j->n ? js->trials_total : j->n;
    j->trials = calloc(room ? room : 1, sizeof *j->trials);
    if (!j->trials || job_from_spec(j, js) || tpe_attach(j, js, room)) {
        job_free(j);
        return ERR_NOMEM;
    }
    for (size_t i = 0; i < j->n; i++) {
        j->trials[i].id = trial_ids[i];
        j->trials[i].number = js->trials[i].number;
        j->trials[i].state = TS_QUEUED;
    }
    j->counts[TS_QUEUED] = j->n;
    log_info("job %lld (%s) submitted by uid %u: %zu %s trials (%zu stored now), max_parallel %d",
             (long long)job_id, j->name, (unsigned)uid, j->planned, js->strategy, j->n,
             max_parallel);
    append_job(d, j);
    sched_run(d);
    return 0;
}

/* The best completed trial of J from the database (after a restart). */
static void load_best(sweepd *d, sjob *j)
{
    store_best_row b;
    if (store_job_best_trial(d->st, j->id, &b) == 0 && b.has_value) {
        j->has_best = true;
        j->best_id = b.id;
        j->best_number = b.number;
        j->best_value = b.value;
    }
}

/* store_live_fn: counts and best of an active job from memory. */
static bool live_figures(void *ud, int64_t job_id, store_live *out)
{
    sjob *j = sched_find_job(ud, job_id);
    if (!j) return false;
    for (int i = 0; i < TS_COUNT && i < 6; i++)
        out->counts[i] = (int64_t)j->counts[i];
    out->has_best = j->has_best;
    out->best_id = j->best_id;
    out->best_number = j->best_number;
    out->best_value = j->best_value;
    return true;
}

/* store_active_jobs callback: one job to resume, appended to the sweepd UD. */
static int load_job(void *ud, const store_job_row *r)
{
    sweepd *d = ud;
    char tmp[512] = "no spec stored";
    const char *text = r->spec_json;
    json_t *spec = text ? jx_parse(text, strlen(text), tmp, sizeof tmp) : NULL;
    jobspec js;
    memset(&js, 0, sizeof js); // freed below also when the stored text is not JSON
    int prc = spec ? jobspec_parse(&js, spec, 0, r->seed, tmp, sizeof tmp) : ERR_PARSE;
    json_decref(spec);
    sjob *j = job_new(r->id, r->running ? JS_RUNNING : JS_QUEUED, r->uid, r->max_parallel,
                      r->trial_timeout, r->max_retries);
    if (!j) {
        jobspec_free(&js);
        return ERR_NOMEM;
    }
    if (prc == 0) prc = job_from_spec(j, &js);
    if (prc == 0) prc = tpe_attach(j, &js, r->trials_total);
    jobspec_free(&js);
    if (prc != 0) {
        /* A stored spec that no longer parses: the job cannot run. */
        log_error("job %lld: stored spec unusable (%s); marking it failed", (long long)r->id, tmp);
        free(j->name);
        j->name = strdup("?");
        j->error = strdup("stored job spec could not be read on restart");
        append_job(d, j);
        return 0;
    }
    snprintf(j->metric, sizeof j->metric, "%s", r->metric);
    j->maximize = r->maximize;
    j->cancel_pending = r->cancel_requested;
    append_job(d, j);
    return 0;
}

/* store_job_trial_briefs callback: the next trial of the job UD. */
static int load_trial(void *ud, const store_trial_brief *b)
{
    sjob *j = ud;
    strial *t = &j->trials[j->n++];
    t->id = b->id;
    t->number = b->number;
    t->state = TS_QUEUED;
    for (int k = 0; k < TS_COUNT; k++)
        if (b->state && !strcmp(b->state, trial_names[k])) t->state = (uint8_t)k;
    if (t->state == TS_RUNNING) t->state = TS_QUEUED; // recovery already requeued them
    t->attempt = (uint16_t)b->attempt;
    j->counts[t->state]++;
    return 0;
}

int sched_load(sweepd *d, char *msg, size_t msglen)
{
    int rc = store_active_jobs(d->st, load_job, d);
    if (rc == ERR_DB) return err_set(msg, msglen, ERR_DB, "cannot read jobs");
    if (rc) return err_set(msg, msglen, rc, "out of memory loading jobs");
    /* Their trials. (A job whose cancel is finished here may end and be
     * freed: NEXT is taken first.) */
    for (sjob *j = d->jobs, *next; j; j = next) {
        next = j->next;
        size_t n = 0;
        if (store_job_trial_count(d->st, j->id, &n) != 0)
            return err_set(msg, msglen, ERR_DB, "cannot read trials");
        if (j->planned < n) j->planned = n;
        j->trials = calloc(j->planned ? j->planned : 1, sizeof *j->trials);
        if (!j->trials) return ERR_NOMEM;
        j->n = 0;
        if (store_job_trial_briefs(d->st, j->id, n, load_trial, j) != 0)
            return err_set(msg, msglen, ERR_DB, "cannot read trials");
        load_best(d, j);
        log_info("job %lld (%s) resumed: %zu queued, %zu completed, %zu failed of %zu",
                 (long long)j->id, j->name, j->counts[TS_QUEUED], j->counts[TS_COMPLETED],
                 j->counts[TS_FAILED], j->n);
        if (j->cancel_pending && !j->error) {
            /* Cancelled, but the last daemon stopped before the cancelled
             * trials did: finish the cancel (recovery has put them back in
             * the queue) instead of running them again. */
            int dq, stopping;
            log_info("job %lld: finishing the cancel requested before the restart",
                     (long long)j->id);
            sched_cancel(d, j, &dq, &stopping);
            continue;
        }
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

/* The best completed trial of J, rank 1 of best_trials (ties to the lower
 * number), from the database (queued writes are committed first), and its
 * out_dir into OUT_DIR. NULL when there is none. */
static strial *best_trial(sweepd *d, sjob *j, char *out_dir, size_t n)
{
    store_best_row b;
    if (store_job_best_trial(d->st, j->id, &b) != 0) return NULL;
    if (b.out_dir[0])
        snprintf(out_dir, n, "%s", b.out_dir);
    else
        trial_out_dir(d, b.id, out_dir, n);
    for (size_t i = 0; i < j->n; i++)
        if (j->trials[i].id == b.id) return &j->trials[i];
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
    if (j->tpe && !j->cancelling && !j->error && j->n < j->planned) return false; // to propose
    if (j->cancelling) {
        job_end(d, j, JS_CANCELLED);
        return true;
    }
    if (j->counts[TS_COMPLETED] == 0) {
        if (!j->error) {
            char e[128];
            if (j->counts[TS_PRUNED])
                snprintf(e, sizeof e, "no trial completed (%zu failed, %zu pruned)",
                         j->counts[TS_FAILED], j->counts[TS_PRUNED]);
            else
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

/* ---- processes ------------------------------------------------------- */

static void proc_on_spawn(runner_proc *rp, void *ud);
static void prune_stop(proc *p, int epoch, const char *reason, const char *when);
static void proc_on_line(runner_proc *rp, char *line, size_t len, void *ud);
static void proc_on_exit(runner_proc *rp, void *ud);

/* runner on_closed: the handle is done with; frees the proc UD. */
static void proc_on_closed(runner_proc *rp, void *ud)
{
    (void)rp;
    proc *p = ud;
    free(p->last_error);
    free(p->prune_reason);
    free(p->feat_key);
    json_decref(p->eval_result);
    free(p);
}

static const runner_callbacks proc_callbacks = {
    .on_spawn = proc_on_spawn,
    .on_line = proc_on_line,
    .on_exit = proc_on_exit,
    .on_closed = proc_on_closed,
};

/* runner on_signal under launcher slurm: a SIGTERM for a worker that has
 * started goes to its step through scancel (a SIGTERM to srun would kill the
 * task without a checkpoint); one for a step not started yet, and any other
 * signal, goes to srun as well (it ends the step or its pending allocation);
 * SIGKILL goes to both. */
static bool proc_on_signal(runner_proc *rp, int sig, void *ud)
{
    proc *p = ud;
    char name[96];
    launcher_step_name(name, sizeof name, p->job->id, p->trial->id, p->is_eval);
    if (sig == SIGKILL) {
        launcher_signal(rp->loop, name, SIGKILL);
        return false;
    }
    if (sig != SIGTERM || p->is_eval || !p->check.started) return false;
    launcher_signal(rp->loop, name, SIGTERM);
    return true;
}

/* A new process record of J for trial T (the evaluated trial when IS_EVAL),
 * its handle set up; NULL when out of memory. Freed by proc_release. */
static proc *proc_new(sweepd *d, sjob *j, strial *t, bool is_eval)
{
    proc *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    runner_init(&p->rp, d->loop, &proc_callbacks, p);
    if (d->cfg->launcher == LAUNCH_SLURM) p->rp.cb.on_signal = proc_on_signal;
    p->d = d;
    p->job = j;
    p->trial = t;
    p->is_eval = is_eval;
    p->done_value = NAN;
    return p;
}

/* Adds P to D's live processes. */
static void proc_link(sweepd *d, proc *p)
{
    p->next = d->procs;
    if (d->procs) d->procs->prev = p;
    d->procs = p;
    p->linked = true;
}

/* Unlinks P and releases its handle; P is freed once the handle is closed. */
static void proc_release(proc *p)
{
    if (p->linked) {
        if (p->prev)
            p->prev->next = p->next;
        else if (p->d->procs == p)
            p->d->procs = p->next;
        if (p->next) p->next->prev = p->prev;
    }
    p->next = p->prev = NULL;
    p->linked = false;
    runner_release(&p->rp);
}

/* ---- the feature cache's share of scheduling ---------------------------- */

static strial *next_queued(sjob *j);

/* The "model" of a trial of J with PARAMS: its params.arch's when the job
 * searches the architecture (jobspec_trial_template), else the job's.
 * Borrowed from J's template. */
static json_t *trial_model(const sjob *j, const json_t *params)
{
    const char *arch = json_string_value(json_object_get(params, "arch"));
    json_t *m = arch ? json_object_get(json_object_get(j->tmpl, "models"), arch) : NULL;
    return m ? m : json_object_get(j->tmpl, "model");
}

/* Queued trials of a job looked at past the first when its features are
 * being built (each look is one read of the trial's params). */
#define FEATURE_LOOKAHEAD 32

/* The daemon's view of the feature cache key of a trial of J with PARAMS:
 * the job's data and model (weights, input size) and the freeze point;
 * NULL (no key) when its features are not cached (nothing frozen,
 * augmentation on, unusable params). The worker's key (README.md "Feature
 * cache") has more in it, but trials with equal daemon keys have equal
 * worker keys. A new string (owned). */
static char *feature_key(const sjob *j, const json_t *params)
{
    trial_params p;
    char why[256];
    if (!params || params_from_json(&p, params, "params", why, sizeof why) < 0) return NULL;
    if (p.freeze == FREEZE_NONE || p.augment != AUGMENT_OFF) return NULL;
    freeze_kind fz = p.freeze == FREEZE_ALL ? FREEZE_LAYER4 : p.freeze;
    json_t *k = json_pack("{s:O?, s:O?, s:s}", "data", json_object_get(j->tmpl, "data"), "model",
                          trial_model(j, params), "freeze", params_freeze_name(fz));
    char *txt = k ? json_dumps(k, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(k);
    return txt;
}

/* A valid event of P's worker: its features are ready once it trains (a
 * progress or epoch event) or when its start says it found them or uses
 * none. */
static void feature_note_event(proc *p, const char *kind, const json_t *ev)
{
    if (!p->feat_key || p->feat_ready) return;
    const char *f = json_string_value(json_object_get(ev, "features"));
    if (!strcmp(kind, "progress") || !strcmp(kind, "epoch") ||
        (!strcmp(kind, "start") && (!f || !strcmp(f, "reused") || !strcmp(f, "off"))))
        p->feat_ready = true;
}

/* Whether a running trial with feature key KEY (any running trial with a
 * key, when KEY is NULL) has no features ready yet: building or waiting. */
static bool feature_pending(const sweepd *d, const char *key)
{
    for (const proc *p = d->procs; p; p = p->next)
        if (!p->is_eval && p->feat_key && !p->feat_ready && (!key || !strcmp(key, p->feat_key)))
            return true;
    return false;
}

/* The queued trial of J to start next: the first queued one, unless a
 * running trial is still building the features it needs; then the first of
 * the next FEATURE_LOOKAHEAD queued trials whose features are not being
 * built (another key, or none), so that each entry has one builder while
 * the other slots work. When every one looked at needs an entry in the
 * making, the first queued trial starts anyway (it waits for the entry and
 * reads it): a free slot is never left idle. */
static strial *pick_queued(sweepd *d, sjob *j)
{
    strial *first = next_queued(j);
    if (!first || !feature_pending(d, NULL)) return first;
    size_t seen = 0;
    for (size_t i = j->cursor; i < j->n && seen < FEATURE_LOOKAHEAD; i++) {
        strial *t = &j->trials[i];
        if (t->state != TS_QUEUED) continue;
        seen++;
        json_t *params = NULL;
        int64_t seed;
        char msg[256];
        if (store_trial_params(d->st, t->id, &params, &seed, msg, sizeof msg)) return first;
        char *key = feature_key(j, params);
        json_decref(params);
        bool busy = key && feature_pending(d, key);
        free(key);
        if (!busy) {
            if (t != first)
                log_debug("trial %lld starts before trial %lld, whose frozen-prefix features "
                          "another trial is building",
                          (long long)t->id, (long long)first->id);
            return t;
        }
    }
    return first;
}

/* <state_dir>/logs/trial-<id>.log: where trial ID's workers write stderr. */
static void trial_log_path(const sweepd *d, int64_t id, char *buf, size_t n)
{
    snprintf(buf, n, "%s/logs/trial-%lld.log", d->cfg->state_dir, (long long)id);
}

/* Starts the worker of trial T of J: builds its trial spec (README.md
 * "Contract") from the job's template and the trial's row, and has the
 * runner prepare its files in the threadpool and spawn `worker run`. */
static int trial_proc_start(sweepd *d, sjob *j, strial *t, char *msg, size_t msglen)
{
    json_t *params = NULL;
    int64_t seed = 0;
    int rc = store_trial_params(d->st, t->id, &params, &seed, msg, msglen);
    if (rc) return rc;
    int epochs = events_check_epochs(params); // before json_pack takes PARAMS
    char *feat_key = feature_key(j, params);
    char out_dir[PATH_MAX], cache[PATH_MAX], log[PATH_MAX], what[64];
    char spec_path[PATH_MAX + 16], events[PATH_MAX + 32];
    trial_out_dir(d, t->id, out_dir, sizeof out_dir);
    trial_log_path(d, t->id, log, sizeof log);
    snprintf(cache, sizeof cache, "%s/cache", d->cfg->state_dir);
    snprintf(spec_path, sizeof spec_path, "%s/trial.json", out_dir);
    snprintf(events, sizeof events, "%s/events.ndjson", out_dir);
    snprintf(what, sizeof what, "trial %lld attempt %u", (long long)t->id, (unsigned)t->attempt);
    json_t *spec =
        json_pack("{s:I, s:I, s:I, s:O, s:O, s:o, s:O, s:I, s:s, s:s, s:i}", "trial",
                  (json_int_t)t->id, "job", (json_int_t)j->id, "seed", (json_int_t)seed, "data",
                  json_object_get(j->tmpl, "data"), "model", trial_model(j, params), "params",
                  params, "objective", json_object_get(j->tmpl, "objective"), "cache_max_mb",
                  (json_int_t)d->cfg->cache_max_mb, "out_dir", out_dir, "cache_dir", cache,
                  "threads", d->cfg->threads_per_worker);
    if (spec && d->cfg->n_data_roots > 0) { // the worker applies them to every path it opens
        json_t *roots = json_array();
        for (int i = 0; roots && i < d->cfg->n_data_roots; i++)
            json_array_append_new(roots, json_string(d->cfg->data_roots[i]));
        if (json_object_set_new(spec, "data_roots", roots) != 0) {
            json_decref(spec);
            spec = NULL;
        }
    }
    char *text = spec ? jx_dump_line(spec) : NULL;
    json_decref(spec);
    proc *p = text ? proc_new(d, j, t, false) : NULL;
    if (!p) {
        free(text);
        free(feat_key);
        return err_set(msg, msglen, ERR_NOMEM, "out of memory building the trial spec");
    }
    p->feat_key = feat_key;
    events_check_init(&p->check, t->id, epochs, false);
    runner_files files = {.dir = out_dir,
                          .file_path = spec_path,
                          .file_text = text,
                          .log_path = log,
                          .log_what = what,
                          .out_path = events};
    /* The spec path stays argv[2]; options follow it. */
    char *argv[] = {d->cfg->worker, "run", spec_path, "--blas-core", d->cfg->blas_core, NULL};
    char name[96], **cmd = NULL;
    launcher_step_name(name, sizeof name, j->id, t->id, false);
    rc = launcher_argv(d->cfg, name, out_dir, j->trial_timeout, argv, &cmd, msg, msglen);
    if (rc == 0) rc = runner_start(&p->rp, cmd, out_dir, &files, true, msg, msglen);
    launcher_argv_free(cmd);
    free(text);
    if (rc) {
        proc_release(p);
        return rc;
    }
    proc_link(d, p);
    t->proc = p;
    return 0;
}

/* Starts `worker eval` on the test set of J with the weights of BEST in
 * OUT_DIR, now (no threadpool: its files are few). ERR_BUSY when its files
 * could not be created for lack of space (try again later). */
static int eval_proc_start(sweepd *d, sjob *j, strial *best, const char *out_dir, char *msg,
                           size_t msglen)
{
    char weights[PATH_MAX + 32], events[PATH_MAX + 32], log[PATH_MAX];
    snprintf(weights, sizeof weights, "%s/best.safetensors", out_dir);
    if (access(weights, R_OK) != 0)
        return err_set_errno(msg, msglen, ERR_NOTFOUND, errno, "cannot read %s", weights);
    trial_log_path(d, best->id, log, sizeof log);
    snprintf(events, sizeof events, "%s/eval.ndjson", out_dir);
    proc *p = proc_new(d, j, best, true);
    if (!p) return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    runner_files files = {.log_path = log,
                          .log_what = "test-set evaluation",
                          .out_path = events,
                          .out_truncate = true};
    /* <worker> eval --weights W --data DIR --blas-core P [--data-root R]... */
    char *fixed[] = {d->cfg->worker, "eval",  "--weights",   weights,
                     "--data",       j->test, "--blas-core", d->cfg->blas_core};
    size_t nf = sizeof fixed / sizeof fixed[0];
    char **argv = calloc(nf + 2 * (size_t)d->cfg->n_data_roots + 1, sizeof *argv);
    if (!argv) {
        proc_release(p);
        return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    }
    memcpy(argv, fixed, sizeof fixed);
    for (int i = 0; i < d->cfg->n_data_roots; i++) {
        argv[nf + 2 * (size_t)i] = "--data-root";
        argv[nf + 2 * (size_t)i + 1] = d->cfg->data_roots[i];
    }
    char name[96], **cmd = NULL;
    launcher_step_name(name, sizeof name, j->id, best->id, true);
    int rc = launcher_argv(d->cfg, name, out_dir, 0, argv, &cmd, msg, msglen);
    if (rc == 0) rc = runner_start(&p->rp, cmd, out_dir, &files, false, msg, msglen);
    launcher_argv_free(cmd);
    free(argv);
    if (rc) {
        bool space = runner_errno_is_space(p->rp.eno);
        proc_release(p);
        return space ? ERR_BUSY : rc;
    }
    proc_link(d, p);
    j->eval = p;
    return 0;
}

/* Starts the pending evaluation of J in a free slot. Returns 0 when it is
 * dealt with (started, or given up), 1 when it must wait (the database is
 * locked, or there is no space for its files): the caller returns to the loop
 * and the timer tries again; it never waits here. */
static int start_eval(sweepd *d, sjob *j)
{
    j->eval_pending = false;
    if (store_flush(d->st) != 0) {
        j->eval_pending = true; // database busy: try again at the next tick
        d->db_busy = true;
        return 1;
    }
    char out_dir[PATH_MAX], msg[512];
    strial *best = best_trial(d, j, out_dir, sizeof out_dir);
    int rc = best ? eval_proc_start(d, j, best, out_dir, msg, sizeof msg)
                  : err_set(msg, sizeof msg, ERR_NOTFOUND, "no completed trial to evaluate");
    if (rc == ERR_BUSY) {
        /* No space for its files: try again later, like a trial's. */
        if (!j->eval_io_wait)
            log_warn("job %lld: cannot start the test-set evaluation: %s; retried every %g s",
                     (long long)j->id, msg, IO_RETRY_SECONDS);
        j->eval_io_wait = true;
        j->eval_pending = true;
        d->hold_until = time_mono() + IO_RETRY_SECONDS;
        return 1;
    }
    j->eval_io_wait = false;
    if (rc) {
        log_warn("job %lld: test set not evaluated: %s", (long long)j->id, msg);
        char e[600];
        snprintf(e, sizeof e, "test set not evaluated: %s", msg);
        store_job_test_error(d->st, j->id, e);
        j->eval_done = true;
        check_job_end(d, j);
        return 0;
    }
    d->running++;
    int pid = j->eval->rp.pid;
    log_info("job %lld: evaluating trial %lld on the test set %s (pid %d)", (long long)j->id,
             (long long)best->id, j->test, pid);
    /* Recorded on the evaluated (completed) trial's row, so that a daemon
     * restarted after a crash finds and stops it (recover.c) instead of
     * letting it run beside the evaluation it starts itself. */
    store_trial_pid(d->st, best->id, pid, runner_proc_start_time(pid));
    d->urgent = true;
    return 0;
}

/* ---- waiting for space ------------------------------------------------ */

/* A worker of T could not write its files for lack of space (it exited
 * WEXIT_NOSPACE; WHAT says which file, or is NULL): every start is held
 * until the state directory has room for T's checkpoint again, probed by
 * space_is_back at each retry. The warning names the directory; it is
 * logged once per wait (and at most every SPACE_WARN_SECONDS). */
static void space_wait_begin(sweepd *d, strial *t, const char *what)
{
    char out_dir[PATH_MAX], ckpt[PATH_MAX + 32];
    trial_out_dir(d, t->id, out_dir, sizeof out_dir);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", out_dir);
    struct stat st;
    size_t need = SPACE_SLACK + (stat(ckpt, &st) == 0 ? (size_t)st.st_size : 0);
    if (need > d->space_need) d->space_need = need;
    double now = time_mono();
    if (!d->space_wait && (d->warned_at == 0 || now - d->warned_at >= SPACE_WARN_SECONDS)) {
        log_warn("waiting for space on %s: trial %lld: %s; trials wait in the queue without "
                 "using an attempt and start again once %llu bytes are free (checked every %g s)",
                 d->cfg->state_dir, (long long)t->id, what ? what : "no space left for its files",
                 (unsigned long long)d->space_need, IO_RETRY_SECONDS);
        d->warned_at = now;
    }
    d->space_wait = true;
    d->hold_until = now + IO_RETRY_SECONDS;
}

/* True when the state directory has d->space_need bytes free and the
 * file-size limit (which workers inherit) allows files that large, or when
 * that cannot be told; ends the wait then. */
static bool space_is_back(sweepd *d)
{
    struct statvfs v;
    struct rlimit rl;
    if (statvfs(d->cfg->state_dir, &v) != 0) {
        log_debug("statvfs %s: %s; trying to start trials", d->cfg->state_dir, strerror(errno));
    } else {
        uint64_t avail = (uint64_t)v.f_bavail * (uint64_t)v.f_frsize;
        bool limited = getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
                       (uint64_t)rl.rlim_cur < d->space_need;
        if (avail < d->space_need || limited) {
            log_debug("still waiting for space on %s: %llu bytes free, %llu wanted%s",
                      d->cfg->state_dir, (unsigned long long)avail,
                      (unsigned long long)d->space_need,
                      limited ? " (the file-size limit is lower)" : "");
            return false;
        }
        log_info("space is back on %s (%llu bytes free); starting trials again", d->cfg->state_dir,
                 (unsigned long long)avail);
    }
    d->space_wait = false;
    d->space_need = 0;
    return true;
}

static void eval_finished(sweepd *d, proc *p)
{
    sjob *j = p->job;
    j->eval = NULL;
    j->eval_done = true;
    store_trial_clear_pid(d->st, p->trial->id);
    d->urgent = true;
    json_t *acc = p->eval_result ? json_object_get(p->eval_result, "accuracy") : NULL;
    if (p->stop == STOP_SHUTDOWN) {
        j->eval_done = false; // run it again after the restart
        return;
    }
    if (p->stop == STOP_NONE && p->rp.term_signal == 0 && p->rp.exit_status == WEXIT_NOSPACE) {
        /* Its result could not be written: run it again once there is space. */
        j->eval_done = false;
        j->eval_pending = true;
        space_wait_begin(d, p->trial, "the test-set evaluation could not write its result");
        return;
    }
    if (p->rp.exit_status == WEXIT_OK && p->rp.term_signal == 0 && json_is_number(acc)) {
        double a = json_number_value(acc);
        store_trial_test_accuracy(d->st, p->trial->id, a);
        log_info("job %lld: trial %lld test_accuracy %.4f", (long long)j->id,
                 (long long)p->trial->id, a);
        if (watched(d, j))
            emit(d, j,
                 json_pack("{s:s, s:I, s:I, s:i, s:f}", "event", "test", "job", (json_int_t)j->id,
                           "trial", (json_int_t)p->trial->id, "number", p->trial->number,
                           "test_accuracy", a));
    } else {
        char e[512], how[64];
        if (p->rp.term_signal)
            snprintf(how, sizeof how, "killed by signal %d", p->rp.term_signal);
        else
            snprintf(how, sizeof how, "exit status %lld", (long long)p->rp.exit_status);
        snprintf(e, sizeof e, "test-set evaluation failed (%s)%s%s", how, p->last_error ? ": " : "",
                 p->last_error ? p->last_error : "");
        log_warn("job %lld: %s", (long long)j->id, e);
        store_job_test_error(d->st, j->id, e);
    }
    check_job_end(d, j);
}

/* ---- worker outcomes ------------------------------------------------- */

/* What worker exit STATUS means (README.md "Contract", worker_exit.h). */
static const char *exit_reason(int64_t status)
{
    switch (status) {
    case WEXIT_OK:
        return "done";
    case WEXIT_SPEC:
        return "bad trial spec or arguments";
    case WEXIT_DATA:
        return "data error";
    case WEXIT_MODEL:
        return "model error";
    case WEXIT_DIVERGED:
        return "diverged"; // the worker's message says which loss was not finite
    case WEXIT_NOMEM:
        return "out of memory";
    case WEXIT_STOPPED:
        return "stopped by a signal after writing a checkpoint";
    case WEXIT_NOSPACE:
        return "no space left for its files";
    default:
        return "crashed";
    }
}

/* runner on_exit: called once P's events file has been read to its end, or
 * for a start that failed before any line: every event of the run has been
 * forwarded before the state change that ends it. */
static void proc_on_exit(runner_proc *rp, void *ud)
{
    proc *p = ud;
    sweepd *d = p->d;
    sjob *j = p->job;
    d->running--;
    if (rp->start_failed) {
        free(p->last_error);
        p->last_error = strdup(rp->error);
    }
    if (p->bad_lines)
        log_warn("job %lld pid %d: %u output lines were not JSON events or too long",
                 (long long)j->id, rp->pid, p->bad_lines);
    if (!p->is_eval && p->check.bad)
        log_warn("trial %lld: worker pid %d sent %u invalid events, none stored%s",
                 (long long)p->trial->id, rp->pid, p->check.bad,
                 p->check.faulty ? "; the worker was faulty" : "");
    if (p->is_eval) {
        eval_finished(d, p);
        proc_release(p);
        sched_run(d);
        return;
    }
    strial *t = p->trial;
    t->proc = NULL;
    /* A trial stopped before its worker was spawned counts as stopped. */
    int64_t status = rp->not_started ? WEXIT_STOPPED : rp->exit_status;
    int sig = rp->term_signal;
    /* Under Slurm, srun's status says whether the worker or the cluster ended it. */
    launch_exit how = rp->not_started || rp->start_failed
                          ? LAUNCH_EXIT_WORKER
                          : launcher_exit(d->cfg, status, &sig, p->stop != STOP_NONE, p->done_seen);
    if (how == LAUNCH_EXIT_SIGNAL) status = 0;
    int64_t code = sig ? -(int64_t)sig : status;
    char why[1200];
    tinfo info = {.has_exit = true, .exit_code = code, .why = why};
    if (sig)
        snprintf(why, sizeof why, "killed by signal %d", sig);
    else
        snprintf(why, sizeof why, "exit status %lld (%s)", (long long)status, exit_reason(status));
    char err[768];
    if (rp->start_failed && runner_errno_is_space(rp->eno) && !j->cancelling) {
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
    } else if (rp->start_failed && j->cancelling) {
        info.has_exit = false;
        info.why = "job cancelled before its worker started";
        info.error = "cancelled";
        trial_set_state(d, j, t, TS_CANCELLED, &info);
    } else if (rp->start_failed) {
        info.has_exit = false;
        info.error = p->last_error ? p->last_error : "cannot start the worker";
        info.why = info.error;
        log_error("trial %lld: %s", (long long)t->id, info.error);
        trial_set_state(d, j, t, TS_FAILED, &info);
    } else if (p->check.faulty && p->stop != STOP_CANCEL) {
        /* Its worker sent invalid events (events_check.h) and was stopped: the
         * trial fails whatever the exit status (a worker that lied about being
         * done is not completed), without a retry (the same worker would lie
         * again). */
        snprintf(err, sizeof err, "worker sent invalid events: %s", p->check.fault);
        info.error = utf8_trim_tail(err);
        size_t wl = strlen(why);
        snprintf(why + wl, sizeof why - wl, "; %s", err);
        trial_set_state(d, j, t, TS_FAILED, &info);
    } else if (how == LAUNCH_EXIT_CLUSTER && p->stop == STOP_NONE &&
               t->cluster_faults < SCHED_CLUSTER_RETRIES) {
        /* A node failure, a preemption or srun's own error: not the trial's
         * fault, so no attempt is used (up to SCHED_CLUSTER_RETRIES times,
         * then such failures count like crashes); it resumes from its
         * checkpoint. */
        t->cluster_faults++;
        snprintf(err, sizeof err,
                 "the cluster ended its step (srun exit status %lld%s); retried without using"
                 " an attempt (%u of %d)",
                 (long long)status, status == WEXIT_OK ? " without a done event" : "",
                 (unsigned)t->cluster_faults, SCHED_CLUSTER_RETRIES);
        info.why = err;
        trial_set_state(d, j, t, TS_QUEUED, &info);
    } else if (status == WEXIT_OK && sig == 0 && how != LAUNCH_EXIT_CLUSTER) {
        trial_set_state(d, j, t, TS_COMPLETED, &info);
        double v = p->done_seen ? p->done_value : NAN;
        if (!isnan(v) && (!j->has_best || (j->maximize ? v > j->best_value : v < j->best_value) ||
                          (v == j->best_value && t->number < j->best_number))) {
            j->has_best = true;
            j->best_id = t->id;
            j->best_number = t->number;
            j->best_value = v;
        }
    } else if (p->stop == STOP_PRUNE) {
        /* Final: the decision is recorded (trial_rungs), so a retry would be
         * stopped again at once. */
        snprintf(err, sizeof err, "pruned at epoch %d: %s", p->prune_epoch,
                 p->prune_reason ? p->prune_reason : "stopped by the pruner");
        info.error = utf8_trim_tail(err);
        info.why = err;
        info.pruned_epoch = p->prune_epoch;
        trial_set_state(d, j, t, TS_PRUNED, &info);
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
    } else if (sig == 0 && status == WEXIT_NOSPACE) {
        /* A checkpoint, its best weights or its events could not be written
         * for lack of space: not the trial's fault, so no attempt is used; it
         * resumes from its last checkpoint (a failed write leaves that
         * intact) once there is space again, and until then nothing starts. */
        snprintf(err, sizeof err, "%s%s%s", exit_reason(status), p->last_error ? ": " : "",
                 p->last_error ? p->last_error : "");
        info.error = utf8_trim_tail(err);
        info.why = "no space left for its files; resumes from its checkpoint when space returns";
        info.quiet = d->space_wait;
        space_wait_begin(d, t, p->last_error);
        trial_set_state(d, j, t, TS_QUEUED, &info);
    } else if (sig == 0 && worker_exit_is_final_failure(status)) {
        snprintf(err, sizeof err, "%s%s%s", exit_reason(status), p->last_error ? ": " : "",
                 p->last_error ? p->last_error : "");
        info.error = utf8_trim_tail(err);
        trial_set_state(d, j, t, TS_FAILED, &info);
    } else {
        /* WEXIT_STOPPED, another status, or a signal: retry while attempts remain. */
        if (sig)
            snprintf(err, sizeof err, "attempt %u killed by signal %d", (unsigned)t->attempt, sig);
        else
            snprintf(err, sizeof err, "attempt %u: exit status %lld (%s)%s%s", (unsigned)t->attempt,
                     (long long)status, exit_reason(status), p->last_error ? ": " : "",
                     p->last_error ? p->last_error : "");
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
    proc_release(p);
    check_job_end(d, j);
    sched_run(d);
}

/* ---- pruners ---------------------------------------------------------- */

/* Stops P's worker for its job's pruner: decided at EPOCH for REASON (the
 * recorded decision; WHEN says how, for the log). proc_on_exit then moves
 * the trial to pruned, unless it completed first. */
static void prune_stop(proc *p, int epoch, const char *reason, const char *when)
{
    if (p->stop != STOP_NONE) return;
    free(p->prune_reason);
    p->prune_reason = strdup(reason);
    p->prune_epoch = epoch;
    p->stop = STOP_PRUNE;
    log_info("trial %lld: pruned at epoch %d (%s): %s; sending SIGTERM", (long long)p->trial->id,
             epoch, when, reason);
    runner_terminate(&p->rp);
}

/* The verdict of job J's pruner on trial T at decision epoch EPOCH, from the
 * database: its value and the others' (median: every other trial's best so
 * far at EPOCH; asha: the values recorded at the rung). Fills VALUE and
 * REASON; returns 1 to stop, 0 to continue, or a negative code when the
 * values cannot be read (then nothing is decided). */
static int prune_verdict(sweepd *d, sjob *j, strial *t, int epoch, double *value, char *reason,
                         size_t len)
{
    int64_t *ids = NULL;
    double *vals = NULL, *others = NULL;
    size_t n = 0, n_others = 0;
    int rc = store_epoch_values(d->st, j->id, j->metric, j->maximize, epoch, &ids, &vals, &n);
    if (rc) return rc;
    bool found = false;
    for (size_t i = 0; i < n; i++)
        if (ids[i] == t->id) {
            *value = vals[i];
            found = true;
            vals[i] = vals[n - 1]; // the others stay in vals[0..n-2]
            n--;
            break;
        }
    free(ids);
    if (!found) { // its epoch carries no objective value: nothing to judge
        free(vals);
        return ERR_NOTFOUND;
    }
    if (j->pruner.kind == PRUNE_ASHA) {
        free(vals);
        vals = NULL;
        if ((rc = store_rung_values(d->st, j->id, t->id, epoch, &others, &n_others))) return rc;
    } else {
        others = vals;
        n_others = n;
    }
    bool stop = prune_decide(&j->pruner, j->maximize, j->metric, epoch, *value, others, n_others,
                             reason, len);
    free(others);
    return stop ? 1 : 0;
}

/* The "epoch" event EPOCH of P's trial (already queued for the store), in a
 * job with a pruner: at a decision epoch, the recorded decision if there is
 * one (a replayed or resumed epoch is never decided twice), else a new one,
 * recorded and committed before it is acted on. */
static void prune_epoch_event(proc *p, int epoch)
{
    sweepd *d = p->d;
    sjob *j = p->job;
    strial *t = p->trial;
    if (p->stop != STOP_NONE || j->cancelling || !prune_is_decision_epoch(&j->pruner, epoch))
        return;
    char reason[512];
    int at;
    bool stop;
    /* The epoch's metrics row is needed by the queries below. */
    int rc = store_flush(d->st);
    if (rc == 0) rc = store_rung_lookup(d->st, t->id, epoch, &at, &stop, reason, sizeof reason);
    if (rc == 0) {
        if (stop) prune_stop(p, epoch, reason, "recorded decision");
        return;
    }
    double value = NAN;
    if (rc == 1) rc = prune_verdict(d, j, t, epoch, &value, reason, sizeof reason);
    if (rc < 0) {
        if (rc != ERR_NOTFOUND)
            log_warn("trial %lld: epoch %d not judged by the %s pruner: the database could not"
                     " be read",
                     (long long)t->id, epoch, prune_kind_name(j->pruner.kind));
        if (rc == ERR_BUSY || rc == ERR_IO) d->db_busy = true;
        return;
    }
    stop = rc == 1;
    char now[40];
    time_now_iso(now, sizeof now);
    store_rung_record(d->st, t->id, epoch, value, stop, reason, now);
    if (store_flush(d->st) != 0) d->db_busy = true; // committed before the trial's end anyway
    log_debug("trial %lld epoch %d: %s: %s", (long long)t->id, epoch, stop ? "stop" : "continue",
              reason);
    if (stop) prune_stop(p, epoch, reason, "new decision");
}

/* An invalid event of P's worker (LINE, LEN bytes; WHY the reason): logged
 * (the first EVENTS_CHECK_FAULT_LIMIT of the attempt), never stored or
 * forwarded. When it made the worker faulty (events_check.h) the worker is
 * stopped; proc_on_exit then fails the trial. */
static void proc_bad_event(proc *p, bool was_faulty, const char *why, const char *line, size_t len)
{
    int64_t id = p->trial->id;
    if (p->check.bad_now <= EVENTS_CHECK_FAULT_LIMIT) events_check_log_bad(id, why, line, len);
    if (was_faulty || !p->check.faulty) return;
    log_error("trial %lld: worker pid %d sent invalid events (%u; %s); stopping it, the trial"
              " fails",
              (long long)id, p->rp.pid, p->check.bad_now, p->check.fault);
    runner_terminate(&p->rp);
}

/* runner on_line: checks one worker event line against the contract
 * (events_check.h), then stores it and forwards it to watchers. */
static void proc_on_line(runner_proc *rp, char *line, size_t len, void *ud)
{
    proc *p = ud;
    sweepd *d = p->d;
    sjob *j = p->job;
    if (!line) {
        p->bad_lines++;
        if (p->long_lines++ < 5)
            log_warn("job %lld pid %d: output line of %zu bytes is too long; ignored",
                     (long long)j->id, rp->pid, len);
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
    strial *t = p->trial;
    if (!json_is_object(ev)) { // not JSON at all: noise (a library writing to stdout), not a fault
        char ex[EVENTS_CHECK_EXCERPT * 4 + 8];
        events_check_excerpt(ex, sizeof ex, line, len);
        if (p->bad_lines++ < 5)
            log_warn("trial %lld: ignoring output line that is not a JSON event: %s",
                     (long long)t->id, ex);
        json_decref(ev);
        return;
    }
    char why[512];
    bool was_faulty = p->check.faulty;
    if (events_check_event(&p->check, ev, why, sizeof why) != 0) {
        proc_bad_event(p, was_faulty, why, line, len);
        json_decref(ev);
        return;
    }
    store_trial_event(d->st, t->id, ev);
    feature_note_event(p, kind, ev);
    if (!strcmp(kind, "epoch") && j->pruner.kind != PRUNE_NONE)
        prune_epoch_event(p, (int)json_integer_value(json_object_get(ev, "epoch")));
    if (!strcmp(kind, "done")) {
        p->done_seen = true;
        json_t *v = json_object_get(ev, j->metric);
        p->done_value = json_is_number(v) ? json_number_value(v) : NAN;
    } else if (!strcmp(kind, "error")) {
        /* The message alone: the trial's final error puts exit_reason's
         * words before it, which already say what its code says (one
         * wording per cause: "diverged: validation loss is NaN ..."). */
        const char *m = json_string_value(json_object_get(ev, "message"));
        char e[1100];
        if (!m) store_error_text(ev, e, sizeof e);
        free(p->last_error);
        p->last_error = strndup(m ? m : e, 1000);
        if (p->last_error) utf8_trim_tail(p->last_error);
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
    while (j->cursor < j->n && j->trials[j->cursor].state != TS_QUEUED)
        j->cursor++;
    return j->cursor < j->n ? &j->trials[j->cursor] : NULL;
}

static bool can_start(const sjob *j)
{
    return !j->cancelling && (j->counts[TS_QUEUED] > 0 || tpe_wants(j)) &&
           (int)j->counts[TS_RUNNING] < j->max_parallel;
}

static void start_trial(sweepd *d, sjob *j, strial *t)
{
    char msg[512];
    int rc = trial_proc_start(d, j, t, msg, sizeof msg);
    if (rc) {
        log_error("trial %lld: %s", (long long)t->id, msg);
        /* It fails: a broken setup must not loop forever. */
        trial_set_state(d, j, t, TS_FAILED, &(tinfo){.error = msg, .why = msg});
        check_job_end(d, j);
        return;
    }
    bool retry = t->io_wait != 0;
    /* The slot is taken now; files are written in the threadpool and the
     * process started in proc_on_spawn (or the start fails in proc_on_exit). */
    d->running++;
    if (j->state == JS_QUEUED) job_set_state(d, j, JS_RUNNING, "first trial started");
    trial_set_state(
        d, j, t, TS_RUNNING,
        &(tinfo){.why = retry ? "starting again after a write error" : "starting", .quiet = retry});
}

/* runner on_spawn: the worker of a trial has started (pid known); an
 * evaluation's pid is recorded by start_eval. */
static void proc_on_spawn(runner_proc *rp, void *ud)
{
    proc *p = ud;
    if (p->is_eval) return;
    log_debug("trial %lld: worker pid %d started", (long long)p->trial->id, rp->pid);
    if (p->trial->io_wait) {
        log_info("trial %lld: its files could be written again; worker pid %d started",
                 (long long)p->trial->id, rp->pid);
        p->trial->io_wait = 0;
    }
    store_trial_pid(p->d->st, p->trial->id, rp->pid, runner_proc_start_time(rp->pid));
    if (p->job->pruner.kind == PRUNE_NONE) return;
    /* A trial a pruner stopped before a crash, whose end was not recorded
     * (recovery put it back in the queue): stopped again at once, with the
     * recorded decision, not a new one. */
    int epoch;
    bool stop;
    char reason[512];
    if (store_rung_lookup(p->d->st, p->trial->id, 0, &epoch, &stop, reason, sizeof reason) == 0 &&
        stop)
        prune_stop(p, epoch, reason, "decided before the restart");
}

void sched_run(sweepd *d)
{
    if (d->shutting_down) return;
    if (d->hold_until > 0) {
        if (time_mono() < d->hold_until) return; // the timer tries again
        if (d->space_wait && !space_is_back(d)) {
            d->hold_until = time_mono() + IO_RETRY_SECONDS;
            return;
        }
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
            if (start_eval(d, ev)) break; // waits for the database or for space
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
        strial *t = pick_queued(d, pick);
        if (!t) t = tpe_propose(d, pick); // NULL: held or finished; the loop serves the others
        if (t) start_trial(d, pick, t);
    }
}

int sched_cancel(sweepd *d, sjob *j, int *dequeued, int *stopping)
{
    *dequeued = *stopping = 0;
    j->cancelling = true;
    log_info("job %lld (%s): cancel requested", (long long)j->id, j->name);
    if (!j->cancel_pending) {
        /* Stored before the reply (committed now when the database lets
         * it): a daemon killed while the trials stop finishes the cancel
         * on restart (sched_load). */
        char now[40];
        time_now_iso(now, sizeof now);
        store_job_cancel_requested(d->st, j->id, now);
        j->cancel_pending = true;
        if (store_flush(d->st) != 0) d->db_busy = true;
    }
    *dequeued = cancel_queued(d, j);
    for (size_t i = 0; i < j->n; i++) {
        strial *t = &j->trials[i];
        if (t->state == TS_RUNNING && t->proc && t->proc->stop == STOP_NONE) {
            t->proc->stop = STOP_CANCEL;
            runner_terminate(&t->proc->rp);
            (*stopping)++;
        }
    }
    if (j->eval) {
        j->eval->stop = STOP_CANCEL;
        runner_terminate(&j->eval->rp);
    }
    j->eval_pending = false;
    j->eval_done = true;
    check_job_end(d, j);
    sched_run(d);
    return 0;
}

/* ---- the timer and shutdown ----------------------------------------- */

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

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
        if (p->rp.exited) continue;
        runner_drain(&p->rp);
        if (p->rp.preparing) continue;
        if (!p->is_eval && p->stop == STOP_NONE && p->job->trial_timeout > 0 &&
            now - p->rp.started > p->job->trial_timeout) {
            log_warn("trial %lld exceeded trial_timeout of %g s; sending SIGTERM",
                     (long long)p->trial->id, p->job->trial_timeout);
            p->stop = STOP_TIMEOUT;
            p->rp.term_at = now;
            runner_terminate(&p->rp);
        } else {
            runner_enforce_grace(&p->rp, now, d->cfg->kill_grace);
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
    if (rc == 0)
        d->urgent = false;
    else
        d->db_busy = true; // locked by someone else: leave retries to the timer
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
        if (p->rp.exited) continue;
        if (p->stop == STOP_NONE) p->stop = STOP_SHUTDOWN;
        if (p->rp.term_at == 0) p->rp.term_at = now;
        runner_terminate(&p->rp);
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
