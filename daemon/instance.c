/* instance — sweepd's single-instance locks and the identity a state
 * directory shares with its database. The rules are in include/instance.h;
 * this file takes the locks, reads and writes the state directory's
 * "database-id" (atomically: temporary file, fsync, rename) and compares it
 * with the database's, through the store. */
#include "instance.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "log.h"

#define ID_FILE "database-id"
#define ID_KEY "state_id"
#define ID_HEX 32 // characters of an id: 128 random bits

/* Resolves DB (which may not exist yet: then its directory is resolved and
 * the name kept) into OUT. */
static int resolve_db(const char *db, char *out, size_t n, char *msg, size_t msglen)
{
    char buf[PATH_MAX];
    if (realpath(db, buf)) {
        snprintf(out, n, "%s", buf);
        return 0;
    }
    if (errno != ENOENT) return err_set_errno(msg, msglen, ERR_IO, errno, "cannot resolve %s", db);
    struct stat st;
    if (lstat(db, &st) == 0 && S_ISLNK(st.st_mode))
        return err_set(msg, msglen, ERR_IO,
                       "database %s is a symbolic link to a file that does not exist; not starting",
                       db);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", db);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : db;
    if (slash == dir)
        snprintf(dir, sizeof dir, "/");
    else if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    if (!realpath(dir, buf))
        return err_set_errno(msg, msglen, ERR_IO, errno, "cannot resolve the directory of %s", db);
    if ((size_t)snprintf(out, n, "%s/%s", strcmp(buf, "/") ? buf : "", base) >= n)
        return err_set(msg, msglen, ERR_IO, "database path %s is too long", db);
    return 0;
}

/* Reads the first line(s) a holder wrote into lock file FD: its pid into
 * PID, and the rest of the second line into WHAT (may be NULL). */
static void read_holder(int fd, char *pid, size_t pn, char *what, size_t wn)
{
    char buf[PATH_MAX + 64] = "";
    ssize_t r = pread(fd, buf, sizeof buf - 1, 0);
    buf[r > 0 ? r : 0] = 0;
    char *nl = strchr(buf, '\n');
    if (nl) *nl = 0;
    snprintf(pid, pn, "%s", buf);
    if (what) {
        const char *rest = nl ? nl + 1 : "";
        snprintf(what, wn, "%.*s", (int)strcspn(rest, "\n"), rest);
    }
}

/* Opens PATH (creating it) and takes an exclusive flock. Returns the fd, -1
 * with errno EWOULDBLOCK when another process holds it (*FD_OUT then holds
 * the open fd for reading the holder, caller closes), or -1 on errors. */
static int lock_file(const char *path, int *held_fd)
{
    *held_fd = -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
    int e = errno;
    if (e == EWOULDBLOCK)
        *held_fd = fd;
    else
        close(fd);
    errno = e;
    return -1;
}

