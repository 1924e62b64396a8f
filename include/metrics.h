/* metrics — classification metrics from a confusion matrix: accuracy and
 * per-class / macro precision, recall and F1.
 *
 * Conventions (the same as scikit-learn's precision_recall_fscore_support with
 * its default labels, average="macro", zero_division=0):
 *   precision_c = TP_c / (TP_c + FP_c), 0 when the model never predicts c;
 *   recall_c    = TP_c / (TP_c + FN_c), 0 when c has no true samples;
 *   f1_c        = 2 TP_c / (2 TP_c + FP_c + FN_c), 0 when that is 0/0;
 *   macro       = unweighted mean over the classes that occur in the matrix,
 *                 as a true class or as a prediction (scikit-learn's default
 *                 labels); a class with neither samples nor predictions has no
 *                 defined figures and is left out, while a class with samples
 *                 that is never predicted counts precision 0.
 * Accuracy is the trace over the total (0 for an empty matrix). */
#ifndef SWEEP_METRICS_H
#define SWEEP_METRICS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int k;         // number of classes
    int64_t *cm;   // (K, K) counts, row = true class, column = predicted class (owned)
    int64_t total; // sum of cm
} confusion;

typedef struct {
    double accuracy;  // trace / total
    double precision; // macro precision
    double recall;    // macro recall
    double f1;        // macro F1 (mean of per-class F1, not F1 of the macro means)
} metrics_summary;

/* Allocates a zeroed K x K matrix. 0 or ERR_NOMEM. */
int confusion_init(confusion *c, int k);
void confusion_free(confusion *c);
void confusion_reset(confusion *c);
/* Counts one sample; labels outside [0, K) are a programming error (assert). */
void confusion_add(confusion *c, int truth, int pred);
/* Per-class figures for class CLS; SUPPORT (may be NULL) gets TP + FN. */
void confusion_class(const confusion *c, int cls, double *precision, double *recall, double *f1,
                     int64_t *support);
void confusion_summary(const confusion *c, metrics_summary *out);
/* The matrix as a new JSON array of K arrays of K integers (caller owns). */
json_t *confusion_to_json(const confusion *c);

/* Index of the largest of N logits (the first one on ties; NaN never wins
 * unless all are NaN, then 0). */
int metrics_argmax(const float *logits, int n);

#endif
