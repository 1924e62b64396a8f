/* arch — the list of model architectures (contract in include/arch.h). One
 * table, ARCH_TABLE, gives both the descriptions and the NULL-terminated
 * name list, so the two cannot drift apart. Block counts are torchvision's. */
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
