/*
 * Streaming neural-collapse statistics and metrics (definitions: docs/metrics.md).
 *
 * Pass 1 accumulates counts and class sums. end_pass1 forms the class means mu_c, the global
 * mean mu_G, the centred means M~ (rows mu_c - mu_P), their C x C Gram G = M~ M~^T and its
 * eigen-decomposition G = V diag(lambda) V^T, and the orthonormal basis u_k = M~^T v_k/sqrt(lambda_k)
 * of the top (at most C-1) non-negligible directions. Since Sigma_B = M~^T M~/C has eigenpairs
 * (lambda_k/C, u_k), nc1 = Tr(Sigma_W Sigma_B^+)/C = sum_k (1/lambda_k) (1/N) sum_i ((h_i-mu_{y_i}).u_k)^2,
 * accumulated in pass 2 (no d x d matrix). Pass 2 converts each chunk to double once (h - mu_y, with
 * the norms of h - mu_G and h - mu_y, the sums of unit-normalised centred features per class and the
 * within-class energies fused into that load), then one product kernel per chunk (nc/stats_products.c,
 * in place of dgemm) against the stacked rows
 * [basis; W; mu_c - mu_G] (see nc_build_stack): products with h - mu_G come from those with h - mu_y
 * plus precomputed (mu_y - mu_G) terms. Sigma_W (dsyrk) only with COLLAPSE_NC_WITHIN_SPECTRUM.
 * Non-finite features are caught without a separate scan in pass 1 (they make the class sums
 * non-finite; the batch is then scanned and rolled back), and nc_measure's pass 2 reuses pass 1's check.
 *
 * Every accumulator is double. Batches are processed in chunks of at most NC_CHUNK_ELEMS doubles
 * per scratch buffer, so the temporaries stay at a few MB whatever the batch size.
 */
#include "collapse.h"
#include "core/args.h"
#include "core/error.h"

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CL_DOUBLE 0
#include "core/generic.h"
#include "nc/stats_impl.h"
#include "core/generic_end.h"
#define CL_DOUBLE 1
#include "core/generic.h"
#include "nc/stats_impl.h"
#include "core/generic_end.h"
#include "nc/stats_internal.h"

/* ---- helpers ------------------------------------------------------------------ */

static void *nc_alloc(int64_t count, size_t size) {
    if (count <= 0) count = 1;
    if ((uint64_t)count > SIZE_MAX / size) return NULL;
    return calloc((size_t)count, size);
}

static const char *plural(int64_t k) { return k == 1 ? "" : "s"; }

/* numpy.quantile(x, q) with the default 'linear' method, including numpy's lerp. x is sorted in place. */
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double quantile_sorted(double *x, int64_t n, double q) {
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    double virt = q * (double)(n - 1);
    double prev = floor(virt);
    int64_t lo = (int64_t)prev;
    if (lo < 0) lo = 0;
    if (lo > n - 1) lo = n - 1;
    int64_t hi = lo + 1 < n ? lo + 1 : n - 1;
    double t = virt - prev;
    double a = x[lo], b = x[hi];
    double diff = b - a;
    double v = a + diff * t;
    if (t >= 0.5) v = b - diff * (1.0 - t);
    if (a == b) v = a;
    return v;
}

/* Arguments and labels of a batch; with `scan`, also the features (1 on a non-finite value). */
static collapse_status nc_check_batch(const char *fn, const collapse_nc_stats *s, collapse_dtype dtype,
                                      const void *features, int64_t n, const int32_t *labels, int scan) {
    if (!s) return collapse_fail(COLLAPSE_ERR_ARG, "%s: stats expected, got NULL", fn);
    if (n < 0) return collapse_fail(COLLAPSE_ERR_ARG, "%s: n must be >= 0, got %lld", fn, (long long)n);
    if (!features) return collapse_fail(COLLAPSE_ERR_ARG, "%s: features expected, got NULL", fn);
    if (!labels) return collapse_fail(COLLAPSE_ERR_ARG, "%s: labels expected, got NULL", fn);
    if (dtype != COLLAPSE_FLOAT32 && dtype != COLLAPSE_FLOAT64)
        return collapse_fail(COLLAPSE_ERR_DTYPE, "%s: features must be float32 or float64, got %s", fn,
                             collapse_dtype_name(dtype));
    if (n > INT64_MAX / s->d)
        return collapse_fail(COLLAPSE_ERR_SHAPE, "%s: features [%lld x %lld] are too large", fn, (long long)n,
                             (long long)s->d);
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 1 || labels[i] > s->C)
            return collapse_fail(COLLAPSE_ERR_RANGE, "%s: label %d at index %lld is outside 1..%d", fn,
                                 (int)labels[i], (long long)i, s->C);
    if (!scan) return COLLAPSE_OK;
    int64_t where = 0;
    int bad = dtype == COLLAPSE_FLOAT32 ? nc_find_nonfinite_f32((const float *)features, n * s->d, &where)
                                        : nc_find_nonfinite_f64((const double *)features, n * s->d, &where);
    if (bad) {
        double v = dtype == COLLAPSE_FLOAT32 ? (double)((const float *)features)[where]
                                             : ((const double *)features)[where];
        return collapse_fail(COLLAPSE_ERR_NUMERIC,
                             "%s: features [%lld x %lld] hold a non-finite value (%g) at row %lld, column %lld; "
                             "expected finite numbers",
                             fn, (long long)n, (long long)s->d, v, (long long)(where / s->d),
                             (long long)(where % s->d));
    }
    return COLLAPSE_OK;
}

/* ---- lifetime --------------------------------------------------------------------- */

