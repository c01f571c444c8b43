/* Residual-connection kernels (tensor level): the sum of the two branches (nn.Residual, and the
 * sum of their input gradients in its backward) and the sum fused with the ReLU after it, as
 * the ResNet BasicBlock ends (nn.Residual:fuse_with(nn.ReLU)). */
#include <stdio.h>

#include "collapse.h"
#include "core/args.h"
#include "core/kernel_args.h"

#define CL_DOUBLE 0
#include "core/generic.h"
#include "nn/residual_impl.h"
#include "core/generic_end.h"
#define CL_DOUBLE 1
#include "core/generic.h"
#include "nn/residual_impl.h"
#include "core/generic_end.h"

/* a and b: contiguous float tensors of one dtype and one shape; y is resized to it (y may be a
 * or b: the kernel is elementwise). */
static collapse_status add_args(const char *fn, const collapse_tensor *a, const collapse_tensor *b, collapse_tensor *y,
                                collapse_dtype *dt) {
    COLLAPSE_TRY(cl_arg_float(fn, "a", a, dt));
    COLLAPSE_TRY(cl_arg_input(fn, "a", a, *dt, -1, NULL, 0, NULL));
    char note[SHAPE_BUF + 16], s[SHAPE_BUF];
    snprintf(note, sizeof note, "(a is %s)", cl_shape_str(a->ndim, a->shape, s, sizeof s));
    COLLAPSE_TRY(cl_arg_input(fn, "b", b, *dt, a->ndim, a->shape, 0, note));
    return cl_arg_output_like(fn, "output", y, a, 0);
}

collapse_status collapse_add_forward(const collapse_tensor *a, const collapse_tensor *b, collapse_tensor *y) {
    collapse_dtype dt;
    COLLAPSE_TRY(add_args("add_forward", a, b, y, &dt));
    int64_t n = collapse_tensor_numel(a);
    if (dt == COLLAPSE_FLOAT32) add_fwd_f32(n, cl_data(a), cl_data(b), cl_data(y));
    else add_fwd_f64(n, cl_data(a), cl_data(b), cl_data(y));
    return COLLAPSE_OK;
}

collapse_status collapse_add_relu_forward(const collapse_tensor *a, const collapse_tensor *b, collapse_tensor *y) {
    collapse_dtype dt;
    COLLAPSE_TRY(add_args("add_relu_forward", a, b, y, &dt));
    int64_t n = collapse_tensor_numel(a);
    if (dt == COLLAPSE_FLOAT32) add_relu_fwd_f32(n, cl_data(a), cl_data(b), cl_data(y));
    else add_relu_fwd_f64(n, cl_data(a), cl_data(b), cl_data(y));
    return COLLAPSE_OK;
}

collapse_status collapse_relu_mask_backward(const collapse_tensor *y, const collapse_tensor *gy, collapse_tensor *gx) {
    static const char fn[] = "relu_mask_backward";
    collapse_dtype dt;
    COLLAPSE_TRY(cl_arg_float(fn, "output", y, &dt));
    COLLAPSE_TRY(cl_arg_input(fn, "output", y, dt, -1, NULL, 0, NULL));
    char note[SHAPE_BUF + 24], s[SHAPE_BUF];
    snprintf(note, sizeof note, "(output is %s)", cl_shape_str(y->ndim, y->shape, s, sizeof s));
    COLLAPSE_TRY(cl_arg_input(fn, "grad_output", gy, dt, y->ndim, y->shape, 0, note));
    COLLAPSE_TRY(cl_arg_distinct(fn, "grad_input", gx, "output", y));
    COLLAPSE_TRY(cl_arg_output_like(fn, "grad_input", gx, y, 0)); /* may be grad_output itself */
    int64_t n = collapse_tensor_numel(y);
    if (dt == COLLAPSE_FLOAT32) relu_mask_bwd_f32(n, cl_data(y), cl_data(gy), cl_data(gx));
    else relu_mask_bwd_f64(n, cl_data(y), cl_data(gy), cl_data(gx));
    return COLLAPSE_OK;
}
