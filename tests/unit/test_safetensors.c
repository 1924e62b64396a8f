/* test_safetensors — the safetensors reader and writer: round trips, dtype
 * conversions (F16 subnormals, infinities, NaN, BF16, F64), writer argument
 * checks, and hostile files that must be refused with a message naming the
 * tensor or byte offset, without reading out of bounds (run under ASan).
 * Also the header alone (st_header_read, what the daemon reads at
 * submission: the same tensors, without reading the data), PyTorch files
 * refused naming etc/export-weights.py, and the preprocessing metadata
 * (weights_meta). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "safetensors.h"
#include "st_header.h"
#include "weights_meta.h"
#include "util_jpeg.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    return tju_mkdtemp(tmpdir, sizeof tmpdir, "st");
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(tmpdir);
    return 0;
}

/* Writes raw bytes to DIR/NAME and returns the path in a static buffer. */
static const char *write_bytes(const char *name, const void *buf, size_t n)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);
    return path;
}

/* Writes a file with header JSON HDR (length field = strlen(HDR) unless
 * HLEN_OVERRIDE != 0) followed by NDATA bytes of data. */
static const char *write_st(const char *name, const char *hdr, size_t ndata, uint64_t hlen_override)
{
    size_t hl = strlen(hdr);
    size_t n = 8 + hl + ndata;
    uint8_t *buf = calloc(1, n);
    assert_non_null(buf);
    uint64_t l = hlen_override ? hlen_override : hl;
    memcpy(buf, &l, 8);
    memcpy(buf + 8, hdr, hl);
    for (size_t i = 0; i < ndata; i++)
        buf[8 + hl + i] = (uint8_t)i;
    const char *p = write_bytes(name, buf, n);
    free(buf);
    return p;
}

static void test_round_trip(void **state)
{
    (void)state;
    char path[512], msg[256] = "";
    snprintf(path, sizeof path, "%s/rt.safetensors", tmpdir);
    float a[2 * 3] = {1, -2, 3.5f, 0, 1e-30f, -7};
    float b[5] = {9, 8, 7, 6, 5};
    float scalar = 42.0f;
    int64_t sa[2] = {2, 3}, sb[1] = {5};
    int64_t ids[3] = {1, -2, INT64_MAX}, sid[1] = {3};
    st_writer *w = st_writer_new();
    assert_non_null(w);
    assert_int_equal(st_writer_add_f32(w, "layer1.0.conv1.weight", 2, sa, a), 0);
    assert_int_equal(st_writer_add_f32(w, "b", 1, sb, b), 0);
    assert_int_equal(st_writer_add_f32(w, "scalar", 0, NULL, &scalar), 0);
    assert_int_equal(st_writer_add_raw(w, "ids", ST_I64, 1, sid, ids, sizeof ids), 0);
    assert_int_equal(st_writer_add_f32(w, "empty", 1, (int64_t[]){0}, NULL), 0);
    assert_int_equal(st_writer_meta(w, "arch", "resnet18"), 0);
    assert_int_equal(st_writer_meta(w, "classes", "[\"cat\",\"dög\"]"), 0);
    assert_int_equal(st_writer_save(w, path, msg, sizeof msg), 0);
    st_writer_free(w);

    /* The header length is a multiple of 8 and the data section follows it. */
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    uint64_t hl;
    assert_int_equal(fread(&hl, 8, 1, fp), 1);
    fclose(fp);
    assert_int_equal(hl % 8, 0);
    struct stat sbuf;
    assert_int_equal(stat(path, &sbuf), 0);
    assert_int_equal((size_t)sbuf.st_size, 8 + hl + sizeof a + sizeof b + 4 + sizeof ids);

    st_file *f = NULL;
    assert_int_equal(st_open(&f, path, msg, sizeof msg), 0);
    assert_int_equal(st_count(f), 5);
    assert_string_equal(st_get(f, 0)->name, "layer1.0.conv1.weight"); // header order kept
    assert_string_equal(st_get(f, 4)->name, "empty");
    assert_null(st_get(f, 5));
    const st_tensor *t = st_find(f, "layer1.0.conv1.weight");
    assert_non_null(t);
    assert_int_equal(t->dtype, ST_F32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(t->numel, 6);
    assert_int_equal(t->nbytes, 24);
    assert_int_equal(t->offset, 8 + hl);
    float got[6];
    assert_int_equal(st_read_f32(f, t, got, msg, sizeof msg), 0);
    assert_memory_equal(got, a, sizeof a);
    t = st_find(f, "b");
    assert_non_null(t);
    assert_int_equal(st_read_f32(f, t, got, msg, sizeof msg), 0);
    assert_memory_equal(got, b, sizeof b);
    t = st_find(f, "scalar");
    assert_non_null(t);
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->numel, 1);
    assert_int_equal(st_read_f32(f, t, got, msg, sizeof msg), 0);
    assert_true(got[0] == 42.0f);
    t = st_find(f, "empty");
    assert_non_null(t);
    assert_int_equal(t->numel, 0);
    t = st_find(f, "ids");
    assert_non_null(t);
    assert_int_equal(t->dtype, ST_I64);
    assert_int_equal(st_read_f32(f, t, got, msg, sizeof msg), ERR_TYPE);
    assert_non_null(strstr(msg, "ids"));
    assert_null(st_find(f, "missing"));
    assert_null(st_find(f, "__metadata__"));
    assert_string_equal(st_metadata(f, "arch"), "resnet18");
    assert_string_equal(st_metadata(f, "classes"), "[\"cat\",\"dög\"]");
    assert_null(st_metadata(f, "input_size"));
    assert_string_equal(st_path(f), path);
    st_close(f);

    /* No temporary files are left behind. */
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    assert_int_equal(n, 1);
}

