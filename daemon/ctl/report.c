/* report — `sweepctl report JOB`: the page and the command (include/report.h,
 * README.md "Report").
 *
 * report_render writes one HTML document with inline CSS and inline SVG and
 * nothing that would make a browser fetch anything (no script, no external
 * font, image or style sheet; a Content-Security-Policy of default-src 'none'
 * says so to the browser too). Sections, in order: the job's summary (with
 * the chosen model's test accuracy), optimization history, learning curves,
 * parallel coordinates, one scatter per parameter, parameter importance, the
 * confusion matrix with per-class precision and recall, and the failed and
 * pruned trials. Every foreign string goes through report_html. Large jobs
 * stay small: the history draws one <circle> per trial, the parallel
 * coordinates one <path> per colour band and the scatters one <path> of dots
 * each, so a 10,000-trial page is a few MB and is written in well under a
 * second.
 *
 * ctl_report is the command: it finds the database (--db, else the daemon's
 * status reply names it), reads it (report_db.c), writes the page to a
 * temporary file beside the target and renames it into place, then prints
 * the page's absolute path. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "report.h"

#define CHART_W 900.0    // width of the wide charts (history, parallel coordinates)
#define PAD_L 64.0       // left margin of a chart (y labels)
#define PAD_R 24.0       // right margin
#define PAD_T 24.0       // top margin
#define PAD_B 44.0       // bottom margin (x labels)
#define MAX_CM_DRAWN 100 // larger confusion matrices are given as the table only

/* Objective colour bands, worst to best (viridis). */
static const char *const BANDS[] = {"#440154", "#46327e", "#365c8d", "#277f8e",
                                    "#1fa187", "#4ac16d", "#a0da39", "#fde725"};
