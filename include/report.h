/* report — `sweepctl report JOB [-o FILE.html] [--db FILE]`: one
 * self-contained HTML page (inline CSS and SVG, no script, no font, image or
 * link the page would fetch) showing a job's search: optimization history,
 * learning curves of the top trials, parallel coordinates, one scatter per
 * searched parameter, parameter importance, the chosen model's confusion
 * matrix and test accuracy, and the failed and pruned trials (README.md
 * "Report"). The modules:
 *   report_db.c     reads the database read-only (sqlite3_open_v2 with
 *                   SQLITE_OPEN_READONLY, one short read transaction) and the
 *                   evaluated trial's eval.ndjson into a report_data: the one
 *                   file of sweepctl that holds SQL
 *   report_stats.c  the pure numbers: importance (one-way ANOVA), per-class
 *                   precision and recall, curve thinning
 *   report_svg.c    the pure drawing pieces: scales and ticks, number
 *                   formatting, HTML escaping, axes
 *   report.c        the page itself, and the command (finding the database,
 *                   writing the file)
 * Elements the tests count carry data-* attributes: every history point is a
 * <circle class="pt" data-trial=ID data-state=STATE>, every learning curve a
 * <path class="curve" data-trial=ID data-metric=M> (a pruned one ends in a
 * <path class="cut" data-trial=ID>), every parallel-coordinates axis a
 * <g class="axis" data-param=NAME data-scale=linear|log|categorical>, every
 * scatter an <svg data-chart="scatter" data-param=NAME data-scale=...>. */
#ifndef SWEEP_REPORT_H
#define SWEEP_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ctl.h"

#define REPORT_TOP_COMPLETED 8   // learning curves: the best completed trials shown
#define REPORT_TOP_PRUNED 4      // ... and the best pruned ones, cut where they stopped
#define REPORT_CURVE_POINTS 200  // at most this many epochs of a curve are drawn
#define REPORT_MAX_FAILURES 1000 // rows of the failed-and-pruned table (the rest are counted)

/* ---- the data (report_db.c fills it) ---------------------------------- */

typedef enum {
    REPORT_LIST = 0, // a list of values: a categorical axis in the list's order
    REPORT_UNIFORM,  // {"uniform":[lo,hi]}: a linear axis
    REPORT_LOG,      // {"log_uniform":[lo,hi]}: a log axis
    REPORT_INT,      // {"int_uniform":[lo,hi]}: a linear axis
} report_kind;

/* One searched parameter (a key of the job's "space"). */
typedef struct {
    char *name;       // the key (owned)
    report_kind kind; // how it was searched
    double lo, hi;    // a distribution's bounds (not for lists)
    char **labels;    // lists: each value as text, in axis order (owned, n_labels)
    json_t **choices; // lists: the values in axis order (owned references, n_labels)
    size_t n_labels;  // lists: values in the list
} report_param;

/* One trial, with what the report shows of it. */
typedef struct {
    int64_t id;           // trials.id
    int number;           // trials.number
    char state[12];       // trials.state
    bool has_value;       // an objective value exists: completed (its best epoch's), or
                          // pruned (its best over the epochs it ran)
    double value;         // that value
    bool has_test;        // test_accuracy is set (the evaluated, chosen trial)
    double test_accuracy; // trials.test_accuracy
    double *x;            // per parameter: its value (lists: the index in the list), NaN when
                          // missing (owned, n_params entries)
    char *finished_at;    // trials.finished_at (owned, NULL when unset)
    char *error;          // trials.error (owned, NULL when unset)
    bool has_exit;        // exit_code is set
    int64_t exit_code;    // trials.exit_code
    int pruned_epoch;     // trials.pruned_epoch, 0 when unset
    int last_epoch;       // trials.last_epoch, 0 when unset
    int attempt;          // trials.attempt
    char *out_dir;        // trials.out_dir (owned, NULL when unset)
} report_trial;

/* One epoch of a learning curve; NaN where the database has NULL. */
typedef struct {
    int epoch;             // trial_metrics.epoch
    double train_loss;     // trial_metrics.train_loss
    double train_accuracy; // trial_metrics.train_accuracy
    double val_loss;       // trial_metrics.val_loss
    double val_accuracy;   // trial_metrics.val_accuracy
} report_point;

/* The learning curve of one shown trial. */
typedef struct {
    size_t trial;      // index into report_data.trials
    report_point *pts; // epochs in order, thinned to at most REPORT_CURVE_POINTS (owned)
    size_t n;          // entries of pts
} report_curve;

/* The test-set evaluation of the chosen trial (its out_dir/eval.ndjson). */
typedef struct {
    bool present;    // a result object was read
    char *path;      // the file read or looked for (owned, NULL when no trial was evaluated)
    char *note;      // why there is no matrix, for the page (owned, NULL when present)
    int n;           // classes
    char **classes;  // class names (owned, n)
    int64_t *cm;     // confusion matrix, n x n, rows = true class (owned)
    double accuracy; // the file's accuracy, NaN when absent
    int64_t images;  // images evaluated
} report_eval;

