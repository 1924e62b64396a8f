/* ctl_submit — the request line of `sweepctl submit JOB.json`.
 *
 * The job file is read, syntax-checked (the daemon validates the content) and
 * sent as {"op":"submit","job":...}. Relative paths in the job (data.train,
 * data.val, data.test, model.weights) mean "next to the job file" to the user,
 * but the daemon would resolve them against its own working directory (`/`
 * when detached), so they are made absolute here: realpath of the job file's
 * folder (the current directory for `-`, stdin) joined with the path. The
 * target need not exist; the daemon checks it and names the key if it is
 * missing. Only "." components and repeated slashes are dropped from the
 * joined part; ".." stays, since folding it would be wrong across symlinks.
 *
 * When no path needs rewriting, the file's own bytes are sent (line breaks
 * turned into spaces), so numbers reach the daemon exactly as written. When
 * one does, the job is re-serialised with jx_dump_line, which writes reals in
 * their shortest round-trip form (0.1 stays 0.1). */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "errors.h"
#include "jsonx.h"

/* The path fields of a job: object key, then member key. */
static const char *const path_fields[][2] = {
    {"data", "train"},
    {"data", "val"},
    {"data", "test"},
    {"model", "weights"},
};
#define N_PATH_FIELDS (sizeof path_fields / sizeof path_fields[0])

/* The value of path field I in JOB if it is a string that needs resolving
 * (relative and not empty; an empty one is left for the daemon to refuse),
 * else NULL. Borrowed. */
static const char *relative_path(const json_t *job, size_t i)
{
    const json_t *o = json_object_get(job, path_fields[i][0]);
    const char *p = json_string_value(json_object_get(o, path_fields[i][1]));
    return p && p[0] && p[0] != '/' ? p : NULL;
}

bool ctl_job_has_relative_paths(const json_t *job)
{
    for (size_t i = 0; i < N_PATH_FIELDS; i++)
        if (relative_path(job, i)) return true;
    return false;
}

char *ctl_join_path(const char *base, const char *rel)
{
    size_t blen = strlen(base);
    while (blen > 1 && base[blen - 1] == '/')
        blen--; // "/a/" -> "/a", "/" stays
    char *out = malloc(blen + strlen(rel) + 2);
    if (!out) return NULL;
    memcpy(out, base, blen);
    size_t n = blen;
    const char *s = rel;
    while (*s) {
        while (*s == '/')
            s++;
        const char *e = s;
        while (*e && *e != '/')
            e++;
        size_t len = (size_t)(e - s);
        if (len > 0 && !(len == 1 && s[0] == '.')) {
            if (n == 0 || out[n - 1] != '/') out[n++] = '/';
            memcpy(out + n, s, len);
            n += len;
        }
        s = e;
    }
    if (n == 0) out[n++] = '/';
    out[n] = 0;
    return out;
}

int ctl_job_resolve_paths(json_t *job, const char *base_dir)
{
    int changed = 0;
    for (size_t i = 0; i < N_PATH_FIELDS; i++) {
        const char *p = relative_path(job, i);
        if (!p) continue;
        char *abs = ctl_join_path(base_dir, p);
        if (!abs) return ERR_NOMEM;
        json_t *o = json_object_get(job, path_fields[i][0]);
        int rc = json_object_set_new(o, path_fields[i][1], json_string(abs));
        free(abs);
        if (rc != 0) return ERR_NOMEM;
        changed++;
    }
    return changed;
}

int ctl_job_base_dir(const char *job_path, char **out, char *msg, size_t msglen)
{
    *out = NULL;
    char *copy = strdup(strcmp(job_path, "-") ? job_path : "./-");
    if (!copy) return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    const char *dir = dirname(copy); // may point into COPY or at a static "."
    char *real = realpath(dir, NULL);
    if (!real) {
        int e = errno;
        int rc = e == ENOMEM ? ERR_NOMEM : ERR_IO;
        snprintf(msg, msglen, "cannot resolve the folder %s of %s (for its relative paths): %s",
                 dir, strcmp(job_path, "-") ? job_path : "stdin", strerror(e));
        free(copy);
        return rc;
    }
    free(copy);
    *out = real;
    return 0;
}

/* Reads all of PATH ("-": stdin) into a new NUL-terminated buffer; NULL with
 * the reason in MSG. Caller frees. */
static char *read_all(const char *path, size_t *len, char *msg, size_t msglen)
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

char *ctl_submit_line(const char *path, char *msg, size_t msglen)
{
    size_t len;
    char *text = read_all(path, &len, msg, msglen);
    if (!text) return NULL;
    char *line = NULL, *base = NULL, *dumped = NULL;
    json_error_t e;
    json_t *job = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
    if (!job) {
        char text_esc[sizeof e.text * 4]; // jansson quotes the file's bytes: escaped
        utf8_escape(text_esc, sizeof text_esc, e.text);
        snprintf(msg, msglen, "%s:%d:%d: %s", path, e.line, e.column, text_esc);
        goto done;
    }
    if (!json_is_object(job)) {
        snprintf(msg, msglen, "%s: a job must be a JSON object ({...})", path);
        goto done;
    }
    const char *body = text;
    if (ctl_job_has_relative_paths(job)) {
        if (ctl_job_base_dir(path, &base, msg, msglen) < 0) goto done;
        if (ctl_job_resolve_paths(job, base) < 0 || !(dumped = jx_dump_line(job))) {
            snprintf(msg, msglen, "out of memory");
            goto done;
        }
        body = dumped;
    } else {
        /* Valid JSON has line breaks only between tokens: they become spaces. */
        for (size_t i = 0; i < len; i++)
            if (text[i] == '\n' || text[i] == '\r') text[i] = ' ';
    }
    if (asprintf(&line, "{\"op\":\"submit\",\"job\":%s}", body) < 0) {
        line = NULL;
        snprintf(msg, msglen, "out of memory");
    }
done:
    json_decref(job);
    free(dumped);
    free(base);
    free(text);
    return line;
}
