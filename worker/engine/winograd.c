/* winograd — 3x3 stride-1 pad-1 convolutions with Winograd's F(2x2, 3x3)
 * minimal filtering (Lavin & Gray 2016): each 2x2 output tile costs 16
 * multiplies per channel pair instead of 36, so the GEMM work drops 2.25x.
 * These convolutions carry most of a ResNet's FLOPs; layers.c sends them
 * here (contracts in include/winograd.h) for the forward pass and for the
 * input gradient (which is the same convolution of dY with the weights
 * transposed and rotated by 180 degrees).
 *
 * Layout: in (C, N, H, W) -> out (OC, N, H, W), channel-major as everywhere.
 * Tiles are indexed t = (n*TH + ty)*TW + tx (TH = ceil(H/2), TW = ceil(W/2))
 * and processed in chunks of whole tile rows, so the transformed input
 * V (16, C, T) and the products M (16, OC, T) of one chunk stay in cache:
 *   U[xi] (OC, C)  = G g G^T          (weights, once per call)
 *   V[xi] (C, T)   = B^T d B          (4x4 input windows, zero padded)
 *   M[xi] (OC, T)  = U[xi] V[xi]      (16 sgemm calls per chunk)
 *   y (2x2)        = A^T m A          (written or added to the output)
 * The transforms use AVX-512 over 16 tiles at a time; without AVX-512 the
 * layers fall back to im2col (winograd_applicable returns 0). Transforms are
 * split over channels with layers_parallel_for; every value is computed the
 * same way whatever the split. */
#pragma GCC optimize("O3")
#include "winograd.h"

#include <cblas.h>
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "pool.h"

#define WG_MAX_W 1024              // widest input row handled (row buffer on the stack)
#define WG_CHUNK_FLOATS (1u << 20) // target floats of V + M per chunk (4 MiB)
#define WG_MIN_TILES 256           // at least this many tiles per chunk (GEMM width)

static int cpu_avx512(void)
{
    static int v = -1;
    if (v < 0) v = __builtin_cpu_supports("avx512f") ? 1 : 0;
    return v;
}

int winograd_applicable(const conv2d_desc *d)
{
    return cpu_avx512() && d->kh == 3 && d->kw == 3 && d->stride == 1 && d->pad == 1 &&
           d->padw == 1 && d->h >= 2 && d->w >= 2 && d->w <= WG_MAX_W;
}

static int tiles_h(const conv2d_desc *d)
{
    return (d->h + 1) / 2;
}

static int tiles_w(const conv2d_desc *d)
{
    return (d->w + 1) / 2;
}

/* Tile rows per chunk. With BALANCED the chunks are evened out; without,
 * the value bounds the balanced one for every batch size up to d->n (work
 * space sizes use it: a model prepared for batch B also runs smaller ones). */
static int chunk_rows_b(const conv2d_desc *d, int balanced)
{
    return winograd_chunk_rows(d->n * tiles_h(d), tiles_w(d), (size_t)16 * (d->c + d->oc),
                               balanced);
}

int winograd_chunk_rows(int rows, int tw, size_t tile_floats, int balanced)
{
    size_t per_row = tile_floats * tw;
    int r = (int)(WG_CHUNK_FLOATS / per_row);
    int rmin = (WG_MIN_TILES + tw - 1) / tw;
    if (r < rmin) r = rmin;
    if (r < 1) r = 1;
    if (r > rows) r = rows;
    if (balanced) {
        int nch = (rows + r - 1) / r;
        r = (rows + nch - 1) / nch;
    }
    return r;
}

static int chunk_rows(const conv2d_desc *d)
{
    return chunk_rows_b(d, 1);
}

static size_t al16(size_t n)
{
    return (n + 15) / 16 * 16;
}

size_t winograd_workspace_floats(const conv2d_desc *d)
{
    size_t T = (size_t)chunk_rows_b(d, 0) * tiles_w(d);
    return al16((size_t)16 * d->oc * d->c) + al16((size_t)16 * d->c * T) +
           al16((size_t)16 * d->oc * T);
}

/* The mask of the first N lanes of a vector (all 16 when N >= 16). */
static inline __mmask16 lane_mask(int n)
{
    return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
}

/* Index vectors for _mm512_permutex2var_ps(a, idx, b), which picks from the
 * 32 floats of a then b: the even ones (a0, a2, .., b14), the odd ones
 * (a1, a3, .., b15), and a, b interleaved from their low halves
 * (a0, b0, a1, b1, .., a7, b7) or high halves (a8, b8, .., a15, b15). */
__attribute__((target("avx512f"))) static inline __m512i idx_even(void)
{
    return _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
}

__attribute__((target("avx512f"))) static inline __m512i idx_odd(void)
{
    return _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
}

