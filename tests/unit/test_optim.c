/* test_optim — SGD (momentum, Nesterov, L2, L1), Adam and AdamW against a
 * double-precision re-statement of torch.optim's update rules over several
 * steps with changing gradients and learning rates; state layout, slot names
 * and config validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "optim.h"
#include "params.h"
#include "pool.h"

#define N 7
#define STEPS 4

static const float P0[N] = {0.5f, -1.25f, 0.0f, 2.0f, -0.01f, 0.3f, -3.0f};

static float grad_at(int step, int i)
{
    return (float)sin(1.0 + 0.7 * i + 1.3 * step) * (i == 2 ? 0.0f : 1.0f);
}

static float lr_at(int step)
{
    return 0.1f / (float)(1 + step);
}

static double sgn(double x)
{
    return (x > 0) - (x < 0);
}

/* torch.optim.SGD (dampening 0) in double, plus our L1 term. */
static void ref_sgd(double *p, const optim_config *c)
{
    double buf[N] = {0};
    for (int s = 0; s < STEPS; s++)
        for (int i = 0; i < N; i++) {
            double g = grad_at(s, i) + c->weight_decay * p[i] + c->l1 * sgn(p[i]);
            if (c->momentum > 0) {
                buf[i] = s == 0 ? g : c->momentum * buf[i] + g;
                g = c->nesterov ? g + c->momentum * buf[i] : buf[i];
            }
            p[i] -= lr_at(s) * g;
        }
}

/* torch.optim.Adam / AdamW in double. */
static void ref_adam(double *p, const optim_config *c)
{
    double m[N] = {0}, v[N] = {0};
    for (int s = 0; s < STEPS; s++) {
        int t = s + 1;
        double lr = lr_at(s);
        for (int i = 0; i < N; i++) {
            double g = grad_at(s, i) + c->l1 * sgn(p[i]);
            if (c->kind == OPTIM_ADAMW)
                p[i] *= 1 - lr * c->weight_decay;
            else
                g += c->weight_decay * p[i];
            m[i] = c->momentum * m[i] + (1 - c->momentum) * g;
            v[i] = c->beta2 * v[i] + (1 - c->beta2) * g * g;
            double bc1 = 1 - pow(c->momentum, t), bc2 = 1 - pow(c->beta2, t);
            double denom = sqrt(v[i]) / sqrt(bc2) + c->eps;
            p[i] -= lr / bc1 * m[i] / denom;
        }
    }
}

static void run_and_compare(const optim_config *c)
{
    optim o;
    char msg[128];
    assert_int_equal(optim_init(&o, c, N, msg, sizeof msg), 0);
    float p[N], g[N];
    memcpy(p, P0, sizeof p);
    for (int s = 0; s < STEPS; s++) {
        for (int i = 0; i < N; i++)
            g[i] = grad_at(s, i);
        optim_step(&o, p, g, lr_at(s));
    }
    double r[N];
    for (int i = 0; i < N; i++)
        r[i] = P0[i];
    if (c->kind == OPTIM_SGD)
        ref_sgd(r, c);
    else
        ref_adam(r, c);
    for (int i = 0; i < N; i++) {
        if (fabs(p[i] - r[i]) > 1e-5 * (1 + fabs(r[i]))) {
            print_error("kind %d param %d: %.8g vs reference %.8g\n", c->kind, i, p[i], r[i]);
            fail();
        }
    }
    assert_int_equal(o.step, STEPS);
    optim_free(&o);
}

static void test_sgd(void **state)
{
    (void)state;
    optim_config c = {.kind = OPTIM_SGD};
    run_and_compare(&c); // plain SGD
    c.momentum = 0.9f;
    run_and_compare(&c);
    c.weight_decay = 0.01f;
    run_and_compare(&c);
    c.nesterov = 1;
    run_and_compare(&c);
    c.l1 = 0.003f;
    run_and_compare(&c);
}

static void test_sgd_first_step(void **state)
{
    (void)state;
    /* one step of SGD with momentum equals plain SGD: the buffer starts as the gradient */
    optim_config c = {.kind = OPTIM_SGD, .momentum = 0.9f};
    optim o;
    assert_int_equal(optim_init(&o, &c, 2, NULL, 0), 0);
    float p[2] = {1, 2}, g[2] = {0.5f, -1};
    optim_step(&o, p, g, 0.1f);
    assert_float_equal(p[0], 0.95f, 1e-7);
    assert_float_equal(p[1], 2.1f, 1e-6);
    assert_float_equal(optim_slot(&o, 0)[1], -1.0f, 0);
    optim_free(&o);
}

