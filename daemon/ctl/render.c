/* ctl_render — turns the daemon's JSON replies into what a person reads:
 * short sentences for submit/cancel/ping/shutdown, aligned tables for jobs,
 * trials and per-epoch metrics. Rendering looks fields up by name and prints
 * "-" for anything absent, so a reply with fewer or more fields than expected
 * still prints; `--json` is there for scripts that need every field.
 *
 * Trial tables show the hyperparameters that differ between the rows (plus
 * lr), so a grid over lr and freeze prints exactly those two columns.
 *
 * Every string of a reply (job and class names, error messages, paths) is
 * printed through utf8_escape: tables escape their cells, ctl_fmt_json
 * escapes strings, and the plain lines here escape with put_escaped. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "errors.h"

/* Prints FMT with %s replaced by S escaped for the terminal (NULL: "?"). */
static void put_escaped(FILE *f, const char *fmt, const char *s)
{
    char *e = utf8_escaped(s ? s : "?");
    fprintf(f, fmt, e ? e : "?");
    free(e);
}

bool ctl_reply_ok(const json_t *reply)
{
    return json_is_object(reply) && json_is_true(json_object_get(reply, "ok"));
}

void ctl_print_error(FILE *f, const json_t *reply)
{
    const json_t *e = json_object_get(reply, "error");
    const char *code = NULL, *message = NULL;
    if (json_is_object(e)) {
        code = json_string_value(json_object_get(e, "code"));
        message = json_string_value(json_object_get(e, "message"));
    } else if (json_is_string(e)) {
        message = json_string_value(e);
    }
    if (code && message) {
        put_escaped(f, "sweepctl: %s: ", code);
        put_escaped(f, "%s\n", message);
    } else if (message) {
        put_escaped(f, "sweepctl: %s\n", message);
    } else
        fprintf(f, "sweepctl: the daemon refused the request without saying why\n");
}

const json_t *ctl_lookup(const json_t *obj, const char *key)
{
    if (!json_is_object(obj)) return NULL;
    const json_t *v = json_object_get(obj, key);
    if (v) return v;
    static const char *const nests[] = {"params", "result", "metrics", "counts", NULL};
    for (int i = 0; nests[i]; i++) {
        const json_t *n = json_object_get(obj, nests[i]);
        if (json_is_object(n) && (v = json_object_get(n, key))) return v;
    }
    return NULL;
}

const json_t *ctl_find_array(const json_t *reply, const char *const *names)
{
    for (int i = 0; names[i]; i++) {
        const json_t *a = json_object_get(reply, names[i]);
        if (json_is_array(a)) return a;
    }
    /* One level down: {"job": {..., "trials": [...]}}. */
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)reply, k, v)
    {
        if (!json_is_object(v)) continue;
        for (int i = 0; names[i]; i++) {
            const json_t *a = json_object_get(v, names[i]);
            if (json_is_array(a)) return a;
        }
    }
    return NULL;
}

/* Rows as the renderer wants them: copies of the objects in ARR with a
 * "params_json" string parsed into "params". New reference. */
