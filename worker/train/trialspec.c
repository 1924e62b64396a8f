/* trialspec — parses and validates the trial spec that `sweep-worker run`
 * receives (README.md "Contract"), fills defaults, and hashes the normalised
 * spec so a restarted worker can tell whether the checkpoint in out_dir was
 * made by the same spec. Validation goes through jsonx (typed getters naming
 * the path) and params (the same rules the daemon applies to jobs). */
#include "trialspec.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch.h"
#include "datapath.h"
#include "errors.h"
#include "jsonx.h"

static const char *const metric_names[] = {"val_accuracy",   "val_loss", "val_precision",
                                           "val_recall",     "val_f1",   "train_loss",
                                           "train_accuracy", NULL};

const char *trialspec_metric_name(objective_metric m)
{
    if ((int)m < 0 || m > OBJ_TRAIN_ACCURACY) return "?";
    return metric_names[m];
}

bool trialspec_better(const trial_spec *s, double a, double b)
{
    if (isnan(a)) return false;
    if (isnan(b)) return true;
    return s->maximize ? a > b : a < b;
}

void trialspec_free(trial_spec *s)
{
    if (!s) return;
    free(s->train_dir);
    free(s->val_dir);
    free(s->test_dir);
    free(s->arch);
    free(s->weights);
    free(s->out_dir);
    free(s->cache_dir);
    datapath_roots_free(s->data_roots, s->n_data_roots);
    memset(s, 0, sizeof *s);
}

/* Copies STR into *DST (NULL stays NULL). 0 or ERR_NOMEM. */
static int dup_into(char **dst, const char *str, char *msg, size_t msglen)
{
    if (!str) {
        *dst = NULL;
        return 0;
    }
    *dst = strdup(str);
    if (!*dst)
        return err_set(msg, msglen, ERR_NOMEM, "out of memory copying %zu bytes of the trial spec",
                       strlen(str) + 1);
    return 0;
}

/* A string member that must be a non-empty path when present. */
static int get_path(const json_t *obj, const char *path, const char *key, bool required,
                    bool allow_null, char **dst, char *msg, size_t msglen)
{
    const char *v = NULL;
    int rc = jx_get_string(obj, path, key, required, allow_null, &v, msg, msglen);
    if (rc < 0) return rc;
    if (rc == 0 && v[0] == '\0') {
        char full[256];
        jx_path_key(full, sizeof full, path, key);
        return err_set(msg, msglen, ERR_RANGE, "%s: expected a path, got an empty string", full);
    }
    return dup_into(dst, rc == 0 ? v : NULL, msg, msglen);
}

static int parse_data(trial_spec *s, const json_t *data, char *msg, size_t msglen)
{
    static const char *const keys[] = {"train", "val", "val_fraction", "test", NULL};
    int rc = jx_check_keys(data, "data", keys, msg, msglen);
    if (rc < 0) return rc;
    if ((rc = get_path(data, "data", "train", true, false, &s->train_dir, msg, msglen)) < 0)
        return rc;
    if ((rc = get_path(data, "data", "val", false, true, &s->val_dir, msg, msglen)) < 0) return rc;
    if ((rc = get_path(data, "data", "test", false, true, &s->test_dir, msg, msglen)) < 0)
        return rc;
    double vf = 0.1;
    const json_t *vfj = json_object_get(data, "val_fraction");
    if (vfj && !json_is_null(vfj)) {
        if ((rc = jx_get_number(data, "data", "val_fraction", false, &vf, msg, msglen)) < 0)
            return rc;
        if (!(vf > 0.0 && vf < 1.0) && !(s->val_dir && vf == 0.0))
            return err_set(msg, msglen, ERR_RANGE,
                           "data.val_fraction: expected a number in (0, 1), got %g", vf);
    }
    s->val_fraction = vf;
    return 0;
}

/* data_roots: absent, null or an array of absolute directories, each
 * resolved (realpath) into S. */
