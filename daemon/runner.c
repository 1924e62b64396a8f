/* runner — starts sweep-worker processes with uv_spawn and reads their output.
 *
 * A trial runs as `<worker> run <state_dir>/trials/<id>/trial.json` with its
 * working directory set to that out_dir, stdin closed, stderr appended to
 * <state_dir>/logs/trial-<id>.log, and stdout appended to
 * <out_dir>/events.ndjson, which the daemon reads as it grows (each timer
 * tick, and to the end once the process has exited) and hands line by line
 * to sched_on_line. Events go through a file rather than a pipe so that none
 * is lost when the daemon itself dies: an event the worker wrote is on disk,
 * and recovery replays the file (recover.c). An evaluation's stdout goes to
 * <out_dir>/eval.ndjson the same way.
 *
 * Trial files are prepared in the libuv threadpool (mkdir, trial.json, log
 * and events files), so a slow disk never stalls the loop; the process is
 * then spawned on the loop. Workers are started detached (setsid): each leads
 * its own process group and signals go to the whole group (kill(-pid, ...)).
 * argv only, never a shell. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "jsonx.h"
#include "log.h"
#include "scheduler.h"
#include "timeutil.h"

#define WORKER_MAX_LINE (1u << 20)

uint64_t runner_proc_start_time(int pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    /* Field 2 (comm) may contain spaces and parentheses: skip to the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p) return 0;
    p++;
    /* Fields 3.. follow; start time is field 22, i.e. the 20th after ')'. */
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p) return 0;
    }
    return strtoull(p + 1, NULL, 10);
}

static void proc_free(proc *p)
{
    ndjson_free(&p->nb);
    if (p->evfd >= 0) close(p->evfd);
    free(p->last_error);
    free(p->spec_text);
    json_decref(p->eval_result);
    free(p);
}

static void on_handle_closed(uv_handle_t *h)
{
    proc_free(h->data);
}

void runner_release(proc *p)
{
    if (p->prev) p->prev->next = p->next;
    else if (p->d->procs == p) p->d->procs = p->next;
    if (p->next) p->next->prev = p->prev;
    p->next = p->prev = NULL;
    p->linked = false;
    if (p->spawned) {
        if (!uv_is_closing((uv_handle_t *)&p->process))
            uv_close((uv_handle_t *)&p->process, on_handle_closed);
    } else if (!p->closing) {
        proc_free(p);
    }
}

void runner_signal(proc *p, int sig)
{
    if (p->exited || p->pid <= 0) return;
    if (kill(-p->pid, sig) != 0 && errno == ESRCH) kill(p->pid, sig);
}

static int line_cb(void *ud, char *line, size_t len)
{
    sched_on_line(ud, line, len);
    return 0;
}

bool runner_errno_is_space(int e)
{
    return e == ENOSPC || e == EDQUOT || e == EFBIG || e == EIO;
}

void runner_drain(proc *p)
{
    if (p->evfd < 0) return;
    static char buf[65536]; // the loop is single-threaded; ndjson copies what it keeps
    for (;;) {
        ssize_t n = read(p->evfd, buf, sizeof buf);
        if (n > 0) {
            ndjson_feed(&p->nb, buf, (size_t)n, line_cb, p);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        break;
    }
}

static void exit_cb(uv_process_t *h, int64_t status, int sig)
{
    proc *p = h->data;
    p->exited = true;
    p->exit_at = time_mono();
    p->exit_status = status;
    p->term_signal = sig;
    /* Everything it wrote is in the file now; a last line without "\n" counts. */
    runner_drain(p);
    if (ndjson_pending(&p->nb) > 0) ndjson_feed(&p->nb, "\n", 1, line_cb, p);
    sched_on_finished(p);
}

/* Opens PATH for the worker's stdout (appending) into *WFD and for reading,
 * positioned at its current end, into p->evfd. */
static int open_events(proc *p, const char *path, bool truncate, int *wfd, int *eno, char *msg,
                       size_t msglen)
{
    *wfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0640);
    if (*wfd < 0) {
        *eno = errno;
        return err_set_errno(msg, msglen, ERR_IO, *eno, "cannot open %s", path);
    }
    p->evfd = open(path, O_RDONLY | O_CLOEXEC);
    if (p->evfd < 0) {
        *eno = errno;
        close(*wfd);
        *wfd = -1;
        return err_set_errno(msg, msglen, ERR_IO, *eno, "cannot open %s", path);
    }
    lseek(p->evfd, 0, SEEK_END);
    return 0;
}

