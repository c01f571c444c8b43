/* Generic BatchNorm2d kernels over NCHW x (instantiated by nn/batchnorm2d.c). Channel c owns the
 * n contiguous planes x[i, c, :, :] of hw values; every reduction walks them in double, one channel
 * at a time, so no scratch memory is needed.
 *
 * The reductions add into 16 fixed double lanes: element k < hw - hw mod 16 of a plane goes to
 * vector lane k mod 16 (two 8-double vectors, GCC / clang vector extensions), the plane's last
 * hw mod 16 values to scalar tail lanes 0.., and the lanes are summed in order at the end. A
 * plain running sum is one dependent chain of double additions, which no compiler may vectorise
 * without reassociating (it ran at a few values per cycle), and GCC's own vectoriser left half
 * of a 16-lane array loop scalar. The order is fixed by the source, so the baseline, AVX2 and
 * AVX-512 clones (CL_CLONES) give bit-identical results. */

/* 8 consecutive values as doubles (unaligned load; vectors pass by pointer, not by value, so
 * the baseline clone's ABI does not depend on AVX-512) */
CL_ALWAYS_INLINE static inline void CL_FN(bn2d_load8)(cl_v8d *v, const real *p) {
#if CL_DOUBLE
    memcpy(v, p, sizeof *v);
#else
    cl_v8f f;
    memcpy(&f, p, sizeof f);
    *v = __builtin_convertvector(f, cl_v8d);
#endif
}

/* The lanes' total in lane order: lanes 0..7 in a, 8..15 in b, each plus its tail lane. */
static inline double CL_FN(bn2d_total)(const cl_v8d *a, const cl_v8d *b, const double *tail) {
    double t = 0;
    for (int j = 0; j < 8; j++) t += (*a)[j] + tail[j];
    for (int j = 0; j < 8; j++) t += (*b)[j] + tail[8 + j];
    return t;
}

/* The first pass over a channel reads its n planes from memory, one hw-value plane every C hw
 * values: hardware prefetchers do not follow that stride across pages, so each pass asks for
 * the same cache line of the plane about CL_BN2D_AHEAD values ahead (at least the next one).
 * Prefetches never fault; the address is formed as an integer as it may lie past the array. */
CL_ALWAYS_INLINE static inline void CL_FN(bn2d_prefetch)(const real *p, int64_t ahead) {
    __builtin_prefetch((const void *)((uintptr_t)p + (uintptr_t)ahead * sizeof(real)), 0, 3);
}

static inline int64_t CL_FN(bn2d_ahead)(const cl_bn2d_geom *g) {
    const int64_t planes = g->hw >= CL_BN2D_AHEAD ? 1 : CL_BN2D_AHEAD / g->hw;
    return planes * g->c * g->hw;
}

/* y = x a + b over the planes of channel c (y may be x); with relu, then relu_forward's rule
 * (v < 0 ? 0 : v, which keeps NaN) on each value. */
CL_ALWAYS_INLINE static inline void CL_FN(bn2d_affine_loop)(const cl_bn2d_geom *g, int64_t c, const real *x, real *y,
                                                           real a, real b, const int relu) {
    for (int64_t i = 0; i < g->n; i++) {
        const int64_t off = (i * g->c + c) * g->hw;
        const real *xr = x + off;
        real *yr = y + off;
        for (int64_t k = 0; k < g->hw; k++) {
            const real v = xr[k] * a + b;
            yr[k] = relu && v < 0 ? (real)0 : v;
        }
    }
}

CL_CLONES static void CL_FN(bn2d_affine)(const cl_bn2d_geom *g, int64_t c, const real *x, real *y, real a, real b) {
    CL_FN(bn2d_affine_loop)(g, c, x, y, a, b, 0);
}

CL_CLONES static void CL_FN(bn2d_affine_relu)(const cl_bn2d_geom *g, int64_t c, const real *x, real *y, real a,
                                              real b) {
    CL_FN(bn2d_affine_loop)(g, c, x, y, a, b, 1);
}

