/* vgg — torchvision's VGG family (vgg11, vgg13, vgg16, vgg19 and their _bn
 * variants) as a net.h graph (worker/engine/vgg.c).
 *
 * Tensor names are torchvision's: features.N.{weight,bias} for a convolution
 * at index N of the features Sequential (with _bn, features.N+1 is its
 * BatchNorm2d), classifier.{0,3,6}.{weight,bias} for the three linears;
 * the network pools adaptively to 7x7 before the classifier, whose two
 * Dropout layers take the trial's dropout. Units (freeze points) are block1
 * .. block5 (each ends at its max pool; block5 also holds the 7x7 pool and
 * the flatten), classifier.0, classifier.3 and classifier.6.
 * model.width scales every stage: channels v*width/64 (v = 64 .. 512) and the
 * classifier's hidden size 4096*width/64 (64 = torchvision). */
#ifndef SWEEP_VGG_H
#define SWEEP_VGG_H

#include <stddef.h>
#include <stdint.h>

#include "net.h"
#include "safetensors.h"

/* Builds ARCH ("vgg16_bn", ...) at WIDTH with NUM_CLASSES outputs, initialised
 * as torchvision does (convs kaiming_normal fan_out, linears normal(0, 0.01),
 * biases 0, BN 1/0) from SEED. *OUT owned by the caller (net_free).
 * ERR_INVALID for an unknown name or bad width/classes. */
int vgg_create(net **out, const char *arch, int width, int num_classes, uint64_t seed, char *msg,
               size_t msglen);
/* Builds the VGG whose structure F's tensor names and shapes describe, with
 * NUM_CLASSES rows in classifier.6 (<= 0: the file's); parameters are
 * initialised, not loaded (the caller loads them). ERR_MODEL naming the tensor
 * when the file is not a consistent VGG. */
int vgg_from_file(net **out, const st_file *f, int num_classes, uint64_t seed, char *msg,
                  size_t msglen);

#endif
