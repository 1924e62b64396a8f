/* test_checkpoint — checkpoint files round-trip: every model tensor under its
 * torchvision name, the optimizer state of the trainable tensors, and the
 * metadata (arch, classes, preprocessing, epoch, metrics, spec hash) that
 * resume, predict and eval read; malformed metadata is refused by name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "errors.h"
#include "image.h"
#include "optim.h"
#include "params.h"
#include "resnet.h"
#include "safetensors.h"
#include "util_jpeg.h"

static char dir[256]; // scratch folder under $TMPDIR
static char *const classes[] = {"cat", "dog", "emu"};

static int setup(void **state)
{
    (void)state;
    return tju_mkdtemp(dir, sizeof dir, "checkpoint");
}

static int teardown(void **state)
{
    (void)state;
    tju_rmrf(dir);
    return 0;
}

/* A tiny model with freeze layer2 and an optimizer whose state is not zero. */
static void make(resnet **m, optim *o, optim_kind kind)
{
    char msg[256];
    assert_int_equal(resnet_create(m, "resnet18", 4, 3, 11, msg, sizeof msg), 0);
    assert_int_equal(resnet_prepare(*m, FREEZE_LAYER2, 0.0f, 2, 16, 16, msg, sizeof msg), 0);
    trial_params p;
    params_defaults(&p);
    p.optimizer = kind;
    optim_config cfg;
    optim_config_from_params(&cfg, &p);
    size_t n = 0;
    float *g = NULL;
    resnet_trainable(*m, &n, &g);
    assert_int_equal(optim_init(o, &cfg, n, msg, sizeof msg), 0);
    for (int k = 0; k < o->slots; k++)
        for (size_t i = 0; i < n; i++)
            optim_slot(o, k)[i] = (float)(k + 1) * 0.001f * (float)(i % 97);
    o->step = 42;
}

static void test_roundtrip(void **state)
{
    (void)state;
    resnet *m;
    optim o;
    make(&m, &o, OPTIM_ADAM);
    json_t *metrics = json_pack("[{s:i, s:f}]", "epoch", 1, "val_accuracy", 0.1 + 0.2);
    json_t *ts = json_pack("{s:f}", "loss_sum", 1.0 / 3.0);
    ckpt_info info = {.arch = "resnet18",
                      .classes = classes,
                      .nclasses = 3,
                      .input_size = 16,
                      .epoch = 1,
                      .step = 2,
                      .best_epoch = 1,
                      .spec_hash = "0123456789abcdef",
                      .metrics = metrics,
                      .train_state = ts};
    char path[512], msg[256];
    assert_int_equal(ckpt_path(path, sizeof path, dir, CKPT_FILE), 0);
    assert_int_equal(ckpt_save(path, m, &o, &info, msg, sizeof msg), 0);

    st_file *f = NULL;
    assert_int_equal(st_open(&f, path, msg, sizeof msg), 0);
    ckpt_meta meta;
    assert_int_equal(ckpt_read_meta(f, &meta, msg, sizeof msg), 0);
    assert_string_equal(meta.arch, "resnet18");
    assert_int_equal(meta.nclasses, 3);
    assert_string_equal(meta.classes[2], "emu");
    assert_int_equal(meta.input_size, 16);
    assert_true(meta.mean[1] == image_mean[1] && meta.std[2] == image_std[2]);
    assert_int_equal(meta.epoch, 1);
    assert_int_equal(meta.step, 2);
    assert_int_equal(meta.best_epoch, 1);
    assert_string_equal(meta.spec_hash, "0123456789abcdef");
    // reals survive exactly
    assert_true(json_real_value(json_object_get(json_array_get(meta.metrics, 0), "val_accuracy")) ==
                0.1 + 0.2);
    assert_true(json_real_value(json_object_get(meta.train_state, "loss_sum")) == 1.0 / 3.0);
    assert_string_equal(st_metadata(f, "format"), CKPT_FORMAT);

    // every model tensor is there, bit for bit, under its torchvision name
    for (size_t i = 0; i < resnet_tensor_count(m); i++) {
        const resnet_tensor *t = resnet_tensor_at(m, i);
        const st_tensor *st = st_find(f, t->name);
        assert_non_null(st);
        assert_int_equal(st->dtype, ST_F32);
        assert_int_equal((size_t)st->numel, t->numel);
        float *buf = malloc(t->numel * sizeof *buf);
        assert_int_equal(st_read_f32(f, st, buf, msg, sizeof msg), 0);
        assert_memory_equal(buf, t->data, t->numel * sizeof *buf);
        free(buf);
    }
    assert_non_null(st_find(f, "fc.weight"));
    assert_non_null(st_find(f, "optim.exp_avg.fc.weight"));
    assert_non_null(st_find(f, "optim.exp_avg_sq.layer4.1.conv2.weight"));
    assert_null(st_find(f, "optim.exp_avg.conv1.weight")); // frozen: no state

    // optimizer state comes back into a fresh optimizer
    resnet *m2;
    optim o2;
    make(&m2, &o2, OPTIM_ADAM);
    optim_reset(&o2);
    assert_int_equal(ckpt_load_optim(f, m2, &o2, msg, sizeof msg), 0);
    assert_int_equal(o2.step, 42);
    assert_memory_equal(o2.state, o.state, o.n * (size_t)o.slots * sizeof(float));
    // and the model loads from the checkpoint (optim.* tensors are ignored)
    assert_int_equal(resnet_load(m2, f, msg, sizeof msg), 0);
    const resnet_tensor *a = resnet_find_tensor(m, "layer3.0.conv1.weight");
    const resnet_tensor *b = resnet_find_tensor(m2, "layer3.0.conv1.weight");
    assert_memory_equal(a->data, b->data, a->numel * sizeof(float));

    // an SGD optimizer refuses Adam state, naming both
    resnet *m3;
    optim o3;
    make(&m3, &o3, OPTIM_SGD);
    assert_int_equal(ckpt_load_optim(f, m3, &o3, msg, sizeof msg), ERR_MODEL);
    assert_non_null(strstr(msg, "adam"));
    assert_non_null(strstr(msg, "sgd"));

    ckpt_meta_free(&meta);
    st_close(f);
    json_decref(metrics);
    json_decref(ts);
    optim_free(&o);
    optim_free(&o2);
    optim_free(&o3);
    resnet_free(m);
    resnet_free(m2);
    resnet_free(m3);
}

