/* blas_setup — makes OpenBLAS run the kernel the `blas_core` setting asks for,
 * checks that kernel's products, and sets the engine's thread count (entry
 * points in worker_cmds.h; the policy rule in include/blas_policy.h).
 *
 * Debian's OpenBLAS is built with DYNAMIC_ARCH: at load time it picks a kernel
 * from cpuid or, when set, from OPENBLAS_CORETYPE. On some virtual machines it
 * does not recognise the CPU and falls back to "Prescott" (SSE3), about 6x
 * slower than the AVX-512 kernels; some environments preset an older kernel
 * (OPENBLAS_CORETYPE=Haswell on AVX-512 CPUs, about half the speed). The
 * choice is made once, when the library loads, so the only way to change it
 * is to set the variable and start again: blas_ensure_kernel re-executes
 * /proc/self/exe with the same arguments.
 *
 * Start-up, as a state diagram over the marker variable SWEEP_BLAS_REEXEC:
 *
 *   (unset) --policy wants another kernel--> re-exec, marker "1"
 *   (unset) or "1" --self-check passes--> run
 *   "1" --self-check fails--> re-exec with the inherited OPENBLAS_CORETYPE
 *                             (or none), marker "fallback"
 *   "fallback", or (unset) with nothing to fall back to --self-check fails-->
 *                             warn and run
 *
 * so a worker re-executes at most twice. The OPENBLAS_CORETYPE the worker was
 * started with is kept in SWEEP_BLAS_INHERITED across the re-executions. */
#include "blas_setup.h"
#include "blas_policy.h"
#include "pool.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "worker_cmds.h"

void blas_sgemm_ref(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                    const float *b, int ldb, float beta, float *c, int ldc)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++) {
                double x = ta ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                double y = tb ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                s += x * y;
            }
            c[(size_t)i * ldc + j] = (float)(alpha * s + beta * c[(size_t)i * ldc + j]);
        }
}

int blas_selfcheck(char *why, size_t whylen)
{
    /* {trans_a, trans_b, m, n, k}: odd sizes hit the edge tiles of every
     * blocking; all four transpositions; beta = 0.5 reads C too. */
    static const int shapes[][5] = {
        {0, 0, 37, 53, 29}, {1, 0, 64, 48, 80}, {0, 1, 17, 130, 65}, {1, 1, 96, 33, 47}};
    enum { MAXE = 130 * 130 }; // entries of the largest operand
    float *a = malloc(4 * (size_t)MAXE * sizeof *a);
    if (!a) return -1;
    float *b = a + MAXE, *c = b + MAXE, *ref = c + MAXE;
    uint64_t r = 0x5eedULL;
    int bad = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0] && !bad; s++) {
        int ta = shapes[s][0], tb = shapes[s][1], m = shapes[s][2], n = shapes[s][3];
        int k = shapes[s][4];
        for (int i = 0; i < MAXE; i++) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            a[i] = (float)((double)(r >> 11) * 0x1p-52 - 1.0);
            b[i] = -0.5f * a[(i * 7) % MAXE] + 0.25f;
            c[i] = ref[i] = 0.125f * a[i];
        }
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    m, n, k, 1.0f, a, ta ? m : k, b, tb ? k : n, 0.5f, c, n);
        blas_sgemm_ref(ta, tb, m, n, k, 1.0f, a, ta ? m : k, b, tb ? k : n, 0.5f, ref, n);
        /* Each entry sums k products of values in [-1, 1]: float32 rounding
         * stays far below 1e-5 * k; a wrong kernel is off by whole units. */
        double tol = 1e-5 * (k + 1);
        for (int i = 0; i < m * n; i++)
            if (!(fabs((double)c[i] - ref[i]) <= tol)) {
                snprintf(why, whylen, "%c%c %dx%dx%d product: entry %d is %g, reference %g",
                         ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, i, c[i], ref[i]);
                bad = 1;
                break;
            }
    }
    free(a);
    const char *fake = getenv("SWEEP_BLAS_BAD_KERNEL");
    if (!bad && fake && *fake && !strcasecmp(fake, blas_core_name())) {
        snprintf(why, whylen, "SWEEP_BLAS_BAD_KERNEL=%s (test hook) marks its products wrong",
                 fake);
        bad = 1;
    }
    return bad;
}

static const char *policy_in_use = "inherit"; // the --blas-core value, for reports
static char kernel_note[512];                 // what happened at start-up, "" = nothing

const char *blas_policy_name(void)
{
    return policy_in_use;
}

const char *blas_kernel_note(void)
{
    return kernel_note[0] ? kernel_note : NULL;
}

/* Re-executes /proc/self/exe with OPENBLAS_CORETYPE=CORE (NULL: unset) and the
 * marker STAGE; returns only when that fails (after logging why). */
