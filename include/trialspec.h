/* trialspec — the trial spec a worker runs (README.md "Contract"): parsing,
 * validation, defaults, and a stable hash used to decide whether a checkpoint
 * in out_dir belongs to this spec.
 *
 * Every key of the contract is understood; an unknown key anywhere, a value
 * of the wrong type or out of range, or a missing required key is refused
 * with a message naming the full path ("params.lr: expected a number, got
 * \"x\"", "model.widht: unknown key"). cmd_run turns that into exit 2.
 *
 * Defaults: trial 0, job 0, seed 0, data.val null, data.val_fraction 0.1,
 * data.test null, model.weights null (absent or null: train from scratch),
 * model.arch ARCH_DEFAULT ("resnet18"; the names accepted are arch.h's list),
 * model.input_size 224, model.width 64, params as params.h,
 * objective val_accuracy/maximize (the goal defaults to minimize when the
 * metric is a loss), cache_dir null, threads 1, feature_cache true,
 * cache_max_mb a quarter of physical memory, data_roots absent (no
 * confinement: links in the data folders are followed wherever they point).
 * data_roots, when given, is an array of absolute directories, each resolved
 * (realpath) here: the data folders must lie inside one and their links are
 * followed only into them (include/datapath.h). */
#ifndef SWEEP_TRIALSPEC_H
#define SWEEP_TRIALSPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "params.h"

/* Metrics an objective may name: the numeric fields of an epoch event. */
typedef enum {
    OBJ_VAL_ACCURACY = 0,
    OBJ_VAL_LOSS,
    OBJ_VAL_PRECISION,
    OBJ_VAL_RECALL,
    OBJ_VAL_F1,
    OBJ_TRAIN_LOSS,
    OBJ_TRAIN_ACCURACY,
} objective_metric;

typedef struct {
    int64_t trial;   // trial id (for events and logs), >= 0
    int64_t job;     // job id, >= 0
    uint64_t seed;   // root of every random stream of the trial
    char *train_dir; // data.train: ImageFolder root (owned)
    char *val_dir;   // data.val: ImageFolder root or NULL = split from train (owned)
    double
        val_fraction; // data.val_fraction in (0, 1): share of train held out when val_dir is NULL
    char *test_dir;   // data.test or NULL; not read by `run` (the daemon evaluates it) (owned)
    char *arch;       // model.arch, e.g. "resnet18" (owned)
    bool arch_given;  // model.arch was written (with weights it must match them)
    char *weights;    // model.weights, NULL = from scratch (owned)
    int input_size;   // model.input_size, pixels (square), 8..4096 (224 when not given)
    bool input_size_given;   // model.input_size was written (else the weights' metadata decides)
    int width;               // model.width: stem width when training from scratch, 1..4096
    trial_params params;     // params (defaults filled)
    objective_metric metric; // objective.metric
    bool maximize;           // objective.goal == "maximize"
    char *out_dir;           // out_dir: where checkpoints go (owned)
    char *cache_dir;         // cache_dir or NULL: shared decoded-image cache (owned)
    int threads;             // compute threads of the engine (layers_set_threads), 1..1024
    char **data_roots;       // data_roots, resolved; NULL when absent (owned strings and array)
    int n_data_roots;        // entries in data_roots; 0 = no confinement
    bool feature_cache;      // feature_cache: frozen-prefix features go through the shared
                             // cache in cache_dir (README.md "Feature cache"); default true
    int64_t cache_max_mb;    // cache_max_mb: bound of that cache in MiB (the daemon's config
                             // key); default trialspec_default_cache_mb()
} trial_spec;

/* Parses ROOT into S (every owned field allocated; free with trialspec_free,
 * also after a failure). Returns 0 or a negative code (ERR_UNKNOWN_KEY,
 * ERR_TYPE, ERR_RANGE, ERR_NOTFOUND, ERR_INVALID, ERR_NOMEM) with the key path
 * in msg (ERR_NOTFOUND / ERR_INVALID also for a data_roots entry that does
 * not resolve to a directory). */
int trialspec_from_json(trial_spec *s, const json_t *root, char *msg, size_t msglen);
/* Reads and parses the file PATH. ERR_IO when it cannot be read, ERR_PARSE for
 * bad JSON (line and column in msg), otherwise as trialspec_from_json. */
int trialspec_load(trial_spec *s, const char *path, char *msg, size_t msglen);
void trialspec_free(trial_spec *s);

/* The normalised spec (every default filled in) as a new JSON object; the
 * caller owns the reference. */
json_t *trialspec_to_json(const trial_spec *s);
/* cache_max_mb when the spec has none: a quarter of physical memory, MiB. */
int64_t trialspec_default_cache_mb(void);
/* 64-bit FNV-1a hash of the normalised spec without the fields that do not
 * change what is computed (trial, job, out_dir, cache_dir, threads,
 * feature_cache, cache_max_mb, data.test),
 * as 16 lowercase hex digits into BUF (>= 17 bytes). Equal hashes mean a
 * checkpoint may be resumed. */
void trialspec_hash(const trial_spec *s, char *buf, size_t n);

const char *trialspec_metric_name(objective_metric m);
/* True when value A is better than B under the objective. */
bool trialspec_better(const trial_spec *s, double a, double b);

#endif