void collapse_nc_stats_free(collapse_nc_stats *s) {
    if (!s) return;
    free(s->count1);
    free(s->sum);
    free(s->mu);
    free(s->mu_g);
    free(s->mt);
    free(s->gram);
    free(s->gvec);
    free(s->geig);
    free(s->basis);
    free(s->blam);
    free(s->wm);
    free(s->bias);
    free(s->beff);
    free(s->mnorm2);
    free(s->count2);
    free(s->usum);
    free(s->within);
    free(s->proj2);
    free(s->sigw);
    free(s->tw);
    free(s->tm);
    free(s->acoef);
    free(s->bsum);
    free(s->stack);
    free(s->rbuf);
    free(s->pbuf);
    free(s);
}

collapse_status nc_new(const char *fn, int classes, int64_t dim, int flags, collapse_nc_stats **out) {
    if (!out) return collapse_fail(COLLAPSE_ERR_ARG, "%s: out expected, got NULL", fn);
    *out = NULL;
    if (classes < 2) return collapse_fail(COLLAPSE_ERR_ARG, "%s: classes must be >= 2, got %d", fn, classes);
    if (dim < 1) return collapse_fail(COLLAPSE_ERR_ARG, "%s: dim must be >= 1, got %lld", fn, (long long)dim);
    if (dim > INT_MAX || classes > INT_MAX / 2 || dim > INT64_MAX / 16 / (2 * (int64_t)classes))
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: classes %d x dim %lld is too large", fn, classes,
                             (long long)dim);
    if (flags & ~(COLLAPSE_NC_WITHIN_SPECTRUM | COLLAPSE_NC_CONV_ALL))
        return collapse_fail(COLLAPSE_ERR_ARG,
                             "%s: unknown flags 0x%x (expected COLLAPSE_NC_WITHIN_SPECTRUM and COLLAPSE_NC_CONV_* bits)",
                             fn, (unsigned)flags);
    collapse_nc_stats *s = calloc(1, sizeof *s);
    if (!s) return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: out of memory", fn);
    int64_t C = classes, d = dim;
    s->C = classes;
    s->d = dim;
    s->flags = flags & COLLAPSE_NC_WITHIN_SPECTRUM;
    s->conv = flags & COLLAPSE_NC_CONV_ALL;
    s->state = NC_PASS1;
    int64_t width = 2 * C > d ? 2 * C : d;
    s->chunk = NC_CHUNK_ELEMS / width;
    if (s->chunk < 1) s->chunk = 1;
    s->count1 = nc_alloc(C, sizeof(int64_t));
    s->count2 = nc_alloc(C, sizeof(int64_t));
    s->sum = nc_alloc(C * d, sizeof(double));
    s->mu = nc_alloc(C * d, sizeof(double));
    s->mu_g = nc_alloc(d, sizeof(double));
    s->mt = nc_alloc(C * d, sizeof(double));
    s->gram = nc_alloc(C * C, sizeof(double));
    s->gvec = nc_alloc(C * C, sizeof(double));
    s->geig = nc_alloc(C, sizeof(double));
    s->basis = nc_alloc(C * d, sizeof(double));
    s->blam = nc_alloc(C, sizeof(double));
    s->usum = nc_alloc(C * d, sizeof(double));
    s->within = nc_alloc(C, sizeof(double));
    s->proj2 = nc_alloc(C, sizeof(double));
    s->rbuf = nc_alloc(s->chunk * d, sizeof(double));
    s->pbuf = nc_alloc(s->chunk * (3 * C + NC_STACK_ROUND), sizeof(double));
    s->bsum = nc_alloc(C * d, sizeof(double));
    s->stack = nc_alloc((3 * C + NC_STACK_ROUND) * d, sizeof(double));
    int ok = s->count1 && s->count2 && s->sum && s->mu && s->mu_g && s->mt && s->gram && s->gvec && s->geig &&
             s->basis && s->blam && s->usum && s->within && s->proj2 && s->rbuf && s->pbuf && s->bsum &&
             s->stack;
    if (ok && (flags & COLLAPSE_NC_WITHIN_SPECTRUM)) {
        if (d > INT64_MAX / 8 / d) ok = 0;
        else ok = (s->sigw = nc_alloc(d * d, sizeof(double))) != NULL;
    }
    if (!ok) {
        collapse_nc_stats_free(s);
        return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: out of memory for %d classes x %lld dims", fn, classes,
                             (long long)dim);
    }
    *out = s;
    return COLLAPSE_OK;
}

collapse_status collapse_nc_stats_new(int classes, int64_t dim, int flags, collapse_nc_stats **out) {
    return nc_new("nc_stats_new", classes, dim, flags, out);
}

/* ---- classifier ---------------------------------------------------------------------- */

/* Rows C..2C-1 of wm (mu_c - mu_G), ||mu_c - mu_G||^2 and W mu_G + b; needs end_pass1 and W. */
static void nc_prepare_classifier(collapse_nc_stats *s) {
    int64_t C = s->C, d = s->d;
    for (int64_t c = 0; c < C; c++) {
        double *m = s->wm + (C + c) * d;
        const double *mc = s->mu + c * d;
        for (int64_t j = 0; j < d; j++) m[j] = mc[j] - s->mu_g[j];
        s->mnorm2[c] = cblas_ddot((int)d, m, 1, m, 1);
        s->beff[c] = cblas_ddot((int)d, s->wm + c * d, 1, s->mu_g, 1) + s->bias[c];
    }
    /* h - mu_G = (h - mu_y) + (mu_y - mu_G): pass 2 forms products with h - mu_y only and adds these */
    for (int64_t y = 0; y < C; y++)
        for (int64_t c = 0; c < C; c++) {
            const double *my = s->wm + (C + y) * d;
            s->tw[y * C + c] = cblas_ddot((int)d, my, 1, s->wm + c * d, 1);
            s->tm[y * C + c] = cblas_ddot((int)d, my, 1, s->wm + (C + c) * d, 1);
        }
}

