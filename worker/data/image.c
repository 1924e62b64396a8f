/* image.c — JPEG decoding (TurboJPEG API of libjpeg-turbo 2.1), the
 * torchvision evaluation geometry, normalisation, the stored square and the
 * one-call preprocessing used by `predict`, which is the data sets'
 * evaluation path (image_eval_square, then image_eval_view). See
 * include/image.h for the contract.
 *
 * Design notes:
 *  - Debian 12 ships libjpeg-turbo 2.1.5, whose TurboJPEG API is the tj*
 *    (version 2) one: tjDecompressHeader3 + tjDecompress2. Only the TurboJPEG
 *    library is linked (pkg-config libturbojpeg), so CMYK/YCCK files are
 *    decoded to TJPF_CMYK and converted here.
 *  - One decompressor handle per thread, kept in a pthread key whose
 *    destructor frees it when the thread ends; creating a handle per image
 *    costs an allocation of libjpeg's large state for nothing.
 *  - libjpeg reports a truncated file as a warning ("Premature end of JPEG
 *    file") and fills the missing rows with gray; we count such files as bad.
 *    Other warnings (extraneous bytes before a marker and the like, common in
 *    real photo collections and accepted by Pillow) are tolerated.
 *  - Memory: a progressive (or multi-scan) JPEG keeps every DCT coefficient
 *    of the full-size image while it decodes, 2 bytes per sample whatever
 *    the DCT scaling (a 16384x16384 4:4:4 one: 1.5 GiB). libjpeg-turbo 2.1's
 *    TurboJPEG API has no memory limit (TJPARAM_MAXMEMORY came in 3.0), so
 *    coef_bytes() reads the frame and first scan headers and such images
 *    over IMAGE_MAX_COEF_BYTES are refused before decoding; TJFLAG_LIMITSCANS
 *    refuses the pathological ones with more than 500 scans.
 *  - DCT-domain downscaling uses only 1/2, 1/4 and 1/8, which libjpeg-turbo
 *    implements with fast (SIMD or DC-only) reduced IDCTs; the odd factors
 *    (3/8, 5/8, ...) use slow C code and would lose more than they gain. */
#include "image.h"

#include "errors.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

const float image_mean[3] = WEIGHTS_IMAGENET_MEAN;
const float image_std[3] = WEIGHTS_IMAGENET_STD;
const image_norm image_norm_imagenet = {WEIGHTS_IMAGENET_MEAN, WEIGHTS_IMAGENET_STD};

#define IMAGE_MAX_PIXELS ((int64_t)1 << 28)
#define IMAGE_MAX_COEF_BYTES ((int64_t)256 << 20) // coefficient buffer of one progressive image

void image_free(image_u8 *im)
{
    if (!im) return;
    free(im->px);
    memset(im, 0, sizeof *im);
}

int image_eval_size(int input_size)
{
    return (int)nearbyint((double)input_size / 0.875);
}

/* ---- per-thread decompressor ------------------------------------------- */

static pthread_key_t dec_key;
static pthread_once_t dec_once = PTHREAD_ONCE_INIT;

static void dec_destroy(void *h)
{
    if (h) tjDestroy((tjhandle)h);
}

static void dec_key_init(void)
{
    (void)pthread_key_create(&dec_key, dec_destroy);
}

static tjhandle dec_handle(void)
{
    pthread_once(&dec_once, dec_key_init);
    tjhandle h = pthread_getspecific(dec_key);
    if (!h) {
        h = tjInitDecompress();
        if (h && pthread_setspecific(dec_key, h) != 0) {
            tjDestroy(h);
            h = NULL;
        }
    }
    return h;
}

/* ---- decoding ---------------------------------------------------------- */

/* Reads the header of the JPEG in BUF (LEN bytes) with this thread's decoder
 * (*TH): full-size *W x *H and colourspace *CS (TJCS_*), set only on
 * success. 0, ERR_DATA (empty, not a JPEG, no frame header) or ERR_NOMEM
 * (no decoder), the reason in msg. image_jpeg_size and image_decode_jpeg
 * both start here, so they accept and refuse the same streams. */
static int read_header(const uint8_t *buf, size_t len, tjhandle *th, int *w, int *h, int *cs,
                       char *msg, size_t msglen)
{
    if (len == 0) return err_set(msg, msglen, ERR_DATA, "empty file");
    *th = dec_handle();
    if (!*th) return err_set(msg, msglen, ERR_NOMEM, "cannot create a JPEG decoder");
    int subsamp = 0, c = 0, ww = 0, hh = 0;
    if (tjDecompressHeader3(*th, buf, (unsigned long)len, &ww, &hh, &subsamp, &c) != 0)
        return err_set(msg, msglen, ERR_DATA, "not a JPEG: %s", tjGetErrorStr2(*th));
    /* A tables-only stream (cut before its frame header) "succeeds" with no
     * size at all. */
    if (ww < 1 || hh < 1)
        return err_set(msg, msglen, ERR_DATA, "not a JPEG: no frame header (truncated?)");
    *w = ww;
    *h = hh;
    *cs = c;
    return 0;
}

