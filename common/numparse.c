/* numparse — numbers from text for command-line and config values, with one
 * error wording (numparse.h). Integers go through one core, parse_digits,
 * that reads an optional sign and decimal digits into a magnitude with its
 * own overflow check, so no strtol quirk (leading blanks, "0x", a silent wrap
 * of "-1" into an unsigned) can slip through. */
#include "numparse.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

/* Longest part of a value quoted back in a message. */
#define NUMPARSE_QUOTE 80

/* Reads the whole of S as [sign] digits in base BASE (8 or 10): *NEG and the
 * magnitude *MAG. ERR_INVALID for anything else, ERR_RANGE when the magnitude
 * does not fit in 64 bits. A sign is accepted only when SIGNED_OK. */
static int parse_digits(const char *s, int base, bool signed_ok, bool *neg, uint64_t *mag)
{
    if (!s) return ERR_INVALID;
    const char *p = s;
    *neg = false;
    if (signed_ok && (*p == '-' || *p == '+')) *neg = *p++ == '-';
    if (!*p) return ERR_INVALID;
    uint64_t v = 0;
    bool overflow = false;
    for (; *p; p++) {
        if (*p < '0' || *p >= '0' + base) return ERR_INVALID;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / (unsigned)base)
            overflow = true;
        else
            v = v * (unsigned)base + d;
    }
    *mag = v;
    return overflow ? ERR_RANGE : 0;
}

/* A signed decimal into *OUT: ERR_RANGE beyond long long. */
static int parse_decimal(const char *s, long long *out)
{
    bool neg;
    uint64_t mag;
    int rc = parse_digits(s, 10, true, &neg, &mag);
    if (rc) return rc;
    if (neg ? mag > (uint64_t)LLONG_MAX + 1 : mag > (uint64_t)LLONG_MAX) return ERR_RANGE;
    *out = neg ? (mag == (uint64_t)LLONG_MAX + 1 ? LLONG_MIN : -(long long)mag) : (long long)mag;
    return 0;
}

/* The one message for an integer value NAME = S that is not in [LO, HI]
 * (HI NULL: no upper bound but the type's, "an integer >= LO"). Returns RC. */
static int int_error(int rc, const char *name, const char *s, const char *lo, const char *hi,
                     char *err, size_t errlen)
{
    if (!hi)
        return err_set(err, errlen, rc, "%s: expected an integer >= %s, got \"%.*s\"", name, lo,
                       NUMPARSE_QUOTE, s ? s : "");
    return err_set(err, errlen, rc, "%s: expected an integer from %s to %s, got \"%.*s\"", name, lo,
                   hi, NUMPARSE_QUOTE, s ? s : "");
}

/* The core of numparse_long and numparse_int: a decimal in [LO, HI], with
 * the message when it is not; TYPE_MAX is the largest value of the caller's
 * type (an HI equal to it is no bound worth naming). */
static int parse_signed(const char *name, const char *s, long long lo, long long hi,
                        long long type_max, long long *out, char *err, size_t errlen)
{
    long long v;
    int rc = parse_decimal(s, &v);
    if (!rc && (v < lo || v > hi)) rc = ERR_RANGE;
    if (!rc) {
        *out = v;
        return 0;
    }
    char l[24], h[24];
    snprintf(l, sizeof l, "%lld", lo);
    snprintf(h, sizeof h, "%lld", hi);
    return int_error(rc, name, s, l, hi == type_max ? NULL : h, err, errlen);
}

int numparse_long(const char *name, const char *s, long long lo, long long hi, long long *out,
                  char *err, size_t errlen)
{
    return parse_signed(name, s, lo, hi, LLONG_MAX, out, err, errlen);
}

int numparse_int(const char *name, const char *s, int lo, int hi, int *out, char *err,
                 size_t errlen)
{
    long long v;
    int rc = parse_signed(name, s, lo, hi, INT_MAX, &v, err, errlen);
    if (!rc) *out = (int)v;
    return rc;
}

int numparse_size(const char *name, const char *s, size_t lo, size_t hi, size_t *out, char *err,
                  size_t errlen)
{
    bool neg;
    uint64_t mag;
    int rc = parse_digits(s, 10, false, &neg, &mag);
    if (!rc && (mag < lo || mag > hi)) rc = ERR_RANGE;
    if (rc) {
        char l[24], h[24];
        snprintf(l, sizeof l, "%zu", lo);
        snprintf(h, sizeof h, "%zu", hi);
        return int_error(rc, name, s, l, hi == SIZE_MAX ? NULL : h, err, errlen);
    }
    *out = (size_t)mag;
    return 0;
}

int numparse_octal(const char *name, const char *s, unsigned hi, unsigned *out, char *err,
                   size_t errlen)
{
    bool neg;
    uint64_t mag;
    int rc = parse_digits(s, 8, false, &neg, &mag);
    if (!rc && mag > hi) rc = ERR_RANGE;
    if (rc)
        return err_set(err, errlen, rc, "%s: expected an octal number from 0 to 0%o, got \"%.*s\"",
                       name, hi, NUMPARSE_QUOTE, s ? s : "");
    *out = (unsigned)mag;
    return 0;
}

int numparse_double(const char *name, const char *s, double lo, double hi, double *out, char *err,
                    size_t errlen)
{
    int rc = ERR_INVALID;
    double v = 0;
    /* strtod skips leading blanks and reads hex floats; neither is a plain number. */
    if (s && *s && !strchr(" \t\n\v\f\r", *s) && !strpbrk(s, "xX")) {
        char *end;
        errno = 0;
        v = strtod(s, &end);
        if (end != s && !*end)
            rc = errno == ERANGE || !isfinite(v) || v < lo || v > hi ? ERR_RANGE : 0;
    }
    if (rc)
        return err_set(err, errlen, rc, "%s: expected a number from %.15g to %.15g, got \"%.*s\"",
                       name, lo, hi, NUMPARSE_QUOTE, s ? s : "");
    *out = v;
    return 0;
}

int numparse_list(const char *name, const char *s, long long lo, long long hi, long long *out,
                  size_t max, size_t *n, char *err, size_t errlen)
{
    char item[32];
    size_t count = 0;
    int rc = s ? 0 : ERR_INVALID;
    for (const char *p = s; !rc;) {
        while (*p == ' ' || *p == '\t')
            p++;
        size_t len = strcspn(p, ",");
        const char *next = p[len] ? p + len + 1 : NULL;
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        long long v = 0;
        if (!len || len >= sizeof item) {
            rc = len ? ERR_RANGE : ERR_INVALID;
        } else {
            memcpy(item, p, len);
            item[len] = 0;
            rc = parse_decimal(item, &v);
            if (!rc && (v < lo || v > hi)) rc = ERR_RANGE;
            if (!rc && count == max) rc = ERR_RANGE;
        }
        if (!rc) out[count++] = v;
        if (!next) break;
        p = next;
    }
    if (rc)
        return err_set(err, errlen, rc,
                       "%s: expected a comma-separated list of integers from %lld to %lld, got "
                       "\"%.*s\"",
                       name, lo, hi, NUMPARSE_QUOTE, s ? s : "");
    *n = count;
    return 0;
}
