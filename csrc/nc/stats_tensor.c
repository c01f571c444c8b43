/*
 * Tensor entry points of the streaming statistics: the raw-pointer passes take only a row count
 * and trust the caller for the width, so a feature matrix narrower than the stats' dim was read
 * past its end and a wider one gave wrong metrics (issue 12). These check the whole shape, the
 * dtype and the layout against the stats object before handing the data on.
 */
#include "collapse.h"
#include "core/error.h"
#include "nc/stats_internal.h"

static collapse_status check_tensors(const char *fn, const collapse_nc_stats *s, const collapse_tensor *x,
                                     const collapse_tensor *y) {
    if (!s) return collapse_fail(COLLAPSE_ERR_ARG, "%s: stats expected, got NULL", fn);
    if (!x) return collapse_fail(COLLAPSE_ERR_ARG, "%s: features expected, got NULL", fn);
    if (!y) return collapse_fail(COLLAPSE_ERR_ARG, "%s: labels expected, got NULL", fn);
    collapse_dtype dt = collapse_tensor_dtype(x);
    if (dt != COLLAPSE_FLOAT32 && dt != COLLAPSE_FLOAT64)
        return collapse_fail(COLLAPSE_ERR_DTYPE, "%s: features must be float32 or float64, got %s", fn,
                             collapse_dtype_name(dt));
    if (collapse_tensor_ndim(x) != 2)
        return collapse_fail(COLLAPSE_ERR_SHAPE, "%s: features must be a 2-d tensor [N x %lld], got %d dimensions",
                             fn, (long long)s->d, collapse_tensor_ndim(x));
    int64_t n = collapse_tensor_size(x, 0), d = collapse_tensor_size(x, 1);
    if (d != s->d)
        return collapse_fail(COLLAPSE_ERR_SHAPE,
                             "%s: features are [%lld x %lld] but the stats were made for dim %lld; expected [%lld x %lld]",
                             fn, (long long)n, (long long)d, (long long)s->d, (long long)n, (long long)s->d);
    if (!collapse_tensor_is_contiguous(x))
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: features [%lld x %lld] must be contiguous (row-major)", fn,
                             (long long)n, (long long)d);
    if (collapse_tensor_dtype(y) != COLLAPSE_INT32 || collapse_tensor_ndim(y) != 1)
        return collapse_fail(COLLAPSE_ERR_DTYPE, "%s: labels must be a 1-d int32 tensor, got a %d-d %s tensor", fn,
                             collapse_tensor_ndim(y), collapse_dtype_name(collapse_tensor_dtype(y)));
    if (collapse_tensor_size(y, 0) != n)
        return collapse_fail(COLLAPSE_ERR_SHAPE, "%s: %lld feature rows but %lld labels", fn, (long long)n,
                             (long long)collapse_tensor_size(y, 0));
    if (!collapse_tensor_is_contiguous(y))
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: labels must be contiguous", fn);
    return COLLAPSE_OK;
}

collapse_status collapse_nc_stats_pass1_tensor(collapse_nc_stats *s, const collapse_tensor *features,
                                               const collapse_tensor *labels) {
    COLLAPSE_TRY(check_tensors("nc_stats_pass1", s, features, labels));
    return collapse_nc_stats_pass1(s, collapse_tensor_dtype(features), collapse_tensor_data(features),
                                   collapse_tensor_size(features, 0), collapse_tensor_data(labels));
}

collapse_status collapse_nc_stats_pass2_tensor(collapse_nc_stats *s, const collapse_tensor *features,
                                               const collapse_tensor *labels) {
    COLLAPSE_TRY(check_tensors("nc_stats_pass2", s, features, labels));
    return collapse_nc_stats_pass2(s, collapse_tensor_dtype(features), collapse_tensor_data(features),
                                   collapse_tensor_size(features, 0), collapse_tensor_data(labels));
}

collapse_status collapse_nc_stats_shape(const collapse_nc_stats *s, int *classes, int64_t *dim, int *flags) {
    if (!s) return collapse_fail(COLLAPSE_ERR_ARG, "nc_stats_shape: stats expected, got NULL");
    if (classes) *classes = s->C;
    if (dim) *dim = s->d;
    if (flags) *flags = s->flags;
    return COLLAPSE_OK;
}

/* Conventions (docs/metrics.md, "Conventions"). Each bit may change only while what it shapes is
 * still to be computed: the centring of M~ at end_pass1, the NCC decision during pass 2, the rest
 * in the result. */
collapse_status collapse_nc_stats_set_conventions(collapse_nc_stats *s, int conventions) {
    static const char fn[] = "nc_stats_set_conventions";
    if (!s) return collapse_fail(COLLAPSE_ERR_ARG, "%s: stats expected, got NULL", fn);
    if (conventions & ~COLLAPSE_NC_CONV_ALL)
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: unknown convention bits 0x%x (expected COLLAPSE_NC_CONV_* bits)", fn,
                             (unsigned)(conventions & ~COLLAPSE_NC_CONV_ALL));
    int changed = conventions ^ s->conv;
    if ((changed & COLLAPSE_NC_CONV_MEAN_SAMPLES) && s->state != NC_PASS1)
        return collapse_fail(COLLAPSE_ERR_STATE, "%s: the global_mean convention shapes end_pass1, which was already "
                             "called; set it before end_pass1", fn);
    if ((changed & COLLAPSE_NC_CONV_NCC_NO_BIAS) && s->pass2_started)
        return collapse_fail(COLLAPSE_ERR_STATE, "%s: the ncc_bias convention is applied in pass 2, which has "
                             "started; set it before the first pass-2 batch", fn);
    s->conv = conventions;
    return COLLAPSE_OK;
}

collapse_status collapse_nc_stats_conventions(const collapse_nc_stats *s, int *conventions) {
    if (!s) return collapse_fail(COLLAPSE_ERR_ARG, "nc_stats_conventions: stats expected, got NULL");
    if (!conventions) return collapse_fail(COLLAPSE_ERR_ARG, "nc_stats_conventions: conventions expected, got NULL");
    *conventions = s->conv;
    return COLLAPSE_OK;
}