__attribute__((target("avx512f"))) static inline __m512i idx_interleave_lo(void)
{
    return _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
}

__attribute__((target("avx512f"))) static inline __m512i idx_interleave_hi(void)
{
    return _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
}

/* ---------- weight transform ---------- */

typedef struct {
    float *u;       // (16, OC, C)
    const float *w; // weights (see flip)
    int oc, c;      // of this convolution
    int flip;       // w is (C, OC, 3, 3) of the forward conv: transpose + rotate 180
} wt_ctx;

/* For one output channel and 16 input channels at a time: the 3x3 kernels are
 * transposed into g[9] vectors (lane = input channel), transformed with
 * vector arithmetic, and stored as 16 contiguous floats per U[xi] row. */
__attribute__((target("avx512f"))) static void weight_part(void *arg, size_t o0, size_t o1)
{
    const wt_ctx *k = arg;
    const size_t OC = (size_t)k->oc, C = (size_t)k->c;
    const __m512 half = _mm512_set1_ps(0.5f);
    float tmp[9][16];
    for (size_t o = o0; o < o1; o++)
        for (size_t c0 = 0; c0 < C; c0 += 16) {
            size_t cnt = C - c0 < 16 ? C - c0 : 16;
            __mmask16 m = lane_mask(cnt);
            for (size_t j = 0; j < cnt; j++) {
                size_t c = c0 + j;
                if (k->flip) {
                    const float *s = k->w + (c * OC + o) * 9;
                    for (int q = 0; q < 9; q++)
                        tmp[q][j] = s[8 - q];
                } else {
                    const float *s = k->w + (o * C + c) * 9;
                    for (int q = 0; q < 9; q++)
                        tmp[q][j] = s[q];
                }
            }
            __m512 g[3][3];
            for (int y = 0; y < 3; y++)
                for (int x = 0; x < 3; x++)
                    g[y][x] = _mm512_maskz_loadu_ps(m, tmp[y * 3 + x]);
            __m512 t[4][3]; // G g
            for (int x = 0; x < 3; x++) {
                __m512 s02 = _mm512_add_ps(g[0][x], g[2][x]);
                t[0][x] = g[0][x];
                t[1][x] = _mm512_mul_ps(half, _mm512_add_ps(s02, g[1][x]));
                t[2][x] = _mm512_mul_ps(half, _mm512_sub_ps(s02, g[1][x]));
                t[3][x] = g[2][x];
            }
            for (int a = 0; a < 4; a++) { // (G g) G^T
                __m512 s02 = _mm512_add_ps(t[a][0], t[a][2]);
                __m512 u[4];
                u[0] = t[a][0];
                u[1] = _mm512_mul_ps(half, _mm512_add_ps(s02, t[a][1]));
                u[2] = _mm512_mul_ps(half, _mm512_sub_ps(s02, t[a][1]));
                u[3] = t[a][2];
                for (int b = 0; b < 4; b++)
                    _mm512_mask_storeu_ps(k->u + ((size_t)(a * 4 + b) * OC + o) * C + c0, m, u[b]);
            }
        }
}

/* ---------- input transform ---------- */

/* One transform of a chunk of tile rows, split over channels on the pool:
 * the input transform (src: in (C, N, H, W), dst: V (16, C, T)), the output
 * transform (src: M (16, OC, T), dst: out (OC, N, H, W)) or the gradient
 * transform (src: dy (OC, N, H, W), dst: Z (16, OC, T)). */
typedef struct {
    float *dst;           // what the transform writes
    const float *src;     // what it reads
    const conv2d_desc *d; // the convolution
    int r0, r1;           // tile rows of the chunk
    size_t T;             // tiles in the chunk
    int accumulate;       // output transform: add into dst instead of writing it
} chunk_ctx;

/* One row of d B for 16 tiles at once, from the row's window columns
 * D0..D3 (B = [1 0 0 0; 0 1 -1 1; -1 1 1 0; 0 0 0 -1]). */
__attribute__((target("avx512f"))) static inline void input_row(__m512 w[4], __m512 d0, __m512 d1,
                                                                __m512 d2, __m512 d3)
{
    w[0] = _mm512_sub_ps(d0, d2);
    w[1] = _mm512_add_ps(d1, d2);
    w[2] = _mm512_sub_ps(d2, d1);
    w[3] = _mm512_sub_ps(d1, d3);
}

/* Stores V = B^T (d B) for 16 tiles at once, given the rows w[i][j] of d B:
 * V[xi] of lane l's tile goes to BASE[xi * STRIDE + l] (lanes in M only). */
