/* Tensor-level linear kernels: argument checks once (kernel_args.h), outputs resized, then the
 * raw _f32/_f64 kernels of linear_impl.h. */
#include <stdio.h>

#include "collapse.h"
#include "core/kernel_args.h"

/* The shared arguments: weight [out x in] of a float dtype, input [n x in] of its dtype; note is
 * "(weight is [out x in])" for the shape messages of the other arguments. */
typedef struct linear_args {
    collapse_dtype dt;
    int64_t n, in, out;
    char note[SHAPE_BUF + 16];
} linear_args;

static collapse_status read_args(const char *fn, const collapse_tensor *x, const collapse_tensor *W, linear_args *a) {
    COLLAPSE_TRY(cl_arg_float(fn, "weight", W, &a->dt));
    COLLAPSE_TRY(cl_arg_input(fn, "weight", W, a->dt, 2, NULL, 0, NULL));
    char ws[SHAPE_BUF];
    snprintf(a->note, sizeof a->note, "(weight is %s)", cl_shape_str(2, W->shape, ws, sizeof ws));
    a->out = W->shape[0];
    a->in = W->shape[1];
    COLLAPSE_TRY(cl_arg_input(fn, "input", x, a->dt, 2, (const int64_t[]){CL_ANY, a->in}, 0, a->note));
    a->n = x->shape[0];
    return COLLAPSE_OK;
}

collapse_status collapse_linear_forward(const collapse_tensor *x, collapse_tensor *y, const collapse_tensor *W,
                                        const collapse_tensor *b) {
    static const char fn[] = "linear_forward";
    linear_args a;
    COLLAPSE_TRY(read_args(fn, x, W, &a));
    COLLAPSE_TRY(cl_arg_input(fn, "bias", b, a.dt, 1, (const int64_t[]){a.out}, 1, a.note));
    COLLAPSE_TRY(cl_arg_distinct(fn, "output", y, "input", x));
    COLLAPSE_TRY(cl_arg_output(fn, "output", y, a.dt, 2, (const int64_t[]){a.n, a.out}, 0));
    return CL_DISPATCH(a.dt, collapse_linear_forward, a.n, a.in, a.out, cl_data(x), cl_data(y), cl_data(W), cl_data(b));
}

collapse_status collapse_linear_backward(const collapse_tensor *x, const collapse_tensor *gy, collapse_tensor *gx,
                                         const collapse_tensor *W, collapse_tensor *gW, collapse_tensor *gb) {
    static const char fn[] = "linear_backward";
    linear_args a;
    COLLAPSE_TRY(read_args(fn, x, W, &a));
    COLLAPSE_TRY(cl_arg_input(fn, "grad_output", gy, a.dt, 2, (const int64_t[]){a.n, a.out}, 0, a.note));
    COLLAPSE_TRY(cl_arg_input(fn, "grad_weight", gW, a.dt, 2, W->shape, 1, a.note));
    COLLAPSE_TRY(cl_arg_input(fn, "grad_bias", gb, a.dt, 1, (const int64_t[]){a.out}, 1, a.note));
    COLLAPSE_TRY(cl_arg_distinct(fn, "grad_input", gx, "input", x));
    COLLAPSE_TRY(cl_arg_distinct(fn, "grad_input", gx, "grad_output", gy));
    COLLAPSE_TRY(cl_arg_output(fn, "grad_input", gx, a.dt, 2, (const int64_t[]){a.n, a.in}, 1));
    return CL_DISPATCH(a.dt, collapse_linear_backward, a.n, a.in, a.out, cl_data(x), cl_data(gy), cl_data(gx),
                       cl_data(W), cl_data(gW), cl_data(gb));
}
