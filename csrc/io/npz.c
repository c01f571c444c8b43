/*
 * NumPy .npz archives (np.savez: stored members, np.savez_compressed: deflated): every member is
 * an NPY file, read through the zip stream straight into its output buffer in chunks (no copy of
 * the whole member). Integer members become int32 (range-checked), uint8 becomes float32 in
 * [0, 1] when asked (images), float32/float64 stay as stored.
 */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "io/npz_internal.h"

#define NPZ_CHUNK ((size_t)1 << 20)

const io_zip_entry *collapse_io_npz_find(const io_zip *z, const char *name) {
    size_t n = strlen(name);
    for (int i = 0; i < z->count; i++) {
        const char *m = z->entries[i].name;
        if (!strcmp(m, name)) return &z->entries[i];
        if (strlen(m) == n + 4 && !strncmp(m, name, n) && !strcmp(m + n, ".npy")) return &z->entries[i];
    }
    return NULL;
}

collapse_dtype collapse_io_npz_out_dtype(const io_npy_info *info, int scale_u8) {
    if (info->st == IO_F32) return COLLAPSE_FLOAT32;
    if (info->st == IO_F64) return COLLAPSE_FLOAT64;
    if (info->st == IO_U8 && scale_u8) return COLLAPSE_FLOAT32;
    return COLLAPSE_INT32;
}

static collapse_status npz_read_exact(io_npz_member *m, void *buf, size_t n, const char *what) {
    size_t got = 0;
    COLLAPSE_TRY(collapse_io_zip_stream_read(&m->s, buf, n, &got));
    if (got < n)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "npz: %s: truncated %s, expected %zu bytes, got %zu", m->where, what, n,
                             got);
    return COLLAPSE_OK;
}

/* Preamble and header; fills m->info. */
static collapse_status npz_read_header(io_npz_member *m) {
    unsigned char pre[12];
    COLLAPSE_TRY(npz_read_exact(m, pre, 10, "NPY preamble"));
    if (memcmp(pre, "\x93NUMPY", 6) != 0)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "npz: %s: member is not an NPY array (bad magic, expected \\x93NUMPY)",
                             m->where);
    int major = pre[6];
    if ((major != 1 && major != 2 && major != 3) || pre[7] != 0)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "npz: %s: unsupported NPY version %d.%d, expected 1.0, 2.0 or 3.0",
                             m->where, major, pre[7]);
    uint64_t hlen = pre[8] | ((uint32_t)pre[9] << 8);
    if (major > 1) {
        COLLAPSE_TRY(npz_read_exact(m, pre + 10, 2, "NPY preamble"));
        hlen |= ((uint64_t)pre[10] << 16) | ((uint64_t)pre[11] << 24);
    }
    if (hlen > m->s.e->usize)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "npz: %s: header length %llu is larger than the member", m->where,
                             (unsigned long long)hlen);
    char *text = malloc(hlen ? (size_t)hlen : 1);
    if (!text) return collapse_fail(COLLAPSE_ERR_NOMEM, "npz: %s: out of memory", m->where);
    collapse_status s = npz_read_exact(m, text, (size_t)hlen, "NPY header");
    if (s == COLLAPSE_OK) s = collapse_io_npy_parse(m->where, text, (size_t)hlen, &m->info);
    free(text);
    return s;
}

collapse_status collapse_io_npz_member_open(io_zip *z, const io_zip_entry *e, io_npz_member *m) {
    memset(m, 0, offsetof(io_npz_member, s));
    snprintf(m->where, sizeof m->where, "%s[%s]", z->path, e->name);
    collapse_status s = collapse_io_zip_stream_open(z, e, &m->s);
    if (s == COLLAPSE_OK) s = npz_read_header(m);
    int64_t numel = 1, bytes = 0;
    for (int i = 0; s == COLLAPSE_OK && i < m->info.ndim; i++)
        if (!io_mul_i64(numel, m->info.shape[i], &numel)) numel = -1;
    if (s == COLLAPSE_OK && (numel < 0 || !io_mul_i64(numel, (int64_t)collapse_io_scalar_size(m->info.st), &bytes)))
        s = collapse_fail(COLLAPSE_ERR_FORMAT, "npz: %s: shape overflows the element count", m->where);
    if (s == COLLAPSE_OK && (uint64_t)bytes != e->usize - m->s.produced) {
        char shp[256];
        cl_shape_str(m->info.ndim, m->info.shape, shp, sizeof shp);
        s = collapse_fail(COLLAPSE_ERR_FORMAT,
                          "npz: %s: shape %s '%s' needs %lld bytes of data, the member holds %llu (truncated or corrupt)",
                          m->where, shp, m->info.descr, (long long)bytes,
                          (unsigned long long)(e->usize - m->s.produced));
    }
    if (s != COLLAPSE_OK) {
        collapse_io_zip_stream_close(&m->s);
        return s;
    }
    m->rows = m->info.ndim ? m->info.shape[0] : 1;
    m->row_elems = m->rows ? numel / m->rows : 0;
    if (m->info.ndim == 0) m->row_elems = numel;
    return COLLAPSE_OK;
}

