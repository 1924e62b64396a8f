/* test_lr_schedule — the per-step learning rates of the constant, cosine and
 * step schedules with and without warmup, against values worked out by hand
 * from the formulas in lr_schedule.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "params.h"
#include "lr_schedule.h"

#define NEAR(a, b) assert_true(fabs((a) - (b)) < 1e-12)

static void test_constant_and_warmup(void **state)
{
    (void)state;
    trial_params p;
    params_defaults(&p);
    p.lr = 0.2;
    p.epochs = 4;
    p.lr_schedule = SCHED_CONSTANT;
    NEAR(lr_schedule_at(&p, 0, 0, 4), 0.2);
    NEAR(lr_schedule_at(&p, 3, 3, 4), 0.2);
    p.warmup_epochs = 1; // 4 warmup steps: 0.05, 0.1, 0.15, 0.2, then 0.2
    NEAR(lr_schedule_at(&p, 0, 0, 4), 0.05);
    NEAR(lr_schedule_at(&p, 0, 1, 4), 0.1);
    NEAR(lr_schedule_at(&p, 0, 3, 4), 0.2);
    NEAR(lr_schedule_at(&p, 1, 0, 4), 0.2);
    NEAR(lr_schedule_at(&p, 3, 3, 4), 0.2);
}

static void test_cosine(void **state)
{
    (void)state;
    trial_params p;
    params_defaults(&p);
    p.lr = 1.0;
    p.epochs = 2;
    p.lr_schedule = SCHED_COSINE;
    // T = 4 steps: (1 + cos(pi t / 4)) / 2
    NEAR(lr_schedule_at(&p, 0, 0, 2), 1.0);
    NEAR(lr_schedule_at(&p, 0, 1, 2), (1 + cos(M_PI / 4)) / 2);
    NEAR(lr_schedule_at(&p, 1, 0, 2), 0.5);
    NEAR(lr_schedule_at(&p, 1, 1, 2), (1 + cos(3 * M_PI / 4)) / 2);
    // with one warmup epoch of 2 steps: 0.5, 1.0, then cosine over the last 2 steps
    p.warmup_epochs = 1;
    NEAR(lr_schedule_at(&p, 0, 0, 2), 0.5);
    NEAR(lr_schedule_at(&p, 0, 1, 2), 1.0);
    NEAR(lr_schedule_at(&p, 1, 0, 2), 1.0);
    NEAR(lr_schedule_at(&p, 1, 1, 2), 0.5);
}

static void test_step(void **state)
{
    (void)state;
    trial_params p;
    params_defaults(&p);
    p.lr = 1.0;
    p.epochs = 9; // k = 3
    p.lr_schedule = SCHED_STEP;
    NEAR(lr_schedule_at(&p, 0, 0, 5), 1.0);
    NEAR(lr_schedule_at(&p, 2, 4, 5), 1.0);
    NEAR(lr_schedule_at(&p, 3, 0, 5), 0.1);
    NEAR(lr_schedule_at(&p, 5, 4, 5), 0.1);
    NEAR(lr_schedule_at(&p, 6, 0, 5), 0.01);
    NEAR(lr_schedule_at(&p, 8, 4, 5), 0.01);
    p.epochs = 2; // k = max(1, 0) = 1
    NEAR(lr_schedule_at(&p, 0, 0, 1), 1.0);
    NEAR(lr_schedule_at(&p, 1, 0, 1), 0.1);
    p.epochs = 10; // k = 3; warmup applies first
    p.warmup_epochs = 1;
    NEAR(lr_schedule_at(&p, 0, 0, 2), 0.5);
    NEAR(lr_schedule_at(&p, 0, 1, 2), 1.0);
    NEAR(lr_schedule_at(&p, 3, 0, 2), 0.1);
    NEAR(lr_schedule_at(&p, 9, 1, 2), 0.001);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constant_and_warmup),
        cmocka_unit_test(test_cosine),
        cmocka_unit_test(test_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
