/* test_utf8 — strict UTF-8 decoding, the terminal escape (utf8_escape) and
 * (sweepctl's use of it is tested in test_ctl.c); the class-folder rule of datapath (with
 * data_roots, links confined to the roots; without, followed anywhere; links back to the data
 * folder or above it never classes; non-UTF-8 names refused). */
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

/* The class folders of P under scope SC, as "a b c", and the notes into SEEN. */
static void classes_of(const datapath_scope *sc, char *got, size_t n, char *seen)
{
    char **names, msg[512];
    size_t cnt;
    seen[0] = 0;
    assert_int_equal(datapath_classes(pth("r/d"), sc, &names, &cnt, note, seen, msg, sizeof msg),
                     0);
    got[0] = 0;
    for (size_t i = 0; i < cnt; i++) {
        size_t l = strlen(got);
        snprintf(got + l, n - l, "%s%s", i ? " " : "", names[i]);
        free(names[i]);
    }
    free(names);
}

static void test_datapath_classes(void **state)
{
    (void)state;
    snprintf(tmp, sizeof tmp, "/tmp/sweep-utf8-XXXXXX");
    assert_non_null(mkdtemp(tmp));
    char real[512], msg[512], seen[256] = "", got[256], want[600];
    assert_non_null(realpath(tmp, real));
    /* r is the data root: r/d the data folder, r/pool a shared image pool
     * inside the root; out lies outside it. */
    const char *dirs[] = {"r",      "r/d",         "r/d/cat", "r/d/dog",
                          "r/pool", "r/pool/bird", "out",     "out/evil"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        assert_int_equal(mkdir(pth(dirs[i]), 0755), 0);
    assert_int_equal(symlink("cat", pth("r/d/kitty")), 0);           // inside the folder
    assert_int_equal(symlink("../pool/bird", pth("r/d/bird")), 0);   // the pool, in the root
    assert_int_equal(symlink("../../out/evil", pth("r/d/evil")), 0); // outside the root
    assert_int_equal(symlink(".", pth("r/d/Self")), 0);              // the folder itself
    assert_int_equal(symlink("..", pth("r/d/up")), 0);               // above it
    assert_int_equal(symlink("nowhere", pth("r/d/gone")), 0);        // dangling
    assert_int_equal(symlink("../../../out/evil", pth("r/d/cat/x.jpg")), 0); // an image out
    FILE *f = fopen(pth("r/d/readme.txt"), "w");
    assert_non_null(f);
    fclose(f);
    char rd[600], rr[600];
    snprintf(rd, sizeof rd, "%s/r/d", real);
    snprintf(rr, sizeof rr, "%s/r", real);
    char *roots[] = {"/nonexistent-root", rr};

    /* Without data_roots: links are followed anywhere, but never back to
     * the data folder or above it. */
    datapath_scope open = {.real_dir = rd};
    classes_of(&open, got, sizeof got, seen);
    assert_string_equal(got, "bird cat dog evil kitty");
    snprintf(want, sizeof want, "Self=%d gone=%d readme.txt=%d up=%d", DATAPATH_ROOT,
             DATAPATH_OTHER, DATAPATH_FILE, DATAPATH_ROOT);
    assert_string_equal(seen, want);
    struct stat st;
    assert_int_equal(datapath_classify(&open, pth("r/d/cat/x.jpg"), &st), DATAPATH_DIR);

    /* With data_roots: a link out of every root is skipped; the pool inside
     * the root is used; the loops are skipped the same way. */
    datapath_scope confined = {.real_dir = rd, .roots = roots, .n_roots = 2};
    classes_of(&confined, got, sizeof got, seen);
    assert_string_equal(got, "bird cat dog kitty");
    snprintf(want, sizeof want, "Self=%d evil=%d gone=%d readme.txt=%d up=%d", DATAPATH_ROOT,
             DATAPATH_OUTSIDE, DATAPATH_OTHER, DATAPATH_FILE, DATAPATH_ROOT);
    assert_string_equal(seen, want);
    assert_int_equal(datapath_classify(&confined, pth("r/d/cat/x.jpg"), &st), DATAPATH_OUTSIDE);
    assert_int_equal(unlink(pth("r/d/cat/x.jpg")), 0);
    f = fopen(pth("out/evil/a.jpg"), "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(symlink("../../../out/evil/a.jpg", pth("r/d/cat/x.jpg")), 0);
    assert_int_equal(datapath_classify(&confined, pth("r/d/cat/x.jpg"), &st), DATAPATH_OUTSIDE);
    assert_int_equal(datapath_classify(&open, pth("r/d/cat/x.jpg"), &st), DATAPATH_FILE);

    /* A class folder that is not UTF-8 is refused, named escaped. */
    char **names;
    size_t n;
    assert_int_equal(mkdir(pth("r/d/caf\xe9"), 0755), 0);
    assert_int_equal(
        datapath_classes(pth("r/d"), &confined, &names, &n, NULL, NULL, msg, sizeof msg), ERR_DATA);
    assert_non_null(strstr(msg, "class folder \"caf\\xe9\" has a name that is not valid UTF-8"));
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);

    assert_true(datapath_under("/a/b", "/a"));
    assert_true(datapath_under("/a", "/a/"));
    assert_false(datapath_under("/ab", "/a"));
    assert_true(datapath_under("/x", "/"));
    assert_true(datapath_in_roots("/anything", NULL, 0));
    assert_true(datapath_in_roots(rd, roots, 2));
    assert_false(datapath_in_roots("/ab", roots, 2));

    /* Roots are resolved; what is not a directory is refused, named. */
    char **added = NULL;
    int nadded = 0;
    snprintf(want, sizeof want, "%s/r/./pool/../", tmp);
    assert_int_equal(datapath_roots_add(&added, &nadded, "--data-root", want, msg, sizeof msg), 0);
    assert_int_equal(nadded, 1);
    assert_string_equal(added[0], rr);
    assert_int_equal(
        datapath_roots_add(&added, &nadded, "--data-root", pth("nope"), msg, sizeof msg),
        ERR_NOTFOUND);
    assert_non_null(strstr(msg, "--data-root: cannot resolve "));
    assert_int_equal(datapath_roots_add(&added, &nadded, "data_roots[1]", pth("r/d/readme.txt"),
                                        msg, sizeof msg),
                     ERR_INVALID);
    assert_non_null(strstr(msg, "data_roots[1]: "));
    assert_non_null(strstr(msg, "is not a directory"));
    assert_int_equal(nadded, 1);
    datapath_roots_free(added, nadded);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_datapath_classes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
