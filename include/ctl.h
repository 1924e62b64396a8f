/* ctl — the pieces of sweepctl, the command-line client of sweepd.
 *
 * sweepctl talks to the daemon over its Unix socket: one JSON request per line,
 * one reply per line (README.md "Contract"), except `watch`, whose reply
 * is a stream of event lines until the job ends. The modules here are split so
 * the parts worth testing without a daemon are pure functions:
 *   ctl_args.c   command-line parsing (global options, commands, operands)
 *   ctl_table.c  aligned text tables and number/duration/bar formatting
 *   ctl_conn.c   blocking socket connection with NDJSON framing
 *   ctl_render.c human-readable rendering of replies (status, list, best, trial)
 *   ctl_watch.c  the `watch` display: live on a terminal, plain lines otherwise
 *   ctl_submit.c the submit request: the job file, its relative paths made absolute
 *   report*.c    `report`, the HTML page of a job (include/report.h)
 * Exit codes (README.md "Contract"): 0 success, 1 error reply, 2 usage error,
 * 3 daemon unreachable. */
#ifndef SWEEP_CTL_H
#define SWEEP_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "ndjson.h"
#include "utf8.h"

enum ctl_exit {
    CTL_EXIT_OK = 0,
    CTL_EXIT_ERROR = 1,       // the daemon answered with an error (or the job failed, for watch)
    CTL_EXIT_USAGE = 2,       // bad command line or unreadable/invalid job file
    CTL_EXIT_UNREACHABLE = 3, // cannot connect, or the connection broke
};

#define CTL_DEFAULT_SOCKET "./var/sweepd.sock"
#define CTL_DEFAULT_BEST 5
#define CTL_MAX_BEST 100000 // largest -n K of best

typedef enum {
    CTL_CMD_NONE = 0, // only --help was given
    CTL_CMD_SUBMIT,
    CTL_CMD_STATUS,
    CTL_CMD_LIST,
    CTL_CMD_CANCEL,
    CTL_CMD_BEST,
    CTL_CMD_TRIAL,
    CTL_CMD_WATCH,
    CTL_CMD_PING,
    CTL_CMD_SHUTDOWN,
    CTL_CMD_REPORT,
} ctl_command;

typedef struct {
    const char *socket_path; // --socket, else $SWEEPD_SOCKET, else CTL_DEFAULT_SOCKET (borrowed)
    bool json;               // --json: print the raw reply lines
    bool help;               // --help / -h / `help [CMD]`: print usage and exit 0
    ctl_command cmd;         // the command
    const char *file;        // submit: path of the job file (borrowed from argv)
    long long id;            // job id (status/cancel/best/watch) or trial id (trial); 0 if absent
    int limit;               // best: -n K (1..CTL_MAX_BEST), default CTL_DEFAULT_BEST
    const char *output;      // report: -o FILE, NULL = report-JOB.html (borrowed)
    const char *db;          // report: --db FILE, NULL = ask the daemon (borrowed)
} ctl_args;

/* Parses ARGV (argv[0] is the program name). ENV_SOCKET is $SWEEPD_SOCKET or
 * NULL. Returns 0, or ERR_INVALID with a one-line reason in MSG (the caller
 * prints it with the usage hint and exits CTL_EXIT_USAGE). Strings in A are
 * borrowed from ARGV. */
int ctl_parse_args(ctl_args *a, int argc, char **argv, const char *env_socket, char *msg,
                   size_t msglen);
/* Writes the full usage text. CMD selects a command's own help, CTL_CMD_NONE
 * the general one. */
void ctl_usage(FILE *f, ctl_command cmd);
/* The command's name ("submit", ...), "" for CTL_CMD_NONE. */
const char *ctl_command_name(ctl_command cmd);

/* ---- tables and formatting (ctl_table.c) ---- */

typedef struct ctl_table ctl_table;

/* A table with NCOLS columns named by HEADERS (copied). ALIGN is a string of
 * NCOLS letters, 'l' or 'r' (right-aligned, for numbers). NULL on allocation
 * failure. Free with ctl_table_free. */
