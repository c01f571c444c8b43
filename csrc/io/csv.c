/*
 * CSV reader for numeric tables (raw or gzip-compressed).
 *
 * '#' comment lines and blank lines are skipped. The first remaining line is a header when any of
 * its cells is not a number. The separator is ',' when the first line contains one, else ';', else
 * a tab (else the file has one column). Cells may be surrounded by spaces and double quotes.
 * Numbers are decimal (strtod syntax without hex; inf and nan are accepted) with '.' as the decimal
 * point whatever the C locale.
 */
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/io_internal.h"

typedef struct csv_cell {
    const char *s;
    size_t n;
} csv_cell;

typedef struct csv_cells {
    csv_cell *v;
    size_t n, cap;
} csv_cells;

/* Splits [s, s+len) at sep (not inside double quotes) into cells trimmed of spaces and quotes. */
static int csv_split(const char *s, size_t len, char sep, csv_cells *out) {
    out->n = 0;
    size_t start = 0;
    int quoted = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] == '"') quoted = !quoted;
        if (i == len || (s[i] == sep && !quoted)) {
            if (out->n == out->cap) {
                size_t ncap = out->cap ? out->cap * 2 : 16;
                csv_cell *nv = realloc(out->v, ncap * sizeof *nv);
                if (!nv) return 0;
                out->v = nv;
                out->cap = ncap;
            }
            const char *a = s + start, *b = s + i;
            while (a < b && (*a == ' ' || *a == '\t')) a++;
            while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
            if (b - a >= 2 && *a == '"' && b[-1] == '"') {
                a++;
                b--;
                while (a < b && *a == ' ') a++;
                while (b > a && b[-1] == ' ') b--;
            }
            out->v[out->n].s = a;
            out->v[out->n].n = (size_t)(b - a);
            out->n++;
            start = i + 1;
        }
    }
    return 1;
}

/* Parses a whole cell as a number ('.' decimal point whatever the locale). */
#define CSV_MAX_CELL 128

static int csv_number(const csv_cell *c, double *v) {
    char buf[CSV_MAX_CELL];
    if (c->n == 0 || c->n >= sizeof buf) return 0;
    memcpy(buf, c->s, c->n);
    buf[c->n] = '\0';
    if (memchr(buf, '\0', c->n) || strchr(buf, 'x') || strchr(buf, 'X')) return 0; /* no hex floats */
    const char *dp = localeconv()->decimal_point;
    if (dp && dp[0] && dp[0] != '.' && !dp[1]) {
        if (strchr(buf, dp[0])) return 0;
        for (char *q = buf; *q; q++)
            if (*q == '.') *q = dp[0];
    }
    char *end = NULL;
    *v = strtod(buf, &end);
    return end == buf + c->n;
}

/* A printable excerpt of a cell for messages. */
static const char *csv_show(const csv_cell *c, char *buf, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < c->n && k + 4 < cap; i++) buf[k++] = (c->s[i] >= 32 && c->s[i] < 127) ? c->s[i] : '?';
    if (k < c->n && k + 4 <= cap) {
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    buf[k] = '\0';
    return buf;
}

typedef struct csv_state {
    const char *path;
    int label_column;
    int32_t label_offset;
    char sep;
    size_t ncols, fcols;
    int64_t first_line;
    double *feat;
    int32_t *lab;
    int64_t rows, cap;
    csv_cells cells;
} csv_state;

static void csv_state_free(csv_state *st) {
    free(st->feat);
    free(st->lab);
    free(st->cells.v);
}

