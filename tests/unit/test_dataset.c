/* Tests for worker/data/dataset.c: scanning a generated ImageFolder with every
 * kind of file we promise to handle (RGB, grayscale, CMYK, progressive, 1x1,
 * nested, hidden, zero-byte, truncated, random bytes, non-JPEG, a link loop,
 * a class with no usable image), the counts, the stratified hash split and
 * its stability, byte-identical batches for a seed with and without the
 * prefetch thread, the decoded cache (reuse, rebuild on change, one build for
 * two processes starting together), separate validation folders and the
 * evaluation opener. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dataset.h"
#include "errors.h"
#include "util_jpeg.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define IN 32 // network input; stored squares are 37 x 37

static char *tmp;

static char *pth(const char *fmt, const char *a)
{
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/", tmp);
    size_t n = strlen(buf[k]);
    snprintf(buf[k] + n, sizeof buf[k] - n, fmt, a);
    return buf[k];
}

static void write_kind(const char *rel, int w, int h, tju_kind kind, bool prog, unsigned seed)
{
    int ch = kind == TJU_GRAY ? 1 : kind == TJU_CMYK ? 4 : 3;
    uint8_t *rgb = malloc((size_t)w * h * 3), *px = malloc((size_t)w * h * 4);
    tju_pattern(rgb, w, h, seed);
    for (int i = 0; i < w * h; i++)
        for (int c = 0; c < ch; c++)
            px[(size_t)i * ch + c] = rgb[(size_t)i * 3 + (c % 3)];
    assert_int_equal(tju_write_jpeg(pth("%s", rel), px, w, h, kind, 90, prog), 0);
    free(rgb);
    free(px);
}

/* The full messy tree under tmp/train (see the file comment). */
static void make_tree(void)
{
    write_kind("train/cat/a.jpg", 64, 48, TJU_RGB, false, 1);
    write_kind("train/cat/b.JPG", 50, 40, TJU_GRAY, false, 2);
    write_kind("train/cat/c.jpeg", 40, 40, TJU_CMYK, false, 3);
    write_kind("train/cat/d.jpg", 60, 45, TJU_RGB, true, 4);
    write_kind("train/cat/tiny.jpg", 1, 1, TJU_RGB, false, 5);
    write_kind("train/cat/sub/e.jpg", 48, 64, TJU_RGB, false, 6);
    write_kind("train/cat/.hidden.jpg", 20, 20, TJU_RGB, false, 7);
    write_kind("train/cat/.hiddendir/x.jpg", 20, 20, TJU_RGB, false, 8);
    assert_int_equal(symlink("..", pth("%s", "train/cat/sub/loop")), 0);
    assert_int_equal(tju_write_bytes(pth("%s", "train/cat/notes.txt"), "hello", 5), 0);
    assert_int_equal(tju_write_bytes(pth("%s", "train/cat/empty.jpg"), "", 0), 0);
    size_t len;
    uint8_t *rgb = malloc(64 * 64 * 3);
    tju_pattern(rgb, 64, 64, 9);
    uint8_t *j = tju_encode(rgb, 64, 64, TJU_RGB, 90, false, &len);
    assert_int_equal(tju_write_bytes(pth("%s", "train/cat/trunc.jpg"), j, len / 2), 0);
    free(j);
    free(rgb);
    uint8_t junk[777];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 37 + 1);
    assert_int_equal(tju_write_bytes(pth("%s", "train/cat/random.jpg"), junk, sizeof junk), 0);
    for (int i = 0; i < 6; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "train/dog/d%d.jpg", i);
        write_kind(rel, 40 + i * 7, 36, TJU_RGB, false, 20 + (unsigned)i);
    }
    assert_int_equal(tju_write_bytes(pth("%s", "train/fish/bad.jpg"), junk, 100), 0);
    assert_int_equal(tju_write_bytes(pth("%s", "train/fish/readme.txt"), "x", 1), 0);
    assert_int_equal(tju_write_bytes(pth("%s", "train/README.md"), "x", 1), 0);
    assert_int_equal(tju_write_bytes(pth("%s", "train/.git/config"), "x", 1), 0);
}

