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
#include "st_header.h"
#include "utf8.h"
#include "weights_meta.h"

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
    for (size_t i = 0; i < js->n_archs; i++) {
        free(js->archs[i].arch);
        free(js->archs[i].weights);
    }
    free(js->metric);
    free(js->trials);
    jobspec_space_free(&js->space);
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

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The class folders of data folder P (key KEYPATH) into *NAMES (N, sorted;
 * the caller frees them with free_names, also after an error), listed by the
 * worker's rule (datapath.h) within the N_ROOTS data_roots ROOTS (0: none):
 * a name that is not valid UTF-8 is refused. */
static int list_classes(const char *keypath, const char *p, char *const *roots, int n_roots,
                        char ***names, size_t *n, char *msg, size_t msglen)
{
    char real[PATH_MAX], tmp[512];
    *names = NULL;
    *n = 0;
    if (!realpath(p, real))
        return err_set_errno(msg, msglen, ERR_NOTFOUND, errno, "%s: cannot resolve %s", keypath, p);
    datapath_scope sc = {.real_dir = real, .roots = roots, .n_roots = n_roots};
    int rc = datapath_classes(p, &sc, names, n, NULL, NULL, tmp, sizeof tmp);
    if (rc) return err_set(msg, msglen, rc == ERR_DATA ? ERR_INVALID : rc, "%s: %s", keypath, tmp);
    return 0;
}

/* The class folders of data folder P (key KEYPATH) by list_classes; with
 * WANT_TWO (data.train) exactly one class folder is refused, classification
 * needs two. (A folder with none is left to the worker, which refuses it:
 * the daemon's tests give fake workers folders without classes.) */
static int check_classes(const char *keypath, const char *p, bool want_two, char *const *roots,
                         int n_roots, char *msg, size_t msglen)
{
    char **names;
    size_t n;
    int rc = list_classes(keypath, p, roots, n_roots, &names, &n, msg, msglen);
    if (!rc && want_two && n == 1) {
        char esc[256];
        utf8_escape(esc, sizeof esc, names[0]);
        rc = err_set(msg, msglen, ERR_INVALID,
                     "%s: %s has one class folder (%s)%s; classification needs two or more",
                     keypath, p, esc, n_roots > 0 ? " inside data_roots" : "");
    }
    free_names(names, n);
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
    js->arch_given = rc == 0;
    js->arch_from = js->arch_given ? "job" : "default";
    if (!arch_known(s)) { // the worker's list (arch.h): refused here exactly when a worker would
        char list[256];
        return err_set(msg, msglen, ERR_INVALID, "model.arch: expected one of %s, got \"%s\"",
                       arch_list_string(list, sizeof list), s);
    }
    js->arch = strdup(s);
    /* An object names one file per architecture of space.arch
     * (parse_arch_search checks it against the space). */
    rc = json_is_object(json_object_get(model, "weights"))
             ? 1
             : jx_get_string(model, "model", "weights", false, true, &s, msg, msglen);
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
    int64_t v = WEIGHTS_DEFAULT_INPUT_SIZE;
    rc = jx_get_int(model, "model", "input_size", false, WEIGHTS_MIN_INPUT_SIZE,
                    WEIGHTS_MAX_INPUT_SIZE, &v, msg, msglen);
    if (rc < 0) return rc;
    js->input_size = (int)v;
    js->input_size_from = rc == 0 ? "job" : "default";
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
    if (!isfinite(*b - *a))
        return err_set(msg, msglen, ERR_RANGE, "%s: the range from %g to %g is too wide", p, *a,
                       *b);
    if (k == 1 && !(*a > 0))
        return err_set(msg, msglen, ERR_RANGE, "%s: log_uniform needs low > 0, got %g", p, *a);
    *kind = k;
    return 0;
}

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

/* ---- the search space ------------------------------------------------- */

/* suggest.h kinds of parse_dist's kinds 0, 1, 2. */
static const suggest_kind dist_kinds[] = {SUGGEST_UNIFORM, SUGGEST_LOG, SUGGEST_INT};

void jobspec_space_free(jobspec_space *sp)
{
    for (int i = 0; i < sp->nd; i++) {
        json_decref(sp->d[i].values);
        free(sp->d[i].raw_value);
    }
    sp->nd = 0;
}

void jobspec_space_copy(jobspec_space *out, const jobspec_space *sp)
{
    *out = *sp;
    for (int i = 0; i < sp->nd; i++) {
        json_incref(out->d[i].values);
        out->d[i].raw_value = NULL;
    }
}

/* List V (at PATH) of key D->key into D: every value checked with
 * params_set over BASE (its index in the message), the distinct ones kept
 * as params_to_json writes them. */
static int parse_list(jobspec_dim *d, const json_t *v, const char *path, const trial_params *base,
                      char *msg, size_t msglen)
{
    if (json_array_size(v) == 0) return err_set(msg, msglen, ERR_INVALID, "%s: empty list", path);
    d->values = json_array();
    d->n_raw = json_array_size(v);
    d->raw_value = calloc(d->n_raw, sizeof *d->raw_value);
    if (!d->values || !d->raw_value) return ERR_NOMEM;
    for (size_t j = 0; j < d->n_raw; j++) {
        char pi[300];
        jx_path_index(pi, sizeof pi, path, j);
        trial_params scratch = *base;
        int rc = params_set(&scratch, d->key, json_array_get(v, j), pi, msg, msglen);
        if (rc) return rc;
        json_t *pj = params_to_json(&scratch);
        json_t *nv = pj ? json_object_get(pj, d->key) : NULL;
        if (!nv) {
            json_decref(pj);
            return ERR_NOMEM;
        }
        size_t k = 0;
        while (k < json_array_size(d->values) && !json_equal(json_array_get(d->values, k), nv))
            k++;
        if (k == json_array_size(d->values) && json_array_append(d->values, nv) != 0) k = SIZE_MAX;
        json_decref(pj);
        if (k == SIZE_MAX) return ERR_NOMEM;
        d->raw_value[j] = (int)k;
    }
    d->dim = (suggest_dim){.kind = SUGGEST_CHOICE, .n_choices = (int)json_array_size(d->values)};
    return 0;
}

