/* fuzz_request — libFuzzer harness for the daemon's request path: bytes from a
 * client go through the ndjson framer (a small line limit so oversized lines
 * are exercised), each line through jx_parse, and each parsed value through
 * the jsonx getters the request dispatcher uses (op, job, id, limit) and the
 * key checks.
 *
 * Properties checked besides "no crash, no sanitizer report":
 *  - jx_parse either returns a value or fills a non-empty message;
 *  - a parsed value never holds a non-finite real (NaN/Infinity are refused);
 *  - jx_dump_line gives one line that parses back to an equal value;
 *  - every getter failure comes with a non-empty message.
 * The "job" member of a request also goes through job validation and
 * expansion (fuzz_jobcheck.c, shared with fuzz_jobspec). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "jsonx.h"
#include "ndjson.h"

#include "fuzz_common.h"

static void check_finite(const json_t *v, int depth)
{
    if (depth > 10000) abort();
    if (json_is_real(v) && !isfinite(json_real_value(v))) {
        fprintf(stderr, "jx_parse returned a non-finite real\n");
        abort();
    }
    if (json_is_object(v)) {
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)v, k, m) check_finite(m, depth + 1);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m) check_finite(m, depth + 1);
    }
}

static void exercise_getters(const json_t *obj)
{
    static const char *const keys[] = {"op", "job", "id", "limit", "name", "x", NULL};
    static const char *const allowed[] = {"op", "job", "id", "limit", NULL};
    static const char *const ops[] = {"submit", "status", "cancel", "best", "trial",
                                      "watch",  "ping",   "shutdown", NULL};
    char msg[256];
    for (int i = 0; keys[i]; i++) {
        double d;
        int64_t n;
        bool b;
        const char *s;
        json_t *o;
        int rc;
        msg[0] = 0;
        rc = jx_get_number(obj, "", keys[i], i & 1, &d, msg, sizeof msg);
        if (rc < 0) fz_need_msg(msg, "jx_get_number");
        if (rc == 0 && !isfinite(d)) abort();
        msg[0] = 0;
        rc = jx_get_int(obj, "req", keys[i], i & 1, 1, INT64_MAX, &n, msg, sizeof msg);
        if (rc < 0) fz_need_msg(msg, "jx_get_int");
        if (rc == 0 && n < 1) abort();
        msg[0] = 0;
        rc = jx_get_int(obj, "req", keys[i], false, -5, 5, &n, msg, sizeof msg);
        if (rc < 0) fz_need_msg(msg, "jx_get_int");
        if (rc == 0 && (n < -5 || n > 5)) abort();
        msg[0] = 0;
        rc = jx_get_bool(obj, "", keys[i], false, &b, msg, sizeof msg);
        if (rc < 0) fz_need_msg(msg, "jx_get_bool");
        msg[0] = 0;
        rc = jx_get_string(obj, "", keys[i], i & 1, i & 2, &s, msg, sizeof msg);
        if (rc < 0) fz_need_msg(msg, "jx_get_string");
        if (rc == 0 && !s) abort();
        msg[0] = 0;
        rc = jx_get_object(obj, "a.b", keys[i], false, &o, msg, sizeof msg);
        if (rc < 0) fz_need_msg(msg, "jx_get_object");
        if (rc == 0 && !json_is_object(o)) abort();
        msg[0] = 0;
        rc = jx_get_array(obj, "a.b", keys[i], false, &o, msg, sizeof msg);
        if (rc < 0) fz_need_msg(msg, "jx_get_array");
        if (rc == 0 && !json_is_array(o)) abort();
    }
    json_t *op = json_object_get(obj, "op");
    if (op) {
        msg[0] = 0;
        int rc = jx_as_enum(op, "op", ops, msg, sizeof msg);
        if (rc < 0) fz_need_msg(msg, "jx_as_enum");
        if (rc >= 8) abort();
    }
    msg[0] = 0;
    if (jx_check_keys(obj, "", allowed, msg, sizeof msg) < 0) fz_need_msg(msg, "jx_check_keys");
    /* Describe every member, into a tiny and a normal buffer. */
    const char *k;
    json_t *m;
    json_object_foreach((json_t *)obj, k, m) {
        char small[5], big[128], path[64];
        jx_describe(m, small, sizeof small);
        if (strnlen(small, sizeof small) == sizeof small) abort();
        jx_describe(m, big, sizeof big);
        if (strnlen(big, sizeof big) == sizeof big) abort();
        jx_path_key(path, sizeof path, "job.space", k);
        if (strnlen(path, sizeof path) == sizeof path) abort();
        if (json_is_array(m)) {
            size_t i;
            json_t *e;
            json_array_foreach(m, i, e) {
                jx_path_index(path, sizeof path, k, i);
                if (strnlen(path, sizeof path) == sizeof path) abort();
                int64_t n;
                msg[0] = 0;
                if (jx_as_int(e, path, 0, 100, &n, msg, sizeof msg) < 0)
                    fz_need_msg(msg, "jx_as_int");
                double d;
                msg[0] = 0;
                if (jx_as_number(e, path, &d, msg, sizeof msg) < 0)
                    fz_need_msg(msg, "jx_as_number");
            }
        }
    }
}

static int on_line(void *ud, char *line, size_t len)
{
    (void)ud;
    if (!line) return 0; /* oversized: the daemon answers "line too long" */
    char msg[256] = "";
    json_t *v = jx_parse(line, len, msg, sizeof msg);
    if (!v) {
        fz_need_msg(msg, "jx_parse");
        return 0;
    }
    check_finite(v, 0);
    fz_roundtrip(v);
    if (json_is_object(v)) {
        exercise_getters(v);
        fz_request_hook(v);
    }
    json_decref(v);
    return 0;
}

void fz_check_job(const json_t *job); /* fuzz_jobcheck.c */

void fz_request_hook(const json_t *req)
{
    json_t *job = json_object_get(req, "job");
    if (job) fz_check_job(job);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The whole input as one value, as a file would be read... */
    char msg[256] = "";
    json_t *v = jx_parse((const char *)data, size, msg, sizeof msg);
    if (v) {
        check_finite(v, 0);
        fz_roundtrip(v);
        json_decref(v);
    } else {
        fz_need_msg(msg, "jx_parse");
    }
    /* ...and as a stream of request lines, in two chunks. */
    ndjson_buf b;
    ndjson_init(&b, 4096);
    size_t half = size / 2;
    if (ndjson_feed(&b, (const char *)data, half, on_line, NULL) != 0) abort();
    if (ndjson_feed(&b, (const char *)data + half, size - half, on_line, NULL) != 0) abort();
    ndjson_free(&b);
    return 0;
}
