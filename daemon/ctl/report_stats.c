/* report_stats — the numbers of `sweepctl report` that are pure arithmetic:
 * parameter importance (one-way analysis of variance of the objective over
 * the values of one parameter), per-class precision and recall from a
 * confusion matrix, and the epoch stride that thins a long learning curve.
 * No I/O; include/report.h states each contract. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

int report_bins_for(size_t n)
{
    size_t b = n / 5;
    if (b < 2) b = 2;
    if (b > 10) b = 10;
    return (int)b;
}

/* A usable (x, y) pair and its place, for sorting numeric x into bins. */
typedef struct {
    double x; // the parameter's value
    double y; // the objective
} xy_pair;

static int cmp_x(const void *a, const void *b)
{
    double u = ((const xy_pair *)a)->x, v = ((const xy_pair *)b)->x;
    return (u > v) - (u < v);
}

/* Epsilon squared of the N pairs P grouped by GROUP[i] (0..K-1). */
static double epsilon_squared(const xy_pair *p, const int *group, size_t n, int k)
{
    double *sum = calloc((size_t)k, sizeof *sum);
    size_t *cnt = calloc((size_t)k, sizeof *cnt);
    double r = NAN;
    if (!sum || !cnt) goto done;
    double mean = 0;
    for (size_t i = 0; i < n; i++) {
        sum[group[i]] += p[i].y;
        cnt[group[i]]++;
        mean += p[i].y;
    }
    mean /= (double)n;
    double sst = 0, ssb = 0;
    for (size_t i = 0; i < n; i++)
        sst += (p[i].y - mean) * (p[i].y - mean);
    int groups = 0;
    for (int g = 0; g < k; g++) {
        if (!cnt[g]) continue;
        groups++;
        double m = sum[g] / (double)cnt[g];
        ssb += (double)cnt[g] * (m - mean) * (m - mean);
    }
    if (!(sst > 1e-300) || (size_t)groups >= n) goto done; // constant, or no noise estimate
    double msw = (sst - ssb) / (double)(n - (size_t)groups);
    r = (ssb - (double)(groups - 1) * msw) / sst;
    if (r < 0) r = 0;
    if (r > 1) r = 1;
done:
    free(sum);
    free(cnt);
    return r;
}

double report_importance(const double *x, const double *y, size_t n, int ncat, int bins)
{
    xy_pair *p = malloc((n ? n : 1) * sizeof *p);
    int *group = malloc((n ? n : 1) * sizeof *group);
    double r = NAN;
    if (!p || !group) goto done;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i]) || !isfinite(y[i])) continue;
        if (ncat > 0 && (x[i] < 0 || x[i] >= ncat)) continue;
        p[m++] = (xy_pair){x[i], y[i]};
    }
    if (m < 3) goto done;
    int k;
    if (ncat > 0) {
        k = ncat;
        for (size_t i = 0; i < m; i++)
            group[i] = (int)p[i].x;
    } else {
        k = bins < 1 ? 1 : bins;
        qsort(p, m, sizeof *p, cmp_x);
        /* Equal-count bins by rank; a run of equal values takes the bin of
         * its first member, so ties are never split. */
        for (size_t i = 0; i < m; i++)
            group[i] = (i > 0 && p[i].x == p[i - 1].x) ? group[i - 1] : (int)(i * (size_t)k / m);
    }
    r = epsilon_squared(p, group, m, k);
done:
    free(p);
    free(group);
    return r;
}

void report_class_pr(const int64_t *cm, int n, int c, double *precision, double *recall)
{
    int64_t row = 0, col = 0;
    for (int i = 0; i < n; i++) {
        row += cm[(size_t)c * (size_t)n + (size_t)i];
        col += cm[(size_t)i * (size_t)n + (size_t)c];
    }
    double tp = (double)cm[(size_t)c * (size_t)n + (size_t)c];
    *precision = col ? tp / (double)col : NAN;
    *recall = row ? tp / (double)row : NAN;
}

int report_stride(int last, int max)
{
    if (max < 2 || last <= max) return 1;
    /* Every stride-th epoch plus the last: last/s + 1 points, at most MAX
     * when last/s < MAX, i.e. for every s > last/MAX. */
    return last / max + 1;
}
