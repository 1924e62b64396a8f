/* Tests for common/jsonx.c: typed getters and their path-naming messages,
 * unknown keys, strict parsing, describing values and one-line dumps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "errors.h"
#include "jsonx.h"

#include <stdlib.h>
#include <string.h>

static json_t *parse(const char *s)
{
    char msg[256];
    json_t *v = jx_parse(s, strlen(s), msg, sizeof msg);
    if (!v) fail_msg("parse failed: %s", msg);
    return v;
}

static void test_paths(void **state)
{
    (void)state;
    char b[64];
    jx_path_key(b, sizeof b, "", "lr");
    assert_string_equal(b, "lr");
    jx_path_key(b, sizeof b, NULL, "lr");
    assert_string_equal(b, "lr");
    jx_path_key(b, sizeof b, "space", "lr");
    assert_string_equal(b, "space.lr");
    jx_path_index(b, sizeof b, "space.lr", 2);
    assert_string_equal(b, "space.lr[2]");
    jx_path_key(b, 6, "space", "lr");
    assert_string_equal(b, "space");
}

static void test_describe(void **state)
{
    (void)state;
    json_t *v = parse("[\"abc\", 3, 3.5, 0.1, 2.0, true, false, null, {}, [], \"a\\\"b\\n\"]");
    const char *want[] = {"\"abc\"", "3",    "3.5",       "0.1",      "2.0",          "true",
                          "false",   "null", "an object", "an array", "\"a\\\"b\\n\""};
    char b[64];
    for (size_t i = 0; i < 11; i++) {
        jx_describe(json_array_get(v, i), b, sizeof b);
        assert_string_equal(b, want[i]);
    }
    json_decref(v);
}

static void test_describe_truncates_long_strings(void **state)
{
    (void)state;
    char big[300];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    json_t *s = json_string(big);
    char b[20];
    jx_describe(s, b, sizeof b);
    assert_int_equal(strlen(b), 19);
    assert_int_equal(b[0], '"');
    assert_string_equal(b + 15, "...\"");
    json_decref(s);
    /* Multibyte characters are not cut in half. */
    json_t *u = json_string("ééééééééééééé");
    jx_describe(u, b, sizeof b);
    size_t l = strlen(b);
    assert_string_equal(b + l - 4, "...\"");
    for (size_t i = 1; i < l - 4; i += 2)
        assert_int_equal((unsigned char)b[i], 0xC3);
    json_decref(u);
}

static void test_number_messages(void **state)
{
    (void)state;
    json_t *v = parse("{\"lr\": [0.1, 0.01, \"abc\", true, null]}");
    json_t *arr = json_object_get(v, "lr");
    char msg[128];
    double d = -1;
    assert_int_equal(jx_as_number(json_array_get(arr, 0), "space.lr[0]", &d, msg, sizeof msg), 0);
    assert_true(d == 0.1);
    d = -1;
    assert_int_equal(jx_as_number(json_array_get(arr, 2), "space.lr[2]", &d, msg, sizeof msg),
                     ERR_TYPE);
    assert_string_equal(msg, "space.lr[2]: expected a number, got \"abc\"");
    assert_true(d == -1);
    assert_int_equal(jx_as_number(json_array_get(arr, 3), "space.lr[3]", &d, msg, sizeof msg),
                     ERR_TYPE);
    assert_string_equal(msg, "space.lr[3]: expected a number, got true");
    assert_int_equal(jx_as_number(json_array_get(arr, 4), "space.lr[4]", &d, msg, sizeof msg),
                     ERR_TYPE);
    assert_string_equal(msg, "space.lr[4]: expected a number, got null");
    json_decref(v);
}

static void test_integers_are_numbers(void **state)
{
    (void)state;
    json_t *v = json_integer(7);
    double d = 0;
    char msg[64];
    assert_int_equal(jx_as_number(v, "x", &d, msg, sizeof msg), 0);
    assert_true(d == 7.0);
    json_decref(v);
}

