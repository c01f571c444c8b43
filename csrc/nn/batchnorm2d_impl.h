/* Generic BatchNorm2d kernels over NCHW x (instantiated by nn/batchnorm2d.c). Channel c owns the
 * n contiguous planes x[i, c, :, :] of hw values; every reduction walks them in double, one channel
 * at a time, so no scratch memory is needed. */

/* y = x a + b over the planes of channel c. */
static void CL_FN(bn2d_affine)(const cl_bn2d_geom *g, int64_t c, const real *x, real *y, real a, real b) {
    for (int64_t i = 0; i < g->n; i++) {
        const int64_t off = (i * g->c + c) * g->hw;
        const real *xr = x + off;
        real *yr = y + off;
        for (int64_t k = 0; k < g->hw; k++) yr[k] = xr[k] * a + b;
    }
}

/* sum of the channel's values */
static double CL_FN(bn2d_sum)(const cl_bn2d_geom *g, int64_t c, const real *x) {
    double acc = 0;
    for (int64_t i = 0; i < g->n; i++) {
        const real *restrict xr = x + (i * g->c + c) * g->hw;
        for (int64_t k = 0; k < g->hw; k++) acc += xr[k];
    }
    return acc;
}

/* *sdy = sum gy, *dot = sum (x - mu) gy over the channel (dot only when x != NULL) */
static void CL_FN(bn2d_grad_sums)(const cl_bn2d_geom *g, int64_t c, const real *x, const real *gy, double mu,
                                  double *sdy, double *dot) {
    double s = 0, d = 0;
    for (int64_t i = 0; i < g->n; i++) {
        const int64_t off = (i * g->c + c) * g->hw;
        const real *restrict gr = gy + off;
        if (x) {
            const real *restrict xr = x + off;
            for (int64_t k = 0; k < g->hw; k++) {
                s += gr[k];
                d += ((double)xr[k] - mu) * gr[k];
            }
        } else {
            for (int64_t k = 0; k < g->hw; k++) s += gr[k];
        }
    }
    *sdy = s;
    *dot = d;
}

collapse_status CL_FN(collapse_batchnorm2d_forward_train)(const int64_t input_shape[4], const real *x, real *y,
                                                          const real *gamma, const real *beta, real *running_mean,
                                                          real *running_var, real *save_mean, real *save_invstd,
                                                          double momentum, double eps) {
    static const char fn[] = "batchnorm2d_forward_train";
    cl_bn2d_geom g;
    COLLAPSE_TRY(cl_bn2d_geometry(fn, input_shape, &g));
    COLLAPSE_TRY(cl_bn2d_need_two(input_shape, &g));
    COLLAPSE_TRY(cl_need_ptr4(fn, "x", x, input_shape));
    COLLAPSE_TRY(cl_need_ptr4(fn, "y", y, input_shape));
    COLLAPSE_TRY(cl_need_ptr(fn, "save_mean", save_mean, g.c, 0));
    COLLAPSE_TRY(cl_need_ptr(fn, "save_invstd", save_invstd, g.c, 0));
    COLLAPSE_TRY(cl_need_range(fn, "momentum", momentum, 0, 1));
    COLLAPSE_TRY(cl_need_nonneg(fn, "eps", eps));
    const double inv_m = 1.0 / (double)g.m, inv_m1 = 1.0 / (double)(g.m - 1);
    for (int64_t c = 0; c < g.c; c++) {
        /* two passes: mean, then the sum of squared deviations (stable) */
        const double mu = CL_FN(bn2d_sum)(&g, c, x) * inv_m;
        double ss = 0;
        for (int64_t i = 0; i < g.n; i++) {
            const real *restrict xr = x + (i * g.c + c) * g.hw;
            for (int64_t k = 0; k < g.hw; k++) {
                const double d = (double)xr[k] - mu;
                ss += d * d;
            }
        }
        const double invstd = 1.0 / sqrt(ss * inv_m + eps);
        save_mean[c] = (real)mu;
        save_invstd[c] = (real)invstd;
        if (running_mean) running_mean[c] = (real)(momentum * mu + (1 - momentum) * running_mean[c]);
        if (running_var) running_var[c] = (real)(momentum * (ss * inv_m1) + (1 - momentum) * running_var[c]);
        const double a = gamma ? invstd * gamma[c] : invstd;
        const double b = (beta ? (double)beta[c] : 0.0) - mu * a;
        CL_FN(bn2d_affine)(&g, c, x, y, (real)a, (real)b);
    }
    return COLLAPSE_OK;
}

