/* C unit tests of the neural-collapse metrics (csrc/nc/stats.c): numpy fixtures made by
 * spec/fixtures/make_nc_fixtures.py, closed-form cases (perfect collapse, one-hot means, equal
 * means), streaming vs one-shot, in-test naive references, ties, and every error path. */
#include "check.h"
#include "collapse.h"

#include <stdint.h>

/* ---- small utilities ------------------------------------------------------------------ */

/* a self-contained normal generator (the test does not depend on the library's rng) */
typedef struct { uint64_t s; } trng;
static double trng_uniform(trng *g) {
    g->s ^= g->s << 13;
    g->s ^= g->s >> 7;
    g->s ^= g->s << 17;
    return ((g->s >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}
static double trng_normal(trng *g) {
    double u1 = trng_uniform(g), u2 = trng_uniform(g);
    return sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
}

static double max_err_f64 = 0, max_err_f32 = 0, max_err_f32_vs_f64 = 0, max_err_stream = 0;

/* relative error with a floor on the scale (so values that are exactly 0 compare absolutely) */
static double rel_err(double got, double want, double floor) {
    double sc = fabs(want) > floor ? fabs(want) : floor;
    if (got == want) return 0;
    return fabs(got - want) / sc;
}

static void expect_rel(const char *what, const char *key, double got, double want, double tol, double floor,
                       double *track) {
    double e = rel_err(got, want, floor);
    check_count++;
    if (!(e <= tol)) {
        check_failures++;
        fprintf(stderr, "%s: %s = %.17g, expected %.17g (rel err %.3g > %.3g)\n", what, key, got, want, e, tol);
    }
    if (track && e > *track) *track = e;
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    size_t got = fread(buf, 1, (size_t)len, f);
    buf[got] = '\0';
    fclose(f);
    return buf;
}

/* numbers of a whitespace-separated file; *rows = number of non-empty lines */
static double *read_numbers(const char *path, int64_t *count, int64_t *rows) {
    char *text = read_text(path);
    if (!text) return NULL;
    int64_t cap = 1024, n = 0, r = 0;
    double *v = malloc((size_t)cap * sizeof *v);
    int line_has = 0;
    char *p = text;
    while (*p) {
        if (*p == '\n') {
            if (line_has) r++;
            line_has = 0;
            p++;
            continue;
        }
        if (*p == ' ' || *p == '\t' || *p == '\r') {
            p++;
            continue;
        }
        char *end;
        double x = strtod(p, &end);
        if (end == p) break;
        if (n == cap) v = realloc(v, (size_t)(cap *= 2) * sizeof *v);
        v[n++] = x;
        line_has = 1;
        p = end;
    }
    if (line_has) r++;
    free(text);
    *count = n;
    if (rows) *rows = r;
    return v;
}

typedef struct { char key[40]; int n; double v[64]; } kv;
typedef struct { int n; kv e[64]; } expected;

static int read_expected(const char *path, expected *ex) {
    char *text = read_text(path);
    if (!text) return 0;
    ex->n = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        if (!*line) continue;
        kv *e = &ex->e[ex->n++];
        char *p = line;
        int k = 0;
        while (*p && *p != ' ' && k < 39) e->key[k++] = *p++;
        e->key[k] = '\0';
        e->n = 0;
        while (*p) {
            char *end;
            double x = strtod(p, &end);
            if (end == p) break;
            e->v[e->n++] = x;
            p = end;
        }
    }
    free(text);
    return 1;
}

static const kv *get(const expected *ex, const char *key) {
    for (int i = 0; i < ex->n; i++)
        if (!strcmp(ex->e[i].key, key)) return &ex->e[i];
    return NULL;
}

static double get1(const expected *ex, const char *key) {
    const kv *e = get(ex, key);
    if (!e || e->n < 1) {
        fprintf(stderr, "fixture key %s missing\n", key);
        check_failures++;
        return NAN;
    }
    return e->v[0];
}

/* Compares every metric of r to the fixture; tol on scalars, arrays scaled by their largest entry. */
static void compare(const char *what, const collapse_nc_result *r, const expected *ex, double tol, double floor,
                    int with_classifier, double *track) {
    CHECK(r->classes == (int)get1(ex, "classes"));
    CHECK(r->dim == (int64_t)get1(ex, "dim"));
    CHECK(r->samples == (int64_t)get1(ex, "samples"));
    const struct { const char *k; double v; } sc[] = {
        {"intra_cos", r->intra_cos}, {"intra_cos_min", r->intra_cos_min}, {"intra_cos_q", r->intra_cos_q},
        {"inter_cos", r->inter_cos}, {"inter_cos_max", r->inter_cos_max}, {"inter_cos_q", r->inter_cos_q},
        {"feature_norm", r->feature_norm}, {"nc1", r->nc1}, {"variability", r->variability}, {"cdnv", r->cdnv},
        {"equinorm", r->equinorm}, {"equiangular", r->equiangular}, {"max_cos", r->max_cos},
        {"etf_error", r->etf_error}, {"q", r->q}, {"trace_within", r->trace_within},
        {"between_energy", r->between_energy}, {"mean_sq_norm", r->mean_sq_norm},
    };
    for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++)
        expect_rel(what, sc[i].k, sc[i].v, get1(ex, sc[i].k), tol, floor, track);
    if (with_classifier) {
        CHECK(r->has_classifier == 1);
        const struct { const char *k; double v; } cl[] = {
            {"w_equinorm", r->w_equinorm}, {"self_duality", r->self_duality}, {"ncc_agreement", r->ncc_agreement},
            {"accuracy", r->accuracy}, {"loss", r->loss},
        };
        for (size_t i = 0; i < sizeof cl / sizeof cl[0]; i++)
            expect_rel(what, cl[i].k, cl[i].v, get1(ex, cl[i].k), tol, floor, track);
    } else {
        CHECK(r->has_classifier == 0);
        CHECK(r->w_equinorm == 0 && r->self_duality == 0 && r->ncc_agreement == 0 && r->accuracy == 0 &&
              r->loss == 0);
    }
    const kv *cc = get(ex, "class_counts");
    CHECK(cc && cc->n == r->classes);
    for (int c = 0; cc && c < cc->n; c++) CHECK(r->class_counts[c] == (int64_t)cc->v[c]);
    const struct { const char *k; const double *v; int n; } ar[] = {
        {"intra_per_class", r->intra_per_class, r->classes},
        {"etf_spectrum", r->etf_spectrum, r->classes},
        {"between_spectrum", r->between_spectrum, r->classes},
        {"within_spectrum", r->within_spectrum, r->within_spectrum_len},
    };
    for (size_t i = 0; i < sizeof ar / sizeof ar[0]; i++) {
        const kv *e = get(ex, ar[i].k);
        check_count++;
        if (e && e->n == 0 && ar[i].n == 0 && !ar[i].v) continue;
        if (!e || e->n != ar[i].n || !ar[i].v) {
            check_failures++;
            fprintf(stderr, "%s: %s has %d values, fixture %d\n", what, ar[i].k, ar[i].n, e ? e->n : -1);
            continue;
        }
        double big = 0;
        for (int j = 0; j < e->n; j++) big = fabs(e->v[j]) > big ? fabs(e->v[j]) : big;
        for (int j = 0; j < e->n; j++) {
            char name[64];
            snprintf(name, sizeof name, "%s[%d]", ar[i].k, j);
            expect_rel(what, name, ar[i].v[j], e->v[j], tol, big > floor ? big : floor, track);
        }
    }
}

