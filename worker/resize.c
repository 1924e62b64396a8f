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
#include "image.h"

#include "errors.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS 22

typedef struct {
    int ksize;    // taps per output pixel (the widest)
    int *bounds;  // (out, 2): first source index and tap count per output
    int32_t *k;   // (out, ksize) fixed-point coefficients
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
        for (; x < ksize; x++) k[x] = 0;
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

/* Horizontal pass: rows [y0, y0 + nrows) of SRC (width SW) into DST (width
 * DW, nrows rows). */
static void pass_h(const uint8_t *src, int sw, int y0, int nrows, uint8_t *dst, int dw,
                   const coeffs *c)
{
    const int32_t half = 1 << (PRECISION_BITS - 1);
    for (int y = 0; y < nrows; y++) {
        const uint8_t *row = src + (size_t)(y0 + y) * sw * 3;
        uint8_t *out = dst + (size_t)y * dw * 3;
        for (int x = 0; x < dw; x++) {
            int xmin = c->bounds[2 * x], n = c->bounds[2 * x + 1];
            const int32_t *k = c->k + (size_t)x * c->ksize;
            const uint8_t *p = row + (size_t)xmin * 3;
            int32_t r = half, g = half, b = half;
            for (int i = 0; i < n; i++) {
                r += p[3 * i] * k[i];
                g += p[3 * i + 1] * k[i];
                b += p[3 * i + 2] * k[i];
            }
            out[3 * x] = clip8(r);
            out[3 * x + 1] = clip8(g);
            out[3 * x + 2] = clip8(b);
        }
    }
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
        for (size_t i = 0; i < rw; i++) acc[i] = half;
        for (int t = 0; t < n; t++) {
            const uint8_t *row = src + (size_t)(ymin + t) * rw;
            int32_t kt = k[t];
            for (size_t i = 0; i < rw; i++) acc[i] += row[i] * kt;
        }
        uint8_t *out = dst + (size_t)y * rw;
        for (size_t i = 0; i < rw; i++) out[i] = clip8(acc[i]);
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
