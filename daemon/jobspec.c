/* jobspec — checks a submitted job and expands its search space into trials.
 *
 * The order of trials is part of the contract (see include/jobspec.h): grid
 * points enumerate the searched keys in canonical params order with the last
 * key varying fastest; random trials draw from one stream per trial number.
 * Every value that reaches a trial goes through params_set(), so the daemon
 * refuses exactly what the worker would refuse, with the same messages. */
#include "jobspec.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch.h"
#include "datapath.h"
#include "errors.h"
#include "jsonx.h"
#include "rng.h"
#include "utf8.h"

typedef enum { KT_REAL, KT_INT, KT_OTHER } key_type;

static key_type type_of(const char *key)
{
    static const char *const ints[] = {"batch_size", "epochs", "warmup_epochs", NULL};
    static const char *const reals[] = {
        "lr", "dropout", "weight_decay", "l1", "momentum", "label_smoothing", NULL};
    for (int i = 0; ints[i]; i++)
        if (!strcmp(ints[i], key)) return KT_INT;
    for (int i = 0; reals[i]; i++)
        if (!strcmp(reals[i], key)) return KT_REAL;
    return KT_OTHER;
}

static bool is_param_key(const char *key)
{
    for (int i = 0; params_keys[i]; i++)
        if (!strcmp(params_keys[i], key)) return true;
    return false;
}

void jobspec_free(jobspec *js)
{
    free(js->name);
    free(js->strategy);
    free(js->train);
    free(js->val);
    free(js->test);
    free(js->arch);
    free(js->weights);
    free(js->metric);
    free(js->trials);
    memset(js, 0, sizeof *js);
}

/* PATH must be a readable (and, for directories, searchable) DIR/file. */
static int check_path(const char *keypath, const char *p, bool want_dir, char *msg, size_t msglen)
{
    struct stat st;
    if (stat(p, &st) != 0)
        return err_set_errno(msg, msglen, ERR_NOTFOUND, errno, "%s: cannot read %s", keypath, p);
    if (want_dir && !S_ISDIR(st.st_mode))
        return err_set(msg, msglen, ERR_INVALID, "%s: %s is not a directory", keypath, p);
    if (!want_dir && !S_ISREG(st.st_mode))
        return err_set(msg, msglen, ERR_INVALID, "%s: %s is not a regular file", keypath, p);
    if (access(p, want_dir ? (R_OK | X_OK) : R_OK) != 0)
        return err_set_errno(msg, msglen, ERR_PERM, errno, "%s: cannot read %s", keypath, p);
    return 0;
}

/* The class folders of data folder P (key KEYPATH), listed by the worker's
 * rule (datapath.h) within the N_ROOTS data_roots ROOTS (0: none): a name
 * that is not valid UTF-8 is refused; with WANT_TWO (data.train) exactly one
 * class folder is refused, classification needs two. (A folder with none is
 * left to the worker, which refuses it: the daemon's tests give fake workers
 * folders without classes.) */
