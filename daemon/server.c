/* server — sweepd's Unix socket: accepting clients, framing NDJSON requests,
 * answering the protocol ops and streaming `watch` events.
 *
 * Connection state machine: OPEN (reading requests, writing replies) ->
 * DRAINING (no more reads or new replies; replies already queued are being
 * flushed by uv_shutdown) -> CLOSING (handle being closed) -> freed in the
 * close callback. OPEN or DRAINING -> CLOSING directly on errors and when
 * idle (below). conn_set_state() is the only place it changes.
 *
 * Idle connections: each connection has an idle clock (active_at), started at
 * accept and restarted by every complete request line and by every reply line
 * when it is sent and when it has been written in full -- never by the bytes
 * of an unfinished line, so a client trickling a partial line cannot keep its
 * slot. At every tick of the daemon's timer, server_close_idle() closes the
 * connections whose clock is older than idle_timeout, except those streaming
 * a `watch` (after its "end" line the client gets the whole idle_timeout for
 * its next request). Requests are answered synchronously, so a connection
 * waiting for a reply has either got it or is not reading it.
 *
 * Long replies stream. `status JOB` lists every trial of the job, which for a
 * large job is megabytes: it is written as one reply line in chunks of
 * SERVER_STREAM_ROWS trials read from a store cursor (one database snapshot,
 * taken when the request is handled), the next chunk built only when the
 * client has taken the previous one. The loop serves other connections and
 * the timer between chunks; memory stays one chunk per connection whatever
 * the job's size; a client that stops reading stalls only its own reply (and
 * is closed by idle_timeout). Lines for a connection that is streaming (watch
 * events, replies to requests it pipelined) are held back in order behind the
 * stream, within max_write_queue, so the order on the wire stays the order of
 * the requests and events. */
#include "server.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "blas_policy.h"
#include "errors.h"
#include "jobspec.h"
#include "jsonx.h"
#include "log.h"
#include "timeutil.h"

typedef enum { CONN_OPEN = 0, CONN_DRAINING, CONN_CLOSING } conn_state;

struct server;

typedef struct conn {
    uv_pipe_t h;            // the accepted stream
    struct server *srv;     // owner
    ndjson_buf nb;          // request framing
    uid_t uid;              // peer uid (SO_PEERCRED)
    pid_t pid;              // peer pid
    bool allowed;           // uid passes allow_uids
    conn_state state;       // see the state machine above
    int id;                 // for logs
    double active_at;       // time_mono() of accept, the last complete request line, or the
                            // last reply line sent or written in full (the idle clock)
    size_t queued;          // reply bytes handed to libuv and not yet written
    int64_t watch_job;      // job whose events are streamed here, 0 = none
    store_cursor *stream;   // rows of the reply being streamed (owned), NULL = none
    bool stream_first;      // no row of that reply written yet
    const char *finish_why; // conn_finish waiting for the stream and held lines (static), or NULL
    struct held *held_head, *held_tail; // lines held back behind the stream, in order (owned)
    size_t held_bytes;                  // bytes of text in held_*
    int held_streams;                   // held entries that open another streamed reply
    struct conn *next, *prev;           // all connections
} conn;

/* A line held back while its connection streams a reply: plain TEXT, or the
 * opening of another streamed reply (TEXT its head, CUR its rows). */
typedef struct held {
    char *text;        // the line without "\n" (owned)
    store_cursor *cur; // rows to stream after TEXT (owned), NULL for a plain line
    struct held *next; // next in order
} held;

typedef struct server {
    uv_pipe_t listener; // the listening socket
    sweepd *d;          // daemon state
    conn *conns;        // open connections
    int n_conns;        // number of open connections
    int next_id;        // id of the next connection
    bool listening;     // listener not closed yet
} server;

typedef struct {
    uv_write_t req; // the libuv request
    conn *c;        // target connection
    char *text;     // the bytes written (owned)
    size_t len;     // bytes counted in c->queued
    bool chunk;     // a piece of a streamed reply: when written, build the next one
} wreq_t;

static void stream_step(conn *c);
static void conn_finish(conn *c, const char *why);

static const char *const conn_state_names[] = {"open", "draining", "closing"};

static void on_conn_closed(uv_handle_t *h)
{
    conn *c = h->data;
    ndjson_free(&c->nb);
    free(c);
}

/* Drops C's stream and held lines (the connection is closing). */
static void stream_drop(conn *c)
{
    store_cursor_close(c->stream);
    c->stream = NULL;
    while (c->held_head) {
        held *h = c->held_head;
        c->held_head = h->next;
        store_cursor_close(h->cur);
        free(h->text);
        free(h);
    }
    c->held_tail = NULL;
    c->held_bytes = 0;
    c->held_streams = 0;
}

static void conn_set_state(conn *c, conn_state ns, const char *why)
{
    if (c->state == ns) return;
    log_debug("connection %d (uid %u) %s -> %s: %s", c->id, (unsigned)c->uid,
              conn_state_names[c->state], conn_state_names[ns], why);
    c->state = ns;
    if (ns == CONN_DRAINING) {
        c->watch_job = 0;
        uv_read_stop((uv_stream_t *)&c->h);
    } else if (ns == CONN_CLOSING) {
        server *s = c->srv;
        if (c->prev)
            c->prev->next = c->next;
        else
            s->conns = c->next;
        if (c->next) c->next->prev = c->prev;
        c->next = c->prev = NULL;
        s->n_conns--;
        c->watch_job = 0;
        if (c->stream)
            log_warn("connection %d closed in the middle of a streamed reply (%zu rows"
                     " sent): %s",
                     c->id, store_cursor_rows(c->stream), why);
        stream_drop(c);
        if (!uv_is_closing((uv_handle_t *)&c->h)) uv_close((uv_handle_t *)&c->h, on_conn_closed);
    }
}

