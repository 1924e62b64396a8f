/* fuzz_safetensors — libFuzzer harness for the safetensors reader
 * (worker/engine/safetensors.c): a hostile weights or checkpoint file.
 *
 * The input is written to an anonymous in-memory file (memfd) and opened via
 * /proc/self/fd/N, so st_open maps it exactly as it maps a real file. When the
 * open succeeds the harness checks what the header promises (include/
 * safetensors.h): every tensor lies inside the file, its byte size matches
 * numel times the element size, the shape has at most ST_MAX_DIMS
 * non-negative dimensions whose product is numel, st_find finds each name,
 * and st_read_f32 reads each float tensor (the sanitizers catch any read
 * outside the mapping). Small float tensors are also written back with the
 * writer and read again, comparing the values bit for bit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "errors.h"
#include "safetensors.h"

#include "fuzz_common.h"

static int memfd = -1;
static char memfd_path[64];
static char out_path[256];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_quiet();
    memfd = memfd_create("fuzz_safetensors", 0);
    if (memfd < 0) abort();
    snprintf(memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
    const char *tmp = getenv("TMPDIR");
    snprintf(out_path, sizeof out_path, "%s/fuzz_st_%d.safetensors", tmp ? tmp : "/tmp",
             (int)getpid());
    return 0;
}

static size_t elem_size(st_dtype d)
{
    switch (d) {
    case ST_F32:
    case ST_I32:
        return 4;
    case ST_F16:
    case ST_BF16:
        return 2;
    case ST_F64:
    case ST_I64:
        return 8;
    case ST_U8:
        return 1;
    default:
        return 0;
    }
}

static void write_all(const uint8_t *data, size_t size)
{
    if (ftruncate(memfd, 0) != 0) abort();
    size_t off = 0;
    while (off < size) {
        ssize_t w = pwrite(memfd, data + off, size - off, (off_t)off);
        if (w <= 0) abort();
        off += (size_t)w;
    }
}

/* Writes the float tensors of F (each at most 4096 elements) with the writer,
 * reopens the result and compares names, shapes and values. */
static void rewrite_check(const st_file *f)
{
    st_writer *w = st_writer_new();
    if (!w) abort();
    size_t n = st_count(f);
    float **vals = calloc(n ? n : 1, sizeof *vals);
    size_t added = 0;
    for (size_t i = 0; i < n; i++) {
        const st_tensor *t = st_get(f, i);
        if (t->dtype != ST_F32 || t->numel > 4096) continue;
        vals[i] = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
        char msg[256] = "";
        if (st_read_f32(f, t, vals[i], msg, sizeof msg) != 0) abort();
        if (st_writer_add_f32(w, t->name, t->ndim, t->shape, vals[i]) != 0) {
            /* duplicate names or odd names may be refused; then skip the rewrite */
            goto out;
        }
        added++;
    }
    if (!added) goto out;
    char msg[256] = "";
    if (st_writer_save(w, out_path, msg, sizeof msg) != 0) goto out; /* e.g. no space */
    st_file *g = NULL;
    if (st_open(&g, out_path, msg, sizeof msg) != 0) {
        fprintf(stderr, "cannot reopen a file the writer wrote: %s\n", msg);
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        if (!vals[i]) continue;
        const st_tensor *t = st_get(f, i);
        const st_tensor *u = st_find(g, t->name);
        if (!u || u->ndim != t->ndim || u->numel != t->numel) {
            fprintf(stderr, "tensor %s changed shape in the round trip\n", t->name);
            abort();
        }
        float *back = malloc((size_t)(u->numel ? u->numel : 1) * sizeof(float));
        if (st_read_f32(g, u, back, msg, sizeof msg) != 0) abort();
        if (memcmp(back, vals[i], (size_t)u->numel * sizeof(float)) != 0) {
            fprintf(stderr, "tensor %s changed values in the round trip\n", t->name);
            abort();
        }
        free(back);
    }
    st_close(g);
    unlink(out_path);
out:
    for (size_t i = 0; i < n; i++)
        free(vals[i]);
    free(vals);
    st_writer_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    write_all(data, size);
    st_file *f = NULL;
    char msg[256] = "";
    int rc = st_open(&f, memfd_path, msg, sizeof msg);
    if (rc != 0) {
        fz_need_msg(msg, "st_open");
        if (f) abort(); /* *out untouched or NULL on failure */
        return 0;
    }
    size_t n = st_count(f);
    for (size_t i = 0; i < n; i++) {
        const st_tensor *t = st_get(f, i);
        if (!t || !t->name) abort();
        if (t->ndim < 0 || t->ndim > ST_MAX_DIMS) abort();
        int64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0) abort();
            numel *= t->shape[d];
        }
        if (numel != t->numel) abort();
        if (t->offset > size || t->nbytes > size - t->offset) {
            fprintf(stderr, "tensor %s [%zu, +%zu) outside a %zu-byte file\n", t->name, t->offset,
                    t->nbytes, size);
            abort();
        }
        size_t es = elem_size(t->dtype);
        if (es && t->nbytes != (size_t)t->numel * es) abort();
        const st_tensor *u = st_find(f, t->name);
        if (!u || strcmp(u->name, t->name) != 0) abort();
        if (t->numel <= (1 << 20)) {
            float *dst = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
            if (!dst) abort();
            msg[0] = 0;
            rc = st_read_f32(f, t, dst, msg, sizeof msg);
            if (rc != 0) fz_need_msg(msg, "st_read_f32");
            int is_float = t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16 ||
                           t->dtype == ST_F64;
            if (is_float && rc != 0) {
                fprintf(stderr, "st_read_f32 refused float tensor %s: %s\n", t->name, msg);
                abort();
            }
            if (!is_float && rc != ERR_TYPE) abort();
            free(dst);
        }
    }
    if (st_get(f, n) != NULL) abort();
    (void)st_metadata(f, "classes");
    (void)st_metadata(f, "format");
    if (strcmp(st_path(f), memfd_path) != 0) abort();
    if (data[size > 8 ? 8 : 0] & 1) rewrite_check(f);
    st_close(f);
    return 0;
}
