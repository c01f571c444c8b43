/* Tensor-level linear kernels: argument checks once (kernel_args.h), outputs resized, then the
 * raw _f32/_f64 kernels of linear_impl.h. */
#include <stdio.h>

#include "collapse.h"
#include "core/kernel_args.h"

/* weight [out x in] of a float dtype; note = "(weight is [out x in])" for shape messages. */
static collapse_status weight_arg(const char *fn, const collapse_tensor *W, collapse_dtype *dt, char *note,
                                  size_t len) {
    COLLAPSE_TRY(cl_arg_float(fn, "weight", W, dt));
    COLLAPSE_TRY(cl_arg_input(fn, "weight", W, *dt, 2, NULL, 0, NULL));
    char ws[SHAPE_BUF];
    snprintf(note, len, "(weight is %s)", cl_shape_str(2, W->shape, ws, sizeof ws));
    return COLLAPSE_OK;
}

collapse_status collapse_linear_forward(const collapse_tensor *x, collapse_tensor *y, const collapse_tensor *W,
                                        const collapse_tensor *b) {
    static const char fn[] = "linear_forward";
    collapse_dtype dt;
    char note[SHAPE_BUF + 16];
    COLLAPSE_TRY(weight_arg(fn, W, &dt, note, sizeof note));
    int64_t out = W->shape[0], in = W->shape[1];
    COLLAPSE_TRY(cl_arg_input(fn, "input", x, dt, 2, (const int64_t[]){CL_ANY, in}, 0, note));
    COLLAPSE_TRY(cl_arg_input(fn, "bias", b, dt, 1, (const int64_t[]){out}, 1, note));
    COLLAPSE_TRY(cl_arg_distinct(fn, "output", y, "input", x));
    int64_t n = x->shape[0];
    COLLAPSE_TRY(cl_arg_output(fn, "output", y, dt, 2, (const int64_t[]){n, out}, 0));
    return CL_DISPATCH(dt, collapse_linear_forward, n, in, out, cl_data(x), cl_data(y), cl_data(W), cl_data(b));
}

collapse_status collapse_linear_backward(const collapse_tensor *x, const collapse_tensor *gy, collapse_tensor *gx,
                                         const collapse_tensor *W, collapse_tensor *gW, collapse_tensor *gb) {
    static const char fn[] = "linear_backward";
    collapse_dtype dt;
    char note[SHAPE_BUF + 16];
    COLLAPSE_TRY(weight_arg(fn, W, &dt, note, sizeof note));
    int64_t out = W->shape[0], in = W->shape[1];
    COLLAPSE_TRY(cl_arg_input(fn, "input", x, dt, 2, (const int64_t[]){CL_ANY, in}, 0, note));
    int64_t n = x->shape[0];
    COLLAPSE_TRY(cl_arg_input(fn, "grad_output", gy, dt, 2, (const int64_t[]){n, out}, 0, note));
    COLLAPSE_TRY(cl_arg_input(fn, "grad_weight", gW, dt, 2, W->shape, 0, note));
    COLLAPSE_TRY(cl_arg_input(fn, "grad_bias", gb, dt, 1, (const int64_t[]){out}, 1, note));
    COLLAPSE_TRY(cl_arg_distinct(fn, "grad_input", gx, "input", x));
    COLLAPSE_TRY(cl_arg_distinct(fn, "grad_input", gx, "grad_output", gy));
    COLLAPSE_TRY(cl_arg_output(fn, "grad_input", gx, dt, 2, (const int64_t[]){n, in}, 1));
    return CL_DISPATCH(dt, collapse_linear_backward, n, in, out, cl_data(x), cl_data(gy), cl_data(gx), cl_data(W),
                       cl_data(gW), cl_data(gb));
}
