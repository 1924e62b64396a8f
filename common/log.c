/* log — the process-wide logger behind include/log.h.
 *
 * Each line is formatted completely in a stack buffer and written with a
 * single write(2) while holding a mutex, so lines from several threads never
 * interleave, and O_APPEND keeps them whole even when several processes share
 * the file. Control characters in a message (a newline in a client-supplied
 * name, say) are replaced by spaces so that one call is always one line.
 * log_reopen() opens the path again and swaps the descriptor, which is what
 * logrotate expects after SIGHUP; if the open fails the old file stays. */
#include "log.h"

#include "errors.h"
#include "timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define LOG_LINE_MAX 8192

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -1; // the open log file, or -1 for stderr
static char *log_path;  // path of the open log file (owned), or NULL
static atomic_int log_level_cur = LOGL_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};
static const char *const level_tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR", "OFF  "};

static int open_log_file(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

int log_open(const char *path, char *msg, size_t msglen)
{
    if (!path) {
        log_close();
        return 0;
    }
    char *copy = strdup(path);
    if (!copy) return err_set(msg, msglen, ERR_NOMEM, "log: out of memory");
    int fd = open_log_file(path);
    if (fd < 0) {
        int e = errno;
        free(copy);
        return err_set_errno(msg, msglen, ERR_IO, e, "cannot open log file %s", path);
    }
    pthread_mutex_lock(&log_mu);
    int old = log_fd;
    char *old_path = log_path;
    log_fd = fd;
    log_path = copy;
    pthread_mutex_unlock(&log_mu);
    if (old >= 0) close(old);
    free(old_path);
    return 0;
}

int log_reopen(void)
{
    pthread_mutex_lock(&log_mu);
    if (!log_path) {
        pthread_mutex_unlock(&log_mu);
        return 0;
    }
    int fd = open_log_file(log_path);
    if (fd < 0) {
        int e = errno;
        pthread_mutex_unlock(&log_mu);
        log_error("cannot reopen log file: %s", strerror(e));
        return ERR_IO;
    }
    int old = log_fd;
    log_fd = fd;
    pthread_mutex_unlock(&log_mu);
    if (old >= 0) close(old);
    return 0;
}

void log_close(void)
{
    pthread_mutex_lock(&log_mu);
    int old = log_fd;
    char *old_path = log_path;
    log_fd = -1;
    log_path = NULL;
    pthread_mutex_unlock(&log_mu);
    if (old >= 0) close(old);
    free(old_path);
}

void log_set_level(log_level level)
{
    if (level < LOGL_DEBUG || level > LOGL_OFF) level = LOGL_INFO;
    atomic_store(&log_level_cur, (int)level);
}

log_level log_get_level(void)
{
    return (log_level)atomic_load(&log_level_cur);
}

int log_level_parse(const char *s, log_level *out)
{
    if (!s) return ERR_INVALID;
    for (int i = LOGL_DEBUG; i <= LOGL_OFF; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            if (out) *out = (log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        if (out) *out = LOGL_WARN;
        return 0;
    }
    return ERR_INVALID;
}

const char *log_level_name(log_level level)
{
    if (level < LOGL_DEBUG || level > LOGL_OFF) return "unknown";
    return level_names[level];
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return; /* nowhere left to report a logging failure */
        }
        p += w;
        n -= (size_t)w;
    }
}

static void log_vwrite(log_level level, const char *file, int line, const char *fmt, va_list ap)
{
    char buf[LOG_LINE_MAX];
    char ts[40];
    time_now_iso(ts, sizeof ts);
    const char *base = file ? strrchr(file, '/') : NULL;
    base = base ? base + 1 : (file ? file : "?");
    int lv = (level >= LOGL_DEBUG && level < LOGL_OFF) ? (int)level : LOGL_ERROR;
    int head = snprintf(buf, sizeof buf, "%s %s %s:%d ", ts, level_tags[lv], base, line);
    if (head < 0) return;
    if ((size_t)head >= sizeof buf - 2) head = (int)sizeof buf - 2;
    size_t room = sizeof buf - (size_t)head - 1; /* keep one byte for "\n" */
    int body = vsnprintf(buf + head, room, fmt, ap);
    size_t len;
    if (body < 0) {
        len = (size_t)head;
    } else if ((size_t)body >= room) {
        len = sizeof buf - 1 - 1;
        memcpy(buf + len - 3, "...", 3);
    } else {
        len = (size_t)head + (size_t)body;
    }
    for (size_t i = (size_t)head; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c < 0x20 && c != '\t') buf[i] = ' ';
    }
    while (len > (size_t)head && buf[len - 1] == ' ')
        len--;
    buf[len++] = '\n';

    pthread_mutex_lock(&log_mu);
    write_all(log_fd >= 0 ? log_fd : STDERR_FILENO, buf, len);
    pthread_mutex_unlock(&log_mu);
}

void log_write(log_level level, const char *file, int line, const char *fmt, ...)
{
    if (level >= LOGL_OFF || (int)level < atomic_load(&log_level_cur)) return;
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, file, line, fmt, ap);
    va_end(ap);
}

_Noreturn void sweep_assert_fail(const char *expr, const char *file, int line)
{
    /* Written whatever the level, to the log and (when that is a file) to
     * stderr as well, so the reason is seen next to the core dump. */
    char ts[40];
    time_now_iso(ts, sizeof ts);
    const char *base = file ? strrchr(file, '/') : NULL;
    base = base ? base + 1 : (file ? file : "?");
    char buf[1200];
    int n = snprintf(buf, sizeof buf, "%s ERROR %s:%d assertion failed: %s\n", ts, base, line,
                     expr ? expr : "?");
    if (n > 0) {
        if ((size_t)n >= sizeof buf) {
            n = (int)sizeof buf - 1;
            buf[n - 1] = '\n';
        }
        pthread_mutex_lock(&log_mu);
        int fd = log_fd >= 0 ? log_fd : STDERR_FILENO;
        write_all(fd, buf, (size_t)n);
        if (fd != STDERR_FILENO) write_all(STDERR_FILENO, buf, (size_t)n);
        pthread_mutex_unlock(&log_mu);
    }
    abort();
}