static int check_classes(const char *keypath, const char *p, bool want_two, char *const *roots,
                         int n_roots, char *msg, size_t msglen)
{
    char real[PATH_MAX], tmp[512];
    if (!realpath(p, real))
        return err_set_errno(msg, msglen, ERR_NOTFOUND, errno, "%s: cannot resolve %s", keypath, p);
    datapath_scope sc = {.real_dir = real, .roots = roots, .n_roots = n_roots};
    char **names;
    size_t n;
    int rc = datapath_classes(p, &sc, &names, &n, NULL, NULL, tmp, sizeof tmp);
    if (rc)
        rc = err_set(msg, msglen, rc == ERR_DATA ? ERR_INVALID : rc, "%s: %s", keypath, tmp);
    else if (want_two && n == 1) {
        char esc[256];
        utf8_escape(esc, sizeof esc, names[0]);
        rc = err_set(msg, msglen, ERR_INVALID,
                     "%s: %s has one class folder (%s)%s; classification needs two or more",
                     keypath, p, esc, n_roots > 0 ? " inside data_roots" : "");
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* The required object KEY of the job ("data"), holding only the NULL-ended
 * KEYS; *OUT is borrowed from JOB. 0, or a code with the message ("data:
 * missing", "data.x: unknown key"). */
static int get_section(const json_t *job, const char *key, const char *const *keys, json_t **out,
                       char *msg, size_t msglen)
{
    int rc = jx_get_object(job, "", key, true, out, msg, msglen);
    if (rc) return rc < 0 ? rc : err_set(msg, msglen, ERR_NOTFOUND, "%s: missing", key);
    return jx_check_keys(*out, key, keys, msg, msglen);
}

static int parse_data(jobspec *js, const json_t *job, unsigned flags, char *msg, size_t msglen)
{
    static const char *const keys[] = {"train", "val", "val_fraction", "test", NULL};
    json_t *data;
    int rc = get_section(job, "data", keys, &data, msg, msglen);
    if (rc) return rc;
    const char *s;
    if ((rc = jx_get_string(data, "data", "train", true, false, &s, msg, msglen))) return rc;
    if (!*s) return err_set(msg, msglen, ERR_INVALID, "data.train: must not be empty");
    js->train = strdup(s);
    rc = jx_get_string(data, "data", "val", false, true, &s, msg, msglen);
    if (rc < 0) return rc;
    if (rc == 0) js->val = strdup(s);
    rc = jx_get_string(data, "data", "test", false, true, &s, msg, msglen);
    if (rc < 0) return rc;
    if (rc == 0) js->test = strdup(s);
    js->val_fraction = 0.1;
    rc = jx_get_number(data, "data", "val_fraction", false, &js->val_fraction, msg, msglen);
    if (rc < 0) return rc;
    if (!(js->val_fraction > 0 && js->val_fraction < 1))
        return err_set(msg, msglen, ERR_RANGE,
                       "data.val_fraction: expected a number in (0, 1), got %g", js->val_fraction);
    if (!js->train || (json_is_string(json_object_get(data, "val")) && !js->val) ||
        (json_is_string(json_object_get(data, "test")) && !js->test))
        return ERR_NOMEM;
    if (flags & JOBSPEC_CHECK_PATHS) {
        if ((rc = check_path("data.train", js->train, true, msg, msglen))) return rc;
        if (js->val && (rc = check_path("data.val", js->val, true, msg, msglen))) return rc;
        if (js->test && (rc = check_path("data.test", js->test, true, msg, msglen))) return rc;
    }
    if ((flags & JOBSPEC_CHECK_PATHS) && !(flags & JOBSPEC_ROOTS)) {
        if ((rc = check_classes("data.train", js->train, true, NULL, 0, msg, msglen))) return rc;
        if (js->val && (rc = check_classes("data.val", js->val, false, NULL, 0, msg, msglen)))
            return rc;
        if (js->test && (rc = check_classes("data.test", js->test, false, NULL, 0, msg, msglen)))
            return rc;
    }
    return 0;
}

static int parse_model(jobspec *js, const json_t *job, unsigned flags, char *msg, size_t msglen)
{
    static const char *const keys[] = {"arch", "weights", "input_size", "width", NULL};
    json_t *model;
    int rc = get_section(job, "model", keys, &model, msg, msglen);
    if (rc) return rc;
    const char *s = ARCH_DEFAULT;
    rc = jx_get_string(model, "model", "arch", false, false, &s, msg, msglen);
    if (rc < 0) return rc;
    if (!arch_known(s)) { // the worker's list (arch.h): refused here exactly when a worker would
        char list[256];
        return err_set(msg, msglen, ERR_INVALID, "model.arch: expected one of %s, got \"%s\"",
                       arch_list_string(list, sizeof list), s);
    }
    js->arch = strdup(s);
    rc = jx_get_string(model, "model", "weights", false, true, &s, msg, msglen);
    if (rc < 0) return rc;
    if (rc == 0) {
        if (!*s)
            return err_set(msg, msglen, ERR_INVALID,
                           "model.weights: must not be empty (use null to train from scratch)");
        js->weights = strdup(s);
        if ((flags & JOBSPEC_CHECK_PATHS) &&
            (rc = check_path("model.weights", js->weights, false, msg, msglen)))
            return rc;
    }
    int64_t v = 224;
    rc = jx_get_int(model, "model", "input_size", false, 8, 4096, &v, msg, msglen);
    if (rc < 0) return rc;
    js->input_size = (int)v;
    v = 64;
    rc = jx_get_int(model, "model", "width", false, 1, 4096, &v, msg, msglen);
    if (rc < 0) return rc;
    js->width = (int)v;
    return js->arch ? 0 : ERR_NOMEM;
}

static int parse_objective(jobspec *js, const json_t *job, char *msg, size_t msglen)
{
    static const char *const keys[] = {"metric", "goal", NULL};
    static const char *const metrics[] = {"val_accuracy", "val_loss", "val_precision",
                                          "val_recall",   "val_f1",   NULL};
    static const char *const goals[] = {"maximize", "minimize", NULL};
    json_t *obj = NULL;
    int rc = jx_get_object(job, "", "objective", false, &obj, msg, msglen);
    if (rc < 0) return rc;
    int m = 0;
    js->maximize = true;
    if (obj) {
        if ((rc = jx_check_keys(obj, "objective", keys, msg, msglen))) return rc;
        json_t *mv = json_object_get(obj, "metric");
        if (mv && (m = jx_as_enum(mv, "objective.metric", metrics, msg, msglen)) < 0) return m;
        if (mv == NULL) m = 0;
        js->maximize = strcmp(metrics[m], "val_loss") != 0;
        json_t *gv = json_object_get(obj, "goal");
        if (gv) {
            int g = jx_as_enum(gv, "objective.goal", goals, msg, msglen);
            if (g < 0) return g;
            js->maximize = g == 0;
        }
    }
    js->metric = strdup(metrics[m]);
    return js->metric ? 0 : ERR_NOMEM;
}

/* The one member of the object V (the caller checked its size) at PATH, as
 * an index into the NULL-ended NAMES (*K) and its value (*VAL, borrowed),
 * with its key path in P (PLEN bytes). An unknown name is ERR_UNKNOWN_KEY:
 * "PATH.NAME: unknown WHAT (expected EXPECTED)". */
static int one_member(const json_t *v, const char *path, const char *const *names, const char *what,
                      const char *expected, int *k, json_t **val, char *p, size_t plen, char *msg,
                      size_t msglen)
{
    const char *name = json_object_iter_key(json_object_iter((json_t *)v));
    *val = json_object_iter_value(json_object_iter((json_t *)v));
    for (*k = 0; names[*k]; (*k)++)
        if (!strcmp(names[*k], name)) break;
    jx_path_key(p, plen, path, name);
    if (!names[*k])
        return err_set(msg, msglen, ERR_UNKNOWN_KEY, "%s: unknown %s (expected %s)", p, what,
                       expected);
    return 0;
}

/* "pruner" of JOB into JS->pruner (include/prune.h): "none", or an object
 * with one member "median" or "asha" holding its settings. */
static int parse_pruner(jobspec *js, const json_t *job, char *msg, size_t msglen)
{
    static const char *const kinds[] = {"median", "asha", NULL};
    static const char *const median_keys[] = {"warmup_epochs", "min_trials", NULL};
    static const char *const asha_keys[] = {"min_epochs", "reduction", NULL};
    json_t *v = json_object_get(job, "pruner");
    js->pruner = (prune_config){.kind = PRUNE_NONE};
    if (!v || (json_is_string(v) && !strcmp(json_string_value(v), "none"))) return 0;
    if (!json_is_object(v) || json_object_size(v) != 1) {
        char d[64];
        jx_describe(v, d, sizeof d);
        return err_set(msg, msglen, json_is_object(v) ? ERR_INVALID : ERR_TYPE,
                       "pruner: expected \"none\", {\"median\":{...}} or {\"asha\":{...}}, got %s",
                       d);
    }
    json_t *o;
    int k;
    char path[128];
    int rc = one_member(v, "pruner", kinds, "pruner", "median or asha", &k, &o, path, sizeof path,
                        msg, msglen);
    if (rc) return rc;
    if (!json_is_object(o)) {
        char d[64];
        jx_describe(o, d, sizeof d);
        return err_set(msg, msglen, ERR_TYPE, "%s: expected an object, got %s", path, d);
    }
    rc = jx_check_keys(o, path, k == 0 ? median_keys : asha_keys, msg, msglen);
    if (rc) return rc;
    /* Defaults: median W 0, M 1; asha R 1, ETA 3. */
    int64_t a = k == 0 ? 0 : 1, b = k == 0 ? 1 : 3;
    const char *ka = k == 0 ? "warmup_epochs" : "min_epochs";
    const char *kb = k == 0 ? "min_trials" : "reduction";
    rc = jx_get_int(o, path, ka, false, k == 0 ? 0 : 1, 1000000, &a, msg, msglen);
    if (rc < 0) return rc;
    rc = jx_get_int(o, path, kb, false, k == 0 ? 1 : 2, 1000000, &b, msg, msglen);
    if (rc < 0) return rc;
    if (k == 0)
        js->pruner =
            (prune_config){.kind = PRUNE_MEDIAN, .warmup_epochs = (int)a, .min_trials = (int)b};
    else
        js->pruner = (prune_config){.kind = PRUNE_ASHA, .min_epochs = (int)a, .reduction = (int)b};
    return 0;
}

/* A distribution object {"uniform":[a,b]} etc. at PATH for KEY; fills kind
 * (0 uniform, 1 log_uniform, 2 int_uniform) and bounds. */
static int parse_dist(const json_t *v, const char *path, const char *key, int *kind, double *a,
                      double *b, char *msg, size_t msglen)
{
    static const char *const names[] = {"uniform", "log_uniform", "int_uniform", NULL};
    if (json_object_size(v) != 1)
        return err_set(
            msg, msglen, ERR_INVALID,
            "%s: expected a list or one of {\"uniform\":[a,b]}, {\"log_uniform\":[a,b]}, "
            "{\"int_uniform\":[a,b]}",
            path);
    json_t *arr;
    int k;
    char p[256];
    int rc = one_member(v, path, names, "distribution", "uniform, log_uniform or int_uniform", &k,
                        &arr, p, sizeof p, msg, msglen);
    if (rc) return rc;
    if (type_of(key) == KT_OTHER)
        return err_set(msg, msglen, ERR_INVALID,
                       "%s: %s is not numeric; give a list of values to choose from", p, key);
    if (type_of(key) == KT_INT && k != 2)
        return err_set(msg, msglen, ERR_INVALID, "%s: %s takes integers; use int_uniform or a list",
                       p, key);
    if (!json_is_array(arr) || json_array_size(arr) != 2)
        return err_set(msg, msglen, ERR_TYPE, "%s: expected a list of two numbers [low, high]", p);
    char pi[300];
    if (k == 2) {
        int64_t lo, hi;
        jx_path_index(pi, sizeof pi, p, 0);
        if ((rc = jx_as_int(json_array_get(arr, 0), pi, INT32_MIN, INT32_MAX, &lo, msg, msglen)))
            return rc;
        jx_path_index(pi, sizeof pi, p, 1);
        if ((rc = jx_as_int(json_array_get(arr, 1), pi, INT32_MIN, INT32_MAX, &hi, msg, msglen)))
            return rc;
        *a = (double)lo;
        *b = (double)hi;
    } else {
        jx_path_index(pi, sizeof pi, p, 0);
        if ((rc = jx_as_number(json_array_get(arr, 0), pi, a, msg, msglen))) return rc;
        jx_path_index(pi, sizeof pi, p, 1);
        if ((rc = jx_as_number(json_array_get(arr, 1), pi, b, msg, msglen))) return rc;
    }
    if (!(*a <= *b))
        return err_set(msg, msglen, ERR_RANGE, "%s: low %g is above high %g", p, *a, *b);
    if (k == 1 && !(*a > 0))
        return err_set(msg, msglen, ERR_RANGE, "%s: log_uniform needs low > 0, got %g", p, *a);
    *kind = k;
    return 0;
}

/* One searched key. */
typedef struct {
    const char *key;    // canonical key name (static)
    const json_t *list; // the list of values, or NULL for a distribution
    int kind;           // distribution kind when list is NULL
    double a, b;        // distribution bounds
} dim;

size_t jobspec_grid_size(const json_t *space)
{
    size_t n = 1;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)space, k, v)
    {
        size_t m = json_is_array(v) ? json_array_size(v) : 1;
        if (m == 0) return 0;
        if (n > SIZE_MAX / m) return SIZE_MAX;
        n *= m;
    }
    return n;
}

static int set_fixed(trial_params *base, const json_t *fixed, const json_t *space, char *msg,
                     size_t msglen)
{
    const char *k;
    json_t *v;
    /* Sorted order so the first error reported is stable. */
    const char *keys[64];
    size_t nk = 0;
    json_object_foreach((json_t *)fixed, k, v)
    {
        if (nk < 64) keys[nk++] = k;
    }
    for (size_t i = 1; i < nk; i++)
        for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
            const char *t = keys[j];
            keys[j] = keys[j - 1];
            keys[j - 1] = t;
        }
    for (size_t i = 0; i < nk; i++) {
        char p[256];
        jx_path_key(p, sizeof p, "fixed", keys[i]);
        if (!is_param_key(keys[i])) return jx_unknown_key(p, keys[i], params_keys, msg, msglen);
        if (space && json_object_get(space, keys[i]))
            return err_set(msg, msglen, ERR_INVALID,
                           "%s: %s is also in space; give it in one place", p, keys[i]);
        int rc = params_set(base, keys[i], json_object_get(fixed, keys[i]), p, msg, msglen);
        if (rc) return rc;
    }
    return 0;
}

