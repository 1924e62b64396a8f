/* dataset.c — ImageFolder scanning, the decoded image store (in memory or a
 * shared memory-mapped cache file), stratified splits and deterministic
 * batches with an optional prefetch thread. Contract: include/dataset.h.
 *
 * Design notes:
 *  - The scan sorts everything (class names, then files by class and
 *    relative path), so indices, cache keys and splits never depend on the
 *    order readdir() happens to return.
 *  - Cache file layout (all integers little-endian, native on x86-64):
 *      0    header (64 bytes): magic "SWPIMGC1", version, side, key, count,
 *           bad, pixel offset, total size
 *      64   count bytes: 1 = decoded, 0 = bad
 *      P    count squares of side*side*3 bytes (P page-aligned)
 *    The header is written last, then the file is flushed (fdatasync) and
 *    renamed into place, so a visible cache file is always complete. Space is
 *    reserved with posix_fallocate first: a full disk is an error, not a
 *    SIGBUS while writing through the mapping.
 *  - The cache is built under an exclusive flock on the .lock file of its
 *    (root, side). A worker first tries to map the finished file without any
 *    lock (the common case); only when it is missing or invalid does it take
 *    the lock, look again and build. A second worker starting at the same
 *    time blocks on the lock and then maps the file the first one built.
 *    After a build, files of older states of the same (root, side) are
 *    deleted. Any I/O failure of the cache falls back to decoding in memory
 *    with a warning: the cache only saves time.
 *  - Building decodes with THREADS threads pulling file indices from an
 *    atomic counter; every image goes to a fixed slot, so the result does not
 *    depend on scheduling.
 *  - Batches: the permutation of an epoch and each image's augmentation
 *    stream come from rng_derive() of the seed (see dataset.h), so a batch is
 *    a pure function of (split, seed, epoch, batch index, batch size). The
 *    loader's prefetch thread computes exactly that function one batch ahead. */
#include "dataset.h"

#include "datapath.h"
#include "errors.h"
#include "fileio.h"
#include "grow.h"
#include "log.h"
#include "utf8.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIRST_NAMES 5 // how many skipped/bad file names a warning lists
#define MAX_DEPTH 64  // nested folder limit inside a class folder

/* ---- small helpers ----------------------------------------------------- */

uint64_t dataset_path_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t fnv_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static char *join(const char *a, const char *b)
{
    char *s = NULL;
    if (asprintf(&s, "%s/%s", a, b) < 0) return NULL;
    return s;
}

static bool is_jpeg_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name) return false;
    return strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* ---- scanning ---------------------------------------------------------- */

typedef struct {
    dev_t dev; // st_dev of a folder
    ino_t ino; // st_ino of a folder
} devino;

typedef struct {
    dataset_scan *s;             // the scan being filled
    datapath_scope scope;        // the data folder's real path and the data_roots
    size_t cap;                  // allocated entries of s->files
    char *first[FIRST_NAMES];    // first skipped files (relative paths), owned
    size_t nfirst;               // entries used in first
    devino stack[MAX_DEPTH + 2]; // directories on the current path
    int depth;                   // index of the current folder in stack
    char *msg;                   // the caller's message buffer
    size_t msglen;               // its size
} scan_ctx;

static void note_skipped(scan_ctx *c, const char *rel)
{
    c->s->skipped++;
    if (c->nfirst < FIRST_NAMES) c->first[c->nfirst++] = strdup(rel);
}

/* An entry the rule of datapath.h skips (KIND DATAPATH_OUTSIDE or
 * DATAPATH_ROOT): counted, named with the reason (TOP: a top-level entry,
 * which is then not a class); other kinds are files left out (regular files
 * directly in the data folder, dangling links, devices). */
static void note_kind(scan_ctx *c, const char *rel, datapath_kind kind, bool top)
{
    if (kind == DATAPATH_OUTSIDE) {
        c->s->outside++;
        log_warn("data folder %s: skipping %s: " DATAPATH_WHY_OUTSIDE, c->s->root, rel);
    } else if (kind == DATAPATH_ROOT) {
        c->s->loops++;
        log_warn("data folder %s: skipping %s: " DATAPATH_WHY_LOOP "%s", c->s->root, rel,
                 top ? "; not a class" : "");
    } else {
        note_skipped(c, rel);
    }
}

/* datapath_note_fn for the top level of the data folder. */
static void note_top(void *ctx, const char *name, datapath_kind kind)
{
    note_kind(ctx, name, kind, true);
}

static int add_file(scan_ctx *c, const char *rel, int label, const struct stat *st)
{
    dataset_scan *s = c->s;
    dataset_file *nf = grow_array(s->files, s->nfiles + 1, &c->cap, sizeof *nf, 256);
    if (!nf) return ERR_NOMEM;
    s->files = nf;
    dataset_file *f = &s->files[s->nfiles];
    if (!(f->rel = strdup(rel))) return ERR_NOMEM;
    f->label = label;
    f->size = (int64_t)st->st_size;
    f->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
    s->nfiles++;
    return 0;
}

/* Walks directory ABS (relative path REL) of class LABEL. */
static int walk(scan_ctx *c, const char *abs, const char *rel, int label)
{
    char **names;
    size_t n;
    int rc = datapath_list(abs, &names, &n, c->msg, c->msglen);
    if (rc) return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *pa = join(abs, names[i]), *pr = join(rel, names[i]);
        if (!pa || !pr) {
            free(pa);
            free(pr);
            rc = err_set(c->msg, c->msglen, ERR_NOMEM, "out of memory scanning %s", abs);
            break;
        }
        struct stat st;
        datapath_kind k = datapath_classify(&c->scope, pa, &st);
        if (k != DATAPATH_DIR && k != DATAPATH_FILE) {
            note_kind(c, pr, k, false);
        } else if (S_ISDIR(st.st_mode)) {
            bool loop = false;
            for (int k = 0; k <= c->depth; k++)
                if (c->stack[k].dev == st.st_dev && c->stack[k].ino == st.st_ino) loop = true;
            if (loop || c->depth >= MAX_DEPTH) {
                c->s->loops++;
                log_warn("data folder %s: not following %s (%s)", c->s->root, pr,
                         loop ? "it links back to a folder above it" : "nested too deep");
            } else {
                c->depth++;
                c->stack[c->depth] = (devino){st.st_dev, st.st_ino};
                rc = walk(c, pa, pr, label);
                c->depth--;
            }
        } else if (is_jpeg_name(names[i])) {
            if (add_file(c, pr, label, &st))
                rc = err_set(c->msg, c->msglen, ERR_NOMEM, "out of memory scanning %s", abs);
        } else {
            note_skipped(c, pr);
        }
        free(pa);
        free(pr);
    }
    free_list(names, n);
    return rc;
}

