/* recover — puts trials left running by a crashed daemon back in the queue
 * and stops their orphaned workers (see include/recover.h). Job states are
 * recomputed afterwards by sched_load() and the scheduler. */
#include "recover.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "log.h"
#include "scheduler.h"
#include "timeutil.h"

static bool same_process(int pid, uint64_t start)
{
    return pid > 0 && start != 0 && runner_proc_start_time(pid) == start;
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
