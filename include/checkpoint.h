/* checkpoint — a trial's checkpoint and best-weights files (safetensors).
 *
 * Layout (also in README.md and notes/checkpoint-keys.md):
 *  - tensors: every model tensor under its torchvision name, F32 (so
 *    `predict`, `eval` and PyTorch's safetensors loader read the weights as
 *    they are); in checkpoint.safetensors also the optimizer state of every
 *    trainable tensor as "optim.<slot>.<name>" (slot "momentum", or "exp_avg"
 *    and "exp_avg_sq");
 *  - __metadata__ (strings): format "sweepd-checkpoint-1", arch, classes (JSON
 *    array of names), input_size, mean and std (JSON arrays, RGB, 0..1
 *    scale), epoch (finished epochs), step (steps done in the next epoch when
 *    stopped mid-epoch, else 0), metrics (JSON array of the epoch records so
 *    far), rng (JSON: seed and the derivation of every stream), spec_hash,
 *    optim (JSON: kind and step count), best_epoch, train_state (JSON: the
 *    running sums of a part-done epoch).
 * Files are written atomically by the safetensors writer (temporary file,
 * fsync, rename), so a crash leaves the previous file intact. The trainer
 * makes best.safetensors a hard link to the checkpoint of the best epoch (no
 * second write of the weights), so it carries that epoch's optimizer state
 * too; loaders ignore the "optim." tensors. */
#ifndef SWEEP_CHECKPOINT_H
#define SWEEP_CHECKPOINT_H

#include <jansson.h>
#include <stddef.h>

#include "image.h"
#include "optim.h"
#include "resnet.h"
#include "safetensors.h"

#define CKPT_FORMAT "sweepd-checkpoint-1"
#define CKPT_FILE "checkpoint.safetensors"
#define CKPT_BEST_FILE "best.safetensors"

/* What goes into __metadata__ besides the preprocessing constants. Strings
 * and JSON values are borrowed; NULL members are left out. */
typedef struct {
    const char *arch;       // model.arch of the trial
    char *const *classes;   // (nclasses) class names in index order
    int nclasses;           // number of classes (= fc rows)
    int input_size;         // network input side in pixels
    const image_norm *norm; // the trial's normalisation (written as mean, std); NULL: ImageNet's
    int epoch;              // finished epochs
    int step;               // steps done inside epoch `epoch` (0-based next epoch)
    int best_epoch;         // 1-based best epoch so far, 0 = none
    const char *spec_hash;  // trialspec_hash of the spec
    json_t *metrics;        // array of epoch records
    json_t *rng;            // RNG description
    json_t *train_state;    // partial-epoch sums, or NULL
} ckpt_info;

/* Parsed metadata of a checkpoint or best file (everything owned). Absent
 * optional keys leave zero/NULL. */
typedef struct {
    char *arch;          // "resnet18", ...
    char **classes;      // (nclasses) names
    int nclasses;        // number of classes
    int input_size;      // pixels
    float mean[3];       // normalisation mean, RGB
    float std[3];        // normalisation std, RGB
    int epoch;           // finished epochs (-1 when absent)
    int step;            // steps done inside the next epoch
    int best_epoch;      // 1-based, 0 when absent
    char *spec_hash;     // or NULL
    json_t *metrics;     // array or NULL
    json_t *rng;         // object or NULL
    json_t *optim;       // object or NULL
    json_t *train_state; // object or NULL
} ckpt_meta;

/* Writes M's tensors (and O's state when O is non-NULL) with INFO as
 * metadata to PATH atomically (a temporary file renamed over PATH, so a
 * failed write keeps the previous file). Returns 0, ERR_NOMEM, ERR_NOSPACE
 * (no space left, quota or file-size limit) or ERR_IO naming PATH. */
int ckpt_save(const char *path, resnet *m, optim *o, const ckpt_info *info, char *msg,
              size_t msglen);

/* Reads the metadata of F. ARCH, CLASSES and INPUT_SIZE are required
 * (ERR_MODEL naming the key when missing or malformed); input_size, mean and
 * std are read by weights_meta_read (the reader every command shares), and
 * mean/std default to ImageNet's; the rest is optional. Free with
 * ckpt_meta_free. */
int ckpt_read_meta(const st_file *f, ckpt_meta *m, char *msg, size_t msglen);
void ckpt_meta_free(ckpt_meta *m);

/* Restores O's state (slots and step count) from F for every trainable
 * tensor of M. ERR_MODEL naming the tensor when one is missing or has the
 * wrong size, or when the recorded optimizer kind differs from O's. */
int ckpt_load_optim(const st_file *f, resnet *m, optim *o, char *msg, size_t msglen);

/* Joins DIR and NAME into BUF; 0 or ERR_RANGE when it does not fit. */
int ckpt_path(char *buf, size_t n, const char *dir, const char *name);

#endif
