/* Argument checks shared by every tensor-level kernel (see kernel_args.h). */
#include "core/kernel_args.h"

#include <stdio.h>

/* "[n x 3]" for a shape pattern (CL_ANY printed as "n" in dimension 0, "*" elsewhere). */
static const char *pattern_str(int ndim, const int64_t *shape, char *buf, size_t len) {
    size_t used = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && used < len; i++) {
        const char *sep = i ? " x " : "";
        if (shape && shape[i] != CL_ANY)
            used += (size_t)snprintf(buf + used, len - used, "%s%lld", sep, (long long)shape[i]);
        else
            used += (size_t)snprintf(buf + used, len - used, "%s%s", sep, i ? "*" : "n");
    }
    if (used < len) snprintf(buf + used, len - used, "]");
    return buf;
}

collapse_status cl_arg_float(const char *fn, const char *name, const collapse_tensor *t, collapse_dtype *dt) {
    if (!t) return collapse_fail(COLLAPSE_ERR_ARG, "%s: %s is NULL, expected a float tensor", fn, name);
    if (t->dtype != COLLAPSE_FLOAT32 && t->dtype != COLLAPSE_FLOAT64)
        return collapse_fail(COLLAPSE_ERR_DTYPE, "%s: %s must be float32 or float64, got %s", fn, name,
                             collapse_dtype_name(t->dtype));
    *dt = t->dtype;
    return COLLAPSE_OK;
}

static collapse_status check_dtype(const char *fn, const char *name, const collapse_tensor *t, collapse_dtype dt) {
    if (t->dtype == dt) return COLLAPSE_OK;
    return collapse_fail(COLLAPSE_ERR_DTYPE, "%s: %s is %s, expected %s", fn, name, collapse_dtype_name(t->dtype),
                         collapse_dtype_name(dt));
}

collapse_status cl_arg_input(const char *fn, const char *name, const collapse_tensor *t, collapse_dtype dt, int ndim,
                             const int64_t *shape, int optional, const char *note) {
    if (!t) {
        if (optional) return COLLAPSE_OK;
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: %s is NULL, expected a %s tensor", fn, name,
                             collapse_dtype_name(dt));
    }
    COLLAPSE_TRY(check_dtype(fn, name, t, dt));
    int bad = ndim >= 0 && t->ndim != ndim;
    for (int i = 0; !bad && shape && i < ndim; i++) bad = shape[i] != CL_ANY && shape[i] != t->shape[i];
    if (bad) {
        char a[SHAPE_BUF], b[SHAPE_BUF];
        return collapse_fail(COLLAPSE_ERR_SHAPE, "%s: size mismatch, %s %s, expected %s%s%s", fn, name,
                             cl_shape_str(t->ndim, t->shape, a, sizeof a), pattern_str(ndim, shape, b, sizeof b),
                             note ? " " : "", note ? note : "");
    }
    if (!collapse_tensor_is_contiguous(t))
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: %s must be contiguous (a transposed or strided view is not)", fn,
                             name);
    return COLLAPSE_OK;
}

collapse_status cl_arg_output(const char *fn, const char *name, collapse_tensor *t, collapse_dtype dt, int ndim,
                              const int64_t *shape, int optional) {
    if (!t) {
        if (optional) return COLLAPSE_OK;
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: %s is NULL, expected a %s tensor to write", fn, name,
                             collapse_dtype_name(dt));
    }
    COLLAPSE_TRY(check_dtype(fn, name, t, dt));
    if (collapse_tensor_resize(t, ndim, shape) == COLLAPSE_OK) return COLLAPSE_OK;
    char why[512]; /* the message is rewritten with the kernel's name: copy it out first */
    snprintf(why, sizeof why, "%s", collapse_last_error());
    return collapse_fail(collapse_last_status(), "%s: %s: %s", fn, name, why);
}

collapse_status cl_arg_distinct(const char *fn, const char *a, const collapse_tensor *ta, const char *b,
                                const collapse_tensor *tb) {
    if (!ta || !tb || ta != tb) return COLLAPSE_OK;
    return collapse_fail(COLLAPSE_ERR_ARG, "%s: %s and %s must be different tensors", fn, a, b);
}
