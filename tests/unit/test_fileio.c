/* Tests for common/fileio.c: whole-file reads into a reused buffer, the NUL
 * after the data, size limits, and refusing what is not a regular file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "errors.h"
#include "fileio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/sweep-fileio-XXXXXX";

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_read_and_reuse(void **state)
{
    (void)state;
    char a[64], b[64], msg[256];
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    write_text(a, "hello, world");
    write_text(b, "hi");
    fileio_buf buf = {0};
    assert_int_equal(fileio_read(a, 0, &buf, msg, sizeof msg), 0);
    assert_int_equal(buf.len, 12);
    assert_string_equal((char *)buf.data, "hello, world"); // NUL after the data
    uint8_t *first = buf.data;
    assert_int_equal(fileio_read(b, 0, &buf, msg, sizeof msg), 0);
    assert_int_equal(buf.len, 2);
    assert_string_equal((char *)buf.data, "hi");
    assert_ptr_equal(buf.data, first); // a smaller file reuses the buffer
    /* An empty file is 0 bytes, still a string. */
    write_text(b, "");
    assert_int_equal(fileio_read(b, 0, &buf, msg, sizeof msg), 0);
    assert_int_equal(buf.len, 0);
    assert_string_equal((char *)buf.data, "");
    fileio_buf_free(&buf);
    assert_null(buf.data);
    assert_int_equal(buf.cap, 0);
    unlink(a);
    unlink(b);
}

static void test_errors(void **state)
{
    (void)state;
    char a[64], missing[64], msg[256], want[256];
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(missing, sizeof missing, "%s/missing", dir);
    write_text(a, "0123456789");
    fileio_buf buf = {0};
    assert_int_equal(fileio_read(a, 9, &buf, msg, sizeof msg), ERR_TOOBIG);
    snprintf(want, sizeof want, "%s is larger than 9 bytes", a);
    assert_string_equal(msg, want);
    assert_int_equal(fileio_read(a, 10, &buf, msg, sizeof msg), 0); // the limit is inclusive
    assert_int_equal(buf.len, 10);
    assert_int_equal(fileio_read(missing, 0, &buf, msg, sizeof msg), ERR_IO);
    snprintf(want, sizeof want, "cannot open %s: No such file or directory", missing);
    assert_string_equal(msg, want);
    assert_int_equal(buf.len, 0);
    assert_int_equal(fileio_read(dir, 0, &buf, msg, sizeof msg), ERR_IO);
    snprintf(want, sizeof want, "%s is not a regular file", dir);
    assert_string_equal(msg, want);
    fileio_buf_free(&buf);
    unlink(a);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_and_reuse),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
