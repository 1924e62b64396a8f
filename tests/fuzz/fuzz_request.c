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
 * expansion (fuzz_jobcheck.c, shared with fuzz_jobspec).
 *
 * Every framed line (and every line dropped as too long) also goes through
 * the daemon's own request validation, server_request_parse (server.h), which
 * handle_request() answers from. Properties:
 *  - exactly one outcome: 0 with an object request and an op index in range
 *    (code untouched), or a negative code, no request, the op untouched, a
 *    protocol code from {line_too_long, invalid_json, invalid_request,
 *    unknown_op} and a non-empty, valid UTF-8 message;
 *  - on success the op name matches the request's "op" and every key of the
 *    request is one the op takes (server_op_keys);
 *  - the outcome agrees with a reference classification built here from
 *    jx_parse and the op table (same code, and the message names the fault:
 *    jx_parse's message, "op: missing", the unknown op, the first unknown key
 *    in sorted order with the op's keys listed);
 *  - server_request_read followed by server_request_op (the daemon's two
 *    steps around the access check) gives the same code and message;
 *  - a tiny message buffer gives the same code and a NUL-terminated message. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "jsonx.h"
#include "ndjson.h"
#include "server.h"

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
    static const char *const ops[] = {"submit", "status", "cancel",   "best", "trial",
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
    json_object_foreach((json_t *)obj, k, m)
    {
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
            json_array_foreach(m, i, e)
            {
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

/* The protocol codes server_request_parse may give. */
static int rq_known_code(const char *code)
{
    static const char *const codes[] = {"line_too_long", "invalid_json", "invalid_request",
                                        "unknown_op", NULL};
    for (int i = 0; codes[i]; i++)
        if (!strcmp(code, codes[i])) return 1;
    return 0;
}

static void rq_fail(const char *what, const char *code, const char *msg)
{
    fprintf(stderr, "server_request_parse: %s (code %s, message \"%s\")\n", what,
            code ? code : "(null)", msg ? msg : "");
    abort();
}

/* Reference outcome for LINE: the expected protocol code (NULL: success, with
 * *OP set), plus what the message must start with / contain ("" when the
 * check does not apply). */
typedef struct {
    const char *code;  // expected code, NULL for success
    int op;            // expected op on success
    char prefix[600];  // the message starts with this
    char contains[96]; // the message contains this
} rq_expect;

static void rq_reference(const char *line, size_t len, rq_expect *e)
{
    memset(e, 0, sizeof *e);
    e->op = -1;
    if (!line) {
        e->code = "line_too_long";
        snprintf(e->prefix, sizeof e->prefix, "request line of %zu bytes is longer than", len);
        return;
    }
    char msg[SERVER_MSG_MAX] = "";
    json_t *v = jx_parse(line, len, msg, sizeof msg);
    if (!v) {
        e->code = "invalid_json";
        snprintf(e->prefix, sizeof e->prefix, "%s", msg); /* the whole message */
        return;
    }
    json_t *op = json_is_object(v) ? json_object_get(v, "op") : NULL;
    if (!json_is_object(v)) {
        e->code = "invalid_request";
        snprintf(e->prefix, sizeof e->prefix, "a request must be a JSON object");
    } else if (!op) {
        e->code = "invalid_request";
        snprintf(e->prefix, sizeof e->prefix, "op: missing");
    } else if (!json_is_string(op)) {
        e->code = "invalid_request";
        snprintf(e->prefix, sizeof e->prefix, "op: expected a string");
    } else {
        const char *name = json_string_value(op);
        int k;
        for (k = 0; k < SERVER_N_OPS; k++)
            if (!strcmp(name, server_op_name(k))) break;
        if (k == SERVER_N_OPS) {
            e->code = "unknown_op";
            snprintf(e->prefix, sizeof e->prefix, "op: unknown op \"");
            /* A short printable ASCII name is quoted as it is. */
            int plain = strlen(name) < 40;
            for (const char *p = name; plain && *p; p++)
                if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\') plain = 0;
            if (plain) snprintf(e->contains, sizeof e->contains, "\"%s\"", name);
        } else {
            /* The first key (sorted) the op does not take. */
            const char *const *keys = server_op_keys(k);
            const char *worst = NULL, *key;
            json_t *m;
            json_object_foreach(v, key, m)
            {
                int ok = 0;
                for (int i = 0; keys[i]; i++)
                    if (!strcmp(key, keys[i])) ok = 1;
                if (!ok && (!worst || strcmp(key, worst) < 0)) worst = key;
            }
            if (worst) {
                e->code = "invalid_request";
                if (strlen(worst) < 64) {
                    int plain = 1;
                    for (const char *p = worst; *p; p++)
                        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x80) plain = 0;
                    if (plain) snprintf(e->prefix, sizeof e->prefix, "%s: unknown key", worst);
                }
                snprintf(e->contains, sizeof e->contains, "(op %s takes: op", name);
            } else {
                e->op = k;
            }
        }
    }
    json_decref(v);
}

static void rq_check_dispatch(const char *line, size_t len)
{
    rq_expect e;
    rq_reference(line, len, &e);

    json_t *req = (json_t *)&req; /* sentinels: must be overwritten / kept */
    server_op op = (server_op)-1;
    const char *code = NULL;
    char msg[SERVER_MSG_MAX];
    memset(msg, 0, sizeof msg);
    int rc = server_request_parse(line, len, &req, &op, &code, msg, sizeof msg);
    if (rc == 0) {
        if (code) rq_fail("success but *code set", code, msg);
        if (!req || !json_is_object(req)) rq_fail("success without an object request", code, msg);
        if ((int)op < 0 || op >= SERVER_N_OPS)
            rq_fail("success with an op out of range", code, msg);
        if (e.code) rq_fail("accepted a request the reference refuses", e.code, msg);
        if ((int)op != e.op)
            rq_fail("op index differs from the reference", server_op_name(op), msg);
        const char *name = json_string_value(json_object_get(req, "op"));
        if (!name || strcmp(name, server_op_name(op)))
            rq_fail("op index does not match the request's op", name, msg);
        const char *const *keys = server_op_keys(op);
        const char *key;
        json_t *m;
        json_object_foreach(req, key, m)
        {
            int ok = 0;
            for (int i = 0; keys[i]; i++)
                if (!strcmp(key, keys[i])) ok = 1;
            if (!ok) rq_fail("accepted a key the op does not take", key, msg);
        }
        json_decref(req);
    } else {
        if (rc >= 0) rq_fail("failure with a non-negative return", code, msg);
        if (req) rq_fail("failure left *req set", code, msg);
        if ((int)op != -1) rq_fail("failure changed *op", code, msg);
        if (!code || !rq_known_code(code)) rq_fail("failure with an unknown code", code, msg);
        if (memchr(msg, 0, sizeof msg) == NULL) rq_fail("message not NUL-terminated", code, "");
        fz_need_msg(msg, "server_request_parse");
        if (!e.code) rq_fail("refused a request the reference accepts", code, msg);
        if (strcmp(code, e.code)) rq_fail("code differs from the reference", code, msg);
        if (strncmp(msg, e.prefix, strlen(e.prefix)))
            rq_fail("message does not start as expected", code, msg);
        if (e.contains[0] && !strstr(msg, e.contains))
            rq_fail("message does not name the fault", code, msg);
    }

    /* The daemon's two steps (with its access check between them) agree. */
    json_t *req2 = NULL;
    const char *name2 = NULL, *code2 = NULL;
    char msg2[SERVER_MSG_MAX] = "";
    int rc2 = server_request_read(line, len, &req2, &name2, &code2, msg2, sizeof msg2);
    if (rc2 == 0) {
        if (!req2 || !name2 || strcmp(name2, json_string_value(json_object_get(req2, "op"))))
            rq_fail("server_request_read: bad op name", code2, msg2);
        server_op op2 = (server_op)-1;
        rc2 = server_request_op(req2, &op2, &code2, msg2, sizeof msg2);
        if (rc2 == 0 && (rc != 0 || op2 != op)) rq_fail("two steps accept differently", code, msg);
        json_decref(req2);
    } else if (req2 || name2) {
        rq_fail("server_request_read: failure left outputs set", code2, msg2);
    }
    if (rc2 != rc || (rc && (strcmp(code2, code) || strcmp(msg2, msg))))
        rq_fail("two steps give another outcome", code2, msg2);

    /* A tiny buffer: same outcome, message cut but terminated. */
    char tiny[8];
    memset(tiny, 'x', sizeof tiny);
    json_t *req3 = NULL;
    server_op op3;
    const char *code3 = NULL;
    int rc3 = server_request_parse(line, len, &req3, &op3, &code3, tiny, sizeof tiny);
    if (rc3 != rc) rq_fail("outcome depends on the message buffer size", code3, "");
    if (rc3 == 0)
        json_decref(req3);
    else if (strcmp(code3, code) || memchr(tiny, 0, sizeof tiny) == NULL)
        rq_fail("tiny buffer: other code or unterminated message", code3, "");
}

static int on_line(void *ud, char *line, size_t len)
{
    (void)ud;
    rq_check_dispatch(line, len);
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
