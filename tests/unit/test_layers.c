/* test_layers — the optimised kernels of worker/engine/layers.c against the naive
 * references of worker/engine/layers_ref.c on many shapes (stride 2, padding, 1x1,
 * 7x7, odd sizes, batch 1, non-square inputs), and every backward pass
 * against central finite differences of its forward pass on tiny shapes.
 *
 * Finite differences: the scalar checked is L = sum_i r_i * out_i for fixed
 * random r, evaluated in double from the float forward; with a step of 1e-2
 * (linear layers) or 1e-3 (batchnorm) the float rounding stays well below the
 * tolerance. Inputs of layers with a kink (ReLU, max-pool) are kept away from
 * it so a step never crosses one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "layers.h"
#include "pool.h"
#include "rng.h"
#include "winograd.h"
#include "winograd7.h"

static rng_t R;

static float *rnd(size_t n, float lo, float hi)
{
    float *x = malloc(sizeof(float) * (n ? n : 1));
    assert_non_null(x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)rng_range(&R, lo, hi);
    return x;
}

static float *zeros(size_t n)
{
    float *x = calloc(n ? n : 1, sizeof(float));
    assert_non_null(x);
    return x;
}

/* max |a-b| / (1 + max|b|) style check with a message naming WHAT. */
static void close_enough(const float *a, const float *b, size_t n, double tol, const char *what)
{
    double mx = 0, scale = 1e-6;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= mx)) {
            mx = d;
            at = i;
        }
        if (fabs(b[i]) > scale) scale = fabs(b[i]);
    }
    if (!(mx <= tol * (scale > 1 ? scale : 1))) {
        print_error("%s: max error %g at %zu (%g vs %g), scale %g\n", what, mx, at, a[at], b[at],
                    scale);
        fail();
    }
}

static double dot(const float *a, const float *r, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * r[i];
    return s;
}

/* ---------- conv2d ---------- */

typedef struct {
    int n, c, h, w, oc, kh, kw, stride, pad;
} cshape;

static const cshape conv_shapes[] = {
    {2, 3, 9, 9, 4, 3, 3, 1, 1},
    {1, 3, 7, 7, 5, 3, 3, 2, 1},
    {2, 3, 15, 13, 4, 7, 7, 2, 3},
    {3, 5, 6, 6, 7, 1, 1, 1, 0},
    {2, 6, 7, 9, 8, 1, 1, 2, 0},
    {1, 4, 5, 5, 3, 3, 3, 1, 0},
    {2, 2, 11, 5, 3, 5, 5, 1, 2},
    {2, 4, 8, 8, 6, 3, 3, 2, 1},
    {1, 1, 1, 1, 2, 1, 1, 1, 0},
    {2, 3, 4, 4, 2, 3, 3, 1, 1},
    {1, 8, 13, 13, 16, 3, 3, 1, 1},
    {2, 3, 10, 10, 3, 3, 1, 1, 1},
    {4, 16, 9, 9, 8, 3, 3, 1, 1},
    {2, 3, 3, 3, 4, 3, 3, 2, 1},
    /* large enough K that the column tiles split images and rows */
    {2, 64, 30, 30, 4, 3, 3, 1, 1},
    {3, 48, 21, 17, 5, 3, 3, 2, 1},
    {2, 40, 9, 40, 3, 5, 5, 1, 2},
    /* tiny maps where some kernel taps only ever read padding */
    {3, 6, 1, 1, 5, 3, 3, 1, 1},
    {2, 6, 2, 2, 5, 3, 3, 2, 1},
    {2, 3, 2, 2, 4, 7, 7, 2, 3},
    {2, 4, 1, 1, 3, 5, 5, 1, 2},
    {1, 3, 2, 2, 2, 3, 3, 1, 1},
    /* dense small-map path (fewer input pixels than taps) */
    {3, 5, 2, 2, 4, 3, 3, 1, 1},
    {2, 4, 2, 3, 3, 3, 3, 1, 1},
    {2, 3, 3, 2, 5, 5, 5, 2, 2},
    /* dense path, weight gradient per tap: more pairs of one tap (6 for the
     * centre on 2x3) than output channels (3), odd sizes */
    {5, 9, 3, 2, 3, 3, 3, 1, 1},
    {3, 7, 2, 3, 5, 3, 3, 1, 1},
    /* per-tap path on small maps with more pixels than taps (3x3 stride 2,
     * 4x4 -> 2x2 and 3x3 -> 2x2; 2x2 stride 1 on 3x3) */
    {3, 6, 4, 4, 5, 3, 3, 2, 1},
    {2, 5, 3, 3, 7, 3, 3, 2, 1},
    {2, 4, 3, 3, 3, 2, 2, 1, 0},
};

/* One convolution D against the reference: forward, dW accumulating onto a
 * non-zero start, dX overwritten then accumulated; LABEL names it. */
static void check_conv_vs_ref(const conv2d_desc *dd, const char *label)
{
    conv2d_desc d = *dd;
    size_t ni = (size_t)d.n * d.c * d.h * d.w, no = (size_t)d.n * d.oc * d.oh * d.ow;
    size_t nw = (size_t)d.oc * d.c * d.kh * d.kw;
    float *in = rnd(ni, -1, 1), *w = rnd(nw, -1, 1), *dout = rnd(no, -1, 1);
    float *o1 = zeros(no), *o2 = zeros(no);
    float *ws = zeros(conv2d_workspace_floats(&d));
    conv2d_forward(o1, in, w, &d, ws);
    conv2d_forward_ref(o2, in, w, &d);
    char what[96];
    snprintf(what, sizeof what, "conv forward %s", label);
    close_enough(o1, o2, no, 1e-5, what);
    float *dw1 = rnd(nw, -1, 1), *dw2 = malloc(sizeof(float) * nw);
    memcpy(dw2, dw1, sizeof(float) * nw);
    float *dx1 = rnd(ni, -1, 1), *dx2 = zeros(ni);
    conv2d_backward(dx1, dw1, dout, in, w, &d, ws, 0);
    conv2d_backward_ref(dx2, dw2, dout, in, w, &d, 0);
    snprintf(what, sizeof what, "conv dW %s", label);
    close_enough(dw1, dw2, nw, 1e-5, what);
    snprintf(what, sizeof what, "conv dX %s", label);
    close_enough(dx1, dx2, ni, 1e-5, what);
    conv2d_backward(dx1, NULL, dout, in, w, &d, ws, 1);
    conv2d_backward_ref(dx2, NULL, dout, in, w, &d, 1);
    snprintf(what, sizeof what, "conv dX accumulate %s", label);
    close_enough(dx1, dx2, ni, 1e-5, what);
    free(in), free(w), free(dout), free(o1), free(o2), free(ws), free(dw1), free(dw2), free(dx1),
        free(dx2);
}

static void test_conv_vs_ref(void **state)
{
    (void)state;
    for (size_t s = 0; s < sizeof conv_shapes / sizeof conv_shapes[0]; s++) {
        const cshape *c = &conv_shapes[s];
        conv2d_desc d;
        assert_int_equal(
            conv2d_desc_init(&d, c->n, c->c, c->h, c->w, c->oc, c->kh, c->kw, c->stride, c->pad),
            0);
        char label[32];
        snprintf(label, sizeof label, "shape %zu", s);
        check_conv_vs_ref(&d, label);
    }
}

/* Inception v3's non-square kernels with their paddings (1x7 pad (0, 3), 7x1
 * pad (3, 0), 1x3 pad (0, 1), 3x1 pad (1, 0)) on the map sizes they meet at
 * inputs 299 and 75 (17x17, 8x8, 3x3, 1x1: the dense and reduced paths), a
 * strided one, and VGG's wide 3x3 at large maps. */
static void test_conv_nonsquare(void **state)
{
    (void)state;
    static const int sh[][10] = {
        /* n, c, h, w, oc, kh, kw, stride, pad, padw */
        {2, 10, 17, 17, 12, 1, 7, 1, 0, 3},
        {2, 10, 17, 17, 12, 7, 1, 1, 3, 0},
        {2, 6, 8, 8, 5, 1, 3, 1, 0, 1},
        {2, 6, 8, 8, 5, 3, 1, 1, 1, 0},
        {3, 4, 3, 3, 5, 1, 7, 1, 0, 3},
        {3, 4, 3, 3, 5, 7, 1, 1, 3, 0},
        {2, 5, 1, 1, 3, 1, 3, 1, 0, 1},
        {2, 5, 1, 1, 3, 3, 1, 1, 1, 0},
        {2, 3, 9, 11, 4, 1, 7, 2, 0, 3},
        {1, 40, 12, 30, 6, 7, 1, 1, 3, 0},
        {1, 64, 56, 56, 8, 3, 3, 1, 1, 1},
        {1, 3, 224, 224, 4, 3, 3, 1, 1, 1},
        /* Inception's stem at width 2 (one or two channels on large maps) */
        {3, 1, 147, 147, 2, 3, 3, 1, 1, 1},
        {3, 2, 73, 73, 6, 3, 3, 1, 0, 0},
        {3, 1, 149, 149, 1, 3, 3, 1, 0, 0},
        {3, 3, 299, 299, 1, 3, 3, 2, 0, 0},
    };
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        const int *v = sh[s];
        conv2d_desc d;
        assert_int_equal(
            conv2d_desc_init_pad(&d, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]),
            0);
        char label[64];
        snprintf(label, sizeof label, "%dx%d pad (%d, %d) on %dx%d", v[5], v[6], v[8], v[9], v[2],
                 v[3]);
        check_conv_vs_ref(&d, label);
    }
}

