/* train_cmd — `sweep-worker run TRIAL.json`: reads and validates the trial
 * spec, installs the SIGTERM/SIGINT handlers that ask the loop to stop after
 * its current step, sets the engine's thread count, and runs the trial
 * (train.h). Events go to stdout, human logs to stderr. */
#include <cblas.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "events.h"
#include "log.h"
#include "train.h"
#include "trialspec.h"
#include "worker_cmds.h"

static void on_stop_signal(int sig)
{
    train_stop_requested = sig;
}

static void run_usage(FILE *f)
{
    fprintf(f,
            "usage: sweep-worker run TRIAL.json\n"
            "\n"
            "Runs one trial as the daemon does and writes one JSON event per line to stdout:\n"
            "start, progress, epoch, checkpoint, done, or error (with stopped on a signal).\n"
            "Checkpoints go to the spec's out_dir; a restart with the same spec and out_dir\n"
            "resumes after the last finished step. SIGTERM/SIGINT: finish the current step,\n"
            "write a checkpoint, exit 7.\n"
            "\n"
            "Environment: SWEEP_PROGRESS_INTERVAL (seconds between progress events, default 1,\n"
            "0 = every step), SWEEP_FEATURE_CACHE_MB (largest frozen-prefix feature cache,\n"
            "default a quarter of physical memory), SWEEP_PROFILE=1 (seconds per phase of the\n"
            "trial per epoch and in total, and per network unit, on stderr).\n"
            "Exit codes: 0 done, 2 bad spec or arguments, 3 data error, 4 model error,\n"
            "5 diverged, 6 out of memory, 7 stopped by SIGTERM/SIGINT.\n");
}

int cmd_run(int argc, char **argv)
{
    events_init(stdout);
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        run_usage(stdout);
        return WEXIT_OK;
    }
    if (argc != 2 || argv[1][0] == '-') {
        char msg[256];
        snprintf(msg, sizeof msg, "usage: sweep-worker run TRIAL.json (got %d argument%s)",
                 argc - 1, argc == 2 ? "" : "s");
        if (argc == 2) snprintf(msg, sizeof msg, "run: unknown option '%s'", argv[1]);
        fprintf(stderr, "sweep-worker: %s\n", msg);
        events_error("spec", WEXIT_SPEC, msg);
        return WEXIT_SPEC;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    trial_spec spec;
    char msg[1024] = "";
    int rc = trialspec_load(&spec, argv[1], msg, sizeof msg);
    if (rc < 0) {
        log_error("%s", msg);
        int code = rc == ERR_NOMEM ? WEXIT_NOMEM : WEXIT_SPEC;
        events_error(events_code_for_exit(code), code, msg);
        trialspec_free(&spec);
        return code;
    }
    blas_set_threads(spec.threads);
    int code = train_run(&spec);
    trialspec_free(&spec);
    return code;
}