__attribute__((target("avx512f"))) static inline void input_store(float *base, size_t stride,
                                                                  __mmask16 m, __m512 w[4][4])
{
    for (int j = 0; j < 4; j++) {
        _mm512_mask_storeu_ps(base + (size_t)(0 * 4 + j) * stride, m,
                              _mm512_sub_ps(w[0][j], w[2][j]));
        _mm512_mask_storeu_ps(base + (size_t)(1 * 4 + j) * stride, m,
                              _mm512_add_ps(w[1][j], w[2][j]));
        _mm512_mask_storeu_ps(base + (size_t)(2 * 4 + j) * stride, m,
                              _mm512_sub_ps(w[2][j], w[1][j]));
        _mm512_mask_storeu_ps(base + (size_t)(3 * 4 + j) * stride, m,
                              _mm512_sub_ps(w[1][j], w[3][j]));
    }
}

__attribute__((target("avx512f"))) static void input_part(void *arg, size_t c0, size_t c1)
{
    const chunk_ctx *k = arg;
    const conv2d_desc *d = k->d;
    const int H = d->h, W = d->w, th = tiles_h(d), tw = tiles_w(d);
    const size_t C = (size_t)d->c, T = k->T;
    const int Wp = W + 40; // padded row: 1 zero on the left, zeros after
    float rb[4 * (WG_MAX_W + 40)];
    const __m512i ev = idx_even(), od = idx_odd();
    memset(rb, 0, sizeof(float) * 4 * Wp);
    for (size_t c = c0; c < c1; c++) {
        const float *plane = k->src + c * (size_t)d->n * H * W;
        for (int r = k->r0; r < k->r1; r++) {
            const int n = r / th, ty = r % th;
            for (int i = 0; i < 4; i++) {
                int y = 2 * ty - 1 + i;
                float *dst = rb + i * Wp + 1;
                if (y >= 0 && y < H)
                    memcpy(dst, plane + ((size_t)n * H + y) * W, sizeof(float) * W);
                else
                    memset(dst, 0, sizeof(float) * W);
            }
            const size_t tb = (size_t)(r - k->r0) * tw;
            for (int tx0 = 0; tx0 < tw; tx0 += 16) {
                __mmask16 m = lane_mask(tw - tx0);
                __m512 w[4][4];
                for (int i = 0; i < 4; i++) {
                    const float *p = rb + i * Wp + 2 * tx0;
                    __m512 a = _mm512_loadu_ps(p), b = _mm512_loadu_ps(p + 16);
                    __m512 a2 = _mm512_loadu_ps(p + 2), b2 = _mm512_loadu_ps(p + 18);
                    __m512 d0 = _mm512_permutex2var_ps(a, ev, b);
                    __m512 d1 = _mm512_permutex2var_ps(a, od, b);
                    __m512 d2 = _mm512_permutex2var_ps(a2, ev, b2);
                    __m512 d3 = _mm512_permutex2var_ps(a2, od, b2);
                    input_row(w[i], d0, d1, d2, d3);
                }
                input_store(k->dst + c * T + tb + tx0, C * T, m, w);
            }
        }
    }
}

/* Narrow maps (TW <= 8 tiles per row): one vector covers 16/TW whole tile
 * rows, read with gathers from a stack of 4-row padded blocks (one per tile
 * row), so no lanes are wasted on 8x8 or 4x4 maps. */
#define NARROW_TW 8

__attribute__((target("avx512f"))) static void input_part_narrow(void *arg, size_t c0, size_t c1)
{
    const chunk_ctx *k = arg;
    const conv2d_desc *d = k->d;
    const int H = d->h, W = d->w, th = tiles_h(d), tw = tiles_w(d);
    const size_t C = (size_t)d->c, T = k->T;
    const int Wp = W + 3;  // 1 zero left, up to 2 zeros right
    const int R = 16 / tw; // tile rows per vector
    float rb[16 * 4 * (2 * NARROW_TW + 3)];
    int32_t base_idx[16];
    for (int l = 0; l < 16; l++)
        base_idx[l] = (l / tw) * 4 * Wp + 2 * (l % tw);
    const __m512i bidx = _mm512_loadu_si512(base_idx);
    for (size_t c = c0; c < c1; c++) {
        const float *plane = k->src + c * (size_t)d->n * H * W;
        for (int r0 = k->r0; r0 < k->r1; r0 += R) {
            int nr = k->r1 - r0 < R ? k->r1 - r0 : R;
            for (int q = 0; q < nr; q++) {
                const int r = r0 + q, n = r / th, ty = r % th;
                for (int i = 0; i < 4; i++) {
                    float *dst = rb + (q * 4 + i) * Wp;
                    int y = 2 * ty - 1 + i;
                    dst[0] = 0;
                    if (y >= 0 && y < H)
                        memcpy(dst + 1, plane + ((size_t)n * H + y) * W, sizeof(float) * W);
                    else
                        memset(dst + 1, 0, sizeof(float) * W);
                    dst[W + 1] = 0;
                    dst[W + 2] = 0;
                }
            }
            __mmask16 m = lane_mask(nr * tw);
            __m512 w[4][4];
            for (int i = 0; i < 4; i++) {
                __m512 dd[4];
                for (int j = 0; j < 4; j++)
                    dd[j] = _mm512_mask_i32gather_ps(
                        _mm512_setzero_ps(), m,
                        _mm512_add_epi32(bidx, _mm512_set1_epi32(i * Wp + j)), rb, 4);
                input_row(w[i], dd[0], dd[1], dd[2], dd[3]);
            }
            float *base = k->dst + c * T + (size_t)(r0 - k->r0) * tw;
            input_store(base, C * T, m, w);
        }
    }
}

