/* Generic elementwise activations (instantiated by nn/activation.c). In-place is allowed
 * (y == x, gx == gy), so those pairs are not restrict-qualified. */

static collapse_status CL_FN(act_check)(const char *fn, int64_t n, const void *a, const char *an, const void *b,
                                        const char *bn, const void *c, const char *cn) {
    COLLAPSE_TRY(cl_need_size(fn, "n", n, 0));
    COLLAPSE_TRY(cl_need_ptr(fn, an, a, n, 0));
    COLLAPSE_TRY(cl_need_ptr(fn, bn, b, n, 0));
    if (cn) COLLAPSE_TRY(cl_need_ptr(fn, cn, c, n, 0));
    return COLLAPSE_OK;
}

CL_CLONES
collapse_status CL_FN(collapse_relu_forward)(int64_t n, const real *x, real *y) {
    COLLAPSE_TRY(CL_FN(act_check)("relu_forward", n, x, "x", y, "y", NULL, NULL));
    /* x < 0 ? 0 : x keeps NaN (and -0.0) as torch.clamp_min(x, 0) does */
    for (int64_t i = 0; i < n; i++) y[i] = x[i] < 0 ? (real)0 : x[i];
    return COLLAPSE_OK;
}

CL_CLONES
collapse_status CL_FN(collapse_relu_backward)(int64_t n, const real *y, const real *gy, real *gx) {
    COLLAPSE_TRY(CL_FN(act_check)("relu_backward", n, y, "y", gy, "grad_output", gx, "grad_input"));
    /* torch threshold_backward(gy, y, 0): y <= 0 ? 0 : gy */
    for (int64_t i = 0; i < n; i++) {
        const real g = gy[i]; /* unconditional load: the select vectorises */
        gx[i] = y[i] <= 0 ? (real)0 : g;
    }
    return COLLAPSE_OK;
}

collapse_status CL_FN(collapse_tanh_forward)(int64_t n, const real *x, real *y) {
    COLLAPSE_TRY(CL_FN(act_check)("tanh_forward", n, x, "x", y, "y", NULL, NULL));
    for (int64_t i = 0; i < n; i++) y[i] = CL_TANH(x[i]);
    return COLLAPSE_OK;
}

CL_CLONES
collapse_status CL_FN(collapse_tanh_backward)(int64_t n, const real *y, const real *gy, real *gx) {
    COLLAPSE_TRY(CL_FN(act_check)("tanh_backward", n, y, "y", gy, "grad_output", gx, "grad_input"));
    for (int64_t i = 0; i < n; i++) gx[i] = gy[i] * (1 - y[i] * y[i]);
    return COLLAPSE_OK;
}