static int setup(void **state)
{
    (void)state;
    tmp = tju_tmpdir("ds");
    return tmp ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tju_rmrf(tmp);
    free(tmp);
    tmp = NULL;
    return 0;
}

static dataset_config cfg_for(const char *train, const char *val, const char *cache, double frac)
{
    dataset_config c = {.train_dir = train,
                        .val_dir = val,
                        .val_fraction = frac,
                        .input_size = IN,
                        .cache_dir = cache,
                        .threads = 2};
    return c;
}

static void test_scan_counts(void **state)
{
    (void)state;
    make_tree();
    dataset_scan s;
    char msg[512];
    assert_int_equal(dataset_scan_dir(pth("%s", "train"), NULL, 0, &s, msg, sizeof msg), 0);
    assert_int_equal(s.nclasses, 3);
    assert_string_equal(s.classes[0], "cat");
    assert_string_equal(s.classes[1], "dog");
    assert_string_equal(s.classes[2], "fish");
    /* cat: a b c d tiny sub/e empty trunc random; dog: 6; fish: bad. */
    assert_int_equal(s.nfiles, 16);
    assert_int_equal(s.skipped, 3); // notes.txt, fish/readme.txt, README.md
    assert_int_equal(s.loops, 1);   // cat/sub/loop -> cat
    int found_nested = 0;
    for (size_t i = 0; i < s.nfiles; i++) {
        assert_null(strstr(s.files[i].rel, "hidden"));
        if (strcmp(s.files[i].rel, "cat/sub/e.jpg") == 0) {
            found_nested = 1;
            assert_int_equal(s.files[i].label, 0);
        }
        if (i) assert_true(s.files[i - 1].label <= s.files[i].label);
    }
    assert_true(found_nested);
    dataset_scan_free(&s);
    assert_int_equal(dataset_scan_dir(pth("%s", "nope"), NULL, 0, &s, msg, sizeof msg),
                     ERR_NOTFOUND);
    assert_non_null(strstr(msg, "nope"));
    dataset_scan_free(&s);
}

static void test_open_empty_class_fails(void **state)
{
    (void)state;
    dataset d;
    char msg[512];
    dataset_config c = cfg_for(pth("%s", "train"), NULL, NULL, 0.34);
    assert_int_equal(dataset_open(&c, &d, msg, sizeof msg), ERR_DATA);
    assert_non_null(strstr(msg, "'fish'"));
    assert_non_null(strstr(msg, "train"));
    tju_rmrf(pth("%s", "train/fish"));
}

static void usable_by_class(const dataset *d, int label, size_t *n)
{
    *n = 0;
    for (size_t i = 0; i < d->train.n; i++)
        *n += d->train.label[i] == label;
    for (size_t i = 0; i < d->val.n; i++)
        *n += d->val.label[i] == label;
}

static void test_open_counts_and_split(void **state)
{
    (void)state;
    dataset d;
    char msg[512];
    dataset_config c = cfg_for(pth("%s", "train"), NULL, NULL, 0.34);
    assert_int_equal(dataset_open(&c, &d, msg, sizeof msg), 0);
    assert_int_equal(d.nclasses, 2);
    assert_int_equal(d.side, 37);
    assert_int_equal(d.bad, 3);     // empty, trunc, random
    assert_int_equal(d.skipped, 2); // notes.txt, README.md
    size_t ncat, ndog;
    usable_by_class(&d, 0, &ncat);
    usable_by_class(&d, 1, &ndog);
    assert_int_equal(ncat, 6);
    assert_int_equal(ndog, 6);
    assert_int_equal(d.val.n, 4); // round(0.34 * 6) = 2 per class
    assert_int_equal(d.train.n, 8);
    /* Validation = the 2 smallest path hashes of each class. */
    for (int label = 0; label < 2; label++) {
        uint64_t maxval = 0, mintrain = UINT64_MAX;
        for (size_t i = 0; i < d.val.n; i++)
            if (d.val.label[i] == label) {
                uint64_t h = dataset_path_hash(d.train_scan.files[d.val.file[i]].rel);
                if (h > maxval) maxval = h;
            }
        for (size_t i = 0; i < d.train.n; i++)
            if (d.train.label[i] == label) {
                uint64_t h = dataset_path_hash(d.train_scan.files[d.train.file[i]].rel);
                if (h < mintrain) mintrain = h;
            }
        assert_true(maxval < mintrain);
    }
    /* Stable: a second open gives the same split. Adding a dog image leaves
     * the cat split alone. */
    dataset d2;
    assert_int_equal(dataset_open(&c, &d2, msg, sizeof msg), 0);
    assert_int_equal(d2.val.n, d.val.n);
    assert_memory_equal(d2.val.file, d.val.file, d.val.n * sizeof *d.val.file);
    dataset_close(&d2);
    write_kind("train/dog/zz.jpg", 30, 30, TJU_RGB, false, 99);
    assert_int_equal(dataset_open(&c, &d2, msg, sizeof msg), 0);
    size_t k2 = 0;
    for (size_t i = 0; i < d.val.n; i++) {
        if (d.val.label[i] != 0) continue;
        while (k2 < d2.val.n && d2.val.label[k2] != 0)
            k2++;
        assert_true(k2 < d2.val.n);
        assert_string_equal(d.train_scan.files[d.val.file[i]].rel,
                            d2.train_scan.files[d2.val.file[k2]].rel);
        k2++;
    }
    dataset_close(&d2);
    unlink(pth("%s", "train/dog/zz.jpg"));
    dataset_close(&d);
}

