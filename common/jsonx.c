/* jsonx — strict typed access to jansson values, with messages that name the
 * full path of the value at fault, and a compact one-line serialiser.
 *
 * Type rules: a number is a JSON integer or real (never a boolean); an integer
 * is a JSON integer or a real without fractional part; JSON null is a value of
 * its own type and fails every typed check, except in jx_get_string with
 * allow_null, where null means "absent". For a required key with allow_null the
 * key must be present but may be null (e.g. model.weights: null), which then
 * returns JX_ABSENT.
 *
 * jx_dump_line writes reals in the shortest form that reads back to the same
 * double (0.1, not 0.10000000000000001), so stored parameters look as the
 * user wrote them and still round-trip exactly. */
#include "jsonx.h"

#include "errors.h"
#include "grow.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DESC_MAX 96

void jx_path_key(char *buf, size_t n, const char *path, const char *key)
{
    if (!buf || n == 0) return;
    int w;
    if (!path || !*path)
        w = snprintf(buf, n, "%s", key ? key : "");
    else
        w = snprintf(buf, n, "%s.%s", path, key ? key : "");
    if (w >= 0 && (size_t)w >= n) err_trim_utf8(buf, n - 1);
}

void jx_path_index(char *buf, size_t n, const char *path, size_t i)
{
    if (!buf || n == 0) return;
    snprintf(buf, n, "%s[%zu]", path ? path : "", i);
}

/* Shortest "%.*g" text of D that strtod reads back as D; always contains a
 * '.', 'e', "inf" or "nan" so that it reads as a real. */
static void format_real(double d, char *buf, size_t n)
{
    if (n == 0) return;
    if (!isfinite(d)) {
        snprintf(buf, n, "%s", isnan(d) ? "nan" : (d > 0 ? "inf" : "-inf"));
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) break;
    }
    if (!strpbrk(buf, ".eEn")) {
        size_t l = strlen(buf);
        if (l + 2 < n) memcpy(buf + l, ".0", 3);
    }
}

/* Appends the JSON text of string S (quoted, escaped) to a growing buffer. */
typedef struct {
    char *p;    // text so far (owned), NUL-terminated when not failed
    size_t len; // bytes used
    size_t cap; // bytes allocated
    int failed; // non-zero after an allocation failure
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n)
{
    if (b->failed) return;
    char *np = grow_array(b->p, b->len + n + 1, &b->cap, 1, 128);
    if (!np) {
        b->failed = 1;
        return;
    }
    b->p = np;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(strbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_string(strbuf *b, const char *s, size_t n)
{
    sb_put(b, "\"", 1);
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char ubuf[8];
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                snprintf(ubuf, sizeof ubuf, "\\u%04x", c);
                esc = ubuf;
            }
        }
        if (esc) {
            sb_put(b, s + start, i - start);
            sb_puts(b, esc);
            start = i + 1;
        }
    }
    sb_put(b, s + start, n - start);
    sb_put(b, "\"", 1);
}

static void sb_value(strbuf *b, const json_t *v, int depth)
{
    char num[40];
    if (depth > 2048) { /* jansson's parser limits depth far below this */
        b->failed = 1;
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *m;
        int first = 1;
        sb_put(b, "{", 1);
        json_object_foreach((json_t *)v, k, m)
        {
            if (!first) sb_put(b, ",", 1);
            first = 0;
            sb_string(b, k, strlen(k));
            sb_put(b, ":", 1);
            sb_value(b, m, depth + 1);
        }
        sb_put(b, "}", 1);
        break;
    }
    case JSON_ARRAY: {
        sb_put(b, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) sb_put(b, ",", 1);
            sb_value(b, json_array_get(v, i), depth + 1);
        }
        sb_put(b, "]", 1);
        break;
    }
    case JSON_STRING:
        sb_string(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        sb_puts(b, num);
        break;
    case JSON_REAL:
        format_real(json_real_value(v), num, sizeof num);
        sb_puts(b, num);
        break;
    case JSON_TRUE:
        sb_puts(b, "true");
        break;
    case JSON_FALSE:
        sb_puts(b, "false");
        break;
    case JSON_NULL:
        sb_puts(b, "null");
        break;
    }
}

