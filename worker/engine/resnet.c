/* resnet — ResNet model: structure from tensor names/shapes or from an arch
 * name, parameter storage, the training-step arena, and the forward/backward
 * passes over the layers of layers.h (contract in include/resnet.h).
 *
 * Structure. The network is a list of UNITS: unit 0 is the stem (conv1, bn1,
 * ReLU, max-pool), units 1..nblocks are the residual blocks in order, and the
 * head (global average pool, dropout, fc) follows. Freezing freezes the first
 * `nfrozen` units; parameters are stored in network order, so the trainable
 * ones are a suffix of `params`.
 *
 * Activations (all channel-major (C, B, H, W), sized for max_batch):
 * - a trainable unit keeps everything its backward pass needs in dedicated
 *   arena memory: conv outputs before BN (t), BN+ReLU outputs (a), the block
 *   output (out), the downsample conv output (ds_t), max-pool indices;
 * - frozen units never run backward, so they run in three shared scratch
 *   buffers (scr[0..2]) with a fixed plan that never overwrites a live tensor;
 *   only the last frozen unit writes a dedicated buffer, `feat`, which is the
 *   input of the trainable suffix (and what resnet_features returns);
 * - the backward pass uses the same three scratch buffers for gradients:
 *   block gradients rotate through them, so nothing is allocated per step.
 * Everything lives in one arena allocation made in resnet_prepare and touched
 * once there (first touch is slow on this machine, about 9 us per 4 KiB page).
 *
 * Other families. A model of another family (VGG, Inception v3) is a handle
 * whose `g` holds its net.h graph; every public function forwards to net.h
 * then (the "family dispatch" at the end of each). */
#include "resnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arch.h"
#include "errors.h"
#include "inception.h"
#include "layers.h"
#include "log.h"
#include "net.h"
#include "vgg.h"

#define MAX_STAGE_BLOCKS ARCH_MAX_STAGE_BLOCKS

typedef struct {
    int c, oc, k;     // input channels, output channels, kernel size (square)
    int stride, pad;  // stride, zero padding
    int h, w, oh, ow; // input and output spatial size at the prepared input size
    float *w_;        // weight (OC, C, K, K), inside params
    float *gw;        // its gradient (OC, C, K, K) or NULL when frozen
    float *prep;      // trained convolutions on tiny maps: w_ prepared (tap-major
                      // copy, conv2d_prep_floats floats), or NULL
    int prep_ok;      // prep holds the current w_: built by a training forward,
                      // used and cleared by the backward that follows
    int gw_pending;   // resnet_zero_grad left gw (a tiny-map convolution's,
                      // which has prep) unzeroed: the next backward overwrites it
} rconv;

typedef struct {
    int c;                  // channels
    float *gamma, *beta;    // weight, bias (C), inside params
    float *rmean, *rvar;    // running_mean, running_var (C), inside buffers
    float *ggamma, *gbeta;  // gradients (C) or NULL when frozen
    float *smean, *sinvstd; // batch mean and 1/sqrt(var+eps) of the last train forward (C)
} rbn;

typedef struct {
    int nconv;        // 2 (BasicBlock) or 3 (Bottleneck)
    rconv conv[3];    // conv1..conv3
    rbn bn[3];        // bn1..bn3
    int has_ds;       // downsample present
    rconv ds;         // downsample.0 (1x1 conv)
    rbn dsbn;         // downsample.1
    int in_c, out_c;  // block input / output channels
    int h, w, oh, ow; // block input / output spatial size
    /* activations, (C, B, H, W) each, set by resnet_prepare */
    float *x;    // block input (in_c, B, h, w) (the previous unit's output)
    float *t[3]; // conv k output before BN
    float *a[3]; // BN k + ReLU output, k < nconv-1 (input of conv k+1)
    float *main; // last BN output (out_c, B, oh, ow)
    float *ds_t; // downsample conv output (out_c, B, oh, ow)
    float *ds_a; // downsample BN output (out_c, B, oh, ow)
    float *out;  // block output relu(main + shortcut) (out_c, B, oh, ow)
} rblock;

struct resnet {
    net *g;                             // another family's graph, or NULL (a ResNet)
    resnet_info info;                   // architecture summary
    int in_ch;                          // image channels (3)
    rconv stem;                         // conv1
    rbn stem_bn;                        // bn1
    int nblocks;                        // residual blocks in all stages
    int stage_of[4 * MAX_STAGE_BLOCKS]; // stage (1..4) of each block
    rblock *blocks;                     // (nblocks)
    float *fc_w, *fc_b;                 // fc weight (K, F), bias (K), inside params
    float *fc_gw, *fc_gb;               // their gradients (always trainable once prepared)

    float *params; // all parameters, network order (param_count floats)
    size_t param_count;
    float *buffers; // running stats (buffer_count floats)
    size_t buffer_count;
    resnet_tensor *tensors; // named tensors, torchvision order
    size_t ntensors;
    char *names; // storage of tensor names

    /* prepared state */
    int prepared;
    freeze_kind freeze;        // freeze point
    float dropout;             // drop probability before fc
    int max_batch, in_h, in_w; // prepared batch and input size
    int nfrozen;               // frozen units: 0 (none) .. 1+nblocks (all but fc)
    size_t train_start;        // index in params of the first trainable parameter
    int train_mode;            // resnet_set_train
    int last_b;                // batch of the last forward
    int last_train;            // the last forward ran in training mode
    int last_dropout;          // the last forward applied dropout (mask valid)
    int prep_cur;              // resnet_prep_current: every conv's prep holds its current
                               // w_ (rewritten by the caller's optimizer); cleared by a
                               // backward pass, resnet_load and resnet_prepare
    int gw_lazy;               // some gw_pending is set
    int h1, w1;                // stem conv output size
    int h2, w2;                // max-pool output size

    float *arena; // the one allocation below (arena_floats)
    size_t arena_floats;
    float *grads;     // gradients of params[train_start..] (param_count - train_start)
    float *xin;       // input images, channel-major (in_ch, B, H, W)
    float *stem_t;    // conv1 output (width, B, h1, w1)
    float *stem_a;    // bn1 + ReLU output (width, B, h1, w1)
    float *mp_out;    // max-pool output (width, B, h2, w2)
    int32_t *mp_idx;  // max-pool winners (width, B, h2, w2)
    int mp_idx_valid; // mp_idx belongs to the last forward (train-mode stem)
    float *feat;      // input of the trainable suffix (see resnet_feature_floats)
    float *pooled;    // global average pool output (B, F)
    float *dropped;   // dropout output (B, F)
    float *mask;      // dropout mask (B, F)
    float *logits;    // fc output (B, K)
    float *probs;     // softmax of the logits (B, K)
    float *dlogits;   // dL/dlogits of the last loss (B, K)
    float *dpool;     // dL/dpooled (B, F)
    float *scr[3];    // scratch / gradient buffers (max activation floats each)
    float *ws;        // conv work space (max over convs)
    double *prof;     // (2 * (2 + nblocks)) seconds per unit, forward then
                      // backward, when SWEEP_PROFILE is set; else NULL
};

/* Optional per-unit timing: with SWEEP_PROFILE=1 in the environment every
 * forward/backward unit is timed and resnet_free prints the totals to stderr
 * (stem, each block, head), to see where a step goes. */
static double prof_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---------- architecture description ---------- */

typedef struct {
    int c, oc, k; // input channels, output channels, kernel
} cdim;

typedef struct {
    resnet_block_kind kind;
    int nb[4]; // blocks per stage
    int in_ch, width, stem_k;
    int classes, features;
    cdim *bc; // (nblocks, 4): conv1..conv3 (conv3 unused for basic), [3] downsample
              // (oc == 0: no downsample)
} arch_desc;

static int desc_nblocks(const arch_desc *a)
{
    return a->nb[0] + a->nb[1] + a->nb[2] + a->nb[3];
}

/* ---------- tensor list ---------- */

typedef struct {
    resnet *m;
    size_t pofs, bofs; // next free float in params / buffers
    size_t nt;         // tensors added
    size_t name_ofs;   // bytes of names used
    int counting;      // first pass: only count
    int unit;          // freeze unit of the tensors added now (0 stem, 1 + i block i, ...)
} builder;

