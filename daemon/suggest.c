/* suggest — scrambled Sobol points and the Tree-structured Parzen Estimator
 * (contract in include/suggest.h).
 *
 * Sobol: the direction numbers come from one primitive polynomial over GF(2)
 * per dimension (degree <= 7) and its initial direction numbers, a small table
 * typed in below (the first 31 rows of the Joe and Kuo table, whose 2-D
 * projections are chosen to be good); dimension 0 is the van der Corput
 * sequence. Unscrambled, the first 4096 points of all 32 dimensions were
 * checked equal to PyTorch's SobolEngine. A point is the XOR of the direction
 * numbers selected by the Gray code of its index, then scrambled per dimension
 * by a nested (Owen) scramble: digit d of the output is flipped by a hash of
 * the seed, the dimension and the d digits above it, which keeps every
 * elementary interval's point count (the net property) while making each point
 * uniform on [0,1).
 *
 * TPE: observations are ranked (DONE by loss, then PRUNED by epoch, later
 * first, then loss, then PENDING), split into a good group (the best
 * ceil(n/10), at most 25) and the rest, and each group becomes a mixture of
 * kernels, one per observation plus a prior kernel spanning the whole range,
 * a kernel being a product over dimensions: a Gaussian truncated to the bounds
 * (in log space for LOG; integrated over [v-1/2, v+1/2] for INT) whose
 * bandwidth is the larger gap to its neighbours among the group's values,
 * clipped to [range/min(100, 2 (kernels+1)), range], or, for CHOICE, the
 * observed category plus prior/kernels of smoothing on every category. Weights
 * are 1, except that in a group of more than 25 the older observations ramp
 * down linearly. Candidates are drawn from the good mixture, one kernel for all
 * dimensions, and ranked by log l(x) - log g(x) of the whole point. Every draw
 * comes from one rng stream derived from the seed, so a proposal is a pure
 * function of its inputs.
 *
 * Two departures from Optuna's default TPESampler, chosen on the synthetic
 * objectives of tests/bench/tpe_objectives.c (median regret over 100 seeds,
 * 60 trials, for mixed4 / coupled4 / wide8). Optuna draws and picks each
 * dimension on its own (univariate) and floors a bandwidth at
 * range/(kernels+1) (its "magic clip"), wide for a good group of 3-6 kernels:
 * 0.0061 / 0.0152 / 0.1032 that way here (Optuna itself, 30 seeds: 0.0083 /
 * 0.0258 / 0.1002). Joint candidates alone: 0.0041 / 0.0091 / 0.1159; the
 * floor halved alone: 0.0040 / 0.0030 / 0.1069; both, as here: 0.0020 /
 * 0.0046 / 0.0698. */
#include "suggest.h"

#include "errors.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ Sobol */

#define SOBOL_BITS 64 // direction numbers per dimension (indexes below 2^64)
#define UNIT_BITS 53  // digits of a unit coordinate (a double's mantissa)

/* One dimension's generator: x^s + a_1 x^(s-1) + ... + a_(s-1) x + 1. */
typedef struct {
    uint8_t degree; // s, the polynomial's degree
    uint8_t inner;  // a_1 .. a_(s-1) as bits, a_1 the most significant
    uint8_t m[7];   // initial direction numbers m_1 .. m_s (odd, m_k < 2^k)
} sobol_poly;