collapse_status collapse_io_npz_member_read(io_npz_member *m, int64_t rows, int scale_u8, void *out) {
    collapse_dtype dt = collapse_io_npz_out_dtype(&m->info, scale_u8);
    size_t es = collapse_io_scalar_size(m->info.st), os = collapse_dtype_size(dt);
    int64_t n = rows * m->row_elems;
    static const uint16_t one = 1;
    int direct = (size_t)es == os && m->info.big == (*(const unsigned char *)&one == 0) && m->info.st != IO_U32;
    unsigned char *tmp = direct ? NULL : malloc(NPZ_CHUNK);
    if (!direct && !tmp) return collapse_fail(COLLAPSE_ERR_NOMEM, "npz: %s: out of memory", m->where);
    collapse_status s = COLLAPSE_OK;
    for (int64_t done = 0; s == COLLAPSE_OK && done < n;) {
        size_t k = (size_t)(n - done) < NPZ_CHUNK / es ? (size_t)(n - done) : NPZ_CHUNK / es;
        unsigned char *dst = (unsigned char *)out + (size_t)done * os;
        s = npz_read_exact(m, direct ? dst : tmp, k * es, "data");
        if (s == COLLAPSE_OK && !direct)
            s = collapse_io_convert("npz", m->where, tmp, (int64_t)k, m->info.st, m->info.big, dt, scale_u8, 0, dst);
        done += (int64_t)k;
    }
    free(tmp);
    return s;
}

void collapse_io_npz_member_close(io_npz_member *m) { collapse_io_zip_stream_close(&m->s); }

/* ---- public: every member of an archive -------------------------------------------------- */

static collapse_status npz_read_one(io_zip *z, const io_zip_entry *e, collapse_array *a) {
    io_npz_member m;
    COLLAPSE_TRY(collapse_io_npz_member_open(z, e, &m));
    collapse_dtype dt = collapse_io_npz_out_dtype(&m.info, 0);
    int64_t bytes = m.rows * m.row_elems * (int64_t)collapse_dtype_size(dt);
    void *data = malloc(bytes > 0 ? (size_t)bytes : 1);
    collapse_status s = data ? collapse_io_npz_member_read(&m, m.rows, 0, data)
                             : collapse_fail(COLLAPSE_ERR_NOMEM, "npz: %s: cannot allocate %lld bytes", m.where,
                                             (long long)bytes);
    collapse_io_npz_member_close(&m);
    if (s != COLLAPSE_OK) {
        free(data);
        return s;
    }
    a->dtype = dt;
    a->ndim = m.info.ndim;
    for (int i = 0; i < m.info.ndim; i++) a->shape[i] = m.info.shape[i];
    a->data = data;
    return COLLAPSE_OK;
}

collapse_status collapse_npz_read(const char *path, collapse_npz *out) {
    if (!out) return collapse_fail(COLLAPSE_ERR_ARG, "npz: out expected, got NULL");
    memset(out, 0, sizeof *out);
    io_zip z;
    COLLAPSE_TRY(collapse_io_zip_open(&z, "npz", path));
    collapse_status s = COLLAPSE_OK;
    out->names = calloc(z.count ? (size_t)z.count : 1, sizeof *out->names);
    out->arrays = calloc(z.count ? (size_t)z.count : 1, sizeof *out->arrays);
    if (!out->names || !out->arrays) s = collapse_fail(COLLAPSE_ERR_NOMEM, "npz: %s: out of memory", path);
    for (int i = 0; s == COLLAPSE_OK && i < z.count; i++) {
        const char *name = z.entries[i].name;
        size_t n = strlen(name);
        if (n < 5 || strcmp(name + n - 4, ".npy") != 0) {
            s = collapse_fail(COLLAPSE_ERR_FORMAT, "npz: %s: member '%s' is not an .npy file (not a NumPy .npz archive?)",
                              path, name);
            break;
        }
        out->names[i] = malloc(n - 3);
        if (!out->names[i]) { s = collapse_fail(COLLAPSE_ERR_NOMEM, "npz: %s: out of memory", path); break; }
        memcpy(out->names[i], name, n - 4);
        out->names[i][n - 4] = '\0';
        out->count = i + 1;
        s = npz_read_one(&z, &z.entries[i], &out->arrays[i]);
    }
    collapse_io_zip_close(&z);
    if (s != COLLAPSE_OK) collapse_npz_free(out);
    return s;
}

void collapse_npz_free(collapse_npz *z) {
    if (!z) return;
    for (int i = 0; i < z->count; i++) {
        if (z->names) free(z->names[i]);
        if (z->arrays) collapse_array_free(&z->arrays[i]);
    }
    free(z->names);
    free(z->arrays);
    memset(z, 0, sizeof *z);
}