static void on_write(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    conn *c = w->c;
    c->queued -= w->len;
    if (status == 0) c->active_at = time_mono(); // the client took a whole reply line (or chunk)
    if (status < 0 && status != UV_ECANCELED && c->state != CONN_CLOSING)
        conn_set_state(c, CONN_CLOSING, uv_strerror(status));
    bool next = status == 0 && w->chunk && c->state == CONN_OPEN && c->stream;
    free(w->text);
    free(w);
    if (next) stream_step(c);
}

/* Writes LEN bytes of TEXT (owned), then "\n" when NL. CHUNK: a piece of a
 * streamed reply (on_write builds the next one). Returns 0, or -1 when the
 * connection was closed. */
static int write_out(conn *c, char *text, size_t len, bool nl, bool chunk)
{
    wreq_t *w = malloc(sizeof *w);
    if (!w) {
        free(text);
        conn_set_state(c, CONN_CLOSING, "out of memory");
        return -1;
    }
    w->c = c;
    w->text = text;
    w->len = len + nl;
    w->chunk = chunk;
    static char nlc[] = "\n";
    uv_buf_t bufs[2] = {uv_buf_init(text, (unsigned)len), uv_buf_init(nlc, 1)};
    int rc = uv_write(&w->req, (uv_stream_t *)&c->h, bufs, nl ? 2 : 1, on_write);
    if (rc < 0) {
        free(text);
        free(w);
        conn_set_state(c, CONN_CLOSING, uv_strerror(rc));
        return -1;
    }
    c->queued += w->len;
    c->active_at = time_mono();
    return 0;
}

/* True when LEN more bytes fit in C's max_write_queue; else drops C. */
static bool queue_room(conn *c, size_t len)
{
    if (c->queued + c->held_bytes + len <= c->srv->d->cfg->max_write_queue) return true;
    log_warn("connection %d (uid %u, pid %d) is not reading its replies (%zu bytes"
             " pending); dropping it",
             c->id, (unsigned)c->uid, (int)c->pid, c->queued + c->held_bytes);
    conn_set_state(c, CONN_CLOSING, "write queue over max_write_queue");
    return false;
}

/* Holds TEXT (owned) and CUR (owned, may be NULL) behind C's stream. Each
 * held stream keeps a database snapshot open, so a client may have only
 * SERVER_HELD_STREAMS of them waiting: one that pipelines more without
 * reading is dropped like one that lets max_write_queue overflow. */
static void hold(conn *c, char *text, store_cursor *cur)
{
    size_t len = strlen(text) + 1;
    if (cur && c->held_streams >= SERVER_HELD_STREAMS) {
        log_warn("connection %d (uid %u, pid %d) is not reading its replies (%d long replies"
                 " waiting); dropping it",
                 c->id, (unsigned)c->uid, (int)c->pid, c->held_streams + 1);
        conn_set_state(c, CONN_CLOSING, "too many long replies waiting");
        store_cursor_close(cur);
        free(text);
        return;
    }
    held *h = queue_room(c, len) ? malloc(sizeof *h) : NULL;
    if (!h) {
        if (c->state != CONN_CLOSING) conn_set_state(c, CONN_CLOSING, "out of memory");
        store_cursor_close(cur);
        free(text);
        return;
    }
    *h = (held){.text = text, .cur = cur};
    if (c->held_tail)
        c->held_tail->next = h;
    else
        c->held_head = h;
    c->held_tail = h;
    c->held_bytes += len;
    if (cur) c->held_streams++;
}

/* Sends TEXT (owned, one line without "\n") now, or holds it behind a
 * reply being streamed. */
static void send_text(conn *c, char *text)
{
    if (!text) return;
    if (c->state != CONN_OPEN) {
        free(text);
        return;
    }
    if (c->stream || c->held_head) {
        hold(c, text, NULL);
        return;
    }
    size_t len = strlen(text);
    if (!queue_room(c, len + 1)) {
        free(text);
        return;
    }
    write_out(c, text, len, true, false);
}

/* Writes HEAD (owned) and makes CUR (owned) C's stream, now. */
static void stream_start(conn *c, char *head, store_cursor *cur)
{
    c->stream = cur;
    c->stream_first = true;
    write_out(c, head, strlen(head), false, true);
}

/* Starts streaming a reply: HEAD (owned) is its text up to the rows, CUR
 * (owned) the rows. Held behind a stream already running on C. */
static void stream_begin(conn *c, char *head, store_cursor *cur)
{
    if (c->state != CONN_OPEN) {
        free(head);
        store_cursor_close(cur);
        return;
    }
    if (c->stream || c->held_head) {
        hold(c, head, cur);
        return;
    }
    stream_start(c, head, cur);
}

/* Sends the lines held behind a stream that has just ended, in order, until
 * one opens another stream; then a finish that waited for them. */
static void release_held(conn *c)
{
    while (c->held_head && !c->stream && c->state == CONN_OPEN) {
        held *h = c->held_head;
        c->held_head = h->next;
        if (!c->held_head) c->held_tail = NULL;
        c->held_bytes -= strlen(h->text) + 1;
        if (h->cur) c->held_streams--;
        char *text = h->text;
        store_cursor *cur = h->cur;
        free(h);
        if (cur)
            stream_start(c, text, cur); // the next held lines wait behind it
        else
            write_out(c, text, strlen(text), true, false);
    }
    if (c->finish_why && !c->stream && !c->held_head && c->state == CONN_OPEN) {
        const char *why = c->finish_why;
        c->finish_why = NULL;
        conn_finish(c, why);
    }
}

/* Writes the next chunk of C's streamed reply: up to SERVER_STREAM_ROWS rows,
 * or the end of the reply and then what was held behind it. */
