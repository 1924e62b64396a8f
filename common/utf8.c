/* utf8.c — strict UTF-8 decoding (RFC 3629) and the one escape for showing
 * foreign strings on a terminal. Contract: include/utf8.h. */
#include "utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char b = s[0];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    size_t len;
    uint32_t c, min;
    if (b >= 0xC2 && b <= 0xDF) {
        len = 2;
        c = b & 0x1F;
        min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3;
        c = b & 0x0F;
        min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4;
        c = b & 0x07;
        min = 0x10000;
    } else {
        return 0; // a continuation byte, an overlong lead (C0, C1) or F5..FF
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return len;
}

bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n > 0) {
        uint32_t cp;
        size_t k = utf8_decode(p, n, &cp);
        if (k == 0) return false;
        p += k;
        n -= k;
    }
    return true;
}

size_t utf8_escape(char *buf, size_t n, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t left = strlen(s), total = 0, written = 0;
    bool cut = !buf || n == 0; // once a piece does not fit, nothing more is written
    while (left > 0) {
        char esc[8];
        const char *piece = esc;
        uint32_t cp = 0;
        size_t k = utf8_decode(p, left, &cp), plen;
        if (k == 0 || cp < 0x20 || cp == 0x7F) {
            plen = (size_t)snprintf(esc, sizeof esc, "\\x%02x", p[0]);
            k = 1;
        } else if (cp >= 0x80 && cp <= 0x9F) {
            plen = (size_t)snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
        } else {
            piece = (const char *)p;
            plen = k;
        }
        if (!cut && written + plen < n) {
            memcpy(buf + written, piece, plen);
            written += plen;
        } else {
            cut = true;
        }
        total += plen;
        p += k;
        left -= k;
    }
    if (buf && n > 0) buf[written] = 0;
    return total;
}

char *utf8_escaped(const char *s)
{
    size_t len = utf8_escape(NULL, 0, s);
    char *out = malloc(len + 1);
    if (out) utf8_escape(out, len + 1, s);
    return out;
}
