/* test_resnet — the ResNet model on tiny widths: torchvision tensor names and
 * shapes for BasicBlock and Bottleneck nets, PyTorch-style initialisation,
 * safetensors round trip (extra tensors ignored, depth and widths read from
 * the file), head replacement, errors naming the tensor at fault, finite-
 * difference checks of the whole backward pass, freezing (no gradients for the
 * frozen prefix, same suffix gradients, frozen BN stays in eval mode),
 * feature caching equivalence, smaller batches, dropout, and a few SGD steps
 * that fit a fixed batch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "optim.h"
#include "resnet.h"
#include "rng.h"
#include "safetensors.h"
#include "util_jpeg.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    return tju_mkdtemp(tmpdir, sizeof tmpdir, "resnet");
}

static int teardown(void **state)
{
    (void)state;
    tju_rmrf(tmpdir);
    return 0;
}

static resnet *make(const char *arch, int width, int classes, uint64_t seed)
{
    resnet *m = NULL;
    char msg[256] = "";
    int rc = resnet_create(&m, arch, width, classes, seed, msg, sizeof msg);
    if (rc) print_error("resnet_create: %s\n", msg);
    assert_int_equal(rc, 0);
    return m;
}

static void prepare(resnet *m, freeze_kind f, float dropout, int batch, int size)
{
    char msg[256] = "";
    int rc = resnet_prepare(m, f, dropout, batch, size, size, msg, sizeof msg);
    if (rc) print_error("resnet_prepare: %s\n", msg);
    assert_int_equal(rc, 0);
}

static float *images(int b, int size, uint64_t seed)
{
    size_t n = (size_t)b * 3 * size * size;
    float *x = malloc(sizeof(float) * n);
    assert_non_null(x);
    rng_t r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)rng_normal(&r);
    return x;
}

/* Writes M's tensors to PATH, leaving out SKIP, giving RESHAPE a wrong
 * first dimension, and adding a num_batches_tracked (I64) and an optim.*
 * tensor that loaders must ignore. */
static void save(const resnet *m, const char *path, const char *skip, const char *reshape)
{
    st_writer *w = st_writer_new();
    assert_non_null(w);
    for (size_t i = 0; i < resnet_tensor_count(m); i++) {
        const resnet_tensor *t = resnet_tensor_at(m, i);
        if (skip && !strcmp(t->name, skip)) continue;
        int64_t shape[4];
        memcpy(shape, t->shape, sizeof shape);
        if (reshape && !strcmp(t->name, reshape)) {
            shape[0] -= 1;
            assert_int_equal(st_writer_add_raw(w, t->name, ST_F32, t->ndim, shape, t->data,
                                               t->numel / t->shape[0] * shape[0] * sizeof(float)),
                             0);
            continue;
        }
        assert_int_equal(st_writer_add_f32(w, t->name, t->ndim, shape, t->data), 0);
    }
    int64_t one[1] = {1}, nbt = 7;
    assert_int_equal(st_writer_add_raw(w, "bn1.num_batches_tracked", ST_I64, 0, one, &nbt, 8), 0);
    float junk[3] = {1, 2, 3};
    int64_t three[1] = {3};
    assert_int_equal(st_writer_add_f32(w, "optim.momentum.fc.bias", 1, three, junk), 0);
    char msg[256];
    assert_int_equal(st_writer_save(w, path, msg, sizeof msg), 0);
    st_writer_free(w);
}

static int load(resnet **out, const char *path, int classes, char *msg, size_t msglen)
{
    st_file *f;
    int rc = st_open(&f, path, msg, msglen);
    assert_int_equal(rc, 0);
    rc = resnet_from_safetensors(out, f, classes, 5, msg, msglen);
    st_close(f);
    return rc;
}

static const resnet_tensor *need(const resnet *m, const char *name)
{
    const resnet_tensor *t = resnet_find_tensor(m, name);
    if (!t) print_error("missing tensor %s\n", name);
    assert_non_null(t);
    return t;
}

/* ---------- structure ---------- */

