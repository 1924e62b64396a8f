/* utf8 — strict UTF-8 decoding shared by the daemon, the worker and sweepctl
 * (common/utf8.c).
 *
 * "Valid" means RFC 3629 UTF-8: no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF. Class folder names must be valid
 * (README.md "Data sets"). utf8_escape is the one function that makes a
 * foreign string (a job or class name, a message) printable: sweepctl prints
 * every such string through it, and the worker uses it to name a folder that
 * is not valid UTF-8 in a message. */
#ifndef SWEEP_UTF8_H
#define SWEEP_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decodes the character at S (N bytes available, N >= 1). Returns its length
 * in bytes (1..4) and its code point in *CP, or 0 when S does not start with
 * a valid, complete UTF-8 sequence (*CP untouched). */
size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* True when the NUL-terminated string S is valid UTF-8. */
bool utf8_valid(const char *s);

/* Makes the foreign string S (from a job, a data set, a worker or the daemon)
 * safe to print on a terminal (README.md "Terminal output"): valid UTF-8
 * printable text is kept as it is; C0 controls (newline, CR, tab and ESC
 * included), DEL and every byte that is not part of valid UTF-8 become
 * "\xHH" (two lowercase hex digits); C1 controls U+0080..U+009F (U+009B is a
 * one-character CSI) become "\u00HH". Backslashes are kept, so escaping twice
 * changes nothing. Writes at most N-1 bytes and a NUL into BUF (N 0 or BUF
 * NULL: nothing), cut only between whole characters or escapes; returns the
 * length of the whole escaped text, like snprintf. */
size_t utf8_escape(char *buf, size_t n, const char *s);
/* utf8_escape into a new string (caller frees); NULL when out of memory. */
char *utf8_escaped(const char *s);

#endif
