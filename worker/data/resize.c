/* resize.c — antialiased resizing of 8-bit RGB images (include/image.h).
 *
 * A separable convolution with the triangle (bilinear) filter, computed the
 * way Pillow's ImagingResample does so results match Image.resize(BILINEAR,
 * box=...) to within rounding: when shrinking by a factor f > 1 the filter is
 * stretched to a support of f pixels on each side, so every source pixel
 * contributes (antialiasing); when enlarging it is plain bilinear
 * interpolation. Coefficients are normalised per output pixel and applied in
 * 22-bit fixed point. The horizontal pass runs first, only over the source
 * rows the vertical pass will read, into an 8-bit intermediate; an axis whose
 * size and box are unchanged is skipped. A naive floating-point reference of
 * the same filter lives in the unit test (tests/unit/test_image.c). */
/* The passes are plain loops over bytes and int32 sums written for the
 * auto-vectoriser; -O3 lets it widen them (SSE2, the x86-64 baseline). */
#pragma GCC optimize("O3")

#include "image.h"

#include "errors.h"

#include <immintrin.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS 22

typedef struct {
    int ksize;   // taps per output pixel (the widest)
    int *bounds; // (out, 2): first source index and tap count per output
    int32_t *k;  // (out, ksize) fixed-point coefficients
} coeffs;

