/* worker_cmds — the sub-commands of sweep-worker (README.md "Contract").
 *
 * worker/main.c parses nothing but the command name and hands ARGC/ARGV (with
 * argv[0] the command name) to one of these. Each returns the process exit
 * status from the contract (enum worker_exit, worker_exit.h): 0 done, 2 bad
 * spec or arguments, 3 data error, 4 model error, 5 diverged, 6 out of memory,
 * 7 stopped by signal. */
#ifndef SWEEP_WORKER_CMDS_H
#define SWEEP_WORKER_CMDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "worker_exit.h" // enum worker_exit: the exit statuses below

int cmd_run(int argc, char **argv);        // worker/cmd/run.c
int cmd_eval(int argc, char **argv);       // worker/cmd/eval.c
int cmd_predict(int argc, char **argv);    // worker/cmd/predict.c
int cmd_bench(int argc, char **argv);      // worker/cmd/bench.c
int cmd_import_idx(int argc, char **argv); // worker/cmd/import_idx.c

/* The record of one classified image: {"file": FILE, "top": [{"class",
 * "index", "prob"}, ...] (the TOP largest of the K LOGITS, softmax in double),
 * "logits": [...]}, classes named by CLASSES (K names). predict prints one a
 * line, eval --predictions lists them, so both report an image alike. New
 * reference, or NULL when out of memory. worker/cmd/predict.c */
json_t *cmd_prediction(const char *file, const float *logits, char *const *classes, int k, int top);

/* One option of a sub-command, for cmd_parse_options. */
typedef struct {
    const char *name; // "--threads"
    enum {
        CMD_OPT_STR,  // takes a value: the const char * field points at it
        CMD_OPT_INT,  // takes an integer in [lo, hi] (numparse.h): the int field
        CMD_OPT_FLAG, // takes no value: the int field becomes 1
    } kind;           // what it takes
    int lo, hi;       // CMD_OPT_INT: accepted range, inclusive
    size_t off;       // offsetof the field in the command's options struct
} cmd_opt;

#define CMD_MAX_OPTS 32 // most options a cmd_parse_options table may have

/* Parses the options of sub-command CMD in ARGV with getopt_long (so
 * --name=value and unambiguous prefixes work; operands may stand between
 * options) into the fields at OUT + the offsets of the N options in OPTS;
 * --help/-h prints USAGE(stdout) and sets *HELP. Returns 0 with optind at
 * the first operand, or WEXIT_SPEC after reporting on stderr, as
 * "sweep-worker CMD: ...", a missing value, a bad integer or an unknown option
 * (then USAGE(stderr) follows). worker/cmd/options.c */
int cmd_parse_options(const char *cmd, int argc, char **argv, const cmd_opt *opts, size_t n,
                      void *out, void (*usage)(FILE *), bool *help);

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
/* OpenBLAS's build configuration as the loaded library reports it
 * (openblas_get_config: version, build options, kernel); static string. */
const char *blas_config(void);
int blas_threads(void);
/* The blas_core policy the worker was started with ("inherit" by default);
 * static string. */
const char *blas_policy_name(void);
/* What start-up had to say about the kernel (a forced kernel the CPU cannot
 * run, a fallback after wrong products), or NULL; static string. */
const char *blas_kernel_note(void);

#endif