/* sum of the channel's values */
CL_CLONES static double CL_FN(bn2d_sum)(const cl_bn2d_geom *g, int64_t c, const real *x) {
    cl_v8d a = {0}, b = {0};
    double tail[CL_BN2D_LANES] = {0};
    const int64_t ahead = CL_FN(bn2d_ahead)(g);
    for (int64_t i = 0; i < g->n; i++) {
        const real *xr = x + (i * g->c + c) * g->hw;
        int64_t k = 0;
        for (; k + CL_BN2D_LANES <= g->hw; k += CL_BN2D_LANES) {
            CL_FN(bn2d_prefetch)(xr + k, ahead);
            cl_v8d va, vb;
            CL_FN(bn2d_load8)(&va, xr + k);
            CL_FN(bn2d_load8)(&vb, xr + k + 8);
            a += va;
            b += vb;
        }
        for (int j = 0; k < g->hw; k++, j++) tail[j] += xr[k];
    }
    return CL_FN(bn2d_total)(&a, &b, tail);
}

/* sum of the squared deviations (x - mu)^2 over the channel */
CL_CLONES static double CL_FN(bn2d_sumsq)(const cl_bn2d_geom *g, int64_t c, const real *x, double mu) {
    cl_v8d a = {0}, b = {0};
    double tail[CL_BN2D_LANES] = {0};
    for (int64_t i = 0; i < g->n; i++) {
        const real *xr = x + (i * g->c + c) * g->hw;
        int64_t k = 0;
        for (; k + CL_BN2D_LANES <= g->hw; k += CL_BN2D_LANES) {
            cl_v8d da, db;
            CL_FN(bn2d_load8)(&da, xr + k);
            CL_FN(bn2d_load8)(&db, xr + k + 8);
            da -= mu;
            db -= mu;
            a += da * da;
            b += db * db;
        }
        for (int j = 0; k < g->hw; k++, j++) {
            const double d = (double)xr[k] - mu;
            tail[j] += d * d;
        }
    }
    return CL_FN(bn2d_total)(&a, &b, tail);
}

/* 8 gradient values as doubles, masked first as relu_backward does (y <= 0 ? 0 : gy; NaN y
 * keeps gy) when yr != NULL: the same values as the two kernels in turn. The mask is a vector
 * compare and AND (a +0.0 where masked), so the loop stays vectorised. */
CL_ALWAYS_INLINE static inline void CL_FN(bn2d_load_grad8)(cl_v8d *v, const real *gr, const real *yr) {
    if (!yr) {
        CL_FN(bn2d_load8)(v, gr);
        return;
    }
#if CL_DOUBLE
    cl_v8d g, y;
    memcpy(&g, gr, sizeof g);
    memcpy(&y, yr, sizeof y);
    *v = (cl_v8d)((cl_v8l)g & ~(y <= 0));
#else
    cl_v8f g, y;
    memcpy(&g, gr, sizeof g);
    memcpy(&y, yr, sizeof y);
    *v = __builtin_convertvector((cl_v8f)((cl_v8i)g & ~(y <= 0)), cl_v8d);
#endif
}

/* the two halves of a 16-value block */
CL_ALWAYS_INLINE static inline void CL_FN(bn2d_load_grad)(cl_v8d *ga, cl_v8d *gb, const real *gr, const real *yr) {
    CL_FN(bn2d_load_grad8)(ga, gr, yr);
    CL_FN(bn2d_load_grad8)(gb, gr + 8, yr ? yr + 8 : NULL);
}

/* *sdy = sum g, *dot = sum (x - mu) g over the channel, g = gy or, when y != NULL, gy masked by
 * the fused ReLU's output y (dot only when x != NULL) */
