/* Tests for daemon/launcher.c without a cluster: the srun command line built
 * for a step (options from the config, the time limit past the daemon's own
 * stop, extra arguments split at blanks, the worker's argv after "--"), the
 * local launcher's plain copy, step names, and what an exit status means
 * under each launcher (the worker's code, a signal as 128+N, the cluster's
 * failures), and the start-up check's deadline against a fake srun that
 * leaves a child writing to its output. tests/slurm/ runs the same code
 * against a real Slurm. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "errors.h"
#include "launcher.h"
#include "worker_exit.h"

/* The argv as one blank-separated string. */
static void joined(char **argv, char *buf, size_t n)
{
    buf[0] = 0;
    for (char **a = argv; *a; a++) {
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%s%s", a == argv ? "" : " ", *a);
    }
}

static void test_step_names(void **state)
{
    (void)state;
    char b[96];
    launcher_step_name(b, sizeof b, 4, 17, false);
    assert_string_equal(b, "sweepd-4-17");
    launcher_step_name(b, sizeof b, 4, 17, true);
    assert_string_equal(b, "sweepd-4-eval-17");
}

static void test_local_argv_is_a_copy(void **state)
{
    (void)state;
    sweepd_config c;
    config_defaults(&c);
    char *argv[] = {"/bin/worker", "run", "/s/trial.json", NULL};
    char **out = NULL, msg[256], text[1024];
    assert_int_equal(launcher_argv(&c, "sweepd-1-2", "/s", 60, argv, &out, msg, sizeof msg), 0);
    joined(out, text, sizeof text);
    assert_string_equal(text, "/bin/worker run /s/trial.json");
    assert_ptr_not_equal(out[0], argv[0]);
    launcher_argv_free(out);
    config_free(&c);
}

static void test_slurm_argv(void **state)
{
    (void)state;
    sweepd_config c;
    config_defaults(&c);
    char msg[256], text[2048];
    assert_int_equal(config_set(&c, "launcher", "slurm", "t", msg, sizeof msg), 0);
    assert_int_equal(config_set(&c, "threads_per_worker", "4", "t", msg, sizeof msg), 0);
    char *argv[] = {"/bin/worker", "run", "/s/trial.json", NULL};
    char **out = NULL;
    /* Nothing optional set, no time limit. */
    assert_int_equal(launcher_argv(&c, "sweepd-1-2", "/s/t/2", 0, argv, &out, msg, sizeof msg), 0);
    joined(out, text, sizeof text);
    assert_string_equal(text, "srun --unbuffered --ntasks=1 --job-name=sweepd-1-2 --chdir=/s/t/2"
                              " --cpus-per-task=4 -- /bin/worker run /s/trial.json");
    launcher_argv_free(out);
    /* Every option; 100 s of trial_timeout + 10 s of grace + 60 s = 2:50. */
    assert_int_equal(config_set(&c, "slurm_partition", "cpu", "t", msg, sizeof msg), 0);
    assert_int_equal(config_set(&c, "slurm_account", "lab", "t", msg, sizeof msg), 0);
    assert_int_equal(config_set(&c, "slurm_mem_per_trial", "8G", "t", msg, sizeof msg), 0);
    assert_int_equal(
        config_set(&c, "slurm_extra_args", "  --qos=long\t--exclusive ", "t", msg, sizeof msg), 0);
    assert_int_equal(launcher_argv(&c, "sweepd-1-2", "/s/t/2", 100, argv, &out, msg, sizeof msg),
                     0);
    joined(out, text, sizeof text);
    assert_string_equal(text, "srun --unbuffered --ntasks=1 --job-name=sweepd-1-2 --chdir=/s/t/2"
                              " --cpus-per-task=4 --partition=cpu --account=lab --mem=8G"
                              " --time=2:50 --qos=long --exclusive -- /bin/worker run"
                              " /s/trial.json");
    launcher_argv_free(out);
    config_free(&c);
}

