/* server — the Unix socket of sweepd: connections, NDJSON framing, the
 * protocol ops (README.md "Contract"; reply shapes in README.md) and the
 * `watch` streams.
 *
 * Each connection has an explicit state (open -> closing) changed through one
 * setter that logs. A request line is at most 1 MiB; longer lines, bad JSON,
 * unknown ops get an error reply and the connection stays usable. Replies not
 * yet taken by a slow client are capped per connection (max_write_queue):
 * beyond it the connection is dropped, so a client that never reads cannot
 * grow the daemon's memory. The peer's uid (SO_PEERCRED) is checked against
 * allow_uids and stored as the job's submitted_uid. A connection that sends
 * no complete request line for idle_timeout seconds (bytes of an unfinished
 * line do not count; `watch` streams are exempt) gets one idle_timeout error
 * line and is closed, checked at every tick of the daemon's timer. */
#ifndef SWEEP_SERVER_H
#define SWEEP_SERVER_H

#include <jansson.h>
#include <stddef.h>

#include "scheduler.h"

#define SWEEPD_VERSION "0.1.0"
#define SERVER_MAX_LINE (1u << 20)
/* Smallest listen backlog (server_start uses max_connections when larger;
 * the kernel caps it at net.core.somaxconn). */
#define SERVER_LISTEN_BACKLOG 1024
/* Trials per chunk of a streamed `status JOB` reply (server.c, "Long replies
 * stream"): small enough that building one takes a few milliseconds. */
#define SERVER_STREAM_ROWS 256
/* Streamed replies one connection may have waiting behind the one being
 * written (each holds a database snapshot); past it the client is dropped. */
#define SERVER_HELD_STREAMS 4

/* ---- request validation ------------------------------------------------
 *
 * The part of answering a request line that needs no daemon: framing limit,
 * JSON, shape, op and the keys the op takes. handle_request() in server.c
 * runs it in two steps with the access check (allow_uids) between them, in
 * this order, each failure answered with {"ok":false,"error":{"code":CODE,
 * "message":MSG}} and nothing else done:
 *   1. line over SERVER_MAX_LINE    -> line_too_long
 *   2. not JSON (jx_parse)          -> invalid_json
 *   3. not an object                -> invalid_request
 *   4. "op" missing or not a string -> invalid_request
 *      (access check: peer not in allow_uids -> forbidden)
 *   5. op not one of the 8 below    -> unknown_op (naming the op)
 *   6. a key the op does not take   -> invalid_request (naming the first such
 *      key in sorted order and listing the op's keys)
 * Messages are complete sentences and valid UTF-8 (bytes of client text that
 * would not be are replaced with '?', as the reply would carry them). */

/* The protocol ops (README.md "Contract"), in the order the unknown_op
 * message lists them. */
typedef enum {
    SERVER_OP_PING = 0,
    SERVER_OP_SUBMIT,
    SERVER_OP_STATUS,
    SERVER_OP_CANCEL,
    SERVER_OP_BEST,
    SERVER_OP_TRIAL,
    SERVER_OP_WATCH,
    SERVER_OP_SHUTDOWN,
    SERVER_N_OPS // number of ops
} server_op;

/* Size of the message buffer the daemon passes (and the one to pass for the
 * same text: shorter buffers truncate it). */
#define SERVER_MSG_MAX 600

/* The op's protocol name ("ping"...), or NULL when OP is out of range. */
const char *server_op_name(int op);
/* The NULL-terminated list of request keys OP takes ("op" first), or NULL
 * when OP is out of range. Static storage. */
const char *const *server_op_keys(int op);

/* Steps 1-4. LINE is the raw request line of LEN bytes without its "\n";
 * LINE NULL means the framer dropped a line of LEN bytes as too long (LEN is
 * only quoted in the message). On success returns 0, sets *REQ to a new
 * reference to the request object (the caller owns it: json_decref) and
 * *OP_NAME to its "op" string (borrowed from *REQ, valid while *REQ lives).
 * On failure returns ERR_TOOBIG (line_too_long), ERR_PARSE (invalid_json) or
 * ERR_INVALID (invalid_request), sets *CODE to that protocol error code
 * (static string), writes the message into MSG and sets *REQ = NULL,
 * *OP_NAME = NULL. */
int server_request_read(const char *line, size_t len, json_t **req, const char **op_name,
                        const char **code, char *msg, size_t msglen);
/* Steps 5-6 on REQ, a request that passed server_request_read (steps 3-4 are
 * checked again, so any JSON value is safe to pass). On success returns 0
 * and sets *OP. On failure returns ERR_NOTFOUND (unknown_op) or ERR_INVALID
 * (invalid_request), sets *CODE and writes MSG; *OP is untouched. REQ is
 * borrowed. */
int server_request_op(const json_t *req, server_op *op, const char **code, char *msg,
                      size_t msglen);
/* Steps 1-6 in one call (no access check): server_request_read then
 * server_request_op. On success returns 0 with *REQ (owned by the caller:
 * json_decref) and *OP set; on failure returns the negative code, *REQ =
 * NULL, *CODE and MSG set exactly as the two calls would set them. */
int server_request_parse(const char *line, size_t len, json_t **req, server_op *op,
                         const char **code, char *msg, size_t msglen);

/* Checks PATH before binding: absent is fine; a socket nobody listens on is
 * removed (stale); a live socket or a non-socket file is an error. */
int server_check_socket(const char *path, char *msg, size_t msglen);
/* Binds and listens on d->cfg->socket_path (mode cfg->socket_mode) and hooks
 * watch events and the idle-connection check (d->on_tick) into D. */
int server_start(sweepd *d, char *msg, size_t msglen);
/* Stops accepting, removes the socket file, ends watch streams with a
 * "shutdown" line and closes every connection once its replies are sent. */
void server_stop(sweepd *d);
/* Closes every remaining connection at once (after server_stop, when the
 * daemon has finished stopping and some client never read its replies). */
void server_close_all(sweepd *d);
/* Frees the server state once the loop has closed its handles. */
void server_free(sweepd *d);

#endif
