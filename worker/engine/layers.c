/* layers — optimised forward/backward kernels (contracts in include/layers.h).
 *
 * Design notes.
 * - Activations are channel-major (C, N, H, W), so a convolution over the
 *   whole batch is W (OC, K) x col (K, N*OH*OW) and the GEMM result is the
 *   output tensor itself. 1x1 stride-1 convolutions use the input as the
 *   column matrix directly (no copy); strided 1x1 ones gather the subsampled
 *   input once.
 * - Other convolutions run im2col in TILES of output lines (a line = one
 *   output row of one image, OW columns): the column tile (K x T) stays in the
 *   caches between im2col and the GEMM instead of streaming a whole-batch
 *   column matrix through memory. The backward pass reuses the same tiling:
 *   per tile, im2col -> dW += dY_tile col^T, then col = W^T dY_tile -> col2im.
 *   The dX product is thus split into column tiles, which also runs faster
 *   than one huge Kx(OC)x(N*OH*OW) product (measured on the early layers: 88-133
 *   GFLOPS for the whole product against 160-270 for forward products).
 * - "Same" stride-1 convolutions (3x3 pad 1, 5x5 pad 2, ...) im2col each
 *   column row as one flat shifted copy of the channel plane and then zero
 *   the entries that wrapped around an edge; stride-2 rows gather with
 *   AVX-512 permutes.
 * - 3x3 stride-1 pad-1 convolutions on maps of 4x4 and up go through Winograd
 *   F(2x2, 3x3) (worker/engine/winograd.c) for the forward pass and dX, and for dW on
 *   wide maps or many channels (measured per shape, see use_winograd*).
 * - 1x7 and 7x1 stride-1 "same" convolutions (Inception v3) go through the
 *   1-D F(2, 7) (worker/engine/winograd7.c) in evaluation
 *   (conv2d_forward_eval); training keeps im2col (see use_winograd7).
 * - Convolutions on tiny maps (layer4 at input 64: 3x3 on 2x2, and its
 *   stride-2 3x3 from 4x4) run per kernel tap: every (output pixel, input
 *   pixel) pair links one tap, and each pass is one product per tap over the
 *   pairs of that tap (conv_tiny_ok, dense_taps, dense_wgrad), so nothing is
 *   multiplied with padding and the weights are read as a tap-major copy.
 *   SWEEP_DENSE_TAPS=0 runs forward and dX as one product with the dense
 *   (P*OC, Q*C) matrix of all pairs instead (conv_dense_ok shapes only).
 * - Kernel taps that only ever read padding (3x3 on a 1x1 map) are dropped
 *   before im2col (conv_reduce).
 * - Batchnorm is fused with the following ReLU in both directions; its
 *   statistics run in AVX-512 float lanes flushed to double every chunk.
 * - Elementwise passes (batchnorm, ReLU, residual adds, pooling) are split
 *   over channels or index ranges on the engine's thread pool
 *   (layers_parallel_for, worker/engine/pool.c); results do not depend on
 *   the split.
 * - The same pool runs the matrix products: OpenBLAS is single-threaded and
 *   layers_sgemm cuts each large product into column or row blocks
 *   (include/pool.h, layers_set_threads).
 * - Elementwise loops are compiled for AVX-512 / AVX2 / generic through
 *   target_clones and picked at load time. */
#pragma GCC optimize("O3")
#include "layers.h"

#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "log.h"
#include "pool.h"
#include "winograd.h"
#include "winograd7.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__)
#define HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define HOT
#endif

#define LANES 16

/* ---------- layout conversion ---------- */

void nchw_to_cnhw(float *dst, const float *src, int n, int c, int hw)
{
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++)
            memcpy(dst + ((size_t)ch * n + b) * hw, src + ((size_t)b * c + ch) * hw,
                   sizeof(float) * hw);
}

void cnhw_to_nchw(float *dst, const float *src, int n, int c, int hw)
{
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++)
            memcpy(dst + ((size_t)b * c + ch) * hw, src + ((size_t)ch * n + b) * hw,
                   sizeof(float) * hw);
}

/* ---------- conv2d ---------- */

int conv2d_desc_init(conv2d_desc *d, int n, int c, int h, int w, int oc, int kh, int kw, int stride,
                     int pad)
{
    return conv2d_desc_init_pad(d, n, c, h, w, oc, kh, kw, stride, pad, pad);
}

int conv2d_desc_init_pad(conv2d_desc *d, int n, int c, int h, int w, int oc, int kh, int kw,
                         int stride, int pad, int padw)
{
    memset(d, 0, sizeof *d);
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0 || oc <= 0 || kh <= 0 || kw <= 0 || stride <= 0 ||
        pad < 0 || padw < 0)
        return ERR_INVALID;
    if (h + 2 * pad < kh || w + 2 * padw < kw) return ERR_INVALID;
    d->n = n;
    d->c = c;
    d->h = h;
    d->w = w;
    d->oc = oc;
    d->kh = kh;
    d->kw = kw;
    d->stride = stride;
    d->pad = pad;
    d->padw = padw;
    d->oh = (h + 2 * pad - kh) / stride + 1;
    d->ow = (w + 2 * padw - kw) / stride + 1;
    return 0;
}

static int conv_is_1x1(const conv2d_desc *d)
{
    return d->kh == 1 && d->kw == 1 && d->pad == 0 && d->padw == 0;
}

/* Target column-tile size in floats of the K x T tile (about 1.5 MiB: it
 * should stay in L2/L3 between im2col and the GEMM while keeping the GEMM's
 * N dimension large enough to run near peak). */
#define TILE_FLOATS (384 * 1024)
#define TILE_MIN_COLS 512

/* Output lines per tile for D. With BALANCED the tiles are evened out so
 * the last one is not a sliver; without, the result is an upper bound of the
 * balanced value for every batch size up to d->n, which is what work space
 * sizes use (a model prepared for batch B also runs smaller batches). */
static int conv_tile_lines_b(const conv2d_desc *d, int balanced)
{
    size_t k = (size_t)d->c * d->kh * d->kw;
    size_t cols = TILE_FLOATS / k;
    if (cols < TILE_MIN_COLS) cols = TILE_MIN_COLS;
    size_t lines = cols / (size_t)d->ow;
    if (lines < 1) lines = 1;
    size_t total = (size_t)d->n * d->oh;
    if (lines > total) lines = total;
    if (balanced) {
        size_t ntiles = (total + lines - 1) / lines;
        lines = (total + ntiles - 1) / ntiles;
    }
    return (int)lines;
}

static int conv_tile_lines(const conv2d_desc *d)
{
    return conv_tile_lines_b(d, 1);
}

/* Kernel taps that read only padding for every output (a 3x3 convolution on
 * a 1x1 map uses only its centre; 2x2 -> 1x1 with stride 2 only 2x2 taps) are
 * dropped: R becomes the same convolution with the smaller kernel and the
 * left padding reduced by the first valid tap (output size unchanged), and the
 * weights are gathered into a compact copy. This matters at small inputs
 * (input 32: layer4 runs on 1x1 maps). Returns 1 when R differs from D. */
static int conv_reduce(const conv2d_desc *d, conv2d_desc *r, int *k0)
{
    int y0 = d->pad - (d->oh - 1) * d->stride, y1 = d->pad + d->h;
    int x0 = d->padw - (d->ow - 1) * d->stride, x1 = d->padw + d->w;
    if (y0 < 0) y0 = 0;
    if (x0 < 0) x0 = 0;
    if (y1 > d->kh) y1 = d->kh;
    if (x1 > d->kw) x1 = d->kw;
    if (y0 == 0 && x0 == 0 && y1 == d->kh && x1 == d->kw) return 0;
    if (y0 != x0 || y1 <= y0 || x1 <= x0) return 0; // one padding for both dimensions
    *r = *d;
    r->kh = y1 - y0;
    r->kw = x1 - x0;
    r->pad = d->pad - y0;
    r->padw = d->padw - x0;
    *k0 = y0;
    return 1;
}

static size_t align16(size_t n)
{
    return (n + 15) / 16 * 16;
}

static size_t conv_ws_plain(const conv2d_desc *d);

/* Whether D's forward pass and input gradient run through Winograd
 * (SWEEP_WINOGRAD=0 in the environment turns it off, for comparisons). The
 * transforms work on 16 tiles of a tile row at once, so very narrow maps waste
 * most of each vector: measured on resnet18 shapes (one thread, CPU time),
 * Winograd wins from 4x4 maps up (forward 1.4-1.7x at 8..56) and loses at 2x2. */
static int use_winograd_enabled(void)
{
    static int enabled = -1;
    if (enabled < 0) {
        const char *e = getenv("SWEEP_WINOGRAD");
        enabled = !(e && !strcmp(e, "0"));
    }
    return enabled;
}

static int use_winograd(const conv2d_desc *d)
{
    return use_winograd_enabled() && d->padw == d->pad && winograd_applicable(d) && d->h >= 4 &&
           d->w >= 4;
}

/* Whether D's evaluation forward pass runs through F(2, 7) (winograd7.h:
 * Inception's 1x7 and 7x1 convolutions; SWEEP_WINOGRAD=0 turns it off too).
 * Maps narrower than the window along the kernel's axis are reduced to a
 * smaller kernel instead (conv_reduce). Training stays on im2col: its
 * error, about 10x that of direct summation, flips ReLU gates and max-pool
 * choices of near-tied values, and Inception's parity fixture at width 2
 * then moved the stem's weight gradient by 10% under OpenBLAS's AVX-512
 * kernels (measured; evaluation logits stayed within 2e-7). */
static int use_winograd7(const conv2d_desc *d)
{
    return use_winograd_enabled() && winograd7_applicable(d);
}

/* Whether the weight gradient of a Winograd convolution also goes through
 * Winograd: its extra transform of dY pays off on wide maps (28..56: 1.4x)
 * or many channels (7x7 with 512: 1.2x), not on 8x8 maps with 64 channels
 * (im2col was 1.5x faster there). */
static int use_winograd_wgrad(const conv2d_desc *d)
{
    return d->w >= 15 || (size_t)d->c * d->oc >= 65536;
}

/* The input-gradient convolution of D: dY (OC, N, H, W) -> dX (C, N, H, W). */
static void transposed_desc(const conv2d_desc *d, conv2d_desc *t)
{
    *t = *d;
    t->c = d->oc;
    t->oc = d->c;
}

/* Tiny maps (fewer input pixels than kernel taps, e.g. a 3x3 convolution on
 * 2x2 maps, layer3 of a ResNet at input 32) run as one dense product per
 * pass: every output pixel p takes every input pixel q through tap
 * (q - p*stride + pad), so out (P*OC, N) = Wbig (P*OC, Q*C) x X (Q*C, N) with
 * P = OH*OW, Q = H*W and zero blocks for taps outside the kernel. That costs
 * Q/(KH*KW) of im2col's multiply-adds (4/9 here) at full GEMM width. By
 * default the passes run per kernel tap instead (dense_taps, dense_wgrad),
 * with the same multiply-adds. */
