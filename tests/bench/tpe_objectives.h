/* tpe_objectives — the synthetic objectives on which TPE is measured, and the
 * sequential search that runs a budget of trials on one of them. Shared by the
 * unit test (tests/unit/test_suggest.c) and the benchmark driver
 * (tests/aux/tpe_driver.c); tests/bench/tpe_optuna.py has the same formulas
 * for Optuna. Test-only, never part of libsweep.
 *
 * Every objective is a sum of terms in unit coordinates (t = position of a
 * numeric value in its range, log range for LOG) plus a penalty per category;
 * its minimum is 0, at the point tpo_objective.opt. */
#ifndef SWEEP_TPE_OBJECTIVES_H
#define SWEEP_TPE_OBJECTIVES_H

#include "suggest.h"

#include <stdbool.h>
#include <stdint.h>

#define TPO_MAX_DIMS 8 // dimensions of the largest objective

typedef struct {
    const char *name;                // short name, printed by the benchmark
    int nd;                          // dimension count
    suggest_dim dims[TPO_MAX_DIMS];  // the space
    double opt[TPO_MAX_DIMS];        // the optimum, in dimension units
    double (*loss)(const double *x); // the objective (0 at the optimum)
} tpo_objective;

/* The objectives, TPO_COUNT of them. */
#define TPO_COUNT 3
extern const tpo_objective TPO_OBJECTIVES[TPO_COUNT];

/* Distance of X to O's optimum: root mean square over the dimensions of the
 * unit-coordinate differences (0 or 1 for a CHOICE). */
double tpo_distance(const tpo_objective *o, const double *x);

/* Runs BUDGET sequential trials on O: the first STARTUP (all when !TPE) are
 * uniform draws, the others suggest_tpe proposals given every trial before,
 * each with the seed rng_derive(SEED, trial). Writes the best trial's point
 * into BEST_X (nd) and its loss into *BEST_LOSS. 0 or the suggest error (MSG). */
int tpo_run(const tpo_objective *o, bool tpe, int budget, int startup, uint64_t seed,
            double *best_x, double *best_loss, char *msg, size_t msglen);

#endif