static int cmp_file(const void *a, const void *b)
{
    const dataset_file *x = a, *y = b;
    if (x->label != y->label) return x->label < y->label ? -1 : 1;
    return strcmp(x->rel, y->rel);
}

int dataset_scan_dir(const char *root, char *const *roots, int n_roots, dataset_scan *s, char *msg,
                     size_t msglen)
{
    memset(s, 0, sizeof *s);
    scan_ctx c = {.s = s, .msg = msg, .msglen = msglen};
    char **names = NULL;
    size_t n = 0;
    int rc = 0;
    if (!(s->root = strdup(root))) return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    struct stat st;
    if (stat(root, &st) != 0) {
        int e = errno;
        if (e == ENOENT)
            return err_set(msg, msglen, ERR_NOTFOUND, "data folder %s does not exist", root);
        return err_set_errno(msg, msglen, ERR_IO, e, "cannot access data folder %s", root);
    }
    if (!S_ISDIR(st.st_mode))
        return err_set(msg, msglen, ERR_IO, "data folder %s is not a folder", root);
    s->real_root = realpath(root, NULL);
    if (!s->real_root) return err_set_errno(msg, msglen, ERR_IO, errno, "cannot resolve %s", root);
    if (!datapath_in_roots(s->real_root, roots, n_roots))
        return err_set(msg, msglen, ERR_PERM,
                       "data folder %s (resolved to %s) is outside data_roots", root, s->real_root);
    c.scope = (datapath_scope){.real_dir = s->real_root, .roots = roots, .n_roots = n_roots};
    /* Class folders first (one rule with the daemon: datapath.h), so class
     * indices are known before walking. */
    rc = datapath_classes(root, &c.scope, &names, &n, note_top, &c, msg, msglen);
    if (rc) goto out;
    s->classes = names;
    s->nclasses = (int)n;
    names = NULL;
    n = 0;
    c.stack[0] = (devino){st.st_dev, st.st_ino};
    for (int k = 0; k < s->nclasses && rc == 0; k++) {
        char *pa = join(root, s->classes[k]);
        struct stat cs;
        if (!pa || stat(pa, &cs) != 0) {
            rc = err_set(msg, msglen, pa ? ERR_IO : ERR_NOMEM, "cannot read class folder %s of %s",
                         s->classes[k], root);
            free(pa);
            break;
        }
        c.depth = 1;
        c.stack[1] = (devino){cs.st_dev, cs.st_ino};
        rc = walk(&c, pa, s->classes[k], k);
        free(pa);
    }
    if (rc) goto out;
    if (s->nfiles) qsort(s->files, s->nfiles, sizeof *s->files, cmp_file);
    if (s->skipped) {
        char list[512] = "";
        size_t used = 0;
        for (size_t i = 0; i < c.nfirst && c.first[i]; i++) {
            int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", c.first[i]);
            if (w < 0 || (size_t)w >= sizeof list - used) break;
            used += (size_t)w;
        }
        log_warn("data folder %s: %zu file%s that %s not JPEG (.jpg/.jpeg) left out: %s%s", root,
                 s->skipped, s->skipped == 1 ? "" : "s", s->skipped == 1 ? "is" : "are", list,
                 s->skipped > c.nfirst ? ", ..." : "");
    }
out:
    for (size_t i = 0; i < c.nfirst; i++)
        free(c.first[i]);
    free_list(names, n);
    return rc;
}

void dataset_scan_free(dataset_scan *s)
{
    if (!s) return;
    free(s->root);
    free(s->real_root);
    for (int k = 0; k < s->nclasses; k++)
        free(s->classes[k]);
    free(s->classes);
    for (size_t i = 0; i < s->nfiles; i++)
        free(s->files[i].rel);
    free(s->files);
    memset(s, 0, sizeof *s);
}

/* ---- the store --------------------------------------------------------- */

#define CACHE_MAGIC "SWPIMGC1"
#define CACHE_VERSION 1u
#define CACHE_HDR 64

typedef struct {
    char magic[8];       // CACHE_MAGIC, written last
    uint32_t version;    // CACHE_VERSION
    uint32_t side;       // square side S
    uint64_t key;        // cache_key() of the scan it was built from
    uint64_t count;      // files in that scan
    uint64_t bad;        // of which failed to decode
    uint64_t pix_offset; // byte offset of the first square (page-aligned)
    uint64_t total;      // file size
    uint8_t pad[8];      // zero
} cache_hdr;
_Static_assert(sizeof(cache_hdr) == CACHE_HDR, "cache header is 64 bytes");

struct dataset_store {
    int side;           // square side
    size_t n;           // files in the scan
    size_t bad;         // files that failed to decode
    const uint8_t *ok;  // (n) 1 = decoded
    const uint8_t *pix; // (n, side, side, 3)
    void *map;          // cache mapping or NULL
    size_t maplen;      // its length
    uint8_t *mem;       // in-memory pixels (owned) or NULL
    uint8_t *mem_ok;    // in-memory flags (owned) or NULL
    bool from_cache;    // mapped an existing file
    char *cache_path;   // owned or NULL
};

static size_t square_bytes(int side)
{
    return (size_t)side * side * 3;
}