/* Dimensions 1 .. SUGGEST_MAX_DIMS-1 (dimension 0 is van der Corput). */
static const sobol_poly SOBOL_POLYS[SUGGEST_MAX_DIMS - 1] = {
    {1, 0, {1}},
    {2, 1, {1, 3}},
    {3, 1, {1, 3, 1}},
    {3, 2, {1, 1, 1}},
    {4, 1, {1, 1, 3, 3}},
    {4, 4, {1, 3, 5, 13}},
    {5, 2, {1, 1, 5, 5, 17}},
    {5, 4, {1, 1, 5, 5, 5}},
    {5, 7, {1, 1, 7, 11, 19}},
    {5, 11, {1, 1, 5, 1, 1}},
    {5, 13, {1, 1, 1, 3, 11}},
    {5, 14, {1, 3, 5, 5, 31}},
    {6, 1, {1, 3, 3, 9, 7, 49}},
    {6, 13, {1, 1, 1, 15, 21, 21}},
    {6, 16, {1, 3, 1, 13, 27, 49}},
    {6, 19, {1, 1, 1, 15, 7, 5}},
    {6, 22, {1, 3, 1, 15, 13, 25}},
    {6, 25, {1, 1, 5, 5, 19, 61}},
    {7, 1, {1, 3, 7, 11, 23, 15, 103}},
    {7, 4, {1, 3, 7, 13, 13, 15, 69}},
    {7, 7, {1, 1, 3, 13, 7, 35, 63}},
    {7, 8, {1, 3, 5, 9, 1, 25, 53}},
    {7, 14, {1, 3, 1, 13, 9, 35, 107}},
    {7, 19, {1, 3, 1, 5, 27, 61, 31}},
    {7, 21, {1, 1, 5, 11, 19, 41, 61}},
    {7, 28, {1, 3, 5, 3, 3, 13, 69}},
    {7, 31, {1, 1, 7, 13, 1, 19, 1}},
    {7, 32, {1, 3, 7, 5, 13, 19, 59}},
    {7, 37, {1, 1, 3, 9, 25, 29, 41}},
    {7, 41, {1, 3, 5, 13, 23, 1, 55}},
    {7, 42, {1, 3, 7, 3, 13, 59, 17}},
};

/* Direction numbers v_1 .. v_64 of dimension DIM as 64-bit fractions, into V. */
static void sobol_directions(int dim, uint64_t v[SOBOL_BITS])
{
    if (dim == 0) {
        for (int k = 0; k < SOBOL_BITS; k++)
            v[k] = 1ULL << (SOBOL_BITS - 1 - k);
        return;
    }
    const sobol_poly *p = &SOBOL_POLYS[dim - 1];
    int s = p->degree;
    for (int k = 0; k < s; k++)
        v[k] = (uint64_t)p->m[k] << (SOBOL_BITS - 1 - k);
    /* v_k = a_1 v_(k-1) ^ ... ^ a_(s-1) v_(k-s+1) ^ v_(k-s) ^ (v_(k-s) >> s) */
    for (int k = s; k < SOBOL_BITS; k++) {
        uint64_t x = v[k - s] ^ (v[k - s] >> s);
        for (int i = 1; i < s; i++)
            if ((p->inner >> (s - 1 - i)) & 1) x ^= v[k - i];
        v[k] = x;
    }
}

/* The nested scramble of the top UNIT_BITS digits of X under SEED, as an
 * integer below 2^UNIT_BITS: digit d flips by a hash of the d digits above it. */
static uint64_t owen_scramble(uint64_t x, uint64_t seed)
{
    uint64_t out = x;
    for (int d = 0; d < UNIT_BITS; d++) {
        int pos = SOBOL_BITS - 1 - d;
        uint64_t prefix = d ? x >> (pos + 1) : 0;
        /* The marker bit above the prefix makes (d, prefix) one distinct key. */
        out ^= (rng_derive(seed, prefix | (1ULL << d)) >> 63) << pos;
    }
    return out >> (SOBOL_BITS - UNIT_BITS);
}

int suggest_sobol_unit(int nd, uint64_t seed, uint64_t index, double *u, char *msg, size_t msglen)
{
    if (nd < 1 || nd > SUGGEST_MAX_DIMS)
        return err_set(msg, msglen, ERR_INVALID, "%d dimensions: a space has 1 to %d", nd,
                       SUGGEST_MAX_DIMS);
    uint64_t gray = index ^ (index >> 1);
    for (int d = 0; d < nd; d++) {
        uint64_t v[SOBOL_BITS], x = 0;
        sobol_directions(d, v);
        for (int k = 0; k < SOBOL_BITS; k++)
            if ((gray >> k) & 1) x ^= v[k];
        u[d] = (double)owen_scramble(x, rng_derive(seed, (uint64_t)d)) * 0x1.0p-53;
    }
    return 0;
}

/* ------------------------------------------------------- dimensions, points */