typedef void (*wino_conv_fn)(float *, const float *, const float *, const conv2d_desc *, float *,
                             int, int);
typedef size_t (*wino_ws_fn)(const conv2d_desc *);
typedef void (*wino_wgrad_fn)(float *, const float *, const float *, const conv2d_desc *, float *);

/* One Winograd kernel on D (TAPS weights per channel pair) against the
 * reference: forward, forward accumulating, the flipped input gradient
 * (overwriting a non-zero start) and, given WGRAD, the weight gradient
 * accumulating onto one. */
static void check_wino_kernel(const conv2d_desc *dd, int taps, wino_conv_fn conv, wino_ws_fn wsf,
                              wino_wgrad_fn wgrad, const char *name)
{
    conv2d_desc d = *dd, t = *dd;
    t.c = d.oc;
    t.oc = d.c;
    size_t ni = (size_t)d.n * d.c * d.h * d.w, no = (size_t)d.n * d.oc * d.oh * d.ow;
    size_t nw = (size_t)d.oc * d.c * taps;
    size_t nws = wsf(&d), nwt = wsf(&t);
    float *in = rnd(ni, -1, 1), *w = rnd(nw, -1, 1), *dout = rnd(no, -1, 1);
    float *o1 = rnd(no, -1, 1), *o2 = zeros(no), *ws = zeros(nws > nwt ? nws : nwt);
    char what[64];
    conv(o1, in, w, &d, ws, 0, 0);
    conv2d_forward_ref(o2, in, w, &d);
    snprintf(what, sizeof what, "%s forward", name);
    close_enough(o1, o2, no, 1e-5, what);
    conv(o1, in, w, &d, ws, 0, 1);
    for (size_t i = 0; i < no; i++)
        o2[i] *= 2;
    snprintf(what, sizeof what, "%s forward accumulate", name);
    close_enough(o1, o2, no, 1e-5, what);
    float *dx1 = rnd(ni, -1, 1), *dx2 = zeros(ni);
    conv(dx1, dout, w, &t, ws, 1, 0);
    conv2d_backward_ref(dx2, NULL, dout, in, w, &d, 0);
    snprintf(what, sizeof what, "%s input gradient", name);
    close_enough(dx1, dx2, ni, 1e-5, what);
    if (wgrad) {
        float *dw1 = rnd(nw, -1, 1), *dw2 = malloc(sizeof(float) * nw);
        memcpy(dw2, dw1, sizeof(float) * nw);
        wgrad(dw1, dout, in, &d, ws);
        conv2d_backward_ref(NULL, dw2, dout, in, w, &d, 0);
        snprintf(what, sizeof what, "%s weight gradient", name);
        close_enough(dw1, dw2, nw, 1e-5, what);
        free(dw1), free(dw2);
    }
    free(in), free(w), free(dout), free(o1), free(o2), free(ws), free(dx1), free(dx2);
}

/* The Winograd kernel directly (conv2d_* route 3x3 stride-1 pad-1 convolutions
 * to it when the CPU has AVX-512): forward, accumulate, and the flipped
 * (input-gradient) form against the reference, on odd and even sizes and
 * widths spanning more than 16 tiles. */
static void test_winograd(void **state)
{
    (void)state;
    static const int sh[][5] = {
        {2, 3, 9, 9, 4},  {1, 5, 2, 2, 3},   {3, 4, 7, 40, 6}, {2, 16, 12, 13, 8}, {1, 2, 35, 3, 2},
        {2, 8, 8, 8, 4},  {2, 4, 16, 16, 5}, {3, 5, 4, 4, 3},  {3, 5, 6, 8, 4},    {2, 3, 8, 16, 4},
        {5, 3, 10, 4, 2}, {3, 2, 2, 2, 3},   {2, 3, 4, 16, 3}};
    /* even narrow maps (W = 2..16, H even: tile rows packed without gathers,
     * groups of tile rows crossing images and partial last groups) and odd
     * or wide ones (gathers / full-width rows) */
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        conv2d_desc d;
        assert_int_equal(
            conv2d_desc_init(&d, sh[s][0], sh[s][1], sh[s][2], sh[s][3], sh[s][4], 3, 3, 1, 1), 0);
        if (!winograd_applicable(&d)) {
            print_message("# no AVX-512: Winograd kernel not used on this CPU\n");
            return;
        }
        check_wino_kernel(&d, 9, winograd_conv, winograd_workspace_floats, winograd_wgrad,
                          "winograd");
    }
}

/* The F(2, 7) kernel directly (conv2d_* route 1x7 pad (0, 3) and 7x1 pad
 * (3, 0) convolutions to it): forward, accumulate and the flipped
 * (input-gradient) form against the reference, on odd and even sizes down
 * to 2 along the kernel's axis, maps wider than the window and channel
 * counts that make several chunks. */
static void test_winograd7(void **state)
{
    (void)state;
    static const int sh[][6] = {/* n, c, h, w, oc, along W (1x7) */
                                {2, 3, 9, 9, 4, 1},
                                {2, 3, 9, 9, 4, 0},
                                {1, 5, 2, 2, 3, 1},
                                {1, 5, 2, 2, 3, 0},
                                {3, 4, 7, 40, 6, 1},
                                {3, 4, 40, 7, 6, 0},
                                {2, 16, 17, 17, 8, 1},
                                {2, 16, 17, 17, 8, 0},
                                {1, 2, 3, 3, 2, 1},
                                {1, 2, 3, 3, 2, 0},
                                {4, 24, 17, 17, 20, 1},
                                {4, 24, 17, 17, 20, 0},
                                {2, 3, 1, 11, 2, 1},
                                {2, 3, 11, 1, 2, 0},
                                {64, 6, 17, 17, 5, 1},
                                {64, 6, 17, 17, 5, 0},
                                /* Inception at width 2 (the parity fixture): one to six channels */
                                {3, 1, 17, 17, 1, 1},
                                {3, 1, 17, 17, 1, 0},
                                {3, 4, 17, 17, 6, 1},
                                {3, 6, 17, 17, 4, 0},
                                {3, 1, 17, 17, 6, 1},
                                {3, 6, 17, 17, 1, 0}};
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        const int *v = sh[s];
        conv2d_desc d;
        assert_int_equal(conv2d_desc_init_pad(&d, v[0], v[1], v[2], v[3], v[4], v[5] ? 1 : 7,
                                              v[5] ? 7 : 1, 1, v[5] ? 0 : 3, v[5] ? 3 : 0),
                         0);
        assert_true(winograd7_applicable(&d));
        check_wino_kernel(&d, 7, winograd7_conv, winograd7_workspace_floats, NULL, "winograd7");
    }
    /* not for other shapes */
    conv2d_desc d;
    assert_int_equal(conv2d_desc_init_pad(&d, 1, 2, 9, 9, 2, 1, 7, 2, 0, 3), 0);
    assert_false(winograd7_applicable(&d));
    assert_int_equal(conv2d_desc_init_pad(&d, 1, 2, 9, 9, 2, 1, 3, 1, 0, 1), 0);
    assert_false(winograd7_applicable(&d));
    assert_int_equal(conv2d_desc_init_pad(&d, 1, 2, 9, 9, 2, 7, 1, 1, 0, 3), 0);
    assert_false(winograd7_applicable(&d));
}

/* A work space sized for batch N serves every smaller batch (models are
 * prepared for the largest batch and run the last, partial one with it). The
 * buffer is allocated exactly, so AddressSanitizer sees any overrun. */
static void test_conv_smaller_batch(void **state)
{
    (void)state;
    static const cshape sh[] = {{5, 3, 48, 48, 4, 7, 7, 2, 3}, {7, 8, 12, 12, 6, 3, 3, 1, 1},
                                {5, 16, 3, 3, 8, 3, 3, 1, 1},  {6, 8, 6, 6, 8, 3, 3, 2, 1},
                                {5, 8, 2, 2, 4, 3, 3, 1, 1},   {5, 6, 9, 9, 4, 1, 1, 2, 0}};
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        const cshape *c = &sh[s];
        conv2d_desc dmax;
        conv2d_desc_init(&dmax, c->n, c->c, c->h, c->w, c->oc, c->kh, c->kw, c->stride, c->pad);
        size_t nws = conv2d_workspace_floats(&dmax);
        float *ws = malloc(sizeof(float) * (nws ? nws : 1));
        for (int n = 1; n <= c->n; n++) {
            conv2d_desc d;
            conv2d_desc_init(&d, n, c->c, c->h, c->w, c->oc, c->kh, c->kw, c->stride, c->pad);
            assert_true(conv2d_workspace_floats(&d) <= nws);
            size_t ni = (size_t)d.n * d.c * d.h * d.w, no = (size_t)d.n * d.oc * d.oh * d.ow;
            size_t nw = (size_t)d.oc * d.c * d.kh * d.kw;
            float *in = rnd(ni, -1, 1), *w = rnd(nw, -1, 1), *o1 = zeros(no), *o2 = zeros(no);
            float *dx1 = zeros(ni), *dx2 = zeros(ni), *dw1 = zeros(nw), *dw2 = zeros(nw);
            conv2d_forward(o1, in, w, &d, ws);
            conv2d_forward_ref(o2, in, w, &d);
            close_enough(o1, o2, no, 1e-5, "conv forward, smaller batch");
            conv2d_backward(dx1, dw1, o2, in, w, &d, ws, 0);
            conv2d_backward_ref(dx2, dw2, o2, in, w, &d, 0);
            close_enough(dx1, dx2, ni, 1e-5, "conv dX, smaller batch");
            close_enough(dw1, dw2, nw, 1e-5, "conv dW, smaller batch");
            free(in), free(w), free(o1), free(o2), free(dx1), free(dx2), free(dw1), free(dw2);
        }
        free(ws);
    }
}

