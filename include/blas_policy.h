/* blas_policy — which OpenBLAS kernel to run: the `blas_core` setting
 * (common/blas_policy.c). Pure decisions and CPU feature checks, with no
 * OpenBLAS call, so that the daemon (which validates the setting, passes it to
 * workers and warns about a slow inherited kernel) and the worker (which acts
 * on it, worker/engine/blas_setup.c) share one rule.
 *
 * The setting, in sweepd's config (`blas_core = ...`, `--blas-core`) and on
 * every numeric sweep-worker command (`--blas-core VALUE`):
 *   inherit  (default) keep an OPENBLAS_CORETYPE found in the environment; with
 *            none, let OpenBLAS pick, and only correct a pick below the CPU's
 *            vector level (OpenBLAS falls back to "Prescott" on CPUs it does
 *            not recognise);
 *   auto     the best kernel for the CPU's vector level, even over an
 *            inherited OPENBLAS_CORETYPE: Cooperlake where AVX512_BF16,
 *            SkylakeX where AVX-512, Haswell where AVX2;
 *   NAME     that OpenBLAS kernel (a name from blas_policy_known, any case);
 *            refused at run time when the CPU lacks the instructions it needs.
 * OpenBLAS reads OPENBLAS_CORETYPE once, when it loads, so a change means
 * setting the variable and re-executing the process (the worker does that). */
#ifndef SWEEP_BLAS_POLICY_H
#define SWEEP_BLAS_POLICY_H

#include <stdbool.h>
#include <stddef.h>

/* The CPU's vector features that decide which kernels can run. */
typedef struct {
    bool avx2;       // AVX2 and FMA
    bool avx512f;    // AVX-512 foundation
    bool avx512bf16; // AVX512_BF16 (Cooper Lake, Sapphire Rapids, Zen 4)
} blas_cpu;

/* Fills CPU from cpuid (__builtin_cpu_supports). */
void blas_cpu_detect(blas_cpu *cpu);

/* Checks a blas_core value. 0, or ERR_INVALID with a message that quotes
 * VALUE and lists the choices. */
int blas_policy_check(const char *value, char *msg, size_t msglen);

/* The OpenBLAS kernel names sweepd accepts for NAME (static strings, NULL
 * terminated), spelled as openblas_get_corename() prints them. */
extern const char *const blas_policy_known[];

/* Canonical spelling of kernel NAME (case-insensitive match in
 * blas_policy_known), or NULL when unknown. Static string. */
const char *blas_core_canonical(const char *name);

/* How fast kernel NAME runs sgemm on CPUs that can run it, as a rank: 4 AVX-512
 * with BF16 (Cooperlake, SapphireRapids), 3 AVX-512 (SkylakeX), 2 AVX2
 * (Haswell, Zen, SkylakeX's client sibling Skylake), 1 AVX, 0 older or
 * unknown. */
int blas_core_rank(const char *name);

/* The best kernel for CPU ("Cooperlake", "SkylakeX", "Haswell"), or NULL when
 * the CPU has no AVX2. Static string. */
const char *blas_cpu_best(const blas_cpu *cpu);

/* True when CPU has the instructions kernel NAME uses. */
bool blas_cpu_can_run(const blas_cpu *cpu, const char *name);

/* The kernel to re-execute with, or NULL to keep the loaded one, for POLICY
 * ("inherit", "auto" or a kernel name; NULL = inherit), INHERITED (the
 * OPENBLAS_CORETYPE the process was started with, NULL or "" when none),
 * LOADED (the kernel OpenBLAS runs now) and CPU. A forced NAME the CPU cannot
 * run gives NULL and, when WHY is given, the reason in WHY. Static string. */
const char *blas_policy_target(const char *policy, const char *inherited, const char *loaded,
                               const blas_cpu *cpu, char *why, size_t whylen);

/* The kernel workers started under POLICY with INHERITED will run on CPU, or
 * NULL when OpenBLAS chooses by itself (inherit with nothing inherited).
 * Static string. */
const char *blas_policy_expect(const char *policy, const char *inherited, const blas_cpu *cpu);

/* Under POLICY, a sentence for the user when the kernel they will get is below
 * what the CPU supports because an inherited OPENBLAS_CORETYPE keeps it (the
 * daemon logs it once at start and shows it in `sweepctl status`): which
 * kernel, what `auto` would pick, roughly what it costs. Returns true and fills
 * OUT when there is something to say. */
bool blas_policy_advice(const char *policy, const char *inherited, const blas_cpu *cpu, char *out,
                        size_t outlen);

#endif
