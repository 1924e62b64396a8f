/* import_idx — the data side of `sweep-worker import-idx` (idx_import.h):
 * reads the idx images and labels and writes one grayscale JPEG per kept
 * image into OUTDIR/<class name>/. Grayscale JPEGs at quality 95 keep the
 * mean absolute pixel error well under 2 grey levels. */
#include "idx_import.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <zlib.h>

#include "errors.h"
#include "fileio.h"

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

/* Fills R->names: CFG's names, then numbers; checks the labels have names. */
static int name_labels(const idx_import_config *cfg, const uint8_t *labels, uint32_t n,
                       idx_import_result *r, char *msg, size_t msglen)
{
    for (uint32_t i = 0; cfg->names_strict && i < n; i++)
        if (labels[i] >= cfg->nnames)
            return err_set(msg, msglen, ERR_INVALID,
                           "%s: label %u of image %u has no name in --names (%d given)",
                           cfg->labels_path, labels[i], i, cfg->nnames);
    for (int i = 0; i < IDX_MAX_LABELS; i++) {
        if (i < cfg->nnames) {
            r->names[i] = cfg->names[i];
        } else {
            snprintf(r->numbered[i], sizeof r->numbered[i], "%d", i);
            r->names[i] = r->numbered[i];
        }
    }
    return 0;
}

/* Encodes image I (W x H bytes at PX) into PATH through TJ; *JPEG is the
 * encoder's buffer, freed here after each image. */
static int write_jpeg(tjhandle tj, const uint8_t *px, uint32_t w, uint32_t h, int quality,
                      uint32_t i, const char *path, unsigned char **jpeg, char *msg, size_t msglen)
{
    unsigned long jlen = 0;
    if (tjCompress2(tj, px, (int)w, 0, (int)h, TJPF_GRAY, jpeg, &jlen, TJSAMP_GRAY, quality, 0) !=
        0)
        return err_set(msg, msglen, ERR_DATA, "encoding image %u failed: %s", i,
                       tjGetErrorStr2(tj));
    int rc = write_file(path, *jpeg, jlen, msg, msglen);
    /* tjCompress2 allocates a fresh buffer whenever the size passed in is
     * 0, so free each image's buffer rather than leak it. */
    tjFree(*jpeg);
    *jpeg = NULL;
    return rc;
}

int idx_import(const idx_import_config *cfg, idx_import_result *r, char *msg, size_t msglen)
{
    memset(r, 0, sizeof *r);
    uint8_t *images = NULL, *labels = NULL;
    unsigned char *jpeg = NULL;
    tjhandle tj = NULL;
    uint32_t idims[3], ldims[1];
    int rc = idx_load(cfg->images_path, 3, idims, &images, msg, msglen);
    if (!rc) rc = idx_load(cfg->labels_path, 1, ldims, &labels, msg, msglen);
    if (rc) goto out;
    if (idims[0] != ldims[0]) {
        rc = err_set(msg, msglen, ERR_DATA, "%s has %u images but %s has %u labels",
                     cfg->images_path, idims[0], cfg->labels_path, ldims[0]);
        goto out;
    }
    uint32_t n = idims[0], h = idims[1], w = idims[2];
    r->width = w;
    r->height = h;
    if ((rc = name_labels(cfg, labels, n, r, msg, msglen))) goto out;
    if (fileio_mkdirs(cfg->outdir) != 0) { // with its missing parents
        rc = err_set(msg, msglen, ERR_IO, "cannot create %s: %s", cfg->outdir, strerror(errno));
        goto out;
    }
    bool made[IDX_MAX_LABELS] = {0};
    if (!(tj = tjInitCompress())) {
        rc = err_set(msg, msglen, ERR_NOMEM, "cannot create a JPEG encoder");
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        int l = labels[i];
        if (!cfg->keep[l] || (cfg->limit > 0 && r->count[l] >= (size_t)cfg->limit)) continue;
        char dir[PATH_MAX], path[PATH_MAX + 32];
        if (snprintf(dir, sizeof dir, "%s/%s", cfg->outdir, r->names[l]) >= (int)sizeof dir) {
            rc = err_set(msg, msglen, ERR_INVALID, "output path %s/%s is too long", cfg->outdir,
                         r->names[l]);
            goto out;
        }
        if (!made[l]) {
            if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
                rc = err_set(msg, msglen, ERR_IO, "cannot create %s: %s", dir, strerror(errno));
                goto out;
            }
            made[l] = true;
        }
        if (snprintf(path, sizeof path, "%s/%05u.jpg", dir, i) >= (int)sizeof path) {
            rc = err_set(msg, msglen, ERR_INVALID, "output path in %s is too long", dir);
            goto out;
        }
        rc = write_jpeg(tj, images + (size_t)i * w * h, w, h, cfg->quality, i, path, &jpeg, msg,
                        msglen);
        if (rc) goto out;
        r->count[l]++;
        r->written++;
    }
out:
    if (tj) tjDestroy(tj);
    tjFree(jpeg);
    free(images);
    free(labels);
    return rc;
}