char *jx_dump_line(const json_t *v)
{
    if (!v) return NULL;
    strbuf b = {0};
    sb_value(&b, v, 0);
    if (b.failed || !b.p) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* What jx_describe says of a value whose type alone describes it. */
static const char *const type_words[] = {
    [JSON_OBJECT] = "an object", [JSON_ARRAY] = "an array", [JSON_TRUE] = "true",
    [JSON_FALSE] = "false",      [JSON_NULL] = "null",
};

void jx_describe(const json_t *v, char *buf, size_t n)
{
    if (!buf || n == 0) return;
    if (!v) {
        snprintf(buf, n, "nothing");
        return;
    }
    json_type t = json_typeof(v);
    if ((size_t)t < sizeof type_words / sizeof *type_words && type_words[t]) {
        snprintf(buf, n, "%s", type_words[t]);
        return;
    }
    switch (t) {
    case JSON_INTEGER:
        snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return;
    case JSON_REAL: {
        char num[40];
        format_real(json_real_value(v), num, sizeof num);
        snprintf(buf, n, "%s", num);
        return;
    }
    case JSON_STRING: {
        strbuf b = {0};
        sb_string(&b, json_string_value(v), json_string_length(v));
        if (b.failed || !b.p) {
            snprintf(buf, n, "a string");
        } else if (b.len < n) {
            memcpy(buf, b.p, b.len + 1);
        } else if (n >= 6) {
            /* Keep the start, end with ..." so it still reads as a quoted string. */
            size_t keep = n - 5;
            memcpy(buf, b.p, keep);
            /* Do not cut a UTF-8 sequence or an escape in half. */
            while (keep > 1 && ((unsigned char)buf[keep - 1] & 0xC0) == 0x80)
                keep--;
            if (keep > 1 && ((unsigned char)buf[keep - 1] & 0xC0) == 0xC0) keep--;
            for (size_t j = keep > 6 ? keep - 6 : 1; j < keep; j++) {
                if (buf[j] == '\\') {
                    keep = j;
                    break;
                }
            }
            memcpy(buf + keep, "...\"", 5);
        } else {
            snprintf(buf, n, "%s", n > 1 ? "\"" : "");
        }
        free(b.p);
        return;
    }
    default: // described by type_words
        break;
    }
    snprintf(buf, n, "a value");
}

static int type_error(const json_t *v, const char *path, const char *expected, char *msg,
                      size_t msglen)
{
    char d[DESC_MAX];
    jx_describe(v, d, sizeof d);
    return err_set(msg, msglen, ERR_TYPE, "%s: expected %s, got %s", path ? path : "", expected, d);
}

int jx_as_number(const json_t *v, const char *path, double *out, char *msg, size_t msglen)
{
    if (!v || !json_is_number(v)) return type_error(v, path, "a number", msg, msglen);
    double d = json_number_value(v);
    if (!isfinite(d)) {
        return err_set(msg, msglen, ERR_RANGE, "%s: expected a finite number", path ? path : "");
    }
    if (out) *out = d;
    return 0;
}

int jx_as_int(const json_t *v, const char *path, int64_t lo, int64_t hi, int64_t *out, char *msg,
              size_t msglen)
{
    int64_t iv;
    if (v && json_is_integer(v)) {
        iv = (int64_t)json_integer_value(v);
    } else if (v && json_is_real(v)) {
        double d = json_real_value(v);
        /* 2^63 is exactly representable; anything at or beyond it cannot be an int64. */
        if (!isfinite(d) || d != floor(d) || d >= 9223372036854775808.0 ||
            d < -9223372036854775808.0)
            return type_error(v, path, "an integer", msg, msglen);
        iv = (int64_t)d;
    } else {
        return type_error(v, path, "an integer", msg, msglen);
    }
    if (iv < lo || iv > hi) {
        return err_set(msg, msglen, ERR_RANGE,
                       "%s: expected an integer from %" PRId64 " to %" PRId64 ", got %" PRId64,
                       path ? path : "", lo, hi, iv);
    }
    if (out) *out = iv;
    return 0;
}

int jx_as_bool(const json_t *v, const char *path, bool *out, char *msg, size_t msglen)
{
    if (!v || !json_is_boolean(v)) return type_error(v, path, "true or false", msg, msglen);
    if (out) *out = json_is_true(v);
    return 0;
}

int jx_as_string(const json_t *v, const char *path, const char **out, char *msg, size_t msglen)
{
    if (!v || !json_is_string(v)) return type_error(v, path, "a string", msg, msglen);
    if (out) *out = json_string_value(v);
    return 0;
}

int jx_as_enum(const json_t *v, const char *path, const char *const *choices, char *msg,
               size_t msglen)
{
    if (v && json_is_string(v)) {
        const char *s = json_string_value(v);
        for (int i = 0; choices && choices[i]; i++)
            if (strcmp(s, choices[i]) == 0) return i;
    }
    char list[512];
    size_t used = 0;
    list[0] = '\0';
    for (int i = 0; choices && choices[i]; i++) {
        int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", choices[i]);
        if (w < 0 || (size_t)w >= sizeof list - used) break;
        used += (size_t)w;
    }
    char d[DESC_MAX];
    jx_describe(v, d, sizeof d);
    return err_set(msg, msglen, (v && json_is_string(v)) ? ERR_RANGE : ERR_TYPE,
                   "%s: expected one of %s, got %s", path ? path : "", list, d);
}

#define PATH_MAX_LEN 512

/* A member found by member(). */
typedef struct {
    json_t *v;               // the value (borrowed from the object)
    char full[PATH_MAX_LEN]; // its full path for messages ("data.train")
} found;

/* Looks up KEY in OBJ. Returns 0 with *F set, JX_ABSENT when absent and not
 * required, or a negative code. */
static int member(const json_t *obj, const char *path, const char *key, bool required, found *f,
                  char *msg, size_t msglen)
{
    jx_path_key(f->full, sizeof f->full, path, key);
    if (!obj || !json_is_object(obj)) {
        return type_error(obj, (path && *path) ? path : "(root)", "an object", msg, msglen);
    }
    f->v = json_object_get(obj, key);
    if (!f->v) {
        if (required)
            return err_set(msg, msglen, ERR_NOTFOUND, "%s: required key is missing", f->full);
        return JX_ABSENT;
    }
    return 0;
}

int jx_get_number(const json_t *obj, const char *path, const char *key, bool required, double *out,
                  char *msg, size_t msglen)
{
    found f;
    int rc = member(obj, path, key, required, &f, msg, msglen);
    return rc ? rc : jx_as_number(f.v, f.full, out, msg, msglen);
}

int jx_get_int(const json_t *obj, const char *path, const char *key, bool required, int64_t lo,
               int64_t hi, int64_t *out, char *msg, size_t msglen)
{
    found f;
    int rc = member(obj, path, key, required, &f, msg, msglen);
    return rc ? rc : jx_as_int(f.v, f.full, lo, hi, out, msg, msglen);
}

int jx_get_bool(const json_t *obj, const char *path, const char *key, bool required, bool *out,
                char *msg, size_t msglen)
{
    found f;
    int rc = member(obj, path, key, required, &f, msg, msglen);
    return rc ? rc : jx_as_bool(f.v, f.full, out, msg, msglen);
}

int jx_get_string(const json_t *obj, const char *path, const char *key, bool required,
                  bool allow_null, const char **out, char *msg, size_t msglen)
{
    found f;
    int rc = member(obj, path, key, required, &f, msg, msglen);
    if (rc) return rc;
    if (allow_null && json_is_null(f.v)) return JX_ABSENT;
    return jx_as_string(f.v, f.full, out, msg, msglen);
}

/* Member KEY of OBJ, which must be a container of TYPE (EXPECTED names it in
 * the message: "an object"); *OUT (when non-NULL) is borrowed from OBJ. */
static int get_container(const json_t *obj, const char *path, const char *key, bool required,
                         json_type type, const char *expected, json_t **out, char *msg,
                         size_t msglen)
{
    found f;
    int rc = member(obj, path, key, required, &f, msg, msglen);
    if (rc) return rc;
    if (json_typeof(f.v) != type) return type_error(f.v, f.full, expected, msg, msglen);
    if (out) *out = f.v;
    return 0;
}

int jx_get_object(const json_t *obj, const char *path, const char *key, bool required, json_t **out,
                  char *msg, size_t msglen)
{
    return get_container(obj, path, key, required, JSON_OBJECT, "an object", out, msg, msglen);
}

int jx_get_array(const json_t *obj, const char *path, const char *key, bool required, json_t **out,
                 char *msg, size_t msglen)
{
    return get_container(obj, path, key, required, JSON_ARRAY, "an array", out, msg, msglen);
}

int jx_check_keys(const json_t *obj, const char *path, const char *const *allowed, char *msg,
                  size_t msglen)
{
    if (!obj || !json_is_object(obj)) {
        return type_error(obj, (path && *path) ? path : "(root)", "an object", msg, msglen);
    }
    const char *worst = NULL;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        bool ok = false;
        for (int i = 0; allowed && allowed[i]; i++) {
            if (strcmp(k, allowed[i]) == 0) {
                ok = true;
                break;
            }
        }
        if (!ok && (!worst || strcmp(k, worst) < 0)) worst = k;
    }
    if (!worst) return 0;
    char full[PATH_MAX_LEN];
    jx_path_key(full, sizeof full, path, worst);
    return jx_unknown_key(full, worst, allowed, msg, msglen);
}

