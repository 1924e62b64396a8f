/* Tests for worker/data/augment.c: determinism of image_augment for a given rng
 * state, the evaluation view, pad-and-crop as an exact integer shift of the
 * evaluation view, flips, the "light" setting (shift and flip only), the
 * random resized crop against a naive bilinear reference, colour jitter on
 * flat images, and the value range. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "image.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *make_square(int ss, unsigned seed)
{
    uint8_t *p = malloc((size_t)ss * ss * 3);
    for (int i = 0; i < ss * ss * 3; i++)
        p[i] = (uint8_t)(((unsigned)i * 2654435761u + seed * 97u) >> 24);
    return p;
}

static float norm(int c, double v01)
{
    return (float)((v01 - image_mean[c]) / image_std[c]);
}

static void no_aug(augment_opts *o)
{
    image_augment_defaults(o);
    o->scale_min = o->scale_max = 1.0;
    o->ratio_min = o->ratio_max = 1.0;
    o->flip_p = 0.0;
    o->rotate_deg = 0.0;
    o->brightness = 0.0;
    o->contrast = 0.0;
    o->pad = 0;
}

static void test_deterministic(void **state)
{
    (void)state;
    int ss = 37, out = 32;
    uint8_t *src = make_square(ss, 1);
    for (int big = 0; big < 2; big++) {
        int o = big ? 80 : out;
        int s = big ? 91 : ss;
        uint8_t *sq = big ? make_square(s, 2) : src;
        size_t m = (size_t)3 * o * o;
        float *x = malloc(m * 4), *y = malloc(m * 4), *z = malloc(m * 4);
        rng_t r1, r2, r3;
        rng_seed(&r1, 77);
        rng_seed(&r2, 77);
        rng_seed(&r3, 78);
        image_augment(sq, s, o, NULL, NULL, &r1, x);
        image_augment(sq, s, o, NULL, NULL, &r2, y);
        image_augment(sq, s, o, NULL, NULL, &r3, z);
        assert_memory_equal(x, y, m * 4);
        assert_memory_not_equal(x, z, m * 4);
        for (size_t i = 0; i < m; i++) {
            int ch = (int)(i / ((size_t)o * o));
            assert_true(isfinite(x[i]));
            assert_true(x[i] >= norm(ch, 0.0) - 1e-4f && x[i] <= norm(ch, 1.0) + 1e-4f);
        }
        free(x);
        free(y);
        free(z);
        if (big) free(sq);
    }
    free(src);
}

static void test_eval_view(void **state)
{
    (void)state;
    int ss = 37, out = 32;
    uint8_t *src = make_square(ss, 3);
    float *v = malloc(sizeof(float) * 3 * out * out);
    image_eval_view(src, ss, out, NULL, v);
    int off = 2; // round(2.5) = 2, half to even like torchvision
    for (int y = 0; y < out; y++)
        for (int x = 0; x < out; x++)
            for (int c = 0; c < 3; c++) {
                uint8_t p = src[((size_t)(y + off) * ss + x + off) * 3 + c];
                assert_float_equal(v[(size_t)c * out * out + (size_t)y * out + x],
                                   norm(c, p / 255.0), 1e-5);
            }
    free(v);
    free(src);
}

static void test_small_noaug_is_eval_view(void **state)
{
    (void)state;
    int ss = 37, out = 32;
    uint8_t *src = make_square(ss, 4);
    size_t n = (size_t)3 * out * out;
    float *a = malloc(n * 4), *e = malloc(n * 4);
    augment_opts o;
    no_aug(&o);
    rng_t r;
    rng_seed(&r, 5);
    image_augment(src, ss, out, &o, NULL, &r, a);
    image_eval_view(src, ss, out, NULL, e);
    for (size_t i = 0; i < n; i++)
        assert_float_equal(a[i], e[i], 1e-5);
    /* Flip only: mirrored columns. */
    o.flip_p = 1.0;
    image_augment(src, ss, out, &o, NULL, &r, a);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < out; y++)
            for (int x = 0; x < out; x++) {
                size_t base = (size_t)c * out * out + (size_t)y * out;
                assert_float_equal(a[base + x], e[base + out - 1 - x], 1e-5);
            }
    free(a);
    free(e);
    free(src);
}

/* Whether A (3, OUT, OUT) is the SS square SRC shifted by (DX, DY) from the
 * evaluation crop (offset 2 for 37 -> 32), mirrored when FLIP, with the fill
 * (0 after normalisation) outside the square. */
static int is_shift(const float *a, const uint8_t *src, int ss, int out, int dx, int dy, int flip)
{
    for (int y = 0; y < out; y++)
        for (int x = 0; x < out; x++) {
            int sx = (flip ? out - 1 - x : x) + 2 + dx, sy = y + 2 + dy;
            for (int c = 0; c < 3; c++) {
                float got = a[(size_t)c * out * out + (size_t)y * out + x];
                float want = (sx < 0 || sy < 0 || sx >= ss || sy >= ss)
                                 ? 0.0f
                                 : norm(c, src[((size_t)sy * ss + sx) * 3 + c] / 255.0);
                if (fabsf(got - want) > 1e-4f) return 0;
            }
        }
    return 1;
}