/* Sets dimension D's value for one trial: list element IDX, or a sample from R. */
static int set_dim(trial_params *p, const dim *d, size_t idx, rng_t *r, int number, char *msg,
                   size_t msglen)
{
    char path[256];
    jx_path_key(path, sizeof path, "space", d->key);
    if (d->list) {
        size_t i = r ? (size_t)rng_int(r, 0, (int64_t)json_array_size(d->list) - 1) : idx;
        char pi[300];
        jx_path_index(pi, sizeof pi, path, i);
        return params_set(p, d->key, json_array_get(d->list, i), pi, msg, msglen);
    }
    json_t *v;
    if (d->kind == 2)
        v = json_integer(rng_int(r, (int64_t)d->a, (int64_t)d->b));
    else if (d->kind == 1)
        v = json_real(rng_log_uniform(r, d->a, d->b));
    else
        v = json_real(d->a == d->b ? d->a : rng_range(r, d->a, d->b));
    if (!v) return ERR_NOMEM;
    char tmp[512];
    int rc = params_set(p, d->key, v, path, tmp, sizeof tmp);
    if (rc) {
        char vs[64];
        jx_describe(v, vs, sizeof vs);
        err_set(msg, msglen, rc, "%s (value %s drawn for trial %d; narrow the range)", tmp, vs,
                number);
    }
    json_decref(v);
    return rc;
}

