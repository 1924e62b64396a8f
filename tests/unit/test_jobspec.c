/* Tests for daemon/jobspec.c: grid, random, sobol and tpe expansion against
 * hand-written expectations, determinism, per-trial seeds, distinct points,
 * defaults, the space's coordinates, the message (key path first) of every
 * validation error, and what jobspec_check_files reads from the files at
 * submission (weights header, class lists). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "arch.h"
#include "errors.h"
#include "jobspec.h"
#include "jsonx.h"
#include "resnet.h"
#include "rng.h"
#include "safetensors.h"
#include "util_jpeg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char data_dir[256]; // an existing directory for data.train
static char weights[300];  // an existing file for model.weights

static int setup(void **state)
{
    (void)state;
    if (tju_mkdtemp(data_dir, sizeof data_dir, "jobspec") < 0) return -1;
    snprintf(weights, sizeof weights, "%s/w.safetensors", data_dir);
    FILE *f = fopen(weights, "w");
    if (f) {
        fputs("x", f);
        fclose(f);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(weights);
    rmdir(data_dir);
    return 0;
}

/* Builds a job: BODY is the rest of the object after data/model. */
static json_t *job(const char *body)
{
    char text[4096], msg[256];
    snprintf(text, sizeof text, "{\"data\":{\"train\":\"%s\"},\"model\":{\"weights\":null}%s%s}",
             data_dir, *body ? "," : "", body);
    json_t *v = jx_parse(text, strlen(text), msg, sizeof msg);
    if (!v) fail_msg("bad test JSON: %s: %s", msg, text);
    return v;
}

static json_t *raw(const char *text)
{
    char msg[256];
    json_t *v = jx_parse(text, strlen(text), msg, sizeof msg);
    if (!v) fail_msg("bad test JSON: %s", msg);
    return v;
}

static int parse(jobspec *js, json_t *j, char *msg, size_t n)
{
    int rc = jobspec_parse(js, j, JOBSPEC_CHECK_PATHS | JOBSPEC_EXPAND, 12345, msg, n);
    json_decref(j);
    return rc;
}

static void test_grid_order(void **state)
{
    (void)state;
    jobspec js;
    char msg[512];
    /* batch_size is listed first but lr comes first in canonical order;
     * the last key (batch_size) varies fastest. */
    int rc = parse(&js,
                   job("\"space\":{\"batch_size\":[16,32],\"lr\":[0.1,0.01,0.001]},"
                       "\"fixed\":{\"epochs\":3},\"seed\":5"),
                   msg, sizeof msg);
    assert_int_equal(rc, 0);
    assert_int_equal(js.n_trials, 6);
    const double lr[6] = {0.1, 0.1, 0.01, 0.01, 0.001, 0.001};
    const int bs[6] = {16, 32, 16, 32, 16, 32};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(js.trials[i].number, i);
        assert_true(js.trials[i].params.lr == lr[i]);
        assert_int_equal(js.trials[i].params.batch_size, bs[i]);
        assert_int_equal(js.trials[i].params.epochs, 3);
        assert_true(js.trials[i].seed == (rng_derive(5, (uint64_t)i) & JOBSPEC_SEED_MASK));
    }
    assert_string_equal(js.strategy, "grid");
    assert_string_equal(js.name, "job");
    assert_true(js.seed_given);
    jobspec_free(&js);
}

static void test_grid_three_keys(void **state)
{
    (void)state;
    jobspec js;
    char msg[512];
    int rc = parse(&js,
                   job("\"space\":{\"optimizer\":[\"sgd\",\"adam\"],\"dropout\":[0,0.5],"
                       "\"epochs\":[1,2]}"),
                   msg, sizeof msg);
    assert_int_equal(rc, 0);
    assert_int_equal(js.n_trials, 8);
    /* canonical order: epochs, dropout, optimizer (fastest) */
    const int ep[8] = {1, 1, 1, 1, 2, 2, 2, 2};
    const double dr[8] = {0, 0, 0.5, 0.5, 0, 0, 0.5, 0.5};
    const optim_kind op[8] = {OPTIM_SGD, OPTIM_ADAM, OPTIM_SGD, OPTIM_ADAM,
                              OPTIM_SGD, OPTIM_ADAM, OPTIM_SGD, OPTIM_ADAM};
    for (int i = 0; i < 8; i++) {
        assert_int_equal(js.trials[i].params.epochs, ep[i]);
        assert_true(js.trials[i].params.dropout == dr[i]);
        assert_int_equal(js.trials[i].params.optimizer, op[i]);
    }
    assert_false(js.seed_given);
    assert_true(js.seed == 12345);
    jobspec_free(&js);
}

/* augment takes false, true, "light" or "erase" in a grid; the trial's params JSON
 * keeps booleans as booleans. */
static void test_grid_augment_values(void **state)
{
    (void)state;
    jobspec js;
    char msg[512];
    int rc = parse(&js, job("\"space\":{\"augment\":[false,true,\"light\",\"erase\"]}"), msg,
                   sizeof msg);
    assert_int_equal(rc, 0);
    assert_int_equal(js.n_trials, 4);
    const augment_kind want[4] = {AUGMENT_OFF, AUGMENT_FULL, AUGMENT_LIGHT, AUGMENT_ERASE};
    for (int i = 0; i < 4; i++)
        assert_int_equal(js.trials[i].params.augment, want[i]);
    json_t *o = params_to_json(&js.trials[2].params);
    assert_string_equal(json_string_value(json_object_get(o, "augment")), "light");
    json_decref(o);
    jobspec_free(&js);
    rc = parse(&js, job("\"space\":{\"augment\":[true,\"strong\"]}"), msg, sizeof msg);
    assert_true(rc < 0);
    assert_string_equal(
        msg, "space.augment[1]: expected true, false, \"light\" or \"erase\", got \"strong\"");
    jobspec_free(&js); // also after a failure (jobspec.h)
}

static void test_defaults_and_template(void **state)
{
    (void)state;
    jobspec js;
    char msg[512];
    int rc = parse(&js, job(""), msg, sizeof msg);
    assert_int_equal(rc, 0);
    assert_int_equal(js.n_trials, 1); // empty space: one trial with the defaults
    trial_params d;
    params_defaults(&d);
    assert_memory_equal(&js.trials[0].params, &d, sizeof d);
    assert_string_equal(js.metric, "val_accuracy");
    assert_true(js.maximize);
    assert_int_equal(js.input_size, 224);
    assert_string_equal(js.arch, "resnet18");
    assert_int_equal(js.max_parallel, 0);
    assert_int_equal(js.max_retries, -1);
    assert_false(js.has_trial_timeout);
    json_t *t = jobspec_trial_template(&js);
    char *s = jx_dump_line(t);
    char want[1024];
    snprintf(want, sizeof want,
             "{\"data\":{\"train\":\"%s\",\"val_fraction\":0.1,\"val\":null,\"test\":null},"
             "\"model\":{\"arch\":\"resnet18\",\"input_size\":224,\"weights\":null,\"width\":64},"
             "\"objective\":{\"metric\":\"val_accuracy\",\"goal\":\"maximize\"}}",
             data_dir);
    assert_string_equal(s, want);
    free(s);
    json_decref(t);
    jobspec_free(&js);
    /* val_loss defaults to minimize */
    rc = parse(&js, job("\"objective\":{\"metric\":\"val_loss\"}"), msg, sizeof msg);
    assert_int_equal(rc, 0);
    assert_false(js.maximize);
    jobspec_free(&js);
}

