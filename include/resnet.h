/* resnet — the model interface of the worker: the ResNet family (BasicBlock:
 * resnet18/34, Bottleneck: resnet50/101/152, and wider/narrower variants)
 * with forward and backward passes, loaded from safetensors files under
 * torchvision/timm tensor names or built from scratch with PyTorch's default
 * initialisation. The same handle and functions also serve the other
 * families of arch.h, VGG (vgg.h) and Inception v3 (inception.h), which run
 * on the graph engine of net.h: resnet_create picks the builder by the arch's
 * family, resnet_from_safetensors by the file's tensor names (a file of no
 * known family is refused with the list of families), resnet_prepare maps the
 * freeze point through arch_freeze_level. What follows about structure and
 * memory is the ResNet's; net.h describes the others'.
 *
 * Tensor names (torchvision = timm for ResNets):
 *   conv1.weight, bn1.{weight,bias,running_mean,running_var},
 *   layerL.B.convK.weight, layerL.B.bnK.{...}            L = 1..4, K = 1..2 (3 for Bottleneck)
 *   layerL.B.downsample.0.weight, layerL.B.downsample.1.{...}
 *   fc.weight (classes, features), fc.bias (classes)
 * Block type (layer1.0.conv3.weight present -> Bottleneck), block counts per
 * stage and channel widths come from the names and shapes, so any width loads.
 * Extra tensors (num_batches_tracked, optim.*, ...) are ignored.
 *
 * Memory. One model owns three allocations made once:
 *   params  - every parameter (conv/BN/fc weights), in network order, contiguous;
 *   buffers - BN running_mean/running_var;
 *   arena   - (resnet_prepare) gradients of the TRAINABLE parameters, saved
 *             activations for a batch of up to max_batch images, backward
 *             buffers and conv work space; touched once when allocated and
 *             reused by every step (first touch of memory is slow, about 9 us per 4 KiB page).
 * Because freezing freezes a prefix of the network, the trainable parameters
 * are a contiguous SUFFIX of `params`: resnet_trainable() gives that suffix and
 * the matching gradient array, which is all an optimizer needs (optim.h).
 *
 * Modes. In training mode (resnet_set_train(m, 1)) batchnorm layers of the
 * trainable part use batch statistics and update their running stats, and
 * dropout before fc is active; frozen layers always run in evaluation mode.
 * The frozen prefix is never back-propagated through: no gradient and no dX
 * for the input of the first trained layer.
 *
 * Feature caching. resnet_features() runs only the frozen prefix (always in
 * eval mode, so its output is a pure function of the input image) and
 * resnet_forward_features() runs the trainable suffix from those features; a
 * caller with augmentation off can compute features once per image and train
 * the suffix only. With freeze all/layer4 the features are the pooled vectors.
 *
 * Threading: one caller thread at a time; the engine's threads as set by
 * blas_set_threads / layers_set_threads run the products and the
 * elementwise passes (pool.h).
 * SWEEP_PROFILE=1 in the environment makes resnet_free print the seconds
 * spent per unit (stem, each block, head), forward and backward, to stderr. */
#ifndef SWEEP_RESNET_H
#define SWEEP_RESNET_H

#include <stddef.h>
#include <stdint.h>

#include "arch.h"
#include "net.h"
#include "params.h"
#include "rng.h"
#include "safetensors.h"

typedef struct resnet resnet;

typedef enum { RESNET_BASIC = 0, RESNET_BOTTLENECK } resnet_block_kind;

/* One named tensor of the model, for checkpoints and optimizer-state export
 * (fields in net.h: name, ndim, shape, numel, data, is_param, trainable, grad,
 * offset; the same type for every family). */
typedef net_tensor resnet_tensor;

/* Architecture summary. */
typedef struct {
    resnet_block_kind block; // BasicBlock or Bottleneck
    int blocks[4];           // blocks per stage (resnet18: 2,2,2,2; 34/50: 3,4,6,3)
    int width;               // stem width (conv1 output channels; 64 for torchvision)
    int features;            // fc input features (512 for resnet18, 2048 for resnet50)
    int classes;             // fc output rows
    char arch[32];           // name from arch.h's list ("resnet18", ...), or
                             // "resnet-basic-1-1-1-1" style for other block counts
    size_t param_count;      // all parameters (floats)
    arch_family family;      // model family (the fields above marked ResNet are 0 otherwise)
} resnet_info;

