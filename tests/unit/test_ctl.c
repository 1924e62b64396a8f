/* test_ctl — sweepctl's pure parts: command-line parsing, table layout,
 * number/duration/bar formatting, the ETA estimate, reply rendering and the
 * submit request (relative job paths made absolute against the job's folder). */
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
#include "errors.h"
#include "jsonx.h"
#include "util_jpeg.h"

/* Parses a space-separated command line; returns the parse result. */
static int parse(ctl_args *a, const char *line, const char *env, char *msg, size_t msglen)
{
    static char buf[512];
    static char *argv[32];
    snprintf(buf, sizeof buf, "sweepctl %s", line);
    int argc = 0;
    for (char *tok = strtok(buf, " "); tok && argc < 31; tok = strtok(NULL, " "))
        argv[argc++] = tok;
    argv[argc] = NULL;
    return ctl_parse_args(a, argc, argv, env, msg, msglen);
}

static void test_args_commands(void **state)
{
    (void)state;
    ctl_args a;
    char msg[256];
    assert_int_equal(parse(&a, "submit job.json", NULL, msg, sizeof msg), 0);
    assert_int_equal(a.cmd, CTL_CMD_SUBMIT);
    assert_string_equal(a.file, "job.json");
    assert_string_equal(a.socket_path, "./var/sweepd.sock");
    assert_false(a.json);

    assert_int_equal(parse(&a, "status", NULL, msg, sizeof msg), 0);
    assert_int_equal(a.cmd, CTL_CMD_STATUS);
    assert_int_equal(a.id, 0);
    assert_int_equal(parse(&a, "status 12", NULL, msg, sizeof msg), 0);
    assert_int_equal(a.id, 12);

    assert_int_equal(parse(&a, "best 3", NULL, msg, sizeof msg), 0);
    assert_int_equal(a.cmd, CTL_CMD_BEST);
    assert_int_equal(a.id, 3);
    assert_int_equal(a.limit, CTL_DEFAULT_BEST);
    assert_int_equal(parse(&a, "best 3 -n 10", NULL, msg, sizeof msg), 0);
    assert_int_equal(a.limit, 10);
    assert_int_equal(parse(&a, "best -n7 4", NULL, msg, sizeof msg), 0);
    assert_int_equal(a.limit, 7);
    assert_int_equal(a.id, 4);

    assert_int_equal(parse(&a, "trial 17", NULL, msg, sizeof msg), 0);
    assert_int_equal(a.cmd, CTL_CMD_TRIAL);
    assert_int_equal(a.id, 17);
    assert_int_equal(parse(&a, "cancel 2", NULL, msg, sizeof msg), 0);
    assert_int_equal(a.cmd, CTL_CMD_CANCEL);
    assert_int_equal(parse(&a, "watch 2", NULL, msg, sizeof msg), 0);
    assert_int_equal(a.cmd, CTL_CMD_WATCH);
    assert_int_equal(parse(&a, "list", NULL, msg, sizeof msg), 0);
    assert_int_equal(a.cmd, CTL_CMD_LIST);
    assert_int_equal(parse(&a, "ping", NULL, msg, sizeof msg), 0);
    assert_int_equal(a.cmd, CTL_CMD_PING);
    assert_int_equal(parse(&a, "shutdown", NULL, msg, sizeof msg), 0);
    assert_int_equal(a.cmd, CTL_CMD_SHUTDOWN);
}

static void test_args_globals(void **state)
{
    (void)state;
    ctl_args a;
    char msg[256];
    assert_int_equal(parse(&a, "--json --socket /tmp/s.sock list", NULL, msg, sizeof msg), 0);
    assert_true(a.json);
    assert_string_equal(a.socket_path, "/tmp/s.sock");
    assert_int_equal(parse(&a, "--socket=/x.sock ping", "/env.sock", msg, sizeof msg), 0);
    assert_string_equal(a.socket_path, "/x.sock");
    assert_int_equal(parse(&a, "ping", "/env.sock", msg, sizeof msg), 0);
    assert_string_equal(a.socket_path, "/env.sock");
    assert_int_equal(parse(&a, "ping", "", msg, sizeof msg), 0);
    assert_string_equal(a.socket_path, "./var/sweepd.sock");

    assert_int_equal(parse(&a, "--help", NULL, msg, sizeof msg), 0);
    assert_true(a.help);
    assert_int_equal(a.cmd, CTL_CMD_NONE);
    assert_int_equal(parse(&a, "help best", NULL, msg, sizeof msg), 0);
    assert_true(a.help);
    assert_int_equal(a.cmd, CTL_CMD_BEST);
    assert_int_equal(parse(&a, "watch --help", NULL, msg, sizeof msg), 0);
    assert_true(a.help);
    assert_int_equal(a.cmd, CTL_CMD_WATCH);
}

