/* Elementwise kernels of residual connections, written once for float and double (included by
 * nn/residual.c between core/generic.h and core/generic_end.h). */

/* y = a + b, or relu(a + b) when relu (a constant per call site: one specialised loop each). */
CL_ALWAYS_INLINE static inline void CL_FN(add_loop)(int64_t n, const real *a, const real *b, real *y, int relu) {
    for (int64_t i = 0; i < n; i++) {
        real v = a[i] + b[i];
        y[i] = relu && !(v > 0) ? (real)0 : v;
    }
}

CL_CLONES static void CL_FN(add_fwd)(int64_t n, const real *a, const real *b, real *y) {
    CL_FN(add_loop)(n, a, b, y, 0);
}

CL_CLONES static void CL_FN(add_relu_fwd)(int64_t n, const real *a, const real *b, real *y) {
    CL_FN(add_loop)(n, a, b, y, 1);
}

/* gx = gy where the ReLU's output y is positive, else 0 (PyTorch's rule: no gradient at 0). */
CL_CLONES static void CL_FN(relu_mask_bwd)(int64_t n, const real *y, const real *gy, real *gx) {
    for (int64_t i = 0; i < n; i++) gx[i] = y[i] > 0 ? gy[i] : (real)0;
}