CL_ALWAYS_INLINE static inline void CL_FN(bn2d_grad_sums_loop)(const cl_bn2d_geom *g, int64_t c, const real *x,
                                                              const real *y, const real *gy, double mu,
                                                              double *sdy, double *dot) {
    *dot = 0;
    if (!x) {
        *sdy = CL_FN(bn2d_sum)(g, c, gy);
        return;
    }
    cl_v8d sa = {0}, sb = {0}, da = {0}, db = {0};
    double st[CL_BN2D_LANES] = {0}, dt[CL_BN2D_LANES] = {0};
    const int64_t ahead = CL_FN(bn2d_ahead)(g);
    for (int64_t i = 0; i < g->n; i++) {
        const int64_t off = (i * g->c + c) * g->hw;
        const real *xr = x + off, *gr = gy + off, *yr = y ? y + off : NULL;
        int64_t k = 0;
        for (; k + CL_BN2D_LANES <= g->hw; k += CL_BN2D_LANES) {
            CL_FN(bn2d_prefetch)(xr + k, ahead);
            CL_FN(bn2d_prefetch)(gr + k, ahead);
            if (yr) CL_FN(bn2d_prefetch)(yr + k, ahead);
            cl_v8d ga, gb, xa, xb;
            CL_FN(bn2d_load_grad)(&ga, &gb, gr + k, yr ? yr + k : NULL);
            CL_FN(bn2d_load8)(&xa, xr + k);
            CL_FN(bn2d_load8)(&xb, xr + k + 8);
            sa += ga;
            sb += gb;
            da += (xa - mu) * ga;
            db += (xb - mu) * gb;
        }
        for (int j = 0; k < g->hw; k++, j++) {
            const real gv = yr && yr[k] <= 0 ? (real)0 : gr[k];
            st[j] += gv;
            dt[j] += ((double)xr[k] - mu) * gv;
        }
    }
    *sdy = CL_FN(bn2d_total)(&sa, &sb, st);
    *dot = CL_FN(bn2d_total)(&da, &db, dt);
}

CL_CLONES static void CL_FN(bn2d_grad_sums)(const cl_bn2d_geom *g, int64_t c, const real *x, const real *gy,
                                            double mu, double *sdy, double *dot) {
    CL_FN(bn2d_grad_sums_loop)(g, c, x, NULL, gy, mu, sdy, dot);
}

CL_CLONES static void CL_FN(bn2d_grad_sums_relu)(const cl_bn2d_geom *g, int64_t c, const real *x, const real *y,
                                                 const real *gy, double mu, double *sdy, double *dot) {
    CL_FN(bn2d_grad_sums_loop)(g, c, x, y, gy, mu, sdy, dot);
}

/* gx = (g - c0 - (x - mu) c1) c2 over the channel, g = gy or gy masked by y as above (gx may be
 * gy or y: each value is read before it is written). */
CL_ALWAYS_INLINE static inline void CL_FN(bn2d_grad_input_loop)(const cl_bn2d_geom *g, int64_t c, const real *x,
                                                               const real *y, const real *gy, real *gx, real mu,
                                                               real c0, real c1, real c2) {
    for (int64_t i = 0; i < g->n; i++) {
        const int64_t off = (i * g->c + c) * g->hw;
        const real *restrict xr = x + off;
        const real *gr = gy + off, *yr = y ? y + off : NULL;
        real *gxr = gx + off;
        for (int64_t k = 0; k < g->hw; k++) {
            const real v = gr[k]; /* unconditional load: the select vectorises */
            const real gv = yr && yr[k] <= 0 ? (real)0 : v;
            gxr[k] = (gv - c0 - (xr[k] - mu) * c1) * c2;
        }
    }
}

CL_CLONES static void CL_FN(bn2d_grad_input)(const cl_bn2d_geom *g, int64_t c, const real *x, const real *gy,
                                             real *gx, real mu, real c0, real c1, real c2) {
    CL_FN(bn2d_grad_input_loop)(g, c, x, NULL, gy, gx, mu, c0, c1, c2);
}

CL_CLONES static void CL_FN(bn2d_grad_input_relu)(const cl_bn2d_geom *g, int64_t c, const real *x, const real *y,
                                                  const real *gy, real *gx, real mu, real c0, real c1, real c2) {
    CL_FN(bn2d_grad_input_loop)(g, c, x, y, gy, gx, mu, c0, c1, c2);
}