/* Relations between keys (warmup_epochs < epochs), named under "space" when
 * either key is searched, else under "fixed". */
static int check_trial(jobspec_trial *t, const json_t *space, char *msg, size_t msglen)
{
    char path[64], tmp[512];
    snprintf(path, sizeof path, "trial %d", t->number);
    const char *where =
        (json_object_get(space, "warmup_epochs") || json_object_get(space, "epochs")) ? "space"
                                                                                      : "fixed";
    int rc = params_check(&t->params, where, tmp, sizeof tmp);
    if (rc) err_set(msg, msglen, rc, "%s (%s)", tmp, path);
    return rc;
}

static int expand(jobspec *js, const json_t *space, const trial_params *base, int64_t n_random,
                  char *msg, size_t msglen)
{
    dim dims[32];
    size_t nd = 0;
    bool grid = !strcmp(js->strategy, "grid");
    /* Keys in canonical order; unknown keys are reported in sorted order. */
    const char *k;
    json_t *v;
    const char *bad = NULL;
    json_object_foreach((json_t *)space, k, v)
    {
        if (!is_param_key(k) && (!bad || strcmp(k, bad) < 0)) bad = k;
    }
    if (bad) {
        char p[256];
        snprintf(p, sizeof p, "space.%s", bad);
        return jx_unknown_key(p, bad, params_keys, msg, msglen);
    }
    for (int i = 0; params_keys[i] && nd < 32; i++) {
        v = json_object_get(space, params_keys[i]);
        if (!v) continue;
        char path[256];
        jx_path_key(path, sizeof path, "space", params_keys[i]);
        dim *d = &dims[nd++];
        memset(d, 0, sizeof *d);
        d->key = params_keys[i];
        if (json_is_array(v)) {
            if (json_array_size(v) == 0)
                return err_set(msg, msglen, ERR_INVALID, "%s: empty list", path);
            /* Validate every listed value with its index. */
            trial_params scratch = *base;
            for (size_t j = 0; j < json_array_size(v); j++) {
                char pi[300];
                jx_path_index(pi, sizeof pi, path, j);
                int rc = params_set(&scratch, d->key, json_array_get(v, j), pi, msg, msglen);
                if (rc) return rc;
            }
            d->list = v;
        } else if (grid) {
            char desc[64];
            jx_describe(v, desc, sizeof desc);
            return err_set(msg, msglen, ERR_TYPE,
                           "%s: strategy grid needs a list of values, got %s", path, desc);
        } else if (json_is_object(v)) {
            int rc = parse_dist(v, path, d->key, &d->kind, &d->a, &d->b, msg, msglen);
            if (rc) return rc;
        } else {
            char desc[64];
            jx_describe(v, desc, sizeof desc);
            return err_set(msg, msglen, ERR_TYPE,
                           "%s: expected a list or a distribution object, got %s", path, desc);
        }
    }
    size_t n;
    if (grid) {
        n = jobspec_grid_size(space);
        if (n > JOBSPEC_MAX_GRID) {
            if (n == SIZE_MAX)
                return err_set(
                    msg, msglen, ERR_TOOBIG,
                    "space: grid has more points than the limit of %d; use strategy random",
                    JOBSPEC_MAX_GRID);
            return err_set(
                msg, msglen, ERR_TOOBIG,
                "space: grid has %zu points, more than the limit of %d; use strategy random", n,
                JOBSPEC_MAX_GRID);
        }
    } else {
        n = (size_t)n_random;
    }
    js->trials = calloc(n ? n : 1, sizeof *js->trials);
    if (!js->trials) return ERR_NOMEM;
    js->n_trials = n;
    uint64_t pstream = rng_derive(js->seed, JOBSPEC_STREAM_PARAMS);
    for (size_t t = 0; t < n; t++) {
        jobspec_trial *tr = &js->trials[t];
        tr->number = (int)t;
        tr->seed = rng_derive(js->seed, t) & JOBSPEC_SEED_MASK;
        tr->params = *base;
        int rc;
        if (grid) {
            /* Mixed radix, last dimension fastest. */
            size_t rem = t;
            size_t idx[32];
            for (size_t d = nd; d-- > 0;) {
                size_t m = json_array_size(dims[d].list);
                idx[d] = rem % m;
                rem /= m;
            }
            for (size_t d = 0; d < nd; d++)
                if ((rc = set_dim(&tr->params, &dims[d], idx[d], NULL, tr->number, msg, msglen)))
                    return rc;
        } else {
            rng_t r;
            rng_seed(&r, rng_derive(pstream, t));
            for (size_t d = 0; d < nd; d++)
                if ((rc = set_dim(&tr->params, &dims[d], 0, &r, tr->number, msg, msglen)))
                    return rc;
        }
        if ((rc = check_trial(tr, space, msg, msglen))) return rc;
    }
    return 0;
}

