/* ctl_watch — `sweepctl watch JOB`.
 *
 * One connection feeds the display. It subscribes with `{"op":"watch"}`, and
 * the daemon then streams the workers' events as they happen: progress
 * (epoch, step, loss, images/s), epoch results, trial starts and ends, and the
 * job's end. On the same connection the client also asks `status` for the
 * totals: trial states, parameters, start and finish times. Status is asked
 * again whenever a trial starts or ends and every few seconds, so the counts,
 * the ETA and the best result stay right even if the stream does not carry
 * something per trial (queued trials cancelled in bulk) or the daemon's event
 * shapes carry less than expected.
 *
 * Ordering. sweepd writes events and replies to a connection in the order it
 * produces them, and it forwards a trial's end (its trial_state event) only
 * after every line the trial's worker wrote (sched.c). So on the stream each
 * trial's lines come in causal order — start, epochs in order, done, end —
 * and a status reply read from the stream describes exactly the events before
 * it: never a trial whose lines are still unread. (A status snapshot taken on
 * a second connection can run ahead of the stream, and used to print a trial's
 * end before its last epochs.) A snapshot therefore only confirms the stream
 * or fills in what it does not carry, and the trial lines printed here, and
 * the "[k/N done]" counter with them, follow the stream: a trial is counted
 * once, on its final line, which is its last. States from a snapshot only move
 * a trial forward (queued -> running -> final): a reply can lag the stream
 * (database writes the daemon could not commit yet), never lead it. Events
 * read before the first reply are held and applied after it, that reply
 * being the baseline of what happened before the watch began.
 *
 * On a terminal the display is redrawn in place (ANSI cursor-up and
 * clear-to-end) at most 4 times a second and at least once a second. On a
 * pipe or file, one plain line per trial start, epoch, trial end and job end.
 * With --json the event lines are printed as received (the status replies,
 * answers to sweepctl's own requests, are not). Strings from the stream and
 * the replies (job name, states, metric, error messages, parameter names) are
 * stored escaped with utf8_escape, so every line printed from them is
 * safe on a terminal. A metric is printed only when it is a finite number
 * ("-" otherwise), and counts (epochs, steps, attempts) are taken only when
 * they fit an int: sweepd checks worker events before forwarding them
 * (events_check.h), and this does not rely on it. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "ctl.h"
#include "errors.h"
#include "grow.h"
#include "timeutil.h"

#define RESYNC_SECONDS 5.0

typedef struct {
    long long id;      // trial id (what `sweepctl trial ID` takes)
    long long number;  // number within the job, 0 if unknown
    char state[16];    // queued, running, completed, failed, cancelled, pruned
    int epoch, epochs; // current epoch (1-based as reported) and planned epochs
    int step, steps;   // step within the epoch and steps per epoch
    double loss;       // latest training loss (NAN if none yet)
    double ips;        // latest images per second (NAN if none)
    double val;        // latest objective value from an epoch or the final result (NAN)
    double started;    // wall time the trial started (NAN if unknown)
    double finished;   // wall time it finished (NAN if not finished)
    double test;       // test_accuracy once the daemon evaluated it (NAN)
    int attempt;       // 0 for the first run, +1 per retry
    bool reported;     // its final line was printed (plain mode)
    char error[200];   // last error message from the worker or the daemon
    char params[160];  // "lr=0.01 freeze=layer3" for the parameters that vary in the job
} w_trial;

typedef struct {
    long long job;       // the job watched
    char name[128];      // its name
    char state[16];      // job state from the daemon
    char metric[48];     // objective metric, default val_accuracy
    bool minimize;       // objective goal
    char test_err[256];  // why its test-set evaluation failed ("" when it did not)
    int total;           // trials in the job
    int max_parallel;    // from the spec, 0 if unknown
    double job_started;  // wall time the job started (NAN if unknown)
    double job_finished; // wall time it finished (NAN while it runs)
    w_trial *trials;     // known trials (owned)
    size_t ntrials, cap; // used and allocated entries
    bool ended;          // the job reached a final state (the "end" event)
    bool acked;          // the reply to the watch request came (the stream's first "ok" line)
    int syncs_out;       // status requests sent on the watch connection, not answered yet
    bool synced;         // a status reply from the stream was applied (the first is the baseline)
    json_t *held;        // events read before that first reply, applied after it (owned array)
    bool sync_quiet;     // the status asked last was a periodic one, no state change since
    bool status_final;   // the last status reply showed a final job state
    bool shutdown;       // the daemon said it is shutting down
    bool live;           // redraw in place on a terminal
    bool json;           // print raw lines
    int drawn_lines;     // lines of the last redraw, to move back over
    double last_draw;    // time_mono of the last redraw
    FILE *out;           // where to print
} w_state;

static w_trial *trial_get(w_state *w, long long id)
{
    for (size_t i = 0; i < w->ntrials; i++)
        if (w->trials[i].id == id) return &w->trials[i];
    w_trial *n = grow_array(w->trials, w->ntrials + 1, &w->cap, sizeof *n, 32);
    if (!n) return NULL;
    w->trials = n;
    w_trial *t = &w->trials[w->ntrials++];
    memset(t, 0, sizeof *t);
    t->id = id;
    snprintf(t->state, sizeof t->state, "queued");
    t->loss = t->ips = t->val = t->started = t->finished = t->test = NAN;
    return t;
}

static double num(const json_t *o, const char *k, double dflt)
{
    const json_t *v = ctl_lookup(o, k);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

/* Member K of O as an int: a number within the range of int (its integer
 * part), else DFLT. */
