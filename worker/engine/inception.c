/* inception — Inception v3 on the net.h engine (contract in
 * include/inception.h). One builder serves both construction paths: it asks
 * a channel source for every BasicConv2d's output channels, which is either
 * torchvision's count scaled by the width or the shape found in a file. The
 * module order follows torchvision's __init__, so parameters come out in
 * state_dict order. */
#include "inception.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

typedef struct {
    net *g;           // the graph being built
    const st_file *f; // file giving the channel counts, or NULL
    int width;        // scale when no file (64 = torchvision)
    int error;        // first error (0: none)
    char *msg;        // its message
    size_t msglen;
} bctx;

/* Output channels of conv NAME: from the file, or BASE scaled. */
static int chans(bctx *b, const char *name, int base)
{
    if (!b->f) {
        long v = (long)base * b->width / 64;
        return v < 1 ? 1 : (int)v;
    }
    char t[160];
    snprintf(t, sizeof t, "%.100s.conv.weight", name);
    const st_tensor *s = st_find(b->f, t);
    if (!s || s->ndim != 4 || s->shape[0] < 1 || s->shape[0] > 65536) {
        if (!b->error)
            b->error =
                err_set(b->msg, b->msglen, ERR_MODEL,
                        "%s: missing or malformed tensor '%s' (Inception v3)", st_path(b->f), t);
        return 1;
    }
    return (int)s->shape[0];
}

/* BasicConv2d: conv (no bias) + BN (eps 0.001) + ReLU, reading X through a
 * 3x3 / 1 / pad 1 average pool when POOL (see NET_POOL3). */
static int basic_p(bctx *b, int x, const char *prefix, const char *name, int base, int kh, int kw,
                   int stride, int ph, int pw, float std, unsigned pool)
{
    char full[96], cn[112], bn[112]; // names are short (torchvision's)
    snprintf(full, sizeof full, "%s%s%s", prefix, *prefix ? "." : "", name);
    snprintf(cn, sizeof cn, "%s.conv", full);
    snprintf(bn, sizeof bn, "%s.bn", full);
    return net_conv(b->g, x, cn, bn, chans(b, full, base), kh, kw, stride, ph, pw,
                    NET_BN | NET_RELU | pool, 1e-3f, NET_INIT_TRUNC_NORMAL, std);
}

static int basic(bctx *b, int x, const char *prefix, const char *name, int base, int kh, int kw,
                 int stride, int ph, int pw, float std)
{
    return basic_p(b, x, prefix, name, base, kh, kw, stride, ph, pw, std, 0);
}

#define B1(x, n, c) basic(b, x, p, n, c, 1, 1, 1, 0, 0, 0.1f)
#define B3(x, n, c, s, pad) basic(b, x, p, n, c, 3, 3, s, pad, pad, 0.1f)
#define B17(x, n, c) basic(b, x, p, n, c, 1, 7, 1, 0, 3, 0.1f)
#define B71(x, n, c) basic(b, x, p, n, c, 7, 1, 1, 3, 0, 0.1f)
#define B13(x, n, c) basic(b, x, p, n, c, 1, 3, 1, 0, 1, 0.1f)
#define B31(x, n, c) basic(b, x, p, n, c, 3, 1, 1, 1, 0, 0.1f)
/* branch_pool: avg_pool2d(x, 3, 1, 1) then a 1x1 BasicConv2d */
#define BPOOL(x, n, c) basic_p(b, x, p, n, c, 1, 1, 1, 0, 0, 0.1f, NET_POOL3)

static int cat(bctx *b, int a0, int a1, int a2, int a3)
{
    int in[4] = {a0, a1, a2, a3};
    return net_concat(b->g, in, a3 < 0 ? 3 : 4);
}