static void test_random_determinism(void **state)
{
    (void)state;
    const char *body = "\"strategy\":\"random\",\"trials\":%d,\"seed\":%d,\"space\":{"
                       "\"lr\":{\"log_uniform\":[0.0001,0.1]},\"batch_size\":[16,32,64],"
                       "\"dropout\":{\"uniform\":[0,0.5]},\"epochs\":{\"int_uniform\":[1,4]}}";
    char b[512], msg[512];
    jobspec a, c, e, f;
    snprintf(b, sizeof b, body, 20, 42);
    assert_int_equal(parse(&a, job(b), msg, sizeof msg), 0);
    assert_int_equal(parse(&c, job(b), msg, sizeof msg), 0);
    snprintf(b, sizeof b, body, 20, 43);
    assert_int_equal(parse(&e, job(b), msg, sizeof msg), 0);
    snprintf(b, sizeof b, body, 5, 42);
    assert_int_equal(parse(&f, job(b), msg, sizeof msg), 0);
    assert_int_equal(a.n_trials, 20);
    int differ = 0, seen16 = 0, seen64 = 0;
    for (int i = 0; i < 20; i++) {
        const trial_params *p = &a.trials[i].params;
        assert_memory_equal(p, &c.trials[i].params, sizeof *p);
        assert_true(a.trials[i].seed == c.trials[i].seed);
        if (memcmp(p, &e.trials[i].params, sizeof *p)) differ++;
        assert_true(p->lr >= 0.0001 && p->lr < 0.1);
        assert_true(p->dropout >= 0 && p->dropout < 0.5);
        assert_true(p->epochs >= 1 && p->epochs <= 4);
        assert_true(p->batch_size == 16 || p->batch_size == 32 || p->batch_size == 64);
        seen16 += p->batch_size == 16;
        seen64 += p->batch_size == 64;
        /* trial i does not depend on how many trials there are */
        if (i < 5) assert_memory_equal(p, &f.trials[i].params, sizeof *p);
        assert_true(a.trials[i].seed == (rng_derive(42, (uint64_t)i) & JOBSPEC_SEED_MASK));
    }
    assert_true(differ >= 19);
    assert_true(seen16 > 0 && seen64 > 0);
    /* Hand-computed expectation for trial 0: the params stream, keys in
     * canonical order (lr, batch_size, epochs, dropout). */
    rng_t r;
    rng_seed(&r, rng_derive(rng_derive(42, JOBSPEC_STREAM_PARAMS), 0));
    double lr0 = rng_log_uniform(&r, 0.0001, 0.1);
    int64_t bi = rng_int(&r, 0, 2);
    int64_t ep = rng_int(&r, 1, 4);
    double dr = rng_range(&r, 0, 0.5);
    assert_true(a.trials[0].params.lr == lr0);
    static const int sizes[3] = {16, 32, 64};
    assert_int_equal(a.trials[0].params.batch_size, sizes[bi]);
    assert_int_equal(a.trials[0].params.epochs, ep);
    assert_true(a.trials[0].params.dropout == dr);
    jobspec_free(&a);
    jobspec_free(&c);
    jobspec_free(&e);
    jobspec_free(&f);
}

/* The mixed space of the strategy tests: log, list, uniform and int keys. */
static const char *const mixed_space =
    "\"space\":{\"lr\":{\"log_uniform\":[0.0001,0.1]},\"batch_size\":[16,32,64],"
    "\"dropout\":{\"uniform\":[0,0.5]},\"epochs\":{\"int_uniform\":[1,4]}}";

/* tpe: only the startup trials are expanded, exactly strategy random's
 * first ones; trials_total is N for every strategy. */
static void test_tpe_startup(void **state)
{
    (void)state;
    char b[1024], msg[512];
    jobspec t, r, d, g;
    snprintf(b, sizeof b,
             "\"strategy\":\"tpe\",\"trials\":30,\"startup_trials\":4,\"seed\":42,%s,"
             "\"warm_start\":{\"jobs\":[7,3]}",
             mixed_space);
    assert_int_equal(parse(&t, job(b), msg, sizeof msg), 0);
    snprintf(b, sizeof b, "\"strategy\":\"random\",\"trials\":4,\"seed\":42,%s", mixed_space);
    assert_int_equal(parse(&r, job(b), msg, sizeof msg), 0);
    assert_string_equal(t.strategy, "tpe");
    assert_int_equal(t.n_trials, 4);
    assert_int_equal(t.trials_total, 30);
    assert_int_equal(t.startup_trials, 4);
    assert_int_equal(r.trials_total, 4);
    assert_int_equal(t.n_warm, 2);
    assert_true(t.warm_jobs[0] == 7 && t.warm_jobs[1] == 3);
    for (int i = 0; i < 4; i++) {
        assert_memory_equal(&t.trials[i].params, &r.trials[i].params, sizeof(trial_params));
        assert_true(t.trials[i].seed == r.trials[i].seed);
    }
    /* The default number of startup trials, and at most "trials". */
    snprintf(b, sizeof b, "\"strategy\":\"tpe\",\"trials\":30,%s", mixed_space);
    assert_int_equal(parse(&d, job(b), msg, sizeof msg), 0);
    assert_int_equal(d.n_trials, JOBSPEC_DEFAULT_STARTUP);
    snprintf(b, sizeof b, "\"strategy\":\"tpe\",\"trials\":3,%s", mixed_space);
    assert_int_equal(parse(&g, job(b), msg, sizeof msg), 0);
    assert_int_equal(g.n_trials, 3);
    assert_int_equal(g.trials_total, 3);
    /* The space's coordinates: every startup trial's parameters map to a
     * point that maps back to the same parameters. */
    assert_int_equal(t.space.nd, 4);
    assert_int_equal(t.space.d[1].dim.kind, SUGGEST_CHOICE);
    assert_int_equal(t.space.d[1].dim.n_choices, 3);
    assert_int_equal(t.space.d[2].dim.kind, SUGGEST_INT);
    for (int i = 0; i < 4; i++) {
        json_t *pj = params_to_json(&t.trials[i].params);
        double x[SUGGEST_MAX_DIMS];
        assert_int_equal(jobspec_space_point(&t.space, pj, x), 0);
        trial_params back;
        assert_int_equal(jobspec_space_params(&t.space, x, &back, msg, sizeof msg), 0);
        assert_memory_equal(&back, &t.trials[i].params, sizeof back);
        /* A value the space does not list has no coordinates. */
        json_object_set_new(pj, "batch_size", json_integer(24));
        assert_int_equal(jobspec_space_point(&t.space, pj, x), ERR_NOTFOUND);
        json_decref(pj);
    }
    jobspec_free(&t);
    jobspec_free(&r);
    jobspec_free(&d);
    jobspec_free(&g);
}

/* sobol: trial N is Sobol point N of the job seed, mapped through the
 * dimensions (suggest.h); another seed scrambles differently. */
