/* net — a small graph-of-layers engine for the model families that are not
 * ResNets (VGG, Inception v3; worker/engine/net.c). A family's builder
 * (vgg.h, inception.h) declares nodes in torchvision's state_dict order,
 * grouped into named UNITS (the freeze points: "block1", "Mixed_5b", ...);
 * this module owns the parameters, the arena and the forward/backward passes,
 * and resnet.c's public model API dispatches to it, so training, checkpoints,
 * feature caching, predict, eval and bench treat every family alike.
 *
 * Nodes: convolution (optional bias, batchnorm and ReLU fused), max pool
 * (ceil mode optional), average pool (count_include_pad optional), adaptive
 * average pool, channel concatenation, flatten, linear (optional ReLU),
 * dropout (the trial's drop probability). Activations are channel-major
 * (C, B, H, W) as in layers.h; flatten turns them into batch-major (B, F) rows
 * in NCHW order as torch.flatten does. A concatenation's inputs write straight
 * into their slices of its buffer and read their gradients from the same
 * slices (no copy), so each input of a concatenation must feed nothing else.
 * A 1x1 convolution may read its input through a 3x3 average pool
 * (NET_POOL3, Inception's branch_pool): in evaluation mode the pool runs on
 * the convolution's output instead (fewer channels); training mode keeps the
 * plain order, so training arithmetic is that of separate nodes.
 *
 * In evaluation mode the 1x1 convolutions reading the same node within a
 * unit run as one product (their weights are stored next to each other, so
 * parameters are in declaration order except within such a group).
 *
 * Freezing: units [0, nfrozen) are frozen (evaluation mode, no gradients, no
 * backward pass through them). Parameters are stored in creation order (but
 * for 1x1 groups, which stay inside a unit) and units only grow along it, so
 * the trainable parameters are a contiguous suffix, as for resnet.h. Every
 * node of the trainable units may read only trainable nodes or the LAST node
 * of the frozen units (the feature node), which is what feature caching
 * returns.
 *
 * Memory: parameters and buffers are two allocations; net_prepare makes one
 * arena for the trainable gradients, every node's output, the conv work
 * space and a few gradient slots that the backward pass reuses (a planned
 * liveness: a node's gradient lives from its first consumer's backward to its
 * own), touched once there.
 *
 * An optional second output (Inception's auxiliary logits) is used in
 * training mode only: the loss becomes main + AUX_WEIGHT * aux. */
#ifndef SWEEP_NET_H
#define SWEEP_NET_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"

typedef struct net net;

/* The single arena of a model (a ResNet's, or a net's): one mapping holds
 * every activation and gradient buffer. A builder lays it out with one plan
 * run twice over a net_arena: first with base NULL to count, then with the
 * mapping from net_arena_map to hand the buffers out, so the two agree by
 * construction. */
typedef struct {
    float *base; // NULL while counting
    size_t used; // floats handed out
} net_arena;

/* N floats from A, rounded up to 64-byte alignment; NULL while counting. */
float *net_arena_take(net_arena *a, size_t n);
/* Maps FLOATS zeroed floats into *OUT (huge pages advised, every page
 * touched now rather than inside the first steps). 0 or ERR_NOMEM (MSG).
 * Freed with net_arena_unmap. */
int net_arena_map(size_t floats, float **out, char *msg, size_t msglen);
/* Unmaps *P (FLOATS floats) if set and clears it. */
void net_arena_unmap(float **p, size_t floats);

/* Flags of net_conv. */
#define NET_BIAS 1u // the convolution has a bias ("NAME.bias")
#define NET_BN 2u   // followed by batchnorm (tensors "BN.weight" ... ; see net_conv)
#define NET_RELU 4u // then ReLU
/* The convolution reads its input through a 3x3 / stride 1 / pad 1 average
 * pool with count_include_pad (Inception's branch_pool: avg_pool2d then a
 * BasicConv2d); only for 1x1 stride-1 convolutions. Both are linear and that
 * pool always divides by 9, so in evaluation mode the engine pools the
 * convolution's output instead of its input (before bias and batchnorm): the
 * same values up to rounding, on OC channels instead of C (4-10x fewer in
 * Inception). Training mode pools the input as the plain graph does. */
#define NET_POOL3 8u

/* Initialisation of a weight, as the family's torchvision constructor does. */
typedef enum {
    NET_INIT_KAIMING_OUT = 0, // kaiming_normal_(fan_out, relu), bias 0 (VGG convs)
    NET_INIT_NORMAL,          // normal(0, std), bias 0 (VGG linears: std 0.01)
    NET_INIT_TRUNC_NORMAL,    // trunc_normal_(0, std, -2, 2), bias 0 (Inception)
    NET_INIT_LINEAR,          // nn.Linear default: U(+-1/sqrt(fan_in)) weight and bias
} net_init;

/* One named tensor (the fields resnet_tensor has; resnet.h makes them the same type). */
typedef struct {
    const char *name; // torchvision name, e.g. "features.0.weight"
    int ndim;         // 1, 2 or 4
    int64_t shape[4]; // dimensions, outermost first
    size_t numel;     // product of shape
    float *data;      // storage inside the model (writable)
    int is_param;     // 1 parameter, 0 buffer (running_mean / running_var)
    int trainable;    // 1 if it receives gradients under the current freeze
    float *grad;      // gradient when trainable and prepared, else NULL
    ptrdiff_t offset; // index of data[0] in net_trainable()'s array, or -1
    int unit;         // freeze unit it belongs to: frozen when unit < the frozen unit count
                      // (resnet.c: 0 stem, 1 + i block i, 1 + nblocks the head)
} net_tensor;