static float *add_tensor(builder *b, const char *name, int is_param, int ndim, const int64_t *shape)
{
    size_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= (size_t)shape[i];
    size_t nlen = strlen(name) + 1;
    float *data = NULL;
    if (!b->counting) {
        resnet *m = b->m;
        resnet_tensor *t = &m->tensors[b->nt];
        char *nm = m->names + b->name_ofs;
        memcpy(nm, name, nlen);
        t->name = nm;
        t->ndim = ndim;
        for (int i = 0; i < 4; i++)
            t->shape[i] = i < ndim ? shape[i] : 0;
        t->numel = numel;
        data = is_param ? m->params + b->pofs : m->buffers + b->bofs;
        t->data = data;
        t->is_param = is_param;
        t->trainable = 0;
        t->grad = NULL;
        t->offset = -1;
        t->unit = b->unit;
    }
    if (is_param)
        b->pofs += numel;
    else
        b->bofs += numel;
    b->nt++;
    b->name_ofs += nlen;
    return data;
}

static void add_conv(builder *b, rconv *cv, const char *prefix, int c, int oc, int k, int stride)
{
    char name[128];
    snprintf(name, sizeof name, "%s.weight", prefix);
    int64_t shape[4] = {oc, c, k, k};
    float *w = add_tensor(b, name, 1, 4, shape);
    if (!b->counting) {
        cv->c = c;
        cv->oc = oc;
        cv->k = k;
        cv->stride = stride;
        cv->pad = k / 2;
        cv->w_ = w;
    }
}

static void add_bn(builder *b, rbn *bn, const char *prefix, int c)
{
    char name[128];
    int64_t shape[1] = {c};
    float *p[4];
    static const char *const sfx[4] = {"weight", "bias", "running_mean", "running_var"};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", prefix, sfx[i]);
        p[i] = add_tensor(b, name, i < 2, 1, shape);
    }
    if (!b->counting) {
        bn->c = c;
        bn->gamma = p[0];
        bn->beta = p[1];
        bn->rmean = p[2];
        bn->rvar = p[3];
    }
}

/* Adds every tensor of the architecture, in torchvision state_dict order. */
static void build_all(builder *b, const arch_desc *a)
{
    resnet *m = b->m;
    char pre[96];
    b->unit = 0;
    add_conv(b, &m->stem, "conv1", a->in_ch, a->width, a->stem_k, 2);
    add_bn(b, &m->stem_bn, "bn1", a->width);
    int bi = 0;
    for (int s = 0; s < 4; s++)
        for (int j = 0; j < a->nb[s]; j++, bi++) {
            rblock *k = b->counting ? NULL : &m->blocks[bi];
            b->unit = 1 + bi;
            rblock dummy;
            if (!k) k = &dummy;
            const cdim *d = &a->bc[bi * 4];
            int stride = (s > 0 && j == 0) ? 2 : 1;
            int nconv = a->kind == RESNET_BOTTLENECK ? 3 : 2;
            for (int c = 0; c < nconv; c++) {
                /* torchvision puts the stride on conv1 (Basic) / conv2 (Bottleneck) */
                int st = (a->kind == RESNET_BASIC ? c == 0 : c == 1) ? stride : 1;
                snprintf(pre, sizeof pre, "layer%d.%d.conv%d", s + 1, j, c + 1);
                add_conv(b, &k->conv[c], pre, d[c].c, d[c].oc, d[c].k, st);
                snprintf(pre, sizeof pre, "layer%d.%d.bn%d", s + 1, j, c + 1);
                add_bn(b, &k->bn[c], pre, d[c].oc);
            }
            if (d[3].oc) {
                snprintf(pre, sizeof pre, "layer%d.%d.downsample.0", s + 1, j);
                add_conv(b, &k->ds, pre, d[3].c, d[3].oc, d[3].k, stride);
                snprintf(pre, sizeof pre, "layer%d.%d.downsample.1", s + 1, j);
                add_bn(b, &k->dsbn, pre, d[3].oc);
            }
            if (!b->counting) {
                k->nconv = nconv;
                k->has_ds = d[3].oc != 0;
                k->in_c = d[0].c;
                k->out_c = d[nconv - 1].oc;
                m->stage_of[bi] = s + 1;
            }
        }
    int64_t fw[2] = {a->classes, a->features}, fb[1] = {a->classes};
    b->unit = 1 + bi;
    float *w = add_tensor(b, "fc.weight", 1, 2, fw);
    float *bb = add_tensor(b, "fc.bias", 1, 1, fb);
    if (!b->counting) {
        m->fc_w = w;
        m->fc_b = bb;
    }
}

/* Allocates the model for A (parameters uninitialised). */
static int model_alloc(resnet **out, const arch_desc *a, char *msg, size_t msglen)
{
    resnet *m = calloc(1, sizeof *m);
    if (!m) return err_set(msg, msglen, ERR_NOMEM, "out of memory for the model");
    m->nblocks = desc_nblocks(a);
    m->in_ch = a->in_ch;
    if (getenv("SWEEP_PROFILE")) m->prof = calloc(2 * (size_t)(2 + m->nblocks), sizeof(double));
    builder b = {.m = m, .counting = 1};
    build_all(&b, a);
    m->param_count = b.pofs;
    m->buffer_count = b.bofs;
    m->ntensors = b.nt;
    m->blocks = calloc((size_t)m->nblocks, sizeof *m->blocks);
    m->tensors = calloc(b.nt, sizeof *m->tensors);
    m->names = malloc(b.name_ofs);
    m->params = malloc(sizeof(float) * m->param_count);
    m->buffers = malloc(sizeof(float) * m->buffer_count);
    if (!m->blocks || !m->tensors || !m->names || !m->params || !m->buffers) {
        resnet_free(m);
        return err_set(msg, msglen, ERR_NOMEM, "out of memory for %zu model parameters", b.pofs);
    }
    builder b2 = {.m = m};
    build_all(&b2, a);
    resnet_info *in = &m->info;
    in->block = a->kind;
    memcpy(in->blocks, a->nb, sizeof a->nb);
    in->width = a->width;
    in->features = a->features;
    in->classes = a->classes;
    in->param_count = m->param_count;
    arch_name_of(a->kind == RESNET_BOTTLENECK ? ARCH_BOTTLENECK : ARCH_BASIC, a->nb, in->arch,
                 sizeof in->arch);
    *out = m;
    return 0;
}

void resnet_free(resnet *m)
{
    if (!m) return;
    if (m->g) {
        net_free(m->g);
        free(m);
        return;
    }
    if (m->prof) {
        int nu = 2 + m->nblocks;
        fprintf(stderr, "resnet profile (seconds, forward / backward):\n");
        for (int u = 0; u < nu; u++)
            fprintf(stderr, "  %-12s %8.4f %8.4f\n",
                    u == 0            ? "stem"
                    : u <= m->nblocks ? "block"
                                      : "pool+head",
                    m->prof[u], m->prof[nu + u]);
        free(m->prof);
    }
    net_arena_unmap(&m->arena, m->arena_floats);
    free(m->blocks);
    free(m->tensors);
    free(m->names);
    free(m->params);
    free(m->buffers);
    free(m);
}

/* ---------- initialisation ---------- */

static void init_conv(rconv *cv, rng_t *r)
{
    /* kaiming_normal_(mode="fan_out", nonlinearity="relu") */
    double std = sqrt(2.0 / ((double)cv->oc * cv->k * cv->k));
    size_t n = (size_t)cv->oc * cv->c * cv->k * cv->k;
    for (size_t i = 0; i < n; i++)
        cv->w_[i] = (float)(std * rng_normal(r));
}

static void init_bn(rbn *bn)
{
    for (int i = 0; i < bn->c; i++) {
        bn->gamma[i] = 1.0f;
        bn->beta[i] = 0.0f;
        bn->rmean[i] = 0.0f;
        bn->rvar[i] = 1.0f;
    }
}