static void test_int_rules(void **state)
{
    (void)state;
    json_t *v = parse("[32, 32.0, 3.5, \"32\", false, 1e300, -4, 9223372036854775807]");
    char msg[128];
    int64_t x = 0;
    assert_int_equal(jx_as_int(json_array_get(v, 0), "a", 1, 100, &x, msg, sizeof msg), 0);
    assert_int_equal(x, 32);
    x = 0;
    assert_int_equal(jx_as_int(json_array_get(v, 1), "a", 1, 100, &x, msg, sizeof msg), 0);
    assert_int_equal(x, 32);
    assert_int_equal(
        jx_as_int(json_array_get(v, 2), "model.input_size", 1, 100, &x, msg, sizeof msg), ERR_TYPE);
    assert_string_equal(msg, "model.input_size: expected an integer, got 3.5");
    assert_int_equal(jx_as_int(json_array_get(v, 3), "a", 1, 100, &x, msg, sizeof msg), ERR_TYPE);
    assert_string_equal(msg, "a: expected an integer, got \"32\"");
    assert_int_equal(jx_as_int(json_array_get(v, 4), "a", 1, 100, &x, msg, sizeof msg), ERR_TYPE);
    assert_int_equal(
        jx_as_int(json_array_get(v, 5), "a", INT64_MIN, INT64_MAX, &x, msg, sizeof msg), ERR_TYPE);
    assert_int_equal(jx_as_int(json_array_get(v, 6), "batch", 1, 100, &x, msg, sizeof msg),
                     ERR_RANGE);
    assert_string_equal(msg, "batch: expected an integer from 1 to 100, got -4");
    assert_int_equal(
        jx_as_int(json_array_get(v, 7), "a", INT64_MIN, INT64_MAX, &x, msg, sizeof msg), 0);
    assert_int_equal(x, INT64_MAX);
    json_decref(v);
}

static void test_bool_and_string(void **state)
{
    (void)state;
    json_t *v = parse("{\"a\": true, \"b\": 1, \"c\": \"x\", \"d\": 2}");
    char msg[128];
    bool b = false;
    assert_int_equal(jx_get_bool(v, "fixed", "a", true, &b, msg, sizeof msg), 0);
    assert_true(b);
    assert_int_equal(jx_get_bool(v, "fixed", "b", true, &b, msg, sizeof msg), ERR_TYPE);
    assert_string_equal(msg, "fixed.b: expected true or false, got 1");
    const char *s = NULL;
    assert_int_equal(jx_get_string(v, "", "c", true, false, &s, msg, sizeof msg), 0);
    assert_string_equal(s, "x");
    assert_int_equal(jx_get_string(v, "", "d", true, false, &s, msg, sizeof msg), ERR_TYPE);
    assert_string_equal(msg, "d: expected a string, got 2");
    json_decref(v);
}

static void test_absent_and_required(void **state)
{
    (void)state;
    json_t *v = parse("{\"present\": 1}");
    char msg[128];
    double d = 42;
    assert_int_equal(jx_get_number(v, "job", "missing", false, &d, msg, sizeof msg), JX_ABSENT);
    assert_true(d == 42);
    assert_int_equal(jx_get_number(v, "job", "missing", true, &d, msg, sizeof msg), ERR_NOTFOUND);
    assert_string_equal(msg, "job.missing: required key is missing");
    int64_t i = 5;
    assert_int_equal(jx_get_int(v, "job", "missing", false, 0, 10, &i, msg, sizeof msg), JX_ABSENT);
    assert_int_equal(i, 5);
    assert_int_equal(jx_get_int(v, "job", "present", true, 0, 10, &i, msg, sizeof msg), 0);
    assert_int_equal(i, 1);
    json_decref(v);
}

static void test_null_handling(void **state)
{
    (void)state;
    json_t *v = parse("{\"val\": null, \"n\": null}");
    char msg[128];
    const char *s = "untouched";
    assert_int_equal(jx_get_string(v, "data", "val", false, true, &s, msg, sizeof msg), JX_ABSENT);
    assert_string_equal(s, "untouched");
    /* required + allow_null: present-but-null is accepted as absent... */
    assert_int_equal(jx_get_string(v, "data", "val", true, true, &s, msg, sizeof msg), JX_ABSENT);
    /* ...but missing is still an error. */
    assert_int_equal(jx_get_string(v, "model", "weights", true, true, &s, msg, sizeof msg),
                     ERR_NOTFOUND);
    assert_string_equal(msg, "model.weights: required key is missing");
    assert_int_equal(jx_get_string(v, "data", "val", false, false, &s, msg, sizeof msg), ERR_TYPE);
    assert_string_equal(msg, "data.val: expected a string, got null");
    double d;
    assert_int_equal(jx_get_number(v, "", "n", false, &d, msg, sizeof msg), ERR_TYPE);
    json_decref(v);
}

