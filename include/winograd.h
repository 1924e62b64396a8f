/* winograd — the Winograd F(2x2, 3x3) kernel for 3x3 stride-1 pad-1
 * convolutions (worker/engine/winograd.c), and the convolution shape it
 * shares with the layers. conv2d_forward/backward (layers.h) send such
 * convolutions here for the forward pass, the input gradient and, on wide
 * maps or many channels, the weight gradient; SWEEP_WINOGRAD=0 in the
 * environment makes them use im2col instead (layers.c decides).
 *
 * Activations are channel-major (C, N, H, W) as everywhere in the engine
 * (layers.h). The transforms and products run on the engine's threads
 * (pool.h); results depend only on the thread count. */
#ifndef SWEEP_WINOGRAD_H
#define SWEEP_WINOGRAD_H

#include <stddef.h>

/* The shape of a 2-d convolution (no bias; ResNet convolutions have none).
 * conv2d_desc_init (layers.h) fills it and checks it. */
typedef struct {
    int n;       // batch size
    int c, h, w; // input channels, height, width
    int oc;      // output channels
    int kh, kw;  // kernel height, width
    int stride;  // stride (both dimensions)
    int pad;     // zero padding of the height (and of the width unless padw differs)
    int padw;    // zero padding of the width (= pad unless conv2d_desc_init_pad set it)
    int oh, ow;  // output height, width (set by conv2d_desc_init)
} conv2d_desc;

/* Whether the kernel can run D: the CPU has AVX-512, D is 3x3 stride 1
 * pad 1 and the input is 2..1024 wide (and at least 2 high). */
int winograd_applicable(const conv2d_desc *d);
/* Floats of work buffer winograd_conv and winograd_wgrad need for D; also
 * enough for the same convolution with any smaller batch n. */
size_t winograd_workspace_floats(const conv2d_desc *d);
/* Tile rows per chunk for a Winograd kernel (this one and winograd7.h):
 * ROWS tile rows of TW tiles, TILE_FLOATS floats of transformed input and
 * products per tile; about 4 MiB per chunk and at least 256 tiles. With
 * BALANCED the chunks are evened out; without, the value bounds the
 * balanced one for every smaller ROWS (work space sizes use it). */
int winograd_chunk_rows(int rows, int tw, size_t tile_floats, int balanced);
/* out (OC, N, H, W) = conv(in (C, N, H, W), w), or += when ACCUMULATE.
 * Without FLIP, w is (OC, C, 3, 3). With FLIP it takes w as the (C, OC, 3, 3)
 * weights of the forward convolution and convolves with them transposed and
 * rotated by 180 degrees (the input gradient), D then describing that
 * backward convolution (C and OC swapped). ws: winograd_workspace_floats(d). */
void winograd_conv(float *out, const float *in, const float *w, const conv2d_desc *d, float *ws,
                   int flip, int accumulate);
/* dw (OC, C, 3, 3) += weight gradient from dy (OC, N, H, W) and in (C, N, H, W)
 * through F(3x3, 2x2) (the transpose of the forward algorithm).
 * ws: winograd_workspace_floats(d). */
void winograd_wgrad(float *dw, const float *dy, const float *in, const conv2d_desc *d, float *ws);

#endif
