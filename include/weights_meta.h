/* weights_meta — what a weights file's __metadata__ says about feeding the
 * network (common/weights_meta.c): the input size and the normalisation the
 * weights were trained with. Trial checkpoints (checkpoint.h) and
 * etc/export-weights.py write them as "input_size" (decimal), "mean" and
 * "std" (JSON arrays of 3 numbers, RGB on the 0..1 scale). The worker's
 * commands (run, eval, predict) and the daemon's submission check read them
 * here, so every one of them takes the same defaults from the same file:
 *   input size: the one given (model.input_size, --input-size), else the
 *               file's "input_size", else 224;
 *   mean/std:   the file's, else ImageNet's. */
#ifndef SWEEP_WEIGHTS_META_H
#define SWEEP_WEIGHTS_META_H

#include <stdbool.h>
#include <stddef.h>

#include "st_header.h"

/* ImageNet normalisation, R, G, B (torchvision's), as array initialisers. */
#define WEIGHTS_IMAGENET_MEAN                                                                      \
    {                                                                                              \
        0.485f, 0.456f, 0.406f                                                                     \
    }
#define WEIGHTS_IMAGENET_STD                                                                       \
    {                                                                                              \
        0.229f, 0.224f, 0.225f                                                                     \
    }
/* The input size when neither the job nor the weights give one. */
#define WEIGHTS_DEFAULT_INPUT_SIZE 224
/* The input sizes a network here takes (model.input_size's range). */
#define WEIGHTS_MIN_INPUT_SIZE 8
#define WEIGHTS_MAX_INPUT_SIZE 4096

/* The preprocessing a file's metadata gives. */
typedef struct {
    int input_size; // "input_size", 0 when the file has none
    bool has_mean;  // "mean" was there (else mean is ImageNet's)
    bool has_std;   // "std" was there (else std is ImageNet's)
    float mean[3];  // normalisation mean, RGB, 0..1 scale
    float std[3];   // normalisation std, RGB (each > 0)
} weights_meta;

/* Reads H's preprocessing metadata into OUT (absent keys: input_size 0,
 * ImageNet mean/std). ERR_MODEL with a message naming the file and the key
 * when a value is malformed: "input_size" not an integer in 8..4096, "mean"
 * not a JSON array of 3 finite numbers, "std" not 3 positive ones. */
int weights_meta_read(const st_header *h, weights_meta *out, char *msg, size_t msglen);

/* The input size to use: GIVEN when > 0, else M's input_size when M is not
 * NULL and has one, else WEIGHTS_DEFAULT_INPUT_SIZE. *FROM (when not NULL)
 * says which: "given", "weights" or "default". */
int weights_input_size(const weights_meta *m, int given, const char **from);

#endif