#define NBANDS (int)(sizeof BANDS / sizeof BANDS[0])
/* Learning-curve colours, one per shown trial. */
static const char *const PALETTE[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                      "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                      "#bcbd22", "#17becf", "#393b79", "#637939"};
#define NPALETTE (sizeof PALETTE / sizeof PALETTE[0])

static const char CSS[] =
    "body{font-family:sans-serif;margin:0 auto;max-width:1000px;padding:0 16px 40px;"
    "color:#222;background:#fafafa}"
    "h1{font-size:1.5em;margin:20px 0 6px}h2{font-size:1.15em;margin:0 0 8px}"
    "section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:14px 16px;"
    "margin:14px 0}"
    "p.note{color:#555;font-size:.9em;margin:6px 0}"
    "table{border-collapse:collapse;font-size:.9em}td,th{padding:3px 8px;text-align:left;"
    "border-bottom:1px solid #eee;vertical-align:top}th{background:#f3f3f3}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}"
    "svg{display:block;max-width:100%;height:auto}"
    "svg text{font-size:11px;fill:#333}svg .title{font-size:12px;font-weight:bold}"
    ".grid{display:flex;flex-wrap:wrap;gap:10px}"
    ".axis line,.axis path{stroke:#888;stroke-width:1;fill:none}"
    ".axis .gridline{stroke:#eee;stroke-width:1}"
    ".legend span{display:inline-block;margin:2px 12px 2px 0;font-size:.85em}"
    ".sw{display:inline-block;width:18px;height:3px;vertical-align:middle;margin-right:4px}"
    "dl{display:grid;grid-template-columns:max-content auto;gap:2px 14px;margin:0}"
    "dt{color:#555}dd{margin:0}.big{font-size:1.3em;font-weight:bold}";

/* ---- small writers ------------------------------------------------------- */

static void num(FILE *f, double v)
{
    char b[32];
    fputs(report_fmt(b, sizeof b, v), f);
}

static void opt_text(FILE *f, const char *s)
{
    if (s)
        report_html(f, s);
    else
        fputs("-", f);
}

/* An axis of scale S: ORIENT 'x' (horizontal at y = AT, labels below) or
 * 'y' (vertical at x = AT, labels left). LABELS names a categorical scale's
 * slots. GRID > 0 draws light grid lines of that length across the plot
 * (up for 'x', right for 'y'). */
static void axis(FILE *f, const report_scale *s, char orient, double at, char *const *labels,
                 double grid)
{
    double ticks[24];
    int n = s->ncat > 0 ? (s->ncat < 24 ? s->ncat : 24) : report_ticks(s, ticks, 12);
    int every = s->ncat > 24 ? (s->ncat + 23) / 24 : 1;
    if (orient == 'x')
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", s->r0, at, s->r1, at);
    else
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", at, s->r0, at, s->r1);
    for (int i = 0; i < n; i++) {
        double v = s->ncat > 0 ? (double)(i * every) : ticks[i];
        if (s->ncat > 0 && v >= s->ncat) break;
        double p = report_scale_map(s, v);
        if (orient == 'x') {
            if (grid > 0)
                fprintf(
                    f, "<line class=\"gridline\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
                    p, at, p, at - grid);
            fprintf(f,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/><text x=\"%.1f\" "
                    "y=\"%.1f\" text-anchor=\"middle\">",
                    p, at, p, at + 4, p, at + 16);
        } else {
            if (grid > 0)
                fprintf(
                    f, "<line class=\"gridline\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
                    at, p, at + grid, p);
            fprintf(f,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/><text x=\"%.1f\" "
                    "y=\"%.1f\" text-anchor=\"end\">",
                    at - 4, p, at, p, at - 6, p + 4);
        }
        if (s->ncat > 0)
            report_html(f, labels ? labels[(int)v] : "");
        else
            num(f, v);
        fputs("</text>", f);
    }
}

/* A chart's opening tag: <svg data-chart=KIND ...> W x H, with a title. */
static void svg_open(FILE *f, const char *kind, double w, double h, const char *title)
{
    fprintf(f,
            "<svg data-chart=\"%s\" viewBox=\"0 0 %.0f %.0f\" "
            "width=\"%.0f\" height=\"%.0f\" role=\"img\">",
            kind, w, h, w, h);
    if (title) {
        fprintf(f, "<text class=\"title\" x=\"%.1f\" y=\"14\">", PAD_L);
        report_html(f, title);
        fputs("</text>", f);
    }
}

/* The objective's name with its goal, e.g. "val_accuracy (maximize)". */
static void objective_name(FILE *f, const report_data *d)
{
    report_html(f, d->metric);
    fputs(d->maximize ? " (maximize)" : " (minimize)", f);
}

/* The extent of every objective value of D (completed and pruned). */
static void value_extent(const report_data *d, double *lo, double *hi)
{
    double *v = malloc((d->n_trials ? d->n_trials : 1) * sizeof *v);
    size_t n = 0;
    if (v)
        for (size_t i = 0; i < d->n_trials; i++)
            if (d->trials[i].has_value) v[n++] = d->trials[i].value;
    report_extent(v, n, false, lo, hi);
    free(v);
}

static const char *scale_name(const report_param *p)
{
    return p->kind == REPORT_LIST ? "categorical" : p->kind == REPORT_LOG ? "log" : "linear";
}

/* The scale of parameter P over [R0, R1]. */
static report_scale param_scale(const report_param *p, double r0, double r1)
{
    if (p->kind == REPORT_LIST) return report_scale_cat((int)p->n_labels, r0, r1);
    double lo = p->lo, hi = p->hi;
    if (p->kind == REPORT_INT) lo -= 0.5, hi += 0.5;
    report_scale s = report_scale_make(lo, hi, p->kind == REPORT_LOG, r0, r1);
    s.integer = p->kind == REPORT_INT;
    return s;
}

/* ---- sections ------------------------------------------------------------ */

static void summary(FILE *f, const report_data *d)
{
    fprintf(f, "<h1>sweepd report: job %lld, ", (long long)d->job_id);
    report_html(f, d->name);
    fputs("</h1><section id=\"summary\"><dl>", f);
    fputs("<dt>state</dt><dd>", f);
    report_html(f, d->state);
    if (d->error) {
        fputs(" (", f);
        report_html(f, d->error);
        fputs(")", f);
    }
    fputs("</dd><dt>strategy</dt><dd>", f);
    report_html(f, d->strategy);
    fputs("</dd><dt>objective</dt><dd>", f);
    objective_name(f, d);
    fprintf(f, "</dd><dt>trials</dt><dd data-trials=\"%zu\">%zu of %lld:", d->n_trials, d->n_trials,
            (long long)d->trials_total);
    static const char *const names[6] = {"queued", "running",   "completed",
                                         "failed", "cancelled", "pruned"};
    for (int k = 0; k < 6; k++)
        fprintf(f, " %lld %s%s", (long long)d->counts[k], names[k], k < 5 ? "," : "");
    fputs("</dd><dt>searched</dt><dd>", f);
    for (size_t k = 0; k < d->n_params; k++) {
        if (k) fputs(", ", f);
        report_html(f, d->params[k].name);
        fprintf(f, " (%s)", scale_name(&d->params[k]));
    }
    if (!d->n_params) fputs("nothing (no space)", f);
    fputs("</dd><dt>submitted, started, finished</dt><dd>", f);
    opt_text(f, d->submitted_at);
    fputs(", ", f);
    opt_text(f, d->started_at);
    fputs(", ", f);
    opt_text(f, d->finished_at);
    fputs("</dd><dt>best trial</dt><dd>", f);
    if (d->best >= 0) {
        const report_trial *b = &d->trials[d->best];
        fprintf(f, "number %d (id %lld): ", b->number, (long long)b->id);
        report_html(f, d->metric);
        fputs(" ", f);
        num(f, b->value);
    } else {
        fputs("none completed yet", f);
    }
    fputs("</dd><dt>chosen model, test accuracy</dt><dd id=\"test-accuracy\" class=\"big\">", f);
    if (d->chosen >= 0) {
        const report_trial *c = &d->trials[d->chosen];
        fprintf(f,
                "%.4f <span style=\"font-size:.7em;font-weight:normal\">(trial number %d, id "
                "%lld, on the test set)</span>",
                c->test_accuracy, c->number, (long long)c->id);
    } else if (d->test_error) {
        fputs("- <span style=\"font-size:.7em;font-weight:normal\">(the test-set evaluation "
              "failed: ",
              f);
        report_html(f, d->test_error);
        fputs(")</span>", f);
    } else {
        fputs("- <span style=\"font-size:.7em;font-weight:normal\">(no test-set evaluation)</span>",
              f);
    }
    fputs("</dd></dl></section>\n", f);
}

static void history(FILE *f, const report_data *d, double lo, double hi)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n_trials; i++)
        n += d->trials[i].has_value;
    fputs("<section id=\"history\"><h2>Optimization history</h2>", f);
    fputs("<p class=\"note\">The objective of every finished trial in the order the trials "
          "finished: filled dots are completed trials, hollow orange ones pruned trials (their "
          "best value before they were stopped); the red line is the best completed value so "
          "far.</p>",
          f);
    if (!n) {
        fputs("<p class=\"note\">No trial has finished with a value yet.</p></section>\n", f);
        return;
    }
    double h = 320;
    svg_open(f, "history", CHART_W, h, NULL);
    report_scale xs = report_scale_make(0.5, (double)n + 0.5, false, PAD_L, CHART_W - PAD_R);
    xs.integer = true;
    report_scale ys = report_scale_make(lo, hi, false, h - PAD_B, PAD_T);
    fputs("<g class=\"axis\">", f);
    axis(f, &xs, 'x', h - PAD_B, NULL, h - PAD_B - PAD_T);
    axis(f, &ys, 'y', PAD_L, NULL, CHART_W - PAD_L - PAD_R);
    fprintf(f,
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">trials in finishing order</text>",
            (PAD_L + CHART_W - PAD_R) / 2, h - 8);
    fprintf(f,
            "<text x=\"12\" y=\"%.1f\" transform=\"rotate(-90 12 %.1f)\" "
            "text-anchor=\"middle\">",
            h / 2, h / 2);
    report_html(f, d->metric);
    fputs("</text></g>", f);
    /* The best-so-far line over the completed trials, as steps. */
    fputs("<path class=\"best-line\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"1.5\" d=\"",
          f);
    bool have = false;
    double best = 0;
    size_t k = 0;
    for (size_t i = 0; i < d->n_trials; i++) {
        const report_trial *t = &d->trials[i];
        if (!t->has_value) continue;
        k++;
        if (strcmp(t->state, "completed")) continue;
        double x = report_scale_map(&xs, (double)k);
        if (!have)
            fprintf(f, "M%.1f %.1f", x, report_scale_map(&ys, t->value));
        else if (d->maximize ? t->value > best : t->value < best)
            fprintf(f, "H%.1fV%.1f", x, report_scale_map(&ys, t->value));
        else
            continue;
        best = t->value;
        have = true;
    }
    if (have) fprintf(f, "H%.1f", report_scale_map(&xs, (double)n));
    fputs("\"/>", f);
    k = 0;
    for (size_t i = 0; i < d->n_trials; i++) {
        const report_trial *t = &d->trials[i];
        if (!t->has_value) continue;
        k++;
        bool pruned = !strcmp(t->state, "pruned");
        fprintf(f,
                "<circle class=\"pt\" data-trial=\"%lld\" data-state=\"%s\" cx=\"%.1f\" "
                "cy=\"%.1f\" r=\"3\" %s><title>trial %d (id %lld) %s: ",
                (long long)t->id, t->state, report_scale_map(&xs, (double)k),
                report_scale_map(&ys, t->value),
                pruned ? "fill=\"none\" stroke=\"#ff7f0e\""
                       : "fill=\"#1f77b4\" fill-opacity=\".7\"",
                t->number, (long long)t->id, t->state);
        num(f, t->value);
        fputs("</title></circle>", f);
    }
    fputs("</svg></section>\n", f);
}

