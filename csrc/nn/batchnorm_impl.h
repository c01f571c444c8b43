/* Generic batch-normalisation kernels over x[n x f] (instantiated by nn/batchnorm.c).
 * Per-feature reductions walk the rows of a block of CL_NN_BLOCK columns with double
 * accumulators on the stack: contiguous inner loops, no allocation. */

static collapse_status CL_FN(bn_check)(const char *fn, int64_t n, int64_t f, const real *x, const void *y,
                                       const char *yname) {
    COLLAPSE_TRY(cl_need_size(fn, "n", n, 0));
    COLLAPSE_TRY(cl_need_size(fn, "features", f, 0));
    COLLAPSE_TRY(cl_need_ptr(fn, "x", x, n, f));
    COLLAPSE_TRY(cl_need_ptr(fn, yname, y, n, f));
    return COLLAPSE_OK;
}

/* y[i, j] = x[i, j] * a[j] + b[j] over a block of m columns starting at j0; with relu, then
 * y = v < 0 ? 0 : v (nn.ReLU's rule, NaN kept) on the same rounded value v. */
static inline CL_ALWAYS_INLINE void CL_FN(bn_affine_block)(int64_t n, int64_t f, int64_t j0, int64_t m,
                                                            const real *x, real *y, const real *restrict a,
                                                            const real *restrict b, const int relu) {
    for (int64_t i = 0; i < n; i++) {
        const real *xr = x + i * f + j0;
        real *yr = y + i * f + j0;
        if (relu)
            for (int64_t k = 0; k < m; k++) {
                real v = xr[k] * a[k] + b[k];
                yr[k] = v < 0 ? (real)0 : v;
            }
        else
            for (int64_t k = 0; k < m; k++) yr[k] = xr[k] * a[k] + b[k];
    }
}

static CL_CLONES collapse_status CL_FN(bn_forward_train)(const char *fn, int64_t n, int64_t f, const real *x, real *y,
                                                        const real *gamma, const real *beta,
                                                        real *running_mean, real *running_var, real *save_mean,
                                                        real *save_invstd, double momentum, double eps,
                                                        const int relu) {
    COLLAPSE_TRY(CL_FN(bn_check)(fn, n, f, x, y, "y"));
    if (n < 2)
        return collapse_fail(COLLAPSE_ERR_ARG, "batchnorm: training needs a batch of at least 2 samples, got %lld",
                             (long long)n);
    COLLAPSE_TRY(cl_need_ptr(fn, "save_mean", save_mean, f, 0));
    COLLAPSE_TRY(cl_need_ptr(fn, "save_invstd", save_invstd, f, 0));
    COLLAPSE_TRY(cl_need_range(fn, "momentum", momentum, 0, 1));
    COLLAPSE_TRY(cl_need_nonneg(fn, "eps", eps));
    const double inv_n = 1.0 / (double)n, inv_n1 = 1.0 / (double)(n - 1);
    for (int64_t j0 = 0; j0 < f; j0 += CL_NN_BLOCK) {
        const int64_t m = f - j0 < CL_NN_BLOCK ? f - j0 : CL_NN_BLOCK;
        double acc[CL_NN_BLOCK], mu[CL_NN_BLOCK];
        real a[CL_NN_BLOCK], b[CL_NN_BLOCK];
        /* pass 1: mean */
        for (int64_t k = 0; k < m; k++) acc[k] = 0;
        for (int64_t i = 0; i < n; i++) {
            const real *restrict xr = x + i * f + j0;
            for (int64_t k = 0; k < m; k++) acc[k] += xr[k];
        }
        for (int64_t k = 0; k < m; k++) {
            mu[k] = acc[k] * inv_n;
            acc[k] = 0;
        }
        /* pass 2: sum of squared deviations (two-pass, stable) */
        for (int64_t i = 0; i < n; i++) {
            const real *restrict xr = x + i * f + j0;
            for (int64_t k = 0; k < m; k++) {
                double d = (double)xr[k] - mu[k];
                acc[k] += d * d;
            }
        }
        for (int64_t k = 0; k < m; k++) {
            const int64_t j = j0 + k;
            double invstd = 1.0 / sqrt(acc[k] * inv_n + eps);
            save_mean[j] = (real)mu[k];
            save_invstd[j] = (real)invstd;
            if (running_mean) running_mean[j] = (real)(momentum * mu[k] + (1 - momentum) * running_mean[j]);
            if (running_var)
                running_var[j] = (real)(momentum * (acc[k] * inv_n1) + (1 - momentum) * running_var[j]);
            double s = gamma ? invstd * gamma[j] : invstd;
            a[k] = (real)s;
            b[k] = (real)((beta ? (double)beta[j] : 0.0) - mu[k] * s);
        }
        /* pass 3: y = x * a + b (then the ReLU when fused) */
        if (relu) CL_FN(bn_affine_block)(n, f, j0, m, x, y, a, b, 1);
        else CL_FN(bn_affine_block)(n, f, j0, m, x, y, a, b, 0);
    }
    return COLLAPSE_OK;
}