json_t *ctl_normalise_rows(const json_t *arr)
{
    json_t *out = json_array();
    if (!out) return NULL;
    size_t i;
    const json_t *row;
    json_array_foreach(arr, i, row)
    {
        if (!json_is_object(row)) continue;
        json_t *r = json_copy((json_t *)row);
        if (!r) goto fail;
        const char *pj = json_string_value(json_object_get(r, "params_json"));
        if (pj && !json_object_get(r, "params")) {
            json_t *p = json_loads(pj, 0, NULL);
            if (p) json_object_set_new(r, "params", p);
        }
        if (json_array_append_new(out, r)) goto fail;
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

/* Formats a cell for KEY: durations and metrics get their own formats. */
static void cell(ctl_table *t, const json_t *row, const char *key)
{
    char b[96];
    const json_t *v = ctl_lookup(row, key);
    if (v && json_is_number(v) &&
        (!strcmp(key, "seconds") || !strcmp(key, "elapsed") || !strcmp(key, "duration") ||
         !strcmp(key, "eta"))) {
        ctl_table_cell(t, "%s", ctl_fmt_duration(b, sizeof b, json_number_value(v)));
        return;
    }
    if (v && json_is_string(v) && strlen(json_string_value(v)) >= 19 &&
        json_string_value(v)[10] == 'T') {
        /* ISO timestamps: "2026-11-28 15:04:05", enough for a table. */
        const char *s = json_string_value(v);
        ctl_table_cell(t, "%.10s %.8s", s, s + 11);
        return;
    }
    ctl_table_cell(t, "%s", ctl_fmt_json(b, sizeof b, v));
}

/* True if KEY has different values in different ROWS; *PRESENT tells whether
 * any row has it at all. */
static bool varies(const json_t *rows, const char *key, bool *present)
{
    size_t i;
    const json_t *row, *first = NULL;
    bool vary = false;
    *present = false;
    json_array_foreach(rows, i, row)
    {
        const json_t *v = ctl_lookup(row, key);
        if (v) *present = true;
        if (!v) v = json_null();
        if (!first)
            first = v;
        else if (!json_equal((json_t *)first, (json_t *)v))
            vary = true;
    }
    return vary;
}

/* The hyperparameters worth a column: lr always, then every key of the rows'
 * "params" objects (canonical order first) whose value differs between rows;
 * all of them for a single row.
 * Returns a new array of key strings, NULL on allocation failure. */
json_t *ctl_varying_params(const json_t *rows)
{
    static const char *const order[] = {
        "lr",          "batch_size",    "epochs",    "dropout",         "weight_decay",
        "l1",          "momentum",      "optimizer", "freeze",          "augment",
        "lr_schedule", "warmup_epochs", "nesterov",  "label_smoothing", NULL};
    json_t *keys = json_array();
    json_t *cand = json_array(); // candidate keys: canonical ones, then others seen in params
    if (!keys || !cand) goto fail;
    for (int o = 0; order[o]; o++)
        json_array_append_new(cand, json_string(order[o]));
    size_t i;
    const json_t *row;
    json_array_foreach(rows, i, row)
    {
        const json_t *p = json_object_get(row, "params");
        const char *k;
        const json_t *v;
        if (!json_is_object(p)) continue;
        json_object_foreach((json_t *)p, k, v)
        {
            bool seen = false;
            size_t j;
            const json_t *c;
            json_array_foreach(cand, j, c) seen |= !strcmp(json_string_value(c), k);
            if (!seen) json_array_append_new(cand, json_string(k));
        }
    }
    const json_t *c;
    bool single = json_array_size(rows) == 1;
    json_array_foreach(cand, i, c)
    {
        const char *k = json_string_value(c);
        bool present;
        bool vary = varies(rows, k, &present);
        /* With a single row nothing varies: show all its parameters. */
        if (present && (vary || single || !strcmp(k, "lr")))
            json_array_append_new(keys, json_string(k));
    }
    json_decref(cand);
    return keys;
fail:
    json_decref(cand);
    json_decref(keys);
    return NULL;
}

static const char *param_header(const char *k)
{
    static const struct {
        const char *key, *hdr;
    } short_names[] = {
        {"batch_size", "batch"},     {"weight_decay", "wd"},        {"lr_schedule", "schedule"},
        {"warmup_epochs", "warmup"}, {"label_smoothing", "smooth"}, {"optimizer", "optim"},
    };
    for (size_t i = 0; i < sizeof short_names / sizeof short_names[0]; i++)
        if (!strcmp(short_names[i].key, k)) return short_names[i].hdr;
    return k;
}

/* Prints a table of trials: identity, state, varying params, then METRICS. */
static int trials_table(FILE *f, const json_t *arr, const char *const *lead,
                        const char *const *metrics)
{
    int rc = ERR_NOMEM;
    json_t *rows = ctl_normalise_rows(arr);
    json_t *keys = rows ? ctl_varying_params(rows) : NULL;
    ctl_table *t = NULL;
    const char *hdr[64];
    char align[65];
    int n = 0;
    if (!keys) goto done;
    for (int i = 0; lead[i] && n < 60; i++) {
        hdr[n] = lead[i];
        align[n++] = strcmp(lead[i], "state") ? 'r' : 'l';
    }
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        if (n >= 60) break;
        hdr[n] = param_header(json_string_value(k));
        const json_t *v = ctl_lookup(json_array_get(rows, 0), json_string_value(k));
        align[n++] = json_is_number(v) ? 'r' : 'l';
    }
    /* Metric columns no row has a value for are left out, and so are the
     * data-file counts when every row's is 0. */
    const char *shown[32];
    int nshown = 0;
    for (int m = 0; metrics[m] && n < 63 && nshown < 32; m++) {
        bool any = false,
             count = !strcmp(metrics[m], "skipped_files") || !strcmp(metrics[m], "bad_images");
        const json_t *r;
        json_array_foreach(rows, i, r)
        {
            const json_t *v = ctl_lookup(r, metrics[m]);
            any |= v && !json_is_null(v) && !(count && json_integer_value(v) == 0);
        }
        if (!any) continue;
        shown[nshown++] = metrics[m];
        hdr[n] = metrics[m];
        align[n++] = !strcmp(metrics[m], "error") ? 'l' : 'r';
    }
    align[n] = 0;
    t = ctl_table_new(n, hdr, align);
    if (!t) goto done;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        if (ctl_table_row(t)) goto done;
        for (int c = 0; lead[c]; c++) {
            const char *key = lead[c];
            if (!strcmp(key, "trial") && !ctl_lookup(row, "trial")) key = "number";
            cell(t, row, key);
        }
        size_t j;
        json_array_foreach(keys, j, k) cell(t, row, json_string_value(k));
        for (int m = 0; m < nshown; m++)
            cell(t, row, shown[m]);
    }
    char *s = ctl_table_render(t);
    if (!s) goto done;
    fputs(s, f);
    free(s);
    rc = 0;
done:
    ctl_table_free(t);
    json_decref(keys);
    json_decref(rows);
    return rc;
}

