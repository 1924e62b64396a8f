/* test_utf8 — strict UTF-8 decoding, the terminal escape (utf8_escape) and
 * sweepctl's use of it: tables, plain lines and error lines print foreign
 * strings escaped; the class-folder rule of datapath (links confined to the
 * data folder, non-UTF-8 names refused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctl.h"
#include "datapath.h"
#include "errors.h"
#include "utf8.h"

static void test_decode(void **state)
{
    (void)state;
    uint32_t cp = 0;
    assert_int_equal(utf8_decode((const unsigned char *)"A", 1, &cp), 1);
    assert_int_equal(cp, 'A');
    assert_int_equal(utf8_decode((const unsigned char *)"\xc3\xa9", 2, &cp), 2);
    assert_int_equal(cp, 0xE9);
    assert_int_equal(utf8_decode((const unsigned char *)"\xe2\x9c\x93", 3, &cp), 3);
    assert_int_equal(cp, 0x2713);
    assert_int_equal(utf8_decode((const unsigned char *)"\xf0\x9f\x98\x80", 4, &cp), 4);
    assert_int_equal(cp, 0x1F600);
    /* Invalid: truncated, lone continuation, overlong, surrogate, > U+10FFFF. */
    assert_int_equal(utf8_decode((const unsigned char *)"\xc3", 1, &cp), 0);
    assert_int_equal(utf8_decode((const unsigned char *)"\x80", 1, &cp), 0);
    assert_int_equal(utf8_decode((const unsigned char *)"\xc0\xaf", 2, &cp), 0);
    assert_int_equal(utf8_decode((const unsigned char *)"\xe0\x80\xaf", 3, &cp), 0);
    assert_int_equal(utf8_decode((const unsigned char *)"\xed\xa0\x80", 3, &cp), 0);
    assert_int_equal(utf8_decode((const unsigned char *)"\xf4\x90\x80\x80", 4, &cp), 0);
    assert_true(utf8_valid("caf\xc3\xa9 \xe2\x9c\x93"));
    assert_false(utf8_valid("caf\xe9"));
    assert_true(utf8_valid(""));
}

static void test_escape(void **state)
{
    (void)state;
    char b[128];
    /* C0 (ESC, CR, BEL, LF, TAB), DEL, C1 (U+009B CSI), invalid bytes. */
    assert_int_equal(utf8_escape(b, sizeof b, "a\x1b[2J\r\a\n\tz\x7f"), 29);
    assert_string_equal(b, "a\\x1b[2J\\x0d\\x07\\x0a\\x09z\\x7f");
    utf8_escape(b, sizeof b,
                "x\xc2\x9b"
                "31m\xc2\x85");
    assert_string_equal(b, "x\\u009b31m\\u0085");
    utf8_escape(b, sizeof b, "caf\xe9 \xff\xc3");
    assert_string_equal(b, "caf\\xe9 \\xff\\xc3");
    /* Valid printable UTF-8 and backslashes are kept: escaping is idempotent. */
    utf8_escape(b, sizeof b, "caf\xc3\xa9 \xe2\x9c\x93 a\\b");
    assert_string_equal(b, "caf\xc3\xa9 \xe2\x9c\x93 a\\b");
    char twice[128];
    utf8_escape(b, sizeof b, "\x1b]0;t\x07");
    utf8_escape(twice, sizeof twice, b);
    assert_string_equal(twice, b);
    /* Cut only between whole pieces; the return value is the full length. */
    char s[8];
    assert_int_equal(utf8_escape(s, 6,
                                 "ab\x1b"
                                 "cd"),
                     8); // "ab\\x1b" needs 7
    assert_string_equal(s, "ab");
    assert_int_equal(utf8_escape(s, 4, "a\xc3\xa9z"), 4);
    assert_string_equal(s, "a\xc3\xa9");
    assert_int_equal(utf8_escape(NULL, 0, "\n"), 4);
    char *e = utf8_escaped("\x9b\x1b");
    assert_string_equal(e, "\\x9b\\x1b"); // a raw 0x9b byte is not UTF-8: \xHH
    free(e);
}

static char *render(ctl_command cmd, const char *reply_text)
{
    json_t *reply = json_loads(reply_text, 0, NULL);
    assert_non_null(reply);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(ctl_render(f, cmd, reply), 0);
    fclose(f);
    json_decref(reply);
    return buf;
}

