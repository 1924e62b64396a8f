/* net — the graph-of-layers engine behind VGG and Inception v3 (contract in
 * include/net.h).
 *
 * Nodes are kept in creation order, which is both torchvision's parameter
 * order and a topological order of the graph, so the forward pass runs them
 * in order and the backward pass in reverse. Frozen nodes (unit < nfrozen)
 * run in evaluation mode and never backward.
 *
 * Concatenation: the inputs of a concat node have no buffer of their own;
 * their outputs (and gradients) are bound, per call, to their channel slices
 * of the concat's buffer, which depend on the batch size of the call
 * ((C, B, H, W) is contiguous for the B of the call).
 *
 * NET_POOL3 convolutions (avg_pool2d 3x3/1/1 then a 1x1 conv): in
 * evaluation mode conv into pbuf, then pool into the output (OC channels
 * pooled instead of C_in); in training mode pool into the node's own pin,
 * then conv, exactly as a pool node and a conv node would compute it, so
 * training results are bitwise those of the plain graph (the pool-after-conv
 * order is the same up to rounding, but that rounding flips a ReLU of the
 * PyTorch parity fixture, which is chaotic at its width).
 *
 * 3x3 stride-1 convolutions without padding (Inception's Conv2d_2a and
 * Conv2d_4a, 16% of its forward multiplies) run in evaluation mode as the
 * pad-1 convolution of the same input, which goes through Winograd, cropped
 * to the interior (valid_as_same). Training mode keeps im2col for them,
 * forward and backward: Winograd's different rounding there moved the
 * PyTorch parity fixture's Conv2d_1a gradient past its tolerance under
 * OpenBLAS's Haswell kernels (the fixture is chaotic at its width).
 *
 * 1x1 groups (merge_groups, at net_finish): the 1x1 stride-1 convolutions
 * without bias that read the same node in one unit (an Inception block's
 * branch heads and, in evaluation mode, its branch_pool) have their weights
 * laid out next to each other in params, so an evaluation forward multiplies
 * them in one product into gbuf and each member's batchnorm reads its rows
 * from there (group_forward); their t is then stale and a backward pass
 * after it recomputes it (refresh_t). Training mode runs them one by one.
 *
 * Max pools compute their winners only in a training-mode forward (the
 * evaluation kernel is faster); a backward pass after an evaluation forward
 * recomputes them first.
 *
 * Profiling: SWEEP_PROFILE=1 sums seconds per node kind, SWEEP_PROFILE=2 also
 * per node (training forward, backward, evaluation forward); net_free prints
 * them.
 *
 * Backward plan (net_prepare): walking the trainable nodes in reverse order,
 * the first consumer of a node to run backward takes a free gradient slot for
 * it and overwrites it, later consumers accumulate; a node releases its slot
 * after its own backward (a concat hands its slot to its inputs). Kernels
 * without an accumulating form write into `tmp` and add. A trainable node
 * that no trainable consumer reaches (the auxiliary head when it does not
 * run) is skipped. */
#include "net.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "errors.h"
#include "layers.h"
#include "log.h"
#include "pool.h"

#define ALIGN_FLOATS 16 // 64-byte alignment of every arena buffer
#define NET_MAX_IN 4
#define NET_MAX_SLOTS 64

typedef enum {
    N_INPUT = 0,
    N_CONV,
    N_MAXPOOL,
    N_AVGPOOL,
    N_ADAPTIVE,
    N_CONCAT,
    N_FLATTEN,
    N_LINEAR,
    N_DROPOUT,
} nkind;

typedef struct {
    nkind kind;               // node type
    int unit;                 // unit (freeze point) it belongs to
    int in[NET_MAX_IN];       // input nodes
    int nin;                  // number of inputs
    int c, h, w;              // output channels and size (flat nodes: c features, h = w = 1)
    int flat;                 // output is batch-major (B, c)
    int fixed;                // h, w fixed when built (adaptive pool and later)
    int kh, kw;               // conv kernel; pools: kh = kernel
    int stride, pad, padw;    // conv/pool stride and paddings
    int mode;                 // maxpool: ceil mode; avgpool: count_include_pad
    unsigned flags;           // conv: NET_BIAS | NET_BN | NET_RELU | NET_POOL3; linear: NET_RELU
    float eps;                // batchnorm epsilon
    net_init init;            // initialisation of the weight
    float std;                // its standard deviation where it has one
    ptrdiff_t t_w, t_b, t_bn; // tensor indices: weight, bias, BN weight (-1: none)
    float *wt, *bias;         // weight, bias (inside params)
    float *gamma, *beta;      // BN weight and bias (inside params)
    float *rmean, *rvar;      // BN running statistics (inside buffers)
    float *gw, *gb;           // gradients (NULL when frozen)
    float *ggamma, *gbeta;
    float *smean, *sinvstd; // BN batch statistics of the last training forward
    float *t;               // conv output before BN (trainable BN convs; else = out)
    float *out;             // output (bound per call for concat inputs)
    int32_t *idx;           // max-pool winners (trainable max pools)
    float *pin;             // NET_POOL3 convs in training mode: the pooled input (C_in, B, H, W)
                            // (trainable ones; NULL otherwise)
    float *mask;            // dropout mask
    float *grad;            // gradient of out during a backward pass
    int parent;             // concat node whose buffer holds out, or -1
    int chan_ofs;           // channels before this one in the parent
    int consumers;          // nodes reading this one
    int skip;               // not run at the prepared size (auxiliary head too small)
    int bskip;              // trainable but no gradient reaches it
    int gslot;              // gradient slot, or -1 (alias of the parent's, or none)
    int acc[NET_MAX_IN];    // backward: accumulate into input k's gradient
    int last_train;         // the last forward ran this node in training mode
    int grp;                // 1x1 group (see merge_groups): its first member's node id, or -1
    int grp_row;            // rows (output channels) of the group's product before this member's
    int grp_rows;           // first member: rows of the whole group (sum of the members' c)
    int t_stale;            // t was not written by the last (grouped evaluation) forward
    int drop_on;            // dropout: the last forward applied a mask
} node;

typedef struct {
    char *name;       // tensor name (owned)
    int ndim;         // rank
    int64_t shape[4]; // dimensions
    int is_param;     // parameter or buffer
    size_t ofs;       // offset in params or buffers
    int unit;         // unit of its node
} tspec;

struct net {
    char name[32];            // architecture name
    int in_ch;                // image channels
    node *nodes;              // (nnodes)
    int nnodes, cap;          // used, allocated
    tspec *specs;             // tensors as declared (nt)
    size_t nt, tcap;          // used, allocated
    int nunits;               // units declared
    char **unit_names;        // (nunits)
    int logits, aux;          // output nodes (aux -1: none)
    int aux_unit;             // unit of the auxiliary head, or -1
    float aux_weight;         // its loss weight
    int affine;               // transform the input channels
    float scale[4], shift[4]; // the transform (first in_ch entries)
    int error;                // first builder error (0: none)
    char errmsg[160];         // its message
    size_t np, nb;            // params / buffers floats
    float *params, *buffers;
    net_tensor *tensors; // (nt) after net_finish

    /* prepared state */
    int prepared;
    int nfrozen;                      // frozen units
    float dropout;                    // drop probability of dropout nodes
    int max_batch, in_h, in_w;        // prepared batch and input size
    size_t train_start;               // first trainable parameter
    int train_mode;                   // net_set_train
    int feat;                         // last frozen node (0 when nothing is frozen)
    int aux_on;                       // the auxiliary head runs at this size and trains
    int last_b, last_train, last_aux; // the last forward
    float *arena;
    size_t arena_floats;
    float *grads;                // gradients of params[train_start..]
    float *xin;                  // input images (in_ch, B, H, W)
    float *ws;                   // conv work space
    float *vbuf;                 // valid 3x3 convs run as pad 1 (see valid_as_same): their
                                 // pad-1 output, (OC, B, H, W) of the largest
    float *gbuf;                 // grouped 1x1 convs: the group's product (rows, B, H, W) of
                                 // the largest group
    float *pbuf;                 // NET_POOL3 convs: the output before the pool (evaluation
                                 // mode) and gradients before / after the pool; floats of
                                 // the largest (max(C_in, OC), B, H, W)
    float *tmp;                  // accumulation scratch
    float *slots[NET_MAX_SLOTS]; // gradient slots
    int nslots;
    float *probs, *dlogits;   // (B, K)
    float *aprobs, *adlogits; // auxiliary (B, Kaux)
    double *prof;  // seconds per node kind, forward then backward (SWEEP_PROFILE), or NULL
    double *nprof; // (3, nnodes) seconds per node: training forward, backward, evaluation forward
                   // (SWEEP_PROFILE=2), or NULL
    int nprof_cap; // nodes nprof has room for
};

