/* prune — the median and ASHA decision rules (include/prune.h). Pure: the
 * caller supplies the values, so every case can be computed by hand (and is,
 * in tests/unit/test_prune.c). */
#include "prune.h"

#include <stdio.h>
#include <stdlib.h>

const char *prune_kind_name(prune_kind kind)
{
    return kind == PRUNE_MEDIAN ? "median" : kind == PRUNE_ASHA ? "asha" : "none";
}

bool prune_is_decision_epoch(const prune_config *c, int epoch)
{
    if (c->kind == PRUNE_MEDIAN) return epoch > c->warmup_epochs && epoch >= 1;
    if (c->kind != PRUNE_ASHA || c->min_epochs < 1 || c->reduction < 2) return false;
    for (long long r = c->min_epochs; r <= epoch; r *= c->reduction)
        if (r == epoch) return true;
    return false;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double prune_median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* True when A is strictly better than B for the goal. */
static bool better(bool maximize, double a, double b)
{
    return maximize ? a > b : a < b;
}

bool prune_decide(const prune_config *c, bool maximize, const char *metric, int epoch, double value,
                  double *others, size_t n_others, char *reason, size_t len)
{
    if (c->kind == PRUNE_MEDIAN) {
        if (n_others < (size_t)c->min_trials || n_others == 0) {
            snprintf(reason, len, "median: %zu other trials at epoch %d, fewer than min_trials %d",
                     n_others, epoch, c->min_trials);
            return false;
        }
        double m = prune_median(others, n_others);
        bool stop = better(maximize, m, value);
        snprintf(reason, len,
                 "median: best %s %.6g is %s the median %.6g of %zu other trials at"
                 " epoch %d",
                 metric, value, stop ? "worse than" : "not worse than", m, n_others, epoch);
        return stop;
    }
    if (c->kind == PRUNE_ASHA) {
        size_t n = n_others + 1, ahead = 0;
        for (size_t i = 0; i < n_others; i++)
            if (better(maximize, others[i], value)) ahead++;
        size_t keep = (n + (size_t)c->reduction - 1) / (size_t)c->reduction;
        bool stop = ahead >= keep;
        snprintf(reason, len,
                 "asha: rung %d: best %s %.6g ranks %zu of %zu, the top %zu (1/%d)"
                 " continue",
                 epoch, metric, value, ahead + 1, n, keep, c->reduction);
        return stop;
    }
    snprintf(reason, len, "no pruner");
    return false;
}