/* The bytes of coefficient buffer libjpeg needs for the JPEG in BUF: 0 for a
 * single-scan sequential image (decoded row by row), else 2 bytes per sample
 * of every component at full size (progressive, or a first scan with fewer
 * components than the frame). Reads markers up to the first SOS; a stream it
 * cannot follow gives 0 and is left to the decoder to judge. */
static int64_t coef_bytes(const uint8_t *buf, size_t len)
{
    size_t i = 2;
    bool progressive = false;
    int nf = 0, w = 0, h = 0, hmax = 1, vmax = 1, hs[4] = {0}, vs[4] = {0};
    if (len < 4 || buf[0] != 0xFF || buf[1] != 0xD8) return 0;
    while (i + 4 <= len) {
        if (buf[i] != 0xFF) return 0;
        while (i + 1 < len && buf[i + 1] == 0xFF)
            i++; // fill bytes
        if (i + 4 > len) return 0;
        uint8_t m = buf[i + 1];
        size_t seg = (size_t)buf[i + 2] << 8 | buf[i + 3];
        const uint8_t *p = buf + i + 4;
        if (seg < 2 || i + 2 + seg > len) return 0;
        bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
        if (sof && seg >= 8) {
            progressive = (m & 3) == 2; // SOF2, SOF6, SOF10, SOF14
            h = p[1] << 8 | p[2];
            w = p[3] << 8 | p[4];
            nf = p[5];
            if (nf < 1 || nf > 4 || seg < 8 + 3 * (size_t)nf) return 0;
            for (int c = 0; c < nf; c++) {
                hs[c] = p[7 + 3 * c] >> 4;
                vs[c] = p[7 + 3 * c] & 15;
                if (hs[c] < 1 || vs[c] < 1) return 0;
                if (hs[c] > hmax) hmax = hs[c];
                if (vs[c] > vmax) vmax = vs[c];
            }
        } else if (m == 0xDA) { // start of scan: the headers end here
            if (nf == 0 || (!progressive && p[0] >= nf)) return 0;
            int64_t total = 0;
            for (int c = 0; c < nf; c++) {
                int64_t bw = ((int64_t)w * hs[c] + 8 * hmax - 1) / (8 * hmax);
                int64_t bh = ((int64_t)h * vs[c] + 8 * vmax - 1) / (8 * vmax);
                bw = (bw + hs[c] - 1) / hs[c] * hs[c]; // whole MCUs
                bh = (bh + vs[c] - 1) / vs[c] * vs[c];
                total += bw * bh * 64 * 2;
            }
            return total;
        }
        i += 2 + seg;
    }
    return 0;
}

static char turbojpeg_path[PATH_MAX]; // image_jpeg_library's answer, "" when none
static pthread_once_t turbojpeg_once = PTHREAD_ONCE_INIT;

/* dl_iterate_phdr callback: copies the name of a loaded libturbojpeg into
 * turbojpeg_path and stops. */
static int find_turbojpeg(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    const char *name = info->dlpi_name, *base = name ? strrchr(name, '/') : NULL;
    base = base ? base + 1 : name;
    if (!base || strncmp(base, "libturbojpeg.so", 15)) return 0;
    snprintf(turbojpeg_path, sizeof turbojpeg_path, "%s", name);
    return 1;
}

static void turbojpeg_look(void)
{
    dl_iterate_phdr(find_turbojpeg, NULL);
}

const char *image_jpeg_library(void)
{
    pthread_once(&turbojpeg_once, turbojpeg_look);
    return turbojpeg_path[0] ? turbojpeg_path : NULL;
}

int image_jpeg_size(const uint8_t *buf, size_t len, int *w, int *h, char *msg, size_t msglen)
{
    tjhandle th;
    int cs;
    return read_header(buf, len, &th, w, h, &cs, msg, msglen);
}

/* The DCT scaling denominator (1, 2, 4 or 8) for a W x H source so that the
 * shorter side stays >= MIN_SHORT. */
static int pick_denom(int w, int h, int min_short)
{
    int s = w < h ? w : h;
    int d = 1;
    if (min_short <= 0) return 1;
    while (d < 8 && (s + 2 * d - 1) / (2 * d) >= min_short)
        d *= 2;
    return d;
}

