/* layers — the numerical kernels of the worker: forward/backward pairs for the
 * layers of ResNet, VGG and Inception v3, float32, on OpenBLAS (cblas_sgemm).
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
 * - Kernels run on the engine's threads (pool.h) and are deterministic for a
 *   fixed engine thread count (layers_set_threads).
 * - 3x3 stride-1 pad-1 convolutions go through Winograd (winograd.h, which
 *   also defines conv2d_desc) where it pays off; in evaluation
 *   (conv2d_forward_eval) 1x7 and 7x1 "same" ones through the 1-D F(2, 7)
 *   (winograd7.h).
 * - Environment switches for comparisons: SWEEP_WINOGRAD=0 (im2col for every
 *   convolution), SWEEP_DENSE=0 (no dense product for convolutions on tiny
 *   maps); the pool's own (SWEEP_POOL, SWEEP_GEMM_SPLIT, SWEEP_POOL_SPIN) are
 *   in pool.h.
 *
 * Naive references with the same signatures and a `_ref` suffix live in
 * worker/engine/layers_ref.c (double accumulation, direct loops, no BLAS); the unit
 * tests compare the two on many shapes. */
#ifndef SWEEP_LAYERS_H
#define SWEEP_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"
#include "winograd.h"

/* ---------- layout conversion ---------- */

/* dst (C, N, HW) <- src (N, C, HW). */
void nchw_to_cnhw(float *dst, const float *src, int n, int c, int hw);
/* dst (N, C, HW) <- src (C, N, HW). */
void cnhw_to_nchw(float *dst, const float *src, int n, int c, int hw);

/* ---------- conv2d (no bias; ResNet convolutions have none) ---------- */

/* Fills D (conv2d_desc is defined in winograd.h); output size
 * oh = (h + 2*pad - kh)/stride + 1 (likewise ow). Returns 0, or ERR_INVALID
 * when a dimension is not positive or the kernel does not fit the padded
 * input. */
int conv2d_desc_init(conv2d_desc *d, int n, int c, int h, int w, int oc, int kh, int kw, int stride,
                     int pad);
/* The same with separate paddings of the height (PAD) and the width (PADW),
 * for non-square kernels (Inception's 1x7 pad (0, 3), 3x1 pad (1, 0), ...):
 * ow = (w + 2*padw - kw)/stride + 1. */
int conv2d_desc_init_pad(conv2d_desc *d, int n, int c, int h, int w, int oc, int kh, int kw,
                         int stride, int pad, int padw);
/* Floats of work buffer conv2d_forward/backward need for D (may be 0); also
 * enough for the same convolution with any smaller batch n. */
size_t conv2d_workspace_floats(const conv2d_desc *d);
/* out (OC, N, OH, OW) = conv(in (C, N, H, W), w (OC, C, KH, KW)).
 * ws: conv2d_workspace_floats(d) floats. */
void conv2d_forward(float *out, const float *in, const float *w, const conv2d_desc *d, float *ws);
/* conv2d_forward for evaluation only (no backward pass follows): may use
 * kernels whose rounding error is fine for predictions but not for
 * training (1x7 and 7x1 through F(2, 7), winograd7.h). */
void conv2d_forward_eval(float *out, const float *in, const float *w, const conv2d_desc *d,
                         float *ws);
/* dw (OC, C, KH, KW) += dL/dw (skipped when dw is NULL);
 * din (C, N, H, W) = dL/din, or += when din_accumulate is non-zero (skipped
 * when din is NULL). dout (OC, N, OH, OW); in and w as in the forward pass. */
void conv2d_backward(float *din, float *dw, const float *dout, const float *in, const float *w,
                     const conv2d_desc *d, float *ws, int din_accumulate);

/* Prepared weights. Convolutions on tiny maps (3x3 on 2x2 and 3x3 stride 2
 * from 4x4: layer4 at input 64) run per kernel tap with a tap-major copy of W
 * (SWEEP_DENSE_TAPS=0: as one dense product with a matrix built from W),
 * built on every call. conv2d_prep_floats gives its size (0 when D
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

/* The taps of a tap-major PREP: when conv2d_prepare builds one for D
 * (per-tap products), writes its kernel tap ky*KW + kx of each slice to TAP
 * (room for KH*KW ints, at most 64) and returns the slice count T; PREP is
 * then (T, OC, C) with prep[(t*OC + o)*C + c] = w[(o*C + c)*KH*KW + tap[t]].
 * Returns 0 when D has no prep or it is not tap-major (SWEEP_DENSE_TAPS=0). */
int conv2d_prep_taps(const conv2d_desc *d, int *tap);
/* Rows [O0, O1) of a tap-major copy of W (OC, C, KK): for t < NTAPS and
 * o0 <= o < o1, dst[(t*OC + o)*C + c] = w[(o*C + c)*KK + tap[t]]. A pure
 * copy (bit-exact whichever path: AVX-512 gathers where the CPU has them);
 * conv2d_prepare builds a tap-major PREP with it, optim_step_copy rewrites
 * one (optim.h) right after each update. */