static void stream_step(conn *c)
{
    char msg[256];
    json_t *rows = json_array();
    int n =
        rows ? store_cursor_next(c->stream, rows, SERVER_STREAM_ROWS, msg, sizeof msg) : ERR_NOMEM;
    if (n == ERR_NOMEM && !rows) snprintf(msg, sizeof msg, "out of memory");
    if (n < 0) {
        /* The reply is half written: it cannot become an error reply. The
         * client sees the connection end inside a line and says so. */
        log_error("connection %d: cannot finish the streamed reply: %s", c->id, msg);
        json_decref(rows);
        conn_set_state(c, CONN_CLOSING, "streamed reply failed");
        return;
    }
    if (n == 0) {
        json_decref(rows);
        store_cursor_close(c->stream);
        c->stream = NULL;
        char *tail = strdup("]}");
        if (!tail) {
            conn_set_state(c, CONN_CLOSING, "out of memory");
            return;
        }
        if (write_out(c, tail, 2, true, false) == 0) release_held(c);
        return;
    }
    /* The rows as one array, "[r1,r2,...]": the chunk is its inside, after
     * a comma unless it holds the reply's first row. */
    char *text = jx_dump_line(rows);
    json_decref(rows);
    if (!text) {
        log_error("connection %d: out of memory building a streamed reply", c->id);
        conn_set_state(c, CONN_CLOSING, "out of memory");
        return;
    }
    size_t len = strlen(text) - 1; // without the closing ']'
    if (c->stream_first) {
        memmove(text, text + 1, len); // without the opening '['
        len--;
    } else {
        text[0] = ',';
    }
    c->stream_first = false;
    write_out(c, text, len, false, true);
}

/* The reply sent when a reply cannot be built (json_pack or json_dumps
 * failed: out of memory, or a string that is not UTF-8): the client always
 * gets one line per request, never silence. */
static const char INTERNAL_REPLY[] =
    "{\"ok\":false,\"error\":{\"code\":\"internal\",\"message\":"
    "\"sweepd could not build the reply to this request (see its log)\"}}";

static void send_internal(conn *c, const char *why)
{
    log_error("connection %d: cannot build a reply (%s); sending an internal error", c->id, why);
    char *t = strdup(INTERNAL_REPLY);
    if (t)
        send_text(c, t);
    else
        conn_set_state(c, CONN_CLOSING, "out of memory");
}

/* Sends reply V (reference consumed). A NULL V (the json_pack that built it
 * failed) or a reply that cannot be serialised sends INTERNAL_REPLY. */
static void send_json(conn *c, json_t *v)
{
    if (!v) {
        send_internal(c, "json_pack failed");
        return;
    }
    char *text = jx_dump_line(v);
    json_decref(v);
    if (!text) {
        send_internal(c, "json_dumps failed");
        return;
    }
    send_text(c, text);
}

/* Replaces, in place, every byte of S that is not part of a well-formed
 * UTF-8 sequence with '?', so a message quoting client bytes is a valid
 * JSON string. Returns S. */
static char *utf8_fix(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int n = c < 0x80             ? 0
                : (c & 0xE0) == 0xC0 ? 1
                : (c & 0xF0) == 0xE0 ? 2
                : (c & 0xF8) == 0xF0 ? 3
                                     : -1;
        bool good = n >= 0;
        for (int k = 1; good && k <= n; k++)
            if ((p[k] & 0xC0) != 0x80) good = false;
        if (good && n > 0) {
            /* Reject overlong forms, surrogates and code points past U+10FFFF. */
            unsigned cp = c & (0x3Fu >> n);
            for (int k = 1; k <= n; k++)
                cp = (cp << 6) | (p[k] & 0x3Fu);
            static const unsigned min_cp[4] = {0, 0x80, 0x800, 0x10000};
            if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) good = false;
        }
        if (!good) {
            *p++ = '?';
            continue;
        }
        p += n + 1;
    }
    return s;
}

static void send_error(conn *c, const char *code, const char *message)
{
    char fixed[2048];
    snprintf(fixed, sizeof fixed, "%s", message ? message : "");
    utf8_fix(fixed);
    send_json(c,
              json_pack("{s:b, s:{s:s, s:s}}", "ok", 0, "error", "code", code, "message", fixed));
}

static const char *code_for(int err)
{
    switch (err) {
    case ERR_NOTFOUND:
        return "not_found";
    case ERR_BUSY:
        return "busy";
    case ERR_PERM:
        return "forbidden";
    case ERR_IO:
        return "io";
    default:
        return "internal";
    }
}

/* ---- ops -------------------------------------------------------------- */

static int get_id(conn *c, const json_t *req, const char *key, int64_t *out)
{
    char msg[256];
    int rc = jx_get_int(req, "", key, true, 1, INT64_MAX, out, msg, sizeof msg);
    if (rc) {
        if (rc == JX_ABSENT || rc == ERR_NOTFOUND)
            snprintf(msg, sizeof msg, "%s: missing (a %s id is required)", key,
                     strcmp(key, "id") ? key : "trial");
        send_error(c, "invalid_request", msg);
        return -1;
    }
    return 0;
}

/* Job ID's summary (store_job_summary; the caller owns it), or NULL after
 * sending C the error reply (not_found for an unknown job). */
static json_t *job_summary(conn *c, int64_t id)
{
    char msg[512];
    int err = 0;
    json_t *sum = store_job_summary(c->srv->d->st, id, &err, msg, sizeof msg);
    if (!sum) send_error(c, code_for(err), msg);
    return sum;
}

static void op_ping(conn *c, const json_t *req)
{
    (void)req;
    sweepd *d = c->srv->d;
    send_json(c,
              json_pack("{s:b, s:b, s:s, s:i, s:f}", "ok", 1, "pong", 1, "version", SWEEPD_VERSION,
                        "pid", (int)getpid(), "uptime", time_mono() - d->started));
}