/* The value of metric M (0..3) of point P. */
static double metric_of(const report_point *p, int m)
{
    return m == 0   ? p->train_loss
           : m == 1 ? p->val_loss
           : m == 2 ? p->train_accuracy
                    : p->val_accuracy;
}

static void curves(FILE *f, const report_data *d)
{
    static const char *const metrics[4] = {"train_loss", "val_loss", "train_accuracy",
                                           "val_accuracy"};
    static const char *const titles[4] = {"training loss", "validation loss", "training accuracy",
                                          "validation accuracy"};
    fputs("<section id=\"curves\"><h2>Learning curves of the top trials</h2>", f);
    fprintf(f,
            "<p class=\"note\">Per epoch, the %d best completed trials (solid) and the %d best "
            "pruned ones (dashed, ending in a cross where the pruner stopped them). Curves longer "
            "than %d epochs are drawn at every n-th epoch and the last.</p>",
            REPORT_TOP_COMPLETED, REPORT_TOP_PRUNED, REPORT_CURVE_POINTS);
    if (!d->n_curves) {
        fputs("<p class=\"note\">No finished trial to show yet.</p></section>\n", f);
        return;
    }
    int max_epoch = 1;
    for (size_t c = 0; c < d->n_curves; c++)
        for (size_t i = 0; i < d->curves[c].n; i++)
            if (d->curves[c].pts[i].epoch > max_epoch) max_epoch = d->curves[c].pts[i].epoch;
    double w = 440, h = 260;
    fputs("<div class=\"grid\">", f);
    for (int m = 0; m < 4; m++) {
        /* The y extent of this metric over the shown curves. */
        double lo = INFINITY, hi = -INFINITY;
        for (size_t c = 0; c < d->n_curves; c++)
            for (size_t i = 0; i < d->curves[c].n; i++) {
                double v = metric_of(&d->curves[c].pts[i], m);
                if (isfinite(v)) lo = v < lo ? v : lo, hi = v > hi ? v : hi;
            }
        double vals[2] = {lo, hi};
        report_extent(vals, lo <= hi ? 2 : 0, false, &lo, &hi);
        svg_open(f, "curve", w, h, titles[m]);
        report_scale xs = report_scale_make(
            max_epoch > 1 ? 1 : 0.5, max_epoch > 1 ? max_epoch : 1.5, false, PAD_L, w - PAD_R);
        xs.integer = true;
        report_scale ys = report_scale_make(lo, hi, false, h - PAD_B, PAD_T);
        fputs("<g class=\"axis\">", f);
        axis(f, &xs, 'x', h - PAD_B, NULL, h - PAD_B - PAD_T);
        axis(f, &ys, 'y', PAD_L, NULL, w - PAD_L - PAD_R);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">epoch</text></g>",
                (PAD_L + w - PAD_R) / 2, h - 8);
        for (size_t c = 0; c < d->n_curves; c++) {
            const report_curve *cv = &d->curves[c];
            const report_trial *t = &d->trials[cv->trial];
            bool pruned = !strcmp(t->state, "pruned");
            const char *col = PALETTE[c % NPALETTE];
            fprintf(f,
                    "<path class=\"curve\" data-trial=\"%lld\" data-metric=\"%s\" "
                    "data-state=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"%s d=\"",
                    (long long)t->id, metrics[m], t->state, col,
                    pruned ? " stroke-dasharray=\"5 3\"" : "");
            bool pen = false;
            double lx = 0, ly = 0;
            bool any = false;
            for (size_t i = 0; i < cv->n; i++) {
                double v = metric_of(&cv->pts[i], m);
                if (!isfinite(v)) {
                    pen = false;
                    continue;
                }
                lx = report_scale_map(&xs, cv->pts[i].epoch);
                ly = report_scale_map(&ys, v);
                fprintf(f, "%s%.1f %.1f", pen ? "L" : "M", lx, ly);
                pen = any = true;
            }
            fprintf(f, "\"><title>trial %d (id %lld) %s</title></path>", t->number,
                    (long long)t->id, t->state);
            if (pruned && any)
                fprintf(f,
                        "<path class=\"cut\" data-trial=\"%lld\" stroke=\"%s\" stroke-width=\"2\" "
                        "d=\"M%.1f %.1fl8 8m0 -8l-8 8\"/>",
                        (long long)t->id, col, lx - 4, ly - 4);
        }
        fputs("</svg>", f);
    }
    fputs("</div><div class=\"legend\">", f);
    for (size_t c = 0; c < d->n_curves; c++) {
        const report_trial *t = &d->trials[d->curves[c].trial];
        fprintf(f, "<span><i class=\"sw\" style=\"background:%s\"></i>trial %d (id %lld) ",
                PALETTE[c % NPALETTE], t->number, (long long)t->id);
        if (!strcmp(t->state, "pruned"))
            fprintf(f, "pruned at epoch %d, best ",
                    t->pruned_epoch ? t->pruned_epoch : t->last_epoch);
        num(f, t->value);
        fputs("</span>", f);
    }
    fputs("</div></section>\n", f);
}

