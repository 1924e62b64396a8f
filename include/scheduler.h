/* scheduler (daemon/sched.c) — the daemon's in-memory state: active jobs and
 * their trials, the trial and job state machines, slot scheduling, worker
 * outcomes, and the one periodic timer. Processes are runner.h handles
 * embedded in struct proc; every SQL statement is the store's (store.h).
 *
 * Trial states: queued -> running -> completed | failed | cancelled | pruned
 * (pruned: a pruner of the job stopped it, prune.h; final, never retried),
 * queued -> cancelled | failed, and running -> queued when a crashed or
 * stopped attempt is retried (or the daemon shuts down); the table is
 * trial_transition_allowed (its diagram is in sched.c). Every change goes
 * through one setter that checks it, logs it, records it in the database
 * (queued write) and tells `watch` clients.
 *
 * Scheduling: cfg->workers slots in total; a job never runs more than its
 * max_parallel trials at once; jobs are served in submission order, taking
 * turns (round robin) when several have queued trials; within a job trials
 * start in number order. The test-set evaluation at the end of a job takes a
 * slot too. The memory kept per trial is a few bytes (id, number, state,
 * attempt), so 100,000-trial jobs are cheap; finished jobs are dropped from
 * memory and answered from the database.
 *
 * Strategy tpe (README.md "Strategies"): when a tpe job may start a trial
 * and has none queued but fewer trials than planned, the scheduler proposes
 * the next one (suggest.h) from the job's and its warm-start jobs' trials in
 * finishing order, stores it (committed) and starts it in the same turn; a
 * proposal that cannot be stored now (database busy) is tried again a
 * moment later while the other jobs are served. */
#ifndef SWEEP_SCHEDULER_H
#define SWEEP_SCHEDULER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "config.h"
#include "events_check.h"
#include "ndjson.h"
#include "prune.h"
#include "runner.h"
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

/* Steps of one trial the cluster may fail (launcher.h: LAUNCH_EXIT_CLUSTER)
 * before a failure counts as an attempt, in one daemon's life. */
#define SCHED_CLUSTER_RETRIES 3

typedef struct {
    int64_t id;                 // trials.id
    int32_t number;             // trials.number
    uint8_t state;              // trial_state
    uint8_t io_wait : 1;        // its files could not be written (disk full); retried quietly
    uint8_t cluster_faults : 7; // launcher slurm: steps the cluster failed (node failure,
                                // preemption); the first SCHED_CLUSTER_RETRIES use no attempt
    uint16_t attempt;           // trials.attempt (0 = first run)
    struct proc *proc;          // the running worker, NULL unless running
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
    prune_config pruner;     // the job's pruner (prune.h); kind PRUNE_NONE for none
    char *test;              // data.test or NULL (owned)
    json_t *tmpl;            // trial spec parts shared by all trials (owned reference)
    strial *trials;          // n trials by number (owned)
    size_t n;                // number of trials
    size_t cursor;           // no queued trial below this index
    size_t counts[TS_COUNT]; // trials per state
    bool cancelling;         // cancel requested: nothing new starts
    bool cancel_pending;     // the cancel is stored (jobs.cancel_requested_at)
    bool eval_pending;       // test evaluation wanted when a slot frees
    bool eval_done;          // test evaluation finished (or not applicable)
    bool eval_io_wait;       // its files could not be written; retried (logged once)
    struct proc *eval;       // the running evaluation, if any
    char *error;             // job-level error to store when it ends (owned)
    bool has_best;           // best_* describe a completed trial
    int64_t best_id;         // best completed trial's id
    int best_number;         // its number
    double best_value;       // its objective value
    size_t planned;          // trials the job runs (jobs.trials_total); room in trials
    struct sched_tpe *tpe;   // strategy tpe: its proposal state (sched.c), else NULL
    struct sjob *next;       // next active job, in submission order
} sjob;

/* Why a worker is being stopped. */
typedef enum { STOP_NONE = 0, STOP_TIMEOUT, STOP_CANCEL, STOP_SHUTDOWN, STOP_PRUNE } stop_reason;

/* One running trial or test-set evaluation: the process handle (runner.h)
 * and what the scheduler needs to judge its outcome. */