/* the train forward; relu: y = relu(bn(x)) (the fused pair) */
static collapse_status CL_FN(bn2d_forward_train)(const char *fn, const int64_t input_shape[4], const real *x,
                                                 real *y, const real *gamma, const real *beta, real *running_mean,
                                                 real *running_var, real *save_mean, real *save_invstd,
                                                 double momentum, double eps, int relu) {
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
        const double ss = CL_FN(bn2d_sumsq)(&g, c, x, mu);
        const double invstd = 1.0 / sqrt(ss * inv_m + eps);
        save_mean[c] = (real)mu;
        save_invstd[c] = (real)invstd;
        if (running_mean) running_mean[c] = (real)(momentum * mu + (1 - momentum) * running_mean[c]);
        if (running_var) running_var[c] = (real)(momentum * (ss * inv_m1) + (1 - momentum) * running_var[c]);
        const double a = gamma ? invstd * gamma[c] : invstd;
        const double b = (beta ? (double)beta[c] : 0.0) - mu * a;
        (relu ? CL_FN(bn2d_affine_relu) : CL_FN(bn2d_affine))(&g, c, x, y, (real)a, (real)b);
    }
    return COLLAPSE_OK;
}

collapse_status CL_FN(collapse_batchnorm2d_forward_train)(const int64_t input_shape[4], const real *x, real *y,
                                                          const real *gamma, const real *beta, real *running_mean,
                                                          real *running_var, real *save_mean, real *save_invstd,
                                                          double momentum, double eps) {
    return CL_FN(bn2d_forward_train)("batchnorm2d_forward_train", input_shape, x, y, gamma, beta, running_mean,
                                     running_var, save_mean, save_invstd, momentum, eps, 0);
}