/* every scalar and array entry of a and b agree to tol (relative, floor 1e-300) */
static void compare_results(const char *what, const collapse_nc_result *a, const collapse_nc_result *b, double tol,
                            double *track) {
    const double av[] = {a->intra_cos, a->intra_cos_min, a->intra_cos_q, a->inter_cos, a->inter_cos_max,
                         a->inter_cos_q, a->feature_norm, a->nc1, a->variability, a->cdnv, a->equinorm,
                         a->equiangular, a->max_cos, a->etf_error, a->w_equinorm, a->self_duality,
                         a->ncc_agreement, a->accuracy, a->loss, a->trace_within, a->between_energy,
                         a->mean_sq_norm};
    const double bv[] = {b->intra_cos, b->intra_cos_min, b->intra_cos_q, b->inter_cos, b->inter_cos_max,
                         b->inter_cos_q, b->feature_norm, b->nc1, b->variability, b->cdnv, b->equinorm,
                         b->equiangular, b->max_cos, b->etf_error, b->w_equinorm, b->self_duality,
                         b->ncc_agreement, b->accuracy, b->loss, b->trace_within, b->between_energy,
                         b->mean_sq_norm};
    for (size_t i = 0; i < sizeof av / sizeof av[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "scalar %zu", i);
        expect_rel(what, name, av[i], bv[i], tol, 1e-300, track);
    }
    CHECK(a->has_classifier == b->has_classifier && a->within_spectrum_len == b->within_spectrum_len);
    for (int c = 0; c < a->classes; c++) {
        CHECK(a->class_counts[c] == b->class_counts[c]);
        expect_rel(what, "intra_per_class", a->intra_per_class[c], b->intra_per_class[c], tol, 1e-300, track);
        expect_rel(what, "etf_spectrum", a->etf_spectrum[c], b->etf_spectrum[c], tol, a->etf_spectrum[0], track);
        expect_rel(what, "between_spectrum", a->between_spectrum[c], b->between_spectrum[c], tol,
                   a->between_spectrum[0], track);
    }
    for (int k = 0; k < a->within_spectrum_len; k++)
        expect_rel(what, "within_spectrum", a->within_spectrum[k], b->within_spectrum[k], tol,
                   a->within_spectrum[0], track);
}

/* ---- fixtures -------------------------------------------------------------------------- */

typedef struct {
    int64_t n, d;
    int C;
    double *h;
    float *h32;
    int32_t *y;
    double *W, *b; /* b may be NULL; W NULL when the case has none */
    double q;
    expected ex, ex32;
} fixture;

static int load_fixture(const char *name, fixture *f) {
    char path[256];
    int64_t cnt, rows;
    memset(f, 0, sizeof *f);
    snprintf(path, sizeof path, "spec/fixtures/nc/%s.features.txt", name);
    f->h = read_numbers(path, &cnt, &rows);
    if (!f->h || rows == 0) return 0;
    f->n = rows;
    f->d = cnt / rows;
    snprintf(path, sizeof path, "spec/fixtures/nc/%s.labels.txt", name);
    double *lab = read_numbers(path, &cnt, NULL);
    if (!lab || cnt != f->n) return 0;
    f->y = malloc((size_t)f->n * sizeof *f->y);
    for (int64_t i = 0; i < f->n; i++) f->y[i] = (int32_t)lab[i];
    free(lab);
    f->h32 = malloc((size_t)(f->n * f->d) * sizeof *f->h32);
    for (int64_t i = 0; i < f->n * f->d; i++) f->h32[i] = (float)f->h[i];
    snprintf(path, sizeof path, "spec/fixtures/nc/%s.expected.txt", name);
    if (!read_expected(path, &f->ex)) return 0;
    snprintf(path, sizeof path, "spec/fixtures/nc/%s.expected_f32.txt", name);
    if (!read_expected(path, &f->ex32)) return 0;
    f->C = (int)get1(&f->ex, "classes");
    f->q = get1(&f->ex, "q");
    snprintf(path, sizeof path, "spec/fixtures/nc/%s.W.txt", name);
    f->W = read_numbers(path, &cnt, NULL);
    if (f->W && cnt != f->C * f->d) return 0;
    snprintf(path, sizeof path, "spec/fixtures/nc/%s.b.txt", name);
    f->b = read_numbers(path, &cnt, NULL);
    if (f->b && cnt != f->C) return 0;
    return 1;
}

