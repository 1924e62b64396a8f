/* Tests for worker/train/featcache.c: the streaming hash, builds that are
 * found again bit for bit, other keys and shapes missing, a corrupt or
 * truncated entry (also one cut inside its key text) discarded and rebuilt,
 * a dead build's temporary never read and removed, a second process waiting
 * for the builder (taking over when it dies, stopping when asked to while it
 * waits), least-recently-used eviction under the bound (with the lock files
 * of keys without an entry), an entry larger than the bound refused, and an
 * entry that cannot be checked left alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "errors.h"
#include "featcache.h"
#include "log.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/sweep-featcache-XXXXXX";

static void rm_tree(const char *path)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/sweep-featcache-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    rm_tree(dir);
    return 0;
}

/* The value of row R, column J of test payload SEED. */
static float val(int seed, uint64_t r, uint64_t j)
{
    return (float)seed * 1000.0f + (float)r + (float)j / 64.0f;
}

/* Builds KEY (ROWS x FLOATS, payload SEED) into C; asserts it misses first. */
static void build(featcache *c, const char *key, uint64_t rows, uint64_t floats, int seed)
{
    featcache_slot s;
    char msg[512];
    assert_int_equal(featcache_lookup(c, key, rows, floats, &s, msg, sizeof msg), FEATCACHE_MISS);
    float *d;
    assert_int_equal(featcache_build_begin(&s, &d, msg, sizeof msg), 0);
    for (uint64_t r = 0; r < rows; r++)
        for (uint64_t j = 0; j < floats; j++)
            d[r * floats + j] = val(seed, r, j);
    assert_int_equal(featcache_build_commit(&s, msg, sizeof msg), 0);
    assert_non_null(s.entry.data);
    assert_true(s.entry.data[floats + 1] == val(seed, 1, 1));
    featcache_slot_release(&s);
}

/* Looks KEY up and returns the result; on a hit checks payload SEED. */
static int lookup_check(featcache *c, const char *key, uint64_t rows, uint64_t floats, int seed)
{
    featcache_slot s;
    char msg[512];
    int r = featcache_lookup(c, key, rows, floats, &s, msg, sizeof msg);
    if (r == FEATCACHE_HIT) {
        assert_int_equal(s.entry.rows, rows);
        for (uint64_t i = 0; i < rows; i++)
            for (uint64_t j = 0; j < floats; j++)
                assert_true(s.entry.data[i * floats + j] == val(seed, i, j));
    }
    featcache_slot_release(&s);
    return r;
}

/* The path of KEY's entry in C. */
static void entry_path(const featcache *c, const char *key, char *buf, size_t n)
{
    snprintf(buf, n, "%s/feat-%016llx.bin", c->dir,
             (unsigned long long)featcache_hash(key, strlen(key)));
}