/* The pass-2 product matrix: basis rows, then (with a classifier) W and, unless ncc_coord, mu_c - mu_G.
 * The M~ rows sum to 0, so span(M~) has dimension <= C-1 and contains every mu_c - mu_G (mu_P - mu_G is a
 * zero-sum combination of the mu_c). When the basis spans all of it (rank C-1) and is well conditioned
 * (smallest kept lambda >= NC_COORD_RCOND * largest), (h - mu_y).(mu_c - mu_G) = sum_k p_k acoef[c][k]
 * with p_k = (h - mu_y).u_k, which the products compute anyway: C fewer d-wide products per row. */
#define NC_COORD_RCOND 1e-6
#define NC_MAX_COORD_C 64 /* stack buffer of the per-row products in nc_chunk */
static void nc_build_stack(collapse_nc_stats *s) {
    int64_t C = s->C, d = s->d, k = s->rank;
    if (k > 0) memcpy(s->stack, s->basis, (size_t)(k * d) * sizeof(double));
    s->nstack = (int)k;
    s->ncc_coord = 0;
    if (s->has_w) {
        /* only where it pays (d >> C): it trades d-wide products for C x rank ones, and exact ties of
         * small exact-integer data (d ~ C) stay exact with the direct products */
        s->ncc_coord =
            C <= NC_MAX_COORD_C && d >= 8 * C && k == C - 1 && s->blam[k - 1] >= NC_COORD_RCOND * s->blam[0];
        if (s->ncc_coord) {
            for (int64_t c = 0; c < C; c++)
                for (int64_t j = 0; j < k; j++)
                    s->acoef[c * C + j] = cblas_ddot((int)d, s->wm + (C + c) * d, 1, s->basis + j * d, 1);
            memcpy(s->stack + k * d, s->wm, (size_t)(C * d) * sizeof(double));
            s->nstack += (int)C;
        } else {
            memcpy(s->stack + k * d, s->wm, (size_t)(2 * C * d) * sizeof(double));
            s->nstack += (int)(2 * C);
        }
    }
    /* zero rows up to a multiple of NC_STACK_ROUND (the product kernel's register block) */
    if (s->nstack > 0) {
        int padded = (s->nstack + NC_STACK_ROUND - 1) / NC_STACK_ROUND * NC_STACK_ROUND;
        memset(s->stack + (int64_t)s->nstack * d, 0, (size_t)((padded - s->nstack) * d) * sizeof(double));
        s->nstack = padded;
    }
}

void nc_prepare_pass2(collapse_nc_stats *s) {
    if (s->has_w) nc_prepare_classifier(s);
    nc_build_stack(s);
}

collapse_status nc_set_classifier(const char *fn, collapse_nc_stats *s, const double *W, const double *b) {
    if (!s) return collapse_fail(COLLAPSE_ERR_ARG, "%s: stats expected, got NULL", fn);
    if (!W) return collapse_fail(COLLAPSE_ERR_ARG, "%s: W [%d x %lld] expected, got NULL", fn, s->C, (long long)s->d);
    if (s->pass2_started)
        return collapse_fail(COLLAPSE_ERR_STATE, "%s: the classifier must be set before the first pass-2 batch", fn);
    int64_t C = s->C, d = s->d;
    for (int64_t i = 0; i < C * d; i++)
        if (!isfinite(W[i]))
            return collapse_fail(COLLAPSE_ERR_NUMERIC, "%s: W [%d x %lld] holds a non-finite value (%g) at row %lld, column %lld",
                                 fn, s->C, (long long)d, W[i], (long long)(i / d), (long long)(i % d));
    if (b)
        for (int64_t c = 0; c < C; c++)
            if (!isfinite(b[c]))
                return collapse_fail(COLLAPSE_ERR_NUMERIC, "%s: b holds a non-finite value (%g) at index %lld", fn, b[c],
                                     (long long)c);
    if (!s->wm) {
        double *wm = nc_alloc(2 * C * d, sizeof(double));
        double *bias = nc_alloc(C, sizeof(double)), *beff = nc_alloc(C, sizeof(double));
        double *mn = nc_alloc(C, sizeof(double));
        double *tw = nc_alloc(C * C, sizeof(double)), *tm = nc_alloc(C * C, sizeof(double));
        double *ac = nc_alloc(C * C, sizeof(double));
        if (!wm || !bias || !beff || !mn || !tw || !tm || !ac) {
            free(ac);
            free(wm);
            free(bias);
            free(beff);
            free(mn);
            free(tw);
            free(tm);
            return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: out of memory for W [%d x %lld]", fn, s->C, (long long)d);
        }
        s->wm = wm;
        s->bias = bias;
        s->beff = beff;
        s->mnorm2 = mn;
        s->tw = tw;
        s->tm = tm;
        s->acoef = ac;
    }
    memcpy(s->wm, W, (size_t)(C * d) * sizeof(double));
    for (int64_t c = 0; c < C; c++) s->bias[c] = b ? b[c] : 0.0;
    s->has_w = 1;
    if (s->state == NC_PASS2) {
        nc_prepare_classifier(s);
        nc_build_stack(s);
    }
    return COLLAPSE_OK;
}

collapse_status collapse_nc_stats_set_classifier(collapse_nc_stats *s, const double *W, const double *b) {
    return nc_set_classifier("nc_stats_set_classifier", s, W, b);
}

/* ---- pass 1 ---------------------------------------------------------------------------- */