static void test_args_errors(void **state)
{
    (void)state;
    ctl_args a;
    char msg[256];
    assert_int_equal(parse(&a, "", NULL, msg, sizeof msg), ERR_INVALID);
    assert_non_null(strstr(msg, "no command"));
    assert_int_equal(parse(&a, "frobnicate", NULL, msg, sizeof msg), ERR_INVALID);
    assert_non_null(strstr(msg, "'frobnicate'"));
    assert_int_equal(parse(&a, "--verbose list", NULL, msg, sizeof msg), ERR_INVALID);
    assert_non_null(strstr(msg, "'--verbose'"));
    assert_int_equal(parse(&a, "submit", NULL, msg, sizeof msg), ERR_INVALID);
    assert_non_null(strstr(msg, "JOB.json"));
    assert_int_equal(parse(&a, "cancel abc", NULL, msg, sizeof msg), ERR_INVALID);
    assert_string_equal(msg, "JOB: expected an integer >= 1, got \"abc\"");
    assert_int_equal(parse(&a, "cancel 0", NULL, msg, sizeof msg), ERR_INVALID);
    assert_string_equal(msg, "JOB: expected an integer >= 1, got \"0\"");
    assert_int_equal(parse(&a, "cancel 99999999999999999999", NULL, msg, sizeof msg), ERR_INVALID);
    assert_int_equal(parse(&a, "trial 5x", NULL, msg, sizeof msg), ERR_INVALID);
    assert_string_equal(msg, "trial ID: expected an integer >= 1, got \"5x\"");
    assert_int_equal(parse(&a, "status 1 2", NULL, msg, sizeof msg), ERR_INVALID);
    assert_non_null(strstr(msg, "'2'"));
    assert_int_equal(parse(&a, "ping now", NULL, msg, sizeof msg), ERR_INVALID);
    assert_int_equal(parse(&a, "best 3 -n", NULL, msg, sizeof msg), ERR_INVALID);
    assert_int_equal(parse(&a, "best 3 -n -2", NULL, msg, sizeof msg), ERR_INVALID);
    assert_string_equal(msg, "-n: expected an integer from 1 to 100000, got \"-2\"");
    assert_int_equal(parse(&a, "best 3 -n100001", NULL, msg, sizeof msg), ERR_INVALID);
    assert_string_equal(msg, "-n: expected an integer from 1 to 100000, got \"100001\"");
    assert_int_equal(parse(&a, "best 3 -n 5k", NULL, msg, sizeof msg), ERR_INVALID);
    assert_int_equal(parse(&a, "list --json", NULL, msg, sizeof msg), ERR_INVALID);
    assert_non_null(strstr(msg, "before the command"));
    assert_int_equal(parse(&a, "--socket", NULL, msg, sizeof msg), ERR_INVALID);
    assert_int_equal(parse(&a, "watch 3 -n 2", NULL, msg, sizeof msg), ERR_INVALID);
    /* The command is known when its operands are wrong, for its own usage. */
    assert_int_equal(parse(&a, "best", NULL, msg, sizeof msg), ERR_INVALID);
    assert_int_equal(a.cmd, CTL_CMD_BEST);
}

static void test_table_layout(void **state)
{
    (void)state;
    static const char *const hdr[] = {"id", "name", "val_accuracy"};
    ctl_table *t = ctl_table_new(3, hdr, "rlr");
    assert_non_null(t);
    assert_int_equal(ctl_table_row(t), 0);
    ctl_table_cell(t, "%d", 7);
    ctl_table_cell(t, "%s", "pets");
    ctl_table_cell(t, "%.4f", 0.5);
    assert_int_equal(ctl_table_row(t), 0);
    ctl_table_cell(t, "%d", 12);
    ctl_table_cell(t, "%s", "fashion-mnist-long");
    /* third cell missing: prints empty */
    assert_int_equal(ctl_table_rows(t), 2);
    char *s = ctl_table_render(t);
    assert_string_equal(s, "id  name                val_accuracy\n"
                           "--  ------------------  ------------\n"
                           " 7  pets                      0.5000\n"
                           "12  fashion-mnist-long\n");
    free(s);
    ctl_table_free(t);
}

