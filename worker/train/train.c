/* train — the fine-tuning loop of one trial (contract and design notes in
 * train.h): data and model set-up, optional frozen-prefix feature cache,
 * epochs of training steps with per-step learning rates, validation metrics,
 * checkpoints, resume, stop on signal, and the events the daemon records. */
#include "train.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "dataset.h"
#include "errors.h"
#include "events.h"
#include "featcache.h"
#include "fileio.h"
#include "image.h"
#include "log.h"
#include "metrics.h"
#include "numparse.h"
#include "optim.h"
#include "resnet.h"
#include "rng.h"
#include "lr_schedule.h"
#include "st_header.h"
#include "tfevents.h"
#include "timeutil.h"
#include "weights_meta.h"
#include "worker_cmds.h"

volatile sig_atomic_t train_stop_requested;

/* Seconds per phase of the trial, printed to stderr at the end when
 * SWEEP_PROFILE=1 (with the engine's per-unit figures from resnet_free). */
enum {
    PH_DATA,
    PH_MODEL,
    PH_PREPARE,
    PH_FEATURES,
    PH_GATHER,
    PH_FWD,
    PH_BWD,
    PH_ZERO,
    PH_OPTIM,
    PH_LOAD,
    PH_VAL,
    PH_CKPT,
    PH_BEST,
    PH_COUNT
};
static const char *const phase_names[PH_COUNT] = {
    "data open",    "model build", "prepare",    "prefix features", "batch gather",
    "forward+loss", "backward",    "zero grads", "optimizer",       "loader wait",
    "validation",   "checkpoint",  "best link"};
static double phase_secs[PH_COUNT];

static bool profiling(void)
{
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("SWEEP_PROFILE");
        on = e && *e && strcmp(e, "0");
    }
    return on;
}
#define PHASE(id, stmt)                                                                            \
    do {                                                                                           \
        double ph_t0_ = time_mono();                                                               \
        stmt;                                                                                      \
        phase_secs[id] += time_mono() - ph_t0_;                                                    \
    } while (0)

/* Outcomes of the inner phases besides 0 (internal, never exit codes). */
enum { PHASE_STOPPED = 1, PHASE_FAILED = 2 };

typedef struct {
    const trial_spec *s;          // the trial (borrowed)
    const trial_params *p;        // &s->params
    int input_size;               // network input side: the spec's, else the weights', else 224
    const char *input_size_from;  // where input_size came from: "spec", "weights", "default"
    image_norm norm;              // normalisation of every batch: the weights', else ImageNet's
    bool norm_from_weights;       // the weights' metadata gave mean or std
    dataset data;                 // train/val splits (owned)
    bool data_open;               // data needs dataset_close
    resnet *m;                    // the model (owned)
    optim opt;                    // optimizer over the trainable suffix (owned)
    bool opt_init;                // opt needs optim_free
    int max_batch;                // images per forward pass the model is prepared for
    int train_batch;              // min(batch_size, train images): loader batch size
    int spe;                      // training steps per epoch
    size_t feat;                  // floats per image of the frozen prefix's output
    const float *train_feat;      // (n_train, feat) prefix outputs (feat_mem or the entry), or NULL
    const float *val_feat;        // (n_val, feat) prefix outputs (feat_mem or the entry), or NULL
    int fsrc;                     // where the prefix outputs come from (feat_source)
    const char *features;         // start event "features": built, waited, reused or off
    float *feat_mem;              // in-memory prefix outputs, train rows then val rows (owned)
    featcache fc;                 // the shared feature cache in cache_dir (when fc_open)
    bool fc_open;                 // fc needs featcache_close
    featcache_slot slot;          // this trial's entry: lookup, wait, build (when slot_used)
    bool slot_used;               // slot needs featcache_slot_release
    float *build_dst;             // the entry's payload while building (inside slot)
    json_t *key_base;             // the feature cache key without freeze and floats (owned)
    float *gather;                // (max_batch, feat) batch assembled from the cache
    int *glabels;                 // (max_batch) labels of the gathered batch
    uint32_t *perm;               // (n_train) order of the current epoch (cached path)
    dataset_loader *train_loader; // uncached training batches, or NULL
    dataset_loader *val_loader;   // uncached validation batches, or NULL
    confusion cm;                 // validation confusion matrix of the current epoch
    json_t *metrics;              // array of epoch records (with confusion_matrix)
    int best_epoch;               // 1-based best epoch so far, 0 = none
    double best_value;            // objective value of best_epoch
    char hash[17];                // trialspec_hash
    char ckpt_file[PATH_MAX];     // out_dir/checkpoint.safetensors
    char best_file[PATH_MAX];     // out_dir/best.safetensors
    int epoch;                    // current epoch, 0-based
    int step;                     // steps done in the current epoch
    double loss_sum;              // sum over the epoch's steps of loss * images
    int64_t correct;              // training predictions right this epoch
    int64_t seen;                 // training images this epoch
    double lr;                    // last learning rate used
    double epoch_extra;           // seconds spent before the first epoch's loop (feature cache)
    double progress_every;        // seconds between progress events
    double last_progress;         // events_elapsed() of the last progress event
    long long signal_at_step;     // test hook: raise SIGTERM after this global step (0 = off)
    tfevents_writer tb;           // TensorBoard event files in out_dir (opened by tb_start)
    resnet_prep_view views[32];   // (ncopies) the model's prepared weights, since its prepare
    optim_copy copies[32];        // (ncopies) the same as the optimizer rewrites them
    int ncopies;                  // views / copies in use
    char msg[1024];               // reason of the last failure
    int exit_code;                // exit status of the last failure
} trainer;

/* ---- failures ------------------------------------------------------------ */

int train_exit_for(int err, char what)
{
    if (err == ERR_NOMEM) return WEXIT_NOMEM;
    if (err == ERR_DIVERGED) return WEXIT_DIVERGED;
    if (err == ERR_INTERRUPTED) return WEXIT_STOPPED;
    switch (what) {
    case 'd':
        return err == ERR_INVALID ? WEXIT_SPEC : WEXIT_DATA;
    case 'm':
        return WEXIT_MODEL;
    default:
        return WEXIT_SPEC;
    }
}

/* Records a failure: message, exit status; returns PHASE_FAILED. */
static int fail(trainer *t, int exit_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(trainer *t, int exit_code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->msg, sizeof t->msg, fmt, ap);
    va_end(ap);
    t->exit_code = exit_code;
    return PHASE_FAILED;
}

/* The exit status for a file of the trial that could not be written with
 * error RC: out of memory, no space (WEXIT_NOSPACE: the daemon requeues the
 * trial without using an attempt, and it resumes from its last checkpoint),
 * else a data error. */
static int write_exit(int rc)
{
    return rc == ERR_NOMEM ? WEXIT_NOMEM : rc == ERR_NOSPACE ? WEXIT_NOSPACE : WEXIT_DATA;
}

/* Emits an event the daemon must see (start, epoch, checkpoint, done): when
 * it cannot be written for lack of space the trial stops with WEXIT_NOSPACE,
 * before anything that would keep a resumed run from writing it again (the
 * epoch event goes before that epoch's checkpoint). Other write failures (a
 * closed pipe) are logged by events.c and not fatal. Returns 0 or
 * PHASE_FAILED. */
static int emit_checked(trainer *t, const char *name, json_t *fields)
{
    if (events_emit(name, fields) == ERR_NOSPACE)
        return fail(t, WEXIT_NOSPACE, "%s", events_last_error());
    return 0;
}

/* malloc that records the size on failure (exit 6 names it). */
static void *talloc(trainer *t, size_t bytes, const char *what)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) fail(t, WEXIT_NOMEM, "out of memory: allocating %zu bytes for %s failed", bytes, what);
    return p;
}

/* ---- small helpers ------------------------------------------------------- */

static int mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return ENAMETOOLONG;
    for (char *q = buf + 1; *q; q++) {
        if (*q != '/') continue;
        *q = '\0';
        if (mkdir(buf, 0755) && errno != EEXIST) return errno;
        *q = '/';
    }
    if (mkdir(buf, 0755) && errno != EEXIST) return errno;
    struct stat st;
    if (stat(buf, &st) || !S_ISDIR(st.st_mode)) return ENOTDIR;
    return 0;
}

static double env_double(const char *name, double dflt)
{
    const char *v = getenv(name);
    if (!v || !*v) return dflt;
    double d;
    char msg[200];
    if (numparse_double(name, v, 0, HUGE_VAL, &d, msg, sizeof msg)) {
        log_warn("%s; using %g", msg, dflt);
        return dflt;
    }
    return d;
}

static size_t feature_cache_limit(void)
{
    double mb = env_double("SWEEP_FEATURE_CACHE_MB", -1);
    if (mb >= 0 && getenv("SWEEP_FEATURE_CACHE_MB")) return (size_t)(mb * 1048576.0);
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || psz <= 0) return (size_t)1 << 30;
    return (size_t)pages * (size_t)psz / 4;
}

