/* st_header — parser of a safetensors file's header (contract in
 * include/st_header.h), shared by the worker's reader and the daemon.
 *
 * Design notes. The 8-byte header length is checked against the file size
 * before anything is parsed; the header is parsed by jansson with an explicit
 * length (so the parser cannot run past the header); every tensor entry must
 * have a known dtype, a shape of non-negative integers whose product (and
 * byte size) does not overflow, and data offsets [begin, end) with begin <=
 * end inside the data section and end - begin equal to numel * element size.
 * Tensors may not overlap. Only after all of this do byte offsets exist, so
 * a reader that maps the file reads in bounds. The host is assumed
 * little-endian like the format (checked at compile time).
 *
 * A file that is not safetensors at all most often is the PyTorch file the
 * weights came from: torch.save writes a zip archive ("PK\3\4") since
 * PyTorch 1.6 and a pickle (protocol 2+, first byte 0x80) before; read as a
 * header length those bytes give absurd sizes, so they are recognised first
 * and named, with the tool that converts them. */
#include "st_header.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "st_header.c assumes a little-endian host"
#endif

struct st_header {
    char *path;         // copy of the path given
    size_t file_size;   // file size in bytes
    size_t data_start;  // byte offset of the data section (8 + header length)
    st_tensor *tensors; // (count) in header order; names owned here
    size_t count;       // number of tensors
    size_t *by_name;    // (count) indices into tensors sorted by name, for st_header_find
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

size_t st_dtype_size(st_dtype d)
{
    for (size_t i = 0; i < NDTYPES; i++)
        if (dtypes[i].dtype == d && d != ST_OTHER) return dtypes[i].size;
    return 0;
}

const char *st_dtype_name(st_dtype d)
{
    for (size_t i = 0; i < NDTYPES; i++)
        if (dtypes[i].dtype == d && d != ST_OTHER) return dtypes[i].name;
    return NULL;
}

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

void st_header_free(st_header *h)
{
    if (!h) return;
    if (h->tensors)
        for (size_t i = 0; i < h->count; i++)
            free(h->tensors[i].name);
    free(h->tensors);
    free(h->by_name);
    for (size_t i = 0; i < h->nmeta; i++) {
        free(h->meta_keys[i]);
        free(h->meta_vals[i]);
    }
    free(h->meta_keys);
    free(h->meta_vals);
    free(h->path);
    free(h);
}

static int parse_metadata(st_header *h, const json_t *m, char *msg, size_t msglen)
{
    if (!json_is_object(m))
        return err_set(msg, msglen, ERR_PARSE, "%s: \"__metadata__\" is not a JSON object",
                       h->path);
    size_t n = json_object_size(m);
    h->meta_keys = calloc(n ? n : 1, sizeof *h->meta_keys);
    h->meta_vals = calloc(n ? n : 1, sizeof *h->meta_vals);
    if (!h->meta_keys || !h->meta_vals) return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)m, k, v)
    {
        if (!json_is_string(v))
            return err_set(msg, msglen, ERR_PARSE, "%s: __metadata__ value \"%s\" is not a string",
                           h->path, k);
        h->meta_keys[h->nmeta] = strdup(k);
        h->meta_vals[h->nmeta] = strdup(json_string_value(v));
        h->nmeta++;
        if (!h->meta_keys[h->nmeta - 1] || !h->meta_vals[h->nmeta - 1])
            return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    }
    return 0;
}

/* ERR_PARSE naming the PyTorch format when the LEN first bytes at BUF are
 * those of a torch.save file, else 0. */
