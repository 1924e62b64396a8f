/* Tests for daemon/config.c: defaults, the `key = value` file (comments,
 * quotes, errors naming file:line), flags overriding the file, the
 * SWEEPD_WORKER variable, derived values and the uid allow-list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"
#include "errors.h"
#include "util_jpeg.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char scratch[256]; // scratch folder under $TMPDIR (group setup)
static char path[300];    // scratch config file in it

static int group_setup(void **state)
{
    (void)state;
    if (tju_mkdtemp(scratch, sizeof scratch, "config") < 0) return -1;
    snprintf(path, sizeof path, "%s/test.conf", scratch);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tju_rmrf(scratch);
    return 0;
}

static void write_conf(const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_defaults(void **state)
{
    (void)state;
    sweepd_config c;
    config_defaults(&c);
    assert_null(c.socket_path); // named by config_finish after the state directory
    assert_null(c.db_path);
    assert_string_equal(c.state_dir, "var");
    assert_int_equal(c.threads_per_worker, 1);
    assert_int_equal(c.workers, 0);
    assert_int_equal(c.socket_mode, 0660);
    assert_false(c.foreground);
    assert_non_null(strstr(c.worker, "/sweep-worker"));
    assert_int_equal(c.n_allow_uids, 0);
    assert_true(c.idle_timeout == 60);
    assert_true(c.cache_max_mb == config_default_cache_mb() && c.cache_max_mb > 0);
    char msg[256];
    assert_int_equal(config_set(&c, "cache_max_mb", "0", "--cache_max_mb", msg, sizeof msg), 0);
    assert_int_equal(c.cache_max_mb, 0); // 0: no feature cache
    assert_int_equal(config_set(&c, "cache_max_mb", "512", "f:1", msg, sizeof msg), 0);
    assert_int_equal(c.cache_max_mb, 512);
    assert_int_equal(config_set(&c, "cache_max_mb", "-3", "f:2", msg, sizeof msg), ERR_INVALID);
    assert_non_null(strstr(msg, "cache_max_mb"));
    assert_int_equal(config_finish(&c, msg, sizeof msg), 0);
    cpu_set_t set;
    assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
    assert_int_equal(config_usable_cpus(), CPU_COUNT(&set));
    assert_int_equal(c.workers, CPU_COUNT(&set));
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof cwd));
    char want[600];
    snprintf(want, sizeof want, "%s/var/sweepd.sock", cwd);
    assert_string_equal(c.socket_path, want);
    snprintf(want, sizeof want, "%s/var/sweepd.db", cwd);
    assert_string_equal(c.db_path, want);
    snprintf(want, sizeof want, "%s/var/sweepd.pid", cwd);
    assert_string_equal(c.pid_file, want);
    snprintf(want, sizeof want, "%s/var/sweepd.log", cwd); // daemonized: log to the state dir
    assert_string_equal(c.log_file, want);
    config_free(&c);
}

static void test_file(void **state)
{
    (void)state;
    sweepd_config c;
    config_defaults(&c);
    write_conf("# comment line\n"
               "\n"
               "socket = /run/sweepd/s.sock   # trailing comment\n"
               "  db=\"/data/a b.db\"\n"
               "workers = 3\n"
               "threads_per_worker = 2\n"
               "kill_grace = 2.5\n"
               "trial_timeout = 3600\n"
               "max_retries = 4\n"
               "idle_timeout = 2.5\n"
               "log_level = warn\n"
               "foreground = yes\n"
               "allow_uids = 1000, 1001\n"
               "socket_mode = 0600\n"
               "worker = /opt/w#1\n");
    char msg[256];
    assert_int_equal(config_load_file(&c, path, msg, sizeof msg), 0);
    assert_string_equal(c.socket_path, "/run/sweepd/s.sock");
    assert_string_equal(c.db_path, "/data/a b.db");
    assert_int_equal(c.workers, 3);
    assert_int_equal(c.threads_per_worker, 2);
    assert_true(c.kill_grace == 2.5);
    assert_true(c.default_trial_timeout == 3600);
    assert_int_equal(c.default_max_retries, 4);
    assert_true(c.idle_timeout == 2.5);
    assert_int_equal(c.level, LOGL_WARN);
    assert_true(c.foreground);
    assert_int_equal(c.n_allow_uids, 2);
    assert_int_equal(c.allow_uids[1], 1001);
    assert_int_equal(c.socket_mode, 0600);
    assert_string_equal(c.worker, "/opt/w#1"); // '#' not after a blank is kept
    assert_true(config_uid_allowed(&c, 1001));
    assert_true(config_uid_allowed(&c, 0));
    assert_true(config_uid_allowed(&c, geteuid()));
    assert_false(config_uid_allowed(&c, 4242));
    /* idle_timeout 0 turns the limit off. */
    assert_int_equal(config_set(&c, "idle_timeout", "0", "f:1", msg, sizeof msg), 0);
    assert_true(c.idle_timeout == 0);
    config_free(&c);
    unlink(path);
}

