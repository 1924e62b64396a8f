/* Tests for common/params.c: defaults, every key's type and range rules, the
 * path-naming messages, relations (warmup < epochs) and JSON round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "errors.h"
#include "jsonx.h"
#include "params.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static json_t *parse(const char *s)
{
    char msg[256];
    json_t *v = jx_parse(s, strlen(s), msg, sizeof msg);
    if (!v) fail_msg("parse failed: %s", msg);
    return v;
}

/* Sets KEY to the JSON text VALUE at path "fixed.KEY"; returns the code. */
static int set_text(trial_params *p, const char *key, const char *value, char *msg, size_t n)
{
    json_t *v = parse(value);
    char path[128];
    jx_path_key(path, sizeof path, "fixed", key);
    int rc = params_set(p, key, v, path, msg, n);
    json_decref(v);
    return rc;
}

static void test_defaults(void **state)
{
    (void)state;
    trial_params p;
    memset(&p, 0x5a, sizeof p);
    params_defaults(&p);
    assert_true(p.lr == 0.01);
    assert_int_equal(p.batch_size, 32);
    assert_int_equal(p.epochs, 5);
    assert_true(p.dropout == 0.0);
    assert_true(p.weight_decay == 0.0);
    assert_true(p.l1 == 0.0);
    assert_true(p.momentum == 0.9);
    assert_int_equal(p.optimizer, OPTIM_SGD);
    assert_int_equal(p.freeze, FREEZE_NONE);
    assert_int_equal(p.augment, AUGMENT_OFF);
    assert_int_equal(p.lr_schedule, SCHED_CONSTANT);
    assert_int_equal(p.warmup_epochs, 0);
    assert_false(p.nesterov);
    assert_true(p.label_smoothing == 0.0);
    char msg[128];
    assert_int_equal(params_check(&p, "", msg, sizeof msg), 0);
}

static void test_keys_list(void **state)
{
    (void)state;
    const char *want[] = {
        "lr",          "batch_size",    "epochs",    "dropout",         "weight_decay",
        "l1",          "momentum",      "optimizer", "freeze",          "augment",
        "lr_schedule", "warmup_epochs", "nesterov",  "label_smoothing", "arch"};
    size_t n = 0;
    while (params_keys[n])
        n++;
    assert_int_equal(n, 15);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(params_keys[i], want[i]);
}

static void test_set_each_key(void **state)
{
    (void)state;
    trial_params p;
    params_defaults(&p);
    char msg[256];
    assert_int_equal(set_text(&p, "lr", "0.5", msg, sizeof msg), 0);
    assert_int_equal(set_text(&p, "batch_size", "64", msg, sizeof msg), 0);
    assert_int_equal(set_text(&p, "epochs", "12.0", msg, sizeof msg), 0);
    assert_int_equal(set_text(&p, "dropout", "0.3", msg, sizeof msg), 0);
    assert_int_equal(set_text(&p, "weight_decay", "0.0001", msg, sizeof msg), 0);
    assert_int_equal(set_text(&p, "l1", "1e-6", msg, sizeof msg), 0);
    assert_int_equal(set_text(&p, "momentum", "0", msg, sizeof msg), 0);
    assert_int_equal(set_text(&p, "optimizer", "\"adamw\"", msg, sizeof msg), 0);
    assert_int_equal(set_text(&p, "freeze", "\"layer3\"", msg, sizeof msg), 0);
    assert_int_equal(set_text(&p, "augment", "true", msg, sizeof msg), 0);
    assert_int_equal(set_text(&p, "lr_schedule", "\"cosine\"", msg, sizeof msg), 0);
    assert_int_equal(set_text(&p, "warmup_epochs", "2", msg, sizeof msg), 0);
    assert_int_equal(set_text(&p, "nesterov", "true", msg, sizeof msg), 0);
    assert_int_equal(set_text(&p, "label_smoothing", "0.1", msg, sizeof msg), 0);
    assert_true(p.lr == 0.5);
    assert_int_equal(p.batch_size, 64);
    assert_int_equal(p.epochs, 12);
    assert_true(p.dropout == 0.3);
    assert_true(p.weight_decay == 0.0001);
    assert_true(p.l1 == 1e-6);
    assert_true(p.momentum == 0.0);
    assert_int_equal(p.optimizer, OPTIM_ADAMW);
    assert_int_equal(p.freeze, FREEZE_LAYER3);
    assert_int_equal(p.augment, AUGMENT_FULL);
    assert_int_equal(p.lr_schedule, SCHED_COSINE);
    assert_int_equal(p.warmup_epochs, 2);
    assert_true(p.nesterov);
    assert_true(p.label_smoothing == 0.1);
    assert_int_equal(params_check(&p, "fixed", msg, sizeof msg), 0);
    assert_int_equal(set_text(&p, "augment", "\"light\"", msg, sizeof msg), 0);
    assert_int_equal(p.augment, AUGMENT_LIGHT);
    assert_int_equal(set_text(&p, "augment", "\"erase\"", msg, sizeof msg), 0);
    assert_int_equal(p.augment, AUGMENT_ERASE);
    assert_int_equal(set_text(&p, "augment", "false", msg, sizeof msg), 0);
    assert_int_equal(p.augment, AUGMENT_OFF);
}