static void test_adam(void **state)
{
    (void)state;
    optim_config c = {.kind = OPTIM_ADAM, .momentum = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    run_and_compare(&c);
    c.weight_decay = 0.05f;
    run_and_compare(&c);
    c.l1 = 0.01f;
    run_and_compare(&c);
    c.kind = OPTIM_ADAMW;
    c.l1 = 0;
    run_and_compare(&c);
    /* the first Adam step moves every parameter with a gradient by about lr */
    optim o;
    optim_config a = {.kind = OPTIM_ADAM, .momentum = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    assert_int_equal(optim_init(&o, &a, 2, NULL, 0), 0);
    float p[2] = {0, 0}, g[2] = {3, -0.001f};
    optim_step(&o, p, g, 0.01f);
    assert_float_equal(p[0], -0.01f, 1e-6);
    assert_float_equal(p[1], 0.01f, 1e-5);
    optim_free(&o);
}

static void test_state_layout(void **state)
{
    (void)state;
    optim o;
    optim_config c = {.kind = OPTIM_SGD, .momentum = 0};
    assert_int_equal(optim_init(&o, &c, 5, NULL, 0), 0);
    assert_int_equal(o.slots, 0);
    assert_null(optim_slot(&o, 0));
    optim_free(&o);
    c.momentum = 0.5f;
    assert_int_equal(optim_init(&o, &c, 5, NULL, 0), 0);
    assert_int_equal(o.slots, 1);
    assert_string_equal(optim_slot_name(&o, 0), "momentum");
    assert_null(optim_slot_name(&o, 1));
    optim_free(&o);
    optim_config a = {.kind = OPTIM_ADAMW, .momentum = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    assert_int_equal(optim_init(&o, &a, 5, NULL, 0), 0);
    assert_int_equal(o.slots, 2);
    assert_ptr_equal(optim_slot(&o, 1), o.state + 5);
    assert_string_equal(optim_slot_name(&o, 0), "exp_avg");
    assert_string_equal(optim_slot_name(&o, 1), "exp_avg_sq");
    float p[5] = {1, 1, 1, 1, 1}, g[5] = {1, 1, 1, 1, 1};
    optim_step(&o, p, g, 0.1f);
    assert_true(optim_slot(&o, 1)[4] > 0);
    optim_reset(&o);
    assert_int_equal(o.step, 0);
    assert_float_equal(optim_slot(&o, 1)[4], 0, 0);
    optim_free(&o);
}

static void test_config(void **state)
{
    (void)state;
    trial_params tp;
    params_defaults(&tp);
    tp.optimizer = OPTIM_ADAM;
    tp.momentum = 0.8;
    tp.weight_decay = 0.001;
    tp.l1 = 0.0001;
    optim_config c;
    optim_config_from_params(&c, &tp);
    assert_int_equal(c.kind, OPTIM_ADAM);
    assert_float_equal(c.momentum, 0.8f, 1e-7);
    assert_float_equal(c.beta2, 0.999f, 0);
    assert_float_equal(c.eps, 1e-8f, 0);
    assert_float_equal(c.weight_decay, 0.001f, 1e-9);
    assert_float_equal(c.l1, 0.0001f, 1e-10);
    assert_int_equal(c.nesterov, 0);

    optim o;
    char msg[128] = "";
    optim_config bad = {.kind = OPTIM_SGD, .momentum = 0, .nesterov = 1};
    assert_int_equal(optim_init(&o, &bad, 3, msg, sizeof msg), ERR_INVALID);
    assert_non_null(strstr(msg, "nesterov"));
    bad = (optim_config){.kind = OPTIM_SGD, .weight_decay = -1};
    assert_int_equal(optim_init(&o, &bad, 3, msg, sizeof msg), ERR_INVALID);
    bad = (optim_config){.kind = OPTIM_SGD, .momentum = 1.0f};
    assert_int_equal(optim_init(&o, &bad, 3, msg, sizeof msg), ERR_INVALID);
    bad = (optim_config){.kind = OPTIM_ADAM, .momentum = 0.9f, .beta2 = 0.999f, .eps = 0};
    assert_int_equal(optim_init(&o, &bad, 3, msg, sizeof msg), ERR_INVALID);
}

/* optim_step_copy against optim_step_copy_ref (optim_step, then the copies
 * in direct loops): the same parameters and state bit for bit, and copies
 * laid out as optim_copy says, over blocks of several work items (rows
 * split between items), copies given out of order, plain ranges between
 * and after them; SGD with every term and Adam, on the engine's 2 threads. */
static void test_step_copy(void **state)
{
    (void)state;
    layers_set_threads(2);
    static const int taps_a[9] = {4, 0, 1, 2, 3, 5, 6, 7, 8}, taps_b[3] = {3, 0, 2};
    const size_t off_a = 1000, rows_a = 40, cols_a = 600, kk_a = 9;
    const size_t off_b = off_a + rows_a * cols_a * kk_a + 333, rows_b = 3, cols_b = 5, kk_b = 4;
    const size_t n = off_b + rows_b * cols_b * kk_b + 70001;
    float *da[2], *db[2];
    for (int k = 0; k < 2; k++) {
        da[k] = calloc(9 * rows_a * cols_a, sizeof(float));
        db[k] = calloc(3 * rows_b * cols_b, sizeof(float));
        assert_non_null(da[k]);
        assert_non_null(db[k]);
    }
    const optim_config cfgs[] = {
        {.kind = OPTIM_SGD, .momentum = 0.9f, .weight_decay = 0.01f, .l1 = 0.001f},
        {.kind = OPTIM_SGD, .momentum = 0.9f, .nesterov = 1},
        {.kind = OPTIM_SGD},
        {.kind = OPTIM_ADAMW,
         .momentum = 0.9f,
         .beta2 = 0.999f,
         .eps = 1e-8f,
         .weight_decay = 0.1f},
    };
    float *p[2], *g = malloc(sizeof(float) * n);
    p[0] = malloc(sizeof(float) * n);
    p[1] = malloc(sizeof(float) * n);
    assert_non_null(g);
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        optim o[2];
        for (int k = 0; k < 2; k++)
            assert_int_equal(optim_init(&o[k], &cfgs[c], n, NULL, 0), 0);
        for (size_t i = 0; i < n; i++)
            p[0][i] = p[1][i] = (float)sin(0.37 * (double)i);
        for (int s = 0; s < 3; s++) {
            for (size_t i = 0; i < n; i++)
                g[i] = (float)cos(0.11 * (double)i + s);
            for (int k = 0; k < 2; k++) {
                optim_copy cp[2] = {
                    {off_b, (int)rows_b, (int)cols_b, (int)kk_b, 3, taps_b, db[k]},
                    {off_a, (int)rows_a, (int)cols_a, (int)kk_a, 9, taps_a, da[k]},
                };
                if (k == 0)
                    optim_step_copy(&o[k], p[k], g, lr_at(s), cp, 2);
                else
                    optim_step_copy_ref(&o[k], p[k], g, lr_at(s), cp, 2);
            }
            assert_memory_equal(p[0], p[1], sizeof(float) * n);
            if (o[0].slots)
                assert_memory_equal(o[0].state, o[1].state, sizeof(float) * n * o[0].slots);
            assert_memory_equal(da[0], da[1], sizeof(float) * 9 * rows_a * cols_a);
            assert_memory_equal(db[0], db[1], sizeof(float) * 3 * rows_b * cols_b);
            assert_int_equal(o[0].step, o[1].step);
        }
        /* the layout, spelled out */
        assert_true(da[0][(2 * rows_a + 5) * cols_a + 7] ==
                    p[0][off_a + (5 * cols_a + 7) * kk_a + taps_a[2]]);
        assert_true(db[0][(1 * rows_b + 2) * cols_b + 4] ==
                    p[0][off_b + (2 * cols_b + 4) * kk_b + taps_b[1]]);
        for (int k = 0; k < 2; k++)
            optim_free(&o[k]);
    }
    /* no copies: optim_step's values */
    optim o[2];
    for (int k = 0; k < 2; k++)
        assert_int_equal(optim_init(&o[k], &cfgs[0], n, NULL, 0), 0);
    for (size_t i = 0; i < n; i++)
        p[0][i] = p[1][i] = (float)sin(0.37 * (double)i);
    optim_step_copy(&o[0], p[0], g, 0.1f, NULL, 0);
    optim_step(&o[1], p[1], g, 0.1f);
    assert_memory_equal(p[0], p[1], sizeof(float) * n);
    for (int k = 0; k < 2; k++) {
        optim_free(&o[k]);
        free(da[k]);
        free(db[k]);
        free(p[k]);
    }
    free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd),    cmocka_unit_test(test_sgd_first_step),
        cmocka_unit_test(test_adam),   cmocka_unit_test(test_state_layout),
        cmocka_unit_test(test_config), cmocka_unit_test(test_step_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