/* Finds the shift (and with FLIPS, the mirror) that A is; returns 1 and sets
 * *SHIFTED / *FLIPPED when one matches. */
static int find_shift(const float *a, const uint8_t *src, int ss, int out, int flips, int *shifted,
                      int *flipped)
{
    for (int f = 0; f <= flips; f++)
        for (int dy = -4; dy <= 4; dy++)
            for (int dx = -4; dx <= 4; dx++)
                if (is_shift(a, src, ss, out, dx, dy, f)) {
                    *shifted = dx || dy;
                    *flipped = f;
                    return 1;
                }
    return 0;
}

static void test_pad_and_crop_is_shift(void **state)
{
    (void)state;
    int ss = 37, out = 32;
    uint8_t *src = make_square(ss, 6);
    size_t n = (size_t)3 * out * out;
    float *a = malloc(n * 4);
    augment_opts o;
    no_aug(&o);
    o.pad = 4;
    int seen_nonzero = 0;
    for (uint64_t seed = 0; seed < 12; seed++) {
        rng_t r;
        rng_seed(&r, seed);
        image_augment(src, ss, out, &o, NULL, &r, a);
        int shifted, flipped;
        assert_true(find_shift(a, src, ss, out, 0, &shifted, &flipped));
        seen_nonzero |= shifted;
    }
    assert_true(seen_nonzero);
    free(a);
    free(src);
}

/* augment "light": every view is an exact shift of the evaluation crop,
 * mirrored or not (no rotation, no colour change); both mirror states and a
 * non-zero shift occur; it draws as many random numbers as the defaults, so
 * a trial's later draws do not depend on the setting. */
static void test_light_is_shift_and_flip(void **state)
{
    (void)state;
    int ss = 37, out = 32;
    uint8_t *src = make_square(ss, 9);
    size_t n = (size_t)3 * out * out;
    float *a = malloc(n * 4), *b = malloc(n * 4);
    augment_opts light, full;
    image_augment_light(&light);
    image_augment_defaults(&full);
    assert_true(light.flip_p == full.flip_p && light.pad == full.pad);
    int seen_shift = 0, seen_flip = 0, seen_plain = 0;
    for (uint64_t seed = 0; seed < 16; seed++) {
        rng_t r, rf;
        rng_seed(&r, seed);
        rng_seed(&rf, seed);
        image_augment(src, ss, out, &light, NULL, &r, a);
        image_augment(src, ss, out, &full, NULL, &rf, b);
        assert_true(rng_next(&r) == rng_next(&rf));
        assert_memory_not_equal(a, b, n * 4); // the full setting rotates and jitters
        int shifted, flipped;
        assert_true(find_shift(a, src, ss, out, 1, &shifted, &flipped));
        seen_shift |= shifted;
        seen_flip |= flipped;
        seen_plain |= !flipped;
    }
    assert_true(seen_shift && seen_flip && seen_plain);
    free(a);
    free(b);
    free(src);
}

/* augment "erase": the "light" view with, about half the time, one
 * rectangle set to 0 (the normalised mean) in every channel; it draws five
 * more numbers than "light" whether or not it erases. */
static void test_erase_is_light_plus_box(void **state)
{
    (void)state;
    int ss = 37, out = 32;
    uint8_t *src = make_square(ss, 5);
    size_t np = (size_t)out * out, n = 3 * np;
    float *a = malloc(n * 4), *b = malloc(n * 4);
    augment_opts light, erase;
    image_augment_light(&light);
    image_augment_erase(&erase);
    assert_true(erase.erase_p == 0.5 && light.erase_p == 0.0);
    int erased = 0, min_area = out * out, max_area = 0;
    for (uint64_t seed = 0; seed < 64; seed++) {
        rng_t r, rl;
        rng_seed(&r, seed);
        rng_seed(&rl, seed);
        image_augment(src, ss, out, &erase, NULL, &r, a);
        image_augment(src, ss, out, &light, NULL, &rl, b);
        for (int k = 0; k < 5; k++)
            (void)rng_next(&rl);
        assert_true(rng_next(&r) == rng_next(&rl));
        /* The bounding box of the pixels that differ, over all channels. */
        int x0 = out, y0 = out, x1 = -1, y1 = -1;
        for (size_t i = 0; i < n; i++)
            if (a[i] != b[i]) {
                int y = (int)(i % np) / out, x = (int)(i % np) % out;
                x0 = x < x0 ? x : x0;
                y0 = y < y0 ? y : y0;
                x1 = x > x1 ? x : x1;
                y1 = y > y1 ? y : y1;
            }
        if (x1 < 0) continue;
        erased++;
        int area = (x1 - x0 + 1) * (y1 - y0 + 1);
        min_area = area < min_area ? area : min_area;
        max_area = area > max_area ? area : max_area;
        for (int c = 0; c < 3; c++)
            for (int y = y0; y <= y1; y++)
                for (int x = x0; x <= x1; x++)
                    assert_true(a[(size_t)c * np + (size_t)y * out + x] == 0.0f);
    }
    assert_in_range(erased, 16, 48);
    /* Area fractions 0.02 .. 0.33 of 1024 pixels (clamped sides, rounding;
     * a box can match the light view at its edge only where that is 0). */
    assert_true(min_area >= 10 && max_area <= 420);
    assert_true(max_area > 4 * min_area);
    free(a);
    free(b);
    free(src);
}

