/* dataset — ImageFolder data sets turned into deterministic training and
 * evaluation batches (worker/data/dataset.c).
 *
 * A data set is a folder ROOT/<class name>/<image>.jpg as torchvision's
 * ImageFolder and Keras read it:
 *  - class names are the sub-folders of ROOT sorted by byte order (strcmp);
 *    their positions are the class indices;
 *  - files ending in .jpg or .jpeg (any case) are images; files and folders
 *    whose name starts with '.' are skipped silently; other files are counted
 *    as "skipped" and the first few are named in a warning;
 *  - sub-folders inside a class folder are searched too (their images belong
 *    to that class); regular files directly in ROOT are skipped;
 *  - symbolic links follow the one rule of include/datapath.h (shared with
 *    the daemon): with data_roots (ROOTS, resolved) the data folder must
 *    resolve inside a root (ERR_PERM otherwise) and a link that resolves
 *    outside every root is skipped with a warning naming it, counted in
 *    "outside"; without, links are followed wherever they point. A link back
 *    to ROOT itself or above it ("Self -> .") is a loop, never followed and
 *    never a class (a warning, counted in "loops"); a directory already on
 *    the current path (same st_dev/st_ino) is refused with a warning too;
 *  - a class folder whose name is not valid UTF-8 makes the scan fail with
 *    ERR_DATA naming it (escaped); a training set needs two classes or more.
 * Files that fail to decode (empty, truncated, corrupt, not a JPEG) are
 * counted as "bad" and left out, never fatal. Opening fails with ERR_DATA
 * (exit 3) only when a class has no usable image or a split is empty, and the
 * message names the folder and class.
 *
 * Stored pixels: every usable image is decoded once into a square of side
 * S = image_eval_size(input_size) (shorter side resized to S with
 * antialiasing, then center-cropped to S x S), RGB bytes. With a cache_dir
 * these squares live in one uncompressed file
 *   CACHE_DIR/imgcache-<root>-<S>-<key>.bin
 * where root is a 64-bit hash of the root's real path and key a 64-bit hash
 * of the real path, S, and the sorted list of (relative path, size, mtime)
 * of every image; any changed, added or removed image gives a new key and so
 * a new file. The file is built once under an flock on
 * CACHE_DIR/imgcache-<root>-<S>.lock into a temporary file that is renamed
 * into place, so workers starting together build it once (the others wait
 * for the lock and then map the finished file). After a build the older
 * files of the same root and S are deleted (workers still using one keep
 * their mapping). It is mapped read-only and shared by every worker. Without a cache_dir the
 * squares are decoded into memory once per process. Evaluation batches are the center input_size
 * crop of each square; training batches apply image_augment() (image.h) to the square when
 * augmentation is on, both normalised with the config's norm (the weights' mean and std). The
 * squares are image_eval_square's, and image_preprocess_file (predict) takes the same square and
 * the same view, so predict sees exactly the pixels evaluation does. (Two center crops in a row
 * can sit one pixel off torchvision's single crop when both margins are odd.)
 * Memory: S*S*3 bytes per image, e.g. 192 KiB at input 224, 4 KiB at 32.
 *
 * Splits: with a separate validation folder its class names must be among
 * the training classes (matched by name) and val_fraction is ignored. Without one, each class is
 * split stratified: its usable images are ordered by a 64-bit FNV-1a hash of their path relative to
 * ROOT (ties by path) and the first round(val_fraction * n) go to validation, at least 1 when the
 * class has >= 2 images and val_fraction > 0, and never all of them. The split depends only on the
 * relative paths, so every trial and every rerun sees the same split.
 *
 * Determinism: the order of an epoch is a Fisher-Yates shuffle seeded with
 * rng_derive(rng_derive(seed, DATASET_STREAM_SHUFFLE), epoch); image i of
 * the split (its position in the split, not in the batch) is augmented with
 * rng_derive(rng_derive(rng_derive(seed, DATASET_STREAM_AUGMENT), epoch), i).
 * So batches are byte-identical from run to run for the same seed, whatever
 * the batch size or threading. */
#ifndef SWEEP_DATASET_H
#define SWEEP_DATASET_H

#include "image.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DATASET_STREAM_SHUFFLE 0x5348554646ULL // "SHUFF"
#define DATASET_STREAM_AUGMENT 0x4155474dULL   // "AUGM"

/* ---- scanning ---------------------------------------------------------- */

/* One image file found by scanning. */
typedef struct {
    char *rel;        // path relative to the root, '/'-separated ("cat/a/001.jpg"); owned
    int label;        // class index into dataset_scan.classes
    int64_t size;     // file size in bytes
    int64_t mtime_ns; // modification time, ns since the epoch
} dataset_file;

