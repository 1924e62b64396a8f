/* errors — the one list of error codes used across sweepd.
 *
 * Functions return 0 on success or one of these negative codes. Where a person
 * needs the reason, the caller passes a message buffer (char *msg, size_t
 * msglen) that the callee fills with a complete sentence naming the file, key
 * or value at fault; err_set() formats it and returns the code so a callee can
 * write `return err_set(msg, msglen, ERR_INVALID, "space.lr: ...");`. */
#ifndef SWEEP_ERRORS_H
#define SWEEP_ERRORS_H

#include <stddef.h>

#define SWEEP_ERRORS(X)                                                                            \
    X(ERR_NOMEM, -1, "nomem", "out of memory")                                                     \
    X(ERR_IO, -2, "io", "input/output error")                                                      \
    X(ERR_PARSE, -3, "parse", "malformed input")                                                   \
    X(ERR_INVALID, -4, "invalid", "invalid value")                                                 \
    X(ERR_NOTFOUND, -5, "not_found", "not found")                                                  \
    X(ERR_RANGE, -6, "range", "value out of range")                                                \
    X(ERR_EXISTS, -7, "exists", "already exists")                                                  \
    X(ERR_BUSY, -8, "busy", "resource busy")                                                       \
    X(ERR_TOOBIG, -9, "too_big", "too large")                                                      \
    X(ERR_MODEL, -10, "model", "model error")                                                      \
    X(ERR_DATA, -11, "data", "data error")                                                         \
    X(ERR_DB, -12, "db", "database error")                                                         \
    X(ERR_STATE, -13, "state", "invalid state")                                                    \
    X(ERR_PERM, -14, "permission", "permission denied")                                            \
    X(ERR_UNKNOWN_KEY, -15, "unknown_key", "unknown key")                                          \
    X(ERR_TYPE, -16, "type", "wrong type")                                                         \
    X(ERR_INTERRUPTED, -17, "interrupted", "interrupted")                                          \
    X(ERR_DIVERGED, -18, "diverged", "loss is not finite")                                         \
    X(ERR_INTERNAL, -19, "internal", "internal error")                                             \
    X(ERR_PROTO, -20, "protocol", "protocol error")                                                \
    X(ERR_NOSPACE, -21, "no_space", "no space left on device")

enum sweep_error {
#define SWEEP_ERR_ENUM(sym, val, name, text) sym = val,
    SWEEP_ERRORS(SWEEP_ERR_ENUM)
#undef SWEEP_ERR_ENUM
};

/* Human text for CODE ("invalid value"); "success" for 0, "unknown error" otherwise. */
const char *err_str(int code);
/* Short machine name for CODE ("invalid"), used in protocol replies. */
const char *err_name(int code);
/* Formats FMT into MSG (when MSG is non-NULL and MSGLEN > 0, truncating
 * safely) and returns CODE. */
int err_set(char *msg, size_t msglen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Cuts a UTF-8 sequence left incomplete at the end of the LEN bytes of BUF
 * (text truncated to fit a buffer) by ending the string before it. err_set
 * does this when its message does not fit. */
void err_trim_utf8(char *buf, size_t len);
/* Like err_set, but appends ": <strerror(errnum)>". */
int err_set_errno(char *msg, size_t msglen, int code, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
