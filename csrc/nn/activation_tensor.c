/* Tensor-level activations: any shape, y resized like x (y may be x: in place); the backwards take
 * the forward OUTPUT y, gx resized like it (gx may be gy). */
#include "collapse.h"
#include "core/kernel_args.h"

typedef collapse_status (*act_fwd_f32)(int64_t, const float *, float *);
typedef collapse_status (*act_fwd_f64)(int64_t, const double *, double *);
typedef collapse_status (*act_bwd_f32)(int64_t, const float *, const float *, float *);
typedef collapse_status (*act_bwd_f64)(int64_t, const double *, const double *, double *);

static collapse_status forward(const char *fn, const collapse_tensor *x, collapse_tensor *y, act_fwd_f32 f32,
                               act_fwd_f64 f64) {
    collapse_dtype dt;
    COLLAPSE_TRY(cl_arg_float(fn, "input", x, &dt));
    COLLAPSE_TRY(cl_arg_input(fn, "input", x, dt, -1, NULL, 0, NULL));
    COLLAPSE_TRY(cl_arg_output_like(fn, "output", y, x, 0));
    int64_t n = collapse_tensor_numel(x);
    return dt == COLLAPSE_FLOAT32 ? f32(n, cl_data(x), cl_data(y)) : f64(n, cl_data(x), cl_data(y));
}

static collapse_status backward(const char *fn, const collapse_tensor *y, const collapse_tensor *gy,
                                collapse_tensor *gx, act_bwd_f32 f32, act_bwd_f64 f64) {
    collapse_dtype dt;
    COLLAPSE_TRY(cl_arg_float(fn, "output", y, &dt));
    COLLAPSE_TRY(cl_arg_input(fn, "output", y, dt, -1, NULL, 0, NULL));
    COLLAPSE_TRY(cl_arg_input(fn, "grad_output", gy, dt, y->ndim, y->shape, 0, NULL));
    COLLAPSE_TRY(cl_arg_distinct(fn, "grad_input", gx, "output", y));
    COLLAPSE_TRY(cl_arg_output_like(fn, "grad_input", gx, y, 0));
    int64_t n = collapse_tensor_numel(y);
    return dt == COLLAPSE_FLOAT32 ? f32(n, cl_data(y), cl_data(gy), cl_data(gx))
                                  : f64(n, cl_data(y), cl_data(gy), cl_data(gx));
}

collapse_status collapse_relu_forward(const collapse_tensor *x, collapse_tensor *y) {
    return forward("relu_forward", x, y, collapse_relu_forward_f32, collapse_relu_forward_f64);
}
collapse_status collapse_relu_backward(const collapse_tensor *y, const collapse_tensor *gy, collapse_tensor *gx) {
    return backward("relu_backward", y, gy, gx, collapse_relu_backward_f32, collapse_relu_backward_f64);
}
collapse_status collapse_tanh_forward(const collapse_tensor *x, collapse_tensor *y) {
    return forward("tanh_forward", x, y, collapse_tanh_forward_f32, collapse_tanh_forward_f64);
}
collapse_status collapse_tanh_backward(const collapse_tensor *y, const collapse_tensor *gy, collapse_tensor *gx) {
    return backward("tanh_backward", y, gy, gx, collapse_tanh_backward_f32, collapse_tanh_backward_f64);
}