collapse_status CL_FN(collapse_batchnorm_forward_train)(int64_t n, int64_t f, const real *x, real *y,
                                                        const real *gamma, const real *beta,
                                                        real *running_mean, real *running_var, real *save_mean,
                                                        real *save_invstd, double momentum, double eps) {
    return CL_FN(bn_forward_train)("batchnorm_forward_train", n, f, x, y, gamma, beta, running_mean, running_var,
                                   save_mean, save_invstd, momentum, eps, 0);
}

collapse_status CL_FN(collapse_batchnorm_relu_forward_train)(int64_t n, int64_t f, const real *x, real *y,
                                                             const real *gamma, const real *beta,
                                                             real *running_mean, real *running_var,
                                                             real *save_mean, real *save_invstd, double momentum,
                                                             double eps) {
    return CL_FN(bn_forward_train)("batchnorm_relu_forward_train", n, f, x, y, gamma, beta, running_mean,
                                   running_var, save_mean, save_invstd, momentum, eps, 1);
}

CL_CLONES
collapse_status CL_FN(collapse_batchnorm_forward_eval)(int64_t n, int64_t f, const real *x, real *y,
                                                       const real *gamma, const real *beta,
                                                       const real *running_mean, const real *running_var,
                                                       double eps) {
    static const char fn[] = "batchnorm_forward_eval";
    COLLAPSE_TRY(CL_FN(bn_check)(fn, n, f, x, y, "y"));
    COLLAPSE_TRY(cl_need_ptr(fn, "running_mean", running_mean, f, 0));
    COLLAPSE_TRY(cl_need_ptr(fn, "running_var", running_var, f, 0));
    COLLAPSE_TRY(cl_need_nonneg(fn, "eps", eps));
    for (int64_t j0 = 0; j0 < f; j0 += CL_NN_BLOCK) {
        const int64_t m = f - j0 < CL_NN_BLOCK ? f - j0 : CL_NN_BLOCK;
        real a[CL_NN_BLOCK], b[CL_NN_BLOCK];
        for (int64_t k = 0; k < m; k++) {
            const int64_t j = j0 + k;
            double invstd = 1.0 / sqrt((double)running_var[j] + eps);
            double s = gamma ? invstd * gamma[j] : invstd;
            a[k] = (real)s;
            b[k] = (real)((beta ? (double)beta[j] : 0.0) - running_mean[j] * s);
        }
        CL_FN(bn_affine_block)(n, f, j0, m, x, y, a, b, 0);
    }
    return COLLAPSE_OK;
}

/* The train backward over a block of m columns; with relu, gy is the gradient at the output y of
 * a fused BN + ReLU and each row is first masked as nn.ReLU's backward does (y <= 0 ? 0 : gy)
 * into a stack row, so both row loops stay straight and vectorise. */
static inline CL_ALWAYS_INLINE const real *CL_FN(bn_grad_row)(const real *y, const real *gy, int64_t o, int64_t m,
                                                               real *restrict tmp, const int relu) {
    if (!relu) return gy + o;
    const real *restrict yr = y + o, *restrict gr = gy + o;
    for (int64_t k = 0; k < m; k++) {
        const real g = gr[k];
        tmp[k] = yr[k] <= 0 ? (real)0 : g;
    }
    return tmp;
}

