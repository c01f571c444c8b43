/* Inverted dropout, written once for float and double (included by nn/dropout.c between
 * core/generic.h and core/generic_end.h). */

/* mask[i] = scale with probability 1 - p (one uniform draw per element, in order), else 0;
 * y = x * mask. keep = 1 - p, scale = 1 / keep (0 when keep == 0). */
static void CL_FN(dropout_fwd)(int64_t n, const real *x, real *y, real *mask, double keep, double scale,
                               collapse_rng *g) {
    const real s = (real)scale;
    for (int64_t i = 0; i < n; i++) {
        real m = collapse_rng_uniform(g) < keep ? s : (real)0;
        mask[i] = m;
        y[i] = x[i] * m;
    }
}

CL_CLONES static void CL_FN(dropout_bwd)(int64_t n, const real *gy, real *gx, const real *mask) {
    for (int64_t i = 0; i < n; i++) gx[i] = gy[i] * mask[i];
}
