/* util_model — checks shared by the unit tests of the model families
 * (test_vgg.c, test_inception.c; tests/unit/util_model.c, linked into every
 * unit test): saving a model as a weights file, the round trip through
 * resnet_from_safetensors, feature caching against the full forward, and a
 * few training steps. Each fails the running cmocka test on a mismatch. */
#ifndef SWEEP_TEST_UTIL_MODEL_H
#define SWEEP_TEST_UTIL_MODEL_H

#include "resnet.h"

/* Writes every tensor of M to PATH (torchvision names). */
void tum_save(const resnet *m, const char *path);
/* B random images of SIZE x SIZE (malloc'ed, caller frees), seeded by SEED. */
float *tum_images(int b, int size, uint64_t seed);
/* Saves M to PATH, reloads it with its own head (arch inferred from the
 * names, expected ARCH) and with a new head of NEW_CLASSES rows, and checks
 * the reload computes M's evaluation logits at SIZE exactly and the new head
 * has the new shape. M must be prepared for B images at SIZE. */
void tum_check_roundtrip(resnet *m, const char *path, const char *arch, int b, int size,
                         int new_classes);
/* Under FREEZE (prepared here for B at SIZE): the evaluation logits of the
 * full forward equal those from resnet_features + resnet_forward_features,
 * frozen tensors have no gradient, and STEPS SGD steps of rate LR on one batch
 * (dropout DROPOUT, the same mask at every step, so that the steps descend
 * one deterministic loss) lower the training loss, change trainable values
 * and leave frozen tensors bit-identical. */
void tum_check_freeze_and_training(resnet *m, freeze_kind freeze, float dropout, int b, int size,
                                   int steps, float lr);

#endif
