/* params — names, types, ranges and defaults of a trial's hyperparameters.
 *
 * One table (param_defs) describes every key: its kind, its bounds and, for
 * choices, the accepted names in the order they are listed in messages. Both
 * the daemon (validating `space`/`fixed` of a job) and the worker (reading a
 * trial spec) go through params_set, so both accept exactly the same values.
 *
 * Defaults (documented in README.md): lr 0.01, batch_size 32, epochs 5,
 * dropout 0.0, weight_decay 0.0, l1 0.0, momentum 0.9, optimizer "sgd",
 * freeze "none", augment false (also true, "light" or "erase"), lr_schedule
 * "constant", warmup_epochs 0, nesterov false, label_smoothing 0.0; arch
 * not set (-1: the model's). */
#include "params.h"

#include "arch.h"
#include "errors.h"
#include "jsonx.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

const char *const params_keys[] = {
    "lr",       "batch_size",      "epochs", "dropout", "weight_decay", "l1",
    "momentum", "optimizer",       "freeze", "augment", "lr_schedule",  "warmup_epochs",
    "nesterov", "label_smoothing", "arch",   NULL,
};

static const char *const optim_names[] = {"sgd", "adam", "adamw", NULL};
static const char *const sched_names[] = {"constant", "cosine", "step", NULL};
/* freeze names: arch.h's one list (its index is the freeze_kind value) */

typedef enum {
    PK_POSITIVE,  // real > 0
    PK_NONNEG,    // real >= 0
    PK_UNIT_OPEN, // real in [0, 1)
    PK_INT,       // integer in [ilo, ihi]
    PK_BOOL,
    PK_CHOICE,  // one of choices
    PK_AUGMENT, // false, true, "light" or "erase"
} param_kind;

typedef struct {
    const char *key;            // JSON key
    param_kind kind;            // value type and range class
    size_t offset;              // offset of the field in trial_params
    int ilo, ihi;               // bounds for PK_INT
    const char *const *choices; // names for PK_CHOICE
} param_def;

#define OFF(f) offsetof(trial_params, f)
static const param_def param_defs[] = {
    {"lr", PK_POSITIVE, OFF(lr), 0, 0, NULL},
    {"batch_size", PK_INT, OFF(batch_size), 1, 65536, NULL},
    {"epochs", PK_INT, OFF(epochs), 1, 10000, NULL},
    {"dropout", PK_UNIT_OPEN, OFF(dropout), 0, 0, NULL},
    {"weight_decay", PK_NONNEG, OFF(weight_decay), 0, 0, NULL},
    {"l1", PK_NONNEG, OFF(l1), 0, 0, NULL},
    {"momentum", PK_UNIT_OPEN, OFF(momentum), 0, 0, NULL},
    {"optimizer", PK_CHOICE, OFF(optimizer), 0, 0, optim_names},
    {"freeze", PK_CHOICE, OFF(freeze), 0, 0, arch_freeze_choices},
    {"augment", PK_AUGMENT, OFF(augment), 0, 0, NULL},
    {"lr_schedule", PK_CHOICE, OFF(lr_schedule), 0, 0, sched_names},
    {"warmup_epochs", PK_INT, OFF(warmup_epochs), 0, 10000, NULL},
    {"nesterov", PK_BOOL, OFF(nesterov), 0, 0, NULL},
    {"label_smoothing", PK_UNIT_OPEN, OFF(label_smoothing), 0, 0, NULL},
    {"arch", PK_CHOICE, OFF(arch), 0, 0, arch_name_choices},
};
#undef OFF
#define N_DEFS (sizeof param_defs / sizeof param_defs[0])

void params_defaults(trial_params *p)
{
    memset(p, 0, sizeof *p);
    p->lr = 0.01;
    p->batch_size = 32;
    p->epochs = 5;
    p->dropout = 0.0;
    p->weight_decay = 0.0;
    p->l1 = 0.0;
    p->momentum = 0.9;
    p->optimizer = OPTIM_SGD;
    p->freeze = FREEZE_NONE;
    p->augment = AUGMENT_OFF;
    p->lr_schedule = SCHED_CONSTANT;
    p->warmup_epochs = 0;
    p->nesterov = false;
    p->label_smoothing = 0.0;
    p->arch = -1;
}

