/* launcher — where a worker runs: on this machine (launcher = local, the
 * default) or as a Slurm step on a cluster (launcher = slurm). The scheduler
 * builds a worker's argv as always and hands it here; everything that differs
 * between the two lives in this module: the srun command line, how a stop
 * signal reaches the worker, what an exit status means, the start-up check of
 * the shared state directory and the recovery of steps left by a previous
 * daemon. It knows commands, not trials or SQL.
 *
 * Slurm, in short (README.md "Slurm"):
 * - A trial runs as `srun --unbuffered -n1 -J sweepd-<job>-<trial> --chdir OUT_DIR
 *   --cpus-per-task T [--partition P] [--account A] [--mem M] [--time L] EXTRA...
 *   -- WORKER run SPEC ...` (argv only, no shell): srun stays on the head node as
 *   the daemon's child, its stdout carries the worker's JSON lines into the
 *   events file as a local worker's would, and its exit status is the worker's.
 *   <trial> is the trial's database id (trials.id), <job> the job's.
 * - Stopping: a plain SIGTERM to srun kills the task outright, so SIGTERM goes
 *   to the step through `scancel --signal=TERM --name NAME` (the worker
 *   checkpoints and exits 7, which srun passes on); SIGKILL through
 *   `scancel --signal=KILL` and to srun itself.
 * - Exit statuses: a worker's code (0, 2..8) comes back unchanged; 128+N is a
 *   task killed by signal N; anything else (srun's own 1 for an allocation
 *   that failed), a "stopped" (7) the daemon did not ask for (preemption), and
 *   a 0 without the worker's "done" event (srun reports a node failure with 0)
 *   are the cluster's failures, not the trial's (launcher_exit).
 * - The state directory must be the same on every node: launcher_check writes
 *   a token file there and reads it back through srun.
 * - Recovery: steps of this state directory still in squeue when the daemon
 *   starts were left by the previous one; launcher_recover stops them
 *   gracefully (scancel TERM, then KILL after the grace) before the trials are
 *   requeued and resumed from their checkpoints.
 * Commands (srun, scancel, squeue) are found in PATH; SLURM_CONF and the rest of
 * the environment pass through. */
#ifndef SWEEP_LAUNCHER_H
#define SWEEP_LAUNCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"

/* What an exit status means once the launcher has had its say. */
typedef enum {
    LAUNCH_EXIT_WORKER = 0, // STATUS (and SIG) are the worker's own: judge them as always
    LAUNCH_EXIT_SIGNAL,     // the worker was killed by signal *SIG (srun reports 128+N)
    LAUNCH_EXIT_CLUSTER,    // the cluster failed the step (node failure, preemption, srun error)
} launch_exit;

/* The launcher's name of a process: "sweepd-<job>-<trial>" (or
 * "sweepd-<job>-eval-<trial>" for a test-set evaluation) into BUF. */
void launcher_step_name(char *buf, size_t n, int64_t job, int64_t trial, bool is_eval);

/* The argv to spawn for ARGV (NULL-terminated) under C's launcher, for the
 * process named NAME running in CWD, with TIME_LIMIT seconds (0 = none) before
 * the daemon stops it: a copy of ARGV for local, the srun command line for
 * slurm. *OUT is a new NULL-terminated array of new strings; the caller frees
 * it with launcher_argv_free. 0 or ERR_NOMEM / ERR_INVALID (MSG). */
int launcher_argv(const sweepd_config *c, const char *name, const char *cwd, double time_limit,
                  char *const *argv, char ***out, char *msg, size_t msglen);
void launcher_argv_free(char **argv);

/* Delivers SIG to the step named NAME through scancel, without waiting (the
 * scancel process runs on LOOP; a failure is logged). */
void launcher_signal(uv_loop_t *loop, const char *name, int sig);

/* What exit STATUS / signal *SIG of a worker under C's launcher means.
 * ASKED_STOP: the daemon sent it SIGTERM; DONE_SEEN: it reported "done". For
 * LAUNCH_EXIT_SIGNAL *SIG is set to the task's signal. Local: always
 * LAUNCH_EXIT_WORKER. */
launch_exit launcher_exit(const sweepd_config *c, int64_t status, int *sig, bool asked_stop,
                          bool done_seen);

/* Start-up check for slurm (a no-op for local): srun, scancel and squeue run,
 * and C's state directory is the one the compute nodes see (a token file
 * written there is read back through srun with C's options). Blocking; takes
 * about as long as one srun. 0 or ERR_NOTFOUND / ERR_INVALID / ERR_IO with the
 * reason and what to do in MSG. */
int launcher_check(const sweepd_config *c, char *msg, size_t msglen);

/* Stops the Slurm steps of C's state directory still running (named
 * sweepd-*, working directory under <state_dir>/trials/): SIGTERM through
 * scancel, then SIGKILL for those still there after GRACE seconds. Blocking;
 * for the daemon's start, before recovery requeues their trials. Returns the
 * number of steps found (>= 0), or ERR_IO when squeue cannot be run (MSG). A
 * no-op (0) for local. */
int launcher_recover(const sweepd_config *c, double grace, char *msg, size_t msglen);

#endif
