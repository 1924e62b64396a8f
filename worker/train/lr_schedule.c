/* lr_schedule — constant, cosine and step learning-rate schedules with linear
 * warmup, evaluated per optimizer step. Formulas and the PyTorch schedulers
 * they match are in lr_schedule.h. */
#include "lr_schedule.h"

#include <math.h>

#include "log.h"

double lr_schedule_at(const trial_params *p, int epoch, int step, int steps_per_epoch)
{
    SWEEP_ASSERT(steps_per_epoch >= 1 && epoch >= 0 && step >= 0);
    double base = p->lr;
    long long spe = steps_per_epoch;
    long long t = (long long)epoch * spe + step;
    long long w = (long long)p->warmup_epochs * spe;
    long long total = (long long)p->epochs * spe;
    if (t < w) return base * (double)(t + 1) / (double)w;
    switch (p->lr_schedule) {
    case SCHED_COSINE: {
        long long span = total - w;
        if (span <= 0) return base;
        double frac = (double)(t - w) / (double)span;
        if (frac > 1.0) frac = 1.0;
        return base * 0.5 * (1.0 + cos(M_PI * frac));
    }
    case SCHED_STEP: {
        int k = p->epochs / 3;
        if (k < 1) k = 1;
        return base * pow(0.1, (double)(epoch / k));
    }
    case SCHED_CONSTANT:
    default:
        return base;
    }
}