/* Checks DIMS (ND): 0 or ERR_INVALID naming the dimension. */
static int check_dims(const suggest_dim *dims, int nd, char *msg, size_t msglen)
{
    if (nd < 1 || nd > SUGGEST_MAX_DIMS)
        return err_set(msg, msglen, ERR_INVALID, "%d dimensions: a space has 1 to %d", nd,
                       SUGGEST_MAX_DIMS);
    for (int d = 0; d < nd; d++) {
        const suggest_dim *s = &dims[d];
        if (s->kind == SUGGEST_CHOICE) {
            if (s->n_choices < 1)
                return err_set(msg, msglen, ERR_INVALID, "dimension %d: %d choices (need >= 1)", d,
                               s->n_choices);
            continue;
        }
        if (s->kind != SUGGEST_UNIFORM && s->kind != SUGGEST_LOG && s->kind != SUGGEST_INT)
            return err_set(msg, msglen, ERR_INVALID, "dimension %d: unknown kind %d", d,
                           (int)s->kind);
        if (!isfinite(s->lo) || !isfinite(s->hi) || s->lo > s->hi || !isfinite(s->hi - s->lo))
            return err_set(msg, msglen, ERR_INVALID,
                           "dimension %d: bounds [%g, %g] are not finite and ordered", d, s->lo,
                           s->hi);
        if (s->kind == SUGGEST_LOG && !(s->lo > 0))
            return err_set(msg, msglen, ERR_INVALID,
                           "dimension %d: a log scale needs lo > 0 (lo is %g)", d, s->lo);
        if (s->kind == SUGGEST_INT && (s->lo != floor(s->lo) || s->hi != floor(s->hi)))
            return err_set(msg, msglen, ERR_INVALID,
                           "dimension %d: integer bounds [%g, %g] are not whole", d, s->lo, s->hi);
    }
    return 0;
}

/* Number of values of dimension S: 0 when continuous (infinitely many). */
static double dim_size(const suggest_dim *s)
{
    if (s->kind == SUGGEST_CHOICE) return s->n_choices;
    if (s->kind == SUGGEST_INT) return s->hi - s->lo + 1;
    return s->lo == s->hi ? 1 : 0;
}

/* Whether X lies in dimension S (whole and in bounds for CHOICE and INT). */
static bool dim_contains(const suggest_dim *s, double x)
{
    if (s->kind == SUGGEST_CHOICE) return x == floor(x) && x >= 0 && x < s->n_choices;
    if (s->kind == SUGGEST_INT && x != floor(x)) return false;
    return x >= s->lo && x <= s->hi;
}

/* Maps unit coordinate U in [0,1) to dimension S (the header's formulas). */
static double dim_from_unit(const suggest_dim *s, double u)
{
    double x;
    switch (s->kind) {
    case SUGGEST_CHOICE:
        x = floor(u * s->n_choices);
        return x < s->n_choices ? x : s->n_choices - 1;
    case SUGGEST_INT:
        x = s->lo + floor(u * (s->hi - s->lo + 1));
        return x < s->hi ? x : s->hi;
    case SUGGEST_LOG:
        x = exp(log(s->lo) + u * (log(s->hi) - log(s->lo)));
        break;
    default:
        x = s->lo + u * (s->hi - s->lo);
        break;
    }
    /* Rounding may step past a bound. */
    return x < s->lo ? s->lo : x > s->hi ? s->hi : x;
}

int suggest_sobol(const suggest_dim *dims, int nd, uint64_t seed, uint64_t index, double *x,
                  char *msg, size_t msglen)
{
    double u[SUGGEST_MAX_DIMS];
    int rc = check_dims(dims, nd, msg, msglen);
    if (rc == 0) rc = suggest_sobol_unit(nd, seed, index, u, msg, msglen);
    if (rc) return rc;
    for (int d = 0; d < nd; d++)
        x[d] = dim_from_unit(&dims[d], u[d]);
    return 0;
}

bool suggest_point_equal(const double *a, const double *b, int nd)
{
    for (int d = 0; d < nd; d++)
        if (a[d] != b[d]) return false;
    return true;
}

/* ------------------------------------------------------ observed points */

/* One observed point in the sorted set of distinct points. */
typedef struct {
    const double *x; // the point (ND coordinates)
    int nd;          // its dimension count (the comparison needs it)
} seen_point;