/* Narrow maps of even size with 16 % TW == 0 (W = 2, 4, 8, 16; H even): no
 * gathers. The rows of R = 16/TW tile rows are packed into two vectors (R/2
 * rows of W floats each), whose even and odd lanes are the window columns
 * 2tx and 2tx+1 of every tile; columns 2tx-1 and 2tx+2 are those shifted by
 * one lane within each tile row, zero at the padded edges. */
static int narrow_even(const conv2d_desc *d)
{
    const int tw = tiles_w(d);
    return d->w % 2 == 0 && d->h % 2 == 0 && tw <= NARROW_TW && 16 % tw == 0;
}

typedef struct {
    __m512i mod_w;    // lane l -> l % W (packs a row into its slot)
    __m512i m1, p1;   // lane l -> l - 1, l + 1
    __mmask16 nstart; // lanes whose tile is not the first of its row
    __mmask16 nend;   // lanes whose tile is not the last of its row
} narrow_idx;

__attribute__((target("avx512f"))) static narrow_idx narrow_idx_make(int W)
{
    const int tw = W / 2;
    int32_t a[16], b[16], c[16];
    narrow_idx x = {0};
    for (int l = 0; l < 16; l++) {
        a[l] = l % W;
        b[l] = l > 0 ? l - 1 : 0;
        c[l] = l < 15 ? l + 1 : 15;
        if (l % tw != 0) x.nstart |= (__mmask16)(1u << l);
        if (l % tw != tw - 1) x.nend |= (__mmask16)(1u << l);
    }
    x.mod_w = _mm512_loadu_si512(a);
    x.m1 = _mm512_loadu_si512(b);
    x.p1 = _mm512_loadu_si512(c);
    return x;
}

__attribute__((target("avx512f"))) static void input_part_even(void *arg, size_t c0, size_t c1)
{
    const chunk_ctx *k = arg;
    const conv2d_desc *d = k->d;
    const int H = d->h, W = d->w, th = tiles_h(d), tw = tiles_w(d);
    const size_t C = (size_t)d->c, T = k->T;
    const int R = 16 / tw, half = R / 2 > 0 ? R / 2 : 1;
    const narrow_idx ix = narrow_idx_make(W);
    const __m512i ev = idx_even(), od = idx_odd();
    const __mmask16 wmask = lane_mask(W);
    for (size_t c = c0; c < c1; c++) {
        const float *plane = k->src + c * (size_t)d->n * H * W;
        for (int r0 = k->r0; r0 < k->r1; r0 += R) {
            int nr = k->r1 - r0 < R ? k->r1 - r0 : R;
            __mmask16 m = lane_mask(nr * tw);
            __m512 w[4][4];
            for (int i = 0; i < 4; i++) {
                __m512 A = _mm512_setzero_ps(), B = _mm512_setzero_ps();
                for (int q = 0; q < nr; q++) {
                    const int r = r0 + q, n = r / th, ty = r % th, y = 2 * ty - 1 + i;
                    if (y < 0 || y >= H) continue;
                    __m512 row = _mm512_maskz_loadu_ps(wmask, plane + ((size_t)n * H + y) * W);
                    int slot = q % half;
                    __mmask16 seg = (__mmask16)(((1u << W) - 1) << (slot * W));
                    if (q < half)
                        A = _mm512_mask_permutexvar_ps(A, seg, ix.mod_w, row);
                    else
                        B = _mm512_mask_permutexvar_ps(B, seg, ix.mod_w, row);
                }
                __m512 d1 = _mm512_permutex2var_ps(A, ev, B);                  // column 2tx
                __m512 d2 = _mm512_permutex2var_ps(A, od, B);                  // column 2tx + 1
                __m512 d0 = _mm512_maskz_permutexvar_ps(ix.nstart, ix.m1, d2); // 2tx - 1
                __m512 d3 = _mm512_maskz_permutexvar_ps(ix.nend, ix.p1, d1);   // 2tx + 2
                input_row(w[i], d0, d1, d2, d3);
            }
            float *base = k->dst + c * T + (size_t)(r0 - k->r0) * tw;
            input_store(base, C * T, m, w);
        }
    }
}

