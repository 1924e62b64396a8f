/* test_blas — the OpenBLAS set-up: cblas_sgemm of the kernel in use agrees
 * with a naive triple loop on several shapes and transpositions (the "verify
 * results against a naive reference whenever you change the kernel" rule),
 * the kernel name is reported, the thread count can be set, the blas_core
 * policy (inherit / auto / NAME) picks the kernels its contract says, and the
 * start-up self-check passes and can be made to fail through its test hook. */
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

#include "blas_policy.h"
#include "blas_setup.h"
#include "errors.h"
#include "worker_cmds.h"

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
    blas_sgemm_ref(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, ref, ldc);
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

/* blas_policy_target: the kernel to re-execute with, for each policy. */
static void test_policy_target(void **state)
{
    (void)state;
    static const blas_cpu bf16 = {true, true, true}, avx512 = {true, true, false},
                          avx2 = {true, false, false}, old = {false, false, false};
    static const struct {
        const char *policy, *inherited, *loaded;
        const blas_cpu *cpu;
        const char *want; // NULL: keep the loaded kernel
    } cases[] = {
        /* inherit: an inherited kernel is kept, whatever it is. */
        {"inherit", "Haswell", "Haswell", &bf16, NULL},
        {"inherit", "Prescott", "Prescott", &bf16, NULL},
        {NULL, "SkylakeX", "SkylakeX", &bf16, NULL},
        /* inherit, nothing inherited: OpenBLAS's pick is corrected only when
         * it is below the CPU's vector level. */
        {"inherit", NULL, "Prescott", &avx512, "SkylakeX"},
        {"inherit", "", "Prescott", &bf16, "Cooperlake"},
        {"inherit", NULL, "Core2", &avx512, "SkylakeX"},
        {"inherit", NULL, "Sandybridge", &avx512, "SkylakeX"},
        {"inherit", NULL, "Haswell", &avx512, "SkylakeX"},
        {"inherit", NULL, "Zen", &bf16, "Cooperlake"},
        {"inherit", NULL, NULL, &avx512, "SkylakeX"},
        {"inherit", NULL, "SkylakeX", &bf16, NULL},
        {"inherit", NULL, "Cooperlake", &bf16, NULL},
        {"inherit", NULL, "skylakex", &avx512, NULL},
        {"inherit", NULL, "Prescott", &avx2, "Haswell"},
        {"inherit", NULL, "Sandybridge", &avx2, "Haswell"},
        {"inherit", NULL, "Haswell", &avx2, NULL},
        {"inherit", NULL, "Zen", &avx2, NULL},
        {"inherit", NULL, "Prescott", &old, NULL},
        {"inherit", NULL, "Nehalem", &old, NULL},
        /* auto: the best kernel for the CPU, even over an inherited one. */
        {"auto", "Haswell", "Haswell", &bf16, "Cooperlake"},
        {"auto", "Haswell", "Haswell", &avx512, "SkylakeX"},
        {"auto", "SkylakeX", "SkylakeX", &bf16, "Cooperlake"},
        {"auto", NULL, "Prescott", &avx2, "Haswell"},
        {"auto", "Haswell", "Haswell", &avx2, NULL},
        {"auto", NULL, "Cooperlake", &bf16, NULL},
        {"auto", NULL, "SapphireRapids", &bf16, NULL},
        {"auto", "Prescott", "Prescott", &old, NULL},
        /* NAME: that kernel, when the CPU can run it. */
        {"SkylakeX", "Haswell", "Haswell", &bf16, "SkylakeX"},
        {"skylakex", NULL, "Cooperlake", &bf16, "SkylakeX"},
        {"Haswell", NULL, "Cooperlake", &bf16, "Haswell"},
        {"Haswell", NULL, "haswell", &bf16, NULL},
        {"Prescott", NULL, "Haswell", &avx2, "Prescott"},
        {"Cooperlake", "Haswell", "Haswell", &avx512, NULL},
        {"SkylakeX", NULL, "Haswell", &avx2, NULL},
        {"Zen", NULL, "Prescott", &old, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char why[256];
        const char *got = blas_policy_target(cases[i].policy, cases[i].inherited, cases[i].loaded,
                                             cases[i].cpu, why, sizeof why);
        if ((got == NULL) != (cases[i].want == NULL) || (got && strcmp(got, cases[i].want)))
            fail_msg("case %zu: policy %s, inherited %s, loaded %s: got %s, want %s", i,
                     cases[i].policy ? cases[i].policy : "(null)",
                     cases[i].inherited ? cases[i].inherited : "(none)",
                     cases[i].loaded ? cases[i].loaded : "(null)", got ? got : "keep",
                     cases[i].want ? cases[i].want : "keep");
    }
    /* A forced kernel the CPU cannot run says why. */
    char why[256];
    assert_null(blas_policy_target("Cooperlake", NULL, "Haswell", &avx512, why, sizeof why));
    assert_non_null(strstr(why, "AVX512_BF16"));
    assert_non_null(strstr(why, "Cooperlake"));
    assert_null(blas_policy_target("SkylakeX", NULL, "Haswell", &avx2, why, sizeof why));
    assert_non_null(strstr(why, "AVX-512"));
    assert_null(blas_policy_target("auto", NULL, "Haswell", &avx2, why, sizeof why));
    assert_string_equal(why, "");
}

static void test_policy_check(void **state)
{
    (void)state;
    char msg[768];
    assert_int_equal(blas_policy_check("inherit", msg, sizeof msg), 0);
    assert_int_equal(blas_policy_check("auto", msg, sizeof msg), 0);
    assert_int_equal(blas_policy_check("SkylakeX", msg, sizeof msg), 0);
    assert_int_equal(blas_policy_check("cooperlake", msg, sizeof msg), 0);
    assert_string_equal(blas_core_canonical("cooperlake"), "Cooperlake");
    assert_null(blas_core_canonical("Pentium"));
    assert_int_equal(blas_policy_check("Auto ", msg, sizeof msg), ERR_INVALID);
    assert_non_null(strstr(msg, "'Auto '"));
    assert_int_equal(blas_policy_check("fast", msg, sizeof msg), ERR_INVALID);
    assert_non_null(strstr(msg, "blas_core: expected inherit, auto or an OpenBLAS kernel name"));
    assert_non_null(strstr(msg, "SkylakeX"));
    assert_non_null(strstr(msg, "'fast'"));
    assert_int_equal(blas_policy_check("", msg, sizeof msg), ERR_INVALID);
    assert_int_equal(blas_policy_check(NULL, msg, sizeof msg), ERR_INVALID);
}

/* What the daemon reports: the kernel workers will run, and the warning for
 * an inherited kernel below the CPU's level. */
static void test_policy_expect_and_advice(void **state)
{
    (void)state;
    static const blas_cpu bf16 = {true, true, true}, avx2 = {true, false, false};
    assert_string_equal(blas_policy_expect("inherit", "Haswell", &bf16), "Haswell");
    assert_null(blas_policy_expect("inherit", NULL, &bf16));
    assert_null(blas_policy_expect("inherit", "", &bf16));
    assert_string_equal(blas_policy_expect("auto", "Haswell", &bf16), "Cooperlake");
    assert_string_equal(blas_policy_expect("auto", "Haswell", &avx2), "Haswell");
    assert_string_equal(blas_policy_expect("skylakex", "Haswell", &bf16), "SkylakeX");
    assert_string_equal(blas_policy_expect("SkylakeX", "Haswell", &avx2), "Haswell");
    char adv[512];
    assert_true(blas_policy_advice("inherit", "Haswell", &bf16, adv, sizeof adv));
    assert_non_null(strstr(adv, "Haswell"));
    assert_non_null(strstr(adv, "Cooperlake"));
    assert_non_null(strstr(adv, "blas_core = auto"));
    assert_non_null(strstr(adv, "slower"));
    assert_true(blas_policy_advice(NULL, "Prescott", &avx2, adv, sizeof adv));
    assert_non_null(strstr(adv, "Haswell"));
    assert_false(blas_policy_advice("auto", "Haswell", &bf16, adv, sizeof adv));
    assert_false(blas_policy_advice("Haswell", "Haswell", &bf16, adv, sizeof adv));
    assert_false(blas_policy_advice("inherit", NULL, &bf16, adv, sizeof adv));
    assert_false(blas_policy_advice("inherit", "Cooperlake", &bf16, adv, sizeof adv));
    assert_false(blas_policy_advice("inherit", "Haswell", &avx2, adv, sizeof adv));
}

/* The start-up self-check passes for the kernel in use and fails, naming the
 * hook, when SWEEP_BLAS_BAD_KERNEL names it. */
static void test_selfcheck(void **state)
{
    (void)state;
    char why[256] = "";
    const char *prev = getenv("SWEEP_BLAS_BAD_KERNEL");
    char *saved = prev ? strdup(prev) : NULL;
    unsetenv("SWEEP_BLAS_BAD_KERNEL");
    assert_int_equal(blas_selfcheck(why, sizeof why), 0);
    setenv("SWEEP_BLAS_BAD_KERNEL", blas_core_name(), 1);
    assert_int_equal(blas_selfcheck(why, sizeof why), 1);
    assert_non_null(strstr(why, "SWEEP_BLAS_BAD_KERNEL"));
    setenv("SWEEP_BLAS_BAD_KERNEL", "NoSuchKernel", 1);
    assert_int_equal(blas_selfcheck(why, sizeof why), 0);
    if (saved)
        setenv("SWEEP_BLAS_BAD_KERNEL", saved, 1);
    else
        unsetenv("SWEEP_BLAS_BAD_KERNEL");
    free(saved);
}

/* After blas_ensure_kernel under inherit (as this binary runs it), nothing
 * is left to correct: an inherited kernel is kept, and without one the kernel
 * is of the CPU's vector level. */
static void test_kernel_level_after_ensure(void **state)
{
    (void)state;
    blas_cpu cpu;
    blas_cpu_detect(&cpu);
    const char *inh = getenv(BLAS_INHERITED_VAR);
    const char *want = blas_policy_target("inherit", inh, blas_core_name(), &cpu, NULL, 0);
    if (want)
        fail_msg("kernel %s on a CPU for %s even after blas_ensure_kernel", blas_core_name(), want);
    if (inh && *inh) assert_string_equal(getenv("OPENBLAS_CORETYPE"), inh);
}

int main(int argc, char **argv)
{
    /* Re-executes this test binary with the right kernel if OpenBLAS fell
     * back to a generic one, exactly as sweep-worker does. */
    (void)argc;
    blas_ensure_kernel("inherit", argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgemm_matches_naive),
        cmocka_unit_test(test_kernel_reported),
        cmocka_unit_test(test_policy_target),
        cmocka_unit_test(test_policy_check),
        cmocka_unit_test(test_policy_expect_and_advice),
        cmocka_unit_test(test_selfcheck),
        cmocka_unit_test(test_kernel_level_after_ensure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