/* Parses a whole cell as a number, saying why not in the error. */
static collapse_status csv_cell_number(const csv_state *st, int64_t line, size_t c, double *v) {
    const csv_cell *cell = &st->cells.v[c];
    char show[64];
    if (csv_number(cell, v)) return COLLAPSE_OK;
    if (cell->n == 0)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "csv: %s line %lld column %zu: empty cell, expected a number",
                             st->path, (long long)line, c + 1);
    if (cell->n >= CSV_MAX_CELL)
        return collapse_fail(COLLAPSE_ERR_FORMAT,
                             "csv: %s line %lld column %zu: cell of %zu characters ('%s'), expected a number of at "
                             "most %d characters",
                             st->path, (long long)line, c + 1, cell->n, csv_show(cell, show, sizeof show),
                             CSV_MAX_CELL - 1);
    return collapse_fail(COLLAPSE_ERR_FORMAT, "csv: %s line %lld column %zu: '%s' is not a number", st->path,
                         (long long)line, c + 1, csv_show(cell, show, sizeof show));
}

/* The first non-comment line fixes the separator and the column count; *header is set when it is
 * a header (some cell is not a number). */
static collapse_status csv_first_line(csv_state *st, const char *ls, size_t n, int64_t line, int *header) {
    st->sep = memchr(ls, ',', n) ? ',' : memchr(ls, ';', n) ? ';' : memchr(ls, '\t', n) ? '\t' : ',';
    if (!csv_split(ls, n, st->sep, &st->cells)) return collapse_fail(COLLAPSE_ERR_NOMEM, "csv: %s: out of memory", st->path);
    st->ncols = st->cells.n;
    st->first_line = line;
    if ((size_t)st->label_column > st->ncols)
        return collapse_fail(COLLAPSE_ERR_ARG, "csv: label_column %d but %s has %zu column%s (line %lld)",
                             st->label_column, st->path, st->ncols, st->ncols == 1 ? "" : "s", (long long)line);
    st->fcols = st->ncols - (st->label_column > 0);
    *header = 0;
    double v;
    for (size_t c = 0; c < st->ncols; c++)
        if (!csv_number(&st->cells.v[c], &v)) *header = 1;
    return COLLAPSE_OK;
}

/* Room for one more row (doubling; rows * columns checked against overflow). */
static collapse_status csv_grow(csv_state *st, int64_t line) {
    if (st->rows < st->cap) return COLLAPSE_OK;
    int64_t ncap = st->cap ? st->cap * 2 : 64, bytes;
    if (!io_mul_i64(ncap, (int64_t)(st->fcols ? st->fcols : 1) * (int64_t)sizeof(double), &bytes) ||
        bytes > IO_MAX_BYTES)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "csv: %s: more than %lld bytes of data at line %lld", st->path,
                             (long long)IO_MAX_BYTES, (long long)line);
    double *nf = realloc(st->feat, (size_t)bytes);
    if (nf) st->feat = nf;
    int32_t *nlab = st->label_column ? realloc(st->lab, (size_t)ncap * sizeof(int32_t)) : st->lab;
    if (st->label_column && nlab) st->lab = nlab;
    if (!nf || (st->label_column && !nlab))
        return collapse_fail(COLLAPSE_ERR_NOMEM, "csv: %s: out of memory at line %lld", st->path, (long long)line);
    st->cap = ncap;
    return COLLAPSE_OK;
}

/* Stores the split cells of one data line as a row (label column converted to int32). */
static collapse_status csv_store_row(csv_state *st, int64_t line) {
    char show[64];
    if (st->cells.n != st->ncols)
        return collapse_fail(COLLAPSE_ERR_FORMAT,
                             "csv: %s line %lld: %zu cell%s, expected %zu as in line %lld (separator '%s')", st->path,
                             (long long)line, st->cells.n, st->cells.n == 1 ? "" : "s", st->ncols,
                             (long long)st->first_line, st->sep == '\t' ? "\\t" : st->sep == ';' ? ";" : ",");
    COLLAPSE_TRY(csv_grow(st, line));
    double *frow = st->feat + (size_t)st->rows * st->fcols;
    size_t k = 0;
    for (size_t c = 0; c < st->ncols; c++) {
        double v;
        COLLAPSE_TRY(csv_cell_number(st, line, c, &v));
        if ((int)c + 1 != st->label_column) {
            frow[k++] = v;
            continue;
        }
        double w = v + (double)st->label_offset;
        if (!(v == floor(v)) || !(w >= (double)INT32_MIN && w <= (double)INT32_MAX))
            return collapse_fail(COLLAPSE_ERR_FORMAT, "csv: %s line %lld column %zu: label '%s' is not an integer%s",
                                 st->path, (long long)line, c + 1, csv_show(&st->cells.v[c], show, sizeof show),
                                 v == floor(v) ? " in the int32 range (after the label offset)" : "");
        st->lab[st->rows] = (int32_t)w;
    }
    st->rows++;
    return COLLAPSE_OK;
}

