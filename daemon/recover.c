/* recover — puts trials left running by a crashed daemon back in the queue
 * and stops their orphaned workers (see include/recover.h). Job states are
 * recomputed afterwards by sched_load() and the scheduler.
 *
 * Events are not lost with the daemon: workers append them to
 * <out_dir>/events.ndjson, and this replays each interrupted trial's file
 * (storing is idempotent: metrics rows are INSERT OR REPLACE by epoch). A
 * trial whose last attempt reported "done" finished its work while the
 * daemon was down: it is marked completed instead of being run again.
 * A test-set evaluation left running (its pid is kept on the evaluated
 * trial's row while it runs) is stopped the same way; the job's evaluation
 * is then run again by the scheduler. */
#include "recover.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "jsonx.h"
#include "ndjson.h"
#include "log.h"
#include "scheduler.h"
#include "timeutil.h"

static bool same_process(int pid, uint64_t start)
{
    return pid > 0 && start != 0 && runner_proc_start_time(pid) == start;
}

typedef struct {
    store *st;       // where events go
    int64_t trial;   // trial id
    bool done;       // a "done" event after the last "start"
    int events;      // events replayed
} replay;

static int replay_line(void *ud, char *line, size_t len)
{
    replay *r = ud;
    if (!line) return 0;
    json_t *ev = jx_parse(line, len, NULL, 0);
    const char *kind = ev ? json_string_value(json_object_get(ev, "event")) : NULL;
    if (kind) {
        if (!strcmp(kind, "start")) r->done = false;
        else if (!strcmp(kind, "done")) r->done = true;
        sched_store_event(r->st, r->trial, ev);
        r->events++;
    }
    json_decref(ev);
    return 0;
}

/* Replays OUT_DIR/events.ndjson of TRIAL; returns true when its last attempt
 * reported "done". */
static bool replay_events(store *st, int64_t trial, const char *out_dir)
{
    replay r = {.st = st, .trial = trial};
    if (!out_dir) return false;
    char path[4096 + 32];
    snprintf(path, sizeof path, "%s/events.ndjson", out_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ndjson_buf nb;
    ndjson_init(&nb, 1u << 20);
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) ndjson_feed(&nb, buf, (size_t)n, replay_line, &r);
    if (ndjson_pending(&nb) > 0) ndjson_feed(&nb, "\n", 1, replay_line, &r);
    ndjson_free(&nb);
    close(fd);
    log_info("trial %lld: replayed %d events from %s%s", (long long)trial, r.events, path,
             r.done ? " (its last attempt finished)" : "");
    return r.done;
}

