/* idx_import — converts an MNIST-format (idx) data set, such as Debian's
 * dataset-fashion-mnist, into an ImageFolder of grayscale JPEGs: the data
 * side of `sweep-worker import-idx` (its command line is worker/cmd/import_idx.c).
 *
 * Writes OUTDIR/<class name>/<index>.jpg, where <index> is the image's
 * position in the idx file, zero-padded to 5 digits so names sort in file
 * order. The idx files may be gzip compressed or plain (zlib's gzread reads
 * both). Each JPEG is written to a temporary name and renamed, so an
 * interrupted import leaves no half files. worker/data/import_idx.c */
#ifndef SWEEP_IDX_IMPORT_H
#define SWEEP_IDX_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IDX_MAX_LABELS 256 // labels are bytes

/* What to convert. */
typedef struct {
    const char *images_path;           // IMAGES.idx[.gz], 3 dimensions of bytes
    const char *labels_path;           // LABELS.idx[.gz], 1 dimension of bytes
    const char *outdir;                // created when missing, with its parents
    const char *names[IDX_MAX_LABELS]; // folder name of labels 0..nnames-1 (borrowed)
    int nnames;                        // entries of names set
    bool names_strict;                 // a label >= nnames is an error (ERR_INVALID);
                                       // otherwise it is named by its number
    bool keep[IDX_MAX_LABELS];         // labels to write
    long long limit;                   // at most this many images per label, <= 0 = all
    int quality;                       // JPEG quality 1..100
} idx_import_config;

/* What was written. */
typedef struct {
    size_t written;                    // JPEGs written
    size_t count[IDX_MAX_LABELS];      // ... per label
    const char *names[IDX_MAX_LABELS]; // folder name of every label (borrowed from the
                                       // config, or from this struct for numbered labels)
    char numbered[IDX_MAX_LABELS][16]; // storage of the numbered labels' names
    uint32_t width, height;            // image size in pixels
} idx_import_result;

/* Converts as CFG says, filling R. 0, or a negative code with the reason in
 * MSG: ERR_INVALID for a label without a name (names_strict) or an output path
 * too long, ERR_NOMEM when memory runs out, ERR_IO/ERR_PARSE/ERR_DATA for
 * unreadable or malformed idx files and an unwritable OUTDIR. */
int idx_import(const idx_import_config *cfg, idx_import_result *r, char *msg, size_t msglen);

#endif