/* The trials of a job object that have finished (*DONE, false when it
 * carries no counts) and that it runs (*TOTAL, -1 when not given), from
 * whichever keys it has. */
static bool job_done_total(const json_t *job, long long *done, long long *total)
{
    const json_t *tv = ctl_lookup(job, "trials_total");
    if (!tv) tv = ctl_lookup(job, "trials");
    *total = json_is_integer(tv) ? (long long)json_integer_value(tv) : -1;
    *done = 0;
    bool have = false;
    static const char *const finished[] = {"completed", "failed", "cancelled", "pruned", NULL};
    const json_t *counts = json_object_get(job, "counts");
    if (!json_is_object(counts)) counts = json_object_get(job, "trial_counts");
    for (int i = 0; finished[i]; i++) {
        const json_t *v = json_is_object(counts) ? json_object_get(counts, finished[i]) : NULL;
        if (!v) v = json_object_get(job, finished[i]);
        if (!v) {
            char k[32];
            snprintf(k, sizeof k, "trials_%s", finished[i]);
            v = json_object_get(job, k);
        }
        if (json_is_integer(v)) {
            *done += json_integer_value(v);
            have = true;
        }
    }
    const json_t *d = json_object_get(job, "trials_done");
    if (json_is_integer(d)) {
        *done = json_integer_value(d);
        have = true;
    }
    return have;
}

/* "done/total" for a job object, from whichever counts it carries. */
static void job_progress(const json_t *job, char *buf, size_t n)
{
    long long done, total;
    bool have = job_done_total(job, &done, &total);
    if (total >= 0 && have)
        snprintf(buf, n, "%lld/%lld", done, total);
    else if (total >= 0)
        snprintf(buf, n, "%lld", total);
    else
        snprintf(buf, n, "-");
}

static int jobs_table(FILE *f, const json_t *jobs)
{
    static const char *const hdr[] = {"id",      "name", "state",    "trials",
                                      "running", "best", "submitted"};
    ctl_table *t = ctl_table_new(7, hdr, "rllrrrl");
    if (!t) return ERR_NOMEM;
    size_t i;
    const json_t *j;
    json_array_foreach(jobs, i, j)
    {
        char b[64];
        if (ctl_table_row(t)) break;
        const json_t *id = json_object_get(j, "id");
        if (!id) id = json_object_get(j, "job");
        ctl_table_cell(t, "%s", ctl_fmt_json(b, sizeof b, id));
        cell(t, j, "name");
        cell(t, j, "state");
        job_progress(j, b, sizeof b);
        ctl_table_cell(t, "%s", b);
        const json_t *run = ctl_lookup(j, "running");
        if (!run) run = ctl_lookup(j, "trials_running");
        ctl_table_cell(t, "%s", ctl_fmt_json(b, sizeof b, run));
        const json_t *best = ctl_lookup(j, "best");
        if (json_is_object(best)) {
            const json_t *obj = json_object_get(j, "objective");
            const char *metric = json_string_value(ctl_lookup(j, "objective_metric"));
            if (!metric && json_is_object(obj))
                metric = json_string_value(json_object_get(obj, "metric"));
            const json_t *bv = ctl_lookup(best, metric ? metric : "val_accuracy");
            if (!bv) bv = ctl_lookup(best, "value");
            best = bv;
        }
        if (!best) best = ctl_lookup(j, "best_value");
        ctl_table_cell(t, "%s", ctl_fmt_json(b, sizeof b, best));
        cell(t, j, "submitted_at");
    }
    char *s = ctl_table_render(t);
    ctl_table_free(t);
    if (!s) return ERR_NOMEM;
    if (json_array_size(jobs) == 0)
        fputs("no jobs yet; submit one with: sweepctl submit JOB.json\n", f);
    else
        fputs(s, f);
    free(s);
    return 0;
}

