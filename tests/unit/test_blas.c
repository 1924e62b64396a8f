/* test_blas — the OpenBLAS set-up: cblas_sgemm of the kernel in use agrees
 * with a naive triple loop on several shapes and transpositions (the "verify
 * results against a naive reference whenever you change the kernel" rule),
 * the kernel name is reported, the thread count can be set, and the kernel
 * choice logic picks an AVX-512/AVX2 kernel over a generic fallback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas_setup.h"
#include "worker_cmds.h"

/* C (M, N) = alpha * op(A) op(B) + beta * C, row-major, double accumulation. */
static void sgemm_naive(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                        const float *b, int ldb, float beta, float *c, int ldc)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++) {
                double x = ta ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                double y = tb ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                s += x * y;
            }
            c[(size_t)i * ldc + j] = (float)(alpha * s + beta * c[(size_t)i * ldc + j]);
        }
}

/* Deterministic values in [-1, 1) from a 64-bit LCG (state *R). */
static void fill(float *x, size_t n, uint64_t *r)
{
    for (size_t i = 0; i < n; i++) {
        *r = *r * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)((double)(*r >> 11) * 0x1p-52 - 1.0);
    }
}

static void check_shape(int ta, int tb, int m, int n, int k, float alpha, float beta, uint64_t *r)
{
    int lda = ta ? m : k, ldb = tb ? k : n, ldc = n;
    float *a = malloc(sizeof(float) * (size_t)m * k);
    float *b = malloc(sizeof(float) * (size_t)k * n);
    float *c = malloc(sizeof(float) * (size_t)m * n);
    float *ref = malloc(sizeof(float) * (size_t)m * n);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_non_null(ref);
    fill(a, (size_t)m * k, r);
    fill(b, (size_t)k * n, r);
    fill(c, (size_t)m * n, r);
    memcpy(ref, c, sizeof(float) * (size_t)m * n);
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
                k, alpha, a, lda, b, ldb, beta, c, ldc);
    sgemm_naive(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, ref, ldc);
    /* Each entry is a sum of k products of values in [-1, 1]: float32
     * rounding error stays well below 1e-5 * k. */
    double tol = 1e-5 * (k + 1);
    for (size_t i = 0; i < (size_t)m * n; i++)
        if (fabs((double)c[i] - ref[i]) > tol)
            fail_msg("sgemm %c%c %dx%dx%d (kernel %s): C[%zu] = %g, naive %g", ta ? 'T' : 'N',
                     tb ? 'T' : 'N', m, n, k, blas_core_name(), i, c[i], ref[i]);
    free(a);
    free(b);
    free(c);
    free(ref);
}

static void test_sgemm_matches_naive(void **state)
{
    (void)state;
    uint64_t r = 7;
    static const int shapes[][3] = {
        {1, 1, 1},    {3, 5, 7},     {17, 33, 9},   {64, 64, 64},  {128, 196, 288},
        {31, 300, 1}, {1, 257, 130}, {96, 49, 576}, {5, 1000, 64},
    };
    for (int t = 0; t < 2; t++) {
        blas_set_threads(t ? 2 : 1);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int ta = 0; ta < 2; ta++)
                for (int tb = 0; tb < 2; tb++)
                    check_shape(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], ta ? 0.5f : 1.0f,
                                tb ? 1.0f : 0.0f, &r);
    }
}

static void test_kernel_reported(void **state)
{
    (void)state;
    const char *n = blas_core_name();
    assert_non_null(n);
    assert_true(strlen(n) > 0);
    blas_set_threads(1);
    assert_int_equal(blas_threads(), 1);
    blas_set_threads(2);
    assert_int_equal(blas_threads(), 2);
    blas_set_threads(0); // clamped to 1
    assert_int_equal(blas_threads(), 1);
}

static void test_pick_core(void **state)
{
    (void)state;
    /* Fallbacks on an AVX-512 CPU. */
    assert_string_equal(blas_pick_core("Prescott", 1, 0, 1), "SkylakeX");
    assert_string_equal(blas_pick_core("Prescott", 1, 1, 1), "Cooperlake");
    assert_string_equal(blas_pick_core("Core2", 1, 0, 1), "SkylakeX");
    assert_string_equal(blas_pick_core("Nehalem", 1, 1, 1), "Cooperlake");
    assert_string_equal(blas_pick_core("Sandybridge", 1, 0, 1), "SkylakeX");
    assert_string_equal(blas_pick_core("Haswell", 1, 0, 1), "SkylakeX");
    assert_string_equal(blas_pick_core("Zen", 1, 1, 1), "Cooperlake");
    assert_string_equal(blas_pick_core(NULL, 1, 0, 1), "SkylakeX");
    /* Already right. */
    assert_null(blas_pick_core("SkylakeX", 1, 0, 1));
    assert_null(blas_pick_core("Cooperlake", 1, 1, 1));
    assert_null(blas_pick_core("SkylakeX", 1, 1, 1));
    assert_null(blas_pick_core("skylakex", 1, 0, 1));
    assert_null(blas_pick_core("SapphireRapids", 1, 1, 1));
    /* AVX2 machines. */
    assert_string_equal(blas_pick_core("Prescott", 0, 0, 1), "Haswell");
    assert_string_equal(blas_pick_core("Sandybridge", 0, 0, 1), "Haswell");
    assert_null(blas_pick_core("Haswell", 0, 0, 1));
    assert_null(blas_pick_core("Zen", 0, 0, 1));
    /* Neither: nothing better to ask for. */
    assert_null(blas_pick_core("Prescott", 0, 0, 0));
    assert_null(blas_pick_core("Nehalem", 0, 0, 0));
}

/* On a CPU with AVX-512 or AVX2 the kernel in use (after blas_ensure_kernel
 * in the worker, or because OpenBLAS detected it) must be of that level:
 * this test binary runs blas_ensure_kernel itself. */
static char **saved_argv;
static void test_kernel_level_after_ensure(void **state)
{
    (void)state;
    __builtin_cpu_init();
    int f = __builtin_cpu_supports("avx512f"), bf = __builtin_cpu_supports("avx512bf16"),
        a2 = __builtin_cpu_supports("avx2");
    const char *want = blas_pick_core(blas_core_name(), f, bf, a2);
    if (want && getenv("OPENBLAS_CORETYPE") == NULL)
        fail_msg("kernel %s on a CPU for %s even after blas_ensure_kernel", blas_core_name(), want);
}

int main(int argc, char **argv)
{
    /* Re-executes this test binary with the right kernel if OpenBLAS fell
     * back to a generic one, exactly as sweep-worker does. */
    saved_argv = argv;
    blas_ensure_kernel(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgemm_matches_naive),
        cmocka_unit_test(test_kernel_reported),
        cmocka_unit_test(test_pick_core),
        cmocka_unit_test(test_kernel_level_after_ensure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
