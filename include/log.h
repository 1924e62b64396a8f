/* log — leveled, timestamped log lines to stderr or a file.
 *
 * One process-wide logger. Lines look like
 *   2026-11-28T15:04:05.123Z INFO  sched.c:120 trial 17 queued -> running
 * log_reopen() re-opens the file (for SIGHUP after logrotate); it is safe to
 * call from the event loop, not from a signal handler. Before log_open() or
 * with a NULL path everything goes to stderr. Thread-safe per line. */
#ifndef SWEEP_LOG_H
#define SWEEP_LOG_H

#include <stddef.h>

typedef enum { LOGL_DEBUG = 0, LOGL_INFO, LOGL_WARN, LOGL_ERROR, LOGL_OFF } log_level;

/* Sends lines to PATH (appending, created 0640) or to stderr when PATH is
 * NULL. Returns 0, or a negative error code with the reason in msg. */
int log_open(const char *path, char *msg, size_t msglen);
/* Closes and re-opens the current file; no-op for stderr. 0 or negative. */
int log_reopen(void);
/* Closes the file; later lines go to stderr. */
void log_close(void);
void log_set_level(log_level level);
log_level log_get_level(void);
/* Parses "debug", "info", "warn"/"warning", "error", "off" (any case).
 * Returns 0, or a negative code when S is none of them. */
int log_level_parse(const char *s, log_level *out);
const char *log_level_name(log_level level);
/* Writes one line if LEVEL is at or above the current level. */
void log_write(log_level level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_debug(...) log_write(LOGL_DEBUG, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...) log_write(LOGL_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn(...) log_write(LOGL_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define log_error(...) log_write(LOGL_ERROR, __FILE__, __LINE__, __VA_ARGS__)

/* Invariant check: on failure logs file:line and the expression, then aborts.
 * Only for programming errors, never for client input. */
#define SWEEP_ASSERT(cond)                                                                         \
    do {                                                                                           \
        if (!(cond)) sweep_assert_fail(#cond, __FILE__, __LINE__);                                 \
    } while (0)
_Noreturn void sweep_assert_fail(const char *expr, const char *file, int line);

#endif