/* ---------- output transform ---------- */

/* y = A^T m A (2x2 outputs) for 16 tiles at once: the 16 products of lane l's
 * tile are BASE[xi * STRIDE + l], lanes outside M read as zero. */
__attribute__((target("avx512f"))) static inline void
output_tiles(__m512 y[2][2], const float *base, size_t stride, __mmask16 m)
{
    __m512 s0[4], s1[4];
    for (int j = 0; j < 4; j++) {
        __m512 m0 = _mm512_maskz_loadu_ps(m, base + (size_t)(0 * 4 + j) * stride);
        __m512 m1 = _mm512_maskz_loadu_ps(m, base + (size_t)(1 * 4 + j) * stride);
        __m512 m2 = _mm512_maskz_loadu_ps(m, base + (size_t)(2 * 4 + j) * stride);
        __m512 m3 = _mm512_maskz_loadu_ps(m, base + (size_t)(3 * 4 + j) * stride);
        s0[j] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
        s1[j] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
    }
    y[0][0] = _mm512_add_ps(_mm512_add_ps(s0[0], s0[1]), s0[2]);
    y[0][1] = _mm512_sub_ps(_mm512_sub_ps(s0[1], s0[2]), s0[3]);
    y[1][0] = _mm512_add_ps(_mm512_add_ps(s1[0], s1[1]), s1[2]);
    y[1][1] = _mm512_sub_ps(_mm512_sub_ps(s1[1], s1[2]), s1[3]);
}

/* Load/store masks for NCOLS (1..32) floats of a row held in two vectors:
 * *M0 the first 16, *M1 the rest. */
static inline void row_masks(int ncols, __mmask16 *m0, __mmask16 *m1)
{
    int n1 = ncols - 16;
    *m0 = lane_mask(ncols);
    *m1 = n1 <= 0 ? 0 : lane_mask(n1);
}

/* Writes (or adds, with ACC) LO, HI as the NCOLS floats at DST. */
__attribute__((target("avx512f"))) static void store_row(float *dst, __m512 lo, __m512 hi,
                                                         int ncols, int acc)
{
    __mmask16 m0, m1;
    row_masks(ncols, &m0, &m1);
    if (acc) {
        lo = _mm512_add_ps(lo, _mm512_maskz_loadu_ps(m0, dst));
        hi = _mm512_add_ps(hi, _mm512_maskz_loadu_ps(m1, dst + 16));
    }
    _mm512_mask_storeu_ps(dst, m0, lo);
    _mm512_mask_storeu_ps(dst + 16, m1, hi);
}

__attribute__((target("avx512f"))) static void output_part(void *arg, size_t o0, size_t o1)
{
    const chunk_ctx *k = arg;
    const conv2d_desc *d = k->d;
    const int H = d->h, W = d->w, th = tiles_h(d), tw = tiles_w(d);
    const size_t OC = (size_t)d->oc, T = k->T;
    const __m512i lo_i = idx_interleave_lo(), hi_i = idx_interleave_hi();
    for (size_t o = o0; o < o1; o++) {
        float *plane = k->dst + o * (size_t)d->n * H * W;
        for (int r = k->r0; r < k->r1; r++) {
            const int n = r / th, ty = r % th;
            const size_t tb = (size_t)(r - k->r0) * tw;
            for (int tx0 = 0; tx0 < tw; tx0 += 16) {
                __mmask16 m = lane_mask(tw - tx0);
                __m512 yt[2][2];
                output_tiles(yt, k->src + o * T + tb + tx0, OC * T, m);
                int col = 2 * tx0, ncols = W - col < 32 ? W - col : 32;
                int y = 2 * ty;
                float *dst = plane + ((size_t)n * H + y) * W + col;
                store_row(dst, _mm512_permutex2var_ps(yt[0][0], lo_i, yt[0][1]),
                          _mm512_permutex2var_ps(yt[0][0], hi_i, yt[0][1]), ncols, k->accumulate);
                if (y + 1 < H)
                    store_row(dst + W, _mm512_permutex2var_ps(yt[1][0], lo_i, yt[1][1]),
                              _mm512_permutex2var_ps(yt[1][0], hi_i, yt[1][1]), ncols,
                              k->accumulate);
            }
        }
    }
}

/* Output transform for narrow maps: 16/TW tile rows per vector, results
 * scattered to their (row, column) places; masks drop positions past the
 * bottom/right edge (odd sizes). */