static collapse_status nc_pass1(const char *fn, collapse_nc_stats *s, collapse_dtype dtype, const void *features,
                                int64_t n, const int32_t *labels) {
    if (s && s->state != NC_PASS1)
        return collapse_fail(COLLAPSE_ERR_STATE, "%s: pass 1 is over (end_pass1 was called); feed pass 2", fn);
    COLLAPSE_TRY(nc_check_batch(fn, s, dtype, features, n, labels, 0));
    /* The sums are accumulated in place (same order as one batch) after saving them in bsum; a non-finite
     * feature makes a sum non-finite, and only then is the batch scanned: on inf/NaN input the saved
     * sums are restored (batch rejected), while a float64 overflow of finite input is accepted as before. */
    const int64_t Cd = (int64_t)s->C * s->d;
    memcpy(s->bsum, s->sum, (size_t)Cd * sizeof(double));
    if (dtype == COLLAPSE_FLOAT32) nc_add_class_sums_f32((const float *)features, n, s->d, labels, s->sum);
    else nc_add_class_sums_f64((const double *)features, n, s->d, labels, s->sum);
    int finite = 1;
    for (int64_t i = 0; i < Cd; i++) finite &= isfinite(s->sum[i]) != 0;
    if (!finite) {
        collapse_status st = nc_check_batch(fn, s, dtype, features, n, labels, 1);
        if (st != COLLAPSE_OK) {
            memcpy(s->sum, s->bsum, (size_t)Cd * sizeof(double));
            return st;
        }
    }
    for (int64_t i = 0; i < n; i++) s->count1[labels[i] - 1]++;
    s->n1 += n;
    return COLLAPSE_OK;
}

collapse_status collapse_nc_stats_pass1(collapse_nc_stats *s, collapse_dtype dtype, const void *features, int64_t n,
                                        const int32_t *labels) {
    return nc_pass1("nc_stats_pass1", s, dtype, features, n, labels);
}

static collapse_status nc_end_pass1(const char *fn, collapse_nc_stats *s) {
    if (!s) return collapse_fail(COLLAPSE_ERR_ARG, "%s: stats expected, got NULL", fn);
    if (s->state != NC_PASS1) return collapse_fail(COLLAPSE_ERR_STATE, "%s: end_pass1 was already called", fn);
    int64_t C = s->C, d = s->d;
    for (int64_t c = 0; c < C; c++)
        if (s->count1[c] < 2)
            return collapse_fail(COLLAPSE_ERR_ARG, "%s: class %lld has %lld sample%s; every class needs at least 2", fn,
                                 (long long)(c + 1), (long long)s->count1[c], plural(s->count1[c]));
    /* means: mu_c, mu_G = (sum of class sums)/N, mu_P = mean of mu_c; M~ = mu_c - mu_P (or - mu_G) */
    for (int64_t j = 0; j < d; j++) s->mu_g[j] = 0.0;
    for (int64_t c = 0; c < C; c++) {
        const double *sc = s->sum + c * d;
        double *mc = s->mu + c * d;
        double inv = 1.0 / (double)s->count1[c];
        for (int64_t j = 0; j < d; j++) {
            s->mu_g[j] += sc[j];
            mc[j] = sc[j] * inv;
        }
    }
    for (int64_t j = 0; j < d; j++) s->mu_g[j] /= (double)s->n1;
    for (int64_t j = 0; j < d; j++) {
        double p = 0.0;
        for (int64_t c = 0; c < C; c++) p += s->mu[c * d + j];
        p /= (double)C;
        if (s->conv & COLLAPSE_NC_CONV_MEAN_SAMPLES) p = s->mu_g[j];
        for (int64_t c = 0; c < C; c++) s->mt[c * d + j] = s->mu[c * d + j] - p;
    }
    /* G = M~ M~^T and its eigen-decomposition */
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)C, (int)d, 1.0, s->mt, (int)d, 0.0, s->gram, (int)C);
    for (int64_t i = 0; i < C; i++)
        for (int64_t j = i + 1; j < C; j++) s->gram[j * C + i] = s->gram[i * C + j];
    double trace = 0.0;
    for (int64_t c = 0; c < C; c++) trace += s->gram[c * C + c];
    if (!(trace > 0.0))
        return collapse_fail(COLLAPSE_ERR_NUMERIC,
                             "%s: all %d class means are identical (between-class scatter is 0); the collapse "
                             "metrics are undefined",
                             fn, s->C);
    if (!isfinite(trace))
        return collapse_fail(COLLAPSE_ERR_NUMERIC, "%s: the class means are too large for float64 (||M~||^2 overflows)", fn);
    double *w = nc_alloc(C, sizeof(double));
    if (!w) return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: out of memory", fn);
    memcpy(s->gvec, s->gram, (size_t)(C * C) * sizeof(double));
    lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', (lapack_int)C, s->gvec, (lapack_int)C, w);
    if (info != 0) {
        free(w);
        return collapse_fail(COLLAPSE_ERR_NUMERIC, "%s: LAPACK dsyevd on the %d x %d class-mean Gram failed (info %d)",
                             fn, s->C, s->C, (int)info);
    }
    for (int64_t k = 0; k < C; k++) s->geig[k] = w[C - 1 - k] > 0.0 ? w[C - 1 - k] : 0.0;
    double lmax = s->geig[0];
    int64_t keep = C - 1 < d ? C - 1 : d;
    s->rank = 0;
    for (int64_t k = 0; k < keep; k++) {
        double lam = w[C - 1 - k];
        if (!(lam > NC_EIG_RTOL * lmax)) break;
        /* u_k = M~^T v_k / sqrt(lambda_k), v_k = column C-1-k of gvec */
        cblas_dgemv(CblasRowMajor, CblasTrans, (int)C, (int)d, 1.0 / sqrt(lam), s->mt, (int)d,
                    s->gvec + (C - 1 - k), (int)C, 0.0, s->basis + k * d, 1);
        s->blam[k] = lam;
        s->rank++;
    }
    free(w);
    nc_prepare_pass2(s);
    s->state = NC_PASS2;
    return COLLAPSE_OK;
}

collapse_status collapse_nc_stats_end_pass1(collapse_nc_stats *s) { return nc_end_pass1("nc_stats_end_pass1", s); }