collapse_status CL_FN(collapse_batchnorm2d_relu_forward_train)(const int64_t input_shape[4], const real *x, real *y,
                                                               const real *gamma, const real *beta,
                                                               real *running_mean, real *running_var,
                                                               real *save_mean, real *save_invstd, double momentum,
                                                               double eps) {
    return CL_FN(bn2d_forward_train)("batchnorm2d_relu_forward_train", input_shape, x, y, gamma, beta, running_mean,
                                     running_var, save_mean, save_invstd, momentum, eps, 1);
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

/* Small planes (hw < CL_BN2D_STREAM_HW): the backward's two passes go over the whole arrays in
 * memory order (sample by sample, every channel's plane in turn) instead of channel by channel,
 * whose reads of one or a few cache lines per page the prefetchers cannot follow (3x slower at
 * 4 x 4 here). Each channel keeps its own lanes (acc[c]), filled in the order of
 * bn2d_grad_sums_loop, so the sums and gradients are bit-identical to the channel-wise passes. */
CL_ALWAYS_INLINE static inline void CL_FN(bn2d_grad_sums_all_loop)(const cl_bn2d_geom *g, const real *x, const real *y,
                                                                  const real *gy, const real *mu,
                                                                  cl_bn2d_acc *acc) {
    for (int64_t i = 0; i < g->n; i++)
        for (int64_t c = 0; c < g->c; c++) {
            const int64_t off = (i * g->c + c) * g->hw;
            const real *xr = x + off, *gr = gy + off, *yr = y ? y + off : NULL;
            cl_bn2d_acc *a = acc + c;
            const double m = mu[c]; /* the float mean, as the channel-wise pass uses it */
            int64_t k = 0;
            for (; k + CL_BN2D_LANES <= g->hw; k += CL_BN2D_LANES) {
                cl_v8d ga, gb, xa, xb;
                CL_FN(bn2d_load_grad)(&ga, &gb, gr + k, yr ? yr + k : NULL);
                CL_FN(bn2d_load8)(&xa, xr + k);
                CL_FN(bn2d_load8)(&xb, xr + k + 8);
                a->sa += ga;
                a->sb += gb;
                a->da += (xa - m) * ga;
                a->db += (xb - m) * gb;
            }
            for (int j = 0; k < g->hw; k++, j++) {
                const real gv = yr && yr[k] <= 0 ? (real)0 : gr[k];
                a->st[j] += gv;
                a->dt[j] += ((double)xr[k] - m) * gv;
            }
        }
}

CL_CLONES static void CL_FN(bn2d_grad_sums_all)(const cl_bn2d_geom *g, const real *x, const real *gy,
                                                const real *mu, cl_bn2d_acc *acc) {
    CL_FN(bn2d_grad_sums_all_loop)(g, x, NULL, gy, mu, acc);
}

CL_CLONES static void CL_FN(bn2d_grad_sums_all_relu)(const cl_bn2d_geom *g, const real *x, const real *y,
                                                     const real *gy, const real *mu, cl_bn2d_acc *acc) {
    CL_FN(bn2d_grad_sums_all_loop)(g, x, y, gy, mu, acc);
}

/* gx over the whole arrays in memory order; kc[4 c ..] = mu, c0, c1, c2 of channel c */
CL_ALWAYS_INLINE static inline void CL_FN(bn2d_grad_input_all_loop)(const cl_bn2d_geom *g, const real *x,
                                                                   const real *y, const real *gy, real *gx,
                                                                   const real *kc) {
    for (int64_t i = 0; i < g->n; i++)
        for (int64_t c = 0; c < g->c; c++) {
            const int64_t off = (i * g->c + c) * g->hw;
            const real *restrict xr = x + off;
            const real *gr = gy + off, *yr = y ? y + off : NULL;
            real *gxr = gx + off;
            const real mu = kc[4 * c], c0 = kc[4 * c + 1], c1 = kc[4 * c + 2], c2 = kc[4 * c + 3];
            for (int64_t k = 0; k < g->hw; k++) {
                const real v = gr[k];
                const real gv = yr && yr[k] <= 0 ? (real)0 : v;
                gxr[k] = (gv - c0 - (xr[k] - mu) * c1) * c2;
            }
        }
}

CL_CLONES static void CL_FN(bn2d_grad_input_all)(const cl_bn2d_geom *g, const real *x, const real *gy, real *gx,
                                                 const real *kc) {
    CL_FN(bn2d_grad_input_all_loop)(g, x, NULL, gy, gx, kc);
}

CL_CLONES static void CL_FN(bn2d_grad_input_all_relu)(const cl_bn2d_geom *g, const real *x, const real *y,
                                                      const real *gy, real *gx, const real *kc) {
    CL_FN(bn2d_grad_input_all_loop)(g, x, y, gy, gx, kc);
}

/* The train backward over small planes: both passes in memory order (above). y: the fused ReLU's
 * output or NULL. The per-channel lanes and constants take C (384 + 4 sizeof(real)) bytes. */
static collapse_status CL_FN(bn2d_backward_stream)(const char *fn, const cl_bn2d_geom *g, const real *x,
                                                   const real *y, const real *grad_output, real *grad_input,
                                                   const real *gamma, real *grad_gamma, real *grad_beta,
                                                   const real *save_mean, const real *save_invstd) {
    const size_t acc_bytes = (size_t)g->c * sizeof(cl_bn2d_acc);
    const size_t bytes = (acc_bytes + (size_t)(4 * g->c) * sizeof(real) + 63) / 64 * 64; /* aligned_alloc's rule */
    cl_bn2d_acc *acc = aligned_alloc(64, bytes);
    if (!acc) return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: out of memory for %lld channel sums", fn, (long long)g->c);
    memset(acc, 0, acc_bytes);
    real *kc = (real *)(void *)((char *)acc + acc_bytes);
    if (y) CL_FN(bn2d_grad_sums_all_relu)(g, x, y, grad_output, save_mean, acc);
    else CL_FN(bn2d_grad_sums_all)(g, x, grad_output, save_mean, acc);
    const double inv_m = 1.0 / (double)g->m;
    for (int64_t c = 0; c < g->c; c++) {
        const double invstd = save_invstd[c];
        const double sdy = CL_FN(bn2d_total)(&acc[c].sa, &acc[c].sb, acc[c].st);
        const double dot = CL_FN(bn2d_total)(&acc[c].da, &acc[c].db, acc[c].dt);
        if (grad_beta) grad_beta[c] = (real)(grad_beta[c] + sdy);
        if (grad_gamma) grad_gamma[c] = (real)(grad_gamma[c] + dot * invstd);
        /* the constants of the channel-wise pass, rounded alike */
        kc[4 * c] = save_mean[c];
        kc[4 * c + 1] = (real)(sdy * inv_m);
        kc[4 * c + 2] = (real)(dot * invstd * invstd * inv_m);
        kc[4 * c + 3] = (real)(gamma ? invstd * gamma[c] : invstd);
    }
    if (grad_input) {
        if (y) CL_FN(bn2d_grad_input_all_relu)(g, x, y, grad_output, grad_input, kc);
        else CL_FN(bn2d_grad_input_all)(g, x, grad_output, grad_input, kc);
    }
    free(acc);
    return COLLAPSE_OK;
}

/* the train backward; relu: the fused pair's, grad_output is the gradient at relu's output y */
static collapse_status CL_FN(bn2d_backward_train)(const char *fn, const int64_t input_shape[4], const real *x,
                                                  const real *y, int relu, const real *grad_output, real *grad_input,
                                                  const real *gamma, real *grad_gamma, real *grad_beta,
                                                  const real *save_mean, const real *save_invstd) {
    cl_bn2d_geom g;
    COLLAPSE_TRY(cl_bn2d_geometry(fn, input_shape, &g));
    COLLAPSE_TRY(cl_bn2d_need_two(input_shape, &g));
    COLLAPSE_TRY(cl_need_ptr4(fn, "x", x, input_shape));
    COLLAPSE_TRY(cl_need_ptr4(fn, "grad_output", grad_output, input_shape));
    if (relu) COLLAPSE_TRY(cl_need_ptr4(fn, "y", y, input_shape));
    COLLAPSE_TRY(cl_need_ptr(fn, "save_mean", save_mean, g.c, 0));
    COLLAPSE_TRY(cl_need_ptr(fn, "save_invstd", save_invstd, g.c, 0));
    const double inv_m = 1.0 / (double)g.m;
    if (g.hw < CL_BN2D_STREAM_HW)
        return CL_FN(bn2d_backward_stream)(fn, &g, x, y, grad_output, grad_input, gamma, grad_gamma, grad_beta,
                                           save_mean, save_invstd);
    for (int64_t c = 0; c < g.c; c++) {
        const real mu = save_mean[c];
        const double invstd = save_invstd[c];
        double sdy, dot;
        if (y) CL_FN(bn2d_grad_sums_relu)(&g, c, x, y, grad_output, mu, &sdy, &dot);
        else CL_FN(bn2d_grad_sums)(&g, c, x, grad_output, mu, &sdy, &dot);
        if (grad_beta) grad_beta[c] = (real)(grad_beta[c] + sdy);
        if (grad_gamma) grad_gamma[c] = (real)(grad_gamma[c] + dot * invstd);
        if (!grad_input) continue;
        /* gx = (gy - mean(gy) - (x - mean) dot invstd^2 / m) invstd gamma  (PyTorch's order) */
        const real c0 = (real)(sdy * inv_m), c1 = (real)(dot * invstd * invstd * inv_m),
                   c2 = (real)(gamma ? invstd * gamma[c] : invstd);
        if (y) CL_FN(bn2d_grad_input_relu)(&g, c, x, y, grad_output, grad_input, mu, c0, c1, c2);
        else CL_FN(bn2d_grad_input)(&g, c, x, grad_output, grad_input, mu, c0, c1, c2);
    }
    return COLLAPSE_OK;
}

collapse_status CL_FN(collapse_batchnorm2d_backward_train)(const int64_t input_shape[4], const real *x,
                                                           const real *grad_output, real *grad_input,
                                                           const real *gamma, real *grad_gamma, real *grad_beta,
                                                           const real *save_mean, const real *save_invstd) {
    return CL_FN(bn2d_backward_train)("batchnorm2d_backward_train", input_shape, x, NULL, 0, grad_output, grad_input,
                                      gamma, grad_gamma, grad_beta, save_mean, save_invstd);
}

collapse_status CL_FN(collapse_batchnorm2d_relu_backward_train)(const int64_t input_shape[4], const real *x,
                                                                const real *y, const real *grad_output,
                                                                real *grad_input, const real *gamma,
                                                                real *grad_gamma, real *grad_beta,
                                                                const real *save_mean, const real *save_invstd) {
    return CL_FN(bn2d_backward_train)("batchnorm2d_relu_backward_train", input_shape, x, y, 1, grad_output,
                                      grad_input, gamma, grad_gamma, grad_beta, save_mean, save_invstd);
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
