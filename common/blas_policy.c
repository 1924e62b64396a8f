/* blas_policy — the `blas_core` setting's rule (contract in
 * include/blas_policy.h): which OpenBLAS kernel a process should run for a
 * policy, an inherited OPENBLAS_CORETYPE, the kernel loaded and the CPU.
 *
 * Ranks, measured on an AMD EPYC with AVX-512 and AVX512_BF16 (2 threads,
 * Debian's OpenBLAS 0.3.21): sgemm peak 211 GFLOPS with Haswell, 360 with
 * SkylakeX, 389 with Cooperlake; resnet18 training at 224/16 18 img/s with
 * Haswell against 34-36 with the AVX-512 kernels. Cooperlake ranks above
 * SkylakeX because it measured the same or better on every product the
 * engine runs. OpenBLAS 0.3.21 silently ignores names it does not know
 * (SapphireRapids among them) and picks by cpuid instead; the worker reports
 * the kernel it really got. */
#include "blas_policy.h"

#include "errors.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *const blas_policy_known[] = {
    "Prescott",  "Core2",      "Penryn",         "Dunnington", "Nehalem", "Atom",
    "Athlon",    "Opteron",    "Barcelona",      "Nano",       "Bobcat",  "Sandybridge",
    "Bulldozer", "Piledriver", "Steamroller",    "Excavator",  "Haswell", "Zen",
    "SkylakeX",  "Cooperlake", "SapphireRapids", NULL};

void blas_cpu_detect(blas_cpu *cpu)
{
    __builtin_cpu_init();
    cpu->avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    cpu->avx512f = __builtin_cpu_supports("avx512f");
    cpu->avx512bf16 = __builtin_cpu_supports("avx512bf16");
}

const char *blas_core_canonical(const char *name)
{
    if (!name) return NULL;
    for (int i = 0; blas_policy_known[i]; i++)
        if (!strcasecmp(name, blas_policy_known[i])) return blas_policy_known[i];
    return NULL;
}

int blas_policy_check(const char *value, char *msg, size_t msglen)
{
    if (value &&
        (!strcmp(value, "inherit") || !strcmp(value, "auto") || blas_core_canonical(value)))
        return 0;
    char names[512];
    size_t off = 0;
    names[0] = '\0';
    for (int i = 0; blas_policy_known[i] && off < sizeof names; i++)
        off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", i ? ", " : "",
                                blas_policy_known[i]);
    return err_set(msg, msglen, ERR_INVALID,
                   "blas_core: expected inherit, auto or an OpenBLAS kernel name (%s), got '%s'",
                   names, value ? value : "");
}

int blas_core_rank(const char *name)
{
    static const struct {
        const char *name;
        int rank;
    } ranks[] = {
        {"Cooperlake", 4}, {"SapphireRapids", 4}, {"SkylakeX", 3},    {"Haswell", 2},
        {"Zen", 2},        {"Skylake", 2},        {"Sandybridge", 1}, {"Bulldozer", 1},
        {"Piledriver", 1}, {"Steamroller", 1},    {"Excavator", 1},
    };
    if (!name) return 0;
    for (size_t i = 0; i < sizeof ranks / sizeof ranks[0]; i++)
        if (!strcasecmp(name, ranks[i].name)) return ranks[i].rank;
    return 0;
}

/* The vector level of kernel NAME: its rank, with both AVX-512 ranks as one. */
static int vector_level(const char *name)
{
    int r = blas_core_rank(name);
    return r > 3 ? 3 : r;
}

const char *blas_cpu_best(const blas_cpu *cpu)
{
    if (cpu->avx512f) return cpu->avx512bf16 ? "Cooperlake" : "SkylakeX";
    if (cpu->avx2) return "Haswell";
    return NULL;
}

bool blas_cpu_can_run(const blas_cpu *cpu, const char *name)
{
    switch (blas_core_rank(name)) {
    case 4:
        return cpu->avx512f && cpu->avx512bf16;
    case 3:
        return cpu->avx512f;
    case 2:
        return cpu->avx2;
    case 1:
        return cpu->avx2; // AVX without AVX2 is not detected; every AVX2 CPU has it
    default:
        return true; // SSE-era kernels run on every x86-64 CPU
    }
}

const char *blas_policy_target(const char *policy, const char *inherited, const char *loaded,
                               const blas_cpu *cpu, char *why, size_t whylen)
{
    if (why && whylen) why[0] = '\0';
    const char *best = blas_cpu_best(cpu);
    if (!policy || !strcmp(policy, "inherit")) {
        if (inherited && *inherited) return NULL;
        /* OpenBLAS chose: correct only a choice below the CPU's vector level
         * (AVX-512 with or without BF16 is one level). */
        return best && vector_level(loaded) < vector_level(best) ? best : NULL;
    }
    if (!strcmp(policy, "auto")) {
        if (best && blas_core_rank(loaded) < blas_core_rank(best)) return best;
        return NULL;
    }
    const char *name = blas_core_canonical(policy);
    if (!name) {
        if (why) snprintf(why, whylen, "unknown kernel '%s'", policy);
        return NULL;
    }
    if (!blas_cpu_can_run(cpu, name)) {
        if (why)
            snprintf(why, whylen, "this CPU lacks the %s instructions that the %s kernel needs",
                     blas_core_rank(name) == 4   ? "AVX512_BF16"
                     : blas_core_rank(name) == 3 ? "AVX-512"
                                                 : "AVX2",
                     name);
        return NULL;
    }
    if (loaded && !strcasecmp(loaded, name)) return NULL;
    return name;
}

const char *blas_policy_expect(const char *policy, const char *inherited, const blas_cpu *cpu)
{
    const char *inh = inherited && *inherited ? inherited : NULL;
    if (!policy || !strcmp(policy, "inherit")) return inh;
    if (!strcmp(policy, "auto")) return blas_cpu_best(cpu) ? blas_cpu_best(cpu) : inh;
    const char *name = blas_core_canonical(policy);
    return name && blas_cpu_can_run(cpu, name) ? name : inh;
}

bool blas_policy_advice(const char *policy, const char *inherited, const blas_cpu *cpu, char *out,
                        size_t outlen)
{
    if (policy && strcmp(policy, "inherit")) return false;
    if (!inherited || !*inherited) return false;
    const char *best = blas_cpu_best(cpu);
    if (!best || blas_core_rank(inherited) >= blas_core_rank(best)) return false;
    const char *cost = blas_core_rank(inherited) >= 2
                           ? "AVX2 kernels ran sgemm at about half the AVX-512 speed on an AVX-512 "
                             "EPYC (211 against 389 GFLOPS) and training 1.3-2x slower"
                           : "kernels below AVX2 run sgemm several times slower than this CPU can";
    snprintf(out, outlen,
             "OpenBLAS kernel %s is inherited from OPENBLAS_CORETYPE and blas_core = inherit keeps "
             "it, but this CPU supports %s (blas_core = auto would pick it); %s",
             inherited, best, cost);
    return true;
}