static int count_files(const featcache *c, const char *part)
{
    DIR *d = opendir(c->dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += strstr(de->d_name, part) != NULL;
    closedir(d);
    return n;
}

static void test_hash(void **state)
{
    (void)state;
    uint8_t data[1000];
    for (int i = 0; i < 1000; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    uint64_t whole[2], parts[2];
    featcache_hasher h;
    featcache_hash_init(&h);
    featcache_hash_add(&h, data, sizeof data);
    featcache_hash_final(&h, whole);
    /* the same bytes in odd pieces give the same hash */
    featcache_hash_init(&h);
    size_t cuts[] = {0, 1, 31, 32, 33, 100, 999, 1000};
    for (int i = 0; i + 1 < 8; i++)
        featcache_hash_add(&h, data + cuts[i], cuts[i + 1] - cuts[i]);
    featcache_hash_final(&h, parts);
    assert_true(whole[0] == parts[0] && whole[1] == parts[1]);
    assert_true(featcache_hash(data, sizeof data) == whole[0]);
    /* one changed bit, one more zero byte, another length: other hashes */
    data[500] ^= 1;
    assert_true(featcache_hash(data, sizeof data) != whole[0]);
    data[500] ^= 1;
    uint8_t z[2] = {'a', 0};
    assert_true(featcache_hash(z, 1) != featcache_hash(z, 2));
    assert_true(featcache_hash(data, 999) != whole[0]);
    /* the file hash is the content's */
    char path[128], hex[33], msg[256];
    snprintf(path, sizeof path, "%s/blob", dir);
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, sizeof data, f);
    fclose(f);
    uint64_t size;
    assert_int_equal(featcache_hash_file(path, hex, &size, msg, sizeof msg), 0);
    assert_int_equal(size, 1000);
    char want[33];
    snprintf(want, sizeof want, "%016llx%016llx", (unsigned long long)whole[0],
             (unsigned long long)whole[1]);
    assert_string_equal(hex, want);
    snprintf(path, sizeof path, "%s/missing", dir);
    assert_int_equal(featcache_hash_file(path, hex, &size, msg, sizeof msg), ERR_NOTFOUND);
}

static void test_build_and_reuse(void **state)
{
    (void)state;
    featcache c;
    char msg[512];
    assert_int_equal(featcache_open(&c, dir, 1 << 30, msg, sizeof msg), 0);
    build(&c, "{\"k\":1}", 10, 33, 1);
    assert_int_equal(lookup_check(&c, "{\"k\":1}", 10, 33, 1), FEATCACHE_HIT);
    /* another key, or the same key with another shape, is not that entry */
    assert_int_equal(lookup_check(&c, "{\"k\":2}", 10, 33, 1), FEATCACHE_MISS);
    assert_int_equal(lookup_check(&c, "{\"k\":1}", 11, 33, 1), FEATCACHE_MISS);
    /* a shape mismatch discards it (under the lock): the key is built again */
    assert_int_equal(lookup_check(&c, "{\"k\":1}", 10, 33, 1), FEATCACHE_MISS);
    build(&c, "{\"k\":1}", 10, 33, 2);
    featcache_entry e;
    assert_int_equal(featcache_peek(&c, "{\"k\":1}", 10, 33, &e), 1);
    assert_true(e.data[0] == val(2, 0, 0));
    featcache_entry_free(&e);
    assert_int_equal(featcache_peek(&c, "{\"k\":3}", 10, 33, &e), 0);
    assert_null(e.data);
    assert_int_equal(count_files(&c, ".tmp"), 0);
    featcache_close(&c);
}

/* Flips one byte at OFFSET from the end of PATH. */
static void flip_byte(const char *path, off_t from_end)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, st.st_size - from_end), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, st.st_size - from_end), 1);
    close(fd);
}

static void test_corrupt_discarded(void **state)
{
    (void)state;
    featcache c;
    char msg[512], path[4200];
    assert_int_equal(featcache_open(&c, dir, 1 << 30, msg, sizeof msg), 0);
    const char *key = "{\"corrupt\":true}";
    build(&c, key, 20, 16, 3);
    entry_path(&c, key, path, sizeof path);
    flip_byte(path, 5); // inside the payload
    featcache_entry e;
    assert_int_equal(featcache_peek(&c, key, 20, 16, &e), 0); // never served
    assert_int_equal(lookup_check(&c, key, 20, 16, 3), FEATCACHE_MISS);
    assert_int_equal(access(path, F_OK), -1); // discarded
    build(&c, key, 20, 16, 4);
    assert_int_equal(lookup_check(&c, key, 20, 16, 4), FEATCACHE_HIT);
    /* a truncated entry too */
    assert_int_equal(truncate(path, 5000), 0);
    assert_int_equal(lookup_check(&c, key, 20, 16, 4), FEATCACHE_MISS);
    /* and one whose key text was altered (the header is checksummed with it) */
    build(&c, key, 20, 16, 5);
    int fd = open(path, O_RDWR);
    char ch = 'X';
    assert_int_equal(pwrite(fd, &ch, 1, 80), 1); // inside the key text after the header fields
    close(fd);
    assert_int_equal(lookup_check(&c, key, 20, 16, 5), FEATCACHE_MISS);
    featcache_close(&c);
}

/* An entry cut inside its key text (a key longer than a page, the file cut
 * at the first page) is found too short before its key text is compared
 * (the comparison would read past the end of the mapping). */