static void test_sobol_points(void **state)
{
    (void)state;
    char b[1024], msg[512];
    jobspec s, o;
    snprintf(b, sizeof b, "\"strategy\":\"sobol\",\"trials\":16,\"seed\":5,%s", mixed_space);
    assert_int_equal(parse(&s, job(b), msg, sizeof msg), 0);
    snprintf(b, sizeof b, "\"strategy\":\"sobol\",\"trials\":16,\"seed\":6,%s", mixed_space);
    assert_int_equal(parse(&o, job(b), msg, sizeof msg), 0);
    assert_int_equal(s.n_trials, 16);
    assert_int_equal(s.trials_total, 16);
    const suggest_dim dims[4] = {
        {.kind = SUGGEST_LOG, .lo = 0.0001, .hi = 0.1},
        {.kind = SUGGEST_CHOICE, .n_choices = 3},
        {.kind = SUGGEST_INT, .lo = 1, .hi = 4},
        {.kind = SUGGEST_UNIFORM, .lo = 0, .hi = 0.5},
    };
    static const int sizes[3] = {16, 32, 64};
    int differ = 0;
    for (int i = 0; i < 16; i++) {
        double x[4];
        assert_int_equal(suggest_sobol(dims, 4, 5, (uint64_t)i, x, msg, sizeof msg), 0);
        const trial_params *p = &s.trials[i].params;
        assert_true(p->lr == x[0]);
        assert_int_equal(p->batch_size, sizes[(int)x[1]]);
        assert_int_equal(p->epochs, (int)x[2]);
        assert_true(p->dropout == x[3]);
        assert_true(s.trials[i].seed == (rng_derive(5, (uint64_t)i) & JOBSPEC_SEED_MASK));
        differ += p->lr != o.trials[i].params.lr;
    }
    assert_true(differ >= 15);
    jobspec_free(&s);
    jobspec_free(&o);
}

/* No two trials with the same parameters: a space of exactly "trials"
 * points gives each once (random, sobol, tpe's startup), and random trial 0
 * is still its stream's first draw. */
static void test_distinct_points(void **state)
{
    (void)state;
    static const char *const strategies[] = {"random", "sobol", "tpe"};
    for (int k = 0; k < 3; k++) {
        char b[512], msg[512];
        jobspec js;
        snprintf(b, sizeof b,
                 "\"strategy\":\"%s\",\"trials\":6,\"seed\":9,\"space\":{\"lr\":[0.1,0.01,0.001],"
                 "\"batch_size\":[8,16,8]}%s",
                 strategies[k], k == 2 ? ",\"startup_trials\":6" : "");
        int rc = parse(&js, job(b), msg, sizeof msg);
        if (rc) fail_msg("%s: %s", strategies[k], msg);
        assert_int_equal(js.n_trials, 6);
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < i; j++)
                if (js.trials[i].params.lr == js.trials[j].params.lr &&
                    js.trials[i].params.batch_size == js.trials[j].params.batch_size)
                    fail_msg("%s: trials %d and %d are the same point", strategies[k], j, i);
        if (k == 0) {
            rng_t r;
            rng_seed(&r, rng_derive(rng_derive(9, JOBSPEC_STREAM_PARAMS), 0));
            static const double lrs[3] = {0.1, 0.01, 0.001};
            static const int bs[3] = {8, 16, 8};
            double lr0 = lrs[rng_int(&r, 0, 2)];
            int b0 = bs[rng_int(&r, 0, 2)];
            assert_true(js.trials[0].params.lr == lr0);
            assert_int_equal(js.trials[0].params.batch_size, b0);
        }
        jobspec_free(&js);
    }
}

static void test_grid_limit(void **state)
{
    (void)state;
    jobspec js;
    char msg[512];
    /* 10*9*8*6*6*3*3 = 233280 */
    int rc =
        parse(&js,
              job("\"space\":{\"lr\":[1,2,3,4,5,6,7,8,9,10],\"batch_size\":[1,2,3,4,5,6,7,8,9],"
                  "\"epochs\":[1,2,3,4,5,6,7,8],\"dropout\":[0,0.1,0.2,0.3,0.4,0.5],"
                  "\"momentum\":[0,0.1,0.2,0.3,0.4,0.5],\"l1\":[0,1,2],\"weight_decay\":[0,1,2]}"),
              msg, sizeof msg);
    assert_int_equal(rc, ERR_TOOBIG);
    assert_string_equal(msg, "space: grid has 233280 points, more than the limit of 100000; use "
                             "strategy random");
    jobspec_free(&js);
}

