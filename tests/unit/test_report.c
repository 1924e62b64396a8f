/* test_report — the pure parts of `sweepctl report` (include/report.h): the
 * command line, scales and ticks, number labels, parameter importance,
 * per-class precision and recall, curve thinning, HTML escaping, the eval
 * output parser, the page's countable elements for a hand-made job, and the
 * read-only load of a small database built here from sql/schema.sql. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "errors.h"
#include "fileio.h"
#include "report.h"
#include "util_jpeg.h"

static int parse(ctl_args *a, char **argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    char msg[256];
    return ctl_parse_args(a, argc, argv, NULL, msg, sizeof msg);
}

static void test_args(void **state)
{
    (void)state;
    ctl_args a;
    assert_int_equal(parse(&a, (char *[]){"sweepctl", "report", "7", NULL}), 0);
    assert_int_equal(a.cmd, CTL_CMD_REPORT);
    assert_int_equal(a.id, 7);
    assert_null(a.output);
    assert_null(a.db);
    assert_int_equal(
        parse(&a, (char *[]){"sweepctl", "report", "-o", "x.html", "3", "--db", "d.db", NULL}), 0);
    assert_string_equal(a.output, "x.html");
    assert_string_equal(a.db, "d.db");
    assert_int_equal(a.id, 3);
    assert_int_equal(
        parse(&a, (char *[]){"sweepctl", "report", "3", "-oy.html", "--db=e.db", NULL}), 0);
    assert_string_equal(a.output, "y.html");
    assert_string_equal(a.db, "e.db");
    assert_int_equal(parse(&a, (char *[]){"sweepctl", "report", "3", "-o", NULL}), ERR_INVALID);
    assert_int_equal(parse(&a, (char *[]){"sweepctl", "report", "3", "--db=", NULL}), ERR_INVALID);
    assert_int_equal(parse(&a, (char *[]){"sweepctl", "report", NULL}), ERR_INVALID);
    assert_int_equal(parse(&a, (char *[]){"sweepctl", "report", "0", NULL}), ERR_INVALID);
    /* --db belongs to report only. */
    assert_int_equal(parse(&a, (char *[]){"sweepctl", "best", "3", "--db", "d.db", NULL}),
                     ERR_INVALID);
}

static void test_scales(void **state)
{
    (void)state;
    report_scale s = report_scale_make(0, 10, false, 100, 200);
    assert_true(fabs(report_scale_map(&s, 5) - 150) < 1e-9);
    assert_true(fabs(report_scale_map(&s, -3) - 100) < 1e-9); // clamped
    assert_true(fabs(report_scale_map(&s, 30) - 200) < 1e-9);
    assert_true(fabs(report_scale_map(&s, NAN) - 100) < 1e-9);
    /* A y axis runs the other way. */
    s = report_scale_make(0, 1, false, 300, 20);
    assert_true(fabs(report_scale_map(&s, 0.25) - 230) < 1e-9);
    /* Log: 1e-3 is half-way between 1e-4 and 1e-2. */
    s = report_scale_make(1e-4, 1e-2, true, 0, 100);
    assert_true(s.log);
    assert_true(fabs(report_scale_map(&s, 1e-3) - 50) < 1e-9);
    assert_true(fabs(report_scale_map(&s, 1e-4) - 0) < 1e-9);
    /* A log domain that is not positive falls back to linear. */
    s = report_scale_make(0, 1, true, 0, 100);
    assert_false(s.log);
    /* Degenerate domains are widened, and the value lands in the middle. */
    s = report_scale_make(3, 3, false, 0, 100);
    assert_true(s.d0 < 3 && s.d1 > 3);
    assert_true(fabs(report_scale_map(&s, 3) - 50) < 1e-9);
    s = report_scale_make(0.01, 0.01, true, 0, 100);
    assert_true(fabs(report_scale_map(&s, 0.01) - 50) < 1e-9);
    /* Categorical: slot middles. */
    s = report_scale_cat(4, 0, 400);
    assert_true(fabs(report_scale_map(&s, 0) - 50) < 1e-9);
    assert_true(fabs(report_scale_map(&s, 3) - 350) < 1e-9);
    double t[8];
    assert_int_equal(report_ticks(&s, t, 8), 0);
}

