/*
 * The C example of docs/c-api.md ("Measuring collapse from C"), compiled and run by ctest, plus
 * C-level checks of what it shows: conventions set before end_pass1, a state saved between the
 * passes and loaded, features streamed from an NPY file and from an .npz member by rows, and the
 * stats-file and convention errors. Numbers are checked against the numpy fixture of
 * spec/fixtures/make_convention_fixtures.py (spec/fixtures/conventions).
 */
#include "check.h"

#include <unistd.h>

/* ---- the docs/c-api.md example, verbatim ---- */
#include <collapse.h>
#include <stdio.h>

/* nc1 of features streamed from an NPY file (labels 0..C-1 in another), with the Papyan et al.
 * conventions, the state saved between the passes as a shard would; -1 on failure. */
static double example_nc1(const char *features, const char *labels, const char *state_file) {
    int64_t n = 0, d = 0;
    int C = 0;
    collapse_nc_stats *s = NULL, *t = NULL;
    collapse_nc_result r = {0};
    double nc1 = -1;
    if (collapse_nc_files_info(features, labels, 0, 0, &n, &d, &C) != COLLAPSE_OK ||
        collapse_nc_stats_new(C, d, COLLAPSE_NC_CONV_NC1_TRACE | COLLAPSE_NC_CONV_STD_UNBIASED, &s) != COLLAPSE_OK ||
        collapse_nc_stats_pass_files(s, 1, features, labels, 0) != COLLAPSE_OK ||
        collapse_nc_stats_end_pass1(s) != COLLAPSE_OK || collapse_nc_stats_save(s, state_file) != COLLAPSE_OK ||
        collapse_nc_stats_load(state_file, &t) != COLLAPSE_OK ||
        collapse_nc_stats_pass_files(t, 2, features, labels, 0) != COLLAPSE_OK ||
        collapse_nc_stats_result(t, 0.05, &r) != COLLAPSE_OK)
        fprintf(stderr, "example: %s\n", collapse_last_error());
    else
        nc1 = r.nc1;
    printf("%lld samples, %d classes, dim %lld: nc1 = %.6f, equinorm = %.6f\n", (long long)n, C, (long long)d, nc1,
           r.equinorm);
    collapse_nc_result_free(&r);
    collapse_nc_stats_free(s);
    collapse_nc_stats_free(t);
    return nc1;
}
/* ---- end of the example ---- */

#define DIR "spec/fixtures/conventions/"

/* `setting metric` of expected.txt. */
static double expected(const char *setting, const char *metric) {
    FILE *f = fopen(DIR "expected.txt", "r");
    char a[64], b[64];
    double v = NAN, x;
    while (f && fscanf(f, "%63s %63s %lf", a, b, &x) == 3)
        if (!strcmp(a, setting) && !strcmp(b, metric)) v = x;
    if (f) fclose(f);
    return v;
}

static void test_example(void) {
    char path[256];
    snprintf(path, sizeof path, "%s/capi_nc_%d.ncs", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    double nc1 = example_nc1(DIR "features.npy", DIR "labels.npy", path);
    remove(path);
    CHECK_CLOSE(nc1, expected("nc1=trace", "nc1"), 1e-12);
}

/* The same numbers from an .npz member (deflated, float32 features) through npy_rows, and the errors. */
static void test_npz_rows(void) {
    collapse_npy_rows *r = NULL;
    CHECK_OK(collapse_npy_rows_open_npz(DIR "case_deflated.npz", "feats", &r));
    int64_t shape[COLLAPSE_MAX_DIMS];
    CHECK(collapse_npy_rows_shape(r, shape) == 2 && shape[0] == 44 && shape[1] == 7);
    CHECK(collapse_npy_rows_is_float32(r));
    float rows[44 * 7];
    int64_t got = 0, total = 0;
    while (collapse_npy_rows_read(r, COLLAPSE_FLOAT32, 5, rows + total * 7, &got) == COLLAPSE_OK && got > 0) total += got;
    CHECK(total == 44);
    collapse_npy_rows_close(r);
    collapse_array a = {0};
    CHECK_OK(collapse_npy_read(DIR "features.npy", &a));
    double worst = 0;
    for (int i = 0; i < 44 * 7; i++) {
        double e = fabs((double)rows[i] - ((const double *)a.data)[i]);
        if (e > worst) worst = e;
    }
    CHECK(worst < 1e-5);
    collapse_array_free(&a);
    CHECK_FAILS(collapse_npy_rows_open_npz(DIR "case.npz", "feats", &r), "has no member 'feats' (members: 'features'");
    CHECK_FAILS(collapse_npy_rows_open_npz(DIR "missing.npz", "x", &r), "cannot open");
    int64_t n = 0, d = 0;
    int C = 0;
    CHECK_OK(collapse_nc_files_info(DIR "case.npz", DIR "case.npz", 0, 0, &n, &d, &C));
    CHECK(n == 44 && d == 7 && C == 4);
}

static void test_convention_errors(void) {
    collapse_nc_stats *s = NULL;
    CHECK_FAILS(collapse_nc_stats_new(3, 4, 1 << 20, &s), "unknown flags");
    CHECK_OK(collapse_nc_stats_new(3, 4, COLLAPSE_NC_CONV_MEAN_SAMPLES, &s));
    int conv = 0;
    CHECK_OK(collapse_nc_stats_conventions(s, &conv));
    CHECK(conv == COLLAPSE_NC_CONV_MEAN_SAMPLES);
    CHECK_FAILS(collapse_nc_stats_set_conventions(s, 1), "unknown convention bits 0x1");
    double x[12] = {0, 0, 0, 0, 1, 1, 1, 1, 0, 2, 0, 2};
    int32_t y[3] = {1, 2, 3};
    CHECK_OK(collapse_nc_stats_pass1(s, COLLAPSE_FLOAT64, x, 3, y));
    CHECK_OK(collapse_nc_stats_pass1(s, COLLAPSE_FLOAT64, x, 3, y));
    CHECK_OK(collapse_nc_stats_end_pass1(s));
    CHECK_FAILS(collapse_nc_stats_set_conventions(s, 0), "the global_mean convention shapes end_pass1");
    CHECK_OK(collapse_nc_stats_set_conventions(s, COLLAPSE_NC_CONV_MEAN_SAMPLES | COLLAPSE_NC_CONV_SELF_DUALITY_NORM));
    collapse_nc_stats_free(s);
}

int main(void) {
    test_example();
    test_npz_rows();
    test_convention_errors();
    return check_report("test_capi_nc");
}