/* Each case: job JSON body (after data/model) and the expected message start. */
static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *want;
    } cases[] = {
        {"\"fixd\":{}", "fixd: unknown key"},
        {"\"space\":{\"lr\":[0.1,0.01,\"x\"]}", "space.lr[2]: "},
        {"\"space\":{\"lr\":[0.1,-1]}", "space.lr[1]: "},
        {"\"space\":{\"lrate\":[0.1]}", "space.lrate: unknown key"},
        {"\"space\":{\"lr\":[]}", "space.lr: empty list"},
        {"\"space\":{\"lr\":0.1}", "space.lr: strategy grid needs a list of values, got 0.1"},
        {"\"space\":{\"lr\":[0.1]},\"fixed\":{\"lr\":0.2}", "fixed.lr: lr is also in space"},
        {"\"fixed\":{\"optimizer\":\"rmsprop\"}", "fixed.optimizer: "},
        {"\"fixed\":{\"foo\":1}", "fixed.foo: unknown key"},
        {"\"strategy\":\"bayes\"", "strategy: expected one of grid, random, sobol, tpe"},
        {"\"strategy\":\"tpe\"", "trials: strategy tpe needs \"trials\""},
        {"\"strategy\":\"sobol\"", "trials: strategy sobol needs \"trials\""},
        {"\"strategy\":\"random\",\"trials\":2,\"startup_trials\":1",
         "startup_trials: only for strategy tpe"},
        {"\"strategy\":\"tpe\",\"trials\":3,\"startup_trials\":4",
         "startup_trials: 4 is more than the 3 trials of the job"},
        {"\"strategy\":\"tpe\",\"trials\":3,\"startup_trials\":0", "startup_trials: "},
        {"\"strategy\":\"tpe\",\"trials\":3,\"startup_trials\":\"2\"", "startup_trials: "},
        {"\"strategy\":\"random\",\"trials\":7,\"space\":{\"lr\":[0.1,0.01],"
         "\"batch_size\":[8,16,32]}",
         "trials: the space has 6 distinct points, fewer than the 7 trials asked (no trial "
         "repeats another's parameters); use strategy grid to run every point, or ask for at "
         "most 6"},
        {"\"strategy\":\"sobol\",\"trials\":3,\"space\":{\"lr\":[0.1,0.1,0.01]}",
         "trials: the space has 2 distinct points, fewer than the 3 trials"},
        {"\"strategy\":\"tpe\",\"trials\":5,\"space\":{\"epochs\":{\"int_uniform\":[1,4]}}",
         "trials: the space has 4 distinct points, fewer than the 5 trials"},
        {"\"strategy\":\"tpe\",\"trials\":2",
         "trials: the space has 1 distinct point, fewer than the 2"},
        {"\"strategy\":\"random\",\"trials\":2,\"space\":{\"lr\":[0.1,0.2]},"
         "\"warm_start\":{\"jobs\":[1]}",
         "warm_start: only for strategy tpe"},
        {"\"strategy\":\"tpe\",\"trials\":2,\"space\":{\"lr\":[0.1,0.2]},\"warm_start\":3",
         "warm_start: "},
        {"\"strategy\":\"tpe\",\"trials\":2,\"space\":{\"lr\":[0.1,0.2]},\"warm_start\":{}",
         "warm_start.jobs: required key is missing"},
        {"\"strategy\":\"tpe\",\"trials\":2,\"space\":{\"lr\":[0.1,0.2]},"
         "\"warm_start\":{\"job\":[1]}",
         "warm_start.job: unknown key"},
        {"\"strategy\":\"tpe\",\"trials\":2,\"space\":{\"lr\":[0.1,0.2]},"
         "\"warm_start\":{\"jobs\":[]}",
         "warm_start.jobs: expected 1 to 64 job ids, got 0"},
        {"\"strategy\":\"tpe\",\"trials\":2,\"space\":{\"lr\":[0.1,0.2]},"
         "\"warm_start\":{\"jobs\":[0]}",
         "warm_start.jobs[0]: "},
        {"\"strategy\":\"tpe\",\"trials\":2,\"space\":{\"lr\":[0.1,0.2]},"
         "\"warm_start\":{\"jobs\":[3,\"x\"]}",
         "warm_start.jobs[1]: "},
        {"\"strategy\":\"tpe\",\"trials\":2,\"space\":{\"lr\":[0.1,0.2]},"
         "\"warm_start\":{\"jobs\":[1,1]}",
         "warm_start.jobs[1]: job 1 is listed twice"},
        {"\"strategy\":\"random\"", "trials: strategy random needs"},
        {"\"trials\":3", "trials: only for strategy random, sobol or tpe"},
        {"\"strategy\":\"random\",\"trials\":0", "trials: "},
        {"\"strategy\":\"random\",\"trials\":2,\"space\":{\"dropout\":{\"uniform\":[0.5,0.1]}}",
         "space.dropout.uniform: low 0.5 is above high 0.1"},
        {"\"strategy\":\"tpe\",\"trials\":2,\"space\":{\"weight_decay\":{\"uniform\":[-1e308,1e308]"
         "}}",
         "space.weight_decay.uniform: the range from -1e+308 to 1e+308 is too wide"},
        {"\"strategy\":\"random\",\"trials\":2,\"space\":{\"lr\":{\"log_uniform\":[0,0.1]}}",
         "space.lr.log_uniform: log_uniform needs low > 0"},
        {"\"strategy\":\"random\",\"trials\":2,\"space\":{\"batch_size\":{\"uniform\":[8,64]}}",
         "space.batch_size.uniform: batch_size takes integers; use int_uniform"},
        {"\"strategy\":\"random\",\"trials\":2,\"space\":{\"optimizer\":{\"uniform\":[0,1]}}",
         "space.optimizer.uniform: optimizer is not numeric"},
        {"\"strategy\":\"random\",\"trials\":2,\"space\":{\"lr\":{\"normal\":[0,1]}}",
         "space.lr.normal: unknown distribution"},
        {"\"strategy\":\"random\",\"trials\":2,\"space\":{\"lr\":{\"uniform\":[0.1]}}",
         "space.lr.uniform: expected a list of two numbers"},
        {"\"strategy\":\"random\",\"trials\":2,\"space\":{\"epochs\":{\"int_uniform\":[1,2.5]}}",
         "space.epochs.int_uniform[1]: "},
        {"\"strategy\":\"random\",\"trials\":3,\"space\":{\"dropout\":{\"uniform\":[0.9,2]}}",
         "space.dropout: "},
        {"\"space\":{\"epochs\":[1,2]},\"fixed\":{\"warmup_epochs\":1}",
         "space.warmup_epochs: must be less than epochs (1), got 1 (trial 0)"},
        {"\"fixed\":{\"warmup_epochs\":9}", "fixed.warmup_epochs: must be less than epochs"},
        {"\"objective\":{\"metric\":\"accuracy\"}", "objective.metric: expected one of"},
        {"\"objective\":{\"goal\":\"up\"}", "objective.goal: expected one of"},
        {"\"objective\":{\"metric\":\"val_loss\",\"x\":1}", "objective.x: unknown key"},
        {"\"max_parallel\":0", "max_parallel: "},
        {"\"max_retries\":-1", "max_retries: "},
        {"\"trial_timeout\":-5", "trial_timeout: expected seconds > 0"},
        {"\"seed\":-1", "seed: "},
        {"\"seed\":\"abc\"", "seed: "},
        {"\"name\":\"\"", "name: must not be empty"},
        {"\"name\":5", "name: "},
        {"\"pruner\":\"median\"", "pruner: expected \"none\", {\"median\":{...}} or"},
        {"\"pruner\":{\"hyperband\":{}}", "pruner.hyperband: unknown pruner"},
        {"\"pruner\":{\"median\":{},\"asha\":{}}", "pruner: expected \"none\""},
        {"\"pruner\":{\"median\":3}", "pruner.median: expected an object, got 3"},
        {"\"pruner\":{\"median\":{\"warmup\":1}}", "pruner.median.warmup: unknown key"},
        {"\"pruner\":{\"median\":{\"warmup_epochs\":-1}}", "pruner.median.warmup_epochs: "},
        {"\"pruner\":{\"median\":{\"min_trials\":0}}", "pruner.median.min_trials: "},
        {"\"pruner\":{\"median\":{\"min_trials\":1.5}}", "pruner.median.min_trials: "},
        {"\"pruner\":{\"asha\":{\"min_epochs\":0}}", "pruner.asha.min_epochs: "},
        {"\"pruner\":{\"asha\":{\"reduction\":1}}", "pruner.asha.reduction: "},
        {"\"pruner\":{\"asha\":{\"reduction\":\"2\"}}", "pruner.asha.reduction: "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jobspec js;
        char msg[512] = "";
        int rc = parse(&js, job(cases[i].body), msg, sizeof msg);
        if (rc == 0 || strncmp(msg, cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("case %zu (%s): rc %d, message \"%s\", want prefix \"%s\"", i, cases[i].body,
                     rc, msg, cases[i].want);
        jobspec_free(&js);
    }
}

/* "pruner": none by default, each kind with its settings and defaults. */
static void test_pruner(void **state)
{
    (void)state;
    static const struct {
        const char *body;  // the job's "pruner" member, or ""
        prune_config want; // what it parses to
    } cases[] = {
        {"", {PRUNE_NONE, 0, 0, 0, 0}},
        {"\"pruner\":\"none\"", {PRUNE_NONE, 0, 0, 0, 0}},
        {"\"pruner\":{\"median\":{\"warmup_epochs\":2,\"min_trials\":3}}",
         {PRUNE_MEDIAN, 2, 3, 0, 0}},
        {"\"pruner\":{\"median\":{}}", {PRUNE_MEDIAN, 0, 1, 0, 0}},
        {"\"pruner\":{\"asha\":{\"min_epochs\":1,\"reduction\":2}}", {PRUNE_ASHA, 0, 0, 1, 2}},
        {"\"pruner\":{\"asha\":{}}", {PRUNE_ASHA, 0, 0, 1, 3}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jobspec js;
        char msg[512] = "";
        assert_int_equal(parse(&js, job(cases[i].body), msg, sizeof msg), 0);
        assert_int_equal(js.pruner.kind, cases[i].want.kind);
        assert_int_equal(js.pruner.warmup_epochs, cases[i].want.warmup_epochs);
        assert_int_equal(js.pruner.min_trials, cases[i].want.min_trials);
        assert_int_equal(js.pruner.min_epochs, cases[i].want.min_epochs);
        assert_int_equal(js.pruner.reduction, cases[i].want.reduction);
        jobspec_free(&js);
    }
}

static void test_data_and_model_errors(void **state)
{
    (void)state;
    char text[1024], msg[512];
    jobspec js;
    struct {
        const char *fmt;
        const char *want;
    } cases[] = {
        {"{\"model\":{\"weights\":null}}", "data: required key is missing"},
        {"{\"data\":{\"train\":\"%s\"}}", "model: required key is missing"},
        {"{\"data\":{},\"model\":{\"weights\":null}}", "data.train: "},
        {"{\"data\":{\"train\":\"%s/nope\"},\"model\":{\"weights\":null}}",
         "data.train: cannot read "},
        {"{\"data\":{\"train\":\"%s/w.safetensors\"},\"model\":{\"weights\":null}}",
         "data.train: "},
        {"{\"data\":{\"train\":\"%s\",\"test\":\"/nonexistent/t\"},\"model\":{\"weights\":null}}",
         "data.test: cannot read /nonexistent/t"},
        {"{\"data\":{\"train\":\"%s\",\"val_fraction\":1.5},\"model\":{\"weights\":null}}",
         "data.val_fraction: expected a number in (0, 1)"},
        {"{\"data\":{\"train\":\"%s\",\"extra\":1},\"model\":{\"weights\":null}}",
         "data.extra: unknown key"},
        {"{\"data\":{\"train\":\"%s\"},\"model\":{\"weights\":\"/nonexistent.safetensors\"}}",
         "model.weights: cannot read /nonexistent.safetensors"},
        {"{\"data\":{\"train\":\"%s\"},\"model\":{\"weights\":null,\"input_size\":3}}",
         "model.input_size: "},
        {"{\"data\":{\"train\":\"%s\"},\"model\":{\"weights\":null,\"widht\":3}}",
         "model.widht: unknown key"},
        {"[1,2]", "job: expected an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(text, sizeof text, cases[i].fmt, data_dir);
        int rc = parse(&js, raw(text), msg, sizeof msg);
        if (rc == 0 || strncmp(msg, cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("case %zu (%s): rc %d, message \"%s\", want prefix \"%s\"", i, text, rc, msg,
                     cases[i].want);
        jobspec_free(&js);
    }
    /* Existing weights are accepted; width is then not part of the template. */
    snprintf(text, sizeof text,
             "{\"data\":{\"train\":\"%s\",\"test\":\"%s\"},\"model\":{\"weights\":\"%s\"}}",
             data_dir, data_dir, weights);
    assert_int_equal(parse(&js, raw(text), msg, sizeof msg), 0);
    assert_string_equal(js.weights, weights);
    assert_string_equal(js.test, data_dir);
    json_t *t = jobspec_trial_template(&js);
    assert_null(json_object_get(json_object_get(t, "model"), "width"));
    json_decref(t);
    jobspec_free(&js);
    /* Without JOBSPEC_CHECK_PATHS missing paths pass (re-reading a stored job). */
    snprintf(text, sizeof text,
             "{\"data\":{\"train\":\"/gone\"},\"model\":{\"weights\":\"/gone.st\"}}");
    json_t *j = raw(text);
    assert_int_equal(jobspec_parse(&js, j, 0, 1, msg, sizeof msg), 0);
    assert_null(js.trials);
    json_decref(j);
    jobspec_free(&js);
}

/* data_roots: paths must resolve inside a root (through ".." and symlinks);
 * accepted paths become the resolved ones in the spec and in the job object. */
static void test_data_roots(void **state)
{
    (void)state;
    char root[300], out[300], link[320], dotdot[400], text[2048], msg[512], want[1024];
    snprintf(root, sizeof root, "%s/root", data_dir);
    snprintf(out, sizeof out, "%s/outside", data_dir);
    snprintf(link, sizeof link, "%s/escape", root);
    snprintf(dotdot, sizeof dotdot, "%s/../outside", root);
    assert_int_equal(mkdir(root, 0700), 0);
    assert_int_equal(mkdir(out, 0700), 0);
    assert_int_equal(symlink(out, link), 0);
    char *roots[] = {root, "/nonexistent-root"};
    const char *roots_text = "R1, R2";
    jobspec js;
    /* Inside: accepted, and a weights path through a symlinked dir of the
     * root resolves to the real file, which must be inside too. */
    char inner[400];
    snprintf(inner, sizeof inner, "%s/./", root);
    snprintf(text, sizeof text,
             "{\"data\":{\"train\":\"%s\",\"test\":\"%s\"},"
             "\"model\":{\"weights\":null}}",
             inner, root);
    json_t *j = raw(text);
    assert_int_equal(jobspec_parse(&js, j, JOBSPEC_CHECK_PATHS | JOBSPEC_ROOTS, 1, msg, sizeof msg),
                     0);
    assert_int_equal(jobspec_check_roots(&js, j, roots, 2, roots_text, msg, sizeof msg), 0);
    assert_string_equal(js.train, root);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "data"), "train")),
                        root);
    json_decref(j);
    jobspec_free(&js);
    /* Outside, by path, by "..", by a symlink; and weights outside. */
    const char *bad[] = {out, dotdot, link};
    for (int i = 0; i < 3; i++) {
        snprintf(text, sizeof text, "{\"data\":{\"train\":\"%s\"},\"model\":{\"weights\":null}}",
                 bad[i]);
        j = raw(text);
        assert_int_equal(
            jobspec_parse(&js, j, JOBSPEC_CHECK_PATHS | JOBSPEC_ROOTS, 1, msg, sizeof msg), 0);
        assert_int_equal(jobspec_check_roots(&js, j, roots, 2, roots_text, msg, sizeof msg),
                         ERR_PERM);
        snprintf(want, sizeof want, "data.train: %s ", bad[i]);
        if (strncmp(msg, want, strlen(want)) || !strstr(msg, "outside data_roots (R1, R2)"))
            fail_msg("case %d: message \"%s\"", i, msg);
        if (i > 0 && !strstr(msg, out)) fail_msg("case %d: resolved path missing: %s", i, msg);
        json_decref(j);
        jobspec_free(&js);
    }
    snprintf(text, sizeof text, "{\"data\":{\"train\":\"%s\"},\"model\":{\"weights\":\"%s\"}}",
             root, weights);
    j = raw(text);
    assert_int_equal(jobspec_parse(&js, j, JOBSPEC_CHECK_PATHS | JOBSPEC_ROOTS, 1, msg, sizeof msg),
                     0);
    assert_int_equal(jobspec_check_roots(&js, j, roots, 2, roots_text, msg, sizeof msg), ERR_PERM);
    snprintf(want, sizeof want, "model.weights: %s is outside data_roots (R1, R2)", weights);
    assert_string_equal(msg, want);
    /* No roots: anything passes, untouched. */
    assert_int_equal(jobspec_check_roots(&js, j, roots, 0, "", msg, sizeof msg), 0);
    assert_string_equal(js.weights, weights);
    json_decref(j);
    jobspec_free(&js);
    /* Class folders are counted by the worker's rule (datapath.h): "escape"
     * links outside the roots, so with them ROOT has one class, refused;
     * without data_roots the link is followed and makes a second class. */
    char cat[320];
    snprintf(cat, sizeof cat, "%s/cat", root);
    assert_int_equal(mkdir(cat, 0700), 0);
    snprintf(text, sizeof text, "{\"data\":{\"train\":\"%s\"},\"model\":{\"weights\":null}}", root);
    j = raw(text);
    assert_int_equal(jobspec_parse(&js, j, JOBSPEC_CHECK_PATHS | JOBSPEC_ROOTS, 1, msg, sizeof msg),
                     0);
    assert_int_equal(jobspec_check_roots(&js, j, roots, 2, roots_text, msg, sizeof msg),
                     ERR_INVALID);
    snprintf(want, sizeof want,
             "data.train: %s has one class folder (cat) inside data_roots; classification needs "
             "two or more",
             root);
    assert_string_equal(msg, want);
    jobspec_free(&js);
    assert_int_equal(jobspec_parse(&js, j, JOBSPEC_CHECK_PATHS, 1, msg, sizeof msg), 0);
    json_decref(j);
    jobspec_free(&js);
    rmdir(cat);
    unlink(link);
    rmdir(out);
    rmdir(root);
}

/* Relative data/weights paths become absolute against the current directory
 * (workers run in their out_dir); absolute ones are left as given. */
static void test_absolute_paths(void **state)
{
    (void)state;
    char cwd[1024], want[1200], msg[256];
    assert_non_null(getcwd(cwd, sizeof cwd));
    json_t *j = raw("{\"data\":{\"train\":\"a/b\",\"test\":\"/abs/t\",\"val\":\"./v\"},"
                    "\"model\":{\"weights\":\"w.st\"}}");
    jobspec js;
    assert_int_equal(jobspec_parse(&js, j, 0, 1, msg, sizeof msg), 0);
    assert_int_equal(jobspec_absolute_paths(&js, j, msg, sizeof msg), 0);
    snprintf(want, sizeof want, "%s/a/b", cwd);
    assert_string_equal(js.train, want);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "data"), "train")),
                        want);
    snprintf(want, sizeof want, "%s/v", cwd);
    assert_string_equal(js.val, want);
    snprintf(want, sizeof want, "%s/w.st", cwd);
    assert_string_equal(js.weights, want);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "model"), "weights")),
                        want);
    assert_string_equal(js.test, "/abs/t");
    json_decref(j);
    jobspec_free(&js);
}

