/*
 * NPY reader (format versions 1.0, 2.0, 3.0) and writer (1.0).
 *
 * Layout: "\x93NUMPY", major, minor, header length (uint16 LE for 1.0, uint32 LE for 2.0/3.0),
 * then a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * padded with spaces and a newline, then the raw data. The header is parsed by a small strict
 * parser (not eval'd): exactly the three keys, string / bool / tuple-of-int values.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io_internal.h"
#include "io/npz_internal.h"

#define NPY_MAX_HEADER (1 << 20)

/* ---- header parsing ------------------------------------------------------------ */

typedef struct npy_parser {
    const char *p, *end;
    const char *path;
} npy_parser;

static void hp_ws(npy_parser *h) {
    while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r')) h->p++;
}

static collapse_status hp_bad(npy_parser *h, const char *what) {
    /* show a short excerpt of where parsing stopped */
    char near[24];
    size_t k = 0;
    for (const char *q = h->p; q < h->end && k < sizeof near - 1; q++)
        near[k++] = (*q >= 32 && *q < 127) ? *q : '?';
    near[k] = '\0';
    return collapse_fail(COLLAPSE_ERR_FORMAT, "npy: %s: corrupt header, expected %s at \"%s\"", h->path, what,
                         k ? near : "<end of header>");
}

static collapse_status hp_expect(npy_parser *h, char c, const char *what) {
    hp_ws(h);
    if (h->p >= h->end || *h->p != c) return hp_bad(h, what);
    h->p++;
    return COLLAPSE_OK;
}

static collapse_status hp_string(npy_parser *h, char *buf, size_t cap, const char *what) {
    hp_ws(h);
    if (h->p >= h->end || (*h->p != '\'' && *h->p != '"')) return hp_bad(h, what);
    char q = *h->p++;
    size_t k = 0;
    while (h->p < h->end && *h->p != q) {
        if (*h->p == '\\' || k + 1 >= cap) return hp_bad(h, what);
        buf[k++] = *h->p++;
    }
    if (h->p >= h->end) return hp_bad(h, "a closing quote");
    h->p++;
    buf[k] = '\0';
    return COLLAPSE_OK;
}

static int hp_word(npy_parser *h, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(h->end - h->p) < n || memcmp(h->p, word, n) != 0) return 0;
    h->p += n;
    return 1;
}

static collapse_status hp_shape(npy_parser *h, int *ndim, int64_t *shape) {
    COLLAPSE_TRY(hp_expect(h, '(', "'(' opening the shape tuple"));
    int n = 0;
    for (;;) {
        hp_ws(h);
        if (h->p < h->end && *h->p == ')') break;
        if (h->p >= h->end || *h->p < '0' || *h->p > '9') return hp_bad(h, "a non-negative integer in the shape");
        int64_t v = 0;
        while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
            int d = *h->p - '0';
            if (v > (INT64_MAX - d) / 10)
                return collapse_fail(COLLAPSE_ERR_FORMAT, "npy: %s: corrupt header, a shape entry overflows int64",
                                     h->path);
            v = v * 10 + d;
            h->p++;
        }
        if (h->p < h->end && (*h->p == 'L' || *h->p == 'l')) h->p++; /* Python 2 longs */
        if (n >= COLLAPSE_MAX_DIMS)
            return collapse_fail(COLLAPSE_ERR_FORMAT, "npy: %s: shape has more than %d dimensions", h->path,
                                 COLLAPSE_MAX_DIMS);
        shape[n++] = v;
        hp_ws(h);
        if (h->p < h->end && *h->p == ',') { h->p++; continue; }
        if (h->p < h->end && *h->p == ')') break;
        return hp_bad(h, "',' or ')' in the shape tuple");
    }
    h->p++; /* ')' */
    *ndim = n;
    return COLLAPSE_OK;
}

typedef struct npy_header {
    char descr[32];
    int fortran;
    int ndim;
    int64_t shape[COLLAPSE_MAX_DIMS];
} npy_header;