collapse_status collapse_nc_stats_means(const collapse_nc_stats *s, double *class_means, double *global_mean) {
    if (!s) return collapse_fail(COLLAPSE_ERR_ARG, "nc_stats_means: stats expected, got NULL");
    if (s->state != NC_PASS2)
        return collapse_fail(COLLAPSE_ERR_STATE, "nc_stats_means: the means are known after nc_stats_end_pass1");
    if (class_means) memcpy(class_means, s->mu, (size_t)(s->C * s->d) * sizeof(double));
    if (global_mean) memcpy(global_mean, s->mu_g, (size_t)s->d * sizeof(double));
    return COLLAPSE_OK;
}

/* ---- pass 2 ------------------------------------------------------------------------------ */

/* One chunk: rbuf holds h - mu_y (rows x d, double); the per-row norms are done by the load. One product call
 * against stack gives the basis projections of h - mu_y and (adding tw/tm, i.e. (mu_y - mu_G).w_c and
 * (mu_y - mu_G).(mu_c - mu_G)) the products of h - mu_G with W and with the centred class means. */
static void nc_chunk(collapse_nc_stats *s, int64_t rows, const int32_t *labels) {
    const int64_t C = s->C, d = s->d;
    const int di = (int)d;
    double *r = s->rbuf, *p = s->pbuf;
    const int ns = s->nstack, k = s->rank;
    if (ns > 0) {
        nc_products(r, rows, d, s->stack, ns, p);
        for (int64_t i = 0; i < rows; i++)
            for (int j = 0; j < k; j++) s->proj2[j] += p[i * ns + j] * p[i * ns + j];
    }
    if (s->sigw)
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, di, (int)rows, 1.0, r, di, 1.0, s->sigw, di);
    if (s->has_w) {
        for (int64_t i = 0; i < rows; i++) {
            const double *zr = p + i * ns + k, *mr = zr + C;
            double mbuf[NC_MAX_COORD_C];
            if (s->ncc_coord) {
                const double *pk = p + i * ns;
                for (int64_t c = 0; c < C; c++) {
                    const double *a = s->acoef + c * C;
                    double v = 0.0;
                    for (int j = 0; j < k; j++) v += pk[j] * a[j];
                    mbuf[c] = v;
                }
                mr = mbuf;
            }
            int64_t y = labels[i] - 1;
            const double *tw = s->tw + y * C, *tm = s->tm + y * C;
            int64_t best = 0, near = 0;
            double zbest = (zr[0] + tw[0]) + s->beff[0];
            double dbest = s->mnorm2[0] - 2.0 * (mr[0] + tm[0]);
            for (int64_t c = 1; c < C; c++) {
                double zc = (zr[c] + tw[c]) + s->beff[c];
                if (zc > zbest) {
                    zbest = zc;
                    best = c;
                }
                double dc = s->mnorm2[c] - 2.0 * (mr[c] + tm[c]);
                if (dc < dbest) {
                    dbest = dc;
                    near = c;
                }
            }
            int64_t pred = best; /* the classifier's decision compared with the NCC */
            if (s->conv & COLLAPSE_NC_CONV_NCC_NO_BIAS) {
                double zb = (zr[0] + tw[0]) + (s->beff[0] - s->bias[0]);
                pred = 0;
                for (int64_t c = 1; c < C; c++) {
                    double zc = (zr[c] + tw[c]) + (s->beff[c] - s->bias[c]);
                    if (zc > zb) {
                        zb = zc;
                        pred = c;
                    }
                }
            }
            double se = 0.0;
            for (int64_t c = 0; c < C; c++) se += exp((zr[c] + tw[c]) + s->beff[c] - zbest);
            s->loss_sum += zbest + log(se) - ((zr[y] + tw[y]) + s->beff[y]);
            s->agree += pred == near;
            s->correct += best == y;
        }
    }
}

/* `checked`: the batch already passed nc_check_batch (the one-shot pass 2 over pass 1's data). */
static collapse_status nc_pass2(const char *fn, collapse_nc_stats *s, collapse_dtype dtype, const void *features,
                                int64_t n, const int32_t *labels, int checked) {
    if (s && s->state != NC_PASS2)
        return collapse_fail(COLLAPSE_ERR_STATE, "%s: pass 2 before end_pass1; call nc_stats_end_pass1 first", fn);
    if (!checked) COLLAPSE_TRY(nc_check_batch(fn, s, dtype, features, n, labels, 1));
    s->pass2_started = 1;
    const int64_t d = s->d;
    for (int64_t i0 = 0; i0 < n; i0 += s->chunk) {
        int64_t rows = n - i0 < s->chunk ? n - i0 : s->chunk;
        const int32_t *lab = labels + i0;
        if (dtype == COLLAPSE_FLOAT32)
            nc_load_pass2_f32((const float *)features + i0 * d, rows, d, lab, s->mu_g, s->mu, s->rbuf,
                              s->usum, s->within, s->count2, &s->sq_centred);
        else
            nc_load_pass2_f64((const double *)features + i0 * d, rows, d, lab, s->mu_g, s->mu, s->rbuf,
                              s->usum, s->within, s->count2, &s->sq_centred);
        nc_chunk(s, rows, lab);
    }
    s->n2 += n;
    return COLLAPSE_OK;
}

collapse_status collapse_nc_stats_pass2(collapse_nc_stats *s, collapse_dtype dtype, const void *features, int64_t n,
                                        const int32_t *labels) {
    return nc_pass2("nc_stats_pass2", s, dtype, features, n, labels, 0);
}

/* ---- results ------------------------------------------------------------------------------ */

void collapse_nc_result_free(collapse_nc_result *r) {
    if (!r) return;
    free(r->class_counts);
    free(r->intra_per_class);
    free(r->etf_spectrum);
    free(r->between_spectrum);
    free(r->within_spectrum);
    memset(r, 0, sizeof *r);
}

