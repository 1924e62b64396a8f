/* train — one trial: the fine-tuning loop behind `sweep-worker run`.
 *
 * train_run() loads the data (dataset.h), builds the model from the trial's
 * weights or from scratch (resnet.h), replaces the head when the class count
 * differs, freezes the requested prefix, and trains with the trial's
 * optimizer (optim.h) and learning-rate schedule (lr_schedule.h, set every
 * step). After every epoch it evaluates the validation split (loss = plain
 * cross-entropy without label smoothing, so trials with different smoothing
 * compare; accuracy and macro precision/recall/F1 from metrics.h), emits an
 * "epoch" event and writes checkpoint.safetensors, plus best.safetensors
 * when the epoch is the best so far by the objective (ties keep the earlier
 * epoch). It ends with a "done" event.
 *
 * Determinism and resume. Every random draw depends only on (seed, epoch,
 * step): the epoch's order is dataset.h's seeded permutation, augmentation
 * uses dataset.h's per-image streams, the dropout mask of step s of epoch e
 * comes from rng_derive(rng_derive(rng_derive(seed, TRAIN_STREAM_DROPOUT), e), s),
 * and a new head is initialised from rng_derive(seed, TRAIN_STREAM_HEAD). So a
 * restarted worker that finds a checkpoint with the same spec hash in out_dir
 * restores weights, batchnorm statistics, optimizer state and the running sums
 * of a part-done epoch, and continues at the exact next step: the final
 * metrics equal those of an uninterrupted run with the same thread count.
 * A checkpoint from a different spec (hash mismatch), of another class list
 * or that cannot be read is ignored with a logged reason and training starts
 * fresh (the old files are overwritten as epochs finish).
 *
 * Feature cache. When something is frozen (the frozen prefix always runs in
 * evaluation mode) the prefix's outputs for the validation images are
 * computed once per trial; with augmentation off the training images' too,
 * and then every epoch trains only the unfrozen suffix from the cached
 * features. Cached and uncached runs see the same batches in the same order.
 * With augmentation off, a cache_dir and "feature_cache" not false, the
 * outputs live in the shared on-disk cache (featcache.h, README.md "Feature
 * cache"): the trial builds the entry, waits for another trial building it,
 * or reuses it (the start event's "features"), and a deeper prefix continues
 * a cached shallower one. Features are always computed 64 images per pass,
 * so all these paths give bit-identical metrics. The in-memory outputs are
 * skipped (logged) when they would exceed SWEEP_FEATURE_CACHE_MB (default: a
 * quarter of physical memory). Test hook: SWEEP_TEST_FEATURE_HOLD=PATH holds
 * a finished build before its commit until PATH exists (PATH.held marks it).
 *
 * Batches. The last partial batch of an epoch is trained on (loss averaged
 * over its images, as PyTorch's mean reduction does), except that a last
 * batch of exactly one image is dropped when batch_size > 1: training-mode
 * batchnorm cannot normalise a single value per channel (PyTorch refuses it).
 *
 * Signals. train_stop_requested is set by the caller's SIGTERM/SIGINT handler;
 * the loop finishes the step in progress, writes a checkpoint that records the
 * position inside the epoch, emits "checkpoint" and "stopped" events and
 * returns WEXIT_STOPPED. A stop during validation records "all steps of the
 * epoch done" so the resumed run only repeats the validation.
 *
 * Test hook: SWEEP_TEST_SIGNAL_AT_STEP=N makes the worker send itself a real
 * SIGTERM right after global step N (epoch * steps_per_epoch + step, 1-based),
 * so tests can stop a fast run at a chosen step; the signal then takes the
 * same path as one from the daemon.
 *
 * Progress events are paced by time: at most one per SWEEP_PROGRESS_INTERVAL
 * seconds (default 1; 0 = after every step, which makes the event stream
 * fully reproducible for tests). */
#ifndef SWEEP_TRAIN_H
#define SWEEP_TRAIN_H

#include <signal.h>
#include <stddef.h>

#include "trialspec.h"

#define TRAIN_STREAM_DROPOUT 0x44524f50ULL // "DROP"
#define TRAIN_STREAM_HEAD 0x48454144ULL    // "HEAD"
#define TRAIN_STREAM_INIT 0x494e4954ULL    // "INIT"

/* Set (to the signal number) by a signal handler to ask the loop to stop. */
extern volatile sig_atomic_t train_stop_requested;

/* Runs the trial S. Emits every event (including "error" on failure) and
 * returns the worker exit status (worker_cmds.h): 0, 3 data, 4 model,
 * 5 diverged, 6 out of memory, 7 stopped, 8 no space (a checkpoint, the best
 * weights or an event the daemon must see could not be written: ENOSPC,
 * EDQUOT, EFBIG; the last checkpoint stays valid, so the trial resumes from
 * it), 2 for spec problems found late (e.g. an input size too small for the
 * network, an unusable out_dir). */
int train_run(const trial_spec *s);

/* Maps an error code from the data/model/optimizer layers to the exit status
 * for a failure in phase WHAT ('d' data, 'm' model, 's' spec). */
int train_exit_for(int err, char what);

#endif
