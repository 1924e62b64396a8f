/* featcache — the shared on-disk cache of frozen-prefix features (protocol,
 * file format and eviction in featcache.h): lookups that map a verified
 * entry, per-key flock locks that make one process build while the others
 * wait, atomic builds (reserved temporary file, fsync, rename) and
 * least-recently-used eviction by a stamp kept in each entry's header. */
#include "featcache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "fileio.h"
#include "log.h"

/* ---- hashing ------------------------------------------------------------- */

static const uint64_t LANE_MUL[4] = {0x9e3779b97f4a7c15ull, 0xc2b2ae3d27d4eb4full,
                                     0x165667b19e3779f9ull, 0xd6e8feb86659fd93ull};

static uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

/* A 64-bit finaliser: every input bit reaches every output bit. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ull;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dull;
    x ^= x >> 33;
    return x;
}

static void hash_block(featcache_hasher *h, const uint8_t *p)
{
    for (int i = 0; i < 4; i++) {
        uint64_t w;
        memcpy(&w, p + 8 * i, 8);
        uint64_t v = (h->lane[i] ^ w) * LANE_MUL[i];
        h->lane[i] = rotl64(v, 29) + w;
    }
}

void featcache_hash_init(featcache_hasher *h)
{
    memset(h, 0, sizeof *h);
    for (int i = 0; i < 4; i++)
        h->lane[i] = LANE_MUL[(i + 1) & 3] ^ (uint64_t)i;
}

void featcache_hash_add(featcache_hasher *h, const void *data, size_t n)
{
    const uint8_t *p = data;
    h->total += n;
    if (h->nbuf) {
        size_t take = 32 - h->nbuf < n ? 32 - h->nbuf : n;
        memcpy(h->buf + h->nbuf, p, take);
        h->nbuf += take;
        p += take;
        n -= take;
        if (h->nbuf < 32) return;
        hash_block(h, h->buf);
        h->nbuf = 0;
    }
    for (; n >= 32; p += 32, n -= 32)
        hash_block(h, p);
    memcpy(h->buf, p, n);
    h->nbuf = n;
}

void featcache_hash_final(const featcache_hasher *h, uint64_t out[2])
{
    featcache_hasher t = *h;
    uint8_t tail[32] = {0};
    memcpy(tail, t.buf, t.nbuf);
    tail[31] = (uint8_t)(0x80 | t.nbuf); // the tail's length, so padding never collides
    hash_block(&t, tail);
    uint64_t a = mix64(t.lane[0] ^ rotl64(t.lane[2], 17) ^ t.total);
    uint64_t b = mix64(t.lane[1] ^ rotl64(t.lane[3], 41) ^ ~t.total);
    out[0] = mix64(a + rotl64(b, 23));
    out[1] = mix64(b ^ rotl64(a, 11) ^ 0x5851f42d4c957f2dull);
}

uint64_t featcache_hash(const void *data, size_t n)
{
    featcache_hasher h;
    uint64_t out[2];
    featcache_hash_init(&h);
    featcache_hash_add(&h, data, n);
    featcache_hash_final(&h, out);
    return out[0];
}

int featcache_hash_file(const char *path, char *hex, uint64_t *size, char *msg, size_t msglen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set_errno(msg, msglen, errno == ENOENT ? ERR_NOTFOUND : ERR_IO, errno,
                             "cannot open %s", path);
    enum { CHUNK = 1 << 20 };
    uint8_t *buf = malloc(CHUNK);
    if (!buf) {
        close(fd);
        return err_set(msg, msglen, ERR_NOMEM, "out of memory hashing %s", path);
    }
    featcache_hasher h;
    featcache_hash_init(&h);
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf, CHUNK);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = err_set_errno(msg, msglen, ERR_IO, errno, "cannot read %s", path);
            break;
        }
        if (n == 0) break;
        featcache_hash_add(&h, buf, (size_t)n);
    }
    close(fd);
    free(buf);
    if (rc) return rc;
    uint64_t out[2];
    featcache_hash_final(&h, out);
    snprintf(hex, 33, "%016" PRIx64 "%016" PRIx64, out[0], out[1]);
    *size = h.total;
    return 0;
}

/* ---- file format --------------------------------------------------------- */