static void test_names_basic(void **state)
{
    (void)state;
    resnet *m = make("resnet18", 4, 3, 1);
    /* torchvision resnet18 state_dict has 122 entries, 20 of them num_batches_tracked */
    assert_int_equal(resnet_tensor_count(m), 102);
    const resnet_tensor *t = need(m, "conv1.weight");
    assert_int_equal(t->ndim, 4);
    assert_int_equal(t->shape[0], 4);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(t->shape[2], 7);
    t = need(m, "layer2.0.downsample.0.weight");
    assert_int_equal(t->shape[0], 8);
    assert_int_equal(t->shape[1], 4);
    assert_int_equal(t->shape[2], 1);
    assert_null(resnet_find_tensor(m, "layer1.0.downsample.0.weight"));
    assert_null(resnet_find_tensor(m, "layer2.1.downsample.0.weight"));
    t = need(m, "layer4.1.bn2.running_var");
    assert_int_equal(t->shape[0], 32);
    assert_int_equal(t->is_param, 0);
    t = need(m, "fc.weight");
    assert_int_equal(t->shape[0], 3);
    assert_int_equal(t->shape[1], 32);
    need(m, "layer3.1.conv2.weight");
    assert_string_equal(resnet_tensor_at(m, 0)->name, "conv1.weight");
    assert_string_equal(resnet_tensor_at(m, 101)->name, "fc.bias");
    resnet_info in;
    resnet_get_info(m, &in);
    assert_string_equal(in.arch, "resnet18");
    assert_int_equal(in.block, RESNET_BASIC);
    assert_int_equal(in.features, 32);
    assert_int_equal(in.classes, 3);
    size_t params = 0;
    for (size_t i = 0; i < resnet_tensor_count(m); i++)
        if (resnet_tensor_at(m, i)->is_param) params += resnet_tensor_at(m, i)->numel;
    assert_int_equal(in.param_count, params);
    resnet_free(m);

    /* torchvision resnet18 at width 64 with 1000 classes: 11,689,512 parameters */
    m = make("resnet18", 64, 1000, 1);
    resnet_get_info(m, &in);
    assert_int_equal(in.param_count, 11689512);
    resnet_free(m);
}

static void test_names_bottleneck(void **state)
{
    (void)state;
    resnet *m = make("resnet50", 2, 5, 1);
    /* torchvision resnet50: 320 entries, 53 num_batches_tracked */
    assert_int_equal(resnet_tensor_count(m), 267);
    const resnet_tensor *t = need(m, "layer1.0.downsample.0.weight");
    assert_int_equal(t->shape[0], 8);
    assert_int_equal(t->shape[1], 2);
    t = need(m, "layer3.5.conv3.weight");
    assert_int_equal(t->shape[0], 32);
    assert_int_equal(t->shape[1], 8);
    resnet_info in;
    resnet_get_info(m, &in);
    assert_string_equal(in.arch, "resnet50");
    assert_int_equal(in.block, RESNET_BOTTLENECK);
    assert_int_equal(in.features, 64);
    assert_int_equal(in.blocks[2], 6);
    resnet_free(m);
    m = make("resnet50", 64, 1000, 1);
    resnet_get_info(m, &in);
    assert_int_equal(in.param_count, 25557032); // torchvision resnet50
    resnet_free(m);
}

static void test_create_errors(void **state)
{
    (void)state;
    resnet *m = NULL;
    char msg[256] = "";
    assert_int_equal(resnet_create(&m, "alexnet", 64, 10, 1, msg, sizeof msg), ERR_INVALID);
    assert_non_null(strstr(msg, "alexnet"));
    assert_null(m);
    assert_int_equal(resnet_create(&m, "resnet18", 0, 10, 1, msg, sizeof msg), ERR_INVALID);
    assert_int_equal(resnet_create(&m, "resnet18", 8, 0, 1, msg, sizeof msg), ERR_INVALID);
    m = make("resnet18", 2, 2, 1);
    assert_int_equal(resnet_prepare(m, FREEZE_NONE, 0, 0, 32, 32, msg, sizeof msg), ERR_INVALID);
    assert_int_equal(resnet_prepare(m, FREEZE_NONE, 1.0f, 2, 32, 32, msg, sizeof msg), ERR_INVALID);
    resnet_free(m);
}

static void test_init(void **state)
{
    (void)state;
    resnet *m = make("resnet18", 16, 10, 3);
    /* kaiming_normal fan_out: std sqrt(2 / (OC*K*K)) */
    const resnet_tensor *t = need(m, "layer2.1.conv1.weight");
    double s = 0, q = 0;
    for (size_t i = 0; i < t->numel; i++) {
        s += t->data[i];
        q += (double)t->data[i] * t->data[i];
    }
    double mean = s / t->numel, sd = sqrt(q / t->numel - mean * mean);
    assert_float_equal(sd, sqrt(2.0 / (32 * 9)), 0.05 * sqrt(2.0 / (32 * 9)));
    assert_true(fabs(mean) < 0.01);
    t = need(m, "layer1.0.bn2.weight");
    for (size_t i = 0; i < t->numel; i++)
        assert_float_equal(t->data[i], 1, 0);
    t = need(m, "layer1.0.bn2.running_var");
    for (size_t i = 0; i < t->numel; i++)
        assert_float_equal(t->data[i], 1, 0);
    t = need(m, "layer1.0.bn2.bias");
    for (size_t i = 0; i < t->numel; i++)
        assert_float_equal(t->data[i], 0, 0);
    /* nn.Linear: uniform within 1/sqrt(fan_in), covering most of it */
    t = need(m, "fc.weight");
    float bound = 1.0f / sqrtf(128), mx = 0;
    for (size_t i = 0; i < t->numel; i++) {
        assert_true(fabsf(t->data[i]) <= bound);
        mx = fmaxf(mx, fabsf(t->data[i]));
    }
    assert_true(mx > 0.9f * bound);
    /* the same seed gives the same model, another seed another */
    resnet *m2 = make("resnet18", 16, 10, 3), *m3 = make("resnet18", 16, 10, 4);
    const resnet_tensor *a = need(m, "conv1.weight"), *b = need(m2, "conv1.weight"),
                        *c = need(m3, "conv1.weight");
    assert_memory_equal(a->data, b->data, a->numel * sizeof(float));
    assert_memory_not_equal(a->data, c->data, a->numel * sizeof(float));
    resnet_free(m);
    resnet_free(m2);
    resnet_free(m3);
}

