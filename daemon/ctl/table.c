/* ctl_table — aligned text tables and the small formatters sweepctl prints
 * with (durations, metric values, progress bars, ETA). Tables look like the
 * `sqlite3 -column` output users already read: a header, dashes, then rows,
 * columns two spaces apart, numbers right-aligned. Every string that came
 * from elsewhere (a job, a data set, a worker, the daemon) goes through
 * utf8_escape before it is printed, so none can move the cursor, clear
 * the screen or break a table's lines. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "errors.h"
#include "grow.h"
#include "utf8.h"

struct ctl_table {
    int ncols;      // number of columns
    char **headers; // ncols header strings (owned)
    char *align;    // ncols letters 'l'/'r' (owned)
    char **cells;   // rows * ncols cell strings, NULL for empty (owned)
    size_t rows;    // rows started
    size_t cap;     // rows allocated in cells
    int next;       // index of the next cell in the current row
};

size_t ctl_utf8_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) w++;
    return w;
}

ctl_table *ctl_table_new(int ncols, const char *const *headers, const char *align)
{
    ctl_table *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->ncols = ncols;
    t->headers = calloc((size_t)ncols, sizeof *t->headers);
    t->align = calloc((size_t)ncols + 1, 1);
    if (!t->headers || !t->align) goto fail;
    for (int c = 0; c < ncols; c++) {
        t->headers[c] = utf8_escaped(headers[c]);
        if (!t->headers[c]) goto fail;
        t->align[c] = (align && c < (int)strlen(align) && align[c] == 'r') ? 'r' : 'l';
    }
    t->next = ncols;
    return t;
fail:
    ctl_table_free(t);
    return NULL;
}

void ctl_table_free(ctl_table *t)
{
    if (!t) return;
    if (t->headers)
        for (int c = 0; c < t->ncols; c++)
            free(t->headers[c]);
    free(t->headers);
    free(t->align);
    for (size_t i = 0; i < t->rows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
}

int ctl_table_row(ctl_table *t)
{
    char **nc = grow_array(t->cells, t->rows + 1, &t->cap, (size_t)t->ncols * sizeof *nc, 16);
    if (!nc) return ERR_NOMEM;
    t->cells = nc;
    memset(t->cells + t->rows * (size_t)t->ncols, 0, (size_t)t->ncols * sizeof *t->cells);
    t->rows++;
    t->next = 0;
    return 0;
}

int ctl_table_cell(ctl_table *t, const char *fmt, ...)
{
    if (t->rows == 0 || t->next >= t->ncols) return 0;
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) return ERR_NOMEM;
    char *e = utf8_escaped(s); // cells show foreign strings: escaped for the terminal
    free(s);
    if (!e) return ERR_NOMEM;
    t->cells[(t->rows - 1) * (size_t)t->ncols + (size_t)t->next++] = e;
    return 0;
}

size_t ctl_table_rows(const ctl_table *t)
{
    return t->rows;
}

/* Appends S padded to WIDTH (left or right aligned) to the growing line. */
static char *put_cell(char *p, const char *s, size_t width, char align, bool last)
{
    size_t w = ctl_utf8_width(s), pad = width > w ? width - w : 0;
    if (align == 'r') {
        memset(p, ' ', pad);
        p += pad;
    }
    size_t len = strlen(s);
    memcpy(p, s, len);
    p += len;
    if (align != 'r' && !last) {
        memset(p, ' ', pad);
        p += pad;
    }
    return p;
}

