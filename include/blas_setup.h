/* blas_setup — the worker's OpenBLAS start-up (worker/engine/blas_setup.c).
 *
 * The process-level entry points (blas_ensure_kernel, blas_set_threads,
 * blas_core_name, blas_threads) are declared in worker_cmds.h; the policy
 * rule they apply is in blas_policy.h. This header names the environment
 * variables that carry the start-up's state across re-executions and exposes
 * the self-check so that it can be tested on its own. */
#ifndef SWEEP_BLAS_SETUP_H
#define SWEEP_BLAS_SETUP_H

#include <stddef.h>

/* Set before re-executing: "1" after switching kernels for the policy,
 * "fallback" after going back to the inherited kernel; never re-executes
 * from "fallback". */
#define BLAS_REEXEC_MARKER "SWEEP_BLAS_REEXEC"
/* The OPENBLAS_CORETYPE the worker was started with ("" = none). */
#define BLAS_INHERITED_VAR "SWEEP_BLAS_INHERITED"
/* The kernel a fallback left (set for the re-executed process). */
#define BLAS_FELL_BACK_VAR "SWEEP_BLAS_FELL_BACK"

/* C (M, N) = alpha * op(A) op(B) + beta * C, row-major, accumulated in double:
 * the naive reference OpenBLAS products are checked against (start-up check,
 * tests). op(A) is A (M, K) with leading dimension LDA, or its transpose when
 * TA; likewise B (K, N). */
void blas_sgemm_ref(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                    const float *b, int ldb, float beta, float *c, int ldc);

/* Compares a few cblas_sgemm products of the loaded kernel with a naive
 * triple loop. 0 when they agree, 1 on a mismatch (described in WHY), -1 when
 * memory is short (nothing checked). Test hook: SWEEP_BLAS_BAD_KERNEL=NAME
 * makes it report a mismatch while kernel NAME is loaded. */
int blas_selfcheck(char *why, size_t whylen);

#endif
