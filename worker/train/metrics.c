/* metrics — confusion matrix, accuracy and macro precision/recall/F1 for the
 * worker's validation passes and `eval`. Conventions are in metrics.h
 * (scikit-learn's with zero_division=0, averaged over every class). */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "log.h"

int confusion_init(confusion *c, int k)
{
    memset(c, 0, sizeof *c);
    SWEEP_ASSERT(k > 0);
    c->cm = calloc((size_t)k * (size_t)k, sizeof *c->cm);
    if (!c->cm) return ERR_NOMEM;
    c->k = k;
    return 0;
}

void confusion_free(confusion *c)
{
    if (!c) return;
    free(c->cm);
    memset(c, 0, sizeof *c);
}

void confusion_reset(confusion *c)
{
    memset(c->cm, 0, (size_t)c->k * (size_t)c->k * sizeof *c->cm);
    c->total = 0;
}

void confusion_add(confusion *c, int truth, int pred)
{
    SWEEP_ASSERT(truth >= 0 && truth < c->k && pred >= 0 && pred < c->k);
    c->cm[(size_t)truth * (size_t)c->k + (size_t)pred]++;
    c->total++;
}

void confusion_class(const confusion *c, int cls, double *precision, double *recall, double *f1,
                     int64_t *support)
{
    int64_t tp = c->cm[(size_t)cls * (size_t)c->k + (size_t)cls];
    int64_t row = 0, col = 0;
    for (int j = 0; j < c->k; j++) {
        row += c->cm[(size_t)cls * (size_t)c->k + (size_t)j];
        col += c->cm[(size_t)j * (size_t)c->k + (size_t)cls];
    }
    int64_t fn = row - tp, fp = col - tp;
    if (precision) *precision = col ? (double)tp / (double)col : 0.0;
    if (recall) *recall = row ? (double)tp / (double)row : 0.0;
    if (f1) {
        int64_t den = 2 * tp + fp + fn;
        *f1 = den ? 2.0 * (double)tp / (double)den : 0.0;
    }
    if (support) *support = row;
}

void confusion_summary(const confusion *c, metrics_summary *out)
{
    memset(out, 0, sizeof *out);
    int64_t trace = 0;
    int present = 0;
    for (int i = 0; i < c->k; i++) {
        int64_t row = 0, col = 0;
        for (int j = 0; j < c->k; j++) {
            row += c->cm[(size_t)i * (size_t)c->k + (size_t)j];
            col += c->cm[(size_t)j * (size_t)c->k + (size_t)i];
        }
        trace += c->cm[(size_t)i * (size_t)c->k + (size_t)i];
        if (row == 0 && col == 0) continue; // neither a sample nor a prediction
        double p, r, f;
        confusion_class(c, i, &p, &r, &f, NULL);
        out->precision += p;
        out->recall += r;
        out->f1 += f;
        present++;
    }
    if (present) {
        out->precision /= present;
        out->recall /= present;
        out->f1 /= present;
    }
    out->accuracy = c->total ? (double)trace / (double)c->total : 0.0;
}

json_t *confusion_to_json(const confusion *c)
{
    json_t *rows = json_array();
    if (!rows) return NULL;
    for (int i = 0; i < c->k; i++) {
        json_t *row = json_array();
        if (!row) goto fail;
        for (int j = 0; j < c->k; j++)
            json_array_append_new(row, json_integer(c->cm[(size_t)i * (size_t)c->k + (size_t)j]));
        json_array_append_new(rows, row);
    }
    return rows;
fail:
    json_decref(rows);
    return NULL;
}

int metrics_argmax(const float *logits, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best] || (isnan(logits[best]) && !isnan(logits[i]))) best = i;
    return best;
}
