/* Tests for worker/train/tfevents.c: CRC-32C against published vectors
 * (RFC 3720's and the "123456789" check value), TFRecord's mask, the
 * protobuf encoder's varints, fixed and length-delimited fields and nested
 * lengths, record framing byte for byte, the reading back of records (cut
 * and corrupt tails), and the writer's files: lazy creation, the skip rules
 * of a resume, removal on a fresh start, the directory synced once a file is
 * created (no file left when that fails). (tests/integration/tfevents.sh
 * decodes real trials' files with an independent protobuf decoder.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "errors.h"
#include "fileio.h"
#include "tfevents.h"
#include "util_jpeg.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256]; // scratch folder under $TMPDIR

static int setup(void **state)
{
    (void)state;
    return tju_mkdtemp(dir, sizeof dir, "tfevents");
}

static int teardown(void **state)
{
    (void)state;
    tju_rmrf(dir);
    return 0;
}

/* B holds exactly the N bytes of WANT. */
static void assert_bytes(const tfevents_pb *b, const void *want, size_t n)
{
    assert_false(b->failed);
    assert_int_equal(b->len, n);
    assert_memory_equal(b->data, want, n);
}

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(tfevents_crc32c("123456789", 9), 0xe3069283u);
    assert_int_equal(tfevents_crc32c("", 0), 0);
    uint8_t buf[32];
    memset(buf, 0, sizeof buf);
    assert_int_equal(tfevents_crc32c(buf, 32), 0x8a9136aau); // RFC 3720 B.4
    memset(buf, 0xff, sizeof buf);
    assert_int_equal(tfevents_crc32c(buf, 32), 0x62a8ab43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    assert_int_equal(tfevents_crc32c(buf, 32), 0x46dd794eu);
    assert_int_equal(tfevents_masked_crc("", 0), 0xa282ead8u); // mask(0): the constant alone
    assert_int_equal(tfevents_masked_crc("123456789", 9), 0xc78ab0e5u);
}