/* Builds a model from F (torchvision/timm names). When NUM_CLASSES > 0 and
 * differs from fc.weight's rows, fc is replaced by a new head initialised as
 * torch.nn.Linear (kaiming_uniform a=sqrt(5), bias uniform +-1/sqrt(fan_in))
 * from an RNG seeded with SEED; NUM_CLASSES <= 0 keeps the file's head.
 * Errors (ERR_MODEL, message names the tensor): missing tensor, wrong shape or
 * rank, unsupported dtype, inconsistent widths. *OUT owned by the caller
 * (resnet_free). */
int resnet_from_safetensors(resnet **out, const st_file *f, int num_classes, uint64_t seed,
                            char *msg, size_t msglen);
/* Builds ARCH (a name of arch.h's list: "resnet18", "resnet34", "resnet50",
 * "resnet101", "resnet152") with stem width WIDTH
 * (64 = torchvision; channels of stage L are WIDTH*2^(L-1), times 4 at a
 * Bottleneck's output) and NUM_CLASSES outputs, with PyTorch's default
 * initialisation: conv kaiming_normal(fan_out, relu), BN weight 1 bias 0,
 * running stats 0/1, fc as nn.Linear; all drawn from an RNG seeded with SEED.
 * ERR_INVALID for an unknown arch or bad width/classes. */
int resnet_create(resnet **out, const char *arch, int width, int num_classes, uint64_t seed,
                  char *msg, size_t msglen);
void resnet_free(resnet *m);

/* Copies every tensor of F whose name matches a model tensor (same shape
 * required: ERR_MODEL naming it otherwise; missing ones are an error too),
 * e.g. to restore a checkpoint into a prepared model. */
int resnet_load(resnet *m, const st_file *f, char *msg, size_t msglen);

void resnet_get_info(const resnet *m, resnet_info *info);

/* Sets the freeze point, the largest batch and the input size, and allocates
 * the arena (gradients of trainable params, zeroed; activations; work space).
 * Calling it again with the same freeze, batch and size keeps the arena (only
 * the dropout changes); other values re-allocate it, so re-fetch
 * resnet_trainable() and tensor grad pointers afterwards. Any batch up to
 * MAX_BATCH runs in the arena. DROPOUT is the drop probability before fc, [0, 1).
 * Errors: ERR_INVALID (size too small for the network), ERR_NOMEM. */
int resnet_prepare(resnet *m, freeze_kind freeze, float dropout, int max_batch, int in_h, int in_w,
                   char *msg, size_t msglen);
/* Training (1) or evaluation (0) mode; a new model is in evaluation mode. */
void resnet_set_train(resnet *m, int train);

/* Full forward pass. x (B, 3, H, W) NCHW float32, B <= max_batch. RNG draws
 * the dropout mask (used only in training mode with dropout > 0; may be NULL
 * otherwise). Returns the logits (B, classes), valid until the next forward. */
const float *resnet_forward(resnet *m, const float *x, int b, rng_t *rng);

/* Floats per image of the frozen prefix's output: 3*H*W for freeze none,
 * C*H*W of the last frozen stage's output, or the pooled `features` for freeze
 * layer4/all. Valid after resnet_prepare. */
size_t resnet_feature_floats(const resnet *m);
/* Runs the frozen prefix (eval mode) on x (B, 3, H, W) NCHW and writes
 * feat (B, resnet_feature_floats) (each image's features contiguous, NCHW
 * order inside). For freeze none it copies x. */
void resnet_features(resnet *m, const float *x, int b, float *feat);
/* Floats per image of the output of the prefix frozen up to FREEZE (what
 * resnet_feature_floats gives once prepared with FREEZE). Valid after
 * resnet_prepare. */