ctl_table *ctl_table_new(int ncols, const char *const *headers, const char *align);
void ctl_table_free(ctl_table *t);
/* Starts a new row; cells are then added left to right with ctl_table_cell.
 * Missing cells at the end of a row print empty. 0 or ERR_NOMEM. */
int ctl_table_row(ctl_table *t);
/* Adds the next cell of the current row (formatted with printf rules, then
 * escaped with utf8_escape; copied). Headers are escaped too.
 * Cells beyond NCOLS are ignored. 0 or ERR_NOMEM. */
int ctl_table_cell(ctl_table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
size_t ctl_table_rows(const ctl_table *t);
/* Renders the table: the header line, a line of dashes under each header, then
 * the rows; columns padded to their widest cell (counted in UTF-8 code points)
 * and separated by two spaces; no trailing spaces. Caller frees the string. */
char *ctl_table_render(const ctl_table *t);

/* Display width of the UTF-8 string S (code points; no wide-glyph handling). */
size_t ctl_utf8_width(const char *s);
/* Formats a duration: "2.5s", "42s", "3m05s", "1h02m", "2d03h"; "-" for negative or
 * non-finite. Returns BUF. */
char *ctl_fmt_duration(char *buf, size_t n, double seconds);
/* Formats a metric value compactly: 4 decimals below 10 ("0.8734"), fewer
 * above; "-" for JSON null or a missing value; strings escaped with
 * utf8_escape. V may be NULL. Returns BUF. */
char *ctl_fmt_json(char *buf, size_t n, const json_t *v);
/* A progress bar of WIDTH characters inside brackets, FRAC in [0, 1]
 * (clamped): "[=========>          ]". BUF needs WIDTH + 3 bytes. */
char *ctl_fmt_bar(char *buf, size_t n, int width, double frac);

/* Estimated seconds until a job finishes, from what is known so far:
 * DONE_TRIALS trials finished taking DONE_SECONDS in total, REMAINING_WORK
 * trials' worth of work left (queued trials plus the unfinished fraction of
 * running ones), PARALLEL trials running at once. Returns -1 when there is no
 * finished trial to estimate from. */
double ctl_eta(int done_trials, double done_seconds, double remaining_work, int parallel);

/* ---- connection (ctl_conn.c) ---- */

typedef struct {
    int fd;             // connected socket, -1 when closed
    ndjson_buf in;      // framing of incoming bytes
    char **lines;       // complete lines received, not yet returned (owned, NUL-terminated)
    size_t head, count; // index of the oldest queued line; lines queued
    size_t cap;         // entries allocated in lines
    int bad_line;       // a received line was too long: ERR_TOOBIG, else 0
    char bad_msg[256];  // what was wrong with that line
} ctl_conn;

/* Connects to the Unix socket PATH. Returns 0, or ERR_IO with the system's
 * reason in MSG ("No such file or directory"), or ERR_INVALID if PATH is too
 * long for a socket address. */
int ctl_conn_open(ctl_conn *c, const char *path, char *msg, size_t msglen);
void ctl_conn_close(ctl_conn *c);
/* Sends LINE (one JSON text without a newline; a newline is added). 0 or ERR_IO. */
int ctl_conn_send_line(ctl_conn *c, const char *line, char *msg, size_t msglen);
/* Sends REQ as one line. 0 or ERR_IO. */
int ctl_conn_send(ctl_conn *c, const json_t *req, char *msg, size_t msglen);
/* Receives the next line as JSON into *OUT (new reference) and, when RAW is
 * not NULL, the line exactly as received into *RAW (caller frees). TIMEOUT_MS
 * < 0 waits forever. Returns 0; 1 on timeout (outputs untouched); ERR_IO when
 * the connection closed (MSG says so) or broke; ERR_PARSE when the daemon sent
 * a line that is not JSON or is too long. */
int ctl_conn_recv(ctl_conn *c, json_t **out, char **raw, int timeout_ms, char *msg, size_t msglen);
/* Connects, sends LINE, receives one reply. On 0 *OUT owns the reply and, if
 * RAW is not NULL, *RAW the reply line as received. Returns 0, or
 * CTL_EXIT_UNREACHABLE with the reason in MSG. */
int ctl_request_line(const char *path, const char *line, json_t **out, char **raw, char *msg,
                     size_t msglen);
/* ctl_request_line with REQ serialised compactly. */
int ctl_request(const char *path, const json_t *req, json_t **out, char *msg, size_t msglen);

/* Prints why the daemon at PATH can't be reached (REASON, e.g. "No such file
 * or directory"), what to do about it, where PATH came from (the default,
 * $SWEEPD_SOCKET or --socket) and how to name another socket. */
void ctl_print_unreachable(FILE *f, const char *path, const char *reason);

/* ---- rendering (ctl_render.c) ---- */

/* True if REPLY has "ok": true. */
bool ctl_reply_ok(const json_t *reply);
/* Writes "sweepctl: <code>: <message>" for an error reply to F. */
void ctl_print_error(FILE *f, const json_t *reply);
/* Human-readable output of a successful reply to command CMD. Returns 0 or
 * ERR_NOMEM. */
int ctl_render(FILE *f, ctl_command cmd, const json_t *reply);
/* Looks KEY up in OBJ, then in OBJ.params, then in OBJ.result; NULL if absent. */
const json_t *ctl_lookup(const json_t *obj, const char *key);
/* The array of trial objects in a reply (reply.trials, reply.job.trials, ...)
 * or NULL. Borrowed. */
const json_t *ctl_find_array(const json_t *reply, const char *const *names);

/* The hyperparameter keys worth showing for the trial objects in the array
 * ROWS: "lr", then every key whose value differs between rows (every key for
 * a single row). Rows may carry
 * params in "params" (object) or "params_json" (string). New array of
 * strings, NULL on allocation failure. */
json_t *ctl_varying_params(const json_t *rows);
/* Copies of the objects of ARR with a "params_json" string parsed into
 * "params". New reference, NULL on allocation failure. */
json_t *ctl_normalise_rows(const json_t *arr);

/* ---- watch (ctl_watch.c) ---- */

/* Runs `watch JOB` against the daemon at PATH: live display when LIVE (stdout
 * is a terminal), plain progress lines otherwise, raw event lines with JSON.
 * Returns the exit code: 0 when the job ends done (or cancelled), 1 when it
 * failed or the daemon refused, 3 when unreachable. */
int ctl_watch(const char *path, long long job, bool live, bool json, FILE *out);

/* ---- submit (ctl_submit.c) ---- */

/* True if one of the job's path fields (data.train, data.val, data.test,
 * model.weights) is a non-empty string not starting with '/'. */
bool ctl_job_has_relative_paths(const json_t *job);
/* BASE (an absolute directory) joined with the relative path REL, dropping
 * "." components, empty components and a trailing slash of REL; ".." is kept.
 * ("/b", "./x//y/") -> "/b/x/y"; ("/b", ".") -> "/b"; ("/", "x") -> "/x".
 * New string (caller frees), NULL on allocation failure. */
char *ctl_join_path(const char *base, const char *rel);
/* Makes the job's relative path fields absolute against BASE_DIR (in place);
 * absolute ones, empty strings, non-strings and absent keys are left as they
 * are. Returns how many were rewritten, or ERR_NOMEM. */
int ctl_job_resolve_paths(json_t *job, const char *base_dir);
/* The folder relative job paths are resolved against: realpath of the folder
 * of JOB_PATH, or of the current directory when JOB_PATH is "-" (stdin). On 0
 * *OUT owns the absolute path; else ERR_IO/ERR_NOMEM with the reason in MSG. */
int ctl_job_base_dir(const char *job_path, char **out, char *msg, size_t msglen);
/* Reads the job file PATH ("-": stdin), checks it is a JSON object and returns
 * the request line {"op":"submit","job":...}: the file's own bytes when no
 * path needed resolving, else the job with absolute paths re-serialised
 * (reals in shortest round-trip form). NULL with a one-line reason naming the
 * file in MSG. Caller frees. */
char *ctl_submit_line(const char *path, char *msg, size_t msglen);

#endif
