/* The tensor entry points of the streaming statistics (issue 12: full shape, dtype and layout
 * checked against the stats object) and the save / load / merge protocol (issue 14). */
#include "check.h"

static collapse_tensor *matrix(collapse_dtype dt, int64_t rows, int64_t cols) {
    int64_t shape[2] = {rows, cols};
    collapse_tensor *t = NULL;
    CHECK_OK(collapse_tensor_new(dt, 2, shape, &t));
    return t;
}

static void test_tensor_shapes(void) {
    collapse_nc_stats *s = NULL;
    CHECK_OK(collapse_nc_stats_new(3, 4, 0, &s));
    int64_t n = 6;
    collapse_tensor *y = NULL;
    CHECK_OK(collapse_tensor_new(COLLAPSE_INT32, 1, &n, &y));
    int32_t *yl = collapse_tensor_data(y);
    for (int i = 0; i < 6; i++) yl[i] = i % 3 + 1;
    collapse_tensor *narrow = matrix(COLLAPSE_FLOAT64, 6, 3), *wide = matrix(COLLAPSE_FLOAT32, 6, 5);
    collapse_tensor *ok = matrix(COLLAPSE_FLOAT64, 6, 4), *ints = matrix(COLLAPSE_INT32, 6, 4);
    CHECK_FAILS(collapse_nc_stats_pass1_tensor(s, narrow, y),
                "nc_stats_pass1: features are [6 x 3] but the stats were made for dim 4; expected [6 x 4]");
    CHECK_FAILS(collapse_nc_stats_pass1_tensor(s, wide, y), "features are [6 x 5] but the stats were made for dim 4");
    CHECK_FAILS(collapse_nc_stats_pass1_tensor(s, ints, y), "features must be float32 or float64, got int32");
    CHECK_FAILS(collapse_nc_stats_pass1_tensor(s, ok, NULL), "labels expected, got NULL");
    CHECK_FAILS(collapse_nc_stats_pass1_tensor(s, ok, ok), "labels must be a 1-d int32 tensor, got a 2-d float64");
    collapse_tensor *tr = NULL, *base = matrix(COLLAPSE_FLOAT64, 4, 6);
    CHECK_OK(collapse_tensor_transpose(base, &tr)); /* [6 x 4] view, not contiguous */
    CHECK_FAILS(collapse_nc_stats_pass1_tensor(s, tr, y), "features [6 x 4] must be contiguous");
    collapse_tensor *y5 = NULL;
    CHECK_OK(collapse_tensor_narrow(y, 0, 0, 5, &y5));
    CHECK_FAILS(collapse_nc_stats_pass1_tensor(s, ok, y5), "6 feature rows but 5 labels");
    double *h = collapse_tensor_data(ok);
    for (int i = 0; i < 24; i++) h[i] = (double)((i * 7) % 5) + (i / 4 % 3);
    CHECK_OK(collapse_nc_stats_pass1_tensor(s, ok, y));
    CHECK_OK(collapse_nc_stats_end_pass1(s));
    CHECK_FAILS(collapse_nc_stats_pass2_tensor(s, narrow, y), "nc_stats_pass2: features are [6 x 3]");
    CHECK_OK(collapse_nc_stats_pass2_tensor(s, ok, y));
    int C = 0, flags = -1;
    int64_t d = 0;
    CHECK_OK(collapse_nc_stats_shape(s, &C, &d, &flags));
    CHECK(C == 3 && d == 4 && flags == 0);
    collapse_nc_result r = {0};
    CHECK_OK(collapse_nc_stats_result(s, 0.05, &r));
    CHECK(r.samples == 6);
    collapse_nc_result_free(&r);
    collapse_tensor_release(y5);
    collapse_tensor_release(tr);
    collapse_tensor_release(base);
    collapse_tensor_release(narrow);
    collapse_tensor_release(wide);
    collapse_tensor_release(ok);
    collapse_tensor_release(ints);
    collapse_tensor_release(y);
    collapse_nc_stats_free(s);
}

