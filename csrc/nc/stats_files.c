/*
 * Feeding the streaming statistics from files (collapse measure, issue 13): a features file
 * [N x d] (or [N x ...], flattened per row) and a labels file [N] (or [N x 1]) read in chunks of
 * rows, so memory stays O(C d) plus one chunk whatever N. NPY (and .npy.gz) and the NPY members
 * of .npz archives ("a.npz:member", or "a.npz" for the member "features" / "labels"; stored or
 * deflated) stream by rows (io/npy_rows.c); CSV is read whole (it is a text format for small data). Labels may be stored
 * as any integer type or as integral floats, and start at `label_base` (0 as numpy/PyTorch write
 * them, or 1); a label outside base..base+C-1 fails naming the value and its 0-based row.
 */
#include "collapse.h"
#include "core/error.h"
#include "nc/stats_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NC_FILE_CHUNK_ELEMS ((int64_t)1 << 19) /* feature elements per chunk (2 MB float32) */

typedef struct nc_src {
    const char *path;
    collapse_npy_rows *npy; /* NPY: streamed */
    collapse_array csv;     /* CSV: whole, float64 */
    int64_t rows, cols, next;
    int is_float, is_f32;
} nc_src;

static int ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

static void src_close(nc_src *s) {
    collapse_npy_rows_close(s->npy);
    collapse_array_free(&s->csv);
    memset(s, 0, sizeof *s);
}

/* what: "features" (>= 2-d, rows x the rest) or "labels" (1-d, or [N x 1]). */
static collapse_status src_open(const char *fn, const char *what, const char *path, nc_src *s) {
    memset(s, 0, sizeof *s);
    s->path = path;
    int labels = what[0] == 'l';
    const char *colon = strstr(path, ".npz:");
    if (ends_with(path, ".npz") || colon) {
        /* "a.npz:member", or "a.npz" for the member named like the role ("features" / "labels") */
        char archive[4096];
        size_t alen = colon ? (size_t)(colon - path) + 4 : strlen(path);
        if (alen >= sizeof archive)
            return collapse_fail(COLLAPSE_ERR_ARG, "%s: %s path '%.64s...' is too long", fn, what, path);
        memcpy(archive, path, alen);
        archive[alen] = '\0';
        COLLAPSE_TRY(collapse_npy_rows_open_npz(archive, colon ? colon + 5 : what, &s->npy));
    } else if (ends_with(path, ".csv") || ends_with(path, ".csv.gz") || ends_with(path, ".tsv")) {
        COLLAPSE_TRY(collapse_csv_read(path, 0, 0, &s->csv, NULL));
        s->rows = s->csv.shape[0];
        s->cols = s->csv.ndim > 1 ? s->csv.shape[1] : 1;
        s->is_float = 1;
    } else {
        COLLAPSE_TRY(collapse_npy_rows_open(path, &s->npy));
    }
    if (s->npy) {
        int64_t shape[COLLAPSE_MAX_DIMS];
        int nd = collapse_npy_rows_shape(s->npy, shape);
        s->rows = nd > 0 ? shape[0] : 0;
        s->cols = 1;
        for (int i = 1; i < nd; i++) s->cols *= shape[i];
        s->is_float = collapse_npy_rows_is_float(s->npy);
        s->is_f32 = collapse_npy_rows_is_float32(s->npy);
        if ((labels && nd != 1 && !(nd == 2 && shape[1] == 1)) || (!labels && nd < 2)) {
            src_close(s);
            return collapse_fail(COLLAPSE_ERR_SHAPE, "%s: %s '%s' is %d-d; expected %s", fn, what, path, nd,
                                 labels ? "a 1-d [N] (or [N x 1]) array" : "a 2-d [N x d] array");
        }
    }
    if (labels && s->cols != 1) {
        collapse_status st = collapse_fail(COLLAPSE_ERR_SHAPE, "%s: labels '%s' have %lld columns, expected one", fn,
                                           path, (long long)s->cols);
        src_close(s);
        return st;
    }
    if (!labels && !s->is_float) {
        src_close(s);
        return collapse_fail(COLLAPSE_ERR_DTYPE, "%s: features '%s' hold integers; expected float32 or float64", fn,
                             path);
    }
    return COLLAPSE_OK;
}

static collapse_status src_read(nc_src *s, collapse_dtype dt, int64_t max_rows, void *out, int64_t *got) {
    if (s->npy) return collapse_npy_rows_read(s->npy, dt, max_rows, out, got);
    int64_t rows = s->rows - s->next < max_rows ? s->rows - s->next : max_rows;
    const double *src = (const double *)s->csv.data + s->next * s->cols;
    for (int64_t i = 0; i < rows * s->cols; i++) {
        if (dt == COLLAPSE_FLOAT32) ((float *)out)[i] = (float)src[i];
        else ((double *)out)[i] = src[i];
    }
    s->next += rows;
    *got = rows;
    return COLLAPSE_OK;
}