static collapse_status npy_parse_header(const char *path, const char *text, size_t len, npy_header *hd) {
    npy_parser h = {text, text + len, path};
    int have_descr = 0, have_fortran = 0, have_shape = 0;
    COLLAPSE_TRY(hp_expect(&h, '{', "'{' opening the header dict"));
    for (;;) {
        hp_ws(&h);
        if (h.p < h.end && *h.p == '}') break;
        char key[32];
        COLLAPSE_TRY(hp_string(&h, key, sizeof key, "a quoted key ('descr', 'fortran_order' or 'shape')"));
        COLLAPSE_TRY(hp_expect(&h, ':', "':' after a key"));
        hp_ws(&h);
        if (!strcmp(key, "descr")) {
            if (have_descr++) return collapse_fail(COLLAPSE_ERR_FORMAT, "npy: %s: corrupt header, 'descr' given twice", path);
            if (h.p < h.end && (*h.p == '[' || *h.p == '('))
                return collapse_fail(COLLAPSE_ERR_DTYPE,
                                     "npy: %s: structured dtype in the header, expected a plain numeric dtype "
                                     "('<f4', '<f8', '<i4', '<i8', '|u1')",
                                     path);
            COLLAPSE_TRY(hp_string(&h, hd->descr, sizeof hd->descr, "a quoted dtype string for 'descr'"));
        } else if (!strcmp(key, "fortran_order")) {
            if (have_fortran++)
                return collapse_fail(COLLAPSE_ERR_FORMAT, "npy: %s: corrupt header, 'fortran_order' given twice", path);
            if (hp_word(&h, "True")) hd->fortran = 1;
            else if (hp_word(&h, "False")) hd->fortran = 0;
            else return hp_bad(&h, "True or False for 'fortran_order'");
        } else if (!strcmp(key, "shape")) {
            if (have_shape++) return collapse_fail(COLLAPSE_ERR_FORMAT, "npy: %s: corrupt header, 'shape' given twice", path);
            COLLAPSE_TRY(hp_shape(&h, &hd->ndim, hd->shape));
        } else {
            return collapse_fail(COLLAPSE_ERR_FORMAT,
                                 "npy: %s: corrupt header, unexpected key '%s' (expected 'descr', 'fortran_order', 'shape')",
                                 path, key);
        }
        hp_ws(&h);
        if (h.p < h.end && *h.p == ',') { h.p++; continue; }
        if (h.p < h.end && *h.p == '}') break;
        return hp_bad(&h, "',' or '}' in the header dict");
    }
    h.p++; /* '}' */
    hp_ws(&h);
    while (h.p < h.end && *h.p == '\0') h.p++; /* some writers pad with NULs */
    if (h.p != h.end) return hp_bad(&h, "only padding after the header dict");
    if (!have_descr || !have_fortran || !have_shape)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "npy: %s: corrupt header, key '%s' missing", path,
                             !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
    return COLLAPSE_OK;
}

/* '<f4' -> scalar type and byte order. */
static int npy_descr(const char *d, io_scalar *st, int *big) {
    static const uint16_t one = 1;
    int host_big = *(const unsigned char *)&one == 0;
    char order = '=';
    if (*d == '<' || *d == '>' || *d == '|' || *d == '=') order = *d++;
    char kind = *d++;
    if (!kind) return 0;
    int size = 0;
    if (!strcmp(d, "1")) size = 1;
    else if (!strcmp(d, "2")) size = 2;
    else if (!strcmp(d, "4")) size = 4;
    else if (!strcmp(d, "8")) size = 8;
    else return 0;
    if (order == '|' && size != 1) return 0;
    *big = order == '>' || (order == '=' && host_big);
    switch (kind) {
    case 'f': if (size == 4) *st = IO_F32; else if (size == 8) *st = IO_F64; else return 0; return 1;
    case 'i': *st = size == 1 ? IO_I8 : size == 2 ? IO_I16 : size == 4 ? IO_I32 : IO_I64; return 1;
    case 'u': *st = size == 1 ? IO_U8 : size == 2 ? IO_U16 : size == 4 ? IO_U32 : IO_U64; return 1;
    }
    return 0;
}

/* ---- reading --------------------------------------------------------------------- */

