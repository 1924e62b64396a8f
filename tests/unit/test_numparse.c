/* Tests for common/numparse.c: valid values, junk, trailing junk, empty text,
 * overflow, out-of-range values, signs on unsigned values, inf/nan, lists,
 * and the one error wording. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "errors.h"
#include "numparse.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

static void test_int_valid(void **state)
{
    (void)state;
    char err[256];
    int v = -1;
    assert_int_equal(numparse_int("--threads", "8", 1, 1024, &v, err, sizeof err), 0);
    assert_int_equal(v, 8);
    assert_int_equal(numparse_int("--threads", "1024", 1, 1024, &v, err, sizeof err), 0);
    assert_int_equal(v, 1024);
    assert_int_equal(numparse_int("x", "-5", -10, 10, &v, err, sizeof err), 0);
    assert_int_equal(v, -5);
    assert_int_equal(numparse_int("x", "+7", 0, 10, &v, err, sizeof err), 0);
    assert_int_equal(v, 7);
    assert_int_equal(numparse_int("x", "007", 0, 10, &v, err, sizeof err), 0); // decimal, not octal
    assert_int_equal(v, 7);
    assert_int_equal(numparse_int("x", "-2147483648", INT_MIN, INT_MAX, &v, err, sizeof err), 0);
    assert_int_equal(v, INT_MIN);
    long long l = 0;
    assert_int_equal(
        numparse_long("x", "-9223372036854775808", LLONG_MIN, LLONG_MAX, &l, err, sizeof err), 0);
    assert_true(l == LLONG_MIN);
    assert_int_equal(numparse_long("x", "9223372036854775807", 0, LLONG_MAX, &l, err, sizeof err),
                     0);
    assert_true(l == LLONG_MAX);
}

static void test_int_junk(void **state)
{
    (void)state;
    static const char *const bad[] = {"abc",  "",  "12abc", "1.5", " 8",  "8 ",
                                      "0x10", "-", "+",     "1e3", "--1", "8\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        int v = 42;
        int rc = numparse_int("--threads", bad[i], 1, 1024, &v, err, sizeof err);
        if (rc != ERR_INVALID) fail_msg("\"%s\": rc %d", bad[i], rc);
        assert_int_equal(v, 42); // untouched
        char want[256];
        snprintf(want, sizeof want, "--threads: expected an integer from 1 to 1024, got \"%s\"",
                 bad[i]);
        assert_string_equal(err, want);
    }
    int v = 42;
    assert_int_equal(numparse_int("x", NULL, 0, 1, &v, NULL, 0), ERR_INVALID);
    assert_int_equal(v, 42);
}

static void test_int_range_and_overflow(void **state)
{
    (void)state;
    char err[256];
    int v = 42;
    assert_int_equal(numparse_int("--threads", "0", 1, 1024, &v, err, sizeof err), ERR_RANGE);
    assert_string_equal(err, "--threads: expected an integer from 1 to 1024, got \"0\"");
    assert_int_equal(numparse_int("--threads", "1025", 1, 1024, &v, err, sizeof err), ERR_RANGE);
    assert_int_equal(numparse_int("--threads", "-1", 1, 1024, &v, err, sizeof err), ERR_RANGE);
    /* Beyond int, beyond long long, beyond 64 bits: never wrapped. */
    assert_int_equal(numparse_int("x", "4294967297", INT_MIN, INT_MAX, &v, err, sizeof err),
                     ERR_RANGE);
    assert_int_equal(numparse_int("x", "99999999999999999999999", 0, 10, &v, err, sizeof err),
                     ERR_RANGE);
    assert_int_equal(v, 42);
    long long l = 7;
    assert_int_equal(numparse_long("x", "9223372036854775808", 0, LLONG_MAX, &l, err, sizeof err),
                     ERR_RANGE);
    assert_int_equal(numparse_long("x", "-9223372036854775809", LLONG_MIN, 0, &l, err, sizeof err),
                     ERR_RANGE);
    assert_int_equal(numparse_long("x", "18446744073709551617", 0, LLONG_MAX, &l, err, sizeof err),
                     ERR_RANGE);
    assert_true(l == 7);
    /* No upper bound but the type's: said as ">= LO". */
    assert_int_equal(numparse_long("JOB", "0", 1, LLONG_MAX, &l, err, sizeof err), ERR_RANGE);
    assert_string_equal(err, "JOB: expected an integer >= 1, got \"0\"");
    assert_int_equal(numparse_long("JOB", "abc", 1, LLONG_MAX, &l, err, sizeof err), ERR_INVALID);
    assert_string_equal(err, "JOB: expected an integer >= 1, got \"abc\"");
    assert_int_equal(numparse_int("n", "x", 0, INT_MAX, &v, err, sizeof err), ERR_INVALID);
    assert_string_equal(err, "n: expected an integer >= 0, got \"x\"");
}

static void test_size(void **state)
{
    (void)state;
    char err[256];
    size_t z = 3;
    assert_int_equal(
        numparse_size("max_write_queue", "4294967296", 4096, (size_t)1 << 32, &z, err, sizeof err),
        0);
    assert_true(z == (size_t)1 << 32);
    assert_int_equal(numparse_size("q", "18446744073709551615", 0, SIZE_MAX, &z, err, sizeof err),
                     0);
    assert_true(z == SIZE_MAX);
    z = 3;
    /* A negative value is not a size, even where strtoull would wrap it. */
    assert_int_equal(
        numparse_size("max_write_queue", "-1", 4096, (size_t)1 << 32, &z, err, sizeof err),
        ERR_INVALID);
    assert_string_equal(err, "max_write_queue: expected an integer from 4096 to 4294967296, got "
                             "\"-1\"");
    assert_int_equal(numparse_size("q", "+1", 0, 10, &z, err, sizeof err), ERR_INVALID);
    assert_int_equal(numparse_size("q", "4095", 4096, 8192, &z, err, sizeof err), ERR_RANGE);
    assert_int_equal(numparse_size("q", "18446744073709551616", 0, SIZE_MAX, &z, err, sizeof err),
                     ERR_RANGE);
    assert_string_equal(err, "q: expected an integer >= 0, got \"18446744073709551616\"");
    assert_int_equal(numparse_size("q", "", 0, 10, &z, err, sizeof err), ERR_INVALID);
    assert_true(z == 3);
}