/* Top k = min(d, 2C) eigenvalues of Sigma_W = sigw / N, descending, into out. */
static collapse_status nc_within_spectrum(const char *fn, const collapse_nc_stats *s, int k, double *out) {
    int64_t d = s->d;
    double *a = nc_alloc(d * d, sizeof(double));
    double *w = nc_alloc(d, sizeof(double));
    lapack_int *isuppz = nc_alloc(2 * d, sizeof(lapack_int));
    if (!a || !w || !isuppz) {
        free(a);
        free(w);
        free(isuppz);
        return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: out of memory for the %lld x %lld within-class covariance", fn,
                             (long long)d, (long long)d);
    }
    double inv = 1.0 / (double)s->n1;
    for (int64_t i = 0; i < d; i++)
        for (int64_t j = i; j < d; j++) a[i * d + j] = s->sigw[i * d + j] * inv;
    lapack_int m = 0;
    double z = 0.0;
    lapack_int info = LAPACKE_dsyevr(LAPACK_ROW_MAJOR, 'N', 'I', 'U', (lapack_int)d, a, (lapack_int)d, 0.0, 0.0,
                                     (lapack_int)(d - k + 1), (lapack_int)d, 0.0, &m, w, &z, 1, isuppz);
    collapse_status st = COLLAPSE_OK;
    if (info != 0 || m != k)
        st = collapse_fail(COLLAPSE_ERR_NUMERIC, "%s: LAPACK dsyevr on the %lld x %lld within-class covariance failed (info %d)",
                           fn, (long long)d, (long long)d, (int)info);
    else
        for (int i = 0; i < k; i++) out[i] = w[k - 1 - i] > 0.0 ? w[k - 1 - i] : 0.0;
    free(a);
    free(w);
    free(isuppz);
    return st;
}

/* Arguments and the pass bookkeeping of a result request. */
static collapse_status nc_result_check(const char *fn, const collapse_nc_stats *s, double q) {
    if (!s) return collapse_fail(COLLAPSE_ERR_ARG, "%s: stats expected, got NULL", fn);
    if (!(q >= 0.0 && q <= 1.0)) return collapse_fail(COLLAPSE_ERR_ARG, "%s: q must be in [0, 1], got %g", fn, q);
    if (s->state != NC_PASS2)
        return collapse_fail(COLLAPSE_ERR_STATE, "%s: results need both passes; call nc_stats_end_pass1 and pass 2 first", fn);
    if (s->n2 != s->n1)
        return collapse_fail(COLLAPSE_ERR_STATE,
                             "%s: pass 2 saw %lld samples but pass 1 saw %lld; feed the same batches to both passes", fn,
                             (long long)s->n2, (long long)s->n1);
    for (int64_t c = 0; c < s->C; c++)
        if (s->count2[c] != s->count1[c])
            return collapse_fail(COLLAPSE_ERR_STATE,
                                 "%s: pass 2 saw %lld samples of class %lld but pass 1 saw %lld; feed the same batches "
                                 "to both passes",
                                 fn, (long long)s->count2[c], (long long)(c + 1), (long long)s->count1[c]);
    return COLLAPSE_OK;
}

/* The paper's cosines: s_c = usum_c / n_c; <s_c, s_c'> from one syrk into sg (C x C). pairs (C(C-1)/2)
 * and tmp (C) are scratch. */
static void nc_result_cosines(const collapse_nc_stats *s, double q, double *sg, double *pairs, double *tmp,
                              collapse_nc_result *r) {
    const int64_t C = s->C, d = s->d, npairs = C * (C - 1) / 2;
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)C, (int)d, 1.0, s->usum, (int)d, 0.0, sg, (int)C);
    double acc = 0.0, mn = INFINITY;
    for (int64_t c = 0; c < C; c++) {
        double nc = (double)s->count1[c];
        double s2 = sg[c * C + c] / (nc * nc);
        double v = nc / (nc - 1.0) * s2 - 1.0 / (nc - 1.0);
        r->intra_per_class[c] = v;
        tmp[c] = v;
        acc += v;
        if (v < mn) mn = v;
    }
    r->intra_cos = acc / (double)C;
    r->intra_cos_min = mn;
    r->intra_cos_q = quantile_sorted(tmp, C, q);
    int64_t k = 0;
    double mx = -INFINITY;
    acc = 0.0;
    for (int64_t a = 0; a < C; a++)
        for (int64_t b = a + 1; b < C; b++) {
            double v = sg[a * C + b] / ((double)s->count1[a] * (double)s->count1[b]);
            pairs[k++] = v;
            acc += v;
            if (v > mx) mx = v;
        }
    r->inter_cos = acc / (double)npairs;
    r->inter_cos_max = mx;
    r->inter_cos_q = quantile_sorted(pairs, npairs, 1.0 - q);
    r->feature_norm = sqrt(s->sq_centred / (double)s->n1);
}