int jobspec_parse(jobspec *js, const json_t *job, unsigned flags, uint64_t default_seed, char *msg,
                  size_t msglen)
{
    static const char *const keys[] = {
        "name",      "data",         "model",         "strategy",    "space", "fixed",  "trials",
        "objective", "max_parallel", "trial_timeout", "max_retries", "seed",  "pruner", NULL};
    static const char *const strategies[] = {"grid", "random", NULL};
    memset(js, 0, sizeof *js);
    js->max_retries = -1;
    if (!json_is_object(job)) {
        char d[64];
        jx_describe(job, d, sizeof d);
        return err_set(msg, msglen, ERR_TYPE, "job: expected an object, got %s", d);
    }
    int rc = jx_check_keys(job, "", keys, msg, msglen);
    if (rc) return rc;
    const char *s = "job";
    rc = jx_get_string(job, "", "name", false, false, &s, msg, msglen);
    if (rc < 0) return rc;
    if (!*s) return err_set(msg, msglen, ERR_INVALID, "name: must not be empty");
    if (strlen(s) > 200) return err_set(msg, msglen, ERR_RANGE, "name: longer than 200 characters");
    js->name = strdup(s);
    int strat = 0;
    json_t *sv = json_object_get(job, "strategy");
    if (sv && (strat = jx_as_enum(sv, "strategy", strategies, msg, msglen)) < 0) return strat;
    js->strategy = strdup(strategies[strat]);
    if (!js->name || !js->strategy) return ERR_NOMEM;
    if ((rc = parse_data(js, job, flags, msg, msglen))) return rc;
    if ((rc = parse_model(js, job, flags, msg, msglen))) return rc;
    if ((rc = parse_objective(js, job, msg, msglen))) return rc;
    if ((rc = parse_pruner(js, job, msg, msglen))) return rc;
    int64_t v = 0;
    rc = jx_get_int(job, "", "max_parallel", false, 1, 4096, &v, msg, msglen);
    if (rc < 0) return rc;
    js->max_parallel = rc == 0 ? (int)v : 0;
    double d = 0;
    rc = jx_get_number(job, "", "trial_timeout", false, &d, msg, msglen);
    if (rc < 0) return rc;
    if (rc == 0) {
        if (!(d > 0 && d <= 1e9))
            return err_set(msg, msglen, ERR_RANGE, "trial_timeout: expected seconds > 0, got %g",
                           d);
        js->trial_timeout = d;
        js->has_trial_timeout = true;
    }
    rc = jx_get_int(job, "", "max_retries", false, 0, 1000, &v, msg, msglen);
    if (rc < 0) return rc;
    js->max_retries = rc == 0 ? (int)v : -1;
    rc = jx_get_int(job, "", "seed", false, 0, (int64_t)JOBSPEC_SEED_MASK, &v, msg, msglen);
    if (rc < 0) return rc;
    js->seed_given = rc == 0;
    js->seed = rc == 0 ? (uint64_t)v : (default_seed & JOBSPEC_SEED_MASK);
    /* Search space. */
    json_t *space = NULL, *fixed = NULL;
    rc = jx_get_object(job, "", "space", false, &space, msg, msglen);
    if (rc < 0) return rc;
    rc = jx_get_object(job, "", "fixed", false, &fixed, msg, msglen);
    if (rc < 0) return rc;
    int64_t n_random = 0;
    rc = jx_get_int(job, "", "trials", false, 1, JOBSPEC_MAX_TRIALS, &n_random, msg, msglen);
    if (rc < 0) return rc;
    if (strat == 1 && rc != 0)
        return err_set(msg, msglen, ERR_NOTFOUND,
                       "trials: strategy random needs \"trials\": the number of samples");
    if (strat == 0 && rc == 0)
        return err_set(msg, msglen, ERR_INVALID,
                       "trials: only for strategy random (a grid runs every point)");
    trial_params base;
    params_defaults(&base);
    if (fixed && (rc = set_fixed(&base, fixed, space, msg, msglen))) return rc;
    json_t *empty = NULL;
    if (!space) space = empty = json_object();
    if (!space) return ERR_NOMEM;
    /* Without JOBSPEC_EXPAND (re-reading a stored, already checked job) the
     * space is not expanded again. */
    rc = (flags & JOBSPEC_EXPAND) ? expand(js, space, &base, n_random, msg, msglen) : 0;
    json_decref(empty);
    return rc;
}