static void reexec(char **argv, const char *core, const char *stage, const char *current)
{
    if ((core ? setenv("OPENBLAS_CORETYPE", core, 1) : unsetenv("OPENBLAS_CORETYPE")) != 0 ||
        setenv(BLAS_REEXEC_MARKER, stage, 1) != 0) {
        log_warn("cannot set OPENBLAS_CORETYPE; keeping the %s kernel", current);
        return;
    }
    execv("/proc/self/exe", argv);
    int e = errno;
    log_warn("cannot re-execute /proc/self/exe to switch OpenBLAS from %s to %s (%s); "
             "continuing with %s",
             current, core ? core : "its own choice", strerror(e), current);
}

/* The note for reports, also logged as a warning. */
static void note(const char *fmt, const char *a, const char *b, const char *c)
{
    snprintf(kernel_note, sizeof kernel_note, fmt, a, b, c);
    log_warn("%s", kernel_note);
}

void blas_ensure_kernel(const char *policy, char **argv)
{
    if (!policy) policy = "inherit";
    policy_in_use = policy;
    const char *stage = getenv(BLAS_REEXEC_MARKER);
    /* The OPENBLAS_CORETYPE this worker was started with, saved before the
     * first re-exec changes the variable. */
    const char *saved = stage ? getenv(BLAS_INHERITED_VAR) : NULL;
    if (!saved) {
        const char *env = getenv("OPENBLAS_CORETYPE");
        if (setenv(BLAS_INHERITED_VAR, env ? env : "", 1) == 0) saved = getenv(BLAS_INHERITED_VAR);
    }
    const char *inherited = saved && *saved ? saved : NULL;
    const char *current = blas_core_name();
    const char *from = getenv(BLAS_FELL_BACK_VAR);
    if (stage && !strcmp(stage, "fallback") && from)
        snprintf(kernel_note, sizeof kernel_note,
                 "fell back from the %s kernel (blas_core = %s), whose products disagreed with "
                 "the reference",
                 from, policy);
    /* Test hook: SWEEP_BLAS_PRETEND_CORE=NAME makes the first start act as if
     * OpenBLAS had chosen NAME (e.g. Prescott), so the re-exec path runs on
     * CPUs that OpenBLAS detects correctly (the restarted process, which
     * pretends too, then warns that the restart did not help; reports name
     * the kernel really loaded). */
    const char *pretend = getenv("SWEEP_BLAS_PRETEND_CORE");
    if (pretend && *pretend && !inherited) current = pretend;
    blas_cpu cpu;
    blas_cpu_detect(&cpu);
    char why[256];
    const char *target = blas_policy_target(policy, inherited, current, &cpu, why, sizeof why);
    if (why[0]) note("blas_core = %s is not used: %s; keeping the %s kernel", policy, why, current);
    if (target && !stage) {
        log_info("blas_core = %s: OpenBLAS runs the %s kernel; restarting with "
                 "OPENBLAS_CORETYPE=%s",
                 policy, current, target);
        reexec(argv, target, "1", current);
        return; // the re-exec failed: keep the loaded kernel
    }
    if (target && !strcmp(stage, "1"))
        note("OpenBLAS still runs the %s kernel after restarting with OPENBLAS_CORETYPE=%s "
             "(blas_core = %s); continuing",
             current, target, policy);
    char bad[256];
    if (blas_selfcheck(bad, sizeof bad) != 1) {
        log_debug("OpenBLAS kernel %s (blas_core = %s) agrees with the reference", current, policy);
        return;
    }
    /* Wrong products: go back to what the worker was started with, unless
     * that is what runs now. */
    const char *now = getenv("OPENBLAS_CORETYPE");
    bool same = (!now && !inherited) || (now && inherited && !strcasecmp(now, inherited));
    if (!stage || strcmp(stage, "1") || same) {
        note("OpenBLAS kernel %s gives wrong products (%s) under blas_core = %s, and there is no "
             "other kernel to fall back to; continuing",
             current, bad, policy);
        return;
    }
    log_warn("OpenBLAS kernel %s (blas_core = %s) gives wrong products (%s); falling back to "
             "the inherited kernel",
             current, policy, bad);
    if (setenv(BLAS_FELL_BACK_VAR, current, 1) != 0) return;
    reexec(argv, inherited, "fallback", current);
}

/* One product big enough to run on every engine thread, before the command
 * allocates anything large. OpenBLAS takes its per-thread work buffers at the
 * first call on each thread and keeps them; when that first call comes only
 * after memory is exhausted, it retries the allocation forever instead of
 * failing. Warmed up here, a later shortage hits our own allocations, which
 * fail cleanly (exit 6). */
static void blas_warmup(void)
{
    enum { N = 384 };
    float *a = calloc((size_t)3 * N * N, sizeof *a);
    if (!a) return;
    layers_sgemm(0, 0, N, N, N, 1.0f, a, N, a + N * N, N, 0.0f, a + 2 * N * N, N);
    free(a);
}

void blas_set_threads(int threads)
{
    layers_set_threads(threads);
    blas_warmup();
}

const char *blas_core_name(void)
{
    const char *n = openblas_get_corename();
    return n && *n ? n : "unknown";
}

const char *blas_config(void)
{
    const char *c = openblas_get_config();
    return c && *c ? c : "unknown";
}

int blas_threads(void)
{
    return layers_threads();
}