#define N_KINDS (N_DROPOUT + 1)
static const char *const kind_names[N_KINDS] = {
    "input", "conv", "maxpool", "avgpool", "adaptive", "concat", "flatten", "linear", "dropout"};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---------- building ---------- */

net *net_new(const char *name, int in_ch)
{
    net *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    snprintf(g->name, sizeof g->name, "%s", name);
    g->in_ch = in_ch;
    g->logits = g->aux = g->aux_unit = -1;
    g->nunits = 0;
    /* node 0: the images */
    g->cap = 64;
    g->nodes = calloc((size_t)g->cap, sizeof *g->nodes);
    if (!g->nodes) {
        free(g);
        return NULL;
    }
    node *n = &g->nodes[0];
    n->kind = N_INPUT;
    n->c = in_ch;
    n->parent = -1;
    n->t_w = n->t_b = n->t_bn = -1;
    g->nnodes = 1;
    if (getenv("SWEEP_PROFILE")) g->prof = calloc(2 * N_KINDS, sizeof(double));
    return g;
}

void net_free(net *g)
{
    if (!g) return;
    if (g->prof) {
        fprintf(stderr, "%s profile (seconds per node kind, forward / backward):\n", g->name);
        for (int k = 1; k < N_KINDS; k++)
            fprintf(stderr, "  %-10s %8.4f %8.4f\n", kind_names[k], g->prof[k],
                    g->prof[N_KINDS + k]);
        free(g->prof);
    }
    if (g->nprof) {
        fprintf(stderr,
                "%s profile per node (seconds: training forward, backward, evaluation forward; "
                "GFLOP per image):\n",
                g->name);
        for (int i = 1; i < g->nnodes && i < g->nprof_cap; i++) {
            const node *n = &g->nodes[i];
            const node *a = &g->nodes[n->in[0]];
            double f =
                n->kind == N_CONV ? 2.0 * n->c * a->c * n->kh * n->kw * (double)n->h * n->w : 0;
            fprintf(stderr, "  %3d %-8s u%-2d %4d->%4d %dx%d/%d %3dx%-3d %8.4f %8.4f %8.4f %.3f\n",
                    i, kind_names[n->kind], n->unit, a->c, n->c, n->kh, n->kw, n->stride, n->h,
                    n->w, g->nprof[i], g->nprof[g->nprof_cap + i], g->nprof[2 * g->nprof_cap + i],
                    f * 1e-9);
        }
        free(g->nprof);
    }
    net_arena_unmap(&g->arena, g->arena_floats);
    for (size_t i = 0; i < g->nt; i++)
        free(g->specs[i].name);
    for (int i = 0; i < g->nunits; i++)
        free(g->unit_names[i]);
    free(g->unit_names);
    free(g->specs);
    free(g->tensors);
    free(g->nodes);
    free(g->params);
    free(g->buffers);
    free(g);
}

/* Records the first builder error; returns its code. */
static int fail(net *g, int code, const char *what)
{
    if (!g->error) {
        g->error = code;
        snprintf(g->errmsg, sizeof g->errmsg, "%s: %s", g->name, what);
    }
    return code;
}

int net_unit(net *g, const char *name)
{
    char **u = realloc(g->unit_names, sizeof *u * (size_t)(g->nunits + 1));
    if (!u) return fail(g, ERR_NOMEM, "out of memory");
    g->unit_names = u;
    if (!(u[g->nunits] = strdup(name))) return fail(g, ERR_NOMEM, "out of memory");
    return g->nunits++;
}

/* A new node of KIND reading IN (checked), or NULL after recording an error. */
static node *add_node(net *g, nkind kind, const int *in, int nin, int *id)
{
    if (g->error) return NULL;
    if (g->nunits == 0) {
        fail(g, ERR_INVALID, "node declared before any unit");
        return NULL;
    }
    for (int k = 0; k < nin; k++)
        if (in[k] < 0 || in[k] >= g->nnodes) {
            fail(g, ERR_INVALID, "node input out of range");
            return NULL;
        }
    if (g->nnodes == g->cap) {
        node *nn = realloc(g->nodes, sizeof *nn * (size_t)g->cap * 2);
        if (!nn) {
            fail(g, ERR_NOMEM, "out of memory");
            return NULL;
        }
        g->nodes = nn;
        g->cap *= 2;
    }
    *id = g->nnodes++;
    node *n = &g->nodes[*id];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->unit = g->nunits - 1;
    n->nin = nin;
    for (int k = 0; k < nin; k++) {
        n->in[k] = in[k];
        g->nodes[in[k]].consumers++;
    }
    n->parent = -1;
    n->gslot = -1;
    n->t_w = n->t_b = n->t_bn = -1;
    const node *a = &g->nodes[in[0]];
    n->c = a->c;
    n->h = a->h;
    n->w = a->w;
    n->fixed = a->fixed;
    n->flat = a->flat;
    return n;
}

/* Declares a tensor; returns its index or -1 after recording an error. */
static ptrdiff_t add_spec(net *g, const char *name, int is_param, int ndim, const int64_t *shape)
{
    if (g->error) return -1;
    if (g->nt == g->tcap) {
        size_t cap = g->tcap ? g->tcap * 2 : 64;
        tspec *s = realloc(g->specs, sizeof *s * cap);
        if (!s) {
            fail(g, ERR_NOMEM, "out of memory");
            return -1;
        }
        g->specs = s;
        g->tcap = cap;
    }
    tspec *s = &g->specs[g->nt];
    memset(s, 0, sizeof *s);
    if (!(s->name = strdup(name))) {
        fail(g, ERR_NOMEM, "out of memory");
        return -1;
    }
    s->ndim = ndim;
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        s->shape[i] = shape[i];
        numel *= (size_t)shape[i];
    }
    s->is_param = is_param;
    s->unit = g->nunits - 1;
    if (is_param) {
        s->ofs = g->np;
        g->np += numel;
    } else {
        s->ofs = g->nb;
        g->nb += numel;
    }
    return (ptrdiff_t)g->nt++;
}

/* Declares the BN tensors PREFIX.{weight,bias,running_mean,running_var} (C). */
static ptrdiff_t add_bn_specs(net *g, const char *prefix, int c)
{
    static const char *const sfx[4] = {"weight", "bias", "running_mean", "running_var"};
    int64_t shape[1] = {c};
    ptrdiff_t first = -1;
    for (int i = 0; i < 4; i++) {
        char name[160];
        snprintf(name, sizeof name, "%s.%s", prefix, sfx[i]);
        ptrdiff_t t = add_spec(g, name, i < 2, 1, shape);
        if (i == 0) first = t;
    }
    return first;
}

static int pool3_fused = -1; // net_pool3_fused(); -1 until read

int net_pool3_fused(void)
{
    if (pool3_fused < 0) {
        const char *e = getenv("SWEEP_POOL_FIRST");
        pool3_fused = !(e && !strcmp(e, "1"));
    }
    return pool3_fused;
}

void net_set_pool3_fused(int on)
{
    pool3_fused = on != 0;
}

