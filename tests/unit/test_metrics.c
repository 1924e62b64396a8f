/* test_metrics — accuracy and macro precision/recall/F1 against values
 * computed by hand on fixed confusion matrices, including the
 * zero_division=0 conventions (a class never predicted, a class absent). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static void fill(confusion *c, const int64_t *cm)
{
    for (int t = 0; t < c->k; t++)
        for (int p = 0; p < c->k; p++)
            for (int64_t n = 0; n < cm[t * c->k + p]; n++)
                confusion_add(c, t, p);
}

/* rows = truth, columns = prediction
 *   [4 1 0]
 *   [2 3 0]
 *   [1 1 0]   class 2 is never predicted
 * p = 4/7, 3/5, 0     r = 4/5, 3/5, 0     f1 = 8/12, 6/10, 0
 * macro p = 41/105, macro r = 7/15, macro f1 = 19/45, accuracy 7/12. */
static void test_fixed_matrix(void **state)
{
    (void)state;
    static const int64_t cm[9] = {4, 1, 0, 2, 3, 0, 1, 1, 0};
    confusion c;
    assert_int_equal(confusion_init(&c, 3), 0);
    fill(&c, cm);
    assert_int_equal(c.total, 12);
    metrics_summary s;
    confusion_summary(&c, &s);
    assert_true(fabs(s.accuracy - 7.0 / 12) < 1e-12);
    assert_true(fabs(s.precision - 41.0 / 105) < 1e-12);
    assert_true(fabs(s.recall - 7.0 / 15) < 1e-12);
    assert_true(fabs(s.f1 - 19.0 / 45) < 1e-12);
    double p, r, f;
    int64_t sup;
    confusion_class(&c, 0, &p, &r, &f, &sup);
    assert_true(fabs(p - 4.0 / 7) < 1e-12 && fabs(r - 0.8) < 1e-12 && fabs(f - 2.0 / 3) < 1e-12);
    assert_int_equal(sup, 5);
    confusion_class(&c, 2, &p, &r, &f, &sup);
    assert_true(p == 0.0 && r == 0.0 && f == 0.0);
    assert_int_equal(sup, 2);

    json_t *j = confusion_to_json(&c);
    char *txt = json_dumps(j, JSON_COMPACT);
    assert_string_equal(txt, "[[4,1,0],[2,3,0],[1,1,0]]");
    free(txt);
    json_decref(j);

    confusion_reset(&c);
    confusion_summary(&c, &s);
    assert_true(s.accuracy == 0.0 && s.precision == 0.0 && s.f1 == 0.0);
    confusion_free(&c);
}

/* A class with no samples and no predictions is left out of the macro
 * average (scikit-learn's default labels): [[3,0],[0,0]] gives 1.0 for all,
 * while a sample of class 1 predicted as 0 brings class 1 in:
 * [[3,0],[1,0]]: p = 3/4, 0 -> 3/8; r = 1, 0 -> 1/2; f1 = 6/7, 0 -> 3/7. */
static void test_absent_class(void **state)
{
    (void)state;
    static const int64_t cm[4] = {3, 0, 0, 0};
    confusion c;
    assert_int_equal(confusion_init(&c, 2), 0);
    fill(&c, cm);
    metrics_summary s;
    confusion_summary(&c, &s);
    assert_true(s.accuracy == 1.0);
    assert_true(s.precision == 1.0 && s.recall == 1.0 && s.f1 == 1.0);
    confusion_add(&c, 1, 0);
    confusion_summary(&c, &s);
    assert_true(fabs(s.accuracy - 0.75) < 1e-12);
    assert_true(fabs(s.precision - 3.0 / 8) < 1e-12);
    assert_true(fabs(s.recall - 0.5) < 1e-12);
    assert_true(fabs(s.f1 - 3.0 / 7) < 1e-12);
    confusion_free(&c);
}

/* F1 is the mean of per-class F1, not the F1 of macro precision and recall:
 * [[1,1],[0,2]]: f1 = 2/3, 4/5 -> 11/15; p = 1, 2/3; r = 1/2, 1. */
static void test_macro_f1_is_mean_of_f1(void **state)
{
    (void)state;
    static const int64_t cm[4] = {1, 1, 0, 2};
    confusion c;
    assert_int_equal(confusion_init(&c, 2), 0);
    fill(&c, cm);
    metrics_summary s;
    confusion_summary(&c, &s);
    assert_true(fabs(s.f1 - 11.0 / 15) < 1e-12);
    assert_true(fabs(s.precision - 5.0 / 6) < 1e-12);
    assert_true(fabs(s.recall - 0.75) < 1e-12);
    assert_true(fabs(s.accuracy - 0.75) < 1e-12);
    confusion_free(&c);
}

static void test_argmax(void **state)
{
    (void)state;
    float a[4] = {0.5f, 2.0f, 2.0f, -1.0f};
    assert_int_equal(metrics_argmax(a, 4), 1);
    float b[3] = {NAN, -5.0f, 3.0f};
    assert_int_equal(metrics_argmax(b, 3), 2);
    float c1[1] = {7.0f};
    assert_int_equal(metrics_argmax(c1, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_matrix),
        cmocka_unit_test(test_absent_class),
        cmocka_unit_test(test_macro_f1_is_mean_of_f1),
        cmocka_unit_test(test_argmax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