/* The engine's own threading: layers_sgemm against a naive product for every
 * transpose combination, odd sizes and both split directions (more rows than
 * columns and the reverse), and convolutions on every path (im2col, Winograd,
 * 1x1, strided, dense small maps, a 7x7 stem) against the reference, at 1, 2
 * and 3 threads; with 2 threads the same call twice gives the same bits. The
 * shapes are big enough (> 2M multiply-adds) that the products are split. */
static void test_engine_threads(void **state)
{
    (void)state;
    static const int gs[][3] = {{301, 77, 129}, {45, 517, 260}, {16, 2048, 64}, {700, 33, 91}};
    static const cshape cs[] = {{4, 32, 16, 16, 32, 3, 3, 1, 1}, {4, 32, 17, 15, 24, 3, 3, 2, 1},
                                {4, 64, 12, 12, 48, 1, 1, 1, 0}, {4, 64, 12, 12, 48, 1, 1, 2, 0},
                                {32, 64, 2, 2, 64, 3, 3, 1, 1},  {2, 3, 40, 40, 32, 7, 7, 2, 3},
                                {64, 96, 1, 1, 64, 3, 3, 1, 1},  {33, 40, 2, 3, 37, 3, 3, 1, 1},
                                {17, 36, 4, 4, 40, 3, 3, 2, 1}};
    for (int threads = 1; threads <= 3; threads++) {
        layers_set_threads(threads);
        assert_int_equal(layers_threads(), threads);
        for (size_t g = 0; g < sizeof gs / sizeof gs[0]; g++)
            for (int ta = 0; ta < 2; ta++)
                for (int tb = 0; tb < 2; tb++) {
                    const int M = gs[g][0], N = gs[g][1], K = gs[g][2];
                    float *a = rnd((size_t)M * K, -1, 1), *b = rnd((size_t)K * N, -1, 1);
                    float *c = rnd((size_t)M * N, -1, 1), *r = malloc(sizeof(float) * M * N);
                    for (int i = 0; i < M; i++)
                        for (int j = 0; j < N; j++) {
                            double acc = 0.5 * c[(size_t)i * N + j];
                            for (int k = 0; k < K; k++)
                                acc += 2.0 * (ta ? a[(size_t)k * M + i] : a[(size_t)i * K + k]) *
                                       (tb ? b[(size_t)j * K + k] : b[(size_t)k * N + j]);
                            r[(size_t)i * N + j] = (float)acc;
                        }
                    layers_sgemm(ta, tb, M, N, K, 2.0f, a, ta ? M : K, b, tb ? K : N, 0.5f, c, N);
                    char what[96];
                    snprintf(what, sizeof what, "sgemm %dx%dx%d ta %d tb %d, %d threads", M, N, K,
                             ta, tb, threads);
                    close_enough(c, r, (size_t)M * N, 1e-5, what);
                    free(a), free(b), free(c), free(r);
                }
        for (size_t s = 0; s < sizeof cs / sizeof cs[0]; s++) {
            const cshape *c = &cs[s];
            conv2d_desc d;
            assert_int_equal(conv2d_desc_init(&d, c->n, c->c, c->h, c->w, c->oc, c->kh, c->kw,
                                              c->stride, c->pad),
                             0);
            size_t ni = (size_t)d.n * d.c * d.h * d.w, no = (size_t)d.n * d.oc * d.oh * d.ow;
            size_t nw = (size_t)d.oc * d.c * d.kh * d.kw;
            float *in = rnd(ni, -1, 1), *w = rnd(nw, -1, 1), *dout = rnd(no, -1, 1);
            float *o1 = zeros(no), *o2 = zeros(no), *o3 = zeros(no);
            float *ws = zeros(conv2d_workspace_floats(&d));
            float *dw1 = zeros(nw), *dw2 = zeros(nw), *dw3 = zeros(nw);
            float *dx1 = zeros(ni), *dx2 = zeros(ni), *dx3 = zeros(ni);
            conv2d_forward(o1, in, w, &d, ws);
            conv2d_forward_ref(o2, in, w, &d);
            conv2d_backward(dx1, dw1, dout, in, w, &d, ws, 0);
            conv2d_backward_ref(dx2, dw2, dout, in, w, &d, 0);
            char what[96];
            snprintf(what, sizeof what, "conv shape %zu, %d threads: forward", s, threads);
            close_enough(o1, o2, no, 1e-4, what);
            snprintf(what, sizeof what, "conv shape %zu, %d threads: dW", s, threads);
            close_enough(dw1, dw2, nw, 1e-4, what);
            snprintf(what, sizeof what, "conv shape %zu, %d threads: dX", s, threads);
            close_enough(dx1, dx2, ni, 1e-4, what);
            if (threads == 2) {
                conv2d_forward(o3, in, w, &d, ws);
                conv2d_backward(dx3, dw3, dout, in, w, &d, ws, 0);
                assert_memory_equal(o1, o3, sizeof(float) * no);
                assert_memory_equal(dw1, dw3, sizeof(float) * nw);
                assert_memory_equal(dx1, dx3, sizeof(float) * ni);
            }
            free(in), free(w), free(dout), free(o1), free(o2), free(o3), free(ws);
            free(dw1), free(dw2), free(dw3), free(dx1), free(dx2), free(dx3);
        }
    }
}

/* Prepared weights (dense tiny-map path): conv2d_prep_floats is non-zero
 * exactly for the dense shapes, and the _prep variants with a prepared
 * matrix give the same bits as building it inside each call, for every batch
 * size up to the prepared one. */
static void test_conv_prepared(void **state)
{
    (void)state;
    static const cshape dense[] = {{6, 16, 2, 2, 8, 3, 3, 1, 1}, {4, 5, 2, 3, 7, 3, 3, 1, 1}};
    static const cshape other[] = {
        {2, 8, 8, 8, 8, 3, 3, 1, 1}, {2, 8, 1, 1, 8, 3, 3, 1, 1}, {2, 8, 4, 4, 8, 1, 1, 2, 0}};
    conv2d_desc d;
    for (size_t s = 0; s < sizeof other / sizeof other[0]; s++) {
        const cshape *c = &other[s];
        conv2d_desc_init(&d, c->n, c->c, c->h, c->w, c->oc, c->kh, c->kw, c->stride, c->pad);
        assert_int_equal(conv2d_prep_floats(&d), 0);
    }
    for (size_t s = 0; s < sizeof dense / sizeof dense[0]; s++) {
        const cshape *c = &dense[s];
        conv2d_desc_init(&d, c->n, c->c, c->h, c->w, c->oc, c->kh, c->kw, c->stride, c->pad);
        size_t np = conv2d_prep_floats(&d);
        assert_true(np > 0);
        size_t nw = (size_t)d.oc * d.c * d.kh * d.kw;
        float *w = rnd(nw, -1, 1), *prep = zeros(np);
        conv2d_prepare(prep, w, &d);
        for (int n = 1; n <= c->n; n++) {
            conv2d_desc e;
            conv2d_desc_init(&e, n, c->c, c->h, c->w, c->oc, c->kh, c->kw, c->stride, c->pad);
            assert_int_equal(conv2d_prep_floats(&e), np);
            size_t ni = (size_t)e.n * e.c * e.h * e.w, no = (size_t)e.n * e.oc * e.oh * e.ow;
            float *in = rnd(ni, -1, 1), *dout = rnd(no, -1, 1),
                  *ws = zeros(conv2d_workspace_floats(&e));
            float *o1 = zeros(no), *o2 = zeros(no), *dx1 = zeros(ni), *dx2 = zeros(ni);
            float *dw1 = zeros(nw), *dw2 = zeros(nw);
            conv2d_forward(o1, in, w, &e, ws);
            conv2d_forward_prep(o2, in, w, prep, &e, ws);
            assert_memory_equal(o1, o2, sizeof(float) * no);
            conv2d_backward(dx1, dw1, dout, in, w, &e, ws, 0);
            conv2d_backward_prep(dx2, dw2, dout, in, w, prep, &e, ws, 0);
            assert_memory_equal(dx1, dx2, sizeof(float) * ni);
            assert_memory_equal(dw1, dw2, sizeof(float) * nw);
            free(in), free(dout), free(ws), free(o1), free(o2), free(dx1), free(dx2), free(dw1),
                free(dw2);
        }
        free(w), free(prep);
    }
}

/* conv2d_tap_major_rows writes exactly rows [o0, o1) of every listed tap's
 * slice, dst[(t*OC + o)*C + c] = w[(o*C + c)*KK + tap[t]], bit for bit, at
 * channel counts below, at and past the 16-wide gathers (tails), and leaves
 * the other rows as they were. */