static uint64_t cache_key(const dataset_scan *scan, int side)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv_bytes(h, "sweepd-imgcache-v1", 19);
    h = fnv_bytes(h, scan->real_root, strlen(scan->real_root) + 1);
    uint32_t s32 = (uint32_t)side;
    h = fnv_bytes(h, &s32, sizeof s32);
    for (size_t i = 0; i < scan->nfiles; i++) {
        const dataset_file *f = &scan->files[i];
        h = fnv_bytes(h, f->rel, strlen(f->rel) + 1);
        h = fnv_bytes(h, &f->size, sizeof f->size);
        h = fnv_bytes(h, &f->mtime_ns, sizeof f->mtime_ns);
    }
    return h;
}

/* -- parallel decoding -- */

typedef struct {
    const dataset_scan *scan;         // files to decode
    int side;                         // square side
    uint8_t *pix;                     // (n, side, side, 3) destination
    uint8_t *ok;                      // (n) flags
    atomic_size_t next;               // next file index to take
    atomic_size_t bad;                // failures so far
    pthread_mutex_t mu;               // guards first_bad
    char first_bad[FIRST_NAMES][320]; // "rel (reason)" of the first failures
    size_t nfirst;                    // entries used in first_bad
} build_job;

static void *build_thread(void *arg)
{
    build_job *j = arg;
    fileio_buf buf = {0};
    size_t sq = square_bytes(j->side);
    for (;;) {
        size_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->scan->nfiles) break;
        const dataset_file *f = &j->scan->files[i];
        char path[PATH_MAX + 256];
        snprintf(path, sizeof path, "%s/%s", j->scan->root, f->rel);
        char why[256] = "";
        int rc = fileio_read(path, 0, &buf, why, sizeof why);
        if (!rc)
            rc = image_eval_square(buf.data, buf.len, j->side, j->pix + i * sq, why, sizeof why);
        if (rc == 0) {
            j->ok[i] = 1;
            continue;
        }
        j->ok[i] = 0;
        memset(j->pix + i * sq, 0, sq);
        atomic_fetch_add(&j->bad, 1);
        log_debug("data folder %s: %s left out: %s", j->scan->root, f->rel, why);
        pthread_mutex_lock(&j->mu);
        if (j->nfirst < FIRST_NAMES)
            snprintf(j->first_bad[j->nfirst++], sizeof j->first_bad[0], "%s (%s)", f->rel, why);
        pthread_mutex_unlock(&j->mu);
    }
    fileio_buf_free(&buf);
    return NULL;
}

/* Decodes every file of SCAN into PIX/OK with THREADS threads; returns the
 * number of bad files. */
static size_t decode_all(const dataset_scan *scan, int side, uint8_t *pix, uint8_t *ok, int threads)
{
    build_job j = {.scan = scan, .side = side, .pix = pix, .ok = ok};
    atomic_init(&j.next, 0);
    atomic_init(&j.bad, 0);
    pthread_mutex_init(&j.mu, NULL);
    if (threads < 1) threads = 1;
    if ((size_t)threads > scan->nfiles) threads = scan->nfiles ? (int)scan->nfiles : 1;
    pthread_t th[64];
    if (threads > 64) threads = 64;
    int started = 0;
    for (int t = 1; t < threads; t++) {
        if (pthread_create(&th[started], NULL, build_thread, &j) != 0) break;
        started++;
    }
    build_thread(&j);
    for (int t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    pthread_mutex_destroy(&j.mu);
    size_t bad = atomic_load(&j.bad);
    if (bad) {
        char list[1024] = "";
        size_t used = 0;
        for (size_t i = 0; i < j.nfirst; i++) {
            int w =
                snprintf(list + used, sizeof list - used, "%s%s", i ? "; " : "", j.first_bad[i]);
            if (w < 0 || (size_t)w >= sizeof list - used) break;
            used += (size_t)w;
        }
        log_warn("data folder %s: %zu JPEG file%s could not be decoded and %s left out: %s%s",
                 scan->root, bad, bad == 1 ? "" : "s", bad == 1 ? "is" : "are", list,
                 bad > j.nfirst ? "; ..." : "");
    }
    return bad;
}

/* -- cache file -- */

/* Maps PATH read-only if it is a complete cache for KEY/SIDE/COUNT. Returns
 * 0 and fills ST, ERR_NOTFOUND when missing, ERR_PARSE when invalid. */
static int cache_map(dataset_store *st, const char *path, uint64_t key, int side, size_t count)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ERR_NOTFOUND;
    struct stat sb;
    cache_hdr h;
    int rc = ERR_PARSE;
    if (fstat(fd, &sb) != 0 || (size_t)sb.st_size < CACHE_HDR) goto out;
    if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h) goto out;
    if (memcmp(h.magic, CACHE_MAGIC, 8) != 0 || h.version != CACHE_VERSION ||
        h.side != (uint32_t)side || h.key != key || h.count != count ||
        h.total != (uint64_t)sb.st_size || h.pix_offset < CACHE_HDR + count ||
        h.total != h.pix_offset + count * square_bytes(side))
        goto out;
    void *m = mmap(NULL, (size_t)h.total, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) goto out;
    st->map = m;
    st->maplen = (size_t)h.total;
    st->ok = (const uint8_t *)m + CACHE_HDR;
    st->pix = (const uint8_t *)m + h.pix_offset;
    st->bad = (size_t)h.bad;
    rc = 0;
out:
    close(fd);
    return rc;
}