static void init_fc(resnet *m, rng_t *r)
{
    /* nn.Linear: kaiming_uniform_(a=sqrt(5)) gives bound 1/sqrt(fan_in); bias the same */
    int k = m->info.classes, f = m->info.features;
    double bound = 1.0 / sqrt((double)f);
    for (size_t i = 0; i < (size_t)k * f; i++)
        m->fc_w[i] = (float)rng_range(r, -bound, bound);
    for (int i = 0; i < k; i++)
        m->fc_b[i] = (float)rng_range(r, -bound, bound);
}

static void init_all(resnet *m, uint64_t seed)
{
    rng_t r;
    rng_seed(&r, seed);
    init_conv(&m->stem, &r);
    init_bn(&m->stem_bn);
    for (int i = 0; i < m->nblocks; i++) {
        rblock *k = &m->blocks[i];
        for (int c = 0; c < k->nconv; c++) {
            init_conv(&k->conv[c], &r);
            init_bn(&k->bn[c]);
        }
        if (k->has_ds) {
            init_conv(&k->ds, &r);
            init_bn(&k->dsbn);
        }
    }
    init_fc(m, &r);
}

/* ---------- construction ---------- */

/* *OUT = a handle around G (taking it; freed on failure). */
static int wrap_net(resnet **out, net *g, char *msg, size_t msglen)
{
    resnet *m = calloc(1, sizeof *m);
    if (!m) {
        net_free(g);
        return err_set(msg, msglen, ERR_NOMEM, "out of memory for the model");
    }
    m->g = g;
    resnet_info *in = &m->info;
    snprintf(in->arch, sizeof in->arch, "%s", net_name(g));
    in->family = arch_find(net_name(g))           ? arch_find(net_name(g))->family
                 : strncmp(net_name(g), "vgg", 3) ? ARCH_INCEPTION
                                                  : ARCH_VGG;
    in->width = in->family == ARCH_INCEPTION ? 2 * net_width(g) : net_width(g);
    in->features = net_features(g);
    in->classes = net_classes(g);
    in->param_count = net_param_count(g);
    *out = m;
    return 0;
}

/* The family whose marker tensor F holds, or an error listing the families. */
static int file_family(const st_file *f, arch_family *fam, char *msg, size_t msglen)
{
    for (int k = 0; k < ARCH_FAMILY_COUNT; k++)
        if (st_find(f, arch_family_marker((arch_family)k))) {
            *fam = (arch_family)k;
            return 0;
        }
    char list[512];
    return err_set(msg, msglen, ERR_MODEL,
                   "%s: the tensor names match no known model family; known: %s", st_path(f),
                   arch_family_list_string(list, sizeof list));
}

/* Loads every tensor of the net model M from F but the classifier
 * heads when NEW_HEAD (they were initialised by the builder). */
static int load_net(resnet *m, const st_file *f, int new_head, uint64_t seed, char *msg,
                    size_t msglen);

int resnet_create(resnet **out, const char *arch, int width, int num_classes, uint64_t seed,
                  char *msg, size_t msglen)
{
    *out = NULL;
    arch_desc a = {0};
    if (!arch) return err_set(msg, msglen, ERR_INVALID, "model.arch: missing");
    const arch_info *known = arch_find(arch);
    if (!known) {
        char list[512];
        return err_set(msg, msglen, ERR_INVALID, "model.arch: unknown architecture '%s' (%s)", arch,
                       arch_list_string(list, sizeof list));
    }
    if (known->family != ARCH_RESNET) {
        net *g = NULL;
        int rc = known->family == ARCH_VGG
                     ? vgg_create(&g, arch, width, num_classes, seed, msg, msglen)
                     : inception_create(&g, arch, width, num_classes, seed, msg, msglen);
        return rc ? rc : wrap_net(out, g, msg, msglen);
    }
    a.kind = known->block == ARCH_BOTTLENECK ? RESNET_BOTTLENECK : RESNET_BASIC;
    memcpy(a.nb, known->blocks, sizeof a.nb);
    if (width < 1 || width > 4096)
        return err_set(msg, msglen, ERR_INVALID, "model.width: %d is not in 1..4096", width);
    if (num_classes < 1 || num_classes > 1000000)
        return err_set(msg, msglen, ERR_INVALID, "number of classes %d is not in 1..1000000",
                       num_classes);
    int exp = a.kind == RESNET_BOTTLENECK ? 4 : 1;
    a.in_ch = 3;
    a.width = width;
    a.stem_k = 7;
    a.classes = num_classes;
    int nb = desc_nblocks(&a);
    a.bc = calloc((size_t)nb * 4, sizeof *a.bc);
    if (!a.bc) return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    int in = width, bi = 0;
    for (int s = 0; s < 4; s++) {
        int planes = width << s;
        for (int j = 0; j < a.nb[s]; j++, bi++) {
            cdim *d = &a.bc[bi * 4];
            int stride = (s > 0 && j == 0) ? 2 : 1;
            if (a.kind == RESNET_BASIC) {
                d[0] = (cdim){in, planes, 3};
                d[1] = (cdim){planes, planes, 3};
            } else {
                d[0] = (cdim){in, planes, 1};
                d[1] = (cdim){planes, planes, 3};
                d[2] = (cdim){planes, planes * exp, 1};
            }
            if (stride != 1 || in != planes * exp) d[3] = (cdim){in, planes * exp, 1};
            in = planes * exp;
        }
    }
    a.features = in;
    int rc = model_alloc(out, &a, msg, msglen);
    free(a.bc);
    if (rc) return rc;
    init_all(*out, seed);
    return 0;
}

/* Shape of a 4-d conv weight NAME in F, or an error naming it. */
static int file_conv(const st_file *f, const char *name, cdim *d, int required, char *msg,
                     size_t msglen)
{
    const st_tensor *t = st_find(f, name);
    if (!t) {
        if (!required) {
            d->oc = 0;
            return 0;
        }
        return err_set(msg, msglen, ERR_MODEL, "%s: missing tensor '%s'", st_path(f), name);
    }
    if (t->ndim != 4 || t->shape[2] != t->shape[3] || t->shape[0] < 1 || t->shape[1] < 1 ||
        t->shape[2] < 1 || t->shape[0] > 65536 || t->shape[1] > 65536 || t->shape[2] > 15)
        return err_set(msg, msglen, ERR_MODEL,
                       "%s: tensor '%s' is not a square convolution weight (OC, C, K, K)",
                       st_path(f), name);
    d->oc = (int)t->shape[0];
    d->c = (int)t->shape[1];
    d->k = (int)t->shape[2];
    return 0;
}

static int desc_from_file(arch_desc *a, const st_file *f, char *msg, size_t msglen)
{
    char name[128];
    cdim stem;
    int rc = file_conv(f, "conv1.weight", &stem, 1, msg, msglen);
    if (rc) return rc;
    if (stem.c != 3)
        return err_set(msg, msglen, ERR_MODEL,
                       "%s: tensor 'conv1.weight' takes %d input channels; images have 3",
                       st_path(f), stem.c);
    a->in_ch = 3;
    a->width = stem.oc;
    a->stem_k = stem.k;
    arch_block kind;
    arch_detect(st_file_header(f), &kind, a->nb); // the structure by the names (arch.h)
    a->kind = kind == ARCH_BOTTLENECK ? RESNET_BOTTLENECK : RESNET_BASIC;
    int nconv = a->kind == RESNET_BOTTLENECK ? 3 : 2;
    for (int s = 0; s < 4; s++)
        if (a->nb[s] == 0)
            return err_set(msg, msglen, ERR_MODEL, "%s: missing tensor 'layer%d.0.conv1.weight'",
                           st_path(f), s + 1);
    int nb = desc_nblocks(a);
    a->bc = calloc((size_t)nb * 4, sizeof *a->bc);
    if (!a->bc) return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    int in = a->width, bi = 0;
    for (int s = 0; s < 4; s++)
        for (int j = 0; j < a->nb[s]; j++, bi++) {
            cdim *d = &a->bc[bi * 4];
            int prev = in;
            for (int c = 0; c < nconv; c++) {
                snprintf(name, sizeof name, "layer%d.%d.conv%d.weight", s + 1, j, c + 1);
                if ((rc = file_conv(f, name, &d[c], 1, msg, msglen))) return rc;
                if (d[c].c != prev)
                    return err_set(msg, msglen, ERR_MODEL,
                                   "%s: tensor '%s' takes %d input channels but the layer "
                                   "before gives %d",
                                   st_path(f), name, d[c].c, prev);
                prev = d[c].oc;
            }
            int out_c = prev;
            int stride = (s > 0 && j == 0) ? 2 : 1;
            snprintf(name, sizeof name, "layer%d.%d.downsample.0.weight", s + 1, j);
            int need = stride != 1 || in != out_c;
            if ((rc = file_conv(f, name, &d[3], need, msg, msglen))) return rc;
            if (d[3].oc && (d[3].c != in || d[3].oc != out_c || d[3].k != 1))
                return err_set(msg, msglen, ERR_MODEL,
                               "%s: tensor '%s' has shape (%d, %d, %d, %d); the block needs "
                               "(%d, %d, 1, 1)",
                               st_path(f), name, d[3].oc, d[3].c, d[3].k, d[3].k, out_c, in);
            in = out_c;
        }
    a->features = in;
    return 0;
}