static void test_file_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *want; // after "<path>:"
    } cases[] = {
        {"workers = 2\nwokers = 3\n", "2: unknown key \"wokers\""},
        {"workers = many\n", "1: workers: expected an integer from 0 to 4096, got \"many\""},
        {"threads_per_worker = 0\n",
         "1: threads_per_worker: expected an integer from 1 to 1024, got \"0\""},
        {"workers = 0x10\n", "1: workers: expected an integer from 0 to 4096, got \"0x10\""},
        {"max_write_queue = -1\n",
         "1: max_write_queue: expected an integer from 4096 to 4294967296, got \"-1\""},
        {"max_retries = 99999999999999999999\n",
         "1: max_retries: expected an integer from 0 to 1000, got \"99999999999999999999\""},
        {"just text\n", "1: expected `key = value`"},
        {" = 3\n", "1: missing key"},
        {"log_level = loud\n", "1: log_level: expected one of debug"},
        {"allow_uids = 1000,bob\n",
         "1: allow_uids: expected a comma-separated list of integers from 0 to 2147483647, got "
         "\"1000,bob\""},
        {"kill_grace = -1\n", "1: kill_grace: expected a number from 0 to 86400, got \"-1\""},
        {"tick = inf\n", "1: tick: expected a number from 0.01 to 60, got \"inf\""},
        {"socket_mode = 999\n",
         "1: socket_mode: expected an octal number from 0 to 0777, got \"999\""},
        {"foreground = maybe\n", "1: foreground: expected true or false"},
        {"db = \"\"\n", "1: db: expected a path, got \"\""},
        {"idle_timeout = -1\n",
         "1: idle_timeout: expected a number from 0 to 1000000000, got \"-1\""},
        {"idle_timeout = soon\n",
         "1: idle_timeout: expected a number from 0 to 1000000000, got \"soon\""},
        {"idle_timeout = nan\n",
         "1: idle_timeout: expected a number from 0 to 1000000000, got \"nan\""},
        {"max_connections = 8\nidle_timeout = 5s\n",
         "2: idle_timeout: expected a number from 0 to 1000000000, got \"5s\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sweepd_config c;
        config_defaults(&c);
        write_conf(cases[i].text);
        char msg[512], want[512];
        int rc = config_load_file(&c, path, msg, sizeof msg);
        snprintf(want, sizeof want, "%s:%s", path, cases[i].want);
        if (rc == 0 || strncmp(msg, want, strlen(want)) != 0)
            fail_msg("case %zu: rc %d, \"%s\", want prefix \"%s\"", i, rc, msg, want);
        config_free(&c);
    }
    sweepd_config c;
    config_defaults(&c);
    char msg[512];
    assert_int_equal(config_load_file(&c, "/nonexistent/sweepd.conf", msg, sizeof msg), ERR_IO);
    assert_non_null(strstr(msg, "/nonexistent/sweepd.conf"));
    config_free(&c);
    unlink(path);
}