static void test_all_choice_names(void **state)
{
    (void)state;
    trial_params p;
    params_defaults(&p);
    char msg[256], v[32];
    const char *freeze[] = {"none", "all", "stem", "layer1", "layer2", "layer3", "layer4"};
    const freeze_kind fk[] = {FREEZE_NONE,   FREEZE_ALL,    FREEZE_STEM,  FREEZE_LAYER1,
                              FREEZE_LAYER2, FREEZE_LAYER3, FREEZE_LAYER4};
    for (int i = 0; i < 7; i++) {
        snprintf(v, sizeof v, "\"%s\"", freeze[i]);
        assert_int_equal(set_text(&p, "freeze", v, msg, sizeof msg), 0);
        assert_int_equal(p.freeze, fk[i]);
        assert_string_equal(params_freeze_name(fk[i]), freeze[i]);
    }
    const char *opt[] = {"sgd", "adam", "adamw"};
    for (int i = 0; i < 3; i++) {
        snprintf(v, sizeof v, "\"%s\"", opt[i]);
        assert_int_equal(set_text(&p, "optimizer", v, msg, sizeof msg), 0);
        assert_int_equal(p.optimizer, (optim_kind)i);
        assert_string_equal(params_optim_name((optim_kind)i), opt[i]);
    }
    const char *sch[] = {"constant", "cosine", "step"};
    for (int i = 0; i < 3; i++) {
        snprintf(v, sizeof v, "\"%s\"", sch[i]);
        assert_int_equal(set_text(&p, "lr_schedule", v, msg, sizeof msg), 0);
        assert_int_equal(p.lr_schedule, (sched_kind)i);
        assert_string_equal(params_sched_name((sched_kind)i), sch[i]);
    }
    assert_string_equal(params_optim_name((optim_kind)42), "unknown");
}

typedef struct {
    const char *key;   // parameter
    const char *value; // JSON text
    int code;          // expected error
    const char *msg;   // expected message
} bad_case;

/* every family's freeze points (arch.h's arch_freeze_choices) */
#define FREEZE_LIST                                                                                \
    "none, stem, layer1, layer2, layer3, layer4, all, block1, block2, block3, block4, block5, "    \
    "features, Mixed_5b, Mixed_5c, Mixed_5d, Mixed_6a, Mixed_6b, Mixed_6c, Mixed_6d, Mixed_6e, "   \
    "Mixed_7a, Mixed_7b, Mixed_7c"

