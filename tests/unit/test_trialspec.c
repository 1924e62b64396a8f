/* test_trialspec — trial spec parsing: defaults, every key read, unknown keys
 * and bad values refused with the key path named, and the resume hash
 * ignoring only the fields that do not change the computation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "trialspec.h"
#include "util_jpeg.h"

static const char *full_spec =
    "{\"trial\": 17, \"job\": 3, \"seed\": 12345,"
    " \"data\": {\"train\": \"/data/pets/train\", \"val\": null, \"val_fraction\": 0.2,"
    "          \"test\": \"/data/pets/test\"},"
    " \"model\": {\"arch\": \"resnet34\", \"weights\": \"/models/r.safetensors\","
    "           \"input_size\": 160, \"width\": 32},"
    " \"params\": {\"lr\": 0.05, \"batch_size\": 16, \"epochs\": 7, \"dropout\": 0.2,"
    "            \"weight_decay\": 0.0001, \"l1\": 0.001, \"momentum\": 0.8,"
    "            \"optimizer\": \"adam\", \"freeze\": \"layer3\", \"augment\": true,"
    "            \"lr_schedule\": \"cosine\", \"warmup_epochs\": 1},"
    " \"objective\": {\"metric\": \"val_f1\", \"goal\": \"maximize\"},"
    " \"out_dir\": \"/tmp/t17\", \"cache_dir\": \"/tmp/cache\", \"threads\": 2}";

static int parse(const char *text, trial_spec *s, char *msg, size_t n)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    assert_non_null(j);
    int rc = trialspec_from_json(s, j, msg, n);
    json_decref(j);
    return rc;
}

static void test_full(void **state)
{
    (void)state;
    trial_spec s;
    char msg[256] = "";
    assert_int_equal(parse(full_spec, &s, msg, sizeof msg), 0);
    assert_int_equal(s.trial, 17);
    assert_int_equal(s.job, 3);
    assert_int_equal(s.seed, 12345);
    assert_string_equal(s.train_dir, "/data/pets/train");
    assert_null(s.val_dir);
    assert_true(s.val_fraction == 0.2);
    assert_string_equal(s.test_dir, "/data/pets/test");
    assert_string_equal(s.arch, "resnet34");
    assert_string_equal(s.weights, "/models/r.safetensors");
    assert_int_equal(s.input_size, 160);
    assert_int_equal(s.width, 32);
    assert_true(s.params.lr == 0.05);
    assert_int_equal(s.params.batch_size, 16);
    assert_int_equal(s.params.epochs, 7);
    assert_int_equal(s.params.optimizer, OPTIM_ADAM);
    assert_int_equal(s.params.freeze, FREEZE_LAYER3);
    assert_int_equal(s.params.augment, AUGMENT_FULL);
    assert_int_equal(s.params.lr_schedule, SCHED_COSINE);
    assert_int_equal(s.params.warmup_epochs, 1);
    assert_int_equal(s.metric, OBJ_VAL_F1);
    assert_true(s.maximize);
    assert_string_equal(s.out_dir, "/tmp/t17");
    assert_string_equal(s.cache_dir, "/tmp/cache");
    assert_int_equal(s.threads, 2);
    trialspec_free(&s);
}

static void test_defaults(void **state)
{
    (void)state;
    trial_spec s;
    char msg[256] = "";
    assert_int_equal(parse("{\"data\":{\"train\":\"/d\"},\"model\":{\"weights\":null},"
                           "\"out_dir\":\"/o\"}",
                           &s, msg, sizeof msg),
                     0);
    assert_int_equal(s.trial, 0);
    assert_int_equal(s.seed, 0);
    assert_null(s.val_dir);
    assert_true(s.val_fraction == 0.1);
    assert_null(s.weights);
    assert_string_equal(s.arch, "resnet18");
    assert_int_equal(s.input_size, 224);
    assert_int_equal(s.width, 64);
    assert_true(s.params.lr == 0.01);
    assert_int_equal(s.params.batch_size, 32);
    assert_int_equal(s.metric, OBJ_VAL_ACCURACY);
    assert_true(s.maximize);
    assert_null(s.cache_dir);
    assert_int_equal(s.threads, 1);
    assert_true(s.feature_cache);
    assert_true(s.cache_max_mb == trialspec_default_cache_mb());
    assert_true(s.cache_max_mb > 0);
    trialspec_free(&s);
    // the feature cache keys: read, range-checked, and kept out of the hash
    char ha[17], hb[17];
    assert_int_equal(
        parse("{\"data\":{\"train\":\"/d\"},\"model\":{},\"out_dir\":\"/o\"}", &s, msg, sizeof msg),
        0);
    trialspec_hash(&s, ha, sizeof ha);
    trialspec_free(&s);
    assert_int_equal(parse("{\"data\":{\"train\":\"/d\"},\"model\":{},\"out_dir\":\"/o\","
                           "\"feature_cache\":false,\"cache_max_mb\":7}",
                           &s, msg, sizeof msg),
                     0);
    assert_false(s.feature_cache);
    assert_true(s.cache_max_mb == 7);
    trialspec_hash(&s, hb, sizeof hb);
    assert_string_equal(ha, hb);
    json_t *j = trialspec_to_json(&s);
    assert_true(json_is_false(json_object_get(j, "feature_cache")));
    assert_int_equal(json_integer_value(json_object_get(j, "cache_max_mb")), 7);
    json_decref(j);
    trialspec_free(&s);
    assert_int_equal(parse("{\"data\":{\"train\":\"/d\"},\"model\":{},\"out_dir\":\"/o\","
                           "\"feature_cache\":1}",
                           &s, msg, sizeof msg),
                     ERR_TYPE);
    assert_non_null(strstr(msg, "feature_cache"));
    trialspec_free(&s);
    assert_int_equal(parse("{\"data\":{\"train\":\"/d\"},\"model\":{},\"out_dir\":\"/o\","
                           "\"cache_max_mb\":-1}",
                           &s, msg, sizeof msg),
                     ERR_RANGE);
    assert_non_null(strstr(msg, "cache_max_mb"));
    trialspec_free(&s);
    // a loss objective defaults to minimize
    assert_int_equal(parse("{\"data\":{\"train\":\"/d\"},\"model\":{},\"out_dir\":\"/o\","
                           "\"objective\":{\"metric\":\"val_loss\"}}",
                           &s, msg, sizeof msg),
                     0);
    assert_int_equal(s.metric, OBJ_VAL_LOSS);
    assert_false(s.maximize);
    assert_true(trialspec_better(&s, 0.1, 0.2));
    assert_false(trialspec_better(&s, 0.3, 0.2));
    trialspec_free(&s);
}

/* Each bad spec must fail and name the key. */
static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *needle;
    } cases[] = {
        {"{\"data\":{\"train\":\"/d\"},\"model\":{},\"out_dir\":\"/o\",\"bogus\":1}", "bogus"},
        {"{\"data\":{\"train\":\"/d\",\"vall\":null},\"model\":{},\"out_dir\":\"/o\"}",
         "data.vall"},
        {"{\"data\":{\"train\":\"/d\"},\"model\":{\"widht\":3},\"out_dir\":\"/o\"}", "model.widht"},
        {"{\"data\":{\"train\":\"/d\"},\"model\":{},\"out_dir\":\"/o\",\"params\":{\"lrr\":1}}",
         "params.lrr"},
        {"{\"data\":{\"train\":\"/d\"},\"model\":{},\"out_dir\":\"/o\","
         "\"objective\":{\"metric\":\"val_accuracy\",\"direction\":\"up\"}}",
         "objective.direction"},
        {"{\"data\":{\"train\":\"/d\"},\"model\":{},\"out_dir\":\"/o\",\"params\":{\"lr\":\"x\"}}",
         "params.lr"},
        {"{\"data\":{\"train\":\"/d\"},\"model\":{},\"out_dir\":\"/o\",\"params\":{\"lr\":-1}}",
         "params.lr"},
        {"{\"data\":{\"train\":\"/d\"},\"model\":{},\"out_dir\":\"/o\","
         "\"params\":{\"batch_size\":0}}",
         "params.batch_size"},
        {"{\"data\":{\"train\":\"/d\"},\"model\":{},\"out_dir\":\"/o\","
         "\"params\":{\"freeze\":\"layer9\"}}",
         "params.freeze"},
        {"{\"data\":{\"train\":\"/d\"},\"model\":{},\"out_dir\":\"/o\","
         "\"params\":{\"epochs\":2,\"warmup_epochs\":2}}",
         "warmup_epochs"},
        {"{\"data\":{\"train\":\"/d\"},\"model\":{\"arch\":\"alexnet\"},\"out_dir\":\"/o\"}",
         "model.arch"},
        {"{\"data\":{\"train\":\"/d\"},\"model\":{\"input_size\":3},\"out_dir\":\"/o\"}",
         "model.input_size"},
        {"{\"data\":{\"train\":\"/d\"},\"model\":{\"input_size\":32.5},\"out_dir\":\"/o\"}",
         "model.input_size"},
        {"{\"data\":{\"train\":\"/d\"},\"model\":{\"weights\":5},\"out_dir\":\"/o\"}",
         "model.weights"},
        {"{\"data\":{\"train\":\"/d\",\"val_fraction\":1.5},\"model\":{},\"out_dir\":\"/o\"}",
         "data.val_fraction"},
        {"{\"data\":{\"train\":\"\"},\"model\":{},\"out_dir\":\"/o\"}", "data.train"},
        {"{\"data\":{},\"model\":{},\"out_dir\":\"/o\"}", "data.train"},
        {"{\"model\":{},\"out_dir\":\"/o\"}", "data"},
        {"{\"data\":{\"train\":\"/d\"},\"out_dir\":\"/o\"}", "model"},
        {"{\"data\":{\"train\":\"/d\"},\"model\":{}}", "out_dir"},
        {"{\"data\":{\"train\":\"/d\"},\"model\":{},\"out_dir\":\"/o\",\"threads\":0}", "threads"},
        {"{\"data\":{\"train\":\"/d\"},\"model\":{},\"out_dir\":\"/o\",\"seed\":-4}", "seed"},
        {"{\"data\":{\"train\":\"/d\"},\"model\":{},\"out_dir\":\"/o\",\"trial\":\"x\"}", "trial"},
        {"{\"data\":{\"train\":\"/d\"},\"model\":{},\"out_dir\":\"/o\","
         "\"objective\":{\"metric\":\"test_accuracy\"}}",
         "objective.metric"},
        {"{\"data\":{\"train\":\"/d\"},\"model\":{},\"out_dir\":\"/o\","
         "\"objective\":{\"goal\":\"max\"}}",
         "objective.goal"},
        {"{\"data\":{\"train\":\"/d\"},\"model\":{},\"out_dir\":\"/o\",\"cache_dir\":7}",
         "cache_dir"},
        {"[1,2]", "object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        trial_spec s;
        char msg[256] = "";
        int rc = parse(cases[i].text, &s, msg, sizeof msg);
        if (rc >= 0 || !strstr(msg, cases[i].needle))
            fail_msg("case %zu: rc %d, message '%s' should name '%s'", i, rc, msg, cases[i].needle);
        trialspec_free(&s);
    }
}