/* Copies tensor T of the model from F (same shape required). */
static int load_tensor(const st_file *f, const resnet_tensor *t, char *msg, size_t msglen)
{
    const st_tensor *s = st_find(f, t->name);
    if (!s) return err_set(msg, msglen, ERR_MODEL, "%s: missing tensor '%s'", st_path(f), t->name);
    int same = s->ndim == t->ndim;
    for (int i = 0; same && i < t->ndim; i++)
        same = s->shape[i] == t->shape[i];
    if (!same) {
        char want[96] = "", got[96] = "";
        size_t o = 0;
        for (int i = 0; i < t->ndim && o < sizeof want; i++)
            o += snprintf(want + o, sizeof want - o, "%s%lld", i ? ", " : "",
                          (long long)t->shape[i]);
        o = 0;
        for (int i = 0; i < s->ndim && o < sizeof got; i++)
            o += snprintf(got + o, sizeof got - o, "%s%lld", i ? ", " : "", (long long)s->shape[i]);
        return err_set(msg, msglen, ERR_MODEL,
                       "%s: tensor '%s' has shape (%s); the model needs (%s)", st_path(f), t->name,
                       got, want);
    }
    char m2[256];
    int rc = st_read_f32(f, s, t->data, m2, sizeof m2);
    if (rc) return err_set(msg, msglen, ERR_MODEL, "%s: tensor '%s': %s", st_path(f), t->name, m2);
    return 0;
}

int resnet_from_safetensors(resnet **out, const st_file *f, int num_classes, uint64_t seed,
                            char *msg, size_t msglen)
{
    *out = NULL;
    arch_desc a = {0};
    arch_family fam = ARCH_RESNET;
    int rc = file_family(f, &fam, msg, msglen);
    if (rc) return rc;
    if (fam != ARCH_RESNET) {
        net *g = NULL;
        rc = fam == ARCH_VGG ? vgg_from_file(&g, f, num_classes, seed, msg, msglen)
                             : inception_from_file(&g, f, num_classes, seed, msg, msglen);
        if (!rc) rc = wrap_net(out, g, msg, msglen);
        if (!rc) rc = load_net(*out, f, num_classes > 0, seed, msg, msglen);
        if (rc && *out) {
            resnet_free(*out);
            *out = NULL;
        }
        return rc;
    }
    rc = desc_from_file(&a, f, msg, msglen);
    if (rc) goto done;
    const st_tensor *fw = st_find(f, "fc.weight");
    int file_classes = 0;
    if (fw) {
        if (fw->ndim != 2 || fw->shape[1] != a.features || fw->shape[0] < 1 ||
            fw->shape[0] > 1000000) {
            rc = err_set(msg, msglen, ERR_MODEL,
                         "%s: tensor 'fc.weight' must have shape (classes, %d)", st_path(f),
                         a.features);
            goto done;
        }
        file_classes = (int)fw->shape[0];
    } else if (num_classes <= 0) {
        rc = err_set(msg, msglen, ERR_MODEL, "%s: missing tensor 'fc.weight'", st_path(f));
        goto done;
    }
    int new_head = num_classes > 0 && num_classes != file_classes;
    a.classes = new_head ? num_classes : file_classes;
    if ((rc = model_alloc(out, &a, msg, msglen))) goto done;
    resnet *m = *out;
    for (size_t i = 0; i < m->ntensors; i++) {
        const resnet_tensor *t = &m->tensors[i];
        if (new_head && !strncmp(t->name, "fc.", 3)) continue;
        if ((rc = load_tensor(f, t, msg, msglen))) goto fail;
    }
    if (new_head) {
        rng_t r;
        rng_seed(&r, seed);
        init_fc(m, &r);
    }
    goto done;
fail:
    resnet_free(*out);
    *out = NULL;
done:
    free(a.bc);
    return rc;
}

int resnet_load(resnet *m, const st_file *f, char *msg, size_t msglen)
{
    m->prep_cur = 0; // the weights change
    for (size_t i = 0; i < resnet_tensor_count(m); i++) {
        int rc = load_tensor(f, resnet_tensor_at(m, i), msg, msglen);
        if (rc) return rc;
    }
    return 0;
}

/* Whether tensor NAME belongs to a classifier head of a net model (the last
 * linear and the auxiliary one: "classifier.6.", "fc.", "AuxLogits.fc."). */
static int net_head_tensor(const char *name)
{
    return !strncmp(name, "classifier.6.", 13) || !strncmp(name, "fc.", 3) ||
           !strncmp(name, "AuxLogits.fc.", 13);
}

static int load_net(resnet *m, const st_file *f, int new_head, uint64_t seed, char *msg,
                    size_t msglen)
{
    int file_rows = -1;
    const st_tensor *h =
        st_find(f, m->info.family == ARCH_VGG ? "classifier.6.weight" : "fc.weight");
    if (h && h->ndim == 2) file_rows = (int)h->shape[0];
    new_head = new_head && file_rows != m->info.classes;
    for (size_t i = 0; i < resnet_tensor_count(m); i++) {
        const resnet_tensor *t = resnet_tensor_at(m, i);
        if (new_head && net_head_tensor(t->name)) continue;
        int rc = load_tensor(f, t, msg, msglen);
        if (rc) return rc;
    }
    if (new_head) {
        net_init_linear(m->g, m->info.family == ARCH_VGG ? "classifier.6" : "fc", seed);
        net_init_linear(m->g, "AuxLogits.fc", seed + 1); // absent without an aux head
    }
    return 0;
}

void resnet_get_info(const resnet *m, resnet_info *info)
{
    *info = m->info;
}

/* Spatial sizes of every conv at input IN_H x IN_W; ERR_INVALID if too small. */
static int set_sizes(resnet *m, int in_h, int in_w)
{
    rconv *s = &m->stem;
    s->h = in_h;
    s->w = in_w;
    s->oh = (in_h + 2 * s->pad - s->k) / s->stride + 1;
    s->ow = (in_w + 2 * s->pad - s->k) / s->stride + 1;
    if (in_h + 2 * s->pad < s->k || in_w + 2 * s->pad < s->k || s->oh < 1 || s->ow < 1)
        return ERR_INVALID;
    m->h1 = s->oh;
    m->w1 = s->ow;
    if (m->h1 + 2 < 3 || m->w1 + 2 < 3) return ERR_INVALID;
    m->h2 = (m->h1 + 2 - 3) / 2 + 1;
    m->w2 = (m->w1 + 2 - 3) / 2 + 1;
    int h = m->h2, w = m->w2;
    for (int i = 0; i < m->nblocks; i++) {
        rblock *k = &m->blocks[i];
        k->h = h;
        k->w = w;
        int ch = h, cw = w;
        for (int c = 0; c < k->nconv; c++) {
            rconv *cv = &k->conv[c];
            cv->h = ch;
            cv->w = cw;
            if (ch + 2 * cv->pad < cv->k || cw + 2 * cv->pad < cv->k) return ERR_INVALID;
            cv->oh = (ch + 2 * cv->pad - cv->k) / cv->stride + 1;
            cv->ow = (cw + 2 * cv->pad - cv->k) / cv->stride + 1;
            ch = cv->oh;
            cw = cv->ow;
        }
        k->oh = ch;
        k->ow = cw;
        if (k->has_ds) {
            rconv *cv = &k->ds;
            cv->h = h;
            cv->w = w;
            cv->oh = (h + 2 * cv->pad - cv->k) / cv->stride + 1;
            cv->ow = (w + 2 * cv->pad - cv->k) / cv->stride + 1;
            if (cv->oh != ch || cv->ow != cw) return ERR_INVALID;
        }
        h = ch;
        w = cw;
    }
    return 0;
}