static void test_ticks(void **state)
{
    (void)state;
    double t[16];
    report_scale s = report_scale_make(0, 1, false, 0, 1);
    int n = report_ticks(&s, t, 16);
    assert_int_equal(n, 6);
    for (int i = 0; i < n; i++)
        assert_true(fabs(t[i] - 0.2 * i) < 1e-12);
    s = report_scale_make(0.62, 0.91, false, 0, 1);
    n = report_ticks(&s, t, 16);
    assert_true(n >= 3);
    for (int i = 0; i < n; i++)
        assert_true(t[i] >= 0.62 - 1e-12 && t[i] <= 0.91 + 1e-12);
    assert_true(fabs(t[0] - 0.65) < 1e-12 && fabs(t[1] - 0.7) < 1e-12);
    /* Log: the powers of ten inside the domain. */
    s = report_scale_make(1e-4, 0.1, true, 0, 1);
    n = report_ticks(&s, t, 16);
    assert_int_equal(n, 4);
    assert_true(fabs(t[0] - 1e-4) < 1e-16 && fabs(t[3] - 0.1) < 1e-12);
    /* Fewer than three powers: 1, 2 and 5 times them. */
    s = report_scale_make(0.01, 0.06, true, 0, 1);
    n = report_ticks(&s, t, 16);
    assert_int_equal(n, 3);
    assert_true(fabs(t[0] - 0.01) < 1e-12 && fabs(t[1] - 0.02) < 1e-12 &&
                fabs(t[2] - 0.05) < 1e-12);
    /* Whole numbers only: epochs 1..3 tick at 1, 2, 3, not 1.5. */
    s = report_scale_make(1, 3, false, 0, 1);
    s.integer = true;
    n = report_ticks(&s, t, 16);
    assert_int_equal(n, 3);
    assert_true(t[0] == 1 && t[1] == 2 && t[2] == 3);
    /* MAX is respected. */
    s = report_scale_make(0, 100, false, 0, 1);
    assert_int_equal(report_ticks(&s, t, 2), 2);
}

static void test_extent_fmt(void **state)
{
    (void)state;
    double lo, hi;
    double v[] = {0.5, NAN, 0.9, 0.7};
    report_extent(v, 4, false, &lo, &hi);
    assert_true(fabs(lo - 0.48) < 1e-12 && fabs(hi - 0.92) < 1e-12);
    double w[] = {1e-3, 1e-1};
    report_extent(w, 2, true, &lo, &hi);
    assert_true(fabs(log10(lo) + 3.1) < 1e-9 && fabs(log10(hi) + 0.9) < 1e-9);
    report_extent(v, 0, false, &lo, &hi);
    assert_true(lo == 0 && hi == 1);
    char b[32];
    assert_string_equal(report_fmt(b, sizeof b, 0.87341), "0.8734");
    assert_string_equal(report_fmt(b, sizeof b, 0.2), "0.2");
    assert_string_equal(report_fmt(b, sizeof b, 1e-5), "1e-05");
    assert_string_equal(report_fmt(b, sizeof b, 0), "0");
    assert_string_equal(report_fmt(b, sizeof b, 123456), "1.23e+05");
    assert_string_equal(report_fmt(b, sizeof b, NAN), "-");
}

