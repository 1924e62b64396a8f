/* test_vgg — the VGG family (worker/engine/vgg.c on net.c) through the model
 * API: torchvision's names and shapes for every variant, the parameter count
 * formula at any width, the arch read back from a file's names, a new head,
 * refusals (input too small, a file of no known family), feature caching and
 * training at each freeze point. Numerical parity with PyTorch is in
 * test_parity.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "resnet.h"
#include "safetensors.h"
#include "util_jpeg.h"
#include "util_model.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    return tju_mkdtemp(tmpdir, sizeof tmpdir, "vgg");
}

static int teardown(void **state)
{
    (void)state;
    tju_rmrf(tmpdir);
    return 0;
}

static resnet *make(const char *arch, int width, int classes)
{
    resnet *m;
    char msg[256];
    if (resnet_create(&m, arch, width, classes, 1, msg, sizeof msg)) fail_msg("%s", msg);
    return m;
}

static const resnet_tensor *need(const resnet *m, const char *name)
{
    const resnet_tensor *t = resnet_find_tensor(m, name);
    if (!t) fail_msg("no tensor %s", name);
    return t;
}

/* torchvision's configurations, for the independent parameter count */
static const int cfgs[4][22] = {
    {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0, -1},
    {64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0, -1},
    {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0, -1},
    {64,  64,  0,   128, 128, 0,   256, 256, 256, 256, 0,
     512, 512, 512, 512, 0,   512, 512, 512, 512, 0,   -1}};

/* Parameters of CFG at WIDTH with BN and K classes, and the features index of its last conv. */
static size_t count(const int *cfg, int width, int bn, int k, int *last_conv)
{
    size_t n = 0;
    int c = 3, idx = 0;
    for (int i = 0; cfg[i] >= 0; i++) {
        if (!cfg[i]) {
            idx++;
            continue;
        }
        int oc = cfg[i] * width / 64;
        n += (size_t)oc * c * 9 + oc + (bn ? 2 * (size_t)oc : 0);
        *last_conv = idx;
        idx += bn ? 3 : 2;
        c = oc;
    }
    size_t h = 4096 * (size_t)width / 64;
    return n + (size_t)c * 49 * h + h + h * h + h + h * k + k;
}

static void test_names_and_counts(void **state)
{
    (void)state;
    static const char *const names[4] = {"vgg11", "vgg13", "vgg16", "vgg19"};
    for (int v = 0; v < 4; v++)
        for (int bn = 0; bn <= 1; bn++) {
            char arch[16];
            snprintf(arch, sizeof arch, "%s%s", names[v], bn ? "_bn" : "");
            resnet *m = make(arch, 8, 10);
            resnet_info info;
            resnet_get_info(m, &info);
            int last = 0;
            assert_int_equal(info.param_count, count(cfgs[v], 8, bn, 10, &last));
            assert_string_equal(info.arch, arch);
            assert_int_equal(info.family, ARCH_VGG);
            assert_int_equal(info.width, 8);
            assert_int_equal(info.features, 512);
            const resnet_tensor *t = need(m, "features.0.weight");
            assert_int_equal(t->shape[0], 8);
            assert_int_equal(t->shape[1], 3);
            assert_int_equal(t->shape[2], 3);
            need(m, "features.0.bias");
            if (bn) need(m, "features.1.running_var");
            char nm[64];
            snprintf(nm, sizeof nm, "features.%d.weight", last);
            assert_int_equal(need(m, nm)->shape[0], 64);
            t = need(m, "classifier.0.weight");
            assert_int_equal(t->shape[0], 512);
            assert_int_equal(t->shape[1], 64 * 49);
            assert_int_equal(need(m, "classifier.6.weight")->shape[0], 10);
            assert_null(resnet_find_tensor(m, "classifier.1.weight")); // ReLU, Dropout
            resnet_free(m);
        }
    /* torchvision's vgg16 figure, from the formula the models match above */
    int last;
    assert_int_equal(count(cfgs[2], 64, 0, 1000, &last), 138357544);
    assert_int_equal(count(cfgs[2], 64, 1, 1000, &last), 138365992);
}