#define FC_MAGIC "SWFEAT\0\1"
#define FC_ALIGN 4096u

typedef struct {
    char magic[8];          // FC_MAGIC
    uint32_t version;       // FEATCACHE_VERSION
    uint32_t hdr_bytes;     // offset of the payload (a multiple of FC_ALIGN)
    uint64_t key_len;       // bytes of key text right after this struct
    uint64_t rows;          // rows of the payload
    uint64_t floats;        // floats per row
    uint64_t payload_bytes; // rows * floats * 4
    uint64_t sum[2];        // featcache_hash of (key text, payload)
    uint64_t last_used_ns;  // LRU stamp, rewritten in place (outside the checksum)
} fc_hdr;

static uint64_t hdr_bytes_for(size_t key_len)
{
    return ((uint64_t)sizeof(fc_hdr) + key_len + FC_ALIGN - 1) / FC_ALIGN * FC_ALIGN;
}

uint64_t featcache_entry_bytes(const char *key, uint64_t rows, uint64_t floats)
{
    return hdr_bytes_for(strlen(key)) + rows * floats * sizeof(float);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void entry_checksum(const char *key, size_t key_len, const void *payload, uint64_t n,
                           uint64_t out[2])
{
    featcache_hasher h;
    featcache_hash_init(&h);
    featcache_hash_add(&h, key, key_len);
    featcache_hash_add(&h, payload, n);
    featcache_hash_final(&h, out);
}

/* Writes the use stamp of the entry file PATH (best effort: a read-only
 * cache still serves). */
static void stamp_use(const char *path)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return;
    uint64_t t = now_ns();
    if (pwrite(fd, &t, sizeof t, offsetof(fc_hdr, last_used_ns)) != (ssize_t)sizeof t)
        log_debug("cannot stamp the use of %s: %s", path, strerror(errno));
    close(fd);
}

void featcache_entry_free(featcache_entry *e)
{
    if (e->map) munmap(e->map, e->maplen);
    memset(e, 0, sizeof *e);
}

/* What map_verified found. */
enum {
    MAP_UNCHECKED = -2, // present, but this process could not read it to check it
    MAP_BAD = -1,       // present and invalid (corrupt, truncated, another key)
    MAP_ABSENT = 0,     // no such file
    MAP_OK = 1,         // mapped and verified
};

/* Maps PATH and checks it against KEY, ROWS, FLOATS: MAP_OK with *E filled,
 * MAP_ABSENT, MAP_BAD, or MAP_UNCHECKED when it could not be opened, stat'ed
 * or mapped (descriptors, memory or permission: that says nothing of its
 * content); the reason in WHY for the last two. */
