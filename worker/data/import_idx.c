/* import_idx.c — `sweep-worker import-idx`: turns an MNIST-format (idx) data
 * set, such as Debian's dataset-fashion-mnist, into an ImageFolder of JPEGs.
 *
 *   sweep-worker import-idx IMAGES.idx[.gz] LABELS.idx[.gz] OUTDIR
 *       [--names a,b,...] [--quality Q] [--limit N] [--classes 5,6,7]
 *
 * writes OUTDIR/<class name>/<index>.jpg, where <index> is the image's
 * position in the idx file, zero-padded to 5 digits so names sort in file
 * order. Images are stored as grayscale JPEGs (quality 95 by default, which
 * keeps the mean absolute pixel error well under 2 grey levels). Class names
 * default to Fashion-MNIST's, made safe for file names:
 *   0 T-shirt_top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt,
 *   7 Sneaker, 8 Bag, 9 Ankle_boot
 * (a label beyond the list is named by its number). --limit N keeps at most N
 * images per class (the first ones in file order), --classes keeps only the
 * listed labels (their folders keep their names). The idx files may be gzip
 * compressed or plain (zlib's gzread reads both). Each JPEG is written to a
 * temporary name and renamed, so an interrupted import leaves no half files.
 * Prints one JSON object with the counts on stdout.
 *
 * Exit status: 0 done, 2 bad arguments, 3 unreadable or malformed idx files
 * or an unwritable OUTDIR. */
#include "errors.h"
#include "log.h"
#include "worker_cmds.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <zlib.h>

#define MAX_LABELS 256

static const char *const fashion_names[10] = {"T-shirt_top", "Trouser",   "Pullover", "Dress",
                                              "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                              "Bag",         "Ankle_boot"};

static void usage(FILE *f)
{
    fprintf(f, "usage: sweep-worker import-idx IMAGES.idx[.gz] LABELS.idx[.gz] OUTDIR\n"
               "           [--names a,b,...] [--quality Q] [--limit N] [--classes L,L,...]\n"
               "Writes OUTDIR/<class name>/<index>.jpg (grayscale JPEG) for every image.\n"
               "  --names     class names for labels 0,1,... (default: Fashion-MNIST's\n"
               "              T-shirt_top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,\n"
               "              Bag,Ankle_boot)\n"
               "  --quality   JPEG quality 1..100 (default 95)\n"
               "  --limit     at most N images per class (default: all)\n"
               "  --classes   only these labels (default: all)\n");
}

/* Reads exactly N bytes; 0 or -1. */
static int gz_read_all(gzFile g, void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int r = gzread(g, p, chunk);
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Loads an idx file of unsigned bytes with NDIMS dimensions into DIMS and a
 * new buffer DATA (caller frees). */
static int idx_load(const char *path, int ndims, uint32_t *dims, uint8_t **data, char *msg,
                    size_t msglen)
{
    *data = NULL;
    gzFile g = gzopen(path, "rb");
    if (!g)
        return err_set_errno(msg, msglen, ERR_IO, errno ? errno : ENOENT, "cannot open %s", path);
    uint8_t hdr[4 + 4 * 3];
    int rc = 0;
    if (gz_read_all(g, hdr, 4) != 0) {
        rc = err_set(msg, msglen, ERR_PARSE, "%s: too short for an idx header", path);
        goto out;
    }
    if (hdr[0] != 0 || hdr[1] != 0) {
        rc = err_set(msg, msglen, ERR_PARSE,
                     "%s: not an idx file (magic %02x %02x %02x %02x; expected 00 00 08 %02x)",
                     path, hdr[0], hdr[1], hdr[2], hdr[3], ndims);
        goto out;
    }
    if (hdr[2] != 0x08) {
        rc = err_set(msg, msglen, ERR_PARSE,
                     "%s: idx element type 0x%02x is not unsigned bytes (0x08)", path, hdr[2]);
        goto out;
    }
    if (hdr[3] != ndims) {
        rc = err_set(msg, msglen, ERR_PARSE, "%s: has %d dimensions, expected %d (%s)", path,
                     hdr[3], ndims, ndims == 3 ? "images" : "labels");
        goto out;
    }
    if (gz_read_all(g, hdr + 4, 4 * (size_t)ndims) != 0) {
        rc = err_set(msg, msglen, ERR_PARSE, "%s: truncated idx header", path);
        goto out;
    }
    uint64_t total = 1;
    for (int i = 0; i < ndims; i++) {
        dims[i] = be32(hdr + 4 + 4 * i);
        total *= dims[i];
        if (total > ((uint64_t)1 << 34)) {
            rc = err_set(msg, msglen, ERR_PARSE, "%s: dimensions too large", path);
            goto out;
        }
    }
    if (ndims == 3 && (dims[1] == 0 || dims[2] == 0 || dims[1] > 65500 || dims[2] > 65500)) {
        rc = err_set(msg, msglen, ERR_PARSE, "%s: image size %ux%u is not valid", path, dims[2],
                     dims[1]);
        goto out;
    }
    *data = malloc(total ? (size_t)total : 1);
    if (!*data) {
        rc = err_set(msg, msglen, ERR_NOMEM, "%s: out of memory for %llu bytes", path,
                     (unsigned long long)total);
        goto out;
    }
    if (gz_read_all(g, *data, (size_t)total) != 0) {
        rc = err_set(msg, msglen, ERR_PARSE, "%s: truncated: header promises %llu bytes of data",
                     path, (unsigned long long)total);
        free(*data);
        *data = NULL;
        goto out;
    }
out:
    gzclose(g);
    return rc;
}

/* Parses a comma-separated list of labels into KEEP. */
static int parse_classes(const char *s, bool *keep)
{
    const char *p = s;
    int any = 0;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v >= MAX_LABELS) return -1;
        keep[v] = true;
        any = 1;
        p = end;
        if (*p == ',')
            p++;
        else if (*p)
            return -1;
    }
    return any ? 0 : -1;
}

