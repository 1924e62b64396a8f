/* Tests for common/ndjson.c: framing across every chunk split, CRLF, empty
 * lines, the maximum line length (exactly at the limit, one over, huge lines
 * spread over many chunks) and stopping from the callback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "errors.h"
#include "ndjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Collects lines as "text|" and oversized reports as "<N>|". */
typedef struct {
    char out[8192]; // concatenated record of callbacks
    int calls;      // number of callbacks
    int stop_at;    // return 1 from this call number (1-based), 0 = never
    int stop_value; // value returned when stopping
} sink;

static int collect(void *ud, char *line, size_t len)
{
    sink *s = ud;
    s->calls++;
    size_t used = strlen(s->out);
    if (line) {
        assert_int_equal(strlen(line), len); /* NUL-terminated at len */
        assert_null(memchr(line, '\n', len));
        snprintf(s->out + used, sizeof s->out - used, "%s|", line);
    } else {
        snprintf(s->out + used, sizeof s->out - used, "<%zu>|", len);
    }
    if (s->stop_at && s->calls == s->stop_at) return s->stop_value;
    return 0;
}

static void feed_str(ndjson_buf *b, const char *s, sink *k)
{
    assert_int_equal(ndjson_feed(b, s, strlen(s), collect, k), 0);
}

static void test_single_and_multiple_lines(void **state)
{
    (void)state;
    ndjson_buf b;
    ndjson_init(&b, 100);
    sink k = {0};
    feed_str(&b, "{\"op\":\"ping\"}\n", &k);
    assert_string_equal(k.out, "{\"op\":\"ping\"}|");
    feed_str(&b, "a\nb\nc\n", &k);
    assert_string_equal(k.out, "{\"op\":\"ping\"}|a|b|c|");
    assert_int_equal(ndjson_pending(&b), 0);
    ndjson_free(&b);
}

static void test_partial_line_kept(void **state)
{
    (void)state;
    ndjson_buf b;
    ndjson_init(&b, 100);
    sink k = {0};
    feed_str(&b, "hel", &k);
    assert_int_equal(k.calls, 0);
    assert_int_equal(ndjson_pending(&b), 3);
    feed_str(&b, "lo", &k);
    assert_int_equal(k.calls, 0);
    feed_str(&b, "\nwor", &k);
    assert_string_equal(k.out, "hello|");
    assert_int_equal(ndjson_pending(&b), 3);
    feed_str(&b, "ld\n", &k);
    assert_string_equal(k.out, "hello|world|");
    ndjson_free(&b);
}

static void test_every_split_point(void **state)
{
    (void)state;
    const char *text = "{\"a\":1}\r\n\nsecond line\n\r\nthird\n";
    const char *want = "{\"a\":1}|second line|third|";
    size_t n = strlen(text);
    for (size_t i = 0; i <= n; i++) {
        for (size_t j = i; j <= n; j++) {
            ndjson_buf b;
            ndjson_init(&b, 64);
            sink k = {0};
            assert_int_equal(ndjson_feed(&b, text, i, collect, &k), 0);
            assert_int_equal(ndjson_feed(&b, text + i, j - i, collect, &k), 0);
            assert_int_equal(ndjson_feed(&b, text + j, n - j, collect, &k), 0);
            if (strcmp(k.out, want) != 0) fail_msg("split %zu/%zu: got %s", i, j, k.out);
            ndjson_free(&b);
        }
    }
}

static void test_byte_by_byte(void **state)
{
    (void)state;
    const char *text = "x\ny\r\nz\n";
    ndjson_buf b;
    ndjson_init(&b, 8);
    sink k = {0};
    for (size_t i = 0; text[i]; i++)
        assert_int_equal(ndjson_feed(&b, text + i, 1, collect, &k), 0);
    assert_string_equal(k.out, "x|y|z|");
    ndjson_free(&b);
}

static void test_crlf_and_empty_lines(void **state)
{
    (void)state;
    ndjson_buf b;
    ndjson_init(&b, 100);
    sink k = {0};
    feed_str(&b, "\n\n\r\na\r\n\r\n  \n", &k);
    /* A line of spaces is not empty: the caller decides what to do with it. */
    assert_string_equal(k.out, "a|  |");
    feed_str(&b, "mid\rdle\n", &k); /* a lone \r inside a line is kept */
    assert_string_equal(k.out, "a|  |mid\rdle|");
    ndjson_free(&b);
}

