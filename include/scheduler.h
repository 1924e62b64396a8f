/* scheduler (daemon/sched.c, daemon/runner.c) — the daemon's in-memory state: active jobs and their trials, the
 * trial and job state machines, slot scheduling, worker outcomes, and the one
 * periodic timer.
 *
 * Trial states: queued -> running -> completed | failed | cancelled | pruned,
 * and running -> queued when a crashed or stopped attempt is retried (or the
 * daemon shuts down). Every change goes through one setter that logs it,
 * records it in the database (queued write) and tells `watch` clients.
 *
 * Scheduling: cfg->workers slots in total; a job never runs more than its
 * max_parallel trials at once; jobs are served in submission order, taking
 * turns (round robin) when several have queued trials; within a job trials
 * start in number order. The test-set evaluation at the end of a job takes a
 * slot too. The memory kept per trial is a few bytes (id, number, state,
 * attempt), so 100,000-trial jobs are cheap; finished jobs are dropped from
 * memory and answered from the database. */
#ifndef SWEEP_SCHEDULER_H
#define SWEEP_SCHEDULER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "config.h"
#include "ndjson.h"
#include "store.h"

typedef enum {
    TS_QUEUED = 0,
    TS_RUNNING,
    TS_COMPLETED,
    TS_FAILED,
    TS_CANCELLED,
    TS_PRUNED,
    TS_COUNT
} trial_state;

typedef enum { JS_QUEUED = 0, JS_RUNNING, JS_DONE, JS_CANCELLED, JS_FAILED } job_state;

const char *trial_state_name(trial_state s);
const char *job_state_name(job_state s);
bool trial_state_terminal(trial_state s);

struct proc;
struct sweepd;

typedef struct {
    int64_t id;         // trials.id
    int32_t number;     // trials.number
    uint8_t state;      // trial_state
    uint8_t io_wait;    // its files could not be written (disk full); retried quietly
    uint16_t attempt;   // trials.attempt (0 = first run)
    struct proc *proc;  // the running worker, NULL unless running
} strial;

typedef struct sjob {
    int64_t id;              // jobs.id
    char *name;              // jobs.name (owned)
    job_state state;         // current job state
    uid_t uid;               // submitted_uid
    int max_parallel;        // running trials allowed at once
    double trial_timeout;    // seconds, 0 = none
    int max_retries;         // retries after a crash or stop
    char metric[32];         // objective metric column
    bool maximize;           // objective goal
    char *test;              // data.test or NULL (owned)
    json_t *tmpl;            // trial spec parts shared by all trials (owned reference)
    strial *trials;          // n trials by number (owned)
    size_t n;                // number of trials
    size_t cursor;           // no queued trial below this index
    size_t counts[TS_COUNT]; // trials per state
    bool cancelling;         // cancel requested: nothing new starts
    bool eval_pending;       // test evaluation wanted when a slot frees
    bool eval_done;          // test evaluation finished (or not applicable)
    bool eval_io_wait;       // its files could not be written; retried (logged once)
    struct proc *eval;       // the running evaluation, if any
    char *error;             // job-level error to store when it ends (owned)
    bool has_best;           // best_* describe a completed trial
    int64_t best_id;         // best completed trial's id
    int best_number;         // its number
    double best_value;       // its objective value
    struct sjob *next;       // next active job, in submission order
} sjob;

/* Why a worker is being stopped. */
typedef enum { STOP_NONE = 0, STOP_TIMEOUT, STOP_CANCEL, STOP_SHUTDOWN } stop_reason;

typedef struct proc {
    uv_process_t process;  // the worker process
    struct sweepd *d;      // owner
    sjob *job;             // job of the trial (or of the evaluation)
    strial *trial;         // the trial run, or the best trial for an evaluation
    bool is_eval;          // `eval` instead of `run`
    int pid;               // process id (= process group id)
    double started;        // time_mono() at spawn
    stop_reason stop;      // set when the daemon signalled it
    double term_at;        // time_mono() of the SIGTERM, 0 if none
    bool killed;           // SIGKILL sent
    bool exited;           // exit callback seen
    double exit_at;        // time_mono() of exit
    int64_t exit_status;   // exit status from libuv
    int term_signal;       // signal that ended it, 0 if none
    bool closing;          // the process handle is being closed (frees P)
    int evfd;              // read end of the events file (stdout), -1 if none
    int outfd;             // write end handed to the worker, -1 after spawn
    bool done_seen;        // a "done" event arrived
    double done_value;     // the objective value it reported (NaN if none)
    char *last_error;      // message of the last "error" event (owned)
    json_t *eval_result;   // last JSON object printed by `eval` (owned)
    unsigned bad_lines;    // non-JSON / oversized lines seen
    unsigned long_lines;   // oversized lines seen
    ndjson_buf nb;         // line framing of the events file
    uv_work_t work;        // threadpool request preparing the trial's files
    bool preparing;        // files being prepared; no process yet
    bool linked;           // in d->procs
    bool spawned;          // uv_spawn succeeded (the handle must be closed)
    bool spawn_failed;     // preparation or uv_spawn failed (reason in last_error)
    bool prep_retry;       // preparation failed for lack of space (ENOSPC, EDQUOT, EFBIG,
                           // EIO): the trial goes back to queued, no attempt used
    int prep_errno;        // errno of the failed preparation step, 0 if none
    int64_t trial_id;      // copy of trial->id for the threadpool
    unsigned attempt;      // copy of trial->attempt for the threadpool
    int logfd;             // log file prepared for stderr, -1 if none
    char *spec_text;       // trial.json contents until written (owned)
    char out_dir[4096];    // <state_dir>/trials/<id>
    char log_path[4096];   // <state_dir>/logs/trial-<id>.log
    char prep_error[512];  // why preparation failed, "" if it did not
    struct proc *next, *prev; // all live processes
} proc;

