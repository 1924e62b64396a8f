/* eval_cmd — `sweep-worker eval --weights CKPT --data DIR`: evaluates a
 * trial's checkpoint (best.safetensors or checkpoint.safetensors) on a
 * labelled ImageFolder and prints one JSON object:
 *   {"loss", "accuracy", "precision", "recall", "f1",            (macro, metrics.h)
 *    "per_class": [{"class", "precision", "recall", "f1", "support"}, ...],
 *    "confusion_matrix": [[...]], "classes": [...], "images", "weights", "data",
 *    "input_size", "normalization": {"mean", "std"}}
 * and with --predictions also "predictions": one record per image in folder
 * order, {"file", "label", "top", "logits"} as predict prints it
 * (cmd_prediction). The architecture, class names and preprocessing (input
 * size, mean, std) come from the checkpoint's metadata, and the images go
 * through the evaluation path of training and predict (image.h), normalised
 * with that mean and std; the folder's class sub-directories are
 * matched to the checkpoint's classes by name (a folder class the model does
 * not know is an error naming it; classes missing from the folder just have
 * support 0). The loss is plain cross-entropy averaged over the images.
 * --data-root DIR (repeatable) applies the daemon's data_roots to the folder
 * as `run` applies the trial spec's (include/datapath.h).
 * On failure the same error event line as `run` writes is printed instead,
 * {"event":"error","t":…,"code":…,"exit_code":…,"message":…}, and the exit
 * status follows the contract (2 arguments, 3 data, 4 model, 6 out of memory).
 * Steps: eval_parse (argv -> eval_opts), eval_run (the forward passes, into an
 * eval_result) and eval_report (the JSON object). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "datapath.h"
#include "dataset.h"
#include "errors.h"
#include "events.h"
#include "fileio.h"
#include "image.h"
#include "log.h"
#include "metrics.h"
#include "numparse.h"
#include "resnet.h"
#include "safetensors.h"
#include "train.h"
#include "worker_cmds.h"

static void eval_usage(FILE *f)
{
    fprintf(f, "usage: sweep-worker eval --weights CKPT --data DIR [--batch B] [--threads T]\n"
               "                          [--cache-dir DIR] [--data-root DIR]... [--predictions]\n"
               "\n"
               "Evaluates a trial checkpoint (best.safetensors) on a labelled ImageFolder and\n"
               "prints one JSON object: loss, accuracy, macro precision/recall/f1, per_class,\n"
               "confusion_matrix (rows = true class), classes, input_size, normalization.\n"
               "Defaults: --batch 64, --threads 1. --predictions: also each image's top classes\n"
               "and logits, as predict prints them (\"predictions\").\n"
               "--data-root DIR (repeatable; the daemon passes its data_roots): the data folder\n"
               "must resolve inside one of them, and a class folder or image that links outside\n"
               "all of them is skipped with a warning. Without, links are followed anywhere.\n"
               "Exit codes: 0 done, 2 bad arguments, 3 data error, 4 model error, 6 out of "
               "memory,\n8 no space left to write the result.\n");
}

static int print_error(int code, const char *message)
{
    events_error(events_code_for_exit(code), code, message);
    fprintf(stderr, "sweep-worker eval: %s\n", message);
    return code;
}

/* What the command line asks for. */
typedef struct {
    const char *weights;   // --weights CKPT
    const char *data;      // --data DIR
    const char *cache_dir; // --cache-dir DIR, NULL = none
    char **roots;          // --data-root DIR, each resolved (owned: datapath_roots_free)
    int n_roots;           // --data-root options given
    int batch;             // --batch B, images per forward pass
    int threads;           // --threads T
    bool predictions;      // --predictions: list each image's record
    bool help;             // --help / -h: print the usage, evaluate nothing
} eval_opts;

/* What the evaluation found, for eval_report. */
typedef struct {
    ckpt_meta meta;      // the checkpoint's classes and preprocessing (owned)
    confusion cm;        // predictions against labels (owned)
    double loss_sum;     // cross-entropy summed over the images
    json_t *predictions; // with --predictions: array of records (owned), else NULL
} eval_result;

static void eval_result_free(eval_result *r)
{
    confusion_free(&r->cm);
    ckpt_meta_free(&r->meta);
    json_decref(r->predictions);
}