static void test_tap_major_rows(void **state)
{
    (void)state;
    static const struct {
        int oc, c, kk, ntaps, o0, o1;
        int tap[9];
    } cases[] = {{4, 5, 9, 9, 0, 4, {0, 1, 2, 3, 4, 5, 6, 7, 8}},
                 {6, 16, 9, 4, 1, 5, {4, 0, 8, 2}},
                 {3, 37, 7, 7, 2, 3, {6, 5, 4, 3, 2, 1, 0}},
                 {5, 33, 1, 1, 0, 5, {0}}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const int OC = cases[k].oc, C = cases[k].c, KK = cases[k].kk, T = cases[k].ntaps;
        size_t nw = (size_t)OC * C * KK, nd = (size_t)T * OC * C;
        float *w = rnd(nw, -1, 1), *dst = zeros(nd);
        for (size_t i = 0; i < nd; i++)
            dst[i] = -42.0f;
        conv2d_tap_major_rows(dst, w, OC, C, KK, cases[k].tap, T, cases[k].o0, cases[k].o1);
        for (int t = 0; t < T; t++)
            for (int o = 0; o < OC; o++)
                for (int c = 0; c < C; c++) {
                    float got = dst[((size_t)t * OC + o) * C + c];
                    int in = o >= cases[k].o0 && o < cases[k].o1;
                    float want = in ? w[((size_t)o * C + c) * KK + cases[k].tap[t]] : -42.0f;
                    if (!(got == want)) {
                        print_error("case %zu tap slot %d row %d channel %d: %g, expected %g\n", k,
                                    t, o, c, got, want);
                        fail();
                    }
                }
        free(w), free(dst);
    }
}

/* conv2d_prep_taps names the slices of conv2d_prepare's tap-major copy
 * (prep[(t*OC + o)*C + c] = w[(o*C + c)*KK + tap[t]]) and is 0 without one;
 * conv2d_backward_prep_set overwrites a dW full of garbage with the same
 * values as zeroing it and accumulating (and as the reference), on the
 * per-tap shapes and on the others (which zero it first). */