static int refuse_pytorch(const char *path, const uint8_t *buf, size_t len, char *msg,
                          size_t msglen)
{
    const char *what = NULL;
    if (len >= 4 && !memcmp(buf, "PK\x03\x04", 4))
        what = "a zip archive, as torch.save writes";
    else if (len >= 2 && buf[0] == 0x80 && buf[1] >= 2 && buf[1] <= 5)
        what = "a Python pickle, as torch.save wrote before PyTorch 1.6";
    if (!what) return 0;
    return err_set(msg, msglen, ERR_PARSE,
                   "%s is %s, not a safetensors file; convert it with etc/export-weights.py "
                   "MODEL.pth OUT.safetensors and give OUT.safetensors",
                   path, what);
}

/* Checks the header length HLEN (first 8 bytes) of PATH against FILE_SIZE
 * and LEN (bytes at hand). */
static int check_length(const char *path, uint64_t hlen, size_t len, size_t file_size, char *msg,
                        size_t msglen)
{
    if (hlen > ST_MAX_HEADER || hlen > file_size - 8)
        return err_set(msg, msglen, ERR_PARSE,
                       "%s: header length %llu at byte offset 0 exceeds the file (%zu bytes)%s",
                       path, (unsigned long long)hlen, file_size,
                       hlen > ST_MAX_HEADER ? " or the 100 MB limit" : "");
    if (hlen < 2)
        return err_set(msg, msglen, ERR_PARSE, "%s: header of %llu bytes cannot hold a JSON object",
                       path, (unsigned long long)hlen);
    if (len < 8 + hlen)
        return err_set(msg, msglen, ERR_PARSE, "%s: only %zu of the %llu header bytes were read",
                       path, len, (unsigned long long)(8 + hlen));
    return 0;
}

/* Fills H's tensors and metadata from the JSON object ROOT. */
static int parse_root(st_header *h, json_t *root, char *msg, size_t msglen)
{
    const st_tensor **order = NULL;
    size_t n = json_object_size(root);
    size_t data_size = h->file_size - h->data_start;
    int rc = 0;
    h->tensors = calloc(n ? n : 1, sizeof *h->tensors);
    h->by_name = calloc(n ? n : 1, sizeof *h->by_name);
    order = calloc(n ? n : 1, sizeof *order);
    if (!h->tensors || !h->by_name || !order) {
        rc = err_set(msg, msglen, ERR_NOMEM, "out of memory");
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        if (!strcmp(key, "__metadata__")) {
            if ((rc = parse_metadata(h, val, msg, msglen))) goto done;
            continue;
        }
        st_tensor *t = &h->tensors[h->count];
        char why[512];
        if ((rc = parse_entry(key, val, h->data_start, data_size, t, why, sizeof why))) {
            rc = err_set(msg, msglen, rc, "%s: %s", h->path, why); // name the file
            goto done;
        }
        if (!(t->name = strdup(key))) {
            rc = err_set(msg, msglen, ERR_NOMEM, "out of memory");
            goto done;
        }
        order[h->count] = t;
        h->by_name[h->count] = h->count;
        h->count++;
    }
    /* No two tensors may share bytes (empty tensors share nothing). */
    qsort(order, h->count, sizeof *order, cmp_by_offset);
    size_t prev_end = h->data_start;
    const st_tensor *prev = NULL;
    for (size_t i = 0; i < h->count; i++) {
        if (order[i]->nbytes == 0) continue;
        if (prev && order[i]->offset < prev_end) {
            rc = err_set(msg, msglen, ERR_PARSE,
                         "%s: tensor \"%s\" overlaps tensor \"%s\" at byte offset %zu", h->path,
                         order[i]->name, prev->name, order[i]->offset);
            goto done;
        }
        prev = order[i];
        prev_end = order[i]->offset + order[i]->nbytes;
    }
    qsort_r(h->by_name, h->count, sizeof *h->by_name, cmp_by_name, h->tensors);
done:
    free(order);
    return rc;
}

