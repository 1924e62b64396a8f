/* Tests for daemon/suggest.c: Sobol points (range, determinism, pinned values,
 * the net property of the first 2^k points, lower centred discrepancy than
 * uniform random points, the mapping to dimensions) and TPE on the synthetic
 * objectives of tests/bench/tpe_objectives.c (3x closer to the optimum than
 * random search on mixed4 and coupled4, 3x lower regret on wide8), the constant
 * liar, no repeated point, exhaustion of a finite space, pruned trials as
 * evidence ranked by epoch, invalid input named by index. All deterministic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "errors.h"
#include "rng.h"
#include "suggest.h"
#include "../bench/tpe_objectives.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAXPTS 1024

/* ------------------------------------------------------------ helpers */

/* Whether X is a value of every dimension of DIMS (ND). */
static bool point_in_space(const suggest_dim *dims, int nd, const double *x)
{
    for (int d = 0; d < nd; d++) {
        const suggest_dim *s = &dims[d];
        bool whole = x[d] == floor(x[d]);
        if (s->kind == SUGGEST_CHOICE) {
            if (!whole || x[d] < 0 || x[d] >= s->n_choices) return false;
        } else if (x[d] < s->lo || x[d] > s->hi || (s->kind == SUGGEST_INT && !whole)) {
            return false;
        }
    }
    return true;
}

/* Centred L2 discrepancy (Hickernell) of the N points P (n x nd, row-major).
 * Unlike the L2-star discrepancy it stays informative in 12 dimensions, where
 * the star version of 64 points is dominated by its constant term. */
static double centred_l2(const double *p, int n, int nd)
{
    double a = 0, b = 0;
    for (int i = 0; i < n; i++) {
        double prod = 1;
        for (int d = 0; d < nd; d++) {
            double z = fabs(p[i * nd + d] - 0.5);
            prod *= 1 + z / 2 - z * z / 2;
        }
        a += prod;
        for (int j = 0; j < n; j++) {
            double q = 1;
            for (int d = 0; d < nd; d++) {
                double zi = fabs(p[i * nd + d] - 0.5), zj = fabs(p[j * nd + d] - 0.5);
                q *= 1 + zi / 2 + zj / 2 - fabs(p[i * nd + d] - p[j * nd + d]) / 2;
            }
            b += q;
        }
    }
    return sqrt(pow(13.0 / 12, nd) - 2.0 / n * a + b / ((double)n * n));
}

static void sobol_points(int nd, uint64_t seed, int n, double *p)
{
    char msg[128];
    for (int i = 0; i < n; i++)
        assert_int_equal(suggest_sobol_unit(nd, seed, (uint64_t)i, p + i * nd, msg, sizeof msg), 0);
}

static int cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return a < b ? -1 : a > b;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ------------------------------------------------------------ Sobol */

static void test_sobol_range_and_seed(void **state)
{
    (void)state;
    static double a[MAXPTS * SUGGEST_MAX_DIMS], b[MAXPTS * SUGGEST_MAX_DIMS],
        c[MAXPTS * SUGGEST_MAX_DIMS];
    const int nds[] = {1, 2, 5, 12, SUGGEST_MAX_DIMS};
    for (size_t t = 0; t < sizeof nds / sizeof *nds; t++) {
        int nd = nds[t];
        sobol_points(nd, 7, MAXPTS, a);
        sobol_points(nd, 7, MAXPTS, b);
        sobol_points(nd, 8, MAXPTS, c);
        int same_other = 0;
        for (int i = 0; i < MAXPTS * nd; i++) {
            assert_true(a[i] >= 0 && a[i] < 1);
            assert_true(a[i] == b[i]);
            same_other += a[i] == c[i];
        }
        assert_int_equal(same_other, 0);
    }
    /* A far index works too. */
    double u[3];
    char msg[128];
    assert_int_equal(suggest_sobol_unit(3, 1, UINT64_MAX, u, msg, sizeof msg), 0);
    assert_true(u[0] >= 0 && u[0] < 1 && u[2] >= 0 && u[2] < 1);
}