static void free_fixture(fixture *f) {
    free(f->h);
    free(f->h32);
    free(f->y);
    free(f->W);
    free(f->b);
}

/* streaming: pass 1 in batches of the given sizes, pass 2 over the same batches in reverse order */
static collapse_status stream(const fixture *f, collapse_dtype dt, const int64_t *sizes, int nb, int flags,
                              int classifier, collapse_nc_result *r) {
    collapse_nc_stats *s = NULL;
    collapse_status st0 = collapse_nc_stats_new(f->C, f->d, flags, &s);
    if (st0 != COLLAPSE_OK) return st0;
    int64_t start[64];
    int64_t at = 0;
    for (int i = 0; i < nb; i++) {
        start[i] = at;
        at += sizes[i];
    }
    collapse_status st = COLLAPSE_OK;
    size_t es = dt == COLLAPSE_FLOAT32 ? sizeof(float) : sizeof(double);
    const char *base = dt == COLLAPSE_FLOAT32 ? (const char *)f->h32 : (const char *)f->h;
    for (int i = 0; i < nb && st == COLLAPSE_OK; i++)
        st = collapse_nc_stats_pass1(s, dt, base + (size_t)(start[i] * f->d) * es, sizes[i], f->y + start[i]);
    if (st == COLLAPSE_OK && classifier) st = collapse_nc_stats_set_classifier(s, f->W, f->b); /* after pass 1 */
    if (st == COLLAPSE_OK) st = collapse_nc_stats_end_pass1(s);
    for (int i = nb - 1; i >= 0 && st == COLLAPSE_OK; i--)
        st = collapse_nc_stats_pass2(s, dt, base + (size_t)(start[i] * f->d) * es, sizes[i], f->y + start[i]);
    if (st == COLLAPSE_OK) st = collapse_nc_stats_result(s, f->q, r);
    collapse_nc_stats_free(s);
    return st;
}

static void test_fixture(const char *name) {
    fixture f;
    check_count++;
    if (!load_fixture(name, &f)) {
        check_failures++;
        fprintf(stderr, "cannot load fixture %s (run from the repository root)\n", name);
        free_fixture(&f);
        return;
    }
    char what[96];
    collapse_nc_result r = {0}, r32 = {0}, rs = {0}, rn = {0};
    /* float64, one shot, every metric to 1e-9 relative */
    CHECK_OK(collapse_nc_measure(COLLAPSE_FLOAT64, f.h, f.n, f.d, f.y, f.C, f.W, f.b, f.q,
                                 COLLAPSE_NC_WITHIN_SPECTRUM, &r));
    snprintf(what, sizeof what, "%s float64", name);
    compare(what, &r, &f.ex, 1e-9, 1e-12, f.W != NULL, &max_err_f64);
    /* float32 input: to the float32-rounded reference at 1e-9, to the float64 one loosely */
    CHECK_OK(collapse_nc_measure(COLLAPSE_FLOAT32, f.h32, f.n, f.d, f.y, f.C, f.W, f.b, f.q,
                                 COLLAPSE_NC_WITHIN_SPECTRUM, &r32));
    snprintf(what, sizeof what, "%s float32", name);
    compare(what, &r32, &f.ex32, 1e-9, 1e-12, f.W != NULL, &max_err_f32);
    snprintf(what, sizeof what, "%s float32 vs float64 reference", name);
    compare(what, &r32, &f.ex, 1e-4, 1e-6, f.W != NULL, &max_err_f32_vs_f64);
    /* streaming in uneven batches, pass 2 reversed, equals one shot */
    int64_t sizes[5] = {7, 50, 1, f.n / 4, 0};
    sizes[4] = f.n - 58 - f.n / 4;
    CHECK_OK(stream(&f, COLLAPSE_FLOAT64, sizes, 5, COLLAPSE_NC_WITHIN_SPECTRUM, f.W != NULL, &rs));
    snprintf(what, sizeof what, "%s streaming", name);
    compare_results(what, &rs, &r, 1e-12, &max_err_stream);
    collapse_nc_result_free(&rs);
    CHECK_OK(stream(&f, COLLAPSE_FLOAT32, sizes, 5, COLLAPSE_NC_WITHIN_SPECTRUM, f.W != NULL, &rs));
    snprintf(what, sizeof what, "%s streaming float32", name);
    compare_results(what, &rs, &r32, 1e-12, &max_err_stream);
    /* without a classifier and without the within spectrum */
    int64_t one[1] = {f.n};
    CHECK_OK(stream(&f, COLLAPSE_FLOAT64, one, 1, 0, 0, &rn));
    snprintf(what, sizeof what, "%s no classifier", name);
    CHECK(rn.within_spectrum == NULL && rn.within_spectrum_len == 0);
    rn.within_spectrum_len = 0;
    expected ex = f.ex;
    for (int i = 0; i < ex.n; i++) /* the fixture's within_spectrum does not apply */
        if (!strcmp(ex.e[i].key, "within_spectrum")) ex.e[i].n = 0;
    compare(what, &rn, &ex, 1e-9, 1e-12, 0, NULL);
    collapse_nc_result_free(&r);
    collapse_nc_result_free(&r32);
    collapse_nc_result_free(&rs);
    collapse_nc_result_free(&rn);
    free_fixture(&f);
}

/* ---- closed forms ----------------------------------------------------------------------- */

