/* Tests for daemon/events_check.c: the contract check of worker events.
 * A well-behaved run (real worker shapes, resumed starts, a replay with
 * several attempts) passes; each kind of lie fails with a reason naming the
 * field: unknown events, missing fields, wrong types, values out of range
 * (epoch 99999 of 3, val_accuracy 2.5 and "abc", negative and huge losses),
 * the order (events before start, epochs going back, done before the last
 * epoch, anything after done), the fault rules (EVENTS_CHECK_FAULT_LIMIT
 * invalid events or one bad done) and the log excerpt (cut, escaped). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "events_check.h"
#include "jsonx.h"

#define TRIAL 7

/* Judges the JSON TEXT (NULL: a line that is not JSON) with C; returns the
 * result, the reason in WHY. */
static int judge(events_check *c, const char *text, char *why, size_t n)
{
    why[0] = 0;
    json_t *ev = text ? jx_parse(text, strlen(text), NULL, 0) : NULL;
    int rc = events_check_event(c, ev, why, n);
    json_decref(ev);
    return rc;
}

/* Asserts TEXT is valid for C. */
static void good(events_check *c, const char *text)
{
    char why[512];
    int rc = judge(c, text, why, sizeof why);
    if (rc) fail_msg("rejected %s: %s", text, why);
}

/* Asserts TEXT is invalid for C with a reason containing WANT. */
static void bad(events_check *c, const char *text, const char *want)
{
    char why[512];
    int rc = judge(c, text, why, sizeof why);
    if (rc != ERR_INVALID) fail_msg("accepted %s (want a reason with \"%s\")", text, want);
    if (!strstr(why, want)) fail_msg("%s: reason \"%s\" lacks \"%s\"", text, why, want);
}

/* Asserts TEXT is invalid, with a reason containing WANT, for a fresh
 * check of a 3-epoch trial (after a valid start when STARTED): one invalid
 * event each, far from the fault limit. */
static void bad_fresh(bool started, const char *text, const char *want);

#define START                                                                                      \
    "{\"event\":\"start\",\"t\":0.1,\"trial\":7,\"params\":{\"epochs\":3},"                        \
    "\"train_images\":100,\"val_images\":20,\"classes\":2,\"blas_core\":\"Haswell\"}"
#define EPOCH(e, acc)                                                                              \
    "{\"event\":\"epoch\",\"t\":1,\"epoch\":" #e ",\"train_loss\":0.5,\"train_accuracy\":0.7,"     \
    "\"val_loss\":0.6,\"val_accuracy\":" acc ",\"val_precision\":0.7,\"val_recall\":0.7,"          \
    "\"val_f1\":0.7,\"lr\":0.01,\"seconds\":0.5}"
#define DONE(best)                                                                                 \
    "{\"event\":\"done\",\"t\":2,\"best_epoch\":" #best ",\"val_accuracy\":0.8,"                   \
    "\"val_loss\":0.4,\"val_precision\":0.8,\"val_recall\":0.8,\"val_f1\":0.8,\"epochs\":3,"       \
    "\"objective\":{\"metric\":\"val_accuracy\",\"goal\":\"maximize\",\"value\":0.8}}"
#define PROGRESS(e, s, n)                                                                          \
    "{\"event\":\"progress\",\"t\":0.5,\"epoch\":" #e ",\"step\":" #s ",\"steps\":" #n             \
    ",\"loss\":1.2,\"images_per_s\":300}"
#define CKPT(e) "{\"event\":\"checkpoint\",\"t\":1,\"epoch\":" #e ",\"path\":\"/x/ckpt\"}"

static void bad_fresh(bool started, const char *text, const char *want)
{
    events_check c;
    events_check_init(&c, TRIAL, 3, false);
    if (started) good(&c, START);
    bad(&c, text, want);
    assert_int_equal(c.last_epoch, 0); // an invalid epoch does not move the attempt on
    assert_false(c.faulty);
}