/* Everything one page shows. */
typedef struct {
    int64_t job_id;       // jobs.id
    char *name;           // jobs.name (owned)
    char *state;          // jobs.state (owned)
    char *strategy;       // jobs.strategy (owned)
    char *metric;         // jobs.objective_metric (owned)
    bool maximize;        // objective_goal is maximize
    char *submitted_at;   // (owned, NULL when unset)
    char *started_at;     // (owned, NULL when unset)
    char *finished_at;    // (owned, NULL when unset)
    char *error;          // jobs.error (owned, NULL when unset)
    char *test_error;     // jobs.test_error: why no test accuracy (owned, NULL when unset)
    int64_t trials_total; // jobs.trials_total
    int64_t counts[6];    // trials per state: queued, running, completed, failed, cancelled,
                          // pruned
    report_param *params; // the searched parameters, by name (owned)
    size_t n_params;      // entries of params
    report_trial *trials; // every trial: finished ones in finishing order (finished_at,
                          // then number), then the others by number (owned)
    size_t n_trials;      // entries of trials
    long best;            // index of the best completed trial, -1 when none
    long chosen;          // index of the evaluated trial (test_accuracy set), -1 when none
    report_curve *curves; // the learning curves shown, best first (owned)
    size_t n_curves;      // entries of curves
    report_eval eval;     // the chosen trial's test-set evaluation
    char *db_path;        // the database read (owned)
    double load_seconds;  // time spent reading (the database and the file)
} report_data;

/* Reads job JOB_ID from the database at DB_PATH (read-only; every query in
 * one read transaction, ended before the function returns; the eval file is
 * read after it). On 0 *OUT is owned by the caller (report_data_free).
 * ERR_NOTFOUND when there is no such job, ERR_DB (with the database's
 * message naming the file), ERR_NOMEM; MSG says why. */
int report_db_load(const char *db_path, int64_t job_id, report_data **out, char *msg,
                   size_t msglen);
void report_data_free(report_data *d);
/* Parses the eval output TEXT (LEN bytes: lines; the last JSON object
 * without an "event" key is the result; an "error" event line gives the
 * note) into E (E->path untouched). Returns 0 when a matrix was read, 1 when
 * the text has none (E->note says why), ERR_NOMEM. */
int report_eval_parse(const char *text, size_t len, report_eval *e);

/* ---- pure numbers (report_stats.c) ------------------------------------ */

/* The share of the variance of Y that parameter X explains alone (one-way
 * ANOVA, epsilon squared: (SS_between - (k-1) MS_within) / SS_total, clamped
 * to [0, 1]). With NCAT > 0, X holds category indices 0..NCAT-1 (the groups);
 * else X is numeric and is cut into BINS groups of about equal counts (ties
 * never split; quantiles, so the scale, log or linear, does not matter).
 * Pairs where X or Y is NaN are skipped. Returns NaN when it cannot be told:
 * fewer than 3 pairs, Y constant, or no pair left to estimate the noise
 * (every group of one). */
double report_importance(const double *x, const double *y, size_t n, int ncat, int bins);
/* The number of bins report_importance uses for N numeric pairs: N/5, at
 * least 2, at most 10. */
int report_bins_for(size_t n);
/* Precision and recall of class C from the N x N confusion matrix CM (rows =
 * true class): NaN where the class was never predicted (precision) or never
 * present (recall). */
void report_class_pr(const int64_t *cm, int n, int c, double *precision, double *recall);
/* The epoch stride that keeps a curve of LAST epochs at or under MAX points
 * when every stride-th epoch and the last are drawn: 1 when it already fits. */
int report_stride(int last, int max);

/* ---- drawing pieces (report_svg.c) ------------------------------------ */

/* A map from data values to SVG coordinates. */
typedef struct {
    bool log;      // logarithmic (d0, d1 > 0)
    int ncat;      // > 0: categorical with ncat slots (values are indices)
    double d0, d1; // the domain (categorical: unused)
    double r0, r1; // the range in pixels (r1 < r0 for a y axis)
    bool integer;  // ticks at whole numbers only (epochs, counts, int_uniform)
} report_scale;

/* A linear or log scale over [D0, D1] -> [R0, R1]. A degenerate domain (D0
 * == D1, or a log one not > 0) is widened so it still maps. */
report_scale report_scale_make(double d0, double d1, bool log, double r0, double r1);
/* A categorical scale with NCAT slots; index i maps to the middle of slot i. */
report_scale report_scale_cat(int ncat, double r0, double r1);
/* V mapped into the range (clamped to it). */
double report_scale_map(const report_scale *s, double v);
/* Up to MAX tick values of S into TICKS: for a linear scale 1, 2 or 5 times
 * a power of ten apart (at least 1 apart when S->integer); for a log scale the powers of ten inside
 * the domain (with their 2 and 5 multiples when fewer than three powers fit); none for a
 * categorical one. Returns the count. */
int report_ticks(const report_scale *s, double *ticks, int max);
/* The data range [*LO, *HI] of the N values V (NaN skipped), padded by 5%
 * (log: in log space); 0..1 when no value is finite. */
void report_extent(const double *v, size_t n, bool log, double *lo, double *hi);
/* A number for a label: 4 significant digits, no trailing zeros, "1e-05"
 * style below 1e-3 and at or above 1e5; "-" for NaN. Returns BUF. */
char *report_fmt(char *buf, size_t n, double v);
/* Writes S to F escaped for HTML text and attribute values: first as for the
 * terminal (utf8_escape: controls and invalid UTF-8 become \xHH), then &, <,
 * >, " and ' as entities. NULL writes nothing. */
void report_html(FILE *f, const char *s);
/* report_html into a new string (caller frees); NULL when out of memory. */
char *report_html_str(const char *s);

/* ---- the page and the command (report.c) ------------------------------ */

/* Writes the whole page for D to F. */
void report_render(FILE *f, const report_data *d);
/* `sweepctl report`: finds the database (A->db, else the "db" of the
 * daemon's status reply at A->socket_path), reads job A->id, writes the page
 * to A->output (default report-JOB.html; through a temporary file renamed
 * into place) and prints its path. Returns the exit code: 0, 1 (no such
 * job, a database or write error), 3 (no --db and the daemon is
 * unreachable). */
int ctl_report(const ctl_args *a);

#endif
