/* timeutil — clocks and ISO-8601 UTC text ("2026-11-28T15:04:05.123Z"), the
 * one timestamp format used in logs, the database and protocol replies. */
#include "timeutil.h"

#include "errors.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

double time_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double time_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

char *time_iso8601(char *buf, size_t n, double t)
{
    if (!buf || n == 0) return buf;
    if (!isfinite(t)) t = 0;
    double whole = floor(t);
    /* Milliseconds are truncated, never rounded up into the next second; the
     * half-microsecond slack absorbs binary representation error, so that
     * x.123 (stored as x.12299990...) still prints as .123. */
    int ms = (int)((t - whole) * 1000.0 + 0.0005);
    if (ms < 0) ms = 0;
    if (ms > 999) ms = 999;
    time_t secs = (time_t)whole;
    struct tm tm;
    if (!gmtime_r(&secs, &tm)) {
        snprintf(buf, n, "1970-01-01T00:00:00.000Z");
        return buf;
    }
    snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    return buf;
}

char *time_now_iso(char *buf, size_t n)
{
    return time_iso8601(buf, n, time_wall());
}

/* Reads exactly N decimal digits from *P into *OUT and advances *P. */
static int read_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int expect_char(const char **p, char c)
{
    if (**p != c) return -1;
    (*p)++;
    return 0;
}

int time_parse_iso8601(const char *s, double *out)
{
    if (!s) return ERR_PARSE;
    const char *p = s;
    int Y, M, D, h, m, sec;
    if (read_digits(&p, 4, &Y) || expect_char(&p, '-') || read_digits(&p, 2, &M) ||
        expect_char(&p, '-') || read_digits(&p, 2, &D) || expect_char(&p, 'T') ||
        read_digits(&p, 2, &h) || expect_char(&p, ':') || read_digits(&p, 2, &m) ||
        expect_char(&p, ':') || read_digits(&p, 2, &sec))
        return ERR_PARSE;
    double frac = 0;
    if (*p == '.') {
        p++;
        double scale = 0.1;
        int digits = 0;
        while (isdigit((unsigned char)*p)) {
            if (digits < 9) frac += (*p - '0') * scale;
            scale *= 0.1;
            digits++;
            p++;
        }
        if (digits == 0 || digits > 9) return ERR_PARSE;
    }
    if (expect_char(&p, 'Z') || *p != '\0') return ERR_PARSE;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 59) return ERR_PARSE;

    struct tm tm = {0};
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    /* timegm normalises 2026-02-30 to March 2; a changed day means it was invalid. */
    struct tm back;
    if (!gmtime_r(&t, &back) || back.tm_mday != D || back.tm_mon != M - 1) return ERR_PARSE;
    if (out) *out = (double)t + frac;
    return 0;
}