static void test_importance(void **state)
{
    (void)state;
    /* Exact cases: groups {1,1} and {3,3} explain everything. */
    double x1[] = {0, 0, 1, 1}, y1[] = {1, 1, 3, 3};
    assert_true(fabs(report_importance(x1, y1, 4, 2, 0) - 1) < 1e-12);
    /* No effect: the group means are equal; clamped at 0. */
    double y2[] = {1, 3, 1, 3};
    assert_true(report_importance(x1, y2, 4, 2, 0) == 0);
    /* (SSB 4 - 1 * MSW 2) / SST 8 = 0.25. */
    double y3[] = {0, 2, 2, 4};
    assert_true(fabs(report_importance(x1, y3, 4, 2, 0) - 0.25) < 1e-12);
    /* Cannot be told: too few pairs, constant objective, every group of one. */
    assert_true(isnan(report_importance(x1, y1, 2, 2, 0)));
    double yc[] = {2, 2, 2, 2};
    assert_true(isnan(report_importance(x1, yc, 4, 2, 0)));
    double x4[] = {0, 1, 2, 3};
    assert_true(isnan(report_importance(x4, y3, 4, 4, 0)));
    /* NaN pairs and out-of-range categories are skipped. */
    double x5[] = {0, 0, NAN, 1, 1, 7}, y5[] = {1, 1, 100, 3, 3, 100};
    assert_true(fabs(report_importance(x5, y5, 6, 2, 0) - 1) < 1e-12);
    /* Numeric: y rising with x explains most; quantile bins do not care
     * about the scale (the same for log-spaced x). */
    double xn[60], xl[60], yn[60];
    for (int i = 0; i < 60; i++) {
        xn[i] = i;
        xl[i] = pow(10, -4 + 3 * i / 59.0);
        yn[i] = i + ((i * 7) % 5) * 0.5;
    }
    double a = report_importance(xn, yn, 60, 0, report_bins_for(60));
    double b = report_importance(xl, yn, 60, 0, report_bins_for(60));
    assert_true(a > 0.9 && a <= 1);
    assert_true(fabs(a - b) < 1e-12);
    /* Ties are never split: a constant x is one group, so it explains nothing. */
    double xt[] = {5, 5, 5, 5, 5, 5}, yt[] = {0, 1, 2, 3, 4, 5};
    assert_true(report_importance(xt, yt, 6, 0, 3) == 0);
    assert_int_equal(report_bins_for(3), 2);
    assert_int_equal(report_bins_for(30), 6);
    assert_int_equal(report_bins_for(10000), 10);
}

static void test_class_pr_stride(void **state)
{
    (void)state;
    int64_t cm[] = {8, 2, 0, 1, 9, 0, 0, 0, 0};
    double p, r;
    report_class_pr(cm, 3, 0, &p, &r);
    assert_true(fabs(p - 8.0 / 9) < 1e-12 && fabs(r - 0.8) < 1e-12);
    report_class_pr(cm, 3, 1, &p, &r);
    assert_true(fabs(p - 9.0 / 11) < 1e-12 && fabs(r - 0.9) < 1e-12);
    report_class_pr(cm, 3, 2, &p, &r); // never predicted, never present
    assert_true(isnan(p) && isnan(r));
    assert_int_equal(report_stride(10, 200), 1);
    assert_int_equal(report_stride(200, 200), 1);
    for (int last = 201; last < 20000; last += 137) {
        int s = report_stride(last, 200);
        assert_true(last / s + 1 <= 200);
        assert_true(s == 1 || last / (s - 1) + 1 > 200); // the smallest stride that fits
    }
}

static void test_html_escape(void **state)
{
    (void)state;
    char *s = report_html_str("<b>&\"'x");
    assert_string_equal(s, "&lt;b&gt;&amp;&quot;&#39;x");
    free(s);
    s = report_html_str("evil\x1b[2J\r\xff caf\xc3\xa9");
    assert_string_equal(s, "evil\\x1b[2J\\x0d\\xff caf\xc3\xa9");
    free(s);
    /* Longer than the stack buffer. */
    char big[1200];
    for (int i = 0; i < 1199; i++)
        big[i] = i % 2 ? '<' : 'a';
    big[1199] = 0;
    s = report_html_str(big);
    assert_int_equal(strlen(s), 600 * 1 + 599 * 4);
    assert_null(strchr(s, '<'));
    free(s);
    s = report_html_str("");
    assert_string_equal(s, "");
    free(s);
}

