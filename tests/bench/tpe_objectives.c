/* tpe_objectives — the synthetic objectives of the TPE test and benchmark
 * (contract in tests/bench/tpe_objectives.h). The formulas are repeated in
 * tests/bench/tpe_optuna.py: change both together. */
#include "tpe_objectives.h"

#include "rng.h"

#include <math.h>
#include <stdlib.h>

/* Position of X in dimension S's range, in [0, 1] (log range for LOG). */
static double unit_of(const suggest_dim *s, double x)
{
    if (s->hi == s->lo) return 0;
    if (s->kind == SUGGEST_LOG) return (log(x) - log(s->lo)) / (log(s->hi) - log(s->lo));
    return (x - s->lo) / (s->hi - s->lo);
}

static double sq(double v)
{
    return v * v;
}

/* mixed4: learning rate (log), dropout-like uniform, width (int), one of 4. */
static double loss_mixed4(const double *x)
{
    static const double pen[4] = {0.25, 0.1, 0, 0.4};
    const suggest_dim *d = TPO_OBJECTIVES[0].dims;
    return sq(unit_of(&d[0], x[0]) - 0.65) + sq(unit_of(&d[1], x[1]) - 0.3) +
           sq((x[2] - 20) / 31.0) + pen[(int)x[3]];
}

/* coupled4: a valley along weight decay = learning rate - 0.1 (both log), an
 * int depth, one of 3; the best category also shifts the best depth. */
static double loss_coupled4(const double *x)
{
    static const double pen[3] = {0.3, 0, 0.15};
    const suggest_dim *d = TPO_OBJECTIVES[1].dims;
    double a = unit_of(&d[0], x[0]), b = unit_of(&d[1], x[1]);
    int best_depth = x[3] == 1 ? 5 : 3;
    return sq(a - 0.5) + 4 * sq(b - a + 0.1) + sq((x[2] - best_depth) / 7.0) + pen[(int)x[3]];
}

/* wide8: three uniforms, two logs, two ints, one of 5; separable. */
static double loss_wide8(const double *x)
{
    static const double pen[5] = {0.2, 0.3, 0.1, 0, 0.2};
    static const double target[7] = {0.2, 0.8, 0.55, 0.3, 0.7, 0, 0};
    const suggest_dim *d = TPO_OBJECTIVES[2].dims;
    double sum = 0;
    for (int i = 0; i < 5; i++)
        sum += sq(unit_of(&d[i], x[i]) - target[i]);
    return sum + sq((x[5] - 7) / 15.0) + sq((x[6] - 2) / 9.0) + pen[(int)x[7]];
}

const tpo_objective TPO_OBJECTIVES[TPO_COUNT] = {
    {"mixed4",
     4,
     {{SUGGEST_LOG, 1e-5, 1, 0},
      {SUGGEST_UNIFORM, 0, 1, 0},
      {SUGGEST_INT, 1, 32, 0},
      {SUGGEST_CHOICE, 0, 0, 4}},
     {0.017782794100389229, 0.3, 20, 2}, /* 10^-1.75 */
     loss_mixed4},
    {"coupled4",
     4,
     {{SUGGEST_LOG, 1e-4, 1e-1, 0},
      {SUGGEST_LOG, 1e-6, 1e-2, 0},
      {SUGGEST_INT, 1, 8, 0},
      {SUGGEST_CHOICE, 0, 0, 3}},
     {0.0031622776601683794, 3.981071705534973e-05, 5, 1}, /* 10^-2.5, 10^-4.4 */
     loss_coupled4},
    {"wide8",
     8,
     {{SUGGEST_UNIFORM, 0, 1, 0},
      {SUGGEST_UNIFORM, -1, 1, 0},
      {SUGGEST_UNIFORM, 0, 10, 0},
      {SUGGEST_LOG, 1e-3, 1e3, 0},
      {SUGGEST_LOG, 1, 100, 0},
      {SUGGEST_INT, 0, 15, 0},
      {SUGGEST_INT, -4, 5, 0},
      {SUGGEST_CHOICE, 0, 0, 5}},
     {0.2, 0.6, 5.5, 0.063095734448019317, 25.118864315095795, 7, 2, 3}, /* 10^-1.2, 10^1.4 */
     loss_wide8},
};

double tpo_distance(const tpo_objective *o, const double *x)
{
    double sum = 0;
    for (int d = 0; d < o->nd; d++) {
        const suggest_dim *s = &o->dims[d];
        if (s->kind == SUGGEST_CHOICE)
            sum += x[d] != o->opt[d];
        else
            sum += sq(unit_of(s, x[d]) - unit_of(s, o->opt[d]));
    }
    return sqrt(sum / o->nd);
}

int tpo_run(const tpo_objective *o, bool tpe, int budget, int startup, uint64_t seed,
            double *best_x, double *best_loss, char *msg, size_t msglen)
{
    double *pts = malloc((size_t)budget * TPO_MAX_DIMS * sizeof *pts);
    suggest_obs *obs = malloc((size_t)budget * sizeof *obs);
    int rc = pts && obs ? 0 : -1;
    *best_loss = INFINITY;
    for (int t = 0; t < budget && rc == 0; t++) {
        double *x = pts + (size_t)t * TPO_MAX_DIMS;
        /* No observations: a uniform draw. */
        size_t n = tpe && t >= startup ? (size_t)t : 0;
        rc = suggest_tpe(o->dims, o->nd, obs, n, rng_derive(seed, (uint64_t)t), x, msg, msglen);
        if (rc) break;
        obs[t] = (suggest_obs){.x = x, .kind = SUGGEST_OBS_DONE, .loss = o->loss(x)};
        if (obs[t].loss < *best_loss) {
            *best_loss = obs[t].loss;
            for (int d = 0; d < o->nd; d++)
                best_x[d] = x[d];
        }
    }
    free(pts);
    free(obs);
    return rc;
}
