/* fuzz_jobcheck — the checks fuzz_jobspec and fuzz_request run on a parsed
 * job or trial spec object:
 *  - params: every member of "fixed" and every list element or distribution
 *    of "space" through params_set / params_from_json / params_check (the
 *    rules both daemon and worker apply); accepted values must be in the
 *    documented ranges (include/params.h) and survive params_to_json ->
 *    params_from_json unchanged;
 *  - trialspec: the object as a worker's TRIAL.json; an accepted spec must
 *    normalise idempotently (to_json -> from_json gives the same JSON and the
 *    same hash);
 *  - jobspec (the daemon's job validation and expansion, daemon/jobspec.c):
 *    an accepted job has trials numbered from 0, each with valid params and a
 *    53-bit seed; a grid has exactly jobspec_grid_size(space) trials; parsing
 *    again gives the same trials; a random job's trial 0 does not change when
 *    "trials" is 1; and every trial, put into a trial spec with
 *    jobspec_trial_template, is accepted by the worker's trialspec parser
 *    (what the daemon accepts the worker must run). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "jsonx.h"
#include "params.h"
#include "trialspec.h"

#include "fuzz_common.h"

#include "jobspec.h"

static void check_ranges(const trial_params *p)
{
    if (!(p->lr > 0) || !isfinite(p->lr)) abort();
    if (p->batch_size < 1 || p->batch_size > 65536) abort();
    if (p->epochs < 1 || p->epochs > 10000) abort();
    if (!(p->dropout >= 0 && p->dropout < 1)) abort();
    if (!(p->weight_decay >= 0) || !isfinite(p->weight_decay)) abort();
    if (!(p->l1 >= 0) || !isfinite(p->l1)) abort();
    if (!(p->momentum >= 0 && p->momentum < 1)) abort();
    if (p->warmup_epochs < 0 || p->warmup_epochs >= p->epochs) abort();
    if (!(p->label_smoothing >= 0 && p->label_smoothing < 1)) abort();
}

static void check_params_obj(const json_t *obj, const char *path)
{
    trial_params p;
    char msg[256] = "";
    int rc = params_from_json(&p, obj, path, msg, sizeof msg);
    if (rc != 0) {
        fz_need_msg(msg, "params_from_json");
        return;
    }
    check_ranges(&p);
    json_t *j = params_to_json(&p);
    if (!j) abort();
    trial_params q;
    msg[0] = 0;
    if (params_from_json(&q, j, "back", msg, sizeof msg) != 0) {
        fprintf(stderr, "params_to_json output refused: %s\n", msg);
        abort();
    }
    json_t *k = params_to_json(&q);
    if (!json_equal(j, k)) abort();
    json_decref(j);
    json_decref(k);
}

static void check_space(const json_t *space)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)space, key, v)
    {
        if (!json_is_array(v)) continue;
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            trial_params p;
            params_defaults(&p);
            char path[128], msg[256] = "";
            jx_path_index(path, sizeof path, key, i);
            int rc = params_set(&p, key, e, path, msg, sizeof msg);
            if (rc != 0) fz_need_msg(msg, "params_set");
        }
    }
}

static void check_trialspec(const json_t *obj)
{
    trial_spec s;
    memset(&s, 0, sizeof s);
    char msg[256] = "";
    int rc = trialspec_from_json(&s, obj, msg, sizeof msg);
    if (rc != 0) {
        fz_need_msg(msg, "trialspec_from_json");
        trialspec_free(&s);
        return;
    }
    check_ranges(&s.params);
    json_t *j = trialspec_to_json(&s);
    if (!j) abort();
    trial_spec t;
    memset(&t, 0, sizeof t);
    msg[0] = 0;
    if (trialspec_from_json(&t, j, msg, sizeof msg) != 0) {
        fprintf(stderr, "trialspec_to_json output refused: %s\n", msg);
        abort();
    }
    json_t *k = trialspec_to_json(&t);
    char h1[17], h2[17];
    trialspec_hash(&s, h1, sizeof h1);
    trialspec_hash(&t, h2, sizeof h2);
    if (!json_equal(j, k) || strcmp(h1, h2) != 0) {
        fprintf(stderr, "trial spec does not normalise idempotently\n");
        abort();
    }
    json_decref(j);
    json_decref(k);
    trialspec_free(&s);
    trialspec_free(&t);
}

static bool same_params(const trial_params *a, const trial_params *b)
{
    json_t *ja = params_to_json(a), *jb = params_to_json(b);
    bool eq = json_equal(ja, jb);
    json_decref(ja);
    json_decref(jb);
    return eq;
}

/* The worker must accept the trial spec the daemon builds for trial T. */
static void check_worker_accepts(const jobspec *js, const jobspec_trial *t)
{
    json_t *spec = jobspec_trial_template(js);
    if (!spec) abort();
    json_object_set_new(spec, "trial", json_integer(t->number + 1));
    json_object_set_new(spec, "job", json_integer(1));
    json_object_set_new(spec, "seed", json_integer((json_int_t)t->seed));
    json_object_set_new(spec, "params", params_to_json(&t->params));
    json_object_set_new(spec, "out_dir", json_string("/tmp/fuzz-out"));
    trial_spec ts;
    memset(&ts, 0, sizeof ts);
    char msg[256] = "";
    if (trialspec_from_json(&ts, spec, msg, sizeof msg) != 0) {
        char *dump = jx_dump_line(spec);
        fprintf(stderr, "the worker refuses a trial the daemon accepted: %s\n  spec: %s\n", msg,
                dump ? dump : "?");
        free(dump);
        abort();
    }
    if (!same_params(&ts.params, &t->params)) abort();
    trialspec_free(&ts);
    json_decref(spec);
}

