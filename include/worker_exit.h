/* worker_exit — the exit-code contract between sweep-worker and sweepd
 * (README.md "Contract": worker exit codes), in one place for both sides.
 *
 * The worker's commands return one of these as the process exit status
 * (worker_cmds.h); the scheduler (daemon/sched.c) judges a trial's outcome by
 * them: WEXIT_OK completed; WEXIT_SPEC .. WEXIT_NOMEM failed at once (a retry
 * would fail the same way); WEXIT_NOSPACE back to the queue without using an
 * attempt, held until the state directory has space again; WEXIT_STOPPED and
 * any other status (a crash) or a signal: retried while attempts remain. */
#ifndef SWEEP_WORKER_EXIT_H
#define SWEEP_WORKER_EXIT_H

#include <stdbool.h>
#include <stdint.h>

enum worker_exit {
    WEXIT_OK = 0,       // done: the trial (or command) finished
    WEXIT_SPEC = 2,     // bad trial spec or arguments
    WEXIT_DATA = 3,     // data error (unreadable or invalid data set)
    WEXIT_MODEL = 4,    // model error (missing or invalid weights, shape mismatch)
    WEXIT_DIVERGED = 5, // diverged: the loss is not finite
    WEXIT_NOMEM = 6,    // out of memory
    WEXIT_STOPPED = 7,  // stopped by SIGTERM/SIGINT after writing a checkpoint
    WEXIT_NOSPACE = 8,  // a file of the trial could not be written: no space (ENOSPC,
                        // EDQUOT) or the file-size limit (EFBIG); see fileio_err_for_errno
};

/* True for the statuses that end a trial as failed without a retry
 * (WEXIT_SPEC .. WEXIT_NOMEM). Anything else but WEXIT_OK is a crash or a
 * stop, worth another attempt. */
static inline bool worker_exit_is_final_failure(int64_t status)
{
    return status >= WEXIT_SPEC && status <= WEXIT_NOMEM;
}

#endif
