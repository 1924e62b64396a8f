/* recover — puts trials left running by a crashed daemon back in the queue
 * and stops their orphaned workers (see include/recover.h). Job states are
 * recomputed afterwards by sched_load() and the scheduler.
 *
 * Events are not lost with the daemon: workers append them to
 * <out_dir>/events.ndjson, and this replays each interrupted trial's file
 * (storing is idempotent: metrics rows are INSERT OR REPLACE by epoch)
 * through the same contract check as live lines (events_check.h, each start
 * a new attempt): an invalid event is logged and skipped, never stored. A
 * trial whose last attempt reported a valid "done" finished its work while
 * the daemon was down: it is marked completed instead of being run again
 * (one whose done was invalid is requeued like any interrupted trial).
 * A test-set evaluation left running (its pid is kept on the evaluated
 * trial's row while it runs) is stopped the same way; the job's evaluation
 * is then run again by the scheduler. A worker whose pid never reached the
 * database (the daemon died between the spawn and the commit, or its writes
 * were locked out) is found by its standard output, which is an events file
 * under <state_dir>/trials/, and stopped too, before any file is replayed. The two state changes
 * made here (running -> completed, running -> queued) are checked against the scheduler's
 * transition table (TRIAL_TRANSITION_CHECK) like the scheduler's own; the statements are the
 * store's. */
#include "recover.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "events_check.h"
#include "grow.h"
#include "jsonx.h"
#include "ndjson.h"
#include "numparse.h"
#include "log.h"
#include "runner.h"
#include "scheduler.h"
#include "timeutil.h"

static bool same_process(int pid, uint64_t start)
{
    return pid > 0 && start != 0 && runner_proc_start_time(pid) == start;
}

typedef struct {
    store *st;          // where events go
    int64_t trial;      // trial id
    events_check check; // the contract check; check.done: a valid "done" after the last "start"
    int events;         // events replayed
} replay;

static int replay_line(void *ud, char *line, size_t len)
{
    replay *r = ud;
    if (!line) return 0;
    json_t *ev = jx_parse(line, len, NULL, 0);
    char why[512];
    if (!json_is_object(ev)) {
        /* Not JSON (a library's output): skipped, as when it was live. */
    } else if (events_check_event(&r->check, ev, why, sizeof why) != 0) {
        if (r->check.bad <= EVENTS_CHECK_FAULT_LIMIT)
            events_check_log_bad(r->trial, why, line, len);
    } else {
        store_trial_event(r->st, r->trial, ev);
        r->events++;
    }
    json_decref(ev);
    return 0;
}

/* Replays OUT_DIR/events.ndjson of TRIAL; returns true when its last attempt
 * reported a valid "done". */
