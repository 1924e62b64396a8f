/* events — writes the worker's event lines (see events.h). One process-wide
 * stream; the worker is single-threaded where it emits. */
#include "events.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "fileio.h"
#include "log.h"
#include "timeutil.h"
#include "utf8.h"
#include "worker_cmds.h"

static FILE *ev_out;                  // the event stream (stdout unless a test says otherwise)
static double ev_t0;                  // time_mono() at events_init
static int ev_write_failed;           // set after the first failed write, so it is logged once
static bool ev_line_open;             // the stream may end inside a line: the next one starts "\n"
static char ev_name[PATH_MAX];        // the stream's file for messages ("stdout" if unknown)
static char ev_error[PATH_MAX + 160]; // why the last write failed ("" when none did)

/* Names the stream's file (through /proc/self/fd) and notes whether an
 * earlier run left it ending inside a line (a write cut short by a full
 * disk): the first line then starts on a line of its own. */
static void describe_stream(void)
{
    snprintf(ev_name, sizeof ev_name, "stdout");
    int fd = fileno(ev_out);
    if (fd < 0) return;
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, ev_name, sizeof ev_name - 1);
    if (n <= 0 || ev_name[0] != '/') {
        snprintf(ev_name, sizeof ev_name, "stdout");
        return;
    }
    ev_name[n] = '\0';
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) return;
    int rfd = open(link, O_RDONLY | O_CLOEXEC); // stdout itself is write-only
    char last = '\n';
    if (rfd >= 0 && pread(rfd, &last, 1, st.st_size - 1) == 1 && last != '\n') ev_line_open = true;
    if (rfd >= 0) close(rfd);
}

void events_init(FILE *out)
{
    ev_out = out ? out : stdout;
    ev_t0 = time_mono();
    ev_write_failed = 0;
    ev_line_open = false;
    ev_error[0] = '\0';
    describe_stream();
}

double events_elapsed(void)
{
    return time_mono() - ev_t0;
}

const char *events_last_error(void)
{
    return ev_error;
}

/* Writes the N bytes of LINE (a whole line with its newline) in one call
 * where the stream has a file descriptor. 0, ERR_NOSPACE or ERR_IO; on a
 * failure after some bytes the stream is marked as ending inside a line. */
static int write_line(const char *name, const char *line, size_t n)
{
    int rc = 0;
    size_t done = 0;
    int fd = fileno(ev_out);
    errno = 0;
    if (fd >= 0) {
        (void)fflush(ev_out); // nothing else writes there; keeps stdio's buffer empty
        rc = fileio_write_all(fd, line, n, &done);
    } else if (fwrite(line, 1, n, ev_out) != n || fflush(ev_out) != 0) {
        rc = fileio_err_for_errno(errno);
        done = n; // how much got out is unknown: end that line before the next
    }
    if (!rc) {
        ev_line_open = false;
        return 0;
    }
    int e = errno ? errno : EIO;
    if (done > 0) ev_line_open = true;
    clearerr(ev_out);
    snprintf(ev_error, sizeof ev_error, "cannot write the %s event to %s: %s", name, ev_name,
             strerror(e));
    if (!ev_write_failed) log_warn("%s", ev_error);
    ev_write_failed = 1;
    return rc;
}

int events_emit(const char *name, json_t *fields)
{
    if (!ev_out) events_init(NULL);
    json_t *ev = json_object();
    if (!ev) {
        json_decref(fields);
        return ERR_NOMEM;
    }
    double t = floor(events_elapsed() * 1000.0 + 0.5) / 1000.0;
    json_object_set_new(ev, "event", json_string(name));
    json_object_set_new(ev, "t", json_real(t));
    if (fields) {
        const char *key;
        json_t *val;
        json_object_foreach(fields, key, val) json_object_set(ev, key, val);
        json_decref(fields);
    }
    char *line = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    json_decref(ev);
    if (!line) return ERR_NOMEM;
    size_t len = strlen(line);
    /* One buffer for the line and its newline (after a "\n" that ends a line
     * left open) so the write is a single call. */
    size_t lead = ev_line_open ? 1 : 0;
    char *buf = malloc(lead + len + 1);
    if (!buf) {
        free(line);
        return ERR_NOMEM;
    }
    buf[0] = '\n';
    memcpy(buf + lead, line, len);
    buf[lead + len] = '\n';
    free(line);
    int rc = write_line(name, buf, lead + len + 1);
    free(buf);
    return rc;
}

const char *events_code_for_exit(int exit_code)
{
    switch (exit_code) {
    case WEXIT_SPEC:
        return "spec";
    case WEXIT_DATA:
        return "data";
    case WEXIT_MODEL:
        return "model";
    case WEXIT_DIVERGED:
        return "diverged";
    case WEXIT_NOMEM:
        return "nomem";
    case WEXIT_STOPPED:
        return "stopped";
    case WEXIT_NOSPACE:
        return "no_space";
    default:
        return "internal";
    }
}

int events_error(const char *code, int exit_code, const char *message)
{
    /* Every error event carries a message: a missing one is replaced by the
     * code and exit status, and one that is not valid UTF-8 (a folder name in
     * it) is escaped, since JSON strings must be UTF-8. */
    char fallback[96], *escaped = NULL;
    if (!message || !*message) {
        snprintf(fallback, sizeof fallback, "sweep-worker failed (%s, exit code %d)", code,
                 exit_code);
        message = fallback;
    } else if (!utf8_valid(message)) {
        message = escaped = utf8_escaped(message);
        if (!message) message = "sweep-worker failed (the message is not valid UTF-8)";
    }
    json_t *f =
        json_pack("{s:s, s:i, s:s}", "code", code, "exit_code", exit_code, "message", message);
    free(escaped);
    return events_emit("error", f);
}
