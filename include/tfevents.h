/* tfevents — TensorBoard event files for one trial (README.md "TensorBoard"):
 * a hand-written protobuf encoder, TFRecord framing and the writer that
 * train.c drives, so `tensorboard --logdir <state_dir>/trials` shows every
 * trial's learning curves and its hyperparameters in the HParams view.
 *
 * Format. A file is a sequence of TFRecords: uint64 length (little endian),
 * masked CRC-32C of those 8 bytes, the data, masked CRC-32C of the data
 * (CRC-32C = Castagnoli, reflected polynomial 0x82f63b78; mask(c) =
 * ((c >> 15) | (c << 17)) + 0xa282ead8). Each record holds one Event proto
 * (tensorflow/core/util/event.proto): wall_time = 1 (double), step = 2
 * (int64), file_version = 3 ("brain.Event:2", the first record of a file),
 * summary = 5 (Summary: repeated Value = 1 with tag = 1, simple_value = 2,
 * tensor = 8, metadata = 9). Scalars are simple_value floats, one Event per
 * epoch with step = the epoch number (1-based). The hyperparameters are the
 * hparams plugin's summaries: tag "_hparams_/session_start_info" (step 0)
 * and "_hparams_/session_end_info" (step = the last epoch), each a Value
 * whose metadata.plugin_data is {plugin_name "hparams", content = a
 * serialized HParamsPluginData} and whose tensor is an empty DT_FLOAT tensor
 * (as TensorBoard's own writer puts there).
 *
 * Files and resume. A file is named events.out.tfevents.<seconds>.<host>.<pid>
 * and created lazily, with the first record a run writes, so a run that has
 * nothing new to say leaves no file. tfevents_open either removes the
 * directory's event files (a fresh start: the old ones belong to another
 * spec or to epochs about to be trained again) or reads them (a resume) to
 * learn the last scalar step and whether the session start and end are in;
 * the writer then skips whatever the directory already holds, so TensorBoard,
 * which reads every file of a run, never sees a step twice. Unreadable tails
 * (a record cut by a crash, a CRC mismatch) end the reading of that file:
 * what follows is written again by the new run. The writer appends to its
 * own new file only, never to an old one (an old file may end in a cut
 * record). Each call writes its records with one write(2), then
 * fdatasync(2) (and the directory is fsynced once the file is created): a
 * file holds whole epochs, durable once the call returns. A file whose
 * creation fails before any record is written is removed.
 *
 * Errors are negative codes (errors.h) with a message naming the file:
 * ERR_NOSPACE for ENOSPC/EDQUOT/EFBIG, ERR_IO otherwise, ERR_NOMEM. After a
 * failed write the writer is closed for the run (the file may end in a cut
 * record, which the next run's reading skips). */
#ifndef SWEEP_TFEVENTS_H
#define SWEEP_TFEVENTS_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TFEVENTS_PREFIX "events.out.tfevents."
#define TFEVENTS_FILE_VERSION "brain.Event:2"
#define TFEVENTS_TAG_SESSION_START "_hparams_/session_start_info"
#define TFEVENTS_TAG_SESSION_END "_hparams_/session_end_info"

/* ---- checksums ----------------------------------------------------------- */

/* CRC-32C (Castagnoli) of the N bytes at DATA ("123456789" -> 0xe3069283). */
uint32_t tfevents_crc32c(const void *data, size_t n);
/* TFRecord's masked CRC-32C of the N bytes at DATA. */
uint32_t tfevents_masked_crc(const void *data, size_t n);

/* ---- protobuf encoding --------------------------------------------------- */

/* A growable output buffer; zero-initialise before use. Appends that run out
 * of memory set FAILED and are dropped, so a message is built without a check
 * per field and checked once at the end. */
typedef struct {
    uint8_t *data; // LEN bytes (owned; free with tfevents_pb_free)
    size_t len;    // bytes written
    size_t cap;    // bytes allocated
    bool failed;   // an append ran out of memory; the contents are incomplete
} tfevents_pb;

void tfevents_pb_free(tfevents_pb *b);
/* Appends the N raw bytes at P. */
void tfevents_pb_raw(tfevents_pb *b, const void *p, size_t n);
/* Appends V as a base-128 varint (1 to 10 bytes). */
void tfevents_pb_varint(tfevents_pb *b, uint64_t v);
/* Field FIELD as a varint (int32/int64/enum/bool: negative values take 10
 * bytes, two's complement, as protobuf encodes them). */
void tfevents_pb_int(tfevents_pb *b, int field, int64_t v);
/* Field FIELD as a 64-bit double / 32-bit float, little endian. */
void tfevents_pb_double(tfevents_pb *b, int field, double v);
void tfevents_pb_float(tfevents_pb *b, int field, float v);
/* Field FIELD as length-delimited bytes (strings, bytes). */
void tfevents_pb_bytes(tfevents_pb *b, int field, const void *p, size_t n);
void tfevents_pb_string(tfevents_pb *b, int field, const char *s);
/* Starts an embedded message of field FIELD; returns the mark to hand to
 * tfevents_pb_end once its fields are appended. Marks nest (end the inner
 * message first). */