/* A whole run as the real worker writes it. */
static void test_good_run(void **state)
{
    (void)state;
    events_check c;
    events_check_init(&c, TRIAL, 3, false);
    good(&c, START);
    for (int e = 1; e <= 3; e++) {
        char p[256], ep[512], ck[128];
        snprintf(p, sizeof p,
                 "{\"event\":\"progress\",\"t\":0.5,\"epoch\":%d,\"step\":4,\"steps\":4,"
                 "\"loss\":0,\"images_per_s\":0}",
                 e);
        snprintf(ep, sizeof ep,
                 "{\"event\":\"epoch\",\"t\":1,\"epoch\":%d,\"train_loss\":0,\"train_accuracy\":1,"
                 "\"val_loss\":0,\"val_accuracy\":0,\"val_precision\":1,\"val_recall\":0.5,"
                 "\"val_f1\":1,\"lr\":0,\"seconds\":0,\"extra\":\"allowed\"}",
                 e);
        snprintf(ck, sizeof ck, "{\"event\":\"checkpoint\",\"t\":1,\"epoch\":%d,\"path\":\"p\"}",
                 e);
        good(&c, p);
        good(&c, ep);
        good(&c, ck);
    }
    assert_int_equal(c.last_epoch, 3);
    good(&c, DONE(2));
    assert_true(c.done);
    assert_int_equal(c.bad, 0);
    assert_false(c.faulty);
    assert_string_equal(c.fault, "");
}

/* An error may come before start (a bad spec); stopped after a checkpoint. */
static void test_error_and_stopped(void **state)
{
    (void)state;
    events_check c;
    events_check_init(&c, TRIAL, 3, false);
    good(&c, "{\"event\":\"error\",\"t\":0,\"code\":\"spec\",\"exit_code\":2,\"message\":\"m\"}");
    good(&c, START);
    good(&c, EPOCH(1, "0.5"));
    good(&c, "{\"event\":\"checkpoint\",\"t\":1,\"epoch\":1,\"path\":\"p\",\"step\":3}");
    good(&c, "{\"event\":\"stopped\",\"t\":1,\"signal\":\"SIGTERM\",\"epoch\":1,\"step\":3,"
             "\"checkpoint\":\"p\"}");
    bad(&c, "{\"event\":\"error\",\"t\":0,\"code\":\"spec\",\"message\":\"\"}",
        "error event: message: expected a non-empty string");
    bad(&c, "{\"event\":\"error\",\"t\":0,\"message\":\"m\"}", "error event: code is missing");
    bad(&c, "{\"event\":\"stopped\",\"t\":1,\"epoch\":4}", "stopped event: epoch");
}