/* Prints "key  value" lines for the members of OBJ listed in KEYS that are
 * present, scalar and not null. */
static void key_values(FILE *f, const json_t *obj, const char *const *keys)
{
    for (int i = 0; keys[i]; i++) {
        const json_t *v = ctl_lookup(obj, keys[i]);
        if (!v || json_is_null(v) || json_is_object(v) || json_is_array(v)) continue;
        char b[512];
        if (json_is_number(v) && (!strcmp(keys[i], "uptime") || !strcmp(keys[i], "seconds")))
            ctl_fmt_duration(b, sizeof b, json_number_value(v));
        else
            ctl_fmt_json(b, sizeof b, v);
        fprintf(f, "%-16s %s\n", keys[i], b);
    }
}

static const char *const trial_lead[] = {"trial", "id", "state", NULL};

/* OUT (CAP entries, NULL-terminated) = the metric columns BASE with the
 * job's objective METRIC inserted at index AT when BASE lacks it, so a
 * table always shows the metric that ranks the trials. */
static void with_objective(const char **out, size_t cap, const char *const *base, size_t at,
                           const char *metric)
{
    bool has = !metric;
    for (size_t i = 0; base[i] && !has; i++)
        has = !strcmp(base[i], metric);
    size_t k = 0;
    for (size_t i = 0; base[i] && k + 2 < cap; i++) {
        if (i == at && !has) out[k++] = metric;
        out[k++] = base[i];
    }
    out[k] = NULL;
}

static int render_status_job(FILE *f, const json_t *reply)
{
    const json_t *job = json_object_get(reply, "job");
    if (!json_is_object(job)) job = reply;
    static const char *const keys[] = {"id",
                                       "name",
                                       "state",
                                       "strategy",
                                       "objective_metric",
                                       "objective_goal",
                                       "submitted_at",
                                       "started_at",
                                       "finished_at",
                                       "trials_total",
                                       "max_parallel",
                                       "seed",
                                       "error",
                                       "test_error",
                                       NULL};
    key_values(f, job, keys);
    const json_t *obj = json_object_get(job, "objective");
    const char *metric = json_string_value(ctl_lookup(job, "objective_metric"));
    if (json_is_object(obj)) {
        metric = json_string_value(json_object_get(obj, "metric"));
        fprintf(f, "%-16s ", "objective");
        put_escaped(f, "%s ", json_string_value(json_object_get(obj, "goal")));
        put_escaped(f, "%s\n", metric);
    }
    char b[64];
    job_progress(job, b, sizeof b);
    fprintf(f, "%-16s %s\n", "progress", b);
    const json_t *best = json_object_get(job, "best");
    if (json_is_object(best)) {
        fprintf(f, "%-16s trial %s", "best", ctl_fmt_json(b, sizeof b, ctl_lookup(best, "trial")));
        fprintf(f, " (number %s)", ctl_fmt_json(b, sizeof b, ctl_lookup(best, "number")));
        put_escaped(f, " %s", metric ? metric : "value");
        fprintf(f, " %s\n", ctl_fmt_json(b, sizeof b, ctl_lookup(best, "value")));
    }
    static const char *const names[] = {"trials", NULL};
    const json_t *trials = ctl_find_array(reply, names);
    if (!trials) return 0;
    fputc('\n', f);
    static const char *const base[] = {"last_epoch",    "val_accuracy",  "val_loss",
                                       "test_accuracy", "skipped_files", "bad_images",
                                       "attempt",       "error",         NULL};
    const char *metrics[16];
    with_objective(metrics, 16, base, 1, metric);
    return trials_table(f, trials, trial_lead, metrics);
}

