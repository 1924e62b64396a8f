/* optim — SGD (momentum, Nesterov), Adam and AdamW over one flat array of
 * parameters and its gradient array (resnet_trainable() gives both), with
 * PyTorch's update rules so results match torch.optim step for step.
 *
 *   g = grad + l1*sign(p) [+ weight_decay*p for SGD and Adam (L2)]
 *   SGD:   buf = momentum*buf + g   (buf starts at 0, so the first buf = g)
 *          p -= lr * (nesterov ? g + momentum*buf : buf)   (momentum 0: p -= lr*g)
 *   Adam:  m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2; t += 1
 *          p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
 *   AdamW: p *= 1 - lr*weight_decay first (decoupled), then Adam without L2.
 * The learning rate is passed per step (schedules live in the caller).
 *
 * State lives in one allocation, `state`, laid out slot by slot, each slot
 * parallel to the parameter array (same offsets as resnet_tensor.offset):
 *   SGD:  slot 0 momentum (n)                  (absent when momentum == 0)
 *   Adam: slot 0 exp_avg (n), slot 1 exp_avg_sq (n)
 * A checkpoint saves optim_slot(o, k) + offset per tensor and `step`. */
#ifndef SWEEP_OPTIM_H
#define SWEEP_OPTIM_H

#include <stddef.h>

#include "params.h"

typedef struct {
    optim_kind kind;    // OPTIM_SGD, OPTIM_ADAM, OPTIM_ADAMW
    float momentum;     // SGD momentum, or Adam beta1 (PyTorch default 0.9)
    float beta2;        // Adam beta2 (0.999)
    float eps;          // Adam epsilon (1e-8)
    float weight_decay; // L2 (SGD, Adam) or decoupled decay (AdamW), >= 0
    float l1;           // L1 coefficient, >= 0
    int nesterov;       // SGD only; requires momentum > 0
} optim_config;

typedef struct {
    optim_config cfg;   // copy of the configuration
    size_t n;           // number of parameters updated
    int slots;          // state slots: 0 or 1 (SGD), 2 (Adam/AdamW)
    float *state;       // (slots, n) state, zero at start; owned
    long step;          // steps taken so far (Adam bias correction)
    void *blocks;       // optim_step_copy's work list (nblocks_cap entries), owned; may be NULL
    size_t nblocks_cap; // entries allocated in blocks
} optim;

/* A tap-major copy of one block of the parameters that optim_step_copy
 * rewrites from the updated values in its update pass (a convolution's
 * prepared weights, conv2d_prep_taps): the block is params[offset ..
 * offset + rows*cols*kk) laid out (rows, cols, kk), and after the step
 *   dst[(t*rows + r)*cols + c] = params[offset + (r*cols + c)*kk + tap[t]]
 * for t < ntaps. Blocks of different copies must not overlap. */
typedef struct {
    size_t offset;      // first parameter of the block (index into params)
    int rows, cols, kk; // block shape: a convolution weight's (OC, C, KH*KW)
    int ntaps;          // slices of dst, 1..kk
    const int *tap;     // (ntaps) index in [0, kk) of each slice
    float *dst;         // (ntaps, rows, cols) the copy, overwritten
} optim_copy;

/* Fills CFG from trial params: kind, momentum (beta1 for Adam), weight
 * decay, l1, nesterov; beta2 0.999, eps 1e-8. */
void optim_config_from_params(optim_config *cfg, const trial_params *p);
/* Allocates zeroed state for N parameters. ERR_INVALID for a bad config
 * (nesterov without momentum, negative coefficients), ERR_NOMEM. */
int optim_init(optim *o, const optim_config *cfg, size_t n, char *msg, size_t msglen);
void optim_free(optim *o);
/* One update of PARAMS (n) from GRADS (n) with learning rate LR.
 * GRADS is read only. */
void optim_step(optim *o, float *params, const float *grads, float lr);
/* optim_step, and in the same pass over the parameters the NC copies of
 * COPIES (optim_copy) rewritten from the updated values: the parameters and
 * the state come out exactly as from optim_step. Falls back to optim_step
 * plus a separate copy pass when its work list cannot be allocated. */
void optim_step_copy(optim *o, float *params, const float *grads, float lr,
                     const optim_copy *copies, int nc);
/* Reference of optim_step_copy for tests: optim_step, then the copies with
 * direct loops. */
void optim_step_copy_ref(optim *o, float *params, const float *grads, float lr,
                         const optim_copy *copies, int nc);
/* State slot K (n floats), or NULL when K >= slots. */
float *optim_slot(optim *o, int k);
/* Name of slot K for checkpoints (notes/checkpoint-keys.md): "momentum" (SGD),
 * "exp_avg", "exp_avg_sq" (Adam). */
const char *optim_slot_name(const optim *o, int k);
/* Zeroes the state and the step count. */
void optim_reset(optim *o);

#endif