/* features exactly at simplex-ETF class means (plus a common offset), W = M~ */
static void test_perfect_collapse(void) {
    enum { C = 4, D = 6, NPC = 5, N = C * NPC };
    double M[C][D] = {{0}}, h[N][D], W[C][D];
    int32_t y[N];
    double a = sqrt((double)C / (C - 1)) * 2.5;
    for (int c = 0; c < C; c++)
        for (int j = 0; j < C; j++) M[c][j] = a * ((c == j) - 1.0 / C);
    for (int i = 0; i < N; i++) {
        y[i] = 1 + (i * 3) % C; /* interleaved labels */
        for (int j = 0; j < D; j++) h[i][j] = M[y[i] - 1][j] + 0.75 - 0.125 * j;
    }
    memcpy(W, M, sizeof W);
    collapse_nc_result r = {0};
    CHECK_OK(collapse_nc_measure(COLLAPSE_FLOAT64, h, N, D, y, C, &W[0][0], NULL, 0.05,
                                 COLLAPSE_NC_WITHIN_SPECTRUM, &r));
    CHECK_CLOSE(r.intra_cos, 1.0, 1e-12);
    CHECK_CLOSE(r.intra_cos_min, 1.0, 1e-12);
    CHECK_CLOSE(r.inter_cos, -1.0 / (C - 1), 1e-12);
    CHECK_CLOSE(r.inter_cos_max, -1.0 / (C - 1), 1e-12);
    CHECK_CLOSE(r.nc1, 0.0, 1e-12);
    CHECK_CLOSE(r.variability, 0.0, 1e-12);
    CHECK_CLOSE(r.cdnv, 0.0, 1e-12);
    CHECK_CLOSE(r.equinorm, 0.0, 1e-12);
    CHECK_CLOSE(r.etf_error, 0.0, 1e-12);
    CHECK_CLOSE(r.equiangular, 0.0, 1e-12);
    CHECK_CLOSE(r.max_cos, -1.0 / (C - 1), 1e-12);
    CHECK_CLOSE(r.self_duality, 0.0, 1e-12);
    CHECK_CLOSE(r.w_equinorm, 0.0, 1e-12);
    CHECK_CLOSE(r.ncc_agreement, 1.0, 1e-15);
    CHECK_CLOSE(r.accuracy, 1.0, 1e-15);
    CHECK_CLOSE(r.feature_norm, a * sqrt((C - 1.0) / C), 1e-12);
    for (int k = 0; k < C - 1; k++) CHECK_CLOSE(r.etf_spectrum[k], 1.0 / sqrt(C - 1.0), 1e-12);
    CHECK_CLOSE(r.etf_spectrum[C - 1], 0.0, 1e-12);
    for (int k = 0; k < r.within_spectrum_len; k++) CHECK_CLOSE(r.within_spectrum[k], 0.0, 1e-12);
    CHECK(r.within_spectrum_len == D);
    collapse_nc_result_free(&r);
    /* the same in float32 (features exact in float32 up to the means) */
    float h32[N][D];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++) h32[i][j] = (float)h[i][j];
    CHECK_OK(collapse_nc_measure(COLLAPSE_FLOAT32, h32, N, D, y, C, &W[0][0], NULL, 0.05, 0, &r));
    CHECK_CLOSE(r.intra_cos, 1.0, 1e-12);
    CHECK_CLOSE(r.inter_cos, -1.0 / (C - 1), 1e-6);
    CHECK_CLOSE(r.nc1, 0.0, 1e-12);
    CHECK_CLOSE(r.ncc_agreement, 1.0, 1e-15);
    collapse_nc_result_free(&r);
}

/* one-hot class means: once centred they form a simplex ETF */
static void test_one_hot_means(void) {
    enum { C = 5, D = 7, NPC = 3, N = C * NPC };
    double h[N][D] = {{0}};
    int32_t y[N];
    for (int i = 0; i < N; i++) {
        y[i] = 1 + i % C;
        h[i][y[i] - 1] = 1.0;
    }
    collapse_nc_result r = {0};
    CHECK_OK(collapse_nc_measure(COLLAPSE_FLOAT64, h, N, D, y, C, NULL, NULL, 0.05, 0, &r));
    CHECK_CLOSE(r.etf_error, 0.0, 1e-12);
    CHECK_CLOSE(r.equiangular, 0.0, 1e-12);
    CHECK_CLOSE(r.inter_cos, -1.0 / (C - 1), 1e-12);
    CHECK_CLOSE(r.intra_cos, 1.0, 1e-12);
    CHECK(r.has_classifier == 0);
    collapse_nc_result_free(&r);
}

/* all class means equal one vector plus tiny noise: far from a simplex ETF, and nothing NaN */
static void test_equal_means(void) {
    enum { C = 5, D = 8, NPC = 6, N = C * NPC };
    double h[N][D];
    int32_t y[N];
    trng g = {0x9e3779b97f4a7c15ull};
    for (int i = 0; i < N; i++) {
        y[i] = 1 + i % C;
        for (int j = 0; j < D; j++)
            h[i][j] = 3.0 + 0.5 * j + 1e-6 * (y[i] - 1) * (j == 2) + 1e-9 * trng_normal(&g);
    }
    collapse_nc_result r = {0};
    CHECK_OK(collapse_nc_measure(COLLAPSE_FLOAT64, h, N, D, y, C, NULL, NULL, 0.05, COLLAPSE_NC_WITHIN_SPECTRUM, &r));
    CHECK(r.etf_error > 0.9);
    CHECK(r.max_cos > 0.9); /* the centred means are nearly collinear */
    const double v[] = {r.intra_cos, r.inter_cos, r.nc1, r.variability, r.cdnv, r.equinorm, r.equiangular,
                        r.etf_error, r.feature_norm};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) CHECK(isfinite(v[i]));
    collapse_nc_result_free(&r);
}