static int inum(const json_t *o, const char *k, int dflt)
{
    double v = num(o, k, NAN);
    return isfinite(v) && v > INT_MIN && v < INT_MAX ? (int)v : dflt;
}

/* Member K of E as printed in an epoch line: a finite number as
 * ctl_fmt_json shows it, anything else (text, an object, missing) "-". */
static const char *metric_text(char *buf, size_t n, const json_t *e, const char *k)
{
    const json_t *v = json_object_get(e, k);
    if (json_is_number(v) && isfinite(json_number_value(v))) return ctl_fmt_json(buf, n, v);
    snprintf(buf, n, "-");
    return buf;
}

static double iso_time(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    double t;
    if (s && time_parse_iso8601(s, &t) == 0) return t;
    return NAN;
}

static bool is_final(const char *st)
{
    return !strcmp(st, "completed") || !strcmp(st, "failed") || !strcmp(st, "cancelled") ||
           !strcmp(st, "pruned") || !strcmp(st, "done");
}

/* Order of a trial state along queued -> running -> final. */
static int state_rank(const char *st)
{
    return is_final(st) ? 2 : !strcmp(st, "running") ? 1 : 0;
}

static bool better(const w_state *w, double a, double b)
{
    if (isnan(b)) return !isnan(a);
    if (isnan(a)) return false;
    return w->minimize ? a < b : a > b;
}

static void report_final(w_state *w, w_trial *t);

/* The id of the trial event E is about ("trial_id", or "trial" as an id or an
 * object with "id"), -1 if none. */
static long long event_trial_id(const json_t *e)
{
    const json_t *id = json_object_get(e, "trial_id");
    if (!json_is_integer(id)) id = json_object_get(e, "trial");
    if (json_is_object(id)) id = json_object_get(id, "id");
    return json_is_integer(id) ? (long long)json_integer_value(id) : -1;
}

/* True if an event of the array HELD is about trial ID's run (any event
 * naming it but the job's test evaluation, which comes after every run). */
static bool held_runs(const json_t *held, long long id)
{
    size_t i;
    const json_t *e;
    json_array_foreach(held, i, e)
    {
        const char *ev = json_string_value(json_object_get(e, "event"));
        if (event_trial_id(e) == id && ev && strcmp(ev, "test")) return true;
    }
    return false;
}

/* Takes the job's state, totals and trials from a status reply. A trial the
 * reply shows further along than the stream did (queued -> running -> final)
 * takes its state, and prints its final line if it ended; a state behind the
 * stream's is ignored (see "Ordering" above).
 *
 * HELD is NULL, or for the first snapshot the events that came before it on
 * the stream, not applied yet: the reply then is the baseline as of the
 * subscription. A trial final in it ended before the watch began: counted,
 * not printed. A trial that HELD is about was at most running when the watch
 * began: its end, if the reply shows one, is among HELD and is printed when
 * they are applied, after this. */
