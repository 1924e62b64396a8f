/* augment.c — training augmentation of cached squares (include/image.h;
 * their evaluation view is image_eval_view in image.c).
 *
 * Design notes:
 *  - The crop, flip and rotation are folded into one affine map from output
 *    pixel centers to source coordinates, sampled bilinearly: one pass over
 *    the output, no intermediate images. Coordinates step in 16.16 fixed
 *    point and the interpolation uses 8-bit weights in integers (within one
 *    grey level of exact bilinear; about 3x faster than the float version),
 *    so results are bit-identical on every x86-64 build. The largest shrink a crop can ask for
 *    is side/input = 1/0.875 (the cached square is image_eval_size(input)),
 *    so bilinear sampling needs no extra antialiasing here.
 *  - The random resized crop draws its box exactly as torchvision's
 *    RandomResizedCrop.get_params (10 tries, then the whole square, which has
 *    ratio 1 and is always inside the ratio range). The fine-tuning default
 *    scale range is (0.35, 1) rather than ImageNet training's (0.08, 1):
 *    pretrained features need the object to stay recognisable.
 *  - Small inputs (<= 64 px, CIFAR/MNIST-like) use pad-and-crop: the
 *    evaluation crop shifted by up to `pad` pixels. The cached square is a bit
 *    larger than the crop, so real pixels fill most of the shift; only what
 *    falls outside the square takes the fill value.
 *  - The fill value is the normalisation's mean colour, which normalises to
 *    0 — the same as zero padding of a normalised tensor.
 *  - Colour jitter works on the sampled [0, 1] values: brightness multiplies,
 *    contrast blends with the mean gray (0.299 R + 0.587 G + 0.114 B) of the
 *    brightened view; both clamp to [0, 1] like torchvision.
 *  - Random erasing ("erase") follows torchvision's RandomErasing with its
 *    defaults (p 0.5, scale (0.02, 0.33), ratio (0.3, 3.3), value 0 on the
 *    normalised view) except that a box too large for the view is clamped
 *    to it instead of redrawn up to 10 times: a fixed five draws per image
 *    keep the stream's length independent of the image. It runs last, on
 *    the normalised output, so it erases to the mean colour. */
#include "image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void image_augment_defaults(augment_opts *o)
{
    o->scale_min = 0.35;
    o->scale_max = 1.0;
    o->ratio_min = 3.0 / 4.0;
    o->ratio_max = 4.0 / 3.0;
    o->flip_p = 0.5;
    o->rotate_deg = 10.0;
    o->brightness = 0.2;
    o->contrast = 0.2;
    o->small_input = 64;
    o->pad = 4;
    o->erase_p = 0.0;
    o->erase_scale_min = 0.02;
    o->erase_scale_max = 0.33;
    o->erase_ratio_min = 0.3;
    o->erase_ratio_max = 3.3;
}

/* Random erasing of the normalised view OUT (3, N, N): five draws, then
 * maybe one box set to 0 in every channel (see the design notes). */
static void erase_box(const augment_opts *o, rng_t *r, int n, float *out)
{
    double apply = rng_uniform(r);
    double frac = rng_range(r, o->erase_scale_min, o->erase_scale_max);
    double ar = exp(rng_range(r, log(o->erase_ratio_min), log(o->erase_ratio_max)));
    double ui = rng_uniform(r), uj = rng_uniform(r);
    if (apply >= o->erase_p) return;
    double area = frac * n * n;
    int h = (int)nearbyint(sqrt(area * ar)), w = (int)nearbyint(sqrt(area / ar));
    h = h < 1 ? 1 : h > n ? n : h;
    w = w < 1 ? 1 : w > n ? n : w;
    int top = (int)(ui * (n - h + 1)), left = (int)(uj * (n - w + 1));
    size_t np = (size_t)n * n;
    for (int k = 0; k < 3; k++)
        for (int y = top; y < top + h; y++)
            memset(out + k * np + (size_t)y * n + left, 0, (size_t)w * sizeof(float));
}