/* The colour band of objective V within [LO, HI] (best = last band). */
static int band_of(const report_data *d, double v, double lo, double hi)
{
    double t = hi > lo ? (v - lo) / (hi - lo) : 1;
    if (!d->maximize) t = 1 - t;
    int b = (int)(t * NBANDS);
    return b < 0 ? 0 : b >= NBANDS ? NBANDS - 1 : b;
}

/* Trial T's polyline through the parallel axes at X positions POS with
 * scales SC (M/L commands; a missing value breaks it). */
static void parallel_line(FILE *f, const report_data *d, const report_trial *t, const double *pos,
                          const report_scale *sc)
{
    bool pen = false;
    for (size_t k = 0; k <= d->n_params; k++) {
        double v = k < d->n_params ? t->x[k] : t->value;
        if (isnan(v)) {
            pen = false;
            continue;
        }
        fprintf(f, "%s%.1f %.1f", pen ? "L" : "M", pos[k], report_scale_map(&sc[k], v));
        pen = true;
    }
}

static void parallel(FILE *f, const report_data *d, double lo, double hi)
{
    fputs("<section id=\"parallel\"><h2>Parallel coordinates</h2>", f);
    fputs("<p class=\"note\">One line per completed trial through every searched parameter and, "
          "last, the objective; the colour is the objective (yellow best, purple worst), the "
          "best trial is drawn in red. Lists are categorical axes in their order, "
          "log_uniform parameters log axes.</p>",
          f);
    size_t P = d->n_params;
    if (!P) {
        fputs("<p class=\"note\">The job searched no parameter.</p></section>\n", f);
        return;
    }
    double gap = 150, w = PAD_L + gap * (double)P + 90, h = 380;
    double top = PAD_T + 16, bottom = h - PAD_B;
    svg_open(f, "parallel", w, h, NULL);
    /* Axis k stands at x = pos[k] with the vertical scale sc[k]. */
    double *pos = calloc(P + 1, sizeof *pos);
    report_scale *sc = calloc(P + 1, sizeof *sc);
    if (!pos || !sc) goto done;
    for (size_t k = 0; k <= P; k++) {
        pos[k] = PAD_L + gap * (double)k + 20;
        sc[k] = k < P ? param_scale(&d->params[k], bottom, top)
                      : report_scale_make(lo, hi, false, bottom, top);
    }
    /* Lines, one path per colour band, worst band first. */
    for (int b = 0; b < NBANDS; b++) {
        size_t count = 0;
        fprintf(f,
                "<path class=\"lines\" data-band=\"%d\" fill=\"none\" stroke=\"%s\" "
                "stroke-opacity=\".45\" stroke-width=\"1\" d=\"",
                b, BANDS[b]);
        for (size_t i = 0; i < d->n_trials; i++) {
            const report_trial *t = &d->trials[i];
            if (!t->has_value || strcmp(t->state, "completed") || band_of(d, t->value, lo, hi) != b)
                continue;
            parallel_line(f, d, t, pos, sc);
            count++;
        }
        fprintf(f, "\" data-n=\"%zu\"/>", count);
    }
    if (d->best >= 0) {
        const report_trial *t = &d->trials[d->best];
        fprintf(f,
                "<path class=\"best\" data-trial=\"%lld\" fill=\"none\" stroke=\"#d62728\" "
                "stroke-width=\"2\" d=\"",
                (long long)t->id);
        parallel_line(f, d, t, pos, sc);
        fputs("\"/>", f);
    }
    for (size_t k = 0; k <= P; k++) {
        if (k < P) {
            fputs("<g class=\"axis\" data-param=\"", f);
            report_html(f, d->params[k].name);
            fprintf(f, "\" data-scale=\"%s\">", scale_name(&d->params[k]));
        } else {
            fputs("<g class=\"axis objective\" data-param=\"objective\" data-scale=\"linear\">", f);
        }
        axis(f, &sc[k], 'y', pos[k], k < P ? d->params[k].labels : NULL, 0);
        fprintf(f, "<text class=\"title\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", pos[k],
                top - 12);
        if (k < P) {
            report_html(f, d->params[k].name);
            if (d->params[k].kind == REPORT_LOG) fputs(" (log)", f);
        } else {
            report_html(f, d->metric);
        }
        fputs("</text></g>", f);
    }
done:
    free(pos);
    free(sc);
    fputs("</svg></section>\n", f);
}

