/* safetensors — memory-mapped reader and atomic writer for the safetensors
 * format (contract in include/safetensors.h).
 *
 * Design notes. The header is parsed and checked by the one header parser,
 * st_header_parse (common/st_header.c, shared with the daemon), on the mapped
 * bytes: only after it has checked every offset and size against the file do
 * byte offsets into the mapping exist, so every later read is in bounds.
 * Data need not be aligned in the file (the header length is arbitrary), so
 * element reads go through memcpy. The host is assumed little-endian like the
 * format (checked at compile time). The mapping is private and read-only; a
 * file that another process truncates while it is mapped would fault
 * (SIGBUS), which is why writers here replace files by rename instead of
 * rewriting them in place: an open reader keeps the old inode.
 *
 * The writer lays tensors out in the order they were added, pads the header
 * with spaces to a multiple of 8 bytes (so the data section starts aligned, as
 * the reference implementation does) and writes a temporary file in the same
 * directory, fsyncs it, renames it over the target and fsyncs the directory:
 * a crash leaves either the old file or the new one, never a torn one. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "fileio.h"
#include "grow.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

/* ---------------------------------------------------------------- reader */

struct st_file {
    const uint8_t *map; // whole file mapped read-only (size bytes)
    size_t size;        // file size in bytes
    st_header *h;       // the parsed header (tensors, metadata, path); owned
};

void st_close(st_file *f)
{
    if (!f) return;
    st_header_free(f->h);
    if (f->map) munmap((void *)f->map, f->size);
    free(f);
}

int st_open(st_file **out, const char *path, char *msg, size_t msglen)
{
    *out = NULL;
    int rc = 0;
    st_file *f = calloc(1, sizeof *f);
    if (!f) return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = err_set_errno(msg, msglen, ERR_IO, errno, "%s: cannot open", path);
        goto fail;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        rc = err_set_errno(msg, msglen, ERR_IO, errno, "%s: cannot stat", path);
        close(fd);
        goto fail;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = err_set(msg, msglen, ERR_IO, "%s: not a regular file", path);
        close(fd);
        goto fail;
    }
    f->size = (size_t)sb.st_size;
    if (f->size == 0) { // nothing to map; the parser names the short file
        close(fd);
        rc = st_header_parse(&f->h, path, (const uint8_t *)"", 0, 0, msg, msglen);
        goto fail;
    }
    void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    int merr = errno;
    close(fd);
    if (m == MAP_FAILED) {
        rc = err_set_errno(msg, msglen, ERR_IO, merr, "%s: cannot map", path);
        goto fail;
    }
    f->map = m;
    if ((rc = st_header_parse(&f->h, path, f->map, f->size, f->size, msg, msglen))) goto fail;
    *out = f;
    return 0;
fail:
    st_close(f);
    return rc;
}

size_t st_count(const st_file *f)
{
    return st_header_count(f->h);
}

const st_tensor *st_get(const st_file *f, size_t i)
{
    return st_header_get(f->h, i);
}

const st_tensor *st_find(const st_file *f, const char *name)
{
    return st_header_find(f->h, name);
}

const char *st_metadata(const st_file *f, const char *key)
{
    return st_header_metadata(f->h, key);
}

const char *st_path(const st_file *f)
{
    return st_header_path(f->h);
}

const st_header *st_file_header(const st_file *f)
{
    return f->h;
}

/* IEEE half to float, exact for every value (subnormals, inf, NaN). */
static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13); // inf or NaN (payload kept)
    } else if (exp == 0) {
        if (man == 0) {
            bits = sign; // signed zero
        } else {
            // subnormal: value = man * 2^-24, exactly representable in float
            float v = (float)man * 0x1p-24f;
            memcpy(&bits, &v, 4);
            bits |= sign;
        }
    } else {
        bits = sign | ((exp + 112u) << 23) | (man << 13); // rebias 15 -> 127
    }
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

