/* Argument checks of the tensor-level kernels (collapse_linear_forward, ...): one place that
 * says "a contiguous float tensor of dtype dt with shape ...", so every kernel checks the same way
 * and names itself and the argument. Internal; not part of the public header. */
#ifndef COLLAPSE_CORE_KERNEL_ARGS_H
#define COLLAPSE_CORE_KERNEL_ARGS_H

#include "collapse.h"
#include "core/tensor.h"

/* Sizes in a shape pattern: CL_ANY matches any size (printed "n" in dimension 0, else "*"). */
#define CL_ANY (-1)

/* The dtype of the kernel: t non-NULL and of a float dtype (float32 or float64). */
collapse_status cl_arg_float(const char *fn, const char *name, const collapse_tensor *t, collapse_dtype *dt);

/* An input: t of dtype dt, contiguous, with ndim dimensions matching shape (CL_ANY entries match
 * anything; shape NULL: any shape of that ndim; ndim < 0: any). NULL passes when optional.
 * note (or NULL) is appended to a shape message, e.g. "(weight is [4 x 3])". */
collapse_status cl_arg_input(const char *fn, const char *name, const collapse_tensor *t, collapse_dtype dt, int ndim,
                             const int64_t *shape, int optional, const char *note);

/* An output: t non-NULL (unless optional) of dtype dt, resized to the exact shape (capacity kept,
 * collapse_tensor_resize), so callers pass whatever buffer they hold. */
collapse_status cl_arg_output(const char *fn, const char *name, collapse_tensor *t, collapse_dtype dt, int ndim,
                              const int64_t *shape, int optional);

/* An output shaped like the input x (elementwise kernels). */
static inline collapse_status cl_arg_output_like(const char *fn, const char *name, collapse_tensor *t,
                                                 const collapse_tensor *x, int optional) {
    return cl_arg_output(fn, name, t, x->dtype, x->ndim, x->shape, optional);
}

/* Two tensors must not be the same object (outputs that the kernel cannot write in place). */
collapse_status cl_arg_distinct(const char *fn, const char *a, const collapse_tensor *ta, const char *b,
                                const collapse_tensor *tb);

/* Calls name_f32 or name_f64 (the raw-array tier) by dtype: the one dtype switch of a kernel.
 * Array arguments go as void * (cl_data), which converts to either pointer type. */
#define CL_DISPATCH(dt, name, ...) ((dt) == COLLAPSE_FLOAT32 ? name##_f32(__VA_ARGS__) : name##_f64(__VA_ARGS__))

static inline void *cl_data(const collapse_tensor *t) { return t ? tensor_ptr(t) : NULL; }

#endif