static void test_batches_deterministic(void **state)
{
    (void)state;
    dataset d;
    char msg[512];
    dataset_config c = cfg_for(pth("%s", "train"), NULL, NULL, 0.34);
    assert_int_equal(dataset_open(&c, &d, msg, sizeof msg), 0);
    size_t per = (size_t)3 * IN * IN;
    int bs = 3;
    assert_int_equal(dataset_num_batches(&d.train, bs), 3);
    float *x1 = malloc(per * 8 * sizeof(float)), *x2 = malloc(per * 8 * sizeof(float));
    int l1[8], l2[8];
    uint32_t i1[8], i2[8];
    augment_opts aug;
    image_augment_defaults(&aug);
    assert_int_equal(dataset_fill_batch(&d.train, IN, 7, 1, 0, bs, true, &aug, x1, l1, i1), 3);
    assert_int_equal(dataset_fill_batch(&d.train, IN, 7, 1, 0, bs, true, &aug, x2, l2, i2), 3);
    assert_memory_equal(x1, x2, per * 3 * sizeof(float));
    assert_memory_equal(l1, l2, sizeof(int) * 3);
    /* Past the end: 0; the last batch is partial. */
    assert_int_equal(dataset_fill_batch(&d.train, IN, 7, 1, 3, bs, true, &aug, x1, l1, i1), 0);
    assert_int_equal(dataset_fill_batch(&d.train, IN, 7, 1, 2, bs, true, &aug, x1, l1, i1), 2);
    /* Loader with prefetch == direct fills, and covers each image once. */
    dataset_loader *ld;
    assert_int_equal(dataset_loader_new(&d.train, IN, bs, 7, true, &aug, true, &ld), 0);
    for (int epoch = 0; epoch < 2; epoch++) {
        dataset_loader_start(ld, epoch);
        dataset_batch b;
        int seen[8] = {0};
        size_t nb = 0;
        while (dataset_loader_next(ld, &b) == 1) {
            int n = dataset_fill_batch(&d.train, IN, 7, epoch, nb, bs, true, &aug, x1, l1, i1);
            assert_int_equal(b.n, n);
            assert_memory_equal(b.x, x1, per * (size_t)n * sizeof(float));
            assert_memory_equal(b.labels, l1, sizeof(int) * (size_t)n);
            for (int k = 0; k < n; k++)
                seen[b.index[k]]++;
            nb++;
        }
        assert_int_equal(nb, 3);
        for (int k = 0; k < 8; k++)
            assert_int_equal(seen[k], 1);
    }
    /* Resuming mid-epoch gives the same batches as iterating from 0. */
    dataset_loader_start_at(ld, 1, 2);
    dataset_batch b;
    assert_int_equal(dataset_loader_next(ld, &b), 1);
    assert_int_equal(dataset_fill_batch(&d.train, IN, 7, 1, 2, bs, true, &aug, x1, l1, i1), 2);
    assert_int_equal(b.n, 2);
    assert_memory_equal(b.x, x1, per * 2 * sizeof(float));
    assert_int_equal(dataset_loader_next(ld, &b), 0);
    dataset_loader_free(ld);
    /* A loader without the prefetch thread gives the same bytes too. */
    assert_int_equal(dataset_loader_new(&d.train, IN, bs, 7, true, &aug, false, &ld), 0);
    dataset_loader_start(ld, 1);
    assert_int_equal(dataset_loader_next(ld, &b), 1);
    assert_int_equal(dataset_fill_batch(&d.train, IN, 7, 1, 0, bs, true, &aug, x1, l1, i1), 3);
    assert_memory_equal(b.x, x1, per * 3 * sizeof(float));
    dataset_loader_free(ld);
    /* An image's augmentation does not depend on the batch size. */
    assert_int_equal(dataset_fill_batch(&d.train, IN, 7, 1, 0, 8, true, &aug, x2, l2, i2), 8);
    for (int k = 0; k < 8; k++) {
        size_t bb = (size_t)k / 3;
        int n = dataset_fill_batch(&d.train, IN, 7, 1, bb, 3, true, &aug, x1, l1, i1);
        int pos = k % 3;
        assert_true(pos < n);
        assert_int_equal(i1[pos], i2[k]);
        assert_memory_equal(x1 + per * pos, x2 + per * k, per * sizeof(float));
    }
    /* Different epochs: different order or pixels. */
    assert_int_equal(dataset_fill_batch(&d.train, IN, 7, 2, 0, 8, true, &aug, x1, l1, i1), 8);
    assert_memory_not_equal(x1, x2, per * 8 * sizeof(float));
    /* Evaluation: split order, center crops. */
    assert_int_equal(dataset_fill_batch(&d.val, IN, 7, 0, 0, 8, false, NULL, x1, l1, i1), 4);
    float *ev = malloc(per * sizeof(float));
    for (int k = 0; k < 4; k++) {
        assert_int_equal(i1[k], k);
        assert_int_equal(l1[k], d.val.label[k]);
        image_eval_view(dataset_store_pixels(d.train_store, d.val.file[k]), d.side, IN, NULL, ev);
        assert_memory_equal(x1 + per * k, ev, per * sizeof(float));
    }
    free(ev);
    free(x1);
    free(x2);
    dataset_close(&d);
}

