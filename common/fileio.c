/* fileio — reading a whole regular file into a reusable buffer, and writing a
 * buffer out whole (fileio.h). */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"

/* Makes room for N bytes and the NUL after them. 0 or ERR_NOMEM. */
static int reserve(fileio_buf *b, size_t n)
{
    if (n < b->cap) return 0;
    uint8_t *nb = realloc(b->data, n + 1);
    if (!nb) return ERR_NOMEM;
    b->data = nb;
    b->cap = n + 1;
    return 0;
}

int fileio_read(const char *path, size_t max, fileio_buf *b, char *msg, size_t msglen)
{
    b->len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_set_errno(msg, msglen, ERR_IO, errno, "cannot open %s", path);
    int rc = 0;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = err_set_errno(msg, msglen, ERR_IO, errno, "cannot stat %s", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = err_set(msg, msglen, ERR_IO, "%s is not a regular file", path);
        goto out;
    }
    size_t n = (size_t)st.st_size;
    if (max > 0 && n > max) {
        rc = err_set(msg, msglen, ERR_TOOBIG, "%s is larger than %zu bytes", path, max);
        goto out;
    }
    if (reserve(b, n)) {
        rc = err_set(msg, msglen, ERR_NOMEM, "out of memory reading %s (%zu bytes)", path, n);
        goto out;
    }
    /* A file that shrinks meanwhile gives what is there; growth is ignored. */
    while (b->len < n) {
        ssize_t r = read(fd, b->data + b->len, n - b->len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            rc = err_set_errno(msg, msglen, ERR_IO, errno, "cannot read %s", path);
            b->len = 0;
            goto out;
        }
        if (r == 0) break;
        b->len += (size_t)r;
    }
    b->data[b->len] = 0;
out:
    close(fd);
    return rc;
}

void fileio_buf_free(fileio_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

int fileio_err_for_errno(int e)
{
    return e == ENOSPC || e == EDQUOT || e == EFBIG ? ERR_NOSPACE : ERR_IO;
}

int fileio_write_all(int fd, const void *buf, size_t n, size_t *done)
{
    const uint8_t *p = buf;
    size_t left = n;
    int rc = 0;
    while (left) {
        ssize_t k = write(fd, p, left > (1u << 30) ? (1u << 30) : left);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            if (k == 0) errno = EIO; // no progress: do not spin
            rc = fileio_err_for_errno(errno);
            break;
        }
        p += k;
        left -= (size_t)k;
    }
    if (done) *done = n - left;
    return rc;
}

int fileio_mkdirs(const char *dir)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", dir) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}