static void scatters(FILE *f, const report_data *d, double lo, double hi)
{
    fputs("<section id=\"scatter\"><h2>Objective against each parameter</h2>", f);
    fputs("<p class=\"note\">One dot per completed trial; the best is circled in red. Values "
          "of a list are spread a little sideways so equal values stay visible.</p>",
          f);
    if (!d->n_params) {
        fputs("<p class=\"note\">The job searched no parameter.</p></section>\n", f);
        return;
    }
    double w = 310, h = 250;
    fputs("<div class=\"grid\">", f);
    for (size_t k = 0; k < d->n_params; k++) {
        const report_param *p = &d->params[k];
        fprintf(f,
                "<svg data-chart=\"scatter\" "
                "data-scale=\"%s\" data-param=\"",
                scale_name(p));
        report_html(f, p->name);
        fprintf(f, "\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" role=\"img\">", w,
                h, w, h);
        report_scale xs = param_scale(p, PAD_L, w - PAD_R);
        report_scale ys = report_scale_make(lo, hi, false, h - PAD_B, PAD_T);
        fputs("<g class=\"axis\">", f);
        axis(f, &xs, 'x', h - PAD_B, p->labels, h - PAD_B - PAD_T);
        axis(f, &ys, 'y', PAD_L, NULL, w - PAD_L - PAD_R);
        fprintf(f, "<text class=\"title\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
                (PAD_L + w - PAD_R) / 2, h - 8);
        report_html(f, p->name);
        fprintf(f, "%s</text></g>", p->kind == REPORT_LOG ? " (log scale)" : "");
        double slot = p->kind == REPORT_LIST
                          ? (w - PAD_L - PAD_R) / (double)(p->n_labels ? p->n_labels : 1)
                          : 0;
        size_t count = 0;
        fputs("<path class=\"dots\" fill=\"none\" stroke=\"#1f77b4\" stroke-opacity=\".6\" "
              "stroke-width=\"5\" stroke-linecap=\"round\" d=\"",
              f);
        for (size_t i = 0; i < d->n_trials; i++) {
            const report_trial *t = &d->trials[i];
            if (!t->has_value || strcmp(t->state, "completed") || isnan(t->x[k])) continue;
            double x = report_scale_map(&xs, t->x[k]);
            if (slot > 0) // a fixed, per-trial sideways offset within +-30% of the slot
                x += ((double)((uint32_t)t->number * 2654435761u % 1000u) / 1000.0 - 0.5) * slot *
                     0.6;
            fprintf(f, "M%.1f %.1fh0", x, report_scale_map(&ys, t->value));
            count++;
        }
        fprintf(f, "\" data-n=\"%zu\"/>", count);
        if (d->best >= 0 && !isnan(d->trials[d->best].x[k])) {
            const report_trial *t = &d->trials[d->best];
            fprintf(f,
                    "<circle class=\"best\" cx=\"%.1f\" cy=\"%.1f\" r=\"6\" fill=\"none\" "
                    "stroke=\"#d62728\" stroke-width=\"2\"/>",
                    report_scale_map(&xs, t->x[k]), report_scale_map(&ys, t->value));
        }
        fputs("</svg>", f);
    }
    fputs("</div></section>\n", f);
}