static int conv_dense_ok(const conv2d_desc *d)
{
    static int off = -1;
    if (off < 0) {
        const char *e = getenv("SWEEP_DENSE");
        off = e && !strcmp(e, "0");
    }
    if (off) return 0;
    size_t q = (size_t)d->h * d->w, p = (size_t)d->oh * d->ow;
    return q < (size_t)d->kh * d->kw && p * q <= 64;
}

/* Work space of the dense path: the dense matrix (P*OC, Q*C) (unless
 * prepared), the per-tap weight gradients (at most P*Q taps of (OC, C)), the
 * rows X (Q*C, N) and Y (P*OC, N), and the weight gradient's gathered
 * operands (P*Q blocks of (OC, N) and of (C, N)). */
static size_t dense_ws(const conv2d_desc *d)
{
    size_t q = (size_t)d->h * d->w, p = (size_t)d->oh * d->ow;
    size_t mc = (size_t)(d->oc > d->c ? d->oc : d->c);
    return 2 * align16(p * d->oc * q * d->c) + align16(q * d->c * d->n) +
           align16(p * d->oc * d->n) + align16(p * q * d->oc * d->n) +
           align16(p * q * d->c * d->n) + align16(p * q * mc * d->n);
}

/* Tap index ky*KW + kx linking output pixel P to input pixel Q, or -1. */
static int dense_tap(const conv2d_desc *d, int p, int q)
{
    int oy = p / d->ow, ox = p % d->ow, y = q / d->w, x = q % d->w;
    int ky = y - oy * d->stride + d->pad, kx = x - ox * d->stride + d->padw;
    if (ky < 0 || ky >= d->kh || kx < 0 || kx >= d->kw) return -1;
    return ky * d->kw + kx;
}

static int have_avx512(void);

/* dst[i] = s[i*kk], i < n: a pure copy. */
static void strided_gather_plain(float *dst, const float *s, int n, int kk)
{
    for (int i = 0; i < n; i++)
        dst[i] = s[(size_t)i * kk];
}

/* The same with AVX-512 gathers, 16 at a time (kk < 2^27: 32-bit indices). */
__attribute__((target("avx512f"))) static void strided_gather_avx512(float *dst, const float *s,
                                                                     int n, int kk)
{
    const __m512i idx =
        _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                           _mm512_set1_epi32(kk));
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_i32gather_ps(idx, s + (size_t)i * kk, 4));
    strided_gather_plain(dst + i, s + (size_t)i * kk, n - i, kk);
}

/* dst[i] = s[i*kk], i < n: one column of a kernel tap out of (.., C, KK)
 * weights, the gathers when the CPU has them. */
static void strided_gather(float *dst, const float *s, int n, int kk)
{
    if (have_avx512() && (size_t)16 * kk < ((size_t)1 << 31))
        strided_gather_avx512(dst, s, n, kk);
    else
        strided_gather_plain(dst, s, n, kk);
}

void conv2d_tap_major_rows(float *dst, const float *w, int oc, int c, int kk, const int *tap,
                           int ntaps, int o0, int o1)
{
    for (int o = o0; o < o1; o++)
        for (int t = 0; t < ntaps; t++)
            strided_gather(dst + ((size_t)t * oc + o) * c, w + (size_t)o * c * kk + tap[t], c, kk);
}

/* The dense passes below run over output channels O (or input channels C)
 * in parallel; for one O every tap of W[O] (C*KH*KW floats) stays in L1
 * while the P*Q blocks are written, so W is read from memory once. */
typedef struct {
    float *wb;            // (P*OC, Q*C) dense matrix
    float *w;             // (OC, C, KH, KW) weights
    const conv2d_desc *d; // the convolution
    const float *src;     // transposes: source
    float *dst;           // transposes: destination
    int accumulate;       // transposes: add into dst
} dense_ctx;

static void dense_build_part(void *arg, size_t o0, size_t o1)
{
    const dense_ctx *k = arg;
    const conv2d_desc *d = k->d;
    const int P = d->oh * d->ow, Q = d->h * d->w, OC = d->oc, C = d->c, KK = d->kh * d->kw;
    const size_t ld = (size_t)Q * C;
    for (size_t o = o0; o < o1; o++)
        for (int p = 0; p < P; p++)
            for (int q = 0; q < Q; q++) {
                int tap = dense_tap(d, p, q);
                float *dst = k->wb + ((size_t)p * OC + o) * ld + (size_t)q * C;
                if (tap < 0) {
                    memset(dst, 0, sizeof(float) * C);
                    continue;
                }
                strided_gather(dst, k->w + o * C * KK + tap, C, KK);
            }
}

/* (C, N, Q) channel-major activations -> (Q*C, N) rows of the dense product,
 * over channels [c0, c1); k->d->c, n, h*w give the shape. */
static void dense_to_rows_part(void *arg, size_t c0, size_t c1)
{
    const dense_ctx *k = arg;
    const int N = k->d->n, Q = k->d->h * k->d->w, C = k->d->c;
    for (size_t c = c0; c < c1; c++)
        for (int n = 0; n < N; n++)
            for (int q = 0; q < Q; q++)
                k->dst[((size_t)q * C + c) * N + n] = k->src[(c * N + n) * Q + q];
}

/* The inverse: (Q*C, N) rows -> (C, N, Q), added when k->accumulate. */
static void dense_from_rows_part(void *arg, size_t c0, size_t c1)
{
    const dense_ctx *k = arg;
    const int N = k->d->n, Q = k->d->h * k->d->w, C = k->d->c;
    for (size_t c = c0; c < c1; c++)
        for (int n = 0; n < N; n++)
            for (int q = 0; q < Q; q++) {
                float v = k->src[((size_t)q * C + c) * N + n];
                float *t = &k->dst[(c * N + n) * Q + q];
                *t = k->accumulate ? *t + v : v;
            }
}

/* Shape descriptor for the (C, N, H*W) <-> (H*W*C, N) transposes of a map
 * with C channels and HW pixels. */
static conv2d_desc dense_map_desc(int c, int n, int h, int w)
{
    conv2d_desc m = {0};
    m.c = c;
    m.n = n;
    m.h = h;
    m.w = w;
    return m;
}

/* The dense matrix of W in BUF (P*OC, Q*C), built here unless PREP (the same
 * matrix from conv2d_prepare) is given; returns the one to use. */
static const float *dense_weights(float *buf, const float *prep, const float *w,
                                  const conv2d_desc *d)
{
    if (prep) return prep;
    dense_ctx k = {buf, (float *)w, d, NULL, NULL, 0};
    layers_parallel_for((size_t)d->oc, 8, dense_build_part, &k);
    return buf;
}

/* The weight gradient of the dense path, grouped by kernel tap. Every block
 * (p, q) of the dense matrix holds one tap t, so dW[t] (OC, C) is the sum over
 * the blocks of t of dY_p (OC, N) x X_q^T (N, C): one product per tap whose
 * inner dimension concatenates those blocks' batches (K = pairs * N; on 2x2
 * maps 4 pairs for the centre tap, 2 for edges, 1 for corners). Against one
 * (P*OC, Q*C) x N product this writes KK/(P*Q) of the output (9/16 on 2x2
 * maps) and runs products with a longer inner dimension; the operands are
 * gathered per tap first (GA, GB: P*Q blocks of (OC, N) and (C, N)). */
typedef struct {
    const conv2d_desc *d; // the convolution
    const float *dout;    // dY (OC, N, P)
    const float *in;      // X (C, N, Q)
    float *ga;            // gathered dY: tap g's blocks from start[g], (OC, k_g*N) each
    float *gb;            // gathered X: likewise (C, k_g*N)
    float *dwt;           // per-tap gradients (ntaps, OC, C)
    float *dw;            // (OC, C, KH, KW) gradient, accumulated into
    const float *wt;      // forward / dX: tap-major weights (ntaps, OC, C)
    float *z;             // forward / dX: per-pair products, laid out like ga (or gb for dX)
    float *dst;           // forward: Y (OC, N, P); dX: (C, N, Q)
    int accumulate;       // dX: add into dst
    int dw_set;           // dW: the reduce overwrites dw instead of adding into it
    int dx;               // the products and scatter are dX's (else the forward's)
    int ntaps;            // taps linked to at least one block
    int tap[64];          // (ntaps) kernel tap ky*KW + kx of each group
    int start[65];        // (ntaps + 1) first pair of each group
    int pp[64], pq[64];   // (pairs) output and input pixel of each pair, grouped by tap
} dense_wg_ctx;

static void dense_wg_plan(dense_wg_ctx *g, const conv2d_desc *d)
{
    const int P = d->oh * d->ow, Q = d->h * d->w, KK = d->kh * d->kw;
    SWEEP_ASSERT(P * Q <= 64);
    int n = 0;
    g->ntaps = 0;
    for (int t = 0; t < KK; t++) {
        int s = n;
        for (int p = 0; p < P; p++)
            for (int q = 0; q < Q; q++)
                if (dense_tap(d, p, q) == t) {
                    g->pp[n] = p;
                    g->pq[n] = q;
                    n++;
                }
        if (n > s) {
            g->tap[g->ntaps] = t;
            g->start[g->ntaps++] = s;
        }
    }
    g->start[g->ntaps] = n;
}

/* ga rows [o0, o1) and gb rows [o0, o1) (channels of dY and of X share the
 * index range up to their own counts). */
static void dense_wg_gather_part(void *arg, size_t r0, size_t r1)
{
    const dense_wg_ctx *g = arg;
    const conv2d_desc *d = g->d;
    const int P = d->oh * d->ow, Q = d->h * d->w, N = d->n;
    const int OC = d->oc, C = d->c;
    for (size_t r = r0; r < r1; r++)
        for (int t = 0; t < g->ntaps; t++) {
            const int s = g->start[t], k = g->start[t + 1] - s;
            for (int j = 0; j < k; j++) {
                if (g->ga && r < (size_t)OC) {
                    float *dst = g->ga + (size_t)s * OC * N + (r * k + j) * N;
                    const float *src = g->dout + r * N * P + g->pp[s + j];
                    for (int b = 0; b < N; b++)
                        dst[b] = src[(size_t)b * P];
                }
                if (g->gb && r < (size_t)C) {
                    float *dst = g->gb + (size_t)s * C * N + (r * k + j) * N;
                    const float *src = g->in + r * N * Q + g->pq[s + j];
                    for (int b = 0; b < N; b++)
                        dst[b] = src[(size_t)b * Q];
                }
            }
        }
}

/* Items [x0, x1) of one per pair: tap g's k_g items split its output
 * channels into k_g row blocks, so every item costs OC/k_g * C * k_g*N
 * multiply-adds and the threads get even shares. */
/* Item X of the per-pair items: its tap group *T, the group's first pair *S
 * and pair count *K, and its block [*M0, *M1) of the M rows; false when the
 * block is empty. */
static bool dense_item(const dense_wg_ctx *g, size_t x, int M, int *t, int *s, int *k, int *m0,
                       int *m1)
{
    int i = 0;
    while (g->start[i + 1] <= (int)x)
        i++;
    *t = i;
    *s = g->start[i];
    *k = g->start[i + 1] - *s;
    const int j = (int)x - *s;
    *m0 = M * j / *k;
    *m1 = M * (j + 1) / *k;
    return *m1 > *m0;
}