json_t *jobspec_trial_template(const jobspec *js)
{
    json_t *data = json_pack("{s:s, s:f}", "train", js->train, "val_fraction", js->val_fraction);
    json_t *model = json_pack("{s:s, s:i}", "arch", js->arch, "input_size", js->input_size);
    json_t *obj = json_pack("{s:s, s:s}", "metric", js->metric, "goal",
                            js->maximize ? "maximize" : "minimize");
    if (!data || !model || !obj) goto fail;
    json_object_set_new(data, "val", js->val ? json_string(js->val) : json_null());
    json_object_set_new(data, "test", js->test ? json_string(js->test) : json_null());
    json_object_set_new(model, "weights", js->weights ? json_string(js->weights) : json_null());
    if (!js->weights) json_object_set_new(model, "width", json_integer(js->width));
    json_t *t = json_pack("{s:o, s:o, s:o}", "data", data, "model", model, "objective", obj);
    return t;
fail:
    json_decref(data);
    json_decref(model);
    json_decref(obj);
    return NULL;
}

int jobspec_check_roots(jobspec *js, json_t *job, char *const *roots, int n_roots,
                        const char *roots_text, char *msg, size_t msglen)
{
    if (n_roots <= 0) return 0;
    struct {
        const char *key;  // key path for messages
        const char *obj;  // object holding it in JOB
        const char *name; // its name there
        char **slot;      // the path in JS
    } paths[] = {
        {"data.train", "data", "train", &js->train},
        {"data.val", "data", "val", &js->val},
        {"data.test", "data", "test", &js->test},
        {"model.weights", "model", "weights", &js->weights},
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        const char *p = *paths[i].slot;
        if (!p) continue;
        char real[PATH_MAX];
        if (!realpath(p, real))
            return err_set_errno(msg, msglen, ERR_NOTFOUND, errno, "%s: cannot resolve %s",
                                 paths[i].key, p);
        if (!datapath_in_roots(real, roots, n_roots)) {
            if (strcmp(real, p))
                return err_set(msg, msglen, ERR_PERM,
                               "%s: %s (resolved to %s) is outside data_roots (%s)", paths[i].key,
                               p, real, roots_text);
            return err_set(msg, msglen, ERR_PERM, "%s: %s is outside data_roots (%s)", paths[i].key,
                           p, roots_text);
        }
        /* The data folders' class folders, by the rule within the roots
         * (jobspec_parse with JOBSPEC_ROOTS left them to here). */
        int rc = 0;
        if (strcmp(paths[i].obj, "data") == 0)
            rc = check_classes(paths[i].key, real, i == 0, roots, n_roots, msg, msglen);
        if (rc) return rc;
        char *dup = strdup(real);
        if (!dup) return ERR_NOMEM;
        free(*paths[i].slot);
        *paths[i].slot = dup;
        json_t *o = job ? json_object_get(job, paths[i].obj) : NULL;
        if (json_is_object(o) && json_object_set_new(o, paths[i].name, json_string(real)) != 0)
            return ERR_NOMEM;
    }
    return 0;
}