/* Two halves through serialize / deserialize / merge against collapse_nc_measure on the whole. */
static void test_merge_halves(void) {
    enum { C = 4, D = 6, N = 200 };
    static double h[N * D], W[C * D], b[C];
    static int32_t y[N];
    unsigned s0 = 12345;
    for (int i = 0; i < N * D; i++) {
        s0 = s0 * 1103515245u + 12345u;
        h[i] = (double)(s0 >> 8) / 16777216.0 - 0.5 + ((i / D) % C == i % D ? 1.5 : 0.0);
    }
    for (int i = 0; i < N; i++) y[i] = i % C + 1;
    for (int i = 0; i < C * D; i++) W[i] = (double)((i * 37) % 11) / 11.0 - 0.4;
    for (int c = 0; c < C; c++) b[c] = 0.1 * c;
    collapse_nc_result whole = {0}, merged = {0};
    CHECK_OK(collapse_nc_measure(COLLAPSE_FLOAT64, h, N, D, y, C, W, b, 0.05, COLLAPSE_NC_WITHIN_SPECTRUM, &whole));
    int64_t cut = 77;
    collapse_nc_stats *a = NULL, *z = NULL, *m = NULL, *a2 = NULL, *z2 = NULL;
    CHECK_OK(collapse_nc_stats_new(C, D, COLLAPSE_NC_WITHIN_SPECTRUM, &a));
    CHECK_OK(collapse_nc_stats_new(C, D, COLLAPSE_NC_WITHIN_SPECTRUM, &z));
    CHECK_OK(collapse_nc_stats_set_classifier(a, W, b));
    CHECK_OK(collapse_nc_stats_pass1(a, COLLAPSE_FLOAT64, h, cut, y));
    CHECK_OK(collapse_nc_stats_pass1(z, COLLAPSE_FLOAT64, h + cut * D, N - cut, y + cut));
    void *buf = NULL;
    size_t len = 0;
    CHECK_OK(collapse_nc_stats_serialize(z, &buf, &len));
    collapse_nc_stats_free(z);
    CHECK_OK(collapse_nc_stats_deserialize(buf, len, &z));
    ((unsigned char *)buf)[len - 1] ^= 1;
    CHECK_FAILS(collapse_nc_stats_deserialize(buf, len, &m), "the buffer is corrupt (CRC-32 mismatch)");
    CHECK_FAILS(collapse_nc_stats_deserialize(buf, 23, &m), "is truncated (23 bytes");
    free(buf);
    CHECK_OK(collapse_nc_stats_merge(a, z)); /* z had no classifier: a's is kept */
    CHECK_OK(collapse_nc_stats_end_pass1(a));
    CHECK_OK(collapse_nc_stats_clone(a, &a2));
    CHECK_OK(collapse_nc_stats_clone(a, &z2));
    CHECK_OK(collapse_nc_stats_pass2(a2, COLLAPSE_FLOAT64, h, cut, y));
    CHECK_OK(collapse_nc_stats_pass2(z2, COLLAPSE_FLOAT64, h + cut * D, N - cut, y + cut));
    CHECK_FAILS(collapse_nc_stats_merge(a2, z), "cannot merge a pass-1 state with a pass-2 state");
    CHECK_OK(collapse_nc_stats_merge(a2, z2));
    CHECK_OK(collapse_nc_stats_result(a2, 0.05, &merged));
    CHECK(merged.samples == N && merged.has_classifier);
    CHECK_CLOSE(merged.intra_cos, whole.intra_cos, 1e-13);
    CHECK_CLOSE(merged.inter_cos_max, whole.inter_cos_max, 1e-13);
    CHECK_CLOSE(merged.nc1, whole.nc1, 1e-13);
    CHECK_CLOSE(merged.cdnv, whole.cdnv, 1e-13);
    CHECK_CLOSE(merged.self_duality, whole.self_duality, 1e-13);
    CHECK_CLOSE(merged.loss, whole.loss, 1e-13);
    CHECK(merged.accuracy == whole.accuracy && merged.ncc_agreement == whole.ncc_agreement);
    for (int k = 0; k < whole.within_spectrum_len; k++)
        CHECK_CLOSE(merged.within_spectrum[k], whole.within_spectrum[k], 1e-12);
    CHECK_FAILS(collapse_nc_stats_save(a2, "/nonexistent-dir/x.ncs"), "");
    CHECK_FAILS(collapse_nc_stats_load("/nonexistent-dir/x.ncs", &m), "nc_stats_load: cannot open '/nonexistent-dir/x.ncs'");
    collapse_nc_result_free(&whole);
    collapse_nc_result_free(&merged);
    collapse_nc_stats_free(a);
    collapse_nc_stats_free(z);
    collapse_nc_stats_free(a2);
    collapse_nc_stats_free(z2);
}

int main(void) {
    test_tensor_shapes();
    test_merge_halves();
    return check_report("test_nc_stats");
}
