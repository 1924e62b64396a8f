/* ctl_conn — sweepctl's side of the socket: a blocking Unix stream connection,
 * requests written as one JSON line, replies framed with ndjson and parsed
 * with jansson. Lines received ahead of the caller wait in a small queue, so a
 * reply followed at once by streamed events loses nothing; they are kept as
 * received so --json can print them byte for byte. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"
#include "errors.h"
#include "jsonx.h"

/* Replies can carry every trial of a large job; the daemon caps requests at
 * 1 MiB, but replies only at this. */
#define CTL_MAX_REPLY (256u << 20)

int ctl_conn_open(ctl_conn *c, const char *path, char *msg, size_t msglen)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return err_set(msg, msglen, ERR_INVALID, "socket path is longer than %zu bytes",
                       sizeof sa.sun_path - 1);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return err_set(msg, msglen, ERR_IO, "%s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        close(fd);
        return err_set(msg, msglen, ERR_IO, "%s", strerror(e));
    }
    c->fd = fd;
    ndjson_init(&c->in, CTL_MAX_REPLY);
    return 0;
}

void ctl_conn_close(ctl_conn *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        ndjson_free(&c->in);
    }
    c->fd = -1;
    for (size_t i = 0; i < c->count; i++)
        free(c->lines[(c->head + i) % c->cap]);
    free(c->lines);
    c->lines = NULL;
    c->head = c->count = c->cap = 0;
}

int ctl_conn_send_line(ctl_conn *c, const char *line, char *msg, size_t msglen)
{
    size_t len = strlen(line);
    struct iovec iov[2] = {{(void *)line, len}, {"\n", 1}};
    size_t left = len + 1;
    while (left > 0) {
        /* MSG_NOSIGNAL: a daemon that goes away mid-request gives EPIPE, not
         * SIGPIPE (which stays default for stdout, so `sweepctl list | head`
         * ends quietly). */
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
        ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            return err_set(msg, msglen, ERR_IO, "sending the request failed: %s", strerror(errno));
        left -= (size_t)n;
        for (int i = 0; i < 2 && n > 0; i++) {
            size_t k = (size_t)n < iov[i].iov_len ? (size_t)n : iov[i].iov_len;
            iov[i].iov_base = (char *)iov[i].iov_base + k;
            iov[i].iov_len -= k;
            n -= (ssize_t)k;
        }
    }
    return 0;
}

int ctl_conn_send(ctl_conn *c, const json_t *req, char *msg, size_t msglen)
{
    char *s = json_dumps(req, JSON_COMPACT);
    if (!s) return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    int rc = ctl_conn_send_line(c, s, msg, msglen);
    free(s);
    return rc;
}

/* True when LINE parses as JSON. */
static bool ctl_line_is_json(const char *line)
{
    json_t *v = json_loads(line, JSON_DECODE_ANY, NULL);
    json_decref(v);
    return v != NULL;
}

static int on_line(void *ud, char *line, size_t len)
{
    ctl_conn *c = ud;
    if (!line) {
        c->bad_line = ERR_TOOBIG;
        snprintf(c->bad_msg, sizeof c->bad_msg, "the daemon sent a line of %zu bytes, over %u", len,
                 CTL_MAX_REPLY);
        return 0;
    }
    if (c->count == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 16;
        char **n = malloc(ncap * sizeof *n);
        if (!n) return ERR_NOMEM;
        for (size_t i = 0; i < c->count; i++)
            n[i] = c->lines[(c->head + i) % c->cap];
        free(c->lines);
        c->lines = n;
        c->cap = ncap;
        c->head = 0;
    }
    char *copy = malloc(len + 1);
    if (!copy) return ERR_NOMEM;
    memcpy(copy, line, len + 1);
    c->lines[(c->head + c->count++) % c->cap] = copy;
    return 0;
}