static void test_truncated_key_text(void **state)
{
    (void)state;
    featcache c;
    char msg[512], path[4200], logp[200];
    assert_int_equal(featcache_open(&c, dir, 1 << 30, msg, sizeof msg), 0);
    static char key[6100];
    memset(key, 'k', 6000);
    memcpy(key, "{\"k\":\"", 6);
    strcpy(key + 6000, "\"}");
    build(&c, key, 4, 4, 1);
    entry_path(&c, key, path, sizeof path);
    assert_int_equal(truncate(path, 4096), 0);
    snprintf(logp, sizeof logp, "%s/log", dir);
    log_level level = log_get_level();
    log_set_level(LOGL_INFO);
    assert_int_equal(log_open(logp, msg, sizeof msg), 0);
    int r = lookup_check(&c, key, 4, 4, 1);
    log_close();
    log_set_level(level);
    assert_int_equal(r, FEATCACHE_MISS);
    FILE *f = fopen(logp, "r");
    assert_non_null(f);
    char line[1024];
    bool said = false;
    while (fgets(line, sizeof line, f))
        said |= strstr(line, "discarding") && strstr(line, "shorter (4096 bytes)");
    fclose(f);
    assert_true(said);
    assert_int_equal(access(path, F_OK), -1);
    featcache_close(&c);
}

/* A child that looks KEY up, begins the build, writes half of it and dies
 * by SIGKILL (after telling the parent through FD when FD >= 0 and waiting
 * for a byte on WAIT_FD when >= 0). */
static pid_t dying_builder(const char *key, int fd, int wait_fd)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        featcache c;
        featcache_slot s;
        char msg[512];
        float *d;
        if (featcache_open(&c, dir, 1 << 30, msg, sizeof msg) ||
            featcache_lookup(&c, key, 8, 8, &s, msg, sizeof msg) != FEATCACHE_MISS ||
            featcache_build_begin(&s, &d, msg, sizeof msg))
            _exit(3);
        for (int i = 0; i < 32; i++)
            d[i] = 1.0f;
        if (fd >= 0 && write(fd, "x", 1) != 1) _exit(4);
        char b;
        if (wait_fd >= 0 && read(wait_fd, &b, 1) != 1) _exit(5);
        raise(SIGKILL);
        _exit(6);
    }
    return pid;
}

static void test_killed_build(void **state)
{
    (void)state;
    featcache c;
    char msg[512];
    assert_int_equal(featcache_open(&c, dir, 1 << 30, msg, sizeof msg), 0);
    const char *key = "{\"killed\":1}";
    pid_t pid = dying_builder(key, -1, -1);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    assert_int_equal(count_files(&c, ".tmp"), 1); // its temporary is there...
    featcache_entry e;
    assert_int_equal(featcache_peek(&c, key, 8, 8, &e), 0); // ...but no entry
    /* the next builder gets the lock, removes the dead temporary, builds */
    build(&c, key, 8, 8, 7);
    assert_int_equal(count_files(&c, ".tmp"), 0);
    assert_int_equal(lookup_check(&c, key, 8, 8, 7), FEATCACHE_HIT);
    featcache_close(&c);
}

/* Forks a builder of KEY (8 rows of 8 floats, val(SEED)): it takes the
 * entry, fills it, writes a byte to UP, waits for a byte on GO and commits;
 * exits 0 when the commit worked. Returns its pid. */
static pid_t committing_builder(const char *key, int seed, const int up[2], const int go[2])
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        featcache cc;
        featcache_slot s;
        float *d;
        char b, msg[512];
        close(up[0]); // so that it ends when the test dies
        close(go[1]);
        if (featcache_open(&cc, dir, 1 << 30, msg, sizeof msg) ||
            featcache_lookup(&cc, key, 8, 8, &s, msg, sizeof msg) != FEATCACHE_MISS ||
            featcache_build_begin(&s, &d, msg, sizeof msg))
            _exit(3);
        for (uint64_t r = 0; r < 8; r++)
            for (uint64_t j = 0; j < 8; j++)
                d[r * 8 + j] = val(seed, r, j);
        if (write(up[1], "x", 1) != 1 || read(go[0], &b, 1) != 1) _exit(4);
        _exit(featcache_build_commit(&s, msg, sizeof msg) ? 5 : 0);
    }
    return pid;
}

