/* jobspec — validation and expansion of a submitted job (README.md "Job spec reference").
 *
 * jobspec_parse() checks every key of the job (unknown keys, types, ranges,
 * that data.train / data.val / data.test are readable directories and
 * model.weights a readable file) and expands the search space into trials.
 * Errors name the key path: "space.lr[2]: expected a number, got \"x\"",
 * "model.weights: cannot read /m/r18.safetensors: No such file or directory".
 *
 * Expansion, fixed by contract and by tests:
 *   - grid: every `space` value is a non-empty list; trials are the Cartesian
 *     product with the searched keys taken in the canonical params order
 *     (params_keys: lr, batch_size, epochs, dropout, weight_decay, l1, momentum,
 *     optimizer, freeze, augment, lr_schedule, warmup_epochs, ...), the LAST
 *     of them varying fastest, each list in the order given. More than
 *     JOBSPEC_MAX_GRID points is refused (use strategy random).
 *   - random: `trials` (1..JOBSPEC_MAX_TRIALS) samples; a value is a list
 *     (uniform choice) or {"uniform":[a,b]} (real in [a,b)),
 *     {"log_uniform":[a,b]} (0<a<=b, exp of uniform in log space) or
 *     {"int_uniform":[a,b]} (integer in [a,b]). Trial N draws from its own
 *     stream rng_derive(rng_derive(seed, JOBSPEC_STREAM_PARAMS), N), keys in
 *     canonical order, so trial N's parameters do not depend on `trials`.
 *   - Keys neither searched nor in `fixed` take params_defaults().
 *   - Trial numbers start at 0. Trial N's seed is
 *     rng_derive(seed, N) & JOBSPEC_SEED_MASK (53 bits, exact in any JSON).
 *   - `seed` absent: the caller-supplied default seed is used (the daemon
 *     picks one from the clock and records it in jobs.seed).
 *   - `pruner`: "none" (default), {"median":{"warmup_epochs":W,
 *     "min_trials":M}} (W >= 0, M >= 1) or {"asha":{"min_epochs":R,
 *     "reduction":ETA}} (R >= 1, ETA >= 2); the rules are in prune.h.
 * The same spec and seed always give the same trials. */
#ifndef SWEEP_JOBSPEC_H
#define SWEEP_JOBSPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "params.h"
#include "prune.h"

#define JOBSPEC_MAX_GRID 100000
#define JOBSPEC_MAX_TRIALS 100000
#define JOBSPEC_SEED_MASK ((UINT64_C(1) << 53) - 1)
#define JOBSPEC_STREAM_PARAMS UINT64_C(0x706172616d73) // "params"

typedef struct {
    int number;          // position in the job, from 0
    uint64_t seed;       // the trial's seed (JOBSPEC_SEED_MASK bits)
    trial_params params; // every parameter, defaults filled
} jobspec_trial;

typedef struct {
    char *name;             // "name", default "job" (owned)
    char *strategy;         // "grid" or "random" (owned)
    char *train;            // data.train (owned)
    char *val;              // data.val or NULL (owned)
    char *test;             // data.test or NULL (owned)
    double val_fraction;    // data.val_fraction, default 0.1
    char *arch;             // model.arch, default "resnet18" (owned)
    char *weights;          // model.weights or NULL = from scratch (owned)
    int input_size;         // model.input_size, default 224
    int width;              // model.width, default 64
    char *metric;           // objective.metric (owned)
    bool maximize;          // objective.goal == "maximize"
    int max_parallel;       // 0 when absent (the daemon uses its worker count)
    double trial_timeout;   // seconds; 0 when absent
    bool has_trial_timeout; // trial_timeout was given
    int max_retries;        // -1 when absent
    prune_config pruner;    // "pruner" (include/prune.h); kind PRUNE_NONE when absent
    uint64_t seed;          // the job seed actually used
    bool seed_given;        // "seed" was in the spec
    jobspec_trial *trials;  // n_trials expanded trials (owned); NULL when not expanded
    size_t n_trials;        // number of trials
} jobspec;

enum {
    JOBSPEC_CHECK_PATHS = 1, // check data/model paths on disk
    JOBSPEC_EXPAND = 2,      // fill trials
    JOBSPEC_ROOTS = 4,       // data_roots apply: the caller calls jobspec_check_roots, which
                             // counts the class folders by the rule with roots, so not here
};

/* Validates JOB (and expands it with JOBSPEC_EXPAND) into JS, which the
 * caller frees with jobspec_free (also after a failure). DEFAULT_SEED is used
 * when JOB has no "seed". Returns 0 or a negative code (ERR_INVALID,
 * ERR_TYPE, ERR_RANGE, ERR_UNKNOWN_KEY, ERR_NOTFOUND, ERR_TOOBIG, ERR_IO)
 * with the key path in MSG. */
int jobspec_parse(jobspec *js, const json_t *job, unsigned flags, uint64_t default_seed, char *msg,
                  size_t msglen);
void jobspec_free(jobspec *js);

/* Confines a job's files (issue 8, config key data_roots): data.train,
 * data.val, data.test and model.weights of JS must resolve (realpath, so
 * symlinks and ".." are followed) to a path inside one of the N_ROOTS
 * directories ROOTS (absolute and already resolved). ROOTS_TEXT lists them
 * for messages. On success the paths in JS, and in JOB (the submitted
 * object, if not NULL), become the resolved ones, so the workers open what
 * was checked. Otherwise ERR_PERM (or ERR_NOTFOUND when a path cannot be
 * resolved) with a message naming the key, the path and the roots:
 * "data.train: /x/y is outside data_roots (/srv/data, /srv/models)". The
 * class folders of data.train, data.val and data.test are then checked as
 * jobspec_parse checks them without JOBSPEC_ROOTS, but by the rule with roots
 * (include/datapath.h: a class folder linking outside the roots is not a
 * class), so data.train with one class folder inside the roots is refused
 * (ERR_INVALID). JS must come from jobspec_parse with JOBSPEC_CHECK_PATHS. */
int jobspec_check_roots(jobspec *js, json_t *job, char *const *roots, int n_roots,
                        const char *roots_text, char *msg, size_t msglen);

/* Makes the relative paths among data.train, data.val, data.test and
 * model.weights of JS (and of JOB, if not NULL) absolute against the current
 * directory, where JOBSPEC_CHECK_PATHS found them: workers run in their own
 * out_dir and must open the same files. Every one of them is also stored
 * normalised (no ".", ".." or "//"; the part before a ".." resolved as the
 * kernel would, through symlinks), naming the same file. 0 or
 * ERR_NOMEM/ERR_IO. */
int jobspec_absolute_paths(jobspec *js, json_t *job, char *msg, size_t msglen);

/* The parts of a trial spec shared by all trials of the job, as a new object
 * {"data":{...},"model":{...},"objective":{...}}; caller owns it. */
json_t *jobspec_trial_template(const jobspec *js);

/* Number of grid points of SPACE (an object of lists) with overflow saturating
 * at SIZE_MAX; used for the "too many points" message. */
size_t jobspec_grid_size(const json_t *space);

#endif