/* Magic, version and header length, then the parsed header dict. */
static collapse_status npy_read_header(io_reader *r, const char *path, npy_header *hd) {
    unsigned char pre[12];
    size_t got = 0;
    COLLAPSE_TRY(collapse_io_reader_read(r, pre, 10, &got));
    if (got >= 6 && memcmp(pre, "\x93NUMPY", 6) != 0)
        return collapse_fail(COLLAPSE_ERR_FORMAT,
                             "npy: %s: bad magic %02x %02x %02x %02x %02x %02x, expected \\x93NUMPY (not an .npy file)",
                             path, pre[0], pre[1], pre[2], pre[3], pre[4], pre[5]);
    if (got < 10)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "npy: %s: truncated header, expected at least 10 bytes, got %zu", path, got);
    int major = pre[6], minor = pre[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "npy: %s: unsupported format version %d.%d, expected 1.0, 2.0 or 3.0",
                             path, major, minor);
    int64_t hlen;
    if (major == 1) {
        hlen = pre[8] | (pre[9] << 8);
    } else {
        COLLAPSE_TRY(collapse_io_reader_read(r, pre + 10, 2, &got));
        if (got < 2)
            return collapse_fail(COLLAPSE_ERR_FORMAT, "npy: %s: truncated header, expected 12 bytes, got %zu", path,
                                 10 + got);
        hlen = (int64_t)pre[8] | ((int64_t)pre[9] << 8) | ((int64_t)pre[10] << 16) | ((int64_t)pre[11] << 24);
    }
    if (hlen > NPY_MAX_HEADER)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "npy: %s: header length %lld is larger than the limit of %d bytes", path,
                             (long long)hlen, NPY_MAX_HEADER);
    unsigned char *text = NULL;
    COLLAPSE_TRY(collapse_io_read_exact(r, hlen, "header", &text));
    memset(hd, 0, sizeof *hd);
    collapse_status s = npy_parse_header(path, (const char *)text, (size_t)hlen, hd);
    free(text);
    return s;
}

/* What the header describes: element type, output dtype, element count and byte sizes, all
 * checked (overflow, the size limit) before anything is allocated. */
typedef struct npy_layout {
    io_scalar st;
    int big;
    collapse_dtype dtype;
    int64_t n, in_bytes, out_bytes;
    char shp[256];
} npy_layout;

static collapse_status npy_check_layout(const char *path, const npy_header *hd, npy_layout *L) {
    L->big = 0;
    if (!npy_descr(hd->descr, &L->st, &L->big))
        return collapse_fail(COLLAPSE_ERR_DTYPE,
                             "npy: %s: unsupported dtype '%s', expected float32 '<f4', float64 '<f8' or an integer "
                             "type ('<i4', '<i8', '|u1', '<i2', '|i1', '<u2', '<u4', '<u8'; any byte order)",
                             path, hd->descr);
    cl_shape_str(hd->ndim, hd->shape, L->shp, sizeof L->shp);
    if (hd->fortran)
        return collapse_fail(COLLAPSE_ERR_FORMAT,
                             "npy: %s: fortran_order is True (%s '%s'), only C-order arrays are supported; save "
                             "np.ascontiguousarray(a) instead",
                             path, L->shp, hd->descr);
    L->dtype = L->st == IO_F32 ? COLLAPSE_FLOAT32 : L->st == IO_F64 ? COLLAPSE_FLOAT64 : COLLAPSE_INT32;
    int64_t n = 1, tmp;
    for (int i = 0; i < hd->ndim; i++)
        if (!io_mul_i64(n, hd->shape[i], &n)) n = -1;
    if (n < 0 || !io_mul_i64(n, 8, &tmp))
        return collapse_fail(COLLAPSE_ERR_FORMAT, "npy: %s: shape %s overflows the element count", path, L->shp);
    L->n = n;
    L->in_bytes = n * (int64_t)collapse_io_scalar_size(L->st);
    L->out_bytes = n * (int64_t)collapse_dtype_size(L->dtype);
    if (L->in_bytes > IO_MAX_BYTES || L->out_bytes > IO_MAX_BYTES)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "npy: %s: shape %s '%s' needs %lld bytes, more than the limit of %lld",
                             path, L->shp, hd->descr, (long long)L->in_bytes, (long long)IO_MAX_BYTES);
    return COLLAPSE_OK;
}

/* Exactly in_bytes of data and nothing after them (a complete gzip stream). */
static collapse_status npy_read_data(io_reader *r, const char *path, const char *descr, const npy_layout *L,
                                     unsigned char **raw) {
    COLLAPSE_TRY(collapse_io_read_exact(r, L->in_bytes, "data", raw));
    unsigned char extra;
    size_t got = 0;
    collapse_status s = collapse_io_reader_read(r, &extra, 1, &got);
    if (s == COLLAPSE_OK && got > 0)
        s = collapse_fail(COLLAPSE_ERR_FORMAT,
                          "npy: %s: unexpected data after the array, shape %s '%s' accounts for %lld bytes of data", path,
                          L->shp, descr, (long long)L->in_bytes);
    else if (s == COLLAPSE_OK && r->gz_truncated)
        s = collapse_fail(COLLAPSE_ERR_FORMAT, "npy: %s: truncated gzip stream (its trailer is missing)", path);
    if (s != COLLAPSE_OK) {
        free(*raw);
        *raw = NULL;
    }
    return s;
}

