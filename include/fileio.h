/* fileio — reading a whole file into memory, the one way for every part that
 * needs a file's bytes at once (JPEGs of a data folder, specs, SQL), and
 * writing a buffer out whole, telling a lack of space from other failures.
 *
 * fileio_read takes regular files only (a FIFO or a directory in a data
 * folder must not block or be mistaken for data), sizes the buffer from
 * fstat, and reuses the caller's buffer when it is large enough, so a loop
 * over many files allocates once. The bytes are followed by a NUL that LEN
 * does not count, so text can be used as a C string. */
#ifndef SWEEP_FILEIO_H
#define SWEEP_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer; zero-initialise before the first use. */
typedef struct {
    uint8_t *data; // LEN bytes and a NUL (owned; free with fileio_buf_free)
    size_t len;    // bytes of the last file read
    size_t cap;    // allocated bytes of data
} fileio_buf;

/* Reads the regular file PATH whole into B (its previous contents are
 * replaced). MAX > 0 refuses larger files with ERR_TOOBIG. Returns 0, or
 * ERR_IO (cannot open, stat or read; not a regular file), ERR_NOMEM or
 * ERR_TOOBIG with a message naming PATH ("cannot open PATH: No such file or
 * directory"). B stays valid for fileio_buf_free after a failure. */
int fileio_read(const char *path, size_t max, fileio_buf *b, char *msg, size_t msglen);
/* Frees B's memory and zeroes it. */
void fileio_buf_free(fileio_buf *b);

/* ERR_NOSPACE for the errnos of a failed write that mean "no space (yet)":
 * ENOSPC (disk full), EDQUOT (quota) and EFBIG (file-size limit); ERR_IO for
 * any other. */
int fileio_err_for_errno(int e);
/* Writes the N bytes at BUF to FD, going on after short writes and EINTR.
 * Returns 0, or fileio_err_for_errno of the failed write(2), whose errno is
 * left for the caller's message; *DONE (when not NULL) gets the bytes
 * written, also on failure. */
int fileio_write_all(int fd, const void *buf, size_t n, size_t *done);
/* Creates the directory DIR and every missing parent (mode 0755, as
 * `mkdir -p`); an existing directory is fine. Returns 0, or -1 with errno
 * set (ENAMETOOLONG for a path of PATH_MAX bytes or more). */
int fileio_mkdirs(const char *dir);

#endif