/* The hostile events of issue #21. */
static void test_values_out_of_range(void **state)
{
    (void)state;
    bad_fresh(true, EPOCH(99999, "0.5"),
              "epoch event: epoch: expected an integer from 1 to 3, got 99999");
    bad_fresh(true, EPOCH(1, "2.5"),
              "epoch event: val_accuracy: expected a number from 0 to 1, got 2.5");
    bad_fresh(true, EPOCH(1, "\"abc\""),
              "epoch event: val_accuracy: expected a number from 0 to 1, got \"abc\"");
    bad_fresh(true, EPOCH(1, "-0.1"), "val_accuracy");
    bad_fresh(true, EPOCH(1, "null"), "epoch event: val_accuracy: expected a number");
    bad_fresh(true, EPOCH(0, "0.5"), "epoch: expected an integer from 1 to 3, got 0");
    bad_fresh(true, EPOCH(1.0, "0.5"), "epoch: expected an integer from 1 to 3, got 1.0");
    bad_fresh(true, EPOCH("1", "0.5"), "got \"1\"");
    bad_fresh(true,
              "{\"event\":\"epoch\",\"t\":1,\"epoch\":1,\"train_loss\":-1,\"train_accuracy\":0.7,"
              "\"val_loss\":0.6,\"val_accuracy\":0.5,\"val_precision\":0.7,\"val_recall\":0.7,"
              "\"val_f1\":0.7,\"lr\":0.01,\"seconds\":0.5}",
              "train_loss: expected a finite number >= 0, got -1");
    bad_fresh(true,
              "{\"event\":\"epoch\",\"t\":1,\"epoch\":1,\"train_loss\":1,\"train_accuracy\":0.7,"
              "\"val_loss\":0.6,\"val_accuracy\":0.5,\"val_precision\":0.7,\"val_recall\":0.7,"
              "\"val_f1\":1.5,\"lr\":0.01,\"seconds\":0.5}",
              "val_f1");
    bad_fresh(true,
              "{\"event\":\"epoch\",\"t\":1,\"epoch\":1,\"train_loss\":1,\"train_accuracy\":0.7,"
              "\"val_loss\":0.6,\"val_accuracy\":0.5,\"val_precision\":0.7,\"val_recall\":0.7,"
              "\"val_f1\":0.5,\"lr\":-0.01,\"seconds\":0.5}",
              "lr: expected a finite number >= 0");
    bad_fresh(true,
              "{\"event\":\"epoch\",\"t\":1,\"epoch\":1,\"train_loss\":1,\"train_accuracy\":0.7,"
              "\"val_loss\":0.6,\"val_accuracy\":0.5,\"val_precision\":0.7,\"val_recall\":0.7,"
              "\"val_f1\":0.5,\"lr\":0.01,\"seconds\":-3}",
              "seconds");
    bad_fresh(true, "{\"event\":\"epoch\",\"t\":1,\"epoch\":1}",
              "epoch event: train_loss is missing");
    bad_fresh(true, PROGRESS(1, 5, 4), "progress event: step 5 of 4 steps");
    bad_fresh(true, PROGRESS(1, 1, 0), "progress event: steps: expected an integer >= 1, got 0");
    bad_fresh(true, PROGRESS(4, 1, 4), "progress event: epoch: expected an integer from 1 to 3");
    bad_fresh(true,
              "{\"event\":\"progress\",\"t\":-1,\"epoch\":1,\"step\":1,\"steps\":1,\"loss\":1,"
              "\"images_per_s\":1}",
              "progress event: t: expected a finite number >= 0, got -1");
    bad_fresh(true,
              "{\"event\":\"progress\",\"epoch\":1,\"step\":1,\"steps\":1,\"loss\":1,"
              "\"images_per_s\":1}",
              "progress event: t is missing");
    bad_fresh(true, "{\"event\":\"checkpoint\",\"t\":1,\"epoch\":1,\"path\":\"\"}",
              "checkpoint event: path: expected a non-empty string");
    bad_fresh(true, "{\"event\":\"checkpoint\",\"t\":1,\"epoch\":9,\"path\":\"p\"}",
              "checkpoint event: epoch: expected an integer from 0 to 3, got 9");
}

static void test_names_and_shapes(void **state)
{
    (void)state;
    events_check c;
    events_check_init(&c, TRIAL, 3, false);
    char big[400], why[512];
    bad_fresh(false, NULL, "not a JSON object");
    bad_fresh(false, "[1,2]", "not a JSON object");
    bad_fresh(false, "{\"t\":1}", "no \"event\" name");
    bad_fresh(false, "{\"event\":5}", "no \"event\" name");
    bad_fresh(false, "{\"event\":\"hacked\",\"t\":1}", "unknown event \"hacked\"");
    bad_fresh(false, "{\"event\":\"\\u001b[31mred\",\"t\":1}", "unknown event \"\\u001B[31mred\"");
    /* A long value is cut in the reason. */
    snprintf(big, sizeof big, "{\"event\":\"%0300d\"}", 0);
    assert_int_equal(judge(&c, big, why, sizeof why), ERR_INVALID);
    assert_non_null(strstr(why, "..."));
    assert_true(strlen(why) < 100);
    bad_fresh(false,
              "{\"event\":\"start\",\"t\":0,\"trial\":8,\"params\":{},\"train_images\":1,"
              "\"val_images\":1,\"classes\":2}",
              "start event: trial: expected 7, got 8");
    bad_fresh(false,
              "{\"event\":\"start\",\"t\":0,\"trial\":7,\"params\":[],\"train_images\":1,"
              "\"val_images\":1,\"classes\":2}",
              "start event: params: expected an object");
    bad_fresh(false,
              "{\"event\":\"start\",\"t\":0,\"trial\":7,\"params\":{},\"train_images\":1,"
              "\"val_images\":1,\"classes\":0}",
              "start event: classes: expected an integer >= 1, got 0");
    bad_fresh(false,
              "{\"event\":\"start\",\"t\":0,\"trial\":7,\"params\":{},\"train_images\":1,"
              "\"val_images\":1,\"classes\":2,\"resumed\":{\"epoch\":-1}}",
              "start event: resumed: epoch: expected an integer from 0 to 3, got -1");
    assert_false(c.started);
    assert_int_equal(c.bad, 1);
}

