/* Tensor-level max / average pooling on contiguous NCHW tensors (square window, no padding):
 * outputs resized, then the raw _f32/_f64 kernels of pool2d.c. The backwards take the forward's
 * input x for its shape (and dtype). */
#include "collapse.h"
#include "core/kernel_args.h"

/* x a 4-d float tensor; ys its pooled shape (collapse_pool2d_output_shape checks the window). */
static collapse_status pool_input(const char *fn, const collapse_tensor *x, int64_t k, int64_t s, collapse_dtype *dt,
                                  int64_t ys[4]) {
    COLLAPSE_TRY(cl_arg_float(fn, "input", x, dt));
    COLLAPSE_TRY(cl_arg_input(fn, "input", x, *dt, 4, NULL, 0, NULL));
    return collapse_pool2d_output_shape(x->shape, k, s, ys);
}

/* A backward's shared arguments: x for the shape, gy of the pooled shape; gx resized like x. */
static collapse_status pool_backward_args(const char *fn, const collapse_tensor *x, const collapse_tensor *gy,
                                          collapse_tensor *gx, int64_t k, int64_t s, collapse_dtype *dt,
                                          int64_t ys[4]) {
    COLLAPSE_TRY(pool_input(fn, x, k, s, dt, ys));
    COLLAPSE_TRY(cl_arg_input(fn, "grad_output", gy, *dt, 4, ys, 0, NULL));
    COLLAPSE_TRY(cl_arg_distinct(fn, "grad_input", gx, "grad_output", gy));
    return cl_arg_output_like(fn, "grad_input", gx, x, 0);
}

collapse_status collapse_maxpool2d_forward(const collapse_tensor *x, collapse_tensor *y, collapse_tensor *indices,
                                           int64_t kernel, int64_t stride) {
    static const char fn[] = "maxpool2d_forward";
    collapse_dtype dt;
    int64_t ys[4];
    COLLAPSE_TRY(pool_input(fn, x, kernel, stride, &dt, ys));
    COLLAPSE_TRY(cl_arg_distinct(fn, "output", y, "input", x));
    COLLAPSE_TRY(cl_arg_output(fn, "output", y, dt, 4, ys, 0));
    COLLAPSE_TRY(cl_arg_output(fn, "indices", indices, COLLAPSE_INT32, 4, ys, 1));
    return CL_DISPATCH(dt, collapse_maxpool2d_forward, x->shape, cl_data(x), cl_data(y), cl_data(indices), kernel,
                       stride);
}

collapse_status collapse_maxpool2d_backward(const collapse_tensor *x, const collapse_tensor *gy, collapse_tensor *gx,
                                            const collapse_tensor *indices, int64_t kernel, int64_t stride) {
    static const char fn[] = "maxpool2d_backward";
    collapse_dtype dt;
    int64_t ys[4];
    COLLAPSE_TRY(pool_input(fn, x, kernel, stride, &dt, ys));
    COLLAPSE_TRY(cl_arg_input(fn, "indices", indices, COLLAPSE_INT32, 4, ys, 0, NULL));
    COLLAPSE_TRY(pool_backward_args(fn, x, gy, gx, kernel, stride, &dt, ys));
    return CL_DISPATCH(dt, collapse_maxpool2d_backward, x->shape, cl_data(gy), cl_data(gx), cl_data(indices), kernel,
                       stride);
}

collapse_status collapse_avgpool2d_forward(const collapse_tensor *x, collapse_tensor *y, int64_t kernel,
                                           int64_t stride) {
    static const char fn[] = "avgpool2d_forward";
    collapse_dtype dt;
    int64_t ys[4];
    COLLAPSE_TRY(pool_input(fn, x, kernel, stride, &dt, ys));
    COLLAPSE_TRY(cl_arg_distinct(fn, "output", y, "input", x));
    COLLAPSE_TRY(cl_arg_output(fn, "output", y, dt, 4, ys, 0));
    return CL_DISPATCH(dt, collapse_avgpool2d_forward, x->shape, cl_data(x), cl_data(y), kernel, stride);
}

collapse_status collapse_avgpool2d_backward(const collapse_tensor *x, const collapse_tensor *gy, collapse_tensor *gx,
                                            int64_t kernel, int64_t stride) {
    static const char fn[] = "avgpool2d_backward";
    collapse_dtype dt;
    int64_t ys[4];
    COLLAPSE_TRY(pool_backward_args(fn, x, gy, gx, kernel, stride, &dt, ys));
    return CL_DISPATCH(dt, collapse_avgpool2d_backward, x->shape, cl_data(gy), cl_data(gx), kernel, stride);
}