/* C = 2, d = 1: exact ties in argmax and argmin go to the lowest class; zero centred features give u = 0 */
static void test_ties_and_zero_features(void) {
    double h[4] = {-2, 0, 2, 0};
    int32_t y[4] = {1, 1, 2, 2};
    double W[2] = {0, 0}, b_second[2] = {0, 1}, b_tie[2] = {1, 1};
    collapse_nc_result r = {0};
    /* logits favour class 2 everywhere; the samples at 0 are equidistant -> nearest centre class 1 */
    CHECK_OK(collapse_nc_measure(COLLAPSE_FLOAT64, h, 4, 1, y, 2, W, b_second, 0.05, 0, &r));
    CHECK_CLOSE(r.ncc_agreement, 0.25, 1e-15);
    CHECK_CLOSE(r.accuracy, 0.5, 1e-15);
    /* W = 0: w_equinorm and self_duality take their documented values */
    CHECK_CLOSE(r.w_equinorm, 0.0, 1e-15);
    CHECK_CLOSE(r.self_duality, 1.0, 1e-15);
    /* u = (-1, 0) in class 1: intra = 2 ||s||^2 - 1 = -0.5 */
    CHECK_CLOSE(r.intra_cos, -0.5, 1e-15);
    CHECK_CLOSE(r.inter_cos, -0.25, 1e-15);
    CHECK_CLOSE(r.feature_norm, sqrt(2.0), 1e-15);
    collapse_nc_result_free(&r);
    /* equal logits -> class 1 for all */
    CHECK_OK(collapse_nc_measure(COLLAPSE_FLOAT64, h, 4, 1, y, 2, W, b_tie, 0.05, 0, &r));
    CHECK_CLOSE(r.accuracy, 0.5, 1e-15);
    CHECK_CLOSE(r.loss, log(2.0), 1e-15);
    collapse_nc_result_free(&r);
}

/* ---- in-test naive references on data spanning several internal chunks --------------------- */

static void test_naive_multichunk(void) {
    enum { C = 3, D = 1000, NPC = 150, N = C * NPC };
    double *h = malloc(sizeof(double) * N * D), *W = malloc(sizeof(double) * C * D);
    int32_t *y = malloc(sizeof(int32_t) * N);
    double b[C] = {0.1, -0.2, 0.05};
    trng g = {0x2545f4914f6cdd1dull};
    /* classes 1 and 2 have nearly equal means far from mu_P: exercises the cdnv recomputation */
    for (int i = 0; i < N; i++) {
        y[i] = 1 + (i * 7) % C;
        for (int j = 0; j < D; j++) {
            double m = (y[i] == 3 ? -4.0 : 4.0) * (j % 3 == 0) + (y[i] == 2 ? 1e-3 : 0.0) * (j % 5 == 0);
            h[(int64_t)i * D + j] = m + 0.01 * trng_normal(&g);
        }
    }
    for (int i = 0; i < C * D; i++) W[i] = 0.05 * trng_normal(&g);
    collapse_nc_result r = {0}, r1 = {0};
    CHECK_OK(collapse_nc_measure(COLLAPSE_FLOAT64, h, N, D, y, C, W, b, 0.3, 0, &r));
    /* naive references */
    double mu[C][D] = {{0}}, muG[D] = {0}, n_c[C] = {0};
    for (int i = 0; i < N; i++) {
        n_c[y[i] - 1]++;
        for (int j = 0; j < D; j++) mu[y[i] - 1][j] += h[(int64_t)i * D + j];
    }
    for (int c = 0; c < C; c++)
        for (int j = 0; j < D; j++) {
            muG[j] += mu[c][j] / N;
            mu[c][j] /= n_c[c];
        }
    double fn = 0, tw = 0, v[C] = {0}, loss = 0, acc = 0, agree = 0;
    double *u = malloc(sizeof(double) * N * D);
    for (int i = 0; i < N; i++) {
        const double *hi = h + (int64_t)i * D;
        double nn = 0, ww = 0;
        for (int j = 0; j < D; j++) {
            nn += (hi[j] - muG[j]) * (hi[j] - muG[j]);
            ww += (hi[j] - mu[y[i] - 1][j]) * (hi[j] - mu[y[i] - 1][j]);
        }
        for (int j = 0; j < D; j++) u[(int64_t)i * D + j] = (hi[j] - muG[j]) / sqrt(nn);
        fn += nn;
        tw += ww;
        v[y[i] - 1] += ww / n_c[y[i] - 1];
        double z[C], zmax = -INFINITY, dmin = INFINITY;
        int best = 0, near = 0;
        for (int c = 0; c < C; c++) {
            double s = b[c], dist = 0;
            for (int j = 0; j < D; j++) {
                s += W[c * D + j] * hi[j];
                dist += (hi[j] - mu[c][j]) * (hi[j] - mu[c][j]);
            }
            z[c] = s;
            if (s > zmax) zmax = s, best = c;
            if (dist < dmin) dmin = dist, near = c;
        }
        double se = 0;
        for (int c = 0; c < C; c++) se += exp(z[c] - zmax);
        loss += zmax + log(se) - z[y[i] - 1];
        acc += best == y[i] - 1;
        agree += best == near;
    }
    /* pairwise cosines by brute force */
    double intra[C] = {0}, inter = 0, cnt_inter = 0;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < N; k++) {
            if (i == k) continue;
            double cs = 0;
            for (int j = 0; j < D; j++) cs += u[(int64_t)i * D + j] * u[(int64_t)k * D + j];
            if (y[i] == y[k]) intra[y[i] - 1] += cs / (n_c[y[i] - 1] * (n_c[y[i] - 1] - 1));
            else inter += cs, cnt_inter++;
        }
    double cd = 0;
    for (int a = 0; a < C; a++)
        for (int bb = a + 1; bb < C; bb++) {
            double dist = 0;
            for (int j = 0; j < D; j++) dist += (mu[a][j] - mu[bb][j]) * (mu[a][j] - mu[bb][j]);
            cd += (v[a] + v[bb]) / (2 * dist) / (C * (C - 1) / 2);
        }
    double tol = 1e-9;
    expect_rel("naive", "feature_norm", r.feature_norm, sqrt(fn / N), tol, 1e-12, &max_err_f64);
    expect_rel("naive", "trace_within", r.trace_within, tw / N, tol, 1e-12, &max_err_f64);
    expect_rel("naive", "cdnv", r.cdnv, cd, tol, 1e-12, &max_err_f64);
    expect_rel("naive", "intra_cos", r.intra_cos, (intra[0] + intra[1] + intra[2]) / 3, tol, 1e-12, &max_err_f64);
    expect_rel("naive", "inter_cos", r.inter_cos, inter / cnt_inter, tol, 1e-12, &max_err_f64);
    expect_rel("naive", "loss", r.loss, loss / N, tol, 1e-12, &max_err_f64);
    expect_rel("naive", "accuracy", r.accuracy, acc / N, tol, 1e-12, &max_err_f64);
    expect_rel("naive", "ncc_agreement", r.ncc_agreement, agree / N, tol, 1e-12, &max_err_f64);
    CHECK(r.cdnv > 1.0); /* classes 1 and 2 are nearly indistinguishable */
    /* one sample per batch (one row per chunk) equals the one-shot call (several rows per chunk) */
    collapse_nc_stats *s = NULL;
    CHECK_OK(collapse_nc_stats_new(C, D, 0, &s));
    CHECK_OK(collapse_nc_stats_set_classifier(s, W, b));
    for (int i = 0; i < N; i++) CHECK_OK(collapse_nc_stats_pass1(s, COLLAPSE_FLOAT64, h + (int64_t)i * D, 1, y + i));
    CHECK_OK(collapse_nc_stats_end_pass1(s));
    double means[C * D], gm[D];
    CHECK_OK(collapse_nc_stats_means(s, means, gm));
    double me = 0;
    for (int c = 0; c < C; c++)
        for (int j = 0; j < D; j++) me = fmax(me, fabs(means[c * D + j] - mu[c][j]));
    for (int j = 0; j < D; j++) me = fmax(me, fabs(gm[j] - muG[j]));
    CHECK(me < 1e-13);
    for (int i = N - 1; i >= 0; i--)
        CHECK_OK(collapse_nc_stats_pass2(s, COLLAPSE_FLOAT64, h + (int64_t)i * D, 1, y + i));
    CHECK_OK(collapse_nc_stats_result(s, 0.3, &r1));
    compare_results("row-by-row vs one shot", &r1, &r, 1e-12, &max_err_stream);
    collapse_nc_stats_free(s);
    collapse_nc_result_free(&r);
    collapse_nc_result_free(&r1);
    free(u);
    free(h);
    free(W);
    free(y);
}