static void op_submit(conn *c, const json_t *req)
{
    sweepd *d = c->srv->d;
    if (d->shutting_down) {
        send_error(c, "shutting_down", "the daemon is shutting down; submit again after restart");
        return;
    }
    json_t *job = json_object_get(req, "job");
    if (!job) {
        send_error(c, "invalid_request", "job: missing (the job spec object)");
        return;
    }
    char msg[1024];
    jobspec js;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t dseed = ((uint64_t)ts.tv_sec * 1000003u + (uint64_t)ts.tv_nsec) % 1000000000u;
    unsigned flags = JOBSPEC_CHECK_PATHS | JOBSPEC_EXPAND;
    if (d->cfg->n_data_roots > 0) flags |= JOBSPEC_ROOTS; // classes counted within the roots
    int rc = jobspec_parse(&js, job, flags, dseed, msg, sizeof msg);
    if (rc == 0) rc = jobspec_absolute_paths(&js, job, msg, sizeof msg);
    if (rc == 0 && d->cfg->n_data_roots > 0) {
        char roots[1024];
        config_roots_text(d->cfg, roots, sizeof roots);
        rc = jobspec_check_roots(&js, job, d->cfg->data_roots, d->cfg->n_data_roots, roots, msg,
                                 sizeof msg);
    }
    if (rc == 0) rc = sched_check_warm_start(d, job, &js, msg, sizeof msg);
    if (rc == 0) // what the files hold: weights header, class lists (inside the roots)
        rc = jobspec_check_files(&js, job, d->cfg->data_roots, d->cfg->n_data_roots, msg,
                                 sizeof msg);
    if (rc) {
        log_info("connection %d: job refused: %s", c->id, msg);
        send_error(c, "invalid_job", msg);
        jobspec_free(&js);
        return;
    }
    char *spec_text = jx_dump_line(job);
    int64_t *ids = malloc((js.n_trials ? js.n_trials : 1) * sizeof *ids);
    int max_parallel = js.max_parallel > 0 ? js.max_parallel : d->cfg->workers;
    double timeout = js.has_trial_timeout ? js.trial_timeout : d->cfg->default_trial_timeout;
    int retries = js.max_retries >= 0 ? js.max_retries : d->cfg->default_max_retries;
    int64_t job_id = 0;
    if (!spec_text || !ids) {
        rc = err_set(msg, sizeof msg, ERR_NOMEM, "out of memory");
    } else {
        rc = store_job_insert(d->st, &js, spec_text, c->uid, max_parallel, timeout, retries,
                              &job_id, ids, msg, sizeof msg);
    }
    if (rc == 0) rc = sched_add_job(d, &js, job_id, ids, c->uid, max_parallel, timeout, retries);
    if (rc) {
        send_error(c, code_for(rc), msg);
    } else {
        /* A job that searches the architecture: every name it lists. */
        char archs[64 * JOBSPEC_MAX_ARCHS] = "";
        for (size_t i = 0; i < js.n_archs; i++) {
            size_t used = strlen(archs);
            snprintf(archs + used, sizeof archs - used, "%s%s", i ? ", " : "", js.archs[i].arch);
        }
        if (js.n_archs == 0) snprintf(archs, sizeof archs, "%s", js.arch);
        log_info("job %lld: model %s (arch from %s), input %d px (from %s)", (long long)job_id,
                 archs, js.arch_from, js.input_size, js.input_size_from);
        send_json(c, json_pack("{s:b, s:I, s:I, s:I, s:s, s:{s:s, s:s, s:i, s:s}}", "ok", 1, "job",
                               (json_int_t)job_id, "trials", (json_int_t)js.trials_total, "seed",
                               (json_int_t)js.seed, "name", js.name, "model", "arch", archs,
                               "arch_from", js.arch_from, "input_size", js.input_size,
                               "input_size_from", js.input_size_from));
    }
    free(spec_text);
    free(ids);
    jobspec_free(&js);
}

/* The kernel policy in DM: "blas_core" (the setting), "blas_kernel" (what
 * workers will run, null = OpenBLAS's own choice) and, when an inherited
 * kernel is below what the CPU supports, "blas_warning". */
static void blas_status(const sweepd_config *cfg, json_t *dm)
{
    blas_cpu cpu;
    blas_cpu_detect(&cpu);
    const char *inh = getenv("OPENBLAS_CORETYPE");
    const char *k = blas_policy_expect(cfg->blas_core, inh, &cpu);
    json_object_set_new(dm, "blas_core", json_string(cfg->blas_core));
    json_object_set_new(dm, "blas_kernel", k ? json_string(k) : json_null());
    char advice[512];
    if (blas_policy_advice(cfg->blas_core, inh, &cpu, advice, sizeof advice))
        json_object_set_new(dm, "blas_warning", json_string(advice));
}

static void op_status(conn *c, const json_t *req)
{
    sweepd *d = c->srv->d;
    char msg[512];
    int err = 0;
    if (json_object_get(req, "job") && !json_is_null(json_object_get(req, "job"))) {
        int64_t id;
        if (get_id(c, req, "job", &id)) return;
        json_t *sum = job_summary(c, id);
        if (!sum) return;
        store_cursor *cur = store_trials_cursor_open(d->st, id, &err, msg, sizeof msg);
        if (!cur) {
            json_decref(sum);
            send_error(c, code_for(err), msg);
            return;
        }
        /* {"ok":true,"job":{...},"trials":[ ...streamed rows... ]} */
        json_t *head = json_pack("{s:b, s:o}", "ok", 1, "job", sum);
        char *ht = head ? jx_dump_line(head) : NULL;
        json_decref(head);
        size_t hl = ht ? strlen(ht) : 0;
        char *text = hl ? malloc(hl + 16) : NULL;
        if (!text) {
            free(ht);
            store_cursor_close(cur);
            send_internal(c, "out of memory");
            return;
        }
        memcpy(text, ht, hl - 1); // without the closing brace
        strcpy(text + hl - 1, ",\"trials\":[");
        free(ht);
        stream_begin(c, text, cur);
        return;
    }
    json_t *jobs = store_jobs(d->st, &err, msg, sizeof msg);
    if (!jobs) {
        send_error(c, code_for(err), msg);
        return;
    }
    size_t q, r;
    sched_totals(d, &q, &r);
    json_t *dm = json_pack(
        "{s:i, s:s, s:f, s:i, s:i, s:I, s:I, s:s, s:s, s:s, s:b}", "pid", (int)getpid(), "version",
        SWEEPD_VERSION, "uptime", time_mono() - d->started, "workers", d->cfg->workers,
        "threads_per_worker", d->cfg->threads_per_worker, "running", (json_int_t)r, "queued",
        (json_int_t)q, "socket", d->cfg->socket_path, "db", d->cfg->db_path, "state_dir",
        d->cfg->state_dir, "shutting_down", d->shutting_down);
    blas_status(d->cfg, dm);
    send_json(c, json_pack("{s:b, s:o, s:o}", "ok", 1, "daemon", dm, "jobs", jobs));
}