char *ctl_table_render(const ctl_table *t)
{
    size_t nc = (size_t)t->ncols;
    size_t *width = calloc(nc ? nc : 1, sizeof *width);
    if (!width) return NULL;
    size_t bytes = 1;
    for (size_t c = 0; c < nc; c++) {
        width[c] = ctl_utf8_width(t->headers[c]);
        bytes += strlen(t->headers[c]);
    }
    for (size_t r = 0; r < t->rows; r++)
        for (size_t c = 0; c < nc; c++) {
            const char *s = t->cells[r * nc + c];
            if (!s) continue;
            size_t w = ctl_utf8_width(s);
            if (w > width[c]) width[c] = w;
            bytes += strlen(s);
        }
    size_t line = 1;
    for (size_t c = 0; c < nc; c++)
        line += width[c] + 2;
    /* Every line is at most `line` columns plus the extra bytes of multibyte
     * characters, which `bytes` over-covers. */
    size_t total = (t->rows + 2) * line + bytes + 16;
    char *out = malloc(total), *p = out;
    if (!out) {
        free(width);
        return NULL;
    }
    for (size_t r = 0; r < t->rows + 2; r++) {
        char *start = p;
        for (size_t c = 0; c < nc; c++) {
            if (c) {
                memcpy(p, "  ", 2);
                p += 2;
            }
            bool last = c + 1 == nc;
            if (r == 0) {
                p = put_cell(p, t->headers[c], width[c], t->align[c], last);
            } else if (r == 1) {
                memset(p, '-', width[c]);
                p += width[c];
            } else {
                const char *s = t->cells[(r - 2) * nc + c];
                p = put_cell(p, s ? s : "", width[c], t->align[c], last);
            }
        }
        while (p > start && p[-1] == ' ')
            p--;
        *p++ = '\n';
    }
    *p = 0;
    free(width);
    return out;
}

char *ctl_fmt_duration(char *buf, size_t n, double s)
{
    if (!isfinite(s) || s < 0) {
        snprintf(buf, n, "-");
        return buf;
    }
    long long v = (long long)(s + 0.5);
    if (s < 9.95)
        snprintf(buf, n, "%.1fs", s);
    else if (v < 60)
        snprintf(buf, n, "%llds", v);
    else if (v < 3600)
        snprintf(buf, n, "%lldm%02llds", v / 60, v % 60);
    else if (v < 86400)
        snprintf(buf, n, "%lldh%02lldm", v / 3600, (v % 3600) / 60);
    else
        snprintf(buf, n, "%lldd%02lldh", v / 86400, (v % 86400) / 3600);
    return buf;
}

char *ctl_fmt_json(char *buf, size_t n, const json_t *v)
{
    if (!v || json_is_null(v)) {
        snprintf(buf, n, "-");
    } else if (json_is_integer(v)) {
        snprintf(buf, n, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        double d = json_real_value(v), a = fabs(d);
        if (d == 0)
            snprintf(buf, n, "0");
        else if (a < 1e-3 || a >= 1e6)
            snprintf(buf, n, "%.3g", d);
        else if (a < 10)
            snprintf(buf, n, "%.4f", d);
        else if (a < 1000)
            snprintf(buf, n, "%.2f", d);
        else
            snprintf(buf, n, "%.0f", d);
    } else if (json_is_string(v)) {
        utf8_escape(buf, n, json_string_value(v));
    } else if (json_is_true(v)) {
        snprintf(buf, n, "yes");
    } else if (json_is_false(v)) {
        snprintf(buf, n, "no");
    } else {
        char *s = json_dumps(v, JSON_COMPACT);
        utf8_escape(buf, n, s ? s : "?");
        free(s);
    }
    return buf;
}

char *ctl_fmt_bar(char *buf, size_t n, int width, double frac)
{
    if (n < (size_t)width + 3 || width < 1) {
        if (n) buf[0] = 0;
        return buf;
    }
    if (!(frac >= 0)) frac = 0;
    if (frac > 1) frac = 1;
    int full = (int)(frac * width + 1e-9);
    char *p = buf;
    *p++ = '[';
    for (int i = 0; i < width; i++) {
        if (i < full)
            *p++ = '=';
        else if (i == full && frac > 0)
            *p++ = '>';
        else
            *p++ = ' ';
    }
    *p++ = ']';
    *p = 0;
    return buf;
}

double ctl_eta(int done_trials, double done_seconds, double remaining_work, int parallel)
{
    if (done_trials <= 0 || !(done_seconds >= 0)) return -1;
    if (remaining_work <= 0) return 0;
    if (parallel < 1) parallel = 1;
    double per_trial = done_seconds / done_trials;
    /* Work spread evenly over the slots; the mean of finished trials stands
     * in for the unknown length of the rest. */
    return per_trial * remaining_work / parallel;
}