/* Lexicographic order of two points. */
static int cmp_point(const double *a, const double *b, int nd)
{
    for (int d = 0; d < nd; d++)
        if (a[d] != b[d]) return a[d] < b[d] ? -1 : 1;
    return 0;
}

static int cmp_seen(const void *pa, const void *pb)
{
    const seen_point *a = pa, *b = pb;
    return cmp_point(a->x, b->x, a->nd);
}

/* Whether X is one of the N sorted distinct points SEEN. */
static bool is_seen(const seen_point *seen, size_t n, const double *x, int nd)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_point(seen[mid].x, x, nd);
        if (c == 0) return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* ------------------------------------------------------------ TPE model */

#define PRIOR_WEIGHT 1.0  // weight of the prior kernel (each observation weighs 1)
#define GOOD_MAX 25       // the good group holds at most this many observations
#define FLAT_WEIGHTS 25   // the newest observations of a group weigh 1; older ones ramp
#define FLOOR_DIV_MAX 100 // the smallest bandwidth: range / min(100, FLOOR_SHARE (kernels + 1))
#define FLOOR_SHARE 2     // in that floor (Optuna's magic clip: 1; see the opening paragraph)
#define FRESH_ROUNDS 16   // batches of candidates drawn when every candidate was seen
#define UNIFORM_DRAWS 256 // uniform draws before scanning a finite space
#define TRUNC_TRIES 100   // rejection tries for one truncated Gaussian draw
#define LOG_SQRT_2PI 0.91893853320467274178

/* One dimension as the model sees it. */
typedef struct {
    suggest_kind kind; // as in the space
    double lo, hi;     // numeric: bounds in model units (log for LOG, +-1/2 for INT)
    int n_choices;     // CHOICE: number of values
    bool constant;     // a single value: left out of the densities
} model_dim;

/* One group's Parzen mixture: kernel k < nk-1 stands for an observation, the
 * last kernel is the prior. Arrays are nk x nd, kernel-major. */
typedef struct {
    int nk;        // kernels (observations of the group plus the prior)
    double eps;    // CHOICE smoothing: PRIOR_WEIGHT / nk added to every category
    double *logw;  // (nk) log of the normalised kernel weights
    double *cumw;  // (nk) cumulative normalised weights, for drawing a kernel
    double *mu;    // centres in model units; CHOICE: the category, -1 for the prior
    double *sigma; // numeric: bandwidths in model units
    double *logz;  // numeric: log of the kernel's Gaussian mass inside [lo, hi]
} parzen;

/* Model units of coordinate X of dimension S. */
static double to_model(const suggest_dim *s, double x)
{
    return s->kind == SUGGEST_LOG ? log(x) : x;
}

/* The dimensions DIMS (ND) as the model sees them, into M. */
static void model_dims(const suggest_dim *dims, int nd, model_dim *m)
{
    for (int d = 0; d < nd; d++) {
        const suggest_dim *s = &dims[d];
        m[d] = (model_dim){.kind = s->kind, .n_choices = s->n_choices};
        if (s->kind == SUGGEST_CHOICE) {
            m[d].constant = s->n_choices == 1;
            continue;
        }
        m[d].constant = s->lo == s->hi;
        m[d].lo = to_model(s, s->lo);
        m[d].hi = to_model(s, s->hi);
        if (s->kind == SUGGEST_INT) {
            m[d].lo -= 0.5;
            m[d].hi += 0.5;
        }
    }
}

/* log of the standard normal mass on [a, b], a < b, accurate in both tails. */
static double log_normal_mass(double a, double b)
{
    double m;
    if (a >= 0)
        m = 0.5 * (erfc(a * M_SQRT1_2) - erfc(b * M_SQRT1_2));
    else if (b <= 0)
        m = 0.5 * (erfc(-b * M_SQRT1_2) - erfc(-a * M_SQRT1_2));
    else
        m = 1.0 - 0.5 * (erfc(-a * M_SQRT1_2) + erfc(b * M_SQRT1_2));
    if (m > 1e-300) return log(m);
    /* Far in one tail: phi(t) (1 - exp(-t w)) / t, t the nearer end's distance. */
    double t = a >= 0 ? a : -b;
    return -0.5 * t * t - LOG_SQRT_2PI + log(-expm1(-t * (b - a))) - log(t);
}