typedef void (*sched_emit_fn)(struct sweepd *d, int64_t job_id, json_t *ev);

typedef struct sweepd {
    uv_loop_t *loop;         // the event loop
    sweepd_config *cfg;      // settings (borrowed)
    store *st;               // database
    sjob *jobs;              // active jobs, oldest first (owned list)
    sjob *rr;                // the job that got the last slot (round robin)
    proc *procs;             // live worker processes (owned list)
    int running;             // slots in use
    bool shutting_down;      // stop requested
    bool stopped;            // loop asked to stop
    bool urgent;             // a state change waits in the write queue
    bool db_busy;            // the last flush met a locked or full database (retry at the tick)
    double hold_until;       // time_mono() before which no trial starts (files could not be
                             // written for lack of space; see sched_on_finished)
    uv_timer_t timer;        // the periodic timer
    uv_check_t flush;        // commits queued writes after each loop iteration
    double started;          // time_mono() at start
    sched_emit_fn emit;      // sends watch lines (server.c); may be NULL
    bool (*watched)(struct sweepd *d, int64_t job_id); // any watcher of job? may be NULL
    void (*on_stopped)(struct sweepd *d); // called once when shutdown completes
    void *server;            // server state (server.c)
    uint64_t trials_finished; // trials that reached a terminal state since start
    void (*on_tick)(struct sweepd *d); // more periodic work, run by the timer (server.c:
                                       // closes idle connections); may be NULL
} sweepd;

/* Sets up D's timer and flush handles on LOOP. */
int sched_init(sweepd *d, uv_loop_t *loop, sweepd_config *cfg, store *st);
/* Frees every job and closes handles (call after the loop has stopped all processes). */
void sched_free(sweepd *d);

/* Adds a freshly stored job: JS expanded, TRIAL_IDS its row ids. Takes no
 * ownership. Starts trials if slots are free. */
int sched_add_job(sweepd *d, const jobspec *js, int64_t job_id, const int64_t *trial_ids,
                  uid_t uid, int max_parallel, double trial_timeout, int max_retries);
/* Loads active jobs (queued/running) from the database, after recovery. */
int sched_load(sweepd *d, char *msg, size_t msglen);
sjob *sched_find_job(sweepd *d, int64_t job_id);
/* Cancels an active job: queued trials become cancelled, running ones get
 * SIGTERM. Fills the counts. */
int sched_cancel(sweepd *d, sjob *j, int *dequeued, int *stopping);
/* Starts queued trials while slots are free. */
void sched_run(sweepd *d);
/* Graceful stop: no new trials, SIGTERM to every worker; when all have
 * exited the loop handles are closed and on_stopped is called. */
void sched_shutdown(sweepd *d);
/* Totals over active jobs. */
void sched_totals(sweepd *d, size_t *queued, size_t *running);

/* runner.c: spawns `worker run out_dir/trial.json` for T of J (or `worker
 * eval` when EVAL), wiring stdout to sched's event handler. */
int runner_start_trial(sweepd *d, sjob *j, strial *t, char *msg, size_t msglen);
int runner_start_eval(sweepd *d, sjob *j, strial *best, const char *out_dir, char *msg,
                      size_t msglen);
/* runner_start_eval returns ERR_BUSY when its files could not be created for
 * lack of space (try again later). True for the errnos meaning "no space
 * (yet)": ENOSPC, EDQUOT, EFBIG (file-size limit) and EIO. */
bool runner_errno_is_space(int e);
/* Reads what P's worker appended to its events file since the last call. */
void runner_drain(proc *p);
/* Sends SIG to the process group of P (no-op after exit). */
void runner_signal(proc *p, int sig);
/* Unlinks P and closes its handle; P is freed when it is closed. */
void runner_release(proc *p);
/* Reads field 22 (start time in clock ticks) of /proc/PID/stat; 0 if unknown. */
uint64_t runner_proc_start_time(int pid);

/* Records worker event EV of trial TRIAL_ID in the database (queued writes):
 * epoch -> trial_metrics row (INSERT OR REPLACE, so a replayed or resumed
 * epoch never duplicates) and last_epoch; checkpoint -> checkpoint_path;
 * done -> best_epoch and best val metrics; error -> error. Other events are
 * not stored. Used for live events and by recovery's replay. */
void sched_store_event(store *st, int64_t trial_id, const json_t *ev);

/* sched.c callbacks used by runner.c. */
void sched_on_line(proc *p, char *line, size_t len);
void sched_on_finished(proc *p);
/* The worker of trial proc P has started (pid known). */
void sched_on_spawned(proc *p);

/* exit_status given to a trial stopped before its worker was started. */
#define WEXIT_STOPPED_CODE 7

#endif
