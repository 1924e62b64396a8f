/* layers — the numerical kernels of the worker: forward/backward pairs for the
 * layers of a ResNet, float32, on OpenBLAS (cblas_sgemm).
 *
 * Activation layout. Image batches enter and leave the model as NCHW, but
 * inside the network every 4-d activation is stored CHANNEL-MAJOR: (C, N, H, W),
 * i.e. channel c of image n at row y, column x is
 *     a[((c * N + n) * H + y) * W + x].
 * With this layout a convolution over the whole batch is one GEMM whose
 * result already is the output tensor (OC, N*OH*OW); 1x1 stride-1 convolutions
 * need no im2col at all (the input is the (C, N*H*W) matrix), and batchnorm
 * statistics per channel run over one contiguous block. For N = 1 the layout is
 * the same as NCHW. nchw_to_cnhw()/cnhw_to_nchw() convert.
 *
 * Conventions:
 * - `name_forward(out, in, weights..., dims)` / `name_backward(din, dweights...,
 *   dout, saved..., dims)`.
 * - Weight gradients (dw, dgamma, dbeta, db) are ACCUMULATED (+=); callers
 *   zero them once per step. Any weight gradient pointer may be NULL (frozen
 *   layer: not computed).
 * - Input gradients (din) are OVERWRITTEN unless a function says otherwise;
 *   din may be NULL where noted (the first trained layer needs no dX).
 * - Buffers never alias unless a function says they may.
 * - Work buffers (`ws`) are provided by the caller, sized by the matching
 *   *_workspace_floats() function, so nothing allocates inside a step.
 * - Kernels are deterministic for a fixed engine thread count (layers_set_threads).
 * - Environment switches for comparisons: SWEEP_WINOGRAD=0 (im2col for every
 *   convolution), SWEEP_POOL=0 (elementwise passes on the calling thread),
 *   SWEEP_GEMM_SPLIT=0 (matrix products threaded by OpenBLAS), SWEEP_DENSE=0
 *   (no dense product for convolutions on tiny maps), SWEEP_POOL_SPIN=N (pause
 *   loops a waiting pool thread spins before sleeping; default 4000, 0 = none).
 *
 * Naive references with the same signatures and a `_ref` suffix live in
 * worker/engine/layers_ref.c (double accumulation, direct loops, no BLAS); the unit
 * tests compare the two on many shapes. */
#ifndef SWEEP_LAYERS_H
#define SWEEP_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"

/* ---------- parallel loops ---------- */

typedef void (*par_fn)(void *ctx, size_t i0, size_t i1);
/* Runs FN(ctx, i0, i1) over contiguous parts of [0, n) on the calling thread
 * plus helper threads (as many in all as layers_threads()), each part at least
 * GRAIN indices; returns when all are done. FN must compute every index the
 * same way whatever the split (results then do not depend on the thread
 * count). Called from one thread at a time; FN must not call it again
 * (no nesting). */
void layers_parallel_for(size_t n, size_t grain, par_fn fn, void *ctx);

/* ---------- threads and GEMM ---------- */

/* Sets the engine's thread count T (clamped to 1..16): the pool of
 * layers_parallel_for and the matrix products. By default (GEMM split mode)
 * OpenBLAS itself runs single-threaded and every large product is cut into T
 * column (or row) blocks that the pool's threads multiply at once, so one set
 * of T threads does all the work: OpenBLAS's own threads would otherwise spin
 * on the cores while the pool runs the elementwise passes, and its per-call
 * hand-off costs more than ours on the many mid-sized products of a ResNet
 * step. SWEEP_GEMM_SPLIT=0 in the environment gives the products back to
 * OpenBLAS's threads (T of them). Before the first call the engine follows
 * OpenBLAS's own thread count and leaves OpenBLAS alone. */
void layers_set_threads(int t);
/* The engine's thread count (see layers_set_threads). */
int layers_threads(void);
/* Row-major C = alpha * op(A) op(B) + beta * C, as cblas_sgemm, run on the
 * engine's threads as layers_set_threads describes. Each element of C is
 * computed by one single-threaded product whatever the split, so results
 * depend only on the thread count. */
