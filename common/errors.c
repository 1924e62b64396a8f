/* errors — text and names for the error codes of include/errors.h, and the
 * helpers that fill a caller's message buffer while returning the code. */
#include "errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* One row of the SWEEP_ERRORS table. */
typedef struct {
    int code;         // the ERR_* value
    const char *name; // its stable name ("nomem")
    const char *text; // its description ("out of memory")
} err_row;

static const err_row err_rows[] = {
#define SWEEP_ERR_ROW(sym, val, name, text) {sym, name, text},
    SWEEP_ERRORS(SWEEP_ERR_ROW)
#undef SWEEP_ERR_ROW
};

/* The row of CODE, NULL for a code not in the table. */
static const err_row *err_row_of(int code)
{
    for (size_t i = 0; i < sizeof err_rows / sizeof *err_rows; i++)
        if (err_rows[i].code == code) return &err_rows[i];
    return NULL;
}

const char *err_str(int code)
{
    if (code == 0) return "success";
    const err_row *r = err_row_of(code);
    return r ? r->text : "unknown error";
}

const char *err_name(int code)
{
    if (code == 0) return "ok";
    const err_row *r = err_row_of(code);
    return r ? r->name : "unknown";
}

void err_trim_utf8(char *buf, size_t len)
{
    if (!buf || len == 0) return;
    /* the last lead byte and how many continuation bytes follow it */
    size_t i = len, cont = 0;
    while (i > 0 && cont < 4 && ((unsigned char)buf[i - 1] & 0xC0) == 0x80) {
        i--;
        cont++;
    }
    if (i == 0) return;
    unsigned char lead = (unsigned char)buf[i - 1];
    size_t need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
    if (lead >= 0xC0 && cont < need) buf[i - 1] = '\0';
}

int err_set(char *msg, size_t msglen, int code, const char *fmt, ...)
{
    if (msg && msglen > 0) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(msg, msglen, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n >= msglen) err_trim_utf8(msg, msglen - 1);
    }
    return code;
}

int err_set_errno(char *msg, size_t msglen, int code, int errnum, const char *fmt, ...)
{
    if (msg && msglen > 0) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(msg, msglen, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < msglen) {
            char ebuf[128];
            /* GNU strerror_r returns a pointer that may or may not be ebuf. */
            const char *es = strerror_r(errnum, ebuf, sizeof ebuf);
            snprintf(msg + n, msglen - (size_t)n, ": %s", es);
        }
    }
    return code;
}
