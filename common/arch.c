/* arch — the list of model architectures (contract in include/arch.h). One
 * table, ARCH_TABLE, gives both the descriptions and the NULL-terminated
 * name list, so the two cannot drift apart. Block counts are torchvision's.
 * arch_detect reads a structure from a weights file's tensor names, for the
 * engine and for the daemon's submission check alike.
 * FREEZE_TABLE is the one list of freeze points per family. */
#include "arch.h"

#include <stdio.h>
#include <string.h>

/* X(name, family, block type, blocks per stage) */
#define ARCH_TABLE(X)                                                                              \
    X("resnet18", ARCH_RESNET, ARCH_BASIC, 2, 2, 2, 2)                                             \
    X("resnet34", ARCH_RESNET, ARCH_BASIC, 3, 4, 6, 3)                                             \
    X("resnet50", ARCH_RESNET, ARCH_BOTTLENECK, 3, 4, 6, 3)                                        \
    X("resnet101", ARCH_RESNET, ARCH_BOTTLENECK, 3, 4, 23, 3)                                      \
    X("resnet152", ARCH_RESNET, ARCH_BOTTLENECK, 3, 8, 36, 3)                                      \
    X("vgg11", ARCH_VGG, ARCH_BASIC, 0, 0, 0, 0)                                                   \
    X("vgg11_bn", ARCH_VGG, ARCH_BASIC, 0, 0, 0, 0)                                                \
    X("vgg13", ARCH_VGG, ARCH_BASIC, 0, 0, 0, 0)                                                   \
    X("vgg13_bn", ARCH_VGG, ARCH_BASIC, 0, 0, 0, 0)                                                \
    X("vgg16", ARCH_VGG, ARCH_BASIC, 0, 0, 0, 0)                                                   \
    X("vgg16_bn", ARCH_VGG, ARCH_BASIC, 0, 0, 0, 0)                                                \
    X("vgg19", ARCH_VGG, ARCH_BASIC, 0, 0, 0, 0)                                                   \
    X("vgg19_bn", ARCH_VGG, ARCH_BASIC, 0, 0, 0, 0)                                                \
    X("inception_v3", ARCH_INCEPTION, ARCH_BASIC, 0, 0, 0, 0)

static const arch_info table[] = {
#define ARCH_ROW(name, family, block, b1, b2, b3, b4) {name, family, block, {b1, b2, b3, b4}},
    ARCH_TABLE(ARCH_ROW)
#undef ARCH_ROW
};

const char *const arch_name_choices[] = {
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
        if (table[i].family == ARCH_RESNET && table[i].block == block &&
            !memcmp(table[i].blocks, blocks, sizeof table[i].blocks))
            return &table[i];
    return NULL;
}

const char *const *arch_names(void)
{
    return arch_name_choices;
}

/* Appends ", "-separated item S (the first without separator) to BUF (N
 * bytes, *USED so far); returns 0, or -1 when it no longer fits. */
static int join(char *buf, size_t n, size_t *used, const char *s)
{
    int w = snprintf(buf + *used, n - *used, "%s%s", *used ? ", " : "", s);
    if (w < 0 || (size_t)w >= n - *used) {
        if (*used < n) buf[n - 1] = '\0';
        return -1;
    }
    *used += (size_t)w;
    return 0;
}

char *arch_list_string(char *buf, size_t n)
{
    size_t used = 0;
    if (!n) return buf;
    buf[0] = '\0';
    for (size_t i = 0; i < ARCH_COUNT; i++)
        if (join(buf, n, &used, table[i].name)) break;
    return buf;
}

/* ---------- families ---------- */

static const struct {
    const char *name;   // family name
    const char *marker; // tensor that identifies it in a file
    const char *layout; // its tensor names, for messages
} families[ARCH_FAMILY_COUNT] = {
    {"resnet", "layer1.0.conv1.weight", "conv1, layer1..layer4, fc"},
    {"vgg", "features.0.weight", "features.N, classifier.N"},
    {"inception_v3", "Mixed_5b.branch1x1.conv.weight", "Conv2d_1a_3x3 .. Mixed_7c, fc"},
};

const char *arch_family_name(arch_family f)
{
    return (unsigned)f < ARCH_FAMILY_COUNT ? families[f].name : "?";
}