static int parse_roots(trial_spec *s, const json_t *root, char *msg, size_t msglen)
{
    const json_t *a = json_object_get(root, "data_roots");
    if (!a || json_is_null(a)) return 0;
    if (!json_is_array(a)) {
        char got[64];
        jx_describe(a, got, sizeof got);
        return err_set(msg, msglen, ERR_TYPE, "data_roots: expected an array of paths, got %s",
                       got);
    }
    for (size_t i = 0; i < json_array_size(a); i++) {
        char at[32];
        const char *dir;
        jx_path_index(at, sizeof at, "data_roots", i);
        int rc = jx_as_string(json_array_get(a, i), at, &dir, msg, msglen);
        if (rc < 0) return rc;
        if (dir[0] != '/')
            return err_set(msg, msglen, ERR_RANGE, "%s: expected an absolute path, got \"%s\"", at,
                           dir);
        if ((rc = datapath_roots_add(&s->data_roots, &s->n_data_roots, at, dir, msg, msglen)) < 0)
            return rc;
    }
    return 0;
}

static int parse_model(trial_spec *s, const json_t *model, char *msg, size_t msglen)
{
    static const char *const keys[] = {"arch", "weights", "input_size", "width", NULL};
    int rc = jx_check_keys(model, "model", keys, msg, msglen);
    if (rc < 0) return rc;
    const json_t *archj = json_object_get(model, "arch");
    if (archj) {
        rc = jx_as_enum(archj, "model.arch", arch_names(), msg, msglen);
        if (rc < 0) return rc;
        if ((rc = dup_into(&s->arch, arch_names()[rc], msg, msglen)) < 0) return rc;
        s->arch_given = true;
    } else if ((rc = dup_into(&s->arch, ARCH_DEFAULT, msg, msglen)) < 0) {
        return rc;
    }
    if ((rc = get_path(model, "model", "weights", false, true, &s->weights, msg, msglen)) < 0)
        return rc;
    int64_t v = 224;
    if ((rc = jx_get_int(model, "model", "input_size", false, 8, 4096, &v, msg, msglen)) < 0)
        return rc;
    s->input_size = (int)v;
    s->input_size_given = rc == 0; // else the trainer takes the weights' (weights_meta.h)
    v = 64;
    if ((rc = jx_get_int(model, "model", "width", false, 1, 4096, &v, msg, msglen)) < 0) return rc;
    s->width = (int)v;
    return 0;
}

static int parse_objective(trial_spec *s, const json_t *obj, char *msg, size_t msglen)
{
    static const char *const keys[] = {"metric", "goal", NULL};
    static const char *const goals[] = {"maximize", "minimize", NULL};
    int rc = jx_check_keys(obj, "objective", keys, msg, msglen);
    if (rc < 0) return rc;
    const json_t *m = json_object_get(obj, "metric");
    if (m) {
        rc = jx_as_enum(m, "objective.metric", metric_names, msg, msglen);
        if (rc < 0) return rc;
        s->metric = (objective_metric)rc;
    }
    s->maximize = !(s->metric == OBJ_VAL_LOSS || s->metric == OBJ_TRAIN_LOSS);
    const json_t *g = json_object_get(obj, "goal");
    if (g) {
        rc = jx_as_enum(g, "objective.goal", goals, msg, msglen);
        if (rc < 0) return rc;
        s->maximize = rc == 0;
    }
    return 0;
}