static void op_cancel(conn *c, const json_t *req)
{
    sweepd *d = c->srv->d;
    int64_t id;
    if (get_id(c, req, "job", &id)) return;
    sjob *j = sched_find_job(d, id);
    char msg[256];
    if (!j) {
        json_t *sum = job_summary(c, id);
        if (!sum) return;
        snprintf(msg, sizeof msg, "job %lld has already ended (%s)", (long long)id,
                 json_string_value(json_object_get(sum, "state")));
        json_decref(sum);
        send_error(c, "invalid_state", msg);
        return;
    }
    if (c->uid != 0 && c->uid != geteuid() && c->uid != j->uid) {
        snprintf(msg, sizeof msg, "job %lld was submitted by uid %u; uid %u may not cancel it",
                 (long long)id, (unsigned)j->uid, (unsigned)c->uid);
        send_error(c, "forbidden", msg);
        return;
    }
    if (j->cancelling) {
        snprintf(msg, sizeof msg, "job %lld is already being cancelled", (long long)id);
        send_error(c, "invalid_state", msg);
        return;
    }
    int dq, stopping;
    sched_cancel(d, j, &dq, &stopping); // may free j
    send_json(c, json_pack("{s:b, s:I, s:s, s:i, s:i}", "ok", 1, "job", (json_int_t)id, "state",
                           "cancelled", "dequeued", dq, "stopping", stopping));
}

static void op_best(conn *c, const json_t *req)
{
    sweepd *d = c->srv->d;
    int64_t id, limit = 5;
    if (get_id(c, req, "job", &id)) return;
    char msg[512];
    int rc = jx_get_int(req, "", "limit", false, 1, 1000, &limit, msg, sizeof msg);
    if (rc < 0) {
        send_error(c, "invalid_request", msg);
        return;
    }
    json_t *sum = job_summary(c, id);
    if (!sum) return;
    int err = 0;
    json_t *best = store_best(d->st, id, (int)limit, &err, msg, sizeof msg);
    if (!best) {
        json_decref(sum);
        send_error(c, code_for(err), msg);
        return;
    }
    json_t *pruned = store_job_pruned(d->st, id, &err, msg, sizeof msg);
    /* With the planned count and the counts per state ("3 of 24 trials done"). */
    send_json(c, json_pack("{s:b, s:I, s:O, s:O*, s:O*, s:o, s:o}", "ok", 1, "job", (json_int_t)id,
                           "objective", json_object_get(sum, "objective"), "trials_total",
                           json_object_get(sum, "trials_total"), "counts",
                           json_object_get(sum, "counts"), "trials", best, "pruned",
                           pruned ? pruned : json_array()));
    json_decref(sum);
}

static void op_trial(conn *c, const json_t *req)
{
    sweepd *d = c->srv->d;
    int64_t id;
    if (get_id(c, req, "id", &id)) return;
    char msg[512];
    int err = 0;
    json_t *t = store_trial(d->st, id, &err, msg, sizeof msg);
    if (!t) {
        send_error(c, code_for(err), msg);
        return;
    }
    char log[PATH_MAX + 64];
    snprintf(log, sizeof log, "%s/logs/trial-%lld.log", d->cfg->state_dir, (long long)id);
    json_object_set_new(t, "log", json_string(log));
    send_json(c, json_pack("{s:b, s:o}", "ok", 1, "trial", t));
}

/* Streams job ID's events to C (or answers "end" at once for a job that is
 * not active). C keeps taking requests meanwhile, and their replies go out in
 * order with the events, so a status reply on C describes exactly the events
 * sent before it: `sweepctl watch` takes its snapshots that way (ctl_watch.c,
 * "Ordering"; sched.c trial_set_state for the order of a trial's lines). */
static void op_watch(conn *c, const json_t *req)
{
    sweepd *d = c->srv->d;
    int64_t id;
    if (get_id(c, req, "job", &id)) return;
    json_t *sum = job_summary(c, id);
    if (!sum) return;
    json_t *state = json_object_get(sum, "state");
    sjob *j = sched_find_job(d, id);
    send_json(c, json_pack("{s:b, s:I, s:O, s:b}", "ok", 1, "job", (json_int_t)id, "state", state,
                           "watching", j != NULL));
    if (j) {
        c->watch_job = id;
    } else {
        send_json(c, json_pack("{s:s, s:I, s:O, s:O}", "event", "end", "job", (json_int_t)id,
                               "state", state, "best", json_object_get(sum, "best")));
    }
    json_decref(sum);
}

static void op_shutdown(conn *c, const json_t *req)
{
    (void)req;
    sweepd *d = c->srv->d;
    if (c->uid != 0 && c->uid != geteuid()) {
        char msg[160];
        snprintf(msg, sizeof msg, "only root or uid %u (the daemon's) may stop it",
                 (unsigned)geteuid());
        send_error(c, "forbidden", msg);
        return;
    }
    log_info("shutdown requested by uid %u (pid %d)", (unsigned)c->uid, (int)c->pid);
    send_json(c, json_pack("{s:b, s:b}", "ok", 1, "shutting_down", 1));
    server_stop(d);
    sched_shutdown(d);
}

/* ---- request validation ------------------------------------------------ */