/* The searched keys of SPACE into SP, in canonical order, over BASE; GRID
 * (strategy grid) takes lists only. Unknown keys are reported in sorted
 * order. */
static int parse_space(jobspec_space *sp, const json_t *space, const trial_params *base, bool grid,
                       char *msg, size_t msglen)
{
    sp->base = *base;
    sp->has_relations = json_object_get(space, "warmup_epochs") || json_object_get(space, "epochs");
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
    for (int i = 0; params_keys[i] && sp->nd < SUGGEST_MAX_DIMS; i++) {
        v = json_object_get(space, params_keys[i]);
        if (!v) continue;
        char path[256], desc[64];
        jx_path_key(path, sizeof path, "space", params_keys[i]);
        jobspec_dim *d = &sp->d[sp->nd++]; // counted now, so jobspec_space_free frees it
        memset(d, 0, sizeof *d);
        d->key = params_keys[i];
        int rc = 0;
        if (json_is_array(v)) {
            rc = parse_list(d, v, path, base, msg, msglen);
        } else if (grid) {
            jx_describe(v, desc, sizeof desc);
            rc = err_set(msg, msglen, ERR_TYPE, "%s: strategy grid needs a list of values, got %s",
                         path, desc);
        } else if (json_is_object(v)) {
            int kind = 0;
            double a = 0, b = 0;
            rc = parse_dist(v, path, d->key, &kind, &a, &b, msg, msglen);
            if (rc == 0) d->dim = (suggest_dim){.kind = dist_kinds[kind], .lo = a, .hi = b};
        } else {
            jx_describe(v, desc, sizeof desc);
            rc = err_set(msg, msglen, ERR_TYPE,
                         "%s: expected a list or a distribution object, got %s", path, desc);
        }
        if (rc) return rc;
    }
    return 0;
}

/* Number of distinct points of SP (INFINITY when a real range is searched). */
static double space_size(const jobspec_space *sp)
{
    double n = 1;
    for (int i = 0; i < sp->nd; i++) {
        const suggest_dim *d = &sp->d[i].dim;
        if (d->kind == SUGGEST_CHOICE)
            n *= d->n_choices;
        else if (d->kind == SUGGEST_INT)
            n *= d->hi - d->lo + 1;
        else if (d->lo < d->hi)
            return INFINITY;
    }
    return n;
}

/* Sets key D of P to coordinate X. PATH names it; NUMBER >= 0 is the trial
 * a drawn value is for ("value 3 drawn for trial 2; narrow the range"). */
static int set_coord(trial_params *p, const jobspec_dim *d, double x, const char *path, int number,
                     char *msg, size_t msglen)
{
    if (d->values)
        return params_set(p, d->key, json_array_get(d->values, (size_t)x), path, msg, msglen);
    json_t *v = d->dim.kind == SUGGEST_INT ? json_integer((json_int_t)x) : json_real(x);
    if (!v) return ERR_NOMEM;
    char tmp[512];
    int rc = params_set(p, d->key, v, path, tmp, sizeof tmp);
    if (rc) {
        char vs[64];
        jx_describe(v, vs, sizeof vs);
        if (number >= 0)
            err_set(msg, msglen, rc, "%s (value %s drawn for trial %d; narrow the range)", tmp, vs,
                    number);
        else
            err_set(msg, msglen, rc, "%s (value %s proposed)", tmp, vs);
    }
    json_decref(v);
    return rc;
}

/* SP's base with point X set into OUT, relations checked; NUMBER as for
 * set_coord (the relation message then names the trial). */
static int fill_point(const jobspec_space *sp, const double *x, int number, trial_params *out,
                      char *msg, size_t msglen)
{
    *out = sp->base;
    for (int i = 0; i < sp->nd; i++) {
        char path[256];
        jx_path_key(path, sizeof path, "space", sp->d[i].key);
        int rc = set_coord(out, &sp->d[i], x[i], path, number, msg, msglen);
        if (rc) return rc;
    }
    /* Relations between keys (warmup_epochs < epochs), named under "space"
     * when either key is searched, else under "fixed". */
    char tmp[512];
    int rc = params_check(out, sp->has_relations ? "space" : "fixed", tmp, sizeof tmp);
    if (rc && number >= 0)
        err_set(msg, msglen, rc, "%s (trial %d)", tmp, number);
    else if (rc)
        err_set(msg, msglen, rc, "%s", tmp);
    return rc;
}

int jobspec_space_params(const jobspec_space *sp, const double *x, trial_params *out, char *msg,
                         size_t msglen)
{
    return fill_point(sp, x, -1, out, msg, msglen);
}

int jobspec_space_point(const jobspec_space *sp, const json_t *params, double *x)
{
    for (int i = 0; i < sp->nd; i++) {
        const jobspec_dim *d = &sp->d[i];
        json_t *v = json_object_get(params, d->key);
        if (!v) return ERR_NOTFOUND;
        if (d->values) {
            size_t k = 0;
            while (k < json_array_size(d->values) && !json_equal(json_array_get(d->values, k), v))
                k++;
            if (k == json_array_size(d->values)) return ERR_NOTFOUND;
            x[i] = (double)k;
        } else if (json_is_number(v)) {
            x[i] = json_number_value(v);
        } else {
            return ERR_NOTFOUND;
        }
    }
    return 0;
}

/* ---- distinct points -------------------------------------------------- */

/* The points of the trials expanded so far, to find a repeat in constant
 * time: open addressing over point indexes. */
typedef struct {
    size_t *slot; // point index + 1 per slot, 0 = empty (cap slots, owned)
    size_t cap;   // a power of two, above twice the points to hold
    double *pts;  // the points, nd coordinates each (owned)
    int nd;       // coordinates per point
} pointset;

