/*
 * Row-range NPY reader: opens a C-order .npy (or .npy.gz) file, or an NPY member of an .npz
 * archive (stored or deflated: the zip stream inflates as it goes), reports its dtype and shape,
 * and hands out the rows (first-axis slices) in order, converted to float32, float64 or int32, a
 * chunk at a time, so that a file far larger than memory can be measured (collapse measure,
 * issue 13). Only the chunk the caller asks for is ever held. The header is parsed by the one NPY
 * header parser, collapse_io_npy_parse (io/npy.c), as for whole files and .npz members.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/npz_internal.h"

#define NPY_ROWS_MAX_HEADER (1 << 20)

struct collapse_npy_rows {
    io_reader r;        /* a plain (or gzip) .npy file, or ... */
    io_zip zip;         /* ... an archive and its member m (in_zip) */
    io_npz_member m;
    int in_zip;
    char *path;         /* "file.npy" or "archive.npz[member.npy]" for messages */
    char *archive;      /* the archive path (io_zip keeps a pointer to it) */
    io_npy_info info;
    int64_t row_elems, next;
    unsigned char *raw;
    size_t raw_cap;
};

/* Element counts of the parsed header: row_elems, and a bound on the whole array. */
static collapse_status rows_layout(collapse_npy_rows *r) {
    r->row_elems = 1;
    for (int i = 1; i < r->info.ndim; i++)
        if (!io_mul_i64(r->row_elems, r->info.shape[i], &r->row_elems))
            return collapse_fail(COLLAPSE_ERR_FORMAT, "npy_rows: %s: corrupt header, 'shape' overflows", r->path);
    int64_t total = 0;
    if (r->info.ndim > 0 && (!io_mul_i64(r->row_elems, r->info.shape[0], &total) || total > IO_MAX_BYTES / 8))
        return collapse_fail(COLLAPSE_ERR_FORMAT, "npy_rows: %s: corrupt header, 'shape' is too large", r->path);
    return COLLAPSE_OK;
}

/* Magic, version and header length, then the header text (plain files; members: npz.c). */
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
    if (hlen > NPY_ROWS_MAX_HEADER)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "npy_rows: %s: corrupt header, longer than 1 MiB", r->path);
    unsigned char *raw = NULL;
    COLLAPSE_TRY(collapse_io_read_exact(&r->r, hlen, "header", &raw));
    collapse_status st = collapse_io_npy_parse(r->path, (const char *)raw, (size_t)hlen, &r->info);
    free(raw);
    return st;
}

static char *dup_str(const char *s) {
    char *p = malloc(strlen(s) + 1);
    if (p) strcpy(p, s);
    return p;
}

/* A zeroed reader holding a copy of name as its path (or archive); NULL when out of memory. */
static collapse_npy_rows *rows_alloc(const char *name, int archive) {
    collapse_npy_rows *r = calloc(1, sizeof *r);
    char *p = r ? dup_str(name) : NULL;
    if (!p) {
        free(r);
        return NULL;
    }
    if (archive) r->archive = p;
    else r->path = p;
    return r;
}

collapse_status collapse_npy_rows_open(const char *path, collapse_npy_rows **out) {
    if (!out) return collapse_fail(COLLAPSE_ERR_ARG, "npy_rows_open: out expected, got NULL");
    *out = NULL;
    if (!path) return collapse_fail(COLLAPSE_ERR_ARG, "npy_rows_open: path expected, got NULL");
    collapse_npy_rows *r = rows_alloc(path, 0);
    if (!r) return collapse_fail(COLLAPSE_ERR_NOMEM, "npy_rows_open: out of memory");
    collapse_status st = collapse_io_reader_open(&r->r, "npy_rows", path);
    if (st != COLLAPSE_OK) {
        free(r->path);
        free(r);
        return st;
    }
    st = rows_header(r);
    if (st == COLLAPSE_OK) st = rows_layout(r);
    if (st != COLLAPSE_OK) {
        collapse_npy_rows_close(r);
        return st;
    }
    *out = r;
    return COLLAPSE_OK;
}