/* A standard normal draw (Marsaglia's polar method: log and sqrt only). */
static double normal_draw(rng_t *r)
{
    for (;;) {
        double u = 2 * rng_uniform(r) - 1, v = 2 * rng_uniform(r) - 1, s = u * u + v * v;
        if (s > 0 && s < 1) return u * sqrt(-2 * log(s) / s);
    }
}

/* A draw from N(MU, SIGMA) truncated to [LO, HI] (MU inside, so the mass is > 1/3). */
static double trunc_normal_draw(rng_t *r, double mu, double sigma, double lo, double hi)
{
    for (int i = 0; i < TRUNC_TRIES; i++) {
        double v = mu + sigma * normal_draw(r);
        if (v >= lo && v <= hi) return v;
    }
    return rng_range(r, lo, hi);
}

/* One value of a group's kernel bandwidth sort. */
typedef struct {
    double v; // centre in model units
    int k;    // kernel
} centre;

static int cmp_centre(const void *pa, const void *pb)
{
    const centre *a = pa, *b = pb;
    if (a->v != b->v) return a->v < b->v ? -1 : 1;
    return a->k - b->k;
}

/* Bandwidths of numeric dimension D for the NK kernels of P (centres set):
 * each kernel's larger gap to its neighbours, the two outermost their inner
 * gap, clipped; the prior spans the range. SCRATCH holds NK centres. */
static void parzen_bandwidths(parzen *p, const model_dim *m, int nd, int d, centre *scratch)
{
    int nk = p->nk;
    double range = m->hi - m->lo;
    for (int k = 0; k < nk; k++)
        scratch[k] = (centre){p->mu[k * nd + d], k};
    qsort(scratch, (size_t)nk, sizeof *scratch, cmp_centre);
    double lo_clip = range / fmin(FLOOR_DIV_MAX, FLOOR_SHARE * (nk + 1.0));
    for (int i = 0; i < nk; i++) {
        double left = i > 0 ? scratch[i].v - scratch[i - 1].v : 0;
        double right = i + 1 < nk ? scratch[i + 1].v - scratch[i].v : 0;
        double s = fmax(left, right);
        s = s < lo_clip ? lo_clip : s > range ? range : s;
        p->sigma[scratch[i].k * nd + d] = s;
    }
    p->sigma[(nk - 1) * nd + d] = range;
}

static void parzen_free(parzen *p)
{
    free(p->logw);
    *p = (parzen){0};
}

/* Builds P from the N observations OBS[IDX[i]] (in observation order); the
 * caller frees it with parzen_free. 0 or ERR_NOMEM. */
static int parzen_build(parzen *p, const suggest_dim *dims, const model_dim *m, int nd,
                        const suggest_obs *obs, const size_t *idx, size_t n)
{
    int nk = (int)n + 1;
    size_t cells = (size_t)nk * (size_t)nd;
    *p = (parzen){.nk = nk, .eps = PRIOR_WEIGHT / nk};
    /* One block: logw, cumw (nk each), mu, sigma, logz (cells each), then the scratch. */
    double *block = malloc((2 * (size_t)nk + 3 * cells) * sizeof(double) + nk * sizeof(centre));
    if (!block) return ERR_NOMEM;
    p->logw = block;
    p->cumw = p->logw + nk;
    p->mu = p->cumw + nk;
    p->sigma = p->mu + cells;
    p->logz = p->sigma + cells;
    centre *scratch = (centre *)(p->logz + cells);

    /* Weights: 1, the older ones of a large group ramping from 1/n up to 1
     * (kept in cumw until normalised). */
    double total = PRIOR_WEIGHT, acc = 0;
    size_t ramp = n > FLAT_WEIGHTS ? n - FLAT_WEIGHTS : 0;
    for (size_t i = 0; i < n; i++) {
        double w = 1.0;
        if (i < ramp) w = 1.0 / n + (ramp > 1 ? (1.0 - 1.0 / n) * i / (ramp - 1) : 0);
        p->cumw[i] = w;
        total += w;
    }
    p->cumw[n] = PRIOR_WEIGHT;
    for (int k = 0; k < nk; k++) {
        p->logw[k] = log(p->cumw[k] / total);
        acc += p->cumw[k] / total;
        p->cumw[k] = acc;
    }

    for (int d = 0; d < nd; d++) {
        for (size_t i = 0; i < n; i++)
            p->mu[i * nd + d] = m[d].kind == SUGGEST_CHOICE ? obs[idx[i]].x[d]
                                                            : to_model(&dims[d], obs[idx[i]].x[d]);
        if (m[d].kind == SUGGEST_CHOICE || m[d].constant) {
            p->mu[n * nd + d] = -1;
            continue;
        }
        p->mu[n * nd + d] = 0.5 * (m[d].lo + m[d].hi);
        parzen_bandwidths(p, &m[d], nd, d, scratch);
        for (int k = 0; k < nk; k++) {
            double mu = p->mu[k * nd + d], s = p->sigma[k * nd + d];
            p->logz[k * nd + d] = log_normal_mass((m[d].lo - mu) / s, (m[d].hi - mu) / s);
        }
    }
    return 0;
}