/* trace_within, variability, nc1 and cdnv from the within energies, the projections and G. */
static void nc_result_variability(const collapse_nc_stats *s, collapse_nc_result *r) {
    const int64_t C = s->C, d = s->d, npairs = C * (C - 1) / 2;
    const double N = (double)s->n1, *G = s->gram;
    double trG = 0.0, trW = 0.0;
    for (int64_t c = 0; c < C; c++) trG += G[c * C + c];
    for (int64_t c = 0; c < C; c++) trW += s->within[c];
    trW /= N;
    r->trace_within = trW;
    r->variability = trW / (trG / (double)C);
    double nc1 = 0.0;
    for (int k = 0; k < s->rank; k++) nc1 += s->proj2[k] / (N * s->blam[k]);
    r->nc1 = (s->conv & COLLAPSE_NC_CONV_NC1_TRACE) ? nc1 * (double)C : nc1;
    /* cdnv; ||mu_c - mu_c'||^2 from G unless cancellation makes that inaccurate */
    double cd = 0.0, unb = (s->conv & COLLAPSE_NC_CONV_CDNV_UNBIASED) ? 1.0 : 0.0;
    for (int64_t a = 0; a < C; a++)
        for (int64_t b = a + 1; b < C; b++) {
            double na = G[a * C + a] + G[b * C + b];
            double dist2 = na - 2.0 * G[a * C + b];
            if (!(dist2 > NC_CDNV_RECOMPUTE * na)) {
                const double *ma = s->mu + a * d, *mb = s->mu + b * d;
                dist2 = 0.0;
                for (int64_t j = 0; j < d; j++) dist2 += (ma[j] - mb[j]) * (ma[j] - mb[j]);
            }
            double va = s->within[a] / ((double)s->count1[a] - unb), vb = s->within[b] / ((double)s->count1[b] - unb);
            cd += dist2 > 0.0 ? (va + vb) / (2.0 * dist2) : INFINITY;
        }
    r->cdnv = cd / (double)npairs;
}

/* The divisor of the variance behind equinorm and w_equinorm: C (population) or C - 1 (unbiased, torch.std). */
static double nc_std_divisor(const collapse_nc_stats *s) {
    return (s->conv & COLLAPSE_NC_CONV_STD_UNBIASED) ? (double)(s->C - 1) : (double)s->C;
}

/* equinorm, equiangular, max_cos, etf_error, the spectra and the energies of the bound; rn (C) is scratch. */
static void nc_result_means(const collapse_nc_stats *s, double *rn, collapse_nc_result *r) {
    const int64_t C = s->C, d = s->d, npairs = C * (C - 1) / 2;
    const double N = (double)s->n1, *G = s->gram;
    double frob2 = 0.0;
    for (int64_t i = 0; i < C * C; i++) frob2 += G[i] * G[i];
    double frob = sqrt(frob2);
    double mean = 0.0, var = 0.0;
    for (int64_t c = 0; c < C; c++) {
        rn[c] = sqrt(G[c * C + c]);
        mean += rn[c];
    }
    mean /= (double)C;
    for (int64_t c = 0; c < C; c++) var += (rn[c] - mean) * (rn[c] - mean);
    var /= nc_std_divisor(s);
    r->equinorm = sqrt(var) / mean; /* mean > 0: end_pass1 rejects M~ = 0 */
    double eq = 0.0, mx = -INFINITY, target = 1.0 / (double)(C - 1);
    const int signed_eq = (s->conv & COLLAPSE_NC_CONV_EQUIANGULAR_SIGNED) != 0;
    for (int64_t a = 0; a < C; a++)
        for (int64_t b = a + 1; b < C; b++) {
            double cs = (rn[a] > 0.0 && rn[b] > 0.0) ? G[a * C + b] / (rn[a] * rn[b]) : 0.0;
            eq += signed_eq ? cs + target : fabs(cs + target);
            if (cs > mx) mx = cs;
        }
    r->equiangular = eq / (double)npairs;
    r->max_cos = mx;
    double e2 = 0.0, sc = 1.0 / sqrt((double)(C - 1));
    for (int64_t a = 0; a < C; a++)
        for (int64_t b = 0; b < C; b++) {
            double ref = ((a == b ? 1.0 : 0.0) - 1.0 / (double)C) * sc;
            double v = G[a * C + b] / frob - ref;
            e2 += v * v;
        }
    r->etf_error = sqrt(e2);
    for (int64_t k = 0; k < C; k++) {
        r->etf_spectrum[k] = s->geig[k] / frob;
        r->between_spectrum[k] = s->geig[k] / (double)C;
    }
    double be = 0.0, mg2 = 0.0;
    for (int64_t c = 0; c < C; c++) {
        const double *mc = s->mu + c * d;
        for (int64_t j = 0; j < d; j++) be += (mc[j] - s->mu_g[j]) * (mc[j] - s->mu_g[j]);
    }
    for (int64_t j = 0; j < d; j++) mg2 += s->mu_g[j] * s->mu_g[j];
    r->between_energy = be / (double)C;
    r->mean_sq_norm = s->sq_centred / N + mg2;
}

/* The classifier metrics; tmp (C) is scratch. */
static void nc_result_classifier(const collapse_nc_stats *s, double *tmp, collapse_nc_result *r) {
    const int64_t C = s->C, d = s->d;
    const double N = (double)s->n1;
    double trG = 0.0;
    for (int64_t c = 0; c < C; c++) trG += s->gram[c * C + c];
    r->has_classifier = 1;
    double wmean = 0.0, wvar = 0.0, wf2 = 0.0;
    for (int64_t c = 0; c < C; c++) {
        double n2 = cblas_ddot((int)d, s->wm + c * d, 1, s->wm + c * d, 1);
        wf2 += n2;
        tmp[c] = sqrt(n2);
        wmean += tmp[c];
    }
    wmean /= (double)C;
    for (int64_t c = 0; c < C; c++) wvar += (tmp[c] - wmean) * (tmp[c] - wmean);
    wvar /= nc_std_divisor(s);
    r->w_equinorm = wmean > 0.0 ? sqrt(wvar) / wmean : 0.0; /* W = 0: all rows equal, 0 */
    double wf = sqrt(wf2), mf = sqrt(trG), sd = 0.0;
    double wi = wf > 0.0 ? 1.0 / wf : 0.0; /* W = 0 normalises to 0 -> self_duality 1 */
    for (int64_t i = 0; i < C * d; i++) {
        double v = s->wm[i] * wi - s->mt[i] / mf;
        sd += v * v;
    }
    r->self_duality = (s->conv & COLLAPSE_NC_CONV_SELF_DUALITY_NORM) ? sqrt(sd) : sd;
    r->ncc_agreement = (double)s->agree / N;
    r->accuracy = (double)s->correct / N;
    r->loss = s->loss_sum / N;
}