/* ABS (an absolute path that exists) without ".", ".." or repeated slashes,
 * naming the same file: the part up to its last ".." is resolved with
 * realpath (".." after a symlink leaves the link's target, as the kernel
 * does), the rest is kept as written, so a final symlink stays one. A new
 * string (caller frees), NULL when out of memory or that part cannot be
 * resolved. */
static char *normal_path(const char *abs)
{
    size_t n = strlen(abs);
    char *out = malloc(n + PATH_MAX + 2), *tail = malloc(n + 2);
    if (!out || !tail) goto fail;
    /* The components after the last "..", without "." and empty ones. */
    const char *last_dotdot = NULL;
    for (const char *c = abs; (c = strstr(c, "..")); c += 2)
        if ((c == abs || c[-1] == '/') && (c[2] == '/' || !c[2])) last_dotdot = c + 2;
    size_t t = 0;
    for (const char *c = last_dotdot ? last_dotdot : abs; *c;) {
        while (*c == '/')
            c++;
        size_t len = strcspn(c, "/");
        if (len && !(len == 1 && c[0] == '.')) {
            tail[t++] = '/';
            memcpy(tail + t, c, len);
            t += len;
        }
        c += len;
    }
    tail[t] = 0;
    if (!last_dotdot) {
        snprintf(out, n + PATH_MAX + 2, "%s", t ? tail : "/");
    } else {
        char *head = strndup(abs, (size_t)(last_dotdot - abs)), resolved[PATH_MAX];
        bool ok = head && realpath(head, resolved);
        free(head);
        if (!ok) goto fail;
        snprintf(out, n + PATH_MAX + 2, "%s%s", strcmp(resolved, "/") || !t ? resolved : "", tail);
    }
    free(tail);
    return out;
fail:
    free(out);
    free(tail);
    return NULL;
}

