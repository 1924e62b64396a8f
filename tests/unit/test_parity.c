/* test_parity — the compute engine against PyTorch: the committed fixtures
 * tests/fixtures/parity_{basic,bottleneck}.safetensors (made by
 * tests/fixtures/make_parity.py from torchvision's BasicBlock/Bottleneck,
 * reference figures in float64) are loaded through the safetensors reader and
 * the engine's resnet/optim API, and every figure is compared:
 *   - logits and loss in evaluation and training mode: max abs error 1e-4;
 *   - gradients of every parameter after one training-mode backward, the
 *     running statistics after that forward, and the parameters after one
 *     (two for the BasicBlock model) SGD-momentum and Adam steps, one AdamW
 *     step, and the gradients with the stem..layer2 and with everything but
 *     fc frozen (also through the feature cache): relative error
 *     1e-3, measured against the tensor's largest reference value
 *     (max|got - want| <= 1e-3 * max|want|);
 *   - the same with the model prepared for larger batches than it is given.
 * The errors reached are printed as TAP comments (about 1e-6 relative when
 * this was written). No PyTorch is needed to run this test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "errors.h"
#include "optim.h"
#include "resnet.h"
#include "safetensors.h"

#define FIXTURE_DIR SWEEP_SRCDIR "/tests/fixtures/"
#define TOL_ABS 1e-4
#define TOL_REL 1e-3
/* VGG and Inception v3 fixtures (issue 18): logits and losses within 1e-4
 * absolute as above; every gradient and parameter within 1e-4 of its
 * tensor's largest reference value, or, for a gradient (and a parameter after
 * the SGD step from it), within F32_FACTOR times the error PyTorch itself
 * makes computing it in float32
 * (parity.f32err.*, stored
 * by make_parity_families.py). Per-tensor 1e-4 is beyond float32 for some
 * batchnorm gradients of these narrow nets, which sum ~1e5 cancelling terms:
 * PyTorch in float32 misses the float64 figure by up to 2e-2 on such tensors
 * of the Inception fixture (the engine, about as much on the same ones). */
#define TOL_REL_FAMILIES 1e-4
#define F32_FACTOR 4.0 // float32 rounding differs run to run; the engine's is about PyTorch's

/* Relative tolerance of the fixture being compared (set by fixture_open). */
static double tol_rel = TOL_REL;

typedef struct {
    st_file *f;  // the fixture file
    resnet *m;   // model built from it
    float *x;    // (batch, 3, size, size) input
    int *labels; // (batch) class indices
    int batch;   // images
    int size;    // input side
    int classes; // model outputs
} fixture;

/* Reads tensor NAME of F as floats (malloc'd, *N elements) or fails the test. */
static float *fx_read(const st_file *f, const char *name, size_t *n)
{
    const st_tensor *t = st_find(f, name);
    if (!t) fail_msg("fixture %s has no tensor %s", st_path(f), name);
    float *v = malloc(sizeof(float) * (t->numel ? (size_t)t->numel : 1));
    assert_non_null(v);
    char msg[256];
    if (st_read_f32(f, t, v, msg, sizeof msg)) fail_msg("%s", msg);
    if (n) *n = (size_t)t->numel;
    return v;
}

static float fx_scalar(const st_file *f, const char *name)
{
    float *v = fx_read(f, name, NULL);
    float s = v[0];
    free(v);
    return s;
}

/* The fixture's name for messages: its block type (ResNets) or arch. */
static const char *fx_label(const st_file *f)
{
    const char *b = st_metadata(f, "block");
    return b ? b : st_metadata(f, "arch");
}

/* Compares N floats GOT with the reference tensor NAME (absolute tolerance
 * when ABS_TOL > 0, else relative to the largest reference value). Returns
 * the achieved error (absolute or relative like the tolerance). */
