/* worker_cmds — the sub-commands of sweep-worker (README.md "Contract").
 *
 * worker/main.c parses nothing but the command name and hands ARGC/ARGV (with
 * argv[0] the command name) to one of these. Each returns the process exit
 * status from the contract: 0 done, 2 bad spec or arguments, 3 data error,
 * 4 model error, 5 diverged, 6 out of memory, 7 stopped by signal. */
#ifndef SWEEP_WORKER_CMDS_H
#define SWEEP_WORKER_CMDS_H

#include <stddef.h>
#include <stdio.h>

enum worker_exit {
    WEXIT_OK = 0,
    WEXIT_SPEC = 2,
    WEXIT_DATA = 3,
    WEXIT_MODEL = 4,
    WEXIT_DIVERGED = 5,
    WEXIT_NOMEM = 6,
    WEXIT_STOPPED = 7,
};

int cmd_run(int argc, char **argv);        // worker/cmd/run.c
int cmd_eval(int argc, char **argv);       // worker/cmd/eval.c
int cmd_predict(int argc, char **argv);    // worker/cmd/predict.c
int cmd_bench(int argc, char **argv);      // worker/cmd/bench.c
int cmd_import_idx(int argc, char **argv); // worker/cmd/import_idx.c

/* One integer option of a sub-command, for cmd_next_option. */
typedef struct {
    int code;         // getopt_long's val for it
    const char *name; // "--threads", for messages
    int lo, hi;       // accepted range, inclusive
    size_t off;       // offsetof the int field in the command's options struct
} cmd_int_opt;

struct option;
/* getopt_long over ARGV (short options: only -h) for sub-command CMD: parses
 * the NINTS integer options INTS itself (numparse.h) into the ints at OUT +
 * their offsets and returns the next other option's code, -1 after the last
 * option (optind is then the first operand), or '?' when the arguments are
 * bad: a missing value, an unknown option (then USAGE(stderr) follows) or a
 * bad integer, reported on stderr as "sweep-worker CMD: ...". Set optind = 1
 * before the first call. worker/cmd/options.c */
int cmd_next_option(const char *cmd, int argc, char **argv, const struct option *longopts,
                    const cmd_int_opt *ints, size_t nints, void *out, void (*usage)(FILE *));

/* Makes OpenBLAS run the kernel that POLICY (a blas_core value: "inherit",
 * "auto" or a kernel name; NULL = inherit, see blas_policy.h) asks for, by
 * setting OPENBLAS_CORETYPE and re-executing /proc/self/exe with ARGV when
 * the loaded kernel differs; then checks the kernel's products against a
 * naive reference and, on a mismatch, re-executes once more with the
 * inherited kernel. Returns when no re-exec is needed, or one failed (after
 * logging why). worker/engine/blas_setup.c */
void blas_ensure_kernel(const char *policy, char **argv);
/* Sets the engine's thread count (layers_set_threads) and runs one product on
 * every thread so OpenBLAS takes its work buffers now, before memory can run
 * out (OpenBLAS would retry a failed buffer allocation forever). */
void blas_set_threads(int threads);
/* The kernel OpenBLAS uses ("SkylakeX", "Cooperlake", ...); static string. */
const char *blas_core_name(void);
int blas_threads(void);
/* The blas_core policy the worker was started with ("inherit" by default);
 * static string. */
const char *blas_policy_name(void);
/* What start-up had to say about the kernel (a forced kernel the CPU cannot
 * run, a fallback after wrong products), or NULL; static string. */
const char *blas_kernel_note(void);

#endif