/* The sequence is part of the contract (a job's Sobol points must not change
 * with an upgrade): pinned coordinates 0, 7 and 31 of five points for seed 1,
 * computed by this implementation once its unscrambled points were checked
 * equal to PyTorch's SobolEngine (Joe-Kuo directions, 4096 points x 32
 * dimensions). Integer arithmetic only, so exact on every machine. */
static void test_sobol_pinned_points(void **state)
{
    (void)state;
    const uint64_t index[5] = {0, 1, 2, 1000, (1ULL << 40) + 5};
    const double want[5][3] = {
        {0x1.1349eef5b9586p-1, 0x1.0abd905519076p-1, 0x1.3b73e4bd2713cp-1},
        {0x1.137b9af883eacp-3, 0x1.db17bedb8f8dp-3, 0x1.4bc3dbc6b602ap-2},
        {0x1.f9bcb6d9b86fep-2, 0x1.d080c61340b9ap-2, 0x1.a396182e1cfcdp-1},
        {0x1.4754bf40f205bp-1, 0x1.57cd1431d55cp-2, 0x1.603a497b9337p-1},
        {0x1.6fa81c139c96cp-2, 0x1.a59211d8344acp-3, 0x1.e1aa709aea439p-1},
    };
    double u[SUGGEST_MAX_DIMS];
    char msg[128];
    for (int i = 0; i < 5; i++) {
        assert_int_equal(suggest_sobol_unit(SUGGEST_MAX_DIMS, 1, index[i], u, msg, sizeof msg), 0);
        assert_true(u[0] == want[i][0] && u[7] == want[i][1] && u[31] == want[i][2]);
    }
}

/* The first 2^k points put exactly one point in each of 2^k equal bins of every
 * coordinate, and the first two coordinates form a (0, k, 2)-net: one point in
 * every box of 2^-j by 2^-(k-j). Scrambling keeps both. */
static void test_sobol_net_property(void **state)
{
    (void)state;
    static double p[256 * SUGGEST_MAX_DIMS];
    int count[256];
    for (uint64_t seed = 1; seed <= 3; seed++) {
        sobol_points(SUGGEST_MAX_DIMS, seed, 256, p);
        for (int k = 1; k <= 8; k++) {
            int n = 1 << k;
            for (int d = 0; d < SUGGEST_MAX_DIMS; d++) {
                memset(count, 0, sizeof count);
                for (int i = 0; i < n; i++)
                    count[(int)(p[i * SUGGEST_MAX_DIMS + d] * n)]++;
                for (int b = 0; b < n; b++)
                    assert_int_equal(count[b], 1);
            }
            for (int j = 0; j <= k; j++) {
                memset(count, 0, sizeof count);
                for (int i = 0; i < n; i++) {
                    int bx = (int)(p[i * SUGGEST_MAX_DIMS] * (1 << j));
                    int by = (int)(p[i * SUGGEST_MAX_DIMS + 1] * (1 << (k - j)));
                    count[bx * (1 << (k - j)) + by]++;
                }
                for (int b = 0; b < n; b++)
                    assert_int_equal(count[b], 1);
            }
        }
    }
}

static void test_sobol_discrepancy_below_random(void **state)
{
    (void)state;
    static double s[256 * 12], r[256 * 12];
    const int nds[] = {2, 5, 12}, ns[] = {64, 256};
    for (int t = 0; t < 3; t++)
        for (int m = 0; m < 2; m++)
            for (uint64_t seed = 1; seed <= 4; seed++) {
                int nd = nds[t], n = ns[m];
                sobol_points(nd, seed, n, s);
                rng_t g;
                rng_seed(&g, seed);
                for (int i = 0; i < n * nd; i++)
                    r[i] = rng_uniform(&g);
                double ds = centred_l2(s, n, nd), dr = centred_l2(r, n, nd);
                /* Measured: Sobol is 1.4x (12 dims) to 8x (2 dims) lower. */
                if (!(ds * 1.2 < dr))
                    fail_msg("nd %d, n %d, seed %d: Sobol %g, random %g", nd, n, (int)seed, ds, dr);
            }
}