static int map_verified(const char *path, const char *key, uint64_t rows, uint64_t floats,
                        featcache_entry *e, char *why, size_t whylen)
{
    memset(e, 0, sizeof *e);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return MAP_ABSENT;
        snprintf(why, whylen, "cannot open it: %s", strerror(errno));
        return MAP_UNCHECKED;
    }
    struct stat st;
    int rc = MAP_BAD;
    void *m = MAP_FAILED;
    size_t len = 0;
    size_t key_len = strlen(key);
    if (fstat(fd, &st) != 0) {
        snprintf(why, whylen, "cannot stat it: %s", strerror(errno));
        rc = MAP_UNCHECKED;
        goto out;
    }
    if (st.st_size < (off_t)sizeof(fc_hdr)) {
        snprintf(why, whylen, "shorter than its header");
        goto out;
    }
    len = (size_t)st.st_size;
    m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        snprintf(why, whylen, "cannot map it: %s", strerror(errno));
        rc = MAP_UNCHECKED;
        goto out;
    }
    fc_hdr h;
    memcpy(&h, m, sizeof h);
    if (memcmp(h.magic, FC_MAGIC, 8) || h.version != FEATCACHE_VERSION) {
        snprintf(why, whylen, "not a version %d feature entry", FEATCACHE_VERSION);
        goto out;
    }
    if (h.key_len != key_len || hdr_bytes_for(key_len) != h.hdr_bytes) {
        snprintf(why, whylen, "made for another key");
        goto out;
    }
    /* the key text is compared only in a file that holds header and payload */
    uint64_t want = h.hdr_bytes + rows * floats * sizeof(float);
    if ((uint64_t)len < want) {
        snprintf(why, whylen, "shorter (%zu bytes) than its header and payload (%" PRIu64 ")", len,
                 want);
        goto out;
    }
    if (memcmp((const char *)m + sizeof h, key, key_len)) {
        snprintf(why, whylen, "made for another key");
        goto out;
    }
    if (h.rows != rows || h.floats != floats || h.payload_bytes != rows * floats * sizeof(float) ||
        (uint64_t)len != h.hdr_bytes + h.payload_bytes) {
        snprintf(why, whylen, "its size (%zu bytes, %" PRIu64 " x %" PRIu64 ") is not the key's",
                 len, h.rows, h.floats);
        goto out;
    }
    uint64_t sum[2];
    entry_checksum(key, key_len, (const uint8_t *)m + h.hdr_bytes, h.payload_bytes, sum);
    if (sum[0] != h.sum[0] || sum[1] != h.sum[1]) {
        snprintf(why, whylen, "its checksum does not match its content");
        goto out;
    }
    e->map = m;
    e->maplen = len;
    e->data = (const float *)(const void *)((const uint8_t *)m + h.hdr_bytes);
    e->rows = rows;
    e->floats = floats;
    m = MAP_FAILED;
    rc = MAP_OK;
out:
    if (m != MAP_FAILED) munmap(m, len);
    close(fd);
    return rc;
}

/* ---- the folder ---------------------------------------------------------- */

int featcache_open(featcache *c, const char *cache_dir, uint64_t max_bytes, char *msg,
                   size_t msglen)
{
    memset(c, 0, sizeof *c);
    if (asprintf(&c->dir, "%s/features", cache_dir) < 0) {
        c->dir = NULL;
        return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    }
    c->max_bytes = max_bytes;
    if (mkdir(cache_dir, 0755) != 0 && errno != EEXIST)
        return err_set_errno(msg, msglen, ERR_IO, errno, "cannot create %s", cache_dir);
    if (mkdir(c->dir, 0755) != 0 && errno != EEXIST)
        return err_set_errno(msg, msglen, ERR_IO, errno, "cannot create %s", c->dir);
    return 0;
}

void featcache_close(featcache *c)
{
    free(c->dir);
    memset(c, 0, sizeof *c);
}

/* Takes the flock of PATH (created when missing): blocking unless NB. Once
 * held, PATH must still name the locked file (an evictor may have removed
 * it), else the lock is taken again on the new file. Returns the descriptor,
 * -EWOULDBLOCK when NB and it is held elsewhere, -EINTR when a signal
 * interrupted a blocking wait, or -errno. */
static int lock_path(const char *path, bool nb)
{
    for (;;) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return -errno;
        if (flock(fd, LOCK_EX | (nb ? LOCK_NB : 0)) != 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
            a.st_dev == b.st_dev)
            return fd;
        close(fd); // removed or replaced while we waited: lock the current file
    }
}

/* Releases the slot's key lock, if held. */
static void unlock_slot(featcache_slot *s)
{
    if (s->locked) close(s->lock_fd); // closing the last descriptor releases the flock
    s->locked = false;
}

/* One file of the folder as eviction sees it. */
typedef struct {
    char name[256];     // file name in the folder
    uint64_t bytes;     // its size
    uint64_t last_used; // header stamp (0: unreadable, evicted first)
    bool temp;          // a build's temporary file
} fc_file;

