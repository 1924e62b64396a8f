/* Tests for worker/data/image.c and worker/data/resize.c: decoding of every JPEG kind
 * we promise (baseline RGB, grayscale, Adobe CMYK, progressive, 1x1, large
 * with DCT-domain downscaling), rejection of broken input, the antialiased
 * resize against a naive floating-point reference of the same filter, the
 * torchvision evaluation geometry and normalisation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "errors.h"
#include "image.h"
#include "util_jpeg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double mean_abs_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += fabs((double)a[i] - b[i]);
    return s / (double)n;
}

static void test_decode_rgb(void **state)
{
    (void)state;
    int w = 64, h = 48;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    tju_pattern(rgb, w, h, 3);
    size_t len;
    uint8_t *j = tju_encode(rgb, w, h, TJU_RGB, 95, false, &len);
    assert_non_null(j);
    image_u8 im;
    char msg[256];
    assert_int_equal(image_decode_jpeg(j, len, 0, &im, msg, sizeof msg), 0);
    assert_int_equal(im.w, w);
    assert_int_equal(im.h, h);
    assert_true(mean_abs_diff(im.px, rgb, (size_t)w * h * 3) < 2.0);
    int sw, sh;
    assert_int_equal(image_jpeg_size(j, len, &sw, &sh, msg, sizeof msg), 0);
    assert_int_equal(sw, w);
    assert_int_equal(sh, h);
    image_free(&im);
    assert_null(im.px);
    free(j);
    free(rgb);
}

static void test_decode_gray_to_rgb(void **state)
{
    (void)state;
    int w = 40, h = 30;
    uint8_t *g = malloc((size_t)w * h);
    for (int i = 0; i < w * h; i++)
        g[i] = (uint8_t)(i * 7 % 200 / 4 + 60);
    size_t len;
    uint8_t *j = tju_encode(g, w, h, TJU_GRAY, 100, false, &len);
    assert_non_null(j);
    image_u8 im;
    char msg[256];
    assert_int_equal(image_decode_jpeg(j, len, 0, &im, msg, sizeof msg), 0);
    assert_int_equal(im.w, w);
    double err = 0;
    for (int i = 0; i < w * h; i++) {
        assert_int_equal(im.px[3 * i], im.px[3 * i + 1]);
        assert_int_equal(im.px[3 * i], im.px[3 * i + 2]);
        err += fabs((double)im.px[3 * i] - g[i]);
    }
    assert_true(err / (w * h) < 2.0);
    image_free(&im);
    free(j);
    free(g);
}

static void test_decode_cmyk(void **state)
{
    (void)state;
    /* Left half red ink-free... in Adobe-inverted CMYK: red = no cyan ink
     * (255), full magenta and yellow (0), no black (255). Right half blue. */
    int w = 32, h = 16;
    uint8_t *c = malloc((size_t)w * h * 4);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = c + ((size_t)y * w + x) * 4;
            if (x < w / 2) {
                p[0] = 255, p[1] = 0, p[2] = 0, p[3] = 255; // red
            } else {
                p[0] = 0, p[1] = 0, p[2] = 255, p[3] = 255; // blue
            }
        }
    size_t len;
    uint8_t *j = tju_encode(c, w, h, TJU_CMYK, 100, false, &len);
    assert_non_null(j);
    image_u8 im;
    char msg[256];
    assert_int_equal(image_decode_jpeg(j, len, 0, &im, msg, sizeof msg), 0);
    const uint8_t *red = im.px + ((size_t)8 * w + 4) * 3;
    const uint8_t *blue = im.px + ((size_t)8 * w + 28) * 3;
    assert_true(red[0] > 240 && red[1] < 15 && red[2] < 15);
    assert_true(blue[0] < 15 && blue[1] < 15 && blue[2] > 240);
    image_free(&im);
    free(j);
    free(c);
}

