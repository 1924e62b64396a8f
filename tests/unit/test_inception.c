/* test_inception — Inception v3 (worker/engine/inception.c on net.c) through
 * the model API: torchvision's names and shapes (non-square kernels, the
 * auxiliary head), torchvision's parameter count at full width, the smallest
 * input (75) with the auxiliary head skipped, the arch read back from a
 * file's names (with and without AuxLogits), a new head for both classifiers,
 * feature caching and training at several freeze points. Numerical parity
 * with PyTorch (input 299, auxiliary loss, transform_input) is in
 * test_parity.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
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
    return tju_mkdtemp(tmpdir, sizeof tmpdir, "inception");
}

static int teardown(void **state)
{
    (void)state;
    tju_rmrf(tmpdir);
    return 0;
}

static resnet *make(int width, int classes)
{
    resnet *m;
    char msg[256];
    if (resnet_create(&m, "inception_v3", width, classes, 1, msg, sizeof msg)) fail_msg("%s", msg);
    return m;
}

static void shape_is(const resnet *m, const char *name, int a, int b, int c, int d)
{
    const resnet_tensor *t = resnet_find_tensor(m, name);
    if (!t) fail_msg("no tensor %s", name);
    const int want[4] = {a, b, c, d};
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] != want[i])
            fail_msg("%s: dimension %d is %lld, want %d", name, i, (long long)t->shape[i], want[i]);
}

static void test_names_and_count(void **state)
{
    (void)state;
    resnet *m = make(64, 1000);
    resnet_info info;
    resnet_get_info(m, &info);
    assert_int_equal(info.param_count, 27161264); // torchvision inception_v3 (aux_logits=True)
    assert_string_equal(info.arch, "inception_v3");
    assert_int_equal(info.family, ARCH_INCEPTION);
    assert_int_equal(info.features, 2048);
    assert_int_equal(info.width, 64);
    shape_is(m, "Conv2d_1a_3x3.conv.weight", 32, 3, 3, 3);
    shape_is(m, "Conv2d_4a_3x3.bn.running_var", 192, 0, 0, 0);
    shape_is(m, "Mixed_5b.branch_pool.conv.weight", 32, 192, 1, 1);
    shape_is(m, "Mixed_6b.branch7x7_2.conv.weight", 128, 128, 1, 7);
    shape_is(m, "Mixed_6e.branch7x7dbl_4.conv.weight", 192, 192, 7, 1);
    shape_is(m, "AuxLogits.conv1.conv.weight", 768, 128, 5, 5);
    shape_is(m, "AuxLogits.fc.weight", 1000, 768, 0, 0);
    shape_is(m, "Mixed_7c.branch3x3dbl_3b.conv.weight", 384, 384, 3, 1);
    shape_is(m, "Mixed_7b.branch3x3_2a.conv.weight", 384, 384, 1, 3);
    shape_is(m, "fc.weight", 1000, 2048, 0, 0);
    assert_null(resnet_find_tensor(m, "Conv2d_1a_3x3.conv.bias"));
    /* torchvision order: AuxLogits between Mixed_6e and Mixed_7a */
    size_t aux = 0, m7 = 0, m6 = 0;
    for (size_t i = 0; i < resnet_tensor_count(m); i++) {
        const char *n = resnet_tensor_at(m, i)->name;
        if (!aux && !strncmp(n, "AuxLogits.", 10)) aux = i;
        if (!m7 && !strncmp(n, "Mixed_7a.", 9)) m7 = i;
        if (!strncmp(n, "Mixed_6e.", 9)) m6 = i;
    }
    assert_true(m6 < aux && aux < m7);
    resnet_free(m);
}

