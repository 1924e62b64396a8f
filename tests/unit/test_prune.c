/* Tests for daemon/prune.c: the median and ASHA rules on hand-computed
 * cases, ties included (a tie continues), and which epochs are decision
 * points. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "prune.h"

#include <string.h>

static const prune_config median_w1_m2 = {
    .kind = PRUNE_MEDIAN, .warmup_epochs = 1, .min_trials = 2};
static const prune_config asha_r1_e2 = {.kind = PRUNE_ASHA, .min_epochs = 1, .reduction = 2};
static const prune_config asha_r2_e3 = {.kind = PRUNE_ASHA, .min_epochs = 2, .reduction = 3};

static void test_decision_epochs(void **state)
{
    (void)state;
    /* median after W = 1: epochs 2, 3, ... */
    assert_false(prune_is_decision_epoch(&median_w1_m2, 1));
    assert_true(prune_is_decision_epoch(&median_w1_m2, 2));
    assert_true(prune_is_decision_epoch(&median_w1_m2, 7));
    /* asha R = 2, ETA = 3: rungs 2, 6, 18. */
    int rungs = 0;
    for (int e = 1; e <= 20; e++)
        if (prune_is_decision_epoch(&asha_r2_e3, e)) {
            assert_true(e == 2 || e == 6 || e == 18);
            rungs++;
        }
    assert_int_equal(rungs, 3);
    /* asha R = 1, ETA = 2: 1, 2, 4, 8. */
    assert_true(prune_is_decision_epoch(&asha_r1_e2, 1));
    assert_true(prune_is_decision_epoch(&asha_r1_e2, 4));
    assert_false(prune_is_decision_epoch(&asha_r1_e2, 3));
    prune_config none = {.kind = PRUNE_NONE};
    assert_false(prune_is_decision_epoch(&none, 1));
}

static void test_median_value(void **state)
{
    (void)state;
    double odd[] = {0.3, 0.1, 0.2};
    assert_true(prune_median(odd, 3) == 0.2);
    double even[] = {0.4, 0.1, 0.3, 0.2};
    assert_true(prune_median(even, 4) == 0.25);
    double one[] = {0.7};
    assert_true(prune_median(one, 1) == 0.7);
}

static void test_median_rule(void **state)
{
    (void)state;
    char why[256];
    /* Others 0.5, 0.6, 0.7: median 0.6. 0.55 < 0.6 stops (maximize). */
    double o1[] = {0.7, 0.5, 0.6};
    assert_true(prune_decide(&median_w1_m2, true, "val_accuracy", 2, 0.55, o1, 3, why, sizeof why));
    assert_string_equal(why, "median: best val_accuracy 0.55 is worse than the median 0.6 of 3"
                             " other trials at epoch 2");
    /* Equal to the median: continues. */
    double o2[] = {0.7, 0.5, 0.6};
    assert_false(prune_decide(&median_w1_m2, true, "val_accuracy", 2, 0.6, o2, 3, why, sizeof why));
    assert_non_null(strstr(why, "is not worse than the median 0.6"));
    /* Fewer than M = 2 others: continues whatever the value. */
    double o3[] = {0.9};
    assert_false(prune_decide(&median_w1_m2, true, "val_accuracy", 2, 0.1, o3, 1, why, sizeof why));
    assert_string_equal(why, "median: 1 other trials at epoch 2, fewer than min_trials 2");
    /* Minimize: 0.5 above the median 0.35 of {0.3, 0.4} stops; 0.3 does not. */
    double o4[] = {0.4, 0.3};
    assert_true(prune_decide(&median_w1_m2, false, "val_loss", 3, 0.5, o4, 2, why, sizeof why));
    double o5[] = {0.4, 0.3};
    assert_false(prune_decide(&median_w1_m2, false, "val_loss", 3, 0.3, o5, 2, why, sizeof why));
}

static void test_asha_rule(void **state)
{
    (void)state;
    char why[256];
    /* ETA 2. The first trial at a rung: n = 1, keep ceil(1/2) = 1: continues. */
    assert_false(prune_decide(&asha_r1_e2, true, "val_accuracy", 1, 0.1, NULL, 0, why, sizeof why));
    assert_string_equal(why, "asha: rung 1: best val_accuracy 0.1 ranks 1 of 1, the top 1 (1/2)"
                             " continue");
    /* Second, worse: n = 2, keep 1, one ahead: stops. */
    double a[] = {0.5};
    assert_true(prune_decide(&asha_r1_e2, true, "val_accuracy", 1, 0.4, a, 1, why, sizeof why));
    assert_string_equal(why, "asha: rung 1: best val_accuracy 0.4 ranks 2 of 2, the top 1 (1/2)"
                             " continue");
    /* Second, tied with the first: nobody strictly ahead: continues. */
    double b[] = {0.5};
    assert_false(prune_decide(&asha_r1_e2, true, "val_accuracy", 1, 0.5, b, 1, why, sizeof why));
    /* Third of {0.5, 0.4}, value 0.45: n = 3, keep ceil(3/2) = 2, one ahead: continues. */
    double c[] = {0.5, 0.4};
    assert_false(prune_decide(&asha_r1_e2, true, "val_accuracy", 1, 0.45, c, 2, why, sizeof why));
    /* Fourth of {0.5, 0.4, 0.45}, value 0.42: n = 4, keep 2, two ahead: stops. */
    double d[] = {0.5, 0.4, 0.45};
    assert_true(prune_decide(&asha_r1_e2, true, "val_accuracy", 1, 0.42, d, 3, why, sizeof why));
    /* ETA 3, minimize: {0.2, 0.3} and 0.25: n = 3, keep 1, 0.2 ahead: stops. */
    double e[] = {0.2, 0.3};
    assert_true(prune_decide(&asha_r2_e3, false, "val_loss", 2, 0.25, e, 2, why, sizeof why));
    double f[] = {0.2, 0.3};
    assert_false(prune_decide(&asha_r2_e3, false, "val_loss", 2, 0.15, f, 2, why, sizeof why));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decision_epochs),
        cmocka_unit_test(test_median_value),
        cmocka_unit_test(test_median_rule),
        cmocka_unit_test(test_asha_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
