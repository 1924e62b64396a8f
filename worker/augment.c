/* augment.c — training augmentation and the evaluation view of cached
 * squares (include/image.h).
 *
 * Design notes:
 *  - The crop, flip and rotation are folded into one affine map from output
 *    pixel centers to source coordinates, sampled bilinearly: one pass over
 *    the output, no intermediate images. The largest shrink a crop can ask for
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
 *  - The fill value is the ImageNet mean colour, which normalises to 0 — the
 *    same as zero padding of a normalised tensor.
 *  - Colour jitter works on the sampled [0, 1] values: brightness multiplies,
 *    contrast blends with the mean gray (0.299 R + 0.587 G + 0.114 B) of the
 *    brightened view; both clamp to [0, 1] like torchvision. */
#include "image.h"

#include <math.h>
#include <stdlib.h>

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
}

void image_eval_view(const uint8_t *src, int ss, int out_size, float *out)
{
    float lut[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) lut[c][v] = ((float)v / 255.0f - image_mean[c]) / image_std[c];
    int off = (int)nearbyint((ss - out_size) / 2.0);
    size_t np = (size_t)out_size * out_size;
    float *r = out, *g = out + np, *b = out + 2 * np;
    for (int y = 0; y < out_size; y++) {
        const uint8_t *row = src + ((size_t)(y + off) * ss + off) * 3;
        size_t o = (size_t)y * out_size;
        for (int x = 0; x < out_size; x++) {
            r[o + x] = lut[0][row[3 * x]];
            g[o + x] = lut[1][row[3 * x + 1]];
            b[o + x] = lut[2][row[3 * x + 2]];
        }
    }
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

void image_augment(const uint8_t *src, int ss, int out_size, const augment_opts *o, rng_t *r,
                   float *out)
{
    augment_opts def;
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

    const float fill[3] = {image_mean[0], image_mean[1], image_mean[2]};
    size_t np = (size_t)out_size * out_size;
    float *R = out, *G = out + np, *B = out + 2 * np;
    const float inv255 = 1.0f / 255.0f;
    double gray_sum = 0.0;
    for (int v = 0; v < out_size; v++) {
        double xs = x00 + a_v * v, ys = y00 + b_v * v;
        size_t o_row = (size_t)v * out_size;
        for (int u = 0; u < out_size; u++, xs += a_u, ys += b_u) {
            float px[3];
            if (xs < -0.5 || ys < -0.5 || xs > ss - 0.5 || ys > ss - 0.5) {
                px[0] = fill[0];
                px[1] = fill[1];
                px[2] = fill[2];
            } else {
                double fx0 = floor(xs), fy0 = floor(ys);
                float wx = (float)(xs - fx0), wy = (float)(ys - fy0);
                int ix0 = (int)fx0, iy0 = (int)fy0;
                int ix1 = ix0 + 1, iy1 = iy0 + 1;
                if (ix0 < 0) ix0 = 0;
                if (iy0 < 0) iy0 = 0;
                if (ix1 > ss - 1) ix1 = ss - 1;
                if (iy1 > ss - 1) iy1 = ss - 1;
                const uint8_t *p00 = src + ((size_t)iy0 * ss + ix0) * 3;
                const uint8_t *p01 = src + ((size_t)iy0 * ss + ix1) * 3;
                const uint8_t *p10 = src + ((size_t)iy1 * ss + ix0) * 3;
                const uint8_t *p11 = src + ((size_t)iy1 * ss + ix1) * 3;
                for (int c = 0; c < 3; c++) {
                    float top = p00[c] + wx * (p01[c] - p00[c]);
                    float bot = p10[c] + wx * (p11[c] - p10[c]);
                    px[c] = (top + wy * (bot - top)) * inv255;
                }
            }
            for (int c = 0; c < 3; c++) {
                float t = px[c] * (float)bright;
                px[c] = t > 1.0f ? 1.0f : t;
            }
            gray_sum += 0.299f * px[0] + 0.587f * px[1] + 0.114f * px[2];
            R[o_row + u] = px[0];
            G[o_row + u] = px[1];
            B[o_row + u] = px[2];
        }
    }
    /* 3. Contrast around the mean gray, clamp, normalise. */
    float m = (float)(gray_sum / (double)np);
    float c = (float)contrast, cm = (1.0f - c) * m;
    float *ch[3] = {R, G, B};
    for (int k = 0; k < 3; k++) {
        float inv = 1.0f / image_std[k], mean = image_mean[k];
        float *p = ch[k];
        for (size_t i = 0; i < np; i++) {
            float t = c * p[i] + cm;
            t = t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
            p[i] = (t - mean) * inv;
        }
    }
}
