/* test_regress_fuzz — the fuzz harnesses' checks, replayed in `make check`.
 *
 * Every libFuzzer harness of tests/fuzz/ is compiled into this test with its
 * entry point renamed, and run over the committed seed corpus
 * (tests/fuzz/corpus/<harness>/) and over every input that once made a
 * harness fail (tests/fuzz/regress/<harness>/). A harness signals a violated
 * property with abort(), so a regression shows up as this test dying; the
 * file being replayed is printed first ("# replay ...") to name it.
 * Each bug found by fuzzing also has a named test below asserting the fixed
 * behaviour directly, so the failure message says what broke. */
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

/* ---- the harnesses, entry points and file-local names renamed ------------ */

#define LLVMFuzzerInitialize fz_init_ndjson
#define LLVMFuzzerTestOneInput fz_one_ndjson
#define on_line ndjson_on_line
#define xs ndjson_xs
#include "../fuzz/fuzz_ndjson.c"
#undef LLVMFuzzerInitialize
#undef LLVMFuzzerTestOneInput
#undef on_line
#undef xs

#define LLVMFuzzerInitialize fz_init_request
#define LLVMFuzzerTestOneInput fz_one_request
#define on_line request_on_line
#include "../fuzz/fuzz_request.c"
#undef LLVMFuzzerInitialize
#undef LLVMFuzzerTestOneInput
#undef on_line

#define LLVMFuzzerInitialize fz_init_jobspec
#define LLVMFuzzerTestOneInput fz_one_jobspec
#include "../fuzz/fuzz_jobspec.c"
#undef LLVMFuzzerInitialize
#undef LLVMFuzzerTestOneInput

#include "../fuzz/fuzz_jobcheck.c"

#define LLVMFuzzerInitialize fz_init_safetensors
#define LLVMFuzzerTestOneInput fz_one_safetensors
#include "../fuzz/fuzz_safetensors.c"
#undef LLVMFuzzerInitialize
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerInitialize fz_init_jpeg
#define LLVMFuzzerTestOneInput fz_one_jpeg
#include "../fuzz/fuzz_jpeg.c"
#undef LLVMFuzzerInitialize
#undef LLVMFuzzerTestOneInput

typedef int (*fz_entry)(const uint8_t *data, size_t size);

/* A harness reports a violated property with abort(); while replaying, the
 * SIGABRT handler jumps back so the test can name the input and go on. */
static sigjmp_buf fz_jmp;
static volatile sig_atomic_t fz_replaying;

static void on_abort(int sig)
{
    if (fz_replaying) siglongjmp(fz_jmp, 1);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Reads PATH whole; caller frees. */
static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs FN on every regular file of SWEEP_SRCDIR/tests/fuzz/SUB/NAME; returns
 * the number of files (a missing directory counts 0). Inputs that make FN
 * abort are counted in *FAILED and the first is named in FIRST. */
static int replay_dir(const char *sub, const char *name, fz_entry fn, int *failed, char *first,
                      size_t firstlen)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/%s/%s", SWEEP_SRCDIR, sub, name);
    DIR *d = opendir(dir);
    if (!d) return 0;
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        names = realloc(names, (n + 1) * sizeof *names);
        assert_non_null(names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_names);
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            size_t len;
            uint8_t *data = slurp(path, &len);
            fprintf(stderr, "# replay %s/%s/%s\n", sub, name, names[i]);
            if (sigsetjmp(fz_jmp, 1) == 0) {
                fz_replaying = 1;
                fn(data, len);
                fz_replaying = 0;
            } else {
                fz_replaying = 0;
                fprintf(stderr, "# FAILED: tests/fuzz/%s/%s/%s\n", sub, name, names[i]);
                if (!*failed) snprintf(first, firstlen, "tests/fuzz/%s/%s/%s", sub, name, names[i]);
                (*failed)++;
            }
            free(data);
            count++;
        }
        free(names[i]);
    }
    free(names);
    return count;
}