static void apply_status(w_state *w, const json_t *reply, const json_t *held)
{
    const json_t *job = json_object_get(reply, "job");
    if (!json_is_object(job)) job = reply;
    const char *s;
    if ((s = json_string_value(json_object_get(job, "name"))))
        utf8_escape(w->name, sizeof w->name, s);
    if ((s = json_string_value(json_object_get(job, "state"))))
        utf8_escape(w->state, sizeof w->state, s);
    if ((s = json_string_value(ctl_lookup(job, "objective_metric"))))
        utf8_escape(w->metric, sizeof w->metric, s);
    if ((s = json_string_value(ctl_lookup(job, "objective_goal"))))
        w->minimize = !strcmp(s, "minimize");
    if ((s = json_string_value(json_object_get(job, "test_error"))))
        utf8_escape(w->test_err, sizeof w->test_err, s);
    const json_t *spec = json_object_get(job, "spec");
    const json_t *obj = json_object_get(job, "objective");
    if (!json_is_object(obj) && json_is_object(spec)) obj = json_object_get(spec, "objective");
    if (json_is_object(obj)) {
        if ((s = json_string_value(json_object_get(obj, "metric"))))
            utf8_escape(w->metric, sizeof w->metric, s);
        if ((s = json_string_value(json_object_get(obj, "goal"))))
            w->minimize = !strcmp(s, "minimize");
    }
    int mp = inum(job, "max_parallel", inum(spec, "max_parallel", 0));
    if (mp > 0) w->max_parallel = mp;
    int tot = inum(job, "trials_total", -1);
    if (tot >= 0) w->total = tot;
    double st = iso_time(job, "started_at");
    if (!isnan(st)) w->job_started = st;
    w->job_finished = iso_time(job, "finished_at");
    w->status_final = is_final(w->state) && strcmp(w->state, "completed");

    static const char *const names[] = {"trials", NULL};
    const json_t *arr = ctl_find_array(reply, names);
    if (!arr) return;
    json_t *rows = ctl_normalise_rows(arr);
    /* A one-trial job varies nothing: name just its lr. */
    json_t *keys = !rows                        ? NULL
                   : json_array_size(rows) == 1 ? json_pack("[s]", "lr")
                                                : ctl_varying_params(rows);
    if (!rows || !keys) goto done;
    if (tot < 0) w->total = (int)json_array_size(rows);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const json_t *id = json_object_get(row, "id");
        if (!json_is_integer(id)) continue;
        size_t before = w->ntrials;
        w_trial *t = trial_get(w, json_integer_value(id));
        if (!t) break;
        bool fresh = w->ntrials > before, was_final = is_final(t->state);
        t->number = inum(row, "number", (int)t->number);
        if ((s = json_string_value(json_object_get(row, "state"))) &&
            (fresh || state_rank(s) > state_rank(t->state))) {
            if (held && state_rank(s) == 2 && held_runs(held, t->id)) s = "running";
            utf8_escape(t->state, sizeof t->state, s);
        }
        /* A trial that ended without its event reaching us still gets its line
         * (after the fields below are filled). */
        bool report = !fresh && !was_final && is_final(t->state);
        double v = num(row, w->metric, NAN);
        if (!isnan(v) && is_final(t->state)) t->val = v;
        int e = inum(row, "epochs", 0);
        if (e > 0 && t->epochs == 0) t->epochs = e;
        if (!isnan(iso_time(row, "started_at"))) t->started = iso_time(row, "started_at");
        if (!isnan(iso_time(row, "finished_at"))) t->finished = iso_time(row, "finished_at");
        double ta = num(row, "test_accuracy", NAN);
        if (!isnan(ta)) t->test = ta;
        int att = inum(row, "attempt", 0); // attempts only grow: a lagging reply keeps ours
        if (att > t->attempt) t->attempt = att;
        if ((s = json_string_value(json_object_get(row, "error"))))
            utf8_escape(t->error, sizeof t->error, s);
        size_t off = 0, j;
        json_t *k;
        t->params[0] = 0;
        json_array_foreach(keys, j, k)
        {
            char b[64], kb[64];
            const char *key = json_string_value(k);
            utf8_escape(kb, sizeof kb, key);
            int n = snprintf(t->params + off, sizeof t->params - off, "%s%s=%s", off ? " " : "", kb,
                             ctl_fmt_json(b, sizeof b, ctl_lookup(row, key)));
            if (n < 0 || (size_t)n >= sizeof t->params - off) break;
            off += (size_t)n;
        }
        if (report) report_final(w, t);
    }
