/* fuzz_common — small helpers shared by the libFuzzer harnesses in tests/fuzz/.
 *
 * Each harness is one translation unit built by tests/fuzz/run with
 * -fsanitize=fuzzer,address,undefined; a property violation calls abort() so
 * libFuzzer records the input as a crash. */
#ifndef SWEEP_FUZZ_COMMON_H
#define SWEEP_FUZZ_COMMON_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "log.h"

/* True when the NUL-terminated S is valid UTF-8 (no overlongs, no
 * surrogates, nothing above U+10FFFF): messages end up in JSON replies, and
 * jansson refuses to build a string from anything else. */
static inline int fz_utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int n;
        unsigned min;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1;
            c &= 0x1F;
            min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            c &= 0x0F;
            min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            c &= 0x07;
            min = 0x10000;
        } else
            return 0;
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80) return 0;
            c = (c << 6) | (p[i] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
        p += n + 1;
    }
    return 1;
}

/* A failure must come with a reason: MSG non-empty, NUL-terminated, and
 * valid UTF-8 (the daemon sends it to the client inside a JSON reply). */
static inline void fz_need_msg(const char *msg, const char *what)
{
    if (msg[0] == 0) {
        fprintf(stderr, "%s failed without a message\n", what);
        abort();
    }
    if (!fz_utf8_ok(msg)) {
        fprintf(stderr, "%s failed with a message that is not valid UTF-8: %s\n", what, msg);
        abort();
    }
}

/* jx_dump_line(V) is one line that jx_parse reads back as an equal value. */
static inline void fz_roundtrip(const json_t *v)
{
    char *s = jx_dump_line(v);
    if (!s) abort();
    if (strchr(s, '\n')) {
        fprintf(stderr, "jx_dump_line output holds a newline: %s\n", s);
        abort();
    }
    char msg[256] = "";
    json_t *back = jx_parse(s, strlen(s), msg, sizeof msg);
    if (!back || !json_equal((json_t *)v, back)) {
        fprintf(stderr, "round trip failed (%s): %s\n", msg, s);
        abort();
    }
    json_decref(back);
    free(s);
}

/* Called with every parsed request object; fuzz_request.c links it to job
 * validation when the daemon's job module is available (FUZZ_WITH_JOBSPEC). */
void fz_request_hook(const json_t *req);

/* Silences the logger (validation errors would flood the fuzzer's output). */
static inline void fz_quiet(void)
{
    log_set_level(LOGL_OFF);
}

#endif