int trialspec_from_json(trial_spec *s, const json_t *root, char *msg, size_t msglen)
{
    static const char *const keys[] = {"trial",        "job",     "seed",       "data",
                                       "model",        "params",  "objective",  "out_dir",
                                       "cache_dir",    "threads", "data_roots", "feature_cache",
                                       "cache_max_mb", NULL};
    memset(s, 0, sizeof *s);
    params_defaults(&s->params);
    s->metric = OBJ_VAL_ACCURACY;
    s->maximize = true;
    s->threads = 1;
    s->val_fraction = 0.1;
    if (!json_is_object(root))
        return err_set(msg, msglen, ERR_TYPE, "trial spec: expected a JSON object");
    int rc = jx_check_keys(root, "", keys, msg, msglen);
    if (rc < 0) return rc;
    if ((rc = jx_get_int(root, "", "trial", false, 0, INT64_MAX, &s->trial, msg, msglen)) < 0)
        return rc;
    if ((rc = jx_get_int(root, "", "job", false, 0, INT64_MAX, &s->job, msg, msglen)) < 0)
        return rc;
    /* Seeds are unsigned 64-bit in the daemon; JSON integers are signed, so
     * accept 0..INT64_MAX (every seed the daemon derives fits). */
    int64_t seed = 0;
    if ((rc = jx_get_int(root, "", "seed", false, 0, INT64_MAX, &seed, msg, msglen)) < 0) return rc;
    s->seed = (uint64_t)seed;

    json_t *sub = NULL;
    if ((rc = jx_get_object(root, "", "data", true, &sub, msg, msglen)) < 0) return rc;
    if ((rc = parse_data(s, sub, msg, msglen)) < 0) return rc;
    if ((rc = parse_roots(s, root, msg, msglen)) < 0) return rc;
    if ((rc = jx_get_object(root, "", "model", true, &sub, msg, msglen)) < 0) return rc;
    if ((rc = parse_model(s, sub, msg, msglen)) < 0) return rc;
    const json_t *pj = json_object_get(root, "params");
    if (pj && !json_is_null(pj)) {
        if (!json_is_object(pj))
            return err_set(msg, msglen, ERR_TYPE, "params: expected an object");
        if ((rc = params_from_json(&s->params, pj, "params", msg, msglen)) < 0) return rc;
    }
    /* A job that searches the architecture names it in params.arch too. */
    if (s->params.arch >= 0) {
        const char *want = arch_name_choices[s->params.arch];
        if (s->arch_given && strcmp(s->arch, want))
            return err_set(msg, msglen, ERR_INVALID,
                           "params.arch: \"%s\" is not model.arch \"%s\" (give one of them, or "
                           "the same in both)",
                           want, s->arch);
        free(s->arch);
        s->arch = NULL;
        if ((rc = dup_into(&s->arch, want, msg, msglen)) < 0) return rc;
        s->arch_given = true;
    }
    const json_t *oj = json_object_get(root, "objective");
    if (oj && !json_is_null(oj)) {
        if (!json_is_object(oj))
            return err_set(msg, msglen, ERR_TYPE, "objective: expected an object");
        if ((rc = parse_objective(s, oj, msg, msglen)) < 0) return rc;
    }
    if ((rc = get_path(root, "", "out_dir", true, false, &s->out_dir, msg, msglen)) < 0) return rc;
    if ((rc = get_path(root, "", "cache_dir", false, true, &s->cache_dir, msg, msglen)) < 0)
        return rc;
    int64_t th = 1;
    if ((rc = jx_get_int(root, "", "threads", false, 1, 1024, &th, msg, msglen)) < 0) return rc;
    s->threads = (int)th;
    s->feature_cache = true;
    if ((rc = jx_get_bool(root, "", "feature_cache", false, &s->feature_cache, msg, msglen)) < 0)
        return rc;
    int64_t mb = trialspec_default_cache_mb();
    if ((rc = jx_get_int(root, "", "cache_max_mb", false, 0, INT64_C(1) << 40, &mb, msg, msglen)) <
        0)
        return rc;
    s->cache_max_mb = mb;
    return 0;
}

int64_t trialspec_default_cache_mb(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || psz <= 0) return 1024;
    return (int64_t)pages * psz / 4 / 1048576;
}