/* The result of scanning one ImageFolder root. */
typedef struct {
    char *root;          // the root as given; owned
    char *real_root;     // realpath() of the root; owned
    int nclasses;        // number of class folders (including empty ones)
    char **classes;      // (nclasses) class names, byte-order sorted; owned
    dataset_file *files; // (nfiles) images, sorted by (label, rel); owned
    size_t nfiles;       // number of image files (.jpg/.jpeg) found
    size_t skipped;      // non-JPEG files counted and left out
    size_t loops;        // directory links refused because they loop (or link to ROOT)
    size_t outside;      // links skipped because they resolve outside the data_roots
} dataset_scan;

/* Scans ROOT (see the file comment) within the N_ROOTS resolved data_roots
 * ROOTS (0: no data_roots). Returns 0; ERR_NOTFOUND/ERR_IO when ROOT cannot
 * be opened as a directory; ERR_PERM when it resolves outside the roots;
 * ERR_DATA when a class folder's name is not valid UTF-8; ERR_NOMEM. No
 * class folder and empty classes are not errors here (dataset_open checks).
 * Logs one warning naming the first few skipped files. OUT is freed with
 * dataset_scan_free, also after a failure. */
int dataset_scan_dir(const char *root, char *const *roots, int n_roots, dataset_scan *out,
                     char *msg, size_t msglen);
void dataset_scan_free(dataset_scan *s);

/* FNV-1a 64-bit hash of the NUL-terminated string S (used for the split). */
uint64_t dataset_path_hash(const char *s);

/* ---- the decoded image store ------------------------------------------- */

/* Decoded squares of one scanned folder. Opaque; see dataset_store_open. */
typedef struct dataset_store dataset_store;

/* Decodes (or maps from the cache) every image of SCAN at square side SS.
 * CACHE_DIR NULL or "" means in memory; when the cache cannot be used (folder
 * not writable, disk full, ...) a warning is logged and the images are
 * decoded into memory instead. THREADS (>= 1) decoder threads are used when
 * building. Files that fail to decode are marked bad (a warning names the
 * first few with the reason; counted in dataset_store_bad). Returns 0 or
 * ERR_NOMEM. *OUT is owned by the
 * caller (dataset_store_free). SCAN must outlive the store. */
int dataset_store_open(const dataset_scan *scan, int ss, const char *cache_dir, int threads,
                       dataset_store **out, char *msg, size_t msglen);
void dataset_store_free(dataset_store *st);
/* Square side of the stored images. */
int dataset_store_side(const dataset_store *st);
/* Whether file I of the scan decoded. */
bool dataset_store_ok(const dataset_store *st, size_t i);
/* Pixels of file I: (ss, ss, 3) RGB; NULL when it is bad. Read-only. */
const uint8_t *dataset_store_pixels(const dataset_store *st, size_t i);
/* Number of files that failed to decode. */
size_t dataset_store_bad(const dataset_store *st);
/* Whether the pixels came from an existing cache file (true) or were
 * decoded by this call (false). */
bool dataset_store_from_cache(const dataset_store *st);
/* Path of the cache file in use, or NULL when in memory. */
const char *dataset_store_cache_path(const dataset_store *st);

/* ---- splits ------------------------------------------------------------ */

/* One split: a list of usable images (indices into a store). */
typedef struct {
    const dataset_store *store; // where the pixels are; not owned
    const dataset_scan *scan;   // the scan the indices refer to; not owned
    size_t n;                   // number of images
    uint32_t *file;             // (n) index into scan->files, ascending; owned
    int *label;                 // (n) class index in the data set's class list; owned
    image_norm norm;            // the normalisation of its batches (dataset_config.norm)
} dataset_split;

/* What the training side asks for. */
typedef struct {
    const char *train_dir;  // required
    const char *val_dir;    // NULL: split val_fraction off train_dir
    double val_fraction;    // in [0, 1); 0 with no val_dir = no validation split
    int input_size;         // network input side, e.g. 224
    const image_norm *norm; // normalisation of every batch (the weights'); NULL: ImageNet's
    const char *cache_dir;  // NULL or "": decode in memory
    int threads;            // decoder threads while building (>= 1)
    char *const *roots;     // resolved data_roots (not owned); NULL when n_roots is 0
    int n_roots;            // entries in roots; 0: no data_roots (links followed anywhere)
} dataset_config;

/* A train/val pair ready for batches. */
typedef struct {
    int input_size; // network input side
    int side;       // stored square side = image_eval_size(input_size)
    int nclasses;   // number of training classes
    char **classes; // (nclasses) class names; points into train_scan
    dataset_scan train_scan;
    dataset_scan val_scan;      // zeroed when no val_dir
    dataset_store *train_store; // owned
    dataset_store *val_store;   // owned; NULL when no val_dir (val shares train_store)
    dataset_split train;        // training images
    dataset_split val; // validation images (n == 0 only with val_fraction 0 and no val_dir)
    size_t skipped;    // non-JPEG files over both folders
    size_t bad;        // files that failed to decode over both folders
    size_t outside;    // links outside the data_roots skipped over both folders
} dataset;

