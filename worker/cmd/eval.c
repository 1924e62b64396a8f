/* eval_cmd — `sweep-worker eval --weights CKPT --data DIR`: evaluates a
 * trial's checkpoint (best.safetensors or checkpoint.safetensors) on a
 * labelled ImageFolder and prints one JSON object:
 *   {"loss", "accuracy", "precision", "recall", "f1",            (macro, metrics.h)
 *    "per_class": [{"class", "precision", "recall", "f1", "support"}, ...],
 *    "confusion_matrix": [[...]], "classes": [...], "images", "weights", "data"}
 * The architecture, class names and preprocessing (input size, mean, std)
 * come from the checkpoint's metadata; the folder's class sub-directories are
 * matched to the checkpoint's classes by name (a folder class the model does
 * not know is an error naming it; classes missing from the folder just have
 * support 0). The loss is plain cross-entropy averaged over the images.
 * On failure the same error event line as `run` writes is printed instead,
 * {"event":"error","t":…,"code":…,"exit_code":…,"message":…}, and the exit
 * status follows the contract (2 arguments, 3 data, 4 model, 6 out of memory). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "dataset.h"
#include "errors.h"
#include "events.h"
#include "image.h"
#include "log.h"
#include "metrics.h"
#include "resnet.h"
#include "safetensors.h"
#include "train.h"
#include "worker_cmds.h"

static void eval_usage(FILE *f)
{
    fprintf(f, "usage: sweep-worker eval --weights CKPT --data DIR [--batch B] [--threads T]\n"
               "                          [--cache-dir DIR]\n"
               "\n"
               "Evaluates a trial checkpoint (best.safetensors) on a labelled ImageFolder and\n"
               "prints one JSON object: loss, accuracy, macro precision/recall/f1, per_class,\n"
               "confusion_matrix (rows = true class), classes. Defaults: --batch 64, --threads 1.\n"
               "Exit codes: 0 done, 2 bad arguments, 3 data error, 4 model error, 6 out of "
               "memory.\n");
}

static int print_error(int code, const char *message)
{
    events_error(events_code_for_exit(code), code, message);
    fprintf(stderr, "sweep-worker eval: %s\n", message);
    return code;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    const char *weights = NULL, *data = NULL, *cache_dir = NULL;
    int batch = 64, threads = 1;
    char msg[1024] = "";
    events_init(stdout);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            eval_usage(stdout);
            return WEXIT_OK;
        }
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        bool known = !strcmp(a, "--weights") || !strcmp(a, "--data") ||
                     !strcmp(a, "--batch") || !strcmp(a, "--threads") ||
                     !strcmp(a, "--cache-dir");
        if (!known) {
            snprintf(msg, sizeof msg, "unknown argument '%s' (see --help)", a);
            return print_error(WEXIT_SPEC, msg);
        }
        if (!val) {
            snprintf(msg, sizeof msg, "%s needs a value", a);
            return print_error(WEXIT_SPEC, msg);
        }
        i++;
        if (!strcmp(a, "--weights")) weights = val;
        else if (!strcmp(a, "--data")) data = val;
        else if (!strcmp(a, "--cache-dir")) cache_dir = val;
        else if (!strcmp(a, "--batch") && parse_int(val, 1, 65536, &batch) < 0) {
            snprintf(msg, sizeof msg, "--batch: expected an integer in 1..65536, got '%s'", val);
            return print_error(WEXIT_SPEC, msg);
        } else if (!strcmp(a, "--threads") && parse_int(val, 1, 1024, &threads) < 0) {
            snprintf(msg, sizeof msg, "--threads: expected an integer in 1..1024, got '%s'", val);
            return print_error(WEXIT_SPEC, msg);
        }
    }
    if (!weights || !data)
        return print_error(WEXIT_SPEC, !weights ? "--weights CKPT is required"
                                                : "--data DIR is required");
    blas_set_threads(threads);

    int code = WEXIT_OK;
    st_file *f = NULL;
    ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    dataset_scan scan;
    memset(&scan, 0, sizeof scan);
    dataset_store *store = NULL;
    dataset_split split;
    memset(&split, 0, sizeof split);
    bool data_open = false;
    resnet *m = NULL;
    dataset_loader *l = NULL;
    confusion cm;
    memset(&cm, 0, sizeof cm);
    json_t *out = NULL;
    int rc = st_open(&f, weights, msg, sizeof msg);
    if (rc < 0) {
        code = print_error(train_exit_for(rc, 'm'), msg);
        goto done;
    }
    if ((rc = ckpt_read_meta(f, &meta, msg, sizeof msg)) < 0) {
        code = print_error(train_exit_for(rc, 'm'), msg);
        goto done;
    }
    for (int c = 0; c < 3; c++)
        if (meta.mean[c] != image_mean[c] || meta.std[c] != image_std[c]) {
            log_warn("%s: normalisation differs from ImageNet's; evaluating with ImageNet "
                     "mean/std, as the data pipeline always does",
                     weights);
            break;
        }
    rc = dataset_open_eval(data, meta.classes, meta.nclasses, meta.input_size, cache_dir, threads,
                           &scan, &store, &split, msg, sizeof msg);
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
    if (info.classes != meta.nclasses) {
        snprintf(msg, sizeof msg, "%s: fc.weight has %d rows but the metadata lists %d classes",
                 weights, info.classes, meta.nclasses);
        code = print_error(WEXIT_MODEL, msg);
        goto done;
    }
    int mb = (size_t)batch < split.n ? batch : (int)split.n;
    if ((rc = resnet_prepare(m, FREEZE_ALL, 0.0f, mb, meta.input_size, meta.input_size, msg,
                             sizeof msg)) < 0) {
        code = print_error(rc == ERR_NOMEM ? WEXIT_NOMEM : WEXIT_MODEL, msg);
        goto done;
    }
    resnet_set_train(m, 0);
    if (confusion_init(&cm, meta.nclasses) < 0 ||
        dataset_loader_new(&split, meta.input_size, mb, 0, false, NULL, true, &l) < 0) {
        snprintf(msg, sizeof msg, "out of memory: allocating batch buffers (2 x %zu bytes) failed",
                 (size_t)mb * 3 * (size_t)meta.input_size * (size_t)meta.input_size *
                     sizeof(float));
        code = print_error(WEXIT_NOMEM, msg);
        goto done;
    }
    dataset_loader_start(l, 0);
    dataset_batch b;
    double loss_sum = 0;
    while (dataset_loader_next(l, &b) == 1) {
        const float *logits = resnet_forward(m, b.x, b.n, NULL);
        loss_sum += (double)resnet_loss(m, b.labels, 0.0f, NULL) * b.n;
        for (int i = 0; i < b.n; i++)
            confusion_add(&cm, b.labels[i],
                          metrics_argmax(logits + (size_t)i * (size_t)meta.nclasses,
                                         meta.nclasses));
    }
    metrics_summary ms;
    confusion_summary(&cm, &ms);
    json_t *per = json_array();
    json_t *names = json_array();
    for (int c = 0; c < meta.nclasses; c++) {
        double p, r, f1;
        int64_t support;
        confusion_class(&cm, c, &p, &r, &f1, &support);
        json_array_append_new(per, json_pack("{s:s, s:f, s:f, s:f, s:I}", "class",
                                             meta.classes[c], "precision", p, "recall", r, "f1",
                                             f1, "support", (json_int_t)support));
        json_array_append_new(names, json_string(meta.classes[c]));
    }
    out = json_pack("{s:f, s:f, s:f, s:f, s:f, s:o, s:o, s:o, s:I, s:s, s:s}", "loss",
                    cm.total ? loss_sum / (double)cm.total : 0.0, "accuracy", ms.accuracy,
                    "precision", ms.precision, "recall", ms.recall, "f1", ms.f1, "per_class", per,
                    "confusion_matrix", confusion_to_json(&cm), "classes", names, "images",
                    (json_int_t)cm.total, "weights", weights, "data", data);
    char *txt = out ? json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))
                    : NULL;
    if (!txt) {
        code = print_error(WEXIT_NOMEM, "out of memory formatting the result");
        goto done;
    }
    printf("%s\n", txt);
    fflush(stdout);
    free(txt);
    log_info("eval %s on %s: %lld images, accuracy %.4f, macro f1 %.4f", weights, data,
             (long long)cm.total, ms.accuracy, ms.f1);
done:
    json_decref(out);
    confusion_free(&cm);
    dataset_loader_free(l);
    resnet_free(m);
    if (data_open) dataset_eval_close(&scan, &store, &split);
    ckpt_meta_free(&meta);
    st_close(f);
    return code;
}