/* Spawns ARGV with stdout to OUTFD and stderr to LOGFD; links P into D. */
static int spawn(sweepd *d, proc *p, char **argv, const char *cwd, int outfd, int logfd,
                 char *msg, size_t msglen)
{
    p->d = d;
    p->process.data = p;
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = outfd;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = logfd;
    uv_process_options_t o;
    memset(&o, 0, sizeof o);
    o.file = argv[0];
    o.args = argv;
    o.cwd = cwd;
    o.flags = UV_PROCESS_DETACHED;
    o.stdio_count = 3;
    o.stdio = stdio;
    o.exit_cb = exit_cb;
    int rc = uv_spawn(d->loop, &p->process, &o);
    if (rc != 0) {
        err_set(msg, msglen, ERR_IO, "cannot start worker %s: %s", argv[0], uv_strerror(rc));
        /* The handle is initialised even on failure and must be closed; P is
         * freed by its close callback. */
        p->closing = true;
        uv_close((uv_handle_t *)&p->process, on_handle_closed);
        return ERR_IO;
    }
    p->spawned = true;
    p->pid = p->process.pid;
    p->started = time_mono();
    if (!p->linked) {
        p->next = d->procs;
        if (d->procs) d->procs->prev = p;
        d->procs = p;
        p->linked = true;
    }
    return 0;
}

static int open_log(sweepd *d, int64_t trial_id, const char *what, int *eno, char *msg,
                    size_t msglen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/logs/trial-%lld.log", d->cfg->state_dir, (long long)trial_id);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
        *eno = errno;
        return err_set_errno(msg, msglen, ERR_IO, *eno, "cannot open %s", path);
    }
    char now[40], head[256];
    int n = snprintf(head, sizeof head, "==== sweepd %s: %s ====\n", time_now_iso(now, sizeof now),
                     what);
    if (write(fd, head, (size_t)n) < 0) log_debug("cannot write %s", path);
    return fd;
}

/* Writes TEXT to PATH through PATH.tmp and a rename; the errno of a failure
 * goes to *ENO. */
static int write_file_atomic(const char *path, const char *text, int *eno, char *msg,
                             size_t msglen)
{
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        *eno = errno;
        return err_set_errno(msg, msglen, ERR_IO, *eno, "cannot write %s", tmp);
    }
    size_t n = strlen(text), off = 0;
    while (off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w < 0) {
            if (errno == EINTR) continue;
            *eno = errno;
            close(fd);
            unlink(tmp);
            return err_set_errno(msg, msglen, ERR_IO, *eno, "cannot write %s", tmp);
        }
        off += (size_t)w;
    }
    if (close(fd) != 0) {
        *eno = errno;
        unlink(tmp);
        return err_set_errno(msg, msglen, ERR_IO, *eno, "cannot write %s", tmp);
    }
    if (rename(tmp, path) != 0) {
        *eno = errno;
        return err_set_errno(msg, msglen, ERR_IO, *eno, "cannot rename %s", tmp);
    }
    return 0;
}

/* Threadpool half of starting a trial: the file system work (out_dir,
 * trial.json, the log file), which can take milliseconds on a busy disk and
 * must not stall the loop. Touches only P's prep fields. */
