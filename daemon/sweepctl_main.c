/* sweepctl — command-line client of sweepd (SPEC.md "sweepctl").
 *
 * Parses the command line (ctl_args.c), builds the request, sends it over the
 * daemon's Unix socket and prints the reply as a table (ctl_render.c) or, with
 * --json, as the raw reply line. `watch` has its own loop (ctl_watch.c).
 * Exit status: 0 success, 1 error reply, 2 usage error, 3 daemon unreachable. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "errors.h"

/* Reads all of PATH into a new NUL-terminated buffer; NULL with the reason in
 * MSG. Caller frees. */
static char *read_file(const char *path, size_t *len, char *msg, size_t msglen)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        snprintf(msg, msglen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    int err = ferror(f);
    if (f != stdin) fclose(f);
    if (!buf) {
        snprintf(msg, msglen, "%s: out of memory", path);
        return NULL;
    }
    if (err) {
        snprintf(msg, msglen, "cannot read %s: read error", path);
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Loads and syntax-checks the job file; the daemon validates the content.
 * Returns the request line {"op":"submit","job":<the file's text>} with the
 * file's own bytes (so numbers reach the daemon exactly as written), or NULL
 * after printing why. Caller frees. */
static char *submit_line(const char *path)
{
    char msg[512];
    size_t len;
    char *text = read_file(path, &len, msg, sizeof msg);
    if (!text) {
        fprintf(stderr, "sweepctl: %s\n", msg);
        return NULL;
    }
    json_error_t e;
    json_t *job = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
    if (!job) {
        fprintf(stderr, "sweepctl: %s:%d:%d: %s\n", path, e.line, e.column, e.text);
        free(text);
        return NULL;
    }
    bool is_obj = json_is_object(job);
    json_decref(job);
    if (!is_obj) {
        fprintf(stderr, "sweepctl: %s: a job must be a JSON object ({...})\n", path);
        free(text);
        return NULL;
    }
    /* Valid JSON has line breaks only between tokens: they become spaces. */
    for (size_t i = 0; i < len; i++)
        if (text[i] == '\n' || text[i] == '\r') text[i] = ' ';
    char *line = NULL;
    if (asprintf(&line, "{\"op\":\"submit\",\"job\":%s}", text) < 0) line = NULL;
    free(text);
    if (!line) fprintf(stderr, "sweepctl: out of memory\n");
    return line;
}

static json_t *build_request(const ctl_args *a)
{
    /* The protocol has no "list": it is the daemon-wide status, shown as
     * the jobs table alone. */
    const char *op = a->cmd == CTL_CMD_LIST ? "status" : ctl_command_name(a->cmd);
    json_t *req = json_pack("{s:s}", "op", op);
    if (!req) return NULL;
    switch (a->cmd) {
    case CTL_CMD_STATUS:
        if (a->id > 0) json_object_set_new(req, "job", json_integer(a->id));
        break;
    case CTL_CMD_CANCEL:
    case CTL_CMD_WATCH:
        json_object_set_new(req, "job", json_integer(a->id));
        break;
    case CTL_CMD_BEST:
        json_object_set_new(req, "job", json_integer(a->id));
        json_object_set_new(req, "limit", json_integer(a->limit));
        break;
    case CTL_CMD_TRIAL:
        json_object_set_new(req, "id", json_integer(a->id));
        break;
    default:
        break;
    }
    return req;
}

int main(int argc, char **argv)
{
    ctl_args a;
    char msg[512];
    if (ctl_parse_args(&a, argc, argv, getenv("SWEEPD_SOCKET"), msg, sizeof msg) < 0) {
        fprintf(stderr, "sweepctl: %s\n", msg);
        if (a.cmd != CTL_CMD_NONE)
            ctl_usage(stderr, a.cmd);
        else
            fprintf(stderr, "Run 'sweepctl --help' for the commands.\n");
        return CTL_EXIT_USAGE;
    }
    if (a.help) {
        ctl_usage(stdout, a.cmd);
        return CTL_EXIT_OK;
    }
    if (a.cmd == CTL_CMD_WATCH) {
        return ctl_watch(a.socket_path, a.id, isatty(STDOUT_FILENO), a.json, stdout);
    }
    char *line = NULL;
    if (a.cmd == CTL_CMD_SUBMIT) {
        line = submit_line(a.file);
        if (!line) return CTL_EXIT_USAGE;
    } else {
        json_t *req = build_request(&a);
        line = req ? json_dumps(req, JSON_COMPACT) : NULL;
        json_decref(req);
        if (!line) {
            fprintf(stderr, "sweepctl: out of memory\n");
            return CTL_EXIT_ERROR;
        }
    }
    json_t *reply = NULL;
    char *raw = NULL;
    int rc = ctl_request_line(a.socket_path, line, &reply, &raw, msg, sizeof msg);
    free(line);
    if (rc == CTL_EXIT_UNREACHABLE) {
        ctl_print_unreachable(stderr, a.socket_path, msg);
        return rc;
    }
    bool ok = ctl_reply_ok(reply);
    if (a.json) {
        printf("%s\n", raw);
    } else if (ok) {
        if (ctl_render(stdout, a.cmd, reply) < 0) {
            fprintf(stderr, "sweepctl: out of memory\n");
            json_decref(reply);
            free(raw);
            return CTL_EXIT_ERROR;
        }
    }
    if (!ok) ctl_print_error(stderr, reply);
    json_decref(reply);
    free(raw);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "sweepctl: writing the output failed: %s\n", strerror(errno));
        return CTL_EXIT_ERROR;
    }
    return ok ? CTL_EXIT_OK : CTL_EXIT_ERROR;
}