static int pointset_init(pointset *ps, size_t n, int nd)
{
    ps->nd = nd;
    ps->cap = 16;
    while (ps->cap < 2 * n + 2)
        ps->cap *= 2;
    ps->slot = calloc(ps->cap, sizeof *ps->slot);
    ps->pts = calloc(n * (size_t)nd + 1, sizeof *ps->pts);
    return ps->slot && ps->pts ? 0 : ERR_NOMEM;
}

static void pointset_free(pointset *ps)
{
    free(ps->slot);
    free(ps->pts);
}

/* FNV-1a over the coordinates' bits (0.0 and -0.0 alike). */
static size_t point_hash(const double *x, int nd)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (int i = 0; i < nd; i++) {
        double v = x[i] == 0 ? 0.0 : x[i];
        uint64_t b;
        memcpy(&b, &v, sizeof b);
        for (int k = 0; k < 8; k++) {
            h ^= (b >> (8 * k)) & 0xff;
            h *= UINT64_C(1099511628211);
        }
    }
    return (size_t)h;
}

/* The slot holding point X, or the empty slot where it would go. */
static size_t *pointset_find(const pointset *ps, const double *x)
{
    size_t i = point_hash(x, ps->nd) & (ps->cap - 1);
    while (ps->slot[i] &&
           !suggest_point_equal(ps->pts + (ps->slot[i] - 1) * (size_t)ps->nd, x, ps->nd))
        i = (i + 1) & (ps->cap - 1);
    return &ps->slot[i];
}

/* Point number I (its coordinates already at pts + I*nd) becomes known;
 * false (nothing added) when an earlier point equals it. */
static bool pointset_add(pointset *ps, size_t i)
{
    size_t *s = pointset_find(ps, ps->pts + i * (size_t)ps->nd);
    if (*s) return false;
    *s = i + 1;
    return true;
}

/* ---- expansion -------------------------------------------------------- */

/* Draws of strategy random for one trial from R into X, keys in canonical
 * order (lists by their position as given). */
static void draw_random(const jobspec_space *sp, rng_t *r, double *x)
{
    for (int i = 0; i < sp->nd; i++) {
        const jobspec_dim *d = &sp->d[i];
        if (d->values)
            x[i] = d->raw_value[rng_int(r, 0, (int64_t)d->n_raw - 1)];
        else if (d->dim.kind == SUGGEST_INT)
            x[i] = (double)rng_int(r, (int64_t)d->dim.lo, (int64_t)d->dim.hi);
        else if (d->dim.kind == SUGGEST_LOG)
            x[i] = rng_log_uniform(r, d->dim.lo, d->dim.hi);
        else
            x[i] = d->dim.lo == d->dim.hi ? d->dim.lo : rng_range(r, d->dim.lo, d->dim.hi);
    }
}

/* Grid point T of SPACE (mixed radix over the lists as given, last key
 * fastest) into P over SP's base. */
static int grid_point(const jobspec_space *sp, const json_t *space, size_t t, trial_params *p,
                      char *msg, size_t msglen)
{
    size_t rem = t, idx[SUGGEST_MAX_DIMS];
    for (int d = sp->nd; d-- > 0;) {
        idx[d] = rem % sp->d[d].n_raw;
        rem /= sp->d[d].n_raw;
    }
    *p = sp->base;
    for (int d = 0; d < sp->nd; d++) {
        char path[256], pi[300];
        jx_path_key(path, sizeof path, "space", sp->d[d].key);
        jx_path_index(pi, sizeof pi, path, idx[d]);
        int rc = params_set(p, sp->d[d].key,
                            json_array_get(json_object_get(space, sp->d[d].key), idx[d]), pi, msg,
                            msglen);
        if (rc) return rc;
    }
    char tmp[512];
    int rc = params_check(p, sp->has_relations ? "space" : "fixed", tmp, sizeof tmp);
    if (rc) err_set(msg, msglen, rc, "%s (trial %zu)", tmp, t);
    return rc;
}

/* Draws (random) or Sobol points (sobol) tried before giving up on finding
 * N distinct points, per trial expanded. */
#define DRAWS_PER_TRIAL 64
#define DRAWS_SLACK 100000

/* Point T of JS (random or sobol) into PS's slot T, unseen among the
 * earlier ones; *NEXT_INDEX is the Sobol index to try next. */
static int new_point(const jobspec *js, pointset *ps, size_t t, uint64_t *next_index,
                     uint64_t *budget, char *msg, size_t msglen)
{
    const jobspec_space *sp = &js->space;
    double *x = ps->pts + t * (size_t)sp->nd;
    bool sobol = !strcmp(js->strategy, "sobol");
    suggest_dim dims[SUGGEST_MAX_DIMS];
    for (int i = 0; i < sp->nd; i++)
        dims[i] = sp->d[i].dim;
    rng_t r;
    rng_seed(&r, rng_derive(rng_derive(js->seed, JOBSPEC_STREAM_PARAMS), t));
    do {
        if (*budget == 0)
            return err_set(msg, msglen, ERR_TOOBIG,
                           "space: no new point found for trial %zu after many draws; use "
                           "strategy grid",
                           t);
        (*budget)--;
        if (!sobol) {
            draw_random(sp, &r, x);
        } else if (sp->nd > 0) {
            int rc = suggest_sobol(dims, sp->nd, js->seed, (*next_index)++, x, msg, msglen);
            if (rc) return rc;
        }
    } while (!pointset_add(ps, t));
    return 0;
}

