/* launcher — runs workers on this machine or as Slurm steps (include/launcher.h
 * has the contract and the Slurm design in short; README.md "Slurm" the user's
 * side).
 *
 * Two kinds of command run here. Steps and stop signals are part of the
 * running daemon: srun is spawned by the runner like a local worker (this
 * module only writes its argv), scancel is spawned on the loop and forgotten
 * (launcher_signal). The start-up work (launcher_check, launcher_recover)
 * happens before the loop runs and may block: it runs srun, squeue and scancel
 * with fork/exec and reads their output (run_capture), with a deadline. */
#include "launcher.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "grow.h"
#include "log.h"
#include "timeutil.h"
#include "worker_exit.h"

/* Seconds srun may wait for resources in the start-up check (--immediate). */
#define CHECK_IMMEDIATE 30
/* Seconds a start-up command may run before it is killed; the environment
 * variable SWEEP_CAPTURE_DEADLINE (seconds, > 0) sets another, for tests. */
#define CAPTURE_DEADLINE 60.0
/* Slurm adds this margin past the daemon's own stop (trial_timeout, then the
 * grace period), so that the daemon's SIGTERM comes first and the worker
 * checkpoints, rather than Slurm's time-limit kill. */
#define TIME_MARGIN 60.0

void launcher_step_name(char *buf, size_t n, int64_t job, int64_t trial, bool is_eval)
{
    snprintf(buf, n, is_eval ? "sweepd-%lld-eval-%lld" : "sweepd-%lld-%lld", (long long)job,
             (long long)trial);
}

/* ---- argv ------------------------------------------------------------ */

/* A NULL-terminated argv under construction; OOM records a failed step. */
typedef struct {
    char **v;   // the strings (owned), v[n] == NULL
    size_t n;   // strings in v
    size_t cap; // entries allocated
    bool oom;   // an allocation failed: v is incomplete
} argvec;

static void av_add(argvec *a, const char *s)
{
    if (a->oom) return;
    char **nv = grow_array(a->v, a->n + 2, &a->cap, sizeof *a->v, 16);
    char *c = nv ? strdup(s) : NULL;
    if (!c) {
        a->oom = true;
        return;
    }
    a->v = nv;
    a->v[a->n++] = c;
    a->v[a->n] = NULL;
}

static void av_addf(argvec *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void av_addf(argvec *a, const char *fmt, ...)
{
    char buf[PATH_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    av_add(a, buf);
}

void launcher_argv_free(char **argv)
{
    for (char **p = argv; p && *p; p++)
        free(*p);
    free(argv);
}

/* Appends srun and its options for a step NAME in CWD (NULL: srun's own
 * directory) with TIME_LIMIT seconds (0 = none), ending with the
 * blank-separated slurm_extra_args; the caller adds "--" and the command. */
static void srun_options(argvec *a, const sweepd_config *c, const char *name, const char *cwd,
                         double time_limit)
{
    av_add(a, "srun");
    av_add(a, "--unbuffered");
    av_add(a, "--ntasks=1");
    av_addf(a, "--job-name=%s", name);
    if (cwd) av_addf(a, "--chdir=%s", cwd);
    av_addf(a, "--cpus-per-task=%d", c->threads_per_worker);
    if (c->slurm_partition) av_addf(a, "--partition=%s", c->slurm_partition);
    if (c->slurm_account) av_addf(a, "--account=%s", c->slurm_account);
    if (c->slurm_mem_per_trial) av_addf(a, "--mem=%s", c->slurm_mem_per_trial);
    if (time_limit > 0) {
        long long s = (long long)ceil(time_limit + c->kill_grace + TIME_MARGIN);
        av_addf(a, "--time=%lld:%02lld", s / 60, s % 60); // minutes:seconds
    }
    for (const char *p = c->slurm_extra_args; p && *p;) {
        p += strspn(p, " \t");
        size_t len = strcspn(p, " \t");
        if (!len) break;
        char arg[1024];
        snprintf(arg, sizeof arg, "%.*s", (int)(len < sizeof arg ? len : sizeof arg - 1), p);
        av_add(a, arg);
        p += len;
    }
}

int launcher_argv(const sweepd_config *c, const char *name, const char *cwd, double time_limit,
                  char *const *argv, char ***out, char *msg, size_t msglen)
{
    argvec a = {0};
    if (c->launcher == LAUNCH_SLURM) {
        srun_options(&a, c, name, cwd, time_limit);
        av_add(&a, "--");
    }
    for (char *const *p = argv; *p; p++)
        av_add(&a, *p);
    if (a.oom || !a.v) {
        launcher_argv_free(a.v);
        *out = NULL;
        return err_set(msg, msglen, ERR_NOMEM, "out of memory building the command of %s", name);
    }
    *out = a.v;
    return 0;
}

/* ---- stop signals ---------------------------------------------------- */

static const char *signal_arg(int sig)
{
    return sig == SIGKILL ? "--signal=KILL" : sig == SIGINT ? "--signal=INT" : "--signal=TERM";
}

/* One scancel in flight: freed once its handle is closed. */
typedef struct {
    uv_process_t h; // the scancel process
    char what[192]; // "scancel --signal=TERM --name=NAME", for the log
} scancel_req;

static void scancel_closed(uv_handle_t *h)
{
    free(h->data);
}

static void scancel_exit(uv_process_t *h, int64_t status, int sig)
{
    scancel_req *r = h->data;
    if (status != 0 || sig != 0)
        log_warn("%s: exit status %lld%s", r->what, (long long)status,
                 sig ? " (killed by a signal)" : "");
    uv_close((uv_handle_t *)h, scancel_closed);
}

void launcher_signal(uv_loop_t *loop, const char *name, int sig)
{
    scancel_req *r = calloc(1, sizeof *r);
    if (!r) {
        log_error("out of memory: cannot signal Slurm step %s", name);
        return;
    }
    char namearg[128];
    snprintf(namearg, sizeof namearg, "--name=%s", name);
    snprintf(r->what, sizeof r->what, "scancel %s %s", signal_arg(sig), namearg);
    char *argv[] = {"scancel", (char *)signal_arg(sig), namearg, NULL};
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE}, {.flags = UV_IGNORE}, {.flags = UV_INHERIT_FD, .data.fd = 2}};
    uv_process_options_t o = {
        .file = argv[0], .args = argv, .exit_cb = scancel_exit, .stdio_count = 3, .stdio = stdio};
    r->h.data = r;
    int rc = uv_spawn(loop, &r->h, &o);
    if (rc != 0) {
        log_error("%s: cannot start: %s", r->what, uv_strerror(rc));
        uv_close((uv_handle_t *)&r->h, scancel_closed);
        return;
    }
    log_info("%s", r->what);
}