static double compare(const st_file *f, const char *name, const float *got, size_t n,
                      double abs_tol)
{
    size_t rn;
    float *want = fx_read(f, name, &rn);
    if (rn != n) fail_msg("%s: %zu values, the reference has %zu", name, n, rn);
    double scale = 0, err = 0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(want[i]) > scale) scale = fabs(want[i]);
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (!(e <= err)) { // also catches NaN
            err = e;
            worst = i;
        }
    }
    /* a reference that is 0 up to float64 rounding (the gradient of a conv
     * bias before a training-mode batchnorm) is matched within 1e-8 absolute */
    double tol = abs_tol > 0 ? abs_tol : tol_rel * (scale > 1e-12 ? scale : 1e-8);
    /* the float32 floor of a gradient, and of a parameter after the SGD step
     * (lr 0.1, make_parity.py) from the training gradient */
    char f32[320];
    double scale32 = 1.0;
    if (!strncmp(name, "parity.sgd1.", 12)) {
        snprintf(f32, sizeof f32, "parity.f32err.train.grad.%s", name + 12);
        scale32 = 0.1;
    } else {
        snprintf(f32, sizeof f32, "parity.f32err.%s", name + strlen("parity."));
    }
    if (abs_tol <= 0 && !strncmp(name, "parity.", 7) && st_find(f, f32)) {
        double floor32 = F32_FACTOR * scale32 * fx_scalar(f, f32);
        if (floor32 > tol) tol = floor32;
    }
    if (!(err <= tol))
        fail_msg("%s: max error %.3g at [%zu] (got %.7g, want %.7g), tolerance %.3g "
                 "(largest reference value %.3g)",
                 name, err, worst, got[worst], want[worst], tol, scale);
    free(want);
    return abs_tol > 0 ? err : err / (scale > 0 ? scale : 1);
}

/* Opens FILE and prepares its model for FREEZE and batches of up to
 * MAX_BATCH images (0: the fixture's batch). */
static void fixture_open(fixture *fx, const char *file, freeze_kind freeze, int max_batch)
{
    char msg[512] = "";
    memset(fx, 0, sizeof *fx);
    int rc = st_open(&fx->f, file, msg, sizeof msg);
    if (rc) fail_msg("%s", msg);
    if ((rc = resnet_from_safetensors(&fx->m, fx->f, 0, 0, msg, sizeof msg)))
        fail_msg("resnet_from_safetensors: %s", msg);
    fx->batch = atoi(st_metadata(fx->f, "batch"));
    fx->size = atoi(st_metadata(fx->f, "input_size"));
    size_t nx, nl;
    fx->x = fx_read(fx->f, "parity.input", &nx);
    float *lf = fx_read(fx->f, "parity.labels", &nl);
    assert_int_equal(nl, (size_t)fx->batch);
    assert_int_equal(nx, (size_t)fx->batch * 3 * fx->size * fx->size);
    fx->labels = malloc(sizeof(int) * nl);
    assert_non_null(fx->labels);
    for (size_t i = 0; i < nl; i++)
        fx->labels[i] = (int)lf[i];
    free(lf);
    resnet_info info;
    resnet_get_info(fx->m, &info);
    fx->classes = info.classes;
    assert_int_equal(info.classes, atoi(st_metadata(fx->f, "classes_count")));
    if (st_metadata(fx->f, "family")) { // make_parity_families.py: VGG, Inception v3
        assert_string_equal(info.arch, st_metadata(fx->f, "arch"));
        assert_string_equal(arch_family_name(info.family), st_metadata(fx->f, "family"));
        tol_rel = TOL_REL_FAMILIES;
    } else {
        assert_int_equal(info.width, atoi(st_metadata(fx->f, "width")));
        for (int l = 0; l < 4; l++)
            assert_int_equal(info.blocks[l], 1);
        assert_int_equal(info.block,
                         strcmp(fx_label(fx->f), "basic") ? RESNET_BOTTLENECK : RESNET_BASIC);
        tol_rel = TOL_REL;
    }
    if ((rc = resnet_prepare(fx->m, freeze, 0.0f, max_batch > 0 ? max_batch : fx->batch, fx->size,
                             fx->size, msg, sizeof msg)))
        fail_msg("resnet_prepare: %s", msg);
}

static void fixture_close(fixture *fx)
{
    free(fx->x);
    free(fx->labels);
    resnet_free(fx->m);
    st_close(fx->f);
}