static int expand(jobspec *js, const json_t *space, char *msg, size_t msglen)
{
    const jobspec_space *sp = &js->space;
    bool grid = !strcmp(js->strategy, "grid");
    size_t n = grid ? js->trials_total : (size_t)js->startup_trials;
    js->trials = calloc(n ? n : 1, sizeof *js->trials);
    if (!js->trials) return ERR_NOMEM;
    js->n_trials = n;
    pointset ps = {0};
    int rc = grid ? 0 : pointset_init(&ps, n, sp->nd);
    uint64_t next_index = 0, budget = (uint64_t)n * DRAWS_PER_TRIAL + DRAWS_SLACK;
    for (size_t t = 0; rc == 0 && t < n; t++) {
        jobspec_trial *tr = &js->trials[t];
        tr->number = (int)t;
        tr->seed = rng_derive(js->seed, t) & JOBSPEC_SEED_MASK;
        if (grid) {
            rc = grid_point(sp, space, t, &tr->params, msg, msglen);
        } else {
            rc = new_point(js, &ps, t, &next_index, &budget, msg, msglen);
            if (rc == 0)
                rc = fill_point(sp, ps.pts + t * (size_t)sp->nd, tr->number, &tr->params, msg,
                                msglen);
        }
    }
    pointset_free(&ps);
    return rc;
}

/* "trials", "startup_trials" and "warm_start" of JOB for strategy STRAT
 * (index into the strategies list: grid, random, sobol, tpe) into JS, and
 * the number of trials checked against the size of the space. */
static int parse_counts(jobspec *js, const json_t *job, const json_t *space, int strat, char *msg,
                        size_t msglen)
{
    int64_t n = 0, k = 0;
    int rc = jx_get_int(job, "", "trials", false, 1, JOBSPEC_MAX_TRIALS, &n, msg, msglen);
    if (rc < 0) return rc;
    if (strat == 1 && rc != 0)
        return err_set(msg, msglen, ERR_NOTFOUND,
                       "trials: strategy random needs \"trials\": the number of samples");
    if (strat >= 2 && rc != 0)
        return err_set(msg, msglen, ERR_NOTFOUND,
                       "trials: strategy %s needs \"trials\": the number of trials to run",
                       js->strategy);
    if (strat == 0 && rc == 0)
        return err_set(msg, msglen, ERR_INVALID,
                       "trials: only for strategy random, sobol or tpe (a grid runs every point)");
    rc = jx_get_int(job, "", "startup_trials", false, 1, JOBSPEC_MAX_TRIALS, &k, msg, msglen);
    if (rc < 0) return rc;
    if (rc == 0 && strat != 3)
        return err_set(msg, msglen, ERR_INVALID, "startup_trials: only for strategy tpe");
    if (rc == 0 && k > n)
        return err_set(msg, msglen, ERR_RANGE,
                       "startup_trials: %lld is more than the %lld trials of the job", (long long)k,
                       (long long)n);
    if (rc != 0) k = n < JOBSPEC_DEFAULT_STARTUP ? n : JOBSPEC_DEFAULT_STARTUP;
    if (strat == 0) {
        size_t g = jobspec_grid_size(space);
        if (g > JOBSPEC_MAX_GRID) {
            if (g == SIZE_MAX)
                return err_set(
                    msg, msglen, ERR_TOOBIG,
                    "space: grid has more points than the limit of %d; use strategy random",
                    JOBSPEC_MAX_GRID);
            return err_set(
                msg, msglen, ERR_TOOBIG,
                "space: grid has %zu points, more than the limit of %d; use strategy random", g,
                JOBSPEC_MAX_GRID);
        }
        n = k = (int64_t)g;
    } else {
        double m = space_size(&js->space);
        if (m < (double)n)
            return err_set(msg, msglen, ERR_RANGE,
                           "trials: the space has %.0f distinct point%s, fewer than the %lld "
                           "trials asked (no trial repeats another's parameters); use strategy "
                           "grid to run every point, or ask for at most %.0f",
                           m, m == 1 ? "" : "s", (long long)n, m);
    }
    js->trials_total = (size_t)n;
    js->startup_trials = strat == 3 ? (int)k : (int)n;
    return 0;
}

/* "warm_start" of JOB into JS (strategy tpe only): {"jobs": [ID, ...]}, ids
 * >= 1, none twice. */
static int parse_warm(jobspec *js, const json_t *job, bool tpe, char *msg, size_t msglen)
{
    static const char *const keys[] = {"jobs", NULL};
    json_t *w = NULL, *list = NULL;
    int rc = jx_get_object(job, "", "warm_start", false, &w, msg, msglen);
    if (rc != 0) return rc < 0 ? rc : 0;
    if (!tpe) return err_set(msg, msglen, ERR_INVALID, "warm_start: only for strategy tpe");
    if ((rc = jx_check_keys(w, "warm_start", keys, msg, msglen))) return rc;
    if ((rc = jx_get_array(w, "warm_start", "jobs", true, &list, msg, msglen))) return rc;
    if (json_array_size(list) == 0 || json_array_size(list) > JOBSPEC_MAX_WARM)
        return err_set(msg, msglen, ERR_RANGE, "warm_start.jobs: expected 1 to %d job ids, got %zu",
                       JOBSPEC_MAX_WARM, json_array_size(list));
    for (size_t i = 0; i < json_array_size(list); i++) {
        char p[64];
        jx_path_index(p, sizeof p, "warm_start.jobs", i);
        int64_t id;
        if ((rc = jx_as_int(json_array_get(list, i), p, 1, INT64_MAX, &id, msg, msglen))) return rc;
        for (size_t k = 0; k < js->n_warm; k++)
            if (js->warm_jobs[k] == id)
                return err_set(msg, msglen, ERR_INVALID, "%s: job %lld is listed twice", p,
                               (long long)id);
        js->warm_jobs[js->n_warm++] = id;
    }
    return 0;
}

/* Every freeze value JOB can take (fixed.freeze, each of space.freeze) must
 * be a freeze point of JS's model family (arch.h's one table, which the
 * worker's engine reads too). Skipped for a name of no known family (the
 * worker checks what it builds). */