static void test_table_utf8_and_growth(void **state)
{
    (void)state;
    static const char *const hdr[] = {"a", "b"};
    ctl_table *t = ctl_table_new(2, hdr, "ll");
    for (int i = 0; i < 100; i++) {
        assert_int_equal(ctl_table_row(t), 0);
        ctl_table_cell(t, "%s", i == 50 ? "\xc3\xa9t\xc3\xa9" : "x"); // "été": 3 columns
        ctl_table_cell(t, "%d", i);
        ctl_table_cell(t, "%s", "ignored extra cell");
    }
    assert_int_equal(ctl_table_rows(t), 100);
    char *s = ctl_table_render(t);
    /* Column a is 3 wide ("été"), so "x" rows pad to 3 then two spaces. */
    assert_non_null(strstr(s, "\nx    0\n"));
    assert_non_null(strstr(s, "\n\xc3\xa9t\xc3\xa9  50\n"));
    assert_null(strstr(s, "ignored"));
    assert_int_equal(ctl_utf8_width("\xc3\xa9t\xc3\xa9"), 3);
    free(s);
    ctl_table_free(t);
}

static void test_format(void **state)
{
    (void)state;
    char b[64];
    assert_string_equal(ctl_fmt_duration(b, sizeof b, 42.4), "42s");
    assert_string_equal(ctl_fmt_duration(b, sizeof b, 2.34), "2.3s");
    assert_string_equal(ctl_fmt_duration(b, sizeof b, 0), "0.0s");
    assert_string_equal(ctl_fmt_duration(b, sizeof b, 185), "3m05s");
    assert_string_equal(ctl_fmt_duration(b, sizeof b, 3720), "1h02m");
    assert_string_equal(ctl_fmt_duration(b, sizeof b, 2 * 86400 + 3 * 3600), "2d03h");
    assert_string_equal(ctl_fmt_duration(b, sizeof b, -1), "-");

    json_t *v = json_real(0.87341);
    assert_string_equal(ctl_fmt_json(b, sizeof b, v), "0.8734");
    json_decref(v);
    v = json_real(0.0001);
    assert_string_equal(ctl_fmt_json(b, sizeof b, v), "0.0001");
    json_decref(v);
    v = json_real(123.456);
    assert_string_equal(ctl_fmt_json(b, sizeof b, v), "123.46");
    json_decref(v);
    v = json_integer(32);
    assert_string_equal(ctl_fmt_json(b, sizeof b, v), "32");
    json_decref(v);
    v = json_string("layer3");
    assert_string_equal(ctl_fmt_json(b, sizeof b, v), "layer3");
    json_decref(v);
    assert_string_equal(ctl_fmt_json(b, sizeof b, json_true()), "yes");
    assert_string_equal(ctl_fmt_json(b, sizeof b, json_null()), "-");
    assert_string_equal(ctl_fmt_json(b, sizeof b, NULL), "-");

    assert_string_equal(ctl_fmt_bar(b, sizeof b, 10, 0.5), "[=====>    ]");
    assert_string_equal(ctl_fmt_bar(b, sizeof b, 10, 0), "[          ]");
    assert_string_equal(ctl_fmt_bar(b, sizeof b, 10, 1), "[==========]");
    assert_string_equal(ctl_fmt_bar(b, sizeof b, 4, 7), "[====]");
}

static void test_eta(void **state)
{
    (void)state;
    assert_true(ctl_eta(0, 0, 5, 2) < 0);    // nothing finished: unknown
    assert_true(ctl_eta(2, 100, 0, 2) == 0); // nothing left
    /* 2 trials took 100 s in all: 50 s each; 4 trials left over 2 slots: 100 s. */
    assert_true(ctl_eta(2, 100, 4, 2) > 99.9 && ctl_eta(2, 100, 4, 2) < 100.1);
    assert_true(ctl_eta(2, 100, 4, 0) > 199.9); // parallel < 1 counts as 1
}