static void test_grid_size(void **state)
{
    (void)state;
    json_t *s = raw("{\"a\":[1,2,3],\"b\":[1,2],\"c\":[1]}");
    assert_int_equal(jobspec_grid_size(s), 6);
    json_decref(s);
    s = raw("{\"a\":[]}");
    assert_int_equal(jobspec_grid_size(s), 0);
    json_decref(s);
}

/* Writes DIR/NAME: the engine's ARCH of width 2 with 3 classes and the
 * metadata KEY=VALUE pairs of META (NULL-terminated); returns the path
 * (static). */
static const char *write_weights(const char *name, const char *arch, const char *const *meta)
{
    static char path[512];
    char msg[256];
    snprintf(path, sizeof path, "%s/%s", data_dir, name);
    resnet *m = NULL;
    assert_int_equal(resnet_create(&m, arch, 2, 3, 1, msg, sizeof msg), 0);
    st_writer *w = st_writer_new();
    assert_non_null(w);
    for (size_t i = 0; i < resnet_tensor_count(m); i++) {
        const resnet_tensor *t = resnet_tensor_at(m, i);
        assert_int_equal(st_writer_add_f32(w, t->name, t->ndim, t->shape, t->data), 0);
    }
    for (size_t i = 0; meta && meta[i]; i += 2)
        assert_int_equal(st_writer_meta(w, meta[i], meta[i + 1]), 0);
    assert_int_equal(st_writer_save(w, path, msg, sizeof msg), 0);
    st_writer_free(w);
    resnet_free(m);
    return path;
}