static void test_sobol_mapping(void **state)
{
    (void)state;
    const suggest_dim dims[] = {{SUGGEST_CHOICE, 0, 0, 5}, {SUGGEST_INT, -3, 4, 0},
                                {SUGGEST_LOG, 1e-4, 1, 0}, {SUGGEST_UNIFORM, -2, 2, 0},
                                {SUGGEST_INT, 7, 7, 0},    {SUGGEST_CHOICE, 0, 0, 1}};
    int nd = 6, seen_choice[5] = {0}, seen_int[8] = {0};
    double x[6], lo_log = 1, hi_log = 0;
    char msg[128];
    for (uint64_t i = 0; i < 64; i++) {
        assert_int_equal(suggest_sobol(dims, nd, 3, i, x, msg, sizeof msg), 0);
        assert_true(point_in_space(dims, nd, x));
        seen_choice[(int)x[0]]++;
        seen_int[(int)x[1] + 3]++;
        lo_log = fmin(lo_log, x[2]);
        hi_log = fmax(hi_log, x[2]);
        assert_true(x[4] == 7 && x[5] == 0);
    }
    for (int c = 0; c < 5; c++)
        assert_true(seen_choice[c] >= 12); /* 64/5: stratified, not merely present */
    for (int v = 0; v < 8; v++)
        assert_int_equal(seen_int[v], 8);
    /* Spread over the log range: below 1e-3.5 and above 1e-0.5 both occur. */
    assert_true(lo_log < 3e-4 && hi_log > 0.3);
}

/* ------------------------------------------------------------ TPE */

#define TRIALS 60
#define STARTUP 10
#define SEEDS 10

/* TRIALS trials (STARTUP uniform, then TPE) against TRIALS uniform ones, on
 * SEEDS seeds, into the medians *DIST (of the best point's distance to the
 * optimum, random then TPE) and *REGRET (of the best loss). */
static void tpe_vs_random(const tpo_objective *o, int seeds, double dist[2], double regret[2])
{
    double d[2][64], r[2][64], x[TPO_MAX_DIMS];
    char msg[256];
    assert_true(seeds <= 64);
    for (int tpe = 0; tpe < 2; tpe++) {
        for (int s = 0; s < seeds; s++) {
            int rc = tpo_run(o, tpe, TRIALS, STARTUP, 1000 + (uint64_t)s, x, &r[tpe][s], msg,
                             sizeof msg);
            if (rc) fail_msg("%s: %s", o->name, msg);
            assert_true(point_in_space(o->dims, o->nd, x));
            d[tpe][s] = tpo_distance(o, x);
        }
        dist[tpe] = median(d[tpe], seeds);
        regret[tpe] = median(r[tpe], seeds);
    }
    print_message("# %s, %d seeds: median distance random %.4f, TPE %.4f (%.1fx); "
                  "median regret random %.4f, TPE %.4f (%.1fx)\n",
                  o->name, seeds, dist[0], dist[1], dist[0] / dist[1], regret[0], regret[1],
                  regret[0] / regret[1]);
}

/* The case, mixed4 (a shifted quadratic in log lr, a bowl in a uniform,
 * a parabola in an int, a penalty per category), and coupled4 (a valley across
 * two log scales, the best int depending on the category): over 10 seeds the
 * best point's median distance to the optimum is 3x smaller with TPE. */
static void test_tpe_closer_than_random_search(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        double dist[2], regret[2];
        tpe_vs_random(&TPO_OBJECTIVES[k], SEEDS, dist, regret);
        if (!(dist[1] * 3 <= dist[0]))
            fail_msg("%s: TPE is not 3x closer than random", TPO_OBJECTIVES[k].name);
    }
}