static json_t *class_names_json(const trainer *t)
{
    json_t *a = json_array();
    for (int i = 0; a && i < t->data.nclasses; i++)
        json_array_append_new(a, json_string(t->data.classes[i]));
    return a;
}

/* Objective value of an epoch record. */
static double record_value(const trainer *t, const json_t *rec)
{
    return json_number_value(json_object_get(rec, trialspec_metric_name(t->s->metric)));
}

static json_t *rng_json(const trainer *t)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:s}", "seed", (json_int_t)t->s->seed, "shuffle",
                     "rng_derive(rng_derive(seed, DATASET_STREAM_SHUFFLE), epoch)", "augment",
                     "rng_derive(rng_derive(rng_derive(seed, DATASET_STREAM_AUGMENT), epoch), "
                     "image)",
                     "dropout",
                     "rng_derive(rng_derive(rng_derive(seed, TRAIN_STREAM_DROPOUT), epoch), step)",
                     "head", "rng_derive(seed, TRAIN_STREAM_HEAD)");
}

static int build_model(trainer *t);

/* ---- checkpoints --------------------------------------------------------- */

/* The checkpoint metadata shared by checkpoint.safetensors and
 * best.safetensors, for EPOCH finished epochs and STEP steps into the next;
 * rng and train_state are left NULL for the caller. The result points into
 * *MI (the arch name), which the caller keeps alive while it is used. */
static ckpt_info ckpt_info_for(const trainer *t, resnet_info *mi, int epoch, int step)
{
    resnet_get_info(t->m, mi);
    return (ckpt_info){
        .arch = mi->arch,
        .classes = t->data.classes,
        .nclasses = t->data.nclasses,
        .input_size = t->input_size,
        .norm = &t->norm,
        .epoch = epoch,
        .step = step,
        .best_epoch = t->best_epoch,
        .spec_hash = t->hash,
        .metrics = t->metrics,
    };
}

/* Writes checkpoint.safetensors recording EPOCHS_DONE finished epochs and
 * STEP steps into the next one (with the running sums when STEP > 0). */
static int save_checkpoint(trainer *t, int epochs_done, int step)
{
    json_t *state = NULL;
    if (step > 0)
        state = json_pack("{s:f, s:I, s:I, s:f}", "loss_sum", t->loss_sum, "correct",
                          (json_int_t)t->correct, "seen", (json_int_t)t->seen, "lr", t->lr);
    json_t *rng = rng_json(t);
    resnet_info mi;
    ckpt_info info = ckpt_info_for(t, &mi, epochs_done, step);
    info.rng = rng;
    info.train_state = state;
    char msg[512];
    int rc = ckpt_save(t->ckpt_file, t->m, &t->opt, &info, msg, sizeof msg);
    json_decref(state);
    json_decref(rng);
    if (rc < 0) return fail(t, write_exit(rc), "writing checkpoint: %s", msg);
    json_t *ev = json_pack("{s:i, s:s}", "epoch", epochs_done, "path", t->ckpt_file);
    if (step > 0) json_object_set_new(ev, "step", json_integer(step));
    return emit_checked(t, "checkpoint", ev);
}

static int save_best(trainer *t)
{
    resnet_info mi;
    ckpt_info info = ckpt_info_for(t, &mi, t->best_epoch, 0);
    char msg[512];
    int rc = ckpt_save(t->best_file, t->m, NULL, &info, msg, sizeof msg);
    if (rc < 0) return fail(t, write_exit(rc), "writing best weights: %s", msg);
    return 0;
}

/* Makes best.safetensors the checkpoint just written for the best epoch: a
 * hard link (made under a temporary name, then renamed over the old best
 * file), so the best weights cost no second write; the next checkpoint is a
 * new file, so the link keeps this epoch's. Where links are not possible the
 * weights are written separately. */
static int link_best(trainer *t)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.link", t->best_file);
    unlink(tmp);
    if (link(t->ckpt_file, tmp) == 0) {
        if (rename(tmp, t->best_file) == 0) return 0;
        log_warn("cannot rename %s to %s: %s; writing the best weights separately", tmp,
                 t->best_file, strerror(errno));
        unlink(tmp);
    } else {
        log_debug("cannot link %s: %s; writing the best weights separately", tmp, strerror(errno));
    }
    return save_best(t);
}

/* After a resume: best.safetensors must hold the recorded best epoch. It may
 * lag when the worker died between writing the checkpoint of a new best
 * epoch and linking it; then the checkpoint is that epoch and is linked now. */
static int check_best_file(trainer *t, int ckpt_epoch, int ckpt_step)
{
    if (t->best_epoch < 1) return 0;
    st_file *f = NULL;
    char msg[512];
    int best_in_file = -1;
    if (st_open(&f, t->best_file, msg, sizeof msg) == 0) {
        const char *e = st_metadata(f, "epoch");
        if (e && numparse_int("epoch", e, 0, INT_MAX, &best_in_file, msg, sizeof msg))
            best_in_file = -1;
        st_close(f);
    }
    if (best_in_file == t->best_epoch) return 0;
    if (ckpt_epoch == t->best_epoch && ckpt_step == 0) {
        log_info("%s does not hold epoch %d yet: linking the checkpoint", t->best_file,
                 t->best_epoch);
        return link_best(t);
    }
    log_warn("%s holds epoch %d, not the best epoch %d (lost in a crash); it is replaced when a "
             "better epoch comes",
             t->best_file, best_in_file, t->best_epoch);
    return 0;
}

/* Looks for a checkpoint of this spec and restores it into the built (not
 * yet prepared) model. Returns 1 when it was taken over, 0 when training
 * starts fresh (the reason is logged), PHASE_FAILED only for out of memory. */
static int try_resume(trainer *t)
{
    if (access(t->ckpt_file, F_OK) != 0) return 0;
    st_file *f = NULL;
    ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    char msg[512] = "";
    int result = 0;
    if (st_open(&f, t->ckpt_file, msg, sizeof msg) < 0) {
        log_warn("ignoring checkpoint %s (starting fresh): %s", t->ckpt_file, msg);
        goto out;
    }
    if (ckpt_read_meta(f, &meta, msg, sizeof msg) < 0) {
        log_warn("ignoring checkpoint %s (starting fresh): %s", t->ckpt_file, msg);
        goto out;
    }
    if (!meta.spec_hash || strcmp(meta.spec_hash, t->hash)) {
        log_info("checkpoint %s was made by a different trial spec (hash %s, this spec %s): "
                 "starting fresh",
                 t->ckpt_file, meta.spec_hash ? meta.spec_hash : "none", t->hash);
        goto out;
    }
    bool same_classes = meta.nclasses == t->data.nclasses;
    for (int i = 0; same_classes && i < meta.nclasses; i++)
        same_classes = !strcmp(meta.classes[i], t->data.classes[i]);
    if (!same_classes) {
        log_info("checkpoint %s has other class names than %s now: starting fresh", t->ckpt_file,
                 t->s->train_dir);
        goto out;
    }
    if (meta.epoch < 0 || meta.epoch > t->p->epochs || !json_is_array(meta.metrics) ||
        json_array_size(meta.metrics) != (size_t)meta.epoch || meta.best_epoch > meta.epoch ||
        (meta.epoch > 0 && meta.best_epoch < 1)) {
        log_warn("checkpoint %s has inconsistent epoch records: starting fresh", t->ckpt_file);
        goto out;
    }
    if (meta.step > 0 && !json_is_object(meta.train_state)) {
        log_warn("checkpoint %s lacks the state of its part-done epoch: starting fresh",
                 t->ckpt_file);
        goto out;
    }
    int rc = resnet_load(t->m, f, msg, sizeof msg);
    if (rc < 0) {
        if (rc == ERR_NOMEM) {
            result = fail(t, WEXIT_NOMEM, "restoring %s: %s", t->ckpt_file, msg);
            goto out;
        }
        /* A partial copy may have happened: rebuild the model from the spec. */
        log_warn("ignoring checkpoint %s (starting fresh): %s", t->ckpt_file, msg);
        resnet_free(t->m);
        t->m = NULL;
        result = build_model(t) ? PHASE_FAILED : 0;
        goto out;
    }
    /* Accepted: take over its records. The optimizer state is restored once
     * the optimizer exists (see run). */
    json_decref(t->metrics);
    t->metrics = json_incref(meta.metrics);
    t->best_epoch = meta.best_epoch;
    if (t->best_epoch > 0)
        t->best_value = record_value(t, json_array_get(t->metrics, (size_t)t->best_epoch - 1));
    t->epoch = meta.epoch;
    t->step = meta.step;
    if (meta.step > 0) {
        t->loss_sum = json_number_value(json_object_get(meta.train_state, "loss_sum"));
        t->correct = json_integer_value(json_object_get(meta.train_state, "correct"));
        t->seen = json_integer_value(json_object_get(meta.train_state, "seen"));
        t->lr = json_number_value(json_object_get(meta.train_state, "lr"));
    }
    log_info("resuming from %s: %d epoch(s) done, %d step(s) into the next", t->ckpt_file,
             meta.epoch, meta.step);
    result = 1;
out:
    if (result == 0 && f) {
        /* A stale best file from another spec must not pass for this trial's. */
        if (unlink(t->best_file) == 0) log_info("removed stale %s", t->best_file);
    }
    ckpt_meta_free(&meta);
    st_close(f);
    return result;
}