static void dense_wg_products(void *arg, size_t x0, size_t x1)
{
    const dense_wg_ctx *g = arg;
    const int OC = g->d->oc, C = g->d->c, N = g->d->n;
    for (size_t x = x0; x < x1; x++) {
        int t, s, k, m0, m1;
        if (!dense_item(g, x, OC, &t, &s, &k, &m0, &m1)) continue;
        const int K = k * N;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m1 - m0, C, K, 1.0f,
                    g->ga + (size_t)s * OC * N + (size_t)m0 * K, K, g->gb + (size_t)s * C * N, K,
                    0.0f, g->dwt + ((size_t)t * OC + m0) * C, C);
    }
}

/* dW[o] (C, KK) = or += the per-tap gradients SRC (tap slot t at t*TS + c),
 * every kernel tap k in a slot SLOT[k] (ntaps == KK): 16 channels at a time,
 * dW read and written in order, the taps' rows gathered. */
__attribute__((target("avx512f"))) static void
reduce_row_avx512(float *dst, const float *src, const int *slot, int C, int KK, size_t ts, int set)
{
    __m512i idx[64];
    for (int v = 0; v < KK; v++) {
        int e[16];
        for (int j = 0; j < 16; j++) {
            int at = v * 16 + j; // element of the block of 16 channels
            e[j] = slot[at % KK] * (int)ts + at / KK;
        }
        idx[v] = _mm512_loadu_si512(e);
    }
    int c = 0;
    for (; c + 16 <= C; c += 16) {
        float *d = dst + (size_t)c * KK;
        const float *s = src + c;
        for (int v = 0; v < KK; v++) {
            __m512 x = _mm512_i32gather_ps(idx[v], s, 4);
            if (!set) x = _mm512_add_ps(_mm512_loadu_ps(d + 16 * v), x);
            _mm512_storeu_ps(d + 16 * v, x);
        }
    }
    for (; c < C; c++)
        for (int k = 0; k < KK; k++) {
            float x = src[(size_t)slot[k] * ts + c];
            dst[(size_t)c * KK + k] = set ? x : dst[(size_t)c * KK + k] + x;
        }
}

/* dW[o] += the per-tap gradients, over output channels [o0, o1). */
static void dense_wg_reduce_part(void *arg, size_t o0, size_t o1)
{
    const dense_wg_ctx *g = arg;
    const int OC = g->d->oc, C = g->d->c, KK = g->d->kh * g->d->kw;
    const int T = g->ntaps;
    if (T == KK && KK <= 64 && (size_t)KK * OC * C < ((size_t)1 << 31) && have_avx512()) {
        int slot[64];
        for (int t = 0; t < T; t++)
            slot[g->tap[t]] = t;
        for (size_t o = o0; o < o1; o++)
            reduce_row_avx512(g->dw + o * C * KK, g->dwt + o * C, slot, C, KK, (size_t)OC * C,
                              g->dw_set);
        return;
    }
    for (size_t o = o0; o < o1; o++) {
        /* channel-major, so dW[o] is read and written once, in order */
        float *dst = g->dw + o * C * KK;
        const float *src = g->dwt + o * C;
        if (g->dw_set) {
            /* overwrite: dW[o] is only written (taps linked to no pair are 0) */
            if (T < KK) memset(dst, 0, sizeof(float) * C * KK);
            for (int c = 0; c < C; c++)
                for (int t = 0; t < T; t++)
                    dst[(size_t)c * KK + g->tap[t]] = src[(size_t)t * OC * C + c];
            continue;
        }
        for (int c = 0; c < C; c++)
            for (int t = 0; t < T; t++)
                dst[(size_t)c * KK + g->tap[t]] += src[(size_t)t * OC * C + c];
    }
}

static void dense_wgrad(float *dw, const float *dout, const float *in, const conv2d_desc *d,
                        float *dwt, float *ga, float *gb, int gathered, int dw_set)
{
    dense_wg_ctx g = {
        .d = d, .dout = dout, .in = in, .ga = ga, .gb = gb, .dwt = dwt, .dw = dw, .dw_set = dw_set};
    dense_wg_plan(&g, d);
    if (!gathered) {
        size_t rows = (size_t)(d->oc > d->c ? d->oc : d->c);
        layers_parallel_for(rows, 8, dense_wg_gather_part, &g);
    }
    layers_gemm_batch((size_t)g.start[g.ntaps], dense_wg_products, &g);
    layers_parallel_for((size_t)d->oc, 8, dense_wg_reduce_part, &g);
}

/* Whether the dense path's forward pass and dX also run per kernel tap
 * (SWEEP_DENSE_TAPS=0 in the environment: one product with the dense matrix
 * instead, for comparisons). Per tap, Z_t = W_t (OC, C) x [X_q of t's pairs]
 * (C, k_t*N) and each Y_p is the sum of its pairs' blocks of Z (dX the same
 * with W_t^T and dY): the same multiply-adds as the dense product, but the
 * weights are read as the tap-major copy (ntaps, OC, C), 9/16 of the dense
 * matrix on 2x2 maps, which is also what conv2d_prepare builds. */
static int dense_taps(void)
{
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("SWEEP_DENSE_TAPS");
        on = !(e && !strcmp(e, "0"));
    }
    return on;
}

/* Whether D runs on the tiny-map path: the dense shapes, and with the
 * per-tap products also other small maps (at most 64 pixel pairs) that are
 * not 1x1, such as a 3x3 stride-2 convolution from 4x4 to 2x2 (layer4.0 at
 * input 64), where only 25 of im2col's 36 tap-pixel products read the input. */
static int conv_tiny_ok(const conv2d_desc *d)
{
    if (conv_dense_ok(d)) return 1;
    const char *e = getenv("SWEEP_DENSE");
    if (e && !strcmp(e, "0")) return 0;
    return dense_taps() && !conv_is_1x1(d) && (size_t)d->oh * d->ow * d->h * d->w <= 64;
}

/* Tap-major copy of W over output channels [o0, o1): wt[t][o] = W[o][.][tap t]. */
static void dense_wt_build_part(void *arg, size_t o0, size_t o1)
{
    const dense_wg_ctx *g = arg;
    /* the weights are in the `in` slot for this pass */
    conv2d_tap_major_rows((float *)g->wt, g->in, g->d->oc, g->d->c, g->d->kh * g->d->kw, g->tap,
                          g->ntaps, (int)o0, (int)o1);
}

/* Items [x0, x1) of one per pair, rows of Z split per tap as in
 * dense_wg_products: forward (dX when g->dout is set). */
static void dense_tap_products(void *arg, size_t x0, size_t x1)
{
    const dense_wg_ctx *g = arg;
    const int OC = g->d->oc, C = g->d->c, N = g->d->n, dx = g->dx;
    const int M = dx ? C : OC;
    for (size_t x = x0; x < x1; x++) {
        int t, s, k, m0, m1;
        if (!dense_item(g, x, M, &t, &s, &k, &m0, &m1)) continue;
        const int W = k * N;
        const float *wt = g->wt + (size_t)t * OC * C;
        float *z = g->z + (size_t)s * M * N + (size_t)m0 * W;
        if (dx)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m1 - m0, W, OC, 1.0f, wt + m0, C,
                        g->ga + (size_t)s * OC * N, W, 0.0f, z, W);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m1 - m0, W, C, 1.0f,
                        wt + (size_t)m0 * C, C, g->gb + (size_t)s * C * N, W, 0.0f, z, W);
    }
}

/* Y (or dX) rows [r0, r1): every pixel gets the sum of its pairs' blocks of
 * Z, in pair order. */
static void dense_tap_scatter_part(void *arg, size_t r0, size_t r1)
{
    const dense_wg_ctx *g = arg;
    const conv2d_desc *d = g->d;
    const int dx = g->dx, N = d->n;
    const int M = dx ? d->c : d->oc, S = dx ? d->h * d->w : d->oh * d->ow;
    const int *pix = dx ? g->pq : g->pp;
    for (size_t r = r0; r < r1; r++) {
        float *row = g->dst + r * N * S;
        if (!g->accumulate) memset(row, 0, sizeof(float) * N * S);
        for (int t = 0; t < g->ntaps; t++) {
            const int s = g->start[t], k = g->start[t + 1] - s;
            for (int j = 0; j < k; j++) {
                const float *src = g->z + (size_t)s * M * N + (r * k + j) * N;
                float *o = row + pix[s + j];
                for (int b = 0; b < N; b++)
                    o[(size_t)b * S] += src[b];
            }
        }
    }
}

/* The tap-major weights of D in BUF (built from W) unless PREP is given. */
static const float *dense_tap_weights(dense_wg_ctx *g, float *buf, const float *prep,
                                      const float *w)
{
    if (prep) return prep;
    dense_wg_ctx b = *g;
    b.in = w;
    b.wt = buf;
    layers_parallel_for((size_t)g->d->oc, 8, dense_wt_build_part, &b);
    return buf;
}

static void conv_fwd_dense(float *out, const float *in, const float *w, const float *prep,
                           const conv2d_desc *d, float *ws)
{
    const int P = d->oh * d->ow, Q = d->h * d->w, OC = d->oc, C = d->c, N = d->n;
    float *xr = ws + 2 * align16((size_t)P * OC * Q * C);
    float *yr = xr + align16((size_t)Q * C * N);
    if (dense_taps()) {
        float *ga = yr + align16((size_t)P * OC * N), *gb = ga + align16((size_t)P * Q * OC * N);
        dense_wg_ctx g = {
            .d = d, .in = in, .gb = gb, .z = gb + align16((size_t)P * Q * C * N), .dst = out};
        dense_wg_plan(&g, d);
        g.wt = dense_tap_weights(&g, ws, prep, w);
        layers_parallel_for((size_t)C, 8, dense_wg_gather_part, &g);
        layers_gemm_batch((size_t)g.start[g.ntaps], dense_tap_products, &g);
        layers_parallel_for((size_t)OC, 8, dense_tap_scatter_part, &g);
        return;
    }
    const float *wb = dense_weights(ws, prep, w, d);
    conv2d_desc mi = dense_map_desc(C, N, d->h, d->w), mo = dense_map_desc(OC, N, d->oh, d->ow);
    dense_ctx ti = {NULL, NULL, &mi, in, xr, 0};
    layers_parallel_for((size_t)C, 8, dense_to_rows_part, &ti);
    layers_sgemm(0, 0, P * OC, N, Q * C, 1.0f, wb, Q * C, xr, N, 0.0f, yr, N);
    dense_ctx to = {NULL, NULL, &mo, yr, out, 0};
    layers_parallel_for((size_t)OC, 8, dense_from_rows_part, &to);
}