static int count_files(const char *dir, const char *needle)
{
    DIR *dd = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (dd && (de = readdir(dd)))
        if (strstr(de->d_name, needle)) n++;
    if (dd) closedir(dd);
    return n;
}

static void test_cache_reuse_and_rebuild(void **state)
{
    (void)state;
    char cache[1024];
    snprintf(cache, sizeof cache, "%s/cache/a", tmp);
    dataset_scan s;
    dataset_store *mem, *c1, *c2;
    char msg[512];
    assert_int_equal(dataset_scan_dir(pth("%s", "train"), NULL, 0, &s, msg, sizeof msg), 0);
    assert_int_equal(dataset_store_open(&s, 37, NULL, 1, &mem, msg, sizeof msg), 0);
    assert_null(dataset_store_cache_path(mem));
    assert_int_equal(dataset_store_open(&s, 37, cache, 2, &c1, msg, sizeof msg), 0);
    assert_false(dataset_store_from_cache(c1));
    assert_int_equal(dataset_store_open(&s, 37, cache, 2, &c2, msg, sizeof msg), 0);
    assert_true(dataset_store_from_cache(c2));
    assert_string_equal(dataset_store_cache_path(c1), dataset_store_cache_path(c2));
    assert_int_equal(dataset_store_bad(c2), 3);
    for (size_t i = 0; i < s.nfiles; i++) {
        assert_int_equal(dataset_store_ok(mem, i), dataset_store_ok(c2, i));
        if (dataset_store_ok(mem, i))
            assert_memory_equal(dataset_store_pixels(mem, i), dataset_store_pixels(c2, i),
                                37 * 37 * 3);
    }
    char first_path[1024];
    snprintf(first_path, sizeof first_path, "%s", dataset_store_cache_path(c1));
    dataset_store_free(c1);
    dataset_store_free(c2);
    /* Another stored resolution is another file. */
    assert_int_equal(dataset_store_open(&s, 40, cache, 1, &c1, msg, sizeof msg), 0);
    assert_false(dataset_store_from_cache(c1));
    assert_string_not_equal(dataset_store_cache_path(c1), first_path);
    dataset_store_free(c1);
    dataset_store_free(mem);
    dataset_scan_free(&s);
    /* Change one image (new content and mtime): new key, fresh build. */
    write_kind("train/dog/d0.jpg", 44, 44, TJU_RGB, false, 123);
    struct timespec ts[2] = {{.tv_sec = 1700000000}, {.tv_sec = 1700000000}};
    assert_int_equal(utimensat(AT_FDCWD, pth("%s", "train/dog/d0.jpg"), ts, 0), 0);
    assert_int_equal(dataset_scan_dir(pth("%s", "train"), NULL, 0, &s, msg, sizeof msg), 0);
    assert_int_equal(dataset_store_open(&s, 37, cache, 1, &c1, msg, sizeof msg), 0);
    assert_false(dataset_store_from_cache(c1));
    assert_string_not_equal(dataset_store_cache_path(c1), first_path);
    dataset_store_free(c1);
    dataset_scan_free(&s);
    /* An unusable cache folder (below a regular file): decoded in memory. */
    char badcache[1200];
    snprintf(badcache, sizeof badcache, "%s/cache/afile/sub", tmp);
    assert_int_equal(tju_write_bytes(pth("%s", "cache/afile"), "x", 1), 0);
    assert_int_equal(dataset_scan_dir(pth("%s", "train"), NULL, 0, &s, msg, sizeof msg), 0);
    assert_int_equal(dataset_store_open(&s, 37, badcache, 1, &c1, msg, sizeof msg), 0);
    assert_false(dataset_store_from_cache(c1));
    assert_null(dataset_store_cache_path(c1));
    assert_int_equal(dataset_store_bad(c1), 3);
    dataset_store_free(c1);
    dataset_scan_free(&s);
    /* The 37 px cache of the old folder state was replaced; the 40 px one stays. */
    assert_int_equal(count_files(cache, ".bin"), 2);
    assert_int_equal(access(first_path, F_OK), -1);
    assert_int_equal(count_files(cache, "tmp"), 0);
}