/* ---------- files ---------- */

static void check_same_logits(resnet *a, resnet *b, int size, int batch)
{
    prepare(a, FREEZE_NONE, 0, batch, size);
    prepare(b, FREEZE_NONE, 0, batch, size);
    float *x = images(batch, size, 11);
    resnet_info in;
    resnet_get_info(a, &in);
    size_t n = (size_t)batch * in.classes;
    float *la = malloc(sizeof(float) * n);
    memcpy(la, resnet_forward(a, x, batch, NULL), sizeof(float) * n);
    const float *lb = resnet_forward(b, x, batch, NULL);
    for (size_t i = 0; i < n; i++)
        assert_float_equal(la[i], lb[i], 1e-5);
    free(la);
    free(x);
}

static void test_roundtrip(void **state)
{
    (void)state;
    static const char *const archs[] = {"resnet18", "resnet50"};
    for (int k = 0; k < 2; k++) {
        resnet *m = make(archs[k], 4, 3, 9);
        /* non-trivial running stats so eval mode depends on them */
        for (size_t i = 0; i < resnet_tensor_count(m); i++) {
            const resnet_tensor *t = resnet_tensor_at(m, i);
            if (strstr(t->name, "running_mean"))
                for (size_t j = 0; j < t->numel; j++)
                    t->data[j] = 0.01f * (float)(j % 7);
        }
        char path[320];
        snprintf(path, sizeof path, "%s/%s.safetensors", tmpdir, archs[k]);
        save(m, path, NULL, NULL);
        resnet *l = NULL;
        char msg[256] = "";
        int rc = load(&l, path, 0, msg, sizeof msg);
        if (rc) print_error("%s\n", msg);
        assert_int_equal(rc, 0);
        assert_int_equal(resnet_tensor_count(l), resnet_tensor_count(m));
        for (size_t i = 0; i < resnet_tensor_count(m); i++) {
            const resnet_tensor *a = resnet_tensor_at(m, i), *b = resnet_tensor_at(l, i);
            assert_string_equal(a->name, b->name);
            assert_memory_equal(a->shape, b->shape, sizeof a->shape);
            assert_memory_equal(a->data, b->data, a->numel * sizeof(float));
        }
        check_same_logits(m, l, 32, 2);
        /* same class count keeps the head */
        resnet_free(l);
        assert_int_equal(load(&l, path, 3, msg, sizeof msg), 0);
        assert_memory_equal(need(l, "fc.weight")->data, need(m, "fc.weight")->data,
                            need(m, "fc.weight")->numel * sizeof(float));
        resnet_free(l);
        resnet_free(m);
    }
}

static void test_resnet_load(void **state)
{
    (void)state;
    resnet *m = make("resnet18", 4, 3, 9), *z = make("resnet18", 4, 3, 10);
    char path[320], msg[256] = "";
    snprintf(path, sizeof path, "%s/load.safetensors", tmpdir);
    save(m, path, NULL, NULL);
    st_file *f;
    assert_int_equal(st_open(&f, path, msg, sizeof msg), 0);
    assert_int_equal(resnet_load(z, f, msg, sizeof msg), 0);
    st_close(f);
    for (size_t i = 0; i < resnet_tensor_count(m); i++)
        assert_memory_equal(resnet_tensor_at(m, i)->data, resnet_tensor_at(z, i)->data,
                            resnet_tensor_at(m, i)->numel * sizeof(float));
    resnet_free(z);
    /* a model with another head refuses the file, naming fc.weight */
    z = make("resnet18", 4, 5, 10);
    assert_int_equal(st_open(&f, path, msg, sizeof msg), 0);
    assert_int_equal(resnet_load(z, f, msg, sizeof msg), ERR_MODEL);
    assert_non_null(strstr(msg, "fc.weight"));
    st_close(f);
    resnet_free(z);
    resnet_free(m);
}