#define NEAR_MAX 64 // keys this long or longer get no suggestion

/* Optimal string alignment distance between A and B (both < NEAR_MAX bytes):
 * insertions, deletions, substitutions and swaps of two neighbours. */
static int edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    int d[NEAR_MAX + 1][NEAR_MAX + 1];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int best = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[n][m];
}

const char *jx_nearest(const char *key, const char *const *known)
{
    size_t len = strlen(key);
    if (len >= NEAR_MAX || !known) return NULL;
    int limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;
    const char *best = NULL;
    int best_d = limit + 1;
    for (size_t i = 0; known[i]; i++) {
        if (strlen(known[i]) >= NEAR_MAX) continue;
        int dist = edit_distance(key, known[i]);
        if (dist < best_d) {
            best_d = dist;
            best = known[i];
        }
    }
    return best;
}

int jx_unknown_key(const char *full, const char *key, const char *const *known, char *msg,
                   size_t msglen)
{
    const char *near = jx_nearest(key, known);
    if (near)
        return err_set(msg, msglen, ERR_UNKNOWN_KEY, "%s: unknown key; did you mean %s?", full,
                       near);
    return err_set(msg, msglen, ERR_UNKNOWN_KEY, "%s: unknown key", full);
}

json_t *jx_parse(const char *text, size_t len, char *msg, size_t msglen)
{
    if (!text) {
        err_set(msg, msglen, ERR_PARSE, "no input");
        return NULL;
    }
    json_error_t e;
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
    if (!v) {
        /* jansson quotes the input near the error and may cut it inside a
         * multi-byte character; replies carry this text in JSON strings, which
         * must be valid UTF-8, so non-ASCII bytes become '?'. */
        for (char *p = e.text; *p; p++)
            if ((unsigned char)*p >= 0x80) *p = '?';
        err_set(msg, msglen, ERR_PARSE, "line %d column %d: %s", e.line, e.column, e.text);
        return NULL;
    }
    return v;
}