static void prep_work(uv_work_t *w)
{
    proc *p = w->data;
    char spec_path[PATH_MAX + 16];
    if (mkdir(p->out_dir, 0750) != 0 && errno != EEXIST) {
        p->prep_errno = errno;
        err_set_errno(p->prep_error, sizeof p->prep_error, ERR_IO, p->prep_errno,
                      "cannot create %s", p->out_dir);
        return;
    }
    snprintf(spec_path, sizeof spec_path, "%s/trial.json", p->out_dir);
    if (write_file_atomic(spec_path, p->spec_text, &p->prep_errno, p->prep_error,
                          sizeof p->prep_error) != 0)
        return;
    int fd = open(p->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
        p->prep_errno = errno;
        err_set_errno(p->prep_error, sizeof p->prep_error, ERR_IO, p->prep_errno,
                      "cannot open %s", p->log_path);
        return;
    }
    char now[40], head[256];
    int n = snprintf(head, sizeof head, "==== sweepd %s: trial %lld attempt %u ====\n",
                     time_now_iso(now, sizeof now), (long long)p->trial_id, p->attempt);
    if (write(fd, head, (size_t)n) < 0) { /* the log header is best effort */ }
    p->logfd = fd;
    char ev[PATH_MAX + 32];
    snprintf(ev, sizeof ev, "%s/events.ndjson", p->out_dir);
    if (open_events(p, ev, false, &p->outfd, &p->prep_errno, p->prep_error,
                    sizeof p->prep_error) != 0) {
        close(p->logfd);
        p->logfd = -1;
    }
}

/* Loop half: spawn the worker, unless the trial was stopped meanwhile. */
static void prep_done(uv_work_t *w, int status)
{
    proc *p = w->data;
    sweepd *d = p->d;
    p->preparing = false;
    free(p->spec_text);
    p->spec_text = NULL;
    if (status != 0 && !p->prep_error[0])
        err_set(p->prep_error, sizeof p->prep_error, ERR_INTERNAL, "trial preparation cancelled");
    if (p->prep_error[0] || p->stop != STOP_NONE) {
        if (p->logfd >= 0) close(p->logfd);
        if (p->outfd >= 0) close(p->outfd);
        p->logfd = p->outfd = -1;
        p->spawn_failed = p->prep_error[0] != 0;
        p->prep_retry = p->spawn_failed && runner_errno_is_space(p->prep_errno);
        if (p->spawn_failed) {
            free(p->last_error);
            p->last_error = strdup(p->prep_error);
        }
        p->exited = true;
        p->exit_status = p->spawn_failed ? -1 : WEXIT_STOPPED_CODE;
        sched_on_finished(p);
        return;
    }
    char spec_path[PATH_MAX + 16];
    snprintf(spec_path, sizeof spec_path, "%s/trial.json", p->out_dir);
    /* The spec path stays argv[2]; options follow it. */
    char *argv[] = {d->cfg->worker, "run", spec_path, "--blas-core", d->cfg->blas_core, NULL};
    char msg[512];
    int rc = spawn(d, p, argv, p->out_dir, p->outfd, p->logfd, msg, sizeof msg);
    close(p->logfd);
    close(p->outfd);
    p->logfd = p->outfd = -1;
    if (rc) {
        p->spawn_failed = true;
        free(p->last_error);
        p->last_error = strdup(msg);
        p->exited = true;
        p->exit_status = -1;
        sched_on_finished(p); // P is freed by the close callback started in spawn()
        return;
    }
    sched_on_spawned(p);
}