/* The key-lock path for entry or temporary NAME ("feat-H.bin[.tmpX]") into
 * BUF. */
static void lock_for(const featcache *c, const char *name, char *buf, size_t n)
{
    const char *dot = strchr(name, '.');
    int stem = dot ? (int)(dot - name) : (int)strlen(name);
    snprintf(buf, n, "%s/%.*s.lock", c->dir, stem, name);
}

/* Lists the entries and temporaries of C into *OUT (owned, *N of them). */
static int list_files(const featcache *c, fc_file **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(c->dir);
    if (!d) return ERR_IO;
    size_t cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        if (strncmp(nm, "feat-", 5) || strlen(nm) >= sizeof(*out)->name) continue;
        bool temp = strstr(nm, ".bin.tmp") != NULL;
        size_t l = strlen(nm);
        if (!temp && (l < 4 || strcmp(nm + l - 4, ".bin"))) continue;
        char path[4096 + 256];
        snprintf(path, sizeof path, "%s/%s", c->dir, nm);
        struct stat st;
        if (stat(path, &st) != 0) continue;
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            fc_file *g = realloc(*out, nc * sizeof *g);
            if (!g) {
                rc = ERR_NOMEM;
                break;
            }
            *out = g;
            cap = nc;
        }
        fc_file *f = &(*out)[(*n)++];
        snprintf(f->name, sizeof f->name, "%s", nm);
        f->bytes = (uint64_t)st.st_size;
        f->temp = temp;
        f->last_used = 0;
        fc_hdr h;
        int fd = temp ? -1 : open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && pread(fd, &h, sizeof h, 0) == (ssize_t)sizeof h &&
            !memcmp(h.magic, FC_MAGIC, 8))
            f->last_used = h.last_used_ns;
        if (fd >= 0) close(fd);
    }
    closedir(d);
    return rc;
}

uint64_t featcache_used_bytes(const featcache *c)
{
    fc_file *f = NULL;
    size_t n = 0;
    uint64_t sum = 0;
    list_files(c, &f, &n);
    for (size_t i = 0; i < n; i++)
        sum += f[i].bytes;
    free(f);
    return sum;
}

static int by_last_used(const void *a, const void *b)
{
    const fc_file *x = a, *y = b;
    return x->last_used < y->last_used ? -1 : x->last_used > y->last_used;
}

/* Removes file F (an entry or a temporary) when its key's lock is free, with
 * the lock file of an entry. True when removed. */
static bool remove_unlocked(const featcache *c, const fc_file *f)
{
    char lp[4096 + 256], path[4096 + 256];
    lock_for(c, f->name, lp, sizeof lp);
    snprintf(path, sizeof path, "%s/%s", c->dir, f->name);
    int fd = lock_path(lp, true);
    if (fd < 0) return false;
    bool gone = unlink(path) == 0;
    if (!f->temp) unlink(lp);
    close(fd);
    return gone;
}

/* Removes the lock files that have no entry beside them (a key looked up
 * but never built, a build that failed or was refused, a temporary removed
 * by eviction): each is taken without waiting and unlinked only while held,
 * once the entry is seen to be still absent under it. A lock held elsewhere
 * (a build in progress, a trial about to build) stays. */
static void remove_stale_locks(const featcache *c)
{
    DIR *d = opendir(c->dir);
    if (!d) return;
    struct dirent *de;
    int removed = 0;
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        size_t l = strlen(nm);
        if (strncmp(nm, "feat-", 5) || l < 10 || l >= 256 || strcmp(nm + l - 5, ".lock")) continue;
        char lp[4096 + 256], ep[4096 + 256];
        snprintf(lp, sizeof lp, "%s/%s", c->dir, nm);
        snprintf(ep, sizeof ep, "%s/%.*s.bin", c->dir, (int)(l - 5), nm);
        if (access(ep, F_OK) == 0) continue;
        int fd = lock_path(lp, true);
        if (fd < 0) continue; // held: its key is being built (or looked up)
        /* under the lock no entry can appear: builds commit holding it */
        if (access(ep, F_OK) != 0 && errno == ENOENT && unlink(lp) == 0) removed++;
        close(fd);
    }
    closedir(d);
    if (removed)
        log_debug("feature cache: removed %d lock file(s) of keys without an entry", removed);
}