/* Request keys per op, indexed by server_op. */
static const char *const op_keys[SERVER_N_OPS][4] = {
    [SERVER_OP_PING] = {"op", NULL},
    [SERVER_OP_SUBMIT] = {"op", "job", NULL},
    [SERVER_OP_STATUS] = {"op", "job", NULL},
    [SERVER_OP_CANCEL] = {"op", "job", NULL},
    [SERVER_OP_BEST] = {"op", "job", "limit", NULL},
    [SERVER_OP_TRIAL] = {"op", "id", NULL},
    [SERVER_OP_WATCH] = {"op", "job", NULL},
    [SERVER_OP_SHUTDOWN] = {"op", NULL},
};

static const char *const op_names[SERVER_N_OPS] = {
    [SERVER_OP_PING] = "ping",     [SERVER_OP_SUBMIT] = "submit",     [SERVER_OP_STATUS] = "status",
    [SERVER_OP_CANCEL] = "cancel", [SERVER_OP_BEST] = "best",         [SERVER_OP_TRIAL] = "trial",
    [SERVER_OP_WATCH] = "watch",   [SERVER_OP_SHUTDOWN] = "shutdown",
};

const char *server_op_name(int op)
{
    return op >= 0 && op < SERVER_N_OPS ? op_names[op] : NULL;
}

const char *const *server_op_keys(int op)
{
    return op >= 0 && op < SERVER_N_OPS ? op_keys[op] : NULL;
}

/* Sets *CODE, makes MSG valid UTF-8 (as send_error would: the same text
 * reaches the client) and returns ERR. */
static int request_fail(int err, const char *code_name, const char **code, char *msg, size_t msglen)
{
    *code = code_name;
    if (msg && msglen > 0) utf8_fix(msg);
    return err;
}

/* Steps 3-4 of the contract in server.h: REQ is an object with a string
 * "op"; sets *OP_NAME (borrowed from REQ). */
static int request_op_string(const json_t *req, const char **op_name, const char **code, char *msg,
                             size_t msglen)
{
    if (!json_is_object(req)) {
        snprintf(msg, msglen, "a request must be a JSON object with an \"op\"");
        return request_fail(ERR_INVALID, "invalid_request", code, msg, msglen);
    }
    const char *op = NULL;
    int rc = jx_get_string(req, "", "op", true, false, &op, msg, msglen);
    if (rc) {
        if (rc > 0 || rc == ERR_NOTFOUND) snprintf(msg, msglen, "op: missing");
        return request_fail(ERR_INVALID, "invalid_request", code, msg, msglen);
    }
    *op_name = op;
    return 0;
}

int server_request_read(const char *line, size_t len, json_t **req, const char **op_name,
                        const char **code, char *msg, size_t msglen)
{
    *req = NULL;
    *op_name = NULL;
    if (!line) {
        snprintf(msg, msglen, "request line of %zu bytes is longer than the limit of %u bytes", len,
                 SERVER_MAX_LINE);
        return request_fail(ERR_TOOBIG, "line_too_long", code, msg, msglen);
    }
    json_t *v = jx_parse(line, len, msg, msglen);
    if (!v) return request_fail(ERR_PARSE, "invalid_json", code, msg, msglen);
    int rc = request_op_string(v, op_name, code, msg, msglen);
    if (rc) {
        json_decref(v);
        return rc;
    }
    *req = v;
    return 0;
}

int server_request_op(const json_t *req, server_op *op, const char **code, char *msg, size_t msglen)
{
    const char *name = NULL;
    int rc = request_op_string(req, &name, code, msg, msglen);
    if (rc) return rc;
    int k;
    for (k = 0; k < SERVER_N_OPS; k++)
        if (!strcmp(op_names[k], name)) break;
    if (k == SERVER_N_OPS) {
        char desc[128];
        jx_describe(json_object_get(req, "op"), desc, sizeof desc);
        snprintf(msg, msglen,
                 "op: unknown op %s (expected ping, submit, status, cancel, best, trial,"
                 " watch or shutdown)",
                 desc);
        return request_fail(ERR_NOTFOUND, "unknown_op", code, msg, msglen);
    }
    char tmp[400];
    if (jx_check_keys(req, "", op_keys[k], tmp, sizeof tmp) != 0) {
        char list[64] = "";
        for (int i = 0; op_keys[k][i]; i++) {
            if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
            strncat(list, op_keys[k][i], sizeof list - strlen(list) - 1);
        }
        snprintf(msg, msglen, "%s (op %s takes: %s)", tmp, name, list);
        return request_fail(ERR_INVALID, "invalid_request", code, msg, msglen);
    }
    *op = (server_op)k;
    return 0;
}

int server_request_parse(const char *line, size_t len, json_t **req, server_op *op,
                         const char **code, char *msg, size_t msglen)
{
    const char *name;
    int rc = server_request_read(line, len, req, &name, code, msg, msglen);
    if (rc) return rc;
    rc = server_request_op(*req, op, code, msg, msglen);
    if (rc) {
        json_decref(*req);
        *req = NULL;
    }
    return rc;
}

/* ---- dispatch ----------------------------------------------------------- */

/* Handlers, indexed by server_op. */
static void (*const op_handlers[SERVER_N_OPS])(conn *, const json_t *) = {
    [SERVER_OP_PING] = op_ping,     [SERVER_OP_SUBMIT] = op_submit,
    [SERVER_OP_STATUS] = op_status, [SERVER_OP_CANCEL] = op_cancel,
    [SERVER_OP_BEST] = op_best,     [SERVER_OP_TRIAL] = op_trial,
    [SERVER_OP_WATCH] = op_watch,   [SERVER_OP_SHUTDOWN] = op_shutdown,
};

/* Answers one request line (LINE NULL: a line of LEN bytes over the limit):
 * validation steps 1-4, the access check, steps 5-6 (server.h), then the
 * op's handler. */
