/* arch — the one list of model architectures sweepd knows (common/arch.c):
 * the names model.arch may give in a job or a trial spec, each with its
 * family (ResNet, VGG, Inception v3) and, for ResNets, its block type and
 * blocks per stage; and the one table of freeze points per family, which
 * the daemon's job check, the worker's trial check and the engine all read.
 * The daemon's job check (jobspec), the
 * worker's trial check (trialspec) and the engine (resnet) all read it, so
 * the daemon refuses exactly what a worker would refuse and every name it
 * accepts is one the engine can build. */
#ifndef SWEEP_ARCH_H
#define SWEEP_ARCH_H

#include <stdbool.h>
#include <stddef.h>

#include "st_header.h"

/* model.arch when a job or trial spec does not give one. */
#define ARCH_DEFAULT "resnet18"

/* Residual block type of a ResNet. */
typedef enum {
    ARCH_BASIC = 0,  // BasicBlock: two 3x3 convolutions (resnet18, resnet34)
    ARCH_BOTTLENECK, // Bottleneck: 1x1, 3x3, 1x1 with 4x expansion (resnet50 and up)
} arch_block;

/* Model family: decides the builder, the tensor names and the freeze points. */
typedef enum {
    ARCH_RESNET = 0, // conv1, layer1..layer4, fc
    ARCH_VGG,        // features.N, classifier.N
    ARCH_INCEPTION,  // Conv2d_1a_3x3 .. Mixed_7c, AuxLogits, fc
    ARCH_FAMILY_COUNT
} arch_family;

/* One known architecture. */
typedef struct {
    const char *name;   // model.arch value, e.g. "resnet50"
    arch_family family; // its family
    arch_block block;   // block type (ResNets; ARCH_BASIC for the others)
    int blocks[4];      // blocks in each of the four stages (ResNets; else 0)
} arch_info;

/* The architecture named NAME (exact, case-sensitive), or NULL when unknown
 * (also for NULL). The result is static. */
const arch_info *arch_find(const char *name);
/* Whether NAME is a known architecture. */
bool arch_known(const char *name);
/* The known ResNet with BLOCK and BLOCKS per stage, or NULL (a model
 * read from a file may have other block counts). */
const arch_info *arch_match(arch_block block, const int blocks[4]);
/* The known names in list order, NULL-terminated (static; for jx_as_enum). */
const char *const *arch_names(void);
/* The same list as an array (params.h's `arch` choices: a value is its index). */
extern const char *const arch_name_choices[];
/* Writes the known names joined by ", " ("resnet18, resnet34, ...") into
 * BUF (N bytes, truncated to fit, always terminated when N > 0), for
 * messages; returns BUF. */
char *arch_list_string(char *buf, size_t n);

/* Most blocks in one stage that arch_detect counts. */
#define ARCH_MAX_STAGE_BLOCKS 64

/* The structure a weights file names, read from its tensor names alone (the
 * rule the engine builds a model from a file by, and the daemon's check of
 * model.arch against model.weights at submission): Bottleneck when
 * "layer1.0.conv3.weight" is there, else BasicBlock; the blocks of stage S
 * (1..4) are "layerS.0.conv1.weight", "layerS.1.conv1.weight", ... counted
 * up to the first missing one (at most ARCH_MAX_STAGE_BLOCKS). A stage with
 * no block gives 0; nothing else is checked here. */
void arch_detect(const st_header *h, arch_block *block, int blocks[4]);
/* The name of the structure BLOCK, BLOCKS: the known name ("resnet18"), or
 * "resnet-basic-1-1-1-1" / "resnet-bottleneck-..." for other block counts,
 * written into BUF (N bytes, truncated to fit); returns BUF. */
char *arch_name_of(arch_block block, const int blocks[4], char *buf, size_t n);
/* ---------- families ---------- */

/* The family's name ("resnet", "vgg", "inception_v3"). */
const char *arch_family_name(arch_family f);
/* A tensor name whose presence in a weights file marks family F
 * ("layer1.0.conv1.weight", "features.0.weight", "Mixed_5b.branch1x1.conv.weight"):
 * how a file's family is inferred when model.arch is not given. */
const char *arch_family_marker(arch_family f);
/* "resnet (conv1, layer1..layer4, fc), vgg (...), ..." into BUF, for the
 * error that refuses a file of no known family; returns BUF. */
char *arch_family_list_string(char *buf, size_t n);

/* ---------- freeze points ----------
 * freeze names the last frozen stage; everything before it in torchvision
 * order is frozen too. "none" and "all" (only the classifier's last layer
 * trains) exist for every family; the others are the family's stages:
 *   resnet:       stem, layer1 .. layer4
 *   vgg:          block1 .. block5, features (= block5: the whole feature
 *                 extractor; the three classifier layers train)
 *   inception_v3: stem (Conv2d_1a_3x3 .. Conv2d_4a_3x3 and the pools),
 *                 Mixed_5b .. Mixed_7c (Mixed_7c = all; AuxLogits trains while
 *                 Mixed_6e or an earlier stage is the freeze point) */

/* Number of frozen units of family F's network under freeze NAME (its
 * engine's unit count: resnet 0..6 as params.h's enum, vgg 0..7, inception
 * 0..17), or -1 when NAME is not a freeze point of F. */
int arch_freeze_level(arch_family f, const char *name);
/* Whether NAME is a freeze point of any family (what a job may name before
 * its architecture is known). */
bool arch_freeze_known(const char *name);
/* F's freeze names joined by ", " into BUF (as arch_list_string); returns BUF. */
char *arch_freeze_list_string(arch_family f, char *buf, size_t n);
/* Every freeze name of every family, each once, NULL-terminated, in the
 * order of params.h's freeze_kind (a value is its index): the choices a job
 * or trial spec's freeze may take before its family is known. */
extern const char *const arch_freeze_choices[];

#endif
