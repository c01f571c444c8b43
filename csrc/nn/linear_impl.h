/* Generic linear-layer kernels (instantiated for float and double by nn/linear.c). */

static collapse_status CL_FN(linear_check)(const char *fn, int64_t n, int64_t in, int64_t out) {
    COLLAPSE_TRY(cl_need_size(fn, "n", n, 1));
    COLLAPSE_TRY(cl_need_size(fn, "in", in, 1));
    COLLAPSE_TRY(cl_need_size(fn, "out", out, 1));
    return COLLAPSE_OK;
}

CL_CLONES
collapse_status CL_FN(collapse_linear_forward)(int64_t n, int64_t in, int64_t out, const real *x, real *y,
                                               const real *W, const real *b) {
    static const char fn[] = "linear_forward";
    COLLAPSE_TRY(CL_FN(linear_check)(fn, n, in, out));
    COLLAPSE_TRY(cl_need_ptr(fn, "x", x, n, in));
    COLLAPSE_TRY(cl_need_ptr(fn, "y", y, n, out));
    COLLAPSE_TRY(cl_need_ptr(fn, "W", W, out, in));
    real beta = 0;
    if (b) {
        /* y starts as the bias rows, then gemm adds x W^T on top (beta = 1). */
        real *restrict yy = y;
        const real *restrict bb = b;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < out; j++) yy[i * out + j] = bb[j];
        beta = 1;
    }
    CL_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)out, (int)in, (real)1, x, (int)in, W, (int)in,
            beta, y, (int)out);
    return COLLAPSE_OK;
}

CL_CLONES
collapse_status CL_FN(collapse_linear_backward)(int64_t n, int64_t in, int64_t out, const real *x,
                                                const real *gy, real *gx, const real *W, real *gW, real *gb) {
    static const char fn[] = "linear_backward";
    COLLAPSE_TRY(CL_FN(linear_check)(fn, n, in, out));
    COLLAPSE_TRY(cl_need_ptr(fn, "x", x, n, in));
    COLLAPSE_TRY(cl_need_ptr(fn, "grad_output", gy, n, out));
    COLLAPSE_TRY(cl_need_ptr(fn, "W", W, out, in));
    /* gW NULL: the weight is frozen (requires_grad = false), its gradient is not computed */
    if (gW) COLLAPSE_TRY(cl_need_ptr(fn, "grad_weight", gW, out, in));
    /* gx = gy W : [n x out] [out x in] */
    if (gx)
        CL_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)in, (int)out, (real)1, gy, (int)out, W,
                (int)in, (real)0, gx, (int)in);
    /* gW += gy^T x : [out x n] [n x in] */
    if (gW)
        CL_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)n, (real)1, gy, (int)out, x, (int)in,
                (real)1, gW, (int)in);
    if (gb) {
        /* column sums in double, a stack block of columns at a time (rows stay contiguous) */
        const real *restrict d = gy;
        for (int64_t j0 = 0; j0 < out; j0 += CL_NN_BLOCK) {
            int64_t m = out - j0 < CL_NN_BLOCK ? out - j0 : CL_NN_BLOCK;
            double acc[CL_NN_BLOCK];
            for (int64_t k = 0; k < m; k++) acc[k] = 0;
            for (int64_t i = 0; i < n; i++) {
                const real *restrict r = d + i * out + j0;
                for (int64_t k = 0; k < m; k++) acc[k] += r[k];
            }
            for (int64_t k = 0; k < m; k++) gb[j0 + k] = (real)(gb[j0 + k] + acc[k]);
        }
    }
    return COLLAPSE_OK;
}