static void test_config_values(void **state)
{
    (void)state;
    sweepd_config c;
    config_defaults(&c);
    char msg[256];
    assert_int_equal(c.launcher, LAUNCH_LOCAL);
    assert_int_equal(config_set(&c, "launcher", "pbs", "sweepd.conf:3", msg, sizeof msg),
                     ERR_INVALID);
    assert_string_equal(msg, "sweepd.conf:3: launcher: expected local or slurm, got \"pbs\"");
    static const char *const bad[] = {"8X", "G", "8GB", "-1", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(config_set(&c, "slurm_mem_per_trial", bad[i], "t", msg, sizeof msg),
                         ERR_INVALID);
    static const char *const good[] = {"8G", "512", "1024M", "2t", NULL};
    for (int i = 0; good[i]; i++)
        assert_int_equal(config_set(&c, "slurm_mem_per_trial", good[i], "t", msg, sizeof msg), 0);
    assert_int_equal(config_set(&c, "slurm_mem_per_trial", "", "t", msg, sizeof msg), 0);
    assert_null(c.slurm_mem_per_trial);
    config_free(&c);
}

static void test_exit_meaning(void **state)
{
    (void)state;
    sweepd_config c;
    config_defaults(&c);
    int sig = 0;
    /* Local: the status is always the worker's. */
    assert_int_equal(launcher_exit(&c, 137, &sig, false, false), LAUNCH_EXIT_WORKER);
    assert_int_equal(launcher_exit(&c, WEXIT_OK, &sig, false, false), LAUNCH_EXIT_WORKER);
    c.launcher = LAUNCH_SLURM;
    /* The worker's own codes. */
    assert_int_equal(launcher_exit(&c, WEXIT_OK, &sig, false, true), LAUNCH_EXIT_WORKER);
    assert_int_equal(launcher_exit(&c, WEXIT_DATA, &sig, false, false), LAUNCH_EXIT_WORKER);
    assert_int_equal(launcher_exit(&c, WEXIT_NOSPACE, &sig, false, false), LAUNCH_EXIT_WORKER);
    assert_int_equal(launcher_exit(&c, WEXIT_STOPPED, &sig, true, false), LAUNCH_EXIT_WORKER);
    assert_int_equal(sig, 0);
    /* A task killed by a signal: 128 + N. */
    assert_int_equal(launcher_exit(&c, 128 + SIGKILL, &sig, false, false), LAUNCH_EXIT_SIGNAL);
    assert_int_equal(sig, SIGKILL);
    sig = 0;
    /* The cluster's: srun's own 1, a stop nobody asked for, 0 without "done". */
    assert_int_equal(launcher_exit(&c, 1, &sig, false, false), LAUNCH_EXIT_CLUSTER);
    assert_int_equal(launcher_exit(&c, WEXIT_STOPPED, &sig, false, false), LAUNCH_EXIT_CLUSTER);
    assert_int_equal(launcher_exit(&c, WEXIT_OK, &sig, false, false), LAUNCH_EXIT_CLUSTER);
    assert_int_equal(launcher_exit(&c, 9, &sig, false, false), LAUNCH_EXIT_CLUSTER);
    /* srun itself killed by a signal (the grace period's SIGKILL): as always. */
    sig = SIGKILL;
    assert_int_equal(launcher_exit(&c, 0, &sig, true, false), LAUNCH_EXIT_WORKER);
    assert_int_equal(sig, SIGKILL);
    config_free(&c);
}

/* Whether process PID is gone (or a zombie nobody reaps). */
static int process_gone(long pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *close_paren = strrchr(buf, ')');
    return close_paren && close_paren[1] == ' ' && close_paren[2] == 'Z';
}

/* An srun that hangs, with a silent child holding its output open and a
 * writer that left its process group (setsid) spamming that output forever:
 * launcher_check still returns soon after the deadline
 * (SWEEP_CAPTURE_DEADLINE, 1 s here) and says srun failed; the silent child
 * is killed with srun (its process group), and the writer dies of SIGPIPE
 * once the output is no longer read. Either fault hangs the test (its
 * timeout) or leaves a process that the loops below wait for. */
static void test_check_deadline_kills_the_group(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_launcher.XXXXXX";
    const char *tmp = getenv("TMPDIR");
    char dirbuf[512];
    snprintf(dirbuf, sizeof dirbuf, "%s/test_launcher.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    char *d = mkdtemp(dirbuf);
    if (!d) d = mkdtemp(dir);
    assert_non_null(d);
    char srun[600], pidfile[600];
    snprintf(srun, sizeof srun, "%s/srun", d);
    snprintf(pidfile, sizeof pidfile, "%s/writer.pid", d);
    FILE *f = fopen(srun, "w");
    assert_non_null(f);
    fprintf(f,
            "#!/bin/sh\nsleep 600 &\necho $! >'%s'\n"
            "setsid sh -c 'echo $$ >\"$0\"; while :; do echo spam; sleep 0.02; done' '%s.w' &\n"
            "sleep 600\n",
            pidfile, pidfile);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(srun, 0755), 0);
    const char *old_path = getenv("PATH");
    char *saved = old_path ? strdup(old_path) : NULL;
    char path[1200];
    snprintf(path, sizeof path, "%s:/usr/bin:/bin", d);
    setenv("PATH", path, 1);
    setenv("SWEEP_CAPTURE_DEADLINE", "1", 1);

    sweepd_config c;
    config_defaults(&c);
    c.launcher = LAUNCH_SLURM;
    char msg[512];
    int rc = launcher_check(&c, msg, sizeof msg);
    assert_int_equal(rc, ERR_IO);
    assert_non_null(strstr(msg, "srun --version failed (exit status 137)"));

    for (int k = 0; k < 2; k++) {
        char name[640];
        snprintf(name, sizeof name, k ? "%s.w" : "%s", pidfile);
        f = fopen(name, "r");
        assert_non_null(f);
        long pid = 0;
        assert_int_equal(fscanf(f, "%ld", &pid), 1);
        fclose(f);
        unlink(name);
        assert_true(pid > 1);
        while (!process_gone(pid)) // a survivor hangs the test (its timeout)
            usleep(10000);
    }

    if (saved) setenv("PATH", saved, 1);
    free(saved);
    unsetenv("SWEEP_CAPTURE_DEADLINE");
    config_free(&c);
    unlink(srun);
    rmdir(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_names),   cmocka_unit_test(test_local_argv_is_a_copy),
        cmocka_unit_test(test_slurm_argv),   cmocka_unit_test(test_config_values),
        cmocka_unit_test(test_exit_meaning), cmocka_unit_test(test_check_deadline_kills_the_group),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
