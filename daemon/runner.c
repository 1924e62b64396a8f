/* runner — child processes on the event loop: file preparation, uv_spawn,
 * reading their JSON-line output, signals (see include/runner.h; the design
 * note there says who owns what).
 *
 * The child's stdout is appended to a file that the daemon reads as it grows
 * (each timer tick, through runner_drain, and to the end once the process
 * has exited) and hands line by line to on_line; its stderr is appended to a
 * log file. Files are prepared in the libuv threadpool for an asynchronous
 * start (mkdir, the one file, the log and output files), so a slow disk
 * never stalls the loop; the process is then spawned on the loop. Children
 * are started detached (setsid): each leads its own process group and
 * signals go to the whole group (kill(-pid, ...)). argv only, never a shell. */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "log.h"
#include "timeutil.h"

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

bool runner_errno_is_space(int e)
{
    return e == ENOSPC || e == EDQUOT || e == EFBIG || e == EIO;
}

void runner_init(runner_proc *rp, uv_loop_t *loop, const runner_callbacks *cb, void *ud)
{
    memset(rp, 0, sizeof *rp);
    rp->loop = loop;
    if (cb) rp->cb = *cb;
    rp->ud = ud;
    rp->evfd = rp->outfd = rp->logfd = -1;
    ndjson_init(&rp->nb, RUNNER_MAX_LINE);
}

static void close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

/* Frees what RP owns and tells its owner, who may free RP itself. */
static void finish(runner_proc *rp)
{
    ndjson_free(&rp->nb);
    close_fd(&rp->evfd);
    close_fd(&rp->outfd);
    close_fd(&rp->logfd);
    for (char **a = rp->argv; a && *a; a++)
        free(*a);
    free(rp->argv);
    char **owned[] = {&rp->cwd,      &rp->dir,      &rp->file_path, &rp->file_text,
                      &rp->log_path, &rp->log_what, &rp->out_path};
    for (size_t i = 0; i < sizeof owned / sizeof *owned; i++) {
        free(*owned[i]);
        *owned[i] = NULL;
    }
    rp->argv = NULL;
    if (rp->cb.on_closed) rp->cb.on_closed(rp, rp->ud);
}

static void on_handle_closed(uv_handle_t *h)
{
    runner_proc *rp = h->data;
    rp->closed = true;
    if (rp->released) finish(rp);
}

void runner_release(runner_proc *rp)
{
    rp->released = true;
    if (!rp->spawned && !rp->closing) {
        finish(rp);
        return;
    }
    if (!rp->closing) {
        rp->closing = true;
        uv_close((uv_handle_t *)&rp->process, on_handle_closed);
    } else if (rp->closed) {
        finish(rp);
    }
}

void runner_signal(runner_proc *rp, int sig)
{
    if (rp->exited || rp->pid <= 0) return;
    if (rp->cb.on_signal && rp->cb.on_signal(rp, sig, rp->ud)) return;
    if (kill(-rp->pid, sig) != 0 && errno == ESRCH) kill(rp->pid, sig);
}

void runner_terminate(runner_proc *rp)
{
    if (rp->term_at == 0) rp->term_at = time_mono();
    runner_signal(rp, SIGTERM);
}

bool runner_enforce_grace(runner_proc *rp, double now, double grace)
{
    if (rp->exited || rp->term_at <= 0 || rp->killed || now - rp->term_at <= grace) return false;
    log_warn("pid %d still running %g s after SIGTERM; sending SIGKILL", rp->pid, grace);
    rp->killed = true;
    runner_signal(rp, SIGKILL);
    return true;
}

static int line_cb(void *ud, char *line, size_t len)
{
    runner_proc *rp = ud;
    if (rp->cb.on_line) rp->cb.on_line(rp, line, len, rp->ud);
    return 0;
}