static void test_eval_parse(void **state)
{
    (void)state;
    const char *ok = "{\"loss\":0.4,\"accuracy\":0.85,\"precision\":0.8,\"per_class\":[],"
                     "\"confusion_matrix\":[[5,1],[2,7]],\"classes\":[\"Sandal\",\"<Bag>\"],"
                     "\"images\":15}\n";
    report_eval e = {0};
    assert_int_equal(report_eval_parse(ok, strlen(ok), &e), 0);
    assert_true(e.present);
    assert_int_equal(e.n, 2);
    assert_string_equal(e.classes[1], "<Bag>");
    assert_int_equal(e.cm[2], 2);
    assert_int_equal(e.images, 15);
    assert_true(fabs(e.accuracy - 0.85) < 1e-12);
    report_data *d = calloc(1, sizeof *d);
    d->eval = e; // freed with d
    report_data_free(d);

    const char *err =
        "{\"event\":\"error\",\"t\":0.1,\"code\":\"data\",\"message\":\"no images\"}\n";
    memset(&e, 0, sizeof e);
    assert_int_equal(report_eval_parse(err, strlen(err), &e), 1);
    assert_false(e.present);
    assert_non_null(strstr(e.note, "no images"));
    free(e.note);
    const char *fake = "{\"loss\":0.5,\"accuracy\":0.5,\"macro_f1\":0.5}\n";
    memset(&e, 0, sizeof e);
    assert_int_equal(report_eval_parse(fake, strlen(fake), &e), 1);
    assert_non_null(strstr(e.note, "no confusion matrix"));
    free(e.note);
    const char *bad = "{\"confusion_matrix\":[[1,2],[3]],\"classes\":[\"a\",\"b\"]}";
    memset(&e, 0, sizeof e);
    assert_int_equal(report_eval_parse(bad, strlen(bad), &e), 1);
    free(e.note);
    memset(&e, 0, sizeof e);
    assert_int_equal(report_eval_parse("", 0, &e), 1);
    assert_non_null(strstr(e.note, "no result"));
    free(e.note);
}