static void test_conv_backward_set(void **state)
{
    (void)state;
    static const cshape shapes[] = {{6, 16, 2, 2, 8, 3, 3, 1, 1}, {4, 5, 2, 3, 7, 3, 3, 1, 1},
                                    {3, 6, 4, 4, 8, 3, 3, 2, 1},  {2, 8, 8, 8, 8, 3, 3, 1, 1},
                                    {2, 8, 1, 1, 8, 3, 3, 1, 1},  {2, 8, 4, 4, 8, 1, 1, 2, 0},
                                    {3, 40, 2, 2, 24, 3, 3, 1, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const cshape *c = &shapes[s];
        conv2d_desc d;
        conv2d_desc_init(&d, c->n, c->c, c->h, c->w, c->oc, c->kh, c->kw, c->stride, c->pad);
        const int KK = d.kh * d.kw;
        size_t nw = (size_t)d.oc * d.c * KK, np = conv2d_prep_floats(&d);
        size_t ni = (size_t)d.n * d.c * d.h * d.w, no = (size_t)d.n * d.oc * d.oh * d.ow;
        float *w = rnd(nw, -1, 1), *in = rnd(ni, -1, 1), *dout = rnd(no, -1, 1);
        float *ws = zeros(conv2d_workspace_floats(&d)), *prep = np ? zeros(np) : NULL;
        int tap[64];
        int T = conv2d_prep_taps(&d, tap);
        if (np) {
            assert_true(T > 0 && T <= KK);
            assert_int_equal((size_t)T * d.oc * d.c, np);
            conv2d_prepare(prep, w, &d);
            for (int t = 0; t < T; t++)
                for (size_t oc = 0; oc < (size_t)d.oc * d.c; oc++)
                    assert_true(prep[(size_t)t * d.oc * d.c + oc] == w[oc * KK + tap[t]]);
        } else {
            assert_int_equal(T, 0);
        }
        float *dx1 = zeros(ni), *dx2 = zeros(ni), *dxr = zeros(ni);
        float *dw1 = zeros(nw), *dw2 = zeros(nw), *dwr = zeros(nw);
        for (size_t i = 0; i < nw; i++)
            dw2[i] = 7.0f; // garbage the overwrite must not add to
        conv2d_backward_prep(dx1, dw1, dout, in, w, prep, &d, ws, 0);
        conv2d_backward_prep_set(dx2, dw2, dout, in, w, prep, &d, ws, 0);
        conv2d_backward_ref(dxr, dwr, dout, in, w, &d, 0);
        for (size_t i = 0; i < nw; i++)
            if (!(dw1[i] == dw2[i])) {
                print_error("shape %zu dw[%zu]: set %g vs accumulated %g\n", s, i, dw2[i], dw1[i]);
                fail();
            }
        assert_memory_equal(dx1, dx2, sizeof(float) * ni);
        close_enough(dw2, dwr, nw, 1e-4, "backward_set dw vs ref");
        close_enough(dx2, dxr, ni, 1e-4, "backward_set dx vs ref");
        /* dW alone (no dX), and dX accumulated */
        for (size_t i = 0; i < nw; i++)
            dw2[i] = -3.0f;
        conv2d_backward_prep_set(NULL, dw2, dout, in, w, prep, &d, ws, 0);
        close_enough(dw2, dwr, nw, 1e-4, "backward_set dw only vs ref");
        conv2d_backward_prep_set(dx2, dw2, dout, in, w, prep, &d, ws, 1);
        for (size_t i = 0; i < ni; i++)
            dxr[i] *= 2;
        close_enough(dx2, dxr, ni, 1e-4, "backward_set dx accumulated vs ref");
        close_enough(dw2, dwr, nw, 1e-4, "backward_set dw again vs ref");
        free(w), free(in), free(dout), free(ws), free(prep), free(dx1), free(dx2), free(dxr),
            free(dw1), free(dw2), free(dwr);
    }
}

static void test_conv_desc(void **state)
{
    (void)state;
    conv2d_desc d;
    assert_int_equal(conv2d_desc_init(&d, 1, 3, 224, 224, 64, 7, 7, 2, 3), 0);
    assert_int_equal(d.oh, 112);
    assert_int_equal(d.ow, 112);
    assert_int_equal(conv2d_desc_init(&d, 1, 3, 2, 2, 4, 5, 5, 1, 0), ERR_INVALID);
    assert_int_equal(conv2d_desc_init(&d, 0, 3, 8, 8, 4, 3, 3, 1, 1), ERR_INVALID);
    /* 1x1 stride 1 needs no work space */
    assert_int_equal(conv2d_desc_init(&d, 4, 8, 8, 8, 4, 1, 1, 1, 0), 0);
    assert_int_equal(conv2d_workspace_floats(&d), 0);
}

static void test_conv_fd(void **state)
{
    (void)state;
    static const cshape sh[] = {{2, 2, 5, 4, 3, 3, 3, 2, 1},
                                {1, 3, 4, 4, 2, 1, 1, 2, 0},
                                {2, 2, 3, 3, 2, 3, 3, 1, 1},
                                {2, 3, 1, 1, 2, 3, 3, 1, 1},
                                {2, 3, 2, 2, 2, 3, 3, 1, 1}};
    for (size_t s = 0; s < 5; s++) {
        const cshape *c = &sh[s];
        conv2d_desc d;
        conv2d_desc_init(&d, c->n, c->c, c->h, c->w, c->oc, c->kh, c->kw, c->stride, c->pad);
        size_t ni = (size_t)d.n * d.c * d.h * d.w, no = (size_t)d.n * d.oc * d.oh * d.ow;
        size_t nw = (size_t)d.oc * d.c * d.kh * d.kw;
        float *in = rnd(ni, -1, 1), *w = rnd(nw, -1, 1), *r = rnd(no, -1, 1);
        float *out = zeros(no), *dw = zeros(nw), *dx = zeros(ni);
        float *ws = zeros(conv2d_workspace_floats(&d));
        conv2d_backward(dx, dw, r, in, w, &d, ws, 0);
        const float h = 1e-2f;
        float num_x[64], num_w[64];
        size_t kx = ni < 64 ? ni : 64, kw = nw < 64 ? nw : 64;
        for (size_t i = 0; i < kx; i++) {
            float v = in[i];
            in[i] = v + h;
            conv2d_forward(out, in, w, &d, ws);
            double lp = dot(out, r, no);
            in[i] = v - h;
            conv2d_forward(out, in, w, &d, ws);
            double lm = dot(out, r, no);
            in[i] = v;
            num_x[i] = (float)((lp - lm) / (2 * h));
        }
        for (size_t i = 0; i < kw; i++) {
            float v = w[i];
            w[i] = v + h;
            conv2d_forward(out, in, w, &d, ws);
            double lp = dot(out, r, no);
            w[i] = v - h;
            conv2d_forward(out, in, w, &d, ws);
            double lm = dot(out, r, no);
            w[i] = v;
            num_w[i] = (float)((lp - lm) / (2 * h));
        }
        close_enough(dx, num_x, kx, 1e-3, "conv dX vs finite differences");
        close_enough(dw, num_w, kw, 1e-3, "conv dW vs finite differences");
        free(in), free(w), free(r), free(out), free(dw), free(dx), free(ws);
    }
}

/* ---------- batchnorm ---------- */

static void test_bn_vs_ref(void **state)
{
    (void)state;
    static const int sh[][3] = {{2, 3, 25}, {1, 4, 1}, {5, 2, 7}, {3, 7, 4099}, {16, 3, 1}};
    for (size_t s = 0; s < 5; s++) {
        int n = sh[s][0], c = sh[s][1], hw = sh[s][2];
        size_t cnt = (size_t)n * c * hw;
        if (n * hw < 2) continue;
        float *in = rnd(cnt, -2, 3), *g = rnd(c, 0.5f, 1.5f), *b = rnd(c, -0.5f, 0.5f);
        for (size_t i = 0; i < cnt; i++)
            in[i] += 100.0f * (float)(i / ((size_t)n * hw));
        for (int relu = 0; relu < 2; relu++) {
            float *o1 = zeros(cnt), *o2 = zeros(cnt);
            float *rm1 = rnd(c, -1, 1), *rv1 = rnd(c, 0.5f, 2), *rm2 = zeros(c), *rv2 = zeros(c);
            memcpy(rm2, rm1, sizeof(float) * c);
            memcpy(rv2, rv1, sizeof(float) * c);
            float *sm1 = zeros(c), *si1 = zeros(c), *sm2 = zeros(c), *si2 = zeros(c);
            batchnorm_forward_train(o1, in, g, b, rm1, rv1, sm1, si1, n, c, hw, BN_MOMENTUM, BN_EPS,
                                    relu);
            batchnorm_forward_train_ref(o2, in, g, b, rm2, rv2, sm2, si2, n, c, hw, BN_MOMENTUM,
                                        BN_EPS, relu);
            close_enough(o1, o2, cnt, 1e-4, "bn train forward");
            close_enough(rm1, rm2, c, 1e-5, "bn running_mean");
            close_enough(rv1, rv2, c, 1e-4, "bn running_var");
            close_enough(sm1, sm2, c, 1e-5, "bn saved mean");
            close_enough(si1, si2, c, 1e-4, "bn saved invstd");
            float *dout = rnd(cnt, -1, 1);
            float *dx1 = zeros(cnt), *dx2 = zeros(cnt), *dg1 = rnd(c, -1, 1), *db1 = rnd(c, -1, 1);
            float *dg2 = zeros(c), *db2 = zeros(c);
            memcpy(dg2, dg1, sizeof(float) * c);
            memcpy(db2, db1, sizeof(float) * c);
            batchnorm_backward(dx1, dg1, db1, dout, in, o1, g, sm1, si1, n, c, hw, relu);
            batchnorm_backward_ref(dx2, dg2, db2, dout, in, o1, g, sm1, si1, n, c, hw, relu);
            close_enough(dx1, dx2, cnt, 1e-3, "bn dX");
            close_enough(dg1, dg2, c, 1e-3, "bn dgamma");
            close_enough(db1, db2, c, 1e-4, "bn dbeta");
            /* in place backward gives the same */
            memcpy(dx2, dout, sizeof(float) * cnt);
            batchnorm_backward(dx2, NULL, NULL, dx2, in, o1, g, sm1, si1, n, c, hw, relu);
            close_enough(dx2, dx1, cnt, 1e-6, "bn dX in place");
            /* eval mode, in place */
            memcpy(o1, in, sizeof(float) * cnt);
            batchnorm_forward_eval(o1, o1, g, b, rm1, rv1, n, c, hw, BN_EPS, relu);
            batchnorm_forward_eval_ref(o2, in, g, b, rm1, rv1, n, c, hw, BN_EPS, relu);
            close_enough(o1, o2, cnt, 1e-4, "bn eval forward");
            free(o1), free(o2), free(rm1), free(rv1), free(rm2), free(rv2), free(sm1), free(si1),
                free(sm2), free(si2), free(dout), free(dx1), free(dx2), free(dg1), free(db1),
                free(dg2), free(db2);
        }
        free(in), free(g), free(b);
    }
}

/* Running stats follow PyTorch: unbiased variance, momentum 0.1. */
static void test_bn_running_stats(void **state)
{
    (void)state;
    float in[4] = {1, 2, 3, 6}, out[4], g = 1, b = 0, rm = 0, rv = 1, sm, si;
    batchnorm_forward_train(out, in, &g, &b, &rm, &rv, &sm, &si, 2, 1, 2, 0.1f, 1e-5f, 0);
    /* mean 3, biased var 3.5, unbiased 14/3 */
    assert_float_equal(sm, 3.0f, 1e-6);
    assert_float_equal(si, 1.0f / sqrtf(3.5f + 1e-5f), 1e-6);
    assert_float_equal(rm, 0.3f, 1e-6);
    assert_float_equal(rv, 0.9f + 0.1f * 14.0f / 3.0f, 1e-6);
    assert_float_equal(out[3], 3.0f / sqrtf(3.5f + 1e-5f), 1e-5);
}

/* L(in, gamma, beta) = sum r * bn_train(in) by central differences. */
static double bn_loss(const float *in, const float *g, const float *b, const float *r, int n, int c,
                      int hw, int relu, float *out)
{
    float sm[8], si[8];
    batchnorm_forward_train(out, in, g, b, NULL, NULL, sm, si, n, c, hw, 0.1f, BN_EPS, relu);
    return dot(out, r, (size_t)n * c * hw);
}

static void test_bn_fd(void **state)
{
    (void)state;
    const int n = 2, c = 3, hw = 5;
    const size_t cnt = (size_t)n * c * hw;
    for (int relu = 0; relu < 2; relu++) {
        float *in = rnd(cnt, -2, 2), *g = rnd(c, 0.5f, 1.5f), *b = rnd(c, -0.3f, 0.3f);
        float *r = rnd(cnt, -1, 1), *out = zeros(cnt), *dx = zeros(cnt), *dg = zeros(c),
              *db = zeros(c);
        float sm[8], si[8];
        batchnorm_forward_train(out, in, g, b, NULL, NULL, sm, si, n, c, hw, 0.1f, BN_EPS, relu);
        if (relu) /* keep outputs away from the ReLU kink */
            for (size_t i = 0; i < cnt; i++)
                if (fabsf(out[i]) < 0.05f) r[i] = 0;
        batchnorm_backward(dx, dg, db, r, in, out, g, sm, si, n, c, hw, relu);
        const float h = 1e-3f;
        float nx[32], ng[8], nb[8];
        for (size_t i = 0; i < cnt; i++) {
            float v = in[i];
            in[i] = v + h;
            double lp = bn_loss(in, g, b, r, n, c, hw, relu, out);
            in[i] = v - h;
            double lm = bn_loss(in, g, b, r, n, c, hw, relu, out);
            in[i] = v;
            nx[i] = (float)((lp - lm) / (2 * h));
        }
        for (int i = 0; i < c; i++) {
            float v = g[i];
            g[i] = v + h;
            double lp = bn_loss(in, g, b, r, n, c, hw, relu, out);
            g[i] = v - h;
            double lm = bn_loss(in, g, b, r, n, c, hw, relu, out);
            g[i] = v;
            ng[i] = (float)((lp - lm) / (2 * h));
            v = b[i];
            b[i] = v + h;
            lp = bn_loss(in, g, b, r, n, c, hw, relu, out);
            b[i] = v - h;
            lm = bn_loss(in, g, b, r, n, c, hw, relu, out);
            b[i] = v;
            nb[i] = (float)((lp - lm) / (2 * h));
        }
        close_enough(dx, nx, cnt, 2e-2, "bn dX vs finite differences");
        close_enough(dg, ng, c, 2e-2, "bn dgamma vs finite differences");
        close_enough(db, nb, c, 2e-2, "bn dbeta vs finite differences");
        /* eval-mode backward against differences of the eval forward */
        float rm[3] = {0.1f, -0.2f, 0.3f}, rv[3] = {0.5f, 1.5f, 2.0f};
        memset(dx, 0, sizeof(float) * cnt);
        memset(dg, 0, sizeof(float) * c);
        memset(db, 0, sizeof(float) * c);
        batchnorm_forward_eval(out, in, g, b, rm, rv, n, c, hw, BN_EPS, relu);
        for (size_t i = 0; i < cnt; i++)
            if (relu && fabsf(out[i]) < 0.05f) r[i] = 0;
        batchnorm_backward_eval(dx, dg, db, r, in, out, g, rm, rv, n, c, hw, BN_EPS, relu);
        for (size_t i = 0; i < cnt; i++) {
            float v = in[i];
            in[i] = v + h;
            batchnorm_forward_eval(out, in, g, b, rm, rv, n, c, hw, BN_EPS, relu);
            double lp = dot(out, r, cnt);
            in[i] = v - h;
            batchnorm_forward_eval(out, in, g, b, rm, rv, n, c, hw, BN_EPS, relu);
            double lm = dot(out, r, cnt);
            in[i] = v;
            nx[i] = (float)((lp - lm) / (2 * h));
        }
        for (int i = 0; i < c; i++) {
            float v = g[i];
            g[i] = v + h;
            batchnorm_forward_eval(out, in, g, b, rm, rv, n, c, hw, BN_EPS, relu);
            double lp = dot(out, r, cnt);
            g[i] = v - h;
            batchnorm_forward_eval(out, in, g, b, rm, rv, n, c, hw, BN_EPS, relu);
            double lm = dot(out, r, cnt);
            g[i] = v;
            ng[i] = (float)((lp - lm) / (2 * h));
        }
        close_enough(dx, nx, cnt, 2e-2, "bn eval dX vs finite differences");
        close_enough(dg, ng, c, 2e-2, "bn eval dgamma vs finite differences");
        free(in), free(g), free(b), free(r), free(out), free(dx), free(dg), free(db);
    }
}

/* ---------- pooling ---------- */

static void test_maxpool(void **state)
{
    (void)state;
    static const int sh[][4] = {
        {2, 3, 9, 9}, {1, 2, 8, 7}, {3, 1, 1, 1}, {2, 2, 2, 3}, {1, 4, 112, 112}};
    for (size_t s = 0; s < 5; s++) {
        int n = sh[s][0], c = sh[s][1], h = sh[s][2], w = sh[s][3];
        int oh = (h + 2 - 3) / 2 + 1, ow = (w + 2 - 3) / 2 + 1;
        size_t ni = (size_t)n * c * h * w, no = (size_t)n * c * oh * ow;
        float *in = rnd(ni, -1, 1), *o1 = zeros(no), *o2 = zeros(no), *dout = rnd(no, -1, 1);
        int32_t *i1 = calloc(no, sizeof *i1), *i2 = calloc(no, sizeof *i2);
        maxpool2d_forward(o1, i1, in, n, c, h, w, 3, 2, 1, oh, ow);
        maxpool2d_forward_ref(o2, i2, in, n, c, h, w, 3, 2, 1, oh, ow);
        close_enough(o1, o2, no, 0, "maxpool forward");
        float *o3 = zeros(no);
        maxpool2d_forward(o3, NULL, in, n, c, h, w, 3, 2, 1, oh, ow);
        close_enough(o3, o2, no, 0, "maxpool forward without winners");
        free(o3);
        assert_memory_equal(i1, i2, no * sizeof *i1);
        float *d1 = rnd(ni, -1, 1), *d2 = zeros(ni);
        maxpool2d_backward(d1, dout, i1, n, c, h, w, oh, ow);
        maxpool2d_backward_ref(d2, dout, i2, n, c, h, w, oh, ow);
        close_enough(d1, d2, ni, 1e-6, "maxpool backward");
        free(in), free(o1), free(o2), free(dout), free(i1), free(i2), free(d1), free(d2);
    }
}

static void test_maxpool_fd(void **state)
{
    (void)state;
    const int n = 2, c = 2, h = 5, w = 6, oh = 3, ow = 3;
    size_t ni = (size_t)n * c * h * w, no = (size_t)n * c * oh * ow;
    /* distinct values far apart so a step never changes a winner */
    float *in = zeros(ni), *out = zeros(no), *r = rnd(no, -1, 1), *dx = zeros(ni);
    int32_t *idx = calloc(no, sizeof *idx);
    for (size_t i = 0; i < ni; i++)
        in[i] = (float)((i * 37) % ni) * 0.1f;
    maxpool2d_forward(out, idx, in, n, c, h, w, 3, 2, 1, oh, ow);
    maxpool2d_backward(dx, r, idx, n, c, h, w, oh, ow);
    const float hh = 1e-2f;
    for (size_t i = 0; i < ni; i++) {
        float v = in[i];
        in[i] = v + hh;
        maxpool2d_forward(out, idx, in, n, c, h, w, 3, 2, 1, oh, ow);
        double lp = dot(out, r, no);
        in[i] = v - hh;
        maxpool2d_forward(out, idx, in, n, c, h, w, 3, 2, 1, oh, ow);
        double lm = dot(out, r, no);
        in[i] = v;
        assert_float_equal(dx[i], (lp - lm) / (2 * hh), 1e-3);
    }
    free(in), free(out), free(r), free(dx), free(idx);
}

static void test_avgpool(void **state)
{
    (void)state;
    const int n = 3, c = 4, hw = 7;
    size_t ni = (size_t)n * c * hw;
    float *in = rnd(ni, -1, 1), *o1 = zeros(n * c), *o2 = zeros(n * c), *r = rnd(n * c, -1, 1);
    avgpool_forward(o1, in, n, c, hw);
    avgpool_forward_ref(o2, in, n, c, hw);
    close_enough(o1, o2, n * c, 1e-6, "avgpool forward");
    float *dx = zeros(ni);
    avgpool_backward(dx, r, n, c, hw);
    const float h = 1e-2f;
    for (size_t i = 0; i < ni; i++) {
        float v = in[i];
        in[i] = v + h;
        avgpool_forward(o1, in, n, c, hw);
        double lp = dot(o1, r, n * c);
        in[i] = v - h;
        avgpool_forward(o1, in, n, c, hw);
        double lm = dot(o1, r, n * c);
        in[i] = v;
        assert_float_equal(dx[i], (lp - lm) / (2 * h), 1e-4);
    }
    free(in), free(o1), free(o2), free(r), free(dx);
}

/* ---------- pooling and joins of VGG / Inception v3 ---------- */

/* A forward pass IN (ni floats) -> OUT (no floats) with its fixed shape in CTX. */
typedef void (*fwd_fn)(float *out, const float *in, const void *ctx);

/* Checks DIN (the backward of R through FN at IN) against central
 * differences of L = sum r_i out_i (FN linear in IN: any step works). */
static void fd_linear(fwd_fn fn, const void *ctx, float *in, size_t ni, size_t no, const float *r,
                      const float *din, const char *what)
{
    float *out = zeros(no), *num = zeros(ni);
    const float h = 1e-2f;
    for (size_t i = 0; i < ni; i++) {
        float v = in[i];
        in[i] = v + h;
        fn(out, in, ctx);
        double lp = dot(out, r, no);
        in[i] = v - h;
        fn(out, in, ctx);
        double lm = dot(out, r, no);
        in[i] = v;
        num[i] = (float)((lp - lm) / (2 * h));
    }
    close_enough(din, num, ni, 1e-3, what);
    free(out), free(num);
}

typedef struct {
    int n, c, h, w, k, stride, pad, count_pad, oh, ow; // pooling shape
} pshape;

static void avg_fwd(float *out, const float *in, const void *ctx)
{
    const pshape *p = ctx;
    avgpool2d_forward(out, in, p->n, p->c, p->h, p->w, p->k, p->stride, p->pad, p->count_pad, p->oh,
                      p->ow);
}

static void adaptive_fwd(float *out, const float *in, const void *ctx)
{
    const pshape *p = ctx;
    adaptive_avgpool_forward(out, in, p->n, p->c, p->h, p->w, p->oh, p->ow);
}

/* pool_out_size against PyTorch's formula on the shapes the families use
 * (values from torch.nn.functional in the comments). */
static void test_pool_out_size(void **state)
{
    (void)state;
    assert_int_equal(pool_out_size(224, 2, 2, 0, 0), 112); // VGG
    assert_int_equal(pool_out_size(7, 2, 2, 0, 0), 3);
    assert_int_equal(pool_out_size(7, 2, 2, 0, 1), 4);    // ceil mode: one more window
    assert_int_equal(pool_out_size(147, 3, 2, 0, 0), 73); // Inception maxpool1 at 299
    assert_int_equal(pool_out_size(6, 3, 2, 1, 1), 4); // ceil, window starting in padding dropped
    assert_int_equal(pool_out_size(5, 3, 2, 1, 1), 3);
    assert_int_equal(pool_out_size(17, 5, 3, 0, 0), 5);  // InceptionAux at 299
    assert_int_equal(pool_out_size(4, 5, 3, 0, 0), 0);   // does not fit
    assert_int_equal(pool_out_size(35, 3, 1, 1, 0), 35); // branch pools keep the size
}

/* Average pooling (3x3/1/1 with and without count_include_pad, Inception's
 * aux 5x5/3, a ceil-like odd shape) against the reference, and its backward
 * against finite differences. */
static void test_avgpool2d(void **state)
{
    (void)state;
    static const pshape sh[] = {{2, 3, 9, 9, 3, 1, 1, 1, 0, 0},   {2, 3, 9, 9, 3, 1, 1, 0, 0, 0},
                                {1, 2, 17, 17, 5, 3, 0, 1, 0, 0}, {3, 2, 6, 5, 3, 2, 1, 1, 0, 0},
                                {2, 2, 1, 1, 3, 1, 1, 1, 0, 0},   {1, 1, 4, 7, 2, 2, 1, 0, 0, 0}};
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        pshape p = sh[s];
        p.oh = pool_out_size(p.h, p.k, p.stride, p.pad, 0);
        p.ow = pool_out_size(p.w, p.k, p.stride, p.pad, 0);
        size_t ni = (size_t)p.n * p.c * p.h * p.w, no = (size_t)p.n * p.c * p.oh * p.ow;
        float *in = rnd(ni, -1, 1), *o1 = zeros(no), *o2 = zeros(no), *r = rnd(no, -1, 1);
        float *d1 = rnd(ni, -1, 1), *d2 = zeros(ni);
        avg_fwd(o1, in, &p);
        avgpool2d_forward_ref(o2, in, p.n, p.c, p.h, p.w, p.k, p.stride, p.pad, p.count_pad, p.oh,
                              p.ow);
        close_enough(o1, o2, no, 1e-6, "avgpool2d forward");
        avgpool2d_backward(d1, r, p.n, p.c, p.h, p.w, p.k, p.stride, p.pad, p.count_pad, p.oh,
                           p.ow);
        avgpool2d_backward_ref(d2, r, p.n, p.c, p.h, p.w, p.k, p.stride, p.pad, p.count_pad, p.oh,
                               p.ow);
        close_enough(d1, d2, ni, 1e-6, "avgpool2d backward");
        fd_linear(avg_fwd, &p, in, ni, no, r, d1, "avgpool2d backward vs finite differences");
        free(in), free(o1), free(o2), free(r), free(d1), free(d2);
    }
    /* count_include_pad: a corner of a constant map averages 4 of 9 taps */
    pshape p = {1, 1, 3, 3, 3, 1, 1, 1, 3, 3};
    float one[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, out[9];
    avg_fwd(out, one, &p);
    assert_float_equal(out[0], 4.0f / 9.0f, 1e-7);
    assert_float_equal(out[4], 1.0f, 1e-7);
    p.count_pad = 0;
    avg_fwd(out, one, &p);
    assert_float_equal(out[0], 1.0f, 1e-7);
}

/* Adaptive average pooling to 7x7 from larger, equal and smaller maps (VGG
 * at 299, 224 and small inputs) and to 1x1, against the reference and by
 * finite differences. */
static void test_adaptive_avgpool(void **state)
{
    (void)state;
    static const int sh[][6] = {{2, 3, 9, 9, 7, 7}, {2, 2, 7, 7, 7, 7},  {2, 2, 2, 2, 7, 7},
                                {1, 3, 1, 1, 7, 7}, {2, 3, 10, 6, 7, 7}, {3, 4, 8, 8, 1, 1},
                                {1, 2, 13, 5, 3, 2}};
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        pshape p = {sh[s][0], sh[s][1], sh[s][2], sh[s][3], 0, 0, 0, 0, sh[s][4], sh[s][5]};
        size_t ni = (size_t)p.n * p.c * p.h * p.w, no = (size_t)p.n * p.c * p.oh * p.ow;
        float *in = rnd(ni, -1, 1), *o1 = zeros(no), *o2 = zeros(no), *r = rnd(no, -1, 1);
        float *d1 = rnd(ni, -1, 1), *d2 = zeros(ni);
        adaptive_fwd(o1, in, &p);
        adaptive_avgpool_forward_ref(o2, in, p.n, p.c, p.h, p.w, p.oh, p.ow);
        close_enough(o1, o2, no, 1e-6, "adaptive avgpool forward");
        adaptive_avgpool_backward(d1, r, p.n, p.c, p.h, p.w, p.oh, p.ow);
        adaptive_avgpool_backward_ref(d2, r, p.n, p.c, p.h, p.w, p.oh, p.ow);
        close_enough(d1, d2, ni, 1e-6, "adaptive avgpool backward");
        fd_linear(adaptive_fwd, &p, in, ni, no, r, d1, "adaptive avgpool vs finite differences");
        free(in), free(o1), free(o2), free(r), free(d1), free(d2);
    }
}