int ctl_conn_recv(ctl_conn *c, json_t **out, char **raw, int timeout_ms, char *msg, size_t msglen)
{
    char buf[65536];
    for (;;) {
        if (c->count > 0) {
            char *line = c->lines[c->head];
            c->head = (c->head + 1) % c->cap;
            c->count--;
            char m[200];
            json_t *v = jx_parse(line, strlen(line), m, sizeof m);
            if (!v) {
                int rc = err_set(msg, msglen, ERR_PARSE,
                                 "the daemon sent a line that is not JSON (%s): %.80s", m, line);
                free(line);
                return rc;
            }
            *out = v;
            if (raw)
                *raw = line;
            else
                free(line);
            return 0;
        }
        if (c->bad_line) {
            c->bad_line = 0;
            return err_set(msg, msglen, ERR_PARSE, "%s", c->bad_msg);
        }
        if (c->fd < 0) return err_set(msg, msglen, ERR_IO, "the connection is closed");
        if (timeout_ms >= 0) {
            struct pollfd p = {.fd = c->fd, .events = POLLIN};
            int r = poll(&p, 1, timeout_ms);
            if (r < 0 && errno == EINTR) return 1;
            if (r < 0) return err_set(msg, msglen, ERR_IO, "poll: %s", strerror(errno));
            if (r == 0) return 1;
        }
        ssize_t n = read(c->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            if (timeout_ms >= 0) return 1;
            continue;
        }
        if (n < 0)
            return err_set(msg, msglen, ERR_IO, "reading the reply failed: %s", strerror(errno));
        if (n == 0) {
            size_t part = ndjson_pending(&c->in);
            if (part > 0) {
                /* A last line without its newline: take it if it is whole
                 * JSON; otherwise the reply was cut. */
                int rc = ndjson_feed(&c->in, "\n", 1, on_line, c);
                if (rc) return err_set(msg, msglen, ERR_NOMEM, "out of memory");
                if (c->count > 0 && !ctl_line_is_json(c->lines[(c->head + c->count - 1) % c->cap]))
                    return err_set(msg, msglen, ERR_PROTO,
                                   "the daemon closed the connection in the middle of its reply"
                                   " (%zu bytes received); its log says why",
                                   part);
                if (c->count > 0 || c->bad_line) continue;
            }
            return err_set(msg, msglen, ERR_IO, "the daemon closed the connection");
        }
        int rc = ndjson_feed(&c->in, buf, (size_t)n, on_line, c);
        if (rc) return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    }
}

int ctl_request_line(const char *path, const char *line, json_t **out, char **raw, char *msg,
                     size_t msglen)
{
    ctl_conn c;
    char m[256];
    if (ctl_conn_open(&c, path, m, sizeof m) < 0) {
        snprintf(msg, msglen, "%s", m);
        return CTL_EXIT_UNREACHABLE;
    }
    int rc = ctl_conn_send_line(&c, line, m, sizeof m);
    if (rc == 0) rc = ctl_conn_recv(&c, out, raw, -1, m, sizeof m);
    ctl_conn_close(&c);
    if (rc != 0) {
        snprintf(msg, msglen, "%s", m);
        /* A reply that broke off is an error of the reply, not of reaching
         * the daemon: it was there and answered. */
        return rc == ERR_PROTO ? CTL_EXIT_ERROR : CTL_EXIT_UNREACHABLE;
    }
    return 0;
}

int ctl_request(const char *path, const json_t *req, json_t **out, char *msg, size_t msglen)
{
    char *line = json_dumps(req, JSON_COMPACT);
    if (!line) {
        snprintf(msg, msglen, "out of memory");
        return CTL_EXIT_ERROR;
    }
    int rc = ctl_request_line(path, line, out, NULL, msg, msglen);
    free(line);
    return rc;
}

void ctl_print_unreachable(FILE *f, const char *path, const char *reason)
{
    fprintf(f, "sweepctl: cannot reach sweepd at %s: %s. ", path, reason);
    if (strstr(reason, "ermission"))
        fprintf(f, "The socket is group-accessible (mode 0660): is your user in sweepd's "
                   "group? ");
    else if (!strcmp(path, CTL_DEFAULT_SOCKET))
        fprintf(f, "Is it running? Start it with: build/sweepd --state-dir var. ");
    else
        fprintf(f, "Is it running? Start it with: sweepd --socket %s. ", path);
    /* Where the path came from (ctl_parse_args' order), and how to change it. */
    const char *env = getenv("SWEEPD_SOCKET");
    const char *from = !strcmp(path, CTL_DEFAULT_SOCKET) ? "That is the default socket"
                       : env && !strcmp(env, path)       ? "That socket came from $SWEEPD_SOCKET"
                                                         : "That socket came from --socket";
    fprintf(f, "%s; use another with --socket PATH or SWEEPD_SOCKET=PATH\n", from);
}