/* Training forward + loss + backward on the fixture batch; returns the loss. */
static float train_pass(fixture *fx, const float **logits)
{
    resnet_set_train(fx->m, 1);
    resnet_zero_grad(fx->m);
    const float *lg = resnet_forward(fx->m, fx->x, fx->batch, NULL);
    if (logits) *logits = lg;
    float loss = resnet_loss(fx->m, fx->labels, 0.0f, NULL);
    resnet_backward(fx->m);
    return loss;
}

/* Compares every parameter with "PREFIX.<name>". */
static void compare_params(fixture *fx, const char *prefix)
{
    double worst = 0;
    size_t total = 0;
    for (size_t i = 0; i < resnet_tensor_count(fx->m); i++) {
        const resnet_tensor *t = resnet_tensor_at(fx->m, i);
        if (!t->is_param) continue;
        char name[256];
        snprintf(name, sizeof name, "%s.%s", prefix, t->name);
        double e = compare(fx->f, name, t->data, t->numel, 0);
        if (e > worst) worst = e;
        total += t->numel;
    }
    printf("# %s: %s params (%zu values) max relative error %.2e\n", fx_label(fx->f), prefix, total,
           worst);
}

static void run_parity(const char *file)
{
    fixture fx;
    fixture_open(&fx, file, FREEZE_NONE, 0);
    const st_file *f = fx.f;
    size_t nlog = (size_t)fx.batch * fx.classes;
    int two_steps = st_find(f, "parity.sgd2.fc.weight") != NULL;

    /* Evaluation mode. */
    resnet_set_train(fx.m, 0);
    const float *lg = resnet_forward(fx.m, fx.x, fx.batch, NULL);
    double e1 = compare(f, "parity.eval.logits", lg, nlog, TOL_ABS);
    float loss = resnet_loss(fx.m, fx.labels, 0.0f, NULL);
    compare(f, "parity.eval.loss", &loss, 1, TOL_ABS);

    /* Training mode: logits, loss (plain and label-smoothed), gradients,
     * running statistics. */
    resnet_set_train(fx.m, 1);
    resnet_zero_grad(fx.m);
    lg = resnet_forward(fx.m, fx.x, fx.batch, NULL);
    double e2 = compare(f, "parity.train.logits", lg, nlog, TOL_ABS);
    if (st_find(f, "parity.train.loss_smooth")) {
        float smooth = resnet_loss(fx.m, fx.labels, 0.1f, NULL);
        compare(f, "parity.train.loss_smooth", &smooth, 1, TOL_ABS);
    }
    loss = resnet_loss(fx.m, fx.labels, 0.0f, NULL);
    compare(f, "parity.train.loss", &loss, 1, TOL_ABS);
    resnet_backward(fx.m);
    printf("# %s: logits max abs error eval %.2e, train %.2e; loss %.6f (torch %.6f)\n",
           fx_label(f), e1, e2, loss, fx_scalar(f, "parity.train.loss"));
    double gworst = 0;
    for (size_t i = 0; i < resnet_tensor_count(fx.m); i++) {
        const resnet_tensor *t = resnet_tensor_at(fx.m, i);
        char name[256];
        if (t->is_param) {
            assert_non_null(t->grad);
            snprintf(name, sizeof name, "parity.train.grad.%s", t->name);
            double e = compare(f, name, t->grad, t->numel, 0);
            if (e > gworst) gworst = e;
        } else {
            snprintf(name, sizeof name, "parity.train.running.%s", t->name);
            compare(f, name, t->data, t->numel, 0);
        }
    }
    printf("# %s: gradients max relative error %.2e\n", fx_label(f), gworst);

    /* Optimizer steps from these gradients. */
    size_t n;
    float *grads;
    float *params = resnet_trainable(fx.m, &n, &grads);
    assert_non_null(params);
    assert_non_null(grads);
    float *p0 = malloc(n * sizeof *p0), *g1 = malloc(n * sizeof *g1);
    assert_non_null(p0);
    assert_non_null(g1);
    memcpy(p0, params, n * sizeof *p0);
    memcpy(g1, grads, n * sizeof *g1);
    char msg[256];

    optim o;
    optim_config sgd = {
        .kind = OPTIM_SGD, .momentum = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 1e-4f};
    assert_int_equal(optim_init(&o, &sgd, n, msg, sizeof msg), 0);
    optim_step(&o, params, g1, 0.1f);
    compare_params(&fx, "parity.sgd1");
    if (two_steps) {
        train_pass(&fx, NULL);
        optim_step(&o, params, grads, 0.1f);
        compare_params(&fx, "parity.sgd2");
    }
    optim_free(&o);

    optim_config adam = {
        .kind = OPTIM_ADAM, .momentum = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 1e-4f};
    if (st_find(f, "parity.adam1.features.0.weight") || st_find(f, "parity.adam1.fc.weight")) {
        memcpy(params, p0, n * sizeof *p0);
        assert_int_equal(optim_init(&o, &adam, n, msg, sizeof msg), 0);
        optim_step(&o, params, g1, 0.01f);
        compare_params(&fx, "parity.adam1");
        if (two_steps) {
            train_pass(&fx, NULL);
            optim_step(&o, params, grads, 0.01f);
            compare_params(&fx, "parity.adam2");
        }
        optim_free(&o);
    }

    if (st_find(f, "parity.adamw1.fc.weight")) {
        optim_config adamw = {.kind = OPTIM_ADAMW,
                              .momentum = 0.9f,
                              .beta2 = 0.999f,
                              .eps = 1e-8f,
                              .weight_decay = 0.01f};
        memcpy(params, p0, n * sizeof *p0);
        assert_int_equal(optim_init(&o, &adamw, n, msg, sizeof msg), 0);
        optim_step(&o, params, g1, 0.01f);
        compare_params(&fx, "parity.adamw1");
        optim_free(&o);
    }
    free(p0);
    free(g1);
    fixture_close(&fx);
}