static void test_progressive_equals_baseline(void **state)
{
    (void)state;
    int w = 80, h = 56;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    tju_pattern(rgb, w, h, 9);
    size_t l1, l2;
    uint8_t *b = tju_encode(rgb, w, h, TJU_RGB, 90, false, &l1);
    uint8_t *p = tju_encode(rgb, w, h, TJU_RGB, 90, true, &l2);
    assert_non_null(b);
    assert_non_null(p);
    assert_memory_not_equal(b, p, l1 < l2 ? l1 : l2); // really a different file
    image_u8 ib, ip;
    char msg[256];
    assert_int_equal(image_decode_jpeg(b, l1, 0, &ib, msg, sizeof msg), 0);
    assert_int_equal(image_decode_jpeg(p, l2, 0, &ip, msg, sizeof msg), 0);
    /* Same coefficients, different entropy coding: identical pixels. */
    assert_memory_equal(ib.px, ip.px, (size_t)w * h * 3);
    image_free(&ib);
    image_free(&ip);
    free(b);
    free(p);
    free(rgb);
}

static void test_decode_1x1(void **state)
{
    (void)state;
    uint8_t px[3] = {200, 100, 50};
    size_t len;
    uint8_t *j = tju_encode(px, 1, 1, TJU_RGB, 100, false, &len);
    image_u8 im;
    char msg[256];
    assert_int_equal(image_decode_jpeg(j, len, 256, &im, msg, sizeof msg), 0);
    assert_int_equal(im.w, 1);
    assert_int_equal(im.h, 1);
    assert_true(abs(im.px[0] - 200) < 4 && abs(im.px[1] - 100) < 4 && abs(im.px[2] - 50) < 4);
    /* And the evaluation view of it: a uniform 8x8 square. */
    uint8_t sq[8 * 8 * 3];
    assert_int_equal(image_resize_center_crop(&im, 9, 8, sq), 0);
    for (int i = 0; i < 64; i++)
        assert_memory_equal(sq + 3 * i, im.px, 3);
    image_free(&im);
    free(j);
}

static void test_large_dct_downscale(void **state)
{
    (void)state;
    /* 4000x3000, cheap to encode: a flat image at low quality. */
    int w = 4000, h = 3000;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    memset(rgb, 90, (size_t)w * h * 3);
    size_t len;
    uint8_t *j = tju_encode(rgb, w, h, TJU_RGB, 50, false, &len);
    free(rgb);
    assert_non_null(j);
    image_u8 im;
    char msg[256];
    /* Needs a shorter side of 256: 3000/8 = 375 >= 256, so 1/8 scale. */
    assert_int_equal(image_decode_jpeg(j, len, 256, &im, msg, sizeof msg), 0);
    assert_int_equal(im.w, 500);
    assert_int_equal(im.h, 375);
    assert_true(abs(im.px[0] - 90) <= 2);
    image_free(&im);
    /* Needs 1000: 3000/2 = 1500 >= 1000 but 3000/4 = 750 < 1000, so 1/2. */
    assert_int_equal(image_decode_jpeg(j, len, 1000, &im, msg, sizeof msg), 0);
    assert_int_equal(im.w, 2000);
    assert_int_equal(im.h, 1500);
    image_free(&im);
    free(j);
}