static int inception_a(bctx *b, int x, const char *p, int pool)
{
    net_unit(b->g, p);
    int b1 = B1(x, "branch1x1", 64);
    int b5 = B1(x, "branch5x5_1", 48);
    b5 = basic(b, b5, p, "branch5x5_2", 64, 5, 5, 1, 2, 2, 0.1f);
    int bd = B1(x, "branch3x3dbl_1", 64);
    bd = B3(bd, "branch3x3dbl_2", 96, 1, 1);
    bd = B3(bd, "branch3x3dbl_3", 96, 1, 1);
    int bp = BPOOL(x, "branch_pool", pool);
    return cat(b, b1, b5, bd, bp);
}

static int inception_b(bctx *b, int x, const char *p)
{
    net_unit(b->g, p);
    int b3 = B3(x, "branch3x3", 384, 2, 0);
    int bd = B1(x, "branch3x3dbl_1", 64);
    bd = B3(bd, "branch3x3dbl_2", 96, 1, 1);
    bd = B3(bd, "branch3x3dbl_3", 96, 2, 0);
    int bp = net_maxpool(b->g, x, 3, 2, 0, 0);
    return cat(b, b3, bd, bp, -1);
}

static int inception_c(bctx *b, int x, const char *p, int c7)
{
    net_unit(b->g, p);
    int b1 = B1(x, "branch1x1", 192);
    int b7 = B1(x, "branch7x7_1", c7);
    b7 = B17(b7, "branch7x7_2", c7);
    b7 = B71(b7, "branch7x7_3", 192);
    int bd = B1(x, "branch7x7dbl_1", c7);
    bd = B71(bd, "branch7x7dbl_2", c7);
    bd = B17(bd, "branch7x7dbl_3", c7);
    bd = B71(bd, "branch7x7dbl_4", c7);
    bd = B17(bd, "branch7x7dbl_5", 192);
    int bp = BPOOL(x, "branch_pool", 192);
    return cat(b, b1, b7, bd, bp);
}

static int inception_d(bctx *b, int x, const char *p)
{
    net_unit(b->g, p);
    int b3 = B1(x, "branch3x3_1", 192);
    b3 = B3(b3, "branch3x3_2", 320, 2, 0);
    int b7 = B1(x, "branch7x7x3_1", 192);
    b7 = B17(b7, "branch7x7x3_2", 192);
    b7 = B71(b7, "branch7x7x3_3", 192);
    b7 = B3(b7, "branch7x7x3_4", 192, 2, 0);
    int bp = net_maxpool(b->g, x, 3, 2, 0, 0);
    return cat(b, b3, b7, bp, -1);
}

static int inception_e(bctx *b, int x, const char *p)
{
    net_unit(b->g, p);
    int b1 = B1(x, "branch1x1", 320);
    int b3 = B1(x, "branch3x3_1", 384);
    int b3a = B13(b3, "branch3x3_2a", 384);
    int b3b = B31(b3, "branch3x3_2b", 384);
    int in3[2] = {b3a, b3b};
    b3 = net_concat(b->g, in3, 2);
    int bd = B1(x, "branch3x3dbl_1", 448);
    bd = B3(bd, "branch3x3dbl_2", 384, 1, 1);
    int bda = B13(bd, "branch3x3dbl_3a", 384);
    int bdb = B31(bd, "branch3x3dbl_3b", 384);
    int ind[2] = {bda, bdb};
    bd = net_concat(b->g, ind, 2);
    int bp = BPOOL(x, "branch_pool", 192);
    return cat(b, b1, b3, bd, bp);
}

