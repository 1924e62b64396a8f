/* arch — the list of model architectures (contract in include/arch.h). One
 * table, ARCH_TABLE, gives both the descriptions and the NULL-terminated
 * name list, so the two cannot drift apart. Block counts are torchvision's.
 * arch_detect reads a structure from a weights file's tensor names, for the
 * engine and for the daemon's submission check alike. */
#include "arch.h"

#include <stdio.h>
#include <string.h>

/* X(name, block type, blocks per stage) */
#define ARCH_TABLE(X)                                                                              \
    X("resnet18", ARCH_BASIC, 2, 2, 2, 2)                                                          \
    X("resnet34", ARCH_BASIC, 3, 4, 6, 3)                                                          \
    X("resnet50", ARCH_BOTTLENECK, 3, 4, 6, 3)                                                     \
    X("resnet101", ARCH_BOTTLENECK, 3, 4, 23, 3)                                                   \
    X("resnet152", ARCH_BOTTLENECK, 3, 8, 36, 3)

static const arch_info table[] = {
#define ARCH_ROW(name, block, b1, b2, b3, b4) {name, block, {b1, b2, b3, b4}},
    ARCH_TABLE(ARCH_ROW)
#undef ARCH_ROW
};

static const char *const names[] = {
#define ARCH_NAME(name, ...) name,
    ARCH_TABLE(ARCH_NAME)
#undef ARCH_NAME
        NULL};

#define ARCH_COUNT (sizeof table / sizeof table[0])

const arch_info *arch_find(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < ARCH_COUNT; i++)
        if (!strcmp(table[i].name, name)) return &table[i];
    return NULL;
}

bool arch_known(const char *name)
{
    return arch_find(name) != NULL;
}

const arch_info *arch_match(arch_block block, const int blocks[4])
{
    for (size_t i = 0; i < ARCH_COUNT; i++)
        if (table[i].block == block && !memcmp(table[i].blocks, blocks, sizeof table[i].blocks))
            return &table[i];
    return NULL;
}

const char *const *arch_names(void)
{
    return names;
}

char *arch_list_string(char *buf, size_t n)
{
    size_t used = 0;
    if (!n) return buf;
    buf[0] = '\0';
    for (size_t i = 0; i < ARCH_COUNT; i++) {
        int w = snprintf(buf + used, n - used, "%s%s", i ? ", " : "", table[i].name);
        if (w < 0 || (size_t)w >= n - used) break;
        used += (size_t)w;
    }
    return buf;
}

void arch_detect(const st_header *h, arch_block *block, int blocks[4])
{
    char name[64];
    *block = st_header_find(h, "layer1.0.conv3.weight") ? ARCH_BOTTLENECK : ARCH_BASIC;
    for (int s = 0; s < 4; s++) {
        int j = 0;
        for (; j < ARCH_MAX_STAGE_BLOCKS; j++) {
            snprintf(name, sizeof name, "layer%d.%d.conv1.weight", s + 1, j);
            if (!st_header_find(h, name)) break;
        }
        blocks[s] = j;
    }
}

char *arch_name_of(arch_block block, const int blocks[4], char *buf, size_t n)
{
    const arch_info *k = arch_match(block, blocks);
    if (k)
        snprintf(buf, n, "%s", k->name);
    else
        snprintf(buf, n, "resnet-%s-%d-%d-%d-%d", block == ARCH_BASIC ? "basic" : "bottleneck",
                 blocks[0], blocks[1], blocks[2], blocks[3]);
    return buf;
}