/* Occurrences of NEEDLE in HAY. */
static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void test_render(void **state)
{
    (void)state;
    report_data *d = calloc(1, sizeof *d);
    d->job_id = 4;
    d->name = strdup("job <script>alert(1)</script>");
    d->state = strdup("done");
    d->strategy = strdup("random");
    d->metric = strdup("val_accuracy");
    d->maximize = true;
    d->db_path = strdup("/tmp/x.db");
    d->n_params = 2;
    d->params = calloc(2, sizeof *d->params);
    d->params[0] = (report_param){.name = strdup("lr"), .kind = REPORT_LOG, .lo = 1e-4, .hi = 0.1};
    d->params[1].name = strdup("freeze");
    d->params[1].kind = REPORT_LIST;
    d->params[1].n_labels = 2;
    d->params[1].labels = calloc(2, sizeof(char *));
    d->params[1].choices = calloc(2, sizeof(json_t *));
    d->params[1].labels[0] = strdup("none");
    d->params[1].labels[1] = strdup("l&3");
    d->params[1].choices[0] = json_string("none");
    d->params[1].choices[1] = json_string("l&3");
    d->n_trials = 5;
    d->trials = calloc(5, sizeof *d->trials);
    const char *states[] = {"completed", "pruned", "completed", "failed", "queued"};
    for (int i = 0; i < 5; i++) {
        report_trial *t = &d->trials[i];
        t->id = 10 + i;
        t->number = i;
        snprintf(t->state, sizeof t->state, "%s", states[i]);
        t->has_value = i < 3;
        t->value = 0.5 + 0.1 * i;
        t->x = malloc(2 * sizeof *t->x);
        t->x[0] = 0.001 * (i + 1);
        t->x[1] = i % 2;
    }
    d->trials[3].error = strdup("diverged <at> epoch 2");
    d->counts[2] = 2;
    d->counts[3] = 1;
    d->counts[5] = 1;
    d->counts[0] = 1;
    d->best = 2;
    d->chosen = 2;
    d->trials[2].has_test = true;
    d->trials[2].test_accuracy = 0.65;
    d->n_curves = 2;
    d->curves = calloc(2, sizeof *d->curves);
    d->curves[0].trial = 2;
    d->curves[1].trial = 1;
    for (int c = 0; c < 2; c++) {
        d->curves[c].n = 3;
        d->curves[c].pts = calloc(3, sizeof(report_point));
        for (int e = 0; e < 3; e++)
            d->curves[c].pts[e] = (report_point){e + 1, 1.0 / (e + 1), 0.5, 1.1 / (e + 1), 0.6};
    }
    d->eval.present = true;
    d->eval.n = 2;
    d->eval.classes = calloc(2, sizeof(char *));
    d->eval.classes[0] = strdup("Sandal");
    d->eval.classes[1] = strdup("<Bag>");
    d->eval.cm = calloc(4, sizeof(int64_t));
    d->eval.cm[0] = 5, d->eval.cm[1] = 1, d->eval.cm[2] = 2, d->eval.cm[3] = 7;
    d->eval.path = strdup("/tmp/t/eval.ndjson");

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    report_render(f, d);
    fclose(f);
    assert_null(strstr(buf, "<script"));
    assert_null(strstr(buf, "http:"));
    assert_null(strstr(buf, "https:"));
    assert_non_null(strstr(buf, "job &lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_non_null(strstr(buf, "&lt;Bag&gt;"));
    assert_null(strstr(buf, "<Bag>"));
    assert_non_null(strstr(buf, "diverged &lt;at&gt; epoch 2"));
    assert_non_null(strstr(buf, "l&amp;3"));
    /* One history point per trial with a value, one curve per shown trial
     * and metric, a cut for the pruned one in each of the four charts, an
     * axis per parameter plus the objective's, a scatter per parameter. */
    assert_int_equal(count(buf, "<circle class=\"pt\""), 3);
    assert_int_equal(count(buf, "data-state=\"pruned\" cx="), 1);
    assert_int_equal(count(buf, "<path class=\"curve\""), 8);
    assert_int_equal(count(buf, "<path class=\"cut\" data-trial=\"11\""), 4);
    assert_int_equal(count(buf, "<g class=\"axis\" data-param="), 2);
    assert_non_null(strstr(buf, "data-param=\"lr\" data-scale=\"log\""));
    assert_non_null(strstr(buf, "data-param=\"freeze\" data-scale=\"categorical\""));
    assert_int_equal(count(buf, "data-param=\"objective\""), 1);
    assert_int_equal(count(buf, "data-chart=\"scatter\""), 2);
    assert_int_equal(count(buf, "<g class=\"imp\""), 2);
    assert_int_equal(count(buf, "<rect class=\"cell\""), 4);
    assert_int_equal(count(buf, "<tr class=\"failure\""), 2);
    assert_non_null(strstr(buf, "0.6500"));
    assert_null(strstr(buf, "evaluation failed"));
    free(buf);
    /* No chosen model because the test-set evaluation failed: the reason. */
    d->chosen = -1;
    d->trials[2].has_test = false;
    d->test_error = strdup("cannot read <t>/best.safetensors");
    f = open_memstream(&buf, &len);
    report_render(f, d);
    fclose(f);
    assert_non_null(
        strstr(buf, "(the test-set evaluation failed: cannot read &lt;t&gt;/best.safetensors)"));
    assert_null(strstr(buf, "no test-set evaluation"));
    free(buf);
    report_data_free(d);
}

/* ---- report_db_load on a database made here ---------------------------- */

static void exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) fprintf(stderr, "%s\n", err ? err : "?");
    assert_int_equal(rc, SQLITE_OK);
}

