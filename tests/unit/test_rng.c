/* Tests for common/rng.c: the pinned reference stream (computed once from the
 * algorithm definitions with an independent Python reimplementation of
 * splitmix64 + xoshiro256**, and the published xoshiro256** outputs for state
 * {1,2,3,4}), distribution checks, integer ranges and shuffles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_xoshiro_reference_state(void **state)
{
    (void)state;
    /* Published reference: xoshiro256** from state {1, 2, 3, 4}. */
    rng_t r = {{1, 2, 3, 4}};
    assert_int_equal(rng_next(&r), 11520ULL);
    assert_int_equal(rng_next(&r), 0ULL);
    assert_int_equal(rng_next(&r), 1509978240ULL);
    assert_int_equal(rng_next(&r), 1215971899390074240ULL);
}

static void test_seed_zero_uses_splitmix(void **state)
{
    (void)state;
    rng_t r;
    rng_seed(&r, 0);
    /* splitmix64 from 0: the well-known first output 0xe220a8397b1dcdaf. */
    assert_int_equal(r.s[0], 0xe220a8397b1dcdafULL);
    assert_int_equal(r.s[1], 0x6e789e6aa1b965f4ULL);
    assert_int_equal(r.s[2], 0x06c45d188009454fULL);
    assert_int_equal(r.s[3], 0xf88bb8a8724c81ecULL);
    const uint64_t want[] = {0x99ec5f36cb75f2b4ULL, 0xbf6e1f784956452aULL, 0x1a5f849d4933e6e0ULL,
                             0x6aa594f1262d2d2cULL, 0xbba5ad4a1f842e59ULL, 0xffef8375d9ebcacaULL};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(rng_next(&r), want[i]);
}

static void test_seed_42_stream(void **state)
{
    (void)state;
    rng_t r;
    rng_seed(&r, 42);
    const uint64_t want[] = {0x15780b2e0c2ec716ULL, 0x6104d9866d113a7eULL, 0xae17533239e499a1ULL,
                             0xecb8ad4703b360a1ULL, 0xfde6dc7fe2ec5e64ULL, 0xc50da53101795238ULL};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(rng_next(&r), want[i]);
}

static void test_seed_12345_stream(void **state)
{
    (void)state;
    rng_t r;
    rng_seed(&r, 12345);
    const uint64_t want[] = {0xbe6a36374160d49bULL, 0x214aaa0637a688c6ULL, 0xf69d16de9954d388ULL,
                             0x0c60048c4e96e033ULL, 0x8e2076aeed51c648ULL, 0x02bbcc1c1fc50f84ULL};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(rng_next(&r), want[i]);
}

static void test_same_seed_same_stream(void **state)
{
    (void)state;
    rng_t a, b, c;
    rng_seed(&a, 987654321);
    rng_seed(&b, 987654321);
    rng_seed(&c, 987654322);
    int differs = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = rng_next(&a);
        assert_int_equal(x, rng_next(&b));
        if (x != rng_next(&c)) differs++;
    }
    assert_true(differs > 990);
}

static void test_state_copy_resumes_stream(void **state)
{
    (void)state;
    rng_t r;
    rng_seed(&r, 5);
    for (int i = 0; i < 17; i++)
        rng_next(&r);
    rng_t saved;
    memcpy(&saved, &r, sizeof r);
    uint64_t a[8], b[8];
    for (int i = 0; i < 8; i++)
        a[i] = rng_next(&r);
    for (int i = 0; i < 8; i++)
        b[i] = rng_next(&saved);
    assert_memory_equal(a, b, sizeof a);
}

static void test_derive_reference_and_distinct(void **state)
{
    (void)state;
    assert_int_equal(rng_derive(42, 0), 0x989b3f130a063869ULL);
    assert_int_equal(rng_derive(42, 1), 0x290db4bf2570ded7ULL);
    assert_int_equal(rng_derive(42, 2), 0x2a990be63a01b2d5ULL);
    /* Distinct streams of one seed never collide (bijection), and differ from the seed. */
    uint64_t seen[256];
    for (uint64_t s = 0; s < 256; s++) {
        seen[s] = rng_derive(7, s);
        assert_int_not_equal(seen[s], 7);
        for (uint64_t t = 0; t < s; t++)
            assert_int_not_equal(seen[s], seen[t]);
    }
    assert_int_not_equal(rng_derive(7, 0), rng_derive(8, 0));
}

