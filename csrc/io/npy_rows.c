/*
 * Row-range NPY reader: opens a C-order .npy (or .npy.gz) file, reports its dtype and shape, and
 * hands out the rows (first-axis slices) in order, converted to float32, float64 or int32, a
 * chunk at a time, so that a file far larger than memory can be measured (collapse measure,
 * issue 13). Only the chunk the caller asks for is ever held. The header grammar is the one of
 * io/npy.c (a Python dict literal with 'descr', 'fortran_order' and 'shape'), parsed here again
 * because that parser is private to the whole-file reader.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io_internal.h"

#define NPY_ROWS_MAX_HEADER (1 << 20)

struct collapse_npy_rows {
    io_reader r;
    char *path;
    io_scalar st;
    int big;
    int ndim;
    int64_t shape[COLLAPSE_MAX_DIMS];
    int64_t row_elems, next;
    unsigned char *raw;
    size_t raw_cap;
};

/* The value text after 'key': in the header dict (NULL if absent or given twice). */
static const char *hdr_value(const char *text, const char *key) {
    char quoted[2][40];
    snprintf(quoted[0], sizeof quoted[0], "'%s'", key);
    snprintf(quoted[1], sizeof quoted[1], "\"%s\"", key);
    const char *hit = NULL;
    for (int q = 0; q < 2; q++) {
        const char *p = strstr(text, quoted[q]);
        if (!p) continue;
        if (hit || strstr(p + 1, quoted[q])) return NULL;
        hit = p + strlen(quoted[q]);
    }
    if (!hit) return NULL;
    while (*hit == ' ') hit++;
    if (*hit != ':') return NULL;
    hit++;
    while (*hit == ' ') hit++;
    return hit;
}

static collapse_status bad_header(const char *path, const char *what) {
    return collapse_fail(COLLAPSE_ERR_FORMAT, "npy_rows: %s: corrupt header, %s", path, what);
}

/* descr -> scalar type and byte order (as io/npy.c: f4 f8 i1 i2 i4 i8 u1 u2 u4 u8, any order). */
static int rows_descr(const char *v, io_scalar *st, int *big) {
    static const uint16_t one = 1;
    char q = *v++;
    if (q != '\'' && q != '"') return 0;
    char order = '=';
    if (*v == '<' || *v == '>' || *v == '|' || *v == '=') order = *v++;
    char kind = *v++;
    int size = *v >= '1' && *v <= '8' ? *v++ - '0' : 0;
    if (*v != q || (order == '|' && size != 1)) return 0;
    *big = order == '>' || (order == '=' && *(const unsigned char *)&one == 0);
    if (kind == 'f' && (size == 4 || size == 8)) *st = size == 4 ? IO_F32 : IO_F64;
    else if (kind == 'i' && (size == 1 || size == 2 || size == 4 || size == 8))
        *st = size == 1 ? IO_I8 : size == 2 ? IO_I16 : size == 4 ? IO_I32 : IO_I64;
    else if (kind == 'u' && (size == 1 || size == 2 || size == 4 || size == 8))
        *st = size == 1 ? IO_U8 : size == 2 ? IO_U16 : size == 4 ? IO_U32 : IO_U64;
    else return 0;
    return 1;
}

static collapse_status rows_parse(collapse_npy_rows *r, const char *text) {
    const char *path = r->path;
    const char *d = hdr_value(text, "descr"), *f = hdr_value(text, "fortran_order"), *s = hdr_value(text, "shape");
    if (!d || !f || !s) return bad_header(path, "expected each of 'descr', 'fortran_order' and 'shape' once");
    if (!rows_descr(d, &r->st, &r->big))
        return collapse_fail(COLLAPSE_ERR_DTYPE, "npy_rows: %s: unsupported dtype %.12s, expected float32 '<f4', "
                             "float64 '<f8' or an integer type", path, d);
    if (!strncmp(f, "True", 4))
        return collapse_fail(COLLAPSE_ERR_FORMAT, "npy_rows: %s: fortran_order is True; save np.ascontiguousarray(a)",
                             path);
    if (strncmp(f, "False", 5)) return bad_header(path, "'fortran_order' must be True or False");
    if (*s++ != '(') return bad_header(path, "'shape' must be a tuple");
    r->ndim = 0;
    for (;;) {
        while (*s == ' ') s++;
        if (*s == ')') break;
        char *end = NULL;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 0 || r->ndim == COLLAPSE_MAX_DIMS) return bad_header(path, "bad 'shape' tuple");
        r->shape[r->ndim++] = v;
        s = end;
        while (*s == ' ') s++;
        if (*s == ',') s++;
        else if (*s != ')') return bad_header(path, "bad 'shape' tuple");
    }
    r->row_elems = 1;
    for (int i = 1; i < r->ndim; i++)
        if (!io_mul_i64(r->row_elems, r->shape[i], &r->row_elems)) return bad_header(path, "'shape' overflows");
    int64_t total = 0;
    if (r->ndim > 0 && (!io_mul_i64(r->row_elems, r->shape[0], &total) || total > IO_MAX_BYTES / 8))
        return bad_header(path, "'shape' is too large");
    return COLLAPSE_OK;
}