static void test_db_load(void **state)
{
    (void)state;
    char dir[200];
    assert_int_equal(tju_mkdtemp(dir, sizeof dir, "report"), 0);
    char path[256], evdir[256], evpath[300], sql[2048];
    snprintf(path, sizeof path, "%s/sweepd.db", dir);
    snprintf(evdir, sizeof evdir, "%s/t2", dir);
    snprintf(evpath, sizeof evpath, "%s/eval.ndjson", evdir);
    mkdir(evdir, 0700);
    FILE *ef = fopen(evpath, "w");
    fputs("{\"accuracy\":0.75,\"confusion_matrix\":[[3,1],[0,4]],\"classes\":[\"a\",\"b\"],"
          "\"images\":8}\n",
          ef);
    fclose(ef);
    fileio_buf b = {0};
    char msg[512];
    assert_int_equal(fileio_read(SWEEP_SRCDIR "/sql/schema.sql", 0, &b, msg, sizeof msg), 0);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    exec(db, (const char *)b.data);
    fileio_buf_free(&b);
    exec(db, "INSERT INTO jobs (id, name, spec_json, strategy, submitted_at, objective_goal) "
             "VALUES (1, 'j', '{\"space\":{\"lr\":{\"log_uniform\":[0.001,0.1]},"
             "\"freeze\":[\"none\",\"all\"],\"epochs\":[2],\"junk\":{\"x\":1}}}', 'random', "
             "'2026-01-01T00:00:00.000Z', 'maximize')");
    exec(db, "UPDATE jobs SET test_error = 'eval: out of memory' WHERE id = 1");
    /* Trials finish in the order 2, 0, 1; 3 is still queued. */
    snprintf(sql, sizeof sql,
             "INSERT INTO trials (id, job_id, number, state, params_json, seed, finished_at, "
             "val_accuracy, test_accuracy, out_dir, last_epoch, pruned_epoch, error, exit_code) "
             "VALUES"
             " (11, 1, 0, 'completed', '{\"lr\":0.01,\"freeze\":\"all\",\"epochs\":2}', 1,"
             "  '2026-01-01T00:00:02.000Z', 0.7, NULL, NULL, 2, NULL, NULL, 0),"
             " (12, 1, 1, 'pruned', '{\"lr\":0.02,\"freeze\":\"none\",\"epochs\":2}', 1,"
             "  '2026-01-01T00:00:03.000Z', NULL, NULL, NULL, 1, 1, 'pruned at epoch 1', 7),"
             " (13, 1, 2, 'completed', '{\"lr\":0.05,\"freeze\":\"cold\",\"epochs\":2}', 1,"
             "  '2026-01-01T00:00:01.000Z', 0.8, 0.75, '%s', 2, NULL, NULL, 0),"
             " (14, 1, 3, 'queued', '{\"lr\":0.05,\"freeze\":\"none\",\"epochs\":2}', 1,"
             "  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"
             "INSERT INTO trial_metrics (trial_id, epoch, val_accuracy, val_loss) VALUES"
             " (11, 1, 0.6, 1.0), (11, 2, 0.7, 0.9), (12, 1, 0.4, 1.2), (13, 1, 0.5, 1.1),"
             " (13, 2, 0.8, 0.7);",
             evdir);
    exec(db, sql);
    sqlite3_close(db);
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);

    report_data *d = NULL;
    assert_int_equal(report_db_load(path, 1, &d, msg, sizeof msg), 0);
    assert_string_equal(d->test_error, "eval: out of memory");
    assert_int_equal(d->n_params, 3); // epochs, freeze, lr by name; "junk" is no search
    assert_string_equal(d->params[0].name, "epochs");
    assert_string_equal(d->params[1].name, "freeze");
    assert_int_equal(d->params[2].kind, REPORT_LOG);
    assert_true(d->params[2].lo == 0.001 && d->params[2].hi == 0.1);
    assert_int_equal(d->n_trials, 4);
    assert_int_equal(d->trials[0].number, 2); // finishing order
    assert_int_equal(d->trials[1].number, 0);
    assert_int_equal(d->trials[2].number, 1);
    assert_int_equal(d->trials[3].number, 3);
    assert_true(d->trials[2].has_value && fabs(d->trials[2].value - 0.4) < 1e-12); // pruned
    assert_false(d->trials[3].has_value);
    assert_true(d->trials[1].x[1] == 1);   // "all" is the list's second value
    assert_true(isnan(d->trials[0].x[1])); // "cold" is not in the list
    assert_int_equal(d->counts[2], 2);
    assert_int_equal(d->counts[5], 1);
    assert_int_equal(d->best, 0);
    assert_int_equal(d->chosen, 0);
    assert_int_equal(d->n_curves, 3);
    assert_int_equal(d->curves[0].trial, 0);
    assert_int_equal(d->curves[2].trial, 2); // the pruned one after the completed ones
    assert_int_equal(d->curves[0].n, 2);
    assert_true(fabs(d->curves[0].pts[1].val_accuracy - 0.8) < 1e-12);
    assert_true(isnan(d->curves[0].pts[1].train_loss));
    assert_true(d->eval.present);
    assert_int_equal(d->eval.cm[3], 4);
    report_data_free(d);

    /* Minimizing val_loss: the lowest wins, and a pruned trial's value is
     * its lowest val_loss. */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    exec(db, "INSERT INTO jobs (id, name, spec_json, strategy, submitted_at, objective_metric, "
             "objective_goal) VALUES (2, 'm', '{}', 'grid', 'x', 'val_loss', 'minimize');"
             "INSERT INTO trials (id, job_id, number, state, params_json, seed, finished_at, "
             "val_loss, last_epoch) VALUES (21, 2, 0, 'completed', '{}', 1, 'a', 0.9, 2),"
             " (22, 2, 1, 'completed', '{}', 1, 'b', 0.3, 2), (23, 2, 2, 'pruned', '{}', 1,"
             " 'c', NULL, 2);"
             "INSERT INTO trial_metrics (trial_id, epoch, val_loss) VALUES (23, 1, 0.8),"
             " (23, 2, 0.5);");
    sqlite3_close(db);
    assert_int_equal(report_db_load(path, 2, &d, msg, sizeof msg), 0);
    assert_false(d->maximize);
    assert_int_equal(d->n_params, 0);
    assert_int_equal(d->trials[d->best].id, 22);
    assert_true(fabs(d->trials[2].value - 0.5) < 1e-12);
    assert_int_equal(d->n_curves, 3);
    assert_int_equal(d->trials[d->curves[1].trial].id, 21);
    assert_int_equal(d->chosen, -1);
    assert_false(d->eval.present);
    assert_non_null(strstr(d->eval.note, "no trial has been evaluated"));
    report_data_free(d);
    /* A 450-epoch curve is thinned in the query: every 3rd epoch and the last. */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    exec(db, "INSERT INTO jobs (id, name, spec_json, strategy, submitted_at) VALUES (3, 'long',"
             " '{}', 'grid', 'x');"
             "INSERT INTO trials (id, job_id, number, state, params_json, seed, finished_at,"
             " val_accuracy, last_epoch) VALUES (31, 3, 0, 'completed', '{}', 1, 'a', 0.5, 451);"
             "WITH RECURSIVE e(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM e WHERE k < 451)"
             " INSERT INTO trial_metrics (trial_id, epoch, val_accuracy) SELECT 31, k, k / 1000.0"
             " FROM e;");
    sqlite3_close(db);
    assert_int_equal(report_db_load(path, 3, &d, msg, sizeof msg), 0);
    assert_int_equal(d->n_curves, 1);
    assert_int_equal(d->curves[0].n, 451 / 3 + 1);
    assert_true(d->curves[0].n <= REPORT_CURVE_POINTS);
    assert_int_equal(d->curves[0].pts[0].epoch, 3);
    assert_int_equal(d->curves[0].pts[d->curves[0].n - 1].epoch, 451);
    report_data_free(d);
    assert_int_equal(stat(path, &before), 0);

    assert_int_equal(report_db_load(path, 9, &d, msg, sizeof msg), ERR_NOTFOUND);
    assert_non_null(strstr(msg, "no job 9"));
    char missing[300];
    snprintf(missing, sizeof missing, "%s/none.db", dir);
    assert_int_equal(report_db_load(missing, 1, &d, msg, sizeof msg), ERR_DB);
    assert_int_equal(access(missing, F_OK), -1); // read-only: nothing created
    assert_int_equal(stat(path, &after), 0);
    assert_true(before.st_mtime == after.st_mtime && before.st_size == after.st_size);

    tju_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args),        cmocka_unit_test(test_scales),
        cmocka_unit_test(test_ticks),       cmocka_unit_test(test_extent_fmt),
        cmocka_unit_test(test_importance),  cmocka_unit_test(test_class_pr_stride),
        cmocka_unit_test(test_html_escape), cmocka_unit_test(test_eval_parse),
        cmocka_unit_test(test_render),      cmocka_unit_test(test_db_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