void runner_drain(runner_proc *rp)
{
    if (rp->preparing || rp->evfd < 0) return; // the threadpool may be opening the file
    static char buf[65536]; // the loop is single-threaded; ndjson copies what it keeps
    for (;;) {
        ssize_t n = read(rp->evfd, buf, sizeof buf);
        if (n > 0) {
            ndjson_feed(&rp->nb, buf, (size_t)n, line_cb, rp);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        break;
    }
}

/* Marks RP ended and tells its owner, after the last of its output. */
static void exited(runner_proc *rp)
{
    rp->exited = true;
    rp->exit_at = time_mono();
    /* Everything it wrote is in the file now; a last line without "\n" counts. */
    runner_drain(rp);
    if (ndjson_pending(&rp->nb) > 0) ndjson_feed(&rp->nb, "\n", 1, line_cb, rp);
    if (rp->cb.on_exit) rp->cb.on_exit(rp, rp->ud);
}

static void exit_cb(uv_process_t *h, int64_t status, int sig)
{
    runner_proc *rp = h->data;
    rp->exit_status = status;
    rp->term_signal = sig;
    exited(rp);
}

/* Records a failed preparation step: errno E and "WHAT PATH: strerror". */
static void prep_fail(runner_proc *rp, int e, const char *what, const char *path)
{
    rp->eno = e;
    err_set_errno(rp->error, sizeof rp->error, ERR_IO, e, "%s %s", what, path);
}

/* Writes TEXT to PATH through PATH.tmp and a rename. */
static void write_file_atomic(runner_proc *rp, const char *path, const char *text)
{
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        prep_fail(rp, errno, "cannot write", tmp);
        return;
    }
    size_t n = strlen(text), off = 0;
    while (off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            unlink(tmp);
            prep_fail(rp, e, "cannot write", tmp);
            return;
        }
        off += (size_t)w;
    }
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        prep_fail(rp, e, "cannot write", tmp);
        return;
    }
    if (rename(tmp, path) != 0) prep_fail(rp, errno, "cannot rename", tmp);
}

/* The file system half of a start (any thread): every step of runner_files,
 * stopping at the first failure (rp->error). Touches only RP's files and fds. */