/* Renders REPLY (JSON text) for CMD into a new string. */
static char *render(ctl_command cmd, const char *reply_text)
{
    json_error_t e;
    json_t *reply = json_loads(reply_text, 0, &e);
    assert_non_null(reply);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(ctl_render(f, cmd, reply), 0);
    fclose(f);
    json_decref(reply);
    return buf;
}

/* Foreign strings (job names, worker messages, parameter names) are escaped
 * for the terminal in tables, plain lines and error replies (utf8_escape). */
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

static void test_render_best_shows_varying_params(void **state)
{
    (void)state;
    char *s =
        render(CTL_CMD_BEST,
               "{\"ok\":true,\"job\":1,\"trials\":["
               "{\"rank\":1,\"id\":11,\"number\":2,\"state\":\"completed\",\"val_accuracy\":0.91,"
               "\"params\":{\"lr\":0.01,\"batch_size\":32,\"freeze\":\"layer3\"}},"
               "{\"rank\":2,\"id\":10,\"number\":1,\"state\":\"completed\",\"val_accuracy\":0.85,"
               "\"params_json\":\"{\\\"lr\\\":0.1,\\\"batch_size\\\":32,\\\"freeze\\\":"
               "\\\"layer2\\\"}\"}]}");
    /* lr and freeze differ, batch_size does not. */
    assert_string_equal(s, "rank  trial  id      lr  freeze  val_accuracy\n"
                           "----  -----  --  ------  ------  ------------\n"
                           "   1      2  11  0.0100  layer3        0.9100\n"
                           "   2      1  10  0.1000  layer2        0.8500\n");
    free(s);
    s = render(CTL_CMD_BEST, "{\"ok\":true,\"trials\":[]}");
    assert_string_equal(s, "no completed trials yet\n");
    free(s);
}

static void test_render_list_and_status(void **state)
{
    (void)state;
    char *s = render(CTL_CMD_LIST,
                     "{\"ok\":true,\"jobs\":[{\"id\":1,\"name\":\"demo\",\"state\":\"running\","
                     "\"trials_total\":12,\"counts\":{\"completed\":4,\"failed\":1,\"running\":2},"
                     "\"submitted_at\":\"2026-11-28T15:04:05.123Z\"}]}");
    assert_non_null(strstr(s, "id  name  state    trials  running  best  submitted"));
    assert_non_null(strstr(s, " 1  demo  running    5/12        2     -  2026-11-28 15:04:05\n"));
    free(s);
    s = render(CTL_CMD_LIST, "{\"ok\":true,\"jobs\":[]}");
    assert_non_null(strstr(s, "no jobs yet"));
    free(s);
    s = render(CTL_CMD_SUBMIT, "{\"ok\":true,\"job\":3,\"trials\":24}");
    assert_string_equal(s, "submitted job 3: 24 trials\nfollow it with: sweepctl watch 3\n");
    free(s);
    s = render(CTL_CMD_TRIAL,
               "{\"ok\":true,\"trial\":{\"id\":5,\"state\":\"completed\",\"val_accuracy\":0.5,"
               "\"params\":{\"lr\":0.1},\"metrics\":[{\"epoch\":1,\"train_loss\":1.5,"
               "\"val_accuracy\":0.5,\"seconds\":65}]}}");
    assert_non_null(strstr(s, "state            completed\n"));
    assert_non_null(strstr(s, "  lr               0.1000\n"));
    assert_non_null(
        strstr(s, "epoch  train_loss  train_acc  val_loss  val_acc  val_f1  lr  seconds"));
    assert_non_null(
        strstr(s, "    1      1.5000          -         -   0.5000       -   -    1m05s"));
    free(s);
}

/* status JOB: the objective, the best trial by its metric, a column of that
 * metric, the data-file counts when some are not 0, and a failed test
 * evaluation (issue 20). */