static void test_parity_basic(void **state)
{
    (void)state;
    run_parity(FIXTURE_DIR "parity_basic.safetensors");
}

static void test_parity_bottleneck(void **state)
{
    (void)state;
    run_parity(FIXTURE_DIR "parity_bottleneck.safetensors");
}

/* Freezing: the frozen prefix runs in evaluation mode and gets no
 * gradients; the rest matches PyTorch with the same modules frozen (fixture
 * entries parity.TAG.*). With FEATURES the prefix runs once through
 * resnet_features() and training continues from the cached features
 * (resnet_forward_features), as a trial without augmentation does. */
static void check_freeze_in(const char *file, freeze_kind freeze, const char *tag, int features)
{
    fixture fx;
    fixture_open(&fx, file, freeze, 0);
    float *feat = NULL;
    const float *lg;
    float loss;
    if (features) {
        size_t per = resnet_feature_floats(fx.m);
        assert_true(per > 0);
        feat = malloc(sizeof(float) * per * (size_t)fx.batch);
        assert_non_null(feat);
        resnet_features(fx.m, fx.x, fx.batch, feat);
        resnet_set_train(fx.m, 1);
        resnet_zero_grad(fx.m);
        lg = resnet_forward_features(fx.m, feat, fx.batch, NULL);
        loss = resnet_loss(fx.m, fx.labels, 0.0f, NULL);
        resnet_backward(fx.m);
    } else {
        loss = train_pass(&fx, &lg);
    }
    char name[256];
    snprintf(name, sizeof name, "parity.%s.logits", tag);
    compare(fx.f, name, lg, (size_t)fx.batch * fx.classes, TOL_ABS);
    snprintf(name, sizeof name, "parity.%s.loss", tag);
    compare(fx.f, name, &loss, 1, TOL_ABS);
    int trained = 0, frozen = 0;
    for (size_t i = 0; i < resnet_tensor_count(fx.m); i++) {
        const resnet_tensor *t = resnet_tensor_at(fx.m, i);
        if (!t->is_param) continue;
        snprintf(name, sizeof name, "parity.%s.grad.%s", tag, t->name);
        int has_ref = st_find(fx.f, name) != NULL;
        if (has_ref != (t->trainable != 0))
            fail_msg("%s: %s trainable %d but PyTorch %s a gradient", tag, t->name, t->trainable,
                     has_ref ? "has" : "has no");
        if (!has_ref) {
            frozen++;
            continue;
        }
        trained++;
        assert_non_null(t->grad);
        compare(fx.f, name, t->grad, t->numel, 0);
    }
    assert_true(trained > 0);
    assert_true(frozen > 0);
    free(feat);
    fixture_close(&fx);
}