static void test_object_and_array_getters(void **state)
{
    (void)state;
    json_t *v = parse("{\"model\": {\"arch\": \"resnet18\"}, \"space\": {\"lr\": [1]}, "
                      "\"bad\": [], \"worse\": 3}");
    char msg[128];
    json_t *o = NULL, *a = NULL;
    assert_int_equal(jx_get_object(v, "", "model", true, &o, msg, sizeof msg), 0);
    assert_string_equal(json_string_value(json_object_get(o, "arch")), "resnet18");
    assert_int_equal(jx_get_object(v, "", "bad", true, &o, msg, sizeof msg), ERR_TYPE);
    assert_string_equal(msg, "bad: expected an object, got an array");
    json_t *space = json_object_get(v, "space");
    assert_int_equal(jx_get_array(space, "space", "lr", true, &a, msg, sizeof msg), 0);
    assert_int_equal(json_array_size(a), 1);
    assert_int_equal(jx_get_array(v, "", "worse", true, &a, msg, sizeof msg), ERR_TYPE);
    assert_string_equal(msg, "worse: expected an array, got 3");
    assert_int_equal(jx_get_array(v, "", "none", false, &a, msg, sizeof msg), JX_ABSENT);
    /* Getter on a non-object container. */
    json_t *n = json_integer(1);
    assert_int_equal(jx_get_number(n, "job.data", "x", false, NULL, msg, sizeof msg), ERR_TYPE);
    assert_string_equal(msg, "job.data: expected an object, got 1");
    json_decref(n);
    json_decref(v);
}

static void test_enum(void **state)
{
    (void)state;
    static const char *const opts[] = {"sgd", "adam", NULL};
    json_t *v = parse("[\"adam\", \"x\", 3]");
    char msg[128];
    assert_int_equal(jx_as_enum(json_array_get(v, 0), "fixed.optimizer", opts, msg, sizeof msg), 1);
    assert_true(jx_as_enum(json_array_get(v, 1), "fixed.optimizer", opts, msg, sizeof msg) < 0);
    assert_string_equal(msg, "fixed.optimizer: expected one of sgd, adam, got \"x\"");
    assert_int_equal(jx_as_enum(json_array_get(v, 2), "o", opts, msg, sizeof msg), ERR_TYPE);
    assert_string_equal(msg, "o: expected one of sgd, adam, got 3");
    json_decref(v);
}

/* jx_nearest: a typo's nearest known name, within 1 edit for short keys, 2 up
 * to 8 bytes, 3 beyond; swaps of neighbours count as one edit. */
