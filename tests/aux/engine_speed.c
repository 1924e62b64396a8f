/* engine_speed — training and inference throughput of the engine on a
 * from-scratch ResNet, for comparing against PyTorch doing the same steps
 * (tests/aux/engine_speed_torch.py): a training step is forward + softmax
 * cross-entropy + backward + SGD momentum update; inference is an
 * evaluation-mode forward. Prints one JSON line.
 *
 * usage: engine_speed [--arch resnet18] [--size 224] [--batch 16] [--steps 5]
 *                     [--threads 2] [--freeze none|stem|layer1..4|all] [--classes 1000]
 *                     [--train 0|1]   (0: inference only)
 * Set OPENBLAS_CORETYPE (e.g. SkylakeX) in the environment: this program does
 * not re-execute itself the way sweep-worker does. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "optim.h"
#include "pool.h"
#include "resnet.h"
#include "rng.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds of the whole process (all threads): less sensitive to other
 * load on the machine than wall time, useful when comparing kernels. */
static double cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

int main(int argc, char **argv)
{
    const char *arch = "resnet18";
    int size = 224, batch = 16, steps = 5, threads = 2, classes = 1000, do_train = 1;
    freeze_kind freeze = FREEZE_NONE;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--arch"))
            arch = v;
        else if (!strcmp(k, "--size"))
            size = atoi(v);
        else if (!strcmp(k, "--batch"))
            batch = atoi(v);
        else if (!strcmp(k, "--steps"))
            steps = atoi(v);
        else if (!strcmp(k, "--threads"))
            threads = atoi(v);
        else if (!strcmp(k, "--train"))
            do_train = atoi(v);
        else if (!strcmp(k, "--classes"))
            classes = atoi(v);
        else if (!strcmp(k, "--freeze")) {
            static const char *const names[] = {"none",   "stem",   "layer1", "layer2",
                                                "layer3", "layer4", "all"};
            for (int j = 0; j < 7; j++)
                if (!strcmp(v, names[j])) freeze = (freeze_kind)j;
        } else {
            fprintf(stderr, "unknown option %s\n", k);
            return 2;
        }
    }
    layers_set_threads(threads); // the engine's threads (split GEMMs, OpenBLAS single-threaded)
    char msg[256];
    resnet *m;
    if (resnet_create(&m, arch, 64, classes, 1, msg, sizeof msg) ||
        resnet_prepare(m, freeze, 0.0f, batch, size, size, msg, sizeof msg)) {
        fprintf(stderr, "engine_speed: %s\n", msg);
        return 1;
    }
    size_t nx = (size_t)batch * 3 * size * size;
    float *x = malloc(sizeof(float) * nx);
    int *labels = malloc(sizeof(int) * batch);
    rng_t r;
    rng_seed(&r, 7);
    for (size_t i = 0; i < nx; i++)
        x[i] = (float)rng_normal(&r);
    for (int i = 0; i < batch; i++)
        labels[i] = (int)rng_int(&r, 0, classes - 1);
    size_t n;
    float *grads;
    float *params = resnet_trainable(m, &n, &grads);
    optim o;
    optim_config cfg = {.kind = OPTIM_SGD, .momentum = 0.9f, .weight_decay = 1e-4f};
    if (optim_init(&o, &cfg, n, msg, sizeof msg)) return 1;

    resnet_set_train(m, 1);
    double t_train = 0, loss = 0, c_train = 0, c_inf = 0;
    for (int s = 0; s < (do_train ? steps + 1 : 0); s++) {
        double t0 = now(), c0 = cpu();
        resnet_zero_grad(m);
        resnet_forward(m, x, batch, &r);
        loss = resnet_loss(m, labels, 0, NULL);
        resnet_backward(m);
        optim_step(&o, params, grads, 0.01f);
        if (s > 0) { // step 0 warms up
            t_train += now() - t0;
            c_train += cpu() - c0;
        }
    }
    resnet_set_train(m, 0);
    double t_inf = 0;
    for (int s = 0; s < steps + 1; s++) {
        double t0 = now(), c0 = cpu();
        resnet_forward(m, x, batch, NULL);
        if (s > 0) {
            t_inf += now() - t0;
            c_inf += cpu() - c0;
        }
    }
    printf("{\"engine\":\"sweep\",\"arch\":\"%s\",\"size\":%d,\"batch\":%d,\"threads\":%d,"
           "\"train_images_per_s\":%.2f,\"infer_images_per_s\":%.2f,\"loss\":%.4f,"
           "\"gflops_per_image\":%.3f,\"train_cpu_s_per_image\":%.5f,"
           "\"infer_cpu_s_per_image\":%.5f,\"peak_rss_mb\":%.0f}\n",
           arch, size, batch, threads, steps * batch / t_train, steps * batch / t_inf, loss,
           resnet_flops(m) / 1e9, c_train / (steps * batch), c_inf / (steps * batch),
           peak_rss_mb());
    optim_free(&o);
    resnet_free(m);
    free(x);
    free(labels);
    return 0;
}