/* Max pooling in ceil mode (the window past the edge is clipped) against
 * the reference, and VGG's 2x2/2 pool. */
static void test_maxpool_ceil(void **state)
{
    (void)state;
    static const int sh[][7] = {
        /* n, c, h, w, k, stride, pad */
        {2, 3, 7, 7, 2, 2, 0},   {2, 2, 8, 9, 3, 2, 1},
        {1, 2, 6, 5, 3, 2, 0},   {2, 3, 147, 147, 3, 2, 0}, // Inception's stem pools
        {2, 2, 71, 35, 3, 2, 0}, {2, 2, 224, 16, 2, 2, 0}};
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++)
        for (int ceil_mode = 0; ceil_mode <= 1; ceil_mode++) {
            int n = sh[s][0], c = sh[s][1], h = sh[s][2], w = sh[s][3], k = sh[s][4];
            int st = sh[s][5], pad = sh[s][6];
            int oh = pool_out_size(h, k, st, pad, ceil_mode);
            int ow = pool_out_size(w, k, st, pad, ceil_mode);
            size_t ni = (size_t)n * c * h * w, no = (size_t)n * c * oh * ow;
            float *in = rnd(ni, -1, 1), *o1 = zeros(no), *o2 = zeros(no), *r = rnd(no, -1, 1);
            int32_t *i1 = calloc(no, sizeof *i1), *i2 = calloc(no, sizeof *i2);
            maxpool2d_forward(o1, i1, in, n, c, h, w, k, st, pad, oh, ow);
            maxpool2d_forward_ref(o2, i2, in, n, c, h, w, k, st, pad, oh, ow);
            close_enough(o1, o2, no, 0, "maxpool ceil forward");
            assert_memory_equal(i1, i2, no * sizeof *i1);
            float *o3 = zeros(no); // the evaluation kernel (3x3 / 2 / pad 0 or 1)
            maxpool2d_forward(o3, NULL, in, n, c, h, w, k, st, pad, oh, ow);
            close_enough(o3, o2, no, 0, "maxpool forward without winners");
            free(o3);
            float *d1 = zeros(ni), *d2 = zeros(ni);
            maxpool2d_backward(d1, r, i1, n, c, h, w, oh, ow);
            maxpool2d_backward_ref(d2, r, i2, n, c, h, w, oh, ow);
            close_enough(d1, d2, ni, 1e-6, "maxpool ceil backward");
            free(in), free(o1), free(o2), free(r), free(i1), free(i2), free(d1), free(d2);
        }
}

