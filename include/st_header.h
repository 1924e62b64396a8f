/* st_header — the header of a safetensors file, read and checked without its
 * tensor data (common/st_header.c): the one parser of the format's header,
 * used by the worker's memory-mapped reader (safetensors.h) and by the
 * daemon, which reads only the header of a job's model.weights when the job
 * is submitted.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON header
 * ({"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
 *  ..., "__metadata__": {"key": "string", ...}}), then the data section.
 * Nothing in the header is trusted: the length is checked against the file
 * size before anything is parsed, every entry must have a known dtype, a
 * shape whose product does not overflow, and data offsets inside the data
 * section matching the shape; tensors may not overlap. Errors name the file
 * and the tensor or byte offset. A PyTorch file given instead (a zip archive
 * from torch.save, or a legacy pickle) is recognised by its first bytes and
 * refused with a message naming etc/export-weights.py, which converts it. */
#ifndef SWEEP_ST_HEADER_H
#define SWEEP_ST_HEADER_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8
/* Headers larger than this are refused before any allocation (the reference
 * implementation uses 100 MB too). */
#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

typedef enum { ST_F32 = 0, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_U8, ST_OTHER } st_dtype;

typedef struct {
    char *name;                 // tensor name, e.g. "layer1.0.conv1.weight" (owned by the header)
    st_dtype dtype;             // element type
    int ndim;                   // number of dimensions, 0..ST_MAX_DIMS
    int64_t shape[ST_MAX_DIMS]; // dimensions, outermost first
    int64_t numel;              // product of shape (1 for a scalar)
    size_t offset;              // byte offset of the data from the file's start
    size_t nbytes;              // bytes of data
} st_tensor;

typedef struct st_header st_header;

/* Parses the header of the file PATH (for messages) whose first LEN bytes are
 * at BUF and whose whole size is FILE_SIZE bytes (LEN <= FILE_SIZE; BUF must
 * hold at least the 8 + N header bytes, else ERR_PARSE). On success *OUT owns
 * the parsed header (st_header_free). Errors: ERR_PARSE (malformed, a
 * PyTorch file, with the byte offset or tensor name in MSG), ERR_NOMEM. */
int st_header_parse(st_header **out, const char *path, const uint8_t *buf, size_t len,
                    size_t file_size, char *msg, size_t msglen);
/* Reads and parses only the header of the regular file PATH (the data are
 * not read). *OUT as st_header_parse. ERR_IO when PATH cannot be opened or
 * read or is not a regular file, else as st_header_parse. */
int st_header_read(st_header **out, const char *path, char *msg, size_t msglen);
void st_header_free(st_header *h);

/* Number of tensors. */
size_t st_header_count(const st_header *h);
/* The I-th tensor in header order, or NULL past the end; borrowed. */
const st_tensor *st_header_get(const st_header *h, size_t i);
/* The tensor named NAME or NULL; borrowed. */
const st_tensor *st_header_find(const st_header *h, const char *name);
/* A __metadata__ value, or NULL; borrowed. */
const char *st_header_metadata(const st_header *h, const char *key);
/* The path given to st_header_parse / st_header_read; borrowed. */
const char *st_header_path(const st_header *h);
/* Byte offset of the data section (8 + header length). */
size_t st_header_data_start(const st_header *h);

/* Bytes per element of D; 0 for ST_OTHER. */
size_t st_dtype_size(st_dtype d);
/* The header's name of D ("F32", ...), or NULL for ST_OTHER. */
const char *st_dtype_name(st_dtype d);

#endif
