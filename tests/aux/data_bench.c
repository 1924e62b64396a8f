/* data_bench — the C side of tests/bench/bench_data.sh (helper "data").
 *
 *   data_bench decode LIST SHORT CROP REPS [DUMP]
 *       decodes every JPEG named in LIST (one path a line) REPS times on one
 *       thread: load, DCT-downscale when possible, resize the shorter side to
 *       SHORT with antialiasing, center crop CROP (RGB bytes) — the same work
 *       as tests/bench/pil_decode.py does with Pillow. DUMP receives the crops
 *       of the first 5 images (raw RGB) for an output comparison.
 *   data_bench epoch ROOT INPUT CACHE_DIR EPOCHS BATCH
 *       images/s of training epochs (one thread; with augmentation, then
 *       without) read from the decoded cache, against decoding every image
 *       every epoch.
 * Prints one JSON object per run on stdout. */
#include "dataset.h"
#include "image.h"
#include "log.h"
#include "rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int bench_decode(int argc, char **argv)
{
    if (argc < 6) return 2;
    FILE *f = fopen(argv[2], "r");
    if (!f) return 2;
    int sh = atoi(argv[3]), crop = atoi(argv[4]), reps = atoi(argv[5]);
    const char *dump = argc > 6 ? argv[6] : NULL;
    char line[4096];
    char **paths = NULL;
    size_t n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!*line) continue;
        paths = realloc(paths, (n + 1) * sizeof *paths);
        paths[n++] = strdup(line);
    }
    fclose(f);
    uint8_t *out = malloc((size_t)crop * crop * 3);
    FILE *df = dump ? fopen(dump, "wb") : NULL;
    char msg[512];
    double t0 = now();
    size_t done = 0;
    for (int r = 0; r < reps; r++)
        for (size_t i = 0; i < n; i++) {
            image_u8 im;
            if (image_load_jpeg(paths[i], sh, &im, msg, sizeof msg) != 0) {
                fprintf(stderr, "%s\n", msg);
                return 3;
            }
            image_resize_center_crop(&im, sh, crop, out);
            image_free(&im);
            if (df && r == 0 && i < 5) fwrite(out, 1, (size_t)crop * crop * 3, df);
            done++;
        }
    double dt = now() - t0;
    if (df) fclose(df);
    printf("{\"impl\":\"sweepd\",\"images\":%zu,\"seconds\":%.4f,\"images_per_s\":%.1f}\n", done,
           dt, done / dt);
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    free(out);
    return 0;
}

static int bench_epoch(int argc, char **argv)
{
    if (argc < 7) return 2;
    const char *root = argv[2];
    int input = atoi(argv[3]);
    const char *cache = argv[4];
    int epochs = atoi(argv[5]), bs = atoi(argv[6]);
    dataset d;
    char msg[1024];
    dataset_config cfg = {.train_dir = root,
                          .val_fraction = 0.1,
                          .input_size = input,
                          .cache_dir = cache,
                          .threads = 1};
    double t0 = now();
    if (dataset_open(&cfg, &d, msg, sizeof msg) != 0) {
        fprintf(stderr, "%s\n", msg);
        return 3;
    }
    double t_open = now() - t0;
    bool from_cache = dataset_store_from_cache(d.train_store);
    int ss = d.side;
    uint8_t *sq = malloc((size_t)ss * ss * 3);
    float *x = malloc(sizeof(float) * 3 * input * input);
    double sink = 0, rate[2][2]; // [augment][0 cache, 1 decode]
    size_t imgs = d.train.n * (size_t)epochs;
    for (int aug = 1; aug >= 0; aug--) {
        dataset_loader *ld;
        augment_opts opts;
        image_augment_defaults(&opts);
        if (dataset_loader_new(&d.train, input, bs, 1, true, aug ? &opts : NULL, false, &ld) != 0)
            return 6;
        double t0 = now();
        for (int e = 0; e < epochs; e++) {
            dataset_loader_start(ld, e);
            dataset_batch b;
            while (dataset_loader_next(ld, &b) == 1)
                sink += b.x[0];
        }
        rate[aug][0] = imgs / (now() - t0);
        dataset_loader_free(ld);
        /* The same epochs decoding every image from its file each time. */
        t0 = now();
        for (int e = 0; e < epochs; e++)
            for (size_t k = 0; k < d.train.n; k++) {
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", root, d.train_scan.files[d.train.file[k]].rel);
                image_u8 im;
                if (image_load_jpeg(path, ss, &im, msg, sizeof msg) != 0) continue;
                image_resize_center_crop(&im, ss, ss, sq);
                image_free(&im);
                rng_t r;
                rng_seed(&r, k + 1000 * (uint64_t)e);
                if (aug)
                    image_augment(sq, ss, input, NULL, NULL, &r, x);
                else
                    image_eval_view(sq, ss, input, NULL, x);
                sink += x[0];
            }
        rate[aug][1] = imgs / (now() - t0);
    }
    printf("{\"images_per_epoch\":%zu,\"epochs\":%d,\"input_size\":%d,\"open_seconds\":%.3f,"
           "\"cache_was_built\":%s,\"cached_aug_images_per_s\":%.1f,"
           "\"decode_aug_images_per_s\":%.1f,\"aug_ratio\":%.2f,"
           "\"cached_noaug_images_per_s\":%.1f,\"decode_noaug_images_per_s\":%.1f,"
           "\"noaug_ratio\":%.2f,\"checksum\":%.3g}\n",
           d.train.n, epochs, input, t_open, from_cache ? "false" : "true", rate[1][0], rate[1][1],
           rate[1][0] / rate[1][1], rate[0][0], rate[0][1], rate[0][0] / rate[0][1], sink);
    free(sq);
    free(x);
    dataset_close(&d);
    return 0;
}

int main(int argc, char **argv)
{
    log_set_level(LOGL_WARN);
    if (argc > 1 && strcmp(argv[1], "decode") == 0) return bench_decode(argc, argv);
    if (argc > 1 && strcmp(argv[1], "epoch") == 0) return bench_epoch(argc, argv);
    fprintf(stderr, "usage: data_bench decode LIST SHORT CROP REPS [DUMP] | "
                    "epoch ROOT INPUT CACHE_DIR EPOCHS BATCH\n");
    return 2;
}