/* argv -> O; --help prints the usage. 0, or WEXIT_SPEC with the reason in MSG. */
static int eval_parse(int argc, char **argv, eval_opts *o, char *msg, size_t msglen)
{
    *o = (eval_opts){.batch = 64, .threads = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            eval_usage(stdout);
            o->help = true;
            return 0;
        }
        if (!strcmp(a, "--predictions")) {
            o->predictions = true;
            continue;
        }
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        bool known = !strcmp(a, "--weights") || !strcmp(a, "--data") || !strcmp(a, "--batch") ||
                     !strcmp(a, "--threads") || !strcmp(a, "--cache-dir") ||
                     !strcmp(a, "--data-root");
        if (!known) {
            snprintf(msg, msglen, "unknown argument '%s' (see --help)", a);
            return WEXIT_SPEC;
        }
        if (!val) {
            snprintf(msg, msglen, "%s needs a value", a);
            return WEXIT_SPEC;
        }
        i++;
        if (!strcmp(a, "--weights"))
            o->weights = val;
        else if (!strcmp(a, "--data"))
            o->data = val;
        else if (!strcmp(a, "--cache-dir"))
            o->cache_dir = val;
        else if (!strcmp(a, "--data-root")) {
            if (datapath_roots_add(&o->roots, &o->n_roots, a, val, msg, msglen) < 0)
                return WEXIT_SPEC;
        } else if ((!strcmp(a, "--batch") &&
                    numparse_int(a, val, 1, 65536, &o->batch, msg, msglen)) ||
                   (!strcmp(a, "--threads") &&
                    numparse_int(a, val, 1, 1024, &o->threads, msg, msglen)))
            return WEXIT_SPEC;
    }
    if (!o->weights || !o->data) {
        snprintf(msg, msglen, "%s",
                 !o->weights ? "--weights CKPT is required" : "--data DIR is required");
        return WEXIT_SPEC;
    }
    return 0;
}

/* Appends to R->predictions the record of image POS of SPLIT (in folder
 * DIR) with LOGITS and true class LABEL. 0 or ERR_NOMEM. */
static int add_prediction(eval_result *r, const char *dir, const dataset_split *split, uint32_t pos,
                          const float *logits, int label)
{
    const dataset_file *f = &split->scan->files[split->file[pos]];
    size_t n = strlen(dir) + strlen(f->rel) + 2;
    char *path = malloc(n);
    if (!path) return ERR_NOMEM;
    snprintf(path, n, "%s/%s", dir, f->rel);
    json_t *p = cmd_prediction(path, logits, r->meta.classes, r->meta.nclasses, r->meta.nclasses);
    free(path);
    if (!p || json_object_set_new(p, "label", json_string(r->meta.classes[label])) ||
        json_array_append_new(r->predictions, p))
        return ERR_NOMEM;
    return 0;
}

/* Evaluates O's checkpoint on O's folder into R (which the caller frees with
 * eval_result_free, also after a failure). Returns the exit code; on failure
 * the error has been reported (print_error). */
static int eval_run(const eval_opts *o, eval_result *r)
{
    char msg[1024] = "";
    int code = WEXIT_OK;
    st_file *f = NULL;
    dataset_scan scan;
    memset(&scan, 0, sizeof scan);
    dataset_store *store = NULL;
    dataset_split split;
    memset(&split, 0, sizeof split);
    bool data_open = false;
    resnet *m = NULL;
    dataset_loader *l = NULL;
    ckpt_meta *meta = &r->meta;
    blas_set_threads(o->threads);
    int rc = st_open(&f, o->weights, msg, sizeof msg);
    if (rc < 0) {
        code = print_error(train_exit_for(rc, 'm'), msg);
        goto done;
    }
    if ((rc = ckpt_read_meta(f, meta, msg, sizeof msg)) < 0) {
        code = print_error(train_exit_for(rc, 'm'), msg);
        goto done;
    }
    image_norm norm;
    memcpy(norm.mean, meta->mean, sizeof norm.mean);
    memcpy(norm.std, meta->std, sizeof norm.std);
    rc = dataset_open_eval(o->data, o->roots, o->n_roots, meta->classes, meta->nclasses,
                           meta->input_size, &norm, o->cache_dir, o->threads, &scan, &store, &split,
                           msg, sizeof msg);
    data_open = true;
    if (rc < 0) {
        code = print_error(train_exit_for(rc, 'd'), msg);
        goto done;
    }
    if ((rc = resnet_from_safetensors(&m, f, 0, 0, msg, sizeof msg)) < 0) {
        code = print_error(train_exit_for(rc, 'm'), msg);
        goto done;
    }
    resnet_info info;
    resnet_get_info(m, &info);
    if (info.classes != meta->nclasses) {
        snprintf(msg, sizeof msg, "%s: fc.weight has %d rows but the metadata lists %d classes",
                 o->weights, info.classes, meta->nclasses);
        code = print_error(WEXIT_MODEL, msg);
        goto done;
    }
    int mb = (size_t)o->batch < split.n ? o->batch : (int)split.n;
    if ((rc = resnet_prepare(m, FREEZE_ALL, 0.0f, mb, meta->input_size, meta->input_size, msg,
                             sizeof msg)) < 0) {
        code = print_error(rc == ERR_NOMEM ? WEXIT_NOMEM : WEXIT_MODEL, msg);
        goto done;
    }
    resnet_set_train(m, 0);
    if (confusion_init(&r->cm, meta->nclasses) < 0 ||
        dataset_loader_new(&split, meta->input_size, mb, 0, false, NULL, true, &l) < 0) {
        snprintf(msg, sizeof msg, "out of memory: allocating batch buffers (2 x %zu bytes) failed",
                 (size_t)mb * 3 * (size_t)meta->input_size * (size_t)meta->input_size *
                     sizeof(float));
        code = print_error(WEXIT_NOMEM, msg);
        goto done;
    }
    if (o->predictions && !(r->predictions = json_array())) {
        code = print_error(WEXIT_NOMEM, "out of memory");
        goto done;
    }
    log_info("eval: input %d px, mean %.4g %.4g %.4g, std %.4g %.4g %.4g (%s's metadata)",
             meta->input_size, norm.mean[0], norm.mean[1], norm.mean[2], norm.std[0], norm.std[1],
             norm.std[2], o->weights);
    dataset_loader_start(l, 0);
    dataset_batch b;
    while (dataset_loader_next(l, &b) == 1) {
        const float *logits = resnet_forward(m, b.x, b.n, NULL);
        r->loss_sum += (double)resnet_loss(m, b.labels, 0.0f, NULL) * b.n;
        for (int i = 0; i < b.n; i++) {
            const float *li = logits + (size_t)i * (size_t)meta->nclasses;
            confusion_add(&r->cm, b.labels[i], metrics_argmax(li, meta->nclasses));
            if (r->predictions && add_prediction(r, o->data, &split, b.index[i], li, b.labels[i])) {
                code = print_error(WEXIT_NOMEM, "out of memory listing the predictions");
                goto done;
            }
        }
    }
done:
    dataset_loader_free(l);
    resnet_free(m);
    if (data_open) dataset_eval_close(&scan, &store, &split);
    st_close(f);
    return code;
}