static void replay(const char *name, fz_entry fn, int (*init)(int *, char ***))
{
    init(NULL, NULL);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_abort;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGABRT, &sa, &old);
    int failed = 0;
    char first[1024] = "";
    int seeds = replay_dir("corpus", name, fn, &failed, first, sizeof first);
    int regress = replay_dir("regress", name, fn, &failed, first, sizeof first);
    sigaction(SIGABRT, &old, NULL);
    /* The seed corpus is committed: an empty one means the tree is broken. */
    assert_true(seeds > 0);
    if (failed)
        fail_msg("%d of %d inputs violate a property of fuzz_%s (see the message above "
                 "\"# FAILED\"), first: %s",
                 failed, seeds + regress, name, first);
}

static void test_replay_ndjson(void **state)
{
    (void)state;
    replay("ndjson", fz_one_ndjson, fz_init_ndjson);
}

static void test_replay_request(void **state)
{
    (void)state;
    replay("request", fz_one_request, fz_init_request);
}

static void test_replay_jobspec(void **state)
{
    (void)state;
    replay("jobspec", fz_one_jobspec, fz_init_jobspec);
}

static void test_replay_safetensors(void **state)
{
    (void)state;
    replay("safetensors", fz_one_safetensors, fz_init_safetensors);
}

static void test_replay_jpeg(void **state)
{
    (void)state;
    replay("jpeg", fz_one_jpeg, fz_init_jpeg);
}

/* ---- named regressions ---------------------------------------------------- */

/* B1: a JPEG cut off after its quantisation tables, before the frame header:
 * libjpeg-turbo reads the header "successfully" without dimensions, and
 * image_jpeg_size must still refuse it instead of returning 0 with its
 * outputs unset. */
static void test_jpeg_size_truncated_before_sof(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fuzz/regress/jpeg/size_truncated_before_sof",
             SWEEP_SRCDIR);
    size_t len;
    uint8_t *data = slurp(path, &len);
    int w = -7, h = -7;
    char msg[256] = "";
    int rc = image_jpeg_size(data + 1, len - 1, &w, &h, msg, sizeof msg);
    assert_int_equal(rc, ERR_DATA);
    assert_true(msg[0] != 0);
    image_u8 im = {0};
    msg[0] = 0;
    assert_int_equal(image_decode_jpeg(data + 1, len - 1, 0, &im, msg, sizeof msg), ERR_DATA);
    assert_null(im.px);
    free(data);
}

/* B7: jx_parse's error message quotes the text near the error as jansson
 * cut it, which can end inside a multi-byte character; the daemon could not
 * put such a message into a JSON reply and sent nothing at all. Every
 * message must be valid UTF-8. */
static void test_jx_parse_message_is_utf8(void **state)
{
    (void)state;
    static const char *const inputs[] = {
        "{\"op\":\"\\u00\xc2\x98\"}",          /* bad escape, then a 2-byte char */
        "{\"o5p\": \"\\\xde\xb6\xc9\xcb\"}",   /* escape of a multi-byte char */
        "{\"op\": \xe4\xb8\xad\xe6\x96\x87}",  /* token that is a 3-byte char */
        "{\"op\":\"\\ud83\xf0\x9f\x98\x80\"}", /* broken surrogate, 4-byte char */
        "[\"\xe4\xb8",                         /* input ends inside a char */
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        char msg[256] = "";
        json_t *v = jx_parse(inputs[i], strlen(inputs[i]), msg, sizeof msg);
        assert_null(v);
        assert_true(msg[0] != 0);
        if (!fz_utf8_ok(msg)) fail_msg("input %zu: message is not valid UTF-8: %s", i, msg);
        /* and so it fits into a JSON reply */
        json_t *s = json_string(msg);
        assert_non_null(s);
        json_decref(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_ndjson),
        cmocka_unit_test(test_replay_request),
        cmocka_unit_test(test_replay_jobspec),
        cmocka_unit_test(test_replay_safetensors),
        cmocka_unit_test(test_replay_jpeg),
        cmocka_unit_test(test_jpeg_size_truncated_before_sof),
        cmocka_unit_test(test_jx_parse_message_is_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