const char *arch_family_marker(arch_family f)
{
    return (unsigned)f < ARCH_FAMILY_COUNT ? families[f].marker : NULL;
}

char *arch_family_list_string(char *buf, size_t n)
{
    size_t used = 0;
    if (!n) return buf;
    buf[0] = '\0';
    for (int f = 0; f < ARCH_FAMILY_COUNT; f++) {
        char item[96];
        snprintf(item, sizeof item, "%s (%s)", families[f].name, families[f].layout);
        if (join(buf, n, &used, item)) break;
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
/* ---------- freeze points ---------- */

/* X(family, name, frozen units of the family's engine) */
#define FREEZE_TABLE(X)                                                                            \
    X(ARCH_RESNET, "none", 0)                                                                      \
    X(ARCH_RESNET, "stem", 1)                                                                      \
    X(ARCH_RESNET, "layer1", 2)                                                                    \
    X(ARCH_RESNET, "layer2", 3)                                                                    \
    X(ARCH_RESNET, "layer3", 4)                                                                    \
    X(ARCH_RESNET, "layer4", 5)                                                                    \
    X(ARCH_RESNET, "all", 6)                                                                       \
    X(ARCH_VGG, "none", 0)                                                                         \
    X(ARCH_VGG, "block1", 1)                                                                       \
    X(ARCH_VGG, "block2", 2)                                                                       \
    X(ARCH_VGG, "block3", 3)                                                                       \
    X(ARCH_VGG, "block4", 4)                                                                       \
    X(ARCH_VGG, "block5", 5)                                                                       \
    X(ARCH_VGG, "features", 5)                                                                     \
    X(ARCH_VGG, "all", 7)                                                                          \
    X(ARCH_INCEPTION, "none", 0)                                                                   \
    X(ARCH_INCEPTION, "stem", 5)                                                                   \
    X(ARCH_INCEPTION, "Mixed_5b", 6)                                                               \
    X(ARCH_INCEPTION, "Mixed_5c", 7)                                                               \
    X(ARCH_INCEPTION, "Mixed_5d", 8)                                                               \
    X(ARCH_INCEPTION, "Mixed_6a", 9)                                                               \
    X(ARCH_INCEPTION, "Mixed_6b", 10)                                                              \
    X(ARCH_INCEPTION, "Mixed_6c", 11)                                                              \
    X(ARCH_INCEPTION, "Mixed_6d", 12)                                                              \
    X(ARCH_INCEPTION, "Mixed_6e", 13)                                                              \
    X(ARCH_INCEPTION, "Mixed_7a", 15)                                                              \
    X(ARCH_INCEPTION, "Mixed_7b", 16)                                                              \
    X(ARCH_INCEPTION, "Mixed_7c", 17)                                                              \
    X(ARCH_INCEPTION, "all", 17)

static const struct {
    arch_family family; // family
    const char *name;   // freeze value
    int level;          // frozen units
} freezes[] = {
#define FREEZE_ROW(f, name, level) {f, name, level},
    FREEZE_TABLE(FREEZE_ROW)
#undef FREEZE_ROW
};

#define FREEZE_COUNT (sizeof freezes / sizeof freezes[0])

int arch_freeze_level(arch_family f, const char *name)
{
    for (size_t i = 0; name && i < FREEZE_COUNT; i++)
        if (freezes[i].family == f && !strcmp(freezes[i].name, name)) return freezes[i].level;
    return -1;
}

bool arch_freeze_known(const char *name)
{
    for (int f = 0; f < ARCH_FAMILY_COUNT; f++)
        if (arch_freeze_level((arch_family)f, name) >= 0) return true;
    return false;
}

char *arch_freeze_list_string(arch_family f, char *buf, size_t n)
{
    size_t used = 0;
    if (!n) return buf;
    buf[0] = '\0';
    for (size_t i = 0; i < FREEZE_COUNT; i++)
        if (freezes[i].family == f && join(buf, n, &used, freezes[i].name)) break;
    return buf;
}

const char *const arch_freeze_choices[] = {
    "none",     "stem",     "layer1",   "layer2",   "layer3",   "layer4",   "all",
    "block1",   "block2",   "block3",   "block4",   "block5",   "features", "Mixed_5b",
    "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
    "Mixed_7a", "Mixed_7b", "Mixed_7c", NULL};