/* Parses the job TEXT with paths checked, then runs jobspec_check_files on
 * it; returns its code, *JOBP (the job object, the caller's) and JS. */
static int check_files(jobspec *js, const char *text, json_t **jobp, char *msg, size_t n)
{
    json_t *j = raw(text);
    int rc = jobspec_parse(js, j, JOBSPEC_CHECK_PATHS | JOBSPEC_EXPAND, 1, msg, n);
    if (rc) fail_msg("%s: %s", text, msg);
    rc = jobspec_check_files(js, j, NULL, 0, msg, n);
    *jobp = j;
    return rc;
}

static void test_check_files(void **state)
{
    (void)state;
    char text[2048], msg[1024], r18[512], r50[512], dirs[3][400];
    const char *meta32[] = {"input_size", "32", "mean", "[0.5,0.5,0.5]", NULL};
    snprintf(r18, sizeof r18, "%s", write_weights("r18.safetensors", "resnet18", meta32));
    snprintf(r50, sizeof r50, "%s", write_weights("r50.safetensors", "resnet50", NULL));
    jobspec js;
    json_t *j;
    /* model.arch against the file's structure, in both directions. */
    snprintf(text, sizeof text,
             "{\"data\":{\"train\":\"%s\"},\"model\":{\"arch\":\"resnet50\",\"weights\":\"%s\"}}",
             data_dir, r18);
    assert_int_equal(check_files(&js, text, &j, msg, sizeof msg), ERR_INVALID);
    assert_non_null(strstr(msg, "model.arch is resnet50 but model.weights"));
    assert_non_null(strstr(msg, r18));
    assert_non_null(strstr(msg, "holds a resnet18"));
    json_decref(j);
    jobspec_free(&js);
    snprintf(text, sizeof text,
             "{\"data\":{\"train\":\"%s\"},\"model\":{\"arch\":\"resnet18\",\"weights\":\"%s\"}}",
             data_dir, r50);
    assert_int_equal(check_files(&js, text, &j, msg, sizeof msg), ERR_INVALID);
    assert_non_null(strstr(msg, "holds a resnet50"));
    json_decref(j);
    jobspec_free(&js);
    /* Without arch and input_size: both from the file, into the job and the
     * template; a given input_size wins. */
    snprintf(text, sizeof text, "{\"data\":{\"train\":\"%s\"},\"model\":{\"weights\":\"%s\"}}",
             data_dir, r18);
    assert_int_equal(check_files(&js, text, &j, msg, sizeof msg), 0);
    assert_string_equal(js.arch, "resnet18");
    assert_string_equal(js.arch_from, "weights");
    assert_int_equal(js.input_size, 32);
    assert_string_equal(js.input_size_from, "weights");
    json_t *model = json_object_get(j, "model");
    assert_string_equal(json_string_value(json_object_get(model, "arch")), "resnet18");
    assert_int_equal(json_integer_value(json_object_get(model, "input_size")), 32);
    json_t *t = jobspec_trial_template(&js);
    assert_string_equal(json_string_value(json_object_get(json_object_get(t, "model"), "arch")),
                        "resnet18");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(t, "model"), "input_size")),
                     32);
    json_decref(t);
    json_decref(j);
    jobspec_free(&js);
    snprintf(text, sizeof text,
             "{\"data\":{\"train\":\"%s\"},\"model\":{\"weights\":\"%s\",\"input_size\":64}}",
             data_dir, r50);
    assert_int_equal(check_files(&js, text, &j, msg, sizeof msg), 0);
    assert_string_equal(js.arch, "resnet50");
    assert_int_equal(js.input_size, 64);
    assert_string_equal(js.input_size_from, "job");
    json_decref(j);
    jobspec_free(&js);
    /* Other block counts: named, and left out of the template (the worker
     * builds what the file holds). */
    snprintf(text, sizeof text, "{\"data\":{\"train\":\"%s\"},\"model\":{\"weights\":\"%s\"}}",
             data_dir, SWEEP_SRCDIR "/tests/fixtures/parity_basic.safetensors");
    assert_int_equal(check_files(&js, text, &j, msg, sizeof msg), 0);
    assert_string_equal(js.arch, "resnet-basic-1-1-1-1");
    t = jobspec_trial_template(&js);
    assert_null(json_object_get(json_object_get(t, "model"), "arch"));
    assert_null(json_object_get(json_object_get(j, "model"), "arch"));
    json_decref(t);
    json_decref(j);
    jobspec_free(&js);
    /* A file that is not safetensors (the setup's "x"). */
    snprintf(text, sizeof text, "{\"data\":{\"train\":\"%s\"},\"model\":{\"weights\":\"%s\"}}",
             data_dir, weights);
    assert_int_equal(check_files(&js, text, &j, msg, sizeof msg), ERR_INVALID);
    assert_non_null(strstr(msg, "model.weights: "));
    assert_non_null(strstr(msg, "too short"));
    json_decref(j);
    jobspec_free(&js);

    /* Class lists: data.val / data.test may not have classes data.train lacks. */
    static const char *const names[3] = {"tr", "va", "te"};
    static const char *const classes[3][3] = {
        {"cat", "dog", NULL}, {"cat", "cats", NULL}, {"dog", NULL, NULL}};
    for (int d = 0; d < 3; d++) {
        snprintf(dirs[d], sizeof dirs[d], "%s/%s", data_dir, names[d]);
        assert_int_equal(mkdir(dirs[d], 0755), 0);
        for (int c = 0; classes[d][c]; c++) {
            char p[1300];
            snprintf(p, sizeof p, "%s/%s", dirs[d], classes[d][c]);
            assert_int_equal(mkdir(p, 0755), 0);
        }
    }
    snprintf(text, sizeof text,
             "{\"data\":{\"train\":\"%s\",\"val\":\"%s\"},\"model\":{\"weights\":null}}", dirs[0],
             dirs[1]);
    assert_int_equal(check_files(&js, text, &j, msg, sizeof msg), ERR_INVALID);
    assert_non_null(strstr(msg, "data.val: "));
    assert_non_null(strstr(msg, "does not have: cats; it lacks data.train's dog"));
    json_decref(j);
    jobspec_free(&js);
    snprintf(text, sizeof text,
             "{\"data\":{\"train\":\"%s\",\"test\":\"%s\"},\"model\":{\"weights\":null}}", dirs[0],
             dirs[2]);
    assert_int_equal(check_files(&js, text, &j, msg, sizeof msg), 0); // fewer classes are fine
    json_decref(j);
    jobspec_free(&js);
    snprintf(text, sizeof text,
             "{\"data\":{\"train\":\"%s\",\"test\":\"%s\"},\"model\":{\"weights\":null}}", dirs[0],
             dirs[1]);
    assert_int_equal(check_files(&js, text, &j, msg, sizeof msg), ERR_INVALID);
    assert_non_null(strstr(msg, "data.test: "));
    assert_non_null(strstr(msg, dirs[1]));
    assert_non_null(strstr(msg, "1 class folder that data.train"));
    json_decref(j);
    jobspec_free(&js);
    for (int d = 0; d < 3; d++) {
        for (int c = 0; classes[d][c]; c++) {
            char p[1300];
            snprintf(p, sizeof p, "%s/%s", dirs[d], classes[d][c]);
            rmdir(p);
        }
        rmdir(dirs[d]);
    }
    unlink(r18);
    unlink(r50);
}