size_t resnet_feature_floats_at(const resnet *m, freeze_kind freeze);
/* Continues a shallower prefix: IN (B, resnet_feature_floats_at(FROM)) holds
 * the features of the prefix frozen up to FROM (FREEZE_STEM or deeper, a
 * stage whose output is not the pooled vector, shallower than the prepared
 * freeze); runs the frozen units after it (eval mode) and writes FEAT (B,
 * resnet_feature_floats): the same values resnet_features gives on the
 * images with the same batch B. */
void resnet_features_from(resnet *m, freeze_kind from, const float *in, int b, float *feat);
/* Forward of the trainable suffix from FEAT (B, resnet_feature_floats);
 * same result as resnet_forward on the images the features came from. */
const float *resnet_forward_features(resnet *m, const float *feat, int b, rng_t *rng);

/* Softmax cross-entropy of the last forward's logits against LABELS (B) in
 * [0, classes), mean over the batch, label smoothing S in [0,1). Also stores
 * dL/dlogits for resnet_backward. Returns the loss; PROBS (B, classes) gets
 * the softmax when not NULL. */
float resnet_loss(resnet *m, const int *labels, float smoothing, float *probs);
/* Back-propagates the last resnet_loss through the trainable suffix,
 * accumulating into the gradients (training mode forward required). */
void resnet_backward(resnet *m);
/* Back-propagates a caller-supplied dL/dlogits (B, classes) of the last forward. */
void resnet_backward_from(resnet *m, const float *dlogits);
/* Zeroes the gradients of the trainable parameters. Those of the
 * convolutions on tiny maps (the ones with prepared weights, layers.h) are
 * only marked: the next backward pass overwrites them, and resnet_trainable
 * zeroes any still marked. So read gradients after a backward pass or
 * through a resnet_trainable call made after the zeroing. */
void resnet_zero_grad(resnet *m);

/* The trainable parameters as one contiguous array (*count floats) and the
 * matching gradient array (NULL before resnet_prepare). */
float *resnet_trainable(resnet *m, size_t *count, float **grads);

/* The prepared (tap-major) weights of a trainable convolution on tiny maps
 * (layers.h: conv2d_prepare, conv2d_prep_taps), which an optimizer can
 * rewrite in its update pass (optim.h: optim_step_copy) instead of every
 * training forward building them from the weights:
 *   prep[(t*oc + o)*c + i] = trainable[offset + (o*c + i)*kk + tap[t]]. */
typedef struct {
    size_t offset; // first weight in resnet_trainable()'s array
    int oc, c, kk; // weight shape (OC, C, KH*KW)
    int ntaps;     // slices of prep
    int tap[64];   // (ntaps) kernel tap ky*KW + kx of each slice
    float *prep;   // (ntaps, oc, c) prepared weights, inside the arena
} resnet_prep_view;
/* Fills up to MAX views of the prepared weights and returns how many; 0 when
 * there are none, or not all of them are tap-major (SWEEP_DENSE_TAPS=0), or
 * for another family. Valid until resnet_prepare or resnet_free. */
int resnet_prep_views(resnet *m, resnet_prep_view *v, int max);
/* The caller has just rewritten every view's prep from the current weights
 * (after its optimizer step): forwards, training and evaluation, use them as
 * they are instead of building them, until the next backward pass,
 * resnet_load or resnet_prepare. The caller must not change the weights any
 * other way meanwhile. */
void resnet_prep_current(resnet *m);

/* How many freeze units FREEZE freezes (a tensor is in the frozen prefix
 * when its `unit` is below it), or -1 when FREEZE is not a freeze point of
 * M's family. */
int resnet_frozen_units_at(const resnet *m, freeze_kind freeze);

/* Named tensors in torchvision order (parameters and buffers), for saving. */
size_t resnet_tensor_count(const resnet *m);
/* I-th tensor (borrowed, valid until resnet_prepare or resnet_free). */
const resnet_tensor *resnet_tensor_at(const resnet *m, size_t i);
/* The tensor named NAME or NULL. */
const resnet_tensor *resnet_find_tensor(const resnet *m, const char *name);

/* Multiply-adds x2 per image of one forward pass at the prepared input size,
 * counting convolutions and fc (the usual "FLOPs" figure: about 3.6e9 for
 * resnet18 at 224). Training costs about 3x with nothing frozen. */
double resnet_flops(const resnet *m);

#endif