static inline CL_ALWAYS_INLINE void CL_FN(bn_backward_block)(int64_t n, int64_t f, int64_t j0, int64_t m,
                                                              const real *x, const real *y, const real *gy,
                                                              real *gx, const real *gamma, real *ggamma,
                                                              real *gbeta, const real *save_mean,
                                                              const real *save_invstd, double inv_n,
                                                              const int relu) {
    double sdy[CL_NN_BLOCK], dot[CL_NN_BLOCK];
    real mu[CL_NN_BLOCK], tmp[CL_NN_BLOCK];
    for (int64_t k = 0; k < m; k++) {
        sdy[k] = 0;
        dot[k] = 0;
        mu[k] = save_mean[j0 + k];
    }
    /* sum gy and sum (x - mean) gy per feature */
    for (int64_t i = 0; i < n; i++) {
        const real *restrict xr = x + i * f + j0;
        const real *restrict gr = CL_FN(bn_grad_row)(y, gy, i * f + j0, m, tmp, relu);
        for (int64_t k = 0; k < m; k++) {
            sdy[k] += gr[k];
            dot[k] += ((double)xr[k] - mu[k]) * gr[k];
        }
    }
    real c0[CL_NN_BLOCK], c1[CL_NN_BLOCK], c2[CL_NN_BLOCK];
    for (int64_t k = 0; k < m; k++) {
        const int64_t j = j0 + k;
        double invstd = save_invstd[j];
        if (gbeta) gbeta[j] = (real)(gbeta[j] + sdy[k]);
        if (ggamma) ggamma[j] = (real)(ggamma[j] + dot[k] * invstd);
        /* gx = (gy - mean(gy) - (x - mean) * dot * invstd^2 / n) * invstd * gamma */
        c0[k] = (real)(sdy[k] * inv_n);
        c1[k] = (real)(dot[k] * invstd * invstd * inv_n);
        c2[k] = (real)(gamma ? invstd * gamma[j] : invstd);
    }
    if (gx)
        for (int64_t i = 0; i < n; i++) {
            const real *restrict xr = x + i * f + j0;
            const real *gr = CL_FN(bn_grad_row)(y, gy, i * f + j0, m, tmp, relu);
            real *gxr = gx + i * f + j0;
            for (int64_t k = 0; k < m; k++) gxr[k] = (gr[k] - c0[k] - (xr[k] - mu[k]) * c1[k]) * c2[k];
        }
}

static CL_CLONES collapse_status CL_FN(bn_backward_train)(const char *fn, int64_t n, int64_t f, const real *x,
                                                         const real *y, const real *gy, real *gx,
                                                         const real *gamma, real *ggamma, real *gbeta,
                                                         const real *save_mean, const real *save_invstd,
                                                         const int relu) {
    COLLAPSE_TRY(CL_FN(bn_check)(fn, n, f, x, gy, "grad_output"));
    if (relu) COLLAPSE_TRY(cl_need_ptr(fn, "y", y, n, f));
    if (n < 2)
        return collapse_fail(COLLAPSE_ERR_ARG, "batchnorm: training needs a batch of at least 2 samples, got %lld",
                             (long long)n);
    COLLAPSE_TRY(cl_need_ptr(fn, "save_mean", save_mean, f, 0));
    COLLAPSE_TRY(cl_need_ptr(fn, "save_invstd", save_invstd, f, 0));
    const double inv_n = 1.0 / (double)n;
    for (int64_t j0 = 0; j0 < f; j0 += CL_NN_BLOCK) {
        const int64_t m = f - j0 < CL_NN_BLOCK ? f - j0 : CL_NN_BLOCK;
        if (relu)
            CL_FN(bn_backward_block)(n, f, j0, m, x, y, gy, gx, gamma, ggamma, gbeta, save_mean, save_invstd, inv_n, 1);
        else
            CL_FN(bn_backward_block)(n, f, j0, m, x, y, gy, gx, gamma, ggamma, gbeta, save_mean, save_invstd, inv_n, 0);
    }
    return COLLAPSE_OK;
}

