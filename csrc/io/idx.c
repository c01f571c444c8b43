/*
 * IDX reader (the MNIST / Fashion-MNIST format), raw or gzip-compressed.
 *
 * Layout: magic = 0x00 0x00 <type> <ndim>, then ndim big-endian uint32 sizes, then the data,
 * big-endian, row-major. Types: 0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int, 0x0D float, 0x0E double.
 */
#include <stdlib.h>
#include <string.h>

#include "io/io_internal.h"

static int idx_type(unsigned code, io_scalar *st, const char **name) {
    switch (code) {
    case 0x08: *st = IO_U8; *name = "ubyte"; return 1;
    case 0x09: *st = IO_I8; *name = "byte"; return 1;
    case 0x0B: *st = IO_I16; *name = "short"; return 1;
    case 0x0C: *st = IO_I32; *name = "int"; return 1;
    case 0x0D: *st = IO_F32; *name = "float"; return 1;
    case 0x0E: *st = IO_F64; *name = "double"; return 1;
    }
    return 0;
}

static collapse_status idx_read_header(io_reader *r, int *ndim_out, int64_t *dims, io_scalar *st, const char **tname) {
    unsigned char magic[4];
    size_t got = 0;
    COLLAPSE_TRY(collapse_io_reader_read(r, magic, 4, &got));
    if (got < 4)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "idx: %s: truncated header, expected 4 magic bytes, got %zu%s", r->path,
                             got, r->gz_truncated ? " (the gzip stream ends early)" : "");
    if (magic[0] != 0 || magic[1] != 0 || !idx_type(magic[2], st, tname))
        return collapse_fail(COLLAPSE_ERR_FORMAT,
                             "idx: %s: bad magic 0x%02x%02x%02x%02x, expected 0x0000 then a type code (08 ubyte, "
                             "09 byte, 0B short, 0C int, 0D float, 0E double) and the number of dimensions",
                             r->path, magic[0], magic[1], magic[2], magic[3]);
    int ndim = magic[3];
    if (ndim < 1 || ndim > COLLAPSE_MAX_DIMS)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "idx: %s: %d dimensions in the header, expected 1..%d", r->path, ndim,
                             COLLAPSE_MAX_DIMS);
    unsigned char raw[4 * COLLAPSE_MAX_DIMS];
    size_t need = 4 * (size_t)ndim;
    COLLAPSE_TRY(collapse_io_reader_read(r, raw, need, &got));
    if (got < need)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "idx: %s: truncated header, expected %zu bytes of sizes, got %zu%s",
                             r->path, need, got, r->gz_truncated ? " (the gzip stream ends early)" : "");
    for (int i = 0; i < ndim; i++)
        dims[i] = ((int64_t)raw[4 * i] << 24) | ((int64_t)raw[4 * i + 1] << 16) | ((int64_t)raw[4 * i + 2] << 8) |
                  (int64_t)raw[4 * i + 3];
    *ndim_out = ndim;
    return COLLAPSE_OK;
}