static const param_def *find_def(const char *key)
{
    for (size_t i = 0; i < N_DEFS; i++)
        if (strcmp(param_defs[i].key, key) == 0) return &param_defs[i];
    return NULL;
}

/* Range check for real kinds; the message shows the value as written. */
static int check_real(const param_def *d, double x, const json_t *v, const char *path, char *msg,
                      size_t msglen)
{
    const char *want = NULL;
    switch (d->kind) {
    case PK_POSITIVE:
        if (!(x > 0)) want = "a number > 0";
        break;
    case PK_NONNEG:
        if (!(x >= 0)) want = "a number >= 0";
        break;
    case PK_UNIT_OPEN:
        if (!(x >= 0 && x < 1)) want = "a number in [0, 1)";
        break;
    default:
        break;
    }
    if (!want) return 0;
    char desc[64];
    if (v)
        jx_describe(v, desc, sizeof desc);
    else
        snprintf(desc, sizeof desc, "%g", x);
    return err_set(msg, msglen, ERR_RANGE, "%s: expected %s, got %s", path, want, desc);
}

int params_set(trial_params *p, const char *key, const json_t *value, const char *path, char *msg,
               size_t msglen)
{
    const char *where = path ? path : (key ? key : "");
    const param_def *d = key ? find_def(key) : NULL;
    if (!d) return jx_unknown_key(where, key ? key : "", params_keys, msg, msglen);
    char *field = (char *)p + d->offset;
    switch (d->kind) {
    case PK_POSITIVE:
    case PK_NONNEG:
    case PK_UNIT_OPEN: {
        double x;
        int rc = jx_as_number(value, where, &x, msg, msglen);
        if (rc) return rc;
        rc = check_real(d, x, value, where, msg, msglen);
        if (rc) return rc;
        memcpy(field, &x, sizeof x);
        return 0;
    }
    case PK_INT: {
        int64_t x;
        int rc = jx_as_int(value, where, d->ilo, d->ihi, &x, msg, msglen);
        if (rc) return rc;
        int xi = (int)x;
        memcpy(field, &xi, sizeof xi);
        return 0;
    }
    case PK_BOOL: {
        bool b;
        int rc = jx_as_bool(value, where, &b, msg, msglen);
        if (rc) return rc;
        memcpy(field, &b, sizeof b);
        return 0;
    }
    case PK_AUGMENT: {
        augment_kind k;
        if (json_is_boolean(value)) {
            k = json_is_true(value) ? AUGMENT_FULL : AUGMENT_OFF;
        } else if (json_is_string(value) && strcmp(json_string_value(value), "light") == 0) {
            k = AUGMENT_LIGHT;
        } else if (json_is_string(value) && strcmp(json_string_value(value), "erase") == 0) {
            k = AUGMENT_ERASE;
        } else {
            char desc[64];
            jx_describe(value, desc, sizeof desc);
            return err_set(msg, msglen, json_is_string(value) ? ERR_RANGE : ERR_TYPE,
                           "%s: expected true, false, \"light\" or \"erase\", got %s", where, desc);
        }
        memcpy(field, &k, sizeof k);
        return 0;
    }
    case PK_CHOICE: {
        int idx = jx_as_enum(value, where, d->choices, msg, msglen);
        if (idx < 0) return idx;
        if (d->choices == arch_freeze_choices) {
            p->freeze = (freeze_kind)idx;
        } else if (d->choices == arch_name_choices) {
            p->arch = idx;
        } else if (d->choices == optim_names) {
            p->optimizer = (optim_kind)idx;
        } else {
            p->lr_schedule = (sched_kind)idx;
        }
        return 0;
    }
    }
    return err_set(msg, msglen, ERR_INTERNAL, "%s: unhandled parameter kind", where);
}

/* Entries of arch_name_choices. */
static int arch_choice_count(void)
{
    int n = 0;
    while (arch_name_choices[n])
        n++;
    return n;
}