static void conv_bwd_dense(float *din, float *dw, const float *dout, const float *in,
                           const float *w, const float *prep, const conv2d_desc *d, float *ws,
                           int din_accumulate, int dw_set)
{
    const int P = d->oh * d->ow, Q = d->h * d->w, OC = d->oc, C = d->c, N = d->n;
    const size_t nwb = align16((size_t)P * OC * Q * C);
    float *dwb = ws + nwb, *xr = ws + 2 * nwb;
    float *yr = xr + align16((size_t)Q * C * N);
    float *ga = yr + align16((size_t)P * OC * N), *gb = ga + align16((size_t)P * Q * OC * N);
    float *z = gb + align16((size_t)P * Q * C * N);
    conv2d_desc mi = dense_map_desc(C, N, d->h, d->w), mo = dense_map_desc(OC, N, d->oh, d->ow);
    int gathered = 0;
    if (din && dense_taps()) {
        /* dY gathered per tap once, for dX and then dW */
        dense_wg_ctx g = {.d = d,
                          .dout = dout,
                          .in = in,
                          .ga = ga,
                          .gb = dw ? gb : NULL,
                          .z = z,
                          .dst = din,
                          .accumulate = din_accumulate,
                          .dx = 1};
        dense_wg_plan(&g, d);
        g.wt = dense_tap_weights(&g, ws, prep, w);
        size_t rows = (size_t)(dw && C > OC ? C : OC);
        layers_parallel_for(rows, 8, dense_wg_gather_part, &g);
        layers_gemm_batch((size_t)g.start[g.ntaps], dense_tap_products, &g);
        layers_parallel_for((size_t)C, 8, dense_tap_scatter_part, &g);
        gathered = 1;
        din = NULL;
    }
    if (dw) dense_wgrad(dw, dout, in, d, dwb, ga, gb, gathered, dw_set);
    if (din) {
        dense_ctx ty = {NULL, NULL, &mo, dout, yr, 0};
        layers_parallel_for((size_t)OC, 8, dense_to_rows_part, &ty);
        const float *wb = dense_weights(ws, prep, w, d);
        layers_sgemm(1, 0, Q * C, N, P * OC, 1.0f, wb, Q * C, yr, N, 0.0f, xr, N);
        dense_ctx tb = {NULL, NULL, &mi, xr, din, din_accumulate};
        layers_parallel_for((size_t)C, 8, dense_from_rows_part, &tb);
    }
}

size_t conv2d_workspace_floats(const conv2d_desc *d)
{
    conv2d_desc r;
    int k0;
    if (conv_tiny_ok(d) && !conv_reduce(d, &r, &k0)) return dense_ws(d);
    if (conv_reduce(d, &r, &k0))
        return 2 * align16((size_t)d->oc * d->c * r.kh * r.kw) + conv_ws_plain(&r);
    size_t ws = conv_ws_plain(d);
    if (use_winograd(d)) {
        conv2d_desc t;
        transposed_desc(d, &t);
        size_t a = winograd_workspace_floats(d), b = winograd_workspace_floats(&t);
        if (a > ws) ws = a;
        if (b > ws) ws = b;
    }
    if (use_winograd7(d)) {
        size_t a = winograd7_workspace_floats(d);
        if (a > ws) ws = a;
    }
    return ws;
}

static size_t conv_ws_plain(const conv2d_desc *d)
{
    if (conv_is_1x1(d)) {
        if (d->stride == 1) return 0;
        /* subsampled input (C, N*OH*OW); backward: col of dX the same size */
        return (size_t)d->c * d->n * d->oh * d->ow;
    }
    size_t k = (size_t)d->c * d->kh * d->kw;
    return k * (size_t)conv_tile_lines_b(d, 0) * d->ow;
}

/* Output columns ox in [*x0, *x1) of kernel column KX read inside the input
 * row; the others read padding. */
static void valid_cols(const conv2d_desc *d, int kx, int *x0, int *x1)
{
    const int S = d->stride, P = d->padw, OW = d->ow, W = d->w;
    int a = 0, b = OW;
    while (a < OW && a * S - P + kx < 0)
        a++;
    while (b > a && (b - 1) * S - P + kx >= W)
        b--;
    *x0 = a;
    *x1 = b;
}

/* dst[i] = src[2*i], i < n: AVX-512 permutes when available. */
__attribute__((target("avx512f"))) static void gather2_avx512(float *dst, const float *src, int n)
{
    const __m512i idx =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 a = _mm512_loadu_ps(src + 2 * i);
        /* the last element needed is src[2*i + 30]: load 15, never past it */
        __m512 b = _mm512_maskz_loadu_ps(0x7fff, src + 2 * i + 16);
        _mm512_storeu_ps(dst + i, _mm512_permutex2var_ps(a, idx, b));
    }
    for (; i < n; i++)
        dst[i] = src[2 * i];
}

static int have_avx512(void)
{
    static int v = -1;
    if (v < 0) v = __builtin_cpu_supports("avx512f") ? 1 : 0;
    return v;
}

/* Stride-1 convolution whose output has the input's size ("same" padding):
 * a column row (c, ky, kx) of image n is the input plane shifted by
 * (ky-P)*W + (kx-P) floats, so whole runs of rows copy at once; columns that
 * wrapped around a row edge are zeroed after. */
static int conv_is_same_s1(const conv2d_desc *d)
{
    return d->stride == 1 && d->oh == d->h && d->ow == d->w;
}

/* Zeroes, in the column row DST of lines [l0, l1), the entries of kernel
 * offset (ky, kx) that read padding: whole lines whose input row is outside
 * the image and columns outside [x0, x1). */
static void zero_invalid(float *dst, const conv2d_desc *d, int l0, int l1, int ky, int x0, int x1)
{
    const int H = d->h, W = d->w, P = d->pad;
    int oy = l0 % d->oh;
    for (int l = l0; l < l1; l++, dst += W) {
        int y = oy + ky - P;
        if (y < 0 || y >= H) {
            for (int ox = 0; ox < W; ox++)
                dst[ox] = 0;
        } else {
            for (int ox = 0; ox < x0; ox++)
                dst[ox] = 0;
            for (int ox = x1; ox < W; ox++)
                dst[ox] = 0;
        }
        if (++oy == d->oh) oy = 0;
    }
}

/* Row (c, ky, kx) of the column matrix COL (K, T). */
static inline float *col_row(float *col, const conv2d_desc *d, size_t c, int ky, int kx, size_t t)
{
    return col + ((c * d->kh + ky) * d->kw + kx) * t;
}

/* For a "same" stride-1 convolution: entry i of the column row of kernel
 * offset (ky, kx) over the T entries of lines [l0, ...) is entry s0 + i of the
 * channel plane (N*H*W floats), which exists for i in [*a, *b) (*b >= *a);
 * returns s0. */
static inline ptrdiff_t same_window(const conv2d_desc *d, int l0, int ky, int kx, ptrdiff_t t,
                                    ptrdiff_t *a, ptrdiff_t *b)
{
    const ptrdiff_t W = d->w, P = d->pad, PW = d->padw, plane = (ptrdiff_t)d->n * d->h * d->w;
    ptrdiff_t s0 = (ptrdiff_t)l0 * W + (ky - P) * W + (kx - PW);
    *a = s0 < 0 ? -s0 : 0;
    *b = s0 + t > plane ? plane - s0 : t;
    if (*b < *a) *b = *a;
    return s0;
}

/* For the "same" case the whole tile of a column row is one flat shifted
 * copy of the channel plane (images are contiguous in (C, N, H, W)); entries
 * that wrapped across a row or image edge are zeroed after. */
HOT static void im2col_same(float *col, const float *in, const conv2d_desc *d, int l0, int l1,
                            size_t r0, size_t r1)
{
    const ptrdiff_t T = (ptrdiff_t)(l1 - l0) * d->w;
    const ptrdiff_t plane = (ptrdiff_t)d->n * d->h * d->w;
    for (size_t r = r0; r < r1; r++) {
        const int c = (int)(r / d->kh), ky = (int)(r % d->kh);
        for (int kx = 0; kx < d->kw; kx++) {
            int x0, x1;
            valid_cols(d, kx, &x0, &x1);
            float *dst = col_row(col, d, c, ky, kx, (size_t)T);
            const float *src = in + c * plane;
            ptrdiff_t a, b, s0 = same_window(d, l0, ky, kx, T, &a, &b);
            for (ptrdiff_t i = 0; i < a; i++)
                dst[i] = 0;
            memcpy(dst + a, src + s0 + a, sizeof(float) * (size_t)(b - a));
            for (ptrdiff_t i = b; i < T; i++)
                dst[i] = 0;
            zero_invalid(dst, d, l0, l1, ky, x0, x1);
        }
    }
}

/* din += col2im of col for the "same" stride-1 case; zeroes the padding
 * entries of COL first (it is work space) so one flat add per row suffices. */
HOT static void col2im_same(float *din, float *col, const conv2d_desc *d, int l0, int l1, size_t c0,
                            size_t c1)
{
    const ptrdiff_t T = (ptrdiff_t)(l1 - l0) * d->w;
    const ptrdiff_t plane = (ptrdiff_t)d->n * d->h * d->w;
    for (size_t c = c0; c < c1; c++)
        for (int ky = 0; ky < d->kh; ky++)
            for (int kx = 0; kx < d->kw; kx++) {
                int x0, x1;
                valid_cols(d, kx, &x0, &x1);
                float *src = col_row(col, d, c, ky, kx, (size_t)T);
                float *dst = din + c * plane;
                zero_invalid(src, d, l0, l1, ky, x0, x1);
                ptrdiff_t a, b, s0 = same_window(d, l0, ky, kx, T, &a, &b);
                for (ptrdiff_t i = a; i < b; i++)
                    dst[s0 + i] += src[i];
            }
}

/* One column row ROW, kernel offset (ky, kx), over output lines [l0, l1)
 * (line = n*OH + oy) of any convolution, against one channel: im2col when IN
 * (the channel's (N, H, W) input plane) is given, ROW[line][ox] = the input
 * it reads or 0 for padding (FAST2: stride-2 gathers with AVX-512); col2im
 * otherwise, DIN (the channel's input-gradient plane) += ROW at the same
 * places. */
static inline void strided_row(float *row, const float *in, float *din, const conv2d_desc *d,
                               int l0, int l1, int ky, int kx, int fast2)
{
    const int H = d->h, W = d->w, OW = d->ow, OH = d->oh, S = d->stride, P = d->pad, PW = d->padw;
    int x0, x1;
    valid_cols(d, kx, &x0, &x1);
    int n = l0 / OH, oy = l0 % OH;
    for (int l = l0; l < l1; l++, row += OW) {
        int y = oy * S - P + ky;
        if (y < 0 || y >= H) {
            if (in)
                for (int ox = 0; ox < OW; ox++)
                    row[ox] = 0;
        } else if (in) {
            const float *src = in - PW + kx + ((size_t)n * H + y) * W;
            for (int ox = 0; ox < x0; ox++)
                row[ox] = 0;
            if (S == 1)
                for (int ox = x0; ox < x1; ox++)
                    row[ox] = src[ox];
            else if (fast2)
                gather2_avx512(row + x0, src + 2 * x0, x1 - x0);
            else
                for (int ox = x0; ox < x1; ox++)
                    row[ox] = src[ox * S];
            for (int ox = x1; ox < OW; ox++)
                row[ox] = 0;
        } else {
            float *dst = din - PW + kx + ((size_t)n * H + y) * W;
            if (S == 1)
                for (int ox = x0; ox < x1; ox++)
                    dst[ox] += row[ox];
            else
                for (int ox = x0; ox < x1; ox++)
                    dst[ox * S] += row[ox];
        }
        if (++oy == OH) {
            oy = 0;
            n++;
        }
    }
}

