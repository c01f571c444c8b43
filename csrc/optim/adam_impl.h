/* Generic Adam / AdamW update (instantiated by optim/adam.c), in the operation order of
 * torch 1.13's _single_tensor_adam / _single_tensor_adamw. */

static inline CL_ALWAYS_INLINE void CL_FN(adam_loop)(int64_t n, real *restrict x, real *restrict g,
                                                      real *restrict m, real *restrict v, real wd, real b1,
                                                      real c1, real b2, real c2, real bc2s, real eps, real nss,
                                                      const int use_wd, const int zero) {
    for (int64_t i = 0; i < n; i++) {
        real gi = g[i];
        if (zero) g[i] = 0;                         /* zero_grad fused into the step */
        if (use_wd) gi = gi + wd * x[i];            /* grad.add(param, alpha=wd) */
        real mi = m[i] * b1 + c1 * gi;              /* exp_avg.mul_(b1).add_(grad, alpha=1-b1) */
        real vi = v[i] * b2 + c2 * gi * gi;         /* exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1-b2) */
        m[i] = mi;
        v[i] = vi;
        real den = CL_SQRT(vi) / bc2s + eps;        /* (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps) */
        x[i] = x[i] + nss * mi / den;               /* param.addcdiv_(exp_avg, denom, value=-step_size) */
    }
}

/* The two specialised loops behind one dispatched (target_clones) entry. */
static CL_CLONES void CL_FN(adam_run)(int64_t n, real *restrict x, real *restrict g, real *restrict m,
                                      real *restrict v, real wd, real b1, real c1, real b2, real c2, real bc2s,
                                      real eps, real nss, int use_wd, int zero) {
    if (zero) {
        if (use_wd) CL_FN(adam_loop)(n, x, g, m, v, wd, b1, c1, b2, c2, bc2s, eps, nss, 1, 1);
        else CL_FN(adam_loop)(n, x, g, m, v, wd, b1, c1, b2, c2, bc2s, eps, nss, 0, 1);
    } else {
        if (use_wd) CL_FN(adam_loop)(n, x, g, m, v, wd, b1, c1, b2, c2, bc2s, eps, nss, 1, 0);
        else CL_FN(adam_loop)(n, x, g, m, v, wd, b1, c1, b2, c2, bc2s, eps, nss, 0, 0);
    }
}

static collapse_status CL_FN(adam_step)(int64_t n, real *x, real *g, real *m, real *v, int64_t step, double lr,
                                        double beta1, double beta2, double eps, double weight_decay, int decoupled,
                                        int zero) {
    const char *fn = decoupled ? "adamw_step" : "adam_step";
    COLLAPSE_TRY(cl_need_size(fn, "n", n, 0));
    COLLAPSE_TRY(cl_need_ptr(fn, "x", x, n, 0));
    COLLAPSE_TRY(cl_need_ptr(fn, "grad", g, n, 0));
    COLLAPSE_TRY(cl_need_ptr(fn, "exp_avg", m, n, 0));
    COLLAPSE_TRY(cl_need_ptr(fn, "exp_avg_sq", v, n, 0));
    if (step < 1)
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: step must be >= 1 (1-based, incremented before the call), got %lld",
                             fn, (long long)step);
    COLLAPSE_TRY(cl_need_nonneg(fn, "lr", lr));
    COLLAPSE_TRY(cl_need_nonneg(fn, "eps", eps));
    COLLAPSE_TRY(cl_need_nonneg(fn, "weight_decay", weight_decay));
    if (!(beta1 >= 0 && beta1 < 1))
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: beta1 must be in [0, 1), got %g", fn, beta1);
    if (!(beta2 >= 0 && beta2 < 1))
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: beta2 must be in [0, 1), got %g", fn, beta2);
    real *xx = x;
    if (decoupled) {
        /* param.mul_(1 - lr * weight_decay), done even when weight_decay == 0 (a no-op then) */
        real *restrict xr = x;
        const real decay = (real)(1 - lr * weight_decay);
        for (int64_t i = 0; i < n; i++) xr[i] = xr[i] * decay;
    }
    const double bc1 = 1 - pow(beta1, (double)step), bc2 = 1 - pow(beta2, (double)step);
    const double step_size = lr / bc1;
    const real wd = (real)weight_decay, b1 = (real)beta1, c1 = (real)(1 - beta1), b2 = (real)beta2,
               c2 = (real)(1 - beta2), bc2s = (real)sqrt(bc2), reps = (real)eps, nss = (real)-step_size;
    CL_FN(adam_run)(n, xx, g, m, v, wd, b1, c1, b2, c2, bc2s, reps, nss, !decoupled && weight_decay != 0, zero);
    return COLLAPSE_OK;
}

collapse_status CL_FN(collapse_adam_step)(int64_t n, real *x, const real *g, real *m, real *v, int64_t step,
                                          double lr, double beta1, double beta2, double eps, double weight_decay,
                                          int decoupled) {
    /* g is only read when zero == 0 */
    return CL_FN(adam_step)(n, x, (real *)g, m, v, step, lr, beta1, beta2, eps, weight_decay, decoupled, 0);
}

collapse_status CL_FN(collapse_adam_step_zero_grad)(int64_t n, real *x, real *g, real *m, real *v, int64_t step,
                                                    double lr, double beta1, double beta2, double eps,
                                                    double weight_decay, int decoupled) {
    return CL_FN(adam_step)(n, x, g, m, v, step, lr, beta1, beta2, eps, weight_decay, decoupled, 1);
}
