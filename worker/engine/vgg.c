/* vgg — the VGG family on the net.h engine (contract in include/vgg.h). A
 * configuration is a list of convolution widths with 0 for a max pool, as
 * torchvision's cfgs "A", "B", "D", "E"; from a file the list is read back
 * from the features.N indices (a convolution takes 2 indices, 3 with BN, a
 * pool 1). */
#include "vgg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

#define VGG_MAX_LAYERS 40

/* torchvision's configurations (0 = max pool), ended by -1. */
static const int cfg_a[] = {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0, -1};
static const int cfg_b[] = {64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0, -1};
static const int cfg_d[] = {64,  64,  0,   128, 128, 0,   256, 256, 256, 0,
                            512, 512, 512, 0,   512, 512, 512, 0,   -1};
static const int cfg_e[] = {64,  64,  0,   128, 128, 0,   256, 256, 256, 256, 0,
                            512, 512, 512, 512, 0,   512, 512, 512, 512, 0,   -1};

static const struct {
    const char *name; // "vgg16"
    const int *cfg;   // its configuration
} known[] = {{"vgg11", cfg_a}, {"vgg13", cfg_b}, {"vgg16", cfg_d}, {"vgg19", cfg_e}};

/* The graph for CFG (widths as given), BN, hidden sizes H1, H2, K classes. */
static int build(net **out, const char *name, const int *cfg, int bn, int h1, int h2, int k,
                 uint64_t seed, char *msg, size_t msglen)
{
    net *g = net_new(name, 3);
    if (!g) return err_set(msg, msglen, ERR_NOMEM, "out of memory for the model");
    int x = 0, idx = 0, block = 1;
    char un[16], cn[32], bnn[32];
    snprintf(un, sizeof un, "block%d", block);
    net_unit(g, un);
    for (int i = 0; cfg[i] >= 0; i++) {
        if (cfg[i] == 0) {
            x = net_maxpool(g, x, 2, 2, 0, 0);
            idx++;
            if (cfg[i + 1] >= 0) {
                snprintf(un, sizeof un, "block%d", ++block);
                net_unit(g, un);
            }
            continue;
        }
        snprintf(cn, sizeof cn, "features.%d", idx);
        snprintf(bnn, sizeof bnn, "features.%d", idx + 1);
        unsigned fl = NET_BIAS | NET_RELU | (bn ? NET_BN : 0);
        x = net_conv(g, x, cn, bnn, cfg[i], 3, 3, 1, 1, 1, fl, 1e-5f, NET_INIT_KAIMING_OUT, 0);
        idx += bn ? 3 : 2;
    }
    x = net_flatten(g, net_adaptive(g, x, 7, 7));
    net_unit(g, "classifier.0");
    x = net_dropout(g, net_linear(g, x, "classifier.0", h1, 1, NET_INIT_NORMAL, 0.01f));
    net_unit(g, "classifier.3");
    x = net_dropout(g, net_linear(g, x, "classifier.3", h2, 1, NET_INIT_NORMAL, 0.01f));
    net_unit(g, "classifier.6");
    x = net_linear(g, x, "classifier.6", k, 0, NET_INIT_NORMAL, 0.01f);
    net_outputs(g, x, -1, NULL, 0);
    int rc = net_finish(g, seed, msg, msglen);
    if (rc) {
        net_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

int vgg_create(net **out, const char *arch, int width, int num_classes, uint64_t seed, char *msg,
               size_t msglen)
{
    *out = NULL;
    char base[16];
    size_t len = arch ? strlen(arch) : 0;
    int bn = len > 3 && !strcmp(arch + len - 3, "_bn");
    snprintf(base, sizeof base, "%.*s", (int)(bn ? len - 3 : len), arch ? arch : "");
    const int *cfg = NULL;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(known[i].name, base)) cfg = known[i].cfg;
    if (!cfg) return err_set(msg, msglen, ERR_INVALID, "model.arch: '%s' is not a VGG", arch);
    if (width < 1 || width > 4096)
        return err_set(msg, msglen, ERR_INVALID, "model.width: %d is not in 1..4096", width);
    if (num_classes < 1 || num_classes > 1000000)
        return err_set(msg, msglen, ERR_INVALID, "number of classes %d is not in 1..1000000",
                       num_classes);
    int scaled[VGG_MAX_LAYERS];
    int n = 0;
    for (; cfg[n] >= 0; n++) {
        long v = (long)cfg[n] * width / 64;
        scaled[n] = cfg[n] == 0 ? 0 : (v < 1 ? 1 : (int)v);
    }
    scaled[n] = -1;
    long hidden = 4096L * width / 64;
    if (hidden < 1) hidden = 1;
    return build(out, arch, scaled, bn, (int)hidden, (int)hidden, num_classes, seed, msg, msglen);
}

/* Shape of NAME as (rows, cols) for a 2-d tensor, or an error naming it. */
static int linear_shape(const st_file *f, const char *name, int64_t *rows, int64_t *cols, char *msg,
                        size_t msglen)
{
    const st_tensor *t = st_find(f, name);
    if (!t) return err_set(msg, msglen, ERR_MODEL, "%s: missing tensor '%s'", st_path(f), name);
    if (t->ndim != 2 || t->shape[0] < 1 || t->shape[1] < 1 || t->shape[0] > 1000000 ||
        t->shape[1] > 100000000)
        return err_set(msg, msglen, ERR_MODEL, "%s: tensor '%s' is not a linear weight", st_path(f),
                       name);
    *rows = t->shape[0];
    *cols = t->shape[1];
    return 0;
}

int vgg_from_file(net **out, const st_file *f, int num_classes, uint64_t seed, char *msg,
                  size_t msglen)
{
    *out = NULL;
    char name[64];
    int cfg[VGG_MAX_LAYERS], n = 0, idx = 0, last_c = 3, convs = 0;
    snprintf(name, sizeof name, "features.1.running_mean");
    int bn = st_find(f, name) != NULL;
    /* the last features index that holds a tensor */
    int top = -1;
    for (int i = 0; i < 4 * VGG_MAX_LAYERS; i++) {
        snprintf(name, sizeof name, "features.%d.weight", i);
        if (st_find(f, name)) top = i;
    }
    while (idx <= top && n < VGG_MAX_LAYERS - 2) {
        snprintf(name, sizeof name, "features.%d.weight", idx);
        const st_tensor *t = st_find(f, name);
        if (!t) {
            cfg[n++] = 0;
            idx++;
            continue;
        }
        if (t->ndim != 4 || t->shape[2] != 3 || t->shape[3] != 3 || t->shape[1] != last_c ||
            t->shape[0] < 1 || t->shape[0] > 65536)
            return err_set(msg, msglen, ERR_MODEL,
                           "%s: tensor '%s' is not a 3x3 convolution taking %d channels",
                           st_path(f), name, last_c);
        last_c = (int)t->shape[0];
        cfg[n++] = last_c;
        convs++;
        idx += bn ? 3 : 2;
    }
    cfg[n++] = 0; // the pool after the last convolution
    cfg[n] = -1;
    int64_t r0, c0, r3, c3, r6, c6;
    int rc;
    if ((rc = linear_shape(f, "classifier.0.weight", &r0, &c0, msg, msglen)) ||
        (rc = linear_shape(f, "classifier.3.weight", &r3, &c3, msg, msglen)) ||
        (rc = linear_shape(f, "classifier.6.weight", &r6, &c6, msg, msglen)))
        return rc;
    if (c0 != (int64_t)last_c * 49 || c3 != r0 || c6 != r3)
        return err_set(msg, msglen, ERR_MODEL,
                       "%s: classifier shapes (%lld, %lld), (%lld, %lld), (%lld, %lld) do not "
                       "follow %d channels pooled to 7x7",
                       st_path(f), (long long)r0, (long long)c0, (long long)r3, (long long)c3,
                       (long long)r6, (long long)c6, last_c);
    /* the name of the structure: torchvision's when the pattern matches */
    char arch[32];
    snprintf(arch, sizeof arch, "vgg-%d%s", convs, bn ? "_bn" : "");
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        const int *k = known[i].cfg;
        int same = 1, j = 0;
        for (; k[j] >= 0 && cfg[j] >= 0; j++)
            same &= (k[j] == 0) == (cfg[j] == 0);
        if (same && k[j] < 0 && cfg[j] < 0)
            snprintf(arch, sizeof arch, "%s%s", known[i].name, bn ? "_bn" : "");
    }
    int k = num_classes > 0 ? num_classes : (int)r6;
    return build(out, arch, cfg, bn, (int)r0, (int)r3, k, seed, msg, msglen);
}