static size_t conv_ws(const rconv *cv, int b)
{
    conv2d_desc d;
    if (conv2d_desc_init(&d, b, cv->c, cv->h, cv->w, cv->oc, cv->k, cv->k, cv->stride, cv->pad))
        return 0;
    return conv2d_workspace_floats(&d);
}

/* Floats of prepared weights the convolution uses (0: none). */
static size_t conv_prep(const rconv *cv, int b)
{
    conv2d_desc d;
    if (conv2d_desc_init(&d, b, cv->c, cv->h, cv->w, cv->oc, cv->k, cv->k, cv->stride, cv->pad))
        return 0;
    return conv2d_prep_floats(&d);
}

static size_t conv_out(const rconv *cv, int b)
{
    return (size_t)cv->oc * b * cv->oh * cv->ow;
}

/* Hands out every arena buffer (counting when a->base is NULL). */
static void plan_arena(resnet *m, net_arena *a)
{
    const int B = m->max_batch;
    const int F = m->info.features, K = m->info.classes;
    /* largest activation and work space */
    size_t maxact = conv_out(&m->stem, B), maxws = conv_ws(&m->stem, B);
    for (int i = 0; i < m->nblocks; i++) {
        rblock *k = &m->blocks[i];
        for (int c = 0; c < k->nconv; c++) {
            size_t o = conv_out(&k->conv[c], B), w = conv_ws(&k->conv[c], B);
            maxact = o > maxact ? o : maxact;
            maxws = w > maxws ? w : maxws;
        }
        size_t x = (size_t)k->in_c * B * k->h * k->w;
        maxact = x > maxact ? x : maxact;
        if (k->has_ds) {
            size_t w = conv_ws(&k->ds, B);
            maxws = w > maxws ? w : maxws;
        }
    }
    m->grads = net_arena_take(a, m->param_count - m->train_start);
    m->xin = net_arena_take(a, (size_t)m->in_ch * B * m->in_h * m->in_w);
    for (int i = 0; i < 3; i++)
        m->scr[i] = net_arena_take(a, maxact);
    m->ws = net_arena_take(a, maxws ? maxws : 1);
    m->pooled = net_arena_take(a, (size_t)B * F);
    m->dropped = net_arena_take(a, (size_t)B * F);
    m->mask = net_arena_take(a, (size_t)B * F);
    m->dpool = net_arena_take(a, (size_t)B * F);
    m->logits = net_arena_take(a, (size_t)B * K);
    m->probs = net_arena_take(a, (size_t)B * K);
    m->dlogits = net_arena_take(a, (size_t)B * K);

    /* stem */
    size_t s1 = conv_out(&m->stem, B), s2 = (size_t)m->info.width * B * m->h2 * m->w2;
    rbn *sb = &m->stem_bn;
    sb->smean = net_arena_take(a, sb->c);
    sb->sinvstd = net_arena_take(a, sb->c);
    if (m->nfrozen >= 1) {
        m->stem_t = m->stem_a = m->scr[0];
        m->mp_idx = (int32_t *)m->scr[2]; // written by maxpool, never read when frozen
        m->mp_out = m->nfrozen == 1 ? net_arena_take(a, s2) : m->scr[1];
    } else {
        m->stem_t = net_arena_take(a, s1);
        m->stem_a = net_arena_take(a, s1);
        m->mp_out = net_arena_take(a, s2);
        m->mp_idx = (int32_t *)net_arena_take(a, s2);
    }
    float *x = m->mp_out;
    for (int i = 0; i < m->nblocks; i++) {
        rblock *k = &m->blocks[i];
        int unit = 1 + i;
        size_t outn = (size_t)k->out_c * B * k->oh * k->ow;
        k->x = x;
        for (int c = 0; c < k->nconv; c++) {
            k->bn[c].smean = net_arena_take(a, k->bn[c].c);
            k->bn[c].sinvstd = net_arena_take(a, k->bn[c].c);
        }
        if (k->has_ds) {
            k->dsbn.smean = net_arena_take(a, k->dsbn.c);
            k->dsbn.sinvstd = net_arena_take(a, k->dsbn.c);
        }
        if (unit < m->nfrozen) {
            /* frozen: run in scratch (plan in the file comment) */
            float *s[2];
            int n = 0;
            for (int j = 0; j < 3 && n < 2; j++)
                if (m->scr[j] != x) s[n++] = m->scr[j];
            int last = unit == m->nfrozen - 1 && unit < m->nblocks;
            /* the last frozen block of all blocks feeds avgpool, which may read scratch */
            if (k->nconv == 2) {
                k->t[0] = k->a[0] = s[0];
                k->t[1] = k->main = s[1];
                k->ds_t = k->ds_a = s[0];
                k->out = last ? net_arena_take(a, outn) : s[1];
            } else {
                k->t[0] = k->a[0] = s[0];
                k->t[1] = k->a[1] = s[1];
                k->t[2] = k->main = s[0];
                k->ds_t = k->ds_a = s[1];
                k->out = last ? net_arena_take(a, outn) : s[0];
            }
        } else {
            for (int c = 0; c < k->nconv; c++) {
                size_t o = conv_out(&k->conv[c], B);
                k->t[c] = net_arena_take(a, o);
                k->a[c] = c < k->nconv - 1 ? net_arena_take(a, o) : NULL;
                size_t np = conv_prep(&k->conv[c], B);
                k->conv[c].prep = np ? net_arena_take(a, np) : NULL;
                k->conv[c].prep_ok = 0;
                k->conv[c].gw_pending = 0;
            }
            k->out = k->main = net_arena_take(a, outn);
            if (k->has_ds) {
                k->ds_t = net_arena_take(a, outn);
                k->ds_a = m->scr[0]; // consumed right away by the residual add
            }
        }
        x = k->out;
    }
    /* the suffix input */
    if (m->nfrozen == 0)
        m->feat = m->xin;
    else if (m->nfrozen == 1)
        m->feat = m->mp_out;
    else if (m->nfrozen <= m->nblocks)
        m->feat = m->blocks[m->nfrozen - 2].out;
    else
        m->feat = m->pooled;
}

/* Points the gradient fields at m->grads for trainable parameters. */
static void assign_grads(resnet *m)
{
    for (size_t i = 0; i < m->ntensors; i++) {
        resnet_tensor *t = &m->tensors[i];
        size_t ofs = (size_t)(t->data - m->params);
        t->trainable = t->is_param && t->data >= m->params &&
                       t->data < m->params + m->param_count && ofs >= m->train_start;
        t->grad = t->trainable ? m->grads + (ofs - m->train_start) : NULL;
        t->offset = t->trainable ? (ptrdiff_t)(ofs - m->train_start) : -1;
    }
#define G(p)                                                                                       \
    ((size_t)((p)-m->params) >= m->train_start ? m->grads + ((p)-m->params - m->train_start) : NULL)
    m->stem.gw = G(m->stem.w_);
    m->stem_bn.ggamma = G(m->stem_bn.gamma);
    m->stem_bn.gbeta = G(m->stem_bn.beta);
    for (int i = 0; i < m->nblocks; i++) {
        rblock *k = &m->blocks[i];
        for (int c = 0; c < k->nconv; c++) {
            k->conv[c].gw = G(k->conv[c].w_);
            k->bn[c].ggamma = G(k->bn[c].gamma);
            k->bn[c].gbeta = G(k->bn[c].beta);
        }
        if (k->has_ds) {
            k->ds.gw = G(k->ds.w_);
            k->dsbn.ggamma = G(k->dsbn.gamma);
            k->dsbn.gbeta = G(k->dsbn.beta);
        }
    }
    m->fc_gw = G(m->fc_w);
    m->fc_gb = G(m->fc_b);
#undef G
}