int net_conv(net *g, int in, const char *conv, const char *bn, int oc, int kh, int kw, int stride,
             int pad, int padw, unsigned flags, float eps, net_init init, float std)
{
    int id;
    if (flags & NET_POOL3) {
        if (kh != 1 || kw != 1 || stride != 1 || pad || padw)
            return fail(g, ERR_INVALID, "pooled input needs a 1x1 stride-1 convolution");
        if (!net_pool3_fused()) {
            in = net_avgpool(g, in, 3, 1, 1, 1);
            if (in < 0) return in;
            flags &= ~NET_POOL3;
        }
    }
    node *n = add_node(g, N_CONV, &in, 1, &id);
    if (!n) return g->error;
    if (n->flat || oc < 1 || kh < 1 || kw < 1 || stride < 1 || pad < 0 || padw < 0)
        return fail(g, ERR_INVALID, "bad convolution");
    int c = n->c;
    n->c = oc;
    n->fixed = 0;
    n->kh = kh;
    n->kw = kw;
    n->stride = stride;
    n->pad = pad;
    n->padw = padw;
    n->flags = flags;
    n->eps = eps;
    n->init = init;
    n->std = std;
    char name[160];
    snprintf(name, sizeof name, "%s.weight", conv);
    int64_t ws[4] = {oc, c, kh, kw};
    n->t_w = add_spec(g, name, 1, 4, ws);
    if (flags & NET_BIAS) {
        snprintf(name, sizeof name, "%s.bias", conv);
        int64_t bs[1] = {oc};
        g->nodes[id].t_b = add_spec(g, name, 1, 1, bs);
    }
    if (flags & NET_BN) g->nodes[id].t_bn = add_bn_specs(g, bn, oc);
    return g->error ? g->error : id;
}

static int add_pool(net *g, nkind kind, int in, int k, int stride, int pad, int mode)
{
    int id;
    node *n = add_node(g, kind, &in, 1, &id);
    if (!n) return g->error;
    if (n->flat || k < 1 || stride < 1 || pad < 0 || 2 * pad > k)
        return fail(g, ERR_INVALID, "bad pooling");
    n->kh = n->kw = k;
    n->stride = stride;
    n->pad = pad;
    n->mode = mode;
    n->fixed = 0;
    return id;
}

int net_maxpool(net *g, int in, int k, int stride, int pad, int ceil_mode)
{
    return add_pool(g, N_MAXPOOL, in, k, stride, pad, ceil_mode);
}

int net_avgpool(net *g, int in, int k, int stride, int pad, int count_pad)
{
    return add_pool(g, N_AVGPOOL, in, k, stride, pad, count_pad);
}

int net_adaptive(net *g, int in, int oh, int ow)
{
    int id;
    node *n = add_node(g, N_ADAPTIVE, &in, 1, &id);
    if (!n) return g->error;
    if (n->flat || oh < 1 || ow < 1) return fail(g, ERR_INVALID, "bad adaptive pooling");
    n->h = oh;
    n->w = ow;
    n->fixed = 1;
    return id;
}

int net_concat(net *g, const int *in, int k)
{
    if (k < 2 || k > NET_MAX_IN) return fail(g, ERR_INVALID, "bad concatenation");
    int id;
    node *n = add_node(g, N_CONCAT, in, k, &id);
    if (!n) return g->error;
    int c = 0;
    for (int i = 0; i < k; i++) {
        node *a = &g->nodes[in[i]];
        if (a->flat || a->kind == N_INPUT || a->parent >= 0)
            return fail(g, ERR_INVALID, "bad concatenation input");
        a->parent = id;
        a->chan_ofs = c;
        c += a->c;
    }
    g->nodes[id].c = c;
    return id;
}

int net_flatten(net *g, int in)
{
    int id;
    node *n = add_node(g, N_FLATTEN, &in, 1, &id);
    if (!n) return g->error;
    if (n->flat || !n->fixed) return fail(g, ERR_INVALID, "flatten needs a fixed map size");
    n->c = n->c * n->h * n->w;
    n->h = n->w = 1;
    n->flat = 1;
    return id;
}

int net_linear(net *g, int in, const char *name, int out_f, int relu, net_init init, float std)
{
    int id;
    node *n = add_node(g, N_LINEAR, &in, 1, &id);
    if (!n) return g->error;
    if (!n->flat || out_f < 1) return fail(g, ERR_INVALID, "linear needs a flat input");
    int f = n->c;
    n->c = out_f;
    n->flags = relu ? NET_RELU : 0;
    n->init = init;
    n->std = std;
    char nm[160];
    snprintf(nm, sizeof nm, "%s.weight", name);
    int64_t ws[2] = {out_f, f}, bs[1] = {out_f};
    n->t_w = add_spec(g, nm, 1, 2, ws);
    snprintf(nm, sizeof nm, "%s.bias", name);
    g->nodes[id].t_b = add_spec(g, nm, 1, 1, bs);
    return g->error ? g->error : id;
}

int net_dropout(net *g, int in)
{
    int id;
    node *n = add_node(g, N_DROPOUT, &in, 1, &id);
    if (!n) return g->error;
    if (!n->flat) return fail(g, ERR_INVALID, "dropout needs a flat input");
    return id;
}

int net_outputs(net *g, int logits, int aux, const char *aux_unit, float aux_weight)
{
    if (g->error) return g->error;
    if (logits <= 0 || logits >= g->nnodes || g->nodes[logits].kind != N_LINEAR ||
        (aux >= 0 && (aux >= g->nnodes || g->nodes[aux].kind != N_LINEAR)))
        return fail(g, ERR_INVALID, "outputs must be linear nodes");
    g->logits = logits;
    g->aux = aux;
    g->aux_weight = aux_weight;
    g->aux_unit = -1;
    for (int u = 0; aux_unit && u < g->nunits; u++)
        if (!strcmp(g->unit_names[u], aux_unit)) g->aux_unit = u;
    return 0;
}

void net_input_affine(net *g, const float *scale, const float *shift)
{
    g->affine = 1;
    for (int c = 0; c < g->in_ch && c < 4; c++) {
        g->scale[c] = scale[c];
        g->shift[c] = shift[c];
    }
}

/* ---------- initialisation ---------- */

static void fill_normal(float *w, size_t n, double std, int trunc, rng_t *r)
{
    for (size_t i = 0; i < n; i++) {
        double v;
        do
            v = std * rng_normal(r);
        while (trunc && (v < -2 || v > 2));
        w[i] = (float)v;
    }
}

/* Initialises node N's parameters (weights drawn in node order from R). */
static void init_node(net *g, node *n, rng_t *r)
{
    const tspec *sw = &g->specs[n->t_w];
    size_t numel = 1;
    for (int i = 0; i < sw->ndim; i++)
        numel *= (size_t)sw->shape[i];
    int oc = (int)sw->shape[0];
    size_t fan_in = numel / (size_t)oc;
    double bound = 1.0 / sqrt((double)fan_in);
    switch (n->init) {
    case NET_INIT_KAIMING_OUT:
        fill_normal(n->wt, numel, sqrt(2.0 / ((double)oc * n->kh * n->kw)), 0, r);
        break;
    case NET_INIT_NORMAL:
        fill_normal(n->wt, numel, n->std, 0, r);
        break;
    case NET_INIT_TRUNC_NORMAL:
        fill_normal(n->wt, numel, n->std, 1, r);
        break;
    case NET_INIT_LINEAR:
        for (size_t i = 0; i < numel; i++)
            n->wt[i] = (float)rng_range(r, -bound, bound);
        break;
    }
    if (n->bias)
        for (int i = 0; i < oc; i++)
            n->bias[i] = n->init == NET_INIT_LINEAR ? (float)rng_range(r, -bound, bound) : 0.0f;
    if (n->gamma)
        for (int i = 0; i < n->c; i++) {
            n->gamma[i] = 1.0f;
            n->beta[i] = 0.0f;
            n->rmean[i] = 0.0f;
            n->rvar[i] = 1.0f;
        }
}

static int merge_on = -1; // net_set_merge_1x1(); -1 until read from SWEEP_MERGE_1X1

void net_set_merge_1x1(int on)
{
    merge_on = on != 0;
}

/* Whether node N can share one product with other 1x1 convolutions of its
 * input: 1x1 stride 1 without padding or bias. */
static int groupable(const node *n)
{
    return n->kind == N_CONV && n->kh == 1 && n->kw == 1 && n->stride == 1 && !n->pad && !n->padw &&
           !(n->flags & NET_BIAS);
}