/* ---- exit statuses --------------------------------------------------- */

launch_exit launcher_exit(const sweepd_config *c, int64_t status, int *sig, bool asked_stop,
                          bool done_seen)
{
    if (c->launcher != LAUNCH_SLURM || *sig != 0) return LAUNCH_EXIT_WORKER;
    if (status > 128 && status <= 128 + 64) {
        *sig = (int)(status - 128);
        return LAUNCH_EXIT_SIGNAL;
    }
    bool worker_code = status == WEXIT_OK || (status >= WEXIT_SPEC && status <= WEXIT_NOSPACE);
    if (!worker_code) return LAUNCH_EXIT_CLUSTER;
    if (status == WEXIT_OK && !done_seen) return LAUNCH_EXIT_CLUSTER;
    if (status == WEXIT_STOPPED && !asked_stop) return LAUNCH_EXIT_CLUSTER;
    return LAUNCH_EXIT_WORKER;
}

/* ---- start-up commands ----------------------------------------------- */

/* Runs ARGV (PATH lookup) with stdout and stderr into OUT (N bytes, always
 * terminated; the rest is read and dropped), killing it after
 * CAPTURE_DEADLINE seconds. The command runs in a process group of its own,
 * and the whole group is killed, so a child it left behind cannot hold the
 * pipe open; whatever still writes to it is not read for more than a second
 * past the deadline. Returns its exit status, 127 when it could not be run,
 * 128+N when killed by signal N, or -1 when no process could be made. */
