/* arch — the one list of model architectures sweepd knows (common/arch.c):
 * the names model.arch may give in a job or a trial spec, each with its
 * block type and blocks per stage. The daemon's job check (jobspec), the
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

/* One known architecture. */
typedef struct {
    const char *name; // model.arch value, e.g. "resnet50"
    arch_block block; // block type
    int blocks[4];    // blocks in each of the four stages
} arch_info;

/* The architecture named NAME (exact, case-sensitive), or NULL when unknown
 * (also for NULL). The result is static. */
const arch_info *arch_find(const char *name);
/* Whether NAME is a known architecture. */
bool arch_known(const char *name);
/* The known architecture with BLOCK and BLOCKS per stage, or NULL (a model
 * read from a file may have other block counts). */
const arch_info *arch_match(arch_block block, const int blocks[4]);
/* The known names in list order, NULL-terminated (static; for jx_as_enum). */
const char *const *arch_names(void);
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

#endif