void image_augment_light(augment_opts *o)
{
    image_augment_defaults(o);
    o->rotate_deg = 0.0;
    o->brightness = 0.0;
    o->contrast = 0.0;
}

void image_augment_erase(augment_opts *o)
{
    image_augment_light(o);
    o->erase_p = 0.5;
}

/* torchvision RandomResizedCrop.get_params on an SS x SS square: box
 * (left, top, width, height) in pixels. */
static void rrc_box(int ss, const augment_opts *o, rng_t *r, int *left, int *top, int *w, int *h)
{
    double area = (double)ss * ss;
    double lr0 = log(o->ratio_min), lr1 = log(o->ratio_max);
    for (int t = 0; t < 10; t++) {
        double target = area * rng_range(r, o->scale_min, o->scale_max);
        double ar = exp(rng_range(r, lr0, lr1));
        int cw = (int)nearbyint(sqrt(target * ar));
        int chh = (int)nearbyint(sqrt(target / ar));
        if (cw > 0 && cw <= ss && chh > 0 && chh <= ss) {
            *top = (int)rng_int(r, 0, ss - chh);
            *left = (int)rng_int(r, 0, ss - cw);
            *w = cw;
            *h = chh;
            return;
        }
    }
    *left = 0;
    *top = 0;
    *w = ss;
    *h = ss;
}