static int run_capture(char *const argv[], char *out, size_t n)
{
    int pfd[2];
    out[0] = 0;
    if (pipe2(pfd, O_CLOEXEC) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC); // its dup2 copy stays open
        if (devnull >= 0) dup2(devnull, 0);
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(pfd[1]);
    setpgid(pid, pid); // also here, so the group exists before any kill below
    size_t used = 0;
    double limit = CAPTURE_DEADLINE;
    const char *env = getenv("SWEEP_CAPTURE_DEADLINE");
    if (env && *env) {
        char *end;
        double v = strtod(env, &end);
        if (*end == 0 && v > 0 && v < 86400) limit = v;
    }
    double deadline = time_mono() + limit;
    bool killed = false;
    for (;;) {
        double left = deadline - time_mono();
        if (left <= 0 && !killed) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            killed = true;
        }
        if (killed && left < -1.0) break; // something outside the group still writes
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        int pr = poll(&p, 1, killed ? 1000 : (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) {
            if (killed) break;
            continue;
        }
        char buf[4096];
        ssize_t r = read(pfd[0], buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        size_t take = used + 1 < n ? n - 1 - used : 0;
        if (take > (size_t)r) take = (size_t)r;
        memcpy(out + used, buf, take);
        used += take;
        out[used] = 0;
    }
    close(pfd[0]);
    int st = 0;
    pid_t w;
    while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR) {
    }
    if (w < 0) return -1; // not reaped (ECHILD): ST holds no status
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The first line of TEXT, at most 300 bytes, for a message. */
static const char *first_line(const char *text, char *buf, size_t n)
{
    size_t len = strcspn(text, "\n");
    snprintf(buf, n, "%.*s", (int)(len < 300 ? len : 300), text);
    return buf;
}

/* Runs ARGV and says so in MSG when it cannot be run at all. */
static int need_command(char *const argv[], char *msg, size_t msglen)
{
    char out[512];
    int st = run_capture(argv, out, sizeof out);
    if (st == 0) return 0;
    if (st == 127)
        return err_set(msg, msglen, ERR_NOTFOUND,
                       "launcher = slurm: cannot run %s (not in PATH; install Slurm's client"
                       " commands, Debian package slurm-client, or put them in PATH)",
                       argv[0]);
    char line[320];
    return err_set(msg, msglen, ERR_IO, "launcher = slurm: %s %s failed (exit status %d): %s",
                   argv[0], argv[1], st, first_line(out, line, sizeof line));
}

/* srun, scancel and squeue run (their --version). */
static int need_commands(char *msg, size_t msglen)
{
    static const char *const cmds[] = {"srun", "scancel", "squeue"};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        char *argv[] = {(char *)cmds[i], "--version", NULL};
        int rc = need_command(argv, msg, msglen);
        if (rc) return rc;
    }
    return 0;
}

int launcher_check(const sweepd_config *c, char *msg, size_t msglen)
{
    if (c->launcher != LAUNCH_SLURM) return 0;
    int rc0 = need_commands(msg, msglen);
    if (rc0) return rc0;
    /* A token only this start knows, in a file of the state directory. */
    char path[PATH_MAX], token[64];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(token, sizeof token, "sweepd-%d-%lld-%ld", (int)getpid(), (long long)ts.tv_sec,
             ts.tv_nsec);
    snprintf(path, sizeof path, "%s/slurm-check-%d", c->state_dir, (int)getpid());
    FILE *f = fopen(path, "w");
    if (!f || fprintf(f, "%s\n", token) < 0 || fclose(f) != 0)
        return err_set_errno(msg, msglen, ERR_IO, errno, "launcher = slurm: cannot write %s", path);
    argvec a = {0};
    char name[64];
    snprintf(name, sizeof name, "sweepd-check-%d", (int)getpid());
    srun_options(&a, c, name, NULL, 0);
    av_addf(&a, "--immediate=%d", CHECK_IMMEDIATE);
    av_add(&a, "--");
    av_add(&a, "cat");
    av_add(&a, path);
    int rc = 0;
    if (a.oom) {
        rc = err_set(msg, msglen, ERR_NOMEM, "out of memory");
        goto out;
    }
    char out[4096], line[320];
    int st = run_capture(a.v, out, sizeof out);
    if (st != 0 && strstr(out, "nable to allocate resources") && strstr(out, "mmediate")) {
        log_warn("launcher = slurm: no resources within %d s to check that %s is shared with the"
                 " compute nodes; starting without the check",
                 CHECK_IMMEDIATE, c->state_dir);
    } else if (!strstr(out, token) && (st == 0 || strstr(out, path))) {
        rc = err_set(msg, msglen, ERR_INVALID,
                     "launcher = slurm: state_dir %s is not shared with the compute nodes (a"
                     " file written there was not read back by srun: %s); put state_dir on a"
                     " file system every node mounts at the same path",
                     c->state_dir, first_line(out, line, sizeof line));
    } else if (st != 0) {
        rc = err_set(msg, msglen, ERR_IO,
                     "launcher = slurm: the check step (srun ... cat %s) failed with exit status"
                     " %d: %s (check slurm_partition, slurm_account, slurm_mem_per_trial and"
                     " slurm_extra_args)",
                     path, st, first_line(out, line, sizeof line));
    } else {
        log_info("launcher = slurm: %s is shared with the compute nodes", c->state_dir);
    }
out:
    unlink(path);
    launcher_argv_free(a.v);
    return rc;
}