/* Conv bias (+ fused ReLU) and its gradient against the reference, and
 * channel concatenation against torch.cat semantics with its backward. */
static void test_bias_and_concat(void **state)
{
    (void)state;
    const int n = 3, c = 5, hw = 37;
    size_t m = (size_t)n * c * hw;
    float *b = rnd(c, -1, 1), *x = rnd(m, -1, 1), *y1 = malloc(sizeof(float) * m),
          *y2 = malloc(sizeof(float) * m);
    for (int relu = 0; relu <= 1; relu++) {
        memcpy(y1, x, sizeof(float) * m);
        memcpy(y2, x, sizeof(float) * m);
        bias_forward(y1, b, n, c, hw, relu);
        bias_forward_ref(y2, b, n, c, hw, relu);
        close_enough(y1, y2, m, 1e-6, "bias forward");
    }
    float *db1 = rnd(c, -1, 1), *db2 = malloc(sizeof(float) * c);
    memcpy(db2, db1, sizeof(float) * c);
    bias_backward(db1, x, n, c, hw);
    bias_backward_ref(db2, x, n, c, hw);
    close_enough(db1, db2, c, 1e-5, "bias backward");
    /* concat of 3 parts of 2, 1, 3 channels */
    const int cc[3] = {2, 1, 3};
    float *p[3], *out = zeros((size_t)6 * n * hw), *ref = zeros((size_t)6 * n * hw);
    for (int i = 0; i < 3; i++)
        p[i] = rnd((size_t)cc[i] * n * hw, -1, 1);
    concat_forward(out, (const float *const *)p, cc, 3, n, hw);
    concat_forward_ref(ref, (const float *const *)p, cc, 3, n, hw);
    close_enough(out, ref, (size_t)6 * n * hw, 0, "concat forward");
    float *g[3];
    for (int i = 0; i < 3; i++)
        g[i] = zeros((size_t)cc[i] * n * hw);
    concat_backward(g, out, cc, 3, n, hw);
    for (int i = 0; i < 3; i++)
        close_enough(g[i], p[i], (size_t)cc[i] * n * hw, 0, "concat backward");
    for (int i = 0; i < 3; i++)
        free(p[i]), free(g[i]);
    free(out), free(ref), free(b), free(x), free(y1), free(y2), free(db1), free(db2);
}

typedef struct {
    const conv2d_desc *d; // the convolution
    const float *w;       // its weights
    float *ws;            // work space
} conv_ctx;

static void conv_fwd_fn(float *out, const float *in, const void *ctx)
{
    const conv_ctx *k = ctx;
    conv2d_forward(out, in, k->w, k->d, k->ws);
}

/* The non-square kernels' input gradient against finite differences on tiny shapes. */
static void test_conv_nonsquare_fd(void **state)
{
    (void)state;
    static const int sh[][10] = {{2, 2, 3, 5, 3, 1, 7, 1, 0, 3},
                                 {1, 2, 5, 3, 2, 7, 1, 1, 3, 0},
                                 {2, 3, 2, 3, 2, 1, 3, 1, 0, 1},
                                 {2, 2, 4, 1, 3, 3, 1, 1, 1, 0}};
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        const int *v = sh[s];
        conv2d_desc d;
        conv2d_desc_init_pad(&d, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]);
        size_t ni = (size_t)d.n * d.c * d.h * d.w, no = (size_t)d.n * d.oc * d.oh * d.ow;
        float *in = rnd(ni, -1, 1), *w = rnd((size_t)d.oc * d.c * d.kh * d.kw, -1, 1);
        float *r = rnd(no, -1, 1), *dx = zeros(ni), *ws = zeros(conv2d_workspace_floats(&d));
        conv2d_backward(dx, NULL, r, in, w, &d, ws, 0);
        conv_ctx k = {&d, w, ws};
        fd_linear(conv_fwd_fn, &k, in, ni, no, r, dx, "non-square conv dX vs finite differences");
        free(in), free(w), free(r), free(dx), free(ws);
    }
}

/* ---------- linear ---------- */