/* Groups the 1x1 convolutions that read the same node within one unit
 * (the first convolutions of an Inception block's branches, and its
 * branch_pool, which evaluation mode runs as a 1x1 of the block input):
 * evaluation mode multiplies them all in one product with their weights
 * stacked. Then lays out the parameters: in declaration order, except that a
 * group's weights follow each other from its first member's place, so the
 * stacked (rows, C) weight matrix is the first member's weight pointer.
 * Units stay in order, so trainable parameters remain a suffix. */
static void merge_groups(net *g)
{
    if (merge_on < 0) {
        const char *e = getenv("SWEEP_MERGE_1X1");
        merge_on = !(e && !strcmp(e, "0"));
    }
    for (int i = 1; i < g->nnodes; i++) {
        node *n = &g->nodes[i];
        n->grp = -1;
        n->grp_row = 0;
        n->grp_rows = 0;
        if (!merge_on || !groupable(n)) continue;
        for (int j = 1; j < i; j++) {
            node *l = &g->nodes[j];
            if (l->grp == j && l->in[0] == n->in[0] && l->unit == n->unit) {
                n->grp = j;
                n->grp_row = l->grp_rows;
                l->grp_rows += n->c;
                break;
            }
        }
        if (n->grp < 0) { // a new group, alone until a sibling joins
            n->grp = i;
            n->grp_rows = n->c;
        }
    }
    for (int i = 1; i < g->nnodes; i++) { // singletons are no group
        node *n = &g->nodes[i];
        if (n->grp == i && n->grp_rows == n->c) n->grp = -1;
    }
    for (int i = 1; i < g->nnodes; i++) { // a member whose leader became a singleton: impossible
        node *n = &g->nodes[i];
        if (n->grp >= 0 && g->nodes[n->grp].grp != n->grp) n->grp = -1;
    }
    int *owner = calloc(g->nt ? g->nt : 1, sizeof *owner); // node of a weight spec, or 0
    char *placed = calloc(g->nt ? g->nt : 1, 1);
    if (!owner || !placed) { // keep the declaration order and no groups
        free(owner);
        free(placed);
        for (int i = 1; i < g->nnodes; i++)
            g->nodes[i].grp = -1;
        return;
    }
    for (int i = 1; i < g->nnodes; i++)
        if (g->nodes[i].t_w >= 0) owner[g->nodes[i].t_w] = i;
    size_t np = 0;
    for (size_t t = 0; t < g->nt; t++) {
        tspec *s = &g->specs[t];
        if (!s->is_param || placed[t]) continue;
        const node *o = owner[t] ? &g->nodes[owner[t]] : NULL;
        if (o && o->grp == owner[t]) { // a group's first weight: all of them here
            for (int i = owner[t]; i < g->nnodes; i++) {
                node *m = &g->nodes[i];
                if (m->grp != owner[t]) continue;
                tspec *ms = &g->specs[m->t_w];
                size_t numel = 1;
                for (int k = 0; k < ms->ndim; k++)
                    numel *= (size_t)ms->shape[k];
                ms->ofs = np;
                np += numel;
                placed[m->t_w] = 1;
            }
            continue;
        }
        size_t numel = 1;
        for (int k = 0; k < s->ndim; k++)
            numel *= (size_t)s->shape[k];
        s->ofs = np;
        np += numel;
        placed[t] = 1;
    }
    SWEEP_ASSERT(np == g->np);
    free(owner);
    free(placed);
}

int net_finish(net *g, uint64_t seed, char *msg, size_t msglen)
{
    if (!g->error && g->logits < 0) fail(g, ERR_INVALID, "no output declared");
    if (g->error) return err_set(msg, msglen, g->error, "%s", g->errmsg);
    merge_groups(g);
    g->params = malloc(sizeof(float) * (g->np ? g->np : 1));
    g->buffers = malloc(sizeof(float) * (g->nb ? g->nb : 1));
    g->tensors = calloc(g->nt, sizeof *g->tensors);
    if (!g->params || !g->buffers || !g->tensors)
        return err_set(msg, msglen, ERR_NOMEM, "out of memory for %zu model parameters", g->np);
    for (size_t i = 0; i < g->nt; i++) {
        const tspec *s = &g->specs[i];
        net_tensor *t = &g->tensors[i];
        t->name = s->name;
        t->ndim = s->ndim;
        t->numel = 1;
        for (int k = 0; k < s->ndim; k++) {
            t->shape[k] = s->shape[k];
            t->numel *= (size_t)s->shape[k];
        }
        t->data = (s->is_param ? g->params : g->buffers) + s->ofs;
        t->is_param = s->is_param;
        t->offset = -1;
        t->unit = s->unit;
    }
    rng_t r;
    rng_seed(&r, seed);
    for (int i = 1; i < g->nnodes; i++) {
        node *n = &g->nodes[i];
        if (n->t_w >= 0) n->wt = g->tensors[n->t_w].data;
        if (n->t_b >= 0) n->bias = g->tensors[n->t_b].data;
        if (n->t_bn >= 0) {
            n->gamma = g->tensors[n->t_bn].data;
            n->beta = g->tensors[n->t_bn + 1].data;
            n->rmean = g->tensors[n->t_bn + 2].data;
            n->rvar = g->tensors[n->t_bn + 3].data;
        }
        if (n->wt) init_node(g, n, &r);
    }
    return 0;
}

int net_init_linear(net *g, const char *name, uint64_t seed)
{
    char want[160];
    snprintf(want, sizeof want, "%s.weight", name);
    for (int i = 1; i < g->nnodes; i++) {
        node *n = &g->nodes[i];
        if (n->kind != N_LINEAR || strcmp(g->specs[n->t_w].name, want)) continue;
        rng_t r;
        rng_seed(&r, seed);
        net_init save = n->init;
        n->init = NET_INIT_LINEAR;
        init_node(g, n, &r);
        n->init = save;
        return 0;
    }
    return ERR_INVALID;
}

/* ---------- queries ---------- */

const char *net_name(const net *g)
{
    return g->name;
}

int net_classes(const net *g)
{
    return g->nodes[g->logits].c;
}

int net_features(const net *g)
{
    return g->nodes[g->nodes[g->logits].in[0]].c;
}

int net_width(const net *g)
{
    for (int i = 1; i < g->nnodes; i++)
        if (g->nodes[i].kind == N_CONV) return g->nodes[i].c;
    return 0;
}

size_t net_param_count(const net *g)
{
    return g->np;
}

int net_unit_count(const net *g)
{
    return g->nunits;
}

size_t net_tensor_count(const net *g)
{
    return g->nt;
}

net_tensor *net_tensor_at(const net *g, size_t i)
{
    return i < g->nt ? &g->tensors[i] : NULL;
}

/* ---------- prepare ---------- */

float *net_arena_take(net_arena *a, size_t n)
{
    n = (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
    float *p = a->base ? a->base + a->used : NULL;
    a->used += n;
    return p;
}

int net_arena_map(size_t floats, float **out, char *msg, size_t msglen)
{
    size_t bytes = floats * sizeof(float);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        *out = NULL;
        return err_set(msg, msglen, ERR_NOMEM, "cannot allocate %.1f MiB for activations",
                       bytes / 1048576.0);
    }
    madvise(p, bytes, MADV_HUGEPAGE);
    memset(p, 0, bytes);
    *out = p;
    return 0;
}

void net_arena_unmap(float **p, size_t floats)
{
    if (*p) munmap(*p, floats * sizeof(float));
    *p = NULL;
}

static int trainable(const net *g, int i)
{
    return i > 0 && g->nodes[i].unit >= g->nfrozen && !g->nodes[i].skip;
}

/* Output sizes at input IN_H x IN_W; nodes of the auxiliary unit that do
 * not fit are marked skipped. ERR_INVALID when a main node does not fit. */
