/* predict_cmd — `sweep-worker predict`: classifies JPEG images with a
 * safetensors model and prints one JSON line per image (README.md "Contract").
 *
 *   sweep-worker predict --weights FILE [--arch NAME] [--input-size N] [--raw]
 *                        [--top K] [--threads T] [--batch B] IMAGE...
 *
 * Output per image, in argument order:
 *   {"file":…, "top":[{"class":…, "index":…, "prob":…}, …], "logits":[…]}
 * or, when the image cannot be used, {"file":…, "error":"…"}; then the exit
 * status is 3 once every image has been tried.
 *
 * The model comes from the file's tensor names and shapes (resnet.h), with
 * its own head. Preprocessing and class names come from the file's
 * __metadata__ when present — the keys a trial's checkpoint writes
 * (checkpoint.h): "classes" (JSON array of names, one per fc row),
 * "input_size" (decimal), "mean" and "std" (JSON arrays of 3 numbers, RGB on
 * the 0..1 scale), "arch". Plain pretrained weights have none of them: then
 * the classes are named by their index ("0", "1", …), the input size is 224
 * and normalisation is ImageNet's (weights_meta.h, shared with run and the
 * daemon). --input-size overrides the file; --arch, if
 * given, must match the architecture found in the file.
 *
 * Preprocessing is the evaluation transform of training, validation and
 * eval, through the same code (image_preprocess_file in image.h): decode
 * with libjpeg-turbo into the data sets' stored square (shorter side resized
 * to round(input_size / 0.875) with an antialiased filter, center-cropped
 * square), center-crop input_size, normalise with the file's mean/std; so an
 * image gets bit-identical logits here and in `eval --predictions` (same
 * batch and threads; see README). --raw skips resize and crop; the image
 * must already be input_size x input_size. The input size and normalisation
 * in use are logged (info) on stderr. Numbers are printed exactly (17
 * significant digits).
 *
 * Steps: predict_parse (argv -> predict_opts), predict_run (the batches) and
 * the report step report_result / report_error, one line per image, which
 * predict_run calls after each batch so that results stream. */
#include <getopt.h> // optind
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "image.h"
#include "log.h"
#include "resnet.h"
#include "safetensors.h"
#include "weights_meta.h"
#include "worker_cmds.h"

#define PREDICT_DEFAULT_TOP 5
#define PREDICT_DEFAULT_BATCH 8

/* Everything predict needs to know about the model file. */
typedef struct {
    int input_size;         // network input side in pixels
    const char *size_from;  // where it came from: "--input-size", "weights" or "default"
    image_norm norm;        // normalisation (the file's mean/std, else ImageNet's)
    bool norm_from_weights; // the file's metadata gave mean or std
    char **classes;         // (nclasses) names; owned
    int nclasses;           // = fc rows
} predict_meta;

/* What the command line asks for. */
typedef struct {
    const char *weights; // --weights FILE
    const char *arch;    // --arch NAME to check, NULL = any
    int input_size;      // --input-size N, 0 = the file's
    int raw;             // --raw: no resize/crop
    int top;             // --top K
    int threads;         // --threads T, default 1 (as eval: the same threads, the same bits)
    int batch;           // --batch B
    char **images;       // the IMAGE operands (borrowed from argv)
    int nimages;         // their count
    bool help;           // --help / -h: print the usage, classify nothing
} predict_opts;