static double tri(double x)
{
    if (x < 0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Coefficients mapping [in0, in1) of an axis of IN_SIZE pixels to OUT_SIZE
 * outputs. Returns 0 or ERR_NOMEM. */
static int coeffs_make(coeffs *c, int in_size, double in0, double in1, int out_size)
{
    double scale = (in1 - in0) / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    c->ksize = ksize;
    c->bounds = malloc(sizeof(int) * 2 * (size_t)out_size);
    c->k = malloc(sizeof(int32_t) * (size_t)out_size * ksize);
    double *kk = malloc(sizeof(double) * ksize);
    if (!c->bounds || !c->k || !kk) {
        free(c->bounds);
        free(c->k);
        free(kk);
        c->bounds = NULL;
        c->k = NULL;
        return ERR_NOMEM;
    }
    double ss = 1.0 / filterscale;
    for (int xx = 0; xx < out_size; xx++) {
        double center = in0 + (xx + 0.5) * scale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        if (xmax > ksize) xmax = ksize;
        double ww = 0.0;
        int x;
        for (x = 0; x < xmax; x++) {
            double w = tri((x + xmin - center + 0.5) * ss);
            kk[x] = w;
            ww += w;
        }
        if (ww == 0.0) {
            /* Cannot happen for a box inside the image; keep the nearest pixel. */
            int n = (int)center;
            if (n >= in_size) n = in_size - 1;
            if (n < 0) n = 0;
            xmin = n;
            xmax = 1;
            kk[0] = 1.0;
            ww = 1.0;
        }
        int32_t *k = c->k + (size_t)xx * ksize;
        for (x = 0; x < xmax; x++) {
            double v = kk[x] / ww * (1 << PRECISION_BITS);
            k[x] = (int32_t)(v < 0 ? v - 0.5 : v + 0.5);
        }
        for (; x < ksize; x++)
            k[x] = 0;
        c->bounds[2 * xx] = xmin;
        c->bounds[2 * xx + 1] = xmax;
    }
    free(kk);
    return 0;
}

static void coeffs_free(coeffs *c)
{
    free(c->bounds);
    free(c->k);
}

static inline uint8_t clip8(int32_t v)
{
    v >>= PRECISION_BITS;
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* Makes every window of C exactly ksize taps long, moving windows that end
 * past the axis end left and padding with zero coefficients, so pass_h can
 * run fixed-length loops. Needs IN_SIZE >= ksize. */
static void coeffs_fix_width(coeffs *c, int in_size, int out_size)
{
    int K = c->ksize;
    for (int x = 0; x < out_size; x++) {
        int xmin = c->bounds[2 * x], n = c->bounds[2 * x + 1];
        int32_t *k = c->k + (size_t)x * K;
        int shift = xmin + K > in_size ? xmin + K - in_size : 0;
        if (shift) {
            memmove(k + shift, k, sizeof(int32_t) * (size_t)n);
            for (int i = 0; i < shift; i++)
                k[i] = 0;
            xmin -= shift;
        }
        for (int i = n + shift; i < K; i++)
            k[i] = 0;
        c->bounds[2 * x] = xmin;
        c->bounds[2 * x + 1] = K;
    }
}

/* One output pixel (3 bytes at OUT) of the horizontal pass: N taps K over
 * the pixels at P, in fixed point. */
static inline void h_pixel(uint8_t *out, const uint8_t *p, const int32_t *k, int n)
{
    const int32_t half = 1 << (PRECISION_BITS - 1);
    int32_t r = half, g = half, b = half;
    for (int i = 0; i < n; i++) {
        r += p[3 * i] * k[i];
        g += p[3 * i + 1] * k[i];
        b += p[3 * i + 2] * k[i];
    }
    out[0] = clip8(r);
    out[1] = clip8(g);
    out[2] = clip8(b);
}

/* The portable horizontal pass: rows [y0, y0 + nrows) of SRC (width SW)
 * into DST (width DW). FIXED_K > 0: every window is exactly FIXED_K taps
 * (coeffs_fix_width; a constant in each caller, so the tap loop unrolls);
 * 0: each window's own tap count. */
static inline void pass_h_scalar(const uint8_t *src, int sw, int y0, int nrows, uint8_t *dst,
                                 int dw, const coeffs *c, int fixed_k)
{
    const int ks = fixed_k ? fixed_k : c->ksize;
    for (int y = 0; y < nrows; y++) {
        const uint8_t *row = src + (size_t)(y0 + y) * sw * 3;
        uint8_t *out = dst + (size_t)y * dw * 3;
        for (int x = 0; x < dw; x++)
            h_pixel(out + 3 * x, row + (size_t)c->bounds[2 * x] * 3, c->k + (size_t)x * ks,
                    fixed_k ? fixed_k : c->bounds[2 * x + 1]);
    }
}

/* A horizontal pass: rows [y0, y0 + nrows) of SRC (width SW) into DST (width DW). */
typedef void (*pass_h_fn)(const uint8_t *src, int sw, int y0, int nrows, uint8_t *dst, int dw,
                          const coeffs *c);

/* pass_h for a fixed tap count K (a compile-time constant in each copy). */
#define PASS_H_FIXED(K)                                                                            \
    static void pass_h##K(const uint8_t *src, int sw, int y0, int nrows, uint8_t *dst, int dw,     \
                          const coeffs *c)                                                         \
    {                                                                                              \
        pass_h_scalar(src, sw, y0, nrows, dst, dw, c, K);                                          \
    }
PASS_H_FIXED(3)
PASS_H_FIXED(5)
PASS_H_FIXED(7)
PASS_H_FIXED(9)

/* The horizontal pass with SSE4.1: the three channels of a pixel ride in
 * one vector of four int32 (R, G, B, unused) and each tap is one multiply-add
 * of the whole pixel. Integer sums in a different order give exactly the same
 * result as the scalar loop. A pixel is loaded as 4 bytes, so windows that
 * reach the last pixel of a row (the extra byte could lie past the buffer)
 * take the scalar loop. */
__attribute__((target("sse4.1"))) static void
pass_h_sse41(const uint8_t *src, int sw, int y0, int nrows, uint8_t *dst, int dw, const coeffs *c)
{
    const int32_t half = 1 << (PRECISION_BITS - 1);
    const __m128i vhalf = _mm_set1_epi32(half);
    for (int y = 0; y < nrows; y++) {
        const uint8_t *row = src + (size_t)(y0 + y) * sw * 3;
        uint8_t *out = dst + (size_t)y * dw * 3;
        for (int x = 0; x < dw; x++) {
            int xmin = c->bounds[2 * x], n = c->bounds[2 * x + 1];
            const int32_t *k = c->k + (size_t)x * c->ksize;
            const uint8_t *p = row + (size_t)xmin * 3;
            if (xmin + n >= sw) {
                h_pixel(out + 3 * x, p, k, n);
                continue;
            }
            __m128i acc = vhalf;
            for (int i = 0; i < n; i++) {
                int32_t w4;
                memcpy(&w4, p + 3 * i, 4);
                __m128i px = _mm_cvtepu8_epi32(_mm_cvtsi32_si128(w4));
                acc = _mm_add_epi32(acc, _mm_mullo_epi32(px, _mm_set1_epi32(k[i])));
            }
            acc = _mm_srai_epi32(acc, PRECISION_BITS);
            acc = _mm_packs_epi32(acc, acc);  // int32 -> int16, saturating
            acc = _mm_packus_epi16(acc, acc); // int16 -> uint8, clamps to 0..255
            int32_t o = _mm_cvtsi128_si32(acc);
            out[3 * x] = (uint8_t)o;
            out[3 * x + 1] = (uint8_t)(o >> 8);
            out[3 * x + 2] = (uint8_t)(o >> 16);
        }
    }
}

static atomic_int simd_mode = -1; // -1 not chosen yet, 0 scalar, 1 SSE4.1

void image_resize_set_simd(bool on)
{
    atomic_store(&simd_mode, on && __builtin_cpu_supports("sse4.1") ? 1 : 0);
}

/* Horizontal pass: rows [y0, y0 + nrows) of SRC (width SW) into DST (width
 * DW, nrows rows). */
static void pass_h(const uint8_t *src, int sw, int y0, int nrows, uint8_t *dst, int dw,
                   const coeffs *c)
{
    int mode = atomic_load_explicit(&simd_mode, memory_order_relaxed);
    if (mode < 0) {
        mode = __builtin_cpu_supports("sse4.1") ? 1 : 0;
        atomic_store(&simd_mode, mode);
    }
    if (mode == 1) {
        pass_h_sse41(src, sw, y0, nrows, dst, dw, c);
        return;
    }
    /* windows made fixed-width by coeffs_fix_width: the copy for that width */
    static const pass_h_fn fixed[10] = {[3] = pass_h3, [5] = pass_h5, [7] = pass_h7, [9] = pass_h9};
    if (c->bounds[1] == c->ksize && c->ksize < 10 && fixed[c->ksize])
        fixed[c->ksize](src, sw, y0, nrows, dst, dw, c);
    else
        pass_h_scalar(src, sw, y0, nrows, dst, dw, c, 0);
}

/* Vertical pass: SRC rows are source rows offset by Y0 (width W); DST has DH
 * rows. ACC is scratch of W*3 int32. */
static void pass_v(const uint8_t *src, int w, int y0, uint8_t *dst, int dh, const coeffs *c,
                   int32_t *acc)
{
    const int32_t half = 1 << (PRECISION_BITS - 1);
    size_t rw = (size_t)w * 3;
    for (int y = 0; y < dh; y++) {
        int ymin = c->bounds[2 * y] - y0, n = c->bounds[2 * y + 1];
        const int32_t *k = c->k + (size_t)y * c->ksize;
        for (size_t i = 0; i < rw; i++)
            acc[i] = half;
        for (int t = 0; t < n; t++) {
            const uint8_t *row = src + (size_t)(ymin + t) * rw;
            int32_t kt = k[t];
            for (size_t i = 0; i < rw; i++)
                acc[i] += row[i] * kt;
        }
        uint8_t *out = dst + (size_t)y * rw;
        for (size_t i = 0; i < rw; i++)
            out[i] = clip8(acc[i]);
    }
}

int image_resize_region(const uint8_t *src, int sw, int sh, double x0, double y0, double x1,
                        double y1, uint8_t *dst, int dw, int dh)
{
    bool need_h = !(dw == sw && x0 == 0.0 && x1 == (double)sw);
    bool need_v = !(dh == sh && y0 == 0.0 && y1 == (double)sh);
    coeffs ch = {0}, cv = {0};
    uint8_t *tmp = NULL;
    int32_t *acc = NULL;
    int rc = ERR_NOMEM;
    if (need_h && coeffs_make(&ch, sw, x0, x1, dw)) goto out;
    if (need_h && sw >= ch.ksize) coeffs_fix_width(&ch, sw, dw);
    if (need_v && coeffs_make(&cv, sh, y0, y1, dh)) goto out;
    if (!need_h && !need_v) {
        memcpy(dst, src, (size_t)sw * sh * 3);
        rc = 0;
        goto out;
    }
    if (!need_v) {
        pass_h(src, sw, 0, sh, dst, dw, &ch);
        rc = 0;
        goto out;
    }
    acc = malloc(sizeof(int32_t) * (size_t)dw * 3);
    if (!acc) goto out;
    if (!need_h) {
        pass_v(src, sw, 0, dst, dh, &cv, acc);
        rc = 0;
        goto out;
    }
    /* Source rows the vertical pass reads. */
    int rmin = cv.bounds[0], rmax = cv.bounds[0] + cv.bounds[1];
    for (int y = 1; y < dh; y++) {
        int a = cv.bounds[2 * y], b = a + cv.bounds[2 * y + 1];
        if (a < rmin) rmin = a;
        if (b > rmax) rmax = b;
    }
    tmp = malloc((size_t)(rmax - rmin) * dw * 3);
    if (!tmp) goto out;
    pass_h(src, sw, rmin, rmax - rmin, tmp, dw, &ch);
    pass_v(tmp, dw, rmin, dst, dh, &cv, acc);
    rc = 0;
out:
    free(tmp);
    free(acc);
    coeffs_free(&ch);
    coeffs_free(&cv);
    return rc;
}

int image_resize(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh)
{
    return image_resize_region(src, sw, sh, 0.0, 0.0, sw, sh, dst, dw, dh);
}