/* Magic, version and header length, then the header text. */
static collapse_status rows_header(collapse_npy_rows *r) {
    unsigned char pre[12];
    size_t got = 0;
    COLLAPSE_TRY(collapse_io_reader_read(&r->r, pre, 10, &got));
    if (got < 10 || memcmp(pre, "\x93NUMPY", 6) != 0)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "npy_rows: %s: not an .npy file (no \\x93NUMPY magic)", r->path);
    int major = pre[6];
    if ((major != 1 && major != 2 && major != 3) || pre[7] != 0)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "npy_rows: %s: unsupported format version %d.%d", r->path, major,
                             pre[7]);
    int64_t hlen = pre[8] | (pre[9] << 8);
    if (major > 1) {
        COLLAPSE_TRY(collapse_io_reader_read(&r->r, pre + 10, 2, &got));
        if (got < 2) return collapse_fail(COLLAPSE_ERR_FORMAT, "npy_rows: %s: truncated header", r->path);
        hlen |= ((int64_t)pre[10] << 16) | ((int64_t)pre[11] << 24);
    }
    if (hlen > NPY_ROWS_MAX_HEADER) return bad_header(r->path, "header longer than 1 MiB");
    unsigned char *raw = NULL;
    COLLAPSE_TRY(collapse_io_read_exact(&r->r, hlen, "header", &raw));
    char *text = malloc((size_t)hlen + 1);
    if (!text) {
        free(raw);
        return collapse_fail(COLLAPSE_ERR_NOMEM, "npy_rows: out of memory");
    }
    memcpy(text, raw, (size_t)hlen);
    text[hlen] = '\0';
    free(raw);
    collapse_status st = rows_parse(r, text);
    free(text);
    return st;
}

collapse_status collapse_npy_rows_open(const char *path, collapse_npy_rows **out) {
    if (!out) return collapse_fail(COLLAPSE_ERR_ARG, "npy_rows_open: out expected, got NULL");
    *out = NULL;
    if (!path) return collapse_fail(COLLAPSE_ERR_ARG, "npy_rows_open: path expected, got NULL");
    collapse_npy_rows *r = calloc(1, sizeof *r);
    char *p = r ? malloc(strlen(path) + 1) : NULL;
    if (!p) {
        free(r);
        return collapse_fail(COLLAPSE_ERR_NOMEM, "npy_rows_open: out of memory");
    }
    strcpy(p, path);
    r->path = p;
    collapse_status st = collapse_io_reader_open(&r->r, "npy_rows", path);
    if (st != COLLAPSE_OK) {
        free(p);
        free(r);
        return st;
    }
    st = rows_header(r);
    if (st != COLLAPSE_OK) {
        collapse_npy_rows_close(r);
        return st;
    }
    *out = r;
    return COLLAPSE_OK;
}

void collapse_npy_rows_close(collapse_npy_rows *r) {
    if (!r) return;
    collapse_io_reader_close(&r->r);
    free(r->raw);
    free(r->path);
    free(r);
}

int collapse_npy_rows_shape(const collapse_npy_rows *r, int64_t *shape) {
    if (!r) return -1;
    if (shape) memcpy(shape, r->shape, (size_t)r->ndim * sizeof(int64_t));
    return r->ndim;
}

int collapse_npy_rows_is_float(const collapse_npy_rows *r) { return r && (r->st == IO_F32 || r->st == IO_F64); }
int collapse_npy_rows_is_float32(const collapse_npy_rows *r) { return r && r->st == IO_F32; }

collapse_status collapse_npy_rows_read(collapse_npy_rows *r, collapse_dtype dtype, int64_t max_rows, void *out,
                                       int64_t *got_rows) {
    static const char fn[] = "npy_rows_read";
    if (!got_rows) return collapse_fail(COLLAPSE_ERR_ARG, "%s: got_rows expected, got NULL", fn);
    *got_rows = 0;
    if (!r || !out) return collapse_fail(COLLAPSE_ERR_ARG, "%s: reader and out expected, got NULL", fn);
    if (max_rows < 1) return collapse_fail(COLLAPSE_ERR_ARG, "%s: max_rows must be >= 1, got %lld", fn, (long long)max_rows);
    if (dtype != COLLAPSE_FLOAT32 && dtype != COLLAPSE_FLOAT64 && dtype != COLLAPSE_INT32)
        return collapse_fail(COLLAPSE_ERR_DTYPE, "%s: dtype must be float32, float64 or int32", fn);
    int64_t rows_total = r->ndim == 0 ? 1 : r->shape[0];
    int64_t rows = rows_total - r->next < max_rows ? rows_total - r->next : max_rows;
    if (rows <= 0) return COLLAPSE_OK;
    size_t isz = collapse_io_scalar_size(r->st);
    int64_t elems = rows * r->row_elems;
    size_t bytes = (size_t)elems * isz;
    if (bytes > r->raw_cap) {
        unsigned char *nb = realloc(r->raw, bytes);
        if (!nb) return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: out of memory for %lld rows", fn, (long long)rows);
        r->raw = nb;
        r->raw_cap = bytes;
    }
    size_t got = 0;
    COLLAPSE_TRY(collapse_io_reader_read(&r->r, r->raw, bytes, &got));
    if (got < bytes)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "npy_rows: %s: truncated data, rows %lld..%lld of %lld are missing",
                             r->path, (long long)(r->next + (int64_t)(got / isz / (size_t)(r->row_elems ? r->row_elems : 1))),
                             (long long)(rows_total - 1), (long long)rows_total);
    COLLAPSE_TRY(collapse_io_convert("npy_rows", r->path, r->raw, elems, r->st, r->big, dtype, 0, 0, out));
    r->next += rows;
    *got_rows = rows;
    return COLLAPSE_OK;
}
