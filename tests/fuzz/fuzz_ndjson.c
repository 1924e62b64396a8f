/* fuzz_ndjson — libFuzzer harness for the ndjson line framer (common/ndjson.c).
 *
 * The input's first bytes choose the maximum line length, the chunk sizes the
 * bytes are fed in and when the callback asks to stop; the rest is the stream.
 * The lines ndjson delivers are compared with a simple reference framer that
 * follows include/ndjson.h: lines without "\n", one trailing "\r" removed,
 * empty lines skipped, a line whose content exceeds max_line reported once as
 * (NULL, content length). Stopping (non-zero callback) keeps the unprocessed bytes, so the
 * harness resumes with empty feeds until ndjson_feed returns 0 and expects the
 * very same sequence of lines. Any difference aborts, as does any crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "ndjson.h"

typedef struct {
    int is_null; // 1 for an oversized-line report
    size_t len;  // line length, or the oversized line's length
    char *bytes; // line bytes (NULL when is_null); owned
} fz_line;

typedef struct {
    fz_line *v; // lines in order; owned
    size_t n;   // lines used
    size_t cap; // lines allocated
} fz_lines;

static void lines_push(fz_lines *L, int is_null, const char *p, size_t len)
{
    if (L->n == L->cap) {
        L->cap = L->cap ? L->cap * 2 : 16;
        L->v = realloc(L->v, L->cap * sizeof *L->v);
        if (!L->v) abort();
    }
    fz_line *l = &L->v[L->n++];
    l->is_null = is_null;
    l->len = len;
    l->bytes = NULL;
    if (!is_null) {
        l->bytes = malloc(len + 1);
        if (!l->bytes) abort();
        memcpy(l->bytes, p, len);
        l->bytes[len] = 0;
    }
}

static void lines_free(fz_lines *L)
{
    for (size_t i = 0; i < L->n; i++)
        free(L->v[i].bytes);
    free(L->v);
}

typedef struct {
    fz_lines got;        // what ndjson delivered
    size_t max_line;     // the framer's limit
    uint32_t stop_state; // xorshift state deciding when to ask for a stop
    int stop_enabled;    // whether the callback ever asks to stop
} fz_ctx;

static uint32_t xs(uint32_t *s)
{
    uint32_t x = *s ? *s : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

static int on_line(void *ud, char *line, size_t len)
{
    fz_ctx *c = ud;
    if (line) {
        /* Contract: NUL-terminated, no newline inside, within the limit, not empty. */
        if (line[len] != 0) abort();
        if (memchr(line, '\n', len)) abort();
        if (len > c->max_line) abort();
        if (len == 0) abort();
        lines_push(&c->got, 0, line, len);
    } else {
        if (len <= c->max_line) abort();
        lines_push(&c->got, 1, NULL, len);
    }
    if (c->stop_enabled && (xs(&c->stop_state) & 3) == 0) return 7;
    return 0;
}

/* Reference framing of DATA (complete lines only). The limit applies to a
 * line's content, without its "\r\n" (common/ndjson.c's documented choice),
 * and an oversized line is reported with that content length. */
static void reference(const uint8_t *data, size_t n, size_t max_line, fz_lines *out)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (data[i] != '\n') continue;
        size_t len = i - start;
        const char *p = (const char *)data + start;
        start = i + 1;
        if (len > 0 && p[len - 1] == '\r') len--;
        if (len > max_line) {
            lines_push(out, 1, NULL, len);
            continue;
        }
        if (len == 0) continue;
        lines_push(out, 0, p, len);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) return 0;
    fz_ctx c = {0};
    c.max_line = 1 + (data[0] % 64);
    c.stop_enabled = data[1] & 1;
    c.stop_state = data[1] | (uint32_t)data[2] << 8;
    uint32_t chunk_state = data[3] * 2654435761u + 1;
    data += 4;
    size -= 4;

    ndjson_buf b;
    ndjson_init(&b, c.max_line);
    size_t off = 0;
    while (off < size) {
        size_t chunk = 1 + xs(&chunk_state) % 97;
        if (chunk > size - off) chunk = size - off;
        int rc = ndjson_feed(&b, (const char *)data + off, chunk, on_line, &c);
        int guard = 0;
        while (rc == 7) {
            /* Stopped: the rest stays buffered; resume with an empty feed. */
            if (++guard > 100000) abort();
            rc = ndjson_feed(&b, "", 0, on_line, &c);
        }
        if (rc != 0) abort(); /* ERR_NOMEM is not expected at these sizes */
        off += chunk;
    }
    /* Pending bytes: those after the last newline, unless that line is
     * oversized. After a stop the unprocessed rest of a chunk is held as is
     * (the header allows it), so then only "no more than the tail" holds. */
    const uint8_t *last_nl = size ? memrchr(data, '\n', size) : NULL;
    size_t tail = last_nl ? size - (size_t)(last_nl + 1 - data) : size;
    size_t pend = ndjson_pending(&b);
    if (c.stop_enabled) {
        if (pend > tail) abort();
    } else if (tail <= c.max_line) {
        if (pend != tail) abort();
    } else if (tail > c.max_line + 1 && pend != 0) {
        abort(); /* "0 when discarding" */
    } else if (pend > c.max_line + 1) {
        abort();
    }

    fz_lines want = {0};
    reference(data, size, c.max_line, &want);
    if (want.n != c.got.n) {
        fprintf(stderr, "ndjson delivered %zu lines, reference %zu\n", c.got.n, want.n);
        abort();
    }
    for (size_t i = 0; i < want.n; i++) {
        fz_line *a = &c.got.v[i], *w = &want.v[i];
        if (a->is_null != w->is_null || a->len != w->len ||
            (!a->is_null && memcmp(a->bytes, w->bytes, a->len) != 0)) {
            fprintf(stderr, "line %zu differs: got null=%d len=%zu, want null=%d len=%zu\n", i,
                    a->is_null, a->len, w->is_null, w->len);
            abort();
        }
    }
    lines_free(&want);
    lines_free(&c.got);
    ndjson_free(&b);
    return 0;
}