typedef struct proc {
    runner_proc rp;           // the worker process (its pid, exit status, signals)
    struct sweepd *d;         // owner
    sjob *job;                // job of the trial (or of the evaluation)
    strial *trial;            // the trial run, or the best trial for an evaluation
    bool is_eval;             // `eval` instead of `run`
    stop_reason stop;         // set when the daemon signalled it
    bool done_seen;           // a "done" event arrived
    double done_value;        // the objective value it reported (NaN if none)
    char *last_error;         // message of the last "error" event, or why it did not start (owned)
    int prune_epoch;          // STOP_PRUNE: the epoch of the decision (its last finished epoch)
    char *prune_reason;       // STOP_PRUNE: the pruner's reason with its numbers (owned)
    json_t *eval_result;      // last JSON object printed by `eval` (owned)
    unsigned bad_lines;       // non-JSON / oversized lines seen
    unsigned long_lines;      // oversized lines seen
    events_check check;       // the contract check of a trial's event lines (events_check.h)
    char *feat_key;           // the trial's feature cache key (sched.c feature_key), or NULL
                              // when its features are not cached (owned)
    bool feat_ready;          // its worker has its features (a start with "reused" or "off",
                              // or a progress/epoch event): no build of feat_key in progress
    bool linked;              // in d->procs
    struct proc *next, *prev; // all live processes
} proc;

typedef void (*sched_emit_fn)(struct sweepd *d, int64_t job_id, json_t *ev);

typedef struct sweepd {
    uv_loop_t *loop;    // the event loop
    sweepd_config *cfg; // settings (borrowed)
    store *st;          // database
    sjob *jobs;         // active jobs, oldest first (owned list)
    sjob *rr;           // the job that got the last slot (round robin)
    proc *procs;        // live worker processes (owned list)
    int running;        // slots in use
    bool shutting_down; // stop requested
    bool stopped;       // loop asked to stop
    bool urgent;        // a state change waits in the write queue
    bool db_busy;       // the last flush met a locked or full database (retry at the tick)
    double hold_until;  // time_mono() before which no trial starts (files could not be
                        // written for lack of space; see proc_on_exit in sched.c)
    bool space_wait;    // a worker exited WEXIT_NOSPACE: starts wait until space_need bytes
                        // are free on the state directory (probed when hold_until passes)
    size_t space_need;  // bytes wanted free before trials start again (0 when not waiting)
    double warned_at;   // time_mono() of the last "waiting for space" warning, 0 = none
    uv_timer_t timer;   // the periodic timer
    uv_check_t flush;   // commits queued writes after each loop iteration
    double started;     // time_mono() at start
    sched_emit_fn emit; // sends watch lines (server.c); may be NULL
    bool (*watched)(struct sweepd *d, int64_t job_id); // any watcher of job? may be NULL
    void (*on_stopped)(struct sweepd *d);              // called once when shutdown completes
    void *server;                                      // server state (server.c)
    uint64_t trials_finished;          // trials that reached a terminal state since start
    void (*on_tick)(struct sweepd *d); // more periodic work, run by the timer (server.c:
                                       // closes idle connections); may be NULL
} sweepd;

/* Sets up D's timer and flush handles on LOOP. */
int sched_init(sweepd *d, uv_loop_t *loop, sweepd_config *cfg, store *st);
/* Frees every job and closes handles (call after the loop has stopped all processes). */
void sched_free(sweepd *d);

/* Adds a freshly stored job: JS expanded, TRIAL_IDS its row ids. Takes no
 * ownership. Starts trials if slots are free. */
int sched_add_job(sweepd *d, const jobspec *js, int64_t job_id, const int64_t *trial_ids, uid_t uid,
                  int max_parallel, double trial_timeout, int max_retries);
/* Checks the warm_start jobs of JS (JOB as submitted): each must exist and
 * have the same "space" as JOB. 0, or ERR_NOTFOUND / ERR_INVALID with a
 * message naming the key ("warm_start.jobs[1]: no job 9"). */
int sched_check_warm_start(sweepd *d, const json_t *job, const jobspec *js, char *msg,
                           size_t msglen);
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

/* One table of allowed trial transitions (sched.c, next to the diagram).
 * True when FROM -> TO is allowed. */
bool trial_transition_allowed(trial_state from, trial_state to);
/* Checks FROM -> TO against the table; an illegal one is an invariant
 * failure: with NDEBUG undefined (the default build, and the tests') it
 * aborts naming FILE:LINE; with -DNDEBUG it logs an error and returns false
 * (the caller refuses the change). True when allowed. */
bool trial_transition_check(trial_state from, trial_state to, const char *file, int line);
#define TRIAL_TRANSITION_CHECK(from, to) trial_transition_check((from), (to), __FILE__, __LINE__)

#endif