/* Makes room for NEED more bytes (see featcache_build_begin) and removes
 * stale lock files; called under .evict.lock. 0 or ERR_TOOBIG. */
static int make_room(const featcache *c, uint64_t need, char *msg, size_t msglen)
{
    fc_file *f = NULL;
    size_t n = 0;
    int rc = list_files(c, &f, &n);
    if (rc) return err_set(msg, msglen, rc, "cannot list %s", c->dir);
    uint64_t used = 0;
    for (size_t i = 0; i < n; i++)
        used += f[i].bytes;
    /* Temporaries whose builder is gone first, then entries by last use. */
    for (size_t i = 0; i < n && used + need > c->max_bytes; i++)
        if (f[i].temp && remove_unlocked(c, &f[i])) {
            log_info("feature cache: removed %s, left by a build that did not finish", f[i].name);
            used -= f[i].bytes;
        }
    if (n > 1) qsort(f, n, sizeof *f, by_last_used);
    for (size_t i = 0; i < n && used + need > c->max_bytes; i++)
        if (!f[i].temp && remove_unlocked(c, &f[i])) {
            log_info("feature cache: evicted %s (%" PRIu64 " MiB, least recently used)", f[i].name,
                     f[i].bytes >> 20);
            used -= f[i].bytes;
        }
    free(f);
    remove_stale_locks(c);
    if (used + need > c->max_bytes)
        return err_set(msg, msglen, ERR_TOOBIG,
                       "a feature entry of %" PRIu64 " MiB does not fit in cache_max_mb (%" PRIu64
                       " MiB, %" PRIu64 " MiB in use by entries being built or read)",
                       need >> 20, c->max_bytes >> 20, used >> 20);
    return 0;
}

/* ---- lookups and builds -------------------------------------------------- */

int featcache_peek(featcache *c, const char *key, uint64_t rows, uint64_t floats,
                   featcache_entry *e)
{
    char path[4096 + 64], why[256];
    snprintf(path, sizeof path, "%s/feat-%016" PRIx64 ".bin", c->dir,
             featcache_hash(key, strlen(key)));
    int r = map_verified(path, key, rows, floats, e, why, sizeof why);
    if (r < 0) log_debug("feature cache: %s: %s", path, why);
    if (r != MAP_OK) return 0;
    stamp_use(path);
    return 1;
}

int featcache_lookup(featcache *c, const char *key, uint64_t rows, uint64_t floats,
                     featcache_slot *s, char *msg, size_t msglen)
{
    memset(s, 0, sizeof *s);
    s->c = c;
    s->rows = rows;
    s->floats = floats;
    if (!(s->key = strdup(key))) return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    uint64_t h = featcache_hash(key, strlen(key));
    if (snprintf(s->path, sizeof s->path, "%s/feat-%016" PRIx64 ".bin", c->dir, h) >=
            (int)sizeof s->path ||
        snprintf(s->lock_path, sizeof s->lock_path, "%s/feat-%016" PRIx64 ".lock", c->dir, h) >=
            (int)sizeof s->lock_path)
        return err_set(msg, msglen, ERR_IO, "feature cache folder path %s is too long", c->dir);
    char why[256];
    if (map_verified(s->path, key, rows, floats, &s->entry, why, sizeof why) == MAP_OK) {
        stamp_use(s->path);
        return FEATCACHE_HIT;
    }
    int fd = lock_path(s->lock_path, true);
    if (fd == -EWOULDBLOCK) return FEATCACHE_BUSY;
    if (fd < 0) return err_set_errno(msg, msglen, ERR_IO, -fd, "cannot lock %s", s->lock_path);
    s->lock_fd = fd;
    s->locked = true;
    return featcache_wait(s, NULL, msg, msglen); // already ours: checks the entry again
}

