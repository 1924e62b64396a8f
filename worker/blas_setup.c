/* blas_setup — makes OpenBLAS use a real kernel for this CPU and sets its
 * thread count (entry points in worker_cmds.h, decision in blas_setup.h).
 *
 * Debian's OpenBLAS is built with DYNAMIC_ARCH: at load time it picks a kernel
 * from cpuid, and on some virtual machines it does not recognise the CPU and
 * falls back to "Prescott" (SSE3), which runs sgemm about 6x slower than the
 * AVX-512 kernels (PERF-NOTES.md). The choice is made once, when the library
 * loads, from the OPENBLAS_CORETYPE variable, so the only way to change it is
 * to set the variable and start again: blas_ensure_kernel re-executes
 * /proc/self/exe with the same arguments. A marker variable prevents a second
 * re-exec, and a user's own OPENBLAS_CORETYPE is always respected.
 *
 * Cooperlake versus SkylakeX (both AVX-512): on this AMD EPYC (AVX-512 with
 * BF16) the Cooperlake kernel measured 163-197 GFLOPS on the conv-like
 * 128x784x1152 sgemm with 2 threads against 93-191 for SkylakeX (same run,
 * alternating, noisy machine), and the same or better on 576x3136x64; so CPUs
 * with avx512bf16 get Cooperlake. */
#include "blas_setup.h"
#include "layers.h"

#include <cblas.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "worker_cmds.h"

/* Vector level of an OpenBLAS kernel name: 3 AVX-512, 2 AVX2, 1 AVX, 0 older
 * or unknown. Names as openblas_get_corename() prints them (0.3.21). */
static int core_level(const char *name)
{
    static const char *const l3[] = {"SkylakeX", "Cooperlake", "SapphireRapids", NULL};
    static const char *const l2[] = {"Haswell", "Zen", "SkylakeX", "Skylake", "Cooperlake", NULL};
    static const char *const l1[] = {"Sandybridge", "Bulldozer", "Piledriver",
                                     "Steamroller", "Excavator", NULL};
    for (int i = 0; l3[i]; i++)
        if (!strcasecmp(name, l3[i])) return 3;
    for (int i = 0; l2[i]; i++)
        if (!strcasecmp(name, l2[i])) return 2;
    for (int i = 0; l1[i]; i++)
        if (!strcasecmp(name, l1[i])) return 1;
    return 0;
}

const char *blas_pick_core(const char *current, int avx512f, int avx512bf16, int avx2)
{
    int want = avx512f ? 3 : avx2 ? 2 : 0;
    if (!want) return NULL;
    if (current && core_level(current) >= want) return NULL;
    if (want == 3) return avx512bf16 ? "Cooperlake" : "SkylakeX";
    return "Haswell";
}

void blas_ensure_kernel(int argc, char **argv)
{
    (void)argc;
    const char *user = getenv("OPENBLAS_CORETYPE");
    const char *current = openblas_get_corename();
    /* Test hook: SWEEP_BLAS_PRETEND_CORE=NAME makes the first start act as if
     * OpenBLAS had chosen NAME (e.g. Prescott), so the re-exec path runs on
     * CPUs that OpenBLAS detects correctly. The restarted process reports
     * the kernel it really loaded. */
    const char *pretend = getenv("SWEEP_BLAS_PRETEND_CORE");
    if (pretend && *pretend && !(user && *user)) current = pretend;
    if (user && *user) {
        log_debug("OpenBLAS kernel %s (OPENBLAS_CORETYPE=%s)", current, user);
        return;
    }
    __builtin_cpu_init();
    const char *target =
        blas_pick_core(current, __builtin_cpu_supports("avx512f"),
                       __builtin_cpu_supports("avx512bf16"), __builtin_cpu_supports("avx2"));
    if (!target) return;
    if (getenv(BLAS_REEXEC_MARKER)) {
        log_warn("OpenBLAS still runs the %s kernel after restarting with "
                 "OPENBLAS_CORETYPE=%s; continuing (slower)",
                 current, target);
        return;
    }
    log_info("OpenBLAS chose the %s kernel on a CPU that supports %s; restarting with "
             "OPENBLAS_CORETYPE=%s",
             current, target, target);
    if (setenv("OPENBLAS_CORETYPE", target, 1) != 0 || setenv(BLAS_REEXEC_MARKER, "1", 1) != 0) {
        log_warn("cannot set OPENBLAS_CORETYPE; keeping the %s kernel", current);
        unsetenv("OPENBLAS_CORETYPE");
        return;
    }
    execv("/proc/self/exe", argv);
    int e = errno;
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv(BLAS_REEXEC_MARKER);
    log_warn("cannot re-execute /proc/self/exe to switch OpenBLAS from %s to %s (%s); "
             "continuing with %s (set OPENBLAS_CORETYPE=%s to fix)",
             current, target, strerror(e), current, target);
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

int blas_threads(void)
{
    return layers_threads();
}