/* Scans, decodes/caches and splits as CFG says (D must not be moved or
 * copied afterwards: its splits point into it). Returns 0; ERR_DATA (with
 * the folder and class named) when the train folder has no class, a class
 * has no usable image, the validation split/folder is empty (unless
 * val_fraction is 0 without val_dir), or the val folder has a class the
 * train folder lacks; ERR_INVALID for a bad input_size/val_fraction;
 * ERR_NOTFOUND/ERR_IO for unreadable folders or cache; ERR_NOMEM. Logs the
 * counts (used, skipped, bad) at info level. D is freed with dataset_close,
 * also after a failure. */
int dataset_open(const dataset_config *cfg, dataset *d, char *msg, size_t msglen);
void dataset_close(dataset *d);

/* A single labelled folder for evaluation (`sweep-worker eval`, the test
 * set), scanned within the data_roots ROOTS as dataset_scan_dir. When CLASSES (NCLASSES names, e.g.
 * from a checkpoint) is given, each folder class is mapped to its index in that list and a folder
 * class not in it is ERR_DATA; otherwise the folder's own sorted names are used. The split holds
 * every usable image in scan order, normalised with NORM (NULL: ImageNet's) as
 * dataset_open's. Fills SCAN, *STORE (owned) and SPLIT; free with
 * dataset_eval_close. ERR_DATA when no usable image. */
int dataset_open_eval(const char *dir, char *const *roots, int n_roots, char *const *classes,
                      int nclasses, int input_size, const image_norm *norm, const char *cache_dir,
                      int threads, dataset_scan *scan, dataset_store **store, dataset_split *split,
                      char *msg, size_t msglen);
void dataset_eval_close(dataset_scan *scan, dataset_store **store, dataset_split *split);

/* ---- batches ----------------------------------------------------------- */

/* Number of batches of BATCH_SIZE in SPLIT, the last one possibly partial. */
size_t dataset_num_batches(const dataset_split *split, int batch_size);

/* Fills batch number B of EPOCH directly (no threads). With SHUFFLE the
 * epoch's order is the seeded permutation described in the file comment,
 * otherwise split order. With AUGMENT (settings, image.h) each image gets
 * image_augment() with its own stream; NULL means the evaluation center
 * crop. X receives (n, 3, S, S) float32 with S = INPUT_SIZE, LABELS (n)
 * class indices, INDEX (n, may be NULL) each image's position in the split
 * (stable across epochs; useful to cache per-image features when
 * augmentation is off). Returns n (0 when B is past the end), or ERR_NOMEM.
 * X must hold BATCH_SIZE*3*S*S floats. */
int dataset_fill_batch(const dataset_split *split, int input_size, uint64_t seed, int epoch,
                       size_t b, int batch_size, bool shuffle, const augment_opts *augment,
                       float *x, int *labels, uint32_t *index);

/* A loader prepares batch b+1 on a background thread while the caller trains
 * on batch b. Results are identical to dataset_fill_batch. */
typedef struct dataset_loader dataset_loader;

typedef struct {
    int n;                 // images in this batch (<= batch_size)
    const float *x;        // (n, 3, S, S) normalised float32; owned by the loader
    const int *labels;     // (n) class indices; owned by the loader
    const uint32_t *index; // (n) positions in the split; owned by the loader
} dataset_batch;

/* Creates a loader over SPLIT (which must outlive it). SHUFFLE/AUGMENT as in
 * dataset_fill_batch (the loader keeps a copy of *AUGMENT); PREFETCH starts
 * one background thread. Buffers are allocated once here. Returns 0 or
 * ERR_NOMEM; *OUT owned by the caller. */
int dataset_loader_new(const dataset_split *split, int input_size, int batch_size, uint64_t seed,
                       bool shuffle, const augment_opts *augment, bool prefetch,
                       dataset_loader **out);
/* Starts EPOCH (0-based) from its first batch (cancels any prefetch). */
void dataset_loader_start(dataset_loader *l, int epoch);
/* Like dataset_loader_start, but the first batch returned is FIRST_BATCH
 * (resuming mid-epoch after a checkpoint); the skipped batches are not
 * computed. Batches are the same as when iterating from 0. */
void dataset_loader_start_at(dataset_loader *l, int epoch, size_t first_batch);
/* The next batch of the current epoch into *B (valid until the next call of
 * dataset_loader_next/start/free). Returns 1 with a batch, 0 at the end of
 * the epoch. */
int dataset_loader_next(dataset_loader *l, dataset_batch *b);
/* Stops the thread and frees everything. NULL is fine. */
void dataset_loader_free(dataset_loader *l);

#endif