__attribute__((target("avx512f"))) static void output_part_narrow(void *arg, size_t o0, size_t o1)
{
    const chunk_ctx *k = arg;
    const conv2d_desc *d = k->d;
    const int H = d->h, W = d->w, th = tiles_h(d), tw = tiles_w(d);
    const size_t OC = (size_t)d->oc, T = k->T;
    const int R = 16 / tw;
    for (size_t o = o0; o < o1; o++) {
        float *plane = k->dst + o * (size_t)d->n * H * W;
        for (int r0 = k->r0; r0 < k->r1; r0 += R) {
            int nr = k->r1 - r0 < R ? k->r1 - r0 : R;
            __mmask16 m = lane_mask(nr * tw);
            /* per lane: offset of the tile's top-left output and edge masks */
            int32_t off[16];
            __mmask16 mr1 = 0, mc1 = 0; // lanes whose second row / column exists
            for (int l = 0; l < 16; l++) {
                int q = l / tw, tx = l % tw;
                int r = r0 + (q < nr ? q : 0), n = r / th, ty = r % th;
                off[l] = (int32_t)(((size_t)n * H + 2 * ty) * W + 2 * tx);
                if (2 * ty + 1 < H) mr1 |= (__mmask16)(1u << l);
                if (2 * tx + 1 < W) mc1 |= (__mmask16)(1u << l);
            }
            const __m512i vo = _mm512_loadu_si512(off);
            const float *base = k->src + o * T + (size_t)(r0 - k->r0) * tw;
            __m512 y[2][2];
            output_tiles(y, base, OC * T, m);
            for (int a = 0; a < 2; a++)
                for (int b = 0; b < 2; b++) {
                    __mmask16 mm = m;
                    if (a) mm &= mr1;
                    if (b) mm &= mc1;
                    __m512i idx = _mm512_add_epi32(vo, _mm512_set1_epi32(a * W + b));
                    __m512 v = y[a][b];
                    if (k->accumulate)
                        v = _mm512_add_ps(
                            v, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mm, idx, plane, 4));
                    _mm512_mask_i32scatter_ps(plane, mm, idx, v, 4);
                }
        }
    }
}

/* Output transform for the maps input_part_even handles: the two results of
 * a tile row interleaved give W contiguous output floats per tile row, so
 * each tile row is one permute and one masked store (no scatters). */
__attribute__((target("avx512f"))) static void output_part_even(void *arg, size_t o0, size_t o1)
{
    const chunk_ctx *k = arg;
    const conv2d_desc *d = k->d;
    const int H = d->h, W = d->w, th = tiles_h(d), tw = tiles_w(d);
    const size_t OC = (size_t)d->oc, T = k->T;
    const int R = 16 / tw, half = R / 2 > 0 ? R / 2 : 1;
    const __m512i lo_i = idx_interleave_lo(), hi_i = idx_interleave_hi();
    const __mmask16 wmask = lane_mask(W);
    __m512i seg_idx[16]; // slot s -> lanes s*W .. s*W+W-1 moved to 0 .. W-1
    for (int sl = 0; sl < half; sl++) {
        int32_t t[16];
        for (int l = 0; l < 16; l++)
            t[l] = (sl * W + l) & 15;
        seg_idx[sl] = _mm512_loadu_si512(t);
    }
    for (size_t o = o0; o < o1; o++) {
        float *plane = k->dst + o * (size_t)d->n * H * W;
        for (int r0 = k->r0; r0 < k->r1; r0 += R) {
            int nr = k->r1 - r0 < R ? k->r1 - r0 : R;
            __mmask16 m = lane_mask(nr * tw);
            const float *base = k->src + o * T + (size_t)(r0 - k->r0) * tw;
            __m512 y[2][2];
            output_tiles(y, base, OC * T, m);
            for (int a = 0; a < 2; a++) {
                /* W output floats of row 2ty+a per tile row: lo holds the
                 * first R/2 tile rows, hi the others */
                __m512 lo = _mm512_permutex2var_ps(y[a][0], lo_i, y[a][1]);
                __m512 hi = _mm512_permutex2var_ps(y[a][0], hi_i, y[a][1]);
                for (int q = 0; q < nr; q++) {
                    const int r = r0 + q, n = r / th, ty = r % th;
                    __m512 v = _mm512_permutexvar_ps(seg_idx[q % half], q < half ? lo : hi);
                    float *dst = plane + ((size_t)n * H + 2 * ty + a) * W;
                    if (k->accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(wmask, dst));
                    _mm512_mask_storeu_ps(dst, wmask, v);
                }
            }
        }
    }
}

/* ---------- weight gradient ---------- */

/* Z[xi] (OC, T) = A dy A^T for the 2x2 output-gradient tiles of a chunk
 * (A = [1 0; 1 1; 1 -1; 0 -1]); tiles past the bottom/right edge read zeros. */