static int set_sizes(net *g, int in_h, int in_w)
{
    g->nodes[0].h = in_h;
    g->nodes[0].w = in_w;
    for (int i = 1; i < g->nnodes; i++) {
        node *n = &g->nodes[i];
        const node *a = &g->nodes[n->in[0]];
        n->skip = a->skip;
        for (int k = 1; k < n->nin; k++)
            if (g->nodes[n->in[k]].h != a->h || g->nodes[n->in[k]].w != a->w) return ERR_INVALID;
        int oh = a->h, ow = a->w, bad = 0;
        switch (n->kind) {
        case N_CONV:
            oh = a->h + 2 * n->pad >= n->kh ? (a->h + 2 * n->pad - n->kh) / n->stride + 1 : 0;
            ow = a->w + 2 * n->padw >= n->kw ? (a->w + 2 * n->padw - n->kw) / n->stride + 1 : 0;
            break;
        case N_MAXPOOL:
        case N_AVGPOOL:
            oh = pool_out_size(a->h, n->kh, n->stride, n->pad, n->kind == N_MAXPOOL && n->mode);
            ow = pool_out_size(a->w, n->kw, n->stride, n->pad, n->kind == N_MAXPOOL && n->mode);
            break;
        case N_ADAPTIVE:
        case N_FLATTEN:
        case N_LINEAR:
            oh = n->h, ow = n->w;
            break;
        default:
            break;
        }
        bad = oh < 1 || ow < 1;
        if (bad && n->unit == g->aux_unit) {
            n->skip = 1;
            oh = ow = 1;
        } else if (bad && !n->skip) {
            return ERR_INVALID;
        }
        n->h = oh;
        n->w = ow;
    }
    return 0;
}

static size_t out_floats(const node *n, int b)
{
    return (size_t)n->c * b * n->h * n->w;
}

static void conv_desc(const net *g, const node *n, int b, conv2d_desc *d)
{
    const node *a = &g->nodes[n->in[0]];
    conv2d_desc_init_pad(d, b, a->c, a->h, a->w, n->c, n->kh, n->kw, n->stride, n->pad, n->padw);
}

static int valid_same = -1; // net_set_valid_as_same(); -1 until read from SWEEP_WINOGRAD

void net_set_valid_as_same(int on)
{
    valid_same = on != 0;
}

/* Whether conv node N, 3x3 stride 1 without padding (Inception's stem), can
 * run as the pad-1 convolution D1 of the same input (which Winograd
 * F(2x2, 3x3) serves), cropped: its interior is the valid convolution.
 * Used by evaluation-mode forwards only (see the file comment). Costs
 * (H*W)/(OH*OW) of the multiplies (6% more at 73x73) and a copy. */
static int valid_as_same(const net *g, const node *n, int b, conv2d_desc *d1)
{
    if (valid_same < 0) {
        const char *e = getenv("SWEEP_WINOGRAD");
        valid_same = !(e && !strcmp(e, "0"));
    }
    if (!valid_same || n->kind != N_CONV || n->kh != 3 || n->kw != 3 || n->stride != 1 || n->pad ||
        n->padw || (n->flags & NET_POOL3))
        return 0;
    const node *a = &g->nodes[n->in[0]];
    if (a->h < 4 || a->w < 4) return 0; // layers.c's Winograd threshold
    conv2d_desc_init_pad(d1, b, a->c, a->h, a->w, n->c, 3, 3, 1, 1, 1);
    return winograd_applicable(d1);
}

typedef struct {
    float *valid;      // (OC, B, OH, OW) valid convolution's output
    const float *same; // (OC, B, OH+2, OW+2) pad-1 convolution's output
    int oh, ow;        // valid output size
} crop_ctx;

static void crop_part(void *arg, size_t p0, size_t p1)
{
    const crop_ctx *c = arg;
    const size_t H = (size_t)c->oh + 2, W = (size_t)c->ow + 2;
    for (size_t p = p0; p < p1; p++) {
        float *v = c->valid + p * c->oh * c->ow;
        const float *s = c->same + p * H * W;
        for (int y = 0; y < c->oh; y++)
            memcpy(v + (size_t)y * c->ow, s + (y + 1) * W + 1, sizeof(float) * c->ow);
    }
}

/* Crops SAME's interior into VALID: PLANES planes. */
static void crop_planes(float *valid, const float *same, size_t planes, int oh, int ow)
{
    crop_ctx c = {valid, same, oh, ow};
    layers_parallel_for(planes, 1 + 16384 / ((size_t)(oh + 2) * (ow + 2)), crop_part, &c);
}

/* Plans the gradient slots (see the file comment); returns the number of
 * slots needed. */
static int plan_backward(net *g)
{
    int ref[NET_MAX_SLOTS] = {0}, nslots = 0;
    int *root = calloc((size_t)g->nnodes, sizeof *root); // slot holding node i's gradient
    if (!root) return -1;
    for (int i = 0; i < g->nnodes; i++) {
        g->nodes[i].gslot = -1;
        g->nodes[i].bskip = 0;
        root[i] = -2; // no gradient yet
        for (int k = 0; k < NET_MAX_IN; k++)
            g->nodes[i].acc[k] = 0;
    }
    /* the outputs' gradients are dlogits buffers, not slots */
    root[g->logits] = -1;
    if (g->aux >= 0 && g->aux_on) root[g->aux] = -1;
    for (int i = g->nnodes - 1; i >= 1; i--) {
        node *n = &g->nodes[i];
        if (!trainable(g, i)) continue;
        if (root[i] == -2) {
            n->bskip = 1; // nothing trainable consumes it
            continue;
        }
        if (n->kind == N_CONCAT) {
            for (int k = 0; k < n->nin; k++) {
                root[n->in[k]] = root[i];
                if (root[i] >= 0) ref[root[i]]++;
            }
        } else {
            for (int k = 0; k < n->nin; k++) {
                int j = n->in[k];
                if (!trainable(g, j)) continue;
                if (root[j] != -2) {
                    n->acc[k] = 1;
                    continue;
                }
                int s = 0;
                while (s < nslots && ref[s] > 0)
                    s++;
                if (s == nslots) {
                    if (nslots == NET_MAX_SLOTS) {
                        free(root);
                        return -1;
                    }
                    nslots++;
                }
                ref[s] = 1;
                root[j] = s;
                g->nodes[j].gslot = s;
            }
        }
        if (root[i] >= 0) ref[root[i]]--;
    }
    free(root);
    return nslots;
}

static void plan_arena(net *g, net_arena *a)
{
    const int B = g->max_batch;
    size_t maxws = 1, maxg = 1, maxp = 1, maxv = 1, maxgr = 1;
    int K = g->nodes[g->logits].c, KA = g->aux >= 0 ? g->nodes[g->aux].c : 1;
    g->grads = net_arena_take(a, g->np - g->train_start);
    g->xin = net_arena_take(a, (size_t)g->in_ch * B * g->in_h * g->in_w);
    g->nodes[0].out = g->xin;
    for (int i = 1; i < g->nnodes; i++) {
        node *n = &g->nodes[i];
        int tr = trainable(g, i);
        size_t o = out_floats(n, B);
        if (tr && o > maxg) maxg = o;
        if (n->skip) {
            n->out = n->t = NULL;
            continue;
        }
        n->out = n->parent >= 0 ? NULL : net_arena_take(a, o);
        n->t = n->out;
        n->idx = NULL;
        n->mask = NULL;
        n->pin = NULL;
        if (n->kind == N_CONV) {
            conv2d_desc d;
            conv_desc(g, n, B, &d);
            size_t w = conv2d_workspace_floats(&d);
            if (w > maxws) maxws = w;
            if (n->grp == i && (size_t)n->grp_rows * B * n->h * n->w > maxgr)
                maxgr = (size_t)n->grp_rows * B * n->h * n->w;
            conv2d_desc d1;
            if (valid_as_same(g, n, B, &d1)) {
                size_t w1 = conv2d_workspace_floats(&d1), v = (size_t)n->c * B * d1.h * d1.w;
                if (w1 > maxws) maxws = w1;
                if (v > maxv) maxv = v;
            }
            if (n->flags & NET_POOL3) {
                size_t in = out_floats(&g->nodes[n->in[0]], B);
                if (o > maxp) maxp = o;
                if (in > maxp) maxp = in;
                n->pin = tr ? net_arena_take(a, in) : NULL;
            }
            if (tr && (n->flags & NET_BN)) n->t = net_arena_take(a, o);
            if (n->flags & NET_BN) {
                n->smean = net_arena_take(a, (size_t)n->c);
                n->sinvstd = net_arena_take(a, (size_t)n->c);
            }
        } else if (n->kind == N_MAXPOOL && tr) {
            n->idx = (int32_t *)net_arena_take(a, o);
        } else if (n->kind == N_DROPOUT && tr) {
            n->mask = net_arena_take(a, o);
        }
        /* in-ward gradients of the input (flatten) may be larger than the node */
        if (tr)
            for (int k = 0; k < n->nin; k++) {
                size_t in = out_floats(&g->nodes[n->in[k]], B);
                if (in > maxg) maxg = in;
            }
    }
    g->ws = net_arena_take(a, maxws);
    g->pbuf = net_arena_take(a, maxp);
    g->vbuf = net_arena_take(a, maxv);
    g->gbuf = net_arena_take(a, maxgr);
    g->tmp = net_arena_take(a, maxg);
    for (int s = 0; s < g->nslots; s++)
        g->slots[s] = net_arena_take(a, maxg);
    g->probs = net_arena_take(a, (size_t)B * K);
    g->dlogits = net_arena_take(a, (size_t)B * K);
    g->aprobs = net_arena_take(a, (size_t)B * KA);
    g->adlogits = net_arena_take(a, (size_t)B * KA);
}