int runner_start_trial(sweepd *d, sjob *j, strial *t, char *msg, size_t msglen)
{
    /* The trial's parameters and seed from its row (the loop owns the database). */
    sqlite3_stmt *st = store_stmt(d->st, "SELECT params_json, seed FROM trials WHERE id = ?");
    if (!st) return err_set(msg, msglen, ERR_DB, "cannot read trial %lld", (long long)t->id);
    sqlite3_bind_int64(st, 1, t->id);
    json_t *params = NULL;
    int64_t seed = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *txt = (const char *)sqlite3_column_text(st, 0);
        params = txt ? json_loads(txt, 0, NULL) : NULL;
        seed = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (!params) return err_set(msg, msglen, ERR_DB, "trial %lld has no parameters", (long long)t->id);
    proc *p = calloc(1, sizeof *p);
    if (!p) {
        json_decref(params);
        return ERR_NOMEM;
    }
    snprintf(p->out_dir, sizeof p->out_dir, "%s/trials/%lld", d->cfg->state_dir, (long long)t->id);
    snprintf(p->log_path, sizeof p->log_path, "%s/logs/trial-%lld.log", d->cfg->state_dir,
             (long long)t->id);
    char cache[PATH_MAX];
    snprintf(cache, sizeof cache, "%s/cache", d->cfg->state_dir);
    json_t *spec = json_pack("{s:I, s:I, s:I, s:O, s:O, s:o, s:O, s:s, s:s, s:i}", "trial",
                             (json_int_t)t->id, "job", (json_int_t)j->id, "seed", (json_int_t)seed,
                             "data", json_object_get(j->tmpl, "data"), "model",
                             json_object_get(j->tmpl, "model"), "params", params, "objective",
                             json_object_get(j->tmpl, "objective"), "out_dir", p->out_dir,
                             "cache_dir", cache, "threads", d->cfg->threads_per_worker);
    p->spec_text = spec ? jx_dump_line(spec) : NULL;
    json_decref(spec);
    if (!p->spec_text) {
        free(p);
        return err_set(msg, msglen, ERR_NOMEM, "out of memory building the trial spec");
    }
    p->d = d;
    p->job = j;
    p->trial = t;
    p->trial_id = t->id;
    p->attempt = t->attempt;
    p->done_value = NAN;
    p->logfd = p->outfd = p->evfd = -1;
    ndjson_init(&p->nb, WORKER_MAX_LINE);
    p->preparing = true;
    p->linked = true;
    p->work.data = p;
    int rc = uv_queue_work(d->loop, &p->work, prep_work, prep_done);
    if (rc != 0) {
        free(p->spec_text);
        free(p);
        return err_set(msg, msglen, ERR_INTERNAL, "cannot queue trial start: %s", uv_strerror(rc));
    }
    p->next = d->procs;
    if (d->procs) d->procs->prev = p;
    d->procs = p;
    t->proc = p;
    return 0;
}

int runner_start_eval(sweepd *d, sjob *j, strial *best, const char *out_dir, char *msg,
                      size_t msglen)
{
    char weights[PATH_MAX + 32];
    snprintf(weights, sizeof weights, "%s/best.safetensors", out_dir);
    if (access(weights, R_OK) != 0)
        return err_set_errno(msg, msglen, ERR_NOTFOUND, errno, "cannot read %s", weights);
    int eno = 0;
    int logfd = open_log(d, best->id, "test-set evaluation", &eno, msg, msglen);
    if (logfd < 0) return runner_errno_is_space(eno) ? ERR_BUSY : logfd;
    proc *p = calloc(1, sizeof *p);
    if (!p) {
        close(logfd);
        return ERR_NOMEM;
    }
    p->job = j;
    p->trial = best;
    p->is_eval = true;
    p->logfd = p->outfd = p->evfd = -1;
    ndjson_init(&p->nb, WORKER_MAX_LINE);
    char ev[PATH_MAX + 32];
    snprintf(ev, sizeof ev, "%s/eval.ndjson", out_dir);
    int outfd;
    int rc = open_events(p, ev, true, &outfd, &eno, msg, msglen);
    if (rc) {
        close(logfd);
        proc_free(p);
        return runner_errno_is_space(eno) ? ERR_BUSY : rc;
    }
    char *argv[] = {d->cfg->worker, "eval",  "--weights",       weights, "--data",
                    j->test,        "--blas-core", d->cfg->blas_core, NULL};
    rc = spawn(d, p, argv, out_dir, outfd, logfd, msg, msglen);
    close(logfd);
    close(outfd);
    if (rc) return rc; // P is freed by the close callback started in spawn()
    j->eval = p;
    return 0;
}
