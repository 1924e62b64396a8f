/* Tests for common/fileio.c: whole-file reads into a reused buffer, the NUL
 * after the data, size limits, and refusing what is not a regular file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "errors.h"
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
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

/* fileio_write_all writes everything, counts what it wrote, and tells a
 * full disk (/dev/full: ENOSPC) from other failures. */
static void test_write_all(void **state)
{
    (void)state;
    char path[64], msg[256];
    snprintf(path, sizeof path, "%s/w.txt", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    size_t done = 0;
    assert_int_equal(fileio_write_all(fd, "hello\n", 6, &done), 0);
    assert_int_equal(done, 6);
    close(fd);
    fileio_buf b = {0};
    assert_int_equal(fileio_read(path, 0, &b, msg, sizeof msg), 0);
    assert_string_equal((char *)b.data, "hello\n");
    fileio_buf_free(&b);
    unlink(path);

    int full = open("/dev/full", O_WRONLY);
    if (full >= 0) {
        done = 99;
        assert_int_equal(fileio_write_all(full, "x", 1, &done), ERR_NOSPACE);
        assert_int_equal(errno, ENOSPC);
        assert_int_equal(done, 0);
        close(full);
    }
    assert_int_equal(fileio_write_all(-1, "x", 1, NULL), ERR_IO); // EBADF
    assert_int_equal(fileio_err_for_errno(ENOSPC), ERR_NOSPACE);
    assert_int_equal(fileio_err_for_errno(EDQUOT), ERR_NOSPACE);
    assert_int_equal(fileio_err_for_errno(EFBIG), ERR_NOSPACE);
    assert_int_equal(fileio_err_for_errno(EIO), ERR_IO);
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
        cmocka_unit_test(test_write_all),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