int recover_run(store *st, double kill_grace, char *msg, size_t msglen)
{
    sqlite3_stmt *q = store_stmt(st, "SELECT id, job_id, pid, pid_start_time, attempt FROM trials"
                                     " WHERE state = 'running'");
    if (!q) return err_set(msg, msglen, ERR_DB, "cannot read running trials");
    struct orphan {
        int pid;
        uint64_t start;
    } *orph = NULL;
    size_t n_orph = 0, cap = 0;
    int requeued = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(q, 0);
        int pid = sqlite3_column_int(q, 2);
        uint64_t start = (uint64_t)sqlite3_column_int64(q, 3);
        log_info("trial %lld (job %lld) running -> queued, attempt %d: left running by the"
                 " previous daemon (pid %d)",
                 (long long)id, (long long)sqlite3_column_int64(q, 1),
                 sqlite3_column_int(q, 4) + 1, pid);
        requeued++;
        if (same_process(pid, start)) {
            if (n_orph == cap) {
                cap = cap ? cap * 2 : 8;
                void *nv = realloc(orph, cap * sizeof *orph);
                if (!nv) break;
                orph = nv;
            }
            orph[n_orph].pid = pid;
            orph[n_orph++].start = start;
        }
    }
    sqlite3_reset(q);
    /* Test-set evaluations left running: their pid is on the evaluated
     * (completed) trial's row. They are stopped too; the scheduler runs the
     * evaluation again for the job. */
    q = store_stmt(st, "SELECT id, job_id, pid, pid_start_time FROM trials"
                       " WHERE state != 'running' AND pid IS NOT NULL");
    if (!q) {
        free(orph);
        return err_set(msg, msglen, ERR_DB, "cannot read evaluations");
    }
    while (sqlite3_step(q) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(q, 0);
        int pid = sqlite3_column_int(q, 2);
        uint64_t start = (uint64_t)sqlite3_column_int64(q, 3);
        bool alive = same_process(pid, start);
        log_info("job %lld: test-set evaluation of trial %lld (pid %d) left by the previous"
                 " daemon%s",
                 (long long)sqlite3_column_int64(q, 1), (long long)id, pid,
                 alive ? "; stopping it" : " has ended");
        if (alive && n_orph < cap) {
            orph[n_orph].pid = pid;
            orph[n_orph++].start = start;
        } else if (alive) {
            size_t nc = cap ? cap * 2 : 8;
            void *nv = realloc(orph, nc * sizeof *orph);
            if (nv) {
                orph = nv;
                cap = nc;
                orph[n_orph].pid = pid;
                orph[n_orph++].start = start;
            }
        }
    }
    sqlite3_reset(q);
    store_enqueue(st,
                  "UPDATE trials SET pid = NULL, pid_start_time = NULL"
                  " WHERE state != 'running' AND pid IS NOT NULL",
                  "");
    /* Stop the orphans: SIGTERM (they checkpoint), then SIGKILL. */
    for (size_t i = 0; i < n_orph; i++) {
        log_warn("stopping worker pid %d left by the previous daemon", orph[i].pid);
        if (kill(-orph[i].pid, SIGTERM) != 0) kill(orph[i].pid, SIGTERM);
    }
    double grace = kill_grace < 10 ? kill_grace : 10;
    double until = time_mono() + grace;
    for (;;) {
        size_t alive = 0;
        for (size_t i = 0; i < n_orph; i++)
            if (same_process(orph[i].pid, orph[i].start)) alive++;
        if (!alive) break;
        if (time_mono() >= until) {
            for (size_t i = 0; i < n_orph; i++)
                if (same_process(orph[i].pid, orph[i].start)) {
                    log_warn("worker pid %d ignored SIGTERM; sending SIGKILL", orph[i].pid);
                    if (kill(-orph[i].pid, SIGKILL) != 0) kill(orph[i].pid, SIGKILL);
                }
            break;
        }
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
    free(orph);
    /* Replay the events of every interrupted trial; finished ones are completed. */
    q = store_stmt(st, "SELECT id, out_dir FROM trials WHERE state = 'running'");
    if (!q) return err_set(msg, msglen, ERR_DB, "cannot read running trials");
    while (sqlite3_step(q) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(q, 0);
        if (replay_events(st, id, (const char *)sqlite3_column_text(q, 1))) {
            char now[40];
            time_now_iso(now, sizeof now);
            log_info("trial %lld running -> completed: it reported done before the previous"
                     " daemon stopped",
                     (long long)id);
            store_enqueue(st,
                          "UPDATE trials SET state = 'completed', pid = NULL, pid_start_time = NULL,"
                          " finished_at = ? WHERE id = ?",
                          "si", now, id);
            requeued--;
        }
    }
    sqlite3_reset(q);
    int rc = store_enqueue(st,
                           "UPDATE trials SET state = 'queued', attempt = attempt + 1, pid = NULL,"
                           " pid_start_time = NULL, error = 'interrupted: the daemon stopped"
                           " unexpectedly' WHERE state = 'running'",
                           "");
    if (rc == 0) {
        store_set_busy(st, 5000);
        rc = store_flush(st);
    }
    if (rc) return err_set(msg, msglen, rc, "cannot requeue interrupted trials (database busy)");
    return requeued;
}