static void test_order(void **state)
{
    (void)state;
    events_check c;
    events_check_init(&c, TRIAL, 3, false);
    bad(&c, EPOCH(1, "0.5"), "epoch event before start");
    bad(&c, PROGRESS(1, 1, 4), "progress event before start");
    bad(&c, CKPT(0), "checkpoint event before start");
    bad(&c, DONE(1), "done event before start");
    events_check_init(&c, TRIAL, 3, false); // the bad done made it faulty; a fresh one
    good(&c, START);
    bad(&c, START, "start event: a second start from one worker");
    good(&c, PROGRESS(1, 1, 4));
    good(&c, EPOCH(1, "0.5"));
    bad(&c, EPOCH(1, "0.5"), "epoch event: epoch 1 after epoch 1 (epochs must increase)");
    bad(&c, PROGRESS(1, 4, 4), "progress event: epoch 1, but epoch 1 is already finished");
    good(&c, EPOCH(3, "0.5")); // a gap is allowed, going back is not
    bad(&c, EPOCH(2, "0.5"), "epoch 2 after epoch 3");
    bad(&c,
        "{\"event\":\"done\",\"t\":2,\"best_epoch\":1,\"val_accuracy\":0.8,\"val_loss\":0.4,"
        "\"val_precision\":0.8,\"val_recall\":0.8,\"val_f1\":0.8,\"epochs\":4}",
        "done event: epochs: expected 3, got 4");
    assert_true(c.faulty); // a bad done is enough
    assert_string_equal(c.fault, "done event: epochs: expected 3, got 4");
    bad(&c, DONE(1), "from a worker already faulty");
    assert_false(c.done);
}

static void test_done_rules(void **state)
{
    (void)state;
    events_check c;
    events_check_init(&c, TRIAL, 3, false);
    good(&c, START);
    good(&c, EPOCH(1, "0.5"));
    bad(&c, DONE(1), "done event before the last epoch (1 of 3 finished)");
    assert_true(c.faulty);
    assert_string_equal(c.fault, "done event before the last epoch (1 of 3 finished)");
    assert_false(c.done);

    /* Done after the last epoch; nothing after it. */
    events_check_init(&c, TRIAL, 3, false);
    good(&c, START);
    good(&c, EPOCH(3, "0.5"));
    bad(&c, DONE(4), "done event: best_epoch: expected an integer from 1 to 3, got 4");
    events_check_init(&c, TRIAL, 3, false);
    good(&c, START);
    good(&c, EPOCH(3, "0.5"));
    bad(&c,
        "{\"event\":\"done\",\"t\":2,\"best_epoch\":1,\"val_accuracy\":0.8,\"val_loss\":0.4,"
        "\"val_precision\":0.8,\"val_recall\":0.8}",
        "done event: val_f1 is missing");
    events_check_init(&c, TRIAL, 3, false);
    good(&c, START);
    good(&c, EPOCH(3, "0.5"));
    good(&c, DONE(3));
    bad(&c, EPOCH(3, "0.5"), "epoch event after done");
    bad(&c, "{\"event\":\"error\",\"t\":0,\"code\":\"x\",\"message\":\"m\"}",
        "error event after done");
    bad(&c, DONE(3), "done event after done");
    assert_true(c.faulty);
    assert_true(c.done); // the first done stands

    /* Resumed after the last epoch: done without an epoch event. */
    events_check_init(&c, TRIAL, 3, false);
    good(&c, "{\"event\":\"start\",\"t\":0,\"trial\":7,\"params\":{},\"train_images\":1,"
             "\"val_images\":1,\"classes\":2,\"resumed\":{\"epoch\":3,\"step\":0}}");
    good(&c, DONE(2));
    /* Resumed in the middle: epochs go on after the resumed one. */
    events_check_init(&c, TRIAL, 3, false);
    good(&c, "{\"event\":\"start\",\"t\":0,\"trial\":7,\"params\":{},\"train_images\":1,"
             "\"val_images\":1,\"classes\":2,\"resumed\":{\"epoch\":2,\"step\":5}}");
    bad(&c, EPOCH(2, "0.5"), "epoch 2 after epoch 2");
    good(&c, EPOCH(3, "0.5"));
    good(&c, DONE(1));

    /* Epochs unknown: no upper bound, but done still needs an epoch. */
    events_check_init(&c, TRIAL, 0, false);
    good(&c, START);
    bad(&c, DONE(1), "done event before any epoch");
    events_check_init(&c, TRIAL, 0, false);
    good(&c, START);
    good(&c, EPOCH(40, "0.5"));
    bad(&c, DONE(41), "best_epoch 41 after the last finished epoch 40");
}