/* ---- TensorBoard --------------------------------------------------------- */

/* Opens the event files of out_dir (a fresh start removes the old ones) and
 * writes what they lack of the session start and of the epochs already done
 * (a resume's checkpoint records), so the files hold every epoch once. */
static int tb_start(trainer *t, bool resumed)
{
    char msg[PATH_MAX + 256];
    int rc = tfevents_open(&t->tb, t->s->out_dir, !resumed, msg, sizeof msg);
    if (rc == 0) {
        json_t *hp = params_to_json(t->p);
        json_object_set_new(hp, "job", json_integer(t->s->job));
        char group[32];
        snprintf(group, sizeof group, "%lld", (long long)t->s->trial);
        rc = hp ? tfevents_session_start(&t->tb, hp, group, time_wall(), msg, sizeof msg)
                : err_set(msg, sizeof msg, ERR_NOMEM, "out of memory");
        json_decref(hp);
    }
    double best = 0;
    for (size_t i = 0; rc == 0 && i < json_array_size(t->metrics); i++) {
        const json_t *rec = json_array_get(t->metrics, i);
        double v = record_value(t, rec);
        if (i == 0 || trialspec_better(t->s, v, best)) best = v;
        rc = tfevents_epoch(&t->tb, rec, best, time_wall(), msg, sizeof msg);
    }
    if (rc < 0) return fail(t, write_exit(rc), "TensorBoard events: %s", msg);
    return 0;
}

/* The epoch record REC just finished (t->best_value updated). */
static int tb_epoch(trainer *t, const json_t *rec)
{
    char msg[PATH_MAX + 256];
    int rc = tfevents_epoch(&t->tb, rec, t->best_value, time_wall(), msg, sizeof msg);
    if (rc < 0) return fail(t, write_exit(rc), "TensorBoard events: %s", msg);
    return 0;
}

/* ---- features ------------------------------------------------------------ */

/* Where the frozen prefix's outputs come from (trainer.fsrc). */
typedef enum {
    FEAT_NONE = 0, // nothing frozen, or the outputs would not fit: the prefix runs every step
    FEAT_MEMORY,   // computed into feat_mem by this trial ("off")
    FEAT_ENTRY,    // mapped from the cache entry: found there ("reused"), or built or waited
                   // for and ready
    FEAT_BUILD,    // this trial builds the entry (holds its lock; "built")
    FEAT_WAIT,     // another process builds it; this trial waits for it ("waited")
} feat_source;

/* Images per prefix pass while computing features, whatever the trial's
 * batch size: the engine's results may depend on the batch size, so every
 * trial computes an entry in the same batches (and a deeper prefix from a
 * shallower entry in the same batches too), which makes entries shared by
 * trials of any batch size identical to what each would compute. */
#define FEATURE_BATCH 64

/* Whether the prefix's outputs are ready to use. */
static bool features_ready(const trainer *t)
{
    return t->fsrc == FEAT_NONE || t->fsrc == FEAT_MEMORY || t->fsrc == FEAT_ENTRY;
}

/* Points train_feat/val_feat at BASE (train rows, then val rows). */
static void features_point(trainer *t, const float *base)
{
    t->train_feat = base;
    t->val_feat = base + t->data.train.n * t->feat;
}

/* Hash of the image list of SPLIT: the real path of its folder, then per
 * image in split order its relative path, size and modification time (the
 * rule of the decoded-image cache, dataset.h). */
static json_t *split_list_json(const dataset_split *split)
{
    featcache_hasher h;
    featcache_hash_init(&h);
    const dataset_scan *sc = split->scan;
    featcache_hash_add(&h, sc->real_root, strlen(sc->real_root) + 1);
    for (size_t i = 0; i < split->n; i++) {
        const dataset_file *f = &sc->files[split->file[i]];
        int64_t v[2] = {f->size, f->mtime_ns};
        featcache_hash_add(&h, f->rel, strlen(f->rel) + 1);
        featcache_hash_add(&h, v, sizeof v);
    }
    uint64_t out[2];
    featcache_hash_final(&h, out);
    char hex[33];
    snprintf(hex, sizeof hex, "%016llx%016llx", (unsigned long long)out[0],
             (unsigned long long)out[1]);
    return json_pack("{s:I, s:s}", "images", (json_int_t)split->n, "list", hex);
}

/* The content hash of this worker's executable, computed once: a rebuilt
 * engine never reads entries computed by another build. */
static const char *worker_hash(void)
{
    static char hex[33];
    uint64_t size;
    char msg[256];
    if (!hex[0] && featcache_hash_file("/proc/self/exe", hex, &size, msg, sizeof msg) < 0) {
        log_warn("feature cache: %s", msg);
        snprintf(hex, sizeof hex, "unknown");
    }
    return hex;
}

/* The content hash of the libjpeg-turbo library this process loaded,
 * computed once: a new library (another version may decode other pixels)
 * never reads entries decoded by another one. "static" when none is loaded
 * (a static build: the worker's own hash covers it). */
static const char *jpeg_hash(void)
{
    static char hex[33];
    uint64_t size;
    char msg[PATH_MAX + 64];
    if (hex[0]) return hex;
    const char *lib = image_jpeg_library();
    if (!lib) {
        snprintf(hex, sizeof hex, "static");
    } else if (featcache_hash_file(lib, hex, &size, msg, sizeof msg) < 0) {
        log_warn("feature cache: %s", msg);
        snprintf(hex, sizeof hex, "unknown");
    }
    return hex;
}

/* What produced the prefix frozen up to FZ: the hash of the names, shapes
 * and values of its tensors (parameters and batchnorm buffers) as they are
 * in the model now, so after a resume those of the checkpoint, and whatever
 * the weights file holds by then (a file rewritten between a checkpoint and
 * its resume must not key the old prefix's features as the new one's);
 * tensors outside the prefix (the head, trainable stages) are left out. A
 * new object. */
static json_t *prefix_json(trainer *t, freeze_kind fz)
{
    int nf = resnet_frozen_units_at(t->m, fz);
    featcache_hasher h;
    featcache_hash_init(&h);
    size_t n = 0, floats = 0;
    for (size_t i = 0; i < resnet_tensor_count(t->m); i++) {
        const resnet_tensor *x = resnet_tensor_at(t->m, i);
        if (x->unit >= nf) continue;
        int64_t dims[5] = {x->ndim, x->shape[0], x->shape[1], x->shape[2], x->shape[3]};
        featcache_hash_add(&h, x->name, strlen(x->name) + 1);
        featcache_hash_add(&h, dims, sizeof dims);
        featcache_hash_add(&h, x->data, x->numel * sizeof(float));
        n++;
        floats += x->numel;
    }
    uint64_t d[2];
    featcache_hash_final(&h, d);
    char hex[33];
    snprintf(hex, sizeof hex, "%016" PRIx64 "%016" PRIx64, d[0], d[1]);
    return json_pack("{s:s, s:I, s:I}", "tensors_hash", hex, "tensors", (json_int_t)n, "floats",
                     (json_int_t)floats);
}

/* The parts of the feature cache key that do not depend on the freeze
 * (README.md "Feature cache"): the evaluation view of the images (input
 * size, resize, crop, normalisation), the image lists, and what computes
 * it (this worker's build, OpenBLAS's configuration and kernel, the
 * libjpeg-turbo library, the thread count, the feature batch). What
 * produced the prefix is added per freeze (prefix_json). Made once per
 * trial into t->key_base; NULL with t->msg set when out of memory. */
static json_t *key_base(trainer *t)
{
    if (t->key_base) return t->key_base;
    resnet_info info;
    resnet_get_info(t->m, &info);
    json_t *mean = json_array(), *std = json_array();
    for (int c = 0; c < 3; c++) {
        json_array_append_new(mean, json_real(t->norm.mean[c]));
        json_array_append_new(std, json_real(t->norm.std[c]));
    }
    t->key_base = json_pack(
        "{s:i, s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:i, s:i, s:s, s:o, s:o, s:o, s:o}", "format",
        FEATCACHE_VERSION, "worker", worker_hash(), "blas", blas_core_name(), "openblas",
        blas_config(), "jpeg", jpeg_hash(), "threads", t->s->threads, "batch", FEATURE_BATCH,
        "arch", info.arch, "input_size", t->input_size, "eval_size", image_eval_size(t->input_size),
        "view",
        "shorter side resized to eval_size (antialiased), centre crop of input_size, /255, "
        "(x - mean) / std",
        "mean", mean, "std", std, "train", split_list_json(&t->data.train), "val",
        split_list_json(&t->data.val));
    if (!t->key_base) snprintf(t->msg, sizeof t->msg, "out of memory building the feature key");
    return t->key_base;
}