size_t tfevents_pb_begin(tfevents_pb *b, int field);
/* Ends the embedded message started at MARK: inserts its length. */
void tfevents_pb_end(tfevents_pb *b, size_t mark);

/* Appends one TFRecord holding the N bytes at DATA to OUT. */
void tfevents_frame(tfevents_pb *out, const void *data, size_t n);

/* ---- reading back (what a resume finds) ---------------------------------- */

/* What the event records of a file say, for the writer's skip rules. */
typedef struct {
    int64_t last_step;  // highest step of an Event holding a scalar, 0 when none
    bool has_start;     // a _hparams_/session_start_info value was seen
    bool has_end;       // a _hparams_/session_end_info value was seen
    size_t records;     // whole records with valid CRCs read
    size_t valid_bytes; // bytes of those records (the rest is cut or corrupt)
} tfevents_scan;

/* Reads the N bytes at DATA as TFRecords of Events, up to the first record
 * that is cut short or fails a CRC, merging into *S (last_step is the max,
 * the flags are or-ed, records and valid_bytes are this buffer's). Returns
 * 0, or ERR_PARSE when the bytes stop before the end (S is still filled
 * from the records before). */
int tfevents_scan_buffer(const uint8_t *data, size_t n, tfevents_scan *s);

/* ---- the writer ---------------------------------------------------------- */

typedef struct {
    char dir[PATH_MAX];  // the trial's out_dir
    char path[PATH_MAX]; // the file this run writes, "" until created
    int fd;              // its descriptor, while OPEN
    bool open;           // the file is created and open (false again after a failure)
    bool dead;           // a write failed: nothing more is written this run
    tfevents_scan seen;  // what the directory's files held at open, plus this run's
    int64_t name_time;   // seconds in the newest existing file name (names sort by time)
    tfevents_pb buf;     // records of the call in progress
    tfevents_pb msg;     // the Event being built
    tfevents_pb inner;   // an HParamsPluginData being built
} tfevents_writer;

/* One scalar of an epoch. */
typedef struct {
    const char *tag; // e.g. "val/loss"
    double value;    // written as a float (simple_value)
} tfevents_scalar;

/* Session status of the hparams plugin (tensorboard/plugins/hparams/api.proto). */
typedef enum {
    TFEVENTS_STATUS_UNKNOWN = 0,
    TFEVENTS_STATUS_SUCCESS = 1,
    TFEVENTS_STATUS_FAILURE = 2,
    TFEVENTS_STATUS_RUNNING = 3,
} tfevents_status;

/* Prepares *W for DIR (which exists). FRESH removes the event files of DIR
 * (logged); otherwise they are read (tfevents_scan_buffer) so that what they
 * hold is not written again. Creates no file. Returns 0 or a negative code
 * with MSG. *W must be closed with tfevents_close, also after a failure. */
int tfevents_open(tfevents_writer *w, const char *dir, bool fresh, char *msg, size_t msglen);
/* The last scalar step the directory holds (0 when none). */
int64_t tfevents_last_step(const tfevents_writer *w);
/* One Event at STEP (> 0) holding the N scalars; skipped (0) when the
 * directory already has step STEP or a later one. */
int tfevents_scalars(tfevents_writer *w, int64_t step, double wall_time, const tfevents_scalar *v,
                     size_t n, char *msg, size_t msglen);
/* The Event of one finished epoch from REC, an epoch record of the worker's
 * events (README.md "Contract": epoch, train_loss, train_accuracy, val_loss,
 * val_accuracy, val_precision, val_recall, val_f1, lr), at step = its
 * "epoch", with the tags train/loss, train/accuracy, val/loss,
 * val/accuracy, val/precision, val/recall, val/f1, train/lr and objective
 * (OBJECTIVE: the best value of the trial's objective metric up to this
 * epoch). Members missing from REC are left out; skipped like
 * tfevents_scalars. */
int tfevents_epoch(tfevents_writer *w, const json_t *rec, double objective, double wall_time,
                   char *msg, size_t msglen);
/* The HParams session start: HPARAMS (an object; numbers, strings and
 * booleans are written, other members skipped) with GROUP as group_name and
 * START_TIME as start_time_secs, at step 0. Skipped when the directory has
 * one already. */
int tfevents_session_start(tfevents_writer *w, const json_t *hparams, const char *group,
                           double start_time, char *msg, size_t msglen);
/* The HParams session end with STATUS at step STEP; skipped when the
 * directory has one already. */
int tfevents_session_end(tfevents_writer *w, tfevents_status status, int64_t step, double end_time,
                         char *msg, size_t msglen);
/* Closes the file and frees the buffers; *W can be opened again. Safe on a
 * zeroed writer. */
void tfevents_close(tfevents_writer *w);

#endif