/* wide8 (8 dimensions, 5 categories): TPE's median regret is 3x below random
 * search's, over 64 seeds. Its distance is no yardstick at 10 seeds: in many
 * runs TPE's best point has the second-best category (penalty 0.1), which alone
 * costs sqrt(1/8), so a 10-seed median flips between two modes (1.5x to 2.7x
 * closer on different seeds; 2.2x over these 64, 2.3x over 100 others). */
static void test_tpe_below_random_search_in_8_dims(void **state)
{
    (void)state;
    double dist[2], regret[2];
    tpe_vs_random(&TPO_OBJECTIVES[2], 64, dist, regret);
    assert_true(regret[1] * 3 <= regret[0]);
}

/* Observations of TPO_OBJECTIVES[0] at N uniform points (P holds n x 4). */
static void mixed_obs(suggest_obs *obs, double *p, int n, uint64_t seed)
{
    const tpo_objective *o = &TPO_OBJECTIVES[0];
    char msg[128];
    for (int i = 0; i < n; i++) {
        double *x = p + i * 4;
        assert_int_equal(
            suggest_tpe(o->dims, 4, NULL, 0, rng_derive(seed, (uint64_t)i), x, msg, sizeof msg), 0);
        obs[i] = (suggest_obs){.x = x, .kind = SUGGEST_OBS_DONE, .loss = o->loss(x)};
    }
}

static void test_tpe_deterministic(void **state)
{
    (void)state;
    const tpo_objective *o = &TPO_OBJECTIVES[0];
    suggest_obs obs[20];
    double p[20 * 4], a[4], b[4], c[4];
    char msg[128];
    mixed_obs(obs, p, 20, 5);
    assert_int_equal(suggest_tpe(o->dims, 4, obs, 20, 99, a, msg, sizeof msg), 0);
    assert_int_equal(suggest_tpe(o->dims, 4, obs, 20, 99, b, msg, sizeof msg), 0);
    assert_int_equal(suggest_tpe(o->dims, 4, obs, 20, 100, c, msg, sizeof msg), 0);
    assert_true(suggest_point_equal(a, b, 4));
    assert_false(suggest_point_equal(a, c, 4));
    /* Below two finished observations the draw is uniform: one DONE trial
     * changes nothing. */
    assert_int_equal(suggest_tpe(o->dims, 4, obs, 1, 42, a, msg, sizeof msg), 0);
    assert_int_equal(suggest_tpe(o->dims, 4, NULL, 0, 42, b, msg, sizeof msg), 0);
    assert_true(suggest_point_equal(a, b, 4));
}

/* The same seed twice, the first proposal added as PENDING in between: the
 * second differs from the first and from every observation. */
static void test_tpe_parallel_proposals_differ(void **state)
{
    (void)state;
    const tpo_objective *o = &TPO_OBJECTIVES[0];
    suggest_obs obs[16];
    double p[16 * 4], x1[4], x2[4];
    char msg[128];
    for (uint64_t seed = 0; seed < 200; seed++) {
        mixed_obs(obs, p, 14, seed);
        assert_int_equal(suggest_tpe(o->dims, 4, obs, 14, seed, x1, msg, sizeof msg), 0);
        obs[14] = (suggest_obs){.x = x1, .kind = SUGGEST_OBS_PENDING};
        assert_int_equal(suggest_tpe(o->dims, 4, obs, 15, seed, x2, msg, sizeof msg), 0);
        assert_false(suggest_point_equal(x1, x2, 4));
        assert_true(point_in_space(o->dims, 4, x2));
        for (int i = 0; i < 14; i++)
            assert_false(suggest_point_equal(obs[i].x, x2, 4));
    }
}