/* Builds the cache file PATH (under the caller's lock). */
static int cache_build(const dataset_scan *scan, int side, uint64_t key, const char *path,
                       int threads, char *msg, size_t msglen)
{
    size_t count = scan->nfiles;
    size_t pix_off = ((CACHE_HDR + count) + 4095) & ~(size_t)4095;
    size_t total = pix_off + count * square_bytes(side);
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmpXXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return err_set_errno(msg, msglen, ERR_IO, errno, "cannot create cache file in %s", path);
    int rc = 0;
    void *m = MAP_FAILED;
    (void)fchmod(fd, 0644); // mkostemp makes it 0600; other workers only read it
    int e = posix_fallocate(fd, 0, (off_t)total);
    if (e != 0) {
        rc = err_set_errno(msg, msglen, ERR_IO, e, "cannot reserve %zu MiB for cache file %s",
                           total >> 20, tmp);
        goto fail;
    }
    m = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        rc = err_set_errno(msg, msglen, ERR_IO, errno, "cannot map cache file %s", tmp);
        goto fail;
    }
    uint8_t *base = m;
    size_t bad = decode_all(scan, side, base + pix_off, base + CACHE_HDR, threads);
    cache_hdr h = {.version = CACHE_VERSION,
                   .side = (uint32_t)side,
                   .key = key,
                   .count = count,
                   .bad = bad,
                   .pix_offset = pix_off,
                   .total = total};
    memcpy(h.magic, CACHE_MAGIC, 8);
    memcpy(base, &h, sizeof h);
    munmap(m, total);
    m = MAP_FAILED;
    if (fdatasync(fd) != 0) {
        rc = err_set_errno(msg, msglen, ERR_IO, errno, "cannot flush cache file %s", tmp);
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        rc = err_set_errno(msg, msglen, ERR_IO, errno, "cannot rename %s to %s", tmp, path);
        goto fail;
    }
    close(fd);
    return 0;
fail:
    if (m != MAP_FAILED) munmap(m, total);
    close(fd);
    unlink(tmp);
    return rc;
}

/* The warning decode_all gives, for a store mapped from the cache (the
 * reasons are not stored, only which files failed). */
static void warn_bad_from_cache(const dataset_scan *scan, const dataset_store *st)
{
    if (!st->bad) return;
    char list[1024] = "";
    size_t used = 0, named = 0;
    for (size_t i = 0; i < st->n && named < FIRST_NAMES; i++) {
        if (st->ok[i]) continue;
        int w = snprintf(list + used, sizeof list - used, "%s%s", named ? "; " : "",
                         scan->files[i].rel);
        if (w < 0 || (size_t)w >= sizeof list - used) break;
        used += (size_t)w;
        named++;
    }
    log_warn("data folder %s: %zu JPEG file%s could not be decoded and %s left out: %s%s",
             scan->root, st->bad, st->bad == 1 ? "" : "s", st->bad == 1 ? "is" : "are", list,
             st->bad > named ? "; ..." : "");
}

/* Removes the other cache files (and temporary files left by a crashed
 * build) of the same root and side: they belong to an older state of the
 * folder that no scan can ask for again. Workers that still map one keep
 * their mapping (unlinking does not unmap). Called under the lock. */
static void remove_stale(const char *cache_dir, const char *prefix, const char *keep)
{
    DIR *d = opendir(cache_dir);
    if (!d) return;
    const char *keep_name = strrchr(keep, '/') ? strrchr(keep, '/') + 1 : keep;
    size_t pl = strlen(prefix);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (strncmp(n, prefix, pl) != 0 || n[pl] != '-' || strcmp(n, keep_name) == 0) continue;
        if (!strstr(n, ".bin")) continue;
        char path[PATH_MAX + 256];
        if (snprintf(path, sizeof path, "%s/%s", cache_dir, n) >= (int)sizeof path) continue;
        if (unlink(path) == 0) log_info("removed stale image cache %s", path);
    }
    closedir(d);
}

/* Decodes SCAN into memory owned by ST. */
static int store_in_memory(dataset_store *st, const dataset_scan *scan, int side, int threads,
                           char *msg, size_t msglen)
{
    size_t n = scan->nfiles ? scan->nfiles : 1;
    st->mem = malloc(n * square_bytes(side));
    st->mem_ok = calloc(n, 1);
    if (!st->mem || !st->mem_ok)
        return err_set(msg, msglen, ERR_NOMEM, "out of memory for %zu decoded images of %dx%d",
                       scan->nfiles, side, side);
    st->bad = decode_all(scan, side, st->mem, st->mem_ok, threads);
    st->pix = st->mem;
    st->ok = st->mem_ok;
    return 0;
}

/* Maps or builds the cache file for SCAN in CACHE_DIR (see the file
 * comment). 0, ERR_IO or ERR_NOMEM. */
static int store_cached(dataset_store *st, const dataset_scan *scan, int side,
                        const char *cache_dir, int threads, char *msg, size_t msglen)
{
    uint64_t key = cache_key(scan, side);
    if (fileio_mkdirs(cache_dir) != 0)
        return err_set_errno(msg, msglen, ERR_IO, errno, "cannot create cache folder %s",
                             cache_dir);
    /* imgcache-<root hash>-<side>-<key>.bin; one lock per (root, side). */
    char prefix[64], lockpath[PATH_MAX + 64];
    snprintf(prefix, sizeof prefix, "imgcache-%016llx-%d",
             (unsigned long long)dataset_path_hash(scan->real_root), side);
    if (asprintf(&st->cache_path, "%s/%s-%016llx.bin", cache_dir, prefix, (unsigned long long)key) <
        0) {
        st->cache_path = NULL;
        return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    }
    if (snprintf(lockpath, sizeof lockpath, "%s/%s.lock", cache_dir, prefix) >=
        (int)sizeof lockpath)
        return err_set(msg, msglen, ERR_IO, "cache folder path %s is too long", cache_dir);
    if (cache_map(st, st->cache_path, key, side, scan->nfiles) == 0) {
        st->from_cache = true;
        warn_bad_from_cache(scan, st);
        return 0;
    }
    int lfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lfd < 0)
        return err_set_errno(msg, msglen, ERR_IO, errno, "cannot open cache lock %s", lockpath);
    while (flock(lfd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            int e = errno;
            close(lfd);
            return err_set_errno(msg, msglen, ERR_IO, e, "cannot lock %s", lockpath);
        }
    }
    int rc = 0;
    if (cache_map(st, st->cache_path, key, side, scan->nfiles) == 0) {
        st->from_cache = true; // built by another worker while we waited
        warn_bad_from_cache(scan, st);
    } else {
        log_info("decoding %zu images of %s into cache %s (%dx%d)", scan->nfiles, scan->root,
                 st->cache_path, side, side);
        rc = cache_build(scan, side, key, st->cache_path, threads, msg, msglen);
        if (!rc && cache_map(st, st->cache_path, key, side, scan->nfiles) != 0)
            rc = err_set(msg, msglen, ERR_IO, "cache file %s is invalid right after building it",
                         st->cache_path);
        if (!rc) remove_stale(cache_dir, prefix, st->cache_path);
    }
    flock(lfd, LOCK_UN);
    close(lfd);
    return rc;
}

