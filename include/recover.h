/* recover — crash recovery at daemon start, before any job is scheduled.
 *
 * Trials left `running` by a previous daemon: their worker processes, found
 * by the pid and the process start time stored in the row (so a recycled pid
 * is never signalled), get SIGTERM (a chance to checkpoint), then SIGKILL to
 * the process group after KILL_GRACE seconds (at most 10 s); the trials go
 * back to `queued` with attempt + 1 and resume from their checkpoint. A
 * worker whose pid the rows do not hold (the daemon died before committing
 * it) is found by its standard output, an events file under
 * STATE_DIR/trials/, and stopped the same way. Each
 * interrupted trial's <out_dir>/events.ndjson is replayed first, so events
 * the dead daemon had not yet read or committed are stored; a trial whose
 * last attempt had reported "done" is marked completed instead.
 *
 * Queued trials whose folder (STATE_DIR/trials/<id>/) holds an events file
 * ran while their rows could not be written (a database locked until the
 * previous daemon stopped, so its queued writes were lost): their rows are
 * rebuilt from that file too, and one whose last attempt reported "done" is
 * completed. Replaying is idempotent (epoch rows are keyed by epoch). */
#ifndef SWEEP_RECOVER_H
#define SWEEP_RECOVER_H

#include <stddef.h>

#include "store.h"

/* Returns the number of trials requeued (>= 0) or a negative error code. */
/* (store_trial_event stores the replayed events; the state changes are
 * checked against the scheduler's transition table.) */
int recover_run(store *st, const char *state_dir, double kill_grace, char *msg, size_t msglen);

#endif
