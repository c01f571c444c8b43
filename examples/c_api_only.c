/*
 * c_api_only: uses libcollapse from C alone (no Lua).
 *   cc c_api_only.c $(pkg-config --cflags --libs collapse)
 * Builds two small matrices, multiplies them through the library (OpenBLAS underneath), shows
 * how errors are reported, and prints which BLAS kernel runs.
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

    collapse_blas_info info;
    collapse_blas_get_info(&info);
    printf("OpenBLAS core %s, %d thread(s)\n", info.core, info.threads);

    collapse_tensor_release(A);
    collapse_tensor_release(B);
    collapse_tensor_release(C);
    return ok ? 0 : 1;
}