/* The constant liar spreads parallel proposals: from the same 14 finished
 * trials of (x - 0.3)^2, a second proposal lands much farther from the first
 * when the first is pending than when it is left out (measured: 3x). */
static void test_tpe_constant_liar_spreads(void **state)
{
    (void)state;
    const suggest_dim dim = {SUGGEST_UNIFORM, 0, 1, 0};
    double p[15], x1, x2, with = 0, without = 0;
    suggest_obs obs[15];
    char msg[128];
    for (uint64_t seed = 0; seed < 200; seed++) {
        for (int i = 0; i < 14; i++) {
            assert_int_equal(suggest_tpe(&dim, 1, NULL, 0, rng_derive(seed, (uint64_t)i), &p[i],
                                         msg, sizeof msg),
                             0);
            obs[i] = (suggest_obs){
                .x = &p[i], .kind = SUGGEST_OBS_DONE, .loss = (p[i] - 0.3) * (p[i] - 0.3)};
        }
        assert_int_equal(suggest_tpe(&dim, 1, obs, 14, seed, &x1, msg, sizeof msg), 0);
        assert_int_equal(suggest_tpe(&dim, 1, obs, 14, seed + 1000, &x2, msg, sizeof msg), 0);
        without += fabs(x2 - x1);
        obs[14] = (suggest_obs){.x = &x1, .kind = SUGGEST_OBS_PENDING};
        assert_int_equal(suggest_tpe(&dim, 1, obs, 15, seed + 1000, &x2, msg, sizeof msg), 0);
        with += fabs(x2 - x1);
    }
    print_message("# mean distance between two proposals: first pending %.4f, left out %.4f\n",
                  with / 200, without / 200);
    assert_true(with > 2 * without);
}

/* A space of 3 x 4 points: every proposal is new, whatever the mix of
 * finished and pending observations, then ERR_EXISTS. Run twice: TPE (two
 * finished trials to start, then every other one finishing) and uniform
 * startup draws (every observation pending). */
static void test_tpe_finite_space_exhausted(void **state)
{
    (void)state;
    const suggest_dim dims[] = {{SUGGEST_CHOICE, 0, 0, 3}, {SUGGEST_INT, 0, 3, 0}};
    suggest_obs obs[14];
    double p[14 * 2];
    char msg[128];
    for (int uniform = 0; uniform < 2; uniform++)
        for (uint64_t seed = 0; seed < 20; seed++) {
            suggest_obs_kind first = uniform ? SUGGEST_OBS_PENDING : SUGGEST_OBS_DONE;
            /* Point (0, 0) twice: a repeated observation counts once. */
            p[0] = p[1] = p[2] = p[3] = 0;
            obs[0] = (suggest_obs){.x = p, .kind = first, .loss = 1};
            obs[1] = (suggest_obs){.x = p + 2, .kind = first, .loss = 2};
            size_t n = 2;
            for (int t = 0; t < 11; t++, n++) {
                double *x = p + 2 * n;
                int rc =
                    suggest_tpe(dims, 2, obs, n, rng_derive(seed, (uint64_t)t), x, msg, sizeof msg);
                if (rc) fail_msg("seed %d proposal %d: %s", (int)seed, t, msg);
                assert_true(point_in_space(dims, 2, x));
                for (size_t i = 0; i < n; i++)
                    assert_false(suggest_point_equal(obs[i].x, x, 2));
                /* Every other one finishes, by a loss that favours high values. */
                obs[n] = (suggest_obs){.x = x, .kind = SUGGEST_OBS_PENDING};
                if (!uniform && t % 2 == 0)
                    obs[n] =
                        (suggest_obs){.x = x, .kind = SUGGEST_OBS_DONE, .loss = 10 - x[0] - x[1]};
            }
            double x[2] = {-1, -1};
            msg[0] = 0;
            assert_int_equal(suggest_tpe(dims, 2, obs, n, seed, x, msg, sizeof msg), ERR_EXISTS);
            assert_non_null(strstr(msg, "12"));
        }
}

