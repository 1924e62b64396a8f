/* Tests for common/errors.c: code texts and names, message formatting and
 * truncation, errno suffixes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "errors.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void test_codes_are_negative_and_distinct(void **state)
{
    (void)state;
    static const int codes[] = {
#define X_CODE(sym, val, name, text) sym,
        SWEEP_ERRORS(X_CODE)
#undef X_CODE
    };
    size_t n = sizeof codes / sizeof codes[0];
    assert_true(n >= 19);
    for (size_t i = 0; i < n; i++) {
        assert_true(codes[i] < 0);
        for (size_t j = 0; j < i; j++)
            assert_int_not_equal(codes[i], codes[j]);
    }
}

static void test_err_str_texts(void **state)
{
    (void)state;
    assert_string_equal(err_str(0), "success");
    assert_string_equal(err_str(ERR_NOMEM), "out of memory");
    assert_string_equal(err_str(ERR_INVALID), "invalid value");
    assert_string_equal(err_str(ERR_DIVERGED), "loss is not finite");
    assert_string_equal(err_str(-9999), "unknown error");
    assert_string_equal(err_str(5), "unknown error");
}

static void test_err_name_names(void **state)
{
    (void)state;
    assert_string_equal(err_name(0), "ok");
    assert_string_equal(err_name(ERR_NOTFOUND), "not_found");
    assert_string_equal(err_name(ERR_UNKNOWN_KEY), "unknown_key");
    assert_string_equal(err_name(ERR_TOOBIG), "too_big");
    assert_string_equal(err_name(-12345), "unknown");
}

static void test_every_code_has_text_and_name(void **state)
{
    (void)state;
    for (int c = -1; c >= ERR_NOSPACE; c--) { // ERR_NOSPACE: the last code
        assert_string_not_equal(err_str(c), "unknown error");
        assert_string_not_equal(err_name(c), "unknown");
    }
}

static void test_err_set_formats_and_returns_code(void **state)
{
    (void)state;
    char msg[64];
    int rc = err_set(msg, sizeof msg, ERR_RANGE, "%s: expected %d, got %d", "space.lr", 1, 2);
    assert_int_equal(rc, ERR_RANGE);
    assert_string_equal(msg, "space.lr: expected 1, got 2");
}

static void test_err_set_truncates_safely(void **state)
{
    (void)state;
    char msg[8];
    memset(msg, 'X', sizeof msg);
    assert_int_equal(err_set(msg, sizeof msg, ERR_IO, "%s", "a very long message"), ERR_IO);
    assert_string_equal(msg, "a very ");
    char small[1] = {'Z'};
    err_set(small, 1, ERR_IO, "abc");
    assert_int_equal(small[0], '\0');
}

/* A message cut to fit its buffer never ends inside a UTF-8 sequence, and
 * complete sequences at the end are kept. */
static void test_err_set_trims_partial_utf8(void **state)
{
    (void)state;
    char m[8];
    /* "abcde" + U+00E9 (2 bytes) + U+20AC (3 bytes): the euro sign is cut */
    err_set(m, sizeof m, ERR_INVALID, "%s", "abcde\xc3\xa9\xe2\x82\xac");
    assert_string_equal(m, "abcde\xc3\xa9");
    err_set(m, sizeof m, ERR_INVALID, "%s", "abcdef\xc3\xa9");
    assert_string_equal(m, "abcdef");
    err_set(m, sizeof m, ERR_INVALID, "%s", "abcd\xf0\x9f\x98\x80x");
    assert_string_equal(m, "abcd");
    err_set(m, sizeof m, ERR_INVALID, "%s", "ab\xf0\x9f\x98\x80xyz");
    assert_string_equal(m, "ab\xf0\x9f\x98\x80x");
    char buf[8] = "abc\xe2\x82";
    err_trim_utf8(buf, strlen(buf));
    assert_string_equal(buf, "abc");
}

static void test_err_set_null_buffer(void **state)
{
    (void)state;
    assert_int_equal(err_set(NULL, 100, ERR_PARSE, "ignored %d", 1), ERR_PARSE);
    char msg[4] = "abc";
    assert_int_equal(err_set(msg, 0, ERR_PARSE, "ignored"), ERR_PARSE);
    assert_string_equal(msg, "abc");
}

static void test_err_set_errno_appends_reason(void **state)
{
    (void)state;
    char msg[128];
    int rc = err_set_errno(msg, sizeof msg, ERR_IO, ENOENT, "cannot open %s", "/x/y");
    assert_int_equal(rc, ERR_IO);
    char want[128];
    snprintf(want, sizeof want, "cannot open /x/y: %s", strerror(ENOENT));
    assert_string_equal(msg, want);
}

static void test_err_set_errno_truncated_prefix(void **state)
{
    (void)state;
    char msg[10];
    assert_int_equal(err_set_errno(msg, sizeof msg, ERR_IO, EACCES, "0123456789abc"), ERR_IO);
    assert_string_equal(msg, "012345678");
    char msg2[16];
    err_set_errno(msg2, sizeof msg2, ERR_IO, EACCES, "open");
    assert_int_equal(strlen(msg2), 15);
    assert_memory_equal(msg2, "open: ", 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes_are_negative_and_distinct),
        cmocka_unit_test(test_err_set_trims_partial_utf8),
        cmocka_unit_test(test_err_str_texts),
        cmocka_unit_test(test_err_name_names),
        cmocka_unit_test(test_every_code_has_text_and_name),
        cmocka_unit_test(test_err_set_formats_and_returns_code),
        cmocka_unit_test(test_err_set_truncates_safely),
        cmocka_unit_test(test_err_set_null_buffer),
        cmocka_unit_test(test_err_set_errno_appends_reason),
        cmocka_unit_test(test_err_set_errno_truncated_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