static void test_head_replacement(void **state)
{
    (void)state;
    resnet *m = make("resnet18", 4, 3, 9);
    char path[320], msg[256] = "";
    snprintf(path, sizeof path, "%s/head.safetensors", tmpdir);
    save(m, path, NULL, NULL);
    resnet *l = NULL;
    assert_int_equal(load(&l, path, 7, msg, sizeof msg), 0);
    const resnet_tensor *w = need(l, "fc.weight"), *b = need(l, "fc.bias");
    assert_int_equal(w->shape[0], 7);
    assert_int_equal(w->shape[1], 32);
    assert_int_equal(b->shape[0], 7);
    float bound = 1.0f / sqrtf(32);
    for (size_t i = 0; i < w->numel; i++)
        assert_true(fabsf(w->data[i]) <= bound);
    for (size_t i = 0; i < b->numel; i++)
        assert_true(fabsf(b->data[i]) <= bound);
    resnet_info in;
    resnet_get_info(l, &in);
    assert_int_equal(in.classes, 7);
    /* the backbone came from the file */
    assert_memory_equal(need(l, "layer4.1.conv2.weight")->data,
                        need(m, "layer4.1.conv2.weight")->data,
                        need(m, "layer4.1.conv2.weight")->numel * sizeof(float));
    resnet_free(l);
    /* a headless file (timm num_classes=0) loads when classes are given */
    snprintf(path, sizeof path, "%s/headless.safetensors", tmpdir);
    save(m, path, "fc.weight", NULL);
    assert_int_equal(load(&l, path, 4, msg, sizeof msg), 0);
    resnet_free(l);
    assert_int_equal(load(&l, path, 0, msg, sizeof msg), ERR_MODEL);
    assert_non_null(strstr(msg, "fc.weight"));
    resnet_free(m);
}

static void test_depth_from_names(void **state)
{
    (void)state;
    /* resnet34 layout with 2 blocks dropped from layer3: still loads */
    resnet *m = make("resnet34", 2, 3, 9);
    char path[320], msg[256] = "";
    snprintf(path, sizeof path, "%s/deep.safetensors", tmpdir);
    st_writer *w = st_writer_new();
    for (size_t i = 0; i < resnet_tensor_count(m); i++) {
        const resnet_tensor *t = resnet_tensor_at(m, i);
        if (!strncmp(t->name, "layer3.4.", 9) || !strncmp(t->name, "layer3.5.", 9)) continue;
        assert_int_equal(st_writer_add_f32(w, t->name, t->ndim, t->shape, t->data), 0);
    }
    assert_int_equal(st_writer_save(w, path, msg, sizeof msg), 0);
    st_writer_free(w);
    resnet *l = NULL;
    int rc = load(&l, path, 0, msg, sizeof msg);
    if (rc) print_error("%s\n", msg);
    assert_int_equal(rc, 0);
    resnet_info in;
    resnet_get_info(l, &in);
    assert_int_equal(in.blocks[0], 3);
    assert_int_equal(in.blocks[2], 4);
    assert_string_equal(in.arch, "resnet-basic-3-4-4-3");
    assert_null(resnet_find_tensor(l, "layer3.4.conv1.weight"));
    prepare(l, FREEZE_NONE, 0, 1, 32);
    float *x = images(1, 32, 3);
    const float *lg = resnet_forward(l, x, 1, NULL);
    for (int i = 0; i < 3; i++)
        assert_true(isfinite(lg[i]));
    free(x);
    resnet_free(l);
    resnet_free(m);
}

static void test_load_errors(void **state)
{
    (void)state;
    resnet *m = make("resnet18", 4, 3, 9), *l = NULL;
    char path[320], msg[256] = "";
    snprintf(path, sizeof path, "%s/missing.safetensors", tmpdir);
    save(m, path, "layer3.1.bn2.running_var", NULL);
    assert_int_equal(load(&l, path, 0, msg, sizeof msg), ERR_MODEL);
    assert_null(l);
    assert_non_null(strstr(msg, "layer3.1.bn2.running_var"));

    snprintf(path, sizeof path, "%s/shape.safetensors", tmpdir);
    save(m, path, NULL, "layer2.1.bn1.weight");
    assert_int_equal(load(&l, path, 0, msg, sizeof msg), ERR_MODEL);
    assert_non_null(strstr(msg, "layer2.1.bn1.weight"));

    /* a conv whose input channels do not follow the previous layer */
    snprintf(path, sizeof path, "%s/chain.safetensors", tmpdir);
    save(m, path, NULL, "layer1.1.conv1.weight");
    assert_int_equal(load(&l, path, 0, msg, sizeof msg), ERR_MODEL);
    assert_non_null(strstr(msg, "layer1.1"));

    /* a strided block without its downsample */
    snprintf(path, sizeof path, "%s/nods.safetensors", tmpdir);
    save(m, path, "layer2.0.downsample.0.weight", NULL);
    assert_int_equal(load(&l, path, 0, msg, sizeof msg), ERR_MODEL);
    assert_non_null(strstr(msg, "layer2.0.downsample.0.weight"));

    /* no stem at all */
    snprintf(path, sizeof path, "%s/nostem.safetensors", tmpdir);
    save(m, path, "conv1.weight", NULL);
    assert_int_equal(load(&l, path, 0, msg, sizeof msg), ERR_MODEL);
    assert_non_null(strstr(msg, "conv1.weight"));
    resnet_free(m);
}

/* ---------- gradients ---------- */

static double loss_at(resnet *m, const float *x, const int *y, int b)
{
    resnet_forward(m, x, b, NULL);
    return resnet_loss(m, y, 0.1f, NULL);
}