static void test_hash(void **state)
{
    (void)state;
    trial_spec a, b;
    char msg[256], ha[17], hb[17];
    assert_int_equal(parse(full_spec, &a, msg, sizeof msg), 0);
    trialspec_hash(&a, ha, sizeof ha);
    assert_int_equal(strlen(ha), 16);
    // threads, out_dir, cache_dir, trial, job and data.test do not change the hash
    assert_int_equal(parse("{\"trial\": 99, \"job\": 1, \"seed\": 12345,"
                           " \"data\": {\"train\": \"/data/pets/train\", \"val_fraction\": 0.2},"
                           " \"model\": {\"arch\": \"resnet34\", \"weights\":"
                           " \"/models/r.safetensors\", \"input_size\": 160, \"width\": 32},"
                           " \"params\": {\"lr\": 0.05, \"batch_size\": 16, \"epochs\": 7,"
                           " \"dropout\": 0.2, \"weight_decay\": 0.0001, \"l1\": 0.001,"
                           " \"momentum\": 0.8, \"optimizer\": \"adam\", \"freeze\": \"layer3\","
                           " \"augment\": true, \"lr_schedule\": \"cosine\", \"warmup_epochs\": 1},"
                           " \"objective\": {\"metric\": \"val_f1\"},"
                           " \"out_dir\": \"/elsewhere\", \"threads\": 1}",
                           &b, msg, sizeof msg),
                     0);
    trialspec_hash(&b, hb, sizeof hb);
    assert_string_equal(ha, hb);
    // a hyperparameter does
    b.params.lr = 0.06;
    trialspec_hash(&b, hb, sizeof hb);
    assert_string_not_equal(ha, hb);
    b.params.lr = 0.05;
    b.seed = 1;
    trialspec_hash(&b, hb, sizeof hb);
    assert_string_not_equal(ha, hb);
    trialspec_free(&a);
    trialspec_free(&b);
}