static void prepare(runner_proc *rp)
{
    if (rp->dir && mkdir(rp->dir, 0750) != 0 && errno != EEXIST) {
        prep_fail(rp, errno, "cannot create", rp->dir);
        return;
    }
    if (rp->file_path) {
        write_file_atomic(rp, rp->file_path, rp->file_text ? rp->file_text : "");
        free(rp->file_text);
        rp->file_text = NULL;
        if (rp->error[0]) return;
    }
    if (rp->log_path) {
        rp->logfd = open(rp->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (rp->logfd < 0) {
            prep_fail(rp, errno, "cannot open", rp->log_path);
            return;
        }
        char now[40], head[PATH_MAX];
        int n = snprintf(head, sizeof head, "==== sweepd %s: %s ====\n",
                         time_now_iso(now, sizeof now), rp->log_what ? rp->log_what : "");
        if (n > 0 && write(rp->logfd, head, (size_t)n) < 0) { /* the header is best effort */
        }
    }
    if (rp->out_path) {
        int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (rp->out_truncate ? O_TRUNC : 0);
        rp->outfd = open(rp->out_path, flags, 0640);
        if (rp->outfd >= 0) rp->evfd = open(rp->out_path, O_RDONLY | O_CLOEXEC);
        if (rp->outfd < 0 || rp->evfd < 0) {
            prep_fail(rp, errno, "cannot open", rp->out_path);
            close_fd(&rp->outfd);
            close_fd(&rp->logfd);
            return;
        }
        lseek(rp->evfd, 0, SEEK_END);
    }
}

/* Spawns rp->argv with stdout to the output file and stderr to the log. */
static int spawn(runner_proc *rp)
{
    rp->process.data = rp;
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = rp->outfd >= 0 ? UV_INHERIT_FD : UV_IGNORE;
    stdio[1].data.fd = rp->outfd;
    stdio[2].flags = rp->logfd >= 0 ? UV_INHERIT_FD : UV_IGNORE;
    stdio[2].data.fd = rp->logfd;
    uv_process_options_t o;
    memset(&o, 0, sizeof o);
    o.file = rp->argv[0];
    o.args = rp->argv;
    o.cwd = rp->cwd;
    o.flags = UV_PROCESS_DETACHED;
    o.stdio_count = 3;
    o.stdio = stdio;
    o.exit_cb = exit_cb;
    int rc = uv_spawn(rp->loop, &rp->process, &o);
    close_fd(&rp->logfd);
    close_fd(&rp->outfd);
    if (rc != 0) {
        err_set(rp->error, sizeof rp->error, ERR_IO, "cannot start worker %s: %s", rp->argv[0],
                uv_strerror(rc));
        /* The handle is initialised even on failure and must be closed. */
        rp->closing = true;
        uv_close((uv_handle_t *)&rp->process, on_handle_closed);
        return ERR_IO;
    }
    rp->spawned = true;
    rp->pid = rp->process.pid;
    rp->started = time_mono();
    return 0;
}

static void prep_work(uv_work_t *w)
{
    prepare(w->data);
}

/* Loop half of an asynchronous start: spawn, unless stopped meanwhile. */
static void prep_done(uv_work_t *w, int status)
{
    runner_proc *rp = w->data;
    rp->preparing = false;
    if (status != 0 && !rp->error[0])
        err_set(rp->error, sizeof rp->error, ERR_INTERNAL, "preparation cancelled");
    if (!rp->error[0] && rp->term_at > 0) {
        rp->not_started = true;
    } else if (rp->error[0] || spawn(rp) != 0) {
        rp->start_failed = true;
    } else {
        if (rp->cb.on_spawn) rp->cb.on_spawn(rp, rp->ud);
        return;
    }
    close_fd(&rp->logfd);
    close_fd(&rp->outfd);
    rp->exit_status = -1;
    exited(rp);
}

static char *dup_or_null(const char *s, bool *oom)
{
    if (!s) return NULL;
    char *c = strdup(s);
    if (!c) *oom = true;
    return c;
}

int runner_start(runner_proc *rp, char *const *argv, const char *cwd, const runner_files *files,
                 bool async, char *msg, size_t msglen)
{
    static const runner_files none;
    if (!files) files = &none;
    size_t n = 0;
    while (argv[n])
        n++;
    bool oom = false;
    rp->argv = calloc(n + 1, sizeof *rp->argv);
    oom = !rp->argv;
    for (size_t i = 0; i < n && !oom; i++)
        rp->argv[i] = dup_or_null(argv[i], &oom);
    rp->cwd = dup_or_null(cwd, &oom);
    rp->dir = dup_or_null(files->dir, &oom);
    rp->file_path = dup_or_null(files->file_path, &oom);
    rp->file_text = dup_or_null(files->file_text, &oom);
    rp->log_path = dup_or_null(files->log_path, &oom);
    rp->log_what = dup_or_null(files->log_what, &oom);
    rp->out_path = dup_or_null(files->out_path, &oom);
    rp->out_truncate = files->out_truncate;
    if (oom) return err_set(msg, msglen, ERR_NOMEM, "out of memory starting %s", argv[0]);
    if (async) {
        rp->preparing = true;
        rp->work.data = rp;
        int rc = uv_queue_work(rp->loop, &rp->work, prep_work, prep_done);
        if (rc != 0) {
            rp->preparing = false;
            return err_set(msg, msglen, ERR_INTERNAL, "cannot queue the start of %s: %s", argv[0],
                           uv_strerror(rc));
        }
        return 0;
    }
    prepare(rp);
    if (rp->error[0] || spawn(rp) != 0) {
        rp->start_failed = true;
        close_fd(&rp->logfd);
        close_fd(&rp->outfd);
        return err_set(msg, msglen, ERR_IO, "%s", rp->error);
    }
    if (rp->cb.on_spawn) rp->cb.on_spawn(rp, rp->ud);
    return 0;
}
