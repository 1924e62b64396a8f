/* jobspec — validation and expansion of a submitted job (README.md "Job spec reference",
 * "Strategies").
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
 *     A draw whose parameters equal an earlier trial's is drawn again from
 *     the same stream until unseen.
 *   - sobol: `trials` points of the job's scrambled Sobol sequence
 *     (suggest.h, scrambled by the job seed), mapped through the space: a
 *     list is a choice (floor(u*n) over its distinct values), uniform
 *     lo+u*(hi-lo), log_uniform lo*(hi/lo)^u, int_uniform lo+floor(u*(hi-lo+1)).
 *     Trial N is point N, except that a point whose parameters repeat an
 *     earlier trial's is skipped (only possible when every key is a list or
 *     int_uniform), so trial N is then the next new point.
 *   - tpe: `trials` N in all, `startup_trials` K (1..N, default
 *     min(JOBSPEC_DEFAULT_STARTUP, N)). Only the K startup trials are expanded
 *     here, exactly as strategy random draws its first K trials with the same
 *     seed; the scheduler proposes the rest one at a time (daemon/sched.c).
 *     `warm_start` {"jobs":[ID,...]} (tpe only) names earlier jobs whose
 *     finished trials TPE learns from; that they exist and have the same
 *     `space` is checked by the daemon (sched_check_warm_start).
 *   - random, sobol and tpe: a space with a finite number of distinct points
 *     (every key a list or int_uniform) smaller than `trials` is refused.
 *   - Keys neither searched nor in `fixed` take params_defaults().
 *   - Trial numbers start at 0. Trial N's seed is
 *     rng_derive(seed, N) & JOBSPEC_SEED_MASK (53 bits, exact in any JSON).
 *   - `seed` absent: the caller-supplied default seed is used (the daemon
 *     picks one from the clock and records it in jobs.seed).
 *   - `space.arch`: a list of architectures (arch.h's names) searched like
 *     any other choice (params.h's `arch`, written into every trial's
 *     params). model.arch must then be absent and model.weights an object
 *     naming each listed architecture's base model (a path, or null for
 *     from scratch), or null (every one from scratch at model.width);
 *     fixed.freeze and space.freeze must be freeze points of every listed
 *     family; model.input_size applies to all of them (without it, the
 *     weights files' input_size, which must then agree, else 224).
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
#include "suggest.h"

#define JOBSPEC_MAX_GRID 100000
#define JOBSPEC_MAX_TRIALS 100000
#define JOBSPEC_SEED_MASK ((UINT64_C(1) << 53) - 1)
#define JOBSPEC_STREAM_PARAMS UINT64_C(0x706172616d73) // "params"
#define JOBSPEC_STREAM_TPE UINT64_C(0x747065)          // "tpe": seeds of TPE proposals
#define JOBSPEC_DEFAULT_STARTUP 10                     // tpe startup_trials when absent
#define JOBSPEC_MAX_WARM 64                            // warm_start.jobs at most
#define JOBSPEC_MAX_ARCHS 16                           // architectures space.arch may list

/* One searched key in suggest.h coordinates. */
typedef struct {
    const char *key; // canonical params key (static)
    json_t *values;  // a list key: its distinct values in the order given, each as
                     // params_to_json writes it (owned); NULL for a distribution
    suggest_dim dim; // how the key is modelled: CHOICE over values, or the distribution
    size_t n_raw;    // a list key: its length as given (duplicates included)
    int *raw_value;  // a list key: entry i's index in values (owned); NULL in a copy
} jobspec_dim;

/* The search space of a job: its searched keys in canonical order. */
typedef struct {
    int nd;                          // number of searched keys
    jobspec_dim d[SUGGEST_MAX_DIMS]; // the keys
    trial_params base;               // defaults with `fixed` applied, before the searched keys
    bool has_relations;              // warmup_epochs or epochs is searched (checked per trial)
} jobspec_space;

/* One architecture of a job that searches them (space.arch). */
typedef struct {
    char *arch;    // arch.h's name, e.g. "vgg11_bn" (owned)
    char *weights; // its base model, model.weights.<arch>; NULL: from scratch (owned)
} jobspec_arch;

typedef struct {
    int number;          // position in the job, from 0
    uint64_t seed;       // the trial's seed (JOBSPEC_SEED_MASK bits)
    trial_params params; // every parameter, defaults filled
} jobspec_trial;

