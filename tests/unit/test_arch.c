/* test_arch — the architecture list (common/arch.c): lookups by name and by
 * structure, the name list and its message form, and the contract that the
 * daemon's job check, the worker's trial check and the engine agree on it:
 * every listed name is accepted by both checks and builds from scratch with
 * that name, every other name is refused by both. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "arch.h"
#include "errors.h"
#include "jobspec.h"
#include "jsonx.h"
#include "resnet.h"
#include "trialspec.h"

static void test_find(void **state)
{
    (void)state;
    const arch_info *a = arch_find("resnet18");
    assert_non_null(a);
    assert_string_equal(a->name, "resnet18");
    assert_int_equal(a->block, ARCH_BASIC);
    static const int r18[4] = {2, 2, 2, 2}, r34[4] = {3, 4, 6, 3}, r152[4] = {3, 8, 36, 3};
    assert_memory_equal(a->blocks, r18, sizeof r18);
    a = arch_find("resnet34");
    assert_non_null(a);
    assert_int_equal(a->block, ARCH_BASIC);
    assert_memory_equal(a->blocks, r34, sizeof r34);
    a = arch_find("resnet50");
    assert_non_null(a);
    assert_int_equal(a->block, ARCH_BOTTLENECK);
    assert_memory_equal(a->blocks, r34, sizeof r34);
    a = arch_find("resnet152");
    assert_non_null(a);
    assert_int_equal(a->block, ARCH_BOTTLENECK);
    assert_memory_equal(a->blocks, r152, sizeof r152);
    assert_true(arch_known(ARCH_DEFAULT));
    assert_true(arch_known("resnet101"));
    const char *bad[] = {"alexnet",   "",         "ResNet18",
                         "resnet18 ", "resnet",   "resnet-basic-2-2-2-2",
                         "vgg16bn",   "inception"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_null(arch_find(bad[i]));
        assert_false(arch_known(bad[i]));
    }
    assert_null(arch_find(NULL));
    assert_false(arch_known(NULL));
    a = arch_find("vgg16_bn");
    assert_non_null(a);
    assert_int_equal(a->family, ARCH_VGG);
    assert_int_equal(arch_find("inception_v3")->family, ARCH_INCEPTION);
    assert_int_equal(arch_find("resnet50")->family, ARCH_RESNET);
}

/* The freeze table: every family has none and all, the levels grow along a
 * family's stages, names of another family are refused, and the choice list
 * params.h indexes holds every name once. */
static void test_freeze_points(void **state)
{
    (void)state;
    assert_int_equal(arch_freeze_level(ARCH_RESNET, "none"), 0);
    assert_int_equal(arch_freeze_level(ARCH_RESNET, "layer2"), 3);
    assert_int_equal(arch_freeze_level(ARCH_RESNET, "all"), 6);
    assert_int_equal(arch_freeze_level(ARCH_RESNET, "block2"), -1);
    assert_int_equal(arch_freeze_level(ARCH_VGG, "block1"), 1);
    assert_int_equal(arch_freeze_level(ARCH_VGG, "features"),
                     arch_freeze_level(ARCH_VGG, "block5"));
    assert_int_equal(arch_freeze_level(ARCH_VGG, "all"), 7);
    assert_int_equal(arch_freeze_level(ARCH_VGG, "layer1"), -1);
    assert_int_equal(arch_freeze_level(ARCH_INCEPTION, "stem"), 5);
    assert_int_equal(arch_freeze_level(ARCH_INCEPTION, "Mixed_6e"), 13);
    assert_int_equal(arch_freeze_level(ARCH_INCEPTION, "Mixed_7a"), 15); // past AuxLogits
    assert_int_equal(arch_freeze_level(ARCH_INCEPTION, "all"), 17);
    assert_int_equal(arch_freeze_level(ARCH_INCEPTION, "mixed_5b"), -1);
    assert_int_equal(arch_freeze_level(ARCH_INCEPTION, NULL), -1);
    assert_true(arch_freeze_known("Mixed_7c"));
    assert_false(arch_freeze_known("layer5"));
    char buf[256];
    assert_string_equal(arch_freeze_list_string(ARCH_VGG, buf, sizeof buf),
                        "none, block1, block2, block3, block4, block5, features, all");
    assert_string_equal(arch_freeze_list_string(ARCH_RESNET, buf, sizeof buf),
                        "none, stem, layer1, layer2, layer3, layer4, all");
    /* the choice list: each name once, every name of the table in it */
    size_t n = 0;
    for (; arch_freeze_choices[n]; n++) {
        assert_true(arch_freeze_known(arch_freeze_choices[n]));
        for (size_t j = 0; j < n; j++)
            assert_string_not_equal(arch_freeze_choices[j], arch_freeze_choices[n]);
    }
    assert_int_equal(n, FREEZE_KIND_COUNT);
    assert_string_equal(arch_freeze_choices[FREEZE_ALL], "all");
    assert_string_equal(arch_freeze_choices[FREEZE_BLOCK1], "block1");
    assert_string_equal(arch_freeze_choices[FREEZE_FEATURES], "features");
    assert_string_equal(arch_freeze_choices[FREEZE_MIXED_5B], "Mixed_5b");
    assert_string_equal(arch_freeze_choices[FREEZE_MIXED_7C], "Mixed_7c");
    for (int f = 0; f < ARCH_FAMILY_COUNT; f++) {
        arch_freeze_list_string((arch_family)f, buf, sizeof buf);
        for (char *save = NULL, *t = strtok_r(buf, ", ", &save); t;
             t = strtok_r(NULL, ", ", &save)) {
            size_t k = 0;
            while (arch_freeze_choices[k] && strcmp(arch_freeze_choices[k], t))
                k++;
            assert_non_null(arch_freeze_choices[k]);
        }
    }
    assert_non_null(strstr(arch_family_list_string(buf, sizeof buf), "vgg (features.N"));
    assert_string_equal(arch_family_marker(ARCH_VGG), "features.0.weight");
}