/* d < C - 1 and d = 1 still work (rank of the nc1 projection is d) */
static void test_tiny_dim(void) {
    double h[8] = {0, 0.1, 1, 1.2, 2, 2.1, 3.5, 3.0};
    int32_t y[8] = {1, 1, 2, 2, 3, 3, 4, 4};
    collapse_nc_result r = {0};
    CHECK_OK(collapse_nc_measure(COLLAPSE_FLOAT64, h, 8, 1, y, 4, NULL, NULL, 0.05, COLLAPSE_NC_WITHIN_SPECTRUM, &r));
    /* d = 1: Sigma_B and Sigma_W are scalars, nc1 = (Sigma_W / Sigma_B) / C */
    double mu[4] = {0.05, 1.1, 2.05, 3.25}, mp = (0.05 + 1.1 + 2.05 + 3.25) / 4, sb = 0, sw = 0;
    for (int c = 0; c < 4; c++) sb += (mu[c] - mp) * (mu[c] - mp) / 4;
    for (int i = 0; i < 8; i++) sw += (h[i] - mu[y[i] - 1]) * (h[i] - mu[y[i] - 1]) / 8;
    CHECK_CLOSE(r.nc1, sw / sb / 4, 1e-13);
    CHECK_CLOSE(r.variability, sw / sb, 1e-13);
    CHECK(r.within_spectrum_len == 1);
    CHECK_CLOSE(r.within_spectrum[0], sw, 1e-13);
    CHECK_CLOSE(r.between_spectrum[0], sb, 1e-13);
    for (int k = 1; k < 4; k++) CHECK_CLOSE(r.between_spectrum[k], 0.0, 1e-14);
    collapse_nc_result_free(&r);
}

/* ---- errors ---------------------------------------------------------------------------- */