int image_decode_jpeg(const uint8_t *buf, size_t len, int min_short, image_u8 *out, char *msg,
                      size_t msglen)
{
    memset(out, 0, sizeof *out);
    tjhandle th;
    int w, h, cs;
    int rc = read_header(buf, len, &th, &w, &h, &cs, msg, msglen);
    if (rc) return rc;
    if ((int64_t)w * h > IMAGE_MAX_PIXELS)
        return err_set(msg, msglen, ERR_TOOBIG, "JPEG of %dx%d pixels is over the limit of %lld", w,
                       h, (long long)IMAGE_MAX_PIXELS);
    int64_t coef = coef_bytes(buf, len);
    if (coef > IMAGE_MAX_COEF_BYTES)
        return err_set(msg, msglen, ERR_TOOBIG,
                       "progressive JPEG of %dx%d pixels would need %lld MiB of decoder memory, "
                       "over the limit of %lld MiB",
                       w, h, (long long)(coef >> 20), (long long)(IMAGE_MAX_COEF_BYTES >> 20));
    int d = pick_denom(w, h, min_short);
    tjscalingfactor sf = {1, d};
    int sw = TJSCALED(w, sf), sh = TJSCALED(h, sf);
    bool cmyk = (cs == TJCS_CMYK || cs == TJCS_YCCK);
    int pf = cmyk ? TJPF_CMYK : TJPF_RGB;
    int ps = cmyk ? 4 : 3;
    uint8_t *dst = malloc((size_t)sw * sh * ps);
    if (!dst) return err_set(msg, msglen, ERR_NOMEM, "out of memory for a %dx%d image", sw, sh);
    if (tjDecompress2(th, buf, (unsigned long)len, dst, sw, sw * ps, sh, pf, TJFLAG_LIMITSCANS) !=
        0) {
        const char *es = tjGetErrorStr2(th);
        if (tjGetErrorCode(th) != TJERR_WARNING || strstr(es, "Premature end")) {
            free(dst);
            return err_set(msg, msglen, ERR_DATA, "JPEG decoding failed: %s", es);
        }
    }
    if (cmyk) {
        /* Adobe-style inverted CMYK: a stored value of 255 means no ink. */
        size_t np = (size_t)sw * sh;
        for (size_t i = 0; i < np; i++) {
            unsigned c = dst[4 * i], m = dst[4 * i + 1], y = dst[4 * i + 2], k = dst[4 * i + 3];
            dst[3 * i] = (uint8_t)((c * k + 127) / 255);
            dst[3 * i + 1] = (uint8_t)((m * k + 127) / 255);
            dst[3 * i + 2] = (uint8_t)((y * k + 127) / 255);
        }
        uint8_t *shrunk = realloc(dst, np * 3);
        if (shrunk) dst = shrunk;
    }
    out->w = sw;
    out->h = sh;
    out->px = dst;
    return 0;
}