/* EVENTS_CHECK_FAULT_LIMIT invalid events make a worker faulty, with the
 * first reason; fewer do not. */
static void test_fault_limit(void **state)
{
    (void)state;
    events_check c;
    events_check_init(&c, TRIAL, 3, false);
    good(&c, START);
    bad(&c, EPOCH(99999, "0.5"), "99999");
    for (int i = 1; i < EVENTS_CHECK_FAULT_LIMIT - 1; i++) {
        bad(&c, "{\"event\":\"nope\",\"t\":1}", "unknown event");
        assert_false(c.faulty);
    }
    assert_string_equal(c.fault, "");
    good(&c, EPOCH(1, "0.5")); // valid events still pass below the limit
    bad(&c, "{\"event\":\"nope\",\"t\":1}", "unknown event");
    assert_true(c.faulty);
    assert_int_equal(c.bad, EVENTS_CHECK_FAULT_LIMIT);
    assert_string_equal(c.fault, "epoch event: epoch: expected an integer from 1 to 3, got 99999");
    bad(&c, EPOCH(2, "0.5"), "already faulty");
    bad(&c, START, "already faulty");
}

/* A replayed events file: each start begins an attempt with a clean slate. */
static void test_replay_attempts(void **state)
{
    (void)state;
    events_check c;
    events_check_init(&c, TRIAL, 3, true);
    good(&c, START);
    good(&c, EPOCH(1, "0.5"));
    good(&c, EPOCH(2, "0.5"));
    bad(&c, DONE(1), "before the last epoch");
    assert_true(c.faulty);
    good(&c, START); // the next attempt (the daemon had stopped before it judged the last)
    assert_false(c.faulty);
    assert_int_equal(c.last_epoch, 0);
    good(&c, EPOCH(1, "0.5"));
    good(&c, EPOCH(2, "0.5"));
    good(&c, EPOCH(3, "0.5"));
    good(&c, DONE(3));
    assert_true(c.done);
    good(&c, START); // a later attempt: not done any more
    assert_false(c.done);
    assert_int_equal(c.bad, 1);
}

static void test_epochs_from_params(void **state)
{
    (void)state;
    json_t *p = json_pack("{s:i, s:f}", "epochs", 12, "lr", 0.1);
    assert_int_equal(events_check_epochs(p), 12);
    json_decref(p);
    p = json_object(); // the default
    assert_int_equal(events_check_epochs(p), 5);
    json_decref(p);
    p = json_pack("{s:s}", "epochs", "many");
    assert_int_equal(events_check_epochs(p), 0);
    json_decref(p);
    assert_int_equal(events_check_epochs(NULL), 0);
}

static void test_excerpt(void **state)
{
    (void)state;
    char buf[1024];
    events_check_excerpt(buf, sizeof buf, "a\033[2Jb\nc", 8);
    assert_string_equal(buf, "a\\x1b[2Jb\\x0ac");
    char line[300];
    memset(line, 'x', sizeof line);
    memcpy(line + EVENTS_CHECK_EXCERPT - 1, "\xc3\xa9", 2); // é across the cut
    events_check_excerpt(buf, sizeof buf, line, sizeof line);
    assert_int_equal(strlen(buf), EVENTS_CHECK_EXCERPT - 1);
    events_check_excerpt(buf, sizeof buf, "{\"a\":1}", 7);
    assert_string_equal(buf, "{\"a\":1}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_run),
        cmocka_unit_test(test_error_and_stopped),
        cmocka_unit_test(test_values_out_of_range),
        cmocka_unit_test(test_names_and_shapes),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_done_rules),
        cmocka_unit_test(test_fault_limit),
        cmocka_unit_test(test_replay_attempts),
        cmocka_unit_test(test_epochs_from_params),
        cmocka_unit_test(test_excerpt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