/* Pruned trials only: four stopped late (epoch 8) near 0.8 with a worse loss
 * than sixteen stopped at epochs 1-2 in [0, 0.5]. Ranked by epoch first, the
 * late ones make the good group and the proposals go near 0.8; with the
 * pruned trials left out the draw is uniform, and were they ranked by loss
 * alone (as DONE) the proposals would go to [0, 0.5]. */
static void test_tpe_pruned_trials_are_evidence(void **state)
{
    (void)state;
    const suggest_dim dim = {SUGGEST_UNIFORM, 0, 1, 0};
    suggest_obs obs[20], as_done[20];
    double p[20], x;
    char msg[128];
    for (int i = 0; i < 20; i++) {
        bool late = i % 5 == 4;
        p[i] = late ? 0.77 + 0.02 * (i / 5) : 0.5 * (i - i / 5) / 16.0;
        obs[i] = (suggest_obs){.x = &p[i],
                               .kind = SUGGEST_OBS_PRUNED,
                               .loss = late ? 0.9 : 0.2 + 0.01 * i,
                               .epoch = late ? 8 : 1 + i % 2};
        as_done[i] = obs[i];
        as_done[i].kind = SUGGEST_OBS_DONE;
    }
    double with = 0, without = 0, by_loss = 0;
    for (uint64_t seed = 0; seed < 100; seed++) {
        assert_int_equal(suggest_tpe(&dim, 1, obs, 20, seed, &x, msg, sizeof msg), 0);
        with += fabs(x - 0.8);
        assert_int_equal(suggest_tpe(&dim, 1, NULL, 0, seed, &x, msg, sizeof msg), 0);
        without += fabs(x - 0.8);
        assert_int_equal(suggest_tpe(&dim, 1, as_done, 20, seed, &x, msg, sizeof msg), 0);
        by_loss += fabs(x - 0.8);
    }
    print_message("# mean distance to 0.8: pruned %.3f, left out %.3f, ranked by loss %.3f\n",
                  with / 100, without / 100, by_loss / 100);
    assert_true(with * 2 < without);
    assert_true(with * 3 < by_loss);
}

static void expect_invalid(const suggest_dim *dims, int nd, const suggest_obs *obs, size_t n,
                           const char *needle)
{
    double x[SUGGEST_MAX_DIMS];
    char msg[256] = "";
    assert_int_equal(suggest_tpe(dims, nd, obs, n, 1, x, msg, sizeof msg), ERR_INVALID);
    if (!strstr(msg, needle)) fail_msg("message \"%s\" does not name \"%s\"", msg, needle);
}