static void test_uniform_reference(void **state)
{
    (void)state;
    rng_t r;
    rng_seed(&r, 42);
    assert_true(rng_uniform(&r) == 0.08386297105988216);
    assert_true(rng_uniform(&r) == 0.3789802506626686);
    assert_true(rng_uniform(&r) == 0.6800434110281394);
}

static void test_uniform_range_and_bins(void **state)
{
    (void)state;
    rng_t r;
    rng_seed(&r, 1);
    enum { N = 100000, BINS = 10 };
    int bins[BINS] = {0};
    double sum = 0;
    for (int i = 0; i < N; i++) {
        double u = rng_uniform(&r);
        assert_true(u >= 0.0 && u < 1.0);
        sum += u;
        bins[(int)(u * BINS)]++;
    }
    assert_true(fabs(sum / N - 0.5) < 0.01);
    double chi = 0, e = (double)N / BINS;
    for (int i = 0; i < BINS; i++)
        chi += (bins[i] - e) * (bins[i] - e) / e;
    assert_true(chi < 27.9); /* 9 dof, p = 0.001 */
}

static void test_uniform_f_range(void **state)
{
    (void)state;
    rng_t r;
    rng_seed(&r, 2);
    double sum = 0;
    for (int i = 0; i < 50000; i++) {
        float u = rng_uniform_f(&r);
        assert_true(u >= 0.0f && u < 1.0f);
        sum += u;
    }
    assert_true(fabs(sum / 50000 - 0.5) < 0.01);
}

static void test_range_bounds(void **state)
{
    (void)state;
    rng_t r;
    rng_seed(&r, 3);
    double lo = 1e9, hi = -1e9;
    for (int i = 0; i < 20000; i++) {
        double x = rng_range(&r, -2.5, 4.0);
        assert_true(x >= -2.5 && x < 4.0);
        if (x < lo) lo = x;
        if (x > hi) hi = x;
    }
    assert_true(lo < -2.4 && hi > 3.9);
    assert_true(rng_range(&r, 3.0, 3.0) == 3.0);
}

static void test_log_uniform(void **state)
{
    (void)state;
    rng_t r;
    rng_seed(&r, 4);
    int below = 0;
    enum { N = 40000 };
    for (int i = 0; i < N; i++) {
        double x = rng_log_uniform(&r, 1e-4, 1e-1);
        assert_true(x >= 1e-4 && x <= 1e-1);
        if (x < 1e-2) below++; /* 2 of 3 decades lie below 1e-2 */
    }
    assert_true(fabs((double)below / N - 2.0 / 3.0) < 0.01);
    assert_true(rng_log_uniform(&r, 0.5, 0.5) == 0.5);
}

static void test_int_exact_reference(void **state)
{
    (void)state;
    rng_t r;
    rng_seed(&r, 7);
    const int64_t want[] = {4, 4, 8, 4, 4, 1, 6, 6, 8, 9};
    for (int i = 0; i < 10; i++)
        assert_int_equal(rng_int(&r, 0, 9), want[i]);
    rng_seed(&r, 7);
    const int64_t want2[] = {1, -3, 5, 3, -2, -4, -4, 4, 5, -3};
    for (int i = 0; i < 10; i++)
        assert_int_equal(rng_int(&r, -5, 5), want2[i]);
}

static void test_int_single_value(void **state)
{
    (void)state;
    rng_t r;
    rng_seed(&r, 8);
    for (int i = 0; i < 100; i++)
        assert_int_equal(rng_int(&r, 17, 17), 17);
    assert_int_equal(rng_int(&r, INT64_MAX, INT64_MAX), INT64_MAX);
    assert_int_equal(rng_int(&r, INT64_MIN, INT64_MIN), INT64_MIN);
}

static void test_int_full_range_is_raw_output(void **state)
{
    (void)state;
    rng_t a, b;
    rng_seed(&a, 9);
    rng_seed(&b, 9);
    int neg = 0;
    for (int i = 0; i < 1000; i++) {
        int64_t x = rng_int(&a, INT64_MIN, INT64_MAX);
        assert_int_equal((uint64_t)x, rng_next(&b));
        if (x < 0) neg++;
    }
    assert_true(neg > 400 && neg < 600);
}