static void test_resized_crop_whole_matches_bilinear(void **state)
{
    (void)state;
    /* Scale and ratio pinned to 1: the crop is the whole square, resized to
     * the output with bilinear sampling at pixel centers (reference in
     * doubles below). */
    int ss = 91, out = 80;
    uint8_t *src = make_square(ss, 7);
    size_t n = (size_t)3 * out * out;
    float *a = malloc(n * 4);
    augment_opts o;
    no_aug(&o);
    rng_t r;
    rng_seed(&r, 9);
    image_augment(src, ss, out, &o, NULL, &r, a);
    double s = (double)ss / out;
    for (int y = 0; y < out; y++)
        for (int x = 0; x < out; x++) {
            double fx = (x + 0.5) * s - 0.5, fy = (y + 0.5) * s - 0.5;
            int x0 = (int)floor(fx), y0 = (int)floor(fy);
            double wx = fx - x0, wy = fy - y0;
            int x1 = x0 + 1 < ss ? x0 + 1 : ss - 1, y1 = y0 + 1 < ss ? y0 + 1 : ss - 1;
            if (x0 < 0) x0 = 0;
            if (y0 < 0) y0 = 0;
            for (int c = 0; c < 3; c++) {
#define P(X, Y) src[((size_t)(Y)*ss + (X)) * 3 + c]
                double v = (1 - wy) * ((1 - wx) * P(x0, y0) + wx * P(x1, y0)) +
                           wy * ((1 - wx) * P(x0, y1) + wx * P(x1, y1));
#undef P
                /* 8-bit interpolation weights: within one grey level. */
                assert_float_equal(a[(size_t)c * out * out + (size_t)y * out + x],
                                   norm(c, v / 255.0), 1.0 / 255.0 / image_std[c]);
            }
        }
    free(a);
    free(src);
}

static void test_jitter_on_flat_image(void **state)
{
    (void)state;
    int ss = 91, out = 80;
    uint8_t *src = malloc((size_t)ss * ss * 3);
    memset(src, 128, (size_t)ss * ss * 3);
    size_t n = (size_t)3 * out * out;
    float *a = malloc(n * 4);
    augment_opts o;
    image_augment_defaults(&o);
    o.rotate_deg = 0.0; // rotation would bring in fill at the corners
    double lo = 1e9, hi = -1e9;
    for (uint64_t seed = 0; seed < 20; seed++) {
        rng_t r;
        rng_seed(&r, seed);
        image_augment(src, ss, out, &o, NULL, &r, a);
        /* Flat in, flat out: contrast does nothing, brightness scales. */
        double v = a[0] * image_std[0] + image_mean[0];
        for (size_t i = 1; i < (size_t)out * out; i++)
            assert_float_equal(a[i], a[0], 1e-4);
        double b = v / (128 / 255.0);
        assert_true(b >= 0.8 - 1e-4 && b <= 1.2 + 1e-4);
        if (b < lo) lo = b;
        if (b > hi) hi = b;
    }
    assert_true(hi - lo > 0.1); // the factor really varies
    free(a);
    free(src);
}

static void test_rotation_brings_fill(void **state)
{
    (void)state;
    /* A white square rotated by up to 10 degrees: some corner pixels fall
     * outside the whole-square crop and take the fill (normalised 0). */
    int ss = 91, out = 80;
    uint8_t *src = malloc((size_t)ss * ss * 3);
    memset(src, 255, (size_t)ss * ss * 3);
    float *a = malloc(sizeof(float) * 3 * out * out);
    augment_opts o;
    no_aug(&o);
    o.rotate_deg = 10.0;
    int zeros = 0;
    for (uint64_t seed = 0; seed < 4; seed++) {
        rng_t r;
        rng_seed(&r, seed);
        image_augment(src, ss, out, &o, NULL, &r, a);
        for (int i = 0; i < out * out; i++)
            if (fabsf(a[i]) < 1e-6f) zeros++;
        /* The center stays white. */
        assert_float_equal(a[(out / 2) * out + out / 2], norm(0, 1.0), 1e-4);
    }
    assert_true(zeros > 0);
    free(a);
    free(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_eval_view),
        cmocka_unit_test(test_small_noaug_is_eval_view),
        cmocka_unit_test(test_pad_and_crop_is_shift),
        cmocka_unit_test(test_light_is_shift_and_flip),
        cmocka_unit_test(test_erase_is_light_plus_box),
        cmocka_unit_test(test_resized_crop_whole_matches_bilinear),
        cmocka_unit_test(test_jitter_on_flat_image),
        cmocka_unit_test(test_rotation_brings_fill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