/* The whole network; AUX: build the auxiliary head. */
static int build(net **out, const st_file *f, int width, int classes, int aux, uint64_t seed,
                 char *msg, size_t msglen)
{
    *out = NULL;
    net *g = net_new("inception_v3", 3);
    if (!g) return err_set(msg, msglen, ERR_NOMEM, "out of memory for the model");
    bctx bc = {g, f, width, 0, msg, msglen}, *b = &bc;
    const char *p = "";
    /* transform_input: x' = x * std/0.5 + (mean - 0.5)/0.5 per channel */
    static const float scale[3] = {0.229f / 0.5f, 0.224f / 0.5f, 0.225f / 0.5f};
    static const float shift[3] = {(0.485f - 0.5f) / 0.5f, (0.456f - 0.5f) / 0.5f,
                                   (0.406f - 0.5f) / 0.5f};
    net_input_affine(g, scale, shift);
    net_unit(g, "Conv2d_1a_3x3");
    int x = B3(0, "Conv2d_1a_3x3", 32, 2, 0);
    net_unit(g, "Conv2d_2a_3x3");
    x = B3(x, "Conv2d_2a_3x3", 32, 1, 0);
    net_unit(g, "Conv2d_2b_3x3");
    x = B3(x, "Conv2d_2b_3x3", 64, 1, 1);
    x = net_maxpool(g, x, 3, 2, 0, 0);
    net_unit(g, "Conv2d_3b_1x1");
    x = B1(x, "Conv2d_3b_1x1", 80);
    net_unit(g, "Conv2d_4a_3x3");
    x = B3(x, "Conv2d_4a_3x3", 192, 1, 0);
    x = net_maxpool(g, x, 3, 2, 0, 0);
    x = inception_a(b, x, "Mixed_5b", 32);
    x = inception_a(b, x, "Mixed_5c", 64);
    x = inception_a(b, x, "Mixed_5d", 64);
    x = inception_b(b, x, "Mixed_6a");
    x = inception_c(b, x, "Mixed_6b", 128);
    x = inception_c(b, x, "Mixed_6c", 160);
    x = inception_c(b, x, "Mixed_6d", 160);
    x = inception_c(b, x, "Mixed_6e", 192);
    int auxout = -1;
    if (aux) {
        p = "AuxLogits";
        net_unit(g, p);
        int a = net_avgpool(g, x, 5, 3, 0, 1);
        a = B1(a, "conv0", 128);
        a = basic(b, a, p, "conv1", 768, 5, 5, 1, 0, 0, 0.01f);
        a = net_flatten(g, net_adaptive(g, a, 1, 1));
        auxout = net_linear(g, a, "AuxLogits.fc", classes, 0, NET_INIT_TRUNC_NORMAL, 0.001f);
        p = "";
    }
    x = inception_d(b, x, "Mixed_7a");
    x = inception_e(b, x, "Mixed_7b");
    x = inception_e(b, x, "Mixed_7c");
    x = net_flatten(g, net_adaptive(g, x, 1, 1));
    net_unit(g, "fc");
    x = net_dropout(g, x);
    x = net_linear(g, x, "fc", classes, 0, NET_INIT_TRUNC_NORMAL, 0.1f);
    net_outputs(g, x, auxout, "AuxLogits", INCEPTION_AUX_WEIGHT);
    int rc = bc.error ? bc.error : net_finish(g, seed, msg, msglen);
    if (rc) {
        net_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

int inception_create(net **out, const char *arch, int width, int num_classes, uint64_t seed,
                     char *msg, size_t msglen)
{
    *out = NULL;
    if (!arch || strcmp(arch, "inception_v3"))
        return err_set(msg, msglen, ERR_INVALID, "model.arch: '%s' is not inception_v3",
                       arch ? arch : "");
    if (width < 1 || width > 4096)
        return err_set(msg, msglen, ERR_INVALID, "model.width: %d is not in 1..4096", width);
    if (num_classes < 1 || num_classes > 1000000)
        return err_set(msg, msglen, ERR_INVALID, "number of classes %d is not in 1..1000000",
                       num_classes);
    return build(out, NULL, width, num_classes, 1, seed, msg, msglen);
}

int inception_from_file(net **out, const st_file *f, int num_classes, uint64_t seed, char *msg,
                        size_t msglen)
{
    *out = NULL;
    const st_tensor *fc = st_find(f, "fc.weight");
    if (!fc || fc->ndim != 2 || fc->shape[0] < 1 || fc->shape[0] > 1000000)
        return err_set(msg, msglen, ERR_MODEL, "%s: missing or malformed tensor 'fc.weight'",
                       st_path(f));
    int k = num_classes > 0 ? num_classes : (int)fc->shape[0];
    int aux = st_find(f, "AuxLogits.fc.weight") != NULL;
    return build(out, f, 64, k, aux, seed, msg, msglen);
}