/* log of kernel K's density (mass for INT and CHOICE) at model point Y. */
static double kernel_logpdf(const parzen *p, const model_dim *m, int nd, int k, const double *y)
{
    double sum = 0;
    for (int d = 0; d < nd; d++) {
        if (m[d].constant) continue;
        double mu = p->mu[k * nd + d];
        if (m[d].kind == SUGGEST_CHOICE) {
            /* The prior kernel (mu -1) is uniform over the categories, as
             * tpe_draw draws it; the others put mass 1 on theirs plus eps on
             * every category. */
            sum += mu < 0 ? -log((double)m[d].n_choices)
                          : log((p->eps + (y[d] == mu)) / (1.0 + m[d].n_choices * p->eps));
            continue;
        }
        double s = p->sigma[k * nd + d], z = (y[d] - mu) / s;
        if (m[d].kind == SUGGEST_INT)
            sum += log_normal_mass(z - 0.5 / s, z + 0.5 / s);
        else
            sum += -0.5 * z * z - LOG_SQRT_2PI - log(s);
        sum -= p->logz[k * nd + d];
    }
    return sum;
}

/* log of the mixture density of P at model point Y (log-sum-exp over kernels). */
static double parzen_logpdf(const parzen *p, const model_dim *m, int nd, const double *y)
{
    double best = -INFINITY, acc = 0;
    for (int k = 0; k < p->nk; k++) {
        double t = p->logw[k] + kernel_logpdf(p, m, nd, k, y);
        if (t > best) {
            acc = acc * exp(best - t) + 1;
            best = t;
        } else {
            acc += exp(t - best);
        }
    }
    return best + log(acc);
}

/* Draws a point of P into X (dimension units) and its model coordinates into Y. */
static void parzen_draw(const parzen *p, const suggest_dim *dims, const model_dim *m, int nd,
                        rng_t *r, double *x, double *y)
{
    double u = rng_uniform(r);
    int k = 0;
    while (k < p->nk - 1 && p->cumw[k] <= u)
        k++;
    for (int d = 0; d < nd; d++) {
        const suggest_dim *s = &dims[d];
        double mu = p->mu[k * nd + d];
        if (m[d].constant) {
            x[d] = s->kind == SUGGEST_CHOICE ? 0 : s->lo;
        } else if (s->kind == SUGGEST_CHOICE) {
            /* The observed category with mass 1, plus eps on every category. */
            bool own = mu >= 0 && rng_uniform(r) * (1.0 + s->n_choices * p->eps) < 1.0;
            x[d] = own ? mu : (double)rng_int(r, 0, s->n_choices - 1);
        } else {
            double v = trunc_normal_draw(r, mu, p->sigma[k * nd + d], m[d].lo, m[d].hi);
            if (s->kind == SUGGEST_LOG) v = exp(v);
            if (s->kind == SUGGEST_INT) v = floor(v + 0.5);
            x[d] = v < s->lo ? s->lo : v > s->hi ? s->hi : v;
        }
        y[d] = to_model(s, x[d]);
    }
}

/* ------------------------------------------------------------ TPE search */