int instance_lock(instance *in, const char *db_path, const char *state_dir, char *msg,
                  size_t msglen)
{
    in->pid_fd = in->db_fd = in->dir_fd = -1;
    int rc = resolve_db(db_path, in->db_real, sizeof in->db_real, msg, msglen);
    if (rc) return rc;
    if (!realpath(state_dir, in->dir_real))
        return err_set_errno(msg, msglen, ERR_IO, errno, "cannot resolve state directory %s",
                             state_dir);
    char path[PATH_MAX + 16], pid[32], what[PATH_MAX];
    int held;
    /* 1. "<db>.lock" by resolved name: the message names the holder. */
    snprintf(path, sizeof path, "%s.lock", in->db_real);
    if ((in->pid_fd = lock_file(path, &held)) < 0) {
        if (held < 0)
            return err_set_errno(msg, msglen, ERR_IO, errno, "cannot open lock file %s", path);
        read_holder(held, pid, sizeof pid, NULL, 0);
        close(held);
        return err_set(msg, msglen, ERR_BUSY,
                       "another sweepd%s%s%s is using database %s%s%s%s;"
                       " not starting",
                       *pid ? " (pid " : "", pid, *pid ? ")" : "", db_path,
                       strcmp(db_path, in->db_real) ? " (" : "",
                       strcmp(db_path, in->db_real) ? in->db_real : "",
                       strcmp(db_path, in->db_real) ? ")" : "");
    }
    /* 2. The database file itself: another name for the same file. */
    if ((in->db_fd = lock_file(in->db_real, &held)) < 0) {
        if (held < 0)
            return err_set_errno(msg, msglen, ERR_IO, errno, "cannot open database %s",
                                 in->db_real);
        close(held);
        return err_set(msg, msglen, ERR_BUSY,
                       "another sweepd is using database %s under another name (a hard link to"
                       " the same file); not starting",
                       db_path);
    }
    /* 3. The state directory. */
    snprintf(path, sizeof path, "%s/sweepd.lock", in->dir_real);
    if ((in->dir_fd = lock_file(path, &held)) < 0) {
        if (held < 0)
            return err_set_errno(msg, msglen, ERR_IO, errno, "cannot open lock file %s", path);
        read_holder(held, pid, sizeof pid, what, sizeof what);
        close(held);
        return err_set(msg, msglen, ERR_BUSY,
                       "another sweepd%s%s%s%s%s is using state directory %s; not starting (one"
                       " state directory per daemon: give this one its own --state-dir)",
                       *pid ? " (pid " : "", pid, *what ? ", database " : "", what, *pid ? ")" : "",
                       state_dir);
    }
    return 0;
}

static void write_lock(int fd, const char *text)
{
    if (fd < 0) return;
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, strlen(text), 0) < 0)
        log_debug("cannot write a lock file: %s", strerror(errno));
}

void instance_write_pid(instance *in)
{
    char buf[PATH_MAX + 32];
    snprintf(buf, sizeof buf, "%d\n", (int)getpid());
    write_lock(in->pid_fd, buf);
    snprintf(buf, sizeof buf, "%d\n%s\n", (int)getpid(), in->db_real);
    write_lock(in->dir_fd, buf);
}

void instance_release(instance *in)
{
    int *fds[3] = {&in->pid_fd, &in->db_fd, &in->dir_fd};
    for (int i = 0; i < 3; i++) {
        if (*fds[i] >= 0) close(*fds[i]);
        *fds[i] = -1;
    }
}

/* ---- identity ------------------------------------------------------------ */

static bool id_ok(const char *s)
{
    if (strlen(s) != ID_HEX) return false;
    for (const char *p = s; *p; p++)
        if (!strchr("0123456789abcdef", *p)) return false;
    return true;
}

/* Reads the state directory's id into ID (ID_HEX + 1). Returns 0, 1 when
 * there is no file, or a negative code with MSG. */
static int read_dir_id(const instance *in, char *id, char *msg, size_t msglen)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/" ID_FILE, in->dir_real);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) return 1;
        return err_set_errno(msg, msglen, ERR_IO, errno, "cannot read %s", path);
    }
    char buf[64] = "";
    if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
    fclose(f);
    buf[strcspn(buf, "\r\n")] = 0;
    if (!id_ok(buf))
        return err_set(msg, msglen, ERR_DATA,
                       "%s does not hold a database id (%d hexadecimal digits); not starting", path,
                       ID_HEX);
    memcpy(id, buf, ID_HEX + 1); // id_ok: exactly ID_HEX characters and the NUL
    return 0;
}