static int check_freeze_arch(const char *arch, const json_t *job, char *msg, size_t msglen)
{
    const arch_info *a = arch_find(arch);
    if (!a) return 0;
    const json_t *fixed = json_object_get(job, "fixed"), *space = json_object_get(job, "space");
    const json_t *fv = json_object_get(fixed, "freeze"), *sv = json_object_get(space, "freeze");
    size_t n = json_is_array(sv) ? json_array_size(sv) : 0;
    for (size_t i = 0; i <= n; i++) {
        const json_t *v = i < n ? json_array_get(sv, i) : fv;
        char path[64];
        if (i < n)
            jx_path_index(path, sizeof path, "space.freeze", i);
        else
            snprintf(path, sizeof path, "fixed.freeze");
        if (!json_is_string(v) || arch_freeze_level(a->family, json_string_value(v)) >= 0) continue;
        char list[256];
        return err_set(msg, msglen, ERR_RANGE,
                       "%s: \"%s\" is not a freeze point of %s (expected one of %s)", path,
                       json_string_value(v), arch,
                       arch_freeze_list_string(a->family, list, sizeof list));
    }
    return 0;
}

/* check_freeze_arch for JS's architecture, or each one it searches. */
static int check_freeze_family(const jobspec *js, const json_t *job, char *msg, size_t msglen)
{
    if (js->n_archs == 0) return check_freeze_arch(js->arch, job, msg, msglen);
    for (size_t i = 0; i < js->n_archs; i++) {
        int rc = check_freeze_arch(js->archs[i].arch, job, msg, msglen);
        if (rc) return rc;
    }
    return 0;
}

/* space.arch of JOB (already checked by parse_space: a list of known names)
 * into JS->archs, with model.weights (an object: one file or null per listed
 * architecture, no other key; null: all from scratch); model.arch and
 * fixed.arch are refused with it, an object model.weights without it. */
static int parse_arch_search(jobspec *js, const json_t *job, unsigned flags, char *msg,
                             size_t msglen)
{
    const json_t *model = json_object_get(job, "model");
    const json_t *w = json_object_get(model, "weights");
    const json_t *sa = json_object_get(json_object_get(job, "space"), "arch");
    if (json_object_get(json_object_get(job, "fixed"), "arch"))
        return err_set(msg, msglen, ERR_INVALID,
                       "fixed.arch: the architecture is model.arch (or space.arch, to search it)");
    if (!sa) {
        if (json_is_object(w))
            return err_set(msg, msglen, ERR_TYPE,
                           "model.weights: an object (one file per architecture) needs space.arch; "
                           "expected a path or null");
        return 0;
    }
    if (js->arch_given)
        return err_set(msg, msglen, ERR_INVALID,
                       "model.arch: not with space.arch (which lists the architectures searched)");
    if (json_is_string(w))
        return err_set(msg, msglen, ERR_TYPE,
                       "model.weights: with space.arch, expected an object naming each listed "
                       "architecture's weights file (or null for all from scratch)");
    for (size_t i = 0; i < json_array_size(sa); i++) {
        const char *name = json_string_value(json_array_get(sa, i));
        if (!name) return err_set(msg, msglen, ERR_TYPE, "space.arch[%zu]: expected a name", i);
        bool seen = false;
        for (size_t k = 0; k < js->n_archs; k++)
            seen |= !strcmp(js->archs[k].arch, name);
        if (seen) continue;
        if (js->n_archs == JOBSPEC_MAX_ARCHS)
            return err_set(msg, msglen, ERR_TOOBIG, "space.arch: more than %d architectures",
                           JOBSPEC_MAX_ARCHS);
        const json_t *f = json_is_object(w) ? json_object_get(w, name) : NULL;
        char key[128];
        snprintf(key, sizeof key, "model.weights.%s", name);
        if (json_is_object(w) && !f)
            return err_set(msg, msglen, ERR_INVALID,
                           "space.arch[%zu]: \"%s\" has no entry in model.weights (its file, or "
                           "null to train it from scratch)",
                           i, name);
        if (f && !json_is_null(f) && !(json_is_string(f) && *json_string_value(f))) {
            char desc[64];
            jx_describe(f, desc, sizeof desc);
            return err_set(msg, msglen, ERR_TYPE, "%s: expected a path or null, got %s", key, desc);
        }
        jobspec_arch *a = &js->archs[js->n_archs++];
        a->arch = strdup(name);
        a->weights = json_is_string(f) ? strdup(json_string_value(f)) : NULL;
        if (!a->arch || (json_is_string(f) && !a->weights)) return ERR_NOMEM;
        int rc;
        if (a->weights && (flags & JOBSPEC_CHECK_PATHS) &&
            (rc = check_path(key, a->weights, false, msg, msglen)))
            return rc;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)w, k, v)
    {
        bool listed = false;
        for (size_t i = 0; i < js->n_archs; i++)
            listed |= !strcmp(js->archs[i].arch, k);
        if (!listed)
            return err_set(msg, msglen, ERR_INVALID, "model.weights.%s: %s is not in space.arch", k,
                           k);
    }
    /* arch describes the first, for what shows one model (sweepctl submit). */
    char *first = strdup(js->archs[0].arch);
    if (!first) return ERR_NOMEM;
    free(js->arch);
    js->arch = first;
    js->arch_from = "space";
    return 0;
}

int jobspec_parse(jobspec *js, const json_t *job, unsigned flags, uint64_t default_seed, char *msg,
                  size_t msglen)
{
    static const char *const keys[] = {"name",         "data",           "model",       "strategy",
                                       "space",        "fixed",          "trials",      "objective",
                                       "max_parallel", "trial_timeout",  "max_retries", "seed",
                                       "pruner",       "startup_trials", "warm_start",  NULL};
    static const char *const strategies[] = {"grid", "random", "sobol", "tpe", NULL};
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
    trial_params base;
    params_defaults(&base);
    if (fixed && (rc = set_fixed(&base, fixed, space, msg, msglen))) return rc;
    json_t *empty = NULL;
    if (!space) space = empty = json_object();
    if (!space) return ERR_NOMEM;
    rc = parse_space(&js->space, space, &base, strat == 0, msg, msglen);
    if (rc == 0) rc = parse_arch_search(js, job, flags, msg, msglen);
    if (rc == 0) rc = parse_counts(js, job, space, strat, msg, msglen);
    if (rc == 0) rc = parse_warm(js, job, strat == 3, msg, msglen);
    if (rc == 0 && (!js->weights || js->arch_given || js->n_archs))
        rc = check_freeze_family(js, job, msg, msglen);
    /* Without JOBSPEC_EXPAND (re-reading a stored, already checked job) the
     * space is not expanded again. */
    if (rc == 0 && (flags & JOBSPEC_EXPAND)) rc = expand(js, space, msg, msglen);
    json_decref(empty);
    return rc;
}