/* col (K, T) <- im2col of output lines [l0, l1), column rows [r0, r1) of
 * (channel, kernel row) pairs; T = (l1-l0)*OW. */
HOT static void im2col_rows(float *col, const float *in, const conv2d_desc *d, int l0, int l1,
                            size_t r0, size_t r1)
{
    if (conv_is_same_s1(d)) {
        im2col_same(col, in, d, l0, l1, r0, r1);
        return;
    }
    const size_t T = (size_t)(l1 - l0) * d->ow, plane = (size_t)d->n * d->h * d->w;
    const int fast2 = d->stride == 2 && have_avx512();
    for (size_t r = r0; r < r1; r++) {
        const int c = (int)(r / d->kh), ky = (int)(r % d->kh);
        for (int kx = 0; kx < d->kw; kx++)
            strided_row(col_row(col, d, (size_t)c, ky, kx, T), in + c * plane, NULL, d, l0, l1, ky,
                        kx, fast2);
    }
}

/* din += col2im of col (K, T) for output lines [l0, l1), channels [c0, c1). */
HOT static void col2im_chans(float *din, float *col, const conv2d_desc *d, int l0, int l1,
                             size_t c0, size_t c1)
{
    if (conv_is_same_s1(d)) {
        col2im_same(din, col, d, l0, l1, c0, c1);
        return;
    }
    const size_t T = (size_t)(l1 - l0) * d->ow, plane = (size_t)d->n * d->h * d->w;
    for (size_t c = c0; c < c1; c++)
        for (int ky = 0; ky < d->kh; ky++)
            for (int kx = 0; kx < d->kw; kx++)
                strided_row(col_row(col, d, c, ky, kx, T), NULL, din + c * plane, d, l0, l1, ky, kx,
                            0);
}

/* im2col / col2im of one tile split over the helper threads: im2col by
 * (channel, kernel row) pairs, which write disjoint column rows; col2im by
 * channels, which add into disjoint input planes. */
typedef struct {
    float *col;
    float *din;
    const float *in;
    const conv2d_desc *d;
    int l0, l1;
} i2c_ctx;

static void im2col_part(void *arg, size_t r0, size_t r1)
{
    const i2c_ctx *k = arg;
    im2col_rows(k->col, k->in, k->d, k->l0, k->l1, r0, r1);
}

static void col2im_part(void *arg, size_t c0, size_t c1)
{
    const i2c_ctx *k = arg;
    col2im_chans(k->din, k->col, k->d, k->l0, k->l1, c0, c1);
}

static void im2col_tile(float *col, const float *in, const conv2d_desc *d, int l0, int l1)
{
    i2c_ctx k = {col, NULL, in, d, l0, l1};
    size_t row_floats = (size_t)d->kw * (size_t)(l1 - l0) * d->ow;
    layers_parallel_for((size_t)d->c * d->kh, 1 + 32768 / row_floats, im2col_part, &k);
}

static void col2im_tile(float *din, float *col, const conv2d_desc *d, int l0, int l1)
{
    i2c_ctx k = {col, din, NULL, d, l0, l1};
    size_t chan_floats = (size_t)d->kh * d->kw * (size_t)(l1 - l0) * d->ow;
    layers_parallel_for((size_t)d->c, 1 + 32768 / chan_floats, col2im_part, &k);
}

/* dst (C, N, OH, OW) <- in (C, N, H, W) sampled at (oy*S, ox*S) (1x1, no pad). */
static void subsample(float *dst, const float *in, const conv2d_desc *d)
{
    const int S = d->stride;
    for (size_t p = 0; p < (size_t)d->c * d->n; p++)
        for (int oy = 0; oy < d->oh; oy++) {
            const float *src = in + (p * d->h + (size_t)oy * S) * d->w;
            float *o = dst + (p * d->oh + oy) * d->ow;
            for (int ox = 0; ox < d->ow; ox++)
                o[ox] = src[ox * S];
        }
}

/* din (C, N, H, W) (+)= scatter of src (C, N, OH, OW) to (oy*S, ox*S). */
static void upsample_add(float *din, const float *src, const conv2d_desc *d, int accumulate)
{
    const int S = d->stride;
    if (!accumulate) memset(din, 0, sizeof(float) * (size_t)d->c * d->n * d->h * d->w);
    for (size_t p = 0; p < (size_t)d->c * d->n; p++)
        for (int oy = 0; oy < d->oh; oy++) {
            float *o = din + (p * d->h + (size_t)oy * S) * d->w;
            const float *s = src + (p * d->oh + oy) * d->ow;
            for (int ox = 0; ox < d->ow; ox++)
                o[ox * S] += s[ox];
        }
}

static void conv_fwd_plain(float *out, const float *in, const float *w, const conv2d_desc *d,
                           float *ws)
{
    const int M = d->oc;
    const int K = d->c * d->kh * d->kw;
    const int NC = d->n * d->oh * d->ow; // columns of the output matrix
    if (conv_is_1x1(d)) {
        const float *b = in;
        if (d->stride != 1) {
            subsample(ws, in, d);
            b = ws;
        }
        layers_sgemm(0, 0, M, NC, K, 1.0f, w, K, b, NC, 0.0f, out, NC);
        return;
    }
    const int lines = d->n * d->oh, per = conv_tile_lines(d);
    for (int l0 = 0; l0 < lines; l0 += per) {
        int l1 = l0 + per < lines ? l0 + per : lines;
        int T = (l1 - l0) * d->ow;
        im2col_tile(ws, in, d, l0, l1);
        layers_sgemm(0, 0, M, T, K, 1.0f, w, K, ws, T, 0.0f, out + (size_t)l0 * d->ow, NC);
    }
}

static void conv_bwd_plain(float *din, float *dw, const float *dout, const float *in,
                           const float *w, const conv2d_desc *d, float *ws, int din_accumulate)
{
    const int M = d->oc;
    const int K = d->c * d->kh * d->kw;
    const int NC = d->n * d->oh * d->ow;
    if (conv_is_1x1(d)) {
        if (d->stride == 1) {
            if (dw) layers_sgemm(0, 1, M, K, NC, 1.0f, dout, NC, in, NC, 1.0f, dw, K);
            if (din)
                layers_sgemm(1, 0, K, NC, M, 1.0f, w, K, dout, NC, din_accumulate ? 1.0f : 0.0f,
                             din, NC);
            return;
        }
        if (dw) {
            subsample(ws, in, d);
            layers_sgemm(0, 1, M, K, NC, 1.0f, dout, NC, ws, NC, 1.0f, dw, K);
        }
        if (din) {
            layers_sgemm(1, 0, K, NC, M, 1.0f, w, K, dout, NC, 0.0f, ws, NC);
            upsample_add(din, ws, d, din_accumulate);
        }
        return;
    }
    if (din && !din_accumulate) memset(din, 0, sizeof(float) * (size_t)d->c * d->n * d->h * d->w);
    const int lines = d->n * d->oh, per = conv_tile_lines(d);
    for (int l0 = 0; l0 < lines; l0 += per) {
        int l1 = l0 + per < lines ? l0 + per : lines;
        int T = (l1 - l0) * d->ow;
        const float *dy = dout + (size_t)l0 * d->ow;
        if (dw) {
            im2col_tile(ws, in, d, l0, l1);
            layers_sgemm(0, 1, M, K, T, 1.0f, dy, NC, ws, T, 1.0f, dw, K);
        }
        if (din) {
            layers_sgemm(1, 0, K, T, M, 1.0f, w, K, dy, NC, 0.0f, ws, T);
            col2im_tile(din, ws, d, l0, l1);
        }
    }
}

/* Compact copy of the taps [k0, k0+r->kh) x [k0, k0+r->kw) of W (OC, C, KH, KW). */
static void gather_taps(float *dst, const float *w, const conv2d_desc *d, const conv2d_desc *r,
                        int k0)
{
    for (size_t oc = 0; oc < (size_t)d->oc * d->c; oc++)
        for (int ky = 0; ky < r->kh; ky++)
            for (int kx = 0; kx < r->kw; kx++)
                dst[(oc * r->kh + ky) * r->kw + kx] = w[(oc * d->kh + ky + k0) * d->kw + kx + k0];
}

size_t conv2d_prep_floats(const conv2d_desc *d)
{
    conv2d_desc r;
    int k0;
    if (!conv_tiny_ok(d) || conv_reduce(d, &r, &k0)) return 0;
    if (dense_taps()) {
        dense_wg_ctx g = {.d = d};
        dense_wg_plan(&g, d);
        return (size_t)g.ntaps * d->oc * d->c;
    }
    return (size_t)d->oh * d->ow * d->oc * d->h * d->w * d->c;
}

void conv2d_prepare(float *prep, const float *w, const conv2d_desc *d)
{
    SWEEP_ASSERT(conv2d_prep_floats(d) > 0);
    if (dense_taps()) {
        dense_wg_ctx g = {.d = d};
        dense_wg_plan(&g, d);
        dense_tap_weights(&g, prep, NULL, w);
        return;
    }
    dense_ctx k = {prep, (float *)w, d, NULL, NULL, 0};
    layers_parallel_for((size_t)d->oc, 8, dense_build_part, &k);
}

int conv2d_prep_taps(const conv2d_desc *d, int *tap)
{
    if (!conv2d_prep_floats(d) || !dense_taps()) return 0;
    dense_wg_ctx g = {.d = d};
    dense_wg_plan(&g, d);
    memcpy(tap, g.tap, sizeof(int) * (size_t)g.ntaps);
    return g.ntaps;
}

void conv2d_forward(float *out, const float *in, const float *w, const conv2d_desc *d, float *ws)
{
    conv2d_forward_prep(out, in, w, NULL, d, ws);
}

/* The forward pass of D; EVAL allows the evaluation-only kernels
 * (conv2d_forward_eval). */
static void conv_forward_impl(float *out, const float *in, const float *w, const float *prep,
                              const conv2d_desc *d, float *ws, int eval)
{
    conv2d_desc r;
    int k0;
    if (conv_tiny_ok(d) && !conv_reduce(d, &r, &k0)) {
        conv_fwd_dense(out, in, w, prep, d, ws);
        return;
    }
    if (conv_reduce(d, &r, &k0)) {
        size_t nw = align16((size_t)d->oc * d->c * r.kh * r.kw);
        gather_taps(ws, w, d, &r, k0);
        conv_fwd_plain(out, in, ws, &r, ws + 2 * nw);
        return;
    }
    if (use_winograd(d)) {
        winograd_conv(out, in, w, d, ws, 0, 0);
        return;
    }
    if (eval && use_winograd7(d)) {
        winograd7_conv(out, in, w, d, ws, 0, 0);
        return;
    }
    conv_fwd_plain(out, in, w, d, ws);
}

void conv2d_forward_prep(float *out, const float *in, const float *w, const float *prep,
                         const conv2d_desc *d, float *ws)
{
    conv_forward_impl(out, in, w, prep, d, ws, 0);
}