__attribute__((target("avx512f"))) static void grad_part(void *arg, size_t o0, size_t o1)
{
    const chunk_ctx *k = arg;
    const conv2d_desc *d = k->d;
    const int H = d->h, W = d->w, th = tiles_h(d), tw = tiles_w(d);
    const size_t OC = (size_t)d->oc, T = k->T;
    const __m512i ev = idx_even(), od = idx_odd();
    const __m512 zero = _mm512_setzero_ps();
    for (size_t o = o0; o < o1; o++) {
        const float *plane = k->src + o * (size_t)d->n * H * W;
        for (int r = k->r0; r < k->r1; r++) {
            const int n = r / th, ty = r % th;
            const size_t tb = (size_t)(r - k->r0) * tw;
            for (int tx0 = 0; tx0 < tw; tx0 += 16) {
                __mmask16 m = lane_mask(tw - tx0);
                int col = 2 * tx0, ncols = W - col < 32 ? W - col : 32;
                __mmask16 m0, m1;
                row_masks(ncols, &m0, &m1);
                __m512 g[2][2]; // g[row][col of tile]
                for (int i = 0; i < 2; i++) {
                    int y = 2 * ty + i;
                    if (y >= H) {
                        g[i][0] = g[i][1] = zero;
                        continue;
                    }
                    const float *src = plane + ((size_t)n * H + y) * W + col;
                    __m512 a = _mm512_maskz_loadu_ps(m0, src);
                    __m512 b = _mm512_maskz_loadu_ps(m1, src + 16);
                    g[i][0] = _mm512_permutex2var_ps(a, ev, b);
                    g[i][1] = _mm512_permutex2var_ps(a, od, b);
                }
                __m512 rr[4][2]; // A dy
                for (int j = 0; j < 2; j++) {
                    rr[0][j] = g[0][j];
                    rr[1][j] = _mm512_add_ps(g[0][j], g[1][j]);
                    rr[2][j] = _mm512_sub_ps(g[0][j], g[1][j]);
                    rr[3][j] = _mm512_sub_ps(zero, g[1][j]);
                }
                float *base = k->dst + o * T + tb + tx0;
                for (int a = 0; a < 4; a++) { // (A dy) A^T
                    __m512 z0 = rr[a][0];
                    __m512 z1 = _mm512_add_ps(rr[a][0], rr[a][1]);
                    __m512 z2 = _mm512_sub_ps(rr[a][0], rr[a][1]);
                    __m512 z3 = _mm512_sub_ps(zero, rr[a][1]);
                    _mm512_mask_storeu_ps(base + (size_t)(a * 4 + 0) * OC * T, m, z0);
                    _mm512_mask_storeu_ps(base + (size_t)(a * 4 + 1) * OC * T, m, z1);
                    _mm512_mask_storeu_ps(base + (size_t)(a * 4 + 2) * OC * T, m, z2);
                    _mm512_mask_storeu_ps(base + (size_t)(a * 4 + 3) * OC * T, m, z3);
                }
            }
        }
    }
}

/* dw (OC, C, 3, 3) += G^T dU G for the accumulated products dU (16, OC, C). */
typedef struct {
    float *dw;
    const float *du;
    int oc, c;
} wg_ctx;

static void wgrad_part(void *arg, size_t o0, size_t o1)
{
    const wg_ctx *k = arg;
    const size_t OC = (size_t)k->oc, C = (size_t)k->c;
    for (size_t o = o0; o < o1; o++)
        for (size_t c = 0; c < C; c++) {
            float u[4][4];
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++)
                    u[a][b] = k->du[((size_t)(a * 4 + b) * OC + o) * C + c];
            float t[3][4]; // G^T dU
            for (int b = 0; b < 4; b++) {
                t[0][b] = u[0][b] + 0.5f * (u[1][b] + u[2][b]);
                t[1][b] = 0.5f * (u[1][b] - u[2][b]);
                t[2][b] = 0.5f * (u[1][b] + u[2][b]) + u[3][b];
            }
            float *g = k->dw + (o * C + c) * 9;
            for (int y = 0; y < 3; y++) { // (G^T dU) G
                g[y * 3 + 0] += t[y][0] + 0.5f * (t[y][1] + t[y][2]);
                g[y * 3 + 1] += 0.5f * (t[y][1] - t[y][2]);
                g[y * 3 + 2] += 0.5f * (t[y][1] + t[y][2]) + t[y][3];
            }
        }
}

/* The 16 per-position products of one chunk of tiles, items [x0, x1):
 * C[xi] (M, N) = A[xi] (M, K) op(B[xi]) + beta C[xi], op(B) = B^T when tb
 * (B[xi] then (N, K)); A[xi] = a + xi * M * K, and likewise for B and C. */
