/* util_jpeg.c — JPEG test-set helpers for the unit tests (see
 * tests/unit/util_jpeg.h). Kept small: it is linked into every unit test. */
#include "util_jpeg.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

void tju_pattern(uint8_t *rgb, int w, int h, unsigned seed)
{
    unsigned a = seed * 37u + 11u, b = seed * 101u + 3u;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)((x * 255) / (w > 1 ? w - 1 : 1) + a);
            p[1] = (uint8_t)((y * 255) / (h > 1 ? h - 1 : 1) + b);
            p[2] = (uint8_t)(((x + y) * 128) / (w + h) + (seed * 53u));
        }
}

uint8_t *tju_encode(const uint8_t *px, int w, int h, tju_kind kind, int q, bool progressive,
                    size_t *len)
{
    tjhandle tj = tjInitCompress();
    if (!tj) return NULL;
    unsigned char *out = NULL;
    unsigned long n = 0;
    int pf = kind == TJU_GRAY ? TJPF_GRAY : kind == TJU_CMYK ? TJPF_CMYK : TJPF_RGB;
    int ss = kind == TJU_GRAY ? TJSAMP_GRAY : TJSAMP_444;
    int flags = progressive ? TJFLAG_PROGRESSIVE : 0;
    uint8_t *copy = NULL;
    if (tjCompress2(tj, px, w, 0, h, pf, &out, &n, ss, q, flags) == 0) {
        copy = malloc(n);
        if (copy) {
            memcpy(copy, out, n);
            *len = n;
        }
    }
    tjFree(out);
    tjDestroy(tj);
    return copy;
}

int tju_mkdirs(const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

int tju_write_bytes(const char *path, const void *buf, size_t len)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        if (tju_mkdirs(dir) != 0) return -1;
    }
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = len ? fwrite(buf, 1, len, f) : 0;
    return fclose(f) == 0 && w == len ? 0 : -1;
}

int tju_write_jpeg(const char *path, const uint8_t *px, int w, int h, tju_kind kind, int q,
                   bool progressive)
{
    size_t n = 0;
    uint8_t *j = tju_encode(px, w, h, kind, q, progressive, &n);
    if (!j) return -1;
    int rc = tju_write_bytes(path, j, n);
    free(j);
    return rc;
}

int tju_write_pattern(const char *path, int w, int h, unsigned seed)
{
    uint8_t *rgb = malloc((size_t)w * h * 3);
    if (!rgb) return -1;
    tju_pattern(rgb, w, h, seed);
    int rc = tju_write_jpeg(path, rgb, w, h, TJU_RGB, 90, false);
    free(rgb);
    return rc;
}

char *tju_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char *p = NULL;
    if (asprintf(&p, "%s/sweep-%s-XXXXXX", base && *base ? base : "/tmp", tag) < 0) return NULL;
    if (!mkdtemp(p)) {
        free(p);
        return NULL;
    }
    /* TMPDIR may name a symbolic link or end in '/': the tests compare the
     * paths they build with paths the code under test resolved. */
    char *real = realpath(p, NULL);
    if (!real) {
        rmdir(p);
        free(p);
        return NULL;
    }
    free(p);
    return real;
}

int tju_mkdtemp(char *buf, size_t len, const char *tag)
{
    char *p = tju_tmpdir(tag);
    if (!p) return -1;
    if ((size_t)snprintf(buf, len, "%s", p) >= len) {
        rmdir(p);
        free(p);
        return -1;
    }
    free(p);
    return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 ? 0 : 0;
}

void tju_rmrf(const char *path)
{
    if (path) nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