int params_check(const trial_params *p, const char *path, char *msg, size_t msglen)
{
    char full[512];
    /* Ranges again, for structs filled in C rather than through params_set. */
    for (size_t i = 0; i < N_DEFS; i++) {
        const param_def *d = &param_defs[i];
        const char *field = (const char *)p + d->offset;
        jx_path_key(full, sizeof full, path, d->key);
        switch (d->kind) {
        case PK_POSITIVE:
        case PK_NONNEG:
        case PK_UNIT_OPEN: {
            double x;
            memcpy(&x, field, sizeof x);
            if (!isfinite(x))
                return err_set(msg, msglen, ERR_RANGE, "%s: expected a finite number", full);
            int rc = check_real(d, x, NULL, full, msg, msglen);
            if (rc) return rc;
            break;
        }
        case PK_INT: {
            int x;
            memcpy(&x, field, sizeof x);
            if (x < d->ilo || x > d->ihi)
                return err_set(msg, msglen, ERR_RANGE,
                               "%s: expected an integer from %d to %d, got %d", full, d->ilo,
                               d->ihi, x);
            break;
        }
        default:
            break;
        }
    }
    if ((unsigned)p->optimizer > OPTIM_ADAMW || (unsigned)p->lr_schedule > SCHED_STEP ||
        (unsigned)p->freeze >= FREEZE_KIND_COUNT || (unsigned)p->augment > AUGMENT_ERASE ||
        p->arch < -1 || p->arch >= arch_choice_count()) {
        return err_set(msg, msglen, ERR_RANGE,
                       "%s: invalid optimizer, schedule, freeze, augment or arch value",
                       (path && *path) ? path : "params");
    }
    if (p->warmup_epochs >= p->epochs) {
        jx_path_key(full, sizeof full, path, "warmup_epochs");
        return err_set(msg, msglen, ERR_RANGE, "%s: must be less than epochs (%d), got %d", full,
                       p->epochs, p->warmup_epochs);
    }
    return 0;
}

int params_from_json(trial_params *p, const json_t *obj, const char *path, char *msg, size_t msglen)
{
    params_defaults(p);
    if (obj) {
        int rc = jx_check_keys(obj, path, params_keys, msg, msglen);
        if (rc) return rc;
        char full[512];
        for (size_t i = 0; params_keys[i]; i++) {
            const json_t *v = json_object_get(obj, params_keys[i]);
            if (!v) continue;
            jx_path_key(full, sizeof full, path, params_keys[i]);
            rc = params_set(p, params_keys[i], v, full, msg, msglen);
            if (rc) return rc;
        }
    }
    return params_check(p, path, msg, msglen);
}

/* Adds KEY: V to O, consuming V; returns non-zero on failure. */
static int put(json_t *o, const char *key, json_t *v)
{
    return !v || json_object_set_new(o, key, v) != 0;
}

json_t *params_to_json(const trial_params *p)
{
    json_t *o = json_object();
    if (!o) return NULL;
    int bad = 0;
    bad |= put(o, "lr", json_real(p->lr));
    bad |= put(o, "batch_size", json_integer(p->batch_size));
    bad |= put(o, "epochs", json_integer(p->epochs));
    bad |= put(o, "dropout", json_real(p->dropout));
    bad |= put(o, "weight_decay", json_real(p->weight_decay));
    bad |= put(o, "l1", json_real(p->l1));
    bad |= put(o, "momentum", json_real(p->momentum));
    bad |= put(o, "optimizer", json_string(params_optim_name(p->optimizer)));
    bad |= put(o, "freeze", json_string(params_freeze_name(p->freeze)));
    bad |= put(o, "augment", params_augment_json(p->augment));
    bad |= put(o, "lr_schedule", json_string(params_sched_name(p->lr_schedule)));
    bad |= put(o, "warmup_epochs", json_integer(p->warmup_epochs));
    bad |= put(o, "nesterov", json_boolean(p->nesterov));
    bad |= put(o, "label_smoothing", json_real(p->label_smoothing));
    if (p->arch >= 0) bad |= put(o, "arch", json_string(arch_name_choices[p->arch]));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

const char *params_optim_name(optim_kind k)
{
    if ((unsigned)k > OPTIM_ADAMW) return "unknown";
    return optim_names[k];
}

const char *params_sched_name(sched_kind k)
{
    if ((unsigned)k > SCHED_STEP) return "unknown";
    return sched_names[k];
}

const char *params_freeze_name(freeze_kind k)
{
    if ((unsigned)k >= FREEZE_KIND_COUNT) return "unknown";
    return arch_freeze_choices[k];
}

json_t *params_augment_json(augment_kind k)
{
    if (k == AUGMENT_LIGHT) return json_string("light");
    if (k == AUGMENT_ERASE) return json_string("erase");
    return json_boolean(k == AUGMENT_FULL);
}
