/* events_check — the contract check of worker event lines (see
 * include/events_check.h): one table of each event's fields with their kind
 * (type and range), then the order rules of the attempt. Used by the
 * scheduler on every line a running worker writes and by recovery's replay
 * of events files, so both store exactly the events that pass. */
#include "events_check.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "log.h"
#include "params.h"
#include "utf8.h"

/* What a field must hold. */
typedef enum {
    V_EPOCH,  // integer 1..epochs
    V_EPOCH0, // integer 0..epochs (finished epochs)
    V_COUNT,  // integer >= 0
    V_POS,    // integer >= 1
    V_INT,    // any integer
    V_UNIT,   // number in [0, 1] (accuracy, precision, recall, F1)
    V_NONNEG, // finite number >= 0 (losses, lr, seconds, t, images/s)
    V_TEXT,   // non-empty string
    V_STRING, // string
    V_OBJECT, // object
} vkind;

/* One field of an event. */
typedef struct {
    const char *key; // member name
    vkind kind;      // what it must hold
    bool required;   // must be present (an optional one may also be null)
} fspec;

/* The events of the contract, in README.md order, with their fields. */
static const fspec start_f[] = {{"trial", V_POS, true},
                                {"params", V_OBJECT, true},
                                {"train_images", V_COUNT, true},
                                {"val_images", V_COUNT, true},
                                {"classes", V_POS, true},
                                {"blas_core", V_STRING, false},
                                {"skipped_files", V_COUNT, false},
                                {"bad_images", V_COUNT, false},
                                {NULL, V_INT, false}};
static const fspec progress_f[] = {{"epoch", V_EPOCH, true},         {"step", V_COUNT, true},
                                   {"steps", V_POS, true},           {"loss", V_NONNEG, true},
                                   {"images_per_s", V_NONNEG, true}, {NULL, V_INT, false}};
static const fspec epoch_f[] = {{"epoch", V_EPOCH, true},
                                {"train_loss", V_NONNEG, true},
                                {"train_accuracy", V_UNIT, true},
                                {"val_loss", V_NONNEG, true},
                                {"val_accuracy", V_UNIT, true},
                                {"val_precision", V_UNIT, true},
                                {"val_recall", V_UNIT, true},
                                {"val_f1", V_UNIT, true},
                                {"lr", V_NONNEG, true},
                                {"seconds", V_NONNEG, true},
                                {NULL, V_INT, false}};
static const fspec checkpoint_f[] = {{"epoch", V_EPOCH0, true},
                                     {"path", V_TEXT, true},
                                     {"step", V_COUNT, false},
                                     {NULL, V_INT, false}};
static const fspec stopped_f[] = {{"epoch", V_EPOCH0, true},
                                  {"step", V_COUNT, false},
                                  {"signal", V_STRING, false},
                                  {"checkpoint", V_STRING, false},
                                  {NULL, V_INT, false}};
static const fspec done_f[] = {{"best_epoch", V_EPOCH, true},
                               {"val_accuracy", V_UNIT, true},
                               {"val_loss", V_NONNEG, true},
                               {"val_precision", V_UNIT, true},
                               {"val_recall", V_UNIT, true},
                               {"val_f1", V_UNIT, true},
                               {"train_loss", V_NONNEG, false},
                               {"train_accuracy", V_UNIT, false},
                               {"epochs", V_POS, false},
                               {"objective", V_OBJECT, false},
                               {NULL, V_INT, false}};
static const fspec error_f[] = {{"code", V_TEXT, true},
                                {"message", V_TEXT, true},
                                {"exit_code", V_INT, false},
                                {NULL, V_INT, false}};

static const struct {
    const char *name;    // "event" value
    const fspec *fields; // its fields
} kinds[] = {{"start", start_f},     {"progress", progress_f},
             {"epoch", epoch_f},     {"checkpoint", checkpoint_f},
             {"stopped", stopped_f}, {"done", done_f},
             {"error", error_f}};

void events_check_init(events_check *c, int64_t trial, int epochs, bool multi_attempt)
{
    memset(c, 0, sizeof *c);
    c->trial = trial;
    c->epochs = epochs > 0 ? epochs : 0;
    c->multi_attempt = multi_attempt;
}

int events_check_epochs(const json_t *params)
{
    trial_params p;
    char msg[256];
    if (!json_is_object(params) || params_from_json(&p, params, "params", msg, sizeof msg) != 0)
        return 0;
    return p.epochs;
}

/* V as compact ASCII JSON for a message, cut to about 40 bytes, into BUF. */
static const char *shown(char *buf, size_t n, const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
    char raw[48];
    snprintf(raw, sizeof raw, "%.40s%s", s ? s : "?", s && strlen(s) > 40 ? "..." : "");
    free(s);
    utf8_escape(buf, n, raw); // ASCII already; this escapes control characters too
    return buf;
}