static void handle_request(conn *c, char *line, size_t len)
{
    char msg[SERVER_MSG_MAX];
    const char *code = NULL, *op_name = NULL;
    json_t *req = NULL;
    if (server_request_read(line, len, &req, &op_name, &code, msg, sizeof msg) != 0) {
        send_error(c, code, msg);
        return;
    }
    if (!c->allowed) {
        snprintf(msg, sizeof msg, "uid %u is not allowed to use this daemon (allow_uids)",
                 (unsigned)c->uid);
        send_error(c, "forbidden", msg);
        json_decref(req);
        return;
    }
    server_op op;
    if (server_request_op(req, &op, &code, msg, sizeof msg) != 0) {
        send_error(c, code, msg);
        json_decref(req);
        return;
    }
    log_debug("connection %d: op %s", c->id, op_name);
    /* Replies show every event received so far. */
    if (op != SERVER_OP_PING && op != SERVER_OP_SUBMIT) store_flush(c->srv->d->st);
    op_handlers[op](c, req);
    json_decref(req);
}

static void after_shutdown(uv_shutdown_t *r, int status)
{
    (void)status;
    conn *c = r->data;
    free(r);
    conn_set_state(c, CONN_CLOSING, "replies flushed");
}

/* Ends C once the replies it has queued are written. */
static void conn_finish(conn *c, const char *why)
{
    if (c->state != CONN_OPEN) return;
    if (c->stream || c->held_head) {
        /* A reply is still being streamed: finish it (and what is held
         * behind it) first; read nothing more meanwhile. */
        c->finish_why = why;
        c->watch_job = 0;
        uv_read_stop((uv_stream_t *)&c->h);
        return;
    }
    if (c->queued > 0) {
        uv_shutdown_t *r = malloc(sizeof *r);
        if (r) {
            r->data = c;
            if (uv_shutdown(r, (uv_stream_t *)&c->h, after_shutdown) == 0) {
                conn_set_state(c, CONN_DRAINING, why);
                return;
            }
            free(r);
        }
    }
    conn_set_state(c, CONN_CLOSING, why);
}

/* ---- connections ------------------------------------------------------ */

static int line_cb(void *ud, char *line, size_t len)
{
    conn *c = ud;
    c->active_at = time_mono(); // a complete line (even a refused one) restarts the idle clock
    handle_request(c, line, len);
    return c->state == CONN_OPEN ? 0 : 1;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    static char slab[65536]; // consumed within read_cb
    buf->base = slab;
    buf->len = sizeof slab;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = s->data;
    if (nread > 0) {
        if (c->state == CONN_OPEN) {
            if (ndjson_feed(&c->nb, buf->base, (size_t)nread, line_cb, c) == ERR_NOMEM)
                conn_set_state(c, CONN_CLOSING, "out of memory");
        }
        return;
    }
    if (nread < 0) {
        /* EOF: a last request without "\n" is still answered. */
        if (nread == UV_EOF && c->state == CONN_OPEN && ndjson_pending(&c->nb) > 0)
            ndjson_feed(&c->nb, "\n", 1, line_cb, c);
        if (nread == UV_EOF)
            conn_finish(c, "client closed");
        else
            conn_set_state(c, CONN_CLOSING, uv_strerror((int)nread));
    }
}

static void on_connection(uv_stream_t *ls, int status)
{
    server *s = ls->data;
    if (status < 0) {
        log_warn("accept failed: %s", uv_strerror(status));
        return;
    }
    conn *c = calloc(1, sizeof *c);
    if (!c) return;
    uv_pipe_init(s->d->loop, &c->h, 0);
    c->h.data = c;
    c->srv = s;
    c->id = ++s->next_id;
    c->active_at = time_mono();
    ndjson_init(&c->nb, SERVER_MAX_LINE);
    if (uv_accept(ls, (uv_stream_t *)&c->h) != 0) {
        uv_close((uv_handle_t *)&c->h, on_conn_closed);
        return;
    }
    uv_os_fd_t fd;
    struct ucred cred = {.pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1};
    socklen_t cl = sizeof cred;
    if (uv_fileno((uv_handle_t *)&c->h, &fd) == 0)
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl);
    c->uid = cred.uid;
    c->pid = cred.pid;
    c->allowed = config_uid_allowed(s->d->cfg, c->uid);
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    if (s->n_conns > s->d->cfg->max_connections) {
        log_warn("too many connections (%d); refusing one from uid %u", s->n_conns,
                 (unsigned)c->uid);
        send_error(c, "busy", "too many connections to sweepd; try again later");
        conn_set_state(c, CONN_CLOSING, "over max_connections");
        return;
    }
    log_debug("connection %d from uid %u pid %d", c->id, (unsigned)c->uid, (int)c->pid);
    uv_read_start((uv_stream_t *)&c->h, alloc_cb, read_cb);
}

/* ---- idle connections ------------------------------------------------- */

/* Closes the connections whose idle clock (see the top of this file) is older
 * than idle_timeout; `watch` streams are exempt. Runs at every tick of the
 * daemon's one periodic timer (sched.c tick() calls it through d->on_tick).
 * An open connection first gets one error line, code idle_timeout, unless
 * replies are still waiting to be written to it (then the client is not
 * reading and would never see the line). A draining connection (the client
 * has closed its side but is not taking the replies queued for it) is closed
 * as is: otherwise it would keep its slot until the client reads. */
static void server_close_idle(sweepd *d)
{
    server *s = d->server;
    double limit = d->cfg->idle_timeout;
    if (!s || !(limit > 0)) return;
    double now = time_mono();
    int closed = 0;
    for (conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == CONN_CLOSING || c->watch_job || now - c->active_at <= limit) continue;
        char why[160];
        snprintf(why, sizeof why, "pid %d idle for %.1f s (idle_timeout %g s)%s", (int)c->pid,
                 now - c->active_at, limit,
                 c->state == CONN_OPEN ? "" : " with its replies not taken");
        if (c->state == CONN_OPEN && c->queued == 0 && !c->stream && !c->held_head) {
            char msg[128];
            snprintf(msg, sizeof msg, "closed: no complete request within %g s (idle_timeout)",
                     limit);
            send_error(c, "idle_timeout", msg);
        }
        conn_set_state(c, CONN_CLOSING, why);
        closed++;
    }
    if (closed)
        log_info("closed %d idle connection%s (no complete request within idle_timeout, %g s)",
                 closed, closed == 1 ? "" : "s", limit);
}

