/* featcache — the shared on-disk cache of frozen-prefix features
 * (worker/train/featcache.c): one file per key in CACHE_DIR/features/, shared
 * by every trial of every job (README.md "Feature cache").
 *
 * The cache knows nothing of models or images: a key is a text (train.c
 * writes a canonical JSON object naming everything the features depend on)
 * and an entry is ROWS x FLOATS float32 values. Files, for a key whose
 * 64-bit hash (featcache_hash of the text) is H:
 *   feat-H.bin          the entry: a header (magic, version, the whole key
 *                       text, rows, floats, a 128-bit checksum of key and
 *                       payload, the last-use stamp), padding to 4096 bytes,
 *                       then the payload
 *   feat-H.lock         flock'ed by whoever builds H (and by eviction)
 *   feat-H.bin.tmpXXXXXX  a build in progress (never read as an entry)
 *   .evict.lock         serialises the size accounting of builders
 *
 * Protocol. featcache_lookup maps a valid entry (FEATCACHE_HIT); otherwise it
 * takes H's lock without waiting (FEATCACHE_MISS: the caller builds) or finds
 * it held (FEATCACHE_BUSY: another process is building; featcache_wait waits
 * for the lock and then maps the entry it left, or hands the build over when
 * that process ended without one). A build writes the payload into a mapped
 * temporary file that featcache_build_begin reserved (after evicting least
 * recently used entries so that entries plus temporaries stay within the
 * bound), and featcache_build_commit checksums it, fsyncs it and renames it
 * into place, so a crash at any point leaves no file under an entry's name
 * (the next builder of H removes the dead temporary). An entry is read only
 * after its magic, version, size, its whole key text and its checksum match;
 * one that does not (corrupt, truncated, another key with the same hash) is
 * discarded under H's lock and rebuilt; one this process cannot open or map
 * to check is left alone (the trial goes without the cache).
 *
 * Eviction is least recently used by a stamp the cache writes into the
 * header itself (CLOCK_REALTIME ns, at every build and every hit), not the
 * file system's atime. An entry whose lock is held is not evicted; an evicted
 * entry a running trial still maps stays readable to it (unlinked, not
 * truncated) until it unmaps. Lock files are removed with their entry, and
 * those without an entry (keys looked up but never built) by every eviction
 * pass, each taken without waiting and unlinked while held; every locker
 * checks, once it holds a lock, that the path still names the file it
 * locked, and starts again otherwise.
 *
 * Threading: one thread per featcache_slot; processes share the directory. */
#ifndef SWEEP_FEATCACHE_H
#define SWEEP_FEATCACHE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FEATCACHE_VERSION 1

/* ---- hashing ------------------------------------------------------------- */

/* A streaming 128-bit non-cryptographic hash (four 64-bit multiply-xorshift
 * lanes over 32-byte blocks): the entries' checksum, the key's file name and
 * the content hash of weights files. The result depends only on the bytes,
 * not on how they were split into featcache_hash_add calls. */
typedef struct {
    uint64_t lane[4]; // running lanes
    uint64_t total;   // bytes added so far
    uint8_t buf[32];  // bytes of an incomplete block
    size_t nbuf;      // bytes in buf
} featcache_hasher;

void featcache_hash_init(featcache_hasher *h);
void featcache_hash_add(featcache_hasher *h, const void *data, size_t n);
/* The two 64-bit halves of the hash of everything added (H stays usable). */
void featcache_hash_final(const featcache_hasher *h, uint64_t out[2]);
/* First half of the hash of the N bytes at DATA. */
uint64_t featcache_hash(const void *data, size_t n);
/* The hash of the content of file PATH as 32 hex digits into HEX (>= 33
 * bytes), and its size into *SIZE. ERR_IO / ERR_NOTFOUND with the reason. */
int featcache_hash_file(const char *path, char *hex, uint64_t *size, char *msg, size_t msglen);

/* ---- the cache ----------------------------------------------------------- */

typedef struct {
    char *dir;          // CACHE_DIR/features (owned)
    uint64_t max_bytes; // bound on entries plus temporaries, bytes
} featcache;

/* Opens (creating) CACHE_DIR/features with bound MAX_BYTES. ERR_IO when the
 * folder cannot be made, ERR_NOMEM. */
int featcache_open(featcache *c, const char *cache_dir, uint64_t max_bytes, char *msg,
                   size_t msglen);
void featcache_close(featcache *c);

