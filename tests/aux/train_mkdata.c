/* train_mkdata — writes a small labelled ImageFolder of JPEGs for the
 * training tests and benchmarks: class c gets a distinct base colour and a
 * stripe whose orientation depends on c, plus per-image noise, so a small
 * network can learn it in a few epochs but not trivially in one step.
 *
 *   train_mkdata OUTDIR CLASSES PER_CLASS SIZE [SEED] [--prefix NAME]
 *
 * writes OUTDIR/<NAME><c>/<i>.jpg (NAME defaults to "class"); exits 1 on error. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>

static uint64_t next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr,
                "usage: train_mkdata OUTDIR CLASSES PER_CLASS SIZE [SEED] [--prefix NAME]\n");
        return 1;
    }
    const char *out = argv[1];
    int classes = atoi(argv[2]), per = atoi(argv[3]), size = atoi(argv[4]);
    uint64_t seed = argc > 5 && argv[5][0] != '-' ? strtoull(argv[5], NULL, 10) : 1;
    const char *prefix = "class";
    for (int i = 5; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--prefix")) prefix = argv[i + 1];
    if (classes < 1 || per < 1 || size < 1) {
        fprintf(stderr, "train_mkdata: bad counts\n");
        return 1;
    }
    if (mkdir(out, 0755) && errno != EEXIST) {
        perror(out);
        return 1;
    }
    tjhandle tj = tjInitCompress();
    unsigned char *px = malloc((size_t)size * size * 3);
    if (!tj || !px) return 1;
    uint64_t s = seed;
    for (int c = 0; c < classes; c++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s%d", out, prefix, c);
        if (mkdir(dir, 0755) && errno != EEXIST) {
            perror(dir);
            return 1;
        }
        int base[3] = {(c * 97 + 40) % 256, (c * 57 + 120) % 256, (c * 151 + 200) % 256};
        for (int i = 0; i < per; i++) {
            int shift = (int)(next(&s) % 9) - 4;
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++) {
                    int stripe = (c % 2 ? (x + shift) : (y + shift)) * 4 / size;
                    stripe = ((stripe + c / 2) % 2) * 50;
                    for (int k = 0; k < 3; k++) {
                        int v = base[k] + stripe - 25 + (int)(next(&s) % 61) - 30;
                        px[((size_t)y * size + x) * 3 + k] = (unsigned char)(v < 0     ? 0
                                                                             : v > 255 ? 255
                                                                                       : v);
                    }
                }
            unsigned char *jpg = NULL;
            unsigned long len = 0;
            if (tjCompress2(tj, px, size, 0, size, TJPF_RGB, &jpg, &len, TJSAMP_444, 92, 0)) {
                fprintf(stderr, "train_mkdata: %s\n", tjGetErrorStr2(tj));
                return 1;
            }
            char path[4200];
            snprintf(path, sizeof path, "%s/%04d.jpg", dir, i);
            FILE *f = fopen(path, "wb");
            if (!f || fwrite(jpg, 1, len, f) != len || fclose(f)) {
                perror(path);
                return 1;
            }
            tjFree(jpg);
        }
    }
    free(px);
    tjDestroy(tj);
    return 0;
}
