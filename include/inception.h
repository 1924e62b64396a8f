/* inception — torchvision's Inception v3 as a net.h graph
 * (worker/engine/inception.c).
 *
 * Tensor names are torchvision's: Conv2d_1a_3x3, Conv2d_2a_3x3, Conv2d_2b_3x3,
 * Conv2d_3b_1x1, Conv2d_4a_3x3, Mixed_5b .. Mixed_5d (InceptionA), Mixed_6a
 * (B), Mixed_6b .. Mixed_6e (C), AuxLogits (conv0, conv1, fc), Mixed_7a (D),
 * Mixed_7b, Mixed_7c (E), fc; each BasicConv2d is NAME.conv.weight and
 * NAME.bn.{weight,bias,running_mean,running_var} (BN epsilon 0.001).
 * Behaviour as torchvision's for pretrained weights:
 * - transform_input: the ImageNet-normalised image is re-normalised to the
 *   (x - 0.5)/0.5 scale the Google weights expect, always (a model trained
 *   from scratch in sweepd uses it too, so pretrained files, checkpoints and
 *   scratch models all see the same input);
 * - the auxiliary logits (AuxLogits, from Mixed_6e) add 0.4 x their loss in
 *   training mode and are ignored in evaluation; their 5x5/3 pool and 5x5
 *   convolution need Mixed_6e maps of at least 17x17 (input 299 and up, as in
 *   torchvision): below that, when the file has no AuxLogits tensors, or when
 *   AuxLogits is frozen (its loss term would be a constant), the head is
 *   skipped;
 * - dropout before fc is the trial's dropout.
 * Input 299 by default, at least 75. Units (freeze points): Conv2d_1a_3x3 ..
 * Conv2d_4a_3x3 (the last also holds maxpool2), Mixed_5b .. Mixed_6e,
 * AuxLogits, Mixed_7a .. Mixed_7c (also holding the pool and flatten), fc.
 * model.width scales every channel count: c*width/64 (64 = torchvision). */
#ifndef SWEEP_INCEPTION_H
#define SWEEP_INCEPTION_H

#include <stddef.h>
#include <stdint.h>

#include "net.h"
#include "safetensors.h"

/* Weight of the auxiliary loss in training (torchvision's reference recipe). */
#define INCEPTION_AUX_WEIGHT 0.4f

/* Builds inception_v3 at WIDTH with NUM_CLASSES outputs, initialised as
 * torchvision does (trunc_normal std 0.1, AuxLogits.conv1 0.01, AuxLogits.fc
 * 0.001; BN 1/0) from SEED. *OUT owned by the caller (net_free). */
int inception_create(net **out, const char *arch, int width, int num_classes, uint64_t seed,
                     char *msg, size_t msglen);
/* Builds the Inception v3 whose channel counts F's tensor shapes give, with
 * NUM_CLASSES rows in fc (<= 0: the file's); parameters initialised, not
 * loaded. ERR_MODEL naming the tensor when F is not an Inception v3. */
int inception_from_file(net **out, const st_file *f, int num_classes, uint64_t seed, char *msg,
                        size_t msglen);

#endif
