/* Fused optimiser steps over many parameters (as PyTorch's foreach optimisers): one call updates
 * every tensor of a parameter group. Every tensor is checked before anything is written, then the
 * raw per-array update rules of sgd.c / adam.c run tensor by tensor. */
#include <stdio.h>
#include <string.h>

#include "collapse.h"
#include "core/kernel_args.h"

/* Argument i of a list ("grad 3") for messages (0-based, the C convention). */
static const char *item(char *buf, size_t len, const char *name, int i) {
    snprintf(buf, len, "%s %d", name, i);
    return buf;
}

/* x[i] a float tensor, the others (NULL lists or entries allowed when optional) of its dtype and
 * element count, contiguous. */
static collapse_status check_lists(const char *fn, int n, collapse_tensor *const *x, collapse_tensor *const *g,
                                   collapse_tensor *const *a, const char *aname, collapse_tensor *const *b,
                                   const char *bname, int ab_optional) {
    if (n < 0) return collapse_fail(COLLAPSE_ERR_ARG, "%s: n_tensors must be >= 0, got %d", fn, n);
    if (n > 0 && (!x || !g)) return collapse_fail(COLLAPSE_ERR_ARG, "%s: the param and grad lists must not be NULL", fn);
    if (n > 0 && !ab_optional && (!a || (bname && !b)))
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: the %s%s%s lists must not be NULL", fn, aname, bname ? " and " : "",
                             bname ? bname : "");
    char nm[64];
    for (int i = 0; i < n; i++) {
        collapse_dtype dt;
        COLLAPSE_TRY(cl_arg_float(fn, item(nm, sizeof nm, "param", i), x[i], &dt));
        COLLAPSE_TRY(cl_arg_input(fn, nm, x[i], dt, -1, NULL, 0, NULL));
        const int nd = x[i]->ndim;
        const int64_t *sh = x[i]->shape;
        COLLAPSE_TRY(cl_arg_input(fn, item(nm, sizeof nm, "grad", i), g[i], dt, nd, sh, 0, NULL));
        if (a) COLLAPSE_TRY(cl_arg_input(fn, item(nm, sizeof nm, aname, i), a[i], dt, nd, sh, ab_optional, NULL));
        if (b) COLLAPSE_TRY(cl_arg_input(fn, item(nm, sizeof nm, bname, i), b[i], dt, nd, sh, ab_optional, NULL));
    }
    return COLLAPSE_OK;
}

collapse_status collapse_sgd_step_many(int n_tensors, collapse_tensor *const *x, collapse_tensor *const *g,
                                       collapse_tensor *const *momentum_buf, int *buf_ready,
                                       const double *weight_decay, double lr, double momentum, double dampening,
                                       int nesterov, int zero_grad) {
    static const char fn[] = "sgd_step_many";
    COLLAPSE_TRY(check_lists(fn, n_tensors, x, g, momentum_buf, "momentum_buffer", NULL, NULL, momentum == 0));
    if (momentum != 0 && n_tensors > 0 && !buf_ready)
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: buf_ready is NULL, expected %d flags", fn, n_tensors);
    for (int i = 0; i < n_tensors; i++) {
        int64_t n = collapse_tensor_numel(x[i]);
        if (n == 0) continue;
        collapse_dtype dt = x[i]->dtype;
        void *X = cl_data(x[i]), *G = cl_data(g[i]), *B = momentum_buf ? cl_data(momentum_buf[i]) : NULL;
        int *ready = buf_ready ? &buf_ready[i] : NULL;
        double wd = weight_decay ? weight_decay[i] : 0;
        COLLAPSE_TRY(zero_grad ? CL_DISPATCH(dt, collapse_sgd_step_zero_grad, n, X, G, B, ready, lr, momentum,
                                             dampening, nesterov, wd)
                               : CL_DISPATCH(dt, collapse_sgd_step, n, X, G, B, ready, lr, momentum, dampening,
                                             nesterov, wd));
    }
    return COLLAPSE_OK;
}

collapse_status collapse_adam_step_many(int n_tensors, collapse_tensor *const *x, collapse_tensor *const *g,
                                        collapse_tensor *const *m, collapse_tensor *const *v,
                                        const double *weight_decay, int64_t step, double lr, double beta1,
                                        double beta2, double eps, int decoupled, int zero_grad) {
    static const char fn[] = "adam_step_many";
    COLLAPSE_TRY(check_lists(fn, n_tensors, x, g, m, "exp_avg", v, "exp_avg_sq", 0));
    for (int i = 0; i < n_tensors; i++) {
        int64_t n = collapse_tensor_numel(x[i]);
        if (n == 0) continue;
        collapse_dtype dt = x[i]->dtype;
        void *X = cl_data(x[i]), *G = cl_data(g[i]), *M = cl_data(m[i]), *V = cl_data(v[i]);
        double wd = weight_decay ? weight_decay[i] : 0;
        COLLAPSE_TRY(zero_grad ? CL_DISPATCH(dt, collapse_adam_step_zero_grad, n, X, G, M, V, step, lr, beta1, beta2,
                                             eps, wd, decoupled)
                               : CL_DISPATCH(dt, collapse_adam_step, n, X, G, M, V, step, lr, beta1, beta2, eps, wd,
                                             decoupled));
    }
    return COLLAPSE_OK;
}

collapse_status collapse_zero_grad_many(int n_tensors, collapse_tensor *const *g) {
    static const char fn[] = "zero_grad_many";
    if (n_tensors < 0) return collapse_fail(COLLAPSE_ERR_ARG, "%s: n_tensors must be >= 0, got %d", fn, n_tensors);
    if (n_tensors > 0 && !g) return collapse_fail(COLLAPSE_ERR_ARG, "%s: the grad list is NULL", fn);
    char nm[64];
    for (int i = 0; i < n_tensors; i++)
        if (!g[i]) return collapse_fail(COLLAPSE_ERR_ARG, "%s: %s is NULL", fn, item(nm, sizeof nm, "grad", i));
    for (int i = 0; i < n_tensors; i++) {
        /* A contiguous float gradient is zeroed with memset (0.0 is all-zero bits in IEEE 754;
         * libc's vectorised memset is ~20 % faster than fill's element loop here); anything
         * else goes through collapse_tensor_fill, which also handles strides. */
        collapse_tensor *t = g[i];
        if ((t->dtype == COLLAPSE_FLOAT32 || t->dtype == COLLAPSE_FLOAT64) && collapse_tensor_is_contiguous(t)) {
            int64_t n = collapse_tensor_numel(t);
            if (n > 0) memset(cl_data(t), 0, (size_t)n * tensor_elem_size(t));
        } else {
            COLLAPSE_TRY(collapse_tensor_fill(t, 0));
        }
    }
    return COLLAPSE_OK;
}
