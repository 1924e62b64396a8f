/* safetensors — memory-mapped reader and atomic writer for the safetensors
 * format (contract in include/safetensors.h).
 *
 * Design notes. The reader never trusts the file: the 8-byte header length is
 * checked against the file size before anything is parsed; the header is
 * parsed by jansson with an explicit length (so the parser cannot run past the
 * header); every tensor entry must have a known dtype, a shape of non-negative
 * integers whose product (and byte size) does not overflow, and data offsets
 * [begin, end) with begin <= end inside the data section and end - begin equal
 * to numel * element size. Tensors may not overlap. Only after all of this do
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

/* Headers larger than this are refused before any allocation (the reference
 * implementation uses 100 MB too). */
#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

struct st_file {
    char *path;         // copy of the path given to st_open
    const uint8_t *map; // whole file mapped read-only (size bytes)
    size_t size;        // file size in bytes
    size_t data_start;  // byte offset of the data section (8 + header length)
    st_tensor *tensors; // (count) in header order; names owned here
    size_t count;       // number of tensors
    size_t *by_name;    // (count) indices into tensors sorted by name, for st_find
    char **meta_keys;   // (nmeta) __metadata__ keys, owned
    char **meta_vals;   // (nmeta) __metadata__ values, owned
    size_t nmeta;       // number of metadata entries
};

static const struct {
    const char *name; // dtype string in the header
    st_dtype dtype;   // our enum (ST_OTHER for types we only carry)
    size_t size;      // bytes per element
} dtypes[] = {
    {"F32", ST_F32, 4},    {"F16", ST_F16, 2},       {"BF16", ST_BF16, 2},     {"F64", ST_F64, 8},
    {"I64", ST_I64, 8},    {"I32", ST_I32, 4},       {"U8", ST_U8, 1},         {"I8", ST_OTHER, 1},
    {"I16", ST_OTHER, 2},  {"U16", ST_OTHER, 2},     {"U32", ST_OTHER, 4},     {"U64", ST_OTHER, 8},
    {"BOOL", ST_OTHER, 1}, {"F8_E4M3", ST_OTHER, 1}, {"F8_E5M2", ST_OTHER, 1},
};
#define NDTYPES (sizeof dtypes / sizeof dtypes[0])

/* Element size of a dtype of ours; 0 for ST_OTHER (size unknown without the string). */
static size_t dtype_size(st_dtype d)
{
    for (size_t i = 0; i < NDTYPES; i++)
        if (dtypes[i].dtype == d && d != ST_OTHER) return dtypes[i].size;
    return 0;
}

static const char *dtype_name(st_dtype d)
{
    for (size_t i = 0; i < NDTYPES; i++)
        if (dtypes[i].dtype == d && d != ST_OTHER) return dtypes[i].name;
    return NULL;
}

/* ---------------------------------------------------------------- reader */