/* A best file (no optimizer) is a plain weights file with the metadata. */
static void test_best_without_optimizer(void **state)
{
    (void)state;
    resnet *m;
    optim o;
    make(&m, &o, OPTIM_SGD);
    ckpt_info info = {.arch = "resnet18",
                      .classes = classes,
                      .nclasses = 3,
                      .input_size = 16,
                      .epoch = 3,
                      .best_epoch = 3};
    char path[512], msg[256];
    assert_int_equal(ckpt_path(path, sizeof path, dir, CKPT_BEST_FILE), 0);
    assert_int_equal(ckpt_save(path, m, NULL, &info, msg, sizeof msg), 0);
    st_file *f = NULL;
    assert_int_equal(st_open(&f, path, msg, sizeof msg), 0);
    assert_int_equal(st_count(f), resnet_tensor_count(m));
    assert_null(st_metadata(f, "optim"));
    ckpt_meta meta;
    assert_int_equal(ckpt_read_meta(f, &meta, msg, sizeof msg), 0);
    assert_null(meta.spec_hash);
    assert_null(meta.train_state);
    ckpt_meta_free(&meta);
    st_close(f);
    optim_free(&o);
    resnet_free(m);
}

/* Metadata problems are ERR_MODEL naming the key. */
static void test_bad_metadata(void **state)
{
    (void)state;
    static const struct {
        const char *key, *value, *needle;
    } cases[] = {
        {"arch", NULL, "arch"},
        {"classes", "not json", "classes"},
        {"classes", "[]", "classes"},
        {"classes", "[1,2]", "classes[0]"},
        {"input_size", "abc", "input_size"},
        {"input_size", NULL, "input_size"},
        {"mean", "[1,2]", "mean"},
        {"epoch", "x", "epoch"},
    };
    float w[2] = {1, 2};
    int64_t shape[1] = {2};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        st_writer *wr = st_writer_new();
        assert_non_null(wr);
        assert_int_equal(st_writer_add_f32(wr, "fc.bias", 1, shape, w), 0);
        const char *keys[] = {"arch", "classes", "input_size", "mean", "epoch"};
        const char *vals[] = {"resnet18", "[\"a\",\"b\"]", "16", "[0.5,0.5,0.5]", "1"};
        for (size_t k = 0; k < 5; k++) {
            const char *v = !strcmp(keys[k], cases[i].key) ? cases[i].value : vals[k];
            if (v) assert_int_equal(st_writer_meta(wr, keys[k], v), 0);
        }
        char path[512], msg[256];
        snprintf(path, sizeof path, "%s/bad%zu.safetensors", dir, i);
        assert_int_equal(st_writer_save(wr, path, msg, sizeof msg), 0);
        st_writer_free(wr);
        st_file *f = NULL;
        assert_int_equal(st_open(&f, path, msg, sizeof msg), 0);
        ckpt_meta meta;
        int rc = ckpt_read_meta(f, &meta, msg, sizeof msg);
        if (rc != ERR_MODEL || !strstr(msg, cases[i].needle))
            fail_msg("case %zu: rc %d msg '%s' should name %s", i, rc, msg, cases[i].needle);
        ckpt_meta_free(&meta);
        st_close(f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_best_without_optimizer),
        cmocka_unit_test(test_bad_metadata),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
