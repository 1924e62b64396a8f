/* bench_cmd — `sweep-worker bench`: training and inference throughput of the
 * compute engine on random data, printed as ONE JSON object (README.md "Contract").
 *
 *   sweep-worker bench --arch A --input-size N --batch B [--freeze STAGE]
 *                      [--threads T] [--steps S] [--classes K] [--width W]
 *
 * The model is built from scratch (resnet_create, PyTorch's initialisation),
 * the batch is random normal pixels with random labels, so no files are
 * needed. The measured steps are exactly what a trial does per batch:
 *   train: zero grads, training-mode forward, softmax cross-entropy,
 *          backward through the trainable part, SGD step (lr 0.01,
 *          momentum 0.9, weight decay 1e-4);
 *   infer: evaluation-mode forward.
 * One untimed warm-up step of each comes first (it allocates nothing — the
 * arena is made by resnet_prepare — but it touches the memory for the first
 * time, which is slow here: about 9 us per 4 KiB page); its time is reported as
 * first_step_s. tests/bench/torch_bench.py does the same steps in PyTorch and
 * prints the same keys.
 *
 * Keys: train_images_per_s, infer_images_per_s, gflops (floating-point
 * operations per second reached in training, counting a forward pass of every
 * layer plus dW and dX of the trainable ones), infer_gflops, blas_core,
 * threads, sgemm_gflops_peak (best of 3 square 2048 sgemm calls in this run,
 * measured after the model so it does not count towards peak_rss_mb),
 * peak_rss_mb (getrusage high-water mark), and the configuration.
 * Steps: bench_parse (argv -> bench_opts), bench_run (build, time, into a
 * bench_result) and bench_report (the JSON object). */
#include <cblas.h>
#include <getopt.h> // optind
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "errors.h"
#include "optim.h"
#include "params.h"
#include "pool.h"
#include "resnet.h"
#include "rng.h"
#include "timeutil.h"
#include "worker_cmds.h"

#define BENCH_SGEMM_N 2048
#define BENCH_LR 0.01f

static void usage(FILE *f)
{
    fprintf(f, "usage: sweep-worker bench --arch A --input-size N --batch B [--freeze STAGE]\n"
               "                          [--threads T] [--steps S] [--classes K] [--width W]\n"
               "\n"
               "Measures training and inference images/s of a from-scratch model on random\n"
               "data and prints one JSON object (train_images_per_s, infer_images_per_s,\n"
               "gflops, blas_core, threads, sgemm_gflops_peak, peak_rss_mb, ...).\n"
               "\n"
               "  --arch A          resnet18, resnet34 or resnet50 (default resnet18)\n"
               "  --input-size N    input side in pixels (default 224)\n"
               "  --batch B         images per step (default 16)\n"
               "  --freeze STAGE    none, stem, layer1 ... layer4, all (default none)\n"
               "  --threads T       compute threads (default 1)\n"
               "  --steps S         timed steps of each kind after one warm-up (default 5)\n"
               "  --classes K       classifier outputs (default 1000)\n"
               "  --width W         stem width (default 64, torchvision's)\n");
}

/* What the command line asks for. */
typedef struct {
    const char *arch;        // --arch A
    const char *freeze_name; // --freeze STAGE as given
    freeze_kind freeze;      // ... as a freeze_kind
    int input;               // --input-size N
    int batch;               // --batch B
    int threads;             // --threads T
    int steps;               // --steps S, timed steps of each kind
    int classes;             // --classes K
    int width;               // --width W
    bool help;               // --help / -h: print the usage, measure nothing
} bench_opts;

/* The options (cmd_parse_options). */
static const cmd_opt bench_options[] = {
    {"--arch", CMD_OPT_STR, 0, 0, offsetof(bench_opts, arch)},
    {"--input-size", CMD_OPT_INT, 16, 4096, offsetof(bench_opts, input)},
    {"--batch", CMD_OPT_INT, 1, 4096, offsetof(bench_opts, batch)},
    {"--freeze", CMD_OPT_STR, 0, 0, offsetof(bench_opts, freeze_name)},
    {"--threads", CMD_OPT_INT, 1, 1024, offsetof(bench_opts, threads)},
    {"--steps", CMD_OPT_INT, 1, 100000, offsetof(bench_opts, steps)},
    {"--classes", CMD_OPT_INT, 1, 1000000, offsetof(bench_opts, classes)},
    {"--width", CMD_OPT_INT, 1, 4096, offsetof(bench_opts, width)},
};