static void test_names_and_match(void **state)
{
    (void)state;
    const char *const *names = arch_names();
    static const char *const want[] = {
        "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "vgg11",    "vgg11_bn",
        "vgg13",    "vgg13_bn", "vgg16",    "vgg16_bn",  "vgg19",     "vgg19_bn", "inception_v3"};
    size_t n = 0;
    for (; names[n]; n++) {
        assert_true(n < 14);
        assert_string_equal(names[n], want[n]);
        const arch_info *a = arch_find(names[n]);
        assert_non_null(a);
        if (a->family == ARCH_RESNET) assert_ptr_equal(arch_match(a->block, a->blocks), a);
    }
    assert_int_equal(n, 14);
    static const int r34[4] = {3, 4, 6, 3}, odd[4] = {1, 1, 1, 1};
    assert_string_equal(arch_match(ARCH_BASIC, r34)->name, "resnet34");
    assert_string_equal(arch_match(ARCH_BOTTLENECK, r34)->name, "resnet50");
    assert_null(arch_match(ARCH_BASIC, odd));
    assert_null(arch_match(ARCH_BOTTLENECK, odd));
}

#define ARCH_LIST                                                                                  \
    "resnet18, resnet34, resnet50, resnet101, resnet152, vgg11, vgg11_bn, vgg13, vgg13_bn, "       \
    "vgg16, vgg16_bn, vgg19, vgg19_bn, inception_v3"

static void test_list_string(void **state)
{
    (void)state;
    char buf[512];
    assert_ptr_equal(arch_list_string(buf, sizeof buf), buf);
    assert_string_equal(buf, ARCH_LIST);
    char small[12];
    memset(small, 'x', sizeof small);
    arch_list_string(small, sizeof small);
    assert_string_equal(small, "resnet18, r"); // truncated, terminated
    char one[1] = {'x'};
    arch_list_string(one, sizeof one);
    assert_int_equal(one[0], '\0');
    arch_list_string(NULL, 0); // nothing written
}

/* 0 when the daemon's job check accepts model.arch NAME, else its code. */
static int job_check(const char *name, char *msg, size_t n)
{
    char text[512];
    snprintf(text, sizeof text, "{\"data\":{\"train\":\"/d\"},\"model\":{\"arch\":\"%s\"}}", name);
    json_t *j = jx_parse(text, strlen(text), msg, n);
    assert_non_null(j);
    jobspec js;
    int rc = jobspec_parse(&js, j, 0, 1, msg, n);
    if (rc == 0) assert_string_equal(js.arch, name);
    jobspec_free(&js); // also after a failure
    json_decref(j);
    return rc;
}

/* 0 when the worker's trial check accepts model.arch NAME, else its code. */
static int trial_check(const char *name, char *msg, size_t n)
{
    char text[512];
    snprintf(text, sizeof text,
             "{\"data\":{\"train\":\"/d\"},\"model\":{\"arch\":\"%s\"},\"out_dir\":\"/o\"}", name);
    json_t *j = jx_parse(text, strlen(text), msg, n);
    assert_non_null(j);
    trial_spec s;
    int rc = trialspec_from_json(&s, j, msg, n);
    if (rc == 0) assert_string_equal(s.arch, name);
    trialspec_free(&s);
    json_decref(j);
    return rc;
}