static void test_double(void **state)
{
    (void)state;
    char err[256];
    double d = -1;
    assert_int_equal(numparse_double("tick", "0.5", 0.01, 60, &d, err, sizeof err), 0);
    assert_true(d == 0.5);
    assert_int_equal(numparse_double("tick", "1e-2", 0.01, 60, &d, err, sizeof err), 0);
    assert_true(d == 0.01);
    assert_int_equal(numparse_double("tick", "60", 0.01, 60, &d, err, sizeof err), 0);
    assert_true(d == 60);
    d = -1;
    static const char *const junk[] = {"soon", "", "5s", " 1", "1 ", "0x10", "1..2"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        int rc = numparse_double("kill_grace", junk[i], 0, 86400, &d, err, sizeof err);
        if (rc != ERR_INVALID) fail_msg("\"%s\": rc %d", junk[i], rc);
    }
    assert_string_equal(err, "kill_grace: expected a number from 0 to 86400, got \"1..2\"");
    static const char *const range[] = {"inf", "-inf", "nan", "infinity", "1e400", "-1", "86401"};
    for (size_t i = 0; i < sizeof range / sizeof range[0]; i++) {
        int rc = numparse_double("kill_grace", range[i], 0, 86400, &d, err, sizeof err);
        if (rc != ERR_RANGE) fail_msg("\"%s\": rc %d", range[i], rc);
    }
    assert_string_equal(err, "kill_grace: expected a number from 0 to 86400, got \"86401\"");
    assert_true(d == -1);
    /* Large bounds are written out, not as 1e+09. */
    assert_int_equal(numparse_double("idle_timeout", "-1", 0, 1e9, &d, err, sizeof err), ERR_RANGE);
    assert_string_equal(err, "idle_timeout: expected a number from 0 to 1000000000, got \"-1\"");
}

static void test_octal(void **state)
{
    (void)state;
    char err[256];
    unsigned m = 1;
    assert_int_equal(numparse_octal("socket_mode", "0660", 0777, &m, err, sizeof err), 0);
    assert_int_equal(m, 0660);
    assert_int_equal(numparse_octal("socket_mode", "600", 0777, &m, err, sizeof err), 0);
    assert_int_equal(m, 0600);
    assert_int_equal(numparse_octal("socket_mode", "999", 0777, &m, err, sizeof err), ERR_INVALID);
    assert_string_equal(err, "socket_mode: expected an octal number from 0 to 0777, got \"999\"");
    assert_int_equal(numparse_octal("socket_mode", "1000", 0777, &m, err, sizeof err), ERR_RANGE);
    assert_int_equal(numparse_octal("socket_mode", "-1", 0777, &m, err, sizeof err), ERR_INVALID);
    assert_int_equal(numparse_octal("socket_mode", "", 0777, &m, err, sizeof err), ERR_INVALID);
    assert_int_equal(m, 0600);
}

static void test_list(void **state)
{
    (void)state;
    char err[256];
    long long v[4] = {0};
    size_t n = 99;
    assert_int_equal(numparse_list("--classes", "5,7,9", 0, 255, v, 4, &n, err, sizeof err), 0);
    assert_int_equal(n, 3);
    assert_true(v[0] == 5 && v[1] == 7 && v[2] == 9);
    assert_int_equal(
        numparse_list("allow_uids", " 1000 , 1001 ", 0, 0x7fffffff, v, 4, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_true(v[0] == 1000 && v[1] == 1001);
    n = 99;
    static const char *const junk[] = {"", "1,,2", "1,", ",1", "1,bob", "1 2", "1;2"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        int rc = numparse_list("allow_uids", junk[i], 0, 0x7fffffff, v, 4, &n, err, sizeof err);
        if (rc != ERR_INVALID) fail_msg("\"%s\": rc %d", junk[i], rc);
    }
    assert_string_equal(err, "allow_uids: expected a comma-separated list of integers from 0 to "
                             "2147483647, got \"1;2\"");
    assert_int_equal(numparse_list("--classes", "5,256", 0, 255, v, 4, &n, err, sizeof err),
                     ERR_RANGE);
    assert_int_equal(numparse_list("--classes", "1,2,3,4,5", 0, 255, v, 4, &n, err, sizeof err),
                     ERR_RANGE); // more than MAX
    assert_int_equal(numparse_list("--classes", "99999999999999999999999999999999", 0, 255, v, 4,
                                   &n, err, sizeof err),
                     ERR_RANGE);
    assert_int_equal(n, 99);
}

static void test_long_value_is_cut_in_message(void **state)
{
    (void)state;
    char s[300];
    memset(s, 'a', sizeof s - 1);
    s[sizeof s - 1] = 0;
    char err[512];
    int v;
    assert_int_equal(numparse_int("--batch", s, 1, 9, &v, err, sizeof err), ERR_INVALID);
    assert_true(strlen(err) < 150);
    assert_non_null(strstr(err, "--batch: expected an integer from 1 to 9, got \"aaaa"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int_valid),
        cmocka_unit_test(test_int_junk),
        cmocka_unit_test(test_int_range_and_overflow),
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_double),
        cmocka_unit_test(test_octal),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_long_value_is_cut_in_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