static void test_cache_built_once_by_two_processes(void **state)
{
    (void)state;
    char cache[1024];
    snprintf(cache, sizeof cache, "%s/cache/shared", tmp);
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            char c;
            close(go[1]);
            if (read(go[0], &c, 1) < 0) _exit(1); // wait for the start signal (EOF)
            dataset_scan s;
            dataset_store *st;
            char msg[512];
            if (dataset_scan_dir(pth("%s", "train"), NULL, 0, &s, msg, sizeof msg) != 0) _exit(1);
            if (dataset_store_open(&s, 37, cache, 1, &st, msg, sizeof msg) != 0) _exit(2);
            _exit(dataset_store_from_cache(st) ? 10 : 20);
        }
    }
    close(go[0]);
    close(go[1]); // both children start now
    int built = 0, mapped = 0;
    for (int k = 0; k < 2; k++) {
        int status;
        assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) == 20)
            built++;
        else if (WEXITSTATUS(status) == 10)
            mapped++;
    }
    assert_int_equal(built, 1);
    assert_int_equal(mapped, 1);
    assert_int_equal(count_files(cache, ".bin"), 1);
    assert_int_equal(count_files(cache, "tmp"), 0);
}

static void test_val_folder_and_eval(void **state)
{
    (void)state;
    write_kind("val/dog/v1.jpg", 30, 40, TJU_RGB, false, 50);
    write_kind("val/cat/v2.jpg", 30, 40, TJU_GRAY, false, 51);
    assert_int_equal(tju_write_bytes(pth("%s", "val/cat/bad.jpg"), "nope", 4), 0);
    dataset d;
    char msg[512];
    dataset_config c = cfg_for(pth("%s", "train"), pth("%s", "val"), NULL, 0.5);
    assert_int_equal(dataset_open(&c, &d, msg, sizeof msg), 0);
    assert_int_equal(d.train.n, 12); // val_fraction ignored with a val folder
    assert_int_equal(d.val.n, 2);
    assert_int_equal(d.bad, 4);
    assert_int_equal(d.val.label[0], 0); // val/cat/v2.jpg -> cat
    assert_int_equal(d.val.label[1], 1); // val/dog/v1.jpg -> dog
    dataset_close(&d);
    /* A class the training folder lacks. */
    write_kind("val/cow/m.jpg", 30, 40, TJU_RGB, false, 52);
    assert_int_equal(dataset_open(&c, &d, msg, sizeof msg), ERR_DATA);
    assert_non_null(strstr(msg, "'cow'"));
    /* Eval with the checkpoint's class list: folder classes mapped by name. */
    char *names[] = {"bird", "cat", "cow", "dog"};
    dataset_scan s;
    dataset_store *st;
    dataset_split sp;
    assert_int_equal(dataset_open_eval(pth("%s", "val"), NULL, 0, names, 4, IN, NULL, NULL, 1, &s,
                                       &st, &sp, msg, sizeof msg),
                     0);
    assert_int_equal(sp.n, 3);
    assert_int_equal(sp.label[0], 1);
    assert_int_equal(sp.label[1], 2);
    assert_int_equal(sp.label[2], 3);
    dataset_eval_close(&s, &st, &sp);
    assert_int_equal(dataset_open_eval(pth("%s", "val"), NULL, 0, names, 2, IN, NULL, NULL, 1, &s,
                                       &st, &sp, msg, sizeof msg),
                     ERR_DATA);
    assert_non_null(strstr(msg, "'cow'"));
    dataset_eval_close(&s, &st, &sp);
}

