/* Generic SGD update (instantiated by optim/sgd.c). */

/* One loop body; inlined at each call site with constant flags so every case is a
 * straight, vectorisable loop (no per-element branches on the options). */
static inline CL_ALWAYS_INLINE void CL_FN(sgd_loop)(int64_t n, real *restrict x, real *restrict g,
                                                     real *restrict buf, real wd, real mom, real damp1, real nlr,
                                                     const int use_wd, const int use_mom, const int first,
                                                     const int nesterov, const int zero) {
    for (int64_t i = 0; i < n; i++) {
        real d = g[i];
        if (zero) g[i] = 0; /* zero_grad fused into the step: one memory pass fewer */
        if (use_wd) d = d + wd * x[i];
        if (use_mom) {
            real b = first ? d : buf[i] * mom + damp1 * d;
            buf[i] = b;
            d = nesterov ? d + mom * b : b;
        }
        x[i] = x[i] + nlr * d;
    }
}

static CL_CLONES collapse_status CL_FN(sgd_step)(const char *fn, int64_t n, real *x, real *g, real *momentum_buf,
                                                 int *buf_ready, double lr, double momentum, double dampening,
                                                 int nesterov, double weight_decay, const int zero) {
    COLLAPSE_TRY(cl_need_size(fn, "n", n, 0));
    COLLAPSE_TRY(cl_need_ptr(fn, "x", x, n, 0));
    COLLAPSE_TRY(cl_need_ptr(fn, "grad", g, n, 0));
    COLLAPSE_TRY(cl_need_nonneg(fn, "lr", lr));
    COLLAPSE_TRY(cl_need_nonneg(fn, "momentum", momentum));
    COLLAPSE_TRY(cl_need_nonneg(fn, "weight_decay", weight_decay));
    if (!isfinite(dampening))
        return collapse_fail(COLLAPSE_ERR_ARG, "sgd_step: dampening must be a finite number, got %g", dampening);
    if (nesterov && (momentum <= 0 || dampening != 0))
        return collapse_fail(COLLAPSE_ERR_ARG,
                             "sgd_step: nesterov momentum requires a momentum > 0 and zero dampening, "
                             "got momentum %g and dampening %g",
                             momentum, dampening);
    const int use_mom = momentum != 0, use_wd = weight_decay != 0;
    if (use_mom) {
        COLLAPSE_TRY(cl_need_ptr(fn, "momentum_buf", momentum_buf, n, 0));
        if (!buf_ready)
            return collapse_fail(COLLAPSE_ERR_ARG,
                                 "sgd_step: buf_ready is NULL, expected a pointer to the momentum buffer's flag");
    }
    const real wd = (real)weight_decay, mom = (real)momentum, damp1 = (real)(1 - dampening), nlr = (real)-lr;
    real *xx = x, *bb = momentum_buf, *gg = g;
#define CL_SGD(W, M, F, N)                                                                     \
    do {                                                                                       \
        if (zero) CL_FN(sgd_loop)(n, xx, gg, bb, wd, mom, damp1, nlr, W, M, F, N, 1);          \
        else CL_FN(sgd_loop)(n, xx, gg, bb, wd, mom, damp1, nlr, W, M, F, N, 0);               \
    } while (0)
    if (!use_mom) {
        if (use_wd) CL_SGD(1, 0, 0, 0); else CL_SGD(0, 0, 0, 0);
    } else {
        const int first = !*buf_ready;
        if (use_wd) {
            if (first) { if (nesterov) CL_SGD(1, 1, 1, 1); else CL_SGD(1, 1, 1, 0); }
            else { if (nesterov) CL_SGD(1, 1, 0, 1); else CL_SGD(1, 1, 0, 0); }
        } else {
            if (first) { if (nesterov) CL_SGD(0, 1, 1, 1); else CL_SGD(0, 1, 1, 0); }
            else { if (nesterov) CL_SGD(0, 1, 0, 1); else CL_SGD(0, 1, 0, 0); }
        }
        *buf_ready = 1;
    }
#undef CL_SGD
    return COLLAPSE_OK;
}

collapse_status CL_FN(collapse_sgd_step)(int64_t n, real *x, const real *g, real *momentum_buf, int *buf_ready,
                                         double lr, double momentum, double dampening, int nesterov,
                                         double weight_decay) {
    /* g is only read when zero == 0 */
    return CL_FN(sgd_step)("sgd_step", n, x, (real *)g, momentum_buf, buf_ready, lr, momentum, dampening, nesterov,
                           weight_decay, 0);
}

collapse_status CL_FN(collapse_sgd_step_zero_grad)(int64_t n, real *x, real *g, real *momentum_buf, int *buf_ready,
                                                   double lr, double momentum, double dampening, int nesterov,
                                                   double weight_decay) {
    return CL_FN(sgd_step)("sgd_step", n, x, g, momentum_buf, buf_ready, lr, momentum, dampening, nesterov,
                           weight_decay, 1);
}
