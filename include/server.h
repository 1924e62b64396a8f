/* server — the Unix socket of sweepd: connections, NDJSON framing, the
 * protocol ops (SPEC.md "Socket protocol"; reply shapes in README.md) and the
 * `watch` streams.
 *
 * Each connection has an explicit state (open -> closing) changed through one
 * setter that logs. A request line is at most 1 MiB; longer lines, bad JSON,
 * unknown ops get an error reply and the connection stays usable. Replies not
 * yet taken by a slow client are capped per connection (max_write_queue):
 * beyond it the connection is dropped, so a client that never reads cannot
 * grow the daemon's memory. The peer's uid (SO_PEERCRED) is checked against
 * allow_uids and stored as the job's submitted_uid. */
#ifndef SWEEP_SERVER_H
#define SWEEP_SERVER_H

#include <stddef.h>

#include "scheduler.h"

#define SWEEPD_VERSION "0.1.0"
#define SERVER_MAX_LINE (1u << 20)

/* Checks PATH before binding: absent is fine; a socket nobody listens on is
 * removed (stale); a live socket or a non-socket file is an error. */
int server_check_socket(const char *path, char *msg, size_t msglen);
/* Binds and listens on d->cfg->socket_path (mode cfg->socket_mode) and hooks
 * watch events into D. */
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