/* Central differences of the loss against the analytic gradient for the two
 * largest entries of each tensor in NAMES. Evaluation mode is smooth enough
 * for steps of 1e-3 through the whole net; in training mode batch statistics
 * over a handful of values make deep layers ill-conditioned at these tiny
 * widths (the differences only converge below float precision), so there
 * only tensors after the last batchnorm of the trunk are checked (batchnorm's
 * training-mode backward itself is checked in test_layers). */
static void gradcheck(const char *arch, int size, int train, const char *const *names, int nn)
{
    const int b = 3;
    resnet *m = make(arch, 4, 3, 21);
    prepare(m, FREEZE_NONE, 0, b, size);
    resnet_set_train(m, train);
    float *x = images(b, size, 5);
    int y[3] = {0, 2, 1};
    /* small logits keep the loss close to linear around the point, so the
     * differences measure the gradient rather than the curvature */
    const resnet_tensor *fw = need(m, "fc.weight");
    for (size_t i = 0; i < fw->numel; i++)
        fw->data[i] *= 0.05f;
    resnet_set_train(m, train);
    resnet_zero_grad(m);
    loss_at(m, x, y, b);
    resnet_backward(m);
    int checked = 0;
    for (int k = 0; k < nn; k++) {
        const resnet_tensor *t = need(m, names[k]);
        assert_non_null(t->grad);
        /* the two largest gradient entries of the tensor */
        size_t best[2] = {0, 0};
        for (size_t i = 0; i < t->numel; i++) {
            if (fabsf(t->grad[i]) > fabsf(t->grad[best[0]])) {
                best[1] = best[0];
                best[0] = i;
            } else if (i != best[0] && fabsf(t->grad[i]) > fabsf(t->grad[best[1]])) {
                best[1] = i;
            }
        }
        for (int j = 0; j < 2; j++) {
            size_t i = best[j];
            float v = t->data[i];
            double ana = t->grad[i], err = INFINITY, num = 0;
            /* two step sizes: the larger one suffers from curvature at a ReLU
             * kink nearby, the smaller one from float rounding; one of them
             * has to agree */
            for (float h = 1e-3f; h > 1e-4f; h /= 4) {
                t->data[i] = v + h;
                double lp = loss_at(m, x, y, b);
                t->data[i] = v - h;
                double lm = loss_at(m, x, y, b);
                t->data[i] = v;
                double nh = (lp - lm) / (2 * h);
                if (fabs(nh - ana) < err) {
                    err = fabs(nh - ana);
                    num = nh;
                }
            }
            if (err > 0.03 * fabs(ana) + 1e-3) {
                print_error("%s %s[%zu]: analytic %g numeric %g\n", arch, names[k], i, ana, num);
                fail();
            }
            checked++;
        }
    }
    assert_int_equal(checked, 2 * nn);
    free(x);
    resnet_free(m);
}

static const char *const all_names[] = {
    "conv1.weight",          "bn1.weight",          "bn1.bias",
    "layer1.0.conv1.weight", "layer1.1.bn2.bias",   "layer2.0.downsample.0.weight",
    "layer2.0.conv2.weight", "layer3.0.bn1.weight", "layer4.0.downsample.1.weight",
    "layer4.1.conv1.weight", "fc.weight",           "fc.bias",
};
static const char *const head_names[] = {"fc.weight", "fc.bias", "layer4.1.bn2.bias"};
static const char *const head_names50[] = {"fc.weight", "fc.bias", "layer4.2.bn3.bias"};

static void test_gradcheck_basic(void **state)
{
    (void)state;
    gradcheck("resnet18", 64, 0, all_names, 12);
    gradcheck("resnet18", 64, 1, head_names, 3);
}

static void test_gradcheck_bottleneck(void **state)
{
    (void)state;
    gradcheck("resnet50", 64, 0, all_names, 12);
    gradcheck("resnet50", 64, 1, head_names50, 3);
}

/* ---------- freezing and features ---------- */