static void test_varints(void **state)
{
    (void)state;
    static const struct {
        uint64_t v;
        size_t n;
        uint8_t bytes[10];
    } cases[] = {
        {0, 1, {0x00}},
        {1, 1, {0x01}},
        {127, 1, {0x7f}},
        {128, 2, {0x80, 0x01}},
        {300, 2, {0xac, 0x02}},
        {16384, 3, {0x80, 0x80, 0x01}},
        {UINT64_MAX, 10, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tfevents_pb b = {0};
        tfevents_pb_varint(&b, cases[i].v);
        assert_bytes(&b, cases[i].bytes, cases[i].n);
        tfevents_pb_free(&b);
    }
    tfevents_pb b = {0};
    tfevents_pb_int(&b, 2, 5);  // field 2, varint: key 0x10
    tfevents_pb_int(&b, 2, -1); // negative int64: ten bytes
    static const uint8_t want[] = {0x10, 0x05, 0x10, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    assert_bytes(&b, want, sizeof want);
    tfevents_pb_free(&b);
}

static void test_fields(void **state)
{
    (void)state;
    tfevents_pb b = {0};
    tfevents_pb_double(&b, 1, 1.0);
    tfevents_pb_float(&b, 2, 1.0f);
    tfevents_pb_string(&b, 3, "brain.Event:2");
    tfevents_pb_bytes(&b, 16, "", 0); // field 16 needs a two-byte key
    static const uint8_t want[] = {0x09, 0,    0,    0,    0,   0,   0,   0xf0, 0x3f, 0x15, 0,
                                   0,    0x80, 0x3f, 0x1a, 13,  'b', 'r', 'a',  'i',  'n',  '.',
                                   'E',  'v',  'e',  'n',  't', ':', '2', 0x82, 0x01, 0x00};
    assert_bytes(&b, want, sizeof want);
    tfevents_pb_free(&b);
}

static void test_nested(void **state)
{
    (void)state;
    tfevents_pb b = {0};
    size_t outer = tfevents_pb_begin(&b, 5);
    size_t inner = tfevents_pb_begin(&b, 1);
    char big[200];
    memset(big, 'x', sizeof big);
    tfevents_pb_bytes(&b, 1, big, sizeof big); // 0x0a c8 01 + 200 = 203 bytes
    tfevents_pb_end(&b, inner);                // 0x0a cb 01 + 203 = 206
    tfevents_pb_int(&b, 2, 7);                 // 2 more: outer content 208
    tfevents_pb_end(&b, outer);
    assert_false(b.failed);
    assert_int_equal(b.len, 2 + 1 + 2 + 1 + 2 + 200 + 2 + 1);
    static const uint8_t head[] = {0x2a, 0xd0, 0x01, 0x0a, 0xcb, 0x01, 0x0a, 0xc8, 0x01};
    assert_memory_equal(b.data, head, sizeof head);
    assert_int_equal(b.data[sizeof head], 'x');
    assert_int_equal(b.data[sizeof head + 199], 'x');
    static const uint8_t tail[] = {0x10, 0x07};
    assert_memory_equal(b.data + b.len - 2, tail, 2);
    b.len = 0;
    size_t empty = tfevents_pb_begin(&b, 2); // an empty message: key and a zero length
    tfevents_pb_end(&b, empty);
    static const uint8_t zero[] = {0x12, 0x00};
    assert_bytes(&b, zero, sizeof zero);
    tfevents_pb_free(&b);
}

static void test_frame(void **state)
{
    (void)state;
    tfevents_pb b = {0};
    tfevents_frame(&b, "", 0);
    static const uint8_t empty[] = {0,    0,    0,    0,    0,    0,    0,    0,
                                    0x29, 0x03, 0x98, 0x07, 0xd8, 0xea, 0x82, 0xa2};
    assert_bytes(&b, empty, sizeof empty);
    b.len = 0;
    tfevents_frame(&b, "abc", 3);
    static const uint8_t abc[] = {3,    0,    0,   0,   0,   0,    0,    0,    0xb0, 0x99,
                                  0x49, 0x0e, 'a', 'b', 'c', 0x6e, 0x57, 0xf1, 0x21};
    assert_bytes(&b, abc, sizeof abc);
    tfevents_pb_free(&b);
}

/* Appends to OUT the record of an Event at STEP with one summary value of
 * tag TAG (and a simple_value). */
static void add_event(tfevents_pb *out, int64_t step, const char *tag)
{
    tfevents_pb e = {0};
    tfevents_pb_double(&e, 1, 1e9);
    tfevents_pb_int(&e, 2, step);
    size_t s = tfevents_pb_begin(&e, 5);
    size_t v = tfevents_pb_begin(&e, 1);
    tfevents_pb_string(&e, 1, tag);
    tfevents_pb_float(&e, 2, 0.5f);
    tfevents_pb_end(&e, v);
    tfevents_pb_end(&e, s);
    assert_false(e.failed);
    tfevents_frame(out, e.data, e.len);
    tfevents_pb_free(&e);
}

static void test_scan(void **state)
{
    (void)state;
    tfevents_pb b = {0};
    add_event(&b, 0, TFEVENTS_TAG_SESSION_START);
    add_event(&b, 1, "val/loss");
    add_event(&b, 3, "val/loss");
    size_t two = b.len;
    add_event(&b, 2, "val/loss"); // steps need not come in order: the highest counts
    add_event(&b, 9, TFEVENTS_TAG_SESSION_END);
    tfevents_scan s = {0};
    assert_int_equal(tfevents_scan_buffer(b.data, b.len, &s), 0);
    assert_int_equal(s.records, 5);
    assert_int_equal(s.last_step, 3); // the session end's step is no scalar
    assert_true(s.has_start);
    assert_true(s.has_end);
    assert_int_equal(s.valid_bytes, b.len);

    memset(&s, 0, sizeof s);
    assert_int_equal(tfevents_scan_buffer(b.data, two + 5, &s), ERR_PARSE); // a cut record
    assert_int_equal(s.records, 3);
    assert_int_equal(s.valid_bytes, two);
    assert_int_equal(s.last_step, 3);
    assert_false(s.has_end);

    for (size_t cut = 12; cut < 16; cut++) { // a whole header but not the data CRC
        memset(&s, 0, sizeof s);
        assert_int_equal(tfevents_scan_buffer(b.data, two + cut, &s), ERR_PARSE);
        assert_int_equal(s.records, 3);
    }
    memset(&s, 0, sizeof s);
    b.data[two + 14] ^= 0x01; // inside the fourth record's data: its data CRC fails
    assert_int_equal(tfevents_scan_buffer(b.data, b.len, &s), ERR_PARSE);
    assert_int_equal(s.records, 3);
    assert_int_equal(s.valid_bytes, two);
    b.data[two + 14] ^= 0x01;
    b.data[two + 2] ^= 0x40; // the length: its CRC fails
    memset(&s, 0, sizeof s);
    assert_int_equal(tfevents_scan_buffer(b.data, b.len, &s), ERR_PARSE);
    assert_int_equal(s.records, 3);
    tfevents_pb_free(&b);
}

/* The event files of DIR, sorted, into NAMES (at most 8); returns the count. */
static int list_files(char names[][256], int max)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, TFEVENTS_PREFIX, strlen(TFEVENTS_PREFIX)) && n < max)
            snprintf(names[n++], 256, "%s", e->d_name);
    closedir(d);
    for (int i = 1; i < n; i++) // insertion sort: a handful of names
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char t[256];
            memcpy(t, names[j], 256);
            memcpy(names[j], names[j - 1], 256);
            memcpy(names[j - 1], t, 256);
        }
    return n;
}

