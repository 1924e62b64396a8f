/* worker_cmds — the sub-commands of sweep-worker (README.md "Contract").
 *
 * worker/main.c parses nothing but the command name and hands ARGC/ARGV (with
 * argv[0] the command name) to one of these. Each returns the process exit
 * status from the contract: 0 done, 2 bad spec or arguments, 3 data error,
 * 4 model error, 5 diverged, 6 out of memory, 7 stopped by signal. */
#ifndef SWEEP_WORKER_CMDS_H
#define SWEEP_WORKER_CMDS_H

#include <stddef.h>

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

/* One integer option of a sub-command, for cmd_int_option. */
typedef struct {
    int code;         // getopt_long's val for it
    const char *name; // "--threads", for messages
    int lo, hi;       // accepted range, inclusive
    size_t off;       // offsetof the int field in the command's options struct
} cmd_int_opt;

/* When getopt code C is one of the N options in OPTS, parses VALUE
 * (numparse.h) into the int at OUT + that option's offset and returns 1, or,
 * for a bad value, prints "sweep-worker CMD: <numparse message>" to stderr
 * and returns -1. Returns 0 when C is none of them. worker/cmd/options.c */
int cmd_int_option(const char *cmd, const cmd_int_opt *opts, size_t n, int c, const char *value,
                   void *out);

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