void conv2d_tap_major_rows(float *dst, const float *w, int oc, int c, int kk, const int *tap,
                           int ntaps, int o0, int o1);
/* conv2d_backward_prep with the weight gradient OVERWRITTEN, dw = dL/dw
 * (instead of +=), so a caller need not zero it first; on the per-tap path
 * the products' reduce writes dw directly (no read of dw, no zeroing pass). */
void conv2d_backward_prep_set(float *din, float *dw, const float *dout, const float *in,
                              const float *w, const float *prep, const conv2d_desc *d, float *ws,
                              int din_accumulate);

/* Per-channel bias of a convolution (VGG's convolutions have one):
 * out (C, N, HW) += b (C), then max(0, .) when relu (in place). */
void bias_forward(float *out, const float *b, int n, int c, int hw, int relu);
/* db (C) += sums of dout (C, N, HW) over N and HW. */
void bias_backward(float *db, const float *dout, int n, int c, int hw);

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
 * pass follows (a faster vectorised path runs for 3x3/2/pad 0 or 1). */
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

/* Output size of a pooling window K, STRIDE, PAD over IN pixels as PyTorch
 * computes it: floor((in + 2*pad - k)/stride) + 1, or with CEIL the ceiling,
 * less one when the last window would start inside the right padding only.
 * Returns 0 when no window fits. (maxpool2d_forward clips windows to the
 * input, so ceil-mode sizes run through it unchanged.) */
int pool_out_size(int in, int k, int stride, int pad, int ceil_mode);
/* Average pooling, in (C, N, H, W) -> out (C, N, OH, OW), window K, STRIDE,
 * PAD; with COUNT_PAD (PyTorch's count_include_pad, the default of
 * F.avg_pool2d and the one torchvision's Inception uses) the divisor is K*K
 * clipped to the padded input, else the number of input pixels in the window.
 * Inception's branch pools are 3x3 / 1 / pad 1, its auxiliary head 5x5 / 3. */
void avgpool2d_forward(float *out, const float *in, int n, int c, int h, int w, int k, int stride,
                       int pad, int count_pad, int oh, int ow);
/* din (C, N, H, W) = dL/din (overwritten) from dout (C, N, OH, OW). */
void avgpool2d_backward(float *din, const float *dout, int n, int c, int h, int w, int k,
                        int stride, int pad, int count_pad, int oh, int ow);
/* Adaptive average pooling as torch.nn.AdaptiveAvgPool2d: output cell (oy, ox)
 * averages input rows [floor(oy*H/OH), ceil((oy+1)*H/OH)) and likewise
 * columns (VGG's pool to 7x7: identity at 224, replication on smaller maps).
 * in (C, N, H, W) -> out (C, N, OH, OW). */
void adaptive_avgpool_forward(float *out, const float *in, int n, int c, int h, int w, int oh,
                              int ow);
/* din (C, N, H, W) = dL/din (overwritten). */
void adaptive_avgpool_backward(float *din, const float *dout, int n, int c, int h, int w, int oh,
                               int ow);

/* ---------- channel concatenation ----------
 * In the channel-major layout, torch.cat(dim=1) of tensors (C_i, N, H, W) is
 * their blocks one after the other: a model lets each branch write straight
 * into its slice of the concatenated buffer (offset sum C_j*N*H*W, j < i)
 * and reads the branch gradients from the same slices, with no copy. These
 * two functions do it explicitly for callers that have separate buffers. */

/* out (sum C_i, N, HW) <- the K inputs in[i] (c[i], N, HW). */
void concat_forward(float *out, const float *const *in, const int *c, int k, int n, int hw);
/* din[i] (c[i], N, HW) = its slice of dout (overwritten; din[i] may be NULL). */
void concat_backward(float *const *din, const float *dout, const int *c, int k, int n, int hw);

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
void bias_forward_ref(float *out, const float *b, int n, int c, int hw, int relu);
void bias_backward_ref(float *db, const float *dout, int n, int c, int hw);
void avgpool2d_forward_ref(float *out, const float *in, int n, int c, int h, int w, int k,
                           int stride, int pad, int count_pad, int oh, int ow);
void avgpool2d_backward_ref(float *din, const float *dout, int n, int c, int h, int w, int k,
                            int stride, int pad, int count_pad, int oh, int ow);
void adaptive_avgpool_forward_ref(float *out, const float *in, int n, int c, int h, int w, int oh,
                                  int ow);
void adaptive_avgpool_backward_ref(float *din, const float *dout, int n, int c, int h, int w,
                                   int oh, int ow);
/* Concatenation along channels in NCHW (torch.cat(dim=1)) on the channel-major layout:
 * element by element, for checking concat_forward/backward. */
void concat_forward_ref(float *out, const float *const *in, const int *c, int k, int n, int hw);
void linear_forward_ref(float *out, const float *in, const float *w, const float *b, int n,
                        int in_f, int out_f);
void linear_backward_ref(float *din, float *dw, float *db, const float *dout, const float *in,
                         const float *w, int n, int in_f, int out_f);
float softmax_xent_forward_ref(float *probs, const float *logits, const int *labels, int n, int k,
                               float smoothing);

#endif