static void test_line_exactly_at_limit(void **state)
{
    (void)state;
    char line[18];
    memset(line, 'x', 16);
    line[16] = '\n';
    line[17] = '\0';
    ndjson_buf b;
    ndjson_init(&b, 16);
    sink k = {0};
    feed_str(&b, line, &k);
    assert_string_equal(k.out, "xxxxxxxxxxxxxxxx|");
    /* With CRLF the limit applies to the content, so this is accepted too. */
    feed_str(&b, "xxxxxxxxxxxxxxxx\r\n", &k);
    assert_int_equal(k.calls, 2);
    assert_string_equal(k.out + 17, "xxxxxxxxxxxxxxxx|");
    ndjson_free(&b);
}

static void test_line_one_over_limit(void **state)
{
    (void)state;
    ndjson_buf b;
    ndjson_init(&b, 16);
    sink k = {0};
    feed_str(&b, "xxxxxxxxxxxxxxxxx\nok\n", &k); /* 17 bytes */
    assert_string_equal(k.out, "<17>|ok|");
    memset(k.out, 0, sizeof k.out);
    feed_str(&b, "xxxxxxxxxxxxxxxxx\r\nok\r\n", &k);
    assert_string_equal(k.out, "<17>|ok|");
    ndjson_free(&b);
}

static void test_oversized_over_many_chunks(void **state)
{
    (void)state;
    ndjson_buf b;
    ndjson_init(&b, 100);
    sink k = {0};
    feed_str(&b, "first\nyy", &k);
    char chunk[64];
    memset(chunk, 'z', sizeof chunk);
    for (int i = 0; i < 50; i++)
        assert_int_equal(ndjson_feed(&b, chunk, sizeof chunk, collect, &k), 0);
    /* Nothing of the long line is buffered while it is skipped. */
    assert_int_equal(ndjson_pending(&b), 0);
    assert_true(b.cap <= 1024);
    feed_str(&b, "zz\r", &k);
    feed_str(&b, "\nafter 1\nafter 2\n", &k);
    char want[64];
    snprintf(want, sizeof want, "first|<%d>|after 1|after 2|", 2 + 50 * 64 + 2);
    assert_string_equal(k.out, want);
    ndjson_free(&b);
}

static void test_oversized_every_split(void **state)
{
    (void)state;
    const char *text = "ab\nTOO-LONG-LINE\r\ncd\n";
    size_t n = strlen(text);
    for (size_t i = 0; i <= n; i++) {
        ndjson_buf b;
        ndjson_init(&b, 5);
        sink k = {0};
        assert_int_equal(ndjson_feed(&b, text, i, collect, &k), 0);
        assert_int_equal(ndjson_feed(&b, text + i, n - i, collect, &k), 0);
        if (strcmp(k.out, "ab|<13>|cd|") != 0) fail_msg("split %zu: got %s", i, k.out);
        ndjson_free(&b);
    }
}

static void test_stop_keeps_rest(void **state)
{
    (void)state;
    ndjson_buf b;
    ndjson_init(&b, 100);
    sink k = {.stop_at = 2, .stop_value = 7};
    const char *text = "one\ntwo\nthree\nfour\nfi";
    assert_int_equal(ndjson_feed(&b, text, strlen(text), collect, &k), 7);
    assert_string_equal(k.out, "one|two|");
    /* The rest comes out on the next feed, before the new bytes. */
    k.stop_at = 0;
    feed_str(&b, "ve\n", &k);
    assert_string_equal(k.out, "one|two|three|four|five|");
    ndjson_free(&b);
}

static void test_stop_again_while_draining(void **state)
{
    (void)state;
    ndjson_buf b;
    ndjson_init(&b, 100);
    sink k = {.stop_at = 1, .stop_value = -3};
    const char *text = "a\nb\nc\n";
    assert_int_equal(ndjson_feed(&b, text, strlen(text), collect, &k), -3);
    assert_string_equal(k.out, "a|");
    k.stop_at = 2; /* stop on "b" while draining, with new bytes pending */
    assert_int_equal(ndjson_feed(&b, "d\n", 2, collect, &k), -3);
    assert_string_equal(k.out, "a|b|");
    k.stop_at = 0;
    assert_int_equal(ndjson_feed(&b, NULL, 0, collect, &k), 0);
    assert_string_equal(k.out, "a|b|c|d|");
    ndjson_free(&b);
}