static void test_overwrite_and_write_errors(void **state)
{
    (void)state;
    char path[512], msg[256] = "";
    snprintf(path, sizeof path, "%s/ow.safetensors", tmpdir);
    float v1 = 1, v2 = 2;
    int64_t s1[1] = {1};
    for (int k = 0; k < 2; k++) {
        st_writer *w = st_writer_new();
        assert_int_equal(st_writer_add_f32(w, "x", 1, s1, k ? &v2 : &v1), 0);
        assert_int_equal(st_writer_save(w, path, msg, sizeof msg), 0);
        st_writer_free(w);
    }
    st_file *f;
    assert_int_equal(st_open(&f, path, msg, sizeof msg), 0);
    float got;
    assert_int_equal(st_read_f32(f, st_find(f, "x"), &got, msg, sizeof msg), 0);
    assert_true(got == 2.0f);
    st_close(f);

    st_writer *w = st_writer_new();
    assert_int_equal(st_writer_add_f32(w, "x", 1, s1, &v1), 0);
    assert_int_equal(st_writer_add_f32(w, "x", 1, s1, &v1), ERR_EXISTS);
    assert_int_equal(st_writer_add_f32(w, "__metadata__", 1, s1, &v1), ERR_INVALID);
    assert_int_equal(st_writer_add_f32(w, "neg", 1, (int64_t[]){-1}, &v1), ERR_INVALID);
    assert_int_equal(st_writer_add_raw(w, "bad", ST_F16, 1, s1, &v1, 4), ERR_INVALID);
    assert_int_equal(st_writer_add_raw(w, "other", ST_OTHER, 1, s1, &v1, 1), ERR_INVALID);
    char bad[512];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.safetensors", tmpdir);
    msg[0] = 0;
    assert_int_equal(st_writer_save(w, bad, msg, sizeof msg), ERR_IO);
    assert_non_null(strstr(msg, "no/such/dir"));
    st_writer_free(w);

    msg[0] = 0;
    snprintf(bad, sizeof bad, "%s/absent.safetensors", tmpdir);
    assert_int_equal(st_open(&f, bad, msg, sizeof msg), ERR_IO);
    assert_null(f);
    assert_non_null(strstr(msg, "absent.safetensors"));
}

