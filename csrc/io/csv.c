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
static int csv_number(const csv_cell *c, double *v) {
    char buf[128];
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
    COLLAPSE_TRY(io_reader_open(&r, "csv", path));
    unsigned char *text = NULL;
    int64_t len = 0;
    collapse_status s = io_read_all(&r, IO_MAX_BYTES, &text, &len);
    io_reader_close(&r);
    COLLAPSE_TRY(s);

    csv_state st;
    memset(&st, 0, sizeof st);
    char sep = 0;
    size_t ncols = 0, fcols = 0;
    int64_t first_line = 0;
    char show[64];
    const char *p = (const char *)text, *end = p + len;
    int64_t line = 0;
    s = COLLAPSE_OK;
    while (p < end && s == COLLAPSE_OK) {
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

        if (!sep) {
            sep = memchr(ls, ',', n) ? ',' : memchr(ls, ';', n) ? ';' : memchr(ls, '\t', n) ? '\t' : ',';
            if (!csv_split(ls, n, sep, &st.cells)) { s = collapse_fail(COLLAPSE_ERR_NOMEM, "csv: %s: out of memory", path); break; }
            ncols = st.cells.n;
            first_line = line;
            if ((size_t)label_column > ncols) {
                s = collapse_fail(COLLAPSE_ERR_ARG, "csv: label_column %d but %s has %zu column%s (line %lld)",
                                  label_column, path, ncols, ncols == 1 ? "" : "s", (long long)line);
                break;
            }
            fcols = ncols - (label_column > 0);
            int header = 0;
            double v;
            for (size_t c = 0; c < ncols; c++)
                if (!csv_number(&st.cells.v[c], &v)) header = 1;
            if (header) continue;
        } else if (!csv_split(ls, n, sep, &st.cells)) {
            s = collapse_fail(COLLAPSE_ERR_NOMEM, "csv: %s: out of memory", path);
            break;
        }
        if (st.cells.n != ncols) {
            s = collapse_fail(COLLAPSE_ERR_FORMAT, "csv: %s line %lld: %zu cell%s, expected %zu as in line %lld (separator '%s')",
                              path, (long long)line, st.cells.n, st.cells.n == 1 ? "" : "s", ncols, (long long)first_line,
                              sep == '\t' ? "\\t" : sep == ';' ? ";" : ",");
            break;
        }
        if (st.rows == st.cap) {
            int64_t ncap = st.cap ? st.cap * 2 : 64;
            double *nf = realloc(st.feat, (size_t)ncap * (fcols ? fcols : 1) * sizeof(double));
            if (nf) st.feat = nf;
            int32_t *nlab = label_column ? realloc(st.lab, (size_t)ncap * sizeof(int32_t)) : st.lab;
            if (label_column && nlab) st.lab = nlab;
            if (!nf || (label_column && !nlab)) {
                s = collapse_fail(COLLAPSE_ERR_NOMEM, "csv: %s: out of memory at line %lld", path, (long long)line);
                break;
            }
            st.cap = ncap;
        }
        double *frow = st.feat + (size_t)st.rows * fcols;
        size_t k = 0;
        for (size_t c = 0; c < ncols; c++) {
            double v;
            const csv_cell *cell = &st.cells.v[c];
            if (!csv_number(cell, &v)) {
                if (cell->n)
                    s = collapse_fail(COLLAPSE_ERR_FORMAT, "csv: %s line %lld column %zu: '%s' is not a number", path,
                                      (long long)line, c + 1, csv_show(cell, show, sizeof show));
                else
                    s = collapse_fail(COLLAPSE_ERR_FORMAT, "csv: %s line %lld column %zu: empty cell, expected a number",
                                      path, (long long)line, c + 1);
                break;
            }
            if ((int)c + 1 == label_column) {
                double w = v + (double)label_offset;
                if (!(v == floor(v)) || !(w >= (double)INT32_MIN && w <= (double)INT32_MAX)) {
                    s = collapse_fail(COLLAPSE_ERR_FORMAT,
                                      "csv: %s line %lld column %zu: label '%s' is not an integer%s", path,
                                      (long long)line, c + 1, csv_show(cell, show, sizeof show),
                                      v == floor(v) ? " in the int32 range (after the label offset)" : "");
                    break;
                }
                st.lab[st.rows] = (int32_t)w;
            } else {
                frow[k++] = v;
            }
        }
        if (s == COLLAPSE_OK) st.rows++;
    }
    free(text);
    if (s == COLLAPSE_OK && st.rows == 0)
        s = collapse_fail(COLLAPSE_ERR_FORMAT, "csv: %s: no data rows%s", path,
                          sep ? " (only a header line)" : " (the file is empty or has only comments)");
    if (s != COLLAPSE_OK) {
        csv_state_free(&st);
        return s;
    }
    /* shrink to fit */
    size_t fbytes = (size_t)st.rows * fcols * sizeof(double);
    double *nf = fbytes ? realloc(st.feat, fbytes) : NULL;
    if (nf) st.feat = nf;
    features->dtype = COLLAPSE_FLOAT64;
    features->ndim = 2;
    features->shape[0] = st.rows;
    features->shape[1] = (int64_t)fcols;
    features->data = st.feat;
    if (label_column) {
        int32_t *nl = realloc(st.lab, (size_t)st.rows * sizeof(int32_t));
        if (nl) st.lab = nl;
        labels->dtype = COLLAPSE_INT32;
        labels->ndim = 1;
        labels->shape[0] = st.rows;
        labels->data = st.lab;
    }
    free(st.cells.v);
    return COLLAPSE_OK;
}