/* What was measured, for bench_report. */
typedef struct {
    resnet_info info;     // the model built
    size_t ntrain;        // trainable parameters
    float loss;           // loss after the last timed step
    double first_train;   // seconds of the warm-up training step
    double train_s;       // seconds of the timed training steps
    double first_infer;   // seconds of the warm-up inference step
    double infer_s;       // seconds of the timed inference steps
    double rss;           // peak resident memory, MiB
    double fwd_all;       // forward FLOPs per image, whole model
    double fwd_trainable; // ... of its trainable part
    double peak;          // best sgemm GFLOPS
} bench_result;

/* Output side of a 3x3/2 pad 1 (or 1x1/2) step, and of conv1 7x7/2 pad 3. */
static int down2(int s)
{
    return (s - 1) / 2 + 1;
}

/* Forward multiply-adds x2 per image of the convolution/linear tensor T,
 * given the stage resolutions RES[0] (conv1 output), RES[1] (after the
 * max-pool = layer1), RES[2..4] (layer2..4). 0 for other tensors. */
static double tensor_flops(const resnet_tensor *t, const int res[5], int bottleneck)
{
    if (!t->is_param) return 0;
    if (!strcmp(t->name, "fc.weight")) return 2.0 * (double)t->numel;
    if (t->ndim != 4) return 0;
    int out;
    int stage, block;
    char conv[32];
    if (!strcmp(t->name, "conv1.weight")) {
        out = res[0];
    } else if (sscanf(t->name, "layer%d.%d.%31[^.]", &stage, &block, conv) == 3 && stage >= 1 &&
               stage <= 4) {
        out = res[stage];
        /* A Bottleneck's first 1x1 runs at the block's input resolution
         * (torchvision puts the stride on conv2). */
        if (bottleneck && block == 0 && stage >= 2 && !strcmp(conv, "conv1")) out = res[stage - 1];
    } else {
        return 0;
    }
    return 2.0 * (double)t->numel * out * out;
}

/* Forward FLOPs per image of the whole model and of its trainable part. */
static void count_flops(const resnet *m, int input, double *total, double *trainable)
{
    resnet_info info;
    resnet_get_info(m, &info);
    if (info.family != ARCH_RESNET) { // VGG, Inception v3: the engine's count (all trainable here)
        *total = *trainable = resnet_flops(m);
        return;
    }
    int res[5];
    res[0] = down2(input);  // conv1 7x7/2 pad 3 gives floor((N-1)/2)+1 too
    res[1] = down2(res[0]); // max-pool 3x3/2 pad 1
    for (int l = 2; l <= 4; l++)
        res[l] = down2(res[l - 1]);
    *total = *trainable = 0;
    for (size_t i = 0; i < resnet_tensor_count(m); i++) {
        const resnet_tensor *t = resnet_tensor_at(m, i);
        double f = tensor_flops(t, res, info.block == RESNET_BOTTLENECK);
        *total += f;
        if (t->trainable) *trainable += f;
    }
}

/* Best GFLOPS of 3 square N sgemm calls (after one untimed call), on the
 * engine's threads as every product of a step runs (layers_sgemm). */
static double sgemm_peak(int n)
{
    size_t nn = (size_t)n * n;
    float *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b), *c = malloc(nn * sizeof *c);
    double best = 0;
    if (a && b && c) {
        for (size_t i = 0; i < nn; i++) {
            a[i] = (float)(i % 13) * 0.01f;
            b[i] = (float)(i % 7) * 0.02f;
        }
        for (int r = 0; r < 4; r++) {
            double t0 = time_mono();
            layers_sgemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
            double dt = time_mono() - t0;
            if (r > 0 && dt > 0 && 2.0 * n * nn / dt / 1e9 > best) best = 2.0 * n * nn / dt / 1e9;
        }
    }
    free(a);
    free(b);
    free(c);
    return best;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (double)ru.ru_maxrss / 1024.0; // ru_maxrss is in KiB on Linux
}