static void test_flags_override(void **state)
{
    (void)state;
    write_conf("workers = 3\nsocket = /tmp/from-file.sock\nworker = /from/file\n");
    char *argv[] = {"sweepd",
                    "--workers",
                    "5",
                    "--config",
                    path,
                    "--foreground",
                    "--log-level",
                    "debug",
                    "--state-dir",
                    "/srv/st",
                    "--threads-per-worker",
                    "2",
                    NULL};
    int argc = 12;
    sweepd_config c;
    config_defaults(&c);
    bool help;
    char msg[512];
    setenv("SWEEPD_WORKER", "/from/env", 1);
    assert_int_equal(config_from_args(&c, argc, argv, &help, msg, sizeof msg), 0);
    unsetenv("SWEEPD_WORKER");
    assert_false(help);
    assert_int_equal(c.workers, 5);                            // flag beats file
    assert_string_equal(c.socket_path, "/tmp/from-file.sock"); // file beats default
    assert_string_equal(c.worker, "/from/env");                // env beats file
    assert_true(c.foreground);
    assert_int_equal(c.level, LOGL_DEBUG);
    assert_string_equal(c.state_dir, "/srv/st");
    assert_int_equal(c.threads_per_worker, 2);
    assert_int_equal(config_finish(&c, msg, sizeof msg), 0);
    assert_null(c.log_file); // foreground: stderr
    assert_string_equal(c.pid_file, "/srv/st/sweepd.pid");
    assert_string_equal(c.socket_path, "/tmp/from-file.sock"); // named: stays
    assert_string_equal(c.db_path, "/srv/st/sweepd.db");       // not named: in the state directory
    config_free(&c);
    /* --state-dir alone moves the socket and the database with it */
    char *sd[] = {"sweepd", "--state-dir", "/srv/other", NULL};
    config_defaults(&c);
    assert_int_equal(config_from_args(&c, 3, sd, &help, msg, sizeof msg), 0);
    assert_int_equal(config_finish(&c, msg, sizeof msg), 0);
    assert_string_equal(c.socket_path, "/srv/other/sweepd.sock");
    assert_string_equal(c.db_path, "/srv/other/sweepd.db");
    config_free(&c);
    /* workers derived from cores / threads */
    config_defaults(&c);
    c.threads_per_worker = 1024;
    assert_int_equal(config_finish(&c, msg, sizeof msg), 0);
    assert_int_equal(c.workers, 1);
    config_free(&c);
    /* --help, bad flags, bad values, stray operands */
    char *h[] = {"sweepd", "--help", NULL};
    config_defaults(&c);
    assert_int_equal(config_from_args(&c, 2, h, &help, msg, sizeof msg), 0);
    assert_true(help);
    config_free(&c);
    char *b1[] = {"sweepd", "--wrokers", "2", NULL};
    char *b2[] = {"sweepd", "--workers", "-1", NULL};
    char *b3[] = {"sweepd", "extra", NULL};
    char *b4[] = {"sweepd", "--socket", NULL};
    config_defaults(&c);
    assert_true(config_from_args(&c, 3, b1, &help, msg, sizeof msg) < 0);
    assert_non_null(strstr(msg, "--wrokers"));
    assert_true(config_from_args(&c, 3, b2, &help, msg, sizeof msg) < 0);
    assert_string_equal(msg, "--workers: expected an integer from 0 to 4096, got \"-1\"");
    assert_true(config_from_args(&c, 2, b3, &help, msg, sizeof msg) < 0);
    assert_string_equal(msg, "unexpected argument \"extra\"");
    assert_true(config_from_args(&c, 2, b4, &help, msg, sizeof msg) < 0);
    config_free(&c);
    unlink(path);
    assert_non_null(strstr(config_usage(), "--threads-per-worker"));
    assert_non_null(strstr(config_usage(), "idle_timeout"));
}

/* The sample config documents every key: uncommenting each `#key = value`
 * line of etc/sweepd.conf gives a file that loads, with every key present. */