static float bits_f(uint32_t b)
{
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static void test_dtype_conversion(void **state)
{
    (void)state;
    char path[512], msg[256] = "";
    snprintf(path, sizeof path, "%s/dt.safetensors", tmpdir);
    const uint16_t h[] = {0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x3c00, 0xc000,
                          0x7bff, 0x7c00, 0xfc00, 0x7e00, 0x3555, 0x8001};
    const float hf[] = {0.0f, -0.0f,       0x1p-24f, 1023 * 0x1p-24f, 0x1p-14f,
                        1.0f, -2.0f,       65504.0f, INFINITY,        -INFINITY,
                        NAN,  0x1.554p-2f, -0x1p-24f};
    const uint16_t bf[] = {0x3f80, 0xc049, 0x7f80, 0x0001, 0xff80, 0x7fc0};
    const float bff[] = {1.0f, bits_f(0xc0490000u), INFINITY, bits_f(0x00010000u), -INFINITY, NAN};
    const double d[] = {1.5, -1e300, 1e-50, 3.141592653589793, 0.0};
    const float df[] = {1.5f, -INFINITY, 0.0f, 3.14159265f, 0.0f};
    int64_t sh[1] = {13}, sb[1] = {6}, sd[1] = {5};
    st_writer *w = st_writer_new();
    assert_int_equal(st_writer_add_raw(w, "h", ST_F16, 1, sh, h, sizeof h), 0);
    assert_int_equal(st_writer_add_raw(w, "bf", ST_BF16, 1, sb, bf, sizeof bf), 0);
    assert_int_equal(st_writer_add_raw(w, "d", ST_F64, 1, sd, d, sizeof d), 0);
    assert_int_equal(st_writer_save(w, path, msg, sizeof msg), 0);
    st_writer_free(w);

    st_file *f;
    assert_int_equal(st_open(&f, path, msg, sizeof msg), 0);
    float out[16];
    const st_tensor *t = st_find(f, "h");
    assert_int_equal(t->dtype, ST_F16);
    /* "h" is first (26 bytes), so "bf" starts 2 bytes off a 4-byte boundary
     * and the reads of it are unaligned. */
    assert_int_equal(st_read_f32(f, t, out, msg, sizeof msg), 0);
    for (size_t i = 0; i < 13; i++) {
        if (isnan(hf[i])) {
            assert_true(isnan(out[i]));
        } else {
            assert_true(out[i] == hf[i]);
            assert_int_equal(signbit(out[i]) != 0, signbit(hf[i]) != 0);
        }
    }
    t = st_find(f, "bf");
    assert_int_equal(t->dtype, ST_BF16);
    assert_int_equal(t->offset % 4, 2); // unaligned for float access
    assert_int_equal(st_read_f32(f, t, out, msg, sizeof msg), 0);
    for (size_t i = 0; i < 6; i++) {
        if (isnan(bff[i]))
            assert_true(isnan(out[i]));
        else
            assert_true(out[i] == bff[i]);
    }
    t = st_find(f, "d");
    assert_int_equal(t->dtype, ST_F64);
    assert_int_equal(st_read_f32(f, t, out, msg, sizeof msg), 0);
    for (size_t i = 0; i < 5; i++)
        assert_true(out[i] == df[i]);
    st_close(f);
}

/* A hostile file and a fragment its error message must contain. */
struct hostile {
    const char *what;   // description for the failure message
    const char *header; // JSON header text
    size_t ndata;       // bytes of data after the header
    uint64_t hlen;      // header length field, 0 = the real length
    const char *expect; // substring of the error message
};

static void test_hostile_headers(void **state)
{
    (void)state;
    static const struct hostile cases[] = {
        {"huge header length", "{}", 0, UINT64_MAX, "header length"},
        {"header length beyond file", "{}", 4, 4096, "exceeds the file"},
        {"header length one past file", "{\"a\":1}", 0, 8, "exceeds the file"},
        {"non-object header", "[1,2,3]", 0, 0, "not a JSON object"},
        {"string header", "\"x\"", 0, 0, "header"},
        {"invalid JSON", "{\"a\":", 0, 0, "byte offset"},
        {"tiny header", "{", 0, 0, "cannot hold"},
        {"entry not object", "{\"w\":[1]}", 0, 0, "\"w\""},
        {"dtype missing", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 0, "dtype"},
        {"dtype not string", "{\"w\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 0,
         "dtype"},
        {"unknown dtype", "{\"w\":{\"dtype\":\"F17\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 0,
         "F17"},
        {"shape not array", "{\"w\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,4]}}", 4, 0,
         "shape"},
        {"negative shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
         0, "negative"},
        {"fractional shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}",
         4, 0, "shape[0]"},
        {"string shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4,
         0, "shape[0]"},
        {"overflowing shape",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,4]}}",
         4, 0, "overflow"},
        {"overflowing byte size",
         "{\"w\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}", 8, 0,
         "overflow"},
        {"wrapping shape product",
         "{\"w\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0,
         0, "overflow"},
        {"too many dims",
         "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1, 0,
         "dimensions"},
        {"offsets beyond data", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
         8, 0, "beyond the data section"},
        {"huge offsets",
         "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[9223372036854775806,"
         "9223372036854775807]}}",
         8, 0, "beyond"},
        {"offsets beyond int64",
         "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,18446744073709551615]}}", 8, 0,
         "byte offset"},
        {"begin after end", "{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,2]}}", 8, 0,
         "after end"},
        {"negative offset", "{\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[-2,0]}}", 8,
         0, "negative"},
        {"size mismatch", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8, 0,
         "need 8"},
        {"three offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8,
         0, "data_offsets"},
        {"offsets not integers",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",4]}}", 8, 0,
         "data_offsets[0]"},
        {"overlapping tensors",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, 0, "overlaps"},
        {"metadata not object", "{\"__metadata__\":[1]}", 0, 0, "__metadata__"},
        {"metadata value not string", "{\"__metadata__\":{\"input_size\":224}}", 0, 0,
         "input_size"},
        {"duplicate key",
         "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
         "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
         2, 0, "byte offset"},
    };
    char msg[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct hostile *c = &cases[i];
        const char *p = write_st("hostile.safetensors", c->header, c->ndata, c->hlen);
        st_file *f = (st_file *)1;
        msg[0] = 0;
        int rc = st_open(&f, p, msg, sizeof msg);
        if (rc != ERR_PARSE || f != NULL || !strstr(msg, c->expect) ||
            !strstr(msg, "hostile.safetensors")) // every refusal names the file
            fail_msg("%s: rc %d, message \"%s\" (want \"%s\")", c->what, rc, msg, c->expect);
    }
}