/* The key text of the features of the prefix frozen up to FZ: key_base
 * with the freeze (all and layer4 give the same features) and the floats
 * per image. A new string (owned) or NULL (t->msg says why). */
static char *features_key(trainer *t, freeze_kind fz)
{
    json_t *base = key_base(t);
    json_t *k = base ? json_deep_copy(base) : NULL;
    if (!k) return NULL;
    json_object_set_new(k, "freeze",
                        json_string(params_freeze_name(fz == FREEZE_ALL ? FREEZE_LAYER4 : fz)));
    json_object_set_new(k, "prefix", prefix_json(t, fz));
    json_object_set_new(k, "floats", json_integer((json_int_t)resnet_feature_floats_at(t->m, fz)));
    char *txt = json_dumps(k, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    json_decref(k);
    if (!txt) snprintf(t->msg, sizeof t->msg, "out of memory building the feature cache key");
    return txt;
}

/* Looks the trial's entry up in the shared cache. 0 with t->fsrc set
 * (REUSED, BUILD or WAIT), 1 when the cache cannot serve this trial (the
 * reason is logged; the features are computed in memory). */
static int features_lookup(trainer *t)
{
    const trial_spec *s = t->s;
    char msg[768];
    uint64_t rows = t->data.train.n + t->data.val.n;
    char *key = features_key(t, t->p->freeze);
    if (!key) {
        log_warn("feature cache not used: %s", t->msg);
        return 1;
    }
    int rc = featcache_open(&t->fc, s->cache_dir, (uint64_t)s->cache_max_mb << 20, msg, sizeof msg);
    t->fc_open = true;
    if (rc == 0) {
        rc = featcache_lookup(&t->fc, key, rows, t->feat, &t->slot, msg, sizeof msg);
        t->slot_used = true;
    }
    free(key);
    if (rc == FEATCACHE_HIT) {
        features_point(t, t->slot.entry.data);
        t->fsrc = FEAT_ENTRY;
        log_info("frozen-prefix features: reusing %s", t->slot.path);
        return 0;
    }
    if (rc == FEATCACHE_BUSY) {
        t->fsrc = FEAT_WAIT;
        log_info("frozen-prefix features: %s is being built by another trial; waiting for it",
                 t->slot.path);
        return 0;
    }
    if (rc == FEATCACHE_MISS) rc = featcache_build_begin(&t->slot, &t->build_dst, msg, sizeof msg);
    if (rc == 0) {
        t->fsrc = FEAT_BUILD;
        return 0;
    }
    log_warn("feature cache not used: %s; computing the features in memory", msg);
    return 1;
}

/* Allocates the in-memory outputs (train rows when TRAIN, then val rows). */
static int features_in_memory(trainer *t, bool train)
{
    size_t rows = (train ? t->data.train.n : 0) + t->data.val.n;
    if (!(t->feat_mem = talloc(t, rows * t->feat * sizeof(float), "the prefix features")))
        return PHASE_FAILED;
    t->fsrc = FEAT_MEMORY;
    t->features = "off";
    if (train)
        features_point(t, t->feat_mem);
    else
        t->val_feat = t->feat_mem;
    return 0;
}

/* Decides where the prefix outputs come from, before the start event
 * (CACHE_TRAIN / CACHE_VAL from setup_batches): the shared cache when the
 * spec allows it and augmentation is off, else memory. 0 or PHASE_FAILED. */
static int features_plan(trainer *t, bool cache_train, bool cache_val)
{
    const trial_spec *s = t->s;
    t->features = "off";
    if (!cache_train && !cache_val) return 0;
    if (cache_train && s->feature_cache && s->cache_dir && *s->cache_dir && s->cache_max_mb > 0 &&
        t->epoch < t->p->epochs && features_lookup(t) == 0) {
        static const char *const names[] = {
            [FEAT_ENTRY] = "reused", [FEAT_BUILD] = "built", [FEAT_WAIT] = "waited"};
        t->features = names[t->fsrc];
        return 0;
    }
    if (t->slot_used) featcache_slot_release(&t->slot);
    t->slot_used = false;
    return features_in_memory(t, cache_train);
}

/* Runs the frozen prefix over every image of SPLIT (split order) into DST
 * (n, feat), FEATURE_BATCH images per pass. Returns 0, PHASE_STOPPED or
 * PHASE_FAILED. */
static int compute_split(trainer *t, const dataset_split *split, float *dst)
{
    dataset_loader *l = NULL;
    int batch = split->n < FEATURE_BATCH ? (int)split->n : FEATURE_BATCH;
    if (dataset_loader_new(split, t->input_size, batch, t->s->seed, false, NULL, true, &l) < 0)
        return fail(t, WEXIT_NOMEM,
                    "out of memory: allocating the loader's batch buffers (2 x %zu bytes) failed",
                    (size_t)batch * 3 * (size_t)t->input_size * (size_t)t->input_size *
                        sizeof(float));
    dataset_loader_start(l, 0);
    dataset_batch b;
    int rc = 0;
    while (dataset_loader_next(l, &b) == 1) {
        /* split order: the batch is rows index[0] .. index[0] + n - 1 */
        resnet_features(t->m, b.x, b.n, dst + (size_t)b.index[0] * t->feat);
        if (train_stop_requested) {
            rc = PHASE_STOPPED;
            break;
        }
    }
    dataset_loader_free(l);
    return rc;
}

/* Continues the shallower prefix of SRC (rows of FROM's features, in split
 * order) for the N rows of one split into DST, in the passes compute_split
 * makes. */
static int deepen_split(trainer *t, freeze_kind from, const float *src, size_t n, float *dst)
{
    size_t in = resnet_feature_floats_at(t->m, from);
    for (size_t lo = 0; lo < n; lo += FEATURE_BATCH) {
        int b = (int)(n - lo < FEATURE_BATCH ? n - lo : FEATURE_BATCH);
        resnet_features_from(t->m, from, src + lo * in, b, dst + lo * t->feat);
        if (train_stop_requested) return PHASE_STOPPED;
    }
    return 0;
}

/* resnet_prepare for BATCH images per pass, then the optimizer's copies of
 * the prepared weights (resnet_prep_views: valid until the next prepare). */
static int prepare_model(trainer *t, int batch, char *msg, size_t len)
{
    int rc = resnet_prepare(t->m, t->p->freeze, (float)t->p->dropout, batch, t->input_size,
                            t->input_size, msg, len);
    t->ncopies = rc < 0 ? 0 : resnet_prep_views(t->m, t->views, 32);
    for (int i = 0; i < t->ncopies; i++) {
        const resnet_prep_view *v = &t->views[i];
        t->copies[i] = (optim_copy){v->offset, v->oc, v->c, v->kk, v->ntaps, v->tap, v->prep};
    }
    return rc;
}

/* Fills DST (train rows, then val rows; TRAIN false: val rows only) from
 * the images, or, for the shared cache (FROM_CACHE), from the deepest
 * shallower prefix's entry when one is cached. The model runs with batch
 * FEATURE_BATCH meanwhile (prepared for it when the trial's is smaller).
 * Returns 0, PHASE_STOPPED or PHASE_FAILED. */
static int compute_features(trainer *t, float *dst, bool train, bool from_cache)
{
    size_t nt = train ? t->data.train.n : 0, nv = t->data.val.n;
    size_t most = t->data.train.n > nv ? t->data.train.n : nv;
    int fb = most < FEATURE_BATCH ? (int)most : FEATURE_BATCH;
    char msg[512];
    int rc = 0;
    if (t->max_batch < fb && prepare_model(t, fb, msg, sizeof msg) < 0)
        return fail(t, WEXIT_NOMEM, "preparing the model for the feature batch: %s", msg);
    freeze_kind from = FREEZE_NONE;
    featcache_entry shallow = {0};
    int top = t->p->freeze == FREEZE_ALL ? FREEZE_LAYER4 : (int)t->p->freeze;
    resnet_info info;
    resnet_get_info(t->m, &info);
    /* A deeper freeze from a shallower one's entry: ResNet's stages only (the
     * other families' prefixes are computed whole). */
    if (info.family != ARCH_RESNET || top > FREEZE_LAYER4) from_cache = false;
    for (int f = top - 1; from_cache && f >= FREEZE_STEM && !shallow.data; f--) {
        char *key = features_key(t, (freeze_kind)f);
        if (key && featcache_peek(&t->fc, key, nt + nv,
                                  resnet_feature_floats_at(t->m, (freeze_kind)f), &shallow))
            from = (freeze_kind)f;
        free(key);
    }
    if (shallow.data) {
        log_info("frozen-prefix features: continuing the cached %s features",
                 params_freeze_name(from));
        size_t in = resnet_feature_floats_at(t->m, from);
        rc = deepen_split(t, from, shallow.data, nt, dst);
        if (!rc) rc = deepen_split(t, from, shallow.data + nt * in, nv, dst + nt * t->feat);
        featcache_entry_free(&shallow);
    } else {
        if (train) rc = compute_split(t, &t->data.train, dst);
        if (!rc) rc = compute_split(t, &t->data.val, dst + nt * t->feat);
    }
    if (!rc && t->max_batch < fb && prepare_model(t, t->max_batch, msg, sizeof msg) < 0)
        return fail(t, WEXIT_NOMEM, "preparing the model again after the features: %s", msg);
    return rc;
}

/* Test hook: with SWEEP_TEST_FEATURE_HOLD=PATH a build, once computed and
 * before it is committed (lock held, temporary file written), creates
 * PATH.held and waits until PATH exists (or a stop is asked), so tests can
 * start a second trial against a build in progress or SIGKILL it there. */
static void test_hold(void)
{
    const char *p = getenv("SWEEP_TEST_FEATURE_HOLD");
    if (!p || !*p) return;
    char held[PATH_MAX + 8];
    snprintf(held, sizeof held, "%s.held", p);
    FILE *f = fopen(held, "w");
    if (f) fclose(f);
    log_info("SWEEP_TEST_FEATURE_HOLD: build held until %s exists", p);
    while (access(p, F_OK) != 0 && !train_stop_requested)
        usleep(10000);
}

/* Builds the trial's cache entry (the lock is held) and points the trial at
 * it; when it cannot be stored, the features stay in memory. Returns 0,
 * PHASE_STOPPED or PHASE_FAILED. */
static int features_build(trainer *t)
{
    int rc = compute_features(t, t->build_dst, true, true);
    if (rc) return rc;
    test_hold();
    char msg[768];
    if (featcache_build_commit(&t->slot, msg, sizeof msg) == 0) {
        features_point(t, t->slot.entry.data);
        t->fsrc = FEAT_ENTRY;
        log_info("frozen-prefix features: built %s", t->slot.path);
        return 0;
    }
    log_warn("feature cache: %s; computing the features in memory", msg);
    featcache_slot_release(&t->slot);
    t->slot_used = false;
    if (features_in_memory(t, true)) return PHASE_FAILED;
    return compute_features(t, t->feat_mem, true, false);
}

/* After the start event: computes, builds or waits for the prefix outputs
 * features_plan decided on. Returns 0, PHASE_STOPPED or PHASE_FAILED. */
static int features_fill(trainer *t)
{
    double t0 = time_mono();
    char msg[768];
    int rc = 0;
    if (t->fsrc == FEAT_MEMORY) {
        rc = compute_features(t, t->feat_mem, t->train_feat != NULL, false);
        if (!rc) log_info("frozen-prefix features computed in %.2f s", time_mono() - t0);
        return rc;
    }
    if (t->fsrc == FEAT_WAIT) {
        rc = featcache_wait(&t->slot, &train_stop_requested, msg, sizeof msg);
        if (rc == ERR_INTERRUPTED) return PHASE_STOPPED;
        if (rc == FEATCACHE_HIT) {
            features_point(t, t->slot.entry.data);
            t->fsrc = FEAT_ENTRY;
            log_info("frozen-prefix features: waited %.2f s for %s", time_mono() - t0,
                     t->slot.path);
            return 0;
        }
        if (rc == FEATCACHE_MISS) {
            log_info("frozen-prefix features: the other build of %s ended without an entry; "
                     "building it here",
                     t->slot.path);
            rc = featcache_build_begin(&t->slot, &t->build_dst, msg, sizeof msg);
        }
        if (rc) {
            log_warn("feature cache: %s; computing the features in memory", msg);
            featcache_slot_release(&t->slot);
            t->slot_used = false;
            if (features_in_memory(t, true)) return PHASE_FAILED;
            return compute_features(t, t->feat_mem, true, false);
        }
        t->fsrc = FEAT_BUILD;
    }
    if (t->fsrc == FEAT_BUILD) {
        rc = features_build(t);
        if (!rc) log_info("frozen-prefix features ready in %.2f s", time_mono() - t0);
    }
    SWEEP_ASSERT(rc || features_ready(t));
    return rc;
}

/* ---- training ------------------------------------------------------------ */

static void emit_progress(trainer *t, double epoch_t0, int64_t images_this_run)
{
    double now = events_elapsed();
    if (t->step < t->spe && now - t->last_progress < t->progress_every) return;
    t->last_progress = now;
    double dt = time_mono() - epoch_t0;
    json_t *ev = json_pack("{s:i, s:i, s:i, s:f, s:f}", "epoch", t->epoch + 1, "step", t->step,
                           "steps", t->spe, "loss", t->seen ? t->loss_sum / (double)t->seen : 0.0,
                           "images_per_s", dt > 0 ? (double)images_this_run / dt : 0.0);
    events_emit("progress", ev);
}

/* One optimizer step on N images: X is an image batch or, with FROM_FEAT,
 * cached prefix features. Returns 0 or PHASE_FAILED (diverged). */
static int train_step(trainer *t, const float *x, const int *labels, int n, bool from_feat)
{
    rng_t r;
    rng_seed(
        &r, rng_derive(rng_derive(rng_derive(t->s->seed, TRAIN_STREAM_DROPOUT), (uint64_t)t->epoch),
                       (uint64_t)t->step));
    const float *logits = NULL;
    float loss = 0;
    PHASE(PH_ZERO, resnet_zero_grad(t->m));
    PHASE(PH_FWD, {
        logits =
            from_feat ? resnet_forward_features(t->m, x, n, &r) : resnet_forward(t->m, x, n, &r);
        loss = resnet_loss(t->m, labels, (float)t->p->label_smoothing, NULL);
    });
    if (!isfinite(loss))
        return fail(t, WEXIT_DIVERGED, "training loss is %s at epoch %d step %d (lr %g)",
                    isnan(loss) ? "NaN" : "infinite", t->epoch + 1, t->step + 1, t->lr);
    int classes = t->data.nclasses;
    for (int i = 0; i < n; i++)
        if (metrics_argmax(logits + (size_t)i * (size_t)classes, classes) == labels[i])
            t->correct++;
    PHASE(PH_BWD, resnet_backward(t->m));
    t->lr = lr_schedule_at(t->p, t->epoch, t->step, t->spe);
    size_t count = 0;
    float *grads = NULL;
    float *params = resnet_trainable(t->m, &count, &grads);
    /* the tiny-map convolutions' prepared weights are rewritten in the
     * optimizer's pass, so the next forward does not build them */
    PHASE(PH_OPTIM, optim_step_copy(&t->opt, params, grads, (float)t->lr, t->copies, t->ncopies));
    if (t->ncopies > 0) resnet_prep_current(t->m);
    t->loss_sum += (double)loss * n;
    t->seen += n;
    t->step++;
    if (t->signal_at_step > 0 && (long long)t->epoch * t->spe + t->step == t->signal_at_step) {
        log_info("SWEEP_TEST_SIGNAL_AT_STEP: sending SIGTERM to myself after step %lld",
                 t->signal_at_step);
        raise(SIGTERM);
    }
    return 0;
}

/* The training steps of epoch t->epoch from step t->step. Returns 0,
 * PHASE_STOPPED (after the step in progress) or PHASE_FAILED. */
static int train_epoch(trainer *t, double epoch_t0)
{
    resnet_set_train(t->m, 1);
    size_t n_train = t->data.train.n;
    int64_t images = 0;
    int B = t->p->batch_size;
    if (t->train_feat) {
        for (size_t i = 0; i < n_train; i++)
            t->perm[i] = (uint32_t)i;
        rng_t r;
        rng_seed(&r,
                 rng_derive(rng_derive(t->s->seed, DATASET_STREAM_SHUFFLE), (uint64_t)t->epoch));
        rng_shuffle(&r, t->perm, n_train, sizeof *t->perm);
        while (t->step < t->spe) {
            size_t lo = (size_t)t->step * (size_t)B;
            size_t hi = lo + (size_t)B < n_train ? lo + (size_t)B : n_train;
            int n = (int)(hi - lo);
            double g0 = time_mono();
            for (int i = 0; i < n; i++) {
                uint32_t idx = t->perm[lo + (size_t)i];
                memcpy(t->gather + (size_t)i * t->feat, t->train_feat + (size_t)idx * t->feat,
                       t->feat * sizeof(float));
                t->glabels[i] = t->data.train.label[idx];
            }
            phase_secs[PH_GATHER] += time_mono() - g0;
            if (train_step(t, t->gather, t->glabels, n, true)) return PHASE_FAILED;
            images += n;
            emit_progress(t, epoch_t0, images);
            if (train_stop_requested && t->step < t->spe) return PHASE_STOPPED;
        }
        return 0;
    }
    if (t->step >= t->spe) return 0; // stopped during validation: nothing left to train
    dataset_loader_start(t->train_loader, t->epoch);
    dataset_batch b;
    for (int s = 0; s < t->step; s++)
        if (dataset_loader_next(t->train_loader, &b) != 1) break; // skip the done steps
    while (t->step < t->spe) {
        int got = 0;
        PHASE(PH_LOAD, got = dataset_loader_next(t->train_loader, &b));
        if (got != 1)
            return fail(t, WEXIT_DATA, "the training loader ended early at epoch %d step %d",
                        t->epoch + 1, t->step + 1);
        if (train_step(t, b.x, b.labels, b.n, false)) return PHASE_FAILED;
        images += b.n;
        emit_progress(t, epoch_t0, images);
        if (train_stop_requested && t->step < t->spe) return PHASE_STOPPED;
    }
    return 0;
}

/* Validation pass: fills *LOSS and the confusion matrix. Returns 0,
 * PHASE_STOPPED or PHASE_FAILED. */
static int validate(trainer *t, double *loss)
{
    resnet_set_train(t->m, 0);
    confusion_reset(&t->cm);
    int classes = t->data.nclasses;
    double sum = 0;
    size_t n_val = t->data.val.n;
    if (t->val_feat) {
        for (size_t lo = 0; lo < n_val; lo += (size_t)t->max_batch) {
            if (train_stop_requested) return PHASE_STOPPED;
            int n = (int)(n_val - lo < (size_t)t->max_batch ? n_val - lo : (size_t)t->max_batch);
            const float *logits =
                resnet_forward_features(t->m, t->val_feat + lo * t->feat, n, NULL);
            sum += (double)resnet_loss(t->m, t->data.val.label + lo, 0.0f, NULL) * n;
            for (int i = 0; i < n; i++)
                confusion_add(&t->cm, t->data.val.label[lo + (size_t)i],
                              metrics_argmax(logits + (size_t)i * (size_t)classes, classes));
        }
    } else {
        dataset_loader_start(t->val_loader, 0);
        dataset_batch b;
        while (dataset_loader_next(t->val_loader, &b) == 1) {
            if (train_stop_requested) return PHASE_STOPPED;
            const float *logits = resnet_forward(t->m, b.x, b.n, NULL);
            sum += (double)resnet_loss(t->m, b.labels, 0.0f, NULL) * b.n;
            for (int i = 0; i < b.n; i++)
                confusion_add(&t->cm, b.labels[i],
                              metrics_argmax(logits + (size_t)i * (size_t)classes, classes));
        }
    }
    *loss = n_val ? sum / (double)n_val : 0.0;
    if (!isfinite(*loss))
        return fail(t, WEXIT_DIVERGED, "validation loss is %s after epoch %d",
                    isnan(*loss) ? "NaN" : "infinite", t->epoch + 1);
    return 0;
}

/* Stop requested: checkpoint at the current position (unless SAVED says the
 * checkpoint of this position was just written), tell, exit 7. */
static int stop_now(trainer *t, bool saved)
{
    int sig = (int)train_stop_requested;
    if (!saved && save_checkpoint(t, t->epoch, t->step)) return PHASE_FAILED;
    json_t *ev = json_pack("{s:s, s:i, s:i, s:s}", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM",
                           "epoch", t->epoch, "step", t->step, "checkpoint", t->ckpt_file);
    events_emit("stopped", ev);
    log_info("stopped by %s after epoch %d step %d; checkpoint %s", strsignal(sig), t->epoch,
             t->step, t->ckpt_file);
    t->exit_code = WEXIT_STOPPED;
    return PHASE_STOPPED;
}

static int emit_done(trainer *t)
{
    if (t->best_epoch < 1) return fail(t, WEXIT_SPEC, "no epoch was run");
    json_t *best = json_array_get(t->metrics, (size_t)t->best_epoch - 1);
    json_t *ev = json_object();
    json_object_set_new(ev, "best_epoch", json_integer(t->best_epoch));
    static const char *const keys[] = {"val_accuracy", "val_loss",   "val_precision",  "val_recall",
                                       "val_f1",       "train_loss", "train_accuracy", NULL};
    for (int i = 0; keys[i]; i++)
        json_object_set(ev, keys[i], json_object_get(best, keys[i]));
    json_object_set(ev, "confusion_matrix", json_object_get(best, "confusion_matrix"));
    json_object_set_new(ev, "class_names", class_names_json(t));
    json_object_set_new(ev, "objective",
                        json_pack("{s:s, s:s, s:f}", "metric", trialspec_metric_name(t->s->metric),
                                  "goal", t->s->maximize ? "maximize" : "minimize", "value",
                                  t->best_value));
    json_object_set_new(ev, "epochs", json_integer((json_int_t)json_array_size(t->metrics)));
    json_object_set_new(ev, "best_path", json_string(t->best_file));
    json_object_set_new(ev, "checkpoint_path", json_string(t->ckpt_file));
    char msg[PATH_MAX + 256];
    int rc =
        tfevents_session_end(&t->tb, TFEVENTS_STATUS_SUCCESS, (int64_t)json_array_size(t->metrics),
                             time_wall(), msg, sizeof msg);
    if (rc < 0) {
        json_decref(ev);
        return fail(t, write_exit(rc), "TensorBoard events: %s", msg);
    }
    if (emit_checked(t, "done", ev)) return PHASE_FAILED;
    log_info("trial %lld done: best epoch %d, %s %.4f", (long long)t->s->trial, t->best_epoch,
             trialspec_metric_name(t->s->metric), t->best_value);
    return 0;
}

/* One epoch end to end from the current position. */
static int run_epoch(trainer *t)
{
    double t0 = time_mono() - t->epoch_extra;
    t->epoch_extra = 0;
    double ph0[PH_COUNT];
    memcpy(ph0, phase_secs, sizeof ph0);
    if (t->step == 0) {
        t->loss_sum = 0;
        t->correct = 0;
        t->seen = 0;
    }
    int rc = train_epoch(t, t0);
    if (rc == PHASE_STOPPED) return stop_now(t, false);
    if (rc) return rc;
    double val_loss = 0;
    PHASE(PH_VAL, rc = validate(t, &val_loss));
    if (rc == PHASE_STOPPED) return stop_now(t, false); // step == spe: only validation repeats
    if (rc) return rc;
    metrics_summary ms;
    confusion_summary(&t->cm, &ms);
    double secs = time_mono() - t0;
    json_t *rec =
        json_pack("{s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "epoch", t->epoch + 1,
                  "train_loss", t->seen ? t->loss_sum / (double)t->seen : 0.0, "train_accuracy",
                  t->seen ? (double)t->correct / (double)t->seen : 0.0, "val_loss", val_loss,
                  "val_accuracy", ms.accuracy, "val_precision", ms.precision, "val_recall",
                  ms.recall, "val_f1", ms.f1, "lr", t->lr, "seconds", secs);
    if (!rec) return fail(t, WEXIT_NOMEM, "out of memory building the epoch record");
    if (emit_checked(t, "epoch", json_deep_copy(rec))) {
        json_decref(rec);
        return PHASE_FAILED;
    }
    json_object_set_new(rec, "confusion_matrix", confusion_to_json(&t->cm));
    json_array_append_new(t->metrics, rec);
    double value = record_value(t, rec);
    t->epoch++;
    t->step = 0;
    bool best = t->best_epoch == 0 || trialspec_better(t->s, value, t->best_value);
    if (best) {
        t->best_epoch = t->epoch;
        t->best_value = value;
    }
    log_info("epoch %d/%d: train loss %.4f acc %.4f, val loss %.4f acc %.4f f1 %.4f (%.1f s)",
             t->epoch, t->p->epochs, t->seen ? t->loss_sum / (double)t->seen : 0.0,
             t->seen ? (double)t->correct / (double)t->seen : 0.0, val_loss, ms.accuracy, ms.f1,
             secs);
    t->loss_sum = 0;
    t->correct = 0;
    t->seen = 0;
    PHASE(PH_CKPT, rc = save_checkpoint(t, t->epoch, 0));
    if (rc) return PHASE_FAILED;
    if (best) PHASE(PH_BEST, rc = link_best(t));
    if (rc) return PHASE_FAILED;
    /* After the checkpoint, which is larger (on a full disk it fails first); an
     * epoch checkpointed but not yet in the event files is written by the resume. */
    if (tb_epoch(t, rec)) return PHASE_FAILED;
    if (profiling())
        log_info("epoch %d phases: forward %.3f s, backward %.3f s, zero grads %.3f s, "
                 "optimizer %.3f s, gather %.3f s, loader %.3f s, validation %.3f s, "
                 "checkpoint %.3f s",
                 t->epoch, phase_secs[PH_FWD] - ph0[PH_FWD], phase_secs[PH_BWD] - ph0[PH_BWD],
                 phase_secs[PH_ZERO] - ph0[PH_ZERO], phase_secs[PH_OPTIM] - ph0[PH_OPTIM],
                 phase_secs[PH_GATHER] - ph0[PH_GATHER], phase_secs[PH_LOAD] - ph0[PH_LOAD],
                 phase_secs[PH_VAL] - ph0[PH_VAL],
                 phase_secs[PH_CKPT] - ph0[PH_CKPT] + phase_secs[PH_BEST] - ph0[PH_BEST]);
    return 0;
}

/* ---- set-up -------------------------------------------------------------- */

/* The input size and normalisation of the trial (weights_meta.h): the
 * spec's model.input_size, else the weights' metadata, else 224; the
 * weights' mean and std, else ImageNet's. Every batch (training,
 * validation) and the checkpoints use them, as eval and predict do. */
static int resolve_preprocessing(trainer *t)
{
    const trial_spec *s = t->s;
    weights_meta wm;
    st_header *h = NULL;
    char msg[768] = "";
    int rc = s->weights ? st_header_read(&h, s->weights, msg, sizeof msg) : 0;
    if (rc == 0 && h) rc = weights_meta_read(h, &wm, msg, sizeof msg);
    st_header_free(h);
    if (rc < 0) return fail(t, train_exit_for(rc, 'm'), "model.weights: %s", msg);
    const weights_meta *m = s->weights ? &wm : NULL;
    t->input_size =
        weights_input_size(m, s->input_size_given ? s->input_size : 0, &t->input_size_from);
    if (!strcmp(t->input_size_from, "given")) t->input_size_from = "spec";
    t->norm = m ? image_norm_of(m) : image_norm_imagenet;
    t->norm_from_weights = m && (m->has_mean || m->has_std);
    log_info("input %d px (%s), normalisation mean %.4g %.4g %.4g, std %.4g %.4g %.4g (%s)",
             t->input_size,
             !strcmp(t->input_size_from, "spec")      ? "model.input_size"
             : !strcmp(t->input_size_from, "weights") ? "the weights' metadata"
                                                      : "the default",
             t->norm.mean[0], t->norm.mean[1], t->norm.mean[2], t->norm.std[0], t->norm.std[1],
             t->norm.std[2], t->norm_from_weights ? "the weights' metadata" : "ImageNet's");
    return 0;
}

static int open_data(trainer *t)
{
    const trial_spec *s = t->s;
    dataset_config cfg = {
        .train_dir = s->train_dir,
        .val_dir = s->val_dir,
        .val_fraction = s->val_dir ? 0.0 : s->val_fraction,
        .input_size = t->input_size,
        .norm = &t->norm,
        .cache_dir = s->cache_dir,
        .threads = s->threads,
        .roots = s->data_roots,
        .n_roots = s->n_data_roots,
    };
    char msg[768] = "";
    int rc = dataset_open(&cfg, &t->data, msg, sizeof msg);
    t->data_open = true;
    if (rc < 0) return fail(t, train_exit_for(rc, 'd'), "%s", msg);
    if (t->data.train.n == 0)
        return fail(t, WEXIT_DATA, "%s: no usable training image", s->train_dir);
    if (t->data.val.n == 0)
        return fail(t, WEXIT_DATA, "%s: the validation split is empty",
                    s->val_dir ? s->val_dir : s->train_dir);
    return 0;
}

static int build_model(trainer *t)
{
    const trial_spec *s = t->s;
    char msg[768] = "";
    int rc;
    if (s->weights) {
        st_file *f = NULL;
        rc = st_open(&f, s->weights, msg, sizeof msg);
        if (rc < 0) return fail(t, train_exit_for(rc, 'm'), "model.weights: %s", msg);
        rc = resnet_from_safetensors(&t->m, f, t->data.nclasses,
                                     rng_derive(s->seed, TRAIN_STREAM_HEAD), msg, sizeof msg);
        st_close(f);
        if (rc < 0) return fail(t, train_exit_for(rc, 'm'), "model.weights: %s", msg);
        resnet_info info;
        resnet_get_info(t->m, &info);
        if (s->arch_given && strcmp(info.arch, s->arch))
            return fail(t, WEXIT_MODEL,
                        "model.arch is %s but %s holds a %s (read from its tensor shapes)", s->arch,
                        s->weights, info.arch);
    } else {
        log_info("model.weights is null: training %s of width %d from scratch (PyTorch's default "
                 "initialisation)",
                 s->arch, s->width);
        rc = resnet_create(&t->m, s->arch, s->width, t->data.nclasses,
                           rng_derive(s->seed, TRAIN_STREAM_INIT), msg, sizeof msg);
        if (rc < 0) return fail(t, rc == ERR_NOMEM ? WEXIT_NOMEM : WEXIT_SPEC, "model: %s", msg);
    }
    return 0;
}

static int prepare(trainer *t)
{
    const trial_params *p = t->p;
    size_t n_train = t->data.train.n, n_val = t->data.val.n;
    size_t most = n_train > n_val ? n_train : n_val;
    t->max_batch = (size_t)p->batch_size < most ? p->batch_size : (int)most;
    t->train_batch = (size_t)p->batch_size < n_train ? p->batch_size : (int)n_train;
    size_t full = n_train / (size_t)p->batch_size, rem = n_train % (size_t)p->batch_size;
    t->spe = (int)full + (rem > 1 || (rem == 1 && (full == 0 || p->batch_size == 1)) ? 1 : 0);
    if (rem == 1 && full > 0 && p->batch_size > 1)
        log_info("the last batch of each epoch would hold a single image; it is left out "
                 "(training-mode batchnorm needs at least two)");
    char msg[768] = "";
    int rc = prepare_model(t, t->max_batch, msg, sizeof msg);
    if (rc < 0) {
        if (rc == ERR_NOMEM) return fail(t, WEXIT_NOMEM, "preparing the model: %s", msg);
        if (rc == ERR_INVALID) return fail(t, WEXIT_SPEC, "model.input_size: %s", msg);
        return fail(t, WEXIT_MODEL, "preparing the model: %s", msg);
    }
    optim_config oc;
    optim_config_from_params(&oc, p);
    size_t count = 0;
    float *grads = NULL;
    resnet_trainable(t->m, &count, &grads);
    rc = optim_init(&t->opt, &oc, count, msg, sizeof msg);
    if (rc < 0) return fail(t, rc == ERR_NOMEM ? WEXIT_NOMEM : WEXIT_SPEC, "params: %s", msg);
    t->opt_init = true;
    t->feat = resnet_feature_floats(t->m);
    if (confusion_init(&t->cm, t->data.nclasses) < 0)
        return fail(t, WEXIT_NOMEM, "out of memory for the confusion matrix");
    return 0;
}

/* Decides and allocates the feature cache and the loaders. */
static int setup_batches(trainer *t, const char **mode)
{
    const trial_params *p = t->p;
    size_t n_train = t->data.train.n, n_val = t->data.val.n;
    size_t limit = feature_cache_limit();
    size_t fbytes = t->feat * sizeof(float);
    bool frozen = p->freeze != FREEZE_NONE;
    bool cache_val = frozen && n_val * fbytes <= limit;
    bool cache_train = frozen && !p->augment && (n_train + n_val) * fbytes <= limit;
    if (frozen && !cache_val)
        log_warn("the frozen-prefix feature cache would need %zu MiB (limit %zu MiB, "
                 "SWEEP_FEATURE_CACHE_MB): computing the prefix every epoch",
                 (n_val * fbytes) >> 20, limit >> 20);
    else if (frozen && !p->augment && !cache_train)
        log_warn("training features would need %zu MiB (limit %zu MiB, SWEEP_FEATURE_CACHE_MB): "
                 "the frozen prefix runs every step",
                 ((n_train + n_val) * fbytes) >> 20, limit >> 20);
    *mode = cache_train ? "train+val" : cache_val ? "val" : "off";
    if (cache_val || cache_train) {
        if (!(t->gather = talloc(t, (size_t)t->max_batch * fbytes, "the feature batch")))
            return PHASE_FAILED;
        if (!(t->glabels = talloc(t, (size_t)t->max_batch * sizeof(int), "batch labels")))
            return PHASE_FAILED;
    }
    if (cache_train && !(t->perm = talloc(t, n_train * sizeof *t->perm, "the epoch order")))
        return PHASE_FAILED;
    if (features_plan(t, cache_train, cache_val)) return PHASE_FAILED;
    size_t img = 3 * (size_t)t->input_size * (size_t)t->input_size * sizeof(float);
    augment_opts aug;
    if (p->augment == AUGMENT_LIGHT)
        image_augment_light(&aug);
    else if (p->augment == AUGMENT_ERASE)
        image_augment_erase(&aug);
    else
        image_augment_defaults(&aug);
    if (!cache_train &&
        dataset_loader_new(&t->data.train, t->input_size, t->train_batch, t->s->seed, true,
                           p->augment ? &aug : NULL, true, &t->train_loader) < 0)
        return fail(t, WEXIT_NOMEM,
                    "out of memory: allocating the training loader's batch buffers "
                    "(2 x %zu bytes) failed",
                    (size_t)t->train_batch * img);
    if (!cache_val) {
        int vb = (size_t)t->max_batch < n_val ? t->max_batch : (int)n_val;
        if (dataset_loader_new(&t->data.val, t->input_size, vb, t->s->seed, false, NULL, true,
                               &t->val_loader) < 0)
            return fail(t, WEXIT_NOMEM,
                        "out of memory: allocating the validation loader's batch buffers "
                        "(2 x %zu bytes) failed",
                        (size_t)vb * img);
    }
    return 0;
}

static void trainer_free(trainer *t)
{
    dataset_loader_free(t->train_loader);
    dataset_loader_free(t->val_loader);
    if (t->slot_used) featcache_slot_release(&t->slot);
    if (t->fc_open) featcache_close(&t->fc);
    free(t->feat_mem);
    json_decref(t->key_base);
    free(t->gather);
    free(t->glabels);
    free(t->perm);
    confusion_free(&t->cm);
    if (t->opt_init) optim_free(&t->opt);
    resnet_free(t->m);
    if (t->data_open) dataset_close(&t->data);
    json_decref(t->metrics);
    tfevents_close(&t->tb);
}

/* The body of train_run; returns 0 or PHASE_FAILED / PHASE_STOPPED with
 * t->exit_code set. */
static int run(trainer *t)
{
    const trial_spec *s = t->s;
    int err = mkdir_p(s->out_dir);
    if (err)
        return fail(t, fileio_err_for_errno(err) == ERR_NOSPACE ? WEXIT_NOSPACE : WEXIT_SPEC,
                    "out_dir: cannot create %s: %s", s->out_dir, strerror(err));
    if (ckpt_path(t->ckpt_file, sizeof t->ckpt_file, s->out_dir, CKPT_FILE) < 0 ||
        ckpt_path(t->best_file, sizeof t->best_file, s->out_dir, CKPT_BEST_FILE) < 0)
        return fail(t, WEXIT_SPEC, "out_dir: path too long");
    trialspec_hash(s, t->hash, sizeof t->hash);
    if (!(t->metrics = json_array())) return fail(t, WEXIT_NOMEM, "out of memory");

    double t_setup = time_mono();
    int prc = 0;
    if (resolve_preprocessing(t)) return PHASE_FAILED;
    PHASE(PH_DATA, prc = open_data(t));
    if (prc) return PHASE_FAILED;
    PHASE(PH_MODEL, prc = build_model(t));
    if (prc) return PHASE_FAILED;
    int resumed = try_resume(t);
    if (resumed == PHASE_FAILED) return PHASE_FAILED;
    PHASE(PH_PREPARE, prc = prepare(t));
    if (prc) return PHASE_FAILED;
    if (resumed) {
        st_file *f = NULL;
        char msg[512];
        int rc = st_open(&f, t->ckpt_file, msg, sizeof msg);
        if (rc == 0) rc = ckpt_load_optim(f, t->m, &t->opt, msg, sizeof msg);
        st_close(f);
        if (rc < 0)
            return fail(t, WEXIT_MODEL, "restoring the optimizer state from %s: %s", t->ckpt_file,
                        msg);
    }
    if (resumed && check_best_file(t, t->epoch, t->step)) return PHASE_FAILED;
    const char *cache_mode = "off";
    if (setup_batches(t, &cache_mode)) return PHASE_FAILED;

    resnet_info info;
    resnet_get_info(t->m, &info);
    size_t trainable = 0;
    float *g = NULL;
    resnet_trainable(t->m, &trainable, &g);
    json_t *ev = json_object();
    json_object_set_new(ev, "trial", json_integer(s->trial));
    json_object_set_new(ev, "job", json_integer(s->job));
    json_object_set_new(ev, "params", params_to_json(t->p));
    json_object_set_new(ev, "train_images", json_integer((json_int_t)t->data.train.n));
    json_object_set_new(ev, "val_images", json_integer((json_int_t)t->data.val.n));
    json_object_set_new(ev, "classes", json_integer(t->data.nclasses));
    json_object_set_new(ev, "class_names", class_names_json(t));
    json_object_set_new(ev, "arch", json_string(info.arch));
    json_object_set_new(ev, "input_size", json_integer(t->input_size));
    json_object_set_new(ev, "input_size_from", json_string(t->input_size_from));
    json_object_set_new(ev, "normalization",
                        json_pack("{s:[f,f,f], s:[f,f,f], s:s}", "mean", (double)t->norm.mean[0],
                                  (double)t->norm.mean[1], (double)t->norm.mean[2], "std",
                                  (double)t->norm.std[0], (double)t->norm.std[1],
                                  (double)t->norm.std[2], "from",
                                  t->norm_from_weights ? "weights" : "imagenet"));
    json_object_set_new(ev, "weights", s->weights ? json_string(s->weights) : json_null());
    json_object_set_new(ev, "parameters", json_integer((json_int_t)info.param_count));
    json_object_set_new(ev, "trainable_parameters", json_integer((json_int_t)trainable));
    json_object_set_new(ev, "steps_per_epoch", json_integer(t->spe));
    json_object_set_new(ev, "feature_cache", json_string(cache_mode));
    json_object_set_new(ev, "features", json_string(t->features ? t->features : "off"));
    json_object_set_new(ev, "skipped_files", json_integer((json_int_t)t->data.skipped));
    json_object_set_new(ev, "bad_images", json_integer((json_int_t)t->data.bad));
    json_object_set_new(ev, "blas_core", json_string(blas_core_name()));
    json_object_set_new(ev, "blas_policy", json_string(blas_policy_name()));
    if (blas_kernel_note()) json_object_set_new(ev, "blas_note", json_string(blas_kernel_note()));
    json_object_set_new(ev, "threads", json_integer(s->threads));
    json_object_set_new(ev, "seed", json_integer((json_int_t)s->seed));
    json_object_set_new(ev, "resumed",
                        resumed ? json_pack("{s:i, s:i}", "epoch", t->epoch, "step", t->step)
                                : json_null());
    if (emit_checked(t, "start", ev)) return PHASE_FAILED;
    if (tb_start(t, resumed)) return PHASE_FAILED;
    log_info("trial %lld: %s, %zu train / %zu val images, %d classes, freeze %s, feature cache "
             "%s, %d steps/epoch",
             (long long)s->trial, info.arch, t->data.train.n, t->data.val.n, t->data.nclasses,
             params_freeze_name(t->p->freeze), cache_mode, t->spe);

    if (train_stop_requested) return stop_now(t, false);
    if (t->epoch < t->p->epochs) {
        double f0 = time_mono();
        int rc = features_fill(t);
        if (rc == PHASE_STOPPED) return stop_now(t, false);
        if (rc) return rc;
        t->epoch_extra = time_mono() - f0;
        phase_secs[PH_FEATURES] += t->epoch_extra;
    }
    log_debug("set-up took %.2f s", time_mono() - t_setup);
    t->progress_every = env_double("SWEEP_PROGRESS_INTERVAL", 1.0);
    t->signal_at_step = (long long)env_double("SWEEP_TEST_SIGNAL_AT_STEP", 0);
    t->last_progress = events_elapsed();
    while (t->epoch < t->p->epochs) {
        int rc = run_epoch(t);
        if (rc) return rc;
        if (train_stop_requested && t->epoch < t->p->epochs) return stop_now(t, true);
    }
    return emit_done(t);
}

int train_run(const trial_spec *s)
{
    trainer t;
    memset(&t, 0, sizeof t);
    memset(phase_secs, 0, sizeof phase_secs);
    t.s = s;
    t.p = &s->params;
    int rc = run(&t);
    if (profiling()) {
        fprintf(stderr, "trial profile (seconds):\n");
        for (int i = 0; i < PH_COUNT; i++)
            fprintf(stderr, "  %-16s %8.3f\n", phase_names[i], phase_secs[i]);
    }
    int code = WEXIT_OK;
    if (rc == PHASE_STOPPED) {
        code = t.exit_code ? t.exit_code : WEXIT_STOPPED;
    } else if (rc) {
        code = t.exit_code ? t.exit_code : WEXIT_MODEL;
        log_error("%s", t.msg);
        events_error(events_code_for_exit(code), code, t.msg);
    }
    trainer_free(&t);
    return code;
}