static void test_rejections_name_path_and_value(void **state)
{
    (void)state;
    static const bad_case cases[] = {
        {"lr", "0", ERR_RANGE, "fixed.lr: expected a number > 0, got 0"},
        {"lr", "-0.1", ERR_RANGE, "fixed.lr: expected a number > 0, got -0.1"},
        {"lr", "\"abc\"", ERR_TYPE, "fixed.lr: expected a number, got \"abc\""},
        {"lr", "true", ERR_TYPE, "fixed.lr: expected a number, got true"},
        {"lr", "[0.1]", ERR_TYPE, "fixed.lr: expected a number, got an array"},
        {"batch_size", "0", ERR_RANGE,
         "fixed.batch_size: expected an integer from 1 to 65536, got 0"},
        {"batch_size", "32.5", ERR_TYPE, "fixed.batch_size: expected an integer, got 32.5"},
        {"batch_size", "\"32\"", ERR_TYPE, "fixed.batch_size: expected an integer, got \"32\""},
        {"epochs", "0", ERR_RANGE, "fixed.epochs: expected an integer from 1 to 10000, got 0"},
        {"dropout", "1", ERR_RANGE, "fixed.dropout: expected a number in [0, 1), got 1"},
        {"dropout", "1.0", ERR_RANGE, "fixed.dropout: expected a number in [0, 1), got 1.0"},
        {"dropout", "-0.1", ERR_RANGE, "fixed.dropout: expected a number in [0, 1), got -0.1"},
        {"weight_decay", "-1e-4", ERR_RANGE,
         "fixed.weight_decay: expected a number >= 0, got -0.0001"},
        {"l1", "-1", ERR_RANGE, "fixed.l1: expected a number >= 0, got -1"},
        {"momentum", "1", ERR_RANGE, "fixed.momentum: expected a number in [0, 1), got 1"},
        {"label_smoothing", "1", ERR_RANGE,
         "fixed.label_smoothing: expected a number in [0, 1), got 1"},
        {"optimizer", "\"rmsprop\"", ERR_RANGE,
         "fixed.optimizer: expected one of sgd, adam, adamw, got \"rmsprop\""},
        {"optimizer", "\"SGD\"", ERR_RANGE,
         "fixed.optimizer: expected one of sgd, adam, adamw, got \"SGD\""},
        {"freeze", "\"layer9\"", ERR_RANGE,
         "fixed.freeze: expected one of " FREEZE_LIST ", got \"layer9\""},
        {"freeze", "3", ERR_TYPE, "fixed.freeze: expected one of " FREEZE_LIST ", got 3"},
        {"lr_schedule", "\"linear\"", ERR_RANGE,
         "fixed.lr_schedule: expected one of constant, cosine, step, got \"linear\""},
        {"augment", "1", ERR_TYPE,
         "fixed.augment: expected true, false, \"light\" or \"erase\", got 1"},
        {"augment", "\"true\"", ERR_RANGE,
         "fixed.augment: expected true, false, \"light\" or \"erase\", got \"true\""},
        {"augment", "\"Light\"", ERR_RANGE,
         "fixed.augment: expected true, false, \"light\" or \"erase\", got \"Light\""},
        {"augment", "null", ERR_TYPE,
         "fixed.augment: expected true, false, \"light\" or \"erase\", got null"},
        {"nesterov", "null", ERR_TYPE, "fixed.nesterov: expected true or false, got null"},
        {"warmup_epochs", "-1", ERR_RANGE,
         "fixed.warmup_epochs: expected an integer from 0 to 10000, got -1"},
        {"optimiser", "\"sgd\"", ERR_UNKNOWN_KEY,
         "fixed.optimiser: unknown key; did you mean optimizer?"},
        {"epoch", "3", ERR_UNKNOWN_KEY, "fixed.epoch: unknown key; did you mean epochs?"},
        {"colour", "1", ERR_UNKNOWN_KEY, "fixed.colour: unknown key"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        trial_params p, before;
        params_defaults(&p);
        before = p;
        char msg[256] = "";
        int rc = set_text(&p, cases[i].key, cases[i].value, msg, sizeof msg);
        if (rc != cases[i].code)
            fail_msg("%s=%s: code %d, want %d (%s)", cases[i].key, cases[i].value, rc,
                     cases[i].code, msg);
        if (strcmp(msg, cases[i].msg) != 0)
            fail_msg("%s=%s:\n  got  %s\n  want %s", cases[i].key, cases[i].value, msg,
                     cases[i].msg);
        assert_memory_equal(&p, &before, sizeof p); /* untouched on error */
    }
}

static void test_integer_json_accepted_for_reals(void **state)
{
    (void)state;
    trial_params p;
    params_defaults(&p);
    char msg[128];
    assert_int_equal(set_text(&p, "lr", "1", msg, sizeof msg), 0);
    assert_true(p.lr == 1.0);
    assert_int_equal(set_text(&p, "weight_decay", "0", msg, sizeof msg), 0);
    assert_true(p.weight_decay == 0.0);
}

static void test_non_finite_rejected(void **state)
{
    (void)state;
    /* jansson cannot produce NaN/inf from text; a struct can still hold them. */
    trial_params p;
    params_defaults(&p);
    char msg[128];
    p.lr = INFINITY;
    assert_int_equal(params_check(&p, "fixed", msg, sizeof msg), ERR_RANGE);
    assert_string_equal(msg, "fixed.lr: expected a finite number");
    params_defaults(&p);
    p.dropout = NAN;
    assert_int_equal(params_check(&p, "", msg, sizeof msg), ERR_RANGE);
    assert_string_equal(msg, "dropout: expected a finite number");
    /* And text that overflows a double never parses. */
    assert_null(jx_parse("{\"lr\": 1e400}", 13, msg, sizeof msg));
}

static void test_check_warmup_less_than_epochs(void **state)
{
    (void)state;
    trial_params p;
    params_defaults(&p);
    char msg[128];
    p.warmup_epochs = 5;
    assert_int_equal(params_check(&p, "trial.params", msg, sizeof msg), ERR_RANGE);
    assert_string_equal(msg, "trial.params.warmup_epochs: must be less than epochs (5), got 5");
    p.warmup_epochs = 4;
    assert_int_equal(params_check(&p, "trial.params", msg, sizeof msg), 0);
}

static void test_check_ranges_of_c_structs(void **state)
{
    (void)state;
    trial_params p;
    char msg[128];
    params_defaults(&p);
    p.batch_size = 0;
    assert_int_equal(params_check(&p, "params", msg, sizeof msg), ERR_RANGE);
    assert_string_equal(msg, "params.batch_size: expected an integer from 1 to 65536, got 0");
    params_defaults(&p);
    p.lr = -1;
    assert_int_equal(params_check(&p, "", msg, sizeof msg), ERR_RANGE);
    assert_string_equal(msg, "lr: expected a number > 0, got -1");
    params_defaults(&p);
    p.optimizer = (optim_kind)9;
    assert_int_equal(params_check(&p, "", msg, sizeof msg), ERR_RANGE);
}

static void test_from_json_full(void **state)
{
    (void)state;
    json_t *o = parse("{\"lr\": 0.001, \"batch_size\": 16, \"epochs\": 3, \"freeze\": \"all\", "
                      "\"optimizer\": \"adam\", \"augment\": true}");
    trial_params p;
    char msg[128];
    assert_int_equal(params_from_json(&p, o, "params", msg, sizeof msg), 0);
    assert_true(p.lr == 0.001);
    assert_int_equal(p.batch_size, 16);
    assert_int_equal(p.epochs, 3);
    assert_int_equal(p.freeze, FREEZE_ALL);
    assert_int_equal(p.optimizer, OPTIM_ADAM);
    assert_true(p.augment);
    assert_true(p.momentum == 0.9); /* default kept */
    json_decref(o);
}

static void test_from_json_null_and_empty_give_defaults(void **state)
{
    (void)state;
    trial_params p, d;
    params_defaults(&d);
    char msg[128];
    assert_int_equal(params_from_json(&p, NULL, "params", msg, sizeof msg), 0);
    assert_memory_equal(&p, &d, sizeof p);
    json_t *o = json_object();
    assert_int_equal(params_from_json(&p, o, "params", msg, sizeof msg), 0);
    assert_memory_equal(&p, &d, sizeof p);
    json_decref(o);
}

static void test_from_json_errors(void **state)
{
    (void)state;
    trial_params p;
    char msg[128];
    json_t *o = parse("{\"lr\": 0.1, \"zz\": 1, \"dropouts\": 0.5}");
    assert_int_equal(params_from_json(&p, o, "fixed", msg, sizeof msg), ERR_UNKNOWN_KEY);
    assert_string_equal(msg, "fixed.dropouts: unknown key; did you mean dropout?");
    json_decref(o);
    o = parse("{\"epochs\": 3, \"warmup_epochs\": 3}");
    assert_int_equal(params_from_json(&p, o, "fixed", msg, sizeof msg), ERR_RANGE);
    assert_string_equal(msg, "fixed.warmup_epochs: must be less than epochs (3), got 3");
    json_decref(o);
    o = parse("{\"batch_size\": true}");
    assert_int_equal(params_from_json(&p, o, "params", msg, sizeof msg), ERR_TYPE);
    assert_string_equal(msg, "params.batch_size: expected an integer, got true");
    json_decref(o);
    o = parse("[1]");
    assert_int_equal(params_from_json(&p, o, "params", msg, sizeof msg), ERR_TYPE);
    json_decref(o);
}

static void test_to_json_all_keys_canonical(void **state)
{
    (void)state;
    trial_params p;
    params_defaults(&p);
    json_t *o = params_to_json(&p);
    assert_non_null(o);
    char *s = jx_dump_line(o);
    assert_string_equal(s, "{\"lr\":0.01,\"batch_size\":32,\"epochs\":5,\"dropout\":0.0,"
                           "\"weight_decay\":0.0,\"l1\":0.0,\"momentum\":0.9,\"optimizer\":\"sgd\","
                           "\"freeze\":\"none\",\"augment\":false,\"lr_schedule\":\"constant\","
                           "\"warmup_epochs\":0,\"nesterov\":false,\"label_smoothing\":0.0}");
    free(s);
    json_decref(o);
}

static void test_to_json_round_trip(void **state)
{
    (void)state;
    trial_params p, q;
    params_defaults(&p);
    p.lr = 0.0031622776601683794;
    p.batch_size = 7;
    p.epochs = 9;
    p.dropout = 0.25;
    p.weight_decay = 5e-4;
    p.l1 = 1e-7;
    p.momentum = 0.5;
    p.optimizer = OPTIM_ADAMW;
    p.freeze = FREEZE_STEM;
    p.augment = AUGMENT_LIGHT;
    p.lr_schedule = SCHED_STEP;
    p.warmup_epochs = 2;
    p.nesterov = true;
    p.label_smoothing = 0.05;
    json_t *o = params_to_json(&p);
    char *s = jx_dump_line(o);
    char msg[128];
    json_t *back = jx_parse(s, strlen(s), msg, sizeof msg);
    assert_non_null(back);
    assert_int_equal(params_from_json(&q, back, "params", msg, sizeof msg), 0);
    assert_memory_equal(&p, &q, sizeof p);
    assert_string_equal(json_string_value(json_object_get(o, "freeze")), "stem");
    assert_string_equal(json_string_value(json_object_get(o, "augment")), "light");
    p.augment = AUGMENT_ERASE;
    json_t *er = params_to_json(&p);
    assert_string_equal(json_string_value(json_object_get(er, "augment")), "erase");
    json_decref(er);
    p.augment = AUGMENT_FULL; // true and false stay JSON booleans
    json_t *full = params_to_json(&p);
    assert_true(json_is_true(json_object_get(full, "augment")));
    json_decref(full);
    free(s);
    json_decref(back);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_keys_list),
        cmocka_unit_test(test_set_each_key),
        cmocka_unit_test(test_all_choice_names),
        cmocka_unit_test(test_rejections_name_path_and_value),
        cmocka_unit_test(test_integer_json_accepted_for_reals),
        cmocka_unit_test(test_non_finite_rejected),
        cmocka_unit_test(test_check_warmup_less_than_epochs),
        cmocka_unit_test(test_check_ranges_of_c_structs),
        cmocka_unit_test(test_from_json_full),
        cmocka_unit_test(test_from_json_null_and_empty_give_defaults),
        cmocka_unit_test(test_from_json_errors),
        cmocka_unit_test(test_to_json_all_keys_canonical),
        cmocka_unit_test(test_to_json_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