static void test_truncated_and_short_files(void **state)
{
    (void)state;
    char msg[256];
    st_file *f;
    /* Valid header, data cut short by one byte. */
    const char *hdr = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
    const char *p = write_st("trunc.safetensors", hdr, 15, 0);
    msg[0] = 0;
    assert_int_equal(st_open(&f, p, msg, sizeof msg), ERR_PARSE);
    assert_non_null(strstr(msg, "\"w\""));
    p = write_st("full.safetensors", hdr, 16, 0);
    assert_int_equal(st_open(&f, p, msg, sizeof msg), 0);
    st_close(f);

    /* Every prefix of a valid file is refused (or, for no prefix, accepted). */
    FILE *fp = fopen(p, "rb");
    uint8_t buf[256];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    for (size_t k = 0; k < n; k++) {
        const char *q = write_bytes("prefix.safetensors", buf, k);
        msg[0] = 0;
        f = (st_file *)1;
        int rc = st_open(&f, q, msg, sizeof msg);
        if (rc != ERR_PARSE || f || !msg[0]) fail_msg("prefix of %zu bytes: rc %d", k, rc);
    }
    /* A NUL inside the header. */
    char nulhdr[] = "{\"a\":\"x\0y\"}";
    uint8_t b2[8 + sizeof nulhdr];
    uint64_t hl = sizeof nulhdr - 1;
    memcpy(b2, &hl, 8);
    memcpy(b2 + 8, nulhdr, sizeof nulhdr - 1);
    p = write_bytes("nul.safetensors", b2, 8 + hl);
    assert_int_equal(st_open(&f, p, msg, sizeof msg), ERR_PARSE);
    /* A directory is not a file. */
    assert_int_equal(st_open(&f, tmpdir, msg, sizeof msg), ERR_IO);
}

