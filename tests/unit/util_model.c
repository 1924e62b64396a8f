/* util_model — shared model checks for the family unit tests (contract in
 * tests/unit/util_model.h). */
#include "util_model.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "safetensors.h"

void tum_save(const resnet *m, const char *path)
{
    st_writer *w = st_writer_new();
    assert_non_null(w);
    for (size_t i = 0; i < resnet_tensor_count(m); i++) {
        const resnet_tensor *t = resnet_tensor_at(m, i);
        assert_int_equal(st_writer_add_f32(w, t->name, t->ndim, t->shape, t->data), 0);
    }
    char msg[256];
    if (st_writer_save(w, path, msg, sizeof msg)) fail_msg("%s", msg);
    st_writer_free(w);
}

float *tum_images(int b, int size, uint64_t seed)
{
    size_t n = (size_t)b * 3 * size * size;
    float *x = malloc(sizeof(float) * n);
    assert_non_null(x);
    rng_t r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)rng_range(&r, -2, 2);
    return x;
}

/* The model in PATH with NUM_CLASSES (0: the file's), prepared for B at SIZE. */
static resnet *reload(const char *path, int num_classes, int b, int size)
{
    char msg[512];
    st_file *f;
    if (st_open(&f, path, msg, sizeof msg)) fail_msg("%s", msg);
    resnet *m;
    if (resnet_from_safetensors(&m, f, num_classes, 7, msg, sizeof msg)) fail_msg("%s", msg);
    st_close(f);
    if (resnet_prepare(m, FREEZE_NONE, 0, b, size, size, msg, sizeof msg)) fail_msg("%s", msg);
    return m;
}

void tum_check_roundtrip(resnet *m, const char *path, const char *arch, int b, int size,
                         int new_classes)
{
    resnet_info info;
    resnet_get_info(m, &info);
    tum_save(m, path);
    float *x = tum_images(b, size, 3);
    resnet_set_train(m, 0);
    size_t nl = (size_t)b * info.classes;
    float *want = malloc(sizeof(float) * nl);
    assert_non_null(want);
    memcpy(want, resnet_forward(m, x, b, NULL), sizeof(float) * nl);
    resnet *l = reload(path, 0, b, size);
    resnet_info li;
    resnet_get_info(l, &li);
    assert_string_equal(li.arch, arch);
    assert_int_equal(li.family, info.family);
    assert_int_equal(li.classes, info.classes);
    assert_int_equal(li.param_count, info.param_count);
    resnet_set_train(l, 0);
    assert_memory_equal(resnet_forward(l, x, b, NULL), want, sizeof(float) * nl);
    resnet_free(l);
    l = reload(path, new_classes, b, size);
    resnet_get_info(l, &li);
    assert_int_equal(li.classes, new_classes);
    resnet_set_train(l, 0);
    const float *lg = resnet_forward(l, x, b, NULL);
    for (size_t i = 0; i < (size_t)b * new_classes; i++)
        assert_true(isfinite(lg[i]));
    resnet_free(l);
    free(x);
    free(want);
}

void tum_check_freeze_and_training(resnet *m, freeze_kind freeze, float dropout, int b, int size,
                                   int steps, float lr)
{
    char msg[512];
    if (resnet_prepare(m, freeze, dropout, b, size, size, msg, sizeof msg)) fail_msg("%s", msg);
    resnet_info info;
    resnet_get_info(m, &info);
    float *x = tum_images(b, size, 5);
    size_t nl = (size_t)b * info.classes, per = resnet_feature_floats(m);
    float *want = malloc(sizeof(float) * nl), *feat = malloc(sizeof(float) * per * b);
    assert_non_null(want);
    assert_non_null(feat);
    resnet_set_train(m, 0);
    memcpy(want, resnet_forward(m, x, b, NULL), sizeof(float) * nl);
    resnet_features(m, x, b, feat);
    const float *lg = resnet_forward_features(m, feat, b, NULL);
    for (size_t i = 0; i < nl; i++)
        assert_float_equal(lg[i], want[i], 1e-5 * (1 + fabsf(want[i])));
    /* frozen tensors: no gradient, unchanged by training */
    size_t nt = resnet_tensor_count(m), frozen = 0;
    float **copy = calloc(nt, sizeof *copy);
    assert_non_null(copy);
    for (size_t i = 0; i < nt; i++) {
        const resnet_tensor *t = resnet_tensor_at(m, i);
        if (t->is_param && !t->trainable) {
            assert_null(t->grad);
            copy[i] = malloc(sizeof(float) * t->numel);
            memcpy(copy[i], t->data, sizeof(float) * t->numel);
            frozen++;
        }
    }
    assert_true(freeze == FREEZE_NONE || frozen > 0);
    int *labels = malloc(sizeof(int) * b);
    for (int i = 0; i < b; i++)
        labels[i] = i % info.classes;
    /* the trainable values before training, to see that they moved */
    size_t np;
    float *g0, *p0 = resnet_trainable(m, &np, &g0);
    float *start = malloc(sizeof(float) * (np ? np : 1));
    assert_non_null(start);
    memcpy(start, p0, sizeof(float) * np);
    rng_t r;
    float first = 0, last = 0;
    for (int s = 0; s < steps; s++) {
        resnet_set_train(m, 1);
        resnet_zero_grad(m);
        rng_seed(&r, 11); // the same dropout mask every step: one loss function
        resnet_forward(m, x, b, &r);
        float loss = resnet_loss(m, labels, 0, NULL);
        assert_true(isfinite(loss));
        if (s == 0) first = loss;
        last = loss;
        resnet_backward(m);
        size_t n;
        float *g, *p = resnet_trainable(m, &n, &g);
        for (size_t i = 0; i < n; i++)
            p[i] -= lr * g[i];
    }
    if (!(last < first))
        fail_msg("freeze %s: loss %g after %d steps, %g before", params_freeze_name(freeze), last,
                 steps, first);
    size_t moved = 0;
    for (size_t i = 0; i < np; i++)
        moved += p0[i] != start[i];
    if (!moved) fail_msg("freeze %s: no trainable value changed", params_freeze_name(freeze));
    free(start);
    for (size_t i = 0; i < nt; i++)
        if (copy[i]) {
            const resnet_tensor *t = resnet_tensor_at(m, i);
            assert_memory_equal(copy[i], t->data, sizeof(float) * t->numel);
            free(copy[i]);
        }
    free(copy);
    free(labels);
    free(x);
    free(want);
    free(feat);
}