void conv2d_forward_eval(float *out, const float *in, const float *w, const conv2d_desc *d,
                         float *ws)
{
    conv_forward_impl(out, in, w, NULL, d, ws, 1);
}

void conv2d_backward(float *din, float *dw, const float *dout, const float *in, const float *w,
                     const conv2d_desc *d, float *ws, int din_accumulate)
{
    conv2d_backward_prep(din, dw, dout, in, w, NULL, d, ws, din_accumulate);
}

void conv2d_backward_prep(float *din, float *dw, const float *dout, const float *in, const float *w,
                          const float *prep, const conv2d_desc *d, float *ws, int din_accumulate)
{
    conv2d_desc r;
    int k0;
    if (conv_tiny_ok(d) && !conv_reduce(d, &r, &k0)) {
        conv_bwd_dense(din, dw, dout, in, w, prep, d, ws, din_accumulate, 0);
        return;
    }
    if (conv_reduce(d, &r, &k0)) {
        size_t nw = align16((size_t)d->oc * d->c * r.kh * r.kw);
        float *wc = ws, *dwc = ws + nw;
        gather_taps(wc, w, d, &r, k0);
        if (dw) memset(dwc, 0, sizeof(float) * nw);
        conv_bwd_plain(din, dw ? dwc : NULL, dout, in, wc, &r, ws + 2 * nw, din_accumulate);
        if (dw)
            for (size_t oc = 0; oc < (size_t)d->oc * d->c; oc++)
                for (int ky = 0; ky < r.kh; ky++)
                    for (int kx = 0; kx < r.kw; kx++)
                        dw[(oc * d->kh + ky + k0) * d->kw + kx + k0] +=
                            dwc[(oc * r.kh + ky) * r.kw + kx];
        return;
    }
    if (use_winograd(d)) {
        if (dw) {
            if (use_winograd_wgrad(d))
                winograd_wgrad(dw, dout, in, d, ws);
            else
                conv_bwd_plain(NULL, dw, dout, in, w, d, ws, 0);
        }
        if (din) {
            conv2d_desc t;
            transposed_desc(d, &t);
            winograd_conv(din, dout, w, &t, ws, 1, din_accumulate);
        }
        return;
    }
    conv_bwd_plain(din, dw, dout, in, w, d, ws, din_accumulate);
}

void conv2d_backward_prep_set(float *din, float *dw, const float *dout, const float *in,
                              const float *w, const float *prep, const conv2d_desc *d, float *ws,
                              int din_accumulate)
{
    conv2d_desc r;
    int k0;
    if (dw && conv_tiny_ok(d) && !conv_reduce(d, &r, &k0)) {
        /* the per-tap reduce writes dW instead of adding into it */
        conv_bwd_dense(din, dw, dout, in, w, prep, d, ws, din_accumulate, 1);
        return;
    }
    if (dw) memset(dw, 0, sizeof(float) * (size_t)d->oc * d->c * d->kh * d->kw);
    conv2d_backward_prep(din, dw, dout, in, w, prep, d, ws, din_accumulate);
}

/* ---------- batchnorm ---------- */

/* Sum and sum of squares of (x - shift) over x[0..m): float lanes flushed to
 * double every chunk. */
__attribute__((target("avx512f"))) static void sum_sq_avx512(const float *x, size_t m, float shift,
                                                             double *sum, double *sq)
{
    double s = 0, q = 0;
    const __m512 sh = _mm512_set1_ps(shift);
    size_t i = 0;
    while (i < m) {
        size_t end = i + 4096 < m ? i + 4096 : m;
        __m512 as = _mm512_setzero_ps(), aq = _mm512_setzero_ps();
        for (; i + 16 <= end; i += 16) {
            __m512 v = _mm512_sub_ps(_mm512_loadu_ps(x + i), sh);
            as = _mm512_add_ps(as, v);
            aq = _mm512_fmadd_ps(v, v, aq);
        }
        if (i < end) {
            __mmask16 k = (__mmask16)((1u << (end - i)) - 1);
            __m512 v = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x + i), sh);
            as = _mm512_add_ps(as, v);
            aq = _mm512_fmadd_ps(v, v, aq);
            i = end;
        }
        s += _mm512_reduce_add_ps(as);
        q += _mm512_reduce_add_ps(aq);
    }
    *sum = s;
    *sq = q;
}

static void sum_sq(const float *x, size_t m, float shift, double *sum, double *sq)
{
    if (have_avx512()) {
        sum_sq_avx512(x, m, shift, sum, sq);
        return;
    }
    double s = 0, q = 0;
    for (size_t i = 0; i < m; i++) {
        double v = (double)x[i] - shift;
        s += v;
        q += v * v;
    }
    *sum = s;
    *sq = q;
}

HOT static void scale_shift(float *out, const float *in, size_t m, float a, float b, int relu)
{
    if (relu) {
        for (size_t i = 0; i < m; i++) {
            float v = in[i] * a + b;
            out[i] = v > 0 ? v : 0;
        }
    } else {
        for (size_t i = 0; i < m; i++)
            out[i] = in[i] * a + b;
    }
}

typedef struct {
    float *out;
    const float *in, *gamma, *beta;
    float *rm, *rv, *smean, *sinvstd;
    size_t m;
    float momentum, eps;
    int relu;
} bn_fwd_ctx;

static void bn_fwd_train_part(void *arg, size_t c0, size_t c1)
{
    const bn_fwd_ctx *k = arg;
    const size_t m = k->m;
    for (size_t ch = c0; ch < c1; ch++) {
        const float *x = k->in + ch * m;
        /* shifted sums (shift = first element) keep the variance accurate */
        float shift = x[0];
        double s, q;
        sum_sq(x, m, shift, &s, &q);
        double dmean = s / (double)m;
        double var = q / (double)m - dmean * dmean;
        if (var < 0) var = 0;
        double mean = shift + dmean;
        float invstd = (float)(1.0 / sqrt(var + k->eps));
        k->smean[ch] = (float)mean;
        k->sinvstd[ch] = invstd;
        if (k->rm) {
            double unbiased = m > 1 ? var * (double)m / (double)(m - 1) : var;
            k->rm[ch] = (float)((1 - k->momentum) * k->rm[ch] + k->momentum * mean);
            k->rv[ch] = (float)((1 - k->momentum) * k->rv[ch] + k->momentum * unbiased);
        }
        float a = k->gamma[ch] * invstd;
        float b = k->beta[ch] - (float)mean * a;
        scale_shift(k->out + ch * m, x, m, a, b, k->relu);
    }
}

void batchnorm_forward_train(float *out, const float *in, const float *gamma, const float *beta,
                             float *running_mean, float *running_var, float *save_mean,
                             float *save_invstd, int n, int c, int hw, float momentum, float eps,
                             int relu)
{
    bn_fwd_ctx k = {out,       in,          gamma,          beta,     running_mean, running_var,
                    save_mean, save_invstd, (size_t)n * hw, momentum, eps,          relu};
    layers_parallel_for((size_t)c, 1 + 32768 / k.m, bn_fwd_train_part, &k);
}

static void bn_fwd_eval_part(void *arg, size_t c0, size_t c1)
{
    const bn_fwd_ctx *k = arg;
    for (size_t ch = c0; ch < c1; ch++) {
        float invstd = (float)(1.0 / sqrt((double)k->rv[ch] + k->eps));
        float a = k->gamma[ch] * invstd;
        float b = k->beta[ch] - k->rm[ch] * a;
        scale_shift(k->out + ch * k->m, k->in + ch * k->m, k->m, a, b, k->relu);
    }
}

void batchnorm_forward_eval(float *out, const float *in, const float *gamma, const float *beta,
                            const float *running_mean, const float *running_var, int n, int c,
                            int hw, float eps, int relu)
{
    bn_fwd_ctx k = {out,
                    in,
                    gamma,
                    beta,
                    (float *)running_mean,
                    (float *)running_var,
                    NULL,
                    NULL,
                    (size_t)n * hw,
                    0,
                    eps,
                    relu};
    layers_parallel_for((size_t)c, 1 + 32768 / k.m, bn_fwd_eval_part, &k);
}

/* Sums of dy' and dy'*(x - mean) where dy' = dy masked by y > 0 when Y is
 * not NULL (fused ReLU). */
__attribute__((target("avx512f"))) static void bn_bwd_sums_avx512(const float *dy, const float *x,
                                                                  const float *y, size_t m,
                                                                  float mean, double *sdy,
                                                                  double *sdyx)
{
    double s = 0, q = 0;
    const __m512 mu = _mm512_set1_ps(mean), zero = _mm512_setzero_ps();
    size_t i = 0;
    while (i < m) {
        size_t end = i + 4096 < m ? i + 4096 : m;
        __m512 as = zero, aq = zero;
        for (; i < end; i += 16) {
            __mmask16 k = end - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (end - i)) - 1);
            if (y)
                k = _mm512_mask_cmp_ps_mask(k, _mm512_maskz_loadu_ps(k, y + i), zero, _CMP_GT_OQ);
            __m512 g = _mm512_maskz_loadu_ps(k, dy + i);
            __m512 xc = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x + i), mu);
            as = _mm512_add_ps(as, g);
            aq = _mm512_fmadd_ps(g, xc, aq);
        }
        i = end;
        s += _mm512_reduce_add_ps(as);
        q += _mm512_reduce_add_ps(aq);
    }
    *sdy = s;
    *sdyx = q;
}

static void bn_bwd_sums(const float *dy, const float *x, const float *y, size_t m, float mean,
                        double *sdy, double *sdyx)
{
    if (have_avx512()) {
        bn_bwd_sums_avx512(dy, x, y, m, mean, sdy, sdyx);
        return;
    }
    double s = 0, q = 0;
    for (size_t i = 0; i < m; i++) {
        double g = (!y || y[i] > 0) ? dy[i] : 0;
        s += g;
        q += g * ((double)x[i] - mean);
    }
    *sdy = s;
    *sdyx = q;
}

/* din = a*dy' + b*(x - mean) + c0 (centred so large means do not cancel) */
HOT static void bn_bwd_apply(float *din, const float *dy, const float *x, const float *y, size_t m,
                             float a, float b, float mean, float c0)
{
    if (y) {
        for (size_t i = 0; i < m; i++) {
            float g = y[i] > 0 ? dy[i] : 0;
            din[i] = a * g + b * (x[i] - mean) + c0;
        }
    } else {
        for (size_t i = 0; i < m; i++)
            din[i] = a * dy[i] + b * (x[i] - mean) + c0;
    }
}

typedef struct {
    float *din, *dgamma, *dbeta;
    const float *dout, *in, *out, *gamma, *mean, *invstd, *rm, *rv;
    size_t m;
    float eps;
    int relu;
} bn_bwd_ctx;