collapse_status collapse_idx_read(const char *path, int scale_to_unit, int32_t label_offset, int64_t limit,
                                  collapse_array *out) {
    if (!out) return collapse_fail(COLLAPSE_ERR_ARG, "idx: out array expected, got NULL");
    memset(out, 0, sizeof *out);
    if (limit < 0)
        return collapse_fail(COLLAPSE_ERR_ARG, "idx: limit %lld is negative, expected 0 (all items) or a count",
                             (long long)limit);
    io_reader r;
    COLLAPSE_TRY(collapse_io_reader_open(&r, "idx", path));

    int ndim = 0;
    int64_t dims[COLLAPSE_MAX_DIMS] = {0};
    io_scalar st = IO_U8;
    const char *tname = "";
    collapse_status s = idx_read_header(&r, &ndim, dims, &st, &tname);
    if (s != COLLAPSE_OK) {
        collapse_io_reader_close(&r);
        return s;
    }
    char shp[256];
    size_t es = collapse_io_scalar_size(st);
    int64_t total = 1, row = 1, total_bytes = 0; /* total * 8 must fit: no later product overflows */
    for (int i = 0; i < ndim; i++)
        if (!io_mul_i64(total, dims[i], &total)) total = -1;
    for (int i = 1; i < ndim && row >= 0; i++)
        if (!io_mul_i64(row, dims[i], &row)) row = -1;
    if (total < 0 || row < 0 || !io_mul_i64(total, 8, &total_bytes)) {
        collapse_io_reader_close(&r);
        return collapse_fail(COLLAPSE_ERR_FORMAT, "idx: %s: dimensions %s of %s overflow the element count", path,
                             cl_shape_str(ndim, dims, shp, sizeof shp), tname);
    }

    if (label_offset != 0 && (st == IO_F32 || st == IO_F64)) {
        /* a label file read with an offset must hold integers: floats would skip the offset and
         * any 1.5 would later be truncated */
        collapse_io_reader_close(&r);
        return collapse_fail(COLLAPSE_ERR_DTYPE,
                             "idx: %s: label_offset %d given but the data is %s %s, expected an integer type "
                             "(ubyte, byte, short or int) for class labels",
                             path, (int)label_offset, cl_shape_str(ndim, dims, shp, sizeof shp), tname);
    }
    collapse_dtype dtype;
    int labels = 0;
    if (st == IO_F32) dtype = COLLAPSE_FLOAT32;
    else if (st == IO_F64) dtype = COLLAPSE_FLOAT64;
    else if (ndim == 1) { dtype = COLLAPSE_INT32; labels = 1; }
    else if (st == IO_I32) dtype = COLLAPSE_INT32;
    else dtype = COLLAPSE_FLOAT32;

    int64_t items = dims[0];
    if (limit > 0 && limit < items) items = limit;
    int64_t n = items * row; /* <= total, no overflow */
    int64_t in_bytes = n * (int64_t)es, out_bytes = n * (int64_t)collapse_dtype_size(dtype);
    if (in_bytes > IO_MAX_BYTES || out_bytes > IO_MAX_BYTES) {
        collapse_io_reader_close(&r);
        return collapse_fail(COLLAPSE_ERR_FORMAT, "idx: %s: %s %s data needs %lld bytes, more than the limit of %lld",
                             path, cl_shape_str(ndim, dims, shp, sizeof shp), tname, (long long)out_bytes,
                             (long long)IO_MAX_BYTES);
    }

    unsigned char *raw = NULL;
    s = collapse_io_read_exact(&r, in_bytes, "data", &raw);
    if (s == COLLAPSE_OK && items == dims[0]) {
        /* the whole file was asked for: it must end here, with an intact gzip trailer */
        unsigned char extra;
        size_t got = 0;
        s = collapse_io_reader_read(&r, &extra, 1, &got);
        if (s == COLLAPSE_OK && got > 0)
            s = collapse_fail(COLLAPSE_ERR_FORMAT,
                              "idx: %s: unexpected data after the %lld bytes of the %s %s array (wrong sizes in the header?)",
                              path, (long long)in_bytes, cl_shape_str(ndim, dims, shp, sizeof shp), tname);
        else if (s == COLLAPSE_OK && r.gz_truncated)
            s = collapse_fail(COLLAPSE_ERR_FORMAT, "idx: %s: truncated gzip stream (its trailer is missing)", path);
    }
    collapse_io_reader_close(&r);
    if (s != COLLAPSE_OK) {
        free(raw);
        return s;
    }
    void *data = malloc(out_bytes > 0 ? (size_t)out_bytes : 1);
    if (!data) {
        free(raw);
        return collapse_fail(COLLAPSE_ERR_NOMEM, "idx: %s: cannot allocate %lld bytes", path, (long long)out_bytes);
    }
    s = collapse_io_convert("idx", path, raw, n, st, 1, dtype, scale_to_unit && st == IO_U8, labels ? label_offset : 0, data);
    free(raw);
    if (s != COLLAPSE_OK) {
        free(data);
        return s;
    }
    out->dtype = dtype;
    out->ndim = ndim;
    for (int i = 0; i < ndim; i++) out->shape[i] = dims[i];
    out->shape[0] = items;
    out->data = data;
    return COLLAPSE_OK;
}