done:
    json_decref(keys);
    json_decref(rows);
}

/* Asks the daemon for the job's status on a connection of its own and
 * applies it: the final word once the stream has ended (the job's "end" came,
 * so no trial line is left unread, or the stream broke). Returns 0, or the
 * ctl_exit code when the daemon can't be reached or refuses. */
static int resync(w_state *w, const char *path, char *msg, size_t msglen)
{
    json_t *req = json_pack("{s:s, s:I}", "op", "status", "job", (json_int_t)w->job);
    json_t *reply = NULL;
    int rc = req ? ctl_request(path, req, &reply, msg, msglen) : CTL_EXIT_ERROR;
    json_decref(req);
    if (rc) return rc;
    if (!ctl_reply_ok(reply)) {
        if (!w->json) ctl_print_error(stderr, reply);
        json_decref(reply);
        return CTL_EXIT_ERROR;
    }
    apply_status(w, reply, NULL);
    json_decref(reply);
    return 0;
}

typedef struct {
    int done, completed, failed, running, queued; // trial counts (done: any final state)
    double done_seconds; // total run time of finished trials with both times
    int timed;           // how many finished trials are in done_seconds
    double remaining;    // trials' worth of work left
    const w_trial *best; // best finished trial, or NULL
} w_summary;

static double trial_fraction(const w_trial *t)
{
    if (t->epochs <= 0 || t->epoch <= 0) return 0;
    double within = t->steps > 0 ? (double)t->step / t->steps : 0;
    double f = ((t->epoch - 1) + within) / t->epochs;
    return f < 0 ? 0 : f > 1 ? 1 : f;
}

static w_summary summarise(const w_state *w)
{
    w_summary s = {0};
    for (size_t i = 0; i < w->ntrials; i++) {
        const w_trial *t = &w->trials[i];
        if (is_final(t->state)) {
            s.done++;
            if (!strcmp(t->state, "failed")) s.failed++;
            if (!strcmp(t->state, "completed")) s.completed++;
            if (!isnan(t->started) && !isnan(t->finished) && strcmp(t->state, "cancelled")) {
                s.done_seconds += t->finished - t->started;
                s.timed++;
            }
            /* The daemon's ranking: ties go to the lower trial number. */
            if (!strcmp(t->state, "completed") &&
                (!s.best || better(w, t->val, s.best->val) ||
                 (t->val == s.best->val && t->number < s.best->number)))
                s.best = t;
        } else if (!strcmp(t->state, "running")) {
            s.running++;
            s.remaining += 1 - trial_fraction(t);
        } else {
            s.queued++;
        }
    }
    /* Trials the daemon has not listed yet are queued. */
    int known = s.done + s.running + s.queued;
    if (w->total > known) s.queued += w->total - known;
    s.remaining += s.queued;
    return s;
}

static int term_width(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) return ws.ws_col;
    return 100;
}

/* Prints LINE cut to WIDTH code points, then clear-to-end-of-line. */
static void put_line(FILE *f, const char *line, int width)
{
    int w = 0;
    for (const char *p = line; *p; p++) {
        if (((unsigned char)*p & 0xC0) != 0x80 && ++w > width) break;
        fputc(*p, f);
    }
    fputs("\033[K\n", f);
}

