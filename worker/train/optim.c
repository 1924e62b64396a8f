/* optim — SGD / Adam / AdamW updates with PyTorch semantics over one flat
 * parameter array (contract and formulas in include/optim.h). The state is
 * one zeroed allocation of `slots` arrays parallel to the parameters. */
#pragma GCC optimize("O3")
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "pool.h"

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

static void sgd_part(void *arg, size_t i0, size_t i1)
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

static void adam_part(void *arg, size_t i0, size_t i1)
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

void optim_step(optim *o, float *params, const float *grads, float lr)
{
    o->step++;
    step_ctx k = {o, params, grads, lr, 0, 0};
    if (o->cfg.kind == OPTIM_SGD) {
        layers_parallel_for(o->n, 65536, sgd_part, &k);
        return;
    }
    const double bc1 = 1.0 - pow(o->cfg.momentum, (double)o->step);
    const double bc2 = 1.0 - pow(o->cfg.beta2, (double)o->step);
    k.step_size = (float)(lr / bc1);
    k.bc2_sqrt = (float)sqrt(bc2);
    layers_parallel_for(o->n, 65536, adam_part, &k);
}
