/* sweepctl — command-line client of sweepd (README.md "Contract").
 *
 * Parses the command line (ctl_args.c), builds the request, sends it over the
 * daemon's Unix socket and prints the reply as a table (ctl_render.c) or, with
 * --json, as the raw reply line. `watch` has its own loop (ctl_watch.c); the
 * submit request, with the job's relative paths made absolute, is built by
 * ctl_submit.c; `report` reads the database itself and writes an HTML page
 * (report.c, include/report.h).
 * Exit status: 0 success, 1 error reply, 2 usage error, 3 daemon unreachable. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "errors.h"
#include "report.h"

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
    if (a.cmd == CTL_CMD_REPORT) return ctl_report(&a);
    if (a.cmd == CTL_CMD_WATCH) {
        return ctl_watch(a.socket_path, a.id, isatty(STDOUT_FILENO), a.json, stdout);
    }
    char *line = NULL;
    if (a.cmd == CTL_CMD_SUBMIT) {
        line = ctl_submit_line(a.file, msg, sizeof msg);
        if (!line) {
            fprintf(stderr, "sweepctl: %s\n", msg);
            return CTL_EXIT_USAGE;
        }
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
    if (rc != 0) {
        fprintf(stderr, "sweepctl: %s\n", msg);
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
