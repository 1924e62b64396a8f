/* pool — the engine's threads: a pool of helper threads for parallel loops
 * and the matrix products of the layers, split over those same threads
 * (worker/engine/pool.c). The layers (layers.h) and the Winograd kernel
 * (winograd.h) both run on it; it depends on neither.
 *
 * Results never depend on how work is split: a parallel loop's function must
 * compute every index the same way whatever part it gets, and every element
 * of a split product is computed by one single-threaded product. They depend
 * only on the thread count (layers_set_threads).
 *
 * Environment switches for comparisons: SWEEP_POOL=0 (parallel loops run on
 * the calling thread), SWEEP_GEMM_SPLIT=0 (matrix products threaded by
 * OpenBLAS instead of split over the pool), SWEEP_POOL_SPIN=N (pause loops a
 * waiting pool thread spins before sleeping; default 4000, 0 = none).
 *
 * The entry points keep the layers_ prefix they had when they lived in
 * layers.c: the training code, sub-commands and tests call them by it. */
#ifndef SWEEP_POOL_H
#define SWEEP_POOL_H

#include <stddef.h>

/* ---------- parallel loops ---------- */

typedef void (*par_fn)(void *ctx, size_t i0, size_t i1);
/* Runs FN(ctx, i0, i1) over contiguous parts of [0, n) on the calling thread
 * plus helper threads (as many in all as layers_threads()), each part at least
 * GRAIN indices; returns when all are done. FN must compute every index the
 * same way whatever the split (results then do not depend on the thread
 * count). Called from one thread at a time; FN must not call it again
 * (no nesting). */
void layers_parallel_for(size_t n, size_t grain, par_fn fn, void *ctx);

/* ---------- threads and GEMM ---------- */

/* Sets the engine's thread count T (clamped to 1..16): the pool of
 * layers_parallel_for and the matrix products. By default (GEMM split mode)
 * OpenBLAS itself runs single-threaded and every large product is cut into T
 * column (or row) blocks that the pool's threads multiply at once, so one set
 * of T threads does all the work: OpenBLAS's own threads would otherwise spin
 * on the cores while the pool runs the elementwise passes, and its per-call
 * hand-off costs more than ours on the many mid-sized products of a ResNet
 * step. SWEEP_GEMM_SPLIT=0 in the environment gives the products back to
 * OpenBLAS's threads (T of them). Before the first call the engine follows
 * OpenBLAS's own thread count and leaves OpenBLAS alone. */
void layers_set_threads(int t);
/* The engine's thread count (see layers_set_threads). */
int layers_threads(void);
/* Row-major C = alpha * op(A) op(B) + beta * C, as cblas_sgemm, run on the
 * engine's threads as layers_set_threads describes. Each element of C is
 * computed by one single-threaded product whatever the split, so results
 * depend only on the thread count. */
void layers_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                  int lda, const float *b, int ldb, float beta, float *c, int ldc);
/* Runs FN(ctx, i0, i1) over [0, n) items that each make one or more
 * independent matrix products with cblas_sgemm (e.g. the 16 products of a
 * Winograd tile): spread over the engine's threads in split mode (each
 * product then runs single-threaded), on the calling thread otherwise
 * (OpenBLAS threads each product). Not nested in layers_parallel_for. */
void layers_gemm_batch(size_t n, par_fn fn, void *ctx);

#endif
