/* pool — the engine's threads (contracts in include/pool.h): one pool of
 * helper threads that runs the elementwise passes of the layers and of
 * Winograd's transforms (layers_parallel_for), and the split matrix products
 * (layers_sgemm, layers_gemm_batch) with OpenBLAS single-threaded, so one set
 * of threads does all the work of a step. Moved out of layers.c so that
 * layers.c and winograd.c both build on it without depending on each other. */
#pragma GCC optimize("O3")
#include "pool.h"

#include <cblas.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>

#include "log.h"
#include "numparse.h"

/* ---------- parallel loops ---------- */

/* A small pool of helper threads for the elementwise passes (batchnorm,
 * ReLU, residual adds, pooling, Winograd transforms, optimizer updates),
 * and the blocks of split matrix products. The thread count is the engine's
 * (layers_set_threads). A job is cut into more chunks than threads and
 * every participant (the caller included) takes the next chunk from an
 * atomic counter, so a helper that the scheduler keeps off the CPU (a busy
 * machine) delays nothing: the caller does its share. Every index is computed
 * the same way whatever the split, so results do not depend on the thread
 * count or on who ran which chunk. SWEEP_POOL=0 in the environment turns the
 * pool off (for comparisons). */
#define POOL_MAX 16
#define POOL_CHUNKS_PER_THREAD 4

static struct {
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    int started;  // helper threads running
    unsigned gen; // job generation, bumped per job
    int busy;     // helpers inside the current job
    par_fn fn;    // the job
    void *ctx;
    size_t n, chunks;       // index range [0, n) cut into `chunks` chunks
    atomic_size_t next;     // next chunk to take
    atomic_size_t finished; // chunks completed
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER,
          .go = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

/* Takes and runs chunks of the current job until none is left. */
static void pool_work(par_fn fn, void *ctx, size_t n, size_t chunks)
{
    for (;;) {
        size_t i = atomic_fetch_add(&pool.next, 1);
        if (i >= chunks) break;
        fn(ctx, n * i / chunks, n * (i + 1) / chunks);
        atomic_fetch_add(&pool.finished, 1);
    }
}

/* Pause-loop iterations a waiting thread spins before it sleeps on the
 * condition variable (SWEEP_POOL_SPIN overrides; 0 = sleep at once). A step
 * hands the pool hundreds of jobs a few hundred microseconds apart, and a
 * futex wake-up costs tens of microseconds each way. */
#define POOL_SPIN_DEFAULT 4000

static int pool_spin(void)
{
    static int spin = -1;
    if (spin < 0) {
        const char *e = getenv("SWEEP_POOL_SPIN");
        char msg[160];
        spin = POOL_SPIN_DEFAULT;
        if (e && *e && numparse_int("SWEEP_POOL_SPIN", e, 0, INT_MAX, &spin, msg, sizeof msg)) {
            log_warn("%s; using %d", msg, POOL_SPIN_DEFAULT);
            spin = POOL_SPIN_DEFAULT;
        }
    }
    return spin;
}

static void *pool_main(void *arg)
{
    (void)arg;
    unsigned seen = 0;
    const int spin = pool_spin();
    for (;;) {
        for (int i = 0; i < spin && __atomic_load_n(&pool.gen, __ATOMIC_ACQUIRE) == seen; i++)
            _mm_pause();
        pthread_mutex_lock(&pool.mu);
        while (__atomic_load_n(&pool.gen, __ATOMIC_ACQUIRE) == seen)
            pthread_cond_wait(&pool.go, &pool.mu);
        seen = pool.gen;
        par_fn fn = pool.fn;
        void *ctx = pool.ctx;
        size_t n = pool.n, chunks = pool.chunks;
        pool.busy++;
        pthread_mutex_unlock(&pool.mu);
        pool_work(fn, ctx, n, chunks);
        pthread_mutex_lock(&pool.mu);
        if (--pool.busy == 0) pthread_cond_signal(&pool.done);
        pthread_mutex_unlock(&pool.mu);
    }
    return NULL;
}

static int g_threads; // engine threads set by layers_set_threads; 0: follow OpenBLAS's

/* 1 when matrix products are split over the pool (SWEEP_GEMM_SPLIT unset or
 * not "0"). */
static int gemm_split_mode(void)
{
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("SWEEP_GEMM_SPLIT");
        on = !(e && !strcmp(e, "0"));
    }
    return on;
}

void layers_set_threads(int t)
{
    if (t < 1) t = 1;
    if (t > POOL_MAX) t = POOL_MAX;
    g_threads = t;
    openblas_set_num_threads(gemm_split_mode() ? 1 : t);
}

int layers_threads(void)
{
    if (g_threads) return g_threads;
    int t = openblas_get_num_threads();
    if (t < 1) t = 1;
    return t > POOL_MAX ? POOL_MAX : t;
}

static int pool_threads(void)
{
    static int off = -1;
    if (off < 0) {
        const char *e = getenv("SWEEP_POOL");
        off = e && !strcmp(e, "0");
    }
    return off ? 1 : layers_threads();
}

/* Runs FN over [0, n) cut into CHUNKS chunks on THREADS threads (the caller
 * and THREADS - 1 helpers). */
