/* train_cmd — `sweep-worker run TRIAL.json`: reads and validates the trial
 * spec, installs the SIGTERM/SIGINT handlers that ask the loop to stop after
 * its current step, sets the engine's thread count, and runs the trial
 * (train.h). Events go to stdout, human logs to stderr. In three steps:
 * run_parse (argv -> run_opts), run_run (the trial, whose loop emits its own
 * events) and run_report_error (a failure before the loop started). */
#include <cblas.h>
#include <signal.h>
#include <stdbool.h>
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
    fprintf(f, "usage: sweep-worker run TRIAL.json\n"
               "\n"
               "Runs one trial as the daemon does and writes one JSON event per line to stdout:\n"
               "start, progress, epoch, checkpoint, done, or error (with stopped on a signal).\n"
               "Checkpoints go to the spec's out_dir; a restart with the same spec and out_dir\n"
               "resumes after the last finished step. SIGTERM/SIGINT: finish the current step,\n"
               "write a checkpoint, exit 7. The spec's optional data_roots (the daemon's,\n"
               "an array of directories): the data folders must resolve inside one, and a\n"
               "class folder or image linking outside all of them is skipped with a warning.\n"
               "\n"
               "Environment: SWEEP_PROGRESS_INTERVAL (seconds between progress events, default 1,\n"
               "0 = every step), SWEEP_FEATURE_CACHE_MB (largest frozen-prefix feature cache,\n"
               "default a quarter of physical memory), SWEEP_PROFILE=1 (seconds per phase of the\n"
               "trial per epoch and in total, and per network unit, on stderr).\n"
               "Exit codes: 0 done, 2 bad spec or arguments, 3 data error, 4 model error,\n"
               "5 diverged, 6 out of memory, 7 stopped by SIGTERM/SIGINT, 8 no space left for\n"
               "its files (the daemon requeues it without using a retry).\n");
}

/* What the command line asks for. */
typedef struct {
    const char *spec_path; // TRIAL.json
    bool help;             // --help / -h: print the usage, run nothing
} run_opts;

/* argv -> O; --help prints the usage. 0, or WEXIT_SPEC with the reason in MSG. */
static int run_parse(int argc, char **argv, run_opts *o, char *msg, size_t msglen)
{
    memset(o, 0, sizeof *o);
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        run_usage(stdout);
        o->help = true;
        return 0;
    }
    if (argc == 2 && argv[1][0] == '-') {
        snprintf(msg, msglen, "run: unknown option '%s'", argv[1]);
        return WEXIT_SPEC;
    }
    if (argc != 2) {
        snprintf(msg, msglen, "usage: sweep-worker run TRIAL.json (got %d argument%s)", argc - 1,
                 argc == 2 ? "" : "s");
        return WEXIT_SPEC;
    }
    o->spec_path = argv[1];
    return 0;
}

/* Loads the spec and runs the trial; train_run emits the events. Returns the
 * exit code; on a spec failure before training, the reason is in MSG. */
static int run_run(const run_opts *o, char *msg, size_t msglen)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    trial_spec spec;
    int rc = trialspec_load(&spec, o->spec_path, msg, msglen);
    if (rc < 0) {
        if (!msg[0]) snprintf(msg, msglen, "%s", err_str(rc));
        trialspec_free(&spec);
        return rc == ERR_NOMEM ? WEXIT_NOMEM : WEXIT_SPEC;
    }
    msg[0] = 0;
    blas_set_threads(spec.threads);
    int code = train_run(&spec);
    trialspec_free(&spec);
    return code;
}

/* Reports a failure the trial loop did not report itself: MSG to stderr
 * (PREFIX first) and as the error event. Returns CODE. */
static int run_report_error(int code, const char *prefix, const char *msg)
{
    if (!msg[0]) return code;
    if (prefix)
        fprintf(stderr, "%s%s\n", prefix, msg);
    else
        log_error("%s", msg);
    events_error(events_code_for_exit(code), code, msg);
    return code;
}

int cmd_run(int argc, char **argv)
{
    events_init(stdout);
    run_opts o;
    char msg[1024] = "";
    int code = run_parse(argc, argv, &o, msg, sizeof msg);
    if (code) return run_report_error(code, "sweep-worker: ", msg);
    if (o.help) return WEXIT_OK;
    code = run_run(&o, msg, sizeof msg);
    return run_report_error(code, NULL, msg);
}
