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

#ifndef NC_LANES
#  define NC_LANES 8         /* partial sums of the row norms in nc_load_pass2 */
/* No software prefetch in the streaming loops: on Intel (Sapphire Rapids, OpenBLAS SkylakeX core)
 * prefetchnta of the rows ahead made the class-sum loop 1.7x and the whole nc_measure 1.35x slower
 * than the hardware prefetcher alone (bench/README.md, metrics on Intel); prefetcht0/t1 gained
 * nothing measurable. */
typedef double nc_v8d __attribute__((vector_size(NC_LANES * sizeof(double))));
#endif

/* sums[(y-1) d + j] += x[i d + j] for every row (labels already validated). A non-finite x makes
 * its class sum non-finite, so callers detect bad batches from the sums (no separate scan). */
static CL_CLONES void CL_FN(nc_add_class_sums)(const real *restrict x, int64_t n, int64_t d, const int32_t *labels,
                                               double *restrict sums) {
    for (int64_t i = 0; i < n; i++) {
        const real *row = x + i * d;
        double *restrict acc = sums + (int64_t)(labels[i] - 1) * d;
        for (int64_t j = 0; j < d; j++) acc[j] += (double)row[j];
    }
}

/* Pass-2 load of `rows` rows: out[i d + j] = x - mu_{y_i} (double), usum_{y_i} += (x - mu_G)/||x - mu_G||,
 * within[y_i] += ||x - mu_{y_i}||^2, *sq += ||x - mu_G||^2, count[y_i]++. The squared norms use NC_LANES
 * independent partial sums in GCC vector types (no reassociation, so every clone gives the same bits). */
static CL_CLONES void CL_FN(nc_load_pass2)(const real *restrict x, int64_t rows, int64_t d,
                                           const int32_t *labels, const double *restrict mu_g,
                                           const double *restrict mu, double *restrict out, double *restrict usum,
                                           double *restrict within, int64_t *restrict count, double *sq) {
    double sqa = 0.0;
    const int64_t dv = d - d % NC_LANES;
    for (int64_t i = 0; i < rows; i++) {
        const real *row = x + i * d;
        const int64_t y = labels[i] - 1;
        const double *restrict my = mu + y * d;
        double *restrict o = out + i * d;
        nc_v8d ag = {0}, ar = {0};
        for (int64_t j = 0; j < dv; j += NC_LANES) {
            nc_v8d mg, mm, v;
            memcpy(&mg, mu_g + j, sizeof mg);
            memcpy(&mm, my + j, sizeof mm);
            /* element-wise: GCC makes one vcvtps2pd; __builtin_convertvector of a float vector split it in
             * two halves plus shuffles */
            for (int k = 0; k < NC_LANES; k++) v[k] = (double)row[j + k];
            nc_v8d g = v - mg, r = v - mm;
            memcpy(o + j, &r, sizeof r);
            ag += g * g;
            ar += r * r;
        }
        double n2 = 0.0, w2 = 0.0;
        for (int k = 0; k < NC_LANES; k++) {
            n2 += ag[k];
            w2 += ar[k];
        }
        for (int64_t j = dv; j < d; j++) {
            double v = (double)row[j];
            double g = v - mu_g[j], r = v - my[j];
            o[j] = r;
            n2 += g * g;
            w2 += r * r;
        }
        if (n2 > 0.0) {
            double inv = 1.0 / sqrt(n2);
            double *restrict u = usum + y * d;
            for (int64_t j = 0; j < d; j++) u[j] += ((double)row[j] - mu_g[j]) * inv;
        }
        sqa += n2;
        within[y] += w2;
        count[y]++;
    }
    *sq += sqa;
}