/* data_roots: resolved directories, in the normalised spec and the hash
 * only when given; anything else refused naming the entry. */
static void test_data_roots(void **state)
{
    (void)state;
    char dir[256], real[512], text[1024], msg[512] = "";
    assert_int_equal(tju_mkdtemp(dir, sizeof dir, "trialspec"), 0);
    assert_non_null(realpath(dir, real));
    const char *base = "{\"data\":{\"train\":\"/d\"},\"model\":{},\"out_dir\":\"/o\"";
    trial_spec a, b;
    snprintf(text, sizeof text, "%s}", base);
    assert_int_equal(parse(text, &a, msg, sizeof msg), 0);
    assert_int_equal(a.n_data_roots, 0);
    snprintf(text, sizeof text, "%s,\"data_roots\":null}", base);
    assert_int_equal(parse(text, &b, msg, sizeof msg), 0);
    assert_int_equal(b.n_data_roots, 0);
    char ha[17], hb[17];
    trialspec_hash(&a, ha, sizeof ha);
    trialspec_hash(&b, hb, sizeof hb);
    assert_string_equal(ha, hb);
    json_t *j = trialspec_to_json(&b);
    assert_null(json_object_get(j, "data_roots"));
    json_decref(j);
    trialspec_free(&b);
    snprintf(text, sizeof text, "%s,\"data_roots\":[\"/\",\"%s/./\"]}", base, dir);
    assert_int_equal(parse(text, &b, msg, sizeof msg), 0);
    assert_int_equal(b.n_data_roots, 2);
    assert_string_equal(b.data_roots[0], "/");
    assert_string_equal(b.data_roots[1], real);
    j = trialspec_to_json(&b);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "data_roots"), 1)),
                        real);
    json_decref(j);
    trialspec_hash(&b, hb, sizeof hb);
    assert_string_not_equal(ha, hb); // what a worker may read changes what it trains on
    trialspec_free(&a);
    trialspec_free(&b);
    static const struct {
        const char *roots;  // the value of data_roots
        const char *needle; // what the message must say
    } bad[] = {
        {"\"/\"", "data_roots: expected an array of paths"},
        {"[3]", "data_roots[0]"},
        {"[\"/\", \"rel\"]", "data_roots[1]: expected an absolute path"},
        {"[\"/nonexistent-root-xyz\"]", "data_roots[0]: cannot resolve /nonexistent-root-xyz"},
        {"[\"/dev/null\"]", "data_roots[0]: /dev/null is not a directory"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "%s,\"data_roots\":%s}", base, bad[i].roots);
        int rc = parse(text, &a, msg, sizeof msg);
        if (rc >= 0 || !strstr(msg, bad[i].needle))
            fail_msg("case %zu: rc %d, message '%s' should say '%s'", i, rc, msg, bad[i].needle);
        trialspec_free(&a);
    }
    tju_rmrf(dir);
}