static void test_int_extreme_ends(void **state)
{
    (void)state;
    rng_t r;
    rng_seed(&r, 10);
    int seen_hi[2] = {0}, seen_lo[2] = {0};
    for (int i = 0; i < 200; i++) {
        int64_t x = rng_int(&r, INT64_MAX - 1, INT64_MAX);
        assert_true(x == INT64_MAX - 1 || x == INT64_MAX);
        seen_hi[x == INT64_MAX]++;
        int64_t y = rng_int(&r, INT64_MIN, INT64_MIN + 1);
        assert_true(y == INT64_MIN || y == INT64_MIN + 1);
        seen_lo[y == INT64_MIN]++;
    }
    assert_true(seen_hi[0] > 50 && seen_hi[1] > 50);
    assert_true(seen_lo[0] > 50 && seen_lo[1] > 50);
}

static void test_int_large_span_half(void **state)
{
    (void)state;
    /* A span just over 2^63: rejection sampling must still stay in range and
     * split evenly around the middle. */
    rng_t r;
    rng_seed(&r, 11);
    int neg = 0;
    for (int i = 0; i < 4000; i++) {
        int64_t x = rng_int(&r, INT64_MIN, 1);
        assert_true(x <= 1);
        if (x < INT64_MIN / 2) neg++;
    }
    assert_true(neg > 1800 && neg < 2200);
}

static void test_int_rejection_reference(void **state)
{
    (void)state;
    /* For [INT64_MIN, 0] there are 2^63 + 1 values, so about half of all raw
     * outputs must be rejected to avoid bias: 8 results take 14 draws here
     * (reference values from the Python reimplementation). */
    rng_t r, shadow;
    rng_seed(&r, 21);
    rng_seed(&shadow, 21);
    const int64_t want[] = {-3565336227335864862LL, -5871956101061637438LL, -4347510926799140434LL,
                            -1001361995335100335LL, -657614857970016793LL,  -6322607761629599848LL,
                            -7447455063914293687LL, -1164598265001361154LL};
    for (int i = 0; i < 8; i++)
        assert_int_equal(rng_int(&r, INT64_MIN, 0), want[i]);
    for (int i = 0; i < 14; i++)
        rng_next(&shadow);
    assert_memory_equal(&r, &shadow, sizeof r);
}

static void test_int_uniform_chi_square(void **state)
{
    (void)state;
    rng_t r;
    rng_seed(&r, 12);
    enum { K = 7, N = 70000 };
    int c[K] = {0};
    for (int i = 0; i < N; i++) {
        int64_t x = rng_int(&r, -3, 3);
        assert_true(x >= -3 && x <= 3);
        c[x + 3]++;
    }
    double chi = 0, e = (double)N / K;
    for (int i = 0; i < K; i++)
        chi += (c[i] - e) * (c[i] - e) / e;
    assert_true(chi < 22.5); /* 6 dof, p = 0.001 */
}