/* Importance of each parameter of D into IMP (NaN when it cannot be told). */
static void importances(const report_data *d, double *imp)
{
    double *x = malloc((d->n_trials ? d->n_trials : 1) * sizeof *x);
    double *y = malloc((d->n_trials ? d->n_trials : 1) * sizeof *y);
    for (size_t k = 0; k < d->n_params; k++) {
        imp[k] = NAN;
        if (!x || !y) continue;
        size_t n = 0;
        for (size_t i = 0; i < d->n_trials; i++) {
            const report_trial *t = &d->trials[i];
            if (!t->has_value || strcmp(t->state, "completed")) continue;
            x[n] = t->x[k];
            y[n++] = t->value;
        }
        const report_param *p = &d->params[k];
        imp[k] = report_importance(x, y, n, p->kind == REPORT_LIST ? (int)p->n_labels : 0,
                                   report_bins_for(n));
    }
    free(x);
    free(y);
}

static void importance(FILE *f, const report_data *d)
{
    fputs("<section id=\"importance\"><h2>Parameter importance</h2>", f);
    fputs("<p class=\"note\">The share of the variance of the objective over the completed "
          "trials that each parameter explains on its own: a one-way analysis of variance with "
          "the parameter's values as groups (a list's values; for a distribution, up to 10 bins "
          "of about equal counts, one per 5 trials), reported as epsilon squared, "
          "(SS<sub>between</sub> &minus; (k&minus;1)&middot;MS<sub>within</sub>) / "
          "SS<sub>total</sub>, which does not reward a parameter for the noise its groups pick "
          "up by chance. The shares need not add up to 100%: what is left is noise (seeds, "
          "data order) and interactions between parameters. n/a: it cannot be told (fewer "
          "than 3 completed trials, a constant objective, or every value tried once).</p>",
          f);
    if (!d->n_params) {
        fputs("<p class=\"note\">The job searched no parameter.</p></section>\n", f);
        return;
    }
    double *imp = malloc(d->n_params * sizeof *imp);
    size_t *order = malloc(d->n_params * sizeof *order);
    if (!imp || !order) goto done;
    importances(d, imp);
    for (size_t k = 0; k < d->n_params; k++)
        order[k] = k;
    for (size_t i = 1; i < d->n_params; i++) // by importance, unknown last; few parameters
        for (size_t j = i; j > 0; j--) {
            double a = imp[order[j - 1]], b = imp[order[j]];
            if (!((isnan(a) && !isnan(b)) || (!isnan(b) && b > a))) break;
            size_t s = order[j];
            order[j] = order[j - 1];
            order[j - 1] = s;
        }
    double row = 26, w = CHART_W, label = 170, barw = w - label - 120;
    double h = PAD_T + row * (double)d->n_params + 10;
    svg_open(f, "importance", w, h, NULL);
    for (size_t r = 0; r < d->n_params; r++) {
        size_t k = order[r];
        double y = PAD_T + row * (double)r;
        double v = imp[k];
        fputs("<g class=\"imp\" data-param=\"", f);
        report_html(f, d->params[k].name);
        fprintf(f, "\" data-value=\"%.6f\"><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">",
                isnan(v) ? -1.0 : v, label - 8, y + 15);
        report_html(f, d->params[k].name);
        fputs("</text>", f);
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"18\" fill=\"#eee\"/>",
                label, y + 2, barw);
        if (!isnan(v))
            fprintf(f,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"18\" fill=\"#1f77b4\"/>"
                    "<text x=\"%.1f\" y=\"%.1f\">%.1f%%</text>",
                    label, y + 2, barw * v, label + barw + 8, y + 15, 100 * v);
        else
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">n/a</text>", label + barw + 8, y + 15);
        fputs("</g>", f);
    }
    fputs("</svg>", f);
done:
    free(imp);
    free(order);
    fputs("</section>\n", f);
}

