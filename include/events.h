/* events — the worker's JSON-lines event stream on stdout (README.md "Contract",
 * "sweep-worker": start, progress, epoch, checkpoint, done, error).
 *
 * Each event is one line: {"event": NAME, "t": seconds since events_init,
 * ...fields in insertion order}, written with one write(2), so a reader never
 * sees half a line even if the worker dies right after. Writing to a closed
 * pipe is not fatal (the caller ignores SIGPIPE; the event is dropped and
 * logged once). A write cut short (a full disk) leaves part of a line: the
 * next line, in this run or the next one on the same file, then starts with
 * a "\n", so the cut line stays on its own and the ones after it are whole
 * (readers skip empty lines). Numbers are written with up to 15 significant
 * digits (readable: 0.05 stays 0.05; checkpoints keep the exact values). */
#ifndef SWEEP_EVENTS_H
#define SWEEP_EVENTS_H

#include <jansson.h>
#include <stdio.h>

/* Starts the clock for "t" and sets the stream (stdout when OUT is NULL). */
void events_init(FILE *out);
/* Seconds since events_init. */
double events_elapsed(void);
/* Emits event NAME with the members of FIELDS (reference stolen; may be NULL).
 * Returns 0, or ERR_NOSPACE (no space, quota or file-size limit: the caller
 * of an event the daemon must see exits WEXIT_NOSPACE) or ERR_IO when the
 * line could not be written, with the reason in events_last_error(). */
int events_emit(const char *name, json_t *fields);
/* Why the last write failed, naming the stream's file ("cannot write the
 * epoch event to /…/events.ndjson: No space left on device"); "" when none
 * has since events_init. */
const char *events_last_error(void);
/* {"event":"error","code":CODE,"exit_code":EXIT,"message":MESSAGE}. */
int events_error(const char *code, int exit_code, const char *message);
/* The "code" name used in error events for a worker exit status
 * ("spec", "data", "model", "diverged", "nomem", "stopped", "no_space",
 * "internal"). */
const char *events_code_for_exit(int exit_code);

#endif