static void redraw(w_state *w, bool force)
{
    double now = time_mono();
    if (!force && now - w->last_draw < 0.25) return;
    w->last_draw = now;
    w_summary s = summarise(w);
    int width = term_width();
    FILE *f = w->out;
    if (w->drawn_lines > 0) fprintf(f, "\033[%dA\r", w->drawn_lines);
    int lines = 0;
    char line[1024], b1[32], b2[32], bar[64];
    double frac = w->total > 0 ? (double)s.done / w->total : 0;
    int parallel = s.running > 0 ? s.running : (w->max_parallel > 0 ? w->max_parallel : 1);
    double eta = s.timed > 0 ? ctl_eta(s.timed, s.done_seconds, s.remaining, parallel) : -1;
    double elapsed =
        isnan(w->job_started)
            ? -1
            : (isnan(w->job_finished) ? time_wall() : w->job_finished) - w->job_started;
    snprintf(line, sizeof line, "job %lld %s  %s  %s %d/%d trials  elapsed %s  ETA %s", w->job,
             w->name, w->state, ctl_fmt_bar(bar, sizeof bar, 30, frac), s.done, w->total,
             ctl_fmt_duration(b1, sizeof b1, elapsed),
             eta < 0 ? "-" : ctl_fmt_duration(b2, sizeof b2, eta));
    put_line(f, line, width);
    lines++;
    for (size_t i = 0; i < w->ntrials; i++) {
        const w_trial *t = &w->trials[i];
        if (strcmp(t->state, "running")) continue;
        char loss[32], ips[32];
        if (isnan(t->loss))
            snprintf(loss, sizeof loss, "-");
        else
            snprintf(loss, sizeof loss, "%.4f", t->loss);
        if (isnan(t->ips))
            snprintf(ips, sizeof ips, "-");
        else
            snprintf(ips, sizeof ips, "%.0f", t->ips);
        char ep[32];
        if (t->epochs > 0)
            snprintf(ep, sizeof ep, "%d/%d", t->epoch, t->epochs);
        else
            snprintf(ep, sizeof ep, "%d", t->epoch);
        if (t->epoch <= 0)
            snprintf(line, sizeof line, "  trial %-4lld starting  %s", t->id, t->params);
        else
            snprintf(line, sizeof line,
                     "  trial %-4lld epoch %s  step %d/%d  loss %s  %s img/s  %s", t->id, ep,
                     t->step, t->steps, loss, ips, t->params);
        put_line(f, line, width);
        lines++;
    }
    if (s.best)
        snprintf(line, sizeof line, "best: trial %lld %s %.4f  failed: %d  %s", s.best->id,
                 w->metric, s.best->val, s.failed, s.best->params);
    else
        snprintf(line, sizeof line, "best: none completed yet  failed: %d", s.failed);
    put_line(f, line, width);
    lines++;
    /* Lines left over from a taller previous frame. */
    fputs("\033[J", f);
    w->drawn_lines = lines;
    fflush(f);
}

/* The final line of a trial on a pipe, printed once: its result (or why it
 * failed) with the job's progress so far. */
static void report_final(w_state *w, w_trial *t)
{
    if (t->reported || w->live || w->json) return;
    t->reported = true;
    FILE *f = w->out;
    w_summary s = summarise(w);
    char eta[32];
    int parallel = s.running > 0 ? s.running : (w->max_parallel > 0 ? w->max_parallel : 1);
    double e_s = ctl_eta(s.timed, s.done_seconds, s.remaining, parallel);
    fprintf(f, "trial %lld %s", t->id, t->state);
    if (!strcmp(t->state, "completed") && !isnan(t->val))
        fprintf(f, ": %s %.4f", w->metric, t->val);
    else if (strcmp(t->state, "completed") && t->error[0])
        fprintf(f, ": %s", t->error);
    fprintf(f, "  [%d/%d done", s.done, w->total);
    if (s.best) fprintf(f, ", best %.4f (trial %lld)", s.best->val, s.best->id);
    if (e_s > 0 && s.done < w->total)
        fprintf(f, ", ETA %s", ctl_fmt_duration(eta, sizeof eta, e_s));
    fputs("]\n", f);
}

/* The trial an event is about: "trial" or "trial_id" (ids), else NULL. */
static w_trial *event_trial(w_state *w, const json_t *e)
{
    long long id = event_trial_id(e);
    return id < 0 ? NULL : trial_get(w, id);
}

/* Applies one event line (README.md "Contract" events, forwarded with "trial", and
 * the daemon's trial_state/test/end/shutdown events), printing the plain line
 * for it when not live. Returns true if it changed a trial's or the job's
 * state, so a status resync is due. */