static void assign_grads(net *g)
{
    for (size_t i = 0; i < g->nt; i++) {
        net_tensor *t = &g->tensors[i];
        int tr = t->is_param && g->specs[i].unit >= g->nfrozen;
        t->trainable = tr;
        t->grad = tr ? g->grads + (t->data - g->params - g->train_start) : NULL;
        t->offset = tr ? t->data - g->params - (ptrdiff_t)g->train_start : -1;
    }
    for (int i = 1; i < g->nnodes; i++) {
        node *n = &g->nodes[i];
        int tr = n->unit >= g->nfrozen;
#define G(p) (tr && (p) ? g->grads + ((p)-g->params - g->train_start) : NULL)
        n->gw = G(n->wt);
        n->gb = G(n->bias);
        n->ggamma = G(n->gamma);
        n->gbeta = G(n->beta);
#undef G
    }
}

int net_prepare(net *g, int nfrozen, float dropout, int max_batch, int in_h, int in_w, char *msg,
                size_t msglen)
{
    if (max_batch < 1 || in_h < 1 || in_w < 1)
        return err_set(msg, msglen, ERR_INVALID, "batch %d and input size %dx%d must be positive",
                       max_batch, in_h, in_w);
    if (!(dropout >= 0 && dropout < 1))
        return err_set(msg, msglen, ERR_INVALID, "dropout %g is not in [0, 1)", dropout);
    if (nfrozen < 0 || nfrozen >= g->nunits)
        return err_set(msg, msglen, ERR_INVALID, "freeze level %d is not in 0..%d", nfrozen,
                       g->nunits - 1);
    g->dropout = dropout;
    if (g->prepared && g->nfrozen == nfrozen && g->max_batch == max_batch && g->in_h == in_h &&
        g->in_w == in_w)
        return 0;
    net_arena_unmap(&g->arena, g->arena_floats);
    g->prepared = 0;
    if (set_sizes(g, in_h, in_w))
        return err_set(msg, msglen, ERR_INVALID, "input size %dx%d is too small for %s", in_h, in_w,
                       g->name);
    g->nfrozen = nfrozen;
    g->max_batch = max_batch;
    g->in_h = in_h;
    g->in_w = in_w;
    g->aux_on = g->aux >= 0 && !g->nodes[g->aux].skip && g->nodes[g->aux].unit >= nfrozen;
    g->feat = 0;
    for (int i = 1; i < g->nnodes; i++)
        if (g->nodes[i].unit < nfrozen && !g->nodes[i].skip) g->feat = i;
    g->train_start = g->np; // the lowest offset of a trainable unit's parameter
    for (size_t i = 0; i < g->nt; i++)
        if (g->specs[i].is_param && g->specs[i].unit >= nfrozen && g->specs[i].ofs < g->train_start)
            g->train_start = g->specs[i].ofs;
    for (int i = 1; i < g->nnodes; i++) // the suffix reads only itself and the features
        for (int k = 0; trainable(g, i) && k < g->nodes[i].nin; k++) {
            int j = g->nodes[i].in[k];
            if (j != g->feat && !trainable(g, j) && !(j == 0 && g->feat == 0))
                return err_set(msg, msglen, ERR_INVALID,
                               "%s: freeze level %d cuts the graph inside a stage", g->name,
                               nfrozen);
        }
    int ns = plan_backward(g);
    if (ns < 0) return err_set(msg, msglen, ERR_NOMEM, "%s: backward plan too large", g->name);
    g->nslots = ns;
    net_arena a = {0};
    plan_arena(g, &a);
    int rc = net_arena_map(a.used, &g->arena, msg, msglen);
    if (rc) return rc;
    g->arena_floats = a.used;
    net_arena a2 = {.base = g->arena};
    plan_arena(g, &a2);
    assign_grads(g);
    g->prepared = 1;
    return 0;
}

void net_set_train(net *g, int train)
{
    g->train_mode = train != 0;
}

/* ---------- forward ---------- */

/* Binds the outputs of concat inputs to their slices for batch B (parents
 * come later in creation order, so a reverse walk binds nested ones). */
static void bind_outputs(net *g, int b)
{
    for (int i = g->nnodes - 1; i >= 1; i--) {
        node *n = &g->nodes[i];
        if (n->parent < 0 || n->skip) continue;
        const node *p = &g->nodes[n->parent];
        n->out = p->out + (size_t)n->chan_ofs * b * p->h * p->w;
        if (!(n->kind == N_CONV && (n->flags & NET_BN) && trainable(g, i))) n->t = n->out;
    }
}

/* Evaluation forward of the 1x1 group led by node LEAD: one product of the
 * stacked weights into gbuf, then each member's pool (NET_POOL3), batchnorm
 * and ReLU from its rows into its output. Members' t is left stale. */
static void group_forward(net *g, int lead, int b)
{
    node *l = &g->nodes[lead];
    const node *a = &g->nodes[l->in[0]];
    const int hw = l->h * l->w;
    conv2d_desc d;
    conv2d_desc_init_pad(&d, b, a->c, a->h, a->w, l->grp_rows, 1, 1, 1, 0, 0);
    conv2d_forward(g->gbuf, a->out, l->wt, &d, g->ws);
    for (int i = lead; i < g->nnodes; i++) {
        node *m = &g->nodes[i];
        if (m->grp != lead) continue;
        const float *src = g->gbuf + (size_t)m->grp_row * b * hw;
        int relu = (m->flags & NET_RELU) != 0;
        if (m->flags & NET_POOL3) {
            avgpool2d_forward(m->out, src, b, m->c, m->h, m->w, 3, 1, 1, 1, m->h, m->w);
            src = m->out;
        }
        if (m->flags & NET_BN)
            batchnorm_forward_eval(m->out, src, m->gamma, m->beta, m->rmean, m->rvar, b, m->c, hw,
                                   m->eps, relu);
        else if (relu)
            relu_forward(m->out, src, out_floats(m, b));
        else if (src != m->out)
            memcpy(m->out, src, sizeof(float) * out_floats(m, b));
        m->t_stale = m->t != m->out;
    }
}

/* Recomputes conv node N's pre-batchnorm t for a backward pass after a
 * grouped evaluation forward (which did not write it). */
static void refresh_t(net *g, node *n, int b)
{
    const node *a = &g->nodes[n->in[0]];
    conv2d_desc d;
    conv_desc(g, n, b, &d);
    if (n->flags & NET_POOL3) {
        conv2d_forward(g->pbuf, a->out, n->wt, &d, g->ws);
        avgpool2d_forward(n->t, g->pbuf, b, n->c, n->h, n->w, 3, 1, 1, 1, n->h, n->w);
    } else {
        conv2d_forward(n->t, a->out, n->wt, &d, g->ws);
    }
    n->t_stale = 0;
}

