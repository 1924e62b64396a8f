/* numparse — the one parser for numbers given as text: command-line values of
 * sweep-worker, sweepctl and sweepd, and sweepd's config file values.
 *
 * Every function takes NAME, what the value is called where the user wrote it
 * ("--threads", "workers", "JOB"), and the text S. The whole of S must be the
 * number: no leading or trailing blanks or other characters, not empty.
 * Integers are decimal; a value that does not fit the type is out of range
 * (never wrapped). On failure ERR (when non-NULL) holds one sentence, the
 * same wording for every value of a kind, whatever was wrong with it:
 *
 *   --threads: expected an integer from 1 to 1024, got "abc"
 *   JOB: expected an integer >= 1, got "0"          (HI is the type's maximum)
 *   kill_grace: expected a number from 0 to 86400, got "inf"
 *   socket_mode: expected an octal number from 0 to 0777, got "999"
 *   allow_uids: expected a comma-separated list of integers from 0 to 2147483647, got "1,bob"
 *
 * Return values: 0 with *OUT set; ERR_INVALID when S is not a number of the
 * kind at all (empty, junk, trailing junk, a sign on an unsigned value);
 * ERR_RANGE when it is one but lies outside [LO, HI] or beyond the type
 * (also inf and nan for doubles). *OUT is untouched on failure. */
#ifndef SWEEP_NUMPARSE_H
#define SWEEP_NUMPARSE_H

#include <stddef.h>

/* A decimal int in [LO, HI]. */
int numparse_int(const char *name, const char *s, int lo, int hi, int *out, char *err,
                 size_t errlen);
/* A decimal long long in [LO, HI]. */
int numparse_long(const char *name, const char *s, long long lo, long long hi, long long *out,
                  char *err, size_t errlen);
/* A decimal size_t in [LO, HI]; no sign is accepted ("-1" is not a size). */
int numparse_size(const char *name, const char *s, size_t lo, size_t hi, size_t *out, char *err,
                  size_t errlen);
/* A finite double in [LO, HI] (strtod syntax: "0.5", "1e-3"); inf and nan are
 * out of range. */
int numparse_double(const char *name, const char *s, double lo, double hi, double *out, char *err,
                    size_t errlen);
/* Octal digits only (file permission bits such as "0660"), at most HI. */
int numparse_octal(const char *name, const char *s, unsigned hi, unsigned *out, char *err,
                   size_t errlen);
/* A list of decimal integers in [LO, HI], separated by commas (blanks around
 * them allowed), at least one and at most MAX, into OUT[0..*N). Empty items
 * ("1,,2") and more than MAX items are errors (ERR_INVALID, ERR_RANGE). */
int numparse_list(const char *name, const char *s, long long lo, long long hi, long long *out,
                  size_t max, size_t *n, char *err, size_t errlen);

#endif
