/* safetensors — reader (memory-mapped) and writer for the safetensors format.
 *
 * The format and the checks of its header are in st_header.h (common/, the
 * one header parser, which the daemon uses too): the reader maps the file
 * and hands its first bytes to st_header_parse, which checks every offset
 * and size against the file, so a hostile header cannot make it read out of
 * bounds. Errors name the tensor or byte offset. */
#ifndef SWEEP_SAFETENSORS_H
#define SWEEP_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "st_header.h"

typedef struct st_file st_file;

/* Maps PATH read-only and parses its header. On success *OUT owns the mapping;
 * free with st_close. Errors: ERR_IO (cannot open), ERR_PARSE (malformed,
 * with the byte offset or tensor name in msg). */
int st_open(st_file **out, const char *path, char *msg, size_t msglen);
void st_close(st_file *f);
size_t st_count(const st_file *f);
/* The I-th tensor in header order; borrowed. */
const st_tensor *st_get(const st_file *f, size_t i);
/* The tensor named NAME or NULL; borrowed. */
const st_tensor *st_find(const st_file *f, const char *name);
/* Converts T's data (F32, F16, BF16 or F64) to float32 into DST (numel floats).
 * ERR_TYPE for other dtypes. */
int st_read_f32(const st_file *f, const st_tensor *t, float *dst, char *msg, size_t msglen);
/* A __metadata__ value, or NULL; borrowed. */
const char *st_metadata(const st_file *f, const char *key);
const char *st_path(const st_file *f);
/* The parsed header of F (tensors and metadata); borrowed, valid until st_close. */
const st_header *st_file_header(const st_file *f);

/* Writer: collects float32 tensors and string metadata, then writes the file
 * atomically (temporary file in the same directory, fsync, rename). Tensor
 * data is borrowed until st_writer_save returns; names are copied. */
typedef struct st_writer st_writer;
st_writer *st_writer_new(void); // NULL on allocation failure; free with st_writer_free
int st_writer_add_f32(st_writer *w, const char *name, int ndim, const int64_t *shape,
                      const float *data);
/* Raw bytes of any dtype (NBYTES must fit the shape), e.g. optimizer or RNG state as U8. */
int st_writer_add_raw(st_writer *w, const char *name, st_dtype dtype, int ndim,
                      const int64_t *shape, const void *data, size_t nbytes);
int st_writer_meta(st_writer *w, const char *key, const char *value);
/* Writes the file at PATH. 0, or ERR_NOSPACE (no space, quota or file-size
 * limit: fileio_err_for_errno), ERR_IO, ERR_NOMEM with the reason in MSG; on
 * failure the previous file at PATH is left as it was. */
int st_writer_save(st_writer *w, const char *path, char *msg, size_t msglen);
void st_writer_free(st_writer *w);

#endif