int trialspec_load(trial_spec *s, const char *path, char *msg, size_t msglen)
{
    memset(s, 0, sizeof *s);
    FILE *f = fopen(path, "rb");
    if (!f) return err_set_errno(msg, msglen, ERR_IO, errno, "%s: cannot open trial spec", path);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len + 4096 > cap) {
            size_t ncap = cap ? cap * 2 : 8192;
            if (ncap > ((size_t)64 << 20)) {
                rc = err_set(msg, msglen, ERR_TOOBIG, "%s: trial spec larger than 64 MiB", path);
                goto out;
            }
            char *nb = realloc(buf, ncap);
            if (!nb) {
                rc = err_set(msg, msglen, ERR_NOMEM, "%s: out of memory (%zu bytes)", path, ncap);
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        rc = err_set_errno(msg, msglen, ERR_IO, errno, "%s: read error", path);
        goto out;
    }
    char jmsg[256] = "";
    json_t *root = jx_parse(buf ? buf : "", len, jmsg, sizeof jmsg);
    if (!root) {
        rc = err_set(msg, msglen, ERR_PARSE, "%s: %s", path, jmsg);
        goto out;
    }
    rc = trialspec_from_json(s, root, msg, msglen);
    json_decref(root);
out:
    free(buf);
    fclose(f);
    return rc;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *trialspec_to_json(const trial_spec *s)
{
    json_t *data = json_pack("{s:o, s:o, s:f, s:o}", "train", str_or_null(s->train_dir), "val",
                             str_or_null(s->val_dir), "val_fraction", s->val_fraction, "test",
                             str_or_null(s->test_dir));
    json_t *model =
        json_pack("{s:s, s:o, s:i, s:i}", "arch", s->arch ? s->arch : "", "weights",
                  str_or_null(s->weights), "input_size", s->input_size, "width", s->width);
    json_t *obj = json_pack("{s:s, s:s}", "metric", trialspec_metric_name(s->metric), "goal",
                            s->maximize ? "maximize" : "minimize");
    json_t *j = json_pack(
        "{s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:i}", "trial", (json_int_t)s->trial, "job",
        (json_int_t)s->job, "seed", (json_int_t)s->seed, "data", data, "model", model, "params",
        params_to_json(&s->params), "objective", obj, "out_dir", str_or_null(s->out_dir),
        "cache_dir", str_or_null(s->cache_dir), "threads", s->threads);
    if (j) {
        json_object_set_new(j, "feature_cache", json_boolean(s->feature_cache));
        json_object_set_new(j, "cache_max_mb", json_integer((json_int_t)s->cache_max_mb));
    }
    /* Only when given, so the hash of a spec without data_roots is as before. */
    if (j && s->n_data_roots > 0) {
        json_t *roots = json_array();
        for (int i = 0; i < s->n_data_roots; i++)
            json_array_append_new(roots, json_string(s->data_roots[i]));
        if (json_object_set_new(j, "data_roots", roots) != 0) {
            json_decref(j);
            return NULL;
        }
    }
    return j;
}

void trialspec_hash(const trial_spec *s, char *buf, size_t n)
{
    json_t *j = trialspec_to_json(s);
    uint64_t h = 1469598103934665603ull;
    if (j) {
        json_object_del(j, "trial");
        json_object_del(j, "job");
        json_object_del(j, "out_dir");
        json_object_del(j, "cache_dir");
        json_object_del(j, "threads");
        json_object_del(j, "feature_cache"); // the cache never changes a result
        json_object_del(j, "cache_max_mb");
        json_t *d = json_object_get(j, "data");
        if (d) json_object_del(d, "test");
        char *txt = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
        if (txt) {
            for (const unsigned char *p = (const unsigned char *)txt; *p; p++) {
                h ^= *p;
                h *= 1099511628211ull;
            }
            free(txt);
        }
        json_decref(j);
    }
    snprintf(buf, n, "%016llx", (unsigned long long)h);
}
