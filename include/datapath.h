/* datapath — the one rule for what a data folder may reach, shared by the
 * daemon (checking a job at submission) and the worker (scanning the folder)
 * (common/datapath.c; README.md "Data sets").
 *
 * The rule, for every class folder, sub-folder and image of a data folder:
 *  - with data_roots (the daemon's config key; the worker gets them in the
 *    trial spec or from `eval --data-root`), an entry is used only when its
 *    real path (realpath: every link followed) lies inside one of the roots;
 *    anything else is skipped (DATAPATH_OUTSIDE) with a reason naming it.
 *    Only links need resolving: a plain entry of a folder inside a root is
 *    inside that root too, and the data folder itself must be inside one;
 *  - without data_roots, links are followed wherever they point (a data set
 *    that is a folder of links into a shared image pool works);
 *  - in both cases a link that resolves to the data folder itself or to one
 *    of its ancestors ("Self -> .", "up -> ..") is a loop: never a class and
 *    never followed (DATAPATH_ROOT), skipped with one reason.
 * Class folder names must be valid UTF-8; a class folder with another name
 * makes the whole data folder unusable. */
#ifndef SWEEP_DATAPATH_H
#define SWEEP_DATAPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/* The reasons a warning gives for a skipped entry, after its name (for a
 * top-level entry the loop reason goes on "; not a class"). */
#define DATAPATH_WHY_OUTSIDE "it links outside data_roots"
#define DATAPATH_WHY_LOOP "it links back to the data folder"

/* True when the resolved absolute path P is ROOT or lies below it. */
bool datapath_under(const char *p, const char *root);

/* True when the resolved absolute path P lies in one of the N_ROOTS resolved
 * directories ROOTS (datapath_under); true for any P when N_ROOTS is 0. */
bool datapath_in_roots(const char *p, char *const *roots, int n_roots);

/* Resolves directory DIR (realpath) and appends it to *ROOTS (*N strings,
 * owned by the caller: free with datapath_roots_free). WHAT names it in
 * messages ("data_roots[1]", "--data-root"). Returns 0; ERR_NOTFOUND when it
 * cannot be resolved, ERR_INVALID when it is not a directory; ERR_NOMEM. */
int datapath_roots_add(char ***roots, int *n, const char *what, const char *dir, char *msg,
                       size_t msglen);
/* Frees the N strings of ROOTS and the array (NULL is fine). */
void datapath_roots_free(char **roots, int n);

/* Where a data folder is and what it may reach. */
typedef struct {
    const char *real_dir; // realpath() of the data folder; not owned
    char *const *roots;   // resolved data_roots; not owned; NULL when n_roots is 0
    int n_roots;          // entries in roots; 0: links are followed anywhere
} datapath_scope;

typedef enum {
    DATAPATH_DIR,     // a directory the rule allows
    DATAPATH_FILE,    // a regular file the rule allows
    DATAPATH_OTHER,   // anything else: a dangling link, a device, a vanished entry
    DATAPATH_OUTSIDE, // a symbolic link that resolves outside the data_roots
    DATAPATH_ROOT,    // a symbolic link that resolves to the data folder or above it
} datapath_kind;

/* Classifies PATH, an entry (at any depth) of the data folder of SC, by the
 * rule above. For DATAPATH_DIR and DATAPATH_FILE, *ST holds stat() of what
 * PATH names (the link's target). */
datapath_kind datapath_classify(const datapath_scope *sc, const char *path, struct stat *st);

/* The entries of directory DIR not starting with '.', sorted by byte order.
 * Returns 0 with *NAMES (N strings; caller frees each and the array);
 * ERR_NOTFOUND/ERR_IO (MSG names DIR as a data folder); ERR_NOMEM. */
int datapath_list(const char *dir, char ***names, size_t *n, char *msg, size_t msglen);

/* Called by datapath_classes for each top-level entry that is not a class
 * folder (KIND is not DATAPATH_DIR); CTX is the caller's. */
typedef void datapath_note_fn(void *ctx, const char *name, datapath_kind kind);

/* The class folders of data folder DIR (scope SC): its entries not starting
 * with '.' that classify as DATAPATH_DIR, sorted by byte order (strcmp).
 * Other entries are passed to NOTE (may be NULL) in that order. Returns 0
 * with *NAMES (N strings; caller frees each and the array, also after an
 * error); ERR_NOTFOUND/ERR_IO when DIR cannot be listed; ERR_DATA when a
 * class folder's name is not valid UTF-8, naming it escaped (utf8_escape) in
 * MSG; ERR_NOMEM. */
int datapath_classes(const char *dir, const datapath_scope *sc, char ***names, size_t *n,
                     datapath_note_fn *note, void *ctx, char *msg, size_t msglen);

#endif
