/* winograd7 — one-dimensional Winograd F(2, 7) for the 1x7 and 7x1
 * stride-1 "same" convolutions of Inception v3 (worker/engine/winograd7.c).
 * conv2d_forward/backward (layers.h) send such convolutions here for the
 * forward pass and the input gradient; the weight gradient stays on im2col.
 * SWEEP_WINOGRAD=0 in the environment turns this kernel off as well.
 *
 * Each pair of neighbouring outputs along the kernel's axis costs 8
 * multiplies per channel pair instead of 14 (1.75x fewer in the matrix
 * products). The 8 interpolation points (0, +-1, +-2, +-1/2, infinity) are
 * those of the widely used F(6, 3); in float32 one convolution's error is
 * about 2e-6 of its largest output (against 2e-7 for direct summation),
 * measured on 192 channels.
 *
 * Activations are channel-major (C, N, H, W) as everywhere in the engine
 * (layers.h). The transforms and products run on the engine's threads
 * (pool.h); results depend only on the thread count. */
#ifndef SWEEP_WINOGRAD7_H
#define SWEEP_WINOGRAD7_H

#include <stddef.h>

#include "winograd.h"

/* Whether the kernel can run D: stride 1 and either a 1x7 kernel with width
 * padding 3 and no height padding, or a 7x1 kernel with height padding 3 and
 * no width padding (output size = input size), the input 2..1024 wide and
 * at least 2 along the kernel's axis. */
int winograd7_applicable(const conv2d_desc *d);
/* Floats of work buffer winograd7_conv needs for D; also enough for the same
 * convolution with any smaller batch n. */
size_t winograd7_workspace_floats(const conv2d_desc *d);
/* out (OC, N, H, W) = conv(in (C, N, H, W), w), or += when ACCUMULATE.
 * Without FLIP, w is (OC, C, 7) (the 1x7 or 7x1 taps). With FLIP it takes w
 * as the (C, OC, 7) weights of the forward convolution and convolves with
 * them transposed and reversed (the input gradient), D then describing that
 * backward convolution (C and OC swapped). ws: winograd7_workspace_floats(d). */
void winograd7_conv(float *out, const float *in, const float *w, const conv2d_desc *d, float *ws,
                    int flip, int accumulate);

#endif