/* Turns the raw bytes into the output dtype: in place when the widths match, else a converted copy.
 * Takes ownership of raw. */
static collapse_status npy_to_dtype(const char *path, const npy_layout *L, unsigned char *raw, void **data) {
    if (collapse_dtype_size(L->dtype) == collapse_io_scalar_size(L->st) &&
        (L->st == IO_F32 || L->st == IO_F64 || L->st == IO_I32)) {
        static const uint16_t one = 1;
        int host_big = *(const unsigned char *)&one == 0;
        if (L->big != host_big) {
            size_t es = collapse_io_scalar_size(L->st);
            for (int64_t i = 0; i < L->n; i++) {
                unsigned char *e = raw + (size_t)i * es;
                for (size_t a = 0, b = es - 1; a < b; a++, b--) {
                    unsigned char t = e[a];
                    e[a] = e[b];
                    e[b] = t;
                }
            }
        }
        *data = raw;
        return COLLAPSE_OK;
    }
    *data = malloc(L->out_bytes > 0 ? (size_t)L->out_bytes : 1);
    if (!*data) {
        free(raw);
        return collapse_fail(COLLAPSE_ERR_NOMEM, "npy: %s: cannot allocate %lld bytes", path, (long long)L->out_bytes);
    }
    cl_advise_huge_pages(*data, (size_t)L->out_bytes);
    collapse_status s = collapse_io_convert("npy", path, raw, L->n, L->st, L->big, L->dtype, 0, 0, *data);
    free(raw);
    if (s != COLLAPSE_OK) {
        free(*data);
        *data = NULL;
    }
    return s;
}

static collapse_status npy_read_stream(io_reader *r, const char *path, collapse_array *out) {
    npy_header hd;
    COLLAPSE_TRY(npy_read_header(r, path, &hd));
    npy_layout L;
    COLLAPSE_TRY(npy_check_layout(path, &hd, &L));
    unsigned char *raw = NULL;
    COLLAPSE_TRY(npy_read_data(r, path, hd.descr, &L, &raw));
    void *data = NULL;
    COLLAPSE_TRY(npy_to_dtype(path, &L, raw, &data));
    out->dtype = L.dtype;
    out->ndim = hd.ndim;
    for (int i = 0; i < hd.ndim; i++) out->shape[i] = hd.shape[i];
    out->data = data;
    return COLLAPSE_OK;
}

collapse_status collapse_npy_read(const char *path, collapse_array *out) {
    if (!out) return collapse_fail(COLLAPSE_ERR_ARG, "npy: out array expected, got NULL");
    memset(out, 0, sizeof *out);
    io_reader r;
    COLLAPSE_TRY(collapse_io_reader_open(&r, "npy", path));
    collapse_status s = npy_read_stream(&r, path, out);
    collapse_io_reader_close(&r);
    return s;
}

/* ---- writing ---------------------------------------------------------------------- */

/* Builds the v1.0 preamble + header exactly as numpy (>= 1.24) writes it. Returns its length. */
static size_t npy_make_header(char *buf, size_t cap, const char *descr, int ndim, const int64_t *shape) {
    char dict[512];
    int k = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < ndim; i++) k += snprintf(dict + k, sizeof dict - (size_t)k, i ? ", %lld" : "%lld", (long long)shape[i]);
    k += snprintf(dict + k, sizeof dict - (size_t)k, "%s), }", ndim == 1 ? "," : "");
    if (ndim > 0) {
        /* numpy leaves room to grow the first axis in place: 21 digits minus those used */
        char first[32];
        int used = snprintf(first, sizeof first, "%lld", (long long)shape[0]);
        for (int i = used; i < 21; i++) dict[k++] = ' ';
        dict[k] = '\0';
    }
    size_t hlen = (size_t)k + 1; /* + '\n' */
    size_t pad = 64 - ((10 + hlen) % 64);
    size_t total = 10 + hlen + pad;
    if (total > cap) return 0;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    size_t field = hlen + pad;
    buf[8] = (char)(field & 0xff);
    buf[9] = (char)(field >> 8);
    memcpy(buf + 10, dict, (size_t)k);
    memset(buf + 10 + k, ' ', pad);
    buf[total - 1] = '\n';
    return total;
}

