/* Generic conv2d kernels (instantiated for float and double by nn/conv2d.c).
 * One sample at a time: columns[K x L] = im2col(x_n), K = cin kh kw (weight order), L = ho wo;
 * y_n[cout x L] = W[cout x K] columns; backward gW += gy_n columns^T, columns = W^T gy_n,
 * gx_n = col2im(columns). */

/* columns[(c kh + i) kw + j, oh wo + ow] = x[c, oh s - p + i, ow s - p + j], 0 outside. */
static void CL_FN(conv_im2col)(const cl_conv_geom *g, const real *restrict x, real *restrict col) {
    const int64_t s = g->stride, p = g->pad, H = g->h, W = g->w, Ho = g->ho, Wo = g->wo;
    for (int64_t c = 0; c < g->cin; c++)
        for (int64_t i = 0; i < g->kh; i++) {
            int64_t oh0, oh1;
            cl_conv_valid(Ho, H, s, p, i, &oh0, &oh1);
            for (int64_t j = 0; j < g->kw; j++) {
                int64_t ow0, ow1;
                cl_conv_valid(Wo, W, s, p, j, &ow0, &ow1);
                real *restrict row = col + ((c * g->kh + i) * g->kw + j) * g->L;
                for (int64_t oh = 0; oh < Ho; oh++) {
                    real *restrict r = row + oh * Wo;
                    if (oh < oh0 || oh >= oh1) {
                        for (int64_t ow = 0; ow < Wo; ow++) r[ow] = 0;
                        continue;
                    }
                    for (int64_t ow = 0; ow < ow0; ow++) r[ow] = 0;
                    if (ow0 < ow1) {
                        /* x[c, ih, ow0 s - p + j]: the first valid input of this row */
                        const real *restrict xr = x + (c * H + oh * s - p + i) * W + ow0 * s - p + j;
                        real *restrict rr = r + ow0;
                        const int64_t m = ow1 - ow0;
                        if (s == 1)
                            for (int64_t t = 0; t < m; t++) rr[t] = xr[t];
                        else
                            for (int64_t t = 0; t < m; t++) rr[t] = xr[t * s];
                    }
                    for (int64_t ow = ow1; ow < Wo; ow++) r[ow] = 0;
                }
            }
        }
}

/* The adjoint of im2col: gx[c, ih, iw] += columns entries that were copied from it (gx zeroed first). */
static void CL_FN(conv_col2im)(const cl_conv_geom *g, const real *restrict col, real *restrict gx) {
    const int64_t s = g->stride, p = g->pad, H = g->h, W = g->w, Ho = g->ho, Wo = g->wo;
    for (int64_t k = 0; k < g->cin * H * W; k++) gx[k] = 0;
    for (int64_t c = 0; c < g->cin; c++)
        for (int64_t i = 0; i < g->kh; i++) {
            int64_t oh0, oh1;
            cl_conv_valid(Ho, H, s, p, i, &oh0, &oh1);
            for (int64_t j = 0; j < g->kw; j++) {
                int64_t ow0, ow1;
                cl_conv_valid(Wo, W, s, p, j, &ow0, &ow1);
                const real *restrict row = col + ((c * g->kh + i) * g->kw + j) * g->L;
                if (ow0 >= ow1) continue;
                const int64_t m = ow1 - ow0;
                for (int64_t oh = oh0; oh < oh1; oh++) {
                    const real *restrict r = row + oh * Wo + ow0;
                    real *restrict xr = gx + (c * H + oh * s - p + i) * W + ow0 * s - p + j;
                    if (s == 1)
                        for (int64_t t = 0; t < m; t++) xr[t] += r[t];
                    else
                        for (int64_t t = 0; t < m; t++) xr[t * s] += r[t];
                }
            }
        }
}