/* One observation's place in the ranking. */
typedef struct {
    int cls;     // 0 DONE, 1 PRUNED, 2 PENDING
    int epoch;   // PRUNED: epochs reached (more is better)
    double loss; // DONE, PRUNED: objective
    size_t i;    // index in the observation list
} ranked_obs;

static int cmp_ranked(const void *pa, const void *pb)
{
    const ranked_obs *a = pa, *b = pb;
    if (a->cls != b->cls) return a->cls - b->cls;
    if (a->cls == SUGGEST_OBS_PRUNED && a->epoch != b->epoch) return b->epoch - a->epoch;
    if (a->cls != SUGGEST_OBS_PENDING && a->loss != b->loss) return a->loss < b->loss ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

static int cmp_size(const void *pa, const void *pb)
{
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    return a < b ? -1 : a > b;
}

/* Checks observation I: 0 or ERR_INVALID naming it. */
static int check_obs(const suggest_dim *dims, int nd, const suggest_obs *o, size_t i, char *msg,
                     size_t msglen)
{
    if (o->kind != SUGGEST_OBS_DONE && o->kind != SUGGEST_OBS_PRUNED &&
        o->kind != SUGGEST_OBS_PENDING)
        return err_set(msg, msglen, ERR_INVALID, "observation %zu: unknown kind %d", i,
                       (int)o->kind);
    if (!o->x) return err_set(msg, msglen, ERR_INVALID, "observation %zu: no point", i);
    if (o->kind != SUGGEST_OBS_PENDING && !isfinite(o->loss))
        return err_set(msg, msglen, ERR_INVALID, "observation %zu: loss %g is not finite", i,
                       o->loss);
    if (o->kind == SUGGEST_OBS_PRUNED && o->epoch < 1)
        return err_set(msg, msglen, ERR_INVALID, "observation %zu: pruned at epoch %d (need >= 1)",
                       i, o->epoch);
    for (int d = 0; d < nd; d++)
        if (!dim_contains(&dims[d], o->x[d]))
            return err_set(msg, msglen, ERR_INVALID,
                           "observation %zu, dimension %d: %g is not a value of the dimension", i,
                           d, o->x[d]);
    return 0;
}

/* The TPE proposal's working state. */
typedef struct {
    const suggest_dim *dims;       // the space
    int nd;                        // its dimension count
    model_dim m[SUGGEST_MAX_DIMS]; // the dimensions in model units
    const seen_point *seen;        // sorted distinct observed points
    size_t n_seen;                 // their count
    rng_t rng;                     // every draw of the proposal
} tpe_ctx;

/* Draws rounds of SUGGEST_TPE_CANDIDATES candidates from GOOD and writes into X
 * the unseen one with the largest log good - log bad. true when found. */
static bool tpe_candidates(tpe_ctx *c, const parzen *good, const parzen *bad, double *x)
{
    int nd = c->nd;
    double cand[SUGGEST_TPE_CANDIDATES][SUGGEST_MAX_DIMS], y[SUGGEST_MAX_DIMS];
    for (int round = 0; round <= FRESH_ROUNDS; round++) {
        double best = -INFINITY;
        int pick = -1;
        for (int j = 0; j < SUGGEST_TPE_CANDIDATES; j++) {
            parzen_draw(good, c->dims, c->m, nd, &c->rng, cand[j], y);
            double score = parzen_logpdf(good, c->m, nd, y) - parzen_logpdf(bad, c->m, nd, y);
            if ((pick < 0 || score > best) && !is_seen(c->seen, c->n_seen, cand[j], nd)) {
                best = score;
                pick = j;
            }
        }
        if (pick >= 0) {
            memcpy(x, cand[pick], (size_t)nd * sizeof *x);
            return true;
        }
    }
    return false;
}

/* Uniform draws, then (finite space) an odometer walk from the last draw,
 * until a point unseen. true when found. */
static bool tpe_uniform(tpe_ctx *c, bool finite, double *x)
{
    int nd = c->nd;
    for (int t = 0; t < UNIFORM_DRAWS; t++) {
        for (int d = 0; d < nd; d++)
            x[d] = dim_from_unit(&c->dims[d], rng_uniform(&c->rng));
        if (!is_seen(c->seen, c->n_seen, x, nd)) return true;
    }
    if (!finite) return false;
    /* The caller made sure an unseen point exists: the walk reaches it. */
    for (;;) {
        int d = 0;
        for (; d < nd; d++) {
            const suggest_dim *s = &c->dims[d];
            double first = s->kind == SUGGEST_CHOICE ? 0 : s->lo;
            double last = s->kind == SUGGEST_CHOICE ? s->n_choices - 1 : s->hi;
            if (x[d] < last) {
                x[d] += 1;
                break;
            }
            x[d] = first;
        }
        if (!is_seen(c->seen, c->n_seen, x, nd)) return true;
    }
}

int suggest_tpe(const suggest_dim *dims, int nd, const suggest_obs *obs, size_t n_obs,
                uint64_t seed, double *x, char *msg, size_t msglen)
{
    int rc = check_dims(dims, nd, msg, msglen);
    if (rc) return rc;
    if (n_obs && !obs) return err_set(msg, msglen, ERR_INVALID, "no observation list");
    for (size_t i = 0; i < n_obs; i++)
        if ((rc = check_obs(dims, nd, &obs[i], i, msg, msglen))) return rc;

    tpe_ctx c = {.dims = dims, .nd = nd};
    model_dims(dims, nd, c.m);
    rng_seed(&c.rng, rng_derive(seed, 0x7e5e));
    parzen good = {0}, bad = {0};
    seen_point *seen = NULL;
    ranked_obs *rank = NULL;
    size_t *idx = NULL;
    if (n_obs) {
        seen = malloc(n_obs * sizeof *seen);
        rank = malloc(n_obs * sizeof *rank);
        idx = malloc(n_obs * sizeof *idx);
        if (!seen || !rank || !idx) {
            rc = ERR_NOMEM;
            goto done;
        }
    }

    /* The distinct observed points; a finite space may have none left. */
    for (size_t i = 0; i < n_obs; i++)
        seen[i] = (seen_point){obs[i].x, nd};
    if (n_obs) qsort(seen, n_obs, sizeof *seen, cmp_seen);
    for (size_t i = 0; i < n_obs; i++)
        if (c.n_seen == 0 || cmp_seen(&seen[c.n_seen - 1], &seen[i]) != 0)
            seen[c.n_seen++] = seen[i];
    c.seen = seen;
    bool finite = true;
    double size = 1;
    for (int d = 0; d < nd && finite; d++) {
        finite = dim_size(&dims[d]) > 0;
        size *= dim_size(&dims[d]);
    }
    if (finite && (double)c.n_seen >= size) {
        rc = err_set(msg, msglen, ERR_EXISTS,
                     "every one of the %.0f points of the space has been tried", size);
        goto done;
    }

    size_t n_finished = 0;
    for (size_t i = 0; i < n_obs; i++) {
        rank[i] = (ranked_obs){(int)obs[i].kind, obs[i].epoch, obs[i].loss, i};
        n_finished += obs[i].kind != SUGGEST_OBS_PENDING;
    }
    if (n_finished >= 2) {
        qsort(rank, n_obs, sizeof *rank, cmp_ranked);
        size_t n_good = (n_obs + 9) / 10;
        n_good = n_good > GOOD_MAX ? GOOD_MAX : n_good;
        n_good = n_good > n_finished ? n_finished : n_good < 1 ? 1 : n_good;
        /* Each group in observation order (the weights favour the newer ones). */
        for (size_t i = 0; i < n_obs; i++)
            idx[i] = rank[i].i;
        qsort(idx, n_good, sizeof *idx, cmp_size);
        qsort(idx + n_good, n_obs - n_good, sizeof *idx, cmp_size);
        if (parzen_build(&good, dims, c.m, nd, obs, idx, n_good) ||
            parzen_build(&bad, dims, c.m, nd, obs, idx + n_good, n_obs - n_good)) {
            rc = ERR_NOMEM;
            goto done;
        }
        if (tpe_candidates(&c, &good, &bad, x)) goto done;
    }
    if (!tpe_uniform(&c, finite, x))
        rc = err_set(msg, msglen, ERR_EXISTS, "no unseen point found in %d draws", UNIFORM_DRAWS);
done:
    parzen_free(&good);
    parzen_free(&bad);
    free(seen);
    free(rank);
    free(idx);
    return rc;
}