int dataset_store_open(const dataset_scan *scan, int side, const char *cache_dir, int threads,
                       dataset_store **out, char *msg, size_t msglen)
{
    *out = NULL;
    dataset_store *st = calloc(1, sizeof *st);
    if (!st) return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    st->side = side;
    st->n = scan->nfiles;
    int rc;
    if (cache_dir && *cache_dir) {
        rc = store_cached(st, scan, side, cache_dir, threads, msg, msglen);
        if (rc == ERR_IO) {
            /* A cache is an optimisation: an unwritable folder or a full disk
             * must not fail the trial. */
            log_warn("image cache unavailable (%s); decoding %s into memory instead", msg,
                     scan->root);
            if (st->map) munmap(st->map, st->maplen);
            st->map = NULL;
            free(st->cache_path);
            st->cache_path = NULL;
            st->from_cache = false;
            rc = store_in_memory(st, scan, side, threads, msg, msglen);
        }
    } else {
        rc = store_in_memory(st, scan, side, threads, msg, msglen);
    }
    if (rc) {
        dataset_store_free(st);
        return rc;
    }
    *out = st;
    return 0;
}

void dataset_store_free(dataset_store *st)
{
    if (!st) return;
    if (st->map) munmap(st->map, st->maplen);
    free(st->mem);
    free(st->mem_ok);
    free(st->cache_path);
    free(st);
}

int dataset_store_side(const dataset_store *st)
{
    return st->side;
}

bool dataset_store_ok(const dataset_store *st, size_t i)
{
    return i < st->n && st->ok[i];
}

const uint8_t *dataset_store_pixels(const dataset_store *st, size_t i)
{
    if (!dataset_store_ok(st, i)) return NULL;
    return st->pix + i * square_bytes(st->side);
}

size_t dataset_store_bad(const dataset_store *st)
{
    return st->bad;
}

bool dataset_store_from_cache(const dataset_store *st)
{
    return st->from_cache;
}

const char *dataset_store_cache_path(const dataset_store *st)
{
    return st->cache_path;
}

/* ---- splits ------------------------------------------------------------ */

static void split_free(dataset_split *sp)
{
    free(sp->file);
    free(sp->label);
    memset(sp, 0, sizeof *sp);
}

static int split_alloc(dataset_split *sp, size_t n)
{
    sp->n = 0;
    sp->file = malloc((n ? n : 1) * sizeof *sp->file);
    sp->label = malloc((n ? n : 1) * sizeof *sp->label);
    return sp->file && sp->label ? 0 : ERR_NOMEM;
}

typedef struct {
    uint64_t h;      // dataset_path_hash(rel)
    uint32_t file;   // index into the scan's files
    const char *rel; // the relative path (ties)
} hashed;