static void test_wait_for_builder(void **state)
{
    (void)state;
    featcache c;
    char msg[512];
    assert_int_equal(featcache_open(&c, dir, 1 << 30, msg, sizeof msg), 0);
    const char *key = "{\"shared\":1}";
    int up[2], go[2];
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(go), 0);
    pid_t pid = committing_builder(key, 9, up, go);
    char b;
    assert_int_equal(read(up[0], &b, 1), 1);
    featcache_slot s;
    assert_int_equal(featcache_lookup(&c, key, 8, 8, &s, msg, sizeof msg), FEATCACHE_BUSY);
    assert_int_equal(write(go[1], "x", 1), 1);
    assert_int_equal(featcache_wait(&s, NULL, msg, sizeof msg), FEATCACHE_HIT);
    assert_true(s.entry.data[8 * 3 + 2] == val(9, 3, 2));
    featcache_slot_release(&s);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* a builder that dies while the other waits: the waiter takes over */
    const char *key2 = "{\"shared\":2}";
    pid = dying_builder(key2, up[1], go[0]);
    assert_int_equal(read(up[0], &b, 1), 1);
    assert_int_equal(featcache_lookup(&c, key2, 8, 8, &s, msg, sizeof msg), FEATCACHE_BUSY);
    assert_int_equal(write(go[1], "x", 1), 1);
    assert_int_equal(featcache_wait(&s, NULL, msg, sizeof msg), FEATCACHE_MISS);
    float *d;
    assert_int_equal(featcache_build_begin(&s, &d, msg, sizeof msg), 0);
    memset(d, 0, 64 * sizeof(float));
    assert_int_equal(featcache_build_commit(&s, msg, sizeof msg), 0);
    featcache_slot_release(&s);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_int_equal(count_files(&c, ".tmp"), 0);
    close(up[0]);
    close(up[1]);
    close(go[0]);
    close(go[1]);
    featcache_close(&c);
}

/* Lowers the soft descriptor limit so that exactly one more descriptor can
 * be opened; the previous limit into *OLD. */
static void limit_to_one_more_fd(struct rlimit *old)
{
    assert_int_equal(getrlimit(RLIMIT_NOFILE, old), 0);
    int lowest = dup(0); // the lowest free descriptor
    assert_true(lowest >= 0);
    close(lowest);
    struct rlimit lim = {(rlim_t)lowest + 1, old->rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
}

/* An entry the waiter cannot open to check (no descriptor left once it holds
 * the key's lock) is not taken for a corrupt one: it stays, and the next
 * lookup that can read it reuses it. */
static void test_unchecked_entry_kept(void **state)
{
    (void)state;
    featcache c;
    char msg[512], path[4200];
    assert_int_equal(featcache_open(&c, dir, 1 << 30, msg, sizeof msg), 0);
    const char *key = "{\"unchecked\":1}";
    entry_path(&c, key, path, sizeof path);
    int up[2], go[2];
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(go), 0);
    pid_t pid = committing_builder(key, 11, up, go);
    char b;
    assert_int_equal(read(up[0], &b, 1), 1);
    featcache_slot s;
    assert_int_equal(featcache_lookup(&c, key, 8, 8, &s, msg, sizeof msg), FEATCACHE_BUSY);
    assert_int_equal(write(go[1], "x", 1), 1);
    struct rlimit old;
    limit_to_one_more_fd(&old); // the lock's descriptor, none for the entry
    int rc = featcache_wait(&s, NULL, msg, sizeof msg);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(rc, ERR_IO);
    assert_non_null(strstr(msg, "left in place"));
    assert_false(s.locked);
    assert_null(s.entry.data);
    featcache_slot_release(&s);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(access(path, F_OK), 0);                          // still there...
    assert_int_equal(lookup_check(&c, key, 8, 8, 11), FEATCACHE_HIT); // ...and reused
    close(up[0]);
    close(up[1]);
    close(go[0]);
    close(go[1]);
    featcache_close(&c);
}

