/* Tensor-level conv2d on contiguous NCHW tensors: shapes from the tensors, the output and the
 * im2col scratch (columns) resized by the kernel, then the raw _f32/_f64 kernels of conv2d.c. */
#include "collapse.h"
#include "core/kernel_args.h"

/* x [N x Cin x H x W] and weight [Cout x Cin x k x k] of one float dtype; the output shape and
 * the columns element count (collapse_conv2d_output_shape checks that they fit). */
static collapse_status conv_args(const char *fn, const collapse_tensor *x, const collapse_tensor *W, int64_t stride,
                                 int64_t padding, collapse_dtype *dt, int64_t ys[4], int64_t *ncol) {
    COLLAPSE_TRY(cl_arg_float(fn, "weight", W, dt));
    COLLAPSE_TRY(cl_arg_input(fn, "weight", W, *dt, 4, NULL, 0, NULL));
    COLLAPSE_TRY(cl_arg_input(fn, "input", x, *dt, 4, NULL, 0, NULL));
    return collapse_conv2d_output_shape(x->shape, W->shape, stride, padding, ys, ncol);
}

/* The columns buffer: the caller's (resized) or, when it passed none, a temporary one. */
static collapse_status columns_arg(const char *fn, collapse_tensor *col, collapse_dtype dt, int64_t ncol,
                                   collapse_tensor **use, collapse_tensor **temp) {
    *use = NULL;
    *temp = NULL;
    if (ncol == 0) return COLLAPSE_OK;
    if (!col) {
        COLLAPSE_TRY(collapse_tensor_new(dt, 1, &ncol, temp));
        *use = *temp;
        return COLLAPSE_OK;
    }
    COLLAPSE_TRY(cl_arg_output(fn, "columns", col, dt, 1, &ncol, 0));
    *use = col;
    return COLLAPSE_OK;
}

collapse_status collapse_conv2d_forward(const collapse_tensor *x, collapse_tensor *y, const collapse_tensor *W,
                                        const collapse_tensor *b, collapse_tensor *columns, int64_t stride,
                                        int64_t padding) {
    static const char fn[] = "conv2d_forward";
    collapse_dtype dt;
    int64_t ys[4], ncol = 0;
    COLLAPSE_TRY(conv_args(fn, x, W, stride, padding, &dt, ys, &ncol));
    COLLAPSE_TRY(cl_arg_input(fn, "bias", b, dt, 1, W->shape, 1, NULL));
    COLLAPSE_TRY(cl_arg_distinct(fn, "output", y, "input", x));
    COLLAPSE_TRY(cl_arg_output(fn, "output", y, dt, 4, ys, 0));
    collapse_tensor *col, *temp;
    COLLAPSE_TRY(columns_arg(fn, columns, dt, ncol, &col, &temp));
    collapse_status s = CL_DISPATCH(dt, collapse_conv2d_forward, x->shape, W->shape, cl_data(x), cl_data(y), cl_data(W),
                                    cl_data(b), cl_data(col), stride, padding);
    collapse_tensor_release(temp);
    return s;
}

collapse_status collapse_conv2d_backward(const collapse_tensor *x, const collapse_tensor *gy, collapse_tensor *gx,
                                         const collapse_tensor *W, collapse_tensor *gW, collapse_tensor *gb,
                                         collapse_tensor *columns, int64_t stride, int64_t padding) {
    static const char fn[] = "conv2d_backward";
    collapse_dtype dt;
    int64_t ys[4], ncol = 0;
    COLLAPSE_TRY(conv_args(fn, x, W, stride, padding, &dt, ys, &ncol));
    COLLAPSE_TRY(cl_arg_input(fn, "grad_output", gy, dt, 4, ys, 0, NULL));
    COLLAPSE_TRY(cl_arg_input(fn, "grad_weight", gW, dt, 4, W->shape, 1, NULL));
    COLLAPSE_TRY(cl_arg_input(fn, "grad_bias", gb, dt, 1, W->shape, 1, NULL));
    COLLAPSE_TRY(cl_arg_distinct(fn, "grad_input", gx, "input", x));
    COLLAPSE_TRY(cl_arg_distinct(fn, "grad_input", gx, "grad_output", gy));
    COLLAPSE_TRY(cl_arg_output_like(fn, "grad_input", gx, x, 1));
    collapse_tensor *col, *temp;
    COLLAPSE_TRY(columns_arg(fn, columns, dt, (gx || gW) ? ncol : 0, &col, &temp));
    collapse_status s = CL_DISPATCH(dt, collapse_conv2d_backward, x->shape, W->shape, cl_data(x), cl_data(gy),
                                    cl_data(gx), cl_data(W), cl_data(gW), cl_data(gb), cl_data(col), stride, padding);
    collapse_tensor_release(temp);
    return s;
}
