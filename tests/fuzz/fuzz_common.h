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

/* A failure must come with a reason: MSG non-empty and NUL-terminated. */
static inline void fz_need_msg(const char *msg, const char *what)
{
    if (msg[0] == 0) {
        fprintf(stderr, "%s failed without a message\n", what);
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
