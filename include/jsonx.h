/* jsonx — strict, typed access to jansson values with error paths.
 *
 * Every getter takes the path of the containing object (e.g. "space" or
 * "job.model", "" for the root) and on failure writes a message naming the full
 * path of the value at fault and what was wrong, for example
 *   space.lr[2]: expected a number, got "abc"
 *   model.input_size: expected an integer, got 3.5
 *   fixed.optimiser: unknown key
 * Return values: 0 when found and valid, JX_ABSENT (1) when the key is absent
 * (or JSON null, for getters given allow_null) and not required, or a negative
 * error code (ERR_TYPE, ERR_RANGE, ERR_NOTFOUND for a missing required key,
 * ERR_UNKNOWN_KEY). Output parameters are untouched unless 0 is returned.
 * Returned strings and values are borrowed from the object. */
#ifndef SWEEP_JSONX_H
#define SWEEP_JSONX_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JX_ABSENT 1

/* Writes "path.key" (or "key" when PATH is empty) into BUF. */
void jx_path_key(char *buf, size_t n, const char *path, const char *key);
/* Writes "path[i]" into BUF. */
void jx_path_index(char *buf, size_t n, const char *path, size_t i);
/* Describes V for messages: a string quoted, numbers as written, "an object",
 * "an array", "null", "true"/"false". Truncated to fit. */
void jx_describe(const json_t *v, char *buf, size_t n);

/* Value checks: V itself, at full path PATH. */
int jx_as_number(const json_t *v, const char *path, double *out, char *msg, size_t msglen);
/* An integer: a JSON integer, or a real with no fractional part; within [lo, hi]. */
int jx_as_int(const json_t *v, const char *path, int64_t lo, int64_t hi, int64_t *out, char *msg,
              size_t msglen);
int jx_as_bool(const json_t *v, const char *path, bool *out, char *msg, size_t msglen);
int jx_as_string(const json_t *v, const char *path, const char **out, char *msg, size_t msglen);
/* Checks that STR is one of the NULL-terminated CHOICES; returns its index or
 * a negative code ("path: expected one of sgd, adam, got \"x\""). */
int jx_as_enum(const json_t *v, const char *path, const char *const *choices, char *msg,
               size_t msglen);

/* Member getters on OBJ (which must be an object) at PATH. */
int jx_get_number(const json_t *obj, const char *path, const char *key, bool required, double *out,
                  char *msg, size_t msglen);
int jx_get_int(const json_t *obj, const char *path, const char *key, bool required, int64_t lo,
               int64_t hi, int64_t *out, char *msg, size_t msglen);
int jx_get_bool(const json_t *obj, const char *path, const char *key, bool required, bool *out,
                char *msg, size_t msglen);
/* With ALLOW_NULL, JSON null counts as absent. */
int jx_get_string(const json_t *obj, const char *path, const char *key, bool required,
                  bool allow_null, const char **out, char *msg, size_t msglen);
int jx_get_object(const json_t *obj, const char *path, const char *key, bool required, json_t **out,
                  char *msg, size_t msglen);
int jx_get_array(const json_t *obj, const char *path, const char *key, bool required, json_t **out,
                 char *msg, size_t msglen);

/* Fails with ERR_UNKNOWN_KEY naming the first key of OBJ (in sorted order, so
 * the message is stable) that is not in the NULL-terminated ALLOWED list,
 * with the nearest allowed key when it looks like a typo (jx_unknown_key). */
int jx_check_keys(const json_t *obj, const char *path, const char *const *allowed, char *msg,
                  size_t msglen);

/* The name of the NULL-terminated list KNOWN nearest to KEY, when KEY looks
 * like a typo of it: at most 1 edit (insert, delete, substitute, or swap two
 * neighbours) for a KEY of up to 4 bytes, 2 up to 8, 3 beyond; the first of
 * equally near names. NULL when none is that near (or KEY is 64 bytes or
 * longer). The returned string is KNOWN's. */
const char *jx_nearest(const char *key, const char *const *known);
/* MSG = "FULL: unknown key", plus "; did you mean NAME?" when
 * jx_nearest(KEY, KNOWN) finds one (FULL is KEY's full path, e.g.
 * "fixed.epoch"). Returns ERR_UNKNOWN_KEY. */
int jx_unknown_key(const char *full, const char *key, const char *const *known, char *msg,
                   size_t msglen);

/* Parses TEXT (LEN bytes) as one JSON value; rejects NaN/Infinity literals and
 * duplicate keys. Returns a new reference or NULL with "line L column C: ..." in msg. */
json_t *jx_parse(const char *text, size_t len, char *msg, size_t msglen);
/* Serialises V compactly on one line with keys in insertion order; caller frees. */
char *jx_dump_line(const json_t *v);

#endif