collapse_status collapse_npy_rows_open_npz(const char *archive, const char *member, collapse_npy_rows **out) {
    static const char fn[] = "npy_rows_open_npz";
    if (!out) return collapse_fail(COLLAPSE_ERR_ARG, "%s: out expected, got NULL", fn);
    *out = NULL;
    if (!archive || !member) return collapse_fail(COLLAPSE_ERR_ARG, "%s: archive and member expected, got NULL", fn);
    collapse_npy_rows *r = rows_alloc(archive, 1);
    if (!r) return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: out of memory", fn);
    collapse_status st = collapse_io_zip_open(&r->zip, "npy_rows", r->archive);
    if (st != COLLAPSE_OK) {
        free(r->archive);
        free(r);
        return st;
    }
    const io_zip_entry *e = collapse_io_npz_find(&r->zip, member);
    if (!e) {
        char names[512] = "";
        for (int i = 0; i < r->zip.count && strlen(names) < 400; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s'%.*s'", i ? ", " : "",
                     (int)(strlen(r->zip.entries[i].name) > 4 ? strlen(r->zip.entries[i].name) - 4 : 0),
                     r->zip.entries[i].name);
        st = collapse_fail(COLLAPSE_ERR_ARG, "%s: '%s' has no member '%s' (members: %s)", fn, archive, member,
                           r->zip.count ? names : "none");
    }
    if (st == COLLAPSE_OK) st = collapse_io_npz_member_open(&r->zip, e, &r->m);
    if (st == COLLAPSE_OK) {
        r->in_zip = 1;
        r->info = r->m.info;
        r->path = dup_str(r->m.where);
        if (!r->path) st = collapse_fail(COLLAPSE_ERR_NOMEM, "%s: out of memory", fn);
    }
    if (st == COLLAPSE_OK) st = rows_layout(r);
    if (st != COLLAPSE_OK) {
        collapse_npy_rows_close(r);
        return st;
    }
    *out = r;
    return COLLAPSE_OK;
}

void collapse_npy_rows_close(collapse_npy_rows *r) {
    if (!r) return;
    if (r->in_zip) collapse_io_npz_member_close(&r->m);
    if (r->archive) collapse_io_zip_close(&r->zip);
    else collapse_io_reader_close(&r->r);
    free(r->raw);
    free(r->path);
    free(r->archive);
    free(r);
}

int collapse_npy_rows_shape(const collapse_npy_rows *r, int64_t *shape) {
    if (!r) return -1;
    if (shape) memcpy(shape, r->info.shape, (size_t)r->info.ndim * sizeof(int64_t));
    return r->info.ndim;
}

int collapse_npy_rows_is_float(const collapse_npy_rows *r) {
    return r && (r->info.st == IO_F32 || r->info.st == IO_F64);
}
int collapse_npy_rows_is_float32(const collapse_npy_rows *r) { return r && r->info.st == IO_F32; }

collapse_status collapse_npy_rows_read(collapse_npy_rows *r, collapse_dtype dtype, int64_t max_rows, void *out,
                                       int64_t *got_rows) {
    static const char fn[] = "npy_rows_read";
    if (!got_rows) return collapse_fail(COLLAPSE_ERR_ARG, "%s: got_rows expected, got NULL", fn);
    *got_rows = 0;
    if (!r || !out) return collapse_fail(COLLAPSE_ERR_ARG, "%s: reader and out expected, got NULL", fn);
    if (max_rows < 1) return collapse_fail(COLLAPSE_ERR_ARG, "%s: max_rows must be >= 1, got %lld", fn, (long long)max_rows);
    if (dtype != COLLAPSE_FLOAT32 && dtype != COLLAPSE_FLOAT64 && dtype != COLLAPSE_INT32)
        return collapse_fail(COLLAPSE_ERR_DTYPE, "%s: dtype must be float32, float64 or int32", fn);
    int64_t rows_total = r->info.ndim == 0 ? 1 : r->info.shape[0];
    int64_t rows = rows_total - r->next < max_rows ? rows_total - r->next : max_rows;
    if (rows <= 0) return COLLAPSE_OK;
    size_t isz = collapse_io_scalar_size(r->info.st);
    int64_t elems = rows * r->row_elems;
    size_t bytes = (size_t)elems * isz;
    if (bytes > r->raw_cap) {
        unsigned char *nb = realloc(r->raw, bytes);
        if (!nb) return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: out of memory for %lld rows", fn, (long long)rows);
        r->raw = nb;
        r->raw_cap = bytes;
    }
    size_t got = 0;
    if (r->in_zip) COLLAPSE_TRY(collapse_io_zip_stream_read(&r->m.s, r->raw, bytes, &got));
    else COLLAPSE_TRY(collapse_io_reader_read(&r->r, r->raw, bytes, &got));
    if (got < bytes)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "npy_rows: %s: truncated data, rows %lld..%lld of %lld are missing",
                             r->path, (long long)(r->next + (int64_t)(got / isz / (size_t)(r->row_elems ? r->row_elems : 1))),
                             (long long)(rows_total - 1), (long long)rows_total);
    COLLAPSE_TRY(collapse_io_convert("npy_rows", r->path, r->raw, elems, r->info.st, r->info.big, dtype, 0, 0, out));
    r->next += rows;
    *got_rows = rows;
    return COLLAPSE_OK;
}