static void test_reject_broken(void **state)
{
    (void)state;
    image_u8 im;
    char msg[256];
    uint8_t junk[1000];
    for (int i = 0; i < 1000; i++)
        junk[i] = (uint8_t)(i * 131 + 7);
    assert_int_equal(image_decode_jpeg(junk, 0, 0, &im, msg, sizeof msg), ERR_DATA);
    assert_non_null(strstr(msg, "empty"));
    assert_int_equal(image_decode_jpeg(junk, sizeof junk, 0, &im, msg, sizeof msg), ERR_DATA);
    assert_null(im.px);
    int w = 64, h = 64;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    tju_pattern(rgb, w, h, 1);
    size_t len;
    uint8_t *j = tju_encode(rgb, w, h, TJU_RGB, 95, false, &len);
    /* Truncated in the middle of the scan. */
    assert_int_equal(image_decode_jpeg(j, len / 2, 0, &im, msg, sizeof msg), ERR_DATA);
    assert_null(im.px);
    /* Cut before the frame header: the header reader must fail too. */
    int sw = -5, sh = -5;
    assert_int_equal(image_jpeg_size(j, 20, &sw, &sh, msg, sizeof msg), ERR_DATA);
    assert_int_equal(sw, -5);
    assert_int_equal(image_load_jpeg("/nonexistent/x.jpg", 0, &im, msg, sizeof msg), ERR_IO);
    assert_non_null(strstr(msg, "/nonexistent/x.jpg"));
    free(j);
    free(rgb);
}

/* Naive reference of the triangle filter resize (Pillow's convention), in
 * doubles, one output pixel at a time. */
static void ref_resize(const uint8_t *src, int sw, int sh, double x0, double y0, double x1,
                       double y1, double *dst, int dw, int dh)
{
    double scx = (x1 - x0) / dw, scy = (y1 - y0) / dh;
    double fx = scx < 1 ? 1 : scx, fy = scy < 1 ? 1 : scy;
    for (int oy = 0; oy < dh; oy++)
        for (int ox = 0; ox < dw; ox++) {
            double cx = x0 + (ox + 0.5) * scx, cy = y0 + (oy + 0.5) * scy;
            double acc[3] = {0, 0, 0}, wsum = 0;
            for (int y = 0; y < sh; y++) {
                double wy = 1 - fabs((y + 0.5 - cy) / fy);
                if (wy <= 0) continue;
                for (int x = 0; x < sw; x++) {
                    double wx = 1 - fabs((x + 0.5 - cx) / fx);
                    if (wx <= 0) continue;
                    for (int c = 0; c < 3; c++)
                        acc[c] += wx * wy * src[((size_t)y * sw + x) * 3 + c];
                    wsum += wx * wy;
                }
            }
            for (int c = 0; c < 3; c++)
                dst[((size_t)oy * dw + ox) * 3 + c] = acc[c] / wsum;
        }
}

static void check_resize(int sw, int sh, double x0, double y0, double x1, double y1, int dw, int dh)
{
    uint8_t *src = malloc((size_t)sw * sh * 3);
    for (int i = 0; i < sw * sh * 3; i++)
        src[i] = (uint8_t)((i * 2654435761u) >> 24);
    uint8_t *dst = malloc((size_t)dw * dh * 3);
    double *ref = malloc(sizeof(double) * dw * dh * 3);
    assert_int_equal(image_resize_region(src, sw, sh, x0, y0, x1, y1, dst, dw, dh), 0);
    ref_resize(src, sw, sh, x0, y0, x1, y1, ref, dw, dh);
    /* Two 8-bit roundings (after each pass) against exact arithmetic. */
    for (int i = 0; i < dw * dh * 3; i++)
        assert_true(fabs(dst[i] - ref[i]) <= 1.5);
    free(src);
    free(dst);
    free(ref);
}

static void test_resize_matches_reference(void **state)
{
    (void)state;
    check_resize(40, 30, 0, 0, 40, 30, 13, 10);          // shrink ~3x: antialiased
    check_resize(17, 23, 0, 0, 17, 23, 40, 51);          // enlarge: bilinear
    check_resize(50, 20, 0, 0, 50, 20, 50, 7);           // one axis only
    check_resize(60, 45, 7.5, 3.25, 52.5, 41.0, 24, 24); // fractional box
    check_resize(9, 9, 0, 0, 9, 9, 1, 1);                // down to one pixel
}