/* The trial spec's "model" for architecture ARCH with WEIGHTS (NULL: from
 * scratch); ARCH NULL leaves it out (the weights' decides). A new object. */
static json_t *model_object(const jobspec *js, const char *arch, const char *weights)
{
    json_t *model = json_object();
    if (!model) return NULL;
    int bad = 0;
    if (arch) bad |= json_object_set_new(model, "arch", json_string(arch));
    bad |= json_object_set_new(model, "input_size", json_integer(js->input_size));
    bad |= json_object_set_new(model, "weights", weights ? json_string(weights) : json_null());
    if (!weights) bad |= json_object_set_new(model, "width", json_integer(js->width));
    if (bad) {
        json_decref(model);
        return NULL;
    }
    return model;
}

static json_t *jobspec_trial_template_one(const jobspec *js);

json_t *jobspec_trial_template(const jobspec *js)
{
    if (js->n_archs > 0) {
        json_t *t = jobspec_trial_template_one(js);
        json_t *models = t ? json_object() : NULL;
        if (!models) goto fail_archs;
        if (json_object_set_new(t, "models", models)) goto fail_archs;
        for (size_t i = 0; i < js->n_archs; i++) {
            json_t *m = model_object(js, js->archs[i].arch, js->archs[i].weights);
            if (!m || json_object_set_new(models, js->archs[i].arch, m)) goto fail_archs;
            if (i == 0 && json_object_set(t, "model", m)) goto fail_archs;
        }
        return t;
    fail_archs:
        json_decref(t);
        return NULL;
    }
    return jobspec_trial_template_one(js);
}

/* The template of a job with one architecture. */
static json_t *jobspec_trial_template_one(const jobspec *js)
{
    json_t *data = json_pack("{s:s, s:f}", "train", js->train, "val_fraction", js->val_fraction);
    /* Without model.arch the weights' structure decides (jobspec_check_files
     * wrote a known one into the job), so the worker checks nothing. */
    json_t *model = model_object(js, js->arch_given || !js->weights ? js->arch : NULL, js->weights);
    json_t *obj = json_pack("{s:s, s:s}", "metric", js->metric, "goal",
                            js->maximize ? "maximize" : "minimize");
    if (!data || !model || !obj) goto fail;
    json_object_set_new(data, "val", js->val ? json_string(js->val) : json_null());
    json_object_set_new(data, "test", js->test ? json_string(js->test) : json_null());
    json_t *t = json_pack("{s:o, s:o, s:o}", "data", data, "model", model, "objective", obj);
    return t;
fail:
    json_decref(data);
    json_decref(model);
    json_decref(obj);
    return NULL;
}

/* A path of a job: data.train, data.val, data.test, model.weights, and
 * model.weights.ARCH of each searched architecture. */
typedef struct {
    char key[96];     // key path for messages
    json_t *holder;   // the object holding it in JOB, or NULL
    const char *name; // its name there
    char **slot;      // the path in JS
    bool data;        // a data folder (class folders checked)
} job_path;

/* JS's paths into OUT (room for 4 + JOBSPEC_MAX_ARCHS); returns how many. */
static size_t job_paths(jobspec *js, json_t *job, job_path *out)
{
    json_t *data = job ? json_object_get(job, "data") : NULL;
    json_t *model = job ? json_object_get(job, "model") : NULL;
    json_t *w = json_object_get(model, "weights");
    size_t n = 0;
    out[n++] = (job_path){"data.train", data, "train", &js->train, true};
    out[n++] = (job_path){"data.val", data, "val", &js->val, true};
    out[n++] = (job_path){"data.test", data, "test", &js->test, true};
    out[n++] = (job_path){"model.weights", model, "weights", &js->weights, false};
    for (size_t i = 0; i < js->n_archs; i++) {
        job_path *p = &out[n++];
        *p = (job_path){"", json_is_object(w) ? w : NULL, js->archs[i].arch, &js->archs[i].weights,
                        false};
        snprintf(p->key, sizeof p->key, "model.weights.%s", js->archs[i].arch);
    }
    for (size_t i = 0; i < n; i++)
        if (!json_is_object(out[i].holder)) out[i].holder = NULL;
    return n;
}