static void test_sample_config(void **state)
{
    (void)state;
    FILE *in = fopen(SWEEP_SRCDIR "/etc/sweepd.conf", "r");
    assert_non_null(in);
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    char line[512];
    int keys = 0;
    while (fgets(line, sizeof line, in)) {
        const char *l = line;
        size_t k = 0;
        if (l[0] == '#') {
            while (l[1 + k] == '_' || (l[1 + k] >= 'a' && l[1 + k] <= 'z'))
                k++;
            if (k > 0 && !strncmp(l + 1 + k, " = ", 3)) {
                l++;
                keys++;
            }
        }
        fputs(l, out);
    }
    fclose(in);
    fclose(out);
    sweepd_config c;
    config_defaults(&c);
    char msg[512];
    int rc = config_load_file(&c, path, msg, sizeof msg);
    if (rc) fail_msg("etc/sweepd.conf uncommented: %s", msg);
    static const char *const all[] = {"socket",
                                      "socket_mode",
                                      "db",
                                      "state_dir",
                                      "sql_dir",
                                      "worker",
                                      "workers",
                                      "threads_per_worker",
                                      "foreground",
                                      "log_level",
                                      "log_file",
                                      "pid_file",
                                      "kill_grace",
                                      "trial_timeout",
                                      "max_retries",
                                      "tick",
                                      "db_busy_timeout_ms",
                                      "max_write_queue",
                                      "max_connections",
                                      "idle_timeout",
                                      "allow_uids",
                                      "socket_group",
                                      "data_roots",
                                      "blas_core",
                                      "cache_max_mb",
                                      "launcher",
                                      "slurm_partition",
                                      "slurm_account",
                                      "slurm_mem_per_trial",
                                      "slurm_extra_args",
                                      NULL};
    int n = 0;
    for (int i = 0; all[i]; i++, n++) {
        char msg2[256];
        /* each listed key is known to config_set */
        int r = config_set(&c, all[i], "x", "t", msg2, sizeof msg2);
        assert_int_not_equal(r, ERR_UNKNOWN_KEY);
    }
    assert_int_equal(keys, n);
    config_free(&c);
    unlink(path);
}

/* socket_group: a name or a gid, resolved at config_finish; an unknown
 * group is an error naming it. */
static void test_socket_group(void **state)
{
    (void)state;
    sweepd_config c;
    char msg[512];
    config_defaults(&c);
    assert_false(c.has_socket_group);
    assert_int_equal(config_set(&c, "socket_group", "root", "f:1", msg, sizeof msg), 0);
    assert_int_equal(config_finish(&c, msg, sizeof msg), 0);
    assert_true(c.has_socket_group);
    assert_int_equal(c.socket_group, 0);
    assert_string_equal(c.socket_group_name, "root");
    config_free(&c);

    config_defaults(&c);
    assert_int_equal(config_set(&c, "socket_group", "4321", "f:1", msg, sizeof msg), 0);
    assert_int_equal(config_finish(&c, msg, sizeof msg), 0);
    assert_int_equal(c.socket_group, 4321);
    config_free(&c);

    config_defaults(&c);
    assert_int_equal(config_set(&c, "socket_group", "no-such-group-xyz", "f:1", msg, sizeof msg),
                     0);
    assert_int_equal(config_finish(&c, msg, sizeof msg), ERR_NOTFOUND);
    assert_non_null(strstr(msg, "socket_group: unknown group \"no-such-group-xyz\""));
    config_free(&c);

    /* A number that is no gid is refused in the one wording, not looked up as a name. */
    config_defaults(&c);
    assert_int_equal(config_set(&c, "socket_group", "-5", "f:1", msg, sizeof msg), 0);
    assert_int_equal(config_finish(&c, msg, sizeof msg), ERR_INVALID);
    assert_string_equal(msg, "socket_group: expected an integer from 0 to 2147483646, got \"-5\"");
    config_free(&c);

    /* An empty optional path goes back to its derived default. */
    config_defaults(&c);
    assert_int_equal(config_set(&c, "log_file", "/tmp/x.log", "f:1", msg, sizeof msg), 0);
    assert_string_equal(c.log_file, "/tmp/x.log");
    assert_int_equal(config_set(&c, "log_file", "", "f:2", msg, sizeof msg), 0);
    assert_null(c.log_file);
    assert_int_equal(config_set(&c, "--db", "", "--db", msg, sizeof msg), ERR_UNKNOWN_KEY);
    assert_int_equal(config_set(&c, "db", "", "--db", msg, sizeof msg), ERR_INVALID);
    assert_string_equal(msg, "--db: expected a path, got \"\"");
    config_free(&c);

    /* An empty value unsets it. */
    config_defaults(&c);
    assert_int_equal(config_set(&c, "socket_group", "root", "f:1", msg, sizeof msg), 0);
    assert_int_equal(config_set(&c, "socket_group", "", "f:2", msg, sizeof msg), 0);
    assert_false(c.has_socket_group);
    config_free(&c);
}