static bool apply_event(w_state *w, const json_t *e)
{
    const char *ev = json_string_value(json_object_get(e, "event"));
    if (!ev) return false;
    bool plain = !w->live && !w->json;
    FILE *f = w->out;
    char b[64];
    const char *st = json_string_value(json_object_get(e, "state"));
    if (!strcmp(ev, "end") || !strcmp(ev, "job")) {
        if (st) utf8_escape(w->state, sizeof w->state, st);
        if (!strcmp(ev, "end") || (st && is_final(st))) w->ended = true;
        return true;
    }
    if (!strcmp(ev, "shutdown")) {
        w->shutdown = true;
        return false;
    }
    w_trial *t = event_trial(w, e);
    /* trials_state (queued trials cancelled in bulk) names no trial: status
     * tells which. */
    if (!t) return st != NULL;
    const json_t *nb = json_object_get(e, "number");
    if (json_is_integer(nb)) t->number = json_integer_value(nb);
    const char *m = json_string_value(json_object_get(e, "message"));
    if (!m) m = json_string_value(json_object_get(e, "error"));
    if (m) utf8_escape(t->error, sizeof t->error, m);
    bool changed = false;
    if (!strcmp(ev, "start")) {
        snprintf(t->state, sizeof t->state, "running");
        const json_t *p = json_object_get(e, "params");
        int ep = inum(p, "epochs", 0);
        if (ep > 0) t->epochs = ep;
        t->started = time_wall();
        t->finished = NAN;
        t->epoch = t->step = t->steps = 0;
        t->loss = t->ips = NAN;
        /* t->reported stays: a retry re-arms it through its "queued" state
         * change. (A "start" after the trial's final line cannot come: the
         * stream is in causal order and snapshots never lead it.) */
        if (plain)
            fprintf(f, "trial %lld started%s%s\n", t->id, t->params[0] ? ": " : "", t->params);
        changed = true;
    } else if (!strcmp(ev, "progress")) {
        if (strcmp(t->state, "running")) {
            snprintf(t->state, sizeof t->state, "running");
            changed = true;
        }
        t->epoch = inum(e, "epoch", t->epoch);
        t->step = inum(e, "step", t->step);
        t->steps = inum(e, "steps", t->steps);
        t->loss = num(e, "loss", t->loss);
        t->ips = num(e, "images_per_s", t->ips);
    } else if (!strcmp(ev, "epoch")) {
        t->epoch = inum(e, "epoch", t->epoch);
        t->step = t->steps;
        double v = num(e, w->metric, NAN);
        if (!isnan(v)) t->val = v;
        if (plain) {
            fprintf(f, "trial %lld epoch %d", t->id, t->epoch);
            if (t->epochs > 0) fprintf(f, "/%d", t->epochs);
            fprintf(f, ": train_loss %s", metric_text(b, sizeof b, e, "train_loss"));
            fprintf(f, " val_loss %s", metric_text(b, sizeof b, e, "val_loss"));
            fprintf(f, " val_accuracy %s", metric_text(b, sizeof b, e, "val_accuracy"));
            const json_t *sec = json_object_get(e, "seconds");
            if (json_is_number(sec))
                fprintf(f, " (%s)", ctl_fmt_duration(b, sizeof b, json_number_value(sec)));
            fputc('\n', f);
        }
    } else if (!strcmp(ev, "done")) {
        /* The worker's result. The trial ends with the daemon's trial_state
         * event, which follows it (and every other line of the trial): the
         * daemon decides the outcome from the exit status, so a worker that
         * fails after "done" is not printed completed. */
        double v = num(e, w->metric, NAN);
        if (!isnan(v)) t->val = v;
    } else if (!strcmp(ev, "error")) {
        if (plain && m) fprintf(f, "trial %lld error: %s\n", t->id, t->error); // m, escaped
        changed = true;
    } else if (!strcmp(ev, "test")) {
        t->test = num(e, "test_accuracy", t->test);
        if (plain && !isnan(t->test)) fprintf(f, "trial %lld test_accuracy %.4f\n", t->id, t->test);
    } else if (st) {
        /* trial_state and any other event carrying a state. */
        bool was_final = is_final(t->state), was_running = !strcmp(t->state, "running");
        t->attempt = inum(e, "attempt", t->attempt);
        if (strcmp(st, t->state)) {
            utf8_escape(t->state, sizeof t->state, st);
            changed = true;
        }
        if (is_final(st)) {
            if (isnan(t->finished)) t->finished = time_wall();
            report_final(w, t);
        } else if (!strcmp(st, "queued") && (was_running || was_final)) {
            if (plain) fprintf(f, "trial %lld queued again (attempt %d)\n", t->id, t->attempt + 1);
            t->reported = false;
            t->finished = NAN;
        }
    }
    if (plain) fflush(f);
    return changed;
}