static void test_freeze(void **state)
{
    (void)state;
    const int b = 3, size = 32;
    float *x = images(b, size, 8);
    int y[3] = {1, 0, 1};
    /* reference: nothing frozen, evaluation mode (so frozen BN behaves the same) */
    resnet *a = make("resnet18", 4, 2, 30);
    prepare(a, FREEZE_NONE, 0, b, size);
    resnet_zero_grad(a);
    resnet_forward(a, x, b, NULL);
    float la = resnet_loss(a, y, 0, NULL);
    resnet_backward(a);
    for (freeze_kind f = FREEZE_STEM; f <= FREEZE_ALL; f++) {
        resnet *m = make("resnet18", 4, 2, 30);
        prepare(m, f, 0, b, size);
        size_t n;
        float *grads;
        float *params = resnet_trainable(m, &n, &grads);
        size_t want = 0;
        for (size_t i = 0; i < resnet_tensor_count(m); i++) {
            const resnet_tensor *t = resnet_tensor_at(m, i);
            int stage = !strncmp(t->name, "layer", 5) ? t->name[5] - '0'
                        : !strncmp(t->name, "fc.", 3) ? 5
                                                      : 0;
            int frozen = stage < 5 && (f == FREEZE_ALL || stage <= (int)f - (int)FREEZE_STEM);
            if (!t->is_param) frozen = 1;
            if (frozen != !t->trainable) print_error("freeze %d: %s\n", f, t->name);
            assert_int_equal(frozen, !t->trainable);
            if (t->trainable) {
                want += t->numel;
                assert_ptr_equal(t->data, params + t->offset);
                assert_ptr_equal(t->grad, grads + t->offset);
            } else {
                assert_null(t->grad);
                assert_int_equal(t->offset, -1);
            }
        }
        assert_int_equal(n, want);
        resnet_zero_grad(m);
        resnet_forward(m, x, b, NULL);
        float lm = resnet_loss(m, y, 0, NULL);
        assert_float_equal(lm, la, 1e-5);
        resnet_backward(m);
        for (size_t i = 0; i < resnet_tensor_count(m); i++) {
            const resnet_tensor *t = resnet_tensor_at(m, i), *r = resnet_tensor_at(a, i);
            if (!t->trainable) continue;
            float scale = 1e-3f;
            for (size_t j = 0; j < t->numel; j++)
                scale = fmaxf(scale, fabsf(r->grad[j]));
            for (size_t j = 0; j < t->numel; j++)
                if (fabsf(t->grad[j] - r->grad[j]) > 1e-4f * scale) {
                    print_error("freeze %d %s[%zu]: %g vs %g\n", f, t->name, j, t->grad[j],
                                r->grad[j]);
                    fail();
                }
        }
        resnet_free(m);
    }
    resnet_free(a);
    free(x);
}

static void test_frozen_bn_stays_eval(void **state)
{
    (void)state;
    const int b = 4, size = 32;
    float *x = images(b, size, 8);
    resnet *m = make("resnet18", 4, 2, 30);
    prepare(m, FREEZE_LAYER1, 0, b, size);
    resnet_set_train(m, 1);
    const resnet_tensor *fz = need(m, "layer1.1.bn2.running_mean"),
                        *tr = need(m, "layer2.0.bn1.running_mean");
    resnet_forward(m, x, b, NULL);
    for (size_t i = 0; i < fz->numel; i++)
        assert_float_equal(fz->data[i], 0, 0);
    int moved = 0;
    for (size_t i = 0; i < tr->numel; i++)
        moved += tr->data[i] != 0;
    assert_true(moved > 0);
    resnet_free(m);
    free(x);
}

static void test_features(void **state)
{
    (void)state;
    const int b = 3, size = 40;
    float *x = images(b, size, 8);
    for (freeze_kind f = FREEZE_NONE; f <= FREEZE_ALL; f++) {
        for (int train = 0; train < 2; train++) {
            resnet *m = make("resnet50", 2, 3, 30);
            resnet *m2 = make("resnet50", 2, 3, 30);
            prepare(m, f, 0, b, size);
            prepare(m2, f, 0, b, size);
            resnet_set_train(m, train);
            resnet_set_train(m2, train);
            size_t nf = resnet_feature_floats(m);
            if (f == FREEZE_NONE) assert_int_equal(nf, 3 * size * size);
            if (f >= FREEZE_LAYER4) assert_int_equal(nf, 64);
            if (f == FREEZE_STEM) assert_int_equal(nf, 2 * 10 * 10);
            float *feat = malloc(sizeof(float) * nf * b);
            resnet_features(m2, x, b, feat);
            /* features of one image do not depend on the others */
            float *one = malloc(sizeof(float) * nf);
            resnet_features(m2, x + 3 * size * size, 1, one);
            for (size_t i = 0; i < nf; i++)
                assert_float_equal(one[i], feat[nf + i], 1e-5 * (1 + fabsf(one[i])));
            const float *l1 = resnet_forward(m, x, b, NULL);
            float ref[9];
            memcpy(ref, l1, sizeof ref);
            const float *l2 = resnet_forward_features(m2, feat, b, NULL);
            for (int i = 0; i < 9; i++)
                if (fabsf(l2[i] - ref[i]) > 1e-4f * (1 + fabsf(ref[i]))) {
                    print_error("freeze %d train %d logit %d: %g vs %g\n", f, train, i, l2[i],
                                ref[i]);
                    fail();
                }
            /* and the backward pass after it gives the same gradients */
            int y[3] = {2, 0, 1};
            resnet_zero_grad(m);
            resnet_zero_grad(m2);
            resnet_loss(m, y, 0, NULL);
            resnet_loss(m2, y, 0, NULL);
            resnet_backward(m);
            resnet_backward(m2);
            size_t n1, n2;
            float *g1, *g2;
            resnet_trainable(m, &n1, &g1);
            resnet_trainable(m2, &n2, &g2);
            assert_int_equal(n1, n2);
            for (size_t i = 0; i < n1; i++)
                assert_float_equal(g1[i], g2[i], 1e-5 * (1 + fabsf(g2[i])));
            free(feat);
            free(one);
            resnet_free(m);
            resnet_free(m2);
        }
    }
    free(x);
}

