/* optim — SGD / Adam / AdamW updates with PyTorch semantics over one flat
 * parameter array (contract and formulas in include/optim.h). The state is
 * one zeroed allocation of `slots` arrays parallel to the parameters.
 * optim_step_copy also rewrites tap-major copies of parameter blocks (the
 * prepared weights of the tiny-map convolutions) in the same parallel pass,
 * each block's rows copied right after they are updated, so the weights are
 * not read again from memory by a separate preparation pass. */
#pragma GCC optimize("O3")
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "layers.h"
#include "pool.h"

/* The update loops are memory bound only when vectorised wide: compiled for
 * AVX-512 / AVX2 / generic and picked at load time (as layers.c does; the
 * same formulas, no FMA contraction under -std=c11, so every clone computes
 * the same values). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__)
#define HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define HOT
#endif

void optim_config_from_params(optim_config *cfg, const trial_params *p)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = p->optimizer;
    cfg->momentum = (float)p->momentum;
    cfg->beta2 = 0.999f;
    cfg->eps = 1e-8f;
    cfg->weight_decay = (float)p->weight_decay;
    cfg->l1 = (float)p->l1;
    cfg->nesterov = p->optimizer == OPTIM_SGD && p->nesterov;
}

int optim_init(optim *o, const optim_config *cfg, size_t n, char *msg, size_t msglen)
{
    memset(o, 0, sizeof *o);
    if (!(cfg->momentum >= 0 && cfg->momentum < 1))
        return err_set(msg, msglen, ERR_INVALID, "momentum %g is not in [0, 1)", cfg->momentum);
    if (!(cfg->weight_decay >= 0) || !(cfg->l1 >= 0))
        return err_set(msg, msglen, ERR_INVALID, "weight_decay and l1 must be >= 0");
    if (cfg->kind != OPTIM_SGD && (!(cfg->beta2 >= 0 && cfg->beta2 < 1) || !(cfg->eps > 0)))
        return err_set(msg, msglen, ERR_INVALID, "Adam needs beta2 in [0, 1) and eps > 0");
    if (cfg->nesterov && (cfg->kind != OPTIM_SGD || cfg->momentum <= 0))
        return err_set(msg, msglen, ERR_INVALID, "nesterov needs SGD with momentum > 0");
    o->cfg = *cfg;
    o->n = n;
    o->slots = cfg->kind == OPTIM_SGD ? (cfg->momentum > 0) : 2;
    if (o->slots && n) {
        o->state = calloc((size_t)o->slots * n, sizeof(float));
        if (!o->state)
            return err_set(msg, msglen, ERR_NOMEM, "out of memory for optimizer state (%zu floats)",
                           (size_t)o->slots * n);
        /* fault the pages in now rather than inside the first training step
         * (first touch of memory is slow on these machines, about 9 us per 4 KiB page) */
        memset(o->state, 0, sizeof(float) * o->slots * n);
    }
    return 0;
}

void optim_free(optim *o)
{
    free(o->state);
    o->state = NULL;
    free(o->blocks);
    o->blocks = NULL;
    o->nblocks_cap = 0;
}

void optim_reset(optim *o)
{
    if (o->state) memset(o->state, 0, sizeof(float) * o->slots * o->n);
    o->step = 0;
}

float *optim_slot(optim *o, int k)
{
    return (k >= 0 && k < o->slots && o->state) ? o->state + (size_t)k * o->n : NULL;
}

const char *optim_slot_name(const optim *o, int k)
{
    if (k < 0 || k >= o->slots) return NULL;
    if (o->cfg.kind == OPTIM_SGD) return "momentum";
    return k == 0 ? "exp_avg" : "exp_avg_sq";
}

static inline float sgnf(float x)
{
    return (float)((x > 0) - (x < 0));
}

typedef struct {
    optim *o;
    float *params;
    const float *grads;
    float lr, step_size, bc2_sqrt;
} step_ctx;

HOT static void sgd_part(void *arg, size_t i0, size_t i1)
{
    const step_ctx *k = arg;
    const optim_config *c = &k->o->cfg;
    const float l1 = c->l1, wd = c->weight_decay, mu = c->momentum, lr = k->lr;
    float *buf = optim_slot(k->o, 0), *params = k->params;
    const float *grads = k->grads;
    for (size_t i = i0; i < i1; i++) {
        float p = params[i];
        float g = grads[i] + wd * p + l1 * sgnf(p);
        if (buf) {
            float b = mu * buf[i] + g;
            buf[i] = b;
            g = c->nesterov ? g + mu * b : b;
        }
        params[i] = p - lr * g;
    }
}

