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

int main(void) {
    test_tensor_shapes();
    return check_report("test_nc_stats");
}