/* Units frozen by FREEZE: 0 (none) .. 1+nblocks (every block). */
static int frozen_units(const resnet *m, freeze_kind freeze)
{
    int nf = 0;
    if (freeze >= FREEZE_LAYER4)
        nf = 1 + m->nblocks;
    else if (freeze >= FREEZE_STEM) {
        nf = 1;
        for (int i = 0; i < m->nblocks; i++)
            if (m->stage_of[i] <= (int)freeze - (int)FREEZE_STEM) nf = 2 + i;
    }
    return nf;
}

/* The frozen units of M's family for FREEZE, or an error naming the family's points. */
static int freeze_units(const resnet *m, freeze_kind freeze, int *units, char *msg, size_t msglen)
{
    *units = arch_freeze_level(m->info.family, params_freeze_name(freeze));
    if (*units >= 0) return 0;
    char list[512];
    return err_set(msg, msglen, ERR_INVALID, "freeze: \"%s\" is not a freeze point of %s (%s)",
                   params_freeze_name(freeze), m->info.arch,
                   arch_freeze_list_string(m->info.family, list, sizeof list));
}

int resnet_frozen_units_at(const resnet *m, freeze_kind freeze)
{
    if (m->g) return arch_freeze_level(m->info.family, params_freeze_name(freeze));
    return frozen_units(m, freeze);
}

int resnet_prepare(resnet *m, freeze_kind freeze, float dropout, int max_batch, int in_h, int in_w,
                   char *msg, size_t msglen)
{
    int units;
    int rc = freeze_units(m, freeze, &units, msg, msglen);
    if (rc) return rc;
    if (m->g) return net_prepare(m->g, units, dropout, max_batch, in_h, in_w, msg, msglen);
    if (max_batch < 1 || in_h < 1 || in_w < 1)
        return err_set(msg, msglen, ERR_INVALID, "batch %d and input size %dx%d must be positive",
                       max_batch, in_h, in_w);
    if (!(dropout >= 0 && dropout < 1))
        return err_set(msg, msglen, ERR_INVALID, "dropout %g is not in [0, 1)", dropout);
    m->dropout = dropout;
    if (m->prepared && m->freeze == freeze && m->max_batch == max_batch && m->in_h == in_h &&
        m->in_w == in_w)
        return 0;
    net_arena_unmap(&m->arena, m->arena_floats);
    m->prepared = 0;
    m->prep_cur = 0;
    m->gw_lazy = 0; // the new arena's gradients start at zero
    if (set_sizes(m, in_h, in_w))
        return err_set(msg, msglen, ERR_INVALID, "input size %dx%d is too small for this network",
                       in_h, in_w);
    m->freeze = freeze;
    m->max_batch = max_batch;
    m->in_h = in_h;
    m->in_w = in_w;
    int nf = frozen_units(m, freeze);
    m->nfrozen = nf;
    /* first trainable parameter */
    if (nf == 0)
        m->train_start = 0;
    else if (nf == 1)
        m->train_start = (size_t)(m->blocks[0].conv[0].w_ - m->params);
    else if (nf <= m->nblocks)
        m->train_start = (size_t)(m->blocks[nf - 1].conv[0].w_ - m->params);
    else
        m->train_start = (size_t)(m->fc_w - m->params);
    net_arena a = {0};
    plan_arena(m, &a);
    if ((rc = net_arena_map(a.used, &m->arena, msg, msglen))) return rc;
    m->arena_floats = a.used;
    net_arena a2 = {.base = m->arena};
    plan_arena(m, &a2);
    assign_grads(m);
    m->prepared = 1;
    return 0;
}

void resnet_set_train(resnet *m, int train)
{
    if (m->g) net_set_train(m->g, train);
    m->train_mode = train != 0;
}

/* ---------- forward ---------- */

/* A training-mode forward of a convolution with prepared weights builds them
 * (the weights may have changed since the last step) and the backward pass
 * of the same step reuses them, then marks them stale: weights only change
 * after the backward pass (optimizer step), so a prepared matrix is never
 * used with other weights. Evaluation forwards build in the work space. */
static void conv_fwd(resnet *m, rconv *cv, float *out, const float *in, int b)
{
    conv2d_desc d;
    conv2d_desc_init(&d, b, cv->c, cv->h, cv->w, cv->oc, cv->k, cv->k, cv->stride, cv->pad);
    cv->prep_ok = 0;
    /* prepared weights the optimizer rewrote (resnet_prep_current) serve
     * training and evaluation forwards as they are */
    if (cv->prep && (m->train_mode || m->prep_cur)) {
        if (!m->prep_cur) conv2d_prepare(cv->prep, cv->w_, &d);
        cv->prep_ok = 1;
    }
    conv2d_forward_prep(out, in, cv->w_, cv->prep_ok ? cv->prep : NULL, &d, m->ws);
}

/* A pending gradient (gw_pending) is overwritten rather than accumulated into. */
static void conv_bwd(resnet *m, rconv *cv, float *din, const float *dout, const float *in, int b,
                     int acc)
{
    conv2d_desc d;
    conv2d_desc_init(&d, b, cv->c, cv->h, cv->w, cv->oc, cv->k, cv->k, cv->stride, cv->pad);
    const float *prep = cv->prep_ok ? cv->prep : NULL;
    if (cv->gw_pending && cv->gw)
        conv2d_backward_prep_set(din, cv->gw, dout, in, cv->w_, prep, &d, m->ws, acc);
    else
        conv2d_backward_prep(din, cv->gw, dout, in, cv->w_, prep, &d, m->ws, acc);
    cv->gw_pending = 0;
    cv->prep_ok = 0;
}

static void bn_fwd(rbn *bn, float *out, const float *in, int b, int hw, int relu, int train)
{
    if (train)
        batchnorm_forward_train(out, in, bn->gamma, bn->beta, bn->rmean, bn->rvar, bn->smean,
                                bn->sinvstd, b, bn->c, hw, BN_MOMENTUM, BN_EPS, relu);
    else
        batchnorm_forward_eval(out, in, bn->gamma, bn->beta, bn->rmean, bn->rvar, b, bn->c, hw,
                               BN_EPS, relu);
}

static void bn_bwd(const rbn *bn, float *din, const float *dout, const float *in, const float *out,
                   int b, int hw, int relu, int train)
{
    if (train)
        batchnorm_backward(din, bn->ggamma, bn->gbeta, dout, in, out, bn->gamma, bn->smean,
                           bn->sinvstd, b, bn->c, hw, relu);
    else
        batchnorm_backward_eval(din, bn->ggamma, bn->gbeta, dout, in, out, bn->gamma, bn->rmean,
                                bn->rvar, b, bn->c, hw, BN_EPS, relu);
}

static void stem_fwd(resnet *m, int b, int train)
{
    conv_fwd(m, &m->stem, m->stem_t, m->xin, b);
    bn_fwd(&m->stem_bn, m->stem_a, m->stem_t, b, m->h1 * m->w1, 1, train);
    /* winners only when a backward pass is expected (training mode); an
     * evaluation-mode backward recomputes them */
    m->mp_idx_valid = train;
    maxpool2d_forward(m->mp_out, train ? m->mp_idx : NULL, m->stem_a, b, m->info.width, m->h1,
                      m->w1, 3, 2, 1, m->h2, m->w2);
}

static void block_fwd(resnet *m, rblock *k, int b, int train)
{
    const float *cur = k->x;
    for (int c = 0; c < k->nconv; c++) {
        rconv *cv = &k->conv[c];
        conv_fwd(m, cv, k->t[c], cur, b);
        int last = c == k->nconv - 1;
        float *dst = last ? k->main : k->a[c];
        bn_fwd(&k->bn[c], dst, k->t[c], b, cv->oh * cv->ow, !last, train);
        cur = dst;
    }
    const float *sc = k->x;
    if (k->has_ds) {
        conv_fwd(m, &k->ds, k->ds_t, k->x, b);
        bn_fwd(&k->dsbn, k->ds_a, k->ds_t, b, k->oh * k->ow, 0, train);
        sc = k->ds_a;
    }
    add_forward(k->out, k->main, sc, (size_t)k->out_c * b * k->oh * k->ow, 1);
}