/* The options (cmd_parse_options). */
static const cmd_opt predict_options[] = {
    {"--weights", CMD_OPT_STR, 0, 0, offsetof(predict_opts, weights)},
    {"--arch", CMD_OPT_STR, 0, 0, offsetof(predict_opts, arch)},
    {"--input-size", CMD_OPT_INT, 8, 4096, offsetof(predict_opts, input_size)},
    {"--raw", CMD_OPT_FLAG, 0, 0, offsetof(predict_opts, raw)},
    {"--top", CMD_OPT_INT, 1, 1 << 20, offsetof(predict_opts, top)},
    {"--threads", CMD_OPT_INT, 1, 1024, offsetof(predict_opts, threads)},
    {"--batch", CMD_OPT_INT, 1, 1024, offsetof(predict_opts, batch)},
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sweep-worker predict --weights FILE [--arch NAME] [--input-size N] [--raw]\n"
            "                            [--top K] [--threads T] [--batch B] IMAGE...\n"
            "\n"
            "Classifies JPEG images; prints one JSON line per image:\n"
            "  {\"file\":…, \"top\":[{\"class\":…, \"index\":…, \"prob\":…}, …], \"logits\":[…]}\n"
            "\n"
            "  --weights FILE    safetensors weights (torchvision/timm ResNet names) or a\n"
            "                    trial checkpoint (carries class names and preprocessing)\n"
            "  --arch NAME       check that the file holds this architecture (resnet18, ...)\n"
            "  --input-size N    network input side (default: the file's, else 224)\n"
            "  --raw             no resize/crop: images must already be N x N\n"
            "  --top K           classes listed per image (default 5)\n"
            "  --threads T       compute threads (default 1, as eval)\n"
            "  --batch B         images per forward pass (default 8)\n"
            "\n"
            "Exit status: 0 all images classified, 2 bad arguments, 3 some image could not\n"
            "be read (its line has \"error\"), 4 missing or invalid weights, 6 out of memory.\n");
}

static void meta_free(predict_meta *pm)
{
    if (pm->classes)
        for (int i = 0; i < pm->nclasses; i++)
            free(pm->classes[i]);
    free(pm->classes);
    memset(pm, 0, sizeof *pm);
}

/* Reads the preprocessing and class names from F's metadata (see the file
 * comment), for a model with NCLASSES outputs. INPUT_SIZE > 0 overrides. */
static int meta_read(const st_file *f, int nclasses, int input_size, predict_meta *pm, char *msg,
                     size_t msglen)
{
    memset(pm, 0, sizeof *pm);
    const char *path = st_path(f);
    weights_meta wm;
    int rc = weights_meta_read(st_file_header(f), &wm, msg, msglen);
    if (rc) return rc;
    pm->input_size = weights_input_size(&wm, input_size, &pm->size_from);
    if (!strcmp(pm->size_from, "given")) pm->size_from = "--input-size";
    pm->norm = image_norm_of(&wm);
    pm->norm_from_weights = wm.has_mean || wm.has_std;
    const char *s;

    pm->classes = calloc((size_t)nclasses, sizeof *pm->classes);
    if (!pm->classes) return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    pm->nclasses = nclasses;
    s = st_metadata(f, "classes");
    json_t *a = s ? json_loads(s, 0, NULL) : NULL;
    if (s && (!json_is_array(a) || json_array_size(a) != (size_t)nclasses)) {
        rc = err_set(msg, msglen, ERR_MODEL,
                     "%s: metadata \"classes\" must be a JSON array of %d names (one per row "
                     "of fc.weight)%s",
                     path, nclasses, json_is_array(a) ? ", the sizes differ" : "");
        json_decref(a);
        return rc;
    }
    for (int i = 0; i < nclasses; i++) {
        char num[24];
        const char *name = num;
        if (a) {
            name = json_string_value(json_array_get(a, (size_t)i));
            if (!name) {
                json_decref(a);
                return err_set(msg, msglen, ERR_MODEL, "%s: metadata classes[%d] is not a string",
                               path, i);
            }
        } else {
            snprintf(num, sizeof num, "%d", i);
        }
        if (!(pm->classes[i] = strdup(name))) {
            json_decref(a);
            return err_set(msg, msglen, ERR_NOMEM, "out of memory");
        }
    }
    json_decref(a);
    return 0;
}

/* A JSON string for a file name: the name itself when it is valid UTF-8,
 * else a copy with every byte outside ASCII replaced by '?'. New reference. */
static json_t *json_filename(const char *file)
{
    json_t *s = json_string(file);
    if (s) return s;
    char *copy = strdup(file);
    if (!copy) return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80) *p = '?';
    s = json_string(copy);
    free(copy);
    return s;
}

/* Prints O as one compact JSON line, numbers exact (jansson's 17 digits),
 * and drops the reference. 0 or ERR_NOMEM. */