int jobspec_absolute_paths(jobspec *js, json_t *job, char *msg, size_t msglen)
{
    struct {
        const char *obj;  // object holding it in JOB
        const char *name; // its name there
        char **slot;      // the path in JS
    } paths[] = {
        {"data", "train", &js->train},
        {"data", "val", &js->val},
        {"data", "test", &js->test},
        {"model", "weights", &js->weights},
    };
    char cwd[PATH_MAX];
    bool have_cwd = false;
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        const char *p = *paths[i].slot;
        if (!p) continue;
        char *joined = NULL;
        if (p[0] != '/') {
            if (!have_cwd && !getcwd(cwd, sizeof cwd))
                return err_set_errno(msg, msglen, ERR_IO, errno, "%s.%s: cannot resolve %s",
                                     paths[i].obj, paths[i].name, p);
            have_cwd = true;
            if (asprintf(&joined, "%s/%s", cwd, p) < 0) return ERR_NOMEM;
        }
        /* Stored normalised: no "/tmp/jobs/../data". */
        char *abs = normal_path(joined ? joined : p);
        int e = errno;
        free(joined);
        if (!abs)
            return err_set_errno(msg, msglen, e == ENOMEM ? ERR_NOMEM : ERR_IO, e,
                                 "%s.%s: cannot resolve %s", paths[i].obj, paths[i].name, p);
        if (!strcmp(abs, p)) {
            free(abs);
            continue;
        }
        json_t *o = job ? json_object_get(job, paths[i].obj) : NULL;
        if (json_is_object(o) && json_object_set_new(o, paths[i].name, json_string(abs)) != 0) {
            free(abs);
            return ERR_NOMEM;
        }
        free(*paths[i].slot);
        *paths[i].slot = abs;
    }
    return 0;
}
