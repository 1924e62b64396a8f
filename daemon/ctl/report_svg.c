/* report_svg — the drawing pieces of `sweepctl report`: scales (linear, log,
 * categorical) from data values to SVG coordinates, "nice" ticks, number
 * labels, and the HTML escape every foreign string of the page (job, class
 * and parameter names, values, error messages, paths) goes through. Pure: the
 * only output is to the FILE * a caller gives; include/report.h states each
 * contract. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "utf8.h"

report_scale report_scale_make(double d0, double d1, bool log, double r0, double r1)
{
    if (log && !(d0 > 0 && d1 > 0)) log = false;
    if (!isfinite(d0) || !isfinite(d1)) d0 = 0, d1 = 1;
    if (d1 < d0) {
        double t = d0;
        d0 = d1;
        d1 = t;
    }
    if (d0 == d1) {
        if (log) {
            d0 /= 2;
            d1 *= 2;
        } else {
            double w = d0 ? fabs(d0) * 0.1 : 0.5;
            d0 -= w;
            d1 += w;
        }
    }
    return (report_scale){.log = log, .d0 = d0, .d1 = d1, .r0 = r0, .r1 = r1};
}

report_scale report_scale_cat(int ncat, double r0, double r1)
{
    return (report_scale){.ncat = ncat < 1 ? 1 : ncat, .d0 = 0, .d1 = 1, .r0 = r0, .r1 = r1};
}

double report_scale_map(const report_scale *s, double v)
{
    double t;
    if (s->ncat > 0)
        t = (v + 0.5) / s->ncat;
    else if (s->log)
        t = v > 0 ? (log10(v) - log10(s->d0)) / (log10(s->d1) - log10(s->d0)) : 0;
    else
        t = (v - s->d0) / (s->d1 - s->d0);
    if (!(t >= 0)) t = 0; // NaN too
    if (t > 1) t = 1;
    return s->r0 + t * (s->r1 - s->r0);
}

/* The step between linear ticks: 1, 2 or 5 times a power of ten, about
 * RANGE / TARGET. */
static double nice_step(double range, int target)
{
    double raw = range / (target > 0 ? target : 1);
    double p = pow(10, floor(log10(raw)));
    double f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

int report_ticks(const report_scale *s, double *ticks, int max)
{
    int n = 0;
    if (s->ncat > 0 || max <= 0) return 0;
    double eps = (s->d1 - s->d0) * 1e-9;
    if (!s->log) {
        double step = nice_step(s->d1 - s->d0, max < 5 ? max : 5);
        if (s->integer && step < 1) step = 1;
        for (double v = ceil(s->d0 / step - 1e-9) * step; v <= s->d1 + eps && n < max; v += step)
            ticks[n++] = fabs(v) < step * 1e-9 ? 0 : v;
        return n;
    }
    int k0 = (int)floor(log10(s->d0)), k1 = (int)ceil(log10(s->d1));
    int powers = 0;
    for (int k = k0; k <= k1; k++) {
        double v = pow(10, k);
        if (v >= s->d0 * (1 - 1e-9) && v <= s->d1 * (1 + 1e-9)) powers++;
    }
    static const double all[] = {1, 2, 5};
    int per = powers < 3 ? 3 : 1;
    for (int k = k0; k <= k1 && n < max; k++)
        for (int m = 0; m < per && n < max; m++) {
            double v = all[m] * pow(10, k);
            if (v >= s->d0 * (1 - 1e-9) && v <= s->d1 * (1 + 1e-9)) ticks[n++] = v;
        }
    return n;
}

void report_extent(const double *v, size_t n, bool log, double *lo, double *hi)
{
    double a = INFINITY, b = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i]) || (log && v[i] <= 0)) continue;
        if (v[i] < a) a = v[i];
        if (v[i] > b) b = v[i];
    }
    if (a > b) {
        *lo = 0;
        *hi = 1;
        return;
    }
    if (log) {
        double la = log10(a), lb = log10(b), pad = (lb - la) * 0.05;
        *lo = pow(10, la - pad);
        *hi = pow(10, lb + pad);
    } else {
        double pad = (b - a) * 0.05;
        *lo = a - pad;
        *hi = b + pad;
    }
}

char *report_fmt(char *buf, size_t n, double v)
{
    if (isnan(v)) {
        snprintf(buf, n, "-");
        return buf;
    }
    double a = fabs(v);
    if (a != 0 && (a < 1e-3 || a >= 1e5))
        snprintf(buf, n, "%.3g", v);
    else
        snprintf(buf, n, "%.4g", v);
    return buf;
}

void report_html(FILE *f, const char *s)
{
    if (!s) return;
    char small[256];
    size_t len = utf8_escape(small, sizeof small, s);
    char *e = len < sizeof small ? small : utf8_escaped(s);
    if (!e) return;
    for (const char *p = e; *p; p++) {
        switch (*p) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&#39;", f);
            break;
        default:
            fputc(*p, f);
        }
    }
    if (e != small) free(e);
}

char *report_html_str(const char *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    report_html(f, s);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
