/* datapath — the one rule for what a data folder may reach, shared by the
 * daemon (checking a job at submission) and the worker (scanning the folder)
 * (common/datapath.c; README.md "Data sets").
 *
 * A data folder confines itself: an entry that is a symbolic link is used
 * only when it resolves inside the data folder's real path. A link that
 * resolves outside it is skipped (so with data_roots, where the daemon checks
 * that the data folder itself resolves inside a root, nothing a worker opens
 * lies outside the roots), and so is a link back to the data folder itself
 * ("Self -> ."): neither is a class. Class folder names must be valid UTF-8;
 * a folder with another name makes the whole data folder unusable. */
#ifndef SWEEP_DATAPATH_H
#define SWEEP_DATAPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/* True when the resolved absolute path P is ROOT or lies below it. */
bool datapath_under(const char *p, const char *root);

typedef enum {
    DATAPATH_DIR,     // a directory inside the data folder
    DATAPATH_FILE,    // a regular file inside the data folder
    DATAPATH_OTHER,   // anything else: a dangling link, a device, a vanished entry
    DATAPATH_OUTSIDE, // a symbolic link that resolves outside the data folder
    DATAPATH_ROOT,    // a symbolic link that resolves to the data folder itself
} datapath_kind;

/* Classifies PATH, an entry (at any depth) of the data folder whose real path
 * is REAL_ROOT, by the rule above. For DATAPATH_DIR and DATAPATH_FILE, *ST
 * holds stat() of what PATH names (the link's target). */
datapath_kind datapath_classify(const char *real_root, const char *path, struct stat *st);

/* The entries of directory DIR not starting with '.', sorted by byte order.
 * Returns 0 with *NAMES (N strings; caller frees each and the array);
 * ERR_NOTFOUND/ERR_IO (MSG names DIR as a data folder); ERR_NOMEM. */
int datapath_list(const char *dir, char ***names, size_t *n, char *msg, size_t msglen);

/* Called by datapath_classes for each top-level entry that is not a class
 * folder (KIND is not DATAPATH_DIR); CTX is the caller's. */
typedef void datapath_note_fn(void *ctx, const char *name, datapath_kind kind);

/* The class folders of data folder DIR (real path REAL_DIR): its entries not
 * starting with '.' that classify as DATAPATH_DIR, sorted by byte order
 * (strcmp). Other entries are passed to NOTE (may be NULL) in that order.
 * Returns 0 with *NAMES (N strings; caller frees each and the array, also
 * after an error); ERR_NOTFOUND/ERR_IO when DIR cannot be listed; ERR_DATA
 * when a class folder's name is not valid UTF-8, naming it escaped
 * (utf8_escape) in MSG; ERR_NOMEM. */
int datapath_classes(const char *dir, const char *real_dir, char ***names, size_t *n,
                     datapath_note_fn *note, void *ctx, char *msg, size_t msglen);

#endif