collapse_status CL_FN(collapse_batchnorm_backward_train)(int64_t n, int64_t f, const real *x, const real *gy,
                                                         real *gx, const real *gamma, real *ggamma, real *gbeta,
                                                         const real *save_mean, const real *save_invstd) {
    return CL_FN(bn_backward_train)("batchnorm_backward_train", n, f, x, NULL, gy, gx, gamma, ggamma, gbeta,
                                    save_mean, save_invstd, 0);
}

collapse_status CL_FN(collapse_batchnorm_relu_backward_train)(int64_t n, int64_t f, const real *x, const real *y,
                                                              const real *gy, real *gx, const real *gamma,
                                                              real *ggamma, real *gbeta, const real *save_mean,
                                                              const real *save_invstd) {
    return CL_FN(bn_backward_train)("batchnorm_relu_backward_train", n, f, x, y, gy, gx, gamma, ggamma, gbeta,
                                    save_mean, save_invstd, 1);
}

CL_CLONES
collapse_status CL_FN(collapse_batchnorm_backward_eval)(int64_t n, int64_t f, const real *x, const real *gy,
                                                        real *gx, const real *gamma, real *ggamma, real *gbeta,
                                                        const real *running_mean, const real *running_var,
                                                        double eps) {
    static const char fn[] = "batchnorm_backward_eval";
    COLLAPSE_TRY(cl_need_size(fn, "n", n, 0));
    COLLAPSE_TRY(cl_need_size(fn, "features", f, 0));
    COLLAPSE_TRY(cl_need_ptr(fn, "grad_output", gy, n, f));
    COLLAPSE_TRY(cl_need_ptr(fn, "running_var", running_var, f, 0));
    if (ggamma) {
        COLLAPSE_TRY(cl_need_ptr(fn, "x", x, n, f));
        COLLAPSE_TRY(cl_need_ptr(fn, "running_mean", running_mean, f, 0));
    }
    COLLAPSE_TRY(cl_need_nonneg(fn, "eps", eps));
    for (int64_t j0 = 0; j0 < f; j0 += CL_NN_BLOCK) {
        const int64_t m = f - j0 < CL_NN_BLOCK ? f - j0 : CL_NN_BLOCK;
        double invstd[CL_NN_BLOCK];
        for (int64_t k = 0; k < m; k++) invstd[k] = 1.0 / sqrt((double)running_var[j0 + k] + eps);
        if (ggamma || gbeta) {
            double sdy[CL_NN_BLOCK], dot[CL_NN_BLOCK];
            real mu[CL_NN_BLOCK];
            for (int64_t k = 0; k < m; k++) {
                sdy[k] = 0;
                dot[k] = 0;
                mu[k] = ggamma ? running_mean[j0 + k] : 0;
            }
            for (int64_t i = 0; i < n; i++) {
                const real *restrict gr = gy + i * f + j0;
                for (int64_t k = 0; k < m; k++) sdy[k] += gr[k];
                if (ggamma) {
                    const real *restrict xr = x + i * f + j0;
                    for (int64_t k = 0; k < m; k++) dot[k] += ((double)xr[k] - mu[k]) * gr[k];
                }
            }
            for (int64_t k = 0; k < m; k++) {
                const int64_t j = j0 + k;
                if (gbeta) gbeta[j] = (real)(gbeta[j] + sdy[k]);
                if (ggamma) ggamma[j] = (real)(ggamma[j] + dot[k] * invstd[k]);
            }
        }
        if (gx) {
            real a[CL_NN_BLOCK];
            for (int64_t k = 0; k < m; k++) a[k] = (real)(gamma ? invstd[k] * gamma[j0 + k] : invstd[k]);
            for (int64_t i = 0; i < n; i++) {
                const real *gr = gy + i * f + j0;
                real *gxr = gx + i * f + j0;
                for (int64_t k = 0; k < m; k++) gxr[k] = gr[k] * a[k];
            }
        }
    }
    return COLLAPSE_OK;
}