/* Header padding with trailing spaces (as the format allows) and an empty
 * header object are accepted. */
static void test_padding_accepted(void **state)
{
    (void)state;
    char msg[256];
    st_file *f;
    const char *p =
        write_st("pad.safetensors",
                 "{\"w\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}     ", 3, 0);
    assert_int_equal(st_open(&f, p, msg, sizeof msg), 0);
    assert_int_equal(st_count(f), 1);
    assert_int_equal(st_find(f, "w")->nbytes, 3);
    st_close(f);
    p = write_st("empty.safetensors", "{}", 0, 0);
    assert_int_equal(st_open(&f, p, msg, sizeof msg), 0);
    assert_int_equal(st_count(f), 0);
    assert_null(st_find(f, "w"));
    st_close(f);
}

/* Random corruptions of a valid file (bytes of the length field and header
 * changed, the file cut short): st_open either refuses with a message or
 * yields tensors whose every byte lies inside the file, and reading them stays
 * in bounds (ASan checks the reads). */
static void test_mutations(void **state)
{
    (void)state;
    char path[512], msg[256];
    snprintf(path, sizeof path, "%s/base.safetensors", tmpdir);
    float a[6] = {1, 2, 3, 4, 5, 6};
    uint16_t h[3] = {0x3c00, 0x4000, 0x4200};
    st_writer *w = st_writer_new();
    assert_int_equal(st_writer_add_f32(w, "a", 2, (int64_t[]){2, 3}, a), 0);
    assert_int_equal(st_writer_add_raw(w, "h", ST_F16, 1, (int64_t[]){3}, h, sizeof h), 0);
    assert_int_equal(st_writer_add_f32(w, "s", 0, NULL, a), 0);
    assert_int_equal(st_writer_meta(w, "k", "v"), 0);
    assert_int_equal(st_writer_save(w, path, msg, sizeof msg), 0);
    st_writer_free(w);
    FILE *fp = fopen(path, "rb");
    uint8_t base[1024];
    size_t n = fread(base, 1, sizeof base, fp);
    fclose(fp);
    assert_true(n > 16 && n < sizeof base);
    uint64_t hl;
    memcpy(&hl, base, 8);
    static const char alphabet[] = "0123456789-[]{}\",:. eE\"F16BF32I64U8shapedtypedata_offsets";
    uint64_t r = 12345;
    uint8_t buf[1024];
    int opened = 0, refused = 0;
    for (int it = 0; it < 1000; it++) {
        memcpy(buf, base, n);
        size_t len = n;
        int edits = 1 + (int)((r >> 60) & 3);
        for (int e = 0; e < edits; e++) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            uint64_t x = r >> 16;
            switch (x % 5) {
            case 0: // a byte of the length field
                buf[x / 5 % 8] = (uint8_t)(x >> 24);
                break;
            case 1: // a header byte from JSON-ish characters
            case 2:
                buf[8 + (x / 5) % hl] = (uint8_t)alphabet[(x >> 32) % (sizeof alphabet - 1)];
                break;
            case 3: // a random header byte
                buf[8 + (x / 5) % hl] = (uint8_t)(x >> 40);
                break;
            default: // cut the file short
                len = (size_t)((x / 5) % n);
                break;
            }
        }
        const char *p = write_bytes("mut.safetensors", buf, len);
        st_file *f = NULL;
        msg[0] = 0;
        int rc = st_open(&f, p, msg, sizeof msg);
        if (rc) {
            if (!msg[0]) fail_msg("iteration %d: refused without a message", it);
            refused++;
            continue;
        }
        opened++;
        for (size_t i = 0; i < st_count(f); i++) {
            const st_tensor *t = st_get(f, i);
            assert_true(t->offset >= 8 && t->offset <= len && t->nbytes <= len - t->offset);
            float *dst = malloc(sizeof(float) * (t->numel ? (size_t)t->numel : 1));
            assert_non_null(dst);
            int rr = st_read_f32(f, t, dst, msg, sizeof msg);
            assert_true(rr == 0 || rr == ERR_TYPE);
            free(dst);
        }
        st_close(f);
    }
    printf("# mutations: %d opened, %d refused\n", opened, refused);
    assert_true(refused > 0);
}

