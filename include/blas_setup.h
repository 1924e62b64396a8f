/* blas_setup — choosing the OpenBLAS kernel (worker/blas_setup.c).
 *
 * The process-level entry points (blas_ensure_kernel, blas_set_threads,
 * blas_core_name, blas_threads) are declared in worker_cmds.h; this header
 * exposes the pure decision behind blas_ensure_kernel so that it can be
 * tested without a CPU that triggers it. */
#ifndef SWEEP_BLAS_SETUP_H
#define SWEEP_BLAS_SETUP_H

/* Environment marker set before re-executing, so a second start never
 * re-executes again. */
#define BLAS_REEXEC_MARKER "SWEEP_BLAS_REEXEC"

/* The OPENBLAS_CORETYPE value to ask for when OpenBLAS reports CURRENT on a CPU
 * with the given features (non-zero when present): "Cooperlake" for AVX-512
 * with BF16, "SkylakeX" for AVX-512, "Haswell" for AVX2; NULL when CURRENT is
 * already a kernel of that level (or better), or the CPU has neither. Static
 * string. Kernel names are compared case-insensitively. */
const char *blas_pick_core(const char *current, int avx512f, int avx512bf16, int avx2);

#endif