static void test_smaller_batch(void **state)
{
    (void)state;
    const int size = 24;
    float *x = images(4, size, 8);
    resnet *m = make("resnet18", 4, 3, 30);
    prepare(m, FREEZE_NONE, 0, 4, size);
    float full[12];
    memcpy(full, resnet_forward(m, x, 4, NULL), sizeof full);
    const float *part = resnet_forward(m, x, 2, NULL);
    for (int i = 0; i < 6; i++)
        assert_float_equal(part[i], full[i], 1e-5);
    /* preparing again with the same values keeps the arena; other values work too */
    prepare(m, FREEZE_NONE, 0, 4, size);
    prepare(m, FREEZE_LAYER2, 0, 2, size);
    part = resnet_forward(m, x, 2, NULL);
    for (int i = 0; i < 6; i++)
        assert_float_equal(part[i], full[i], 1e-5);
    resnet_free(m);
    free(x);
}

/* The configuration that once overran a conv work space: input 48, model
 * prepared for 5..7 images, run with 4. */
static void test_partial_batch_48(void **state)
{
    (void)state;
    float *x = images(4, 48, 8);
    resnet *a = make("resnet18", 4, 5, 30);
    prepare(a, FREEZE_NONE, 0, 4, 48);
    float ref[20];
    memcpy(ref, resnet_forward(a, x, 4, NULL), sizeof ref);
    for (int mx = 5; mx <= 7; mx++) {
        resnet *m = make("resnet18", 4, 5, 30);
        prepare(m, FREEZE_NONE, 0, mx, 48);
        const float *l = resnet_forward(m, x, 4, NULL);
        for (int i = 0; i < 20; i++)
            assert_float_equal(l[i], ref[i], 1e-5 * (1 + fabsf(ref[i])));
        resnet_free(m);
    }
    resnet_free(a);
    free(x);
}

static void test_dropout_mode(void **state)
{
    (void)state;
    const int b = 2, size = 32;
    float *x = images(b, size, 8);
    resnet *m = make("resnet18", 4, 3, 30);
    prepare(m, FREEZE_ALL, 0.5f, b, size);
    float ev[6], t1[6], t2[6];
    memcpy(ev, resnet_forward(m, x, b, NULL), sizeof ev);
    resnet_set_train(m, 1);
    rng_t r;
    rng_seed(&r, 1);
    memcpy(t1, resnet_forward(m, x, b, &r), sizeof t1);
    rng_seed(&r, 1);
    memcpy(t2, resnet_forward(m, x, b, &r), sizeof t2);
    assert_memory_equal(t1, t2, sizeof t1);
    assert_memory_not_equal(t1, ev, sizeof t1);
    /* gradient of fc sees the dropped features: finite difference on fc.bias/weight */
    int y[2] = {0, 2};
    resnet_zero_grad(m);
    rng_seed(&r, 1);
    resnet_forward(m, x, b, &r);
    resnet_loss(m, y, 0, NULL);
    resnet_backward(m);
    const resnet_tensor *w = need(m, "fc.weight");
    for (size_t i = 0; i < 6; i++) {
        float v = w->data[i];
        w->data[i] = v + 1e-3f;
        rng_seed(&r, 1);
        resnet_forward(m, x, b, &r);
        double lp = resnet_loss(m, y, 0, NULL);
        w->data[i] = v - 1e-3f;
        rng_seed(&r, 1);
        resnet_forward(m, x, b, &r);
        double lm = resnet_loss(m, y, 0, NULL);
        w->data[i] = v;
        assert_float_equal(w->grad[i], (lp - lm) / 2e-3, 2e-3 * (1 + fabsf(w->grad[i])));
    }
    resnet_free(m);
    free(x);
}

static void test_fits_batch(void **state)
{
    (void)state;
    const int b = 4, size = 32;
    float *x = images(b, size, 8);
    int y[4] = {0, 1, 2, 1};
    resnet *m = make("resnet18", 4, 3, 30);
    prepare(m, FREEZE_NONE, 0.1f, b, size);
    resnet_set_train(m, 1);
    size_t n;
    float *g, *p = resnet_trainable(m, &n, &g);
    optim o;
    optim_config c = {.kind = OPTIM_SGD, .momentum = 0.9f};
    assert_int_equal(optim_init(&o, &c, n, NULL, 0), 0);
    rng_t r;
    rng_seed(&r, 2);
    float first = 0, last = 0;
    for (int s = 0; s < 25; s++) {
        resnet_zero_grad(m);
        resnet_forward(m, x, b, &r);
        last = resnet_loss(m, y, 0, NULL);
        if (s == 0) first = last;
        resnet_backward(m);
        optim_step(&o, p, g, 0.05f);
    }
    assert_true(isfinite(last));
    assert_true(last < 0.5f * first);
    optim_free(&o);
    resnet_free(m);
    free(x);
}

/* Values equal (== : a lazily zeroed gradient may hold -0 where 0 + -0 gives +0). */
static void same_values(const float *a, const float *b, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (!(a[i] == b[i])) {
            print_error("%s[%zu]: %.9g vs %.9g\n", what, i, a[i], b[i]);
            fail();
        }
}