static void pool_run(int threads, size_t n, size_t chunks, par_fn fn, void *ctx)
{
    if (threads <= 1 || chunks <= 1) {
        if (n) fn(ctx, 0, n);
        return;
    }
    pthread_mutex_lock(&pool.mu);
    while (pool.started < threads - 1) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&th, &at, pool_main, NULL);
        pthread_attr_destroy(&at);
        if (rc) break;
        pool.started++;
    }
    /* helpers from an earlier job may still be on their way out */
    while (pool.busy > 0)
        pthread_cond_wait(&pool.done, &pool.mu);
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    pool.chunks = chunks;
    atomic_store(&pool.next, 0);
    atomic_store(&pool.finished, 0);
    __atomic_store_n(&pool.gen, pool.gen + 1, __ATOMIC_RELEASE);
    if (pool.started) pthread_cond_broadcast(&pool.go);
    pthread_mutex_unlock(&pool.mu);
    pool_work(fn, ctx, n, chunks);
    /* wait for chunks that helpers took and are still running */
    for (int i = 0, spin = pool_spin(); i < spin && atomic_load(&pool.finished) < chunks; i++)
        _mm_pause();
    while (atomic_load(&pool.finished) < chunks) {
        pthread_mutex_lock(&pool.mu);
        if (atomic_load(&pool.finished) < chunks && pool.busy > 0)
            pthread_cond_wait(&pool.done, &pool.mu);
        pthread_mutex_unlock(&pool.mu);
    }
}

void layers_parallel_for(size_t n, size_t grain, par_fn fn, void *ctx)
{
    int threads = pool_threads();
    if (grain < 1) grain = 1;
    size_t chunks = (size_t)threads * POOL_CHUNKS_PER_THREAD;
    if (chunks > n / grain) chunks = n / grain;
    pool_run(threads, n, chunks, fn, ctx);
}

/* ---------- matrix products ---------- */

/* Products below this many multiply-adds run on the calling thread. */
#define GEMM_SPLIT_MIN_MACS (1u << 21)
/* Split blocks are multiples of this many columns/rows. */
#define GEMM_SPLIT_ALIGN 16

typedef struct {
    int ta, tb;         // op(A), op(B): non-zero = transposed
    int m, n, k;        // C is (m, n), op(A) (m, k), op(B) (k, n)
    float alpha, beta;  // scalars
    const float *a, *b; // operands, row-major
    int lda, ldb, ldc;  // leading dimensions
    float *c;           // result
    int by_cols;        // 1: blocks of columns of C, 0: blocks of rows
} gemm_ctx;

/* Multiplies the blocks [u0, u1) (units of GEMM_SPLIT_ALIGN columns or rows). */
static void gemm_part(void *arg, size_t u0, size_t u1)
{
    const gemm_ctx *g = arg;
    const int dim = g->by_cols ? g->n : g->m;
    int i0 = (int)(u0 * GEMM_SPLIT_ALIGN), i1 = (int)(u1 * GEMM_SPLIT_ALIGN);
    if (i1 > dim) i1 = dim;
    if (i0 >= i1) return;
    const CBLAS_TRANSPOSE ta = g->ta ? CblasTrans : CblasNoTrans;
    const CBLAS_TRANSPOSE tb = g->tb ? CblasTrans : CblasNoTrans;
    if (g->by_cols) {
        const float *b = g->tb ? g->b + (size_t)i0 * g->ldb : g->b + i0;
        cblas_sgemm(CblasRowMajor, ta, tb, g->m, i1 - i0, g->k, g->alpha, g->a, g->lda, b, g->ldb,
                    g->beta, g->c + i0, g->ldc);
    } else {
        const float *a = g->ta ? g->a + i0 : g->a + (size_t)i0 * g->lda;
        cblas_sgemm(CblasRowMajor, ta, tb, i1 - i0, g->n, g->k, g->alpha, a, g->lda, g->b, g->ldb,
                    g->beta, g->c + (size_t)i0 * g->ldc, g->ldc);
    }
}

void layers_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                  int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    gemm_ctx g = {trans_a, trans_b, m, n, k, alpha, beta, a, b, lda, ldb, ldc, c, n >= m};
    int threads = gemm_split_mode() && g_threads ? g_threads : 1;
    size_t units = ((size_t)(g.by_cols ? n : m) + GEMM_SPLIT_ALIGN - 1) / GEMM_SPLIT_ALIGN;
    if (threads <= 1 || units < 2 || (double)m * n * k < GEMM_SPLIT_MIN_MACS) {
        gemm_part(&g, 0, units ? units : 1);
        return;
    }
    size_t chunks = (size_t)threads < units ? (size_t)threads : units;
    pool_run(threads, units, chunks, gemm_part, &g);
}

/* Runs FN over [0, n) items that each hold one or more matrix products: on
 * the pool when products are split (each item then runs single-threaded), on
 * the calling thread otherwise (OpenBLAS threads each product). */
void layers_gemm_batch(size_t n, par_fn fn, void *ctx)
{
    size_t threads = gemm_split_mode() && g_threads ? (size_t)g_threads : 1;
    /* two chunks per thread when there are enough items, so a thread the
     * scheduler holds back costs half a share, not a whole one */
    size_t chunks = n >= 4 * threads ? 2 * threads : threads < n ? threads : n;
    pool_run((int)threads, n, chunks, fn, ctx);
}