static int cmp_hashed(const void *a, const void *b)
{
    const hashed *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    return strcmp(x->rel, y->rel);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Stratified hash split of the usable files of SCAN into TRAIN and VAL. */
static int split_by_hash(const dataset_scan *scan, const dataset_store *st, double frac,
                         dataset_split *train, dataset_split *val)
{
    if (split_alloc(train, scan->nfiles) || split_alloc(val, scan->nfiles)) return ERR_NOMEM;
    hashed *hv = malloc((scan->nfiles ? scan->nfiles : 1) * sizeof *hv);
    if (!hv) return ERR_NOMEM;
    size_t i = 0;
    while (i < scan->nfiles) {
        int label = scan->files[i].label;
        size_t m = 0, j = i;
        for (; j < scan->nfiles && scan->files[j].label == label; j++) {
            if (!dataset_store_ok(st, j)) continue;
            hv[m].h = dataset_path_hash(scan->files[j].rel);
            hv[m].file = (uint32_t)j;
            hv[m].rel = scan->files[j].rel;
            m++;
        }
        qsort(hv, m, sizeof *hv, cmp_hashed);
        size_t nval = (size_t)nearbyint(frac * (double)m);
        if (frac > 0 && m >= 2 && nval < 1) nval = 1;
        if (m >= 1 && nval > m - 1) nval = m - 1;
        for (size_t k = 0; k < m; k++) {
            dataset_split *to = k < nval ? val : train;
            to->file[to->n] = hv[k].file;
            to->label[to->n] = label;
            to->n++;
        }
        i = j;
    }
    free(hv);
    /* Ascending file order (labels follow the files: the scan is sorted by
     * label, so sorting the indices keeps labels sorted too). */
    dataset_split *both[2] = {train, val};
    for (int s = 0; s < 2; s++) {
        dataset_split *sp = both[s];
        qsort(sp->file, sp->n, sizeof *sp->file, cmp_u32);
        for (size_t k = 0; k < sp->n; k++)
            sp->label[k] = scan->files[sp->file[k]].label;
    }
    return 0;
}

/* Every usable file of SCAN, labels mapped through MAP (NULL = identity). */
static int split_all(const dataset_scan *scan, const dataset_store *st, const int *map,
                     dataset_split *sp)
{
    if (split_alloc(sp, scan->nfiles)) return ERR_NOMEM;
    for (size_t j = 0; j < scan->nfiles; j++) {
        if (!dataset_store_ok(st, j)) continue;
        sp->file[sp->n] = (uint32_t)j;
        sp->label[sp->n] = map ? map[scan->files[j].label] : scan->files[j].label;
        sp->n++;
    }
    return 0;
}

/* Maps the class names of SCAN onto NAMES; ERR_DATA naming the first folder
 * class not in NAMES. MAP (scan->nclasses) is filled. */
static int map_classes(const dataset_scan *scan, char *const *names, int nnames, int *map,
                       char *msg, size_t msglen)
{
    for (int k = 0; k < scan->nclasses; k++) {
        map[k] = -1;
        for (int t = 0; t < nnames; t++)
            if (strcmp(scan->classes[k], names[t]) == 0) map[k] = t;
        if (map[k] < 0)
            return err_set(msg, msglen, ERR_DATA,
                           "data folder %s has class '%s', which is not one of the %d "
                           "training classes",
                           scan->root, scan->classes[k], nnames);
    }
    return 0;
}

int dataset_open(const dataset_config *cfg, dataset *d, char *msg, size_t msglen)
{
    memset(d, 0, sizeof *d);
    int *map = NULL;
    size_t *usable = NULL, *total = NULL;
    int rc = 0;
    if (!cfg->train_dir || !*cfg->train_dir)
        return err_set(msg, msglen, ERR_INVALID, "data.train: no training folder given");
    if (cfg->input_size < 1 || cfg->input_size > 4096)
        return err_set(msg, msglen, ERR_INVALID, "model.input_size: %d is not in 1..4096",
                       cfg->input_size);
    if (!(cfg->val_fraction >= 0.0 && cfg->val_fraction < 1.0))
        return err_set(msg, msglen, ERR_INVALID, "data.val_fraction: %g is not in [0, 1)",
                       cfg->val_fraction);
    bool has_val_dir = cfg->val_dir && *cfg->val_dir;
    d->input_size = cfg->input_size;
    d->side = image_eval_size(cfg->input_size);
    int threads = cfg->threads > 0 ? cfg->threads : 1;

    rc = dataset_scan_dir(cfg->train_dir, cfg->roots, cfg->n_roots, &d->train_scan, msg, msglen);
    if (rc) goto fail;
    if (d->train_scan.nclasses == 0) {
        rc = err_set(
            msg, msglen, ERR_DATA,
            "training folder %s has no class folders (expected %s/<class name>/<image>.jpg)",
            cfg->train_dir, cfg->train_dir);
        goto fail;
    }
    if (d->train_scan.nclasses == 1) {
        char esc[256];
        utf8_escape(esc, sizeof esc, d->train_scan.classes[0]);
        rc = err_set(msg, msglen, ERR_DATA,
                     "training folder %s has one class folder (%s); classification needs two or "
                     "more",
                     cfg->train_dir, esc);
        goto fail;
    }
    d->nclasses = d->train_scan.nclasses;
    d->classes = d->train_scan.classes;
    rc = dataset_store_open(&d->train_scan, d->side, cfg->cache_dir, threads, &d->train_store, msg,
                            msglen);
    if (rc) goto fail;
    d->skipped = d->train_scan.skipped;
    d->outside = d->train_scan.outside;
    d->bad = dataset_store_bad(d->train_store);

    /* Every training class needs a usable image. */
    usable = calloc((size_t)d->nclasses, sizeof *usable);
    total = calloc((size_t)d->nclasses, sizeof *total);
    if (!usable || !total) {
        rc = err_set(msg, msglen, ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (size_t j = 0; j < d->train_scan.nfiles; j++) {
        int l = d->train_scan.files[j].label;
        total[l]++;
        if (dataset_store_ok(d->train_store, j)) usable[l]++;
    }
    for (int k = 0; k < d->nclasses; k++) {
        if (usable[k]) continue;
        if (total[k])
            rc =
                err_set(msg, msglen, ERR_DATA,
                        "class '%s' in %s has no usable image: all %zu JPEG files failed to decode",
                        d->classes[k], cfg->train_dir, total[k]);
        else
            rc = err_set(
                msg, msglen, ERR_DATA,
                "class '%s' in %s has no usable image: the folder %s/%s has no .jpg/.jpeg file",
                d->classes[k], cfg->train_dir, cfg->train_dir, d->classes[k]);
        goto fail;
    }

    if (has_val_dir) {
        rc = dataset_scan_dir(cfg->val_dir, cfg->roots, cfg->n_roots, &d->val_scan, msg, msglen);
        if (rc) goto fail;
        map = malloc(((size_t)d->val_scan.nclasses + 1) * sizeof *map);
        if (!map) {
            rc = err_set(msg, msglen, ERR_NOMEM, "out of memory");
            goto fail;
        }
        rc = map_classes(&d->val_scan, d->classes, d->nclasses, map, msg, msglen);
        if (rc) goto fail;
        rc = dataset_store_open(&d->val_scan, d->side, cfg->cache_dir, threads, &d->val_store, msg,
                                msglen);
        if (rc) goto fail;
        d->skipped += d->val_scan.skipped;
        d->outside += d->val_scan.outside;
        d->bad += dataset_store_bad(d->val_store);
        if (split_all(&d->train_scan, d->train_store, NULL, &d->train) ||
            split_all(&d->val_scan, d->val_store, map, &d->val)) {
            rc = err_set(msg, msglen, ERR_NOMEM, "out of memory");
            goto fail;
        }
        d->train.store = d->train_store;
        d->train.scan = &d->train_scan;
        d->val.store = d->val_store;
        d->val.scan = &d->val_scan;
        if (d->val.n == 0) {
            rc = err_set(msg, msglen, ERR_DATA, "validation folder %s has no usable image",
                         cfg->val_dir);
            goto fail;
        }
    } else {
        if (split_by_hash(&d->train_scan, d->train_store, cfg->val_fraction, &d->train, &d->val)) {
            rc = err_set(msg, msglen, ERR_NOMEM, "out of memory");
            goto fail;
        }
        d->train.store = d->val.store = d->train_store;
        d->train.scan = d->val.scan = &d->train_scan;
        if (cfg->val_fraction > 0 && d->val.n == 0) {
            rc = err_set(msg, msglen, ERR_DATA,
                         "the validation split of %s is empty: val_fraction %g leaves no image "
                         "when every class has fewer than 2 usable images",
                         cfg->train_dir, cfg->val_fraction);
            goto fail;
        }
    }
    d->train.norm = d->val.norm = cfg->norm ? *cfg->norm : image_norm_imagenet;
    char outside[64] = "";
    if (d->outside)
        snprintf(outside, sizeof outside, ", %zu links outside data_roots skipped", d->outside);
    log_info("data: %d classes, %zu training and %zu validation images (%zu non-JPEG files "
             "skipped, %zu failed to decode%s)%s",
             d->nclasses, d->train.n, d->val.n, d->skipped, d->bad, outside,
             dataset_store_from_cache(d->train_store) ? ", from the decoded cache" : "");
    rc = 0;
    goto out;
fail:
    dataset_close(d);
out:
    free(map);
    free(usable);
    free(total);
    return rc;
}

void dataset_close(dataset *d)
{
    if (!d) return;
    split_free(&d->train);
    split_free(&d->val);
    dataset_store_free(d->train_store);
    dataset_store_free(d->val_store);
    dataset_scan_free(&d->train_scan);
    dataset_scan_free(&d->val_scan);
    memset(d, 0, sizeof *d);
}

int dataset_open_eval(const char *dir, char *const *roots, int n_roots, char *const *classes,
                      int nclasses, int input_size, const image_norm *norm, const char *cache_dir,
                      int threads, dataset_scan *scan, dataset_store **store, dataset_split *split,
                      char *msg, size_t msglen)
{
    memset(split, 0, sizeof *split);
    *store = NULL;
    int *map = NULL;
    int rc = dataset_scan_dir(dir, roots, n_roots, scan, msg, msglen);
    if (rc) goto fail;
    if (input_size < 1 || input_size > 4096) {
        rc = err_set(msg, msglen, ERR_INVALID, "input size %d is not in 1..4096", input_size);
        goto fail;
    }
    if (scan->nclasses == 0) {
        rc = err_set(msg, msglen, ERR_DATA, "data folder %s has no class folders", dir);
        goto fail;
    }
    if (classes) {
        map = malloc((size_t)scan->nclasses * sizeof *map);
        if (!map) {
            rc = err_set(msg, msglen, ERR_NOMEM, "out of memory");
            goto fail;
        }
        rc = map_classes(scan, classes, nclasses, map, msg, msglen);
        if (rc) goto fail;
    }
    rc = dataset_store_open(scan, image_eval_size(input_size), cache_dir, threads, store, msg,
                            msglen);
    if (rc) goto fail;
    if (split_all(scan, *store, map, split)) {
        rc = err_set(msg, msglen, ERR_NOMEM, "out of memory");
        goto fail;
    }
    split->store = *store;
    split->scan = scan;
    split->norm = norm ? *norm : image_norm_imagenet;
    if (split->n == 0) {
        rc = err_set(msg, msglen, ERR_DATA,
                     "data folder %s has no usable image (%zu JPEG files "
                     "failed to decode, %zu other files)",
                     dir, dataset_store_bad(*store), scan->skipped);
        goto fail;
    }
    free(map);
    return 0;
fail:
    free(map);
    dataset_eval_close(scan, store, split);
    return rc;
}

void dataset_eval_close(dataset_scan *scan, dataset_store **store, dataset_split *split)
{
    split_free(split);
    dataset_store_free(*store);
    *store = NULL;
    dataset_scan_free(scan);
}

/* ---- batches ----------------------------------------------------------- */

size_t dataset_num_batches(const dataset_split *split, int batch_size)
{
    if (batch_size < 1) return 0;
    return (split->n + (size_t)batch_size - 1) / (size_t)batch_size;
}

/* The order of EPOCH: identity or the seeded shuffle. */
static void epoch_perm(size_t n, uint64_t seed, int epoch, bool shuffle, uint32_t *perm)
{
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    if (!shuffle) return;
    rng_t r;
    rng_seed(&r, rng_derive(rng_derive(seed, DATASET_STREAM_SHUFFLE), (uint64_t)epoch));
    rng_shuffle(&r, perm, n, sizeof *perm);
}

/* Fills batch B given the epoch's permutation. Returns n. */
static int fill_from_perm(const dataset_split *sp, const uint32_t *perm, int input_size,
                          uint64_t seed, int epoch, size_t b, int batch_size,
                          const augment_opts *augment, float *x, int *labels, uint32_t *index)
{
    size_t start = b * (size_t)batch_size;
    if (start >= sp->n) return 0;
    size_t n = sp->n - start;
    if (n > (size_t)batch_size) n = (size_t)batch_size;
    int ss = dataset_store_side(sp->store);
    size_t per = (size_t)3 * input_size * input_size;
    uint64_t aug_seed = rng_derive(rng_derive(seed, DATASET_STREAM_AUGMENT), (uint64_t)epoch);
    for (size_t k = 0; k < n; k++) {
        uint32_t pos = perm ? perm[start + k] : (uint32_t)(start + k);
        const uint8_t *px = dataset_store_pixels(sp->store, sp->file[pos]);
        SWEEP_ASSERT(px != NULL);
        if (augment) {
            rng_t r;
            rng_seed(&r, rng_derive(aug_seed, pos));
            image_augment(px, ss, input_size, augment, &sp->norm, &r, x + k * per);
        } else {
            image_eval_view(px, ss, input_size, &sp->norm, x + k * per);
        }
        labels[k] = sp->label[pos];
        if (index) index[k] = pos;
    }
    return (int)n;
}

int dataset_fill_batch(const dataset_split *split, int input_size, uint64_t seed, int epoch,
                       size_t b, int batch_size, bool shuffle, const augment_opts *augment,
                       float *x, int *labels, uint32_t *index)
{
    if (batch_size < 1 || b * (size_t)batch_size >= split->n) return 0;
    uint32_t *perm = NULL;
    if (shuffle) {
        perm = malloc(split->n * sizeof *perm);
        if (!perm) return ERR_NOMEM;
        epoch_perm(split->n, seed, epoch, true, perm);
    }
    int n = fill_from_perm(split, perm, input_size, seed, epoch, b, batch_size, augment, x, labels,
                           index);
    free(perm);
    return n;
}

/* -- loader -- */

typedef struct {
    float *x;        // (batch_size, 3, S, S)
    int *labels;     // (batch_size)
    uint32_t *index; // (batch_size)
    int n;           // images filled
    size_t b;        // batch number it holds
    int epoch;       // epoch it holds
} slot;

struct dataset_loader {
    const dataset_split *split; // not owned
    int input_size;             // output side
    int batch_size;             // images per batch
    uint64_t seed;              // trial seed
    bool shuffle;               // batch order: the epoch's permutation, else split order
    bool augment;               // augment training views with aug
    augment_opts aug;           // augmentation settings (copied) when augment
    uint32_t *perm;             // (split->n) order of the current epoch
    int epoch;                  // current epoch
    size_t nb;                  // batches per epoch
    size_t next_b;              // batch the next call returns
    slot slots[2];              // double buffer
    int cur;                    // slot handed out last (-1 none)
    /* prefetch thread */
    bool threaded;      // thread running
    pthread_t th;       // the prefetch thread
    pthread_mutex_t mu; // guards job, job_done, job_slot, quit
    pthread_cond_t cv;  // signals a new job, a finished job or quit
    bool job;           // a fill is requested or running
    bool job_done;      // the requested fill finished
    int job_slot;       // which slot it fills
    bool quit;          // thread should exit
};

static void loader_fill(dataset_loader *l, int s, size_t b)
{
    slot *sl = &l->slots[s];
    sl->n = fill_from_perm(l->split, l->perm, l->input_size, l->seed, l->epoch, b, l->batch_size,
                           l->augment ? &l->aug : NULL, sl->x, sl->labels, sl->index);
    sl->b = b;
    sl->epoch = l->epoch;
}

static void *loader_thread(void *arg)
{
    dataset_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->quit && !(l->job && !l->job_done))
            pthread_cond_wait(&l->cv, &l->mu);
        if (l->quit) break;
        int s = l->job_slot;
        size_t b = l->slots[s].b;
        pthread_mutex_unlock(&l->mu);
        loader_fill(l, s, b);
        pthread_mutex_lock(&l->mu);
        l->job_done = true;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* Waits until no fill is running; returns the slot filled (or -1). */
static int loader_wait(dataset_loader *l)
{
    if (!l->threaded) return -1;
    pthread_mutex_lock(&l->mu);
    while (l->job && !l->job_done)
        pthread_cond_wait(&l->cv, &l->mu);
    int s = l->job ? l->job_slot : -1;
    l->job = false;
    l->job_done = false;
    pthread_mutex_unlock(&l->mu);
    return s;
}

static void loader_request(dataset_loader *l, int s, size_t b)
{
    pthread_mutex_lock(&l->mu);
    l->slots[s].b = b;
    l->job_slot = s;
    l->job = true;
    l->job_done = false;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

int dataset_loader_new(const dataset_split *split, int input_size, int batch_size, uint64_t seed,
                       bool shuffle, const augment_opts *augment, bool prefetch,
                       dataset_loader **out)
{
    *out = NULL;
    if (batch_size < 1 || input_size < 1) return ERR_INVALID;
    dataset_loader *l = calloc(1, sizeof *l);
    if (!l) return ERR_NOMEM;
    l->split = split;
    l->input_size = input_size;
    l->batch_size = batch_size;
    l->seed = seed;
    l->shuffle = shuffle;
    l->augment = augment != NULL;
    if (augment) l->aug = *augment;
    l->cur = -1;
    l->perm = malloc((split->n ? split->n : 1) * sizeof *l->perm);
    size_t per = (size_t)3 * input_size * input_size * batch_size;
    for (int s = 0; s < 2; s++) {
        l->slots[s].x = malloc(per * sizeof(float));
        l->slots[s].labels = malloc((size_t)batch_size * sizeof(int));
        l->slots[s].index = malloc((size_t)batch_size * sizeof(uint32_t));
        if (!l->slots[s].x || !l->slots[s].labels || !l->slots[s].index) goto nomem;
    }
    if (!l->perm) goto nomem;
    l->nb = dataset_num_batches(split, batch_size);
    epoch_perm(split->n, seed, 0, shuffle, l->perm);
    if (prefetch) {
        pthread_mutex_init(&l->mu, NULL);
        pthread_cond_init(&l->cv, NULL);
        if (pthread_create(&l->th, NULL, loader_thread, l) == 0) {
            l->threaded = true;
        } else {
            pthread_mutex_destroy(&l->mu);
            pthread_cond_destroy(&l->cv);
            log_warn("data loader: cannot start a prefetch thread; preparing batches inline");
        }
    }
    *out = l;
    return 0;
nomem:
    dataset_loader_free(l);
    return ERR_NOMEM;
}

void dataset_loader_start_at(dataset_loader *l, int epoch, size_t first_batch)
{
    loader_wait(l);
    l->epoch = epoch;
    epoch_perm(l->split->n, l->seed, epoch, l->shuffle, l->perm);
    l->next_b = first_batch;
    l->cur = -1;
    if (l->threaded && first_batch < l->nb) loader_request(l, 0, first_batch);
}

void dataset_loader_start(dataset_loader *l, int epoch)
{
    dataset_loader_start_at(l, epoch, 0);
}

int dataset_loader_next(dataset_loader *l, dataset_batch *b)
{
    if (l->next_b >= l->nb) return 0;
    size_t want = l->next_b;
    int s = loader_wait(l);
    if (s < 0 || l->slots[s].b != want || l->slots[s].epoch != l->epoch) {
        s = l->cur == 0 ? 1 : 0;
        loader_fill(l, s, want);
    }
    l->cur = s;
    l->next_b++;
    if (l->threaded && l->next_b < l->nb) loader_request(l, 1 - s, l->next_b);
    b->n = l->slots[s].n;
    b->x = l->slots[s].x;
    b->labels = l->slots[s].labels;
    b->index = l->slots[s].index;
    return 1;
}

void dataset_loader_free(dataset_loader *l)
{
    if (!l) return;
    if (l->threaded) {
        pthread_mutex_lock(&l->mu);
        l->quit = true;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->th, NULL);
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv);
    }
    for (int s = 0; s < 2; s++) {
        free(l->slots[s].x);
        free(l->slots[s].labels);
        free(l->slots[s].index);
    }
    free(l->perm);
    free(l);
}