static void test_nearest_known_name(void **state)
{
    (void)state;
    static const char *const known[] = {"lr",        "batch_size",  "epochs", "dropout",
                                        "optimizer", "lr_schedule", "freeze", NULL};
    static const struct {
        const char *key, *want; // want NULL: no suggestion
    } cases[] = {
        {"epoch", "epochs"},
        {"epcohs", "epochs"},
        {"batchsize", "batch_size"},
        {"Batch_Size", "batch_size"},
        {"lr_shcedule", "lr_schedule"},
        {"rl", "lr"},
        {"frezee", "freeze"},
        {"l", "lr"},
        {"seed", NULL},
        {"x", NULL},
        {"momentum", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = jx_nearest(cases[i].key, known);
        if (!cases[i].want ? got != NULL : !got || strcmp(got, cases[i].want))
            fail_msg("%s: got %s, want %s", cases[i].key, got ? got : "NULL",
                     cases[i].want ? cases[i].want : "NULL");
    }
    char longkey[80];
    memset(longkey, 'a', sizeof longkey - 1);
    longkey[79] = 0;
    assert_null(jx_nearest(longkey, known));
    char msg[128];
    assert_int_equal(jx_unknown_key("fixed.epoch", "epoch", known, msg, sizeof msg),
                     ERR_UNKNOWN_KEY);
    assert_string_equal(msg, "fixed.epoch: unknown key; did you mean epochs?");
    assert_int_equal(jx_unknown_key("space.seed", "seed", known, msg, sizeof msg), ERR_UNKNOWN_KEY);
    assert_string_equal(msg, "space.seed: unknown key");
}

static void test_check_keys_sorted_first(void **state)
{
    (void)state;
    static const char *const allowed[] = {"lr", "momentum", "optimizer", NULL};
    json_t *v = parse("{\"zeta\": 1, \"lr\": 1, \"optimiser\": \"sgd\", \"beta\": 2}");
    char msg[128];
    assert_int_equal(jx_check_keys(v, "fixed", allowed, msg, sizeof msg), ERR_UNKNOWN_KEY);
    assert_string_equal(msg, "fixed.beta: unknown key");
    json_object_del(v, "beta");
    assert_int_equal(jx_check_keys(v, "fixed", allowed, msg, sizeof msg), ERR_UNKNOWN_KEY);
    assert_string_equal(msg, "fixed.optimiser: unknown key; did you mean optimizer?");
    json_object_del(v, "optimiser");
    json_object_del(v, "zeta");
    assert_int_equal(jx_check_keys(v, "fixed", allowed, msg, sizeof msg), 0);
    json_t *empty = json_object();
    assert_int_equal(jx_check_keys(empty, "", allowed, msg, sizeof msg), 0);
    json_t *arr = json_array();
    assert_int_equal(jx_check_keys(arr, "fixed", allowed, msg, sizeof msg), ERR_TYPE);
    json_decref(arr);
    json_decref(empty);
    json_decref(v);
}

static void test_parse_errors_have_position(void **state)
{
    (void)state;
    char msg[256];
    const char *t1 = "{\"a\": 1,\n \"b\": }";
    assert_null(jx_parse(t1, strlen(t1), msg, sizeof msg));
    assert_int_equal(strncmp(msg, "line 2 column ", 14), 0);
    const char *t2 = "{\"lr\": 1,\n  \"lr\": 2}";
    assert_null(jx_parse(t2, strlen(t2), msg, sizeof msg));
    assert_non_null(strstr(msg, "line 2"));
    assert_non_null(strstr(msg, "duplicate"));
    const char *t3 = "{\"x\": NaN}";
    assert_null(jx_parse(t3, strlen(t3), msg, sizeof msg));
    assert_int_equal(strncmp(msg, "line 1 column ", 14), 0);
    const char *t4 = "{\"x\": Infinity}";
    assert_null(jx_parse(t4, strlen(t4), msg, sizeof msg));
    const char *t5 = "{\"x\": 1e999}";
    assert_null(jx_parse(t5, strlen(t5), msg, sizeof msg));
    assert_non_null(strstr(msg, "overflow"));
    const char *t6 = "{} {}";
    assert_null(jx_parse(t6, strlen(t6), msg, sizeof msg));
    assert_null(jx_parse("", 0, msg, sizeof msg));
    assert_null(jx_parse(NULL, 0, msg, sizeof msg));
}

static void test_parse_nested_duplicates_and_scalars(void **state)
{
    (void)state;
    char msg[256];
    const char *t = "{\"a\": {\"k\": 1, \"k\": 2}}";
    assert_null(jx_parse(t, strlen(t), msg, sizeof msg));
    json_t *v = jx_parse("42", 2, msg, sizeof msg);
    assert_non_null(v);
    assert_int_equal(json_integer_value(v), 42);
    json_decref(v);
    /* Only LEN bytes are read. */
    v = jx_parse("[1]garbage", 3, msg, sizeof msg);
    assert_non_null(v);
    json_decref(v);
}

static void test_dump_line(void **state)
{
    (void)state;
    json_t *v =
        parse("{\"z\": 1, \"a\": [0.1, 2.0, 1e-5, -3, 1.5e300], \"s\": \"q\\\"\\n\\u0001é\","
              " \"t\": true, \"n\": null, \"o\": {}}");
    char *s = jx_dump_line(v);
    assert_non_null(s);
    assert_string_equal(s, "{\"z\":1,\"a\":[0.1,2.0,1e-05,-3,1.5e+300],\"s\":\"q\\\"\\n\\u0001é\","
                           "\"t\":true,\"n\":null,\"o\":{}}");
    assert_null(strchr(s, '\n'));
    /* Round trip is exact. */
    json_t *back = parse(s);
    assert_true(json_equal(v, back));
    free(s);
    json_decref(back);
    json_decref(v);
}

static void test_dump_real_round_trips_exactly(void **state)
{
    (void)state;
    const double vals[] = {0.1,    1.0 / 3.0,     0.0031622776601683794,
                           1e-300, 123456789.125, 2.0 / 7.0 * 1e-7};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        json_t *r = json_real(vals[i]);
        char *s = jx_dump_line(r);
        char msg[64];
        json_t *back = jx_parse(s, strlen(s), msg, sizeof msg);
        assert_non_null(back);
        assert_true(json_is_real(back));
        assert_true(json_real_value(back) == vals[i]);
        free(s);
        json_decref(back);
        json_decref(r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_describe_truncates_long_strings),
        cmocka_unit_test(test_number_messages),
        cmocka_unit_test(test_integers_are_numbers),
        cmocka_unit_test(test_int_rules),
        cmocka_unit_test(test_bool_and_string),
        cmocka_unit_test(test_absent_and_required),
        cmocka_unit_test(test_null_handling),
        cmocka_unit_test(test_object_and_array_getters),
        cmocka_unit_test(test_enum),
        cmocka_unit_test(test_check_keys_sorted_first),
        cmocka_unit_test(test_nearest_known_name),
        cmocka_unit_test(test_parse_errors_have_position),
        cmocka_unit_test(test_parse_nested_duplicates_and_scalars),
        cmocka_unit_test(test_dump_line),
        cmocka_unit_test(test_dump_real_round_trips_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