/* data_roots: a comma list, made absolute and resolved by config_finish;
 * a missing root is an error naming it. */
/* blas_core: inherit (default), auto or a kernel name, stored canonically;
 * anything else refused with a message naming the key and the value. */
static void test_blas_core(void **state)
{
    (void)state;
    sweepd_config c;
    config_defaults(&c);
    char msg[512];
    assert_string_equal(c.blas_core, "inherit");
    assert_int_equal(config_set(&c, "blas_core", "auto", "f:1", msg, sizeof msg), 0);
    assert_string_equal(c.blas_core, "auto");
    assert_int_equal(config_set(&c, "blas_core", "skylakex", "f:2", msg, sizeof msg), 0);
    assert_string_equal(c.blas_core, "SkylakeX");
    assert_int_equal(config_set(&c, "blas_core", "fastest", "f:3", msg, sizeof msg), ERR_INVALID);
    assert_non_null(strstr(msg, "f:3: blas_core: expected inherit, auto or an OpenBLAS kernel"));
    assert_non_null(strstr(msg, "\"fastest\""));
    assert_string_equal(c.blas_core, "SkylakeX");
    char *argv[] = {"sweepd", "--blas-core", "Cooperlake", NULL};
    bool help;
    assert_int_equal(config_from_args(&c, 3, argv, &help, msg, sizeof msg), 0);
    assert_string_equal(c.blas_core, "Cooperlake");
    char *bad[] = {"sweepd", "--blas-core", "", NULL};
    assert_int_equal(config_from_args(&c, 3, bad, &help, msg, sizeof msg), ERR_INVALID);
    assert_non_null(strstr(msg, "--blas-core"));
    config_free(&c);
}

static void test_data_roots(void **state)
{
    (void)state;
    char dir[300], link[320], want[1024];
    snprintf(dir, sizeof dir, "%s/roots", scratch);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(link, sizeof link, "%s.link", dir);
    assert_int_equal(symlink(dir, link), 0);
    write_conf("");
    sweepd_config c;
    char msg[1024], value[1024];
    config_defaults(&c);
    snprintf(value, sizeof value, " %s , %s/ ,/ ", link, dir);
    assert_int_equal(config_set(&c, "data_roots", value, "f:1", msg, sizeof msg), 0);
    assert_int_equal(c.n_data_roots, 3);
    assert_int_equal(config_finish(&c, msg, sizeof msg), 0);
    assert_string_equal(c.data_roots[0], dir); // the link resolved
    assert_string_equal(c.data_roots[1], dir);
    assert_string_equal(c.data_roots[2], "/");
    config_roots_text(&c, value, sizeof value);
    snprintf(want, sizeof want, "%s, %s, /", dir, dir);
    assert_string_equal(value, want);
    /* Empty: no roots. */
    assert_int_equal(config_set(&c, "data_roots", "", "f:2", msg, sizeof msg), 0);
    assert_int_equal(c.n_data_roots, 0);
    config_free(&c);

    config_defaults(&c);
    snprintf(value, sizeof value, "%s,%s/missing", dir, dir);
    assert_int_equal(config_set(&c, "data_roots", value, "f:1", msg, sizeof msg), 0);
    assert_int_equal(config_finish(&c, msg, sizeof msg), ERR_NOTFOUND);
    snprintf(want, sizeof want, "data_roots: cannot resolve \"%s/missing\"", dir);
    assert_non_null(strstr(msg, want));
    config_free(&c);
    unlink(link);
    rmdir(dir);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),      cmocka_unit_test(test_file),
        cmocka_unit_test(test_file_errors),   cmocka_unit_test(test_flags_override),
        cmocka_unit_test(test_sample_config), cmocka_unit_test(test_socket_group),
        cmocka_unit_test(test_data_roots),    cmocka_unit_test(test_blas_core),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
