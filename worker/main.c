/* sweep-worker — entry point: picks the sub-command and, before any numerical
 * work, makes OpenBLAS run the kernel that `--blas-core` asks for (see
 * blas_ensure_kernel). `--blas-core VALUE` (or `--blas-core=VALUE`) is taken
 * out of the arguments wherever it stands, so every numeric command accepts
 * it; the re-executed process sees the original arguments again. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas_policy.h"
#include "worker_cmds.h"

/* Removes `--blas-core VALUE` / `--blas-core=VALUE` from ARGV[1..ARGC) in
 * place (ARGV stays NULL-terminated) and returns the value, NULL when absent
 * or, with *BAD set, when the option has no value. The last one wins. */
static const char *take_blas_core(int *argc, char **argv, int *bad)
{
    const char *v = NULL;
    int out = 1;
    *bad = 0;
    for (int i = 1; i < *argc; i++) {
        if (!strcmp(argv[i], "--blas-core")) {
            if (i + 1 >= *argc) {
                *bad = 1;
                continue;
            }
            v = argv[++i];
        } else if (!strncmp(argv[i], "--blas-core=", 12)) {
            v = argv[i] + 12;
        } else {
            argv[out++] = argv[i];
        }
    }
    argv[out] = NULL;
    *argc = out;
    return v;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sweep-worker COMMAND [ARGS]\n"
            "\n"
            "commands:\n"
            "  run TRIAL.json                       run one trial, JSON events on stdout\n"
            "  eval --weights CKPT --data DIR       evaluate a checkpoint on an ImageFolder\n"
            "  predict --weights FILE [--arch NAME] [--input-size N] [--raw] IMAGE...\n"
            "  import-idx IMAGES.idx[.gz] LABELS.idx[.gz] OUTDIR [--names a,b,...]\n"
            "  bench --arch A --input-size N --batch B [--freeze STAGE] [--threads T] [--steps S]\n"
            "\n"
            "Every command but import-idx also takes --blas-core inherit|auto|NAME: the OpenBLAS\n"
            "kernel (inherit keeps OPENBLAS_CORETYPE from the environment, auto picks the best\n"
            "for this CPU, NAME forces one, e.g. SkylakeX); default inherit.\n"
            "Run 'sweep-worker COMMAND --help' for a command's options.\n"
            "Exit codes: 0 done, 2 bad spec or arguments, 3 data error, 4 model error,\n"
            "5 diverged, 6 out of memory, 7 stopped by SIGTERM/SIGINT.\n");
}

int main(int argc, char **argv)
{
    /* A write beyond a file-size limit (systemd LimitFSIZE=, ulimit -f) must
     * fail with EFBIG and be reported, not kill the worker as a crash. */
    signal(SIGXFSZ, SIG_IGN);
    /* The subcommand gets a copy without --blas-core (which may also stand
     * before the command); execv gets ARGV unchanged. */
    char **sub = calloc((size_t)argc + 1, sizeof *sub);
    if (!sub) {
        fprintf(stderr, "sweep-worker: out of memory\n");
        return WEXIT_NOMEM;
    }
    memcpy(sub, argv, sizeof *sub * (size_t)argc);
    int subc = argc, bad, rc = WEXIT_SPEC;
    const char *policy = take_blas_core(&subc, sub, &bad);
    if (subc < 2) {
        usage(stderr);
        goto out;
    }
    const char *cmd = sub[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        rc = 0;
        goto out;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
        int numeric; // needs OpenBLAS
    } cmds[] = {
        {"run", cmd_run, 1},
        {"eval", cmd_eval, 1},
        {"predict", cmd_predict, 1},
        {"bench", cmd_bench, 1},
        {"import-idx", cmd_import_idx, 0},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(cmd, cmds[i].name)) continue;
        if (cmds[i].numeric) {
            char msg[768];
            if (bad || (policy && blas_policy_check(policy, msg, sizeof msg) < 0)) {
                fprintf(stderr, "sweep-worker %s: %s\n", cmd,
                        bad ? "--blas-core needs a value (inherit, auto or a kernel name)" : msg);
                goto out;
            }
            blas_ensure_kernel(policy, argv);
        }
        rc = cmds[i].fn(subc - 1, sub + 1);
        goto out;
    }
    fprintf(stderr, "sweep-worker: unknown command '%s'\n\n", cmd);
    usage(stderr);
out:
    free(sub);
    return rc;
}