static bool safe_name(const char *s)
{
    if (!*s || s[0] == '.') return false;
    for (; *s; s++)
        if (*s == '/' || *s == '"' || *s == '\\' || (unsigned char)*s < 0x20) return false;
    return true;
}

static int write_file(const char *path, const uint8_t *buf, size_t len, char *msg, size_t msglen)
{
    char tmp[PATH_MAX + 64];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return err_set(msg, msglen, ERR_INVALID, "path %s is too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return err_set_errno(msg, msglen, ERR_IO, errno, "cannot create %s", tmp);
    size_t w = fwrite(buf, 1, len, f);
    int e = errno;
    if (fclose(f) != 0 || w != len) {
        unlink(tmp);
        return err_set_errno(msg, msglen, ERR_IO, e ? e : EIO, "cannot write %s", tmp);
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        return err_set_errno(msg, msglen, ERR_IO, e, "cannot rename %s", tmp);
    }
    return 0;
}

int cmd_import_idx(int argc, char **argv)
{
    const char *pos[3];
    int npos = 0;
    const char *names_arg = NULL, *classes_arg = NULL;
    long quality = 95, limit = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return WEXIT_OK;
        }
        if (strcmp(a, "--names") == 0 || strcmp(a, "--quality") == 0 || strcmp(a, "--limit") == 0 ||
            strcmp(a, "--classes") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "import-idx: %s needs a value\n", a);
                usage(stderr);
                return WEXIT_SPEC;
            }
            const char *v = argv[++i];
            char *end;
            if (strcmp(a, "--names") == 0) {
                names_arg = v;
            } else if (strcmp(a, "--classes") == 0) {
                classes_arg = v;
            } else if (strcmp(a, "--quality") == 0) {
                quality = strtol(v, &end, 10);
                if (*end || end == v || quality < 1 || quality > 100) {
                    fprintf(stderr, "import-idx: --quality %s is not an integer in 1..100\n", v);
                    return WEXIT_SPEC;
                }
            } else {
                limit = strtol(v, &end, 10);
                if (*end || end == v || limit < 1) {
                    fprintf(stderr, "import-idx: --limit %s is not a positive integer\n", v);
                    return WEXIT_SPEC;
                }
            }
            continue;
        }
        if (a[0] == '-' && a[1]) {
            fprintf(stderr, "import-idx: unknown option %s\n", a);
            usage(stderr);
            return WEXIT_SPEC;
        }
        if (npos == 3) {
            fprintf(stderr, "import-idx: unexpected argument %s\n", a);
            usage(stderr);
            return WEXIT_SPEC;
        }
        pos[npos++] = a;
    }
    if (npos != 3) {
        usage(stderr);
        return WEXIT_SPEC;
    }
    const char *img_path = pos[0], *lab_path = pos[1], *outdir = pos[2];

    /* Class names. */
    char *names[MAX_LABELS] = {0};
    char *names_buf = NULL;
    int nnames = 0;
    bool keep[MAX_LABELS] = {0};
    int status = WEXIT_OK;
    uint8_t *images = NULL, *labels = NULL;
    unsigned char *jpeg = NULL;
    tjhandle tj = NULL;
    char msg[PATH_MAX + 256];
    if (names_arg) {
        names_buf = strdup(names_arg);
        if (!names_buf) return WEXIT_NOMEM;
        char *save = NULL;
        for (char *t = strtok_r(names_buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (nnames == MAX_LABELS || !safe_name(t)) {
                fprintf(stderr,
                        "import-idx: --names: '%s' is not usable as a folder name (empty, "
                        "starting with '.', or containing '/')\n",
                        t);
                free(names_buf);
                return WEXIT_SPEC;
            }
            names[nnames++] = t;
        }
    } else {
        for (int i = 0; i < 10; i++)
            names[i] = (char *)fashion_names[i];
        nnames = 10;
    }
    if (classes_arg) {
        if (parse_classes(classes_arg, keep) != 0) {
            fprintf(stderr,
                    "import-idx: --classes %s is not a comma-separated list of labels "
                    "0..%d\n",
                    classes_arg, MAX_LABELS - 1);
            free(names_buf);
            return WEXIT_SPEC;
        }
    } else {
        for (int i = 0; i < MAX_LABELS; i++)
            keep[i] = true;
    }

    uint32_t idims[3], ldims[1];
    if (idx_load(img_path, 3, idims, &images, msg, sizeof msg) != 0 ||
        idx_load(lab_path, 1, ldims, &labels, msg, sizeof msg) != 0) {
        fprintf(stderr, "import-idx: %s\n", msg);
        status = WEXIT_DATA;
        goto out;
    }
    if (idims[0] != ldims[0]) {
        fprintf(stderr, "import-idx: %s has %u images but %s has %u labels\n", img_path, idims[0],
                lab_path, ldims[0]);
        status = WEXIT_DATA;
        goto out;
    }
    uint32_t n = idims[0], h = idims[1], w = idims[2];
    char label_names[MAX_LABELS][16];
    for (uint32_t i = 0; i < n; i++) {
        if (!names_arg) continue;
        if (labels[i] >= nnames) {
            fprintf(stderr,
                    "import-idx: %s: label %u of image %u has no name in --names (%d given)\n",
                    lab_path, labels[i], i, nnames);
            status = WEXIT_SPEC;
            goto out;
        }
    }
    for (int i = nnames; i < MAX_LABELS; i++) {
        snprintf(label_names[i], sizeof label_names[i], "%d", i);
        names[i] = label_names[i];
    }
    if (mkdir(outdir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "import-idx: cannot create %s: %s\n", outdir, strerror(errno));
        status = WEXIT_DATA;
        goto out;
    }
    bool made[MAX_LABELS] = {0};
    size_t count[MAX_LABELS] = {0};
    size_t written = 0;
    tj = tjInitCompress();
    if (!tj) {
        fprintf(stderr, "import-idx: cannot create a JPEG encoder\n");
        status = WEXIT_NOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        int l = labels[i];
        if (!keep[l] || (limit > 0 && count[l] >= (size_t)limit)) continue;
        char dir[PATH_MAX], path[PATH_MAX + 32];
        if (snprintf(dir, sizeof dir, "%s/%s", outdir, names[l]) >= (int)sizeof dir) {
            fprintf(stderr, "import-idx: output path %s/%s is too long\n", outdir, names[l]);
            status = WEXIT_SPEC;
            goto out;
        }
        if (!made[l]) {
            if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
                fprintf(stderr, "import-idx: cannot create %s: %s\n", dir, strerror(errno));
                status = WEXIT_DATA;
                goto out;
            }
            made[l] = true;
        }
        if (snprintf(path, sizeof path, "%s/%05u.jpg", dir, i) >= (int)sizeof path) {
            fprintf(stderr, "import-idx: output path in %s is too long\n", dir);
            status = WEXIT_SPEC;
            goto out;
        }
        unsigned long jlen = 0;
        if (tjCompress2(tj, images + (size_t)i * w * h, (int)w, 0, (int)h, TJPF_GRAY, &jpeg, &jlen,
                        TJSAMP_GRAY, (int)quality, 0) != 0) {
            fprintf(stderr, "import-idx: encoding image %u failed: %s\n", i, tjGetErrorStr2(tj));
            status = WEXIT_DATA;
            goto out;
        }
        if (write_file(path, jpeg, jlen, msg, sizeof msg) != 0) {
            fprintf(stderr, "import-idx: %s\n", msg);
            status = WEXIT_DATA;
            goto out;
        }
        /* tjCompress2 allocates a fresh buffer whenever the size passed in is
         * 0, so free each image's buffer rather than leak it. */
        tjFree(jpeg);
        jpeg = NULL;
        count[l]++;
        written++;
    }
    printf("{\"images\":%zu,\"out_dir\":\"", written);
    for (const char *p = outdir; *p; p++) {
        if (*p == '"' || *p == '\\') putchar('\\');
        if ((unsigned char)*p < 0x20)
            printf("\\u%04x", (unsigned char)*p);
        else
            putchar(*p);
    }
    printf("\",\"classes\":{");
    bool first = true;
    for (int l = 0; l < MAX_LABELS; l++) {
        if (!count[l]) continue;
        printf("%s\"%s\":%zu", first ? "" : ",", names[l], count[l]);
        first = false;
    }
    printf("}}\n");
    fflush(stdout);
    log_info("import-idx: wrote %zu JPEGs of %ux%u from %s into %s", written, w, h, img_path,
             outdir);
out:
    if (tj) tjDestroy(tj);
    tjFree(jpeg);
    free(images);
    free(labels);
    free(names_buf);
    return status;
}
