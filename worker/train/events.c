/* events — writes the worker's event lines (see events.h). One process-wide
 * stream; the worker is single-threaded where it emits. */
#include "events.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "log.h"
#include "timeutil.h"
#include "utf8.h"
#include "worker_cmds.h"

static FILE *ev_out;        // the event stream (stdout unless a test says otherwise)
static double ev_t0;        // time_mono() at events_init
static int ev_write_failed; // set after the first failed write, so it is logged once

void events_init(FILE *out)
{
    ev_out = out ? out : stdout;
    ev_t0 = time_mono();
    ev_write_failed = 0;
}

double events_elapsed(void)
{
    return time_mono() - ev_t0;
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
    line[len] = '\0';
    int rc = 0;
    /* One buffer for the line and its newline so the write is a single call. */
    char *buf = malloc(len + 2);
    if (!buf) {
        free(line);
        return ERR_NOMEM;
    }
    memcpy(buf, line, len);
    buf[len] = '\n';
    free(line);
    if (fwrite(buf, 1, len + 1, ev_out) != len + 1 || fflush(ev_out) != 0) {
        if (!ev_write_failed) log_warn("cannot write events to stdout: %s", strerror(errno));
        ev_write_failed = 1;
        clearerr(ev_out);
        rc = ERR_IO;
    }
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
