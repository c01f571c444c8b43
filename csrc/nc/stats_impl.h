/* Dtype-dependent loops of the neural-collapse statistics (instantiated for float and double by
 * nc/stats.c). Everything they produce is double. */

/* 1 and the first offending index in *where if x[0..count) holds an inf or NaN. The block test is
 * a branch-free OR reduction (vectorisable); the exact position is searched only on failure. */
static int CL_FN(nc_find_nonfinite)(const real *restrict x, int64_t count, int64_t *where) {
    const real big = (real)(CL_DOUBLE ? DBL_MAX : FLT_MAX);
    const int64_t block = 4096;
    for (int64_t s = 0; s < count; s += block) {
        int64_t e = count - s > block ? s + block : count;
        int bad = 0;
        for (int64_t i = s; i < e; i++) bad |= !(CL_FABS(x[i]) <= big);
        if (bad) {
            for (int64_t i = s; i < e; i++)
                if (!(CL_FABS(x[i]) <= big)) {
                    *where = i;
                    return 1;
                }
        }
    }
    return 0;
}

/* sums[(y-1) d + j] += x[i d + j] for every row (labels already validated). */
static void CL_FN(nc_add_class_sums)(const real *restrict x, int64_t n, int64_t d, const int32_t *labels,
                                     double *restrict sums) {
    for (int64_t i = 0; i < n; i++) {
        const real *row = x + i * d;
        double *acc = sums + (int64_t)(labels[i] - 1) * d;
        for (int64_t j = 0; j < d; j++) acc[j] += (double)row[j];
    }
}

/* out[i d + j] = x[i d + j] - mu[j] in double, for `rows` rows. */
static void CL_FN(nc_load_centred)(const real *restrict x, int64_t rows, int64_t d, const double *restrict mu,
                                   double *restrict out) {
    for (int64_t i = 0; i < rows; i++) {
        const real *row = x + i * d;
        double *o = out + i * d;
        for (int64_t j = 0; j < d; j++) o[j] = (double)row[j] - mu[j];
    }
}