/* One training step; returns the loss. */
static float train_step(resnet *m, optim *o, const float *x, const int *labels, int b)
{
    resnet_zero_grad(m);
    resnet_forward(m, x, b, NULL);
    float loss = resnet_loss(m, labels, 0.0f, NULL);
    resnet_backward(m);
    size_t n;
    float *grads;
    float *params = resnet_trainable(m, &n, &grads);
    optim_step(o, params, grads, BENCH_LR);
    return loss;
}

/* argv -> O; --help prints the usage, errors go to stderr. 0, or WEXIT_SPEC. */
static int bench_parse(int argc, char **argv, bench_opts *o)
{
    *o = (bench_opts){.arch = "resnet18",
                      .freeze_name = "none",
                      .input = 224,
                      .batch = 16,
                      .threads = 1,
                      .steps = 5,
                      .classes = 1000,
                      .width = 64};
    int rc = cmd_parse_options("bench", argc, argv, bench_options,
                               sizeof bench_options / sizeof bench_options[0], o, usage, &o->help);
    if (rc || o->help) return rc;
    if (optind < argc) {
        fprintf(stderr, "sweep-worker bench: unexpected argument '%s'\n", argv[optind]);
        return WEXIT_SPEC;
    }
    static const char *const names[] = {"none",   "stem",   "layer1", "layer2",
                                        "layer3", "layer4", "all"};
    int found = -1;
    for (int i = 0; i < 7; i++)
        if (!strcmp(o->freeze_name, names[i])) found = i;
    if (found < 0) {
        fprintf(stderr,
                "sweep-worker bench: --freeze: expected one of none, stem, layer1, layer2, "
                "layer3, layer4, all, got \"%s\"\n",
                o->freeze_name);
        return WEXIT_SPEC;
    }
    o->freeze = (freeze_kind)found;
    return 0;
}

/* Builds the model and times the steps into R. Returns the exit code; errors
 * go to stderr. */
static int bench_run(const bench_opts *o, bench_result *r)
{
    blas_set_threads(o->threads);
    char msg[1024] = "";
    int status = WEXIT_OK;
    resnet *m = NULL;
    optim opt = {0};
    float *x = NULL;
    int *labels = NULL;
    int batch = o->batch, input = o->input;
    int rc = resnet_create(&m, o->arch, o->width, o->classes, 1, msg, sizeof msg);
    if (rc) {
        fprintf(stderr, "sweep-worker bench: %s\n", msg);
        return rc == ERR_NOMEM ? WEXIT_NOMEM : WEXIT_SPEC;
    }
    if ((rc = resnet_prepare(m, o->freeze, 0.0f, batch, input, input, msg, sizeof msg))) {
        fprintf(stderr, "sweep-worker bench: %s\n", msg);
        status = rc == ERR_NOMEM ? WEXIT_NOMEM : WEXIT_SPEC;
        goto out;
    }
    float *grads;
    resnet_trainable(m, &r->ntrain, &grads);
    optim_config cfg = {
        .kind = OPTIM_SGD, .momentum = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 1e-4f};
    if ((rc = optim_init(&opt, &cfg, r->ntrain, msg, sizeof msg))) {
        fprintf(stderr, "sweep-worker bench: %s\n", msg);
        status = rc == ERR_NOMEM ? WEXIT_NOMEM : WEXIT_SPEC;
        goto out;
    }
    size_t per = (size_t)3 * input * input;
    x = malloc(sizeof(float) * per * (size_t)batch);
    labels = malloc(sizeof(int) * (size_t)batch);
    if (!x || !labels) {
        fprintf(stderr, "sweep-worker bench: out of memory for a batch of %d\n", batch);
        status = WEXIT_NOMEM;
        goto out;
    }
    rng_t rng;
    rng_seed(&rng, 42);
    for (size_t i = 0; i < per * (size_t)batch; i++)
        x[i] = (float)rng_normal(&rng);
    for (int i = 0; i < batch; i++)
        labels[i] = (int)rng_int(&rng, 0, o->classes - 1);

    /* Training: one warm-up step, then STEPS timed ones. */
    resnet_set_train(m, 1);
    double t0 = time_mono();
    r->loss = train_step(m, &opt, x, labels, batch);
    r->first_train = time_mono() - t0;
    t0 = time_mono();
    for (int s = 0; s < o->steps; s++)
        r->loss = train_step(m, &opt, x, labels, batch);
    r->train_s = time_mono() - t0;
    if (!isfinite(r->loss)) {
        fprintf(stderr, "sweep-worker bench: the loss is not finite (%g)\n", (double)r->loss);
        status = WEXIT_DIVERGED;
        goto out;
    }

    /* Inference: evaluation-mode forward passes. */
    resnet_set_train(m, 0);
    t0 = time_mono();
    resnet_forward(m, x, batch, NULL);
    r->first_infer = time_mono() - t0;
    t0 = time_mono();
    for (int s = 0; s < o->steps; s++)
        resnet_forward(m, x, batch, NULL);
    r->infer_s = time_mono() - t0;
    r->rss = peak_rss_mb();

    count_flops(m, input, &r->fwd_all, &r->fwd_trainable);
    r->peak = sgemm_peak(BENCH_SGEMM_N);
    resnet_get_info(m, &r->info);
out:
    free(x);
    free(labels);
    optim_free(&opt);
    if (m) resnet_free(m);
    return status;
}