typedef struct {
    const float *a, *b; // (16, M, K) and (16, K, N) or (16, N, K)
    float *c;           // (16, M, N)
    int m, n, k;        // dimensions of one product
    int tb;             // B stored transposed
    float beta;         // 0: overwrite C, 1: accumulate
} wprod_ctx;

static void wino_products(void *arg, size_t x0, size_t x1)
{
    const wprod_ctx *p = arg;
    const size_t M = (size_t)p->m, N = (size_t)p->n, K = (size_t)p->k;
    for (size_t xi = x0; xi < x1; xi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, p->tb ? CblasTrans : CblasNoTrans, p->m, p->n,
                    p->k, 1.0f, p->a + xi * M * K, p->k, p->b + xi * K * N, p->tb ? p->k : p->n,
                    p->beta, p->c + xi * M * N, p->n);
}

/* How a call cuts D into chunks of tile rows, and its work space WS: U (or
 * dU) (16, OC, C), then V (16, C, T) and M (or Z) (16, OC, T) of one chunk
 * (winograd_workspace_floats). */
typedef struct {
    float *u, *v, *m;  // the three buffers inside WS
    int tw, rows, per; // tiles per row, tile rows in all, tile rows per chunk
} wg_plan;

static wg_plan plan_make(const conv2d_desc *d, float *ws)
{
    wg_plan p;
    p.tw = tiles_w(d);
    p.rows = d->n * tiles_h(d);
    p.per = chunk_rows(d);
    const size_t OC = (size_t)d->oc, C = (size_t)d->c, Tmax = (size_t)p.per * p.tw;
    p.u = ws;
    p.v = p.u + al16(16 * OC * C);
    p.m = p.v + al16(16 * C * Tmax);
    return p;
}

/* V (16, C, T) = the input transform of tile rows [r0, r1) of IN, split over
 * channels on the pool with the variant that suits D's width. */
static void input_transform(float *v, const float *in, const conv2d_desc *d, int r0, int r1,
                            size_t T)
{
    chunk_ctx ik = {v, in, d, r0, r1, T, 0};
    layers_parallel_for((size_t)d->c, 4,
                        narrow_even(d)            ? input_part_even
                        : tiles_w(d) <= NARROW_TW ? input_part_narrow
                                                  : input_part,
                        &ik);
}

void winograd_wgrad(float *dw, const float *dy, const float *in, const conv2d_desc *d, float *ws)
{
    const size_t OC = (size_t)d->oc, C = (size_t)d->c;
    const wg_plan p = plan_make(d, ws);
    float *du = p.u, *z = p.m;
    memset(du, 0, sizeof(float) * 16 * OC * C);
    for (int r0 = 0; r0 < p.rows; r0 += p.per) {
        int r1 = r0 + p.per < p.rows ? r0 + p.per : p.rows;
        size_t T = (size_t)(r1 - r0) * p.tw;
        input_transform(p.v, in, d, r0, r1, T);
        chunk_ctx gk = {z, dy, d, r0, r1, T, 0};
        layers_parallel_for(OC, 4, grad_part, &gk);
        /* dU[xi] (OC, C) += Z[xi] (OC, T) V[xi]^T */
        wprod_ctx pk = {z, p.v, du, (int)OC, (int)C, (int)T, 1, 1.0f};
        layers_gemm_batch(16, wino_products, &pk);
    }
    wg_ctx wk = {dw, du, d->oc, d->c};
    layers_parallel_for(OC, 8, wgrad_part, &wk);
}

/* ---------- driver ---------- */

void winograd_conv(float *out, const float *in, const float *w, const conv2d_desc *d, float *ws,
                   int flip, int accumulate)
{
    const size_t OC = (size_t)d->oc, C = (size_t)d->c;
    const wg_plan p = plan_make(d, ws);
    float *u = p.u, *mb = p.m;
    wt_ctx wk = {u, w, d->oc, d->c, flip};
    layers_parallel_for(OC, 8, weight_part, &wk);
    for (int r0 = 0; r0 < p.rows; r0 += p.per) {
        int r1 = r0 + p.per < p.rows ? r0 + p.per : p.rows;
        size_t T = (size_t)(r1 - r0) * p.tw;
        input_transform(p.v, in, d, r0, r1, T);
        /* M[xi] (OC, T) = U[xi] (OC, C) V[xi] (C, T) */
        wprod_ctx pk = {u, p.v, mb, (int)OC, (int)T, (int)C, 0, 0.0f};
        layers_gemm_batch(16, wino_products, &pk);
        chunk_ctx ok = {out, mb, d, r0, r1, T, accumulate};
        layers_parallel_for(OC, 4,
                            narrow_even(d)      ? output_part_even
                            : p.tw <= NARROW_TW ? output_part_narrow
                                                : output_part,
                            &ok);
    }
}