static void test_invalid_input_named(void **state)
{
    (void)state;
    suggest_dim dims[3] = {
        {SUGGEST_UNIFORM, 0, 1, 0}, {SUGGEST_INT, 1, 5, 0}, {SUGGEST_CHOICE, 0, 0, 3}};
    double u[3];
    char msg[256];
    assert_int_equal(suggest_sobol_unit(0, 1, 0, u, msg, sizeof msg), ERR_INVALID);
    assert_int_equal(suggest_sobol_unit(SUGGEST_MAX_DIMS + 1, 1, 0, u, msg, sizeof msg),
                     ERR_INVALID);
    expect_invalid(dims, 0, NULL, 0, "0 dimensions");

    const suggest_dim bad_dims[][3] = {
        {{SUGGEST_UNIFORM, 0, 1, 0}, {SUGGEST_INT, 1, 5, 0}, {SUGGEST_UNIFORM, 2, 1, 0}},
        {{SUGGEST_UNIFORM, 0, 1, 0}, {SUGGEST_LOG, 0, 1, 0}, {SUGGEST_CHOICE, 0, 0, 3}},
        {{SUGGEST_UNIFORM, 0, 1, 0}, {SUGGEST_INT, 1, 5, 0}, {SUGGEST_INT, 0.5, 3, 0}},
        {{SUGGEST_UNIFORM, 0, 1, 0}, {SUGGEST_INT, 1, 5, 0}, {SUGGEST_CHOICE, 0, 0, 0}},
        {{SUGGEST_UNIFORM, 0, NAN, 0}, {SUGGEST_INT, 1, 5, 0}, {SUGGEST_CHOICE, 0, 0, 3}},
        {{SUGGEST_UNIFORM, 0, 1, 0}, {(suggest_kind)9, 1, 5, 0}, {SUGGEST_CHOICE, 0, 0, 3}},
    };
    const char *where[] = {"dimension 2", "dimension 1", "dimension 2",
                           "dimension 2", "dimension 0", "dimension 1"};
    for (int i = 0; i < 6; i++) {
        expect_invalid(bad_dims[i], 3, NULL, 0, where[i]);
        msg[0] = 0;
        assert_int_equal(suggest_sobol(bad_dims[i], 3, 1, 0, u, msg, sizeof msg), ERR_INVALID);
        assert_non_null(strstr(msg, where[i]));
    }

    double good[3] = {0.5, 2, 1}, out_int[3] = {0.5, 6, 1}, frac_int[3] = {0.5, 2.5, 1},
           bad_choice[3] = {0.5, 2, 3}, out_real[3] = {1.5, 2, 1};
    suggest_obs obs[4];
    for (int i = 0; i < 4; i++)
        obs[i] = (suggest_obs){.x = good, .kind = SUGGEST_OBS_DONE, .loss = i};
    struct {
        suggest_obs o;      // the observation put at index 3
        const char *needle; // what the message must name
    } cases[] = {
        {{.x = good, .kind = SUGGEST_OBS_DONE, .loss = NAN}, "observation 3"},
        {{.x = good, .kind = SUGGEST_OBS_PRUNED, .loss = 1, .epoch = 0}, "observation 3"},
        {{.x = NULL, .kind = SUGGEST_OBS_DONE, .loss = 1}, "observation 3"},
        {{.x = good, .kind = (suggest_obs_kind)7, .loss = 1}, "observation 3"},
        {{.x = out_int, .kind = SUGGEST_OBS_DONE, .loss = 1}, "observation 3, dimension 1"},
        {{.x = frac_int, .kind = SUGGEST_OBS_PENDING}, "observation 3, dimension 1"},
        {{.x = bad_choice, .kind = SUGGEST_OBS_DONE, .loss = 1}, "observation 3, dimension 2"},
        {{.x = out_real, .kind = SUGGEST_OBS_DONE, .loss = 1}, "observation 3, dimension 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        obs[3] = cases[i].o;
        expect_invalid(dims, 3, obs, 4, cases[i].needle);
    }
    /* A pending observation's loss is ignored. */
    obs[3] = (suggest_obs){.x = good, .kind = SUGGEST_OBS_PENDING, .loss = NAN};
    double x[3];
    assert_int_equal(suggest_tpe(dims, 3, obs, 4, 1, x, msg, sizeof msg), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sobol_range_and_seed),
        cmocka_unit_test(test_sobol_pinned_points),
        cmocka_unit_test(test_sobol_net_property),
        cmocka_unit_test(test_sobol_discrepancy_below_random),
        cmocka_unit_test(test_sobol_mapping),
        cmocka_unit_test(test_tpe_closer_than_random_search),
        cmocka_unit_test(test_tpe_below_random_search_in_8_dims),
        cmocka_unit_test(test_tpe_deterministic),
        cmocka_unit_test(test_tpe_parallel_proposals_differ),
        cmocka_unit_test(test_tpe_constant_liar_spreads),
        cmocka_unit_test(test_tpe_finite_space_exhausted),
        cmocka_unit_test(test_tpe_pruned_trials_are_evidence),
        cmocka_unit_test(test_invalid_input_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