typedef struct {
    char *name;            // "name", default "job" (owned)
    char *strategy;        // "grid", "random", "sobol" or "tpe" (owned)
    char *train;           // data.train (owned)
    char *val;             // data.val or NULL (owned)
    char *test;            // data.test or NULL (owned)
    double val_fraction;   // data.val_fraction, default 0.1
    char *arch;            // model.arch, default "resnet18" (owned); the weights' after
                           // jobspec_check_files when not given
    bool arch_given;       // model.arch was given (or was set from the weights)
    const char *arch_from; // "job", "weights" or "default" (static)
    char *weights;         // model.weights or NULL = from scratch (owned)
    int input_size;        // model.input_size; default the weights' (jobspec_check_files), 224
    const char *input_size_from; // "job", "weights" or "default" (static)
    int width;                   // model.width, default 64
    char *metric;                // objective.metric (owned)
    bool maximize;               // objective.goal == "maximize"
    int max_parallel;            // 0 when absent (the daemon uses its worker count)
    double trial_timeout;        // seconds; 0 when absent
    bool has_trial_timeout;      // trial_timeout was given
    int max_retries;             // -1 when absent
    prune_config pruner;         // "pruner" (include/prune.h); kind PRUNE_NONE when absent
    uint64_t seed;               // the job seed actually used
    bool seed_given;             // "seed" was in the spec
    jobspec_space space;         // the searched keys (values owned; jobspec_free)
    size_t trials_total;         // N: trials the job runs (jobs.trials_total), every strategy
    int startup_trials;          // tpe: trials expanded at submission (K); else trials_total
    int64_t warm_jobs[JOBSPEC_MAX_WARM];   // tpe warm_start.jobs, in the order given
    size_t n_warm;                         // number of warm_start jobs
    jobspec_arch archs[JOBSPEC_MAX_ARCHS]; // space.arch's distinct names in the order given, each
                                           // with its weights (arch, weights and arch_given
                                           // above then describe the first)
    size_t n_archs;                        // 0 when the job does not search the architecture
    jobspec_trial *trials; // n_trials expanded trials (owned); NULL when not expanded
    size_t n_trials;       // number of expanded trials (tpe: K; else N)
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

/* Checks what the files of a job hold (issue 20), so that a job no trial
 * could run is refused at submission: model.weights' safetensors header (not
 * its tensors) must be a ResNet of torchvision/timm names (a PyTorch .pth is
 * refused naming etc/export-weights.py), of the architecture model.arch
 * names when given, with well-formed input_size/mean/std metadata
 * (weights_meta.h); data.val and data.test may hold no class folder that
 * data.train lacks (listed by the data_roots rule of ROOTS, N_ROOTS; 0:
 * none). Without model.arch the file's architecture is used, and without
 * model.input_size the file's input_size when it has one; both are then
 * written into JOB (when not NULL; the stored spec) and JS (arch_from,
 * input_size_from say where they came from). ERR_INVALID with a message
 * naming the key, the file and the mismatch; ERR_NOMEM. JS must come from
 * jobspec_parse with JOBSPEC_CHECK_PATHS (and jobspec_check_roots when
 * data_roots apply). */
int jobspec_check_files(jobspec *js, json_t *job, char *const *roots, int n_roots, char *msg,
                        size_t msglen);

/* Makes the relative paths among data.train, data.val, data.test and
 * model.weights of JS (and of JOB, if not NULL) absolute against the current
 * directory, where JOBSPEC_CHECK_PATHS found them: workers run in their own
 * out_dir and must open the same files. Every one of them is also stored
 * normalised (no ".", ".." or "//"; the part before a ".." resolved as the
 * kernel would, through symlinks), naming the same file. 0 or
 * ERR_NOMEM/ERR_IO. */
int jobspec_absolute_paths(jobspec *js, json_t *job, char *msg, size_t msglen);

/* The parts of a trial spec shared by all trials of the job, as a new object
 * {"data":{...},"model":{...},"objective":{...}}; caller owns it. A job that
 * searches the architecture also gets "models": {ARCH: model object, ...},
 * one per space.arch name: a trial's "model" is the one of its params.arch
 * ("model" is the first's). */
json_t *jobspec_trial_template(const jobspec *js);

/* The parameters of point X (SP->nd coordinates, suggest.h units) of space
 * SP into OUT: SP's base with every searched key set, relations checked.
 * 0, or ERR_RANGE/ERR_INVALID with the reason (naming the key) in MSG. */
int jobspec_space_params(const jobspec_space *sp, const double *x, trial_params *out, char *msg,
                         size_t msglen);
/* The coordinates in SP of a trial's parameters PARAMS (a params_to_json
 * object) into X (SP->nd). ERR_NOTFOUND when a value is not one of SP's (a
 * list value not listed, a key missing or not a number). */
int jobspec_space_point(const jobspec_space *sp, const json_t *params, double *x);
/* A copy of SP (values shared by reference) into OUT; jobspec_space_free. */
void jobspec_space_copy(jobspec_space *out, const jobspec_space *sp);
void jobspec_space_free(jobspec_space *sp);

/* Number of grid points of SPACE (an object of lists) with overflow saturating
 * at SIZE_MAX; used for the "too many points" message. */
size_t jobspec_grid_size(const json_t *space);

#endif