static void test_sizes_and_roundtrip(void **state)
{
    (void)state;
    char msg[512], path[512];
    resnet *m = make(4, 5);
    assert_int_equal(resnet_prepare(m, FREEZE_NONE, 0, 2, 74, 74, msg, sizeof msg), ERR_INVALID);
    assert_int_equal(resnet_prepare(m, FREEZE_NONE, 0, 2, 75, 75, msg, sizeof msg), 0);
    snprintf(path, sizeof path, "%s/inc.safetensors", tmpdir);
    tum_check_roundtrip(m, path, "inception_v3", 2, 75, 3);
    /* a file without the auxiliary head loads (and trains) without it */
    st_writer *w = st_writer_new();
    for (size_t i = 0; i < resnet_tensor_count(m); i++) {
        const resnet_tensor *t = resnet_tensor_at(m, i);
        if (strncmp(t->name, "AuxLogits.", 10))
            assert_int_equal(st_writer_add_f32(w, t->name, t->ndim, t->shape, t->data), 0);
    }
    snprintf(path, sizeof path, "%s/noaux.safetensors", tmpdir);
    assert_int_equal(st_writer_save(w, path, msg, sizeof msg), 0);
    st_writer_free(w);
    st_file *f;
    assert_int_equal(st_open(&f, path, msg, sizeof msg), 0);
    resnet *l;
    if (resnet_from_safetensors(&l, f, 0, 1, msg, sizeof msg)) fail_msg("%s", msg);
    assert_null(resnet_find_tensor(l, "AuxLogits.fc.weight"));
    assert_int_equal(resnet_tensor_count(l) + 12, resnet_tensor_count(m)); // conv0, conv1, fc
    /* (at 75 with 2 images the batchnorms of Mixed_7b/7c see 2 values each:
     * their output is +-1, a step function of the weights; see below for training) */
    char fail[512];
    assert_int_equal(resnet_prepare(l, FREEZE_NONE, 0, 2, 75, 75, fail, sizeof fail), 0);
    float *x = tum_images(2, 75, 1);
    int labels[2] = {0, 4};
    resnet_set_train(l, 1);
    resnet_zero_grad(l);
    resnet_forward(l, x, 2, NULL);
    assert_true(isfinite(resnet_loss(l, labels, 0, NULL)));
    resnet_backward(l);
    free(x);
    resnet_free(l);
    /* a missing branch is named */
    resnet_free(m);
    m = make(4, 5);
    w = st_writer_new();
    for (size_t i = 0; i < resnet_tensor_count(m); i++) {
        const resnet_tensor *t = resnet_tensor_at(m, i);
        if (strncmp(t->name, "Mixed_6c.branch7x7_2.", 21))
            assert_int_equal(st_writer_add_f32(w, t->name, t->ndim, t->shape, t->data), 0);
    }
    snprintf(path, sizeof path, "%s/broken.safetensors", tmpdir);
    assert_int_equal(st_writer_save(w, path, msg, sizeof msg), 0);
    st_writer_free(w);
    st_close(f);
    assert_int_equal(st_open(&f, path, msg, sizeof msg), 0);
    assert_int_equal(resnet_from_safetensors(&l, f, 0, 1, msg, sizeof msg), ERR_MODEL);
    assert_non_null(strstr(msg, "Mixed_6c.branch7x7_2.conv.weight"));
    st_close(f);
    resnet_free(m);
}

static void test_freeze_and_training(void **state)
{
    (void)state;
    static const freeze_kind fz[] = {FREEZE_NONE, FREEZE_STEM, FREEZE_MIXED_6A, FREEZE_MIXED_6E,
                                     FREEZE_ALL};
    for (size_t i = 0; i < sizeof fz / sizeof fz[0]; i++) {
        resnet *m = make(16, 3);
        /* width 16: at width 4 (1..128 channels per batchnorm) a model from
         * scratch is chaotic, a 0.4% change of Conv2d_1a moving the loss by
         * 30% (its gradient is checked against PyTorch in test_parity.c) */
        tum_check_freeze_and_training(m, fz[i], i == 0 ? 0.3f : 0.0f, 4, 107, 3, 1e-3f);
        resnet_free(m);
    }
    /* with everything but fc frozen the cached features are the pooled vectors */
    resnet *m = make(4, 3);
    char msg[256];
    assert_int_equal(resnet_prepare(m, FREEZE_ALL, 0, 2, 75, 75, msg, sizeof msg), 0);
    assert_int_equal(resnet_feature_floats(m), 128); // 2048 * 4/64
    resnet_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_count),
        cmocka_unit_test(test_sizes_and_roundtrip),
        cmocka_unit_test(test_freeze_and_training),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