/* st_header_read gives what st_open does, reading only the header: a file
 * whose data section is 256 MiB of holes is read at once, and a PyTorch file
 * is refused by both with a message naming etc/export-weights.py. */
static void test_header_only(void **state)
{
    (void)state;
    char msg[512];
    const char *hdr = "{\"__metadata__\":{\"input_size\":\"32\"},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"a\":{\"dtype\":\"U8\",\"shape\":[4,2],\"data_offsets\":[8,16]}}";
    const char *p = write_st("h.safetensors", hdr, 16, 0);
    st_header *h = NULL;
    st_file *f = NULL;
    assert_int_equal(st_header_read(&h, p, msg, sizeof msg), 0);
    assert_int_equal(st_open(&f, p, msg, sizeof msg), 0);
    assert_int_equal(st_header_count(h), 2);
    assert_int_equal(st_count(f), 2);
    for (size_t i = 0; i < 2; i++) {
        const st_tensor *x = st_header_get(h, i), *y = st_get(f, i);
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->offset, y->offset);
        assert_int_equal(x->nbytes, y->nbytes);
        assert_memory_equal(x->shape, y->shape, sizeof x->shape);
    }
    assert_int_equal(st_header_find(h, "a")->shape[0], 4);
    assert_null(st_header_find(h, "c"));
    assert_string_equal(st_header_metadata(h, "input_size"), "32");
    assert_string_equal(st_header_path(h), p);
    assert_ptr_equal(st_header_find(st_file_header(f), "b"), st_find(f, "b"));
    st_header_free(h);
    st_close(f);

    /* The data are not read: a 256 MiB tensor in a sparse file. */
    const char *big = "{\"w\":{\"dtype\":\"U8\",\"shape\":[268435456],"
                      "\"data_offsets\":[0,268435456]}}";
    p = write_st("big.safetensors", big, 0, 0);
    assert_int_equal(truncate(p, (off_t)(8 + strlen(big)) + 268435456), 0);
    assert_int_equal(st_header_read(&h, p, msg, sizeof msg), 0);
    assert_int_equal(st_header_find(h, "w")->nbytes, 268435456);
    st_header_free(h);
    assert_int_equal(truncate(p, 8 + (off_t)strlen(big) + 100), 0); // data cut short
    assert_int_equal(st_header_read(&h, p, msg, sizeof msg), ERR_PARSE);
    assert_null(h);
    assert_non_null(strstr(msg, "beyond the data section"));

    /* PyTorch files: torch.save's zip archive and a legacy pickle. */
    static const uint8_t zip[] = {'P', 'K', 3, 4, 0x14, 0, 0, 0, 8, 0, 'a', 'r', 'c', 'h'};
    static const uint8_t pkl[] = {0x80, 2, 0x8a, 0x0a, 'l', 'p', 0xfc, 0x9c, 'F', 0xf9, '.'};
    char files[2][512]; // write_bytes' buffer is static
    snprintf(files[0], sizeof files[0], "%s", write_bytes("m.pth", zip, sizeof zip));
    snprintf(files[1], sizeof files[1], "%s", write_bytes("legacy.pth", pkl, sizeof pkl));
    const char *what[2] = {"zip archive", "Python pickle"};
    for (int k = 0; k < 2; k++) {
        msg[0] = 0;
        assert_int_equal(st_header_read(&h, files[k], msg, sizeof msg), ERR_PARSE);
        assert_non_null(strstr(msg, what[k]));
        assert_non_null(strstr(msg, "etc/export-weights.py"));
        assert_non_null(strstr(msg, files[k]));
        msg[0] = 0;
        assert_int_equal(st_open(&f, files[k], msg, sizeof msg), ERR_PARSE);
        assert_non_null(strstr(msg, "etc/export-weights.py"));
    }
    /* st_header_parse needs the whole header in the buffer it is given. */
    uint8_t buf[64];
    uint64_t hl = 40;
    memcpy(buf, &hl, 8);
    memset(buf + 8, ' ', sizeof buf - 8);
    assert_int_equal(st_header_parse(&h, "x", buf, 20, 1000, msg, sizeof msg), ERR_PARSE);
    assert_non_null(strstr(msg, "only 20 of the 48 header bytes"));
    assert_int_equal(st_header_read(&h, tmpdir, msg, sizeof msg), ERR_IO);
}

