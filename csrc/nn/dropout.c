/* Dropout kernels (tensor level): the train-mode forward draws the mask from a collapse_rng and
 * keeps it for the backward. Evaluate mode is the identity and needs no kernel (nn.Dropout). */
#include "collapse.h"
#include "core/args.h"
#include "core/kernel_args.h"

#define CL_DOUBLE 0
#include "core/generic.h"
#include "nn/dropout_impl.h"
#include "core/generic_end.h"
#define CL_DOUBLE 1
#include "core/generic.h"
#include "nn/dropout_impl.h"
#include "core/generic_end.h"

collapse_status collapse_dropout_forward(const collapse_tensor *x, collapse_tensor *y, collapse_tensor *mask, double p,
                                         collapse_rng *g) {
    static const char fn[] = "dropout_forward";
    collapse_dtype dt;
    COLLAPSE_TRY(cl_arg_float(fn, "input", x, &dt));
    COLLAPSE_TRY(cl_arg_input(fn, "input", x, dt, -1, NULL, 0, NULL));
    if (!(p >= 0 && p <= 1)) return collapse_fail(COLLAPSE_ERR_ARG, "%s: p must be in [0, 1], got %g", fn, p);
    if (!g) return collapse_fail(COLLAPSE_ERR_ARG, "%s: rng is NULL, expected a generator", fn);
    COLLAPSE_TRY(cl_arg_distinct(fn, "output", y, "input", x));
    COLLAPSE_TRY(cl_arg_distinct(fn, "mask", mask, "input", x));
    COLLAPSE_TRY(cl_arg_distinct(fn, "mask", mask, "output", y));
    COLLAPSE_TRY(cl_arg_output_like(fn, "output", y, x, 0));
    COLLAPSE_TRY(cl_arg_output_like(fn, "mask", mask, x, 0));
    double keep = 1 - p, scale = keep > 0 ? 1 / keep : 0; /* p == 1 zeroes everything, as PyTorch */
    int64_t n = collapse_tensor_numel(x);
    if (dt == COLLAPSE_FLOAT32) dropout_fwd_f32(n, cl_data(x), cl_data(y), cl_data(mask), keep, scale, g);
    else dropout_fwd_f64(n, cl_data(x), cl_data(y), cl_data(mask), keep, scale, g);
    return COLLAPSE_OK;
}

collapse_status collapse_dropout_backward(const collapse_tensor *gy, collapse_tensor *gx, const collapse_tensor *mask) {
    static const char fn[] = "dropout_backward";
    collapse_dtype dt;
    COLLAPSE_TRY(cl_arg_float(fn, "mask", mask, &dt));
    COLLAPSE_TRY(cl_arg_input(fn, "mask", mask, dt, -1, NULL, 0, NULL));
    COLLAPSE_TRY(cl_arg_input(fn, "grad_output", gy, dt, mask->ndim, mask->shape, 0, "(the mask of the forward)"));
    COLLAPSE_TRY(cl_arg_distinct(fn, "grad_input", gx, "mask", mask));
    COLLAPSE_TRY(cl_arg_output_like(fn, "grad_input", gx, mask, 0)); /* may be grad_output itself */
    int64_t n = collapse_tensor_numel(mask);
    if (dt == COLLAPSE_FLOAT32) dropout_bwd_f32(n, cl_data(gy), cl_data(gx), cl_data(mask));
    else dropout_bwd_f64(n, cl_data(gy), cl_data(gx), cl_data(mask));
    return COLLAPSE_OK;
}