static bool replay_events(store *st, int64_t trial, const char *out_dir)
{
    replay r = {.st = st, .trial = trial};
    if (!out_dir) return false;
    json_t *params = NULL;
    int64_t seed;
    char msg[256];
    int epochs = store_trial_params(st, trial, &params, &seed, msg, sizeof msg) == 0
                     ? events_check_epochs(params)
                     : 0;
    json_decref(params);
    events_check_init(&r.check, trial, epochs, true);
    char path[4096 + 32];
    snprintf(path, sizeof path, "%s/events.ndjson", out_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ndjson_buf nb;
    ndjson_init(&nb, RUNNER_MAX_LINE);
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        ndjson_feed(&nb, buf, (size_t)n, replay_line, &r);
    if (ndjson_pending(&nb) > 0) ndjson_feed(&nb, "\n", 1, replay_line, &r);
    ndjson_free(&nb);
    close(fd);
    log_info("trial %lld: replayed %d events from %s%s", (long long)trial, r.events, path,
             r.check.done ? " (its last attempt finished)" : "");
    if (r.check.bad)
        log_warn("trial %lld: %u invalid events in %s were not stored", (long long)trial,
                 r.check.bad, path);
    return r.check.done;
}

/* The worker processes left by the previous daemon that still run. */
typedef struct {
    struct orphan {
        int pid;        // process (group) id
        uint64_t start; // its start time, which tells a recycled pid apart
    } * v;              // the processes (owned)
    size_t n, cap;      // entries used, allocated
    int requeued;       // running trials found
} orphans;

/* Adds PID to O; false when out of memory. */
static bool orphan_add(orphans *o, int pid, uint64_t start)
{
    void *nv = grow_array(o->v, o->n + 1, &o->cap, sizeof *o->v, 8);
    if (!nv) return false;
    o->v = nv;
    o->v[o->n].pid = pid;
    o->v[o->n++].start = start;
    return true;
}

/* True when PID is in O already. */
static bool orphan_known(const orphans *o, int pid)
{
    for (size_t i = 0; i < o->n; i++)
        if (o->v[i].pid == pid) return true;
    return false;
}

/* Adds to O the processes whose standard output is a trial's events file or
 * an evaluation's output under STATE_DIR/trials/ (the runner points a
 * worker's stdout there): workers of the previous daemon that the rows do
 * not name, because their pid was not committed before it died. */
static void find_unrecorded(orphans *o, const char *state_dir)
{
    char real[PATH_MAX], prefix[PATH_MAX + 16];
    if (!realpath(state_dir, real)) return;
    int plen = snprintf(prefix, sizeof prefix, "%s/trials/", real);
    if (plen <= 0 || (size_t)plen >= sizeof prefix) return;
    DIR *dir = opendir("/proc");
    if (!dir) return;
    struct dirent *de;
    while ((de = readdir(dir))) {
        int pid;
        if (numparse_int("pid", de->d_name, 1, INT_MAX, &pid, NULL, 0) != 0) continue;
        if (pid == (int)getpid() || orphan_known(o, pid)) continue;
        char link[64], target[PATH_MAX];
        snprintf(link, sizeof link, "/proc/%d/fd/1", pid);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= plen) continue;
        target[n] = 0;
        const char *base = strrchr(target, '/');
        if (strncmp(target, prefix, (size_t)plen) != 0 ||
            (strcmp(base, "/events.ndjson") != 0 && strcmp(base, "/eval.ndjson") != 0))
            continue;
        uint64_t start = runner_proc_start_time(pid);
        if (!start) continue;
        log_info("worker pid %d left by the previous daemon writes %s but is not in the"
                 " database",
                 pid, target);
        if (!orphan_add(o, pid, start)) break;
    }
    closedir(dir);
}

/* store_trial_procs callback: a trial left running, to requeue. */
static int found_running(void *ud, const store_proc_row *r)
{
    orphans *o = ud;
    log_info("trial %lld (job %lld) running -> queued, attempt %u: left running by the"
             " previous daemon (pid %d)",
             (long long)r->id, (long long)r->job_id, r->attempt + 1, r->pid);
    o->requeued++;
    if (same_process(r->pid, r->pid_start) && !orphan_add(o, r->pid, r->pid_start)) return 1;
    return 0;
}

/* store_trial_procs callback: a test-set evaluation left running (its pid is
 * on the evaluated, completed trial's row). */
static int found_eval(void *ud, const store_proc_row *r)
{
    orphans *o = ud;
    bool alive = same_process(r->pid, r->pid_start);
    log_info("job %lld: test-set evaluation of trial %lld (pid %d) left by the previous"
             " daemon%s",
             (long long)r->job_id, (long long)r->id, r->pid,
             alive ? "; stopping it" : " has ended");
    if (alive) orphan_add(o, r->pid, r->pid_start);
    return 0;
}

/* Stops the orphans of O: SIGTERM (they checkpoint), then SIGKILL after
 * GRACE seconds. */
