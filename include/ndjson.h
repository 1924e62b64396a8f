/* ndjson — newline framing over a growing buffer, with a maximum line length.
 *
 * Bytes arrive in arbitrary chunks (socket reads, pipe reads). ndjson_feed()
 * appends them and calls back once per complete line, without the "\n" (and
 * without a trailing "\r"), NUL-terminated; the line buffer is only valid
 * during the callback. Partial lines are kept for the next feed. A line longer
 * than max_line bytes is not buffered: its bytes are discarded as they arrive
 * and, once its newline is seen, the callback is called with line == NULL and
 * len = the oversized line's full length, so the caller can report it; the
 * lines after it are delivered normally. Empty lines are skipped. */
#ifndef SWEEP_NDJSON_H
#define SWEEP_NDJSON_H

#include <stddef.h>

/* Return 0 to continue, non-zero to stop feeding (the value is returned by
 * ndjson_feed; unprocessed bytes stay buffered). */
typedef int (*ndjson_line_cb)(void *ud, char *line, size_t len);

typedef struct {
    char *buf;         // pending bytes of the current partial line (owned)
    size_t len;        // bytes used in buf
    size_t cap;        // bytes allocated for buf
    size_t max_line;   // longest accepted line, in bytes, excluding "\n"
    size_t discarding; // > 0 while skipping an oversized line: bytes skipped so far
} ndjson_buf;

void ndjson_init(ndjson_buf *b, size_t max_line);
void ndjson_free(ndjson_buf *b);
/* Feeds N bytes. Returns 0, ERR_NOMEM, or the callback's non-zero value. */
int ndjson_feed(ndjson_buf *b, const char *data, size_t n, ndjson_line_cb cb, void *ud);
/* Bytes of an unfinished line currently held (0 when discarding). */
size_t ndjson_pending(const ndjson_buf *b);

#endif