static void test_resize_simd_equals_scalar(void **state)
{
    (void)state;
    const int cases[][4] = {
        {500, 375, 224, 224}, {41, 33, 13, 10}, {17, 23, 40, 51}, {9, 9, 1, 1}, {300, 64, 100, 64}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        int sw = cases[t][0], sh = cases[t][1], dw = cases[t][2], dh = cases[t][3];
        uint8_t *src = malloc((size_t)sw * sh * 3);
        for (int i = 0; i < sw * sh * 3; i++)
            src[i] = (uint8_t)((i * 2654435761u) >> 24);
        uint8_t *a = malloc((size_t)dw * dh * 3), *b = malloc((size_t)dw * dh * 3);
        double x0 = sw * 0.1, x1 = sw * 0.95, y0 = 0, y1 = sh;
        image_resize_set_simd(false);
        assert_int_equal(image_resize_region(src, sw, sh, x0, y0, x1, y1, a, dw, dh), 0);
        image_resize_set_simd(true);
        assert_int_equal(image_resize_region(src, sw, sh, x0, y0, x1, y1, b, dw, dh), 0);
        assert_memory_equal(a, b, (size_t)dw * dh * 3);
        free(src);
        free(a);
        free(b);
    }
}

static void test_resize_constant_and_identity(void **state)
{
    (void)state;
    int sw = 37, sh = 29;
    uint8_t *src = malloc((size_t)sw * sh * 3);
    for (int i = 0; i < sw * sh; i++)
        src[3 * i] = 17, src[3 * i + 1] = 128, src[3 * i + 2] = 250;
    uint8_t dst[11 * 64 * 3];
    assert_int_equal(image_resize(src, sw, sh, dst, 11, 64), 0);
    for (int i = 0; i < 11 * 64; i++) {
        assert_int_equal(dst[3 * i], 17);
        assert_int_equal(dst[3 * i + 1], 128);
        assert_int_equal(dst[3 * i + 2], 250);
    }
    for (int i = 0; i < sw * sh * 3; i++)
        src[i] = (uint8_t)(i * 31);
    uint8_t *same = malloc((size_t)sw * sh * 3);
    assert_int_equal(image_resize(src, sw, sh, same, sw, sh), 0);
    assert_memory_equal(same, src, (size_t)sw * sh * 3);
    free(same);
    free(src);
}

static void test_eval_geometry(void **state)
{
    (void)state;
    assert_int_equal(image_eval_size(224), 256);
    assert_int_equal(image_eval_size(32), 37);
    assert_int_equal(image_eval_size(28), 32);
    assert_int_equal(image_eval_size(299), 342);
    double x0, y0, x1, y1;
    /* 500x375 -> 341x256 (int(256*500/375) = 341); left = round(58.5) = 58
     * (half to even, as Python), top = 16. */
    image_center_box(500, 375, 256, 224, &x0, &y0, &x1, &y1);
    assert_float_equal(x0, 58 * 500.0 / 341, 1e-9);
    assert_float_equal(x1, 282 * 500.0 / 341, 1e-9);
    assert_float_equal(y0, 16 * 375.0 / 256, 1e-9);
    assert_float_equal(y1, 240 * 375.0 / 256, 1e-9);
    /* Portrait. */
    image_center_box(300, 400, 256, 224, &x0, &y0, &x1, &y1);
    assert_float_equal(x0, 16 * 300.0 / 256, 1e-9);
    /* 300x400 -> 256x341; top = round(58.5) = 58. */
    assert_float_equal(y0, 58 * 400.0 / 341, 1e-9);
    assert_float_equal(y1, 282 * 400.0 / 341, 1e-9);
    /* 400x300 -> 341x256 with crop 225: left = round(58) = 58, top = round(15.5) = 16. */
    image_center_box(400, 300, 256, 225, &x0, &y0, &x1, &y1);
    assert_float_equal(x0, 58 * 400.0 / 341, 1e-9);
    assert_float_equal(y0, 16 * 300.0 / 256, 1e-9);
}