static void test_render_status_job_objective(void **state)
{
    (void)state;
    char *s = render(
        CTL_CMD_STATUS,
        "{\"ok\":true,\"job\":{\"id\":4,\"name\":\"f\",\"state\":\"done\",\"trials_total\":2,"
        "\"objective\":{\"metric\":\"val_f1\",\"goal\":\"maximize\"},"
        "\"test_error\":\"test-set evaluation failed (exit status 3): data error\","
        "\"counts\":{\"completed\":2},\"best\":{\"trial\":8,\"number\":1,\"value\":0.75}},"
        "\"trials\":[{\"id\":7,\"number\":0,\"state\":\"completed\",\"val_f1\":0.5,"
        "\"skipped_files\":0,\"bad_images\":0,\"params\":{\"lr\":0.1}},"
        "{\"id\":8,\"number\":1,\"state\":\"completed\",\"val_f1\":0.75,\"skipped_files\":2,"
        "\"bad_images\":0,\"params\":{\"lr\":0.01}}]}");
    assert_non_null(strstr(s, "\nobjective        maximize val_f1\n"));
    assert_non_null(strstr(s, "\nbest             trial 8 (number 1) val_f1 0.7500\n"));
    assert_non_null(strstr(s, "\ntest_error       test-set evaluation failed (exit status 3): data "
                              "error\n"));
    /* val_f1 is a column; skipped_files too (one row is not 0), bad_images not. */
    assert_non_null(strstr(s, "trial  id  state          lr  val_f1  skipped_files\n"));
    assert_non_null(strstr(s, "    1   8  completed  0.0100  0.7500              2\n"));
    assert_null(strstr(s, "bad_images"));
    free(s);
    /* best: the objective's column first when the usual ones lack it. */
    s = render(CTL_CMD_BEST, "{\"ok\":true,\"job\":4,\"objective\":{\"metric\":\"val_recall\"},"
                             "\"trials\":[{\"rank\":1,\"id\":8,\"number\":1,\"val_recall\":0.6,"
                             "\"val_accuracy\":0.7,\"params\":{\"lr\":0.01}}]}");
    assert_non_null(strstr(s, "rank  trial  id      lr  val_recall  val_accuracy\n"));
    free(s);
}

/* "cannot reach the daemon" names the socket, where that path came from and
 * how to name another. */
