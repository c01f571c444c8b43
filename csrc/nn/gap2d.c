/* Global average pooling kernels (tensor level): [N x C x H x W] -> [N x C] and back. */
#include <stdio.h>

#include "collapse.h"
#include "core/args.h"
#include "core/kernel_args.h"

#define CL_DOUBLE 0
#include "core/generic.h"
#include "nn/gap2d_impl.h"
#include "core/generic_end.h"
#define CL_DOUBLE 1
#include "core/generic.h"
#include "nn/gap2d_impl.h"
#include "core/generic_end.h"

/* x: a contiguous 4-d float tensor with non-empty planes. */
static collapse_status input4(const char *fn, const collapse_tensor *x, collapse_dtype *dt) {
    COLLAPSE_TRY(cl_arg_float(fn, "input", x, dt));
    COLLAPSE_TRY(cl_arg_input(fn, "input", x, *dt, 4, NULL, 0, "(expected [N x C x H x W])"));
    if (x->shape[2] < 1 || x->shape[3] < 1) {
        char b[SHAPE_BUF];
        return collapse_fail(COLLAPSE_ERR_SHAPE, "%s: input %s has empty H x W planes", fn,
                             cl_shape_str(4, x->shape, b, sizeof b));
    }
    return COLLAPSE_OK;
}

collapse_status collapse_global_avg_pool2d_forward(const collapse_tensor *x, collapse_tensor *y) {
    static const char fn[] = "global_avg_pool2d_forward";
    collapse_dtype dt;
    COLLAPSE_TRY(input4(fn, x, &dt));
    COLLAPSE_TRY(cl_arg_distinct(fn, "output", y, "input", x));
    COLLAPSE_TRY(cl_arg_output(fn, "output", y, dt, 2, x->shape, 0));
    int64_t planes = x->shape[0] * x->shape[1], hw = x->shape[2] * x->shape[3];
    if (dt == COLLAPSE_FLOAT32) gap2d_fwd_f32(planes, hw, cl_data(x), cl_data(y));
    else gap2d_fwd_f64(planes, hw, cl_data(x), cl_data(y));
    return COLLAPSE_OK;
}

collapse_status collapse_global_avg_pool2d_backward(const collapse_tensor *x, const collapse_tensor *gy,
                                                    collapse_tensor *gx) {
    static const char fn[] = "global_avg_pool2d_backward";
    collapse_dtype dt;
    COLLAPSE_TRY(input4(fn, x, &dt));
    char note[SHAPE_BUF + 16], b[SHAPE_BUF];
    snprintf(note, sizeof note, "(input is %s)", cl_shape_str(4, x->shape, b, sizeof b));
    COLLAPSE_TRY(cl_arg_input(fn, "grad_output", gy, dt, 2, x->shape, 0, note));
    COLLAPSE_TRY(cl_arg_distinct(fn, "grad_input", gx, "input", x));
    COLLAPSE_TRY(cl_arg_distinct(fn, "grad_input", gx, "grad_output", gy));
    COLLAPSE_TRY(cl_arg_output_like(fn, "grad_input", gx, x, 0));
    int64_t planes = x->shape[0] * x->shape[1], hw = x->shape[2] * x->shape[3];
    if (dt == COLLAPSE_FLOAT32) gap2d_bwd_f32(planes, hw, cl_data(gy), cl_data(gx));
    else gap2d_bwd_f64(planes, hw, cl_data(gy), cl_data(gx));
    return COLLAPSE_OK;
}