collapse_status CL_FN(collapse_batchnorm2d_forward_eval)(const int64_t input_shape[4], const real *x, real *y,
                                                         const real *gamma, const real *beta,
                                                         const real *running_mean, const real *running_var,
                                                         double eps) {
    static const char fn[] = "batchnorm2d_forward_eval";
    cl_bn2d_geom g;
    COLLAPSE_TRY(cl_bn2d_geometry(fn, input_shape, &g));
    COLLAPSE_TRY(cl_need_ptr4(fn, "x", x, input_shape));
    COLLAPSE_TRY(cl_need_ptr4(fn, "y", y, input_shape));
    COLLAPSE_TRY(cl_need_ptr(fn, "running_mean", running_mean, g.c, 0));
    COLLAPSE_TRY(cl_need_ptr(fn, "running_var", running_var, g.c, 0));
    COLLAPSE_TRY(cl_need_nonneg(fn, "eps", eps));
    for (int64_t c = 0; c < g.c; c++) {
        const double invstd = 1.0 / sqrt((double)running_var[c] + eps);
        const double a = gamma ? invstd * gamma[c] : invstd;
        const double b = (beta ? (double)beta[c] : 0.0) - running_mean[c] * a;
        CL_FN(bn2d_affine)(&g, c, x, y, (real)a, (real)b);
    }
    return COLLAPSE_OK;
}

collapse_status CL_FN(collapse_batchnorm2d_backward_train)(const int64_t input_shape[4], const real *x,
                                                           const real *grad_output, real *grad_input,
                                                           const real *gamma, real *grad_gamma, real *grad_beta,
                                                           const real *save_mean, const real *save_invstd) {
    static const char fn[] = "batchnorm2d_backward_train";
    cl_bn2d_geom g;
    COLLAPSE_TRY(cl_bn2d_geometry(fn, input_shape, &g));
    COLLAPSE_TRY(cl_bn2d_need_two(input_shape, &g));
    COLLAPSE_TRY(cl_need_ptr4(fn, "x", x, input_shape));
    COLLAPSE_TRY(cl_need_ptr4(fn, "grad_output", grad_output, input_shape));
    COLLAPSE_TRY(cl_need_ptr(fn, "save_mean", save_mean, g.c, 0));
    COLLAPSE_TRY(cl_need_ptr(fn, "save_invstd", save_invstd, g.c, 0));
    const double inv_m = 1.0 / (double)g.m;
    for (int64_t c = 0; c < g.c; c++) {
        const real mu = save_mean[c];
        const double invstd = save_invstd[c];
        double sdy, dot;
        CL_FN(bn2d_grad_sums)(&g, c, x, grad_output, mu, &sdy, &dot);
        if (grad_beta) grad_beta[c] = (real)(grad_beta[c] + sdy);
        if (grad_gamma) grad_gamma[c] = (real)(grad_gamma[c] + dot * invstd);
        if (!grad_input) continue;
        /* gx = (gy - mean(gy) - (x - mean) dot invstd^2 / m) invstd gamma  (PyTorch's order) */
        const real c0 = (real)(sdy * inv_m), c1 = (real)(dot * invstd * invstd * inv_m),
                   c2 = (real)(gamma ? invstd * gamma[c] : invstd);
        for (int64_t i = 0; i < g.n; i++) {
            const int64_t off = (i * g.c + c) * g.hw;
            const real *restrict xr = x + off;
            const real *gr = grad_output + off;
            real *gxr = grad_input + off;
            for (int64_t k = 0; k < g.hw; k++) gxr[k] = (gr[k] - c0 - (xr[k] - mu) * c1) * c2;
        }
    }
    return COLLAPSE_OK;
}

collapse_status CL_FN(collapse_batchnorm2d_backward_eval)(const int64_t input_shape[4], const real *x,
                                                          const real *grad_output, real *grad_input,
                                                          const real *gamma, real *grad_gamma, real *grad_beta,
                                                          const real *running_mean, const real *running_var,
                                                          double eps) {
    static const char fn[] = "batchnorm2d_backward_eval";
    cl_bn2d_geom g;
    COLLAPSE_TRY(cl_bn2d_geometry(fn, input_shape, &g));
    COLLAPSE_TRY(cl_need_ptr4(fn, "grad_output", grad_output, input_shape));
    COLLAPSE_TRY(cl_need_ptr(fn, "running_var", running_var, g.c, 0));
    if (grad_gamma) {
        COLLAPSE_TRY(cl_need_ptr4(fn, "x", x, input_shape));
        COLLAPSE_TRY(cl_need_ptr(fn, "running_mean", running_mean, g.c, 0));
    }
    COLLAPSE_TRY(cl_need_nonneg(fn, "eps", eps));
    for (int64_t c = 0; c < g.c; c++) {
        const double invstd = 1.0 / sqrt((double)running_var[c] + eps);
        if (grad_gamma || grad_beta) {
            double sdy, dot;
            CL_FN(bn2d_grad_sums)(&g, c, grad_gamma ? x : NULL, grad_output, grad_gamma ? running_mean[c] : 0, &sdy,
                                  &dot);
            if (grad_beta) grad_beta[c] = (real)(grad_beta[c] + sdy);
            if (grad_gamma) grad_gamma[c] = (real)(grad_gamma[c] + dot * invstd);
        }
        if (grad_input) {
            const real a = (real)(gamma ? invstd * gamma[c] : invstd);
            CL_FN(bn2d_affine)(&g, c, grad_output, grad_input, a, 0);
        }
    }
    return COLLAPSE_OK;
}
