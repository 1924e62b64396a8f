/* test_ctl_examples — the job files shipped in etc/examples/ (the ones the
 * README and `make demo` point people at) are valid job specs and expand to
 * the number of trials their comments and the README promise. Paths are not
 * checked on disk: the examples name /data/... folders the reader replaces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "jobspec.h"

/* Parses SWEEP_SRCDIR/etc/examples/NAME and returns its trial count (or -1
 * with the reason printed). */
static long expand(const char *name, jobspec *js)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/etc/examples/%s", SWEEP_SRCDIR, name);
    json_error_t e;
    json_t *job = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
    if (!job) {
        print_error("%s:%d:%d: %s\n", path, e.line, e.column, e.text);
        return -1;
    }
    char msg[512];
    int rc = jobspec_parse(js, job, JOBSPEC_EXPAND, 1, msg, sizeof msg);
    json_decref(job);
    if (rc) {
        print_error("%s: %s\n", path, msg);
        return -1;
    }
    return (long)js->n_trials;
}

static void test_demo_job(void **state)
{
    (void)state;
    jobspec js;
    assert_int_equal(expand("demo-job.json", &js), 12);
    assert_string_equal(js.strategy, "random");
    assert_non_null(js.weights);
    assert_non_null(js.val);
    assert_non_null(js.test);
    /* Every trial takes lr and freeze from the lists, dropout and weight
     * decay from their ranges, and the fixed 4 epochs. */
    for (size_t i = 0; i < js.n_trials; i++) {
        const trial_params *p = &js.trials[i].params;
        assert_true(p->lr == 0.003 || p->lr == 0.01 || p->lr == 0.03);
        assert_true(p->freeze == FREEZE_NONE || p->freeze == FREEZE_LAYER1 ||
                    p->freeze == FREEZE_LAYER2 || p->freeze == FREEZE_LAYER3 ||
                    p->freeze == FREEZE_ALL);
        assert_true(p->dropout >= 0 && p->dropout < 0.5);
        assert_true(p->weight_decay >= 1e-5 && p->weight_decay <= 1e-3);
        assert_int_equal(p->epochs, 4);
        assert_int_equal(p->batch_size, 16);
    }
    jobspec_free(&js);
}

static void test_demo_scratch(void **state)
{
    (void)state;
    jobspec js;
    assert_int_equal(expand("demo-scratch.json", &js), 3);
    assert_null(js.weights);
    assert_int_equal(js.width, 16);
    for (size_t i = 0; i < js.n_trials; i++) {
        assert_int_equal(js.trials[i].params.freeze, FREEZE_NONE);
        assert_int_equal(js.trials[i].params.epochs, 4);
    }
    jobspec_free(&js);
}

static void test_pets_grid(void **state)
{
    (void)state;
    jobspec js;
    /* lr 3 x batch 2 x epochs 1 x dropout 2 x weight decay 2. */
    assert_int_equal(expand("pets-grid.json", &js), 24);
    assert_string_equal(js.strategy, "grid");
    jobspec_free(&js);
}

static void test_random_adam(void **state)
{
    (void)state;
    jobspec js;
    assert_int_equal(expand("random-adam.json", &js), 40);
    assert_string_equal(js.metric, "val_f1");
    for (size_t i = 0; i < js.n_trials; i++) {
        const trial_params *p = &js.trials[i].params;
        assert_int_equal(p->optimizer, OPTIM_ADAMW);
        assert_true(p->lr >= 3e-5 && p->lr <= 3e-3);
        assert_true(p->warmup_epochs >= 0 && p->warmup_epochs <= 2);
    }
    jobspec_free(&js);
}

/* The showcase: TPE + ASHA, 8 trials of which the 3 startup ones are
 * expanded at submission; the rest are proposed as slots free. */
static void test_fashion_mnist_search(void **state)
{
    (void)state;
    jobspec js;
    assert_int_equal(expand("fashion-mnist-search.json", &js), 3);
    assert_string_equal(js.strategy, "tpe");
    assert_int_equal(js.trials_total, 8);
    assert_int_equal(js.startup_trials, 3);
    assert_int_equal(js.pruner.kind, PRUNE_ASHA);
    assert_int_equal(js.pruner.min_epochs, 4);
    assert_int_equal(js.pruner.reduction, 3);
    assert_null(js.weights);
    assert_int_equal(js.input_size, 64);
    assert_int_equal(js.width, 32);
    for (size_t i = 0; i < js.n_trials; i++) {
        const trial_params *p = &js.trials[i].params;
        assert_true(p->lr >= 0.02 && p->lr <= 0.08);
        assert_true(p->weight_decay >= 1e-4 && p->weight_decay <= 1e-3);
        assert_true(p->momentum >= 0.85 && p->momentum <= 0.92);
        assert_int_equal(p->batch_size, 128);
        assert_int_equal(p->epochs, 30);
        assert_int_equal(p->augment, AUGMENT_ERASE);
    }
    jobspec_free(&js);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_job),
        cmocka_unit_test(test_demo_scratch),
        cmocka_unit_test(test_pets_grid),
        cmocka_unit_test(test_random_adam),
        cmocka_unit_test(test_fashion_mnist_search),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