/* How often featcache_wait tries the key's lock again (and sees a stop). */
#define WAIT_POLL_NS 25000000L

int featcache_wait(featcache_slot *s, volatile sig_atomic_t *stop, char *msg, size_t msglen)
{
    /* Not a blocking flock: a stop asked just before it would wait for the
     * whole of the other build. */
    while (!s->locked) {
        if (stop && *stop)
            return err_set(msg, msglen, ERR_INTERRUPTED, "stopped while waiting for %s",
                           s->lock_path);
        int fd = lock_path(s->lock_path, true);
        if (fd == -EWOULDBLOCK || fd == -EINTR) {
            struct timespec ts = {0, WAIT_POLL_NS};
            nanosleep(&ts, NULL); // a signal ends it early: the stop is seen at once
            continue;
        }
        if (fd < 0) return err_set_errno(msg, msglen, ERR_IO, -fd, "cannot lock %s", s->lock_path);
        s->lock_fd = fd;
        s->locked = true;
    }
    /* Under the lock: the entry is either complete or absent or bad. */
    char why[256];
    int r = map_verified(s->path, s->key, s->rows, s->floats, &s->entry, why, sizeof why);
    if (r == MAP_OK) {
        unlock_slot(s);
        stamp_use(s->path);
        return FEATCACHE_HIT;
    }
    if (r == MAP_UNCHECKED) { // maybe a good entry: leave it to the trials that can read it
        unlock_slot(s);
        return err_set(msg, msglen, ERR_IO,
                       "cannot check the feature entry %s (%s); it is left in place", s->path, why);
    }
    if (r == MAP_BAD) {
        log_warn("feature cache: discarding %s (%s); it is built again", s->path, why);
        if (unlink(s->path) != 0 && errno != ENOENT)
            return err_set_errno(msg, msglen, ERR_IO, errno, "cannot remove %s", s->path);
    }
    return FEATCACHE_MISS;
}

/* Removes the temporaries of the slot's key (their builder is dead: we hold
 * its lock). */
static void remove_dead_temps(featcache_slot *s)
{
    const char *base = strrchr(s->path, '/') + 1;
    char prefix[300];
    snprintf(prefix, sizeof prefix, "%s.tmp", base);
    DIR *d = opendir(s->c->dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, prefix, strlen(prefix))) continue;
        char p[4096 + 256];
        snprintf(p, sizeof p, "%s/%s", s->c->dir, de->d_name);
        if (unlink(p) == 0)
            log_info("feature cache: removed %s, left by a build that did not finish", p);
    }
    closedir(d);
}