int st_header_parse(st_header **out, const char *path, const uint8_t *buf, size_t len,
                    size_t file_size, char *msg, size_t msglen)
{
    *out = NULL;
    int rc = refuse_pytorch(path, buf, len, msg, msglen);
    if (rc) return rc;
    if (file_size < 8 || len < 8)
        return err_set(msg, msglen, ERR_PARSE,
                       "%s: file is %zu bytes, too short for the 8-byte header length", path,
                       file_size);
    uint64_t hlen;
    memcpy(&hlen, buf, 8);
    if ((rc = check_length(path, hlen, len, file_size, msg, msglen))) return rc;
    json_t *root = NULL;
    st_header *h = calloc(1, sizeof *h);
    if (!h || !(h->path = strdup(path))) {
        free(h);
        return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    }
    h->file_size = file_size;
    h->data_start = 8 + (size_t)hlen;
    json_error_t jerr;
    root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
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
    if ((rc = parse_root(h, root, msg, msglen))) goto fail;
    *out = h;
    h = NULL; // the caller's now: the cleanup below leaves it
fail:
    json_decref(root);
    st_header_free(h);
    return rc;
}

/* Reads up to N bytes at offset OFF of FD into BUF; *GOT the bytes read. */
static int read_at(int fd, uint8_t *buf, size_t n, size_t off, size_t *got)
{
    *got = 0;
    while (*got < n) {
        ssize_t r = pread(fd, buf + *got, n - *got, (off_t)(off + *got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) break;
        *got += (size_t)r;
    }
    return 0;
}

int st_header_read(st_header **out, const char *path, char *msg, size_t msglen)
{
    *out = NULL;
    uint8_t first[8] = {0}, *buf = NULL;
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_set_errno(msg, msglen, ERR_IO, errno, "%s: cannot open", path);
    struct stat sb;
    size_t got = 0;
    if (fstat(fd, &sb) != 0) {
        rc = err_set_errno(msg, msglen, ERR_IO, errno, "%s: cannot stat", path);
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = err_set(msg, msglen, ERR_IO, "%s: not a regular file", path);
        goto done;
    }
    size_t size = (size_t)sb.st_size;
    if (read_at(fd, first, sizeof first, 0, &got) != 0) {
        rc = err_set_errno(msg, msglen, ERR_IO, errno, "%s: cannot read", path);
        goto done;
    }
    uint64_t hlen = 0;
    memcpy(&hlen, first, 8);
    /* A length the file cannot hold is refused by the parser from the first
     * bytes alone; otherwise the whole header is read. */
    size_t want = got;
    if (got == 8 && hlen <= ST_MAX_HEADER && hlen <= size - 8) want = 8 + (size_t)hlen;
    if (want > got) {
        if (!(buf = malloc(want))) {
            rc = err_set(msg, msglen, ERR_NOMEM, "%s: out of memory for a %zu-byte header", path,
                         want);
            goto done;
        }
        if (read_at(fd, buf, want, 0, &got) != 0) {
            rc = err_set_errno(msg, msglen, ERR_IO, errno, "%s: cannot read", path);
            goto done;
        }
    }
    rc = st_header_parse(out, path, buf ? buf : first, got, size, msg, msglen);
done:
    free(buf);
    close(fd);
    return rc;
}

size_t st_header_count(const st_header *h)
{
    return h->count;
}

const st_tensor *st_header_get(const st_header *h, size_t i)
{
    return i < h->count ? &h->tensors[i] : NULL;
}

const st_tensor *st_header_find(const st_header *h, const char *name)
{
    size_t lo = 0, hi = h->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const st_tensor *t = &h->tensors[h->by_name[mid]];
        int c = strcmp(name, t->name);
        if (c == 0) return t;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *st_header_metadata(const st_header *h, const char *key)
{
    for (size_t i = 0; i < h->nmeta; i++)
        if (!strcmp(h->meta_keys[i], key)) return h->meta_vals[i];
    return NULL;
}

const char *st_header_path(const st_header *h)
{
    return h->path;
}

size_t st_header_data_start(const st_header *h)
{
    return h->data_start;
}