/* ---------- building (family builders) ---------- */

/* A new empty graph whose node 0 is the image input (IN_CH channels), or NULL
 * when out of memory. NAME is the architecture's name ("vgg16_bn"). */
net *net_new(const char *name, int in_ch);
void net_free(net *g);
/* Starts the unit NAME: nodes added from now on belong to it. */
int net_unit(net *g, const char *name);
/* Convolution of node IN to OC channels, kernel KH x KW, STRIDE, paddings
 * PAD (height) and PADW (width), weight "CONV.weight" (+ "CONV.bias" with
 * NET_BIAS); with NET_BN the batchnorm "BN.{weight,bias,running_mean,
 * running_var}" with epsilon EPS follows. INIT/STD initialise the weight for
 * models built from scratch. Returns the node id, or a negative code (the
 * builder records the first error; net_finish reports it). */
int net_conv(net *g, int in, const char *conv, const char *bn, int oc, int kh, int kw, int stride,
             int pad, int padw, unsigned flags, float eps, net_init init, float std);
/* Whether net_conv builds NET_POOL3 convolutions as one node (1, the
 * default) or as an average-pool node followed by the convolution (0, the
 * plain graph: SWEEP_POOL_FIRST=1 in the environment, or
 * net_set_pool3_fused(0) in tests comparing the two). */
int net_pool3_fused(void);
void net_set_pool3_fused(int on);
/* Whether evaluation-mode forwards run 3x3 stride-1 convolutions without
 * padding as the pad-1 convolution (Winograd), cropped (1: the default
 * unless SWEEP_WINOGRAD=0), or directly (0; training mode always does); for
 * tests comparing the two. Read when a net is prepared and at every pass. */
void net_set_valid_as_same(int on);
/* Whether evaluation mode multiplies the 1x1 convolutions that read the same
 * node within a unit (Inception's branch heads) as one product with stacked
 * weights (1: the default unless SWEEP_MERGE_1X1=0), or one by one (0); read
 * by net_finish, which lays a group's weights out next to each other. */
void net_set_merge_1x1(int on);
int net_maxpool(net *g, int in, int k, int stride, int pad, int ceil_mode);
int net_avgpool(net *g, int in, int k, int stride, int pad, int count_pad);
/* Adaptive average pool to OH x OW (fixed output size). */
int net_adaptive(net *g, int in, int oh, int ow);
/* Channel concatenation of K nodes (2..4), in order. */
int net_concat(net *g, const int *in, int k);
/* (C, B, H, W) -> (B, C*H*W); IN must have a fixed spatial size (an adaptive pool). */
int net_flatten(net *g, int in);
/* Linear "NAME.weight" (OUT, F), "NAME.bias" of a flat node; RELU fuses a ReLU. */
int net_linear(net *g, int in, const char *name, int out_f, int relu, net_init init, float std);
/* Dropout with the trial's probability (training mode only). */
int net_dropout(net *g, int in);
/* Declares the main logits node and the optional auxiliary one (-1: none)
 * with its loss weight. The auxiliary head is the unit AUX_UNIT (its nodes
 * feed nothing else); at input sizes where its pooling does not fit it is
 * skipped, and it only runs in training mode when it is trainable. */
int net_outputs(net *g, int logits, int aux, const char *aux_unit, float aux_weight);
/* Channel affine transform applied to the input images before node 0's
 * consumers (torchvision Inception's transform_input): x_c = x_c*scale[c] +
 * shift[c] (copied). */
void net_input_affine(net *g, const float *scale, const float *shift);
/* Allocates the parameters and names once every node is declared; the
 * parameters are initialised from SEED as declared. Returns 0 or the first
 * builder error (ERR_NOMEM / ERR_INVALID) with the message. */
int net_finish(net *g, uint64_t seed, char *msg, size_t msglen);
/* Re-initialises the classifier "NAME.weight"/"NAME.bias" as nn.Linear would
 * (used for a new head); 0 or ERR_INVALID when NAME is not a linear. */
int net_init_linear(net *g, const char *name, uint64_t seed);

/* ---------- model interface (resnet.h forwards here) ---------- */

const char *net_name(const net *g);
int net_classes(const net *g);  // rows of the logits
int net_features(const net *g); // inputs of the last linear
int net_width(const net *g);    // output channels of the first convolution
size_t net_param_count(const net *g);
int net_unit_count(const net *g);
/* Sets nfrozen units (0 .. net_unit_count-1), the dropout, the largest batch and
 * the input size, and allocates the arena (see resnet_prepare). */
int net_prepare(net *g, int nfrozen, float dropout, int max_batch, int in_h, int in_w, char *msg,
                size_t msglen);
void net_set_train(net *g, int train);
const float *net_forward(net *g, const float *x, int b, rng_t *rng);
size_t net_feature_floats(const net *g);
void net_features_run(net *g, const float *x, int b, float *feat);
const float *net_forward_features(net *g, const float *feat, int b, rng_t *rng);
float net_loss(net *g, const int *labels, float smoothing, float *probs);
void net_backward_from(net *g, const float *dlogits);
void net_backward(net *g);
void net_zero_grad(net *g);
float *net_trainable(net *g, size_t *count, float **grads);
size_t net_tensor_count(const net *g);
net_tensor *net_tensor_at(const net *g, size_t i);
double net_flops(const net *g);

#endif
