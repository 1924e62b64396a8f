/* sweepd — entry point: settings, single-instance checks, daemonizing,
 * database and crash recovery, then the libuv loop until SIGTERM/SIGINT or
 * a `shutdown` request.
 *
 * Single instance: locks on the database (by resolved path and by the file
 * itself) and on the state directory, which must belong to the database
 * (instance.h), and a probe of the socket (a live one refuses; a stale one
 * is replaced). Without
 * --foreground the process detaches (double fork, setsid); the parent waits
 * until the daemon is listening (or has failed, printing why) before it
 * exits, so `sweepd && sweepctl ping` works. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "blas_policy.h"
#include "config.h"
#include "errors.h"
#include "instance.h"
#include "launcher.h"
#include "log.h"
#include "recover.h"
#include "scheduler.h"
#include "server.h"
#include "store.h"

static int ready_fd = -1;        // pipe to the waiting parent while daemonizing
static bool log_to_file = false; // log lines go to a file, not stderr

/* Reports a start-up failure: to the waiting parent or to stderr. */
static int fail(const char *msg)
{
    log_error("%s", msg);
    if (ready_fd >= 0) {
        dprintf(ready_fd, "E%s", msg);
        close(ready_fd);
        ready_fd = -1;
    } else if (log_to_file || log_get_level() > LOGL_ERROR) {
        fprintf(stderr, "sweepd: %s\n", msg);
    }
    return 1;
}

static int mkdir_p(const char *path, mode_t mode)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, mode) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, mode) != 0 && errno != EEXIST) return -1;
    return 0;
}

static int mkdir_parent(const char *file)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", file);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return 0;
    *slash = 0;
    return mkdir_p(dir, 0750);
}

/* Double fork. Returns in the daemon; the original process exits with the
 * daemon's start-up result. */
static void daemonize(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        perror("sweepd: pipe");
        exit(1);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("sweepd: fork");
        exit(1);
    }
    if (pid > 0) {
        close(p[1]);
        char buf[2048];
        size_t got = 0;
        ssize_t n;
        while (got < sizeof buf - 1 && (n = read(p[0], buf + got, sizeof buf - 1 - got)) != 0) {
            if (n < 0) {
                if (errno == EINTR) continue;
                break;
            }
            got += (size_t)n;
        }
        buf[got] = 0;
        waitpid(pid, NULL, 0);
        if (got > 0 && buf[0] == 'R') exit(0);
        fprintf(stderr, "sweepd: %s\n", got > 1 ? buf + 1 : "the daemon exited during start-up");
        exit(1);
    }
    close(p[0]);
    setsid();
    pid = fork();
    if (pid < 0) _exit(1);
    if (pid > 0) _exit(0);
    ready_fd = p[1];
    if (chdir("/") != 0) log_warn("cannot chdir to /");
    int nul = open("/dev/null", O_RDWR);
    if (nul >= 0) {
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(nul, 2);
        if (nul > 2) close(nul);
    }
}

typedef struct {
    sweepd d;           // scheduler state
    uv_signal_t sig[3]; // SIGTERM, SIGINT, SIGHUP
    bool sig_started;   // sig[] initialised
} app;

static void on_stopped(sweepd *d)
{
    app *a = (app *)d;
    server_close_all(d);
    if (a->sig_started)
        for (int i = 0; i < 3; i++)
            uv_close((uv_handle_t *)&a->sig[i], NULL);
    a->sig_started = false;
}

static void on_signal(uv_signal_t *h, int signum)
{
    app *a = h->data;
    if (signum == SIGHUP) {
        int rc = log_reopen();
        log_info("SIGHUP: log file reopened%s", rc ? " (failed)" : "");
        return;
    }
    if (a->d.shutting_down) {
        log_info("%s: already stopping", strsignal(signum));
        return;
    }
    log_info("%s: stopping", strsignal(signum));
    server_stop(&a->d);
    sched_shutdown(&a->d);
}