/* Labels (read as float64) to int32 1..C; classes <= 0: only the lower end is checked. */
static collapse_status nc_labels(const char *fn, const char *path, const double *v, int64_t n, int64_t row0,
                                 int base, int classes, int32_t *out, double *max_seen) {
    for (int64_t i = 0; i < n; i++) {
        double x = v[i];
        if (x != floor(x) || !isfinite(x))
            return collapse_fail(COLLAPSE_ERR_RANGE, "%s: labels '%s': label %.17g at row %lld (0-based) is not an "
                                 "integer", fn, path, x, (long long)(row0 + i));
        if (x < base || (classes > 0 && x > (double)base + classes - 1) || x > (double)base + (1 << 24)) {
            if (classes > 0)
                return collapse_fail(COLLAPSE_ERR_RANGE, "%s: labels '%s': label %.17g at row %lld (0-based) is outside "
                                     "%d..%d (label base %d, %d classes)", fn, path, x, (long long)(row0 + i), base,
                                     base + classes - 1, base, classes);
            return collapse_fail(COLLAPSE_ERR_RANGE, "%s: labels '%s': label %.17g at row %lld (0-based) is below the "
                                 "label base %d", fn, path, x, (long long)(row0 + i), base);
        }
        if (out) out[i] = (int32_t)(x - base + 1);
        if (x > *max_seen) *max_seen = x;
    }
    return COLLAPSE_OK;
}

static collapse_status open_pair(const char *fn, const char *features, const char *labels, nc_src *f, nc_src *l) {
    if (!features || !labels) return collapse_fail(COLLAPSE_ERR_ARG, "%s: features and labels paths expected", fn);
    COLLAPSE_TRY(src_open(fn, "features", features, f));
    collapse_status st = src_open(fn, "labels", labels, l);
    if (st == COLLAPSE_OK && f->rows != l->rows)
        st = collapse_fail(COLLAPSE_ERR_SHAPE, "%s: features '%s' have %lld rows but labels '%s' have %lld", fn,
                           features, (long long)f->rows, labels, (long long)l->rows);
    if (st != COLLAPSE_OK) {
        src_close(f);
        src_close(l);
    }
    return st;
}

collapse_status collapse_nc_files_info(const char *features, const char *labels, int label_base, int classes,
                                       int64_t *n, int64_t *dim, int *classes_out) {
    static const char fn[] = "nc_files_info";
    nc_src f, l;
    COLLAPSE_TRY(open_pair(fn, features, labels, &f, &l));
    double *buf = malloc(sizeof(double) * (size_t)NC_FILE_CHUNK_ELEMS);
    collapse_status st = buf ? COLLAPSE_OK : collapse_fail(COLLAPSE_ERR_NOMEM, "%s: out of memory", fn);
    double mx = -INFINITY;
    int64_t row = 0, got = 0;
    while (st == COLLAPSE_OK && row < l.rows) {
        st = src_read(&l, COLLAPSE_FLOAT64, NC_FILE_CHUNK_ELEMS, buf, &got);
        if (st == COLLAPSE_OK) st = nc_labels(fn, labels, buf, got, row, label_base, classes, NULL, &mx);
        row += got;
    }
    if (st == COLLAPSE_OK) {
        if (n) *n = f.rows;
        if (dim) *dim = f.cols;
        if (classes_out) *classes_out = classes > 0 ? classes : (l.rows > 0 ? (int)(mx - label_base + 1) : 0);
    }
    free(buf);
    src_close(&f);
    src_close(&l);
    return st;
}

/* pass 1 or 2 over a features / labels file pair, one chunk of rows at a time. */
collapse_status collapse_nc_stats_pass_files(collapse_nc_stats *s, int pass, const char *features,
                                             const char *labels, int label_base) {
    const char *fn = pass == 1 ? "nc_stats_pass1_files" : "nc_stats_pass2_files";
    if (!s) return collapse_fail(COLLAPSE_ERR_ARG, "%s: stats expected, got NULL", fn);
    if (pass != 1 && pass != 2) return collapse_fail(COLLAPSE_ERR_ARG, "%s: pass must be 1 or 2, got %d", fn, pass);
    nc_src f, l;
    COLLAPSE_TRY(open_pair(fn, features, labels, &f, &l));
    collapse_status st = COLLAPSE_OK;
    if (f.cols != s->d)
        st = collapse_fail(COLLAPSE_ERR_SHAPE, "%s: features '%s' are [%lld x %lld] but the stats were made for dim %lld",
                           fn, features, (long long)f.rows, (long long)f.cols, (long long)s->d);
    int64_t chunk = NC_FILE_CHUNK_ELEMS / s->d > 0 ? NC_FILE_CHUNK_ELEMS / s->d : 1;
    collapse_dtype dt = f.is_f32 ? COLLAPSE_FLOAT32 : COLLAPSE_FLOAT64;
    void *x = st == COLLAPSE_OK ? malloc((size_t)(chunk * s->d) * collapse_dtype_size(dt)) : NULL;
    double *lv = st == COLLAPSE_OK ? malloc(sizeof(double) * (size_t)chunk) : NULL;
    int32_t *y = st == COLLAPSE_OK ? malloc(sizeof(int32_t) * (size_t)chunk) : NULL;
    if (st == COLLAPSE_OK && (!x || !lv || !y)) st = collapse_fail(COLLAPSE_ERR_NOMEM, "%s: out of memory", fn);
    double mx = -INFINITY;
    for (int64_t row = 0; st == COLLAPSE_OK && row < f.rows;) {
        int64_t gf = 0, gl = 0;
        st = src_read(&f, dt, chunk, x, &gf);
        if (st == COLLAPSE_OK) st = src_read(&l, COLLAPSE_FLOAT64, chunk, lv, &gl);
        if (st == COLLAPSE_OK) st = nc_labels(fn, labels, lv, gl, row, label_base, s->C, y, &mx);
        if (st == COLLAPSE_OK)
            st = pass == 1 ? collapse_nc_stats_pass1(s, dt, x, gf, y) : collapse_nc_stats_pass2(s, dt, x, gf, y);
        row += gf;
    }
    free(x);
    free(lv);
    free(y);
    src_close(&f);
    src_close(&l);
    return st;
}
