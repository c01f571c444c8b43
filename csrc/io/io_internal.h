/* Internal helpers shared by the file-format readers and writers (implemented in io/atomic_file.c). */
#ifndef COLLAPSE_IO_INTERNAL_H
#define COLLAPSE_IO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/tensor.h" /* cl_shape_str, cl_splitmix64, cl_advise_huge_pages */
#include "collapse.h"

/* Upper bound on the bytes of one array read or written (1 TiB). Sizes from headers beyond it are
 * rejected as corrupt before anything is allocated; below it memory still grows only as data arrives. */
#define IO_MAX_BYTES ((int64_t)1 << 40)

/* a * b into *out; returns 0 on overflow (or a negative operand). */
static inline int io_mul_i64(int64_t a, int64_t b, int64_t *out) {
    if (a < 0 || b < 0) return 0;
    if (a != 0 && b > INT64_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* Shapes in messages: core's cl_shape_str(ndim, shape, buf, size) ("[2 x 3 x 4]", "[scalar]"),
 * declared in core/tensor.h, included above. */

/* ---- reading (raw or gzip, detected from the content, through zlib) ---- */
typedef struct io_reader {
    void *gz;          /* gzFile */
    const char *fn;    /* "idx", "npy", "csv": prefix of messages */
    const char *path;
    int64_t pos;       /* bytes delivered so far (uncompressed) */
    int gz_truncated;  /* a gzip stream ended before its end-of-member trailer */
} io_reader;

/* Opens path for reading; fails with "fn: cannot open 'path': strerror". */
collapse_status collapse_io_reader_open(io_reader *r, const char *fn, const char *path);
/* Reads up to n bytes; *got < n only at the end of the data. A read error or corrupt compressed
 * stream fails (COLLAPSE_ERR_IO / COLLAPSE_ERR_FORMAT); a truncated gzip stream ends early with
 * *got < n and r->gz_truncated set so callers can say so. */
collapse_status collapse_io_reader_read(io_reader *r, void *buf, size_t n, size_t *got);
void collapse_io_reader_close(io_reader *r);
/* Reads exactly `need` bytes into a malloc'd buffer that grows as data arrives (a corrupt size
 * never causes a large allocation on its own). Fails with "fn: path: truncated <what>, expected N
 * bytes, got M". need may be 0 (a 1-byte buffer is returned). */
collapse_status collapse_io_read_exact(io_reader *r, int64_t need, const char *what, unsigned char **out);
/* Reads the rest of the stream (at most max bytes, else an error) into a NUL-terminated buffer. */
collapse_status collapse_io_read_all(io_reader *r, int64_t max, unsigned char **out, int64_t *len);

/* ---- element conversion ---- */
typedef enum io_scalar { IO_U8, IO_I8, IO_U16, IO_I16, IO_U32, IO_I32, IO_U64, IO_I64, IO_F32, IO_F64 } io_scalar;
size_t collapse_io_scalar_size(io_scalar t);
/* Converts n elements of type st (stored big- or little-endian) at src to dst (float32, float64
 * or int32) at out. Integers going to int32 get `offset` added and are range-checked; scale_u8
 * maps u8 to [0,1] when dst is float. Fails (COLLAPSE_ERR_RANGE) naming fn, path and the index. */
collapse_status collapse_io_convert(const char *fn, const char *path, const unsigned char *src, int64_t n, io_scalar st,
                           int big_endian, collapse_dtype dst, int scale_u8, int64_t offset, void *out);

/* ---- atomic writing ---- */
typedef struct io_atomic {
    int fd;
    char *tmp;          /* temporary path (malloc'd) */
    const char *path;
    const char *fn;
} io_atomic;
collapse_status collapse_io_atomic_open(io_atomic *w, const char *fn, const char *path);
collapse_status collapse_io_atomic_write(io_atomic *w, const void *bytes, size_t len);
/* fsync, close, rename over path, fsync the directory. Always releases w. */
collapse_status collapse_io_atomic_commit(io_atomic *w);
/* Closes and removes the temporary file (path untouched). */
void collapse_io_atomic_abort(io_atomic *w);

#endif