/* Prints R as the one JSON object (see the file comment). Returns the exit code. */
static int eval_report(const eval_opts *o, const eval_result *r)
{
    const ckpt_meta *meta = &r->meta;
    const confusion *cm = &r->cm;
    metrics_summary ms;
    confusion_summary(cm, &ms);
    json_t *per = json_array();
    json_t *names = json_array();
    for (int c = 0; c < meta->nclasses; c++) {
        double p, rec, f1;
        int64_t support;
        confusion_class(cm, c, &p, &rec, &f1, &support);
        json_array_append_new(per, json_pack("{s:s, s:f, s:f, s:f, s:I}", "class", meta->classes[c],
                                             "precision", p, "recall", rec, "f1", f1, "support",
                                             (json_int_t)support));
        json_array_append_new(names, json_string(meta->classes[c]));
    }
    json_t *out =
        json_pack("{s:f, s:f, s:f, s:f, s:f, s:o, s:o, s:o, s:I, s:s, s:s}", "loss",
                  cm->total ? r->loss_sum / (double)cm->total : 0.0, "accuracy", ms.accuracy,
                  "precision", ms.precision, "recall", ms.recall, "f1", ms.f1, "per_class", per,
                  "confusion_matrix", confusion_to_json(cm), "classes", names, "images",
                  (json_int_t)cm->total, "weights", o->weights, "data", o->data);
    if (out) {
        json_object_set_new(out, "input_size", json_integer(meta->input_size));
        json_object_set_new(out, "normalization",
                            json_pack("{s:[f,f,f], s:[f,f,f]}", "mean", (double)meta->mean[0],
                                      (double)meta->mean[1], (double)meta->mean[2], "std",
                                      (double)meta->std[0], (double)meta->std[1],
                                      (double)meta->std[2]));
        if (r->predictions) json_object_set(out, "predictions", r->predictions);
    }
    char *txt = out ? json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(out);
    if (!txt) return print_error(WEXIT_NOMEM, "out of memory formatting the result");
    errno = 0;
    int werr = printf("%s\n", txt) < 0 || fflush(stdout) != 0 ? (errno ? errno : EIO) : 0;
    free(txt);
    if (werr && fileio_err_for_errno(werr) == ERR_NOSPACE) {
        /* No space for the result: the daemon runs the evaluation again later. */
        char m[160];
        snprintf(m, sizeof m, "cannot write the result to stdout: %s", strerror(werr));
        return print_error(WEXIT_NOSPACE, m);
    }
    log_info("eval %s on %s: %lld images, accuracy %.4f, macro f1 %.4f", o->weights, o->data,
             (long long)cm->total, ms.accuracy, ms.f1);
    return WEXIT_OK;
}

int cmd_eval(int argc, char **argv)
{
    events_init(stdout);
    eval_opts o;
    char msg[1024] = "";
    int code = eval_parse(argc, argv, &o, msg, sizeof msg);
    if (code || o.help) {
        datapath_roots_free(o.roots, o.n_roots);
        return code ? print_error(code, msg) : WEXIT_OK;
    }
    eval_result r = {0};
    code = eval_run(&o, &r);
    if (code == WEXIT_OK) code = eval_report(&o, &r);
    eval_result_free(&r);
    datapath_roots_free(o.roots, o.n_roots);
    return code;
}