int featcache_build_begin(featcache_slot *s, float **data, char *msg, size_t msglen)
{
    *data = NULL;
    if (!s->locked) return err_set(msg, msglen, ERR_STATE, "building without the key's lock");
    remove_dead_temps(s);
    uint64_t total = featcache_entry_bytes(s->key, s->rows, s->floats);
    if (total > s->c->max_bytes)
        return err_set(msg, msglen, ERR_TOOBIG,
                       "the feature entry would take %" PRIu64
                       " MiB, more than cache_max_mb (%" PRIu64 " MiB)",
                       total >> 20, s->c->max_bytes >> 20);
    char elock[4096 + 32];
    snprintf(elock, sizeof elock, "%s/.evict.lock", s->c->dir);
    int efd = lock_path(elock, false);
    while (efd == -EINTR)
        efd = lock_path(elock, false);
    if (efd < 0) return err_set_errno(msg, msglen, ERR_IO, -efd, "cannot lock %s", elock);
    int rc = make_room(s->c, total, msg, msglen);
    if (rc) goto out;
    snprintf(s->tmp_path, sizeof s->tmp_path, "%s.tmpXXXXXX", s->path);
    s->tmp_fd = mkostemp(s->tmp_path, O_CLOEXEC);
    s->tmp_open = s->tmp_fd >= 0;
    if (!s->tmp_open) {
        rc = err_set_errno(msg, msglen,
                           fileio_err_for_errno(errno) == ERR_NOSPACE ? ERR_NOSPACE : ERR_IO, errno,
                           "cannot create a feature entry in %s", s->c->dir);
        s->tmp_path[0] = '\0';
        goto out;
    }
    (void)fchmod(s->tmp_fd, 0644);
    int e = posix_fallocate(s->tmp_fd, 0, (off_t)total);
    if (e) {
        rc = err_set_errno(msg, msglen,
                           fileio_err_for_errno(e) == ERR_NOSPACE ? ERR_NOSPACE : ERR_IO, e,
                           "cannot reserve %" PRIu64 " MiB for %s", total >> 20, s->tmp_path);
        goto out;
    }
    s->tmp_map = mmap(NULL, (size_t)total, PROT_READ | PROT_WRITE, MAP_SHARED, s->tmp_fd, 0);
    if (s->tmp_map == MAP_FAILED) {
        s->tmp_map = NULL;
        rc = err_set_errno(msg, msglen, ERR_IO, errno, "cannot map %s", s->tmp_path);
        goto out;
    }
    s->tmp_len = (size_t)total;
    *data = (float *)(void *)((uint8_t *)s->tmp_map + hdr_bytes_for(strlen(s->key)));
out:
    close(efd);
    return rc;
}

/* Drops the temporary file of a build. */
static void drop_temp(featcache_slot *s)
{
    if (s->tmp_map) munmap(s->tmp_map, s->tmp_len);
    s->tmp_map = NULL;
    if (s->tmp_open) close(s->tmp_fd);
    s->tmp_open = false;
    if (s->tmp_path[0]) unlink(s->tmp_path);
    s->tmp_path[0] = '\0';
}

int featcache_build_commit(featcache_slot *s, char *msg, size_t msglen)
{
    if (!s->tmp_map) return err_set(msg, msglen, ERR_STATE, "no feature build in progress");
    size_t key_len = strlen(s->key);
    fc_hdr h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, FC_MAGIC, 8);
    h.version = FEATCACHE_VERSION;
    h.hdr_bytes = (uint32_t)hdr_bytes_for(key_len);
    h.key_len = key_len;
    h.rows = s->rows;
    h.floats = s->floats;
    h.payload_bytes = s->rows * s->floats * sizeof(float);
    uint8_t *base = s->tmp_map;
    entry_checksum(s->key, key_len, base + h.hdr_bytes, h.payload_bytes, h.sum);
    h.last_used_ns = now_ns();
    memcpy(base + sizeof h, s->key, key_len);
    memcpy(base, &h, sizeof h);
    int rc = 0;
    if (fdatasync(s->tmp_fd) != 0) {
        rc = err_set_errno(msg, msglen, fileio_err_for_errno(errno), errno, "cannot flush %s",
                           s->tmp_path);
        goto fail;
    }
    if (rename(s->tmp_path, s->path) != 0) {
        rc = err_set_errno(msg, msglen, ERR_IO, errno, "cannot rename %s to %s", s->tmp_path,
                           s->path);
        goto fail;
    }
    s->tmp_path[0] = '\0';
    int dfd = open(s->c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    mprotect(s->tmp_map, s->tmp_len, PROT_READ);
    s->entry.map = s->tmp_map;
    s->entry.maplen = s->tmp_len;
    s->entry.data = (const float *)(const void *)(base + h.hdr_bytes);
    s->entry.rows = s->rows;
    s->entry.floats = s->floats;
    s->tmp_map = NULL;
    close(s->tmp_fd);
    s->tmp_open = false;
    unlock_slot(s);
    return 0;
fail:
    drop_temp(s);
    return rc;
}

void featcache_slot_release(featcache_slot *s)
{
    drop_temp(s);
    unlock_slot(s);
    featcache_entry_free(&s->entry);
    free(s->key);
    s->key = NULL;
}
