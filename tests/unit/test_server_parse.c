/* Tests for the request validation of daemon/server.c (server.h:
 * server_request_read, server_request_op, server_request_parse and the op
 * table): every error code the daemon answers before running an op, with the
 * exact message it sends, the eight ops accepted with their keys, the
 * two-step form the daemon uses around its access check, and who owns the
 * parsed request (leaks show up under the SAN build). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "server.h"

/* The outcome of server_request_parse on a line. */
typedef struct {
    int rc;                   // return value
    json_t *req;              // request (owned; NULL on failure)
    server_op op;             // op on success, -1 otherwise
    const char *code;         // protocol code on failure, NULL otherwise
    char msg[SERVER_MSG_MAX]; // message on failure
} outcome;

static void run(const char *line, outcome *o)
{
    memset(o, 0, sizeof *o);
    o->op = (server_op)-1;
    o->req = (json_t *)o; /* must be overwritten */
    o->rc =
        server_request_parse(line, strlen(line), &o->req, &o->op, &o->code, o->msg, sizeof o->msg);
}

/* LINE fails with RC and CODE; the message is exactly MSG (or, with
 * PREFIX_ONLY, starts with it). */
static void expect_fail(const char *line, int rc, const char *code, const char *msg,
                        bool prefix_only)
{
    outcome o;
    run(line, &o);
    if (o.rc != rc)
        fail_msg("%s: returned %d (code %s, \"%s\"), expected %d", line, o.rc,
                 o.code ? o.code : "(null)", o.msg, rc);
    assert_null(o.req);
    assert_int_equal((int)o.op, -1);
    assert_non_null(o.code);
    assert_string_equal(o.code, code);
    if (prefix_only) {
        if (strncmp(o.msg, msg, strlen(msg)))
            fail_msg("%s: message \"%s\" does not start with \"%s\"", line, o.msg, msg);
    } else {
        assert_string_equal(o.msg, msg);
    }
}

/* The error the daemon would send is a valid JSON string (valid UTF-8). */
static void assert_utf8(const char *msg)
{
    json_t *s = json_string(msg);
    if (!s) fail_msg("message is not valid UTF-8: %s", msg);
    json_decref(s);
}

static void test_line_too_long(void **state)
{
    (void)state;
    json_t *req = (json_t *)&req;
    server_op op = (server_op)-1;
    const char *code = NULL;
    char msg[SERVER_MSG_MAX] = "";
    int rc = server_request_parse(NULL, 1048677, &req, &op, &code, msg, sizeof msg);
    assert_int_equal(rc, ERR_TOOBIG);
    assert_null(req);
    assert_int_equal((int)op, -1);
    assert_string_equal(code, "line_too_long");
    assert_string_equal(msg, "request line of 1048677 bytes is longer than the limit of "
                             "1048576 bytes");
    /* The same through the first step alone. */
    const char *name = "x";
    req = (json_t *)&req;
    code = NULL;
    rc = server_request_read(NULL, 5000000, &req, &name, &code, msg, sizeof msg);
    assert_int_equal(rc, ERR_TOOBIG);
    assert_null(req);
    assert_null(name);
    assert_string_equal(code, "line_too_long");
    assert_non_null(strstr(msg, "5000000 bytes"));
}

static void test_invalid_json(void **state)
{
    (void)state;
    expect_fail("{", ERR_PARSE, "invalid_json",
                "line 1 column 1: string or '}' expected near end of file", false);
    expect_fail("{\"op\":\"ping\"", ERR_PARSE, "invalid_json",
                "line 1 column 12: '}' expected near end of file", false);
    expect_fail("{\"op\":\"ping\",\"op\":\"status\"}", ERR_PARSE, "invalid_json",
                "line 1 column 17: duplicate object key", true);
    expect_fail("{\"op\":NaN}", ERR_PARSE, "invalid_json", "line 1 column", true);
    expect_fail("{\"op\":\"ping\"} {}", ERR_PARSE, "invalid_json", "line 1 column", true);
    expect_fail("", ERR_PARSE, "invalid_json", "line 1 column", true);
    /* Bytes that are not UTF-8: the message stays valid UTF-8. */
    outcome o;
    run("{\"op\":\"\xff\xfe\"}", &o);
    assert_int_equal(o.rc, ERR_PARSE);
    assert_string_equal(o.code, "invalid_json");
    assert_utf8(o.msg);
}

