/* runner — one child process on the daemon's event loop: its files, its
 * spawn, its JSON-line output and its signals. It knows processes, not
 * trials: nothing here reads the database or judges an outcome.
 *
 * Design note. Who owns what in the daemon:
 * - runner (this module) owns a process: it prepares the files the child
 *   needs (a directory, one file written atomically, a log file for stderr
 *   headed by one line, an output file for stdout), in the libuv threadpool
 *   when asked so a slow disk never stalls the loop; spawns argv (never a
 *   shell) detached in its own process group; reads the output file as it
 *   grows and hands it line by line to on_line; signals the process group;
 *   and sends SIGKILL once a SIGTERM has been ignored for a grace period.
 *   Output goes through a file rather than a pipe so that nothing is lost
 *   when the daemon itself dies: a line the child wrote is on disk.
 * - the scheduler (sched.c) owns trials and decisions: it builds the trial
 *   spec and the argv, embeds one runner_proc per running trial or test-set
 *   evaluation, and decides what an exit means (scheduler.h).
 * - the store (store.c) owns every SQL statement (store.h).
 *
 * Life of a handle: runner_init, then runner_start (callbacks: on_spawn once
 * the process runs, on_line for each line of its output, on_exit once it has
 * ended or could not be started, with its output read to the end), then
 * runner_release, after which on_closed says the memory may be freed. All
 * calls are made on the loop's thread. */
#ifndef SWEEP_RUNNER_H
#define SWEEP_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ndjson.h"

/* Longest output line handed to on_line; longer ones arrive as LINE NULL. */
#define RUNNER_MAX_LINE (1u << 20)

typedef struct runner_proc runner_proc;

/* Callbacks; UD is runner_proc.ud. Any may be NULL. */
typedef struct {
    void (*on_spawn)(runner_proc *rp, void *ud); // the process runs (rp->pid known)
    /* One output line without its "\n" (LINE writable, valid for the call),
     * or LINE NULL and LEN its size for a line over RUNNER_MAX_LINE. */
    void (*on_line)(runner_proc *rp, char *line, size_t len, void *ud);
    /* It has ended (exit_status, term_signal), or it was never started
     * (start_failed, or stopped before the spawn: not_started); every line
     * has been handed to on_line first. Called once per runner_start that
     * returned 0. */
    void (*on_exit)(runner_proc *rp, void *ud);
    void (*on_closed)(runner_proc *rp, void *ud); // after runner_release: free the memory now
    /* A signal SIG for the process is due (runner_signal, runner_terminate,
     * the grace period's SIGKILL): return true when it was delivered another
     * way (a launcher that reaches the worker through its own command), false
     * to have the runner signal the process group as usual. */
    bool (*on_signal)(runner_proc *rp, int sig, void *ud);
} runner_callbacks;

/* What to prepare before the spawn; every path is absolute. NULL skips a
 * step. runner_start copies all of it. */
typedef struct {
    const char *dir;       // created first (mode 0750; an existing one is fine)
    const char *file_path; // FILE_TEXT is written here (through FILE_PATH.tmp and a rename)
    const char *file_text; // its contents
    const char *log_path;  // the child's stderr is appended here, after one header line
    const char *log_what;  // the header says "==== sweepd <time>: <log_what> ====" (not NULL)
    const char *out_path;  // the child's stdout is appended here and read back as lines
    bool out_truncate;     // empty OUT_PATH first
} runner_files;

struct runner_proc {
    uv_process_t process; // the libuv process handle
    uv_work_t work;       // threadpool request preparing the files
    uv_loop_t *loop;      // the loop it runs on
    runner_callbacks cb;  // what to tell its owner
    void *ud;             // the owner's pointer, passed to every callback
    char **argv;          // command line, NULL-terminated (owned copies)
    char *cwd;            // working directory or NULL (owned)
    char *dir;            // runner_files copies (owned; NULL = skip the step)
    char *file_path;      // ...
    char *file_text;      // freed once written
    char *log_path;       // ...
    char *log_what;       // ...
    char *out_path;       // ...
    bool out_truncate;    // ...
    int pid;              // process id (= process group id), 0 before the spawn
    double started;       // time_mono() at the spawn
    bool preparing;       // files being prepared in the threadpool; no process yet
    bool spawned;         // uv_spawn succeeded (the handle must be closed)
    bool closing;         // the handle is being closed; on_closed follows
    bool closed;          // the handle's close callback has run
    bool released;        // runner_release was called
    bool exited;          // on_exit was called (or is being called)
    bool start_failed;    // preparation or the spawn failed (reason in error, errno in eno)
    bool not_started;     // stopped (runner_terminate) while preparing: never spawned
    int eno;              // errno of the failed preparation step, 0 if none
    char error[512];      // why the start failed, "" if it did not
    double exit_at;       // time_mono() of the exit
    int64_t exit_status;  // exit status from libuv (-1 when never started)
    int term_signal;      // signal that ended it, 0 if none
    double term_at;       // time_mono() of the first SIGTERM, 0 if none
    bool killed;          // SIGKILL sent after the grace period
    int evfd;             // read end of the output file, -1 if none
    int outfd;            // write end handed to the child, -1 after the spawn
    int logfd;            // log file handed to the child as stderr, -1 after the spawn
    ndjson_buf nb;        // line framing of the output file
};

/* Sets RP up for LOOP with callbacks CB and UD (no process yet). */
void runner_init(runner_proc *rp, uv_loop_t *loop, const runner_callbacks *cb, void *ud);
/* Prepares FILES and spawns ARGV (argv[0] a path; NULL-terminated) in CWD
 * with stdin closed. ASYNC: the files are prepared in the threadpool and the
 * process spawned later on the loop (a failure then arrives as on_exit with
 * start_failed); otherwise both happen now and a failure is returned. Returns
 * 0, ERR_NOMEM, ERR_INTERNAL (threadpool) or ERR_IO with the reason in msg
 * (and rp->eno). After a failure the caller calls runner_release. */
int runner_start(runner_proc *rp, char *const *argv, const char *cwd, const runner_files *files,
                 bool async, char *msg, size_t msglen);
/* Reads what the child appended to its output since the last call. */
void runner_drain(runner_proc *rp);
/* Sends SIG to the process group of RP (no-op before the spawn or after the
 * exit), unless the on_signal callback delivers it. */
void runner_signal(runner_proc *rp, int sig);
/* Asks RP to stop: SIGTERM now (the grace period counts from the first one);
 * while it is being prepared, it is not spawned at all (on_exit with
 * not_started). */
void runner_terminate(runner_proc *rp);
/* Sends SIGKILL when a SIGTERM has been ignored for more than GRACE seconds
 * at time_mono() NOW (logged). True when it did. */
bool runner_enforce_grace(runner_proc *rp, double now, double grace);
/* Ends the handle: on_closed is called once it is closed (at once when no
 * process was spawned). RP must not be used afterwards. */
void runner_release(runner_proc *rp);

/* True for the errnos meaning "no space (yet)": ENOSPC, EDQUOT, EFBIG
 * (file-size limit) and EIO. */
bool runner_errno_is_space(int e);
/* Reads field 22 (start time in clock ticks) of /proc/PID/stat; 0 if unknown.
 * With the pid it identifies a process (a recycled pid has another). */
uint64_t runner_proc_start_time(int pid);

#endif