static void test_stop_on_oversized_report(void **state)
{
    (void)state;
    ndjson_buf b;
    ndjson_init(&b, 3);
    sink k = {.stop_at = 1, .stop_value = 1};
    const char *text = "toolong\nok\n";
    assert_int_equal(ndjson_feed(&b, text, strlen(text), collect, &k), 1);
    assert_string_equal(k.out, "<7>|");
    k.stop_at = 0;
    assert_int_equal(ndjson_feed(&b, "", 0, collect, &k), 0);
    assert_string_equal(k.out, "<7>|ok|");
    ndjson_free(&b);
}

static void test_zero_limit(void **state)
{
    (void)state;
    ndjson_buf b;
    ndjson_init(&b, 0);
    sink k = {0};
    feed_str(&b, "\n\r\nx\n", &k);
    assert_string_equal(k.out, "<1>|");
    ndjson_free(&b);
}

/* Records the length and content check of each delivered line. */
typedef struct {
    int calls;       // lines delivered
    size_t last_len; // length of the last line (or oversized report)
    int all_j;       // 1 while every delivered byte was 'j'
} big_sink;

static int big_collect(void *ud, char *line, size_t len)
{
    big_sink *s = ud;
    s->calls++;
    s->last_len = len;
    if (!line) s->all_j = 0;
    for (size_t i = 0; line && i < len; i++)
        if (line[i] != 'j') s->all_j = 0;
    return 0;
}

static void test_large_line_within_limit(void **state)
{
    (void)state;
    /* A 1 MiB line, the protocol's limit, in 4 KiB chunks; then one byte more. */
    size_t n = 1 << 20;
    char *big = malloc(n + 2);
    memset(big, 'j', n + 1);
    big[n] = '\n';
    ndjson_buf b;
    ndjson_init(&b, n);
    big_sink k = {0, 0, 1};
    for (size_t off = 0; off < n + 1; off += 4096) {
        size_t len = n + 1 - off < 4096 ? n + 1 - off : 4096;
        assert_int_equal(ndjson_feed(&b, big + off, len, big_collect, &k), 0);
    }
    assert_int_equal(k.calls, 1);
    assert_int_equal(k.last_len, n);
    assert_true(k.all_j);
    big[n] = 'j';
    big[n + 1] = '\n';
    for (size_t off = 0; off < n + 2; off += 4096) {
        size_t len = n + 2 - off < 4096 ? n + 2 - off : 4096;
        assert_int_equal(ndjson_feed(&b, big + off, len, big_collect, &k), 0);
    }
    assert_int_equal(k.calls, 2);
    assert_int_equal(k.last_len, n + 1);
    assert_false(k.all_j); /* reported as oversized (line == NULL) */
    ndjson_free(&b);
    free(big);
}

static void test_free_resets(void **state)
{
    (void)state;
    ndjson_buf b;
    ndjson_init(&b, 10);
    sink k = {0};
    feed_str(&b, "partial", &k);
    ndjson_free(&b);
    assert_null(b.buf);
    assert_int_equal(ndjson_pending(&b), 0);
    ndjson_free(&b); /* twice is harmless */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_and_multiple_lines),
        cmocka_unit_test(test_partial_line_kept),
        cmocka_unit_test(test_every_split_point),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_crlf_and_empty_lines),
        cmocka_unit_test(test_line_exactly_at_limit),
        cmocka_unit_test(test_line_one_over_limit),
        cmocka_unit_test(test_oversized_over_many_chunks),
        cmocka_unit_test(test_oversized_every_split),
        cmocka_unit_test(test_stop_keeps_rest),
        cmocka_unit_test(test_stop_again_while_draining),
        cmocka_unit_test(test_stop_on_oversized_report),
        cmocka_unit_test(test_zero_limit),
        cmocka_unit_test(test_large_line_within_limit),
        cmocka_unit_test(test_free_resets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