void layers_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                  int lda, const float *b, int ldb, float beta, float *c, int ldc);
/* Runs FN(ctx, i0, i1) over [0, n) items that each make one or more
 * independent matrix products with cblas_sgemm (e.g. the 16 products of a
 * Winograd tile): spread over the engine's threads in split mode (each
 * product then runs single-threaded), on the calling thread otherwise
 * (OpenBLAS threads each product). Not nested in layers_parallel_for. */
void layers_gemm_batch(size_t n, par_fn fn, void *ctx);

/* ---------- layout conversion ---------- */

/* dst (C, N, HW) <- src (N, C, HW). */
void nchw_to_cnhw(float *dst, const float *src, int n, int c, int hw);
/* dst (N, C, HW) <- src (C, N, HW). */
void cnhw_to_nchw(float *dst, const float *src, int n, int c, int hw);

/* ---------- conv2d (no bias; ResNet convolutions have none) ---------- */

typedef struct {
    int n;       // batch size
    int c, h, w; // input channels, height, width
    int oc;      // output channels
    int kh, kw;  // kernel height, width
    int stride;  // stride (both dimensions)
    int pad;     // zero padding (both dimensions)
    int oh, ow;  // output height, width (set by conv2d_desc_init)
} conv2d_desc;

/* Fills D; output size oh = (h + 2*pad - kh)/stride + 1 (likewise ow).
 * Returns 0, or ERR_INVALID when a dimension is not positive or the kernel
 * does not fit the padded input. */
int conv2d_desc_init(conv2d_desc *d, int n, int c, int h, int w, int oc, int kh, int kw, int stride,
                     int pad);
/* Floats of work buffer conv2d_forward/backward need for D (may be 0); also
 * enough for the same convolution with any smaller batch n. */
size_t conv2d_workspace_floats(const conv2d_desc *d);
/* out (OC, N, OH, OW) = conv(in (C, N, H, W), w (OC, C, KH, KW)).
 * ws: conv2d_workspace_floats(d) floats. */
void conv2d_forward(float *out, const float *in, const float *w, const conv2d_desc *d, float *ws);
/* dw (OC, C, KH, KW) += dL/dw (skipped when dw is NULL);
 * din (C, N, H, W) = dL/din, or += when din_accumulate is non-zero (skipped
 * when din is NULL). dout (OC, N, OH, OW); in and w as in the forward pass. */
void conv2d_backward(float *din, float *dw, const float *dout, const float *in, const float *w,
                     const conv2d_desc *d, float *ws, int din_accumulate);

/* Winograd F(2x2, 3x3) kernel behind conv2d_forward/backward for 3x3
 * stride-1 pad-1 convolutions (worker/engine/winograd.c). Applicable when the CPU
 * has AVX-512 and the input is 2..1024 wide. winograd_conv computes
 * out (OC, N, H, W) = conv(in, w) (or += when accumulate); with flip it
 * takes w as the (C, OC, 3, 3) weights of the forward convolution and
 * convolves with them transposed and rotated (the input gradient), D then
 * describing that backward convolution. ws: winograd_workspace_floats(d). */
int winograd_applicable(const conv2d_desc *d);
size_t winograd_workspace_floats(const conv2d_desc *d);
void winograd_conv(float *out, const float *in, const float *w, const conv2d_desc *d, float *ws,
                   int flip, int accumulate);
/* dw (OC, C, 3, 3) += weight gradient from dy (OC, N, H, W) and in (C, N, H, W)
 * through F(3x3, 2x2) (the transpose of the forward algorithm). */
void winograd_wgrad(float *dw, const float *dy, const float *in, const conv2d_desc *d, float *ws);