/* Never hand out NaN (only overflow of huge features could produce one). */
static collapse_status nc_result_finite(const char *fn, const collapse_nc_result *r) {
    const struct { const char *name; double v; } chk[] = {
        {"intra_cos", r->intra_cos}, {"intra_cos_min", r->intra_cos_min}, {"intra_cos_q", r->intra_cos_q},
        {"inter_cos", r->inter_cos}, {"inter_cos_max", r->inter_cos_max}, {"inter_cos_q", r->inter_cos_q},
        {"feature_norm", r->feature_norm}, {"nc1", r->nc1}, {"variability", r->variability},
        {"equinorm", r->equinorm}, {"equiangular", r->equiangular}, {"max_cos", r->max_cos},
        {"etf_error", r->etf_error}, {"w_equinorm", r->w_equinorm}, {"self_duality", r->self_duality},
        {"loss", r->loss}, {"trace_within", r->trace_within}, {"between_energy", r->between_energy},
        {"mean_sq_norm", r->mean_sq_norm},
    };
    for (size_t i = 0; i < sizeof chk / sizeof chk[0]; i++)
        if (!isfinite(chk[i].v))
            return collapse_fail(COLLAPSE_ERR_NUMERIC, "%s: %s came out non-finite (%g); the features are too large "
                                 "for float64 arithmetic", fn, chk[i].name, chk[i].v);
    if (isnan(r->cdnv))
        return collapse_fail(COLLAPSE_ERR_NUMERIC, "%s: cdnv came out NaN; the features are too large for float64 "
                             "arithmetic", fn);
    return COLLAPSE_OK;
}

static collapse_status nc_result(const char *fn, const collapse_nc_stats *s, double q, collapse_nc_result *out) {
    if (!out) return collapse_fail(COLLAPSE_ERR_ARG, "%s: out expected, got NULL", fn);
    memset(out, 0, sizeof *out);
    COLLAPSE_TRY(nc_result_check(fn, s, q));
    const int64_t C = s->C, d = s->d;
    int kw = (s->flags & COLLAPSE_NC_WITHIN_SPECTRUM) ? (int)(d < 2 * C ? d : 2 * C) : 0;
    collapse_nc_result r;
    memset(&r, 0, sizeof r);
    r.class_counts = nc_alloc(C, sizeof(int64_t));
    r.intra_per_class = nc_alloc(C, sizeof(double));
    r.etf_spectrum = nc_alloc(C, sizeof(double));
    r.between_spectrum = nc_alloc(C, sizeof(double));
    if (kw) r.within_spectrum = nc_alloc(kw, sizeof(double));
    double *sg = nc_alloc(C * C, sizeof(double));
    double *pairs = nc_alloc(C * (C - 1) / 2, sizeof(double));
    double *tmp = nc_alloc(C, sizeof(double));
    collapse_status st = COLLAPSE_OK;
    if (!r.class_counts || !r.intra_per_class || !r.etf_spectrum || !r.between_spectrum || (kw && !r.within_spectrum) ||
        !sg || !pairs || !tmp) {
        st = collapse_fail(COLLAPSE_ERR_NOMEM, "%s: out of memory", fn);
        goto done;
    }
    r.classes = s->C;
    r.dim = d;
    r.samples = s->n1;
    r.q = q;
    for (int64_t c = 0; c < C; c++) r.class_counts[c] = s->count1[c];
    nc_result_cosines(s, q, sg, pairs, tmp, &r);
    nc_result_variability(s, &r);
    nc_result_means(s, tmp, &r);
    if (s->has_w) nc_result_classifier(s, tmp, &r);
    if (kw) {
        r.within_spectrum_len = kw;
        st = nc_within_spectrum(fn, s, kw, r.within_spectrum);
    }
    if (st == COLLAPSE_OK) st = nc_result_finite(fn, &r);
done:
    free(sg);
    free(pairs);
    free(tmp);
    if (st != COLLAPSE_OK) collapse_nc_result_free(&r);
    else *out = r;
    return st;
}

collapse_status collapse_nc_stats_result(const collapse_nc_stats *s, double q, collapse_nc_result *out) {
    return nc_result("nc_stats_result", s, q, out);
}

/* ---- one shot --------------------------------------------------------------------------- */

collapse_status collapse_nc_measure(collapse_dtype dtype, const void *features, int64_t n, int64_t dim,
                                    const int32_t *labels, int classes, const double *W, const double *b, double q,
                                    int flags, collapse_nc_result *out) {
    static const char fn[] = "nc_measure";
    if (!out) return collapse_fail(COLLAPSE_ERR_ARG, "%s: out expected, got NULL", fn);
    memset(out, 0, sizeof *out);
    if (b && !W) return collapse_fail(COLLAPSE_ERR_ARG, "%s: bias b given without a classifier W", fn);
    if (!(q >= 0.0 && q <= 1.0)) return collapse_fail(COLLAPSE_ERR_ARG, "%s: q must be in [0, 1], got %g", fn, q);
    collapse_nc_stats *s = NULL;
    COLLAPSE_TRY(nc_new(fn, classes, dim, flags, &s));
    collapse_status st = COLLAPSE_OK;
    if (W) st = nc_set_classifier(fn, s, W, b);
    if (st == COLLAPSE_OK) st = nc_pass1(fn, s, dtype, features, n, labels);
    if (st == COLLAPSE_OK) st = nc_end_pass1(fn, s);
    if (st == COLLAPSE_OK) st = nc_pass2(fn, s, dtype, features, n, labels, 1); /* pass 1 checked them */
    if (st == COLLAPSE_OK) st = nc_result(fn, s, q, out);
    collapse_nc_stats_free(s);
    return st;
}