int st_read_f32(const st_file *f, const st_tensor *t, float *dst, char *msg, size_t msglen)
{
    /* T comes from this file, so offset + nbytes was checked at open; the
     * assertion-free re-check keeps a mismatched (f, t) pair from reading
     * outside the mapping. */
    if (t->offset < st_header_data_start(f->h) || t->offset > f->size ||
        t->nbytes > f->size - t->offset)
        return err_set(msg, msglen, ERR_INVALID, "%s: tensor \"%s\" is not from this file",
                       st_path(f), t->name);
    const uint8_t *p = f->map + t->offset;
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case ST_F32:
        memcpy(dst, p, n * 4);
        return 0;
    case ST_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = half_to_float(h);
        }
        return 0;
    case ST_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&dst[i], &bits, 4);
        }
        return 0;
    case ST_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            /* Out-of-range values become infinities, as IEEE rounding does. */
            dst[i] = d > FLT_MAX ? INFINITY : d < -FLT_MAX ? -INFINITY : (float)d;
        }
        return 0;
    default:
        return err_set(msg, msglen, ERR_TYPE,
                       "%s: tensor \"%s\" has dtype %s, not a floating-point type", st_path(f),
                       t->name, st_dtype_name(t->dtype) ? st_dtype_name(t->dtype) : "(other)");
    }
}

/* ---------------------------------------------------------------- writer */

typedef struct {
    char *name;                 // copied tensor name
    st_dtype dtype;             // element type (never ST_OTHER)
    int ndim;                   // number of dimensions
    int64_t shape[ST_MAX_DIMS]; // dimensions
    const void *data;           // borrowed until st_writer_save returns
    size_t nbytes;              // bytes at data
} st_wentry;

struct st_writer {
    st_wentry *e;  // (n) tensors in the order added
    size_t n, cap; // used and allocated entries
    json_t *meta;  // __metadata__ object (string values)
};

st_writer *st_writer_new(void)
{
    st_writer *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->meta = json_object();
    if (!w->meta) {
        free(w);
        return NULL;
    }
    return w;
}

void st_writer_free(st_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n; i++)
        free(w->e[i].name);
    free(w->e);
    json_decref(w->meta);
    free(w);
}

int st_writer_add_raw(st_writer *w, const char *name, st_dtype dtype, int ndim,
                      const int64_t *shape, const void *data, size_t nbytes)
{
    size_t esize = st_dtype_size(dtype);
    if (!esize || ndim < 0 || ndim > ST_MAX_DIMS || !name || !*name ||
        !strcmp(name, "__metadata__"))
        return ERR_INVALID;
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return ERR_INVALID;
        if (shape[i] && numel > UINT64_MAX / (uint64_t)shape[i]) return ERR_RANGE;
        numel *= (uint64_t)shape[i];
    }
    if (numel > SIZE_MAX / esize || numel * esize != nbytes) return ERR_INVALID;
    if (nbytes && !data) return ERR_INVALID;
    for (size_t i = 0; i < w->n; i++)
        if (!strcmp(w->e[i].name, name)) return ERR_EXISTS;
    st_wentry *ne = grow_array(w->e, w->n + 1, &w->cap, sizeof *ne, 64);
    if (!ne) return ERR_NOMEM;
    w->e = ne;
    st_wentry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    if (!(e->name = strdup(name))) return ERR_NOMEM;
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        e->shape[i] = shape[i];
    e->data = data;
    e->nbytes = nbytes;
    w->n++;
    return 0;
}

int st_writer_add_f32(st_writer *w, const char *name, int ndim, const int64_t *shape,
                      const float *data)
{
    uint64_t numel = 1;
    if (ndim < 0 || ndim > ST_MAX_DIMS) return ERR_INVALID;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return ERR_INVALID;
        if (shape[i] && numel > UINT64_MAX / (uint64_t)shape[i]) return ERR_RANGE;
        numel *= (uint64_t)shape[i];
    }
    if (numel > SIZE_MAX / 4) return ERR_RANGE;
    return st_writer_add_raw(w, name, ST_F32, ndim, shape, data, (size_t)numel * 4);
}