HOT static void adam_part(void *arg, size_t i0, size_t i1)
{
    const step_ctx *k = arg;
    const optim_config *c = &k->o->cfg;
    const float l1 = c->l1, wd = c->weight_decay, b1 = c->momentum, b2 = c->beta2, eps = c->eps;
    const int decoupled = c->kind == OPTIM_ADAMW;
    const float decay = decoupled ? 1.0f - k->lr * wd : 1.0f;
    const float step_size = k->step_size, bc2_sqrt = k->bc2_sqrt;
    float *m = optim_slot(k->o, 0), *v = optim_slot(k->o, 1), *params = k->params;
    const float *grads = k->grads;
    for (size_t i = i0; i < i1; i++) {
        float p = params[i];
        float g = grads[i] + l1 * sgnf(p);
        if (decoupled)
            p *= decay;
        else
            g += wd * p;
        float mi = b1 * m[i] + (1.0f - b1) * g;
        float vi = b2 * v[i] + (1.0f - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        params[i] = p - step_size * mi / denom;
    }
}

/* Advances the step count and fills K for one step; returns the update part. */
static par_fn step_begin(optim *o, step_ctx *k, float *params, const float *grads, float lr)
{
    o->step++;
    *k = (step_ctx){o, params, grads, lr, 0, 0};
    if (o->cfg.kind == OPTIM_SGD) return sgd_part;
    const double bc1 = 1.0 - pow(o->cfg.momentum, (double)o->step);
    const double bc2 = 1.0 - pow(o->cfg.beta2, (double)o->step);
    k->step_size = (float)(lr / bc1);
    k->bc2_sqrt = (float)sqrt(bc2);
    return adam_part;
}

void optim_step(optim *o, float *params, const float *grads, float lr)
{
    step_ctx k;
    par_fn fn = step_begin(o, &k, params, grads, lr);
    layers_parallel_for(o->n, 65536, fn, &k);
}

/* ---------- the update with copies ---------- */

#define STEP_BLOCK 65536 // parameters per item of the update's parallel loop

/* One item of optim_step_copy's work list: parameters [i0, i1), and when
 * COPY >= 0 rows [r0, r1) of that copy's block (then [i0, i1) is exactly
 * those rows). */
typedef struct {
    size_t i0, i1; // parameter range
    int copy;      // index into the copies, or -1
    int r0, r1;    // rows of the copy's block
} step_block;

typedef struct {
    step_ctx k;               // the update
    par_fn fn;                // sgd_part or adam_part
    const optim_copy *copies; // (nc) the copies
    const step_block *blocks; // the work list
} copy_ctx;

/* Rows [r0, r1) of copy C from the (updated) parameters. */
static void copy_rows(const optim_copy *c, const float *params, int r0, int r1)
{
    conv2d_tap_major_rows(c->dst, params + c->offset, c->rows, c->cols, c->kk, c->tap, c->ntaps, r0,
                          r1);
}

static void copy_part(void *arg, size_t b0, size_t b1)
{
    const copy_ctx *x = arg;
    for (size_t b = b0; b < b1; b++) {
        const step_block *s = &x->blocks[b];
        x->fn((void *)&x->k, s->i0, s->i1);
        /* the rows were just updated: copied while they are in the caches */
        if (s->copy >= 0) copy_rows(&x->copies[s->copy], x->k.params, s->r0, s->r1);
    }
}

/* Appends the plain items of [i0, i1) to the list at *nb. */
static void plain_blocks(step_block *bl, size_t *nb, size_t i0, size_t i1)
{
    for (size_t i = i0; i < i1; i += STEP_BLOCK)
        bl[(*nb)++] = (step_block){i, i1 - i < STEP_BLOCK ? i1 : i + STEP_BLOCK, -1, 0, 0};
}

/* Builds the work list in o->blocks (copies sorted by offset); returns its
 * length, or 0 when it cannot be allocated. */
static size_t copy_blocks(optim *o, const optim_copy *copies, int nc)
{
    int order[64];
    if (nc > 64) return 0;
    for (int i = 0; i < nc; i++) {
        int j = i;
        while (j > 0 && copies[order[j - 1]].offset > copies[i].offset) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    size_t cap = o->n / STEP_BLOCK + 1;
    for (int i = 0; i < nc; i++) {
        const size_t row = (size_t)copies[i].cols * copies[i].kk;
        cap += (size_t)copies[i].rows / (row < STEP_BLOCK ? STEP_BLOCK / row : 1) + 3;
    }
    if (cap > o->nblocks_cap) {
        void *nbk = realloc(o->blocks, cap * sizeof(step_block));
        if (!nbk) return 0;
        o->blocks = nbk;
        o->nblocks_cap = cap;
    }
    step_block *bl = o->blocks;
    size_t nb = 0, at = 0;
    for (int i = 0; i < nc; i++) {
        const optim_copy *c = &copies[order[i]];
        const size_t row = (size_t)c->cols * c->kk;
        if (c->offset < at || c->offset + row * c->rows > o->n) return 0; // overlap / outside
        plain_blocks(bl, &nb, at, c->offset);
        const int per = row < STEP_BLOCK ? (int)(STEP_BLOCK / row) : 1;
        for (int r = 0; r < c->rows; r += per) {
            int r1 = r + per < c->rows ? r + per : c->rows;
            bl[nb++] = (step_block){c->offset + row * r, c->offset + row * r1, order[i], r, r1};
        }
        at = c->offset + row * c->rows;
    }
    plain_blocks(bl, &nb, at, o->n);
    return nb;
}

void optim_step_copy(optim *o, float *params, const float *grads, float lr,
                     const optim_copy *copies, int nc)
{
    size_t nb = copy_blocks(o, copies, nc);
    if (!nb) {
        optim_step_copy_ref(o, params, grads, lr, copies, nc);
        return;
    }
    copy_ctx x;
    x.fn = step_begin(o, &x.k, params, grads, lr);
    x.copies = copies;
    x.blocks = o->blocks;
    layers_parallel_for(nb, 1, copy_part, &x);
}

void optim_step_copy_ref(optim *o, float *params, const float *grads, float lr,
                         const optim_copy *copies, int nc)
{
    optim_step(o, params, grads, lr);
    for (int i = 0; i < nc; i++) {
        const optim_copy *c = &copies[i];
        for (int t = 0; t < c->ntaps; t++)
            for (int r = 0; r < c->rows; r++)
                for (int j = 0; j < c->cols; j++)
                    c->dst[((size_t)t * c->rows + r) * c->cols + j] =
                        params[c->offset + ((size_t)r * c->cols + j) * c->kk + c->tap[t]];
    }
}
