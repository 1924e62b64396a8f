/* tfevents — TensorBoard event files (tfevents.h): CRC-32C, a small protobuf
 * encoder, TFRecord framing, the reading of a resumed trial's old files and
 * the writer of the Event records (scalars and the hparams plugin's session
 * summaries). */
#include "tfevents.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "fileio.h"
#include "grow.h"
#include "log.h"
#include "numparse.h"

/* Protobuf wire types. */
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* Field numbers of the messages written (TensorBoard's .proto files). */
enum {
    EVENT_WALL_TIME = 1,
    EVENT_STEP = 2,
    EVENT_FILE_VERSION = 3,
    EVENT_SUMMARY = 5,
    SUMMARY_VALUE = 1,
    VALUE_TAG = 1,
    VALUE_SIMPLE = 2,
    VALUE_TENSOR = 8,
    VALUE_METADATA = 9,
    METADATA_PLUGIN_DATA = 1,
    PLUGIN_NAME = 1,
    PLUGIN_CONTENT = 2,
    TENSOR_DTYPE = 1,
    TENSOR_SHAPE = 2,
    SHAPE_DIM = 2,
    HPARAMS_SESSION_START = 3,
    HPARAMS_SESSION_END = 4,
    START_HPARAMS = 1,
    START_GROUP_NAME = 4,
    START_TIME = 5,
    END_STATUS = 1,
    END_TIME = 2,
    MAP_KEY = 1,
    MAP_VALUE = 2,
    PBVALUE_NUMBER = 2,
    PBVALUE_STRING = 3,
    PBVALUE_BOOL = 4,
};
#define DT_FLOAT 1

/* ---- checksums ----------------------------------------------------------- */

uint32_t tfevents_crc32c(const void *data, size_t n)
{
    const uint8_t *p = data;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

uint32_t tfevents_masked_crc(const void *data, size_t n)
{
    uint32_t c = tfevents_crc32c(data, n);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

/* ---- protobuf encoding --------------------------------------------------- */

void tfevents_pb_free(tfevents_pb *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* Room for N more bytes; false (and FAILED set) when out of memory. */
static bool pb_room(tfevents_pb *b, size_t n)
{
    if (b->failed) return false;
    if (n > SIZE_MAX - b->len) {
        b->failed = true;
        return false;
    }
    uint8_t *d = grow_array(b->data, b->len + n, &b->cap, 1, 256);
    if (!d) {
        b->failed = true;
        return false;
    }
    b->data = d;
    return true;
}

void tfevents_pb_raw(tfevents_pb *b, const void *p, size_t n)
{
    if (!n || !pb_room(b, n)) return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

/* The varint of V into OUT (10 bytes at most); returns its length. */
static size_t varint_encode(uint64_t v, uint8_t *out)
{
    size_t k = 0;
    while (v >= 0x80) {
        out[k++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[k++] = (uint8_t)v;
    return k;
}

void tfevents_pb_varint(tfevents_pb *b, uint64_t v)
{
    uint8_t tmp[10];
    tfevents_pb_raw(b, tmp, varint_encode(v, tmp));
}

static void pb_key(tfevents_pb *b, int field, int wire_type)
{
    tfevents_pb_varint(b, ((uint64_t)field << 3) | (uint64_t)wire_type);
}

void tfevents_pb_int(tfevents_pb *b, int field, int64_t v)
{
    pb_key(b, field, WT_VARINT);
    tfevents_pb_varint(b, (uint64_t)v);
}

/* The N low bytes of V, little endian. */
static void pb_fixed(tfevents_pb *b, uint64_t v, int n)
{
    uint8_t tmp[8];
    for (int i = 0; i < n; i++)
        tmp[i] = (uint8_t)(v >> (8 * i));
    tfevents_pb_raw(b, tmp, (size_t)n);
}

void tfevents_pb_double(tfevents_pb *b, int field, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    pb_key(b, field, WT_I64);
    pb_fixed(b, u, 8);
}

void tfevents_pb_float(tfevents_pb *b, int field, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    pb_key(b, field, WT_I32);
    pb_fixed(b, u, 4);
}

void tfevents_pb_bytes(tfevents_pb *b, int field, const void *p, size_t n)
{
    pb_key(b, field, WT_LEN);
    tfevents_pb_varint(b, n);
    tfevents_pb_raw(b, p, n);
}

void tfevents_pb_string(tfevents_pb *b, int field, const char *s)
{
    tfevents_pb_bytes(b, field, s, strlen(s));
}

size_t tfevents_pb_begin(tfevents_pb *b, int field)
{
    pb_key(b, field, WT_LEN);
    return b->len;
}

void tfevents_pb_end(tfevents_pb *b, size_t mark)
{
    if (b->failed || mark > b->len) return;
    size_t n = b->len - mark;
    uint8_t tmp[10];
    size_t k = varint_encode(n, tmp);
    if (!pb_room(b, k)) return;
    memmove(b->data + mark + k, b->data + mark, n);
    memcpy(b->data + mark, tmp, k);
    b->len += k;
}

void tfevents_frame(tfevents_pb *out, const void *data, size_t n)
{
    uint8_t head[12];
    for (int i = 0; i < 8; i++)
        head[i] = (uint8_t)((uint64_t)n >> (8 * i));
    uint32_t lc = tfevents_masked_crc(head, 8);
    for (int i = 0; i < 4; i++)
        head[8 + i] = (uint8_t)(lc >> (8 * i));
    tfevents_pb_raw(out, head, sizeof head);
    tfevents_pb_raw(out, data, n);
    uint32_t dc = tfevents_masked_crc(data, n);
    uint8_t tail[4];
    for (int i = 0; i < 4; i++)
        tail[i] = (uint8_t)(dc >> (8 * i));
    tfevents_pb_raw(out, tail, sizeof tail);
}

/* ---- reading back -------------------------------------------------------- */

/* A view of bytes being decoded. */
typedef struct {
    const uint8_t *p;   // next byte
    const uint8_t *end; // one past the last
} pb_in;

static bool in_varint(pb_in *in, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && in->p < in->end; shift += 7) {
        uint8_t c = *in->p++;
        *v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) return true;
    }
    return false;
}

/* Reads the next field: its number, wire type and, for WT_LEN, the
 * sub-buffer (*SUB); a varint's value in *V; fixed values skipped. False at
 * the end or on malformed bytes. */
static bool in_field(pb_in *in, int *field, int *wt, uint64_t *v, pb_in *sub)
{
    uint64_t key;
    if (in->p >= in->end || !in_varint(in, &key)) return false;
    *field = (int)(key >> 3);
    *wt = (int)(key & 7);
    size_t left = (size_t)(in->end - in->p);
    switch (*wt) {
    case WT_VARINT:
        return in_varint(in, v);
    case WT_I64:
    case WT_I32: {
        size_t n = *wt == WT_I64 ? 8 : 4;
        if (left < n) return false;
        in->p += n;
        return true;
    }
    case WT_LEN:
        if (!in_varint(in, v) || *v > (uint64_t)(in->end - in->p)) return false;
        sub->p = in->p;
        sub->end = in->p + *v;
        in->p = sub->end;
        return true;
    default:
        return false;
    }
}

static bool sub_is(const pb_in *s, const char *text)
{
    size_t n = strlen(text);
    return (size_t)(s->end - s->p) == n && memcmp(s->p, text, n) == 0;
}

/* One Event's step and the kinds of values it holds, merged into *S. */
static void scan_event(pb_in ev, tfevents_scan *s)
{
    int64_t step = 0;
    bool scalar = false, start = false, end = false;
    int field, wt;
    uint64_t v;
    pb_in sub;
    while (in_field(&ev, &field, &wt, &v, &sub)) {
        if (field == EVENT_STEP && wt == WT_VARINT) step = (int64_t)v;
        if (field != EVENT_SUMMARY || wt != WT_LEN) continue;
        pb_in val;
        while (in_field(&sub, &field, &wt, &v, &val)) {
            if (field != SUMMARY_VALUE || wt != WT_LEN) continue;
            pb_in tag = {0}, part;
            while (in_field(&val, &field, &wt, &v, &part))
                if (field == VALUE_TAG && wt == WT_LEN) tag = part;
            if (sub_is(&tag, TFEVENTS_TAG_SESSION_START))
                start = true;
            else if (sub_is(&tag, TFEVENTS_TAG_SESSION_END))
                end = true;
            else
                scalar = true;
        }
    }
    if (scalar && step > s->last_step) s->last_step = step;
    s->has_start |= start;
    s->has_end |= end;
}

static uint64_t le_bytes(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int tfevents_scan_buffer(const uint8_t *data, size_t n, tfevents_scan *s)
{
    size_t off = 0;
    s->records = 0;
    while (n - off >= 12) {
        const uint8_t *h = data + off;
        uint64_t len = le_bytes(h, 8);
        if ((uint32_t)le_bytes(h + 8, 4) != tfevents_masked_crc(h, 8)) break;
        if (n - off < 16 || len > n - off - 16) break;
        const uint8_t *d = h + 12;
        if ((uint32_t)le_bytes(d + len, 4) != tfevents_masked_crc(d, (size_t)len)) break;
        scan_event((pb_in){d, d + len}, s);
        s->records++;
        off += 16 + (size_t)len;
    }
    s->valid_bytes = off;
    return off == n ? 0 : ERR_PARSE;
}

/* ---- the writer ---------------------------------------------------------- */

/* Seconds in an event file name (events.out.tfevents.<seconds>.<...>), or
 * -1 when NAME has none. */
static int64_t name_seconds(const char *name)
{
    const char *p = name + strlen(TFEVENTS_PREFIX);
    size_t k = strspn(p, "0123456789");
    char digits[24];
    if (k == 0 || k >= sizeof digits) return -1;
    memcpy(digits, p, k);
    digits[k] = '\0';
    long long v;
    if (numparse_long("event file time", digits, 0, INT64_MAX, &v, NULL, 0)) return -1;
    return v;
}

/* Reads the event file PATH into W->seen (a file that cannot be read is
 * logged and counts as empty: TensorBoard cannot read it either). */
static int scan_file(tfevents_writer *w, const char *path, fileio_buf *fb)
{
    char msg[PATH_MAX + 128];
    int rc = fileio_read(path, 0, fb, msg, sizeof msg);
    if (rc == ERR_NOMEM) return rc;
    if (rc < 0) {
        log_warn("TensorBoard events: %s; ignoring it", msg);
        return 0;
    }
    if (tfevents_scan_buffer(fb->data, fb->len, &w->seen) < 0)
        log_info("TensorBoard events: %s ends in %zu unreadable bytes (a record cut short or "
                 "corrupt); they are skipped",
                 path, fb->len - w->seen.valid_bytes);
    log_debug("TensorBoard events: %s holds %zu readable records", path, w->seen.records);
    return 0;
}

int tfevents_open(tfevents_writer *w, const char *dir, bool fresh, char *msg, size_t msglen)
{
    memset(w, 0, sizeof *w);
    if (snprintf(w->dir, sizeof w->dir, "%s", dir) >= (int)sizeof w->dir)
        return err_set(msg, msglen, ERR_INVALID, "directory name too long: %s", dir);
    DIR *d = opendir(dir);
    if (!d) return err_set_errno(msg, msglen, ERR_IO, errno, "cannot read the directory %s", dir);
    fileio_buf fb = {0};
    int rc = 0, removed = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (strncmp(e->d_name, TFEVENTS_PREFIX, strlen(TFEVENTS_PREFIX))) continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) continue;
        if (fresh) {
            if (unlink(path) == 0)
                removed++;
            else
                rc = err_set_errno(msg, msglen, ERR_IO, errno, "cannot remove %s", path);
            continue;
        }
        int64_t t = name_seconds(e->d_name);
        if (t > w->name_time) w->name_time = t;
        if (scan_file(w, path, &fb) == ERR_NOMEM)
            rc = err_set(msg, msglen, ERR_NOMEM, "out of memory reading %s", path);
    }
    closedir(d);
    fileio_buf_free(&fb);
    if (removed) log_info("removed %d old TensorBoard event file(s) from %s", removed, dir);
    if (!fresh && rc == 0)
        log_info("TensorBoard events in %s: scalars up to step %lld, session start %s, end %s", dir,
                 (long long)w->seen.last_step, w->seen.has_start ? "written" : "missing",
                 w->seen.has_end ? "written" : "missing");
    return rc;
}

int64_t tfevents_last_step(const tfevents_writer *w)
{
    return w->seen.last_step;
}

/* The file name's host part: the host name with anything but [A-Za-z0-9._-]
 * replaced, "localhost" when unknown. */
static void host_part(char *buf, size_t n)
{
    if (gethostname(buf, n) != 0 || !buf[0]) snprintf(buf, n, "localhost");
    buf[n - 1] = '\0';
    for (char *p = buf; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *p))
            *p = '_';
}

/* Creates this run's file, fsyncs the directory and frames the
 * file_version record into W->buf. The time in its name is later than every
 * existing file's, so names sort in writing order. After a failure once the
 * file exists, W->open is true (event_write closes and removes it). */
static int create_file(tfevents_writer *w, double wall_time, char *msg, size_t msglen)
{
    char host[256];
    host_part(host, sizeof host);
    int64_t t = (int64_t)time(NULL);
    if (t <= w->name_time) t = w->name_time + 1;
    for (int tries = 0;; tries++, t++) {
        if (snprintf(w->path, sizeof w->path, "%s/" TFEVENTS_PREFIX "%010lld.%s.%d", w->dir,
                     (long long)t, host, (int)getpid()) >= (int)sizeof w->path) {
            w->path[0] = '\0';
            return err_set(msg, msglen, ERR_INVALID, "event file name too long in %s", w->dir);
        }
        w->fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (w->fd >= 0) {
            w->open = true;
            break;
        }
        if (errno != EEXIST || tries == 10) {
            int e = errno;
            char path[PATH_MAX];
            snprintf(path, sizeof path, "%s", w->path);
            w->path[0] = '\0';
            return err_set_errno(msg, msglen, fileio_err_for_errno(e), e, "cannot create %s", path);
        }
    }
    w->name_time = t;
    /* The new name durable as the records will be: the directory, once. */
    int dfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        int e = errno;
        if (dfd >= 0) close(dfd);
        return err_set_errno(msg, msglen, fileio_err_for_errno(e), e,
                             "cannot sync the directory %s", w->dir);
    }
    close(dfd);
    tfevents_pb m = {0};
    tfevents_pb_double(&m, EVENT_WALL_TIME, wall_time);
    tfevents_pb_string(&m, EVENT_FILE_VERSION, TFEVENTS_FILE_VERSION);
    tfevents_frame(&w->buf, m.data, m.len);
    bool failed = m.failed;
    tfevents_pb_free(&m);
    return failed ? err_set(msg, msglen, ERR_NOMEM, "out of memory") : 0;
}

/* Starts the Event of the call: W->msg holds wall time and step, the
 * summary begun (its mark in *MARK). */
static void event_begin(tfevents_writer *w, double wall_time, int64_t step, size_t *mark)
{
    w->msg.len = 0;
    tfevents_pb_double(&w->msg, EVENT_WALL_TIME, wall_time);
    if (step) tfevents_pb_int(&w->msg, EVENT_STEP, step);
    *mark = tfevents_pb_begin(&w->msg, EVENT_SUMMARY);
}

/* Ends the Event begun by event_begin, frames it (after the file_version
 * record when the file is new), writes the records with one write(2) and
 * syncs them. */
static int event_write(tfevents_writer *w, size_t mark, double wall_time, char *msg, size_t msglen)
{
    if (w->dead) return err_set(msg, msglen, ERR_IO, "an earlier write to %s failed", w->path);
    tfevents_pb_end(&w->msg, mark);
    w->buf.len = 0;
    w->buf.failed = false;
    int rc = 0;
    bool created = !w->open, written = false; // this call creates the file / wrote to it
    if (!w->open && (rc = create_file(w, wall_time, msg, msglen))) goto fail;
    if (w->msg.failed) {
        rc = err_set(msg, msglen, ERR_NOMEM, "out of memory building a TensorBoard event");
        goto fail;
    }
    tfevents_frame(&w->buf, w->msg.data, w->msg.len);
    if (w->buf.failed) {
        rc = err_set(msg, msglen, ERR_NOMEM, "out of memory building a TensorBoard event");
        goto fail;
    }
    written = true;
    rc = fileio_write_all(w->fd, w->buf.data, w->buf.len, NULL);
    if (rc == 0 && fdatasync(w->fd) != 0) rc = fileio_err_for_errno(errno);
    if (rc < 0) {
        rc = err_set_errno(msg, msglen, rc, errno, "cannot write %s", w->path);
        goto fail;
    }
    return 0;
fail:
    w->dead = true;
    if (w->open) close(w->fd);
    /* a file this call created and wrote nothing to is not left behind */
    if (created && w->open && !written) unlink(w->path);
    w->open = false;
    return rc;
}

int tfevents_scalars(tfevents_writer *w, int64_t step, double wall_time, const tfevents_scalar *v,
                     size_t n, char *msg, size_t msglen)
{
    if (step <= w->seen.last_step) return 0;
    size_t mark;
    event_begin(w, wall_time, step, &mark);
    for (size_t i = 0; i < n; i++) {
        size_t vm = tfevents_pb_begin(&w->msg, SUMMARY_VALUE);
        tfevents_pb_string(&w->msg, VALUE_TAG, v[i].tag);
        tfevents_pb_float(&w->msg, VALUE_SIMPLE, (float)v[i].value);
        tfevents_pb_end(&w->msg, vm);
    }
    int rc = event_write(w, mark, wall_time, msg, msglen);
    if (rc == 0) w->seen.last_step = step;
    return rc;
}

int tfevents_epoch(tfevents_writer *w, const json_t *rec, double objective, double wall_time,
                   char *msg, size_t msglen)
{
    static const char *const tags[][2] = {
        {"train/loss", "train_loss"},
        {"train/accuracy", "train_accuracy"},
        {"val/loss", "val_loss"},
        {"val/accuracy", "val_accuracy"},
        {"val/precision", "val_precision"},
        {"val/recall", "val_recall"},
        {"val/f1", "val_f1"},
        {"train/lr", "lr"},
    };
    enum { NTAGS = sizeof tags / sizeof tags[0] };
    tfevents_scalar v[NTAGS + 1];
    size_t n = 0;
    for (size_t i = 0; i < NTAGS; i++) {
        const json_t *x = json_object_get(rec, tags[i][1]);
        if (json_is_number(x)) v[n++] = (tfevents_scalar){tags[i][0], json_number_value(x)};
    }
    v[n++] = (tfevents_scalar){"objective", objective};
    return tfevents_scalars(w, json_integer_value(json_object_get(rec, "epoch")), wall_time, v, n,
                            msg, msglen);
}

/* Appends to W->msg a summary Value of the hparams plugin with tag TAG whose
 * content is W->inner (a serialized HParamsPluginData). */
static void hparams_value(tfevents_writer *w, const char *tag)
{
    tfevents_pb *m = &w->msg;
    size_t vm = tfevents_pb_begin(m, SUMMARY_VALUE);
    tfevents_pb_string(m, VALUE_TAG, tag);
    size_t tm = tfevents_pb_begin(m, VALUE_TENSOR);
    tfevents_pb_int(m, TENSOR_DTYPE, DT_FLOAT);
    size_t sm = tfevents_pb_begin(m, TENSOR_SHAPE);
    size_t dm = tfevents_pb_begin(m, SHAPE_DIM); // one dimension of size 0 (the default)
    tfevents_pb_end(m, dm);
    tfevents_pb_end(m, sm);
    tfevents_pb_end(m, tm);
    size_t mm = tfevents_pb_begin(m, VALUE_METADATA);
    size_t pm = tfevents_pb_begin(m, METADATA_PLUGIN_DATA);
    tfevents_pb_string(m, PLUGIN_NAME, "hparams");
    if (w->inner.failed) m->failed = true;
    tfevents_pb_bytes(m, PLUGIN_CONTENT, w->inner.data, w->inner.len);
    tfevents_pb_end(m, pm);
    tfevents_pb_end(m, mm);
    tfevents_pb_end(m, vm);
}

int tfevents_session_start(tfevents_writer *w, const json_t *hparams, const char *group,
                           double start_time, char *msg, size_t msglen)
{
    if (w->seen.has_start) return 0;
    tfevents_pb *h = &w->inner;
    h->len = 0;
    h->failed = false;
    size_t sm = tfevents_pb_begin(h, HPARAMS_SESSION_START);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)hparams, key, val)
    {
        if (!json_is_number(val) && !json_is_string(val) && !json_is_boolean(val)) continue;
        size_t em = tfevents_pb_begin(h, START_HPARAMS);
        tfevents_pb_string(h, MAP_KEY, key);
        size_t vm = tfevents_pb_begin(h, MAP_VALUE);
        if (json_is_number(val))
            tfevents_pb_double(h, PBVALUE_NUMBER, json_number_value(val));
        else if (json_is_string(val))
            tfevents_pb_string(h, PBVALUE_STRING, json_string_value(val));
        else
            tfevents_pb_int(h, PBVALUE_BOOL, json_is_true(val));
        tfevents_pb_end(h, vm);
        tfevents_pb_end(h, em);
    }
    if (group && *group) tfevents_pb_string(h, START_GROUP_NAME, group);
    tfevents_pb_double(h, START_TIME, start_time);
    tfevents_pb_end(h, sm);
    size_t mark;
    event_begin(w, start_time, 0, &mark);
    hparams_value(w, TFEVENTS_TAG_SESSION_START);
    int rc = event_write(w, mark, start_time, msg, msglen);
    if (rc == 0) w->seen.has_start = true;
    return rc;
}

int tfevents_session_end(tfevents_writer *w, tfevents_status status, int64_t step, double end_time,
                         char *msg, size_t msglen)
{
    if (w->seen.has_end) return 0;
    tfevents_pb *h = &w->inner;
    h->len = 0;
    h->failed = false;
    size_t em = tfevents_pb_begin(h, HPARAMS_SESSION_END);
    tfevents_pb_int(h, END_STATUS, status);
    tfevents_pb_double(h, END_TIME, end_time);
    tfevents_pb_end(h, em);
    size_t mark;
    event_begin(w, end_time, step, &mark);
    hparams_value(w, TFEVENTS_TAG_SESSION_END);
    int rc = event_write(w, mark, end_time, msg, msglen);
    if (rc == 0) w->seen.has_end = true;
    return rc;
}

void tfevents_close(tfevents_writer *w)
{
    if (w->open) close(w->fd);
    w->open = false;
    tfevents_pb_free(&w->buf);
    tfevents_pb_free(&w->msg);
    tfevents_pb_free(&w->inner);
}
