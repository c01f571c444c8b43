/*
 * c_api_only: uses libcollapse from C alone (no Lua).
 *   cc c_api_only.c $(pkg-config --cflags --libs collapse)
 * Builds two small matrices, multiplies them through the library (OpenBLAS underneath), shows
 * how errors are reported, measures collapse of perfectly collapsed features (a simplex ETF),
 * asks the bound what a regularised loss certifies, and prints which BLAS kernel runs.
 */
#include <collapse.h>
#include <stdio.h>

int main(void) {
    const double a[6] = {1, 2, 3, 4, 5, 6}; /* 2 x 3 */
    const double b[6] = {1, 2, 3, 4, 5, 6}; /* 3 x 2 */
    int64_t sa[2] = {2, 3}, sb[2] = {3, 2};
    collapse_tensor *A = NULL, *B = NULL, *C = NULL;
    if (collapse_tensor_from_data(COLLAPSE_FLOAT64, 2, sa, a, &A) != COLLAPSE_OK ||
        collapse_tensor_from_data(COLLAPSE_FLOAT64, 2, sb, b, &B) != COLLAPSE_OK ||
        collapse_matmul(A, B, &C) != COLLAPSE_OK) {
        fprintf(stderr, "c_api_only: %s\n", collapse_last_error());
        return 1;
    }
    const double *c = collapse_tensor_data(C);
    printf("A @ B = [[%g, %g], [%g, %g]]\n", c[0], c[1], c[2], c[3]);
    int ok = c[0] == 22 && c[1] == 28 && c[2] == 49 && c[3] == 64;

    /* Errors come back as a status and a message; nothing aborts. */
    collapse_tensor *bad = NULL;
    collapse_status s = collapse_matmul(A, A, &bad);
    printf("A @ A -> %s: %s\n", collapse_status_name(s), collapse_last_error());
    ok = ok && s == COLLAPSE_ERR_SHAPE && bad == NULL;

    /* Neural-collapse metrics of 3 classes whose features sit exactly on a simplex ETF. */
    enum { K = 3, D = 3, PER = 4 }; /* classes, feature dimension, samples per class */
    double feats[K * PER * D];
    int32_t labels[K * PER];
    for (int i = 0; i < K * PER; i++) {
        labels[i] = i % K + 1;
        for (int j = 0; j < D; j++) feats[i * D + j] = (j == i % K ? 1.0 : 0.0) - 1.0 / K;
    }
    collapse_nc_result m = {0};
    if (collapse_nc_measure(COLLAPSE_FLOAT64, feats, K * PER, D, labels, K, NULL, NULL, 0.05, 0, &m) != COLLAPSE_OK) {
        fprintf(stderr, "c_api_only: %s\n", collapse_last_error());
        return 1;
    }
    printf("ETF features: intra_cos %.6f, inter_cos %.6f, etf_error %.2g\n", m.intra_cos, m.inter_cos, m.etf_error);
    ok = ok && m.intra_cos > 1 - 1e-12 && m.inter_cos < -0.5 + 1e-12;
    collapse_nc_result_free(&m);

    /* What a regularised loss 1e-6 above the optimum certifies for C = 10, lambda = 1e-3. */
    double L = 0, t = 0;
    collapse_optimal_loss(1e-3, 10, &L, &t);
    collapse_bound_input in;
    collapse_bound_input_defaults(&in);
    in.lambda = 1e-3;
    in.classes = 10;
    in.loss = L + 1e-6;
    collapse_bound_result bound;
    if (collapse_bound(&in, &bound) != COLLAPSE_OK) {
        fprintf(stderr, "c_api_only: %s\n", collapse_last_error());
        return 1;
    }
    printf("L* = %.10f; certified intra >= %.5f, inter <= %.5f\n", L, bound.intra_cos_min, bound.inter_cos_max);
    ok = ok && bound.guaranteed && bound.intra_cos_min > 0.999;

    collapse_blas_info info;
    collapse_blas_get_info(&info);
    printf("OpenBLAS core %s, %d thread(s)\n", info.core, info.threads);

    collapse_tensor_release(A);
    collapse_tensor_release(B);
    collapse_tensor_release(C);
    return ok ? 0 : 1;
}