static void bn_bwd_part(void *arg, size_t c0, size_t c1)
{
    const bn_bwd_ctx *k = arg;
    const size_t m = k->m;
    for (size_t ch = c0; ch < c1; ch++) {
        const size_t o = ch * m;
        const float *y = k->relu ? k->out + o : NULL;
        double sdy, sdyx;
        float mean = k->mean[ch], invstd = k->invstd[ch];
        bn_bwd_sums(k->dout + o, k->in + o, y, m, mean, &sdy, &sdyx);
        /* sum(dy' * xhat) = invstd * sdyx */
        double sdxh = sdyx * invstd;
        if (k->dgamma) k->dgamma[ch] += (float)sdxh;
        if (k->dbeta) k->dbeta[ch] += (float)sdy;
        if (!k->din) continue;
        /* din = gamma*invstd*(dy' - sdy/m - xhat*sdxh/m), xhat = (x-mean)*invstd */
        double gi = (double)k->gamma[ch] * invstd;
        double b = -gi * invstd * sdxh / (double)m;
        double c0v = -gi * sdy / (double)m;
        bn_bwd_apply(k->din + o, k->dout + o, k->in + o, y, m, (float)gi, (float)b, mean,
                     (float)c0v);
    }
}

void batchnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout, const float *in,
                        const float *out, const float *gamma, const float *save_mean,
                        const float *save_invstd, int n, int c, int hw, int relu)
{
    bn_bwd_ctx k = {din,         dgamma, dbeta, dout,           in, out, gamma, save_mean,
                    save_invstd, NULL,   NULL,  (size_t)n * hw, 0,  relu};
    layers_parallel_for((size_t)c, 1 + 32768 / k.m, bn_bwd_part, &k);
}

static void bn_bwd_eval_part(void *arg, size_t c0, size_t c1)
{
    const bn_bwd_ctx *k = arg;
    const size_t m = k->m;
    for (size_t ch = c0; ch < c1; ch++) {
        const size_t o = ch * m;
        const float *y = k->relu ? k->out + o : NULL;
        float invstd = (float)(1.0 / sqrt((double)k->rv[ch] + k->eps));
        if (k->dgamma || k->dbeta) {
            double sdy, sdyx;
            bn_bwd_sums(k->dout + o, k->in + o, y, m, k->rm[ch], &sdy, &sdyx);
            if (k->dgamma) k->dgamma[ch] += (float)(sdyx * invstd);
            if (k->dbeta) k->dbeta[ch] += (float)sdy;
        }
        if (k->din)
            bn_bwd_apply(k->din + o, k->dout + o, k->in + o, y, m, k->gamma[ch] * invstd, 0.0f,
                         0.0f, 0.0f);
    }
}

void batchnorm_backward_eval(float *din, float *dgamma, float *dbeta, const float *dout,
                             const float *in, const float *out, const float *gamma,
                             const float *running_mean, const float *running_var, int n, int c,
                             int hw, float eps, int relu)
{
    bn_bwd_ctx k = {din,  dgamma,       dbeta,       dout,           in,  out, gamma, NULL,
                    NULL, running_mean, running_var, (size_t)n * hw, eps, relu};
    layers_parallel_for((size_t)c, 1 + 32768 / k.m, bn_bwd_eval_part, &k);
}

/* ---------- bias ---------- */

typedef struct {
    float *out;
    const float *b;
    const float *dout;
    float *db;
    int n, hw, relu;
} bias_ctx;

HOT static void bias_fwd_part(void *arg, size_t c0, size_t c1)
{
    const bias_ctx *k = arg;
    const size_t m = (size_t)k->n * k->hw;
    for (size_t c = c0; c < c1; c++) {
        float *o = k->out + c * m, b = k->b[c];
        if (k->relu)
            for (size_t i = 0; i < m; i++) {
                float v = o[i] + b;
                o[i] = v > 0 ? v : 0;
            }
        else
            for (size_t i = 0; i < m; i++)
                o[i] += b;
    }
}

void bias_forward(float *out, const float *b, int n, int c, int hw, int relu)
{
    bias_ctx k = {out, b, NULL, NULL, n, hw, relu};
    layers_parallel_for((size_t)c, 1 + 65536 / ((size_t)n * hw), bias_fwd_part, &k);
}

static void bias_bwd_part(void *arg, size_t c0, size_t c1)
{
    const bias_ctx *k = arg;
    const size_t m = (size_t)k->n * k->hw;
    for (size_t c = c0; c < c1; c++) {
        double s, q;
        sum_sq(k->dout + c * m, m, 0.0f, &s, &q);
        k->db[c] += (float)s;
    }
}

void bias_backward(float *db, const float *dout, int n, int c, int hw)
{
    bias_ctx k = {NULL, NULL, dout, db, n, hw, 0};
    layers_parallel_for((size_t)c, 1 + 65536 / ((size_t)n * hw), bias_bwd_part, &k);
}

/* ---------- elementwise ---------- */

typedef struct {
    float *out;
    const float *a, *b, *c;
    int relu;
} ew_ctx;

HOT static void relu_fwd_part(void *arg, size_t i0, size_t i1)
{
    const ew_ctx *k = arg;
    for (size_t i = i0; i < i1; i++)
        k->out[i] = k->a[i] > 0 ? k->a[i] : 0;
}

void relu_forward(float *out, const float *in, size_t count)
{
    ew_ctx k = {out, in, NULL, NULL, 0};
    layers_parallel_for(count, 65536, relu_fwd_part, &k);
}

HOT static void relu_bwd_part(void *arg, size_t i0, size_t i1)
{
    const ew_ctx *k = arg; // a = dout, b = out
    for (size_t i = i0; i < i1; i++)
        k->out[i] = k->b[i] > 0 ? k->a[i] : 0;
}

void relu_backward(float *din, const float *dout, const float *out, size_t count)
{
    ew_ctx k = {din, dout, out, NULL, 0};
    layers_parallel_for(count, 65536, relu_bwd_part, &k);
}

HOT static void add_part(void *arg, size_t i0, size_t i1)
{
    const ew_ctx *k = arg;
    if (k->relu) {
        for (size_t i = i0; i < i1; i++) {
            float v = k->a[i] + k->b[i];
            k->out[i] = v > 0 ? v : 0;
        }
    } else {
        for (size_t i = i0; i < i1; i++)
            k->out[i] = k->a[i] + k->b[i];
    }
}

void add_forward(float *out, const float *a, const float *b, size_t count, int relu)
{
    ew_ctx k = {out, a, b, NULL, relu};
    layers_parallel_for(count, 65536, add_part, &k);
}

void dropout_forward(float *out, float *mask, const float *in, size_t count, float p, rng_t *rng)
{
    if (p <= 0) {
        for (size_t i = 0; i < count; i++) {
            mask[i] = 1.0f;
            out[i] = in[i];
        }
        return;
    }
    float keep = 1.0f / (1.0f - p);
    for (size_t i = 0; i < count; i++) {
        mask[i] = rng_uniform_f(rng) < p ? 0.0f : keep;
        out[i] = in[i] * mask[i];
    }
}

void dropout_backward(float *din, const float *dout, const float *mask, size_t count)
{
    for (size_t i = 0; i < count; i++)
        din[i] = dout[i] * mask[i];
}

/* ---------- pooling ---------- */

#define MAXPOOL_FAST_W 2048

typedef struct {
    float *out;
    int32_t *idx; // winners, or NULL when not needed
    const float *in;
    int h, w, k, stride, pad, oh, ow;
} mp_ctx;

static void maxpool_fwd_part(void *arg, size_t p0, size_t p1)
{
    const mp_ctx *c = arg;
    const int h = c->h, w = c->w, oh = c->oh, ow = c->ow;
    for (size_t p = p0; p < p1; p++) {
        const float *src = c->in + p * h * w;
        float *o = c->out + p * oh * ow;
        int32_t *ix = c->idx ? c->idx + p * oh * ow : NULL;
        for (int oy = 0; oy < oh; oy++) {
            int y0 = oy * c->stride - c->pad, y1 = y0 + c->k;
            if (y0 < 0) y0 = 0;
            if (y1 > h) y1 = h;
            for (int ox = 0; ox < ow; ox++) {
                int x0 = ox * c->stride - c->pad, x1 = x0 + c->k;
                if (x0 < 0) x0 = 0;
                if (x1 > w) x1 = w;
                float best = src[y0 * w + x0];
                int32_t bi = y0 * w + x0;
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) {
                        float v = src[y * w + x];
                        if (v > best) {
                            best = v;
                            bi = y * w + x;
                        }
                    }
                o[oy * ow + ox] = best;
                if (ix) ix[oy * ow + ox] = bi;
            }
        }
    }
}

/* Max-pool 3x3 / 2 / pad 1 or 0 without winners (evaluation and frozen
 * stems): vertical max of three rows, then the horizontal max of three
 * columns read with even/odd permutes from a row padded with -inf. */
__attribute__((target("avx512f"))) static void maxpool_fast_part(void *arg, size_t p0, size_t p1)
{
    const mp_ctx *c = arg;
    const int h = c->h, w = c->w, oh = c->oh, ow = c->ow;
    float row[2 * (MAXPOOL_FAST_W + 40)];
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (int i = 0; i < w + 40; i++)
        row[i] = -INFINITY;
    for (size_t p = p0; p < p1; p++) {
        const float *src = c->in + p * h * w;
        float *o = c->out + p * oh * ow;
        for (int oy = 0; oy < oh; oy++) {
            int y0 = 2 * oy - c->pad, y1 = y0 + 3;
            if (y0 < 0) y0 = 0;
            if (y1 > h) y1 = h;
            float *r = row + c->pad; // pad 1: row[0] stays -inf (left padding)
            memcpy(r, src + (size_t)y0 * w, sizeof(float) * w);
            for (int y = y0 + 1; y < y1; y++) {
                const float *s = src + (size_t)y * w;
                for (int x = 0; x < w; x++)
                    r[x] = s[x] > r[x] ? s[x] : r[x];
            }
            for (int ox0 = 0; ox0 < ow; ox0 += 16) {
                int cnt = ow - ox0 < 16 ? ow - ox0 : 16;
                const float *q = row + 2 * ox0;
                __m512 a = _mm512_loadu_ps(q), b = _mm512_loadu_ps(q + 16);
                __m512 a2 = _mm512_loadu_ps(q + 2), b2 = _mm512_loadu_ps(q + 18);
                __m512 m0 = _mm512_permutex2var_ps(a, ev, b);
                __m512 m1 = _mm512_permutex2var_ps(a, od, b);
                __m512 m2 = _mm512_permutex2var_ps(a2, ev, b2);
                __m512 mx = _mm512_max_ps(_mm512_max_ps(m0, m1), m2);
                _mm512_mask_storeu_ps(o + (size_t)oy * ow + ox0, (__mmask16)((1u << cnt) - 1), mx);
            }
            /* the copied row must not leak into the next one's right padding */
            for (int x = w; x < w + 2; x++)
                r[x] = -INFINITY;
        }
    }
}

void maxpool2d_forward(float *out, int32_t *idx, const float *in, int n, int c, int h, int w, int k,
                       int stride, int pad, int oh, int ow)
{
    mp_ctx x = {out, idx, in, h, w, k, stride, pad, oh, ow};
    size_t grain = 1 + 16384 / ((size_t)h * w);
    if (!idx && k == 3 && stride == 2 && (pad == 1 || pad == 0) && w <= MAXPOOL_FAST_W &&
        have_avx512()) {
        layers_parallel_for((size_t)c * n, grain, maxpool_fast_part, &x);
        return;
    }
    SWEEP_ASSERT(idx != NULL || k * k <= 64);
    layers_parallel_for((size_t)c * n, grain, maxpool_fwd_part, &x);
}

