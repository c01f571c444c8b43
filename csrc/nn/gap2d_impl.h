/* Global average pooling over the H x W planes of NCHW tensors, written once for float and
 * double (included by nn/gap2d.c between core/generic.h and core/generic_end.h). */

/* y[p] = mean of plane p (planes = N C, each of hw values), accumulated in double. */
static void CL_FN(gap2d_fwd)(int64_t planes, int64_t hw, const real *x, real *y) {
    for (int64_t p = 0; p < planes; p++) {
        const real *xp = x + p * hw;
        double s = 0;
        for (int64_t i = 0; i < hw; i++) s += xp[i];
        y[p] = (real)(s / (double)hw);
    }
}

/* gx[p, i] = gy[p] / hw. */
static void CL_FN(gap2d_bwd)(int64_t planes, int64_t hw, const real *gy, real *gx) {
    const double inv = 1.0 / (double)hw;
    for (int64_t p = 0; p < planes; p++) {
        real v = (real)(gy[p] * inv);
        real *gp = gx + p * hw;
        for (int64_t i = 0; i < hw; i++) gp[i] = v;
    }
}