/* The bytes an entry of ROWS x FLOATS with key text KEY takes on disk. */
uint64_t featcache_entry_bytes(const char *key, uint64_t rows, uint64_t floats);

/* A mapped, verified entry. */
typedef struct {
    const float *data; // rows * floats values, read-only (NULL when none)
    uint64_t rows;     // rows of the entry
    uint64_t floats;   // floats per row
    void *map;         // the whole file's mapping
    size_t maplen;     // its length
} featcache_entry;

/* Unmaps E (a zeroed or unmapped entry is fine). */
void featcache_entry_free(featcache_entry *e);

/* Maps the entry of KEY if it is there and valid, without any lock, and
 * stamps its use: 1 with *E filled, 0 when absent or invalid (an invalid one
 * is left for a locked lookup to discard; the reason is logged at debug). */
int featcache_peek(featcache *c, const char *key, uint64_t rows, uint64_t floats,
                   featcache_entry *e);

typedef enum {
    FEATCACHE_HIT = 1,  // slot.entry is mapped; no lock held
    FEATCACHE_MISS = 2, // no entry; the slot holds the key's lock: build it
    FEATCACHE_BUSY = 3, // another process holds the key's lock (building): featcache_wait
} featcache_result;

/* One key's lookup and, when it misses, its build. */
typedef struct {
    featcache *c;             // the cache (borrowed)
    char *key;                // key text (owned)
    char path[4096];          // DIR/feat-H.bin
    char lock_path[4096];     // DIR/feat-H.lock
    char tmp_path[4096 + 16]; // the temporary file of a build, "" when none
    uint64_t rows, floats;    // the entry's shape
    int lock_fd;              // the key's lock (valid when locked)
    bool locked;              // lock_fd holds the key's lock
    int tmp_fd;               // the temporary file (valid when tmp_open)
    bool tmp_open;            // a build's temporary file is open
    void *tmp_map;            // its writable mapping (NULL when none)
    size_t tmp_len;           // its length
    featcache_entry entry;    // the entry once HIT or committed
} featcache_slot;

/* Looks KEY (ROWS x FLOATS) up in C (see the file comment): FEATCACHE_HIT,
 * FEATCACHE_MISS or FEATCACHE_BUSY, or ERR_IO / ERR_NOMEM with the reason.
 * An invalid entry is discarded (logged). An entry this process cannot open,
 * stat or map to check it (no descriptor or memory left, permission) is left
 * in place, since it may be good: ERR_IO saying so, no lock held (the caller
 * computes without the cache). S is released with featcache_slot_release
 * whatever happened. */
int featcache_lookup(featcache *c, const char *key, uint64_t rows, uint64_t floats,
                     featcache_slot *s, char *msg, size_t msglen);
/* After FEATCACHE_BUSY: waits for the key's lock (trying it every 25 ms);
 * returns FEATCACHE_HIT (the entry the other process built) or
 * FEATCACHE_MISS (it ended without one: the lock is now ours).
 * ERR_INTERRUPTED as soon as *STOP (may be NULL) is set, before or during
 * the wait, ERR_IO (also when the entry cannot
 * be checked, as featcache_lookup: left in place, the lock released). */
int featcache_wait(featcache_slot *s, volatile sig_atomic_t *stop, char *msg, size_t msglen);
/* After FEATCACHE_MISS: removes temporaries a dead builder of this key left,
 * evicts least recently used entries until the new one fits in the bound,
 * removes the lock files of keys without an entry that nobody holds,
 * creates and reserves the temporary file and maps it: *DATA receives
 * rows*floats floats to fill. ERR_TOOBIG when the entry cannot fit (larger
 * than the bound, or the rest is held by builders), ERR_NOSPACE / ERR_IO
 * when the file cannot be reserved; the lock stays held either way (release
 * the slot). */
int featcache_build_begin(featcache_slot *s, float **data, char *msg, size_t msglen);
/* Checksums the filled payload, writes the header, fsyncs, renames the file
 * into place (and fsyncs the folder), releases the lock; slot.entry then maps
 * the new entry read-only. ERR_IO / ERR_NOSPACE (the build is removed). */
int featcache_build_commit(featcache_slot *s, char *msg, size_t msglen);
/* Aborts a build in progress (the temporary is removed), releases the lock,
 * unmaps the entry, frees the key. Safe on a zeroed slot and twice. */
void featcache_slot_release(featcache_slot *s);

/* Entries plus temporaries in C's folder, bytes (for tests and logs). */
uint64_t featcache_used_bytes(const featcache *c);

#endif