/* Sends a status request for the job on the watch connection C; its reply
 * comes in the stream, after every event sent before it. 0 or ERR_IO. */
static int send_sync(w_state *w, ctl_conn *c, char *msg, size_t msglen)
{
    json_t *req = json_pack("{s:s, s:I}", "op", "status", "job", (json_int_t)w->job);
    int rc = req ? ctl_conn_send(c, req, msg, msglen) : ERR_NOMEM;
    json_decref(req);
    if (rc == 0) w->syncs_out++;
    return rc;
}

/* Handles a reply line of the stream (a line with "ok"): the first is the
 * answer to the watch request, the others answer send_sync(). Returns 0, or
 * CTL_EXIT_ERROR when the daemon refused the watch or the first status. */
static int on_reply(w_state *w, const json_t *r)
{
    if (!w->acked) {
        w->acked = true;
        if (ctl_reply_ok(r)) return 0;
    } else {
        if (w->syncs_out > 0) w->syncs_out--;
        if (ctl_reply_ok(r)) {
            apply_status(w, r, w->synced ? NULL : w->held);
            w->synced = true;
            /* A job a periodic snapshot shows final, with no state change
             * seen since, has ended even if its "end" event never came. */
            if (w->status_final && w->sync_quiet) w->ended = true;
            return 0;
        }
        if (w->synced) { // a later snapshot refused: the stream goes on
            if (!w->json) ctl_print_error(stderr, r);
            return 0;
        }
    }
    if (!w->json) ctl_print_error(stderr, r);
    return CTL_EXIT_ERROR;
}

/* The line for the trials that ended before the watch began (plain mode). */
static void print_already_finished(w_state *w)
{
    if (w->live || w->json) return;
    w_summary s = summarise(w);
    if (s.done == 0) return;
    fprintf(w->out, "job %lld %s: %d/%d trials already finished (%d completed, %d failed)", w->job,
            w->name, s.done, w->total, s.completed, s.failed);
    if (s.best) fprintf(w->out, ", best %s %.4f (trial %lld)", w->metric, s.best->val, s.best->id);
    fputc('\n', w->out);
    fflush(w->out);
}

