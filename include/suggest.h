/* suggest — proposal strategies as pure functions: scrambled Sobol points and the
 * Tree-structured Parzen Estimator (TPE). No I/O, no globals, no allocation
 * visible to the caller; the same inputs give the same point on every machine
 * and build (integer arithmetic plus libm exp/log/sqrt/erfc/expm1 only). Used by the
 * daemon: job expansion for strategy "sobol" (daemon/jobspec.c) and the
 * scheduler when a slot frees for strategy "tpe" (daemon/sched.c).
 *
 * Coordinates. A space has ND dimensions (1..SUGGEST_MAX_DIMS); a point is ND
 * doubles, each in its dimension's own units:
 *   SUGGEST_CHOICE  index 0 .. n_choices-1 (a whole number stored as double);
 *                   unordered (booleans and categoricals are choices)
 *   SUGGEST_UNIFORM real in [lo, hi]
 *   SUGGEST_LOG     real in [lo, hi], 0 < lo; modelled in log space
 *   SUGGEST_INT     whole number in [lo, hi] (lo, hi whole)
 * lo == hi is allowed (a constant dimension). Two points are equal when every
 * coordinate is equal as a double (suggest_point_equal).
 *
 * Sobol. suggest_sobol_unit gives point INDEX (from 0) of a Sobol sequence in
 * [0,1)^ND, scrambled by SEED (the same SEED, the same sequence; another
 * SEED, another scrambling with the same low discrepancy); suggest_sobol maps it
 * to the dimensions: u -> floor(u*n) for CHOICE, lo + floor(u*(hi-lo+1)) for
 * INT, lo*(hi/lo)^u for LOG, lo + u*(hi-lo) for UNIFORM.
 *
 * TPE. suggest_tpe proposes the next point from the observations so far:
 *   - OBS lists every trial of the job (and of warm-start jobs) in finishing
 *     order; the order is part of the input (same list, same point).
 *   - SUGGEST_OBS_DONE: a finished trial with its LOSS (smaller is better; the
 *     caller negates a maximized metric).
 *   - SUGGEST_OBS_PRUNED: stopped after EPOCH epochs with LOSS its objective at
 *     that epoch; ranked below every DONE trial, among themselves by EPOCH
 *     (later is better) then by LOSS. They count as evidence, not as failures.
 *   - SUGGEST_OBS_PENDING: queued or running (LOSS ignored): the constant liar,
 *     treated as worse than every finished trial, so that parallel proposals
 *     move away from points already being tried.
 *   With fewer than 2 finished (DONE or PRUNED) observations the point is drawn
 *   uniformly (the caller runs "startup_trials" random points before TPE; to
 *   draw one that repeats no trial so far, it passes them all as PENDING).
 *   Otherwise the ranked observations are split into a good group (the best
 *   ceil(0.1 n), at most 25, at least 1) and the rest; each group gives a
 *   Parzen density per dimension (truncated Gaussians on numeric dimensions,
 *   in log space for LOG, on a grid of whole numbers for INT; smoothed counts
 *   for CHOICE); SUGGEST_TPE_CANDIDATES candidates are drawn from the good
 *   density and the one with the largest good/bad density ratio is returned.
 *   The returned point equals no observation's point (every kind counts); when
 *   the best candidate does, the next best is taken, then fresh draws, then
 *   uniform draws; when a finite space has no unseen point left (every
 *   dimension CHOICE/INT and all combinations observed), ERR_EXISTS.
 *   SEED drives every draw: the caller derives it from the job seed and the
 *   trial number.
 *
 * Returns 0, ERR_INVALID (bad dimension or observation; MSG says which
 * dimension or observation index, counted from 0: "observation 3, dimension 1:
 * ..."; an observation's coordinate must be a value of its dimension) or
 * ERR_EXISTS (no unseen point), ERR_NOMEM. */
#ifndef SWEEP_SUGGEST_H
#define SWEEP_SUGGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SUGGEST_MAX_DIMS 32
#define SUGGEST_TPE_CANDIDATES 24

typedef enum { SUGGEST_CHOICE = 0, SUGGEST_UNIFORM, SUGGEST_LOG, SUGGEST_INT } suggest_kind;

typedef struct {
    suggest_kind kind; // how the dimension is modelled (see above)
    double lo, hi;     // inclusive bounds for UNIFORM, LOG, INT; unused for CHOICE
    int n_choices;     // number of values for CHOICE (>= 1); unused otherwise
} suggest_dim;

typedef enum {
    SUGGEST_OBS_DONE = 0, // finished: LOSS is its final objective
    SUGGEST_OBS_PRUNED,   // stopped early: LOSS at EPOCH
    SUGGEST_OBS_PENDING,  // queued or running: constant liar
} suggest_obs_kind;

typedef struct {
    const double *x;       // (ND) the trial's point, in dimension units
    suggest_obs_kind kind; // what the observation is
    double loss;           // objective, smaller is better (DONE, PRUNED); finite
    int epoch;             // PRUNED: epochs finished when stopped (>= 1); else ignored
} suggest_obs;

/* Point INDEX of the Sobol sequence scrambled by SEED, in [0,1)^ND, into U (ND). */
int suggest_sobol_unit(int nd, uint64_t seed, uint64_t index, double *u, char *msg, size_t msglen);
/* The same point mapped to DIMS (ND), into X (ND). */
int suggest_sobol(const suggest_dim *dims, int nd, uint64_t seed, uint64_t index, double *x,
                  char *msg, size_t msglen);
/* The next TPE point for DIMS (ND) given N_OBS observations OBS, into X (ND). */
int suggest_tpe(const suggest_dim *dims, int nd, const suggest_obs *obs, size_t n_obs,
                uint64_t seed, double *x, char *msg, size_t msglen);
/* Every coordinate equal. */
bool suggest_point_equal(const double *a, const double *b, int nd);

#endif