int st_writer_meta(st_writer *w, const char *key, const char *value)
{
    if (!key || !value) return ERR_INVALID;
    json_t *s = json_string(value);
    if (!s) return ERR_INVALID; // not valid UTF-8
    return json_object_set_new(w->meta, key, s) ? ERR_NOMEM : 0;
}

/* Builds the padded header: 8-byte length + JSON + spaces. Caller frees *OUT. */
static int build_header(st_writer *w, char **out, size_t *outlen)
{
    json_t *h = json_object();
    if (!h) return ERR_NOMEM;
    int rc = 0;
    if (json_object_size(w->meta) && json_object_set(h, "__metadata__", w->meta)) rc = ERR_NOMEM;
    size_t off = 0;
    for (size_t i = 0; i < w->n && !rc; i++) {
        st_wentry *e = &w->e[i];
        json_t *shape = json_array();
        json_t *offs = json_pack("[II]", (json_int_t)off, (json_int_t)(off + e->nbytes));
        json_t *ent = json_object();
        if (!shape || !offs || !ent) rc = ERR_NOMEM;
        for (int d = 0; d < e->ndim && !rc; d++)
            if (json_array_append_new(shape, json_integer(e->shape[d]))) rc = ERR_NOMEM;
        if (!rc && (json_object_set_new(ent, "dtype", json_string(st_dtype_name(e->dtype))) ||
                    json_object_set(ent, "shape", shape) ||
                    json_object_set(ent, "data_offsets", offs) || json_object_set(h, e->name, ent)))
            rc = ERR_NOMEM;
        json_decref(shape);
        json_decref(offs);
        json_decref(ent);
        off += e->nbytes;
    }
    char *js = rc ? NULL : json_dumps(h, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(h);
    if (!js) return rc ? rc : ERR_NOMEM;
    size_t jl = strlen(js);
    size_t padded = (jl + 7) & ~(size_t)7;
    char *buf = malloc(8 + padded);
    if (!buf) {
        free(js);
        return ERR_NOMEM;
    }
    uint64_t hl = padded;
    memcpy(buf, &hl, 8);
    memcpy(buf + 8, js, jl);
    memset(buf + 8 + jl, ' ', padded - jl);
    free(js);
    *out = buf;
    *outlen = 8 + padded;
    return 0;
}

int st_writer_save(st_writer *w, const char *path, char *msg, size_t msglen)
{
    char *hdr = NULL;
    size_t hlen = 0;
    int rc = build_header(w, &hdr, &hlen);
    if (rc) return err_set(msg, msglen, rc, "%s: cannot build the safetensors header", path);
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 16);
    if (!tmp) {
        free(hdr);
        return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    }
    snprintf(tmp, pl + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rc = err_set_errno(msg, msglen, fileio_err_for_errno(errno), errno,
                           "%s: cannot create a temporary file", tmp);
        free(tmp);
        free(hdr);
        return rc;
    }
    if (fchmod(fd, 0644) != 0 || fileio_write_all(fd, hdr, hlen, NULL) != 0) goto io_fail;
    for (size_t i = 0; i < w->n; i++)
        if (fileio_write_all(fd, w->e[i].data, w->e[i].nbytes, NULL) != 0) goto io_fail;
    if (fsync(fd) != 0) goto io_fail;
    if (close(fd) != 0) {
        fd = -1;
        goto io_fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) goto io_fail;
    /* Make the rename durable: fsync the containing directory. */
    {
        char *dir = strdup(path);
        if (dir) {
            char *slash = strrchr(dir, '/');
            const char *d = slash ? (slash == dir ? "/" : (*slash = 0, dir)) : ".";
            int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) {
                (void)fsync(dfd);
                close(dfd);
            }
            free(dir);
        }
    }
    free(tmp);
    free(hdr);
    return 0;
io_fail:
    /* ERR_NOSPACE for a full disk or the file-size limit (the worker then
     * exits WEXIT_NOSPACE); the previous file at PATH is untouched. */
    rc = err_set_errno(msg, msglen, fileio_err_for_errno(errno), errno, "%s: cannot write", path);
    if (fd >= 0) close(fd);
    unlink(tmp);
    free(tmp);
    free(hdr);
    return rc;
}
