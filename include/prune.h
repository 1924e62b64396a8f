/* prune — the pruners' decision rules (README.md "Pruners"), pure functions
 * with no I/O: the scheduler (daemon/sched.c) gathers the values from the
 * store and records each verdict before it acts on it.
 *
 * Values are objective values (the job's objective.metric) where "better"
 * follows objective.goal. A trial's value at epoch e is its best objective
 * so far, over epochs 1..e (not the value at epoch e alone).
 *   - median {"warmup_epochs":W,"min_trials":M}: decided at every epoch
 *     e > W. With at least M other trials having reached epoch e, the
 *     trial stops when its value is strictly worse than the median of
 *     theirs (an even count: the mean of the two middle values); equal to
 *     the median continues. With fewer than M others it continues.
 *   - asha {"min_epochs":R,"reduction":ETA}: rungs at R, R*ETA, R*ETA^2, ...
 *     epochs. At a rung the trial is ranked among every trial that has
 *     reached that rung so far, itself included (n of them): it continues
 *     when fewer than ceil(n / ETA) of them are strictly better, else it
 *     stops. So the first trial at a rung always continues, and a tie with
 *     the last kept place continues. */
#ifndef SWEEP_PRUNE_H
#define SWEEP_PRUNE_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { PRUNE_NONE = 0, PRUNE_MEDIAN, PRUNE_ASHA } prune_kind;

typedef struct {
    prune_kind kind;   // which pruner ("none" by default)
    int warmup_epochs; // median: W, epochs before any decision (>= 0)
    int min_trials;    // median: M, other trials needed at the epoch (>= 1)
    int min_epochs;    // asha: R, the first rung (>= 1)
    int reduction;     // asha: ETA, the rung factor and the kept fraction 1/ETA (>= 2)
} prune_config;

/* The name of KIND as the job spec writes it: "none", "median", "asha". */
const char *prune_kind_name(prune_kind kind);

/* True when epoch EPOCH (from 1) is a decision point of C: median, every
 * epoch after warmup_epochs; asha, a rung epoch. */
bool prune_is_decision_epoch(const prune_config *c, int epoch);

/* The median of the N values V (N >= 1), which are reordered. */
double prune_median(double *v, size_t n);

/* The verdict at one decision point: VALUE is the trial's value, OTHERS
 * (N_OTHERS of them, reordered) those of the other trials (median: every
 * other trial that reached the epoch; asha: every other trial recorded at
 * the rung). Returns true when the trial stops; REASON (LEN bytes) gets the
 * numbers behind the verdict either way, e.g. "median: best val_accuracy
 * 0.4 is worse than the median 0.5 of 3 other trials at epoch 2" or "asha:
 * rung 3: val_accuracy 0.4 ranks 3 of 4, only the top 2 (1/2) continue".
 * METRIC names the objective in the text. */
bool prune_decide(const prune_config *c, bool maximize, const char *metric, int epoch, double value,
                  double *others, size_t n_others, char *reason, size_t len);

#endif