/* A convolution of the forward pass: evaluation may use kernels that are
 * not precise enough for training (conv2d_forward_eval). */
static void conv_fwd(int train, float *out, const float *in, const float *w, const conv2d_desc *d,
                     float *ws)
{
    if (train)
        conv2d_forward(out, in, w, d, ws);
    else
        conv2d_forward_eval(out, in, w, d, ws);
}

static void node_fwd(net *g, node *n, int b, int train, rng_t *rng)
{
    const node *a = &g->nodes[n->in[0]];
    const int hw = n->h * n->w, ahw = a->h * a->w;
    n->last_train = train;
    switch (n->kind) {
    case N_CONV: {
        const int id = (int)(n - g->nodes);
        if (!train && n->grp >= 0) { // the group's first member runs them all
            if (n->grp == id) group_forward(g, id, b);
            break;
        }
        n->t_stale = 0;
        conv2d_desc d, d1;
        conv_desc(g, n, b, &d);
        if (!train && valid_as_same(g, n, b, &d1)) {
            conv2d_forward(g->vbuf, a->out, n->wt, &d1, g->ws);
            crop_planes(n->t, g->vbuf, (size_t)n->c * b, n->h, n->w);
        } else if ((n->flags & NET_POOL3) && train) { // conv(pool(x)), kept for the backward pass
            avgpool2d_forward(n->pin, a->out, b, a->c, a->h, a->w, 3, 1, 1, 1, n->h, n->w);
            conv2d_forward(n->t, n->pin, n->wt, &d, g->ws);
        } else if (n->flags & NET_POOL3) { // pool(conv(x)): see NET_POOL3
            conv_fwd(train, g->pbuf, a->out, n->wt, &d, g->ws);
            avgpool2d_forward(n->t, g->pbuf, b, n->c, n->h, n->w, 3, 1, 1, 1, n->h, n->w);
        } else {
            conv_fwd(train, n->t, a->out, n->wt, &d, g->ws);
        }
        int relu = (n->flags & NET_RELU) != 0;
        if (n->bias) bias_forward(n->t, n->bias, b, n->c, hw, relu && !(n->flags & NET_BN));
        if (n->flags & NET_BN) {
            if (train)
                batchnorm_forward_train(n->out, n->t, n->gamma, n->beta, n->rmean, n->rvar,
                                        n->smean, n->sinvstd, b, n->c, hw, BN_MOMENTUM, n->eps,
                                        relu);
            else
                batchnorm_forward_eval(n->out, n->t, n->gamma, n->beta, n->rmean, n->rvar, b, n->c,
                                       hw, n->eps, relu);
        } else if (relu && !n->bias) {
            relu_forward(n->out, n->out, out_floats(n, b));
        }
        break;
    }
    case N_MAXPOOL:
        /* winners only in training mode (the evaluation-mode kernel is faster);
         * a backward pass after an evaluation forward finds them then */
        maxpool2d_forward(n->out, train ? n->idx : NULL, a->out, b, n->c, a->h, a->w, n->kh,
                          n->stride, n->pad, n->h, n->w);
        break;
    case N_AVGPOOL:
        avgpool2d_forward(n->out, a->out, b, n->c, a->h, a->w, n->kh, n->stride, n->pad, n->mode,
                          n->h, n->w);
        break;
    case N_ADAPTIVE:
        adaptive_avgpool_forward(n->out, a->out, b, n->c, a->h, a->w, n->h, n->w);
        break;
    case N_CONCAT:
        break; // the inputs wrote their slices
    case N_FLATTEN:
        cnhw_to_nchw(n->out, a->out, b, a->c, ahw);
        break;
    case N_LINEAR: {
        linear_forward(n->out, a->out, n->wt, n->bias, b, a->c, n->c);
        if (n->flags & NET_RELU) relu_forward(n->out, n->out, out_floats(n, b));
        break;
    }
    case N_DROPOUT:
        n->drop_on = train && g->dropout > 0;
        if (n->drop_on) {
            SWEEP_ASSERT(rng != NULL);
            dropout_forward(n->out, n->mask, a->out, out_floats(n, b), g->dropout, rng);
        } else {
            memcpy(n->out, a->out, sizeof(float) * out_floats(n, b));
        }
        break;
    case N_INPUT:
        break;
    }
}

/* Adds DT seconds to node I's profile, forward (BWD 0) or backward. */
static void prof_add(net *g, int i, int bwd, double dt)
{
    g->prof[bwd * N_KINDS + g->nodes[i].kind] += dt;
    if (!g->nprof) {
        const char *e = getenv("SWEEP_PROFILE");
        if (!e || atoi(e) < 2) return;
        g->nprof = calloc(3 * (size_t)g->nnodes, sizeof(double));
        if (!g->nprof) return;
        g->nprof_cap = g->nnodes;
    }
    int col = bwd ? 1 : g->train_mode ? 0 : 2;
    if (i < g->nprof_cap) g->nprof[col * g->nprof_cap + i] += dt;
}

/* Whether node I runs in this forward: the auxiliary head only when it trains
 * in training mode. */
static int runs(const net *g, int i)
{
    const node *n = &g->nodes[i];
    if (n->skip) return 0;
    if (g->aux_unit >= 0 && n->unit == g->aux_unit) return g->aux_on && g->train_mode;
    return 1;
}

/* Runs nodes [i0, i1). */
static void run_nodes(net *g, int i0, int i1, int b, rng_t *rng)
{
    for (int i = i0; i < i1; i++)
        if (runs(g, i)) {
            double t0 = g->prof ? now_s() : 0;
            node_fwd(g, &g->nodes[i], b, g->train_mode && trainable(g, i), rng);
            if (g->prof) prof_add(g, i, 0, now_s() - t0);
        }
}

/* Copies the images into the arena, channel-major, with the input transform. */
static void load_input(net *g, const float *x, int b)
{
    size_t hw = (size_t)g->in_h * g->in_w;
    nchw_to_cnhw(g->xin, x, b, g->in_ch, (int)hw);
    if (!g->affine) return;
    for (int c = 0; c < g->in_ch; c++) {
        float *p = g->xin + (size_t)c * b * hw, s = g->scale[c], t = g->shift[c];
        for (size_t i = 0; i < (size_t)b * hw; i++)
            p[i] = p[i] * s + t;
    }
}

static const float *finish_forward(net *g, int b)
{
    g->last_b = b;
    g->last_train = g->train_mode;
    g->last_aux = g->aux_on && g->train_mode;
    return g->nodes[g->logits].out;
}

const float *net_forward(net *g, const float *x, int b, rng_t *rng)
{
    SWEEP_ASSERT(g->prepared && b >= 1 && b <= g->max_batch);
    bind_outputs(g, b);
    load_input(g, x, b);
    run_nodes(g, 1, g->nnodes, b, rng);
    return finish_forward(g, b);
}

size_t net_feature_floats(const net *g)
{
    if (g->feat == 0) return (size_t)g->in_ch * g->in_h * g->in_w;
    const node *n = &g->nodes[g->feat];
    return (size_t)n->c * n->h * n->w;
}

void net_features_run(net *g, const float *x, int b, float *feat)
{
    SWEEP_ASSERT(g->prepared && b >= 1 && b <= g->max_batch);
    if (g->feat == 0) {
        memcpy(feat, x, sizeof(float) * (size_t)b * net_feature_floats(g));
        return;
    }
    bind_outputs(g, b);
    load_input(g, x, b);
    int save = g->train_mode;
    g->train_mode = 0;
    run_nodes(g, 1, g->feat + 1, b, NULL);
    g->train_mode = save;
    const node *n = &g->nodes[g->feat];
    if (n->flat)
        memcpy(feat, n->out, sizeof(float) * (size_t)b * n->c);
    else
        cnhw_to_nchw(feat, n->out, b, n->c, n->h * n->w);
}

