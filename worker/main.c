/* sweep-worker — entry point: picks the sub-command and makes sure OpenBLAS
 * runs a real kernel before any numerical work (see blas_ensure_kernel). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "worker_cmds.h"

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
            "Run 'sweep-worker COMMAND --help' for a command's options.\n"
            "Exit codes: 0 done, 2 bad spec or arguments, 3 data error, 4 model error,\n"
            "5 diverged, 6 out of memory, 7 stopped by SIGTERM/SIGINT.\n");
}

int main(int argc, char **argv)
{
    /* A write beyond a file-size limit (systemd LimitFSIZE=, ulimit -f) must
     * fail with EFBIG and be reported, not kill the worker as a crash. */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return WEXIT_SPEC;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
        int numeric; // needs OpenBLAS
    } cmds[] = {
        {"run", cmd_run, 1},         {"eval", cmd_eval, 1},
        {"predict", cmd_predict, 1}, {"bench", cmd_bench, 1},
        {"import-idx", cmd_import_idx, 0},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(cmd, cmds[i].name)) continue;
        if (cmds[i].numeric) blas_ensure_kernel(argc, argv);
        return cmds[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "sweep-worker: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return WEXIT_SPEC;
}