/* ---- watch fan-out ---------------------------------------------------- */

static bool server_watched(sweepd *d, int64_t job_id)
{
    server *s = d->server;
    if (!s) return false;
    for (conn *c = s->conns; c; c = c->next)
        if (c->watch_job == job_id) return true;
    return false;
}

static void server_emit(sweepd *d, int64_t job_id, json_t *ev)
{
    server *s = d->server;
    if (!s) return;
    char *text = NULL;
    bool end = !strcmp(json_string_value(json_object_get(ev, "event")) ?: "", "end");
    for (conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->watch_job != job_id) continue;
        if (!text && !(text = jx_dump_line(ev))) return;
        send_text(c, strdup(text));
        if (end) c->watch_job = 0;
    }
    free(text);
}

/* ---- start and stop --------------------------------------------------- */

int server_check_socket(const char *path, char *msg, size_t msglen)
{
    struct sockaddr_un a;
    if (strlen(path) >= sizeof a.sun_path)
        return err_set(msg, msglen, ERR_INVALID,
                       "socket path %s is longer than %zu bytes; choose a shorter one", path,
                       sizeof a.sun_path - 1);
    struct stat st;
    if (lstat(path, &st) != 0) return 0;
    if (!S_ISSOCK(st.st_mode))
        return err_set(msg, msglen, ERR_EXISTS, "%s exists and is not a socket; not removing it",
                       path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return err_set_errno(msg, msglen, ERR_IO, errno, "socket");
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path, path, strlen(path) + 1);
    int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    close(fd);
    if (rc == 0)
        return err_set(msg, msglen, ERR_EXISTS,
                       "another sweepd is already listening on %s; not starting", path);
    if (e == ECONNREFUSED || e == ENOENT) {
        log_info("removing stale socket %s", path);
        if (unlink(path) != 0 && errno != ENOENT)
            return err_set_errno(msg, msglen, ERR_IO, errno, "cannot remove stale socket %s", path);
        return 0;
    }
    return err_set_errno(msg, msglen, ERR_IO, e, "cannot check socket %s", path);
}

int server_start(sweepd *d, char *msg, size_t msglen)
{
    server *s = calloc(1, sizeof *s);
    if (!s) return ERR_NOMEM;
    s->d = d;
    uv_pipe_init(d->loop, &s->listener, 0);
    s->listener.data = s;
    mode_t old = umask(0777 & ~(mode_t)d->cfg->socket_mode);
    int rc = uv_pipe_bind(&s->listener, d->cfg->socket_path);
    umask(old);
    if (rc == 0) chmod(d->cfg->socket_path, (mode_t)d->cfg->socket_mode);
    if (rc == 0 && d->cfg->has_socket_group &&
        chown(d->cfg->socket_path, (uid_t)-1, d->cfg->socket_group) != 0) {
        err_set_errno(msg, msglen, ERR_PERM, errno,
                      "cannot give socket %s to socket_group \"%s\" (gid %u)", d->cfg->socket_path,
                      d->cfg->socket_group_name, (unsigned)d->cfg->socket_group);
        uv_close((uv_handle_t *)&s->listener, NULL);
        unlink(d->cfg->socket_path);
        d->server = s; // freed by server_free after the loop closes the handle
        return ERR_PERM;
    }
    /* Listen backlog: connects the loop has not accepted yet wait here. A
     * burst of clients arriving while the loop is busy (a large status reply,
     * a database flush) must queue instead of failing: when the backlog is
     * full a non-blocking connect (a client with a timeout) fails with
     * EAGAIN and a blocking one waits. The old 128 was half of
     * max_connections, so take max(SERVER_LISTEN_BACKLOG, max_connections).
     * Linux silently caps it at net.core.somaxconn (4096 by default since
     * 5.4, 128 before; raise that sysctl for bigger bursts). */
    int backlog = d->cfg->max_connections > SERVER_LISTEN_BACKLOG ? d->cfg->max_connections
                                                                  : SERVER_LISTEN_BACKLOG;
    if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, backlog, on_connection);
    if (rc != 0) {
        err_set(msg, msglen, ERR_IO, "cannot listen on %s: %s", d->cfg->socket_path,
                uv_strerror(rc));
        uv_close((uv_handle_t *)&s->listener, NULL);
        d->server = s; // freed by server_free after the loop closes the handle
        return ERR_IO;
    }
    s->listening = true;
    d->server = s;
    d->emit = server_emit;
    d->watched = server_watched;
    d->on_tick = server_close_idle;
    log_debug("listen backlog %d, idle_timeout %g s%s", backlog, d->cfg->idle_timeout,
              d->cfg->idle_timeout > 0 ? "" : " (idle connections are never closed)");
    if (d->cfg->has_socket_group)
        log_info("listening on %s (mode %04o, group %s)", d->cfg->socket_path, d->cfg->socket_mode,
                 d->cfg->socket_group_name);
    else
        log_info("listening on %s (mode %04o)", d->cfg->socket_path, d->cfg->socket_mode);
    return 0;
}

void server_stop(sweepd *d)
{
    server *s = d->server;
    if (!s || !s->listening) return;
    s->listening = false;
    uv_close((uv_handle_t *)&s->listener, NULL);
    unlink(d->cfg->socket_path);
    log_info("stopped listening on %s", d->cfg->socket_path);
    for (conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->watch_job) {
            send_json(
                c, json_pack("{s:s, s:I}", "event", "shutdown", "job", (json_int_t)c->watch_job));
            c->watch_job = 0;
        }
        conn_finish(c, "daemon stopping");
    }
}

void server_close_all(sweepd *d)
{
    server *s = d->server;
    if (!s) return;
    while (s->conns)
        conn_set_state(s->conns, CONN_CLOSING, "daemon stopped");
}

void server_free(sweepd *d)
{
    free(d->server);
    d->server = NULL;
    d->emit = NULL;
    d->watched = NULL;
    d->on_tick = NULL;
}