/* Prints R as the one JSON object (see the file comment). */
static void bench_report(const bench_opts *o, const bench_result *r)
{
    double train_ips = (double)o->batch * o->steps / r->train_s;
    double infer_ips = (double)o->batch * o->steps / r->infer_s;
    json_t *j = json_object();
    json_object_set_new(j, "arch", json_string(o->arch));
    json_object_set_new(j, "model", json_string(r->info.arch));
    json_object_set_new(j, "input_size", json_integer(o->input));
    json_object_set_new(j, "batch", json_integer(o->batch));
    json_object_set_new(j, "freeze", json_string(o->freeze_name));
    json_object_set_new(j, "classes", json_integer(o->classes));
    json_object_set_new(j, "width", json_integer(o->width));
    json_object_set_new(j, "steps", json_integer(o->steps));
    json_object_set_new(j, "threads", json_integer(blas_threads()));
    json_object_set_new(j, "blas_core", json_string(blas_core_name()));
    json_object_set_new(j, "blas_policy", json_string(blas_policy_name()));
    if (blas_kernel_note()) json_object_set_new(j, "blas_note", json_string(blas_kernel_note()));
    json_object_set_new(j, "train_images_per_s", json_real(train_ips));
    json_object_set_new(j, "infer_images_per_s", json_real(infer_ips));
    json_object_set_new(j, "gflops",
                        json_real((r->fwd_all + 2 * r->fwd_trainable) * train_ips / 1e9));
    json_object_set_new(j, "infer_gflops", json_real(r->fwd_all * infer_ips / 1e9));
    json_object_set_new(j, "sgemm_gflops_peak", json_real(r->peak));
    json_object_set_new(j, "peak_rss_mb", json_real(r->rss));
    json_object_set_new(j, "forward_gflop_per_image", json_real(r->fwd_all / 1e9));
    json_object_set_new(j, "train_step_s", json_real(r->train_s / o->steps));
    json_object_set_new(j, "infer_step_s", json_real(r->infer_s / o->steps));
    json_object_set_new(j, "first_train_step_s", json_real(r->first_train));
    json_object_set_new(j, "first_infer_step_s", json_real(r->first_infer));
    json_object_set_new(j, "loss", json_real(r->loss));
    json_object_set_new(j, "params", json_integer((json_int_t)r->info.param_count));
    json_object_set_new(j, "trainable_params", json_integer((json_int_t)r->ntrain));
    char *line = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    if (line) printf("%s\n", line);
    free(line);
    json_decref(j);
}

int cmd_bench(int argc, char **argv)
{
    bench_opts o;
    int status = bench_parse(argc, argv, &o);
    if (status || o.help) return status;
    bench_result r;
    memset(&r, 0, sizeof r);
    status = bench_run(&o, &r);
    if (status == WEXIT_OK) bench_report(&o, &r);
    return status;
}