/* space.arch (issue 18): the architecture searched like any choice, one
 * weights file (or null) per listed architecture, every trial's params
 * naming its own, the template one model per architecture; the refusals. */
static void test_arch_search(void **state)
{
    (void)state;
    char text[4096], msg[1024], r18[512], vgg[512], r18b[512];
    const char *meta32[] = {"input_size", "32", NULL};
    const char *meta40[] = {"input_size", "40", NULL};
    snprintf(r18, sizeof r18, "%s", write_weights("a18.safetensors", "resnet18", meta32));
    snprintf(vgg, sizeof vgg, "%s", write_weights("avgg.safetensors", "vgg11_bn", meta32));
    snprintf(r18b, sizeof r18b, "%s", write_weights("a18b.safetensors", "resnet18", meta40));
    jobspec js;
    json_t *j;
    /* Grid over arch x lr: arch is in every trial's params. */
    snprintf(text, sizeof text,
             "{\"data\":{\"train\":\"%s\"},\"model\":{\"weights\":{\"resnet18\":\"%s\","
             "\"vgg11_bn\":\"%s\",\"inception_v3\":null},\"width\":8},"
             "\"space\":{\"arch\":[\"resnet18\",\"vgg11_bn\",\"inception_v3\",\"vgg11_bn\"],"
             "\"lr\":[0.1,0.01]},\"fixed\":{\"freeze\":\"none\"}}",
             data_dir, r18, vgg);
    assert_int_equal(check_files(&js, text, &j, msg, sizeof msg), 0);
    assert_int_equal(js.n_archs, 3);
    assert_string_equal(js.archs[1].arch, "vgg11_bn");
    assert_string_equal(js.archs[1].weights, vgg);
    assert_null(js.archs[2].weights);
    assert_string_equal(js.arch_from, "space");
    assert_int_equal(js.input_size, 32); // from the two files, which agree
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "model"), "input_size")),
                     32);
    assert_int_equal(js.n_trials, 8); // a listed value twice runs twice, as in any grid
    json_t *pj = params_to_json(&js.trials[1].params); // arch last in canonical order
    assert_string_equal(json_string_value(json_object_get(pj, "arch")), "vgg11_bn");
    assert_true(json_real_value(json_object_get(pj, "lr")) == 0.1);
    json_decref(pj);
    json_t *t = jobspec_trial_template(&js);
    json_t *models = json_object_get(t, "models");
    assert_int_equal(json_object_size(models), 3);
    json_t *mv = json_object_get(models, "vgg11_bn");
    assert_string_equal(json_string_value(json_object_get(mv, "arch")), "vgg11_bn");
    assert_string_equal(json_string_value(json_object_get(mv, "weights")), vgg);
    json_t *mi = json_object_get(models, "inception_v3");
    assert_true(json_is_null(json_object_get(mi, "weights")));
    assert_int_equal(json_integer_value(json_object_get(mi, "width")), 8);
    assert_int_equal(json_integer_value(json_object_get(mi, "input_size")), 32);
    assert_true(json_equal(json_object_get(t, "model"), json_object_get(models, "resnet18")));
    json_decref(t);
    json_decref(j);
    jobspec_free(&js);
    /* Random and TPE draw it like any list. */
    j = job("\"space\":{\"arch\":[\"resnet18\",\"vgg11\"],\"lr\":{\"log_uniform\":[0.001,0.1]}},"
            "\"strategy\":\"random\",\"trials\":8");
    assert_int_equal(parse(&js, j, msg, sizeof msg), 0);
    int seen[2] = {0, 0};
    for (size_t i = 0; i < js.n_trials; i++) {
        int a = js.trials[i].params.arch;
        assert_true(a >= 0);
        seen[!strcmp(arch_name_choices[a], "vgg11")]++;
    }
    assert_true(seen[0] > 0 && seen[1] > 0);
    jobspec_free(&js);
    /* Without space.arch, params carry no arch (their JSON is as before). */
    j = job("\"space\":{\"lr\":[0.1]}");
    assert_int_equal(parse(&js, j, msg, sizeof msg), 0);
    assert_int_equal(js.trials[0].params.arch, -1);
    pj = params_to_json(&js.trials[0].params);
    assert_null(json_object_get(pj, "arch"));
    json_decref(pj);
    jobspec_free(&js);

    /* Refusals, each naming the key. */
    struct {
        const char *model, *rest, *want;
    } bad[] = {
        {"{\"arch\":\"resnet18\",\"weights\":null}", "\"space\":{\"arch\":[\"vgg11\"]}",
         "model.arch: not with space.arch"},
        {"{\"weights\":null}", "\"fixed\":{\"arch\":\"vgg11\"}", "fixed.arch: the architecture is"},
        {"{\"weights\":{\"resnet18\":null}}", "\"space\":{\"lr\":[0.1]}",
         "model.weights: an object (one file per architecture) needs space.arch"},
        {"{\"weights\":\"W\"}", "\"space\":{\"arch\":[\"resnet18\"]}",
         "model.weights: with space.arch, expected an object"},
        {"{\"weights\":{\"resnet18\":null}}", "\"space\":{\"arch\":[\"resnet18\",\"vgg11\"]}",
         "space.arch[1]: \"vgg11\" has no entry in model.weights"},
        {"{\"weights\":{\"resnet18\":null,\"vgg13\":null}}", "\"space\":{\"arch\":[\"resnet18\"]}",
         "model.weights.vgg13: vgg13 is not in space.arch"},
        {"{\"weights\":{\"resnet18\":7}}", "\"space\":{\"arch\":[\"resnet18\"]}",
         "model.weights.resnet18: expected a path or null, got 7"},
        {"{\"weights\":{\"resnet18\":\"/nonexistent/x.safetensors\"}}",
         "\"space\":{\"arch\":[\"resnet18\"]}", "model.weights.resnet18: cannot read"},
        {"{\"weights\":null}", "\"space\":{\"arch\":[\"resnet18\",\"alexnet\"]}", "space.arch[1]"},
        {"{\"weights\":null}", "\"space\":{\"arch\":{\"uniform\":[0,1]}},\"strategy\":\"random\"",
         "space.arch"},
        {"{\"weights\":null}",
         "\"space\":{\"arch\":[\"resnet18\",\"vgg11_bn\"]},\"fixed\":{\"freeze\":\"layer3\"}",
         "fixed.freeze: \"layer3\" is not a freeze point of vgg11_bn"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char model[1200];
        const char *w = strstr(bad[i].model, "\"W\"");
        if (w)
            snprintf(model, sizeof model, "%.*s\"%s\"%s", (int)(w - bad[i].model), bad[i].model,
                     r18, w + 3);
        else
            snprintf(model, sizeof model, "%s", bad[i].model);
        snprintf(text, sizeof text, "{\"data\":{\"train\":\"%s\"},\"model\":%s,%s}", data_dir,
                 model, bad[i].rest);
        j = raw(text);
        int rc = jobspec_parse(&js, j, JOBSPEC_CHECK_PATHS | JOBSPEC_EXPAND, 1, msg, sizeof msg);
        if (rc == 0 || !strstr(msg, bad[i].want))
            fail_msg("case %zu: rc %d, message \"%s\", want \"%s\"", i, rc, msg, bad[i].want);
        json_decref(j);
        jobspec_free(&js);
    }
    /* The files: each must hold its architecture; input sizes must agree. */
    snprintf(text, sizeof text,
             "{\"data\":{\"train\":\"%s\"},\"model\":{\"weights\":{\"resnet18\":\"%s\","
             "\"vgg11_bn\":\"%s\"}},\"space\":{\"arch\":[\"resnet18\",\"vgg11_bn\"]}}",
             data_dir, vgg, r18);
    assert_int_equal(check_files(&js, text, &j, msg, sizeof msg), ERR_INVALID);
    assert_non_null(strstr(msg, "model.weights.resnet18: "));
    assert_non_null(strstr(msg, "holds a vgg11_bn (read from its tensor names), not a resnet18"));
    json_decref(j);
    jobspec_free(&js);
    snprintf(text, sizeof text,
             "{\"data\":{\"train\":\"%s\"},\"model\":{\"weights\":{\"resnet18\":\"%s\","
             "\"vgg11_bn\":\"%s\"}},\"space\":{\"arch\":[\"vgg11_bn\",\"resnet18\"]}}",
             data_dir, r18b, vgg);
    assert_int_equal(check_files(&js, text, &j, msg, sizeof msg), ERR_INVALID);
    assert_non_null(strstr(msg, "the weights of vgg11_bn are for 32 px but those of resnet18 for "
                                "40 px; give model.input_size"));
    json_decref(j);
    jobspec_free(&js);
    /* ... unless model.input_size is given. */
    snprintf(text, sizeof text,
             "{\"data\":{\"train\":\"%s\"},\"model\":{\"input_size\":48,\"weights\":{\"resnet18\":"
             "\"%s\",\"vgg11_bn\":\"%s\"}},\"space\":{\"arch\":[\"vgg11_bn\",\"resnet18\"]}}",
             data_dir, r18b, vgg);
    assert_int_equal(check_files(&js, text, &j, msg, sizeof msg), 0);
    assert_int_equal(js.input_size, 48);
    json_decref(j);
    jobspec_free(&js);
    unlink(r18);
    unlink(r18b);
    unlink(vgg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grid_order),
        cmocka_unit_test(test_grid_three_keys),
        cmocka_unit_test(test_grid_augment_values),
        cmocka_unit_test(test_defaults_and_template),
        cmocka_unit_test(test_random_determinism),
        cmocka_unit_test(test_tpe_startup),
        cmocka_unit_test(test_sobol_points),
        cmocka_unit_test(test_distinct_points),
        cmocka_unit_test(test_grid_limit),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_pruner),
        cmocka_unit_test(test_data_and_model_errors),
        cmocka_unit_test(test_grid_size),
        cmocka_unit_test(test_data_roots),
        cmocka_unit_test(test_absolute_paths),
        cmocka_unit_test(test_check_files),
        cmocka_unit_test(test_arch_search),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