/* A child that takes KEY's lock (a lookup that misses) and holds it: it
 * says so with a byte on pipe UP, then, when SIG, waits for a byte on pipe
 * GO and sends its parent SIGUSR1; it exits at the next byte on GO, at its
 * end of file (the test died), or after 20 s, so that a waiter that never
 * stops fails its test instead of hanging it. */
static pid_t lock_holder(const char *key, const int up[2], const int go[2], bool sig)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        featcache c;
        featcache_slot s;
        char msg[512], b;
        close(up[0]); // a test that dies ends it too (end of file on GO)
        close(go[1]);
        if (featcache_open(&c, dir, 1 << 30, msg, sizeof msg) ||
            featcache_lookup(&c, key, 8, 8, &s, msg, sizeof msg) != FEATCACHE_MISS)
            _exit(3);
        if (write(up[1], "x", 1) != 1) _exit(4);
        if (sig && (read(go[0], &b, 1) != 1 || kill(getppid(), SIGUSR1) != 0)) _exit(5);
        struct pollfd p = {.fd = go[0], .events = POLLIN};
        if (poll(&p, 1, 20000) != 1 || read(go[0], &b, 1) != 1) _exit(6);
        _exit(0);
    }
    return pid;
}

static volatile sig_atomic_t stop_asked; // set by on_usr1

static void on_usr1(int sig)
{
    (void)sig;
    stop_asked = 1;
}

/* A waiter whose stop flag is set, before or during its wait, returns
 * ERR_INTERRUPTED while the other process still holds the key's lock. */
static void test_wait_stopped(void **state)
{
    (void)state;
    featcache c;
    char msg[512], b;
    assert_int_equal(featcache_open(&c, dir, 1 << 30, msg, sizeof msg), 0);
    const char *key = "{\"stopped\":1}";
    int up[2], go[2], st;
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(go), 0);
    /* asked before the wait begins */
    pid_t pid = lock_holder(key, up, go, false);
    assert_int_equal(read(up[0], &b, 1), 1);
    featcache_slot s;
    assert_int_equal(featcache_lookup(&c, key, 8, 8, &s, msg, sizeof msg), FEATCACHE_BUSY);
    stop_asked = 1;
    assert_int_equal(featcache_wait(&s, &stop_asked, msg, sizeof msg), ERR_INTERRUPTED);
    assert_false(s.locked);
    assert_int_equal(waitpid(pid, &st, WNOHANG), 0); // the holder still holds it
    assert_int_equal(write(go[1], "x", 1), 1);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* not stopped, the wait goes on: the holder ended without an entry */
    stop_asked = 0;
    assert_int_equal(featcache_wait(&s, &stop_asked, msg, sizeof msg), FEATCACHE_MISS);
    assert_true(s.locked);
    featcache_slot_release(&s);

    /* asked by a signal (SA_RESTART, as a handler may be) around the wait */
    struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = SA_RESTART}, old;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    stop_asked = 0;
    pid = lock_holder(key, up, go, true);
    assert_int_equal(read(up[0], &b, 1), 1);
    assert_int_equal(featcache_lookup(&c, key, 8, 8, &s, msg, sizeof msg), FEATCACHE_BUSY);
    assert_int_equal(write(go[1], "x", 1), 1); // the holder signals us now
    int rc = featcache_wait(&s, &stop_asked, msg, sizeof msg);
    assert_int_equal(waitpid(pid, &st, WNOHANG), 0);
    assert_int_equal(write(go[1], "x", 1), 1);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
    assert_int_equal(rc, ERR_INTERRUPTED);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    featcache_slot_release(&s);
    close(up[0]);
    close(up[1]);
    close(go[0]);
    close(go[1]);
    featcache_close(&c);
}