/* Walks the lines of text: comments and blank lines skipped, the first line maybe a header. */
static collapse_status csv_parse(csv_state *st, const char *p, const char *end) {
    int64_t line = 0;
    while (p < end) {
        line++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *ls = p;
        p = nl ? nl + 1 : end;
        if (le > ls && le[-1] == '\r') le--;
        const char *q = ls;
        while (q < le && (*q == ' ' || *q == '\t')) q++;
        if (q == le || *q == '#') continue;
        size_t n = (size_t)(le - ls);
        if (!st->sep) {
            int header = 0;
            COLLAPSE_TRY(csv_first_line(st, ls, n, line, &header));
            if (header) continue;
        } else if (!csv_split(ls, n, st->sep, &st->cells)) {
            return collapse_fail(COLLAPSE_ERR_NOMEM, "csv: %s: out of memory", st->path);
        }
        COLLAPSE_TRY(csv_store_row(st, line));
    }
    if (st->rows == 0)
        return collapse_fail(COLLAPSE_ERR_FORMAT, "csv: %s: no data rows%s", st->path,
                             st->sep ? " (only a header line)" : " (the file is empty or has only comments)");
    return COLLAPSE_OK;
}

/* Hands the buffers (shrunk to fit) to the output arrays. */
static void csv_finish(csv_state *st, collapse_array *features, collapse_array *labels) {
    size_t fbytes = (size_t)st->rows * st->fcols * sizeof(double);
    double *nf = fbytes ? realloc(st->feat, fbytes) : NULL;
    if (nf) st->feat = nf;
    features->dtype = COLLAPSE_FLOAT64;
    features->ndim = 2;
    features->shape[0] = st->rows;
    features->shape[1] = (int64_t)st->fcols;
    features->data = st->feat;
    if (st->label_column) {
        int32_t *nl = realloc(st->lab, (size_t)st->rows * sizeof(int32_t));
        if (nl) st->lab = nl;
        labels->dtype = COLLAPSE_INT32;
        labels->ndim = 1;
        labels->shape[0] = st->rows;
        labels->data = st->lab;
    }
    free(st->cells.v);
}

collapse_status collapse_csv_read(const char *path, int label_column, int32_t label_offset, collapse_array *features,
                                  collapse_array *labels) {
    if (!features) return collapse_fail(COLLAPSE_ERR_ARG, "csv: features array expected, got NULL");
    memset(features, 0, sizeof *features);
    if (labels) memset(labels, 0, sizeof *labels);
    if (label_column < 0)
        return collapse_fail(COLLAPSE_ERR_ARG, "csv: label_column %d, expected 0 (none) or a 1-based column",
                             label_column);
    if (label_column > 0 && !labels)
        return collapse_fail(COLLAPSE_ERR_ARG, "csv: label_column %d given but the labels array is NULL", label_column);

    io_reader r;
    COLLAPSE_TRY(collapse_io_reader_open(&r, "csv", path));
    unsigned char *text = NULL;
    int64_t len = 0;
    collapse_status s = collapse_io_read_all(&r, IO_MAX_BYTES, &text, &len);
    collapse_io_reader_close(&r);
    COLLAPSE_TRY(s);

    csv_state st;
    memset(&st, 0, sizeof st);
    st.path = path;
    st.label_column = label_column;
    st.label_offset = label_offset;
    s = csv_parse(&st, (const char *)text, (const char *)text + len);
    free(text);
    if (s != COLLAPSE_OK) {
        csv_state_free(&st);
        return s;
    }
    csv_finish(&st, features, labels);
    return COLLAPSE_OK;
}