/* A header with the given __metadata__ JSON object text META (empty: none). */
static st_header *meta_header(const char *meta)
{
    char hdr[512], msg[256];
    snprintf(hdr, sizeof hdr, "{%s%s%s}", *meta ? "\"__metadata__\":" : "", meta, "");
    const char *p = write_st("meta.safetensors", hdr, 0, 0);
    st_header *h = NULL;
    assert_int_equal(st_header_read(&h, p, msg, sizeof msg), 0);
    return h;
}

/* weights_meta: input_size, mean and std from the metadata, ImageNet's and
 * the default size otherwise, every malformed value refused naming it; the
 * given size wins over the file's. */
static void test_weights_meta(void **state)
{
    (void)state;
    char msg[256];
    weights_meta m;
    const char *from;
    st_header *h = meta_header("");
    assert_int_equal(weights_meta_read(h, &m, msg, sizeof msg), 0);
    assert_int_equal(m.input_size, 0);
    assert_false(m.has_mean || m.has_std);
    assert_true(m.mean[0] == 0.485f && m.std[2] == 0.225f);
    assert_int_equal(weights_input_size(&m, 0, &from), 224);
    assert_string_equal(from, "default");
    st_header_free(h);
    h = meta_header(
        "{\"input_size\":\"32\",\"mean\":\"[0.5, 0.25, 0]\",\"std\":\"[0.1,0.2,0.3]\"}");
    assert_int_equal(weights_meta_read(h, &m, msg, sizeof msg), 0);
    assert_int_equal(m.input_size, 32);
    assert_true(m.has_mean && m.has_std);
    assert_true(m.mean[0] == 0.5f && m.mean[1] == 0.25f && m.mean[2] == 0.0f);
    assert_true(m.std[0] == 0.1f && m.std[2] == 0.3f);
    assert_int_equal(weights_input_size(&m, 0, &from), 32);
    assert_string_equal(from, "weights");
    assert_int_equal(weights_input_size(&m, 64, &from), 64);
    assert_string_equal(from, "given");
    assert_int_equal(weights_input_size(NULL, 0, NULL), 224);
    st_header_free(h);
    static const struct {
        const char *meta; // __metadata__
        const char *want; // in the message
    } bad[] = {
        {"{\"input_size\":\"abc\"}", "\"input_size\" is \"abc\", not an integer from 8 to 4096"},
        {"{\"input_size\":\"4\"}", "\"input_size\" is \"4\""},
        {"{\"mean\":\"[0.5,0.5]\"}", "\"mean\" is [0.5,0.5], expected a JSON array of 3"},
        {"{\"mean\":\"[0.5,\\\"x\\\",0.5]\"}", "\"mean\"[1] is not a finite number"},
        {"{\"std\":\"[0.5,0.5,-1]\"}", "\"std\"[2] is not a positive number"},
        {"{\"std\":\"oops\"}", "\"std\" is oops"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        h = meta_header(bad[i].meta);
        msg[0] = 0;
        int rc = weights_meta_read(h, &m, msg, sizeof msg);
        if (rc != ERR_MODEL || !strstr(msg, bad[i].want) || !strstr(msg, "meta.safetensors"))
            fail_msg("%s: rc %d, message \"%s\" (want \"%s\")", bad[i].meta, rc, msg, bad[i].want);
        st_header_free(h);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overwrite_and_write_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dtype_conversion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_and_short_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_padding_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mutations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_weights_meta, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