static void check_jobspec(const json_t *job)
{
    jobspec js;
    memset(&js, 0, sizeof js);
    char msg[256] = "";
    int rc = jobspec_parse(&js, job, JOBSPEC_EXPAND, 1234, msg, sizeof msg);
    if (rc != 0) {
        fz_need_msg(msg, "jobspec_parse");
        if (rc != ERR_INVALID && rc != ERR_TYPE && rc != ERR_RANGE && rc != ERR_UNKNOWN_KEY &&
            rc != ERR_NOTFOUND && rc != ERR_TOOBIG && rc != ERR_IO && rc != ERR_NOMEM) {
            fprintf(stderr, "jobspec_parse returned %d (%s)\n", rc, msg);
            abort();
        }
        jobspec_free(&js);
        return;
    }
    if (js.n_trials < 1 || !js.trials) abort();
    if (js.n_trials > JOBSPEC_MAX_GRID && js.n_trials > JOBSPEC_MAX_TRIALS) abort();
    for (size_t i = 0; i < js.n_trials; i++) {
        const jobspec_trial *t = &js.trials[i];
        if (t->number != (int)i) abort();
        if (t->seed > JOBSPEC_SEED_MASK) abort();
        check_ranges(&t->params);
    }
    json_t *space = json_object_get(job, "space");
    if (!strcmp(js.strategy, "grid") && json_is_object(space) &&
        js.n_trials != jobspec_grid_size(space)) {
        fprintf(stderr, "grid has %zu trials, jobspec_grid_size says %zu\n", js.n_trials,
                jobspec_grid_size(space));
        abort();
    }
    /* Paths are checked on disk (JOBSPEC_CHECK_PATHS) in the daemon, not
     * here, so an empty path string is refused there, not by this parse. */
    bool empty_path = (js.train && !js.train[0]) || (js.val && !js.val[0]) ||
                      (js.test && !js.test[0]) || (js.weights && !js.weights[0]);
    if (!empty_path) {
        check_worker_accepts(&js, &js.trials[0]);
        check_worker_accepts(&js, &js.trials[js.n_trials - 1]);
    }
    if (js.n_trials <= 2000) {
        /* Determinism: the same spec and seed give the same trials. */
        jobspec again;
        memset(&again, 0, sizeof again);
        msg[0] = 0;
        if (jobspec_parse(&again, job, JOBSPEC_EXPAND, 1234, msg, sizeof msg) != 0) abort();
        if (again.n_trials != js.n_trials) abort();
        for (size_t i = 0; i < js.n_trials; i++)
            if (again.trials[i].seed != js.trials[i].seed ||
                !same_params(&again.trials[i].params, &js.trials[i].params))
                abort();
        jobspec_free(&again);
    }
    if (!strcmp(js.strategy, "random") && js.n_trials > 1) {
        /* Trial 0 does not depend on how many trials there are. */
        json_t *one = json_deep_copy(job);
        json_object_set_new(one, "trials", json_integer(1));
        if (!json_object_get(one, "seed")) json_object_set_new(one, "seed", json_integer(1234));
        jobspec j1;
        memset(&j1, 0, sizeof j1);
        msg[0] = 0;
        if (jobspec_parse(&j1, one, JOBSPEC_EXPAND, 1234, msg, sizeof msg) == 0) {
            if (j1.n_trials != 1 || j1.trials[0].seed != js.trials[0].seed ||
                !same_params(&j1.trials[0].params, &js.trials[0].params)) {
                fprintf(stderr, "random trial 0 changes with the number of trials\n");
                abort();
            }
        }
        jobspec_free(&j1);
        json_decref(one);
    }
    jobspec_free(&js);
}

void fz_check_job(const json_t *job)
{
    if (!json_is_object(job)) return;
    json_t *fixed = json_object_get(job, "fixed");
    if (json_is_object(fixed)) check_params_obj(fixed, "fixed");
    json_t *params = json_object_get(job, "params");
    if (json_is_object(params)) check_params_obj(params, "params");
    json_t *space = json_object_get(job, "space");
    if (json_is_object(space)) check_space(space);
    check_trialspec(job);
    check_jobspec(job);
}