void image_augment(const uint8_t *src, int ss, int out_size, const augment_opts *o,
                   const image_norm *norm, rng_t *r, float *out)
{
    augment_opts def;
    if (!norm) norm = &image_norm_imagenet;
    if (!o) {
        image_augment_defaults(&def);
        o = &def;
    }
    /* 1. The crop box in source pixels. */
    double bx, by, bw, bh;
    if (out_size <= o->small_input) {
        int off = (int)nearbyint((ss - out_size) / 2.0);
        int dx = (int)rng_int(r, -o->pad, o->pad);
        int dy = (int)rng_int(r, -o->pad, o->pad);
        bx = off + dx;
        by = off + dy;
        bw = bh = out_size;
    } else {
        int left, top, w, h;
        rrc_box(ss, o, r, &left, &top, &w, &h);
        bx = left;
        by = top;
        bw = w;
        bh = h;
    }
    bool flip = rng_uniform(r) < o->flip_p;
    double angle = rng_range(r, -o->rotate_deg, o->rotate_deg) * M_PI / 180.0;
    double bright = rng_range(r, 1.0 - o->brightness, 1.0 + o->brightness);
    double contrast = rng_range(r, 1.0 - o->contrast, 1.0 + o->contrast);

    /* 2. Affine map: output pixel center (u + 0.5, v + 0.5) -> offset from
     * the box center in box pixels (flipped), rotated, then into the source;
     * minus 0.5 turns it into the bilinear sampling coordinate. */
    double sx = bw / out_size, sy = bh / out_size;
    double ca = cos(angle), sa = sin(angle);
    double fx = flip ? -sx : sx;
    /* src_x = cx + ca*dx - sa*dy, src_y = cy + sa*dx + ca*dy,
     * dx = fx*(u + 0.5 - out/2), dy = sy*(v + 0.5 - out/2). */
    double cx = bx + bw / 2.0 - 0.5, cy = by + bh / 2.0 - 0.5;
    double half = out_size / 2.0;
    double a_u = ca * fx, a_v = -sa * sy; // d src_x / du, / dv
    double b_u = sa * fx, b_v = ca * sy;  // d src_y / du, / dv
    double x00 = cx + a_u * (0.5 - half) + a_v * (0.5 - half);
    double y00 = cy + b_u * (0.5 - half) + b_v * (0.5 - half);

    const float fill[3] = {norm->mean[0], norm->mean[1], norm->mean[2]};
    size_t np = (size_t)out_size * out_size;
    float *R = out, *G = out + np, *B = out + 2 * np;
    const float fb = (float)bright;
    /* Bilinear sampling in 16.16 fixed point with 8-bit weights. Coordinates
     * carry +1.0 so they stay positive (the sample point is never below
     * -0.5 when inside); inside means X in [0.5, ss + 0.5] in those units. */
    const int32_t one = 1 << 16;
    const int32_t lo = one / 2, hi = (int32_t)ss * one + one / 2;
    const int32_t du = (int32_t)lrint(a_u * one), dv = (int32_t)lrint(b_u * one);
    const float scale = fb / (255.0f * 65536.0f);
    const size_t rs = (size_t)ss * 3;
    double gray_sum = 0.0;
    for (int v = 0; v < out_size; v++) {
        int32_t X = (int32_t)lrint((x00 + a_v * v + 1.0) * one);
        int32_t Y = (int32_t)lrint((y00 + b_v * v + 1.0) * one);
        size_t o_row = (size_t)v * out_size;
        float row_gray = 0.0f;
        for (int u = 0; u < out_size; u++, X += du, Y += dv) {
            float px0, px1, px2;
            if (X < lo || Y < lo || X > hi || Y > hi) {
                px0 = fill[0] * fb;
                px1 = fill[1] * fb;
                px2 = fill[2] * fb;
            } else {
                /* Rounded to the nearest 1/256 pixel. */
                int32_t Xr = X + 128, Yr = Y + 128;
                int ix0 = (Xr >> 16) - 1, iy0 = (Yr >> 16) - 1;
                int wx = (Xr >> 8) & 0xff, wy = (Yr >> 8) & 0xff;
                int ix1 = ix0 + 1, iy1 = iy0 + 1;
                if (ix0 < 0) ix0 = 0;
                if (iy0 < 0) iy0 = 0;
                if (ix1 > ss - 1) ix1 = ss - 1;
                if (iy1 > ss - 1) iy1 = ss - 1;
                const uint8_t *r0 = src + (size_t)iy0 * rs, *r1 = src + (size_t)iy1 * rs;
                const uint8_t *p00 = r0 + ix0 * 3, *p01 = r0 + ix1 * 3;
                const uint8_t *p10 = r1 + ix0 * 3, *p11 = r1 + ix1 * 3;
                int32_t t0 = (p00[0] << 8) + wx * (p01[0] - p00[0]);
                int32_t b0 = (p10[0] << 8) + wx * (p11[0] - p10[0]);
                int32_t t1 = (p00[1] << 8) + wx * (p01[1] - p00[1]);
                int32_t b1 = (p10[1] << 8) + wx * (p11[1] - p10[1]);
                int32_t t2 = (p00[2] << 8) + wx * (p01[2] - p00[2]);
                int32_t b2 = (p10[2] << 8) + wx * (p11[2] - p10[2]);
                px0 = (float)((t0 << 8) + wy * (b0 - t0)) * scale;
                px1 = (float)((t1 << 8) + wy * (b1 - t1)) * scale;
                px2 = (float)((t2 << 8) + wy * (b2 - t2)) * scale;
            }
            px0 = px0 > 1.0f ? 1.0f : px0;
            px1 = px1 > 1.0f ? 1.0f : px1;
            px2 = px2 > 1.0f ? 1.0f : px2;
            row_gray += 0.299f * px0 + 0.587f * px1 + 0.114f * px2;
            R[o_row + u] = px0;
            G[o_row + u] = px1;
            B[o_row + u] = px2;
        }
        gray_sum += row_gray;
    }
    /* 3. Contrast around the mean gray, clamp, normalise. */
    float m = (float)(gray_sum / (double)np);
    float c = (float)contrast, cm = (1.0f - c) * m;
    float *ch[3] = {R, G, B};
    for (int k = 0; k < 3; k++) {
        float inv = 1.0f / norm->std[k], mean = norm->mean[k];
        float *p = ch[k];
        for (size_t i = 0; i < np; i++) {
            float t = c * p[i] + cm;
            t = t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
            p[i] = (t - mean) * inv;
        }
    }
    if (o->erase_p > 0.0) erase_box(o, r, out_size, out);
}