static void test_normal_moments_and_draws(void **state)
{
    (void)state;
    rng_t r, shadow;
    rng_seed(&r, 13);
    rng_seed(&shadow, 13);
    enum { N = 50000 };
    double sum = 0, sq = 0;
    int beyond3 = 0;
    for (int i = 0; i < N; i++) {
        double x = rng_normal(&r);
        assert_true(isfinite(x));
        sum += x;
        sq += x * x;
        if (fabs(x) > 3) beyond3++;
        /* Exactly two draws per call, no cached value. */
        rng_next(&shadow);
        rng_next(&shadow);
        assert_memory_equal(&r, &shadow, sizeof r);
    }
    double mean = sum / N, var = sq / N - mean * mean;
    assert_true(fabs(mean) < 0.02);
    assert_true(fabs(var - 1.0) < 0.03);
    assert_true(beyond3 > 60 && beyond3 < 220); /* expected 0.27% = 135 */
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void test_shuffle_is_permutation(void **state)
{
    (void)state;
    rng_t r;
    rng_seed(&r, 14);
    int v[100];
    for (int i = 0; i < 100; i++)
        v[i] = i;
    rng_shuffle(&r, v, 100, sizeof v[0]);
    int moved = 0;
    for (int i = 0; i < 100; i++)
        if (v[i] != i) moved++;
    assert_true(moved > 80);
    qsort(v, 100, sizeof v[0], cmp_int);
    for (int i = 0; i < 100; i++)
        assert_int_equal(v[i], i);
}

static void test_shuffle_deterministic(void **state)
{
    (void)state;
    int a[50], b[50], c[50];
    for (int i = 0; i < 50; i++)
        a[i] = b[i] = c[i] = i;
    rng_t ra, rb, rc;
    rng_seed(&ra, 15);
    rng_seed(&rb, 15);
    rng_seed(&rc, 16);
    rng_shuffle(&ra, a, 50, sizeof a[0]);
    rng_shuffle(&rb, b, 50, sizeof b[0]);
    rng_shuffle(&rc, c, 50, sizeof c[0]);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
}

static void test_shuffle_trivial_sizes(void **state)
{
    (void)state;
    rng_t r, before;
    rng_seed(&r, 17);
    before = r;
    int one = 5;
    rng_shuffle(&r, &one, 1, sizeof one);
    rng_shuffle(&r, NULL, 0, sizeof one);
    assert_int_equal(one, 5);
    assert_memory_equal(&r, &before, sizeof r); /* no draws consumed */
}

typedef struct {
    int id;        // original position
    char pad[124]; // makes the element wider than the 64-byte swap buffer
} wide_elem;

static void test_shuffle_wide_elements(void **state)
{
    (void)state;
    wide_elem v[20];
    for (int i = 0; i < 20; i++) {
        v[i].id = i;
        memset(v[i].pad, 'a' + i, sizeof v[i].pad);
    }
    rng_t r;
    rng_seed(&r, 18);
    rng_shuffle(&r, v, 20, sizeof v[0]);
    int seen[20] = {0};
    for (int i = 0; i < 20; i++) {
        seen[v[i].id]++;
        for (size_t k = 0; k < sizeof v[i].pad; k++)
            assert_int_equal(v[i].pad[k], 'a' + v[i].id);
    }
    for (int i = 0; i < 20; i++)
        assert_int_equal(seen[i], 1);
}

static void test_shuffle_all_permutations_even(void **state)
{
    (void)state;
    rng_t r;
    rng_seed(&r, 19);
    int counts[6] = {0};
    enum { N = 60000 };
    for (int i = 0; i < N; i++) {
        int v[3] = {0, 1, 2};
        rng_shuffle(&r, v, 3, sizeof v[0]);
        int code = v[0] * 3 + v[1]; /* distinct for the 6 permutations */
        static const int codes[6] = {1, 2, 3, 5, 6, 7};
        int k = -1;
        for (int j = 0; j < 6; j++)
            if (codes[j] == code) k = j;
        assert_true(k >= 0);
        counts[k]++;
    }
    double chi = 0, e = N / 6.0;
    for (int j = 0; j < 6; j++)
        chi += (counts[j] - e) * (counts[j] - e) / e;
    assert_true(chi < 20.5); /* 5 dof, p = 0.001 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xoshiro_reference_state),
        cmocka_unit_test(test_seed_zero_uses_splitmix),
        cmocka_unit_test(test_seed_42_stream),
        cmocka_unit_test(test_seed_12345_stream),
        cmocka_unit_test(test_same_seed_same_stream),
        cmocka_unit_test(test_state_copy_resumes_stream),
        cmocka_unit_test(test_derive_reference_and_distinct),
        cmocka_unit_test(test_uniform_reference),
        cmocka_unit_test(test_uniform_range_and_bins),
        cmocka_unit_test(test_uniform_f_range),
        cmocka_unit_test(test_range_bounds),
        cmocka_unit_test(test_log_uniform),
        cmocka_unit_test(test_int_exact_reference),
        cmocka_unit_test(test_int_single_value),
        cmocka_unit_test(test_int_full_range_is_raw_output),
        cmocka_unit_test(test_int_extreme_ends),
        cmocka_unit_test(test_int_large_span_half),
        cmocka_unit_test(test_int_rejection_reference),
        cmocka_unit_test(test_int_uniform_chi_square),
        cmocka_unit_test(test_normal_moments_and_draws),
        cmocka_unit_test(test_shuffle_is_permutation),
        cmocka_unit_test(test_shuffle_deterministic),
        cmocka_unit_test(test_shuffle_trivial_sizes),
        cmocka_unit_test(test_shuffle_wide_elements),
        cmocka_unit_test(test_shuffle_all_permutations_even),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