static void test_not_an_object(void **state)
{
    (void)state;
    static const char *const lines[] = {"[]",   "42",   "\"ping\"",
                                        "null", "true", "[{\"op\":\"ping\"}]"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        expect_fail(lines[i], ERR_INVALID, "invalid_request",
                    "a request must be a JSON object with an \"op\"", false);
}

static void test_missing_op(void **state)
{
    (void)state;
    expect_fail("{}", ERR_INVALID, "invalid_request", "op: missing", false);
    expect_fail("{\"job\":1}", ERR_INVALID, "invalid_request", "op: missing", false);
    expect_fail("{\"OP\":\"ping\"}", ERR_INVALID, "invalid_request", "op: missing", false);
}

static void test_op_not_a_string(void **state)
{
    (void)state;
    expect_fail("{\"op\":1}", ERR_INVALID, "invalid_request", "op: expected a string, got 1",
                false);
    expect_fail("{\"op\":null}", ERR_INVALID, "invalid_request", "op: expected a string, got null",
                false);
    expect_fail("{\"op\":[\"ping\"]}", ERR_INVALID, "invalid_request",
                "op: expected a string, got an array", false);
    expect_fail("{\"op\":{\"ping\":1}}", ERR_INVALID, "invalid_request",
                "op: expected a string, got an object", false);
    expect_fail("{\"op\":true}", ERR_INVALID, "invalid_request", "op: expected a string, got true",
                false);
}

/* PREFIX + 300 x U+00E9 (600 bytes) + SUFFIX into BUF (1400 bytes); returns
 * BUF. A string longer than any message buffer, cut inside a character. */
static const char *long_utf8_line(char *buf, const char *prefix, const char *suffix)
{
    strcpy(buf, prefix);
    for (int i = 0; i < 300; i++)
        strcat(buf, "\xc3\xa9");
    strcat(buf, suffix);
    return buf;
}

static void test_unknown_op(void **state)
{
    (void)state;
    expect_fail("{\"op\":\"pong\"}", ERR_NOTFOUND, "unknown_op",
                "op: unknown op \"pong\" (expected ping, submit, status, cancel, best, trial,"
                " watch or shutdown)",
                false);
    expect_fail("{\"op\":\"PING\"}", ERR_NOTFOUND, "unknown_op", "op: unknown op \"PING\" (", true);
    expect_fail("{\"op\":\"\"}", ERR_NOTFOUND, "unknown_op", "op: unknown op \"\" (", true);
    /* The op is checked before the keys: an unknown op with extra keys is
     * still unknown_op. */
    expect_fail("{\"op\":\"stop\",\"force\":true}", ERR_NOTFOUND, "unknown_op",
                "op: unknown op \"stop\" (", true);
    /* A long op name is cut with ..." and the message stays valid UTF-8. */
    char line[1400];
    outcome o;
    run(long_utf8_line(line, "{\"op\":\"", "\"}"), &o);
    assert_int_equal(o.rc, ERR_NOTFOUND);
    assert_string_equal(o.code, "unknown_op");
    assert_non_null(strstr(o.msg, "...\" (expected ping,"));
    assert_utf8(o.msg);
}

static void test_unknown_key(void **state)
{
    (void)state;
    /* The first unknown key in sorted order is named, with the op's keys. */
    expect_fail("{\"op\":\"best\",\"job\":1,\"zz\":1,\"aa\":2}", ERR_INVALID, "invalid_request",
                "aa: unknown key (op best takes: op, job, limit)", false);
    /* Every op, with a key it does not take. */
    static const struct {
        const char *line; // request
        const char *msg;  // exact message
    } cases[] = {
        {"{\"op\":\"ping\",\"x\":1}", "x: unknown key (op ping takes: op)"},
        {"{\"op\":\"submit\",\"job\":{},\"extra\":true}",
         "extra: unknown key (op submit takes: op, job)"},
        {"{\"op\":\"status\",\"id\":1}", "id: unknown key (op status takes: op, job)"},
        {"{\"op\":\"cancel\",\"job\":1,\"limit\":2}",
         "limit: unknown key (op cancel takes: op, job)"},
        {"{\"op\":\"best\",\"job\":1,\"id\":2}", "id: unknown key (op best takes: op, job, limit)"},
        {"{\"op\":\"trial\",\"job\":1}", "job: unknown key (op trial takes: op, id)"},
        {"{\"op\":\"watch\",\"job\":1,\"follow\":true}",
         "follow: unknown key (op watch takes: op, job)"},
        {"{\"op\":\"shutdown\",\"force\":1}", "force: unknown key (op shutdown takes: op)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_fail(cases[i].line, ERR_INVALID, "invalid_request", cases[i].msg, false);
}

/* A key too long for the message is cut inside a multi-byte character: the
 * message is made valid UTF-8 (as the reply would carry it) and still ends
 * with the op's keys. */
static void test_unknown_key_message_utf8(void **state)
{
    (void)state;
    char line[1400];
    outcome o;
    run(long_utf8_line(line, "{\"op\":\"ping\",\"", "\":1}"), &o);
    assert_int_equal(o.rc, ERR_INVALID);
    assert_string_equal(o.code, "invalid_request");
    assert_utf8(o.msg);
    assert_true(strncmp(o.msg, "\xc3\xa9\xc3\xa9", 4) == 0);
    size_t n = strlen(o.msg), tail = strlen(" (op ping takes: op)");
    assert_true(n > tail);
    assert_string_equal(o.msg + n - tail, " (op ping takes: op)");
}

static void test_each_op_accepted(void **state)
{
    (void)state;
    static const struct {
        const char *line; // request with every key the op takes
        server_op op;     // expected op
        size_t n_keys;    // keys in the request
    } cases[] = {
        {"{\"op\":\"ping\"}", SERVER_OP_PING, 1},
        {"{\"op\":\"submit\",\"job\":{\"name\":\"x\"}}", SERVER_OP_SUBMIT, 2},
        {"{\"op\":\"status\",\"job\":3}", SERVER_OP_STATUS, 2},
        {"{\"op\":\"cancel\",\"job\":1}", SERVER_OP_CANCEL, 2},
        {"{\"limit\":5,\"job\":1,\"op\":\"best\"}", SERVER_OP_BEST, 3},
        {"{\"op\":\"trial\",\"id\":17}", SERVER_OP_TRIAL, 2},
        {"{\"op\":\"watch\",\"job\":2}", SERVER_OP_WATCH, 2},
        {"{\"op\":\"shutdown\"}", SERVER_OP_SHUTDOWN, 1},
    };
    bool seen[SERVER_N_OPS] = {false};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        outcome o;
        run(cases[i].line, &o);
        if (o.rc != 0) fail_msg("%s: refused (%s: %s)", cases[i].line, o.code, o.msg);
        assert_null(o.code);
        assert_int_equal((int)o.op, (int)cases[i].op);
        seen[o.op] = true;
        assert_non_null(o.req);
        assert_true(json_is_object(o.req));
        assert_int_equal(json_object_size(o.req), cases[i].n_keys);
        assert_string_equal(json_string_value(json_object_get(o.req, "op")), server_op_name(o.op));
        /* The caller holds the only reference. */
        assert_int_equal((int)o.req->refcount, 1);
        json_decref(o.req);
        /* Keys are optional as far as validation goes: {"op":name} alone passes
         * (the op's handler asks for what it needs). */
        char bare[64];
        snprintf(bare, sizeof bare, "{\"op\":\"%s\"}", server_op_name(cases[i].op));
        run(bare, &o);
        assert_int_equal(o.rc, 0);
        assert_int_equal((int)o.op, (int)cases[i].op);
        json_decref(o.req);
    }
    for (int k = 0; k < SERVER_N_OPS; k++)
        assert_true(seen[k]);
}

static void test_op_table(void **state)
{
    (void)state;
    static const char *const names[] = {"ping", "submit", "status", "cancel",
                                        "best", "trial",  "watch",  "shutdown"};
    assert_int_equal(SERVER_N_OPS, 8);
    for (int k = 0; k < SERVER_N_OPS; k++) {
        assert_string_equal(server_op_name(k), names[k]);
        const char *const *keys = server_op_keys(k);
        assert_non_null(keys);
        assert_string_equal(keys[0], "op");
    }
    assert_string_equal(server_op_keys(SERVER_OP_BEST)[1], "job");
    assert_string_equal(server_op_keys(SERVER_OP_BEST)[2], "limit");
    assert_null(server_op_keys(SERVER_OP_BEST)[3]);
    assert_string_equal(server_op_keys(SERVER_OP_TRIAL)[1], "id");
    assert_null(server_op_keys(SERVER_OP_PING)[1]);
    assert_null(server_op_name(-1));
    assert_null(server_op_name(SERVER_N_OPS));
    assert_null(server_op_keys(-1));
    assert_null(server_op_keys(SERVER_N_OPS));
}

/* The daemon's form: read (steps 1-4), its access check, then op (5-6). */
static void test_two_steps(void **state)
{
    (void)state;
    const char line[] = "{\"op\":\"trial\",\"id\":4}";
    json_t *req = NULL;
    const char *name = NULL, *code = NULL;
    char msg[SERVER_MSG_MAX] = "";
    assert_int_equal(server_request_read(line, strlen(line), &req, &name, &code, msg, sizeof msg),
                     0);
    assert_non_null(req);
    assert_string_equal(name, "trial");
    /* NAME is borrowed from the request. */
    assert_ptr_equal(name, json_string_value(json_object_get(req, "op")));
    server_op op = (server_op)-1;
    assert_int_equal(server_request_op(req, &op, &code, msg, sizeof msg), 0);
    assert_int_equal((int)op, SERVER_OP_TRIAL);
    assert_null(code);
    json_decref(req);

    /* An unknown op passes the first step: the access check comes before it. */
    const char bad[] = "{\"op\":\"nope\",\"x\":1}";
    assert_int_equal(server_request_read(bad, strlen(bad), &req, &name, &code, msg, sizeof msg), 0);
    assert_string_equal(name, "nope");
    op = (server_op)-1;
    assert_int_equal(server_request_op(req, &op, &code, msg, sizeof msg), ERR_NOTFOUND);
    assert_int_equal((int)op, -1);
    assert_string_equal(code, "unknown_op");
    assert_true(strncmp(msg, "op: unknown op \"nope\"", 21) == 0);
    json_decref(req);

    /* server_request_op on values that never passed the first step refuses
     * them the same way instead of crashing. */
    json_t *arr = json_array();
    code = NULL;
    assert_int_equal(server_request_op(arr, &op, &code, msg, sizeof msg), ERR_INVALID);
    assert_string_equal(code, "invalid_request");
    assert_string_equal(msg, "a request must be a JSON object with an \"op\"");
    json_decref(arr);
    code = NULL;
    assert_int_equal(server_request_op(NULL, &op, &code, msg, sizeof msg), ERR_INVALID);
    assert_string_equal(code, "invalid_request");
    json_t *noop = json_pack("{s:i}", "job", 1);
    code = NULL;
    assert_int_equal(server_request_op(noop, &op, &code, msg, sizeof msg), ERR_INVALID);
    assert_string_equal(msg, "op: missing");
    json_decref(noop);
}

/* A short (or no) message buffer changes nothing but the text's length. */
static void test_small_buffers(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "{", "[]", "{}", "{\"op\":\"pong\"}", "{\"op\":\"ping\",\"x\":1}", "{\"op\":\"ping\"}"};
    static const int rcs[] = {ERR_PARSE, ERR_INVALID, ERR_INVALID, ERR_NOTFOUND, ERR_INVALID, 0};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        char tiny[8];
        memset(tiny, 'x', sizeof tiny);
        json_t *req = NULL;
        server_op op;
        const char *code = NULL;
        int rc =
            server_request_parse(lines[i], strlen(lines[i]), &req, &op, &code, tiny, sizeof tiny);
        assert_int_equal(rc, rcs[i]);
        if (rc == 0) {
            json_decref(req);
            continue;
        }
        assert_non_null(code);
        assert_int_equal(strlen(tiny), sizeof tiny - 1);
        code = NULL;
        rc = server_request_parse(lines[i], strlen(lines[i]), &req, &op, &code, NULL, 0);
        assert_int_equal(rc, rcs[i]);
        assert_non_null(code);
        assert_null(req);
    }
}