static void test_unreachable_names_the_socket(void **state)
{
    (void)state;
    static const struct {
        const char *path, *env, *want;
    } cases[] = {
        {CTL_DEFAULT_SOCKET, NULL,
         "sweepctl: cannot reach sweepd at ./var/sweepd.sock: No such file or directory. Is it "
         "running? Start it with: build/sweepd --state-dir var. That is the default socket; use "
         "another with --socket PATH or SWEEPD_SOCKET=PATH\n"},
        {"/run/s.sock", "/run/s.sock",
         "sweepctl: cannot reach sweepd at /run/s.sock: No such file or directory. Is it "
         "running? Start it with: sweepd --socket /run/s.sock. That socket came from "
         "$SWEEPD_SOCKET; use another with --socket PATH or SWEEPD_SOCKET=PATH\n"},
        {"/x.sock", "/run/s.sock",
         "sweepctl: cannot reach sweepd at /x.sock: No such file or directory. Is it running? "
         "Start it with: sweepd --socket /x.sock. That socket came from --socket; use another "
         "with --socket PATH or SWEEPD_SOCKET=PATH\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].env)
            setenv("SWEEPD_SOCKET", cases[i].env, 1);
        else
            unsetenv("SWEEPD_SOCKET");
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        ctl_print_unreachable(f, cases[i].path, "No such file or directory");
        fclose(f);
        assert_string_equal(buf, cases[i].want);
        free(buf);
    }
    unsetenv("SWEEPD_SOCKET");
}

static void test_render_daemon_status(void **state)
{
    (void)state;
    char *s = render(CTL_CMD_STATUS, "{\"ok\":true,\"daemon\":{\"pid\":5,\"uptime\":75.2,"
                                     "\"workers\":2,\"shutting_down\":false},\"jobs\":[]}");
    assert_string_equal(s, "pid              5\n"
                           "uptime           1m15s\n"
                           "workers          2\n"
                           "\n"
                           "no jobs yet; submit one with: sweepctl submit JOB.json\n");
    free(s);
    s = render(CTL_CMD_STATUS, "{\"ok\":true,\"job\":{\"id\":2,\"name\":\"x\",\"state\":\"done\","
                               "\"error\":null,\"trials_total\":1,\"objective\":{\"metric\":"
                               "\"val_loss\",\"goal\":\"minimize\"},\"counts\":{\"completed\":1}},"
                               "\"trials\":[{\"id\":9,\"number\":0,\"state\":\"completed\","
                               "\"params\":{\"lr\":0.5},\"val_loss\":0.25}]}");
    assert_null(strstr(s, "error"));
    assert_non_null(strstr(s, "objective        minimize val_loss\n"));
    assert_non_null(strstr(s, "progress         1/1\n"));
    assert_non_null(strstr(s, "trial  id  state          lr  val_loss\n"));
    assert_non_null(strstr(s, "    0   9  completed  0.5000    0.2500\n"));
    free(s);
}

static void test_lookup(void **state)
{
    (void)state;
    json_t *o =
        json_loads("{\"a\":1,\"params\":{\"lr\":0.5},\"result\":{\"val_f1\":0.2}}", 0, NULL);
    assert_int_equal(json_integer_value(ctl_lookup(o, "a")), 1);
    assert_true(json_real_value(ctl_lookup(o, "lr")) == 0.5);
    assert_true(json_real_value(ctl_lookup(o, "val_f1")) == 0.2);
    assert_null(ctl_lookup(o, "nope"));
    assert_null(ctl_lookup(NULL, "a"));
    json_decref(o);
}

static void test_join_path(void **state)
{
    (void)state;
    static const char *const cases[][3] = {
        {"/b", "x", "/b/x"},
        {"/b", "./x//y/", "/b/x/y"},
        {"/b/", "x/./y", "/b/x/y"},
        {"/b", ".", "/b"},
        {"/b", "./", "/b"},
        {"/b", "../x", "/b/../x"},
        {"/", "x", "/x"},
        {"/", ".", "/"},
        {"/b c", "d e/f.safetensors", "/b c/d e/f.safetensors"},
        {"/b", "..x/.y", "/b/..x/.y"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = ctl_join_path(cases[i][0], cases[i][1]);
        assert_non_null(s);
        assert_string_equal(s, cases[i][2]);
        free(s);
    }
}

static void test_resolve_paths(void **state)
{
    (void)state;
    json_t *job = json_loads(
        "{\"name\":\"n\",\"data\":{\"train\":\"tr\",\"val\":null,\"test\":\"/abs/te\","
        "\"val_fraction\":0.1},\"model\":{\"arch\":\"resnet18\",\"weights\":\"./w/r.st\"},"
        "\"space\":{\"lr\":[0.1]},\"out\":\"rel\"}",
        0, NULL);
    assert_non_null(job);
    assert_true(ctl_job_has_relative_paths(job));
    assert_int_equal(ctl_job_resolve_paths(job, "/jobs/dir"), 2);
    char *s = jx_dump_line(job);
    assert_string_equal(s, "{\"name\":\"n\",\"data\":{\"train\":\"/jobs/dir/tr\",\"val\":null,"
                           "\"test\":\"/abs/te\",\"val_fraction\":0.1},\"model\":{\"arch\":"
                           "\"resnet18\",\"weights\":\"/jobs/dir/w/r.st\"},\"space\":{\"lr\":"
                           "[0.1]},\"out\":\"rel\"}");
    free(s);
    /* Now all absolute: nothing left to do. */
    assert_false(ctl_job_has_relative_paths(job));
    assert_int_equal(ctl_job_resolve_paths(job, "/elsewhere"), 0);
    json_decref(job);

    /* Empty strings, non-strings and non-object sections are the daemon's to refuse. */
    job = json_loads("{\"data\":{\"train\":\"\",\"val\":3,\"test\":[\"x\"]},\"model\":\"w\"}", 0,
                     NULL);
    assert_false(ctl_job_has_relative_paths(job));
    assert_int_equal(ctl_job_resolve_paths(job, "/b"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(job, "data"), "train")),
                        "");
    assert_string_equal(json_string_value(json_object_get(job, "model")), "w");
    json_decref(job);
    job = json_loads("{\"data\":{\"val\":\"v\"}}", 0, NULL);
    assert_true(ctl_job_has_relative_paths(job));
    assert_int_equal(ctl_job_resolve_paths(job, "/"), 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(job, "data"), "val")),
                        "/v");
    json_decref(job);
}

