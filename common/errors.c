/* errors — text and names for the error codes of include/errors.h, and the
 * helpers that fill a caller's message buffer while returning the code. */
#include "errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *err_str(int code)
{
    if (code == 0) return "success";
    switch (code) {
#define SWEEP_ERR_TEXT(sym, val, name, text)                                                       \
    case sym:                                                                                      \
        return text;
        SWEEP_ERRORS(SWEEP_ERR_TEXT)
#undef SWEEP_ERR_TEXT
    default:
        return "unknown error";
    }
}

const char *err_name(int code)
{
    if (code == 0) return "ok";
    switch (code) {
#define SWEEP_ERR_NAME(sym, val, name, text)                                                       \
    case sym:                                                                                      \
        return name;
        SWEEP_ERRORS(SWEEP_ERR_NAME)
#undef SWEEP_ERR_NAME
    default:
        return "unknown";
    }
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