static void confusion(FILE *f, const report_data *d)
{
    const report_eval *e = &d->eval;
    fputs("<section id=\"confusion\"><h2>The chosen model on the test set</h2>", f);
    if (d->chosen >= 0) {
        const report_trial *c = &d->trials[d->chosen];
        fprintf(f,
                "<p>Trial number %d (id %lld), the best completed trial when the job ended, "
                "evaluated once on the test set: <b>test accuracy %.4f</b>",
                c->number, (long long)c->id, c->test_accuracy);
        if (e->present) fprintf(f, " over %lld images", (long long)e->images);
        fputs(".</p>", f);
    }
    if (!e->present) {
        fputs("<p class=\"note\">No confusion matrix: ", f);
        report_html(f, e->note ? e->note : "unknown reason");
        if (e->path) {
            fputs(" (", f);
            report_html(f, e->path);
            fputs(")", f);
        }
        fputs(".</p></section>\n", f);
        return;
    }
    int n = e->n;
    if (n <= MAX_CM_DRAWN) {
        double cell = n <= 12 ? 40 : 480.0 / n, left = 150, topm = 130;
        double w = left + cell * n + 20, h = topm + cell * n + 30;
        svg_open(f, "confusion", w, h, NULL);
        fprintf(f, "<text x=\"%.1f\" y=\"14\" text-anchor=\"middle\">predicted class</text>",
                left + cell * n / 2);
        fprintf(f,
                "<text x=\"12\" y=\"%.1f\" transform=\"rotate(-90 12 %.1f)\" "
                "text-anchor=\"middle\">true class</text>",
                topm + cell * n / 2, topm + cell * n / 2);
        for (int i = 0; i < n; i++) {
            fprintf(f, "<text class=\"cls\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", left - 6,
                    topm + cell * i + cell / 2 + 4);
            report_html(f, e->classes[i]);
            fprintf(f, "</text><text class=\"cls\" transform=\"translate(%.1f %.1f) rotate(-60)\">",
                    left + cell * i + cell / 2 + 4, topm - 6);
            report_html(f, e->classes[i]);
            fputs("</text>", f);
        }
        for (int i = 0; i < n; i++) {
            int64_t rs = 0;
            for (int j = 0; j < n; j++)
                rs += e->cm[(size_t)i * n + j];
            for (int j = 0; j < n; j++) {
                int64_t v = e->cm[(size_t)i * n + j];
                double share = rs ? (double)v / (double)rs : 0;
                fprintf(
                    f,
                    "<rect class=\"cell\" data-true=\"%d\" data-pred=\"%d\" data-count=\"%lld\" "
                    "x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                    "fill=\"%s\" fill-opacity=\"%.3f\" stroke=\"#ddd\"><title>",
                    i, j, (long long)v, left + cell * j, topm + cell * i, cell, cell,
                    i == j ? "#1f77b4" : "#d62728", v ? 0.12 + 0.88 * share : 0.0);
                report_html(f, e->classes[i]);
                fputs(" predicted as ", f);
                report_html(f, e->classes[j]);
                fprintf(f, ": %lld</title></rect>", (long long)v);
                if (cell >= 24)
                    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\"%s>%lld</text>",
                            left + cell * j + cell / 2, topm + cell * i + cell / 2 + 4,
                            share > 0.6 ? " style=\"fill:#fff\"" : "", (long long)v);
            }
        }
        fputs("</svg><p class=\"note\">Rows are the true classes, columns the predicted ones; "
              "the shade is the share of the row (the diagonal in blue).</p>",
              f);
    } else {
        fprintf(f,
                "<p class=\"note\">The matrix of %d classes is too large to draw; the "
                "per-class figures follow.</p>",
                n);
    }
    fputs("<table id=\"per-class\"><tr><th>class</th><th>precision</th><th>recall</th>"
          "<th>test images</th></tr>",
          f);
    for (int c = 0; c < n; c++) {
        double p, r;
        report_class_pr(e->cm, n, c, &p, &r);
        int64_t support = 0;
        for (int j = 0; j < n; j++)
            support += e->cm[(size_t)c * n + j];
        fputs("<tr class=\"class\"><td>", f);
        report_html(f, e->classes[c]);
        fputs("</td><td class=\"num\">", f);
        num(f, p);
        fputs("</td><td class=\"num\">", f);
        num(f, r);
        fprintf(f, "</td><td class=\"num\">%lld</td></tr>", (long long)support);
    }
    fputs("</table><p class=\"note\">Precision: of the images predicted as the class, the share "
          "that are; recall: of the images of the class, the share found (\"-\": never "
          "predicted, or no image of it). From ",
          f);
    report_html(f, e->path);
    fputs(".</p></section>\n", f);
}

static int cmp_number(const void *a, const void *b)
{
    int u = (*(const report_trial *const *)a)->number,
        v = (*(const report_trial *const *)b)->number;
    return (u > v) - (u < v);
}

static void failures(FILE *f, const report_data *d)
{
    size_t total = d->counts[3] + d->counts[5];
    fputs("<section id=\"failures\"><h2>Failed and pruned trials</h2>", f);
    if (!total) {
        fputs("<p class=\"note\">None.</p></section>\n", f);
        return;
    }
    fputs("<table><tr><th>number</th><th>id</th><th>state</th><th>runs</th><th>exit</th>"
          "<th>last epoch</th><th>reason</th></tr>",
          f);
    /* By number (the trials array is in finishing order). */
    const report_trial **rows = malloc(total * sizeof *rows);
    size_t n = 0;
    for (size_t i = 0; rows && i < d->n_trials && n < total; i++)
        if (!strcmp(d->trials[i].state, "failed") || !strcmp(d->trials[i].state, "pruned"))
            rows[n++] = &d->trials[i];
    if (rows) qsort(rows, n, sizeof *rows, cmp_number);
    size_t shown = 0;
    for (; shown < n && shown < REPORT_MAX_FAILURES; shown++) {
        const report_trial *t = rows[shown];
        fprintf(f,
                "<tr class=\"failure\" data-trial=\"%lld\" data-state=\"%s\"><td class=\"num\">%d"
                "</td><td class=\"num\">%lld</td><td>%s</td><td class=\"num\">%d</td>"
                "<td class=\"num\">",
                (long long)t->id, t->state, t->number, (long long)t->id, t->state, t->attempt + 1);
        if (t->has_exit)
            fprintf(f, "%lld", (long long)t->exit_code);
        else
            fputs("-", f);
        fprintf(f, "</td><td class=\"num\">%d</td><td>",
                t->pruned_epoch ? t->pruned_epoch : t->last_epoch);
        opt_text(f, t->error);
        fputs("</td></tr>", f);
    }
    free(rows);
    fputs("</table>", f);
    if (shown < total)
        fprintf(f,
                "<p class=\"note\">%zu more not listed; queries 5 and 9 of sql/queries.sql list "
                "them all.</p>",
                total - shown);
    fputs("</section>\n", f);
}