static void stop_orphans(const orphans *o, double grace)
{
    for (size_t i = 0; i < o->n; i++) {
        log_warn("stopping worker pid %d left by the previous daemon", o->v[i].pid);
        if (kill(-o->v[i].pid, SIGTERM) != 0) kill(o->v[i].pid, SIGTERM);
    }
    double until = time_mono() + grace;
    for (;;) {
        size_t alive = 0;
        for (size_t i = 0; i < o->n; i++)
            if (same_process(o->v[i].pid, o->v[i].start)) alive++;
        if (!alive) break;
        if (time_mono() >= until) {
            for (size_t i = 0; i < o->n; i++)
                if (same_process(o->v[i].pid, o->v[i].start)) {
                    log_warn("worker pid %d ignored SIGTERM; sending SIGKILL", o->v[i].pid);
                    if (kill(-o->v[i].pid, SIGKILL) != 0) kill(o->v[i].pid, SIGKILL);
                }
            break;
        }
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
}

/* What the replay pass needs. */
typedef struct {
    store *st;             // the database
    const char *state_dir; // where trial folders are (trials/<id>/)
    int requeued;          // trials that go back to the queue
    int rebuilt;           // queued trials whose events were replayed
} recovery;

/* store_trial_procs callback: replays an interrupted trial's events; one that
 * had finished is completed instead of requeued. */
static int replay_running(void *ud, const store_proc_row *r)
{
    recovery *rv = ud;
    if (!replay_events(rv->st, r->id, r->out_dir)) return 0;
    if (!TRIAL_TRANSITION_CHECK(TS_RUNNING, TS_COMPLETED)) return 0;
    char now[40];
    time_now_iso(now, sizeof now);
    log_info("trial %lld running -> completed: it reported done before the previous"
             " daemon stopped",
             (long long)r->id);
    store_trial_recovered_done(rv->st, r->id, now);
    rv->requeued--;
    return 0;
}

/* store_trials_queued callback: a queued trial whose folder has events ran
 * (at least in part) while its rows could not be written, e.g. a database
 * locked until the previous daemon stopped: its rows are rebuilt from the
 * events file, so queued writes are never the only copy. One whose last
 * attempt reported "done" is completed (queued -> running -> completed, the
 * change the lost writes would have made). */
static int replay_queued(void *ud, int64_t id, int64_t job_id)
{
    recovery *rv = ud;
    char dir[4096], path[4096 + 32];
    snprintf(dir, sizeof dir, "%s/trials/%lld", rv->state_dir, (long long)id);
    snprintf(path, sizeof path, "%s/events.ndjson", dir);
    if (access(path, R_OK) != 0) return 0;
    rv->rebuilt++;
    if (!replay_events(rv->st, id, dir)) return 0;
    if (!TRIAL_TRANSITION_CHECK(TS_QUEUED, TS_RUNNING) ||
        !TRIAL_TRANSITION_CHECK(TS_RUNNING, TS_COMPLETED))
        return 0;
    char now[40];
    time_now_iso(now, sizeof now);
    log_info("trial %lld (job %lld) queued -> running -> completed: it reported done while"
             " its rows could not be written",
             (long long)id, (long long)job_id);
    store_trial_recovered_done(rv->st, id, now);
    return 0;
}

int recover_run(store *st, const char *state_dir, double kill_grace, char *msg, size_t msglen)
{
    orphans o = {0};
    int rc = store_trial_procs(st, true, found_running, &o);
    if (rc == ERR_DB) {
        free(o.v);
        return err_set(msg, msglen, ERR_DB, "cannot read running trials");
    }
    /* The scheduler runs the evaluations again for their jobs. */
    if (store_trial_procs(st, false, found_eval, &o) == ERR_DB) {
        free(o.v);
        return err_set(msg, msglen, ERR_DB, "cannot read evaluations");
    }
    store_clear_eval_pids(st);
    find_unrecorded(&o, state_dir);
    stop_orphans(&o, kill_grace < 10 ? kill_grace : 10);
    free(o.v);
    /* Replay the events of every interrupted trial; finished ones are completed. */
    recovery rv = {.st = st, .state_dir = state_dir, .requeued = o.requeued};
    if (store_trial_procs(st, true, replay_running, &rv) == ERR_DB)
        return err_set(msg, msglen, ERR_DB, "cannot read running trials");
    if (store_trials_queued(st, replay_queued, &rv) == ERR_DB)
        return err_set(msg, msglen, ERR_DB, "cannot read queued trials");
    /* The rest go back to the queue (one statement), with the scheduler's
     * transition table's consent. */
    rc = rv.requeued > 0 && !TRIAL_TRANSITION_CHECK(TS_RUNNING, TS_QUEUED)
             ? ERR_INTERNAL
             : store_requeue_running(st);
    if (rc == 0) {
        store_set_busy(st, 5000);
        rc = store_flush(st);
    }
    if (rc) return err_set(msg, msglen, rc, "cannot requeue interrupted trials (database busy)");
    return rv.requeued;
}
