/* Generic pooling kernels (instantiated by nn/pool2d.c). Output (oh, ow) of a plane pools the
 * k x k window with top-left corner (oh s, ow s). */

/* One plane of a 2 x 2, stride-2 max-pool with indices, without branches: the four window values
 * in row-major order, each taken when it is greater than the running maximum or NaN (PyTorch's
 * rule, as the general loop below), by selects the compiler turns into conditional moves. */
static void CL_FN(maxpool_2x2_plane)(const real *restrict xp, real *restrict yp, int32_t *restrict ip, int64_t W,
                                     int64_t ho, int64_t wo) {
    for (int64_t oh = 0; oh < ho; oh++) {
        const real *r0 = xp + 2 * oh * W, *r1 = r0 + W;
        const int32_t base = (int32_t)(2 * oh * W);
        for (int64_t ow = 0; ow < wo; ow++) {
            const real v[4] = {r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]};
            const int32_t at[4] = {base + (int32_t)(2 * ow), base + (int32_t)(2 * ow + 1),
                                   base + (int32_t)(W + 2 * ow), base + (int32_t)(W + 2 * ow + 1)};
            real m = (real)-INFINITY;
            int32_t best = at[0];
            for (int t = 0; t < 4; t++) {
                const int take = (v[t] > m) | (v[t] != v[t]);
                m = take ? v[t] : m;
                best = take ? at[t] : best;
            }
            yp[oh * wo + ow] = m;
            ip[oh * wo + ow] = best;
        }
    }
}

collapse_status CL_FN(collapse_maxpool2d_forward)(const int64_t input_shape[4], const real *x, real *y,
                                                  int32_t *indices, int64_t kernel, int64_t stride) {
    static const char fn[] = "maxpool2d_forward";
    cl_pool_geom g;
    COLLAPSE_TRY(cl_pool_begin(fn, input_shape, kernel, stride, &g, "x", x, "y", y, 0));
    const int64_t k = g.k, s = g.s, W = g.w, in_plane = g.h * g.w, out_plane = g.ho * g.wo;
    for (int64_t p = 0; p < g.planes; p++) {
        const real *restrict xp = x + p * in_plane;
        real *restrict yp = y + p * out_plane;
        int32_t *restrict ip = indices ? indices + p * out_plane : NULL;
        if (k == 2 && s == 2 && ip) { /* the VGG / CNN case, branch-free (the same rule and results) */
            CL_FN(maxpool_2x2_plane)(xp, yp, ip, W, g.ho, g.wo);
            continue;
        }
        for (int64_t oh = 0; oh < g.ho; oh++)
            for (int64_t ow = 0; ow < g.wo; ow++) {
                /* PyTorch's loop: the first maximum in row-major window order; a NaN wins (the last one) */
                int64_t best = oh * s * W + ow * s;
                real m = (real)-INFINITY;
                for (int64_t i = 0; i < k; i++) {
                    const int64_t row = (oh * s + i) * W + ow * s;
                    for (int64_t j = 0; j < k; j++) {
                        const real v = xp[row + j];
                        if (v > m || isnan(v)) {
                            m = v;
                            best = row + j;
                        }
                    }
                }
                yp[oh * g.wo + ow] = m;
                if (ip) ip[oh * g.wo + ow] = (int32_t)best;
            }
    }
    return COLLAPSE_OK;
}

collapse_status CL_FN(collapse_maxpool2d_backward)(const int64_t input_shape[4], const real *grad_output,
                                                   real *grad_input, const int32_t *indices, int64_t kernel,
                                                   int64_t stride) {
    static const char fn[] = "maxpool2d_backward";
    cl_pool_geom g;
    COLLAPSE_TRY(cl_pool_begin(fn, input_shape, kernel, stride, &g, "grad_output", grad_output, "grad_input",
                               grad_input, 1));
    if (!indices) {
        char b[CL_SHAPE_STR];
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: indices is NULL, expected the forward's %s int32 array", fn,
                             cl_shape4_str(b, g.out_shape));
    }
    COLLAPSE_TRY(cl_pool_check_indices(fn, &g, indices));
    const int64_t in_plane = g.h * g.w, out_plane = g.ho * g.wo;
    for (int64_t p = 0; p < g.planes; p++) {
        const real *restrict gy = grad_output + p * out_plane;
        const int32_t *restrict ip = indices + p * out_plane;
        real *restrict gx = grad_input + p * in_plane;
        for (int64_t t = 0; t < in_plane; t++) gx[t] = 0;
        for (int64_t t = 0; t < out_plane; t++) gx[ip[t]] += gy[t];
    }
    return COLLAPSE_OK;
}

collapse_status CL_FN(collapse_avgpool2d_forward)(const int64_t input_shape[4], const real *x, real *y,
                                                  int64_t kernel, int64_t stride) {
    static const char fn[] = "avgpool2d_forward";
    cl_pool_geom g;
    COLLAPSE_TRY(cl_pool_begin(fn, input_shape, kernel, stride, &g, "x", x, "y", y, 0));
    const int64_t k = g.k, s = g.s, W = g.w, in_plane = g.h * g.w, out_plane = g.ho * g.wo;
    const double count = (double)(k * k);
    for (int64_t p = 0; p < g.planes; p++) {
        const real *restrict xp = x + p * in_plane;
        real *restrict yp = y + p * out_plane;
        for (int64_t oh = 0; oh < g.ho; oh++)
            for (int64_t ow = 0; ow < g.wo; ow++) {
                double acc = 0;
                for (int64_t i = 0; i < k; i++) {
                    const real *restrict xr = xp + (oh * s + i) * W + ow * s;
                    for (int64_t j = 0; j < k; j++) acc += xr[j];
                }
                yp[oh * g.wo + ow] = (real)(acc / count);
            }
    }
    return COLLAPSE_OK;
}

collapse_status CL_FN(collapse_avgpool2d_backward)(const int64_t input_shape[4], const real *grad_output,
                                                   real *grad_input, int64_t kernel, int64_t stride) {
    static const char fn[] = "avgpool2d_backward";
    cl_pool_geom g;
    COLLAPSE_TRY(cl_pool_begin(fn, input_shape, kernel, stride, &g, "grad_output", grad_output, "grad_input",
                               grad_input, 1));
    const int64_t k = g.k, s = g.s, W = g.w, in_plane = g.h * g.w, out_plane = g.ho * g.wo;
    const real count = (real)(k * k);
    for (int64_t p = 0; p < g.planes; p++) {
        const real *restrict gy = grad_output + p * out_plane;
        real *restrict gx = grad_input + p * in_plane;
        for (int64_t t = 0; t < in_plane; t++) gx[t] = 0;
        for (int64_t oh = 0; oh < g.ho; oh++)
            for (int64_t ow = 0; ow < g.wo; ow++) {
                const real v = gy[oh * g.wo + ow] / count; /* as PyTorch: divided, then added */
                for (int64_t i = 0; i < k; i++) {
                    real *restrict xr = gx + (oh * s + i) * W + ow * s;
                    for (int64_t j = 0; j < k; j++) xr[j] += v;
                }
            }
    }
    return COLLAPSE_OK;
}