static int cmp_by_name(const void *a, const void *b, void *ctx)
{
    const st_tensor *ts = ctx;
    size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
    return strcmp(ts[ia].name, ts[ib].name);
}
static int cmp_by_offset(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

/* Reads a JSON integer in [0, INT64_MAX] for messages naming WHAT of tensor NAME. */
static int get_nonneg(const json_t *v, const char *name, const char *what, int64_t *out, char *msg,
                      size_t msglen)
{
    if (!json_is_integer(v))
        return err_set(msg, msglen, ERR_PARSE, "tensor \"%s\": %s must be an integer", name, what);
    json_int_t x = json_integer_value(v);
    if (x < 0)
        return err_set(msg, msglen, ERR_PARSE, "tensor \"%s\": %s is negative (%lld)", name, what,
                       (long long)x);
    *out = (int64_t)x;
    return 0;
}

/* Validates one header entry and fills T (name still unset). DATA_SIZE is the
 * size of the data section; offsets are stored relative to the file start. */
static int parse_entry(const char *name, const json_t *e, size_t data_start, size_t data_size,
                       st_tensor *t, char *msg, size_t msglen)
{
    if (!json_is_object(e))
        return err_set(msg, msglen, ERR_PARSE, "tensor \"%s\": entry is not a JSON object", name);
    const json_t *jd = json_object_get(e, "dtype");
    const json_t *js = json_object_get(e, "shape");
    const json_t *jo = json_object_get(e, "data_offsets");
    if (!json_is_string(jd))
        return err_set(msg, msglen, ERR_PARSE, "tensor \"%s\": \"dtype\" missing or not a string",
                       name);
    if (!json_is_array(js))
        return err_set(msg, msglen, ERR_PARSE, "tensor \"%s\": \"shape\" missing or not an array",
                       name);
    if (!json_is_array(jo) || json_array_size(jo) != 2)
        return err_set(msg, msglen, ERR_PARSE,
                       "tensor \"%s\": \"data_offsets\" must be an array [begin, end]", name);
    const char *ds = json_string_value(jd);
    size_t esize = 0;
    t->dtype = ST_OTHER;
    for (size_t i = 0; i < NDTYPES; i++) {
        if (!strcmp(ds, dtypes[i].name)) {
            t->dtype = dtypes[i].dtype;
            esize = dtypes[i].size;
            break;
        }
    }
    if (!esize)
        return err_set(msg, msglen, ERR_PARSE, "tensor \"%s\": unknown dtype \"%.32s\"", name, ds);
    size_t nd = json_array_size(js);
    if (nd > ST_MAX_DIMS)
        return err_set(msg, msglen, ERR_PARSE, "tensor \"%s\": %zu dimensions (at most %d)", name,
                       nd, ST_MAX_DIMS);
    t->ndim = (int)nd;
    int64_t numel = 1;
    for (size_t i = 0; i < nd; i++) {
        int64_t d;
        char what[32];
        snprintf(what, sizeof what, "shape[%zu]", i);
        int rc = get_nonneg(json_array_get(js, i), name, what, &d, msg, msglen);
        if (rc) return rc;
        t->shape[i] = d;
        if (d != 0 && numel > INT64_MAX / d)
            return err_set(msg, msglen, ERR_PARSE, "tensor \"%s\": shape product overflows", name);
        numel *= d;
    }
    for (size_t i = nd; i < ST_MAX_DIMS; i++)
        t->shape[i] = 0;
    t->numel = numel;
    if ((uint64_t)numel > SIZE_MAX / esize)
        return err_set(msg, msglen, ERR_PARSE, "tensor \"%s\": byte size overflows", name);
    size_t want = (size_t)numel * esize;
    int64_t begin, end;
    int rc = get_nonneg(json_array_get(jo, 0), name, "data_offsets[0]", &begin, msg, msglen);
    if (rc) return rc;
    rc = get_nonneg(json_array_get(jo, 1), name, "data_offsets[1]", &end, msg, msglen);
    if (rc) return rc;
    if (begin > end)
        return err_set(msg, msglen, ERR_PARSE,
                       "tensor \"%s\": data_offsets begin %lld is after end %lld", name,
                       (long long)begin, (long long)end);
    if ((uint64_t)end > data_size)
        return err_set(msg, msglen, ERR_PARSE,
                       "tensor \"%s\": data_offsets end %lld is beyond the data section "
                       "(%zu bytes, file offset %zu)",
                       name, (long long)end, data_size, data_start + data_size);
    if ((uint64_t)(end - begin) != want)
        return err_set(msg, msglen, ERR_PARSE,
                       "tensor \"%s\": %lld data bytes but dtype %s and shape need %zu", name,
                       (long long)(end - begin), ds, want);
    t->offset = data_start + (size_t)begin;
    t->nbytes = want;
    return 0;
}

void st_close(st_file *f)
{
    if (!f) return;
    if (f->tensors)
        for (size_t i = 0; i < f->count; i++)
            free(f->tensors[i].name);
    free(f->tensors);
    free(f->by_name);
    for (size_t i = 0; i < f->nmeta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_vals[i]);
    }
    free(f->meta_keys);
    free(f->meta_vals);
    if (f->map) munmap((void *)f->map, f->size);
    free(f->path);
    free(f);
}

static int parse_metadata(st_file *f, const json_t *m, char *msg, size_t msglen)
{
    if (!json_is_object(m))
        return err_set(msg, msglen, ERR_PARSE, "%s: \"__metadata__\" is not a JSON object",
                       f->path);
    size_t n = json_object_size(m);
    f->meta_keys = calloc(n ? n : 1, sizeof *f->meta_keys);
    f->meta_vals = calloc(n ? n : 1, sizeof *f->meta_vals);
    if (!f->meta_keys || !f->meta_vals) return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)m, k, v)
    {
        if (!json_is_string(v))
            return err_set(msg, msglen, ERR_PARSE, "%s: __metadata__ value \"%s\" is not a string",
                           f->path, k);
        f->meta_keys[f->nmeta] = strdup(k);
        f->meta_vals[f->nmeta] = strdup(json_string_value(v));
        f->nmeta++;
        if (!f->meta_keys[f->nmeta - 1] || !f->meta_vals[f->nmeta - 1])
            return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    }
    return 0;
}