/* Writes TEXT to PATH. */
static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void test_submit_line(void **state)
{
    (void)state;
    char tmp[256];
    assert_int_equal(tju_mkdtemp(tmp, sizeof tmp, "ctl"), 0);
    char *real = realpath(tmp, NULL); // (tju_mkdtemp gives it resolved already)
    assert_non_null(real);
    char dir[300], link[300], file[340], viafile[340], plain[340], msg[256];
    snprintf(dir, sizeof dir, "%s/jobs", tmp);
    snprintf(link, sizeof link, "%s/link", tmp);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(symlink("jobs", link), 0);
    snprintf(file, sizeof file, "%s/j.json", dir);
    snprintf(viafile, sizeof viafile, "%s/j.json", link);
    snprintf(plain, sizeof plain, "%s/plain.json", dir);

    /* Relative paths: resolved against the realpath of the file's folder
     * (through the symlink), reals written in shortest form. */
    write_text(file, "{\"data\": {\"train\": \"tr\",\n \"val_fraction\": 0.1},\n"
                     " \"model\": {\"weights\": \"w.st\"}, \"seed\": 7}\n");
    char *base = NULL;
    assert_int_equal(ctl_job_base_dir(viafile, &base, msg, sizeof msg), 0);
    char want_base[320];
    snprintf(want_base, sizeof want_base, "%s/jobs", real);
    assert_string_equal(base, want_base);
    free(base);
    char *line = ctl_submit_line(viafile, msg, sizeof msg);
    assert_non_null(line);
    char want[1024];
    snprintf(want, sizeof want,
             "{\"op\":\"submit\",\"job\":{\"data\":{\"train\":\"%s/jobs/tr\",\"val_fraction\":0.1},"
             "\"model\":{\"weights\":\"%s/jobs/w.st\"},\"seed\":7}}",
             real, real);
    assert_string_equal(line, want);
    free(line);

    /* No relative path: the file's own bytes, line breaks as spaces. */
    write_text(plain,
               "{\"data\": {\"train\": \"/d\",\n \"val_fraction\": 0.10},\r\n \"x\": 1e0}\n");
    line = ctl_submit_line(plain, msg, sizeof msg);
    assert_non_null(line);
    assert_string_equal(line, "{\"op\":\"submit\",\"job\":{\"data\": {\"train\": \"/d\",  "
                              "\"val_fraction\": 0.10},   \"x\": 1e0} }");
    free(line);

    /* "-" resolves against the current directory. */
    assert_int_equal(ctl_job_base_dir("-", &base, msg, sizeof msg), 0);
    char *cwd = realpath(".", NULL);
    assert_string_equal(base, cwd);
    free(cwd);
    free(base);
    /* A bare file name: its folder is the current directory. */
    assert_int_equal(ctl_job_base_dir("job.json", &base, msg, sizeof msg), 0);
    cwd = realpath(".", NULL);
    assert_string_equal(base, cwd);
    free(cwd);
    free(base);

    /* Errors name the file. */
    write_text(plain, "[1]");
    assert_null(ctl_submit_line(plain, msg, sizeof msg));
    assert_non_null(strstr(msg, "plain.json: a job must be a JSON object"));
    write_text(plain, "{\"a\":1,\"a\":2}");
    assert_null(ctl_submit_line(plain, msg, sizeof msg));
    assert_non_null(strstr(msg, "plain.json:1:"));
    char missing[360];
    snprintf(missing, sizeof missing, "%s/nope/j.json", tmp);
    assert_null(ctl_submit_line(missing, msg, sizeof msg));
    assert_non_null(strstr(msg, "cannot read "));
    assert_non_null(strstr(msg, "nope/j.json: No such file or directory"));
    assert_int_equal(ctl_job_base_dir(missing, &base, msg, sizeof msg), ERR_IO);
    assert_null(base);
    assert_non_null(strstr(msg, "nope"));

    assert_int_equal(unlink(file), 0);
    assert_int_equal(unlink(plain), 0);
    assert_int_equal(unlink(link), 0);
    assert_int_equal(rmdir(dir), 0);
    assert_int_equal(rmdir(tmp), 0);
    free(real);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args_commands),
        cmocka_unit_test(test_args_globals),
        cmocka_unit_test(test_args_errors),
        cmocka_unit_test(test_table_layout),
        cmocka_unit_test(test_table_utf8_and_growth),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_eta),
        cmocka_unit_test(test_render_best_shows_varying_params),
        cmocka_unit_test(test_ctl_prints_escaped),
        cmocka_unit_test(test_render_list_and_status),
        cmocka_unit_test(test_render_daemon_status),
        cmocka_unit_test(test_render_status_job_objective),
        cmocka_unit_test(test_unreachable_names_the_socket),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_join_path),
        cmocka_unit_test(test_resolve_paths),
        cmocka_unit_test(test_submit_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