void report_render(FILE *f, const report_data *d)
{
    double lo, hi;
    value_extent(d, &lo, &hi);
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
          "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
          "style-src 'unsafe-inline'\">"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
          "<title>sweepd report: job ",
          f);
    fprintf(f, "%lld ", (long long)d->job_id);
    report_html(f, d->name);
    fprintf(f, "</title><style>%s</style></head><body data-job=\"%lld\">\n", CSS,
            (long long)d->job_id);
    summary(f, d);
    history(f, d, lo, hi);
    curves(f, d);
    parallel(f, d, lo, hi);
    scatters(f, d, lo, hi);
    importance(f, d);
    confusion(f, d);
    failures(f, d);
    char when[32] = "";
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(f, "<footer><p class=\"note\">Written by sweepctl report at %s from ", when);
    report_html(f, d->db_path);
    fprintf(f,
            " (read in %.3f s). A snapshot: running trials are counted, not drawn.</p>"
            "</footer></body></html>\n",
            d->load_seconds);
}

/* ---- the command ---------------------------------------------------------- */

/* The daemon's database path from its status reply into OUT. Returns 0,
 * CTL_EXIT_UNREACHABLE or CTL_EXIT_ERROR (printed). */
static int daemon_db(const char *socket_path, char *out, size_t outlen)
{
    char msg[512];
    json_t *req = json_pack("{s:s}", "op", "status"), *reply = NULL;
    int rc = req ? ctl_request(socket_path, req, &reply, msg, sizeof msg) : CTL_EXIT_ERROR;
    json_decref(req);
    if (rc == CTL_EXIT_UNREACHABLE) {
        ctl_print_unreachable(stderr, socket_path, msg);
        fprintf(stderr, "sweepctl: or read the database directly: sweepctl report JOB --db "
                        "FILE\n");
        return rc;
    }
    if (rc != 0) {
        fprintf(stderr, "sweepctl: %s\n", req ? msg : "out of memory");
        return CTL_EXIT_ERROR;
    }
    const char *db = json_string_value(json_object_get(json_object_get(reply, "daemon"), "db"));
    if (!ctl_reply_ok(reply) || !db) {
        if (!ctl_reply_ok(reply))
            ctl_print_error(stderr, reply);
        else
            fprintf(stderr, "sweepctl: the daemon's status names no database; use --db FILE\n");
        json_decref(reply);
        return CTL_EXIT_ERROR;
    }
    snprintf(out, outlen, "%s", db);
    json_decref(reply);
    return 0;
}

int ctl_report(const ctl_args *a)
{
    char dbbuf[PATH_MAX], outbuf[64], msg[1024];
    const char *db = a->db;
    if (!db) {
        int rc = daemon_db(a->socket_path, dbbuf, sizeof dbbuf);
        if (rc) return rc;
        db = dbbuf;
    }
    const char *out = a->output;
    if (!out) {
        snprintf(outbuf, sizeof outbuf, "report-%lld.html", a->id);
        out = outbuf;
    }
    report_data *d = NULL;
    if (report_db_load(db, a->id, &d, msg, sizeof msg) < 0) {
        char *e = utf8_escaped(msg);
        fprintf(stderr, "sweepctl: %s\n", e ? e : msg);
        free(e);
        return CTL_EXIT_ERROR;
    }
    size_t tl = strlen(out) + 32;
    char *tmp = malloc(tl);
    int rc = CTL_EXIT_ERROR;
    FILE *f = NULL;
    if (!tmp) {
        fprintf(stderr, "sweepctl: out of memory\n");
        goto done;
    }
    snprintf(tmp, tl, "%s.tmp.%d", out, (int)getpid());
    if (!(f = fopen(tmp, "w"))) {
        fprintf(stderr, "sweepctl: cannot write %s: %s\n", tmp, strerror(errno));
        goto done;
    }
    report_render(f, d);
    int werr = ferror(f) ? (errno ? errno : EIO) : 0;
    if (fclose(f) != 0 && !werr) werr = errno ? errno : EIO;
    f = NULL;
    if (werr || rename(tmp, out) != 0) {
        fprintf(stderr, "sweepctl: cannot write %s: %s\n", werr ? tmp : out,
                strerror(werr ? werr : errno));
        unlink(tmp);
        goto done;
    }
    char abs[PATH_MAX];
    printf("%s\n", realpath(out, abs) ? abs : out);
    rc = fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_ERROR;
done:
    free(tmp);
    report_data_free(d);
    return rc;
}