int st_open(st_file **out, const char *path, char *msg, size_t msglen)
{
    *out = NULL;
    int rc = 0;
    json_t *root = NULL;
    const st_tensor **order = NULL;
    st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    }
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
    if (sb.st_size < 8) {
        rc = err_set(msg, msglen, ERR_PARSE,
                     "%s: file is %lld bytes, too short for the 8-byte header length", path,
                     (long long)sb.st_size);
        close(fd);
        goto fail;
    }
    f->size = (size_t)sb.st_size;
    void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    int merr = errno;
    close(fd);
    if (m == MAP_FAILED) {
        rc = err_set_errno(msg, msglen, ERR_IO, merr, "%s: cannot map", path);
        goto fail;
    }
    f->map = m;
    uint64_t hlen;
    memcpy(&hlen, f->map, 8);
    if (hlen > ST_MAX_HEADER || hlen > f->size - 8) {
        rc = err_set(msg, msglen, ERR_PARSE,
                     "%s: header length %llu at byte offset 0 exceeds the file (%zu bytes)%s", path,
                     (unsigned long long)hlen, f->size,
                     hlen > ST_MAX_HEADER ? " or the 100 MB limit" : "");
        goto fail;
    }
    if (hlen < 2) {
        rc = err_set(msg, msglen, ERR_PARSE, "%s: header of %llu bytes cannot hold a JSON object",
                     path, (unsigned long long)hlen);
        goto fail;
    }
    f->data_start = 8 + (size_t)hlen;
    size_t data_size = f->size - f->data_start;
    json_error_t jerr;
    root = json_loadb((const char *)f->map + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        rc = err_set(msg, msglen, ERR_PARSE, "%s: header JSON invalid at byte offset %d: %s", path,
                     8 + jerr.position, jerr.text);
        goto fail;
    }
    if (!json_is_object(root)) {
        rc = err_set(msg, msglen, ERR_PARSE, "%s: header at byte offset 8 is not a JSON object",
                     path);
        goto fail;
    }
    size_t n = json_object_size(root);
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    f->by_name = calloc(n ? n : 1, sizeof *f->by_name);
    order = calloc(n ? n : 1, sizeof *order);
    if (!f->tensors || !f->by_name || !order) {
        rc = err_set(msg, msglen, ERR_NOMEM, "out of memory");
        goto fail;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        if (!strcmp(key, "__metadata__")) {
            if ((rc = parse_metadata(f, val, msg, msglen))) goto fail;
            continue;
        }
        st_tensor *t = &f->tensors[f->count];
        if ((rc = parse_entry(key, val, f->data_start, data_size, t, msg, msglen))) goto fail;
        if (!(t->name = strdup(key))) {
            rc = err_set(msg, msglen, ERR_NOMEM, "out of memory");
            goto fail;
        }
        order[f->count] = t;
        f->by_name[f->count] = f->count;
        f->count++;
    }
    /* No two tensors may share bytes (empty tensors share nothing). */
    qsort(order, f->count, sizeof *order, cmp_by_offset);
    size_t prev_end = f->data_start;
    const st_tensor *prev = NULL;
    for (size_t i = 0; i < f->count; i++) {
        if (order[i]->nbytes == 0) continue;
        if (prev && order[i]->offset < prev_end) {
            rc = err_set(msg, msglen, ERR_PARSE,
                         "%s: tensor \"%s\" overlaps tensor \"%s\" at byte offset %zu", path,
                         order[i]->name, prev->name, order[i]->offset);
            goto fail;
        }
        prev = order[i];
        prev_end = order[i]->offset + order[i]->nbytes;
    }
    qsort_r(f->by_name, f->count, sizeof *f->by_name, cmp_by_name, f->tensors);
    *out = f;
    f = NULL; // the caller's now: the cleanup below leaves it
fail:
    free(order);
    json_decref(root);
    st_close(f);
    return rc;
}

size_t st_count(const st_file *f)
{
    return f->count;
}

const st_tensor *st_get(const st_file *f, size_t i)
{
    return i < f->count ? &f->tensors[i] : NULL;
}

const st_tensor *st_find(const st_file *f, const char *name)
{
    size_t lo = 0, hi = f->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const st_tensor *t = &f->tensors[f->by_name[mid]];
        int c = strcmp(name, t->name);
        if (c == 0) return t;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *st_metadata(const st_file *f, const char *key)
{
    for (size_t i = 0; i < f->nmeta; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_vals[i];
    return NULL;
}

const char *st_path(const st_file *f)
{
    return f->path;
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
    if (t->offset < f->data_start || t->offset > f->size || t->nbytes > f->size - t->offset)
        return err_set(msg, msglen, ERR_INVALID, "%s: tensor \"%s\" is not from this file", f->path,
                       t->name);
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
                       "%s: tensor \"%s\" has dtype %s, not a floating-point type", f->path,
                       t->name, dtype_name(t->dtype) ? dtype_name(t->dtype) : "(other)");
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
    size_t esize = dtype_size(dtype);
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
        if (!rc && (json_object_set_new(ent, "dtype", json_string(dtype_name(e->dtype))) ||
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