/* The sentence for what kind K expects (epoch bounds from C). */
static void expected(char *buf, size_t n, vkind k, const events_check *c)
{
    switch (k) {
    case V_EPOCH:
    case V_EPOCH0:
        if (c->epochs)
            snprintf(buf, n, "an integer from %d to %d", k == V_EPOCH ? 1 : 0, c->epochs);
        else
            snprintf(buf, n, "an integer >= %d", k == V_EPOCH ? 1 : 0);
        break;
    case V_COUNT:
        snprintf(buf, n, "an integer >= 0");
        break;
    case V_POS:
        snprintf(buf, n, "an integer >= 1");
        break;
    case V_INT:
        snprintf(buf, n, "an integer");
        break;
    case V_UNIT:
        snprintf(buf, n, "a number from 0 to 1");
        break;
    case V_NONNEG:
        snprintf(buf, n, "a finite number >= 0");
        break;
    case V_TEXT:
        snprintf(buf, n, "a non-empty string");
        break;
    case V_STRING:
        snprintf(buf, n, "a string");
        break;
    case V_OBJECT:
        snprintf(buf, n, "an object");
        break;
    }
}

/* True when V holds what kind K asks (epoch bounds from C). */
static bool fits(const json_t *v, vkind k, const events_check *c)
{
    long long hi = c->epochs ? c->epochs : INT_MAX;
    long long i = json_is_integer(v) ? (long long)json_integer_value(v) : 0;
    double d = json_is_number(v) ? json_number_value(v) : NAN;
    switch (k) {
    case V_EPOCH:
        return json_is_integer(v) && i >= 1 && i <= hi;
    case V_EPOCH0:
        return json_is_integer(v) && i >= 0 && i <= hi;
    case V_COUNT:
        return json_is_integer(v) && i >= 0;
    case V_POS:
        return json_is_integer(v) && i >= 1;
    case V_INT:
        return json_is_integer(v);
    case V_UNIT:
        return d >= 0 && d <= 1; // false for NaN (not a number)
    case V_NONNEG:
        return isfinite(d) && d >= 0;
    case V_TEXT:
        return json_is_string(v) && json_string_length(v) > 0;
    case V_STRING:
        return json_is_string(v);
    case V_OBJECT:
        return json_is_object(v);
    }
    return false;
}

/* Checks the members of EV listed in F; 0 or ERR_INVALID with the reason
 * ("WHAT: KEY: expected ..., got ...", WHAT such as "epoch event") in WHY. */
static int check_fields(const events_check *c, const char *what, const json_t *ev, const fspec *f,
                        char *why, size_t whylen)
{
    for (; f->key; f++) {
        const json_t *v = json_object_get(ev, f->key);
        if (!v || (json_is_null(v) && !f->required)) {
            if (!f->required) continue;
            return err_set(why, whylen, ERR_INVALID, "%s: %s is missing", what, f->key);
        }
        if (fits(v, f->kind, c)) continue;
        char want[64], got[200];
        expected(want, sizeof want, f->kind, c);
        return err_set(why, whylen, ERR_INVALID, "%s: %s: expected %s, got %s", what, f->key, want,
                       shown(got, sizeof got, v));
    }
    return 0;
}

/* Starts an attempt in C at the valid start EV: a replay's later attempt
 * starts with a clean slate (its worker is a new process). */
static void begin_attempt(events_check *c, const json_t *ev)
{
    const json_t *res = json_object_get(ev, "resumed");
    if (c->started || c->faulty) {
        c->faulty = false;
        c->fault[0] = c->first[0] = 0;
        c->bad_now = 0;
    }
    c->started = true;
    c->done = false;
    c->last_epoch =
        json_is_object(res) ? (int)json_integer_value(json_object_get(res, "epoch")) : 0;
}