static void test_small_classes_split(void **state)
{
    (void)state;
    write_kind("small/a/1.jpg", 20, 20, TJU_RGB, false, 60);
    write_kind("small/b/1.jpg", 20, 20, TJU_RGB, false, 61);
    write_kind("small/b/2.jpg", 20, 20, TJU_RGB, false, 62);
    dataset d;
    char msg[512];
    dataset_config c = cfg_for(pth("%s", "small"), NULL, NULL, 0.1);
    assert_int_equal(dataset_open(&c, &d, msg, sizeof msg), 0);
    assert_int_equal(d.val.n, 1); // b: at least one; a: its only image trains
    assert_int_equal(d.val.label[0], 1);
    assert_int_equal(d.train.n, 2);
    dataset_close(&d);
    tju_rmrf(pth("%s", "small/b"));
    write_kind("small/c/1.jpg", 20, 20, TJU_RGB, false, 63);
    assert_int_equal(dataset_open(&c, &d, msg, sizeof msg), ERR_DATA);
    assert_non_null(strstr(msg, "validation"));
    c.val_fraction = 0.0; // explicitly no validation
    assert_int_equal(dataset_open(&c, &d, msg, sizeof msg), 0);
    assert_int_equal(d.val.n, 0);
    assert_int_equal(d.train.n, 2);
    dataset_close(&d);
    /* One class: nothing to classify. */
    tju_rmrf(pth("%s", "small/c"));
    assert_int_equal(dataset_open(&c, &d, msg, sizeof msg), ERR_DATA);
    assert_non_null(strstr(msg, "has one class folder (a); classification needs two"));
    assert_int_equal(tju_mkdirs(pth("%s", "noclass")), 0);
    c.train_dir = pth("%s", "noclass");
    assert_int_equal(dataset_open(&c, &d, msg, sizeof msg), ERR_DATA);
    assert_non_null(strstr(msg, "no class folders"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_counts),
        cmocka_unit_test(test_open_empty_class_fails),
        cmocka_unit_test(test_open_counts_and_split),
        cmocka_unit_test(test_batches_deterministic),
        cmocka_unit_test(test_cache_reuse_and_rebuild),
        cmocka_unit_test(test_cache_built_once_by_two_processes),
        cmocka_unit_test(test_val_folder_and_eval),
        cmocka_unit_test(test_small_classes_split),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
