/* ndjson — newline framing with a maximum line length (include/ndjson.h).
 *
 * Invariant: buf holds the bytes received since the last line boundary that
 * have not been handed out. Normally that is one partial line (no "\n"); after
 * a callback asked to stop it can also hold complete lines, which the next
 * ndjson_feed processes first. The limit applies to the line's content without
 * "\r\n", so the buffer may hold max_line + 1 bytes (content plus a "\r")
 * before a line is known to be too long. While an oversized line is being
 * skipped (discarding > 0), `len` is reused as a flag telling whether the last
 * skipped byte was "\r", so the reported length excludes it like a delivered
 * line's would. */
#include "ndjson.h"

#include "errors.h"
#include "grow.h"

#include <stdlib.h>
#include <string.h>

void ndjson_init(ndjson_buf *b, size_t max_line)
{
    memset(b, 0, sizeof *b);
    b->max_line = max_line;
}

void ndjson_free(ndjson_buf *b)
{
    free(b->buf);
    b->buf = NULL;
    b->len = b->cap = 0;
    b->discarding = 0;
}

size_t ndjson_pending(const ndjson_buf *b)
{
    return b->discarding ? 0 : b->len;
}

static int append(ndjson_buf *b, const char *p, size_t n)
{
    char *nb = grow_array(b->buf, b->len + n + 1, &b->cap, 1, 256); // + NUL for the callback
    if (!nb) return ERR_NOMEM;
    b->buf = nb;
    if (n) memcpy(b->buf + b->len, p, n);
    b->len += n;
    return 0;
}

/* Frames DATA; on a callback stop returns its value with *USED = bytes
 * consumed (up to and including the line's "\n"). */
static int process(ndjson_buf *b, const char *data, size_t n, ndjson_line_cb cb, void *ud,
                   size_t *used)
{
    size_t pos = 0;
    int rc = 0;
    while (pos < n) {
        const char *nl = memchr(data + pos, '\n', n - pos);
        size_t seg = nl ? (size_t)(nl - (data + pos)) : n - pos;
        if (!b->discarding && b->len + seg > b->max_line + 1) {
            /* Too long whatever follows: stop buffering, start counting. */
            int last_cr =
                seg ? data[pos + seg - 1] == '\r' : (b->len && b->buf[b->len - 1] == '\r');
            b->discarding = b->len + seg;
            b->len = (size_t)last_cr;
            pos += seg;
        } else if (b->discarding) {
            b->discarding += seg;
            if (seg) b->len = data[pos + seg - 1] == '\r';
            pos += seg;
        } else {
            rc = append(b, data + pos, seg);
            if (rc) {
                *used = n; /* the line is lost; nothing is left to keep */
                return rc;
            }
            pos += seg;
        }
        if (!nl) break;
        pos++; /* the "\n" */
        if (b->discarding) {
            size_t full = b->discarding - b->len;
            b->discarding = 0;
            b->len = 0;
            rc = cb(ud, NULL, full);
        } else {
            size_t l = b->len;
            if (l && b->buf[l - 1] == '\r') l--;
            b->len = 0;
            if (l > b->max_line) {
                rc = cb(ud, NULL, l);
            } else if (l > 0) {
                b->buf[l] = '\0';
                rc = cb(ud, b->buf, l);
            }
        }
        if (rc) {
            *used = pos;
            return rc;
        }
    }
    *used = n;
    return 0;
}

int ndjson_feed(ndjson_buf *b, const char *data, size_t n, ndjson_line_cb cb, void *ud)
{
    size_t used;
    int rc;
    if (!data) n = 0;
    if (!b->discarding && b->len > 0 && memchr(b->buf, '\n', b->len)) {
        /* Complete lines left by an earlier stop: frame them first. */
        char *stash = b->buf;
        size_t slen = b->len;
        b->buf = NULL;
        b->len = b->cap = 0;
        rc = process(b, stash, slen, cb, ud, &used);
        if (rc) {
            /* Stopped again: keep the rest of the stash and all of DATA. A stop
             * happens only at a line boundary, so b->len is 0 here. */
            int arc = append(b, stash + used, slen - used);
            if (!arc && n) arc = append(b, data, n);
            free(stash);
            return arc ? arc : rc;
        }
        free(stash);
    }
    if (n == 0) return 0;
    rc = process(b, data, n, cb, ud, &used);
    if (rc && used < n) {
        int arc = append(b, data + used, n - used);
        if (arc) return arc;
    }
    return rc;
}