static int render_status(FILE *f, const json_t *reply)
{
    const json_t *job = json_object_get(reply, "job");
    if (json_is_object(job) || json_is_integer(job)) return render_status_job(f, reply);
    static const char *const keys[] = {
        "version",   "pid", "uptime", "workers",   "workers_busy", "running", "queued",
        "state_dir", "db",  "socket", "blas_core", "blas_kernel",  NULL};
    const json_t *d = json_object_get(reply, "daemon");
    key_values(f, json_is_object(d) ? d : reply, keys);
    const char *bw = json_string_value(ctl_lookup(json_is_object(d) ? d : reply, "blas_warning"));
    if (bw) put_escaped(f, "warning          %s\n", bw);
    static const char *const names[] = {"jobs", NULL};
    const json_t *jobs = ctl_find_array(reply, names);
    if (!jobs) return 0;
    fputc('\n', f);
    return jobs_table(f, jobs);
}

static int render_best(FILE *f, const json_t *reply)
{
    static const char *const names[] = {"trials", "best", NULL};
    const json_t *trials = ctl_find_array(reply, names);
    int rc = 0;
    /* While trials remain, the planned count: "3 of 24 trials done" (a tpe
     * job's proposals to come are counted in the 24). */
    long long done, total;
    if (job_done_total(reply, &done, &total) && done < total)
        fprintf(f, "%lld of %lld trials done\n", done, total);
    if (!trials || json_array_size(trials) == 0) {
        fputs("no completed trials yet\n", f);
    } else {
        static const char *const lead[] = {"rank", "trial", "id", NULL};
        static const char *const base[] = {"val_accuracy", "val_loss",      "val_f1",
                                           "best_epoch",   "test_accuracy", NULL};
        const char *metrics[8];
        with_objective(
            metrics, 8, base, 0,
            json_string_value(json_object_get(json_object_get(reply, "objective"), "metric")));
        rc = trials_table(f, trials, lead, metrics);
    }
    /* Pruned trials and why (each error reads "pruned at epoch E: ..."). */
    const json_t *pruned = json_object_get(reply, "pruned");
    if (rc == 0 && json_is_array(pruned) && json_array_size(pruned) > 0) {
        fprintf(f, "\n%zu pruned:\n", json_array_size(pruned));
        size_t i;
        const json_t *p;
        json_array_foreach(pruned, i, p)
        {
            char b[64];
            fprintf(f, "  trial %s", ctl_fmt_json(b, sizeof b, json_object_get(p, "id")));
            put_escaped(f, ": %s\n", json_string_value(json_object_get(p, "error")));
        }
    }
    return rc;
}

static int render_trial(FILE *f, const json_t *reply)
{
    const json_t *tr = json_object_get(reply, "trial");
    if (!json_is_object(tr)) tr = reply;
    static const char *const keys[] = {"id",          "job",           "job_id",
                                       "number",      "state",         "seed",
                                       "attempt",     "pid",           "started_at",
                                       "finished_at", "best_epoch",    "val_accuracy",
                                       "val_loss",    "val_precision", "val_recall",
                                       "val_f1",      "test_accuracy", "exit_code",
                                       "error",       "pruned_epoch",  "checkpoint_path",
                                       "out_dir",     "log",           "blas_core",
                                       NULL};
    key_values(f, tr, keys);
    const json_t *log = json_object_get(reply, "log");
    if (json_is_string(log) && !json_object_get(tr, "log"))
        put_escaped(f, "log              %s\n", json_string_value(log));
    /* What the worker left out of the data folders, and could not decode. */
    static const char *const counts[] = {"skipped_files", "bad_images", NULL};
    key_values(f, tr, counts);
    json_t *params = json_object_get(tr, "params");
    json_t *parsed = NULL;
    if (!json_is_object(params)) {
        const char *pj = json_string_value(json_object_get(tr, "params_json"));
        params = parsed = pj ? json_loads(pj, 0, NULL) : NULL;
    }
    if (json_is_object(params)) {
        fputs("\nparams\n", f);
        const char *k;
        json_t *v;
        json_object_foreach(params, k, v)
        {
            char b[256], kb[128];
            utf8_escape(kb, sizeof kb, k);
            fprintf(f, "  %-16s %s\n", kb, ctl_fmt_json(b, sizeof b, v));
        }
    }
    json_decref(parsed);
    static const char *const names[] = {"metrics", "epochs", "trial_metrics", NULL};
    const json_t *m = json_object_get(tr, "metrics");
    if (!json_is_array(m)) m = ctl_find_array(reply, names);
    if (!json_is_array(m) || json_array_size(m) == 0) return 0;
    static const char *const hdr[] = {"epoch",   "train_loss", "train_acc", "val_loss",
                                      "val_acc", "val_f1",     "lr",        "seconds"};
    static const char *const key[] = {"epoch",    "train_loss",   "train_accuracy",
                                      "val_loss", "val_accuracy", "val_f1",
                                      "lr",       "seconds"};
    ctl_table *t = ctl_table_new(8, hdr, "rrrrrrrr");
    if (!t) return ERR_NOMEM;
    size_t i;
    const json_t *row;
    json_array_foreach(m, i, row)
    {
        if (ctl_table_row(t)) break;
        for (int c = 0; c < 8; c++)
            cell(t, row, key[c]);
    }
    char *s = ctl_table_render(t);
    ctl_table_free(t);
    if (!s) return ERR_NOMEM;
    fputs("\n", f);
    fputs(s, f);
    free(s);
    return 0;
}