static void maxpool_bwd_part(void *arg, size_t p0, size_t p1)
{
    const mp_ctx *c = arg; // out = din, in = dout
    const size_t hw = (size_t)c->h * c->w, ohw = (size_t)c->oh * c->ow;
    for (size_t p = p0; p < p1; p++) {
        float *d = c->out + p * hw;
        const float *g = c->in + p * ohw;
        const int32_t *ix = c->idx + p * ohw;
        memset(d, 0, sizeof(float) * hw);
        for (size_t i = 0; i < ohw; i++)
            d[ix[i]] += g[i];
    }
}

void maxpool2d_backward(float *din, const float *dout, const int32_t *idx, int n, int c, int h,
                        int w, int oh, int ow)
{
    mp_ctx x = {din, (int32_t *)idx, dout, h, w, 0, 0, 0, oh, ow};
    layers_parallel_for((size_t)c * n, 1 + 16384 / ((size_t)h * w), maxpool_bwd_part, &x);
}

void avgpool_forward(float *out, const float *in, int n, int c, int hw)
{
    for (int ch = 0; ch < c; ch++)
        for (int b = 0; b < n; b++) {
            const float *x = in + ((size_t)ch * n + b) * hw;
            float s = 0;
            for (int i = 0; i < hw; i++)
                s += x[i];
            out[(size_t)b * c + ch] = s / (float)hw;
        }
}

void avgpool_backward(float *din, const float *dout, int n, int c, int hw)
{
    for (int ch = 0; ch < c; ch++)
        for (int b = 0; b < n; b++) {
            float g = dout[(size_t)b * c + ch] / (float)hw;
            float *x = din + ((size_t)ch * n + b) * hw;
            for (int i = 0; i < hw; i++)
                x[i] = g;
        }
}

int pool_out_size(int in, int k, int stride, int pad, int ceil_mode)
{
    int span = in + 2 * pad - k;
    if (span < 0 || stride < 1) return 0;
    int o = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    if (ceil_mode && (o - 1) * stride >= in + pad) o--;
    return o;
}

typedef struct {
    float *out;      // forward: output planes; backward: din planes
    const float *in; // forward: input planes; backward: dout planes
    int h, w, k, stride, pad, count_pad, oh, ow;
} ap_ctx;

/* Window [*a, *b) of output index O along a dimension of IN pixels, and its
 * divisor contribution (clipped to the padded input when count_pad). */
static int ap_window(int o, int in, int k, int stride, int pad, int count_pad, int *a, int *b)
{
    int s = o * stride - pad, e = s + k;
    int pe = e < in + pad ? e : in + pad; // end clipped to the padded input
    int cnt = pe - s;
    *a = s < 0 ? 0 : s;
    *b = e > in ? in : e;
    return count_pad ? cnt : *b - *a;
}

static void ap_fwd_part(void *arg, size_t p0, size_t p1)
{
    const ap_ctx *c = arg;
    for (size_t p = p0; p < p1; p++) {
        const float *src = c->in + p * c->h * c->w;
        float *o = c->out + p * c->oh * c->ow;
        for (int oy = 0; oy < c->oh; oy++) {
            int y0, y1, ny = ap_window(oy, c->h, c->k, c->stride, c->pad, c->count_pad, &y0, &y1);
            for (int ox = 0; ox < c->ow; ox++) {
                int x0, x1;
                int nx = ap_window(ox, c->w, c->k, c->stride, c->pad, c->count_pad, &x0, &x1);
                float s = 0;
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++)
                        s += src[y * c->w + x];
                o[oy * c->ow + ox] = s / (float)(ny * nx);
            }
        }
    }
}

static void ap_bwd_part(void *arg, size_t p0, size_t p1)
{
    const ap_ctx *c = arg;
    for (size_t p = p0; p < p1; p++) {
        float *d = c->out + p * c->h * c->w;
        const float *g = c->in + p * c->oh * c->ow;
        memset(d, 0, sizeof(float) * (size_t)c->h * c->w);
        for (int oy = 0; oy < c->oh; oy++) {
            int y0, y1, ny = ap_window(oy, c->h, c->k, c->stride, c->pad, c->count_pad, &y0, &y1);
            for (int ox = 0; ox < c->ow; ox++) {
                int x0, x1;
                int nx = ap_window(ox, c->w, c->k, c->stride, c->pad, c->count_pad, &x0, &x1);
                float v = g[oy * c->ow + ox] / (float)(ny * nx);
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++)
                        d[y * c->w + x] += v;
            }
        }
    }
}

void avgpool2d_forward(float *out, const float *in, int n, int c, int h, int w, int k, int stride,
                       int pad, int count_pad, int oh, int ow)
{
    ap_ctx x = {out, in, h, w, k, stride, pad, count_pad, oh, ow};
    layers_parallel_for((size_t)c * n, 1 + 16384 / ((size_t)h * w), ap_fwd_part, &x);
}

void avgpool2d_backward(float *din, const float *dout, int n, int c, int h, int w, int k,
                        int stride, int pad, int count_pad, int oh, int ow)
{
    ap_ctx x = {din, dout, h, w, k, stride, pad, count_pad, oh, ow};
    layers_parallel_for((size_t)c * n, 1 + 16384 / ((size_t)h * w), ap_bwd_part, &x);
}

/* Adaptive pooling's window of output O of OUT cells over IN pixels. */
static void adaptive_window(int o, int in, int out, int *a, int *b)
{
    *a = (int)((long)o * in / out);
    *b = (int)(((long)(o + 1) * in + out - 1) / out);
}

static void aap_part(void *arg, size_t p0, size_t p1, int backward)
{
    const ap_ctx *c = arg;
    for (size_t p = p0; p < p1; p++) {
        float *big = c->out + p * c->h * c->w; // backward: din
        const float *small = c->in + p * c->oh * c->ow;
        const float *src = c->in + p * c->h * c->w; // forward: input
        float *o = c->out + p * c->oh * c->ow;
        if (backward) memset(big, 0, sizeof(float) * (size_t)c->h * c->w);
        for (int oy = 0; oy < c->oh; oy++) {
            int y0, y1;
            adaptive_window(oy, c->h, c->oh, &y0, &y1);
            for (int ox = 0; ox < c->ow; ox++) {
                int x0, x1;
                adaptive_window(ox, c->w, c->ow, &x0, &x1);
                float cnt = (float)((y1 - y0) * (x1 - x0));
                if (backward) {
                    float v = small[oy * c->ow + ox] / cnt;
                    for (int y = y0; y < y1; y++)
                        for (int x = x0; x < x1; x++)
                            big[y * c->w + x] += v;
                } else {
                    float s = 0;
                    for (int y = y0; y < y1; y++)
                        for (int x = x0; x < x1; x++)
                            s += src[y * c->w + x];
                    o[oy * c->ow + ox] = s / cnt;
                }
            }
        }
    }
}

static void aap_fwd_part(void *arg, size_t p0, size_t p1)
{
    aap_part(arg, p0, p1, 0);
}

static void aap_bwd_part(void *arg, size_t p0, size_t p1)
{
    aap_part(arg, p0, p1, 1);
}

void adaptive_avgpool_forward(float *out, const float *in, int n, int c, int h, int w, int oh,
                              int ow)
{
    ap_ctx x = {out, in, h, w, 0, 0, 0, 0, oh, ow};
    if (oh == h && ow == w) { // VGG at 224: the pool to 7x7 is the identity
        memcpy(out, in, sizeof(float) * (size_t)c * n * h * w);
        return;
    }
    layers_parallel_for((size_t)c * n, 1 + 16384 / ((size_t)h * w), aap_fwd_part, &x);
}

void adaptive_avgpool_backward(float *din, const float *dout, int n, int c, int h, int w, int oh,
                               int ow)
{
    ap_ctx x = {din, dout, h, w, 0, 0, 0, 0, oh, ow};
    if (oh == h && ow == w) {
        memcpy(din, dout, sizeof(float) * (size_t)c * n * h * w);
        return;
    }
    layers_parallel_for((size_t)c * n, 1 + 16384 / ((size_t)h * w), aap_bwd_part, &x);
}

void concat_forward(float *out, const float *const *in, const int *c, int k, int n, int hw)
{
    size_t off = 0;
    for (int i = 0; i < k; i++) {
        size_t len = (size_t)c[i] * n * hw;
        memcpy(out + off, in[i], sizeof(float) * len);
        off += len;
    }
}

void concat_backward(float *const *din, const float *dout, const int *c, int k, int n, int hw)
{
    size_t off = 0;
    for (int i = 0; i < k; i++) {
        size_t len = (size_t)c[i] * n * hw;
        if (din[i]) memcpy(din[i], dout + off, sizeof(float) * len);
        off += len;
    }
}

/* ---------- linear ---------- */

void linear_forward(float *out, const float *in, const float *w, const float *b, int n, int in_f,
                    int out_f)
{
    if (b) {
        for (int i = 0; i < n; i++)
            memcpy(out + (size_t)i * out_f, b, sizeof(float) * out_f);
    }
    layers_sgemm(0, 1, n, out_f, in_f, 1.0f, in, in_f, w, in_f, b ? 1.0f : 0.0f, out, out_f);
}

void linear_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                     const float *w, int n, int in_f, int out_f)
{
    if (dw) layers_sgemm(1, 0, out_f, in_f, n, 1.0f, dout, out_f, in, in_f, 1.0f, dw, in_f);
    if (db)
        for (int i = 0; i < n; i++)
            for (int o = 0; o < out_f; o++)
                db[o] += dout[(size_t)i * out_f + o];
    if (din) layers_sgemm(0, 0, n, in_f, out_f, 1.0f, dout, out_f, w, in_f, 0.0f, din, in_f);
}

/* ---------- loss ---------- */

float softmax_xent_forward(float *probs, const float *logits, const int *labels, int n, int k,
                           float smoothing)
{
    double total = 0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * k;
        float *p = probs + (size_t)i * k;
        float mx = z[0];
        for (int j = 1; j < k; j++)
            mx = z[j] > mx ? z[j] : mx;
        double se = 0, sz = 0;
        for (int j = 0; j < k; j++) {
            p[j] = expf(z[j] - mx);
            se += p[j];
            sz += z[j];
        }
        double lse = mx + log(se);
        float inv = (float)(1.0 / se);
        for (int j = 0; j < k; j++)
            p[j] *= inv;
        /* -sum_j t_j (z_j - lse), t = (1-s) onehot + s/K */
        double l = (1.0 - smoothing) * (lse - z[labels[i]]) + smoothing * (lse - sz / k);
        total += l;
    }
    return (float)(total / n);
}

void softmax_xent_backward(float *dlogits, const float *probs, const int *labels, int n, int k,
                           float smoothing)
{
    float inv = 1.0f / (float)n, off = smoothing / (float)k;
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * k;
        float *d = dlogits + (size_t)i * k;
        for (int j = 0; j < k; j++) {
            float t = off + (j == labels[i] ? 1.0f - smoothing : 0.0f);
            d[j] = (p[j] - t) * inv;
        }
    }
}