static void test_checks_and_engine_agree(void **state)
{
    (void)state;
    char msg[1024];
    for (const char *const *p = arch_names(); *p; p++) {
        assert_int_equal(job_check(*p, msg, sizeof msg), 0);
        assert_int_equal(trial_check(*p, msg, sizeof msg), 0);
        resnet *m;
        int rc = resnet_create(&m, *p, 2, 3, 1, msg, sizeof msg);
        if (rc) fail_msg("resnet_create %s: %s", *p, msg);
        resnet_info info;
        resnet_get_info(m, &info);
        assert_string_equal(info.arch, *p);
        assert_int_equal(info.family, arch_find(*p)->family);
        if (info.family == ARCH_RESNET) {
            assert_memory_equal(info.blocks, arch_find(*p)->blocks, sizeof info.blocks);
            assert_int_equal(info.block == RESNET_BOTTLENECK,
                             arch_find(*p)->block == ARCH_BOTTLENECK);
        }
        resnet_free(m);
    }
    const char *bad[] = {"alexnet", "ResNet50", "resnet"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[512];
        snprintf(want, sizeof want, "model.arch: expected one of " ARCH_LIST ", got \"%s\"",
                 bad[i]);
        assert_int_equal(job_check(bad[i], msg, sizeof msg), ERR_INVALID);
        assert_string_equal(msg, want);
        assert_int_equal(trial_check(bad[i], msg, sizeof msg), ERR_RANGE);
        assert_string_equal(msg, want);
        resnet *m;
        assert_int_equal(resnet_create(&m, bad[i], 2, 3, 1, msg, sizeof msg), ERR_INVALID);
        assert_non_null(strstr(msg, ARCH_LIST));
    }
}

/* 0 when the daemon accepts a job for ARCH (weights WEIGHTS or none) with
 * the JSON members EXTRA (expanded into trials), else its code. */
static int job_freeze(const char *arch, const char *extra, char *msg, size_t n)
{
    char text[512];
    snprintf(text, sizeof text, "{\"data\":{\"train\":\"/d\"},\"model\":{\"arch\":\"%s\"}, %s}",
             arch, extra);
    json_t *j = jx_parse(text, strlen(text), msg, n);
    assert_non_null(j);
    jobspec js;
    int rc = jobspec_parse(&js, j, JOBSPEC_EXPAND, 1, msg, n);
    jobspec_free(&js);
    json_decref(j);
    return rc;
}

/* The job check validates freeze per family against the same table. */
static void test_job_freeze_per_family(void **state)
{
    (void)state;
    char msg[512];
    assert_int_equal(job_freeze("vgg16_bn", "\"fixed\":{\"freeze\":\"block3\"}", msg, sizeof msg),
                     0);
    assert_int_equal(job_freeze("vgg11", "\"space\":{\"freeze\":[\"none\",\"features\",\"all\"]}",
                                msg, sizeof msg),
                     0);
    assert_int_equal(
        job_freeze("inception_v3", "\"fixed\":{\"freeze\":\"Mixed_6e\"}", msg, sizeof msg), 0);
    assert_int_equal(job_freeze("resnet18", "\"fixed\":{\"freeze\":\"layer3\"}", msg, sizeof msg),
                     0);
    assert_int_equal(job_freeze("vgg16", "\"fixed\":{\"freeze\":\"layer3\"}", msg, sizeof msg),
                     ERR_RANGE);
    assert_string_equal(msg,
                        "fixed.freeze: \"layer3\" is not a freeze point of vgg16 (expected one "
                        "of none, block1, block2, block3, block4, block5, features, all)");
    assert_int_equal(
        job_freeze("resnet50", "\"space\":{\"freeze\":[\"none\",\"Mixed_5b\"]}", msg, sizeof msg),
        ERR_RANGE);
    assert_non_null(strstr(msg, "space.freeze[1]: \"Mixed_5b\" is not a freeze point of resnet50"));
    /* the engine refuses the same: a model of one family, another's point */
    resnet *m;
    assert_int_equal(resnet_create(&m, "vgg11", 2, 3, 1, msg, sizeof msg), 0);
    assert_int_equal(resnet_prepare(m, FREEZE_LAYER2, 0, 2, 32, 32, msg, sizeof msg), ERR_INVALID);
    assert_non_null(strstr(msg, "\"layer2\" is not a freeze point of vgg11"));
    assert_int_equal(resnet_prepare(m, FREEZE_BLOCK2, 0, 2, 32, 32, msg, sizeof msg), 0);
    resnet_free(m);
    assert_int_equal(resnet_create(&m, "resnet18", 2, 3, 1, msg, sizeof msg), 0);
    assert_int_equal(resnet_prepare(m, FREEZE_MIXED_6E, 0, 2, 32, 32, msg, sizeof msg),
                     ERR_INVALID);
    resnet_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),          cmocka_unit_test(test_names_and_match),
        cmocka_unit_test(test_freeze_points), cmocka_unit_test(test_job_freeze_per_family),
        cmocka_unit_test(test_list_string),   cmocka_unit_test(test_checks_and_engine_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
