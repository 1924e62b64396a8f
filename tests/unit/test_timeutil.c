/* Tests for common/timeutil.c: ISO-8601 formatting and parsing, clocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "errors.h"
#include "timeutil.h"

#include <math.h>
#include <string.h>
#include <time.h>

static void test_format_epoch(void **state)
{
    (void)state;
    char buf[32];
    assert_string_equal(time_iso8601(buf, sizeof buf, 0), "1970-01-01T00:00:00.000Z");
}

static void test_format_known_instant(void **state)
{
    (void)state;
    char buf[32];
    /* 2026-11-28T15:04:05Z = 1795878245 (date -u -d ... +%s). */
    assert_string_equal(time_iso8601(buf, sizeof buf, 1795878245.123), "2026-11-28T15:04:05.123Z");
    assert_string_equal(time_iso8601(buf, sizeof buf, 1795878245.0), "2026-11-28T15:04:05.000Z");
}

static void test_format_truncates_milliseconds(void **state)
{
    (void)state;
    char buf[32];
    /* .9999 must not round up into the next second. */
    assert_string_equal(time_iso8601(buf, sizeof buf, 59.9999), "1970-01-01T00:00:59.999Z");
}

static void test_format_leap_day_and_negative(void **state)
{
    (void)state;
    char buf[32];
    /* 2024-02-29T12:00:00Z */
    assert_string_equal(time_iso8601(buf, sizeof buf, 1709208000.5), "2024-02-29T12:00:00.500Z");
    assert_string_equal(time_iso8601(buf, sizeof buf, -0.25), "1969-12-31T23:59:59.750Z");
}

static void test_format_small_buffer(void **state)
{
    (void)state;
    char buf[11];
    time_iso8601(buf, sizeof buf, 0);
    assert_string_equal(buf, "1970-01-01");
}

static void test_parse_round_trip(void **state)
{
    (void)state;
    double t;
    assert_int_equal(time_parse_iso8601("2026-11-28T15:04:05.123Z", &t), 0);
    assert_true(fabs(t - 1795878245.123) < 1e-6);
    char buf[32];
    assert_string_equal(time_iso8601(buf, sizeof buf, t), "2026-11-28T15:04:05.123Z");
}

static void test_parse_without_fraction(void **state)
{
    (void)state;
    double t = -1;
    assert_int_equal(time_parse_iso8601("1970-01-01T00:01:00Z", &t), 0);
    assert_true(t == 60.0);
    assert_int_equal(time_parse_iso8601("2024-02-29T12:00:00.5Z", &t), 0);
    assert_true(t == 1709208000.5);
}

static void test_parse_rejects_malformed(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "2026-11-28",
        "2026-11-28 15:04:05Z",
        "2026-11-28T15:04:05",       /* no Z */
        "2026-11-28T15:04:05.Z",     /* empty fraction */
        "2026-11-28T15:04:05.123Zx", /* trailing */
        "2026-13-01T00:00:00Z",      /* month */
        "2026-02-30T00:00:00Z",      /* day of month */
        "2025-02-29T00:00:00Z",      /* not a leap year */
        "2026-11-28T24:00:00Z",
        "2026-11-28T15:60:00Z",
        "2026-11-28T15:04:61Z",
        "26-11-28T15:04:05Z",
        "2026-1-28T15:04:05Z",
        "2026-11-28T15:04:05+01:00",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double t = 123;
        if (time_parse_iso8601(bad[i], &t) != ERR_PARSE) fail_msg("accepted \"%s\"", bad[i]);
        assert_true(t == 123); /* untouched */
    }
    assert_int_equal(time_parse_iso8601(NULL, NULL), ERR_PARSE);
}

static void test_now_is_parseable_and_current(void **state)
{
    (void)state;
    char buf[32];
    double before = time_wall();
    time_now_iso(buf, sizeof buf);
    double after = time_wall();
    assert_int_equal(strlen(buf), 24);
    double t;
    assert_int_equal(time_parse_iso8601(buf, &t), 0);
    assert_true(t >= floor(before * 1000) / 1000 - 0.001 && t <= after + 0.001);
    assert_true(fabs(time_wall() - (double)time(NULL)) < 2.0);
}

static void test_mono_is_monotonic(void **state)
{
    (void)state;
    double a = time_mono();
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    double b = time_mono();
    assert_true(b - a >= 0.015);
    assert_true(b - a < 5.0);
    for (int i = 0; i < 1000; i++) {
        double c = time_mono();
        assert_true(c >= b);
        b = c;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_epoch),
        cmocka_unit_test(test_format_known_instant),
        cmocka_unit_test(test_format_truncates_milliseconds),
        cmocka_unit_test(test_format_leap_day_and_negative),
        cmocka_unit_test(test_format_small_buffer),
        cmocka_unit_test(test_parse_round_trip),
        cmocka_unit_test(test_parse_without_fraction),
        cmocka_unit_test(test_parse_rejects_malformed),
        cmocka_unit_test(test_now_is_parseable_and_current),
        cmocka_unit_test(test_mono_is_monotonic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