/* Global average pool of the last block's output into m->pooled (B, F). */
static void pool_fwd(resnet *m, int b)
{
    const rblock *k = &m->blocks[m->nblocks - 1];
    avgpool_forward(m->pooled, k->out, b, k->out_c, k->oh * k->ow);
}

/* Units of the frozen prefix: nfrozen, plus the average pool when every
 * block is frozen (its features are the pooled vectors). */
static int prefix_units(const resnet *m)
{
    return m->nfrozen <= m->nblocks ? m->nfrozen : 2 + m->nblocks;
}

/* Runs units [u0, u1) (unit 1+nblocks = avgpool). */
static void run_units(resnet *m, int u0, int u1, int b)
{
    for (int u = u0; u < u1; u++) {
        int train = m->train_mode && u >= m->nfrozen;
        double t0 = m->prof ? prof_now() : 0;
        if (u == 0)
            stem_fwd(m, b, train);
        else if (u <= m->nblocks)
            block_fwd(m, &m->blocks[u - 1], b, train);
        else
            pool_fwd(m, b);
        if (m->prof) m->prof[u] += prof_now() - t0;
    }
}

static const float *head_fwd(resnet *m, int b, rng_t *rng)
{
    int F = m->info.features, K = m->info.classes;
    const float *in = m->pooled;
    m->last_dropout = m->train_mode && m->dropout > 0;
    if (m->last_dropout) {
        SWEEP_ASSERT(rng != NULL);
        dropout_forward(m->dropped, m->mask, m->pooled, (size_t)b * F, m->dropout, rng);
        in = m->dropped;
    }
    linear_forward(m->logits, in, m->fc_w, m->fc_b, b, F, K);
    m->last_b = b;
    m->last_train = m->train_mode;
    return m->logits;
}

const float *resnet_forward(resnet *m, const float *x, int b, rng_t *rng)
{
    if (m->g) return net_forward(m->g, x, b, rng);
    SWEEP_ASSERT(m->prepared && b >= 1 && b <= m->max_batch);
    nchw_to_cnhw(m->xin, x, b, m->in_ch, m->in_h * m->in_w);
    run_units(m, 0, 2 + m->nblocks, b);
    return head_fwd(m, b, rng);
}

/* Channels and spatial size of the output of the first NF units (the
 * suffix input when NF is m->nfrozen). */
static void feat_dims_at(const resnet *m, int nf, int *c, int *hw)
{
    if (nf == 0) {
        *c = m->in_ch;
        *hw = m->in_h * m->in_w;
    } else if (nf == 1) {
        *c = m->info.width;
        *hw = m->h2 * m->w2;
    } else if (nf <= m->nblocks) {
        const rblock *k = &m->blocks[nf - 2];
        *c = k->out_c;
        *hw = k->oh * k->ow;
    } else {
        *c = m->info.features;
        *hw = 1;
    }
}

static void feat_dims(const resnet *m, int *c, int *hw)
{
    feat_dims_at(m, m->nfrozen, c, hw);
}

size_t resnet_feature_floats(const resnet *m)
{
    if (m->g) return net_feature_floats(m->g);
    int c, hw;
    feat_dims(m, &c, &hw);
    return (size_t)c * hw;
}

size_t resnet_feature_floats_at(const resnet *m, freeze_kind freeze)
{
    if (m->g) return net_feature_floats(m->g); // another family: only its prepared freeze
    int c, hw;
    feat_dims_at(m, frozen_units(m, freeze), &c, &hw);
    return (size_t)c * hw;
}

/* Runs the frozen units from U0 to the end of the prefix in evaluation mode
 * and writes the prefix's output to FEAT (NCHW per image). */
static void prefix_from(resnet *m, int u0, int b, float *feat)
{
    int c, hw;
    feat_dims(m, &c, &hw);
    int save = m->train_mode;
    m->train_mode = 0;
    run_units(m, u0, prefix_units(m), b);
    m->train_mode = save;
    if (m->nfrozen > m->nblocks)
        memcpy(feat, m->pooled, sizeof(float) * (size_t)b * c);
    else
        cnhw_to_nchw(feat, m->feat, b, c, hw);
}

void resnet_features(resnet *m, const float *x, int b, float *feat)
{
    if (m->g) {
        net_features_run(m->g, x, b, feat);
        return;
    }
    SWEEP_ASSERT(m->prepared && b >= 1 && b <= m->max_batch);
    if (m->nfrozen == 0) {
        memcpy(feat, x, sizeof(float) * (size_t)b * m->in_ch * m->in_h * m->in_w);
        return;
    }
    nchw_to_cnhw(m->xin, x, b, m->in_ch, m->in_h * m->in_w);
    prefix_from(m, 0, b, feat);
}

void resnet_features_from(resnet *m, freeze_kind from, const float *in, int b, float *feat)
{
    int u0 = frozen_units(m, from);
    SWEEP_ASSERT(m->prepared && b >= 1 && b <= m->max_batch && u0 >= 1 && u0 <= m->nblocks &&
                 u0 < m->nfrozen);
    int c, hw;
    feat_dims_at(m, u0, &c, &hw);
    nchw_to_cnhw(m->blocks[u0 - 1].x, in, b, c, hw);
    prefix_from(m, u0, b, feat);
}

const float *resnet_forward_features(resnet *m, const float *feat, int b, rng_t *rng)
{
    if (m->g) return net_forward_features(m->g, feat, b, rng);
    SWEEP_ASSERT(m->prepared && b >= 1 && b <= m->max_batch);
    int c, hw;
    feat_dims(m, &c, &hw);
    if (m->nfrozen > m->nblocks)
        memcpy(m->pooled, feat, sizeof(float) * (size_t)b * c);
    else
        nchw_to_cnhw(m->feat, feat, b, c, hw);
    run_units(m, prefix_units(m), 2 + m->nblocks, b);
    return head_fwd(m, b, rng);
}

/* ---------- loss and backward ---------- */

float resnet_loss(resnet *m, const int *labels, float smoothing, float *probs)
{
    if (m->g) return net_loss(m->g, labels, smoothing, probs);
    int b = m->last_b, K = m->info.classes;
    float loss = softmax_xent_forward(m->probs, m->logits, labels, b, K, smoothing);
    softmax_xent_backward(m->dlogits, m->probs, labels, b, K, smoothing);
    if (probs) memcpy(probs, m->probs, sizeof(float) * (size_t)b * K);
    return loss;
}

/* Backward of block K from dout (one of the scratch buffers, clobbered).
 * Returns the buffer holding dL/dx, or NULL when need_dx is 0. */
static float *block_bwd(resnet *m, rblock *k, float *dout, int b, int need_dx, int train)
{
    float *q = NULL, *r = NULL;
    for (int j = 0; j < 3; j++)
        if (m->scr[j] != dout) {
            if (!q)
                q = m->scr[j];
            else
                r = m->scr[j];
        }
    const size_t outn = (size_t)k->out_c * b * k->oh * k->ow;
    float *g = dout;
    relu_backward(g, g, k->out, outn); // through the final ReLU
    int last = k->nconv - 1;
    bn_bwd(&k->bn[last], q, g, k->t[last], NULL, b, k->oh * k->ow, 0, train);
    float *cur = q;
    float *dx = NULL;
    for (int c = last; c >= 0; c--) {
        rconv *cv = &k->conv[c];
        float *nxt = cur == q ? r : q;
        if (c > 0) {
            conv_bwd(m, cv, nxt, cur, k->a[c - 1], b, 0);
            const rconv *pv = &k->conv[c - 1];
            bn_bwd(&k->bn[c - 1], nxt, nxt, k->t[c - 1], k->a[c - 1], b, pv->oh * pv->ow, 1, train);
            cur = nxt;
        } else {
            dx = need_dx ? nxt : NULL;
            conv_bwd(m, cv, dx, cur, k->x, b, 0);
        }
    }
    if (k->has_ds) {
        bn_bwd(&k->dsbn, g, g, k->ds_t, NULL, b, k->oh * k->ow, 0, train);
        conv_bwd(m, &k->ds, dx, g, k->x, b, 1);
    } else if (dx) {
        add_forward(dx, dx, g, outn, 0);
    }
    return dx;
}

