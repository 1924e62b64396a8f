/* events_check (daemon/events_check.c) — the daemon's check of every event
 * line a worker writes, against the worker contract (README.md "Contract",
 * "Events"), before anything of it is stored or forwarded to `watch`.
 *
 * One events_check per stream: a running worker's stdout (one attempt) or a
 * trial's events file replayed by recovery (every attempt in turn: each
 * `start` begins a new one). events_check_event judges one parsed line; it
 * does no I/O and touches nothing but the state it is given. An event is
 * valid when:
 * - it is an object with a known "event" name: start, progress, epoch,
 *   checkpoint, stopped, done, error;
 * - "t" and every required field of its kind are there with their JSON types
 *   (integers are JSON integers; numbers integers or reals; strings);
 * - values are in range: epoch 1..the trial's epochs (0..epochs for
 *   checkpoint and stopped, which name finished epochs), accuracy, precision,
 *   recall and F1 in [0, 1], losses finite and >= 0, lr finite and >= 0
 *   (a cosine schedule ends close to 0), seconds, t and images/s finite and
 *   >= 0, steps >= 1 and step 0..steps, image and class counts >= 0 (classes
 *   >= 1), start's "trial" the trial's own id, done's "epochs" (when given)
 *   the trial's epochs;
 * - it comes in order: start first (only an error may come before it), epoch
 *   numbers strictly increasing within an attempt (starting after the epoch a
 *   resumed start names in "resumed"), progress only for an epoch after the
 *   last finished one, done only once the trial's last epoch is finished in
 *   this attempt or was before its resume, and nothing after done; a second
 *   start is a new attempt only in a replay (MULTI_ATTEMPT).
 * Fields outside the contract are allowed. A stream whose worker sent
 * EVENTS_CHECK_FAULT_LIMIT invalid events, or one invalid "done", is faulty:
 * the daemon stops that worker and fails the trial with "worker sent invalid
 * events: REASON" (sched.c); events after that are not trusted either
 * (events_check_event rejects them all) until a replay's next start. */
#ifndef SWEEP_EVENTS_CHECK_H
#define SWEEP_EVENTS_CHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Invalid events after which a worker is faulty (one invalid "done" is enough). */
#define EVENTS_CHECK_FAULT_LIMIT 10
/* Bytes of an offending line that go into the log (before escaping). */
#define EVENTS_CHECK_EXCERPT 200

typedef struct {
    int64_t trial;      // the trial's id (a start must name it)
    int epochs;         // the trial's epochs (its params), 0 when unknown (no upper bound)
    bool multi_attempt; // several attempts in one stream (a replayed events file)
    bool started;       // a start was accepted in this attempt
    bool done;          // a done was accepted in this attempt
    bool faulty;        // this attempt's worker is faulty (see above)
    int last_epoch;     // last finished epoch in this attempt (or the resumed one), 0 if none
    unsigned bad;       // invalid events so far, over every attempt
    unsigned bad_now;   // invalid events in this attempt
    char first[256];    // the reason of this attempt's first invalid event, "" if none
    char fault[256];    // why the worker is faulty (the bad done's reason, else first), "" if not
} events_check;

/* Sets up C for trial TRIAL of EPOCHS epochs (0: unknown); MULTI_ATTEMPT as
 * above. */
void events_check_init(events_check *c, int64_t trial, int epochs, bool multi_attempt);

/* The epochs of a trial from its params object (absent keys take their
 * defaults, README.md "Parameters"); 0 when PARAMS is unusable. */
int events_check_epochs(const json_t *params);

/* Judges event EV (a parsed line; any JSON value, or NULL for a line that is
 * not JSON) against C. Returns 0 when it is valid (C advances: it may be
 * stored and forwarded), else ERR_INVALID with the reason (one line, printable,
 * naming the field and the value) in WHY, C->bad counted and C->faulty set
 * when this event made the worker faulty. Once C->faulty, every event but a
 * replay's next start is invalid ("worker already faulty"). */
int events_check_event(events_check *c, const json_t *ev, char *why, size_t whylen);

/* LINE (LEN bytes) cut to EVENTS_CHECK_EXCERPT bytes at a character
 * boundary and escaped for a log (utf8_escape), into BUF of N bytes. */
void events_check_excerpt(char *buf, size_t n, const char *line, size_t len);

/* Logs the invalid event LINE (LEN bytes) of trial TRIAL with the reason
 * WHY, as "trial ID: invalid worker event (WHY), not stored: EXCERPT". */
void events_check_log_bad(int64_t trial, const char *why, const char *line, size_t len);

#endif