/* The Slurm jobs of this state directory, from `squeue`: ids and states. */
typedef struct {
    struct step {
        char id[32];   // Slurm job id
        bool running;  // RUNNING (else pending or ending)
        char name[96]; // job name, for the log
    } * v;             // the jobs (owned)
    size_t n, cap;     // entries used, allocated
} steps;

/* Lists this user's sweepd-* jobs whose working directory is under
 * STATE/trials/ into S. 0 or ERR_IO (MSG). */
static int list_steps(const char *state, steps *s, char *msg, size_t msglen)
{
    char uid[32], real[PATH_MAX], prefix[PATH_MAX + 16];
    snprintf(uid, sizeof uid, "--user=%d", (int)getuid());
    snprintf(prefix, sizeof prefix, "%s/trials/", realpath(state, real) ? real : state);
    char *argv[] = {"squeue", "--noheader", uid, "--format=%i|%T|%j|%Z", NULL};
    static char out[1 << 20];
    int st = run_capture(argv, out, sizeof out);
    char line[320];
    if (st != 0)
        return err_set(msg, msglen, ERR_IO, "launcher = slurm: squeue failed (exit status %d): %s",
                       st, first_line(out, line, sizeof line));
    s->n = 0;
    for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n")) {
        char *f[4] = {l, NULL, NULL, NULL};
        for (int i = 1; i < 4 && f[i - 1]; i++) {
            char *bar = strchr(f[i - 1], '|');
            if (bar) *bar = 0;
            f[i] = bar ? bar + 1 : NULL;
        }
        if (!f[3] || strncmp(f[2], "sweepd-", 7) != 0) continue;
        size_t pl = strlen(prefix);
        if (strncmp(f[3], prefix, pl) != 0 && strncmp(f[3], prefix, pl - 1) != 0) continue;
        struct step *nv = grow_array(s->v, s->n + 1, &s->cap, sizeof *s->v, 8);
        if (!nv) return err_set(msg, msglen, ERR_NOMEM, "out of memory");
        s->v = nv;
        snprintf(s->v[s->n].id, sizeof s->v[s->n].id, "%s", f[0]);
        snprintf(s->v[s->n].name, sizeof s->v[s->n].name, "%s", f[2]);
        s->v[s->n++].running = !strcmp(f[1], "RUNNING");
    }
    return 0;
}

/* scancel SIGARG (NULL: cancel outright) job ST. */
static void scancel_job(const struct step *st, const char *sigarg)
{
    char out[512], line[320];
    char *argv[] = {"scancel", (char *)(sigarg ? sigarg : st->id), sigarg ? (char *)st->id : NULL,
                    NULL};
    int rc = run_capture(argv, out, sizeof out);
    if (rc != 0)
        log_warn("scancel %s %s: exit status %d: %s", sigarg ? sigarg : "", st->id, rc,
                 first_line(out, line, sizeof line));
}

int launcher_recover(const sweepd_config *c, double grace, char *msg, size_t msglen)
{
    if (c->launcher != LAUNCH_SLURM) return 0;
    steps s = {0};
    int rc = need_commands(msg, msglen);
    if (rc == 0) rc = list_steps(c->state_dir, &s, msg, msglen);
    if (rc || s.n == 0) goto out;
    int found = (int)s.n;
    for (size_t i = 0; i < s.n; i++)
        log_warn("stopping Slurm job %s (%s, %s) left by the previous daemon", s.v[i].id,
                 s.v[i].name, s.v[i].running ? "running" : "pending");
    /* Running steps checkpoint on SIGTERM; pending ones have nothing to lose. */
    for (size_t i = 0; i < s.n; i++)
        scancel_job(&s.v[i], s.v[i].running ? "--signal=TERM" : NULL);
    double until = time_mono() + grace;
    while (s.n > 0 && time_mono() < until) {
        nanosleep(&(struct timespec){0, 200 * 1000 * 1000}, NULL);
        if ((rc = list_steps(c->state_dir, &s, msg, msglen))) goto out;
    }
    if (s.n > 0) {
        for (size_t i = 0; i < s.n; i++)
            log_warn("Slurm job %s (%s) ignored SIGTERM for %g s; killing it", s.v[i].id,
                     s.v[i].name, grace);
        for (size_t i = 0; i < s.n; i++) {
            scancel_job(&s.v[i], "--signal=KILL");
            scancel_job(&s.v[i], NULL);
        }
    }
    rc = found;
out:
    free(s.v);
    return rc;
}