static void test_eviction(void **state)
{
    (void)state;
    featcache c;
    char msg[512];
    const uint64_t rows = 64, floats = 256; // 64 KiB of payload, 68 KiB a file
    uint64_t one = featcache_entry_bytes("{\"e\":0}", rows, floats);
    assert_int_equal(one, 4096 + 65536);
    assert_int_equal(featcache_open(&c, dir, 3 * one + 100, msg, sizeof msg), 0);
    build(&c, "{\"e\":0}", rows, floats, 0);
    build(&c, "{\"e\":1}", rows, floats, 1);
    build(&c, "{\"e\":2}", rows, floats, 2);
    assert_int_equal(featcache_used_bytes(&c), 3 * one);
    /* using entry 0 makes entry 1 the least recently used */
    usleep(2000);
    assert_int_equal(lookup_check(&c, "{\"e\":0}", rows, floats, 0), FEATCACHE_HIT);
    build(&c, "{\"e\":3}", rows, floats, 3);
    assert_true(featcache_used_bytes(&c) <= 3 * one + 100);
    assert_int_equal(lookup_check(&c, "{\"e\":0}", rows, floats, 0), FEATCACHE_HIT);
    assert_int_equal(lookup_check(&c, "{\"e\":2}", rows, floats, 2), FEATCACHE_HIT);
    assert_int_equal(lookup_check(&c, "{\"e\":3}", rows, floats, 3), FEATCACHE_HIT);
    assert_int_equal(count_files(&c, ".bin"), 3);
    assert_int_equal(count_files(&c, ".lock"), 4); // .evict.lock + three entries' (1's went)
    assert_int_equal(lookup_check(&c, "{\"e\":1}", rows, floats, 1), FEATCACHE_MISS);
    /* an entry larger than the bound is refused, nothing is evicted for it */
    featcache_slot s;
    float *d;
    assert_int_equal(featcache_lookup(&c, "{\"big\":1}", rows * 4, floats, &s, msg, sizeof msg),
                     FEATCACHE_MISS);
    assert_int_equal(featcache_build_begin(&s, &d, msg, sizeof msg), ERR_TOOBIG);
    assert_non_null(strstr(msg, "cache_max_mb"));
    featcache_slot_release(&s);
    assert_int_equal(count_files(&c, ".bin"), 3);
    featcache_close(&c);
}

/* The path of KEY's lock file in C. */
static void lock_file(const featcache *c, const char *key, char *buf, size_t n)
{
    snprintf(buf, n, "%s/feat-%016llx.lock", c->dir,
             (unsigned long long)featcache_hash(key, strlen(key)));
}

/* Lock files of keys that never got an entry are removed by the next
 * eviction pass, unless another process holds them. */
static void test_stale_locks(void **state)
{
    (void)state;
    featcache c;
    char msg[512], b;
    char stale[4200], held[4200], other[4200];
    assert_int_equal(featcache_open(&c, dir, 1 << 30, msg, sizeof msg), 0);
    lock_file(&c, "{\"stale\":1}", stale, sizeof stale);
    lock_file(&c, "{\"held\":1}", held, sizeof held);
    lock_file(&c, "{\"other\":1}", other, sizeof other);
    /* a lookup that never builds leaves its key's lock file */
    assert_int_equal(lookup_check(&c, "{\"stale\":1}", 8, 8, 0), FEATCACHE_MISS);
    assert_int_equal(access(stale, F_OK), 0);
    /* another process holds the lock of a key without an entry */
    int up[2], go[2], st;
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(go), 0);
    pid_t pid = lock_holder("{\"held\":1}", up, go, false);
    assert_int_equal(read(up[0], &b, 1), 1);
    build(&c, "{\"other\":1}", 8, 8, 1); // its eviction pass
    assert_int_equal(access(stale, F_OK), -1);
    assert_int_equal(access(held, F_OK), 0);
    assert_int_equal(access(other, F_OK), 0); // an entry's lock stays
    assert_int_equal(write(go[1], "x", 1), 1);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* released without an entry, it goes at the next pass */
    build(&c, "{\"other\":2}", 8, 8, 2);
    assert_int_equal(access(held, F_OK), -1);
    assert_int_equal(access(other, F_OK), 0);
    assert_int_equal(count_files(&c, ".lock"), 3); // .evict.lock and the two entries'
    assert_int_equal(lookup_check(&c, "{\"other\":1}", 8, 8, 1), FEATCACHE_HIT);
    close(up[0]);
    close(up[1]);
    close(go[0]);
    close(go[1]);
    featcache_close(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_build_and_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_discarded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_key_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_build, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_for_builder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eviction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unchecked_entry_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_stopped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_locks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