static void test_errors(void) {
    double h[12] = {0, 1, 1, 0, 2, 2, 3, 1, 1, 3, 0, 0.5}; /* 6 x 2 */
    int32_t y[6] = {1, 2, 3, 1, 2, 3};
    double W[6] = {1, 0, 0, 1, 1, 1};
    collapse_nc_stats *s = NULL;
    collapse_nc_result r = {0};

    CHECK_FAILS(collapse_nc_stats_new(1, 2, 0, &s), "nc_stats_new: classes must be >= 2, got 1");
    CHECK(s == NULL);
    CHECK_FAILS(collapse_nc_stats_new(3, 0, 0, &s), "nc_stats_new: dim must be >= 1, got 0");
    CHECK_FAILS(collapse_nc_stats_new(3, 2, 0, NULL), "nc_stats_new: out expected, got NULL");
    CHECK_FAILS(collapse_nc_stats_new(3, 2, 8, &s), "nc_stats_new: unknown flags");
    CHECK_FAILS(collapse_nc_measure(COLLAPSE_FLOAT64, h, 6, 2, y, 1, NULL, NULL, 0.05, 0, &r),
                "nc_measure: classes must be >= 2");
    CHECK_FAILS(collapse_nc_measure(COLLAPSE_FLOAT64, h, 6, 0, y, 3, NULL, NULL, 0.05, 0, &r),
                "nc_measure: dim must be >= 1");

    CHECK_OK(collapse_nc_stats_new(3, 2, 0, &s));
    CHECK_FAILS(collapse_nc_stats_pass1(NULL, COLLAPSE_FLOAT64, h, 6, y), "nc_stats_pass1: stats expected, got NULL");
    CHECK_FAILS(collapse_nc_stats_pass1(s, COLLAPSE_FLOAT64, NULL, 6, y), "nc_stats_pass1: features expected, got NULL");
    CHECK_FAILS(collapse_nc_stats_pass1(s, COLLAPSE_FLOAT64, h, 6, NULL), "nc_stats_pass1: labels expected, got NULL");
    CHECK_FAILS(collapse_nc_stats_pass1(s, COLLAPSE_FLOAT64, h, -1, y), "nc_stats_pass1: n must be >= 0, got -1");
    CHECK_FAILS(collapse_nc_stats_pass1(s, COLLAPSE_INT32, h, 6, y),
                "nc_stats_pass1: features must be float32 or float64, got int32");
    CHECK(collapse_last_status() == COLLAPSE_ERR_DTYPE);
    int32_t bad[6] = {1, 2, 3, 1, 4, 3}, zero[6] = {1, 0, 3, 1, 2, 3};
    CHECK_FAILS(collapse_nc_stats_pass1(s, COLLAPSE_FLOAT64, h, 6, bad), "nc_stats_pass1: label 4 at index 4 is outside 1..3");
    CHECK(collapse_last_status() == COLLAPSE_ERR_RANGE);
    CHECK_FAILS(collapse_nc_stats_pass1(s, COLLAPSE_FLOAT64, h, 6, zero), "label 0 at index 1 is outside 1..3");
    double hn[12];
    memcpy(hn, h, sizeof h);
    hn[5] = NAN;
    CHECK_FAILS(collapse_nc_stats_pass1(s, COLLAPSE_FLOAT64, hn, 6, y),
                "nc_stats_pass1: features [6 x 2] hold a non-finite value (nan) at row 2, column 1");
    CHECK(collapse_last_status() == COLLAPSE_ERR_NUMERIC);
    float hf[12];
    for (int i = 0; i < 12; i++) hf[i] = (float)h[i];
    hf[10] = INFINITY;
    CHECK_FAILS(collapse_nc_stats_pass1(s, COLLAPSE_FLOAT32, hf, 6, y), "non-finite value (inf) at row 5, column 0");
    CHECK_FAILS(collapse_nc_stats_pass2(s, COLLAPSE_FLOAT64, h, 6, y), "nc_stats_pass2: pass 2 before end_pass1");
    CHECK(collapse_last_status() == COLLAPSE_ERR_STATE);
    CHECK_FAILS(collapse_nc_stats_result(s, 0.05, &r), "nc_stats_result: results need both passes");
    /* the rejected batches left nothing behind: a clean run gives the one-shot result */
    CHECK_OK(collapse_nc_stats_pass1(s, COLLAPSE_FLOAT64, h, 6, y));
    CHECK_OK(collapse_nc_stats_pass1(s, COLLAPSE_FLOAT64, h, 0, y)); /* empty batch */
    CHECK_OK(collapse_nc_stats_end_pass1(s));
    CHECK_FAILS(collapse_nc_stats_end_pass1(s), "nc_stats_end_pass1: end_pass1 was already called");
    CHECK_FAILS(collapse_nc_stats_pass1(s, COLLAPSE_FLOAT64, h, 6, y), "nc_stats_pass1: pass 1 is over");
    CHECK_OK(collapse_nc_stats_set_classifier(s, W, NULL)); /* after end_pass1, before pass 2: fine */
    CHECK_FAILS(collapse_nc_stats_pass2(s, COLLAPSE_FLOAT64, hn, 6, y), "nc_stats_pass2: features [6 x 2] hold a non-finite");
    CHECK_FAILS(collapse_nc_stats_pass2(s, COLLAPSE_FLOAT64, h, 6, bad), "nc_stats_pass2: label 4 at index 4");
    CHECK_OK(collapse_nc_stats_pass2(s, COLLAPSE_FLOAT64, h, 3, y));
    CHECK_FAILS(collapse_nc_stats_set_classifier(s, W, NULL),
                "nc_stats_set_classifier: the classifier must be set before the first pass-2 batch");
    CHECK_FAILS(collapse_nc_stats_result(s, 0.05, &r), "nc_stats_result: pass 2 saw 3 samples but pass 1 saw 6");
    CHECK(r.class_counts == NULL);
    CHECK_OK(collapse_nc_stats_pass2(s, COLLAPSE_FLOAT64, h + 6, 3, y + 3));
    CHECK_FAILS(collapse_nc_stats_result(s, 1.5, &r), "nc_stats_result: q must be in [0, 1], got 1.5");
    CHECK_FAILS(collapse_nc_stats_result(s, NAN, &r), "q must be in [0, 1]");
    CHECK_FAILS(collapse_nc_stats_result(s, 0.05, NULL), "nc_stats_result: out expected, got NULL");
    collapse_nc_result r2 = {0};
    CHECK_OK(collapse_nc_stats_result(s, 0.05, &r));
    CHECK_OK(collapse_nc_measure(COLLAPSE_FLOAT64, h, 6, 2, y, 3, W, NULL, 0.05, 0, &r2));
    compare_results("after rejected batches", &r, &r2, 1e-14, NULL);
    collapse_nc_result_free(&r);
    collapse_nc_result_free(&r2);
    collapse_nc_result_free(&r2); /* twice: safe on a zeroed struct */
    collapse_nc_stats_free(s);
    collapse_nc_stats_free(NULL);

    /* a pass-2 class histogram different from pass 1 */
    CHECK_OK(collapse_nc_stats_new(3, 2, 0, &s));
    CHECK_OK(collapse_nc_stats_pass1(s, COLLAPSE_FLOAT64, h, 6, y));
    CHECK_OK(collapse_nc_stats_end_pass1(s));
    int32_t y2[6] = {1, 1, 3, 1, 2, 3};
    CHECK_OK(collapse_nc_stats_pass2(s, COLLAPSE_FLOAT64, h, 6, y2));
    CHECK_FAILS(collapse_nc_stats_result(s, 0.05, &r), "nc_stats_result: pass 2 saw 3 samples of class 1 but pass 1 saw 2");
    collapse_nc_stats_free(s);

    /* classes with fewer than 2 samples */
    int32_t y1[6] = {1, 2, 3, 1, 2, 1};
    CHECK_FAILS(collapse_nc_measure(COLLAPSE_FLOAT64, h, 6, 2, y1, 3, NULL, NULL, 0.05, 0, &r),
                "nc_measure: class 3 has 1 sample; every class needs at least 2");
    int32_t y0[6] = {1, 3, 3, 1, 3, 1};
    CHECK_FAILS(collapse_nc_measure(COLLAPSE_FLOAT64, h, 6, 2, y0, 3, NULL, NULL, 0.05, 0, &r),
                "nc_measure: class 2 has 0 samples; every class needs at least 2");
    CHECK_OK(collapse_nc_stats_new(3, 2, 0, &s));
    CHECK_OK(collapse_nc_stats_pass1(s, COLLAPSE_FLOAT64, h, 6, y1));
    CHECK_FAILS(collapse_nc_stats_end_pass1(s), "nc_stats_end_pass1: class 3 has 1 sample");
    CHECK_OK(collapse_nc_stats_pass1(s, COLLAPSE_FLOAT64, h + 4, 1, y + 2)); /* one more sample of class 3 */
    CHECK_OK(collapse_nc_stats_end_pass1(s)); /* the failed call left the stats usable */
    collapse_nc_stats_free(s);

    /* errors from the one-shot call name it */
    CHECK_FAILS(collapse_nc_measure(COLLAPSE_FLOAT64, h, 6, 2, bad, 3, NULL, NULL, 0.05, 0, &r),
                "nc_measure: label 4 at index 4 is outside 1..3");
    CHECK_FAILS(collapse_nc_measure(COLLAPSE_FLOAT64, hn, 6, 2, y, 3, NULL, NULL, 0.05, 0, &r),
                "nc_measure: features [6 x 2] hold a non-finite value (nan) at row 2, column 1");
    CHECK_FAILS(collapse_nc_measure(COLLAPSE_INT32, h, 6, 2, y, 3, NULL, NULL, 0.05, 0, &r),
                "nc_measure: features must be float32 or float64, got int32");
    CHECK_FAILS(collapse_nc_measure(COLLAPSE_FLOAT64, NULL, 6, 2, y, 3, NULL, NULL, 0.05, 0, &r),
                "nc_measure: features expected, got NULL");
    CHECK_FAILS(collapse_nc_measure(COLLAPSE_FLOAT64, h, 6, 2, NULL, 3, NULL, NULL, 0.05, 0, &r),
                "nc_measure: labels expected, got NULL");
    CHECK_FAILS(collapse_nc_measure(COLLAPSE_FLOAT64, h, 6, 2, y, 3, NULL, NULL, 0.05, 0, NULL),
                "nc_measure: out expected, got NULL");
    double bb[3] = {0, 0, 0};
    CHECK_FAILS(collapse_nc_measure(COLLAPSE_FLOAT64, h, 6, 2, y, 3, NULL, bb, 0.05, 0, &r),
                "nc_measure: bias b given without a classifier W");
    CHECK_FAILS(collapse_nc_measure(COLLAPSE_FLOAT64, h, 6, 2, y, 3, NULL, NULL, -0.1, 0, &r),
                "nc_measure: q must be in [0, 1], got -0.1");
    double Wn[6] = {1, 0, 0, INFINITY, 1, 1};
    CHECK_FAILS(collapse_nc_measure(COLLAPSE_FLOAT64, h, 6, 2, y, 3, Wn, NULL, 0.05, 0, &r),
                "nc_measure: W [3 x 2] holds a non-finite value (inf) at row 1, column 1");
    double bn[3] = {0, NAN, 0};
    CHECK_FAILS(collapse_nc_measure(COLLAPSE_FLOAT64, h, 6, 2, y, 3, W, bn, 0.05, 0, &r),
                "nc_measure: b holds a non-finite value (nan) at index 1");
    CHECK_FAILS(collapse_nc_stats_set_classifier(NULL, W, NULL), "nc_stats_set_classifier: stats expected, got NULL");
    CHECK_OK(collapse_nc_stats_new(3, 2, 0, &s));
    CHECK_FAILS(collapse_nc_stats_set_classifier(s, NULL, NULL), "nc_stats_set_classifier: W [3 x 2] expected, got NULL");
    CHECK_FAILS(collapse_nc_stats_end_pass1(NULL), "nc_stats_end_pass1: stats expected, got NULL");
    CHECK_FAILS(collapse_nc_stats_means(s, NULL, NULL), "nc_stats_means: the means are known after nc_stats_end_pass1");
    collapse_nc_stats_free(s);

    /* all class means identical: between-class metrics undefined -> error, not NaN */
    double same[12] = {1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4};
    int32_t ys[6] = {1, 1, 2, 2, 3, 3};
    CHECK_FAILS(collapse_nc_measure(COLLAPSE_FLOAT64, same, 6, 2, ys, 3, NULL, NULL, 0.05, 0, &r),
                "nc_measure: all 3 class means are identical");
    CHECK(r.class_counts == NULL);
    /* features too large for float64 squares: an error, never NaN */
    double huge[12];
    for (int i = 0; i < 12; i++) huge[i] = h[i] * 1e200;
    collapse_status st = collapse_nc_measure(COLLAPSE_FLOAT64, huge, 6, 2, y, 3, NULL, NULL, 0.05, 0, &r);
    CHECK(st == COLLAPSE_ERR_NUMERIC);
    CHECK(r.class_counts == NULL);
}

int main(void) {
    test_fixture("balanced");
    test_fixture("imbalanced");
    test_fixture("near_etf");
    test_fixture("low_dim");
    test_perfect_collapse();
    test_one_hot_means();
    test_equal_means();
    test_ties_and_zero_features();
    test_naive_multichunk();
    test_tiny_dim();
    test_errors();
    printf("max relative error: float64 vs numpy %.3g, float32 vs numpy(float32 features) %.3g, "
           "float32 vs numpy(float64) %.3g, streaming vs one-shot %.3g\n",
           max_err_f64, max_err_f32, max_err_f32_vs_f64, max_err_stream);
    return check_report("test_metrics");
}