static int write_dir_id(const instance *in, const char *id, char *msg, size_t msglen)
{
    char path[PATH_MAX + 16], tmp[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/" ID_FILE, in->dir_real);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) return err_set_errno(msg, msglen, ERR_IO, errno, "cannot write %s", tmp);
    char line[ID_HEX + 2];
    snprintf(line, sizeof line, "%s\n", id);
    bool ok = write(fd, line, strlen(line)) == (ssize_t)strlen(line) && fsync(fd) == 0;
    int e = errno;
    close(fd);
    if (!ok || rename(tmp, path) != 0) {
        if (ok) e = errno;
        unlink(tmp);
        return err_set_errno(msg, msglen, ERR_IO, e, "cannot write %s", path);
    }
    return 0;
}

static int new_id(char *id, char *msg, size_t msglen)
{
    unsigned char b[ID_HEX / 2];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        return err_set_errno(msg, msglen, ERR_IO, errno, "cannot make a database id");
    for (size_t i = 0; i < sizeof b; i++)
        snprintf(id + 2 * i, 3, "%02x", b[i]);
    return 0;
}

/* True when the state directory's trials/ holds any entry. */
static bool has_trial_folders(const instance *in)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/trials", in->dir_real);
    DIR *d = opendir(path);
    if (!d) return false;
    struct dirent *e;
    bool any = false;
    while (!any && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) any = true;
    closedir(d);
    return any;
}

int instance_check_state(instance *in, store *st, char *msg, size_t msglen)
{
    char dbid[ID_HEX + 1] = "", dirid[ID_HEX + 1] = "";
    int drc = store_meta_get(st, ID_KEY, dbid, sizeof dbid, msg, msglen);
    if (drc < 0) return drc;
    int frc = read_dir_id(in, dirid, msg, msglen);
    if (frc < 0) return frc;
    bool has_db = drc == 0, has_dir = frc == 0;
    if (has_db && has_dir) {
        if (!strcmp(dbid, dirid)) return 0;
        return err_set(msg, msglen, ERR_STATE,
                       "state directory %s belongs to another database (its database-id is %s,"
                       " database %s has %s); not starting: use this database's state directory,"
                       " or a new one",
                       in->dir_real, dirid, in->db_real, dbid);
    }
    if (has_dir)
        return err_set(msg, msglen, ERR_STATE,
                       "state directory %s belongs to another database (database-id %s), and"
                       " database %s is new or was replaced; not starting: a new database must"
                       " not reuse old trial folders. Use a new --state-dir, or the database this"
                       " state directory belongs to",
                       in->dir_real, dirid, in->db_real);
    bool folders = has_trial_folders(in);
    if (has_db) {
        if (folders)
            return err_set(msg, msglen, ERR_STATE,
                           "state directory %s holds trial folders but no " ID_FILE
                           " file, so it is not known to belong to database %s (database-id"
                           " %s); not starting. Use a new --state-dir; if it does belong to this"
                           " database, write that id into %s/" ID_FILE,
                           in->dir_real, in->db_real, dbid, in->dir_real);
        log_info("state directory %s: writing database-id %s of database %s", in->dir_real, dbid,
                 in->db_real);
        return write_dir_id(in, dbid, msg, msglen);
    }
    int64_t jobs = store_job_count(st);
    if (jobs < 0) return err_set(msg, msglen, ERR_DB, "cannot count the jobs in %s", in->db_real);
    if (jobs == 0 && folders)
        return err_set(msg, msglen, ERR_STATE,
                       "state directory %s holds trial folders of an earlier database, and"
                       " database %s is new; not starting: a new database must not reuse old"
                       " trial folders. Use a new --state-dir, or move %s/trials away",
                       in->dir_real, in->db_real, in->dir_real);
    char id[ID_HEX + 1];
    int rc = new_id(id, msg, msglen);
    if (rc) return rc;
    /* The database first: a crash between the two writes leaves a database
     * id without the directory's, which the next start completes (the
     * directory has no trial folders yet, or this is an adopted database
     * whose folders then need the id written by hand, as the message says). */
    if ((rc = store_meta_set(st, ID_KEY, id, msg, msglen))) return rc;
    if ((rc = write_dir_id(in, id, msg, msglen))) return rc;
    if (jobs > 0)
        log_info("state directory %s and database %s (from an earlier version) now share"
                 " database-id %s",
                 in->dir_real, in->db_real, id);
    return 0;
}