collapse_status CL_FN(collapse_conv2d_forward)(const int64_t input_shape[4], const int64_t weight_shape[4],
                                               const real *input, real *output, const real *weight, const real *bias,
                                               real *columns, int64_t stride, int64_t padding) {
    static const char fn[] = "conv2d_forward";
    cl_conv_geom g;
    COLLAPSE_TRY(cl_conv_geometry(fn, input_shape, weight_shape, stride, padding, &g));
    COLLAPSE_TRY(cl_need_ptr4(fn, "input", input, input_shape));
    COLLAPSE_TRY(cl_need_ptr4(fn, "output", output, g.out_shape));
    COLLAPSE_TRY(cl_need_ptr4(fn, "weight", weight, weight_shape));
    if (!g.direct) COLLAPSE_TRY(cl_need_ptr(fn, "columns", columns, g.K, g.L));
    const int64_t in_plane = g.cin * g.h * g.w, out_plane = g.cout * g.L;
    for (int64_t n = 0; n < g.n; n++) {
        const real *x = input + n * in_plane;
        real *y = output + n * out_plane;
        const real *col = x;
        if (!g.direct) {
            CL_FN(conv_im2col)(&g, x, columns);
            col = columns;
        }
        real beta = 0;
        if (bias) {
            /* y_n starts as the bias planes, then gemm adds W columns on top (beta = 1) */
            for (int64_t o = 0; o < g.cout; o++) {
                real *restrict yr = y + o * g.L;
                const real bo = bias[o];
                for (int64_t l = 0; l < g.L; l++) yr[l] = bo;
            }
            beta = 1;
        }
        CL_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g.cout, (int)g.L, (int)g.K, (real)1, weight,
                (int)g.K, col, (int)g.L, beta, y, (int)g.L);
    }
    return COLLAPSE_OK;
}

collapse_status CL_FN(collapse_conv2d_backward)(const int64_t input_shape[4], const int64_t weight_shape[4],
                                                const real *input, const real *grad_output, real *grad_input,
                                                const real *weight, real *grad_weight, real *grad_bias,
                                                real *columns, int64_t stride, int64_t padding) {
    static const char fn[] = "conv2d_backward";
    cl_conv_geom g;
    COLLAPSE_TRY(cl_conv_geometry(fn, input_shape, weight_shape, stride, padding, &g));
    COLLAPSE_TRY(cl_need_ptr4(fn, "grad_output", grad_output, g.out_shape));
    if (grad_weight) COLLAPSE_TRY(cl_need_ptr4(fn, "input", input, input_shape));
    if (grad_input) COLLAPSE_TRY(cl_need_ptr4(fn, "weight", weight, weight_shape));
    if (!g.direct && (grad_weight || grad_input)) COLLAPSE_TRY(cl_need_ptr(fn, "columns", columns, g.K, g.L));
    const int64_t in_plane = g.cin * g.h * g.w, out_plane = g.cout * g.L;
    for (int64_t n = 0; n < g.n; n++) {
        const real *gy = grad_output + n * out_plane;
        if (grad_weight) {
            /* gW[cout x K] += gy_n[cout x L] columns^T */
            const real *col = input + n * in_plane;
            if (!g.direct) {
                CL_FN(conv_im2col)(&g, col, columns);
                col = columns;
            }
            CL_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)g.cout, (int)g.K, (int)g.L, (real)1, gy, (int)g.L,
                    col, (int)g.L, (real)1, grad_weight, (int)g.K);
        }
        if (grad_input) {
            /* columns[K x L] = W^T gy_n, then scattered back to the input plane */
            real *gx = grad_input + n * in_plane;
            real *col = g.direct ? gx : columns;
            CL_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)g.K, (int)g.L, (int)g.cout, (real)1, weight,
                    (int)g.K, gy, (int)g.L, (real)0, col, (int)g.L);
            if (!g.direct) CL_FN(conv_col2im)(&g, columns, gx);
        }
    }
    if (grad_bias)
        for (int64_t o = 0; o < g.cout; o++) {
            double acc = 0;
            for (int64_t n = 0; n < g.n; n++) {
                const real *restrict r = grad_output + n * out_plane + o * g.L;
                for (int64_t l = 0; l < g.L; l++) acc += r[l];
            }
            grad_bias[o] = (real)(grad_bias[o] + acc);
        }
    return COLLAPSE_OK;
}