/* Freeze layer3 at input 64: layer4 runs on 2x2 maps (per-tap products,
 * prepared weights). Model B trains with the optimizer rewriting the
 * prepared weights (resnet_prep_views, optim_step_copy, resnet_prep_current)
 * and its tiny-map gradients zeroed lazily (resnet_zero_grad, overwritten by
 * the backward pass); model A with plain optim_step and its gradients zeroed
 * for real before each backward (resnet_trainable right after the zeroing).
 * Same weights bit for bit, same gradients (also accumulated over two
 * backward passes), same evaluation logits; and zeroed gradients read as 0. */
static void test_prep_views_step(void **state)
{
    (void)state;
    const int b = 4, size = 64;
    float *x = images(b, size, 21);
    int y[4] = {0, 1, 2, 1};
    resnet *m[2];
    optim o[2];
    float *p[2], *g[2];
    size_t n[2];
    optim_config c = {.kind = OPTIM_SGD, .momentum = 0.9f, .weight_decay = 1e-3f};
    for (int k = 0; k < 2; k++) {
        m[k] = make("resnet18", 8, 3, 31);
        prepare(m[k], FREEZE_LAYER3, 0, b, size);
        resnet_set_train(m[k], 1);
        p[k] = resnet_trainable(m[k], &n[k], &g[k]);
        assert_int_equal(optim_init(&o[k], &c, n[k], NULL, 0), 0);
    }
    assert_int_equal(n[0], n[1]);
    resnet_prep_view v[8];
    const char *e = getenv("SWEEP_DENSE_TAPS");
    int nv = resnet_prep_views(m[1], v, 8);
    /* layer4's four 3x3 convolutions (none when the prep is not tap-major) */
    assert_int_equal(nv, e && !strcmp(e, "0") ? 0 : 4);
    for (int s = 0; s < 4; s++) {
        for (int k = 0; k < 2; k++) {
            resnet_zero_grad(m[k]);
            if (k == 0) resnet_trainable(m[0], &n[0], &g[0]); // zeroes for real
            rng_t r;
            rng_seed(&r, 5);
            resnet_forward(m[k], x, b, &r);
            resnet_loss(m[k], y, 0, NULL);
            resnet_backward(m[k]);
            if (s == 3) { // a second backward accumulates
                rng_seed(&r, 5);
                resnet_forward(m[k], x, b, &r);
                resnet_loss(m[k], y, 0, NULL);
                resnet_backward(m[k]);
            }
        }
        same_values(g[0], g[1], n[0], "gradient");
        optim_step(&o[0], p[0], g[0], 0.05f);
        nv = resnet_prep_views(m[1], v, 8);
        optim_copy cp[8];
        for (int i = 0; i < nv; i++)
            cp[i] = (optim_copy){v[i].offset, v[i].oc,  v[i].c,   v[i].kk,
                                 v[i].ntaps,  v[i].tap, v[i].prep};
        optim_step_copy(&o[1], p[1], g[1], 0.05f, cp, nv);
        if (nv) resnet_prep_current(m[1]);
        assert_memory_equal(p[0], p[1], sizeof(float) * n[0]);
    }
    /* evaluation forwards: B's from the rewritten prepared weights */
    float l[2][4 * 3];
    for (int k = 0; k < 2; k++) {
        resnet_set_train(m[k], 0);
        memcpy(l[k], resnet_forward(m[k], x, b, NULL), sizeof l[k]);
    }
    assert_memory_equal(l[0], l[1], sizeof l[0]);
    /* zeroed gradients read as zero through resnet_trainable */
    resnet_zero_grad(m[1]);
    resnet_trainable(m[1], &n[1], &g[1]);
    for (size_t i = 0; i < n[1]; i++)
        assert_true(g[1][i] == 0);
    for (int k = 0; k < 2; k++) {
        optim_free(&o[k]);
        resnet_free(m[k]);
    }
    free(x);
}

static void test_flops(void **state)
{
    (void)state;
    resnet *m = make("resnet18", 64, 1000, 1);
    prepare(m, FREEZE_ALL, 0, 1, 224);
    /* the usual 1.82 GMACs of resnet18 at 224 */
    assert_float_equal(resnet_flops(m) / 2e9, 1.82, 0.01);
    resnet_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_basic),
        cmocka_unit_test(test_names_bottleneck),
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_resnet_load),
        cmocka_unit_test(test_head_replacement),
        cmocka_unit_test(test_depth_from_names),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_gradcheck_basic),
        cmocka_unit_test(test_gradcheck_bottleneck),
        cmocka_unit_test(test_freeze),
        cmocka_unit_test(test_frozen_bn_stays_eval),
        cmocka_unit_test(test_features),
        cmocka_unit_test(test_smaller_batch),
        cmocka_unit_test(test_partial_batch_48),
        cmocka_unit_test(test_dropout_mode),
        cmocka_unit_test(test_fits_batch),
        cmocka_unit_test(test_prep_views_step),
        cmocka_unit_test(test_flops),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