/* Prepared weights. Convolutions on maps with fewer pixels than kernel taps
 * (3x3 on 2x2: layer4 at input 64) run as one dense product with a matrix
 * built from W on every call. conv2d_prep_floats gives its size (0 when D
 * does not use one; the same for every batch size); conv2d_prepare builds it
 * into PREP from W; the _prep variants take it instead of building (PREP may
 * be NULL: then they are conv2d_forward/backward). PREP must have been built
 * from the current W: a training step builds it in the forward pass and
 * reuses it in the backward pass, before the weights change. */
size_t conv2d_prep_floats(const conv2d_desc *d);
void conv2d_prepare(float *prep, const float *w, const conv2d_desc *d);
void conv2d_forward_prep(float *out, const float *in, const float *w, const float *prep,
                         const conv2d_desc *d, float *ws);
void conv2d_backward_prep(float *din, float *dw, const float *dout, const float *in, const float *w,
                          const float *prep, const conv2d_desc *d, float *ws, int din_accumulate);

/* ---------- batchnorm2d (+ optional fused ReLU) ---------- */

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

/* Training mode, in/out (C, N, HW) (out may equal in): batch mean and biased
 * variance per channel normalise the input; out = gamma*xhat + beta, then
 * max(0, .) when relu is non-zero. Running stats are updated as PyTorch does:
 * running_mean = (1-momentum)*running_mean + momentum*mean,
 * running_var  = (1-momentum)*running_var + momentum*var*M/(M-1), M = N*HW
 * (skipped when running_mean is NULL). save_mean, save_invstd (C) receive the
 * batch mean and 1/sqrt(var + eps) for the backward pass. */
void batchnorm_forward_train(float *out, const float *in, const float *gamma, const float *beta,
                             float *running_mean, float *running_var, float *save_mean,
                             float *save_invstd, int n, int c, int hw, float momentum, float eps,
                             int relu);
/* Evaluation mode with running statistics; out may equal in. */
void batchnorm_forward_eval(float *out, const float *in, const float *gamma, const float *beta,
                            const float *running_mean, const float *running_var, int n, int c,
                            int hw, float eps, int relu);
/* Backward of the training-mode pass. in: the forward input (C, N, HW); out:
 * the forward output (only read when relu is non-zero, for the ReLU mask);
 * dout (C, N, HW). dgamma, dbeta (C) accumulate (may be NULL); din (C, N, HW)
 * is overwritten (may be NULL; may equal dout). */
void batchnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout, const float *in,
                        const float *out, const float *gamma, const float *save_mean,
                        const float *save_invstd, int n, int c, int hw, int relu);
/* Backward of the evaluation-mode pass (statistics are constants):
 * din = dout' * gamma * invstd, with dout' masked by out > 0 when relu. */
void batchnorm_backward_eval(float *din, float *dgamma, float *dbeta, const float *dout,
                             const float *in, const float *out, const float *gamma,
                             const float *running_mean, const float *running_var, int n, int c,
                             int hw, float eps, int relu);

/* ---------- elementwise ---------- */

/* out[i] = max(0, in[i]) over COUNT floats (out may equal in). */
void relu_forward(float *out, const float *in, size_t count);
/* din[i] = out[i] > 0 ? dout[i] : 0 (din may equal dout). */
void relu_backward(float *din, const float *dout, const float *out, size_t count);
/* Residual join: out = a + b, then max(0, .) when relu (out may equal a or b).
 * Its backward is relu_backward (relu) or the identity, given to both inputs. */
void add_forward(float *out, const float *a, const float *b, size_t count, int relu);

/* Inverted dropout over COUNT floats: mask[i] = 0 with probability p, else
 * 1/(1-p), drawn from RNG with rng_uniform_f in index order; out = in*mask
 * (out may equal in). p == 0 copies and sets mask to 1. */
void dropout_forward(float *out, float *mask, const float *in, size_t count, float p, rng_t *rng);
/* din = dout * mask (din may equal dout). */
void dropout_backward(float *din, const float *dout, const float *mask, size_t count);

/* ---------- pooling ---------- */