static void test_load_file(void **state)
{
    (void)state;
    char dir[256], path[300];
    assert_int_equal(tju_mkdtemp(dir, sizeof dir, "trialspec"), 0);
    snprintf(path, sizeof path, "%s/trial.json", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(full_spec, f);
    fclose(f);
    trial_spec s;
    char msg[256] = "";
    assert_int_equal(trialspec_load(&s, path, msg, sizeof msg), 0);
    assert_int_equal(s.trial, 17);
    trialspec_free(&s);
    f = fopen(path, "w");
    fputs("{\"data\": {", f);
    fclose(f);
    assert_true(trialspec_load(&s, path, msg, sizeof msg) < 0);
    assert_non_null(strstr(msg, path));
    trialspec_free(&s);
    unlink(path);
    assert_int_equal(trialspec_load(&s, path, msg, sizeof msg), ERR_IO);
    trialspec_free(&s);
    tju_rmrf(dir);
}

/* params.arch (a job searching the architecture): taken as model.arch when
 * that is absent, accepted when equal, refused when different. */
static void test_params_arch(void **state)
{
    (void)state;
    trial_spec s;
    char msg[256] = "";
    assert_int_equal(parse("{\"data\":{\"train\":\"/d\"},\"model\":{\"weights\":null},"
                           "\"params\":{\"arch\":\"vgg11_bn\"},\"out_dir\":\"/o\"}",
                           &s, msg, sizeof msg),
                     0);
    assert_string_equal(s.arch, "vgg11_bn");
    assert_true(s.arch_given);
    trialspec_free(&s);
    assert_int_equal(parse("{\"data\":{\"train\":\"/d\"},\"model\":{\"arch\":\"inception_v3\","
                           "\"weights\":null},\"params\":{\"arch\":\"inception_v3\"},"
                           "\"out_dir\":\"/o\"}",
                           &s, msg, sizeof msg),
                     0);
    assert_string_equal(s.arch, "inception_v3");
    trialspec_free(&s);
    assert_int_equal(parse("{\"data\":{\"train\":\"/d\"},\"model\":{\"arch\":\"resnet18\","
                           "\"weights\":null},\"params\":{\"arch\":\"vgg11\"},\"out_dir\":\"/o\"}",
                           &s, msg, sizeof msg),
                     ERR_INVALID);
    assert_string_equal(msg, "params.arch: \"vgg11\" is not model.arch \"resnet18\" (give one of "
                             "them, or the same in both)");
    trialspec_free(&s);
    assert_int_equal(parse("{\"data\":{\"train\":\"/d\"},\"model\":{\"weights\":null},"
                           "\"params\":{\"arch\":\"alexnet\"},\"out_dir\":\"/o\"}",
                           &s, msg, sizeof msg),
                     ERR_RANGE);
    assert_non_null(strstr(msg, "params.arch"));
    trialspec_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_errors),      cmocka_unit_test(test_hash),
        cmocka_unit_test(test_load_file),   cmocka_unit_test(test_data_roots),
        cmocka_unit_test(test_params_arch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