int jobspec_check_roots(jobspec *js, json_t *job, char *const *roots, int n_roots,
                        const char *roots_text, char *msg, size_t msglen)
{
    if (n_roots <= 0) return 0;
    job_path paths[4 + JOBSPEC_MAX_ARCHS];
    size_t np = job_paths(js, job, paths);
    for (size_t i = 0; i < np; i++) {
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
        if (paths[i].data)
            rc = check_classes(paths[i].key, real, i == 0, roots, n_roots, msg, msglen);
        if (rc) return rc;
        char *dup = strdup(real);
        if (!dup) return ERR_NOMEM;
        free(*paths[i].slot);
        *paths[i].slot = dup;
        json_t *o = paths[i].holder;
        if (o && json_object_set_new(o, paths[i].name, json_string(real)) != 0) return ERR_NOMEM;
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
    job_path paths[4 + JOBSPEC_MAX_ARCHS];
    size_t np = job_paths(js, job, paths);
    char cwd[PATH_MAX];
    bool have_cwd = false;
    for (size_t i = 0; i < np; i++) {
        const char *p = *paths[i].slot;
        if (!p) continue;
        char *joined = NULL;
        if (p[0] != '/') {
            if (!have_cwd && !getcwd(cwd, sizeof cwd))
                return err_set_errno(msg, msglen, ERR_IO, errno, "%s: cannot resolve %s",
                                     paths[i].key, p);
            have_cwd = true;
            if (asprintf(&joined, "%s/%s", cwd, p) < 0) return ERR_NOMEM;
        }
        /* Stored normalised: no "/tmp/jobs/../data". */
        char *abs = normal_path(joined ? joined : p);
        int e = errno;
        free(joined);
        if (!abs)
            return err_set_errno(msg, msglen, e == ENOMEM ? ERR_NOMEM : ERR_IO, e,
                                 "%s: cannot resolve %s", paths[i].key, p);
        if (!strcmp(abs, p)) {
            free(abs);
            continue;
        }
        json_t *o = paths[i].holder;
        if (o && json_object_set_new(o, paths[i].name, json_string(abs)) != 0) {
            free(abs);
            return ERR_NOMEM;
        }
        free(*paths[i].slot);
        *paths[i].slot = abs;
    }
    return 0;
}

/* ---- the files' contents, at submission (issue 20) ----------------------- */

/* Sets model.KEY of JOB (when not NULL) to V (new reference, consumed). */
static int set_model_key(json_t *job, const char *key, json_t *v)
{
    json_t *model = job ? json_object_get(job, "model") : NULL;
    if (!json_is_object(model) || !v) {
        json_decref(v);
        return v ? 0 : ERR_NOMEM;
    }
    return json_object_set_new(model, key, v) ? ERR_NOMEM : 0;
}

/* The architecture model.weights holds, by its tensor names (arch_detect,
 * the engine's own rule), into NAME (N bytes); ERR_INVALID when the file is
 * no ResNet of torchvision/timm names the worker could load. */
/* A VGG's name from its convolutions (features.N.weight of 4 dimensions:
 * 8, 10, 13 or 16 for vgg11 .. vgg19) and batch norms ("_bn" when
 * features.1 is one), as the worker's builder reads the file; "vgg-N" for
 * another count. */
static void vgg_name(const st_header *h, char *name, size_t n)
{
    int convs = 0;
    for (int i = 0; i < 256; i++) {
        char t[48];
        snprintf(t, sizeof t, "features.%d.weight", i);
        const st_tensor *w = st_header_find(h, t);
        if (w && w->ndim == 4) convs++;
    }
    static const struct {
        int convs;        // convolutions
        const char *name; // torchvision's name
    } known[] = {{8, "vgg11"}, {10, "vgg13"}, {13, "vgg16"}, {16, "vgg19"}};
    const char *base = NULL;
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (known[i].convs == convs) base = known[i].name;
    bool bn = st_header_find(h, "features.1.running_mean") != NULL;
    if (base)
        snprintf(name, n, "%s%s", base, bn ? "_bn" : "");
    else
        snprintf(name, n, "vgg-%d%s", convs, bn ? "_bn" : "");
}

static int weights_arch(const st_header *h, char *name, size_t n, char *msg, size_t msglen)
{
    const char *path = st_header_path(h);
    /* The other families by their marker tensors (arch.h); the worker checks
     * their structure when it builds the model. */
    if (st_header_find(h, arch_family_marker(ARCH_INCEPTION))) {
        snprintf(name, n, "inception_v3");
        return 0;
    }
    if (st_header_find(h, arch_family_marker(ARCH_VGG))) {
        vgg_name(h, name, n);
        return 0;
    }
    char list[256];
    arch_list_string(list, sizeof list);
    const st_tensor *c1 = st_header_find(h, "conv1.weight");
    const st_tensor *fc = st_header_find(h, "fc.weight");
    arch_block block;
    int blocks[4];
    arch_detect(h, &block, blocks);
    const char *missing = !c1 ? "conv1.weight" : !fc ? "fc.weight" : NULL;
    char want[32];
    for (int s = 0; !missing && s < 4; s++)
        if (!blocks[s]) {
            snprintf(want, sizeof want, "layer%d.0.conv1.weight", s + 1);
            missing = want;
        }
    if (missing)
        return err_set(msg, msglen, ERR_INVALID,
                       "model.weights: %s has no tensor \"%s\": not a ResNet with torchvision/timm "
                       "names (the architectures known: %s)",
                       path, missing, list);
    if (c1->ndim != 4 || c1->shape[1] != 3)
        return err_set(
            msg, msglen, ERR_INVALID,
            "model.weights: %s: tensor \"conv1.weight\" is not a convolution of 3-channel "
            "images (%d dimensions%s; a ResNet's is (OC, 3, K, K))",
            path, c1->ndim, c1->ndim == 4 ? ", other than 3 input channels" : "");
    if (fc->ndim != 2)
        return err_set(msg, msglen, ERR_INVALID,
                       "model.weights: %s: tensor \"fc.weight\" has %d dimensions; a ResNet's has "
                       "2 (classes, features)",
                       path, fc->ndim);
    arch_name_of(block, blocks, name, n);
    return 0;
}

/* model.weights of JS, or with ENTRY (a searched architecture) that
 * entry's file: its header (not the tensors) read and checked as the worker
 * will read it. The file must hold ENTRY's architecture, or model.arch when
 * given; without either the architecture is taken from it (written into JOB
 * when it is a known name). model.input_size, when not given, is the file's
 * when it has one (written into JOB). A PyTorch file gets the message naming
 * etc/export-weights.py. */
static int check_weights(jobspec *js, json_t *job, const jobspec_arch *entry, char *msg,
                         size_t msglen)
{
    st_header *h = NULL;
    char tmp[768], name[64], key[96] = "model.weights";
    const char *path = entry ? entry->weights : js->weights;
    if (entry) snprintf(key, sizeof key, "model.weights.%s", entry->arch);
    int rc = st_header_read(&h, path, tmp, sizeof tmp);
    if (rc) return err_set(msg, msglen, rc == ERR_NOMEM ? rc : ERR_INVALID, "%s: %s", key, tmp);
    weights_meta wm;
    if ((rc = weights_arch(h, name, sizeof name, msg, msglen))) goto done;
    if (entry && strcmp(entry->arch, name)) {
        rc = err_set(msg, msglen, ERR_INVALID,
                     "%s: %s holds a %s (read from its tensor names), not a %s", key, path, name,
                     entry->arch);
        goto done;
    }
    if ((rc = weights_meta_read(h, &wm, tmp, sizeof tmp))) {
        rc = err_set(msg, msglen, ERR_INVALID, "%s: %s", key, tmp);
        goto done;
    }
    if (!entry && js->arch_given && strcmp(js->arch, name)) {
        rc = err_set(msg, msglen, ERR_INVALID,
                     "model.arch is %s but model.weights %s holds a %s (read from its tensor "
                     "names); give \"arch\": \"%s\" or leave model.arch out",
                     js->arch, js->weights, name, name);
        goto done;
    }
    if (!entry && !js->arch_given) {
        char *a = strdup(name);
        if (!a) {
            rc = ERR_NOMEM;
            goto done;
        }
        free(js->arch);
        js->arch = a;
        js->arch_from = "weights";
        if (arch_known(name)) {
            js->arch_given = true; // stored, so a restart sends it too
            if ((rc = set_model_key(job, "arch", json_string(name)))) goto done;
        }
    }
    if (strcmp(js->input_size_from, "job") && wm.input_size) {
        js->input_size = wm.input_size;
        js->input_size_from = "weights";
        rc = set_model_key(job, "input_size", json_integer(wm.input_size));
    }
done:
    st_header_free(h);
    return rc;
}

/* Appends to BUF (N bytes) the names of A (NA) that are not in B (NB), both
 * sorted, escaped and joined by ", "; returns how many there were. */
static size_t names_not_in(char *const *a, size_t na, char *const *b, size_t nb, char *buf,
                           size_t n)
{
    size_t count = 0, j = 0, used = strlen(buf);
    for (size_t i = 0; i < na; i++) {
        while (j < nb && strcmp(b[j], a[i]) < 0)
            j++;
        if (j < nb && !strcmp(b[j], a[i])) continue;
        char esc[128];
        utf8_escape(esc, sizeof esc, a[i]);
        int w = snprintf(buf + used, n - used, "%s%s", count ? ", " : "", esc);
        if (w > 0 && (size_t)w < n - used) used += (size_t)w;
        count++;
    }
    return count;
}

/* data.val and data.test of JS must hold no class folder that data.train
 * lacks (the worker maps their classes to the training ones by name: one it
 * does not know fails the trial, or the test evaluation). Fewer classes are
 * allowed (their figures have support 0). Listed by the rule of ROOTS. */
static int check_class_lists(const jobspec *js, char *const *roots, int n_roots, char *msg,
                             size_t msglen)
{
    const char *keys[2] = {"data.val", "data.test"}, *dirs[2] = {js->val, js->test};
    char **train = NULL;
    size_t ntrain = 0;
    int rc = 0;
    if (!js->val && !js->test) return 0;
    if ((rc = list_classes("data.train", js->train, roots, n_roots, &train, &ntrain, msg, msglen)))
        goto done;
    for (int k = 0; k < 2 && !rc; k++) {
        if (!dirs[k]) continue;
        char **other;
        size_t nother;
        if ((rc = list_classes(keys[k], dirs[k], roots, n_roots, &other, &nother, msg, msglen))) {
            free_names(other, nother);
            break;
        }
        char extra[512] = "", lacks[512] = "";
        size_t ne = names_not_in(other, nother, train, ntrain, extra, sizeof extra);
        size_t nl = names_not_in(train, ntrain, other, nother, lacks, sizeof lacks);
        if (ne)
            rc =
                err_set(msg, msglen, ERR_INVALID,
                        "%s: %s has %zu class folder%s that data.train (%s) does not have: %s%s%s; "
                        "the class names must be data.train's",
                        keys[k], dirs[k], ne, ne == 1 ? "" : "s", js->train, extra,
                        nl ? "; it lacks data.train's " : "", lacks);
        free_names(other, nother);
    }
done:
    free_names(train, ntrain);
    return rc;
}

/* check_weights for each searched architecture's file: each must hold its
 * architecture; without model.input_size their input sizes, where they
 * record one, must agree (that one is then every trial's, stored in JOB). */
static int check_arch_weights(jobspec *js, json_t *job, char *msg, size_t msglen)
{
    const char *from_arch = NULL; // the first architecture whose file set the input size
    int rc = 0;
    for (size_t i = 0; i < js->n_archs && !rc; i++) {
        if (!js->archs[i].weights) continue;
        int size = js->input_size;
        const char *from = js->input_size_from;
        rc = check_weights(js, job, &js->archs[i], msg, msglen);
        if (rc == 0 && !strcmp(from, "weights") && js->input_size != size)
            rc = err_set(msg, msglen, ERR_INVALID,
                         "model.input_size: not given, and the weights of %s are for %d px but "
                         "those of %s for %d px; give model.input_size",
                         from_arch, size, js->archs[i].arch, js->input_size);
        if (rc == 0 && !strcmp(js->input_size_from, "weights") && strcmp(from, "weights"))
            from_arch = js->archs[i].arch;
    }
    return rc;
}

int jobspec_check_files(jobspec *js, json_t *job, char *const *roots, int n_roots, char *msg,
                        size_t msglen)
{
    int rc = js->n_archs   ? check_arch_weights(js, job, msg, msglen)
             : js->weights ? check_weights(js, job, NULL, msg, msglen)
                           : 0;
    if (!rc) rc = check_freeze_family(js, job, msg, msglen); // the file may have set the arch
    if (!rc) rc = check_class_lists(js, roots, n_roots, msg, msglen);
    return rc;
}