/* Max pooling, in (C, N, H, W) -> out (C, N, OH, OW), OH = (H + 2*pad - k)/stride + 1;
 * padding never wins (behaves as -inf). idx (C, N, OH, OW) receives the
 * winning input position y*W + x inside its plane (the first maximum in
 * row-major order), for the backward pass; idx may be NULL when no backward
 * pass follows (a faster vectorised path runs for 3x3/2/pad 1). */
void maxpool2d_forward(float *out, int32_t *idx, const float *in, int n, int c, int h, int w, int k,
                       int stride, int pad, int oh, int ow);
/* din (C, N, H, W) = scatter of dout (C, N, OH, OW) to the winners (overwritten). */
void maxpool2d_backward(float *din, const float *dout, const int32_t *idx, int n, int c, int h,
                        int w, int oh, int ow);
/* Global average pool: in (C, N, HW) -> out (N, C) (note: batch-major, ready
 * for linear_forward). */
void avgpool_forward(float *out, const float *in, int n, int c, int hw);
/* din (C, N, HW) = dout (N, C) / HW (overwritten). */
void avgpool_backward(float *din, const float *dout, int n, int c, int hw);

/* ---------- linear ---------- */

/* out (N, O) = in (N, I) * w (O, I)^T + b (O) (b may be NULL). */
void linear_forward(float *out, const float *in, const float *w, const float *b, int n, int in_f,
                    int out_f);
/* dw (O, I) += dout^T in; db (O) += column sums of dout (each may be NULL);
 * din (N, I) = dout w (overwritten; may be NULL). */
void linear_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                     const float *w, int n, int in_f, int out_f);

/* ---------- loss ---------- */

/* Softmax cross-entropy, mean over the batch like torch.nn.CrossEntropyLoss
 * with label_smoothing: target = (1-s)*onehot(label) + s/K.
 * logits (N, K), labels (N) in [0, K); probs (N, K) receives the softmax.
 * Returns the mean loss (may be inf/nan if the logits are). */
float softmax_xent_forward(float *probs, const float *logits, const int *labels, int n, int k,
                           float smoothing);
/* dlogits (N, K) = (probs - target) / N (overwritten; may equal probs). */
void softmax_xent_backward(float *dlogits, const float *probs, const int *labels, int n, int k,
                           float smoothing);

/* ---------- naive references (worker/engine/layers_ref.c) ---------- */
/* Same contracts as above; direct loops with double accumulation; slow. */

void conv2d_forward_ref(float *out, const float *in, const float *w, const conv2d_desc *d);
void conv2d_backward_ref(float *din, float *dw, const float *dout, const float *in, const float *w,
                         const conv2d_desc *d, int din_accumulate);
void batchnorm_forward_train_ref(float *out, const float *in, const float *gamma, const float *beta,
                                 float *running_mean, float *running_var, float *save_mean,
                                 float *save_invstd, int n, int c, int hw, float momentum,
                                 float eps, int relu);
void batchnorm_forward_eval_ref(float *out, const float *in, const float *gamma, const float *beta,
                                const float *running_mean, const float *running_var, int n, int c,
                                int hw, float eps, int relu);
void batchnorm_backward_ref(float *din, float *dgamma, float *dbeta, const float *dout,
                            const float *in, const float *out, const float *gamma,
                            const float *save_mean, const float *save_invstd, int n, int c, int hw,
                            int relu);
void maxpool2d_forward_ref(float *out, int32_t *idx, const float *in, int n, int c, int h, int w,
                           int k, int stride, int pad, int oh, int ow);
void maxpool2d_backward_ref(float *din, const float *dout, const int32_t *idx, int n, int c, int h,
                            int w, int oh, int ow);
void avgpool_forward_ref(float *out, const float *in, int n, int c, int hw);
void linear_forward_ref(float *out, const float *in, const float *w, const float *b, int n,
                        int in_f, int out_f);
void linear_backward_ref(float *din, float *dw, float *db, const float *dout, const float *in,
                         const float *w, int n, int in_f, int out_f);
float softmax_xent_forward_ref(float *probs, const float *logits, const int *labels, int n, int k,
                               float smoothing);

#endif