static void test_linear(void **state)
{
    (void)state;
    static const int sh[][3] = {{1, 5, 3}, {4, 7, 2}, {9, 16, 10}, {2, 1, 1}};
    for (size_t s = 0; s < 4; s++) {
        int n = sh[s][0], fi = sh[s][1], fo = sh[s][2];
        float *in = rnd((size_t)n * fi, -1, 1), *w = rnd((size_t)fo * fi, -1, 1),
              *b = rnd(fo, -1, 1);
        float *o1 = zeros((size_t)n * fo), *o2 = zeros((size_t)n * fo),
              *r = rnd((size_t)n * fo, -1, 1);
        linear_forward(o1, in, w, b, n, fi, fo);
        linear_forward_ref(o2, in, w, b, n, fi, fo);
        close_enough(o1, o2, (size_t)n * fo, 1e-5, "linear forward");
        linear_forward(o1, in, w, NULL, n, fi, fo);
        linear_forward_ref(o2, in, w, NULL, n, fi, fo);
        close_enough(o1, o2, (size_t)n * fo, 1e-5, "linear forward without bias");
        float *dx1 = zeros((size_t)n * fi), *dx2 = zeros((size_t)n * fi);
        float *dw1 = rnd((size_t)fo * fi, -1, 1), *dw2 = zeros((size_t)fo * fi);
        float *db1 = rnd(fo, -1, 1), *db2 = zeros(fo);
        memcpy(dw2, dw1, sizeof(float) * fo * fi);
        memcpy(db2, db1, sizeof(float) * fo);
        linear_backward(dx1, dw1, db1, r, in, w, n, fi, fo);
        linear_backward_ref(dx2, dw2, db2, r, in, w, n, fi, fo);
        close_enough(dx1, dx2, (size_t)n * fi, 1e-5, "linear dX");
        close_enough(dw1, dw2, (size_t)fo * fi, 1e-5, "linear dW");
        close_enough(db1, db2, fo, 1e-5, "linear db");
        /* finite differences on x, w, b (from zeroed gradients) */
        memset(dw1, 0, sizeof(float) * fo * fi);
        memset(db1, 0, sizeof(float) * fo);
        linear_backward(dx1, dw1, db1, r, in, w, n, fi, fo);
        const float h = 1e-2f;
        float *ps[3] = {in, w, b}, *gs[3] = {dx1, dw1, db1};
        size_t ns[3] = {(size_t)n * fi, (size_t)fo * fi, (size_t)fo};
        for (int t = 0; t < 3; t++)
            for (size_t i = 0; i < ns[t]; i++) {
                float v = ps[t][i];
                ps[t][i] = v + h;
                linear_forward(o1, in, w, b, n, fi, fo);
                double lp = dot(o1, r, (size_t)n * fo);
                ps[t][i] = v - h;
                linear_forward(o1, in, w, b, n, fi, fo);
                double lm = dot(o1, r, (size_t)n * fo);
                ps[t][i] = v;
                assert_float_equal(gs[t][i], (lp - lm) / (2 * h), 1e-3);
            }
        free(in), free(w), free(b), free(o1), free(o2), free(r), free(dx1), free(dx2), free(dw1),
            free(dw2), free(db1), free(db2);
    }
}

/* ---------- loss ---------- */

static void test_softmax_xent(void **state)
{
    (void)state;
    const int n = 4, k = 5;
    float *z = rnd(n * k, -3, 3), p1[20], p2[20], d[20];
    int labels[4] = {0, 4, 2, 2};
    for (int s = 0; s < 2; s++) {
        float sm = s ? 0.1f : 0.0f;
        float l1 = softmax_xent_forward(p1, z, labels, n, k, sm);
        float l2 = softmax_xent_forward_ref(p2, z, labels, n, k, sm);
        assert_float_equal(l1, l2, 1e-5);
        close_enough(p1, p2, n * k, 1e-6, "softmax probabilities");
        softmax_xent_backward(d, p1, labels, n, k, sm);
        const float h = 1e-2f;
        for (int i = 0; i < n * k; i++) {
            float v = z[i];
            z[i] = v + h;
            double lp = softmax_xent_forward_ref(p2, z, labels, n, k, sm);
            z[i] = v - h;
            double lm = softmax_xent_forward_ref(p2, z, labels, n, k, sm);
            z[i] = v;
            assert_float_equal(d[i], (lp - lm) / (2 * h), 2e-4);
        }
    }
    /* a known value: uniform logits give log K */
    float zz[3] = {0, 0, 0}, pp[3];
    int lab = 1;
    assert_float_equal(softmax_xent_forward(pp, zz, &lab, 1, 3, 0), logf(3.0f), 1e-6);
    /* huge logits stay finite */
    float big[2] = {1000, -1000};
    lab = 0;
    assert_float_equal(softmax_xent_forward(pp, big, &lab, 1, 2, 0), 0.0f, 1e-6);
    free(z);
}

/* ---------- elementwise ---------- */

static void test_elementwise(void **state)
{
    (void)state;
    const size_t n = 103;
    float *a = rnd(n, -1, 1), *b = rnd(n, -1, 1), *o = zeros(n), *d = rnd(n, -1, 1), *g = zeros(n);
    relu_forward(o, a, n);
    for (size_t i = 0; i < n; i++)
        assert_float_equal(o[i], a[i] > 0 ? a[i] : 0, 0);
    relu_backward(g, d, o, n);
    for (size_t i = 0; i < n; i++)
        assert_float_equal(g[i], a[i] > 0 ? d[i] : 0, 0);
    add_forward(o, a, b, n, 0);
    for (size_t i = 0; i < n; i++)
        assert_float_equal(o[i], a[i] + b[i], 0);
    add_forward(o, a, b, n, 1);
    for (size_t i = 0; i < n; i++)
        assert_float_equal(o[i], fmaxf(a[i] + b[i], 0), 0);
    /* in place */
    memcpy(g, a, sizeof(float) * n);
    add_forward(g, g, b, n, 1);
    close_enough(g, o, n, 0, "add_forward in place");
    free(a), free(b), free(o), free(d), free(g);
}

static void test_dropout(void **state)
{
    (void)state;
    const size_t n = 20000;
    float *in = rnd(n, 0.5f, 1), *out = zeros(n), *mask = zeros(n), *d = rnd(n, -1, 1),
          *g = zeros(n);
    rng_t r1, r2;
    rng_seed(&r1, 99);
    dropout_forward(out, mask, in, n, 0.3f, &r1);
    size_t dropped = 0;
    for (size_t i = 0; i < n; i++) {
        if (mask[i] == 0) {
            dropped++;
            assert_float_equal(out[i], 0, 0);
        } else {
            assert_float_equal(mask[i], 1.0f / 0.7f, 1e-6);
            assert_float_equal(out[i], in[i] / 0.7f, 1e-5);
        }
    }
    /* about 30 % dropped (6000 +- 5 sigma) */
    assert_true(dropped > 5700 && dropped < 6300);
    /* same seed, same mask */
    float *mask2 = zeros(n);
    rng_seed(&r2, 99);
    dropout_forward(g, mask2, in, n, 0.3f, &r2);
    assert_memory_equal(mask, mask2, n * sizeof(float));
    dropout_backward(g, d, mask, n);
    for (size_t i = 0; i < n; i++)
        assert_float_equal(g[i], d[i] * mask[i], 0);
    /* p = 0 is the identity */
    dropout_forward(out, mask, in, n, 0, &r1);
    close_enough(out, in, n, 0, "dropout p=0");
    free(in), free(out), free(mask), free(d), free(g), free(mask2);
}

static void test_layout(void **state)
{
    (void)state;
    const int n = 3, c = 4, hw = 5;
    float *a = rnd((size_t)n * c * hw, -1, 1), *b = zeros((size_t)n * c * hw),
          *a2 = zeros((size_t)n * c * hw);
    nchw_to_cnhw(b, a, n, c, hw);
    assert_float_equal(b[((size_t)2 * n + 1) * hw + 3], a[((size_t)1 * c + 2) * hw + 3], 0);
    cnhw_to_nchw(a2, b, n, c, hw);
    assert_memory_equal(a, a2, sizeof(float) * n * c * hw);
    free(a), free(b), free(a2);
}

int main(void)
{
    rng_seed(&R, 12345);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_desc),         cmocka_unit_test(test_conv_vs_ref),
        cmocka_unit_test(test_conv_nonsquare),    cmocka_unit_test(test_pool_out_size),
        cmocka_unit_test(test_avgpool2d),         cmocka_unit_test(test_adaptive_avgpool),
        cmocka_unit_test(test_maxpool_ceil),      cmocka_unit_test(test_bias_and_concat),
        cmocka_unit_test(test_conv_nonsquare_fd), cmocka_unit_test(test_winograd),
        cmocka_unit_test(test_winograd7),         cmocka_unit_test(test_conv_smaller_batch),
        cmocka_unit_test(test_conv_fd),           cmocka_unit_test(test_bn_vs_ref),
        cmocka_unit_test(test_bn_running_stats),  cmocka_unit_test(test_bn_fd),
        cmocka_unit_test(test_maxpool),           cmocka_unit_test(test_maxpool_fd),
        cmocka_unit_test(test_avgpool),           cmocka_unit_test(test_linear),
        cmocka_unit_test(test_softmax_xent),      cmocka_unit_test(test_elementwise),
        cmocka_unit_test(test_dropout),           cmocka_unit_test(test_layout),
        cmocka_unit_test(test_engine_threads),    cmocka_unit_test(test_conv_prepared),
        cmocka_unit_test(test_tap_major_rows),    cmocka_unit_test(test_conv_backward_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
