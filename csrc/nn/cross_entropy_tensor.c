/* Tensor-level cross-entropy: logits [n x C] (float), labels [n] int32 in 1..C (the raw kernel
 * checks every label first), the mean loss through *loss, grad resized to [n x C] (or NULL). */
#include "collapse.h"
#include "core/kernel_args.h"

collapse_status collapse_cross_entropy(const collapse_tensor *logits, const collapse_tensor *labels, double *loss,
                                       collapse_tensor *grad) {
    static const char fn[] = "cross_entropy";
    collapse_dtype dt;
    COLLAPSE_TRY(cl_arg_float(fn, "logits", logits, &dt));
    COLLAPSE_TRY(cl_arg_input(fn, "logits", logits, dt, 2, NULL, 0, NULL));
    int64_t n = logits->shape[0], C = logits->shape[1];
    COLLAPSE_TRY(cl_arg_input(fn, "labels", labels, COLLAPSE_INT32, 1, (const int64_t[]){n}, 0, NULL));
    if (!loss) return collapse_fail(COLLAPSE_ERR_ARG, "%s: loss is NULL", fn);
    COLLAPSE_TRY(cl_arg_output_like(fn, "grad", grad, logits, 1));
    return CL_DISPATCH(dt, collapse_cross_entropy_forward, n, C, cl_data(logits), cl_data(labels), loss, cl_data(grad));
}
