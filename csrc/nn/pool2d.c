/* 2-d max and average pooling (PyTorch MaxPool2d / AvgPool2d, NCHW, square kernel, no padding,
 * floor mode). */
#include "collapse.h"
#include "core/args.h"
#include "nn/nchw.h"

/* Sizes of one call: planes = N C input planes of h x w, each pooled to ho x wo. */
typedef struct cl_pool_geom {
    int64_t planes, h, w, ho, wo, k, s;
    int64_t out_shape[4];
} cl_pool_geom;

static collapse_status cl_pool_geometry(const char *fn, const int64_t *in, int64_t kernel, int64_t stride,
                                        cl_pool_geom *g) {
    char b[CL_SHAPE_STR];
    COLLAPSE_TRY(cl_need_shape4(fn, "input shape", in, NULL));
    COLLAPSE_TRY(cl_need_int_opt(fn, "kernel", kernel, 1));
    COLLAPSE_TRY(cl_need_int_opt(fn, "stride", stride, 1));
    if (kernel > in[2] || kernel > in[3])
        return collapse_fail(COLLAPSE_ERR_SHAPE, "%s: kernel %lld x %lld is larger than the input planes %lld x %lld "
                             "(input %s)", fn, (long long)kernel, (long long)kernel, (long long)in[2],
                             (long long)in[3], cl_shape4_str(b, in));
    if (in[2] > INT32_MAX / in[3])
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: input planes %lld x %lld have more than %d elements (input %s)", fn,
                             (long long)in[2], (long long)in[3], INT32_MAX, cl_shape4_str(b, in));
    g->planes = in[0] * in[1], g->h = in[2], g->w = in[3], g->k = kernel, g->s = stride;
    g->ho = (g->h - kernel) / stride + 1;
    g->wo = (g->w - kernel) / stride + 1;
    g->out_shape[0] = in[0], g->out_shape[1] = in[1], g->out_shape[2] = g->ho, g->out_shape[3] = g->wo;
    return COLLAPSE_OK;
}

collapse_status collapse_pool2d_output_shape(const int64_t input_shape[4], int64_t kernel, int64_t stride,
                                             int64_t output_shape[4]) {
    cl_pool_geom g;
    COLLAPSE_TRY(cl_pool_geometry("pool2d_output_shape", input_shape, kernel, stride, &g));
    if (output_shape)
        for (int i = 0; i < 4; i++) output_shape[i] = g.out_shape[i];
    return COLLAPSE_OK;
}

/* The start of every pooling kernel: the geometry, then its two arrays checked in the order
 * given: `first` (shaped like the input, or like the output when first_is_output) and `second`
 * (the other shape). Forward: x then y; backward: grad_output then grad_input. */
static collapse_status cl_pool_begin(const char *fn, const int64_t *in, int64_t kernel, int64_t stride,
                                     cl_pool_geom *g, const char *first_name, const void *first,
                                     const char *second_name, const void *second, int first_is_output) {
    COLLAPSE_TRY(cl_pool_geometry(fn, in, kernel, stride, g));
    COLLAPSE_TRY(cl_need_ptr4(fn, first_name, first, first_is_output ? g->out_shape : in));
    return cl_need_ptr4(fn, second_name, second, first_is_output ? in : g->out_shape);
}

/* Index checks of the max-pool backward (before anything is written). */
static collapse_status cl_pool_check_indices(const char *fn, const cl_pool_geom *g, const int32_t *indices) {
    const int64_t count = g->planes * g->ho * g->wo, plane = g->h * g->w;
    for (int64_t t = 0; t < count; t++)
        if (indices[t] < 0 || indices[t] >= plane)
            return collapse_fail(COLLAPSE_ERR_RANGE,
                                 "%s: index %d at position %lld is outside the %lld x %lld input plane (0..%lld)", fn,
                                 (int)indices[t], (long long)t, (long long)g->h, (long long)g->w,
                                 (long long)(plane - 1));
    return COLLAPSE_OK;
}

#define CL_DOUBLE 0
#include "core/generic.h"
#include "nn/pool2d_impl.h"
#include "core/generic_end.h"
#define CL_DOUBLE 1
#include "core/generic.h"
#include "nn/pool2d_impl.h"
#include "core/generic_end.h"