collapse_status collapse_npy_write(const char *path, collapse_dtype dtype, int ndim, const int64_t *shape,
                                   const void *data) {
    const char *descr;
    switch (dtype) {
    case COLLAPSE_FLOAT32: descr = "<f4"; break;
    case COLLAPSE_FLOAT64: descr = "<f8"; break;
    case COLLAPSE_INT32: descr = "<i4"; break;
    default:
        return collapse_fail(COLLAPSE_ERR_DTYPE, "npy_write: unknown dtype %d, expected float32, float64 or int32",
                             (int)dtype);
    }
    if (!path) return collapse_fail(COLLAPSE_ERR_ARG, "npy_write: path expected, got NULL");
    if (ndim < 0 || ndim > COLLAPSE_MAX_DIMS)
        return collapse_fail(COLLAPSE_ERR_ARG, "npy_write: ndim %d, expected 0..%d", ndim, COLLAPSE_MAX_DIMS);
    if (ndim > 0 && !shape) return collapse_fail(COLLAPSE_ERR_ARG, "npy_write: shape expected, got NULL");
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return collapse_fail(COLLAPSE_ERR_ARG, "npy_write: shape[%d] = %lld, expected >= 0", i, (long long)shape[i]);
        if (!io_mul_i64(n, shape[i], &n))
            return collapse_fail(COLLAPSE_ERR_ARG, "npy_write: shape overflows the element count");
    }
    int64_t bytes;
    if (!io_mul_i64(n, (int64_t)collapse_dtype_size(dtype), &bytes) || (uint64_t)bytes > SIZE_MAX)
        return collapse_fail(COLLAPSE_ERR_ARG, "npy_write: shape overflows the byte count");
    if (!data && n > 0)
        return collapse_fail(COLLAPSE_ERR_ARG, "npy_write: data is NULL for %lld elements", (long long)n);

    char header[1024];
    size_t hl = npy_make_header(header, sizeof header, descr, ndim, shape);
    if (!hl) return collapse_fail(COLLAPSE_ERR_ARG, "npy_write: header too long");

    io_atomic w;
    COLLAPSE_TRY(collapse_io_atomic_open(&w, "npy_write", path));
    collapse_status s = collapse_io_atomic_write(&w, header, hl);
    static const uint16_t one = 1;
    int host_big = *(const unsigned char *)&one == 0;
    if (s == COLLAPSE_OK && bytes > 0) {
        if (!host_big) {
            s = collapse_io_atomic_write(&w, data, (size_t)bytes);
        } else {
            /* big-endian host: store little-endian in chunks */
            unsigned char tmp[1 << 16];
            const unsigned char *src = data;
            size_t es = collapse_dtype_size(dtype), done = 0;
            while (s == COLLAPSE_OK && done < (size_t)bytes) {
                size_t chunk = (size_t)bytes - done < sizeof tmp ? (size_t)bytes - done : sizeof tmp;
                for (size_t i = 0; i < chunk; i += es)
                    for (size_t b = 0; b < es; b++) tmp[i + b] = src[done + i + es - 1 - b];
                s = collapse_io_atomic_write(&w, tmp, chunk);
                done += chunk;
            }
        }
    }
    if (s != COLLAPSE_OK) {
        collapse_io_atomic_abort(&w);
        return s;
    }
    return collapse_io_atomic_commit(&w);
}

/* ---- shared with the .npz reader (io/npz_internal.h) --------------------------------- */

collapse_status collapse_io_npy_parse(const char *where, const char *text, size_t len, io_npy_info *info) {
    npy_header hd;
    memset(&hd, 0, sizeof hd);
    memset(info, 0, sizeof *info);
    COLLAPSE_TRY(npy_parse_header(where, text, len, &hd));
    if (!npy_descr(hd.descr, &info->st, &info->big))
        return collapse_fail(COLLAPSE_ERR_DTYPE,
                             "npy: %s: unsupported dtype '%s', expected float32 '<f4', float64 '<f8' or an integer "
                             "type ('|u1', '<i4', '<i8', ...)",
                             where, hd.descr);
    if (hd.fortran)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "npy: %s: fortran_order is True, only C-order arrays are supported",
                             where);
    info->ndim = hd.ndim;
    for (int i = 0; i < hd.ndim; i++) info->shape[i] = hd.shape[i];
    snprintf(info->descr, sizeof info->descr, "%s", hd.descr);
    return COLLAPSE_OK;
}