static void check_freeze(freeze_kind freeze, const char *tag, int features)
{
    check_freeze_in(FIXTURE_DIR "parity_basic.safetensors", freeze, tag, features);
}

static void test_parity_freeze(void **state)
{
    (void)state;
    check_freeze(FREEZE_LAYER2, "freeze_layer2", 0);
    check_freeze(FREEZE_LAYER4, "freeze_all", 0);
    check_freeze(FREEZE_ALL, "freeze_all", 0);
}

static void test_parity_cached_features(void **state)
{
    (void)state;
    check_freeze(FREEZE_LAYER2, "freeze_layer2", 1);
    check_freeze(FREEZE_LAYER4, "freeze_all", 1);
    check_freeze(FREEZE_ALL, "freeze_all", 1);
}

/* A model prepared for more images than a batch has (the last, partial
 * batch of an epoch; predict's last group) computes the same. */
static void test_parity_partial_batch(void **state)
{
    (void)state;
    static const char *const files[] = {FIXTURE_DIR "parity_basic.safetensors",
                                        FIXTURE_DIR "parity_bottleneck.safetensors"};
    for (int k = 0; k < 2; k++) {
        for (int extra = 1; extra <= 3; extra++) {
            fixture fx;
            fixture_open(&fx, files[k], FREEZE_NONE, 4 + extra);
            assert_int_equal(fx.batch, 4);
            resnet_set_train(fx.m, 0);
            const float *lg = resnet_forward(fx.m, fx.x, fx.batch, NULL);
            compare(fx.f, "parity.eval.logits", lg, (size_t)fx.batch * fx.classes, TOL_ABS);
            float loss = train_pass(&fx, &lg);
            compare(fx.f, "parity.train.logits", lg, (size_t)fx.batch * fx.classes, TOL_ABS);
            compare(fx.f, "parity.train.loss", &loss, 1, TOL_ABS);
            for (size_t i = 0; i < resnet_tensor_count(fx.m); i++) {
                const resnet_tensor *t = resnet_tensor_at(fx.m, i);
                if (!t->is_param) continue;
                char name[256];
                snprintf(name, sizeof name, "parity.train.grad.%s", t->name);
                compare(fx.f, name, t->grad, t->numel, 0);
            }
            fixture_close(&fx);
        }
    }
}

/* VGG (vgg11_bn and plain vgg11, narrow) and Inception v3 (narrow, input 299
 * with the auxiliary head, transform_input): the same comparisons, at
 * 1e-4 relative, then the freeze points each fixture lists, directly and
 * through the feature cache. */
static void run_family(const char *file)
{
    run_parity(file);
    st_file *f;
    char msg[256];
    if (st_open(&f, file, msg, sizeof msg)) fail_msg("%s", msg);
    char list[256];
    snprintf(list, sizeof list, "%s", st_metadata(f, "freezes"));
    st_close(f);
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int k = 0;
        while (arch_freeze_choices[k] && strcmp(arch_freeze_choices[k], t))
            k++;
        assert_non_null(arch_freeze_choices[k]);
        char tag[64];
        snprintf(tag, sizeof tag, "freeze_%s", t);
        check_freeze_in(file, (freeze_kind)k, tag, 0);
        check_freeze_in(file, (freeze_kind)k, tag, 1);
    }
}

static void test_parity_vgg(void **state)
{
    (void)state;
    run_family(FIXTURE_DIR "parity_vgg.safetensors");
    run_family(FIXTURE_DIR "parity_vgg_plain.safetensors");
}

static void test_parity_inception(void **state)
{
    (void)state;
    run_family(FIXTURE_DIR "parity_inception.safetensors");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parity_vgg),           cmocka_unit_test(test_parity_inception),
        cmocka_unit_test(test_parity_basic),         cmocka_unit_test(test_parity_bottleneck),
        cmocka_unit_test(test_parity_freeze),        cmocka_unit_test(test_parity_cached_features),
        cmocka_unit_test(test_parity_partial_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