static int print_line(json_t *o)
{
    char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (line) printf("%s\n", line);
    free(line);
    json_decref(o);
    return line ? 0 : ERR_NOMEM;
}

json_t *cmd_prediction(const char *file, const float *logits, char *const *classes, int k, int top)
{
    double mx = logits[0], sum = 0;
    for (int i = 1; i < k; i++)
        if (logits[i] > mx) mx = logits[i];
    for (int i = 0; i < k; i++)
        sum += exp((double)logits[i] - mx);
    if (top > k) top = k;
    char *taken = calloc((size_t)k, 1);
    json_t *o = json_object(), *ta = json_array(), *la = json_array();
    if (!taken || !o || !ta || !la) goto fail;
    /* Top K by selection: K is small. */
    for (int j = 0; j < top; j++) {
        int b = -1;
        for (int i = 0; i < k; i++)
            if (!taken[i] && (b < 0 || logits[i] > logits[b])) b = i;
        taken[b] = 1;
        double p = exp((double)logits[b] - mx) / sum;
        if (json_array_append_new(
                ta, json_pack("{s:s, s:i, s:f}", "class", classes[b], "index", b, "prob", p)))
            goto fail;
    }
    for (int i = 0; i < k; i++)
        if (json_array_append_new(la, json_real(logits[i]))) goto fail;
    free(taken);
    if (json_object_set_new(o, "file", json_filename(file)) || json_object_set_new(o, "top", ta) ||
        json_object_set_new(o, "logits", la)) {
        json_decref(o);
        return NULL;
    }
    return o;
fail:
    free(taken);
    json_decref(o);
    json_decref(ta);
    json_decref(la);
    return NULL;
}

/* The report step, one image: prints the JSON line for one classified image.
 * 0 or ERR_NOMEM. */
static int report_result(const char *file, const float *logits, const predict_meta *pm, int top)
{
    json_t *o = cmd_prediction(file, logits, pm->classes, pm->nclasses, top);
    return o ? print_line(o) : ERR_NOMEM;
}

/* The report step, one image that could not be used: {"file":…, "error":…}. */
static void report_error(const char *file, const char *message)
{
    print_line(json_pack("{s:o?, s:s}", "file", json_filename(file), "error", message));
}

/* argv -> O; --help prints the usage, errors go to stderr. 0, or WEXIT_SPEC. */
static int predict_parse(int argc, char **argv, predict_opts *o)
{
    *o = (predict_opts){.top = PREDICT_DEFAULT_TOP, .batch = PREDICT_DEFAULT_BATCH, .threads = 1};
    int rc =
        cmd_parse_options("predict", argc, argv, predict_options,
                          sizeof predict_options / sizeof predict_options[0], o, usage, &o->help);
    if (rc || o->help) return rc;
    if (!o->weights) {
        fprintf(stderr, "sweep-worker predict: --weights FILE is required\n\n");
        usage(stderr);
        return WEXIT_SPEC;
    }
    o->nimages = argc - optind;
    o->images = argv + optind;
    if (o->nimages < 1) {
        fprintf(stderr, "sweep-worker predict: no IMAGE given\n\n");
        usage(stderr);
        return WEXIT_SPEC;
    }
    return 0;
}

/* Loads the model and classifies O's images in batches of consecutive ones;
 * after each batch its lines are printed in argument order (report_result,
 * report_error), so results stream. Returns the exit code; model errors go
 * to stderr. */