void resnet_backward_from(resnet *m, const float *dlogits)
{
    if (m->g) {
        net_backward_from(m->g, dlogits);
        return;
    }
    SWEEP_ASSERT(m->prepared && m->last_b >= 1);
    const int b = m->last_b, F = m->info.features, K = m->info.classes;
    const int train = m->last_train;
    m->prep_cur = 0; // the weights change after a backward pass
    int any_backbone = m->nfrozen <= m->nblocks;
    const float *fc_in = m->last_dropout ? m->dropped : m->pooled;
    linear_backward(any_backbone ? m->dpool : NULL, m->fc_gw, m->fc_gb, dlogits, fc_in, m->fc_w, b,
                    F, K);
    if (!any_backbone) return;
    if (m->last_dropout) dropout_backward(m->dpool, m->dpool, m->mask, (size_t)b * F);
    const rblock *lastb = &m->blocks[m->nblocks - 1];
    float *g = m->scr[0];
    avgpool_backward(g, m->dpool, b, lastb->out_c, lastb->oh * lastb->ow);
    for (int u = m->nblocks; u >= 1 && u >= m->nfrozen; u--) {
        rblock *k = &m->blocks[u - 1];
        double t0 = m->prof ? prof_now() : 0;
        g = block_bwd(m, k, g, b, u > m->nfrozen, train);
        if (m->prof) m->prof[2 + m->nblocks + u] += prof_now() - t0;
    }
    if (m->nfrozen == 0) {
        double t0 = m->prof ? prof_now() : 0;
        /* stem: max-pool, bn1 + ReLU, conv1 (no dX for the image) */
        float *d = m->scr[0] == g ? m->scr[1] : m->scr[0];
        if (!m->mp_idx_valid) {
            /* the forward ran in evaluation mode without winners: find them now
             * (the max-pool output is rewritten with the same values) */
            maxpool2d_forward(m->mp_out, m->mp_idx, m->stem_a, b, m->info.width, m->h1, m->w1, 3, 2,
                              1, m->h2, m->w2);
            m->mp_idx_valid = 1;
        }
        maxpool2d_backward(d, g, m->mp_idx, b, m->info.width, m->h1, m->w1, m->h2, m->w2);
        bn_bwd(&m->stem_bn, d, d, m->stem_t, m->stem_a, b, m->h1 * m->w1, 1, train);
        conv_bwd(m, &m->stem, NULL, d, m->xin, b, 0);
        if (m->prof) m->prof[2 + m->nblocks] += prof_now() - t0;
    }
}

void resnet_backward(resnet *m)
{
    if (m->g) {
        net_backward(m->g);
        return;
    }
    resnet_backward_from(m, m->dlogits);
}

/* The trainable convolutions with prepared weights (tiny maps): up to MAX
 * into CV in parameter order; returns how many. */
static int prep_convs(resnet *m, rconv **cv, int max)
{
    int n = 0;
    for (int i = m->nfrozen > 1 ? m->nfrozen - 1 : 0; i < m->nblocks; i++) {
        rblock *k = &m->blocks[i];
        for (int c = 0; c < k->nconv; c++)
            if (k->conv[c].prep && k->conv[c].gw && n < max) cv[n++] = &k->conv[c];
    }
    return n;
}

/* Zeroes the gradients left pending by resnet_zero_grad. */
static void settle_grads(resnet *m)
{
    if (!m->gw_lazy) return;
    rconv *cv[64];
    int n = prep_convs(m, cv, 64);
    for (int i = 0; i < n; i++)
        if (cv[i]->gw_pending) {
            memset(cv[i]->gw, 0,
                   sizeof(float) * (size_t)cv[i]->oc * cv[i]->c * cv[i]->k * cv[i]->k);
            cv[i]->gw_pending = 0;
        }
    m->gw_lazy = 0;
}

/* The weight gradients of the tiny-map convolutions are not zeroed here:
 * marked pending, the next backward pass writes them instead of adding
 * (one pass less over them per step); resnet_trainable zeroes any still
 * pending. The rest is zeroed in the gaps between them. */
void resnet_zero_grad(resnet *m)
{
    if (m->g) {
        net_zero_grad(m->g);
        return;
    }
    if (!m->prepared) return;
    rconv *cv[64];
    int n = prep_convs(m, cv, 64);
    float *at = m->grads, *end = m->grads + (m->param_count - m->train_start);
    for (int i = 0; i < n; i++) {
        /* parameter order: the gradients increase along cv */
        float *g = cv[i]->gw;
        if (g > at) memset(at, 0, sizeof(float) * (size_t)(g - at));
        at = g + (size_t)cv[i]->oc * cv[i]->c * cv[i]->k * cv[i]->k;
        cv[i]->gw_pending = 1;
    }
    if (end > at) memset(at, 0, sizeof(float) * (size_t)(end - at));
    m->gw_lazy = n > 0;
}

int resnet_prep_views(resnet *m, resnet_prep_view *v, int max)
{
    if (m->g || !m->prepared) return 0;
    rconv *cv[64];
    int n = prep_convs(m, cv, 64), nv = 0;
    for (int i = 0; i < n; i++) {
        conv2d_desc d;
        rconv *c = cv[i];
        conv2d_desc_init(&d, m->max_batch, c->c, c->h, c->w, c->oc, c->k, c->k, c->stride, c->pad);
        int taps[64];
        int nt = conv2d_prep_taps(&d, taps);
        if (nt <= 0 || nv >= max) return 0; // not every prep can be rewritten: none
        resnet_prep_view *x = &v[nv++];
        x->offset = (size_t)(c->w_ - m->params) - m->train_start;
        x->oc = c->oc;
        x->c = c->c;
        x->kk = c->k * c->k;
        x->ntaps = nt;
        memcpy(x->tap, taps, sizeof(int) * (size_t)nt);
        x->prep = c->prep;
    }
    return nv;
}

void resnet_prep_current(resnet *m)
{
    if (!m->g && m->prepared) m->prep_cur = 1;
}

float *resnet_trainable(resnet *m, size_t *count, float **grads)
{
    if (m->g) return net_trainable(m->g, count, grads);
    if (!m->prepared) {
        *count = 0;
        if (grads) *grads = NULL;
        return NULL;
    }
    settle_grads(m);
    *count = m->param_count - m->train_start;
    if (grads) *grads = m->grads;
    return m->params + m->train_start;
}

size_t resnet_tensor_count(const resnet *m)
{
    if (m->g) return net_tensor_count(m->g);
    return m->ntensors;
}

const resnet_tensor *resnet_tensor_at(const resnet *m, size_t i)
{
    if (m->g) return net_tensor_at(m->g, i);
    return i < m->ntensors ? &m->tensors[i] : NULL;
}

const resnet_tensor *resnet_find_tensor(const resnet *m, const char *name)
{
    for (size_t i = 0; i < resnet_tensor_count(m); i++)
        if (!strcmp(resnet_tensor_at(m, i)->name, name)) return resnet_tensor_at(m, i);
    return NULL;
}

static double conv_flops(const rconv *cv)
{
    return 2.0 * cv->oc * cv->c * cv->k * cv->k * (double)cv->oh * cv->ow;
}

double resnet_flops(const resnet *m)
{
    if (m->g) return net_flops(m->g);
    double f = conv_flops(&m->stem);
    for (int i = 0; i < m->nblocks; i++) {
        const rblock *k = &m->blocks[i];
        for (int c = 0; c < k->nconv; c++)
            f += conv_flops(&k->conv[c]);
        if (k->has_ds) f += conv_flops(&k->ds);
    }
    return f + 2.0 * m->info.classes * m->info.features;
}