int ctl_render(FILE *f, ctl_command cmd, const json_t *reply)
{
    char b[64];
    switch (cmd) {
    case CTL_CMD_SUBMIT: {
        const json_t *job = json_object_get(reply, "job");
        const json_t *n = json_object_get(reply, "trials");
        fprintf(f, "submitted job %s", ctl_fmt_json(b, sizeof b, job));
        const char *name = json_string_value(json_object_get(reply, "name"));
        if (name) put_escaped(f, " (%s)", name);
        if (json_is_integer(n)) fprintf(f, ": %lld trials", (long long)json_integer_value(n));
        const json_t *seed = json_object_get(reply, "seed");
        if (json_is_integer(seed)) fprintf(f, ", seed %lld", (long long)json_integer_value(seed));
        const json_t *model = json_object_get(reply, "model");
        const char *arch = json_string_value(json_object_get(model, "arch"));
        const char *from = json_string_value(json_object_get(model, "input_size_from"));
        const json_t *size = json_object_get(model, "input_size");
        const char *afrom = json_string_value(json_object_get(model, "arch_from"));
        if (arch && from && json_is_integer(size)) { // where the daemon took them (issue 20)
            if (afrom && !strcmp(afrom, "space"))
                put_escaped(f, ", models %s (space.arch)", arch);
            else
                put_escaped(f, ", model %s", arch);
            fprintf(f, "%s, input %lld px (%s)",
                    afrom && !strcmp(afrom, "weights") ? " (from the weights)" : "",
                    (long long)json_integer_value(size),
                    !strcmp(from, "weights") ? "from the weights' metadata"
                    : !strcmp(from, "job")   ? "model.input_size"
                                             : "the default");
        }
        fprintf(f, "\nfollow it with: sweepctl watch %s\n", ctl_fmt_json(b, sizeof b, job));
        return 0;
    }
    case CTL_CMD_STATUS:
        return render_status(f, reply);
    case CTL_CMD_LIST: {
        static const char *const names[] = {"jobs", NULL};
        const json_t *jobs = ctl_find_array(reply, names);
        if (!jobs) {
            fputs("no jobs yet; submit one with: sweepctl submit JOB.json\n", f);
            return 0;
        }
        return jobs_table(f, jobs);
    }
    case CTL_CMD_CANCEL: {
        const json_t *job = json_object_get(reply, "job");
        fprintf(f, "job %s cancelled", ctl_fmt_json(b, sizeof b, job));
        const json_t *dq = json_object_get(reply, "dequeued");
        const json_t *st = json_object_get(reply, "stopping");
        if (json_is_integer(dq) && json_is_integer(st))
            fprintf(f, ": %lld queued trials dropped, %lld running trials stopping",
                    (long long)json_integer_value(dq), (long long)json_integer_value(st));
        fputc('\n', f);
        return 0;
    }
    case CTL_CMD_BEST:
        return render_best(f, reply);
    case CTL_CMD_TRIAL:
        return render_trial(f, reply);
    case CTL_CMD_PING: {
        fputs("sweepd is running", f);
        const json_t *v = json_object_get(reply, "version");
        const json_t *pid = json_object_get(reply, "pid");
        if (json_is_string(v)) fprintf(f, ", version %s", json_string_value(v));
        if (json_is_integer(pid)) fprintf(f, ", pid %lld", (long long)json_integer_value(pid));
        const json_t *up = json_object_get(reply, "uptime");
        if (json_is_number(up))
            fprintf(f, ", up %s", ctl_fmt_duration(b, sizeof b, json_number_value(up)));
        fputc('\n', f);
        return 0;
    }
    case CTL_CMD_SHUTDOWN:
        fputs("sweepd is shutting down: running trials checkpoint and stop; a restart resumes "
              "them\n",
              f);
        return 0;
    default:
        return 0;
    }
}