static void test_roundtrip_and_errors(void **state)
{
    (void)state;
    char path[512], msg[512];
    resnet *m = make("vgg13_bn", 4, 6);
    assert_int_equal(resnet_prepare(m, FREEZE_NONE, 0, 2, 40, 40, msg, sizeof msg), 0);
    snprintf(path, sizeof path, "%s/vgg.safetensors", tmpdir);
    tum_check_roundtrip(m, path, "vgg13_bn", 2, 40, 3);
    /* input too small for five pools */
    assert_int_equal(resnet_prepare(m, FREEZE_NONE, 0, 2, 16, 16, msg, sizeof msg), ERR_INVALID);
    assert_non_null(strstr(msg, "too small"));
    resnet_free(m);
    m = make("vgg11", 2, 3);
    assert_int_equal(resnet_prepare(m, FREEZE_NONE, 0, 1, 32, 32, msg, sizeof msg), 0);
    snprintf(path, sizeof path, "%s/vgg11.safetensors", tmpdir);
    tum_check_roundtrip(m, path, "vgg11", 1, 32, 4);
    resnet_free(m);
    /* a file of no known family is refused, naming the families */
    snprintf(path, sizeof path, "%s/odd.safetensors", tmpdir);
    st_writer *w = st_writer_new();
    float v[4] = {0};
    int64_t shape[1] = {4};
    assert_int_equal(st_writer_add_f32(w, "encoder.layers.0.weight", 1, shape, v), 0);
    assert_int_equal(st_writer_save(w, path, msg, sizeof msg), 0);
    st_writer_free(w);
    st_file *f;
    assert_int_equal(st_open(&f, path, msg, sizeof msg), 0);
    assert_int_equal(resnet_from_safetensors(&m, f, 0, 1, msg, sizeof msg), ERR_MODEL);
    assert_non_null(strstr(msg, "match no known model family"));
    assert_non_null(strstr(msg, "resnet ("));
    assert_non_null(strstr(msg, "vgg (features.N, classifier.N)"));
    assert_non_null(strstr(msg, "inception_v3 ("));
    st_close(f);
    assert_int_equal(resnet_create(&m, "vgg16", 0, 3, 1, msg, sizeof msg), ERR_INVALID);
}

static void test_freeze_and_training(void **state)
{
    (void)state;
    static const freeze_kind fz[] = {FREEZE_NONE,   FREEZE_BLOCK1,   FREEZE_BLOCK3,
                                     FREEZE_BLOCK5, FREEZE_FEATURES, FREEZE_ALL};
    for (size_t i = 0; i < sizeof fz / sizeof fz[0]; i++) {
        resnet *m = make(i % 2 ? "vgg11_bn" : "vgg11", 4, 3);
        tum_check_freeze_and_training(m, fz[i], 0.3f, 3, 32, 4, 0.05f);
        resnet_free(m);
    }
    /* freeze features: the features are the flattened 7x7 maps */
    resnet *m = make("vgg11_bn", 4, 3);
    char msg[256];
    assert_int_equal(resnet_prepare(m, FREEZE_FEATURES, 0, 2, 32, 32, msg, sizeof msg), 0);
    assert_int_equal(resnet_feature_floats(m), 32 * 49);
    assert_int_equal(resnet_prepare(m, FREEZE_ALL, 0, 2, 32, 32, msg, sizeof msg), 0);
    assert_int_equal(resnet_feature_floats(m), 256); // classifier.3 output (4096 * 4/64)
    size_t n;
    resnet_trainable(m, &n, NULL);
    assert_int_equal(n, 256 * 3 + 3); // classifier.6 only
    resnet_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_counts),
        cmocka_unit_test(test_roundtrip_and_errors),
        cmocka_unit_test(test_freeze_and_training),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
