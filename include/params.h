/* params — the training hyperparameters of one trial: names, types, ranges,
 * defaults. Shared by the daemon (job validation and expansion) and the worker
 * (trial spec), so both sides accept and reject exactly the same values.
 *
 * Keys (README.md "Job spec reference"): lr, batch_size, epochs, dropout, weight_decay, l1,
 * momentum, optimizer, freeze, augment, lr_schedule, warmup_epochs; plus the
 * non-searchable-by-default extras nesterov and label_smoothing, which may
 * still appear in `space` or `fixed`; and arch, the architecture of a job
 * that searches it (`space.arch`, a list of arch.h's names): not a training
 * setting but part of the trial's parameters so that every strategy searches
 * it like any other choice and the database ranks by it. It is written by
 * params_to_json only when set, and a worker takes it as model.arch (which
 * the daemon writes too). Defaults are in params_defaults() and documented in
 * README.md. */
#ifndef SWEEP_PARAMS_H
#define SWEEP_PARAMS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum { OPTIM_SGD = 0, OPTIM_ADAM, OPTIM_ADAMW } optim_kind;
typedef enum { SCHED_CONSTANT = 0, SCHED_COSINE, SCHED_STEP } sched_kind;
/* Training augmentation: JSON false, true, "light" (crop/shift and flip
 * only, no rotation or colour jitter) or "erase" ("light" plus random
 * erasing of one rectangle). AUGMENT_OFF is 0, so `if (p->augment)` reads
 * "any augmentation". */
typedef enum { AUGMENT_OFF = 0, AUGMENT_FULL, AUGMENT_LIGHT, AUGMENT_ERASE } augment_kind;
/* The last frozen stage; everything up to and including it is frozen.
 * The values index arch.h's arch_freeze_choices (the names); which of them a
 * model accepts depends on its family (arch_freeze_level). */
typedef enum {
    FREEZE_NONE = 0,
    FREEZE_STEM, // conv1 + bn1 (Inception: Conv2d_1a_3x3 .. Conv2d_4a_3x3)
    FREEZE_LAYER1,
    FREEZE_LAYER2,
    FREEZE_LAYER3,
    FREEZE_LAYER4,
    FREEZE_ALL,    // only the new head trains
    FREEZE_BLOCK1, // VGG: block1 .. block5, features
    FREEZE_BLOCK2,
    FREEZE_BLOCK3,
    FREEZE_BLOCK4,
    FREEZE_BLOCK5,
    FREEZE_FEATURES,
    FREEZE_MIXED_5B, // Inception v3: Mixed_5b .. Mixed_7c
    FREEZE_MIXED_5C,
    FREEZE_MIXED_5D,
    FREEZE_MIXED_6A,
    FREEZE_MIXED_6B,
    FREEZE_MIXED_6C,
    FREEZE_MIXED_6D,
    FREEZE_MIXED_6E,
    FREEZE_MIXED_7A,
    FREEZE_MIXED_7B,
    FREEZE_MIXED_7C,
    FREEZE_KIND_COUNT // number of values
} freeze_kind;

typedef struct {
    double lr;              // base learning rate, > 0 and finite
    int batch_size;         // images per step, 1..65536
    int epochs;             // passes over the training split, 1..10000
    double dropout;         // drop probability before the head, [0, 1)
    double weight_decay;    // L2 coefficient, >= 0
    double l1;              // L1 coefficient on trained weights, >= 0
    double momentum;        // SGD momentum / Adam beta1, [0, 1)
    optim_kind optimizer;   // "sgd", "adam", "adamw"
    freeze_kind freeze;     // "none", "all" or a family's stage (arch.h)
    augment_kind augment;   // false, true (full), "light" or "erase"
    sched_kind lr_schedule; // "constant", "cosine", "step"
    int warmup_epochs;      // linear warmup epochs, 0..epochs-1
    bool nesterov;          // Nesterov momentum (SGD only)
    double label_smoothing; // cross-entropy label smoothing, [0, 1)
    int arch;               // searched architecture: index in arch_name_choices (arch.h), or
                            // -1 when the job does not search it (model.arch decides)
} trial_params;

/* Names of all keys, NULL-terminated, in canonical order. */
extern const char *const params_keys[];

/* Fills P with the documented defaults. */
void params_defaults(trial_params *p);
/* Validates VALUE for KEY and stores it in P. PATH is the full path of the
 * value for messages ("space.lr[2]", "fixed.freeze"). Unknown KEY gives
 * ERR_UNKNOWN_KEY, a bad value ERR_TYPE/ERR_RANGE, with the reason in msg. */
int params_set(trial_params *p, const char *key, const json_t *value, const char *path, char *msg,
               size_t msglen);
/* Checks relations between keys after all are set (warmup_epochs < epochs).
 * PATH names the object for messages. */
int params_check(const trial_params *p, const char *path, char *msg, size_t msglen);
/* Defaults, then every member of OBJ through params_set, then params_check. */
int params_from_json(trial_params *p, const json_t *obj, const char *path, char *msg,
                     size_t msglen);
/* Every key of P as a new JSON object (caller owns the reference); "arch"
 * only when P->arch >= 0. */
json_t *params_to_json(const trial_params *p);

const char *params_optim_name(optim_kind k);
const char *params_sched_name(sched_kind k);
const char *params_freeze_name(freeze_kind k);
/* The JSON value of an augmentation setting: false, true, "light" or "erase" (new
 * reference, NULL on allocation failure). */
json_t *params_augment_json(augment_kind k);

#endif