/* The order rules for a valid-looking event NAME (fields checked). */
static int check_order(events_check *c, const char *name, const json_t *ev, char *why,
                       size_t whylen)
{
    bool is_start = !strcmp(name, "start");
    if (is_start) {
        if (c->started && !c->multi_attempt)
            return err_set(why, whylen, ERR_INVALID, "start event: a second start from one worker");
        json_int_t id = json_integer_value(json_object_get(ev, "trial"));
        if (c->trial > 0 && id != c->trial)
            return err_set(why, whylen, ERR_INVALID, "start event: trial: expected %lld, got %lld",
                           (long long)c->trial, (long long)id);
        const json_t *res = json_object_get(ev, "resumed");
        if (res && !json_is_null(res)) {
            static const fspec resumed_f[] = {
                {"epoch", V_EPOCH0, true}, {"step", V_COUNT, false}, {NULL, V_INT, false}};
            if (!json_is_object(res))
                return err_set(why, whylen, ERR_INVALID,
                               "start event: resumed: expected an object or null");
            if (check_fields(c, "start event: resumed", res, resumed_f, why, whylen))
                return ERR_INVALID;
        }
        return 0;
    }
    if (c->done) return err_set(why, whylen, ERR_INVALID, "%s event after done", name);
    if (!c->started && strcmp(name, "error"))
        return err_set(why, whylen, ERR_INVALID, "%s event before start", name);
    long long e = json_integer_value(json_object_get(ev, "epoch"));
    if (!strcmp(name, "epoch") && e <= c->last_epoch)
        return err_set(why, whylen, ERR_INVALID,
                       "epoch event: epoch %lld after epoch %d (epochs must increase)", e,
                       c->last_epoch);
    if (!strcmp(name, "progress")) {
        if (e <= c->last_epoch)
            return err_set(why, whylen, ERR_INVALID,
                           "progress event: epoch %lld, but epoch %d is already finished", e,
                           c->last_epoch);
        long long step = json_integer_value(json_object_get(ev, "step"));
        long long steps = json_integer_value(json_object_get(ev, "steps"));
        if (step > steps)
            return err_set(why, whylen, ERR_INVALID, "progress event: step %lld of %lld steps",
                           step, steps);
    }
    if (!strcmp(name, "done")) {
        if (c->last_epoch == 0 && !c->epochs)
            return err_set(why, whylen, ERR_INVALID, "done event before any epoch");
        if (c->epochs && c->last_epoch != c->epochs)
            return err_set(why, whylen, ERR_INVALID,
                           "done event before the last epoch (%d of %d finished)", c->last_epoch,
                           c->epochs);
        long long best = json_integer_value(json_object_get(ev, "best_epoch"));
        if (best > c->last_epoch)
            return err_set(why, whylen, ERR_INVALID,
                           "done event: best_epoch %lld after the last finished epoch %d", best,
                           c->last_epoch);
        const json_t *n = json_object_get(ev, "epochs");
        if (c->epochs && json_is_integer(n) && json_integer_value(n) != c->epochs)
            return err_set(why, whylen, ERR_INVALID, "done event: epochs: expected %d, got %lld",
                           c->epochs, (long long)json_integer_value(n));
    }
    return 0;
}

/* Checks EV without touching C's counters; 0 or ERR_INVALID with WHY. *NAME
 * is set to the event's name when it has a string one. */
static int judge(events_check *c, const json_t *ev, const char **name, char *why, size_t whylen)
{
    *name = NULL;
    if (!json_is_object(ev)) return err_set(why, whylen, ERR_INVALID, "not a JSON object");
    const json_t *nv = json_object_get(ev, "event");
    if (!json_is_string(nv)) return err_set(why, whylen, ERR_INVALID, "no \"event\" name");
    *name = json_string_value(nv);
    const fspec *fields = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(kinds[i].name, *name)) fields = kinds[i].fields;
    char got[200];
    if (!fields)
        return err_set(why, whylen, ERR_INVALID, "unknown event %s", shown(got, sizeof got, nv));
    if (c->faulty && !(c->multi_attempt && !strcmp(*name, "start")))
        return err_set(why, whylen, ERR_INVALID, "%s event from a worker already faulty (%s)",
                       *name, c->fault);
    static const fspec t_f[] = {{"t", V_NONNEG, true}, {NULL, V_INT, false}};
    char what[32];
    snprintf(what, sizeof what, "%s event", *name); // a known name: short
    if (check_fields(c, what, ev, t_f, why, whylen) ||
        check_fields(c, what, ev, fields, why, whylen) || check_order(c, *name, ev, why, whylen))
        return ERR_INVALID;
    return 0;
}

int events_check_event(events_check *c, const json_t *ev, char *why, size_t whylen)
{
    const char *name;
    if (judge(c, ev, &name, why, whylen) == 0) {
        if (!strcmp(name, "start")) begin_attempt(c, ev);
        if (!strcmp(name, "epoch"))
            c->last_epoch = (int)json_integer_value(json_object_get(ev, "epoch"));
        if (!strcmp(name, "done")) c->done = true;
        return 0;
    }
    c->bad++;
    c->bad_now++;
    if (c->bad_now == 1) {
        snprintf(c->first, sizeof c->first, "%s", why);
        err_trim_utf8(c->first, strlen(c->first));
    }
    bool bad_done = name && !strcmp(name, "done");
    if (!c->faulty && (bad_done || c->bad_now >= EVENTS_CHECK_FAULT_LIMIT)) {
        /* A bad done names itself; after too many, the first reason stands. */
        c->faulty = true;
        snprintf(c->fault, sizeof c->fault, "%s", bad_done ? why : c->first);
        err_trim_utf8(c->fault, strlen(c->fault));
    }
    return ERR_INVALID;
}

void events_check_excerpt(char *buf, size_t n, const char *line, size_t len)
{
    char cut[EVENTS_CHECK_EXCERPT + 1];
    size_t k = len < EVENTS_CHECK_EXCERPT ? len : EVENTS_CHECK_EXCERPT;
    memcpy(cut, line, k);
    cut[k] = 0;
    if (k < len) err_trim_utf8(cut, k);
    utf8_escape(buf, n, cut);
}

void events_check_log_bad(int64_t trial, const char *why, const char *line, size_t len)
{
    char ex[EVENTS_CHECK_EXCERPT * 4 + 8];
    events_check_excerpt(ex, sizeof ex, line ? line : "", line ? len : 0);
    log_warn("trial %lld: invalid worker event (%s), not stored: %s%s", (long long)trial, why, ex,
             len > EVENTS_CHECK_EXCERPT ? "..." : "");
}