int ctl_watch(const char *path, long long job, bool live, bool json, FILE *out)
{
    w_state w = {.job = job,
                 .live = live && !json,
                 .json = json,
                 .out = out,
                 .job_started = NAN,
                 .job_finished = NAN};
    snprintf(w.metric, sizeof w.metric, "val_accuracy");
    snprintf(w.state, sizeof w.state, "?");
    char msg[512];
    int rc = 0;
    ctl_conn c;
    if (ctl_conn_open(&c, path, msg, sizeof msg) < 0) {
        ctl_print_unreachable(stderr, path, msg);
        return CTL_EXIT_UNREACHABLE;
    }
    w.held = json_array();
    /* Subscribe, and ask the first snapshot on the same connection in the
     * same write. The daemon usually takes both lines at once, so no event
     * comes between its two replies; one that does happened before the
     * snapshot was taken, and is held until the snapshot is in (see
     * apply_status). Even for a job that has already ended the stream is
     * read: the daemon answers with its "end" event at once (and --json
     * shows it). */
    json_t *wreq = json_pack("{s:s, s:I}", "op", "watch", "job", (json_int_t)job);
    json_t *sreq = json_pack("{s:s, s:I}", "op", "status", "job", (json_int_t)job);
    char *wl = wreq ? json_dumps(wreq, JSON_COMPACT) : NULL;
    char *sl = sreq ? json_dumps(sreq, JSON_COMPACT) : NULL;
    char *both = NULL;
    if (wl && sl && asprintf(&both, "%s\n%s", wl, sl) < 0) both = NULL;
    json_decref(wreq);
    json_decref(sreq);
    free(wl);
    free(sl);
    if (!both || !w.held) {
        fprintf(stderr, "sweepctl: out of memory\n");
        rc = CTL_EXIT_ERROR;
        goto out;
    }
    int sr = ctl_conn_send_line(&c, both, msg, sizeof msg);
    free(both);
    if (sr < 0) {
        fprintf(stderr, "sweepctl: lost sweepd at %s: %s\n", path, msg);
        rc = CTL_EXIT_UNREACHABLE;
        goto out;
    }
    w.syncs_out = 1;
    double last_sync = time_mono();
    bool need_sync = false;
    /* Until the job's end and the first snapshot have both been read. */
    while (!w.ended || !w.synced) {
        json_t *e = NULL;
        char *raw = NULL;
        int r = ctl_conn_recv(&c, &e, w.json ? &raw : NULL, 250, msg, sizeof msg);
        if (r == ERR_IO) break; // the daemon went away, or dropped the stream
        if (r < 0) {
            fprintf(stderr, "sweepctl: %s\n", msg);
            rc = CTL_EXIT_ERROR;
            goto out;
        }
        if (r == 0) {
            bool reply = json_object_get(e, "ok") != NULL;
            /* --json: the stream's lines, but not the answers to our status requests. */
            if (w.json && (!reply || !w.acked)) {
                fprintf(out, "%s\n", raw);
                fflush(out);
            }
            free(raw);
            bool was_synced = w.synced;
            rc = reply ? on_reply(&w, e) : 0;
            if (!reply && !w.synced) {
                json_array_append(w.held, e); // applied after the first snapshot
            } else if (!reply && apply_event(&w, e)) {
                need_sync = true;
                w.sync_quiet = false;
            }
            json_decref(e);
            if (rc) goto out;
            if (w.synced && !was_synced) {
                /* The baseline is in: what ended before the watch, then the
                 * events that came before the snapshot, in their order. */
                print_already_finished(&w);
                size_t i;
                json_t *h;
                json_array_foreach(w.held, i, h)
                {
                    if (apply_event(&w, h)) need_sync = true;
                }
                json_array_clear(w.held);
                if (w.live) redraw(&w, true);
            }
            if (w.shutdown) break;
        }
        double now = time_mono();
        if (w.synced && !w.ended && w.syncs_out == 0 &&
            (now - last_sync > RESYNC_SECONDS || (need_sync && now - last_sync > 0.2))) {
            if (send_sync(&w, &c, msg, sizeof msg) < 0) break; // the final status tells
            w.sync_quiet = !need_sync;
            last_sync = now;
            need_sync = false;
        }
        if (w.live && w.synced) redraw(&w, false);
    }
    if (w.shutdown) {
        if (w.live) redraw(&w, true);
        fprintf(stderr,
                "sweepctl: sweepd is shutting down; job %lld continues when it is "
                "started again\n",
                job);
        rc = CTL_EXIT_UNREACHABLE;
        goto out;
    }
    /* The final word on the job's state comes from status. */
    rc = resync(&w, path, msg, sizeof msg);
    if (rc == CTL_EXIT_UNREACHABLE) {
        fprintf(stderr, "sweepctl: lost sweepd at %s: %s\n", path, msg);
        goto out;
    }
    if (rc) goto out;
    if (w.live) redraw(&w, true);
    if (!w.json) {
        w_summary s = summarise(&w);
        fprintf(out, "job %lld %s: %d completed, %d failed, %d cancelled or pruned, of %d trials\n",
                job, w.state, s.completed, s.failed, s.done - s.completed - s.failed, w.total);
        if (s.best) {
            fprintf(out, "best: trial %lld %s %.4f", s.best->id, w.metric, s.best->val);
            if (!isnan(s.best->test)) fprintf(out, " test_accuracy %.4f", s.best->test);
            fprintf(out, "%s%s\n", s.best->params[0] ? "  " : "", s.best->params);
        }
        if (w.test_err[0]) fprintf(out, "job %lld: %s\n", job, w.test_err);
    }
    if (!strcmp(w.state, "failed") || w.test_err[0])
        rc = CTL_EXIT_ERROR; // the job failed, or its test-set evaluation did
    else if (!strcmp(w.state, "done") || !strcmp(w.state, "cancelled"))
        rc = CTL_EXIT_OK;
    else {
        fprintf(stderr, "sweepctl: the watch stream ended while job %lld is %s\n", job, w.state);
        rc = CTL_EXIT_ERROR;
    }
out:
    ctl_conn_close(&c);
    json_decref(w.held);
    free(w.trials);
    return rc;
}