/* Scans the file NAME of DIR into a fresh *S; returns the file's size. */
static size_t scan_named(const char *name, tfevents_scan *s)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    fileio_buf fb = {0};
    char msg[256];
    assert_int_equal(fileio_read(path, 0, &fb, msg, sizeof msg), 0);
    memset(s, 0, sizeof *s);
    tfevents_scan_buffer(fb.data, fb.len, s);
    size_t n = fb.len;
    fileio_buf_free(&fb);
    return n;
}

static void test_writer(void **state)
{
    (void)state;
    char msg[512];
    char names[8][256];
    tfevents_writer w;
    assert_int_equal(tfevents_open(&w, dir, true, msg, sizeof msg), 0);
    assert_int_equal(list_files(names, 8), 0); // nothing written yet: no file
    json_t *hp = json_pack("{s:f, s:i, s:s, s:b, s:n}", "lr", 0.01, "batch_size", 8, "freeze",
                           "layer2", "augment", 1, "none", "skipped");
    assert_int_equal(tfevents_session_start(&w, hp, "7", 1e9, msg, sizeof msg), 0);
    assert_int_equal(tfevents_session_start(&w, hp, "7", 1e9, msg, sizeof msg), 0); // skipped
    tfevents_scalar v[2] = {{"val/loss", 0.25}, {"val/accuracy", 0.75}};
    assert_int_equal(tfevents_scalars(&w, 1, 1e9 + 1, v, 2, msg, sizeof msg), 0);
    assert_int_equal(tfevents_scalars(&w, 2, 1e9 + 2, v, 2, msg, sizeof msg), 0);
    assert_int_equal(tfevents_scalars(&w, 2, 1e9 + 2, v, 2, msg, sizeof msg), 0); // skipped
    assert_int_equal(tfevents_last_step(&w), 2);
    tfevents_close(&w);
    assert_int_equal(list_files(names, 8), 1);
    tfevents_scan s;
    scan_named(names[0], &s);
    assert_int_equal(s.records, 4); // file_version, session start, steps 1 and 2
    assert_int_equal(s.last_step, 2);
    assert_true(s.has_start);
    assert_false(s.has_end);

    /* A resume: what the directory holds is not written again. */
    assert_int_equal(tfevents_open(&w, dir, false, msg, sizeof msg), 0);
    assert_int_equal(tfevents_last_step(&w), 2);
    assert_int_equal(tfevents_session_start(&w, hp, "7", 1e9, msg, sizeof msg), 0);
    assert_int_equal(tfevents_scalars(&w, 1, 1e9, v, 2, msg, sizeof msg), 0);
    assert_int_equal(tfevents_scalars(&w, 2, 1e9, v, 2, msg, sizeof msg), 0);
    assert_int_equal(list_files(names, 8), 1); // nothing new: no new file
    assert_int_equal(tfevents_scalars(&w, 3, 1e9 + 3, v, 2, msg, sizeof msg), 0);
    assert_int_equal(tfevents_session_end(&w, TFEVENTS_STATUS_SUCCESS, 3, 1e9 + 4, msg, sizeof msg),
                     0);
    tfevents_close(&w);
    assert_int_equal(list_files(names, 8), 2);
    size_t second = scan_named(names[1], &s); // the new file sorts after the old one
    assert_int_equal(s.records, 3);           // file_version, step 3, session end
    assert_int_equal(s.last_step, 3);
    assert_false(s.has_start);
    assert_true(s.has_end);

    /* The second file cut inside its last record: the session end is gone,
     * step 3 stays; a resume writes only the end again. */
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, names[1]);
    assert_int_equal(truncate(path, (off_t)second - 3), 0);
    assert_int_equal(tfevents_open(&w, dir, false, msg, sizeof msg), 0);
    assert_int_equal(tfevents_last_step(&w), 3);
    assert_int_equal(tfevents_scalars(&w, 3, 1e9, v, 2, msg, sizeof msg), 0);
    assert_int_equal(list_files(names, 8), 2);
    assert_int_equal(tfevents_session_end(&w, TFEVENTS_STATUS_SUCCESS, 3, 1e9 + 5, msg, sizeof msg),
                     0);
    tfevents_close(&w);
    assert_int_equal(list_files(names, 8), 3);
    scan_named(names[2], &s);
    assert_int_equal(s.records, 2);
    assert_true(s.has_end);

    /* A fresh start removes every event file. */
    assert_int_equal(tfevents_open(&w, dir, true, msg, sizeof msg), 0);
    assert_int_equal(list_files(names, 8), 0);
    assert_int_equal(tfevents_last_step(&w), 0);
    tfevents_close(&w);
    json_decref(hp);
}