/* Reads all of PATH into a new buffer (caller frees). */
static int read_file(const char *path, uint8_t **buf, size_t *len, char *msg, size_t msglen)
{
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_set_errno(msg, msglen, ERR_IO, errno, "cannot open %s", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return err_set_errno(msg, msglen, ERR_IO, e, "cannot stat %s", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(msg, msglen, ERR_IO, "%s is not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    if (n == 0) {
        close(fd);
        return err_set(msg, msglen, ERR_DATA, "%s: empty file", path);
    }
    uint8_t *b = malloc(n);
    if (!b) {
        close(fd);
        return err_set(msg, msglen, ERR_NOMEM, "out of memory reading %s", path);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            free(b);
            close(fd);
            return err_set_errno(msg, msglen, ERR_IO, e, "cannot read %s", path);
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    close(fd);
    *buf = b;
    *len = got;
    return 0;
}

int image_load_jpeg(const char *path, int min_short, image_u8 *out, char *msg, size_t msglen)
{
    memset(out, 0, sizeof *out);
    uint8_t *buf;
    size_t len;
    int rc = read_file(path, &buf, &len, msg, msglen);
    if (rc) return rc;
    char why[256];
    rc = image_decode_jpeg(buf, len, min_short, out, why, sizeof why);
    free(buf);
    if (rc) return err_set(msg, msglen, rc, "%s: %s", path, why);
    return 0;
}

/* ---- evaluation geometry ----------------------------------------------- */

void image_center_box(int sw, int sh, int short_side, int crop, double *x0, double *y0, double *x1,
                      double *y1)
{
    /* torchvision Resize(int): the shorter side becomes SHORT, the longer
     * int(SHORT * long / short); CenterCrop: offsets round((H - crop) / 2)
     * with Python's round-half-even (nearbyint in the default mode). */
    int nw, nh;
    if (sw <= sh) {
        nw = short_side;
        nh = (int)((double)short_side * sh / sw);
    } else {
        nh = short_side;
        nw = (int)((double)short_side * sw / sh);
    }
    if (nw < 1) nw = 1;
    if (nh < 1) nh = 1;
    double left = nearbyint((nw - crop) / 2.0), top = nearbyint((nh - crop) / 2.0);
    double fx = (double)sw / nw, fy = (double)sh / nh;
    *x0 = left * fx;
    *x1 = (left + crop) * fx;
    *y0 = top * fy;
    *y1 = (top + crop) * fy;
}

int image_resize_center_crop(const image_u8 *im, int short_side, int crop, uint8_t *dst)
{
    double x0, y0, x1, y1;
    image_center_box(im->w, im->h, short_side, crop, &x0, &y0, &x1, &y1);
    return image_resize_region(im->px, im->w, im->h, x0, y0, x1, y1, dst, crop, crop);
}

/* ---- normalisation ----------------------------------------------------- */

image_norm image_norm_of(const weights_meta *m)
{
    image_norm n;
    memcpy(n.mean, m->mean, sizeof n.mean);
    memcpy(n.std, m->std, sizeof n.std);
    return n;
}

void image_norm_lut(const image_norm *n, float lut[3][256])
{
    if (!n) n = &image_norm_imagenet;
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++)
            lut[c][v] = ((float)v / 255.0f - n->mean[c]) / n->std[c];
}

void image_normalize(const uint8_t *src, int w, int h, const image_norm *norm, float *dst)
{
    float lut[3][256];
    image_norm_lut(norm, lut);
    size_t np = (size_t)w * h;
    float *r = dst, *g = dst + np, *b = dst + 2 * np;
    for (size_t i = 0; i < np; i++) {
        r[i] = lut[0][src[3 * i]];
        g[i] = lut[1][src[3 * i + 1]];
        b[i] = lut[2][src[3 * i + 2]];
    }
}

void image_eval_view(const uint8_t *src, int ss, int out_size, const image_norm *norm, float *out)
{
    float lut[3][256];
    image_norm_lut(norm, lut);
    int off = (int)nearbyint((ss - out_size) / 2.0);
    size_t np = (size_t)out_size * out_size;
    float *r = out, *g = out + np, *b = out + 2 * np;
    for (int y = 0; y < out_size; y++) {
        const uint8_t *row = src + ((size_t)(y + off) * ss + off) * 3;
        size_t o = (size_t)y * out_size;
        for (int x = 0; x < out_size; x++) {
            r[o + x] = lut[0][row[3 * x]];
            g[o + x] = lut[1][row[3 * x + 1]];
            b[o + x] = lut[2][row[3 * x + 2]];
        }
    }
}

/* ---- the stored square and one-call preprocessing ----------------------- */

int image_eval_square(const uint8_t *buf, size_t len, int side, uint8_t *dst, char *msg,
                      size_t msglen)
{
    image_u8 im = {0};
    int rc = image_decode_jpeg(buf, len, side, &im, msg, msglen);
    if (!rc && image_resize_center_crop(&im, side, side, dst) != 0)
        rc = err_set(msg, msglen, ERR_NOMEM, "out of memory resizing a %dx%d image", im.w, im.h);
    image_free(&im);
    return rc;
}

int image_preprocess_file(const char *path, int input_size, const image_norm *norm, bool raw,
                          float *out, char *msg, size_t msglen)
{
    if (input_size < 1)
        return err_set(msg, msglen, ERR_INVALID, "input size %d is not positive", input_size);
    if (raw) {
        image_u8 im;
        int rc = image_load_jpeg(path, 0, &im, msg, msglen);
        if (rc) return rc;
        if (im.w != input_size || im.h != input_size)
            rc = err_set(msg, msglen, ERR_DATA,
                         "%s is %dx%d but --raw needs exactly the input size %dx%d", path, im.w,
                         im.h, input_size, input_size);
        else
            image_eval_view(im.px, input_size, input_size, norm, out);
        image_free(&im);
        return rc;
    }
    int side = image_eval_size(input_size);
    uint8_t *buf = NULL, *sq = malloc((size_t)side * side * 3);
    size_t len = 0;
    if (!sq) return err_set(msg, msglen, ERR_NOMEM, "out of memory preprocessing %s", path);
    int rc = read_file(path, &buf, &len, msg, msglen);
    char why[256];
    if (!rc && (rc = image_eval_square(buf, len, side, sq, why, sizeof why)))
        err_set(msg, msglen, rc, "%s: %s", path, why);
    if (!rc) image_eval_view(sq, side, input_size, norm, out);
    free(buf);
    free(sq);
    return rc;
}