static void test_ctl_prints_escaped(void **state)
{
    (void)state;
    char *s = render(CTL_CMD_LIST, "{\"ok\":true,\"jobs\":[{\"id\":1,\"name\":\"a\\u001b[2J\\r\\nb"
                                   "\\u009b\",\"state\":\"running\",\"trials_total\":1}]}");
    assert_non_null(strstr(s, "\n 1  a\\x1b[2J\\x0d\\x0ab\\u009b  running"));
    assert_null(strchr(s, '\x1b'));
    assert_null(strchr(s, '\r'));
    free(s);
    s = render(CTL_CMD_SUBMIT, "{\"ok\":true,\"job\":2,\"name\":\"n\\u0007\\u00e9\",\"trials\":1}");
    assert_string_equal(s, "submitted job 2 (n\\x07\xc3\xa9): 1 trials\n"
                           "follow it with: sweepctl watch 2\n");
    free(s);
    s = render(CTL_CMD_TRIAL, "{\"ok\":true,\"trial\":{\"id\":5,\"error\":\"class \\u001b]0;x\","
                              "\"params\":{\"k\\u001b\":\"v\\n\"}}}");
    assert_non_null(strstr(s, "error            class \\x1b]0;x\n"));
    assert_non_null(strstr(s, "  k\\x1b            v\\x0a\n"));
    free(s);
    /* Error replies. */
    json_t *r = json_loads("{\"ok\":false,\"error\":{\"code\":\"c\\u001b\",\"message\":\"m\\r\"}}",
                           0, NULL);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ctl_print_error(f, r);
    fclose(f);
    assert_string_equal(buf, "sweepctl: c\\x1b: m\\x0d\n");
    free(buf);
    json_decref(r);
}

static char tmp[256];

static const char *pth(const char *rel)
{
    static char b[512];
    snprintf(b, sizeof b, "%s/%s", tmp, rel);
    return b;
}

static void note(void *ctx, const char *name, datapath_kind kind)
{
    char *seen = ctx;
    size_t n = strlen(seen);
    snprintf(seen + n, 256 - n, "%s%s=%d", n ? " " : "", name, (int)kind);
}

static void test_datapath_classes(void **state)
{
    (void)state;
    snprintf(tmp, sizeof tmp, "/tmp/sweep-utf8-XXXXXX");
    assert_non_null(mkdtemp(tmp));
    char real[512], msg[512], seen[256] = "";
    assert_non_null(realpath(tmp, real));
    assert_int_equal(mkdir(pth("d"), 0755), 0);
    assert_int_equal(mkdir(pth("d/cat"), 0755), 0);
    assert_int_equal(mkdir(pth("d/dog"), 0755), 0);
    assert_int_equal(mkdir(pth("out"), 0755), 0);
    assert_int_equal(symlink("cat", pth("d/kitty")), 0);    // inside: a class
    assert_int_equal(symlink("../out", pth("d/evil")), 0);  // outside: skipped
    assert_int_equal(symlink(".", pth("d/Self")), 0);       // the folder itself: skipped
    assert_int_equal(symlink("nowhere", pth("d/gone")), 0); // dangling
    FILE *f = fopen(pth("d/readme.txt"), "w");
    assert_non_null(f);
    fclose(f);
    char rd[600];
    snprintf(rd, sizeof rd, "%s/d", real);
    char **names;
    size_t n;
    assert_int_equal(datapath_classes(pth("d"), rd, &names, &n, note, seen, msg, sizeof msg), 0);
    assert_int_equal(n, 3);
    assert_string_equal(names[0], "cat");
    assert_string_equal(names[1], "dog");
    assert_string_equal(names[2], "kitty");
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    char want[128];
    snprintf(want, sizeof want, "Self=%d evil=%d gone=%d readme.txt=%d", DATAPATH_ROOT,
             DATAPATH_OUTSIDE, DATAPATH_OTHER, DATAPATH_FILE);
    assert_string_equal(seen, want);
    /* A class folder that is not UTF-8 is refused, named escaped. */
    assert_int_equal(mkdir(pth("d/caf\xe9"), 0755), 0);
    assert_int_equal(datapath_classes(pth("d"), rd, &names, &n, NULL, NULL, msg, sizeof msg),
                     ERR_DATA);
    assert_non_null(strstr(msg, "class folder \"caf\\xe9\" has a name that is not valid UTF-8"));
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    assert_true(datapath_under("/a/b", "/a"));
    assert_true(datapath_under("/a", "/a/"));
    assert_false(datapath_under("/ab", "/a"));
    assert_true(datapath_under("/x", "/"));
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_ctl_prints_escaped),
        cmocka_unit_test(test_datapath_classes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