static void test_normalize(void **state)
{
    (void)state;
    uint8_t px[2 * 3] = {0, 128, 255, 255, 0, 10};
    float out[6];
    image_normalize(px, 2, 1, NULL, out);
    assert_float_equal(out[0], (0.0f - 0.485f) / 0.229f, 1e-5);         // R of pixel 0
    assert_float_equal(out[1], (1.0f - 0.485f) / 0.229f, 1e-5);         // R of pixel 1
    assert_float_equal(out[2], (128 / 255.0f - 0.456f) / 0.224f, 1e-5); // G of pixel 0
    assert_float_equal(out[5], (10 / 255.0f - 0.406f) / 0.225f, 1e-5);  // B of pixel 1
}

static void test_preprocess_file(void **state)
{
    (void)state;
    char *dir = tju_tmpdir("img");
    assert_non_null(dir);
    char path[512];
    snprintf(path, sizeof path, "%s/a.jpg", dir);
    assert_int_equal(tju_write_pattern(path, 120, 90, 5), 0);
    int in = 64;
    float *out = malloc(sizeof(float) * 3 * in * in);
    char msg[512];
    const image_norm other = {{0.5f, 0.25f, 0.125f}, {0.3f, 0.2f, 0.1f}};
    assert_int_equal(image_preprocess_file(path, in, &other, false, out, msg, sizeof msg), 0);
    /* The same by hand, as a data set's evaluation batch holds it: decode,
     * the stored square of side 73 (short side resized, center square),
     * then its center 64 crop normalised with the given mean/std. */
    image_u8 im;
    int side = image_eval_size(in);
    assert_int_equal(image_load_jpeg(path, side, &im, msg, sizeof msg), 0);
    uint8_t *crop = malloc((size_t)side * side * 3);
    assert_int_equal(image_resize_center_crop(&im, side, side, crop), 0);
    float *want = malloc(sizeof(float) * 3 * in * in);
    image_eval_view(crop, side, in, &other, want);
    assert_memory_equal(out, want, sizeof(float) * 3 * in * in);
    int off = (int)nearbyint((side - in) / 2.0);
    uint8_t v = crop[((size_t)off * side + off) * 3 + 1]; // G of the view's first pixel
    assert_true(out[(size_t)in * in] == ((float)v / 255.0f - 0.25f) / 0.2f);
    /* NULL is ImageNet's. */
    assert_int_equal(image_preprocess_file(path, in, NULL, false, out, msg, sizeof msg), 0);
    image_eval_view(crop, side, in, &image_norm_imagenet, want);
    assert_memory_equal(out, want, sizeof(float) * 3 * in * in);
    /* --raw refuses a size mismatch, naming both sizes. */
    assert_int_equal(image_preprocess_file(path, in, NULL, true, out, msg, sizeof msg), ERR_DATA);
    assert_non_null(strstr(msg, "120x90"));
    snprintf(path, sizeof path, "%s/b.jpg", dir);
    assert_int_equal(tju_write_pattern(path, in, in, 6), 0);
    assert_int_equal(image_preprocess_file(path, in, NULL, true, out, msg, sizeof msg), 0);
    image_free(&im);
    free(crop);
    free(want);
    free(out);
    tju_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_rgb),
        cmocka_unit_test(test_decode_gray_to_rgb),
        cmocka_unit_test(test_decode_cmyk),
        cmocka_unit_test(test_progressive_equals_baseline),
        cmocka_unit_test(test_decode_1x1),
        cmocka_unit_test(test_large_dct_downscale),
        cmocka_unit_test(test_reject_broken),
        cmocka_unit_test(test_resize_matches_reference),
        cmocka_unit_test(test_resize_simd_equals_scalar),
        cmocka_unit_test(test_resize_constant_and_identity),
        cmocka_unit_test(test_eval_geometry),
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_preprocess_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