static void test_session_bytes(void **state)
{
    (void)state;
    char msg[512];
    tfevents_writer w;
    assert_int_equal(tfevents_open(&w, dir, true, msg, sizeof msg), 0);
    json_t *hp = json_pack("{s:f}", "lr", 0.5);
    assert_int_equal(tfevents_session_start(&w, hp, "12", 2.0, msg, sizeof msg), 0);
    tfevents_close(&w);
    json_decref(hp);
    char names[8][256];
    assert_int_equal(list_files(names, 8), 1);
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, names[0]);
    fileio_buf fb = {0};
    assert_int_equal(fileio_read(path, 0, &fb, msg, sizeof msg), 0);
    /* The map entry {"lr": Value{number_value 0.5}} inside the plugin content:
     * entry key 0x0a, length 15; key "lr"; value 0x12, length 9, double field 2. */
    static const uint8_t entry[] = {0x0a, 15, 0x0a, 2, 'l', 'r', 0x12, 9,   0x11,
                                    0,    0,  0,    0, 0,   0,   0xe0, 0x3f};
    assert_non_null(memmem(fb.data, fb.len, entry, sizeof entry));
    static const uint8_t group[] = {0x22, 2, '1', '2'}; // group_name = field 4
    assert_non_null(memmem(fb.data, fb.len, group, sizeof group));
    assert_non_null(memmem(fb.data, fb.len, "\x0a\x07hparams", 9)); // plugin_name
    assert_non_null(
        memmem(fb.data, fb.len, TFEVENTS_TAG_SESSION_START, strlen(TFEVENTS_TAG_SESSION_START)));
    assert_non_null(memmem(fb.data, fb.len, TFEVENTS_FILE_VERSION, 13));
    fileio_buf_free(&fb);
}

static void test_unwritable(void **state)
{
    (void)state;
    char msg[512];
    tfevents_writer w;
    char missing[300];
    snprintf(missing, sizeof missing, "%s/no-such-dir", dir);
    assert_int_equal(tfevents_open(&w, missing, false, msg, sizeof msg), ERR_IO);
    assert_non_null(strstr(msg, "no-such-dir"));
    tfevents_close(&w);
    if (geteuid() == 0) return; // root writes into a read-only directory anyway
    char ro[300];
    snprintf(ro, sizeof ro, "%s/ro", dir);
    assert_int_equal(tju_mkdirs(ro), 0);
    assert_int_equal(tfevents_open(&w, ro, false, msg, sizeof msg), 0);
    assert_int_equal(chmod(ro, 0555), 0);
    tfevents_scalar v = {"val/loss", 1.0};
    assert_int_equal(tfevents_scalars(&w, 1, 1.0, &v, 1, msg, sizeof msg), ERR_IO);
    assert_non_null(strstr(msg, "cannot create"));
    assert_int_equal(tfevents_scalars(&w, 2, 1.0, &v, 1, msg, sizeof msg), ERR_IO); // dead now
    tfevents_close(&w);
    chmod(ro, 0755);
}

/* A new file's directory is synced (durability itself cannot be tested):
 * a writer that cannot open the directory for it, here for want of a
 * descriptor once the file is open, reports the failure and leaves no file;
 * with descriptors to spare the same call writes its file. */
static void test_dir_synced(void **state)
{
    (void)state;
    char msg[512];
    char names[8][256];
    tfevents_writer w;
    tfevents_scalar v = {"val/loss", 1.0};
    assert_int_equal(tfevents_open(&w, dir, true, msg, sizeof msg), 0);
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    int lowest = dup(0); // the lowest free descriptor: the new file's
    assert_true(lowest >= 0);
    close(lowest);
    struct rlimit lim = {(rlim_t)lowest + 1, old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
    int rc = tfevents_scalars(&w, 1, 1.0, &v, 1, msg, sizeof msg);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(rc, ERR_IO);
    assert_non_null(strstr(msg, "cannot sync the directory"));
    assert_int_equal(list_files(names, 8), 0); // created, nothing written: removed
    tfevents_close(&w);
    assert_int_equal(tfevents_open(&w, dir, false, msg, sizeof msg), 0);
    assert_int_equal(tfevents_scalars(&w, 1, 1.0, &v, 1, msg, sizeof msg), 0);
    tfevents_close(&w);
    assert_int_equal(list_files(names, 8), 1);
    tfevents_scan s;
    scan_named(names[0], &s);
    assert_int_equal(s.records, 2); // file_version, step 1
    assert_int_equal(s.last_step, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),     cmocka_unit_test(test_varints),
        cmocka_unit_test(test_fields),     cmocka_unit_test(test_nested),
        cmocka_unit_test(test_frame),      cmocka_unit_test(test_scan),
        cmocka_unit_test(test_writer),     cmocka_unit_test(test_session_bytes),
        cmocka_unit_test(test_unwritable), cmocka_unit_test(test_dir_synced),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