const float *net_forward_features(net *g, const float *feat, int b, rng_t *rng)
{
    SWEEP_ASSERT(g->prepared && b >= 1 && b <= g->max_batch);
    bind_outputs(g, b);
    node *n = &g->nodes[g->feat];
    if (g->feat == 0)
        load_input(g, feat, b);
    else if (n->flat)
        memcpy(n->out, feat, sizeof(float) * (size_t)b * n->c);
    else
        nchw_to_cnhw(n->out, feat, b, n->c, n->h * n->w);
    run_nodes(g, g->feat + 1, g->nnodes, b, rng);
    return finish_forward(g, b);
}

/* ---------- loss and backward ---------- */

float net_loss(net *g, const int *labels, float smoothing, float *probs)
{
    int b = g->last_b, K = g->nodes[g->logits].c;
    float loss = softmax_xent_forward(g->probs, g->nodes[g->logits].out, labels, b, K, smoothing);
    softmax_xent_backward(g->dlogits, g->probs, labels, b, K, smoothing);
    if (probs) memcpy(probs, g->probs, sizeof(float) * (size_t)b * K);
    if (g->last_aux) {
        int KA = g->nodes[g->aux].c;
        float la = softmax_xent_forward(g->aprobs, g->nodes[g->aux].out, labels, b, KA, smoothing);
        softmax_xent_backward(g->adlogits, g->aprobs, labels, b, KA, smoothing);
        for (size_t i = 0; i < (size_t)b * KA; i++)
            g->adlogits[i] *= g->aux_weight;
        loss += g->aux_weight * la;
    }
    return loss;
}

/* The gradient buffer of node I for batch B (bound through concat parents). */
static float *grad_of(net *g, int i, int b)
{
    node *n = &g->nodes[i];
    if (n->parent >= 0) {
        const node *p = &g->nodes[n->parent];
        return grad_of(g, n->parent, b) + (size_t)n->chan_ofs * b * p->h * p->w;
    }
    if (i == g->logits) return n->grad;
    if (i == g->aux) return g->adlogits;
    return n->gslot >= 0 ? g->slots[n->gslot] : NULL;
}

/* din of input K of node N: its buffer, or tmp when the kernel must accumulate
 * (added by finish_din); NULL when the input takes no gradient. */
static float *din_of(net *g, node *n, int k, int b, float **target)
{
    int j = n->in[k];
    *target = trainable(g, j) ? grad_of(g, j, b) : NULL;
    if (!*target) return NULL;
    return n->acc[k] ? g->tmp : *target;
}

static void finish_din(net *g, node *n, int k, int b, float *target)
{
    if (target && n->acc[k])
        add_forward(target, target, g->tmp, out_floats(&g->nodes[n->in[k]], b), 0);
}

static void node_bwd(net *g, node *n, int b)
{
    const node *a = &g->nodes[n->in[0]];
    const int hw = n->h * n->w, ahw = a->h * a->w;
    float *gr = n->grad, *target;
    const size_t on = out_floats(n, b);
    switch (n->kind) {
    case N_CONV: {
        int relu = (n->flags & NET_RELU) != 0;
        if (n->t_stale) refresh_t(g, n, b);
        if (n->flags & NET_BN) {
            if (n->last_train)
                batchnorm_backward(gr, n->ggamma, n->gbeta, gr, n->t, n->out, n->gamma, n->smean,
                                   n->sinvstd, b, n->c, hw, relu);
            else
                batchnorm_backward_eval(gr, n->ggamma, n->gbeta, gr, n->t, n->out, n->gamma,
                                        n->rmean, n->rvar, b, n->c, hw, n->eps, relu);
        } else if (relu) {
            relu_backward(gr, gr, n->out, on);
        }
        /* before a training-mode batchnorm the bias has no effect (the batch
         * mean absorbs it): its gradient is exactly 0, not rounding noise */
        if (n->gb && !((n->flags & NET_BN) && n->last_train)) bias_backward(n->gb, gr, b, n->c, hw);
        conv2d_desc d;
        conv_desc(g, n, b, &d);
        int j = n->in[0];
        float *din = trainable(g, j) ? grad_of(g, j, b) : NULL;
        if ((n->flags & NET_POOL3) && n->last_train) {
            /* conv then pool backward, as separate nodes would (the input
             * gradient goes through tmp when it accumulates) */
            conv2d_backward(din ? g->pbuf : NULL, n->gw, gr, n->pin, n->wt, &d, g->ws, 0);
            if (!din) return;
            float *dst = n->acc[0] ? g->tmp : din;
            avgpool2d_backward(dst, g->pbuf, b, a->c, a->h, a->w, 3, 1, 1, 1, n->h, n->w);
            if (n->acc[0]) add_forward(din, din, g->tmp, out_floats(a, b), 0);
            return;
        }
        if (n->flags & NET_POOL3) {
            avgpool2d_backward(g->pbuf, gr, b, n->c, n->h, n->w, 3, 1, 1, 1, n->h, n->w);
            gr = g->pbuf;
        }
        conv2d_backward(din, n->gw, gr, a->out, n->wt, &d, g->ws, n->acc[0]);
        return;
    }
    case N_CONCAT:
        return;
    case N_LINEAR:
        if (n->flags & NET_RELU) relu_backward(gr, gr, n->out, on);
        {
            float *din = din_of(g, n, 0, b, &target);
            linear_backward(din, n->gw, n->gb, gr, a->out, n->wt, b, a->c, n->c);
        }
        break;
    default: {
        float *din = din_of(g, n, 0, b, &target);
        if (!din) return;
        if (n->kind == N_MAXPOOL) {
            if (!n->last_train) // same values into out, and the winners
                maxpool2d_forward(n->out, n->idx, a->out, b, n->c, a->h, a->w, n->kh, n->stride,
                                  n->pad, n->h, n->w);
            maxpool2d_backward(din, gr, n->idx, b, n->c, a->h, a->w, n->h, n->w);
        } else if (n->kind == N_AVGPOOL)
            avgpool2d_backward(din, gr, b, n->c, a->h, a->w, n->kh, n->stride, n->pad, n->mode,
                               n->h, n->w);
        else if (n->kind == N_ADAPTIVE)
            adaptive_avgpool_backward(din, gr, b, n->c, a->h, a->w, n->h, n->w);
        else if (n->kind == N_FLATTEN)
            nchw_to_cnhw(din, gr, b, a->c, ahw);
        else if (n->kind == N_DROPOUT && n->drop_on)
            dropout_backward(din, gr, n->mask, on);
        else
            memcpy(din, gr, sizeof(float) * on);
        break;
    }
    }
    finish_din(g, n, 0, b, target);
}

void net_backward_from(net *g, const float *dlogits)
{
    SWEEP_ASSERT(g->prepared && g->last_b >= 1);
    const int b = g->last_b;
    node *lg = &g->nodes[g->logits];
    lg->grad = (float *)dlogits;
    for (int i = g->nnodes - 1; i >= 1; i--) {
        node *n = &g->nodes[i];
        if (!trainable(g, i) || n->bskip) continue;
        if (n->unit == g->aux_unit && !g->last_aux) continue;
        n->grad = grad_of(g, i, b);
        double t0 = g->prof ? now_s() : 0;
        node_bwd(g, n, b);
        if (g->prof) prof_add(g, i, 1, now_s() - t0);
    }
}

void net_backward(net *g)
{
    net_backward_from(g, g->dlogits);
}

void net_zero_grad(net *g)
{
    if (g->prepared) memset(g->grads, 0, sizeof(float) * (g->np - g->train_start));
}

float *net_trainable(net *g, size_t *count, float **grads)
{
    if (!g->prepared) {
        *count = 0;
        if (grads) *grads = NULL;
        return NULL;
    }
    *count = g->np - g->train_start;
    if (grads) *grads = g->grads;
    return g->params + g->train_start;
}

double net_flops(const net *g)
{
    double f = 0;
    for (int i = 1; i < g->nnodes; i++) {
        const node *n = &g->nodes[i];
        const node *a = &g->nodes[n->in[0]];
        if (n->skip || (g->aux_unit >= 0 && n->unit == g->aux_unit)) continue;
        if (n->kind == N_CONV)
            f += 2.0 * n->c * a->c * n->kh * n->kw * (double)n->h * n->w;
        else if (n->kind == N_LINEAR)
            f += 2.0 * n->c * a->c;
    }
    return f;
}