static int predict_run(const predict_opts *o)
{
    blas_set_threads(o->threads);
    char msg[1024] = "";
    int status = WEXIT_OK;
    st_file *f = NULL;
    resnet *m = NULL;
    predict_meta pm = {0};
    float *x = NULL;
    int *slot = NULL;
    int top = o->top, batch = o->batch, nimages = o->nimages;
    char **images = o->images;
    int rc = st_open(&f, o->weights, msg, sizeof msg);
    if (rc) {
        fprintf(stderr, "sweep-worker predict: %s\n", msg);
        return rc == ERR_NOMEM ? WEXIT_NOMEM : WEXIT_MODEL;
    }
    if ((rc = resnet_from_safetensors(&m, f, 0, 0, msg, sizeof msg))) goto model_fail;
    resnet_info info;
    resnet_get_info(m, &info);
    if (o->arch && strcmp(o->arch, info.arch)) {
        rc = err_set(msg, sizeof msg, ERR_MODEL, "%s holds a %s, not the --arch %s", o->weights,
                     info.arch, o->arch);
        goto model_fail;
    }
    if ((rc = meta_read(f, info.classes, o->input_size, &pm, msg, sizeof msg))) goto model_fail;
    if (top > pm.nclasses) top = pm.nclasses;
    if (batch > nimages) batch = nimages;
    if ((rc = resnet_prepare(m, FREEZE_ALL, 0.0f, batch, pm.input_size, pm.input_size, msg,
                             sizeof msg))) {
        if (rc == ERR_INVALID) { // an input size the network cannot take
            fprintf(stderr, "sweep-worker predict: input size %d: %s\n", pm.input_size, msg);
            status = WEXIT_SPEC;
            goto out;
        }
        goto model_fail;
    }
    resnet_set_train(m, 0);
    size_t per = (size_t)3 * pm.input_size * pm.input_size;
    x = malloc(sizeof(float) * per * (size_t)batch);
    slot = malloc(sizeof(int) * (size_t)batch);
    if (!x || !slot) {
        rc = err_set(msg, sizeof msg, ERR_NOMEM, "out of memory for %d images of %d pixels", batch,
                     pm.input_size);
        goto model_fail;
    }
    log_info("predict: %s (%s, %d classes), input %d px (%s), mean %.4g %.4g %.4g, std %.4g %.4g "
             "%.4g (%s)",
             o->weights, info.arch, info.classes, pm.input_size,
             !strcmp(pm.size_from, "weights") ? "the weights' metadata" : pm.size_from,
             pm.norm.mean[0], pm.norm.mean[1], pm.norm.mean[2], pm.norm.std[0], pm.norm.std[1],
             pm.norm.std[2], pm.norm_from_weights ? "the weights' metadata" : "ImageNet's");
    log_debug("predict: kernel %s x%d", blas_core_name(), blas_threads());

    for (int start = 0; start < nimages; start += batch) {
        int end = start + batch < nimages ? start + batch : nimages;
        int n = 0;
        char **errs = calloc((size_t)(end - start), sizeof *errs);
        if (!errs) {
            rc = err_set(msg, sizeof msg, ERR_NOMEM, "out of memory");
            goto model_fail;
        }
        for (int i = start; i < end; i++) {
            char emsg[1024] = "";
            int prc = image_preprocess_file(images[i], pm.input_size, &pm.norm, o->raw,
                                            x + per * (size_t)n, emsg, sizeof emsg);
            if (prc) {
                errs[i - start] = strdup(emsg[0] ? emsg : err_str(prc));
                slot[i - start] = -1;
                status = WEXIT_DATA;
            } else {
                slot[i - start] = n++;
            }
        }
        const float *logits = n ? resnet_forward(m, x, n, NULL) : NULL;
        int prc = 0;
        for (int i = start; i < end; i++) {
            if (slot[i - start] < 0)
                report_error(images[i], errs[i - start] ? errs[i - start] : "out of memory");
            else if (!prc)
                prc = report_result(images[i], logits + (size_t)slot[i - start] * pm.nclasses, &pm,
                                    top);
            free(errs[i - start]);
        }
        free(errs);
        fflush(stdout);
        if (prc) {
            rc = err_set(msg, sizeof msg, prc, "out of memory writing the results");
            goto model_fail;
        }
    }
    goto out;
model_fail:
    fprintf(stderr, "sweep-worker predict: %s\n", msg[0] ? msg : err_str(rc));
    status = rc == ERR_NOMEM ? WEXIT_NOMEM : WEXIT_MODEL;
out:
    free(x);
    free(slot);
    meta_free(&pm);
    if (m) resnet_free(m);
    st_close(f);
    return status;
}

int cmd_predict(int argc, char **argv)
{
    predict_opts o;
    int status = predict_parse(argc, argv, &o);
    if (status || o.help) return status;
    return predict_run(&o);
}