/* Ownership: on success the caller holds the one reference and nothing else
 * is kept; on failure nothing is left to free (LSan checks both in the SAN
 * build). Many rounds make a leak per call stand out. */
static void test_ownership(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "{\"op\":\"submit\",\"job\":{\"space\":{\"lr\":[0.1,0.2]},\"name\":\"n\"}}",
        "{\"op\":\"submit\",\"job\":{\"space\":{}},\"bad\":[1,2,3]}",
        "{\"op\":[1,2,{\"a\":\"b\"}]}",
        "{\"op\":\"zzz\",\"job\":{\"a\":[1]}}",
        "{\"op\":\"best\",\"job\":{\"a\":1},\"limit\":[1]}",
        "[{\"op\":\"ping\"}]",
        "{\"op\":\"ping\",",
    };
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
            outcome o;
            run(lines[i], &o);
            if (o.rc == 0) {
                assert_int_equal((int)o.req->refcount, 1);
                json_t *job = json_object_get(o.req, "job");
                if (job) assert_int_equal((int)job->refcount, 1);
                json_decref(o.req);
            } else {
                assert_null(o.req);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_too_long),    cmocka_unit_test(test_invalid_json),
        cmocka_unit_test(test_not_an_object),    cmocka_unit_test(test_missing_op),
        cmocka_unit_test(test_op_not_a_string),  cmocka_unit_test(test_unknown_op),
        cmocka_unit_test(test_unknown_key),      cmocka_unit_test(test_unknown_key_message_utf8),
        cmocka_unit_test(test_each_op_accepted), cmocka_unit_test(test_op_table),
        cmocka_unit_test(test_two_steps),        cmocka_unit_test(test_small_buffers),
        cmocka_unit_test(test_ownership),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
