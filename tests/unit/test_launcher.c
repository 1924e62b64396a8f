/* Tests for daemon/launcher.c without a cluster: the srun command line built
 * for a step (options from the config, the time limit past the daemon's own
 * stop, extra arguments split at blanks, the worker's argv after "--"), the
 * local launcher's plain copy, step names, and what an exit status means
 * under each launcher (the worker's code, a signal as 128+N, the cluster's
 * failures). tests/slurm/ runs the same code against a real Slurm. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_names),   cmocka_unit_test(test_local_argv_is_a_copy),
        cmocka_unit_test(test_slurm_argv),   cmocka_unit_test(test_config_values),
        cmocka_unit_test(test_exit_meaning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