int main(int argc, char **argv)
{
    /* A file-size limit (ulimit -f, LimitFSIZE=) must not kill the daemon:
     * writes past it then fail with EFBIG and take the same path as a full
     * disk (kept and retried, errors naming the limit). Workers get the
     * default disposition back: uv_spawn resets signals in the child. */
    signal(SIGXFSZ, SIG_IGN);
    /* Workers inherit the environment. OpenBLAS starts its thread pool when
     * the library loads, before main, and under a small address-space limit
     * (ulimit -v, RLIMIT_AS) it retries a failed buffer allocation forever: a
     * worker would hang instead of failing. sweep-worker multiplies on its own
     * threads with OpenBLAS single-threaded (include/layers.h), so it loses
     * nothing by starting OpenBLAS with one thread. A value the user set is
     * kept. */
    if (!getenv("OPENBLAS_NUM_THREADS") && !getenv("GOTO_NUM_THREADS") &&
        !getenv("OMP_NUM_THREADS"))
        setenv("OPENBLAS_NUM_THREADS", "1", 0);
    sweepd_config cfg;
    config_defaults(&cfg);
    char msg[2 * PATH_MAX + 256];
    bool help = false;
    if (config_from_args(&cfg, argc, argv, &help, msg, sizeof msg) != 0) {
        fprintf(stderr, "sweepd: %s\nTry 'sweepd --help'.\n", msg);
        config_free(&cfg);
        return 2;
    }
    if (help) {
        fputs(config_usage(), stdout);
        config_free(&cfg);
        return 0;
    }
    int status = 1;
    store *st = NULL;
    instance inst = {.pid_fd = -1, .db_fd = -1, .dir_fd = -1};
    uv_loop_t *loop = NULL;
    static app a;
    if (config_finish(&cfg, msg, sizeof msg) != 0) {
        fail(msg);
        goto out;
    }
    log_set_level(cfg.level);
    char sub[PATH_MAX + 16];
    const char *subs[] = {"", "/trials", "/logs", "/cache"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(sub, sizeof sub, "%s%s", cfg.state_dir, subs[i]);
        if (mkdir_p(sub, 0750) != 0) {
            snprintf(msg, sizeof msg, "cannot create %s: %s", sub, strerror(errno));
            fail(msg);
            goto out;
        }
    }
    if (mkdir_parent(cfg.db_path) != 0 || mkdir_parent(cfg.socket_path) != 0) {
        snprintf(msg, sizeof msg, "cannot create the directory of %s or %s: %s", cfg.db_path,
                 cfg.socket_path, strerror(errno));
        fail(msg);
        goto out;
    }
    if (instance_lock(&inst, cfg.db_path, cfg.state_dir, msg, sizeof msg) != 0) {
        fail(msg);
        goto out;
    }
    if (server_check_socket(cfg.socket_path, msg, sizeof msg) != 0) {
        fail(msg);
        goto out;
    }
    if (!cfg.foreground) daemonize();
    instance_write_pid(&inst);
    if (cfg.log_file) {
        if (log_open(cfg.log_file, msg, sizeof msg) != 0) {
            fail(msg);
            goto out;
        }
        log_to_file = true;
    }
    signal(SIGPIPE, SIG_IGN);
    log_info("sweepd %s starting: pid %d, db %s, state dir %s, %d workers x %d threads, worker %s,"
             " blas_core %s, launcher %s",
             SWEEPD_VERSION, (int)getpid(), cfg.db_path, cfg.state_dir, cfg.workers,
             cfg.threads_per_worker, cfg.worker, cfg.blas_core,
             cfg.launcher == LAUNCH_SLURM ? "slurm" : "local");
    {
        blas_cpu cpu;
        blas_cpu_detect(&cpu);
        char advice[512];
        if (blas_policy_advice(cfg.blas_core, getenv("OPENBLAS_CORETYPE"), &cpu, advice,
                               sizeof advice))
            log_warn("%s", advice);
    }
    if (store_open(&st, cfg.db_path, cfg.sql_dir, cfg.db_busy_timeout_ms, msg, sizeof msg) != 0) {
        fail(msg);
        goto out;
    }
    if (instance_check_state(&inst, st, msg, sizeof msg) != 0) {
        fail(msg);
        goto out;
    }
    /* Slurm steps of the previous daemon checkpoint and end before their trials are requeued. */
    int steps = launcher_recover(&cfg, cfg.kill_grace < 30 ? cfg.kill_grace : 30, msg, sizeof msg);
    if (steps < 0) {
        fail(msg);
        goto out;
    }
    if (steps) log_info("recovery: stopped %d Slurm steps left by the previous daemon", steps);
    /* After the recovery: the cluster may have been busy with those steps. */
    if (launcher_check(&cfg, msg, sizeof msg) != 0) {
        fail(msg);
        goto out;
    }
    int requeued = recover_run(st, cfg.state_dir, cfg.kill_grace, msg, sizeof msg);
    if (requeued < 0) {
        fail(msg);
        goto out;
    }
    if (requeued) log_info("recovery: %d interrupted trials back in the queue", requeued);
    store_set_busy(st, cfg.db_busy_timeout_ms);
    loop = uv_default_loop();
    sched_init(&a.d, loop, &cfg, st);
    a.d.on_stopped = on_stopped;
    if (sched_load(&a.d, msg, sizeof msg) != 0) {
        fail(msg);
        goto out_loop;
    }
    if (server_start(&a.d, msg, sizeof msg) != 0) {
        fail(msg);
        goto out_loop;
    }
    int sigs[3] = {SIGTERM, SIGINT, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(loop, &a.sig[i]);
        a.sig[i].data = &a;
        uv_signal_start(&a.sig[i], on_signal, sigs[i]);
    }
    a.sig_started = true;
    FILE *pf = fopen(cfg.pid_file, "w");
    if (pf) {
        fprintf(pf, "%d\n", (int)getpid());
        fclose(pf);
    } else {
        log_warn("cannot write pid file %s: %s", cfg.pid_file, strerror(errno));
    }
    if (ready_fd >= 0) {
        if (write(ready_fd, "R", 1) != 1) log_warn("cannot notify the parent process");
        close(ready_fd);
        ready_fd = -1;
    }
    sched_run(&a.d);
    uv_run(loop, UV_RUN_DEFAULT);
    unlink(cfg.pid_file);
    status = 0;
    log_info("sweepd stopped");
out_loop:
    if (status != 0) {
        /* Start-up failed after the loop existed: close what was opened. */
        server_stop(&a.d);
        sched_shutdown(&a.d); // no workers yet: closes the timer and calls on_stopped
        uv_run(loop, UV_RUN_DEFAULT);
    }
    server_free(&a.d);
    sched_free(&a.d);
    uv_loop_close(loop);
out:
    store_close(st);
    instance_release(&inst);
    config_free(&cfg);
    log_close();
    return status;
}
